/* Fixture: a valid observer; the tests put it in two folders to make a
 * duplicate name. */
#include <stdlib.h>

#include <tmpipe/plugin.h>

static void *
create(const tm_params *p, tm_error *err)
{
	(void)p;
	(void)err;
	return calloc(1, 1);
}

static tm_status
observe(void *s, const float *x, size_t n, tm_error *err)
{
	(void)s;
	(void)x;
	(void)n;
	(void)err;
	return TM_OK;
}

static tm_status
finish(void *s, float *lo, float *hi, tm_error *err)
{
	(void)s;
	(void)err;
	*lo = -1.0f;
	*hi = 1.0f;
	return TM_OK;
}

static const tm_observer_ops ops = {
	.create = create, .destroy = free, .observe = observe,
	.finish = finish,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_OBSERVER, "twin", "1.0",
		 "fixture: always [-1, 1]", NULL, &ops)
