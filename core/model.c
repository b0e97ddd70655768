/* tmpipe — the model IR: tensors, nodes, shape inference. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/model.h>

#include "util_priv.h"

#define NO_INDEX ((size_t)-1)

static const char *const op_names[TM_OP_COUNT] = {
	[TM_OP_DENSE] = "dense",
	[TM_OP_RELU] = "relu",
	[TM_OP_SIGMOID] = "sigmoid",
	[TM_OP_MATMUL] = "matmul",
	[TM_OP_CONV2D] = "conv2d",
	[TM_OP_BATCHNORM] = "batchnorm",
	[TM_OP_CLIP] = "clip",
	[TM_OP_LEAKY_RELU] = "leaky_relu",
	[TM_OP_TANH] = "tanh",
	[TM_OP_SOFTMAX] = "softmax",
	[TM_OP_MAXPOOL2D] = "maxpool2d",
	[TM_OP_AVGPOOL2D] = "avgpool2d",
	[TM_OP_GLOBAL_AVGPOOL] = "global_avgpool",
	[TM_OP_FLATTEN] = "flatten",
	[TM_OP_RESHAPE] = "reshape",
	[TM_OP_ADD] = "add",
	[TM_OP_CONCAT] = "concat",
};

const char *
tm_op_name(tm_op op)
{
	if ((unsigned)op >= TM_OP_COUNT || !op_names[op])
		return "?";
	return op_names[op];
}

tm_status
tm_op_from_name(const char *name, tm_op *op)
{
	for (unsigned i = 1; i < TM_OP_COUNT; i++) {
		if (op_names[i] && strcmp(op_names[i], name) == 0) {
			*op = (tm_op)i;
			return TM_OK;
		}
	}
	return TM_ERR_NOT_FOUND;
}

tm_model *
tm_model_new(void)
{
	return calloc(1, sizeof(tm_model));
}

static void
qparams_fini(tm_qparams *q)
{
	free(q->scales);
	free(q->zero_points);
	memset(q, 0, sizeof *q);
}

static void
tensor_free(tm_tensor *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->data);
	free(t->observer);
	qparams_fini(&t->q);
	free(t->q8);
	free(t->q32);
	free(t->bn_beta);
	free(t->bn_gamma);
	free(t->qorig);
	free(t);
}

static void
node_free(tm_node *n)
{
	if (!n)
		return;
	free(n->name);
	free(n->inputs);
	free(n->outputs);
	free(n->multiplier);
	free(n->shift);
	free(n->lut);
	free(n);
}

void
tm_model_free(tm_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_tensors; i++)
		tensor_free(m->tensors[i]);
	for (size_t i = 0; i < m->n_nodes; i++)
		node_free(m->nodes[i]);
	free(m->tensors);
	free(m->nodes);
	free(m->inputs);
	free(m->outputs);
	free(m->source);
	free(m);
}

size_t
tm_model_tensor_index(const tm_model *m, const char *name)
{
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i]->name, name) == 0)
			return i;
	return NO_INDEX;
}

tm_tensor *
tm_model_find_tensor(const tm_model *m, const char *name)
{
	size_t i = tm_model_tensor_index(m, name);

	return i == NO_INDEX ? NULL : m->tensors[i];
}

size_t
tm_tensor_numel(const tm_tensor *t)
{
	size_t n = 1;

	for (int i = 0; i < t->ndim; i++)
		n *= (size_t)t->shape[i];
	return n;
}

static tm_status
check_shape(const char *name, int ndim, const int64_t *shape, tm_error *err)
{
	if (ndim < 0 || ndim > TM_MAX_DIMS)
		return tm_error_set(err, TM_ERR_INVALID,
				    "tensor '%s': %d dimensions (at most %d)",
				    name, ndim, TM_MAX_DIMS);
	for (int i = 0; i < ndim; i++)
		if (shape[i] <= 0 || shape[i] > ((int64_t)1 << 31))
			return tm_error_set(err, TM_ERR_INVALID,
					    "tensor '%s': dimension %d is %lld",
					    name, i, (long long)shape[i]);
	return TM_OK;
}

/* Appends a new tensor; its name must be new. */
static tm_tensor *
add_tensor(tm_model *m, const char *name, tm_tensor_kind kind, int ndim,
	   const int64_t *shape, tm_error *err)
{
	tm_tensor **v, *t;

	if (tm_model_find_tensor(m, name)) {
		tm_error_set(err, TM_ERR_INVALID,
			     "tensor '%s' is defined twice", name);
		return NULL;
	}
	if (check_shape(name, ndim, shape, err))
		return NULL;
	v = realloc(m->tensors, (m->n_tensors + 1) * sizeof *v);
	if (!v)
		goto nomem;
	m->tensors = v;
	t = calloc(1, sizeof *t);
	if (!t)
		goto nomem;
	t->name = tm_priv_strdup(name, err);
	if (!t->name) {
		free(t);
		return NULL;
	}
	t->kind = kind;
	t->dtype = TM_DTYPE_F32;
	t->ndim = ndim;
	if (ndim)
		memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	m->tensors[m->n_tensors++] = t;
	return t;
nomem:
	tm_error_set(err, TM_ERR_NOMEM, "tensor '%s': out of memory", name);
	return NULL;
}

