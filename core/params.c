/* tmpipe — plugin parameters: schema checks and validated values.
 *
 * The plugin declares a table of tm_param_spec; this file turns the YAML
 * the user wrote into typed values, with every error at the user's line.
 * libyaml marks are 0-based; messages print them +1.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "params_priv.h"

typedef struct pvalue {
	int set;		/* written by the user */
	const char *file;	/* borrowed: lives as long as the pipeline */
	unsigned line, col;
	int b;
	int64_t i;
	double f;
	char *s;
	size_t len;		/* lists, LIST and MAP items */
	int64_t *ints;
	double *floats;
	char **strings;
	tm_params **items;
	char **keys;
} pvalue;

struct tm_params {
	const tm_param_spec *spec;
	size_t n;
	pvalue *v;
	const char *file;
	unsigned line, col;
};

static const char *const type_names[TM_PARAM_TYPE_COUNT] = {
	[TM_PARAM_BOOL] = "bool",
	[TM_PARAM_INT] = "int",
	[TM_PARAM_FLOAT] = "float",
	[TM_PARAM_STRING] = "string",
	[TM_PARAM_PATH] = "path",
	[TM_PARAM_INT_LIST] = "int list",
	[TM_PARAM_FLOAT_LIST] = "float list",
	[TM_PARAM_LIST] = "list",
	[TM_PARAM_MAP] = "map",
	[TM_PARAM_STRING_LIST] = "string list",
};

const char *
tm_param_type_name(tm_param_type t)
{
	if ((unsigned)t >= TM_PARAM_TYPE_COUNT || !type_names[t])
		return "?";
	return type_names[t];
}

/* --- YAML helpers ---------------------------------------------------- */

static int
node_index(const tm_yaml_src *src, yaml_node_t *node)
{
	return (int)(node - src->doc->nodes.start) + 1;
}

void
tm_priv_yaml_where(const tm_yaml_src *src, yaml_node_t *node,
		   const char **file, unsigned *line, unsigned *col)
{
	if (src->first_override && node &&
	    node_index(src, node) >= src->first_override) {
		*file = "--set";
		*line = 0;
		*col = 0;
		return;
	}
	*file = src->file;
	*line = node ? (unsigned)node->start_mark.line + 1 : 0;
	*col = node ? (unsigned)node->start_mark.column + 1 : 0;
}

const char *
tm_priv_yaml_basedir(const tm_yaml_src *src, yaml_node_t *node)
{
	if (src->first_override && node &&
	    node_index(src, node) >= src->first_override)
		return ".";
	return src->basedir;
}

tm_status
tm_priv_yaml_check_duplicates(const tm_yaml_src *src, tm_error *err)
{
	yaml_document_t *doc = src->doc;

	for (yaml_node_t *m = doc->nodes.start; m < doc->nodes.top; m++) {
		if (m->type != YAML_MAPPING_NODE)
			continue;
		for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
		     p < m->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			const char *ks = tm_priv_yaml_scalar(k);

			if (!ks)
				continue;
			for (yaml_node_pair_t *q = m->data.mapping.pairs.start;
			     q < p; q++) {
				yaml_node_t *k0 =
					yaml_document_get_node(doc, q->key);
				const char *k0s = tm_priv_yaml_scalar(k0);

				if (k0s && strcmp(k0s, ks) == 0)
					return tm_priv_yaml_error(
						src, k, err, TM_ERR_INVALID,
						"duplicate key '%s' (first "
						"given on line %u)", ks,
						(unsigned)k0->start_mark.line +
							1);
			}
		}
	}
	return TM_OK;
}

tm_status
tm_priv_yaml_error(const tm_yaml_src *src, yaml_node_t *node, tm_error *err,
		   tm_status code, const char *fmt, ...)
{
	const char *file;
	unsigned line, col;
	va_list ap;

	tm_priv_yaml_where(src, node, &file, &line, &col);
	va_start(ap, fmt);
	tm_error_vset_at(err, code, file, line, col, fmt, ap);
	va_end(ap);
	return code;
}

yaml_node_pair_t *
tm_priv_yaml_pair(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		const char *ks = tm_priv_yaml_scalar(
			yaml_document_get_node(doc, p->key));

		if (ks && strcmp(ks, key) == 0)
			return p;
	}
	return NULL;
}

