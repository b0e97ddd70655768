/* c_header — the quantized model as a self-contained C header: int8
 * weights, int32 biases, per-tensor scale and zero point, the baked
 * requantizer (multiplier, shift) and output clamp of every layer, and
 * the lookup table of every sigmoid. Everything a target needs is an
 * integer constant; scales are there for reference and for host code.
 *
 * At the end, the model for libtmrt as static const tables, from the
 * core's lowering (tm_model_lower, the same one the blob emitter
 * serializes): the runtime's bundle of every layer (fully connected,
 * conv and depthwise, pools, global pool, add, concat with its inputs,
 * LUT, softmax with its exp table) pointing at the arrays above (and at
 * any array the lowering adds: reordered conv weights, tables),
 * the tensor and layer tables, <prefix>_model and <PREFIX>_ARENA_SIZE,
 * so that tmrt_run(&<prefix>_model, in, out, arena, <PREFIX>_ARENA_SIZE)
 * runs with nothing parsed or computed at start-up.
 *
 * Names: <prefix>_<name> with every character outside [A-Za-z0-9_] made
 * '_' (lower case for arrays, upper case for macros). Every identifier
 * the header defines is claimed once; two model names that land on the
 * same C identifier are an error naming both, never a silent shadow.
 *
 * With source: the arrays, bundles and tables go to that .c file (which
 * includes the header by its file name) and the header declares them
 * extern, so several files can include it and the data exists once. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/lower.h>
#include <tmpipe/tmpipe.h>

#define VALUES_PER_LINE 12
#define IDENT_MAX 256

static const tm_param_spec ch_params[] = {
	{ .name = "path", .type = TM_PARAM_PATH, .flags = TM_PARAM_REQUIRED,
	  .help = "header to write (relative to the pipeline)" },
	{ .name = "prefix", .type = TM_PARAM_STRING, .def = "model",
	  .help = "C identifier prefixed to every name" },
	{ .name = "source", .type = TM_PARAM_PATH,
	  .help = "C file to hold the arrays and tables (the header then "
		  "declares them extern)" },
	TM_PARAM_END
};

/* Names live on the heap: the tables grow with realloc, and the names
 * handed out must stay put. */
typedef struct ident {
	char *name;			/* IDENT_MAX bytes */
	const char *what;	/* "tensor", "layer" */
	const char *from;	/* the model name it came from */
} ident;

/* An int8 or int32 array the header defines, for the bundles to point
 * at: identical contents are defined once. */
typedef struct carray {
	const char *name;		/* an ident's */
	const void *data;
	int is_i8;
	size_t n;
} carray;

typedef struct ctx {
	FILE *fp;			/* the header */
	FILE *src;			/* the source, or NULL: all in fp */
	const char *prefix;
	ident *ids;
	size_t n_ids, cap_ids;
	carray *arrs;
	size_t n_arrs, cap_arrs;
	tm_error *err;
	tm_status st;
	char cm[4][160];		/* cm()'s buffers */
	unsigned cm_next;
} ctx;

/* s as it may stand inside a C comment: a name from a model file could
 * hold "*\/" (which would end the comment and let the rest be compiled)
 * or "/\*" (-Wcomment): both get a backslash between their characters;
 * control characters become '?', and a long name is cut with "...". One
 * of four buffers in turn, so a printf may take up to four. */