static tm_status
push_index(size_t **v, size_t *n, size_t idx, tm_error *err)
{
	size_t *nv = realloc(*v, (*n + 1) * sizeof *nv);

	if (!nv)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	nv[(*n)++] = idx;
	*v = nv;
	return TM_OK;
}

tm_status
tm_model_add_input(tm_model *m, const char *name, int ndim,
		   const int64_t *shape, tm_error *err)
{
	tm_tensor *t = add_tensor(m, name, TM_TENSOR_INPUT, ndim, shape, err);

	if (!t)
		return err ? err->code : TM_ERR_INVALID;
	return push_index(&m->inputs, &m->n_inputs, m->n_tensors - 1, err);
}

tm_status
tm_model_add_const(tm_model *m, const char *name, int ndim,
		   const int64_t *shape, const float *data, tm_error *err)
{
	tm_tensor *t;
	size_t n = 1;

	for (int i = 0; i < ndim && i < TM_MAX_DIMS; i++)
		n *= shape[i] > 0 ? (size_t)shape[i] : 0;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(data[i]))
			return tm_error_set(err, TM_ERR_NUMERIC,
					    "tensor '%s': element %zu is %s",
					    name, i,
					    isnan(data[i]) ? "NaN" : "infinite");
	t = add_tensor(m, name, TM_TENSOR_CONST, ndim, shape, err);
	if (!t)
		return err ? err->code : TM_ERR_INVALID;
	t->data = malloc(n * sizeof *data);
	if (!t->data)
		return tm_error_set(err, TM_ERR_NOMEM,
				    "tensor '%s': out of memory", name);
	memcpy(t->data, data, n * sizeof *data);
	return TM_OK;
}

tm_status
tm_model_add_node(tm_model *m, const char *name, tm_op op,
		  const char *const *inputs, size_t n_inputs,
		  const char *const *outputs, size_t n_outputs,
		  tm_node **out, tm_error *err)
{
	tm_node **v, *n;
	tm_status st;

	if ((unsigned)op >= TM_OP_COUNT || !op_names[op])
		return tm_error_set(err, TM_ERR_INVALID,
				    "node '%s': unknown op %d", name, (int)op);
	for (size_t i = 0; i < m->n_nodes; i++)
		if (strcmp(m->nodes[i]->name, name) == 0)
			return tm_error_set(err, TM_ERR_INVALID,
					    "node '%s' is defined twice", name);
	for (size_t i = 0; i < n_inputs; i++)
		if (!tm_model_find_tensor(m, inputs[i]))
			return tm_error_set(err, TM_ERR_NOT_FOUND,
					    "%s: input '%s' is not defined "
					    "by an earlier layer or input",
					    name, inputs[i]);
	/* Every check before the first change: a failed call leaves the
	 * model as it was. */
	for (size_t i = 0; i < n_outputs; i++) {
		if (tm_model_find_tensor(m, outputs[i]))
			return tm_error_set(err, TM_ERR_INVALID,
					    "tensor '%s' is defined twice",
					    outputs[i]);
		for (size_t k = 0; k < i; k++)
			if (strcmp(outputs[k], outputs[i]) == 0)
				return tm_error_set(err, TM_ERR_INVALID,
						    "%s: output '%s' is named "
						    "twice", name, outputs[i]);
	}
	v = realloc(m->nodes, (m->n_nodes + 1) * sizeof *v);
	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	m->nodes = v;
	n = calloc(1, sizeof *n);
	if (!n)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	n->name = tm_priv_strdup(name, err);
	n->op = op;
	n->attrs.stride[0] = n->attrs.stride[1] = 1;
	n->attrs.dilation[0] = n->attrs.dilation[1] = 1;
	n->attrs.group = 1;
	n->attrs.axis = op == TM_OP_SOFTMAX ? -1 : 0;
	n->attrs.alpha = 0.01f;	/* PyTorch's LeakyReLU default */
	n->attrs.clip_min = -INFINITY;
	n->attrs.clip_max = INFINITY;
	n->attrs.epsilon = 1e-5f;	/* PyTorch's BatchNorm2d default */
	if (!n->name) {
		free(n);
		return TM_ERR_NOMEM;
	}
	{
		size_t tensors_before = m->n_tensors;

		m->nodes[m->n_nodes++] = n;
		st = TM_OK;
		for (size_t i = 0; i < n_inputs && !st; i++)
			st = push_index(&n->inputs, &n->n_inputs,
					tm_model_tensor_index(m, inputs[i]),
					err);
		for (size_t i = 0; i < n_outputs && !st; i++) {
			/* Shape unknown until tm_model_finalize. */
			if (!add_tensor(m, outputs[i], TM_TENSOR_ACT, 0, NULL,
					err))
				st = err && err->code ? err->code
						      : TM_ERR_NOMEM;
			else
				st = push_index(&n->outputs, &n->n_outputs,
						m->n_tensors - 1, err);
		}
		if (st) {
			/* Out of memory half way: undo. */
			while (m->n_tensors > tensors_before)
				tensor_free(m->tensors[--m->n_tensors]);
			node_free(m->nodes[--m->n_nodes]);
			return st;
		}
	}
	if (out)
		*out = n;
	return TM_OK;
}

