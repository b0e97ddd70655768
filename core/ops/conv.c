/* tmpipe — float reference: 2-D convolution (ONNX Conv, NCHW), as im2col
 * and one sgemm per sample and group. Pads are (top, left, bottom, right);
 * groups cover depthwise convolution (group = channels). */
#include "config.h"

#include <cblas.h>
#include <string.h>

#include "ops_priv.h"

/* The output columns [lo, hi) whose input column ow * sw + off lies in
 * [0, W): found once per kernel column, so the copy loop below has no
 * test (the per-element bounds check was half the time of a 3x3
 * convolution). */
static void
inside_cols(int64_t W, int64_t Wo, int64_t sw, int64_t off, int64_t *lo_out,
	    int64_t *hi_out)
{
	int64_t lo = off < 0 ? (-off + sw - 1) / sw : 0;
	int64_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;

	if (lo > Wo)
		lo = Wo;
	if (hi > Wo)
		hi = Wo;
	if (hi < lo)
		hi = lo;
	*lo_out = lo;
	*hi_out = hi;
}

/* r[ow] = row[ow * sw + off] on [lo, hi), 0 elsewhere (a memcpy at
 * stride 1). */
static void
fill_row(float *r, const float *row, int64_t Wo, int64_t sw, int64_t off,
	 int64_t lo, int64_t hi)
{
	memset(r, 0, (size_t)lo * sizeof *r);
	if (sw == 1) {
		memcpy(r + lo, row + lo + off, (size_t)(hi - lo) * sizeof *r);
	} else {
		for (int64_t ow = lo; ow < hi; ow++)
			r[ow] = row[ow * sw + off];
	}
	memset(r + hi, 0, (size_t)(Wo - hi) * sizeof *r);
}

/* col[(c kh kw), (oh ow)] for channels [0, cg) of x[C, H, W] starting at
 * channel c0; padding reads as 0. */
static void
im2col(const float *x, int64_t H, int64_t W, int64_t c0, int64_t cg,
       int64_t kh, int64_t kw, int64_t Ho, int64_t Wo, const tm_attrs *at,
       float *col)
{
	const int64_t sh = at->stride[0], sw = at->stride[1];
	const int64_t dh = at->dilation[0], dw = at->dilation[1];
	const int64_t pt = at->pads[0], pl = at->pads[1];

	for (int64_t c = 0; c < cg; c++) {
		const float *xc = x + (c0 + c) * H * W;

		for (int64_t i = 0; i < kh; i++) {
			for (int64_t j = 0; j < kw; j++) {
				float *row = col + ((c * kh + i) * kw + j) *
							   Ho * Wo;
				int64_t lo, hi;

				inside_cols(W, Wo, sw, j * dw - pl, &lo, &hi);

				for (int64_t oh = 0; oh < Ho; oh++) {
					int64_t ih = oh * sh - pt + i * dh;
					float *r = row + oh * Wo;

					if (ih < 0 || ih >= H) {
						memset(r, 0, (size_t)Wo *
								     sizeof *r);
						continue;
					}
					fill_row(r, xc + ih * W, Wo, sw,
						 j * dw - pl, lo, hi);
				}
			}
		}
	}
}

void
tm_priv_op_conv2d(const tm_op_args *a)
{
	const tm_node *nd = a->node;
	const tm_attrs *at = &nd->attrs;
	const tm_tensor *x = a->m->tensors[nd->inputs[0]];
	const tm_tensor *w = a->m->tensors[nd->inputs[1]];
	const tm_tensor *y = a->m->tensors[nd->outputs[0]];
	const float *b = nd->n_inputs > 2 ? a->in[2] : NULL;
	const int64_t C = x->shape[0], H = x->shape[1], W = x->shape[2];
	const int64_t O = w->shape[0], kh = w->shape[2], kw = w->shape[3];
	const int64_t Ho = y->shape[1], Wo = y->shape[2], g = at->group;
	const int64_t cg = C / g, og = O / g, K = cg * kh * kw;
	const int pointwise = kh == 1 && kw == 1 && at->stride[0] == 1 &&
			      at->stride[1] == 1 && at->pads[0] == 0 &&
			      at->pads[1] == 0 && at->pads[2] == 0 &&
			      at->pads[3] == 0;

	for (size_t s = 0; s < a->n; s++) {
		const float *xs = a->in[0] + s * (size_t)(C * H * W);
		float *ys = a->out + s * (size_t)(O * Ho * Wo);

		for (int64_t gi = 0; gi < g; gi++) {
			const float *col;
			float *yg = ys + gi * og * Ho * Wo;
			float beta = 0.0f;

			/* A 1x1 convolution with stride 1 and no padding
			 * reads the input as it is. */
			if (pointwise) {
				col = xs + gi * cg * H * W;
			} else {
				im2col(xs, H, W, gi * cg, cg, kh, kw, Ho, Wo,
				       at, a->scratch);
				col = a->scratch;
			}
			if (b) {
				for (int64_t o = 0; o < og; o++) {
					float bo = b[gi * og + o];
					float *r = yg + o * Ho * Wo;

					for (int64_t k = 0; k < Ho * Wo; k++)
						r[k] = bo;
				}
				beta = 1.0f;
			}
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
				    (int)og, (int)(Ho * Wo), (int)K, 1.0f,
				    a->in[1] + gi * og * K, (int)K, col,
				    (int)(Ho * Wo), beta, yg, (int)(Ho * Wo));
		}
	}
}
