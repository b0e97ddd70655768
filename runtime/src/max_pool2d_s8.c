/* libtmrt — int8 max pooling, NHWC, any window, stride, asymmetric
 * padding and dilation (ONNX MaxPool, no ceil mode). Freestanding:
 * integers only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

/* One output pixel, all channels: the output row itself holds the
 * running maxima (no scratch), then is requantized in place. */
static void
pixel(const tmrt_pool_params *p, const int8_t *img, int32_t ih0,
      int32_t iw0, int8_t *y)
{
	const int32_t W = p->input.w, C = p->input.c;
	int32_t i, j, c, seen = 0;

	for (i = 0; i < p->kernel_h; i++) {
		const int32_t ih = ih0 + i * p->dilation_h;

		/* ONNX pads with -inf: padding never wins. */
		if (ih < 0 || ih >= p->input.h)
			continue;
		for (j = 0; j < p->kernel_w; j++) {
			const int32_t iw = iw0 + j * p->dilation_w;
			const int8_t *x;

			if (iw < 0 || iw >= W)
				continue;
			x = img + (size_t)((ih * W + iw) * C);
			if (!seen) {
				for (c = 0; c < C; c++)
					y[c] = x[c];
				seen = 1;
				continue;
			}
			for (c = 0; c < C; c++)
				if (x[c] > y[c])
					y[c] = x[c];
		}
	}
	if (!seen) {
		/* Every tap in the padding: the max is -inf, whose
		 * quantized value is the lowest the clamp allows. */
		for (c = 0; c < C; c++)
			y[c] = (int8_t)p->act_min;
		return;
	}
	if (tmrt_priv_is_identity(p->multiplier, p->shift, p->input_zp,
				  p->output_zp)) {
		for (c = 0; c < C; c++) {
			if (y[c] < p->act_min)
				y[c] = (int8_t)p->act_min;
			else if (y[c] > p->act_max)
				y[c] = (int8_t)p->act_max;
		}
		return;
	}
	/* Requantization is monotone (multiplier >= 0): the max of the
	 * requantized values is the requantized max. */
	for (c = 0; c < C; c++)
		y[c] = (int8_t)tmrt_requantize((int32_t)y[c] - p->input_zp,
					       p->multiplier, p->shift,
					       p->output_zp, p->act_min,
					       p->act_max);
}

tmrt_status
tmrt_max_pool2d_s8(const tmrt_pool_params *p, const int8_t *in,
		   int8_t *out)
{
	return tmrt_priv_pool_run(p, in, out, pixel);
}