static void
format_shape(const tm_tensor *t, char *buf, size_t size)
{
	size_t len = 0;

	len += (size_t)snprintf(buf, size, "[");
	for (int i = 0; i < t->ndim && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%lld",
					i ? "," : "", (long long)t->shape[i]);
	if (len < size)
		snprintf(buf + len, size - len, "]");
}

static tm_status
infer_dense(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *x, *w, *b, *y;
	char ws[64], xs[64];

	if (n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: dense takes (input, weight[, bias]) "
				    "and one output", n->name);
	x = m->tensors[n->inputs[0]];
	w = m->tensors[n->inputs[1]];
	y = m->tensors[n->outputs[0]];
	if (w->kind != TM_TENSOR_CONST || w->ndim != 2)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: weight '%s' must be a 2-D constant "
				    "[out, in] (PyTorch Linear layout)",
				    n->name, w->name);
	if (x->kind == TM_TENSOR_CONST)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: input '%s' is a constant, not an "
				    "activation", n->name, x->name);
	format_shape(w, ws, sizeof ws);
	format_shape(x, xs, sizeof xs);
	if (x->ndim != 1)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: input '%s' has shape %s; dense needs "
				    "a vector of %lld features", n->name,
				    x->name, xs, (long long)w->shape[1]);
	if (x->shape[0] != w->shape[1])
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: weight %s expects input of %lld "
				    "features, got %lld from '%s'", n->name,
				    ws, (long long)w->shape[1],
				    (long long)x->shape[0], x->name);
	if (n->n_inputs == 3) {
		b = m->tensors[n->inputs[2]];
		if (b->kind != TM_TENSOR_CONST || b->ndim != 1 ||
		    b->shape[0] != w->shape[0])
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: bias '%s' must be a vector "
					    "of %lld values to match weight %s",
					    n->name, b->name,
					    (long long)w->shape[0], ws);
	}
	y->ndim = 1;
	y->shape[0] = w->shape[0];
	return TM_OK;
}

/* Sets the fixed output range of ops whose output range does not depend
 * on the data (QUANT.md): they are never observed. */
static void
fix_range(tm_tensor *y, float lo, float hi)
{
	y->fixed_range = 1;
	y->has_range = 1;
	y->lo = lo;
	y->hi = hi;
}

static tm_status
want_io(const tm_node *n, size_t min_in, size_t max_in, tm_error *err)
{
	if (n->n_inputs < min_in || n->n_inputs > max_in || n->n_outputs != 1) {
		if (min_in == max_in)
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: %s takes %zu input%s and one "
					    "output", n->name,
					    tm_op_name(n->op), min_in,
					    min_in == 1 ? "" : "s");
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: %s takes %zu to %zu inputs and one "
				    "output", n->name, tm_op_name(n->op),
				    min_in, max_in);
	}
	return TM_OK;
}

static tm_status
want_activation(const tm_node *n, const tm_tensor *x, int min_ndim,
		int max_ndim, const char *what, tm_error *err)
{
	char xs[96];

	if (x->kind == TM_TENSOR_CONST)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: input '%s' is a constant, not an "
				    "activation", n->name, x->name);
	if (x->ndim < min_ndim || x->ndim > max_ndim) {
		format_shape(x, xs, sizeof xs);
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: input '%s' has shape %s; %s needs %s",
				    n->name, x->name, xs, tm_op_name(n->op),
				    what);
	}
	return TM_OK;
}

static tm_status
want_const(const tm_node *n, const tm_tensor *c, int ndim, const char *what,
	   tm_error *err)
{
	if (c->kind != TM_TENSOR_CONST || c->ndim != ndim)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: '%s' must be a %d-D constant (%s)",
				    n->name, c->name, ndim, what);
	return TM_OK;
}

static void
copy_shape(tm_tensor *y, const tm_tensor *x)
{
	y->ndim = x->ndim;
	memcpy(y->shape, x->shape, sizeof y->shape);
}

/* "axis 1 (dim 2 with the batch)": attribute axes count one sample's
 * dimensions, PyTorch dims count the batch too. */
static const char *
axis_text(int64_t axis, char *buf, size_t size)
{
	if (axis >= 0)
		snprintf(buf, size, "axis %lld (dim %lld with the batch)",
			 (long long)axis, (long long)axis + 1);
	else
		snprintf(buf, size, "axis %lld", (long long)axis);
	return buf;
}

