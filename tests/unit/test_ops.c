/* tmpipe tests — the float reference kernels (core/ops/) against PyTorch.
 *
 * Every folder tests/data/ops/<case>/ is written by tests/gen/ops_ref.py:
 * raw little-endian float32 inputs and output for a batch of n samples and
 * a meta.txt describing the node (see the generator's docstring). Each case
 * builds a one-node model with the public API, checks the inferred output
 * shape, runs the node through tm_priv_op_run and compares element by
 * element: |got - want| <= 1e-5 * max(1, |want|).
 *
 * The output and scratch buffers start as NaN, so an element a kernel
 * forgets to write (or an im2col pad it forgets to zero) fails the case.
 * With TMPIPE_TEST_VERBOSE set, every case prints its largest error as a
 * fraction of the tolerance.
 */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include <tmpipe/model.h>

#include "ops/ops_priv.h"
#include "runner.h"

#define REL_TOL 1e-5
#define MAX_INPUTS 8

/* The cases, one CUnit test each; test_case_list checks this table
 * against the folders in tests/data/ops. */
#define OPS_CASES(X) \
	X(add_act_chan) X(add_chan_const) X(add_full_const) X(add_h_const) \
	X(add_same) X(add_same_1d) X(add_scalar_const) X(add_w_const) \
	X(avgpool_2x2) X(avgpool_asym_excl) X(avgpool_asym_incl) \
	X(avgpool_pad_excl) X(avgpool_pad_incl) \
	X(batchnorm_1d) X(batchnorm_chw) X(batchnorm_eps) \
	X(clip_range) X(clip_relu6) \
	X(concat_1d) X(concat_ch) X(concat_h) X(concat_one) X(concat_w_neg) \
	X(conv_1x1) X(conv_1x1_nobias) X(conv_3x3) X(conv_3x3_s2_p1) \
	X(conv_3x3_s2_p1_nobias) X(conv_asym_pads) X(conv_depthwise) \
	X(conv_depthwise_mult2) X(conv_depthwise_s2_nobias) \
	X(conv_dilation2) X(conv_group2) X(conv_k_eq_input) \
	X(conv_nonsquare) X(conv_wide_k) \
	X(dense_1x1) X(dense_bias) X(dense_nobias) X(dense_wide) \
	X(flatten_axis0) X(flatten_axis1) X(flatten_axis2) \
	X(global_avgpool) X(global_avgpool_1x1) X(global_avgpool_row) \
	X(leaky_relu) X(leaky_relu_default) \
	X(matmul_2d) X(matmul_3d) X(matmul_k1) X(matmul_vec) \
	X(maxpool_1x1_s2) X(maxpool_2x2) X(maxpool_3x3_s2_p1) \
	X(maxpool_dilation) X(maxpool_negative_pad) \
	X(relu_1d) X(relu_chw) \
	X(reshape_minus1) X(reshape_to_1d) X(reshape_up) X(reshape_zero) \
	X(reshape_zero_mid) \
	X(sigmoid) X(tanh) \
	X(softmax_1d) X(softmax_axis0) X(softmax_axis1) X(softmax_axis_m2) \
	X(softmax_large_axis0) X(softmax_large_last) X(softmax_last) \
	X(softmax_last_pos)

typedef struct case_input {
	int is_const;
	int ndim;
	int64_t shape[TM_MAX_DIMS];
} case_input;

typedef struct case_meta {
	tm_op op;
	size_t n;
	size_t n_inputs;
	case_input in[MAX_INPUTS];
	int out_ndim;
	int64_t out_shape[TM_MAX_DIMS];
	tm_attrs attrs;		/* the keys meta.txt sets */
	/* Which attrs meta.txt sets; the others keep the node's defaults. */
	int has_stride, has_pads, has_dilation, has_group, has_kernel;
	int has_axis, has_alpha, has_clip, has_epsilon, has_cip, has_shape;
} case_meta;

static int verbose;

static size_t
shape_numel(int ndim, const int64_t *shape)
{
	size_t n = 1;

	for (int i = 0; i < ndim; i++)
		n *= (size_t)shape[i];
	return n;
}

