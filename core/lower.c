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

/* One arena tensor. A vector made by flattening an image keeps the
 * image's bytes, HWC order: perm_c, perm_hw (C and H * W) say so, and a
 * dense reading it takes its weight columns in that order. */
typedef struct ltensor {
	size_t model;			/* model tensor index */
	tmrt_tensor rt;
	long def, last;			/* live over layers [def, last] */
	size_t same_as;			/* in place of this ltensor, or NONE */
	int planned;
	int64_t perm_c, perm_hw;	/* 0: the model's element order */
} ltensor;

/* One layer, its bundle and whatever it owns (lowered weights, tables,
 * the concat inputs). */
typedef struct llayer {
	const char *name;
	int32_t op;
	size_t in[2];			/* ltensor indices (not concat) */
	size_t n_in;
	size_t *ins;			/* concat: n_in ltensors */
	size_t out;
	const void *params;		/* the bundle below, or NULL */
	tmrt_fc_params fc;
	tmrt_conv_params conv;
	tmrt_pool_params pool;
	tmrt_global_pool_params gp;
	tmrt_add_params add;
	tmrt_concat_params cat;
	tmrt_concat_input *cat_in;
	tmrt_lut_params lut;
	int8_t table[256];
	tmrt_softmax_params sm;
	int32_t exp_table[256];
	int8_t *w;			/* weights in the runtime's layout */
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

/* A per-sample [C, H, W] with more than one channel and more than one
 * pixel: its CHW and HWC orders differ. */
static int
is_image(const tm_tensor *t)
{
	return t->ndim == 3 && t->shape[0] > 1 && t->shape[1] * t->shape[2] > 1;
}

/* The NHWC dims of an activation: [C, H, W] is (1, H, W, C); any other
 * shape must be a vector (every dimension but one is 1) and becomes (1,
 * 1, 1, features). 0 for anything else. */
static int
tensor_dims(const tm_tensor *t, tmrt_dims *d)
{
	size_t big = 0;

	d->n = 1;
	if (t->ndim == 3) {
		d->h = (int32_t)t->shape[1];
		d->w = (int32_t)t->shape[2];
		d->c = (int32_t)t->shape[0];
		return 1;
	}
	for (int i = 0; i < t->ndim; i++)
		if (t->shape[i] > 1)
			big++;
	if (big > 1)
		return 0;
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
	if (!tensor_dims(t, &lt->rt.dims))
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': tensor '%s' is neither an "
				    "image [C, H, W] nor a vector; the "
				    "integer runtime cannot hold it",
				    layer ? layer : t->name, t->name);
	lt->model = mt;
	lt->rt.offset = 0;
	lt->rt.size = (uint32_t)n;
	lt->rt.zp = t->q.zero_point;
	lt->def = def;
	lt->last = def;
	lt->same_as = NONE;
	lt->planned = 0;
	lt->perm_c = lt->perm_hw = 0;
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

/* Only a dense (and elementwise layers) can read a flattened image. */
static tm_status
need_plain(lctx *c, size_t lt, const tm_node *n)
{
	if (!c->t[lt].perm_c)
		return TM_OK;
	return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
			    "layer '%s': its input '%s' is a flattened image "
			    "(HWC order in the integer runtime); only dense "
			    "and elementwise layers can read one", n->name,
			    c->m->tensors[c->t[lt].model]->name);
}

static tm_status
need_requant(lctx *c, const tm_node *n, size_t nr)
{
	if (n->multiplier && n->shift && n->n_requant == nr)
		return TM_OK;
	return tm_error_set(c->err, TM_ERR_INVALID,
			    "layer '%s': not quantized (run the quantize "
			    "pass first)", n->name);
}

static int8_t
clamp8(long v)
{
	return (int8_t)(v < TM_QMIN ? TM_QMIN : v > TM_QMAX ? TM_QMAX : v);
}

