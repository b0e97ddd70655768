/* tinymind_hpp — the quantized model as a TinyMind weights.hpp, the file
 * TinyMind's PyTorch importer writes, so code built on TinyMind's Q*
 * layers takes it unchanged (QUANT.md, "TinyMind weights.hpp layout"):
 *
 *	#pragma once, <cstddef>, <cstdint>, namespace NS {
 *	  constexpr std::size_t KEY = VALUE;	(meta, in order)
 *	  // Activation calibration.		(inputs, then every node
 *	  constexpr float   k<n>_Scale     = ...f;	output in order)
 *	  constexpr int32_t k<n>_ZeroPoint = ...;
 *	  // Weight calibration + int8 weights + int32 biases.
 *	  constexpr float k<n>_WeightScale = ...f;	(dense, conv2d)
 *	  constexpr int8_t k<n>_Weights[N] = { ... };
 *	  constexpr int32_t k<n>_Biases[M] = { ... };
 *	} // namespace NS
 *
 * Spacing, indents (4 for declarations, 8 for values), rows of 12 values
 * right-aligned to width 5 and joined by ", " are the importer's, so a
 * file written by tmpipe diffs cleanly against one written by TinyMind.
 *
 * Names: k<n> where <n> is the tensor name (activations) or the layer
 * name (weights) with every character outside [A-Za-z0-9_] made '_'.
 * Case is kept: TinyMind's importer writes k + the name as given (kfc1,
 * not kFc1), and user code refers to those names. The 'k' prefix makes
 * every result a valid identifier, even for names starting with a digit.
 * Every identifier is claimed once; two names that land on the same C++
 * identifier are an error naming both.
 *
 * Floats are the float32 value the C++ side stores, printed with %.9g
 * (enough to read back exactly) and always with a '.' or an exponent
 * before the 'f', so each is a float literal.
 *
 * What the layout cannot hold is refused rather than dropped: per-channel
 * weights (one WeightScale per layer), weighted layers other than dense
 * and conv2d, grouped convolutions, constants feeding other ops. Layers
 * without weights (relu, sigmoid, pooling, ...) contribute only the
 * calibration of their outputs, which is all TinyMind needs of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>

#define VALUES_PER_LINE 12

static const tm_param_spec meta_field[] = {
	{ .name = "value", .type = TM_PARAM_INT, .flags = TM_PARAM_HAS_MIN,
	  .min = 0, .help = "a std::size_t constant" },
	TM_PARAM_END
};

static const tm_param_spec tmh_params[] = {
	{ .name = "path", .type = TM_PARAM_PATH, .flags = TM_PARAM_REQUIRED,
	  .help = "weights.hpp to write (relative to the pipeline)" },
	{ .name = "namespace", .type = TM_PARAM_STRING, .def = "weights",
	  .help = "C++ namespace holding the constants" },
	{ .name = "meta", .type = TM_PARAM_MAP, .fields = meta_field,
	  .help = "extra constants, KEY: VALUE (constexpr std::size_t)" },
	TM_PARAM_END
};

/* C++20 keywords and alternative tokens: none can name a namespace or a
 * constant. */
static const char *const cxx_keywords[] = {
	"alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand",
	"bitor", "bool", "break", "case", "catch", "char", "char8_t",
	"char16_t", "char32_t", "class", "compl", "concept", "const",
	"consteval", "constexpr", "constinit", "const_cast", "continue",
	"co_await", "co_return", "co_yield", "decltype", "default", "delete",
	"do", "double", "dynamic_cast", "else", "enum", "explicit", "export",
	"extern", "false", "float", "for", "friend", "goto", "if", "inline",
	"int", "long", "mutable", "namespace", "new", "noexcept", "not",
	"not_eq", "nullptr", "operator", "or", "or_eq", "private",
	"protected", "public", "register", "reinterpret_cast", "requires",
	"return", "short", "signed", "sizeof", "static", "static_assert",
	"static_cast", "struct", "switch", "template", "this", "thread_local",
	"throw", "true", "try", "typedef", "typeid", "typename", "union",
	"unsigned", "using", "virtual", "void", "volatile", "wchar_t",
	"while", "xor", "xor_eq", NULL
};

typedef struct ident {
	char *name;
	const char *what;	/* "tensor", "layer", "meta key" */
	const char *from;	/* the name it came from */
} ident;

typedef struct ctx {
	FILE *fp;
	ident *ids;
	size_t n_ids, cap_ids;
	tm_error *err;
	tm_status st;
} ctx;

/* [A-Za-z0-9_], whatever the locale (<ctype.h> may take more). */
static int
word_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_';
}

