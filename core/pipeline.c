/* tmpipe — pipeline files (libyaml).
 *
 * The whole file is loaded as a libyaml document, --set overrides are
 * grafted onto it, then every section is checked and every plugin's
 * parameters validated against its schema. Nothing runs until all of it
 * is right, and every error points at the user's line and column.
 */
#include "config.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "params_priv.h"
#include "pipeline_priv.h"
#include "transform_priv.h"

#define DEFAULT_OBSERVER "minmax"
#define DEFAULT_BATCH 64

static const char *const top_keys[] = {
	"tmpipe", "model", "transforms", "calibration", "quantize", "verify",
	"emit",
};
static const char *const calib_keys[] = {
	"data", "observer", "batch", "tensors", "ops", "preprocess",
};
static const char *const preprocess_keys[] = { "scale", "mean", "std" };
static const char *const verify_keys[] = { "data", "tolerance", "batch",
					    "labels",
					    "max_accuracy_drop",
					    "reference" };

/* --- small YAML utilities ------------------------------------------- */

static tm_status
check_keys(const tm_yaml_src *src, yaml_node_t *map, const char *section,
	   const char *const *keys, size_t n, tm_error *err)
{
	yaml_node_pair_t *p;

	for (p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(src->doc, p->key);
		const char *k = tm_priv_yaml_scalar(kn);
		char list[256];
		size_t len = 0, i;
		const char *sugg;

		if (!k)
			return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						  "%s: keys must be names, "
						  "not %s", section,
						  tm_priv_yaml_kind(kn));
		for (i = 0; i < n; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		/* Duplicates were refused for the whole document. */
		if (i < n)
			continue;
		list[0] = '\0';
		for (i = 0; i < n && len < sizeof list; i++)
			len += (size_t)snprintf(list + len, sizeof list - len,
						"%s%s", i ? ", " : "", keys[i]);
		sugg = tm_priv_suggest(k, keys, n);
		if (sugg)
			return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						  "unknown key '%s' in %s; did "
						  "you mean '%s'? (valid: %s)",
						  k, section, sugg, list);
		return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
					  "unknown key '%s' in %s (valid: %s)",
					  k, section, list);
	}
	return TM_OK;
}

/* The key node of a mapping's pair for key (for positions). */
static yaml_node_t *
key_node(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p = tm_priv_yaml_pair(doc, map, key);

	return p ? yaml_document_get_node(doc, p->key) : NULL;
}

/* --- --set overrides -------------------------------------------------- */

/* Nodes are addressed by index: adding a node may move them all. */
static int
map_get_pair(yaml_document_t *doc, int map, const char *key)
{
	yaml_node_t *m = yaml_document_get_node(doc, map);
	int i = 0;

	for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
	     p < m->data.mapping.pairs.top; p++, i++) {
		const char *ks = tm_priv_yaml_scalar(
			yaml_document_get_node(doc, p->key));

		if (ks && strcmp(ks, key) == 0)
			return i;
	}
	return -1;
}

static int
add_scalar(yaml_document_t *doc, const char *s)
{
	return yaml_document_add_scalar(doc, NULL, (yaml_char_t *)s, -1,
					YAML_PLAIN_SCALAR_STYLE);
}

/* Finds or creates the child mapping for key in mapping map. */
static int
map_child_map(yaml_document_t *doc, int map, const char *key)
{
	int i = map_get_pair(doc, map, key);
	yaml_node_t *m, *v;
	int k, nv;

	if (i >= 0) {
		m = yaml_document_get_node(doc, map);
		v = yaml_document_get_node(doc,
					   m->data.mapping.pairs.start[i].value);
		if (v->type == YAML_MAPPING_NODE)
			return m->data.mapping.pairs.start[i].value;
		/* A scalar or an empty value becomes a map. */
		nv = yaml_document_add_mapping(doc, NULL,
					       YAML_BLOCK_MAPPING_STYLE);
		if (!nv)
			return 0;
		m = yaml_document_get_node(doc, map);
		m->data.mapping.pairs.start[i].value = nv;
		return nv;
	}
	k = add_scalar(doc, key);
	nv = yaml_document_add_mapping(doc, NULL, YAML_BLOCK_MAPPING_STYLE);
	if (!k || !nv || !yaml_document_append_mapping_pair(doc, map, k, nv))
		return 0;
	return nv;
}

/* In a list of stages (scalars "name" or maps {name: {...}}), the
 * parameter map of the stage called name (the first one, or the one at
 * index only when only >= 0), converting a bare scalar. -1: none. */
static int
seq_stage_map(yaml_document_t *doc, int seq, const char *name, long only)
{
	yaml_node_t *s = yaml_document_get_node(doc, seq);
	size_t n = (size_t)(s->data.sequence.items.top -
			    s->data.sequence.items.start);

	for (size_t i = 0; i < n; i++) {
		if (only >= 0 && (size_t)only != i)
			continue;
		int item;
		yaml_node_t *it;
		const char *txt;

		s = yaml_document_get_node(doc, seq);
		item = s->data.sequence.items.start[i];
		it = yaml_document_get_node(doc, item);
		txt = tm_priv_yaml_scalar(it);
		if (txt && strcmp(txt, name) == 0) {
			int nm = yaml_document_add_mapping(
				doc, NULL, YAML_BLOCK_MAPPING_STYLE);

			if (!nm)
				return 0;
			s = yaml_document_get_node(doc, seq);
			s->data.sequence.items.start[i] = nm;
			return map_child_map(doc, nm, name);
		}
		if (it->type == YAML_MAPPING_NODE &&
		    map_get_pair(doc, item, name) >= 0)
			return map_child_map(doc, item, name);
	}
	return -1;
}

