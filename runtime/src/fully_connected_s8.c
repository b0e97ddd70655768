/* libtmrt — int8 fully connected layer (TFLite int8 spec: symmetric
 * weights, asymmetric activations, int32 bias at s_in * s_w).
 * Freestanding: integers only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

tmrt_status
tmrt_fully_connected_s8(const tmrt_fc_params *p, const int8_t *in,
			int8_t *out)
{
	int32_t o, i;

	if (!p || !in || !out || !p->weights || !p->multiplier ||
	    !p->shift)
		return TMRT_ERR_ARG;
	if (p->in_features < 1 || p->in_features > TMRT_FC_MAX_IN_FEATURES ||
	    p->out_features < 1)
		return TMRT_ERR_SHAPE;
	/* These bounds are what keep the int32 accumulator exact. */
	if (p->input_zp < -128 || p->input_zp > 127)
		return TMRT_ERR_PARAM;
	if (p->act_min < -128 || p->act_max > 127 || p->act_min > p->act_max)
		return TMRT_ERR_PARAM;
	if (p->n_requant != 1 && p->n_requant != p->out_features)
		return TMRT_ERR_PARAM;

	for (o = 0; o < p->out_features; o++) {
		const int8_t *w =
			p->weights + (size_t)o * (size_t)p->in_features;
		int32_t r = p->n_requant == 1 ? 0 : o;
		int32_t sum = 0;
		int64_t acc;

		/* |w * (x - zp)| <= 128 * 255, so in_features <= 65535
		 * terms stay below 2^31. */
		for (i = 0; i < p->in_features; i++)
			sum += tmrt_priv_dot_term(w[i], in[i], p->input_zp);
		/* The bias may be anywhere in int32: add it in int64 and
		 * saturate rather than overflow. */
		acc = (int64_t)sum + (p->bias ? p->bias[o] : 0);
		if (acc > INT32_MAX)
			acc = INT32_MAX;
		if (acc < INT32_MIN)
			acc = INT32_MIN;
		out[o] = (int8_t)tmrt_requantize((int32_t)acc, p->multiplier[r],
						 p->shift[r], p->output_zp,
						 p->act_min, p->act_max);
	}
	return TMRT_OK;
}
