/* npy — a network described as a list of layers whose weights are .npy
 * files, as saved from a PyTorch state_dict:
 *
 *	for k, v in model.state_dict().items():
 *		numpy.save(f"weights/{k}.npy", v.numpy())
 *
 * Layers follow PyTorch's conventions (Linear weight [out, in]). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>

static const char *const ops[] = { "dense", "relu", "sigmoid", NULL };

static const tm_param_spec layer_fields[] = {
	{ .name = "name", .type = TM_PARAM_STRING, .flags = TM_PARAM_REQUIRED,
	  .help = "the layer's output tensor" },
	{ .name = "op", .type = TM_PARAM_STRING, .flags = TM_PARAM_REQUIRED,
	  .choices = ops, .help = "dense, relu or sigmoid" },
	{ .name = "input", .type = TM_PARAM_STRING,
	  .flags = TM_PARAM_REQUIRED,
	  .help = "the tensor it reads: a model input or an earlier layer" },
	{ .name = "weight", .type = TM_PARAM_STRING,
	  .help = "dense: .npy of [out, in], relative to dir" },
	{ .name = "bias", .type = TM_PARAM_STRING,
	  .help = "dense: .npy of [out], relative to dir (optional)" },
	TM_PARAM_END
};

static const tm_param_spec shape_field[] = {
	{ .name = "shape", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 1,
	  .max = 1 << 30, .help = "shape of one sample" },
	TM_PARAM_END
};

static const tm_param_spec npy_params[] = {
	{ .name = "dir", .type = TM_PARAM_PATH, .def = ".",
	  .help = "folder of the .npy files (relative to the pipeline)" },
	{ .name = "inputs", .type = TM_PARAM_MAP, .flags = TM_PARAM_REQUIRED,
	  .fields = shape_field,
	  .help = "model inputs: name: [shape of one sample]" },
	{ .name = "layers", .type = TM_PARAM_LIST, .flags = TM_PARAM_REQUIRED,
	  .fields = layer_fields,
	  .help = "layers in order: {name, op, input, weight, bias}" },
	TM_PARAM_END
};

/* Loads dir/file as constant tensor name, with the expected rank. */
static tm_status
load_const(tm_model *m, const tm_params *layer, const char *key,
	   const char *dir, const char *tensor, int rank, tm_error *err)
{
	const char *file = tm_params_get_string(layer, key);
	tm_npy a = { 0 };
	tm_error lerr;
	char *path;
	size_t len;
	tm_status st;

	len = strlen(dir) + strlen(file) + 2;
	path = malloc(len);
	if (!path)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	if (file[0] == '/')
		snprintf(path, len, "%s", file);
	else
		snprintf(path, len, "%s/%s", dir, file);
	tm_error_clear(&lerr);
	st = tm_npy_load(path, &a, &lerr);
	if (st) {
		char msg[TM_ERROR_MSG_MAX + 64];

		free(path);
		tm_error_format(&lerr, msg, sizeof msg);
		return tm_params_error(layer, key, err, st, "%s", msg);
	}
	if (a.ndim != rank) {
		st = tm_params_error(layer, key, err, TM_ERR_INVALID,
				     "%s: '%s' has %d dimensions, expected %d",
				     path, tensor, a.ndim, rank);
		goto out;
	}
	st = tm_model_add_const(m, tensor, a.ndim, a.shape, a.data, err);
	if (st) {
		char msg[TM_ERROR_MSG_MAX];

		/* Put the user's line on it. */
		snprintf(msg, sizeof msg, "%s: %s", path, err->msg);
		tm_error_clear(err);
		st = tm_params_error(layer, key, err, st, "%s", msg);
	}
out:
	free(path);
	tm_npy_fini(&a);
	return st;
}

static tm_status
add_layer(tm_model *m, const tm_params *layer, const char *dir,
	  tm_error *err)
{
	const char *name = tm_params_get_string(layer, "name");
	const char *opname = tm_params_get_string(layer, "op");
	const char *input = tm_params_get_string(layer, "input");
	int has_w = tm_params_is_set(layer, "weight");
	int has_b = tm_params_is_set(layer, "bias");
	const char *in[3];
	size_t n_in = 1;
	char wname[256], bname[256];
	tm_op op;
	tm_status st;

	if (tm_op_from_name(opname, &op))
		return tm_params_error(layer, "op", err, TM_ERR_INVALID,
				       "unknown op '%s'", opname);
	if (!tm_model_find_tensor(m, input))
		return tm_params_error(layer, "input", err, TM_ERR_NOT_FOUND,
				       "layer '%s': input '%s' is neither a "
				       "model input nor an earlier layer",
				       name, input);
	in[0] = input;
	if (op == TM_OP_DENSE) {
		if (!has_w)
			return tm_params_error(layer, NULL, err,
					       TM_ERR_INVALID,
					       "layer '%s': dense needs "
					       "'weight:' (a .npy of [out, "
					       "in])", name);
		snprintf(wname, sizeof wname, "%s.weight", name);
		st = load_const(m, layer, "weight", dir, wname, 2, err);
		if (st)
			return st;
		in[n_in++] = wname;
		if (has_b) {
			snprintf(bname, sizeof bname, "%s.bias", name);
			st = load_const(m, layer, "bias", dir, bname, 1, err);
			if (st)
				return st;
			in[n_in++] = bname;
		}
	} else if (has_w || has_b) {
		return tm_params_error(layer, has_w ? "weight" : "bias", err,
				       TM_ERR_INVALID,
				       "layer '%s': %s takes no weights",
				       name, opname);
	}
	st = tm_model_add_node(m, name, op, in, n_in, &name, 1, NULL, err);
	if (st) {
		char msg[TM_ERROR_MSG_MAX];

		snprintf(msg, sizeof msg, "%s", err->msg);
		tm_error_clear(err);
		return tm_params_error(layer, "name", err, st, "%s", msg);
	}
	return TM_OK;
}

static tm_status
npy_load(const tm_params *p, tm_model *m, tm_error *err)
{
	const char *dir = tm_params_get_string(p, "dir");
	size_t n_in = tm_params_list_len(p, "inputs");
	size_t n_layers = tm_params_list_len(p, "layers");
	tm_status st;

	if (n_in == 0)
		return tm_params_error(p, "inputs", err, TM_ERR_INVALID,
				       "inputs: declare at least one input "
				       "(e.g. {input: [3]})");
	if (n_layers == 0)
		return tm_params_error(p, "layers", err, TM_ERR_INVALID,
				       "layers: the list is empty");
	for (size_t i = 0; i < n_in; i++) {
		const tm_params *item = tm_params_item(p, "inputs", i);
		const char *name = tm_params_key(p, "inputs", i);
		size_t nd = tm_params_list_len(item, "shape");
		const int64_t *shape = tm_params_get_ints(item, "shape");

		if (nd == 0 || nd > TM_MAX_DIMS)
			return tm_params_error(item, "shape", err,
					       TM_ERR_INVALID,
					       "input '%s': a shape has 1 to "
					       "%d dimensions", name,
					       TM_MAX_DIMS);
		st = tm_model_add_input(m, name, (int)nd, shape, err);
		if (st)
			return st;
	}
	for (size_t i = 0; i < n_layers; i++) {
		st = add_layer(m, tm_params_item(p, "layers", i), dir, err);
		if (st)
			return st;
	}
	return TM_OK;
}

static const tm_frontend_ops npy_ops = {
	.load = npy_load,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_FRONTEND, "npy", "1.0",
		 "layer list with weights in .npy files (PyTorch state_dict)",
		 npy_params, &npy_ops)