yaml_node_t *
tm_priv_yaml_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p = tm_priv_yaml_pair(doc, map, key);

	return p ? yaml_document_get_node(doc, p->value) : NULL;
}

const char *
tm_priv_yaml_scalar(yaml_node_t *node)
{
	if (!node || node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

const char *
tm_priv_yaml_kind(yaml_node_t *node)
{
	if (!node)
		return "nothing";
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a map";
	default:
		return "nothing";
	}
}

/* --- scalar conversions ---------------------------------------------- */

static int
parse_bool(const char *s, int *b)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };

	for (size_t i = 0; i < TM_ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*b = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*b = 0;
			return 0;
		}
	}
	return -1;
}

static int
parse_int(const char *s, int64_t *v)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*v = x;
	return 0;
}

static int
parse_float(const char *s, double *v)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(x))
		return -1;
	*v = x;
	return 0;
}

static const char *
bounds_text(const tm_param_spec *sp, char *buf, size_t size)
{
	int lo = sp->flags & TM_PARAM_HAS_MIN, hi = sp->flags & TM_PARAM_HAS_MAX;

	if (lo && hi)
		snprintf(buf, size, " between %.15g and %.15g", sp->min, sp->max);
	else if (lo)
		snprintf(buf, size, " of at least %.15g", sp->min);
	else if (hi)
		snprintf(buf, size, " of at most %.15g", sp->max);
	else
		buf[0] = '\0';
	return buf;
}

static int
in_bounds(const tm_param_spec *sp, double x)
{
	if ((sp->flags & TM_PARAM_HAS_MIN) && x < sp->min)
		return 0;
	if ((sp->flags & TM_PARAM_HAS_MAX) && x > sp->max)
		return 0;
	return 1;
}

/* A message target: the YAML node, or a default's text. */
typedef struct where {
	const tm_yaml_src *src;
	yaml_node_t *node;
	const char *what;
} where;

static tm_status
where_error(const where *w, tm_error *err, tm_status code, const char *fmt,
	    ...) __attribute__((format(printf, 4, 5)));

static tm_status
where_error(const where *w, tm_error *err, tm_status code, const char *fmt,
	    ...)
{
	char msg[TM_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!w->src)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "%s: bad default: %s", w->what, msg);
	return tm_priv_yaml_error(w->src, w->node, err, code, "%s", msg);
}

static tm_status
convert_scalar(const tm_param_spec *sp, const char *s, const where *w,
	       pvalue *pv, tm_error *err)
{
	char b[96];

	switch (sp->type) {
	case TM_PARAM_BOOL:
		if (parse_bool(s, &pv->b))
			return where_error(w, err, TM_ERR_INVALID,
					   "%s: '%s' is not a boolean "
					   "(true or false)", sp->name, s);
		return TM_OK;
	case TM_PARAM_INT:
		if (parse_int(s, &pv->i) || !in_bounds(sp, (double)pv->i))
			return where_error(w, err, TM_ERR_INVALID,
					   "%s: '%s' is not an integer%s",
					   sp->name, s,
					   bounds_text(sp, b, sizeof b));
		return TM_OK;
	case TM_PARAM_FLOAT:
		if (parse_float(s, &pv->f) || !in_bounds(sp, pv->f))
			return where_error(w, err, TM_ERR_INVALID,
					   "%s: '%s' is not a number%s",
					   sp->name, s,
					   bounds_text(sp, b, sizeof b));
		return TM_OK;
	case TM_PARAM_STRING:
		if (sp->choices) {
			const char *const *c;
			char list[512];
			size_t len = 0, n = 0;
			const char *sugg;

			for (c = sp->choices; *c; c++, n++)
				if (strcmp(*c, s) == 0)
					break;
			if (*c == NULL) {
				list[0] = '\0';
				for (c = sp->choices; *c && len < sizeof list;
				     c++)
					len += (size_t)snprintf(list + len,
						sizeof list - len, "%s%s",
						c == sp->choices ? "" : ", ",
						*c);
				sugg = tm_priv_suggest(s, sp->choices, n);
				if (sugg)
					return where_error(w, err,
						TM_ERR_INVALID,
						"%s: '%s' is not one of %s; "
						"did you mean '%s'?",
						sp->name, s, list, sugg);
				return where_error(w, err, TM_ERR_INVALID,
						   "%s: '%s' is not one of %s",
						   sp->name, s, list);
			}
		}
		pv->s = tm_priv_strdup(s, err);
		return pv->s ? TM_OK : TM_ERR_NOMEM;
	case TM_PARAM_PATH:
		if (!*s)
			return where_error(w, err, TM_ERR_INVALID,
					   "%s: empty path", sp->name);
		pv->s = tm_priv_path_resolve(
			w->src ? tm_priv_yaml_basedir(w->src, w->node) : ".", s,
			err);
		return pv->s ? TM_OK : TM_ERR_NOMEM;
	default:
		return where_error(w, err, TM_ERR_INVALID,
				   "%s: expected %s %s, got a scalar '%s'",
				   sp->name,
				   tm_priv_article(tm_param_type_name(sp->type)),
				   tm_param_type_name(sp->type),
				   s);
	}
}

