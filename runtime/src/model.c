/* libtmrt — whole models: tmrt_model_check validates the tables (the
 * kernels' own checks plus how bundles map onto tensors and the arena),
 * tmrt_run copies the inputs in, dispatches each layer to its kernel
 * and copies the outputs out. Freestanding: integers only, no libc (byte
 * copies are loops, structs are never assigned whole, so the compiler
 * has no reason to call memcpy).
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/model.h>
#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

/* Concat layers with up to this many inputs call the kernel once with an
 * array of pointers on the stack; wider ones (DenseNet blocks) call it
 * once per input and outer row, with a one-input view. */
#define DIRECT_CONCAT_MAX 16

const char *
tmrt_status_str(tmrt_status st)
{
	switch (st) {
	case TMRT_OK:
		return "success";
	case TMRT_ERR_ARG:
		return "a required pointer is NULL";
	case TMRT_ERR_SHAPE:
		return "a dimension or size is out of range or inconsistent";
	case TMRT_ERR_PARAM:
		return "a zero point, range, count or table is invalid";
	case TMRT_ERR_FORMAT:
		return "not a .tmb blob, or a malformed one";
	case TMRT_ERR_VERSION:
		return "unsupported .tmb format version";
	case TMRT_ERR_TRUNCATED:
		return "blob truncated";
	case TMRT_ERR_CRC:
		return "blob checksum mismatch";
	case TMRT_ERR_RANGE:
		return "an offset, size, index or count is out of bounds";
	case TMRT_ERR_ALIGN:
		return "misaligned blob, section or array";
	case TMRT_ERR_NOSPACE:
		return "arena or RAM too small";
	case TMRT_ERR_OVERLAP:
		return "a layer's output overlaps its input";
	}
	return "unknown status";
}

/* A non-NULL stand-in for the data pointers of the kernels' checks. */
static const int8_t dummy;

static int
dims_eq(const tmrt_dims *a, const tmrt_dims *b)
{
	return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

/* Whether [offset, offset + size) of a and b share a byte (in 64 bits:
 * offset + size may exceed UINT32_MAX in an unchecked tensor). */
static int
overlaps(const tmrt_tensor *a, const tmrt_tensor *b)
{
	return (uint64_t)a->offset < (uint64_t)b->offset + b->size &&
	       (uint64_t)b->offset < (uint64_t)a->offset + a->size;
}

static int
same_bytes(const tmrt_tensor *a, const tmrt_tensor *b)
{
	return a->offset == b->offset && a->size == b->size;
}

static tmrt_status
check_tensor(const tmrt_tensor *t, uint32_t arena_size)
{
	const int64_t n = tmrt_priv_numel(&t->dims);

	if ((uint64_t)t->offset + t->size > arena_size)
		return TMRT_ERR_RANGE;
	if (n < 0 || (uint64_t)n != t->size)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(t->zp))
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

static tmrt_status
check_fc(const tmrt_fc_params *p, const tmrt_tensor *in,
	 const tmrt_tensor *out)
{
	uint32_t rows;

	if (!p || !p->weights || !p->multiplier || !p->shift)
		return TMRT_ERR_ARG;
	if (p->in_features < 1 || p->in_features > TMRT_FC_MAX_IN_FEATURES ||
	    p->out_features < 1)
		return TMRT_ERR_SHAPE;
	/* 32-bit division: no libgcc helper on a 32-bit target. */
	if (in->size % (uint32_t)p->in_features != 0)
		return TMRT_ERR_SHAPE;
	rows = in->size / (uint32_t)p->in_features;
	if ((uint64_t)rows * (uint32_t)p->out_features != out->size)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->input_zp) || !tmrt_priv_zp_ok(p->output_zp) ||
	    !tmrt_priv_act_ok(p->act_min, p->act_max))
		return TMRT_ERR_PARAM;
	if (p->n_requant != 1 && p->n_requant != p->out_features)
		return TMRT_ERR_PARAM;
	if (p->input_zp != in->zp || p->output_zp != out->zp)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

