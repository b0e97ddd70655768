/* tmpipe tests — the model IR and its shape inference (core/model.c). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include <tmpipe/model.h>

#include "runner.h"
#include "util_priv.h"

/* The XOR network of examples/xor: input [2] -> dense 2->4 (+bias) ->
 * relu -> dense 4->1 (+bias) -> sigmoid. */
static const float fc1_w[8] = { 1, 1, 1, 1, -1, -1, 0.5f, -0.5f };
static const float fc1_b[4] = { 0, -1, 0.25f, 0 };
static const float fc2_w[4] = { 1, -2, 0.5f, 1 };
static const float fc2_b[1] = { -0.5f };

static const int64_t shape_2[] = { 2 };
static const int64_t shape_4x2[] = { 4, 2 };
static const int64_t shape_4[] = { 4 };
static const int64_t shape_1x4[] = { 1, 4 };
static const int64_t shape_1[] = { 1 };

/* Adds the layers of the XOR model up to and including fc1/h1. */
static int
add_front(tm_model *m, tm_error *err)
{
	static const char *const fc1_in[] = { "input", "fc1.weight",
					      "fc1.bias" };
	static const char *const fc1_out[] = { "fc1" };
	static const char *const h1_in[] = { "fc1" };
	static const char *const h1_out[] = { "h1" };

	return tm_model_add_input(m, "input", 1, shape_2, err) ||
	       tm_model_add_const(m, "fc1.weight", 2, shape_4x2, fc1_w, err) ||
	       tm_model_add_const(m, "fc1.bias", 1, shape_4, fc1_b, err) ||
	       tm_model_add_node(m, "fc1", TM_OP_DENSE, fc1_in, 3, fc1_out, 1,
				 NULL, err) ||
	       tm_model_add_node(m, "h1", TM_OP_RELU, h1_in, 1, h1_out, 1, NULL,
				 err);
}

static tm_model *
xor_model(tm_error *err)
{
	static const char *const fc2_in[] = { "h1", "fc2.weight",
					      "fc2.bias" };
	static const char *const fc2_out[] = { "fc2" };
	static const char *const out_in[] = { "fc2" };
	static const char *const out_out[] = { "out" };
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return NULL;
	if (add_front(m, err) ||
	    tm_model_add_const(m, "fc2.weight", 2, shape_1x4, fc2_w, err) ||
	    tm_model_add_const(m, "fc2.bias", 1, shape_1, fc2_b, err) ||
	    tm_model_add_node(m, "fc2", TM_OP_DENSE, fc2_in, 3, fc2_out, 1,
			      NULL, err) ||
	    tm_model_add_node(m, "out", TM_OP_SIGMOID, out_in, 1, out_out, 1,
			      NULL, err))
		CU_FAIL("building the XOR model");
	return m;
}

static void
check_act(const tm_model *m, const char *name, int64_t features)
{
	tm_tensor *t = tm_model_find_tensor(m, name);

	CU_ASSERT_PTR_NOT_NULL(t);
	if (!t)
		return;
	CU_ASSERT_EQUAL(t->kind, TM_TENSOR_ACT);
	CU_ASSERT_EQUAL(t->dtype, TM_DTYPE_F32);
	CU_ASSERT_EQUAL(t->ndim, 1);
	CU_ASSERT_EQUAL(t->shape[0], features);
	CU_ASSERT_EQUAL(tm_tensor_numel(t), (size_t)features);
	CU_ASSERT_PTR_NULL(t->data);
}