static tm_status convert_node(const tm_param_spec *sp, const tm_yaml_src *src,
			      yaml_node_t *node, const char *what, pvalue *pv,
			      tm_error *err);
static tm_status build(const tm_param_spec *spec, const tm_yaml_src *src,
		       yaml_node_t *map, const char *const *skip,
		       const char *what, tm_params **out, tm_error *err);

static tm_status
convert_list(const tm_param_spec *sp, const tm_yaml_src *src,
	     yaml_node_t *node, const char *what, pvalue *pv, tm_error *err)
{
	where w = { src, node, what };
	yaml_node_item_t *it;
	size_t n, k = 0;
	char b[96];

	if (node->type != YAML_SEQUENCE_NODE)
		return where_error(&w, err, TM_ERR_INVALID,
				   "%s: expected %s %s, got %s", sp->name,
				   tm_priv_article(tm_param_type_name(sp->type)),
				   tm_param_type_name(sp->type),
				   tm_priv_yaml_kind(node));
	n = (size_t)(node->data.sequence.items.top -
		     node->data.sequence.items.start);
	pv->len = n;
	if (sp->type == TM_PARAM_INT_LIST)
		pv->ints = calloc(n ? n : 1, sizeof *pv->ints);
	else if (sp->type == TM_PARAM_FLOAT_LIST)
		pv->floats = calloc(n ? n : 1, sizeof *pv->floats);
	else if (sp->type == TM_PARAM_STRING_LIST)
		pv->strings = calloc(n + 1, sizeof *pv->strings);
	else
		pv->items = calloc(n ? n : 1, sizeof *pv->items);
	if (!pv->ints && !pv->floats && !pv->items && !pv->strings)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++, k++) {
		yaml_node_t *e = yaml_document_get_node(src->doc, *it);
		const char *s = tm_priv_yaml_scalar(e);
		where we = { src, e, what };

		if (sp->type == TM_PARAM_LIST) {
			char itemwhat[256];
			tm_status st;

			if (!e || e->type != YAML_MAPPING_NODE)
				return where_error(&we, err, TM_ERR_INVALID,
						   "%s[%zu]: expected a map, "
						   "got %s", sp->name, k,
						   tm_priv_yaml_kind(e));
			snprintf(itemwhat, sizeof itemwhat, "%s[%zu]",
				 sp->name, k);
			st = build(sp->fields, src, e, NULL, itemwhat,
				   &pv->items[k], err);
			if (st)
				return st;
			continue;
		}
		if (!s)
			return where_error(&we, err, TM_ERR_INVALID,
					   "%s[%zu]: expected a %s, got %s",
					   sp->name, k,
					   sp->type == TM_PARAM_STRING_LIST
						   ? "name"
						   : "number",
					   tm_priv_yaml_kind(e));
		if (sp->type == TM_PARAM_STRING_LIST) {
			pv->strings[k] = tm_priv_strdup(s, err);
			if (!pv->strings[k])
				return TM_ERR_NOMEM;
		} else if (sp->type == TM_PARAM_INT_LIST) {
			if (parse_int(s, &pv->ints[k]) ||
			    !in_bounds(sp, (double)pv->ints[k]))
				return where_error(&we, err, TM_ERR_INVALID,
						   "%s[%zu]: '%s' is not an "
						   "integer%s", sp->name, k, s,
						   bounds_text(sp, b,
							       sizeof b));
		} else if (parse_float(s, &pv->floats[k]) ||
			   !in_bounds(sp, pv->floats[k])) {
			return where_error(&we, err, TM_ERR_INVALID,
					   "%s[%zu]: '%s' is not a number%s",
					   sp->name, k, s,
					   bounds_text(sp, b, sizeof b));
		}
	}
	return TM_OK;
}

