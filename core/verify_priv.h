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
 * the tolerance T" (the first failing output in model order).
 *
 * Layout: libtmrt holds an image [C, H, W] as NHWC (1, H, W, C), and a
 * flattened image keeps those HWC bytes; the interpreter holds both in
 * the model's CHW order. The lowering says how each of its inputs and
 * outputs is laid out (tm_priv_layout): inputs are permuted on the way
 * in, outputs and intermediates compared element by element in the
 * model's order.
 *
 * Every tensor: the model is lowered a second time with every arena
 * tensor exposed (TM_PRIV_LOWER_EXPOSE_ALL) and run on the same int8
 * inputs. Its model outputs must equal the plain lowering's byte for
 * byte (else TM_ERR_INTERNAL: the arena plan overwrote something), and
 * each tensor it holds is compared with the interpreter's tensor of the
 * same name (max_abs and sqnr_db as above), in model order: the inputs,
 * then the nodes' outputs. Tensors the lowering does not materialize
 * (a conv output whose ReLU is folded into it) are not listed.
 *
 * Labels (verify.labels): one class per sample, integers in [0, K) for
 * the first model output with K > 1 values; the predicted class is the
 * argmax (first maximum) of the float output and of the int8 output.
 * Accuracies are counts over the samples; the drop is
 * 100 (float_correct - int8_correct) / samples percentage points, and a
 * drop above verify.max_accuracy_drop fails the stage (TM_ERR_NUMERIC at
 * that key).
 *
 * Reference (verify.reference): "float" above is the float model by
 * default. With quantized it is the quantized model emulated in float,
 * built from the model verify gets (after the quantize pass): every
 * model input and every activation the int8 network holds is
 * fake-quantized with its own (scale, zero point), q = clamp(lround(x /
 * s) + zp, -128, 127), x = s (q - zp); the output of a layer whose ReLU
 * or Clip is folded into it (tm_priv_folded_activation) is not held and
 * stays as it is; dense and conv2d weights are their int8 values times
 * their scale (per output channel when so quantized), biases their int32
 * values times s_in s_w; an unfolded BatchNorm multiplies by its
 * dequantized int8 weight and adds its dequantized int32 bias per
 * channel. The error then measures only the integer arithmetic
 * (fixed-point requantization, lookup tables, rounding); messages say
 * "reference" where they say "float". */
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

/* One activation tensor of the lowered model. */
typedef struct tm_verify_tensor {
	char *name;
	int ndim;			/* of one sample */
	int64_t shape[TM_MAX_DIMS];
	double scale;			/* int8 step */
	int32_t zero_point;
	double max_abs;			/* max |int8 - float| */
	double sqnr_db;			/* +inf for no error; -inf when the
					 * float tensor is 0 and the int8
					 * one is not */
} tm_verify_tensor;

typedef struct tm_verify_report {
	int ran;			/* the pipeline had a verify section */
	tm_verify_ref reference;	/* what "float" below is */
	size_t samples;
	int has_tolerance;
	double tolerance;
	int pass;
	size_t arena_bytes;		/* of the lowered model */
	size_t blob_bytes;
	size_t n_outputs;
	tm_verify_output *outputs;	/* in model output order */
	size_t n_tensors;
	tm_verify_tensor *tensors;	/* in model order */

	/* Labels (has_labels: verify.labels was given and read). */
	int has_labels;
	char *labels_path;
	char *labeled_output;		/* the output classified */
	size_t classes;
	size_t float_correct, int8_correct, agree;
	double float_accuracy, int8_accuracy;	/* in [0, 1] */
	double agreement;		/* int8 and float classes equal */
	double accuracy_drop;		/* points: float - int8 */
	int has_max_drop;
	double max_drop;		/* points */
	int accuracy_pass;		/* 1 when no max_drop was given */
} tm_verify_report;

/* Runs pl's verify section on m (quantized). The report is filled as far
 * as the stage got, whether it succeeds or not; release it with
 * tm_priv_verify_report_fini. */
TM_PRIV tm_status tm_priv_verify(const tm_model *m, const tm_pipeline *pl,
				 tm_verify_report *rep, tm_error *err);
TM_PRIV void tm_priv_verify_report_fini(tm_verify_report *rep);

/* 10 log10(sum_f2 / sum_e2): +inf when sum_e2 is 0, -inf when only
 * sum_f2 is. */
TM_PRIV double tm_priv_sqnr_db(double sum_f2, double sum_e2);

#endif
