/* libtmrt — int8 table lookup: any function of one int8 value (sigmoid,
 * tanh), the 256 entries computed at emit time (tmrt.h, QUANT.md).
 * Freestanding: integers only, no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

tmrt_status
tmrt_lut_s8(const tmrt_lut_params *p, const int8_t *in, int8_t *out)
{
	int32_t i;

	if (!p || !in || !out || !p->table)
		return TMRT_ERR_ARG;
	if (p->size < 1)
		return TMRT_ERR_SHAPE;
	/* q + 128 in [0, 255]: entry 0 is q = -128. */
	for (i = 0; i < p->size; i++)
		out[i] = p->table[(int32_t)in[i] + 128];
	return TMRT_OK;
}