static tm_status
apply_override(yaml_document_t *doc, const char *ov, tm_error *err)
{
	char *copy, *eq, *seg, *save = NULL, *next;
	int cur = 1;		/* the root */
	tm_status st = TM_OK;

	copy = tm_priv_strdup(ov, err);
	if (!copy)
		return TM_ERR_NOMEM;
	eq = strchr(copy, '=');
	if (!eq || eq == copy) {
		st = tm_error_set(err, TM_ERR_INVALID,
				  "--set %s: expected section.key=value "
				  "(e.g. calibration.data=calib.npy)", ov);
		goto out;
	}
	*eq = '\0';
	seg = strtok_r(copy, ".", &save);
	if (!seg) {
		st = tm_error_set(err, TM_ERR_INVALID,
				  "--set %s: expected section.key=value "
				  "(e.g. calibration.data=calib.npy)", ov);
		goto out;
	}
	while (seg) {
		yaml_node_t *node = yaml_document_get_node(doc, cur);

		next = strtok_r(NULL, ".", &save);
		if (!next) {
			/* Last segment: set (or replace) key = value. */
			int i = node->type == YAML_MAPPING_NODE
					? map_get_pair(doc, cur, seg)
					: -2;
			int v = add_scalar(doc, eq + 1);

			if (i == -2) {
				st = tm_error_set(err, TM_ERR_INVALID,
						  "--set %s: '%s' is not "
						  "inside a map", ov, seg);
				goto out;
			}
			if (!v) {
				st = tm_error_set(err, TM_ERR_NOMEM,
						  "out of memory");
				goto out;
			}
			if (i >= 0) {
				node = yaml_document_get_node(doc, cur);
				node->data.mapping.pairs.start[i].value = v;
			} else {
				int k = add_scalar(doc, seg);

				if (!k || !yaml_document_append_mapping_pair(
						  doc, cur, k, v)) {
					st = tm_error_set(err, TM_ERR_NOMEM,
							  "out of memory");
					goto out;
				}
			}
			break;
		}
		if (node->type == YAML_MAPPING_NODE) {
			int i = map_get_pair(doc, cur, seg);
			yaml_node_t *v = NULL;

			if (i >= 0)
				v = yaml_document_get_node(
					doc,
					node->data.mapping.pairs.start[i].value);
			if (v && v->type == YAML_SEQUENCE_NODE)
				cur = node->data.mapping.pairs.start[i].value;
			else
				cur = map_child_map(doc, cur, seg);
		} else if (node->type == YAML_SEQUENCE_NODE) {
			/* emit.c_header.path: the first c_header;
			 * emit.1.c_header.path: the second stage, which
			 * must be a c_header. */
			char *end;
			long idx = strtol(seg, &end, 10);

			if (*end || end == seg || idx < 0) {
				idx = -1;
			} else {
				seg = next;
				next = strtok_r(NULL, ".", &save);
				if (!next) {
					st = tm_error_set(err, TM_ERR_INVALID,
							  "--set %s: after "
							  "the index, name "
							  "the stage and the "
							  "parameter (e.g. "
							  "emit.1.c_header."
							  "path=a.h)", ov);
					goto out;
				}
			}
			cur = seq_stage_map(doc, cur, seg, idx);
			if (cur < 0) {
				st = tm_error_set(err, TM_ERR_NOT_FOUND,
						  "--set %s: no stage '%s' in "
						  "that list", ov, seg);
				goto out;
			}
		} else {
			st = tm_error_set(err, TM_ERR_INVALID,
					  "--set %s: '%s' is not a section",
					  ov, seg);
			goto out;
		}
		if (!cur) {
			st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
			goto out;
		}
		seg = next;
	}
out:
	free(copy);
	return st;
}

/* --- sections --------------------------------------------------------- */

static void
stage_fini(tm_stage *s)
{
	free(s->label);
	tm_priv_params_free(s->params);
	memset(s, 0, sizeof *s);
}

/* Resolves plugin name (written at name_node) of kind and validates
 * params_map against its schema; skip lists keys the caller handles. */
static tm_status
make_stage(const tm_yaml_src *src, const tm_registry *reg,
	   tm_plugin_kind kind, const char *name, yaml_node_t *name_node,
	   yaml_node_t *params_map, const char *const *skip, tm_stage *st,
	   tm_error *err)
{
	tm_error ferr;
	tm_status rc;
	const char *file;

	memset(st, 0, sizeof *st);
	tm_priv_yaml_where(src, name_node, &file, &st->line, &st->col);
	tm_error_clear(&ferr);
	rc = tm_registry_find(reg, name, kind, &st->plugin, &ferr);
	if (rc) {
		/* Point at the user's line; a broken plugin's own file
		 * goes into the message. */
		if (ferr.file[0])
			return tm_priv_yaml_error(src, name_node, err, rc,
						  "%s: %s", ferr.file,
						  ferr.msg);
		return tm_priv_yaml_error(src, name_node, err, rc, "%s",
					  ferr.msg);
	}
	st->label = tm_priv_asprintf(err, "%s '%s'", tm_plugin_kind_name(kind),
				     name);
	if (!st->label)
		return TM_ERR_NOMEM;
	rc = tm_priv_params_from_yaml(st->plugin->desc->params, src,
				      params_map, skip, st->label, &st->params,
				      err);
	/* With no parameter map ("- c_header"), point at the name. */
	if (rc && err && !err->file[0]) {
		tm_priv_yaml_where(src, name_node, &file, &err->line,
				   &err->col);
		snprintf(err->file, sizeof err->file, "%s", file);
	}
	return rc;
}

static tm_status
parse_model(const tm_yaml_src *src, const tm_registry *reg,
	    yaml_node_t *root, tm_pipeline *pl, tm_error *err)
{
	static const char *const skip[] = { "frontend", NULL };
	yaml_node_t *model = tm_priv_yaml_get(src->doc, root, "model");
	yaml_node_t *fe;
	const char *name;

	if (!model)
		return tm_priv_yaml_error(src, root, err, TM_ERR_INVALID,
					  "missing 'model:' section (which "
					  "frontend reads the network, and "
					  "from where)");
	if (model->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, model, err, TM_ERR_INVALID,
					  "model: expected a map, got %s",
					  tm_priv_yaml_kind(model));
	fe = tm_priv_yaml_get(src->doc, model, "frontend");
	name = tm_priv_yaml_scalar(fe);
	if (!fe)
		return tm_priv_yaml_error(src, model, err, TM_ERR_INVALID,
					  "model: missing 'frontend:' (e.g. "
					  "frontend: npy)");
	if (!name)
		return tm_priv_yaml_error(src, fe, err, TM_ERR_INVALID,
					  "model.frontend: expected a plugin "
					  "name, got %s",
					  tm_priv_yaml_kind(fe));
	return make_stage(src, reg, TM_PLUGIN_FRONTEND, name, fe, model, skip,
			  &pl->frontend, err);
}

/* A list of stages: each item "name" or {name: {params}} / {name: null}. */
static tm_status
parse_stage_list(const tm_yaml_src *src, const tm_registry *reg,
		 yaml_node_t *root, const char *key, tm_plugin_kind kind,
		 tm_stage **out, size_t *n_out, tm_error *err)
{
	yaml_node_t *seq = tm_priv_yaml_get(src->doc, root, key);
	yaml_node_item_t *it;
	size_t n;
	tm_stage *v;
	tm_status st;

	*out = NULL;
	*n_out = 0;
	if (!seq)
		return TM_OK;
	if (seq->type == YAML_SCALAR_NODE &&
	    !*tm_priv_yaml_scalar(seq))
		return TM_OK;	/* "emit:" with nothing after it */
	if (seq->type != YAML_SEQUENCE_NODE)
		return tm_priv_yaml_error(src, seq, err, TM_ERR_INVALID,
					  "%s: expected a list of %s stages, "
					  "got %s", key,
					  tm_plugin_kind_name(kind),
					  tm_priv_yaml_kind(seq));
	n = (size_t)(seq->data.sequence.items.top -
		     seq->data.sequence.items.start);
	v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	*out = v;
	for (it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		yaml_node_t *item = yaml_document_get_node(src->doc, *it);
		const char *name = tm_priv_yaml_scalar(item);
		yaml_node_t *name_node = item, *params = NULL;

		if (!name && item->type == YAML_MAPPING_NODE &&
		    item->data.mapping.pairs.top -
				    item->data.mapping.pairs.start == 1) {
			yaml_node_pair_t *p = item->data.mapping.pairs.start;

			name_node = yaml_document_get_node(src->doc, p->key);
			name = tm_priv_yaml_scalar(name_node);
			params = yaml_document_get_node(src->doc, p->value);
			/* {name: } and {name: null} mean no parameters. */
			if (params && params->type == YAML_SCALAR_NODE &&
			    (!*tm_priv_yaml_scalar(params) ||
			     strcmp(tm_priv_yaml_scalar(params), "null") == 0 ||
			     strcmp(tm_priv_yaml_scalar(params), "~") == 0))
				params = NULL;
		}
		if (!name)
			return tm_priv_yaml_error(src, item, err,
						  TM_ERR_INVALID,
						  "%s[%zu]: expected %s %s name "
						  "or 'name: {parameters}'",
						  key, *n_out,
						  tm_priv_article(
							  tm_plugin_kind_name(
								  kind)),
						  tm_plugin_kind_name(kind));
		/* Counted even when it fails: its label is freed with the
		 * pipeline's other stages. */
		st = make_stage(src, reg, kind, name, name_node, params, NULL,
				&v[(*n_out)++], err);
		if (st)
			return st;
	}
	return TM_OK;
}

