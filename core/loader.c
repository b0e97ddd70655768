/* tmpipe — plugin loading (dlopen), ABI gate, registry. */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader_priv.h"
#include "params_priv.h"

const char *
tm_plugin_kind_name(tm_plugin_kind kind)
{
	switch (kind) {
	case TM_PLUGIN_FRONTEND:
		return "frontend";
	case TM_PLUGIN_OBSERVER:
		return "observer";
	case TM_PLUGIN_TRANSFORM:
		return "transform";
	case TM_PLUGIN_EMITTER:
		return "emitter";
	default:
		return "unknown";
	}
}

/* "dir/minmax.so" → "minmax" */
static char *
file_stem(const char *path, tm_error *err)
{
	const char *base = strrchr(path, '/');
	char *s;
	size_t len;

	base = base ? base + 1 : path;
	s = tm_priv_strdup(base, err);
	if (!s)
		return NULL;
	len = strlen(s);
	if (len > 3 && strcmp(s + len - 3, ".so") == 0)
		s[len - 3] = '\0';
	return s;
}

static int
valid_name(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return 0;
	return 1;
}

static tm_status
check_ops(const tm_plugin_desc *d, const char *path, tm_error *err)
{
	const char *missing = NULL;

	if (!d->ops)
		return tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				       "%s plugin '%s' has no ops table",
				       tm_plugin_kind_name(d->kind), d->name);
	switch (d->kind) {
	case TM_PLUGIN_FRONTEND: {
		const tm_frontend_ops *o = d->ops;

		if (!o->load)
			missing = "load";
		break;
	}
	case TM_PLUGIN_OBSERVER: {
		const tm_observer_ops *o = d->ops;

		if (!o->create)
			missing = "create";
		else if (!o->destroy)
			missing = "destroy";
		else if (!o->observe)
			missing = "observe";
		else if (!o->finish)
			missing = "finish";
		break;
	}
	case TM_PLUGIN_TRANSFORM: {
		const tm_transform_ops *o = d->ops;

		/* One that needs data is called through run_ctx. */
		if (o->needs & TM_TRANSFORM_NEEDS_DATA)
			missing = o->run_ctx ? NULL : "run_ctx";
		else if (!o->run)
			missing = "run";
		break;
	}
	case TM_PLUGIN_EMITTER: {
		const tm_emitter_ops *o = d->ops;

		if (!o->emit)
			missing = "emit";
		break;
	}
	default:
		break;
	}
	if (missing)
		return tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				       "%s plugin '%s' lacks the required "
				       "op '%s'", tm_plugin_kind_name(d->kind),
				       d->name, missing);
	return TM_OK;
}

/* Checks a descriptor in the order that is safe: the ABI fields first,
 * since nothing after them can be trusted before the ABI matches. */
static tm_status
check_desc(const tm_plugin_desc *d, const char *path, const char *stem,
	   tm_error *err)
{
	tm_error perr;

	if (!d)
		return tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				       "tmpipe_plugin_init returned no "
				       "descriptor");
	if (d->abi_major != TM_PLUGIN_ABI_MAJOR ||
	    d->abi_minor > TM_PLUGIN_ABI_MINOR)
		return tm_error_set_at(err, TM_ERR_ABI, path, 0, 0,
				       "built for plugin ABI %u.%u, this "
				       "tmpipe provides %u.%u; rebuild it "
				       "against the headers of this tmpipe",
				       (unsigned)d->abi_major,
				       (unsigned)d->abi_minor,
				       TM_PLUGIN_ABI_MAJOR, TM_PLUGIN_ABI_MINOR);
	if (d->size < offsetof(tm_plugin_desc, reserved))
		return tm_error_set_at(err, TM_ERR_ABI, path, 0, 0,
				       "descriptor of %u bytes is too small "
				       "for plugin ABI %u.%u",
				       (unsigned)d->size,
				       (unsigned)d->abi_major,
				       (unsigned)d->abi_minor);
	if (d->kind < TM_PLUGIN_FRONTEND || d->kind >= TM_PLUGIN_KIND_COUNT)
		return tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				       "unknown plugin kind %d (expected "
				       "frontend, observer, transform or "
				       "emitter)", (int)d->kind);
	if (!valid_name(d->name))
		return tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				       "plugin name '%s' is not valid (use "
				       "a-z, 0-9 and _)",
				       d->name ? d->name : "(null)");
	if (strcmp(d->name, stem) != 0)
		return tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				       "declares the name '%s' but the file "
				       "is named %s.so; name the file after "
				       "the plugin", d->name, stem);
	tm_error_clear(&perr);
	if (tm_priv_params_check_spec(d->params, &perr))
		return tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
				       "plugin '%s': %s", d->name, perr.msg);
	return check_ops(d, path, err);
}

