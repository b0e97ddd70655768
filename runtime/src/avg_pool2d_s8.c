/* libtmrt — int8 average pooling, NHWC, any window, stride, asymmetric
 * padding and dilation, padding counted or not (ONNX AveragePool
 * count_include_pad, no ceil mode); TFLite's rounding when input and
 * output share their quantization (tmrt.h). Freestanding: integers
 * only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

/* Taps of one axis of the window starting at x0 that lie in [lo, hi). */
static int32_t
taps_in(int32_t x0, int32_t kernel, int32_t dilation, int32_t lo,
	int32_t hi)
{
	int32_t i, n = 0;

	for (i = 0; i < kernel; i++) {
		const int32_t x = x0 + i * dilation;

		n += x >= lo && x < hi;
	}
	return n;
}

/* One output pixel, all channels. */
static void
pixel(const tmrt_pool_params *p, const int8_t *img, int32_t ih0,
      int32_t iw0, int8_t *y)
{
	const int32_t H = p->input.h, W = p->input.w, C = p->input.c;
	int32_t i, j, c, count;

	/* ONNX: with count_include_pad the padding is a real 0 that
	 * counts, so the divisor is the taps inside the padded input;
	 * without it, those inside the input. */
	if (p->count_include_pad)
		count = taps_in(ih0, p->kernel_h, p->dilation_h, -p->pad_top,
				H + p->pad_bottom) *
			taps_in(iw0, p->kernel_w, p->dilation_w, -p->pad_left,
				W + p->pad_right);
	else
		count = taps_in(ih0, p->kernel_h, p->dilation_h, 0, H) *
			taps_in(iw0, p->kernel_w, p->dilation_w, 0, W);

	for (c = 0; c < C; c++) {
		int32_t sum = 0;

		for (i = 0; i < p->kernel_h; i++) {
			const int32_t ih = ih0 + i * p->dilation_h;

			if (ih < 0 || ih >= H)
				continue;
			for (j = 0; j < p->kernel_w; j++) {
				const int32_t iw = iw0 + j * p->dilation_w;

				if (iw < 0 || iw >= W)
					continue;
				/* At most 255 * TMRT_POOL_MAX_WINDOW. */
				sum += (int32_t)img[(size_t)((ih * W + iw) * C +
							     c)] -
				       p->input_zp;
			}
		}
		y[c] = tmrt_priv_average(sum, count, p->input_zp,
					 p->output_zp, p->multiplier,
					 p->shift, p->act_min, p->act_max);
	}
}

tmrt_status
tmrt_avg_pool2d_s8(const tmrt_pool_params *p, const int8_t *in,
		   int8_t *out)
{
	return tmrt_priv_pool_run(p, in, out, pixel);
}
