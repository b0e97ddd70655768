/* npy — a network described as a list of layers whose weights are .npy
 * files, as saved from a PyTorch state_dict:
 *
 *	for k, v in model.state_dict().items():
 *		numpy.save(f"weights/{k}.npy", v.numpy())
 *
 * Layers follow PyTorch's conventions: Linear weight [out, in], Conv2d
 * weight [O, C/groups, kh, kw], BatchNorm2d weight, bias, running_mean,
 * running_var and eps, pools whose stride defaults to their kernel, dims
 * that count the batch as 0. A layer's constants are the files its YAML
 * names, else <dir>/<layer>.<key>.npy (the state_dict layout), so most
 * layers need no file names at all. Attributes go onto the node; the core
 * checks shapes when it finalizes the model.
 *
 * add and concat read several tensors: inputs: [a, b] (an item may also
 * hold several names separated by commas or blanks: "a, b"). */
#define _POSIX_C_SOURCE 200809L	/* access() under -std=c99 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tmpipe/npy.h>
#include <tmpipe/tmpipe.h>

/* What a layer may set besides name, op and input(s). */
enum {
	F_WEIGHT = 1u << 0,
	F_BIAS = 1u << 1,
	F_RUNNING = 1u << 2,	/* running_mean, running_var */
	F_KERNEL = 1u << 3,
	F_STRIDE = 1u << 4,
	F_PADDING = 1u << 5,
	F_DILATION = 1u << 6,
	F_GROUPS = 1u << 7,
	F_EPS = 1u << 8,
	F_ALPHA = 1u << 9,
	F_MINMAX = 1u << 10,	/* min, max */
	F_AXIS = 1u << 11,	/* axis, dim */
	F_SHAPE = 1u << 12,
	F_CIP = 1u << 13,	/* count_include_pad */
	F_START_DIM = 1u << 14,
	F_INPUTS = 1u << 15	/* several inputs */
};

typedef struct layer_op {
	const char *name;
	tm_op op;
	unsigned fields;
} layer_op;

/* The pipeline's op names: the IR's, plus relu6 (a clip to [0, 6]). */
static const layer_op layer_ops[] = {
	{ "dense", TM_OP_DENSE, F_WEIGHT | F_BIAS },
	{ "matmul", TM_OP_MATMUL, F_WEIGHT },
	{ "conv2d", TM_OP_CONV2D, F_WEIGHT | F_BIAS | F_KERNEL | F_STRIDE |
				  F_PADDING | F_DILATION | F_GROUPS },
	{ "batchnorm", TM_OP_BATCHNORM, F_WEIGHT | F_BIAS | F_RUNNING |
					F_EPS },
	{ "relu", TM_OP_RELU, 0 },
	{ "relu6", TM_OP_CLIP, 0 },
	{ "clip", TM_OP_CLIP, F_MINMAX },
	{ "leaky_relu", TM_OP_LEAKY_RELU, F_ALPHA },
	{ "sigmoid", TM_OP_SIGMOID, 0 },
	{ "tanh", TM_OP_TANH, 0 },
	{ "softmax", TM_OP_SOFTMAX, F_AXIS },
	{ "maxpool2d", TM_OP_MAXPOOL2D, F_KERNEL | F_STRIDE | F_PADDING |
					F_DILATION },
	{ "avgpool2d", TM_OP_AVGPOOL2D, F_KERNEL | F_STRIDE | F_PADDING |
					F_CIP },
	{ "global_avgpool", TM_OP_GLOBAL_AVGPOOL, 0 },
	{ "flatten", TM_OP_FLATTEN, F_START_DIM },
	{ "reshape", TM_OP_RESHAPE, F_SHAPE },
	{ "add", TM_OP_ADD, F_INPUTS | F_BIAS },
	{ "concat", TM_OP_CONCAT, F_INPUTS | F_AXIS },
};

#define N_LAYER_OPS (sizeof layer_ops / sizeof layer_ops[0])

/* In the order of layer_ops. */
static const char *const ops[] = {
	"dense", "matmul", "conv2d", "batchnorm", "relu", "relu6", "clip",
	"leaky_relu", "sigmoid", "tanh", "softmax", "maxpool2d", "avgpool2d",
	"global_avgpool", "flatten", "reshape", "add", "concat", NULL
};

