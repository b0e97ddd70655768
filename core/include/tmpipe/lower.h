/* tmpipe — a quantized model lowered to libtmrt: as a tmrt_model in
 * host memory (for emitters that print it, e.g. c_header) or as a .tmb
 * blob (tmpipe-blob(5)).
 *
 * For emitters: the core lowers the model (the quantize pass must have
 * run) to libtmrt's layers, plans the arena and serializes the blob; both
 * forms come from the same lowering, so a header printed from
 * tm_lowered_model and the blob of tm_model_to_blob run identically.
 * Supported: dense, conv2d (grouped and depthwise too), an unfolded batchnorm
 * (as a 1x1 depthwise), max/avg/global pools, add and concat of
 * activations, softmax (ReLU and Clip/ReLU6 folded into the clamp of
 * dense, conv2d, batchnorm and add), relu, clip, leaky_relu, sigmoid,
 * tanh, flatten and reshape; any other op (matmul, a constant operand of
 * add or concat) is TM_ERR_UNSUPPORTED naming the layer.
 *
 * Layout: activations are int8 NHWC. A model input or output that is an
 * image [C, H, W] is held [H][W][C] by tmrt_run's buffers: the caller
 * transposes it. An image flattened into a vector keeps that HWC order
 * (the dense reading it gets permuted weight columns), model outputs
 * included; other vectors are in the model's order. Weights are lowered
 * copies in the runtime's layouts; the model's arrays are unchanged. */
#ifndef TMPIPE_LOWER_H
#define TMPIPE_LOWER_H

#include <stddef.h>

#include <tmpipe/error.h>
#include <tmpipe/model.h>
#include <tmrt/model.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The blob of m in *bytes (*size of them; free with tm_blob_free). On
 * error *bytes is NULL and *size 0. */
TM_API tm_status tm_model_to_blob(const tm_model *m, void **bytes,
				  size_t *size, tm_error *err);
TM_API void tm_blob_free(void *bytes);

/* A lowered model (opaque). */
typedef struct tm_lowered tm_lowered;

/* Lowers m (errors as tm_model_to_blob's). On error *out is NULL. */
TM_API tm_status tm_model_lower(const tm_model *m, tm_lowered **out,
				tm_error *err);
/* The lowered model, valid as long as l: tmrt_run runs it; every table,
 * bundle and constant array it points to is owned by l. Identical
 * constant arrays are stored once (two bundles may share a pointer).
 * Its inputs and outputs are m's, in m's order. */
TM_API const tmrt_model *tm_lowered_model(const tm_lowered *l);
/* The arena bytes tmrt_run needs (tm_lowered_model(l)->arena_size). */
TM_API size_t tm_lowered_arena_size(const tm_lowered *l);
/* The name of the model tensor that lowered tensor i holds, and of the
 * model layer lowered layer i comes from (NULL when i is out of range).
 * A dense with a folded ReLU writes the ReLU's output tensor. */
TM_API const char *tm_lowered_tensor_name(const tm_lowered *l, int32_t i);
TM_API const char *tm_lowered_layer_name(const tm_lowered *l, int32_t i);
/* 1 when output i of the lowered model (in m's output order) holds the
 * elements of an image [C, H, W] in channels-last order although its
 * model tensor is not an image (an image flattened into a vector, or a
 * vector op over one): model element ch * H*W + p is at p * C + ch, with
 * *channels = C and *pixels = H*W. 0 when the order is the model's (an
 * image output's dims say HWC themselves). */
TM_API int tm_lowered_output_hwc(const tm_lowered *l, int32_t i,
				 size_t *channels, size_t *pixels);
/* The blob of the same lowering (*size bytes, owned by l). */
TM_API const void *tm_lowered_blob(const tm_lowered *l, size_t *size);
TM_API void tm_lowered_free(tm_lowered *l);	/* NULL-safe */

#ifdef __cplusplus
}
#endif

#endif
