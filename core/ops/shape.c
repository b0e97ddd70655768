/* tmpipe — float reference: operators that only move data (flatten,
 * reshape, concat). */
#include "config.h"

#include <string.h>

#include "ops_priv.h"

/* Flatten and reshape keep C order: the values do not move. */
void
tm_priv_op_copy(const tm_op_args *a)
{
	const tm_tensor *y = a->m->tensors[a->node->outputs[0]];

	memcpy(a->out, a->in[0], a->n * tm_tensor_numel(y) * sizeof(float));
}

/* Per sample, each input contributes shape[axis] x inner values to every
 * outer slice of the output. */
void
tm_priv_op_concat(const tm_op_args *a)
{
	const tm_node *nd = a->node;
	const tm_tensor *y = a->m->tensors[nd->outputs[0]];
	int64_t ax = nd->attrs.axis;
	size_t outer = 1, inner = 1, ny = tm_tensor_numel(y);

	if (ax < 0)
		ax += y->ndim;
	for (int d = 0; d < ax; d++)
		outer *= (size_t)y->shape[d];
	for (int d = (int)ax + 1; d < y->ndim; d++)
		inner *= (size_t)y->shape[d];
	for (size_t s = 0; s < a->n; s++) {
		float *ys = a->out + s * ny;

		for (size_t o = 0; o < outer; o++) {
			for (size_t i = 0; i < nd->n_inputs; i++) {
				const tm_tensor *x =
					a->m->tensors[nd->inputs[i]];
				size_t chunk = (size_t)x->shape[ax] * inner;
				size_t nx = tm_tensor_numel(x);
				const float *xs =
					a->in[i] +
					(x->kind == TM_TENSOR_CONST ? 0
								    : s * nx) +
					o * chunk;

				memcpy(ys, xs, chunk * sizeof *ys);
				ys += chunk;
			}
		}
	}
}