/* table[q + 128] = clamp(lround(f(s_in (q - zp_in)) / s_out) + zp_out)
 * for op's function (flatten, reshape: identity). */
static void
build_table(int8_t *table, const tm_tensor *x, const tm_tensor *y,
	    const tm_node *n)
{
	for (int q = TM_QMIN; q <= TM_QMAX; q++) {
		double v = x->q.scale * (double)(q - x->q.zero_point);

		switch (n->op) {
		case TM_OP_RELU:
			v = v < 0.0 ? 0.0 : v;
			break;
		case TM_OP_TANH:
			v = tanh(v);
			break;
		case TM_OP_CLIP:
			v = v < (double)n->attrs.clip_min
				    ? (double)n->attrs.clip_min
				    : v;
			v = v > (double)n->attrs.clip_max
				    ? (double)n->attrs.clip_max
				    : v;
			break;
		case TM_OP_LEAKY_RELU:
			v = v < 0.0 ? (double)n->attrs.alpha * v : v;
			break;
		default:
			break;
		}
		table[(uint8_t)(q + 128)] =
			clamp8(lround(v / y->q.scale) + y->q.zero_point);
	}
}

/* A ReLU or Clip folded into the clamp of the layer before it. */
static int
is_fused(const tm_model *m, const tm_node *n)
{
	size_t p;
	const tm_node *pn;

	if (n->op != TM_OP_RELU && n->op != TM_OP_CLIP)
		return 0;
	p = tm_model_producer(m, n->inputs[0]);
	if (p == NONE)
		return 0;
	pn = m->nodes[p];
	return (pn->op == TM_OP_DENSE || pn->op == TM_OP_CONV2D ||
		pn->op == TM_OP_BATCHNORM || pn->op == TM_OP_ADD) &&
	       pn->fused_relu && pn->requant_out == n->outputs[0];
}

/* The layer's single data input and its output (model tensor y). */
static tm_status
io1(lctx *c, const tm_node *n, llayer *l, long k, size_t y)
{
	tm_status st = use_tensor(c, n->inputs[0], k, n, &l->in[0]);

	if (!st)
		st = add_tensor(c, y, k, n->name);
	if (st)
		return st;
	l->n_in = 1;
	l->out = c->map[y];
	return TM_OK;
}

static tm_status
lower_dense(lctx *c, const tm_node *n, llayer *l, long k)
{
	const tm_tensor *x = c->m->tensors[n->inputs[0]];
	const tm_tensor *w = c->m->tensors[n->inputs[1]];
	const tm_tensor *b = n->n_inputs > 2 ? c->m->tensors[n->inputs[2]]
					     : NULL;
	const tm_tensor *y = c->m->tensors[n->requant_out];
	const ltensor *lx;
	tm_status st;

	if (!w->q8 || (b && !b->q32) || need_requant(c, n, n->n_requant) ||
	    n->n_requant < 1)
		return tm_error_set(c->err, TM_ERR_INVALID,
				    "layer '%s': weights not quantized (run "
				    "the quantize pass first)", n->name);
	if (w->ndim != 2 || w->shape[0] > INT32_MAX ||
	    w->shape[1] > INT32_MAX)
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': weight '%s' is not a "
				    "matrix", n->name, w->name);
	st = io1(c, n, l, k, n->requant_out);
	if (st)
		return st;
	lx = &c->t[l->in[0]];
	l->op = TMRT_OP_FULLY_CONNECTED;
	l->params = &l->fc;
	l->fc.in_features = (int32_t)w->shape[1];
	l->fc.out_features = (int32_t)w->shape[0];
	l->fc.weights = w->q8;
	if (lx->perm_c) {
		/* The input is an image flattened in HWC order: column
		 * c * HW + p of the model's weight becomes p * C + c. */
		size_t in = (size_t)w->shape[1], out = (size_t)w->shape[0];
		size_t C = (size_t)lx->perm_c, HW = (size_t)lx->perm_hw;

		if (C * HW != in)
			return tm_error_set(c->err, TM_ERR_INTERNAL,
					    "layer '%s': flattened input of "
					    "%zu values, weight of %zu columns",
					    n->name, C * HW, in);
		l->w = malloc(in * out);
		if (!l->w)
			return nomem(c->err);
		for (size_t o = 0; o < out; o++)
			for (size_t ch = 0; ch < C; ch++)
				for (size_t p = 0; p < HW; p++)
					l->w[o * in + p * C + ch] =
						w->q8[o * in + ch * HW + p];
		l->fc.weights = l->w;
	}
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

