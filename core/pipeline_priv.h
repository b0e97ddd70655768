/* tmpipe — pipeline files: YAML parsed, plugins resolved, parameters
 * validated, all before anything runs. See tmpipe-pipeline(5). */
#ifndef TMPIPE_PIPELINE_PRIV_H
#define TMPIPE_PIPELINE_PRIV_H

#include <tmpipe/plugin.h>

#include "loader_priv.h"
#include "util_priv.h"

/* One use of a plugin in the pipeline. */
typedef struct tm_stage {
	char *label;			/* "emit c_header", for messages */
	const tm_plugin *plugin;	/* borrowed from the registry */
	tm_params *params;		/* validated */
	unsigned line, col;		/* of the plugin's name */
} tm_stage;

/* calibration.tensors: a tensor name or glob and the observer for it. */
typedef struct tm_tensor_rule {
	char *pattern;
	const char *file;		/* the pipeline, or "--set" */
	unsigned line, col;		/* of the pattern */
	tm_stage observer;
} tm_tensor_rule;

typedef struct tm_pipeline {
	char *file;			/* as given */
	char *basedir;			/* relative paths resolve here */
	tm_stage frontend;
	tm_stage *transforms;
	size_t n_transforms;
	int has_calibration;
	char *calib_data;		/* resolved path */
	unsigned calib_line, calib_col;	/* of calibration.data */
	size_t batch;
	tm_stage observer;		/* the default */
	tm_tensor_rule *rules;
	size_t n_rules;
	tm_stage *emitters;
	size_t n_emitters;
} tm_pipeline;

/* Loads and validates path. overrides are "a.b.c=value" strings from
 * --set (NULL-terminated, may be NULL), applied to the YAML before
 * validation. Every error carries file:line:col. */
TM_API tm_status tm_pipeline_load(const char *path,
					const tm_registry *reg,
					const char *const *overrides,
					tm_pipeline **out, tm_error *err);
TM_API void tm_pipeline_free(tm_pipeline *pl);

/* The stage that observes tensor name: the rule naming it exactly, else
 * the first rule whose glob matches (fnmatch, in file order), else the
 * default. */
TM_PRIV const tm_stage *tm_priv_observer_for(const tm_pipeline *pl,
						      const char *tensor);

#endif
