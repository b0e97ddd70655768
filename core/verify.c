/* tmpipe — the verify stage (see verify_priv.h). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/npy.h>
#include <tmpipe/quant.h>
#include <tmrt/model.h>

#include "dataset_priv.h"
#include "interp_priv.h"
#include "lower_priv.h"
#include "quantize_priv.h"
#include "verify_priv.h"

#define NONE ((size_t)-1)

typedef struct acc {
	double max_abs, sum_abs, sum_f2, sum_e2;
	size_t n, top1_agree;
} acc;

/* A lowered model, loaded from its blob as a target would, with an arena
 * and one int8 buffer per output. */
typedef struct runner {
	tm_priv_lowered lw;
	void *blob, *ram, *arena;
	size_t blob_size;
	const tmrt_model *rt;
	int8_t **out;
} runner;

typedef struct vctx {
	const tm_model *m;
	runner plain;			/* what a target runs */
	runner all;			/* every arena tensor exposed */
	size_t n_tens;			/* tensors compared */
	size_t *tens;			/* their model index */
	size_t *tens_out;		/* their output index in all */
	acc *tacc;
	tm_calib_source *srcs;
	tm_dataset *ds;
	tm_dataset_reader *rd;
	tm_interp *it;
	tm_fq *fq;			/* reference: quantized; per tensor */
	float **cst;			/* and the dequantized constants */
	const char *ref;		/* "float" or "reference" */
	float **in;			/* interpreter input buffers */
	int8_t **qin;			/* one sample */
	acc *acc;
	/* labels */
	size_t lab_out;			/* model output classified, or NONE */
	int32_t *labels;
	size_t n_labels;
	size_t float_correct, int8_correct, agree;
} vctx;

void
tm_priv_verify_report_fini(tm_verify_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->n_outputs; i++)
		free(rep->outputs[i].name);
	free(rep->outputs);
	for (size_t i = 0; i < rep->n_tensors; i++)
		free(rep->tensors[i].name);
	free(rep->tensors);
	free(rep->labels_path);
	free(rep->labeled_output);
	memset(rep, 0, sizeof *rep);
}

double
tm_priv_sqnr_db(double sum_f2, double sum_e2)
{
	if (sum_e2 <= 0.0)
		return INFINITY;
	if (sum_f2 <= 0.0)
		return -INFINITY;
	return 10.0 * log10(sum_f2 / sum_e2);
}

static tm_status
nomem(tm_error *err)
{
	return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
}

static void
runner_fini(runner *r)
{
	for (size_t i = 0; r->out && i < r->lw.n_outputs; i++)
		free(r->out[i]);
	free(r->out);
	free(r->arena);
	free(r->ram);
	free(r->blob);
	tm_priv_lowered_fini(&r->lw);
}

static void
vctx_fini(vctx *c)
{
	size_t ni = c->m->n_inputs;

	tm_priv_interp_free(c->it);
	for (size_t t = 0; c->cst && t < c->m->n_tensors; t++)
		free(c->cst[t]);
	free(c->cst);
	free(c->fq);
	tm_priv_dataset_reader_free(c->rd);
	tm_priv_dataset_free(c->ds);
	free(c->srcs);
	for (size_t i = 0; c->qin && i < ni; i++)
		free(c->qin[i]);
	free(c->qin);
	free(c->in);
	free(c->acc);
	free(c->tacc);
	free(c->tens);
	free(c->tens_out);
	free(c->labels);
	runner_fini(&c->all);
	runner_fini(&c->plain);
}

/* Lowers m with flags; the blob copied out of the writer and loaded as a
 * target would; buffers for every output. */