/* "observer: minmax" or "observer: {name: percentile, hi: 99.9}" inside
 * map (calibration, or one entry of calibration.tensors); skip lists the
 * keys of map that are not observer parameters. */
static tm_status
parse_observer(const tm_yaml_src *src, const tm_registry *reg,
	       yaml_node_t *map, const char *const *skip, const char *dflt,
	       tm_stage *out, tm_error *err)
{
	static const char *const skip_name[] = { "name", NULL };
	yaml_node_t *on = tm_priv_yaml_get(src->doc, map, "observer");
	const char *name = tm_priv_yaml_scalar(on);

	if (!on) {
		/* The default observer; params from the same map. */
		return make_stage(src, reg, TM_PLUGIN_OBSERVER, dflt, map, map,
				  skip, out, err);
	}
	if (name)
		return make_stage(src, reg, TM_PLUGIN_OBSERVER, name, on, map,
				  skip, out, err);
	if (on->type == YAML_MAPPING_NODE) {
		yaml_node_t *nn = tm_priv_yaml_get(src->doc, on, "name");
		tm_status st;

		/* The parameters are inside observer: {...}; nothing else
		 * may sit beside it. */
		for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
		     p < map->data.mapping.pairs.top; p++) {
			yaml_node_t *kn = yaml_document_get_node(src->doc,
								 p->key);
			const char *k = tm_priv_yaml_scalar(kn);
			int known = k && strcmp(k, "observer") == 0;

			for (const char *const *sk = skip; k && sk && *sk;
			     sk++)
				known |= strcmp(*sk, k) == 0;
			if (!known) {
				st = tm_priv_yaml_error(
					src, kn, err, TM_ERR_INVALID,
					"unknown key '%s' beside observer: "
					"{...}; put observer parameters "
					"inside it", k ? k : "?");
				return st;
			}
		}

		if (!tm_priv_yaml_scalar(nn))
			return tm_priv_yaml_error(src, on, err, TM_ERR_INVALID,
						  "observer: a map needs "
						  "'name:' (e.g. {name: "
						  "percentile, hi: 99.9})");
		return make_stage(src, reg, TM_PLUGIN_OBSERVER,
				  tm_priv_yaml_scalar(nn), nn, on, skip_name,
				  out, err);
	}
	return tm_priv_yaml_error(src, on, err, TM_ERR_INVALID,
				  "observer: expected a name or a map, got %s",
				  tm_priv_yaml_kind(on));
}

/* --- calibration.data and calibration.preprocess ------------------- */

static void
preprocess_fini(tm_preprocess *p)
{
	free(p->mean);
	free(p->std);
	memset(p, 0, sizeof *p);
}

