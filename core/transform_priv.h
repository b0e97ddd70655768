/* tmpipe — what the core gives transforms: the order rules of a
 * pipeline's transforms list, the context of transforms that run after
 * calibration (tm_transform_ctx), and the model fields they keep (BatchNorm
 * statistics, quantize-only deltas). See tmpipe-pipeline(5), "Order
 * rules", and tmpipe-plugin(7). */
#ifndef TMPIPE_TRANSFORM_PRIV_H
#define TMPIPE_TRANSFORM_PRIV_H

#include <tmpipe/plugin.h>

#include "pipeline_priv.h"

struct tm_transform_ctx {
	const tm_pipeline *pl;
};

/* The needs of stage s, a transform (0 for a plugin built before the
 * field existed). */
TM_PRIV unsigned tm_priv_transform_needs(const tm_stage *s);

/* Index of the first transform of pl that runs after calibration (the
 * first NEEDS_DATA one), or pl->n_transforms when none does. */
TM_PRIV size_t tm_priv_transforms_split(const tm_pipeline *pl);

/* Checks the order of pl's transforms against their needs; the error
 * points at the offending transform's line in file. */
TM_PRIV tm_status tm_priv_transforms_check(const tm_pipeline *pl,
					   const char *file, tm_error *err);

/* Puts every constant's qorig back into its data (and frees it): after
 * the quantize pass, the float model is the reference again. Returns
 * the number of tensors restored. */
TM_PRIV size_t tm_priv_qdelta_restore(tm_model *m);

#endif
