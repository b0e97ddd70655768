/* tmpipe fuzzing — pipeline files (core/pipeline.c, libyaml):
 * tm_pipeline_load as `tmpipe validate` and `tmpipe run` call it, against
 * a registry of this build's plugins, stopping before anything runs. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "loader_priv.h"
#include "pipeline_priv.h"

/* The plugins: $TMPIPE_PLUGIN_PATH (make check sets it), else this build
 * tree's (set by Makefile.am). */
#ifndef TM_FUZZ_PLUGIN_DIR
#define TM_FUZZ_PLUGIN_DIR "plugins/.libs"
#endif

static tm_registry *reg;

static void
free_registry(void)
{
	tm_registry_free(reg);
	reg = NULL;
}

static tm_registry *
registry(void)
{
	const char *dir = getenv("TMPIPE_PLUGIN_PATH");
	tm_error err;
	char buf[TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 64];

	if (reg)
		return reg;
	/* tm_registry_scan reads $TMPIPE_PLUGIN_PATH itself. */
	dir = dir && *dir ? NULL : TM_FUZZ_PLUGIN_DIR;
	reg = tm_registry_new();
	if (!reg)
		return NULL;
	atexit(free_registry);
	tm_error_clear(&err);
	if (tm_registry_scan(reg, NULL, NULL, dir, &err)) {
		fprintf(stderr, "fuzz: %s\n",
			tm_error_format(&err, buf, sizeof buf));
		free_registry();
		return NULL;
	}
	if (!reg->n) {
		fprintf(stderr, "fuzz: no plugins in %s\n",
			dir ? dir : getenv("TMPIPE_PLUGIN_PATH"));
		free_registry();
	}
	return reg;
}

int
tm_fuzz_pipeline(const uint8_t *data, size_t size)
{
	const tm_registry *r = registry();
	const char *path = tm_fuzz_write("pipeline.yaml", data, size);
	tm_pipeline *pl = NULL;
	tm_error err;
	tm_status st;

	if (!r || !path)
		return 1;
	tm_error_clear(&err);
	st = tm_pipeline_load(path, r, NULL, &pl, &err);
	tm_pipeline_free(pl);
	return tm_fuzz_check_err("tm_pipeline_load", st, &err, path);
}

#ifdef TM_FUZZ_LIBFUZZER
TM_FUZZ_TARGET(tm_fuzz_pipeline)
#endif
