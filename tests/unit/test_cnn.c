/* tmpipe tests — a Conv-BN-ReLU CNN exported from PyTorch runs through
 * the core: the npy frontend reads its state_dict, calibration with minmax
 * gives every activation a range equal to PyTorch's min and max over the
 * calibration set, and the float interpreter matches PyTorch on every
 * tensor (tests/gen/cnn_ref.py writes tests/data/cnn/).
 *
 * Tolerance, for values and ranges alike: 1e-5 relative to the tensor,
 *	|got - want| <= 1e-5 * max(1, max |want|)
 * with the maximum over the whole reference tensor (all samples): a
 * tensor's values share one scale, so an error is judged against the
 * tensor's magnitude, and values near zero are not held to a relative
 * bound they cannot meet in float32.
 *
 * The last suite runs small pipelines written on the fly through the
 * npy frontend: every layer field lands in the node's attributes, and
 * every bad layer gets its message at the user's line. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/npy.h>
#include <tmpipe/tmpipe.h>

#include "interp_priv.h"
#include "loader_priv.h"
#include "pipeline_priv.h"
#include "run_priv.h"
#include "runner.h"

#define TOL 1e-5
#define MSG_MAX (TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 8)

static tm_registry *reg;
static tm_model *cnn, *seq;
static tm_run_summary cnn_sum, seq_sum;

/* Loads and runs a pipeline; NULL (and the message on stderr and in msg)
 * on failure. */
static tm_model *
run_pipeline(const char *path, tm_run_summary *sum, char *msg, size_t size)
{
	tm_pipeline *pl = NULL;
	tm_model *m = NULL;
	tm_error err;
	tm_run_summary local;

	tm_error_clear(&err);
	if (!sum)
		sum = &local;
	memset(sum, 0, sizeof *sum);
	if (msg && size)
		msg[0] = '\0';
	if (!reg || tm_pipeline_load(path, reg, NULL, &pl, &err) ||
	    tm_pipeline_run(pl, NULL, NULL, sum, &m, &err)) {
		char buf[MSG_MAX];

		tm_error_format(&err, buf, sizeof buf);
		if (msg)
			snprintf(msg, size, "%s", buf);
		else
			fprintf(stderr, "\n  %s: %s\n", path, buf);
		m = NULL;
	}
	tm_pipeline_free(pl);
	if (sum == &local)
		tm_run_summary_fini(&local);
	return m;
}

static const char *
data_path(const char *rel, char *buf, size_t size)
{
	snprintf(buf, size, "%s/data/cnn/%s", tm_test_srcdir(), rel);
	return buf;
}

static const tm_node *
node(const tm_model *m, const char *name)
{
	for (size_t i = 0; m && i < m->n_nodes; i++)
		if (strcmp(m->nodes[i]->name, name) == 0)
			return m->nodes[i];
	fprintf(stderr, "\n  no node '%s'\n", name);
	CU_FAIL("node not found");
	return NULL;
}

/* --- the CNN ----------------------------------------------------------- */

static void
test_runs(void)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(cnn);
	CU_ASSERT_EQUAL(cnn_sum.samples, 16);
	/* input and 12 layers observed; softmax's range is fixed. */
	CU_ASSERT_EQUAL(cnn_sum.tensors_observed, 13);
	CU_ASSERT_EQUAL(cnn_sum.tensors_fixed, 1);
	CU_ASSERT_EQUAL(cnn_sum.files_written, 0);
	CU_ASSERT_EQUAL(cnn->n_nodes, 13);
	CU_ASSERT_EQUAL(cnn->n_outputs, 1);
	if (cnn->n_outputs == 1)
		CU_ASSERT_STRING_EQUAL(cnn->tensors[cnn->outputs[0]]->name,
				       "softmax");
}

/* Every activation tensor has a range, and it is not reversed. */
static void
check_all_ranges(const tm_model *m)
{
	size_t n = 0;

	for (size_t t = 0; m && t < m->n_tensors; t++) {
		const tm_tensor *tt = m->tensors[t];

		if (tt->kind == TM_TENSOR_CONST)
			continue;
		n++;
		if (!tt->has_range || !(tt->lo <= tt->hi))
			fprintf(stderr, "\n  %s: has_range %d, [%g, %g]\n",
				tt->name, tt->has_range, (double)tt->lo,
				(double)tt->hi);
		CU_ASSERT_TRUE(tt->has_range);
		CU_ASSERT_TRUE(tt->lo <= tt->hi);
	}
	CU_ASSERT(n > 0);
}

static void
test_every_range(void)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(cnn);
	check_all_ranges(cnn);
}

