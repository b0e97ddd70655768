/* tmpipe bench/calib — where a calibration's time goes, and the KL sweep.
 *
 *	profile [-P plugin_dir] [-r finishes] pipeline.yaml data.npy
 *
 * Loads the pipeline through the registry (as `tmpipe run` does), builds
 * the model with its frontend, and calibrates every activation tensor
 * with the pipeline's observers the way core/calib.c does on one thread:
 * batches of calibration.batch samples through the float reference
 * interpreter; per batch the NaN/Inf check of every watched tensor, then
 * for an observer with merge a fresh state (create in the first pass, a
 * clone of the accumulated state as the pass began in later passes),
 * observed with the whole batch, merged into the accumulated state and
 * destroyed (without merge: observed into the accumulated state);
 * next_pass after each pass; finish. So the observer calls and their
 * results are the same as `tmpipe run`'s.
 *
 * Unlike the core, it reads the whole data file first (tm_npy_load): the
 * time of the streamed reads is not in the profile (bench/calib prints
 * the difference to `tmpipe -v run`'s calibration time).
 *
 * Clocks around each part, summed over the batches; then finish is
 * called `finishes` more times on each tensor's final state (it does not
 * change the state), and the median is that tensor's finish time: for kl
 * the sweep over thresholds. Prints, as bench/calib parses:
 *
 *	info profile <observer> samples=N batch=B passes=P tensors=K
 *	pass <observer> <N> <p> forward_ms=.. check_ms=.. observe_ms=..
 *	tensor <observer> <N> <name> values=<per sample> observe_ms=..
 *		finish_ms=<median> finish_min_ms=.. state_bytes=..
 *	range tmpipe <observer> <N> <name> <lo> <hi>
 *
 * Linked against the core's convenience library, like bench/forward.c:
 * the interpreter and the pipeline internals are private to libtmpipe. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tmpipe/tmpipe.h>

#include "common.h"
#include "interp_priv.h"
#include "loader_priv.h"
#include "pipeline_priv.h"

#define MAX_PASSES 8

typedef struct watch {
	size_t tensor;
	const tm_tensor *t;
	size_t per;
	const tm_stage *stage;
	const tm_observer_ops *ops;
	void *acc, *tmpl;
	int active, split;
	double observe[MAX_PASSES];	/* seconds, per pass */
	double finish_med, finish_min;
	float lo, hi;
} watch;

/* core/calib.c's check_finite. */
static tm_status
check_finite(const float *x, size_t n, const char *tensor, tm_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return tm_error_set(err, TM_ERR_NUMERIC,
					    "tensor '%s' holds %s", tensor,
					    isnan(x[i]) ? "NaN" : "Inf");
	return TM_OK;
}

static tm_status
no_state(const watch *w, tm_error *err)
{
	if (!err->code)
		tm_error_set(err, TM_ERR_INTERNAL, "%s returned no state",
			     w->stage->label);
	tm_error_prefix(err, "tensor '%s'", w->t->name);
	return err->code;
}

/* One batch of n samples, already in the interpreter's input. */
static tm_status
batch(tm_interp *it, watch *w, size_t nw, size_t n, int pass, double *fwd,
      double *chk, tm_error *err)
{
	tm_status st;
	double t = bench_now();

	st = tm_priv_interp_run(it, n, err);
	*fwd += bench_now() - t;
	for (size_t i = 0; !st && i < nw; i++) {
		const float *x = tm_priv_interp_tensor(it, w[i].tensor);
		void *s;

		if (!w[i].active)
			continue;
		t = bench_now();
		st = check_finite(x, n * w[i].per, w[i].t->name, err);
		*chk += bench_now() - t;
		if (st)
			break;
		t = bench_now();
		if (!w[i].split) {
			st = w[i].ops->observe(w[i].acc, x, n * w[i].per,
					       err);
		} else {
			s = w[i].tmpl ? w[i].ops->clone(w[i].tmpl, err)
				      : w[i].ops->create(w[i].stage->params,
							 err);
			if (!s)
				return no_state(&w[i], err);
			st = w[i].ops->observe(s, x, n * w[i].per, err);
			if (!st)
				st = w[i].ops->merge(w[i].acc, s, err);
			w[i].ops->destroy(s);
		}
		w[i].observe[pass] += bench_now() - t;
		if (st)
			tm_error_prefix(err, "%s on tensor '%s'",
					w[i].stage->label, w[i].t->name);
	}
	return st;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: profile [-P plugin_dir] [-r finishes] "
		   "pipeline.yaml data.npy\n");
}

