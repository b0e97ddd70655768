/* tmpipe — calibration. */
#include "config.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/npy.h>

#include "calib_priv.h"
#include "interp_priv.h"

typedef struct watch {
	size_t tensor;
	const tm_stage *stage;
	const tm_observer_ops *ops;
	void *state;
	int active;		/* wants the current pass */
} watch;

/* Every rule must match some tensor: a typo in a tensor name would
 * otherwise silently fall back to the default observer. */
static tm_status
check_rules(const tm_model *m, const tm_pipeline *pl, tm_error *err)
{
	for (size_t r = 0; r < pl->n_rules; r++) {
		const tm_tensor_rule *rule = &pl->rules[r];
		const char *names[256];
		size_t n = 0;
		int hit = 0, fixed = 0;
		const char *sugg;

		for (size_t t = 0; t < m->n_tensors; t++) {
			const tm_tensor *tt = m->tensors[t];

			if (tt->kind == TM_TENSOR_CONST)
				continue;
			if (fnmatch(rule->pattern, tt->name, 0) == 0) {
				if (tt->fixed_range)
					fixed = 1;
				else
					hit = 1;
			}
			if (n < TM_ARRAY_LEN(names))
				names[n++] = tt->name;
		}
		if (hit)
			continue;
		if (fixed)
			return tm_error_set_at(err, TM_ERR_INVALID, rule->file,
					       rule->line, rule->col,
					       "calibration.tensors: '%s' "
					       "matches only tensors whose "
					       "range their op fixes (e.g. a "
					       "sigmoid output); they are not "
					       "observed", rule->pattern);
		sugg = tm_priv_suggest(rule->pattern, names, n);
		if (sugg)
			return tm_error_set_at(err, TM_ERR_NOT_FOUND, rule->file,
					       rule->line, rule->col,
					       "calibration.tensors: '%s' "
					       "matches no activation tensor; "
					       "did you mean '%s'?",
					       rule->pattern, sugg);
		return tm_error_set_at(err, TM_ERR_NOT_FOUND, rule->file,
				       rule->line, rule->col,
				       "calibration.tensors: '%s' matches no "
				       "activation tensor", rule->pattern);
	}
	return TM_OK;
}

static tm_status
check_finite(const float *x, size_t n, size_t per_sample, size_t first,
	     const char *tensor, tm_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return tm_error_set(err, TM_ERR_NUMERIC,
					    "tensor '%s': sample %zu holds %s",
					    tensor, first + i / per_sample,
					    isnan(x[i]) ? "NaN" : "Inf");
	return TM_OK;
}

static tm_status
open_data(const tm_model *m, const tm_pipeline *pl, tm_npy_reader **out,
	  tm_error *err)
{
	const tm_tensor *in;
	tm_npy_reader *r;

	*out = NULL;
	if (m->n_inputs != 1)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "calibration of models with %zu inputs "
				    "is not supported yet", m->n_inputs);
	in = m->tensors[m->inputs[0]];
	r = tm_npy_open(pl->calib_data, err);
	if (!r) {
		tm_error_prefix(err, "calibration data");
		return err ? err->code : TM_ERR_IO;
	}
	if (tm_npy_ndim(r) < 1 || tm_npy_row_numel(r) != tm_tensor_numel(in)) {
		const int64_t *s = tm_npy_shape(r);
		size_t len = 0;
		char shape[128];

		shape[0] = '\0';
		for (int i = 0; i < tm_npy_ndim(r) && len < sizeof shape; i++)
			len += (size_t)snprintf(shape + len,
						sizeof shape - len, "%s%lld",
						i ? ", " : "",
						(long long)s[i]);
		tm_npy_close(r);
		return tm_error_set_at(err, TM_ERR_INVALID, pl->calib_data, 0,
				       0, "shape (%s) does not hold samples "
				       "of input '%s' (%zu values each); "
				       "expected N x %zu", shape, in->name,
				       tm_tensor_numel(in),
				       tm_tensor_numel(in));
	}
	if (tm_npy_rows(r) == 0) {
		tm_npy_close(r);
		return tm_error_set_at(err, TM_ERR_INVALID, pl->calib_data, 0,
				       0, "holds no samples");
	}
	*out = r;
	return TM_OK;
}

