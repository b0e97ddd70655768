/* tmpipe tests — the plugin loader and registry (core/loader.c).
 *
 * Each case copies the .so files it needs (fixtures from
 * $TMPIPE_FIXTURE_DIR, real plugins from $TMPIPE_PLUGIN_PATH) into fresh
 * folders of the temporary folder, so what a registry sees is exactly
 * what the case put there. Copies, not symlinks: the dynamic loader
 * treats two paths to one inode as one object. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "loader_priv.h"
#include "runner.h"
#include "util_priv.h"

/* $TMPIPE_PLUGIN_PATH as make check set it, kept before any case changes
 * the variable. */
static char real_plugin_dir[4096];

static const char *
fixture_dir(void)
{
	const char *d = getenv("TMPIPE_FIXTURE_DIR");

	return d && *d ? d : "tests/plugins/.libs";
}

/* "<tmpdir>/name" in buf. */
static const char *
tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tm_test_tmpdir(), name);
	return buf;
}

/* A new folder "<tmpdir>/name" (path in buf). */
static const char *
make_dir(char *buf, size_t size, const char *name)
{
	tmp_path(buf, size, name);
	CU_ASSERT(mkdir(buf, 0777) == 0 || errno == EEXIST);
	return buf;
}

static void
copy_file(const char *from, const char *to)
{
	char block[8192];
	FILE *in = fopen(from, "rb"), *out = NULL;
	size_t n;

	if (!in) {
		fprintf(stderr, "\ncannot read %s: %s\n", from,
			strerror(errno));
		CU_FAIL("fixture missing");
		return;
	}
	out = fopen(to, "wb");
	CU_ASSERT_PTR_NOT_NULL(out);
	while (out && (n = fread(block, 1, sizeof block, in)) > 0)
		CU_ASSERT(fwrite(block, 1, n, out) == n);
	fclose(in);
	if (out)
		CU_ASSERT(fclose(out) == 0);
}

/* Copies fixture so (e.g. "twin.so") into <tmpdir>/dir/; path in buf. */
static const char *
put_fixture(char *buf, size_t size, const char *dir, const char *so)
{
	char from[4096], d[4096];

	snprintf(from, sizeof from, "%s/%s", fixture_dir(), so);
	make_dir(d, sizeof d, dir);
	snprintf(buf, size, "%s/%s", d, so);
	copy_file(from, buf);
	return buf;
}

/* The same for a real plugin of the build tree. */
static const char *
put_real(char *buf, size_t size, const char *dir, const char *so)
{
	char from[4096], d[4096];

	snprintf(from, sizeof from, "%s/%s", real_plugin_dir, so);
	make_dir(d, sizeof d, dir);
	snprintf(buf, size, "%s/%s", d, so);
	copy_file(from, buf);
	return buf;
}

/* A registry of exactly the folders given (no environment, no built-in
 * folder). */
static tm_registry *
registry_of(const char *const *dirs, tm_error *err)
{
	tm_registry *r = tm_registry_new();

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return NULL;
	for (; *dirs; dirs++)
		CU_ASSERT_EQUAL(tm_registry_add(r, *dirs, 1, 0, err), TM_OK);
	return r;
}

/* --- single files ------------------------------------------------------- */

static void
test_wrong_abi(void)
{
	char so[4096], want[8192];
	tm_error err;
	tm_plugin *p;

	put_fixture(so, sizeof so, "abi", "bad_abi.so");
	tm_error_clear(&err);
	p = tm_priv_plugin_open(so, &err);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_EQUAL(err.code, TM_ERR_ABI);
	snprintf(want, sizeof want,
		 "%s: built for plugin ABI %d.0, this tmpipe provides %d.%d; "
		 "rebuild it against the headers of this tmpipe",
		 so, TM_PLUGIN_ABI_MAJOR + 1, TM_PLUGIN_ABI_MAJOR,
		 TM_PLUGIN_ABI_MINOR);
	CHECK_ERR(&err, want);
	/* With ABI 1.0 today the versions read exactly so. */
	if (TM_PLUGIN_ABI_MAJOR == 1 && TM_PLUGIN_ABI_MINOR == 0)
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg,
			"built for plugin ABI 2.0, this tmpipe provides 1.0; "
			"rebuild it against the headers of this tmpipe"));
	if (p) {
		/* Kept for listing: named after the file, with its error. */
		CU_ASSERT_PTR_NULL(p->desc);
		CHECK_STR(p->name, "bad_abi");
		CHECK_STR(p->path, so);
		CU_ASSERT_EQUAL(p->error.code, TM_ERR_ABI);
		CHECK_STR(p->error.msg, err.msg);
	}
	tm_priv_plugin_free(p);
}

