/* tmpipe fuzzing — the onnx frontend (plugins/onnx/import.c, protobuf-c):
 * onnx_import as the plugin's load calls it (scales kept, its default),
 * then tm_model_finalize as the pass manager does after every frontend. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "import.h"

int
tm_fuzz_onnx(const uint8_t *data, size_t size)
{
	const char *path = tm_fuzz_write("model.onnx", data, size);
	onnx_opts o;
	onnx_result res;
	tm_model *m;
	tm_error err;
	tm_status st;
	int bad;

	if (!path)
		return 1;
	m = tm_model_new();
	if (!m)
		return 1;
	memset(&o, 0, sizeof o);
	memset(&res, 0, sizeof res);
	o.keep_scales = 1;
	tm_error_clear(&err);
	st = onnx_import(path, &o, m, &res, &err);
	bad = tm_fuzz_check_err("onnx_import", st, &err, path);
	/* The pass manager locates finalize's errors at the pipeline's
	 * model section: they need not name the file. */
	if (!st) {
		st = tm_model_finalize(m, &err);
		bad = tm_fuzz_check_err("tm_model_finalize", st, &err, NULL);
	}
	onnx_result_fini(&res);
	tm_model_free(m);
	return bad;
}

#ifdef TM_FUZZ_LIBFUZZER
TM_FUZZ_TARGET(tm_fuzz_onnx)
#endif