static int
is_ident(const char *s)
{
	if (!word_char(*s) || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!word_char(*s))
			return 0;
	return 1;
}

/* Why a user-given name cannot be a C++ identifier, or NULL when it can. */
static const char *
bad_ident(const char *s)
{
	if (!is_ident(s))
		return "is not a C++ identifier";
	for (const char *const *k = cxx_keywords; *k; k++)
		if (strcmp(s, *k) == 0)
			return "is a C++ keyword";
	/* [lex.name]: these belong to the implementation. */
	if (strstr(s, "__") || (s[0] == '_' && s[1] >= 'A' && s[1] <= 'Z'))
		return "is reserved to the C++ implementation (a double "
		       "underscore, or an underscore and a capital first)";
	return NULL;
}

/* Claims the identifier prefix + from (sanitised) + suffix for (what,
 * from). With sanitise 0 the name is taken as it is (meta keys, already
 * checked). NULL once any error is set. */
static const char *
claim(ctx *c, const char *what, const char *from, const char *prefix,
      const char *suffix, int sanitise)
{
	size_t lp = strlen(prefix), lf = strlen(from), ls = strlen(suffix);
	ident *id;
	char *name;

	if (c->st)
		return NULL;
	if (c->n_ids == c->cap_ids) {
		size_t cap = c->cap_ids ? 2 * c->cap_ids : 64;
		ident *v = realloc(c->ids, cap * sizeof *v);

		if (!v)
			goto nomem;
		c->ids = v;
		c->cap_ids = cap;
	}
	name = malloc(lp + lf + ls + 1);
	if (!name)
		goto nomem;
	memcpy(name, prefix, lp);
	memcpy(name + lp, from, lf);
	memcpy(name + lp + lf, suffix, ls + 1);
	for (char *p = name + lp; sanitise && p < name + lp + lf; p++)
		if (!word_char(*p))
			*p = '_';
	for (size_t i = 0; i < c->n_ids; i++) {
		if (strcmp(c->ids[i].name, name) != 0)
			continue;
		c->st = tm_error_set(c->err, TM_ERR_INVALID,
				     "%s '%s' and %s '%s' both become the "
				     "C++ name %s; rename one",
				     c->ids[i].what, c->ids[i].from, what,
				     from, name);
		free(name);
		return NULL;
	}
	id = &c->ids[c->n_ids++];
	id->name = name;
	id->what = what;
	id->from = from;
	return name;
nomem:
	c->st = tm_error_set(c->err, TM_ERR_NOMEM, "out of memory");
	return NULL;
}

/* A float literal for the float32 value of x: %.9g reads back to the
 * same float; ".0" keeps "1" from being an int literal. */
static void
put_float(FILE *fp, double x)
{
	char buf[48];

	snprintf(buf, sizeof buf, "%.9g", (double)(float)x);
	fprintf(fp, "%s%sf", buf, strpbrk(buf, ".e") ? "" : ".0");
}

static void
put_array(ctx *c, const char *from, const char *suffix, const void *v,
	  int is_i8, size_t n)
{
	const char *id = claim(c, "layer", from, "k", suffix, 1);

	if (!id)
		return;
	fprintf(c->fp, "    constexpr %s %s[%zu] = {\n",
		is_i8 ? "int8_t" : "int32_t", id, n);
	for (size_t i = 0; i < n; i++) {
		long x = is_i8 ? (long)((const int8_t *)v)[i]
			       : (long)((const int32_t *)v)[i];
		const char *sep = i % VALUES_PER_LINE ? ", " : "        ";
		const char *end = i + 1 == n ? "\n"
				  : (i + 1) % VALUES_PER_LINE ? "" : ",\n";

		fprintf(c->fp, "%s%5ld%s", sep, x, end);
	}
	fprintf(c->fp, "    };\n");
}

static void
put_activation(ctx *c, const tm_tensor *t)
{
	const char *id = claim(c, "tensor", t->name, "k", "_Scale", 1);

	if (!id)
		return;
	fprintf(c->fp, "    constexpr float   %s     = ", id);
	put_float(c->fp, t->q.scale);
	fprintf(c->fp, ";\n");
	id = claim(c, "tensor", t->name, "k", "_ZeroPoint", 1);
	if (id)
		fprintf(c->fp, "    constexpr int32_t %s = %ld;\n", id,
			(long)t->q.zero_point);
}

/* Dense weights are [out][in] already; conv2d weights go from the
 * model's OIHW to TinyMind's OHWI. */