static void
test_no_entry(void)
{
	char so[4096], want[8192];
	tm_error err;
	tm_plugin *p;

	put_fixture(so, sizeof so, "noentry", "no_entry.so");
	tm_error_clear(&err);
	p = tm_priv_plugin_open(so, &err);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_EQUAL(err.code, TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s: not a tmpipe plugin: no symbol tmpipe_plugin_init "
		 "(define it with TM_PLUGIN_DEFINE)", so);
	CHECK_ERR(&err, want);
	if (p) {
		CU_ASSERT_PTR_NULL(p->desc);
		CHECK_STR(p->name, "no_entry");
	}
	tm_priv_plugin_free(p);
}

static void
test_name_mismatch(void)
{
	char so[4096], want[8192];
	tm_error err;
	tm_plugin *p;

	put_fixture(so, sizeof so, "mismatch", "name_mismatch.so");
	tm_error_clear(&err);
	p = tm_priv_plugin_open(so, &err);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_EQUAL(err.code, TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s: declares the name 'minmax' but the file is named "
		 "name_mismatch.so; name the file after the plugin", so);
	CHECK_ERR(&err, want);
	if (p) {
		CU_ASSERT_PTR_NULL(p->desc);
		CHECK_STR(p->name, "name_mismatch");
	}
	tm_priv_plugin_free(p);
}

static void
test_open_missing_file(void)
{
	char so[4096], want[8192];
	tm_error err;
	tm_plugin *p;

	tmp_path(so, sizeof so, "nowhere.so");
	tm_error_clear(&err);
	p = tm_priv_plugin_open(so, &err);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_EQUAL(err.code, TM_ERR_NOT_FOUND);
	snprintf(want, sizeof want,
		 "%s: cannot open plugin: No such file or directory", so);
	CHECK_ERR(&err, want);
	if (p)
		CU_ASSERT_PTR_NULL(p->desc);
	tm_priv_plugin_free(p);
}

static void
test_valid_fixture(void)
{
	char so[4096];
	tm_error err;
	tm_plugin *p;

	put_fixture(so, sizeof so, "valid", "twin.so");
	tm_error_clear(&err);
	p = tm_priv_plugin_open(so, &err);
	CU_ASSERT_PTR_NOT_NULL(p);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CHECK_STR(err.msg, "");
	if (p) {
		CU_ASSERT_PTR_NOT_NULL(p->handle);
		CU_ASSERT_PTR_NOT_NULL(p->desc);
		CU_ASSERT_EQUAL(p->error.code, TM_OK);
		if (p->desc) {
			CU_ASSERT_EQUAL(p->desc->kind, TM_PLUGIN_OBSERVER);
			CHECK_STR(p->desc->name, "twin");
			CHECK_STR(p->desc->version, "1.0");
			CU_ASSERT_EQUAL(p->desc->abi_major,
					TM_PLUGIN_ABI_MAJOR);
		}
	}
	tm_priv_plugin_free(p);
}

/* A bare file name is opened from the current folder, not searched for
 * in the library path as dlopen would. */
