/* tmpipe — the quantize pass. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/quant.h>

#include "quantize_priv.h"

/* TFLite's int8 ADD left shift (tmrt_add_params.left_shift). */
#define ADD_LEFT_SHIFT 20

/* Fixed output parameters of QUANT.md: sigmoid and softmax (1/256, -128),
 * tanh (1/128, 0). Returns 0 when the op has none. */
static int
fixed_params(tm_op op, double *scale, int32_t *zp)
{
	switch (op) {
	case TM_OP_SIGMOID:
	case TM_OP_SOFTMAX:
		*scale = 1.0 / 256.0;
		*zp = -128;
		return 1;
	case TM_OP_TANH:
		*scale = 1.0 / 128.0;
		*zp = 0;
		return 1;
	default:
		return 0;
	}
}

tm_status
tm_priv_activation_params(const tm_tensor *t, const tm_node *producer,
			  double *scale, int32_t *zero_point, tm_error *err)
{
	tm_status st;

	/* libtmrt's softmax writes 1/256 steps whatever it is told, so
	 * that op's fixed parameters win over a model's (sigmoid's and
	 * tanh's tables follow any). */
	if (producer && producer->op == TM_OP_SOFTMAX &&
	    fixed_params(producer->op, scale, zero_point))
		return TM_OK;
	if (t->quant_given) {	/* the frontend's, kept as given */
		*scale = t->q.scale;
		*zero_point = t->q.zero_point;
		return TM_OK;
	}
	if (producer && fixed_params(producer->op, scale, zero_point))
		return TM_OK;
	if (!t->has_range)
		return tm_error_set(err, TM_ERR_INVALID,
				    "tensor '%s' has no range: the model "
				    "gives none and nothing calibrated it (add "
				    "a calibration section)", t->name);
	st = t->symmetric_range
		     ? tm_quant_affine_symmetric(t->lo, t->hi, scale,
						 zero_point, err)
		     : tm_quant_affine(t->lo, t->hi, scale, zero_point, err);
	if (st)
		tm_error_prefix(err, "tensor '%s'", t->name);
	return st;
}

static tm_status
quantize_activation(tm_tensor *t, const tm_node *producer, tm_error *err)
{
	double given = t->q.scale;
	int32_t given_zp = t->q.zero_point;
	tm_status st = tm_priv_activation_params(t, producer, &t->q.scale,
						 &t->q.zero_point, err);

	if (!st && t->quant_given &&
	    (t->q.scale != given || t->q.zero_point != given_zp))
		tm_log(TM_LOG_NOTE, "quantize", "tensor '%s': the model's "
		       "scale %.9g and zero point %d replaced by %.9g and %d "
		       "(what the integer %s writes)", t->name, given,
		       (int)given_zp, t->q.scale, (int)t->q.zero_point,
		       tm_op_name(producer->op));
	if (!st)
		t->q.scheme = TM_QSCHEME_PER_TENSOR;
	return st;
}

/* The single consumer of tensor t, or NULL when none or several. */
static const tm_node *
sole_consumer(const tm_model *m, size_t t)
{
	const tm_node *found = NULL;

	for (size_t k = 0; k < m->n_nodes; k++)
		for (size_t i = 0; i < m->nodes[k]->n_inputs; i++)
			if (m->nodes[k]->inputs[i] == t) {
				if (found)
					return NULL;
				found = m->nodes[k];
			}
	return tm_model_is_output(m, t) ? NULL : found;
}

/* Weights whose int8 values and scales the frontend gave (an ONNX QDQ
 * model): kept as they are, per channel when the model has it whatever
 * the pipeline asks. Returns 0 when w has none, or when a transform
 * (bn_fold, cle) has changed the float weights since, so they no longer
 * equal q8 times the scale (as the frontend wrote them): those are
 * quantized again. */
/* The number of scales of weights w whose int8 values and scales the
 * frontend gave and whose float values still equal them (no transform
 * changed them since), or 0. */
