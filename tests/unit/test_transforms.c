/* tmpipe tests — the transforms bn_fold and cle, and the model functions
 * they rewrite the graph with (tm_model_remove_node and friends).
 *
 * The plugins come from the build tree ($TMPIPE_PLUGIN_PATH) through the
 * registry. Most tests run a pipeline over a model of tests/data/transforms/
 * (written by tests/gen/transforms_ref.py) twice, without and with the
 * transform, and run the float interpreter on the model's inputs.npy:
 *
 *  - the outputs agree within 1e-5 relative: max |after - before| <=
 *    1e-5 max |before| over the whole output tensor (all samples);
 *  - the rewritten weights are the reference's (QUANT.md's formulas in
 *    float64, rounded once) within 1e-6 relative to the tensor;
 *  - for cle, the spread of the channel ranges (max / min) drops by at
 *    least the factor the test states, and is the reference's;
 *  - what the plugin reports through tm_log is exactly what it should.
 *
 * The plugins' tm_log must reach this binary's handler: the binary is
 * linked with -export-dynamic, so the plugins resolve tm_log to its copy
 * of the core rather than to libtmpipe.so's.
 *
 * Set TM_TEST_VERBOSE=1 to print the measured errors and spreads. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/npy.h>
#include <tmpipe/tmpipe.h>

#include "interp_priv.h"
#include "loader_priv.h"
#include "pipeline_priv.h"
#include "run_priv.h"
#include "runner.h"

#define MSG_MAX (TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 8)
#define OUT_TOL 1e-5		/* outputs, before vs after */
#define W_TOL 1e-6		/* weights vs the reference */

static tm_registry *reg;
static int verbose;

/* --- helpers ------------------------------------------------------------ */

static const char *
data_dir(const char *model, char *buf, size_t size)
{
	snprintf(buf, size, "%s/data/transforms/%s", tm_test_srcdir(), model);
	return buf;
}

/* Runs a pipeline over the weights in tests/data/transforms/<model>:
 *
 *	1 tmpipe: 1
 *	2 model:
 *	3   frontend: npy
 *	4   dir: ...
 *	5   inputs: {input: <shape>}
 *	6   layers:
 *	7 <layers, one per line>
 *	  transforms:			(when transforms is not "")
 *	  <transforms>
 *	  calibration: ...		(when calib)
 *
 * Returns the model, or NULL with the error in msg, where "PIPE" stands
 * for the pipeline's path. Clears the captured log first. */
static tm_model *
run_model(const char *model, const char *shape, const char *layers,
	  const char *transforms, int calib, char *msg, size_t size)
{
	char path[4096], dir[4096], text[16384], full[MSG_MAX];
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	tm_run_summary sum;
	tm_error err;
	size_t len, plen;

	logbuf[0] = tracebuf[0] = '\0';
	if (msg && size)
		msg[0] = '\0';
	data_dir(model, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/%s.yaml", tm_test_tmpdir(), model);
	len = (size_t)snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n"
			       "  frontend: npy\n  dir: %s\n  inputs: {input: "
			       "%s}\n  layers:\n%s", dir, shape, layers);
	if (transforms[0])
		len += (size_t)snprintf(text + len, sizeof text - len,
					"transforms:\n%s", transforms);
	if (calib)
		snprintf(text + len, sizeof text - len, "calibration:\n  data: "
			 "%s/inputs.npy\n  observer: minmax\n", dir);
	tm_test_write_file(path, text);
	tm_error_clear(&err);
	memset(&sum, 0, sizeof sum);
	if (!reg || tm_pipeline_load(path, reg, NULL, &pl, &err) ||
	    tm_pipeline_run(pl, NULL, NULL, &sum, &m, &err)) {
		tm_error_format(&err, full, sizeof full);
		plen = strlen(path);
		if (strncmp(full, path, plen) == 0)
			snprintf(msg, size, "PIPE%s", full + plen);
		else
			snprintf(msg, size, "%s", full);
		m = NULL;
	}
	tm_pipeline_free(pl);
	tm_run_summary_fini(&sum);
	return m;
}

/* run_model that must succeed. */
static tm_model *
load(const char *model, const char *shape, const char *layers,
     const char *transforms)
{
	char msg[MSG_MAX];
	tm_model *m = run_model(model, shape, layers, transforms, 0, msg,
				sizeof msg);

	if (!m)
		fprintf(stderr, "\n  %s\n", msg);
	return m;
}

static size_t
node_index(const tm_model *m, const char *name)
{
	for (size_t i = 0; m && i < m->n_nodes; i++)
		if (strcmp(m->nodes[i]->name, name) == 0)
			return i;
	return (size_t)-1;
}

static size_t
count_op(const tm_model *m, tm_op op)
{
	size_t n = 0;

	for (size_t i = 0; m && i < m->n_nodes; i++)
		n += m->nodes[i]->op == op;
	return n;
}

/* max |got - want| / max |want|. */
static double
max_rel(const float *got, const float *want, size_t n)
{
	double e = 0.0, s = 0.0;

	for (size_t i = 0; i < n; i++) {
		e = fmax(e, fabs((double)got[i] - want[i]));
		s = fmax(s, fabs((double)want[i]));
	}
	return s > 0.0 ? e / s : e;
}

/* Runs m on tests/data/transforms/<model>/inputs.npy and returns a copy
 * of tensor name's values (NULL: the first model output) for all the
 * samples, *len of them; NULL on failure. */
static float *
forward(const tm_model *m, const char *model, const char *name, size_t *len)
{
	char path[4096], msg[MSG_MAX];
	tm_interp *it = NULL;
	tm_npy x = { 0 };
	tm_error err;
	float *out = NULL;
	size_t n, t;

	*len = 0;
	if (!m)
		return NULL;
	tm_error_clear(&err);
	t = name ? tm_model_tensor_index(m, name) : m->outputs[0];
	CU_ASSERT_NOT_EQUAL(t, (size_t)-1);
	if (t == (size_t)-1)
		return NULL;
	snprintf(path, sizeof path, "%s/inputs.npy",
		 data_dir(model, msg, sizeof msg));
	if (tm_npy_load(path, &x, &err))
		goto fail;
	n = (size_t)x.shape[0];
	it = tm_priv_interp_new(m, n, &err);
	if (!it)
		goto fail;
	memcpy(tm_priv_interp_input(it, 0), x.data, x.numel * sizeof(float));
	if (tm_priv_interp_run(it, n, &err))
		goto fail;
	*len = n * tm_tensor_numel(m->tensors[t]);
	out = malloc(*len * sizeof *out);
	CU_ASSERT_PTR_NOT_NULL(out);
	if (out)
		memcpy(out, tm_priv_interp_tensor(it, t), *len * sizeof *out);
	goto out;
fail:
	fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg, sizeof msg));
	CU_FAIL("forward");
out:
	tm_priv_interp_free(it);
	tm_npy_fini(&x);
	return out;
}

/* Tensor name (NULL: the first output) of a and b agree within OUT_TOL;
 * returns the error. */
static double
same_outputs(const tm_model *a, const tm_model *b, const char *model,
	     const char *name)
{
	size_t na, nb;
	float *ya = forward(a, model, name, &na);
	float *yb = forward(b, model, name, &nb);
	double e = INFINITY;

	CU_ASSERT_EQUAL(na, nb);
	if (ya && yb && na == nb && na > 0) {
		e = max_rel(yb, ya, na);
		if (verbose || !(e <= OUT_TOL))
			fprintf(stderr, "\n  %s %s: max rel error %.3g\n",
				model, name ? name : "output", e);
	}
	CU_ASSERT(e <= OUT_TOL);
	free(ya);
	free(yb);
	return e;
}

/* The first output of m on inputs.npy is ref/output.npy (PyTorch) within
 * OUT_TOL. */