static void
test_relative_name(void)
{
	char so[4096], cwd[4096], dir[4096];
	tm_error err;
	tm_plugin *p;

	put_fixture(so, sizeof so, "relative", "twin.so");
	tmp_path(dir, sizeof dir, "relative");
	CU_ASSERT_PTR_NOT_NULL(getcwd(cwd, sizeof cwd));
	CU_ASSERT_EQUAL(chdir(dir), 0);
	tm_error_clear(&err);
	p = tm_priv_plugin_open("twin.so", &err);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p) {
		CU_ASSERT_PTR_NOT_NULL(p->desc);
		CHECK_STR(p->path, "./twin.so");
		CHECK_STR(p->name, "twin");
	}
	tm_priv_plugin_free(p);

	/* An error names the file as the user wrote it. */
	tm_error_clear(&err);
	p = tm_priv_plugin_open("libm.so.6.so", &err);
	CU_ASSERT_EQUAL(err.code, TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, "libm.so.6.so: cannot open plugin: No such file or "
			"directory");
	tm_priv_plugin_free(p);
	CU_ASSERT_EQUAL(chdir(cwd), 0);
}

/* --- registry: paths ---------------------------------------------------- */

static void
test_missing_paths(void)
{
	char missing[4096], want[8192];
	const char *given[2];
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	tmp_path(missing, sizeof missing, "no-such-folder");

	/* Not required (an environment or config entry): skipped. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_add(r, missing, 0, 0, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(r->n, 0);
	CU_ASSERT_EQUAL(r->dirs.n, 0);

	/* Required (given on the command line): an error naming it. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_add(r, missing, 1, 0, &err),
			TM_ERR_NOT_FOUND);
	snprintf(want, sizeof want,
		 "%s: plugin path: No such file or directory", missing);
	CHECK_ERR(&err, want);

	/* A single .so file given explicitly is required the same way. */
	tmp_path(missing, sizeof missing, "nowhere/kl.so");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_add(r, missing, 1, 0, &err),
			TM_ERR_NOT_FOUND);
	snprintf(want, sizeof want,
		 "%s: plugin path: No such file or directory", missing);
	CHECK_ERR(&err, want);
	CU_ASSERT_EQUAL(r->n, 0);

	/* tm_registry_scan: given entries are required, the environment
	 * and the built-in folder are not. */
	given[0] = missing;
	given[1] = NULL;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, NULL, &err),
			TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, want);

	setenv("TMPIPE_PLUGIN_PATH", missing, 1);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, NULL, NULL, missing, &err),
			TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(r->n, 0);
	unsetenv("TMPIPE_PLUGIN_PATH");
	tm_registry_free(r);
}

static void
test_single_file_entry(void)
{
	char so[4096];
	const tm_plugin *p = NULL;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	put_fixture(so, sizeof so, "single", "twin.so");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_add(r, so, 1, 0, &err), TM_OK);
	CU_ASSERT_EQUAL(r->n, 1);
	/* A file is not a searched folder. */
	CU_ASSERT_EQUAL(r->dirs.n, 0);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p)
		CHECK_STR(p->path, so);
	tm_registry_free(r);
}