static tm_status
convert_map(const tm_param_spec *sp, const tm_yaml_src *src,
	    yaml_node_t *node, const char *what, pvalue *pv, tm_error *err)
{
	where w = { src, node, what };
	yaml_node_pair_t *p;
	size_t n, k = 0;

	(void)what;
	if (node->type != YAML_MAPPING_NODE)
		return where_error(&w, err, TM_ERR_INVALID,
				   "%s: expected a map, got %s", sp->name,
				   tm_priv_yaml_kind(node));
	n = (size_t)(node->data.mapping.pairs.top -
		     node->data.mapping.pairs.start);
	pv->items = calloc(n ? n : 1, sizeof *pv->items);
	pv->keys = calloc(n ? n : 1, sizeof *pv->keys);
	if (!pv->items || !pv->keys)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	pv->len = n;
	for (p = node->data.mapping.pairs.start;
	     p < node->data.mapping.pairs.top; p++, k++) {
		yaml_node_t *kn = yaml_document_get_node(src->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(src->doc, p->value);
		const char *ks = tm_priv_yaml_scalar(kn);
		tm_params *item;
		pvalue *iv;
		char itemwhat[256];
		tm_status st;

		if (!ks) {
			where wk = { src, kn, what };

			return where_error(&wk, err, TM_ERR_INVALID,
					   "%s: keys must be names, not %s",
					   sp->name, tm_priv_yaml_kind(kn));
		}
		pv->keys[k] = tm_priv_strdup(ks, err);
		if (!pv->keys[k])
			return TM_ERR_NOMEM;
		/* The value is one parameter typed by fields[0], named as
		 * fields[0] so the plugin reads it by that name. */
		item = calloc(1, sizeof *item);
		if (!item)
			return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		pv->items[k] = item;
		item->spec = sp->fields;
		item->n = 1;
		item->v = calloc(1, sizeof *item->v);
		if (!item->v)
			return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		tm_priv_yaml_where(src, kn, &item->file, &item->line,
				   &item->col);
		iv = &item->v[0];
		iv->set = 1;
		tm_priv_yaml_where(src, vn, &iv->file, &iv->line, &iv->col);
		snprintf(itemwhat, sizeof itemwhat, "%s.%s", sp->name, ks);
		{
			/* The value is checked like a parameter named
			 * "<map>.<key>", so messages keep their context. */
			tm_param_spec one = sp->fields[0];

			one.name = itemwhat;
			st = convert_node(&one, src, vn, itemwhat, iv, err);
		}
		if (st)
			return st;
	}
	return TM_OK;
}

static tm_status
convert_node(const tm_param_spec *sp, const tm_yaml_src *src,
	     yaml_node_t *node, const char *what, pvalue *pv, tm_error *err)
{
	where w = { src, node, what };
	const char *s;

	switch (sp->type) {
	case TM_PARAM_STRING_LIST:
		s = tm_priv_yaml_scalar(node);
		if (s) {
			/* A single name is a list of one. */
			pv->strings = calloc(2, sizeof *pv->strings);
			if (!pv->strings)
				return tm_error_set(err, TM_ERR_NOMEM,
						    "out of memory");
			pv->strings[0] = tm_priv_strdup(s, err);
			pv->len = 1;
			return pv->strings[0] ? TM_OK : TM_ERR_NOMEM;
		}
		return convert_list(sp, src, node, what, pv, err);
	case TM_PARAM_INT_LIST:
	case TM_PARAM_FLOAT_LIST:
	case TM_PARAM_LIST:
		return convert_list(sp, src, node, what, pv, err);
	case TM_PARAM_MAP:
		return convert_map(sp, src, node, what, pv, err);
	default:
		s = tm_priv_yaml_scalar(node);
		if (!s)
			return where_error(&w, err, TM_ERR_INVALID,
					   "%s: expected %s %s, got %s",
					   sp->name,
					   tm_priv_article(
						   tm_param_type_name(sp->type)),
					   tm_param_type_name(sp->type),
					   tm_priv_yaml_kind(node));
		return convert_scalar(sp, s, &w, pv, err);
	}
}

static void
pvalue_fini(pvalue *pv)
{
	free(pv->s);
	free(pv->ints);
	free(pv->floats);
	for (size_t k = 0; pv->strings && k < pv->len; k++)
		free(pv->strings[k]);
	free(pv->strings);
	for (size_t k = 0; k < pv->len; k++) {
		if (pv->items)
			tm_priv_params_free(pv->items[k]);
		if (pv->keys)
			free(pv->keys[k]);
	}
	free(pv->items);
	free(pv->keys);
}

void
tm_priv_params_free(tm_params *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		pvalue_fini(&p->v[i]);
	free(p->v);
	free(p);
}

static size_t
spec_len(const tm_param_spec *spec)
{
	size_t n = 0;

	while (spec && spec[n].name)
		n++;
	return n;
}

static int
skipped(const char *key, const char *const *skip)
{
	for (; skip && *skip; skip++)
		if (strcmp(*skip, key) == 0)
			return 1;
	return 0;
}

static tm_status
unknown_key(const tm_param_spec *spec, const tm_yaml_src *src,
	    yaml_node_t *kn, const char *key, const char *what, tm_error *err)
{
	const char *names[64];
	char list[768];
	size_t n = 0, len = 0;
	const char *sugg;

	list[0] = '\0';
	for (; spec && spec->name && n < TM_ARRAY_LEN(names); spec++) {
		names[n++] = spec->name;
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
					n > 1 ? ", " : "", spec->name);
		if (len >= sizeof list)
			break;
	}
	if (n == 0)
		return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
					  "unknown key '%s': %s takes no "
					  "parameters", key, what);
	sugg = tm_priv_suggest(key, names, n);
	if (sugg)
		return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
					  "unknown key '%s' for %s; did you "
					  "mean '%s'? (valid: %s)", key, what,
					  sugg, list);
	return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
				  "unknown key '%s' for %s (valid: %s)", key,
				  what, list);
}

