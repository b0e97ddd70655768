/* tmpipe — float reference: kernel dispatch and scratch sizes. */
#include "config.h"

#include <cblas.h>
#include <pthread.h>

#include "ops_priv.h"

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void
blas_single_thread(void)
{
	/* tmpipe splits calibration across its own threads; OpenBLAS
	 * threads inside them would only compete. */
	openblas_set_num_threads(1);
}

void
tm_priv_blas_init(void)
{
	pthread_once(&blas_once, blas_single_thread);
}

size_t
tm_priv_op_scratch(const tm_model *m, const tm_node *node)
{
	if (node->op == TM_OP_CONV2D) {
		const tm_tensor *w = m->tensors[node->inputs[1]];
		const tm_tensor *y = m->tensors[node->outputs[0]];

		/* im2col of one group of one sample: (C/g kh kw) x (Ho Wo). */
		return (size_t)(w->shape[1] * w->shape[2] * w->shape[3] *
				y->shape[1] * y->shape[2]);
	}
	return 0;
}

tm_status
tm_priv_op_run(const tm_op_args *a, tm_error *err)
{
	switch (a->node->op) {
	case TM_OP_DENSE:
		tm_priv_op_dense(a);
		break;
	case TM_OP_MATMUL:
		tm_priv_op_matmul(a);
		break;
	case TM_OP_CONV2D:
		tm_priv_op_conv2d(a);
		break;
	case TM_OP_MAXPOOL2D:
		tm_priv_op_maxpool2d(a);
		break;
	case TM_OP_AVGPOOL2D:
		tm_priv_op_avgpool2d(a);
		break;
	case TM_OP_GLOBAL_AVGPOOL:
		tm_priv_op_global_avgpool(a);
		break;
	case TM_OP_BATCHNORM:
		tm_priv_op_batchnorm(a);
		break;
	case TM_OP_RELU:
	case TM_OP_CLIP:
	case TM_OP_LEAKY_RELU:
	case TM_OP_SIGMOID:
	case TM_OP_TANH:
		tm_priv_op_unary(a);
		break;
	case TM_OP_SOFTMAX:
		tm_priv_op_softmax(a);
		break;
	case TM_OP_ADD:
		tm_priv_op_add(a);
		break;
	case TM_OP_CONCAT:
		tm_priv_op_concat(a);
		break;
	case TM_OP_FLATTEN:
	case TM_OP_RESHAPE:
		tm_priv_op_copy(a);
		break;
	default:
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "%s: the float reference has no kernel "
				    "for op %s", a->node->name,
				    tm_op_name(a->node->op));
	}
	return TM_OK;
}
