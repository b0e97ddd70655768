/* tmpipe — calibration: stream the data set through the float reference
 * and give every activation tensor an observed range.
 *
 * Threads (pl->threads, from -j or [run] threads). The data is cut into
 * batches of pl->batch samples (the last one may be short). Each thread
 * has its own dataset reader and interpreter, takes the next batch not
 * yet taken, reads and runs it, checks every watched tensor for NaN and
 * Inf, and observes it into fresh per-batch observer states. Then it
 * waits for its batch's turn and commits it: the per-batch states are
 * merged into the tensor's accumulated state and destroyed, batch after
 * batch in index order. Every observer call is therefore the same
 * whatever the number of threads, so results are identical (bitwise) for
 * any thread count, even with merges that are not exactly associative;
 * the first error in batch order is the one reported, also whatever the
 * thread count.
 *
 * Observers without merge are fed at commit time, on their one state, in
 * batch order: they are never split across threads (the activations of a
 * batch stay in its thread's interpreter until its commit). Passes after
 * the first (next_pass) split an observer only when it has clone too:
 * each batch then observes a clone of the accumulated state as the pass
 * began; without clone the pass is fed at commit time like an observer
 * without merge. See <tmpipe/observer.h>.
 *
 * A thread holds one batch at a time, so T threads hold at most T
 * batches of activations; the threads used are min(T, batches).
 */
#ifndef TMPIPE_CALIB_PRIV_H
#define TMPIPE_CALIB_PRIV_H

#include <tmpipe/model.h>

#include "pipeline_priv.h"

typedef struct tm_calib_stats {
	size_t samples;		/* rows of the data set */
	size_t passes;		/* passes over it */
	size_t observed;	/* tensors given a range by an observer */
	size_t fixed;		/* tensors whose range the op fixes */
	size_t batches;		/* per pass */
	size_t threads;		/* that calibrated: min(pl->threads,
				 * batches), fewer if the system would
				 * not start more */

	/* Memory in bytes. Per thread, each fixed by the model, the batch
	 * size and the observers, whatever the number of samples (the
	 * tests assert it): */
	size_t reader_bytes;	/* its dataset reader */
	size_t interp_bytes;	/* its interpreter: the activations of one
				 * batch, and scratch */
	size_t state_bytes;	/* the most its per-batch observer states
				 * held at once (state_size) */
	/* Shared by the threads: */
	size_t index_bytes;	/* the dataset's index: a folder's file
				 * names, a few tens of bytes per sample
				 * (the one thing that grows with N) */
	size_t acc_bytes;	/* the accumulated observer states at the
				 * end (state_size) */
} tm_calib_stats;

/* Sets has_range/lo/hi/observer on every activation tensor of m (a
 * finalized model). Memory is bounded by the batch size and the thread
 * count, whatever the number of samples. */
TM_PRIV tm_status tm_priv_calibrate(tm_model *m, const tm_pipeline *pl,
				    tm_calib_stats *stats, tm_error *err);

#endif
