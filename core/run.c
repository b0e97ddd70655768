/* tmpipe — the pass manager. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/plugin.h>

#include "quantize_priv.h"
#include "run_priv.h"
#include "transform_priv.h"

static void
stage_done(tm_stage_hook hook, void *user, tm_run_summary *sum,
	   const char *label, double t0)
{
	sum->stages++;
	if (hook)
		hook(user, label, tm_priv_now() - t0);
}

/* Points a plugin's error that has no line at the stage in the pipeline;
 * a file it names (an output, say) moves into the message. */
static void
locate(const tm_pipeline *pl, const tm_stage *s, tm_error *err)
{
	char file[TM_ERROR_FILE_MAX];

	if (!err || !err->code || err->line)
		return;
	memcpy(file, err->file, sizeof file);
	if (file[0])
		tm_error_prefix(err, "%s", file);
	tm_error_prefix(err, "%s", s->label);
	snprintf(err->file, sizeof err->file, "%s", pl->file);
	err->line = s->line;
	err->col = s->col;
}

static tm_transform_ctx *
ctx_of(const tm_pipeline *pl, tm_transform_ctx *ctx)
{
	ctx->pl = pl;
	return ctx;
}

/* Runs transform stage s on m: through run_ctx when it needs data. The
 * preserved mask goes to *preserved when not NULL. */
static tm_status
run_transform(const tm_pipeline *pl, const tm_stage *s, tm_model *m,
	      unsigned *preserved, tm_error *err)
{
	const tm_transform_ops *ops = s->plugin->desc->ops;
	unsigned kept = TM_PRESERVE_NONE;
	tm_transform_ctx ctx;
	tm_status st;

	if (ops->needs & TM_TRANSFORM_NEEDS_DATA)
		st = ops->run_ctx(m, s->params, ctx_of(pl, &ctx), &kept, err);
	else
		st = ops->run(m, s->params, &kept, err);
	if (!st)
		st = tm_model_finalize(m, err);
	if (st)
		locate(pl, s, err);
	if (preserved)
		*preserved = kept;
	return st;
}

typedef struct old_range {
	char *name;
	float lo, hi;
} old_range;

/* Calibrates m again after transform `by` changed it, and says which
 * ranges moved (notes; each one as a trace). */
static tm_status
recalibrate(tm_model *m, const tm_pipeline *pl, const char *by,
	    tm_calib_stats *cs, tm_run_summary *sum, tm_error *err)
{
	old_range *old = calloc(m->n_tensors + 1, sizeof *old);
	size_t n_old = 0, moved = 0, seen = 0;
	tm_status st = TM_OK;

	if (!old)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < m->n_tensors; i++) {
		tm_tensor *t = m->tensors[i];

		if (!t->has_range || t->fixed_range)
			continue;
		old[n_old].name = tm_priv_strdup(t->name, err);
		if (!old[n_old].name) {
			st = err ? err->code : TM_ERR_NOMEM;
			goto out;
		}
		old[n_old].lo = t->lo;
		old[n_old].hi = t->hi;
		n_old++;
		t->has_range = 0;
	}
	tm_log(TM_LOG_NOTE, "calibration", "'%s' changed the model after "
	       "calibration: recalibrating", by);
	st = tm_priv_calibrate(m, pl, cs, err);
	if (st)
		goto out;
	sum->recalibrations++;
	sum->tensors_observed = cs->observed;
	sum->tensors_fixed = cs->fixed;
	for (size_t k = 0; k < n_old; k++) {
		const tm_tensor *t = tm_model_find_tensor(m, old[k].name);

		if (!t || !t->has_range)
			continue;
		seen++;
		if (t->lo == old[k].lo && t->hi == old[k].hi)
			continue;
		moved++;
		tm_log(TM_LOG_TRACE, "calibration", "range of '%s' [%.9g, "
		       "%.9g] -> [%.9g, %.9g]", t->name, (double)old[k].lo,
		       (double)old[k].hi, (double)t->lo, (double)t->hi);
	}
	tm_log(TM_LOG_NOTE, "calibration", "recalibrated: %zu of %zu ranges "
	       "moved", moved, seen);
out:
	for (size_t k = 0; k < n_old; k++)
		free(old[k].name);
	free(old);
	return st;
}

void
tm_run_summary_fini(tm_run_summary *sum)
{
	if (sum) {
		tm_priv_strv_fini(&sum->files);
		tm_priv_verify_report_fini(&sum->verify);
	}
}

/* The frontend's model, finalized (shapes checked); errors located at
 * the model section. */
static tm_status
load_model(const tm_pipeline *pl, tm_model *m, tm_error *err)
{
	const tm_frontend_ops *fe = pl->frontend.plugin->desc->ops;
	tm_status st;

	m->source = tm_priv_strdup(pl->file, err);
	st = m->source ? fe->load(pl->frontend.params, m, err) : TM_ERR_NOMEM;
	if (!st)
		st = tm_model_finalize(m, err);
	if (st)
		locate(pl, &pl->frontend, err);
	return st;
}

tm_status
tm_pipeline_load_model(const tm_pipeline *pl, tm_model **out, tm_error *err)
{
	tm_model *m = tm_model_new();
	tm_status st;

	*out = NULL;
	if (!m)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	st = load_model(pl, m, err);
	if (st) {
		tm_model_free(m);
		return st;
	}
	*out = m;
	return TM_OK;
}

