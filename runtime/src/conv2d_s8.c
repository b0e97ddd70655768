/* libtmrt — int8 2-D convolution, NHWC, grouped (TFLite int8 spec:
 * symmetric weights, asymmetric activations, int32 bias at s_in * s_w).
 * Any stride, asymmetric padding and dilation. Freestanding: integers
 * only, no libc.
 *
 * Without groups or dilation, a row of output pixels goes eight pixels
 * a pass when a window has at most 32 taps (pixel_oct), then two a pass
 * while two windows fit a 512-byte buffer (pixel_pair), then one
 * (pixel_dense); with groups or dilation, one pixel (pixel). All sum
 * the same integer terms w * (x - input_zp), exactly (int32, within
 * TMRT_CONV_MAX_TAPS), so the order does not change the result.
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

/* Several output pixels share each weight load: their windows' values
 * x - input_zp (0 in the padding) are first copied, as int16, to a
 * buffer on the stack. Its size is bounded: the runtime takes no
 * scratch memory and targets may have a stack of a few KiB, so
 * TMRT_CONV_COL int16 (512 bytes) at most; windows that do not fit take
 * pixel_dense, one pixel at a time. The buffer and the vectorized loops
 * over it make tmrt_conv2d_s8's deepest stack about 1.2 KiB with gcc
 * -O2 (1.8 KiB with clang, whose unrolled loops spill more), against
 * about 0.3 KiB for pixel_dense alone: a target whose stack cannot take
 * that builds libtmrt with -DTMRT_CONV_COL=0, which keeps every
 * convolution on pixel_dense (the same results, bit for bit; slower).
 * Any other value is a buffer of that many int16, at least 16. */
#ifndef TMRT_CONV_COL
#define TMRT_CONV_COL 256
#endif
#if TMRT_CONV_COL != 0 && TMRT_CONV_COL < 16
#error "TMRT_CONV_COL: 0 (no window buffer) or at least 16"
#endif

#if TMRT_CONV_COL > 0
/* Where the two windows are in the buffer: rows runs of len values,
 * pitch apart, from col (the left pixel) and col + off1 (the right);
 * pitch 0 when each window is one run (rows 1), in which case the
 * windows are gathered one after the other. */
typedef struct conv_pair {
	int32_t rows, len, pitch, off1;
} conv_pair;

/* kernel_h rows of ncols input pixels from (ih0, iw0), all channels,
 * as x - zp (0 outside the image), to col[0], col[step], col[2 step],
 * ...: per row, the pixels left of the image, those inside (one run of
 * bytes), those right of it. The stride is a variable, so a compiler
 * cannot turn the zero stores into a memset call (freestanding: no
 * libc). */
static void
gather(const tmrt_conv_params *p, const int8_t *img, int32_t ih0,
       int32_t iw0, int32_t ncols, int16_t *col, int32_t step)
{
	const int32_t W = p->input.w, C = p->input.c, zp = p->input_zp;
	const int32_t n = ncols * C;
	const int32_t j0 = iw0 < 0 ? (-iw0 < ncols ? -iw0 : ncols) : 0;
	const int32_t j1 = iw0 + ncols > W ? (W - iw0 > j0 ? W - iw0 : j0)
					   : ncols;
	int32_t i, k, t;

	for (i = 0; i < p->kernel_h; i++, col += n * step) {
		const int32_t ih = ih0 + i;
		const int8_t *x;

		if (ih < 0 || ih >= p->input.h) {
			for (k = 0; k < n; k++)
				col[k * step] = 0;
			continue;
		}
		for (k = 0; k < j0 * C; k++)
			col[k * step] = 0;
		if (j1 > j0) {
			/* The window's first pixel inside the image. */
			x = img + (size_t)((ih * W + iw0 + j0) * C);
			for (t = 0; k < j1 * C; k++, t++)
				col[k * step] = (int16_t)((int32_t)x[t] - zp);
		}
		for (; k < n; k++)
			col[k * step] = 0;
	}
}

/* How the two windows of output pixels (oh, ow) and (oh, ow + 1) are
 * laid out, or 0 when they do not fit TMRT_CONV_COL. Each whole window
 * contiguous when two fit (one dot product of kh kw C terms per output
 * channel: the first layer of an image net, C = 3, has 27), else one
 * strip of kernel_h rows of the stride_w + kernel_w input pixels the
 * two windows span (their rows kw C apart are kw C long). */
