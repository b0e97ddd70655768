/* tmpipe — float reference: max, average and global average pooling
 * (ONNX MaxPool, AveragePool, GlobalAveragePool; ceil_mode 0). */
#include "config.h"

#include <math.h>

#include "ops_priv.h"

typedef struct window {
	int64_t C, H, W, Ho, Wo, kh, kw, sh, sw, dh, dw, pt, pl;
} window;

static window
window_of(const tm_op_args *a)
{
	const tm_node *nd = a->node;
	const tm_tensor *x = a->m->tensors[nd->inputs[0]];
	const tm_tensor *y = a->m->tensors[nd->outputs[0]];
	window w = {
		x->shape[0], x->shape[1], x->shape[2], y->shape[1],
		y->shape[2], nd->attrs.kernel[0], nd->attrs.kernel[1],
		nd->attrs.stride[0], nd->attrs.stride[1],
		nd->attrs.dilation[0], nd->attrs.dilation[1],
		nd->attrs.pads[0], nd->attrs.pads[1]
	};

	return w;
}

/* The common 2x2 window, stride 2, no padding: no bounds to check. The
 * comparisons are made in the generic loop's order, so the result is the
 * same to the bit. */
static void
maxpool_2x2s2(const tm_op_args *a, const window *w)
{
	for (size_t s = 0; s < a->n * (size_t)w->C; s++) {
		const float *xc = a->in[0] + s * (size_t)(w->H * w->W);
		float *yc = a->out + s * (size_t)(w->Ho * w->Wo);

		for (int64_t oh = 0; oh < w->Ho; oh++) {
			const float *r0 = xc + 2 * oh * w->W;
			const float *r1 = r0 + w->W;

			for (int64_t ow = 0; ow < w->Wo; ow++) {
				float m = r0[2 * ow];

				m = r0[2 * ow + 1] > m ? r0[2 * ow + 1] : m;
				m = r1[2 * ow] > m ? r1[2 * ow] : m;
				m = r1[2 * ow + 1] > m ? r1[2 * ow + 1] : m;
				yc[oh * w->Wo + ow] = m;
			}
		}
	}
}

/* Padding never wins a max: ONNX pads MaxPool with -inf. */
void
tm_priv_op_maxpool2d(const tm_op_args *a)
{
	const window w = window_of(a);
	const int64_t *p = a->node->attrs.pads;

	if (w.kh == 2 && w.kw == 2 && w.sh == 2 && w.sw == 2 && w.dh == 1 &&
	    w.dw == 1 && !p[0] && !p[1] && !p[2] && !p[3]) {
		maxpool_2x2s2(a, &w);
		return;
	}
	for (size_t s = 0; s < a->n * (size_t)w.C; s++) {
		const float *xc = a->in[0] + s * (size_t)(w.H * w.W);
		float *yc = a->out + s * (size_t)(w.Ho * w.Wo);

		for (int64_t oh = 0; oh < w.Ho; oh++) {
			for (int64_t ow = 0; ow < w.Wo; ow++) {
				float m = -INFINITY;

				for (int64_t i = 0; i < w.kh; i++) {
					int64_t ih = oh * w.sh - w.pt + i * w.dh;

					if (ih < 0 || ih >= w.H)
						continue;
					for (int64_t j = 0; j < w.kw; j++) {
						int64_t iw = ow * w.sw - w.pl +
							     j * w.dw;
						float v;

						if (iw < 0 || iw >= w.W)
							continue;
						v = xc[ih * w.W + iw];
						m = v > m ? v : m;
					}
				}
				yc[oh * w.Wo + ow] = m;
			}
		}
	}
}

/* count_include_pad: divide by the whole window (padding counts as 0),
 * else by the cells inside the input. */
void
tm_priv_op_avgpool2d(const tm_op_args *a)
{
	const window w = window_of(a);
	const int incl = a->node->attrs.count_include_pad;

	for (size_t s = 0; s < a->n * (size_t)w.C; s++) {
		const float *xc = a->in[0] + s * (size_t)(w.H * w.W);
		float *yc = a->out + s * (size_t)(w.Ho * w.Wo);

		for (int64_t oh = 0; oh < w.Ho; oh++) {
			int64_t h0 = oh * w.sh - w.pt, h1 = h0 + w.kh;
			int64_t hs = h0 < 0 ? 0 : h0, he = h1 > w.H ? w.H : h1;

			for (int64_t ow = 0; ow < w.Wo; ow++) {
				int64_t w0 = ow * w.sw - w.pl, w1 = w0 + w.kw;
				int64_t ws = w0 < 0 ? 0 : w0;
				int64_t we = w1 > w.W ? w.W : w1;
				double sum = 0.0;
				int64_t cnt;

				for (int64_t ih = hs; ih < he; ih++)
					for (int64_t iw = ws; iw < we; iw++)
						sum += xc[ih * w.W + iw];
				if (incl) {
					/* The window clipped to the padded
					 * input, as ONNX counts it. */
					int64_t ph0 = h0 < -w.pt ? -w.pt : h0;
					int64_t ph1 = h1 > w.H + a->node->attrs.pads[2]
							      ? w.H + a->node->attrs.pads[2]
							      : h1;
					int64_t pw0 = w0 < -w.pl ? -w.pl : w0;
					int64_t pw1 = w1 > w.W + a->node->attrs.pads[3]
							      ? w.W + a->node->attrs.pads[3]
							      : w1;

					cnt = (ph1 - ph0) * (pw1 - pw0);
				} else {
					cnt = (he - hs) * (we - ws);
				}
				yc[oh * w.Wo + ow] =
					cnt > 0 ? (float)(sum / (double)cnt)
						: 0.0f;
			}
		}
	}
}

void
tm_priv_op_global_avgpool(const tm_op_args *a)
{
	const tm_tensor *x = a->m->tensors[a->node->inputs[0]];
	const size_t hw = (size_t)(x->shape[1] * x->shape[2]);

	for (size_t s = 0; s < a->n * (size_t)x->shape[0]; s++) {
		const float *xc = a->in[0] + s * hw;
		double sum = 0.0;

		for (size_t k = 0; k < hw; k++)
			sum += xc[k];
		a->out[s] = (float)(sum / (double)hw);
	}
}
