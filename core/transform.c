/* tmpipe — what the core gives transforms (see transform_priv.h). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/quant.h>

#include "dataset_priv.h"
#include "interp_priv.h"
#include "quantize_priv.h"
#include "transform_priv.h"

/* The reserved slots the needs and run_ctx fields took: the size of the
 * ops table did not change (ABI 1.0 plugins built before still load). */
_Static_assert(sizeof(tm_transform_ops) ==
		       sizeof(void (*)(void)) + 4 * sizeof(void *),
	       "tm_transform_ops changed size");

tm_status
tm_tensor_set_bn(tm_tensor *t, const float *beta, const float *gamma,
		 size_t n, tm_error *err)
{
	float *b, *g;

	if (!t || t->kind == TM_TENSOR_CONST || t->ndim < 1 ||
	    (size_t)t->shape[0] != n || !beta || !gamma)
		return tm_error_set(err, TM_ERR_INVALID,
				    "BatchNorm statistics of '%s': %zu "
				    "channels for a tensor of %lld",
				    t ? t->name : "?", n,
				    t && t->ndim ? (long long)t->shape[0] : 0);
	b = malloc(n * sizeof *b);
	g = malloc(n * sizeof *g);
	if (!b || !g) {
		free(b);
		free(g);
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	}
	memcpy(b, beta, n * sizeof *b);
	memcpy(g, gamma, n * sizeof *g);
	free(t->bn_beta);
	free(t->bn_gamma);
	t->bn_beta = b;
	t->bn_gamma = g;
	t->n_bn = n;
	return TM_OK;
}

tm_status
tm_tensor_add_qdelta(tm_tensor *t, const float *delta, tm_error *err)
{
	size_t n = t ? tm_tensor_numel(t) : 0;

	if (!t || t->kind != TM_TENSOR_CONST || !t->data || !delta)
		return tm_error_set(err, TM_ERR_INVALID, "'%s' is not a "
				    "constant", t ? t->name : "?");
	for (size_t i = 0; i < n; i++)
		if (!isfinite(t->data[i] + delta[i]))
			return tm_error_set(err, TM_ERR_NUMERIC,
					    "'%s': a correction makes value "
					    "%zu overflow", t->name, i);
	if (!t->qorig) {
		t->qorig = malloc(n ? n * sizeof *t->qorig : 1);
		if (!t->qorig)
			return tm_error_set(err, TM_ERR_NOMEM,
					    "out of memory");
		memcpy(t->qorig, t->data, n * sizeof *t->qorig);
	}
	for (size_t i = 0; i < n; i++)
		t->data[i] += delta[i];
	return TM_OK;
}

size_t
tm_priv_qdelta_restore(tm_model *m)
{
	size_t restored = 0;

	for (size_t i = 0; i < m->n_tensors; i++) {
		tm_tensor *t = m->tensors[i];

		if (!t->qorig)
			continue;
		memcpy(t->data, t->qorig, tm_tensor_numel(t) * sizeof *t->data);
		free(t->qorig);
		t->qorig = NULL;
		restored++;
	}
	return restored;
}

unsigned
tm_priv_transform_needs(const tm_stage *s)
{
	const tm_transform_ops *ops = s->plugin->desc->ops;

	return ops->needs;
}

size_t
tm_priv_transforms_split(const tm_pipeline *pl)
{
	for (size_t i = 0; i < pl->n_transforms; i++)
		if (tm_priv_transform_needs(&pl->transforms[i]) &
		    TM_TRANSFORM_NEEDS_DATA)
			return i;
	return pl->n_transforms;
}

static const char *
stage_name(const tm_stage *s)
{
	return s->plugin->desc->name;
}