static size_t
given_match(const tm_tensor *w)
{
	size_t nc, nw = tm_tensor_numel(w), per;

	if (!w->quant_given || !w->q8)
		return 0;
	nc = w->q.scheme == TM_QSCHEME_PER_CHANNEL ? w->q.n_channels : 1;
	per = nw / (nc ? nc : 1);
	for (size_t k = 0; k < nw; k++) {
		double s = nc > 1 ? w->q.scales[k / per] : w->q.scale;

		if (w->data[k] != (float)((double)w->q8[k] * s))
			return 0;
	}
	return nc;
}

static int
given_weights(tm_tensor *w, double **scales_out, size_t *n_out,
	      tm_status *st, tm_error *err)
{
	size_t nc = given_match(w);

	if (!nc)
		return 0;
	*scales_out = malloc(nc * sizeof **scales_out);
	if (!*scales_out) {
		*st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return 1;
	}
	for (size_t c = 0; c < nc; c++)
		(*scales_out)[c] = nc > 1 ? w->q.scales[c] : w->q.scale;
	*n_out = nc;
	w->dtype = TM_DTYPE_I8;
	*st = TM_OK;
	return 1;
}

/* Per-channel scales for weights [C, ...] along axis 0, or one scale;
 * each from max|w| / 127 of its slice (QUANT.md). The q params of w and
 * of b (bias scale s_in * s_w[c]) are set to match. */
static tm_status
quantize_weights(tm_tensor *w, int per_channel, double **scales_out,
		 size_t *n_out, tm_error *err)
{
	size_t nw = tm_tensor_numel(w);
	size_t nc = per_channel ? (size_t)w->shape[0] : 1;
	size_t per = nw / nc;
	double *sc;
	tm_status st;

	if (given_weights(w, scales_out, n_out, &st, err))
		return st;
	sc = calloc(nc, sizeof *sc);
	free(w->q8);
	w->q8 = malloc(nw ? nw : 1);
	if (!sc || !w->q8) {
		free(sc);
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	}
	for (size_t c = 0; c < nc; c++) {
		sc[c] = tm_quant_weight_scale(w->data + c * per, per);
		tm_quant_weights(w->data + c * per, per, sc[c],
				 w->q8 + c * per);
	}
	free(w->q.scales);
	free(w->q.zero_points);
	w->q.scales = NULL;
	w->q.zero_points = NULL;
	w->q.zero_point = 0;
	w->q.n_channels = 0;
	w->dtype = TM_DTYPE_I8;
	if (per_channel) {
		w->q.scheme = TM_QSCHEME_PER_CHANNEL;
		w->q.axis = 0;
		w->q.n_channels = nc;
		w->q.scales = malloc(nc * sizeof *w->q.scales);
		w->q.zero_points = calloc(nc, sizeof *w->q.zero_points);
		if (!w->q.scales || !w->q.zero_points) {
			free(sc);
			return tm_error_set(err, TM_ERR_NOMEM,
					    "out of memory");
		}
		memcpy(w->q.scales, sc, nc * sizeof *sc);
		w->q.scale = 0.0;
	} else {
		w->q.scheme = TM_QSCHEME_PER_TENSOR;
		w->q.scale = sc[0];
	}
	*scales_out = sc;
	*n_out = nc;
	return TM_OK;
}

tm_status
tm_quant_weights_dequantized(const tm_tensor *w, int per_channel, double *out,
			     tm_error *err)
{
	size_t nw = tm_tensor_numel(w);
	size_t nc = per_channel ? (size_t)w->shape[0] : 1, per = nw / nc;
	int8_t *q;

	if (given_match(w)) {	/* data is q8 times the scale already */
		for (size_t k = 0; k < nw; k++)
			out[k] = (double)w->data[k];
		return TM_OK;
	}
	q = malloc(nw ? nw : 1);
	if (!q)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (size_t c = 0; c < nc; c++) {
		double s = tm_quant_weight_scale(w->data + c * per, per);

		tm_quant_weights(w->data + c * per, per, s, q + c * per);
		for (size_t i = 0; i < per; i++)
			out[c * per + i] = (double)q[c * per + i] * s;
	}
	free(q);
	return TM_OK;
}