static tm_status
run_pass(tm_model *m, const tm_pipeline *pl, tm_npy_reader *r,
	 tm_interp *it, watch *w, size_t nw, tm_error *err)
{
	size_t first = 0, got;
	tm_status st;

	st = tm_npy_rewind(r, err);
	if (st)
		return st;
	for (;;) {
		st = tm_npy_read_rows(r, tm_priv_interp_input(it, 0),
				      pl->batch, &got, err);
		if (st || got == 0)
			return st;
		st = tm_priv_interp_run(it, got, err);
		if (st)
			return st;
		for (size_t i = 0; i < nw; i++) {
			const tm_tensor *t = m->tensors[w[i].tensor];
			size_t per = tm_tensor_numel(t);
			const float *x = tm_priv_interp_tensor(it, w[i].tensor);

			if (!w[i].active)
				continue;
			st = check_finite(x, got * per, per, first, t->name,
					  err);
			if (st)
				return st;
			st = w[i].ops->observe(w[i].state, x, got * per, err);
			if (st) {
				tm_error_prefix(err, "%s on tensor '%s'",
						w[i].stage->label, t->name);
				return st;
			}
		}
		first += got;
	}
}

tm_status
tm_priv_calibrate(tm_model *m, const tm_pipeline *pl, tm_calib_stats *stats,
		  tm_error *err)
{
	tm_npy_reader *r = NULL;
	tm_interp *it = NULL;
	watch *w = NULL;
	size_t nw = 0;
	tm_status st;

	memset(stats, 0, sizeof *stats);
	st = check_rules(m, pl, err);
	if (st)
		return st;
	st = open_data(m, pl, &r, err);
	if (st)
		return st;
	stats->samples = tm_npy_rows(r);
	w = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *w);
	it = tm_priv_interp_new(m, pl->batch, err);
	if (!w || !it) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t t = 0; t < m->n_tensors; t++) {
		tm_tensor *tt = m->tensors[t];

		if (tt->kind == TM_TENSOR_CONST)
			continue;
		if (tt->fixed_range) {
			stats->fixed++;
			continue;
		}
		w[nw].tensor = t;
		w[nw].stage = tm_priv_observer_for(pl, tt->name);
		w[nw].ops = w[nw].stage->plugin->desc->ops;
		w[nw].state = w[nw].ops->create(w[nw].stage->params, err);
		if (!w[nw].state) {
			st = err && err->code ? err->code
					      : tm_error_set(err,
							     TM_ERR_INTERNAL,
							     "%s returned no "
							     "state",
							     w[nw].stage->label);
			tm_error_prefix(err, "tensor '%s'", tt->name);
			goto out;
		}
		w[nw].active = 1;
		nw++;
	}
	for (;;) {
		int more = 0;

		stats->passes++;
		st = run_pass(m, pl, r, it, w, nw, err);
		if (st)
			goto out;
		for (size_t i = 0; i < nw; i++) {
			w[i].active = w[i].active && w[i].ops->next_pass &&
				      w[i].ops->next_pass(w[i].state);
			more |= w[i].active;
		}
		if (!more)
			break;
	}
	for (size_t i = 0; i < nw; i++) {
		tm_tensor *t = m->tensors[w[i].tensor];
		float lo, hi;

		st = w[i].ops->finish(w[i].state, &lo, &hi, err);
		if (!st && (!isfinite(lo) || !isfinite(hi) || lo > hi))
			st = tm_error_set(err, TM_ERR_NUMERIC,
					  "returned the range [%g, %g]",
					  (double)lo, (double)hi);
		if (st) {
			tm_error_prefix(err, "%s on tensor '%s'",
					w[i].stage->label, t->name);
			goto out;
		}
		t->has_range = 1;
		t->lo = lo;
		t->hi = hi;
		free(t->observer);
		t->observer = tm_priv_strdup(w[i].stage->plugin->name, err);
		if (!t->observer) {
			st = TM_ERR_NOMEM;
			goto out;
		}
		stats->observed++;
	}
out:
	for (size_t i = 0; i < nw; i++)
		w[i].ops->destroy(w[i].state);
	free(w);
	tm_priv_interp_free(it);
	tm_npy_close(r);
	return st;
}
