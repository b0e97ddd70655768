/* tmpipe tests — lowering (core/lower.c), the blob emitter and the verify
 * stage (core/verify.c) on the XOR example of QUANT.md: the int8 logits
 * through the lowered model are the known -128, 127, 127, -126, and the
 * verify numbers are those computed by hand from them. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tmpipe/lower.h>
#include <tmpipe/tmpipe.h>
#include <tmrt/model.h>
#include <tmrt/tmrt.h>

#include "loader_priv.h"
#include "lower_priv.h"
#include "pipeline_priv.h"
#include "quantize_priv.h"
#include "run_priv.h"
#include "verify_priv.h"
#include "runner.h"

static tm_registry *reg;
static char yaml_path[4200], blob_path[4200];

static void
print_err(const tm_error *err)
{
	char buf[2048];

	fprintf(stderr, "\n%s\n", tm_error_format(err, buf, sizeof buf));
}

/* The XOR pipeline with a verify section on its four inputs (and a blob
 * emitter), tolerance given as text ("" for none), in the tmpdir. */
static void
write_pipeline(const char *tolerance)
{
	char ex[4096], text[16384];

	snprintf(ex, sizeof ex, "%s/../examples/xor", tm_test_srcdir());
	snprintf(yaml_path, sizeof yaml_path, "%s/xor_verify.yaml",
		 tm_test_tmpdir());
	snprintf(blob_path, sizeof blob_path, "%s/xor.tmb", tm_test_tmpdir());
	snprintf(text, sizeof text,
		 "tmpipe: 1\n"
		 "model:\n"
		 "  frontend: npy\n"
		 "  dir: %s/weights\n"
		 "  inputs: {input: [2]}\n"
		 "  layers:\n"
		 "    - {name: fc1, op: dense, input: input, weight: "
		 "fc1.weight.npy, bias: fc1.bias.npy}\n"
		 "    - {name: h1, op: relu, input: fc1}\n"
		 "    - {name: fc2, op: dense, input: h1, weight: "
		 "fc2.weight.npy, bias: fc2.bias.npy}\n"
		 "    - {name: out, op: sigmoid, input: fc2}\n"
		 "calibration:\n"
		 "  data: %s/calib.npy\n"
		 "  observer: minmax\n"
		 "verify:\n"
		 "  data: %s/calib.npy\n"
		 "%s%s%s"
		 "emit:\n"
		 "  - blob: {path: xor.tmb}\n",
		 ex, ex, ex, *tolerance ? "  tolerance: " : "", tolerance,
		 *tolerance ? "\n" : "");
	remove(blob_path);
	tm_test_write_file(yaml_path, text);
}

static tm_status
run(tm_run_summary *sum, tm_model **m, tm_error *err)
{
	tm_pipeline *pl = NULL;
	tm_status st;

	tm_error_clear(err);
	st = tm_pipeline_load(yaml_path, reg, NULL, &pl, err);
	if (!st)
		st = tm_pipeline_run(pl, NULL, NULL, sum, m, err);
	else
		memset(sum, 0, sizeof *sum);
	tm_pipeline_free(pl);
	return st;
}

static int
exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

/* The four XOR inputs quantized with the input's (1/255, -128). */
static const int8_t xor_q[4][2] = {
	{ -128, -128 }, { -128, 127 }, { 127, -128 }, { 127, 127 }
};
static const int8_t want_logit[4] = { -128, 127, 127, -126 };
/* sigmoid of the logit's (4/255, -1) real value, on (1/256, -128):
 * lround(256 / (1 + exp(-4/255 (q + 1)))) - 128. */
static const int8_t want_out[4] = { -97, 98, 98, -96 };

static void
test_logits(void)
{
	tm_run_summary sum;
	tm_priv_lowered lw;
	tm_model *m = NULL;
	tm_error err;
	const tmrt_model *rt;
	size_t lo, oo;
	int8_t arena[64], q_logit, q_out, scratch[16][8];

	write_pipeline("");
	if (run(&sum, &m, &err)) {
		print_err(&err);
		CU_FAIL_FATAL("xor pipeline");
	}
	tm_run_summary_fini(&sum);
	/* The lowering the verify stage and the blob use: fc1 with the ReLU
	 * folded, fc2, the sigmoid table. */
	CU_ASSERT_EQUAL_FATAL(tm_priv_lower(m, 0, &lw, &err), TM_OK);
	rt = tm_priv_blob_model(lw.blob);
	CU_ASSERT_EQUAL(rt->n_layers, 3);
	CU_ASSERT_EQUAL(rt->n_tensors, 4);
	CU_ASSERT_EQUAL(rt->layers[0].op, TMRT_OP_FULLY_CONNECTED);
	CU_ASSERT_EQUAL(rt->layers[1].op, TMRT_OP_FULLY_CONNECTED);
	CU_ASSERT_EQUAL(rt->layers[2].op, TMRT_OP_LUT);
	CU_ASSERT_EQUAL(((const tmrt_fc_params *)rt->layers[0].params)->act_min,
			-128);	/* hidden's zero point: ReLU folded */
	/* input 2 + hidden 4 + logit 1 + out 1; the logit dies at the
	 * table, which runs in place: peak input + hidden. */
	CU_ASSERT_EQUAL(lw.arena_sum, 8);
	CU_ASSERT_EQUAL(lw.arena_peak, 6);
	CU_ASSERT_EQUAL(rt->arena_size, 6);
	tm_priv_lowered_fini(&lw);

	/* Every tensor exposed, to read the logits. */
	CU_ASSERT_EQUAL_FATAL(tm_priv_lower(m, TM_PRIV_LOWER_EXPOSE_ALL, &lw,
					    &err), TM_OK);
	rt = tm_priv_blob_model(lw.blob);
	lo = tm_priv_lowered_output(&lw, tm_model_tensor_index(m, "fc2"));
	oo = tm_priv_lowered_output(&lw, tm_model_tensor_index(m, "out"));
	CU_ASSERT_EQUAL_FATAL(oo, 0);
	CU_ASSERT_FATAL(lo != (size_t)-1 && lo < 8);
	CU_ASSERT_EQUAL_FATAL(rt->n_outputs, (int32_t)lw.n_outputs);
	for (int s = 0; s < 4; s++) {
		const int8_t *in[1] = { xor_q[s] };
		int8_t *out[8];

		for (size_t i = 0; i < lw.n_outputs; i++)
			out[i] = scratch[i];
		CU_ASSERT_EQUAL(tmrt_run(rt, in, out, arena, sizeof arena),
				TMRT_OK);
		q_logit = out[lo][0];
		q_out = out[oo][0];
		CU_ASSERT_EQUAL(q_logit, want_logit[s]);
		CU_ASSERT_EQUAL(q_out, want_out[s]);
	}
	tm_priv_lowered_fini(&lw);
	tm_model_free(m);
}

/* The verify report on the four inputs, by hand: float outputs are
 * sigmoid(-2), sigmoid(2), sigmoid(2), sigmoid(-2) (float32, as the
 * interpreter computes them), int8 outputs (q + 128) / 256. */