/* The window fields shared by convolution and pooling. */
#define SET_WINDOW(p, a)                                                    \
	do {                                                                \
		(p)->stride_h = (int32_t)(a)->stride[0];                    \
		(p)->stride_w = (int32_t)(a)->stride[1];                    \
		(p)->dilation_h = (int32_t)(a)->dilation[0];                \
		(p)->dilation_w = (int32_t)(a)->dilation[1];                \
		(p)->pad_top = (int32_t)(a)->pads[0];                       \
		(p)->pad_left = (int32_t)(a)->pads[1];                      \
		(p)->pad_bottom = (int32_t)(a)->pads[2];                    \
		(p)->pad_right = (int32_t)(a)->pads[3];                     \
	} while (0)

/* conv2d (any group but depthwise: weights OIHW -> OHWI, I = C / group)
 * or depthwise (group = input channels > 1: [C * mult][1][kh][kw] -> [kh][kw][C * mult]); batchnorm as a
 * 1x1 depthwise convolution with multiplier 1. */
static tm_status
lower_conv(lctx *c, const tm_node *n, llayer *l, long k)
{
	const tm_tensor *x = c->m->tensors[n->inputs[0]];
	const tm_tensor *y = c->m->tensors[n->requant_out];
	const tm_tensor *w, *b;
	int bn = n->op == TM_OP_BATCHNORM;
	size_t O, I, kh, kw;
	tm_status st;

	w = c->m->tensors[n->inputs[1]];
	b = bn ? c->m->tensors[n->inputs[2]]
	       : n->n_inputs > 2 ? c->m->tensors[n->inputs[2]] : NULL;
	if (!w->q8 || (b && !b->q32) || n->n_requant < 1 ||
	    need_requant(c, n, n->n_requant))
		return tm_error_set(c->err, TM_ERR_INVALID,
				    "layer '%s': weights not quantized (run "
				    "the quantize pass first)", n->name);
	st = io1(c, n, l, k, n->requant_out);
	if (!st)
		st = need_plain(c, l->in[0], n);
	if (st)
		return st;
	l->params = &l->conv;
	l->conv.input = c->t[l->in[0]].rt.dims;
	l->conv.output = c->t[l->out].rt.dims;
	l->conv.input_zp = x->q.zero_point;
	l->conv.output_zp = y->q.zero_point;
	l->conv.bias = b ? b->q32 : NULL;
	l->conv.multiplier = n->multiplier;
	l->conv.shift = n->shift;
	l->conv.n_requant = (int32_t)n->n_requant;
	l->conv.act_min = n->act_min;
	l->conv.act_max = n->act_max;
	if (bn) {
		if (l->conv.input.c != (int32_t)w->shape[0])
			return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
					    "layer '%s': batchnorm over '%s' "
					    "of %d dimensions: the integer "
					    "runtime takes [C], [C, H, W]",
					    n->name, x->name, x->ndim);
		l->op = TMRT_OP_DEPTHWISE_CONV2D;
		l->conv.kernel_h = l->conv.kernel_w = 1;
		l->conv.stride_h = l->conv.stride_w = 1;
		l->conv.dilation_h = l->conv.dilation_w = 1;
		l->conv.groups = l->conv.input.c;
		l->conv.weights = w->q8;	/* [1][1][C] */
		return TM_OK;
	}
	O = (size_t)w->shape[0];
	I = (size_t)w->shape[1];
	kh = (size_t)w->shape[2];
	kw = (size_t)w->shape[3];
	SET_WINDOW(&l->conv, &n->attrs);
	l->conv.kernel_h = (int32_t)kh;
	l->conv.kernel_w = (int32_t)kw;
	l->w = malloc(O * I * kh * kw);
	if (!l->w)
		return nomem(c->err);
	if (n->attrs.group == 1 || n->attrs.group != x->shape[0]) {
		/* Grouped too: OHWI with I = C / group, as group 1. */
		l->op = TMRT_OP_CONV2D;
		l->conv.groups = (int32_t)n->attrs.group;
		for (size_t o = 0; o < O; o++)
			for (size_t i = 0; i < I; i++)
				for (size_t r = 0; r < kh * kw; r++)
					l->w[(o * kh * kw + r) * I + i] =
						w->q8[(o * I + i) * kh * kw +
						      r];
	} else {
		l->op = TMRT_OP_DEPTHWISE_CONV2D;
		l->conv.groups = l->conv.input.c;
		for (size_t o = 0; o < O; o++)
			for (size_t r = 0; r < kh * kw; r++)
				l->w[r * O + o] = w->q8[o * kh * kw + r];
	}
	l->conv.weights = l->w;
	return TM_OK;
}