static void
output_is_pytorchs(const tm_model *m, const char *model)
{
	char path[4096], dir[4096];
	tm_npy want = { 0 };
	tm_error err;
	size_t n;
	float *y = forward(m, model, NULL, &n);

	tm_error_clear(&err);
	snprintf(path, sizeof path, "%s/ref/output.npy",
		 data_dir(model, dir, sizeof dir));
	if (tm_npy_load(path, &want, &err)) {
		CU_FAIL("ref/output.npy");
		free(y);
		return;
	}
	CU_ASSERT_EQUAL(want.numel, n);
	if (y && want.numel == n) {
		double e = max_rel(y, want.data, n);

		if (verbose || !(e <= OUT_TOL))
			fprintf(stderr, "\n  %s vs PyTorch: max rel error "
				"%.3g\n", model, e);
		CU_ASSERT(e <= OUT_TOL);
	}
	free(y);
	tm_npy_fini(&want);
}

/* Constant tensor of m equals <model>/<ref>/<file>.npy within W_TOL. */
static void
check_const(const tm_model *m, const char *model, const char *ref,
	    const char *tensor, const char *file)
{
	char path[4096], dir[4096], msg[MSG_MAX];
	const tm_tensor *t = tm_model_find_tensor(m, tensor);
	tm_npy want = { 0 };
	tm_error err;

	tm_error_clear(&err);
	if (!t) {
		fprintf(stderr, "\n  no tensor '%s'\n", tensor);
		CU_FAIL("tensor missing");
		return;
	}
	snprintf(path, sizeof path, "%s/%s/%s.npy",
		 data_dir(model, dir, sizeof dir), ref, file);
	if (tm_npy_load(path, &want, &err)) {
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg,
							  sizeof msg));
		CU_FAIL("reference missing");
		return;
	}
	CU_ASSERT_EQUAL(t->kind, TM_TENSOR_CONST);
	CU_ASSERT_EQUAL(tm_tensor_numel(t), want.numel);
	if (t->data && tm_tensor_numel(t) == want.numel) {
		double e = max_rel(t->data, want.data, want.numel);

		if (!(e <= W_TOL))
			fprintf(stderr, "\n  %s/%s: max rel error %.3g\n",
				model, tensor, e);
		CU_ASSERT(e <= W_TOL);
	}
	tm_npy_fini(&want);
}

/* max / min of the output-channel ranges of layer name's weight (r1),
 * over those above 1e-8. */
static double
out_spread(const tm_model *m, const char *name)
{
	char w[256];
	const tm_tensor *t;
	double lo = INFINITY, hi = 0.0;
	size_t per;

	snprintf(w, sizeof w, "%s.weight", name);
	t = tm_model_find_tensor(m, w);
	CU_ASSERT_PTR_NOT_NULL(t);
	if (!t)
		return NAN;
	per = tm_tensor_numel(t) / (size_t)t->shape[0];
	for (int64_t o = 0; o < t->shape[0]; o++) {
		double r = 0.0;

		for (size_t i = 0; i < per; i++)
			r = fmax(r, fabs(t->data[(size_t)o * per + i]));
		if (r > 1e-8) {
			lo = fmin(lo, r);
			hi = fmax(hi, r);
		}
	}
	return hi > 0.0 ? hi / lo : 1.0;
}

/* Line k (0-based) of <model>/<ref>/cle.txt, split. */
typedef struct cle_line {
	char first[64], second[64];
	double s1_before, s1_after, s2_before, s2_after;
	int iterations, converged;
} cle_line;

static int
read_cle(const char *model, const char *ref, cle_line *v, size_t max)
{
	char path[4096], dir[4096], line[512];
	FILE *fp;
	int n = 0;

	snprintf(path, sizeof path, "%s/%s/cle.txt",
		 data_dir(model, dir, sizeof dir), ref);
	fp = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return 0;
	while (fgets(line, sizeof line, fp) && (size_t)n < max) {
		cle_line *l = &v[n];

		memset(l, 0, sizeof *l);
		if (sscanf(line, "iterations %d %d", &l->iterations,
			   &l->converged) == 2) {
			n++;
			break;
		}
		if (sscanf(line, "%63s %63s %lf %lf %lf %lf", l->first,
			   l->second, &l->s1_before, &l->s1_after,
			   &l->s2_before, &l->s2_after) != 6) {
			CU_FAIL("bad line in cle.txt");
			break;
		}
		n++;
	}
	fclose(fp);
	return n;
}

/* The spread of layer first's ranges before and after is the
 * reference's, and dropped at least by factor. */
static void
check_spread(const tm_model *before, const tm_model *after,
	     const cle_line *ref, double factor)
{
	double b = out_spread(before, ref->first);
	double a = out_spread(after, ref->first);

	if (verbose || a * factor > b)
		fprintf(stderr, "\n  %s: spread of ranges %.6g -> %.6g (x%.3g "
			"more even)\n", ref->first, b, a, b / a);
	CU_ASSERT(fabs(b - ref->s1_before) <= 1e-6 * ref->s1_before);
	CU_ASSERT(fabs(a - ref->s1_after) <= 1e-5 * ref->s1_after);
	CU_ASSERT(a * factor <= b);
}

static void
check_log(const char *want)
{
	CHECK_STR(logbuf, want);
}

/* logbuf starts with want. */
static void
check_log_prefix(const char *want)
{
	if (strncmp(logbuf, want, strlen(want)) != 0)
		fprintf(stderr, "\n  log:  %s\n  want: %s...\n", logbuf, want);
	CU_ASSERT_EQUAL(strncmp(logbuf, want, strlen(want)), 0);
}

/* The error of a pipeline that must fail. */
static void
check_fails(const char *model, const char *shape, const char *layers,
	    const char *transforms, const char *want)
{
	char msg[MSG_MAX];
	tm_model *m = run_model(model, shape, layers, transforms, 0, msg,
				sizeof msg);

	CU_ASSERT_PTR_NULL(m);
	tm_model_free(m);
	CHECK_STR(msg, want);
}

static const tm_transform_ops *
transform(const char *name)
{
	const tm_plugin *p = NULL;
	tm_error err;

	tm_error_clear(&err);
	if (!reg || tm_registry_find(reg, name, TM_PLUGIN_TRANSFORM, &p,
				     &err)) {
		fprintf(stderr, "\n  %s: %s\n", name, err.msg);
		return NULL;
	}
	return p->desc->ops;
}

/* --- the model functions ----------------------------------------------- */

static const int64_t s4[] = { 4 }, s2[] = { 2 }, s44[] = { 4, 4 };
static const float w16[16] = { 1, 2, 3, 4, 5, 6, 7, 8,
			       -1, -2, -3, -4, 0.5f, 0.25f, 2, 1 };
static const float v4[4] = { 0.1f, -0.2f, 0.3f, 1.5f };

/* x[4] -> fc (dense W, b) -> r (relu) -> s (sigmoid), t (tanh). */
static tm_model *
small_model(void)
{
	static const char *const fc_in[] = { "x", "W", "b" };
	static const char *const r_in[] = { "fc" };
	static const char *const st_in[] = { "r" };
	static const char *const o_fc[] = { "fc" }, *const o_r[] = { "r" };
	static const char *const o_s[] = { "s" }, *const o_t[] = { "t" };
	tm_model *m = tm_model_new();
	tm_error err;
	int bad;

	tm_error_clear(&err);
	if (!m)
		return NULL;
	bad = tm_model_add_input(m, "x", 1, s4, &err) ||
	      tm_model_add_const(m, "W", 2, s44, w16, &err) ||
	      tm_model_add_const(m, "b", 1, s4, v4, &err) ||
	      tm_model_add_node(m, "fc", TM_OP_DENSE, fc_in, 3, o_fc, 1, NULL,
				&err) ||
	      tm_model_add_node(m, "r", TM_OP_RELU, r_in, 1, o_r, 1, NULL,
				&err) ||
	      tm_model_add_node(m, "s", TM_OP_SIGMOID, st_in, 1, o_s, 1, NULL,
				&err) ||
	      tm_model_add_node(m, "t", TM_OP_TANH, st_in, 1, o_t, 1, NULL,
				&err) ||
	      tm_model_finalize(m, &err);
	if (bad) {
		fprintf(stderr, "\n  %s\n", err.msg);
		tm_model_free(m);
		return NULL;
	}
	return m;
}

