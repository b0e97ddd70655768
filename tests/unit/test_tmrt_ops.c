/* tmpipe tests — libtmrt's int8 kernels beyond fully connected:
 * convolution (grouped and depthwise), max/average/global average
 * pooling, ADD, concat, table lookup and softmax.
 *
 * Each kernel is checked twice on random data from a seeded LCG: bit for
 * bit against a reference written here as plain nested loops with the
 * same tmrt_requantize, and against float math (inputs dequantized, the
 * op computed in double, the result quantized) to within one output
 * step. The host side (quantize_multiplier, activation parameters,
 * tables) follows QUANT.md and is written here too, so the test needs
 * nothing but libtmrt. Then the parameter checks: a rejected call must
 * leave its output untouched. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmrt/tmrt.h>

#include "runner.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ID_MULT 1073741824
#define ID_SHIFT (-1)

/* ---- Random data: a seeded LCG (Numerical Recipes), not rand() ---- */

static uint32_t lcg;

static void
seed(uint32_t s)
{
	lcg = s;
}

static uint32_t
next_u32(void)
{
	lcg = lcg * 1664525u + 1013904223u;
	return lcg;
}

/* Uniform in [0, 1), from the high bits. */
static double
unit(void)
{
	return (double)(next_u32() >> 8) / 16777216.0;
}

static double
uniform(double lo, double hi)
{
	return lo + (hi - lo) * unit();
}

static int8_t
rand_i8(void)
{
	return (int8_t)(int32_t)((next_u32() >> 24) - 128);
}

/* ---- Host-side quantization, as QUANT.md specifies it ---- */

typedef struct qp {
	double scale;
	int32_t zp;
} qp;