/* Which field needs which bit, to refuse one the op does not read. */
static const struct {
	const char *key;
	unsigned bit;
} field_bits[] = {
	{ "inputs", F_INPUTS }, { "weight", F_WEIGHT }, { "bias", F_BIAS },
	{ "running_mean", F_RUNNING }, { "running_var", F_RUNNING },
	{ "kernel", F_KERNEL }, { "stride", F_STRIDE },
	{ "padding", F_PADDING }, { "dilation", F_DILATION },
	{ "groups", F_GROUPS }, { "eps", F_EPS }, { "alpha", F_ALPHA },
	{ "min", F_MINMAX }, { "max", F_MINMAX }, { "axis", F_AXIS },
	{ "dim", F_AXIS }, { "shape", F_SHAPE },
	{ "count_include_pad", F_CIP }, { "start_dim", F_START_DIM },
};

static const tm_param_spec layer_fields[] = {
	{ .name = "name", .type = TM_PARAM_STRING, .flags = TM_PARAM_REQUIRED,
	  .help = "the layer's output tensor (and its state_dict prefix)" },
	{ .name = "op", .type = TM_PARAM_STRING, .flags = TM_PARAM_REQUIRED,
	  .choices = ops,
	  .help = "what the layer computes, as the PyTorch module of that "
	  "name" },
	{ .name = "input", .type = TM_PARAM_STRING,
	  .help = "the tensor it reads: a model input or an earlier layer" },
	{ .name = "inputs", .type = TM_PARAM_STRING_LIST,
	  .help = "add, concat: the tensors it reads, [a, b]" },
	{ .name = "weight", .type = TM_PARAM_STRING,
	  .help = ".npy relative to dir (default <name>.weight.npy): dense "
	  "[out, in], matmul [K, N], conv2d [O, C/groups, kh, kw], "
	  "batchnorm gamma" },
	{ .name = "bias", .type = TM_PARAM_STRING,
	  .help = ".npy (default <name>.bias.npy, optional): dense, conv2d "
	  "[out], batchnorm beta; add: the constant operand" },
	{ .name = "running_mean", .type = TM_PARAM_STRING,
	  .help = "batchnorm: .npy (default <name>.running_mean.npy)" },
	{ .name = "running_var", .type = TM_PARAM_STRING,
	  .help = "batchnorm: .npy (default <name>.running_var.npy)" },
	{ .name = "kernel", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN, .min = 1,
	  .help = "pools (required), conv2d (checked): [k] or [kh, kw]" },
	{ .name = "stride", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN, .min = 1,
	  .help = "[s] or [sh, sw]; default 1, pools: the kernel" },
	{ .name = "padding", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN, .min = 0,
	  .help = "[p], [ph, pw] or [top, left, bottom, right]; default 0" },
	{ .name = "dilation", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN, .min = 1,
	  .help = "conv2d, maxpool2d: [d] or [dh, dw]; default 1" },
	{ .name = "groups", .type = TM_PARAM_INT, .def = "1",
	  .flags = TM_PARAM_HAS_MIN, .min = 1,
	  .help = "conv2d: channel groups (= channels: depthwise)" },
	{ .name = "eps", .type = TM_PARAM_FLOAT, .def = "1e-5",
	  .flags = TM_PARAM_HAS_MIN, .min = 0,
	  .help = "batchnorm: added to the variance" },
	{ .name = "alpha", .type = TM_PARAM_FLOAT, .def = "0.01",
	  .help = "leaky_relu: PyTorch's negative_slope" },
	{ .name = "min", .type = TM_PARAM_FLOAT,
	  .help = "clip: lower bound (default none)" },
	{ .name = "max", .type = TM_PARAM_FLOAT,
	  .help = "clip: upper bound (default none)" },
	{ .name = "axis", .type = TM_PARAM_INT,
	  .help = "softmax, concat: as dim" },
	{ .name = "dim", .type = TM_PARAM_INT,
	  .help = "softmax (default -1), concat (default 1): PyTorch's dim, "
	  "the batch being 0" },
	{ .name = "shape", .type = TM_PARAM_INT_LIST,
	  .flags = TM_PARAM_HAS_MIN, .min = -1,
	  .help = "reshape: shape of one sample (-1 inferred, 0 kept)" },
	{ .name = "count_include_pad", .type = TM_PARAM_BOOL, .def = "true",
	  .help = "avgpool2d: padding counts in the divisor" },
	{ .name = "start_dim", .type = TM_PARAM_INT, .def = "1",
	  .flags = TM_PARAM_HAS_MIN, .min = 1,
	  .help = "flatten: first dim merged, the batch being 0" },
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
	  .help = "layers in order: {name, op, input, weight, bias, ...}" },
	TM_PARAM_END
};