static const char *
tname(const tm_model *m, size_t t)
{
	return t < m->n_tensors ? m->tensors[t]->name : "(out of range)";
}

/* Every index in the model is in range. */
static void
check_indices(const tm_model *m)
{
	for (size_t i = 0; i < m->n_nodes; i++) {
		for (size_t k = 0; k < m->nodes[i]->n_inputs; k++)
			CU_ASSERT(m->nodes[i]->inputs[k] < m->n_tensors);
		for (size_t k = 0; k < m->nodes[i]->n_outputs; k++)
			CU_ASSERT(m->nodes[i]->outputs[k] < m->n_tensors);
	}
	for (size_t k = 0; k < m->n_inputs; k++)
		CU_ASSERT(m->inputs[k] < m->n_tensors);
	for (size_t k = 0; k < m->n_outputs; k++)
		CU_ASSERT(m->outputs[k] < m->n_tensors);
}

static void
test_uses_producer(void)
{
	tm_model *m = small_model();

	REQUIRE(m);
	CU_ASSERT_EQUAL(tm_model_tensor_uses(m, tm_model_tensor_index(m, "x")),
			1);
	/* r: read by s and t. s: a model output. */
	CU_ASSERT_EQUAL(tm_model_tensor_uses(m, tm_model_tensor_index(m, "r")),
			2);
	CU_ASSERT_EQUAL(tm_model_tensor_uses(m, tm_model_tensor_index(m, "s")),
			1);
	CU_ASSERT_EQUAL(tm_model_producer(m, tm_model_tensor_index(m, "t")),
			3);
	CU_ASSERT_EQUAL(tm_model_producer(m, tm_model_tensor_index(m, "x")),
			(size_t)-1);
	CU_ASSERT_EQUAL(tm_model_producer(m, tm_model_tensor_index(m, "W")),
			(size_t)-1);
	CU_ASSERT_EQUAL(tm_model_producer(m, 999), (size_t)-1);
out:
	tm_model_free(m);
}

static void
test_remove_rewires(void)
{
	tm_model *m = small_model();
	tm_error err;
	size_t nt;

	tm_error_clear(&err);
	REQUIRE(m);
	nt = m->n_tensors;
	/* r goes: s and t read fc; tensor r is deleted. */
	CU_ASSERT_EQUAL(tm_model_remove_node(m, 1, &err), TM_OK);
	CU_ASSERT_EQUAL(m->n_nodes, 3);
	CU_ASSERT_EQUAL(m->n_tensors, nt - 1);
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "r"));
	check_indices(m);
	CHECK_STR(m->nodes[1]->name, "s");
	CHECK_STR(tname(m, m->nodes[1]->inputs[0]), "fc");
	CHECK_STR(tname(m, m->nodes[2]->inputs[0]), "fc");
	CHECK_STR(tname(m, m->nodes[2]->outputs[0]), "t");
	REQUIRE(m->n_outputs == 2);
	CHECK_STR(tname(m, m->outputs[0]), "s");
	CHECK_STR(tname(m, m->outputs[1]), "t");
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);

	/* t was an output: fc takes its place, once. */
	CU_ASSERT_EQUAL(tm_model_remove_node(m, 2, &err), TM_OK);
	REQUIRE(m->n_outputs == 2);
	CHECK_STR(tname(m, m->outputs[0]), "s");
	CHECK_STR(tname(m, m->outputs[1]), "fc");
	CU_ASSERT_EQUAL(tm_model_remove_node(m, 1, &err), TM_OK);
	REQUIRE(m->n_outputs == 1);
	CHECK_STR(tname(m, m->outputs[0]), "fc");
	CU_ASSERT_EQUAL(m->n_nodes, 1);
	check_indices(m);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
out:
	tm_model_free(m);
}

/* x[2] -> bn1 (g, b1, mu1, var1) -> bn2 (g, b2, mu2, var2): removing bn1
 * deletes its own constants, not the shared g. */
static void
test_remove_constants(void)
{
	static const char *const in1[] = { "x", "g", "b1", "mu1", "var1" };
	static const char *const in2[] = { "y1", "g", "b2", "mu2", "var2" };
	static const char *const o1[] = { "y1" }, *const o2[] = { "y2" };
	static const float ones[2] = { 1, 1 };
	tm_model *m = tm_model_new();
	tm_error err;

	tm_error_clear(&err);
	REQUIRE(m);
	tm_model_add_input(m, "x", 1, s2, &err);
	tm_model_add_const(m, "g", 1, s2, ones, &err);
	tm_model_add_const(m, "b1", 1, s2, ones, &err);
	tm_model_add_const(m, "mu1", 1, s2, ones, &err);
	tm_model_add_const(m, "var1", 1, s2, ones, &err);
	tm_model_add_node(m, "bn1", TM_OP_BATCHNORM, in1, 5, o1, 1, NULL,
			  &err);
	tm_model_add_const(m, "b2", 1, s2, ones, &err);
	tm_model_add_const(m, "mu2", 1, s2, ones, &err);
	tm_model_add_const(m, "var2", 1, s2, ones, &err);
	tm_model_add_node(m, "bn2", TM_OP_BATCHNORM, in2, 5, o2, 1, NULL,
			  &err);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);
	REQUIRE(err.code == TM_OK);
	CU_ASSERT_EQUAL(m->n_tensors, 10);

	CU_ASSERT_EQUAL(tm_model_remove_node(m, 0, &err), TM_OK);
	CU_ASSERT_EQUAL(m->n_tensors, 6);
	CU_ASSERT_PTR_NOT_NULL(tm_model_find_tensor(m, "g"));
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "b1"));
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "mu1"));
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "var1"));
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "y1"));
	check_indices(m);
	CHECK_STR(tname(m, m->nodes[0]->inputs[0]), "x");
	CHECK_STR(tname(m, m->nodes[0]->inputs[1]), "g");
	CHECK_STR(tname(m, m->nodes[0]->inputs[4]), "var2");
	CHECK_STR(tname(m, m->inputs[0]), "x");
	CHECK_STR(tname(m, m->outputs[0]), "y2");
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);
out:
	tm_model_free(m);
}