static int32_t
clamp32(long long v, int32_t lo, int32_t hi)
{
	return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

/* Activation parameters of the range [lo, hi]. */
static qp
act_qp(double lo, double hi)
{
	qp q;

	lo = lo < 0 ? lo : 0;
	hi = hi > 0 ? hi : 0;
	if (hi == lo) {
		q.scale = 1.0;
		q.zp = -128;
		return q;
	}
	q.scale = (hi - lo) / 255.0;
	q.zp = clamp32(lround(-128.0 - lo / q.scale), -128, 127);
	return q;
}

static int8_t
quant(double x, qp q)
{
	return (int8_t)clamp32(lround(x / q.scale) + q.zp, -128, 127);
}

static double
deq(int8_t v, qp q)
{
	return q.scale * ((int32_t)v - q.zp);
}

/* M = m 2^e, m in [0.5, 1): (lround(m 2^31), -e), 2^31 carried. */
static void
quantize_multiplier(double M, int32_t *mult, int32_t *shift)
{
	int e;
	double m;
	long long q;

	if (M == 0.0) {
		*mult = 0;
		*shift = 0;
		return;
	}
	m = frexp(M, &e);
	q = llround(m * 2147483648.0);
	if (q == 2147483648LL) {
		q = 1 << 30;
		e++;
	}
	if (e < -31) {
		/* Below 2^-31: flushed to 0, as TFLite does. */
		*mult = 0;
		*shift = 0;
		return;
	}
	*mult = (int32_t)q;
	*shift = -e;
}

/* Symmetric weights, zp 0, -127 ... 127. */
static double
weight_scale(const double *w, size_t n)
{
	double m = 0.0;
	size_t i;

	for (i = 0; i < n; i++)
		m = fabs(w[i]) > m ? fabs(w[i]) : m;
	return m > 0.0 ? m / 127.0 : 1.0;
}

/* ---- Comparison helpers: one assertion per array ---- */

/* Asserts |got - want| <= tol everywhere; prints the first difference. */
static void
check_close(const char *what, const int8_t *got, const int8_t *want,
	    size_t n, int tol)
{
	size_t i, bad = 0, first = 0;

	for (i = 0; i < n; i++) {
		if (abs((int)got[i] - (int)want[i]) > tol) {
			if (!bad)
				first = i;
			bad++;
		}
	}
	if (bad)
		fprintf(stderr,
			"\n%s: %zu of %zu values off by more than %d; "
			"first at %zu: got %d, want %d\n",
			what, bad, n, tol, first, got[first], want[first]);
	CU_ASSERT_EQUAL(bad, 0);
}

#define CHECK_EXACT(what, got, want, n) check_close(what, got, want, n, 0)
#define CHECK_STEP(what, got, want, n) check_close(what, got, want, n, 1)

/* Output extent of a window axis (ONNX, floor). */
static int32_t
out_extent(int32_t in, int32_t k, int32_t s, int32_t d, int32_t p0,
	   int32_t p1)
{
	return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

static int32_t
numel(tmrt_dims d)
{
	return d.n * d.h * d.w * d.c;
}

/* Index of (n, h, w, c) in an NHWC tensor of dims d. */
static size_t
at(tmrt_dims d, int32_t n, int32_t h, int32_t w, int32_t c)
{
	return (((size_t)n * d.h + h) * d.w + w) * d.c + c;
}

/* ==== Convolution ==== */

typedef struct conv_case {
	const char *name;
	int32_t n, h, w, c, o;
	int32_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups;
	int per_channel;
	int relu;	/* 1: ReLU; 2: ReLU6-like clip to [0, hi / 4] (a cap
			 * the data reaches, folded like ReLU6's 6) */
} conv_case;

/* A quantized convolution made from float data the way tmpipe makes
 * one, with its weights in ONNX's OIHW layout ([o][c/g][kh][kw]). */
typedef struct conv_model {
	tmrt_dims in_d, out_d;
	int8_t *x, *w_oihw, *y_ref, *y_float;
	int32_t *bias, *mult, *shift;
	qp in_q, out_q;
	int32_t act_min, act_max;
} conv_model;

static void
conv_model_free(conv_model *m)
{
	free(m->x);
	free(m->w_oihw);
	free(m->y_ref);
	free(m->y_float);
	free(m->bias);
	free(m->mult);
	free(m->shift);
}

static tmrt_conv_params
conv_params(const conv_case *cc, const conv_model *m)
{
	tmrt_conv_params p;

	memset(&p, 0, sizeof p);
	p.input = m->in_d;
	p.output = m->out_d;
	p.kernel_h = cc->kh;
	p.kernel_w = cc->kw;
	p.stride_h = cc->sh;
	p.stride_w = cc->sw;
	p.dilation_h = cc->dh;
	p.dilation_w = cc->dw;
	p.pad_top = cc->pt;
	p.pad_left = cc->pl;
	p.pad_bottom = cc->pb;
	p.pad_right = cc->pr;
	p.groups = cc->groups;
	p.bias = m->bias;
	p.input_zp = m->in_q.zp;
	p.output_zp = m->out_q.zp;
	p.multiplier = m->mult;
	p.shift = m->shift;
	p.n_requant = cc->per_channel ? cc->o : 1;
	p.act_min = m->act_min;
	p.act_max = m->act_max;
	return p;
}

/* The emitter's relayouts: OIHW -> OHWI (conv2d) and, for one input
 * channel per group, OIHW -> [kh][kw][O] (depthwise). */
static int8_t *
to_ohwi(const conv_case *cc, const int8_t *w)
{
	const int32_t cg = cc->c / cc->groups;
	int8_t *r = malloc((size_t)cc->o * cc->kh * cc->kw * cg);
	int32_t o, k, i, j;

	if (!r)
		return NULL;
	for (o = 0; o < cc->o; o++)
		for (k = 0; k < cg; k++)
			for (i = 0; i < cc->kh; i++)
				for (j = 0; j < cc->kw; j++)
					r[((o * cc->kh + i) * cc->kw + j) * cg +
					  k] = w[((o * cg + k) * cc->kh + i) *
							 cc->kw +
						 j];
	return r;
}

static int8_t *
to_dw(const conv_case *cc, const int8_t *w)
{
	int8_t *r = malloc((size_t)cc->o * cc->kh * cc->kw);
	int32_t o, i, j;

	if (!r)
		return NULL;
	for (o = 0; o < cc->o; o++)
		for (i = 0; i < cc->kh; i++)
			for (j = 0; j < cc->kw; j++)
				r[(i * cc->kw + j) * cc->o + o] =
					w[(o * cc->kh + i) * cc->kw + j];
	return r;
}

/* Builds the model, the integer reference output and the float one. */
static int
conv_model_make(const conv_case *cc, uint32_t s, conv_model *m)
{
	const int32_t cg = cc->c / cc->groups, og = cc->o / cc->groups;
	const int32_t wper = cg * cc->kh * cc->kw;
	double *wf = NULL, *bf = NULL, *real = NULL, *sw = NULL;
	double lo = 0, hi = 0;
	int32_t n, oh, ow, o, k, i, j, ny;
	int ok = 0;

	memset(m, 0, sizeof *m);
	seed(s);
	m->in_d.n = cc->n;
	m->in_d.h = cc->h;
	m->in_d.w = cc->w;
	m->in_d.c = cc->c;
	m->out_d.n = cc->n;
	m->out_d.h = out_extent(cc->h, cc->kh, cc->sh, cc->dh, cc->pt, cc->pb);
	m->out_d.w = out_extent(cc->w, cc->kw, cc->sw, cc->dw, cc->pl, cc->pr);
	m->out_d.c = cc->o;
	ny = numel(m->out_d);
	m->x = malloc((size_t)numel(m->in_d));
	m->w_oihw = malloc((size_t)cc->o * wper);
	m->y_ref = malloc((size_t)ny);
	m->y_float = malloc((size_t)ny);
	m->bias = malloc((size_t)cc->o * sizeof *m->bias);
	m->mult = malloc((size_t)cc->o * sizeof *m->mult);
	m->shift = malloc((size_t)cc->o * sizeof *m->shift);
	wf = malloc((size_t)cc->o * wper * sizeof *wf);
	bf = malloc((size_t)cc->o * sizeof *bf);
	sw = malloc((size_t)cc->o * sizeof *sw);
	real = malloc((size_t)ny * sizeof *real);
	if (!m->x || !m->w_oihw || !m->y_ref || !m->y_float || !m->bias ||
	    !m->mult || !m->shift || !wf || !bf || !sw || !real)
		goto done;

	/* Input: floats in [-1, 2), quantized with their minmax range. */
	m->in_q = act_qp(-1.0, 2.0);
	for (i = 0; i < numel(m->in_d); i++)
		m->x[i] = quant(uniform(-1.0, 2.0), m->in_q);
	/* Weights with a different range per output channel, so that per
	 * channel and per tensor differ. */
	for (o = 0; o < cc->o; o++)
		for (k = 0; k < wper; k++)
			wf[o * wper + k] = uniform(-1.0, 1.0) * (0.2 + 0.3 * o);
	for (o = 0; o < cc->o; o++) {
		sw[o] = cc->per_channel
				? weight_scale(wf + o * wper, (size_t)wper)
				: weight_scale(wf, (size_t)cc->o * wper);
		for (k = 0; k < wper; k++)
			m->w_oihw[o * wper + k] = (int8_t)clamp32(
				lround(wf[o * wper + k] / sw[o]), -127, 127);
		bf[o] = uniform(-0.5, 0.5);
		m->bias[o] = (int32_t)lround(bf[o] / (m->in_q.scale * sw[o]));
	}

	/* The float result from the dequantized values, in double. */
	for (n = 0; n < cc->n; n++)
	for (oh = 0; oh < m->out_d.h; oh++)
	for (ow = 0; ow < m->out_d.w; ow++)
	for (o = 0; o < cc->o; o++) {
		double acc = m->bias[o] * m->in_q.scale * sw[o];
		const int32_t g = o / og;

		for (k = 0; k < cg; k++)
		for (i = 0; i < cc->kh; i++)
		for (j = 0; j < cc->kw; j++) {
			const int32_t ih = oh * cc->sh - cc->pt + i * cc->dh;
			const int32_t iw = ow * cc->sw - cc->pl + j * cc->dw;

			if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w)
				continue;
			acc += m->w_oihw[((o * cg + k) * cc->kh + i) * cc->kw +
					 j] *
			       sw[o] *
			       deq(m->x[at(m->in_d, n, ih, iw, g * cg + k)],
				   m->in_q);
		}
		/* The range of the values before ReLU, so that the folded
		 * clamp (act_min = zp_out > -128) has work to do. */
		lo = acc < lo ? acc : lo;
		hi = acc > hi ? acc : hi;
		if (cc->relu && acc < 0)
			acc = 0;
		real[at(m->out_d, n, oh, ow, o)] = acc;
	}
	m->out_q = act_qp(lo, hi);
	m->act_min = cc->relu ? m->out_q.zp : -128;
	m->act_max = 127;
	if (cc->relu == 2) {
		/* As ReLU6: act_max = lround(cap / s_out) + zp_out. */
		const double cap = hi / 4;

		m->act_max = clamp32(lround(cap / m->out_q.scale) + m->out_q.zp,
				     -128, 127);
		for (i = 0; i < ny; i++)
			real[i] = real[i] > cap ? cap : real[i];
	}
	for (i = 0; i < ny; i++)
		m->y_float[i] = quant(real[i], m->out_q);
	for (o = 0; o < cc->o; o++)
		quantize_multiplier(m->in_q.scale * sw[o] / m->out_q.scale,
				    &m->mult[o], &m->shift[o]);

	/* The integer reference: the definition, loop by loop. */
	for (n = 0; n < cc->n; n++)
	for (oh = 0; oh < m->out_d.h; oh++)
	for (ow = 0; ow < m->out_d.w; ow++)
	for (o = 0; o < cc->o; o++) {
		const int32_t g = o / og, r = cc->per_channel ? o : 0;
		int64_t acc = m->bias[o];

		for (k = 0; k < cg; k++)
		for (i = 0; i < cc->kh; i++)
		for (j = 0; j < cc->kw; j++) {
			const int32_t ih = oh * cc->sh - cc->pt + i * cc->dh;
			const int32_t iw = ow * cc->sw - cc->pl + j * cc->dw;

			if (ih < 0 || ih >= cc->h || iw < 0 || iw >= cc->w)
				continue;
			acc += m->w_oihw[((o * cg + k) * cc->kh + i) * cc->kw +
					 j] *
			       (m->x[at(m->in_d, n, ih, iw, g * cg + k)] -
				m->in_q.zp);
		}
		m->y_ref[at(m->out_d, n, oh, ow, o)] =
			(int8_t)tmrt_requantize((int32_t)acc, m->mult[r],
						m->shift[r], m->out_q.zp,
						m->act_min, m->act_max);
	}
	ok = 1;
done:
	free(wf);
	free(bf);
	free(sw);
	free(real);
	if (!ok)
		conv_model_free(m);
	return ok;
}

static const conv_case conv_cases[] = {
	/* name n h w c o  kh kw sh sw dh dw pt pl pb pr g  pc relu */
	{ "1x1", 2, 5, 3, 4, 6, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0 },
	{ "1x1 per channel", 1, 4, 4, 8, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
	  1, 0 },
	{ "3x3 stride 2 asymmetric pads", 1, 7, 6, 3, 5, 3, 3, 2, 2, 1, 1, 1,
	  0, 2, 1, 1, 1, 0 },
	{ "3x3 dilation 2 relu", 1, 9, 8, 2, 3, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2,
	  1, 1, 1 },
	{ "2x3 grouped non-square", 1, 6, 7, 4, 6, 2, 3, 1, 2, 1, 1, 0, 1, 1,
	  0, 2, 1, 0 },
	{ "depthwise as groups", 2, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1,
	  3, 0, 0 },
	{ "1x5 mixed strides and dilations relu6", 1, 5, 11, 5, 2, 1, 5, 2, 1,
	  1, 2, 0, 3, 1, 2, 1, 0, 2 },
	{ "kernel wider than input", 1, 2, 2, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1,
	  1, 1, 1, 0 },
	{ "stride 3 over 2x2", 1, 8, 8, 3, 4, 2, 2, 3, 3, 1, 1, 0, 0, 0, 0, 1,
	  1, 0 },
	{ "grouped 3 groups per tensor", 1, 5, 4, 6, 9, 3, 2, 2, 1, 1, 2, 1,
	  2, 0, 1, 3, 0, 1 },
	/* Pairs of output pixels with both windows whole in the buffer
	 * (2 kh kw C <= 256): odd widths leave one pixel to pixel_dense,
	 * output channels not a multiple of 4 take the single loop. */
	{ "pairs 3x3 c3 odd width pads", 2, 9, 11, 3, 7, 3, 3, 1, 1, 1, 1, 1,
	  2, 2, 0, 1, 1, 1 },
	{ "pairs c1 5x5 pad 2", 1, 8, 10, 1, 5, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2,
	  1, 1, 0 },
	{ "pairs 1x1 c40 stride 2", 1, 3, 9, 40, 4, 1, 1, 2, 2, 1, 1, 0, 0, 0,
	  0, 1, 1, 0 },
	{ "pairs c3 stride 2 pads right", 1, 6, 8, 3, 1, 3, 3, 2, 2, 1, 1, 0,
	  0, 1, 2, 1, 0, 2 },
	{ "pairs kernel wider than input c3", 1, 2, 2, 3, 5, 3, 3, 1, 1, 1, 1,
	  1, 1, 1, 1, 1, 1, 0 },
	/* Pairs in one strip of kh rows of (stride_w + kw) pixels (2 kh kw
	 * C > 256 >= kh (sw + kw) C). */
	{ "pairs strip 3x3 c16 pad 1", 1, 6, 7, 16, 9, 3, 3, 1, 1, 1, 1, 1, 1,
	  1, 1, 1, 1, 1 },
	{ "pairs strip 3x3 c16 stride 2 asymmetric pads", 1, 7, 9, 16, 6, 3,
	  3, 2, 2, 1, 1, 0, 1, 2, 2, 1, 0, 0 },
	{ "pairs strip 1x3 c48", 1, 3, 6, 48, 5, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1,
	  1, 1, 0 },
	{ "pairs strip 4x2 c20 pads", 2, 5, 5, 20, 3, 4, 2, 1, 1, 1, 1, 2, 1,
	  1, 0, 1, 0, 1 },
	/* Eight output pixels a pass for windows of at most 32 taps; the
	 * rest of each row in pairs, then one pixel. */
	{ "octs 3x3 c3 stride 2 pads", 1, 5, 21, 3, 6, 3, 3, 2, 2, 1, 1, 1, 1,
	  1, 1, 1, 1, 1 },
	{ "octs 1x1 c32 (32 taps)", 1, 2, 17, 32, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0,
	  0, 1, 0, 0 },
	{ "pairs 3x1 c11 (33 taps)", 1, 4, 9, 11, 4, 3, 1, 1, 1, 1, 1, 1, 0, 1,
	  0, 1, 1, 0 },
	/* Windows wholly in the padding (rows and columns), each path. */
	{ "pairs window all padding", 1, 3, 3, 2, 3, 2, 2, 1, 1, 1, 1, 3, 0,
	  3, 3, 1, 1, 0 },
	{ "pairs strip all padding", 1, 2, 2, 16, 3, 3, 3, 1, 1, 1, 1, 3, 3,
	  3, 3, 1, 0, 0 },
	{ "octs all padding", 1, 3, 3, 1, 2, 3, 3, 1, 1, 1, 1, 4, 4, 4, 4, 1,
	  0, 0 },
	/* Too wide for the buffer either way: pixel_dense only. */
	{ "3x3 c64 one pixel at a time", 1, 4, 5, 64, 6, 3, 3, 1, 1, 1, 1, 1,
	  1, 1, 1, 1, 1, 0 },
};

static void
test_conv2d(void)
{
	size_t t;

	for (t = 0; t < LEN(conv_cases); t++) {
		const conv_case *cc = &conv_cases[t];
		conv_model m;
		tmrt_conv_params p;
		int8_t *w, *y;
		char what[128];

		if (!conv_model_make(cc, 1000u + (uint32_t)t, &m)) {
			CU_FAIL("out of memory");
			continue;
		}
		w = to_ohwi(cc, m.w_oihw);
		y = malloc((size_t)numel(m.out_d));
		if (!w || !y) {
			CU_FAIL("out of memory");
			goto next;
		}
		p = conv_params(cc, &m);
		p.weights = w;
		CU_ASSERT_EQUAL(tmrt_conv2d_s8(&p, m.x, y), TMRT_OK);
		snprintf(what, sizeof what, "conv2d %s vs reference", cc->name);
		CHECK_EXACT(what, y, m.y_ref, (size_t)numel(m.out_d));
		snprintf(what, sizeof what, "conv2d %s vs float", cc->name);
		CHECK_STEP(what, y, m.y_float, (size_t)numel(m.out_d));
next:
		free(w);
		free(y);
		conv_model_free(&m);
	}
}

static const conv_case dw_cases[] = {
	/* name n h w c o  kh kw sh sw dh dw pt pl pb pr g  pc relu */
	{ "multiplier 2 stride 2 asymmetric pads", 1, 7, 6, 3, 6, 3, 3, 2, 2,
	  1, 1, 1, 0, 2, 1, 3, 1, 0 },
	{ "multiplier 1 dilation 2 relu", 1, 8, 9, 4, 4, 3, 3, 1, 1, 2, 2, 2,
	  2, 2, 2, 4, 0, 1 },
	{ "multiplier 3 1x1", 2, 3, 5, 2, 6, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2,
	  1, 0 },
	{ "multiplier 2 non-square relu6", 2, 6, 7, 3, 6, 2, 3, 1, 2, 2, 1, 0,
	  1, 1, 0, 3, 1, 2 },
	{ "multiplier 1 stride 2 per tensor", 1, 10, 10, 5, 5, 3, 3, 2, 2, 1,
	  1, 0, 0, 1, 1, 5, 0, 0 },
};

static void
test_depthwise(void)
{
	size_t t;

	for (t = 0; t < LEN(dw_cases); t++) {
		const conv_case *cc = &dw_cases[t];
		conv_model m;
		tmrt_conv_params p;
		int8_t *w_dw, *w_ohwi, *y, *y2;
		char what[128];

		if (!conv_model_make(cc, 2000u + (uint32_t)t, &m)) {
			CU_FAIL("out of memory");
			continue;
		}
		w_dw = to_dw(cc, m.w_oihw);
		w_ohwi = to_ohwi(cc, m.w_oihw);
		y = malloc((size_t)numel(m.out_d));
		y2 = malloc((size_t)numel(m.out_d));
		if (!w_dw || !w_ohwi || !y || !y2) {
			CU_FAIL("out of memory");
			goto next;
		}
		p = conv_params(cc, &m);
		p.weights = w_dw;
		CU_ASSERT_EQUAL(tmrt_depthwise_conv2d_s8(&p, m.x, y), TMRT_OK);
		snprintf(what, sizeof what, "depthwise %s vs reference",
			 cc->name);
		CHECK_EXACT(what, y, m.y_ref, (size_t)numel(m.out_d));
		snprintf(what, sizeof what, "depthwise %s vs float", cc->name);
		CHECK_STEP(what, y, m.y_float, (size_t)numel(m.out_d));
		/* The grouped kernel on the same model agrees. */
		p.weights = w_ohwi;
		CU_ASSERT_EQUAL(tmrt_conv2d_s8(&p, m.x, y2), TMRT_OK);
		snprintf(what, sizeof what, "depthwise %s vs grouped conv2d",
			 cc->name);
		CHECK_EXACT(what, y2, y, (size_t)numel(m.out_d));
next:
		free(w_dw);
		free(w_ohwi);
		free(y);
		free(y2);
		conv_model_free(&m);
	}
}

/* A hand-checked convolution: 3x3 input 1..9 (zp 0), a 2x2 kernel of
 * ones, stride 1, pad 1 on the top and left only, M = 1.0. */
static void
test_conv2d_known(void)
{
	static const int8_t x[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	static const int8_t w[4] = { 1, 1, 1, 1 };
	static const int32_t mult[1] = { ID_MULT }, shift[1] = { ID_SHIFT };
	static const int8_t want[9] = { 1, 3, 5, 5, 12, 16, 11, 24, 28 };
	tmrt_conv_params p;
	int8_t y[9];

	memset(&p, 0, sizeof p);
	p.input.n = p.output.n = 1;
	p.input.h = p.input.w = p.output.h = p.output.w = 3;
	p.input.c = p.output.c = 1;
	p.kernel_h = p.kernel_w = 2;
	p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
	p.pad_top = p.pad_left = 1;
	p.groups = 1;
	p.weights = w;
	p.multiplier = mult;
	p.shift = shift;
	p.n_requant = 1;
	p.act_min = -128;
	p.act_max = 127;
	CU_ASSERT_EQUAL(tmrt_conv2d_s8(&p, x, y), TMRT_OK);
	CHECK_EXACT("conv2d known", y, want, 9);
	/* The same as a depthwise kernel (one channel, multiplier 1). */
	CU_ASSERT_EQUAL(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_OK);
	CHECK_EXACT("depthwise known", y, want, 9);
	/* An input zero point of 1: every inside tap is one less. */
	{
		static const int8_t want1[9] = { 0, 1, 3, 3, 8, 12, 9, 20,
						 24 };

		p.input_zp = 1;
		CU_ASSERT_EQUAL(tmrt_conv2d_s8(&p, x, y), TMRT_OK);
		CHECK_EXACT("conv2d known zp 1", y, want1, 9);
	}
}

/* ==== Pooling ==== */

typedef struct pool_case {
	const char *name;
	int32_t n, h, w, c;
	int32_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
	int same_q, relu;
} pool_case;

static const pool_case pool_cases[] = {
	/* name n h w c  kh kw sh sw dh dw pt pl pb pr same relu */
	{ "2x2 stride 2", 1, 6, 8, 3, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0 },
	{ "2x2 stride 2 requantized", 2, 6, 8, 3, 2, 2, 2, 2, 1, 1, 0, 0, 0,
	  0, 0, 0 },
	{ "3x3 stride 2 asymmetric pads", 1, 7, 6, 4, 3, 3, 2, 2, 1, 1, 1, 0,
	  2, 1, 1, 0 },
	{ "3x3 stride 2 asymmetric pads requantized", 1, 7, 6, 4, 3, 3, 2, 2,
	  1, 1, 1, 0, 2, 1, 0, 0 },
	{ "3x2 dilation 2", 1, 9, 7, 2, 3, 2, 1, 1, 2, 2, 2, 1, 0, 2, 1, 0 },
	{ "3x2 dilation 2 requantized relu", 2, 9, 7, 2, 3, 2, 1, 1, 2, 2, 2,
	  1, 0, 2, 0, 1 },
	{ "1x1 stride 2", 1, 5, 5, 5, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0 },
	{ "5x1 non-square", 1, 8, 3, 3, 5, 1, 1, 1, 1, 1, 2, 0, 2, 0, 0, 0 },
	{ "pads as wide as the window", 1, 4, 4, 2, 3, 3, 1, 1, 1, 1, 2, 2,
	  2, 2, 0, 0 },
};

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_AVG_PAD } pool_kind;

/* Pooling of one window of the float (dequantized) input, and the
 * integer reference per tmrt.h; both by the definition. */
static void
pool_one(const pool_case *pc, pool_kind kind, const tmrt_pool_params *p,
	 const int8_t *x, qp in_q, int32_t n, int32_t oh, int32_t ow,
	 int32_t c, double *real, int8_t *ref)
{
	const tmrt_dims d = p->input;
	double fmax = -HUGE_VAL, fsum = 0.0;
	int32_t qmax = -129, sum = 0, count = 0, i, j;

	for (i = 0; i < pc->kh; i++)
		for (j = 0; j < pc->kw; j++) {
			const int32_t ih = oh * pc->sh - pc->pt + i * pc->dh;
			const int32_t iw = ow * pc->sw - pc->pl + j * pc->dw;
			int8_t v;

			if (kind == POOL_AVG_PAD && ih >= -pc->pt &&
			    ih < pc->h + pc->pb && iw >= -pc->pl &&
			    iw < pc->w + pc->pr)
				count++;
			if (ih < 0 || ih >= pc->h || iw < 0 || iw >= pc->w)
				continue;
			if (kind == POOL_AVG)
				count++;
			v = x[at(d, n, ih, iw, c)];
			qmax = v > qmax ? v : qmax;
			fmax = deq(v, in_q) > fmax ? deq(v, in_q) : fmax;
			sum += v - p->input_zp;
			fsum += deq(v, in_q);
		}
	if (kind == POOL_MAX) {
		*real = fmax;
		if (qmax == -129)
			*ref = (int8_t)p->act_min;
		else
			*ref = (int8_t)tmrt_requantize(qmax - p->input_zp,
						       p->multiplier, p->shift,
						       p->output_zp,
						       p->act_min, p->act_max);
		return;
	}
	*real = count ? fsum / count : 0.0;
	if (count == 0) {
		*ref = (int8_t)clamp32(p->output_zp, p->act_min, p->act_max);
	} else if (pc->same_q) {
		/* TFLite: the raw values (padding as input_zp) averaged,
		 * rounded half away from zero. */
		long long raw = sum + (long long)count * p->input_zp;
		long long r = raw >= 0 ? (raw + count / 2) / count
				       : -((-raw + count / 2) / count);

		*ref = (int8_t)clamp32(r, p->act_min, p->act_max);
	} else {
		long long a = (long long)sum * 65536;
		long long r = a >= 0 ? (a + count / 2) / count
				     : -((-a + count / 2) / count);

		*ref = (int8_t)tmrt_requantize((int32_t)r, p->multiplier,
					       p->shift + 16, p->output_zp,
					       p->act_min, p->act_max);
	}
}

static void
run_pool(pool_kind kind)
{
	static const char *const kind_name[] = { "max", "avg",
						 "avg count_include_pad" };
	size_t t;

	for (t = 0; t < LEN(pool_cases); t++) {
		const pool_case *pc = &pool_cases[t];
		tmrt_pool_params p;
		int8_t *x, *y, *y_ref, *y_float;
		double *real, lo = 0, hi = 0;
		int32_t nx, ny, n, oh, ow, c, i;
		qp in_q, out_q;
		char what[160];

		memset(&p, 0, sizeof p);
		p.input.n = p.output.n = pc->n;
		p.input.h = pc->h;
		p.input.w = pc->w;
		p.input.c = p.output.c = pc->c;
		p.output.h = out_extent(pc->h, pc->kh, pc->sh, pc->dh, pc->pt,
					pc->pb);
		p.output.w = out_extent(pc->w, pc->kw, pc->sw, pc->dw, pc->pl,
					pc->pr);
		p.kernel_h = pc->kh;
		p.kernel_w = pc->kw;
		p.stride_h = pc->sh;
		p.stride_w = pc->sw;
		p.dilation_h = pc->dh;
		p.dilation_w = pc->dw;
		p.pad_top = pc->pt;
		p.pad_left = pc->pl;
		p.pad_bottom = pc->pb;
		p.pad_right = pc->pr;
		p.count_include_pad = kind == POOL_AVG_PAD;
		nx = numel(p.input);
		ny = numel(p.output);
		x = malloc((size_t)nx);
		y = malloc((size_t)ny);
		y_ref = malloc((size_t)ny);
		y_float = malloc((size_t)ny);
		real = malloc((size_t)ny * sizeof *real);
		if (!x || !y || !y_ref || !y_float || !real) {
			CU_FAIL("out of memory");
			goto next;
		}
		seed(3000u + (uint32_t)t * 3 + (uint32_t)kind);
		in_q = act_qp(-1.5, 3.0);
		for (i = 0; i < nx; i++)
			x[i] = quant(uniform(-1.5, 3.0), in_q);
		p.input_zp = in_q.zp;
		/* First pass: the float outputs, for the output range. */
		p.output_zp = in_q.zp;
		p.multiplier = ID_MULT;
		p.shift = ID_SHIFT;
		p.act_min = -128;
		p.act_max = 127;
		for (n = 0; n < pc->n; n++)
		for (oh = 0; oh < p.output.h; oh++)
		for (ow = 0; ow < p.output.w; ow++)
		for (c = 0; c < pc->c; c++) {
			double r;
			int8_t q;

			pool_one(pc, kind, &p, x, in_q, n, oh, ow, c, &r, &q);
			/* The range before ReLU: the folded clamp bites. */
			if (r > -HUGE_VAL) {
				lo = r < lo ? r : lo;
				hi = r > hi ? r : hi;
			}
			if (pc->relu && r < 0)
				r = 0;
			real[at(p.output, n, oh, ow, c)] = r;
		}
		if (pc->same_q) {
			out_q = in_q;
		} else {
			/* Its own observer: a narrower range, M > 1. */
			out_q = act_qp(lo, hi);
			quantize_multiplier(in_q.scale / out_q.scale,
					    &p.multiplier, &p.shift);
			p.output_zp = out_q.zp;
		}
		if (pc->relu)
			p.act_min = out_q.zp;
		for (n = 0; n < pc->n; n++)
		for (oh = 0; oh < p.output.h; oh++)
		for (ow = 0; ow < p.output.w; ow++)
		for (c = 0; c < pc->c; c++) {
			const size_t k = at(p.output, n, oh, ow, c);
			double r;

			pool_one(pc, kind, &p, x, in_q, n, oh, ow, c, &r,
				 &y_ref[k]);
			/* -inf (an empty max window) quantizes to -128. */
			y_float[k] = real[k] > -HUGE_VAL ? quant(real[k], out_q)
							 : -128;
			if (y_float[k] < p.act_min)
				y_float[k] = (int8_t)p.act_min;
		}
		CU_ASSERT_EQUAL(kind == POOL_MAX
					? tmrt_max_pool2d_s8(&p, x, y)
					: tmrt_avg_pool2d_s8(&p, x, y),
				TMRT_OK);
		snprintf(what, sizeof what, "%s pool %s vs reference",
			 kind_name[kind], pc->name);
		CHECK_EXACT(what, y, y_ref, (size_t)ny);
		snprintf(what, sizeof what, "%s pool %s vs float",
			 kind_name[kind], pc->name);
		/* The max of the same grid is exact. */
		check_close(what, y, y_float, (size_t)ny,
			    kind == POOL_MAX && pc->same_q ? 0 : 1);
next:
		free(x);
		free(y);
		free(y_ref);
		free(y_float);
		free(real);
	}
}

static void
test_max_pool(void)
{
	run_pool(POOL_MAX);
}

static void
test_avg_pool(void)
{
	run_pool(POOL_AVG);
}

static void
test_avg_pool_include_pad(void)
{
	run_pool(POOL_AVG_PAD);
}

/* Hand-checked pools: TFLite's rounding of the raw average, padding
 * counted or not, and the empty max window. */
static void
test_pool_known(void)
{
	tmrt_pool_params p;
	int8_t y[4];

	memset(&p, 0, sizeof p);
	p.input.n = p.output.n = 1;
	p.input.h = 1;
	p.input.w = 2;
	p.input.c = p.output.c = 1;
	p.output.h = p.output.w = 1;
	p.kernel_h = 1;
	p.kernel_w = 2;
	p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
	p.multiplier = ID_MULT;
	p.shift = ID_SHIFT;
	p.act_min = -128;
	p.act_max = 127;
	{
		/* 1.5 -> 2, -1.5 -> -2, and with zp 3 the raw 2.5 -> 3
		 * (TFLite averages raw values; the real average is -0.5). */
		static const int8_t a[2] = { 1, 2 }, b[2] = { -1, -2 };
		static const int8_t c[2] = { 2, 3 };

		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, a, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 2);
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, b, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], -2);
		p.input_zp = p.output_zp = 3;
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, c, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 3);
		CU_ASSERT_EQUAL(tmrt_max_pool2d_s8(&p, c, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 3);
		/* ReLU folded in: the clamp at act_min. */
		p.act_min = 5;
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, c, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 5);
		p.act_min = -128;
		/* Requantized, M = 2 (1073741824, -2): 2 * (-0.5) = -1,
		 * + zp 0. */
		p.multiplier = ID_MULT;
		p.shift = -2;
		p.output_zp = 0;
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, c, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], -1);
		CU_ASSERT_EQUAL(tmrt_max_pool2d_s8(&p, c, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 0);
	}
	{
		/* 2x2 of 4s (zp 0), 2x2 window, stride 2, pad 1 each side:
		 * corner windows hold one input value and three pads. */
		static const int8_t x[4] = { 4, 8, 12, 16 };
		static const int8_t excl[4] = { 4, 8, 12, 16 };
		static const int8_t incl[4] = { 1, 2, 3, 4 };

		memset(&p, 0, sizeof p);
		p.input.n = p.output.n = 1;
		p.input.h = p.input.w = 2;
		p.output.h = p.output.w = 2;
		p.input.c = p.output.c = 1;
		p.kernel_h = p.kernel_w = 2;
		p.stride_h = p.stride_w = 2;
		p.dilation_h = p.dilation_w = 1;
		p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
		p.multiplier = ID_MULT;
		p.shift = ID_SHIFT;
		p.act_min = -128;
		p.act_max = 127;
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, x, y), TMRT_OK);
		CHECK_EXACT("avg exclude pad", y, excl, 4);
		p.count_include_pad = 1;
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, x, y), TMRT_OK);
		CHECK_EXACT("avg include pad", y, incl, 4);
	}
	{
		/* One row, a 2-tap window dilated by 2 with one pad on each
		 * side: taps -1 and 1, both padding. Max gives act_min (the
		 * quantized -inf), average the real 0 (output_zp) or, with
		 * the padding counted, 0 / 2 = 0 as well. */
		static const int8_t x[1] = { 100 };

		memset(&p, 0, sizeof p);
		p.input.n = p.output.n = 1;
		p.input.h = p.input.w = p.output.h = p.output.w = 1;
		p.input.c = p.output.c = 1;
		p.kernel_h = 2;
		p.kernel_w = 1;
		p.stride_h = p.stride_w = 1;
		p.dilation_h = 2;
		p.dilation_w = 1;
		p.pad_top = p.pad_bottom = 1;
		p.input_zp = p.output_zp = -7;
		p.multiplier = ID_MULT;
		p.shift = ID_SHIFT;
		p.act_min = -100;
		p.act_max = 127;
		CU_ASSERT_EQUAL(tmrt_max_pool2d_s8(&p, x, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], -100);
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, x, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], -7);
		p.count_include_pad = 1;
		CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, x, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], -7);
	}
}