static void
test_xor_build(void)
{
	tm_error err;
	tm_model *m;
	tm_tensor *t;
	tm_node *n;

	tm_error_clear(&err);
	m = xor_model(&err);
	if (!m)
		return;
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(m->n_tensors, 9);
	CU_ASSERT_EQUAL(m->n_nodes, 4);
	CU_ASSERT_EQUAL(m->n_inputs, 1);
	if (m->n_inputs == 1)
		CU_ASSERT_EQUAL(m->inputs[0],
				tm_model_tensor_index(m, "input"));
	/* Before finalize, activation shapes are unknown. */
	t = tm_model_find_tensor(m, "h1");
	CU_ASSERT(t && t->ndim == 0);
	CU_ASSERT_EQUAL(m->n_outputs, 0);

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);

	t = tm_model_find_tensor(m, "input");
	CU_ASSERT(t && t->kind == TM_TENSOR_INPUT && t->ndim == 1 &&
		  t->shape[0] == 2);
	check_act(m, "fc1", 4);
	check_act(m, "h1", 4);
	check_act(m, "fc2", 1);
	check_act(m, "out", 1);

	/* Constants are copies of the caller's data, shape as given. */
	t = tm_model_find_tensor(m, "fc1.weight");
	CU_ASSERT_PTR_NOT_NULL(t);
	if (t) {
		CU_ASSERT_EQUAL(t->kind, TM_TENSOR_CONST);
		CU_ASSERT_EQUAL(t->ndim, 2);
		CU_ASSERT_EQUAL(t->shape[0], 4);
		CU_ASSERT_EQUAL(t->shape[1], 2);
		CU_ASSERT_EQUAL(tm_tensor_numel(t), 8);
		CU_ASSERT_PTR_NOT_NULL(t->data);
		CU_ASSERT(t->data != fc1_w);
		CU_ASSERT(t->data && memcmp(t->data, fc1_w, sizeof fc1_w) == 0);
	}
	t = tm_model_find_tensor(m, "fc2.bias");
	CU_ASSERT(t && t->data && t->data[0] == -0.5f);

	/* The outputs: the one activation no node reads, the sigmoid's. */
	CU_ASSERT_EQUAL(m->n_outputs, 1);
	if (m->n_outputs == 1)
		CU_ASSERT_EQUAL(m->outputs[0], tm_model_tensor_index(m, "out"));

	/* Its range is fixed by the op, not observed. */
	t = tm_model_find_tensor(m, "out");
	CU_ASSERT(t && t->fixed_range && t->has_range);
	CU_ASSERT(t && t->lo == 0.0f && t->hi == 1.0f);
	t = tm_model_find_tensor(m, "h1");
	CU_ASSERT(t && !t->fixed_range && !t->has_range);

	/* Nodes keep their operands as tensor indices, in order. */
	n = m->n_nodes == 4 ? m->nodes[2] : NULL;
	CU_ASSERT_PTR_NOT_NULL(n);
	if (n) {
		CHECK_STR(n->name, "fc2");
		CU_ASSERT_EQUAL(n->op, TM_OP_DENSE);
		CU_ASSERT_EQUAL(n->n_inputs, 3);
		CU_ASSERT_EQUAL(n->n_outputs, 1);
		CU_ASSERT_EQUAL(n->inputs[0], tm_model_tensor_index(m, "h1"));
		CU_ASSERT_EQUAL(n->inputs[1],
				tm_model_tensor_index(m, "fc2.weight"));
		CU_ASSERT_EQUAL(n->inputs[2],
				tm_model_tensor_index(m, "fc2.bias"));
		CU_ASSERT_EQUAL(n->outputs[0], tm_model_tensor_index(m, "fc2"));
	}
	CU_ASSERT_EQUAL(tm_model_tensor_index(m, "nope"), (size_t)-1);
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "nope"));

	/* Finalizing again changes nothing. */
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);
	CU_ASSERT_EQUAL(m->n_outputs, 1);
	tm_model_free(m);
}

static void
test_add_node_returns_node(void)
{
	static const char *const in[] = { "x" };
	static const char *const out[] = { "y" };
	tm_node *n = NULL;
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_4, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "y", TM_OP_RELU, in, 1, out, 1,
					  &n, &err),
			TM_OK);
	CU_ASSERT_PTR_NOT_NULL(n);
	CU_ASSERT(m->n_nodes == 1 && n == m->nodes[0]);
	tm_model_free(m);
}

/* Two activations nobody reads: both are outputs, in tensor order. */
static void
test_two_outputs(void)
{
	static const char *const in[] = { "x" };
	static const char *const a[] = { "a" };
	static const char *const b[] = { "b" };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_4, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "a", TM_OP_RELU, in, 1, a, 1,
					  NULL, &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "b", TM_OP_SIGMOID, in, 1, b, 1,
					  NULL, &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_OK);
	CU_ASSERT_EQUAL(m->n_outputs, 2);
	if (m->n_outputs == 2) {
		CU_ASSERT_EQUAL(m->outputs[0], tm_model_tensor_index(m, "a"));
		CU_ASSERT_EQUAL(m->outputs[1], tm_model_tensor_index(m, "b"));
	}
	tm_model_free(m);
}

