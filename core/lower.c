/* tmpipe — lowering a quantized model to libtmrt (see lower_priv.h). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/log.h>
#include <tmpipe/quant.h>

#include "lower_priv.h"

#define NONE ((size_t)-1)

/* One arena tensor. */
typedef struct ltensor {
	size_t model;			/* model tensor index */
	tmrt_tensor rt;
	long def, last;			/* live over layers [def, last] */
	size_t same_as;			/* in place of this ltensor, or NONE */
	int planned;
} ltensor;

/* One layer, its bundle and any table it owns. */
typedef struct llayer {
	const char *name;
	int32_t op;
	size_t in, out;			/* ltensor indices */
	tmrt_fc_params fc;
	tmrt_lut_params lut;
	int8_t table[256];
} llayer;

typedef struct lctx {
	const tm_model *m;
	size_t *map;			/* model tensor -> ltensor, or NONE */
	ltensor *t;
	size_t nt;
	llayer *l;
	size_t nl;
	tm_error *err;
} lctx;

static tm_status
nomem(tm_error *err)
{
	return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
}

/* The NHWC dims of a vector-like activation (every dimension but one is
 * 1); 0 for an image, which these ops do not lower yet. */
static int
vector_dims(const tm_tensor *t, tmrt_dims *d)
{
	size_t big = 0;

	for (int i = 0; i < t->ndim; i++)
		if (t->shape[i] > 1)
			big++;
	if (big > 1)
		return 0;
	d->n = 1;
	d->h = 1;
	d->w = 1;
	d->c = (int32_t)tm_tensor_numel(t);
	return 1;
}

/* Adds model tensor mt as an arena tensor written by layer def. */
static tm_status
add_tensor(lctx *c, size_t mt, long def, const char *layer)
{
	const tm_tensor *t = c->m->tensors[mt];
	size_t n = tm_tensor_numel(t);
	ltensor *lt = &c->t[c->nt];

	if (t->q.scheme != TM_QSCHEME_PER_TENSOR)
		return tm_error_set(c->err, TM_ERR_INVALID,
				    "tensor '%s' is not quantized (the "
				    "pipeline needs a calibration section)",
				    t->name);
	if (n < 1 || n > INT32_MAX)
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "tensor '%s': %zu elements do not fit "
				    "the integer runtime", t->name, n);
	if (!vector_dims(t, &lt->rt.dims))
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': tensor '%s' is not a vector; "
				    "images are not supported by the integer "
				    "runtime yet", layer ? layer : t->name,
				    t->name);
	lt->model = mt;
	lt->rt.offset = 0;
	lt->rt.size = (uint32_t)n;
	lt->rt.zp = t->q.zero_point;
	lt->def = def;
	lt->last = def;
	lt->same_as = NONE;
	lt->planned = 0;
	c->map[mt] = c->nt++;
	return TM_OK;
}

/* The arena tensor that holds model tensor mt, read by layer k. */
static tm_status
use_tensor(lctx *c, size_t mt, long k, const tm_node *n, size_t *out)
{
	size_t i = c->map[mt];

	if (i == NONE)
		return tm_error_set(c->err, TM_ERR_INTERNAL,
				    "layer '%s': input '%s' was not lowered",
				    n->name, c->m->tensors[mt]->name);
	if (c->t[i].last < k)
		c->t[i].last = k;
	*out = i;
	return TM_OK;
}

static int8_t
clamp8(long v)
{
	return (int8_t)(v < TM_QMIN ? TM_QMIN : v > TM_QMAX ? TM_QMAX : v);
}

/* table[q + 128] = clamp(lround(f(s_in (q - zp_in)) / s_out) + zp_out)
 * for f 0 = identity, 1 = relu, 2 = tanh. */
static void
build_table(int8_t *table, const tm_tensor *x, const tm_tensor *y, int f)
{
	for (int q = TM_QMIN; q <= TM_QMAX; q++) {
		double v = x->q.scale * (double)(q - x->q.zero_point);

		if (f == 1 && v < 0.0)
			v = 0.0;
		else if (f == 2)
			v = tanh(v);
		table[(uint8_t)(q + 128)] =
			clamp8(lround(v / y->q.scale) + y->q.zero_point);
	}
}

static int
is_fused_relu(const tm_model *m, const tm_node *n)
{
	size_t p;

	if (n->op != TM_OP_RELU)
		return 0;
	p = tm_model_producer(m, n->inputs[0]);
	return p != NONE && m->nodes[p]->op == TM_OP_DENSE &&
	       m->nodes[p]->fused_relu &&
	       m->nodes[p]->requant_out == n->outputs[0];
}

