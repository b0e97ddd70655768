/* onnx — an ONNX graph (opsets up to 17, per operator: supported[]) into
 * a tm_model.
 *
 * ONNX tensors carry the batch as dimension 0; a tm_model describes one
 * sample. The importer drops dimension 0 of every activation, turns ONNX
 * axes a into a - 1 and refuses (TM_ERR_UNSUPPORTED, naming the node) what
 * would mix samples: an axis 0, a Reshape that moves the batch, a Gemm
 * that reads A transposed, a bias that differs per row.
 *
 * Identity and Dropout become aliases; Constant nodes and initializers are
 * a table of known values, added to the model where a node reads them as
 * weights. Quantized graphs: a DequantizeLinear of integer data is a
 * constant whose int8 values and scales are kept (tm_tensor.quant_given);
 * a QuantizeLinear / DequantizeLinear pair on an activation is removed and
 * its scale and zero point kept on the activation; QLinearConv and
 * QLinearMatMul become a conv2d / dense between such activations.
 *
 * Operator semantics follow the ONNX operator specification
 * (onnx/docs/Operators.md of ONNX 1.12). */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import.h"

#define OPSET_MIN 1	/* per operator: supported[] */
#define OPSET_MAX 17
/* Integer attributes (pads, strides, axes, ...) and reshape dimensions
 * beyond this are refused: no real model has them, and a corrupt file's
 * would overflow the shape arithmetic. */
#define ATTR_MAX ((int64_t)1 << 30)
/* The batch size in a shape computed from the graph (Shape of an
 * activation): unknown, so a marker that Reshape reads as "keep the
 * batch" and that fails any other use. */
#define BATCH_DIM (-((int64_t)1 << 40))
#define DIM_VALUE ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
/* Integer vectors computed at import time (Concat of constants) hold
 * shapes; beyond this many values the file is not describing one. */
#define SHAPE_VALUES_MAX ((size_t)1 << 20)

/* A value known at import time: an initializer, a Constant node's output,
 * a bound input, a dequantized weight. */
typedef struct cst {
	char *name;
	/* The value, decoded on first use from tp (NULL when made here). */
	const Onnx__TensorProto *tp;
	int decoded;
	onnx_tensor v;
	/* From a DequantizeLinear of int8/uint8 data: the int8 values (uint8
	 * shifted by -128) and the scales along qaxis (one when n_sc is 1). */
	int8_t *q8;
	double *sc;
	size_t n_sc;
	int qaxis;
	int zp_nonzero;			/* a zero point was not 0 */
} cst;

/* An ONNX value that stands for a tm tensor of another name. */
typedef struct alias {
	char *from, *to;
} alias;

typedef struct imp {
	const char *path;
	char *dir;
	const onnx_opts *o;
	const Onnx__ModelProto *mp;
	Onnx__GraphProto *g;
	int64_t opset;
	int64_t batch;
	tm_model *m;
	cst **c;			/* stable pointers: held across
					 * additions */
	size_t nc;
	alias *a;
	size_t na;
	size_t shapes_at;		/* nodes whose shapes are inferred */
	unsigned char *done;		/* ONNX nodes folded into another */
	const Onnx__NodeProto *node;	/* being converted */
	size_t at;			/* its index in g->node */
	tm_op op;			/* its row's op (op_unary, op_pool) */
	char nname[256];		/* its name in the model */
	size_t n_given;
	tm_error *err;
} imp;

/* --- errors -------------------------------------------------------------- */

static tm_status
nerr(imp *im, tm_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* An error about the node being converted: "model.onnx: node 'conv1'
 * (Conv, opset 13): ...". */
static tm_status
nerr(imp *im, tm_status code, const char *fmt, ...)
{
	char msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return tm_error_set(im->err, code, "%s: node '%s' (%s, opset %lld): %s",
			    im->path, im->nname, im->node->op_type,
			    (long long)im->opset, msg);
}

/* --- names, aliases, constants ------------------------------------------ */

static const char *
resolve(const imp *im, const char *name)
{
	/* An alias points at an earlier name; chains are short, and a
	 * bound on the walk keeps a corrupt file from looping. */
	for (size_t hops = 0; hops <= im->na; hops++) {
		size_t k;

		for (k = im->na; k-- > 0;)
			if (strcmp(im->a[k].from, name) == 0)
				break;
		if (k == (size_t)-1)
			return name;
		name = im->a[k].to;
	}
	return name;
}

static tm_status
add_alias(imp *im, const char *from, const char *to)
{
	alias *v = realloc(im->a, (im->na + 1) * sizeof *v);

	if (!v)
		return tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
	im->a = v;
	v[im->na].from = strdup(from);
	v[im->na].to = strdup(resolve(im, to));
	if (!v[im->na].from || !v[im->na].to) {
		free(v[im->na].from);
		free(v[im->na].to);
		return tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
	}
	im->na++;
	return TM_OK;
}

static cst *
find_cst(imp *im, const char *name)
{
	name = resolve(im, name);
	for (size_t k = im->nc; k-- > 0;)
		if (strcmp(im->c[k]->name, name) == 0)
			return im->c[k];
	return NULL;
}

static cst *
new_cst(imp *im, const char *name, const Onnx__TensorProto *tp)
{
	cst **v = realloc(im->c, (im->nc + 1) * sizeof *v), *c;

	if (!v) {
		tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	im->c = v;
	c = calloc(1, sizeof *c);
	if (!c || !(c->name = strdup(name))) {
		free(c);
		tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	c->tp = tp;
	v[im->nc++] = c;
	return c;
}

static void
cst_fini(cst *c)
{
	free(c->name);
	onnx_tensor_fini(&c->v);
	free(c->q8);
	free(c->sc);
}

/* The constant's values, decoded on first use. */
static tm_status
cst_get(imp *im, cst *c)
{
	char what[400];

	if (c->decoded)
		return TM_OK;
	snprintf(what, sizeof what, "%s: tensor '%s'", im->path, c->name);
	if (onnx_tensor_decode(c->tp, im->dir, what, &c->v, im->err))
		return im->err->code;
	c->decoded = 1;
	return TM_OK;
}

/* Element k as a double, whatever the type. */
static double
cst_at(const cst *c, size_t k)
{
	return c->v.f ? (double)c->v.f[k] : (double)c->v.i[k];
}

/* Input k of the node, resolved; NULL when absent or empty. */
static const char *
in_name(imp *im, size_t k)
{
	if (k >= im->node->n_input || !im->node->input[k] ||
	    !im->node->input[k][0])
		return NULL;
	return resolve(im, im->node->input[k]);
}

/* Input k as a constant (decoded), or NULL with err unset when it is not
 * one. */
static cst *
in_cst(imp *im, size_t k)
{
	const char *n = in_name(im, k);
	cst *c = n ? find_cst(im, n) : NULL;

	if (c && cst_get(im, c))
		return NULL;
	return c;
}

/* Input k as an activation already in the model. */
static tm_status
in_act(imp *im, size_t k, const char **name)
{
	const char *n = in_name(im, k);
	tm_tensor *t;

	if (!n)
		return nerr(im, TM_ERR_INVALID, "input %zu is missing", k);
	if (find_cst(im, n))
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "input %zu ('%s') is a constant where tmpipe needs "
			    "an activation", k, n);
	t = tm_model_find_tensor(im->m, n);
	if (!t)
		return nerr(im, TM_ERR_INVALID,
			    "input '%s' is not produced by an earlier node "
			    "or a graph input", n);
	*name = n;
	return TM_OK;
}

/* Shapes of every activation so far: the model's own inference, run
 * with a placeholder output list so it marks no outputs yet. */
static tm_status
infer(imp *im)
{
	tm_model *m = im->m;
	size_t keep_n = m->n_outputs, *keep = m->outputs, dummy = 0;
	tm_status st;

	if (m->n_nodes == 0 || m->n_nodes == im->shapes_at)
		return TM_OK;
	m->n_outputs = 1;
	m->outputs = &dummy;
	st = tm_model_finalize(m, im->err);
	m->n_outputs = keep_n;
	m->outputs = keep;
	if (st) {
		tm_error_prefix(im->err, "%s", im->path);
		return st;
	}
	im->shapes_at = m->n_nodes;
	return TM_OK;
}

static tm_status
act_shape(imp *im, const char *name, const tm_tensor **t)
{
	tm_status st = infer(im);

	if (st)
		return st;
	*t = tm_model_find_tensor(im->m, name);
	return *t ? TM_OK : nerr(im, TM_ERR_INTERNAL, "no tensor '%s'", name);
}

/* A name for an extra tensor or node made from base: base + suffix, with
 * a counter when taken. */
static tm_status
fresh_name(imp *im, const char *base, const char *suffix, char *buf,
	   size_t size)
{
	for (int k = 1; k <= 1000; k++) {
		int r = k == 1 ? snprintf(buf, size, "%s%s", base, suffix)
			       : snprintf(buf, size, "%s%s%d", base, suffix,
					  k);

		/* A cut name could be the base itself, or another's. */
		if (r < 0 || (size_t)r >= size)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "name '%.64s...' is too long to derive "
				    "names from", base);
		if (!tm_model_find_tensor(im->m, buf) && !find_cst(im, buf))
			return TM_OK;
	}
	return nerr(im, TM_ERR_INVALID, "no free name for %.64s%s%s", base,
		    strlen(base) > 64 ? "..." : "", suffix);
}

/* name into buf whole: a name cut to fit could be another tensor's (the
 * check fresh_name makes for derived names). */
static tm_status
copy_name(imp *im, const char *name, char *buf, size_t size)
{
	int r = snprintf(buf, size, "%s", name);

	if (r < 0 || (size_t)r >= size)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "name '%.64s...' is longer than the %zu bytes "
			    "tmpipe keeps", name, size - 1);
	return TM_OK;
}

/* --- attributes ---------------------------------------------------------- */

static const Onnx__AttributeProto *
attr(const imp *im, const char *name)
{
	for (size_t k = 0; k < im->node->n_attribute; k++) {
		const Onnx__AttributeProto *a = im->node->attribute[k];

		if (a && a->name && strcmp(a->name, name) == 0)
			return a;
	}
	return NULL;
}

static tm_status
attr_int(imp *im, const char *name, int64_t def, int64_t *v)
{
	const Onnx__AttributeProto *a = attr(im, name);

	*v = def;
	if (!a)
		return TM_OK;
	if (!a->has_i)
		return nerr(im, TM_ERR_PARSE, "attribute %s is not an int",
			    name);
	if (a->i < -ATTR_MAX || a->i > ATTR_MAX)
		return nerr(im, TM_ERR_INVALID, "attribute %s is %lld", name,
			    (long long)a->i);
	*v = a->i;
	return TM_OK;
}

static tm_status
attr_float(imp *im, const char *name, float def, float *v)
{
	const Onnx__AttributeProto *a = attr(im, name);

	*v = def;
	if (!a)
		return TM_OK;
	if (!a->has_f)
		return nerr(im, TM_ERR_PARSE, "attribute %s is not a float",
			    name);
	*v = a->f;
	return TM_OK;
}

