/* tmpipe tests — the data-free quantization transforms of Nagel et al.
 * 2019 beyond cle (bias_absorb, bias_correct), the order rules of a
 * pipeline's transforms, recalibration after a transform that runs on the
 * calibrated model, and what cle gains in int8.
 *
 * Data: tests/data/dfq/ (tests/gen/dfq_ref.py), and the cle_dense model
 * of tests/data/transforms/. The known answers come from the generator
 * (float64 numpy, and an emulation of the int8 runtime for the mean
 * errors); the int8 numbers here are measured through the real path
 * (quantize, lower, tmrt_run: the verify stage or tm_model_lower).
 *
 * Set TM_TEST_VERBOSE=1 to print the measured numbers. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tmpipe/lower.h>
#include <tmpipe/log.h>
#include <tmpipe/npy.h>
#include <tmpipe/tmpipe.h>
#include <tmrt/tmrt.h>

#include "interp_priv.h"
#include "loader_priv.h"
#include "pipeline_priv.h"
#include "run_priv.h"
#include "runner.h"
#include "transform_priv.h"

#define MSG_MAX (TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 8)

static tm_registry *reg;
static int verbose;

static const char *
dfq_dir(const char *sub, char *buf, size_t size)
{
	snprintf(buf, size, "%s/data/dfq/%s", tm_test_srcdir(), sub);
	return buf;
}

/* Runs the pipeline text (written to a temporary file). Returns the model
 * (NULL on failure, with the error in msg where "PIPE" stands for the
 * file's path); the summary in *sum (the caller finalizes it). Clears the
 * captured log first. */
static tm_model *
run_text(const char *text, tm_run_summary *sum, char *msg, size_t size)
{
	char path[4096], full[MSG_MAX];
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	tm_error err;

	logbuf[0] = tracebuf[0] = '\0';
	msg[0] = '\0';
	memset(sum, 0, sizeof *sum);
	snprintf(path, sizeof path, "%s/dfq.yaml", tm_test_tmpdir());
	tm_test_write_file(path, text);
	tm_error_clear(&err);
	if (!reg || tm_pipeline_load(path, reg, NULL, &pl, &err) ||
	    tm_pipeline_run(pl, NULL, NULL, sum, &m, &err)) {
		size_t plen = strlen(path);

		tm_error_format(&err, full, sizeof full);
		if (strncmp(full, path, plen) == 0)
			snprintf(msg, size, "PIPE%s", full + plen);
		else
			snprintf(msg, size, "%s", full);
		m = NULL;
	}
	tm_pipeline_free(pl);
	return m;
}

/* run_text that must succeed; the summary is dropped unless sum. */
static tm_model *
run_ok(const char *text, tm_run_summary *sum)
{
	char msg[MSG_MAX];
	tm_run_summary own;
	tm_model *m = run_text(text, sum ? sum : &own, msg, sizeof msg);

	if (!m)
		fprintf(stderr, "\n  %s\n", msg);
	if (!sum)
		tm_run_summary_fini(&own);
	return m;
}

static int
load_npy(const char *path, tm_npy *out)
{
	char msg[MSG_MAX];
	tm_error err;

	tm_error_clear(&err);
	memset(out, 0, sizeof *out);
	if (tm_npy_load(path, out, &err)) {
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg,
							  sizeof msg));
		return -1;
	}
	return 0;
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

/* Constant tensor of m equals the .npy file within tol relative. */
static void
check_const(const tm_model *m, const char *tensor, const char *file,
	    double tol)
{
	const tm_tensor *t = tm_model_find_tensor(m, tensor);
	tm_npy want;

	CU_ASSERT_PTR_NOT_NULL(t);
	if (!t || load_npy(file, &want)) {
		CU_FAIL("tensor or reference missing");
		return;
	}
	CU_ASSERT_EQUAL(tm_tensor_numel(t), want.numel);
	if (tm_tensor_numel(t) == want.numel) {
		double e = max_rel(t->data, want.data, want.numel);

		if (verbose || !(e <= tol))
			fprintf(stderr, "\n  %s: max rel error %.3g\n", tensor,
				e);
		CU_ASSERT(e <= tol);
	}
	tm_npy_fini(&want);
}

/* The first output of m on the samples in file, a malloc'd copy (*len
 * values); NULL on failure. */
static float *
forward(const tm_model *m, const char *file, size_t *len)
{
	char msg[MSG_MAX];
	tm_interp *it = NULL;
	tm_npy x;
	tm_error err;
	float *out = NULL;
	size_t n, t = m->outputs[0];

	*len = 0;
	tm_error_clear(&err);
	if (load_npy(file, &x))
		return NULL;
	n = (size_t)x.shape[0];
	it = tm_priv_interp_new(m, n, &err);
	if (!it || (memcpy(tm_priv_interp_input(it, 0), x.data,
			   x.numel * sizeof(float)),
		    tm_priv_interp_run(it, n, &err))) {
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg,
							  sizeof msg));
		CU_FAIL("forward");
		goto out;
	}
	*len = n * tm_tensor_numel(m->tensors[t]);
	out = malloc(*len * sizeof *out);
	if (out)
		memcpy(out, tm_priv_interp_tensor(it, t), *len * sizeof *out);
out:
	tm_priv_interp_free(it);
	tm_npy_fini(&x);
	return out;
}

/* --- bias_absorb --------------------------------------------------------- */

static const char absorb_layers[] =
	"    - {name: fc1, op: dense, input: input}\n"
	"    - {name: bn1, op: batchnorm, input: fc1}\n"
	"    - {name: h1, op: relu, input: bn1}\n"
	"    - {name: fc2, op: dense, input: h1}\n";

/* The absorb model with the transforms, calibrated with minmax on its
 * inputs. */
static tm_model *
absorb_model(const char *transforms)
{
	char dir[4096], text[8192];

	dfq_dir("absorb", dir, sizeof dir);
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [4]}\n  layers:\n%s"
		 "transforms:\n%scalibration:\n  data: %s/inputs.npy\n"
		 "  observer: minmax\n", dir, absorb_layers, transforms, dir);
	return run_ok(text, NULL);
}

