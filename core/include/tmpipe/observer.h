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
 *
 * Threads and merging. The core gives an observer with merge one fresh
 * state per batch (from create in the first pass, from clone in later
 * passes), lets any thread observe the batch into it, then merges it into
 * the tensor's accumulated state, in batch order, and destroys it. So the
 * calls each state sees are the same whatever the number of threads, and
 * results are identical for -j 1 and -j 64 even when merge is not exactly
 * associative (floating-point sums, histograms that rebin). An observer
 * without merge is fed the batches one at a time, in order, on its one
 * state; so is one without clone in its passes after the first. Those
 * tensors are not split across threads.
 *
 * Concurrency: the core never calls two functions on one state at the
 * same time, but calls them on different states (of one tensor or of
 * several) from several threads at once: keep everything in the state,
 * nothing in globals.
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
	 * threads). Folds src, which observed later batches, into dst; the
	 * core destroys src afterwards. Both are in the same pass; in a
	 * pass after the first, src was cloned from dst's state as that
	 * pass began, so what the earlier passes settled (a range, say) is
	 * the same in both: fold only what the current pass gathers. */
	tm_status (*merge)(void *dst, const void *src, tm_error *err);

	/* The clipping range. lo <= hi, both finite. An observer that saw
	 * nothing is an error. */
	tm_status (*finish)(void *state, float *lo, float *hi, tm_error *err);

	/* Bytes the state holds now (memory tests assert it stays flat). */
	size_t (*state_size)(const void *state);

	/* Optional, and used only with merge and next_pass (added in plugin
	 * ABI 1.0 in the slot of reserved[0], so the table keeps its size).
	 * A new state that is a copy of state, called right after
	 * next_pass returned 1 and before the new pass observes anything:
	 * the core observes each batch of that pass into its own clone and
	 * merges it back, so a multi-pass observer is split across threads
	 * in every pass. NULL with err set on failure. NULL op: passes
	 * after the first run on one state, in batch order. */
	void *(*clone)(const void *state, tm_error *err);

	/* Optional (added in plugin ABI 1.0 in the slot of reserved[1]).
	 * 1 when the range finish returns is symmetric by construction
	 * (-t, t), e.g. entropy calibration: the tensor is then quantized
	 * on the grid -127..127 with zero point 0 (QUANT.md: an asymmetric
	 * zero point for a symmetric range is -1 or 0 by accident). NULL
	 * op or 0: the range is quantized as any other, asymmetric. */
	int (*symmetric)(const void *state);

	void *reserved[2];
} tm_observer_ops;

#ifdef __cplusplus
}
#endif

#endif