static tm_status
runner_init(runner *r, const tm_model *m, unsigned flags, tm_error *err)
{
	const uint8_t *bytes;
	size_t size = 0, ram = 0;
	tmrt_status rs;
	tm_status st = tm_priv_lower(m, flags, &r->lw, err);

	if (st)
		return st;
	if (r->lw.n_outputs < m->n_outputs)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: the lowered model has %zu "
				    "outputs, the model %zu", r->lw.n_outputs,
				    m->n_outputs);
	bytes = tm_priv_blob_bytes(r->lw.blob, &size);
	r->blob = malloc(size ? size : 1);	/* malloc: aligned enough */
	if (!r->blob)
		return nomem(err);
	memcpy(r->blob, bytes, size);
	r->blob_size = size;
	rs = tmrt_blob_ram_size(r->blob, size, &ram);
	if (!rs) {
		r->ram = malloc(ram ? ram : 1);
		if (!r->ram)
			return nomem(err);
		rs = tmrt_blob_load(r->blob, size, r->ram, ram, &r->rt);
	}
	if (rs)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: libtmrt refuses the lowered "
				    "model: %s", tmrt_status_str(rs));
	r->arena = malloc(r->rt->arena_size ? r->rt->arena_size : 1);
	r->out = calloc(r->lw.n_outputs, sizeof *r->out);
	if (!r->arena || !r->out)
		return nomem(err);
	for (size_t i = 0; i < r->lw.n_outputs; i++) {
		size_t n = tm_tensor_numel(m->tensors[r->lw.outputs[i]]);

		r->out[i] = malloc(n ? n : 1);
		if (!r->out[i])
			return nomem(err);
	}
	return TM_OK;
}

/* The verify sources, each with the preprocessing of the calibration
 * source for the same input (the held-out data is in the same form). */
static tm_status
sources(vctx *c, const tm_pipeline *pl, tm_error *err)
{
	c->srcs = calloc(pl->n_verify_sources, sizeof *c->srcs);
	if (!c->srcs)
		return nomem(err);
	for (size_t i = 0; i < pl->n_verify_sources; i++) {
		tm_calib_source *s = &c->srcs[i];

		*s = pl->verify_sources[i];
		memset(&s->pre, 0, sizeof s->pre);
		for (size_t j = 0; j < pl->n_calib_sources; j++) {
			const tm_calib_source *cs = &pl->calib_sources[j];

			if ((!s->input && !cs->input) ||
			    (s->input && cs->input &&
			     strcmp(s->input, cs->input) == 0) ||
			    (pl->n_calib_sources == 1 &&
			     (!s->input || !cs->input))) {
				s->pre = cs->pre;	/* borrowed */
				break;
			}
		}
	}
	return TM_OK;
}

/* The tensors of the exposed model, in model order: inputs, then each
 * node's outputs. */
static tm_status
pick_tensors(vctx *c, tm_error *err)
{
	const tm_model *m = c->m;
	size_t cap = c->all.lw.n_outputs;

	c->tens = malloc((cap ? cap : 1) * sizeof *c->tens);
	c->tens_out = malloc((cap ? cap : 1) * sizeof *c->tens_out);
	c->tacc = calloc(cap ? cap : 1, sizeof *c->tacc);
	if (!c->tens || !c->tens_out || !c->tacc)
		return nomem(err);
	for (size_t k = 0; k <= m->n_nodes; k++) {
		size_t n = k ? m->nodes[k - 1]->n_outputs : m->n_inputs;

		for (size_t j = 0; j < n; j++) {
			size_t t = k ? m->nodes[k - 1]->outputs[j]
				     : m->inputs[j];
			size_t o = tm_priv_lowered_output(&c->all.lw, t);

			if (o == NONE || c->n_tens == cap)
				continue;
			c->tens[c->n_tens] = t;
			c->tens_out[c->n_tens++] = o;
		}
	}
	return TM_OK;
}

/* verify.labels: N integers in [0, K) for the first output of K > 1
 * values, N the number of verify samples. */