/* See quantize_priv.h. */
const tm_node *
tm_priv_folded_activation(const tm_model *m, const tm_node *n)
{
	const tm_node *next;

	switch (n->op) {
	case TM_OP_DENSE:
	case TM_OP_CONV2D:
	case TM_OP_BATCHNORM:
		break;
	case TM_OP_ADD:		/* of two activations (quantize_add) */
		if (m->tensors[n->inputs[0]]->kind == TM_TENSOR_CONST ||
		    m->tensors[n->inputs[1]]->kind == TM_TENSOR_CONST)
			return NULL;
		break;
	default:
		return NULL;
	}
	next = sole_consumer(m, n->outputs[0]);
	return next && (next->op == TM_OP_RELU || next->op == TM_OP_CLIP)
		       ? next
		       : NULL;
}

/* Folds a ReLU or Clip that alone reads n's output into n's clamp: n
 * then requantizes straight into that node's output tensor, whose
 * parameters bound the clamp (QUANT.md: ReLU act_min = zp; ReLU6 act_max
 * = lround(6 / s_out) + zp; any Clip(lo, hi) likewise at both ends). */
static void
fold_activation(tm_model *m, tm_node *n)
{
	const tm_node *next = tm_priv_folded_activation(m, n);
	const tm_tensor *y;
	double lo = -INFINITY, hi = INFINITY;

	n->fused_relu = next != NULL;
	n->requant_out = n->fused_relu ? next->outputs[0] : n->outputs[0];
	y = m->tensors[n->requant_out];
	if (n->fused_relu && next->op == TM_OP_RELU)
		lo = 0.0;
	else if (n->fused_relu) {
		lo = (double)next->attrs.clip_min;
		hi = (double)next->attrs.clip_max;
	}
	n->act_min = TM_QMIN;
	n->act_max = TM_QMAX;
	if (lo > -INFINITY) {
		double v = lo / y->q.scale + y->q.zero_point;

		if (v > TM_QMIN)
			n->act_min = v >= TM_QMAX ? TM_QMAX
						  : (int32_t)lround(v);
	}
	if (hi < INFINITY) {
		double v = hi / y->q.scale + y->q.zero_point;

		if (v < TM_QMAX)
			n->act_max = v <= TM_QMIN ? TM_QMIN
						  : (int32_t)lround(v);
	}
	if (n->act_max < n->act_min)
		n->act_max = n->act_min;
}

/* n->multiplier and n->shift for the real factors M[0 ... nr - 1]. */
static tm_status
set_requant(tm_node *n, const double *M, size_t nr, tm_error *err)
{
	tm_status st = TM_OK;

	free(n->multiplier);
	free(n->shift);
	n->n_requant = nr;
	n->multiplier = malloc(nr * sizeof *n->multiplier);
	n->shift = malloc(nr * sizeof *n->shift);
	if (!n->multiplier || !n->shift)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (size_t c = 0; c < nr && !st; c++)
		st = tm_quantize_multiplier(M[c], &n->multiplier[c],
					    &n->shift[c], err);
	if (st)
		tm_error_prefix(err, "%s: requantizer", n->name);
	return st;
}

/* The int32 bias b (out values) at s_in * s_w[c], per channel when nc >
 * 1 (QUANT.md), into b->q32. */
static tm_status
quantize_bias(tm_tensor *b, const float *data, size_t out, double s_in,
	      const double *s_w, size_t nc, const tm_node *n, tm_error *err)
{
	tm_status st = TM_OK;

	free(b->q32);
	b->q32 = malloc(out * sizeof *b->q32);
	if (!b->q32)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (size_t c = 0; c < nc && !st; c++) {
		size_t from = nc == 1 ? 0 : c, len = nc == 1 ? out : 1;

		st = tm_quant_bias(data + from, len, s_in, s_w[c],
				   b->q32 + from, err);
	}
	if (st) {
		tm_error_prefix(err, "%s: bias '%s'", n->name, b->name);
		return st;
	}
	b->q.scheme = nc == 1 ? TM_QSCHEME_PER_TENSOR : TM_QSCHEME_PER_CHANNEL;
	b->q.scale = nc == 1 ? s_in * s_w[0] : 0.0;
	b->q.zero_point = 0;
	b->dtype = TM_DTYPE_I32;
	return TM_OK;
}

