/* libtmrt — fixed-point requantization (gemmlowp, as used by TFLite and
 * CMSIS-NN). Freestanding: integers only, no libc. The arithmetic is
 * in tmrt_priv.h, inline for the kernels that requantize every output.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

int32_t
tmrt_srdhm(int32_t a, int32_t b)
{
	return tmrt_priv_srdhm(a, b);
}

int32_t
tmrt_rdbpot(int32_t x, int exponent)
{
	return tmrt_priv_rdbpot(x, exponent);
}

int32_t
tmrt_requantize(int32_t acc, int32_t multiplier, int32_t shift,
		int32_t zp_out, int32_t act_min, int32_t act_max)
{
	return tmrt_priv_requantize(acc, multiplier, shift, zp_out, act_min,
				    act_max);
}