static tm_status
load_labels(vctx *c, const tm_pipeline *pl, tm_verify_report *rep,
	    tm_error *err)
{
	const tm_model *m = c->m;
	const char *f = pl->verify_labels_file ? pl->verify_labels_file
						: pl->file;
	unsigned ln = pl->verify_labels_line, col = pl->verify_labels_col;
	size_t n = tm_priv_dataset_samples(c->ds), k = 0;
	tm_npy a;
	tm_status st;

	c->lab_out = NONE;
	if (!pl->verify_labels)
		return TM_OK;
	for (size_t o = 0; o < m->n_outputs && c->lab_out == NONE; o++)
		if ((k = tm_tensor_numel(m->tensors[m->outputs[o]])) > 1)
			c->lab_out = o;
	if (c->lab_out == NONE)
		return tm_error_set_at(err, TM_ERR_INVALID, f, ln, col,
				       "verify.labels: no model output has "
				       "more than one value to take a class "
				       "from");
	st = tm_npy_load(pl->verify_labels, &a, err);
	if (st) {
		/* "FILE: message" becomes "pipeline:L:C: verify.labels:
		 * FILE: message", at the key that named the file. */
		if (err->file[0] && !err->line)
			tm_error_prefix(err, "%s", err->file);
		tm_error_prefix(err, "verify.labels");
		snprintf(err->file, sizeof err->file, "%s", f);
		err->line = ln;
		err->col = col;
		return st;
	}
	if (a.ndim < 1 || a.ndim > 2 || (a.ndim == 2 && a.shape[1] != 1) ||
	    a.numel != n) {
		st = tm_error_set_at(err, TM_ERR_INVALID, f, ln, col,
				     "verify.labels: '%s' must hold one "
				     "label per sample ([%zu] or [%zu, 1]), "
				     "it holds %zu value%s%s",
				     pl->verify_labels, n, n, a.numel,
				     a.numel == 1 ? "" : "s",
				     a.ndim == 2 && a.shape[1] != 1
				     ? " in rows of more than one" : "");
		tm_npy_fini(&a);
		return st;
	}
	c->labels = malloc((n ? n : 1) * sizeof *c->labels);
	if (!c->labels) {
		tm_npy_fini(&a);
		return nomem(err);
	}
	for (size_t i = 0; i < n; i++) {
		float v = a.data[i];

		if (!(v >= 0.0f && v < (float)k && v == floorf(v))) {
			st = tm_error_set_at(err, TM_ERR_INVALID, f, ln, col,
					     "verify.labels: label %g of "
					     "sample %zu in '%s' is not a "
					     "class of output '%s' (an integer"
					     " from 0 to %zu)", (double)v, i,
					     pl->verify_labels,
					     m->tensors[m->outputs[c->lab_out]]
						     ->name, k - 1);
			tm_npy_fini(&a);
			return st;
		}
		c->labels[i] = (int32_t)v;
	}
	tm_npy_fini(&a);
	c->n_labels = n;
	rep->labels_path = tm_priv_strdup(pl->verify_labels, err);
	rep->labeled_output =
		tm_priv_strdup(m->tensors[m->outputs[c->lab_out]]->name, err);
	if (!rep->labels_path || !rep->labeled_output)
		return TM_ERR_NOMEM;
	rep->classes = k;
	return TM_OK;
}

/* --- verify.reference: quantized ------------------------------------ */

/* The int8 step of activation t as the quantize pass set it. */
static tm_status
activation_fq(const tm_tensor *t, tm_fq *fq, tm_error *err)
{
	if (t->q.scheme != TM_QSCHEME_PER_TENSOR || !(t->q.scale > 0.0))
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: tensor '%s' has no int8 scale "
				    "for the quantized reference", t->name);
	fq->on = 1;
	fq->scale = t->q.scale;
	fq->zero_point = t->q.zero_point;
	return TM_OK;
}

/* The scale of output channel c of int8 weight w (axis 0). */
static double
weight_scale(const tm_tensor *w, size_t c)
{
	return w->q.scheme == TM_QSCHEME_PER_CHANNEL ? w->q.scales[c]
						     : w->q.scale;
}

/* A float copy of constant t to fill in, into c->cst[t] (replacing one
 * a previous layer made: the last layer that quantized it wins, as in
 * the quantize pass). */