static tm_status
lower_dense(lctx *c, const tm_node *n, llayer *l, long k)
{
	const tm_tensor *x = c->m->tensors[n->inputs[0]];
	const tm_tensor *w = c->m->tensors[n->inputs[1]];
	const tm_tensor *b = n->n_inputs > 2 ? c->m->tensors[n->inputs[2]]
					     : NULL;
	const tm_tensor *y = c->m->tensors[n->requant_out];
	tm_status st;

	if (!w->q8 || (b && !b->q32) || !n->multiplier || !n->shift ||
	    n->n_requant < 1)
		return tm_error_set(c->err, TM_ERR_INVALID,
				    "layer '%s': weights not quantized (run "
				    "the quantize pass first)", n->name);
	if (w->ndim != 2 || w->shape[0] > INT32_MAX ||
	    w->shape[1] > INT32_MAX)
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': weight '%s' is not a "
				    "matrix", n->name, w->name);
	st = use_tensor(c, n->inputs[0], k, n, &l->in);
	if (!st)
		st = add_tensor(c, n->requant_out, k, n->name);
	if (st)
		return st;
	l->out = c->map[n->requant_out];
	l->op = TMRT_OP_FULLY_CONNECTED;
	l->fc.in_features = (int32_t)w->shape[1];
	l->fc.out_features = (int32_t)w->shape[0];
	l->fc.weights = w->q8;
	l->fc.bias = b ? b->q32 : NULL;
	l->fc.input_zp = x->q.zero_point;
	l->fc.output_zp = y->q.zero_point;
	l->fc.multiplier = n->multiplier;
	l->fc.shift = n->shift;
	l->fc.n_requant = (int32_t)n->n_requant;
	l->fc.act_min = n->act_min;
	l->fc.act_max = n->act_max;
	return TM_OK;
}

/* A one-input, one-output layer on the same number of elements: LUT
 * (table already built) or COPY. */
static tm_status
lower_unary(lctx *c, const tm_node *n, llayer *l, long k, int32_t op)
{
	tm_status st = use_tensor(c, n->inputs[0], k, n, &l->in);

	if (!st)
		st = add_tensor(c, n->outputs[0], k, n->name);
	if (st)
		return st;
	l->out = c->map[n->outputs[0]];
	if (c->t[l->in].rt.size != c->t[l->out].rt.size)
		return tm_error_set(c->err, TM_ERR_INTERNAL,
				    "layer '%s': input and output sizes "
				    "differ", n->name);
	l->op = op;
	l->lut.size = (int32_t)c->t[l->in].rt.size;
	l->lut.table = l->table;
	return TM_OK;
}

static int
lowerable(tm_op op)
{
	switch (op) {
	case TM_OP_DENSE:
	case TM_OP_RELU:
	case TM_OP_SIGMOID:
	case TM_OP_TANH:
	case TM_OP_FLATTEN:
	case TM_OP_RESHAPE:
		return 1;
	default:
		return 0;
	}
}

static tm_status
lower_node(lctx *c, const tm_node *n)
{
	llayer *l = &c->l[c->nl];
	long k = (long)c->nl;
	const tm_tensor *x = c->m->tensors[n->inputs[0]];
	const tm_tensor *y = c->m->tensors[n->outputs[0]];
	tm_status st;

	memset(l, 0, sizeof *l);
	l->name = n->name;
	switch (n->op) {
	case TM_OP_DENSE:
		st = lower_dense(c, n, l, k);
		break;
	case TM_OP_RELU:
		if (is_fused_relu(c->m, n))
			return TM_OK;	/* the dense wrote its output */
		build_table(l->table, x, y, 1);
		st = lower_unary(c, n, l, k, TMRT_OP_LUT);
		break;
	case TM_OP_SIGMOID:
		if (!n->lut)
			return tm_error_set(c->err, TM_ERR_INVALID,
					    "layer '%s': no sigmoid table "
					    "(run the quantize pass first)",
					    n->name);
		memcpy(l->table, n->lut, 256);
		st = lower_unary(c, n, l, k, TMRT_OP_LUT);
		break;
	case TM_OP_TANH:
		build_table(l->table, x, y, 2);
		st = lower_unary(c, n, l, k, TMRT_OP_LUT);
		break;
	case TM_OP_FLATTEN:
	case TM_OP_RESHAPE:
		if (x->q.scale == y->q.scale &&
		    x->q.zero_point == y->q.zero_point) {
			st = lower_unary(c, n, l, k, TMRT_OP_COPY);
		} else {
			build_table(l->table, x, y, 0);
			st = lower_unary(c, n, l, k, TMRT_OP_LUT);
		}
		break;
	default:
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': op %s is not supported by "
				    "the integer runtime yet", n->name,
				    tm_op_name(n->op));
	}
	if (st)
		return st;
	c->nl++;
	return TM_OK;
}

static int
lives_overlap(const ltensor *a, const ltensor *b)
{
	return a->def <= b->last && b->def <= a->last;
}

