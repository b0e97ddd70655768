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
 * row ih0, column iw0 (negative in the padding) of the image img, for a
 * convolution without groups or dilation: the window's columns inside
 * the image, [j0, j1), hold their pixels' channels as one run of bytes,
 * and so do the weights of a kernel row, so each kernel row is one dot
 * product of (j1 - j0) C terms. Four output channels go together: each
 * input byte is loaded once for four weights, and the four sums vectorize
 * as one loop. */
static void
pixel_dense(const tmrt_conv_params *p, const int8_t *img, int32_t ih0,
	    int32_t iw0, int8_t *y)
{
	const int32_t W = p->input.w, C = p->input.c, kw = p->kernel_w;
	const int32_t taps = p->kernel_h * kw * C, zp = p->input_zp;
	const int32_t j0 = iw0 < 0 ? -iw0 : 0;
	const int32_t j1 = iw0 + kw > W ? W - iw0 : kw;
	const int32_t len = (j1 - j0) * C;
	/* Padding is q = input_zp: it adds nothing. */
	const int32_t i0 = ih0 < 0 ? -ih0 : 0;
	const int32_t i1 = ih0 + p->kernel_h > p->input.h ? p->input.h - ih0
							   : p->kernel_h;
	int32_t o = 0, i, k;

	for (; o + 4 <= p->output.c; o += 4) {
		const int8_t *wo = p->weights + (size_t)o * (size_t)taps;
		int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;

		for (i = i0; i < i1; i++) {
			const int8_t *x = img +
				(size_t)(((ih0 + i) * W + iw0 + j0) * C);
			const int8_t *w = wo + (size_t)((i * kw + j0) * C);

			for (k = 0; k < len; k++) {
				s0 += tmrt_priv_dot_term(w[k], x[k], zp);
				s1 += tmrt_priv_dot_term(w[taps + k], x[k],
							 zp);
				s2 += tmrt_priv_dot_term(w[2 * taps + k],
							 x[k], zp);
				s3 += tmrt_priv_dot_term(w[3 * taps + k],
							 x[k], zp);
			}
		}
		y[o] = tmrt_priv_conv_out(p, s0, o);
		y[o + 1] = tmrt_priv_conv_out(p, s1, o + 1);
		y[o + 2] = tmrt_priv_conv_out(p, s2, o + 2);
		y[o + 3] = tmrt_priv_conv_out(p, s3, o + 3);
	}
	for (; o < p->output.c; o++) {
		const int8_t *wo = p->weights + (size_t)o * (size_t)taps;
		int32_t sum = 0;

		for (i = i0; i < i1; i++) {
			const int8_t *x = img +
				(size_t)(((ih0 + i) * W + iw0 + j0) * C);
			const int8_t *w = wo + (size_t)((i * kw + j0) * C);

			for (k = 0; k < len; k++)
				sum += tmrt_priv_dot_term(w[k], x[k], zp);
		}
		y[o] = tmrt_priv_conv_out(p, sum, o);
	}
}

/* Every output channel of one output pixel whose window starts at input
 * row ih0, column iw0 (negative in the padding) of the image img: any
 * groups, any dilation. */
static void
pixel(const tmrt_conv_params *p, const int8_t *img, int32_t ih0,
      int32_t iw0, int8_t *y)
{
	const int32_t W = p->input.w, C = p->input.c;
	const int32_t cg = C / p->groups, og = p->output.c / p->groups;
	const int32_t kw = p->kernel_w, taps = p->kernel_h * kw * cg;
	const int32_t zp = p->input_zp;
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
					sum += tmrt_priv_dot_term(w[k], x[k],
								  zp);
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
	int dense;

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
	dense = p->groups == 1 && p->dilation_h == 1 && p->dilation_w == 1;
	for (n = 0; n < p->input.n; n++) {
		const int8_t *img = in + (size_t)n * img_size;

		for (oh = 0; oh < p->output.h; oh++) {
			for (ow = 0; ow < p->output.w; ow++) {
				const int32_t ih0 = oh * p->stride_h -
						    p->pad_top;
				const int32_t iw0 = ow * p->stride_w -
						    p->pad_left;

				if (dense)
					pixel_dense(p, img, ih0, iw0, out);
				else
					pixel(p, img, ih0, iw0, out);
				out += p->output.c;
			}
		}
	}
	return TMRT_OK;
}
