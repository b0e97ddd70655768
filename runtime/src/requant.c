/* libtmrt — fixed-point requantization (gemmlowp, as used by TFLite and
 * CMSIS-NN). Freestanding: integers only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

int32_t
tmrt_srdhm(int32_t a, int32_t b)
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

int32_t
tmrt_rdbpot(int32_t x, int exponent)
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
static int32_t
shift_left_sat(int32_t x, int32_t left)
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

int32_t
tmrt_requantize(int32_t acc, int32_t multiplier, int32_t shift,
		int32_t zp_out, int32_t act_min, int32_t act_max)
{
	int32_t left = 0, right = 0;
	int64_t y;

	/* shift is "right" here (tmpipe's convention; TFLite's is the
	 * opposite). Avoid negating INT32_MIN: anything past 32 is
	 * saturation anyway. */
	if (shift < 0)
		left = shift < -32 ? 32 : -shift;
	else
		right = shift;
	y = tmrt_rdbpot(tmrt_srdhm(shift_left_sat(acc, left), multiplier),
			right > 63 ? 63 : (int)right);
	/* In int64: an int32 zero point could overflow the sum. */
	y += zp_out;
	if (y < act_min)
		y = act_min;
	if (y > act_max)
		y = act_max;
	return (int32_t)y;
}