static int
read_ranges(double *v)
{
	char path[4096], dir[4096];
	FILE *fp;
	int n;

	snprintf(path, sizeof path, "%s/ref/range.txt",
		 dfq_dir("absorb", dir, sizeof dir));
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	n = fscanf(fp, "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]);
	fclose(fp);
	return n == 4 ? 0 : -1;
}

/* Every pre-activation is above its shift: absorption keeps the output
 * (1e-5), moves the biases as the reference does, and shrinks h1's range
 * by the known amount. */
static void
test_absorb_exact(void)
{
	tm_model *a = absorb_model("  - bn_fold\n");
	char logged[sizeof logbuf];
	tm_model *b = absorb_model("  - bn_fold\n  - bias_absorb\n");
	char dir[4096], file[4096];
	const tm_tensor *ha, *hb, *y;
	float *ya = NULL, *yb = NULL;
	double want[4], e;
	size_t na, nb;
	tm_npy c = { 0 };

	snprintf(logged, sizeof logged, "%s", logbuf);
	REQUIRE(a);
	REQUIRE(b);
	REQUIRE(read_ranges(want) == 0);
	dfq_dir("absorb", dir, sizeof dir);
	snprintf(file, sizeof file, "%s/inputs.npy", dir);
	ya = forward(a, file, &na);
	yb = forward(b, file, &nb);
	REQUIRE(ya && yb && na == nb && na == 16 * 3);
	e = max_rel(yb, ya, na);
	if (verbose)
		fprintf(stderr, "\n  absorb: output max rel change %.3g\n", e);
	CU_ASSERT(e <= 1e-5);
	snprintf(file, sizeof file, "%s/ref/fc1.bias.npy", dir);
	check_const(b, "fc1.bias", file, 1e-6);
	snprintf(file, sizeof file, "%s/ref/fc2.bias.npy", dir);
	check_const(b, "fc2.bias", file, 1e-6);

	/* The range of h1 (relu output), the int8 tensor between. */
	ha = tm_model_find_tensor(a, "h1");
	hb = tm_model_find_tensor(b, "h1");
	REQUIRE(ha && hb && ha->has_range && hb->has_range);
	if (verbose)
		fprintf(stderr, "  absorb: h1 range [%.6g, %.6g] -> [%.6g, "
			"%.6g]: hi shrinks by %.6g\n", (double)ha->lo,
			(double)ha->hi, (double)hb->lo, (double)hb->hi,
			(double)(ha->hi - hb->hi));
	CU_ASSERT(fabs(ha->lo - want[0]) <= 1e-5 * want[1]);
	CU_ASSERT(fabs(ha->hi - want[1]) <= 1e-5 * want[1]);
	CU_ASSERT(fabs(hb->lo - want[2]) <= 1e-5 * want[1]);
	CU_ASSERT(fabs(hb->hi - want[3]) <= 1e-5 * want[1]);
	CU_ASSERT(want[1] - want[3] > 2.5);	/* 4.25 -> 1.74 */

	/* The statistics moved with the shift: beta - c. */
	snprintf(file, sizeof file, "%s/ref/c.npy", dir);
	REQUIRE(load_npy(file, &c) == 0);
	y = tm_model_find_tensor(b, "fc1");
	REQUIRE(y && y->n_bn == 6 && c.numel == 6);
	{
		const tm_tensor *ya_t = tm_model_find_tensor(a, "fc1");

		REQUIRE(ya_t && ya_t->n_bn == 6);
		for (size_t k = 0; k < 6; k++)
			CU_ASSERT_DOUBLE_EQUAL(y->bn_beta[k],
					       ya_t->bn_beta[k] - c.data[k],
					       1e-5);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(logged, "note: bias_absorb: 'fc1' -> "
				      "'fc2': shifted 5 of 6 channels, by up "
				      "to "));
	CU_ASSERT_PTR_NOT_NULL(strstr(logged, "note: bias_absorb: absorbed "
				      "biases in 1 pair\n"));
out:
	free(ya);
	free(yb);
	tm_npy_fini(&c);
	tm_model_free(a);
	tm_model_free(b);
}

/* After cle the statistics are the equalized model's: absorption is
 * still exact and still shrinks h1. */
static void
test_absorb_after_cle(void)
{
	tm_model *a = absorb_model("  - bn_fold\n  - cle\n");
	tm_model *b = absorb_model("  - bn_fold\n  - cle\n  - bias_absorb\n");
	char dir[4096], file[4096];
	float *ya = NULL, *yb = NULL;
	const tm_tensor *ha, *hb;
	size_t na, nb;

	REQUIRE(a);
	REQUIRE(b);
	dfq_dir("absorb", dir, sizeof dir);
	snprintf(file, sizeof file, "%s/inputs.npy", dir);
	ya = forward(a, file, &na);
	yb = forward(b, file, &nb);
	REQUIRE(ya && yb && na == nb);
	CU_ASSERT(max_rel(yb, ya, na) <= 1e-5);
	ha = tm_model_find_tensor(a, "h1");
	hb = tm_model_find_tensor(b, "h1");
	REQUIRE(ha && hb);
	if (verbose)
		fprintf(stderr, "\n  cle + absorb: h1 hi %.6g -> %.6g\n",
			(double)ha->hi, (double)hb->hi);
	CU_ASSERT(hb->hi < 0.6 * ha->hi);
	/* No pre-activation went below its shift: h1's minimum stays
	 * positive. */
	CU_ASSERT(hb->lo > 0.0f);
out:
	free(ya);
	free(yb);
	tm_model_free(a);
	tm_model_free(b);
}

/* A model without BatchNorm: a note, nothing changed. */
static void
test_absorb_no_bn(void)
{
	char dir[4096], text[8192];
	tm_model *m;

	snprintf(dir, sizeof dir, "%s/data/transforms/cle_dense",
		 tm_test_srcdir());
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [4]}\n  layers:\n"
		 "    - {name: fc1, op: dense, input: input}\n"
		 "    - {name: h1, op: relu, input: fc1}\n"
		 "    - {name: fc2, op: dense, input: h1}\n"
		 "transforms:\n  - bn_fold\n  - bias_absorb\n", dir);
	m = run_ok(text, NULL);
	CU_ASSERT_PTR_NOT_NULL(m);
	CHECK_STR(logbuf, "note: bn_fold: no batchnorm layer to fold\n"
		  "note: bias_absorb: no layer output has BatchNorm "
		  "statistics (bn_fold records them when it folds): nothing "
		  "to absorb\n");
	if (m) {
		char file[4096];

		snprintf(file, sizeof file, "%s/fc1.bias.npy", dir);
		check_const(m, "fc1.bias", file, 0.0);
		snprintf(file, sizeof file, "%s/fc2.bias.npy", dir);
		check_const(m, "fc2.bias", file, 0.0);
	}
	tm_model_free(m);
}