/* Room for a tensor or file name built from a layer name. */
#define NAME_MAX_LEN 512
/* Inputs of one add or concat. */
#define MAX_INPUTS 64

/* One layer being built. */
typedef struct layer {
	tm_model *m;
	const tm_params *p;
	const char *dir;
	const char *name;
	const layer_op *op;
	tm_op ir_op;			/* the node's: op->op, or reshape
					 * for a flatten the IR cannot
					 * express */
	const char *in[MAX_INPUTS + 5];	/* data inputs, then constants */
	size_t n_in;
	char names[4][NAME_MAX_LEN];	/* constants' tensor names (at
					 * most 4: batchnorm's) */
	int n_names;
	char *inputs_buf;		/* inputs, split (in[] points here) */
	tm_attrs attrs;			/* what goes onto the node */
	int64_t kernel[2];		/* conv2d: of the weight */
} layer;

/* dir/file, or file when it is absolute; NULL when out of memory. A
 * trailing "/." or "/" of dir (the default dir is the pipeline's folder
 * with "." resolved against it) is left out of messages. */
static char *
join(const char *dir, const char *file)
{
	size_t dl = strlen(dir), len = dl + strlen(file) + 2;
	char *path = malloc(len);

	if (!path)
		return NULL;
	for (;;) {
		if (dl > 2 && dir[dl - 1] == '.' && dir[dl - 2] == '/')
			dl -= 2;
		else if (dl > 1 && dir[dl - 1] == '/')
			dl--;
		else
			break;
	}
	if (file[0] == '/')
		snprintf(path, len, "%s", file);
	else if (dl == 1 && dir[0] == '.')
		snprintf(path, len, "%s", file);
	else
		snprintf(path, len, "%.*s/%s", (int)dl, dir, file);
	return path;
}

/* Puts err's message (from the core, without a position) at key's line:
 * the user sees which layer it is about. */
static tm_status
at_key(const layer *l, const char *key, tm_status st, tm_error *err)
{
	char msg[TM_ERROR_MSG_MAX];

	snprintf(msg, sizeof msg, "%s", err->msg);
	tm_error_clear(err);
	return tm_params_error(l->p, key, err, st, "%s", msg);
}

/* Loads path as constant tensor, with the given rank (-1: any, for add).
 * With out, the array stays in *out for the caller (to free). */
static tm_status
load_const(layer *l, const char *key, const char *path, const char *tensor,
	   int rank, tm_npy *out, tm_error *err)
{
	tm_npy a = { 0 };
	tm_error lerr;
	tm_status st;

	tm_error_clear(&lerr);
	st = tm_npy_load(path, &a, &lerr);
	if (st) {
		char msg[TM_ERROR_MSG_MAX + 64];

		tm_error_format(&lerr, msg, sizeof msg);
		return tm_params_error(l->p, key, err, st, "%s", msg);
	}
	if (rank >= 0 && a.ndim != rank) {
		st = tm_params_error(l->p, key, err, TM_ERR_INVALID,
				     "%s: '%s' has %d dimensions, expected %d",
				     path, tensor, a.ndim, rank);
		goto out;
	}
	if (rank < 0) {
		/* add's operand, as PyTorch broadcasts it against a batch:
		 * leading 1s change no value, and one beyond the sample's
		 * rank stands for the batch ([1, C, 1, 1] is [C, 1, 1]). */
		while (a.ndim > 1 && a.shape[0] == 1) {
			memmove(a.shape, a.shape + 1,
				(size_t)(a.ndim - 1) * sizeof *a.shape);
			a.ndim--;
		}
	}
	if (a.ndim == 0) {
		/* A scalar: the IR wants at least one dimension. */
		a.ndim = 1;
		a.shape[0] = 1;
	}
	st = tm_model_add_const(l->m, tensor, a.ndim, a.shape, a.data, err);
	if (st) {
		char msg[TM_ERROR_MSG_MAX];

		snprintf(msg, sizeof msg, "%s: %s", path, err->msg);
		tm_error_clear(err);
		st = tm_params_error(l->p, key, err, st, "%s", msg);
		goto out;
	}
	if (out) {
		*out = a;
		return TM_OK;
	}
out:
	tm_npy_fini(&a);
	return st;
}

