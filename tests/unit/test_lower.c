/* tmpipe tests — int8 lowering of images: tiny float models built with
 * the model API, calibrated (every activation's min and max over the
 * samples, what the minmax observer finds), quantized, lowered and run
 * through tmrt_run, against the float interpreter on the same samples.
 *
 * The bound. The float reference sees the float input; the int8 model a
 * quantized input (|error| <= s_in / 2), quantized weights (<= s_w / 2
 * each) and one rounding of its own output (1/2 step). One layer adds
 * these up to about one output step when its output range is what its
 * taps can produce (a calibrated range), so every single-op model here
 * must stay within BOUND = 1.5 output steps of the float output; the
 * error measured for each model is printed next to its test (at most
 * 1.22 steps when written). A model of two requantizing layers gets 2:
 * the first one's rounding is seen through the second's weights
 * (measured at most 1.68). A folded ReLU6 narrows the output range below
 * what the taps produce, and its bound grows by that ratio. Exact checks
 * (no bound) cover the flatten -> dense column permutation, the folded
 * ReLU6 clamp and the integer BatchNorm's weights, computed by hand.
 *
 * Last, the PyTorch Conv-BN-ReLU CNN of test_cnn (tests/data/cnn)
 * through bn_fold, minmax, quantize, lower and verify. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>
#include <tmrt/model.h>

#include "interp_priv.h"
#include "lower_priv.h"
#include "pipeline_priv.h"
#include "quantize_priv.h"
#include "run_priv.h"
#include "runner.h"

#define BOUND 1.5
#define NS 16			/* samples per model */
#define MSG_MAX (TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 8)

/* ---- Building models ------------------------------------------------ */

typedef struct mb {
	tm_model *m;
	tm_error err;
	int bad;
	int expect_fail;		/* an error is the test's point */
	unsigned seed;
} mb;

/* Deterministic values in [-1, 1). */
static float
frand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void
mb_fail(mb *b, const char *what)
{
	char buf[MSG_MAX];

	if (b->bad++ || b->expect_fail)
		return;
	tm_error_format(&b->err, buf, sizeof buf);
	fprintf(stderr, "\n  %s: %s\n", what, buf);
	CU_FAIL(what);
}

static void
mb_begin(mb *b, unsigned seed, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
	const int64_t shape[3] = { d0, d1, d2 };

	memset(b, 0, sizeof *b);
	tm_error_clear(&b->err);
	b->seed = seed;
	b->m = tm_model_new();
	if (!b->m || tm_model_add_input(b->m, "x", ndim, shape, &b->err))
		mb_fail(b, "input");
}

