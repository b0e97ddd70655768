/* cle — Cross-Layer Equalization (Nagel et al. 2019, "Data-Free
 * Quantization Through Weight Equalization and Bias Correction"), per
 * QUANT.md, Transforms.
 *
 * For a pair of layers W1 -> (relu | leaky_relu | nothing) -> (maxpool2d |
 * nothing) -> W2 and each channel c between them:
 *
 *	r1 = max |W1[c, ...]|	output channel c of layer 1 (a whole
 *				filter for a conv2d, a row for a dense)
 *	r2 = max |W2[:, c, ...]|	input channel c of layer 2 over all its
 *				output channels (for a grouped or
 *				depthwise conv2d: the filters of c's group)
 *	s  = sqrt(r1 / r2);  W1[c] /= s;  b1[c] /= s;  W2[:, c] *= s
 *
 * skipping a channel when r1 or r2 is at most 1e-8. Both ranges become
 * sqrt(r1 r2); the network computes the same function, because relu and
 * leaky_relu are positively homogeneous (f(x / s) = f(x) / s for s > 0),
 * and so is a max pool, channel by channel. ReLU6 and other clips are
 * not, so they end a pair.
 *
 * In a chain (A -> B -> C) a layer is the second of one pair and the
 * first of the next, and equalizing one pair moves the other's ranges:
 * the pairs are swept in graph order until no scale of a sweep differs
 * from 1 by more than the tolerance, or the iterations run out. The
 * arithmetic is in double on copies of the weights, written back as float
 * once at the end.
 *
 * Pairs are found in the graph: a dense or conv2d layer whose output only
 * the next layer reads (directly or through one relu or leaky_relu, then
 * one maxpool2d, that nothing else reads), when that layer is of the same
 * kind, and neither
 * shares its weights. With the pairs parameter only the pairs listed are
 * equalized, and a listed pair that is not one is an error at its line.
 *
 * The BatchNorm statistics bn_fold recorded on a first layer's output
 * (tm_tensor bn_beta, bn_gamma) are scaled with its channels, so
 * bias_absorb after cle sees the equalized model's.
 *
 * Report (tm_log): per pair, the spread of the channel ranges (max / min
 * over the channels) of both layers before and after, as notes; the
 * iterations taken; a warning when nothing was found or the scales did
 * not converge.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/tmpipe.h>

#define NO_INDEX ((size_t)-1)
#define NAME "cle"
#define RANGE_EPS 1e-8		/* QUANT.md: skip a channel at or below */

/* A layer with weights in some pair, and the working copies. */
typedef struct layer {
	tm_node *node;
	tm_tensor *w, *b;	/* b NULL without a bias */
	double *dw, *db;
	double *oscale;		/* what output channel c was multiplied by */
	/* The weight as [out][group's in][taps]: a dense is a conv2d of
	 * one group and one tap. */
	size_t out, in_g, taps, groups;
} layer;

typedef struct pair {
	size_t l1, l2;		/* indices into the layers */
	const char *via;	/* the activation between, or NULL */
	size_t channels;
	double spread1, spread2; /* before: max / min of r1 and r2 */
} pair;

typedef struct cle {
	tm_model *m;
	layer *layers;
	size_t n_layers;
	pair *pairs;
	size_t n_pairs;
	double *r1, *r2;	/* one channel range per channel, scratch */
} cle;

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

/* The only node that reads tensor t, or NO_INDEX with the reason in why
 * (about tensor t, the output of node named by). */
static size_t
only_reader(const tm_model *m, size_t t, const char *by, char *why,
	    size_t size)
{
	if (is_model_output(m, t)) {
		snprintf(why, size, "the output of '%s' is a model output",
			 by);
		return NO_INDEX;
	}
	if (tm_model_tensor_uses(m, t) != 1) {
		snprintf(why, size, "the output of '%s' is read by %zu layers",
			 by, tm_model_tensor_uses(m, t));
		return NO_INDEX;
	}
	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i]->n_inputs && m->nodes[i]->inputs[0] == t)
			return i;
	snprintf(why, size, "the output of '%s' is not the data input of "
		 "the layer that reads it", by);
	return NO_INDEX;
}

