/* libtmrt — int8 global average pooling, NHWC (N, H, W, C) ->
 * (N, 1, 1, C); the rounding of tmrt_avg_pool2d_s8 (tmrt.h).
 * Freestanding: integers only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

tmrt_status
tmrt_global_avg_pool_s8(const tmrt_global_pool_params *p, const int8_t *in,
			int8_t *out)
{
	int32_t hw, C, n, c, k;

	if (!p || !in || !out)
		return TMRT_ERR_ARG;
	if (tmrt_priv_numel(&p->input) < 0)
		return TMRT_ERR_SHAPE;
	/* Keeps the sum of (q - input_zp), at most 255 * H * W, in int32. */
	if ((int64_t)p->input.h * p->input.w > TMRT_GLOBAL_POOL_MAX_HW)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->input_zp) || !tmrt_priv_zp_ok(p->output_zp))
		return TMRT_ERR_PARAM;
	if (!tmrt_priv_act_ok(p->act_min, p->act_max) || p->multiplier < 0)
		return TMRT_ERR_PARAM;

	hw = p->input.h * p->input.w;
	C = p->input.c;
	for (n = 0; n < p->input.n; n++) {
		const int8_t *img = in + (size_t)n * (size_t)hw * (size_t)C;

		for (c = 0; c < C; c++) {
			const int8_t *x = img + c;
			int32_t sum = 0;

			for (k = 0; k < hw; k++, x += C)
				sum += (int32_t)*x - p->input_zp;
			*out++ = tmrt_priv_average(sum, hw, p->input_zp,
						   p->output_zp,
						   p->multiplier, p->shift,
						   p->act_min, p->act_max);
		}
	}
	return TMRT_OK;
}
