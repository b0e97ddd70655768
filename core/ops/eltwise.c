/* tmpipe — float reference: elementwise operators, batch normalization,
 * softmax and broadcasting add. One loop per operator: the switch is
 * outside the loops. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops_priv.h"

void
tm_priv_op_unary(const tm_op_args *a)
{
	const tm_tensor *x = a->m->tensors[a->node->inputs[0]];
	const size_t n = a->n * tm_tensor_numel(x);
	const float *in = a->in[0];
	float *out = a->out;
	const float lo = a->node->attrs.clip_min, hi = a->node->attrs.clip_max;
	const float alpha = a->node->attrs.alpha;

	switch (a->node->op) {
	case TM_OP_RELU:
		/* Branch-free: clear every value whose sign bit is set (a
		 * compare and jump mispredicts on mixed signs, six times
		 * slower). -0 becomes 0; a NaN stays NaN, as in PyTorch. */
		for (size_t i = 0; i < n; i++) {
			uint32_t u;

			memcpy(&u, &in[i], sizeof u);
			u &= ~(uint32_t)((int32_t)u >> 31);
			memcpy(&out[i], &u, sizeof u);
		}
		break;
	case TM_OP_CLIP:
		for (size_t i = 0; i < n; i++)
			out[i] = in[i] < lo ? lo : in[i] > hi ? hi : in[i];
		break;
	case TM_OP_LEAKY_RELU:
		for (size_t i = 0; i < n; i++)
			out[i] = in[i] >= 0.0f ? in[i] : alpha * in[i];
		break;
	case TM_OP_SIGMOID:
		for (size_t i = 0; i < n; i++)
			out[i] = 1.0f / (1.0f + expf(-in[i]));
		break;
	case TM_OP_TANH:
		for (size_t i = 0; i < n; i++)
			out[i] = tanhf(in[i]);
		break;
	default:
		break;
	}
}

/* y = (x - mean) / sqrt(var + eps) * gamma + beta per channel (axis 0 of
 * the sample), folded into one scale and shift per channel. */
void
tm_priv_op_batchnorm(const tm_op_args *a)
{
	const tm_tensor *x = a->m->tensors[a->node->inputs[0]];
	const size_t C = (size_t)x->shape[0];
	const size_t inner = tm_tensor_numel(x) / (C ? C : 1);
	const float *gamma = a->in[1], *beta = a->in[2];
	const float *mean = a->in[3], *var = a->in[4];
	const double eps = a->node->attrs.epsilon;

	for (size_t c = 0; c < C; c++) {
		const double sc = gamma[c] / sqrt((double)var[c] + eps);
		const float scale = (float)sc;
		const float shift = (float)(beta[c] - mean[c] * sc);

		for (size_t s = 0; s < a->n; s++) {
			const float *xc = a->in[0] + (s * C + c) * inner;
			float *yc = a->out + (s * C + c) * inner;

			for (size_t k = 0; k < inner; k++)
				yc[k] = xc[k] * scale + shift;
		}
	}
}

/* Softmax over axis, as outer x len x inner: max-subtracted for
 * stability, summed in double. */
void
tm_priv_op_softmax(const tm_op_args *a)
{
	const tm_tensor *x = a->m->tensors[a->node->inputs[0]];
	int64_t ax = a->node->attrs.axis;
	size_t outer = a->n, len, inner = 1;

	if (ax < 0)
		ax += x->ndim;
	for (int d = 0; d < ax; d++)
		outer *= (size_t)x->shape[d];
	len = (size_t)x->shape[ax];
	for (int d = (int)ax + 1; d < x->ndim; d++)
		inner *= (size_t)x->shape[d];
	for (size_t o = 0; o < outer; o++) {
		for (size_t i = 0; i < inner; i++) {
			const float *xs = a->in[0] + o * len * inner + i;
			float *ys = a->out + o * len * inner + i;
			float m = xs[0];
			double sum = 0.0;

			for (size_t k = 1; k < len; k++)
				m = xs[k * inner] > m ? xs[k * inner] : m;
			for (size_t k = 0; k < len; k++) {
				ys[k * inner] = expf(xs[k * inner] - m);
				sum += ys[k * inner];
			}
			for (size_t k = 0; k < len; k++)
				ys[k * inner] = (float)(ys[k * inner] / sum);
		}
	}
}

/* Strides of t's per-sample shape seen in y's index space: dimensions t
 * lacks or has as 1 get stride 0 (numpy broadcasting). */
static void
broadcast_strides(const tm_tensor *t, const tm_tensor *y, size_t *st)
{
	size_t s = 1;

	for (int d = y->ndim - 1; d >= 0; d--) {
		int td = t->ndim - y->ndim + d;

		if (td < 0 || t->shape[td] == 1) {
			st[d] = 0;
		} else {
			st[d] = s;
		}
		if (td >= 0)
			s *= (size_t)t->shape[td];
	}
}

void
tm_priv_op_add(const tm_op_args *a)
{
	const tm_tensor *ta = a->m->tensors[a->node->inputs[0]];
	const tm_tensor *tb = a->m->tensors[a->node->inputs[1]];
	const tm_tensor *y = a->m->tensors[a->node->outputs[0]];
	const size_t ny = tm_tensor_numel(y);
	const size_t na = tm_tensor_numel(ta), nb = tm_tensor_numel(tb);
	/* A constant operand is the same for every sample. */
	const size_t step_a = ta->kind == TM_TENSOR_CONST ? 0 : na;
	const size_t step_b = tb->kind == TM_TENSOR_CONST ? 0 : nb;
	size_t sa[TM_MAX_DIMS], sb[TM_MAX_DIMS], idx[TM_MAX_DIMS];
	const int nd = y->ndim;
	size_t inner;

	if (na == ny && nb == ny) {
		for (size_t s = 0; s < a->n; s++) {
			const float *pa = a->in[0] + s * step_a;
			const float *pb = a->in[1] + s * step_b;
			float *py = a->out + s * ny;

			for (size_t k = 0; k < ny; k++)
				py[k] = pa[k] + pb[k];
		}
		return;
	}
	broadcast_strides(ta, y, sa);
	broadcast_strides(tb, y, sb);
	inner = nd ? (size_t)y->shape[nd - 1] : 1;
	for (size_t s = 0; s < a->n; s++) {
		const float *pa = a->in[0] + s * step_a;
		const float *pb = a->in[1] + s * step_b;
		float *py = a->out + s * ny;

		/* Odometer over every dimension but the last, a plain loop
		 * (with the operands' strides) over the last. */
		memset(idx, 0, sizeof idx);
		for (size_t row = 0; row < ny / (inner ? inner : 1); row++) {
			size_t oa = 0, ob = 0;

			for (int d = 0; d < nd - 1; d++) {
				oa += idx[d] * sa[d];
				ob += idx[d] * sb[d];
			}
			{
				const size_t ia = nd ? sa[nd - 1] : 0;
				const size_t ib = nd ? sb[nd - 1] : 0;

				for (size_t k = 0; k < inner; k++)
					py[row * inner + k] =
						pa[oa + k * ia] +
						pb[ob + k * ib];
			}
			for (int d = nd - 2; d >= 0; d--) {
				if (++idx[d] < (size_t)y->shape[d])
					break;
				idx[d] = 0;
			}
		}
	}
}