static const char *
shared_weight(const tm_model *m, const tm_node *n)
{
	for (size_t i = 1; i < n->n_inputs; i++)
		if (tm_model_tensor_uses(m, n->inputs[i]) != 1)
			return m->tensors[n->inputs[i]]->name;
	return NULL;
}

/* The layer that node a pairs with (NO_INDEX and the reason in why when
 * none), and the activation between them in *via. */
static size_t
find_pair(const tm_model *m, size_t a, size_t *via, char *why, size_t size)
{
	const tm_node *na = m->nodes[a], *nb;
	const char *shared;
	size_t b;

	why[0] = '\0';
	*via = NO_INDEX;
	b = only_reader(m, na->outputs[0], na->name, why, size);
	if (b == NO_INDEX)
		return NO_INDEX;
	nb = m->nodes[b];
	if (nb->op == TM_OP_RELU || nb->op == TM_OP_LEAKY_RELU) {
		*via = b;
		b = only_reader(m, nb->outputs[0], nb->name, why, size);
		if (b == NO_INDEX)
			return NO_INDEX;
		nb = m->nodes[b];
	}
	/* A max pool works channel by channel and commutes with a positive
	 * scale: maxpool(x / s) = maxpool(x) / s. */
	if (nb->op == TM_OP_MAXPOOL2D) {
		if (*via == NO_INDEX)
			*via = b;
		b = only_reader(m, nb->outputs[0], nb->name, why, size);
		if (b == NO_INDEX)
			return NO_INDEX;
		nb = m->nodes[b];
	}
	if (!has_weights(nb)) {
		const tm_node *last = m->nodes[b];

		for (size_t i = 0; i < m->n_nodes; i++)
			if (m->nodes[i]->n_outputs &&
			    m->nodes[i]->outputs[0] == nb->inputs[0])
				last = m->nodes[i];
		snprintf(why, size, "'%s' is followed by the %s layer '%s' "
			 "(only relu, leaky_relu, maxpool2d or nothing may "
			 "stand between the two layers, and the second must "
			 "be a dense or conv2d)", last->name,
			 tm_op_name(nb->op), nb->name);
		return NO_INDEX;
	}
	if (nb->op != na->op) {
		snprintf(why, size, "%s '%s' and %s '%s' are not of the same "
			 "kind", tm_op_name(na->op), na->name,
			 tm_op_name(nb->op), nb->name);
		return NO_INDEX;
	}
	if ((shared = shared_weight(m, na)) ||
	    (shared = shared_weight(m, nb))) {
		snprintf(why, size, "'%s' is shared with another layer",
			 shared);
		return NO_INDEX;
	}
	return b;
}

/* Index of node n among the layers, adding it (with its working copies)
 * when new; NO_INDEX when out of memory. */
static size_t
layer_of(cle *c, tm_node *n, tm_error *err)
{
	layer *v, *l;
	size_t nw;

	for (size_t i = 0; i < c->n_layers; i++)
		if (c->layers[i].node == n)
			return i;
	v = realloc(c->layers, (c->n_layers + 1) * sizeof *v);
	if (!v)
		goto nomem;
	c->layers = v;
	l = &v[c->n_layers];
	memset(l, 0, sizeof *l);
	l->node = n;
	l->w = c->m->tensors[n->inputs[1]];
	l->b = n->n_inputs > 2 ? c->m->tensors[n->inputs[2]] : NULL;
	nw = tm_tensor_numel(l->w);
	l->out = (size_t)l->w->shape[0];
	l->in_g = (size_t)l->w->shape[1];
	l->taps = nw / (l->out * l->in_g);
	l->groups = n->op == TM_OP_CONV2D ? (size_t)n->attrs.group : 1;
	l->dw = malloc(nw * sizeof *l->dw);
	l->db = l->b ? malloc(l->out * sizeof *l->db) : NULL;
	l->oscale = malloc(l->out * sizeof *l->oscale);
	if (!l->dw || (l->b && !l->db) || !l->oscale) {
		free(l->dw);
		free(l->db);
		free(l->oscale);
		goto nomem;
	}
	for (size_t i = 0; i < l->out; i++)
		l->oscale[i] = 1.0;
	for (size_t i = 0; i < nw; i++)
		l->dw[i] = l->w->data[i];
	for (size_t i = 0; l->b && i < l->out; i++)
		l->db[i] = l->b->data[i];
	return c->n_layers++;
nomem:
	tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	return NO_INDEX;
}