/* Parses up to max integers from s; returns how many, or -1 on junk. */
static int
parse_ints(const char *s, int64_t *v, int max)
{
	int k = 0;
	char *end;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '\n')
			return k;
		if (k == max)
			return -1;
		v[k] = strtoll(s, &end, 10);
		if (end == s)
			return -1;
		s = end;
		k++;
	}
}

static int
parse_floats(const char *s, float *v, int max)
{
	int k = 0;
	char *end;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '\n')
			return k;
		if (k == max)
			return -1;
		v[k] = strtof(s, &end);
		if (end == s)
			return -1;
		s = end;
		k++;
	}
}

/* "ndim d0 d1 ..." into ndim and shape; 0 when well formed. */
static int
parse_shape(const char *s, int *ndim, int64_t *shape)
{
	int64_t v[TM_MAX_DIMS + 1];
	int k = parse_ints(s, v, TM_MAX_DIMS + 1);

	if (k < 1 || v[0] < 0 || v[0] > TM_MAX_DIMS || k != v[0] + 1)
		return -1;
	*ndim = (int)v[0];
	memcpy(shape, v + 1, (size_t)*ndim * sizeof *shape);
	return 0;
}

/* One meta.txt line; 0 when understood. */
static int
parse_line(case_meta *mt, const char *key, const char *val)
{
	tm_attrs *a = &mt->attrs;
	int64_t v[4];
	float f[2];
	unsigned i;

	if (strcmp(key, "op") == 0)
		return tm_op_from_name(val, &mt->op) ? -1 : 0;
	if (strcmp(key, "n") == 0) {
		if (parse_ints(val, v, 1) != 1 || v[0] < 1)
			return -1;
		mt->n = (size_t)v[0];
		return 0;
	}
	if (strcmp(key, "inputs") == 0) {
		if (parse_ints(val, v, 1) != 1 || v[0] < 1 ||
		    v[0] > MAX_INPUTS)
			return -1;
		mt->n_inputs = (size_t)v[0];
		return 0;
	}
	if (sscanf(key, "in%u", &i) == 1 && i < MAX_INPUTS) {
		case_input *in = &mt->in[i];

		if (strncmp(val, "act ", 4) == 0)
			in->is_const = 0;
		else if (strncmp(val, "const ", 6) == 0)
			in->is_const = 1;
		else
			return -1;
		return parse_shape(strchr(val, ' ') + 1, &in->ndim, in->shape);
	}
	if (strcmp(key, "out") == 0)
		return parse_shape(val, &mt->out_ndim, mt->out_shape);
	if (strcmp(key, "shape") == 0) {
		mt->has_shape = 1;
		return parse_shape(val, &a->shape_ndim, a->shape);
	}
	if (strcmp(key, "stride") == 0) {
		mt->has_stride = 1;
		return parse_ints(val, a->stride, 2) == 2 ? 0 : -1;
	}
	if (strcmp(key, "dilation") == 0) {
		mt->has_dilation = 1;
		return parse_ints(val, a->dilation, 2) == 2 ? 0 : -1;
	}
	if (strcmp(key, "kernel") == 0) {
		mt->has_kernel = 1;
		return parse_ints(val, a->kernel, 2) == 2 ? 0 : -1;
	}
	if (strcmp(key, "pads") == 0) {
		mt->has_pads = 1;
		return parse_ints(val, a->pads, 4) == 4 ? 0 : -1;
	}
	if (strcmp(key, "group") == 0) {
		mt->has_group = 1;
		return parse_ints(val, &a->group, 1) == 1 ? 0 : -1;
	}
	if (strcmp(key, "axis") == 0) {
		mt->has_axis = 1;
		return parse_ints(val, &a->axis, 1) == 1 ? 0 : -1;
	}
	if (strcmp(key, "count_include_pad") == 0) {
		mt->has_cip = 1;
		if (parse_ints(val, v, 1) != 1)
			return -1;
		a->count_include_pad = (int)v[0];
		return 0;
	}
	if (strcmp(key, "alpha") == 0) {
		mt->has_alpha = 1;
		return parse_floats(val, &a->alpha, 1) == 1 ? 0 : -1;
	}
	if (strcmp(key, "epsilon") == 0) {
		mt->has_epsilon = 1;
		return parse_floats(val, &a->epsilon, 1) == 1 ? 0 : -1;
	}
	if (strcmp(key, "clip") == 0) {
		mt->has_clip = 1;
		if (parse_floats(val, f, 2) != 2)
			return -1;
		a->clip_min = f[0];
		a->clip_max = f[1];
		return 0;
	}
	return -1;
}