tm_status
tm_priv_transforms_check(const tm_pipeline *pl, const char *file,
			 tm_error *err)
{
	const tm_stage *data = NULL, *bn = NULL;

	for (size_t i = 0; i < pl->n_transforms; i++) {
		const tm_stage *s = &pl->transforms[i];
		unsigned needs = tm_priv_transform_needs(s);

		if ((needs & TM_TRANSFORM_NEEDS_BN) && !bn)
			return tm_error_set_at(err, TM_ERR_INVALID, file,
					       s->line, s->col,
					       "%s needs BatchNorm statistics: "
					       "list it after bn_fold (or "
					       "another transform that records "
					       "them)", stage_name(s));
		if ((needs & TM_TRANSFORM_FLOAT_WEIGHTS) && data)
			return tm_error_set_at(err, TM_ERR_INVALID, file,
					       s->line, s->col,
					       "%s rewrites the float model "
					       "and must run before "
					       "calibration: list it before "
					       "%s, which is fitted to the "
					       "model it sees",
					       stage_name(s), stage_name(data));
		if (needs & TM_TRANSFORM_NEEDS_DATA) {
			if (!pl->has_calibration)
				return tm_error_set_at(
					err, TM_ERR_INVALID, file, s->line,
					s->col, "%s needs calibration data: "
					"add a calibration section",
					stage_name(s));
			if (!data)
				data = s;
		}
		if ((needs & TM_TRANSFORM_GIVES_BN) && !bn)
			bn = s;
	}
	return TM_OK;
}

/* --- tm_transform_ctx -------------------------------------------------- */

/* Streams the calibration data through m (fake-quantized by fq and
 * consts when not NULL: tm_priv_interp_fake_quant). */
static tm_status
stream(const tm_transform_ctx *ctx, const tm_model *m, const size_t *tensors,
       size_t n, tm_tensor_visit_fn visit, void *user, const tm_fq *fq,
       const float *const *consts, tm_error *err)
{
	tm_dataset *ds = NULL;
	tm_dataset_reader *rd = NULL;
	tm_interp *it = NULL;
	float **in = NULL;
	size_t batch;
	tm_status st;

	if (!ctx || !ctx->pl || !ctx->pl->has_calibration)
		return tm_error_set(err, TM_ERR_INVALID, "no calibration "
				    "data to stream");
	for (size_t k = 0; k < n; k++)
		if (tensors[k] >= m->n_tensors ||
		    m->tensors[tensors[k]]->kind == TM_TENSOR_CONST)
			return tm_error_set(err, TM_ERR_INVALID, "tensor %zu "
					    "is not an activation",
					    tensors[k]);
	batch = ctx->pl->batch ? ctx->pl->batch : 1;
	st = tm_priv_dataset_open(m, ctx->pl, batch, &ds, err);
	if (st)
		return st;
	rd = tm_priv_dataset_reader_new(ds, err);
	it = rd ? tm_priv_interp_new(m, batch, err) : NULL;
	in = calloc(m->n_inputs ? m->n_inputs : 1, sizeof *in);
	if (!it || !in) {
		st = !in ? tm_error_set(err, TM_ERR_NOMEM, "out of memory")
			 : err ? err->code : TM_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < m->n_inputs; i++)
		in[i] = tm_priv_interp_input(it, i);
	tm_priv_interp_fake_quant(it, fq, consts);
	for (size_t b = 0; b < tm_priv_dataset_batches(ds) && !st; b++) {
		size_t got = 0;

		st = tm_priv_dataset_read(rd, b, in, &got, err);
		if (!st)
			st = tm_priv_interp_run(it, got, err);
		for (size_t k = 0; k < n && !st; k++)
			st = visit(user, tensors[k],
				   tm_priv_interp_tensor(it, tensors[k]), got,
				   err);
	}
out:
	free(in);
	tm_priv_interp_free(it);
	tm_priv_dataset_reader_free(rd);
	tm_priv_dataset_free(ds);
	return st;
}

tm_status
tm_transform_ctx_stream(const tm_transform_ctx *ctx, const tm_model *m,
			const size_t *tensors, size_t n,
			tm_tensor_visit_fn visit, void *user, tm_error *err)
{
	return stream(ctx, m, tensors, n, visit, user, NULL, NULL, err);
}

