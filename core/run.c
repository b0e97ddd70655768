/* tmpipe — the pass manager. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/plugin.h>

#include "quantize_priv.h"
#include "run_priv.h"

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

void
tm_run_summary_fini(tm_run_summary *sum)
{
	if (sum) {
		tm_priv_strv_fini(&sum->files);
		tm_priv_verify_report_fini(&sum->verify);
	}
}

tm_status
tm_pipeline_run(const tm_pipeline *pl, tm_stage_hook hook, void *user,
	    tm_run_summary *sum, tm_model **model_out, tm_error *err)
{
	double start = tm_priv_now(), t0;
	tm_model *m = tm_model_new();
	tm_outputs *outs = NULL;
	tm_calib_stats cs;
	tm_status st;

	memset(sum, 0, sizeof *sum);
	if (model_out)
		*model_out = NULL;
	if (!m)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");

	t0 = tm_priv_now();
	{
		const tm_frontend_ops *fe = pl->frontend.plugin->desc->ops;

		m->source = tm_priv_strdup(pl->file, err);
		st = m->source ? fe->load(pl->frontend.params, m, err)
			       : TM_ERR_NOMEM;
		if (!st)
			st = tm_model_finalize(m, err);
		if (st) {
			locate(pl, &pl->frontend, err);
			goto out;
		}
	}
	stage_done(hook, user, sum, pl->frontend.label, t0);

	for (size_t i = 0; i < pl->n_transforms; i++) {
		const tm_stage *s = &pl->transforms[i];
		const tm_transform_ops *ops = s->plugin->desc->ops;
		unsigned preserved = TM_PRESERVE_NONE;

		t0 = tm_priv_now();
		st = ops->run(m, s->params, &preserved, err);
		if (!st)
			st = tm_model_finalize(m, err);
		if (st) {
			locate(pl, s, err);
			goto out;
		}
		/* Transforms run before calibration, so there are no
		 * ranges to invalidate yet. */
		stage_done(hook, user, sum, s->label, t0);
	}

	if (pl->has_calibration) {
		t0 = tm_priv_now();
		st = tm_priv_calibrate(m, pl, &cs, err);
		if (st)
			goto out;
		sum->tensors_observed = cs.observed;
		sum->tensors_fixed = cs.fixed;
		sum->samples = cs.samples;
		stage_done(hook, user, sum, "calibration", t0);

		t0 = tm_priv_now();
		{
			unsigned char *pc = calloc(m->n_nodes + 1, 1);

			st = pc ? tm_priv_pipeline_per_channel(pl, m, pc, err)
				: tm_error_set(err, TM_ERR_NOMEM,
					       "out of memory");
			if (!st)
				st = tm_priv_quantize(m, pc, err);
			free(pc);
		}
		if (st)
			goto out;
		stage_done(hook, user, sum, "quantize", t0);
	}

	/* Before the emitters: a model that fails verification writes
	 * nothing. */
	if (pl->has_verify) {
		t0 = tm_priv_now();
		st = tm_priv_verify(m, pl, &sum->verify, err);
		if (st) {
			if (err && !err->line) {
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
