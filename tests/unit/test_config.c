/* tmpipe tests — the INI configuration (core/config.c) and the shared
 * helpers it stands on (core/util.c). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "config_priv.h"
#include "runner.h"
#include "util_priv.h"

/* Debian's inih reads lines into a 200-byte buffer (DESIGN.md): a line
 * holds at most 198 bytes of text besides its line break. */
#define INIH_MAX_LINE 200
#define LINE_TEXT_MAX (INIH_MAX_LINE - 2)

/* "<tmpdir>/name" in buf. */
static const char *
tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tm_test_tmpdir(), name);
	return buf;
}

/* mkdir -p for a folder under the temporary folder. */
static void
make_dirs(const char *name)
{
	char path[4096];
	char *slash;

	tmp_path(path, sizeof path, name);
	for (slash = path + strlen(tm_test_tmpdir()) + 1;
	     (slash = strchr(slash, '/')) != NULL; slash++) {
		*slash = '\0';
		CU_ASSERT(mkdir(path, 0777) == 0 || errno == EEXIST);
		*slash = '/';
	}
	CU_ASSERT(mkdir(path, 0777) == 0 || errno == EEXIST);
}

/* Writes a fixture into the temporary folder; returns its path in buf. */
static const char *
fixture(char *buf, size_t size, const char *name, const char *text)
{
	tmp_path(buf, size, name);
	tm_test_write_file(buf, text);
	return buf;
}

/* NULL unsets. */
static void
set_env(const char *name, const char *value)
{
	int rc = value ? setenv(name, value, 1) : unsetenv(name);

	CU_ASSERT_EQUAL(rc, 0);
}

/* A config that is not the default, to show that a failed load leaves
 * it alone. */
static void
config_prepared(tm_config *c)
{
	tm_error err;

	tm_error_clear(&err);
	tm_config_init(c);
	c->threads = 7;
	c->log_level = TM_LOG_DEBUG;
	CU_ASSERT_EQUAL(tm_priv_strv_push(&c->plugin_paths, "/keep", &err),
			TM_OK);
	CU_ASSERT_EQUAL(tm_priv_strv_push(&c->files, "/before.conf", &err),
			TM_OK);
}

static void
check_prepared(const tm_config *c)
{
	CU_ASSERT_EQUAL(c->threads, 7);
	CU_ASSERT_EQUAL(c->log_level, TM_LOG_DEBUG);
	CU_ASSERT_EQUAL(c->plugin_paths.n, 1);
	if (c->plugin_paths.n == 1)
		CHECK_STR(c->plugin_paths.v[0], "/keep");
	CU_ASSERT_EQUAL(c->files.n, 1);
	if (c->files.n == 1)
		CHECK_STR(c->files.v[0], "/before.conf");
}

/* Loads text as the file name and checks the one-line message exactly
 * ("<path>:<line>: msg", or "<path>: msg" for line 0), its code and
 * that the config was not touched. */
static void
check_error_at(const char *name, const char *text, tm_status code,
	       unsigned line, const char *msg)
{
	char path[4096], want[8192], got[8192];
	tm_config c;
	tm_error err;

	fixture(path, sizeof path, name, text);
	config_prepared(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, path, &err), code);
	CU_ASSERT_EQUAL(err.code, code);
	CU_ASSERT_EQUAL(err.line, line);
	CU_ASSERT_EQUAL(err.col, 0);
	CHECK_STR(err.file, path);
	if (line)
		snprintf(want, sizeof want, "%s:%u: %s", path, line, msg);
	else
		snprintf(want, sizeof want, "%s: %s", path, msg);
	CHECK_STR(tm_error_format(&err, got, sizeof got), want);
	check_prepared(&c);
	tm_config_fini(&c);
}

/* Loads text into a fresh default config; the caller checks and fini's. */
static void
load_ok(tm_config *c, const char *name, const char *text)
{
	char path[4096], msg[8192];
	tm_error err;

	fixture(path, sizeof path, name, text);
	tm_config_init(c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_file(c, path, &err), TM_OK);
	if (err.code != TM_OK)
		fprintf(stderr, "\nunexpected: %s\n",
			tm_error_format(&err, msg, sizeof msg));
	CU_ASSERT_EQUAL(c->files.n, 1);
	if (c->files.n == 1)
		CHECK_STR(c->files.v[0], path);
}

static void
check_paths(const tm_config *c, const char *const *want, size_t n)
{
	size_t i;

	CU_ASSERT_EQUAL(c->plugin_paths.n, n);
	for (i = 0; i < n && i < c->plugin_paths.n; i++)
		CHECK_STR(c->plugin_paths.v[i], want[i]);
}

static int
online_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

/* --- suite "config" ----------------------------------------------------- */

static void
test_defaults(void)
{
	tm_config c;

	tm_config_init(&c);
	CU_ASSERT_EQUAL(c.plugin_paths.n, 0);
	CU_ASSERT_EQUAL(c.files.n, 0);
	CU_ASSERT_EQUAL(c.threads, 1);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_INFO);
	tm_config_fini(&c);
	/* fini leaves a usable default config, and is safe to repeat. */
	CU_ASSERT_EQUAL(c.threads, 1);
	tm_config_fini(&c);
	tm_config_fini(NULL);
	tm_config_init(NULL);
}

static void
test_empty_file(void)
{
	tm_config c;

	load_ok(&c, "empty.conf", "");
	CU_ASSERT_EQUAL(c.plugin_paths.n, 0);
	CU_ASSERT_EQUAL(c.threads, 1);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_INFO);
	tm_config_fini(&c);
}