/* A finite number (strtod syntax). */
static int
parse_number(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	v = strtod(s, &end);
	if (end == s || *end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static tm_status
bad_number(const tm_yaml_src *src, yaml_node_t *node, const char *what,
	   const char *s, tm_error *err)
{
	if (strchr(s, '/'))
		return tm_priv_yaml_error(src, node, err, TM_ERR_INVALID,
					  "%s: '%s' is not a number (write "
					  "fractions out, e.g. "
					  "0.00392156862745098 for 1/255)",
					  what, s);
	return tm_priv_yaml_error(src, node, err, TM_ERR_INVALID,
				  "%s: '%s' is not a number", what, s);
}

/* mean or std: a number, or a non-empty list of numbers; std's must be
 * greater than 0 (it divides). */
static tm_status
parse_values(const tm_yaml_src *src, yaml_node_t *node, const char *what,
	     int positive, double **out, size_t *n_out, tm_error *err)
{
	yaml_node_item_t *first = NULL, *last = NULL;
	int one = 0;
	size_t n;

	if (tm_priv_yaml_scalar(node) && *tm_priv_yaml_scalar(node)) {
		one = 1;
		n = 1;
	} else if (node->type == YAML_SEQUENCE_NODE) {
		first = node->data.sequence.items.start;
		last = node->data.sequence.items.top;
		n = (size_t)(last - first);
		if (n == 0)
			return tm_priv_yaml_error(src, node, err,
						  TM_ERR_INVALID,
						  "%s: expected a number or a "
						  "list of numbers, got an "
						  "empty list", what);
	} else {
		return tm_priv_yaml_error(src, node, err, TM_ERR_INVALID,
					  "%s: expected a number or a list of "
					  "numbers, got %s", what,
					  tm_priv_yaml_kind(node));
	}
	*out = calloc(n, sizeof **out);
	if (!*out)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	*n_out = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *v = one ? node
				     : yaml_document_get_node(src->doc,
							      first[i]);
		const char *txt = tm_priv_yaml_scalar(v);

		if (!txt)
			return tm_priv_yaml_error(src, v, err, TM_ERR_INVALID,
						  "%s: expected a number, got "
						  "%s", what,
						  tm_priv_yaml_kind(v));
		if (parse_number(txt, &(*out)[i]))
			return bad_number(src, v, what, txt, err);
		if (positive && !((*out)[i] > 0))
			return tm_priv_yaml_error(src, v, err, TM_ERR_INVALID,
						  "%s: '%s' must be greater "
						  "than 0 (it divides)", what,
						  txt);
	}
	return TM_OK;
}

/* {scale: s, mean: [...], std: [...]} for one input; what is the path
 * of the map in messages ("calibration.preprocess"). */
static tm_status
parse_preprocess_spec(const tm_yaml_src *src, yaml_node_t *map,
		      const char *what, tm_preprocess *p, tm_error *err)
{
	yaml_node_t *sc, *mean, *std;
	char key[256];
	tm_status st;

	if (map->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, map, err, TM_ERR_INVALID,
					  "%s: expected a map {scale: s, "
					  "mean: [...], std: [...]}, got %s",
					  what, tm_priv_yaml_kind(map));
	st = check_keys(src, map, what, preprocess_keys,
			TM_ARRAY_LEN(preprocess_keys), err);
	if (st)
		return st;
	p->given = 1;
	p->scale = 1.0;
	tm_priv_yaml_where(src, map, &p->file, &p->line, &p->col);
	sc = tm_priv_yaml_get(src->doc, map, "scale");
	if (sc) {
		const char *txt = tm_priv_yaml_scalar(sc);

		snprintf(key, sizeof key, "%s.scale", what);
		if (!txt)
			return tm_priv_yaml_error(src, sc, err, TM_ERR_INVALID,
						  "%s: expected a number, got "
						  "%s", key,
						  tm_priv_yaml_kind(sc));
		if (parse_number(txt, &p->scale))
			return bad_number(src, sc, key, txt, err);
		if (p->scale == 0)
			return tm_priv_yaml_error(src, sc, err, TM_ERR_INVALID,
						  "%s: '%s' would make every "
						  "sample 0; give another "
						  "number", key, txt);
	}
	mean = tm_priv_yaml_get(src->doc, map, "mean");
	if (mean) {
		const char *file;

		snprintf(key, sizeof key, "%s.mean", what);
		st = parse_values(src, mean, key, 0, &p->mean, &p->n_mean,
				  err);
		if (st)
			return st;
		tm_priv_yaml_where(src, mean, &file, &p->mean_line,
				   &p->mean_col);
	}
	std = tm_priv_yaml_get(src->doc, map, "std");
	if (std) {
		const char *file;

		snprintf(key, sizeof key, "%s.std", what);
		st = parse_values(src, std, key, 1, &p->std, &p->n_std, err);
		if (st)
			return st;
		tm_priv_yaml_where(src, std, &file, &p->std_line,
				   &p->std_col);
	}
	return TM_OK;
}

/* data: a file or folder (one source, for the model's only input), or a
 * map {input: file-or-folder, ...}. Input names are checked against the
 * model when the data is opened: the model is not read yet. */
static tm_status
parse_data(const tm_yaml_src *src, yaml_node_t *data, const char *what,
	   tm_calib_source **srcs, size_t *n_srcs, tm_error *err)
{
	const char *txt = tm_priv_yaml_scalar(data);
	size_t n;

	if (txt && *txt) {
		tm_calib_source *s = calloc(1, sizeof *s);

		if (!s)
			return tm_error_set(err, TM_ERR_NOMEM,
					    "out of memory");
		*srcs = s;
		*n_srcs = 1;
		s->path = tm_priv_path_resolve(tm_priv_yaml_basedir(src, data),
					       txt, err);
		if (!s->path)
			return TM_ERR_NOMEM;
		tm_priv_yaml_where(src, data, &s->file, &s->line, &s->col);
		s->key_line = s->line;
		s->key_col = s->col;
		return TM_OK;
	}
	if (data->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, data, err, TM_ERR_INVALID,
					  "%s: expected a file "
					  "or folder name, or a map {input: "
					  "file-or-folder, ...}, got %s",
					  what, tm_priv_yaml_kind(data));
	n = (size_t)(data->data.mapping.pairs.top -
		     data->data.mapping.pairs.start);
	if (n == 0)
		return tm_priv_yaml_error(src, data, err, TM_ERR_INVALID,
					  "%s: an empty map "
					  "gives no input any data", what);
	*srcs = calloc(n, sizeof **srcs);
	if (!*srcs)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (yaml_node_pair_t *p = data->data.mapping.pairs.start;
	     p < data->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(src->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(src->doc, p->value);
		tm_calib_source *s = &(*srcs)[*n_srcs];
		const char *k = tm_priv_yaml_scalar(kn);
		const char *v = tm_priv_yaml_scalar(vn);

		if (!k || !*k)
			return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						  "%s: keys are "
						  "the model's input names", what);
		if (!v || !*v)
			return tm_priv_yaml_error(src, vn, err, TM_ERR_INVALID,
						  "%s.%s: "
						  "expected a file or folder "
						  "name, got %s", what, k,
						  tm_priv_yaml_kind(vn));
		(*n_srcs)++;
		s->input = tm_priv_strdup(k, err);
		s->path = tm_priv_path_resolve(tm_priv_yaml_basedir(src, vn),
					       v, err);
		if (!s->input || !s->path)
			return TM_ERR_NOMEM;
		tm_priv_yaml_where(src, vn, &s->file, &s->line, &s->col);
		tm_priv_yaml_where(src, kn, &s->file, &s->key_line,
				   &s->key_col);
	}
	return TM_OK;
}

/* preprocess: one spec for the only source, or, when data is a map, a
 * map {input: spec, ...} over the inputs it names. */
static tm_status
parse_preprocess(const tm_yaml_src *src, yaml_node_t *pp, tm_pipeline *pl,
		 tm_error *err)
{
	const char **names;
	tm_status st = TM_OK;

	if (pp->type == YAML_SCALAR_NODE &&
	    (!*tm_priv_yaml_scalar(pp) ||
	     strcmp(tm_priv_yaml_scalar(pp), "null") == 0 ||
	     strcmp(tm_priv_yaml_scalar(pp), "~") == 0))
		return TM_OK;	/* "preprocess:" with nothing after it */
	if (!pl->calib_sources[0].input)
		return parse_preprocess_spec(src, pp, "calibration.preprocess",
					     &pl->calib_sources[0].pre, err);
	if (pp->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, pp, err, TM_ERR_INVALID,
					  "calibration.preprocess: expected a "
					  "map {input: {scale: s, mean: "
					  "[...], std: [...]}, ...}, got %s",
					  tm_priv_yaml_kind(pp));
	names = calloc(pl->n_calib_sources, sizeof *names);
	if (!names)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < pl->n_calib_sources; i++)
		names[i] = pl->calib_sources[i].input;
	for (yaml_node_pair_t *p = pp->data.mapping.pairs.start;
	     !st && p < pp->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(src->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(src->doc, p->value);
		const char *k = tm_priv_yaml_scalar(kn);
		tm_calib_source *s = NULL;
		char what[300];
		const char *sugg;

		for (size_t i = 0; k && i < pl->n_calib_sources; i++)
			if (strcmp(k, names[i]) == 0)
				s = &pl->calib_sources[i];
		if (s) {
			snprintf(what, sizeof what, "calibration.preprocess.%s",
				 k);
			st = parse_preprocess_spec(src, vn, what, &s->pre,
						   err);
			continue;
		}
		if (!k) {
			st = tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						"calibration.preprocess: keys "
						"are input names");
			continue;
		}
		for (size_t i = 0; i < TM_ARRAY_LEN(preprocess_keys); i++)
			if (strcmp(k, preprocess_keys[i]) == 0) {
				st = tm_priv_yaml_error(
					src, kn, err, TM_ERR_INVALID,
					"calibration.preprocess: data is "
					"given per input, so give '%s' per "
					"input too: {%s: {%s: ...}, ...}", k,
					names[0], k);
				break;
			}
		if (st)
			continue;
		sugg = tm_priv_suggest(k, names, pl->n_calib_sources);
		if (sugg)
			st = tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						"calibration.preprocess: '%s' "
						"is not an input named in "
						"calibration.data; did you "
						"mean '%s'?", k, sugg);
		else
			st = tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						"calibration.preprocess: '%s' "
						"is not an input named in "
						"calibration.data", k);
	}
	free(names);
	return st;
}