static tm_status
lower_pool(lctx *c, const tm_node *n, llayer *l, long k)
{
	const tm_tensor *x = c->m->tensors[n->inputs[0]];
	const tm_tensor *y = c->m->tensors[n->outputs[0]];
	tm_status st = need_requant(c, n, 1);

	if (!st)
		st = io1(c, n, l, k, n->outputs[0]);
	if (!st)
		st = need_plain(c, l->in[0], n);
	if (st)
		return st;
	if (n->op == TM_OP_GLOBAL_AVGPOOL) {
		l->op = TMRT_OP_GLOBAL_AVG_POOL;
		l->params = &l->gp;
		l->gp.input = c->t[l->in[0]].rt.dims;
		l->gp.input_zp = x->q.zero_point;
		l->gp.output_zp = y->q.zero_point;
		l->gp.multiplier = n->multiplier[0];
		l->gp.shift = n->shift[0];
		l->gp.act_min = TM_QMIN;
		l->gp.act_max = TM_QMAX;
		return TM_OK;
	}
	l->op = n->op == TM_OP_MAXPOOL2D ? TMRT_OP_MAX_POOL2D
					 : TMRT_OP_AVG_POOL2D;
	l->params = &l->pool;
	l->pool.input = c->t[l->in[0]].rt.dims;
	l->pool.output = c->t[l->out].rt.dims;
	l->pool.kernel_h = (int32_t)n->attrs.kernel[0];
	l->pool.kernel_w = (int32_t)n->attrs.kernel[1];
	SET_WINDOW(&l->pool, &n->attrs);
	l->pool.count_include_pad = n->op == TM_OP_AVGPOOL2D &&
				    n->attrs.count_include_pad;
	l->pool.input_zp = x->q.zero_point;
	l->pool.output_zp = y->q.zero_point;
	l->pool.multiplier = n->multiplier[0];
	l->pool.shift = n->shift[0];
	l->pool.act_min = TM_QMIN;
	l->pool.act_max = TM_QMAX;
	return TM_OK;
}

/* How operand b (smaller or equal) broadcasts against a in NHWC: its
 * size when the same shape, 1 for a scalar, C for a per-channel [C, 1,
 * 1] against an image; 0 when the runtime cannot (in2[i % in2_size]). */
