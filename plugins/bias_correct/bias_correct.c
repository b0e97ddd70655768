/* bias_correct — empirical bias correction (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction", section
 * 4.2, "Bias correction").
 *
 * The int8 model's pre-activations y~ = W_q x~ + b of a dense or conv2d
 * layer differ from the float model's y = W x + b in mean: the weights
 * are rounded (W_q), and so is, in the int8 model, everything upstream
 * of the layer's input (x~: rounded and clipped to the calibrated
 * ranges, through earlier layers that have rounded weights too). The
 * paper corrects the bias by the expected difference per output channel,
 * measured on data:
 *
 *	E[y~] - E[y] = W_q E[x~] - W E[x]
 *
 * mode: empirical (the default) does exactly that, with E[x~] from the
 * calibration data streamed through the int8 model as the quantize pass
 * will make it, emulated in float (tm_transform_ctx_stream_quantized):
 * the layers in topological order, each layer's E[x~] measured with the
 * earlier layers' corrections in place. One stream corrects every layer
 * whose input no uncorrected layer feeds: a chain of L layers takes L
 * streams, plus one of the float model for E[x].
 *
 * mode: weights takes x~ = x: the correction -(W_q - W) E[x] is for the
 * weights' own rounding alone (the paper's eps E[x]), from one stream of
 * the float model.
 *
 * W_q are the weights exactly as the quantize pass will make them (the
 * pipeline's quantize section: per tensor or per output channel;
 * tm_quant_weight_scale and tm_quant_weights, dequantized q * scale).
 *
 * For a conv2d, E[.] runs over the samples and the output positions, and
 * by linearity only the mean of the input at each kernel tap matters:
 *
 *	E[y~ - y][o] = sum over ci, kh, kw of
 *			W_q[o, ci, kh, kw] M~[g ci, kh, kw] -
 *			W[o, ci, kh, kw] M[g ci, kh, kw]
 *
 * M[c, kh, kw] the mean over samples and output positions of the input
 * value that tap (kh, kw) reads for channel c, zero where it falls in the
 * padding (the int8 model pads with the zero point, the same real 0):
 * exact at the borders too. Each stream keeps one running sum per input
 * feature (dense) or per channel and tap (conv2d), whatever the number of
 * samples.
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
	size_t idx;		/* node index */
	size_t x;		/* input tensor index */
	size_t out, in_g, kh, kw, groups;
	size_t n_mean;		/* dense: K; conv: C * kh * kw */
	double *sum;		/* running sums of the tap inputs */
	size_t count;		/* samples (times output positions) */
	double *qsum;		/* the same in the int8 model (empirical) */
	size_t qcount;
	int active;		/* measured by the current stream */
	int done;		/* corrected */
} layer;

typedef struct bc {
	tm_model *m;
	layer *layers;
	size_t n_layers;
	int quantized;		/* the stream is the int8 model's */
} bc;

static int
has_weights(const tm_node *n)
{
	return n->op == TM_OP_DENSE || n->op == TM_OP_CONV2D;
}

/* Adds the tap sums of one sample x[C, H, W] of conv layer l. */
static void
conv_taps(layer *l, const tm_model *m, const float *x, double *sum,
	  size_t *count)
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
				sum[((size_t)c * l->kh + i) * l->kw + j] += s;
			}
	*count += (size_t)(Ho * Wo);
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

		double *sum = c->quantized ? l->qsum : l->sum;
		size_t *count = c->quantized ? &l->qcount : &l->count;

		if (l->x != tensor || !l->active)
			continue;
		for (size_t s = 0; s < n; s++) {
			const float *x = values + s * per;

			if (l->node->op == TM_OP_CONV2D) {
				conv_taps(l, c->m, x, sum, count);
				continue;
			}
			for (size_t i = 0; i < l->n_mean; i++)
				sum[i] += x[i];
			(*count)++;
		}
	}
	return TM_OK;
}

/* Corrects layer l's bias by -(W_q E[x~] - W E[x]): x~ the input in the
 * int8 model (qsum; empirical), or x itself (weights). */
