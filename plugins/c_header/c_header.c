/* c_header — the quantized model as a self-contained C header: int8
 * weights, int32 biases, per-tensor scale and zero point, the baked
 * requantizer (multiplier, shift) and output clamp of every layer, and
 * the lookup table of every sigmoid. Everything a target needs is an
 * integer constant; scales are there for reference and for host code.
 *
 * Names: <prefix>_<name> with every character outside [A-Za-z0-9_] made
 * '_' (lower case for arrays, upper case for macros). Every identifier
 * the header defines is claimed once; two model names that land on the
 * same C identifier are an error naming both, never a silent shadow. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>

#define VALUES_PER_LINE 12
#define IDENT_MAX 256

static const tm_param_spec ch_params[] = {
	{ .name = "path", .type = TM_PARAM_PATH, .flags = TM_PARAM_REQUIRED,
	  .help = "header to write (relative to the pipeline)" },
	{ .name = "prefix", .type = TM_PARAM_STRING, .def = "model",
	  .help = "C identifier prefixed to every name" },
	TM_PARAM_END
};

typedef struct ident {
	char name[IDENT_MAX];
	const char *what;	/* "tensor", "layer" */
	const char *from;	/* the model name it came from */
} ident;

typedef struct ctx {
	FILE *fp;
	const char *prefix;
	ident *ids;
	size_t n_ids, cap_ids;
	tm_error *err;
	tm_status st;
} ctx;

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

/* The identifier <prefix>_<name><suffix>, upper or lower case, claimed
 * for (what, from). NULL once any error is set. */
static const char *
claim(ctx *c, const char *what, const char *from, int upper,
      const char *suffix)
{
	ident *id;
	size_t len;

	if (c->st)
		return NULL;
	if (c->n_ids == c->cap_ids) {
		size_t cap = c->cap_ids ? 2 * c->cap_ids : 64;
		ident *v = realloc(c->ids, cap * sizeof *v);

		if (!v) {
			c->st = tm_error_set(c->err, TM_ERR_NOMEM,
					     "out of memory");
			return NULL;
		}
		c->ids = v;
		c->cap_ids = cap;
	}
	id = &c->ids[c->n_ids];
	len = (size_t)snprintf(id->name, sizeof id->name, "%s_%s%s",
			       c->prefix, from, suffix);
	if (len >= sizeof id->name) {
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

static void
put_array(ctx *c, const char *what, const char *from, const char *suffix,
	  const void *v, int is_i8, size_t n)
{
	const char *id = claim(c, what, from, 0, suffix);

	if (!id)
		return;
	fprintf(c->fp, "static const %s %s[%zu] = {\n",
		is_i8 ? "int8_t" : "int32_t", id, n);
	put_values(c->fp, v, is_i8, n);
	fprintf(c->fp, "};\n");
}

static void
put_activation(ctx *c, const tm_tensor *t)
{
	size_t n = tm_tensor_numel(t);

	fprintf(c->fp, "/* %s '%s': %zu value%s, ",
		t->kind == TM_TENSOR_INPUT ? "input" : "tensor", t->name, n,
		n == 1 ? "" : "s");
	if (t->fixed_range)
		fprintf(c->fp, "fixed range [%.9g, %.9g] */\n", (double)t->lo,
			(double)t->hi);
	else
		fprintf(c->fp, "observed range [%.9g, %.9g] by %s */\n",
			(double)t->lo, (double)t->hi,
			t->observer ? t->observer : "?");
	put_define(c, "tensor", t->name, "_SCALE", "%.9ef",
		   (double)(float)t->q.scale);
	put_define(c, "tensor", t->name, "_ZERO_POINT", "(%ld)",
		   (long)t->q.zero_point);
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
		"*/\n", n->name, in, out, x->name, y->name,
		n->fused_relu ? " (ReLU folded into the clamp)" : "");
	put_define(c, "layer", n->name, "_IN_FEATURES", "%lld", in);
	put_define(c, "layer", n->name, "_OUT_FEATURES", "%lld", out);
	if (w->q.scheme == TM_QSCHEME_PER_CHANNEL) {
		const char *id = claim(c, "layer", n->name, 0,
				       "_weight_scale");

		if (id) {
			fprintf(c->fp, "/* one weight scale per output channel "
				"*/\nstatic const float %s[%zu] = {\n", id,
				w->q.n_channels);
			for (size_t k = 0; k < w->q.n_channels; k++)
				fprintf(c->fp, "\t%.9ef%s\n",
					(double)(float)w->q.scales[k],
					k + 1 < w->q.n_channels ? "," : "");
			fprintf(c->fp, "};\n");
		}
	} else {
		put_define(c, "layer", n->name, "_WEIGHT_SCALE", "%.9ef",
			   (double)(float)w->q.scale);
	}
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
		"*/\n", n->name, tm_op_name(n->op));
	put_array(c, "layer", n->name, "_lut", n->lut, 1, 256);
	fputc('\n', c->fp);
}

static tm_status
ch_emit(const tm_model *m, const tm_params *p, tm_outputs *outs,
	tm_error *err)
{
	const char *path = tm_params_get_string(p, "path");
	ctx c = { 0 };
	const char *guard;

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
	/* The integer runtime this header feeds runs these ops so far. */
	for (size_t k = 0; k < m->n_nodes; k++) {
		tm_op op = m->nodes[k]->op;

		if (op != TM_OP_DENSE && op != TM_OP_RELU &&
		    op != TM_OP_SIGMOID)
			return tm_error_set(err, TM_ERR_UNSUPPORTED,
					    "layer '%s': op %s is not supported "
					    "by this emitter yet (dense, relu "
					    "and sigmoid are)",
					    m->nodes[k]->name,
					    tm_op_name(op));
	}
	c.fp = tm_outputs_open(outs, path, err);
	if (!c.fp)
		return err->code;
	fprintf(c.fp, "/* Generated by tmpipe %s from %s. Do not edit.\n",
		tm_version(), m->source ? m->source : "a model");
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
		else if (n->lut)
			put_lut(&c, n);
	}
	if (guard)
		fprintf(c.fp, "#endif /* %s */\n", guard);
	free(c.ids);
	/* On error the core discards the half-written file. */
	return c.st;
}

static const tm_emitter_ops ch_ops = {
	.emit = ch_emit,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_EMITTER, "c_header", "1.0",
		 "C header with int8 weights, int32 biases and requantizers",
		 ch_params, &ch_ops)