/* ==== Global average pooling ==== */

static void
test_global_avg_pool(void)
{
	static const tmrt_dims shapes[] = {
		{ 2, 3, 5, 7 }, { 1, 16, 16, 3 }, { 1, 1, 1, 4 },
		{ 3, 7, 1, 2 },
	};
	size_t t;
	int same;

	for (t = 0; t < LEN(shapes); t++)
	for (same = 0; same < 2; same++) {
		tmrt_global_pool_params p;
		const tmrt_dims d = shapes[t];
		const int32_t hw = d.h * d.w, ny = d.n * d.c;
		int8_t *x = malloc((size_t)numel(d)), *y = malloc((size_t)ny);
		int8_t *y_ref = malloc((size_t)ny), *y_float = malloc(ny);
		double *real = malloc((size_t)ny * sizeof *real);
		double lo = 0, hi = 0;
		int32_t n, c, k;
		qp in_q, out_q;
		char what[128];

		if (!x || !y || !y_ref || !y_float || !real) {
			CU_FAIL("out of memory");
			goto next;
		}
		seed(4000u + (uint32_t)t * 2 + (uint32_t)same);
		in_q = act_qp(-0.5, 4.0);
		for (k = 0; k < numel(d); k++)
			x[k] = quant(uniform(-0.5, 4.0), in_q);
		memset(&p, 0, sizeof p);
		p.input = d;
		p.input_zp = in_q.zp;
		p.act_min = -128;
		p.act_max = 127;
		for (n = 0; n < d.n; n++)
			for (c = 0; c < d.c; c++) {
				double s = 0.0;

				for (k = 0; k < hw; k++)
					s += deq(x[((size_t)n * hw + k) * d.c +
						   c],
						 in_q);
				real[n * d.c + c] = s / hw;
				lo = s / hw < lo ? s / hw : lo;
				hi = s / hw > hi ? s / hw : hi;
			}
		out_q = same ? in_q : act_qp(lo, hi);
		p.output_zp = out_q.zp;
		if (same) {
			p.multiplier = ID_MULT;
			p.shift = ID_SHIFT;
		} else {
			quantize_multiplier(in_q.scale / out_q.scale,
					    &p.multiplier, &p.shift);
		}
		for (n = 0; n < d.n; n++)
			for (c = 0; c < d.c; c++) {
				int32_t sum = 0;
				long long r;

				for (k = 0; k < hw; k++)
					sum += x[((size_t)n * hw + k) * d.c +
						 c] -
					       in_q.zp;
				if (same) {
					long long raw = sum +
							(long long)hw * in_q.zp;

					r = raw >= 0 ? (raw + hw / 2) / hw
						     : -((-raw + hw / 2) / hw);
					y_ref[n * d.c + c] =
						(int8_t)clamp32(r, -128, 127);
				} else {
					long long a = (long long)sum * 65536;

					r = a >= 0 ? (a + hw / 2) / hw
						   : -((-a + hw / 2) / hw);
					y_ref[n * d.c + c] =
						(int8_t)tmrt_requantize(
							(int32_t)r,
							p.multiplier,
							p.shift + 16,
							p.output_zp, -128,
							127);
				}
				y_float[n * d.c + c] =
					quant(real[n * d.c + c], out_q);
			}
		CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&p, x, y), TMRT_OK);
		snprintf(what, sizeof what,
			 "global avg %dx%dx%dx%d%s vs reference", d.n, d.h,
			 d.w, d.c, same ? "" : " requantized");
		CHECK_EXACT(what, y, y_ref, (size_t)ny);
		snprintf(what, sizeof what, "global avg %dx%dx%dx%d%s vs float",
			 d.n, d.h, d.w, d.c, same ? "" : " requantized");
		CHECK_STEP(what, y, y_float, (size_t)ny);