/* conv2d pairs: absorbed over the taps into a conv that does not pad;
 * one that pads is left alone, with a note. */
static tm_model *
absorb_conv_model(const char *pad, const char *transforms)
{
	char dir[4096], text[8192];

	dfq_dir("absorb_conv", dir, sizeof dir);
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [2, 6, 6]}\n  layers:\n"
		 "    - {name: conv1, op: conv2d, input: input, padding: [1]}\n"
		 "    - {name: bn1, op: batchnorm, input: conv1}\n"
		 "    - {name: a1, op: relu, input: bn1}\n"
		 "    - {name: conv2, op: conv2d, input: a1%s}\n"
		 "transforms:\n%s", dir, pad, transforms);
	return run_ok(text, NULL);
}

static void
test_absorb_conv(void)
{
	tm_model *a = absorb_conv_model("", "  - bn_fold\n");
	tm_model *b = absorb_conv_model("", "  - bn_fold\n  - bias_absorb\n");
	char logged[sizeof logbuf];
	tm_model *pa = NULL, *pb = NULL;
	char dir[4096], file[4096];
	float *ya = NULL, *yb = NULL;
	size_t na, nb;

	snprintf(logged, sizeof logged, "%s", logbuf);
	REQUIRE(a);
	REQUIRE(b);
	dfq_dir("absorb_conv", dir, sizeof dir);
	snprintf(file, sizeof file, "%s/inputs.npy", dir);
	ya = forward(a, file, &na);
	yb = forward(b, file, &nb);
	REQUIRE(ya && yb && na == nb && na == 8 * 2 * 4 * 4);
	CU_ASSERT(max_rel(yb, ya, na) <= 1e-5);
	snprintf(file, sizeof file, "%s/ref/conv1.bias.npy", dir);
	check_const(b, "conv1.bias", file, 1e-6);
	snprintf(file, sizeof file, "%s/ref/conv2.bias.npy", dir);
	check_const(b, "conv2.bias", file, 1e-6);
	CU_ASSERT_PTR_NOT_NULL(strstr(logged, "note: bias_absorb: 'conv1' -> "
				      "'conv2': shifted 2 of 3 channels, by "
				      "up to "));

	/* With padding: nothing moves. */
	pa = absorb_conv_model(", padding: [1]", "  - bn_fold\n");
	pb = absorb_conv_model(", padding: [1]",
			       "  - bn_fold\n  - bias_absorb\n");
	REQUIRE(pa && pb);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "note: bias_absorb: 'conv1' "
				      "has BatchNorm statistics but nothing "
				      "to absorb into: 'conv2' pads its input "
				      "(the absorption would be exact only "
				      "away from the borders)\n"));
	{
		const tm_tensor *x = tm_model_find_tensor(pa, "conv1.bias");
		const tm_tensor *y = tm_model_find_tensor(pb, "conv1.bias");

		REQUIRE(x && y);
		CU_ASSERT_EQUAL(memcmp(x->data, y->data, 3 * sizeof(float)),
				0);
	}
out:
	free(ya);
	free(yb);
	tm_model_free(a);
	tm_model_free(b);
	tm_model_free(pa);
	tm_model_free(pb);
}

/* --- bias_correct -------------------------------------------------------- */

/* test_correct_clipped's measured mean int8 output errors. */
#define MLP_ERR_NONE		0.10908
#define MLP_ERR_WEIGHTS		0.103629
#define MLP_ERR_EMPIRICAL	0.00356529

static tm_model *
correct_model(const char *transforms, tm_run_summary *sum)
{
	char dir[4096], text[8192];

	dfq_dir("correct", dir, sizeof dir);
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [8]}\n  layers:\n"
		 "    - {name: fc, op: dense, input: input}\n"
		 "%s%scalibration:\n  data: %s/calib.npy\n"
		 "  observer: minmax\n", dir, transforms[0] ? "transforms:\n"
							    : "",
		 transforms, dir);
	return run_ok(text, sum);
}

/* mean over the channels of |mean over holdout of (int8 - float)|,
 * through tm_model_lower and tmrt_run; -1 on failure. */
static double
mean_error(const tm_model *m, const char *sub, const char *holdout)
{
	char dir[4096], file[4096], msg[MSG_MAX];
	const tm_tensor *x = m->tensors[m->inputs[0]];
	const tm_tensor *y = m->tensors[m->outputs[0]];
	tm_lowered *l = NULL;
	float *yf = NULL;
	void *arena = NULL;
	double *sum = NULL, r = -1.0;
	size_t nf, nx = tm_tensor_numel(x), ny = tm_tensor_numel(y);
	int8_t qin[64], qout[64];
	tm_npy h = { 0 };
	tm_error err;

	tm_error_clear(&err);
	dfq_dir(sub, dir, sizeof dir);
	snprintf(file, sizeof file, "%s/%s", dir, holdout);
	if (nx > sizeof qin || ny > sizeof qout || load_npy(file, &h))
		goto out;
	yf = forward(m, file, &nf);
	sum = calloc(ny, sizeof *sum);
	if (!yf || !sum || tm_model_lower(m, &l, &err)) {
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg,
							  sizeof msg));
		goto out;
	}
	arena = malloc(tm_lowered_arena_size(l) + 1);
	if (!arena)
		goto out;
	for (size_t s = 0; s < (size_t)h.shape[0]; s++) {
		const int8_t *in[1] = { qin };
		int8_t *outp[1] = { qout };

		for (size_t i = 0; i < nx; i++) {
			long q = lround(h.data[s * nx + i] / x->q.scale) +
				 x->q.zero_point;

			qin[i] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
		}
		if (tmrt_run(tm_lowered_model(l), in, outp, arena,
			     tm_lowered_arena_size(l)) != TMRT_OK)
			goto out;
		for (size_t o = 0; o < ny; o++)
			sum[o] += y->q.scale * (qout[o] - y->q.zero_point) -
				  (double)yf[s * ny + o];
	}
	r = 0.0;
	for (size_t o = 0; o < ny; o++)
		r += fabs(sum[o] / (double)h.shape[0]);
	r /= (double)ny;