static void
test_every_key(void)
{
	static const char *const want[] = { "/opt/a", "/opt/b", "/opt/c" };
	tm_config c;

	load_ok(&c, "every.conf",
		"[plugins]\n"
		"path = /opt/a:/opt/b::/opt/c:\n"
		"[run]\n"
		"threads = 8\n"
		"log_level = debug\n");
	check_paths(&c, want, TM_ARRAY_LEN(want));
	CU_ASSERT_EQUAL(c.threads, 8);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_DEBUG);
	tm_config_fini(&c);
}

static void
test_log_levels(void)
{
	static const struct {
		const char *name;
		tm_log_level level;
	} levels[] = {
		{ "quiet", TM_LOG_QUIET },
		{ "info", TM_LOG_INFO },
		{ "verbose", TM_LOG_VERBOSE },
		{ "debug", TM_LOG_DEBUG },
	};
	char text[64];
	size_t i;
	tm_config c;

	for (i = 0; i < TM_ARRAY_LEN(levels); i++) {
		CU_ASSERT_EQUAL(tm_priv_log_level_from_name(levels[i].name),
				(int)levels[i].level);
		snprintf(text, sizeof text, "[run]\nlog_level = %s\n",
			 levels[i].name);
		load_ok(&c, "level.conf", text);
		CU_ASSERT_EQUAL(c.log_level, levels[i].level);
		tm_config_fini(&c);
	}
	CU_ASSERT_EQUAL(tm_priv_log_level_from_name("loud"), -1);
	CU_ASSERT_EQUAL(tm_priv_log_level_from_name("Info"), -1);
	CU_ASSERT_EQUAL(tm_priv_log_level_from_name(""), -1);
	CU_ASSERT_EQUAL(tm_priv_log_level_from_name(NULL), -1);
}

static void
test_threads(void)
{
	tm_config c;

	load_ok(&c, "threads.conf", "[run]\nthreads = 256\n");
	CU_ASSERT_EQUAL(c.threads, 256);
	tm_config_fini(&c);

	load_ok(&c, "threads.conf", "[run]\nthreads = 0004\n");
	CU_ASSERT_EQUAL(c.threads, 4);
	tm_config_fini(&c);

	/* 0 means every online CPU, decided when the file is read. */
	load_ok(&c, "threads.conf", "[run]\nthreads = 0\n");
	CU_ASSERT_EQUAL(c.threads, online_threads());
	tm_config_fini(&c);
}

static void
test_repeated_key(void)
{
	tm_config c;

	load_ok(&c, "repeat.conf",
		"[run]\nthreads = 2\nlog_level = quiet\n"
		"[run]\nthreads = 3\n");
	CU_ASSERT_EQUAL(c.threads, 3);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_QUIET);
	tm_config_fini(&c);
}

static void
test_comments_and_blanks(void)
{
	tm_config c;

	load_ok(&c, "comments.conf",
		"; a comment\n"
		"# another comment\n"
		"\n"
		"   \n"
		"[run]   \n"
		"\t; an indented comment\n"
		"threads = 4 ; an inline comment\n"
		"  # an indented comment after a key is still a comment\n"
		"\n"
		"log_level=verbose\n"
		"; the end, without a final newline");
	CU_ASSERT_EQUAL(c.threads, 4);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_VERBOSE);
	tm_config_fini(&c);
}

static void
test_crlf_and_bom(void)
{
	tm_config c;

	load_ok(&c, "crlf.conf",
		"\xEF\xBB\xBF[run]\r\nthreads = 5\r\nlog_level = quiet\r\n");
	CU_ASSERT_EQUAL(c.threads, 5);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_QUIET);
	tm_config_fini(&c);
}

static void
test_path_relative(void)
{
	char want0[4096];
	const char *want[2];
	tm_config c;

	make_dirs("rel/sub");
	load_ok(&c, "rel/sub/tmpipe.conf",
		"[plugins]\npath = plugins:/abs\n");
	tmp_path(want0, sizeof want0, "rel/sub/plugins");
	want[0] = want0;
	want[1] = "/abs";
	check_paths(&c, want, 2);
	tm_config_fini(&c);
}

static void
test_path_continued(void)
{
	static const char *const want[] = { "/a", "/b", "/c", "/d", "/e" };
	static const char *const again[] = { "/x" };
	tm_config c;

	load_ok(&c, "cont.conf",
		"[plugins]\n"
		"path = /a:/b\n"
		"\t/c\n"
		"\t; a comment between the parts\n"
		"    /d:/e\n"
		"[run]\n"
		"threads = 2\n");
	check_paths(&c, want, TM_ARRAY_LEN(want));
	CU_ASSERT_EQUAL(c.threads, 2);
	tm_config_fini(&c);

	/* A second "path =" in the same file starts over. */
	load_ok(&c, "cont.conf",
		"[plugins]\npath = /a:/b\n  /c\npath = /x\n");
	check_paths(&c, again, TM_ARRAY_LEN(again));
	tm_config_fini(&c);
}

static void
test_path_longest_line(void)
{
	char text[1024], value[512], path[4096];
	const char *want[1];
	size_t len;
	tm_config c;
	tm_error err;

	/* "path = " and a value: exactly LINE_TEXT_MAX bytes, then with a
	 * CRLF ending, both taken whole. */
	len = LINE_TEXT_MAX - strlen("path = ");
	memset(value, 'p', len);
	value[0] = '/';
	value[len] = '\0';
	want[0] = value;
	snprintf(text, sizeof text, "[plugins]\npath = %s\n", value);
	load_ok(&c, "longest.conf", text);
	check_paths(&c, want, 1);
	tm_config_fini(&c);

	snprintf(text, sizeof text, "[plugins]\r\npath = %s\r\n", value);
	load_ok(&c, "longest.conf", text);
	check_paths(&c, want, 1);
	tm_config_fini(&c);

	/* One more byte is refused, not cut short. */
	snprintf(text, sizeof text, "[plugins]\npath = %sq\n[run]\n", value);
	fixture(path, sizeof path, "toolong.conf", text);
	tm_config_init(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, path, &err),
			TM_ERR_PARSE);
	CU_ASSERT_EQUAL(err.line, 2);
	CU_ASSERT_EQUAL(c.plugin_paths.n, 0);
	tm_config_fini(&c);
}

