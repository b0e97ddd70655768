/* tmpipe — the verify stage: the quantized model, lowered and run by
 * libtmrt on held-out samples (pipeline section verify, see
 * tmpipe-pipeline(5)), against the float reference interpreter.
 *
 * Per sample: the float input goes through the interpreter; the same
 * input quantized with the input tensor's (scale, zp) (lround, clamped
 * to [-128, 127]) goes through tmrt_run on the lowered blob (loaded with
 * tmrt_blob_load, as a target would). Each model output is dequantized,
 * scale * (q - zp), and compared with the float output:
 *   max_abs   max |int8 - float| over every value of every sample;
 *   mean_abs  the mean of |int8 - float| over the same;
 *   sqnr_db   10 log10(sum float^2 / sum (int8 - float)^2), +inf when
 *             the error is 0 everywhere;
 *   top1      outputs with more than one value per sample: the fraction
 *             of samples whose argmax (first maximum) agrees; -1 else.
 * With a tolerance, an output whose max_abs exceeds it fails the stage:
 * TM_ERR_NUMERIC "verify: output 'NAME': max |int8 - float| = E exceeds
 * the tolerance T" (the first failing output in model order). */
#ifndef TMPIPE_VERIFY_PRIV_H
#define TMPIPE_VERIFY_PRIV_H

#include <stddef.h>

#include <tmpipe/model.h>

#include "pipeline_priv.h"
#include "util_priv.h"

typedef struct tm_verify_output {
	char *name;
	size_t values;			/* per sample */
	double max_abs, mean_abs;
	double sqnr_db;			/* +inf for no error */
	double top1;			/* in [0, 1]; -1 for one value */
	int pass;			/* 1 when no tolerance was given */
} tm_verify_output;

typedef struct tm_verify_report {
	int ran;			/* the pipeline had a verify section */
	size_t samples;
	int has_tolerance;
	double tolerance;
	int pass;
	size_t arena_bytes;		/* of the lowered model */
	size_t blob_bytes;
	size_t n_outputs;
	tm_verify_output *outputs;	/* in model output order */
} tm_verify_report;

/* Runs pl's verify section on m (quantized). The report is filled as far
 * as the stage got, whether it succeeds or not; release it with
 * tm_priv_verify_report_fini. */
TM_PRIV tm_status tm_priv_verify(const tm_model *m, const tm_pipeline *pl,
				 tm_verify_report *rep, tm_error *err);
TM_PRIV void tm_priv_verify_report_fini(tm_verify_report *rep);

#endif
