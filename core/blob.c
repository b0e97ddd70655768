/* tmpipe — the model writer: one intermediate (tmrt bundles and
 * deduplicated constant arrays) from which both a host tmrt_model and a
 * .tmb blob are made; see blob_priv.h and tmpipe-blob(5). */
#include "config.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_priv.h"

/* ---- The format's constants (tmpipe-blob(5)) -------------------------- */

#define HEADER_SIZE 64u
#define SECTION_ENTRY 16u
#define N_SECTIONS 4u
#define TENSOR_RECORD 32u
#define LAYER_HEADER 16u
#define CRC_START 28u
#define ALIGN 16u

enum { SEC_TENSORS = 1, SEC_LAYERS, SEC_IO, SEC_DATA };

static const uint8_t magic[8] = { 0x89, 'T', 'M', 'B', 0x0d, 0x0a, 0x1a,
				  0x0a };

/* ---- Bundle fields, in declaration order ------------------------------ */

#define I32(type, member)                                                   \
	{ #member, offsetof(type, member), TM_PRIV_BLOB_F_I32,              \
	  TM_PRIV_BLOB_WEIGHTS, 0 }
#define ARR(type, member, kind, role, opt)                                  \
	{ #member, offsetof(type, member), TM_PRIV_BLOB_F_##kind,           \
	  TM_PRIV_BLOB_##role, opt }
#define DIMS(type, member)                                                  \
	I32(type, member.n), I32(type, member.h), I32(type, member.w),      \
		I32(type, member.c)

/* Runs of fields that several bundles share, in the same order (as
 * libtmrt's loader reads them). */
#define WINDOW(type)                                                        \
	DIMS(type, input), DIMS(type, output),                              \
	I32(type, kernel_h), I32(type, kernel_w),                           \
	I32(type, stride_h), I32(type, stride_w),                           \
	I32(type, dilation_h), I32(type, dilation_w),                       \
	I32(type, pad_top), I32(type, pad_left),                            \
	I32(type, pad_bottom), I32(type, pad_right)
#define REQUANT(type)                                                       \
	ARR(type, weights, I8_ARRAY, WEIGHTS, 0),                           \
	ARR(type, bias, I32_ARRAY, BIAS, 1),                                \
	I32(type, input_zp), I32(type, output_zp),                          \
	ARR(type, multiplier, I32_ARRAY, MULTIPLIER, 0),                    \
	ARR(type, shift, I32_ARRAY, SHIFT, 0),                              \
	I32(type, n_requant), I32(type, act_min), I32(type, act_max)
#define POOL_QUANT(type)                                                    \
	I32(type, input_zp), I32(type, output_zp),                          \
	I32(type, multiplier), I32(type, shift),                            \
	I32(type, act_min), I32(type, act_max)

static const tm_priv_blob_field fc_fields[] = {
	I32(tmrt_fc_params, in_features),
	I32(tmrt_fc_params, out_features),
	REQUANT(tmrt_fc_params),
};

static const tm_priv_blob_field conv_fields[] = {
	WINDOW(tmrt_conv_params),
	I32(tmrt_conv_params, groups),
	REQUANT(tmrt_conv_params),
};

static const tm_priv_blob_field pool_fields[] = {
	WINDOW(tmrt_pool_params),
	I32(tmrt_pool_params, count_include_pad),
	POOL_QUANT(tmrt_pool_params),
};

static const tm_priv_blob_field global_pool_fields[] = {
	DIMS(tmrt_global_pool_params, input),
	POOL_QUANT(tmrt_global_pool_params),
};

static const tm_priv_blob_field add_fields[] = {
	I32(tmrt_add_params, size),
	I32(tmrt_add_params, in2_size),
	I32(tmrt_add_params, input1_zp),
	I32(tmrt_add_params, input2_zp),
	I32(tmrt_add_params, left_shift),
	I32(tmrt_add_params, input1_multiplier),
	I32(tmrt_add_params, input1_shift),
	I32(tmrt_add_params, input2_multiplier),
	I32(tmrt_add_params, input2_shift),
	I32(tmrt_add_params, output_multiplier),
	I32(tmrt_add_params, output_shift),
	I32(tmrt_add_params, output_zp),
	I32(tmrt_add_params, act_min),
	I32(tmrt_add_params, act_max),
};

static const tm_priv_blob_field concat_fields[] = {
	I32(tmrt_concat_params, outer),
	I32(tmrt_concat_params, inner),
	I32(tmrt_concat_params, n_inputs),
	{ "inputs", offsetof(tmrt_concat_params, inputs),
	  TM_PRIV_BLOB_F_CONCAT_INPUTS, TM_PRIV_BLOB_WEIGHTS, 0 },
	I32(tmrt_concat_params, output_zp),
};

static const tm_priv_blob_field lut_fields[] = {
	I32(tmrt_lut_params, size),
	ARR(tmrt_lut_params, table, I8_ARRAY, TABLE, 0),
};

static const tm_priv_blob_field softmax_fields[] = {
	I32(tmrt_softmax_params, outer),
	I32(tmrt_softmax_params, len),
	I32(tmrt_softmax_params, inner),
	ARR(tmrt_softmax_params, exp_table, I32_ARRAY, EXP_TABLE, 0),
	I32(tmrt_softmax_params, output_zp),
};

static const struct op_info {
	const char *name;
	const tm_priv_blob_field *fields;
	size_t n_fields;
	size_t bundle_size;
} ops[TMRT_OP_COUNT] = {
	[TMRT_OP_COPY] = { "copy", fc_fields, 0, 0 },
#define OP(op, name, f, type) [op] = { name, f, TM_ARRAY_LEN(f), sizeof(type) }
	OP(TMRT_OP_FULLY_CONNECTED, "fully_connected", fc_fields,
	   tmrt_fc_params),
	OP(TMRT_OP_CONV2D, "conv2d", conv_fields, tmrt_conv_params),
	OP(TMRT_OP_DEPTHWISE_CONV2D, "depthwise_conv2d", conv_fields,
	   tmrt_conv_params),
	OP(TMRT_OP_MAX_POOL2D, "max_pool2d", pool_fields, tmrt_pool_params),
	OP(TMRT_OP_AVG_POOL2D, "avg_pool2d", pool_fields, tmrt_pool_params),
	OP(TMRT_OP_GLOBAL_AVG_POOL, "global_avg_pool", global_pool_fields,
	   tmrt_global_pool_params),
	OP(TMRT_OP_ADD, "add", add_fields, tmrt_add_params),
	OP(TMRT_OP_CONCAT, "concat", concat_fields, tmrt_concat_params),
	OP(TMRT_OP_LUT, "lut", lut_fields, tmrt_lut_params),
	OP(TMRT_OP_SOFTMAX, "softmax", softmax_fields, tmrt_softmax_params),
#undef OP
};

static const char *const role_names[TM_PRIV_BLOB_ROLE_COUNT] = {
	"weights", "bias", "multiplier", "shift", "table", "exp_table",
};

static int
op_known(int32_t op)
{
	return op >= 0 && op < TMRT_OP_COUNT;
}

const tm_priv_blob_field *
tm_priv_blob_fields(int32_t op, size_t *n)
{
	*n = op_known(op) ? ops[op].n_fields : 0;
	return op_known(op) ? ops[op].fields : NULL;
}

const char *
tm_priv_blob_op_name(int32_t op)
{
	return op_known(op) ? ops[op].name : "unknown";
}

const char *
tm_priv_blob_role_name(tm_priv_blob_role role)
{
	return (unsigned)role < TM_PRIV_BLOB_ROLE_COUNT ? role_names[role]
							: "unknown";
}

static int32_t
get_i32(const void *p, size_t off)
{
	int32_t v;

	memcpy(&v, (const char *)p + off, sizeof v);
	return v;
}

/* An array field's pointer, read and written with its declared type. */
static const void *
get_array(const void *p, const tm_priv_blob_field *f)
{
	if (f->kind == TM_PRIV_BLOB_F_I8_ARRAY)
		return *(const int8_t *const *)((const char *)p + f->offset);
	return *(const int32_t *const *)((const char *)p + f->offset);
}

static void
set_array(void *p, const tm_priv_blob_field *f, const void *data)
{
	if (f->kind == TM_PRIV_BLOB_F_I8_ARRAY)
		*(const int8_t **)((char *)p + f->offset) =
			(const int8_t *)data;
	else
		*(const int32_t **)((char *)p + f->offset) =
			(const int32_t *)data;
}

static int
is_array(const tm_priv_blob_field *f)
{
	return f->kind == TM_PRIV_BLOB_F_I8_ARRAY ||
	       f->kind == TM_PRIV_BLOB_F_I32_ARRAY;
}

/* a * b for a, b >= 1, or -1 past UINT32_MAX (a blob's counts are
 * 32-bit). */
static int64_t
mul_cap(int64_t a, int64_t b)
{
	if (a < 1 || b < 1 || a > (int64_t)UINT32_MAX / b)
		return -1;
	return a * b;
}

/* n_requant's count, when it is 1 or the channel count. */
static int64_t
requant_len(int32_t n_requant, int32_t channels)
{
	return n_requant == 1 || n_requant == channels ? n_requant : -1;
}

int64_t
tm_priv_blob_array_len(int32_t op, const void *params,
		       tm_priv_blob_role role)
{
	if (!params)
		return -1;
	if (op == TMRT_OP_FULLY_CONNECTED) {
		const tmrt_fc_params *p = params;

		if (p->in_features < 1 || p->out_features < 1)
			return -1;
		switch (role) {
		case TM_PRIV_BLOB_WEIGHTS:
			return mul_cap(p->in_features, p->out_features);
		case TM_PRIV_BLOB_BIAS:
			return p->out_features;
		case TM_PRIV_BLOB_MULTIPLIER:
		case TM_PRIV_BLOB_SHIFT:
			return requant_len(p->n_requant, p->out_features);
		default:
			return -1;
		}
	}
	if (op == TMRT_OP_CONV2D || op == TMRT_OP_DEPTHWISE_CONV2D) {
		const tmrt_conv_params *p = params;
		int64_t n;

		if (p->input.c < 1 || p->output.c < 1)
			return -1;
		switch (role) {
		case TM_PRIV_BLOB_WEIGHTS:
			n = mul_cap(mul_cap(p->kernel_h, p->kernel_w),
				    p->output.c);
			if (op == TMRT_OP_DEPTHWISE_CONV2D)
				return n;
			if (p->groups < 1 || p->input.c % p->groups != 0)
				return -1;
			return mul_cap(n, p->input.c / p->groups);
		case TM_PRIV_BLOB_BIAS:
			return p->output.c;
		case TM_PRIV_BLOB_MULTIPLIER:
		case TM_PRIV_BLOB_SHIFT:
			return requant_len(p->n_requant, p->output.c);
		default:
			return -1;
		}
	}
	if ((op == TMRT_OP_LUT && role == TM_PRIV_BLOB_TABLE) ||
	    (op == TMRT_OP_SOFTMAX && role == TM_PRIV_BLOB_EXP_TABLE))
		return 256;
	return -1;
}

/* ---- The writer --------------------------------------------------------- */

typedef union bundle {
	tmrt_fc_params fc;
	tmrt_conv_params conv;
	tmrt_pool_params pool;
	tmrt_global_pool_params global_pool;
	tmrt_add_params add;
	tmrt_concat_params concat;
	tmrt_lut_params lut;
	tmrt_softmax_params softmax;
} bundle;

typedef struct wlayer {
	char *name;
	int32_t op;
	bundle p;			/* arrays point into the pool */
	tmrt_concat_input *concat_inputs;	/* owned; p.concat.inputs */
	int32_t *inputs;
	int32_t n_inputs;
	int32_t output;
} wlayer;

struct tm_priv_blob {
	tmrt_tensor *tensors;
	char **tensor_names;
	size_t n_tensors, cap_tensors, cap_names;
	wlayer *layers;
	size_t n_layers, cap_layers;
	tm_priv_blob_array *arrays;
	size_t n_arrays, cap_arrays;
	int32_t *inputs, *outputs;
	int32_t n_inputs, n_outputs;
	/* After tm_priv_blob_finish. */
	int finished;
	tmrt_layer *rt_layers;
	tmrt_model model;
	uint8_t *bytes;
	size_t size;
};

static tm_status
grow(void **v, size_t *cap, size_t n, size_t elsize, tm_error *err)
{
	size_t c;
	void *p;

	if (n < *cap)
		return TM_OK;
	c = *cap ? *cap * 2 : 16;
	p = realloc(*v, c * elsize);
	if (!p)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	*v = p;
	*cap = c;
	return TM_OK;
}

tm_priv_blob *
tm_priv_blob_new(tm_error *err)
{
	tm_priv_blob *b = calloc(1, sizeof *b);

	if (!b)
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	return b;
}

static void
free_layer(wlayer *l)
{
	free(l->name);
	free(l->concat_inputs);
	free(l->inputs);
}

void
tm_priv_blob_free(tm_priv_blob *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->n_tensors; i++)
		free(b->tensor_names[i]);
	free(b->tensor_names);
	free(b->tensors);
	for (i = 0; i < b->n_layers; i++)
		free_layer(&b->layers[i]);
	free(b->layers);
	for (i = 0; i < b->n_arrays; i++)
		free((void *)b->arrays[i].data);
	free(b->arrays);
	free(b->inputs);
	free(b->outputs);
	free(b->rt_layers);
	free(b->bytes);
	free(b);
}