static tm_status
infer_elementwise(tm_model *m, tm_node *n, tm_error *err)
{
	char at[64];
	tm_tensor *x, *y;

	x = m->tensors[n->inputs[0]];
	y = m->tensors[n->outputs[0]];
	copy_shape(y, x);
	switch (n->op) {
	case TM_OP_SIGMOID:
		/* QUANT.md: sigmoid (1/256, -128), tanh (1/128, 0),
		 * softmax (1/256, -128). */
		fix_range(y, 0.0f, 1.0f);
		break;
	case TM_OP_TANH:
		fix_range(y, -1.0f, 1.0f);
		break;
	case TM_OP_SOFTMAX: {
		int64_t a = n->attrs.axis < 0 ? n->attrs.axis + x->ndim
					      : n->attrs.axis;

		if (x->ndim == 0 || a < 0 || a >= x->ndim)
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: softmax %s is outside the %d "
					    "dimensions of one sample of '%s'",
					    n->name,
					    axis_text(n->attrs.axis, at,
						      sizeof at),
					    x->ndim, x->name);
		fix_range(y, 0.0f, 1.0f);
		break;
	}
	case TM_OP_CLIP:
		if (!(n->attrs.clip_min <= n->attrs.clip_max))
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: clip range [%g, %g] is empty",
					    n->name,
					    (double)n->attrs.clip_min,
					    (double)n->attrs.clip_max);
		break;
	default:
		break;
	}
	return TM_OK;
}

static tm_status
infer_matmul(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *x, *b, *y;
	char xs[96], bs[96];
	tm_status st;

	x = m->tensors[n->inputs[0]];
	b = m->tensors[n->inputs[1]];
	y = m->tensors[n->outputs[0]];
	st = want_const(n, b, 2, "[K, N]", err);
	if (st)
		return st;
	if (x->shape[x->ndim - 1] != b->shape[0]) {
		format_shape(x, xs, sizeof xs);
		format_shape(b, bs, sizeof bs);
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: '%s' %s cannot multiply '%s' %s "
				    "(%lld != %lld)", n->name, x->name, xs,
				    b->name, bs,
				    (long long)x->shape[x->ndim - 1],
				    (long long)b->shape[0]);
	}
	copy_shape(y, x);
	y->shape[y->ndim - 1] = b->shape[1];
	return TM_OK;
}

/* Output size of a window along one axis (ONNX Conv/Pool, ceil_mode 0):
 * floor((in + pad_begin + pad_end - dilation (k - 1) - 1) / stride) + 1. */
static int64_t
window_out(int64_t in, int64_t k, int64_t stride, int64_t p0, int64_t p1,
	   int64_t dil)
{
	int64_t span = in + p0 + p1 - dil * (k - 1) - 1;

	if (span < 0)
		return 0;
	return span / stride + 1;
}

static tm_status
check_window(const tm_node *n, int64_t kh, int64_t kw, tm_error *err)
{
	const tm_attrs *a = &n->attrs;

	if (kh < 1 || kw < 1 || a->stride[0] < 1 || a->stride[1] < 1 ||
	    a->dilation[0] < 1 || a->dilation[1] < 1)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: kernel %lldx%lld, stride %lldx%lld "
				    "and dilation %lldx%lld must all be "
				    "positive", n->name, (long long)kh,
				    (long long)kw, (long long)a->stride[0],
				    (long long)a->stride[1],
				    (long long)a->dilation[0],
				    (long long)a->dilation[1]);
	for (int i = 0; i < 4; i++)
		if (a->pads[i] < 0)
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: negative padding", n->name);
	/* ONNX pools: a pad must be smaller than the window, or a whole
	 * window could see padding only. */
	if ((n->op == TM_OP_MAXPOOL2D || n->op == TM_OP_AVGPOOL2D) &&
	    (a->pads[0] >= kh || a->pads[2] >= kh || a->pads[1] >= kw ||
	     a->pads[3] >= kw))
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: padding must be smaller than the "
				    "%lldx%lld kernel", n->name,
				    (long long)kh, (long long)kw);
	return TM_OK;
}

static tm_status
set_window_shape(const tm_node *n, const tm_tensor *x, tm_tensor *y,
		 int64_t c_out, int64_t kh, int64_t kw, tm_error *err)
{
	const tm_attrs *a = &n->attrs;
	int64_t ho = window_out(x->shape[1], kh, a->stride[0], a->pads[0],
				a->pads[2], a->dilation[0]);
	int64_t wo = window_out(x->shape[2], kw, a->stride[1], a->pads[1],
				a->pads[3], a->dilation[1]);
	char xs[96];

	if (ho < 1 || wo < 1) {
		format_shape(x, xs, sizeof xs);
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: a %lldx%lld window (dilation "
				    "%lldx%lld) does not fit input '%s' %s "
				    "with its padding", n->name,
				    (long long)kh, (long long)kw,
				    (long long)a->dilation[0],
				    (long long)a->dilation[1], x->name, xs);
	}
	y->ndim = 3;
	y->shape[0] = c_out;
	y->shape[1] = ho;
	y->shape[2] = wo;
	return TM_OK;
}

