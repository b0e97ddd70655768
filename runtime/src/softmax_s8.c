/* libtmrt — int8 softmax in integers (QUANT.md): exponentials from a
 * 256-entry Q30 table of exp(-d * s_in) built at emit time, an int64
 * sum, output scale 1/256. Freestanding: integers only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

#define Q30 ((int32_t)1 << 30)

static tmrt_status
check(const tmrt_softmax_params *p, const int8_t *in, const int8_t *out)
{
	int32_t d;

	if (!p || !in || !out || !p->exp_table)
		return TMRT_ERR_ARG;
	if (p->outer < 1 || p->len < 1 || p->inner < 1)
		return TMRT_ERR_SHAPE;
	if ((int64_t)p->outer * p->len > INT32_MAX ||
	    (int64_t)p->outer * p->len * p->inner > INT32_MAX)
		return TMRT_ERR_SHAPE;
	if (!tmrt_priv_zp_ok(p->output_zp))
		return TMRT_ERR_PARAM;
	/* exp(0) > 0 keeps S > 0; entries of at most 2^30 keep E * 256
	 * and S (<= 2^30 * 2^31) far inside int64. */
	if (p->exp_table[0] < 1)
		return TMRT_ERR_PARAM;
	for (d = 0; d < 256; d++)
		if (p->exp_table[d] < 0 || p->exp_table[d] > Q30)
			return TMRT_ERR_PARAM;
	return TMRT_OK;
}

/* floor(num / den) when the quotient is known to be below 512: nine
 * steps of restoring division. A 64-bit '/' would call a libgcc helper
 * (__aeabi_uldivmod, some hundred cycles) on a 32-bit target; this is
 * compares and subtractions. den << b is tried only while it stays below
 * 2^63; past that it exceeds num (< 2^63) anyway. */
static int32_t
div_small(uint64_t num, uint64_t den)
{
	int32_t q = 0, b;

	for (b = 8; b >= 0; b--) {
		if ((den >> (63 - b)) == 0 && num >= den << b) {
			num -= den << b;
			q |= (int32_t)1 << b;
		}
	}
	return q;
}

/* One row of len values, stride apart. Every value is read (for m and S)
 * before any is written, and the last pass reads each element just
 * before writing it: in and out may be the same buffer. */
static void
row(const tmrt_softmax_params *p, const int8_t *x, int8_t *y,
    size_t stride)
{
	int32_t k, m = -128;
	uint64_t S = 0, half;

	for (k = 0; k < p->len; k++)
		if (x[(size_t)k * stride] > m)
			m = x[(size_t)k * stride];
	/* S >= exp_table[0] >= 1 (the max's own term), at most
	 * 2^30 * INT32_MAX < 2^61. */
	for (k = 0; k < p->len; k++)
		S += (uint64_t)p->exp_table[m - x[(size_t)k * stride]];
	half = S >> 1;
	for (k = 0; k < p->len; k++) {
		const uint64_t E =
			(uint64_t)p->exp_table[m - x[(size_t)k * stride]];
		/* E <= S, so the quotient is at most 256. */
		int32_t v = div_small(E * 256 + half, S) + p->output_zp;

		y[(size_t)k * stride] = (int8_t)(v < -128 ? -128
						 : v > 127 ? 127 : v);
	}
}

tmrt_status
tmrt_softmax_s8(const tmrt_softmax_params *p, const int8_t *in,
		int8_t *out)
{
	tmrt_status st = check(p, in, out);
	int32_t o, i;

	if (st != TMRT_OK)
		return st;
	for (o = 0; o < p->outer; o++) {
		const size_t base = (size_t)o * (size_t)p->len *
				    (size_t)p->inner;

		for (i = 0; i < p->inner; i++)
			row(p, in + base + (size_t)i, out + base + (size_t)i,
			    (size_t)p->inner);
	}
	return TMRT_OK;
}
