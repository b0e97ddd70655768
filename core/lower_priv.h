/* tmpipe — lowering: the quantized tm_model turned into the layers and
 * arena plan of libtmrt (through the blob writer, blob_priv.h).
 *
 * Every activation tensor the runtime needs becomes one arena tensor
 * (int8, NHWC; the MLP ops' vectors are (1, 1, 1, features)):
 *   dense           -> FULLY_CONNECTED (the node's requantizers and
 *                      clamp; a ReLU folded into it produces nothing: the
 *                      dense writes the ReLU's output, node->requant_out)
 *   relu (alone)    -> LUT of max(x, 0) requantized in -> out
 *   sigmoid         -> LUT (node->lut, built by the quantize pass)
 *   tanh            -> LUT (QUANT.md's table)
 *   flatten/reshape -> COPY on vectors (LUT requantizing when the output's
 *                      parameters differ from the input's)
 * Anything else is TM_ERR_UNSUPPORTED naming the layer and op.
 *
 * Arena plan: liveness-based first fit. A tensor is live from the layer
 * that writes it (model inputs: before the first layer) to its last
 * reader (model outputs and exposed tensors: to the end); tensors whose
 * lives overlap get disjoint bytes. A LUT or COPY whose input dies there
 * runs in place (same offset). The peak and the sum without reuse are
 * logged (TM_LOG_NOTE, source "lower"). */
#ifndef TMPIPE_LOWER_PRIV_H
#define TMPIPE_LOWER_PRIV_H

#include <stddef.h>

#include <tmpipe/lower.h>
#include <tmpipe/model.h>

#include "blob_priv.h"
#include "util_priv.h"

/* Flags of tm_priv_lower. */
enum {
	/* Every arena tensor is also a model output, after the model's
	 * own (in arena order): nothing is overwritten, so a caller can
	 * read every intermediate int8 tensor (tests, per-tensor reports). */
	TM_PRIV_LOWER_EXPOSE_ALL = 1
};

typedef struct tm_priv_lowered {
	tm_priv_blob *blob;		/* finished: tm_priv_blob_model and
					 * tm_priv_blob_bytes are valid */
	size_t n_outputs;		/* outputs of the lowered model */
	size_t *outputs;		/* the model tensor index of each */
	size_t arena_peak;		/* arena bytes (with reuse) */
	size_t arena_sum;		/* all activation bytes (no reuse) */
} tm_priv_lowered;

/* Lowers a quantized model (the quantize pass has run). On error *out
 * holds nothing to free. */
TM_PRIV tm_status tm_priv_lower(const tm_model *m, unsigned flags,
				tm_priv_lowered *out, tm_error *err);
TM_PRIV void tm_priv_lowered_fini(tm_priv_lowered *lw);	/* NULL-safe */

/* The blob output index of model tensor t, or (size_t)-1. */
TM_PRIV size_t tm_priv_lowered_output(const tm_priv_lowered *lw, size_t t);

#endif