/* --- shape errors ------------------------------------------------------- */

/* The XOR front, then fc2 with the given weight (and bias) shapes. */
static void
check_fc2_error(int64_t w_out, int64_t w_in, int64_t b_len, int with_bias,
		const char *want)
{
	static const float zeros[16];
	static const char *const fc2_in[] = { "h1", "fc2.weight",
					      "fc2.bias" };
	static const char *const fc2_out[] = { "fc2" };
	const int64_t ws[] = { w_out, w_in }, bs[] = { b_len };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(add_front(m, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "fc2.weight", 2, ws, zeros,
					   &err),
			TM_OK);
	if (with_bias)
		CU_ASSERT_EQUAL(tm_model_add_const(m, "fc2.bias", 1, bs, zeros,
						   &err),
				TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "fc2", TM_OP_DENSE, fc2_in,
					  with_bias ? 3 : 2, fc2_out, 1, NULL,
					  &err),
			TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, want);
	tm_model_free(m);
}

static void
test_weight_input_mismatch(void)
{
	check_fc2_error(1, 3, 1, 1,
			"fc2: weight [1,3] expects input of 3 features, got 4 "
			"from 'h1'");
	check_fc2_error(2, 5, 0, 0,
			"fc2: weight [2,5] expects input of 5 features, got 4 "
			"from 'h1'");
}

static void
test_bias_mismatch(void)
{
	check_fc2_error(1, 4, 2, 1,
			"fc2: bias 'fc2.bias' must be a vector of 1 values to "
			"match weight [1,4]");
	check_fc2_error(3, 4, 1, 1,
			"fc2: bias 'fc2.bias' must be a vector of 3 values to "
			"match weight [3,4]");
}

/* One node "n" reading the named operands of: inputs x [2] and img
 * [2,2], constants w [2,2] and v [2]. */
static void
check_node_error(tm_op op, const char *const *in, size_t n_in,
		 const char *want)
{
	static const float zeros[16];
	static const int64_t s22[] = { 2, 2 };
	static const char *const out[] = { "y" };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_2, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "img", 2, s22, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "w", 2, s22, zeros, &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "v", 1, shape_2, zeros, &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "n", op, in, n_in, out, 1, NULL,
					  &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, want);
	tm_model_free(m);
}

static void
test_operand_errors(void)
{
	static const char *const x_only[] = { "x" };
	static const char *const x_v[] = { "x", "v" };
	static const char *const x_x[] = { "x", "x" };
	static const char *const img_w[] = { "img", "w" };
	static const char *const w_only[] = { "w" };
	static const char *const x_w_v_v[] = { "x", "w", "v", "v" };

	check_node_error(TM_OP_DENSE, x_only, 1,
			 "n: dense takes (input, weight[, bias]) and one "
			 "output");
	check_node_error(TM_OP_DENSE, x_w_v_v, 4,
			 "n: dense takes (input, weight[, bias]) and one "
			 "output");
	check_node_error(TM_OP_DENSE, x_v, 2,
			 "n: weight 'v' must be a 2-D constant [out, in] "
			 "(PyTorch Linear layout)");
	check_node_error(TM_OP_DENSE, x_x, 2,
			 "n: weight 'x' must be a 2-D constant [out, in] "
			 "(PyTorch Linear layout)");
	check_node_error(TM_OP_DENSE, img_w, 2,
			 "n: input 'img' has shape [2,2]; dense needs a vector "
			 "of 2 features");
	check_node_error(TM_OP_RELU, w_only, 1,
			 "n: input 'w' is a constant, not an activation");
	check_node_error(TM_OP_SIGMOID, x_v, 2,
			 "n: sigmoid takes 1 input and one output");
}

/* --- construction errors ------------------------------------------------ */