static tm_status
add_pair(cle *c, size_t a, size_t b, size_t via, tm_error *err)
{
	pair *v = realloc(c->pairs, (c->n_pairs + 1) * sizeof *v);
	size_t l1, l2;

	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	c->pairs = v;
	l1 = layer_of(c, c->m->nodes[a], err);
	l2 = l1 == NO_INDEX ? NO_INDEX : layer_of(c, c->m->nodes[b], err);
	if (l2 == NO_INDEX)
		return err ? err->code : TM_ERR_NOMEM;
	memset(&v[c->n_pairs], 0, sizeof *v);
	v[c->n_pairs].l1 = l1;
	v[c->n_pairs].l2 = l2;
	v[c->n_pairs].via = via == NO_INDEX ? NULL : c->m->nodes[via]->name;
	v[c->n_pairs].channels = c->layers[l1].out;
	c->n_pairs++;
	return TM_OK;
}

/* Output-channel ranges of l (r1 of QUANT.md). */
static void
out_ranges(const layer *l, double *r)
{
	size_t per = l->in_g * l->taps;

	for (size_t o = 0; o < l->out; o++) {
		double mx = 0.0;

		for (size_t i = 0; i < per; i++)
			mx = fmax(mx, fabs(l->dw[o * per + i]));
		r[o] = mx;
	}
}

/* The weights of l that read input channel ch: those of the output
 * channels of ch's group, (out / groups) * taps of them; the j-th is at
 * index in_weight(l, ch, j) of the weight. */
static size_t
in_count(const layer *l)
{
	return l->out / l->groups * l->taps;
}

static size_t
in_weight(const layer *l, size_t ch, size_t j)
{
	size_t o = ch / l->in_g * (l->out / l->groups) + j / l->taps;

	return (o * l->in_g + ch % l->in_g) * l->taps + j % l->taps;
}

/* Input-channel ranges of l (r2 of QUANT.md), n channels. */
static void
in_ranges(const layer *l, size_t n, double *r)
{
	for (size_t ch = 0; ch < n; ch++) {
		double mx = 0.0;

		for (size_t j = 0; j < in_count(l); j++)
			mx = fmax(mx, fabs(l->dw[in_weight(l, ch, j)]));
		r[ch] = mx;
	}
}

/* max / min over the ranges above RANGE_EPS; 1 when there are none. */
static double
spread(const double *r, size_t n)
{
	double lo = INFINITY, hi = 0.0;

	for (size_t i = 0; i < n; i++)
		if (r[i] > RANGE_EPS) {
			lo = fmin(lo, r[i]);
			hi = fmax(hi, r[i]);
		}
	return hi > 0.0 ? hi / lo : 1.0;
}

/* Equalizes one pair once; returns the largest |s - 1|. */
static double
equalize(cle *c, const pair *p)
{
	layer *a = &c->layers[p->l1], *b = &c->layers[p->l2];
	size_t per = a->in_g * a->taps;
	double change = 0.0;

	out_ranges(a, c->r1);
	in_ranges(b, p->channels, c->r2);
	for (size_t ch = 0; ch < p->channels; ch++) {
		double s;

		if (c->r1[ch] <= RANGE_EPS || c->r2[ch] <= RANGE_EPS)
			continue;
		s = sqrt(c->r1[ch] / c->r2[ch]);
		for (size_t i = 0; i < per; i++)
			a->dw[ch * per + i] /= s;
		if (a->db)
			a->db[ch] /= s;
		a->oscale[ch] /= s;
		for (size_t j = 0; j < in_count(b); j++)
			b->dw[in_weight(b, ch, j)] *= s;
		change = fmax(change, fabs(s - 1.0));
	}
	return change;
}