static void
test_remove_errors(void)
{
	static const char *const c_in[] = { "c" }, *const x_in[] = { "x" };
	static const char *const o_r[] = { "r" };
	static const char *const o_two[] = { "p", "q" };
	tm_model *m = tm_model_new();
	tm_error err;
	size_t nt;

	tm_error_clear(&err);
	REQUIRE(m);
	tm_model_add_input(m, "x", 1, s4, &err);
	tm_model_add_const(m, "c", 1, s4, v4, &err);
	tm_model_add_node(m, "r", TM_OP_RELU, c_in, 1, o_r, 1, NULL, &err);
	tm_model_add_node(m, "two", TM_OP_RELU, x_in, 1, o_two, 2, NULL,
			  &err);
	REQUIRE(err.code == TM_OK);
	nt = m->n_tensors;

	CU_ASSERT_EQUAL(tm_model_remove_node(m, 2, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "cannot remove node 2: the model has 2");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_remove_node(m, 0, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "r: cannot remove: its input 'c' is a constant, so "
		  "its output would have no producer");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_remove_node(m, 1, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "two: cannot remove a node without exactly one input "
		  "and one output");
	/* A failed call changed nothing. */
	CU_ASSERT_EQUAL(m->n_nodes, 2);
	CU_ASSERT_EQUAL(m->n_tensors, nt);
out:
	tm_model_free(m);
}

static void
test_add_input(void)
{
	static const char *const fc_in[] = { "x", "W" };
	static const char *const r_in[] = { "fc" };
	static const char *const o_fc[] = { "fc" }, *const o_r[] = { "r" };
	tm_model *m = tm_model_new(), *other = small_model();
	tm_node *fc = NULL;
	tm_error err;

	tm_error_clear(&err);
	REQUIRE(m);
	REQUIRE(other);
	tm_model_add_input(m, "x", 1, s4, &err);
	tm_model_add_const(m, "W", 2, s44, w16, &err);
	tm_model_add_node(m, "fc", TM_OP_DENSE, fc_in, 2, o_fc, 1, &fc, &err);
	tm_model_add_node(m, "r", TM_OP_RELU, r_in, 1, o_r, 1, NULL, &err);
	tm_model_add_const(m, "fc.bias", 1, s4, v4, &err);
	REQUIRE(err.code == TM_OK);

	CU_ASSERT_EQUAL(tm_model_node_add_input(m, fc, "nope", &err),
			TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, "fc: no tensor 'nope' to add as an input");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_node_add_input(m, fc, "r", &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "fc: cannot read 'r': no earlier node writes it");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_node_add_input(m, fc, "fc", &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "fc: cannot read 'fc': no earlier node writes it");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_node_add_input(m, other->nodes[0], "x",
						&err), TM_ERR_INVALID);
	CHECK_ERR(&err, "fc: not a node of this model");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(fc->n_inputs, 2);

	CU_ASSERT_EQUAL(tm_model_node_add_input(m, fc, "fc.bias", &err),
			TM_OK);
	REQUIRE(fc->n_inputs == 3);
	CHECK_STR(tname(m, fc->inputs[2]), "fc.bias");
	/* A model input is fine too (not that a dense would take it). */
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
out:
	tm_model_free(m);
	tm_model_free(other);
}

/* --- bn_fold ------------------------------------------------------------ */

static const char conv_bn_layers[] =
	"    - {name: conv1, op: conv2d, input: input, padding: [1]}\n"
	"    - {name: bn1, op: batchnorm, input: conv1}\n"
	"    - {name: relu1, op: relu, input: bn1}\n"
	"    - {name: conv2, op: conv2d, input: relu1, stride: [2], "
	"padding: [1]}\n"
	"    - {name: bn2, op: batchnorm, input: conv2, eps: 0.001}\n"
	"    - {name: r6, op: relu6, input: bn2}\n"
	"    - {name: dw, op: conv2d, input: r6, padding: [1], groups: 6}\n"
	"    - {name: bn3, op: batchnorm, input: dw}\n";

static void
test_fold_conv(void)
{
	tm_model *a = load("conv_bn", "[3, 7, 6]", conv_bn_layers, "");
	tm_model *b = load("conv_bn", "[3, 7, 6]", conv_bn_layers,
			   "  - bn_fold\n");
	const tm_node *c2;

	REQUIRE(a);
	REQUIRE(b);
	check_log("note: bn_fold: folded 'bn1' into conv2d 'conv1'\n"
		  "note: bn_fold: folded 'bn2' into conv2d 'conv2'\n"
		  "note: bn_fold: folded 'bn3' into conv2d 'dw'\n"
		  "note: bn_fold: folded 3 of 3 batchnorm layers\n");
	CU_ASSERT_EQUAL(count_op(a, TM_OP_BATCHNORM), 3);
	CU_ASSERT_EQUAL(count_op(b, TM_OP_BATCHNORM), 0);
	CU_ASSERT_EQUAL(b->n_nodes, 5);
	CU_ASSERT_EQUAL(a->n_tensors - b->n_tensors, 3 * 5 - 1);
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(b, "bn1"));
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(b, "bn2.running_var"));
	/* relu1 reads conv1 now; the output is dw's. */
	CHECK_STR(tname(b, b->nodes[node_index(b, "relu1")]->inputs[0]),
		  "conv1");
	REQUIRE(b->n_outputs == 1);
	CHECK_STR(tname(b, b->outputs[0]), "dw");
	/* conv2 had no bias: it has one now. */
	c2 = b->nodes[node_index(b, "conv2")];
	REQUIRE(c2->n_inputs == 3);
	CHECK_STR(tname(b, c2->inputs[2]), "conv2.bias");
	check_const(b, "conv_bn", "ref", "conv1.weight", "conv1.weight");
	check_const(b, "conv_bn", "ref", "conv1.bias", "conv1.bias");
	check_const(b, "conv_bn", "ref", "conv2.weight", "conv2.weight");
	check_const(b, "conv_bn", "ref", "conv2.bias", "conv2.bias");
	check_const(b, "conv_bn", "ref", "dw.weight", "dw.weight");
	check_const(b, "conv_bn", "ref", "dw.bias", "dw.bias");
	same_outputs(a, b, "conv_bn", NULL);
	same_outputs(a, b, "conv_bn", "relu1");
	same_outputs(a, b, "conv_bn", "r6");
	output_is_pytorchs(b, "conv_bn");
out:
	tm_model_free(a);
	tm_model_free(b);
}

/* Calibration runs on the folded graph: conv1's range is the range of
 * what the folded conv1 computes (the BatchNorm's output before). */
static void
test_fold_calibrated(void)
{
	char msg[MSG_MAX];
	tm_model *m = run_model("conv_bn", "[3, 7, 6]", conv_bn_layers,
				"  - bn_fold\n", 1, msg, sizeof msg);
	const tm_tensor *t;
	float lo = INFINITY, hi = -INFINITY, *y = NULL;
	size_t n;

	if (!m)
		fprintf(stderr, "\n  %s\n", msg);
	REQUIRE(m);
	t = tm_model_find_tensor(m, "conv1");
	REQUIRE(t);
	CU_ASSERT_TRUE(t->has_range);
	y = forward(m, "conv_bn", "conv1", &n);
	for (size_t i = 0; y && i < n; i++) {
		lo = fminf(lo, y[i]);
		hi = fmaxf(hi, y[i]);
	}
	CU_ASSERT(n > 0);
	CU_ASSERT_EQUAL(t->lo, lo);
	CU_ASSERT_EQUAL(t->hi, hi);
out:
	free(y);
	tm_model_free(m);
}

static void
test_fold_dense(void)
{
	static const char layers[] =
		"    - {name: fc1, op: dense, input: input}\n"
		"    - {name: bn1, op: batchnorm, input: fc1}\n"
		"    - {name: h1, op: relu, input: bn1}\n"
		"    - {name: fc2, op: dense, input: h1}\n"
		"    - {name: bn2, op: batchnorm, input: fc2}\n";
	tm_model *a = load("dense_bn", "[6]", layers, "");
	tm_model *b = load("dense_bn", "[6]", layers, "  - bn_fold\n");

	REQUIRE(a);
	REQUIRE(b);
	check_log("note: bn_fold: folded 'bn1' into dense 'fc1'\n"
		  "note: bn_fold: folded 'bn2' into dense 'fc2'\n"
		  "note: bn_fold: folded 2 of 2 batchnorm layers\n");
	CU_ASSERT_EQUAL(count_op(b, TM_OP_BATCHNORM), 0);
	CU_ASSERT_EQUAL(b->n_nodes, 3);
	CHECK_STR(tname(b, b->outputs[0]), "fc2");
	check_const(b, "dense_bn", "ref", "fc1.weight", "fc1.weight");
	check_const(b, "dense_bn", "ref", "fc1.bias", "fc1.bias");
	check_const(b, "dense_bn", "ref", "fc2.weight", "fc2.weight");
	check_const(b, "dense_bn", "ref", "fc2.bias", "fc2.bias");
	same_outputs(a, b, "dense_bn", NULL);
	same_outputs(a, b, "dense_bn", "h1");
	output_is_pytorchs(b, "dense_bn");
out:
	tm_model_free(a);
	tm_model_free(b);
}

