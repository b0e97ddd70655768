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
		  "max_accuracy_drop)" },
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