static void
put_weighted(ctx *c, const tm_model *m, const tm_node *n)
{
	const tm_tensor *w = m->tensors[n->inputs[1]];
	const tm_tensor *b = n->n_inputs > 2 ? m->tensors[n->inputs[2]] : NULL;
	size_t nw = tm_tensor_numel(w);
	const int8_t *q = w->q8;
	int8_t *ohwi = NULL;
	const char *id;

	if (n->op == TM_OP_CONV2D) {
		size_t ci = (size_t)w->shape[1];
		size_t kh = (size_t)w->shape[2], kw = (size_t)w->shape[3];

		ohwi = malloc(nw ? nw : 1);
		if (!ohwi) {
			c->st = tm_error_set(c->err, TM_ERR_NOMEM,
					     "out of memory");
			return;
		}
		/* src walks OIHW in order; each value lands at its OHWI
		 * place [f][y][x][i]. */
		for (size_t src = 0; src < nw; src++) {
			size_t x = src % kw, y = src / kw % kh;
			size_t i = src / (kw * kh) % ci;
			size_t f = src / (kw * kh * ci);

			ohwi[((f * kh + y) * kw + x) * ci + i] = w->q8[src];
		}
		q = ohwi;
	}
	id = claim(c, "layer", n->name, "k", "_WeightScale", 1);
	if (id) {
		fprintf(c->fp, "    constexpr float %s = ", id);
		put_float(c->fp, w->q.scale);
		fprintf(c->fp, ";\n");
	}
	put_array(c, n->name, "_Weights", q, 1, nw);
	if (b)
		put_array(c, n->name, "_Biases", b->q32, 0,
			  tm_tensor_numel(b));
	free(ohwi);
}

/* Ops without weights of their own: TinyMind builds them from the
 * calibration of their input and output (LUTs from scales, fixed sigmoid
 * and softmax grids) and from hyperparameters the user's code states. */
static int
weightless(tm_op op)
{
	switch (op) {
	case TM_OP_RELU:
	case TM_OP_SIGMOID:
	case TM_OP_TANH:
	case TM_OP_SOFTMAX:
	case TM_OP_CLIP:
	case TM_OP_LEAKY_RELU:
	case TM_OP_MAXPOOL2D:
	case TM_OP_AVGPOOL2D:
	case TM_OP_GLOBAL_AVGPOOL:
	case TM_OP_FLATTEN:
	case TM_OP_RESHAPE:
	case TM_OP_ADD:
	case TM_OP_CONCAT:
		return 1;
	default:
		return 0;
	}
}

/* Refuses a layer the layout has no place for. */
static tm_status
check_layer(const tm_model *m, const tm_node *n, tm_error *err)
{
	const char *op = tm_op_name(n->op);

	if (n->op == TM_OP_BATCHNORM)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "layer '%s': the TinyMind layout has no "
				    "batchnorm; fold it into the convolution "
				    "before it", n->name);
	if (weightless(n->op)) {
		for (size_t i = 0; i < n->n_inputs; i++) {
			const tm_tensor *t = m->tensors[n->inputs[i]];

			if (t->kind == TM_TENSOR_CONST)
				return tm_error_set(
					err, TM_ERR_UNSUPPORTED,
					"layer '%s': %s of the constant '%s' "
					"has no place in the TinyMind layout "
					"(dense and conv2d are its only "
					"layers with constants)",
					n->name, op, t->name);
		}
		return TM_OK;
	}
	if (n->op != TM_OP_DENSE && n->op != TM_OP_CONV2D)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "layer '%s': op %s has no place in the "
				    "TinyMind layout (dense and conv2d are its "
				    "only layers with weights)", n->name, op);
	if (n->op == TM_OP_CONV2D && n->attrs.group != 1)
		return tm_error_set(err, TM_ERR_UNSUPPORTED,
				    "layer '%s': grouped conv2d (group %lld) "
				    "has no place in the TinyMind layout, "
				    "whose conv2d weights are OHWI over all "
				    "input channels",
				    n->name, (long long)n->attrs.group);
	return TM_OK;
}

/* Refuses what the layout cannot express, before anything is written:
 * first what the model must change, then how it was quantized. */