static tmrt_status
check_conv(const tmrt_conv_params *p, int depthwise, const tmrt_tensor *in,
	   const tmrt_tensor *out)
{
	tmrt_status st;
	int64_t taps;

	if (!p)
		return TMRT_ERR_ARG;
	st = tmrt_priv_conv_check_shape(p, &dummy, &dummy);
	if (st != TMRT_OK)
		return st;
	if (!dims_eq(&p->input, &in->dims) || !dims_eq(&p->output, &out->dims))
		return TMRT_ERR_SHAPE;
	/* The kernels' own checks past the shared ones. */
	taps = (int64_t)p->kernel_h * p->kernel_w;
	if (taps > TMRT_CONV_MAX_TAPS)
		return TMRT_ERR_SHAPE;
	if (depthwise) {
		if (p->groups != p->input.c || p->output.c % p->input.c != 0 ||
		    taps * p->output.c > INT32_MAX)
			return TMRT_ERR_SHAPE;
	} else {
		if (p->groups < 1 || p->input.c % p->groups != 0 ||
		    p->output.c % p->groups != 0)
			return TMRT_ERR_SHAPE;
		taps *= p->input.c / p->groups;
		if (taps > TMRT_CONV_MAX_TAPS || taps * p->output.c > INT32_MAX)
			return TMRT_ERR_SHAPE;
	}
	st = tmrt_priv_conv_check_param(p);
	if (st != TMRT_OK)
		return st;
	if (p->input_zp != in->zp || p->output_zp != out->zp)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

static tmrt_status
check_pool(const tmrt_pool_params *p, const tmrt_tensor *in,
	   const tmrt_tensor *out)
{
	tmrt_status st = tmrt_priv_pool_check(p, &dummy, &dummy);

	if (st != TMRT_OK)
		return st;
	if (!dims_eq(&p->input, &in->dims) || !dims_eq(&p->output, &out->dims))
		return TMRT_ERR_SHAPE;
	if (p->input_zp != in->zp || p->output_zp != out->zp)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

static tmrt_status
check_global_pool(const tmrt_global_pool_params *p, const tmrt_tensor *in,
		  const tmrt_tensor *out)
{
	if (!p)
		return TMRT_ERR_ARG;
	if (tmrt_priv_numel(&p->input) < 0 ||
	    (int64_t)p->input.h * p->input.w > TMRT_GLOBAL_POOL_MAX_HW)
		return TMRT_ERR_SHAPE;
	if (!dims_eq(&p->input, &in->dims) || out->dims.n != p->input.n ||
	    out->dims.h != 1 || out->dims.w != 1 || out->dims.c != p->input.c)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->input_zp) || !tmrt_priv_zp_ok(p->output_zp) ||
	    !tmrt_priv_act_ok(p->act_min, p->act_max) || p->multiplier < 0)
		return TMRT_ERR_PARAM;
	if (p->input_zp != in->zp || p->output_zp != out->zp)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

static tmrt_status
check_add(const tmrt_add_params *p, const tmrt_tensor *in1,
	  const tmrt_tensor *in2, const tmrt_tensor *out)
{
	if (!p)
		return TMRT_ERR_ARG;
	if (p->size < 1 || p->in2_size < 1 || p->size % p->in2_size != 0)
		return TMRT_ERR_SHAPE;
	if ((uint32_t)p->size != in1->size || (uint32_t)p->size != out->size ||
	    (uint32_t)p->in2_size != in2->size)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->input1_zp) || !tmrt_priv_zp_ok(p->input2_zp) ||
	    !tmrt_priv_zp_ok(p->output_zp))
		return TMRT_ERR_PARAM;
	if (p->left_shift < 0 || p->left_shift > TMRT_ADD_MAX_LEFT_SHIFT ||
	    p->input1_multiplier < 0 || p->input2_multiplier < 0 ||
	    p->output_multiplier < 0 ||
	    !tmrt_priv_act_ok(p->act_min, p->act_max))
		return TMRT_ERR_PARAM;
	if (p->input1_zp != in1->zp || p->input2_zp != in2->zp ||
	    p->output_zp != out->zp)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

static tmrt_status
check_concat(const tmrt_concat_params *p, const tmrt_model *m,
	     const tmrt_layer *l, const tmrt_tensor *out)
{
	uint64_t len = 0;
	int32_t k;

	if (!p || !p->inputs)
		return TMRT_ERR_ARG;
	if (p->n_inputs != l->n_inputs)
		return TMRT_ERR_RANGE;
	if (p->outer < 1 || p->inner < 1)
		return TMRT_ERR_SHAPE;
	for (k = 0; k < p->n_inputs; k++) {
		const tmrt_concat_input *q = &p->inputs[k];
		const tmrt_tensor *in = &m->tensors[l->inputs[k]];

		if (q->axis_len < 1)
			return TMRT_ERR_SHAPE;
		/* Checked at each step (as the kernel does): len * inner *
		 * outer stays below 2^31, so nothing overflows. */
		len += (uint32_t)q->axis_len;
		if (len * (uint32_t)p->inner > INT32_MAX ||
		    len * (uint32_t)p->inner * (uint32_t)p->outer > INT32_MAX)
			return TMRT_ERR_SHAPE;
		if ((uint64_t)(uint32_t)q->axis_len * (uint32_t)p->inner *
			    (uint32_t)p->outer !=
		    in->size)
			return TMRT_ERR_SHAPE;
	}
	if (len * (uint32_t)p->inner * (uint32_t)p->outer != out->size)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->output_zp) || p->output_zp != out->zp)
		return TMRT_ERR_PARAM;
	for (k = 0; k < p->n_inputs; k++) {
		const tmrt_concat_input *q = &p->inputs[k];

		if (!tmrt_priv_zp_ok(q->zp) || q->multiplier < 0 ||
		    q->zp != m->tensors[l->inputs[k]].zp)
			return TMRT_ERR_PARAM;
	}
	return TMRT_OK;
}

