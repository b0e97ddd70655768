/* libtmrt — checks and rounding shared by the kernels. Private, not
 * installed; every function is static inline, so the library exports
 * nothing new and no kernel depends on another's object file.
 * Freestanding: integers only, no libc.
 */
#ifndef TMRT_PRIV_H
#define TMRT_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

/* The requantizer that maps q - zp to itself: 2^30 * 2^-31 * 2^1. */
#define TMRT_PRIV_ID_MULT 1073741824
#define TMRT_PRIV_ID_SHIFT (-1)

/* The fixed-point requantization (gemmlowp, as used by TFLite and
 * CMSIS-NN) behind tmrt_srdhm, tmrt_rdbpot and tmrt_requantize
 * (requant.c): here, inline, so that a kernel that requantizes every
 * output (a convolution: one call per output channel and pixel) does not
 * pay a call and the branches on shift that its caller's loop makes
 * predictable; one definition for both, so they agree bit for bit. */

static inline int32_t
tmrt_priv_srdhm(int32_t a, int32_t b)
{
	int64_t ab, nudge;

	/* The one product whose doubled high half does not fit int32. */
	if (a == INT32_MIN && b == INT32_MIN)
		return INT32_MAX;
	ab = (int64_t)a * (int64_t)b;
	/* gemmlowp: nudge by half so that C's truncating division rounds
	 * to nearest. The negative nudge is 1 - 2^30, not -2^30, so ties
	 * go towards +infinity (-0.5 -> 0), exactly as gemmlowp, TFLite
	 * and CMSIS-NN do; matching them bit for bit matters more here
	 * than lround's ties away from zero. */
	nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
	return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static inline int32_t
tmrt_priv_rdbpot(int32_t x, int exponent)
{
	uint32_t mask, rem, thr;
	int32_t floor_q;

	if (exponent <= 0)
		return x;
	/* |x| / 2^32 <= 1/2, equal only for INT32_MIN, a tie that goes
	 * away from zero like every other. */
	if (exponent >= 32)
		return exponent == 32 && x == INT32_MIN ? -1 : 0;
	/* gemmlowp RoundingDivideByPOT. int32_t is two's complement, so
	 * ~x >> e is well defined for negative x where x >> e is only
	 * implementation-defined; both give floor(x / 2^e). */
	mask = ((uint32_t)1 << exponent) - 1;
	rem = (uint32_t)x & mask;
	thr = (mask >> 1) + (x < 0 ? 1u : 0u);
	floor_q = x < 0 ? ~(~x >> exponent) : x >> exponent;
	return floor_q + (rem > thr ? 1 : 0);
}

/* x * 2^left saturated to int32, in int64 so that a real multiplier
 * above 1 (left > 0) cannot overflow. */
static inline int32_t
tmrt_priv_shift_left_sat(int32_t x, int32_t left)
{
	int64_t v;

	if (x == 0 || left <= 0)
		return x;
	if (left > 31)
		return x > 0 ? INT32_MAX : INT32_MIN;
	v = (int64_t)x * ((int64_t)1 << left);
	if (v > INT32_MAX)
		return INT32_MAX;
	if (v < INT32_MIN)
		return INT32_MIN;
	return (int32_t)v;
}

/* tmrt_requantize with its shift already split: left = min(-shift, 32)
 * for shift < 0, else 0; right = min(shift, 63) for shift > 0, else 0.
 * A kernel that requantizes many outputs with one shift splits it once. */
static inline int32_t
tmrt_priv_requantize_lr(int32_t acc, int32_t multiplier, int32_t left,
			int32_t right, int32_t zp_out, int32_t act_min,
			int32_t act_max)
{
	int64_t y;

	y = tmrt_priv_rdbpot(tmrt_priv_srdhm(tmrt_priv_shift_left_sat(acc,
								      left),
					     multiplier),
			     (int)right);
	/* In int64: an int32 zero point could overflow the sum. */
	y += zp_out;
	if (y < act_min)
		y = act_min;
	if (y > act_max)
		y = act_max;
	return (int32_t)y;
}

static inline int32_t
tmrt_priv_requantize(int32_t acc, int32_t multiplier, int32_t shift,
		     int32_t zp_out, int32_t act_min, int32_t act_max)
{
	int32_t left = 0, right = 0;

	/* shift is "right" here (tmpipe's convention; TFLite's is the
	 * opposite). Avoid negating INT32_MIN: anything past 32 is
	 * saturation anyway. */
	if (shift < 0)
		left = shift < -32 ? 32 : -shift;
	else
		right = shift > 63 ? 63 : shift;
	return tmrt_priv_requantize_lr(acc, multiplier, left, right, zp_out,
				       act_min, act_max);
}

/* One term w * (x - zp) of an int8 dot product. Both factors fit int16
 * (|w| <= 128, |x - zp| <= 255), so the product is taken of two int16
 * values, widened to int32 for the sum (the kernels' bounds on the
 * number of terms keep that exact): the shape compilers recognize as a
 * 16-bit dot product (SSE2 pmaddwd, NEON smlal, Arm's SMLAD), where an
 * int32 x int32 product of the same values is not. */
static inline int32_t
tmrt_priv_dot_term(int8_t w, int8_t x, int32_t zp)
{
	return (int32_t)(int16_t)w * (int32_t)(int16_t)((int32_t)x - zp);
}

/* The same term with x - zp already taken, as an int16 (|x - zp| <=
 * 255): the shape of the convolution's inner loop over a window column
 * that holds x - zp, so that its operands are both int16. */
static inline int32_t
tmrt_priv_dot16(int8_t w, int16_t xz)
{
	return (int32_t)(int16_t)w * (int32_t)xz;
}

/* Elements of an NHWC tensor, or -1 when a dimension is < 1 or the
 * count exceeds INT32_MAX (so every index fits int32 and size_t on a
 * 32-bit target). */
static inline int64_t
tmrt_priv_numel(const tmrt_dims *d)
{
	int64_t n;

	if (d->n < 1 || d->h < 1 || d->w < 1 || d->c < 1)
		return -1;
	n = (int64_t)d->n * d->h;
	if (n > INT32_MAX)
		return -1;
	n *= d->w;
	if (n > INT32_MAX)
		return -1;
	n *= d->c;
	return n > INT32_MAX ? -1 : n;
}

/* One axis of a sliding window (ONNX Conv/Pool, no ceil mode): sizes
 * and strides >= 1, pads >= 0, and out the extent they imply. The padded
 * extent must fit int32, so that no tap position overflows. */
static inline int
tmrt_priv_axis_ok(int32_t in, int32_t kernel, int32_t stride,
		  int32_t dilation, int32_t pad_lo, int32_t pad_hi,
		  int32_t out)
{
	int64_t span;

	if (in < 1 || kernel < 1 || stride < 1 || dilation < 1 ||
	    pad_lo < 0 || pad_hi < 0 || out < 1)
		return 0;
	span = (int64_t)in + pad_lo + pad_hi;
	if (span > INT32_MAX)
		return 0;
	span -= (int64_t)dilation * (kernel - 1) + 1;
	if (span < 0)
		return 0;
	/* In int32: no 64-bit division helper on a 32-bit target. */
	return (int32_t)span / stride + 1 == out;
}

static inline int
tmrt_priv_zp_ok(int32_t zp)
{
	return zp >= -128 && zp <= 127;
}

static inline int
tmrt_priv_act_ok(int32_t act_min, int32_t act_max)
{
	return act_min >= -128 && act_max <= 127 && act_min <= act_max;
}

static inline int
tmrt_priv_is_identity(int32_t multiplier, int32_t shift, int32_t zp_in,
		      int32_t zp_out)
{
	return multiplier == TMRT_PRIV_ID_MULT &&
	       shift == TMRT_PRIV_ID_SHIFT && zp_in == zp_out;
}

/* a / b rounded half away from zero, b > 0 (TFLite's average pool:
 * C division truncates, so the half is added on the side of a's sign). */
static inline int32_t
tmrt_priv_div_round(int32_t a, int32_t b)
{
	return a >= 0 ? (a + b / 2) / b : -((-a + b / 2) / b);
}

/* a * 2^16 / n rounded half away from zero, for |a| <= 255 * n and
 * 1 <= n <= 2^23, in 32-bit arithmetic: a 64-bit division would call a
 * libgcc helper (__aeabi_ldivmod) on a 32-bit target, once per output.
 * With m = |a| = q n + r: m 2^16 / n = q 2^16 + q1 2^8 + r2 / n, where
 * r 2^8 = q1 n + r1 and r2 = r1 2^8; each product stays below 2^31. */
static inline int32_t
tmrt_priv_div_round_q16(int32_t a, int32_t n)
{
	const uint32_t un = (uint32_t)n;
	const uint32_t m = a < 0 ? 0u - (uint32_t)a : (uint32_t)a;
	const uint32_t q = m / un, r1 = (m % un) << 8;
	const uint32_t q1 = r1 / un, r2 = (r1 % un) << 8;
	/* Round half up on the magnitude (n odd has no ties). */
	const uint32_t v = (q << 16) + (q1 << 8) + (r2 + un / 2) / un;

	return a < 0 ? -(int32_t)v : (int32_t)v;
}

/* Saturates an int64 to int32. */
static inline int32_t
tmrt_priv_sat32(int64_t v)
{
	if (v > INT32_MAX)
		return INT32_MAX;
	if (v < INT32_MIN)
		return INT32_MIN;
	return (int32_t)v;
}

/* The average of tmrt_avg_pool2d_s8 and tmrt_global_avg_pool_s8: sum is
 * the sum of (q - input_zp) over the taps inside the input, n the taps
 * counted. */
static inline int8_t
tmrt_priv_average(int32_t sum, int32_t n, int32_t input_zp,
		  int32_t output_zp, int32_t multiplier, int32_t shift,
		  int32_t act_min, int32_t act_max)
{
	int32_t y;

	if (n == 0) {
		/* No tap: the real value 0. */
		y = output_zp;
	} else if (tmrt_priv_is_identity(multiplier, shift, input_zp,
					 output_zp)) {
		/* TFLite: the raw int8 values averaged, padding counted
		 * as input_zp. |sum| <= 255 * n, n <= 2^23: no overflow. */
		y = tmrt_priv_div_round(sum + n * input_zp, n);
	} else {
		/* 16 fraction bits: |sum / n| <= 255, so the result fits
		 * in 24 bits, and the only rounding that matters is the
		 * requantizer's. */
		int32_t avg = tmrt_priv_div_round_q16(sum, n);
		int32_t sh = shift > INT32_MAX - 16 ? INT32_MAX : shift + 16;

		return (int8_t)tmrt_requantize(avg, multiplier, sh, output_zp,
					       act_min, act_max);
	}
	if (y < act_min)
		y = act_min;
	if (y > act_max)
		y = act_max;
	return (int8_t)y;
}

/* The checks convolution and depthwise convolution share: pointers and
 * window arithmetic first (TMRT_ERR_ARG, TMRT_ERR_SHAPE), ... */
static inline tmrt_status
tmrt_priv_conv_check_shape(const tmrt_conv_params *p, const int8_t *in,
			   const int8_t *out)
{
	if (!p || !in || !out || !p->weights || !p->multiplier ||
	    !p->shift)
		return TMRT_ERR_ARG;
	if (tmrt_priv_numel(&p->input) < 0 ||
	    tmrt_priv_numel(&p->output) < 0 || p->output.n != p->input.n)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_axis_ok(p->input.h, p->kernel_h, p->stride_h,
			       p->dilation_h, p->pad_top, p->pad_bottom,
			       p->output.h) ||
	    !tmrt_priv_axis_ok(p->input.w, p->kernel_w, p->stride_w,
			       p->dilation_w, p->pad_left, p->pad_right,
			       p->output.w))
		return TMRT_ERR_SHAPE;
	return TMRT_OK;
}

