/* bias_absorb — high-bias absorption (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction", section
 * 4.2, "Absorbing high biases").
 *
 * For a pair of layers W1 -> (relu | nothing) -> W2 (dense -> dense or
 * conv2d -> conv2d) whose first layer's output has BatchNorm statistics
 * (bn_fold records them: the pre-activation of channel c is about
 * N(beta_c, gamma_c^2)), per channel c of the first layer's output
 *
 *	c_c = max(0, beta_c - sigmas |gamma_c|)		(sigmas = 3)
 *	b1_c -= c_c
 *	b2   += W2 c	for a conv2d: b2[o] += sum over the input channels
 *			ci of o's group and the kernel taps of
 *			W2[o, ci, kh, kw] c_ci
 *
 * relu(x - c) = relu(x) - c wherever x >= c, which by the statistics holds
 * for all but 0.135% of the values (3 sigma); through nothing (identity)
 * the shift is exact for any c. Each value the first layer outputs
 * shrinks by c_c, the second layer's output is unchanged, so the range
 * of the activation between them -- the one quantized to int8 -- shrinks
 * by up to max c_c. The statistics move with the shift (beta_c -= c_c).
 *
 * Zero padding: a conv2d second layer that pads its input would read
 * zeros at the borders where the shifted model should read -c: the
 * absorption is exact only away from them. tmpipe does not make that
 * approximation: a conv2d that pads (any of pads != 0) is left alone, with
 * a note saying so.
 *
 * Pairs are found as cle finds them: the first layer's output read only by
 * the relu (or the second layer), the relu's only by the second layer,
 * neither layer sharing a weight or bias. A model without BatchNorm
 * statistics (no bn_fold before, or no BatchNorm that folded) has nothing
 * to absorb: a note says so and nothing changes. The transform needs
 * bn_fold before it in the pipeline (the core checks the order).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/tmpipe.h>

#define NO_INDEX ((size_t)-1)
#define NAME "bias_absorb"

static int
has_weights(const tm_node *n)
{
	return n->op == TM_OP_DENSE || n->op == TM_OP_CONV2D;
}

static int
is_model_output(const tm_model *m, size_t t)
{
	for (size_t i = 0; i < m->n_outputs; i++)
		if (m->outputs[i] == t)
			return 1;
	return 0;
}

/* The only node that reads tensor t (as its data input), or NO_INDEX. */
static size_t
only_reader(const tm_model *m, size_t t)
{
	if (is_model_output(m, t) || tm_model_tensor_uses(m, t) != 1)
		return NO_INDEX;
	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i]->n_inputs && m->nodes[i]->inputs[0] == t)
			return i;
	return NO_INDEX;
}

static int
shares_constant(const tm_model *m, const tm_node *n)
{
	for (size_t i = 1; i < n->n_inputs; i++)
		if (tm_model_tensor_uses(m, n->inputs[i]) != 1)
			return 1;
	return 0;
}

/* The layer node a pairs with, or NO_INDEX with why filled when a
 * candidate was found and refused (why empty: no candidate at all). */
static size_t
find_pair(const tm_model *m, size_t a, char *why, size_t size)
{
	const tm_node *na = m->nodes[a], *nb;
	size_t b;

	why[0] = '\0';
	b = only_reader(m, na->outputs[0]);
	if (b == NO_INDEX)
		return NO_INDEX;
	nb = m->nodes[b];
	if (nb->op == TM_OP_RELU) {
		b = only_reader(m, nb->outputs[0]);
		if (b == NO_INDEX)
			return NO_INDEX;
		nb = m->nodes[b];
	}
	if (!has_weights(nb) || nb->op != na->op)
		return NO_INDEX;
	if (shares_constant(m, na) || shares_constant(m, nb)) {
		snprintf(why, size, "'%s' or '%s' shares a weight or bias "
			 "with another layer", na->name, nb->name);
		return NO_INDEX;
	}
	if (nb->op == TM_OP_CONV2D &&
	    (nb->attrs.pads[0] || nb->attrs.pads[1] || nb->attrs.pads[2] ||
	     nb->attrs.pads[3])) {
		snprintf(why, size, "'%s' pads its input (the absorption "
			 "would be exact only away from the borders)",
			 nb->name);
		return NO_INDEX;
	}
	return b;
}

/* A tensor name for a new bias of layer l: "<l>.bias", or with ".1" ...
 * when taken (bn_fold's rule). */
static void
bias_name(const tm_model *m, const tm_node *l, char *buf, size_t size)
{
	snprintf(buf, size, "%s.bias", l->name);
	for (unsigned i = 1; tm_model_find_tensor(m, buf); i++)
		snprintf(buf, size, "%s.bias.%u", l->name, i);
}

/* l's bias, added (zeros) when it has none. */
static tm_status
bias_of(tm_model *m, tm_node *l, tm_tensor **out, tm_error *err)
{
	tm_tensor *w = m->tensors[l->inputs[1]];
	int64_t shape[1] = { w->shape[0] };
	char name[512];
	float *zeros;
	tm_status st;

	if (l->n_inputs > 2) {
		*out = m->tensors[l->inputs[2]];
		return TM_OK;
	}
	zeros = calloc((size_t)shape[0], sizeof *zeros);
	if (!zeros)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	bias_name(m, l, name, sizeof name);
	st = tm_model_add_const(m, name, 1, shape, zeros, err);
	free(zeros);
	if (!st)
		st = tm_model_node_add_input(m, l, name, err);
	*out = st ? NULL : tm_model_find_tensor(m, name);
	return st;
}