static tm_status
correct(bc *c, layer *l, int per_channel, int empirical, tm_error *err)
{
	tm_model *m = c->m;
	tm_node *n = l->node;
	const tm_tensor *w = m->tensors[n->inputs[1]];
	size_t nw = tm_tensor_numel(w), per = l->in_g * l->kh * l->kw;
	const double *qsum = empirical ? l->qsum : l->sum;
	double qcount = (double)(empirical ? l->qcount : l->count);
	double *wq = malloc(nw * sizeof *wq), most = 0.0;
	float *delta = calloc(l->out, sizeof *delta);
	tm_tensor *b;
	tm_status st;

	if (!wq || !delta) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	st = tm_quant_weights_dequantized(w, per_channel, wq, err);
	if (st)
		goto out;
	for (size_t o = 0; o < l->out; o++) {
		size_t g = o / (l->out / l->groups);
		double e = 0.0;

		/* Input channel ci of o's group is channel g in_g + ci of
		 * x; its taps follow it in sum. */
		for (size_t i = 0; i < per; i++)
			e += wq[o * per + i] * (qsum[g * per + i] / qcount) -
			     (double)w->data[o * per + i] *
				     (l->sum[g * per + i] / (double)l->count);
		delta[o] = (float)-e;
		most = fmax(most, fabs(e));
	}
	/* correct_run gave every layer a bias before the first stream. */
	b = m->tensors[n->inputs[2]];
	st = tm_tensor_add_qdelta(b, delta, err);
	if (st) {
		tm_error_prefix(err, "%s: '%s'", NAME, n->name);
		goto out;
	}
	tm_log(TM_LOG_NOTE, NAME, "'%s': weights per %s, %sexpected output "
	       "error up to %.6g per channel, corrected", n->name,
	       per_channel ? "channel" : "tensor",
	       empirical ? "int8 inputs, " : "", most);
	l->done = 1;
out:
	free(wq);
	free(delta);
	return st;
}

static tm_status
add_layer(bc *c, tm_node *n, size_t idx, tm_error *err)
{
	const tm_tensor *w = c->m->tensors[n->inputs[1]];
	layer *v = realloc(c->layers, (c->n_layers + 1) * sizeof *v), *l;

	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	c->layers = v;
	l = &v[c->n_layers++];
	memset(l, 0, sizeof *l);
	l->node = n;
	l->idx = idx;
	l->x = n->inputs[0];
	l->out = (size_t)w->shape[0];
	l->in_g = (size_t)w->shape[1];
	l->kh = n->op == TM_OP_CONV2D ? (size_t)w->shape[2] : 1;
	l->kw = n->op == TM_OP_CONV2D ? (size_t)w->shape[3] : 1;
	l->groups = n->op == TM_OP_CONV2D ? (size_t)n->attrs.group : 1;
	l->n_mean = l->in_g * l->groups * l->kh * l->kw;
	l->active = 1;
	l->sum = calloc(l->n_mean, sizeof *l->sum);
	l->qsum = calloc(l->n_mean, sizeof *l->qsum);
	if (!l->sum || !l->qsum)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	return TM_OK;
}

/* The distinct input tensors of the active layers, into xs (room for
 * n_layers); returns how many. */
static size_t
watched(const bc *c, size_t *xs)
{
	size_t n_x = 0;

	for (size_t k = 0; k < c->n_layers; k++) {
		size_t j = 0;

		if (!c->layers[k].active)
			continue;
		while (j < n_x && xs[j] != c->layers[k].x)
			j++;
		if (j == n_x)
			xs[n_x++] = c->layers[k].x;
	}
	return n_x;
}

/* Marks active the layers not yet corrected whose input no other such
 * layer feeds (directly or through other nodes): their inputs in the
 * int8 model are final. taint has room for every tensor. The first
 * uncorrected layer in node order is always among them (the nodes are
 * in topological order), so every round makes progress. */
static void
mark_ready(bc *c, unsigned char *taint)
{
	const tm_model *m = c->m;
	size_t k = 0;

	memset(taint, 0, m->n_tensors);
	for (size_t i = 0; i < m->n_nodes; i++) {
		const tm_node *n = m->nodes[i];
		int t = 0;

		while (k < c->n_layers && c->layers[k].idx < i)
			k++;
		if (k < c->n_layers && c->layers[k].idx == i &&
		    !c->layers[k].done)
			t = 1;
		for (size_t j = 0; j < n->n_inputs && !t; j++)
			t = taint[n->inputs[j]];
		for (size_t j = 0; j < n->n_outputs; j++)
			taint[n->outputs[j]] |= (unsigned char)t;
	}
	for (k = 0; k < c->n_layers; k++)
		c->layers[k].active = !c->layers[k].done &&
				      !taint[c->layers[k].x];
}