static void
test_broken_by_name(void)
{
	char dir[4096], so_abi[4096], so_entry[4096], so_twin[4096],
		want[8192];
	const char *dirs[] = { dir, NULL };
	const tm_plugin *p = (const tm_plugin *)1;
	tm_registry *r;
	tm_error err;

	put_fixture(so_abi, sizeof so_abi, "broken", "bad_abi.so");
	put_fixture(so_entry, sizeof so_entry, "broken", "no_entry.so");
	put_fixture(so_twin, sizeof so_twin, "broken", "twin.so");
	tmp_path(dir, sizeof dir, "broken");

	/* Broken files do not stop the scan: they are kept, in name
	 * order, for listing and for explaining themselves. */
	tm_error_clear(&err);
	r = registry_of(dirs, &err);
	if (!r)
		return;
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(r->n, 3);
	if (r->n == 3) {
		CHECK_STR(r->v[0]->name, "bad_abi");
		CU_ASSERT_PTR_NULL(r->v[0]->desc);
		CHECK_STR(r->v[1]->name, "no_entry");
		CU_ASSERT_PTR_NULL(r->v[1]->desc);
		CHECK_STR(r->v[2]->name, "twin");
		CU_ASSERT_PTR_NOT_NULL(r->v[2]->desc);
	}
	CU_ASSERT_EQUAL(r->dirs.n, 1);
	if (r->dirs.n == 1)
		CHECK_STR(r->dirs.v[0], dir);

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "bad_abi", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_ABI);
	CU_ASSERT_PTR_NULL(p);
	snprintf(want, sizeof want,
		 "%s: built for plugin ABI %d.0, this tmpipe provides %d.%d; "
		 "rebuild it against the headers of this tmpipe",
		 so_abi, TM_PLUGIN_ABI_MAJOR + 1, TM_PLUGIN_ABI_MAJOR,
		 TM_PLUGIN_ABI_MINOR);
	CHECK_ERR(&err, want);

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "no_entry", 0, &p, &err),
			TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s: not a tmpipe plugin: no symbol tmpipe_plugin_init "
		 "(define it with TM_PLUGIN_DEFINE)", so_entry);
	CHECK_ERR(&err, want);

	/* The usable plugin next to them still works. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	tm_registry_free(r);
}

static void
test_name_mismatch_in_registry(void)
{
	char dir[4096], so[4096], want[8192];
	const char *dirs[] = { dir, NULL };
	const tm_plugin *p;
	tm_registry *r;
	tm_error err;

	put_fixture(so, sizeof so, "mismatch_reg", "name_mismatch.so");
	tmp_path(dir, sizeof dir, "mismatch_reg");
	tm_error_clear(&err);
	r = registry_of(dirs, &err);
	if (!r)
		return;
	/* The file's name is what the user asks for... */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "name_mismatch", 0, &p, &err),
			TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "%s: declares the name 'minmax' but the file is named "
		 "name_mismatch.so; name the file after the plugin", so);
	CHECK_ERR(&err, want);
	/* ...and the name it declares does not make it a minmax. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "minmax", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, "observer 'minmax' not found (no observer plugins in "
			"the plugin path; see 'tmpipe plugins')");
	tm_registry_free(r);
}

static void
test_duplicate(void)
{
	char d1[4096], d2[4096], so1[4096], so2[4096], want[8192];
	const char *given[] = { d1, d2, NULL };
	const tm_plugin *p = (const tm_plugin *)1;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	put_fixture(so1, sizeof so1, "dup1", "twin.so");
	put_fixture(so2, sizeof so2, "dup2", "twin.so");
	tmp_path(d1, sizeof d1, "dup1");
	tmp_path(d2, sizeof d2, "dup2");
	unsetenv("TMPIPE_PLUGIN_PATH");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(r->n, 2);
	CU_ASSERT_EQUAL(r->dirs.n, 2);
	if (r->dirs.n == 2) {
		CHECK_STR(r->dirs.v[0], d1);
		CHECK_STR(r->dirs.v[1], d2);
	}
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_INVALID);
	CU_ASSERT_PTR_NULL(p);
	snprintf(want, sizeof want,
		 "observer 'twin' is provided twice, by %s and by %s; remove "
		 "one or change the plugin path", so1, so2);
	CHECK_ERR(&err, want);
	tm_registry_free(r);
}

static void
test_same_file_twice(void)
{
	char d1[4096], so[4096];
	const char *given[] = { d1, d1, NULL };
	const tm_plugin *p = NULL;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	put_fixture(so, sizeof so, "same", "twin.so");
	tmp_path(d1, sizeof d1, "same");
	unsetenv("TMPIPE_PLUGIN_PATH");
	/* One folder named twice is not a duplicate plugin. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(r->n, 2);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (r->n == 2) {
		CU_ASSERT_PTR_EQUAL(p, r->v[0]);
		CU_ASSERT_PTR_EQUAL(r->v[1]->shadowed_by, r->v[0]);
	}
	tm_registry_free(r);
}

static void
test_shadowing(void)
{
	char given_dir[4096], builtin[4096], so_given[4096], so_builtin[4096];
	const char *given[] = { given_dir, NULL };
	const tm_plugin *p = NULL;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	put_fixture(so_given, sizeof so_given, "shadow_given", "twin.so");
	put_fixture(so_builtin, sizeof so_builtin, "shadow_builtin",
		    "twin.so");
	tmp_path(given_dir, sizeof given_dir, "shadow_given");
	tmp_path(builtin, sizeof builtin, "shadow_builtin");
	unsetenv("TMPIPE_PLUGIN_PATH");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, builtin, &err),
			TM_OK);
	CU_ASSERT_EQUAL(r->n, 2);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p)
		CHECK_STR(p->path, so_given);
	if (r->n == 2) {
		CU_ASSERT_EQUAL(r->v[0]->builtin_dir, 0);
		CU_ASSERT_EQUAL(r->v[1]->builtin_dir, 1);
		CU_ASSERT_PTR_EQUAL(r->v[1]->shadowed_by, r->v[0]);
		CU_ASSERT_PTR_NULL(r->v[0]->duplicate);
		CU_ASSERT_PTR_NULL(r->v[1]->duplicate);
	}
	tm_registry_free(r);
}

/* One folder reached through two spellings is one plugin, not two. */
static void
test_same_file_two_spellings(void)
{
	char d1[4096], dot[4200], link[4096], so[4096];
	const char *given[] = { d1, dot, link, NULL };
	const tm_plugin *p = NULL;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	put_fixture(so, sizeof so, "spell", "twin.so");
	tmp_path(d1, sizeof d1, "spell");
	snprintf(dot, sizeof dot, "%s/.", d1);
	tmp_path(link, sizeof link, "spell-link");
	CU_ASSERT_EQUAL(symlink(d1, link), 0);
	unsetenv("TMPIPE_PLUGIN_PATH");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, NULL, &err), TM_OK);
	CU_ASSERT_EQUAL(r->n, 3);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	if (r->n == 3) {
		CU_ASSERT_PTR_EQUAL(p, r->v[0]);
		CU_ASSERT_PTR_EQUAL(r->v[1]->shadowed_by, r->v[0]);
		CU_ASSERT_PTR_EQUAL(r->v[2]->shadowed_by, r->v[0]);
		CU_ASSERT_PTR_NULL(r->v[0]->duplicate);
	}
	tm_registry_free(r);
}