static int
pair_layout(const tmrt_conv_params *p, conv_pair *l)
{
	const int32_t C = p->input.c, kw = p->kernel_w;
	const int64_t taps = (int64_t)p->kernel_h * kw * C;
	const int64_t strip = (int64_t)p->kernel_h * (p->stride_w + kw) * C;

	if (2 * taps <= TMRT_CONV_COL) {
		l->rows = 1;
		l->len = (int32_t)taps;
		l->pitch = 0;
		l->off1 = (int32_t)taps;
		return 1;
	}
	if (strip <= TMRT_CONV_COL) {
		l->rows = p->kernel_h;
		l->len = kw * C;
		l->pitch = (p->stride_w + kw) * C;
		l->off1 = p->stride_w * C;
		return 1;
	}
	return 0;
}

/* Output channel o of the pixel pair at y from its two sums. */
static inline void
pair_out(const tmrt_conv_params *p, int32_t o, int32_t sa, int32_t sb,
	 int8_t *y)
{
	const tmrt_priv_rq q = tmrt_priv_conv_rq(p, o);

	y[o] = tmrt_priv_rq_out(&q, sa);
	y[p->output.c + o] = tmrt_priv_rq_out(&q, sb);
}

/* Output pixels (oh, ow) and (oh, ow + 1), every output channel, to y
 * (2 output.c bytes): four output channels a pass, eight sums; each
 * weight is loaded once for both pixels and each window value once for
 * four channels. */
static void
pixel_pair(const tmrt_conv_params *p, const conv_pair *l, const int8_t *img,
	   int32_t ih0, int32_t iw0, int16_t *col, int8_t *y)
{
	const int32_t taps = p->kernel_h * p->kernel_w * p->input.c;
	const int32_t O = p->output.c;
	const int16_t *a = col, *b = col + l->off1;
	int32_t o = 0, r, k;

	if (l->pitch == 0) {
		gather(p, img, ih0, iw0, p->kernel_w, col, 1);
		gather(p, img, ih0, iw0 + p->stride_w, p->kernel_w,
		       col + taps, 1);
	} else {
		gather(p, img, ih0, iw0, p->stride_w + p->kernel_w, col, 1);
	}
	for (; o + 4 <= O; o += 4) {
		const int8_t *wo = p->weights + (size_t)o * (size_t)taps;
		int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
		int32_t b0 = 0, b1 = 0, b2 = 0, b3 = 0;

		for (r = 0; r < l->rows; r++) {
			const int8_t *w = wo + (size_t)(r * l->len);
			const int16_t *xa = a + r * l->pitch;
			const int16_t *xb = b + r * l->pitch;

			for (k = 0; k < l->len; k++) {
				const int16_t va = xa[k], vb = xb[k];

				a0 += tmrt_priv_dot16(w[k], va);
				b0 += tmrt_priv_dot16(w[k], vb);
				a1 += tmrt_priv_dot16(w[taps + k], va);
				b1 += tmrt_priv_dot16(w[taps + k], vb);
				a2 += tmrt_priv_dot16(w[2 * taps + k], va);
				b2 += tmrt_priv_dot16(w[2 * taps + k], vb);
				a3 += tmrt_priv_dot16(w[3 * taps + k], va);
				b3 += tmrt_priv_dot16(w[3 * taps + k], vb);
			}
		}
		pair_out(p, o, a0, b0, y);
		pair_out(p, o + 1, a1, b1, y);
		pair_out(p, o + 2, a2, b2, y);
		pair_out(p, o + 3, a3, b3, y);
	}
	for (; o < O; o++) {
		const int8_t *wo = p->weights + (size_t)o * (size_t)taps;
		int32_t sa = 0, sb = 0;

		for (r = 0; r < l->rows; r++) {
			const int8_t *w = wo + (size_t)(r * l->len);
			const int16_t *xa = a + r * l->pitch;
			const int16_t *xb = b + r * l->pitch;

			for (k = 0; k < l->len; k++) {
				sa += tmrt_priv_dot16(w[k], xa[k]);
				sb += tmrt_priv_dot16(w[k], xb[k]);
			}
		}
		pair_out(p, o, sa, sb, y);
	}
}

