/* tmpipe — float reference kernels, one file per family of operators.
 *
 * ONNX semantics on a batch of n samples, each laid out as its tensor's
 * per-sample shape in C order (CHW for images). GEMM-shaped work goes
 * through CBLAS sgemm (OpenBLAS, single-threaded: tmpipe runs its own
 * threads); everything else is plain loops without per-element calls.
 */
#ifndef TMPIPE_OPS_PRIV_H
#define TMPIPE_OPS_PRIV_H

#include <tmpipe/model.h>

#include "../util_priv.h"

typedef struct tm_op_args {
	const tm_model *m;
	const tm_node *node;
	size_t n;			/* samples in the batch */
	const float *const *in;		/* per node input: n samples of an
					 * activation, or a constant's data */
	float *out;			/* n samples of the output */
	float *scratch;			/* tm_priv_op_scratch(...) floats */
} tm_op_args;

/* Floats of scratch the node needs for one call (any batch size), e.g.
 * the im2col buffer of a convolution. */
TM_PRIV size_t tm_priv_op_scratch(const tm_model *m, const tm_node *node);

/* Runs a->node. Returns TM_ERR_UNSUPPORTED for an op no kernel handles. */
TM_PRIV tm_status tm_priv_op_run(const tm_op_args *a, tm_error *err);

/* The families (dispatched by tm_priv_op_run). */
TM_PRIV void tm_priv_op_dense(const tm_op_args *a);
TM_PRIV void tm_priv_op_matmul(const tm_op_args *a);
TM_PRIV void tm_priv_op_conv2d(const tm_op_args *a);
TM_PRIV void tm_priv_op_maxpool2d(const tm_op_args *a);
TM_PRIV void tm_priv_op_avgpool2d(const tm_op_args *a);
TM_PRIV void tm_priv_op_global_avgpool(const tm_op_args *a);
TM_PRIV void tm_priv_op_batchnorm(const tm_op_args *a);
TM_PRIV void tm_priv_op_unary(const tm_op_args *a);	/* relu, clip,
							 * leaky_relu,
							 * sigmoid, tanh */
TM_PRIV void tm_priv_op_softmax(const tm_op_args *a);
TM_PRIV void tm_priv_op_add(const tm_op_args *a);
TM_PRIV void tm_priv_op_concat(const tm_op_args *a);
TM_PRIV void tm_priv_op_copy(const tm_op_args *a);	/* flatten,
							 * reshape */

/* Makes OpenBLAS single-threaded (once per process). */
TM_PRIV void tm_priv_blas_init(void);

#endif
