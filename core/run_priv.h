/* tmpipe — the pass manager: runs a validated pipeline's stages in order.
 *
 *	frontend → finalize (shapes) → transforms → calibration
 *	→ transforms that need data (and those listed after them)
 *	→ recalibration when one of them did not preserve the ranges
 *	  (before the next one that needs data, and before quantizing)
 *	→ quantize → verify → emitters → commit outputs
 *
 * Timing is a core hook (as in LLVM's pass manager): the caller gets a
 * callback per stage. Outputs appear only when every stage succeeded. */
#ifndef TMPIPE_RUN_PRIV_H
#define TMPIPE_RUN_PRIV_H

#include "calib_priv.h"
#include "pipeline_priv.h"
#include "verify_priv.h"

typedef struct tm_run_summary {
	size_t stages;			/* stages run */
	size_t tensors_observed;
	size_t tensors_fixed;
	size_t samples;
	size_t files_written;
	tm_strv files;			/* the files in place, even after a
					 * failure that came too late to undo */
	double seconds;
	tm_verify_report verify;	/* verify.ran: the pipeline had a
					 * verify section (filled as far as
					 * it got, also on failure) */
	size_t recalibrations;		/* calibrations again because a
					 * transform after calibration did
					 * not preserve the ranges */
} tm_run_summary;

TM_API void tm_run_summary_fini(tm_run_summary *sum);

typedef void (*tm_stage_hook)(void *user, const char *stage, double secs);

/* Only pl's frontend: the model as loaded and finalized, before any
 * transform (tmpipe inspect). The caller frees *out with tm_model_free;
 * NULL on error. */
TM_API tm_status tm_pipeline_load_model(const tm_pipeline *pl, tm_model **out,
					tm_error *err);

/* Runs pl; sum is filled (release it with tm_run_summary_fini) whether
 * the run succeeds or not. When model_out is not NULL it receives the quantized model
 * (the caller frees it with tm_model_free). */
TM_API tm_status tm_pipeline_run(const tm_pipeline *pl, tm_stage_hook hook,
			      void *user, tm_run_summary *sum,
			      tm_model **model_out, tm_error *err);

#endif