/* ints attribute of exactly want values (or absent: *n = 0). */
static tm_status
attr_ints(imp *im, const char *name, size_t want, int64_t *v, size_t *n)
{
	const Onnx__AttributeProto *a = attr(im, name);

	*n = 0;
	if (!a)
		return TM_OK;
	if (a->n_ints != want)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "attribute %s has %zu values; tmpipe handles "
			    "2-D windows (%zu values)", name, a->n_ints, want);
	for (size_t k = 0; k < want; k++)
		if (a->ints[k] < -ATTR_MAX || a->ints[k] > ATTR_MAX)
			return nerr(im, TM_ERR_INVALID,
				    "attribute %s holds %lld", name,
				    (long long)a->ints[k]);
	memcpy(v, a->ints, want * sizeof *v);
	*n = want;
	return TM_OK;
}

static const char *
attr_string(imp *im, const char *name, const char *def, char *buf,
	    size_t size)
{
	const Onnx__AttributeProto *a = attr(im, name);

	if (!a || !a->has_s)
		return def;
	/* s is not NUL-terminated: a length past INT_MAX made a negative
	 * precision, which reads to a NUL. */
	snprintf(buf, size, "%.*s",
		 (int)(a->s.len < size ? a->s.len : size - 1),
		 a->s.data ? (const char *)a->s.data : "");
	return buf;
}

/* Axis a of an ONNX tensor of rank r (with the batch) as a per-sample
 * axis; axis 0 is the batch. */
static tm_status
sample_axis(imp *im, int64_t a, int rank, int64_t *out)
{
	if (a < 0)
		a += rank;
	if (a < 0 || a >= rank)
		return nerr(im, TM_ERR_INVALID,
			    "axis %lld is outside the %d dimensions",
			    (long long)a, rank);
	if (a == 0)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "axis 0 is the batch dimension; tmpipe models "
			    "compute one sample at a time");
	*out = a - 1;
	return TM_OK;
}

/* --- adding to the model ------------------------------------------------- */

static tm_status
add_node(imp *im, const char *suffix, tm_op op, const char *const *in,
	 size_t n_in, const char *out, tm_node **node)
{
	char name[300];
	tm_status st;

	snprintf(name, sizeof name, "%s%s", im->nname, suffix);
	st = tm_model_add_node(im->m, name, op, in, n_in, &out, 1, node,
			       im->err);
	if (st)
		tm_error_prefix(im->err, "%s", im->path);
	return st;
}

/* Puts constant c into the model (once) as a float tensor named name with
 * the given shape (c's own when ndim < 0); its int8 data and scales go
 * with it when the model gave them. */
static tm_status
put_const(imp *im, cst *c, const char *name, int ndim, const int64_t *shape)
{
	tm_tensor *t = tm_model_find_tensor(im->m, name);
	float *f = c->v.f;
	tm_status st;

	if (t)
		return TM_OK;
	if (ndim < 0) {
		ndim = c->v.ndim;
		shape = c->v.dims;
	}
	if (!f) {
		f = malloc((c->v.n ? c->v.n : 1) * sizeof *f);
		if (!f)
			return tm_error_set(im->err, TM_ERR_NOMEM,
					    "out of memory");
		for (size_t k = 0; k < c->v.n; k++)
			f[k] = (float)c->v.i[k];
	}
	st = tm_model_add_const(im->m, name, ndim, shape, f, im->err);
	if (f != c->v.f)
		free(f);
	if (st)
		tm_error_prefix(im->err, "%s", im->path);
	return st;
}

/* Marks weight tensor name (just added from c, its channels along axis 0)
 * with the model's int8 values and scales. */
static tm_status
give_weights(imp *im, cst *c, const char *name, const int8_t *q8, int axis)
{
	tm_tensor *t = tm_model_find_tensor(im->m, name);
	size_t n = tm_tensor_numel(t);

	if (!c->q8 || !im->o->keep_scales)
		return TM_OK;
	if (c->zp_nonzero)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "weight '%s' has a nonzero zero point; tmpipe "
			    "weights are symmetric (zero point 0)", c->name);
	if (c->n_sc > 1 && axis != 0)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "weight '%s' has scales along axis %d, not along "
			    "its output channels", c->name, c->qaxis);
	if (t->quant_given)
		return TM_OK;
	t->q8 = malloc(n ? n : 1);
	if (!t->q8)
		return tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
	memcpy(t->q8, q8, n);
	t->q.zero_point = 0;
	if (c->n_sc > 1) {
		t->q.scheme = TM_QSCHEME_PER_CHANNEL;
		t->q.axis = 0;
		t->q.n_channels = c->n_sc;
		t->q.scales = malloc(c->n_sc * sizeof *t->q.scales);
		t->q.zero_points = calloc(c->n_sc, sizeof *t->q.zero_points);
		if (!t->q.scales || !t->q.zero_points)
			return tm_error_set(im->err, TM_ERR_NOMEM,
					    "out of memory");
		memcpy(t->q.scales, c->sc, c->n_sc * sizeof *c->sc);
	} else {
		t->q.scheme = TM_QSCHEME_PER_TENSOR;
		t->q.scale = c->sc[0];
	}
	t->quant_given = 1;
	im->n_given++;
	return TM_OK;
}

/* The activation takes the model's scale and zero point (int8): the range
 * that maps onto [-128, 127] exactly, kept out of calibration. */
static tm_status
give_act(imp *im, const char *name, double scale, int32_t zp)
{
	tm_tensor *t = tm_model_find_tensor(im->m, name);

	if (!im->o->keep_scales)
		return TM_OK;
	if (!t || t->kind == TM_TENSOR_CONST)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "'%s' is not an activation", name);
	if (!(scale > 0.0) || !isfinite(scale))
		return nerr(im, TM_ERR_INVALID, "scale %g of '%s' is not "
			    "positive", scale, name);
	if (t->quant_given) {
		if (t->q.scale != scale || t->q.zero_point != zp)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "'%s' is quantized twice, with (%g, %d) "
				    "and (%g, %d)", name, t->q.scale,
				    (int)t->q.zero_point, scale, (int)zp);
		return TM_OK;
	}
	t->q.scheme = TM_QSCHEME_PER_TENSOR;
	t->q.scale = scale;
	t->q.zero_point = zp;
	t->has_range = 1;
	t->fixed_range = 1;
	t->lo = (float)(scale * (-128 - zp));
	t->hi = (float)(scale * (127 - zp));
	t->quant_given = 1;
	im->n_given++;
	return TM_OK;
}

/* --- windows: Conv, MaxPool, AveragePool ---------------------------------- */

/* Fills kernel (when the op has the attribute), strides, dilations and
 * explicit pads of a 2-D window over x [C, H, W], resolving auto_pad from
 * the input's known size (ONNX Conv/Pool: SAME_* gives out = ceil(in /
 * stride), the extra padding at the end for SAME_UPPER, at the start for
 * SAME_LOWER). */
static tm_status
window(imp *im, const tm_tensor *x, const int64_t *kernel, int dil_ok,
       tm_attrs *a)
{
	char buf[32];
	const char *ap = attr_string(im, "auto_pad", "NOTSET", buf, sizeof buf);
	int64_t v[4];
	size_t n;
	tm_status st;

	if (x->ndim != 3)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "input has %d dimensions; tmpipe handles 2-D "
			    "windows over [N, C, H, W]", x->ndim + 1);
	if ((st = attr_ints(im, "strides", 2, v, &n)))
		return st;
	if (n)
		memcpy(a->stride, v, sizeof a->stride);
	if ((st = attr_ints(im, "dilations", 2, v, &n)))
		return st;
	if (n) {
		if (!dil_ok && (v[0] != 1 || v[1] != 1))
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "dilations are not supported here");
		memcpy(a->dilation, v, sizeof a->dilation);
	}
	if ((st = attr_ints(im, "pads", 4, v, &n)))
		return st;
	if (n) {
		/* ONNX: [x1_begin, x2_begin, x1_end, x2_end]; tm_attrs:
		 * top, left, bottom, right: the same order. */
		memcpy(a->pads, v, sizeof a->pads);
	}
	if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
		for (int d = 0; d < 2; d++) {
			int64_t in = x->shape[1 + d], s = a->stride[d];
			int64_t out = s > 0 ? (in + s - 1) / s : 1;
			int64_t span = (kernel[d] - 1) * a->dilation[d] + 1;
			int64_t tot = (out - 1) * s + span - in;

			if (tot < 0)
				tot = 0;
			a->pads[d] = ap[5] == 'U' ? tot / 2 : tot - tot / 2;
			a->pads[d + 2] = tot - a->pads[d];
		}
	} else if (strcmp(ap, "VALID") == 0) {
		memset(a->pads, 0, sizeof a->pads);
	} else if (strcmp(ap, "NOTSET") != 0) {
		return nerr(im, TM_ERR_INVALID, "auto_pad '%s' is not one of "
			    "NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
	}
	return TM_OK;
}

/* ceil_mode 1: the output is ceil((in + pads - span) / stride) + 1; the
 * same windows come from extra padding at the end, which max pooling and
 * average pooling without count_include_pad ignore. */
static tm_status
ceil_pads(imp *im, const tm_tensor *x, tm_attrs *a)
{
	for (int d = 0; d < 2; d++) {
		int64_t in = x->shape[1 + d] + a->pads[d] + a->pads[d + 2];
		int64_t span = (a->kernel[d] - 1) * a->dilation[d] + 1;
		int64_t s = a->stride[d];
		int64_t out, extra;

		if (in < span || s < 1)
			continue;
		out = (in - span + s - 1) / s + 1;
		extra = (out - 1) * s + span - in;
		if (extra > 0) {
			a->pads[d + 2] += extra;
			if (a->pads[d + 2] >= a->kernel[d])
				return nerr(im, TM_ERR_UNSUPPORTED,
					    "ceil_mode needs more padding "
					    "than the kernel size");
		}
	}
	return TM_OK;
}

/* --- operators ----------------------------------------------------------- */

static const char *
out_name(imp *im, size_t k)
{
	if (k >= im->node->n_output || !im->node->output[k])
		return NULL;
	return im->node->output[k][0] ? im->node->output[k] : NULL;
}

/* Only output 0 may be used (Dropout's mask, MaxPool's indices, training
 * BatchNormalization's statistics are not). */
static tm_status
one_output(imp *im)
{
	if (!out_name(im, 0))
		return nerr(im, TM_ERR_INVALID, "output 0 is missing");
	for (size_t k = 1; k < im->node->n_output; k++)
		if (out_name(im, k))
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "output %zu ('%s') is not supported; only "
				    "the first output is", k, out_name(im, k));
	return TM_OK;
}

static tm_status
op_unary(imp *im)
{
	const tm_op op = im->op;
	const char *x;
	tm_node *n;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = add_node(im, "", op, &x, 1, out_name(im, 0), &n);
	if (!st && op == TM_OP_LEAKY_RELU)
		st = attr_float(im, "alpha", 0.01f, &n->attrs.alpha);
	return st;
}

static tm_status
op_clip(imp *im)
{
	const char *x;
	tm_node *n;
	float lo = -INFINITY, hi = INFINITY;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (st)
		return st;
	if (im->opset < 11) {
		/* Clip-6: attributes, defaulting to the float range. */
		st = attr_float(im, "min", -INFINITY, &lo);
		if (!st)
			st = attr_float(im, "max", INFINITY, &hi);
	} else {
		for (size_t k = 1; k <= 2 && !st; k++) {
			cst *c;

			if (!in_name(im, k))
				continue;
			c = in_cst(im, k);
			if (!c)
				return im->err->code
					       ? im->err->code
					       : nerr(im, TM_ERR_UNSUPPORTED,
						      "%s must be a constant",
						      k == 1 ? "min" : "max");
			if (c->v.n != 1)
				return nerr(im, TM_ERR_INVALID,
					    "%s must be a scalar",
					    k == 1 ? "min" : "max");
			*(k == 1 ? &lo : &hi) = (float)cst_at(c, 0);
		}
	}
	if (st)
		return st;
	st = add_node(im, "", TM_OP_CLIP, &x, 1, out_name(im, 0), &n);
	if (!st) {
		n->attrs.clip_min = lo;
		n->attrs.clip_max = hi;
	}
	return st;
}