/* A broken plugin you point at is reported, not quietly replaced by a
 * later one of the same name. */
static void
test_broken_first_wins(void)
{
	char broken_dir[4096], env_dir[4096], builtin[4096], from[4096],
		so_broken[4096], so[4096], want[8192];
	const char *given[] = { broken_dir, NULL };
	const tm_plugin *p = (const tm_plugin *)1;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	/* bad_abi.so saved as twin.so: a broken "twin". */
	make_dir(broken_dir, sizeof broken_dir, "first_broken");
	snprintf(from, sizeof from, "%s/bad_abi.so", fixture_dir());
	snprintf(so_broken, sizeof so_broken, "%s/twin.so", broken_dir);
	copy_file(from, so_broken);
	put_fixture(so, sizeof so, "first_env", "twin.so");
	put_fixture(so, sizeof so, "first_builtin", "twin.so");
	tmp_path(env_dir, sizeof env_dir, "first_env");
	tmp_path(builtin, sizeof builtin, "first_builtin");
	setenv("TMPIPE_PLUGIN_PATH", env_dir, 1);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, builtin, &err), TM_OK);
	unsetenv("TMPIPE_PLUGIN_PATH");
	CU_ASSERT_EQUAL(r->n, 3);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_ABI);
	CU_ASSERT_PTR_NULL(p);
	snprintf(want, sizeof want,
		 "%s: built for plugin ABI %d.0, this tmpipe provides %d.%d; "
		 "rebuild it against the headers of this tmpipe",
		 so_broken, TM_PLUGIN_ABI_MAJOR + 1, TM_PLUGIN_ABI_MAJOR,
		 TM_PLUGIN_ABI_MINOR);
	CHECK_ERR(&err, want);
	/* Not a duplicate either: the later ones are simply not used. */
	if (r->n == 3) {
		CU_ASSERT_PTR_EQUAL(r->v[1]->shadowed_by, r->v[0]);
		CU_ASSERT_PTR_EQUAL(r->v[2]->shadowed_by, r->v[0]);
		CU_ASSERT_PTR_NULL(r->v[1]->duplicate);
	}
	tm_registry_free(r);
}

