/* libtmrt — int8 elementwise addition of two tensors with their own
 * quantization, TFLite's int8 ADD (left shift 20, one multiplier per
 * input and one for the output; tmrt.h lists the emit-time math), with
 * a broadcast second operand (per channel in NHWC, scalar, ...).
 * Freestanding: integers only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

/* TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp: the
 * requantizer without zero point or clamp. */
static int32_t
scale(int32_t x, int32_t multiplier, int32_t shift)
{
	return tmrt_requantize(x, multiplier, shift, 0, INT32_MIN,
			       INT32_MAX);
}

tmrt_status
tmrt_add_s8(const tmrt_add_params *p, const int8_t *in1,
	    const int8_t *in2, int8_t *out)
{
	int32_t i, k, lsh;

	if (!p || !in1 || !in2 || !out)
		return TMRT_ERR_ARG;
	if (p->size < 1 || p->in2_size < 1 || p->size % p->in2_size != 0)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->input1_zp) || !tmrt_priv_zp_ok(p->input2_zp) ||
	    !tmrt_priv_zp_ok(p->output_zp))
		return TMRT_ERR_PARAM;
	/* (q - zp) * 2^20 stays below 2^28: room for the sum. */
	if (p->left_shift < 0 || p->left_shift > TMRT_ADD_MAX_LEFT_SHIFT)
		return TMRT_ERR_PARAM;
	if (p->input1_multiplier < 0 || p->input2_multiplier < 0 ||
	    p->output_multiplier < 0)
		return TMRT_ERR_PARAM;
	if (!tmrt_priv_act_ok(p->act_min, p->act_max))
		return TMRT_ERR_PARAM;

	lsh = p->left_shift;
	/* k = i % in2_size without a division per element. Each in2[k] and
	 * in1[i] is read before out[i] is written, so out may be in1 (or
	 * in2 when nothing broadcasts). */
	for (i = 0, k = 0; i < p->size; i++) {
		const int32_t a = scale(((int32_t)in1[i] - p->input1_zp) *
						(1 << lsh),
					p->input1_multiplier,
					p->input1_shift);
		const int32_t b = scale(((int32_t)in2[k] - p->input2_zp) *
						(1 << lsh),
					p->input2_multiplier,
					p->input2_shift);

		/* Each term is below 2^28 for the emitter's multipliers
		 * (<= 0.5); others saturate rather than overflow. */
		out[i] = (int8_t)tmrt_requantize(
			tmrt_priv_sat32((int64_t)a + b), p->output_multiplier,
			p->output_shift, p->output_zp, p->act_min, p->act_max);
		if (++k == p->in2_size)
			k = 0;
	}
	return TMRT_OK;
}