next:
		free(x);
		free(y);
		free(y_ref);
		free(y_float);
		free(real);
	}
}

/* The largest sums the bounds allow: H * W = TMRT_GLOBAL_POOL_MAX_HW and
 * a TMRT_POOL_MAX_WINDOW window, every value 255 steps from the zero
 * point. M = 0.5 as (1073741824, 0): 127.5 -> 128 (ties away from zero).
 */
static void
test_pool_extremes(void)
{
	const int32_t hw = TMRT_GLOBAL_POOL_MAX_HW;
	int8_t *x = malloc((size_t)hw), y[1];
	tmrt_global_pool_params g;
	tmrt_pool_params p;

	if (!x) {
		CU_FAIL("out of memory");
		return;
	}
	memset(&g, 0, sizeof g);
	g.input.n = g.input.c = 1;
	g.input.h = 4096;
	g.input.w = hw / 4096;
	g.act_min = -128;
	g.act_max = 127;
	memset(x, 127, (size_t)hw);
	g.input_zp = g.output_zp = -128;
	g.multiplier = ID_MULT;
	g.shift = ID_SHIFT;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 127);
	g.shift = 0;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 0);
	memset(x, -128, (size_t)hw);
	g.input_zp = 127;
	g.output_zp = 0;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], -128);
	g.input.h++;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_ERR_SHAPE);

	/* The average's 16 fraction bits, seen through M = 2^16 as
	 * (1073741824, -17): one value a step above the zero point among
	 * 1000 gives 65536 / 1000 = 65.536 -> 66, one below it -66. */
	memset(x, 4, 1024);
	x[17] = 5;
	g.input.h = 1000;
	g.input.w = 1;
	g.input_zp = 4;
	g.output_zp = -10;
	g.multiplier = ID_MULT;
	g.shift = -17;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 56);
	x[17] = 3;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], -76);
	/* Three steps: 3 / 1024 * 65536 = 192 (182 clamped to 127, then
	 * with zp -128: 64); 3 / 999 * 65536 = 196.8 -> 197. */
	x[17] = 5;
	x[500] = 6;
	g.input.h = 1024;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 127);
	g.output_zp = -128;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 64);
	g.input.h = 999;
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&g, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 69);

	/* A 255 x 257 window (65535 taps) over as large an input. */
	memset(&p, 0, sizeof p);
	p.input.n = p.input.c = p.output.n = p.output.c = 1;
	p.input.h = p.kernel_h = 255;
	p.input.w = p.kernel_w = 257;
	p.output.h = p.output.w = 1;
	p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
	p.act_min = -128;
	p.act_max = 127;
	memset(x, 127, 255 * 257);
	p.input_zp = -128;
	p.output_zp = -128;
	p.multiplier = ID_MULT;
	p.shift = 0;
	CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 0);
	p.shift = ID_SHIFT;
	CU_ASSERT_EQUAL(tmrt_avg_pool2d_s8(&p, x, y), TMRT_OK);
	CU_ASSERT_EQUAL(y[0], 127);
	free(x);
}

