/* bias_correct — empirical bias correction (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction", section
 * 4.2, "Bias correction").
 *
 * Quantizing the weights W of a dense or conv2d layer to W_q gives the
 * output an error (W_q - W) x whose expectation need not be zero:
 *
 *	E[y_q] - E[y] = (W_q - W) E[x]		(the paper's eps E[x])
 *
 * The paper gets E[x] from the BatchNorm statistics (analytic) or from
 * data (empirical); this is the empirical form. W_q are the weights
 * exactly as the quantize pass will make them (the pipeline's quantize
 * section: per tensor or per output channel; tm_quant_weight_scale and
 * tm_quant_weights, dequantized q * scale); x is the layer's float input
 * as the float model computes it over the calibration data (not
 * fake-quantized: the correction is for the weights' error alone, and
 * the quantized model's inputs approximate the float model's). The
 * layer's bias is then corrected by -(W_q - W) E[x], per output channel.
 *
 * For a conv2d, E[.] runs over the samples and the output positions, and
 * by linearity only the mean of x at each kernel tap matters:
 *
 *	E[y_q - y][o] = sum over ci, kh, kw of
 *			(W_q - W)[o, ci, kh, kw] M[g ci, kh, kw]
 *
 * M[c, kh, kw] the mean over samples and output positions of the input
 * value that tap (kh, kw) reads for channel c, zero where it falls in the
 * padding: exact at the borders too. So the pass streams: one run of
 * the float model over the calibration data (tm_transform_ctx_stream),
 * keeping one running sum per input feature (dense) or per channel and
 * tap (conv2d), whatever the number of samples.
 *
 * The correction is for the int8 model only: it goes in through
 * tm_tensor_add_qdelta, so the quantize pass quantizes the corrected bias
 * and the core then restores the float bias: the float model, which
 * verify measures against, and its calibrated ranges stay what they were
 * (the int8 model approximates the uncorrected float model; its ranges
 * are that model's). A layer whose weight or bias another layer shares is
 * left alone, with a note.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/tmpipe.h>

#define NAME "bias_correct"

typedef struct layer {
	tm_node *node;
	size_t x;		/* input tensor index */
	size_t out, in_g, kh, kw, groups;
	size_t n_mean;		/* dense: K; conv: C * kh * kw */
	double *sum;		/* running sums of the tap inputs */
	size_t count;		/* samples (times output positions) */
} layer;

typedef struct bc {
	tm_model *m;
	layer *layers;
	size_t n_layers;
} bc;

static int
has_weights(const tm_node *n)
{
	return n->op == TM_OP_DENSE || n->op == TM_OP_CONV2D;
}

/* Adds the tap sums of one sample x[C, H, W] of conv layer l. */
static void
conv_taps(layer *l, const tm_model *m, const float *x)
{
	const tm_node *n = l->node;
	const tm_tensor *xt = m->tensors[l->x];
	const tm_tensor *yt = m->tensors[n->outputs[0]];
	int64_t C = xt->shape[0], H = xt->shape[1], W = xt->shape[2];
	int64_t Ho = yt->shape[1], Wo = yt->shape[2];
	const tm_attrs *at = &n->attrs;

	for (int64_t c = 0; c < C; c++)
		for (size_t i = 0; i < l->kh; i++)
			for (size_t j = 0; j < l->kw; j++) {
				double s = 0.0;

				for (int64_t oh = 0; oh < Ho; oh++) {
					int64_t ih = oh * at->stride[0] -
						     at->pads[0] +
						     (int64_t)i *
							     at->dilation[0];

					if (ih < 0 || ih >= H)
						continue;
					for (int64_t ow = 0; ow < Wo; ow++) {
						int64_t iw =
							ow * at->stride[1] -
							at->pads[1] +
							(int64_t)j *
								at->dilation[1];

						if (iw >= 0 && iw < W)
							s += x[(c * H + ih) *
								       W +
							       iw];
					}
				}
				l->sum[((size_t)c * l->kh + i) * l->kw + j] +=
					s;
			}
	l->count += (size_t)(Ho * Wo);
}