/* Defaults are the plugin's text; a PATH default resolves against the
 * pipeline's folder like a value the user wrote. */
static tm_status
set_default(const tm_param_spec *sp, const tm_yaml_src *src,
	    const char *what, pvalue *pv, tm_error *err)
{
	where w = { NULL, NULL, what };

	if (!sp->def)
		return TM_OK;
	switch (sp->type) {
	case TM_PARAM_BOOL:
	case TM_PARAM_INT:
	case TM_PARAM_FLOAT:
	case TM_PARAM_STRING:
		return convert_scalar(sp, sp->def, &w, pv, err);
	case TM_PARAM_PATH:
		pv->s = src ? tm_priv_path_resolve(src->basedir, sp->def, err)
			    : tm_priv_strdup(sp->def, err);
		return pv->s ? TM_OK : TM_ERR_NOMEM;
	default:
		/* Lists and maps have no default: empty. */
		return TM_OK;
	}
}

static tm_status
build(const tm_param_spec *spec, const tm_yaml_src *src, yaml_node_t *map,
      const char *const *skip, const char *what, tm_params **out,
      tm_error *err)
{
	tm_params *p;
	tm_status st;
	size_t n = spec_len(spec);

	*out = NULL;
	p = calloc(1, sizeof *p);
	if (!p)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	p->spec = spec;
	p->n = n;
	p->v = calloc(n ? n : 1, sizeof *p->v);
	if (!p->v) {
		free(p);
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	}
	if (src && map)
		tm_priv_yaml_where(src, map, &p->file, &p->line, &p->col);

	if (map && map->type != YAML_MAPPING_NODE) {
		st = tm_priv_yaml_error(src, map, err, TM_ERR_INVALID,
					"%s: expected a map of parameters, "
					"got %s", what, tm_priv_yaml_kind(map));
		goto fail;
	}
	if (map) {
		yaml_node_pair_t *pr;

		for (pr = map->data.mapping.pairs.start;
		     pr < map->data.mapping.pairs.top; pr++) {
			yaml_node_t *kn = yaml_document_get_node(src->doc,
								 pr->key);
			yaml_node_t *vn = yaml_document_get_node(src->doc,
								 pr->value);
			const char *key = tm_priv_yaml_scalar(kn);
			size_t i;

			if (!key) {
				st = tm_priv_yaml_error(src, kn, err,
							TM_ERR_INVALID,
							"%s: keys must be "
							"names, not %s", what,
							tm_priv_yaml_kind(kn));
				goto fail;
			}
			if (skipped(key, skip))
				continue;
			for (i = 0; i < n; i++)
				if (strcmp(spec[i].name, key) == 0)
					break;
			if (i == n) {
				st = unknown_key(spec, src, kn, key, what,
						 err);
				goto fail;
			}
			if (p->v[i].set) {
				st = tm_priv_yaml_error(src, kn, err,
							TM_ERR_INVALID,
							"%s: '%s' is given "
							"twice", what, key);
				goto fail;
			}
			p->v[i].set = 1;
			tm_priv_yaml_where(src, kn, &p->v[i].file,
					   &p->v[i].line, &p->v[i].col);
			st = convert_node(&spec[i], src, vn, what, &p->v[i],
					  err);
			if (st)
				goto fail;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (p->v[i].set)
			continue;
		if (spec[i].flags & TM_PARAM_REQUIRED) {
			if (src && map)
				st = tm_priv_yaml_error(src, map, err,
							TM_ERR_INVALID,
							"%s: missing required "
							"key '%s'", what,
							spec[i].name);
			else
				st = tm_error_set(err, TM_ERR_INVALID,
						  "%s: missing required key "
						  "'%s'", what, spec[i].name);
			goto fail;
		}
		st = set_default(&spec[i], src, what, &p->v[i], err);
		if (st)
			goto fail;
	}
	*out = p;
	return TM_OK;
fail:
	tm_priv_params_free(p);
	return st;
}

tm_status
tm_priv_params_from_yaml(const tm_param_spec *spec, const tm_yaml_src *src,
			 yaml_node_t *map, const char *const *skip,
			 const char *what, tm_params **out, tm_error *err)
{
	return build(spec, src, map, skip, what, out, err);
}

tm_status
tm_priv_params_defaults(const tm_param_spec *spec, const char *what,
			tm_params **out, tm_error *err)
{
	return build(spec, NULL, NULL, NULL, what, out, err);
}

tm_status
tm_priv_params_check_spec(const tm_param_spec *spec, tm_error *err)
{
	for (; spec && spec->name; spec++) {
		pvalue pv;
		tm_status st;

		if ((unsigned)spec->type == 0 ||
		    (unsigned)spec->type >= TM_PARAM_TYPE_COUNT)
			return tm_error_set(err, TM_ERR_INVALID,
					    "parameter '%s' has unknown type "
					    "%d", spec->name, (int)spec->type);
		if ((spec->type == TM_PARAM_LIST ||
		     spec->type == TM_PARAM_MAP) &&
		    (!spec->fields || !spec->fields[0].name))
			return tm_error_set(err, TM_ERR_INVALID,
					    "parameter '%s' is a %s without "
					    "fields", spec->name,
					    tm_param_type_name(spec->type));
		if (spec->type == TM_PARAM_LIST || spec->type == TM_PARAM_MAP) {
			st = tm_priv_params_check_spec(spec->fields, err);
			if (st)
				return st;
		}
		memset(&pv, 0, sizeof pv);
		st = set_default(spec, NULL, spec->name, &pv, err);
		pvalue_fini(&pv);
		if (st)
			return st;
	}
	return TM_OK;
}

/* --- accessors -------------------------------------------------------- */

static const pvalue *
lookup(const tm_params *p, const char *name, tm_param_type t1,
       tm_param_type t2)
{
	if (!p || !name)
		return NULL;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->spec[i].name, name) == 0)
			return (p->spec[i].type == t1 || p->spec[i].type == t2)
				       ? &p->v[i]
				       : NULL;
	/* A MAP item holds one value under fields[0]'s name. */
	return NULL;
}