/* ==== ADD ==== */

/* TFLite's emit-time math for int8 ADD (tmrt.h). */
static void
add_prepare(tmrt_add_params *p, qp a, qp b, qp out)
{
	const double twice_max = 2.0 * (a.scale > b.scale ? a.scale : b.scale);

	p->input1_zp = a.zp;
	p->input2_zp = b.zp;
	p->output_zp = out.zp;
	p->left_shift = 20;
	quantize_multiplier(a.scale / twice_max, &p->input1_multiplier,
			    &p->input1_shift);
	quantize_multiplier(b.scale / twice_max, &p->input2_multiplier,
			    &p->input2_shift);
	quantize_multiplier(twice_max / ((double)(1 << 20) * out.scale),
			    &p->output_multiplier, &p->output_shift);
}

static void
test_add_known(void)
{
	/* s1 0.5, s2 0.25, s_out 0.5, zero points 0: 1.5 + 1.5 = 3.0. */
	const qp a = { 0.5, 0 }, b = { 0.25, 0 }, o = { 0.5, 0 };
	const int8_t x1[3] = { 3, -3, 100 }, x2[3] = { 6, 5, 100 };
	const int8_t want[3] = { 6, -1, 127 };
	tmrt_add_params p;
	int8_t y[3];

	memset(&p, 0, sizeof p);
	p.size = p.in2_size = 3;
	p.act_min = -128;
	p.act_max = 127;
	add_prepare(&p, a, b, o);
	/* The multipliers TFLite would compute: 0.5, 0.25, 2^-19. */
	CU_ASSERT_EQUAL(p.input1_multiplier, ID_MULT);
	CU_ASSERT_EQUAL(p.input1_shift, 0);
	CU_ASSERT_EQUAL(p.input2_multiplier, ID_MULT);
	CU_ASSERT_EQUAL(p.input2_shift, 1);
	CU_ASSERT_EQUAL(p.output_multiplier, ID_MULT);
	CU_ASSERT_EQUAL(p.output_shift, 18);
	/* 1.5 + 1.5 = 3.0 -> 6; -1.5 + 1.25 = -0.25, -0.5 steps: the last
	 * RDBPOT rounds the tie away from zero, to -1 (lround agrees);
	 * 50 + 25 = 75 -> 150, clamped. */
	CU_ASSERT_EQUAL(tmrt_add_s8(&p, x1, x2, y), TMRT_OK);
	CHECK_EXACT("add known", y, want, 3);
}

typedef struct add_case {
	const char *name;
	int32_t size, in2_size;
	int relu, in_place;
} add_case;

static void
test_add(void)
{
	static const add_case cases[] = {
		{ "elementwise", 37, 37, 0, 0 },
		{ "per-channel over NHWC 2x3x4x5", 120, 5, 0, 0 },
		{ "scalar", 19, 1, 0, 0 },
		{ "[W][C] suffix", 120, 20, 1, 0 },
		{ "elementwise relu in place", 64, 64, 1, 1 },
		{ "per-channel in place", 48, 8, 0, 1 },
	};
	size_t t;

	for (t = 0; t < LEN(cases); t++) {
		const add_case *ac = &cases[t];
		int8_t *x1 = malloc((size_t)ac->size);
		int8_t *x2 = malloc((size_t)ac->in2_size);
		int8_t *y = malloc((size_t)ac->size);
		int8_t *y_ref = malloc((size_t)ac->size);
		int8_t *y_float = malloc((size_t)ac->size);
		double lo = 0, hi = 0;
		tmrt_add_params p;
		qp qa, qb, qo;
		int32_t i;
		char what[128];

		if (!x1 || !x2 || !y || !y_ref || !y_float) {
			CU_FAIL("out of memory");
			goto next;
		}
		seed(5000u + (uint32_t)t);
		/* Different scales and zero points for the two inputs. */
		qa = act_qp(-2.0, 1.0);
		qb = act_qp(-0.3, 0.9);
		for (i = 0; i < ac->size; i++)
			x1[i] = quant(uniform(-2.0, 1.0), qa);
		for (i = 0; i < ac->in2_size; i++)
			x2[i] = quant(uniform(-0.3, 0.9), qb);
		for (i = 0; i < ac->size; i++) {
			double r = deq(x1[i], qa) +
				   deq(x2[i % ac->in2_size], qb);

			lo = r < lo ? r : lo;
			hi = r > hi ? r : hi;
		}
		qo = act_qp(lo, hi);
		memset(&p, 0, sizeof p);
		p.size = ac->size;
		p.in2_size = ac->in2_size;
		p.act_min = ac->relu ? qo.zp : -128;
		p.act_max = 127;
		add_prepare(&p, qa, qb, qo);
		for (i = 0; i < ac->size; i++) {
			const int8_t b = x2[i % ac->in2_size];
			const int32_t sa = tmrt_requantize(
				(x1[i] - qa.zp) * (1 << 20),
				p.input1_multiplier, p.input1_shift, 0,
				INT32_MIN, INT32_MAX);
			const int32_t sb = tmrt_requantize(
				(b - qb.zp) * (1 << 20), p.input2_multiplier,
				p.input2_shift, 0, INT32_MIN, INT32_MAX);
			double r = deq(x1[i], qa) + deq(b, qb);

			y_ref[i] = (int8_t)tmrt_requantize(
				sa + sb, p.output_multiplier, p.output_shift,
				qo.zp, p.act_min, p.act_max);
			y_float[i] = quant(ac->relu && r < 0 ? 0 : r, qo);
		}
		if (ac->in_place) {
			memcpy(y, x1, (size_t)ac->size);
			CU_ASSERT_EQUAL(tmrt_add_s8(&p, y, x2, y), TMRT_OK);
		} else {
			CU_ASSERT_EQUAL(tmrt_add_s8(&p, x1, x2, y), TMRT_OK);
		}
		snprintf(what, sizeof what, "add %s vs reference", ac->name);
		CHECK_EXACT(what, y, y_ref, (size_t)ac->size);
		snprintf(what, sizeof what, "add %s vs float", ac->name);
		CHECK_STEP(what, y, y_float, (size_t)ac->size);
next:
		free(x1);
		free(x2);
		free(y);
		free(y_ref);
		free(y_float);
	}
}

/* ==== Concat ==== */