void
tm_priv_plugin_free(tm_plugin *p)
{
	if (!p)
		return;
	if (p->handle)
		dlclose(p->handle);
	free(p->path);
	free(p->name);
	free(p);
}

tm_plugin *
tm_priv_plugin_open(const char *path, tm_error *err)
{
	tm_plugin *p = calloc(1, sizeof *p);
	tm_plugin_init_fn init;
	struct stat sb;
	void *sym;

	if (!p) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	tm_error_clear(&p->error);
	/* dlopen searches the library path for a name without a slash. */
	p->path = strchr(path, '/') ? tm_priv_strdup(path, err)
				    : tm_priv_asprintf(err, "./%s", path);
	p->name = file_stem(path, err);
	if (!p->path || !p->name) {
		tm_priv_plugin_free(p);
		return NULL;
	}
	if (stat(p->path, &sb) != 0) {
		tm_error_set_at(&p->error, TM_ERR_NOT_FOUND, path, 0, 0,
				"cannot open plugin: %s", strerror(errno));
		goto fail;
	}
	p->dev = (unsigned long long)sb.st_dev;
	p->ino = (unsigned long long)sb.st_ino;
	p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
	if (!p->handle) {
		tm_error_set_at(&p->error, TM_ERR_IO, path, 0, 0,
				"cannot load plugin: %s (check its "
				"dependencies with 'ldd %s')", dlerror(),
				p->path);
		goto fail;
	}
	dlerror();
	sym = dlsym(p->handle, TM_PLUGIN_ENTRY);
	if (!sym) {
		tm_error_set_at(&p->error, TM_ERR_INVALID, path, 0, 0,
				"not a tmpipe plugin: no symbol "
				TM_PLUGIN_ENTRY " (define it with "
				"TM_PLUGIN_DEFINE)");
		goto fail;
	}
	/* POSIX guarantees a function pointer survives the round trip
	 * through void *; the memcpy keeps -Wpedantic quiet. */
	memcpy(&init, &sym, sizeof init);
	if (check_desc(init(), path, p->name, &p->error))
		goto fail;
	p->desc = init();
	return p;
fail:
	if (err && err->code == TM_OK)
		*err = p->error;
	return p;
}

tm_registry *
tm_registry_new(void)
{
	return calloc(1, sizeof(tm_registry));
}

void
tm_registry_free(tm_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		tm_priv_plugin_free(r->v[i]);
	free(r->v);
	tm_priv_strv_fini(&r->dirs);
	free(r);
}

static tm_plugin *
find_usable(const tm_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i]->desc && !r->v[i]->shadowed_by &&
		    strcmp(r->v[i]->name, name) == 0)
			return r->v[i];
	return NULL;
}