out:
	free(arena);
	free(sum);
	free(yf);
	tm_lowered_free(l);
	tm_npy_fini(&h);
	return r;
}

/* A dense whose per-tensor rounding moves every weight by about
 * -0.4/127, on inputs of mean 1: a biased output error that the
 * correction removes. The int32 biases are the reference's exactly; the
 * float bias is back to the trained one; no recalibration (the ranges
 * are the float model's); the mean error drops as the emulation says. */
static void
test_correct(void)
{
	tm_run_summary s0, s1;
	tm_model *a = correct_model("", &s0);
	tm_model *b = correct_model("  - bias_correct: {mode: weights}\n",
				    &s1);
	char logged[sizeof logbuf];
	char dir[4096], file[4096];
	tm_npy q0 = { 0 }, q1 = { 0 };
	const tm_tensor *ba, *bb, *ya, *yb;
	double want[2] = { 0, 0 }, before, after;
	FILE *fp;

	snprintf(logged, sizeof logged, "%s", logbuf);
	REQUIRE(a);
	REQUIRE(b);
	dfq_dir("correct", dir, sizeof dir);
	snprintf(file, sizeof file, "%s/ref/mean_error.txt", dir);
	fp = fopen(file, "r");
	REQUIRE(fp);
	CU_ASSERT_EQUAL(fscanf(fp, "%lf %lf", &want[0], &want[1]), 2);
	fclose(fp);
	snprintf(file, sizeof file, "%s/ref/bias_q0.npy", dir);
	REQUIRE(load_npy(file, &q0) == 0);
	snprintf(file, sizeof file, "%s/ref/bias_q.npy", dir);
	REQUIRE(load_npy(file, &q1) == 0);
	ba = tm_model_find_tensor(a, "fc.bias");
	bb = tm_model_find_tensor(b, "fc.bias");
	REQUIRE(ba && bb && ba->q32 && bb->q32 && q0.numel == 4 &&
		q1.numel == 4);
	for (size_t o = 0; o < 4; o++) {
		CU_ASSERT_EQUAL(ba->q32[o], (int32_t)q0.data[o]);
		CU_ASSERT_EQUAL(bb->q32[o], (int32_t)q1.data[o]);
		CU_ASSERT_EQUAL(ba->data[o], bb->data[o]);
	}
	CU_ASSERT_PTR_NULL(bb->qorig);
	CU_ASSERT_EQUAL(s1.recalibrations, 0);
	ya = tm_model_find_tensor(a, "fc");
	yb = tm_model_find_tensor(b, "fc");
	REQUIRE(ya && yb);
	CU_ASSERT_EQUAL(ya->lo, yb->lo);
	CU_ASSERT_EQUAL(ya->hi, yb->hi);
	CU_ASSERT_PTR_NOT_NULL(strstr(logged, "note: bias_correct: 'fc': "
				      "weights per tensor, expected output "
				      "error up to "));

	before = mean_error(a, "correct", "holdout.npy");
	after = mean_error(b, "correct", "holdout.npy");
	if (verbose)
		fprintf(stderr, "\n  bias_correct: mean |mean error| %.6g -> "
			"%.6g (reference %.6g -> %.6g)\n", before, after,
			want[0], want[1]);
	CU_ASSERT(fabs(before - want[0]) <= 1e-6 * want[0]);
	CU_ASSERT(fabs(after - want[1]) <= 1e-6 * want[0]);
	CU_ASSERT(after * 10.0 < before);
out:
	tm_npy_fini(&q0);
	tm_npy_fini(&q1);
	tm_run_summary_fini(&s0);
	tm_run_summary_fini(&s1);
	tm_model_free(a);
	tm_model_free(b);
}

/* Runs pipeline text base (no transforms: calibrated and quantized),
 * then bias_correct in mode on the model directly, with the pipeline's
 * context, as the core runs it after calibration: the corrections stay
 * in the biases, qorig holding the float ones. The parameters come from
 * base with "transforms: [bias_correct: {mode: MODE}]" appended, loaded
 * and not run. Returns the model, NULL on failure. */
static tm_model *
correct_direct(const char *base, const char *mode)
{
	char path[4096], text[8192], msg[MSG_MAX];
	const tm_plugin *p = NULL;
	tm_pipeline *pl = NULL, *pm = NULL;
	tm_model *m = NULL;
	tm_run_summary sum;
	tm_transform_ctx ctx;
	unsigned preserved = 0;
	tm_error err;

	memset(&sum, 0, sizeof sum);
	tm_error_clear(&err);
	logbuf[0] = tracebuf[0] = '\0';
	snprintf(path, sizeof path, "%s/dfq_base.yaml", tm_test_tmpdir());
	tm_test_write_file(path, base);
	if (!reg || tm_pipeline_load(path, reg, NULL, &pl, &err) ||
	    tm_pipeline_run(pl, NULL, NULL, &sum, &m, &err))
		goto fail;
	snprintf(text, sizeof text, "%stransforms:\n  - bias_correct: "
		 "{mode: %s}\n", base, mode);
	snprintf(path, sizeof path, "%s/dfq_mode.yaml", tm_test_tmpdir());
	tm_test_write_file(path, text);
	if (tm_pipeline_load(path, reg, NULL, &pm, &err) ||
	    tm_registry_find(reg, "bias_correct", TM_PLUGIN_TRANSFORM, &p,
			     &err))
		goto fail;
	ctx.pl = pl;
	{
		const tm_transform_ops *ops = p->desc->ops;

		logbuf[0] = tracebuf[0] = '\0';
		if (ops->run_ctx(m, pm->transforms[0].params, &ctx,
				 &preserved, &err))
			goto fail;
	}
	CU_ASSERT_EQUAL(preserved, TM_PRESERVE_RANGES);
	goto out;
fail:
	fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg, sizeof msg));
	CU_FAIL("pipeline");
	tm_model_free(m);
	m = NULL;
out:
	tm_run_summary_fini(&sum);
	tm_pipeline_free(pl);
	tm_pipeline_free(pm);
	return m;
}