/* Operand key of the layer: the file the user named, else the
 * state_dict file <dir>/<name>.<key>.npy. A missing required operand
 * names the file looked for. Adds the tensor <name>.<key> and appends it
 * to the node's inputs; *found says whether there was one. */
static tm_status
operand(layer *l, const char *key, int rank, int required, const char *what,
	tm_npy *out, int *found, tm_error *err)
{
	char file[NAME_MAX_LEN], *tensor = l->names[l->n_names];
	char *path;
	tm_status st;

	*found = 0;
	if (strlen(l->name) + strlen(key) + 6 > NAME_MAX_LEN)
		return tm_params_error(l->p, "name", err, TM_ERR_INVALID,
				       "layer '%.64s...': name too long",
				       l->name);
	snprintf(tensor, NAME_MAX_LEN, "%s.%s", l->name, key);
	if (tm_params_is_set(l->p, key)) {
		path = join(l->dir, tm_params_get_string(l->p, key));
	} else {
		snprintf(file, sizeof file, "%s.%s.npy", l->name, key);
		path = join(l->dir, file);
		if (path && access(path, F_OK) != 0 && errno == ENOENT) {
			if (required)
				st = tm_params_error(
					l->p, NULL, err, TM_ERR_NOT_FOUND,
					"layer '%s': no '%s:' given and %s "
					"does not exist; %s needs %s",
					l->name, key, path, l->op->name, what);
			else
				st = TM_OK;
			free(path);
			return st;
		}
	}
	if (!path)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	st = load_const(l, key, path, tensor, rank, out, err);
	free(path);
	if (st)
		return st;
	l->in[l->n_in++] = tensor;
	l->n_names++;
	*found = 1;
	return TM_OK;
}

/* A constant of n values, all v (batchnorm without affine parameters). */
static tm_status
filled_const(layer *l, const char *key, int64_t n, float v, tm_error *err)
{
	char *tensor = l->names[l->n_names];
	float *data = malloc((size_t)(n > 0 ? n : 1) * sizeof *data);
	tm_status st;

	if (!data)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (int64_t i = 0; i < n; i++)
		data[i] = v;
	snprintf(tensor, NAME_MAX_LEN, "%s.%s", l->name, key);
	st = tm_model_add_const(l->m, tensor, 1, &n, data, err);
	free(data);
	if (st)
		return at_key(l, NULL, st, err);
	l->in[l->n_in++] = tensor;
	l->n_names++;
	return TM_OK;
}

/* --- inputs ------------------------------------------------------------ */

static tm_status
add_input(layer *l, const char *key, const char *name, tm_error *err)
{
	if (!tm_model_find_tensor(l->m, name))
		return tm_params_error(l->p, key, err, TM_ERR_NOT_FOUND,
				       "layer '%s': input '%s' is neither a "
				       "model input nor an earlier layer",
				       l->name, name);
	if (l->n_in >= MAX_INPUTS)
		return tm_params_error(l->p, key, err, TM_ERR_INVALID,
				       "layer '%s': more than %d inputs",
				       l->name, MAX_INPUTS);
	l->in[l->n_in++] = name;
	return TM_OK;
}

/* inputs: a list of names ([a, b]); each item may also hold several
 * names separated by commas or blanks ("a, b", a b). */
static tm_status
split_inputs(layer *l, tm_error *err)
{
	const char *const *v = tm_params_get_strings(l->p, "inputs");
	size_t n = tm_params_list_len(l->p, "inputs"), len = 0;
	char *p;
	tm_status st;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	l->inputs_buf = malloc(len + 1);
	if (!l->inputs_buf)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	/* One buffer, items joined by blanks, cut in place below. */
	p = l->inputs_buf;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(v[i]);

		memcpy(p, v[i], k);
		p[k] = ' ';
		p += k + 1;
	}
	*p = '\0';
	for (p = l->inputs_buf; *p;) {
		char *start;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		if (*p)
			*p++ = '\0';
		st = add_input(l, "inputs", start, err);
		if (st)
			return st;
	}
	if (l->n_in == 0)
		return tm_params_error(l->p, "inputs", err, TM_ERR_INVALID,
				       "layer '%s': 'inputs' names no tensor",
				       l->name);
	return TM_OK;
}

