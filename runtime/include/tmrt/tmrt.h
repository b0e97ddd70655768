/* libtmrt — freestanding int8 inference kernels for microcontrollers.
 *
 * No allocation, no libc, no floating point: every real-valued quantity
 * (scales, multipliers) was turned into integers on the host by tmpipe.
 * Naming and parameter bundles follow TFLite Micro and CMSIS-NN
 * (tmrt_<op>_<dtype>); the fixed-point arithmetic is gemmlowp's.
 */
#ifndef TMRT_TMRT_H
#define TMRT_TMRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define TMRT_API __attribute__((visibility("default")))
#else
#define TMRT_API
#endif

typedef enum tmrt_status {
	TMRT_OK = 0,
	TMRT_ERR_ARG,		/* a required pointer is NULL */
	TMRT_ERR_SHAPE,		/* a dimension is out of range */
	TMRT_ERR_PARAM		/* a zero point, range or count is invalid */
} tmrt_status;

/* gemmlowp SaturatingRoundingDoublingHighMul: a * b / 2^31 rounded to
 * nearest, ties towards +infinity (gemmlowp's nudge: 0.5 -> 1, -0.5 -> 0,
 * -1.5 -> -1); INT32_MIN * INT32_MIN saturates to INT32_MAX. */
TMRT_API int32_t tmrt_srdhm(int32_t a, int32_t b);

/* gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from
 * zero. exponent <= 0 returns x; every larger exponent is defined too
 * (from 32 on the result is 0, except -1 for INT32_MIN at 32). */
TMRT_API int32_t tmrt_rdbpot(int32_t x, int exponent);

/* acc * multiplier * 2^-31 * 2^-shift + zp_out, clamped to
 * [act_min, act_max]. shift > 0 shifts right (rounding), shift < 0
 * left; the left shift is done in int64 and saturates to int32 (not
 * TFLite's int32 shift, which overflows when the real multiplier > 1). */
TMRT_API int32_t tmrt_requantize(int32_t acc, int32_t multiplier,
				 int32_t shift, int32_t zp_out,
				 int32_t act_min, int32_t act_max);

/* Largest in_features for which the int32 accumulator cannot overflow:
 * |w * (x - input_zp)| <= 128 * 255. */
#define TMRT_FC_MAX_IN_FEATURES 65535

typedef struct tmrt_fc_params {
	int32_t in_features, out_features;
	const int8_t *weights;		/* [out_features][in_features], zp 0 */
	const int32_t *bias;		/* [out_features], may be NULL */
	int32_t input_zp, output_zp;	/* input_zp in [-128, 127] */
	const int32_t *multiplier;	/* [n_requant] */
	const int32_t *shift;		/* [n_requant], > 0 = right */
	int32_t n_requant;		/* 1 = per tensor, out_features =
					 * per channel */
	int32_t act_min, act_max;	/* within [-128, 127]; ReLU and
					 * ReLU6 are folded in here */
} tmrt_fc_params;

/* out[o] = requantize(bias[o] + sum_i weights[o][i] * (in[i] - input_zp))
 * for one input vector of in_features values. Returns TMRT_ERR_ARG,
 * TMRT_ERR_SHAPE (in_features or out_features outside
 * [1, TMRT_FC_MAX_IN_FEATURES] / >= 1) or TMRT_ERR_PARAM (input_zp, the
 * activation range or n_requant invalid) without writing out. */
TMRT_API tmrt_status tmrt_fully_connected_s8(const tmrt_fc_params *p,
					     const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif
