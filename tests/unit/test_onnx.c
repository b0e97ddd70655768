/* tmpipe tests — the onnx frontend's importer.
 *
 * The CNN exported from PyTorch (tests/gen/onnx_cnn.py: Conv-BN-ReLU
 * blocks, max pooling, a residual Add, global average pooling, a Gemm
 * head; BatchNorm kept as nodes) runs in the float interpreter within
 * 1e-5 of PyTorch's outputs, relative to the output's magnitude:
 *	|got - want| <= 1e-5 * max(1, max |want|)
 * (the test_cnn rule: values near 0 are not held to a relative bound
 * float32 cannot meet). Hand-built fixtures (tests/gen/onnx_fixtures.py)
 * check that QDQ and QOperator scales arrive exactly as given, that uint8
 * graphs become the same int8 numbers, the one-line error for unsupported
 * operators, external data, and that truncated and bit-flipped files fail
 * with a message naming the file, never a crash. Malformed graphs
 * (bad_*.onnx: names longer than a message, quantization parameters of
 * the wrong type or size, shapes that overflow, dims without data) fail
 * with their exact message; each crashed, overflowed, leaked or
 * allocated gigabytes before the importer checked it. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <tmpipe/npy.h>
#include <tmpipe/quant.h>
#include <tmpipe/tmpipe.h>

#include "import.h"
#include "interp_priv.h"
#include "quantize_priv.h"
#include "runner.h"

static char path_buf[4096];

static const char *
data(const char *name)
{
	snprintf(path_buf, sizeof path_buf, "%s/data/onnx/%s",
		 tm_test_srcdir(), name);
	return path_buf;
}

/* Imports a fixture with the default options; NULL on failure (the
 * message is left in err). */
static tm_model *
load(const char *name, tm_error *err)
{
	tm_model *m = tm_model_new();

	tm_error_clear(err);
	if (m && onnx_import(data(name), NULL, m, NULL, err) == TM_OK)
		return m;
	tm_model_free(m);
	return NULL;
}

/* Runs m on the .npy input and compares with the .npy output. */
static void
check_outputs(tm_model *m, const char *in_npy, const char *out_npy)
{
	tm_npy x, y;
	tm_error err;
	tm_interp *it = NULL;
	size_t n, per_in, per_out;
	const float *got;
	double mag = 1.0, worst = 0.0;

	tm_error_clear(&err);
	memset(&x, 0, sizeof x);
	memset(&y, 0, sizeof y);
	CU_ASSERT_EQUAL_FATAL(tm_npy_load(data(in_npy), &x, &err), TM_OK);
	if (tm_npy_load(data(out_npy), &y, &err)) {
		CU_FAIL("output npy");
		goto out;
	}
	n = (size_t)x.shape[0];
	per_in = tm_tensor_numel(m->tensors[m->inputs[0]]);
	per_out = tm_tensor_numel(m->tensors[m->outputs[0]]);
	CU_ASSERT_EQUAL(x.numel, n * per_in);
	CU_ASSERT_EQUAL(y.numel, n * per_out);
	if (x.numel != n * per_in || y.numel != n * per_out)
		goto out;
	it = tm_priv_interp_new(m, n, &err);
	CU_ASSERT_PTR_NOT_NULL(it);
	if (!it)
		goto out;
	memcpy(tm_priv_interp_input(it, 0), x.data, x.numel * sizeof(float));
	CU_ASSERT_EQUAL(tm_priv_interp_run(it, n, &err), TM_OK);
	got = tm_priv_interp_tensor(it, m->outputs[0]);
	for (size_t i = 0; i < y.numel; i++)
		if (fabs(y.data[i]) > mag)
			mag = fabs(y.data[i]);
	for (size_t i = 0; i < y.numel; i++) {
		double e = fabs((double)got[i] - y.data[i]);

		if (e > worst)
			worst = e;
	}
	if (worst > 1e-5 * mag)
		fprintf(stderr, "max error %g (magnitude %g)\n", worst, mag);
	CU_ASSERT(worst <= 1e-5 * mag);
out:
	tm_priv_interp_free(it);
	tm_npy_fini(&x);
	tm_npy_fini(&y);
}