/* "tensor 'h1'" or "tensor 3". */
static const char *
tensor_label(const tm_priv_blob *b, int32_t i, char *buf, size_t size)
{
	const char *name = tm_priv_blob_tensor_name(b, i);

	if (name)
		snprintf(buf, size, "tensor '%s'", name);
	else
		snprintf(buf, size, "tensor %" PRId32, i);
	return buf;
}

/* "layer 2 'fc2' (fully_connected)" or "layer 2 (fully_connected)". */
static const char *
layer_label(const tm_priv_blob *b, int32_t i, char *buf, size_t size)
{
	const char *name = tm_priv_blob_layer_name(b, i);
	const char *op = tm_priv_blob_op_name(b->layers[i].op);

	if (name)
		snprintf(buf, size, "layer %" PRId32 " '%s' (%s)", i, name, op);
	else
		snprintf(buf, size, "layer %" PRId32 " (%s)", i, op);
	return buf;
}

static tm_status
check_finished(const tm_priv_blob *b, tm_error *err)
{
	if (b->finished)
		return tm_error_set(err, TM_ERR_INVALID,
				    "the model is finished: nothing can be "
				    "added");
	return TM_OK;
}

tm_status
tm_priv_blob_add_tensor(tm_priv_blob *b, const char *name,
			const tmrt_tensor *t, int32_t *index, tm_error *err)
{
	const size_t i = b->n_tensors;
	char label[300];
	int64_t n;
	char *copy;

	if (check_finished(b, err))
		return TM_ERR_INVALID;
	if (name)
		snprintf(label, sizeof label, "tensor '%s'", name);
	else
		snprintf(label, sizeof label, "tensor %zu", i);
	if (i >= INT32_MAX)
		return tm_error_set(err, TM_ERR_INVALID, "%s: too many tensors",
				    label);
	n = mul_cap(mul_cap(mul_cap(t->dims.n, t->dims.h), t->dims.w),
		    t->dims.c);
	if (n < 0 || n > INT32_MAX)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: dims %" PRId32 "x%" PRId32 "x%" PRId32
				    "x%" PRId32 " out of range (each >= 1, "
				    "at most 2147483647 elements)",
				    label, t->dims.n, t->dims.h, t->dims.w,
				    t->dims.c);
	if (n != (int64_t)t->size)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: dims %" PRId32 "x%" PRId32 "x%" PRId32
				    "x%" PRId32 " hold %" PRId64
				    " elements, size is %" PRIu32,
				    label, t->dims.n, t->dims.h, t->dims.w,
				    t->dims.c, n, t->size);
	if (t->zp < -128 || t->zp > 127)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: zero point %" PRId32
				    " outside [-128, 127]",
				    label, t->zp);
	if ((uint64_t)t->offset + t->size > UINT32_MAX)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: arena offset %" PRIu32
				    " + size %" PRIu32 " past 4 GiB",
				    label, t->offset, t->size);
	if (grow((void **)&b->tensors, &b->cap_tensors, i, sizeof *b->tensors,
		 err) ||
	    grow((void **)&b->tensor_names, &b->cap_names, i,
		 sizeof *b->tensor_names, err))
		return TM_ERR_NOMEM;
	copy = NULL;
	if (name && !(copy = tm_priv_strdup(name, err)))
		return TM_ERR_NOMEM;
	b->tensors[i] = *t;
	b->tensor_names[i] = copy;
	b->n_tensors++;
	if (index)
		*index = (int32_t)i;
	return TM_OK;
}

