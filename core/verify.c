/* tmpipe — the verify stage (see verify_priv.h). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/quant.h>
#include <tmrt/model.h>

#include "dataset_priv.h"
#include "interp_priv.h"
#include "lower_priv.h"
#include "verify_priv.h"

typedef struct acc {
	double max_abs, sum_abs, sum_f2, sum_e2;
	size_t n, top1_agree;
} acc;

typedef struct vctx {
	const tm_model *m;
	tm_priv_lowered lw;
	void *blob, *ram, *arena;
	const tmrt_model *rt;
	tm_calib_source *srcs;
	tm_dataset *ds;
	tm_dataset_reader *rd;
	tm_interp *it;
	float **in;			/* interpreter input buffers */
	int8_t **qin, **qout;		/* one sample */
	acc *acc;
} vctx;

void
tm_priv_verify_report_fini(tm_verify_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->n_outputs; i++)
		free(rep->outputs[i].name);
	free(rep->outputs);
	memset(rep, 0, sizeof *rep);
}

static tm_status
nomem(tm_error *err)
{
	return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
}

static void
vctx_fini(vctx *c)
{
	size_t ni = c->m->n_inputs, no = c->m->n_outputs;

	tm_priv_interp_free(c->it);
	tm_priv_dataset_reader_free(c->rd);
	tm_priv_dataset_free(c->ds);
	free(c->srcs);
	for (size_t i = 0; c->qin && i < ni; i++)
		free(c->qin[i]);
	for (size_t i = 0; c->qout && i < no; i++)
		free(c->qout[i]);
	free(c->qin);
	free(c->qout);
	free(c->in);
	free(c->acc);
	free(c->arena);
	free(c->ram);
	free(c->blob);
	tm_priv_lowered_fini(&c->lw);
}

/* The blob, copied out of the writer and loaded as a target would. */
static tm_status
load_blob(vctx *c, tm_verify_report *rep, tm_error *err)
{
	const uint8_t *bytes;
	size_t size = 0, ram = 0;
	tmrt_status rs;

	bytes = tm_priv_blob_bytes(c->lw.blob, &size);
	c->blob = malloc(size ? size : 1);	/* malloc: aligned enough */
	if (!c->blob)
		return nomem(err);
	memcpy(c->blob, bytes, size);
	rep->blob_bytes = size;
	rs = tmrt_blob_ram_size(c->blob, size, &ram);
	if (!rs) {
		c->ram = malloc(ram ? ram : 1);
		if (!c->ram)
			return nomem(err);
		rs = tmrt_blob_load(c->blob, size, c->ram, ram, &c->rt);
	}
	if (rs)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: libtmrt refuses the lowered "
				    "model: %s", tmrt_status_str(rs));
	rep->arena_bytes = c->rt->arena_size;
	c->arena = malloc(c->rt->arena_size ? c->rt->arena_size : 1);
	return c->arena ? TM_OK : nomem(err);
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