static void
test_report(void)
{
	static const double logit[4] = { -2.0, 2.0, 2.0, -2.0 };
	double max = 0, sum_e = 0, sum_f2 = 0, sum_e2 = 0;
	tm_run_summary sum;
	tm_error err;
	const tm_verify_output *o;

	for (int s = 0; s < 4; s++) {
		double f = (float)(1.0 / (1.0 + exp(-logit[s])));
		double d = (want_out[s] + 128) / 256.0;
		double e = fabs(d - f);

		max = e > max ? e : max;
		sum_e += e;
		sum_f2 += f * f;
		sum_e2 += e * e;
	}
	/* (32/256 - sigmoid(-2)) on the fourth input. */
	CU_ASSERT_DOUBLE_EQUAL(max, 0.125 - 0.11920292, 1e-7);

	write_pipeline("0.006");
	if (run(&sum, NULL, &err)) {
		print_err(&err);
		CU_FAIL_FATAL("xor pipeline");
	}
	CU_ASSERT(sum.verify.ran);
	CU_ASSERT_EQUAL(sum.verify.samples, 4);
	CU_ASSERT(sum.verify.pass);
	CU_ASSERT(sum.verify.has_tolerance);
	CU_ASSERT_DOUBLE_EQUAL(sum.verify.tolerance, 0.006, 1e-12);
	CU_ASSERT_EQUAL(sum.verify.arena_bytes, 6);
	CU_ASSERT_EQUAL_FATAL(sum.verify.n_outputs, 1);
	o = &sum.verify.outputs[0];
	CHECK_STR(o->name, "out");
	CU_ASSERT_EQUAL(o->values, 1);
	CU_ASSERT_DOUBLE_EQUAL(o->max_abs, max, 1e-7);
	CU_ASSERT_DOUBLE_EQUAL(o->mean_abs, sum_e / 4, 1e-7);
	CU_ASSERT_DOUBLE_EQUAL(o->sqnr_db, 10.0 * log10(sum_f2 / sum_e2),
			       1e-4);
	CU_ASSERT_DOUBLE_EQUAL(o->top1, -1.0, 0);	/* one value */
	CU_ASSERT(o->pass);
	/* Every tensor the runtime holds: fc1 is not one (the ReLU is
	 * folded into it, which writes h1); out's numbers are the
	 * output's. */
	CU_ASSERT_EQUAL_FATAL(sum.verify.n_tensors, 4);
	CHECK_STR(sum.verify.tensors[0].name, "input");
	CHECK_STR(sum.verify.tensors[1].name, "h1");
	CHECK_STR(sum.verify.tensors[2].name, "fc2");
	CHECK_STR(sum.verify.tensors[3].name, "out");
	CU_ASSERT_DOUBLE_EQUAL(sum.verify.tensors[3].max_abs, max, 1e-7);
	CU_ASSERT_DOUBLE_EQUAL(sum.verify.tensors[3].sqnr_db, o->sqnr_db,
			       1e-9);
	/* The inputs 0 and 1 are exact on (1/255, -128). */
	CU_ASSERT(isinf(sum.verify.tensors[0].sqnr_db));
	CU_ASSERT(!sum.verify.has_labels);
	/* verify ran before the emitter, which wrote its blob. */
	CU_ASSERT_EQUAL(sum.files_written, 1);
	CU_ASSERT(exists(blob_path));
	tm_run_summary_fini(&sum);
}

/* The emitted .tmb loads with libtmrt and runs as the lowered model. */
static void
test_blob_file(void)
{
	FILE *fp = fopen(blob_path, "rb");
	long size;
	void *blob = NULL, *ram = NULL;
	size_t ram_size = 0;
	const tmrt_model *rt = NULL;
	int8_t arena[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	rewind(fp);
	blob = malloc((size_t)size);
	CU_ASSERT_FATAL(blob && fread(blob, 1, (size_t)size, fp) ==
					(size_t)size);
	fclose(fp);
	CU_ASSERT_EQUAL(tmrt_blob_ram_size(blob, (size_t)size, &ram_size),
			TMRT_OK);
	ram = malloc(ram_size);
	CU_ASSERT_EQUAL(tmrt_blob_load(blob, (size_t)size, ram, ram_size,
				       &rt), TMRT_OK);
	if (rt) {
		CU_ASSERT_EQUAL(rt->n_outputs, 1);
		for (int s = 0; s < 4; s++) {
			const int8_t *in[1] = { xor_q[s] };
			int8_t y = 0, *out[1] = { &y };

			CU_ASSERT_EQUAL(tmrt_run(rt, in, out, arena,
						 sizeof arena), TMRT_OK);
			CU_ASSERT_EQUAL(y, want_out[s]);
		}
	}
	free(ram);
	free(blob);
}

static void
test_tolerance_fails(void)
{
	tm_run_summary sum;
	tm_error err;
	char want[8192];

	write_pipeline("0.005");
	CU_ASSERT_EQUAL(run(&sum, NULL, &err), TM_ERR_NUMERIC);
	snprintf(want, sizeof want,
		 "%s:16:14: verify: output 'out': max |int8 - float| = "
		 "0.00579708 exceeds the tolerance 0.005", yaml_path);
	CHECK_ERR(&err, want);
	CU_ASSERT(sum.verify.ran);
	CU_ASSERT(!sum.verify.pass);
	CU_ASSERT_EQUAL(sum.verify.n_outputs, 1);
	/* Nothing written. */
	CU_ASSERT_EQUAL(sum.files_written, 0);
	CU_ASSERT(!exists(blob_path));
	tm_run_summary_fini(&sum);
}

/* input [2, 3] -> matmul by [3, 2]: the runtime has no kernel for it,
 * and the error says which layer. */
static void
test_unsupported(void)
{
	static const int64_t in_shape[2] = { 2, 3 };
	static const int64_t w_shape[2] = { 3, 2 };
	static const float w[6] = { 1, 2, 3, 4, 5, 6 };
	const char *const ins[2] = { "x", "w" };
	const char *const outs[1] = { "y" };
	tm_model *m = tm_model_new();
	tm_priv_lowered lw;
	tm_error err;
	void *bytes = (void *)&err;
	size_t size = 1;

	tm_error_clear(&err);
	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_EQUAL_FATAL(tm_model_add_input(m, "x", 2, in_shape, &err) ||
			      tm_model_add_const(m, "w", 2, w_shape, w, &err) ||
			      tm_model_add_node(m, "mm", TM_OP_MATMUL, ins,
						2, outs, 1, NULL, &err) ||
			      tm_model_finalize(m, &err), TM_OK);
	for (size_t i = 0; i < m->n_tensors; i++) {
		m->tensors[i]->q.scheme = TM_QSCHEME_PER_TENSOR;
		m->tensors[i]->q.scale = 1.0 / 64;
	}
	CU_ASSERT_EQUAL(tm_priv_lower(m, 0, &lw, &err), TM_ERR_UNSUPPORTED);
	CHECK_ERR(&err, "layer 'mm': op matmul is not supported by the "
			"integer runtime yet");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_to_blob(m, &bytes, &size, &err),
			TM_ERR_UNSUPPORTED);
	CU_ASSERT_PTR_NULL(bytes);
	CU_ASSERT_EQUAL(size, 0);
	CHECK_ERR(&err, "layer 'mm': op matmul is not supported by the "
			"integer runtime yet");
	tm_model_free(m);
}

/* x[4] -> tanh -> relu (alone: no dense to fold into) -> flatten: three
 * tables' worth of layers (tanh, relu; the flatten a copy, its output
 * quantized like its input), each checked against QUANT.md's formula. */