static tm_status
add_plugin(tm_registry *r, const char *path, int builtin, tm_error *err)
{
	tm_plugin **v, *p, *other;
	tm_error perr;

	tm_error_clear(&perr);
	p = tm_priv_plugin_open(path, &perr);
	if (!p)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	p->builtin_dir = builtin;
	v = realloc(r->v, (r->n + 1) * sizeof *v);
	if (!v) {
		tm_priv_plugin_free(p);
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	}
	r->v = v;
	r->v[r->n++] = p;
	/* The first entry of this name from an earlier search entry, usable
	 * or broken. */
	other = NULL;
	for (size_t i = 0; i + 1 < r->n && !other; i++)
		if (strcmp(r->v[i]->name, p->name) == 0 &&
		    !r->v[i]->shadowed_by && !r->v[i]->builtin_dir)
			other = r->v[i];
	if (!other)
		return TM_OK;
	if (builtin || (other->dev == p->dev && other->ino == p->ino))
		p->shadowed_by = other;	/* overridden, or the same file */
	else if (p->desc && other->desc) {
		other->duplicate = p;
		p->duplicate = other;
	} else {
		/* The first one found wins, broken or not, so a broken plugin
		 * you point at is reported instead of quietly replaced. */
		p->shadowed_by = other;
	}
	return TM_OK;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

tm_status
tm_registry_add(tm_registry *r, const char *path, int required,
		     int builtin, tm_error *err)
{
	struct stat sb;
	struct dirent *de;
	tm_strv files = { 0 };
	tm_status st = TM_OK;
	DIR *d;

	if (stat(path, &sb) != 0) {
		if (!required)
			return TM_OK;
		return tm_error_set_at(err, TM_ERR_NOT_FOUND, path, 0, 0,
				       "plugin path: %s", strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		return add_plugin(r, path, builtin, err);
	st = tm_priv_strv_push(&r->dirs, path, err);
	if (st)
		return st;
	d = opendir(path);
	if (!d) {
		if (!required)
			return TM_OK;
		return tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				       "plugin path: %s", strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char *full;

		if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0)
			continue;
		full = tm_priv_path_resolve(path, de->d_name, err);
		if (!full) {
			st = TM_ERR_NOMEM;
			break;
		}
		st = tm_priv_strv_push(&files, full, err);
		free(full);
		if (st)
			break;
	}
	closedir(d);
	/* readdir order is the file system's: sort for determinism. */
	if (files.n)
		qsort(files.v, files.n, sizeof *files.v, cmp_str);
	for (size_t i = 0; st == TM_OK && i < files.n; i++)
		st = add_plugin(r, files.v[i], builtin, err);
	tm_priv_strv_fini(&files);
	return st;
}

tm_status
tm_registry_scan(tm_registry *r, const char *const *given,
		      const tm_strv *config_paths, const char *builtin_dir,
		      tm_error *err)
{
	tm_strv env = { 0 };
	const char *e = getenv("TMPIPE_PLUGIN_PATH");
	tm_status st = TM_OK;

	for (; given && *given; given++) {
		st = tm_registry_add(r, *given, 1, 0, err);
		if (st)
			return st;
	}
	if (e && *e) {
		st = tm_priv_strv_push_split(&env, e, err);
		for (size_t i = 0; st == TM_OK && i < env.n; i++)
			st = tm_registry_add(r, env.v[i], 0, 0, err);
		tm_priv_strv_fini(&env);
		if (st)
			return st;
	}
	for (size_t i = 0; config_paths && i < config_paths->n; i++) {
		st = tm_registry_add(r, config_paths->v[i], 0, 0, err);
		if (st)
			return st;
	}
	if (builtin_dir)
		st = tm_registry_add(r, builtin_dir, 0, 1, err);
	return st;
}

tm_status
tm_registry_find(const tm_registry *r, const char *name,
		      tm_plugin_kind kind, const tm_plugin **out,
		      tm_error *err)
{
	const char *names[128];
	char list[1024];
	size_t n = 0, len = 0;
	const char *kname = kind ? tm_plugin_kind_name(kind) : "plugin";
	const char *sugg;
	tm_plugin *p = find_usable(r, name);

	*out = NULL;
	if (p && p->duplicate)
		return tm_error_set(err, TM_ERR_INVALID,
				    "%s '%s' is provided twice, by %s and by "
				    "%s; remove one or change the plugin "
				    "path", kname, name, p->path,
				    p->duplicate->path);
	if (p && kind && p->desc->kind != kind) {
		const char *is = tm_plugin_kind_name(p->desc->kind);

		return tm_error_set(err, TM_ERR_INVALID,
				    "'%s' (%s) is %s %s plugin, not %s %s",
				    name, p->path, tm_priv_article(is), is,
				    tm_priv_article(kname), kname);
	}
	if (p) {
		*out = p;
		return TM_OK;
	}
	/* A broken file of that name explains itself. */
	for (size_t i = 0; i < r->n; i++)
		if (!r->v[i]->desc && !r->v[i]->shadowed_by &&
		    strcmp(r->v[i]->name, name) == 0) {
			if (err && err->code == TM_OK)
				*err = r->v[i]->error;
			return r->v[i]->error.code;
		}
	list[0] = '\0';
	for (size_t i = 0; i < r->n && n < TM_ARRAY_LEN(names); i++) {
		tm_plugin *q = r->v[i];

		if (!q->desc || q->shadowed_by || (kind && q->desc->kind != kind))
			continue;
		names[n++] = q->name;
		if (len < sizeof list)
			len += (size_t)snprintf(list + len, sizeof list - len,
						"%s%s", n > 1 ? ", " : "",
						q->name);
	}
	sugg = tm_priv_suggest(name, names, n);
	if (n == 0)
		return tm_error_set(err, TM_ERR_NOT_FOUND,
				    "%s '%s' not found (no %s plugins in the "
				    "plugin path; see 'tmpipe plugins')",
				    kname, name, kname);
	if (sugg)
		return tm_error_set(err, TM_ERR_NOT_FOUND,
				    "%s '%s' not found; did you mean '%s'? "
				    "(available: %s)", kname, name, sugg, list);
	return tm_error_set(err, TM_ERR_NOT_FOUND,
			    "%s '%s' not found (available: %s)", kname, name,
			    list);
}
