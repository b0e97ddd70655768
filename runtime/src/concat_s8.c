/* libtmrt — int8 concatenation along one axis, each input requantized
 * to the output's quantization (or copied when it already has it).
 * Freestanding: integers only, no libc (the copy is a loop, not
 * memcpy).
 */
#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#include "tmrt_priv.h"

static tmrt_status
check(const tmrt_concat_params *p, const int8_t *const *in,
      const int8_t *out)
{
	int64_t len = 0;
	int32_t k;

	if (!p || !in || !out || !p->inputs)
		return TMRT_ERR_ARG;
	for (k = 0; k < p->n_inputs; k++)
		if (!in[k])
			return TMRT_ERR_ARG;
	if (p->outer < 1 || p->inner < 1 || p->n_inputs < 1)
		return TMRT_ERR_SHAPE;
	for (k = 0; k < p->n_inputs; k++) {
		if (p->inputs[k].axis_len < 1)
			return TMRT_ERR_SHAPE;
		len += p->inputs[k].axis_len;
		/* Checked at each step, so len cannot overflow. */
		if (len * p->inner > INT32_MAX ||
		    len * p->inner * p->outer > INT32_MAX)
			return TMRT_ERR_SHAPE;
	}
	if (!tmrt_priv_zp_ok(p->output_zp))
		return TMRT_ERR_PARAM;
	for (k = 0; k < p->n_inputs; k++)
		if (!tmrt_priv_zp_ok(p->inputs[k].zp) ||
		    p->inputs[k].multiplier < 0)
			return TMRT_ERR_PARAM;
	return TMRT_OK;
}

tmrt_status
tmrt_concat_s8(const tmrt_concat_params *p, const int8_t *const *in,
	       int8_t *out)
{
	tmrt_status st = check(p, in, out);
	int32_t o, k, i;

	if (st != TMRT_OK)
		return st;
	for (o = 0; o < p->outer; o++) {
		for (k = 0; k < p->n_inputs; k++) {
			const tmrt_concat_input *q = &p->inputs[k];
			const int32_t n = q->axis_len * p->inner;
			const int8_t *x = in[k] + (size_t)o * (size_t)n;
			/* The identity requantizer gives the same bytes. */
			const int copy = tmrt_priv_is_identity(
				q->multiplier, q->shift, q->zp, p->output_zp);

			if (copy) {
				for (i = 0; i < n; i++)
					out[i] = x[i];
			} else {
				for (i = 0; i < n; i++)
					out[i] = (int8_t)tmrt_requantize(
						(int32_t)x[i] - q->zp,
						q->multiplier, q->shift,
						p->output_zp, -128, 127);
			}
			out += n;
		}
	}
	return TMRT_OK;
}