static tm_status
read_inputs(layer *l, tm_error *err)
{
	int has_in = tm_params_is_set(l->p, "input");
	int has_ins = tm_params_is_set(l->p, "inputs");

	if (has_in && has_ins)
		return tm_params_error(l->p, "inputs", err, TM_ERR_INVALID,
				       "layer '%s': give 'input' or 'inputs', "
				       "not both", l->name);
	if (has_ins)
		return split_inputs(l, err);
	if (!has_in)
		return tm_params_error(l->p, NULL, err, TM_ERR_INVALID,
				       "layer '%s': missing 'input' (the "
				       "tensor it reads)%s", l->name,
				       l->op->fields & F_INPUTS
					       ? " or 'inputs'" : "");
	return add_input(l, "input", tm_params_get_string(l->p, "input"),
			 err);
}

/* --- attributes -------------------------------------------------------- */

/* kernel, stride, dilation: [v] or [h, w]. */
static tm_status
get_pair(const layer *l, const char *key, int64_t out[2], tm_error *err)
{
	size_t n = tm_params_list_len(l->p, key);
	const int64_t *v = tm_params_get_ints(l->p, key);

	if (n != 1 && n != 2)
		return tm_params_error(l->p, key, err, TM_ERR_INVALID,
				       "layer '%s': %s takes 1 or 2 values "
				       "([%s] or [%sh, %sw]), got %zu",
				       l->name, key, key, key, key, n);
	out[0] = v[0];
	out[1] = v[n - 1];
	return TM_OK;
}

/* padding: p, (ph, pw) as PyTorch, or (top, left, bottom, right). */
static tm_status
get_padding(const layer *l, int64_t pads[4], tm_error *err)
{
	size_t n = tm_params_list_len(l->p, "padding");
	const int64_t *v = tm_params_get_ints(l->p, "padding");

	switch (n) {
	case 1:
		pads[0] = pads[1] = pads[2] = pads[3] = v[0];
		return TM_OK;
	case 2:
		pads[0] = pads[2] = v[0];
		pads[1] = pads[3] = v[1];
		return TM_OK;
	case 4:
		memcpy(pads, v, 4 * sizeof *v);
		return TM_OK;
	default:
		return tm_params_error(l->p, "padding", err, TM_ERR_INVALID,
				       "layer '%s': padding takes 1, 2 or 4 "
				       "values ([p], [ph, pw] or [top, left, "
				       "bottom, right]), got %zu", l->name, n);
	}
}

/* dim or axis, PyTorch's (the batch is 0), made per sample. */
static tm_status
get_axis(const layer *l, int64_t def, int64_t *axis, tm_error *err)
{
	const char *key = tm_params_is_set(l->p, "dim") ? "dim" : "axis";
	int64_t d;

	if (tm_params_is_set(l->p, "dim") && tm_params_is_set(l->p, "axis"))
		return tm_params_error(l->p, "axis", err, TM_ERR_INVALID,
				       "layer '%s': give 'dim' or 'axis', not "
				       "both", l->name);
	d = tm_params_is_set(l->p, key) ? tm_params_get_int(l->p, key) : def;
	if (d == 0)
		return tm_params_error(l->p, key, err, TM_ERR_INVALID,
				       "layer '%s': %s 0 is the batch; tmpipe "
				       "runs %s on one sample at a time (dims "
				       "count the batch as 0, as in PyTorch: "
				       "channels are 1)", l->name, key,
				       l->op->name);
	/* From the end, the batch changes nothing. */
	*axis = d > 0 ? d - 1 : d;
	return TM_OK;
}