/* calibration.tensors ("name or glob": {observer...}) or calibration.ops
 * ("op": {observer...}), appended to pl->rules in file order. */
static tm_status
parse_rules(const tm_yaml_src *src, const tm_registry *reg, yaml_node_t *cal,
	    const char *key, tm_pipeline *pl, tm_error *err)
{
	static const char *const skip_rule[] = { "observer", NULL };
	yaml_node_t *map = tm_priv_yaml_get(src->doc, cal, key);
	int by_op = strcmp(key, "ops") == 0;
	tm_tensor_rule *v;
	size_t n;
	tm_status st;

	if (!map)
		return TM_OK;
	if (map->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, map, err, TM_ERR_INVALID,
					  "calibration.%s: expected a map of "
					  "%s to {observer: ...}, got %s", key,
					  by_op ? "op name"
						: "tensor name (or glob)",
					  tm_priv_yaml_kind(map));
	n = (size_t)(map->data.mapping.pairs.top -
		     map->data.mapping.pairs.start);
	v = realloc(pl->rules, (pl->n_rules + n + 1) * sizeof *v);
	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	pl->rules = v;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(src->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(src->doc, p->value);
		tm_tensor_rule *r = &pl->rules[pl->n_rules];
		const char *pat = tm_priv_yaml_scalar(kn);

		memset(r, 0, sizeof *r);
		if (!pat)
			return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						  "calibration.%s: keys are "
						  "%s", key,
						  by_op ? "op names"
							: "tensor names or "
							  "globs");
		if (by_op && tm_op_from_name(pat, &r->op)) {
			const char *names[TM_OP_COUNT];
			size_t nn = 0;
			const char *sugg;

			for (int o = 1; o < TM_OP_COUNT; o++)
				names[nn++] = tm_op_name((tm_op)o);
			sugg = tm_priv_suggest(pat, names, nn);
			return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						  "calibration.ops: '%s' is not "
						  "an op%s%s%s", pat,
						  sugg ? "; did you mean '" : "",
						  sugg ? sugg : "",
						  sugg ? "'?" : "");
		}
		if (vn->type != YAML_MAPPING_NODE)
			return tm_priv_yaml_error(src, vn, err, TM_ERR_INVALID,
						  "calibration.%s.%s: expected "
						  "{observer: NAME, ...}, got %s",
						  key, pat,
						  tm_priv_yaml_kind(vn));
		r->pattern = tm_priv_strdup(pat, err);
		if (!r->pattern)
			return TM_ERR_NOMEM;
		r->by_op = by_op;
		tm_priv_yaml_where(src, kn, &r->file, &r->line, &r->col);
		pl->n_rules++;
		/* Without observer:, a rule tunes the default observer. */
		st = parse_observer(src, reg, vn, skip_rule,
				    pl->observer.plugin->name, &r->observer,
				    err);
		if (st)
			return st;
	}
	return TM_OK;
}

static tm_status parse_batch(const tm_yaml_src *src, yaml_node_t *batch,
			     const char *what, size_t *out, tm_error *err);

static tm_status
parse_calibration(const tm_yaml_src *src, const tm_registry *reg,
		  yaml_node_t *root, tm_pipeline *pl, tm_error *err)
{
	static const char *const skip_calib[] = { "data", "observer", "batch",
						  "tensors", "ops", "preprocess",
						  NULL };
	yaml_node_t *cal = tm_priv_yaml_get(src->doc, root, "calibration");
	yaml_node_t *data, *batch, *pp;
	tm_status st;

	if (!cal)
		return TM_OK;
	if (cal->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, cal, err, TM_ERR_INVALID,
					  "calibration: expected a map, got %s",
					  tm_priv_yaml_kind(cal));
	st = check_keys(src, cal, "calibration", calib_keys,
			TM_ARRAY_LEN(calib_keys), err);
	if (st)
		return st;
	pl->has_calibration = 1;
	data = tm_priv_yaml_get(src->doc, cal, "data");
	if (!data)
		return tm_priv_yaml_error(src, cal, err, TM_ERR_INVALID,
					  "calibration: missing 'data:' (a "
					  ".npy of N samples)");
	tm_priv_yaml_where(src, data, &pl->calib_file, &pl->calib_line,
			   &pl->calib_col);
	st = parse_data(src, data, "calibration.data", &pl->calib_sources,
			&pl->n_calib_sources, err);
	if (st)
		return st;
	pl->calib_data = tm_priv_strdup(pl->calib_sources[0].path, err);
	if (!pl->calib_data)
		return TM_ERR_NOMEM;
	pp = tm_priv_yaml_get(src->doc, cal, "preprocess");
	if (pp) {
		st = parse_preprocess(src, pp, pl, err);
		if (st)
			return st;
	}

	pl->batch = DEFAULT_BATCH;
	batch = tm_priv_yaml_get(src->doc, cal, "batch");
	if (batch) {
		st = parse_batch(src, batch, "calibration.batch", &pl->batch,
				 err);
		if (st)
			return st;
	}
	st = parse_observer(src, reg, cal, skip_calib, DEFAULT_OBSERVER,
			    &pl->observer, err);
	if (st)
		return st;

	st = parse_rules(src, reg, cal, "tensors", pl, err);
	if (!st)
		st = parse_rules(src, reg, cal, "ops", pl, err);
	return st;
}

/* batch: an integer in [1, 65536] (what names it in messages). */
static tm_status
parse_batch(const tm_yaml_src *src, yaml_node_t *batch, const char *what,
	    size_t *out, tm_error *err)
{
	const char *s = tm_priv_yaml_scalar(batch);
	char *end;
	long long b;

	errno = 0;
	b = s ? strtoll(s, &end, 10) : 0;
	if (!s)
		return tm_priv_yaml_error(src, batch, err, TM_ERR_INVALID,
					  "%s: expected an integer, got %s",
					  what, tm_priv_yaml_kind(batch));
	if (errno || end == s || *end || b < 1 || b > 65536)
		return tm_priv_yaml_error(src, batch, err, TM_ERR_INVALID,
					  "%s: '%s' is not an integer between "
					  "1 and 65536", what, s);
	*out = (size_t)b;
	return TM_OK;
}

/* verify.labels: FILE and verify.max_accuracy_drop: points in [0, 100]
 * (which needs labels to mean anything). */
