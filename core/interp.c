/* tmpipe — float reference interpreter. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/quant.h>

#include "interp_priv.h"
#include "ops/ops_priv.h"

struct tm_interp {
	const tm_model *m;
	size_t max_batch;
	float **act;		/* per tensor; NULL for constants */
	const float **in;	/* operand pointers of one node */
	float *scratch;		/* the largest scratch any node needs */
	size_t bytes;		/* allocated, for memory tests */
	const tm_fq *fq;	/* per tensor, or NULL: float model */
	const float *const *cst; /* per tensor overrides, or NULL */
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
		size_t bytes = max_batch * tm_tensor_numel(tt) * sizeof(float);

		if (tt->kind == TM_TENSOR_CONST)
			continue;
		it->act[t] = malloc(bytes ? bytes : 1);
		if (!it->act[t])
			goto nomem;
		it->bytes += bytes;
	}
	{
		size_t max_in = 1, scratch = 0;

		for (size_t k = 0; k < m->n_nodes; k++) {
			size_t sc = tm_priv_op_scratch(m, m->nodes[k]);

			max_in = m->nodes[k]->n_inputs > max_in
					 ? m->nodes[k]->n_inputs
					 : max_in;
			scratch = sc > scratch ? sc : scratch;
		}
		it->in = calloc(max_in, sizeof *it->in);
		it->scratch = malloc((scratch ? scratch : 1) * sizeof(float));
		if (!it->in || !it->scratch)
			goto nomem;
		it->bytes += scratch * sizeof(float);
	}
	tm_priv_blas_init();
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
	free(it->in);
	free(it->scratch);
	free(it);
}

size_t
tm_priv_interp_bytes(const tm_interp *it)
{
	return it ? it->bytes : 0;
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

void
tm_priv_interp_fake_quant(tm_interp *it, const tm_fq *fq,
			  const float *const *consts)
{
	it->fq = fq;
	it->cst = consts;
}

/* QUANT.md's activation quantization, round trip: ties away from zero
 * (lround), saturated to int8, then back to float. */
static void
fake_quant(float *x, size_t n, const tm_fq *fq)
{
	for (size_t i = 0; i < n; i++) {
		double v = (double)x[i] / fq->scale;
		long q;

		/* lround of NaN or of a huge value is undefined: saturate
		 * (NaN to qmin) */
		if (!(v > -1e9 && v < 1e9))
			q = v > 0.0 ? TM_QMAX : TM_QMIN;
		else
			q = lround(v) + fq->zero_point;
		q = q < TM_QMIN ? TM_QMIN : q > TM_QMAX ? TM_QMAX : q;
		x[i] = (float)(fq->scale * (double)(q - fq->zero_point));
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
	for (size_t i = 0; it->fq && i < m->n_inputs; i++) {
		size_t t = m->inputs[i];

		if (it->fq[t].on)
			fake_quant(it->act[t],
				   n * tm_tensor_numel(m->tensors[t]),
				   &it->fq[t]);
	}
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *nd = m->nodes[k];
		tm_op_args args;
		tm_status st;
		size_t y;

		for (size_t i = 0; i < nd->n_inputs; i++) {
			const tm_tensor *t = m->tensors[nd->inputs[i]];

			if (t->kind != TM_TENSOR_CONST)
				it->in[i] = it->act[nd->inputs[i]];
			else if (it->cst && it->cst[nd->inputs[i]])
				it->in[i] = it->cst[nd->inputs[i]];
			else
				it->in[i] = t->data;
		}
		args.m = m;
		args.node = nd;
		args.n = n;
		args.in = it->in;
		args.out = it->act[nd->outputs[0]];
		args.scratch = it->scratch;
		st = tm_priv_op_run(&args, err);
		if (st)
			return st;
		y = nd->outputs[0];
		if (it->fq && it->fq[y].on)
			fake_quant(args.out, n * tm_tensor_numel(m->tensors[y]),
				   &it->fq[y]);
	}
	return TM_OK;
}