static int
read_meta(const char *dir, case_meta *mt)
{
	char path[4200], line[512];
	unsigned lineno = 0;
	FILE *fp;
	int bad = 0;

	memset(mt, 0, sizeof *mt);
	snprintf(path, sizeof path, "%s/meta.txt", dir);
	fp = fopen(path, "r");
	if (!fp) {
		fprintf(stderr, "\n%s: cannot open\n", path);
		return -1;
	}
	while (!bad && fgets(line, sizeof line, fp)) {
		char *sp;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		sp = strchr(line, ' ');
		if (!sp) {
			bad = 1;
			break;
		}
		*sp = '\0';
		bad = parse_line(mt, line, sp + 1) != 0;
	}
	fclose(fp);
	if (!bad && (mt->op == 0 || mt->n == 0 || mt->n_inputs == 0 ||
		     mt->out_ndim == 0)) {
		fprintf(stderr, "\n%s: op, n, inputs or out missing\n", path);
		return -1;
	}
	if (bad) {
		fprintf(stderr, "\n%s:%u: not understood\n", path, lineno);
		return -1;
	}
	return 0;
}

/* Reads exactly count little-endian float32 values; NULL on error. */
static float *
read_f32(const char *path, size_t count)
{
	FILE *fp = fopen(path, "rb");
	unsigned char b[4];
	float *v;
	size_t i;

	if (!fp) {
		fprintf(stderr, "\n%s: cannot open\n", path);
		return NULL;
	}
	v = malloc((count ? count : 1) * sizeof *v);
	for (i = 0; v && i < count && fread(b, 1, 4, fp) == 4; i++) {
		uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
			     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;

		memcpy(&v[i], &u, sizeof u);
	}
	if (v && (i != count || fgetc(fp) != EOF)) {
		fprintf(stderr, "\n%s: expected %zu floats\n", path, count);
		free(v);
		v = NULL;
	}
	fclose(fp);
	return v;
}

static void
apply_attrs(tm_attrs *dst, const case_meta *mt)
{
	const tm_attrs *a = &mt->attrs;

	if (mt->has_stride)
		memcpy(dst->stride, a->stride, sizeof dst->stride);
	if (mt->has_pads)
		memcpy(dst->pads, a->pads, sizeof dst->pads);
	if (mt->has_dilation)
		memcpy(dst->dilation, a->dilation, sizeof dst->dilation);
	if (mt->has_kernel)
		memcpy(dst->kernel, a->kernel, sizeof dst->kernel);
	if (mt->has_group)
		dst->group = a->group;
	if (mt->has_axis)
		dst->axis = a->axis;
	if (mt->has_cip)
		dst->count_include_pad = a->count_include_pad;
	if (mt->has_alpha)
		dst->alpha = a->alpha;
	if (mt->has_epsilon)
		dst->epsilon = a->epsilon;
	if (mt->has_clip) {
		dst->clip_min = a->clip_min;
		dst->clip_max = a->clip_max;
	}
	if (mt->has_shape) {
		dst->shape_ndim = a->shape_ndim;
		memcpy(dst->shape, a->shape, sizeof dst->shape);
	}
}

static void
fill_nan(float *v, size_t count)
{
	for (size_t i = 0; i < count; i++)
		v[i] = NAN;
}

/* Compares got with want; prints the first few misses. */
static void
compare(const char *name, const float *got, const float *want, size_t count)
{
	double worst = 0.0;
	size_t bad = 0, worst_i = 0;

	for (size_t i = 0; i < count; i++) {
		double w = want[i], d = fabs((double)got[i] - w);
		double tol = REL_TOL * (fabs(w) > 1.0 ? fabs(w) : 1.0);

		if (!(d <= tol)) {
			if (bad < 5)
				fprintf(stderr, "\n%s: element %zu: got %.9g, "
					"want %.9g", name, i, (double)got[i],
					w);
			bad++;
		} else if (d / tol > worst) {
			worst = d / tol;
			worst_i = i;
		}
	}
	if (bad)
		fprintf(stderr, "\n%s: %zu of %zu elements outside "
			"1e-5 * max(1, |want|)\n", name, bad, count);
	else if (verbose)
		fprintf(stderr, "%-28s %6zu elements, worst %.3f of the "
			"tolerance (element %zu)\n", name, count, worst,
			worst_i);
	CU_ASSERT_EQUAL(bad, 0);
}