static void
test_cnn_float(void)
{
	tm_error err;
	tm_model *m = load("cnn.onnx", &err);
	size_t bn = 0, conv = 0, add = 0;

	if (!m)
		fprintf(stderr, "%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	for (size_t i = 0; i < m->n_nodes; i++) {
		bn += m->nodes[i]->op == TM_OP_BATCHNORM;
		conv += m->nodes[i]->op == TM_OP_CONV2D;
		add += m->nodes[i]->op == TM_OP_ADD;
	}
	/* The BatchNorm nodes came through as nodes, for bn_fold. */
	CU_ASSERT_EQUAL(bn, 3);
	CU_ASSERT_EQUAL(conv, 3);
	CU_ASSERT_EQUAL(add, 1);
	CU_ASSERT_EQUAL(m->n_inputs, 1);
	CU_ASSERT_EQUAL(m->tensors[m->inputs[0]]->ndim, 3);
	check_outputs(m, "cnn_input.npy", "cnn_output.npy");
	tm_model_free(m);
}

/* Float forms ONNX 1.12's backend tests leave out, against numpy. */
static void
check_case(const char *name, tm_op op, size_t n_nodes)
{
	char f[256], in[256], out[256];
	tm_error err;
	tm_model *m;

	snprintf(f, sizeof f, "%s.onnx", name);
	snprintf(in, sizeof in, "%s_input.npy", name);
	snprintf(out, sizeof out, "%s_output.npy", name);
	m = load(f, &err);
	if (!m)
		fprintf(stderr, "%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->n_nodes, n_nodes);
	CU_ASSERT_EQUAL(m->nodes[n_nodes - 1]->op, op);
	check_outputs(m, in, out);
	tm_model_free(m);
}

static void
test_float_forms(void)
{
	tm_error err;
	tm_model *m;

	/* MatMul + Add of a constant: one dense with its bias. */
	check_case("matmul_add", TM_OP_DENSE, 1);
	m = load("matmul_add.onnx", &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->nodes[0]->n_inputs, 3);
	CHECK_STR(m->tensors[m->outputs[0]]->name, "y");
	tm_model_free(m);
	check_case("gemm_ab", TM_OP_DENSE, 1);
	/* float_data, double_data and int64_data instead of raw_data. */
	check_case("typed", TM_OP_RESHAPE, 2);
	check_case("clip6", TM_OP_CLIP, 1);
	/* Softmax-11 over [2, 3] jointly: flatten, softmax, reshape. */
	check_case("softmax11", TM_OP_RESHAPE, 3);
	/* PyTorch's x.view(x.size(0), -1) with a dynamic batch: Shape,
	 * Gather, Unsqueeze and Concat fold into the Reshape's constant
	 * shape (tests/gen/onnx_cnn.py): conv, relu, reshape, dense. */
	check_case("view", TM_OP_DENSE, 4);
}

static void
test_unsupported(void)
{
	tm_error err;
	tm_model *m = load("unsupported.onnx", &err);
	char want[4200];

	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(err.code, TM_ERR_UNSUPPORTED);
	snprintf(want, sizeof want,
		 "%s: unsupported operators: Exp (node 'exp1', opset 13; 2 "
		 "nodes), Sin (node 'sin1', opset 13), com.microsoft.Gelu "
		 "(node 'gelu1', opset 1)", data("unsupported.onnx"));
	CHECK_STR(err.msg, want);
	CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
	tm_model_free(m);
}

/* The QDQ MLP: int8 and uint8 forms give the same int8 parameters. */
static void
check_qdq_mlp(const char *name)
{
	static const int8_t wq[12] = { 127, -127, 3, 0, -64, 10, 20, 30,
				       1, 2, -3, 100 };
	static const float sw[3] = { 0.01f, 0.02f, 0.03f };
	static const int32_t bq[3] = { 100, -200, 7 };
	tm_error err;
	tm_model *m = load(name, &err);
	tm_tensor *x, *y, *r, *w = NULL, *b = NULL;
	tm_node *fc = NULL;

	if (!m)
		fprintf(stderr, "%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	/* Q/DQ pairs are gone: dense and relu remain. */
	CU_ASSERT_EQUAL(m->n_nodes, 2);
	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i]->op == TM_OP_DENSE)
			fc = m->nodes[i];
	CU_ASSERT_PTR_NOT_NULL_FATAL(fc);
	x = m->tensors[fc->inputs[0]];
	w = m->tensors[fc->inputs[1]];
	b = fc->n_inputs > 2 ? m->tensors[fc->inputs[2]] : NULL;
	y = m->tensors[fc->outputs[0]];
	r = m->tensors[m->outputs[0]];
	CU_ASSERT(x->quant_given && x->q.scale == 1.0 / 64 &&
		  x->q.zero_point == 0 && x->fixed_range);
	CU_ASSERT(y->quant_given && y->q.scale == (double)0.05f &&
		  y->q.zero_point == -10);
	CU_ASSERT(r->quant_given && r->q.scale == (double)0.04f &&
		  r->q.zero_point == -128);
	CU_ASSERT_EQUAL(r->lo, 0.0f);
	CU_ASSERT_EQUAL(r->hi, (float)(0.04f * 255.0));
	CU_ASSERT(w->quant_given && w->q8 &&
		  w->q.scheme == TM_QSCHEME_PER_CHANNEL &&
		  w->q.n_channels == 3);
	if (w->q8 && w->q.scales) {
		CU_ASSERT(memcmp(w->q8, wq, sizeof wq) == 0);
		for (int c = 0; c < 3; c++)
			CU_ASSERT_EQUAL(w->q.scales[c], (double)sw[c]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_FALSE(b->quant_given);
	check_outputs(m, "qdq_mlp_input.npy", "qdq_mlp_output.npy");

	/* The quantize pass keeps every given number and derives the bias
	 * from them: s_b = s_x s_w[c] as the model's, so the model's int32
	 * bias comes back. No calibration ran: every range was given. */
	CU_ASSERT_EQUAL_FATAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT(memcmp(w->q8, wq, sizeof wq) == 0);
	CU_ASSERT_EQUAL(w->q.scales[1], (double)0.02f);
	CU_ASSERT(x->q.scale == 1.0 / 64 && y->q.zero_point == -10);
	for (int c = 0; c < 3; c++)
		CU_ASSERT_EQUAL(b->q32[c], bq[c]);
	CU_ASSERT_EQUAL(fc->n_requant, 3);
	CU_ASSERT(fc->fused_relu);
	tm_model_free(m);
}

static void
test_qdq_int8(void)
{
	check_qdq_mlp("qdq_mlp.onnx");
}

static void
test_qdq_uint8(void)
{
	check_qdq_mlp("qdq_mlp_u8.onnx");
}

/* A transform that changes given weights (bn_fold, cle) makes them
 * float weights again: the quantize pass derives them, per tensor as the
 * pipeline asks, instead of keeping stale int8 values. */
static void
test_qdq_changed_weights(void)
{
	tm_error err;
	tm_model *m = load("qdq_mlp.onnx", &err);
	tm_tensor *w;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	w = m->tensors[m->nodes[0]->inputs[1]];
	CU_ASSERT_FATAL(w->quant_given && w->q8);
	w->data[0] *= 2.0f;
	CU_ASSERT_EQUAL_FATAL(tm_priv_quantize(m, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(w->q.scheme, TM_QSCHEME_PER_TENSOR);
	/* max|w| is w[2][3] = 100 * 0.03 = 3 now; per tensor. */
	CU_ASSERT_EQUAL(w->q.scale, tm_quant_weight_scale(w->data, 12));
	CU_ASSERT_EQUAL(w->q8[0], lround(w->data[0] / w->q.scale));
	CU_ASSERT_EQUAL(w->q8[11], 127);
	tm_model_free(m);
}

static void
test_qdq_recalibrate(void)
{
	onnx_opts o;
	tm_error err;
	tm_model *m = tm_model_new();

	memset(&o, 0, sizeof o);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL_FATAL(onnx_import(data("qdq_mlp.onnx"), &o, m, NULL,
					  &err), TM_OK);
	for (size_t t = 0; t < m->n_tensors; t++) {
		CU_ASSERT_FALSE(m->tensors[t]->quant_given);
		CU_ASSERT_PTR_NULL(m->tensors[t]->q8);
	}
	tm_model_free(m);
}

static void
test_qop_conv(void)
{
	static const int8_t wq[18] = { 1, 2, 3, 4, 5, 6, 7, 8, 9,
				       -9, 0, 9, -50, 0, 50, 127, 0, -127 };
	tm_error err;
	tm_model *m = load("qop_conv.onnx", &err);
	tm_node *c;
	tm_tensor *x, *w, *b, *y;

	if (!m)
		fprintf(stderr, "%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_nodes, 1);
	c = m->nodes[0];
	CU_ASSERT_EQUAL(c->op, TM_OP_CONV2D);
	CU_ASSERT_EQUAL(c->attrs.pads[0], 1);
	CU_ASSERT_EQUAL(c->attrs.pads[3], 1);
	CU_ASSERT_EQUAL_FATAL(c->n_inputs, 3);
	x = m->tensors[c->inputs[0]];
	w = m->tensors[c->inputs[1]];
	b = m->tensors[c->inputs[2]];
	y = m->tensors[c->outputs[0]];
	/* uint8 zero points 128 and 100 are int8 0 and -28. */
	CU_ASSERT(x->quant_given && x->q.scale == 1.0 / 32 &&
		  x->q.zero_point == 0);
	CU_ASSERT(y->quant_given && y->q.scale == (double)0.1f &&
		  y->q.zero_point == -28);
	CU_ASSERT(w->quant_given && w->q8 && memcmp(w->q8, wq, 18) == 0);
	CU_ASSERT(w->q.scheme == TM_QSCHEME_PER_CHANNEL &&
		  w->q.scales[0] == 0.5 && w->q.scales[1] == 0.25);
	/* Dequantized: w = q s_w[c]; bias = B s_x s_w[c]. */
	CU_ASSERT_EQUAL(w->data[9], -9 * 0.25f);
	CU_ASSERT_EQUAL(b->data[0], 64 * 0.5f / 32);
	CU_ASSERT_EQUAL(b->data[1], -32 * 0.25f / 32);
	check_outputs(m, "qop_conv_input.npy", "qop_conv_output.npy");
	tm_model_free(m);
}

static void
test_qop_matmul(void)
{
	tm_error err;
	tm_model *m = load("qop_matmul.onnx", &err);
	tm_node *d;
	tm_tensor *w;

	if (!m)
		fprintf(stderr, "%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_nodes, 1);
	d = m->nodes[0];
	CU_ASSERT_EQUAL(d->op, TM_OP_DENSE);
	w = m->tensors[d->inputs[1]];
	/* b [K=4, N=3] becomes dense weight [N, K]: row 0 is b's column 0. */
	CU_ASSERT(w->shape[0] == 3 && w->shape[1] == 4);
	CU_ASSERT(w->q8 && w->q8[0] == 1 && w->q8[1] == 4 && w->q8[2] == 7 &&
		  w->q8[3] == 10 && w->q8[4] == -2);
	CU_ASSERT(w->q.scheme == TM_QSCHEME_PER_TENSOR && w->q.scale == 0.5);
	CU_ASSERT_EQUAL(w->data[4], -1.0f);
	CU_ASSERT(m->tensors[d->outputs[0]]->q.zero_point == 5);
	tm_model_free(m);
}

static void
test_bad_zero_point(void)
{
	tm_error err;
	tm_model *m = load("bad_zp.onnx", &err);
	char want[4200];

	CU_ASSERT_PTR_NULL(m);
	snprintf(want, sizeof want,
		 "%s: node 'fc' (Gemm, opset 13): weight 'w_dq' has a nonzero "
		 "zero point; tmpipe weights are symmetric (zero point 0)",
		 data("bad_zp.onnx"));
	CHECK_STR(err.msg, want);
	tm_model_free(m);
}

static void
test_external(void)
{
	tm_error err;
	tm_model *m = load("ext.onnx", &err);
	tm_tensor *w;

	if (!m)
		fprintf(stderr, "%s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	w = m->tensors[m->nodes[0]->inputs[1]];
	CU_ASSERT(w->shape[0] == 2 && w->shape[1] == 3);
	for (int i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(w->data[i], i / 4.0f);
	tm_model_free(m);

	m = load("ext_escape.onnx", &err);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(err.code, TM_ERR_INVALID);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "outside the model's folder"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "tensor 'w'"));
	tm_model_free(m);
}

/* Truncated and bit-flipped copies of the CNN: each either loads or fails
 * with one line naming the file; none crashes (the sanitizer and
 * valgrind runs of this test look for the rest). */
static void
test_corrupt(void)
{
	char path[4096];
	unsigned char *buf;
	long size;
	FILE *f = fopen(data("cnn.onnx"), "rb");
	unsigned failed = 0, loaded = 0, named = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc((size_t)size);
	CU_ASSERT_FATAL(buf && fread(buf, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	snprintf(path, sizeof path, "%s/corrupt.onnx", tm_test_tmpdir());
	for (long k = 0; k < 2 * size; k += 37) {
		tm_error err;
		tm_model *m = tm_model_new();
		long len = k < size ? k : size;
		unsigned char keep = 0;

		if (k >= size) {
			/* The whole file with one bit flipped. */
			keep = buf[k - size];
			buf[k - size] ^= (unsigned char)(1u << (k % 8));
		}
		f = fopen(path, "wb");
		CU_ASSERT_FATAL(f != NULL);
		fwrite(buf, 1, (size_t)len, f);
		fclose(f);
		if (k >= size)
			buf[k - size] = keep;
		tm_error_clear(&err);
		if (onnx_import(path, NULL, m, NULL, &err) == TM_OK) {
			loaded++;
		} else {
			failed++;
			named += strncmp(err.msg, path, strlen(path)) == 0 &&
				 !strchr(err.msg, '\n');
		}
		tm_model_free(m);
	}
	free(buf);
	CU_ASSERT(failed > 0);
	CU_ASSERT_EQUAL(named, failed);
	(void)loaded;
}

/* Seeded random mutations of the quantized fixtures (QDQ and QOperator,
 * where the importer reads the most structure: scales, zero points, axes,
 * int8 payloads): 1 to 4 bytes replaced a time. Each copy either loads
 * or fails with one line naming the file; the sanitizer and valgrind
 * runs of this test look for crashes, overruns and leaks. */
static void
test_mutations(void)
{
	static const char *const fixtures[] = {
		"qdq_mlp.onnx", "qdq_mlp_u8.onnx", "qdq_cnn.onnx",
		"qop_conv.onnx", "qop_matmul.onnx",
	};
	char path[4096];
	uint32_t seed = 20261127u;
	unsigned failed = 0, named = 0;

	snprintf(path, sizeof path, "%s/mutated.onnx", tm_test_tmpdir());
	for (size_t fx = 0; fx < sizeof fixtures / sizeof *fixtures; fx++) {
		FILE *f = fopen(data(fixtures[fx]), "rb");
		unsigned char *buf, *mut;
		long size;

		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		rewind(f);
		buf = malloc((size_t)size);
		mut = malloc((size_t)size);
		CU_ASSERT_FATAL(buf && mut &&
				fread(buf, 1, (size_t)size, f) ==
					(size_t)size);
		fclose(f);
		for (int k = 0; k < 150; k++) {
			tm_error err;
			tm_model *m = tm_model_new();
			unsigned edits;

			memcpy(mut, buf, (size_t)size);
			seed = seed * 1664525u + 1013904223u;	/* LCG */
			edits = 1 + (seed >> 30);
			for (unsigned e = 0; e < edits; e++) {
				seed = seed * 1664525u + 1013904223u;
				mut[(seed >> 8) % (uint32_t)size] =
					(unsigned char)(seed >> 24);
			}
			f = fopen(path, "wb");
			CU_ASSERT_FATAL(f != NULL);
			fwrite(mut, 1, (size_t)size, f);
			fclose(f);
			tm_error_clear(&err);
			if (onnx_import(path, NULL, m, NULL, &err) != TM_OK) {
				int ok = strncmp(err.msg, path,
						 strlen(path)) == 0 &&
					 !strchr(err.msg, '\n');

				failed++;
				named += ok;
				if (!ok)	/* which, to reproduce it */
					printf("\n  %s #%d: %s", fixtures[fx],
					       k, err.msg);
			}
			tm_model_free(m);
		}
		free(buf);
		free(mut);
	}
	CU_ASSERT(failed > 0);
	CU_ASSERT_EQUAL(named, failed);
}

static void
test_truncated_message(void)
{
	char path[4096], want[4200];
	tm_error err;
	tm_model *m = tm_model_new();
	FILE *f;

	snprintf(path, sizeof path, "%s/short.onnx", tm_test_tmpdir());
	f = fopen(path, "wb");
	CU_ASSERT_FATAL(f != NULL);
	/* graph (field 7) announcing 100 bytes, holding 2 */
	fwrite("\x3a\x64\x0a\x00", 1, 4, f);
	fclose(f);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(onnx_import(path, NULL, m, NULL, &err), TM_ERR_PARSE);
	snprintf(want, sizeof want, "%s: not a valid ONNX model (the protobuf "
		 "does not parse: truncated or corrupt?)", path);
	CHECK_STR(err.msg, want);
	tm_model_free(m);
}

/* A malformed fixture (tests/gen/onnx_fixtures.py, bad_model()) fails
 * with exactly "<path>: " + want and the given code. */
static void
check_bad(const char *name, tm_status code, const char *want)
{
	char full[4200];
	tm_error err;
	tm_model *m = load(name, &err);

	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_EQUAL(err.code, code);
	snprintf(full, sizeof full, "%s: %s", data(name), want);
	CHECK_STR(err.msg, full);
	tm_model_free(m);
}

/* Names are cut at 64 characters with "..." in the list of unsupported
 * operators; 1500 characters once wrote past the message buffer. */
static void
test_long_names(void)
{
	char want[1024], n64[65], b64[65], d64[65];

	memset(n64, 'N', 64);
	memset(b64, 'B', 64);
	memset(d64, 'd', 64);
	n64[64] = b64[64] = d64[64] = 0;
	snprintf(want, sizeof want,
		 "unsupported operators: Foo (node '%s...', opset 13), %s... "
		 "(node 'm', opset 13), %s....Baz (node 'z', opset -1)",
		 n64, b64, d64);
	check_bad("bad_longname.onnx", TM_ERR_UNSUPPORTED, want);
}

/* Unsqueeze with no axes: the attribute (opset 11) and the input (13). */
static void
test_unsqueeze_no_axes(void)
{
	check_bad("bad_unsq11.onnx", TM_ERR_INVALID,
		  "node 'unsq' (Unsqueeze, opset 11): axes is empty");
	check_bad("bad_unsq13.onnx", TM_ERR_INVALID,
		  "node 'unsq' (Unsqueeze, opset 13): axes is empty");
}

/* DequantizeLinear: the zero point has the data's integer type
 * (float was read as integers from NULL), the scale is not empty (its
 * first value was read past a malloc(0)). */
static void
test_dequantize_params(void)
{
	check_bad("bad_dq_float_zp.onnx", TM_ERR_INVALID,
		  "node 'dq' (DequantizeLinear, opset 13): zero point 'z' of "
		  "'q' is float, not int8 like the data");
	check_bad("bad_dq_uint8_zp.onnx", TM_ERR_INVALID,
		  "node 'dq' (DequantizeLinear, opset 13): zero point 'z' of "
		  "'q' is uint8, not int8 like the data");
	check_bad("bad_dq_empty_scale.onnx", TM_ERR_INVALID,
		  "node 'dq' (DequantizeLinear, opset 13): scale 's' of 'q' "
		  "is empty");
}

/* [-1, 2^30, 2^30, 2^30, 2^30]: the product overflowed int64 (UBSan). */
static void
test_reshape_overflow(void)
{
	check_bad("bad_reshape_ovf.onnx", TM_ERR_INVALID,
		  "node 'rs' (Reshape, opset 13): the shape holds more than "
		  "1073741824 values per sample");
}

/* The transposed copy of a weight whose name leaves no room for
 * "/T": refused, and (under LeakSanitizer and valgrind) not leaked. */
static void
test_long_weight_name(void)
{
	char want[1024], w64[65];

	memset(w64, 'W', 64);
	w64[64] = 0;
	snprintf(want, sizeof want,
		 "node 'mm' (MatMul, opset 13): name '%s...' is too long to "
		 "derive names from", w64);
	check_bad("bad_long_weight.onnx", TM_ERR_UNSUPPORTED, want);
}

/* Names that do not fit tmpipe's buffers are refused, not cut: cut, two
 * constants named alike read the same values (bad_cut_names), and an
 * output's copy named like its input looped forever looking for a free
 * name (bad_long_output). */
static void
test_names_not_cut(void)
{
	char want[1024], p64[65], a64[65];

	memset(p64, 'P', 64);
	memset(a64, 'A', 64);
	p64[64] = a64[64] = 0;
	snprintf(want, sizeof want,
		 "node 'add2' (Add, opset 13): name '%s...' is longer than "
		 "the 299 bytes tmpipe keeps", p64);
	check_bad("bad_cut_names.onnx", TM_ERR_UNSUPPORTED, want);
	snprintf(want, sizeof want,
		 "graph output '%s...' has a name longer than the 511 bytes "
		 "tmpipe keeps", a64);
	check_bad("bad_long_output.onnx", TM_ERR_UNSUPPORTED, want);
}

static void
test_concat_const_bound(void)
{
	check_bad("bad_concat_const.onnx", TM_ERR_UNSUPPORTED,
		  "node 'cat' (Concat, opset 13): a Concat of constants of "
		  "more than 1048576 values (shape arithmetic only)");
}

/* Found by fuzz-onnx (fuzz/regressions/onnx/): a Concat of constants
 * whose output is named like its input read its own result back as the
 * input and copied it past its end; one without an output crashed on
 * its missing name. A graph names each value once. */
static void
test_concat_const_names(void)
{
	check_bad("bad_concat_self.onnx", TM_ERR_INVALID,
		  "node 'cat' (Concat, opset 13): output 'v' is already "
		  "defined (a graph names each value once)");
	check_bad("bad_concat_noout.onnx", TM_ERR_INVALID,
		  "node 'cat' (Concat, opset 13): output 0 is missing");
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Imports name into msg with the address space limited to 512 MiB above
 * what the test uses: a file that announces gigabytes it does not hold
 * must fail on its own message, not on "out of memory" (which the
 * importer gave before it checked the data against the dims). The limit
 * is left out under ASan and valgrind, whose shadow memory it breaks;
 * there the message alone is checked. */
static void
load_limited(const char *name, char *msg, size_t size)
{
	int fd[2];
	pid_t pid;
	ssize_t got;
	size_t len = 0;
	int status;
	const char *pre = getenv("LD_PRELOAD");
	int limit = !(pre && strstr(pre, "vgpreload"));
	tm_error err;
	tm_model *m;

#ifdef UNDER_ASAN
	limit = 0;
#endif
	msg[0] = 0;
	if (!limit) {
		m = load(name, &err);
		CU_ASSERT_PTR_NULL(m);
		tm_model_free(m);
		snprintf(msg, size, "%s", err.msg);
		return;
	}
	CU_ASSERT_FATAL(pipe(fd) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		unsigned long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		struct rlimit rl;

		close(fd[0]);
		if (!f || fscanf(f, "%lu", &pages) != 1)
			_exit(2);
		fclose(f);
		rl.rlim_cur = rl.rlim_max = (rlim_t)pages *
			(rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)512 << 20);
		if (setrlimit(RLIMIT_AS, &rl))
			_exit(2);
		m = load(name, &err);
		if (write(fd[1], err.msg, strlen(err.msg)) < 0)
			_exit(2);
		_exit(m ? 1 : 0);
	}
	close(fd[1]);
	while (len + 1 < size &&
	       (got = read(fd[0], msg + len, size - 1 - len)) > 0)
		len += (size_t)got;
	msg[len] = 0;
	close(fd[0]);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Dims of 2^15 x 2^16 floats and no values: the count is checked before
 * 8 GiB is allocated (a 141-byte file took 3.6 s and 1 GB under ASan). */
static void
test_dims_without_data(void)
{
	char got[1024], want[4200];

	load_limited("bad_big_dims.onnx", got, sizeof got);
	snprintf(want, sizeof want, "%s: tensor 'w': 0 values for shape of "
		 "2147483648 elements", data("bad_big_dims.onnx"));
	CHECK_STR(got, want);
}

/* Ties: ONNX QuantizeLinear rounds half to even; tmpipe rounds half away
 * from zero wherever it rounds (QUANT.md). 0.25 / 0.5 = 0.5 exactly: ONNX
 * gives 0, tmpipe 1; -0.75 / 0.5 = -1.5: ONNX -2, tmpipe -2; 1.25 / 0.5 =
 * 2.5: ONNX 2, tmpipe 3. Given int8 weights are never re-rounded. */
static void
test_ties(void)
{
	static const float w[4] = { 0.25f, -0.75f, 1.25f, -0.25f };
	int8_t q[4];

	tm_quant_weights(w, 4, 0.5, q);
	CU_ASSERT_EQUAL(q[0], 1);
	CU_ASSERT_EQUAL(q[1], -2);
	CU_ASSERT_EQUAL(q[2], 3);
	CU_ASSERT_EQUAL(q[3], -1);
}

int
main(void)
{
	static const tm_test_case float_cases[] = {
		{ "PyTorch CNN within 1e-5", test_cnn_float },
		{ "MatMul+Add, Gemm alpha/beta, Clip-6, Softmax-11",
		  test_float_forms },
		{ "unsupported ops in one line", test_unsupported },
		{ "external data, and outside the folder", test_external },
		{ "corrupt files", test_corrupt },
		{ "seeded mutations of the quantized fixtures", test_mutations },
		{ "names too long are refused, not cut", test_names_not_cut },
		{ "truncated file message", test_truncated_message },
		{ "long names in the unsupported list", test_long_names },
		{ "Unsqueeze without axes", test_unsqueeze_no_axes },
		{ "Reshape shape overflow", test_reshape_overflow },
		{ "long weight name, no leak", test_long_weight_name },
		{ "Concat of constants bounded", test_concat_const_bound },
		{ "Concat of constants: output names",
		  test_concat_const_names },
		{ "dims without data, nothing allocated", test_dims_without_data },
		{ NULL, NULL }
	};
	static const tm_test_case quant_cases[] = {
		{ "QDQ int8 scales as given", test_qdq_int8 },
		{ "QDQ uint8 as the same int8", test_qdq_uint8 },
		{ "scales dropped to recalibrate", test_qdq_recalibrate },
		{ "weights changed by a transform", test_qdq_changed_weights },
		{ "QLinearConv", test_qop_conv },
		{ "QLinearMatMul", test_qop_matmul },
		{ "nonzero weight zero point", test_bad_zero_point },
		{ "DequantizeLinear zero point and scale",
		  test_dequantize_params },
		{ "ties round away from zero", test_ties },
		{ NULL, NULL }
	};

	if (tm_test_add_suite("onnx float", float_cases) ||
	    tm_test_add_suite("onnx quantized", quant_cases))
		return 1;
	return tm_test_run();
}
