/* tmpipe tests — the XOR example end to end through the core: every known
 * number of QUANT.md, then the int8 run through libtmrt. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>
#include <tmrt/tmrt.h>

#include "loader_priv.h"
#include "pipeline_priv.h"
#include "run_priv.h"
#include "runner.h"

static tm_model *model;
static char header[4200];
static tm_run_summary summary;

/* Runs examples/xor/pipeline.yaml, writing its header to the tmpdir. */
static tm_model *
run_xor(void)
{
	char path[4096], set[4200];
	const char *srcdir = getenv("srcdir");
	const char *sets[2] = { set, NULL };
	tm_registry *r = tm_registry_new();
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	tm_error err;
	char msg[2048];

	tm_error_clear(&err);
	snprintf(path, sizeof path, "%s/examples/xor/pipeline.yaml",
		 srcdir && *srcdir ? srcdir : ".");
	snprintf(header, sizeof header, "%s/xor_model.h", tm_test_tmpdir());
	snprintf(set, sizeof set, "emit.c_header.path=%s", header);
	if (!r || tm_registry_scan(r, NULL, NULL, NULL, &err) ||
	    tm_pipeline_load(path, r, sets, &pl, &err) ||
	    tm_pipeline_run(pl, NULL, NULL, &summary, &m, &err)) {
		fprintf(stderr, "%s\n", tm_error_format(&err, msg, sizeof msg));
		m = NULL;
	}
	tm_pipeline_free(pl);
	tm_registry_free(r);
	return m;
}

static void
test_summary(void)
{
	CU_ASSERT_PTR_NOT_NULL(model);
	CU_ASSERT_EQUAL(summary.samples, 4);
	CU_ASSERT_EQUAL(summary.tensors_observed, 4);
	CU_ASSERT_EQUAL(summary.tensors_fixed, 1);
	CU_ASSERT_EQUAL(summary.files_written, 1);
	CU_ASSERT_EQUAL(summary.stages, 4);
}

static const tm_tensor *
tensor(const char *name)
{
	const tm_tensor *t = model ? tm_model_find_tensor(model, name) : NULL;

	CU_ASSERT_PTR_NOT_NULL(t);
	return t;
}

static const tm_node *
node(const char *name)
{
	for (size_t i = 0; model && i < model->n_nodes; i++)
		if (strcmp(model->nodes[i]->name, name) == 0)
			return model->nodes[i];
	CU_FAIL("node not found");
	return NULL;
}

static void
check_act(const char *name, double scale, int zp)
{
	const tm_tensor *t = tensor(name);

	if (!t)
		return;
	CU_ASSERT_EQUAL(t->q.scheme, TM_QSCHEME_PER_TENSOR);
	/* Scales are exact doubles of the same expression. */
	CU_ASSERT_DOUBLE_EQUAL(t->q.scale, scale, 1e-15);
	CU_ASSERT_EQUAL(t->q.zero_point, zp);
}

static void
test_activations(void)
{
	CU_ASSERT_PTR_NOT_NULL(model);
	check_act("input", 1.0 / 255, -128);
	check_act("fc1", 3.0 / 255, -43);
	check_act("h1", 2.0 / 255, -128);
	check_act("fc2", 4.0 / 255, -1);
	check_act("out", 1.0 / 256, -128);
}

static void
test_weights(void)
{
	const tm_tensor *w1 = tensor("fc1.weight"), *w2 = tensor("fc2.weight");
	static const int8_t q2[4] = { 64, -127, 64, -127 };

	if (!w1 || !w2)
		return;
	CU_ASSERT_DOUBLE_EQUAL(w1->q.scale, 1.0 / 127, 1e-15);
	CU_ASSERT_DOUBLE_EQUAL(w2->q.scale, 4.0 / 127, 1e-15);
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(w1->q8[i], 127);
	CU_ASSERT_EQUAL(memcmp(w2->q8, q2, 4), 0);
}

static void
test_biases(void)
{
	const tm_tensor *b1 = tensor("fc1.bias"), *b2 = tensor("fc2.bias");
	static const int32_t q1[4] = { 0, -32385, 0, -32385 };

	if (!b1 || !b2)
		return;
	CU_ASSERT_EQUAL(memcmp(b1->q32, q1, sizeof q1), 0);
	CU_ASSERT_EQUAL(b2->q32[0], -8096);
}