/* A weight input: constant, the given rank. */
static tm_status
want_weight(imp *im, size_t k, int ndim, const char *what, cst **c)
{
	*c = in_cst(im, k);
	if (!*c) {
		if (im->err->code)
			return im->err->code;
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "%s ('%s') is not a constant; tmpipe needs "
			    "constant weights", what,
			    in_name(im, k) ? in_name(im, k) : "");
	}
	if ((*c)->v.ndim != ndim)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "%s '%s' has %d dimensions; tmpipe handles %d",
			    what, (*c)->name, (*c)->v.ndim, ndim);
	return TM_OK;
}

static tm_status
op_conv(imp *im, const char *x, cst *w, cst *b, const char *bname,
	const char *y)
{
	const char *in[3];
	const tm_tensor *xt;
	tm_attrs a;
	tm_node *n;
	int64_t v[2], k[2] = { w->v.dims[2], w->v.dims[3] };
	size_t nv;
	tm_status st = act_shape(im, x, &xt);

	if (st)
		return st;
	memset(&a, 0, sizeof a);
	a.stride[0] = a.stride[1] = a.dilation[0] = a.dilation[1] = 1;
	if ((st = attr_ints(im, "kernel_shape", 2, v, &nv)))
		return st;
	if (nv && (v[0] != k[0] || v[1] != k[1]))
		return nerr(im, TM_ERR_INVALID,
			    "kernel_shape %lldx%lld does not match weight '%s'",
			    (long long)v[0], (long long)v[1], w->name);
	if ((st = window(im, xt, k, 1, &a)))
		return st;
	if ((st = attr_int(im, "group", 1, &a.group)))
		return st;
	in[0] = x;
	in[1] = w->name;
	if ((st = put_const(im, w, w->name, -1, NULL)))
		return st;
	if ((st = give_weights(im, w, w->name, w->q8, 0)))
		return st;
	if (b) {
		if (b->v.ndim != 1)
			return nerr(im, TM_ERR_INVALID, "bias '%s' is not a "
				    "vector", b->name);
		in[2] = bname;
		if ((st = put_const(im, b, bname, -1, NULL)))
			return st;
	}
	st = add_node(im, "", TM_OP_CONV2D, in, b ? 3 : 2, y, &n);
	if (st)
		return st;
	memcpy(n->attrs.stride, a.stride, sizeof a.stride);
	memcpy(n->attrs.dilation, a.dilation, sizeof a.dilation);
	memcpy(n->attrs.pads, a.pads, sizeof a.pads);
	n->attrs.group = a.group;
	return TM_OK;
}

static tm_status
op_conv_float(imp *im)
{
	const char *x;
	cst *w, *b = NULL;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = want_weight(im, 1, 4, "weight", &w);
	if (!st && in_name(im, 2)) {
		b = in_cst(im, 2);
		if (!b)
			return im->err->code ? im->err->code
					     : nerr(im, TM_ERR_UNSUPPORTED,
						    "bias is not a constant");
	}
	if (st)
		return st;
	return op_conv(im, x, w, b, b ? b->name : NULL, out_name(im, 0));
}

static tm_status
op_pool(imp *im)
{
	const tm_op op = im->op;
	const char *x;
	const tm_tensor *xt;
	tm_attrs a;
	tm_node *n;
	int64_t v[2], ceil_mode = 0, cip = 0, so = 0;
	size_t nv;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = act_shape(im, x, &xt);
	if (st)
		return st;
	if (op == TM_OP_GLOBAL_AVGPOOL) {
		if (xt->ndim != 3)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "input has %d dimensions; tmpipe handles "
				    "[N, C, H, W]", xt->ndim + 1);
		return add_node(im, "", op, &x, 1, out_name(im, 0), NULL);
	}
	memset(&a, 0, sizeof a);
	a.stride[0] = a.stride[1] = a.dilation[0] = a.dilation[1] = 1;
	if ((st = attr_ints(im, "kernel_shape", 2, v, &nv)))
		return st;
	if (!nv)
		return nerr(im, TM_ERR_INVALID, "kernel_shape is missing");
	memcpy(a.kernel, v, sizeof a.kernel);
	if ((st = window(im, xt, a.kernel, op == TM_OP_MAXPOOL2D, &a)))
		return st;
	if ((st = attr_int(im, "ceil_mode", 0, &ceil_mode)) ||
	    (st = attr_int(im, "count_include_pad", 0, &cip)) ||
	    (st = attr_int(im, "storage_order", 0, &so)))
		return st;
	if (ceil_mode) {
		if (op == TM_OP_AVGPOOL2D && cip)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "ceil_mode with count_include_pad is not "
				    "supported");
		if ((st = ceil_pads(im, xt, &a)))
			return st;
	}
	st = add_node(im, "", op, &x, 1, out_name(im, 0), &n);
	if (st)
		return st;
	memcpy(n->attrs.kernel, a.kernel, sizeof a.kernel);
	memcpy(n->attrs.stride, a.stride, sizeof a.stride);
	memcpy(n->attrs.dilation, a.dilation, sizeof a.dilation);
	memcpy(n->attrs.pads, a.pads, sizeof a.pads);
	n->attrs.count_include_pad = (int)cip;
	return TM_OK;
}

static tm_status
op_batchnorm(imp *im)
{
	const char *in[5];
	tm_node *n;
	int64_t training = 0, spatial = 1;
	float eps;
	tm_status st = in_act(im, 0, &in[0]);

	if (!st)
		st = one_output(im);
	if (!st)
		st = attr_int(im, "training_mode", 0, &training);
	if (!st)
		st = attr_int(im, "spatial", 1, &spatial);
	if (!st)
		st = attr_float(im, "epsilon", 1e-5f, &eps);
	if (st)
		return st;
	if (training)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "training_mode 1 (batch statistics) is not "
			    "supported; export in eval mode");
	if (!spatial)
		return nerr(im, TM_ERR_UNSUPPORTED, "spatial 0 is not "
			    "supported");
	for (size_t k = 1; k <= 4; k++) {
		cst *c;

		if ((st = want_weight(im, k, 1, "statistic", &c)))
			return st;
		in[k] = c->name;
		if ((st = put_const(im, c, c->name, -1, NULL)))
			return st;
	}
	st = add_node(im, "", TM_OP_BATCHNORM, in, 5, out_name(im, 0), &n);
	if (!st)
		n->attrs.epsilon = eps;
	return st;
}

/* dst[N][K] = src[K][N] * alpha, for floats and (when given) int8. */
static tm_status
transpose(imp *im, const cst *src, cst *dst, float alpha)
{
	int64_t K = src->v.dims[0], N = src->v.dims[1];

	dst->v.ndim = 2;
	dst->v.dims[0] = N;
	dst->v.dims[1] = K;
	dst->v.n = src->v.n;
	dst->v.dtype = ONNX_FLOAT;
	dst->v.f = malloc((src->v.n ? src->v.n : 1) * sizeof *dst->v.f);
	if (!dst->v.f)
		return tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
	for (int64_t k = 0; k < K; k++)
		for (int64_t j = 0; j < N; j++)
			dst->v.f[j * K + k] =
				(float)cst_at(src, (size_t)(k * N + j)) * alpha;
	if (src->q8) {
		dst->q8 = malloc(src->v.n ? src->v.n : 1);
		dst->sc = malloc(src->n_sc * sizeof *dst->sc);
		if (!dst->q8 || !dst->sc)
			return tm_error_set(im->err, TM_ERR_NOMEM,
					    "out of memory");
		for (int64_t k = 0; k < K; k++)
			for (int64_t j = 0; j < N; j++)
				dst->q8[j * K + k] = src->q8[k * N + j];
		memcpy(dst->sc, src->sc, src->n_sc * sizeof *dst->sc);
		dst->n_sc = src->n_sc;
		/* Scales along src axis 1 (N) are along dst axis 0. */
		dst->qaxis = src->n_sc > 1 ? (src->qaxis == 1 ? 0 : 1) : 0;
		dst->zp_nonzero = src->zp_nonzero;
	}
	dst->decoded = 1;
	return TM_OK;
}

/* Dense y = W x + b from a weight w that is [N, K] (trans) or [K, N],
 * scaled by alpha, and an optional bias vector b of N values (or one,
 * broadcast) scaled by beta. */
static tm_status
dense(imp *im, const char *x, cst *w, int trans, float alpha, cst *b,
      float beta, const char *y)
{
	const char *in[3] = { x, NULL, NULL };
	char wn[300], bn[300];
	int64_t N = trans ? w->v.dims[0] : w->v.dims[1];
	tm_status st;

	if (trans && alpha == 1.0f) {
		in[1] = w->name;
		if ((st = put_const(im, w, w->name, -1, NULL)) ||
		    (st = give_weights(im, w, w->name, w->q8,
				       w->n_sc > 1 ? w->qaxis : 0)))
			return st;
	} else {
		cst t;

		memset(&t, 0, sizeof t);
		if (trans && w->q8)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "alpha != 1 on quantized weights");
		if (trans) {
			t.v.ndim = 2;
			t.v.dims[0] = w->v.dims[0];
			t.v.dims[1] = w->v.dims[1];
			t.v.n = w->v.n;
			t.v.f = malloc((w->v.n ? w->v.n : 1) * sizeof *t.v.f);
			if (!t.v.f)
				return tm_error_set(im->err, TM_ERR_NOMEM,
						    "out of memory");
			for (size_t k = 0; k < w->v.n; k++)
				t.v.f[k] = (float)cst_at(w, k) * alpha;
		} else if ((st = transpose(im, w, &t, alpha))) {
			cst_fini(&t);
			return st;
		}
		if ((st = fresh_name(im, w->name, "/T", wn, sizeof wn))) {
			cst_fini(&t);
			return st;
		}
		t.name = wn;
		st = put_const(im, &t, wn, -1, NULL);
		if (!st && t.q8 && alpha != 1.0f)
			st = nerr(im, TM_ERR_UNSUPPORTED,
				  "alpha != 1 on quantized weights");
		if (!st)
			st = give_weights(im, &t, wn, t.q8, t.qaxis);
		t.name = NULL;
		cst_fini(&t);
		if (st)
			return st;
		in[1] = wn;
	}
	if (b) {
		float *v;
		int64_t shape[1] = { N };
		int rows = 1;

		for (int d = 0; d + 1 < b->v.ndim; d++)
			rows *= b->v.dims[d] == 1;
		if (!(b->v.n == 1 || (b->v.n == (size_t)N && rows)))
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "bias '%s' is not a vector of %lld values "
				    "(a bias per row depends on the batch)",
				    b->name, (long long)N);
		if (b->v.n == (size_t)N && beta == 1.0f && b->v.ndim == 1)
			st = copy_name(im, b->name, bn, sizeof bn);
		else
			st = fresh_name(im, b->name, "/bias", bn, sizeof bn);
		if (st)
			return st;
		v = malloc((size_t)N * sizeof *v);
		if (!v)
			return tm_error_set(im->err, TM_ERR_NOMEM,
					    "out of memory");
		for (int64_t k = 0; k < N; k++)
			v[k] = (float)cst_at(b, b->v.n == 1 ? 0 : (size_t)k) *
			       beta;
		st = tm_model_find_tensor(im->m, bn)
			     ? TM_OK
			     : tm_model_add_const(im->m, bn, 1, shape, v,
						  im->err);
		free(v);
		if (st)
			return st;
		in[2] = bn;
	}
	return add_node(im, "", TM_OP_DENSE, in, b ? 3 : 2, y, NULL);
}