static void
test_fold_kept(void)
{
	static const char layers[] =
		"    - {name: bn0, op: batchnorm, input: input}\n"
		"    - {name: conv1, op: conv2d, input: bn0, padding: [1]}\n"
		"    - {name: bn1, op: batchnorm, input: conv1}\n"
		"    - {name: add, op: add, inputs: [bn1, conv1]}\n"
		"    - {name: act, op: relu, input: add}\n"
		"    - {name: bn2, op: batchnorm, input: act}\n"
		"    - {name: conv2, op: conv2d, input: bn2}\n"
		"    - {name: bn3, op: batchnorm, input: conv2}\n";
	tm_model *a = load("bn_kept", "[3, 6, 5]", layers, "");
	tm_model *b = load("bn_kept", "[3, 6, 5]", layers, "  - bn_fold\n");

	REQUIRE(a);
	REQUIRE(b);
	check_log("warning: bn_fold: kept 'bn0' as its own layer: its input "
		  "'input' is a model input\n"
		  "warning: bn_fold: kept 'bn1' as its own layer: the output "
		  "of 'conv1' is also read by another layer\n"
		  "warning: bn_fold: kept 'bn2' as its own layer: its input "
		  "comes from the relu layer 'act' (only a dense or conv2d "
		  "layer can absorb it)\n"
		  "note: bn_fold: folded 'bn3' into conv2d 'conv2'\n"
		  "note: bn_fold: folded 1 of 4 batchnorm layers\n");
	CU_ASSERT_EQUAL(count_op(b, TM_OP_BATCHNORM), 3);
	CU_ASSERT(node_index(b, "bn0") != (size_t)-1);
	CU_ASSERT(node_index(b, "bn1") != (size_t)-1);
	CU_ASSERT(node_index(b, "bn2") != (size_t)-1);
	CU_ASSERT_EQUAL(node_index(b, "bn3"), (size_t)-1);
	check_const(b, "bn_kept", "ref", "conv2.weight", "conv2.weight");
	check_const(b, "bn_kept", "ref", "conv2.bias", "conv2.bias");
	same_outputs(a, b, "bn_kept", NULL);
	output_is_pytorchs(b, "bn_kept");
out:
	tm_model_free(a);
	tm_model_free(b);
}

/* Built by hand: x[4] -> fc (W[, bias]) -> bn (g, beta, mu, var)
 * [-> bn_b], each BatchNorm with its own statistics. */
static tm_model *
fc_bn(int bias, int second_bn, const float *var, float eps)
{
	static const float g[4] = { 1.5f, -0.5f, 2, 0.75f };
	static const float beta[4] = { 0.1f, 0.2f, -0.3f, 0 };
	static const float mu[4] = { 0.5f, -1, 0, 2 };
	static const float var1[4] = { 0.5f, 1, 2, 0.25f };
	static const char *const fc_in[] = { "x", "W", "fc.bias" };
	static const char *const bn_in[] = { "fc", "g", "beta", "mu", "var" };
	static const char *const bb_in[] = { "bn", "g", "beta", "mu", "var1" };
	static const char *const o_fc[] = { "fc" }, *const o_bn[] = { "bn" };
	static const char *const o_bb[] = { "bn_b" };
	tm_model *m = tm_model_new();
	tm_node *n = NULL;
	tm_error err;

	tm_error_clear(&err);
	if (!m)
		return NULL;
	tm_model_add_input(m, "x", 1, s4, &err);
	tm_model_add_const(m, "W", 2, s44, w16, &err);
	/* Without a bias for fc, a constant of that name all the same: the
	 * new bias must pick another name. */
	tm_model_add_const(m, "fc.bias", 1, s4, v4, &err);
	tm_model_add_const(m, "g", 1, s4, g, &err);
	tm_model_add_const(m, "beta", 1, s4, beta, &err);
	tm_model_add_const(m, "mu", 1, s4, mu, &err);
	tm_model_add_const(m, "var", 1, s4, var, &err);
	tm_model_add_const(m, "var1", 1, s4, var1, &err);
	tm_model_add_node(m, "fc", TM_OP_DENSE, fc_in, bias ? 3 : 2, o_fc, 1,
			  NULL, &err);
	tm_model_add_node(m, "bn", TM_OP_BATCHNORM, bn_in, 5, o_bn, 1, &n,
			  &err);
	if (n)
		n->attrs.epsilon = eps;
	if (second_bn)
		tm_model_add_node(m, "bn_b", TM_OP_BATCHNORM, bb_in, 5, o_bb,
				  1, NULL, &err);
	if (!err.code)
		tm_model_finalize(m, &err);
	if (err.code) {
		fprintf(stderr, "\n  %s\n", err.msg);
		tm_model_free(m);
		return NULL;
	}
	return m;
}

/* Runs model m (input x[4]) on fixed samples and returns its first
 * output, 3 samples x numel. */
static float *
forward_fixed(const tm_model *m, size_t *len)
{
	static const float x[12] = { 1, -2, 0.5f, 3, 0, 0.25f, -1, 1,
				     2, 2, -0.5f, -3 };
	tm_interp *it;
	tm_error err;
	float *y = NULL;
	size_t t = m->outputs[0];

	tm_error_clear(&err);
	*len = 3 * tm_tensor_numel(m->tensors[t]);
	it = tm_priv_interp_new(m, 3, &err);
	CU_ASSERT_PTR_NOT_NULL(it);
	if (!it)
		return NULL;
	memcpy(tm_priv_interp_input(it, 0), x, sizeof x);
	CU_ASSERT_EQUAL(tm_priv_interp_run(it, 3, &err), TM_OK);
	y = malloc(*len * sizeof *y);
	if (y)
		memcpy(y, tm_priv_interp_tensor(it, t), *len * sizeof *y);
	tm_priv_interp_free(it);
	return y;
}

static tm_status
fold_by_hand(tm_model *m, tm_error *err)
{
	const tm_transform_ops *ops = transform("bn_fold");
	unsigned preserved = TM_PRESERVE_ALL;
	tm_status st;

	logbuf[0] = tracebuf[0] = '\0';
	if (!ops)
		return TM_ERR_NOT_FOUND;
	st = ops->run(m, NULL, &preserved, err);
	CU_ASSERT_EQUAL(preserved, TM_PRESERVE_NONE);
	if (!st)
		st = tm_model_finalize(m, err);
	return st;
}

/* Two BatchNorms in a row fold one after the other; the new bias gets a
 * free name. */
static void
test_fold_twice(void)
{
	static const float var[4] = { 1, 0.5f, 3, 0.125f };
	tm_model *m = fc_bn(0, 1, var, 1e-3f);
	tm_error err;
	float *y0 = NULL, *y1 = NULL;
	size_t n0, n1;

	tm_error_clear(&err);
	REQUIRE(m);
	y0 = forward_fixed(m, &n0);
	CU_ASSERT_EQUAL(fold_by_hand(m, &err), TM_OK);
	check_log("note: bn_fold: folded 'bn' into dense 'fc'\n"
		  "note: bn_fold: folded 'bn_b' into dense 'fc'\n"
		  "note: bn_fold: folded 2 of 2 batchnorm layers\n");
	REQUIRE(m->n_nodes == 1);
	REQUIRE(m->nodes[0]->n_inputs == 3);
	CHECK_STR(tname(m, m->nodes[0]->inputs[2]), "fc.bias.1");
	/* Only the unused "fc.bias" is left of the other constants. */
	CU_ASSERT_EQUAL(m->n_tensors, 5);
	y1 = forward_fixed(m, &n1);
	CU_ASSERT_EQUAL(n0, n1);
	if (y0 && y1 && n0 == n1)
		CU_ASSERT(max_rel(y1, y0, n0) <= OUT_TOL);
out:
	free(y0);
	free(y1);
	tm_model_free(m);
}