static tm_status
infer_conv(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *x, *w, *y;
	int64_t g = n->attrs.group;
	char xs[96], ws[96];
	tm_status st;

	x = m->tensors[n->inputs[0]];
	w = m->tensors[n->inputs[1]];
	y = m->tensors[n->outputs[0]];
	st = want_const(n, w, 4, "[O, C/group, kh, kw], PyTorch's "
			       "Conv2d layout", err);
	if (st)
		return st;
	format_shape(x, xs, sizeof xs);
	format_shape(w, ws, sizeof ws);
	if (g < 1 || x->shape[0] % g || w->shape[0] % g)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: group %lld must divide the %lld input "
				    "and %lld output channels", n->name,
				    (long long)g, (long long)x->shape[0],
				    (long long)w->shape[0]);
	if (w->shape[1] * g != x->shape[0])
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: weight %s expects %lld input "
				    "channels (group %lld), got %lld from "
				    "'%s' %s", n->name, ws,
				    (long long)(w->shape[1] * g),
				    (long long)g, (long long)x->shape[0],
				    x->name, xs);
	if (n->n_inputs == 3) {
		tm_tensor *b = m->tensors[n->inputs[2]];

		if (b->kind != TM_TENSOR_CONST || b->ndim != 1 ||
		    b->shape[0] != w->shape[0])
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: bias '%s' must be a vector "
					    "of %lld values to match weight %s",
					    n->name, b->name,
					    (long long)w->shape[0], ws);
	}
	st = check_window(n, w->shape[2], w->shape[3], err);
	if (st)
		return st;
	return set_window_shape(n, x, y, w->shape[0], w->shape[2],
				w->shape[3], err);
}

static tm_status
infer_pool(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *x, *y;
	tm_status st;

	x = m->tensors[n->inputs[0]];
	y = m->tensors[n->outputs[0]];
	if (n->op == TM_OP_GLOBAL_AVGPOOL) {
		y->ndim = 3;
		y->shape[0] = x->shape[0];
		y->shape[1] = y->shape[2] = 1;
		return TM_OK;
	}
	st = check_window(n, n->attrs.kernel[0], n->attrs.kernel[1], err);
	if (st)
		return st;
	if (n->op == TM_OP_AVGPOOL2D &&
	    (n->attrs.dilation[0] != 1 || n->attrs.dilation[1] != 1))
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "%s: avgpool2d with dilation is not "
				    "supported", n->name);
	return set_window_shape(n, x, y, x->shape[0], n->attrs.kernel[0],
				n->attrs.kernel[1], err);
}

static float
i_min_var(const tm_tensor *v)
{
	float lo = 0.0f;

	for (size_t i = 0; i < tm_tensor_numel(v); i++)
		lo = v->data[i] < lo ? v->data[i] : lo;
	return lo;
}

static tm_status
infer_batchnorm(tm_model *m, tm_node *n, tm_error *err)
{
	static const char *const names[4] = { "weight (gamma)",
					       "bias (beta)", "running mean",
					       "running variance" };
	tm_tensor *x, *y;

	x = m->tensors[n->inputs[0]];
	y = m->tensors[n->outputs[0]];
	for (int i = 0; i < 4; i++) {
		tm_tensor *c = m->tensors[n->inputs[1 + i]];

		if (c->kind != TM_TENSOR_CONST || c->ndim != 1 ||
		    c->shape[0] != x->shape[0])
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: %s '%s' must be a vector of "
					    "%lld values, one per channel of "
					    "'%s'", n->name, names[i], c->name,
					    (long long)x->shape[0], x->name);
	}
	if (i_min_var(m->tensors[n->inputs[4]]) < 0.0f)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: running variance '%s' has a "
				    "negative value", n->name,
				    m->tensors[n->inputs[4]]->name);
	if (!(n->attrs.epsilon >= 0.0f))
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: epsilon %g is negative", n->name,
				    (double)n->attrs.epsilon);
	copy_shape(y, x);
	return TM_OK;
}

static int64_t
shape_prod(const int64_t *shape, int from, int to)
{
	int64_t p = 1;

	for (int i = from; i < to; i++)
		p *= shape[i];
	return p;
}

static tm_status
infer_flatten(tm_model *m, tm_node *n, tm_error *err)
{
	char at[64];
	tm_tensor *x, *y;
	int64_t a;

	x = m->tensors[n->inputs[0]];
	y = m->tensors[n->outputs[0]];
	a = n->attrs.axis < 0 ? n->attrs.axis + x->ndim : n->attrs.axis;
	if (a < 0 || a > x->ndim)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: flatten %s is outside the %d "
				    "dimensions of one sample of '%s'",
				    n->name,
				    axis_text(n->attrs.axis, at, sizeof at),
				    x->ndim, x->name);
	if (a == 0) {
		y->ndim = 1;
		y->shape[0] = shape_prod(x->shape, 0, x->ndim);
	} else {
		y->ndim = 2;
		y->shape[0] = shape_prod(x->shape, 0, (int)a);
		y->shape[1] = shape_prod(x->shape, (int)a, x->ndim);
	}
	return TM_OK;
}

