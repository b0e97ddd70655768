/* tmpipe — lowering: the quantized tm_model turned into the layers and
 * arena plan of libtmrt (through the blob writer, blob_priv.h).
 *
 * Every activation tensor the runtime needs becomes one arena tensor,
 * int8 NHWC: a per-sample image [C, H, W] is (1, H, W, C), channels
 * innermost; any other activation must be a vector (every dimension but
 * one is 1) and is (1, 1, 1, features). Every axis a bundle takes
 * (concat, softmax, add broadcasting) is counted in NHWC. Layers:
 *   dense           -> FULLY_CONNECTED (the node's requantizers and
 *                      clamp; a ReLU or Clip folded into it produces
 *                      nothing: the dense writes its output,
 *                      node->requant_out). Reading a flattened image, its
 *                      weight columns are permuted to the HWC order
 *                      (column c*H*W + h*W + w -> (h*W + w)*C + c) in a
 *                      lowered copy
 *   conv2d          -> CONV2D, any group (weights OIHW -> OHWI, I = C /
 *                      group), or DEPTHWISE_CONV2D when the group is the
 *                      input channels (weights
 *                      [C*mult][1][kh][kw] -> [kh][kw][C*mult]); ReLU and
 *                      Clip (ReLU6) folded as for dense
 *   batchnorm       -> DEPTHWISE_CONV2D 1x1, multiplier 1 (one that
 *                      bn_fold could not fold: weights in gamma's q8,
 *                      biases in beta's q32, quantize_priv.h)
 *   max/avg pool    -> MAX_POOL2D / AVG_POOL2D, global -> GLOBAL_AVG_POOL
 *   add             -> ADD of two activations: the larger first, the other
 *                      the same shape, a scalar or per channel [C, 1, 1];
 *                      ReLU/Clip folded
 *   concat          -> CONCAT of activations (any axis)
 *   softmax         -> SOFTMAX (Q30 exp table from the input scale)
 *   relu, clip, leaky_relu, tanh (alone) -> LUT; sigmoid -> LUT
 *                      (node->lut)
 *   flatten/reshape -> COPY (LUT requantizing when the output's
 *                      parameters differ from the input's); an image
 *                      flattened keeps its HWC bytes (marked, see
 *                      tm_priv_layout), reshaping into an image is
 *                      refused
 * Anything else (matmul, a constant operand of add or concat) is
 * TM_ERR_UNSUPPORTED naming the layer.
 *
 * Arena plan: liveness-based first fit. A tensor is live from the layer
 * that writes it (model inputs: before the first layer) to its last
 * reader (model outputs and exposed tensors: to the end); tensors whose
 * lives overlap get disjoint bytes. A LUT, COPY or SOFTMAX whose input
 * dies there runs in place (same offset), and so does an ADD over a
 * same-sized input that dies there (tmrt_layer's overlap rules). The
 * peak and the sum without reuse are logged (TM_LOG_NOTE, source
 * "lower"). */
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

/* How a lowered input or output orders the model tensor's elements:
 * c == 0, as the model does; else the model's [C, H*W] (CHW) is stored
 * HWC, model element ch * hw + p at p * c + ch. */
typedef struct tm_priv_layout {
	size_t c, hw;
} tm_priv_layout;

static inline size_t
tm_priv_layout_index(const tm_priv_layout *l, size_t j)
{
	return l->c ? (j % l->hw) * l->c + j / l->hw : j;
}

typedef struct tm_priv_lowered {
	tm_priv_blob *blob;		/* finished: tm_priv_blob_model and
					 * tm_priv_blob_bytes are valid */
	size_t n_outputs;		/* outputs of the lowered model */
	size_t *outputs;		/* the model tensor index of each */
	size_t arena_peak;		/* arena bytes (with reuse) */
	size_t arena_sum;		/* all activation bytes (no reuse) */
	tm_priv_layout *in_layout;	/* [model inputs] */
	tm_priv_layout *out_layout;	/* [n_outputs] */
} tm_priv_lowered;

/* Lowers a quantized model (the quantize pass has run). On error *out
 * holds nothing to free. */
TM_PRIV tm_status tm_priv_lower(const tm_model *m, unsigned flags,
				tm_priv_lowered *out, tm_error *err);
TM_PRIV void tm_priv_lowered_fini(tm_priv_lowered *lw);	/* NULL-safe */

/* The blob output index of model tensor t, or (size_t)-1. */
TM_PRIV size_t tm_priv_lowered_output(const tm_priv_lowered *lw, size_t t);

#endif