static int32_t
add_in2_size(const tm_tensor *a, const tm_tensor *b, const ltensor *la,
	     const ltensor *lb)
{
	size_t na = tm_tensor_numel(a), nb = tm_tensor_numel(b);

	if (nb == 1)
		return 1;
	if (na == nb) {
		if (la->perm_c != lb->perm_c || la->perm_hw != lb->perm_hw)
			return 0;
		if (a->ndim == 3 || b->ndim == 3)
			return a->ndim == b->ndim &&
					       memcmp(a->shape, b->shape,
						      3 * sizeof *a->shape) ==
						       0
				       ? (int32_t)nb
				       : 0;
		return (int32_t)nb;
	}
	if (a->ndim == 3 && b->ndim == 3 && b->shape[0] == a->shape[0] &&
	    b->shape[1] == 1 && b->shape[2] == 1 && !la->perm_c)
		return (int32_t)nb;
	return 0;
}

static tm_status
lower_add(lctx *c, const tm_node *n, llayer *l, long k)
{
	const tm_tensor *a = c->m->tensors[n->inputs[0]];
	const tm_tensor *b = c->m->tensors[n->inputs[1]];
	const tm_tensor *y = c->m->tensors[n->requant_out];
	int swap;
	int32_t in2;
	tm_status st;

	if (a->kind == TM_TENSOR_CONST || b->kind == TM_TENSOR_CONST)
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': add of the constant '%s' is "
				    "not supported by the integer runtime "
				    "(both operands must be activations)",
				    n->name,
				    (a->kind == TM_TENSOR_CONST ? a : b)->name);
	st = need_requant(c, n, 3);
	if (!st)
		st = use_tensor(c, n->inputs[0], k, n, &l->in[0]);
	if (!st)
		st = use_tensor(c, n->inputs[1], k, n, &l->in[1]);
	if (!st)
		st = add_tensor(c, n->requant_out, k, n->name);
	if (st)
		return st;
	l->n_in = 2;
	l->out = c->map[n->requant_out];
	/* Only in2 broadcasts: the larger operand goes first. */
	swap = tm_tensor_numel(a) < tm_tensor_numel(b);
	if (swap) {
		size_t t = l->in[0];
		const tm_tensor *tt = a;

		l->in[0] = l->in[1];
		l->in[1] = t;
		a = b;
		b = tt;
	}
	in2 = add_in2_size(a, b, &c->t[l->in[0]], &c->t[l->in[1]]);
	if (!in2 || tm_tensor_numel(a) != tm_tensor_numel(y))
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': the integer runtime cannot "
				    "broadcast '%s' against '%s' (same "
				    "shape, a scalar or a per-channel [C, 1, "
				    "1] can)", n->name, b->name, a->name);
	c->t[l->out].perm_c = c->t[l->in[0]].perm_c;
	c->t[l->out].perm_hw = c->t[l->in[0]].perm_hw;
	l->op = TMRT_OP_ADD;
	l->params = &l->add;
	l->add.size = (int32_t)tm_tensor_numel(a);
	l->add.in2_size = in2;
	l->add.input1_zp = a->q.zero_point;
	l->add.input2_zp = b->q.zero_point;
	l->add.left_shift = 20;
	l->add.input1_multiplier = n->multiplier[swap];
	l->add.input1_shift = n->shift[swap];
	l->add.input2_multiplier = n->multiplier[!swap];
	l->add.input2_shift = n->shift[!swap];
	l->add.output_multiplier = n->multiplier[2];
	l->add.output_shift = n->shift[2];
	l->add.output_zp = y->q.zero_point;
	l->add.act_min = n->act_min;
	l->add.act_max = n->act_max;
	return TM_OK;
}

/* [outer][len][inner] of a tensor viewed along model axis ax, in the
 * runtime's layout: NHWC for [C, H, W], C order otherwise. */
static void
axis_view(const tm_tensor *t, int64_t ax, int32_t *outer, int32_t *len,
	  int32_t *inner)
{
	int64_t o = 1, in = 1;

	if (t->ndim == 3) {
		int64_t C = t->shape[0], H = t->shape[1], W = t->shape[2];

		o = ax == 0 ? H * W : ax == 1 ? 1 : H;
		in = ax == 0 ? 1 : ax == 1 ? W * C : C;
	} else {
		for (int d = 0; d < ax; d++)
			o *= t->shape[d];
		for (int d = (int)ax + 1; d < t->ndim; d++)
			in *= t->shape[d];
	}
	*outer = (int32_t)o;
	*len = (int32_t)t->shape[ax];
	*inner = (int32_t)in;
}