/* The correction bias_correct made to bias tensor name (data - qorig)
 * is -(ref/<file>.npy) in dir within tol of its largest value, which is
 * above 1e-4. */
static void
check_correction(const tm_model *m, const char *name, const char *dir,
		 const char *file, double tol)
{
	char path[4096];
	const tm_tensor *b = m ? tm_model_find_tensor(m, name) : NULL;
	tm_npy want = { 0 };
	double e = 0.0, s = 0.0;

	snprintf(path, sizeof path, "%s/ref/%s.npy", dir, file);
	REQUIRE(b && b->qorig && load_npy(path, &want) == 0);
	CU_ASSERT_EQUAL(want.numel, tm_tensor_numel(b));
	for (size_t o = 0; o < want.numel && o < tm_tensor_numel(b); o++) {
		double got = (double)b->data[o] - b->qorig[o];

		e = fmax(e, fabs(got + want.data[o]));
		s = fmax(s, fabs((double)want.data[o]));
	}
	if (verbose)
		fprintf(stderr, "\n  %s (%s): correction max |error| %.3g "
			"of %.3g", name, file, e, s);
	CU_ASSERT(s > 1e-4 && e <= tol * s);
out:
	tm_npy_fini(&want);
}

/* bias_correct on convolutions (stride, padding, groups; weights per
 * channel), called directly on a calibrated model with the pipeline's
 * context: the correction of each bias is the reference's, computed by
 * convolving (so the padding is checked, not assumed): with W_q - W on
 * the float inputs (weights), and with W_q on the fake-quantized inputs
 * minus W on the float ones (empirical). The int8 conv path is not
 * exercised here. */
static void
test_correct_conv(void)
{
	char dir[4096], text[8192], name[64], file[64];
	static const char *const convs[] = { "conv1", "conv2" };
	static const char *const modes[] = { "weights", "empirical" };

	dfq_dir("correct_conv", dir, sizeof dir);
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [3, 7, 6]}\n  layers:\n"
		 "    - {name: conv1, op: conv2d, input: input, stride: [2], "
		 "padding: [1]}\n"
		 "    - {name: a1, op: relu, input: conv1}\n"
		 "    - {name: conv2, op: conv2d, input: a1, padding: [1], "
		 "groups: 2}\n"
		 "calibration:\n  data: %s/calib.npy\n  observer: minmax\n"
		 "  batch: 5\n"
		 "quantize:\n  weights: per_channel\n", dir, dir);
	for (size_t k = 0; k < 2; k++) {
		tm_model *m = correct_direct(text, modes[k]);

		for (size_t c = 0; c < 2 && m; c++) {
			snprintf(name, sizeof name, "%s.bias", convs[c]);
			snprintf(file, sizeof file, "%s.%s", convs[c],
				 k ? "empirical" : "correction");
			check_correction(m, name, dir, file, k ? 1e-4 : 1e-5);
		}
		tm_model_free(m);
	}
}

/* Layers without biases: every mode gives each one a bias of its own
 * before it streams anything (the empirical rounds index the model's
 * tensors, which must not grow under them), holding the correction. */
static void
test_correct_no_bias(void)
{
	char dir[4096], tmp[4096], text[8192], src[4096], dst[4096];
	static const char *const modes[] = { "weights", "empirical" };

	dfq_dir("correct_mlp", dir, sizeof dir);
	snprintf(tmp, sizeof tmp, "%s/nobias", tm_test_tmpdir());
	mkdir(tmp, 0777);
	for (int l = 1; l <= 3; l++) {
		snprintf(src, sizeof src, "%s/fc%d.weight.npy", dir, l);
		snprintf(dst, sizeof dst, "%s/fc%d.weight.npy", tmp, l);
		unlink(dst);
		CU_ASSERT_EQUAL_FATAL(symlink(src, dst), 0);
	}
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [6]}\n  layers:\n"
		 "    - {name: fc1, op: dense, input: input}\n"
		 "    - {name: h1, op: relu, input: fc1}\n"
		 "    - {name: fc2, op: dense, input: h1}\n"
		 "    - {name: h2, op: relu, input: fc2}\n"
		 "    - {name: fc3, op: dense, input: h2}\n"
		 "calibration:\n  data: %s/calib.npy\n  observer: minmax\n"
		 "  batch: 7\n", tmp, dir);
	for (size_t k = 0; k < 2; k++) {
		tm_model *m = correct_direct(text, modes[k]);

		for (int l = 1; l <= 3 && m; l++) {
			char name[64];
			const tm_tensor *b, *w;

			snprintf(name, sizeof name, "fc%d.bias", l);
			b = tm_model_find_tensor(m, name);
			snprintf(name, sizeof name, "fc%d.weight", l);
			w = tm_model_find_tensor(m, name);
			CU_ASSERT_PTR_NOT_NULL_FATAL(b);
			CU_ASSERT_PTR_NOT_NULL_FATAL(w);
			CU_ASSERT_EQUAL(b->ndim, 1);
			CU_ASSERT_EQUAL(b->shape[0], w->shape[0]);
		}
		tm_model_free(m);
	}
}

/* The 3-layer MLP of correct_mlp/ (weights per tensor; h1's range the
 * percentile (0, 90) one, so the int8 model clips h1's top tenth). */
static void
mlp_text(char *text, size_t size, const char *transforms, const char *calib)
{
	char dir[4096];

	dfq_dir("correct_mlp", dir, sizeof dir);
	snprintf(text, size, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [6]}\n  layers:\n"
		 "    - {name: fc1, op: dense, input: input}\n"
		 "    - {name: h1, op: relu, input: fc1}\n"
		 "    - {name: fc2, op: dense, input: h1}\n"
		 "    - {name: h2, op: relu, input: fc2}\n"
		 "    - {name: fc3, op: dense, input: h2}\n"
		 "%s%scalibration:\n  data: %s/%s\n"
		 "  observer: minmax\n  batch: 7\n  tensors:\n"
		 "    h1: {observer: percentile, lo: 0, hi: 90}\n", dir,
		 transforms[0] ? "transforms:\n" : "", transforms, dir, calib);
}