static void
test_later_file_replaces_path(void)
{
	static const char *const one[] = { "/one" };
	static const char *const three[] = { "/three", "/3" };
	char p1[4096], p2[4096], p3[4096], p4[4096];
	tm_config c;
	tm_error err;

	fixture(p1, sizeof p1, "r1.conf", "[plugins]\npath = /one\n");
	fixture(p2, sizeof p2, "r2.conf", "[run]\nthreads = 2\n");
	fixture(p3, sizeof p3, "r3.conf", "[plugins]\npath = /three:/3\n");
	fixture(p4, sizeof p4, "r4.conf", "[plugins]\npath =\n");
	tm_config_init(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, p1, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, p2, &err), TM_OK);
	check_paths(&c, one, TM_ARRAY_LEN(one));
	CU_ASSERT_EQUAL(c.threads, 2);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, p3, &err), TM_OK);
	check_paths(&c, three, TM_ARRAY_LEN(three));
	/* An empty path clears what earlier files said. */
	CU_ASSERT_EQUAL(tm_config_load_file(&c, p4, &err), TM_OK);
	CU_ASSERT_EQUAL(c.plugin_paths.n, 0);
	CU_ASSERT_EQUAL(c.files.n, 4);
	if (c.files.n == 4) {
		CHECK_STR(c.files.v[0], p1);
		CHECK_STR(c.files.v[3], p4);
	}
	CU_ASSERT_EQUAL(err.code, TM_OK);
	tm_config_fini(&c);
}

/* Every key in the installed file is commented out with its default:
 * the file as installed and with each key uncommented both leave the
 * defaults in place. */
static void
test_installed_file(void)
{
	char src[4096], path[4096], text[16384], out[16384];
	const char *line, *next, *k;
	size_t len, used = 0;
	tm_config c;
	tm_error err;
	FILE *fp;

	snprintf(src, sizeof src, "%s/../configs/tmpipe.conf",
		 tm_test_srcdir());
	fp = fopen(src, "r");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp) {
		fprintf(stderr, "\n%s: %s (is $srcdir set?)\n", src,
			strerror(errno));
		return;
	}
	len = fread(text, 1, sizeof text - 1, fp);
	fclose(fp);
	text[len] = '\0';

	for (line = text; *line; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : line + strlen(line);
		/* "# key = value" but not prose: a lower-case word, " =". */
		if (strncmp(line, "# ", 2) == 0) {
			k = line + 2;
			while (*k == '_' || (*k >= 'a' && *k <= 'z'))
				k++;
			if (k > line + 2 && strncmp(k, " =", 2) == 0)
				line += 2;
		}
		len = (size_t)(next - line);
		if (used + len >= sizeof out) {
			CU_FAIL("configs/tmpipe.conf is too big for the test");
			return;
		}
		memcpy(out + used, line, len);
		used += len;
	}
	out[used] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nthreads = 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\nlog_level = info\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\npath =\n"));

	tm_config_init(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, src, &err), TM_OK);
	fixture(path, sizeof path, "installed.conf", out);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, path, &err), TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(c.plugin_paths.n, 0);
	CU_ASSERT_EQUAL(c.threads, 1);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_INFO);
	CU_ASSERT_EQUAL(c.files.n, 2);
	tm_config_fini(&c);
}

static void
test_error_sections(void)
{
	check_error_at("e_sect1.conf",
		       "; comment\n[plugin]\npath = /x\n", TM_ERR_PARSE, 2,
		       "unknown section [plugin]; did you mean [plugins]?");
	check_error_at("e_sect2.conf", "[model]\nfoo = 1\n", TM_ERR_PARSE, 1,
		       "unknown section [model] (known: plugins, run)");
	check_error_at("e_sect3.conf", "\n\nthreads = 2\n", TM_ERR_PARSE, 3,
		       "key 'threads' comes before any section; put it "
		       "under [run]");
	check_error_at("e_sect4.conf", "foo = 1\n", TM_ERR_PARSE, 1,
		       "key 'foo' comes before any section (known sections: "
		       "plugins, run)");
}

static void
test_error_keys(void)
{
	check_error_at("e_key1.conf", "[run]\nthread = 4\n", TM_ERR_PARSE, 2,
		       "unknown key 'thread' in [run]; did you mean "
		       "'threads'?");
	check_error_at("e_key2.conf", "[run]\n\nfoo = 1\n", TM_ERR_PARSE, 3,
		       "unknown key 'foo' in [run] (known: log_level, "
		       "threads)");
	check_error_at("e_key3.conf", "[plugins]\npaths = /a\n",
		       TM_ERR_PARSE, 2,
		       "unknown key 'paths' in [plugins]; did you mean "
		       "'path'?");
	check_error_at("e_key4.conf", "[plugins]\ndir = /a\n", TM_ERR_PARSE,
		       2, "unknown key 'dir' in [plugins] (known: path)");
	check_error_at("e_key5.conf", "[plugins]\nthreads = 2\n",
		       TM_ERR_PARSE, 2,
		       "key 'threads' belongs in [run], not in [plugins]");
	check_error_at("e_key6.conf", "[run]\npath = /a\n", TM_ERR_PARSE, 2,
		       "key 'path' belongs in [plugins], not in [run]");
}