static void
test_fold_not_alone(void)
{
	static const float var[4] = { 1, 0.5f, 3, 0.125f };
	static const char *const fc2_in[] = { "x", "W" };
	static const char *const o2[] = { "fc2" };
	tm_model *m = fc_bn(1, 0, var, 1e-5f), *m2 = NULL;
	tm_error err;
	size_t *v;

	tm_error_clear(&err);
	REQUIRE(m);
	/* fc's output is a model output too. */
	v = realloc(m->outputs, (m->n_outputs + 1) * sizeof *v);
	REQUIRE(v);
	m->outputs = v;
	m->outputs[m->n_outputs++] = tm_model_tensor_index(m, "fc");
	CU_ASSERT_EQUAL(fold_by_hand(m, &err), TM_OK);
	check_log("warning: bn_fold: kept 'bn' as its own layer: the output "
		  "of 'fc' is also a model output\n"
		  "note: bn_fold: folded 0 of 1 batchnorm layers\n");
	CU_ASSERT_EQUAL(m->n_nodes, 2);

	/* fc2 shares fc's weight. */
	m2 = fc_bn(1, 0, var, 1e-5f);
	REQUIRE(m2);
	CU_ASSERT_EQUAL(tm_model_add_node(m2, "fc2", TM_OP_DENSE, fc2_in, 2,
					  o2, 1, NULL, &err), TM_OK);
	free(m2->outputs);
	m2->outputs = NULL;
	m2->n_outputs = 0;
	CU_ASSERT_EQUAL(tm_model_finalize(m2, &err), TM_OK);
	CU_ASSERT_EQUAL(fold_by_hand(m2, &err), TM_OK);
	check_log("warning: bn_fold: kept 'bn' as its own layer: 'W' of 'fc' "
		  "is shared with another layer\n"
		  "note: bn_fold: folded 0 of 1 batchnorm layers\n");
	CU_ASSERT_EQUAL(m2->n_nodes, 3);
out:
	tm_model_free(m);
	tm_model_free(m2);
}

static void
test_fold_overflow(void)
{
	static const float var[4] = { 1, 0.5f, 0, 0.125f };
	tm_model *m = fc_bn(1, 0, var, 0.0f);
	tm_error err;
	float w[16];

	tm_error_clear(&err);
	REQUIRE(m);
	memcpy(w, tm_model_find_tensor(m, "W")->data, sizeof w);
	CU_ASSERT_EQUAL(fold_by_hand(m, &err), TM_ERR_NUMERIC);
	CHECK_ERR(&err, "bn_fold: folding 'bn' into 'fc' overflows at channel "
		  "2 (running variance 0, epsilon 0)");
	/* Nothing was written. */
	CU_ASSERT_EQUAL(m->n_nodes, 2);
	CU_ASSERT_EQUAL(memcmp(w, tm_model_find_tensor(m, "W")->data,
			       sizeof w), 0);
out:
	tm_model_free(m);
}

/* --- cle ----------------------------------------------------------------- */

static const char dense_layers[] =
	"    - {name: fc1, op: dense, input: input}\n"
	"    - {name: h1, op: relu, input: fc1}\n"
	"    - {name: fc2, op: dense, input: h1}\n";

static const char chain_layers[] =
	"    - {name: fc1, op: dense, input: input}\n"
	"    - {name: h1, op: relu, input: fc1}\n"
	"    - {name: fc2, op: dense, input: h1}\n"
	"    - {name: h2, op: relu, input: fc2}\n"
	"    - {name: fc3, op: dense, input: h2}\n";

/* The engineered model: one channel of fc1 10x the others, fc2
 * compensating. CLE evens it out completely. */