/* The other way round: a working plugin you point at wins over a broken
 * one found later, in the environment or the built-in folder. */
static void
test_broken_later_ignored(void)
{
	char given_dir[4096], env_dir[4096], builtin[4096], from[4096],
		so_given[4096], so[4096];
	const char *given[] = { given_dir, NULL };
	const tm_plugin *p = NULL;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	put_fixture(so_given, sizeof so_given, "later_given", "twin.so");
	tmp_path(given_dir, sizeof given_dir, "later_given");
	snprintf(from, sizeof from, "%s/bad_abi.so", fixture_dir());
	make_dir(env_dir, sizeof env_dir, "later_env");
	snprintf(so, sizeof so, "%s/twin.so", env_dir);
	copy_file(from, so);
	make_dir(builtin, sizeof builtin, "later_builtin");
	snprintf(so, sizeof so, "%s/twin.so", builtin);
	copy_file(from, so);
	setenv("TMPIPE_PLUGIN_PATH", env_dir, 1);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, builtin, &err), TM_OK);
	unsetenv("TMPIPE_PLUGIN_PATH");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p)
		CHECK_STR(p->path, so_given);
	tm_registry_free(r);
}

/* $TMPIPE_PLUGIN_PATH comes after the given folders and before the
 * built-in one. */
static void
test_env_path(void)
{
	char env_dir[4096], builtin[4096], given_dir[4096], so_env[4096],
		so[4096], want[8192];
	const char *given[] = { given_dir, NULL };
	const tm_plugin *p = NULL;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	put_fixture(so_env, sizeof so_env, "env_dir", "twin.so");
	put_fixture(so, sizeof so, "env_builtin", "twin.so");
	tmp_path(env_dir, sizeof env_dir, "env_dir");
	tmp_path(builtin, sizeof builtin, "env_builtin");

	/* The environment's plugin shadows the built-in one. */
	setenv("TMPIPE_PLUGIN_PATH", env_dir, 1);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, NULL, NULL, builtin, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p)
		CHECK_STR(p->path, so_env);
	tm_registry_free(r);

	/* A given folder and the environment both provide it: neither is
	 * used. */
	r = tm_registry_new();
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r) {
		unsetenv("TMPIPE_PLUGIN_PATH");
		return;
	}
	put_fixture(so, sizeof so, "env_given", "twin.so");
	tmp_path(given_dir, sizeof given_dir, "env_given");
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, given, NULL, NULL, &err), TM_OK);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_INVALID);
	snprintf(want, sizeof want,
		 "observer 'twin' is provided twice, by %s and by %s; remove "
		 "one or change the plugin path", so, so_env);
	CHECK_ERR(&err, want);
	unsetenv("TMPIPE_PLUGIN_PATH");
	tm_registry_free(r);
}

/* --- registry: lookups -------------------------------------------------- */

static void
test_real_plugins(void)
{
	const tm_plugin *p = NULL;
	tm_registry *r = tm_registry_new();
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	setenv("TMPIPE_PLUGIN_PATH", real_plugin_dir, 1);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_scan(r, NULL, NULL, NULL, &err), TM_OK);
	unsetenv("TMPIPE_PLUGIN_PATH");
	/* Every plugin the tree builds loads and passes every check. */
	CU_ASSERT(r->n >= 3);
	for (size_t i = 0; i < r->n; i++) {
		if (!r->v[i]->desc) {
			char buf[4096];

			fprintf(stderr, "\n%s\n",
				tm_error_format(&r->v[i]->error, buf,
						sizeof buf));
		}
		CU_ASSERT_PTR_NOT_NULL(r->v[i]->desc);
	}
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "npy", TM_PLUGIN_FRONTEND, &p,
					 &err), TM_OK);
	CU_ASSERT(p && p->desc->kind == TM_PLUGIN_FRONTEND);
	CU_ASSERT_EQUAL(tm_registry_find(r, "minmax", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_OK);
	CU_ASSERT(p && p->desc->kind == TM_PLUGIN_OBSERVER);
	CU_ASSERT_EQUAL(tm_registry_find(r, "c_header", TM_PLUGIN_EMITTER, &p,
					 &err), TM_OK);
	CU_ASSERT(p && p->desc->kind == TM_PLUGIN_EMITTER);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	tm_registry_free(r);
}