static void
test_error_threads(void)
{
	static const char *const bad[] = {
		"12x", "257", "-1", "+4", "", "1.5", "0x10", "4 # four",
		"99999999999999999999999",
	};
	char text[256], msg[256], name[64];
	size_t i;

	for (i = 0; i < TM_ARRAY_LEN(bad); i++) {
		snprintf(name, sizeof name, "e_threads%zu.conf", i);
		snprintf(text, sizeof text, "[run]\nlog_level = info\n"
			 "threads = %s\n", bad[i]);
		snprintf(msg, sizeof msg, "threads: '%s' is not an integer "
			 "between 0 and 256", bad[i]);
		check_error_at(name, text, TM_ERR_INVALID, 3, msg);
	}
}

static void
test_error_log_level(void)
{
	check_error_at("e_level1.conf", "[run]\nlog_level = loud\n",
		       TM_ERR_INVALID, 2,
		       "log_level: 'loud' is not a log level (known: quiet, "
		       "info, verbose, debug)");
	check_error_at("e_level2.conf", "[run]\nlog_level = verbos\n",
		       TM_ERR_INVALID, 2,
		       "log_level: 'verbos' is not a log level; did you mean "
		       "'verbose'?");
	check_error_at("e_level3.conf", "[run]\nlog_level = Debug\n",
		       TM_ERR_INVALID, 2,
		       "log_level: 'Debug' is not a log level; did you mean "
		       "'debug'?");
}

static void
test_error_syntax(void)
{
	static const char syntax[] =
		"syntax error (expected 'key = value' or '[section]')";

	check_error_at("e_syn1.conf", "[run]\nthreads 4\n", TM_ERR_PARSE, 2,
		       syntax);
	check_error_at("e_syn2.conf", "[run\nthreads = 1\n", TM_ERR_PARSE, 1,
		       syntax);
	check_error_at("e_syn3.conf", "[run]\n= 4\n", TM_ERR_PARSE, 2,
		       "syntax error (no key name before '=')");
	check_error_at("e_syn4.conf", "[]\nthreads = 4\n", TM_ERR_PARSE, 1,
		       "unknown section [] (known: plugins, run)");
}

static void
test_error_long_line(void)
{
	char text[1024], msg[256], comment[400];

	snprintf(text, sizeof text, "[plugins]\npath = /%0300d\n", 0);
	snprintf(msg, sizeof msg,
		 "line is too long (%zu bytes; the INI parser reads at most "
		 "%d): shorten it, or continue a path on an indented line",
		 strlen("path = /") + 300, LINE_TEXT_MAX);
	check_error_at("e_long1.conf", text, TM_ERR_PARSE, 2, msg);

	/* A long comment too: inih would read its tail as a line. */
	memset(comment, '=', sizeof comment - 1);
	comment[sizeof comment - 1] = '\0';
	comment[0] = ';';
	snprintf(text, sizeof text, "[run]\nthreads = 2\n%s\n", comment);
	snprintf(msg, sizeof msg,
		 "line is too long (%zu bytes; the INI parser reads at most "
		 "%d): shorten it, or continue a path on an indented line",
		 strlen(comment), LINE_TEXT_MAX);
	check_error_at("e_long2.conf", text, TM_ERR_PARSE, 3, msg);
}

static void
test_error_continuation(void)
{
	check_error_at("e_cont.conf",
		       "[run]\nthreads = 2\n  log_level = debug\n",
		       TM_ERR_PARSE, 3,
		       "this indented line continues 'threads', which takes "
		       "one value; remove the indentation");
}

static void
test_error_nul_byte(void)
{
	static const char text[] = "[run]\nthreads = 1\0\n";
	char path[4096], got[8192], want[8192];
	tm_config c;
	tm_error err;
	FILE *fp;

	tmp_path(path, sizeof path, "e_nul.conf");
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return;
	CU_ASSERT_EQUAL(fwrite(text, 1, sizeof text - 1, fp),
			sizeof text - 1);
	CU_ASSERT_EQUAL(fclose(fp), 0);
	config_prepared(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, path, &err),
			TM_ERR_PARSE);
	snprintf(want, sizeof want,
		 "%s:2: line contains a NUL byte (is this a text file?)",
		 path);
	CHECK_STR(tm_error_format(&err, got, sizeof got), want);
	check_prepared(&c);
	tm_config_fini(&c);
}

static void
test_first_error_wins(void)
{
	static const char syntax[] =
		"syntax error (expected 'key = value' or '[section]')";

	check_error_at("e_first1.conf", "[run]\nbad line\nthread = 1\n",
		       TM_ERR_PARSE, 2, syntax);
	check_error_at("e_first2.conf", "[run]\nthread = 1\nbad line\n",
		       TM_ERR_PARSE, 2,
		       "unknown key 'thread' in [run]; did you mean "
		       "'threads'?");
	check_error_at("e_first3.conf",
		       "[run]\nthreads = x\nlog_level = y\n", TM_ERR_INVALID,
		       2,
		       "threads: 'x' is not an integer between 0 and 256");
	/* An unknown section is its header's fault, which comes before
	 * the bad line that follows it. */
	check_error_at("e_first4.conf", "[foo]\nbad\nx = 1\n", TM_ERR_PARSE,
		       1, "unknown section [foo] (known: plugins, run)");
	check_error_at("e_first5.conf", "bad\n[foo]\nx = 1\n", TM_ERR_PARSE,
		       1, syntax);
	/* A malformed header leaves inih in the section before it. */
	check_error_at("e_first6.conf", "[foo]\n[run\nx = 1\n", TM_ERR_PARSE,
		       1, "unknown section [foo] (known: plugins, run)");
	check_error_at("e_first7.conf", "[run]\n[run\nthreads = 2\n",
		       TM_ERR_PARSE, 2, syntax);
}

