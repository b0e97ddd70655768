/* onnx — the ONNX frontend: float graphs and quantized (QDQ, QOperator)
 * graphs of opsets up to 17, read with protobuf-c bindings generated from
 * the system's onnx.proto. The importer (import.c) does the work; this
 * file declares the plugin and its parameters. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>

#include "import.h"

static const char *const scale_choices[] = { "given", "recalibrate", NULL };

static const tm_param_spec shape_field[] = {
	{ .name = "shape", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 1,
	  .max = 1 << 30, .help = "shape of one sample" },
	TM_PARAM_END
};

static const tm_param_spec onnx_params[] = {
	{ .name = "path", .type = TM_PARAM_PATH, .flags = TM_PARAM_REQUIRED,
	  .help = "the .onnx file (relative to the pipeline)" },
	{ .name = "inputs", .type = TM_PARAM_MAP, .fields = shape_field,
	  .help = "input shapes of one sample, replacing the graph's "
	  "(name: [shape])" },
	{ .name = "scales", .type = TM_PARAM_STRING, .def = "given",
	  .choices = scale_choices,
	  .help = "quantized models: keep the model's scales (given) or "
	  "calibrate every range (recalibrate)" },
	TM_PARAM_END
};

static tm_status
onnx_load(const tm_params *p, tm_model *m, tm_error *err)
{
	size_t n = tm_params_list_len(p, "inputs");
	const char **names = NULL;
	const int64_t **shapes = NULL;
	int *ndims = NULL;
	onnx_opts o;
	tm_status st;

	memset(&o, 0, sizeof o);
	o.keep_scales = strcmp(tm_params_get_string(p, "scales"),
			       "recalibrate") != 0;
	if (n) {
		names = calloc(n, sizeof *names);
		shapes = calloc(n, sizeof *shapes);
		ndims = calloc(n, sizeof *ndims);
		if (!names || !shapes || !ndims) {
			st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
			goto out;
		}
		for (size_t k = 0; k < n; k++) {
			const tm_params *it = tm_params_item(p, "inputs", k);
			size_t nd = tm_params_list_len(it, "shape");

			if (nd > TM_MAX_DIMS) {
				st = tm_params_error(p, "inputs", err,
						     TM_ERR_INVALID,
						     "input '%s': at most %d "
						     "dimensions",
						     tm_params_key(p, "inputs",
								   k),
						     TM_MAX_DIMS);
				goto out;
			}
			names[k] = tm_params_key(p, "inputs", k);
			shapes[k] = tm_params_get_ints(it, "shape");
			ndims[k] = (int)nd;
		}
		o.n_shapes = n;
		o.shape_names = names;
		o.shape_ndims = ndims;
		o.shapes = shapes;
	}
	st = onnx_import(tm_params_get_string(p, "path"), &o, m, NULL, err);
	for (size_t k = 0; !st && k < n; k++)
		if (!tm_model_find_tensor(m, names[k]))
			st = tm_params_error(p, "inputs", err,
					     TM_ERR_NOT_FOUND,
					     "the graph has no input '%s'",
					     names[k]);
out:
	free(names);
	free(shapes);
	free(ndims);
	return st;
}

static const tm_frontend_ops ops = {
	.load = onnx_load,
	.flags = TM_FRONTEND_GIVES_QUANT,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_FRONTEND, "onnx", "1.0",
		 "ONNX models: float, QDQ and QOperator graphs, opsets 1-17",
		 onnx_params, &ops)