static const char *
cm(ctx *c, const char *s)
{
	char *b = c->cm[c->cm_next++ % 4];
	size_t n = 0, max = sizeof c->cm[0] - 5;

	for (; *s && n < max; s++) {
		char prev = n ? b[n - 1] : 0;

		if ((prev == '*' && *s == '/') || (prev == '/' && *s == '*'))
			b[n++] = '\\';
		b[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	}
	if (*s)
		memcpy(b + n, "...", 4);
	else
		b[n] = '\0';
	return b;
}

static int
valid_ident(const char *s)
{
	if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

/* Room for one more in the table v of n elements of size bytes, *cap
 * allocated (doubling, from first): v, perhaps moved, or NULL when out
 * of memory (v still valid, c->st set). */
static void *
room_for_one(ctx *c, void *v, size_t n, size_t *cap, size_t first,
	     size_t size)
{
	size_t new_cap;

	if (n < *cap)
		return v;
	new_cap = *cap ? 2 * *cap : first;
	v = realloc(v, new_cap * size);
	if (!v) {
		c->st = tm_error_set(c->err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	*cap = new_cap;
	return v;
}

/* The identifier <prefix>_<name><suffix>, upper or lower case, claimed
 * for (what, from). NULL once any error is set. */
static const char *
claim(ctx *c, const char *what, const char *from, int upper,
      const char *suffix)
{
	ident *id;
	size_t len;
	void *v;

	if (c->st)
		return NULL;
	v = room_for_one(c, c->ids, c->n_ids, &c->cap_ids, 64,
			 sizeof *c->ids);
	if (!v)
		return NULL;
	c->ids = v;
	id = &c->ids[c->n_ids];
	id->name = malloc(IDENT_MAX);
	if (!id->name) {
		c->st = tm_error_set(c->err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	len = (size_t)snprintf(id->name, IDENT_MAX, "%s_%s%s",
			       c->prefix, from, suffix);
	if (len >= IDENT_MAX) {
		free(id->name);
		c->st = tm_error_set(c->err, TM_ERR_INVALID,
				     "%s '%s' makes a C name longer "
				     "than %d characters", what, from,
				     IDENT_MAX - 1);
		return NULL;
	}
	for (char *p = id->name; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_')
			*p = '_';
		*p = (char)(upper ? toupper((unsigned char)*p)
				  : tolower((unsigned char)*p));
	}
	id->what = what;
	id->from = from;
	for (size_t i = 0; i < c->n_ids; i++) {
		if (strcmp(c->ids[i].name, id->name) != 0)
			continue;
		c->st = tm_error_set(c->err, TM_ERR_INVALID,
				     "%s '%s' and %s '%s' both "
				     "become the C name %s; rename one",
				     c->ids[i].what, c->ids[i].from, what,
				     from, id->name);
		free(id->name);
		return NULL;
	}
	c->n_ids++;
	return id->name;
}

static void
put_values(FILE *fp, const void *v, int is_i8, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		long x = is_i8 ? (long)((const int8_t *)v)[i]
			       : (long)((const int32_t *)v)[i];

		fprintf(fp, is_i8 ? "%s%4ld%s" : "%s%ld%s",
			i % VALUES_PER_LINE ? " " : "\t", x,
			i + 1 == n ? "\n"
			: (i + 1) % VALUES_PER_LINE ? ","
						     : ",\n");
	}
}

/* Starts the definition of constant name of type (an array of n when n
 * >= 0), up to and excluding " = ": "static const" in the header, or,
 * with a source file, its extern declaration in the header and the
 * definition in the source. Returns the stream the initializer goes to. */
static FILE *
def_open(ctx *c, const char *type, const char *name, long n)
{
	char dims[32] = "";

	if (n >= 0)
		snprintf(dims, sizeof dims, "[%ld]", n);
	if (!c->src) {
		fprintf(c->fp, "static const %s %s%s =", type, name, dims);
		return c->fp;
	}
	fprintf(c->fp, "extern const %s %s%s;\n", type, name, dims);
	fprintf(c->src, "const %s %s%s =", type, name, dims);
	return c->src;
}

static void
put_define(ctx *c, const char *what, const char *from, const char *suffix,
	   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
put_define(ctx *c, const char *what, const char *from, const char *suffix,
	   const char *fmt, ...)
{
	const char *id = claim(c, what, from, 1, suffix);
	va_list ap;

	if (!id)
		return;
	fprintf(c->fp, "#define %s ", id);
	va_start(ap, fmt);
	vfprintf(c->fp, fmt, ap);
	va_end(ap);
	fputc('\n', c->fp);
}

/* Records array id (data v) for the runtime tables; NULL on error. */
static const char *
remember(ctx *c, const char *id, const void *v, int is_i8, size_t n)
{
	carray *a;
	void *v2 = room_for_one(c, c->arrs, c->n_arrs, &c->cap_arrs, 32,
				sizeof *c->arrs);

	if (!v2)
		return NULL;
	c->arrs = v2;
	a = &c->arrs[c->n_arrs++];
	a->name = id;
	a->data = v;
	a->is_i8 = is_i8;
	a->n = n;
	return a->name;
}

static const char *
put_array(ctx *c, const char *what, const char *from, const char *suffix,
	  const void *v, int is_i8, size_t n)
{
	const char *id = claim(c, what, from, 0, suffix);
	FILE *o;

	if (!id)
		return NULL;
	o = def_open(c, is_i8 ? "int8_t" : "int32_t", id, (long)n);
	fputs(" {\n", o);
	put_values(o, v, is_i8, n);
	fputs("};\n", o);
	return remember(c, id, v, is_i8, n);
}

static void
put_activation(ctx *c, const tm_tensor *t)
{
	size_t n = tm_tensor_numel(t);

	fprintf(c->fp, "/* %s '%s': %zu value%s, ",
		t->kind == TM_TENSOR_INPUT ? "input" : "tensor",
		cm(c, t->name), n, n == 1 ? "" : "s");
	if (t->fixed_range)
		fprintf(c->fp, "fixed range [%.9g, %.9g] */\n", (double)t->lo,
			(double)t->hi);
	else
		fprintf(c->fp, "observed range [%.9g, %.9g] by %s */\n",
			(double)t->lo, (double)t->hi,
			cm(c, t->observer ? t->observer : "?"));
	put_define(c, "tensor", t->name, "_SCALE", "%.9ef",
		   (double)(float)t->q.scale);
	put_define(c, "tensor", t->name, "_ZERO_POINT", "(%ld)",
		   (long)t->q.zero_point);
	fputc('\n', c->fp);
}

/* <P>_<L>_WEIGHT_SCALE, or the array <p>_<l>_weight_scale of one scale
 * per output channel. */
static void
put_weight_scale(ctx *c, const tm_node *n, const tm_tensor *w)
{
	const char *id;
	FILE *o;

	if (w->q.scheme != TM_QSCHEME_PER_CHANNEL) {
		put_define(c, "layer", n->name, "_WEIGHT_SCALE", "%.9ef",
			   (double)(float)w->q.scale);
		return;
	}
	id = claim(c, "layer", n->name, 0, "_weight_scale");
	if (!id)
		return;
	fprintf(c->fp, "/* one weight scale per output channel */\n");
	o = def_open(c, "float", id, (long)w->q.n_channels);
	fputs(" {\n", o);
	for (size_t k = 0; k < w->q.n_channels; k++)
		fprintf(o, "\t%.9ef%s\n", (double)(float)w->q.scales[k],
			k + 1 < w->q.n_channels ? "," : "");
	fputs("};\n", o);
}

/* A convolution's geometry and scales; its int8 weights (OHWI), int32
 * biases and requantizers are the runtime bundle's arrays (below), in
 * the layout libtmrt reads, so they are not printed twice. */
static void
put_conv_info(ctx *c, const tm_model *m, const tm_node *n)
{
	const tm_tensor *x = m->tensors[n->inputs[0]];
	const tm_tensor *w = m->tensors[n->inputs[1]];
	const tm_tensor *y = m->tensors[n->requant_out];
	const tm_attrs *a = &n->attrs;

	fprintf(c->fp, "/* %s: conv2d %lldx%lld, %lld -> %lld channels, "
		"groups %lld,\n * stride %lldx%lld, dilation %lldx%lld, pads "
		"(top, left, bottom, right) %lld %lld %lld %lld,\n * input "
		"'%s', output '%s'%s.\n * Its int8 weights (OHWI), int32 "
		"biases and requantizers are in the runtime\n * tables "
		"below. */\n", cm(c, n->name),
		(long long)w->shape[2], (long long)w->shape[3],
		(long long)x->shape[0], (long long)w->shape[0],
		(long long)a->group, (long long)a->stride[0],
		(long long)a->stride[1], (long long)a->dilation[0],
		(long long)a->dilation[1], (long long)a->pads[0],
		(long long)a->pads[1], (long long)a->pads[2],
		(long long)a->pads[3], cm(c, x->name), cm(c, y->name),
		n->fused_relu ? " (activation folded into the clamp)" : "");
	put_define(c, "layer", n->name, "_IN_CHANNELS", "%lld",
		   (long long)x->shape[0]);
	put_define(c, "layer", n->name, "_OUT_CHANNELS", "%lld",
		   (long long)w->shape[0]);
	put_weight_scale(c, n, w);
	put_define(c, "layer", n->name, "_ACT_MIN", "(%ld)", (long)n->act_min);
	put_define(c, "layer", n->name, "_ACT_MAX", "(%ld)", (long)n->act_max);
	fputc('\n', c->fp);
}

static void
put_dense(ctx *c, const tm_model *m, const tm_node *n)
{
	const tm_tensor *x = m->tensors[n->inputs[0]];
	const tm_tensor *w = m->tensors[n->inputs[1]];
	const tm_tensor *b = n->n_inputs > 2 ? m->tensors[n->inputs[2]] : NULL;
	const tm_tensor *y = m->tensors[n->requant_out];
	long long out = w->shape[0], in = w->shape[1];

	fprintf(c->fp, "/* %s: dense %lld -> %lld, input '%s', output '%s'%s "
		"*/\n", cm(c, n->name), in, out, cm(c, x->name),
		cm(c, y->name),
		n->fused_relu ? " (ReLU folded into the clamp)" : "");
	put_define(c, "layer", n->name, "_IN_FEATURES", "%lld", in);
	put_define(c, "layer", n->name, "_OUT_FEATURES", "%lld", out);
	put_weight_scale(c, n, w);
	fprintf(c->fp, "/* int8, symmetric (zero point 0), [out][in] */\n");
	put_array(c, "layer", n->name, "_weight", w->q8, 1,
		  (size_t)(out * in));
	if (b) {
		fprintf(c->fp, "/* int32, scale = input scale * weight scale%s "
			"*/\n", w->q.scheme == TM_QSCHEME_PER_CHANNEL
					 ? " of its channel"
					 : "");
		put_array(c, "layer", n->name, "_bias", b->q32, 0,
			  (size_t)out);
	}
	fprintf(c->fp, "/* requantizer: y = clamp(rdbpot(srdhm(acc << "
		"max(-shift, 0), multiplier), max(shift, 0)) + zero point) "
		"*/\n");
	put_array(c, "layer", n->name, "_multiplier", n->multiplier, 0,
		  n->n_requant);
	put_array(c, "layer", n->name, "_shift", n->shift, 0, n->n_requant);
	put_define(c, "layer", n->name, "_ACT_MIN", "(%ld)", (long)n->act_min);
	put_define(c, "layer", n->name, "_ACT_MAX", "(%ld)", (long)n->act_max);
	fputc('\n', c->fp);
}

static void
put_lut(ctx *c, const tm_node *n)
{
	fprintf(c->fp, "/* %s: %s lookup table, indexed by (uint8_t)(x + 128) "
		"*/\n", cm(c, n->name), tm_op_name(n->op));
	put_array(c, "layer", n->name, "_lut", n->lut, 1, 256);
	fputc('\n', c->fp);
}

/* ---- The model for libtmrt ------------------------------------------- */

static const char *const op_const[] = {
	"TMRT_OP_COPY", "TMRT_OP_FULLY_CONNECTED", "TMRT_OP_CONV2D",
	"TMRT_OP_DEPTHWISE_CONV2D", "TMRT_OP_MAX_POOL2D",
	"TMRT_OP_AVG_POOL2D", "TMRT_OP_GLOBAL_AVG_POOL", "TMRT_OP_ADD",
	"TMRT_OP_CONCAT", "TMRT_OP_LUT", "TMRT_OP_SOFTMAX"
};

/* The C name of the lowered array v (layer's role): an array the header
 * already defines with the same contents, else a new one
 * <prefix>_<layer><suffix>. "NULL" for an absent optional array. */
static const char *
ref_array(ctx *c, const char *layer, const char *suffix, const void *v,
	  int is_i8, size_t n)
{
	char own[IDENT_MAX];

	if (c->st)
		return NULL;
	if (!v)
		return "NULL";
	/* The layer's own array first (<prefix>_<layer>_...), then any. */
	snprintf(own, sizeof own, "%s_%s_", c->prefix, layer);
	for (char *p = own; *p; p++)
		*p = (char)(isalnum((unsigned char)*p) || *p == '_'
				    ? tolower((unsigned char)*p)
				    : '_');
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < c->n_arrs; i++) {
			const carray *a = &c->arrs[i];

			if (a->is_i8 == is_i8 && a->n == n &&
			    (pass || strncmp(a->name, own,
					     strlen(own)) == 0) &&
			    (a->data == v ||
			     memcmp(a->data, v, n * (is_i8 ? 1 : 4)) == 0))
				return a->name;
		}
	return put_array(c, "layer", layer, suffix, v, is_i8, n);
}

static void
put_dims(FILE *fp, const tmrt_dims *d)
{
	fprintf(fp, "{ %ld, %ld, %ld, %ld },", (long)d->n, (long)d->h,
		(long)d->w, (long)d->c);
}

/* Convolution and pooling bundles open alike: the dims, then the
 * window up to the pads (WINDOW_FMT and WINDOW_ARGS, printf's format
 * and arguments: macros, as the two bundles are different types). */
static void
put_window_dims(FILE *o, const tmrt_dims *in, const tmrt_dims *out)
{
	fputs(" {\n\t", o);
	put_dims(o, in);
	fputc(' ', o);
	put_dims(o, out);
}

#define WINDOW_FMT "\n\t%ld, %ld, %ld, %ld, %ld, %ld,\n\t%ld, %ld, %ld, %ld, "
#define WINDOW_ARGS(p)                                                      \
	(long)(p)->kernel_h, (long)(p)->kernel_w, (long)(p)->stride_h,      \
		(long)(p)->stride_w, (long)(p)->dilation_h,                 \
		(long)(p)->dilation_w, (long)(p)->pad_top,                  \
		(long)(p)->pad_left, (long)(p)->pad_bottom,                 \
		(long)(p)->pad_right

/* Claims the C name of layer name's bundle (*id) and starts its
 * definition, of C type type; NULL on error. */
static FILE *
open_bundle(ctx *c, const char *name, const char *type, const char **id)
{
	*id = claim(c, "layer", name, 0, "_params");
	return *id ? def_open(c, type, *id, -1) : NULL;
}

/* A convolution's bundle: weights OHWI (conv2d) or [kh][kw][C * mult]
 * (depthwise), as the lowering made them. */
static const char *
put_conv(ctx *c, const tmrt_layer *ly, const char *name)
{
	const tmrt_conv_params *p = ly->params;
	size_t nw = (size_t)p->kernel_h * (size_t)p->kernel_w *
		    (size_t)p->output.c;
	const char *id, *w, *b, *mu, *sh;
	FILE *o;

	if (ly->op == TMRT_OP_CONV2D)
		nw *= (size_t)(p->input.c / p->groups);
	w = ref_array(c, name, "_rt_weights", p->weights, 1, nw);
	b = ref_array(c, name, "_rt_bias", p->bias, 0, (size_t)p->output.c);
	mu = ref_array(c, name, "_rt_multiplier", p->multiplier, 0,
		       (size_t)p->n_requant);
	sh = ref_array(c, name, "_rt_shift", p->shift, 0,
		       (size_t)p->n_requant);
	o = open_bundle(c, name, "tmrt_conv_params", &id);
	if (!o)
		return NULL;
	put_window_dims(o, &p->input, &p->output);
	fprintf(o, WINDOW_FMT "%ld,\n\t%s, %s,\n\t%ld, %ld, %s, %s, %ld, "
		"%ld, %ld\n};\n", WINDOW_ARGS(p), (long)p->groups, w, b,
		(long)p->input_zp, (long)p->output_zp, mu, sh,
		(long)p->n_requant, (long)p->act_min, (long)p->act_max);
	return id;
}

/* The bundle of lowered layer k (its arrays first); its C name, "NULL"
 * for a copy, or NULL on error. */
static const char *
put_bundle(ctx *c, const tmrt_layer *ly, const char *name)
{
	const char *id, *w, *b, *mu, *sh, *t;
	FILE *o;

	switch (ly->op) {
	case TMRT_OP_COPY:
		return "NULL";
	case TMRT_OP_FULLY_CONNECTED: {
		const tmrt_fc_params *p = ly->params;
		size_t nw = (size_t)p->in_features * (size_t)p->out_features;

		w = ref_array(c, name, "_rt_weights", p->weights, 1, nw);
		b = ref_array(c, name, "_rt_bias", p->bias, 0,
			      (size_t)p->out_features);
		mu = ref_array(c, name, "_rt_multiplier", p->multiplier, 0,
			       (size_t)p->n_requant);
		sh = ref_array(c, name, "_rt_shift", p->shift, 0,
			       (size_t)p->n_requant);
		o = open_bundle(c, name, "tmrt_fc_params", &id);
		if (!o)
			return NULL;
		fprintf(o, " {\n"
			"\t%ld, %ld, %s, %s,\n\t%ld, %ld, %s, %s, %ld, "
			"%ld, %ld\n};\n", (long)p->in_features,
			(long)p->out_features, w, b, (long)p->input_zp,
			(long)p->output_zp, mu, sh, (long)p->n_requant,
			(long)p->act_min, (long)p->act_max);
		return id;
	}
	case TMRT_OP_LUT: {
		const tmrt_lut_params *p = ly->params;

		t = ref_array(c, name, "_table", p->table, 1, 256);
		o = open_bundle(c, name, "tmrt_lut_params", &id);
		if (!o)
			return NULL;
		fprintf(o, " { %ld, %s };\n", (long)p->size, t);
		return id;
	}
	case TMRT_OP_CONV2D:
	case TMRT_OP_DEPTHWISE_CONV2D:
		return put_conv(c, ly, name);
	case TMRT_OP_MAX_POOL2D:
	case TMRT_OP_AVG_POOL2D: {
		const tmrt_pool_params *p = ly->params;

		o = open_bundle(c, name, "tmrt_pool_params", &id);
		if (!o)
			return NULL;
		put_window_dims(o, &p->input, &p->output);
		fprintf(o, WINDOW_FMT "%ld,\n\t%ld, %ld, %ld, %ld, %ld, "
			"%ld\n};\n", WINDOW_ARGS(p),
			(long)p->count_include_pad, (long)p->input_zp,
			(long)p->output_zp, (long)p->multiplier,
			(long)p->shift, (long)p->act_min, (long)p->act_max);
		return id;
	}
	case TMRT_OP_GLOBAL_AVG_POOL: {
		const tmrt_global_pool_params *p = ly->params;

		o = open_bundle(c, name, "tmrt_global_pool_params", &id);
		if (!o)
			return NULL;
		fputs(" {\n\t", o);
		put_dims(o, &p->input);
		fprintf(o, "\n\t%ld, %ld, %ld, %ld, %ld, %ld\n};\n",
			(long)p->input_zp, (long)p->output_zp,
			(long)p->multiplier, (long)p->shift,
			(long)p->act_min, (long)p->act_max);
		return id;
	}
	case TMRT_OP_ADD: {
		const tmrt_add_params *p = ly->params;

		o = open_bundle(c, name, "tmrt_add_params", &id);
		if (!o)
			return NULL;
		fprintf(o, " {\n\t%ld, "
			"%ld, %ld, %ld, %ld,\n\t%ld, %ld, %ld, %ld, %ld, %ld,"
			"\n\t%ld, %ld, %ld\n};\n", (long)p->size,
			(long)p->in2_size, (long)p->input1_zp,
			(long)p->input2_zp, (long)p->left_shift,
			(long)p->input1_multiplier, (long)p->input1_shift,
			(long)p->input2_multiplier, (long)p->input2_shift,
			(long)p->output_multiplier, (long)p->output_shift,
			(long)p->output_zp, (long)p->act_min,
			(long)p->act_max);
		return id;
	}
	case TMRT_OP_CONCAT: {
		const tmrt_concat_params *p = ly->params;
		const char *in = claim(c, "layer", name, 0, "_inputs");

		if (!in)
			return NULL;
		o = def_open(c, "tmrt_concat_input", in, (long)p->n_inputs);
		fputs(" {\n", o);
		for (int32_t i = 0; i < p->n_inputs; i++)
			fprintf(o, "\t{ %ld, %ld, %ld, %ld }%s\n",
				(long)p->inputs[i].axis_len,
				(long)p->inputs[i].zp,
				(long)p->inputs[i].multiplier,
				(long)p->inputs[i].shift,
				i + 1 < p->n_inputs ? "," : "");
		fputs("};\n", o);
		o = open_bundle(c, name, "tmrt_concat_params", &id);
		if (!o)
			return NULL;
		fprintf(o, " { %ld, "
			"%ld, %ld, %s, %ld };\n", (long)p->outer,
			(long)p->inner, (long)p->n_inputs, in,
			(long)p->output_zp);
		return id;
	}
	case TMRT_OP_SOFTMAX: {
		const tmrt_softmax_params *p = ly->params;

		t = ref_array(c, name, "_exp_table", p->exp_table, 0, 256);
		o = open_bundle(c, name, "tmrt_softmax_params", &id);
		if (!o)
			return NULL;
		fprintf(o, " { %ld, "
			"%ld, %ld, %s, %ld };\n", (long)p->outer,
			(long)p->len, (long)p->inner, t, (long)p->output_zp);
		return id;
	}
	default:
		c->st = tm_error_set(c->err, TM_ERR_UNSUPPORTED,
				     "layer '%s': runtime op %s is not "
				     "supported by this emitter yet", name,
				     ly->op >= 0 && ly->op < TMRT_OP_COUNT
					     ? op_const[ly->op]
					     : "?");
		return NULL;
	}
}

/* For an image input or output: its bytes are channels-last. */
static void
put_layout(FILE *fp, const tmrt_tensor *t)
{
	if (t->dims.c > 1 && (int64_t)t->dims.h * t->dims.w > 1)
		fprintf(fp, "/* an image, channels last: [%ld][%ld][%ld] "
			"(H, W, C) */\n", (long)t->dims.h, (long)t->dims.w,
			(long)t->dims.c);
}

static void
put_index_list(FILE *fp, const int32_t *v, int32_t n)
{
	fputs(" {", fp);
	for (int32_t i = 0; i < n; i++)
		fprintf(fp, "%s %ld", i ? "," : "", (long)v[i]);
	fputs(" };\n", fp);
}

static void
put_runtime(ctx *c, const tm_lowered *lw)
{
	const tmrt_model *rm = tm_lowered_model(lw);
	const char **bundle, *tensors, *layers, *lin, *ins, *outs, *model;
	const char *arena;
	int32_t n_lin = 0;
	FILE *o;

	bundle = calloc((size_t)rm->n_layers + 1, sizeof *bundle);
	if (!bundle) {
		c->st = tm_error_set(c->err, TM_ERR_NOMEM, "out of memory");
		return;
	}
	arena = claim(c, "header", "arena", 1, "_SIZE");
	if (!arena) {
		free(bundle);
		return;
	}
	fprintf(c->fp, "/* ---- The model for libtmrt (int8, NHWC) ----\n *\n"
		" *\tstatic int8_t arena[%s];\n"
		" *\ttmrt_run(&%s_model, in, out, arena, sizeof arena);\n"
		" *\n * in and out: one int8 buffer per model input and output,"
		" in the order\n * of the _INDEX macros. Integers only: "
		"nothing is parsed or computed\n * at start-up. */\n"
		"#include <tmrt/model.h>\n\n#define %s %lu\n", arena,
		c->prefix, arena, (unsigned long)rm->arena_size);
	for (int32_t i = 0; i < rm->n_inputs && !c->st; i++) {
		const char *nm = tm_lowered_tensor_name(lw, rm->inputs[i]);

		fprintf(c->fp, "/* model input %ld: tensor '%s' */\n",
			(long)i, cm(c, nm));
		put_layout(c->fp, &rm->tensors[rm->inputs[i]]);
		put_define(c, "tensor", nm, "_SIZE", "%lu",
			   (unsigned long)rm->tensors[rm->inputs[i]].size);
		put_define(c, "tensor", nm, "_INDEX", "%ld", (long)i);
	}
	for (int32_t i = 0; i < rm->n_outputs && !c->st; i++) {
		const char *nm = tm_lowered_tensor_name(lw, rm->outputs[i]);

		size_t ch, hw;

		fprintf(c->fp, "/* model output %ld: tensor '%s' */\n",
			(long)i, cm(c, nm));
		put_layout(c->fp, &rm->tensors[rm->outputs[i]]);
		if (tm_lowered_output_hwc(lw, i, &ch, &hw))
			fprintf(c->fp, "/* a flattened image of %lu channels "
				"and %lu pixels, channels last: the model's "
				"element c * %lu + p is at p * %lu + c */\n",
				(unsigned long)ch, (unsigned long)hw,
				(unsigned long)hw, (unsigned long)ch);
		put_define(c, "tensor", nm, "_SIZE", "%lu",
			   (unsigned long)rm->tensors[rm->outputs[i]].size);
		put_define(c, "tensor", nm, "_INDEX", "%ld", (long)i);
	}
	fputc('\n', c->fp);
	for (int32_t k = 0; k < rm->n_layers && !c->st; k++) {
		bundle[k] = put_bundle(c, &rm->layers[k],
				       tm_lowered_layer_name(lw, k));
		n_lin += rm->layers[k].n_inputs;
	}
	tensors = claim(c, "header", "tensors", 0, "");
	layers = claim(c, "header", "layers", 0, "");
	lin = claim(c, "header", "layer_inputs", 0, "");
	ins = claim(c, "header", "inputs", 0, "");
	outs = claim(c, "header", "outputs", 0, "");
	model = claim(c, "header", "model", 0, "");
	if (c->st) {
		free(bundle);
		return;
	}
	fputc('\n', c->fp);
	o = def_open(c, "tmrt_tensor", tensors, (long)rm->n_tensors);
	fputs(" {\n", o);
	for (int32_t i = 0; i < rm->n_tensors; i++) {
		const tmrt_tensor *t = &rm->tensors[i];

		fprintf(o, "\t{ %lu, %lu, { %ld, %ld, %ld, %ld }, %ld }%s"
			"\t/* %ld '%s': arena bytes %lu-%lu */\n",
			(unsigned long)t->offset, (unsigned long)t->size,
			(long)t->dims.n, (long)t->dims.h, (long)t->dims.w,
			(long)t->dims.c, (long)t->zp,
			i + 1 < rm->n_tensors ? "," : "", (long)i,
			cm(c, tm_lowered_tensor_name(lw, i)),
			(unsigned long)t->offset,
			(unsigned long)(t->offset + t->size - 1));
	}
	fputs("};\n", o);
	if (rm->n_layers > 0) {
		int32_t at = 0;

		o = def_open(c, "int32_t", lin, (long)n_lin);
		fputs(" {", o);
		for (int32_t k = 0; k < rm->n_layers; k++)
			for (int32_t j = 0; j < rm->layers[k].n_inputs; j++)
				fprintf(o, "%s %ld", k || j ? "," : "",
					(long)rm->layers[k].inputs[j]);
		fputs(" };\n", o);
		o = def_open(c, "tmrt_layer", layers, (long)rm->n_layers);
		fputs(" {\n", o);
		for (int32_t k = 0; k < rm->n_layers; k++) {
			const tmrt_layer *ly = &rm->layers[k];

			fprintf(o, "\t{ %s, %s%s, %s + %ld, %ld, %ld }%s"
				"\t/* %s */\n", op_const[ly->op],
				strcmp(bundle[k], "NULL") ? "&" : "",
				bundle[k], lin, (long)at, (long)ly->n_inputs,
				(long)ly->output,
				k + 1 < rm->n_layers ? "," : "",
				cm(c, tm_lowered_layer_name(lw, k)));
			at += ly->n_inputs;
		}
		fputs("};\n", o);
	}
	o = def_open(c, "int32_t", ins, (long)rm->n_inputs);
	put_index_list(o, rm->inputs, rm->n_inputs);
	o = def_open(c, "int32_t", outs, (long)rm->n_outputs);
	put_index_list(o, rm->outputs, rm->n_outputs);
	o = def_open(c, "tmrt_model", model, -1);
	fprintf(o, " {\n\t%s, %ld, %s, %ld,"
		"\n\t%s, %ld, %s, %ld,\n\t%s\n};\n", tensors,
		(long)rm->n_tensors, rm->n_layers > 0 ? layers : "NULL",
		(long)rm->n_layers, ins, (long)rm->n_inputs, outs,
		(long)rm->n_outputs, arena);
	fputc('\n', c->fp);
	free(bundle);
}

static tm_status
ch_emit(const tm_model *m, const tm_params *p, tm_outputs *outs,
	tm_error *err)
{
	const char *path = tm_params_get_string(p, "path");
	const char *src = tm_params_get_string(p, "source");
	const char *base;
	ctx c = { 0 };
	const char *guard;
	tm_lowered *lw = NULL;
	tm_status st;

	c.prefix = tm_params_get_string(p, "prefix");
	c.err = err;
	if (!valid_ident(c.prefix))
		return tm_params_error(p, "prefix", err, TM_ERR_INVALID,
				       "prefix: '%s' is not a C identifier",
				       c.prefix);
	for (size_t i = 0; i < m->n_tensors; i++)
		if (m->tensors[i]->kind != TM_TENSOR_CONST &&
		    m->tensors[i]->q.scheme == TM_QSCHEME_NONE)
			return tm_error_set(err, TM_ERR_INVALID,
					    "tensor '%s' is not "
					    "quantized (the pipeline needs a "
					    "calibration section)",
					    m->tensors[i]->name);
	/* The runtime's tables: the lowering the blob emitter uses. */
	st = tm_model_lower(m, &lw, err);
	if (st)
		return st;
	c.fp = tm_outputs_open(outs, path, err);
	if (c.fp && src)
		c.src = tm_outputs_open(outs, src, err);
	if (!c.fp || (src && !c.src)) {
		tm_lowered_free(lw);
		return err->code;
	}
	if (c.src) {
		/* The source includes the header by its file name. */
		base = strrchr(path, '/');
		base = base ? base + 1 : path;
		fprintf(c.src, "/* Generated by tmpipe %s from %s. Do not "
			"edit.\n *\n * The arrays and tables that %s declares."
			"\n */\n#include \"%s\"\n\n", tm_version(),
			cm(&c, m->source ? m->source : "a model"), base, base);
	}
	fprintf(c.fp, "/* Generated by tmpipe %s from %s. Do not edit.\n",
		tm_version(), cm(&c, m->source ? m->source : "a model"));
	fprintf(c.fp, " *\n * int8 quantization (TFLite scheme): activations "
		"asymmetric in [-128, 127],\n * weights symmetric (zero point "
		"0), biases int32 at input scale * weight scale.\n */\n");
	/* The guard and the counts are <PREFIX>_MODEL_H etc.: claimed like
	 * any other name so a tensor called "model_h" cannot clash. */
	guard = claim(&c, "header", "model", 1, "_H");
	if (guard)
		fprintf(c.fp, "#ifndef %s\n#define %s\n\n#include <stdint.h>\n\n",
			guard, guard);
	put_define(&c, "header", "n", "_INPUTS", "%zu", m->n_inputs);
	put_define(&c, "header", "n", "_OUTPUTS", "%zu", m->n_outputs);
	fputc('\n', c.fp);
	for (size_t i = 0; i < m->n_inputs; i++)
		put_activation(&c, m->tensors[m->inputs[i]]);
	for (size_t k = 0; k < m->n_nodes && !c.st; k++) {
		const tm_node *n = m->nodes[k];

		for (size_t o = 0; o < n->n_outputs; o++)
			put_activation(&c, m->tensors[n->outputs[o]]);
		if (n->op == TM_OP_DENSE)
			put_dense(&c, m, n);
		else if (n->op == TM_OP_CONV2D && n->multiplier)
			put_conv_info(&c, m, n);
		else if (n->lut)
			put_lut(&c, n);
	}
	if (!c.st)
		put_runtime(&c, lw);
	if (guard)
		fprintf(c.fp, "#endif /* %s */\n", guard);
	for (size_t i = 0; i < c.n_ids; i++)
		free(c.ids[i].name);
	free(c.ids);
	free(c.arrs);
	tm_lowered_free(lw);
	/* On error the core discards the half-written file. */
	return c.st;
}

static const tm_emitter_ops ch_ops = {
	.emit = ch_emit,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_EMITTER, "c_header", "1.0",
		 "C header with int8 weights, int32 biases and requantizers",
		 ch_params, &ch_ops)