static int
close_enough(double got, double want, double scale)
{
	return fabs(got - want) <= TOL * (scale > 1.0 ? scale : 1.0);
}

/* ref/ranges.txt: "<tensor> <min> <max>" over calib.npy, from PyTorch. */
static void
test_minmax_ranges(void)
{
	char path[4096], line[256], name[128];
	size_t seen = 0, acts = 0;
	FILE *fp;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cnn);
	fp = fopen(data_path("ref/ranges.txt", path, sizeof path), "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	while (fgets(line, sizeof line, fp)) {
		const tm_tensor *t;
		double lo, hi, scale;

		if (line[0] == '#')
			continue;
		if (sscanf(line, "%127s %lf %lf", name, &lo, &hi) != 3) {
			CU_FAIL("bad line in ranges.txt");
			continue;
		}
		t = tm_model_find_tensor(cnn, name);
		CU_ASSERT_PTR_NOT_NULL(t);
		if (!t)
			continue;
		seen++;
		if (t->fixed_range) {
			/* Softmax: [0, 1] by the op, never observed; the data
			 * must lie inside. */
			CU_ASSERT_STRING_EQUAL(name, "softmax");
			CU_ASSERT_EQUAL(t->lo, 0.0f);
			CU_ASSERT_EQUAL(t->hi, 1.0f);
			CU_ASSERT(lo >= 0.0 && hi <= 1.0);
			continue;
		}
		CU_ASSERT_PTR_NOT_NULL(t->observer);
		if (t->observer)
			CU_ASSERT_STRING_EQUAL(t->observer, "minmax");
		scale = fmax(fabs(lo), fabs(hi));
		if (!close_enough(t->lo, lo, scale) ||
		    !close_enough(t->hi, hi, scale))
			fprintf(stderr, "\n  %s: [%.9g, %.9g], PyTorch [%.9g, "
				"%.9g]\n", name, (double)t->lo, (double)t->hi,
				lo, hi);
		CU_ASSERT_TRUE(close_enough(t->lo, lo, scale));
		CU_ASSERT_TRUE(close_enough(t->hi, hi, scale));
	}
	fclose(fp);
	for (size_t t = 0; t < cnn->n_tensors; t++)
		acts += cnn->tensors[t]->kind != TM_TENSOR_CONST;
	/* Every activation has its line, and no line is left over. */
	CU_ASSERT_EQUAL(seen, acts);
	CU_ASSERT_EQUAL(acts, 14);
}

/* Runs the interpreter on <dir>/inputs.npy and compares every activation
 * with <dir>/ref/<tensor>.npy. */
static void
check_interp(const tm_model *m, const char *dir)
{
	char path[4096], rel[512], msg[MSG_MAX];
	tm_interp *it = NULL;
	tm_error err;
	tm_npy x = { 0 };
	size_t n, checked = 0, in_numel;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	tm_error_clear(&err);
	snprintf(rel, sizeof rel, "%sinputs.npy", dir);
	if (tm_npy_load(data_path(rel, path, sizeof path), &x, &err)) {
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg,
							  sizeof msg));
		CU_FAIL("inputs.npy");
		return;
	}
	n = x.ndim > 0 ? (size_t)x.shape[0] : 0;
	in_numel = tm_tensor_numel(m->tensors[m->inputs[0]]);
	CU_ASSERT_EQUAL(n, 8);
	CU_ASSERT_EQUAL(x.numel, n * in_numel);
	if (n == 0 || x.numel != n * in_numel)
		goto out;
	it = tm_priv_interp_new(m, n, &err);
	CU_ASSERT_PTR_NOT_NULL(it);
	if (!it)
		goto out;
	memcpy(tm_priv_interp_input(it, 0), x.data, x.numel * sizeof(float));
	CU_ASSERT_EQUAL(tm_priv_interp_run(it, n, &err), TM_OK);
	if (err.code) {
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, msg,
							  sizeof msg));
		goto out;
	}
	for (size_t t = 0; t < m->n_tensors; t++) {
		const tm_tensor *tt = m->tensors[t];
		const float *got;
		tm_npy want = { 0 };
		double scale = 0.0, worst = 0.0;
		size_t numel, bad = 0, at = 0;

		if (tt->kind == TM_TENSOR_CONST)
			continue;
		snprintf(rel, sizeof rel, "%sref/%s.npy", dir, tt->name);
		if (tm_npy_load(data_path(rel, path, sizeof path), &want,
				&err)) {
			fprintf(stderr, "\n  %s\n",
				tm_error_format(&err, msg, sizeof msg));
			CU_FAIL("reference missing");
			tm_error_clear(&err);
			continue;
		}
		numel = tm_tensor_numel(tt);
		got = tm_priv_interp_tensor(it, t);
		CU_ASSERT_PTR_NOT_NULL(got);
		/* PyTorch's shape is the batch and the sample's (flatten
		 * and global pooling keep their dims in both). */
		CU_ASSERT_EQUAL(want.numel, n * numel);
		CU_ASSERT_EQUAL(want.ndim, tt->ndim + 1);
		for (int d = 0; d < tt->ndim && d + 1 < want.ndim; d++)
			CU_ASSERT_EQUAL(want.shape[d + 1], tt->shape[d]);
		if (!got || want.numel != n * numel) {
			tm_npy_fini(&want);
			continue;
		}
		for (size_t i = 0; i < want.numel; i++)
			scale = fmax(scale, fabs(want.data[i]));
		for (size_t i = 0; i < want.numel; i++) {
			double e = fabs((double)got[i] - want.data[i]);

			if (e > worst) {
				worst = e;
				at = i;
			}
			bad += !close_enough(got[i], want.data[i], scale);
		}
		if (bad)
			fprintf(stderr, "\n  %s: %zu of %zu values off; worst "
				"at %zu: %.9g, PyTorch %.9g\n", tt->name, bad,
				want.numel, at, (double)got[at],
				(double)want.data[at]);
		CU_ASSERT_EQUAL(bad, 0);
		checked++;
		tm_npy_fini(&want);
	}
	CU_ASSERT(checked >= 10);