static void
run_concat(const char *name, int32_t outer, int32_t inner,
	   const int32_t *lens, size_t n_in, uint32_t s)
{
	/* Input 0 shares the output's quantization (copied), the others
	 * have their own. */
	const qp out_q = act_qp(-1.0, 3.0);
	qp in_q[4];
	tmrt_concat_input ins[4];
	const int8_t *ptrs[4];
	int8_t *x[4] = { NULL, NULL, NULL, NULL };
	int8_t *y = NULL, *y_ref = NULL, *y_float = NULL;
	int32_t total = 0, o, i, off;
	tmrt_concat_params p;
	size_t k;
	char what[128];

	seed(s);
	for (k = 0; k < n_in; k++)
		total += lens[k];
	y = malloc((size_t)outer * total * inner);
	y_ref = malloc((size_t)outer * total * inner);
	y_float = malloc((size_t)outer * total * inner);
	if (!y || !y_ref || !y_float)
		goto fail;
	for (k = 0; k < n_in; k++) {
		const int32_t n = outer * lens[k] * inner;
		/* Ranges wider and narrower than the output's. */
		const double lo = k == 0 ? -1.0 : -0.5 * k;
		const double hi = k == 0 ? 3.0 : 1.7 * k;

		in_q[k] = k == 0 ? out_q : act_qp(lo, hi);
		x[k] = malloc((size_t)n);
		if (!x[k])
			goto fail;
		for (i = 0; i < n; i++)
			x[k][i] = quant(uniform(lo, hi), in_q[k]);
		ptrs[k] = x[k];
		ins[k].axis_len = lens[k];
		ins[k].zp = in_q[k].zp;
		if (k == 0) {
			ins[k].multiplier = ID_MULT;
			ins[k].shift = ID_SHIFT;
		} else {
			quantize_multiplier(in_q[k].scale / out_q.scale,
					    &ins[k].multiplier,
					    &ins[k].shift);
		}
	}
	/* The reference: output position by output position. */
	for (o = 0; o < outer; o++) {
		off = 0;
		for (k = 0; k < n_in; k++) {
			for (i = 0; i < lens[k] * inner; i++) {
				const int8_t v =
					x[k][(size_t)o * lens[k] * inner + i];
				const size_t j =
					((size_t)o * total + off) * inner + i;

				y_ref[j] = (int8_t)tmrt_requantize(
					v - ins[k].zp, ins[k].multiplier,
					ins[k].shift, out_q.zp, -128, 127);
				y_float[j] = quant(deq(v, in_q[k]), out_q);
			}
			off += lens[k];
		}
	}
	memset(&p, 0, sizeof p);
	p.outer = outer;
	p.inner = inner;
	p.n_inputs = (int32_t)n_in;
	p.inputs = ins;
	p.output_zp = out_q.zp;
	CU_ASSERT_EQUAL(tmrt_concat_s8(&p, ptrs, y), TMRT_OK);
	snprintf(what, sizeof what, "concat %s vs reference", name);
	CHECK_EXACT(what, y, y_ref, (size_t)outer * total * inner);
	snprintf(what, sizeof what, "concat %s vs float", name);
	CHECK_STEP(what, y, y_float, (size_t)outer * total * inner);
	/* The copied input is byte for byte. */
	for (o = 0; o < outer; o++)
		CU_ASSERT_EQUAL(memcmp(y + (size_t)o * total * inner,
				       x[0] + (size_t)o * lens[0] * inner,
				       (size_t)lens[0] * inner),
				0);
	goto done;
fail:
	CU_FAIL("out of memory");
done:
	for (k = 0; k < n_in; k++)
		free(x[k]);
	free(y);
	free(y_ref);
	free(y_float);
}

static void
test_concat(void)
{
	static const int32_t lens_c[3] = { 2, 3, 1 };
	static const int32_t lens_h[2] = { 3, 1 };
	static const int32_t lens_4[4] = { 1, 1, 4, 2 };
	static const int32_t lens_1[1] = { 5 };

	/* NHWC channel concat of 1x3x2xC tensors: outer N*H*W. */
	run_concat("channels", 1 * 3 * 2, 1, lens_c, 3, 6000);
	/* Height concat of 2xHx4x3 tensors: outer N, inner W*C. */
	run_concat("height", 2, 4 * 3, lens_h, 2, 6001);
	run_concat("four inputs", 5, 2, lens_4, 4, 6002);
	run_concat("one input", 3, 3, lens_1, 1, 6003);
}

/* ==== Lookup tables: sigmoid and tanh ==== */