static tm_status
lower_concat(lctx *c, const tm_node *n, llayer *l, long k)
{
	const tm_tensor *y = c->m->tensors[n->outputs[0]];
	int64_t ax = n->attrs.axis < 0 ? n->attrs.axis + y->ndim
				       : n->attrs.axis;
	int32_t len;
	tm_status st = need_requant(c, n, n->n_inputs);

	l->ins = calloc(n->n_inputs, sizeof *l->ins);
	l->cat_in = calloc(n->n_inputs, sizeof *l->cat_in);
	if (!l->ins || !l->cat_in)
		return nomem(c->err);
	for (size_t i = 0; i < n->n_inputs && !st; i++) {
		const tm_tensor *x = c->m->tensors[n->inputs[i]];

		if (x->kind == TM_TENSOR_CONST)
			return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
					    "layer '%s': concat of the "
					    "constant '%s' is not supported "
					    "by the integer runtime", n->name,
					    x->name);
		st = use_tensor(c, n->inputs[i], k, n, &l->ins[i]);
		if (!st)
			st = need_plain(c, l->ins[i], n);
		if (st)
			return st;
		axis_view(x, ax, &l->cat.outer, &len, &l->cat.inner);
		l->cat_in[i].axis_len = len;
		l->cat_in[i].zp = x->q.zero_point;
		l->cat_in[i].multiplier = n->multiplier[i];
		l->cat_in[i].shift = n->shift[i];
	}
	if (!st)
		st = add_tensor(c, n->outputs[0], k, n->name);
	if (st)
		return st;
	l->n_in = n->n_inputs;
	l->out = c->map[n->outputs[0]];
	axis_view(y, ax, &l->cat.outer, &len, &l->cat.inner);
	l->op = TMRT_OP_CONCAT;
	l->params = &l->cat;
	l->cat.n_inputs = (int32_t)n->n_inputs;
	l->cat.inputs = l->cat_in;
	l->cat.output_zp = y->q.zero_point;
	return TM_OK;
}

/* exp_table[d] = lround(exp(-d s_in) 2^30), Q30 (tmrt_softmax_s8). */
static tm_status
lower_softmax(lctx *c, const tm_node *n, llayer *l, long k)
{
	const tm_tensor *x = c->m->tensors[n->inputs[0]];
	const tm_tensor *y = c->m->tensors[n->outputs[0]];
	int64_t ax = n->attrs.axis < 0 ? n->attrs.axis + x->ndim
				       : n->attrs.axis;
	tm_status st = io1(c, n, l, k, n->outputs[0]);
	ltensor *lx;

	if (st)
		return st;
	lx = &c->t[l->in[0]];
	axis_view(x, ax, &l->sm.outer, &l->sm.len, &l->sm.inner);
	if (lx->perm_c) {
		/* A flattened image: only a softmax over all of it keeps
		 * its meaning in another order. */
		if ((uint32_t)l->sm.len != lx->rt.size)
			return need_plain(c, l->in[0], n);
		c->t[l->out].perm_c = lx->perm_c;
		c->t[l->out].perm_hw = lx->perm_hw;
	}
	for (int d = 0; d < 256; d++)
		l->exp_table[d] = (int32_t)lround(
			exp(-(double)d * x->q.scale) * 1073741824.0);
	l->op = TMRT_OP_SOFTMAX;
	l->params = &l->sm;
	l->sm.exp_table = l->exp_table;
	l->sm.output_zp = y->q.zero_point;
	return TM_OK;
}

/* A one-input, one-output layer on the same number of elements: LUT
 * (table already built) or COPY. Its output keeps the input's order. */
