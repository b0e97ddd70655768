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

/* The scale and zero point the quantize pass gives activation t, the
 * output of node producer (NULL for a model input): the model's when the
 * frontend gave them, the op's fixed ones (sigmoid, softmax, tanh), or
 * from the calibrated range (tm_quant_affine, or _symmetric when the
 * observer says so). An error names a tensor without a range. */
TM_PRIV tm_status tm_priv_activation_params(const tm_tensor *t,
					    const tm_node *producer,
					    double *scale, int32_t *zero_point,
					    tm_error *err);

/* The ReLU or Clip node that the quantize pass folds into node n's clamp
 * (n then requantizes straight into that node's output, and the int8
 * model never holds n's own output), or NULL: one that alone reads the
 * output of a dense, conv2d, batchnorm or an add of two activations. */
TM_PRIV const tm_node *tm_priv_folded_activation(const tm_model *m,
						 const tm_node *n);

#endif