static tm_status
parse_labels(const tm_yaml_src *src, yaml_node_t *v, tm_pipeline *pl,
	     tm_error *err)
{
	yaml_node_t *lab = tm_priv_yaml_get(src->doc, v, "labels");
	yaml_node_t *drop = tm_priv_yaml_get(src->doc, v,
					     "max_accuracy_drop");
	const char *s;

	if (lab) {
		s = tm_priv_yaml_scalar(lab);
		if (!s || !*s)
			return tm_priv_yaml_error(src, lab, err,
						  TM_ERR_INVALID,
						  "verify.labels: expected a "
						  ".npy file name, got %s",
						  tm_priv_yaml_kind(lab));
		pl->verify_labels =
			tm_priv_path_resolve(tm_priv_yaml_basedir(src, lab),
					     s, err);
		if (!pl->verify_labels)
			return TM_ERR_NOMEM;
		tm_priv_yaml_where(src, lab, &pl->verify_labels_file,
				   &pl->verify_labels_line,
				   &pl->verify_labels_col);
	}
	if (!drop)
		return TM_OK;
	s = tm_priv_yaml_scalar(drop);
	if (!s)
		return tm_priv_yaml_error(src, drop, err, TM_ERR_INVALID,
					  "verify.max_accuracy_drop: expected "
					  "a number, got %s",
					  tm_priv_yaml_kind(drop));
	if (parse_number(s, &pl->verify_max_drop))
		return bad_number(src, drop, "verify.max_accuracy_drop", s,
				  err);
	if (pl->verify_max_drop < 0.0 || pl->verify_max_drop > 100.0)
		return tm_priv_yaml_error(src, drop, err, TM_ERR_INVALID,
					  "verify.max_accuracy_drop: '%s' is "
					  "not between 0 and 100 (percentage "
					  "points of top-1 accuracy)", s);
	if (!lab)
		return tm_priv_yaml_error(src, drop, err, TM_ERR_INVALID,
					  "verify.max_accuracy_drop needs "
					  "'labels:' (a .npy of the class of "
					  "each sample)");
	pl->verify_has_max_drop = 1;
	tm_priv_yaml_where(src, drop, &pl->verify_drop_file,
			   &pl->verify_drop_line, &pl->verify_drop_col);
	return TM_OK;
}

/* verify.reference: float (the default) or quantized. */
static tm_status
parse_reference(const tm_yaml_src *src, yaml_node_t *v, tm_pipeline *pl,
		tm_error *err)
{
	yaml_node_t *r = tm_priv_yaml_get(src->doc, v, "reference");
	const char *s;

	pl->verify_reference = TM_VERIFY_REF_FLOAT;
	if (!r)
		return TM_OK;
	s = tm_priv_yaml_scalar(r);
	if (s && strcmp(s, "quantized") == 0)
		pl->verify_reference = TM_VERIFY_REF_QUANTIZED;
	else if (!s || strcmp(s, "float") != 0)
		return tm_priv_yaml_error(src, r, err, TM_ERR_INVALID,
					  "verify.reference: expected float "
					  "or quantized, got %s%s%s",
					  s ? "'" : "",
					  s ? s : tm_priv_yaml_kind(r),
					  s ? "'" : "");
	return TM_OK;
}

/* verify: {data: file-or-folder or map, tolerance: number >= 0, batch,
 * labels: file, max_accuracy_drop: points, reference: float or
 * quantized}. */
static tm_status
parse_verify(const tm_yaml_src *src, yaml_node_t *root, tm_pipeline *pl,
	     tm_error *err)
{
	yaml_node_t *v = tm_priv_yaml_get(src->doc, root, "verify");
	yaml_node_t *data, *tol, *batch;
	tm_status st;

	if (!v)
		return TM_OK;
	if (v->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, v, err, TM_ERR_INVALID,
					  "verify: expected a map {data: "
					  "FILE, tolerance: NUMBER}, got %s",
					  tm_priv_yaml_kind(v));
	st = check_keys(src, v, "verify", verify_keys,
			TM_ARRAY_LEN(verify_keys), err);
	if (st)
		return st;
	pl->has_verify = 1;
	tm_priv_yaml_where(src, v, &pl->verify_file, &pl->verify_line,
			   &pl->verify_col);
	data = tm_priv_yaml_get(src->doc, v, "data");
	if (!data)
		return tm_priv_yaml_error(src, v, err, TM_ERR_INVALID,
					  "verify: missing 'data:' (a .npy "
					  "of N held-out samples)");
	tm_priv_yaml_where(src, data, &pl->verify_file, &pl->verify_line,
			   &pl->verify_col);
	st = parse_data(src, data, "verify.data", &pl->verify_sources,
			&pl->n_verify_sources, err);
	if (st)
		return st;
	tol = tm_priv_yaml_get(src->doc, v, "tolerance");
	if (tol) {
		const char *s = tm_priv_yaml_scalar(tol);

		if (!s)
			return tm_priv_yaml_error(src, tol, err,
						  TM_ERR_INVALID,
						  "verify.tolerance: expected "
						  "a number, got %s",
						  tm_priv_yaml_kind(tol));
		if (parse_number(s, &pl->verify_tolerance))
			return bad_number(src, tol, "verify.tolerance", s,
					  err);
		if (pl->verify_tolerance < 0.0)
			return tm_priv_yaml_error(src, tol, err,
						  TM_ERR_INVALID,
						  "verify.tolerance: '%s' is "
						  "negative (a maximum "
						  "absolute error is >= 0)",
						  s);
		pl->verify_has_tolerance = 1;
		tm_priv_yaml_where(src, tol, &pl->verify_tol_file,
				   &pl->verify_tol_line, &pl->verify_tol_col);
	}
	pl->verify_batch = DEFAULT_BATCH;
	batch = tm_priv_yaml_get(src->doc, v, "batch");
	if (batch) {
		st = parse_batch(src, batch, "verify.batch",
				 &pl->verify_batch, err);
		if (st)
			return st;
	}
	st = parse_reference(src, v, pl, err);
	if (st)
		return st;
	return parse_labels(src, v, pl, err);
}

/* "per_tensor" / "per_channel" at node; -1 with err set otherwise. */
static int
parse_granularity(const tm_yaml_src *src, yaml_node_t *node, const char *what,
		  tm_error *err)
{
	const char *s = tm_priv_yaml_scalar(node);

	if (s && strcmp(s, "per_channel") == 0)
		return 1;
	if (s && strcmp(s, "per_tensor") == 0)
		return 0;
	tm_priv_yaml_error(src, node, err, TM_ERR_INVALID,
			   "%s: expected per_tensor or per_channel, got %s%s%s",
			   what, s ? "'" : "", s ? s : tm_priv_yaml_kind(node),
			   s ? "'" : "");
	return -1;
}