static tm_status
lower_unary(lctx *c, const tm_node *n, llayer *l, long k, int32_t op)
{
	const tm_tensor *x = c->m->tensors[n->inputs[0]];
	const tm_tensor *y = c->m->tensors[n->outputs[0]];
	tm_status st = io1(c, n, l, k, n->outputs[0]);
	ltensor *lx, *ly;

	if (st)
		return st;
	lx = &c->t[l->in[0]];
	ly = &c->t[l->out];
	if (lx->rt.size != ly->rt.size)
		return tm_error_set(c->err, TM_ERR_INTERNAL,
				    "layer '%s': input and output sizes "
				    "differ", n->name);
	if (n->op == TM_OP_FLATTEN || n->op == TM_OP_RESHAPE) {
		int same = x->ndim == y->ndim &&
			   memcmp(x->shape, y->shape,
				  (size_t)x->ndim * sizeof *x->shape) == 0;

		if (is_image(y) && !same)
			return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
					    "layer '%s': reshaping '%s' into "
					    "the image '%s' is not supported "
					    "by the integer runtime", n->name,
					    x->name, y->name);
		if (is_image(x) && !same) {
			/* The bytes stay in HWC order. */
			ly->perm_c = x->shape[0];
			ly->perm_hw = x->shape[1] * x->shape[2];
		} else {
			ly->perm_c = lx->perm_c;
			ly->perm_hw = lx->perm_hw;
		}
	} else {
		ly->perm_c = lx->perm_c;
		ly->perm_hw = lx->perm_hw;
	}
	l->op = op;
	if (op == TMRT_OP_LUT) {
		l->params = &l->lut;
		l->lut.size = (int32_t)lx->rt.size;
		l->lut.table = l->table;
	}
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
	case TM_OP_CLIP:
	case TM_OP_LEAKY_RELU:
	case TM_OP_FLATTEN:
	case TM_OP_RESHAPE:
	case TM_OP_CONV2D:
	case TM_OP_BATCHNORM:
	case TM_OP_MAXPOOL2D:
	case TM_OP_AVGPOOL2D:
	case TM_OP_GLOBAL_AVGPOOL:
	case TM_OP_ADD:
	case TM_OP_CONCAT:
	case TM_OP_SOFTMAX:
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
	case TM_OP_CONV2D:
	case TM_OP_BATCHNORM:
		st = lower_conv(c, n, l, k);
		break;
	case TM_OP_MAXPOOL2D:
	case TM_OP_AVGPOOL2D:
	case TM_OP_GLOBAL_AVGPOOL:
		st = lower_pool(c, n, l, k);
		break;
	case TM_OP_ADD:
		st = lower_add(c, n, l, k);
		break;
	case TM_OP_CONCAT:
		st = lower_concat(c, n, l, k);
		break;
	case TM_OP_SOFTMAX:
		st = lower_softmax(c, n, l, k);
		break;
	case TM_OP_RELU:
	case TM_OP_CLIP:
		if (is_fused(c->m, n))
			return TM_OK;	/* the layer before wrote it */
		/* fall through */
	case TM_OP_TANH:
	case TM_OP_LEAKY_RELU:
		build_table(l->table, x, y, n);
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
	case TM_OP_FLATTEN:
	case TM_OP_RESHAPE:
		if (x->q.scale == y->q.scale &&
		    x->q.zero_point == y->q.zero_point) {
			st = lower_unary(c, n, l, k, TMRT_OP_COPY);
		} else {
			build_table(l->table, x, y, n);
			st = lower_unary(c, n, l, k, TMRT_OP_LUT);
		}
		break;
	default:
		return tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				    "layer '%s': op %s is not supported by "
				    "the integer runtime yet", n->name,
				    tm_op_name(n->op));
	}
	c->nl++;	/* so that lctx_fini frees what it owns */
	return st;
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
	for (size_t k = 0; c->l && k < c->nl; k++) {
		free(c->l[k].w);
		free(c->l[k].ins);
		free(c->l[k].cat_in);
	}
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
	free(lw->in_layout);
	free(lw->out_layout);
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