int
tm_params_get_bool(const tm_params *p, const char *name)
{
	const pvalue *v = lookup(p, name, TM_PARAM_BOOL, TM_PARAM_BOOL);

	return v ? v->b : 0;
}

int64_t
tm_params_get_int(const tm_params *p, const char *name)
{
	const pvalue *v = lookup(p, name, TM_PARAM_INT, TM_PARAM_INT);

	return v ? v->i : 0;
}

double
tm_params_get_float(const tm_params *p, const char *name)
{
	const pvalue *v = lookup(p, name, TM_PARAM_FLOAT, TM_PARAM_FLOAT);

	return v ? v->f : 0.0;
}

const char *
tm_params_get_string(const tm_params *p, const char *name)
{
	const pvalue *v = lookup(p, name, TM_PARAM_STRING, TM_PARAM_PATH);

	return v ? v->s : NULL;
}

int
tm_params_is_set(const tm_params *p, const char *name)
{
	if (!p || !name)
		return 0;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->spec[i].name, name) == 0)
			return p->v[i].set;
	return 0;
}

static const pvalue *
lookup_any(const tm_params *p, const char *name)
{
	if (!p || !name)
		return NULL;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->spec[i].name, name) == 0)
			return &p->v[i];
	return NULL;
}

size_t
tm_params_list_len(const tm_params *p, const char *name)
{
	const pvalue *v = lookup_any(p, name);

	return v ? v->len : 0;
}