static tmrt_status
check_lut(const tmrt_lut_params *p, const tmrt_tensor *in,
	  const tmrt_tensor *out)
{
	if (!p || !p->table)
		return TMRT_ERR_ARG;
	if (p->size < 1 || (uint32_t)p->size != in->size ||
	    (uint32_t)p->size != out->size)
		return TMRT_ERR_SHAPE;
	return TMRT_OK;
}

static tmrt_status
check_softmax(const tmrt_softmax_params *p, const tmrt_tensor *in,
	      const tmrt_tensor *out)
{
	int32_t d;

	if (!p || !p->exp_table)
		return TMRT_ERR_ARG;
	if (p->outer < 1 || p->len < 1 || p->inner < 1 ||
	    (int64_t)p->outer * p->len > INT32_MAX ||
	    (int64_t)p->outer * p->len * p->inner > INT32_MAX)
		return TMRT_ERR_SHAPE;
	if ((uint64_t)p->outer * (uint32_t)p->len * (uint32_t)p->inner !=
		    in->size ||
	    in->size != out->size)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->output_zp) || p->output_zp != out->zp)
		return TMRT_ERR_PARAM;
	if (p->exp_table[0] < 1)
		return TMRT_ERR_PARAM;
	for (d = 0; d < 256; d++)
		if (p->exp_table[d] < 0 || p->exp_table[d] > ((int32_t)1 << 30))
			return TMRT_ERR_PARAM;
	return TMRT_OK;
}