/* A constant of random values in [lo, hi). */
static void
mb_const(mb *b, const char *name, int ndim, const int64_t *shape, float lo,
	 float hi)
{
	size_t n = 1;
	float *v;

	for (int i = 0; i < ndim; i++)
		n *= (size_t)shape[i];
	v = malloc(n * sizeof *v);
	if (!v) {
		b->bad++;
		return;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = lo + (hi - lo) * 0.5f * (frand(&b->seed) + 1.0f);
	if (!b->bad && tm_model_add_const(b->m, name, ndim, shape, v, &b->err))
		mb_fail(b, name);
	free(v);
}

/* A node named name with output name. */
static tm_node *
mb_node(mb *b, const char *name, tm_op op, size_t n_in,
	const char *const *ins)
{
	const char *outs[1] = { name };
	tm_node *n = NULL;

	if (!b->bad && tm_model_add_node(b->m, name, op, ins, n_in, outs, 1,
					 &n, &b->err))
		mb_fail(b, name);
	return n;
}

/* conv2d name reading in: O filters kh x kw over C / group channels,
 * weights in [-1, 1), bias in [-0.5, 0.5). */
static tm_node *
mb_conv(mb *b, const char *name, const char *in, int64_t O, int64_t C,
	int64_t kh, int64_t kw, int64_t group)
{
	char wn[64], bn[64];
	const int64_t ws[4] = { O, C / group, kh, kw }, bs[1] = { O };
	const char *ins[3] = { in, wn, bn };
	tm_node *n;

	snprintf(wn, sizeof wn, "%s.weight", name);
	snprintf(bn, sizeof bn, "%s.bias", name);
	mb_const(b, wn, 4, ws, -1.0f, 1.0f);
	mb_const(b, bn, 1, bs, -0.5f, 0.5f);
	n = mb_node(b, name, TM_OP_CONV2D, 3, ins);
	if (n)
		n->attrs.group = group;
	return n;
}

static tm_node *
mb_unary(mb *b, const char *name, tm_op op, const char *in)
{
	const char *ins[1] = { in };

	return mb_node(b, name, op, 1, ins);
}

/* ---- Calibrate, quantize, lower, run --------------------------------- */

typedef struct result {
	double steps;			/* max |int8 - float|, in output
					 * steps */
	tm_priv_lowered lw;		/* valid until result_fini */
} result;

static void
result_fini(result *r)
{
	tm_priv_lowered_fini(&r->lw);
}

/* Every activation's range: min and max over the samples run. */
static void
calibrate(tm_model *m, tm_interp *it, size_t ns)
{
	for (size_t t = 0; t < m->n_tensors; t++) {
		tm_tensor *x = m->tensors[t];
		const float *v = tm_priv_interp_tensor(it, t);
		size_t n = tm_tensor_numel(x) * ns;

		if (x->kind == TM_TENSOR_CONST || x->fixed_range || !v)
			continue;
		x->lo = x->hi = v[0];
		for (size_t i = 1; i < n; i++) {
			x->lo = v[i] < x->lo ? v[i] : x->lo;
			x->hi = v[i] > x->hi ? v[i] : x->hi;
		}
		x->has_range = 1;
	}
}

static int8_t
quantize_value(float x, const tm_qparams *q)
{
	long r = lround((double)x / q->scale) + q->zero_point;

	return (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
}

/* Finalizes, calibrates, quantizes (weights per channel or not), lowers
 * and runs b's model over NS samples of inputs in [-amp, amp); r->steps
 * gets the largest error of output 0. Returns 0 on success. */
static int
run_model(mb *b, int per_channel, float amp, result *r)
{
	tm_model *m = b->m;
	tm_interp *it = NULL;
	unsigned char *pc = NULL;
	const tmrt_model *rm;
	int8_t *qin = NULL, *qout = NULL, *arena = NULL;
	const tm_tensor *x, *y;
	size_t nx, ny;
	int rc = -1;

	memset(r, 0, sizeof *r);
	if (b->bad)
		return -1;
	if (tm_model_finalize(m, &b->err)) {
		mb_fail(b, "finalize");
		return -1;
	}
	x = m->tensors[m->inputs[0]];
	y = m->tensors[m->outputs[0]];
	nx = tm_tensor_numel(x);
	ny = tm_tensor_numel(y);
	it = tm_priv_interp_new(m, NS, &b->err);
	pc = calloc(m->n_nodes, 1);
	if (!it || !pc) {
		mb_fail(b, "interpreter");
		goto out;
	}
	for (size_t i = 0; i < NS * nx; i++)
		tm_priv_interp_input(it, 0)[i] = amp * frand(&b->seed);
	if (tm_priv_interp_run(it, NS, &b->err)) {
		mb_fail(b, "float run");
		goto out;
	}
	calibrate(m, it, NS);
	memset(pc, per_channel, m->n_nodes);
	if (tm_priv_quantize(m, pc, &b->err)) {
		mb_fail(b, "quantize");
		goto out;
	}
	if (tm_priv_lower(m, 0, &r->lw, &b->err)) {
		mb_fail(b, "lower");
		goto out;
	}
	rm = tm_priv_blob_model(r->lw.blob);
	qin = malloc(nx);
	qout = malloc(ny);
	arena = malloc(rm->arena_size);
	if (!qin || !qout || !arena)
		goto out;
	for (size_t s = 0; s < NS; s++) {
		const float *xf = tm_priv_interp_tensor(it, m->inputs[0]);
		const float *yf = tm_priv_interp_tensor(it, m->outputs[0]);
		const int8_t *ins[1] = { qin };
		int8_t *outs[1] = { qout };
		tmrt_status rs;

		for (size_t j = 0; j < nx; j++)
			qin[tm_priv_layout_index(&r->lw.in_layout[0], j)] =
				quantize_value(xf[s * nx + j], &x->q);
		rs = tmrt_run(rm, ins, outs, arena, rm->arena_size);
		CU_ASSERT_EQUAL(rs, TMRT_OK);
		if (rs)
			goto out;
		for (size_t j = 0; j < ny; j++) {
			int8_t q = qout[tm_priv_layout_index(
				&r->lw.out_layout[0], j)];
			double d = y->q.scale * (double)(q - y->q.zero_point);
			double e = fabs(d - (double)yf[s * ny + j]) /
				   y->q.scale;

			r->steps = e > r->steps ? e : r->steps;
		}
	}
	rc = 0;
out:
	free(qin);
	free(qout);
	free(arena);
	free(pc);
	tm_priv_interp_free(it);
	return rc;
}

/* Runs b's model, asserts the error bound and prints the error. */
static void
check_bound(mb *b, const char *what, int per_channel, double bound)
{
	result r;

	if (run_model(b, per_channel, 1.0f, &r) == 0) {
		printf("[%s: %.3f steps] ", what, r.steps);
		CU_ASSERT(r.steps <= bound);
		if (r.steps > bound)
			fprintf(stderr, "\n  %s: %.3f steps > %.2f\n", what,
				r.steps, bound);
	}
	result_fini(&r);
	tm_model_free(b->m);
}

/* The lowered layer ops, in order. */
static int
has_ops(const result *r, const int32_t *ops, int32_t n)
{
	const tmrt_model *rm = tm_priv_blob_model(r->lw.blob);

	if (rm->n_layers != n)
		return 0;
	for (int32_t i = 0; i < n; i++)
		if (rm->layers[i].op != ops[i])
			return 0;
	return 1;
}

/* ---- Tests ------------------------------------------------------------ */

/* conv2d over x[3, 9, 8], 4 filters: stride, asymmetric pads, dilation,
 * per tensor and per channel. */
static void
test_conv(void)
{
	static const struct {
		int64_t kh, kw, s0, s1, d0, d1, p[4];
	} cf[] = {
		{ 3, 3, 1, 1, 1, 1, { 1, 1, 1, 1 } },
		{ 3, 3, 2, 2, 1, 1, { 1, 1, 1, 1 } },
		{ 2, 3, 2, 1, 1, 1, { 0, 1, 1, 0 } },
		{ 3, 3, 1, 1, 2, 2, { 2, 2, 2, 2 } },
		{ 1, 1, 1, 1, 1, 1, { 0, 0, 0, 0 } },
	};

	for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++)
		for (int pc = 0; pc < 2; pc++) {
			mb b;
			tm_node *n;
			char what[64];

			mb_begin(&b, 11u + (unsigned)i, 3, 3, 9, 8);
			n = mb_conv(&b, "conv", "x", 4, 3, cf[i].kh,
				    cf[i].kw, 1);
			if (n) {
				n->attrs.stride[0] = cf[i].s0;
				n->attrs.stride[1] = cf[i].s1;
				n->attrs.dilation[0] = cf[i].d0;
				n->attrs.dilation[1] = cf[i].d1;
				memcpy(n->attrs.pads, cf[i].p, sizeof cf[i].p);
			}
			snprintf(what, sizeof what, "conv %zu%s", i,
				 pc ? " per channel" : "");
			check_bound(&b, what, pc, BOUND);
		}
}

/* Depthwise: group = 3 input channels, multiplier 1 and 2, stride 2. */
static void
test_depthwise(void)
{
	for (int mult = 1; mult <= 2; mult++) {
		mb b;
		tm_node *n;
		result r;
		static const int32_t ops[1] = { TMRT_OP_DEPTHWISE_CONV2D };

		mb_begin(&b, 7u + (unsigned)mult, 3, 3, 7, 6);
		n = mb_conv(&b, "dw", "x", 3 * mult, 3, 3, 3, 3);
		if (n) {
			n->attrs.stride[0] = n->attrs.stride[1] = mult;
			n->attrs.pads[0] = n->attrs.pads[1] = 1;
			n->attrs.pads[2] = n->attrs.pads[3] = 1;
		}
		if (run_model(&b, 1, 1.0f, &r) == 0) {
			printf("[depthwise x%d: %.3f steps] ", mult, r.steps);
			CU_ASSERT(r.steps <= BOUND);
			CU_ASSERT(has_ops(&r, ops, 1));
		}
		result_fini(&r);
		tm_model_free(b.m);
	}
}

/* A conv2d group that is neither 1 nor the input channels: the runtime's
 * grouped CONV2D (OHWI, I = C / group), not the depthwise kernel. */
static void
test_grouped(void)
{
	static const int32_t ops[1] = { TMRT_OP_CONV2D };

	for (int pc = 0; pc < 2; pc++) {
		mb b;
		tm_node *n;
		result r;

		mb_begin(&b, 3u + (unsigned)pc, 3, 4, 5, 5);
		n = mb_conv(&b, "g2", "x", 6, 4, 3, 3, 2);
		if (n)
			n->attrs.pads[0] = n->attrs.pads[3] = 1;
		if (run_model(&b, pc, 1.0f, &r) == 0) {
			printf("[grouped%s: %.3f steps] ", pc ? " pc" : "",
			       r.steps);
			CU_ASSERT(r.steps <= BOUND);
			CU_ASSERT(has_ops(&r, ops, 1));
			CU_ASSERT_EQUAL(((const tmrt_conv_params *)
					 tm_priv_blob_model(r.lw.blob)
						 ->layers[0].params)->groups,
					2);
		}
		result_fini(&r);
		tm_model_free(b.m);
	}
}

/* Pools straight on the input: the output's range is narrower than the
 * input's (a requantizer that is not the identity). */
static void
test_pools(void)
{
	static const struct {
		tm_op op;
		int64_t k, s, pad;
		int incl;
	} cf[] = {
		{ TM_OP_MAXPOOL2D, 2, 2, 0, 0 },
		{ TM_OP_MAXPOOL2D, 3, 2, 1, 0 },
		{ TM_OP_AVGPOOL2D, 3, 1, 1, 0 },
		{ TM_OP_AVGPOOL2D, 3, 1, 1, 1 },
		{ TM_OP_AVGPOOL2D, 2, 2, 0, 0 },
		{ TM_OP_GLOBAL_AVGPOOL, 0, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof cf / sizeof cf[0]; i++) {
		mb b;
		tm_node *n;
		char what[64];

		mb_begin(&b, 21u + (unsigned)i, 3, 4, 7, 6);
		n = mb_unary(&b, "pool", cf[i].op, "x");
		if (n && cf[i].op != TM_OP_GLOBAL_AVGPOOL) {
			n->attrs.kernel[0] = n->attrs.kernel[1] = cf[i].k;
			n->attrs.stride[0] = n->attrs.stride[1] = cf[i].s;
			for (int p = 0; p < 4; p++)
				n->attrs.pads[p] = cf[i].pad;
			n->attrs.count_include_pad = cf[i].incl;
		}
		snprintf(what, sizeof what, "%s %zu", tm_op_name(cf[i].op), i);
		check_bound(&b, what, 0, BOUND);
	}
}

/* a = conv1x1(x), b = conv1x1(x) * 6 (a range six times larger): add
 * with two different scales; then an image plus a per-channel [C, 1, 1]
 * (its global average), the smaller one given first. */
static void
test_add(void)
{
	mb b;
	tm_node *n;
	const char *ab[2] = { "a", "b" };
	const char *ga[2] = { "g", "a" };
	static const int32_t ops[5] = { TMRT_OP_CONV2D, TMRT_OP_CONV2D,
					TMRT_OP_ADD, TMRT_OP_GLOBAL_AVG_POOL,
					TMRT_OP_ADD };
	result r;

	mb_begin(&b, 5, 3, 3, 5, 4);
	mb_conv(&b, "a", "x", 4, 3, 1, 1, 1);
	mb_conv(&b, "b", "x", 4, 3, 3, 3, 1);
	n = b.bad ? NULL : b.m->nodes[1];
	if (n) {
		tm_tensor *w = tm_model_find_tensor(b.m, "b.weight");

		n->attrs.pads[0] = n->attrs.pads[1] = 1;
		n->attrs.pads[2] = n->attrs.pads[3] = 1;
		for (size_t i = 0; i < tm_tensor_numel(w); i++)
			w->data[i] *= 6.0f;
	}
	mb_node(&b, "sum", TM_OP_ADD, 2, ab);
	mb_unary(&b, "g", TM_OP_GLOBAL_AVGPOOL, "a");
	ga[1] = "sum";
	mb_node(&b, "y", TM_OP_ADD, 2, ga);
	/* Two requantizing layers deep: the bound of two. */
	if (run_model(&b, 0, 1.0f, &r) == 0) {
		const tm_tensor *sa = tm_model_find_tensor(b.m, "a");
		const tm_tensor *sb = tm_model_find_tensor(b.m, "b");
		const tmrt_add_params *p =
			tm_priv_blob_model(r.lw.blob)->layers[4].params;

		printf("[add: %.3f steps] ", r.steps);
		CU_ASSERT(r.steps <= 2.0);
		CU_ASSERT(sb->q.scale > 4.0 * sa->q.scale);
		CU_ASSERT(has_ops(&r, ops, 5));
		/* The per-channel operand went second. */
		CU_ASSERT_EQUAL(p->size, 4 * 5 * 4);
		CU_ASSERT_EQUAL(p->in2_size, 4);
	}
	result_fini(&r);
	tm_model_free(b.m);
}

/* Two convolutions of different ranges concatenated along channels, and
 * along the height. */
static void
test_concat(void)
{
	for (int64_t axis = 0; axis < 3; axis++) {
		mb b;
		tm_node *n;
		const char *ab[2] = { "a", "b" };
		char what[32];

		mb_begin(&b, 31u + (unsigned)axis, 3, 3, 5, 4);
		mb_conv(&b, "a", "x", 4, 3, 1, 1, 1);
		mb_conv(&b, "b", "x", 4, 3, 1, 1, 1);
		if (!b.bad) {
			tm_tensor *w = tm_model_find_tensor(b.m, "b.weight");

			for (size_t i = 0; i < tm_tensor_numel(w); i++)
				w->data[i] *= 5.0f;
		}
		n = mb_node(&b, "cat", TM_OP_CONCAT, 2, ab);
		if (n)
			n->attrs.axis = axis;
		snprintf(what, sizeof what, "concat axis %d", (int)axis);
		/* conv then concat: two roundings. */
		check_bound(&b, what, 0, 2.0);
	}
}

/* Softmax over the channels of an image and over a vector; its output
 * scale is 1/256. */
static void
test_softmax(void)
{
	mb b;
	tm_node *n;

	mb_begin(&b, 41, 3, 5, 3, 4);
	n = mb_unary(&b, "sm", TM_OP_SOFTMAX, "x");
	if (n)
		n->attrs.axis = 0;
	check_bound(&b, "softmax channels", 0, BOUND);
	mb_begin(&b, 42, 3, 5, 3, 4);
	n = mb_unary(&b, "sm", TM_OP_SOFTMAX, "x");
	if (n)
		n->attrs.axis = 2;
	check_bound(&b, "softmax width", 0, BOUND);
	mb_begin(&b, 43, 1, 10, 1, 1);
	mb_unary(&b, "sm", TM_OP_SOFTMAX, "x");
	check_bound(&b, "softmax vector", 0, BOUND);
}

/* x[3, 4, 5] -> conv -> flatten -> dense 60 -> 7: the dense reads HWC. */
static void
test_flatten_dense(void)
{
	mb b;
	static const int64_t ws[2] = { 7, 4 * 4 * 5 }, bs[1] = { 7 };
	const char *ins[3] = { "f", "fc.weight", "fc.bias" };

	mb_begin(&b, 51, 3, 3, 4, 5);
	mb_conv(&b, "c", "x", 4, 3, 3, 3, 1);
	if (!b.bad) {
		b.m->nodes[0]->attrs.pads[0] = b.m->nodes[0]->attrs.pads[1] = 1;
		b.m->nodes[0]->attrs.pads[2] = b.m->nodes[0]->attrs.pads[3] = 1;
	}
	mb_unary(&b, "f", TM_OP_FLATTEN, "c");
	mb_const(&b, "fc.weight", 2, ws, -0.3f, 0.3f);
	mb_const(&b, "fc.bias", 1, bs, -0.1f, 0.1f);
	mb_node(&b, "fc", TM_OP_DENSE, 3, ins);
	check_bound(&b, "conv flatten dense", 1, 2.0);
}

/* The permutation, exactly: x[2, 1, 2] (C 2, H 1, W 2) quantized with
 * scale 1 and zero point 0 (range [-128, 127]), flattened, through a
 * dense with the 4x4 identity (q 127 at s_w 1/127) into a range [-128,
 * 127] again: M = 1/127 and y = x in the model's order. The runtime
 * holds x HWC: model x = (c0: 5, -7; c1: 11, 100) is the bytes 5, 11,
 * -7, 100, and y must be 5, -7, 11, 100; the lowered weight is the
 * identity with columns permuted, row o having 127 at column
 * (o % 2) * 2 + o / 2. */
static void
test_flatten_exact(void)
{
	static const int64_t xs[3] = { 2, 1, 2 }, ws[2] = { 4, 4 };
	static const float eye[16] = { 1, 0, 0, 0, 0, 1, 0, 0,
				       0, 0, 1, 0, 0, 0, 0, 1 };
	static const int8_t in[4] = { 5, 11, -7, 100 };
	static const int8_t want[4] = { 5, -7, 11, 100 };
	static const int8_t want_w[16] = { 127, 0, 0, 0, 0, 0, 127, 0,
					   0, 127, 0, 0, 0, 0, 0, 127 };
	const char *fins[2] = { "f", "W" };
	const char *fo[1] = { "f" }, *yo[1] = { "y" }, *xi[1] = { "x" };
	tm_model *m = tm_model_new();
	tm_priv_lowered lw;
	tm_error err;
	int8_t out[4], arena[64];
	const int8_t *ip[1] = { in };
	int8_t *op[1] = { out };
	const tmrt_model *rm;
	const tmrt_fc_params *fc;

	tm_error_clear(&err);
	memset(&lw, 0, sizeof lw);
	CU_ASSERT_FATAL(m != NULL);
	if (tm_model_add_input(m, "x", 3, xs, &err) ||
	    tm_model_add_const(m, "W", 2, ws, eye, &err) ||
	    tm_model_add_node(m, "f", TM_OP_FLATTEN, xi, 1, fo, 1, NULL,
			      &err) ||
	    tm_model_add_node(m, "y", TM_OP_DENSE, fins, 2, yo, 1, NULL,
			      &err) ||
	    tm_model_finalize(m, &err)) {
		CU_FAIL("model");
		goto out;
	}
	for (size_t t = 0; t < m->n_tensors; t++) {
		tm_tensor *x = m->tensors[t];

		if (x->kind == TM_TENSOR_CONST)
			continue;
		x->has_range = 1;
		x->lo = -128.0f;
		x->hi = 127.0f;
	}
	CU_ASSERT_EQUAL_FATAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(m->tensors[m->inputs[0]]->q.scale, 1.0);
	CU_ASSERT_EQUAL(m->tensors[m->inputs[0]]->q.zero_point, 0);
	if (tm_priv_lower(m, 0, &lw, &err)) {
		CU_FAIL("lower");
		goto out;
	}
	rm = tm_priv_blob_model(lw.blob);
	CU_ASSERT_EQUAL_FATAL(rm->n_layers, 2);
	CU_ASSERT_EQUAL(rm->layers[0].op, TMRT_OP_COPY);
	fc = rm->layers[1].params;
	CU_ASSERT_EQUAL(memcmp(fc->weights, want_w, 16), 0);
	/* The input is an image: HWC in the runtime. */
	CU_ASSERT_EQUAL(lw.in_layout[0].c, 2);
	CU_ASSERT_EQUAL(lw.in_layout[0].hw, 2);
	CU_ASSERT_EQUAL(rm->arena_size <= sizeof arena, 1);
	CU_ASSERT_EQUAL(tmrt_run(rm, ip, op, arena, sizeof arena), TMRT_OK);
	CU_ASSERT_EQUAL(memcmp(out, want, 4), 0);
	/* The model's own int8 weights are untouched. */
	CU_ASSERT_EQUAL(tm_model_find_tensor(m, "W")->q8[1], 0);
	CU_ASSERT_EQUAL(tm_model_find_tensor(m, "W")->q8[5], 127);
out:
	tm_priv_lowered_fini(&lw);
	tm_model_free(m);
}

/* tm_lowered_output_hwc: x[2, 1, 2] flattened is a model output whose
 * bytes are in HWC order (a vector, so its dims cannot say it); the
 * image x itself, as an output too, says so by its dims (0). */
static void
test_output_hwc(void)
{
	static const int64_t xs[3] = { 2, 1, 2 };
	const char *xi[1] = { "x" }, *fo[1] = { "f" }, *ro[1] = { "r" };
	tm_model *m = tm_model_new();
	tm_lowered *l = NULL;
	tm_error err;
	size_t ch = 0, hw = 0;

	tm_error_clear(&err);
	CU_ASSERT_FATAL(m != NULL);
	if (tm_model_add_input(m, "x", 3, xs, &err) ||
	    tm_model_add_node(m, "r", TM_OP_RELU, xi, 1, ro, 1, NULL, &err) ||
	    tm_model_add_node(m, "f", TM_OP_FLATTEN, ro, 1, fo, 1, NULL,
			      &err) ||
	    tm_model_finalize(m, &err)) {
		CU_FAIL("model");
		goto out;
	}
	m->outputs = realloc(m->outputs, 2 * sizeof *m->outputs);
	CU_ASSERT_FATAL(m->outputs != NULL);
	m->outputs[1] = tm_model_tensor_index(m, "r");
	m->n_outputs = 2;
	for (size_t t = 0; t < m->n_tensors; t++) {
		m->tensors[t]->has_range = 1;
		m->tensors[t]->lo = -1.0f;
		m->tensors[t]->hi = 1.0f;
	}
	CU_ASSERT_EQUAL_FATAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL_FATAL(tm_model_lower(m, &l, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_lowered_output_hwc(l, 0, &ch, &hw), 1);
	CU_ASSERT_EQUAL(ch, 2);
	CU_ASSERT_EQUAL(hw, 2);
	CU_ASSERT_EQUAL(tm_lowered_output_hwc(l, 1, &ch, &hw), 0);
	CU_ASSERT_EQUAL(tm_lowered_output_hwc(l, 2, &ch, &hw), 0);
	CU_ASSERT_EQUAL(tm_lowered_output_hwc(l, -1, &ch, &hw), 0);
out:
	tm_lowered_free(l);
	tm_model_free(m);
}

/* 1x1 conv -> Clip(0, 6) (ReLU6): folded into the conv's clamp, act_min
 * = zp and act_max = lround(6 / s_out) + zp of the clip's output; the
 * clip makes no layer. Inputs in [-4, 4) so the conv's output passes 6;
 * a 1x1 kernel (3 taps) so the input's rounding, seen through the
 * weights, stays within the bound of a 0..6 output. */
static void
test_relu6(void)
{
	mb b;
	tm_node *n, *clip;
	result r;
	static const int32_t ops[1] = { TMRT_OP_CONV2D };

	mb_begin(&b, 61, 3, 3, 5, 5);
	n = mb_conv(&b, "c", "x", 4, 3, 1, 1, 1);
	clip = mb_unary(&b, "r6", TM_OP_CLIP, "c");
	if (clip) {
		clip->attrs.clip_min = 0.0f;
		clip->attrs.clip_max = 6.0f;
	}
	if (run_model(&b, 0, 4.0f, &r) == 0) {
		const tm_tensor *y = tm_model_find_tensor(b.m, "r6");
		const tmrt_conv_params *p =
			tm_priv_blob_model(r.lw.blob)->layers[0].params;

		/* The clip cuts the range the taps produce (c's) down to
		 * [0, 6]: the input's rounding is seen at a step that much
		 * finer, so the bound grows by the same ratio. */
		const tm_tensor *cy = tm_model_find_tensor(b.m, "c");
		double ratio = ((double)cy->hi - (cy->lo < 0 ? cy->lo : 0)) /
			       6.0;

		printf("[relu6: %.3f steps, range ratio %.2f] ", r.steps,
		       ratio);
		CU_ASSERT(ratio > 1.0);
		CU_ASSERT(r.steps <= BOUND * ratio);
		CU_ASSERT(has_ops(&r, ops, 1));
		CU_ASSERT(n->fused_relu);
		CU_ASSERT_EQUAL(y->hi, 6.0f);	/* it did clip */
		CU_ASSERT_EQUAL(p->act_min, y->q.zero_point);
		CU_ASSERT_EQUAL(p->act_max,
				lround(6.0 / y->q.scale) + y->q.zero_point);
		CU_ASSERT_EQUAL(p->output_zp, y->q.zero_point);
	}
	result_fini(&r);
	tm_model_free(b.m);
}

/* A BatchNorm bn_fold cannot fold: on the model input (image and
 * vector), and after an add. Weights exact: w_c = gamma_c / sqrt(var_c
 * + eps) quantizes to +-127 at its own scale |w_c| / 127. */
static void
mb_bn(mb *b, const char *name, const char *in, int64_t C)
{
	char g[64], be[64], mu[64], v[64];
	const int64_t s[1] = { C };
	const char *ins[5] = { in, g, be, mu, v };

	snprintf(g, sizeof g, "%s.gamma", name);
	snprintf(be, sizeof be, "%s.beta", name);
	snprintf(mu, sizeof mu, "%s.mean", name);
	snprintf(v, sizeof v, "%s.var", name);
	mb_const(b, g, 1, s, -2.0f, 2.0f);
	mb_const(b, be, 1, s, -1.0f, 1.0f);
	mb_const(b, mu, 1, s, -0.5f, 0.5f);
	mb_const(b, v, 1, s, 0.1f, 2.0f);
	mb_node(b, name, TM_OP_BATCHNORM, 5, ins);
}

static void
test_batchnorm(void)
{
	static const int32_t ops1[1] = { TMRT_OP_DEPTHWISE_CONV2D };
	mb b;
	result r;
	const char *ab[2] = { "a", "c" };

	/* On the input image, ReLU folded. */
	mb_begin(&b, 71, 3, 5, 4, 3);
	mb_bn(&b, "bn", "x", 5);
	mb_unary(&b, "r", TM_OP_RELU, "bn");
	if (run_model(&b, 0, 1.0f, &r) == 0) {
		const tm_tensor *g = tm_model_find_tensor(b.m, "bn.gamma");
		const tm_tensor *v = tm_model_find_tensor(b.m, "bn.var");
		const tmrt_conv_params *p =
			tm_priv_blob_model(r.lw.blob)->layers[0].params;

		printf("[bn image: %.3f steps] ", r.steps);
		CU_ASSERT(r.steps <= BOUND);
		CU_ASSERT(has_ops(&r, ops1, 1));
		CU_ASSERT_EQUAL(p->kernel_h, 1);
		CU_ASSERT_EQUAL(p->groups, 5);
		CU_ASSERT_EQUAL(p->n_requant, 5);
		CU_ASSERT_EQUAL(p->act_min,
				tm_model_find_tensor(b.m, "r")->q.zero_point);
		for (int c = 0; c < 5; c++) {
			double w = g->data[c] / sqrt(v->data[c] + 1e-5);

			CU_ASSERT_EQUAL(g->q8[c], w > 0 ? 127 : -127);
			CU_ASSERT_EQUAL(p->weights[c], g->q8[c]);
			CU_ASSERT_DOUBLE_EQUAL(g->q.scales[c],
					       fabs((float)w) / 127.0, 1e-12);
		}
	}
	result_fini(&r);
	tm_model_free(b.m);

	/* On an input vector. */
	mb_begin(&b, 72, 1, 6, 1, 1);
	mb_bn(&b, "bn", "x", 6);
	check_bound(&b, "bn vector", 0, BOUND);

	/* After an add (nothing to fold into). */
	mb_begin(&b, 73, 3, 3, 4, 4);
	mb_conv(&b, "a", "x", 3, 3, 1, 1, 1);
	mb_conv(&b, "c", "x", 3, 3, 1, 1, 1);
	mb_node(&b, "s", TM_OP_ADD, 2, ab);
	mb_bn(&b, "bn", "s", 3);
	check_bound(&b, "bn after add", 0, 2.0);
}

/* What the runtime cannot run says which layer. */
static void
test_refused(void)
{
	mb b;
	result r;
	const char *xk[2] = { "x", "k" };
	static const int64_t ks[3] = { 2, 1, 1 };

	mb_begin(&b, 81, 3, 2, 3, 3);
	mb_const(&b, "k", 3, ks, 0.5f, 1.0f);
	mb_node(&b, "addk", TM_OP_ADD, 2, xk);
	b.expect_fail = 1;
	CU_ASSERT_NOT_EQUAL(run_model(&b, 0, 1.0f, &r), 0);
	CHECK_ERR(&b.err, "layer 'addk': add of the constant 'k' is not "
			  "supported by the integer runtime (both operands "
			  "must be activations)");
	result_fini(&r);
	tm_model_free(b.m);
}

/* ---- The PyTorch CNN end to end --------------------------------------- */

/* tests/data/cnn through bn_fold, minmax, quantize, lower and verify on
 * its 8 held-out samples. Measured when written: softmax output max
 * |int8 - float| 0.00636 (1.63 steps of 1/256), mean 0.00105, SQNR
 * 37.56 dB, top-1 8/8; arena 1320 bytes at peak of 2044. The asserted
 * bounds: at most 2 output steps (2/256) anywhere, the bound of a chain
 * whose last layers (dense, softmax) each round once after an input
 * already within a step; SQNR above 35 dB (the measured 37.6 less a
 * margin for a libm that rounds exp differently); every top-1 kept. */
static void
test_cnn(void)
{
	char yaml[4096], path[1024], msg[MSG_MAX];
	const char *d = tm_test_srcdir();
	tm_registry *reg = tm_registry_new();
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	tm_run_summary sum;
	tm_error err;

	tm_error_clear(&err);
	memset(&sum, 0, sizeof sum);
	snprintf(yaml, sizeof yaml,
		 "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s/data/cnn/weights\n"
		 "  inputs: {input: [3, 12, 10]}\n  layers:\n"
		 "    - {name: conv1, op: conv2d, input: input, padding: [1]}\n"
		 "    - {name: bn1, op: batchnorm, input: conv1}\n"
		 "    - {name: relu1, op: relu, input: bn1}\n"
		 "    - {name: pool1, op: maxpool2d, input: relu1, "
		 "kernel: [2]}\n"
		 "    - {name: conv2, op: conv2d, input: pool1, stride: [2], "
		 "padding: [1]}\n"
		 "    - {name: bn2, op: batchnorm, input: conv2, eps: 0.001}\n"
		 "    - {name: relu2, op: relu, input: bn2}\n"
		 "    - {name: dw, op: conv2d, input: relu2, padding: [1], "
		 "groups: 16}\n"
		 "    - {name: add, op: add, inputs: [dw, relu2]}\n"
		 "    - {name: gap, op: global_avgpool, input: add}\n"
		 "    - {name: flatten, op: flatten, input: gap}\n"
		 "    - {name: fc, op: dense, input: flatten}\n"
		 "    - {name: softmax, op: softmax, input: fc, dim: 1}\n"
		 "transforms:\n  - bn_fold\n"
		 "calibration:\n  data: %s/data/cnn/calib.npy\n"
		 "  observer: minmax\n"
		 "verify:\n  data: %s/data/cnn/inputs.npy\n", d, d, d);
	snprintf(path, sizeof path, "%s/cnn_verify.yaml", tm_test_tmpdir());
	tm_test_write_file(path, yaml);
	if (!reg || tm_registry_scan(reg, NULL, NULL, NULL, &err) ||
	    tm_pipeline_load(path, reg, NULL, &pl, &err) ||
	    tm_pipeline_run(pl, NULL, NULL, &sum, &m, &err)) {
		tm_error_format(&err, msg, sizeof msg);
		fprintf(stderr, "\n  %s\n", msg);
		CU_FAIL("cnn pipeline");
		goto out;
	}
	CU_ASSERT_FATAL(sum.verify.ran && sum.verify.n_outputs == 1);
	printf("[max %.6f mean %.6f SQNR %.2f dB top-1 %.2f arena %zu] ",
	       sum.verify.outputs[0].max_abs, sum.verify.outputs[0].mean_abs,
	       sum.verify.outputs[0].sqnr_db, sum.verify.outputs[0].top1,
	       sum.verify.arena_bytes);
	CU_ASSERT_EQUAL(sum.verify.samples, 8);
	CU_ASSERT(sum.verify.outputs[0].max_abs <= 2.0 / 256.0);
	CU_ASSERT(sum.verify.outputs[0].mean_abs <= 0.5 / 256.0);
	CU_ASSERT(sum.verify.outputs[0].sqnr_db >= 35.0);
	CU_ASSERT_EQUAL(sum.verify.outputs[0].top1, 1.0);
	/* Liveness reuse: below the 2044 bytes of all activations. */
	CU_ASSERT_EQUAL(sum.verify.arena_bytes, 1320);
out:
	tm_run_summary_fini(&sum);
	tm_model_free(m);
	tm_pipeline_free(pl);
	tm_registry_free(reg);
}

static const tm_test_case op_cases[] = {
	{ "conv2d: stride, pads, dilation, per channel", test_conv },
	{ "depthwise, multiplier 1 and 2", test_depthwise },
	{ "grouped conv", test_grouped },
	{ "max, average and global pools", test_pools },
	{ "add: two scales, per-channel broadcast", test_add },
	{ "concat of two scales, every axis", test_concat },
	{ "softmax over channels, width, vector", test_softmax },
	{ "conv, flatten, dense", test_flatten_dense },
	{ "flatten -> dense permutation, exactly", test_flatten_exact },
	{ "a flattened image output is HWC", test_output_hwc },
	{ "ReLU6 folded into the clamp", test_relu6 },
	{ "unfolded BatchNorm as integer layer", test_batchnorm },
	{ "constant operands refused", test_refused },
	{ NULL, NULL }
};

static const tm_test_case cnn_cases[] = {
	{ "PyTorch CNN: bn_fold, minmax, verify", test_cnn },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("lower images", op_cases) ||
	    tm_test_add_suite("cnn", cnn_cases))
		return 99;
	return tm_test_run();
}