static void
test_nonfinite_const(void)
{
	const float nan_data[4] = { 1, 2, NAN, 4 };
	const float inf_data[4] = { 1, INFINITY, 3, 4 };
	const float ninf_data[4] = { 1, 2, 3, -INFINITY };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "w", 1, shape_4, nan_data,
					   &err),
			TM_ERR_NUMERIC);
	CHECK_ERR(&err, "tensor 'w': element 2 is NaN");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "w", 1, shape_4, inf_data,
					   &err),
			TM_ERR_NUMERIC);
	CHECK_ERR(&err, "tensor 'w': element 1 is infinite");
	/* Only prod(shape) elements are read: the first two are finite. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "b", 1, shape_2, nan_data, &err),
			TM_OK);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "w", 2, shape_1x4, ninf_data,
					   &err),
			TM_ERR_NUMERIC);
	CHECK_ERR(&err, "tensor 'w': element 3 is infinite");
	/* A failed call has taken nothing: only "b" is in the model. */
	CU_ASSERT_EQUAL(m->n_tensors, 1);
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "w"));
	tm_model_free(m);
}

static void
test_defined_twice(void)
{
	static const float zeros[4];
	static const char *const in[] = { "x" };
	static const char *const out_x[] = { "x" };
	static const char *const out_y[] = { "y" };
	static const char *const out_z[] = { "z" };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_4, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_4, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'x' is defined twice");
	CU_ASSERT_EQUAL(m->n_inputs, 1);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "x", 1, shape_4, zeros, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'x' is defined twice");
	CU_ASSERT_EQUAL(m->n_tensors, 1);

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "y", TM_OP_RELU, in, 1, out_y, 1,
					  NULL, &err),
			TM_OK);
	/* The same node name twice. */
	CU_ASSERT_EQUAL(tm_model_add_node(m, "y", TM_OP_RELU, in, 1, out_z, 1,
					  NULL, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "node 'y' is defined twice");
	/* An output that already exists. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "r", TM_OP_RELU, in, 1, out_x, 1,
					  NULL, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'x' is defined twice");
	CU_ASSERT_EQUAL(m->n_tensors, 2);
	tm_model_free(m);
}

/* STYLE.md: "A failed call has taken nothing". A node whose output
 * cannot be created must not stay in the model half-built. */
static void
test_failed_add_node_takes_nothing(void)
{
	static const char *const in[] = { "x" };
	static const char *const out_x[] = { "x" };
	static const char *const out_yy[] = { "y", "y" };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_4, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "r", TM_OP_RELU, in, 1, out_x, 1,
					  NULL, &err),
			TM_ERR_INVALID);
	CU_ASSERT_EQUAL(m->n_nodes, 0);
	CU_ASSERT_EQUAL(m->n_tensors, 1);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "s", TM_OP_RELU, in, 1, out_yy, 2,
					  NULL, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "s: output 'y' is named twice");
	CU_ASSERT_EQUAL(m->n_nodes, 0);
	CU_ASSERT_EQUAL(m->n_tensors, 1);
	CU_ASSERT_PTR_NULL(tm_model_find_tensor(m, "y"));
	/* The name is still free for a correct call. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "r", TM_OP_RELU, in, 1, out_yy, 1,
					  NULL, &err),
			TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	tm_model_free(m);
}

static void
test_undefined_input(void)
{
	static const char *const in[] = { "x", "w1" };
	static const char *const out[] = { "y" };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_4, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "fc1", TM_OP_DENSE, in, 2, out, 1,
					  NULL, &err),
			TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, "fc1: input 'w1' is not defined by an earlier layer "
			"or input");
	CU_ASSERT_EQUAL(m->n_nodes, 0);
	CU_ASSERT_EQUAL(m->n_tensors, 1);

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "bad", (tm_op)42, in, 1, out, 1,
					  NULL, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "node 'bad': unknown op 42");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_node(m, "bad", (tm_op)0, in, 1, out, 1,
					  NULL, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "node 'bad': unknown op 0");
	CU_ASSERT_EQUAL(m->n_nodes, 0);
	tm_model_free(m);
}

static void
test_bad_shapes(void)
{
	static const int64_t nine[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	static const int64_t zero_dim[] = { 3, 0 };
	static const int64_t neg_dim[] = { -2 };
	static const int64_t huge_dim[] = { ((int64_t)1 << 31) + 1 };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 9, nine, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'x': 9 dimensions (at most 8)");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 2, zero_dim, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'x': dimension 1 is 0");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, neg_dim, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'x': dimension 0 is -2");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, huge_dim, &err),
			TM_ERR_INVALID);
	CHECK_ERR(&err, "tensor 'x': dimension 0 is 2147483649");
	CU_ASSERT_EQUAL(m->n_tensors, 0);
	CU_ASSERT_EQUAL(m->n_inputs, 0);
	tm_model_free(m);
}

static void
test_empty_models(void)
{
	static const float one[1] = { 1 };
	tm_error err;
	tm_model *m = tm_model_new();

	CU_ASSERT_PTR_NOT_NULL(m);
	if (!m)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "the model declares no input");
	/* Constants alone are no input either. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_const(m, "c", 1, shape_1, one, &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "the model declares no input");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_model_add_input(m, "x", 1, shape_2, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_ERR_INVALID);
	CHECK_ERR(&err, "the model has no layers");
	CU_ASSERT_EQUAL(m->n_outputs, 0);
	tm_model_free(m);
	tm_model_free(NULL);
}

/* A node whose op was changed after tm_model_add_node checked it (a
 * buggy transform): finalize refuses it as an internal error instead
 * of indexing its table of shape rules out of range. */