/* The array stored once for these bytes: an existing one when equal. */
static tm_status
intern(tm_priv_blob *b, tm_priv_blob_role role, int32_t layer,
       uint32_t elem_size, uint32_t count, const void *src, const void **out,
       tm_error *err)
{
	const size_t bytes = (size_t)count * elem_size;
	tm_priv_blob_array *a;
	void *copy;
	size_t i;

	for (i = 0; i < b->n_arrays; i++) {
		a = &b->arrays[i];
		if (a->elem_size == elem_size && a->count == count &&
		    memcmp(a->data, src, bytes) == 0) {
			*out = a->data;
			return TM_OK;
		}
	}
	if (grow((void **)&b->arrays, &b->cap_arrays, b->n_arrays,
		 sizeof *b->arrays, err))
		return TM_ERR_NOMEM;
	copy = malloc(bytes);
	if (!copy)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	memcpy(copy, src, bytes);
	a = &b->arrays[b->n_arrays++];
	a->role = role;
	a->layer = layer;
	a->elem_size = elem_size;
	a->count = count;
	a->data = copy;
	a->offset = 0;
	*out = copy;
	return TM_OK;
}

/* Copies the bundle's arrays into the pool and points l->p at them. */
static tm_status
take_arrays(tm_priv_blob *b, wlayer *l, int32_t index, const char *label,
	    tm_error *err)
{
	const struct op_info *info = &ops[l->op];
	size_t i;

	for (i = 0; i < info->n_fields; i++) {
		const tm_priv_blob_field *f = &info->fields[i];
		const void *src, *data = NULL;
		int64_t n;

		if (!is_array(f))
			continue;
		src = get_array(&l->p, f);
		if (!src) {
			if (f->optional)
				continue;
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: %s is NULL", label, f->name);
		}
		n = tm_priv_blob_array_len(l->op, &l->p, f->role);
		if (n < 0)
			return tm_error_set(
				err, TM_ERR_INVALID,
				"%s: the bundle cannot size its %s (a "
				"dimension < 1, groups not dividing the "
				"channels, n_requant neither 1 nor the "
				"channel count, or over 4294967295 elements)",
				label, f->name);
		if (intern(b, f->role, index,
			   f->kind == TM_PRIV_BLOB_F_I8_ARRAY ? 1 : 4,
			   (uint32_t)n, src, &data, err))
			return TM_ERR_NOMEM;
		set_array(&l->p, f, data);
	}
	return TM_OK;
}