/* The quantize pass with the pipeline's weight granularity. */
static tm_status
quantize(const tm_pipeline *pl, tm_model *m, tm_stage_hook hook, void *user,
	 tm_run_summary *sum, tm_error *err)
{
	double t0 = tm_priv_now();
	unsigned char *pc = calloc(m->n_nodes + 1, 1);
	tm_status st;

	st = pc ? tm_priv_pipeline_per_channel(pl, m, pc, err)
		: tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	if (!st)
		st = tm_priv_quantize(m, pc, err);
	free(pc);
	if (st)
		return st;
	/* What a transform added for the quantize pass only is in the int8
	 * model now; the float model is the reference again (for verify,
	 * for emitters that print floats). */
	if (tm_priv_qdelta_restore(m))
		tm_log(TM_LOG_TRACE, "quantize", "quantize-only corrections "
		       "undone in the float model");
	stage_done(hook, user, sum, "quantize", t0);
	return TM_OK;
}

tm_status
tm_pipeline_run(const tm_pipeline *pl, tm_stage_hook hook, void *user,
	    tm_run_summary *sum, tm_model **model_out, tm_error *err)
{
	double start = tm_priv_now(), t0;
	tm_model *m = tm_model_new();
	tm_outputs *outs = NULL;
	tm_calib_stats cs;
	size_t split;
	tm_status st;

	memset(sum, 0, sizeof *sum);
	if (model_out)
		*model_out = NULL;
	if (!m)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");

	t0 = tm_priv_now();
	st = load_model(pl, m, err);
	if (st)
		goto out;
	stage_done(hook, user, sum, pl->frontend.label, t0);

	/* Transforms up to the first that needs data rewrite the float
	 * model before calibration; that one and those after it run on the
	 * calibrated model (tmpipe-pipeline(5), "Order rules"). */
	split = tm_priv_transforms_split(pl);
	for (size_t i = 0; i < split; i++) {
		t0 = tm_priv_now();
		st = run_transform(pl, &pl->transforms[i], m, NULL, err);
		if (st)
			goto out;
		stage_done(hook, user, sum, pl->transforms[i].label, t0);
	}

	if (pl->has_calibration) {
		const char *stale = NULL;

		t0 = tm_priv_now();
		st = tm_priv_calibrate(m, pl, &cs, err);
		if (st)
			goto out;
		sum->tensors_observed = cs.observed;
		sum->tensors_fixed = cs.fixed;
		sum->samples = cs.samples;
		stage_done(hook, user, sum, "calibration", t0);

		/* Ranges observed before a transform that did not keep them
		 * are stale: the model as it is now is observed again before
		 * the next transform that reads data (it may read ranges),
		 * and before quantizing. */
		for (size_t i = split; i <= pl->n_transforms; i++) {
			const tm_stage *s = i < pl->n_transforms
						    ? &pl->transforms[i]
						    : NULL;
			unsigned preserved = TM_PRESERVE_NONE;

			if (stale && (!s || (tm_priv_transform_needs(s) &
					     TM_TRANSFORM_NEEDS_DATA))) {
				t0 = tm_priv_now();
				st = recalibrate(m, pl, stale, &cs, sum, err);
				if (st)
					goto out;
				stale = NULL;
				stage_done(hook, user, sum, "recalibration",
					   t0);
			}
			if (!s)
				break;
			t0 = tm_priv_now();
			st = run_transform(pl, s, m, &preserved, err);
			if (st)
				goto out;
			if (!(preserved & TM_PRESERVE_RANGES))
				stale = s->plugin->desc->name;
			stage_done(hook, user, sum, s->label, t0);
		}

		st = quantize(pl, m, hook, user, sum, err);
		if (st)
			goto out;
	} else if (tm_priv_pipeline_given_quant(pl) &&
		   (pl->has_quantize || pl->has_verify || pl->n_emitters)) {
		/* A model that carries its quantization (QDQ): every range
		 * must be given; quantize names the first that is not. */
		st = quantize(pl, m, hook, user, sum, err);
		if (st)
			goto out;
	}

	/* Before the emitters: a model that fails verification writes
	 * nothing. */
	if (pl->has_verify) {
		t0 = tm_priv_now();
		st = tm_priv_verify(m, pl, &sum->verify, err);
		if (st) {
			if (err && !err->line) {
				/* verify's own messages name it already
				 * (they lack a line when the key came from
				 * --set). */
				if (strncmp(err->msg, "verify", 6) != 0)
					tm_error_prefix(err, "verify");
				snprintf(err->file, sizeof err->file, "%s",
					 pl->verify_file ? pl->verify_file
							 : pl->file);
				err->line = pl->verify_line;
				err->col = pl->verify_col;
			}
			goto out;
		}
		stage_done(hook, user, sum, "verify", t0);
	}

	outs = tm_outputs_new();
	if (!outs) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < pl->n_emitters; i++) {
		const tm_stage *s = &pl->emitters[i];
		const tm_emitter_ops *ops = s->plugin->desc->ops;

		t0 = tm_priv_now();
		st = ops->emit(m, s->params, outs, err);
		if (st) {
			locate(pl, s, err);
			goto out;
		}
		stage_done(hook, user, sum, s->label, t0);
	}
	st = tm_outputs_commit(outs, err);
out:
	sum->files_written = tm_outputs_committed(outs);
	for (size_t i = 0; i < sum->files_written; i++)
		if (tm_priv_strv_push(&sum->files, tm_outputs_path(outs, i),
				      NULL))
			break;
	tm_outputs_free(outs);
	sum->seconds = tm_priv_now() - start;
	if (st || !model_out)
		tm_model_free(m);
	else
		*model_out = m;
	return st;
}
