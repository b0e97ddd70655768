/* tmpipe — the quantize pass: from calibrated ranges and float weights to
 * int8 weights, int32 biases, activation (scale, zero point), baked
 * requantizers and lookup tables (QUANT.md). */
#ifndef TMPIPE_QUANTIZE_PRIV_H
#define TMPIPE_QUANTIZE_PRIV_H

#include <tmpipe/model.h>

#include "util_priv.h"

/* Every activation tensor must have a range (calibrated or fixed).
 * per_channel (one flag per node, or NULL for none) asks for weights
 * quantized per output channel (axis 0) instead of per tensor. */
TM_PRIV tm_status tm_priv_quantize(tm_model *m,
				   const unsigned char *per_channel,
				   tm_error *err);

#endif