tm_status
tm_priv_blob_add_layer(tm_priv_blob *b, const char *name, int32_t op,
		       const void *params, const int32_t *inputs,
		       int32_t n_inputs, int32_t output, tm_error *err)
{
	const size_t index = b->n_layers, saved_arrays = b->n_arrays;
	char label[300];
	tm_status st;
	wlayer l;
	int32_t k, want;
	size_t i;

	if (check_finished(b, err))
		return TM_ERR_INVALID;
	if (!op_known(op))
		return tm_error_set(err, TM_ERR_INVALID,
				    "layer %zu: unknown op %" PRId32, index,
				    op);
	if (name)
		snprintf(label, sizeof label, "layer %zu '%s' (%s)", index,
			 name, ops[op].name);
	else
		snprintf(label, sizeof label, "layer %zu (%s)", index,
			 ops[op].name);
	if (index >= INT32_MAX)
		return tm_error_set(err, TM_ERR_INVALID, "%s: too many layers",
				    label);
	if (op == TMRT_OP_COPY ? params != NULL : params == NULL)
		return tm_error_set(err, TM_ERR_INVALID,
				    op == TMRT_OP_COPY
					    ? "%s: takes no bundle"
					    : "%s: no bundle",
				    label);
	want = op == TMRT_OP_ADD ? 2
	       : op == TMRT_OP_CONCAT
		       ? ((const tmrt_concat_params *)params)->n_inputs
		       : 1;
	if (n_inputs != want || n_inputs < 1 || !inputs)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: %" PRId32 " inputs given, %" PRId32
				    " expected",
				    label, n_inputs, want);
	for (k = 0; k < n_inputs; k++)
		if (inputs[k] < 0 || (size_t)inputs[k] >= b->n_tensors)
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: input %" PRId32
					    " is tensor %" PRId32
					    ", but %zu tensors were added",
					    label, k, inputs[k], b->n_tensors);
	if (output < 0 || (size_t)output >= b->n_tensors)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: output is tensor %" PRId32
				    ", but %zu tensors were added",
				    label, output, b->n_tensors);
	if (op == TMRT_OP_CONCAT &&
	    !((const tmrt_concat_params *)params)->inputs)
		return tm_error_set(err, TM_ERR_INVALID, "%s: inputs is NULL",
				    label);
	if (grow((void **)&b->layers, &b->cap_layers, index,
		 sizeof *b->layers, err))
		return TM_ERR_NOMEM;

	memset(&l, 0, sizeof l);
	l.op = op;
	l.n_inputs = n_inputs;
	l.output = output;
	if (params)
		memcpy(&l.p, params, ops[op].bundle_size);
	l.inputs = malloc((size_t)n_inputs * sizeof *l.inputs);
	if (!l.inputs)
		goto nomem;
	memcpy(l.inputs, inputs, (size_t)n_inputs * sizeof *l.inputs);
	if (op == TMRT_OP_CONCAT) {
		l.concat_inputs = malloc((size_t)n_inputs *
					 sizeof *l.concat_inputs);
		if (!l.concat_inputs)
			goto nomem;
		memcpy(l.concat_inputs, l.p.concat.inputs,
		       (size_t)n_inputs * sizeof *l.concat_inputs);
		l.p.concat.inputs = l.concat_inputs;
	}
	if (name && !(l.name = tm_priv_strdup(name, err)))
		goto nomem;
	st = take_arrays(b, &l, (int32_t)index, label, err);
	if (st != TM_OK)
		goto fail;
	b->layers[b->n_layers++] = l;
	return TM_OK;

nomem:
	st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
fail:
	/* A failed call has taken nothing: drop the arrays it added. */
	for (i = saved_arrays; i < b->n_arrays; i++)
		free((void *)b->arrays[i].data);
	b->n_arrays = saved_arrays;
	free_layer(&l);
	return st;
}