static tm_status
parse_quantize(const tm_yaml_src *src, yaml_node_t *root, tm_pipeline *pl,
	       tm_error *err)
{
	static const char *const keys[] = { "weights", "layers" };
	static const char *const rule_keys[] = { "weights" };
	yaml_node_t *q = tm_priv_yaml_get(src->doc, root, "quantize");
	yaml_node_t *w, *layers;
	tm_status st;

	if (!q)
		return TM_OK;
	pl->has_quantize = 1;
	if (q->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, q, err, TM_ERR_INVALID,
					  "quantize: expected a map, got %s",
					  tm_priv_yaml_kind(q));
	st = check_keys(src, q, "quantize", keys, TM_ARRAY_LEN(keys), err);
	if (st)
		return st;
	w = tm_priv_yaml_get(src->doc, q, "weights");
	if (w) {
		pl->weights_per_channel =
			parse_granularity(src, w, "quantize.weights", err);
		if (pl->weights_per_channel < 0)
			return err->code;
	}
	layers = tm_priv_yaml_get(src->doc, q, "layers");
	if (!layers)
		return TM_OK;
	if (layers->type != YAML_MAPPING_NODE)
		return tm_priv_yaml_error(src, layers, err, TM_ERR_INVALID,
					  "quantize.layers: expected a map of "
					  "layer name (or glob) to {weights: "
					  "...}, got %s",
					  tm_priv_yaml_kind(layers));
	pl->layer_rules = calloc((size_t)(layers->data.mapping.pairs.top -
					  layers->data.mapping.pairs.start) +
					 1,
				 sizeof *pl->layer_rules);
	if (!pl->layer_rules)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	for (yaml_node_pair_t *p = layers->data.mapping.pairs.start;
	     p < layers->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(src->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(src->doc, p->value);
		tm_layer_rule *r = &pl->layer_rules[pl->n_layer_rules];
		const char *pat = tm_priv_yaml_scalar(kn);
		yaml_node_t *g;

		if (!pat)
			return tm_priv_yaml_error(src, kn, err, TM_ERR_INVALID,
						  "quantize.layers: keys are "
						  "layer names or globs");
		if (vn->type != YAML_MAPPING_NODE)
			return tm_priv_yaml_error(src, vn, err, TM_ERR_INVALID,
						  "quantize.layers.%s: expected "
						  "{weights: per_channel}, got "
						  "%s", pat,
						  tm_priv_yaml_kind(vn));
		st = check_keys(src, vn, "quantize.layers", rule_keys,
				TM_ARRAY_LEN(rule_keys), err);
		if (st)
			return st;
		g = tm_priv_yaml_get(src->doc, vn, "weights");
		if (!g)
			return tm_priv_yaml_error(src, vn, err, TM_ERR_INVALID,
						  "quantize.layers.%s: missing "
						  "'weights:'", pat);
		r->per_channel = parse_granularity(src, g, "weights", err);
		if (r->per_channel < 0)
			return err->code;
		r->pattern = tm_priv_strdup(pat, err);
		if (!r->pattern)
			return TM_ERR_NOMEM;
		tm_priv_yaml_where(src, kn, &r->file, &r->line, &r->col);
		pl->n_layer_rules++;
	}
	return TM_OK;
}

/* Layers whose weights the quantize pass quantizes per tensor or per
 * channel as asked (an unfolded batchnorm is always per channel; matmul
 * has no integer kernel yet). */
static int
has_weights(const tm_node *n)
{
	return n->op == TM_OP_DENSE || n->op == TM_OP_CONV2D;
}

/* The layers rule for a layer: exact name, else the first glob. */
static const tm_layer_rule *
layer_rule(const tm_pipeline *pl, const char *name)
{
	for (size_t r = 0; r < pl->n_layer_rules; r++)
		if (strcmp(pl->layer_rules[r].pattern, name) == 0)
			return &pl->layer_rules[r];
	for (size_t r = 0; r < pl->n_layer_rules; r++)
		if (fnmatch(pl->layer_rules[r].pattern, name, 0) == 0)
			return &pl->layer_rules[r];
	return NULL;
}

int
tm_priv_pipeline_given_quant(const tm_pipeline *pl)
{
	const tm_frontend_ops *ops = pl->frontend.plugin
					     ? pl->frontend.plugin->desc->ops
					     : NULL;

	return ops && (ops->flags & TM_FRONTEND_GIVES_QUANT);
}

tm_status
tm_priv_pipeline_per_channel(const tm_pipeline *pl, const tm_model *m,
			     unsigned char *out, tm_error *err)
{
	for (size_t r = 0; r < pl->n_layer_rules; r++) {
		const tm_layer_rule *lr = &pl->layer_rules[r];
		int hit = 0;

		for (size_t k = 0; k < m->n_nodes && !hit; k++)
			hit = has_weights(m->nodes[k]) &&
			      fnmatch(lr->pattern, m->nodes[k]->name, 0) == 0;
		if (!hit)
			return tm_error_set_at(err, TM_ERR_NOT_FOUND, lr->file,
					       lr->line, lr->col,
					       "quantize.layers: '%s' matches "
					       "no layer with weights",
					       lr->pattern);
	}
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_layer_rule *lr = layer_rule(pl, m->nodes[k]->name);

		out[k] = (unsigned char)(lr ? lr->per_channel
					    : pl->weights_per_channel);
	}
	return TM_OK;
}

static tm_status
parse_version(const tm_yaml_src *src, yaml_node_t *root, tm_error *err)
{
	yaml_node_t *v = tm_priv_yaml_get(src->doc, root, "tmpipe");
	const char *s = tm_priv_yaml_scalar(v);

	if (!v)
		return tm_priv_yaml_error(src, root, err, TM_ERR_INVALID,
					  "missing 'tmpipe: 1' (the pipeline "
					  "format version) at the top");
	if (!s || strcmp(s, "1") != 0)
		return tm_priv_yaml_error(src, v, err, TM_ERR_UNSUPPORTED,
					  "pipeline format version '%s' is "
					  "not supported (this tmpipe reads "
					  "version 1)", s ? s : "?");
	return TM_OK;
}

static tm_status
yaml_syntax_error(const char *path, yaml_parser_t *parser, tm_error *err)
{
	const yaml_mark_t *m = parser->problem_mark.line ||
					       parser->problem_mark.column ||
					       !parser->context_mark.line
				       ? &parser->problem_mark
				       : &parser->context_mark;

	if (parser->error == YAML_MEMORY_ERROR)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	if (parser->context)
		return tm_error_set_at(err, TM_ERR_PARSE, path,
				       (unsigned)m->line + 1,
				       (unsigned)m->column + 1,
				       "YAML syntax error: %s %s",
				       parser->problem ? parser->problem : "",
				       parser->context);
	return tm_error_set_at(err, TM_ERR_PARSE, path, (unsigned)m->line + 1,
			       (unsigned)m->column + 1, "YAML syntax error: %s",
			       parser->problem ? parser->problem : "?");
}

