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
	v = realloc(m->nodes, (m->n_nodes + 1) * sizeof *v);
	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	m->nodes = v;
	n = calloc(1, sizeof *n);
	if (!n)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	n->name = tm_priv_strdup(name, err);
	n->op = op;
	if (!n->name) {
		free(n);
		return TM_ERR_NOMEM;
	}
	m->nodes[m->n_nodes++] = n;
	for (size_t i = 0; i < n_inputs; i++) {
		st = push_index(&n->inputs, &n->n_inputs,
				tm_model_tensor_index(m, inputs[i]), err);
		if (st)
			return st;
	}
	for (size_t i = 0; i < n_outputs; i++) {
		/* Shape unknown until tm_model_finalize. */
		if (!add_tensor(m, outputs[i], TM_TENSOR_ACT, 0, NULL, err))
			return err ? err->code : TM_ERR_INVALID;
		st = push_index(&n->outputs, &n->n_outputs,
				m->n_tensors - 1, err);
		if (st)
			return st;
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
	format_shape(w, ws, sizeof ws);
	format_shape(x, xs, sizeof xs);
	if (x->kind == TM_TENSOR_CONST || x->ndim != 1)
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

static tm_status
infer_elementwise(tm_model *m, tm_node *n, tm_error *err)
{
	tm_tensor *x, *y;

	if (n->n_inputs != 1 || n->n_outputs != 1)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: %s takes one input and one output",
				    n->name, tm_op_name(n->op));
	x = m->tensors[n->inputs[0]];
	y = m->tensors[n->outputs[0]];
	if (x->kind == TM_TENSOR_CONST)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s: input '%s' is a constant, not an "
				    "activation", n->name, x->name);
	y->ndim = x->ndim;
	memcpy(y->shape, x->shape, sizeof y->shape);
	/* The sigmoid output range is fixed, (0, 1): QUANT.md gives it the
	 * parameters (1/256, -128), so it is never observed. */
	if (n->op == TM_OP_SIGMOID) {
		y->fixed_range = 1;
		y->has_range = 1;
		y->lo = 0.0f;
		y->hi = 1.0f;
	}
	return TM_OK;
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
		tm_node *n = m->nodes[i];

		switch (n->op) {
		case TM_OP_DENSE:
			st = infer_dense(m, n, err);
			break;
		case TM_OP_RELU:
		case TM_OP_SIGMOID:
			st = infer_elementwise(m, n, err);
			break;
		default:
			st = tm_error_set(err, TM_ERR_INTERNAL,
					  "%s: no shape rule for op %s",
					  n->name, tm_op_name(n->op));
			break;
		}
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