static void
run_case(const char *name)
{
	char dir[4096], path[4200], in_names[MAX_INPUTS][24];
	const char *in_ptrs[MAX_INPUTS];
	const char *const out_names[] = { "out" };
	float *data[MAX_INPUTS] = { NULL };
	const float *in[MAX_INPUTS];
	float *want = NULL, *got = NULL, *scratch = NULL;
	tm_model *m = NULL;
	tm_node *node = NULL;
	const tm_tensor *y;
	case_meta mt;
	tm_error err;
	tm_status st = TM_OK;
	size_t out_count, n_scratch;

	tm_error_clear(&err);
	snprintf(dir, sizeof dir, "%s/data/ops/%s", tm_test_srcdir(), name);
	if (read_meta(dir, &mt)) {
		CU_FAIL("meta.txt");
		return;
	}
	m = tm_model_new();
	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	for (size_t i = 0; i < mt.n_inputs && !st; i++) {
		const case_input *ci = &mt.in[i];
		size_t count = shape_numel(ci->ndim, ci->shape) *
			       (ci->is_const ? 1 : mt.n);

		snprintf(in_names[i], sizeof in_names[i], "in%zu", i);
		in_ptrs[i] = in_names[i];
		snprintf(path, sizeof path, "%s/input_%zu.bin", dir, i);
		data[i] = read_f32(path, count);
		if (!data[i]) {
			CU_FAIL("input file");
			goto done;
		}
		st = ci->is_const
			     ? tm_model_add_const(m, in_names[i], ci->ndim,
						  ci->shape, data[i], &err)
			     : tm_model_add_input(m, in_names[i], ci->ndim,
						  ci->shape, &err);
	}
	if (!st)
		st = tm_model_add_node(m, "node", mt.op, in_ptrs, mt.n_inputs,
				       out_names, 1, &node, &err);
	if (!st) {
		apply_attrs(&node->attrs, &mt);
		st = tm_model_finalize(m, &err);
	}
	if (st) {
		fprintf(stderr, "\n%s: %s\n", name, err.msg);
		CU_FAIL("model");
		goto done;
	}

	y = m->tensors[node->outputs[0]];
	CU_ASSERT_EQUAL(y->ndim, mt.out_ndim);
	if (y->ndim != mt.out_ndim ||
	    memcmp(y->shape, mt.out_shape,
		   (size_t)mt.out_ndim * sizeof *y->shape) != 0) {
		fprintf(stderr, "\n%s: inferred output shape differs from "
			"PyTorch's\n", name);
		CU_FAIL("output shape");
		goto done;
	}

	out_count = mt.n * shape_numel(mt.out_ndim, mt.out_shape);
	snprintf(path, sizeof path, "%s/output.bin", dir);
	want = read_f32(path, out_count);
	got = malloc(out_count * sizeof *got);
	n_scratch = tm_priv_op_scratch(m, node);
	scratch = malloc((n_scratch ? n_scratch : 1) * sizeof *scratch);
	if (!want || !got || !scratch) {
		CU_FAIL("output file or out of memory");
		goto done;
	}
	fill_nan(got, out_count);
	fill_nan(scratch, n_scratch);
	for (size_t i = 0; i < mt.n_inputs; i++)
		in[i] = mt.in[i].is_const
				? m->tensors[node->inputs[i]]->data
				: data[i];
	{
		tm_op_args a = { m, node, mt.n, in, got, scratch };

		st = tm_priv_op_run(&a, &err);
	}
	if (st) {
		fprintf(stderr, "\n%s: %s\n", name, err.msg);
		CU_FAIL("tm_priv_op_run");
		goto done;
	}
	compare(name, got, want, out_count);
done:
	for (size_t i = 0; i < MAX_INPUTS; i++)
		free(data[i]);
	free(want);
	free(got);
	free(scratch);
	tm_model_free(m);
}