static tm_status
op_gemm(imp *im)
{
	const char *x;
	cst *w, *b = NULL;
	int64_t ta, tb;
	float alpha, beta;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = attr_int(im, "transA", 0, &ta);
	if (!st)
		st = attr_int(im, "transB", 0, &tb);
	if (!st)
		st = attr_float(im, "alpha", 1.0f, &alpha);
	if (!st)
		st = attr_float(im, "beta", 1.0f, &beta);
	if (!st)
		st = want_weight(im, 1, 2, "B", &w);
	if (st)
		return st;
	if (ta)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "transA 1 reads the batch as features");
	if (in_name(im, 2)) {
		b = in_cst(im, 2);
		if (!b)
			return im->err->code ? im->err->code
					     : nerr(im, TM_ERR_UNSUPPORTED,
						    "C is not a constant");
	}
	return dense(im, x, w, (int)tb, alpha, b, beta, out_name(im, 0));
}

/* How often an ONNX value is read (nodes and graph outputs). */
static size_t
uses(const imp *im, const char *name)
{
	size_t u = 0;

	for (size_t i = 0; i < im->g->n_node; i++) {
		const Onnx__NodeProto *nd = im->g->node[i];

		for (size_t k = 0; k < nd->n_input; k++)
			u += nd->input[k] && strcmp(nd->input[k], name) == 0;
	}
	for (size_t k = 0; k < im->g->n_output; k++)
		u += im->g->output[k]->name &&
		     strcmp(im->g->output[k]->name, name) == 0;
	return u;
}

static tm_status
op_matmul(imp *im)
{
	const char *x, *y;
	const tm_tensor *xt;
	cst *w, *b = NULL;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = want_weight(im, 1, 2, "B", &w);
	if (!st)
		st = act_shape(im, x, &xt);
	if (st)
		return st;
	y = out_name(im, 0);
	if (xt->ndim == 0)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "a 1-D input has no batch dimension");
	if (xt->ndim > 1) {
		const char *in[2] = { x, w->name };

		if (w->q8)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "quantized weights need a [N, K] input");
		if ((st = put_const(im, w, w->name, -1, NULL)))
			return st;
		return add_node(im, "", TM_OP_MATMUL, in, 2, y, NULL);
	}
	/* MatMul then Add of a constant vector: one dense with a bias
	 * (PyTorch exports Linear so at some opsets). */
	if (uses(im, im->node->output[0]) == 1) {
		for (size_t j = im->at + 1; j < im->g->n_node; j++) {
			const Onnx__NodeProto *nd = im->g->node[j];
			const char *other;
			cst *c;

			if (nd->n_input != 2 || !nd->op_type ||
			    strcmp(nd->op_type, "Add") || nd->n_output != 1)
				continue;
			if (strcmp(nd->input[0], y) == 0)
				other = nd->input[1];
			else if (strcmp(nd->input[1], y) == 0)
				other = nd->input[0];
			else
				continue;
			c = find_cst(im, other);
			if (!c || cst_get(im, c) || c->v.ndim > 2 ||
			    c->v.n != (size_t)w->v.dims[1] ||
			    (c->v.ndim == 2 && c->v.dims[0] != 1)) {
				tm_error_clear(im->err);
				break;
			}
			b = c;
			y = nd->output[0];
			im->done[j] = 1;
			break;
		}
	}
	return dense(im, x, w, 0, 1.0f, b, 1.0f, y);
}

static tm_status
op_add(imp *im)
{
	const char *a = in_name(im, 0), *b = in_name(im, 1), *in[2];
	const tm_tensor *at;
	char bn[300];
	cst *ca, *cb;
	tm_status st = one_output(im);

	if (st)
		return st;
	if (!a || !b)
		return nerr(im, TM_ERR_INVALID, "Add needs two inputs");
	ca = find_cst(im, a);
	cb = find_cst(im, b);
	if (ca && cb)
		return nerr(im, TM_ERR_UNSUPPORTED, "adds two constants");
	if (ca) {
		const char *t = a;

		a = b;
		b = t;
		cb = ca;
	}
	if ((st = act_shape(im, a, &at)))
		return st;
	in[0] = a;
	if (cb) {
		/* Numpy broadcasting from the right: dimensions beyond one
		 * sample's rank must be 1 (they would meet the batch). */
		int drop;

		if ((st = cst_get(im, cb)))
			return st;
		drop = cb->v.ndim > at->ndim ? cb->v.ndim - at->ndim : 0;
		for (int d = 0; d < drop; d++)
			if (cb->v.dims[d] != 1)
				return nerr(im, TM_ERR_UNSUPPORTED,
					    "constant '%s' varies along the "
					    "batch dimension", cb->name);
		if (drop) {
			if ((st = fresh_name(im, cb->name, "/sample", bn,
					     sizeof bn)))
				return st;
		} else if ((st = copy_name(im, cb->name, bn, sizeof bn))) {
			return st;
		}
		if ((st = put_const(im, cb, bn, cb->v.ndim - drop,
				    cb->v.dims + drop)))
			return st;
		in[1] = bn;
	} else {
		const tm_tensor *bt = tm_model_find_tensor(im->m, b);

		if (!bt)
			return nerr(im, TM_ERR_INVALID, "input '%s' is not "
				    "produced by an earlier node", b);
		if (bt->ndim != at->ndim)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "'%s' and '%s' have different ranks; "
				    "both carry the batch", a, b);
		in[1] = b;
	}
	return add_node(im, "", TM_OP_ADD, in, 2, out_name(im, 0), NULL);
}

static tm_status
op_concat(imp *im)
{
	const char *in[64];
	const tm_tensor *xt;
	int64_t axis, ax;
	size_t n = im->node->n_input;
	tm_node *nd;
	tm_status st = one_output(im);

	if (st)
		return st;
	if (n < 1 || n > 64)
		return nerr(im, TM_ERR_UNSUPPORTED, "%zu inputs (1 to 64)", n);
	for (size_t k = 0; k < n; k++)
		if ((st = in_act(im, k, &in[k])))
			return st;
	if (!attr(im, "axis"))
		return nerr(im, TM_ERR_INVALID, "attribute axis is missing");
	if ((st = attr_int(im, "axis", 0, &axis)) ||
	    (st = act_shape(im, in[0], &xt)) ||
	    (st = sample_axis(im, axis, xt->ndim + 1, &ax)))
		return st;
	st = add_node(im, "", TM_OP_CONCAT, in, n, out_name(im, 0), &nd);
	if (!st)
		nd->attrs.axis = ax;
	return st;
}

static tm_status
op_flatten(imp *im)
{
	const char *x;
	const tm_tensor *xt;
	int64_t axis, ax;
	tm_node *n;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = attr_int(im, "axis", 1, &axis);
	if (!st)
		st = act_shape(im, x, &xt);
	if (st)
		return st;
	/* ONNX Flatten accepts axis == rank (output [N*..., 1]). */
	if (axis == xt->ndim + 1)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "axis %lld (the rank) is not supported",
			    (long long)axis);
	if ((st = sample_axis(im, axis, xt->ndim + 1, &ax)))
		return st;
	/* Axis a >= 2 gives [N * d1 ... d(a-1), rest] in ONNX: the same
	 * values in the same order as tmpipe's [d1 ... d(a-1), rest] per
	 * sample. */
	st = add_node(im, "", TM_OP_FLATTEN, &x, 1, out_name(im, 0), &n);
	if (!st)
		n->attrs.axis = ax;
	return st;
}

static tm_status
op_reshape(imp *im)
{
	const char *x;
	const tm_tensor *xt;
	cst *s;
	int64_t allowzero = 0, rest = 1;
	tm_node *n;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = attr_int(im, "allowzero", 0, &allowzero);
	if (!st)
		st = act_shape(im, x, &xt);
	if (st)
		return st;
	s = in_cst(im, 1);
	if (!s)
		return im->err->code ? im->err->code
				     : nerr(im, TM_ERR_UNSUPPORTED,
					    "the shape is not a constant");
	if (!s->v.i || s->v.ndim != 1)
		return nerr(im, TM_ERR_INVALID, "shape must be a 1-D int64 "
			    "tensor");
	if (s->v.n < 2 || s->v.n - 1 > TM_MAX_DIMS)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "target rank %zu; tmpipe needs 2 to %d with the "
			    "batch", s->v.n, TM_MAX_DIMS + 1);
	for (size_t k = 0; k < s->v.n; k++)
		if (allowzero && s->v.i[k] == 0)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "allowzero with a 0 in the shape (an empty "
				    "tensor)");
	for (size_t k = 0; k < s->v.n; k++)
		if ((s->v.i[k] < -1 || s->v.i[k] > ATTR_MAX) &&
		    !(k == 0 && s->v.i[k] == BATCH_DIM))
			return nerr(im, TM_ERR_INVALID,
				    "shape dimension %zu is %lld", k,
				    (long long)s->v.i[k]);
	for (size_t k = 1; k < s->v.n; k++) {
		int64_t d = s->v.i[k];

		if (d == 0 && (int)k - 1 < xt->ndim)
			d = xt->shape[k - 1];
		if (d == -1) {
			rest = -1;
			break;
		}
		/* Dimensions up to ATTR_MAX each: their product overflows
		 * int64 after three, so bound it before multiplying. */
		if (d > 0 && rest > ATTR_MAX / d)
			return nerr(im, TM_ERR_INVALID,
				    "the shape holds more than %lld values "
				    "per sample", (long long)ATTR_MAX);
		rest *= d;
	}
	/* Dimension 0 must stay the batch: 0 (copy), the batch itself, or
	 * -1 when the rest holds exactly one sample. */
	if (!(s->v.i[0] == 0 || s->v.i[0] == BATCH_DIM ||
	      (im->batch > 0 && s->v.i[0] == im->batch) ||
	      (s->v.i[0] == -1 && rest == (int64_t)tm_tensor_numel(xt))))
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "the shape's first dimension %lld would move the "
			    "batch", (long long)s->v.i[0]);
	st = add_node(im, "", TM_OP_RESHAPE, &x, 1, out_name(im, 0), &n);
	if (st)
		return st;
	n->attrs.shape_ndim = (int)s->v.n - 1;
	for (size_t k = 1; k < s->v.n; k++)
		n->attrs.shape[k - 1] = s->v.i[k];
	return TM_OK;
}

