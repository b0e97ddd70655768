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

static tm_status
quantize_dense(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *x = m->tensors[n->inputs[0]];
	tm_tensor *w = m->tensors[n->inputs[1]];
	tm_tensor *b = n->n_inputs > 2 ? m->tensors[n->inputs[2]] : NULL;
	tm_node *next = sole_consumer(m, n->outputs[0]);
	size_t nw = tm_tensor_numel(w);
	tm_tensor *y;
	double s_w, ratio;
	tm_status st;

	/* A ReLU that alone consumes the output folds into the clamp: the
	 * requantizer writes straight into the ReLU's output. */
	n->fused_relu = next && next->op == TM_OP_RELU;
	n->requant_out = n->fused_relu ? next->outputs[0] : n->outputs[0];
	y = m->tensors[n->requant_out];

	s_w = tm_quant_weight_scale(w->data, nw);
	free(w->q8);
	w->q8 = malloc(nw);
	if (!w->q8)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	tm_quant_weights(w->data, nw, s_w, w->q8);
	w->q.scheme = TM_QSCHEME_PER_TENSOR;
	w->q.scale = s_w;
	w->q.zero_point = 0;
	w->dtype = TM_DTYPE_I8;

	if (b) {
		size_t nb = tm_tensor_numel(b);

		free(b->q32);
		b->q32 = malloc(nb * sizeof *b->q32);
		if (!b->q32)
			return tm_error_set(err, TM_ERR_NOMEM,
					    "out of memory");
		st = tm_quant_bias(b->data, nb, x->q.scale, s_w, b->q32, err);
		if (st) {
			tm_error_prefix(err, "%s: bias '%s'", n->name,
					b->name);
			return st;
		}
		b->q.scheme = TM_QSCHEME_PER_TENSOR;
		b->q.scale = x->q.scale * s_w;
		b->q.zero_point = 0;
		b->dtype = TM_DTYPE_I32;
	}

	free(n->multiplier);
	free(n->shift);
	n->n_requant = 1;
	n->multiplier = malloc(sizeof *n->multiplier);
	n->shift = malloc(sizeof *n->shift);
	if (!n->multiplier || !n->shift)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	ratio = x->q.scale * s_w / y->q.scale;
	st = tm_quantize_multiplier(ratio, &n->multiplier[0], &n->shift[0],
				    err);
	if (st) {
		tm_error_prefix(err, "%s: requantizer", n->name);
		return st;
	}
	n->act_min = n->fused_relu ? y->q.zero_point : TM_QMIN;
	if (n->act_min < TM_QMIN)
		n->act_min = TM_QMIN;
	n->act_max = TM_QMAX;
	return TM_OK;
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
tm_priv_quantize(tm_model *m, tm_error *err)
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
			st = quantize_dense(m, n, err);
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