/* How ltensor i orders the model tensor's elements. */
static void
layout_of(const lctx *c, size_t i, tm_priv_layout *lay)
{
	const ltensor *lt = &c->t[i];
	const tm_tensor *t = c->m->tensors[lt->model];

	if (is_image(t)) {
		lay->c = (size_t)t->shape[0];
		lay->hw = (size_t)(t->shape[1] * t->shape[2]);
	} else {
		lay->c = (size_t)lt->perm_c;
		lay->hw = (size_t)lt->perm_hw;
	}
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
			if (tm_model_is_output(m, c->t[i].model))
				continue;
			lw->outputs[n_out] = c->t[i].model;
			io[n_out++] = (int32_t)i;
		}
	lw->n_outputs = n_out;
	lw->in_layout = calloc(m->n_inputs, sizeof *lw->in_layout);
	lw->out_layout = calloc(n_out ? n_out : 1, sizeof *lw->out_layout);
	if (!lw->in_layout || !lw->out_layout) {
		free(io);
		return nomem(c->err);
	}
	for (size_t i = 0; i < m->n_inputs; i++)
		layout_of(c, c->map[m->inputs[i]], &lw->in_layout[i]);
	for (size_t i = 0; i < n_out; i++)
		layout_of(c, (size_t)io[i], &lw->out_layout[i]);

	/* In place (tmrt_layer's rules): the output of a LUT, COPY or
	 * SOFTMAX over its input, of an ADD over its first input (or its
	 * second of the same size), when that input dies there and is not
	 * a model input (inputs must not overlap each other). */
	for (size_t k = 0; k < c->nl; k++) {
		llayer *l = &c->l[k];
		size_t cand = NONE;

		if (l->op == TMRT_OP_LUT || l->op == TMRT_OP_COPY ||
		    l->op == TMRT_OP_SOFTMAX || l->op == TMRT_OP_ADD)
			cand = l->in[0];
		if (l->op == TMRT_OP_ADD &&
		    (c->t[cand].last != (long)k || c->t[cand].def < 0) &&
		    l->add.in2_size == l->add.size)
			cand = l->in[1];
		if (cand != NONE && c->t[cand].last == (long)k &&
		    c->t[cand].def >= 0 &&
		    c->t[cand].rt.size == c->t[l->out].rt.size)
			c->t[l->out].same_as = cand;
	}
	/* An input's life extends to its alias's (latest tensors first,
	 * so chains of aliases carry through). */
	for (size_t i = c->nt; i-- > 0;)
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
		int32_t two[2], *in = two;

		if (l->ins) {
			in = malloc(l->n_in * sizeof *in);
			if (!in) {
				st = nomem(c->err);
				break;
			}
		}
		for (size_t j = 0; j < l->n_in; j++)
			in[j] = (int32_t)(l->ins ? l->ins[j] : l->in[j]);
		st = tm_priv_blob_add_layer(lw->blob, l->name, l->op,
					    l->params, in, (int32_t)l->n_in,
					    (int32_t)l->out, c->err);
		if (in != two)
			free(in);
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

int
tm_lowered_output_hwc(const tm_lowered *l, int32_t i, size_t *channels,
		      size_t *pixels)
{
	const tm_priv_layout *lay;
	const tmrt_model *rm = tm_priv_blob_model(l->lw.blob);
	const tmrt_dims *d;

	if (i < 0 || (size_t)i >= l->lw.n_outputs || !l->lw.out_layout)
		return 0;
	lay = &l->lw.out_layout[i];
	d = &rm->tensors[rm->outputs[i]].dims;
	/* An image tensor is HWC by its dims already. */
	if (!lay->c || (d->c > 1 && (int64_t)d->h * d->w > 1))
		return 0;
	*channels = lay->c;
	*pixels = lay->hw;
	return 1;
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