static void
test_unchanged_after_error(void)
{
	char good[4096], bad[4096];
	tm_config c;
	tm_error err;

	/* Valid keys before the bad one must not leak into c either. */
	fixture(good, sizeof good, "u_good.conf",
		"[plugins]\npath = /good\n[run]\nthreads = 3\n");
	fixture(bad, sizeof bad, "u_bad.conf",
		"[plugins]\npath = /bad\n[run]\nthreads = 9\n"
		"log_level = quiet\nlog_level = nope\n");
	tm_config_init(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, good, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_config_load_file(&c, bad, &err),
			TM_ERR_INVALID);
	CU_ASSERT_EQUAL(err.line, 6);
	CU_ASSERT_EQUAL(c.threads, 3);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_INFO);
	CU_ASSERT_EQUAL(c.plugin_paths.n, 1);
	if (c.plugin_paths.n == 1)
		CHECK_STR(c.plugin_paths.v[0], "/good");
	CU_ASSERT_EQUAL(c.files.n, 1);
	tm_config_fini(&c);
}

static void
test_error_io(void)
{
	char path[4096];

	tmp_path(path, sizeof path, "does-not-exist.conf");
	{
		char got[8192], want[8192];
		tm_config c;
		tm_error err;

		config_prepared(&c);
		tm_error_clear(&err);
		CU_ASSERT_EQUAL(tm_config_load_file(&c, path, &err),
				TM_ERR_IO);
		CU_ASSERT_EQUAL(err.line, 0);
		snprintf(want, sizeof want,
			 "%s: cannot open: No such file or directory", path);
		CHECK_STR(tm_error_format(&err, got, sizeof got), want);
		check_prepared(&c);
		tm_config_fini(&c);
	}
	/* A folder opens, but cannot be read as a file. */
	make_dirs("a-folder.conf");
	{
		char got[8192], want[8192];
		tm_config c;
		tm_error err;

		tmp_path(path, sizeof path, "a-folder.conf");
		config_prepared(&c);
		tm_error_clear(&err);
		CU_ASSERT_EQUAL(tm_config_load_file(&c, path, &err),
				TM_ERR_IO);
		snprintf(want, sizeof want, "%s: cannot read: %s", path,
			 strerror(EISDIR));
		CHECK_STR(tm_error_format(&err, got, sizeof got), want);
		check_prepared(&c);
		tm_config_fini(&c);
	}
}

/* Fixtures for the standard files: <tmp>/sys/tmpipe/tmpipe.conf,
 * <tmp>/xdg/tmpipe/tmpipe.conf, <tmp>/env.conf. */
struct std_files {
	char sysconfdir[4096], sys[4096], xdg_home[4096], xdg[4096],
		env[4096];
};

static void
std_files(struct std_files *f)
{
	make_dirs("sys/tmpipe");
	make_dirs("xdg/tmpipe");
	tmp_path(f->sysconfdir, sizeof f->sysconfdir, "sys");
	fixture(f->sys, sizeof f->sys, "sys/tmpipe/tmpipe.conf",
		"[plugins]\npath = /sys/plugins\n"
		"[run]\nthreads = 2\nlog_level = quiet\n");
	tmp_path(f->xdg_home, sizeof f->xdg_home, "xdg");
	fixture(f->xdg, sizeof f->xdg, "xdg/tmpipe/tmpipe.conf",
		"[run]\nthreads = 3\nlog_level = verbose\n");
	fixture(f->env, sizeof f->env, "env.conf",
		"[run]\nlog_level = debug\n");
}

static void
test_default_precedence(void)
{
	static const char *const sys_paths[] = { "/sys/plugins" };
	static const char *const xdg_paths[] = { "/xdg/plugins" };
	struct std_files f;
	tm_config c;
	tm_error err;

	std_files(&f);
	set_env("TMPIPE_NO_SYSTEM_CONFIG", NULL);
	set_env("XDG_CONFIG_HOME", f.xdg_home);
	set_env("TMPIPE_CONFIG", f.env);
	tm_config_init(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, f.sysconfdir, &err),
			TM_OK);
	/* sysconfdir < XDG < $TMPIPE_CONFIG, key by key. */
	check_paths(&c, sys_paths, TM_ARRAY_LEN(sys_paths));
	CU_ASSERT_EQUAL(c.threads, 3);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_DEBUG);
	CU_ASSERT_EQUAL(c.files.n, 3);
	if (c.files.n == 3) {
		CHECK_STR(c.files.v[0], f.sys);
		CHECK_STR(c.files.v[1], f.xdg);
		CHECK_STR(c.files.v[2], f.env);
	}
	tm_config_fini(&c);

	/* The user's path replaces the system's. */
	tm_test_write_file(f.xdg, "[plugins]\npath = /xdg/plugins\n");
	set_env("TMPIPE_CONFIG", NULL);
	tm_config_init(&c);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, f.sysconfdir, &err),
			TM_OK);
	check_paths(&c, xdg_paths, TM_ARRAY_LEN(xdg_paths));
	CU_ASSERT_EQUAL(c.threads, 2);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_QUIET);
	CU_ASSERT_EQUAL(c.files.n, 2);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	tm_config_fini(&c);
}