static double
sigmoid(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

/* QUANT.md: entry (q + 128) = clamp(lround(f(s_in (q - zp_in)) / s_out)
 * + zp_out). */
static void
make_table(int8_t *table, double (*f)(double), qp in_q, qp out_q)
{
	int32_t q;

	for (q = -128; q <= 127; q++)
		table[q + 128] = quant(f(deq((int8_t)q, in_q)), out_q);
}

static void
test_lut(void)
{
	const qp sig_q = { 1.0 / 256, -128 }, tanh_q = { 1.0 / 128, 0 };
	const qp in16 = { 1.0 / 16, 0 }, in16z = { 1.0 / 16, -3 };
	int8_t sig[256], th[256], x[256 + 61], y[256 + 61];
	tmrt_lut_params p;
	size_t i;

	make_table(sig, sigmoid, in16, sig_q);
	make_table(th, tanh, in16, tanh_q);
	/* Golden values, by hand: sigmoid(0) = 0.5 -> 128 - 128;
	 * sigmoid(1) * 256 = 187.15 -> 59; sigmoid(7.9375) * 256 =
	 * 255.91 -> 256 - 128 -> 127; sigmoid(-8) * 256 = 0.086 -> -128;
	 * tanh(1) * 128 = 97.48 -> 97; tanh(-1) -> -97; tanh(8) -> 128 ->
	 * 127; tanh(-8) -> -128; tanh(0.5) * 128 = 59.15 -> 59. */
	CU_ASSERT_EQUAL(sig[0 + 128], 0);
	CU_ASSERT_EQUAL(sig[16 + 128], 59);
	CU_ASSERT_EQUAL(sig[127 + 128], 127);
	CU_ASSERT_EQUAL(sig[0], -128);
	CU_ASSERT_EQUAL(th[16 + 128], 97);
	CU_ASSERT_EQUAL(th[-16 + 128], -97);
	CU_ASSERT_EQUAL(th[127 + 128], 127);
	CU_ASSERT_EQUAL(th[0], -128);
	CU_ASSERT_EQUAL(th[8 + 128], 59);
	CU_ASSERT_EQUAL(th[0 + 128], 0);

	/* Every int8 value, then random ones. */
	for (i = 0; i < 256; i++)
		x[i] = (int8_t)((int32_t)i - 128);
	seed(7000);
	for (; i < LEN(x); i++)
		x[i] = rand_i8();
	p.size = (int32_t)LEN(x);
	p.table = sig;
	CU_ASSERT_EQUAL(tmrt_lut_s8(&p, x, y), TMRT_OK);
	for (i = 0; i < LEN(x) && y[i] == sig[x[i] + 128]; i++)
		;
	CU_ASSERT_EQUAL(i, LEN(x));
	/* Against the float function: exact, it is the table's
	 * definition. */
	for (i = 0; i < LEN(x) && y[i] == quant(sigmoid(deq(x[i], in16)),
						sig_q); i++)
		;
	CU_ASSERT_EQUAL(i, LEN(x));

	/* tanh with an input zero point, in place. */
	make_table(th, tanh, in16z, tanh_q);
	CU_ASSERT_EQUAL(th[-3 + 128], 0);
	CU_ASSERT_EQUAL(th[13 + 128], 97);
	memcpy(y, x, sizeof y);
	p.table = th;
	CU_ASSERT_EQUAL(tmrt_lut_s8(&p, y, y), TMRT_OK);
	for (i = 0; i < LEN(x) && y[i] == quant(tanh(deq(x[i], in16z)),
						tanh_q); i++)
		;
	CU_ASSERT_EQUAL(i, LEN(x));
}

/* ==== Softmax ==== */

/* exp_table[d] = lround(exp(-d s_in) 2^30), QUANT.md. */
static void
make_exp_table(int32_t *t, double s_in)
{
	int d;

	for (d = 0; d < 256; d++)
		t[d] = (int32_t)lround(exp(-d * s_in) * 1073741824.0);
}

static void
test_softmax_known(void)
{
	int32_t tab[256];
	tmrt_softmax_params p;
	int8_t y[4];

	make_exp_table(tab, 0.1);
	CU_ASSERT_EQUAL(tab[0], 1073741824);
	/* exp(-0.1) 2^30 = 971561779.67 */
	CU_ASSERT_EQUAL(tab[1], 971561780);
	/* exp(-25.5) 2^30 = 0.009: underflows to 0. */
	CU_ASSERT_EQUAL(tab[255], 0);
	memset(&p, 0, sizeof p);
	p.outer = p.inner = 1;
	p.exp_table = tab;
	p.output_zp = -128;
	{
		/* Uniform: 2^38 / 2^32 = 64 (+ 1/2 floored) -> 64 - 128. */
		static const int8_t x[4] = { 7, 7, 7, 7 };
		static const int8_t want[4] = { -64, -64, -64, -64 };

		p.len = 4;
		CU_ASSERT_EQUAL(tmrt_softmax_s8(&p, x, y), TMRT_OK);
		CHECK_EXACT("softmax uniform", y, want, 4);
	}
	{
		/* Two equal: 128.5 floored -> 0; one alone: 256 -> 127;
		 * far apart: 256 and 0 -> 127 and -128. */
		static const int8_t two[2] = { -5, -5 }, one[1] = { 3 };
		static const int8_t far[2] = { 127, -128 };

		p.len = 2;
		CU_ASSERT_EQUAL(tmrt_softmax_s8(&p, two, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 0);
		CU_ASSERT_EQUAL(y[1], 0);
		CU_ASSERT_EQUAL(tmrt_softmax_s8(&p, far, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 127);
		CU_ASSERT_EQUAL(y[1], -128);
		p.len = 1;
		CU_ASSERT_EQUAL(tmrt_softmax_s8(&p, one, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 127);
	}
	{
		/* [0, -1] at s_in 0.1: E = 2^30, 971561780; 256 E / S =
		 * 134.40, 121.60 -> rounded 134 and 122 -> 6 and -6. */
		static const int8_t x[2] = { 0, -1 };

		p.len = 2;
		CU_ASSERT_EQUAL(tmrt_softmax_s8(&p, x, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], 6);
		CU_ASSERT_EQUAL(y[1], -6);
	}
}

/* s_in 0 stands for a table of random Q30 entries (anything the kernel
 * accepts), to exercise its division on arbitrary sums; the float check
 * is then skipped. */
static void
run_softmax(int32_t outer, int32_t len, int32_t inner, double s_in,
	    int in_place, uint32_t s)
{
	const size_t n = (size_t)outer * len * inner;
	const qp out_q = { 1.0 / 256, -128 };
	const qp in_q = { s_in, 5 };
	int8_t *x = malloc(n), *y = malloc(n), *y_ref = malloc(n);
	int8_t *y_float = malloc(n);
	int32_t tab[256], o, k, i;
	tmrt_softmax_params p;
	char what[128];

	if (!x || !y || !y_ref || !y_float) {
		CU_FAIL("out of memory");
		goto done;
	}
	seed(s);
	for (k = 0; k < (int32_t)n; k++)
		x[k] = rand_i8();
	if (s_in > 0) {
		make_exp_table(tab, s_in);
	} else {
		for (k = 0; k < 256; k++)
			tab[k] = (int32_t)(next_u32() >> 2);
		tab[0] = 1 + (int32_t)(next_u32() >> 2);
	}
	for (o = 0; o < outer; o++)
		for (i = 0; i < inner; i++) {
			int32_t m = -128;
			long long S = 0;
			double fm = -HUGE_VAL, fs = 0.0;

#define IDX(kk) (((size_t)o * len + (kk)) * inner + i)
			for (k = 0; k < len; k++) {
				m = x[IDX(k)] > m ? x[IDX(k)] : m;
				fm = deq(x[IDX(k)], in_q) > fm
					     ? deq(x[IDX(k)], in_q)
					     : fm;
			}
			for (k = 0; k < len; k++) {
				S += tab[m - x[IDX(k)]];
				fs += exp(deq(x[IDX(k)], in_q) - fm);
			}
			for (k = 0; k < len; k++) {
				long long E = tab[m - x[IDX(k)]];

				y_ref[IDX(k)] = (int8_t)clamp32(
					(E * 256 + S / 2) / S - 128, -128, 127);
				y_float[IDX(k)] = quant(
					exp(deq(x[IDX(k)], in_q) - fm) / fs,
					out_q);
			}
#undef IDX
		}
	memset(&p, 0, sizeof p);
	p.outer = outer;
	p.len = len;
	p.inner = inner;
	p.exp_table = tab;
	p.output_zp = -128;
	if (in_place) {
		memcpy(y, x, n);
		CU_ASSERT_EQUAL(tmrt_softmax_s8(&p, y, y), TMRT_OK);
	} else {
		CU_ASSERT_EQUAL(tmrt_softmax_s8(&p, x, y), TMRT_OK);
	}
	snprintf(what, sizeof what, "softmax %dx%dx%d s_in %g vs reference",
		 outer, len, inner, s_in);
	CHECK_EXACT(what, y, y_ref, n);
	snprintf(what, sizeof what, "softmax %dx%dx%d s_in %g vs float",
		 outer, len, inner, s_in);
	if (s_in > 0)
		CHECK_STEP(what, y, y_float, n);
done:
	free(x);
	free(y);
	free(y_ref);
	free(y_float);
}

static void
test_softmax(void)
{
	run_softmax(5, 10, 1, 0.05, 0, 8000);
	run_softmax(3, 7, 4, 0.02, 0, 8001);
	run_softmax(1, 1000, 1, 0.03, 0, 8002);
	run_softmax(2, 3, 1, 0.25, 1, 8003);
	run_softmax(4, 6, 5, 0.001, 1, 8004);
	run_softmax(1, 200000, 1, 0.0005, 0, 8005);
	run_softmax(64, 9, 3, 0, 0, 8006);
	run_softmax(4, 3000, 1, 0, 0, 8007);
}

/* ==== Parameter validation: rejected calls write nothing ==== */

#define SENTINEL 0x5a

static int
untouched(const int8_t *y, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (y[i] != SENTINEL)
			return 0;
	return 1;
}

/* Runs a call that must fail with want and leave y as it was. */
#define REJECT(call, want)                                                   \
	do {                                                                 \
		memset(y, SENTINEL, sizeof y);                               \
		CU_ASSERT_EQUAL(call, want);                                 \
		CU_ASSERT(untouched(y, sizeof y));                           \
	} while (0)

static void
test_conv_bad_args(void)
{
	static const int8_t x[2 * 3 * 3 * 2], w[4 * 2 * 2 * 2];
	static const int32_t m[4] = { ID_MULT, ID_MULT, ID_MULT, ID_MULT };
	static const int32_t s[4] = { 0, 0, 0, 0 };
	tmrt_conv_params good, p;
	int8_t y[2 * 2 * 2 * 4];

	/* 2x3x3x2 -> 2x2x2x4, 2x2 kernel. */
	memset(&good, 0, sizeof good);
	good.input.n = good.output.n = 2;
	good.input.h = good.input.w = 3;
	good.input.c = 2;
	good.output.h = good.output.w = 2;
	good.output.c = 4;
	good.kernel_h = good.kernel_w = 2;
	good.stride_h = good.stride_w = good.dilation_h = good.dilation_w = 1;
	good.groups = 1;
	good.weights = w;
	good.multiplier = m;
	good.shift = s;
	good.n_requant = 4;
	good.act_min = -128;
	good.act_max = 127;
	memset(y, SENTINEL, sizeof y);
	CU_ASSERT_EQUAL(tmrt_conv2d_s8(&good, x, y), TMRT_OK);
	CU_ASSERT(!untouched(y, sizeof y));

	REJECT(tmrt_conv2d_s8(NULL, x, y), TMRT_ERR_ARG);
	REJECT(tmrt_conv2d_s8(&good, NULL, y), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_conv2d_s8(&good, x, NULL), TMRT_ERR_ARG);
	p = good, p.weights = NULL;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_ARG);
	p = good, p.multiplier = NULL;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_ARG);
	p = good, p.shift = NULL;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_ARG);
	/* Shapes. */
	p = good, p.input.c = 0;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.input.n = -1;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.output.n = 1;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.output.h = 3;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.output.w = 1;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.stride_h = 0;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.dilation_w = 0;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.pad_left = -1;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.kernel_h = 4;	/* larger than the padded input */
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.kernel_w = 0;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.pad_top = INT32_MAX;	/* padded extent past int32 */
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.input.h = 65536, p.input.w = 65536; /* > INT32_MAX */
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.groups = 0;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.groups = 3;		/* does not divide 2 or 4 */
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.groups = 4;		/* divides 4, not 2 */
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	/* 256 x 256 taps: past TMRT_CONV_MAX_TAPS. */
	p = good, p.kernel_h = p.kernel_w = 256;
	p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 127;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.input.c = 65536, p.input.h = p.input.w = 1;
	p.kernel_h = p.kernel_w = 1;
	p.output.h = p.output.w = 1;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	/* Quantization. */
	p = good, p.input_zp = 128;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.output_zp = -129;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.act_min = 1, p.act_max = 0;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.act_max = 128;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.act_min = -129;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.n_requant = 2;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.n_requant = 0;
	REJECT(tmrt_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);

	/* Depthwise: groups must be input.c and output.c a multiple. */
	p = good, p.groups = 2;
	memset(y, SENTINEL, sizeof y);
	CU_ASSERT_EQUAL(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_OK);
	REJECT(tmrt_depthwise_conv2d_s8(&good, x, y), TMRT_ERR_SHAPE);
	p = good, p.groups = 2, p.output.c = 3, p.n_requant = 1;
	REJECT(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.groups = 2, p.weights = NULL;
	REJECT(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_ERR_ARG);
	p = good, p.groups = 2, p.output.w = 3;
	REJECT(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.groups = 2, p.kernel_h = p.kernel_w = 256;
	p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 127;
	REJECT(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.groups = 2, p.input_zp = -200;
	REJECT(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.groups = 2, p.n_requant = 3;
	REJECT(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
	p = good, p.groups = 2, p.act_min = 100, p.act_max = 99;
	REJECT(tmrt_depthwise_conv2d_s8(&p, x, y), TMRT_ERR_PARAM);
}

static void
test_pool_bad_args(void)
{
	static const int8_t x[1 * 4 * 4 * 3];
	tmrt_pool_params good, p;
	tmrt_global_pool_params gg, g;
	int8_t y[1 * 2 * 2 * 3];
	int kind;

	memset(&good, 0, sizeof good);
	good.input.n = good.output.n = 1;
	good.input.h = good.input.w = 4;
	good.input.c = good.output.c = 3;
	good.output.h = good.output.w = 2;
	good.kernel_h = good.kernel_w = 2;
	good.stride_h = good.stride_w = 2;
	good.dilation_h = good.dilation_w = 1;
	good.multiplier = ID_MULT;
	good.shift = ID_SHIFT;
	good.act_min = -128;
	good.act_max = 127;
	for (kind = 0; kind < 2; kind++) {
		tmrt_status (*fn)(const tmrt_pool_params *, const int8_t *,
				  int8_t *) =
			kind ? tmrt_avg_pool2d_s8 : tmrt_max_pool2d_s8;

		memset(y, SENTINEL, sizeof y);
		CU_ASSERT_EQUAL(fn(&good, x, y), TMRT_OK);
		CU_ASSERT(!untouched(y, sizeof y));
		REJECT(fn(NULL, x, y), TMRT_ERR_ARG);
		REJECT(fn(&good, NULL, y), TMRT_ERR_ARG);
		CU_ASSERT_EQUAL(fn(&good, x, NULL), TMRT_ERR_ARG);
		p = good, p.output.c = 2;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.output.n = 2;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.input.w = 0;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.output.h = 3;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.stride_w = 0;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.dilation_h = -1;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.pad_bottom = -2;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.kernel_h = 5;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		/* A 256x256 window: past TMRT_POOL_MAX_WINDOW. */
		p = good, p.kernel_h = p.kernel_w = 256;
		p.stride_h = p.stride_w = 1;
		p.pad_top = p.pad_left = 252;
		p.output.h = p.output.w = 1;
		REJECT(fn(&p, x, y), TMRT_ERR_SHAPE);
		p = good, p.input_zp = 128;
		REJECT(fn(&p, x, y), TMRT_ERR_PARAM);
		p = good, p.output_zp = -129;
		REJECT(fn(&p, x, y), TMRT_ERR_PARAM);
		p = good, p.act_min = 0, p.act_max = -1;
		REJECT(fn(&p, x, y), TMRT_ERR_PARAM);
		p = good, p.act_max = 200;
		REJECT(fn(&p, x, y), TMRT_ERR_PARAM);
		p = good, p.multiplier = -1;
		REJECT(fn(&p, x, y), TMRT_ERR_PARAM);
		p = good, p.count_include_pad = 2;
		REJECT(fn(&p, x, y), TMRT_ERR_PARAM);
	}

	memset(&gg, 0, sizeof gg);
	gg.input.n = 1;
	gg.input.h = gg.input.w = 2;
	gg.input.c = 3;
	gg.multiplier = ID_MULT;
	gg.shift = ID_SHIFT;
	gg.act_min = -128;
	gg.act_max = 127;
	memset(y, SENTINEL, sizeof y);
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&gg, x, y), TMRT_OK);
	CU_ASSERT(!untouched(y, 3));
	REJECT(tmrt_global_avg_pool_s8(NULL, x, y), TMRT_ERR_ARG);
	REJECT(tmrt_global_avg_pool_s8(&gg, NULL, y), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_global_avg_pool_s8(&gg, x, NULL), TMRT_ERR_ARG);
	g = gg, g.input.c = 0;
	REJECT(tmrt_global_avg_pool_s8(&g, x, y), TMRT_ERR_SHAPE);
	g = gg, g.input.h = 4096, g.input.w = 4096, g.input.c = 1;
	REJECT(tmrt_global_avg_pool_s8(&g, x, y), TMRT_ERR_SHAPE);
	g = gg, g.input_zp = 300;
	REJECT(tmrt_global_avg_pool_s8(&g, x, y), TMRT_ERR_PARAM);
	g = gg, g.output_zp = -300;
	REJECT(tmrt_global_avg_pool_s8(&g, x, y), TMRT_ERR_PARAM);
	g = gg, g.act_min = 3, g.act_max = 2;
	REJECT(tmrt_global_avg_pool_s8(&g, x, y), TMRT_ERR_PARAM);
	g = gg, g.multiplier = INT32_MIN;
	REJECT(tmrt_global_avg_pool_s8(&g, x, y), TMRT_ERR_PARAM);
}

static void
test_add_bad_args(void)
{
	static const int8_t a[6], b[6];
	tmrt_add_params good, p;
	int8_t y[6];

	memset(&good, 0, sizeof good);
	good.size = 6;
	good.in2_size = 3;
	good.left_shift = 20;
	good.input1_multiplier = good.input2_multiplier = ID_MULT;
	good.input1_shift = good.input2_shift = 1;
	good.output_multiplier = ID_MULT;
	good.output_shift = 19;
	good.act_min = -128;
	good.act_max = 127;
	memset(y, SENTINEL, sizeof y);
	CU_ASSERT_EQUAL(tmrt_add_s8(&good, a, b, y), TMRT_OK);
	CU_ASSERT(!untouched(y, sizeof y));
	REJECT(tmrt_add_s8(NULL, a, b, y), TMRT_ERR_ARG);
	REJECT(tmrt_add_s8(&good, NULL, b, y), TMRT_ERR_ARG);
	REJECT(tmrt_add_s8(&good, a, NULL, y), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_add_s8(&good, a, b, NULL), TMRT_ERR_ARG);
	p = good, p.size = 0;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_SHAPE);
	p = good, p.in2_size = 0;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_SHAPE);
	p = good, p.in2_size = 4;	/* does not divide 6 */
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_SHAPE);
	p = good, p.in2_size = 12;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_SHAPE);
	p = good, p.input1_zp = 128;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
	p = good, p.input2_zp = -129;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
	p = good, p.output_zp = 1000;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
	p = good, p.left_shift = 21;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
	p = good, p.left_shift = -1;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
	p = good, p.input2_multiplier = -5;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
	p = good, p.output_multiplier = -5;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
	p = good, p.act_min = 10, p.act_max = 9;
	REJECT(tmrt_add_s8(&p, a, b, y), TMRT_ERR_PARAM);
}