static void
test_cle_dense(void)
{
	tm_model *a = load("cle_dense", "[4]", dense_layers, "");
	tm_model *b = load("cle_dense", "[4]", dense_layers, "  - cle\n");
	cle_line ref[2];

	REQUIRE(a);
	REQUIRE(b);
	check_log_prefix("note: cle: fc1 -> h1 -> fc2: spread of the 8 "
			 "channel ranges (max/min) 10 -> 1 in fc1, 10 -> 1 "
			 "in fc2\n"
			 "note: cle: equalized 1 pair in 2 iterations (last "
			 "scale change ");
	REQUIRE(read_cle("cle_dense", "ref", ref, 2) == 2);
	CU_ASSERT_EQUAL(ref[1].iterations, 2);
	/* Exactly 10 before, 1 after (within float rounding). */
	CU_ASSERT_DOUBLE_EQUAL(out_spread(a, "fc1"), 10.0, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(out_spread(b, "fc1"), 1.0, 1e-6);
	check_spread(a, b, &ref[0], 9.99);
	check_const(b, "cle_dense", "ref", "fc1.weight", "fc1.weight");
	check_const(b, "cle_dense", "ref", "fc1.bias", "fc1.bias");
	check_const(b, "cle_dense", "ref", "fc2.weight", "fc2.weight");
	check_const(b, "cle_dense", "ref", "fc2.bias", "fc2.bias");
	same_outputs(a, b, "cle_dense", NULL);
out:
	tm_model_free(a);
	tm_model_free(b);
}

static void
test_cle_conv(void)
{
	static const char layers[] =
		"    - {name: conv1, op: conv2d, input: input, padding: [1]}\n"
		"    - {name: a1, op: relu, input: conv1}\n"
		"    - {name: conv2, op: conv2d, input: a1, padding: [1]}\n";
	tm_model *a = load("cle_conv", "[3, 8, 8]", layers, "");
	tm_model *b = load("cle_conv", "[3, 8, 8]", layers,
			   "  - cle: {iterations: 5}\n");
	cle_line ref[2];

	REQUIRE(a);
	REQUIRE(b);
	check_log_prefix("note: cle: conv1 -> a1 -> conv2: spread of the 6 "
			 "channel ranges (max/min) 10.9 -> 1.06 in conv1, "
			 "10.5 -> 1.06 in conv2\n"
			 "note: cle: equalized 1 pair in 2 iterations");
	REQUIRE(read_cle("cle_conv", "ref", ref, 2) == 2);
	check_spread(a, b, &ref[0], 10.0);
	check_const(b, "cle_conv", "ref", "conv1.weight", "conv1.weight");
	check_const(b, "cle_conv", "ref", "conv1.bias", "conv1.bias");
	check_const(b, "cle_conv", "ref", "conv2.weight", "conv2.weight");
	check_const(b, "cle_conv", "ref", "conv2.bias", "conv2.bias");
	same_outputs(a, b, "cle_conv", NULL);
out:
	tm_model_free(a);
	tm_model_free(b);
}

/* pw0 -> relu -> depthwise -> leaky_relu -> pw: depthwise second in one
 * pair and first in the next, iterated until the scales settle. */
static void
test_cle_depthwise(void)
{
	static const char layers[] =
		"    - {name: pw0, op: conv2d, input: input}\n"
		"    - {name: a0, op: relu, input: pw0}\n"
		"    - {name: dw, op: conv2d, input: a0, padding: [1], "
		"groups: 6}\n"
		"    - {name: a1, op: leaky_relu, input: dw, alpha: 0.1}\n"
		"    - {name: pw, op: conv2d, input: a1}\n";
	tm_model *a = load("cle_dw", "[4, 6, 6]", layers, "");
	tm_model *b = load("cle_dw", "[4, 6, 6]", layers, "  - cle\n");
	cle_line ref[3];

	REQUIRE(a);
	REQUIRE(b);
	check_log_prefix("note: cle: pw0 -> a0 -> dw: spread of the 6 channel "
			 "ranges (max/min) 8.25 -> 1.12 in pw0, 77.1 -> 1.12 "
			 "in dw\n"
			 "note: cle: dw -> a1 -> pw: spread of the 6 channel "
			 "ranges (max/min) 77.1 -> 1.12 in dw, 10.3 -> 1.12 "
			 "in pw\n"
			 "note: cle: equalized 2 pairs in 12 iterations");
	REQUIRE(read_cle("cle_dw", "ref", ref, 3) == 3);
	CU_ASSERT_EQUAL(ref[2].iterations, 12);
	CU_ASSERT_EQUAL(ref[2].converged, 1);
	check_spread(a, b, &ref[0], 7.0);
	check_spread(a, b, &ref[1], 60.0);
	check_const(b, "cle_dw", "ref", "pw0.weight", "pw0.weight");
	check_const(b, "cle_dw", "ref", "pw0.bias", "pw0.bias");
	check_const(b, "cle_dw", "ref", "dw.weight", "dw.weight");
	check_const(b, "cle_dw", "ref", "dw.bias", "dw.bias");
	check_const(b, "cle_dw", "ref", "pw.weight", "pw.weight");
	check_const(b, "cle_dw", "ref", "pw.bias", "pw.bias");
	same_outputs(a, b, "cle_dw", NULL);
out:
	tm_model_free(a);
	tm_model_free(b);
}

static void
test_cle_chain(void)
{
	tm_model *a = load("cle_chain", "[5]", chain_layers, "");
	tm_model *b = load("cle_chain", "[5]", chain_layers, "  - cle\n");
	cle_line ref[3];

	REQUIRE(a);
	REQUIRE(b);
	REQUIRE(read_cle("cle_chain", "ref", ref, 3) == 3);
	CU_ASSERT_EQUAL(ref[2].iterations, 11);
	CU_ASSERT_EQUAL(ref[2].converged, 1);
	check_log_prefix("note: cle: fc1 -> h1 -> fc2: spread of the 8 "
			 "channel ranges (max/min) 11 -> 1.38 in fc1, 10 -> "
			 "1.38 in fc2\n"
			 "note: cle: fc2 -> h2 -> fc3: spread of the 8 "
			 "channel ranges (max/min) 12 -> 2.6 in fc2, 40.7 -> "
			 "2.6 in fc3\n"
			 "note: cle: equalized 2 pairs in 11 iterations");
	check_spread(a, b, &ref[0], 7.5);
	check_spread(a, b, &ref[1], 4.5);
	check_const(b, "cle_chain", "ref", "fc1.weight", "fc1.weight");
	check_const(b, "cle_chain", "ref", "fc1.bias", "fc1.bias");
	check_const(b, "cle_chain", "ref", "fc2.weight", "fc2.weight");
	check_const(b, "cle_chain", "ref", "fc2.bias", "fc2.bias");
	check_const(b, "cle_chain", "ref", "fc3.weight", "fc3.weight");
	same_outputs(a, b, "cle_chain", NULL);
	same_outputs(a, b, "cle_chain", "fc3");
out:
	tm_model_free(a);
	tm_model_free(b);
}

/* One iteration is not enough for the chain: the result is the
 * reference's first sweep, with a warning, and still the same network. */
static void
test_cle_iterations(void)
{
	tm_model *a = load("cle_chain", "[5]", chain_layers, "");
	tm_model *b = load("cle_chain", "[5]", chain_layers,
			   "  - cle: {iterations: 1, tolerance: 1e-3}\n");
	cle_line ref[3];

	REQUIRE(a);
	REQUIRE(b);
	REQUIRE(read_cle("cle_chain", "ref_it1", ref, 3) == 3);
	CU_ASSERT_EQUAL(ref[2].converged, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "\nwarning: cle: stopped after "
				      "1 iteration without converging: the "
				      "last changed a scale by "));
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, " (tolerance 0.001); the "
				      "output is unchanged all the same\n"));
	check_spread(a, b, &ref[0], 7.5);
	check_const(b, "cle_chain", "ref_it1", "fc1.weight", "fc1.weight");
	check_const(b, "cle_chain", "ref_it1", "fc2.weight", "fc2.weight");
	check_const(b, "cle_chain", "ref_it1", "fc2.bias", "fc2.bias");
	check_const(b, "cle_chain", "ref_it1", "fc3.weight", "fc3.weight");
	same_outputs(a, b, "cle_chain", NULL);
out:
	tm_model_free(a);
	tm_model_free(b);
}

/* Only the pair listed; fc1 untouched. */
static void
test_cle_pairs(void)
{
	tm_model *a = load("cle_chain", "[5]", chain_layers, "");
	tm_model *b = load("cle_chain", "[5]", chain_layers,
			   "  - cle:\n      pairs:\n"
			   "        - {first: fc2, second: fc3}\n");
	cle_line ref[2];

	REQUIRE(a);
	REQUIRE(b);
	check_log_prefix("note: cle: fc2 -> h2 -> fc3: spread of the 8 "
			 "channel ranges (max/min) 12 -> 2.66 in fc2, 40.7 -> "
			 "2.66 in fc3\n"
			 "note: cle: equalized 1 pair in 2 iterations");
	REQUIRE(read_cle("cle_chain", "ref_pair", ref, 2) == 2);
	check_spread(a, b, &ref[0], 4.5);
	check_const(b, "cle_chain", "ref_pair", "fc1.weight", "fc1.weight");
	check_const(b, "cle_chain", "ref_pair", "fc2.weight", "fc2.weight");
	check_const(b, "cle_chain", "ref_pair", "fc2.bias", "fc2.bias");
	check_const(b, "cle_chain", "ref_pair", "fc3.weight", "fc3.weight");
	check_const(b, "cle_chain", ".", "fc1.weight", "fc1.weight");
	check_const(b, "cle_chain", ".", "fc1.bias", "fc1.bias");
	same_outputs(a, b, "cle_chain", NULL);
out:
	tm_model_free(a);
	tm_model_free(b);
}

/* cle_conv with a max pool after the ReLU: the same pair and the same
 * weights (CLE looks at weights only), the same function. */
static void
test_cle_maxpool(void)
{
	static const char layers[] =
		"    - {name: conv1, op: conv2d, input: input, padding: [1]}\n"
		"    - {name: a1, op: relu, input: conv1}\n"
		"    - {name: p1, op: maxpool2d, input: a1, kernel: [2]}\n"
		"    - {name: conv2, op: conv2d, input: p1, padding: [1]}\n";
	tm_model *a = load("cle_conv", "[3, 8, 8]", layers, "");
	tm_model *b = load("cle_conv", "[3, 8, 8]", layers,
			   "  - cle: {iterations: 5}\n");

	REQUIRE(a);
	REQUIRE(b);
	check_log_prefix("note: cle: conv1 -> a1 -> conv2: spread of the 6 "
			 "channel ranges (max/min) 10.9 -> 1.06 in conv1, "
			 "10.5 -> 1.06 in conv2\n");
	check_const(b, "cle_conv", "ref", "conv1.weight", "conv1.weight");
	check_const(b, "cle_conv", "ref", "conv1.bias", "conv1.bias");
	check_const(b, "cle_conv", "ref", "conv2.weight", "conv2.weight");
	check_const(b, "cle_conv", "ref", "conv2.bias", "conv2.bias");
	same_outputs(a, b, "cle_conv", NULL);
out:
	tm_model_free(a);
	tm_model_free(b);
}