static tm_status
copy_indices(const tm_priv_blob *b, const int32_t *v, int32_t n,
	     const char *what, int32_t **out, tm_error *err)
{
	int32_t i;

	if (n < 1 || !v)
		return tm_error_set(err, TM_ERR_INVALID,
				    "the model needs at least one %s", what);
	for (i = 0; i < n; i++)
		if (v[i] < 0 || (size_t)v[i] >= b->n_tensors)
			return tm_error_set(err, TM_ERR_INVALID,
					    "model %s %" PRId32
					    " is tensor %" PRId32
					    ", but %zu tensors were added",
					    what, i, v[i], b->n_tensors);
	*out = malloc((size_t)n * sizeof **out);
	if (!*out)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	memcpy(*out, v, (size_t)n * sizeof **out);
	return TM_OK;
}

tm_status
tm_priv_blob_set_io(tm_priv_blob *b, const int32_t *inputs, int32_t n_inputs,
		    const int32_t *outputs, int32_t n_outputs, tm_error *err)
{
	int32_t *in = NULL, *out = NULL;
	tm_status st;

	if (check_finished(b, err))
		return TM_ERR_INVALID;
	st = copy_indices(b, inputs, n_inputs, "input", &in, err);
	if (st == TM_OK)
		st = copy_indices(b, outputs, n_outputs, "output", &out, err);
	if (st != TM_OK) {
		free(in);
		return st;
	}
	free(b->inputs);
	free(b->outputs);
	b->inputs = in;
	b->n_inputs = n_inputs;
	b->outputs = out;
	b->n_outputs = n_outputs;
	return TM_OK;
}

/* ---- Finishing: whole-model checks ------------------------------------- */

static int
overlaps(const tmrt_tensor *a, const tmrt_tensor *b)
{
	return (uint64_t)a->offset < (uint64_t)b->offset + b->size &&
	       (uint64_t)b->offset < (uint64_t)a->offset + a->size;
}

/* tmrt_model_check, and on failure the first layer it fails at (the
 * check of the model cut after each layer in turn). */
static tm_status
check_model(tm_priv_blob *b, tm_error *err)
{
	tmrt_model cut = b->model;
	tmrt_status st = tmrt_model_check(&b->model);
	char label[300];
	int32_t k;

	if (st == TMRT_OK)
		return TM_OK;
	for (k = 0; k <= b->model.n_layers; k++) {
		cut.n_layers = k;
		st = tmrt_model_check(&cut);
		if (st == TMRT_OK)
			continue;
		if (k == 0)
			return tm_error_set(err, TM_ERR_INVALID,
					    "model inputs and outputs: %s",
					    tmrt_status_str(st));
		return tm_error_set(err, TM_ERR_INVALID, "%s: %s",
				    layer_label(b, k - 1, label, sizeof label),
				    tmrt_status_str(st));
	}
	return tm_error_set(err, TM_ERR_INTERNAL,
			    "tmrt_model_check fails the model but no part");
}

/* Whole-model liveness of the arena plan: each tensor written once, read
 * only after, and never overwritten while a later layer or the caller
 * still needs it. def = the writing layer (-1: a model input, -2:
 * never); last = the last reading layer (n_layers: a model output). */
static tm_status
check_plan(tm_priv_blob *b, tm_error *err)
{
	const int32_t L = (int32_t)b->n_layers, T = (int32_t)b->n_tensors;
	int32_t *def = malloc((size_t)T * sizeof *def);
	int32_t *last = malloc((size_t)T * sizeof *last);
	char l1[300], l2[300], t1[300], t2[300];
	tm_status st = TM_OK;
	int32_t i, k, t;

	if (!def || !last) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (t = 0; t < T; t++)
		def[t] = -2;
	for (i = 0; i < b->n_inputs; i++)
		def[b->inputs[i]] = -1;
	for (i = 0; i < L; i++) {
		const wlayer *l = &b->layers[i];

		for (k = 0; k < l->n_inputs; k++)
			if (def[l->inputs[k]] == -2) {
				st = tm_error_set(
					err, TM_ERR_INVALID,
					"%s reads %s before any layer writes "
					"it",
					layer_label(b, i, l1, sizeof l1),
					tensor_label(b, l->inputs[k], t1,
						     sizeof t1));
				goto out;
			}
		if (def[l->output] != -2) {
			if (def[l->output] == -1)
				st = tm_error_set(
					err, TM_ERR_INVALID,
					"%s writes %s, a model input",
					layer_label(b, i, l1, sizeof l1),
					tensor_label(b, l->output, t1,
						     sizeof t1));
			else
				st = tm_error_set(
					err, TM_ERR_INVALID,
					"%s writes %s, already written by %s",
					layer_label(b, i, l1, sizeof l1),
					tensor_label(b, l->output, t1,
						     sizeof t1),
					layer_label(b, def[l->output], l2,
						    sizeof l2));
			goto out;
		}
		def[l->output] = i;
	}
	for (i = 0; i < b->n_outputs; i++)
		if (def[b->outputs[i]] == -2) {
			st = tm_error_set(err, TM_ERR_INVALID,
					  "model output %s is never written",
					  tensor_label(b, b->outputs[i], t1,
						       sizeof t1));
			goto out;
		}
	for (t = 0; t < T; t++)
		last[t] = def[t];
	for (i = 0; i < L; i++)
		for (k = 0; k < b->layers[i].n_inputs; k++)
			last[b->layers[i].inputs[k]] = i;
	for (i = 0; i < b->n_outputs; i++)
		last[b->outputs[i]] = L;

	for (i = 0; i < L; i++) {
		const wlayer *l = &b->layers[i];
		const tmrt_tensor *o = &b->tensors[l->output];

		/* A copy onto its own input's bytes writes nothing. */
		if (l->op == TMRT_OP_COPY &&
		    b->tensors[l->inputs[0]].offset == o->offset)
			continue;
		for (t = 0; t < T; t++) {
			const tmrt_tensor *x = &b->tensors[t];

			/* Live across the layer: written before, needed
			 * after. (Needed by this layer only: the in-place
			 * rules of tmrt_model_check.) */
			if (t == l->output || def[t] == -2 || def[t] >= i ||
			    last[t] <= i || !overlaps(x, o))
				continue;
			layer_label(b, i, l1, sizeof l1);
			tensor_label(b, l->output, t1, sizeof t1);
			tensor_label(b, t, t2, sizeof t2);
			if (last[t] == L)
				snprintf(l2, sizeof l2, "the caller (a model "
					 "output)");
			else
				layer_label(b, last[t], l2, sizeof l2);
			st = tm_error_set(
				err, TM_ERR_INVALID,
				"%s writes %s (arena bytes %" PRIu32
				"-%" PRIu32 ") over %s (bytes %" PRIu32
				"-%" PRIu32 "), still needed by %s",
				l1, t1, o->offset, o->offset + o->size - 1, t2,
				x->offset, x->offset + x->size - 1, l2);
			goto out;
		}
	}
out:
	free(def);
	free(last);
	return st;
}