/* The fake quantization of activation t (produced by node n, NULL for a
 * model input): the scale and zero point the quantize pass gives it. */
static tm_status
activation_fq(const tm_model *m, const tm_node *n, size_t t, tm_fq *fq,
	      tm_error *err)
{
	tm_status st;

	/* The int8 model never holds the output of a layer whose ReLU or
	 * Clip is folded into it. */
	fq->on = 0;
	if (n && tm_priv_folded_activation(m, n))
		return TM_OK;
	st = tm_priv_activation_params(m->tensors[t], n, &fq->scale,
				       &fq->zero_point, err);
	fq->on = !st;
	return st;
}

/* The dequantized int8 weights of dense or conv2d node n, per tensor or
 * per output channel as the quantize pass makes them: q * scale. */
static float *
dequantized_weights(const tm_tensor *w, int per_channel, tm_error *err)
{
	size_t nw = tm_tensor_numel(w);
	float *d = malloc(nw ? nw * sizeof *d : 1);
	double *v = malloc(nw ? nw * sizeof *v : 1);

	if (!d || !v || tm_quant_weights_dequantized(w, per_channel, v, err)) {
		if (!d || !v)
			tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		free(d);
		free(v);
		return NULL;
	}
	for (size_t k = 0; k < nw; k++)
		d[k] = (float)v[k];
	free(v);
	return d;
}

tm_status
tm_transform_ctx_stream_quantized(const tm_transform_ctx *ctx,
				  const tm_model *m, const size_t *tensors,
				  size_t n, tm_tensor_visit_fn visit,
				  void *user, tm_error *err)
{
	tm_fq *fq = NULL;
	float **consts = NULL;
	unsigned char *pc = NULL;
	tm_status st = TM_OK;

	if (!ctx || !ctx->pl || !ctx->pl->has_calibration)
		return tm_error_set(err, TM_ERR_INVALID, "no calibration "
				    "data to stream");
	fq = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *fq);
	consts = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *consts);
	pc = calloc(m->n_nodes ? m->n_nodes : 1, 1);
	if (!fq || !consts || !pc) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	st = tm_priv_pipeline_per_channel(ctx->pl, m, pc, err);
	for (size_t i = 0; i < m->n_inputs && !st; i++)
		st = activation_fq(m, NULL, m->inputs[i], &fq[m->inputs[i]],
				   err);
	for (size_t k = 0; k < m->n_nodes && !st; k++) {
		const tm_node *nd = m->nodes[k];
		size_t w;

		st = activation_fq(m, nd, nd->outputs[0], &fq[nd->outputs[0]],
				   err);
		if (st || (nd->op != TM_OP_DENSE && nd->op != TM_OP_CONV2D))
			continue;
		/* A weight that several layers share: the last one's
		 * choice, as the quantize pass (it quantizes in node
		 * order). */
		w = nd->inputs[1];
		free(consts[w]);
		consts[w] = dequantized_weights(m->tensors[w], pc[k], err);
		if (!consts[w])
			st = err ? err->code : TM_ERR_NOMEM;
	}
	if (!st)
		st = stream(ctx, m, tensors, n, visit, user, fq,
			    (const float *const *)consts, err);
out:
	for (size_t t = 0; consts && t < m->n_tensors; t++)
		free(consts[t]);
	free(consts);
	free(fq);
	free(pc);
	return st;
}

int
tm_transform_ctx_per_channel(const tm_transform_ctx *ctx,
			     const tm_model *m, size_t node, tm_error *err)
{
	unsigned char *pc;
	int r;

	if (!ctx || !ctx->pl || node >= m->n_nodes) {
		tm_error_set(err, TM_ERR_INVALID, "no node %zu", node);
		return -1;
	}
	pc = calloc(m->n_nodes, 1);
	if (!pc) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return -1;
	}
	r = tm_priv_pipeline_per_channel(ctx->pl, m, pc, err) ? -1
							      : pc[node];
	free(pc);
	return r;
}
