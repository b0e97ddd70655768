/* libtmrt — int8 2-D convolution, NHWC, grouped (TFLite int8 spec:
 * symmetric weights, asymmetric activations, int32 bias at s_in * s_w).
 * Any stride, asymmetric padding and dilation. Freestanding: integers
 * only, no libc.
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
	const int32_t W = p->input.w, C = p->input.c;
	const int32_t cg = C / p->groups, og = p->output.c / p->groups;
	const int32_t kw = p->kernel_w, taps = p->kernel_h * kw * cg;
	const int32_t zp = p->input_zp;
	const int dense_rows = p->groups == 1 && p->dilation_w == 1;
	/* The kernel columns that fall inside the image (dilation 1). */
	const int32_t j0 = iw0 < 0 ? -iw0 : 0;
	const int32_t j1 = iw0 + kw > W ? W - iw0 : kw;
	int32_t o, i, j, k;

	for (o = 0; o < p->output.c; o++) {
		const int8_t *wo = p->weights + (size_t)o * (size_t)taps;
		const int32_t c0 = (o / og) * cg;
		int32_t sum = 0;

		for (i = 0; i < p->kernel_h; i++) {
			const int32_t ih = ih0 + i * p->dilation_h;

			/* Padding is q = input_zp: it adds nothing. */
			if (ih < 0 || ih >= p->input.h)
				continue;
			if (dense_rows) {
				/* The window's columns inside the image are
				 * [j0, j1): without groups or dilation their
				 * pixels' channels are one run of bytes, and
				 * so are the weights of that kernel row, so
				 * the dot product is one long loop (which
				 * compilers vectorize) instead of kw short
				 * ones. */
				const int8_t *x = img +
					(size_t)((ih * W + iw0 + j0) * C);
				const int8_t *w = wo +
					(size_t)((i * kw + j0) * cg);
				const int32_t len = (j1 - j0) * C;

				for (k = 0; k < len; k++)
					sum += tmrt_priv_dot_term(w[k], x[k], zp);
				continue;
			}
			for (j = 0; j < kw; j++) {
				const int32_t iw = iw0 + j * p->dilation_w;
				const int8_t *x, *w;

				if (iw < 0 || iw >= W)
					continue;
				x = img + (size_t)((ih * W + iw) * C + c0);
				w = wo + (size_t)((i * kw + j) * cg);
				/* |w * (x - zp)| <= 128 * 255 and at most
				 * TMRT_CONV_MAX_TAPS terms: exact. */
				for (k = 0; k < cg; k++)
					sum += (int32_t)w[k] *
					       ((int32_t)x[k] - zp);
			}
		}
		y[o] = tmrt_priv_conv_out(p, sum, o);
	}
}

tmrt_status
tmrt_conv2d_s8(const tmrt_conv_params *p, const int8_t *in, int8_t *out)
{
	tmrt_status st = tmrt_priv_conv_check_shape(p, in, out);
	int64_t taps;
	size_t img_size;
	int32_t n, oh, ow;

	if (st != TMRT_OK)
		return st;
	if (p->groups < 1 || p->input.c % p->groups != 0 ||
	    p->output.c % p->groups != 0)
		return TMRT_ERR_SHAPE;
	/* The accumulator bound, and a weight array whose every index
	 * fits int32. */
	taps = (int64_t)p->kernel_h * p->kernel_w;
	if (taps > TMRT_CONV_MAX_TAPS)
		return TMRT_ERR_SHAPE;
	taps *= p->input.c / p->groups;
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
