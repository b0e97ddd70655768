/* bn_fold — folds each BatchNorm into the dense or conv2d layer before it
 * (QUANT.md, Transforms):
 *
 *	sigma_f = gamma_f / sqrt(var_f + eps)
 *	W'[f]   = W[f] * sigma_f		(the whole filter / row f)
 *	b'_f    = (b_f - mu_f) * sigma_f + beta_f	(b = 0 without a bias)
 *
 * computed in double and stored as float. The layer's output then holds
 * what the BatchNorm's did; the BatchNorm goes (tm_model_remove_node), its
 * readers read the layer. Whatever follows the BatchNorm (ReLU, ReLU6,
 * anything) is untouched.
 *
 * A BatchNorm folds only when the layer before it is a dense or conv2d
 * whose output nothing else reads (not another layer, not the model's
 * outputs) and whose weight and bias no other layer shares: otherwise the
 * fold would change what those see. Such a BatchNorm stays, runs as its
 * own layer, and a warning says why (tm_log): never dropped silently.
 *
 * The folded layer's output keeps the BatchNorm's beta and gamma as its
 * BatchNorm statistics (tm_tensor bn_beta, bn_gamma): what the data
 * looked like per channel in training, for bias_absorb.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/tmpipe.h>

#define NO_INDEX ((size_t)-1)
#define NAME "bn_fold"

/* Why BatchNorm node k cannot fold into the node before it, in why (empty
 * when it can); *layer receives that node's index. */
static void
why_not(const tm_model *m, size_t k, size_t *layer, char *why, size_t size)
{
	const tm_node *bn = m->nodes[k], *l;
	size_t x = bn->inputs[0], p = tm_model_producer(m, x);
	const char *xn = m->tensors[x]->name;

	why[0] = '\0';
	*layer = p;
	if (p == NO_INDEX) {
		snprintf(why, size, "its input '%s' is a model input", xn);
		return;
	}
	l = m->nodes[p];
	if (l->op != TM_OP_DENSE && l->op != TM_OP_CONV2D) {
		snprintf(why, size, "its input comes from the %s layer '%s' "
			 "(only a dense or conv2d layer can absorb it)",
			 tm_op_name(l->op), l->name);
		return;
	}
	if (tm_model_tensor_uses(m, x) != 1) {
		int is_output = 0;

		for (size_t i = 0; i < m->n_outputs; i++)
			is_output |= m->outputs[i] == x;
		snprintf(why, size, "the output of '%s' is also %s",
			 l->name, is_output ? "a model output"
					    : "read by another layer");
		return;
	}
	for (size_t i = 1; i < l->n_inputs; i++)
		if (tm_model_tensor_uses(m, l->inputs[i]) != 1) {
			snprintf(why, size, "'%s' of '%s' is shared with "
				 "another layer",
				 m->tensors[l->inputs[i]]->name, l->name);
			return;
		}
}

/* *out = v as a float; 0 when v is not finite or out of float's range
 * (where the cast would be undefined). */
static int
narrow(double v, float *out)
{
	if (!(fabs(v) <= FLT_MAX))
		return 0;
	*out = (float)v;
	return 1;
}

/* Folds BatchNorm node k into node p. */
static tm_status
fold(tm_model *m, size_t k, size_t p, tm_error *err)
{
	tm_node *bn = m->nodes[k], *l = m->nodes[p];
	const float *gamma = m->tensors[bn->inputs[1]]->data;
	const float *beta = m->tensors[bn->inputs[2]]->data;
	const float *mean = m->tensors[bn->inputs[3]]->data;
	const float *var = m->tensors[bn->inputs[4]]->data;
	tm_tensor *w = m->tensors[l->inputs[1]];
	tm_tensor *b = l->n_inputs > 2 ? m->tensors[l->inputs[2]] : NULL;
	size_t nf = (size_t)w->shape[0], per = tm_tensor_numel(w) / nf;
	float *nw = NULL, *nb = NULL;
	tm_status st;

	/* Into new buffers first: a numeric error leaves the model as it
	 * was. */
	nw = malloc(tm_tensor_numel(w) * sizeof *nw);
	nb = malloc(nf * sizeof *nb);
	if (!nw || !nb) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t f = 0; f < nf; f++) {
		double s = gamma[f] / sqrt((double)var[f] +
					   (double)bn->attrs.epsilon);
		double bf = b ? b->data[f] : 0.0;
		int ok = narrow((bf - mean[f]) * s + beta[f], &nb[f]);

		for (size_t i = 0; i < per && ok; i++)
			ok = narrow(w->data[f * per + i] * s, &nw[f * per + i]);
		if (!ok) {
			st = tm_error_set(err, TM_ERR_NUMERIC,
					  "%s: folding '%s' into '%s' "
					  "overflows at channel %zu (running "
					  "variance %g, epsilon %g)", NAME,
					  bn->name, l->name, f, (double)var[f],
					  (double)bn->attrs.epsilon);
			goto out;
		}
	}
	/* The layer's output will hold the BatchNorm's: per channel about
	 * N(beta, gamma^2), which bias_absorb reads. What can fail comes
	 * before the weights change (a bias of zeros added alone changes
	 * nothing the model computes). */
	st = tm_tensor_set_bn(m->tensors[l->outputs[0]], beta, gamma, nf, err);
	if (!st && !b)
		st = tm_model_node_bias(m, l, &b, err);
	if (st)
		goto out;
	memcpy(b->data, nb, nf * sizeof *nb);
	memcpy(w->data, nw, tm_tensor_numel(w) * sizeof *nw);
	tm_log(TM_LOG_NOTE, NAME, "folded '%s' into %s '%s'", bn->name,
	       tm_op_name(l->op), l->name);
	st = tm_model_remove_node(m, k, err);
out:
	free(nw);
	free(nb);
	return st;
}

static tm_status
bn_run(tm_model *m, const tm_params *params, unsigned *preserved,
       tm_error *err)
{
	size_t folded = 0, kept = 0;
	char why[512];

	(void)params;
	*preserved = TM_PRESERVE_NONE;
	/* A removed node moves the later ones down: k stays put after a
	 * fold. A BatchNorm after a folded one folds in turn. */
	for (size_t k = 0; k < m->n_nodes;) {
		size_t p;
		tm_status st;

		if (m->nodes[k]->op != TM_OP_BATCHNORM) {
			k++;
			continue;
		}
		why_not(m, k, &p, why, sizeof why);
		if (why[0]) {
			tm_log(TM_LOG_WARNING, NAME, "kept '%s' as its own "
			       "layer: %s", m->nodes[k]->name, why);
			kept++;
			k++;
			continue;
		}
		st = fold(m, k, p, err);
		if (st)
			return st;
		folded++;
	}
	if (folded + kept)
		tm_log(TM_LOG_NOTE, NAME, "folded %zu of %zu batchnorm layers",
		       folded, folded + kept);
	else
		tm_log(TM_LOG_NOTE, NAME, "no batchnorm layer to fold");
	return TM_OK;
}

static const tm_param_spec bn_params[] = {
	TM_PARAM_END
};

static const tm_transform_ops bn_ops = {
	.run = bn_run,
	.needs = TM_TRANSFORM_FLOAT_WEIGHTS | TM_TRANSFORM_GIVES_BN,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_TRANSFORM, "bn_fold", "1.0",
		 "fold each BatchNorm into the dense or conv2d layer before it",
		 bn_params, &bn_ops)