static float *
new_const(vctx *c, size_t t, tm_error *err)
{
	size_t n = tm_tensor_numel(c->m->tensors[t]);

	free(c->cst[t]);
	c->cst[t] = malloc((n ? n : 1) * sizeof **c->cst);
	if (!c->cst[t])
		nomem(err);
	return c->cst[t];
}

/* Weight w [out, ...] as q8 times its scale (per tensor or per output
 * channel), and bias b [out] (index NONE: none) as q32 times s_in s_w:
 * what the integer layer multiplies and adds, corrections included. */
static tm_status
dequantize_layer(vctx *c, const tm_node *nd, size_t w, size_t b,
		 tm_error *err)
{
	const tm_tensor *x = c->m->tensors[nd->inputs[0]];
	const tm_tensor *wt = c->m->tensors[w];
	size_t out = (size_t)wt->shape[0], n = tm_tensor_numel(wt);
	size_t per = out ? n / out : 0;
	float *d;

	if (!wt->q8 || (wt->q.scheme == TM_QSCHEME_PER_CHANNEL &&
			(!wt->q.scales || wt->q.n_channels < out)))
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: %s: weight '%s' is not "
				    "quantized", nd->name, wt->name);
	d = new_const(c, w, err);
	if (!d)
		return TM_ERR_NOMEM;
	for (size_t k = 0; k < n; k++)
		d[k] = (float)((double)wt->q8[k] * weight_scale(wt, k / per));
	if (b == NONE)
		return TM_OK;
	if (!c->m->tensors[b]->q32 ||
	    tm_tensor_numel(c->m->tensors[b]) < out)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: %s: bias '%s' is not "
				    "quantized", nd->name,
				    c->m->tensors[b]->name);
	d = new_const(c, b, err);
	if (!d)
		return TM_ERR_NOMEM;
	for (size_t o = 0; o < out; o++)
		d[o] = (float)((double)c->m->tensors[b]->q32[o] *
			       x->q.scale * weight_scale(wt, o));
	return TM_OK;
}

/* An unfolded BatchNorm runs as a per-channel 1x1 depthwise layer, its
 * int8 weights in gamma's q8 and int32 biases in beta's q32 (quantize.c
 * quantize_batchnorm): gamma and beta become those dequantized, mean 0
 * and var 1 - eps, so y = x w_c + b_c up to float rounding. */
static tm_status
dequantize_batchnorm(vctx *c, const tm_node *nd, tm_error *err)
{
	size_t C = (size_t)c->m->tensors[nd->inputs[1]]->shape[0];
	float *mu, *var;
	tm_status st = dequantize_layer(c, nd, nd->inputs[1], nd->inputs[2],
					err);

	if (st)
		return st;
	mu = new_const(c, nd->inputs[3], err);
	var = mu ? new_const(c, nd->inputs[4], err) : NULL;
	if (!var)
		return TM_ERR_NOMEM;
	for (size_t k = 0; k < C; k++) {
		mu[k] = 0.0f;
		var[k] = (float)(1.0 - (double)nd->attrs.epsilon);
	}
	return TM_OK;
}

/* The interpreter made to run the int8 network emulated in float, from
 * the quantized model itself: every model input and every activation
 * the int8 network holds fake-quantized with its (scale, zero point);
 * the output of a layer whose ReLU or Clip the quantize pass folded
 * into it is not held, so it stays as it is; weights and biases are
 * their int8 and int32 values dequantized. */
