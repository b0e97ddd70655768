/* tmpipe — the plugin registry: finds, loads and checks plugins.
 *
 * Search order (first wins for lookups, see tmpipe-plugin(7)):
 *	--plugin-path, $TMPIPE_PLUGIN_PATH, [plugins] path of the config,
 *	then the built-in folder TM_PLUGINDIR.
 * Every *.so in those folders is opened with dlopen(RTLD_NOW|RTLD_LOCAL)
 * and checked (entry symbol, ABI, descriptor, name, parameter table).
 * A file that fails is kept as a broken entry: it is reported when its
 * name is asked for or listed, and does not stop unrelated work.
 * The same name in two files of the given paths is a duplicate: neither is
 * used, and the error names both files (one file reached twice, through
 * two spellings of its folder, is one plugin). A plugin in the built-in
 * folder whose name a given path already provides, working or broken, is
 * shadowed: an installed tmpipe never overrides a plugin you point at.
 */
#ifndef TMPIPE_LOADER_PRIV_H
#define TMPIPE_LOADER_PRIV_H

#include <tmpipe/plugin.h>

#include "util_priv.h"

typedef struct tm_plugin {
	char *path;			/* the .so */
	char *name;			/* descriptor name, or the file's
					 * basename when broken */
	void *handle;			/* dlopen handle, or NULL */
	const tm_plugin_desc *desc;	/* NULL when broken */
	tm_error error;			/* why it is broken */
	int builtin_dir;		/* found in the built-in folder */
	unsigned long long dev, ino;	/* identity of the file */
	struct tm_plugin *duplicate;	/* another file with this name */
	struct tm_plugin *shadowed_by;	/* a given path's plugin wins */
} tm_plugin;

typedef struct tm_registry {
	tm_plugin **v;
	size_t n;
	tm_strv dirs;			/* folders searched, in order */
} tm_registry;

TM_API tm_registry *tm_registry_new(void);
TM_API void tm_registry_free(tm_registry *r);

/* Adds one search entry: a folder (every *.so in it, in name order) or a
 * single .so file. A missing folder or file is an error when required,
 * else skipped. builtin marks the built-in folder. */
TM_API tm_status tm_registry_add(tm_registry *r, const char *path,
				       int required, int builtin,
				       tm_error *err);

/* Adds, in order: each of given (NULL-terminated, may be NULL; required),
 * $TMPIPE_PLUGIN_PATH, config_paths, then builtin_dir (may be NULL). */
TM_API tm_status tm_registry_scan(tm_registry *r,
					const char *const *given,
					const tm_strv *config_paths,
					const char *builtin_dir,
					tm_error *err);

/* The usable plugin of that name and kind. Errors say what to do: not
 * found (with the available names of the kind and a suggestion), broken
 * (the load error), duplicate (both files), another kind. kind 0 matches
 * any kind. */
TM_API tm_status tm_registry_find(const tm_registry *r,
					const char *name, tm_plugin_kind kind,
					const tm_plugin **out, tm_error *err);

/* Loads one file and checks it; on failure returns the error and fills
 * p->error (p is still returned for listing). */
TM_PRIV tm_plugin *tm_priv_plugin_open(const char *path, tm_error *err);
TM_PRIV void tm_priv_plugin_free(tm_plugin *p);

#endif