static void
test_tables(void)
{
	static const int64_t shape[1] = { 4 };
	const char *in_t[1] = { "x" }, *out_t[1] = { "t" };
	const char *in_r[1] = { "t" }, *out_r[1] = { "r" };
	const char *in_f[1] = { "r" }, *out_f[1] = { "f" };
	static const int8_t xs[4] = { -128, -40, 3, 127 };
	tm_model *m = tm_model_new();
	tm_priv_lowered lw;
	const tmrt_model *rt;
	const tm_tensor *x, *t, *r;
	tm_error err;
	int8_t arena[64], y[3][4];
	const int8_t *in[1] = { xs };

	tm_error_clear(&err);
	CU_ASSERT_FATAL(m != NULL);
	CU_ASSERT_EQUAL_FATAL(
		tm_model_add_input(m, "x", 1, shape, &err) ||
		tm_model_add_node(m, "tanh", TM_OP_TANH, in_t, 1, out_t, 1,
				  NULL, &err) ||
		tm_model_add_node(m, "relu", TM_OP_RELU, in_r, 1, out_r, 1,
				  NULL, &err) ||
		tm_model_add_node(m, "flat", TM_OP_FLATTEN, in_f, 1, out_f, 1,
				  NULL, &err) ||
		tm_model_finalize(m, &err), TM_OK);
	x = tm_model_find_tensor(m, "x");
	t = tm_model_find_tensor(m, "t");
	r = tm_model_find_tensor(m, "r");
	for (size_t i = 0; i < m->n_tensors; i++) {
		m->tensors[i]->has_range = 1;
		m->tensors[i]->lo = i == 0 ? -3.0f : 0.0f;
		m->tensors[i]->hi = i == 0 ? 2.0f : 1.0f;
	}
	CU_ASSERT_EQUAL_FATAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL_FATAL(tm_priv_lower(m, TM_PRIV_LOWER_EXPOSE_ALL, &lw,
					    &err), TM_OK);
	rt = tm_priv_blob_model(lw.blob);
	CU_ASSERT_EQUAL_FATAL(rt->n_layers, 3);
	CU_ASSERT_EQUAL(rt->layers[0].op, TMRT_OP_LUT);
	CU_ASSERT_EQUAL(rt->layers[1].op, TMRT_OP_LUT);
	CU_ASSERT_EQUAL(rt->layers[2].op, TMRT_OP_COPY);
	/* outputs: f (the model's), then x, t, r */
	CU_ASSERT_EQUAL_FATAL(lw.n_outputs, 4);
	{
		int8_t yx[4], *outs[4] = { y[2], yx, y[0], y[1] };

		CU_ASSERT_EQUAL(tmrt_run(rt, in, outs, arena, sizeof arena),
				TMRT_OK);
	}
	for (int i = 0; i < 4; i++) {
		double v = x->q.scale * (xs[i] - x->q.zero_point);
		long qt = lround(tanh(v) / t->q.scale) + t->q.zero_point;
		double tv = t->q.scale * ((double)qt - t->q.zero_point);
		long qr = lround((tv > 0 ? tv : 0) / r->q.scale) +
			  r->q.zero_point;

		qt = qt < -128 ? -128 : qt > 127 ? 127 : qt;
		qr = qr < -128 ? -128 : qr > 127 ? 127 : qr;
		CU_ASSERT_EQUAL(y[0][i], qt);
		CU_ASSERT_EQUAL(y[1][i], qr);
		CU_ASSERT_EQUAL(y[2][i], y[1][i]);
	}
	CU_ASSERT_DOUBLE_EQUAL(t->q.scale, 1.0 / 128, 0);
	tm_priv_lowered_fini(&lw);
	tm_model_free(m);
}

/* Pipeline errors of the verify section. */
static void
test_bad_section(void)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{ "verify: {data: a.npy, tolerance: -1}\n",
		  ":3:34: verify.tolerance: '-1' is negative (a maximum "
		  "absolute error is >= 0)" },
		{ "verify: {data: a.npy, tolerance: x}\n",
		  ":3:34: verify.tolerance: 'x' is not a number" },
		{ "verify: {tolerance: 1}\n",
		  ":3:9: verify: missing 'data:' (a .npy of N held-out "
		  "samples)" },
		{ "verify: {data: a.npy, tolerence: 1}\n",
		  ":3:23: unknown key 'tolerence' in verify; did you mean "
		  "'tolerance'? (valid: data, tolerance, batch, labels, "
		  "max_accuracy_drop, reference)" },
		{ "verify: {data: a.npy, reference: int8}\n",
		  ":3:34: verify.reference: expected float or quantized, got "
		  "'int8'" },
		{ "verify: {data: a.npy, reference: [float]}\n",
		  ":3:34: verify.reference: expected float or quantized, got "
		  "a list" },
	};
	char path[4200], text[1024], want[8192];

	snprintf(path, sizeof path, "%s/bad_verify.yaml", tm_test_tmpdir());
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tm_pipeline *pl = NULL;
		tm_error err;

		snprintf(text, sizeof text,
			 "tmpipe: 1\nmodel: {frontend: npy, dir: ., inputs: "
			 "{x: [2]}, layers: []}\n%s"
			 "calibration: {data: c.npy}\n", cases[i].yaml);
		tm_test_write_file(path, text);
		tm_error_clear(&err);
		CU_ASSERT_NOT_EQUAL(tm_pipeline_load(path, reg, NULL, &pl,
						     &err), TM_OK);
		snprintf(want, sizeof want, "%s%s", path, cases[i].want);
		CHECK_ERR(&err, want);
		tm_pipeline_free(pl);
	}
}

/* A .npy of n rows of k values (float32 '<f4', or int64 '<i8' when
 * ints), for fixtures made on the fly. */
static void
write_npy(const char *path, size_t n, size_t k, const double *v, int ints)
{
	char hdr[128];
	int len;
	FILE *fp = fopen(path, "wb");

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	if (k)
		len = snprintf(hdr, sizeof hdr, "{'descr': '%s', "
			       "'fortran_order': False, 'shape': (%zu, %zu), }",
			       ints ? "<i8" : "<f4", n, k);
	else
		len = snprintf(hdr, sizeof hdr, "{'descr': '%s', "
			       "'fortran_order': False, 'shape': (%zu,), }",
			       ints ? "<i8" : "<f4", n);
	/* magic (6) + version (2) + length (2) + header, padded to 64
	 * with spaces and ended by '\n' */
	while ((10 + len + 1) % 64)
		hdr[len++] = ' ';
	hdr[len++] = '\n';
	fwrite("\x93NUMPY\x01\x00", 1, 8, fp);
	fputc(len & 0xff, fp);
	fputc(len >> 8, fp);
	fwrite(hdr, 1, (size_t)len, fp);
	for (size_t i = 0; i < n * (k ? k : 1); i++) {
		if (ints) {
			int64_t x = (int64_t)v[i];

			fwrite(&x, sizeof x, 1, fp);	/* little-endian host */
		} else {
			float x = (float)v[i];

			fwrite(&x, sizeof x, 1, fp);
		}
	}
	fclose(fp);
}

/* A hand-made classifier: input [3] -> dense with the identity weights
 * and no bias -> fc [3]. Calibrated on +-1 everywhere, input and fc both
 * get scale 2/255 and zero point -1 (QUANT.md: lround(-128 + 127.5)),
 * weights 127 at scale 1/127, requantizer 1/127: the int8 output is the
 * int8 input. 0.5 and 0.501 both quantize to 64 - 1 = 63 (63.75 and
 * 63.88 steps): a tie the int8 argmax breaks to the first class.
 *
 *   sample            label  float  int8   F  Q  agree
 *   0.9   0.1   0     0      0      0      y  y  y
 *   0.5   0.501 0     1      1      0      y  n  n
 *   0.2   0.7   0.1   2      1      1      n  n  y
 *   0     0.3   0.8   2      2      2      y  y  y
 *   0.5   0.501 0     2      1      0      n  n  n
 *   0.1   0     0.6   1      2      2      n  n  y
 *
 * float 3/6 = 50%, int8 2/6 = 33.33%, agreement 4/6 = 66.67%, drop
 * 100/6 = 16.67 points. */