static void
test_requantizers(void)
{
	const tm_node *f1 = node("fc1"), *f2 = node("fc2");

	if (!f1 || !f2)
		return;
	CU_ASSERT_EQUAL(f1->n_requant, 1);
	CU_ASSERT_EQUAL(f1->multiplier[0], 1082196484);
	CU_ASSERT_EQUAL(f1->shift[0], 7);
	CU_ASSERT_TRUE(f1->fused_relu);
	CU_ASSERT_EQUAL(f1->act_min, -128);
	CU_ASSERT_EQUAL(f1->act_max, 127);
	CU_ASSERT_EQUAL(f2->multiplier[0], 1082196484);
	CU_ASSERT_EQUAL(f2->shift[0], 5);
	CU_ASSERT_FALSE(f2->fused_relu);
}

/* The int8 forward pass of QUANT.md: logits -128, 127, 127, -126. */
static void
test_int8_run(void)
{
	static const float xs[4][2] = { { 0, 0 }, { 0, 1 }, { 1, 0 },
					{ 1, 1 } };
	static const int8_t want[4] = { -128, 127, 127, -126 };
	const tm_tensor *in = tensor("input"), *h1 = tensor("h1");
	const tm_tensor *fc2 = tensor("fc2");
	const tm_tensor *w1 = tensor("fc1.weight"), *b1 = tensor("fc1.bias");
	const tm_tensor *w2 = tensor("fc2.weight"), *b2 = tensor("fc2.bias");
	const tm_node *f1 = node("fc1"), *f2 = node("fc2");

	if (!in || !h1 || !fc2 || !w1 || !b1 || !w2 || !b2 || !f1 || !f2)
		return;
	for (int s = 0; s < 4; s++) {
		int8_t x[2], h[4], y[1];
		tmrt_fc_params p1 = { 2, 4, w1->q8, b1->q32,
				      in->q.zero_point, h1->q.zero_point,
				      f1->multiplier, f1->shift, 1,
				      f1->act_min, f1->act_max };
		tmrt_fc_params p2 = { 4, 1, w2->q8, b2->q32,
				      h1->q.zero_point, fc2->q.zero_point,
				      f2->multiplier, f2->shift, 1,
				      f2->act_min, f2->act_max };

		for (int i = 0; i < 2; i++) {
			long q = lround(xs[s][i] / in->q.scale) +
				 in->q.zero_point;

			x[i] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
		}
		CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p1, x, h), TMRT_OK);
		CU_ASSERT_EQUAL(tmrt_fully_connected_s8(&p2, h, y), TMRT_OK);
		CU_ASSERT_EQUAL(y[0], want[s]);
	}
}

/* The header holds the same numbers as text. */
static void
test_header_text(void)
{
	static const char *const lines[] = {
		"#define XOR_INPUT_ZERO_POINT (-128)",
		"#define XOR_FC1_ZERO_POINT (-43)",
		"#define XOR_FC2_ZERO_POINT (-1)",
		"\t0, -32385, 0, -32385\n",
		"\t-8096\n",
		"\t  64, -127,   64, -127\n",
		"static const int32_t xor_fc2_shift[1] = {\n\t5\n};",
		"static const int32_t xor_fc1_shift[1] = {\n\t7\n};",
	};
	char buf[16384];
	size_t n;
	FILE *fp = fopen(header, "r");

	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return;
	n = fread(buf, 1, sizeof buf - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
		CU_ASSERT_PTR_NOT_NULL(strstr(buf, lines[i]));
}

static const tm_test_case cases[] = {
	{ "the pipeline runs", test_summary },
	{ "activation parameters", test_activations },
	{ "int8 weights and scales", test_weights },
	{ "int32 biases", test_biases },
	{ "requantizers", test_requantizers },
	{ "int8 run gives -128 127 127 -126", test_int8_run },
	{ "emitted header", test_header_text },
	{ NULL, NULL }
};

int
main(void)
{
	int rc;

	model = run_xor();
	if (tm_test_add_suite("xor", cases))
		return 99;
	rc = tm_test_run();
	tm_run_summary_fini(&summary);
	tm_model_free(model);
	return rc;
}