static tm_status
op_softmax(imp *im)
{
	const char *x, *y;
	const tm_tensor *xt;
	int64_t axis, ax;
	tm_node *n;
	char t1[300], t2[300];
	const char *p;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = one_output(im);
	if (!st)
		st = attr_int(im, "axis", im->opset < 13 ? 1 : -1, &axis);
	if (!st)
		st = act_shape(im, x, &xt);
	if (!st)
		st = sample_axis(im, axis, xt->ndim + 1, &ax);
	if (st)
		return st;
	y = out_name(im, 0);
	if (im->opset >= 13 || ax == xt->ndim - 1) {
		st = add_node(im, "", TM_OP_SOFTMAX, &x, 1, y, &n);
		if (!st)
			n->attrs.axis = ax;
		return st;
	}
	/* Softmax-1/11: the input is seen as 2-D [d0 ... d(a-1), rest] and
	 * normalized over rest: flatten, softmax over the last axis, and
	 * reshape back. */
	if ((st = fresh_name(im, y, "/flat", t1, sizeof t1)) ||
	    (st = fresh_name(im, y, "/softmax", t2, sizeof t2)))
		return st;
	if ((st = add_node(im, "/flatten", TM_OP_FLATTEN, &x, 1, t1, &n)))
		return st;
	n->attrs.axis = ax;
	p = t1;
	if ((st = add_node(im, "/softmax", TM_OP_SOFTMAX, &p, 1, t2, &n)))
		return st;
	n->attrs.axis = -1;
	p = t2;
	if ((st = add_node(im, "", TM_OP_RESHAPE, &p, 1, y, &n)))
		return st;
	n->attrs.shape_ndim = xt->ndim;
	memcpy(n->attrs.shape, xt->shape, sizeof n->attrs.shape);
	return TM_OK;
}

/* A new constant named after output 0. A graph names each value once
 * (ONNX IR: node outputs are in SSA form): a name that is already a
 * constant is refused, as the new constant would shadow the old one
 * for every later lookup, the node's own inputs included (a Concat
 * named like its input read back its own, longer result and copied it
 * past its end). */
static cst *
out_cst(imp *im, const Onnx__TensorProto *tp)
{
	const char *name = out_name(im, 0);

	if (!name) {
		nerr(im, TM_ERR_INVALID, "output 0 is missing");
		return NULL;
	}
	if (find_cst(im, name)) {
		nerr(im, TM_ERR_INVALID,
		     "output '%s' is already defined (a graph names each "
		     "value once)", name);
		return NULL;
	}
	return new_cst(im, name, tp);
}

static tm_status
op_constant(imp *im)
{
	const Onnx__AttributeProto *a;
	cst *c;
	tm_status st = one_output(im);

	if (st)
		return st;
	if ((a = attr(im, "value")) && a->t) {
		c = out_cst(im, a->t);
		return c ? cst_get(im, c) : im->err->code;
	}
	/* Constant-12: value_float(s), value_int(s). */
	c = out_cst(im, NULL);
	if (!c)
		return im->err->code;
	c->decoded = 1;
	if ((a = attr(im, "value_float")) && a->has_f) {
		c->v.dtype = ONNX_FLOAT;
		c->v.n = 1;
		c->v.f = malloc(sizeof *c->v.f);
		if (c->v.f)
			c->v.f[0] = a->f;
	} else if ((a = attr(im, "value_floats"))) {
		c->v.dtype = ONNX_FLOAT;
		c->v.ndim = 1;
		c->v.n = a->n_floats;
		c->v.dims[0] = (int64_t)a->n_floats;
		c->v.f = malloc((a->n_floats + 1) * sizeof *c->v.f);
		if (c->v.f && a->n_floats)
			memcpy(c->v.f, a->floats,
			       a->n_floats * sizeof *a->floats);
	} else if ((a = attr(im, "value_int")) && a->has_i) {
		c->v.dtype = ONNX_INT64;
		c->v.n = 1;
		c->v.i = malloc(sizeof *c->v.i);
		if (c->v.i)
			c->v.i[0] = a->i;
	} else if ((a = attr(im, "value_ints"))) {
		c->v.dtype = ONNX_INT64;
		c->v.ndim = 1;
		c->v.n = a->n_ints;
		c->v.dims[0] = (int64_t)a->n_ints;
		c->v.i = malloc((a->n_ints + 1) * sizeof *c->v.i);
		if (c->v.i && a->n_ints)
			memcpy(c->v.i, a->ints, a->n_ints * sizeof *a->ints);
	} else {
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "only value, value_float(s) and value_int(s) "
			    "are supported");
	}
	if (!c->v.f && !c->v.i)
		return tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
	return TM_OK;
}

static tm_status
op_alias(imp *im)
{
	const char *x = in_name(im, 0);
	tm_status st = one_output(im);

	if (st)
		return st;
	if (!x)
		return nerr(im, TM_ERR_INVALID, "input 0 is missing");
	if (strcmp(im->node->op_type, "Dropout") == 0 && im->opset >= 12 &&
	    in_name(im, 2)) {
		cst *t = in_cst(im, 2);

		if (!t || t->v.n != 1 || cst_at(t, 0) != 0.0)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "training_mode is not a constant false");
	}
	return add_alias(im, out_name(im, 0), x);
}

/* --- shape arithmetic on constants ---------------------------------------
 *
 * PyTorch exports x.view(x.size(0), -1) as Shape, Gather, Unsqueeze and
 * Concat feeding a Reshape. These run at import time on constants; the
 * batch dimension of a Shape is BATCH_DIM. */

/* A new int64 constant named after output 0, of n values, 1-D (ndim 1)
 * or a scalar (ndim 0). */
static cst *
int_result(imp *im, size_t n, int ndim)
{
	cst *c = out_cst(im, NULL);

	if (!c)
		return NULL;
	c->decoded = 1;
	c->v.dtype = ONNX_INT64;
	c->v.ndim = ndim;
	c->v.dims[0] = (int64_t)n;
	c->v.n = n;
	c->v.i = malloc((n ? n : 1) * sizeof *c->v.i);
	if (!c->v.i) {
		tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	return c;
}

static tm_status
op_shape(imp *im)
{
	const char *x = in_name(im, 0);
	const tm_tensor *xt;
	int64_t dims[TM_MAX_DIMS + 1], start, end;
	int rank;
	cst *c;
	tm_status st = one_output(im);

	if (st)
		return st;
	if (!x)
		return nerr(im, TM_ERR_INVALID, "input 0 is missing");
	if ((c = in_cst(im, 0))) {
		rank = c->v.ndim;
		memcpy(dims, c->v.dims, (size_t)rank * sizeof *dims);
	} else {
		if (im->err->code || (st = in_act(im, 0, &x)) ||
		    (st = act_shape(im, x, &xt)))
			return im->err->code;
		rank = xt->ndim + 1;
		dims[0] = BATCH_DIM;
		memcpy(dims + 1, xt->shape, (size_t)xt->ndim * sizeof *dims);
	}
	/* Shape-15: start and end slice the dimensions. */
	if ((st = attr_int(im, "start", 0, &start)) ||
	    (st = attr_int(im, "end", rank, &end)))
		return st;
	start = start < 0 ? start + rank : start;
	end = end < 0 ? end + rank : end;
	start = start < 0 ? 0 : start > rank ? rank : start;
	end = end < start ? start : end > rank ? rank : end;
	if (!(c = int_result(im, (size_t)(end - start), 1)))
		return im->err->code;
	memcpy(c->v.i, dims + start, (size_t)(end - start) * sizeof *dims);
	return TM_OK;
}

/* Gather on a constant 1-D (or scalar-indexed) tensor along axis 0. */
static tm_status
op_gather(imp *im)
{
	cst *d, *ix, *c;
	int64_t axis;
	tm_status st = one_output(im);

	if (st || (st = attr_int(im, "axis", 0, &axis)))
		return st;
	d = in_cst(im, 0);
	ix = d ? in_cst(im, 1) : NULL;
	if (!d || !ix)
		return im->err->code ? im->err->code
				     : nerr(im, TM_ERR_UNSUPPORTED,
					    "Gather runs only on constants "
					    "(shape arithmetic)");
	if (!d->v.i || !ix->v.i || d->v.ndim != 1 || ix->v.ndim > 1 ||
	    (axis != 0 && axis != -1))
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "Gather of integer constants along axis 0 of a "
			    "vector only");
	if (!(c = int_result(im, ix->v.n, ix->v.ndim)))
		return im->err->code;
	for (size_t k = 0; k < ix->v.n; k++) {
		int64_t i = ix->v.i[k];

		if (i < 0)
			i += (int64_t)d->v.n;
		if (i < 0 || i >= (int64_t)d->v.n)
			return nerr(im, TM_ERR_INVALID, "index %lld is out of "
				    "range", (long long)ix->v.i[k]);
		c->v.i[k] = d->v.i[i];
	}
	return TM_OK;
}

/* Unsqueeze of an activation: a reshape that inserts dimensions of 1
 * (none of them the batch). */
static tm_status
unsqueeze_act(imp *im, const int64_t *axes, size_t nax)
{
	const char *x;
	const tm_tensor *xt;
	int64_t full[TM_MAX_DIMS + 1];
	unsigned char one[TM_MAX_DIMS + 1] = { 0 };
	int r, k = 0;
	tm_node *n;
	tm_status st = in_act(im, 0, &x);

	if (!st)
		st = act_shape(im, x, &xt);
	if (st)
		return st;
	r = xt->ndim + 1 + (int)nax;
	if (!axes || r - 1 > TM_MAX_DIMS)
		return nerr(im, TM_ERR_UNSUPPORTED, "%d dimensions", r);
	for (size_t i = 0; i < nax; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];

		if (a < 0 || a >= r || one[a])
			return nerr(im, TM_ERR_INVALID, "axis %lld",
				    (long long)axes[i]);
		if (a == 0)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "axis 0 would become the batch dimension");
		one[a] = 1;
	}
	for (int d = 1; d < r; d++)
		full[d] = one[d] ? 1 : xt->shape[k++];
	st = add_node(im, "", TM_OP_RESHAPE, &x, 1, out_name(im, 0), &n);
	if (st)
		return st;
	n->attrs.shape_ndim = r - 1;
	memcpy(n->attrs.shape, full + 1, (size_t)(r - 1) * sizeof *full);
	return TM_OK;
}

/* Unsqueeze of a scalar or vector constant to a vector (axes [0]), or of
 * an activation. */
static tm_status
op_unsqueeze(imp *im)
{
	const Onnx__AttributeProto *a = attr(im, "axes");
	const int64_t *axes;
	cst *x, *ax = NULL, *c;
	size_t nax;
	tm_status st = one_output(im);

	if (st)
		return st;
	x = in_cst(im, 0);
	if (!x && im->err->code)
		return im->err->code;
	if (im->opset >= 13 && !(ax = in_cst(im, 1)))
		return im->err->code ? im->err->code
				     : nerr(im, TM_ERR_UNSUPPORTED,
					    "axes must be a constant");
	if (ax && !ax->v.i)
		return nerr(im, TM_ERR_INVALID, "axes must be integers");
	nax = ax ? ax->v.n : a ? a->n_ints : 0;
	axes = ax ? ax->v.i : a ? a->ints : NULL;
	/* ONNX Unsqueeze: axes is required and names each new dimension;
	 * an empty list (or none) is invalid, and nothing below may read
	 * axes[0] then. */
	if (nax == 0 || !axes)
		return nerr(im, TM_ERR_INVALID, "axes is empty");
	if (nax > TM_MAX_DIMS)
		return nerr(im, TM_ERR_UNSUPPORTED, "%zu axes (at most %d)",
			    nax, TM_MAX_DIMS);
	if (!x)
		return unsqueeze_act(im, axes, nax);
	if (!x->v.i || x->v.ndim != 0 || nax != 1 ||
	    (axes[0] != 0 && axes[0] != -1))
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "Unsqueeze of an integer scalar to a vector only");
	if (!(c = int_result(im, x->v.n, 1)))
		return im->err->code;
	memcpy(c->v.i, x->v.i, x->v.n * sizeof *c->v.i);
	return TM_OK;
}