/* Absorbs the shifts of layer a's output channels into layer b. */
static tm_status
absorb(tm_model *m, tm_node *a, tm_node *b, double sigmas, size_t *moved,
       tm_error *err)
{
	tm_tensor *y = m->tensors[a->outputs[0]];
	tm_tensor *w2 = m->tensors[b->inputs[1]], *b1, *b2;
	size_t ch = y->n_bn, out2 = (size_t)w2->shape[0];
	size_t in_g = (size_t)w2->shape[1];
	size_t taps = tm_tensor_numel(w2) / (out2 * in_g);
	size_t groups = b->op == TM_OP_CONV2D ? (size_t)b->attrs.group : 1;
	double *c = calloc(ch, sizeof *c), *add = calloc(out2, sizeof *add);
	double most = 0.0;
	tm_status st = TM_OK;

	*moved = 0;
	if (!c || !add) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < ch; k++) {
		c[k] = fmax(0.0, (double)y->bn_beta[k] -
				 sigmas * fabs((double)y->bn_gamma[k]));
		*moved += c[k] > 0.0;
		most = fmax(most, c[k]);
	}
	if (!*moved)
		goto out;
	/* Output o of b reads input channels [g in_g, (g + 1) in_g) of its
	 * group g = o / (out2 / groups). */
	for (size_t o = 0; o < out2; o++) {
		size_t g = o / (out2 / groups);

		for (size_t ci = 0; ci < in_g; ci++)
			for (size_t t = 0; t < taps; t++)
				add[o] += (double)w2->data[(o * in_g + ci) *
							   taps + t] *
					  c[g * in_g + ci];
	}
	st = bias_of(m, a, &b1, err);
	if (!st)
		st = bias_of(m, b, &b2, err);
	if (st)
		goto out;
	for (size_t k = 0; k < ch; k++)
		if (!isfinite((float)(b1->data[k] - c[k])))
			goto overflow;
	for (size_t o = 0; o < out2; o++)
		if (!(fabs(b2->data[o] + add[o]) <= FLT_MAX))
			goto overflow;
	for (size_t k = 0; k < ch; k++) {
		b1->data[k] = (float)(b1->data[k] - c[k]);
		y->bn_beta[k] = (float)(y->bn_beta[k] - c[k]);
	}
	for (size_t o = 0; o < out2; o++)
		b2->data[o] = (float)(b2->data[o] + add[o]);
	tm_log(TM_LOG_NOTE, NAME, "'%s' -> '%s': shifted %zu of %zu channels, "
	       "by up to %.6g", a->name, b->name, *moved, ch, most);
	goto out;
overflow:
	st = tm_error_set(err, TM_ERR_NUMERIC, "%s: absorbing the bias of "
			  "'%s' into '%s' overflows float", NAME, a->name,
			  b->name);
out:
	free(c);
	free(add);
	return st;
}

static tm_status
absorb_run(tm_model *m, const tm_params *params, unsigned *preserved,
	   tm_error *err)
{
	double sigmas = tm_params_get_float(params, "sigmas");
	size_t with_bn = 0, pairs = 0;
	char why[512];

	*preserved = TM_PRESERVE_NONE;
	for (size_t a = 0; a < m->n_nodes; a++) {
		tm_node *na = m->nodes[a];
		const tm_tensor *y;
		size_t b, moved;
		tm_status st;

		if (!has_weights(na))
			continue;
		y = m->tensors[na->outputs[0]];
		if (!y->bn_beta || y->n_bn != (size_t)y->shape[0])
			continue;
		with_bn++;
		b = find_pair(m, a, why, sizeof why);
		if (b == NO_INDEX) {
			tm_log(TM_LOG_NOTE, NAME, "'%s' has BatchNorm "
			       "statistics but nothing to absorb into%s%s",
			       na->name, why[0] ? ": " : "", why);
			continue;
		}
		/* The bias added to a layer moves the tensor list: the
		 * nodes are stable, indices are looked up afresh. */
		st = absorb(m, na, m->nodes[b], sigmas, &moved, err);
		if (st)
			return st;
		pairs += moved > 0;
	}
	if (!with_bn)
		tm_log(TM_LOG_NOTE, NAME, "no layer output has BatchNorm "
		       "statistics (bn_fold records them when it folds): "
		       "nothing to absorb");
	else
		tm_log(TM_LOG_NOTE, NAME, "absorbed biases in %zu pair%s",
		       pairs, pairs == 1 ? "" : "s");
	return TM_OK;
}

static const tm_param_spec absorb_params[] = {
	{ .name = "sigmas", .type = TM_PARAM_FLOAT, .def = "3",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 0, .max = 100,
	  .help = "absorb max(0, beta - sigmas |gamma|) per channel: the "
		  "larger, the fewer values the shift can clip" },
	TM_PARAM_END
};

static const tm_transform_ops absorb_ops = {
	.run = absorb_run,
	.needs = TM_TRANSFORM_FLOAT_WEIGHTS | TM_TRANSFORM_NEEDS_BN,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_TRANSFORM, "bias_absorb", "1.0",
		 "absorb high biases into the next layer (Nagel et al. 2019)",
		 absorb_params, &absorb_ops)