int
main(int argc, char **argv)
{
	const char *plugin_dir = NULL, *given[2] = { NULL, NULL };
	size_t finishes = 30, nw = 0, n, in_numel, bsz, passes = 0;
	const char *obs_name = "?";
	double *fin = NULL;
	tm_registry *reg = NULL;
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	tm_interp *it = NULL;
	tm_npy x = { 0 };
	watch *w = NULL;
	tm_error err;
	char msg[2048];
	int c, rc = 1;

	while ((c = getopt(argc, argv, "P:r:h")) != -1) {
		switch (c) {
		case 'P':
			plugin_dir = optarg;
			break;
		case 'r':
			finishes = strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || finishes == 0) {
		usage(stderr);
		return 2;
	}
	tm_error_clear(&err);
	given[0] = plugin_dir;
	reg = tm_registry_new();
	if (!reg) {
		tm_error_set(&err, TM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (tm_registry_scan(reg, plugin_dir ? given : NULL, NULL, NULL, &err) ||
	    tm_pipeline_load(argv[optind], reg, NULL, &pl, &err))
		goto fail;
	if (!pl->has_calibration) {
		fprintf(stderr, "profile: %s has no calibration section\n",
			argv[optind]);
		goto out;
	}
	m = tm_model_new();
	if (!m) {
		tm_error_set(&err, TM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (((const tm_frontend_ops *)pl->frontend.plugin->desc->ops)
		    ->load(pl->frontend.params, m, &err) ||
	    tm_model_finalize(m, &err))
		goto fail;
	if (m->n_inputs != 1) {
		fprintf(stderr, "profile: the model has %zu inputs; one, "
				"please\n", m->n_inputs);
		goto out;
	}
	if (tm_npy_load(argv[optind + 1], &x, &err))
		goto fail;
	in_numel = tm_tensor_numel(m->tensors[m->inputs[0]]);
	if (x.ndim < 1 || x.numel != (size_t)x.shape[0] * in_numel) {
		fprintf(stderr, "profile: %s: %zu values is not N samples of "
				"%zu\n", argv[optind + 1], x.numel, in_numel);
		goto out;
	}
	n = (size_t)x.shape[0];
	bsz = pl->batch < n ? pl->batch : n;

	w = calloc(m->n_tensors, sizeof *w);
	fin = calloc(finishes, sizeof *fin);
	it = tm_priv_interp_new(m, bsz, &err);
	if (!w || !fin || !it) {
		if (!err.code)
			tm_error_set(&err, TM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t t = 0; t < m->n_tensors; t++) {
		const tm_tensor *tt = m->tensors[t];
		watch *v = &w[nw];

		if (tt->kind == TM_TENSOR_CONST || tt->fixed_range)
			continue;
		v->tensor = t;
		v->t = tt;
		v->per = tm_tensor_numel(tt);
		v->stage = tm_priv_observer_for(pl, m, t);
		v->ops = v->stage->plugin->desc->ops;
		v->acc = v->ops->create(v->stage->params, &err);
		if (!v->acc) {
			no_state(v, &err);
			goto fail;
		}
		v->active = 1;
		obs_name = v->stage->plugin->name;
		nw++;
	}

	for (int pass = 0;; pass++) {
		double fwd = 0, chk = 0, obs = 0;
		int more = 0;

		if (pass >= MAX_PASSES) {
			fprintf(stderr, "profile: more than %d passes\n",
				MAX_PASSES);
			goto out;
		}
		for (size_t i = 0; i < nw; i++) {
			watch *v = &w[i];

			if (!v->active)
				continue;
			v->split = v->ops->merge && (pass == 0 || v->ops->clone);
			if (pass > 0 && v->split) {
				v->tmpl = v->ops->clone(v->acc, &err);
				if (!v->tmpl) {
					no_state(v, &err);
					goto fail;
				}
			}
		}
		for (size_t s = 0; s < n; s += bsz) {
			size_t b = n - s < bsz ? n - s : bsz;

			memcpy(tm_priv_interp_input(it, 0),
			       x.data + s * in_numel,
			       b * in_numel * sizeof *x.data);
			if (batch(it, w, nw, b, pass, &fwd, &chk, &err))
				goto fail;
		}
		for (size_t i = 0; i < nw; i++) {
			watch *v = &w[i];

			if (v->tmpl) {
				v->ops->destroy(v->tmpl);
				v->tmpl = NULL;
			}
			if (v->active)
				obs += v->observe[pass];
			v->active = v->active && v->ops->next_pass &&
				    v->ops->next_pass(v->acc);
			more |= v->active;
		}
		passes++;
		printf("pass %s %zu %d forward_ms=%.3f check_ms=%.3f "
		       "observe_ms=%.3f\n", obs_name, n, pass + 1, fwd * 1e3,
		       chk * 1e3, obs * 1e3);
		if (!more)
			break;
	}
	printf("info profile %s samples=%zu batch=%zu passes=%zu tensors=%zu\n",
	       obs_name, n, bsz, passes, nw);

	for (size_t i = 0; i < nw; i++) {
		watch *v = &w[i];
		double tot = 0;

		for (size_t r = 0; r <= finishes; r++) {
			double t = bench_now();

			if (v->ops->finish(v->acc, &v->lo, &v->hi, &err)) {
				tm_error_prefix(&err, "%s on tensor '%s'",
						v->stage->label, v->t->name);
				goto fail;
			}
			if (r > 0)	/* the first one warms up */
				fin[r - 1] = bench_now() - t;
		}
		qsort(fin, finishes, sizeof *fin, bench_cmp_double);
		v->finish_min = fin[0];
		v->finish_med = finishes % 2
					? fin[finishes / 2]
					: (fin[finishes / 2 - 1] +
					   fin[finishes / 2]) / 2;
		for (size_t p = 0; p < passes; p++)
			tot += v->observe[p];
		printf("tensor %s %zu %s values=%zu observe_ms=%.3f "
		       "finish_ms=%.4f finish_min_ms=%.4f state_bytes=%zu\n",
		       obs_name, n, v->t->name, v->per, tot * 1e3,
		       v->finish_med * 1e3, v->finish_min * 1e3,
		       v->ops->state_size ? v->ops->state_size(v->acc) : 0);
	}
	for (size_t i = 0; i < nw; i++)
		printf("range tmpipe %s %zu %s %.9g %.9g\n", obs_name, n,
		       w[i].t->name, (double)w[i].lo, (double)w[i].hi);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "profile: %s\n", tm_error_format(&err, msg,
							  sizeof msg));
out:
	for (size_t i = 0; w && i < nw; i++) {
		if (w[i].tmpl)
			w[i].ops->destroy(w[i].tmpl);
		w[i].ops->destroy(w[i].acc);
	}
	free(w);
	free(fin);
	tm_priv_interp_free(it);
	tm_npy_fini(&x);
	tm_model_free(m);
	tm_pipeline_free(pl);
	tm_registry_free(reg);
	return rc;
}