/* Concat of integer vectors, every one a constant. */
static tm_status
op_concat_const(imp *im)
{
	size_t n = 0;
	cst *c;

	for (size_t k = 0; k < im->node->n_input; k++) {
		cst *v = in_cst(im, k);

		if (!v || !v->v.i || v->v.ndim != 1)
			return im->err->code
				       ? im->err->code
				       : nerr(im, TM_ERR_UNSUPPORTED,
					      "a Concat of constants needs "
					      "integer vectors");
		/* One constant may be listed many times: bound the sum. */
		if (v->v.n > SHAPE_VALUES_MAX - n)
			return nerr(im, TM_ERR_UNSUPPORTED,
				    "a Concat of constants of more than %zu "
				    "values (shape arithmetic only)",
				    (size_t)SHAPE_VALUES_MAX);
		n += v->v.n;
	}
	if (!(c = int_result(im, n, 1)))
		return im->err->code;
	n = 0;
	for (size_t k = 0; k < im->node->n_input; k++) {
		cst *v = in_cst(im, k);

		memcpy(c->v.i + n, v->v.i, v->v.n * sizeof *c->v.i);
		n += v->v.n;
	}
	return TM_OK;
}

/* --- quantized operators ------------------------------------------------- */

/* Scale and zero point inputs (ks, kz) as per-tensor values; the zero
 * point made int8 (uint8 minus 128, exact) and its type returned. */
static tm_status
qparams(imp *im, size_t ks, size_t kz, double *s, int32_t *zp, int *dtype)
{
	cst *cs = in_cst(im, ks), *cz = in_name(im, kz) ? in_cst(im, kz)
							: NULL;

	if (!cs || (in_name(im, kz) && !cz))
		return im->err->code ? im->err->code
				     : nerr(im, TM_ERR_UNSUPPORTED,
					    "scale and zero point must be "
					    "constants");
	if (cs->v.n != 1 || (cz && cz->v.n != 1))
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "per-axis scales on an activation are not "
			    "supported");
	*s = cst_at(cs, 0);
	*dtype = cz ? cz->v.dtype : ONNX_UINT8;
	*zp = cz ? (int32_t)cst_at(cz, 0) : 0;
	if (*dtype == ONNX_UINT8)
		*zp -= 128;
	else if (*dtype != ONNX_INT8)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "%s activations are not supported (int8, uint8)",
			    onnx_dtype_name(*dtype));
	return TM_OK;
}

/* Integer data q with scales s (per axis or one) and zero points zp as a
 * float constant named name that keeps its int8 values: float =
 * (q - zp) * s (ONNX DequantizeLinear). int32 data (biases) keep floats
 * only. */
static tm_status
dequant_const(imp *im, cst *q, cst *s, cst *zp, int64_t axis,
	      const char *name, cst **out)
{
	cst *c;
	size_t nsc = s->v.n, inner = 1;
	int is8 = q->v.dtype == ONNX_INT8 || q->v.dtype == ONNX_UINT8;

	if (q->v.dtype != ONNX_INT8 && q->v.dtype != ONNX_UINT8 &&
	    q->v.dtype != ONNX_INT32)
		return nerr(im, TM_ERR_UNSUPPORTED, "%s data",
			    onnx_dtype_name(q->v.dtype));
	/* ONNX DequantizeLinear: x_scale holds one value or one per slice
	 * along axis; x_zero_point has x's own type and x_scale's shape. */
	if (nsc == 0)
		return nerr(im, TM_ERR_INVALID, "scale '%s' of '%s' is empty",
			    s->name, q->name);
	if (zp && (!zp->v.i || zp->v.dtype != q->v.dtype))
		return nerr(im, TM_ERR_INVALID,
			    "zero point '%s' of '%s' is %s, not %s like the "
			    "data", zp->name, q->name,
			    onnx_dtype_name(zp->v.dtype),
			    onnx_dtype_name(q->v.dtype));
	if (zp && zp->v.n != nsc)
		return nerr(im, TM_ERR_INVALID, "%zu scales, %zu zero points",
			    nsc, zp->v.n);
	if (nsc > 1) {
		/* A 1-D tensor (a bias) has only axis 0, whatever the
		 * default axis 1 says. */
		if (q->v.ndim == 1 && axis == 1)
			axis = 0;
		if (axis < 0)
			axis += q->v.ndim;
		if (axis < 0 || axis >= q->v.ndim ||
		    q->v.dims[axis] != (int64_t)nsc)
			return nerr(im, TM_ERR_INVALID,
				    "%zu scales do not match axis %lld of '%s'",
				    nsc, (long long)axis, q->name);
		for (int d = (int)axis + 1; d < q->v.ndim; d++)
			inner *= (size_t)q->v.dims[d];
	}
	if (!(c = new_cst(im, name, NULL)))
		return im->err->code;
	c->decoded = 1;
	c->v.dtype = ONNX_FLOAT;
	c->v.ndim = q->v.ndim;
	memcpy(c->v.dims, q->v.dims, sizeof c->v.dims);
	c->v.n = q->v.n;
	c->v.f = malloc((q->v.n ? q->v.n : 1) * sizeof *c->v.f);
	c->sc = malloc(nsc * sizeof *c->sc);
	if (is8)
		c->q8 = malloc(q->v.n ? q->v.n : 1);
	if (!c->v.f || !c->sc || (is8 && !c->q8))
		return tm_error_set(im->err, TM_ERR_NOMEM, "out of memory");
	c->n_sc = nsc;
	c->qaxis = (int)(nsc > 1 ? axis : 0);
	for (size_t k = 0; k < nsc; k++) {
		c->sc[k] = cst_at(s, k);
		if (!(c->sc[k] > 0.0) || !isfinite(c->sc[k]))
			return nerr(im, TM_ERR_INVALID,
				    "scale %zu of '%s' is %g", k, q->name,
				    c->sc[k]);
	}
	for (size_t k = 0; k < q->v.n; k++) {
		size_t ch = nsc > 1 ? (k / inner) % nsc : 0;
		int64_t z = zp ? zp->v.i[ch] : 0, v = q->v.i[k];

		c->v.f[k] = (float)((double)(v - z) * c->sc[ch]);
		if (is8) {
			/* uint8 to int8: subtract 128 from values and zero
			 * points alike, which changes no real value. */
			int64_t sh = q->v.dtype == ONNX_UINT8 ? 128 : 0;

			c->q8[k] = (int8_t)(v - sh);
			if (z - sh != 0)
				c->zp_nonzero = 1;
		}
	}
	*out = c;
	return TM_OK;
}

static tm_status
op_quantize(imp *im)
{
	const char *x;
	double s;
	int32_t zp;
	int dt;
	tm_status st = one_output(im);

	if (st)
		return st;
	if (find_cst(im, in_name(im, 0) ? in_name(im, 0) : ""))
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "QuantizeLinear of a constant; store quantized "
			    "weights as integer initializers");
	if ((st = in_act(im, 0, &x)) ||
	    (st = qparams(im, 1, 2, &s, &zp, &dt)))
		return st;
	if ((st = give_act(im, x, s, zp)))
		return st;
	return add_alias(im, out_name(im, 0), x);
}

static tm_status
op_dequantize(imp *im)
{
	const char *x = in_name(im, 0);
	cst *q;
	double s;
	int32_t zp;
	int dt;
	tm_status st = one_output(im);

	if (st)
		return st;
	if (!x)
		return nerr(im, TM_ERR_INVALID, "input 0 is missing");
	if ((q = in_cst(im, 0))) {
		cst *cs = in_cst(im, 1), *cz = NULL, *c;
		int64_t axis;

		if (!cs)
			return im->err->code ? im->err->code
					     : nerr(im, TM_ERR_UNSUPPORTED,
						    "scale is not a constant");
		if (in_name(im, 2) && !(cz = in_cst(im, 2)))
			return im->err->code ? im->err->code
					     : nerr(im, TM_ERR_UNSUPPORTED,
						    "zero point is not a "
						    "constant");
		if ((st = attr_int(im, "axis", 1, &axis)))
			return st;
		return dequant_const(im, q, cs, cz, axis, out_name(im, 0), &c);
	}
	if (im->err->code)
		return im->err->code;
	/* An activation: its scale was given by the QuantizeLinear (or the
	 * QLinear op) that made it; the two must agree. */
	if ((st = in_act(im, 0, &x)) ||
	    (st = qparams(im, 1, 2, &s, &zp, &dt)) ||
	    (st = give_act(im, x, s, zp)))
		return st;
	return add_alias(im, out_name(im, 0), x);
}

static tm_status
op_qlinearconv(imp *im)
{
	const char *x;
	cst *w, *ws, *wz = NULL, *wf, *bias = NULL;
	double xs, ys;
	int32_t xz, yz;
	int dt;
	char wn[300], bn[300];
	tm_status st = one_output(im);

	if (!st)
		st = in_act(im, 0, &x);
	if (!st)
		st = qparams(im, 1, 2, &xs, &xz, &dt);
	if (!st)
		st = give_act(im, x, xs, xz);
	if (!st)
		st = qparams(im, 6, 7, &ys, &yz, &dt);
	if (!st)
		st = want_weight(im, 3, 4, "w", &w);
	if (st)
		return st;
	if (!(ws = in_cst(im, 4)) || (in_name(im, 5) && !(wz = in_cst(im, 5))))
		return im->err->code ? im->err->code
				     : nerr(im, TM_ERR_UNSUPPORTED,
					    "w_scale and w_zero_point must be "
					    "constants");
	if ((st = fresh_name(im, w->name, "/dequantized", wn, sizeof wn)) ||
	    (st = dequant_const(im, w, ws, wz, 0, wn, &wf)))
		return st;
	if (in_name(im, 8)) {
		cst *b = in_cst(im, 8);

		if (!b)
			return im->err->code ? im->err->code
					     : nerr(im, TM_ERR_UNSUPPORTED,
						    "B is not a constant");
		if (b->v.ndim != 1 || b->v.n != (size_t)w->v.dims[0] || !b->v.i)
			return nerr(im, TM_ERR_INVALID,
				    "B must be int32 [%lld]",
				    (long long)w->v.dims[0]);
		if ((st = fresh_name(im, b->name, "/dequantized", bn,
				     sizeof bn)))
			return st;
		if (!(bias = new_cst(im, bn, NULL)))
			return im->err->code;
		bias->decoded = 1;
		bias->v = b->v;
		bias->v.i = NULL;
		bias->v.dtype = ONNX_FLOAT;
		bias->v.f = malloc((b->v.n ? b->v.n : 1) * sizeof *bias->v.f);
		if (!bias->v.f)
			return tm_error_set(im->err, TM_ERR_NOMEM,
					    "out of memory");
		/* QLinearConv: B is int32 at scale x_scale * w_scale. */
		for (size_t k = 0; k < b->v.n; k++)
			bias->v.f[k] = (float)((double)b->v.i[k] * xs *
					       wf->sc[wf->n_sc > 1 ? k : 0]);
	}
	if ((st = op_conv(im, x, wf, bias, bias ? bias->name : NULL,
			  out_name(im, 0))))
		return st;
	return give_act(im, out_name(im, 0), ys, yz);
}