static tm_status
infer_reshape(tm_model *m, tm_node *n, tm_error *err)
{
	const tm_attrs *a = &n->attrs;
	tm_tensor *x, *y;
	int64_t known = 1, total;
	int infer = -1;
	char xs[96];

	x = m->tensors[n->inputs[0]];
	y = m->tensors[n->outputs[0]];
	if (a->shape_ndim < 1 || a->shape_ndim > TM_MAX_DIMS)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: reshape needs a target shape of 1 "
				    "to %d dimensions", n->name, TM_MAX_DIMS);
	total = shape_prod(x->shape, 0, x->ndim);
	y->ndim = a->shape_ndim;
	for (int i = 0; i < a->shape_ndim; i++) {
		int64_t d = a->shape[i];

		/* ONNX: 0 copies the input's dimension, -1 is inferred. */
		if (d == 0 && i < x->ndim)
			d = x->shape[i];
		if (d == -1) {
			if (infer >= 0)
				return tm_error_set(err, TM_ERR_INVALID,
						    "%s: reshape has more "
						    "than one -1", n->name);
			infer = i;
			continue;
		}
		if (d < 1)
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: reshape dimension %d is %lld",
					    n->name, i, (long long)a->shape[i]);
		y->shape[i] = d;
		known *= d;
	}
	if (infer >= 0 && known > 0 && total % known == 0)
		y->shape[infer] = total / known;
	if ((infer >= 0 && (known == 0 || total % known)) ||
	    (infer < 0 && known != total)) {
		format_shape(x, xs, sizeof xs);
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: cannot reshape '%s' %s (%lld values) "
				    "to the requested shape", n->name,
				    x->name, xs, (long long)total);
	}
	return TM_OK;
}

static tm_status
infer_add(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *a, *b, *y;
	char as[96], bs[96];
	int nd;

	a = m->tensors[n->inputs[0]];
	b = m->tensors[n->inputs[1]];
	y = m->tensors[n->outputs[0]];
	/* numpy broadcasting, dimensions aligned from the right. */
	nd = a->ndim > b->ndim ? a->ndim : b->ndim;
	y->ndim = nd;
	for (int i = 0; i < nd; i++) {
		int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
		int64_t da = ia >= 0 ? a->shape[ia] : 1;
		int64_t db = ib >= 0 ? b->shape[ib] : 1;

		if (da != db && da != 1 && db != 1) {
			format_shape(a, as, sizeof as);
			format_shape(b, bs, sizeof bs);
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: cannot add '%s' %s and '%s' "
					    "%s (dimensions do not broadcast)",
					    n->name, a->name, as, b->name, bs);
		}
		y->shape[i] = da > db ? da : db;
	}
	return TM_OK;
}

static tm_status
infer_concat(tm_model *m, tm_node *n, tm_error *err)
{
	char at[64];
	tm_tensor *x0, *y;
	int64_t ax, sum = 0;
	char xs[96], x0s[96];

	if (n->n_inputs < 1 || n->n_outputs != 1)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: concat takes one or more inputs and "
				    "one output", n->name);
	x0 = m->tensors[n->inputs[0]];
	y = m->tensors[n->outputs[0]];
	ax = n->attrs.axis < 0 ? n->attrs.axis + x0->ndim : n->attrs.axis;
	if (ax < 0 || ax >= x0->ndim)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: concat %s is outside the %d "
				    "dimensions of one sample of '%s'",
				    n->name,
				    axis_text(n->attrs.axis, at, sizeof at),
				    x0->ndim, x0->name);
	for (size_t i = 0; i < n->n_inputs; i++) {
		tm_tensor *x = m->tensors[n->inputs[i]];
		int same = x->ndim == x0->ndim;

		for (int d = 0; same && d < x->ndim; d++)
			if (d != ax && x->shape[d] != x0->shape[d])
				same = 0;
		if (!same) {
			format_shape(x, xs, sizeof xs);
			format_shape(x0, x0s, sizeof x0s);
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: cannot concatenate '%s' %s "
					    "with '%s' %s along axis %lld",
					    n->name, x->name, xs, x0->name,
					    x0s, (long long)ax);
		}
		sum += x->shape[ax];
	}
	copy_shape(y, x0);
	y->shape[ax] = sum;
	return TM_OK;
}

typedef tm_status infer_fn(tm_model *m, tm_node *n, tm_error *err);

/* Each op's shape rule. What most share is checked before infer runs:
 * min_in to max_in inputs and one output (want_io), then the first
 * input an activation of min_ndim to max_ndim dimensions (what: the
 * shape wanted, for the message; want_activation). max_in 0: infer
 * checks everything itself, with messages of its own. */
typedef struct shape_rule {
	infer_fn *infer;
	size_t min_in, max_in;
	int min_ndim, max_ndim;
	const char *what;
} shape_rule;

#define ANY_ACT 0, TM_MAX_DIMS, "an activation"
#define CHW 3, 3, "[C, H, W]"