static tm_status
visit(void *user, size_t tensor, const float *values, size_t n,
      tm_error *err)
{
	bc *c = user;

	(void)err;
	for (size_t k = 0; k < c->n_layers; k++) {
		layer *l = &c->layers[k];
		size_t per = tm_tensor_numel(c->m->tensors[tensor]);

		if (l->x != tensor)
			continue;
		for (size_t s = 0; s < n; s++) {
			const float *x = values + s * per;

			if (l->node->op == TM_OP_CONV2D) {
				conv_taps(l, c->m, x);
				continue;
			}
			for (size_t i = 0; i < l->n_mean; i++)
				l->sum[i] += x[i];
			l->count++;
		}
	}
	return TM_OK;
}

/* The dequantized weights minus the float ones, as the quantize pass
 * will quantize them. */
static tm_status
weight_error(const tm_tensor *w, int per_channel, double *dw, tm_error *err)
{
	size_t nw = tm_tensor_numel(w), nc = per_channel ?
						     (size_t)w->shape[0] : 1;
	size_t per = nw / nc;
	int8_t *q = malloc(nw ? nw : 1);

	if (!q)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (size_t c = 0; c < nc; c++) {
		double s = tm_quant_weight_scale(w->data + c * per, per);

		tm_quant_weights(w->data + c * per, per, s, q + c * per);
		for (size_t i = 0; i < per; i++)
			dw[c * per + i] = (double)q[c * per + i] * s -
					  (double)w->data[c * per + i];
	}
	free(q);
	return TM_OK;
}

/* A tensor name for a new bias of layer l (bn_fold's rule). */
static void
bias_name(const tm_model *m, const tm_node *l, char *buf, size_t size)
{
	snprintf(buf, size, "%s.bias", l->name);
	for (unsigned i = 1; tm_model_find_tensor(m, buf); i++)
		snprintf(buf, size, "%s.bias.%u", l->name, i);
}

/* Corrects layer l's bias by -(W_q - W) E[x]. */
static tm_status
correct(bc *c, layer *l, int per_channel, tm_error *err)
{
	tm_model *m = c->m;
	tm_node *n = l->node;
	const tm_tensor *w = m->tensors[n->inputs[1]];
	size_t nw = tm_tensor_numel(w), per = l->in_g * l->kh * l->kw;
	double *dw = malloc(nw * sizeof *dw), most = 0.0;
	float *delta = calloc(l->out, sizeof *delta);
	tm_tensor *b;
	tm_status st;

	if (!dw || !delta) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	st = weight_error(w, per_channel, dw, err);
	if (st)
		goto out;
	for (size_t o = 0; o < l->out; o++) {
		size_t g = o / (l->out / l->groups);
		double e = 0.0;

		/* Input channel ci of o's group is channel g in_g + ci of
		 * x; its taps follow it in sum. */
		for (size_t i = 0; i < per; i++)
			e += dw[o * per + i] *
			     (l->sum[g * per + i] / (double)l->count);
		delta[o] = (float)-e;
		most = fmax(most, fabs(e));
	}
	if (n->n_inputs < 3) {
		int64_t shape[1] = { (int64_t)l->out };
		float *zeros = calloc(l->out, sizeof *zeros);
		char name[512];

		if (!zeros) {
			st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
			goto out;
		}
		bias_name(m, n, name, sizeof name);
		st = tm_model_add_const(m, name, 1, shape, zeros, err);
		free(zeros);
		if (!st)
			st = tm_model_node_add_input(m, n, name, err);
		if (st)
			goto out;
	}
	b = m->tensors[n->inputs[2]];
	st = tm_tensor_add_qdelta(b, delta, err);
	if (st) {
		tm_error_prefix(err, "%s: '%s'", NAME, n->name);
		goto out;
	}
	tm_log(TM_LOG_NOTE, NAME, "'%s': weights per %s, expected output "
	       "error up to %.6g per channel, corrected", n->name,
	       per_channel ? "channel" : "tensor", most);
out:
	free(dw);
	free(delta);
	return st;
}