static tm_status
op_qlinearmatmul(imp *im)
{
	const char *x;
	const tm_tensor *xt;
	cst *w, *ws, *wz = NULL, *wf;
	double xs, ys;
	int32_t xz, yz;
	int dt;
	char wn[300];
	tm_status st = one_output(im);

	if (!st)
		st = in_act(im, 0, &x);
	if (!st)
		st = qparams(im, 1, 2, &xs, &xz, &dt);
	if (!st)
		st = give_act(im, x, xs, xz);
	if (!st)
		st = qparams(im, 6, 7, &ys, &yz, &dt);
	if (!st)
		st = want_weight(im, 3, 2, "b", &w);
	if (!st)
		st = act_shape(im, x, &xt);
	if (st)
		return st;
	if (xt->ndim != 1)
		return nerr(im, TM_ERR_UNSUPPORTED,
			    "tmpipe handles QLinearMatMul on [N, K] inputs");
	if (!(ws = in_cst(im, 4)) || (in_name(im, 5) && !(wz = in_cst(im, 5))))
		return im->err->code ? im->err->code
				     : nerr(im, TM_ERR_UNSUPPORTED,
					    "b_scale and b_zero_point must be "
					    "constants");
	if ((st = fresh_name(im, w->name, "/dequantized", wn, sizeof wn)) ||
	    (st = dequant_const(im, w, ws, wz, 1, wn, &wf)))
		return st;
	if ((st = dense(im, x, wf, 0, 1.0f, NULL, 1.0f, out_name(im, 0))))
		return st;
	return give_act(im, out_name(im, 0), ys, yz);
}

/* --- the graph ----------------------------------------------------------- */

/* Concat: computed now when every input is a constant (a shape, say),
 * else a node. */
static tm_status
op_concat_any(imp *im)
{
	int all = im->node->n_input > 0;

	for (size_t i = 0; i < im->node->n_input; i++)
		all &= in_name(im, i) && find_cst(im, in_name(im, i));
	return all ? op_concat_const(im) : op_concat(im);
}

/* The operators tmpipe reads, each with the oldest opset whose
 * definition it implements (ONNX's Changelog.md): most of them read the
 * same from their first version (an attribute such as consumed_inputs,
 * kept only for old runtimes, is ignored), while Add and Gemm before 7
 * broadcast by an attribute, Dropout before 7 and BatchNormalization
 * before 7 took is_test, Concat before 4 had a default axis, and
 * Reshape before 5 took its shape as an attribute. */
static const struct {
	const char *name;
	int since;
	tm_status (*convert)(imp *im);	/* into model nodes */
	tm_op op;			/* for op_unary and op_pool */
} supported[] = {
	{ "Add", 7, op_add, 0 },
	{ "AveragePool", 1, op_pool, TM_OP_AVGPOOL2D },
	{ "BatchNormalization", 7, op_batchnorm, 0 },
	{ "Clip", 1, op_clip, 0 },
	{ "Concat", 4, op_concat_any, 0 },
	{ "Constant", 1, op_constant, 0 },
	{ "Conv", 1, op_conv_float, 0 },
	{ "DequantizeLinear", 10, op_dequantize, 0 },
	{ "Dropout", 7, op_alias, 0 },
	{ "Flatten", 1, op_flatten, 0 },
	{ "Gather", 1, op_gather, 0 },
	{ "Gemm", 7, op_gemm, 0 },
	{ "GlobalAveragePool", 1, op_pool, TM_OP_GLOBAL_AVGPOOL },
	{ "Identity", 1, op_alias, 0 },
	{ "LeakyRelu", 1, op_unary, TM_OP_LEAKY_RELU },
	{ "MatMul", 1, op_matmul, 0 },
	{ "MaxPool", 1, op_pool, TM_OP_MAXPOOL2D },
	{ "QLinearConv", 10, op_qlinearconv, 0 },
	{ "QLinearMatMul", 10, op_qlinearmatmul, 0 },
	{ "QuantizeLinear", 10, op_quantize, 0 },
	{ "Relu", 1, op_unary, TM_OP_RELU },
	{ "Reshape", 5, op_reshape, 0 },
	{ "Shape", 1, op_shape, 0 },
	{ "Sigmoid", 1, op_unary, TM_OP_SIGMOID },
	{ "Softmax", 1, op_softmax, 0 },
	{ "Tanh", 1, op_unary, TM_OP_TANH },
	{ "Unsqueeze", 1, op_unsqueeze, 0 },
	{ NULL, 0, NULL, 0 }
};

/* n's row of supported[], or -1 when tmpipe does not read its operator
 * (another domain, or an unknown type). */
static int
supported_row(const Onnx__NodeProto *n)
{
	if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
		return -1;
	for (int k = 0; supported[k].name; k++)
		if (n->op_type && strcmp(n->op_type, supported[k].name) == 0)
			return k;
	return -1;
}

/* The oldest opset at which tmpipe reads node n, or 0 when it does not
 * read n's operator at all. */
static int
supported_since(const Onnx__NodeProto *n)
{
	int k = supported_row(n);

	return k < 0 ? 0 : supported[k].since;
}

static int
is_supported(const Onnx__NodeProto *n)
{
	return supported_since(n) > 0;
}

int
onnx_op_supported(const char *op_type, const char *domain)
{
	Onnx__NodeProto n = ONNX__NODE_PROTO__INIT;

	n.op_type = (char *)op_type;
	n.domain = (char *)domain;
	return is_supported(&n);
}

static tm_status
convert(imp *im)
{
	int k = supported_row(im->node);

	/* check_ops refused every other operator before the first node. */
	if (k < 0)
		return tm_error_set(im->err, TM_ERR_INTERNAL,
				    "%s: operator '%s' has no converter",
				    im->path, im->node->op_type);
	im->op = supported[k].op;
	return supported[k].convert(im);
}

static int
same_op(const Onnx__NodeProto *a, const Onnx__NodeProto *b)
{
	return strcmp(a->op_type, b->op_type) == 0 &&
	       strcmp(a->domain ? a->domain : "", b->domain ? b->domain : "") ==
		       0;
}

/* The opset the model imports for domain ("" is ai.onnx). */
static int64_t
domain_opset(const imp *im, const char *domain)
{
	if (!domain || !domain[0] || strcmp(domain, "ai.onnx") == 0)
		return im->opset;
	for (size_t k = 0; k < im->mp->n_opset_import; k++) {
		const Onnx__OperatorSetIdProto *o = im->mp->opset_import[k];

		if (o && o->domain && strcmp(o->domain, domain) == 0)
			return o->has_version ? o->version : -1;
	}
	return -1;
}

/* Appends to msg (size bytes, len used) and keeps len within it:
 * snprintf returns what it would have written, so adding that up unclamped
 * runs past the buffer once a long name from the file fills it. */
static void
append(char *msg, size_t size, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
append(char *msg, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (*len + 1 >= size)
		return;
	va_start(ap, fmt);
	r = vsnprintf(msg + *len, size - *len, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	*len = *len + (size_t)r >= size ? size - 1 : *len + (size_t)r;
}

/* A name from the file as shown in a list: at most NAME_SHOWN characters,
 * "..." marking a cut. */
#define NAME_SHOWN 64
#define SHOWN(s) NAME_SHOWN, (s), strlen(s) > NAME_SHOWN ? "..." : ""

/* Every unsupported operator of the graph in one line: each op type once,
 * with its first node, its opset and how many nodes use it. */
static tm_status
check_ops(imp *im)
{
	char msg[TM_ERROR_MSG_MAX - 64];
	size_t len = 0, bad = 0, shown = 0;

	msg[0] = 0;
	for (size_t i = 0; i < im->g->n_node; i++) {
		const Onnx__NodeProto *n = im->g->node[i];
		const char *dom = n->domain && n->domain[0] ? n->domain : "";
		size_t count = 0;
		int dup = 0, since = supported_since(n);

		/* An operator tmpipe reads, but at an older opset whose
		 * definition differs, is as unsupported as an unknown one. */
		if (since && domain_opset(im, n->domain) >= since)
			continue;
		bad++;
		for (size_t j = 0; j < i && !dup; j++)
			dup = same_op(im->g->node[j], n);
		if (dup)
			continue;
		for (size_t j = i; j < im->g->n_node; j++)
			count += same_op(im->g->node[j], n);
		/* One entry is at most about 3 * NAME_SHOWN + 100. */
		if (len + 3 * NAME_SHOWN + 120 >= sizeof msg) {
			append(msg, sizeof msg, &len, ", ...");
			break;
		}
		append(msg, sizeof msg, &len,
		       "%s%.*s%s%s%.*s%s (node '%.*s%s', opset %lld",
		       shown ? ", " : "", SHOWN(dom), dom[0] ? "." : "",
		       SHOWN(n->op_type), SHOWN(n->name ? n->name : ""),
		       (long long)domain_opset(im, n->domain));
		if (since)
			append(msg, sizeof msg, &len,
			       "; tmpipe reads it from opset %d", since);
		if (count > 1)
			append(msg, sizeof msg, &len, "; %zu nodes", count);
		append(msg, sizeof msg, &len, ")");
		shown++;
	}
	if (!bad)
		return TM_OK;
	return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
			    "%s: unsupported operator%s: %s", im->path,
			    shown == 1 ? "" : "s", msg);
}

static tm_status
add_inputs(imp *im)
{
	const onnx_opts *o = im->o;

	im->batch = -1;
	for (size_t i = 0; i < im->g->n_input; i++) {
		const Onnx__ValueInfoProto *vi = im->g->input[i];
		const Onnx__TypeProto__Tensor *tt;
		int64_t shape[TM_MAX_DIMS];
		int ndim = 0, over = -1;
		tm_status st;

		if (!vi || !vi->name)
			return tm_error_set(im->err, TM_ERR_PARSE,
					    "%s: graph input %zu has no name",
					    im->path, i);
		if (find_cst(im, vi->name))
			continue;	/* an initializer listed as input */
		for (size_t k = 0; k < o->n_shapes; k++)
			if (strcmp(o->shape_names[k], vi->name) == 0)
				over = (int)k;
		tt = vi->type && vi->type->value_case ==
					 ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
			     ? vi->type->tensor_type
			     : NULL;
		if (!tt)
			return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
					    "%s: input '%s' is not a tensor",
					    im->path, vi->name);
		if (tt->has_elem_type && tt->elem_type != ONNX_FLOAT)
			return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
					    "%s: input '%s' is %s; tmpipe "
					    "models take float inputs",
					    im->path, vi->name,
					    onnx_dtype_name(tt->elem_type));
		if (over >= 0) {
			ndim = o->shape_ndims[over];
			if (ndim > TM_MAX_DIMS)
				return tm_error_set(im->err, TM_ERR_INVALID,
						    "input '%s': too many "
						    "dimensions", vi->name);
			memcpy(shape, o->shapes[over],
			       (size_t)ndim * sizeof *shape);
		} else {
			const Onnx__TensorShapeProto *sp = tt->shape;

			if (!sp || sp->n_dim < 1)
				return tm_error_set(
					im->err, TM_ERR_UNSUPPORTED,
					"%s: input '%s' has no batch dimension "
					"(rank 0)%s", im->path, vi->name,
					sp ? "" : " or no shape; give one");
			if (sp->n_dim - 1 > TM_MAX_DIMS)
				return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
						    "%s: input '%s' has %zu "
						    "dimensions", im->path,
						    vi->name, sp->n_dim);
			for (size_t d = 0; d < sp->n_dim; d++) {
				const Onnx__TensorShapeProto__Dimension *dm =
					sp->dim[d];
				int known = dm && dm->value_case == DIM_VALUE;

				if (d == 0) {
					if (known && im->batch < 0)
						im->batch = dm->dim_value;
					continue;
				}
				if (!known || dm->dim_value < 1)
					return tm_error_set(
						im->err, TM_ERR_UNSUPPORTED,
						"%s: input '%s' dimension %zu "
						"is not a fixed size; give "
						"the shape of one sample in "
						"the pipeline (inputs:)",
						im->path, vi->name, d);
				shape[ndim++] = dm->dim_value;
			}
		}
		{
			int64_t numel = 1;

			for (int d = 0; d < ndim; d++) {
				numel *= shape[d] > 0 && shape[d] <= ATTR_MAX
						 ? shape[d] : ATTR_MAX + 1;
				if (numel > ATTR_MAX)
					return tm_error_set(
						im->err, TM_ERR_INVALID,
						"%s: input '%s' has more than "
						"%lld values per sample",
						im->path, vi->name,
						(long long)ATTR_MAX);
			}
		}
		st = tm_model_add_input(im->m, vi->name, ndim, shape, im->err);
		if (st) {
			tm_error_prefix(im->err, "%s", im->path);
			return st;
		}
	}
	if (im->m->n_inputs == 0)
		return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
				    "%s: the graph has no non-constant input",
				    im->path);
	return TM_OK;
}