static tm_status
window_attrs(layer *l, tm_error *err)
{
	tm_attrs *a = &l->attrs;
	int pool = l->op->op != TM_OP_CONV2D;
	tm_status st;

	if (tm_params_is_set(l->p, "kernel")) {
		st = get_pair(l, "kernel", a->kernel, err);
		if (st)
			return st;
	} else if (pool) {
		return tm_params_error(l->p, NULL, err, TM_ERR_INVALID,
				       "layer '%s': %s needs 'kernel:' ([k] "
				       "or [kh, kw])", l->name, l->op->name);
	}
	if (tm_params_is_set(l->p, "stride")) {
		st = get_pair(l, "stride", a->stride, err);
		if (st)
			return st;
	} else if (pool) {
		/* PyTorch's pools: stride defaults to the kernel. */
		a->stride[0] = a->kernel[0];
		a->stride[1] = a->kernel[1];
	}
	if (tm_params_is_set(l->p, "dilation")) {
		st = get_pair(l, "dilation", a->dilation, err);
		if (st)
			return st;
	}
	if (tm_params_is_set(l->p, "padding")) {
		st = get_padding(l, a->pads, err);
		if (st)
			return st;
	}
	return TM_OK;
}

/* The attributes of every op but the windows', which need the weight. */
static tm_status
simple_attrs(layer *l, tm_error *err)
{
	tm_attrs *a = &l->attrs;
	const tm_params *p = l->p;
	int64_t sd;

	switch (l->op->op) {
	case TM_OP_CLIP:
		if (!(l->op->fields & F_MINMAX)) {
			a->clip_min = 0.0f;	/* relu6 */
			a->clip_max = 6.0f;
			break;
		}
		if (!tm_params_is_set(p, "min") && !tm_params_is_set(p, "max"))
			return tm_params_error(p, NULL, err, TM_ERR_INVALID,
					       "layer '%s': clip needs 'min:', "
					       "'max:' or both", l->name);
		if (tm_params_is_set(p, "min"))
			a->clip_min = (float)tm_params_get_float(p, "min");
		if (tm_params_is_set(p, "max"))
			a->clip_max = (float)tm_params_get_float(p, "max");
		if (a->clip_min > a->clip_max)
			return tm_params_error(p, "max", err, TM_ERR_INVALID,
					       "layer '%s': max %g is below "
					       "min %g", l->name,
					       (double)a->clip_max,
					       (double)a->clip_min);
		break;
	case TM_OP_LEAKY_RELU:
		a->alpha = (float)tm_params_get_float(p, "alpha");
		break;
	case TM_OP_BATCHNORM:
		a->epsilon = (float)tm_params_get_float(p, "eps");
		break;
	case TM_OP_SOFTMAX:
		return get_axis(l, -1, &a->axis, err);
	case TM_OP_CONCAT:
		return get_axis(l, 1, &a->axis, err);
	case TM_OP_FLATTEN:
		sd = tm_params_get_int(p, "start_dim");
		if (sd <= 2) {
			a->axis = sd - 1;
			break;
		}
		/* The IR's flatten at axis a > 1 also merges the dims
		 * before a; PyTorch keeps them: a reshape to [0, ..., 0,
		 * -1] keeps them (0 copies a dim, -1 takes the rest). */
		if (sd - 1 >= TM_MAX_DIMS)
			return tm_params_error(p, "start_dim", err,
					       TM_ERR_INVALID,
					       "layer '%s': start_dim %lld is "
					       "beyond the %d dims of a "
					       "sample", l->name,
					       (long long)sd, TM_MAX_DIMS);
		l->ir_op = TM_OP_RESHAPE;
		a->shape_ndim = (int)sd;
		for (int i = 0; i < a->shape_ndim - 1; i++)
			a->shape[i] = 0;
		a->shape[a->shape_ndim - 1] = -1;
		break;
	case TM_OP_RESHAPE: {
		size_t n = tm_params_list_len(p, "shape");

		if (!tm_params_is_set(p, "shape") || n == 0 ||
		    n > TM_MAX_DIMS)
			return tm_params_error(p, tm_params_is_set(p, "shape")
					       ? "shape" : NULL, err,
					       TM_ERR_INVALID,
					       "layer '%s': reshape needs "
					       "'shape:', the shape of one "
					       "sample without the batch (1 to "
					       "%d values)", l->name,
					       TM_MAX_DIMS);
		a->shape_ndim = (int)n;
		memcpy(a->shape, tm_params_get_ints(p, "shape"),
		       n * sizeof *a->shape);
		break;
	}
	default:
		break;
	}
	return TM_OK;
}