static void
test_not_found(void)
{
	char dir[4096], so[4096];
	const char *dirs[] = { dir, NULL };
	const tm_plugin *p = (const tm_plugin *)1;
	tm_registry *r;
	tm_error err;

	put_real(so, sizeof so, "lookup", "minmax.so");
	put_real(so, sizeof so, "lookup", "c_header.so");
	put_fixture(so, sizeof so, "lookup", "twin.so");
	put_fixture(so, sizeof so, "lookup", "bad_abi.so");
	tmp_path(dir, sizeof dir, "lookup");
	tm_error_clear(&err);
	r = registry_of(dirs, &err);
	if (!r)
		return;

	/* A close name gets a suggestion; the list holds the usable
	 * plugins of the kind asked for, not broken ones. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "minmx", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_NOT_FOUND);
	CU_ASSERT_PTR_NULL(p);
	CHECK_ERR(&err, "observer 'minmx' not found; did you mean 'minmax'? "
			"(available: minmax, twin)");

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "kll", TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, "observer 'kll' not found (available: minmax, twin)");

	/* Kind 0: any kind is listed. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "c_headr", 0, &p, &err),
			TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, "plugin 'c_headr' not found; did you mean "
			"'c_header'? (available: c_header, minmax, twin)");

	/* No plugin of the kind at all. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "fold_bn", TM_PLUGIN_TRANSFORM, &p,
					 &err), TM_ERR_NOT_FOUND);
	CHECK_ERR(&err, "transform 'fold_bn' not found (no transform plugins "
			"in the plugin path; see 'tmpipe plugins')");
	tm_registry_free(r);
}

static void
test_kind_any(void)
{
	char dir[4096], so[4096], so_ch[4096], want[8192];
	const char *dirs[] = { dir, NULL };
	const tm_plugin *p = NULL;
	tm_registry *r;
	tm_error err;

	put_real(so_ch, sizeof so_ch, "anykind", "c_header.so");
	put_fixture(so, sizeof so, "anykind", "twin.so");
	tmp_path(dir, sizeof dir, "anykind");
	tm_error_clear(&err);
	r = registry_of(dirs, &err);
	if (!r)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, "c_header", 0, &p, &err), TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p) {
		CU_ASSERT_EQUAL(p->desc->kind, TM_PLUGIN_EMITTER);
		CHECK_STR(p->path, so_ch);
	}
	p = NULL;
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", 0, &p, &err), TM_OK);
	CU_ASSERT_PTR_NOT_NULL(p);
	if (p)
		CU_ASSERT_EQUAL(p->desc->kind, TM_PLUGIN_OBSERVER);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	/* A named kind is checked ("a" before a consonant). */
	CU_ASSERT_EQUAL(tm_registry_find(r, "twin", TM_PLUGIN_FRONTEND, &p,
					 &err), TM_ERR_INVALID);
	CU_ASSERT_PTR_NULL(p);
	snprintf(want, sizeof want,
		 "'twin' (%s) is an observer plugin, not a frontend", so);
	CHECK_ERR(&err, want);
	tm_registry_free(r);
}

/* Asking for a plugin as the wrong kind; the message uses the right
 * article ("an emitter", "an observer"). */