/* The empirical mode after the float stream: rounds of one stream of the
 * int8 model each, correcting the layers whose inputs are final, until
 * every layer is corrected (Nagel et al. 2019, section 4.2: the
 * quantized model's pre-activations, with the earlier layers already
 * corrected). A chain of L layers takes L streams. */
static tm_status
empirical_rounds(bc *c, const tm_transform_ctx *ctx, const int *pc,
		 size_t *xs, tm_error *err)
{
	unsigned char *taint = malloc(c->m->n_tensors ? c->m->n_tensors : 1);
	size_t rounds = 0;
	tm_status st = TM_OK;

	if (!taint)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	c->quantized = 1;
	for (;;) {
		size_t n_x;

		mark_ready(c, taint);
		n_x = watched(c, xs);
		if (!n_x)
			break;
		st = tm_transform_ctx_stream_quantized(ctx, c->m, xs, n_x,
						       visit, c, err);
		rounds++;
		for (size_t k = 0; k < c->n_layers && !st; k++) {
			layer *l = &c->layers[k];

			if (!l->active)
				continue;
			l->done = 1;
			if (l->count && l->qcount)
				st = correct(c, l, pc[k], 1, err);
		}
		if (st)
			break;
	}
	free(taint);
	if (!st)
		tm_log(TM_LOG_TRACE, NAME, "%zu stream%s of the int8 model",
		       rounds, rounds == 1 ? "" : "s");
	return st;
}

static tm_status
correct_run(tm_model *m, const tm_params *params, const tm_transform_ctx *ctx,
	    unsigned *preserved, tm_error *err)
{
	const char *mode = tm_params_get_string(params, "mode");
	int empirical = !mode || strcmp(mode, "weights") != 0;
	bc c = { .m = m };
	size_t *xs = NULL;
	int *pc = NULL;
	tm_status st = TM_OK;

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
		st = add_layer(&c, n, k, err);
		/* Every layer gets its bias (zeros if it had none) now,
		 * before any stream: the model's tensors then stay as they
		 * are while the rounds index them. */
		if (!st) {
			tm_tensor *b;

			st = tm_model_node_bias(m, n, &b, err);
		}
	}
	if (st)
		goto out;
	if (!c.n_layers) {
		tm_log(TM_LOG_NOTE, NAME, "no dense or conv2d layer to "
		       "correct");
		goto out;
	}
	xs = malloc(c.n_layers * sizeof *xs);
	pc = malloc(c.n_layers * sizeof *pc);
	if (!xs || !pc) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Per-channel choices from the nodes as they are (nothing adds
	 * nodes). */
	for (size_t k = 0; k < c.n_layers; k++) {
		pc[k] = tm_transform_ctx_per_channel(ctx, m, c.layers[k].idx,
						     err);
		if (pc[k] < 0) {
			st = err ? err->code : TM_ERR_INVALID;
			goto out;
		}
	}
	/* E[x] of every layer, the float model's: one stream. */
	st = tm_transform_ctx_stream(ctx, m, xs, watched(&c, xs), visit, &c,
				     err);
	if (st)
		goto out;
	if (empirical) {
		st = empirical_rounds(&c, ctx, pc, xs, err);
		goto out;
	}
	for (size_t k = 0; k < c.n_layers && !st; k++)
		if (c.layers[k].count)
			st = correct(&c, &c.layers[k], pc[k], 0, err);
out:
	for (size_t k = 0; k < c.n_layers; k++) {
		free(c.layers[k].sum);
		free(c.layers[k].qsum);
	}
	free(c.layers);
	free(xs);
	free(pc);
	return st;
}

static const char *const correct_modes[] = { "empirical", "weights", NULL };

static const tm_param_spec correct_params[] = {
	{ .name = "mode", .type = TM_PARAM_STRING, .def = "empirical",
	  .choices = correct_modes,
	  .help = "empirical: -(W_q E[x~] - W E[x]), x~ the layer's input in "
		  "the int8 model; weights: -(W_q - W) E[x], the weights' "
		  "error alone" },
	TM_PARAM_END
};

static const tm_transform_ops correct_ops = {
	.needs = TM_TRANSFORM_NEEDS_DATA,
	.run_ctx = correct_run,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_TRANSFORM, "bias_correct", "1.1",
		 "empirical bias correction: the int8 model's expected "
		 "output error per channel (Nagel et al. 2019)",
		 correct_params, &correct_ops)
