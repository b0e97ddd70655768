/* tmpipe — float reference: dense (Gemm with transB) and matmul, through
 * CBLAS sgemm. */
#include "config.h"

#include <cblas.h>
#include <string.h>

#include "ops_priv.h"

/* Y[n, N] = X[n, K] W[N, K]^T (+ b): PyTorch Linear, ONNX Gemm with
 * transB = 1. The bias is written first and sgemm adds to it (beta 1). */
void
tm_priv_op_dense(const tm_op_args *a)
{
	const tm_tensor *w = a->m->tensors[a->node->inputs[1]];
	const int N = (int)w->shape[0], K = (int)w->shape[1];
	const float *b = a->node->n_inputs > 2 ? a->in[2] : NULL;
	float beta = 0.0f;

	if (b) {
		for (size_t s = 0; s < a->n; s++)
			memcpy(a->out + s * (size_t)N, b,
			       (size_t)N * sizeof *b);
		beta = 1.0f;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)a->n, N, K,
		    1.0f, a->in[0], K, a->in[1], K, beta, a->out, N);
}

/* Every leading row of every sample times B[K, N]: one sgemm over the
 * whole batch, since the rows are contiguous. */
void
tm_priv_op_matmul(const tm_op_args *a)
{
	const tm_tensor *x = a->m->tensors[a->node->inputs[0]];
	const tm_tensor *bt = a->m->tensors[a->node->inputs[1]];
	const int K = (int)bt->shape[0], N = (int)bt->shape[1];
	const size_t rows = a->n * tm_tensor_numel(x) / (size_t)K;

	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, N,
		    K, 1.0f, a->in[0], K, a->in[1], N, 0.0f, a->out, N);
}