/* Dense and conv2d (any group count): weights per tensor or per output
 * channel (axis 0 of [out, in] and of OIHW alike), int32 bias at s_in * s_w, one
 * requantizer per weight scale. */
static tm_status
quantize_weighted(tm_model *m, tm_node *n, int per_channel, tm_error *err)
{
	tm_tensor *x = m->tensors[n->inputs[0]];
	tm_tensor *w = m->tensors[n->inputs[1]];
	tm_tensor *b = n->n_inputs > 2 ? m->tensors[n->inputs[2]] : NULL;
	double *s_w = NULL, *M = NULL;
	size_t nc = 0, out = (size_t)w->shape[0];
	tm_tensor *y;
	tm_status st;

	fold_activation(m, n);
	y = m->tensors[n->requant_out];
	st = quantize_weights(w, per_channel, &s_w, &nc, err);
	if (st)
		return st;
	if (b) {
		st = quantize_bias(b, b->data, out, x->q.scale, s_w, nc, n,
				   err);
		if (st)
			goto out;
	}
	M = malloc(nc * sizeof *M);
	if (!M) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t c = 0; c < nc; c++)
		M[c] = x->q.scale * s_w[c] / y->q.scale;
	st = set_requant(n, M, nc, err);
out:
	free(M);
	free(s_w);
	return st;
}

/* A BatchNorm that bn_fold could not fold runs as its own integer layer,
 * a 1x1 depthwise convolution: per channel w_c = gamma_c / sqrt(var_c +
 * eps) and b_c = beta_c - mean_c w_c (the inference form of Ioffe and
 * Szegedy 2015). The int8 weights (one per channel, always per-channel
 * scales) go to gamma's q8, the int32 biases at s_in * s_c to beta's
 * q32, and the requantizers to the node. */
static tm_status
quantize_batchnorm(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *x = m->tensors[n->inputs[0]];
	tm_tensor *g = m->tensors[n->inputs[1]];
	tm_tensor *be = m->tensors[n->inputs[2]];
	const tm_tensor *mu = m->tensors[n->inputs[3]];
	const tm_tensor *var = m->tensors[n->inputs[4]];
	size_t C = (size_t)g->shape[0];
	double *s = calloc(C, sizeof *s), *M = calloc(C, sizeof *M);
	float *bias = calloc(C, sizeof *bias);
	tm_tensor *y;
	tm_status st;

	free(g->q8);
	g->q8 = malloc(C);
	free(g->q.scales);
	free(g->q.zero_points);
	g->q.scales = NULL;
	g->q.zero_points = calloc(C, sizeof *g->q.zero_points);
	if (!s || !M || !bias || !g->q8 || !g->q.zero_points) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	fold_activation(m, n);
	y = m->tensors[n->requant_out];
	for (size_t c = 0; c < C; c++) {
		double wc = (double)g->data[c] /
			    sqrt((double)var->data[c] +
				 (double)n->attrs.epsilon);
		float wf = (float)wc;

		bias[c] = (float)((double)be->data[c] -
				  (double)mu->data[c] * wc);
		s[c] = tm_quant_weight_scale(&wf, 1);
		tm_quant_weights(&wf, 1, s[c], &g->q8[c]);
		M[c] = x->q.scale * s[c] / y->q.scale;
	}
	g->q.scheme = TM_QSCHEME_PER_CHANNEL;
	g->q.axis = 0;
	g->q.n_channels = C;
	g->q.scale = 0.0;
	g->q.scales = s;
	s = NULL;
	g->dtype = TM_DTYPE_I8;
	st = quantize_bias(be, bias, C, x->q.scale, g->q.scales, C, n, err);
	if (!st)
		st = set_requant(n, M, C, err);
out:
	free(s);
	free(M);
	free(bias);
	return st;
}

/* One requantizer per data input k, M = s_k / s_out (pools, concat): the
 * identity (1073741824, -1) when the scales are equal. */
