/* c_header — the quantized model as a self-contained C header: int8
 * weights, int32 biases, per-tensor scale and zero point, the baked
 * requantizer (multiplier, shift) and output clamp of every layer, and
 * the lookup table of every sigmoid. Everything a target needs is an
 * integer constant; scales are there for reference and for host code. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tmpipe/tmpipe.h>

#define VALUES_PER_LINE 12

static const tm_param_spec ch_params[] = {
	{ .name = "path", .type = TM_PARAM_PATH, .flags = TM_PARAM_REQUIRED,
	  .help = "header to write (relative to the pipeline)" },
	{ .name = "prefix", .type = TM_PARAM_STRING, .def = "model",
	  .help = "C identifier prefixed to every name" },
	{ NULL }
};

typedef struct cname {
	char lower[192];
	char upper[192];
	const char *from;	/* the tensor or node name it came from */
} cname;

typedef struct names {
	cname *v;
	size_t n;
} names;

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

/* prefix_name with every character that is not [A-Za-z0-9_] made '_';
 * two model names that land on the same C name are an error. */
static tm_status
make_name(names *ns, const char *prefix, const char *name, cname *out,
	  tm_error *err)
{
	size_t len;

	len = (size_t)snprintf(out->lower, sizeof out->lower, "%s_%s", prefix,
			       name);
	if (len >= sizeof out->lower)
		return tm_error_set(err, TM_ERR_INVALID,
				    "c_header: name '%s' is too long", name);
	for (char *c = out->lower; *c; c++) {
		if (!isalnum((unsigned char)*c) && *c != '_')
			*c = '_';
		*c = (char)tolower((unsigned char)*c);
	}
	for (size_t i = 0; i <= len; i++)
		out->upper[i] = (char)toupper((unsigned char)out->lower[i]);
	out->from = name;
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i].lower, out->lower) == 0)
			return tm_error_set(err, TM_ERR_INVALID,
					    "c_header: '%s' and '%s' both "
					    "become the C name '%s'; rename "
					    "one", ns->v[i].from, name,
					    out->lower);
	ns->v[ns->n++] = *out;
	return TM_OK;
}

static void
put_i32s(FILE *fp, const int32_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s%ld%s", i % VALUES_PER_LINE ? " " : "\t",
			(long)v[i],
			i + 1 == n ? "\n"
			: (i + 1) % VALUES_PER_LINE ? ","
						     : ",\n");
}

static void
put_i8s(FILE *fp, const int8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s%4d%s", i % VALUES_PER_LINE ? " " : "\t",
			(int)v[i],
			i + 1 == n ? "\n"
			: (i + 1) % VALUES_PER_LINE ? ","
						     : ",\n");
}

static void
put_activation(FILE *fp, const tm_tensor *t, const cname *cn)
{
	fprintf(fp, "/* %s '%s': %zu value%s, ", t->kind == TM_TENSOR_INPUT
		? "input" : "tensor", t->name, tm_tensor_numel(t),
		tm_tensor_numel(t) == 1 ? "" : "s");
	if (t->fixed_range)
		fprintf(fp, "fixed range [%.9g, %.9g] */\n", (double)t->lo,
			(double)t->hi);
	else
		fprintf(fp, "observed range [%.9g, %.9g] by %s */\n",
			(double)t->lo, (double)t->hi,
			t->observer ? t->observer : "?");
	fprintf(fp, "#define %s_SCALE %.9ef\n", cn->upper,
		(double)(float)t->q.scale);
	fprintf(fp, "#define %s_ZERO_POINT (%ld)\n\n", cn->upper,
		(long)t->q.zero_point);
}

