/* moving_minmax — a moving average of each batch's minimum and maximum,
 * as PyTorch's MovingAverageMinMaxObserver (torch.ao.quantization):
 * the first batch sets min and max; each later batch, with its own
 * minimum b_min and maximum b_max, moves them by
 *
 *	min = min + c * (b_min - min),	max = max + c * (b_max - max)
 *
 * with c = averaging_constant (default 0.01, in (0, 1]; 1 follows the
 * last batch). One pass, O(1) memory.
 *
 * The answer depends on the batches: on their size (calibration.batch)
 * and their order, which the core keeps whatever the number of threads.
 * It tracks the typical extremes of a batch, not the extremes of the
 * data set: a rare outlier moves it by c of its distance only.
 *
 * Arithmetic is float32, one rounding per operation, in PyTorch's order,
 * so the results match PyTorch's observer bit for bit on the same
 * batches.
 *
 * Merge: the core gives each batch its own state and merges them into
 * the accumulated one in batch order, so merge(dst, src) is the update
 * above with src's minimum and maximum (a copy when dst saw nothing).
 * A src that itself saw several batches counts as one batch with its
 * averaged extremes.
 *
 * Built only against the public observer API, like any third-party
 * observer. */
#include <stdint.h>
#include <stdlib.h>

#include <tmpipe/tmpipe.h>

typedef struct mmm {
	float c;		/* averaging constant */
	float lo, hi;
	uint64_t batches;	/* batches seen */
} mmm;

static void *
mmm_create(const tm_params *params, tm_error *err)
{
	double c = tm_params_get_float(params, "averaging_constant");
	mmm *s;

	if (!(c > 0.0)) {
		tm_params_error(params, "averaging_constant", err,
				TM_ERR_INVALID,
				"averaging_constant must be above 0 (got %g)",
				c);
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	s->c = (float)c;
	return s;
}

static void
mmm_destroy(void *state)
{
	free(state);
}

/* One batch with extremes lo, hi. PyTorch: x + c * (cur - x) in float32,
 * each operation rounded: the product of two floats is exact in double,
 * so the cast rounds it once, and no multiply-add can be fused across
 * the cast. */
static void
update(mmm *s, float lo, float hi)
{
	float dlo, dhi;

	if (!s->batches) {
		s->lo = lo;
		s->hi = hi;
		s->batches = 1;
		return;
	}
	dlo = (float)((double)s->c * (double)(float)(lo - s->lo));
	dhi = (float)((double)s->c * (double)(float)(hi - s->hi));
	s->lo = (float)(s->lo + dlo);
	s->hi = (float)(s->hi + dhi);
	s->batches++;
}

static tm_status
mmm_observe(void *state, const float *x, size_t n, tm_error *err)
{
	float lo, hi;

	(void)err;
	if (n == 0)
		return TM_OK;
	lo = hi = x[0];
	for (size_t i = 1; i < n; i++) {
		lo = x[i] < lo ? x[i] : lo;
		hi = x[i] > hi ? x[i] : hi;
	}
	update(state, lo, hi);
	return TM_OK;
}

static tm_status
mmm_merge(void *dst, const void *src, tm_error *err)
{
	mmm *d = dst;
	const mmm *s = src;
	uint64_t batches;

	(void)err;
	if (!s->batches)
		return TM_OK;
	batches = d->batches + s->batches;
	update(d, s->lo, s->hi);
	d->batches = batches;
	return TM_OK;
}

static tm_status
mmm_finish(void *state, float *lo, float *hi, tm_error *err)
{
	const mmm *s = state;

	if (!s->batches)
		return tm_error_set(err, TM_ERR_INVALID, "saw no values");
	*lo = s->lo;
	*hi = s->hi;
	return TM_OK;
}

static size_t
mmm_state_size(const void *state)
{
	(void)state;
	return sizeof(mmm);
}

static const tm_param_spec mmm_params[] = {
	{ .name = "averaging_constant", .type = TM_PARAM_FLOAT, .def = "0.01",
	  .flags = TM_PARAM_HAS_MIN | TM_PARAM_HAS_MAX, .min = 0, .max = 1,
	  .help = "weight of each new batch's min and max, in (0, 1]" },
	TM_PARAM_END
};

static const tm_observer_ops mmm_ops = {
	.create = mmm_create,
	.destroy = mmm_destroy,
	.observe = mmm_observe,
	.merge = mmm_merge,
	.finish = mmm_finish,
	.state_size = mmm_state_size,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_OBSERVER, "moving_minmax", "1.0",
		 "moving average of each batch's min and max (PyTorch's "
		 "MovingAverageMinMaxObserver)",
		 mmm_params, &mmm_ops)