/* Both modes against the float64 numpy emulation of tests/gen/
 * dfq_ref.py, layer by layer: weights, (W_q - W) E[x]; empirical, W_q
 * E[x~] - W E[x] with x~ the input in the fake-quantized int8 model, the
 * earlier layers corrected first (three streams of it for the chain of
 * three). The default mode is empirical. */
static void
test_correct_mlp(void)
{
	char dir[4096], text[8192], name[64], file[64];
	static const char *const modes[] = { "weights", "empirical" };
	tm_run_summary sum;
	tm_model *m;

	dfq_dir("correct_mlp", dir, sizeof dir);
	mlp_text(text, sizeof text, "", "calib.npy");
	for (size_t k = 0; k < 2; k++) {
		m = correct_direct(text, modes[k]);
		for (int l = 1; l <= 3 && m; l++) {
			snprintf(name, sizeof name, "fc%d.bias", l);
			snprintf(file, sizeof file, "fc%d.%s", l, modes[k]);
			check_correction(m, name, dir, file, 1e-4);
		}
		if (k == 1)
			CU_ASSERT_PTR_NOT_NULL(strstr(tracebuf, "trace: "
						      "bias_correct: 3 "
						      "streams of the int8 "
						      "model\n"));
		tm_model_free(m);
	}
	/* The default: the log says which inputs. */
	mlp_text(text, sizeof text, "  - bias_correct\n", "calib.npy");
	m = run_ok(text, &sum);
	CU_ASSERT_PTR_NOT_NULL(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "note: bias_correct: 'fc2': "
				      "weights per tensor, int8 inputs, "
				      "expected output error up to "));
	tm_run_summary_fini(&sum);
	tm_model_free(m);
}

/* Where the int8 model's activations shift the mean (h1 clipped at its
 * 90th percentile): calibrated on 4096 samples, the mean int8 output
 * error over 4096 held-out ones (mean over channels of |mean of int8 -
 * float|, through tm_model_lower and tmrt_run) without correction, with
 * the weights mode, and with the empirical mode. The weights mode cannot
 * see the clipping; the empirical mode removes most of it. The numbers are the
 * measured ones (TM_TEST_VERBOSE=1 prints them), asserted within 2%
 * (the empirical one, a residue, within 10%). */
static void
test_correct_clipped(void)
{
	static const char *const transforms[] = {
		"", "  - bias_correct: {mode: weights}\n",
		"  - bias_correct: {mode: empirical}\n"
	};
	static const double want[] = { MLP_ERR_NONE, MLP_ERR_WEIGHTS,
				       MLP_ERR_EMPIRICAL };
	double got[3] = { -1, -1, -1 };
	char text[8192];

	for (size_t k = 0; k < 3; k++) {
		tm_model *m;

		mlp_text(text, sizeof text, transforms[k],
			 "calib_large.npy");
		m = run_ok(text, NULL);
		CU_ASSERT_PTR_NOT_NULL(m);
		if (m)
			got[k] = mean_error(m, "correct_mlp",
					    "holdout_large.npy");
		tm_model_free(m);
		if (verbose)
			fprintf(stderr, "\n  clipped h1, %s: mean |mean "
				"error| %.6g", k == 0 ? "no correction"
				: k == 1 ? "weights" : "empirical", got[k]);
		CU_ASSERT(fabs(got[k] - want[k]) <=
			  (k == 2 ? 0.1 : 0.02) * want[k]);
	}
	CU_ASSERT(got[2] >= 0.0 && got[2] * 20.0 < got[1]);
}

/* --- tm_transform_ctx_stream_quantized ---------------------------------- */

typedef struct grab {
	size_t tensor;
	float *v;		/* every value, in stream order */
	size_t n, cap;
} grab;

static tm_status
grab_visit(void *user, size_t tensor, const float *values, size_t n,
	   tm_error *err)
{
	grab *g = user;

	(void)err;
	for (size_t k = 0; k < 3; k++) {
		size_t per = g[k].cap / 256;

		if (g[k].tensor != tensor || g[k].n + n * per > g[k].cap)
			continue;
		memcpy(g[k].v + g[k].n, values, n * per * sizeof *values);
		g[k].n += n * per;
	}
	return TM_OK;
}

/* On the calibrated MLP of correct_mlp/ (256 samples): the input and h1
 * come out on their int8 grids, within half a step of the float values
 * (h1 also clipped at its range's top); fc1, whose ReLU the quantize pass
 * folds, is not rounded; a tensor without a range is an error naming it. */