out:
	tm_priv_interp_free(it);
	tm_npy_fini(&x);
}

static void
test_interp(void)
{
	check_interp(cnn, "");
}

/* The frontend put PyTorch's attributes on the nodes. */
static void
test_cnn_attrs(void)
{
	const tm_node *c1 = node(cnn, "conv1"), *c2 = node(cnn, "conv2");
	const tm_node *p1 = node(cnn, "pool1"), *b2 = node(cnn, "bn2");
	const tm_node *dw = node(cnn, "dw"), *sm = node(cnn, "softmax");
	const tm_node *fl = node(cnn, "flatten"), *add = node(cnn, "add");

	if (!c1 || !c2 || !p1 || !b2 || !dw || !sm || !fl || !add)
		return;
	CU_ASSERT_EQUAL(c1->n_inputs, 3);
	CU_ASSERT_EQUAL(c1->attrs.pads[0], 1);
	CU_ASSERT_EQUAL(c1->attrs.pads[3], 1);
	CU_ASSERT_EQUAL(c1->attrs.stride[0], 1);
	/* conv2 has no bias (bias=False): no file, no operand. */
	CU_ASSERT_EQUAL(c2->n_inputs, 2);
	CU_ASSERT_EQUAL(c2->attrs.stride[0], 2);
	CU_ASSERT_EQUAL(c2->attrs.stride[1], 2);
	CU_ASSERT_EQUAL(c2->attrs.kernel[0], 3);
	/* A pool's stride is its kernel unless given. */
	CU_ASSERT_EQUAL(p1->attrs.kernel[0], 2);
	CU_ASSERT_EQUAL(p1->attrs.kernel[1], 2);
	CU_ASSERT_EQUAL(p1->attrs.stride[0], 2);
	CU_ASSERT_EQUAL(p1->attrs.stride[1], 2);
	CU_ASSERT_EQUAL(b2->n_inputs, 5);
	CU_ASSERT_DOUBLE_EQUAL(b2->attrs.epsilon, 1e-3, 1e-9);
	CU_ASSERT_EQUAL(dw->attrs.group, 16);
	CU_ASSERT_EQUAL(add->n_inputs, 2);
	/* PyTorch dims count the batch: softmax dim 1 is axis 0 here,
	 * flatten's start_dim 1 too. */
	CU_ASSERT_EQUAL(sm->attrs.axis, 0);
	CU_ASSERT_EQUAL(fl->attrs.axis, 0);
	CU_ASSERT_EQUAL(fl->op, TM_OP_FLATTEN);
}

/* --- the Sequential, from the export tool's skeleton ------------------- */

static void
test_seq_runs(void)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(seq);
	CU_ASSERT_EQUAL(seq_sum.samples, 8);
	/* input and 10 layers observed; sigmoid, tanh, softmax fixed. */
	CU_ASSERT_EQUAL(seq_sum.tensors_observed, 11);
	CU_ASSERT_EQUAL(seq_sum.tensors_fixed, 3);
	CU_ASSERT_EQUAL(seq->n_nodes, 13);
	check_all_ranges(seq);
}

static void
test_seq_interp(void)
{
	check_interp(seq, "seq/");
}