static const double cls_x[6][3] = {
	{ 0.9, 0.1, 0 }, { 0.5, 0.501, 0 }, { 0.2, 0.7, 0.1 },
	{ 0, 0.3, 0.8 }, { 0.5, 0.501, 0 }, { 0.1, 0, 0.6 },
};
static const double cls_y[6] = { 0, 1, 2, 2, 2, 1 };

static void
write_classifier(const char *labels, const char *drop)
{
	static const double eye[9] = { 1, 0, 0, 0, 1, 0, 0, 0, 1 };
	static const double zero[3] = { 0, 0, 0 };
	static const double calib[2][3] = { { 1, 1, 1 }, { -1, -1, -1 } };
	const char *d = tm_test_tmpdir();
	char path[4200], text[8192];

	snprintf(path, sizeof path, "%s/cls_w.npy", d);
	write_npy(path, 3, 3, eye, 0);
	snprintf(path, sizeof path, "%s/cls_b.npy", d);
	write_npy(path, 3, 0, zero, 0);
	snprintf(path, sizeof path, "%s/cls_calib.npy", d);
	write_npy(path, 2, 3, &calib[0][0], 0);
	snprintf(path, sizeof path, "%s/cls_x.npy", d);
	write_npy(path, 6, 3, &cls_x[0][0], 0);
	snprintf(path, sizeof path, "%s/cls_y.npy", d);
	write_npy(path, 6, 0, cls_y, 1);
	snprintf(yaml_path, sizeof yaml_path, "%s/cls.yaml", d);
	snprintf(text, sizeof text,
		 "tmpipe: 1\n"
		 "model:\n"
		 "  frontend: npy\n"
		 "  inputs: {input: [3]}\n"
		 "  layers:\n"
		 "    - {name: fc, op: dense, input: input, weight: cls_w.npy, "
		 "bias: cls_b.npy}\n"
		 "calibration: {data: cls_calib.npy}\n"
		 "verify:\n"
		 "  data: cls_x.npy\n"
		 "%s%s%s%s%s%s",
		 *labels ? "  labels: " : "", labels, *labels ? "\n" : "",
		 *drop ? "  max_accuracy_drop: " : "", drop,
		 *drop ? "\n" : "");
	tm_test_write_file(yaml_path, text);
}