static void
put_dense(FILE *fp, const tm_model *m, const tm_node *n, const cname *cn)
{
	const tm_tensor *x = m->tensors[n->inputs[0]];
	const tm_tensor *w = m->tensors[n->inputs[1]];
	const tm_tensor *b = n->n_inputs > 2 ? m->tensors[n->inputs[2]] : NULL;
	const tm_tensor *y = m->tensors[n->requant_out];
	long long out = w->shape[0], in = w->shape[1];

	fprintf(fp, "/* %s: dense %lld -> %lld, input '%s', output '%s'%s */\n",
		n->name, in, out, x->name, y->name,
		n->fused_relu ? " (ReLU folded into the clamp)" : "");
	fprintf(fp, "#define %s_IN_FEATURES %lld\n", cn->upper, in);
	fprintf(fp, "#define %s_OUT_FEATURES %lld\n", cn->upper, out);
	fprintf(fp, "#define %s_WEIGHT_SCALE %.9ef\n", cn->upper,
		(double)(float)w->q.scale);
	fprintf(fp, "/* int8, symmetric (zero point 0), [out][in] */\n");
	fprintf(fp, "static const int8_t %s_weight[%lld] = {\n", cn->lower,
		out * in);
	put_i8s(fp, w->q8, (size_t)(out * in));
	fprintf(fp, "};\n");
	if (b) {
		fprintf(fp, "/* int32, scale = input scale * weight scale */\n");
		fprintf(fp, "static const int32_t %s_bias[%lld] = {\n",
			cn->lower, out);
		put_i32s(fp, b->q32, (size_t)out);
		fprintf(fp, "};\n");
	}
	fprintf(fp, "/* requantizer: y = clamp(rdbpot(srdhm(acc << max(-shift, "
		"0), multiplier), max(shift, 0)) + zero point) */\n");
	fprintf(fp, "static const int32_t %s_multiplier[%zu] = {\n", cn->lower,
		n->n_requant);
	put_i32s(fp, n->multiplier, n->n_requant);
	fprintf(fp, "};\n");
	fprintf(fp, "static const int32_t %s_shift[%zu] = {\n", cn->lower,
		n->n_requant);
	put_i32s(fp, n->shift, n->n_requant);
	fprintf(fp, "};\n");
	fprintf(fp, "#define %s_ACT_MIN (%ld)\n", cn->upper, (long)n->act_min);
	fprintf(fp, "#define %s_ACT_MAX (%ld)\n\n", cn->upper,
		(long)n->act_max);
}

static void
put_lut(FILE *fp, const tm_node *n, const cname *cn)
{
	fprintf(fp, "/* %s: %s lookup table, indexed by (uint8_t)(x + 128) */\n",
		n->name, tm_op_name(n->op));
	fprintf(fp, "static const int8_t %s_lut[256] = {\n", cn->lower);
	put_i8s(fp, n->lut, 256);
	fprintf(fp, "};\n\n");
}