/* Refuses a field the op does not read: a typo or a wrong op. */
static tm_status
check_fields(const layer *l, tm_error *err)
{
	for (size_t i = 0; i < sizeof field_bits / sizeof field_bits[0]; i++) {
		const char *key = field_bits[i].key;

		if (!tm_params_is_set(l->p, key) ||
		    (l->op->fields & field_bits[i].bit))
			continue;
		if (!strcmp(key, "weight") || !strcmp(key, "bias"))
			return tm_params_error(l->p, key, err, TM_ERR_INVALID,
					       "layer '%s': %s takes no "
					       "weights", l->name,
					       l->op->name);
		if (!strcmp(key, "inputs"))
			return tm_params_error(l->p, key, err, TM_ERR_INVALID,
					       "layer '%s': %s reads one "
					       "'input'; 'inputs' is for add "
					       "and concat", l->name,
					       l->op->name);
		return tm_params_error(l->p, key, err, TM_ERR_INVALID,
				       "layer '%s': %s takes no '%s'",
				       l->name, l->op->name, key);
	}
	return TM_OK;
}

/* --- constants by op --------------------------------------------------- */

static tm_status
weights_of(layer *l, tm_error *err)
{
	tm_npy w = { 0 };
	int found;
	tm_status st;

	switch (l->op->op) {
	case TM_OP_DENSE:
		st = operand(l, "weight", 2, 1, "a weight [out, in]", NULL,
			     &found, err);
		if (!st)
			st = operand(l, "bias", 1, 0, NULL, NULL, &found,
				     err);
		return st;
	case TM_OP_MATMUL:
		return operand(l, "weight", 2, 1, "a weight [K, N]", NULL,
			       &found, err);
	case TM_OP_CONV2D:
		st = operand(l, "weight", 4, 1,
			     "a weight [O, C/groups, kh, kw]", &w, &found,
			     err);
		if (st)
			return st;
		l->kernel[0] = w.shape[2];
		l->kernel[1] = w.shape[3];
		tm_npy_fini(&w);
		return operand(l, "bias", 1, 0, NULL, NULL, &found, err);
	case TM_OP_BATCHNORM: {
		const char *in0 = l->in[0];
		int has_w, has_b;
		int64_t c;

		/* The node's operands are (x, gamma, beta, mean, var):
		 * mean and var come first here as gamma and beta may be
		 * absent (affine=False) and are then made from them. */
		l->n_in = 0;
		st = operand(l, "running_mean", 1, 1, "the running mean",
			     &w, &found, err);
		if (st)
			return st;
		c = w.shape[0];
		tm_npy_fini(&w);
		st = operand(l, "running_var", 1, 1, "the running variance",
			     NULL, &found, err);
		if (!st)
			st = operand(l, "weight", 1, 0, NULL, NULL, &has_w,
				     err);
		if (!st && !has_w)
			st = filled_const(l, "weight", c, 1.0f, err);
		if (!st)
			st = operand(l, "bias", 1, 0, NULL, NULL, &has_b,
				     err);
		if (!st && !has_b)
			st = filled_const(l, "bias", c, 0.0f, err);
		if (st)
			return st;
		/* in[] is (mean, var, gamma, beta): reorder. */
		{
			const char *mean = l->in[0], *var = l->in[1];

			l->in[0] = in0;
			l->in[1] = l->in[2];
			l->in[2] = l->in[3];
			l->in[3] = mean;
			l->in[4] = var;
			l->n_in = 5;
		}
		return TM_OK;
	}
	case TM_OP_ADD:
		if (l->n_in == 2) {
			if (tm_params_is_set(l->p, "bias"))
				return tm_params_error(
					l->p, "bias", err, TM_ERR_INVALID,
					"layer '%s': add takes two inputs, or "
					"one input and a constant 'bias', not "
					"both", l->name);
			return TM_OK;
		}
		if (l->n_in != 1)
			return tm_params_error(l->p, "inputs", err,
					       TM_ERR_INVALID,
					       "layer '%s': add takes two "
					       "inputs, got %zu", l->name,
					       l->n_in);
		return operand(l, "bias", -1, 1,
			       "a second input or a constant to add (the "
			       "shape of one sample, or one that broadcasts "
			       "to it, such as [C, 1, 1])", NULL, &found,
			       err);
	default:
		return TM_OK;
	}
}

/* --- layers ------------------------------------------------------------ */

