/* tmpipe — a quantized model as a .tmb blob (tmpipe-blob(5)) for libtmrt.
 *
 * For emitters: the core lowers the model (the quantize pass must have
 * run) to libtmrt's layers, plans the arena and serializes the blob.
 * Supported so far: dense (ReLU folded), relu, sigmoid, tanh, and
 * flatten/reshape of vectors; any other op is TM_ERR_UNSUPPORTED naming
 * the layer. */
#ifndef TMPIPE_LOWER_H
#define TMPIPE_LOWER_H

#include <stddef.h>

#include <tmpipe/error.h>
#include <tmpipe/model.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The blob of m in *bytes (*size of them; free with tm_blob_free). On
 * error *bytes is NULL and *size 0. */
TM_API tm_status tm_model_to_blob(const tm_model *m, void **bytes,
				  size_t *size, tm_error *err);
TM_API void tm_blob_free(void *bytes);

#ifdef __cplusplus
}
#endif

#endif