/* ---- Finishing: serialization ---------------------------------------- */

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	return p + 4;
}

static uint8_t *
puts32(uint8_t *p, int32_t v)
{
	return put32(p, (uint32_t)v);
}

static uint64_t
align_up(uint64_t x)
{
	return (x + (ALIGN - 1)) & ~(uint64_t)(ALIGN - 1);
}

static uint64_t
record_size(const wlayer *l)
{
	const struct op_info *info = &ops[l->op];
	uint64_t words = (uint64_t)l->n_inputs;
	size_t i;

	for (i = 0; i < info->n_fields; i++)
		words += info->fields[i].kind == TM_PRIV_BLOB_F_I32 ? 1
			 : is_array(&info->fields[i])		  ? 2
								  : 0;
	if (l->op == TMRT_OP_CONCAT)
		words += 4 * (uint64_t)l->n_inputs;
	return LAYER_HEADER + 4 * words;
}

static const tm_priv_blob_array *
array_of(const tm_priv_blob *b, const void *data)
{
	const int32_t i = tm_priv_blob_array_find(b, data);

	return i < 0 ? NULL : &b->arrays[i];
}

static uint8_t *
put_layer(const tm_priv_blob *b, const wlayer *l, uint8_t *p)
{
	const struct op_info *info = &ops[l->op];
	int32_t k;
	size_t i;

	p = puts32(p, l->op);
	p = put32(p, (uint32_t)record_size(l));
	p = puts32(p, l->n_inputs);
	p = puts32(p, l->output);
	for (k = 0; k < l->n_inputs; k++)
		p = puts32(p, l->inputs[k]);
	for (i = 0; i < info->n_fields; i++) {
		const tm_priv_blob_field *f = &info->fields[i];

		if (f->kind == TM_PRIV_BLOB_F_I32) {
			p = puts32(p, get_i32(&l->p, f->offset));
		} else if (is_array(f)) {
			const tm_priv_blob_array *a =
				array_of(b, get_array(&l->p, f));

			p = put32(p, a ? a->offset : 0);
			p = put32(p, a ? a->count : 0);
		}
	}
	if (l->op == TMRT_OP_CONCAT)
		for (k = 0; k < l->n_inputs; k++) {
			const tmrt_concat_input *q = &l->concat_inputs[k];

			p = puts32(p, q->axis_len);
			p = puts32(p, q->zp);
			p = puts32(p, q->multiplier);
			p = puts32(p, q->shift);
		}
	return p;
}

static tm_status
serialize(tm_priv_blob *b, tm_error *err)
{
	uint64_t off_tensors, off_layers, off_io, off_data, end, layers = 0;
	uint64_t data = 0, size;
	uint8_t *buf, *p;
	size_t i;
	int32_t k;

	for (i = 0; i < b->n_layers; i++)
		layers += record_size(&b->layers[i]);
	for (i = 0; i < b->n_arrays; i++) {
		data = align_up(data);
		b->arrays[i].offset = (uint32_t)data;
		data += (uint64_t)b->arrays[i].count * b->arrays[i].elem_size;
		if (data > UINT32_MAX)
			break;
	}
	off_tensors = HEADER_SIZE + N_SECTIONS * SECTION_ENTRY;
	off_layers = align_up(off_tensors + b->n_tensors * TENSOR_RECORD);
	off_io = align_up(off_layers + layers);
	off_data = align_up(off_io + 8 + 4 * ((uint64_t)b->n_inputs +
					       (uint64_t)b->n_outputs));
	end = off_data + data;
	size = align_up(end);
	if (size > UINT32_MAX)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "the blob would be over 4 GiB (%" PRIu64
				    " bytes): the .tmb format's offsets are "
				    "32-bit",
				    size);
	buf = calloc(1, (size_t)size);
	if (!buf)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");

	memcpy(buf, magic, sizeof magic);
	put32(buf + 8, 0x01020304u);
	buf[12] = TMRT_BLOB_VERSION_MAJOR & 0xff;
	buf[13] = TMRT_BLOB_VERSION_MAJOR >> 8;
	buf[14] = TMRT_BLOB_VERSION_MINOR & 0xff;
	buf[15] = TMRT_BLOB_VERSION_MINOR >> 8;
	put32(buf + 16, HEADER_SIZE);
	put32(buf + 20, (uint32_t)size);
	/* 24: the CRC, last. 28: flags, 0. */
	put32(buf + 32, b->model.arena_size);
	put32(buf + 36, N_SECTIONS);
	put32(buf + 40, HEADER_SIZE);

	p = buf + HEADER_SIZE;
	p = put32(put32(put32(put32(p, SEC_TENSORS), (uint32_t)off_tensors),
			(uint32_t)(b->n_tensors * TENSOR_RECORD)),
		  (uint32_t)b->n_tensors);
	p = put32(put32(put32(put32(p, SEC_LAYERS), (uint32_t)off_layers),
			(uint32_t)layers),
		  (uint32_t)b->n_layers);
	p = put32(put32(put32(put32(p, SEC_IO), (uint32_t)off_io),
			(uint32_t)(8 + 4 * ((uint64_t)b->n_inputs +
					    (uint64_t)b->n_outputs))),
		  0);
	put32(put32(put32(put32(p, SEC_DATA), (uint32_t)off_data),
		    (uint32_t)data),
	      0);

	p = buf + off_tensors;
	for (i = 0; i < b->n_tensors; i++) {
		const tmrt_tensor *t = &b->tensors[i];

		p = put32(p, t->offset);
		p = put32(p, t->size);
		p = puts32(p, t->dims.n);
		p = puts32(p, t->dims.h);
		p = puts32(p, t->dims.w);
		p = puts32(p, t->dims.c);
		p = puts32(p, t->zp);
		p = put32(p, 0);
	}
	p = buf + off_layers;
	for (i = 0; i < b->n_layers; i++)
		p = put_layer(b, &b->layers[i], p);
	p = buf + off_io;
	p = puts32(p, b->n_inputs);
	p = puts32(p, b->n_outputs);
	for (k = 0; k < b->n_inputs; k++)
		p = puts32(p, b->inputs[k]);
	for (k = 0; k < b->n_outputs; k++)
		p = puts32(p, b->outputs[k]);
	/* Arrays as stored: the host is little-endian or the int32 arrays
	 * are written word by word. */
	for (i = 0; i < b->n_arrays; i++) {
		const tm_priv_blob_array *a = &b->arrays[i];
		uint8_t *q = buf + off_data + a->offset;
		uint32_t j;

		if (a->elem_size == 1) {
			memcpy(q, a->data, a->count);
			continue;
		}
		for (j = 0; j < a->count; j++)
			q = puts32(q, ((const int32_t *)a->data)[j]);
	}
	put32(buf + 24, tm_priv_blob_crc32(0, buf + CRC_START,
					   (size_t)size - CRC_START));
	b->bytes = buf;
	b->size = (size_t)size;
	return TM_OK;
}

