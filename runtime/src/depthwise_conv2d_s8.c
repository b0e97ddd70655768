/* libtmrt — int8 depthwise 2-D convolution with a channel multiplier,
 * NHWC, weights in TFLite's depthwise layout [kh][kw][C * mult]. Any
 * stride, asymmetric padding and dilation. Freestanding: integers only,
 * no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

/* Every output channel of one output pixel whose window starts at input
 * row ih0, column iw0 (negative in the padding) of the image img. */
static void
pixel(const tmrt_conv_params *p, const int8_t *img, int32_t ih0,
      int32_t iw0, int8_t *y)
{
	const int32_t W = p->input.w, C = p->input.c, O = p->output.c;
	const int32_t mult = O / C, zp = p->input_zp;
	int32_t o, i, j;

	for (o = 0; o < O; o++) {
		/* ONNX group = C: output channel o reads input o / mult. */
		const int32_t c = o / mult;
		int32_t sum = 0;

		for (i = 0; i < p->kernel_h; i++) {
			const int32_t ih = ih0 + i * p->dilation_h;
			const int8_t *xrow, *wrow;

			/* Padding is q = input_zp: it adds nothing. */
			if (ih < 0 || ih >= p->input.h)
				continue;
			xrow = img + (size_t)(ih * W * C + c);
			wrow = p->weights + (size_t)(i * p->kernel_w * O + o);
			for (j = 0; j < p->kernel_w; j++) {
				const int32_t iw = iw0 + j * p->dilation_w;

				if (iw < 0 || iw >= W)
					continue;
				sum += (int32_t)wrow[(size_t)(j * O)] *
				       ((int32_t)xrow[(size_t)(iw * C)] - zp);
			}
		}
		y[o] = tmrt_priv_conv_out(p, sum, o);
	}
}

tmrt_status
tmrt_depthwise_conv2d_s8(const tmrt_conv_params *p, const int8_t *in,
			 int8_t *out)
{
	tmrt_status st = tmrt_priv_conv_check_shape(p, in, out);
	int64_t taps;
	size_t img_size;
	int32_t n, oh, ow;

	if (st != TMRT_OK)
		return st;
	/* One group per input channel, mult >= 1 outputs each. */
	if (p->groups != p->input.c || p->output.c % p->input.c != 0)
		return TMRT_ERR_SHAPE;
	/* The accumulator bound, and a weight array whose every index
	 * fits int32. */
	taps = (int64_t)p->kernel_h * p->kernel_w;
	if (taps > TMRT_CONV_MAX_TAPS || taps * p->output.c > INT32_MAX)
		return TMRT_ERR_SHAPE;
	st = tmrt_priv_conv_check_param(p);
	if (st != TMRT_OK)
		return st;

	img_size = (size_t)p->input.h * (size_t)p->input.w *
		   (size_t)p->input.c;
	for (n = 0; n < p->input.n; n++) {
		const int8_t *img = in + (size_t)n * img_size;

		for (oh = 0; oh < p->output.h; oh++) {
			for (ow = 0; ow < p->output.w; ow++) {
				pixel(p, img, oh * p->stride_h - p->pad_top,
				      ow * p->stride_w - p->pad_left, out);
				out += p->output.c;
			}
		}
	}
	return TMRT_OK;
}