static tm_status
quantize_rescale(tm_model *m, tm_node *n, tm_error *err)
{
	const tm_tensor *y = m->tensors[n->outputs[0]];
	size_t ni = n->op == TM_OP_CONCAT ? n->n_inputs : 1;
	double *M = malloc(ni * sizeof *M);
	tm_status st;

	if (!M)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (size_t k = 0; k < ni; k++)
		M[k] = m->tensors[n->inputs[k]]->q.scale / y->q.scale;
	n->requant_out = n->outputs[0];
	n->act_min = TM_QMIN;
	n->act_max = TM_QMAX;
	st = set_requant(n, M, ni, err);
	free(M);
	return st;
}

/* Add of two activations, TFLite's int8 ADD (CalculateArithmeticOpData):
 * left shift 20; requantizers input1 = s1 / (2 max), input2 = s2 / (2
 * max), output = 2 max / (2^20 s_out), in that order. A constant operand
 * has no scale: the lowering refuses it. */
static tm_status
quantize_add(tm_model *m, tm_node *n, tm_error *err)
{
	const tm_tensor *a = m->tensors[n->inputs[0]];
	const tm_tensor *b = m->tensors[n->inputs[1]];
	double M[3], twice;

	if (b->kind == TM_TENSOR_CONST || a->kind == TM_TENSOR_CONST)
		return TM_OK;
	fold_activation(m, n);
	twice = 2.0 * (a->q.scale > b->q.scale ? a->q.scale : b->q.scale);
	M[0] = a->q.scale / twice;
	M[1] = b->q.scale / twice;
	M[2] = twice / ((double)(1 << ADD_LEFT_SHIFT) *
			m->tensors[n->requant_out]->q.scale);
	return set_requant(n, M, 3, err);
}

/* 256-entry table: entry = clamp(lround(f(x) / s_out) + zp_out), with
 * x = s_in (x_q - zp_in), indexed by (uint8_t)(x_q + 128) (QUANT.md). */
static tm_status
build_sigmoid_lut(const tm_model *m, tm_node *n, tm_error *err)
{
	const tm_tensor *x = m->tensors[n->inputs[0]];
	const tm_tensor *y = m->tensors[n->outputs[0]];

	free(n->lut);
	n->lut = malloc(256);
	if (!n->lut)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (int q = TM_QMIN; q <= TM_QMAX; q++) {
		double xr = x->q.scale * (double)(q - x->q.zero_point);
		double f = 1.0 / (1.0 + exp(-xr));
		long v = lround(f / y->q.scale) + y->q.zero_point;

		if (v < TM_QMIN)
			v = TM_QMIN;
		if (v > TM_QMAX)
			v = TM_QMAX;
		n->lut[(uint8_t)(q + 128)] = (int8_t)v;
	}
	return TM_OK;
}

tm_status
tm_priv_quantize(tm_model *m, const unsigned char *per_channel,
		 tm_error *err)
{
	tm_status st;

	for (size_t i = 0; i < m->n_inputs; i++) {
		st = quantize_activation(m->tensors[m->inputs[i]], NULL, err);
		if (st)
			return st;
	}
	for (size_t k = 0; k < m->n_nodes; k++) {
		tm_node *n = m->nodes[k];

		for (size_t o = 0; o < n->n_outputs; o++) {
			st = quantize_activation(m->tensors[n->outputs[o]], n,
						 err);
			if (st)
				return st;
		}
	}
	for (size_t k = 0; k < m->n_nodes; k++) {
		tm_node *n = m->nodes[k];

		switch (n->op) {
		case TM_OP_DENSE:
		case TM_OP_CONV2D:
			st = quantize_weighted(m, n,
					       per_channel && per_channel[k],
					       err);
			break;
		case TM_OP_BATCHNORM:
			st = quantize_batchnorm(m, n, err);
			break;
		case TM_OP_MAXPOOL2D:
		case TM_OP_AVGPOOL2D:
		case TM_OP_GLOBAL_AVGPOOL:
		case TM_OP_CONCAT:
			st = quantize_rescale(m, n, err);
			break;
		case TM_OP_ADD:
			st = quantize_add(m, n, err);
			break;
		case TM_OP_SIGMOID:
			st = build_sigmoid_lut(m, n, err);
			break;
		default:
			st = TM_OK;
			break;
		}
		if (st)
			return st;
	}
	return TM_OK;
}