static tm_status
quantized_reference(vctx *c, tm_error *err)
{
	const tm_model *m = c->m;
	size_t nt = m->n_tensors ? m->n_tensors : 1;
	tm_status st = TM_OK;

	c->fq = calloc(nt, sizeof *c->fq);
	c->cst = calloc(nt, sizeof *c->cst);
	if (!c->fq || !c->cst)
		return nomem(err);
	for (size_t i = 0; i < m->n_inputs && !st; i++)
		st = activation_fq(m->tensors[m->inputs[i]],
				   &c->fq[m->inputs[i]], err);
	for (size_t k = 0; k < m->n_nodes && !st; k++) {
		const tm_node *nd = m->nodes[k];

		if (!tm_priv_folded_activation(m, nd))
			st = activation_fq(m->tensors[nd->outputs[0]],
					   &c->fq[nd->outputs[0]], err);
		if (st)
			break;
		if (nd->op == TM_OP_DENSE || nd->op == TM_OP_CONV2D)
			st = dequantize_layer(c, nd, nd->inputs[1],
					      nd->n_inputs > 2 ? nd->inputs[2]
							       : NONE, err);
		else if (nd->op == TM_OP_BATCHNORM)
			st = dequantize_batchnorm(c, nd, err);
	}
	if (!st)
		tm_priv_interp_fake_quant(c->it, c->fq,
					  (const float *const *)c->cst);
	return st;
}

static tm_status
setup(vctx *c, const tm_pipeline *pl, size_t batch, tm_verify_report *rep,
      tm_error *err)
{
	const tm_model *m = c->m;
	tm_pipeline vpl = *pl;		/* shallow: the verify data in place
					 * of the calibration data */
	tm_status st = sources(c, pl, err);

	if (st)
		return st;
	vpl.calib_sources = c->srcs;
	vpl.n_calib_sources = pl->n_verify_sources;
	vpl.calib_file = pl->verify_file;
	vpl.calib_line = pl->verify_line;
	vpl.calib_col = pl->verify_col;
	st = tm_priv_dataset_open(m, &vpl, batch, &c->ds, err);
	if (st)
		return st;
	st = load_labels(c, pl, rep, err);
	if (st)
		return st;
	c->rd = tm_priv_dataset_reader_new(c->ds, err);
	if (!c->rd)
		return err->code ? err->code : TM_ERR_NOMEM;
	c->it = tm_priv_interp_new(m, batch, err);
	if (!c->it)
		return err->code ? err->code : TM_ERR_NOMEM;
	if (pl->verify_reference == TM_VERIFY_REF_QUANTIZED) {
		st = quantized_reference(c, err);
		if (st)
			return st;
	}
	c->in = calloc(m->n_inputs, sizeof *c->in);
	c->qin = calloc(m->n_inputs, sizeof *c->qin);
	c->acc = calloc(m->n_outputs, sizeof *c->acc);
	if (!c->in || !c->qin || !c->acc)
		return nomem(err);
	for (size_t i = 0; i < m->n_inputs; i++) {
		size_t n = tm_tensor_numel(m->tensors[m->inputs[i]]);

		c->in[i] = tm_priv_interp_input(c->it, i);
		c->qin[i] = malloc(n ? n : 1);
		if (!c->qin[i])
			return nomem(err);
	}
	return TM_OK;
}

static int8_t
quantize_value(float x, const tm_qparams *q)
{
	double v = (double)x / q->scale;
	long r;

	if (!(v > -1e6))
		v = -1e6;		/* also NaN: the interpreter refuses
					 * those before we get here */
	if (v > 1e6)
		v = 1e6;
	r = lround(v) + q->zero_point;
	return (int8_t)(r < TM_QMIN ? TM_QMIN : r > TM_QMAX ? TM_QMAX : r);
}

/* argmax (first maximum) of a float output; of an int8 one stored with
 * layout lay, in the model's order. */
