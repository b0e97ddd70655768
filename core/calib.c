/* tmpipe — calibration (see calib_priv.h for how threads share it). */
#include "config.h"

#include <fnmatch.h>
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "calib_priv.h"
#include "dataset_priv.h"
#include "interp_priv.h"

/* clone took the place of reserved[0]: plugins built before it still
 * find every other op where they put it. */
_Static_assert(sizeof(tm_observer_ops) == 11 * sizeof(void *),
	       "tm_observer_ops changed size");

/* One observed tensor. */
typedef struct watch {
	size_t tensor;
	const tm_tensor *t;
	size_t per;		/* values in one sample */
	const tm_stage *stage;
	const tm_observer_ops *ops;
	void *acc;		/* every batch ends up here */
	void *tmpl;		/* passes >= 2, split: acc as the pass began,
				 * which each batch's state is cloned from */
	int active;		/* wants the current pass */
	int split;		/* this pass, each batch has its own state,
				 * merged into acc at commit; else batches
				 * are observed into acc at commit */
} watch;

typedef struct calib calib;

/* A thread's own reader, interpreter and per-batch states. */
typedef struct worker {
	calib *c;
	tm_dataset_reader *rd;
	tm_interp *it;
	float **in;		/* the interpreter's input buffers */
	void **st;		/* per watch: the batch's state, or NULL */
	size_t state_bytes;	/* the most st held at once */
	pthread_t tid;
	int started;
} worker;

struct calib {
	tm_model *m;
	const tm_pipeline *pl;
	tm_dataset *ds;
	watch *w;
	size_t nw;
	size_t batch, batches;
	worker *wk;
	size_t nwk;
	pthread_mutex_t mu;	/* guards what follows, and clone */
	pthread_cond_t cv;	/* done or failed changed */
	size_t next;		/* the next batch to take */
	size_t done;		/* batches committed in this pass */
	int first_pass;		/* NaN/Inf are looked for only then: the
				 * float reference gives the same values in
				 * every pass */
	int failed;
	tm_error err;		/* the failure, the first in batch order */
};

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
			if (rule->by_op ? tm_priv_op_reads(m, rule->op, t)
					: fnmatch(rule->pattern, tt->name, 0) ==
						  0) {
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
		if (rule->by_op)
			return tm_error_set_at(err, TM_ERR_NOT_FOUND, rule->file,
					       rule->line, rule->col,
					       "calibration.ops: no %s in the "
					       "model reads an observed tensor",
					       rule->pattern);
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

/* NaN and Inf have every exponent bit set. The scan ORs a flag over the
 * batch without a branch (so it vectorizes; it was a sixth of the
 * calibration time), and only a hit looks for the first bad value. */
static tm_status
check_finite(const float *x, size_t n, size_t per_sample, size_t first,
	     const char *tensor, tm_error *err)
{
	uint32_t bad = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t u;

		memcpy(&u, &x[i], sizeof u);
		bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
	}
	if (!bad)
		return TM_OK;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return tm_error_set(err, TM_ERR_NUMERIC,
					    "tensor '%s': sample %zu holds %s",
					    tensor, first + i / per_sample,
					    isnan(x[i]) ? "NaN" : "Inf");
	return TM_OK;
}

static tm_status
no_state(const watch *w, tm_error *err)
{
	tm_status st = err && err->code
			       ? err->code
			       : tm_error_set(err, TM_ERR_INTERNAL,
					      "%s returned no state",
					      w->stage->label);

	tm_error_prefix(err, "tensor '%s'", w->t->name);
	return st;
}

static void
drop_states(worker *k)
{
	for (size_t i = 0; i < k->c->nw; i++)
		if (k->st[i]) {
			k->c->w[i].ops->destroy(k->st[i]);
			k->st[i] = NULL;
		}
}

/* The parallel part of batch b: read, run, check, and observe into the
 * worker's fresh per-batch states. */
static tm_status
compute(worker *k, size_t b, size_t *n, tm_error *err)
{
	calib *c = k->c;
	size_t bytes = 0;
	tm_status st;

	st = tm_priv_dataset_read(k->rd, b, k->in, n, err);
	if (!st)
		st = tm_priv_interp_run(k->it, *n, err);
	for (size_t i = 0; !st && i < c->nw; i++) {
		watch *w = &c->w[i];
		const float *x;

		if (!w->active)
			continue;
		x = tm_priv_interp_tensor(k->it, w->tensor);
		if (c->first_pass)
			st = check_finite(x, *n * w->per, w->per,
					  b * c->batch, w->t->name, err);
		if (st || !w->split)
			continue;
		if (w->tmpl) {
			/* One clone at a time: clone reads tmpl, and no
			 * two calls may touch one state at once. */
			pthread_mutex_lock(&c->mu);
			k->st[i] = w->ops->clone(w->tmpl, err);
			pthread_mutex_unlock(&c->mu);
		} else {
			k->st[i] = w->ops->create(w->stage->params, err);
		}
		if (!k->st[i])
			return no_state(w, err);
		st = w->ops->observe(k->st[i], x, *n * w->per, err);
		if (st)
			tm_error_prefix(err, "%s on tensor '%s'",
					w->stage->label, w->t->name);
		else if (w->ops->state_size)
			bytes += w->ops->state_size(k->st[i]);
	}
	if (bytes > k->state_bytes)
		k->state_bytes = bytes;
	return st;
}

