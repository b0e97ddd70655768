/* tmpipe tests — the quantize pass: per-tensor and per-channel weights,
 * symmetric activation ranges, fixed-range outputs. Known answers are
 * QUANT.md's formulas evaluated here by hand (in double), and an int8 run
 * through libtmrt checked against the float layer. */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>
#include <tmrt/tmrt.h>

#include "quantize_priv.h"
#include "runner.h"

/* x[3] -> dense 3->4 -> y[4]; row 0 of W is tiny (x0.05) and row 1 large
 * (x6), as in the importer's engineered imbalance: per-tensor scales
 * crush row 0. */
static const float W[12] = {
	0.05f * 0.9f, 0.05f * -0.4f, 0.05f * 0.7f,
	6.0f * 0.3f, 6.0f * -0.8f, 6.0f * 0.5f,
	-0.6f, 0.2f, 0.9f,
	0.4f, 0.8f, -0.3f,
};
static const float B[4] = { 0.01f, -0.5f, 0.2f, 0.0f };

static tm_model *
make_dense(void)
{
	static const int64_t in_shape[1] = { 3 }, w_shape[2] = { 4, 3 };
	static const int64_t b_shape[1] = { 4 };
	const char *in[3] = { "x", "fc.weight", "fc.bias" };
	const char *out[1] = { "y" };
	tm_model *m = tm_model_new();
	tm_error err;
	tm_tensor *x, *y;

	tm_error_clear(&err);
	if (!m || tm_model_add_input(m, "x", 1, in_shape, &err) ||
	    tm_model_add_const(m, "fc.weight", 2, w_shape, W, &err) ||
	    tm_model_add_const(m, "fc.bias", 1, b_shape, B, &err) ||
	    tm_model_add_node(m, "fc", TM_OP_DENSE, in, 3, out, 1, NULL,
			      &err) ||
	    tm_model_finalize(m, &err)) {
		CU_FAIL("model");
		tm_model_free(m);
		return NULL;
	}
	/* Ranges as calibration would set them. */
	x = tm_model_find_tensor(m, "x");
	y = tm_model_find_tensor(m, "y");
	x->has_range = y->has_range = 1;
	x->lo = -1.0f;
	x->hi = 1.0f;
	y->lo = -12.0f;
	y->hi = 12.0f;
	return m;
}

static double
absmax_row(int r)
{
	double m = 0.0;

	for (int i = 0; i < 3; i++)
		m = fabs(W[r * 3 + i]) > m ? fabs(W[r * 3 + i]) : m;
	return m;
}

static void
test_per_channel_values(void)
{
	tm_model *m = make_dense();
	const unsigned char pc[1] = { 1 };
	const tm_tensor *w, *b, *x, *y;
	const tm_node *n;
	tm_error err;

	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_priv_quantize(m, pc, &err), TM_OK);
	w = tm_model_find_tensor(m, "fc.weight");
	b = tm_model_find_tensor(m, "fc.bias");
	x = tm_model_find_tensor(m, "x");
	y = tm_model_find_tensor(m, "y");
	n = m->nodes[0];
	CU_ASSERT_EQUAL(w->q.scheme, TM_QSCHEME_PER_CHANNEL);
	CU_ASSERT_EQUAL(w->q.n_channels, 4);
	CU_ASSERT_EQUAL(b->q.scheme, TM_QSCHEME_PER_CHANNEL);
	CU_ASSERT_EQUAL(n->n_requant, 4);
	for (int r = 0; r < 4; r++) {
		double s = absmax_row(r) / 127.0;
		int32_t mult, shift;

		CU_ASSERT_DOUBLE_EQUAL(w->q.scales[r], s, 1e-15);
		/* Every row uses its full int8 range. */
		for (int i = 0, big = 0; i < 3; i++) {
			long q = lround(W[r * 3 + i] / s);

			CU_ASSERT_EQUAL(w->q8[r * 3 + i], q);
			big |= labs(q) == 127;
			if (i == 2)
				CU_ASSERT_TRUE(big);
		}
		CU_ASSERT_EQUAL(b->q32[r], lround(B[r] / (x->q.scale * s)));
		CU_ASSERT_EQUAL(tm_quantize_multiplier(x->q.scale * s /
							       y->q.scale,
						       &mult, &shift, &err),
				TM_OK);
		CU_ASSERT_EQUAL(n->multiplier[r], mult);
		CU_ASSERT_EQUAL(n->shift[r], shift);
	}
	tm_model_free(m);
}

/* Mean |int8 - float| of row 0's output over a sweep of inputs, in units
 * of the output scale, with weights per tensor or per channel. */
