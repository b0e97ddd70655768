/* Fixture: the descriptor names the plugin 'minmax' but the file is
 * name_mismatch.so. */
#include <stdlib.h>

#include <tmpipe/plugin.h>

static void *
create(const tm_params *p, tm_error *err)
{
	(void)p;
	(void)err;
	return NULL;
}

static void
destroy(void *s)
{
	(void)s;
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
	*lo = *hi = 0.0f;
	return TM_OK;
}

static const tm_observer_ops ops = {
	.create = create, .destroy = destroy, .observe = observe,
	.finish = finish,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_OBSERVER, "minmax", "1.0",
		 "fixture: name differs from file", NULL, &ops)