/* Batch b's turn: every earlier batch is in the accumulated states, and
 * no other thread touches them until this one is done. */
static tm_status
commit(worker *k, size_t n, tm_error *err)
{
	calib *c = k->c;
	tm_status st = TM_OK;

	for (size_t i = 0; !st && i < c->nw; i++) {
		watch *w = &c->w[i];

		if (!w->active)
			continue;
		if (w->split) {
			st = w->ops->merge(w->acc, k->st[i], err);
			w->ops->destroy(k->st[i]);
			k->st[i] = NULL;
		} else {
			st = w->ops->observe(w->acc,
					     tm_priv_interp_tensor(k->it,
								   w->tensor),
					     n * w->per, err);
		}
		if (st)
			tm_error_prefix(err, "%s on tensor '%s'",
					w->stage->label, w->t->name);
	}
	return st;
}

static void *
work(void *arg)
{
	worker *k = arg;
	calib *c = k->c;

	for (;;) {
		tm_error e;
		tm_status st;
		size_t b, n = 0;

		pthread_mutex_lock(&c->mu);
		if (c->failed || c->next >= c->batches) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		b = c->next++;
		pthread_mutex_unlock(&c->mu);

		tm_error_clear(&e);
		st = compute(k, b, &n, &e);

		pthread_mutex_lock(&c->mu);
		while (c->done != b && !c->failed)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->failed) {
			/* An earlier batch failed: its error wins. */
			pthread_mutex_unlock(&c->mu);
			drop_states(k);
			break;
		}
		pthread_mutex_unlock(&c->mu);

		if (!st)
			st = commit(k, n, &e);
		drop_states(k);

		pthread_mutex_lock(&c->mu);
		if (st) {
			c->failed = 1;
			c->err = e;
		} else {
			c->done = b + 1;
		}
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		if (st)
			break;
	}
	return NULL;
}

/* One pass over the data on the workers; the calling thread is worker
 * 0. A thread the system will not start is simply not used: the result
 * does not depend on how many run. */
static tm_status
run_pass(calib *c, size_t *threads, tm_error *err)
{
	size_t started = 1;

	c->next = 0;
	c->done = 0;
	c->failed = 0;
	tm_error_clear(&c->err);
	for (size_t i = 1; i < c->nwk; i++) {
		c->wk[i].started = pthread_create(&c->wk[i].tid, NULL, work,
						  &c->wk[i]) == 0;
		started += (size_t)c->wk[i].started;
	}
	work(&c->wk[0]);
	for (size_t i = 1; i < c->nwk; i++)
		if (c->wk[i].started) {
			pthread_join(c->wk[i].tid, NULL);
			c->wk[i].started = 0;
		}
	if (started > *threads)
		*threads = started;
	if (!c->failed)
		return TM_OK;
	if (err && !err->code)
		*err = c->err;
	return c->err.code;
}

/* Sets up each active watch for the coming pass. */
static tm_status
begin_pass(calib *c, int first, tm_error *err)
{
	c->first_pass = first;
	for (size_t i = 0; i < c->nw; i++) {
		watch *w = &c->w[i];

		if (!w->active)
			continue;
		w->split = w->ops->merge && (first || w->ops->clone);
		if (first || !w->split)
			continue;
		w->tmpl = w->ops->clone(w->acc, err);
		if (!w->tmpl)
			return no_state(w, err);
	}
	return TM_OK;
}

static void
end_pass(calib *c)
{
	for (size_t i = 0; i < c->nw; i++)
		if (c->w[i].tmpl) {
			c->w[i].ops->destroy(c->w[i].tmpl);
			c->w[i].tmpl = NULL;
		}
}

static void
workers_free(calib *c)
{
	for (size_t i = 0; c->wk && i < c->nwk; i++) {
		worker *k = &c->wk[i];

		if (k->st)
			drop_states(k);
		free(k->st);
		free(k->in);
		tm_priv_interp_free(k->it);
		tm_priv_dataset_reader_free(k->rd);
	}
	free(c->wk);
	c->wk = NULL;
}

static tm_status
workers_new(calib *c, size_t n, size_t max_batch, tm_error *err)
{
	c->wk = calloc(n, sizeof *c->wk);
	if (!c->wk)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	c->nwk = n;
	for (size_t i = 0; i < n; i++) {
		worker *k = &c->wk[i];

		k->c = c;
		k->rd = tm_priv_dataset_reader_new(c->ds, err);
		if (!k->rd)
			return err && err->code ? err->code : TM_ERR_NOMEM;
		k->it = tm_priv_interp_new(c->m, max_batch, err);
		if (!k->it)
			return err && err->code ? err->code : TM_ERR_NOMEM;
		k->in = calloc(c->m->n_inputs, sizeof *k->in);
		k->st = calloc(c->nw ? c->nw : 1, sizeof *k->st);
		if (!k->in || !k->st)
			return tm_error_set(err, TM_ERR_NOMEM,
					    "out of memory");
		for (size_t j = 0; j < c->m->n_inputs; j++)
			k->in[j] = tm_priv_interp_input(k->it, j);
	}
	return TM_OK;
}

