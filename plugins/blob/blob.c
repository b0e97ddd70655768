/* blob — the quantized model as a .tmb blob (tmpipe-blob(5)) that
 * libtmrt's tmrt_blob_load runs in place: the core lowers the model
 * (tm_model_to_blob) and this plugin writes the bytes. */
#include <stdio.h>
#include <stdlib.h>

#include <tmpipe/lower.h>
#include <tmpipe/tmpipe.h>

static const tm_param_spec blob_params[] = {
	{ .name = "path", .type = TM_PARAM_PATH, .flags = TM_PARAM_REQUIRED,
	  .help = ".tmb file to write (relative to the pipeline)" },
	TM_PARAM_END
};

static tm_status
blob_emit(const tm_model *m, const tm_params *p, tm_outputs *outs,
	  tm_error *err)
{
	const char *path = tm_params_get_string(p, "path");
	void *bytes = NULL;
	size_t size = 0;
	tm_status st;
	FILE *fp;

	st = tm_model_to_blob(m, &bytes, &size, err);
	if (st)
		return st;
	fp = tm_outputs_open(outs, path, err);
	if (!fp) {
		tm_blob_free(bytes);
		return err->code;
	}
	if (fwrite(bytes, 1, size, fp) != size || fflush(fp) != 0)
		st = tm_error_set(err, TM_ERR_IO, "%s: write failed", path);
	tm_blob_free(bytes);
	/* On error the core discards the half-written file. */
	return st;
}

static const tm_emitter_ops blob_ops = {
	.emit = blob_emit,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_EMITTER, "blob", "1.0",
		 ".tmb blob for libtmrt (tmrt_blob_load), weights and arena "
		 "plan included", blob_params, &blob_ops)