static void
test_concat_bad_args(void)
{
	static const int8_t a[4], b[4];
	const int8_t *ins[2] = { a, b }, *ins_null[2] = { a, NULL };
	tmrt_concat_input q[2] = { { 2, 0, ID_MULT, ID_SHIFT },
				   { 2, 0, ID_MULT, ID_SHIFT } };
	tmrt_concat_input bad[2];
	tmrt_concat_params good, p;
	int8_t y[8];

	memset(&good, 0, sizeof good);
	good.outer = 2;
	good.inner = 1;
	good.n_inputs = 2;
	good.inputs = q;
	memset(y, SENTINEL, sizeof y);
	CU_ASSERT_EQUAL(tmrt_concat_s8(&good, ins, y), TMRT_OK);
	CU_ASSERT(!untouched(y, sizeof y));
	REJECT(tmrt_concat_s8(NULL, ins, y), TMRT_ERR_ARG);
	REJECT(tmrt_concat_s8(&good, NULL, y), TMRT_ERR_ARG);
	REJECT(tmrt_concat_s8(&good, ins_null, y), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_concat_s8(&good, ins, NULL), TMRT_ERR_ARG);
	p = good, p.inputs = NULL;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_ARG);
	p = good, p.outer = 0;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_SHAPE);
	p = good, p.inner = -1;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_SHAPE);
	p = good, p.n_inputs = 0;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_SHAPE);
	p = good, p.outer = 65536, p.inner = 65536;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_SHAPE);
	memcpy(bad, q, sizeof bad);
	bad[1].axis_len = 0;
	p = good, p.inputs = bad;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_SHAPE);
	memcpy(bad, q, sizeof bad);
	bad[1].zp = 128;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_PARAM);
	memcpy(bad, q, sizeof bad);
	bad[0].multiplier = -1;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_PARAM);
	p = good, p.output_zp = -129;
	REJECT(tmrt_concat_s8(&p, ins, y), TMRT_ERR_PARAM);
}

static void
test_lut_softmax_bad_args(void)
{
	static const int8_t x[6], table[256];
	int32_t tab[256];
	tmrt_lut_params lp = { 6, table }, l;
	tmrt_softmax_params good, p;
	int8_t y[6];

	memset(y, SENTINEL, sizeof y);
	CU_ASSERT_EQUAL(tmrt_lut_s8(&lp, x, y), TMRT_OK);
	CU_ASSERT(!untouched(y, sizeof y));
	REJECT(tmrt_lut_s8(NULL, x, y), TMRT_ERR_ARG);
	REJECT(tmrt_lut_s8(&lp, NULL, y), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_lut_s8(&lp, x, NULL), TMRT_ERR_ARG);
	l = lp, l.table = NULL;
	REJECT(tmrt_lut_s8(&l, x, y), TMRT_ERR_ARG);
	l = lp, l.size = 0;
	REJECT(tmrt_lut_s8(&l, x, y), TMRT_ERR_SHAPE);

	make_exp_table(tab, 0.1);
	memset(&good, 0, sizeof good);
	good.outer = 2;
	good.len = 3;
	good.inner = 1;
	good.exp_table = tab;
	good.output_zp = -128;
	memset(y, SENTINEL, sizeof y);
	CU_ASSERT_EQUAL(tmrt_softmax_s8(&good, x, y), TMRT_OK);
	CU_ASSERT(!untouched(y, sizeof y));
	REJECT(tmrt_softmax_s8(NULL, x, y), TMRT_ERR_ARG);
	REJECT(tmrt_softmax_s8(&good, NULL, y), TMRT_ERR_ARG);
	CU_ASSERT_EQUAL(tmrt_softmax_s8(&good, x, NULL), TMRT_ERR_ARG);
	p = good, p.exp_table = NULL;
	REJECT(tmrt_softmax_s8(&p, x, y), TMRT_ERR_ARG);
	p = good, p.len = 0;
	REJECT(tmrt_softmax_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.outer = -3;
	REJECT(tmrt_softmax_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.inner = 0;
	REJECT(tmrt_softmax_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.outer = 65536, p.len = 65536;
	REJECT(tmrt_softmax_s8(&p, x, y), TMRT_ERR_SHAPE);
	p = good, p.output_zp = 128;
	REJECT(tmrt_softmax_s8(&p, x, y), TMRT_ERR_PARAM);
	/* A table that would give S = 0, or entries past Q30. */
	tab[0] = 0;
	REJECT(tmrt_softmax_s8(&good, x, y), TMRT_ERR_PARAM);
	make_exp_table(tab, 0.1);
	tab[200] = -1;
	REJECT(tmrt_softmax_s8(&good, x, y), TMRT_ERR_PARAM);
	tab[200] = (1 << 30) + 1;
	REJECT(tmrt_softmax_s8(&good, x, y), TMRT_ERR_PARAM);
}

static const tm_test_case cases[] = {
	{ "conv2d known answer", test_conv2d_known },
	{ "conv2d vs reference and float", test_conv2d },
	{ "depthwise conv2d vs reference, float and conv2d", test_depthwise },
	{ "pooling known answers", test_pool_known },
	{ "max pool vs reference and float", test_max_pool },
	{ "avg pool vs reference and float", test_avg_pool },
	{ "avg pool count_include_pad vs reference and float",
	  test_avg_pool_include_pad },
	{ "global avg pool vs reference and float", test_global_avg_pool },
	{ "pooling at the accumulator bounds", test_pool_extremes },
	{ "add known answer", test_add_known },
	{ "add vs reference and float, broadcasting", test_add },
	{ "concat vs reference and float", test_concat },
	{ "lut sigmoid and tanh", test_lut },
	{ "softmax known answers", test_softmax_known },
	{ "softmax vs reference and float", test_softmax },
	{ "conv2d and depthwise bad arguments", test_conv_bad_args },
	{ "pooling bad arguments", test_pool_bad_args },
	{ "add bad arguments", test_add_bad_args },
	{ "concat bad arguments", test_concat_bad_args },
	{ "lut and softmax bad arguments", test_lut_softmax_bad_args },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("tmrt_ops", cases))
		return 99;
	return tm_test_run();
}