tm_status
tm_priv_blob_finish(tm_priv_blob *b, tm_error *err)
{
	uint64_t arena = 0;
	tm_status st;
	size_t i;

	if (check_finished(b, err))
		return TM_ERR_INVALID;
	if (!b->inputs || !b->outputs)
		return tm_error_set(err, TM_ERR_INVALID,
				    "the model's inputs and outputs are not "
				    "set");
	for (i = 0; i < b->n_tensors; i++) {
		const uint64_t e = (uint64_t)b->tensors[i].offset +
				   b->tensors[i].size;

		if (e > arena)
			arena = e;
	}
	free(b->rt_layers);
	b->rt_layers = calloc(b->n_layers ? b->n_layers : 1,
			      sizeof *b->rt_layers);
	if (!b->rt_layers)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (i = 0; i < b->n_layers; i++) {
		const wlayer *l = &b->layers[i];
		tmrt_layer *r = &b->rt_layers[i];

		r->op = l->op;
		r->params = l->op == TMRT_OP_COPY ? NULL : (const void *)&l->p;
		r->inputs = l->inputs;
		r->n_inputs = l->n_inputs;
		r->output = l->output;
	}
	b->model.tensors = b->tensors;
	b->model.n_tensors = (int32_t)b->n_tensors;
	b->model.layers = b->rt_layers;
	b->model.n_layers = (int32_t)b->n_layers;
	b->model.inputs = b->inputs;
	b->model.n_inputs = b->n_inputs;
	b->model.outputs = b->outputs;
	b->model.n_outputs = b->n_outputs;
	b->model.arena_size = (uint32_t)arena;

	st = check_model(b, err);
	if (st == TM_OK)
		st = check_plan(b, err);
	if (st == TM_OK)
		st = serialize(b, err);
	if (st != TM_OK) {
		free(b->rt_layers);
		b->rt_layers = NULL;
		return st;
	}
	b->finished = 1;
	return TM_OK;
}

/* ---- Accessors ---------------------------------------------------------- */

const tmrt_model *
tm_priv_blob_model(const tm_priv_blob *b)
{
	return b && b->finished ? &b->model : NULL;
}

const uint8_t *
tm_priv_blob_bytes(const tm_priv_blob *b, size_t *size)
{
	if (size)
		*size = b && b->finished ? b->size : 0;
	return b && b->finished ? b->bytes : NULL;
}

size_t
tm_priv_blob_n_arrays(const tm_priv_blob *b)
{
	return b ? b->n_arrays : 0;
}

const tm_priv_blob_array *
tm_priv_blob_array_at(const tm_priv_blob *b, size_t i)
{
	return b && i < b->n_arrays ? &b->arrays[i] : NULL;
}

int32_t
tm_priv_blob_array_find(const tm_priv_blob *b, const void *ptr)
{
	size_t i;

	for (i = 0; ptr && b && i < b->n_arrays; i++)
		if (b->arrays[i].data == ptr)
			return (int32_t)i;
	return -1;
}

const char *
tm_priv_blob_tensor_name(const tm_priv_blob *b, int32_t i)
{
	return b && i >= 0 && (size_t)i < b->n_tensors ? b->tensor_names[i]
						       : NULL;
}

const char *
tm_priv_blob_layer_name(const tm_priv_blob *b, int32_t i)
{
	return b && i >= 0 && (size_t)i < b->n_layers ? b->layers[i].name
						      : NULL;
}

/* ---- Comparing two models -------------------------------------------- */

static tm_status
diff_i32(const char *what, const char *field, int32_t a, int32_t b,
	 tm_error *err)
{
	if (a == b)
		return TM_OK;
	return tm_error_set(err, TM_ERR_INVALID,
			    "%s: %s: %" PRId32 " vs %" PRId32, what, field, a,
			    b);
}