static void
test_no_shape_rule(void)
{
	static const tm_op bad[] = { TM_OP_COUNT, (tm_op)0 };
	tm_error err;

	for (size_t i = 0; i < TM_ARRAY_LEN(bad); i++) {
		tm_model *m = xor_model(&err);

		if (!m)
			return;
		/* The second node, h1 (a relu). */
		m->nodes[1]->op = bad[i];
		tm_error_clear(&err);
		CU_ASSERT_EQUAL(tm_model_finalize(m, &err), TM_ERR_INTERNAL);
		CHECK_ERR(&err, "h1: no shape rule for op ?");
		tm_model_free(m);
	}
}

static void
test_op_names(void)
{
	tm_op op;

	for (unsigned i = 1; i < TM_OP_COUNT; i++) {
		const char *name = tm_op_name((tm_op)i);

		op = (tm_op)0;
		CU_ASSERT_STRING_NOT_EQUAL(name, "?");
		CU_ASSERT_EQUAL(tm_op_from_name(name, &op), TM_OK);
		CU_ASSERT_EQUAL(op, (tm_op)i);
	}
	CHECK_STR(tm_op_name(TM_OP_DENSE), "dense");
	CHECK_STR(tm_op_name(TM_OP_RELU), "relu");
	CHECK_STR(tm_op_name(TM_OP_SIGMOID), "sigmoid");
	CHECK_STR(tm_op_name((tm_op)0), "?");
	CHECK_STR(tm_op_name(TM_OP_COUNT), "?");
	op = TM_OP_RELU;
	CU_ASSERT_EQUAL(tm_op_from_name("conv3d", &op), TM_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(tm_op_from_name("Dense", &op), TM_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(tm_op_from_name("", &op), TM_ERR_NOT_FOUND);
	CU_ASSERT_EQUAL(tm_op_from_name("?", &op), TM_ERR_NOT_FOUND);
	/* A failed lookup leaves op alone. */
	CU_ASSERT_EQUAL(op, TM_OP_RELU);
	CU_ASSERT_EQUAL(tm_op_from_name("dense", &op), TM_OK);
	CU_ASSERT_EQUAL(op, TM_OP_DENSE);
}

/* A constant as dense's data input: "has shape [2]; dense needs a vector
 * of 2 features" contradicts itself. Say what is wrong, as relu does. */
static void
test_dense_const_input(void)
{
	static const char *const v_w[] = { "v", "w" };

	check_node_error(TM_OP_DENSE, v_w, 2,
			 "n: input 'v' is a constant, not an activation");
}

static const tm_test_case cases[] = {
	{ "XOR model: shapes, outputs, sigmoid range", test_xor_build },
	{ "add_node returns the node", test_add_node_returns_node },
	{ "unread activations are outputs", test_two_outputs },
	{ "dense weight vs input features", test_weight_input_mismatch },
	{ "dense bias length", test_bias_mismatch },
	{ "operand errors", test_operand_errors },
	{ "NaN and Inf constants", test_nonfinite_const },
	{ "names defined twice", test_defined_twice },
	{ "undefined input, unknown op", test_undefined_input },
	{ "bad shapes", test_bad_shapes },
	{ "no input, no layers", test_empty_models },
	{ "op names round trip", test_op_names },
	{ "an op with no shape rule", test_no_shape_rule },
	{ "regression: a failed add_node takes nothing",
	  test_failed_add_node_takes_nothing },
	{ "regression: dense on a constant input", test_dense_const_input },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("model", cases))
		return 99;
	return tm_test_run();
}