static void
check_wrong_kind(const char *dirname, const char *fixture, int real,
		 const char *name)
{
	char dir[4096], so[4096], want[8192];
	const char *dirs[] = { dir, NULL };
	const tm_plugin *p = (const tm_plugin *)1;
	tm_registry *r;
	tm_error err;

	if (real)
		put_real(so, sizeof so, dirname, fixture);
	else
		put_fixture(so, sizeof so, dirname, fixture);
	tmp_path(dir, sizeof dir, dirname);
	tm_error_clear(&err);
	r = registry_of(dirs, &err);
	if (!r)
		return;
	CU_ASSERT_EQUAL(r->n, 1);
	if (r->n == 1 && !r->v[0]->desc) {
		char buf[4096];

		fprintf(stderr, "\n%s did not load: %s\n", fixture,
			tm_error_format(&r->v[0]->error, buf, sizeof buf));
		CU_FAIL("the wrong-kind plugin must load");
	}
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_registry_find(r, name, TM_PLUGIN_OBSERVER, &p,
					 &err), TM_ERR_INVALID);
	CU_ASSERT_PTR_NULL(p);
	snprintf(want, sizeof want,
		 "'%s' (%s) is an emitter plugin, not an observer", name, so);
	CHECK_ERR(&err, want);
	tm_registry_free(r);
}

static void
test_wrong_kind(void)
{
	check_wrong_kind("kind_fixture", "wrong_kind.so", 0, "wrong_kind");
}

static void
test_wrong_kind_real(void)
{
	check_wrong_kind("kind_real", "c_header.so", 1, "c_header");
}

static void
test_kind_names(void)
{
	CHECK_STR(tm_plugin_kind_name(TM_PLUGIN_FRONTEND), "frontend");
	CHECK_STR(tm_plugin_kind_name(TM_PLUGIN_OBSERVER), "observer");
	CHECK_STR(tm_plugin_kind_name(TM_PLUGIN_TRANSFORM), "transform");
	CHECK_STR(tm_plugin_kind_name(TM_PLUGIN_EMITTER), "emitter");
	CHECK_STR(tm_plugin_kind_name(TM_PLUGIN_KIND_COUNT), "unknown");
	CHECK_STR(tm_plugin_kind_name((tm_plugin_kind)0), "unknown");
}

static void
test_free_null(void)
{
	tm_registry_free(NULL);
	tm_priv_plugin_free(NULL);
	CU_PASS("NULL-safe");
}

static const tm_test_case cases[] = {
	{ "wrong ABI names the file and both versions", test_wrong_abi },
	{ "no entry symbol", test_no_entry },
	{ "declared name differs from the file", test_name_mismatch },
	{ "opening a missing file", test_open_missing_file },
	{ "a valid fixture loads", test_valid_fixture },
	{ "a bare file name is opened from here", test_relative_name },
	{ "missing paths: required vs skipped", test_missing_paths },
	{ "a single .so as a path entry", test_single_file_entry },
	{ "a broken plugin asked by name explains itself",
	  test_broken_by_name },
	{ "name mismatch in a registry", test_name_mismatch_in_registry },
	{ "same name in two given folders", test_duplicate },
	{ "same folder given twice", test_same_file_twice },
	{ "given folder shadows the built-in one", test_shadowing },
	{ "one folder, two spellings", test_same_file_two_spellings },
	{ "a broken plugin pointed at wins", test_broken_first_wins },
	{ "a later broken plugin is ignored", test_broken_later_ignored },
	{ "TMPIPE_PLUGIN_PATH order", test_env_path },
	{ "the real plugins load", test_real_plugins },
	{ "unknown names: suggestion and list", test_not_found },
	{ "kind 0 matches any kind", test_kind_any },
	{ "wrong kind (fixture)", test_wrong_kind },
	{ "wrong kind (c_header)", test_wrong_kind_real },
	{ "kind names", test_kind_names },
	{ "free functions are NULL-safe", test_free_null },
	{ NULL, NULL }
};

int
main(void)
{
	const char *e = getenv("TMPIPE_PLUGIN_PATH");

	snprintf(real_plugin_dir, sizeof real_plugin_dir, "%s",
		 e && *e ? e : "plugins/.libs");
	/* No case may see a plugin it did not put there. */
	unsetenv("TMPIPE_PLUGIN_PATH");
	if (tm_test_add_suite("loader", cases))
		return 99;
	return tm_test_run();
}
