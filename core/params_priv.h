/* tmpipe — building tm_params from YAML, checked against a schema. */
#ifndef TMPIPE_PARAMS_PRIV_H
#define TMPIPE_PARAMS_PRIV_H

#include <yaml.h>

#include <tmpipe/params.h>

#include "util_priv.h"

/* Where the YAML came from, for messages and PATH resolution. */
typedef struct tm_yaml_src {
	yaml_document_t *doc;
	const char *file;	/* the pipeline file, as the user named it */
	const char *basedir;	/* PATH values are resolved against it */
	int first_override;	/* nodes with this index or above came from
				 * --set (0: none) */
} tm_yaml_src;

/* Validates map (a YAML mapping node, or NULL for "nothing given")
 * against spec and builds *out. Keys listed in skip (NULL-terminated, may
 * be NULL) are ignored: the caller handles them. what names the owner in
 * messages ("observer 'kl'"). */
TM_PRIV tm_status tm_priv_params_from_yaml(const tm_param_spec *spec,
					   const tm_yaml_src *src,
					   yaml_node_t *map,
					   const char *const *skip,
					   const char *what, tm_params **out,
					   tm_error *err);

/* Parameters with every default (a plugin run with no settings). */
TM_PRIV tm_status tm_priv_params_defaults(const tm_param_spec *spec,
					  const char *what, tm_params **out,
					  tm_error *err);

TM_PRIV void tm_priv_params_free(tm_params *p);

/* Checks that a schema table is well formed (types known, defaults
 * parse and are in bounds, LIST/MAP have fields). Run on every plugin
 * at load time so a plugin bug is reported against the plugin. */
TM_PRIV tm_status tm_priv_params_check_spec(const tm_param_spec *spec,
					    tm_error *err);

TM_API const char *tm_param_type_name(tm_param_type t);

/* 1-based position of a YAML node, or of the --set flag. */
TM_PRIV void tm_priv_yaml_where(const tm_yaml_src *src, yaml_node_t *node,
				const char **file, unsigned *line,
				unsigned *col);

/* The folder a relative path written at node resolves against: the
 * pipeline's folder, or the current directory for a --set value. */
TM_PRIV const char *tm_priv_yaml_basedir(const tm_yaml_src *src,
					 yaml_node_t *node);

/* Rejects any map of the document that has the same key twice, naming
 * both lines. */
TM_PRIV tm_status tm_priv_yaml_check_duplicates(const tm_yaml_src *src,
						tm_error *err);

/* Fills err at node's position. */
TM_PRIV tm_status tm_priv_yaml_error(const tm_yaml_src *src,
				     yaml_node_t *node, tm_error *err,
				     tm_status code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* A mapping's pair for key, or NULL. */
TM_PRIV yaml_node_pair_t *tm_priv_yaml_pair(yaml_document_t *doc,
					    yaml_node_t *map, const char *key);
/* A mapping's value for key, or NULL. */
TM_PRIV yaml_node_t *tm_priv_yaml_get(yaml_document_t *doc, yaml_node_t *map,
				      const char *key);
/* A scalar's text, or NULL when node is not a scalar. */
TM_PRIV const char *tm_priv_yaml_scalar(yaml_node_t *node);
TM_PRIV const char *tm_priv_yaml_kind(yaml_node_t *node);

#endif