static tm_status
check_model(const tm_model *m, tm_error *err)
{
	tm_status st;

	for (size_t k = 0; k < m->n_nodes; k++) {
		st = check_layer(m, m->nodes[k], err);
		if (st)
			return st;
	}
	for (size_t i = 0; i < m->n_tensors; i++)
		if (m->tensors[i]->kind != TM_TENSOR_CONST &&
		    m->tensors[i]->q.scheme == TM_QSCHEME_NONE)
			return tm_error_set(err, TM_ERR_INVALID,
					    "tensor '%s' is not quantized (the "
					    "pipeline needs a calibration "
					    "section)", m->tensors[i]->name);
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *n = m->nodes[k];
		const tm_tensor *w;

		if (n->op != TM_OP_DENSE && n->op != TM_OP_CONV2D)
			continue;
		w = m->tensors[n->inputs[1]];
		if (w->q.scheme == TM_QSCHEME_PER_CHANNEL)
			return tm_error_set(err, TM_ERR_UNSUPPORTED,
					    "weights of '%s' are per channel; "
					    "the TinyMind layout holds one "
					    "scale per layer: use "
					    "quantize.weights: per_tensor "
					    "(and no per_channel rule for it "
					    "in quantize.layers)", n->name);
		if (!w->q8 || w->q.scheme == TM_QSCHEME_NONE ||
		    (n->n_inputs > 2 && !m->tensors[n->inputs[2]]->q32))
			return tm_error_set(err, TM_ERR_UNSUPPORTED,
					    "layer '%s': its %s weights are "
					    "not quantized (this tmpipe "
					    "quantizes the weights of dense "
					    "layers only)", n->name,
					    tm_op_name(n->op));
	}
	return TM_OK;
}

/* The comment naming where the file came from, made one line whatever
 * the path holds. */
static void
put_origin(FILE *fp, const tm_model *m)
{
	const char *s = m->source ? m->source : "a model";

	fprintf(fp, "// Generated by tmpipe %s from ", tm_version());
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, fp);
	fprintf(fp, ". Do not edit.\n");
}

static tm_status
tmh_emit(const tm_model *m, const tm_params *p, tm_outputs *outs,
	 tm_error *err)
{
	const char *path = tm_params_get_string(p, "path");
	const char *ns = tm_params_get_string(p, "namespace");
	size_t n_meta = tm_params_list_len(p, "meta");
	const char *why;
	ctx c = { 0 };
	tm_status st;

	c.err = err;
	why = bad_ident(ns);
	if (why)
		return tm_params_error(p, "namespace", err, TM_ERR_INVALID,
				       "namespace: '%s' %s", ns, why);
	if (strcmp(ns, "std") == 0)
		return tm_params_error(p, "namespace", err, TM_ERR_INVALID,
				       "namespace: 'std' belongs to the C++ "
				       "library; choose another");
	for (size_t i = 0; i < n_meta; i++) {
		const char *key = tm_params_key(p, "meta", i);

		why = bad_ident(key);
		if (why)
			return tm_params_error(tm_params_item(p, "meta", i),
					       NULL, err, TM_ERR_INVALID,
					       "meta: key '%s' %s", key, why);
	}
	st = check_model(m, err);
	if (st)
		return st;

	c.fp = tm_outputs_open(outs, path, err);
	if (!c.fp)
		return err->code;
	put_origin(c.fp, m);
	fprintf(c.fp, "#pragma once\n\n#include <cstddef>\n#include <cstdint>\n"
		"namespace %s {\n", ns);
	for (size_t i = 0; i < n_meta; i++) {
		const char *key = tm_params_key(p, "meta", i);
		const tm_params *item = tm_params_item(p, "meta", i);

		if (claim(&c, "meta key", key, "", "", 0))
			fprintf(c.fp, "    constexpr std::size_t %s = %lld;\n",
				key,
				(long long)tm_params_get_int(item, "value"));
	}
	if (n_meta)
		fputc('\n', c.fp);

	fprintf(c.fp, "    // Activation calibration.\n");
	for (size_t i = 0; i < m->n_inputs; i++)
		put_activation(&c, m->tensors[m->inputs[i]]);
	for (size_t k = 0; k < m->n_nodes; k++)
		for (size_t o = 0; o < m->nodes[k]->n_outputs; o++)
			put_activation(&c, m->tensors[m->nodes[k]->outputs[o]]);

	fprintf(c.fp, "\n    // Weight calibration + int8 weights + int32 "
		"biases.\n");
	for (size_t k = 0; k < m->n_nodes; k++)
		if (m->nodes[k]->op == TM_OP_DENSE ||
		    m->nodes[k]->op == TM_OP_CONV2D)
			put_weighted(&c, m, m->nodes[k]);
	fprintf(c.fp, "} // namespace %s\n", ns);

	for (size_t i = 0; i < c.n_ids; i++)
		free(c.ids[i].name);
	free(c.ids);
	/* On error the core discards the half-written file. */
	return c.st;
}

static const tm_emitter_ops tmh_ops = {
	.emit = tmh_emit,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_EMITTER, "tinymind_hpp", "1.0",
		 "TinyMind weights.hpp: int8 weights, int32 biases, scales",
		 tmh_params, &tmh_ops)