static tm_status
build_layer(layer *l, tm_error *err)
{
	const char *opname = tm_params_get_string(l->p, "op");
	tm_node *node;
	tm_status st;

	for (size_t i = 0; i < N_LAYER_OPS; i++)
		if (strcmp(layer_ops[i].name, opname) == 0)
			l->op = &layer_ops[i];
	if (!l->op)
		return tm_params_error(l->p, "op", err, TM_ERR_INVALID,
				       "unknown op '%s'", opname);
	l->ir_op = l->op->op;
	st = check_fields(l, err);
	if (!st)
		st = read_inputs(l, err);
	if (!st)
		st = simple_attrs(l, err);
	if (!st)
		st = weights_of(l, err);
	if (st)
		return st;
	if (l->op->op == TM_OP_CONV2D || l->op->op == TM_OP_MAXPOOL2D ||
	    l->op->op == TM_OP_AVGPOOL2D) {
		st = window_attrs(l, err);
		if (st)
			return st;
	}
	if (l->op->op == TM_OP_CONV2D) {
		int64_t *k = l->attrs.kernel;

		if (tm_params_is_set(l->p, "kernel") &&
		    (k[0] != l->kernel[0] || k[1] != l->kernel[1]))
			return tm_params_error(l->p, "kernel", err,
					       TM_ERR_INVALID,
					       "layer '%s': kernel %lldx%lld "
					       "does not match the weight's "
					       "%lldx%lld", l->name,
					       (long long)k[0], (long long)k[1],
					       (long long)l->kernel[0],
					       (long long)l->kernel[1]);
		k[0] = l->kernel[0];
		k[1] = l->kernel[1];
		l->attrs.group = tm_params_get_int(l->p, "groups");
	}
	if (l->op->op == TM_OP_AVGPOOL2D)
		l->attrs.count_include_pad =
			tm_params_get_bool(l->p, "count_include_pad");
	st = tm_model_add_node(l->m, l->name, l->ir_op, l->in, l->n_in,
			       &l->name, 1, &node, err);
	if (st)
		return at_key(l, "name", st, err);
	/* Everything but the IR's own defaults (set by add_node), which
	 * are PyTorch's too, comes from the layer. */
	switch (l->ir_op) {
	case TM_OP_CONV2D:
	case TM_OP_MAXPOOL2D:
	case TM_OP_AVGPOOL2D:
		memcpy(node->attrs.kernel, l->attrs.kernel,
		       sizeof node->attrs.kernel);
		memcpy(node->attrs.stride, l->attrs.stride,
		       sizeof node->attrs.stride);
		memcpy(node->attrs.pads, l->attrs.pads,
		       sizeof node->attrs.pads);
		memcpy(node->attrs.dilation, l->attrs.dilation,
		       sizeof node->attrs.dilation);
		node->attrs.group = l->attrs.group;
		node->attrs.count_include_pad = l->attrs.count_include_pad;
		break;
	case TM_OP_BATCHNORM:
		node->attrs.epsilon = l->attrs.epsilon;
		break;
	case TM_OP_CLIP:
		node->attrs.clip_min = l->attrs.clip_min;
		node->attrs.clip_max = l->attrs.clip_max;
		break;
	case TM_OP_LEAKY_RELU:
		node->attrs.alpha = l->attrs.alpha;
		break;
	case TM_OP_SOFTMAX:
	case TM_OP_CONCAT:
	case TM_OP_FLATTEN:
		node->attrs.axis = l->attrs.axis;
		break;
	case TM_OP_RESHAPE:
		node->attrs.shape_ndim = l->attrs.shape_ndim;
		memcpy(node->attrs.shape, l->attrs.shape,
		       sizeof node->attrs.shape);
		break;
	default:
		break;
	}
	return TM_OK;
}

static tm_status
add_layer(tm_model *m, const tm_params *p, const char *dir, tm_error *err)
{
	layer *l = calloc(1, sizeof *l);
	tm_status st;

	if (!l)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	l->m = m;
	l->p = p;
	l->dir = dir;
	l->name = tm_params_get_string(p, "name");
	/* The IR's defaults, which are PyTorch's: a field left out of the
	 * YAML keeps them. */
	l->attrs.stride[0] = l->attrs.stride[1] = 1;
	l->attrs.dilation[0] = l->attrs.dilation[1] = 1;
	l->attrs.group = 1;
	l->attrs.clip_min = -INFINITY;
	l->attrs.clip_max = INFINITY;
	st = build_layer(l, err);
	free(l->inputs_buf);
	free(l);
	return st;
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