static double
row0_error(int per_channel)
{
	tm_model *m = make_dense();
	const unsigned char pc[1] = { (unsigned char)per_channel };
	const tm_tensor *w, *b, *x, *y;
	const tm_node *n;
	double sum = 0.0;
	int count = 0;
	tm_error err;

	if (!m)
		return -1.0;
	tm_error_clear(&err);
	if (tm_priv_quantize(m, pc, &err)) {
		tm_model_free(m);
		return -1.0;
	}
	w = tm_model_find_tensor(m, "fc.weight");
	b = tm_model_find_tensor(m, "fc.bias");
	x = tm_model_find_tensor(m, "x");
	y = tm_model_find_tensor(m, "y");
	n = m->nodes[0];
	for (int k = -10; k <= 10; k++) {
		float xf[3] = { 0.1f * (float)k, -0.07f * (float)k, 0.5f };
		int8_t xq[3], yq[4];
		tmrt_fc_params p = { 3, 4, w->q8, b->q32, x->q.zero_point,
				     y->q.zero_point, n->multiplier, n->shift,
				     (int32_t)n->n_requant, -128, 127 };
		double want = B[0];

		for (int i = 0; i < 3; i++) {
			long q = lround(xf[i] / x->q.scale) + x->q.zero_point;

			xq[i] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
			/* The float layer on the quantized input, so only
			 * the weights' rounding is measured. */
			want += W[i] * x->q.scale * (xq[i] - x->q.zero_point);
		}
		if (tmrt_fully_connected_s8(&p, xq, yq) != TMRT_OK) {
			CU_FAIL("tmrt_fully_connected_s8");
			break;
		}
		sum += fabs((yq[0] - y->q.zero_point) * y->q.scale - want) /
		       y->q.scale;
		count++;
	}
	tm_model_free(m);
	return count ? sum / count : -1.0;
}

static void
test_per_channel_helps_small_rows(void)
{
	double per_tensor = row0_error(0), per_channel = row0_error(1);

	CU_ASSERT(per_tensor >= 0.0 && per_channel >= 0.0);
	/* Per channel, row 0 is within the output's own rounding. */
	CU_ASSERT(per_channel <= 0.5 + 1e-9);
	/* Per tensor, its weights round to a handful of levels. */
	CU_ASSERT(per_tensor > per_channel);
}

static void
test_symmetric_range(void)
{
	tm_model *m = make_dense();
	tm_tensor *y;
	tm_error err;

	if (!m)
		return;
	tm_error_clear(&err);
	y = tm_model_find_tensor(m, "y");
	/* A symmetric observer's (-t, t): zero point 0 on -127..127, where
	 * the asymmetric formula gives lround(-0.5) = -1. */
	y->symmetric_range = 1;
	CU_ASSERT_EQUAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(y->q.zero_point, 0);
	CU_ASSERT_DOUBLE_EQUAL(y->q.scale, 12.0 / 127.0, 1e-15);
	y->symmetric_range = 0;
	CU_ASSERT_EQUAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(y->q.zero_point, -1);
	CU_ASSERT_DOUBLE_EQUAL(y->q.scale, 24.0 / 255.0, 1e-15);
	tm_model_free(m);
}

/* Scales a frontend gave (an ONNX QDQ model) are kept, except a
 * softmax's: libtmrt's softmax writes 1/256 steps at zero point -128
 * whatever it is told, so those win (with a note), where a sigmoid's
 * table follows the model's. */
static void
test_given_scales(void)
{
	static const int64_t shape[1] = { 4 };
	const char *in[1] = { "x" }, *o1[1] = { "p" }, *o2[1] = { "s" };
	tm_model *m = tm_model_new();
	tm_tensor *x, *p, *s;
	tm_error err;

	tm_error_clear(&err);
	if (!m || tm_model_add_input(m, "x", 1, shape, &err) ||
	    tm_model_add_node(m, "sm", TM_OP_SOFTMAX, in, 1, o1, 1, NULL,
			      &err) ||
	    tm_model_add_node(m, "sg", TM_OP_SIGMOID, in, 1, o2, 1, NULL,
			      &err) ||
	    tm_model_finalize(m, &err)) {
		CU_FAIL("model");
		tm_model_free(m);
		return;
	}
	x = tm_model_find_tensor(m, "x");
	p = tm_model_find_tensor(m, "p");
	s = tm_model_find_tensor(m, "s");
	x->quant_given = p->quant_given = s->quant_given = 1;
	x->q.scale = 0.05;
	x->q.zero_point = 3;
	p->q.scale = s->q.scale = 1.0 / 255.0;
	p->q.zero_point = s->q.zero_point = -128;
	CU_ASSERT_EQUAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(x->q.scale, 0.05);
	CU_ASSERT_EQUAL(x->q.zero_point, 3);
	CU_ASSERT_EQUAL(p->q.scale, 1.0 / 256.0);
	CU_ASSERT_EQUAL(p->q.zero_point, -128);
	CU_ASSERT_EQUAL(s->q.scale, 1.0 / 255.0);
	CU_ASSERT_EQUAL(s->q.zero_point, -128);
	/* The sigmoid's table is built on the given output scale: entry
	 * for x_q = 127 is lround(sigmoid(0.05 * 124) * 255) - 128. */
	CU_ASSERT_EQUAL(m->nodes[1]->lut[255],
			(int8_t)(lround(255.0 / (1.0 + exp(-0.05 * 124))) -
				 128));
	tm_model_free(m);
}

static const tm_test_case cases[] = {
	{ "per-channel scales, biases, requantizers", test_per_channel_values },
	{ "per-channel weights keep small rows", test_per_channel_helps_small_rows },
	{ "symmetric ranges get zero point 0", test_symmetric_range },
	{ "given scales kept, a softmax's replaced", test_given_scales },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("quantize", cases))
		return 99;
	return tm_test_run();
}