/* Graph output vi, which is graph input tn once Identity, Dropout and
 * quantize/dequantize pairs are removed (y = Identity(x)): a copy of tn,
 * a reshape to its own shape, so that the model computes the output
 * under its ONNX name (or that name with ".copy" when taken). */
static tm_status
add_copy(imp *im, const Onnx__ValueInfoProto *vi, const char *tn)
{
	const char *on = vi->name;
	const tm_tensor *x = tm_model_find_tensor(im->m, tn);
	const Onnx__TypeProto__Tensor *tt =
		vi->type && vi->type->value_case ==
				    ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
			? vi->type->tensor_type
			: NULL;
	const char *in[1] = { tn }, *out[1];
	char name[512];
	tm_node *n = NULL;
	tm_status st;

	if (tt && tt->has_elem_type && tt->elem_type != ONNX_FLOAT)
		return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
				    "%s: graph output '%s' is %s; tmpipe "
				    "models compute float outputs", im->path,
				    on, onnx_dtype_name(tt->elem_type));
	if (x->ndim == 0)
		return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
				    "%s: graph output '%s' is input '%s', one "
				    "value a sample: nothing to compute",
				    im->path, on, tn);
	/* The output's own name, unless a tensor holds it; the aliases
	 * that led it to tn go. */
	for (size_t k = im->na; k-- > 0;)
		if (strcmp(im->a[k].from, on) == 0) {
			free(im->a[k].from);
			free(im->a[k].to);
			memmove(&im->a[k], &im->a[k + 1],
				(im->na - k - 1) * sizeof *im->a);
			im->na--;
		}
	if (strlen(on) >= sizeof name)
		return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
				    "%s: graph output '%.64s...' has a name "
				    "longer than the %zu bytes tmpipe keeps",
				    im->path, on, sizeof name - 1);
	strcpy(name, on);
	if (tm_model_find_tensor(im->m, name) &&
	    (st = fresh_name(im, on, ".copy", name, sizeof name)))
		return st;
	out[0] = name;
	st = tm_model_add_node(im->m, name, TM_OP_RESHAPE, in, 1, out, 1, &n,
			       im->err);
	if (st)
		return st;
	n->attrs.shape_ndim = x->ndim;
	memcpy(n->attrs.shape, x->shape, sizeof x->shape);
	return strcmp(name, on) ? add_alias(im, on, name) : TM_OK;
}

static tm_status
check_outputs(imp *im, onnx_result *r)
{
	tm_model *m = im->m;
	tm_status st;

	for (size_t k = 0; k < im->g->n_output; k++) {
		const Onnx__ValueInfoProto *vi = im->g->output[k];
		const tm_tensor *t = vi && vi->name
			? tm_model_find_tensor(m, resolve(im, vi->name))
			: NULL;

		if (t && t->kind == TM_TENSOR_INPUT &&
		    (st = add_copy(im, vi, t->name)))
			return st;
	}
	if (m->n_nodes == 0)
		return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
				    "%s: the graph computes nothing tmpipe "
				    "keeps (Identity, Dropout and "
				    "quantize/dequantize pairs are removed)",
				    im->path);
	st = tm_model_finalize(m, im->err);
	if (st) {
		tm_error_prefix(im->err, "%s", im->path);
		return st;
	}
	if (r) {
		r->output_onnx = calloc(im->g->n_output + 1, sizeof(char *));
		r->output_tm = calloc(im->g->n_output + 1, sizeof(char *));
		if (!r->output_onnx || !r->output_tm)
			return tm_error_set(im->err, TM_ERR_NOMEM,
					    "out of memory");
	}
	for (size_t k = 0; k < im->g->n_output; k++) {
		const char *on = im->g->output[k]->name;
		const char *tn = on ? resolve(im, on) : NULL;
		size_t t = tn ? tm_model_tensor_index(m, tn) : (size_t)-1;
		int is_out = 0;

		if (!tn)
			return tm_error_set(im->err, TM_ERR_PARSE,
					    "%s: graph output %zu has no name",
					    im->path, k);
		if (t == (size_t)-1 && find_cst(im, tn))
			return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
					    "%s: graph output '%s' is a "
					    "constant", im->path, on);
		if (t == (size_t)-1)
			return tm_error_set(im->err, TM_ERR_INVALID,
					    "%s: graph output '%s' is never "
					    "computed", im->path, on);
		for (size_t j = 0; j < m->n_outputs; j++)
			is_out |= m->outputs[j] == t;
		if (!is_out)
			return tm_error_set(im->err, TM_ERR_UNSUPPORTED,
					    "%s: graph output '%s' is also "
					    "read by a node; tmpipe outputs "
					    "end the graph", im->path, on);
		if (r) {
			r->output_onnx[k] = strdup(on);
			r->output_tm[k] = strdup(tn);
			r->n_outputs = k + 1;
			if (!r->output_onnx[k] || !r->output_tm[k])
				return tm_error_set(im->err, TM_ERR_NOMEM,
						    "out of memory");
		}
	}
	return TM_OK;
}

static int64_t
find_opset(const Onnx__ModelProto *mp)
{
	for (size_t k = 0; k < mp->n_opset_import; k++) {
		const Onnx__OperatorSetIdProto *o = mp->opset_import[k];

		if (o && (!o->domain || !o->domain[0] ||
			  strcmp(o->domain, "ai.onnx") == 0))
			return o->has_version ? o->version : -1;
	}
	return -1;
}

void
onnx_result_fini(onnx_result *r)
{
	if (!r)
		return;
	for (size_t k = 0; k < r->n_outputs; k++) {
		free(r->output_onnx[k]);
		free(r->output_tm[k]);
	}
	free(r->output_onnx);
	free(r->output_tm);
	memset(r, 0, sizeof *r);
}

tm_status
onnx_import(const char *path, const onnx_opts *o, tm_model *m,
	    onnx_result *r, tm_error *err)
{
	static const onnx_opts defaults = { .keep_scales = 1 };
	Onnx__ModelProto *mp = NULL;
	imp im;
	tm_status st;
	char *slash;

	memset(&im, 0, sizeof im);
	if (r)
		memset(r, 0, sizeof *r);
	im.path = path;
	im.o = o ? o : &defaults;
	im.m = m;
	im.err = err;
	st = onnx_read_model(path, &mp, err);
	if (st)
		return st;
	im.dir = strdup(path);
	if (!im.dir) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	slash = strrchr(im.dir, '/');
	if (slash)
		*(slash == im.dir ? slash + 1 : slash) = 0;
	else
		strcpy(im.dir, ".");
	im.mp = mp;
	im.g = mp->graph;
	if (!im.g) {
		st = tm_error_set(err, TM_ERR_PARSE, "%s: the model has no "
				  "graph", path);
		goto out;
	}
	im.opset = find_opset(mp);
	if (im.opset < OPSET_MIN || im.opset > OPSET_MAX) {
		st = tm_error_set(err, TM_ERR_UNSUPPORTED,
				  "%s: opset %lld is not supported (tmpipe "
				  "reads opsets %d to %d)", path,
				  (long long)im.opset, OPSET_MIN, OPSET_MAX);
		goto out;
	}
	if (r)
		r->opset = im.opset;
	for (size_t k = 0; k < im.g->n_node; k++)
		if (!im.g->node[k] || !im.g->node[k]->op_type) {
			st = tm_error_set(err, TM_ERR_PARSE, "%s: node %zu has "
					  "no operator", path, k);
			goto out;
		}
	if ((st = check_ops(&im)))
		goto out;
	for (size_t k = 0; k < im.g->n_initializer; k++) {
		const Onnx__TensorProto *tp = im.g->initializer[k];

		if (!tp || !tp->name) {
			st = tm_error_set(err, TM_ERR_PARSE, "%s: initializer "
					  "%zu has no name", path, k);
			goto out;
		}
		if (!new_cst(&im, tp->name, tp)) {
			st = err->code;
			goto out;
		}
	}
	for (size_t k = 0; k < im.o->n_bind; k++)
		if (!new_cst(&im, im.o->bind_names[k], im.o->bind_values[k])) {
			st = err->code;
			goto out;
		}
	if ((st = add_inputs(&im)))
		goto out;
	if (r)
		r->batch = im.batch;
	im.done = calloc(im.g->n_node + 1, 1);
	if (!im.done) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < im.g->n_node && !st; k++) {
		const Onnx__NodeProto *n = im.g->node[k];

		if (im.done[k])
			continue;
		im.node = n;
		im.at = k;
		if (n->name && n->name[0] && !tm_model_find_tensor(m, n->name))
			snprintf(im.nname, sizeof im.nname, "%s", n->name);
		else
			snprintf(im.nname, sizeof im.nname, "%s_%zu",
				 n->op_type, k);
		for (size_t j = 0; j < m->n_nodes; j++)
			if (strcmp(m->nodes[j]->name, im.nname) == 0) {
				snprintf(im.nname, sizeof im.nname, "%s_%zu",
					 n->op_type, k);
				break;
			}
		st = convert(&im);
	}
	if (!st)
		st = check_outputs(&im, r);
	if (r)
		r->n_given = im.n_given;
out:
	for (size_t k = 0; k < im.nc; k++) {
		cst_fini(im.c[k]);
		free(im.c[k]);
	}
	free(im.c);
	for (size_t k = 0; k < im.na; k++) {
		free(im.a[k].from);
		free(im.a[k].to);
	}
	free(im.a);
	free(im.done);
	free(im.dir);
	protobuf_c_message_free_unpacked(&mp->base, NULL);
	/* Every error names the file (one the model API reported, about
	 * a constant's values say, does not yet), and names in the message
	 * come from the file: a control character there (a newline in an
	 * op type, say) must not break the one line an error is. */
	if (st && err) {
		if (strncmp(err->msg, path, strlen(path)) != 0)
			tm_error_prefix(err, "%s", path);
		for (char *c = err->msg; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
	}
	return st;
}