static size_t
node_named(const tm_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		if (strcmp(m->nodes[i]->name, name) == 0)
			return i;
	return NO_INDEX;
}

/* "fc1, fc2, conv3" (the layers cle could pair), cut to fit. */
static void
weighted_names(const tm_model *m, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < m->n_nodes && len < size; i++) {
		if (!has_weights(m->nodes[i]))
			continue;
		if (len + strlen(m->nodes[i]->name) + 8 > size) {
			snprintf(buf + len, size - len, ", ...");
			return;
		}
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					len ? ", " : "", m->nodes[i]->name);
	}
	if (!buf[0])
		snprintf(buf, size, "none");
}

/* Node index of the layer item names under key, or NO_INDEX with err
 * filled at the key's line. */
static size_t
listed_layer(const tm_model *m, const tm_params *item, const char *key,
	     tm_error *err)
{
	const char *name = tm_params_get_string(item, key);
	size_t i = node_named(m, name);
	char names[512];

	if (i == NO_INDEX) {
		weighted_names(m, names, sizeof names);
		tm_params_error(item, key, err, TM_ERR_NOT_FOUND,
				"no layer '%s' in the model (dense and conv2d "
				"layers: %s)", name, names);
		return NO_INDEX;
	}
	if (!has_weights(m->nodes[i])) {
		tm_params_error(item, key, err, TM_ERR_INVALID,
				"layer '%s' (%s) has no weights; cle pairs "
				"dense and conv2d layers", name,
				tm_op_name(m->nodes[i]->op));
		return NO_INDEX;
	}
	return i;
}

static tm_status
listed_pairs(cle *c, const tm_params *params, tm_error *err)
{
	size_t n = tm_params_list_len(params, "pairs");
	char why[512];

	for (size_t k = 0; k < n; k++) {
		const tm_params *item = tm_params_item(params, "pairs", k);
		size_t a, b, found, via;
		tm_status st;

		a = listed_layer(c->m, item, "first", err);
		if (a == NO_INDEX)
			return err ? err->code : TM_ERR_INVALID;
		b = listed_layer(c->m, item, "second", err);
		if (b == NO_INDEX)
			return err ? err->code : TM_ERR_INVALID;
		found = find_pair(c->m, a, &via, why, sizeof why);
		if (found != NO_INDEX && found != b)
			snprintf(why, sizeof why, "the output of '%s' goes to "
				 "'%s', not to '%s'", c->m->nodes[a]->name,
				 c->m->nodes[found]->name,
				 c->m->nodes[b]->name);
		if (why[0])
			return tm_params_error(item, NULL, err, TM_ERR_INVALID,
					       "'%s' and '%s' cannot be "
					       "equalized: %s",
					       c->m->nodes[a]->name,
					       c->m->nodes[b]->name, why);
		for (size_t i = 0; i < c->n_pairs; i++)
			if (c->layers[c->pairs[i].l1].node == c->m->nodes[a])
				return tm_params_error(
					item, NULL, err, TM_ERR_INVALID,
					"the pair '%s', '%s' is listed twice",
					c->m->nodes[a]->name,
					c->m->nodes[b]->name);
		st = add_pair(c, a, b, via, err);
		if (st)
			return st;
	}
	return TM_OK;
}

static tm_status
found_pairs(cle *c, tm_error *err)
{
	char why[512];

	for (size_t a = 0; a < c->m->n_nodes; a++) {
		size_t b, via;
		tm_status st;

		if (!has_weights(c->m->nodes[a]))
			continue;
		b = find_pair(c->m, a, &via, why, sizeof why);
		if (b == NO_INDEX) {
			tm_log(TM_LOG_TRACE, NAME, "'%s' starts no pair: %s",
			       c->m->nodes[a]->name, why);
			continue;
		}
		st = add_pair(c, a, b, via, err);
		if (st)
			return st;
	}
	return TM_OK;
}