static size_t
argmax_f(const float *v, size_t n)
{
	size_t best = 0;

	for (size_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

static size_t
argmax_q(const tm_priv_layout *lay, const int8_t *v, size_t n)
{
	size_t best = 0;

	for (size_t j = 1; j < n; j++)
		if (v[tm_priv_layout_index(lay, j)] >
		    v[tm_priv_layout_index(lay, best)])
			best = j;
	return best;
}

/* Adds the error of int8 q (stored with layout lay, dequantized) against
 * float f (one sample of tensor t, in the model's order) to a. */
static void
accumulate(acc *a, const tm_tensor *t, const tm_priv_layout *lay,
	   const int8_t *q, const float *f)
{
	size_t n = tm_tensor_numel(t);

	for (size_t j = 0; j < n; j++) {
		double fv = f[j];
		double d = t->q.scale *
			   (double)(q[tm_priv_layout_index(lay, j)] -
				    t->q.zero_point);
		double e = fabs(d - fv);

		if (e > a->max_abs)
			a->max_abs = e;
		a->sum_abs += e;
		a->sum_f2 += fv * fv;
		a->sum_e2 += e * e;
		a->n++;
	}
}

static tm_status
run_one(runner *r, int8_t **qin, tm_error *err)
{
	tmrt_status rs = tmrt_run(r->rt, (const int8_t *const *)qin, r->out,
				  r->arena, r->rt->arena_size);

	if (rs)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: tmrt_run: %s",
				    tmrt_status_str(rs));
	return TM_OK;
}

/* Sample s of the batch just run by the interpreter; g its index in the
 * data. */
static tm_status
one_sample(vctx *c, size_t s, size_t g, tm_error *err)
{
	const tm_model *m = c->m;
	tm_status st;

	for (size_t i = 0; i < m->n_inputs; i++) {
		const tm_tensor *t = m->tensors[m->inputs[i]];
		size_t n = tm_tensor_numel(t);
		const float *f = c->in[i] + s * n;

		/* libtmrt holds images HWC (lower_priv.h). */
		for (size_t j = 0; j < n; j++)
			c->qin[i][tm_priv_layout_index(
				&c->plain.lw.in_layout[i], j)] =
				quantize_value(f[j], &t->q);
	}
	st = run_one(&c->plain, c->qin, err);
	if (!st)
		st = run_one(&c->all, c->qin, err);
	if (st)
		return st;
	for (size_t o = 0; o < m->n_outputs; o++) {
		const tm_tensor *t = m->tensors[m->outputs[o]];
		size_t n = tm_tensor_numel(t);
		const float *f = tm_priv_interp_tensor(c->it, m->outputs[o]);
		const int8_t *q = c->plain.out[o];
		const tm_priv_layout *lay = &c->plain.lw.out_layout[o];

		if (!f)
			return tm_error_set(err, TM_ERR_INTERNAL,
					    "verify: output '%s' has no float "
					    "values", t->name);
		if (memcmp(q, c->all.out[o], n))
			return tm_error_set(err, TM_ERR_INTERNAL,
					    "verify: output '%s' differs "
					    "between the lowered model and the"
					    " one with every tensor exposed "
					    "(sample %zu): the arena plan "
					    "overwrites a live tensor",
					    t->name, g);
		f += s * n;
		accumulate(&c->acc[o], t, lay, q, f);
		if (n > 1 && argmax_f(f, n) == argmax_q(lay, q, n))
			c->acc[o].top1_agree++;
		if (o == c->lab_out) {
			size_t pf = argmax_f(f, n), pq = argmax_q(lay, q, n);

			c->float_correct += pf == (size_t)c->labels[g];
			c->int8_correct += pq == (size_t)c->labels[g];
			c->agree += pf == pq;
		}
	}
	for (size_t k = 0; k < c->n_tens; k++) {
		const tm_tensor *t = m->tensors[c->tens[k]];
		const float *f = tm_priv_interp_tensor(c->it, c->tens[k]);

		if (f)
			accumulate(&c->tacc[k], t,
				   &c->all.lw.out_layout[c->tens_out[k]],
				   c->all.out[c->tens_out[k]],
				   f + s * tm_tensor_numel(t));
	}
	return TM_OK;
}

static tm_status
report_outputs(vctx *c, const tm_pipeline *pl, tm_verify_report *rep,
	       tm_error *err)
{
	const tm_model *m = c->m;
	tm_status st = TM_OK;

	rep->outputs = calloc(m->n_outputs, sizeof *rep->outputs);
	if (!rep->outputs)
		return nomem(err);
	rep->n_outputs = m->n_outputs;
	for (size_t o = 0; o < m->n_outputs; o++) {
		const tm_tensor *t = m->tensors[m->outputs[o]];
		tm_verify_output *v = &rep->outputs[o];
		const acc *a = &c->acc[o];

		v->name = tm_priv_strdup(t->name, err);
		if (!v->name)
			return TM_ERR_NOMEM;
		v->values = tm_tensor_numel(t);
		v->max_abs = a->max_abs;
		v->mean_abs = a->n ? a->sum_abs / (double)a->n : 0.0;
		v->sqnr_db = tm_priv_sqnr_db(a->sum_f2, a->sum_e2);
		v->top1 = v->values > 1 && rep->samples
				  ? (double)a->top1_agree /
					    (double)rep->samples
				  : -1.0;
		v->pass = !pl->verify_has_tolerance ||
			  v->max_abs <= pl->verify_tolerance;
		tm_log(TM_LOG_NOTE, "verify",
		       "output '%s': max |int8 - %s| %.6g, mean %.6g, "
		       "SQNR %.2f dB over %zu samples", v->name, c->ref,
		       v->max_abs,
		       v->mean_abs, v->sqnr_db, rep->samples);
		if (!v->pass && rep->pass) {
			rep->pass = 0;
			st = tm_error_set_at(err, TM_ERR_NUMERIC,
					     pl->verify_tol_file,
					     pl->verify_tol_line,
					     pl->verify_tol_col,
					     "verify: output '%s': max "
					     "|int8 - %s| = %.6g exceeds "
					     "the tolerance %g", v->name,
					     c->ref, v->max_abs,
					     pl->verify_tolerance);
		}
	}
	return st;
}

static tm_status
report_tensors(vctx *c, tm_verify_report *rep, tm_error *err)
{
	rep->tensors = calloc(c->n_tens ? c->n_tens : 1,
			      sizeof *rep->tensors);
	if (!rep->tensors)
		return nomem(err);
	for (size_t k = 0; k < c->n_tens; k++) {
		const tm_tensor *t = c->m->tensors[c->tens[k]];
		tm_verify_tensor *v = &rep->tensors[rep->n_tensors++];

		v->name = tm_priv_strdup(t->name, err);
		if (!v->name)
			return TM_ERR_NOMEM;
		v->ndim = t->ndim;
		memcpy(v->shape, t->shape, sizeof v->shape);
		v->scale = t->q.scale;
		v->zero_point = t->q.zero_point;
		v->max_abs = c->tacc[k].max_abs;
		v->sqnr_db = tm_priv_sqnr_db(c->tacc[k].sum_f2,
					     c->tacc[k].sum_e2);
		tm_log(TM_LOG_NOTE, "verify",
		       "tensor '%s': SQNR %.2f dB, max |int8 - %s| %.6g "
		       "(%.2f steps)", v->name, v->sqnr_db, c->ref,
		       v->max_abs,
		       v->max_abs / v->scale);
	}
	return TM_OK;
}

static tm_status
report_accuracy(vctx *c, const tm_pipeline *pl, tm_verify_report *rep,
		tm_error *err)
{
	double n = (double)rep->samples;

	if (c->lab_out == NONE || !rep->samples)
		return TM_OK;
	rep->has_labels = 1;
	rep->float_correct = c->float_correct;
	rep->int8_correct = c->int8_correct;
	rep->agree = c->agree;
	rep->float_accuracy = (double)c->float_correct / n;
	rep->int8_accuracy = (double)c->int8_correct / n;
	rep->agreement = (double)c->agree / n;
	/* From the counts: 0.5 for one sample in 200, exactly. */
	rep->accuracy_drop = 100.0 * ((double)c->float_correct -
				      (double)c->int8_correct) / n;
	rep->has_max_drop = pl->verify_has_max_drop;
	rep->max_drop = pl->verify_max_drop;
	rep->accuracy_pass = !rep->has_max_drop ||
			     rep->accuracy_drop <= rep->max_drop;
	tm_log(TM_LOG_NOTE, "verify",
	       "top-1 accuracy of '%s' on %zu labels: %s %.2f%%, int8 "
	       "%.2f%%, agreement %.2f%%", rep->labeled_output, rep->samples,
	       c->ref,
	       100.0 * rep->float_accuracy, 100.0 * rep->int8_accuracy,
	       100.0 * rep->agreement);
	if (rep->accuracy_pass)
		return TM_OK;
	rep->pass = 0;
	return tm_error_set_at(err, TM_ERR_NUMERIC, pl->verify_drop_file,
			       pl->verify_drop_line, pl->verify_drop_col,
			       "verify: int8 top-1 accuracy %.2f%% is %.2f "
			       "points below %s's %.2f%% (%zu against "
			       "%zu of %zu), more than max_accuracy_drop %g",
			       100.0 * rep->int8_accuracy,
			       rep->accuracy_drop, c->ref,
			       100.0 * rep->float_accuracy,
			       c->int8_correct, c->float_correct,
			       rep->samples, rep->max_drop);
}

static tm_status
report(vctx *c, const tm_pipeline *pl, tm_verify_report *rep, tm_error *err)
{
	tm_status st, st2;

	rep->pass = 1;
	st = report_outputs(c, pl, rep, err);
	if (st && st != TM_ERR_NUMERIC)
		return st;
	st2 = report_tensors(c, rep, err);
	if (st2)
		return st2;
	/* The first failure is the one reported; both are in rep. */
	if (st) {
		tm_error keep = *err;

		report_accuracy(c, pl, rep, err);
		*err = keep;
		return st;
	}
	return report_accuracy(c, pl, rep, err);
}

tm_status
tm_priv_verify(const tm_model *m, const tm_pipeline *pl,
	       tm_verify_report *rep, tm_error *err)
{
	size_t batch = pl->verify_batch ? pl->verify_batch : 64;
	vctx c;
	tm_status st;

	memset(rep, 0, sizeof *rep);
	memset(&c, 0, sizeof c);
	c.m = m;
	c.lab_out = NONE;
	c.ref = pl->verify_reference == TM_VERIFY_REF_QUANTIZED ? "reference"
								: "float";
	rep->ran = 1;
	rep->reference = pl->verify_reference;
	rep->has_tolerance = pl->verify_has_tolerance;
	rep->tolerance = pl->verify_tolerance;
	st = runner_init(&c.plain, m, 0, err);
	if (!st) {
		rep->blob_bytes = c.plain.blob_size;
		rep->arena_bytes = c.plain.rt->arena_size;
		st = runner_init(&c.all, m, TM_PRIV_LOWER_EXPOSE_ALL, err);
	}
	for (size_t i = 0; !st && i < m->n_inputs; i++)
		if (memcmp(&c.plain.lw.in_layout[i], &c.all.lw.in_layout[i],
			   sizeof c.plain.lw.in_layout[i]))
			st = tm_error_set(err, TM_ERR_INTERNAL,
					  "verify: input %zu is laid out "
					  "differently with every tensor "
					  "exposed", i);
	if (!st)
		st = pick_tensors(&c, err);
	if (!st)
		st = setup(&c, pl, batch, rep, err);
	for (size_t k = 0; !st && k < tm_priv_dataset_batches(c.ds); k++) {
		size_t n = 0;

		st = tm_priv_dataset_read(c.rd, k, c.in, &n, err);
		if (!st)
			st = tm_priv_interp_run(c.it, n, err);
		for (size_t s = 0; !st && s < n; s++)
			st = one_sample(&c, s, rep->samples + s, err);
		rep->samples += st ? 0 : n;
	}
	if (!st)
		st = report(&c, pl, rep, err);
	else
		rep->pass = 0;
	vctx_fini(&c);
	return st;
}