/* ... then, after each kernel's own shape checks, the quantization
 * (TMRT_ERR_PARAM). */
static inline tmrt_status
tmrt_priv_conv_check_param(const tmrt_conv_params *p)
{
	if (!tmrt_priv_zp_ok(p->input_zp) || !tmrt_priv_zp_ok(p->output_zp))
		return TMRT_ERR_PARAM;
	if (!tmrt_priv_act_ok(p->act_min, p->act_max))
		return TMRT_ERR_PARAM;
	if (p->n_requant != 1 && p->n_requant != p->output.c)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

/* Output channel o's requantization, read from p once for all the
 * pixels a kernel computes with it (the output is int8_t, which may
 * alias anything, so a store to it would otherwise make the compiler
 * read p's fields again for every output). */
typedef struct tmrt_priv_rq {
	int32_t bias, multiplier, left, right, zp, act_min, act_max;
} tmrt_priv_rq;

static inline tmrt_priv_rq
tmrt_priv_conv_rq(const tmrt_conv_params *p, int32_t o)
{
	const int32_t r = p->n_requant == 1 ? 0 : o;
	const int32_t shift = p->shift[r];
	tmrt_priv_rq q;

	q.bias = p->bias ? p->bias[o] : 0;
	q.multiplier = p->multiplier[r];
	/* As tmrt_priv_requantize splits it. */
	q.left = shift < 0 ? (shift < -32 ? 32 : -shift) : 0;
	q.right = shift > 0 ? (shift > 63 ? 63 : shift) : 0;
	q.zp = p->output_zp;
	q.act_min = p->act_min;
	q.act_max = p->act_max;
	return q;
}

/* An output from its sum of w * (x - input_zp): the bias may be
 * anywhere in int32, so it is added in int64 and saturated (as
 * tmrt_fully_connected_s8 does). */
static inline int8_t
tmrt_priv_rq_out(const tmrt_priv_rq *q, int32_t sum)
{
	return (int8_t)tmrt_priv_requantize_lr(
		tmrt_priv_sat32((int64_t)sum + q->bias), q->multiplier,
		q->left, q->right, q->zp, q->act_min, q->act_max);
}

/* Output channel o of a convolution from its sum. */
static inline int8_t
tmrt_priv_conv_out(const tmrt_conv_params *p, int32_t sum, int32_t o)
{
	const tmrt_priv_rq q = tmrt_priv_conv_rq(p, o);

	return tmrt_priv_rq_out(&q, sum);
}

/* The checks of tmrt_max_pool2d_s8 and tmrt_avg_pool2d_s8. */
static inline tmrt_status
tmrt_priv_pool_check(const tmrt_pool_params *p, const int8_t *in,
		     const int8_t *out)
{
	if (!p || !in || !out)
		return TMRT_ERR_ARG;
	if (tmrt_priv_numel(&p->input) < 0 ||
	    tmrt_priv_numel(&p->output) < 0 || p->output.n != p->input.n ||
	    p->output.c != p->input.c)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_axis_ok(p->input.h, p->kernel_h, p->stride_h,
			       p->dilation_h, p->pad_top, p->pad_bottom,
			       p->output.h) ||
	    !tmrt_priv_axis_ok(p->input.w, p->kernel_w, p->stride_w,
			       p->dilation_w, p->pad_left, p->pad_right,
			       p->output.w))
		return TMRT_ERR_SHAPE;
	if ((int64_t)p->kernel_h * p->kernel_w > TMRT_POOL_MAX_WINDOW)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->input_zp) || !tmrt_priv_zp_ok(p->output_zp))
		return TMRT_ERR_PARAM;
	if (!tmrt_priv_act_ok(p->act_min, p->act_max) || p->multiplier < 0)
		return TMRT_ERR_PARAM;
	if (p->count_include_pad != 0 && p->count_include_pad != 1)
		return TMRT_ERR_PARAM;
	return TMRT_OK;
}

/* One output pixel of a pooling kernel, all channels: the window
 * starts at input row ih0, column iw0 (negative in the padding) of the
 * image img, and the result goes to y[0 ... output.c - 1]. */
typedef void tmrt_priv_pool_pixel(const tmrt_pool_params *p,
				  const int8_t *img, int32_t ih0,
				  int32_t iw0, int8_t *y);

/* tmrt_max_pool2d_s8 and tmrt_avg_pool2d_s8: the checks, then pixel
 * for every output pixel, in NHWC order. Inlined into each kernel with
 * its own pixel, so the call is direct once inlined (-O1 and up; at -O0
 * it is an indirect call per pixel, with the same results). */
static inline tmrt_status
tmrt_priv_pool_run(const tmrt_pool_params *p, const int8_t *in,
		   int8_t *out, tmrt_priv_pool_pixel *pixel)
{
	tmrt_status st = tmrt_priv_pool_check(p, in, out);
	size_t img_size;
	int32_t n, oh, ow;

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

#endif