static void
test_stream_quantized(void)
{
	static const char *const names[] = { "input", "h1", "fc1" };
	char text[8192], path[4096], msg[MSG_MAX];
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	tm_run_summary sum;
	tm_transform_ctx ctx;
	grab f[3], q[3];
	size_t ts[3], off_grid = 0;
	tm_error err;

	memset(&sum, 0, sizeof sum);
	memset(f, 0, sizeof f);
	memset(q, 0, sizeof q);
	tm_error_clear(&err);
	mlp_text(text, sizeof text, "", "calib.npy");
	snprintf(path, sizeof path, "%s/dfq_sq.yaml", tm_test_tmpdir());
	tm_test_write_file(path, text);
	REQUIRE(reg && !tm_pipeline_load(path, reg, NULL, &pl, &err) &&
		!tm_pipeline_run(pl, NULL, NULL, &sum, &m, &err));
	ctx.pl = pl;
	for (size_t k = 0; k < 3; k++) {
		const tm_tensor *t = tm_model_find_tensor(m, names[k]);

		REQUIRE(t);
		for (size_t i = 0; i < m->n_tensors; i++)
			if (m->tensors[i] == t)
				ts[k] = i;
		f[k].tensor = q[k].tensor = ts[k];
		f[k].cap = q[k].cap = 256 * tm_tensor_numel(t);
		f[k].v = malloc(f[k].cap * sizeof(float));
		q[k].v = malloc(q[k].cap * sizeof(float));
		REQUIRE(f[k].v && q[k].v);
	}
	REQUIRE(!tm_transform_ctx_stream(&ctx, m, ts, 3, grab_visit, f,
					 &err));
	REQUIRE(!tm_transform_ctx_stream_quantized(&ctx, m, ts, 3,
						   grab_visit, q, &err));
	for (size_t k = 0; k < 2; k++) {
		const tm_tensor *t = m->tensors[ts[k]];
		double s, worst = 0.0;
		int32_t zp;

		CU_ASSERT_EQUAL(q[k].n, q[k].cap);
		REQUIRE(!tm_quant_affine(t->lo, t->hi, &s, &zp, &err));
		for (size_t i = 0; i < q[k].n; i++) {
			double r = q[k].v[i] / s + zp;
			double want = fmin(f[k].v[i], (127 - zp) * s);

			worst = fmax(worst, fabs(r - round(r)));
			CU_ASSERT(r >= -128.001 && r <= 127.001);
			if (k == 0)
				CU_ASSERT(fabs(q[k].v[i] - want) <=
					  0.5001 * s);
		}
		if (verbose)
			fprintf(stderr, "\n  %s: off its grid by %.3g steps "
				"at most", names[k], worst);
		CU_ASSERT(worst < 1e-3);
	}
	/* h1 is clipped: its largest rounded value is the range's top. */
	{
		float top = 0.0f;

		for (size_t i = 0; i < q[1].n; i++)
			top = fmaxf(top, q[1].v[i]);
		CU_ASSERT(fabs(top - m->tensors[ts[1]]->hi) <=
			  1e-6 * m->tensors[ts[1]]->hi);
	}
	for (size_t i = 0; i < q[2].n; i++)
		off_grid += q[2].v[i] != f[2].v[i];
	CU_ASSERT(off_grid > q[2].n / 2);
	m->tensors[ts[1]]->has_range = 0;
	CU_ASSERT_EQUAL(tm_transform_ctx_stream_quantized(&ctx, m, ts, 1,
							  grab_visit, q, &err),
			TM_ERR_INVALID);
	CHECK_STR(tm_error_format(&err, msg, sizeof msg),
		  "tensor 'h1' has no range: the model gives none and "
		  "nothing calibrated it (add a calibration section)");
	tm_error_clear(&err);
out:
	if (err.code)
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg,
							  sizeof msg));
	for (size_t k = 0; k < 3; k++) {
		free(f[k].v);
		free(q[k].v);
	}
	tm_run_summary_fini(&sum);
	tm_pipeline_free(pl);
	tm_model_free(m);
}

/* --- order rules and recalibration --------------------------------------- */

static void
check_fails(const char *transforms, int calib, const char *want)
{
	char dir[4096], text[8192], msg[MSG_MAX];
	tm_run_summary sum;
	tm_model *m;

	dfq_dir("correct", dir, sizeof dir);
	/* Line 7 is "transforms:", the list starts at line 8. */
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [8]}\n  layers:\n"
		 "    - {name: fc, op: dense, input: input}\n"
		 "transforms:\n%s%s%s%s", dir, transforms,
		 calib ? "calibration:\n  data: " : "", calib ? dir : "",
		 calib ? "/calib.npy\n" : "");
	m = run_text(text, &sum, msg, sizeof msg);
	CU_ASSERT_PTR_NULL(m);
	tm_model_free(m);
	tm_run_summary_fini(&sum);
	CHECK_STR(msg, want);
}

static void
test_order(void)
{
	check_fails("  - bias_absorb\n", 1,
		    "PIPE:9:5: bias_absorb needs BatchNorm statistics: list "
		    "it after bn_fold (or another transform that records "
		    "them)");
	check_fails("  - cle\n  - bias_absorb\n  - bn_fold\n", 1,
		    "PIPE:10:5: bias_absorb needs BatchNorm statistics: list "
		    "it after bn_fold (or another transform that records "
		    "them)");
	check_fails("  - bias_correct\n  - cle\n", 1,
		    "PIPE:10:5: cle rewrites the float model and must run "
		    "before calibration: list it before bias_correct, which "
		    "is fitted to the model it sees");
	check_fails("  - bn_fold\n  - bias_correct\n  - bias_absorb\n", 1,
		    "PIPE:11:5: bias_absorb rewrites the float model and must "
		    "run before calibration: list it before bias_correct, "
		    "which is fitted to the model it sees");
	check_fails("  - bias_correct\n", 0,
		    "PIPE:9:5: bias_correct needs calibration data: add a "
		    "calibration section");
	check_fails("  - bias_correct: {mode: weight}\n", 1,
		    "PIPE:9:26: mode: 'weight' is not one of empirical, "
		    "weights; did you mean 'weights'?");
}

/* late_shift (a fixture) runs after calibration and moves fc1's bias by
 * +1 without preserving the ranges: the core calibrates again, and fc1's
 * range is the shifted model's. */