static void
test_accuracy(void)
{
	tm_run_summary sum;
	tm_model *m = NULL;
	tm_error err;
	const tm_verify_report *v = &sum.verify;
	const tm_tensor *in;

	write_classifier("cls_y.npy", "16.7");
	if (run(&sum, &m, &err)) {
		print_err(&err);
		CU_FAIL_FATAL("classifier pipeline");
	}
	/* The parameters the table above assumes. */
	in = tm_model_find_tensor(m, "input");
	CU_ASSERT_DOUBLE_EQUAL(in->q.scale, 2.0 / 255, 1e-12);
	CU_ASSERT_EQUAL(in->q.zero_point, -1);
	CU_ASSERT_EQUAL(v->samples, 6);
	CU_ASSERT_FATAL(v->has_labels);
	CHECK_STR(v->labeled_output, "fc");
	CU_ASSERT_EQUAL(v->classes, 3);
	CU_ASSERT_EQUAL(v->float_correct, 3);
	CU_ASSERT_EQUAL(v->int8_correct, 2);
	CU_ASSERT_EQUAL(v->agree, 4);
	CU_ASSERT_DOUBLE_EQUAL(v->float_accuracy, 0.5, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(v->int8_accuracy, 2.0 / 6, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(v->agreement, 4.0 / 6, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(v->accuracy_drop, 100.0 / 6, 1e-12);
	CU_ASSERT(v->has_max_drop);
	CU_ASSERT(v->accuracy_pass);
	CU_ASSERT(v->pass);
	/* The output's own top-1 agreement is the same count. */
	CU_ASSERT_DOUBLE_EQUAL(v->outputs[0].top1, 4.0 / 6, 1e-12);
	tm_run_summary_fini(&sum);
	tm_model_free(m);

	/* Without max_accuracy_drop: reported, never failing. */
	write_classifier("cls_y.npy", "");
	CU_ASSERT_EQUAL_FATAL(run(&sum, NULL, &err), TM_OK);
	CU_ASSERT(v->has_labels && !v->has_max_drop && v->accuracy_pass);
	CU_ASSERT_EQUAL(v->int8_correct, 2);
	tm_run_summary_fini(&sum);

	/* Without labels: nothing about accuracy. */
	write_classifier("", "");
	CU_ASSERT_EQUAL_FATAL(run(&sum, NULL, &err), TM_OK);
	CU_ASSERT(!v->has_labels);
	tm_run_summary_fini(&sum);
}

static void
test_accuracy_drop_fails(void)
{
	tm_run_summary sum;
	tm_error err;
	char want[8192];

	write_classifier("cls_y.npy", "16.6");
	CU_ASSERT_EQUAL(run(&sum, NULL, &err), TM_ERR_NUMERIC);
	snprintf(want, sizeof want,
		 "%s:11:22: verify: int8 top-1 accuracy 33.33%% is 16.67 "
		 "points below float's 50.00%% (2 against 3 of 6), more "
		 "than max_accuracy_drop 16.6", yaml_path);
	CHECK_ERR(&err, want);
	CU_ASSERT(sum.verify.has_labels);
	CU_ASSERT(!sum.verify.accuracy_pass);
	CU_ASSERT(!sum.verify.pass);
	tm_run_summary_fini(&sum);
}

/* Labels that do not fit the data or the output. */
static void
test_bad_labels(void)
{
	static const double short_y[5] = { 0, 1, 2, 2, 2 };
	static const double frac_y[6] = { 0, 1, 2, 2.5, 2, 1 };
	static const double big_y[6] = { 0, 1, 2, 3, 2, 1 };
	static const double rows_y[12] = { 0 };
	const char *d = tm_test_tmpdir();
	char path[4200], want[8192];
	tm_run_summary sum;
	tm_error err;

	snprintf(path, sizeof path, "%s/short_y.npy", d);
	write_npy(path, 5, 0, short_y, 1);
	write_classifier("short_y.npy", "");
	CU_ASSERT_EQUAL(run(&sum, NULL, &err), TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s:10:11: verify.labels: '%s' must hold one label per "
		 "sample ([6] or [6, 1]), it holds 5 values", yaml_path,
		 path);
	CHECK_ERR(&err, want);
	tm_run_summary_fini(&sum);

	snprintf(path, sizeof path, "%s/rows_y.npy", d);
	write_npy(path, 6, 2, rows_y, 1);
	write_classifier("rows_y.npy", "");
	CU_ASSERT_EQUAL(run(&sum, NULL, &err), TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s:10:11: verify.labels: '%s' must hold one label per "
		 "sample ([6] or [6, 1]), it holds 12 values in rows of "
		 "more than one", yaml_path, path);
	CHECK_ERR(&err, want);
	tm_run_summary_fini(&sum);

	snprintf(path, sizeof path, "%s/frac_y.npy", d);
	write_npy(path, 6, 0, frac_y, 0);
	write_classifier("frac_y.npy", "");
	CU_ASSERT_EQUAL(run(&sum, NULL, &err), TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s:10:11: verify.labels: label 2.5 of sample 3 in '%s' is "
		 "not a class of output 'fc' (an integer from 0 to 2)",
		 yaml_path, path);
	CHECK_ERR(&err, want);
	tm_run_summary_fini(&sum);

	snprintf(path, sizeof path, "%s/big_y.npy", d);
	write_npy(path, 6, 0, big_y, 1);
	write_classifier("big_y.npy", "");
	CU_ASSERT_EQUAL(run(&sum, NULL, &err), TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s:10:11: verify.labels: label 3 of sample 3 in '%s' is "
		 "not a class of output 'fc' (an integer from 0 to 2)",
		 yaml_path, path);
	CHECK_ERR(&err, want);
	tm_run_summary_fini(&sum);

	/* A file that is not there: the npy reader's message, at the key. */
	write_classifier("none.npy", "");
	CU_ASSERT_NOT_EQUAL(run(&sum, NULL, &err), TM_OK);
	snprintf(want, sizeof want, "%s:10:11: verify.labels: ", yaml_path);
	{
		char buf[8192];

		tm_error_format(&err, buf, sizeof buf);
		CU_ASSERT(strncmp(buf, want, strlen(want)) == 0);
		CU_ASSERT(strstr(buf, "none.npy") != NULL);
	}
	tm_run_summary_fini(&sum);

	/* The XOR net has one output value: no class to take. */
	write_pipeline("");
	{
		char text[16384];
		FILE *fp = fopen(yaml_path, "r");
		size_t n = fp ? fread(text, 1, sizeof text - 64, fp) : 0;

		if (fp)
			fclose(fp);
		text[n] = 0;
		/* verify: is followed by its data line, then emit: */
		snprintf(strstr(text, "emit:"), 64, "  labels: x.npy\n");
		tm_test_write_file(yaml_path, text);
	}
	CU_ASSERT_EQUAL(run(&sum, NULL, &err), TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s:16:11: verify.labels: no model output has more than one "
		 "value to take a class from", yaml_path);
	CHECK_ERR(&err, want);
	tm_run_summary_fini(&sum);
}

/* tm_priv_sqnr_db on a known noise pattern: signal (3, 4, -3, -4),
 * noise (0.3, -0.4, 0.3, -0.4) is sum 50 over sum 0.5: 20 dB; a noise
 * ten times smaller, 40 dB; no noise, +inf; noise on silence, -inf. */
static void
test_sqnr(void)
{
	static const double f[4] = { 3, 4, -3, -4 };
	static const double e[4] = { 0.3, -0.4, 0.3, -0.4 };
	double f2 = 0, e2 = 0;

	for (int i = 0; i < 4; i++) {
		f2 += f[i] * f[i];
		e2 += e[i] * e[i];
	}
	CU_ASSERT_DOUBLE_EQUAL(tm_priv_sqnr_db(f2, e2), 20.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(tm_priv_sqnr_db(f2, e2 / 100), 40.0, 1e-12);
	CU_ASSERT(isinf(tm_priv_sqnr_db(f2, 0)) && tm_priv_sqnr_db(f2, 0) > 0);
	CU_ASSERT(isinf(tm_priv_sqnr_db(0, e2)) && tm_priv_sqnr_db(0, e2) < 0);
}

/* Every tensor of the classifier: the input's error is its rounding
 * error alone, computed here from the samples with QUANT.md's formula
 * (scale 2/255, zero point -1); fc's int8 values equal the input's and
 * so do its float values, so both tensors get the same numbers. */
static void
test_tensors(void)
{
	const double s = 2.0 / 255;
	double f2 = 0, e2 = 0, max = 0;
	tm_run_summary sum;
	tm_error err;
	const tm_verify_report *v = &sum.verify;

	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 3; j++) {
			double x = (float)cls_x[i][j];
			long q = lround(x / s) - 1;
			double e = fabs(s * (double)(q + 1) - x);

			f2 += x * x;
			e2 += e * e;
			max = e > max ? e : max;
		}
	write_classifier("", "");
	if (run(&sum, NULL, &err)) {
		print_err(&err);
		CU_FAIL_FATAL("classifier pipeline");
	}
	CU_ASSERT_EQUAL_FATAL(v->n_tensors, 2);
	CHECK_STR(v->tensors[0].name, "input");
	CHECK_STR(v->tensors[1].name, "fc");
	for (int k = 0; k < 2; k++) {
		CU_ASSERT_EQUAL(v->tensors[k].ndim, 1);
		CU_ASSERT_EQUAL(v->tensors[k].shape[0], 3);
		CU_ASSERT_DOUBLE_EQUAL(v->tensors[k].scale, s, 1e-12);
		CU_ASSERT_EQUAL(v->tensors[k].zero_point, -1);
		CU_ASSERT_DOUBLE_EQUAL(v->tensors[k].max_abs, max, 1e-9);
		CU_ASSERT_DOUBLE_EQUAL(v->tensors[k].sqnr_db,
				       10 * log10(f2 / e2), 1e-6);
	}
	/* 0.2 and 0.6 are 25.5 and 76.5 steps (a hair above as float32):
	 * half a step off, the worst rounding can do. */
	CU_ASSERT_DOUBLE_EQUAL(max / s, 0.5, 1e-5);
	CU_ASSERT_DOUBLE_EQUAL(v->outputs[0].sqnr_db, v->tensors[1].sqnr_db,
			       1e-9);
	tm_run_summary_fini(&sum);
}


/* --- verify.reference: quantized -------------------------------------- */

static uint32_t lcg;

/* Uniform in [-1, 1), 24 bits, from a fixed LCG (Numerical Recipes'
 * constants): the same fixtures on every host. */
static double
urand(void)
{
	lcg = lcg * 1664525u + 1013904223u;
	return (double)(lcg >> 8) / 8388608.0 - 1.0;
}

/* A float32 .npy of shape dims (ndim <= 4) in the tmpdir, amp urand(). */
static void
write_rand(const char *name, int ndim, const size_t *dims, double amp)
{
	char path[4200], hdr[160], shape[80];
	size_t n = 1, len = 0;
	int hl;
	FILE *fp;

	for (int d = 0; d < ndim; d++) {
		n *= dims[d];
		len += (size_t)snprintf(shape + len, sizeof shape - len,
					"%zu,%s", dims[d],
					d + 1 < ndim ? " " : "");
	}
	snprintf(path, sizeof path, "%s/%s", tm_test_tmpdir(), name);
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': "
		      "False, 'shape': (%s), }", shape);
	while ((10 + hl + 1) % 64)
		hdr[hl++] = ' ';
	hdr[hl++] = '\n';
	fwrite("\x93NUMPY\x01\x00", 1, 8, fp);
	fputc(hl & 0xff, fp);
	fputc(hl >> 8, fp);
	fwrite(hdr, 1, (size_t)hl, fp);
	for (size_t i = 0; i < n; i++) {
		float x = (float)(amp * urand());

		fwrite(&x, sizeof x, 1, fp);
	}
	fclose(fp);
}

/* Runs the pipeline "tmpipe: 1\n" body, with "  reference: ref\n" in
 * place of the "@REF@\n" line of its verify section, from the tmpdir;
 * the model in *m when m is not NULL. */
static void
run_ref(const char *body, const char *ref, tm_run_summary *sum, tm_model **m)
{
	char text[8192], line[64];
	const char *at = strstr(body, "@REF@\n");
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	snprintf(line, sizeof line, "  reference: %s\n", ref);
	snprintf(yaml_path, sizeof yaml_path, "%s/ref.yaml",
		 tm_test_tmpdir());
	snprintf(text, sizeof text, "tmpipe: 1\n%.*s%s%s",
		 (int)(at - body), body, line, at + 6);
	tm_test_write_file(yaml_path, text);
	if (run(sum, m, &err)) {
		print_err(&err);
		CU_FAIL_FATAL("reference pipeline");
	}
}

/* Checks the quantized reference of a pipeline against its float one:
 * int8 within one step of its own arithmetic emulated in float at the
 * output and at every tensor (the input exactly), and at least ratio
 * times closer than to the float model. Prints the numbers. */
static void
check_both(const char *what, const char *body, double ratio)
{
	tm_run_summary f, q;
	const tm_verify_output *fo, *qo;
	double step;

	run_ref(body, "float", &f, NULL);
	run_ref(body, "quantized", &q, NULL);
	CU_ASSERT_EQUAL(f.verify.reference, TM_VERIFY_REF_FLOAT);
	CU_ASSERT_EQUAL(q.verify.reference, TM_VERIFY_REF_QUANTIZED);
	CU_ASSERT_EQUAL_FATAL(q.verify.n_outputs, 1);
	CU_ASSERT_EQUAL_FATAL(f.verify.n_outputs, 1);
	CU_ASSERT_FATAL(q.verify.n_tensors >= 2);
	CU_ASSERT_EQUAL_FATAL(q.verify.n_tensors, f.verify.n_tensors);
	fo = &f.verify.outputs[0];
	qo = &q.verify.outputs[0];
	step = q.verify.tensors[q.verify.n_tensors - 1].scale;
	CHECK_STR(q.verify.tensors[q.verify.n_tensors - 1].name, qo->name);
	fprintf(stderr, "\n  %s: step %.6g; quantized reference max %.6g "
		"(%.2f steps) mean %.3g; float max %.6g (%.2f steps) mean "
		"%.3g\n", what, step, qo->max_abs, qo->max_abs / step,
		qo->mean_abs, fo->max_abs, fo->max_abs / step, fo->mean_abs);
	CU_ASSERT(qo->max_abs <= step * (1.0 + 1e-6));
	CU_ASSERT(fo->max_abs >= ratio * qo->max_abs);
	CU_ASSERT(fo->mean_abs >= 10.0 * qo->mean_abs);
	/* The input goes into both as the same int8 values (up to the
	 * float32 rounding of the reference's). */
	CU_ASSERT_DOUBLE_EQUAL(q.verify.tensors[0].max_abs, 0.0,
			       1e-4 * q.verify.tensors[0].scale);
	CU_ASSERT(f.verify.tensors[0].max_abs > 0.0);
	for (size_t k = 0; k < q.verify.n_tensors; k++) {
		const tm_verify_tensor *t = &q.verify.tensors[k];

		CU_ASSERT(t->max_abs <= t->scale * (1.0 + 1e-6));
		CU_ASSERT(t->max_abs <= f.verify.tensors[k].max_abs);
	}
	tm_run_summary_fini(&f);
	tm_run_summary_fini(&q);
}

/* An MLP 6 -> 10 -> relu -> 8 -> relu -> 4, random weights, calibrated
 * and verified on 64 different random samples each. */
static void
test_reference_mlp(void)
{
	static const size_t d_in[2] = { 64, 6 }, w1[2] = { 10, 6 },
			    b1[1] = { 10 }, w2[2] = { 8, 10 }, b2[1] = { 8 },
			    w3[2] = { 4, 8 }, b3[1] = { 4 };

	lcg = 12345;
	write_rand("mlp_calib.npy", 2, d_in, 1.0);
	write_rand("mlp_x.npy", 2, d_in, 1.0);
	write_rand("mlp_w1.npy", 2, w1, 0.8);
	write_rand("mlp_b1.npy", 1, b1, 0.2);
	write_rand("mlp_w2.npy", 2, w2, 0.6);
	write_rand("mlp_b2.npy", 1, b2, 0.2);
	write_rand("mlp_w3.npy", 2, w3, 0.7);
	write_rand("mlp_b3.npy", 1, b3, 0.2);
	check_both("MLP", "model:\n"
		   "  frontend: npy\n"
		   "  inputs: {x: [6]}\n"
		   "  layers:\n"
		   "    - {name: fc1, op: dense, input: x, weight: "
		   "mlp_w1.npy, bias: mlp_b1.npy}\n"
		   "    - {name: h1, op: relu, input: fc1}\n"
		   "    - {name: fc2, op: dense, input: h1, weight: "
		   "mlp_w2.npy, bias: mlp_b2.npy}\n"
		   "    - {name: h2, op: relu, input: fc2}\n"
		   "    - {name: fc3, op: dense, input: h2, weight: "
		   "mlp_w3.npy, bias: mlp_b3.npy}\n"
		   "calibration: {data: mlp_calib.npy}\n"
		   "verify:\n"
		   "  data: mlp_x.npy\n"
		   "@REF@\n", 3.0);
}

/* A conv net: conv 2 -> 3 channels 3x3 padding 1 (weights per output
 * channel), an unfolded batchnorm with its ReLU folded, a 2x2 max pool,
 * flatten, dense 27 -> 4. */
static void
test_reference_conv(void)
{
	static const size_t d_in[4] = { 32, 2, 6, 6 }, w[4] = { 3, 2, 3, 3 },
			    c3[1] = { 3 }, wf[2] = { 4, 27 }, bf[1] = { 4 };
	char path[4200];
	static const double var[3] = { 0.5, 1.5, 2.0 };

	lcg = 777;
	write_rand("cnn_calib.npy", 4, d_in, 1.0);
	write_rand("cnn_x.npy", 4, d_in, 1.0);
	write_rand("cnn_w.npy", 4, w, 0.5);
	write_rand("cnn_b.npy", 1, c3, 0.1);
	write_rand("cnn_g.npy", 1, c3, 1.0);
	write_rand("cnn_be.npy", 1, c3, 0.3);
	write_rand("cnn_mu.npy", 1, c3, 0.3);
	snprintf(path, sizeof path, "%s/cnn_var.npy", tm_test_tmpdir());
	write_npy(path, 3, 0, var, 0);
	write_rand("cnn_wf.npy", 2, wf, 0.4);
	write_rand("cnn_bf.npy", 1, bf, 0.1);
	check_both("conv", "model:\n"
		   "  frontend: npy\n"
		   "  inputs: {x: [2, 6, 6]}\n"
		   "  layers:\n"
		   "    - {name: c, op: conv2d, input: x, weight: cnn_w.npy, "
		   "bias: cnn_b.npy, padding: [1]}\n"
		   "    - {name: bn, op: batchnorm, input: c, weight: "
		   "cnn_g.npy, bias: cnn_be.npy, running_mean: cnn_mu.npy, "
		   "running_var: cnn_var.npy}\n"
		   "    - {name: r, op: relu, input: bn}\n"
		   "    - {name: p, op: maxpool2d, input: r, kernel: [2]}\n"
		   "    - {name: f, op: flatten, input: p}\n"
		   "    - {name: fc, op: dense, input: f, weight: cnn_wf.npy, "
		   "bias: cnn_bf.npy}\n"
		   "calibration: {data: cnn_calib.npy}\n"
		   "quantize: {weights: per_channel}\n"
		   "verify:\n"
		   "  data: cnn_x.npy\n"
		   "@REF@\n", 1.5);
}

/* bias_correct (mode weights) shifts the int32 bias of a dense whose
 * per-tensor weights all round down (0.3/127 each, to 0; 1 stays 127)
 * on inputs of mean 1 by about 7 x 0.3/127 = 0.017, over two steps of
 * the output: the quantized reference must add that corrected bias (its
 * int32 value), not the float one, to stay within a step of int8. */
static void
test_reference_bias_correct(void)
{
	static const double w[8] = { 1.0,	  0.3 / 127, 0.3 / 127,
				     0.3 / 127, 0.3 / 127, 0.3 / 127,
				     0.3 / 127, 0.3 / 127 };
	static const double b[1] = { 0.0 };
	double x[64 * 8], corr;
	char path[4200];
	tm_run_summary q;
	tm_model *m = NULL;
	const tm_tensor *tb, *ty;
	const tm_verify_output *o;

	lcg = 99;
	for (size_t i = 0; i < 64 * 8; i++)
		x[i] = 1.0 + 0.5 * urand();
	snprintf(path, sizeof path, "%s/bc_calib.npy", tm_test_tmpdir());
	write_npy(path, 64, 8, x, 0);
	for (size_t i = 0; i < 64 * 8; i++)
		x[i] = 1.0 + 0.5 * urand();
	snprintf(path, sizeof path, "%s/bc_x.npy", tm_test_tmpdir());
	write_npy(path, 64, 8, x, 0);
	snprintf(path, sizeof path, "%s/bc_w.npy", tm_test_tmpdir());
	write_npy(path, 1, 8, w, 0);
	snprintf(path, sizeof path, "%s/bc_b.npy", tm_test_tmpdir());
	write_npy(path, 1, 0, b, 0);
	run_ref("model:\n"
		"  frontend: npy\n"
		"  inputs: {x: [8]}\n"
		"  layers:\n"
		"    - {name: fc, op: dense, input: x, weight: bc_w.npy, "
		"bias: bc_b.npy}\n"
		"transforms:\n"
		"  - bias_correct: {mode: weights}\n"
		"calibration: {data: bc_calib.npy}\n"
		"verify:\n"
		"  data: bc_x.npy\n"
		"@REF@\n", "quantized", &q, &m);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_nodes, 1);
	tb = m->tensors[m->nodes[0]->inputs[2]];
	ty = m->tensors[m->nodes[0]->outputs[0]];
	CU_ASSERT_PTR_NOT_NULL_FATAL(tb->q32);
	/* The float bias is the trained 0 again; the int32 one is not. */
	CU_ASSERT_DOUBLE_EQUAL(tb->data[0], 0.0, 0.0);
	corr = tb->q32[0] * tb->q.scale;
	CU_ASSERT(corr < -2.0 * ty->q.scale || corr > 2.0 * ty->q.scale);
	CU_ASSERT_EQUAL_FATAL(q.verify.n_outputs, 1);
	o = &q.verify.outputs[0];
	fprintf(stderr, "\n  bias_correct: correction %.6g (%.2f steps); "
		"int8 - quantized reference max %.6g (%.2f steps)\n", corr,
		corr / ty->q.scale, o->max_abs, o->max_abs / ty->q.scale);
	CU_ASSERT(o->max_abs <= ty->q.scale * (1.0 + 1e-6));
	tm_run_summary_fini(&q);
	tm_model_free(m);
}

/* The classifier of test_accuracy against the quantized reference: the
 * identity layer emulated in float gives the int8 output exactly (127
 * at 1/127 is 1, input and output share (2/255, -1)), so the reference
 * gets the 0.5 / 0.501 tie wrong as int8 does: both 2 of 6, agreement
 * 6 of 6, no drop, no error. */
static void
test_reference_accuracy(void)
{
	tm_run_summary sum;
	tm_error err;
	const tm_verify_report *v = &sum.verify;
	FILE *fp;

	write_classifier("cls_y.npy", "0");
	fp = fopen(yaml_path, "a");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs("  reference: quantized\n", fp);
	fclose(fp);
	if (run(&sum, NULL, &err)) {
		print_err(&err);
		CU_FAIL_FATAL("classifier pipeline");
	}
	CU_ASSERT_EQUAL(v->reference, TM_VERIFY_REF_QUANTIZED);
	CU_ASSERT_FATAL(v->has_labels && v->n_outputs == 1);
	CU_ASSERT_EQUAL(v->float_correct, 2);
	CU_ASSERT_EQUAL(v->int8_correct, 2);
	CU_ASSERT_EQUAL(v->agree, 6);
	CU_ASSERT_DOUBLE_EQUAL(v->accuracy_drop, 0.0, 0.0);
	CU_ASSERT(v->accuracy_pass);
	CU_ASSERT_DOUBLE_EQUAL(v->outputs[0].max_abs, 0.0, 1e-6);
	tm_run_summary_fini(&sum);
}

static int8_t
fq8(double x, double s, int32_t zp)
{
	long q = lround(x / s) + zp;

	return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}

/* One dense layer 3 -> 2, by hand: the (scale, zero point) of QUANT.md
 * from the calibration samples, the weights and bias quantized, the
 * fake-quantized reference in double, the int8 outputs from libtmrt;
 * the max and mean |int8 - reference| must be what verify reports with
 * reference: quantized, and |int8 - float| what it reports with float. */
static void
test_reference_by_hand(void)
{
	enum { NC = 16, NV = 400, IN = 3, OUT = 2 };
	static const size_t d_c[2] = { NC, IN }, d_v[2] = { NV, IN },
			    d_w[2] = { OUT, IN }, d_b[1] = { OUT };
	float xc[NC][IN], xv[NV][IN], w[OUT][IN], b[OUT];
	double lo_i = 0, hi_i = 0, lo_o = 0, hi_o = 0, s_i, s_o, s_w = 0;
	double qmax = 0, qsum = 0, fmax = 0, fsum = 0;
	int ties = 0;
	int32_t zp_i, zp_o, qw[OUT][IN], qb[OUT];
	tm_run_summary f, q;
	tm_priv_lowered lw;
	tm_model *m = NULL;
	tm_error err;
	const tmrt_model *rt;
	const tm_tensor *tx, *ty, *tw, *tb;
	int8_t arena[64];
	FILE *fp;
	char path[4200];

	/* The same values write_rand writes, read back as float32. */
	lcg = 4242;
	write_rand("one_calib.npy", 2, d_c, 1.0);
	write_rand("one_x.npy", 2, d_v, 1.2);
	write_rand("one_w.npy", 2, d_w, 0.9);
	write_rand("one_b.npy", 1, d_b, 0.3);
	lcg = 4242;
	for (int i = 0; i < NC; i++)
		for (int j = 0; j < IN; j++)
			xc[i][j] = (float)urand();
	for (int i = 0; i < NV; i++)
		for (int j = 0; j < IN; j++)
			xv[i][j] = (float)(1.2 * urand());
	for (int o = 0; o < OUT; o++)
		for (int j = 0; j < IN; j++)
			w[o][j] = (float)(0.9 * urand());
	for (int o = 0; o < OUT; o++)
		b[o] = (float)(0.3 * urand());
	snprintf(path, sizeof path, "%s/one_b.npy", tm_test_tmpdir());
	fp = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	{
		float got[OUT];

		fseek(fp, -(long)sizeof got, SEEK_END);
		CU_ASSERT_EQUAL(fread(got, sizeof got, 1, fp), 1);
		CU_ASSERT(memcmp(got, b, sizeof got) == 0);
	}
	fclose(fp);

	/* QUANT.md: minmax ranges widened to 0, scale (hi - lo) / 255, zp
	 * lround(-128 - lo / scale); weights max|w| / 127; bias at s_i
	 * s_w. The output's range is the float model's on the calibration
	 * samples. */
	for (int i = 0; i < NC; i++)
		for (int o = 0; o < OUT; o++) {
			double y = b[o];

			for (int j = 0; j < IN; j++) {
				lo_i = xc[i][j] < lo_i ? xc[i][j] : lo_i;
				hi_i = xc[i][j] > hi_i ? xc[i][j] : hi_i;
				y += (double)w[o][j] * xc[i][j];
			}
			lo_o = y < lo_o ? y : lo_o;
			hi_o = y > hi_o ? y : hi_o;
		}
	s_i = (hi_i - lo_i) / 255;
	zp_i = (int32_t)lround(-128 - lo_i / s_i);
	s_o = (hi_o - lo_o) / 255;
	zp_o = (int32_t)lround(-128 - lo_o / s_o);
	for (int o = 0; o < OUT; o++)
		for (int j = 0; j < IN; j++)
			s_w = fabs(w[o][j]) > s_w ? fabs(w[o][j]) : s_w;
	s_w /= 127;
	for (int o = 0; o < OUT; o++) {
		for (int j = 0; j < IN; j++)
			qw[o][j] = (int32_t)lround(w[o][j] / s_w);
		qb[o] = (int32_t)lround(b[o] / (s_i * s_w));
	}

	run_ref("model:\n"
		"  frontend: npy\n"
		"  inputs: {x: [3]}\n"
		"  layers:\n"
		"    - {name: fc, op: dense, input: x, weight: one_w.npy, "
		"bias: one_b.npy}\n"
		"calibration: {data: one_calib.npy}\n"
		"verify:\n"
		"  data: one_x.npy\n"
		"@REF@\n", "float", &f, NULL);
	run_ref("model:\n"
		"  frontend: npy\n"
		"  inputs: {x: [3]}\n"
		"  layers:\n"
		"    - {name: fc, op: dense, input: x, weight: one_w.npy, "
		"bias: one_b.npy}\n"
		"calibration: {data: one_calib.npy}\n"
		"verify:\n"
		"  data: one_x.npy\n"
		"@REF@\n", "quantized", &q, &m);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	/* The model's parameters are ours. */
	CU_ASSERT_FATAL(tm_model_tensor_index(m, "x") < m->n_tensors &&
			tm_model_tensor_index(m, "fc") < m->n_tensors);
	tx = m->tensors[tm_model_tensor_index(m, "x")];
	ty = m->tensors[tm_model_tensor_index(m, "fc")];
	CU_ASSERT_DOUBLE_EQUAL(tx->q.scale, s_i, 1e-7 * s_i);
	CU_ASSERT_EQUAL(tx->q.zero_point, zp_i);
	CU_ASSERT_DOUBLE_EQUAL(ty->q.scale, s_o, 1e-6 * s_o);
	CU_ASSERT_EQUAL(ty->q.zero_point, zp_o);
	CU_ASSERT_EQUAL_FATAL(m->n_nodes, 1);
	CU_ASSERT_EQUAL_FATAL(m->nodes[0]->n_inputs, 3);
	tw = m->tensors[m->nodes[0]->inputs[1]];
	tb = m->tensors[m->nodes[0]->inputs[2]];
	CU_ASSERT_FATAL(tw->q8 && tb->q32);
	CU_ASSERT_DOUBLE_EQUAL(tw->q.scale, s_w, 1e-12);
	for (int o = 0; o < OUT; o++) {
		for (int j = 0; j < IN; j++)
			CU_ASSERT_EQUAL(tw->q8[o * IN + j], qw[o][j]);
		CU_ASSERT_EQUAL(tb->q32[o], qb[o]);
	}

	/* int8 outputs from the lowered model. */
	CU_ASSERT_EQUAL_FATAL(tm_priv_lower(m, 0, &lw, &err), TM_OK);
	rt = tm_priv_blob_model(lw.blob);
	for (int i = 0; i < NV; i++) {
		int8_t xq[IN], yq[OUT];
		const int8_t *in[1] = { xq };
		int8_t *out[1] = { yq };

		for (int j = 0; j < IN; j++)
			xq[j] = fq8(xv[i][j], s_i, zp_i);
		CU_ASSERT_EQUAL(tmrt_run(rt, in, out, arena, sizeof arena),
				TMRT_OK);
		for (int o = 0; o < OUT; o++) {
			double r = s_i * s_w * qb[o], y = b[o], d, e;
			int rq;

			for (int j = 0; j < IN; j++) {
				r += s_w * qw[o][j] * s_i * (xq[j] - zp_i);
				y += (double)w[o][j] * xv[i][j];
			}
			/* Where they differ, by one step, the exact value
			 * is within 1% of a step of a tie: gemmlowp's
			 * double rounding (SRDHM, then the shift) moves
			 * it by up to 2^-(shift + 1) steps. */
			rq = fq8(r, s_o, zp_o);
			if (rq != yq[o]) {
				double fr = r / s_o - floor(r / s_o);

				CU_ASSERT(abs(rq - yq[o]) == 1);
				CU_ASSERT(fabs(fr - 0.5) < 0.01);
				ties++;
			}
			r = s_o * (rq - zp_o);
			d = s_o * (yq[o] - zp_o);
			e = fabs(d - r);
			qmax = e > qmax ? e : qmax;
			qsum += e;
			e = fabs(d - y);
			fmax = e > fmax ? e : fmax;
			fsum += e;
		}
	}
	tm_priv_lowered_fini(&lw);
	fprintf(stderr, "\n  one dense layer by hand: quantized reference "
		"max %.6g mean %.3g (%d of %d values a step off), float max "
		"%.6g mean %.3g (step %.6g)\n", qmax, qsum / (NV * OUT), ties,
		NV * OUT, fmax, fsum / (NV * OUT), s_o);
	/* Those near-ties are rare, but these samples have some. */
	CU_ASSERT(ties >= 1 && ties <= NV * OUT / 100);
	CU_ASSERT_EQUAL_FATAL(q.verify.n_outputs, 1);
	CU_ASSERT_EQUAL_FATAL(f.verify.n_outputs, 1);
	CU_ASSERT_DOUBLE_EQUAL(q.verify.outputs[0].max_abs, qmax, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(q.verify.outputs[0].mean_abs,
			       qsum / (NV * OUT), 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(f.verify.outputs[0].max_abs, fmax, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(f.verify.outputs[0].mean_abs,
			       fsum / (NV * OUT), 1e-6);
	CU_ASSERT(fmax > 0.3 * s_o);	/* the two references differ */
	tm_run_summary_fini(&f);
	tm_run_summary_fini(&q);
	tm_model_free(m);
}

static const tm_test_case cases[] = {
	{ "lowered XOR logits", test_logits },
	{ "verify report by hand", test_report },
	{ "blob emitter output", test_blob_file },
	{ "tolerance exceeded", test_tolerance_fails },
	{ "unsupported op", test_unsupported },
	{ "tanh, relu and flatten tables", test_tables },
	{ "bad verify sections", test_bad_section },
	{ "top-1 accuracy against labels", test_accuracy },
	{ "accuracy drop past the maximum", test_accuracy_drop_fails },
	{ "labels that do not fit", test_bad_labels },
	{ "SQNR of a known noise pattern", test_sqnr },
	{ "every tensor against float", test_tensors },
	{ "quantized reference: MLP", test_reference_mlp },
	{ "quantized reference: conv net", test_reference_conv },
	{ "quantized reference by hand", test_reference_by_hand },
	{ "quantized reference and labels", test_reference_accuracy },
	{ "quantized reference with bias_correct",
	  test_reference_bias_correct },
	{ NULL, NULL }
};

int
main(void)
{
	tm_error err;
	int rc;

	tm_error_clear(&err);
	reg = tm_registry_new();
	if (!reg || tm_registry_scan(reg, NULL, NULL, NULL, &err)) {
		print_err(&err);
		return 99;
	}
	if (tm_test_add_suite("verify", cases))
		return 99;
	rc = tm_test_run();
	tm_registry_free(reg);
	return rc;
}
