/* tmpipe bench — what the benchmark drivers share: a clock, a sort
 * comparison, a median, and loading a pipeline's model through the
 * registry and the pass manager, as `tmpipe run` does. */
#ifndef TMPIPE_BENCH_COMMON_H
#define TMPIPE_BENCH_COMMON_H

#include <stddef.h>

#include <tmpipe/tmpipe.h>

#include "loader_priv.h"

/* Monotonic seconds. */
double bench_now(void);
/* qsort comparison of doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);
/* Sorts v (n >= 1 values) and returns their median. */
double bench_median(double *v, size_t n);

/* Runs the pipeline at path (every stage it declares: a model section
 * only gives the float model; with calibration, the quantized one) and
 * returns its model, or NULL with err set. The registry is returned in
 * *rp for the caller to free after the model (plugins stay resident
 * while what they built is in use, as in the CLI). */
tm_model *bench_load_model(const char *path, const char *plugin_dir,
			   tm_registry **rp, tm_error *err);

#endif