static tm_status
diff_array(const char *what, const tm_priv_blob_field *f, const void *a,
	   const void *b, int64_t n, tm_error *err)
{
	int64_t i;

	if (!a || !b) {
		if (a == b)
			return TM_OK;
		return tm_error_set(err, TM_ERR_INVALID, "%s: %s: %s vs %s",
				    what, f->name, a ? "present" : "NULL",
				    b ? "present" : "NULL");
	}
	for (i = 0; i < n; i++) {
		int32_t x, y;

		if (f->kind == TM_PRIV_BLOB_F_I8_ARRAY) {
			x = ((const int8_t *)a)[i];
			y = ((const int8_t *)b)[i];
		} else {
			x = ((const int32_t *)a)[i];
			y = ((const int32_t *)b)[i];
		}
		if (x != y)
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: %s[%" PRId64 "]: %" PRId32
					    " vs %" PRId32,
					    what, f->name, i, x, y);
	}
	return TM_OK;
}

static tm_status
diff_layer(int32_t i, const tmrt_layer *la, const tmrt_layer *lb,
	   tm_error *err)
{
	const struct op_info *info;
	char what[100];
	int32_t k;
	size_t j;

	snprintf(what, sizeof what, "layer %" PRId32 " (%s)", i,
		 tm_priv_blob_op_name(la->op));
	if (diff_i32(what, "op", la->op, lb->op, err) ||
	    diff_i32(what, "n_inputs", la->n_inputs, lb->n_inputs, err) ||
	    diff_i32(what, "output", la->output, lb->output, err))
		return TM_ERR_INVALID;
	for (k = 0; k < la->n_inputs; k++)
		if (diff_i32(what, "input", la->inputs[k], lb->inputs[k], err))
			return TM_ERR_INVALID;
	info = &ops[la->op];
	/* Scalars first: they size the arrays. */
	for (j = 0; j < info->n_fields; j++) {
		const tm_priv_blob_field *f = &info->fields[j];

		if (f->kind == TM_PRIV_BLOB_F_I32 &&
		    diff_i32(what, f->name, get_i32(la->params, f->offset),
			     get_i32(lb->params, f->offset), err))
			return TM_ERR_INVALID;
	}
	for (j = 0; j < info->n_fields; j++) {
		const tm_priv_blob_field *f = &info->fields[j];

		if (is_array(f) &&
		    diff_array(what, f, get_array(la->params, f),
			       get_array(lb->params, f),
			       tm_priv_blob_array_len(la->op, la->params,
						      f->role),
			       err))
			return TM_ERR_INVALID;
	}
	if (la->op == TMRT_OP_CONCAT) {
		const tmrt_concat_params *pa = la->params, *pb = lb->params;

		for (k = 0; k < pa->n_inputs; k++) {
			const tmrt_concat_input *x = &pa->inputs[k],
						*y = &pb->inputs[k];

			if (diff_i32(what, "inputs[].axis_len", x->axis_len,
				     y->axis_len, err) ||
			    diff_i32(what, "inputs[].zp", x->zp, y->zp, err) ||
			    diff_i32(what, "inputs[].multiplier",
				     x->multiplier, y->multiplier, err) ||
			    diff_i32(what, "inputs[].shift", x->shift,
				     y->shift, err))
				return TM_ERR_INVALID;
		}
	}
	return TM_OK;
}

tm_status
tm_priv_blob_model_diff(const tmrt_model *a, const tmrt_model *b,
			tm_error *err)
{
	tmrt_status st;
	char what[100];
	int32_t i;

	if ((st = tmrt_model_check(a)) != TMRT_OK)
		return tm_error_set(err, TM_ERR_INVALID, "first model: %s",
				    tmrt_status_str(st));
	if ((st = tmrt_model_check(b)) != TMRT_OK)
		return tm_error_set(err, TM_ERR_INVALID, "second model: %s",
				    tmrt_status_str(st));
	if (a->arena_size != b->arena_size)
		return tm_error_set(err, TM_ERR_INVALID,
				    "model: arena_size: %" PRIu32 " vs %" PRIu32,
				    a->arena_size, b->arena_size);
	if (
	    diff_i32("model", "n_tensors", a->n_tensors, b->n_tensors, err) ||
	    diff_i32("model", "n_layers", a->n_layers, b->n_layers, err) ||
	    diff_i32("model", "n_inputs", a->n_inputs, b->n_inputs, err) ||
	    diff_i32("model", "n_outputs", a->n_outputs, b->n_outputs, err))
		return TM_ERR_INVALID;
	for (i = 0; i < a->n_tensors; i++) {
		const tmrt_tensor *x = &a->tensors[i], *y = &b->tensors[i];

		snprintf(what, sizeof what, "tensor %" PRId32, i);
		if (diff_i32(what, "offset", (int32_t)x->offset,
			     (int32_t)y->offset, err) ||
		    diff_i32(what, "size", (int32_t)x->size, (int32_t)y->size,
			     err) ||
		    diff_i32(what, "dims.n", x->dims.n, y->dims.n, err) ||
		    diff_i32(what, "dims.h", x->dims.h, y->dims.h, err) ||
		    diff_i32(what, "dims.w", x->dims.w, y->dims.w, err) ||
		    diff_i32(what, "dims.c", x->dims.c, y->dims.c, err) ||
		    diff_i32(what, "zp", x->zp, y->zp, err))
			return TM_ERR_INVALID;
	}
	for (i = 0; i < a->n_inputs; i++)
		if (diff_i32("model", "inputs[]", a->inputs[i], b->inputs[i],
			     err))
			return TM_ERR_INVALID;
	for (i = 0; i < a->n_outputs; i++)
		if (diff_i32("model", "outputs[]", a->outputs[i],
			     b->outputs[i], err))
			return TM_ERR_INVALID;
	for (i = 0; i < a->n_layers; i++)
		if (diff_layer(i, &a->layers[i], &b->layers[i], err))
			return TM_ERR_INVALID;
	return TM_OK;
}

/* ---- CRC-32/IEEE: libtmrt's, so writer and loader cannot disagree. */

uint32_t
tm_priv_blob_crc32(uint32_t crc, const void *data, size_t size)
{
	return tmrt_crc32(crc, data, size);
}
