/* tmpipe — quantization arithmetic (see QUANT.md in the design notes and
 * the TFLite int8 quantization specification).
 *
 * Rounding is lround's: ties away from zero, everywhere.
 */
#ifndef TMPIPE_QUANT_H
#define TMPIPE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include <tmpipe/error.h>
#include <tmpipe/model.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TM_QMIN (-128)
#define TM_QMAX 127

/* Activation parameters for int8 [-128, 127] from a clipping range:
 * the range is widened to contain 0; an empty range (lo == hi == 0)
 * gives scale 1, zp -128; otherwise scale = (hi - lo) / 255 and
 * zp = clamp(lround(-128 - lo * 255 / (hi - lo)), -128, 127).
 * The zero point is computed from the range, not from the rounded
 * scale, so it is exact: a symmetric range (-t, t) always gives
 * lround(-0.5) = -1. NaN/Inf or lo > hi is an error. */
TM_API tm_status tm_quant_affine(double lo, double hi, double *scale,
				 int32_t *zero_point, tm_error *err);

/* Activation parameters for a range that is symmetric by construction
 * (an observer that says so): scale = max(|lo|, |hi|) / 127 (1 when 0),
 * zero point 0, values on the grid -127..127. Deterministic where the
 * asymmetric formula would give -1 or 0 by accident (QUANT.md). */
TM_API tm_status tm_quant_affine_symmetric(double lo, double hi,
					   double *scale, int32_t *zero_point,
					   tm_error *err);

/* Symmetric weight scale max|w| / 127 (1 when all zero). */
TM_API double tm_quant_weight_scale(const float *w, size_t n);
/* q = clamp(lround(w * 127 / max|w|), -127, 127), computed as w / scale
 * with scale from tm_quant_weight_scale. */
TM_API void tm_quant_weights(const float *w, size_t n, double scale,
			     int8_t *q);
/* The int8 weights the quantize pass makes of w (a dense or conv2d weight
 * [out, ...]), dequantized into out (tm_tensor_numel(w) doubles): the
 * frontend's values and scales when it gave them (quant_given) and no
 * transform changed the weights since, else tm_quant_weights at
 * max|w| / 127 per tensor, or per output channel when per_channel. For
 * transforms that emulate the int8 model (bias_correct). */
TM_API tm_status tm_quant_weights_dequantized(const tm_tensor *w,
					      int per_channel, double *out,
					      tm_error *err);
/* q = lround(b / (s_in * s_w)) saturated to int32. Returns
 * TM_ERR_NUMERIC when a value saturated (the message says which). */
TM_API tm_status tm_quant_bias(const float *b, size_t n, double s_in,
			       double s_w, int32_t *q, tm_error *err);

/* Real multiplier m >= 0 as a Q31 multiplier and a shift (positive =
 * right): m = q * 2^-31 * 2^-shift. m == 0 gives (0, 0); m < 2^-31
 * flushes to (0, 0); m >= 2^31 or NaN is an error. */
TM_API tm_status tm_quantize_multiplier(double m, int32_t *multiplier,
					int32_t *shift, tm_error *err);

#ifdef __cplusplus
}
#endif

#endif