static void
test_default_no_system(void)
{
	struct std_files f;
	tm_config c;
	tm_error err;

	std_files(&f);
	set_env("TMPIPE_NO_SYSTEM_CONFIG", "1");
	set_env("XDG_CONFIG_HOME", f.xdg_home);
	set_env("TMPIPE_CONFIG", f.env);
	tm_config_init(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, f.sysconfdir, &err),
			TM_OK);
	CU_ASSERT_EQUAL(c.plugin_paths.n, 0);
	CU_ASSERT_EQUAL(c.threads, 3);
	CU_ASSERT_EQUAL(c.log_level, TM_LOG_DEBUG);
	CU_ASSERT_EQUAL(c.files.n, 2);
	if (c.files.n == 2) {
		CHECK_STR(c.files.v[0], f.xdg);
		CHECK_STR(c.files.v[1], f.env);
	}
	tm_config_fini(&c);

	/* Set to anything, even empty. */
	set_env("TMPIPE_NO_SYSTEM_CONFIG", "");
	tm_config_init(&c);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, f.sysconfdir, &err),
			TM_OK);
	CU_ASSERT_EQUAL(c.files.n, 2);
	tm_config_fini(&c);
	set_env("TMPIPE_NO_SYSTEM_CONFIG", NULL);
}

static void
test_default_home_fallback(void)
{
	char home[4096], file[4096];
	tm_config c;
	tm_error err;

	make_dirs("home/.config/tmpipe");
	tmp_path(home, sizeof home, "home");
	fixture(file, sizeof file, "home/.config/tmpipe/tmpipe.conf",
		"[run]\nthreads = 6\n");
	set_env("TMPIPE_NO_SYSTEM_CONFIG", "1");
	set_env("TMPIPE_CONFIG", NULL);
	set_env("HOME", home);
	/* Unset, empty and relative $XDG_CONFIG_HOME all mean ~/.config. */
	{
		static const char *const xdg[] = { NULL, "", "relative/xdg" };
		size_t i;

		for (i = 0; i < TM_ARRAY_LEN(xdg); i++) {
			set_env("XDG_CONFIG_HOME", xdg[i]);
			tm_config_init(&c);
			tm_error_clear(&err);
			CU_ASSERT_EQUAL(tm_config_load_default(&c, NULL,
								    &err),
					TM_OK);
			CU_ASSERT_EQUAL(c.threads, 6);
			CU_ASSERT_EQUAL(c.files.n, 1);
			if (c.files.n == 1)
				CHECK_STR(c.files.v[0], file);
			tm_config_fini(&c);
		}
	}
}

static void
test_default_absent(void)
{
	char nowhere[4096];
	tm_config c;
	tm_error err;

	tmp_path(nowhere, sizeof nowhere, "nowhere");
	set_env("TMPIPE_NO_SYSTEM_CONFIG", NULL);
	set_env("XDG_CONFIG_HOME", nowhere);
	/* Set but empty counts as unset. */
	set_env("TMPIPE_CONFIG", "");
	config_prepared(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, nowhere, &err),
			TM_OK);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	check_prepared(&c);
	tm_config_fini(&c);
	set_env("TMPIPE_CONFIG", NULL);
}

static void
test_default_env_missing(void)
{
	struct std_files f;
	char missing[4096], got[8192], want[8192];
	tm_config c;
	tm_error err;

	std_files(&f);
	tmp_path(missing, sizeof missing, "missing.conf");
	set_env("TMPIPE_NO_SYSTEM_CONFIG", NULL);
	set_env("XDG_CONFIG_HOME", f.xdg_home);
	set_env("TMPIPE_CONFIG", missing);
	config_prepared(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, f.sysconfdir, &err),
			TM_ERR_IO);
	snprintf(want, sizeof want,
		 "%s: cannot open: No such file or directory (named by "
		 "$TMPIPE_CONFIG)",
		 missing);
	CHECK_STR(tm_error_format(&err, got, sizeof got), want);
	/* The system and user files read fine, yet none of them stuck. */
	check_prepared(&c);
	tm_config_fini(&c);
	set_env("TMPIPE_CONFIG", NULL);
}

static void
test_default_bad_file(void)
{
	struct std_files f;
	char got[8192], want[8192];
	tm_config c;
	tm_error err;

	std_files(&f);
	tm_test_write_file(f.xdg, "[run]\n\nlog_levle = info\n");
	set_env("TMPIPE_NO_SYSTEM_CONFIG", NULL);
	set_env("XDG_CONFIG_HOME", f.xdg_home);
	set_env("TMPIPE_CONFIG", f.env);
	config_prepared(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, f.sysconfdir, &err),
			TM_ERR_PARSE);
	snprintf(want, sizeof want,
		 "%s:3: unknown key 'log_levle' in [run]; did you mean "
		 "'log_level'?",
		 f.xdg);
	CHECK_STR(tm_error_format(&err, got, sizeof got), want);
	check_prepared(&c);
	tm_config_fini(&c);

	/* A standard file that exists but cannot be read is an error, not
	 * skipped as absent. */
	CU_ASSERT_EQUAL(remove(f.xdg), 0);
	make_dirs("xdg/tmpipe/tmpipe.conf");
	config_prepared(&c);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_config_load_default(&c, f.sysconfdir, &err),
			TM_ERR_IO);
	snprintf(want, sizeof want, "%s: cannot read: %s", f.xdg,
		 strerror(EISDIR));
	CHECK_STR(tm_error_format(&err, got, sizeof got), want);
	check_prepared(&c);
	tm_config_fini(&c);
	CU_ASSERT_EQUAL(rmdir(f.xdg), 0);
	set_env("TMPIPE_CONFIG", NULL);
}

/* --- suite "util" ------------------------------------------------------- */