void
tm_pipeline_free(tm_pipeline *pl)
{
	if (!pl)
		return;
	stage_fini(&pl->frontend);
	for (size_t i = 0; i < pl->n_transforms; i++)
		stage_fini(&pl->transforms[i]);
	free(pl->transforms);
	stage_fini(&pl->observer);
	for (size_t i = 0; i < pl->n_rules; i++) {
		free(pl->rules[i].pattern);
		stage_fini(&pl->rules[i].observer);
	}
	free(pl->rules);
	for (size_t i = 0; i < pl->n_layer_rules; i++)
		free(pl->layer_rules[i].pattern);
	free(pl->layer_rules);
	for (size_t i = 0; i < pl->n_emitters; i++)
		stage_fini(&pl->emitters[i]);
	free(pl->emitters);
	free(pl->calib_data);
	for (size_t i = 0; i < pl->n_calib_sources; i++) {
		free(pl->calib_sources[i].input);
		free(pl->calib_sources[i].path);
		preprocess_fini(&pl->calib_sources[i].pre);
	}
	free(pl->calib_sources);
	for (size_t i = 0; i < pl->n_verify_sources; i++) {
		free(pl->verify_sources[i].input);
		free(pl->verify_sources[i].path);
		preprocess_fini(&pl->verify_sources[i].pre);
	}
	free(pl->verify_sources);
	free(pl->verify_labels);
	free(pl->basedir);
	free(pl->file);
	free(pl);
}

tm_status
tm_pipeline_load(const char *path, const tm_registry *reg,
		      const char *const *overrides, tm_pipeline **out,
		      tm_error *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	tm_yaml_src src;
	tm_pipeline *pl;
	tm_status st;
	FILE *fp;
	int have_doc = 0;

	*out = NULL;
	pl = calloc(1, sizeof *pl);
	if (!pl)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	pl->threads = 1;
	pl->file = tm_priv_strdup(path, err);
	pl->basedir = tm_priv_dirname(path, err);
	if (!pl->file || !pl->basedir) {
		tm_pipeline_free(pl);
		return TM_ERR_NOMEM;
	}
	fp = fopen(path, "rb");
	if (!fp) {
		st = tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				     "cannot open pipeline: %s",
				     strerror(errno));
		tm_pipeline_free(pl);
		return st;
	}
	if (!yaml_parser_initialize(&parser)) {
		fclose(fp);
		tm_pipeline_free(pl);
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	}
	yaml_parser_set_input_file(&parser, fp);
	if (!yaml_parser_load(&parser, &doc)) {
		st = yaml_syntax_error(path, &parser, err);
		goto out;
	}
	have_doc = 1;
	src.doc = &doc;
	src.file = pl->file;
	src.basedir = pl->basedir;
	src.first_override = 0;
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		st = tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				     "empty pipeline (see tmpipe-pipeline(5) "
				     "for the format)");
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		st = tm_priv_yaml_error(&src, root, err, TM_ERR_INVALID,
					"a pipeline is a map of sections "
					"(tmpipe, model, ...), not %s",
					tm_priv_yaml_kind(root));
		goto out;
	}
	st = tm_priv_yaml_check_duplicates(&src, err);
	if (st)
		goto out;
	src.first_override = (int)(doc.nodes.top - doc.nodes.start) + 1;
	for (; overrides && *overrides; overrides++) {
		st = apply_override(&doc, *overrides, err);
		if (st)
			goto out;
	}
	root = yaml_document_get_root_node(&doc);
	st = check_keys(&src, root, "the pipeline", top_keys,
			TM_ARRAY_LEN(top_keys), err);
	if (!st)
		st = parse_version(&src, root, err);
	if (!st)
		st = parse_model(&src, reg, root, pl, err);
	if (!st)
		st = parse_stage_list(&src, reg, root, "transforms",
				      TM_PLUGIN_TRANSFORM, &pl->transforms,
				      &pl->n_transforms, err);
	if (!st)
		st = parse_calibration(&src, reg, root, pl, err);
	if (!st)
		st = parse_quantize(&src, root, pl, err);
	if (!st)
		st = parse_stage_list(&src, reg, root, "emit",
				      TM_PLUGIN_EMITTER, &pl->emitters,
				      &pl->n_emitters, err);
	if (!st)
		st = parse_verify(&src, root, pl, err);
	/* Quantizing needs ranges: from calibration, or from a model that
	 * may carry them (then a missing one is found at run time). */
	if (!st && !tm_priv_pipeline_given_quant(pl) &&
	    pl->has_verify && !pl->has_calibration)
		st = tm_priv_yaml_error(&src, key_node(&doc, root, "verify"),
					err, TM_ERR_INVALID,
					"verify needs a calibration section: "
					"it runs the quantized model");
	if (!st && !tm_priv_pipeline_given_quant(pl) && !pl->has_calibration &&
	    tm_priv_yaml_get(&doc, root, "quantize"))
		st = tm_priv_yaml_error(&src,
					key_node(&doc, root, "quantize"), err,
					TM_ERR_INVALID,
					"quantize needs a calibration section: "
					"activation ranges come from "
					"calibration data");
	if (!st && !tm_priv_pipeline_given_quant(pl) && pl->n_emitters &&
	    !pl->has_calibration)
		st = tm_priv_yaml_error(&src, key_node(&doc, root, "emit"),
					err, TM_ERR_INVALID,
					"emit needs a calibration section: "
					"activation ranges come from "
					"calibration data");
	if (!st)
		st = tm_priv_transforms_check(pl, pl->file, err);
out:
	if (have_doc)
		yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(fp);
	if (st) {
		tm_pipeline_free(pl);
		return st;
	}
	*out = pl;
	return TM_OK;
}

int
tm_priv_op_reads(const tm_model *m, tm_op op, size_t t)
{
	for (size_t k = 0; k < m->n_nodes; k++) {
		const tm_node *nd = m->nodes[k];

		if (nd->op != op)
			continue;
		for (size_t i = 0; i < nd->n_inputs; i++)
			if (nd->inputs[i] == t)
				return 1;
	}
	return 0;
}

/* The tensors rule for a tensor name: exact name first, then the first
 * matching glob in file order; NULL when none. */
static const tm_stage *
rule_by_name(const tm_pipeline *pl, const char *tensor)
{
	for (size_t i = 0; i < pl->n_rules; i++)
		if (!pl->rules[i].by_op &&
		    strcmp(pl->rules[i].pattern, tensor) == 0)
			return &pl->rules[i].observer;
	for (size_t i = 0; i < pl->n_rules; i++)
		if (!pl->rules[i].by_op &&
		    fnmatch(pl->rules[i].pattern, tensor, 0) == 0)
			return &pl->rules[i].observer;
	return NULL;
}

const tm_stage *
tm_priv_observer_by_name(const tm_pipeline *pl, const char *tensor)
{
	const tm_stage *s = rule_by_name(pl, tensor);

	return s ? s : &pl->observer;
}

const tm_stage *
tm_priv_observer_for(const tm_pipeline *pl, const tm_model *m, size_t t)
{
	const tm_stage *s = rule_by_name(pl, m->tensors[t]->name);

	if (s)
		return s;
	for (size_t i = 0; i < pl->n_rules; i++)
		if (pl->rules[i].by_op &&
		    tm_priv_op_reads(m, pl->rules[i].op, t))
			return &pl->rules[i].observer;
	return &pl->observer;
}
