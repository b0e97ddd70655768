/* tmpipe bench — shared helpers (see common.h). */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "pipeline_priv.h"
#include "run_priv.h"

double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double
bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

tm_model *
bench_load_model(const char *path, const char *plugin_dir, tm_registry **rp,
		 tm_error *err)
{
	const char *given[2] = { plugin_dir, NULL };
	tm_registry *r = *rp = tm_registry_new();
	tm_pipeline *pl = NULL;
	tm_run_summary sum;
	tm_model *m = NULL;

	memset(&sum, 0, sizeof sum);
	if (!r) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (tm_registry_scan(r, plugin_dir ? given : NULL, NULL, NULL, err) ||
	    tm_pipeline_load(path, r, NULL, &pl, err) ||
	    tm_pipeline_run(pl, NULL, NULL, &sum, &m, err)) {
		tm_model_free(m);
		m = NULL;
	}
	tm_run_summary_fini(&sum);
	tm_pipeline_free(pl);
	return m;
}