static void
test_seq_attrs(void)
{
	const tm_node *c0 = node(seq, "0"), *r6 = node(seq, "2");
	const tm_node *ap = node(seq, "3"), *c1x1 = node(seq, "4");
	const tm_node *lr = node(seq, "5"), *mp = node(seq, "6");
	const tm_node *sm = node(seq, "13");

	if (!c0 || !r6 || !ap || !c1x1 || !lr || !mp || !sm)
		return;
	/* padding='same', kernel 4: PyTorch pads 1 before, 2 after. */
	CU_ASSERT_EQUAL(c0->attrs.pads[0], 1);
	CU_ASSERT_EQUAL(c0->attrs.pads[1], 1);
	CU_ASSERT_EQUAL(c0->attrs.pads[2], 2);
	CU_ASSERT_EQUAL(c0->attrs.pads[3], 2);
	CU_ASSERT_EQUAL(r6->op, TM_OP_CLIP);
	CU_ASSERT_EQUAL(r6->attrs.clip_min, 0.0f);
	CU_ASSERT_EQUAL(r6->attrs.clip_max, 6.0f);
	CU_ASSERT_EQUAL(ap->attrs.count_include_pad, 0);
	CU_ASSERT_EQUAL(ap->attrs.stride[0], 2);
	CU_ASSERT_EQUAL(ap->attrs.kernel[1], 3);
	CU_ASSERT_EQUAL(c1x1->attrs.kernel[0], 1);
	CU_ASSERT_EQUAL(lr->attrs.alpha, 0.2f);
	CU_ASSERT_EQUAL(mp->attrs.dilation[0], 2);
	CU_ASSERT_EQUAL(mp->attrs.stride[1], 1);
	CU_ASSERT_EQUAL(mp->attrs.pads[2], 1);
	CU_ASSERT_EQUAL(sm->attrs.axis, -1);
}

/* --- the frontend, field by field ------------------------------------- */

/* A float32 .npy of the given shape, data[i] = base + i. */
static void
write_f32(const char *name, int ndim, const int64_t *shape, float base)
{
	char path[4096], hdr[256];
	unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };
	size_t n = 1, len = 0;
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", tm_test_tmpdir(), name);
	len = (size_t)snprintf(hdr, sizeof hdr, "{'descr': '<f4', "
			       "'fortran_order': False, 'shape': (");
	for (int i = 0; i < ndim; i++) {
		len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%lld, ",
					(long long)shape[i]);
		n *= (size_t)shape[i];
	}
	len += (size_t)snprintf(hdr + len, sizeof hdr - len, "), }");
	pre[8] = (unsigned char)len;
	pre[9] = 0;
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fwrite(pre, 1, sizeof pre, fp);
	fwrite(hdr, 1, len, fp);
	for (size_t i = 0; i < n; i++) {
		float v = base + (float)i;

		fwrite(&v, sizeof v, 1, fp);	/* the test hosts are LE */
	}
	CU_ASSERT_EQUAL(fclose(fp), 0);
}

/* Writes the layers (YAML list items) into a pipeline over the temporary
 * folder's files, with one input [4, 6, 5], and runs it (no
 * calibration). Returns the model, or NULL with the error in msg, where
 * "PIPE" stands for the pipeline's path. */
static tm_model *
run_layers(const char *layers, char *msg, size_t size)
{
	char path[4096], text[8192], full[MSG_MAX];
	tm_model *m;
	size_t plen;

	snprintf(path, sizeof path, "%s/p.yaml", tm_test_tmpdir());
	snprintf(text, sizeof text, "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  inputs: {x: [4, 6, 5], v: [6]}\n  layers:\n%s", layers);
	tm_test_write_file(path, text);
	m = run_pipeline(path, NULL, full, sizeof full);
	plen = strlen(path);
	msg[0] = '\0';
	if (!m && strncmp(full, path, plen) == 0)
		snprintf(msg, size, "PIPE%s", full + plen);
	else if (!m)
		snprintf(msg, size, "%s", full);
	return m;
}

/* The message, with the temporary folder written as TMP. */
static void
check_error(const char *layers, const char *want)
{
	char msg[MSG_MAX], exp[MSG_MAX], *p;
	const char *tmp = tm_test_tmpdir();
	tm_model *m = run_layers(layers, msg, sizeof msg);

	CU_ASSERT_PTR_NULL(m);
	tm_model_free(m);
	/* Replace TMP in want. */
	exp[0] = '\0';
	for (const char *w = want; *w;) {
		p = strstr(w, "TMP");
		if (!p) {
			strncat(exp, w, sizeof exp - strlen(exp) - 1);
			break;
		}
		strncat(exp, w, (size_t)(p - w) < sizeof exp - strlen(exp) - 1
				       ? (size_t)(p - w)
				       : sizeof exp - strlen(exp) - 1);
		strncat(exp, tmp, sizeof exp - strlen(exp) - 1);
		w = p + 3;
	}
	if (strcmp(msg, exp) != 0)
		fprintf(stderr, "\n  got:  %s\n  want: %s\n", msg, exp);
	CU_ASSERT_STRING_EQUAL(msg, exp);
}