static const shape_rule shape_rules[TM_OP_COUNT] = {
	[TM_OP_DENSE] = { infer_dense, 0, 0, 0, 0, NULL },
	[TM_OP_RELU] = { infer_elementwise, 1, 1, ANY_ACT },
	[TM_OP_SIGMOID] = { infer_elementwise, 1, 1, ANY_ACT },
	[TM_OP_MATMUL] = { infer_matmul, 2, 2, 1, TM_MAX_DIMS,
			   "at least one dimension" },
	[TM_OP_CONV2D] = { infer_conv, 2, 3, CHW },
	[TM_OP_BATCHNORM] = { infer_batchnorm, 5, 5, 1, TM_MAX_DIMS,
			      "[C, ...]" },
	[TM_OP_CLIP] = { infer_elementwise, 1, 1, ANY_ACT },
	[TM_OP_LEAKY_RELU] = { infer_elementwise, 1, 1, ANY_ACT },
	[TM_OP_TANH] = { infer_elementwise, 1, 1, ANY_ACT },
	[TM_OP_SOFTMAX] = { infer_elementwise, 1, 1, ANY_ACT },
	[TM_OP_MAXPOOL2D] = { infer_pool, 1, 1, CHW },
	[TM_OP_AVGPOOL2D] = { infer_pool, 1, 1, CHW },
	[TM_OP_GLOBAL_AVGPOOL] = { infer_pool, 1, 1, CHW },
	[TM_OP_FLATTEN] = { infer_flatten, 1, 1, ANY_ACT },
	[TM_OP_RESHAPE] = { infer_reshape, 1, 1, ANY_ACT },
	[TM_OP_ADD] = { infer_add, 2, 2, ANY_ACT },
	[TM_OP_CONCAT] = { infer_concat, 0, 0, 0, 0, NULL },
};

#undef ANY_ACT
#undef CHW

/* Checks node n and sets its output's shape, by its op's rule. */
static tm_status
infer_node(tm_model *m, tm_node *n, tm_error *err)
{
	const shape_rule *r;
	tm_status st;

	if ((unsigned)n->op >= TM_OP_COUNT || !shape_rules[n->op].infer)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "%s: no shape rule for op %s", n->name,
				    tm_op_name(n->op));
	r = &shape_rules[n->op];
	if (r->max_in) {
		st = want_io(n, r->min_in, r->max_in, err);
		if (!st)
			st = want_activation(n, m->tensors[n->inputs[0]],
					     r->min_ndim, r->max_ndim, r->what,
					     err);
		if (st)
			return st;
	}
	return r->infer(m, n, err);
}

tm_status
tm_model_finalize(tm_model *m, tm_error *err)
{
	tm_status st;

	if (m->n_inputs == 0)
		return tm_error_set(err, TM_ERR_INVALID,
				    "the model declares no input");
	if (m->n_nodes == 0)
		return tm_error_set(err, TM_ERR_INVALID,
				    "the model has no layers");
	for (size_t i = 0; i < m->n_nodes; i++) {
		st = infer_node(m, m->nodes[i], err);
		if (st)
			return st;
	}
	if (m->n_outputs)
		return TM_OK;
	/* Outputs: activations that no node consumes. */
	for (size_t t = 0; t < m->n_tensors; t++) {
		int used = 0;

		if (m->tensors[t]->kind != TM_TENSOR_ACT)
			continue;
		for (size_t i = 0; i < m->n_nodes && !used; i++)
			for (size_t k = 0; k < m->nodes[i]->n_inputs; k++)
				if (m->nodes[i]->inputs[k] == t)
					used = 1;
		if (!used) {
			st = push_index(&m->outputs, &m->n_outputs, t, err);
			if (st)
				return st;
		}
	}
	return TM_OK;
}

/* --- Rewriting the graph ------------------------------------------------ */

size_t
tm_model_producer(const tm_model *m, size_t t)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		for (size_t k = 0; k < m->nodes[i]->n_outputs; k++)
			if (m->nodes[i]->outputs[k] == t)
				return i;
	return NO_INDEX;
}

size_t
tm_model_tensor_uses(const tm_model *m, size_t t)
{
	size_t uses = 0;

	for (size_t i = 0; i < m->n_nodes; i++)
		for (size_t k = 0; k < m->nodes[i]->n_inputs; k++)
			uses += m->nodes[i]->inputs[k] == t;
	for (size_t k = 0; k < m->n_outputs; k++)
		uses += m->outputs[k] == t;
	return uses;
}

int
tm_model_is_output(const tm_model *m, size_t t)
{
	for (size_t k = 0; k < m->n_outputs; k++)
		if (m->outputs[k] == t)
			return 1;
	return 0;
}

/* Reads of tensor t by nodes other than node skip. */
static size_t
reads_elsewhere(const tm_model *m, size_t t, size_t skip)
{
	size_t reads = 0;

	for (size_t i = 0; i < m->n_nodes; i++)
		for (size_t k = 0; i != skip && k < m->nodes[i]->n_inputs; k++)
			reads += m->nodes[i]->inputs[k] == t;
	return reads;
}

/* Deletes tensor t, which nothing refers to any more, and renumbers the
 * later ones everywhere. */
static void
delete_tensor(tm_model *m, size_t t)
{
	tensor_free(m->tensors[t]);
	memmove(m->tensors + t, m->tensors + t + 1,
		(m->n_tensors - t - 1) * sizeof *m->tensors);
	m->n_tensors--;
	for (size_t i = 0; i < m->n_nodes; i++) {
		tm_node *n = m->nodes[i];

		for (size_t k = 0; k < n->n_inputs; k++)
			n->inputs[k] -= n->inputs[k] > t;
		for (size_t k = 0; k < n->n_outputs; k++)
			n->outputs[k] -= n->outputs[k] > t;
		/* Meaningful only once quantized; renumbered all the same. */
		n->requant_out -= n->requant_out > t;
	}
	for (size_t k = 0; k < m->n_inputs; k++)
		m->inputs[k] -= m->inputs[k] > t;
	for (size_t k = 0; k < m->n_outputs; k++)
		m->outputs[k] -= m->outputs[k] > t;
}