static tm_status
setup(vctx *c, const tm_pipeline *pl, size_t batch, tm_error *err)
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
	c->rd = tm_priv_dataset_reader_new(c->ds, err);
	if (!c->rd)
		return err->code ? err->code : TM_ERR_NOMEM;
	c->it = tm_priv_interp_new(m, batch, err);
	if (!c->it)
		return err->code ? err->code : TM_ERR_NOMEM;
	c->in = calloc(m->n_inputs, sizeof *c->in);
	c->qin = calloc(m->n_inputs, sizeof *c->qin);
	c->qout = calloc(m->n_outputs, sizeof *c->qout);
	c->acc = calloc(m->n_outputs, sizeof *c->acc);
	if (!c->in || !c->qin || !c->qout || !c->acc)
		return nomem(err);
	for (size_t i = 0; i < m->n_inputs; i++) {
		size_t n = tm_tensor_numel(m->tensors[m->inputs[i]]);

		c->in[i] = tm_priv_interp_input(c->it, i);
		c->qin[i] = malloc(n ? n : 1);
		if (!c->qin[i])
			return nomem(err);
	}
	for (size_t i = 0; i < m->n_outputs; i++) {
		size_t n = tm_tensor_numel(m->tensors[m->outputs[i]]);

		c->qout[i] = malloc(n ? n : 1);
		if (!c->qout[i])
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

static size_t
argmax_f(const float *v, size_t n)
{
	size_t best = 0;

	for (size_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* Sample s of the batch just run by the interpreter. */
static tm_status
one_sample(vctx *c, size_t s, tm_error *err)
{
	const tm_model *m = c->m;
	tmrt_status rs;

	for (size_t i = 0; i < m->n_inputs; i++) {
		const tm_tensor *t = m->tensors[m->inputs[i]];
		size_t n = tm_tensor_numel(t);

		/* libtmrt holds images HWC (lower_priv.h). */
		for (size_t j = 0; j < n; j++)
			c->qin[i][tm_priv_layout_index(&c->lw.in_layout[i],
						       j)] =
				quantize_value(c->in[i][s * n + j], &t->q);
	}
	rs = tmrt_run(c->rt, (const int8_t *const *)c->qin, c->qout,
		      c->arena, c->rt->arena_size);
	if (rs)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "verify: tmrt_run: %s",
				    tmrt_status_str(rs));
	for (size_t o = 0; o < m->n_outputs; o++) {
		const tm_tensor *t = m->tensors[m->outputs[o]];
		size_t n = tm_tensor_numel(t);
		const float *f = tm_priv_interp_tensor(c->it, m->outputs[o]);
		acc *a = &c->acc[o];

		if (!f)
			return tm_error_set(err, TM_ERR_INTERNAL,
					    "verify: output '%s' has no float "
					    "values", t->name);
		const tm_priv_layout *lay = &c->lw.out_layout[o];
		size_t qbest = 0;

		f += s * n;
		for (size_t j = 0; j < n; j++) {
			int8_t q = c->qout[o][tm_priv_layout_index(lay, j)];
			double d = t->q.scale * (double)(q - t->q.zero_point);
			double e = fabs(d - (double)f[j]);

			if (e > a->max_abs)
				a->max_abs = e;
			a->sum_abs += e;
			a->sum_f2 += (double)f[j] * (double)f[j];
			a->sum_e2 += e * e;
			a->n++;
			if (q > c->qout[o][tm_priv_layout_index(lay, qbest)])
				qbest = j;
		}
		if (n > 1 && argmax_f(f, n) == qbest)
			a->top1_agree++;
	}
	return TM_OK;
}

static tm_status
report(vctx *c, const tm_pipeline *pl, tm_verify_report *rep, tm_error *err)
{
	const tm_model *m = c->m;
	tm_status st = TM_OK;

	rep->outputs = calloc(m->n_outputs, sizeof *rep->outputs);
	if (!rep->outputs)
		return nomem(err);
	rep->n_outputs = m->n_outputs;
	rep->pass = 1;
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
		v->sqnr_db = a->sum_e2 > 0.0
				     ? 10.0 * log10(a->sum_f2 / a->sum_e2)
				     : INFINITY;
		v->top1 = v->values > 1 && rep->samples
				  ? (double)a->top1_agree /
					    (double)rep->samples
				  : -1.0;
		v->pass = !pl->verify_has_tolerance ||
			  v->max_abs <= pl->verify_tolerance;
		tm_log(TM_LOG_NOTE, "verify",
		       "output '%s': max |int8 - float| %.6g, mean %.6g, "
		       "SQNR %.2f dB over %zu samples", v->name, v->max_abs,
		       v->mean_abs, v->sqnr_db, rep->samples);
		if (!v->pass && rep->pass) {
			rep->pass = 0;
			st = tm_error_set_at(err, TM_ERR_NUMERIC,
					     pl->verify_tol_file,
					     pl->verify_tol_line,
					     pl->verify_tol_col,
					     "verify: output '%s': max "
					     "|int8 - float| = %.6g exceeds "
					     "the tolerance %g", v->name,
					     v->max_abs, pl->verify_tolerance);
		}
	}
	return st;
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
	rep->ran = 1;
	rep->has_tolerance = pl->verify_has_tolerance;
	rep->tolerance = pl->verify_tolerance;
	st = tm_priv_lower(m, 0, &c.lw, err);
	if (!st && c.lw.n_outputs != m->n_outputs)
		st = tm_error_set(err, TM_ERR_INTERNAL,
				  "verify: the lowered model has %zu "
				  "outputs, the model %zu", c.lw.n_outputs,
				  m->n_outputs);
	if (!st)
		st = load_blob(&c, rep, err);
	if (!st)
		st = setup(&c, pl, batch, err);
	for (size_t k = 0; !st && k < tm_priv_dataset_batches(c.ds); k++) {
		size_t n = 0;

		st = tm_priv_dataset_read(c.rd, k, c.in, &n, err);
		if (!st)
			st = tm_priv_interp_run(c.it, n, err);
		for (size_t s = 0; !st && s < n; s++)
			st = one_sample(&c, s, err);
		rep->samples += st ? 0 : n;
	}
	if (!st)
		st = report(&c, pl, rep, err);
	else
		rep->pass = 0;
	vctx_fini(&c);
	return st;
}
