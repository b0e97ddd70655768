/* minmax — running minimum and maximum of a tensor. O(1) memory.
 *
 * Built only against the public observer API, like any third-party
 * observer. */
#include <math.h>
#include <stdlib.h>

#include <tmpipe/tmpipe.h>

typedef struct minmax {
	float lo, hi;
	size_t count;
} minmax;

static void *
mm_create(const tm_params *params, tm_error *err)
{
	minmax *s = calloc(1, sizeof *s);

	(void)params;
	if (!s)
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	return s;
}

static void
mm_destroy(void *state)
{
	free(state);
}

static tm_status
mm_observe(void *state, const float *x, size_t n, tm_error *err)
{
	minmax *s = state;
	float lo, hi;

	(void)err;
	if (n == 0)
		return TM_OK;
	lo = s->count ? s->lo : x[0];
	hi = s->count ? s->hi : x[0];
	for (size_t i = 0; i < n; i++) {
		lo = x[i] < lo ? x[i] : lo;
		hi = x[i] > hi ? x[i] : hi;
	}
	s->lo = lo;
	s->hi = hi;
	s->count += n;
	return TM_OK;
}

static tm_status
mm_merge(void *dst, const void *src, tm_error *err)
{
	minmax *d = dst;
	const minmax *s = src;

	(void)err;
	if (!s->count)
		return TM_OK;
	if (!d->count) {
		*d = *s;
		return TM_OK;
	}
	d->lo = s->lo < d->lo ? s->lo : d->lo;
	d->hi = s->hi > d->hi ? s->hi : d->hi;
	d->count += s->count;
	return TM_OK;
}

static tm_status
mm_finish(void *state, float *lo, float *hi, tm_error *err)
{
	const minmax *s = state;

	if (!s->count)
		return tm_error_set(err, TM_ERR_INVALID,
				    "saw no values");
	*lo = s->lo;
	*hi = s->hi;
	return TM_OK;
}

static size_t
mm_state_size(const void *state)
{
	(void)state;
	return sizeof(minmax);
}

static const tm_param_spec mm_params[] = {
	TM_PARAM_END
};

static const tm_observer_ops mm_ops = {
	.create = mm_create,
	.destroy = mm_destroy,
	.observe = mm_observe,
	.merge = mm_merge,
	.finish = mm_finish,
	.state_size = mm_state_size,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_OBSERVER, "moving_minmax", "0.0",
		 "running minimum and maximum (exact, O(1) memory)",
		 mm_params, &mm_ops)