/* *out = v as a float; 0 when out of float's range. */
static int
narrow(double v, float *out)
{
	if (!(fabs(v) <= FLT_MAX))
		return 0;
	*out = (float)v;
	return 1;
}

/* The BatchNorm statistics of l's output (bn_fold's) follow its
 * channels: output channel c scaled by oscale[c] is distributed as
 * N(oscale beta, (oscale gamma)^2). */
static void
rescale_bn(tm_model *m, const layer *l)
{
	tm_tensor *y = m->tensors[l->node->outputs[0]];

	if (!y->bn_beta || y->n_bn != l->out)
		return;
	for (size_t c = 0; c < l->out; c++) {
		y->bn_beta[c] = (float)(y->bn_beta[c] * l->oscale[c]);
		y->bn_gamma[c] = (float)(y->bn_gamma[c] * l->oscale[c]);
	}
}

/* Writes every working copy back, all or nothing. */
static tm_status
write_back(cle *c, tm_error *err)
{
	float **nw = calloc(c->n_layers, sizeof *nw);
	float **nb = calloc(c->n_layers, sizeof *nb);
	tm_status st = TM_OK;

	if (!nw || !nb) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < c->n_layers && !st; k++) {
		const layer *l = &c->layers[k];
		size_t n = tm_tensor_numel(l->w);
		int ok = 1;

		nw[k] = malloc(n * sizeof **nw);
		nb[k] = l->b ? malloc(l->out * sizeof **nb) : NULL;
		if (!nw[k] || (l->b && !nb[k])) {
			st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
			break;
		}
		for (size_t i = 0; i < n && ok; i++)
			ok = narrow(l->dw[i], &nw[k][i]);
		for (size_t i = 0; l->b && i < l->out && ok; i++)
			ok = narrow(l->db[i], &nb[k][i]);
		if (!ok)
			st = tm_error_set(err, TM_ERR_NUMERIC,
					  "%s: the weights of '%s' overflow "
					  "float after equalization", NAME,
					  l->node->name);
	}
	for (size_t k = 0; k < c->n_layers && !st; k++) {
		const layer *l = &c->layers[k];

		memcpy(l->w->data, nw[k], tm_tensor_numel(l->w) * sizeof **nw);
		if (l->b)
			memcpy(l->b->data, nb[k], l->out * sizeof **nb);
		rescale_bn(c->m, l);
	}
out:
	for (size_t k = 0; (nw || nb) && k < c->n_layers; k++) {
		free(nw ? nw[k] : NULL);
		free(nb ? nb[k] : NULL);
	}
	free(nw);
	free(nb);
	return st;
}

static void
report(cle *c, size_t iterations, double change, int converged,
       double tolerance)
{
	for (size_t k = 0; k < c->n_pairs; k++) {
		const pair *p = &c->pairs[k];
		const layer *a = &c->layers[p->l1], *b = &c->layers[p->l2];

		out_ranges(a, c->r1);
		in_ranges(b, p->channels, c->r2);
		tm_log(TM_LOG_NOTE, NAME, "%s -> %s%s%s: spread of the %zu "
		       "channel ranges (max/min) %.3g -> %.3g in %s, %.3g -> "
		       "%.3g in %s", a->node->name, p->via ? p->via : "",
		       p->via ? " -> " : "", b->node->name, p->channels,
		       p->spread1, spread(c->r1, p->channels), a->node->name,
		       p->spread2, spread(c->r2, p->channels), b->node->name);
	}
	if (converged)
		tm_log(TM_LOG_NOTE, NAME, "equalized %zu pair%s in %zu "
		       "iteration%s (last scale change %.2g)", c->n_pairs,
		       c->n_pairs == 1 ? "" : "s", iterations,
		       iterations == 1 ? "" : "s", change);
	else
		tm_log(TM_LOG_WARNING, NAME, "stopped after %zu iteration%s "
		       "without converging: the last changed a scale by %.2g "
		       "(tolerance %g); the output is unchanged all the same",
		       iterations, iterations == 1 ? "" : "s", change,
		       tolerance);
}