static void
test_recalibrate(void)
{
	char dir[4096], text[8192];
	tm_run_summary s0, s1;
	tm_model *a = NULL, *b = NULL;
	const tm_tensor *fa, *fb;
	char logged[sizeof logbuf];

	memset(&s0, 0, sizeof s0);
	memset(&s1, 0, sizeof s1);
	snprintf(dir, sizeof dir, "%s/data/transforms/cle_dense",
		 tm_test_srcdir());
#define PIPE_CLE "tmpipe: 1\nmodel:\n  frontend: npy\n  dir: %s\n"	\
	"  inputs: {input: [4]}\n  layers:\n"				\
	"    - {name: fc1, op: dense, input: input}\n"			\
	"    - {name: h1, op: relu, input: fc1}\n"			\
	"    - {name: fc2, op: dense, input: h1}\n"			\
	"%scalibration:\n  data: %s/inputs.npy\n  observer: minmax\n"
	snprintf(text, sizeof text, PIPE_CLE, dir, "", dir);
	a = run_ok(text, &s0);
	snprintf(text, sizeof text, PIPE_CLE, dir,
		 "transforms:\n  - late_shift\n", dir);
	b = run_ok(text, &s1);
	snprintf(logged, sizeof logged, "%s", logbuf);
	REQUIRE(a);
	REQUIRE(b);
	CU_ASSERT_EQUAL(s0.recalibrations, 0);
	CU_ASSERT_EQUAL(s1.recalibrations, 1);
	CHECK_STR(logged, "note: late_shift: streamed 8 samples\n"
		  "note: calibration: 'late_shift' changed the model after "
		  "calibration: recalibrating\n"
		  "note: calibration: recalibrated: 3 of 4 ranges moved\n");
	CU_ASSERT_PTR_NOT_NULL(strstr(tracebuf, "trace: calibration: range "
				      "of 'fc1' ["));
	fa = tm_model_find_tensor(a, "fc1");
	fb = tm_model_find_tensor(b, "fc1");
	REQUIRE(fa && fb && fa->has_range && fb->has_range);
	if (verbose)
		fprintf(stderr, "\n  recalibrated: fc1 [%.6g, %.6g] -> "
			"[%.6g, %.6g]\n", (double)fa->lo, (double)fa->hi,
			(double)fb->lo, (double)fb->hi);
	CU_ASSERT_DOUBLE_EQUAL(fb->lo, fa->lo + 1.0, 1e-5);
	CU_ASSERT_DOUBLE_EQUAL(fb->hi, fa->hi + 1.0, 1e-5);

	/* Twice: the second streams the model after a recalibration, and
	 * the ranges are recalibrated again before quantizing. */
	tm_model_free(b);
	tm_run_summary_fini(&s1);
	snprintf(text, sizeof text, PIPE_CLE, dir,
		 "transforms:\n  - late_shift\n  - late_shift\n", dir);
	b = run_ok(text, &s1);
	REQUIRE(b);
	CU_ASSERT_EQUAL(s1.recalibrations, 2);
	fb = tm_model_find_tensor(b, "fc1");
	REQUIRE(fb && fb->has_range);
	CU_ASSERT_DOUBLE_EQUAL(fb->lo, fa->lo + 2.0, 1e-5);
	CU_ASSERT_DOUBLE_EQUAL(fb->hi, fa->hi + 2.0, 1e-5);
	CU_ASSERT_PTR_NOT_NULL(strstr(logbuf, "note: late_shift: streamed 8 "
				      "samples\nnote: calibration: "
				      "'late_shift' changed the model after "
				      "calibration: recalibrating\nnote: "
				      "calibration: recalibrated: 3 of 4 "
				      "ranges moved\nnote: late_shift: "
				      "streamed 8 samples\n"));
out:
	tm_run_summary_fini(&s0);
	tm_run_summary_fini(&s1);
	tm_model_free(a);
	tm_model_free(b);
}

/* --- cle in int8 ---------------------------------------------------------- */

/* The SQNR at the output of cle_dense (one channel of fc1 10x the
 * others), per-tensor weights, over 256 held-out samples, through the
 * verify stage (quantize, lower, tmrt_run); -inf on failure. */
static double
cle_sqnr(const char *transforms)
{
	char dir[4096], data[4096], text[8192];
	tm_run_summary sum;
	tm_model *m;
	double r = -INFINITY;

	snprintf(dir, sizeof dir, "%s/data/transforms/cle_dense",
		 tm_test_srcdir());
	dfq_dir("cle", data, sizeof data);
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  dir: %s\n  inputs: {input: [4]}\n  layers:\n"
		 "    - {name: fc1, op: dense, input: input}\n"
		 "    - {name: h1, op: relu, input: fc1}\n"
		 "    - {name: fc2, op: dense, input: h1}\n"
		 "%scalibration:\n  data: %s/calib.npy\n  observer: minmax\n"
		 "quantize:\n  weights: per_tensor\n"
		 "verify:\n  data: %s/holdout.npy\n", dir, transforms, data,
		 data);
	m = run_ok(text, &sum);
	if (m && sum.verify.ran && sum.verify.n_outputs == 1)
		r = sum.verify.outputs[0].sqnr_db;
	tm_run_summary_fini(&sum);
	tm_model_free(m);
	return r;
}

static void
test_cle_sqnr(void)
{
	double without = cle_sqnr("");
	double with = cle_sqnr("transforms:\n  - cle\n");

	if (verbose)
		fprintf(stderr, "\n  cle_dense int8 SQNR: %.2f dB without "
			"cle, %.2f dB with (+%.2f dB)\n", without, with,
			with - without);
	CU_ASSERT(isfinite(without));
	CU_ASSERT(with - without >= 6.0);
}

/* --- main ----------------------------------------------------------------- */

static const tm_test_case absorb_cases[] = {
	{ "exact absorption shrinks the range", test_absorb_exact },
	{ "after cle", test_absorb_after_cle },
	{ "conv2d, and a conv2d that pads", test_absorb_conv },
	{ "no BatchNorm statistics: nothing changes", test_absorb_no_bn },
	{ NULL, NULL }
};

static const tm_test_case correct_cases[] = {
	{ "biased rounding corrected", test_correct },
	{ "convolutions: padding, stride, groups", test_correct_conv },
	{ "layers without biases get one", test_correct_no_bias },
	{ "3-layer MLP, both modes, against numpy", test_correct_mlp },
	{ "a clipped range: empirical beats weights", test_correct_clipped },
	{ "tm_transform_ctx_stream_quantized", test_stream_quantized },
	{ NULL, NULL }
};

static const tm_test_case core_cases[] = {
	{ "order rules at the transform's line", test_order },
	{ "a transform after calibration: recalibration",
	  test_recalibrate },
	{ "cle gains >= 6 dB int8 SQNR", test_cle_sqnr },
	{ NULL, NULL }
};

int
main(void)
{
	char fixture[4096];
	const char *fdir = getenv("TMPIPE_FIXTURE_DIR");
	tm_error err;
	int rc;

	verbose = getenv("TM_TEST_VERBOSE") != NULL;
	tm_error_clear(&err);
	tm_log_set_handler(tm_test_log_capture, NULL);
	reg = tm_registry_new();
	snprintf(fixture, sizeof fixture, "%s/late_shift.so",
		 fdir ? fdir : ".");
	if (!reg || tm_registry_add(reg, fixture, 1, 0, &err) ||
	    tm_registry_scan(reg, NULL, NULL, NULL, &err)) {
		char msg[MSG_MAX];

		fprintf(stderr, "%s\n", tm_error_format(&err, msg, sizeof msg));
		tm_registry_free(reg);
		reg = NULL;
	}
	if (tm_test_add_suite("bias_absorb", absorb_cases) ||
	    tm_test_add_suite("bias_correct", correct_cases) ||
	    tm_test_add_suite("order and recalibration", core_cases))
		return 99;
	rc = tm_test_run();
	tm_registry_free(reg);
	tm_log_set_handler(NULL, NULL);
	return rc;
}