/* A sigmoid between two dense layers, a ReLU6 between two convolutions:
 * no pair, nothing changes. */
static void
test_cle_no_pair(void)
{
	static const char layers[] =
		"    - {name: fc1, op: dense, input: input}\n"
		"    - {name: h1, op: sigmoid, input: fc1}\n"
		"    - {name: fc2, op: dense, input: h1}\n";
	tm_model *b = load("cle_dense", "[4]", layers, "  - cle\n");

	REQUIRE(b);
	check_log("warning: cle: no pair of layers to equalize (a dense or "
		  "conv2d layer followed by one of the same kind, directly or "
		  "through a relu or leaky_relu and a maxpool2d)\n");
	CHECK_STR(tracebuf, "trace: cle: 'fc1' starts no pair: 'fc1' is "
		  "followed by the sigmoid layer 'h1' (only relu, leaky_relu, "
		  "maxpool2d or nothing may stand between the two layers, and "
		  "the second must be a dense or conv2d)\n"
		  "trace: cle: 'fc2' starts no pair: the output of 'fc2' is a "
		  "model output\n");
	check_const(b, "cle_dense", ".", "fc1.weight", "fc1.weight");
	check_const(b, "cle_dense", ".", "fc2.weight", "fc2.weight");
out:
	tm_model_free(b);
}

/* bn_fold then cle on the Conv-BN model: conv1 -> relu1 -> conv2 pairs,
 * conv2 -> ReLU6 -> dw does not. */
static void
test_fold_then_cle(void)
{
	tm_model *a = load("conv_bn", "[3, 7, 6]", conv_bn_layers, "");
	tm_model *b = load("conv_bn", "[3, 7, 6]", conv_bn_layers,
			   "  - bn_fold\n  - cle\n");

	REQUIRE(a);
	REQUIRE(b);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "note: cle: conv1 -> relu1 -> "
				      "conv2: spread of the 4 channel ranges "
				      "(max/min) "));
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "note: cle: equalized 1 pair "
				      "in "));
	CU_ASSERT_PTR_NOT_NULL(strstr(tracebuf, "trace: cle: 'conv2' starts "
				      "no pair: 'conv2' is followed by the "
				      "clip layer 'r6' "));
	same_outputs(a, b, "conv_bn", NULL);
out:
	tm_model_free(a);
	tm_model_free(b);
}

static void
test_cle_errors(void)
{
	static const char sig_layers[] =
		"    - {name: fc1, op: dense, input: input}\n"
		"    - {name: h1, op: sigmoid, input: fc1}\n"
		"    - {name: fc2, op: dense, input: h1}\n";
	/* Lines 7-11 are the layers, 12 "transforms:", 13 "- cle:". */
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle:\n      pairs:\n"
		    "        - {first: fcx, second: fc2}\n",
		    "PIPE:15:12: no layer 'fcx' in the model (dense and "
		    "conv2d layers: fc1, fc2, fc3)");
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle:\n      pairs:\n"
		    "        - {first: fc1, second: fc2}\n"
		    "        - {second: h2, first: fc2}\n",
		    "PIPE:16:12: layer 'h2' (relu) has no weights; cle pairs "
		    "dense and conv2d layers");
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle:\n      pairs:\n"
		    "        - {first: fc1, second: fc3}\n",
		    "PIPE:15:11: 'fc1' and 'fc3' cannot be equalized: the "
		    "output of 'fc1' goes to 'fc2', not to 'fc3'");
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle:\n      pairs:\n"
		    "        - {first: fc3, second: fc1}\n",
		    "PIPE:15:11: 'fc3' and 'fc1' cannot be equalized: the "
		    "output of 'fc3' is a model output");
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle:\n      pairs:\n"
		    "        - {first: fc1, second: fc2}\n"
		    "        - {first: fc1, second: fc2}\n",
		    "PIPE:16:11: the pair 'fc1', 'fc2' is listed twice");
	check_fails("cle_dense", "[4]", sig_layers,
		    "  - cle:\n      pairs:\n"
		    "        - {first: fc1, second: fc2}\n",
		    "PIPE:13:11: 'fc1' and 'fc2' cannot be equalized: 'fc1' "
		    "is followed by the sigmoid layer 'h1' (only relu, "
		    "leaky_relu, maxpool2d or nothing may stand between the "
		    "two layers, and the second must be a dense or conv2d)");
	/* The core checks the declared parameters. */
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle: {iterations: 0}\n",
		    "PIPE:13:23: iterations: '0' is not an integer between "
		    "1 and 1000000");
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle: {tolerance: -1}\n",
		    "PIPE:13:22: tolerance: '-1' is not a number between 0 "
		    "and 1");
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - cle:\n      pairs:\n        - {first: fc1}\n",
		    "PIPE:15:11: pairs[0]: missing required key 'second'");
	check_fails("cle_chain", "[5]", chain_layers,
		    "  - bn_fold: {strict: true}\n",
		    "PIPE:13:15: unknown key 'strict': transform 'bn_fold' "
		    "takes no parameters");
}

/* --- main ----------------------------------------------------------------- */

static const tm_test_case model_cases[] = {
	{ "uses and producers", test_uses_producer },
	{ "remove_node rewires readers and outputs", test_remove_rewires },
	{ "remove_node deletes constants only it read", test_remove_constants },
	{ "remove_node errors change nothing", test_remove_errors },
	{ "node_add_input keeps the order", test_add_input },
	{ NULL, NULL }
};

static const tm_test_case fold_cases[] = {
	{ "conv-bn-relu, conv-bn-relu6, depthwise-bn", test_fold_conv },
	{ "calibration sees the folded graph", test_fold_calibrated },
	{ "dense-bn", test_fold_dense },
	{ "BatchNorms that cannot fold stay, with a warning", test_fold_kept },
	{ "two in a row; a free bias name", test_fold_twice },
	{ "output read elsewhere, weight shared", test_fold_not_alone },
	{ "a zero variance is an error that changes nothing",
	  test_fold_overflow },
	{ NULL, NULL }
};

static const tm_test_case cle_cases[] = {
	{ "dense pair, one channel 10x", test_cle_dense },
	{ "conv pair", test_cle_conv },
	{ "conv pair through a max pool", test_cle_maxpool },
	{ "depthwise in a chain, through leaky_relu", test_cle_depthwise },
	{ "dense chain converges", test_cle_chain },
	{ "too few iterations: warned, still exact", test_cle_iterations },
	{ "explicit pairs", test_cle_pairs },
	{ "no pair (sigmoid between)", test_cle_no_pair },
	{ "after bn_fold; ReLU6 ends a pair", test_fold_then_cle },
	{ "errors at the user's line", test_cle_errors },
	{ NULL, NULL }
};

int
main(void)
{
	tm_error err;
	int rc;

	verbose = getenv("TM_TEST_VERBOSE") != NULL;
	tm_error_clear(&err);
	tm_log_set_handler(tm_test_log_capture, NULL);
	reg = tm_registry_new();
	if (!reg || tm_registry_scan(reg, NULL, NULL, NULL, &err)) {
		char msg[MSG_MAX];

		fprintf(stderr, "%s\n", tm_error_format(&err, msg, sizeof msg));
		tm_registry_free(reg);
		reg = NULL;
	}
	if (tm_test_add_suite("model rewriting", model_cases) ||
	    tm_test_add_suite("bn_fold", fold_cases) ||
	    tm_test_add_suite("cle", cle_cases))
		return 99;
	rc = tm_test_run();
	tm_registry_free(reg);
	tm_log_set_handler(NULL, NULL);
	return rc;
}
