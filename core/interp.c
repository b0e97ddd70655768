/* tmpipe — float reference interpreter. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_priv.h"

struct tm_interp {
	const tm_model *m;
	size_t max_batch;
	float **act;		/* per tensor; NULL for constants */
};

tm_interp *
tm_priv_interp_new(const tm_model *m, size_t max_batch, tm_error *err)
{
	tm_interp *it = calloc(1, sizeof *it);

	if (!it)
		goto nomem;
	it->m = m;
	it->max_batch = max_batch;
	it->act = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *it->act);
	if (!it->act)
		goto nomem;
	for (size_t t = 0; t < m->n_tensors; t++) {
		const tm_tensor *tt = m->tensors[t];

		if (tt->kind == TM_TENSOR_CONST)
			continue;
		it->act[t] = malloc(max_batch * tm_tensor_numel(tt) *
				    sizeof(float));
		if (!it->act[t])
			goto nomem;
	}
	return it;
nomem:
	tm_priv_interp_free(it);
	tm_error_set(err, TM_ERR_NOMEM, "interpreter: out of memory");
	return NULL;
}

void
tm_priv_interp_free(tm_interp *it)
{
	if (!it)
		return;
	for (size_t t = 0; it->act && t < it->m->n_tensors; t++)
		free(it->act[t]);
	free(it->act);
	free(it);
}

float *
tm_priv_interp_input(tm_interp *it, size_t i)
{
	return i < it->m->n_inputs ? it->act[it->m->inputs[i]] : NULL;
}

const float *
tm_priv_interp_tensor(const tm_interp *it, size_t t)
{
	return t < it->m->n_tensors ? it->act[t] : NULL;
}

/* y[n, o] = b[o] + sum_i x[n, i] W[o, i] (PyTorch Linear, ONNX Gemm with
 * transB = 1). Accumulates in double so the reference does not depend on
 * summation order. */
static void
dense(const float *x, const float *w, const float *b, float *y, size_t n,
      size_t in, size_t out)
{
	for (size_t s = 0; s < n; s++) {
		const float *xs = x + s * in;

		for (size_t o = 0; o < out; o++) {
			const float *wo = w + o * in;
			double acc = b ? b[o] : 0.0;

			for (size_t i = 0; i < in; i++)
				acc += (double)xs[i] * wo[i];
			y[s * out + o] = (float)acc;
		}
	}
}

tm_status
tm_priv_interp_run(tm_interp *it, size_t n, tm_error *err)
{
	const tm_model *m = it->m;

	if (n > it->max_batch)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "interpreter: batch %zu > %zu", n,
				    it->max_batch);
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *nd = m->nodes[k];
		const tm_tensor *xt = m->tensors[nd->inputs[0]];
		const float *x = it->act[nd->inputs[0]];
		float *y = it->act[nd->outputs[0]];
		size_t numel = n * tm_tensor_numel(xt);

		switch (nd->op) {
		case TM_OP_DENSE: {
			const tm_tensor *w = m->tensors[nd->inputs[1]];
			const float *b = nd->n_inputs > 2
						 ? m->tensors[nd->inputs[2]]->data
						 : NULL;

			dense(x, w->data, b, y, n, (size_t)w->shape[1],
			      (size_t)w->shape[0]);
			break;
		}
		case TM_OP_RELU:
			for (size_t i = 0; i < numel; i++)
				y[i] = x[i] > 0.0f ? x[i] : 0.0f;
			break;
		case TM_OP_SIGMOID:
			for (size_t i = 0; i < numel; i++)
				y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
			break;
		default:
			return tm_error_set(err, TM_ERR_UNSUPPORTED,
					    "%s: the interpreter cannot run "
					    "op %s", nd->name,
					    tm_op_name(nd->op));
		}
	}
	return TM_OK;
}