static tm_status
cle_run(tm_model *m, const tm_params *params, unsigned *preserved,
	tm_error *err)
{
	cle c = { .m = m };
	int64_t iterations = tm_params_get_int(params, "iterations");
	double tolerance = tm_params_get_float(params, "tolerance");
	double change = 0.0;
	size_t it = 0, most = 0;
	int converged = 0;
	tm_status st;

	*preserved = TM_PRESERVE_NONE;
	st = tm_params_is_set(params, "pairs") ? listed_pairs(&c, params, err)
					       : found_pairs(&c, err);
	if (st)
		goto out;
	if (c.n_pairs == 0) {
		tm_log(TM_LOG_WARNING, NAME, "no pair of layers to equalize "
		       "(a dense or conv2d layer followed by one of the same "
		       "kind, directly or through a relu or leaky_relu and "
		       "a maxpool2d)");
		goto out;
	}
	for (size_t k = 0; k < c.n_layers; k++)
		most = c.layers[k].out > most ? c.layers[k].out : most;
	c.r1 = malloc(most * sizeof *c.r1);
	c.r2 = malloc(most * sizeof *c.r2);
	if (!c.r1 || !c.r2) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < c.n_pairs; k++) {
		pair *p = &c.pairs[k];

		out_ranges(&c.layers[p->l1], c.r1);
		in_ranges(&c.layers[p->l2], p->channels, c.r2);
		p->spread1 = spread(c.r1, p->channels);
		p->spread2 = spread(c.r2, p->channels);
	}
	while (it < (size_t)iterations && !converged) {
		change = 0.0;
		for (size_t k = 0; k < c.n_pairs; k++)
			change = fmax(change, equalize(&c, &c.pairs[k]));
		it++;
		converged = change <= tolerance;
	}
	st = write_back(&c, err);
	if (!st)
		report(&c, it, change, converged, tolerance);
out:
	for (size_t k = 0; k < c.n_layers; k++) {
		free(c.layers[k].dw);
		free(c.layers[k].db);
		free(c.layers[k].oscale);
	}
	free(c.layers);
	free(c.pairs);
	free(c.r1);
	free(c.r2);
	return st;
}

static const tm_param_spec pair_fields[] = {
	{ .name = "first", .type = TM_PARAM_STRING,
	  .flags = TM_PARAM_REQUIRED,
	  .help = "the dense or conv2d layer whose output channels are "
		  "scaled" },
	{ .name = "second", .type = TM_PARAM_STRING,
	  .flags = TM_PARAM_REQUIRED,
	  .help = "the layer of the same kind that reads them (directly or "
		  "through one relu or leaky_relu, then one maxpool2d)" },
	TM_PARAM_END
};

static const tm_param_spec cle_params[] = {
	{ .name = "iterations", .type = TM_PARAM_INT, .def = "20",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 1,
	  .max = 1000000,
	  .help = "at most this many sweeps over the pairs" },
	{ .name = "tolerance", .type = TM_PARAM_FLOAT, .def = "1e-6",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 0, .max = 1,
	  .help = "stop once a sweep changes no scale by more than this "
		  "(relative)" },
	{ .name = "pairs", .type = TM_PARAM_LIST, .fields = pair_fields,
	  .help = "only these pairs, [{first: A, second: B}, ...] (default: "
		  "every pair in the graph)" },
	TM_PARAM_END
};

static const tm_transform_ops cle_ops = {
	.run = cle_run,
	.needs = TM_TRANSFORM_FLOAT_WEIGHTS,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_TRANSFORM, "cle", "1.0",
		 "cross-layer equalization of dense and conv2d pairs "
		 "(Nagel et al. 2019)",
		 cle_params, &cle_ops)
