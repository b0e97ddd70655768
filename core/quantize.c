/* tmpipe — the quantize pass. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/quant.h>

#include "quantize_priv.h"

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

static tm_status
quantize_activation(tm_tensor *t, const tm_node *producer, tm_error *err)
{
	tm_status st;

	if (t->quant_given)	/* the frontend's, kept as given */
		return TM_OK;
	if (producer && fixed_params(producer->op, &t->q.scale,
				     &t->q.zero_point)) {
		t->q.scheme = TM_QSCHEME_PER_TENSOR;
		return TM_OK;
	}
	if (!t->has_range)
		return tm_error_set(err, TM_ERR_INVALID,
				    "tensor '%s' has no range: calibrate "
				    "before quantizing", t->name);
	st = t->symmetric_range
		     ? tm_quant_affine_symmetric(t->lo, t->hi, &t->q.scale,
						 &t->q.zero_point, err)
		     : tm_quant_affine(t->lo, t->hi, &t->q.scale,
				       &t->q.zero_point, err);
	if (st) {
		tm_error_prefix(err, "tensor '%s'", t->name);
		return st;
	}
	t->q.scheme = TM_QSCHEME_PER_TENSOR;
	return TM_OK;
}

/* The single consumer of tensor t, or NULL when none or several. */
static tm_node *
sole_consumer(const tm_model *m, size_t t)
{
	tm_node *found = NULL;

	for (size_t k = 0; k < m->n_nodes; k++)
		for (size_t i = 0; i < m->nodes[k]->n_inputs; i++)
			if (m->nodes[k]->inputs[i] == t) {
				if (found)
					return NULL;
				found = m->nodes[k];
			}
	for (size_t i = 0; i < m->n_outputs; i++)
		if (m->outputs[i] == t)
			return NULL;
	return found;
}

/* Weights whose int8 values and scales the frontend gave (an ONNX QDQ
 * model): kept as they are, per channel when the model has it whatever
 * the pipeline asks. Returns 0 when w has none. */
static int
given_weights(tm_tensor *w, double **scales_out, size_t *n_out,
	      tm_status *st, tm_error *err)
{
	size_t nc;

	if (!w->quant_given || !w->q8)
		return 0;
	nc = w->q.scheme == TM_QSCHEME_PER_CHANNEL ? w->q.n_channels : 1;
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

static tm_status
quantize_dense(tm_model *m, tm_node *n, int per_channel, tm_error *err)
{
	tm_tensor *x = m->tensors[n->inputs[0]];
	tm_tensor *w = m->tensors[n->inputs[1]];
	tm_tensor *b = n->n_inputs > 2 ? m->tensors[n->inputs[2]] : NULL;
	tm_node *next = sole_consumer(m, n->outputs[0]);
	double *s_w = NULL;
	size_t nc = 0, out = (size_t)w->shape[0];
	tm_tensor *y;
	tm_status st;

	/* A ReLU that alone consumes the output folds into the clamp: the
	 * requantizer writes straight into the ReLU's output. */
	n->fused_relu = next && next->op == TM_OP_RELU;
	n->requant_out = n->fused_relu ? next->outputs[0] : n->outputs[0];
	y = m->tensors[n->requant_out];

	st = quantize_weights(w, per_channel, &s_w, &nc, err);
	if (st)
		return st;
	if (b) {
		free(b->q32);
		b->q32 = malloc(out * sizeof *b->q32);
		if (!b->q32) {
			st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
			goto out;
		}
		/* Bias scale s_in * s_w, per channel with the weights. */
		for (size_t c = 0; c < nc && !st; c++) {
			size_t from = nc == 1 ? 0 : c, len = nc == 1 ? out : 1;

			st = tm_quant_bias(b->data + from, len, x->q.scale,
					   s_w[c], b->q32 + from, err);
		}
		if (st) {
			tm_error_prefix(err, "%s: bias '%s'", n->name,
					b->name);
			goto out;
		}
		b->q.scheme = w->q.scheme;
		b->q.scale = nc == 1 ? x->q.scale * s_w[0] : 0.0;
		b->q.zero_point = 0;
		b->dtype = TM_DTYPE_I32;
	}

	free(n->multiplier);
	free(n->shift);
	n->n_requant = nc;
	n->multiplier = malloc(nc * sizeof *n->multiplier);
	n->shift = malloc(nc * sizeof *n->shift);
	if (!n->multiplier || !n->shift) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t c = 0; c < nc && !st; c++)
		st = tm_quantize_multiplier(x->q.scale * s_w[c] / y->q.scale,
					    &n->multiplier[c], &n->shift[c],
					    err);
	if (st) {
		tm_error_prefix(err, "%s: requantizer", n->name);
		goto out;
	}
	n->act_min = n->fused_relu ? y->q.zero_point : TM_QMIN;
	if (n->act_min < TM_QMIN)
		n->act_min = TM_QMIN;
	n->act_max = TM_QMAX;
out:
	free(s_w);
	return st;
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
			st = quantize_dense(m, n,
					    per_channel && per_channel[k], err);
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
