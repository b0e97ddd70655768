/* tmpipe — calibration: stream the data set through the float reference
 * and give every activation tensor an observed range. */
#ifndef TMPIPE_CALIB_PRIV_H
#define TMPIPE_CALIB_PRIV_H

#include <tmpipe/model.h>

#include "pipeline_priv.h"

typedef struct tm_calib_stats {
	size_t samples;		/* rows of the data set */
	size_t passes;		/* passes over it */
	size_t observed;	/* tensors given a range by an observer */
	size_t fixed;		/* tensors whose range the op fixes */
} tm_calib_stats;

/* Sets has_range/lo/hi/observer on every activation tensor of m (a
 * finalized model). Memory is bounded by the batch size, whatever the
 * number of samples. */
TM_PRIV tm_status tm_priv_calibrate(tm_model *m, const tm_pipeline *pl,
				    tm_calib_stats *stats, tm_error *err);

#endif