static tm_status
ch_emit(const tm_model *m, const tm_params *p, tm_outputs *outs,
	tm_error *err)
{
	const char *path = tm_params_get_string(p, "path");
	const char *prefix = tm_params_get_string(p, "prefix");
	names ns = { 0 };
	cname *tn = NULL, *nn = NULL, guard;
	tm_status st = TM_OK;
	FILE *fp;

	if (!valid_ident(prefix))
		return tm_params_error(p, "prefix", err, TM_ERR_INVALID,
				       "prefix: '%s' is not a C identifier",
				       prefix);
	for (size_t i = 0; i < m->n_tensors; i++)
		if (m->tensors[i]->kind != TM_TENSOR_CONST &&
		    m->tensors[i]->q.scheme == TM_QSCHEME_NONE)
			return tm_error_set(err, TM_ERR_INVALID,
					    "c_header: tensor '%s' is not "
					    "quantized (the pipeline needs a "
					    "calibration section)",
					    m->tensors[i]->name);
	ns.v = calloc(m->n_tensors + m->n_nodes + 1, sizeof *ns.v);
	tn = calloc(m->n_tensors + 1, sizeof *tn);
	nn = calloc(m->n_nodes + 1, sizeof *nn);
	if (!ns.v || !tn || !nn) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Activations keep their names; nodes get theirs only where they
	 * emit something (dense, sigmoid) and would otherwise collide
	 * with the tensor of the same name, so nodes are named
	 * "<name>_layer" only when needed... kept simple: a node's arrays
	 * use suffixes (_weight, _bias, _lut) that tensors never use. */
	for (size_t i = 0; i < m->n_tensors && !st; i++)
		if (m->tensors[i]->kind != TM_TENSOR_CONST)
			st = make_name(&ns, prefix, m->tensors[i]->name,
				       &tn[i], err);
	if (st)
		goto out;
	for (size_t i = 0; i < m->n_nodes; i++) {
		/* A node and its output tensor share a name in layer lists;
		 * that is fine: their C names differ by suffix. */
		size_t len = (size_t)snprintf(nn[i].lower, sizeof nn[i].lower,
					      "%s_%s", prefix,
					      m->nodes[i]->name);

		for (char *c = nn[i].lower; *c; c++) {
			if (!isalnum((unsigned char)*c) && *c != '_')
				*c = '_';
			*c = (char)tolower((unsigned char)*c);
		}
		for (size_t k = 0; k <= len && k < sizeof nn[i].upper; k++)
			nn[i].upper[k] =
				(char)toupper((unsigned char)nn[i].lower[k]);
		for (size_t k = 0; k < i; k++)
			if (strcmp(nn[k].lower, nn[i].lower) == 0) {
				st = tm_error_set(err, TM_ERR_INVALID,
						  "c_header: layers '%s' and "
						  "'%s' both become the C "
						  "name '%s'; rename one",
						  m->nodes[k]->name,
						  m->nodes[i]->name,
						  nn[i].lower);
				goto out;
			}
	}

	fp = tm_outputs_open(outs, path, err);
	if (!fp) {
		st = err->code;
		goto out;
	}
	snprintf(guard.upper, sizeof guard.upper, "%s", prefix);
	for (char *c = guard.upper; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	fprintf(fp, "/* Generated by tmpipe %s from %s. Do not edit.\n",
		tm_version(), m->source ? m->source : "a model");
	fprintf(fp, " *\n * int8 quantization (TFLite scheme): activations "
		"asymmetric in [-128, 127],\n * weights symmetric (zero point "
		"0), biases int32 at input scale * weight scale.\n */\n");
	fprintf(fp, "#ifndef %s_MODEL_H\n#define %s_MODEL_H\n\n", guard.upper,
		guard.upper);
	fprintf(fp, "#include <stdint.h>\n\n");
	fprintf(fp, "#define %s_N_INPUTS %zu\n", guard.upper, m->n_inputs);
	fprintf(fp, "#define %s_N_OUTPUTS %zu\n\n", guard.upper,
		m->n_outputs);
	for (size_t i = 0; i < m->n_inputs; i++)
		put_activation(fp, m->tensors[m->inputs[i]],
			       &tn[m->inputs[i]]);
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *n = m->nodes[k];

		for (size_t o = 0; o < n->n_outputs; o++)
			put_activation(fp, m->tensors[n->outputs[o]],
				       &tn[n->outputs[o]]);
		if (n->op == TM_OP_DENSE)
			put_dense(fp, m, n, &nn[k]);
		else if (n->lut)
			put_lut(fp, n, &nn[k]);
	}
	fprintf(fp, "#endif /* %s_MODEL_H */\n", guard.upper);
out:
	free(ns.v);
	free(tn);
	free(nn);
	return st;
}

static const tm_emitter_ops ch_ops = {
	.emit = ch_emit,
};

TM_PLUGIN_DEFINE(TM_PLUGIN_EMITTER, "c_header", "1.0",
		 "C header with int8 weights, int32 biases and requantizers",
		 ch_params, &ch_ops)