static tm_status
add_layer(bc *c, tm_node *n, tm_error *err)
{
	const tm_tensor *w = c->m->tensors[n->inputs[1]];
	layer *v = realloc(c->layers, (c->n_layers + 1) * sizeof *v), *l;

	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	c->layers = v;
	l = &v[c->n_layers];
	memset(l, 0, sizeof *l);
	l->node = n;
	l->x = n->inputs[0];
	l->out = (size_t)w->shape[0];
	l->in_g = (size_t)w->shape[1];
	l->kh = n->op == TM_OP_CONV2D ? (size_t)w->shape[2] : 1;
	l->kw = n->op == TM_OP_CONV2D ? (size_t)w->shape[3] : 1;
	l->groups = n->op == TM_OP_CONV2D ? (size_t)n->attrs.group : 1;
	l->n_mean = l->in_g * l->groups * l->kh * l->kw;
	l->sum = calloc(l->n_mean, sizeof *l->sum);
	if (!l->sum)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	c->n_layers++;
	return TM_OK;
}

static tm_status
correct_run(tm_model *m, const tm_params *params, const tm_transform_ctx *ctx,
	    unsigned *preserved, tm_error *err)
{
	bc c = { .m = m };
	size_t *xs = NULL, n_x = 0;
	tm_status st = TM_OK;

	(void)params;
	/* The float model and its ranges stay: the correction is undone
	 * in the float model after the quantize pass (see above). */
	*preserved = TM_PRESERVE_RANGES;
	for (size_t k = 0; k < m->n_nodes && !st; k++) {
		tm_node *n = m->nodes[k];
		int shared = 0;

		if (!has_weights(n))
			continue;
		for (size_t i = 1; i < n->n_inputs; i++)
			shared |= tm_model_tensor_uses(m, n->inputs[i]) != 1;
		if (shared) {
			tm_log(TM_LOG_NOTE, NAME, "'%s' shares a weight or "
			       "bias with another layer: not corrected",
			       n->name);
			continue;
		}
		st = add_layer(&c, n, err);
	}
	if (st)
		goto out;
	if (!c.n_layers) {
		tm_log(TM_LOG_NOTE, NAME, "no dense or conv2d layer to "
		       "correct");
		goto out;
	}
	xs = malloc(c.n_layers * sizeof *xs);
	if (!xs) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < c.n_layers; k++) {
		size_t j = 0;

		while (j < n_x && xs[j] != c.layers[k].x)
			j++;
		if (j == n_x)
			xs[n_x++] = c.layers[k].x;
	}
	st = tm_transform_ctx_stream(ctx, m, xs, n_x, visit, &c, err);
	/* Per-channel choices come from the nodes as they are: look the
	 * index up again (correct() may add a bias tensor, not a node). */
	for (size_t k = 0; k < c.n_layers && !st; k++) {
		size_t idx = 0;
		int pc;

		while (idx < m->n_nodes && m->nodes[idx] != c.layers[k].node)
			idx++;
		pc = tm_transform_ctx_per_channel(ctx, m, idx, err);
		if (pc < 0) {
			st = err ? err->code : TM_ERR_INVALID;
			break;
		}
		if (c.layers[k].count)
			st = correct(&c, &c.layers[k], pc, err);
	}
out:
	for (size_t k = 0; k < c.n_layers; k++)
		free(c.layers[k].sum);
	free(c.layers);
	free(xs);
	return st;
}

static const tm_param_spec correct_params[] = {
	TM_PARAM_END
};

static const tm_transform_ops correct_ops = {
	.needs = TM_TRANSFORM_NEEDS_DATA,
	.run_ctx = correct_run,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_TRANSFORM, "bias_correct", "1.0",
		 "empirical bias correction of the int8 weights' expected "
		 "error (Nagel et al. 2019)",
		 correct_params, &correct_ops)