static void
test_strdup_asprintf(void)
{
	char big[3000];
	tm_error err;
	char *s;

	tm_error_clear(&err);
	CU_ASSERT_PTR_NULL(tm_priv_strdup(NULL, &err));
	CU_ASSERT_EQUAL(err.code, TM_OK);
	s = tm_priv_strdup("abc", &err);
	CHECK_STR(s, "abc");
	free(s);

	s = tm_priv_asprintf(&err, "%s-%d-%c", "x", 42, 'z');
	CHECK_STR(s, "x-42-z");
	free(s);
	memset(big, 'b', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	s = tm_priv_asprintf(&err, "<%s>", big);
	CU_ASSERT_PTR_NOT_NULL(s);
	if (s) {
		CU_ASSERT_EQUAL(strlen(s), sizeof big + 1);
		CU_ASSERT_EQUAL(s[0], '<');
		CU_ASSERT_EQUAL(s[sizeof big], '>');
	}
	free(s);
	s = tm_priv_asprintf(&err, "%s", "");
	CHECK_STR(s, "");
	free(s);
	CU_ASSERT_EQUAL(err.code, TM_OK);
}

static void
test_dirname(void)
{
	static const char *const cases[][2] = {
		{ "/a/b/c.conf", "/a/b" }, { "a/b", "a" },
		{ "a/b/", "a" },	   { "a//b", "a" },
		{ "a", "." },		   { "", "." },
		{ "/", "/" },		   { "/a", "/" },
		{ "//a", "/" },		   { "///", "/" },
		{ "./x", "." },		   { "../x/y", "../x" },
	};
	tm_error err;
	size_t i;
	char *s;

	tm_error_clear(&err);
	for (i = 0; i < TM_ARRAY_LEN(cases); i++) {
		s = tm_priv_dirname(cases[i][0], &err);
		CHECK_STR(s, cases[i][1]);
		free(s);
	}
	s = tm_priv_dirname(NULL, &err);
	CHECK_STR(s, ".");
	free(s);
	CU_ASSERT_EQUAL(err.code, TM_OK);
}

static void
test_path_resolve(void)
{
	static const char *const cases[][3] = {
		{ "/d", "/abs/x", "/abs/x" },
		{ "/d", "rel", "/d/rel" },
		{ "/d/", "rel", "/d/rel" },
		{ "d", "a/b", "d/a/b" },
		{ ".", "rel", "rel" },
		{ "", "rel", "rel" },
		{ NULL, "rel", "rel" },
		{ "/d", "", "/d" },
		{ "/", "x", "/x" },
	};
	tm_error err;
	size_t i;
	char *s;

	tm_error_clear(&err);
	for (i = 0; i < TM_ARRAY_LEN(cases); i++) {
		s = tm_priv_path_resolve(cases[i][0], cases[i][1], &err);
		CHECK_STR(s, cases[i][2]);
		free(s);
	}
	CU_ASSERT_PTR_NULL(tm_priv_path_resolve("/d", NULL, &err));
	CU_ASSERT_EQUAL(err.code, TM_OK);
}

static void
test_strv(void)
{
	tm_strv sv = { 0 };
	tm_error err;
	char name[32];
	size_t i;
	int ok = 1;

	tm_error_clear(&err);
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "s%zu", i);
		CU_ASSERT_EQUAL(tm_priv_strv_push(&sv, name, &err), TM_OK);
		/* Always NULL-terminated, like argv. */
		CU_ASSERT_PTR_NULL(sv.v[sv.n]);
	}
	CU_ASSERT_EQUAL(sv.n, 100);
	for (i = 0; i < sv.n; i++) {
		snprintf(name, sizeof name, "s%zu", i);
		ok &= strcmp(sv.v[i], name) == 0;
	}
	CU_ASSERT(ok);
	tm_priv_strv_fini(&sv);
	CU_ASSERT_PTR_NULL(sv.v);
	CU_ASSERT_EQUAL(sv.n, 0);
	CU_ASSERT_EQUAL(sv.cap, 0);
	tm_priv_strv_fini(&sv);
	tm_priv_strv_fini(NULL);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	CU_ASSERT_EQUAL(tm_priv_strv_push(&sv, NULL, &err), TM_ERR_INTERNAL);
}

static void
test_strv_split(void)
{
	static const struct {
		const char *in;
		const char *out[4];
		size_t n;
	} cases[] = {
		{ "/a:/b", { "/a", "/b" }, 2 },
		{ "a::b:", { "a", "b" }, 2 },
		{ ":x", { "x" }, 1 },
		{ "/only", { "/only" }, 1 },
		{ "", { NULL }, 0 },
		{ ":::", { NULL }, 0 },
		{ "a b:c", { "a b", "c" }, 2 },
	};
	tm_strv sv;
	tm_error err;
	size_t i, j;

	tm_error_clear(&err);
	for (i = 0; i < TM_ARRAY_LEN(cases); i++) {
		memset(&sv, 0, sizeof sv);
		CU_ASSERT_EQUAL(tm_priv_strv_push_split(&sv, cases[i].in, &err),
				TM_OK);
		CU_ASSERT_EQUAL(sv.n, cases[i].n);
		for (j = 0; j < sv.n && j < cases[i].n; j++)
			CHECK_STR(sv.v[j], cases[i].out[j]);
		tm_priv_strv_fini(&sv);
	}
	/* Appends to what is there. */
	memset(&sv, 0, sizeof sv);
	CU_ASSERT_EQUAL(tm_priv_strv_push(&sv, "first", &err), TM_OK);
	CU_ASSERT_EQUAL(tm_priv_strv_push_split(&sv, "x:y", &err), TM_OK);
	CU_ASSERT_EQUAL(sv.n, 3);
	if (sv.n == 3) {
		CHECK_STR(sv.v[0], "first");
		CHECK_STR(sv.v[2], "y");
		CU_ASSERT_PTR_NULL(sv.v[3]);
	}
	tm_priv_strv_fini(&sv);
	CU_ASSERT_EQUAL(err.code, TM_OK);
}