/* Small windows (at most TMRT_CONV_OCT_TAPS taps, such as the first
 * layer of an image net: 3 x 3 x 3 = 27) make short dot products, most
 * of which would fall in the scalar tail of a vectorized loop over the
 * taps. So TMRT_CONV_OCT output pixels of a row go together instead,
 * with the pixels as the vector: col[k * 8 + q] is tap k of pixel q,
 * and each output channel is taps steps of eight products of one weight
 * by eight window values. */
#define TMRT_CONV_OCT 8
#define TMRT_CONV_OCT_TAPS (TMRT_CONV_COL / TMRT_CONV_OCT)

/* Output pixels (oh, ow) ... (oh, ow + 7), every output channel, to y
 * (8 output.c bytes); iw0 is the first pixel's window column. */
static void
pixel_oct(const tmrt_conv_params *p, const int8_t *img, int32_t ih0,
	  int32_t iw0, int16_t *col, int8_t *y)
{
	const int32_t taps = p->kernel_h * p->kernel_w * p->input.c;
	const int32_t O = p->output.c;
	int32_t o, k, q;

	for (q = 0; q < TMRT_CONV_OCT; q++)
		gather(p, img, ih0, iw0 + q * p->stride_w, p->kernel_w,
		       col + q, TMRT_CONV_OCT);
	for (o = 0; o < O; o++) {
		const int8_t *w = p->weights + (size_t)o * (size_t)taps;
		const tmrt_priv_rq rq = tmrt_priv_conv_rq(p, o);
		int32_t s[TMRT_CONV_OCT] = { 0 };

		for (k = 0; k < taps; k++) {
			const int16_t *x = col + k * TMRT_CONV_OCT;

			for (q = 0; q < TMRT_CONV_OCT; q++)
				s[q] += tmrt_priv_dot16(w[k], x[q]);
		}
		for (q = 0; q < TMRT_CONV_OCT; q++)
			y[q * O + o] = tmrt_priv_rq_out(&rq, s[q]);
	}
}

#endif /* TMRT_CONV_COL > 0 */

/* One output row oh of a convolution without groups or dilation: eight
 * pixels a pass for small windows, then pairs while two windows fit the
 * buffer, the rest (an odd pixel, or windows too large) one at a time. */
static void
row_dense(const tmrt_conv_params *p, const int8_t *img, int32_t oh,
	  int8_t *y)
{
	const int32_t ih0 = oh * p->stride_h - p->pad_top;
	int32_t ow = 0;
#if TMRT_CONV_COL > 0
	/* The one window buffer of both paths (one, even where a compiler
	 * inlines both into one frame). */
	int16_t col[TMRT_CONV_COL];
	conv_pair l;

	if (p->kernel_h * p->kernel_w * p->input.c <= TMRT_CONV_OCT_TAPS) {
		for (; ow + TMRT_CONV_OCT <= p->output.w;
		     ow += TMRT_CONV_OCT) {
			pixel_oct(p, img, ih0, ow * p->stride_w - p->pad_left,
				  col, y);
			y += TMRT_CONV_OCT * p->output.c;
		}
	}
	if (pair_layout(p, &l)) {
		for (; ow + 2 <= p->output.w; ow += 2) {
			pixel_pair(p, &l, img, ih0,
				   ow * p->stride_w - p->pad_left, col, y);
			y += 2 * p->output.c;
		}
	}
#endif
	for (; ow < p->output.w; ow++) {
		pixel_dense(p, img, ih0, ow * p->stride_w - p->pad_left, y);
		y += p->output.c;
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
			if (dense) {
				row_dense(p, img, oh, out);
				out += (size_t)p->output.w *
				       (size_t)p->output.c;
				continue;
			}
			for (ow = 0; ow < p->output.w; ow++) {
				const int32_t ih0 = oh * p->stride_h -
						    p->pad_top;
				const int32_t iw0 = ow * p->stride_w -
						    p->pad_left;

				pixel(p, img, ih0, iw0, out);
				out += p->output.c;
			}
		}
	}
	return TMRT_OK;
}
