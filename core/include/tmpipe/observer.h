/* tmpipe — the observer API, the same for built-in and third-party
 * observers.
 *
 * One observer instance watches one activation tensor during calibration:
 *
 *	create(params) → observe(batch) … → [next_pass → observe … ]
 *	→ [merge] → finish → clipping range [lo, hi] → destroy
 *
 * An observer streams: its memory must not grow with the number of
 * samples it sees (state_size reports it, and tests assert on it).
 * When calibration runs on several threads, each thread has its own
 * instance over a share of the batches and the core merges them in a
 * fixed order, so results do not depend on the thread count.
 */
#ifndef TMPIPE_OBSERVER_H
#define TMPIPE_OBSERVER_H

#include <stddef.h>

#include <tmpipe/error.h>
#include <tmpipe/params.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tm_observer_ops {
	/* A new, empty state; NULL with err set on failure. */
	void *(*create)(const tm_params *params, tm_error *err);
	void (*destroy)(void *state);

	/* n floats of the tensor (a whole batch, flattened). The core has
	 * already rejected NaN and Inf, naming the tensor and sample. */
	tm_status (*observe)(void *state, const float *x, size_t n,
			     tm_error *err);

	/* Optional (NULL: one pass). Called after each full pass over the
	 * calibration data; return 1 to see the data once more (e.g. range
	 * first, histogram second), 0 when done. */
	int (*next_pass)(void *state);

	/* Optional (NULL: the core does not split this tensor across
	 * threads). Folds src into dst; both saw the same passes. */
	tm_status (*merge)(void *dst, const void *src, tm_error *err);

	/* The clipping range. lo <= hi, both finite. An observer that saw
	 * nothing is an error. */
	tm_status (*finish)(void *state, float *lo, float *hi, tm_error *err);

	/* Bytes the state holds now (memory tests assert it stays flat). */
	size_t (*state_size)(const void *state);

	void *reserved[4];
} tm_observer_ops;

#ifdef __cplusplus
}
#endif

#endif