static int
cmp_desc(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

tm_status
tm_model_remove_node(tm_model *m, size_t i, tm_error *err)
{
	tm_node *n;
	size_t x, y, *dead, n_dead = 0, w = 0;
	int x_is_output = 0;

	if (i >= m->n_nodes)
		return tm_error_set(err, TM_ERR_INVALID,
				    "cannot remove node %zu: the model has %zu",
				    i, m->n_nodes);
	n = m->nodes[i];
	if (n->n_outputs != 1 || n->n_inputs < 1)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: cannot remove a node without exactly "
				    "one input and one output", n->name);
	x = n->inputs[0];
	y = n->outputs[0];
	if (m->tensors[x]->kind == TM_TENSOR_CONST)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: cannot remove: its input '%s' is a "
				    "constant, so its output would have no "
				    "producer", n->name, m->tensors[x]->name);
	/* Allocated before the first change: a failure changes nothing. */
	dead = malloc((n->n_inputs + 1) * sizeof *dead);
	if (!dead)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	dead[n_dead++] = y;
	for (size_t k = 1; k < n->n_inputs; k++) {
		size_t c = n->inputs[k];
		int seen = 0;

		for (size_t j = 0; j < n_dead; j++)
			seen |= dead[j] == c;
		if (!seen && m->tensors[c]->kind == TM_TENSOR_CONST &&
		    reads_elsewhere(m, c, i) == 0)
			dead[n_dead++] = c;
	}

	/* Readers of y read x; x takes y's place among the outputs. */
	for (size_t j = 0; j < m->n_nodes; j++)
		for (size_t k = 0; k < m->nodes[j]->n_inputs; k++)
			if (m->nodes[j]->inputs[k] == y)
				m->nodes[j]->inputs[k] = x;
	for (size_t k = 0; k < m->n_outputs; k++)
		x_is_output |= m->outputs[k] == x;
	for (size_t k = 0; k < m->n_outputs; k++) {
		size_t o = m->outputs[k];

		if (o == y) {
			if (x_is_output)
				continue;
			o = x;
			x_is_output = 1;
		}
		m->outputs[w++] = o;
	}
	m->n_outputs = w;

	node_free(n);
	memmove(m->nodes + i, m->nodes + i + 1,
		(m->n_nodes - i - 1) * sizeof *m->nodes);
	m->n_nodes--;

	/* Highest index first, so the indices still to delete hold. */
	qsort(dead, n_dead, sizeof *dead, cmp_desc);
	for (size_t j = 0; j < n_dead; j++)
		delete_tensor(m, dead[j]);
	free(dead);
	return TM_OK;
}

tm_status
tm_model_node_add_input(tm_model *m, tm_node *n, const char *name,
			tm_error *err)
{
	size_t at = NO_INDEX, t, p;

	for (size_t i = 0; i < m->n_nodes; i++)
		if (m->nodes[i] == n)
			at = i;
	if (at == NO_INDEX)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: not a node of this model",
				    n ? n->name : "(null)");
	t = tm_model_tensor_index(m, name);
	if (t == NO_INDEX)
		return tm_error_set(err, TM_ERR_NOT_FOUND,
				    "%s: no tensor '%s' to add as an input",
				    n->name, name);
	if (m->tensors[t]->kind == TM_TENSOR_ACT) {
		p = tm_model_producer(m, t);
		if (p == NO_INDEX || p >= at)
			return tm_error_set(err, TM_ERR_INVALID,
					    "%s: cannot read '%s': no earlier "
					    "node writes it", n->name, name);
	}
	return push_index(&n->inputs, &n->n_inputs, t, err);
}

tm_status
tm_model_node_bias(tm_model *m, tm_node *n, tm_tensor **out, tm_error *err)
{
	const tm_tensor *w;
	int64_t shape[1];
	char name[512];
	float *zeros;
	tm_status st;

	*out = NULL;
	if ((n->op != TM_OP_DENSE && n->op != TM_OP_CONV2D) ||
	    n->n_inputs < 2)
		return tm_error_set(err, TM_ERR_INVALID,
				    "layer '%s': %s has no bias", n->name,
				    tm_op_name(n->op));
	if (n->n_inputs > 2) {
		*out = m->tensors[n->inputs[2]];
		return TM_OK;
	}
	w = m->tensors[n->inputs[1]];
	shape[0] = w->shape[0];
	snprintf(name, sizeof name, "%s.bias", n->name);
	for (unsigned i = 1; tm_model_find_tensor(m, name); i++)
		snprintf(name, sizeof name, "%s.bias.%u", n->name, i);
	zeros = calloc((size_t)shape[0], sizeof *zeros);
	if (!zeros)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	st = tm_model_add_const(m, name, 1, shape, zeros, err);
	free(zeros);
	if (st)
		return st;
	st = tm_model_node_add_input(m, n, name, err);
	if (st)
		return st;	/* the constant stays unused: harmless */
	*out = tm_model_find_tensor(m, name);
	return TM_OK;
}