/* First fit: the lowest offset whose bytes no planned tensor with an
 * overlapping life holds. */
static void
plan(lctx *c, size_t *peak)
{
	*peak = 0;
	for (size_t i = 0; i < c->nt; i++) {
		ltensor *t = &c->t[i];
		uint32_t off = 0;
		int moved = 1;

		if (t->same_as != NONE) {
			t->rt.offset = c->t[t->same_as].rt.offset;
			t->planned = 1;
			continue;
		}
		while (moved) {
			moved = 0;
			for (size_t j = 0; j < c->nt; j++) {
				const ltensor *u = &c->t[j];

				if (!u->planned || !lives_overlap(t, u) ||
				    off >= u->rt.offset + u->rt.size ||
				    u->rt.offset >= off + t->rt.size)
					continue;
				off = u->rt.offset + u->rt.size;
				moved = 1;
			}
		}
		t->rt.offset = off;
		t->planned = 1;
		if (off + t->rt.size > *peak)
			*peak = off + t->rt.size;
	}
}

static void
lctx_fini(lctx *c)
{
	free(c->map);
	free(c->t);
	free(c->l);
}

void
tm_priv_lowered_fini(tm_priv_lowered *lw)
{
	if (!lw)
		return;
	tm_priv_blob_free(lw->blob);
	free(lw->outputs);
	memset(lw, 0, sizeof *lw);
}

size_t
tm_priv_lowered_output(const tm_priv_lowered *lw, size_t t)
{
	for (size_t i = 0; i < lw->n_outputs; i++)
		if (lw->outputs[i] == t)
			return i;
	return NONE;
}

static int
is_model_output(const tm_model *m, size_t t)
{
	for (size_t i = 0; i < m->n_outputs; i++)
		if (m->outputs[i] == t)
			return 1;
	return 0;
}

static tm_status
build(lctx *c, unsigned flags, tm_priv_lowered *lw)
{
	const tm_model *m = c->m;
	long end;
	int32_t *io = NULL, idx;
	size_t n_out = 0;
	tm_status st = TM_OK;

	/* What the runtime cannot run yet, first: the clearest message. */
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *n = m->nodes[k];

		if (!lowerable(n->op))
			return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
					    "layer '%s': op %s is not "
					    "supported by the integer runtime "
					    "yet", n->name, tm_op_name(n->op));
	}
	for (size_t i = 0; i < m->n_inputs && !st; i++)
		st = add_tensor(c, m->inputs[i], -1, NULL);
	for (size_t k = 0; k < m->n_nodes && !st; k++)
		st = lower_node(c, m->nodes[k]);
	if (st)
		return st;
	end = (long)c->nl;

	/* Outputs: the model's, then (EXPOSE_ALL) every other tensor. */
	lw->outputs = malloc((c->nt + m->n_outputs) * sizeof *lw->outputs);
	io = malloc((c->nt + m->n_outputs + m->n_inputs) * sizeof *io);
	if (!lw->outputs || !io) {
		free(io);
		return nomem(c->err);
	}
	for (size_t i = 0; i < m->n_outputs; i++) {
		size_t lt = c->map[m->outputs[i]];

		if (lt == NONE) {
			free(io);
			return tm_error_set(c->err, TM_ERR_INTERNAL,
					    "output '%s' was not lowered",
					    m->tensors[m->outputs[i]]->name);
		}
		c->t[lt].last = end;
		lw->outputs[n_out] = m->outputs[i];
		io[n_out++] = (int32_t)lt;
	}
	if (flags & TM_PRIV_LOWER_EXPOSE_ALL)
		for (size_t i = 0; i < c->nt; i++) {
			c->t[i].last = end;
			if (is_model_output(m, c->t[i].model))
				continue;
			lw->outputs[n_out] = c->t[i].model;
			io[n_out++] = (int32_t)i;
		}
	lw->n_outputs = n_out;

	/* In place: a LUT or COPY whose input dies there, not a model
	 * input (the caller's copy must survive only until the first
	 * layer, but inputs must not overlap each other). */
	for (size_t k = 0; k < c->nl; k++) {
		llayer *l = &c->l[k];

		if ((l->op == TMRT_OP_LUT || l->op == TMRT_OP_COPY) &&
		    c->t[l->in].last == (long)k && c->t[l->in].def >= 0 &&
		    c->t[l->in].same_as == NONE)
			c->t[l->out].same_as = l->in;
	}
	/* The input's life extends to its alias's. */
	for (size_t i = 0; i < c->nt; i++)
		if (c->t[i].same_as != NONE) {
			ltensor *a = &c->t[c->t[i].same_as];

			if (a->last < c->t[i].last)
				a->last = c->t[i].last;
		}
	plan(c, &lw->arena_peak);
	lw->arena_sum = 0;
	for (size_t i = 0; i < c->nt; i++)
		lw->arena_sum += c->t[i].rt.size;

	lw->blob = tm_priv_blob_new(c->err);
	if (!lw->blob) {
		free(io);
		return c->err->code ? c->err->code : TM_ERR_NOMEM;
	}
	for (size_t i = 0; i < c->nt && !st; i++)
		st = tm_priv_blob_add_tensor(lw->blob,
					     m->tensors[c->t[i].model]->name,
					     &c->t[i].rt, &idx, c->err);
	for (size_t k = 0; k < c->nl && !st; k++) {
		llayer *l = &c->l[k];
		int32_t in = (int32_t)l->in;
		const void *p = l->op == TMRT_OP_FULLY_CONNECTED
					? (const void *)&l->fc
				: l->op == TMRT_OP_LUT ? (const void *)&l->lut
						       : NULL;

		st = tm_priv_blob_add_layer(lw->blob, l->name, l->op, p, &in,
					    1, (int32_t)l->out, c->err);
	}
	if (!st) {
		int32_t *ins = io + n_out;

		for (size_t i = 0; i < m->n_inputs; i++)
			ins[i] = (int32_t)c->map[m->inputs[i]];
		st = tm_priv_blob_set_io(lw->blob, ins, (int32_t)m->n_inputs,
					 io, (int32_t)n_out, c->err);
	}
	if (!st)
		st = tm_priv_blob_finish(lw->blob, c->err);
	free(io);
	return st;
}