static tmrt_status
check_copy(const void *params, const tmrt_tensor *in, const tmrt_tensor *out)
{
	if (params)
		return TMRT_ERR_PARAM;
	if (in->size != out->size)
		return TMRT_ERR_SHAPE;
	if (in->zp != out->zp)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

/* Inputs the op takes, or -1 for concat (its bundle says). */
static int32_t
op_inputs(int32_t op)
{
	return op == TMRT_OP_ADD ? 2 : op == TMRT_OP_CONCAT ? -1 : 1;
}

/* Whether the op's output may be exactly the bytes of an input. */
static int
op_in_place(int32_t op)
{
	return op == TMRT_OP_COPY || op == TMRT_OP_LUT ||
	       op == TMRT_OP_SOFTMAX || op == TMRT_OP_ADD;
}

static tmrt_status
check_layer(const tmrt_model *m, const tmrt_layer *l)
{
	const tmrt_tensor *in, *out;
	tmrt_status st;
	int32_t k;

	if (l->n_inputs < 1)
		return TMRT_ERR_RANGE;
	if (!l->inputs)
		return TMRT_ERR_ARG;
	for (k = 0; k < l->n_inputs; k++)
		if (l->inputs[k] < 0 || l->inputs[k] >= m->n_tensors)
			return TMRT_ERR_RANGE;
	if (l->output < 0 || l->output >= m->n_tensors)
		return TMRT_ERR_RANGE;
	if (l->op < 0 || l->op >= TMRT_OP_COUNT)
		return TMRT_ERR_PARAM;
	if (op_inputs(l->op) > 0 && l->n_inputs != op_inputs(l->op))
		return TMRT_ERR_RANGE;
	in = &m->tensors[l->inputs[0]];
	out = &m->tensors[l->output];

	switch ((tmrt_op)l->op) {
	case TMRT_OP_COPY:
		st = check_copy(l->params, in, out);
		break;
	case TMRT_OP_FULLY_CONNECTED:
		st = check_fc((const tmrt_fc_params *)l->params, in, out);
		break;
	case TMRT_OP_CONV2D:
	case TMRT_OP_DEPTHWISE_CONV2D:
		st = check_conv((const tmrt_conv_params *)l->params,
				l->op == TMRT_OP_DEPTHWISE_CONV2D, in, out);
		break;
	case TMRT_OP_MAX_POOL2D:
	case TMRT_OP_AVG_POOL2D:
		st = check_pool((const tmrt_pool_params *)l->params, in, out);
		break;
	case TMRT_OP_GLOBAL_AVG_POOL:
		st = check_global_pool(
			(const tmrt_global_pool_params *)l->params, in, out);
		break;
	case TMRT_OP_ADD:
		st = check_add((const tmrt_add_params *)l->params, in,
			       &m->tensors[l->inputs[1]], out);
		break;
	case TMRT_OP_CONCAT:
		st = check_concat((const tmrt_concat_params *)l->params, m, l,
				  out);
		break;
	case TMRT_OP_LUT:
		st = check_lut((const tmrt_lut_params *)l->params, in, out);
		break;
	case TMRT_OP_SOFTMAX:
		st = check_softmax((const tmrt_softmax_params *)l->params, in,
				   out);
		break;
	default:
		st = TMRT_ERR_PARAM;
		break;
	}
	if (st != TMRT_OK)
		return st;

	/* Partial overlap is never right; the same bytes only where the
	 * kernel reads each element before writing it. */
	for (k = 0; k < l->n_inputs; k++) {
		const tmrt_tensor *x = &m->tensors[l->inputs[k]];

		if (overlaps(x, out) &&
		    !(op_in_place(l->op) && same_bytes(x, out)))
			return TMRT_ERR_OVERLAP;
	}
	return TMRT_OK;
}

tmrt_status
tmrt_model_check(const tmrt_model *m)
{
	tmrt_status st;
	int32_t i, j;

	if (!m || !m->tensors || !m->inputs || !m->outputs ||
	    (m->n_layers > 0 && !m->layers))
		return TMRT_ERR_ARG;
	if (m->n_tensors < 1 || m->n_layers < 0 || m->n_inputs < 1 ||
	    m->n_outputs < 1)
		return TMRT_ERR_RANGE;
	for (i = 0; i < m->n_tensors; i++) {
		st = check_tensor(&m->tensors[i], m->arena_size);
		if (st != TMRT_OK)
			return st;
	}
	for (i = 0; i < m->n_inputs; i++)
		if (m->inputs[i] < 0 || m->inputs[i] >= m->n_tensors)
			return TMRT_ERR_RANGE;
	for (i = 0; i < m->n_outputs; i++)
		if (m->outputs[i] < 0 || m->outputs[i] >= m->n_tensors)
			return TMRT_ERR_RANGE;
	for (i = 0; i < m->n_layers; i++) {
		st = check_layer(m, &m->layers[i]);
		if (st != TMRT_OK)
			return st;
	}
	/* Copying one input in must not clobber another (listing one
	 * tensor twice is harmless: the same bytes land twice). */
	for (i = 0; i < m->n_inputs; i++)
		for (j = i + 1; j < m->n_inputs; j++)
			if (m->inputs[i] != m->inputs[j] &&
			    overlaps(&m->tensors[m->inputs[i]],
				     &m->tensors[m->inputs[j]]))
				return TMRT_ERR_OVERLAP;
	return TMRT_OK;
}

static void
copy_bytes(int8_t *dst, const int8_t *src, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		dst[i] = src[i];
}

static tmrt_status
run_fc(const tmrt_fc_params *p, const int8_t *in, int8_t *out,
       uint32_t in_size)
{
	const uint32_t rows = in_size / (uint32_t)p->in_features;
	uint32_t r;

	for (r = 0; r < rows; r++) {
		tmrt_status st = tmrt_fully_connected_s8(
			p, in + (size_t)r * (size_t)p->in_features,
			out + (size_t)r * (size_t)p->out_features);

		if (st != TMRT_OK)
			return st;
	}
	return TMRT_OK;
}

static tmrt_status
run_concat(const tmrt_concat_params *p, const tmrt_model *m,
	   const tmrt_layer *l, int8_t *arena, int8_t *out)
{
	const int8_t *ptr[DIRECT_CONCAT_MAX];
	tmrt_concat_params v;
	size_t total = 0, before = 0;
	int32_t k, o;

	if (p->n_inputs <= DIRECT_CONCAT_MAX) {
		for (k = 0; k < p->n_inputs; k++)
			ptr[k] = arena + m->tensors[l->inputs[k]].offset;
		return tmrt_concat_s8(p, ptr, out);
	}
	/* Input k's block of outer row o (axis_len * inner values), as a
	 * one-input concat with outer 1: the same requantization, element
	 * by element. */
	for (k = 0; k < p->n_inputs; k++)
		total += (size_t)p->inputs[k].axis_len;
	v.outer = 1;
	v.inner = p->inner;
	v.n_inputs = 1;
	v.output_zp = p->output_zp;
	for (k = 0; k < p->n_inputs; k++) {
		const size_t n = (size_t)p->inputs[k].axis_len *
				 (size_t)p->inner;
		const int8_t *x = arena + m->tensors[l->inputs[k]].offset;

		v.inputs = &p->inputs[k];
		for (o = 0; o < p->outer; o++) {
			const int8_t *xo = x + (size_t)o * n;
			tmrt_status st = tmrt_concat_s8(
				&v, &xo,
				out + ((size_t)o * total + before) *
					      (size_t)p->inner);

			if (st != TMRT_OK)
				return st;
		}
		before += (size_t)p->inputs[k].axis_len;
	}
	return TMRT_OK;
}

static tmrt_status
run_layer(const tmrt_model *m, const tmrt_layer *l, int8_t *arena)
{
	const tmrt_tensor *t_in = &m->tensors[l->inputs[0]];
	const tmrt_tensor *t_out = &m->tensors[l->output];
	const int8_t *in = arena + t_in->offset;
	int8_t *out = arena + t_out->offset;

	switch ((tmrt_op)l->op) {
	case TMRT_OP_COPY:
		/* The same offset is an alias: nothing to move. */
		if (in != out)
			copy_bytes(out, in, t_out->size);
		return TMRT_OK;
	case TMRT_OP_FULLY_CONNECTED:
		return run_fc((const tmrt_fc_params *)l->params, in, out,
			      t_in->size);
	case TMRT_OP_CONV2D:
		return tmrt_conv2d_s8((const tmrt_conv_params *)l->params, in,
				      out);
	case TMRT_OP_DEPTHWISE_CONV2D:
		return tmrt_depthwise_conv2d_s8(
			(const tmrt_conv_params *)l->params, in, out);
	case TMRT_OP_MAX_POOL2D:
		return tmrt_max_pool2d_s8((const tmrt_pool_params *)l->params,
					  in, out);
	case TMRT_OP_AVG_POOL2D:
		return tmrt_avg_pool2d_s8((const tmrt_pool_params *)l->params,
					  in, out);
	case TMRT_OP_GLOBAL_AVG_POOL:
		return tmrt_global_avg_pool_s8(
			(const tmrt_global_pool_params *)l->params, in, out);
	case TMRT_OP_ADD:
		return tmrt_add_s8((const tmrt_add_params *)l->params, in,
				   arena + m->tensors[l->inputs[1]].offset,
				   out);
	case TMRT_OP_CONCAT:
		return run_concat((const tmrt_concat_params *)l->params, m, l,
				  arena, out);
	case TMRT_OP_LUT:
		return tmrt_lut_s8((const tmrt_lut_params *)l->params, in, out);
	case TMRT_OP_SOFTMAX:
		return tmrt_softmax_s8((const tmrt_softmax_params *)l->params,
				       in, out);
	case TMRT_OP_COUNT:
		break;
	}
	return TMRT_ERR_PARAM;
}

tmrt_status
tmrt_run(const tmrt_model *m, const int8_t *const *inputs,
	 int8_t *const *outputs, void *arena, size_t arena_size)
{
	int8_t *a = (int8_t *)arena;
	tmrt_status st = tmrt_model_check(m);
	int32_t i;

	if (st != TMRT_OK)
		return st;
	if (!inputs || !outputs || !arena)
		return TMRT_ERR_ARG;
	for (i = 0; i < m->n_inputs; i++)
		if (!inputs[i])
			return TMRT_ERR_ARG;
	for (i = 0; i < m->n_outputs; i++)
		if (!outputs[i])
			return TMRT_ERR_ARG;
	if (arena_size < m->arena_size)
		return TMRT_ERR_NOSPACE;

	for (i = 0; i < m->n_inputs; i++) {
		const tmrt_tensor *t = &m->tensors[m->inputs[i]];

		copy_bytes(a + t->offset, inputs[i], t->size);
	}
	for (i = 0; i < m->n_layers; i++) {
		st = run_layer(m, &m->layers[i], a);
		if (st != TMRT_OK)
			return st;
	}
	for (i = 0; i < m->n_outputs; i++) {
		const tmrt_tensor *t = &m->tensors[m->outputs[i]];

		copy_bytes(outputs[i], a + t->offset, t->size);
	}
	return TMRT_OK;
}