static tm_status
finish(calib *c, tm_calib_stats *stats, tm_error *err)
{
	for (size_t i = 0; i < c->nw; i++) {
		watch *w = &c->w[i];
		tm_tensor *t = c->m->tensors[w->tensor];
		tm_status st;
		float lo, hi;

		if (w->ops->state_size)
			stats->acc_bytes += w->ops->state_size(w->acc);
		st = w->ops->finish(w->acc, &lo, &hi, err);
		if (!st && (!isfinite(lo) || !isfinite(hi) || lo > hi))
			st = tm_error_set(err, TM_ERR_NUMERIC,
					  "returned the range [%g, %g]",
					  (double)lo, (double)hi);
		if (st) {
			tm_error_prefix(err, "%s on tensor '%s'",
					w->stage->label, t->name);
			return st;
		}
		t->has_range = 1;
		t->lo = lo;
		t->hi = hi;
		t->symmetric_range = w->ops->symmetric &&
				     w->ops->symmetric(w->acc);
		free(t->observer);
		t->observer = tm_priv_strdup(w->stage->plugin->name, err);
		if (!t->observer)
			return TM_ERR_NOMEM;
		stats->observed++;
	}
	return TM_OK;
}

tm_status
tm_priv_calibrate(tm_model *m, const tm_pipeline *pl, tm_calib_stats *stats,
		  tm_error *err)
{
	calib c;
	size_t threads, max_batch;
	int sync = 0;
	tm_status st;

	memset(stats, 0, sizeof *stats);
	memset(&c, 0, sizeof c);
	c.m = m;
	c.pl = pl;
	c.batch = pl->batch;
	st = check_rules(m, pl, err);
	if (st)
		return st;
	st = tm_priv_dataset_open(m, pl, c.batch, &c.ds, err);
	if (st)
		return st;
	stats->samples = tm_priv_dataset_samples(c.ds);
	stats->batches = c.batches = tm_priv_dataset_batches(c.ds);
	stats->index_bytes = tm_priv_dataset_bytes(c.ds);
	if (pthread_mutex_init(&c.mu, NULL) == 0) {
		if (pthread_cond_init(&c.cv, NULL) == 0)
			sync = 1;
		else
			pthread_mutex_destroy(&c.mu);
	}
	c.w = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *c.w);
	if (!sync || !c.w) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t t = 0; t < m->n_tensors; t++) {
		tm_tensor *tt = m->tensors[t];
		watch *w = &c.w[c.nw];

		if (tt->kind == TM_TENSOR_CONST)
			continue;
		if (tt->fixed_range) {
			stats->fixed++;
			continue;
		}
		w->tensor = t;
		w->t = tt;
		w->per = tm_tensor_numel(tt);
		w->stage = tm_priv_observer_for(pl, m, t);
		w->ops = w->stage->plugin->desc->ops;
		w->acc = w->ops->create(w->stage->params, err);
		if (!w->acc) {
			st = no_state(w, err);
			goto out;
		}
		w->active = 1;
		c.nw++;
	}

	/* Interpreters are made here, before any thread starts; making
	 * one makes OpenBLAS single-threaded (tm_priv_blas_init). */
	threads = pl->threads ? pl->threads : 1;
	if (threads > c.batches)
		threads = c.batches;
	max_batch = c.batch < stats->samples ? c.batch : stats->samples;
	st = workers_new(&c, threads, max_batch, err);
	if (st)
		goto out;
	stats->reader_bytes = tm_priv_dataset_reader_bytes(c.wk[0].rd);
	stats->interp_bytes = tm_priv_interp_bytes(c.wk[0].it);

	for (int first = 1;; first = 0) {
		int more = 0;

		stats->passes++;
		st = begin_pass(&c, first, err);
		if (!st)
			st = run_pass(&c, &stats->threads, err);
		end_pass(&c);
		if (st)
			goto out;
		for (size_t i = 0; i < c.nw; i++) {
			watch *w = &c.w[i];

			w->active = w->active && w->ops->next_pass &&
				    w->ops->next_pass(w->acc);
			more |= w->active;
		}
		if (!more)
			break;
	}
	for (size_t i = 0; i < c.nwk; i++)
		if (c.wk[i].state_bytes > stats->state_bytes)
			stats->state_bytes = c.wk[i].state_bytes;
	st = finish(&c, stats, err);
out:
	workers_free(&c);
	for (size_t i = 0; i < c.nw; i++)
		c.w[i].ops->destroy(c.w[i].acc);
	free(c.w);
	if (sync) {
		pthread_cond_destroy(&c.cv);
		pthread_mutex_destroy(&c.mu);
	}
	tm_priv_dataset_free(c.ds);
	return st;
}