static void
fixtures(void)
{
	static const int64_t w_conv[] = { 8, 2, 3, 2 }, c8[] = { 8 };
	static const int64_t c4[] = { 4 }, mm[] = { 5, 3 };
	static const int64_t bc[] = { 1, 4, 1, 1 }, d2[] = { 7, 6 };
	static const int64_t d7[] = { 7 };

	write_f32("c.weight.npy", 4, w_conv, -10.0f);
	write_f32("c.bias.npy", 1, c8, 0.0f);
	write_f32("bn.running_mean.npy", 1, c4, 0.0f);
	write_f32("bn.running_var.npy", 1, c4, 1.0f);
	write_f32("mm.weight.npy", 2, mm, 0.0f);
	write_f32("offset.npy", 4, bc, 0.5f);
	write_f32("fc.weight.npy", 2, d2, 0.0f);
	write_f32("fc_b.npy", 1, d7, 0.0f);
}

static void
test_fields(void)
{
	static const char layers[] =
		"    - {name: c, op: conv2d, input: x, kernel: [3, 2], "
		"stride: [2, 1], padding: [1, 0, 2, 1], dilation: [1, 2], "
		"groups: 2}\n"
		"    - {name: bn, op: batchnorm, input: x, eps: 0.5}\n"
		"    - {name: mp, op: maxpool2d, input: x, kernel: [2, 3], "
		"stride: [1], padding: [1]}\n"
		"    - {name: ap, op: avgpool2d, input: x, kernel: [3], "
		"padding: [1, 0]}\n"
		"    - {name: cl, op: clip, input: x, min: -0.5}\n"
		"    - {name: cl2, op: clip, input: x, min: -1, max: 2.5}\n"
		"    - {name: lr, op: leaky_relu, input: x}\n"
		"    - {name: sm, op: softmax, input: x, axis: 2}\n"
		"    - {name: sm2, op: softmax, input: x, dim: -2}\n"
		"    - {name: mm, op: matmul, input: x}\n"
		"    - {name: sh, op: add, input: x, bias: offset.npy}\n"
		"    - {name: fl2, op: flatten, input: x, start_dim: 2}\n"
		"    - {name: fl3, op: flatten, input: x, start_dim: 3}\n"
		"    - {name: rs, op: reshape, input: x, shape: [-1, 10]}\n"
		"    - {name: g, op: global_avgpool, input: x}\n"
		"    - {name: t, op: tanh, input: x}\n"
		"    - {name: s, op: sigmoid, input: v}\n"
		"    - {name: fc, op: dense, input: v, bias: fc_b.npy}\n"
		"    - {name: r6, op: relu6, input: fc}\n"
		"    - {name: cat, op: concat, inputs: x t, dim: 3}\n"
		"    - {name: cat2, op: concat, inputs: \"x, bn,t\"}\n";
	char msg[MSG_MAX];
	tm_model *m;
	const tm_node *n;
	const tm_tensor *t;

	fixtures();
	m = run_layers(layers, msg, sizeof msg);
	if (!m)
		fprintf(stderr, "\n  %s\n", msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);

	if ((n = node(m, "c"))) {
		static const int64_t pads[4] = { 1, 0, 2, 1 };

		CU_ASSERT_EQUAL(n->n_inputs, 3);	/* c.bias found */
		CU_ASSERT_EQUAL(n->attrs.kernel[0], 3);
		CU_ASSERT_EQUAL(n->attrs.kernel[1], 2);
		CU_ASSERT_EQUAL(n->attrs.stride[0], 2);
		CU_ASSERT_EQUAL(n->attrs.stride[1], 1);
		CU_ASSERT_EQUAL(memcmp(n->attrs.pads, pads, sizeof pads), 0);
		CU_ASSERT_EQUAL(n->attrs.dilation[0], 1);
		CU_ASSERT_EQUAL(n->attrs.dilation[1], 2);
		CU_ASSERT_EQUAL(n->attrs.group, 2);
	}
	/* (6 + 1 + 2 - 3) / 2 + 1 = 4, (5 + 0 + 1 - 3) / 1 + 1 = 4 */
	if ((t = tm_model_find_tensor(m, "c"))) {
		CU_ASSERT_EQUAL(t->ndim, 3);
		CU_ASSERT_EQUAL(t->shape[0], 8);
		CU_ASSERT_EQUAL(t->shape[1], 4);
		CU_ASSERT_EQUAL(t->shape[2], 4);
	}
	/* affine=False: gamma 1 and beta 0 made from the mean's size. */
	if ((n = node(m, "bn"))) {
		CU_ASSERT_EQUAL(n->n_inputs, 5);
		CU_ASSERT_EQUAL(n->attrs.epsilon, 0.5f);
		t = m->tensors[n->inputs[1]];
		CU_ASSERT_STRING_EQUAL(t->name, "bn.weight");
		CU_ASSERT_EQUAL(t->data[3], 1.0f);
		t = m->tensors[n->inputs[2]];
		CU_ASSERT_STRING_EQUAL(t->name, "bn.bias");
		CU_ASSERT_EQUAL(t->data[0], 0.0f);
		CU_ASSERT_STRING_EQUAL(m->tensors[n->inputs[3]]->name,
				       "bn.running_mean");
		CU_ASSERT_STRING_EQUAL(m->tensors[n->inputs[4]]->name,
				       "bn.running_var");
	}
	if ((n = node(m, "mp"))) {
		CU_ASSERT_EQUAL(n->attrs.kernel[0], 2);
		CU_ASSERT_EQUAL(n->attrs.kernel[1], 3);
		CU_ASSERT_EQUAL(n->attrs.stride[0], 1);
		CU_ASSERT_EQUAL(n->attrs.stride[1], 1);
		CU_ASSERT_EQUAL(n->attrs.pads[1], 1);
	}
	if ((n = node(m, "ap"))) {
		CU_ASSERT_EQUAL(n->attrs.stride[0], 3);
		CU_ASSERT_EQUAL(n->attrs.pads[0], 1);
		CU_ASSERT_EQUAL(n->attrs.pads[1], 0);
		CU_ASSERT_EQUAL(n->attrs.pads[2], 1);
		CU_ASSERT_EQUAL(n->attrs.count_include_pad, 1);
	}
	if ((n = node(m, "cl"))) {
		CU_ASSERT_EQUAL(n->op, TM_OP_CLIP);
		CU_ASSERT_EQUAL(n->attrs.clip_min, -0.5f);
		CU_ASSERT_TRUE(isinf(n->attrs.clip_max));
	}
	if ((n = node(m, "cl2"))) {
		CU_ASSERT_EQUAL(n->attrs.clip_min, -1.0f);
		CU_ASSERT_EQUAL(n->attrs.clip_max, 2.5f);
	}
	if ((n = node(m, "lr")))
		CU_ASSERT_EQUAL(n->attrs.alpha, 0.01f);
	if ((n = node(m, "sm")))
		CU_ASSERT_EQUAL(n->attrs.axis, 1);
	if ((n = node(m, "sm2")))
		CU_ASSERT_EQUAL(n->attrs.axis, -2);
	if ((n = node(m, "cat"))) {
		CU_ASSERT_EQUAL(n->n_inputs, 2);
		CU_ASSERT_EQUAL(n->attrs.axis, 2);
	}
	if ((t = tm_model_find_tensor(m, "cat")))
		CU_ASSERT_EQUAL(t->shape[2], 5 + 5);
	if ((n = node(m, "cat2"))) {
		CU_ASSERT_EQUAL(n->n_inputs, 3);
		CU_ASSERT_EQUAL(n->attrs.axis, 0);
	}
	if ((t = tm_model_find_tensor(m, "cat2")))
		CU_ASSERT_EQUAL(t->shape[0], 12);
	if ((t = tm_model_find_tensor(m, "mm"))) {
		CU_ASSERT_EQUAL(t->ndim, 3);
		CU_ASSERT_EQUAL(t->shape[2], 3);
	}
	/* add's constant [1, 4, 1, 1]: the leading 1 is the batch. */
	if ((t = tm_model_find_tensor(m, "sh.bias"))) {
		CU_ASSERT_EQUAL(t->ndim, 3);
		CU_ASSERT_EQUAL(t->shape[0], 4);
	}
	if ((t = tm_model_find_tensor(m, "sh")))
		CU_ASSERT_EQUAL(t->ndim, 3);
	/* flatten start_dim 2: [4, 30]; start_dim 3: [4, 6, 5] kept. */
	if ((t = tm_model_find_tensor(m, "fl2"))) {
		CU_ASSERT_EQUAL(t->ndim, 2);
		CU_ASSERT_EQUAL(t->shape[0], 4);
		CU_ASSERT_EQUAL(t->shape[1], 30);
	}
	if ((t = tm_model_find_tensor(m, "fl3"))) {
		CU_ASSERT_EQUAL(t->ndim, 3);
		CU_ASSERT_EQUAL(t->shape[1], 6);
		CU_ASSERT_EQUAL(t->shape[2], 5);
	}
	if ((t = tm_model_find_tensor(m, "rs"))) {
		CU_ASSERT_EQUAL(t->ndim, 2);
		CU_ASSERT_EQUAL(t->shape[0], 12);
	}
	if ((n = node(m, "fc")))
		CU_ASSERT_EQUAL(n->n_inputs, 3);
	if ((n = node(m, "r6"))) {
		CU_ASSERT_EQUAL(n->op, TM_OP_CLIP);
		CU_ASSERT_EQUAL(n->attrs.clip_max, 6.0f);
	}
	tm_model_free(m);
}