static void
test_edit_distance(void)
{
	static const struct {
		const char *a, *b;
		size_t d;
	} cases[] = {
		{ "", "", 0 },
		{ "abc", "", 3 },
		{ "", "abc", 3 },
		{ "abc", "abc", 0 },
		{ "kitten", "sitting", 3 },
		{ "flaw", "lawn", 2 },
		{ "thread", "threads", 1 },
		{ "thraeds", "threads", 2 },
		{ "plugin", "plugins", 1 },
		{ "Debug", "debug", 1 },
		{ "minmax", "kl", 6 },
	};
	char a[200], b[200];
	size_t i;

	for (i = 0; i < TM_ARRAY_LEN(cases); i++) {
		CU_ASSERT_EQUAL(tm_priv_edit_distance(cases[i].a, cases[i].b),
				cases[i].d);
		CU_ASSERT_EQUAL(tm_priv_edit_distance(cases[i].b, cases[i].a),
				cases[i].d);
	}
	CU_ASSERT_EQUAL(tm_priv_edit_distance(NULL, "ab"), 2);
	/* Longer than the stack row: the heap path. */
	memset(a, 'a', sizeof a - 1);
	a[sizeof a - 1] = '\0';
	memcpy(b, a, sizeof b);
	b[100] = 'b';
	CU_ASSERT_EQUAL(tm_priv_edit_distance(a, b), 1);
	b[150] = '\0';
	CU_ASSERT_EQUAL(tm_priv_edit_distance(a, b), 50);
	CU_ASSERT_EQUAL(tm_priv_edit_distance(b, a), 50);
}

static void
test_suggest(void)
{
	static const char *const keys[] = { "log_level", "threads" };
	static const char *const tie[] = { "ab", "ac" };
	static const char *const six[] = { "abcdef" };
	static const char *const holey[] = { NULL, "path" };

	CHECK_STR(tm_priv_suggest("thread", keys, 2), "threads");
	CHECK_STR(tm_priv_suggest("loglevel", keys, 2), "log_level");
	CU_ASSERT_PTR_NULL(tm_priv_suggest("foo", keys, 2));
	CU_ASSERT_PTR_NULL(tm_priv_suggest("x", keys, 2));
	/* The bound is max(1, strlen(word) / 3). */
	CHECK_STR(tm_priv_suggest("abcdxy", six, 1), "abcdef");
	CU_ASSERT_PTR_NULL(tm_priv_suggest("abcxyz", six, 1));
	CHECK_STR(tm_priv_suggest("a", tie, 2), "ab");
	CHECK_STR(tm_priv_suggest("ad", tie, 2), "ab");
	CHECK_STR(tm_priv_suggest("pth", holey, 2), "path");
	CU_ASSERT_PTR_NULL(tm_priv_suggest("threads", keys, 0));
	CU_ASSERT_PTR_NULL(tm_priv_suggest(NULL, keys, 2));
	CU_ASSERT_PTR_NULL(tm_priv_suggest("threads", NULL, 2));
}

static void
test_now(void)
{
	double t0 = tm_priv_now();
	double t1 = tm_priv_now();

	CU_ASSERT(t0 > 0.0);
	CU_ASSERT(t1 >= t0);
}

static const tm_test_case config_cases[] = {
	{ "defaults", test_defaults },
	{ "empty file", test_empty_file },
	{ "every key", test_every_key },
	{ "log levels", test_log_levels },
	{ "threads", test_threads },
	{ "repeated key: last wins", test_repeated_key },
	{ "comments and blank lines", test_comments_and_blanks },
	{ "CRLF and BOM", test_crlf_and_bom },
	{ "relative plugin path", test_path_relative },
	{ "plugin path on indented lines", test_path_continued },
	{ "longest line", test_path_longest_line },
	{ "later file replaces path", test_later_file_replaces_path },
	{ "installed tmpipe.conf", test_installed_file },
	{ "errors: sections", test_error_sections },
	{ "errors: keys", test_error_keys },
	{ "errors: threads", test_error_threads },
	{ "errors: log_level", test_error_log_level },
	{ "errors: syntax", test_error_syntax },
	{ "errors: long line", test_error_long_line },
	{ "errors: continued scalar", test_error_continuation },
	{ "errors: NUL byte", test_error_nul_byte },
	{ "errors: first wins", test_first_error_wins },
	{ "errors: cannot open or read", test_error_io },
	{ "unchanged after error", test_unchanged_after_error },
	{ "default: precedence", test_default_precedence },
	{ "default: TMPIPE_NO_SYSTEM_CONFIG", test_default_no_system },
	{ "default: ~/.config fallback", test_default_home_fallback },
	{ "default: absent files", test_default_absent },
	{ "default: TMPIPE_CONFIG missing", test_default_env_missing },
	{ "default: bad file", test_default_bad_file },
	{ NULL, NULL },
};

static const tm_test_case util_cases[] = {
	{ "strdup and asprintf", test_strdup_asprintf },
	{ "dirname", test_dirname },
	{ "path_resolve", test_path_resolve },
	{ "strv", test_strv },
	{ "strv split", test_strv_split },
	{ "edit distance", test_edit_distance },
	{ "suggest", test_suggest },
	{ "now", test_now },
	{ NULL, NULL },
};

int
main(void)
{
	if (tm_test_add_suite("config", config_cases) ||
	    tm_test_add_suite("util", util_cases))
		return 99;
	return tm_test_run();
}