#define DEFINE_CASE(c) \
	static void test_##c(void) { run_case(#c); }
OPS_CASES(DEFINE_CASE)

#define NAME_CASE(c) #c,
static const char *const case_names[] = { OPS_CASES(NAME_CASE) NULL };

/* Every generated folder has a test and every test a folder. */
static void
test_case_list(void)
{
	char dir[4096];
	size_t seen = 0, listed = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/data/ops", tm_test_srcdir());
	d = opendir(dir);
	CU_ASSERT_PTR_NOT_NULL(d);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		int found = 0;

		if (de->d_name[0] == '.')
			continue;
		for (size_t i = 0; case_names[i]; i++)
			found |= strcmp(case_names[i], de->d_name) == 0;
		if (!found)
			fprintf(stderr, "\n%s/%s: no test in test_ops.c\n",
				dir, de->d_name);
		CU_ASSERT(found);
		seen++;
	}
	closedir(d);
	while (case_names[listed])
		listed++;
	CU_ASSERT_EQUAL(seen, listed);
}

/* ---------------------------------------------------------- bad shapes */

static const float zeros[256];

static void
check_msg(const tm_error *err, tm_status st, const char *want)
{
	int same = st == TM_ERR_INVALID && strcmp(err->msg, want) == 0;

	if (!same)
		fprintf(stderr, "\ngot  %d '%s'\nwant %d '%s'\n", (int)st,
			err->msg, (int)TM_ERR_INVALID, want);
	CU_ASSERT(same);
}

/* A model of one node over activation x (and optionally a second
 * activation or a zero constant "b"); attrs edits the node's attributes
 * before finalizing, whose error must be want. */
static void
expect_bad(tm_op op, int x_ndim, const int64_t *x_shape, int b_kind,
	   int b_ndim, const int64_t *b_shape, void (*attrs)(tm_attrs *),
	   const char *want)
{
	static const char *const ins[] = { "x", "b" };
	static const char *const outs[] = { "y" };
	tm_model *m;
	tm_node *node = NULL;
	tm_error err;
	tm_status st;

	/* zeros[] must hold the whole constant. */
	CU_ASSERT_FATAL(b_kind != 2 || shape_numel(b_ndim, b_shape) <=
					       sizeof zeros / sizeof *zeros);
	m = tm_model_new();
	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	st = tm_model_add_input(m, "x", x_ndim, x_shape, &err);
	if (!st && b_kind == 1)
		st = tm_model_add_input(m, "b", b_ndim, b_shape, &err);
	if (!st && b_kind == 2)
		st = tm_model_add_const(m, "b", b_ndim, b_shape, zeros, &err);
	if (!st)
		st = tm_model_add_node(m, op == TM_OP_MAXPOOL2D ? "pool"
					  : tm_op_name(op), op, ins,
				       b_kind ? 2 : 1, outs, 1, &node, &err);
	CU_ASSERT_EQUAL(st, TM_OK);
	if (!st) {
		if (attrs)
			attrs(&node->attrs);
		st = tm_model_finalize(m, &err);
		check_msg(&err, st, want);
	}
	tm_model_free(m);
}

static const int64_t s345[] = { 3, 4, 5 };

static void
test_bad_conv_channels(void)
{
	static const int64_t w[] = { 4, 2, 3, 3 };

	expect_bad(TM_OP_CONV2D, 3, s345, 2, 4, w, NULL,
		   "conv2d: weight [4,2,3,3] expects 2 input channels "
		   "(group 1), got 3 from 'x' [3,4,5]");
}

static void
group2(tm_attrs *a)
{
	a->group = 2;
}

static void
test_bad_conv_group(void)
{
	static const int64_t w[] = { 4, 1, 1, 1 };

	expect_bad(TM_OP_CONV2D, 3, s345, 2, 4, w, group2,
		   "conv2d: group 2 must divide the 3 input and 4 output "
		   "channels");
}

static void
kernel_5x5(tm_attrs *a)
{
	a->kernel[0] = a->kernel[1] = 5;
}