static void
test_field_errors(void)
{
	fixtures();
	check_error("    - {name: d, op: dense, input: v}\n",
		    "PIPE:6:7: layer 'd': no 'weight:' given and "
		    "TMP/d.weight.npy does not exist; dense needs a weight "
		    "[out, in]");
	check_error("    - {name: q, op: conv2d, input: x}\n",
		    "PIPE:6:7: layer 'q': no 'weight:' given and "
		    "TMP/q.weight.npy does not exist; conv2d needs a weight "
		    "[O, C/groups, kh, kw]");
	check_error("    - {name: bn, op: batchnorm, input: x, "
		    "running_var: nope.npy}\n",
		    "PIPE:6:43: TMP/nope.npy: cannot open: No such file or "
		    "directory");
	check_error("    - {name: b2, op: batchnorm, input: x}\n",
		    "PIPE:6:7: layer 'b2': no 'running_mean:' given and "
		    "TMP/b2.running_mean.npy does not exist; batchnorm needs "
		    "the running mean");
	check_error("    - {name: a, op: add, input: x}\n",
		    "PIPE:6:7: layer 'a': no 'bias:' given and TMP/a.bias.npy "
		    "does not exist; add needs a second input or a constant "
		    "to add (the shape of one sample, or one that broadcasts "
		    "to it, such as [C, 1, 1])");
	check_error("    - {name: a, op: add, inputs: x x, bias: "
		    "offset.npy}\n",
		    "PIPE:6:39: layer 'a': add takes two inputs, or one input "
		    "and a constant 'bias', not both");
	check_error("    - {name: a, op: add, inputs: x v w}\n",
		    "PIPE:6:26: layer 'a': input 'w' is neither a model input "
		    "nor an earlier layer");
	check_error("    - {name: a, op: add, inputs: x v x}\n",
		    "PIPE:6:26: layer 'a': add takes two inputs, got 3");
	check_error("    - {name: a, op: add, input: x, inputs: x}\n",
		    "PIPE:6:36: layer 'a': give 'input' or 'inputs', not both");
	check_error("    - {name: r, op: relu, inputs: x}\n",
		    "PIPE:6:27: layer 'r': relu reads one 'input'; 'inputs' is "
		    "for add and concat");
	check_error("    - {name: r, op: relu}\n",
		    "PIPE:6:7: layer 'r': missing 'input' (the tensor it "
		    "reads)");
	check_error("    - {name: r, op: concat}\n",
		    "PIPE:6:7: layer 'r': missing 'input' (the tensor it "
		    "reads) or 'inputs'");
	check_error("    - {name: r, op: relu, input: x, stride: [2]}\n",
		    "PIPE:6:37: layer 'r': relu takes no 'stride'");
	check_error("    - {name: r, op: sigmoid, input: x, weight: w.npy}\n",
		    "PIPE:6:40: layer 'r': sigmoid takes no weights");
	check_error("    - {name: r, op: relu6, input: x, max: 3}\n",
		    "PIPE:6:38: layer 'r': relu6 takes no 'max'");
	check_error("    - {name: s, op: softmax, input: x, dim: 0}\n",
		    "PIPE:6:40: layer 's': dim 0 is the batch; tmpipe runs "
		    "softmax on one sample at a time (dims count the batch as "
		    "0, as in PyTorch: channels are 1)");
	check_error("    - {name: s, op: concat, inputs: x, axis: 0}\n",
		    "PIPE:6:40: layer 's': axis 0 is the batch; tmpipe runs "
		    "concat on one sample at a time (dims count the batch as "
		    "0, as in PyTorch: channels are 1)");
	check_error("    - {name: s, op: softmax, input: x, dim: 1, "
		    "axis: 1}\n",
		    "PIPE:6:48: layer 's': give 'dim' or 'axis', not both");
	check_error("    - {name: f, op: flatten, input: x, start_dim: 0}\n",
		    "PIPE:6:51: start_dim: '0' is not an integer of at least "
		    "1");
	check_error("    - {name: p, op: maxpool2d, input: x}\n",
		    "PIPE:6:7: layer 'p': maxpool2d needs 'kernel:' ([k] or "
		    "[kh, kw])");
	check_error("    - {name: p, op: maxpool2d, input: x, "
		    "kernel: [2, 2, 2]}\n",
		    "PIPE:6:42: layer 'p': kernel takes 1 or 2 values "
		    "([kernel] or [kernelh, kernelw]), got 3");
	check_error("    - {name: p, op: avgpool2d, input: x, kernel: [2], "
		    "padding: [1, 1, 1]}\n",
		    "PIPE:6:55: layer 'p': padding takes 1, 2 or 4 values "
		    "([p], [ph, pw] or [top, left, bottom, right]), got 3");
	check_error("    - {name: p, op: avgpool2d, input: x, kernel: [2], "
		    "dilation: [2]}\n",
		    "PIPE:6:55: layer 'p': avgpool2d takes no 'dilation'");
	check_error("    - {name: c, op: conv2d, input: x, kernel: [3]}\n",
		    "PIPE:6:39: layer 'c': kernel 3x3 does not match the "
		    "weight's 3x2");
	check_error("    - {name: k, op: clip, input: x}\n",
		    "PIPE:6:7: layer 'k': clip needs 'min:', 'max:' or both");
	check_error("    - {name: k, op: clip, input: x, min: 2, max: 1}\n",
		    "PIPE:6:45: layer 'k': max 1 is below min 2");
	check_error("    - {name: r, op: reshape, input: x}\n",
		    "PIPE:6:7: layer 'r': reshape needs 'shape:', the shape of "
		    "one sample without the batch (1 to 8 values)");
	check_error("    - {name: fc, op: dense, input: v, weight: "
		    "c.weight.npy}\n",
		    "PIPE:6:39: TMP/c.weight.npy: 'fc.weight' has 4 "
		    "dimensions, expected 2");
	check_error("    - {name: x2, op: relu, input: nothing}\n",
		    "PIPE:6:28: layer 'x2': input 'nothing' is neither a model "
		    "input nor an earlier layer");
	check_error("    - {name: x, op: relu, input: v}\n",
		    "PIPE:6:8: tensor 'x' is defined twice");
}