const int64_t *
tm_params_get_ints(const tm_params *p, const char *name)
{
	const pvalue *v = lookup(p, name, TM_PARAM_INT_LIST, TM_PARAM_INT_LIST);

	return v ? v->ints : NULL;
}

const char *const *
tm_params_get_strings(const tm_params *p, const char *name)
{
	const pvalue *v = lookup(p, name, TM_PARAM_STRING_LIST,
				 TM_PARAM_STRING_LIST);

	return v ? (const char *const *)v->strings : NULL;
}

const double *
tm_params_get_floats(const tm_params *p, const char *name)
{
	const pvalue *v = lookup(p, name, TM_PARAM_FLOAT_LIST,
				 TM_PARAM_FLOAT_LIST);

	return v ? v->floats : NULL;
}

const tm_params *
tm_params_item(const tm_params *p, const char *name, size_t i)
{
	const pvalue *v = lookup(p, name, TM_PARAM_LIST, TM_PARAM_MAP);

	return v && i < v->len ? v->items[i] : NULL;
}

const char *
tm_params_key(const tm_params *p, const char *name, size_t i)
{
	const pvalue *v = lookup(p, name, TM_PARAM_MAP, TM_PARAM_MAP);

	return v && v->keys && i < v->len ? v->keys[i] : NULL;
}

int
tm_params_where(const tm_params *p, const char *name, const char **file,
		unsigned *line, unsigned *col)
{
	const char *f;
	unsigned l, c;

	if (!p)
		return 0;
	if (name) {
		const pvalue *v = lookup_any(p, name);

		if (!v || !v->set || !v->file)
			return 0;
		f = v->file;
		l = v->line;
		c = v->col;
	} else {
		if (!p->file)
			return 0;
		f = p->file;
		l = p->line;
		c = p->col;
	}
	if (file)
		*file = f;
	if (line)
		*line = l;
	if (col)
		*col = c;
	return 1;
}

tm_status
tm_params_error(const tm_params *p, const char *name, tm_error *err,
		tm_status code, const char *fmt, ...)
{
	const char *file = NULL;
	unsigned line = 0, col = 0;
	va_list ap;

	if (!tm_params_where(p, name, &file, &line, &col))
		tm_params_where(p, NULL, &file, &line, &col);
	va_start(ap, fmt);
	tm_error_vset_at(err, code, file, line, col, fmt, ap);
	va_end(ap);
	return code;
}