tm_status
tm_priv_lower(const tm_model *m, unsigned flags, tm_priv_lowered *out,
	      tm_error *err)
{
	lctx c;
	tm_status st;

	memset(out, 0, sizeof *out);
	memset(&c, 0, sizeof c);
	c.m = m;
	c.err = err;
	if (m->n_inputs < 1 || m->n_outputs < 1)
		return tm_error_set(err, TM_ERR_INVALID,
				    "the model has no inputs or outputs");
	c.map = malloc(m->n_tensors * sizeof *c.map);
	c.t = calloc(m->n_tensors, sizeof *c.t);
	c.l = calloc(m->n_nodes + 1, sizeof *c.l);
	if (!c.map || !c.t || !c.l) {
		lctx_fini(&c);
		return nomem(err);
	}
	for (size_t i = 0; i < m->n_tensors; i++)
		c.map[i] = NONE;
	st = build(&c, flags, out);
	if (st) {
		tm_priv_lowered_fini(out);
	} else {
		tm_log(TM_LOG_NOTE, "lower",
		       "%zu layers, %zu tensors: arena %zu bytes at peak "
		       "(%zu without reuse)", c.nl, c.nt, out->arena_peak,
		       out->arena_sum);
	}
	lctx_fini(&c);
	return st;
}

struct tm_lowered {
	tm_priv_lowered lw;
};

tm_status
tm_model_lower(const tm_model *m, tm_lowered **out, tm_error *err)
{
	tm_lowered *l;
	tm_status st;

	*out = NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		return nomem(err);
	st = tm_priv_lower(m, 0, &l->lw, err);
	if (st) {
		free(l);
		return st;
	}
	*out = l;
	return TM_OK;
}

const tmrt_model *
tm_lowered_model(const tm_lowered *l)
{
	return tm_priv_blob_model(l->lw.blob);
}

size_t
tm_lowered_arena_size(const tm_lowered *l)
{
	return tm_priv_blob_model(l->lw.blob)->arena_size;
}

const char *
tm_lowered_tensor_name(const tm_lowered *l, int32_t i)
{
	return tm_priv_blob_tensor_name(l->lw.blob, i);
}

const char *
tm_lowered_layer_name(const tm_lowered *l, int32_t i)
{
	return tm_priv_blob_layer_name(l->lw.blob, i);
}

const void *
tm_lowered_blob(const tm_lowered *l, size_t *size)
{
	return tm_priv_blob_bytes(l->lw.blob, size);
}

void
tm_lowered_free(tm_lowered *l)
{
	if (!l)
		return;
	tm_priv_lowered_fini(&l->lw);
	free(l);
}

tm_status
tm_model_to_blob(const tm_model *m, void **bytes, size_t *size,
		 tm_error *err)
{
	tm_lowered *l;
	const void *b;
	size_t n = 0;
	tm_status st;

	*bytes = NULL;
	*size = 0;
	st = tm_model_lower(m, &l, err);
	if (st)
		return st;
	b = tm_lowered_blob(l, &n);
	*bytes = malloc(n ? n : 1);
	if (!*bytes) {
		tm_lowered_free(l);
		return nomem(err);
	}
	memcpy(*bytes, b, n);
	*size = n;
	tm_lowered_free(l);
	return TM_OK;
}

void
tm_blob_free(void *bytes)
{
	free(bytes);
}