static const tm_test_case cnn_cases[] = {
	{ "the pipeline runs", test_runs },
	{ "every activation has a range", test_every_range },
	{ "minmax ranges are PyTorch's over calib.npy", test_minmax_ranges },
	{ "interpreter matches PyTorch on every tensor", test_interp },
	{ "PyTorch attributes on the nodes", test_cnn_attrs },
	{ NULL, NULL }
};

static const tm_test_case seq_cases[] = {
	{ "the tool's skeleton runs", test_seq_runs },
	{ "interpreter matches PyTorch on every tensor", test_seq_interp },
	{ "attributes from the skeleton", test_seq_attrs },
	{ NULL, NULL }
};

static const tm_test_case frontend_cases[] = {
	{ "every field onto the node", test_fields },
	{ "bad layers, at the user's line", test_field_errors },
	{ NULL, NULL }
};

int
main(void)
{
	char path[4096];
	tm_error err;
	int rc;

	tm_error_clear(&err);
	reg = tm_registry_new();
	if (!reg || tm_registry_scan(reg, NULL, NULL, NULL, &err)) {
		char msg[MSG_MAX];

		fprintf(stderr, "%s\n", tm_error_format(&err, msg, sizeof msg));
		tm_registry_free(reg);
		reg = NULL;
	}
	cnn = run_pipeline(data_path("pipeline.yaml", path, sizeof path),
			   &cnn_sum, NULL, 0);
	seq = run_pipeline(data_path("seq/pipeline.yaml", path, sizeof path),
			   &seq_sum, NULL, 0);
	if (tm_test_add_suite("cnn", cnn_cases) ||
	    tm_test_add_suite("seq", seq_cases) ||
	    tm_test_add_suite("npy frontend", frontend_cases))
		return 99;
	rc = tm_test_run();
	tm_run_summary_fini(&cnn_sum);
	tm_run_summary_fini(&seq_sum);
	tm_model_free(cnn);
	tm_model_free(seq);
	tm_registry_free(reg);
	return rc;
}