static void
test_bad_pool_window(void)
{
	expect_bad(TM_OP_MAXPOOL2D, 3, s345, 0, 0, NULL, kernel_5x5,
		   "pool: a 5x5 window (dilation 1x1) does not fit input "
		   "'x' [3,4,5] with its padding");
}

static void
kernel_2x2_pad_2(tm_attrs *a)
{
	a->kernel[0] = a->kernel[1] = 2;
	a->pads[2] = 2;
}

static void
test_bad_pool_pad(void)
{
	expect_bad(TM_OP_MAXPOOL2D, 3, s345, 0, 0, NULL, kernel_2x2_pad_2,
		   "pool: padding must be smaller than the 2x2 kernel");
}

static void
test_bad_add_const(void)
{
	static const int64_t b[] = { 4 };

	expect_bad(TM_OP_ADD, 3, s345, 2, 1, b, NULL,
		   "add: cannot add 'x' [3,4,5] and 'b' [4] (dimensions do "
		   "not broadcast)");
}

static void
test_bad_add_act(void)
{
	static const int64_t b[] = { 2, 1, 5 };

	expect_bad(TM_OP_ADD, 3, s345, 1, 3, b, NULL,
		   "add: cannot add 'x' [3,4,5] and 'b' [2,1,5] (dimensions "
		   "do not broadcast)");
}

static void
shape_7_m1(tm_attrs *a)
{
	a->shape_ndim = 2;
	a->shape[0] = 7;
	a->shape[1] = -1;
}

static void
shape_2_3_4(tm_attrs *a)
{
	a->shape_ndim = 3;
	a->shape[0] = 2;
	a->shape[1] = 3;
	a->shape[2] = 4;
}

static void
test_bad_reshape_count(void)
{
	expect_bad(TM_OP_RESHAPE, 3, s345, 0, 0, NULL, shape_7_m1,
		   "reshape: cannot reshape 'x' [3,4,5] (60 values) to the "
		   "requested shape");
	expect_bad(TM_OP_RESHAPE, 3, s345, 0, 0, NULL, shape_2_3_4,
		   "reshape: cannot reshape 'x' [3,4,5] (60 values) to the "
		   "requested shape");
}

static void
test_bad_matmul(void)
{
	static const int64_t b[] = { 4, 2 };

	expect_bad(TM_OP_MATMUL, 3, s345, 2, 2, b, NULL,
		   "matmul: 'x' [3,4,5] cannot multiply 'b' [4,2] (5 != 4)");
}

static void
test_bad_concat(void)
{
	static const int64_t b[] = { 3, 2, 5 };

	expect_bad(TM_OP_CONCAT, 3, s345, 1, 3, b, NULL,
		   "concat: cannot concatenate 'b' [3,2,5] with 'x' [3,4,5] "
		   "along axis 0");
}

static void
axis_3(tm_attrs *a)
{
	a->axis = 3;
}

static void
test_bad_softmax_axis(void)
{
	expect_bad(TM_OP_SOFTMAX, 3, s345, 0, 0, NULL, axis_3,
		   "softmax: softmax axis 3 (dim 4 with the batch) is outside "
		   "the 3 dimensions of one sample of 'x'");
}

#define TABLE_CASE(c) { #c, test_##c },
static const tm_test_case cases[] = {
	{ "case_list", test_case_list },
	OPS_CASES(TABLE_CASE)
	{ "bad_conv_channels", test_bad_conv_channels },
	{ "bad_conv_group", test_bad_conv_group },
	{ "bad_pool_window", test_bad_pool_window },
	{ "bad_pool_pad", test_bad_pool_pad },
	{ "bad_add_const", test_bad_add_const },
	{ "bad_add_act", test_bad_add_act },
	{ "bad_reshape_count", test_bad_reshape_count },
	{ "bad_matmul", test_bad_matmul },
	{ "bad_concat", test_bad_concat },
	{ "bad_softmax_axis", test_bad_softmax_axis },
	{ NULL, NULL }
};

int
main(void)
{
	const char *v = getenv("TMPIPE_TEST_VERBOSE");

	verbose = v && *v && strcmp(v, "0") != 0;
	tm_priv_blas_init();
	if (tm_test_add_suite("ops", cases))
		return 99;
	return tm_test_run();
}
