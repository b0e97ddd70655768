/* tmpipe — global settings from INI files (see config_priv.h and
 * tmpipe.conf(5)). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <ini.h>

#include "config_priv.h"

#define THREADS_MAX 256

static const char *const section_names[] = { "plugins", "run" };
static const char *const plugins_keys[] = { "path" };
static const char *const run_keys[] = { "log_level", "threads" };
/* In tm_log_level order. */
static const char *const level_names[] = {
	"quiet", "info", "verbose", "debug"
};

/* One file being read. inih calls read_line for every line and on_entry
 * for every key, so the reader is where we learn line numbers: inih
 * itself only hands us the line of its first error. */
struct parse {
	const char *path;
	char *dir;		/* path's folder: relative plugin paths */
	FILE *fp;
	char *buf;		/* getline's buffer */
	size_t cap;
	unsigned line;		/* the line inih is working on */
	unsigned section_line;	/* where the current [section] began */
	int have_key;		/* an indented line now continues a key */
	int continuation;	/* the current line is such a continuation */

	tm_error e;		/* the first error we found ourselves */
	unsigned e_line;	/* the line it is reported at */
	unsigned fail_line;	/* the line on_entry refused, if any */

	/* What this file sets; applied to the config only on success. */
	tm_strv paths;
	int set_paths;
	int threads;
	int set_threads;
	tm_log_level log_level;
	int set_log_level;
};

static tm_status
parse_error(struct parse *p, tm_status code, unsigned line, const char *fmt,
	    ...) __attribute__((format(printf, 4, 5)));

static tm_status
parse_error(struct parse *p, tm_status code, unsigned line, const char *fmt,
	    ...)
{
	va_list ap;

	if (p->e.code != TM_OK)
		return p->e.code;
	va_start(ap, fmt);
	tm_error_vset_at(&p->e, code, p->path, line, 0, fmt, ap);
	va_end(ap);
	p->e_line = line;
	return code;
}

/* "a, b, c" into buf, for the "(known: ...)" part of a message. */
static const char *
join(char *buf, size_t size, const char *const *words, size_t n)
{
	size_t i, used = 0;
	int k;

	buf[0] = '\0';
	for (i = 0; i < n && used < size; i++) {
		k = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
			     words[i]);
		if (k < 0)
			break;
		used += (size_t)k;
	}
	return buf;
}

static int
is_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' ||
	       ch == '\v' || ch == '\n';
}

/* inih's fgets-style reader, made line-exact. fgets would hand inih the
 * first part of a line that does not fit its buffer (Debian's inih:
 * 200 bytes) and the rest as the next line: a long plugin path would be
 * cut short without a word, and every later line number would be off.
 * Reading whole lines with getline lets us refuse such a line at its
 * own number. Returning NULL ends the parse; we do that after our first
 * error so that the first message is the one the user sees. */
static char *
read_line(char *str, int num, void *stream)
{
	struct parse *p = stream;
	ssize_t got;
	size_t len;
	const char *s;

	if (p->e.code != TM_OK || num < 2)
		return NULL;
	errno = 0;
	got = getline(&p->buf, &p->cap, p->fp);
	if (got < 0) {
		/* Neither flag set: getline itself failed (no memory). */
		if (ferror(p->fp))
			parse_error(p, TM_ERR_IO, 0, "cannot read: %s",
				    strerror(errno ? errno : EIO));
		else if (!feof(p->fp))
			parse_error(p, TM_ERR_NOMEM, 0, "out of memory");
		return NULL;
	}
	p->line++;
	len = (size_t)got;
	if (len > 0 && p->buf[len - 1] == '\n')
		len--;
	if (len > 0 && p->buf[len - 1] == '\r')
		len--;
	if (memchr(p->buf, '\0', len)) {
		parse_error(p, TM_ERR_PARSE, p->line,
			    "line contains a NUL byte (is this a text file?)");
		return NULL;
	}
	/* Room for the text, a '\n' and the terminating NUL. */
	if (len > (size_t)num - 2) {
		parse_error(p, TM_ERR_PARSE, p->line,
			    "line is too long (%zu bytes; the INI parser "
			    "reads at most %d): shorten it, or continue a "
			    "path on an indented line",
			    len, num - 2);
		return NULL;
	}
	memcpy(str, p->buf, len);
	str[len] = '\n';
	str[len + 1] = '\0';

	/* Classify the line as inih will (multi-line values on, the
	 * default of upstream and Debian): a comment, then an indented
	 * line continuing the previous key, then a [section]. */
	s = str;
	if (p->line == 1 && (unsigned char)s[0] == 0xEF &&
	    (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
		s += 3;
	while (is_space((unsigned char)*s))
		s++;
	p->continuation = 0;
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	if (p->have_key && s != str && is_space((unsigned char)str[0])) {
		p->continuation = 1;
		return str;
	}
	/* Only a well-formed header starts a section; inih reports the
	 * others as syntax errors and stays in the section it was in. */
	if (*s == '[' && strchr(s, ']')) {
		p->section_line = p->line;
		p->have_key = 0;
	}
	return str;
}

static tm_status
set_paths(struct parse *p, const char *value)
{
	tm_strv parts = { 0 };
	tm_status st;
	size_t i;
	char *abs;

	st = tm_priv_strv_push_split(&parts, value, &p->e);
	if (st != TM_OK)
		goto out;
	/* A new "path =" replaces what an earlier one in this file said;
	 * an indented line after it adds to it. */
	if (!p->continuation) {
		tm_priv_strv_fini(&p->paths);
		p->set_paths = 1;
	}
	for (i = 0; i < parts.n; i++) {
		/* Relative to the file, not to wherever tmpipe runs. */
		abs = tm_priv_path_resolve(p->dir, parts.v[i], &p->e);
		if (!abs) {
			st = TM_ERR_NOMEM;
			goto out;
		}
		st = tm_priv_strv_push(&p->paths, abs, &p->e);
		free(abs);
		if (st != TM_OK)
			goto out;
	}
out:
	tm_priv_strv_fini(&parts);
	return st;
}

static tm_status
set_threads(struct parse *p, const char *value)
{
	const char *s;
	long n, cpus;

	/* Digits only: strtol alone would take " 8", "+8" and "8k" too. */
	for (s = value; *s >= '0' && *s <= '9'; s++)
		;
	n = -1;
	if (s != value && *s == '\0') {
		errno = 0;
		n = strtol(value, NULL, 10);
		if (errno == ERANGE)
			n = -1;
	}
	if (n < 0 || n > THREADS_MAX)
		return parse_error(p, TM_ERR_INVALID, p->line,
				   "threads: '%s' is not an integer between "
				   "0 and %d",
				   value, THREADS_MAX);
	if (n == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus < 1 ? 1 : cpus > THREADS_MAX ? THREADS_MAX : cpus;
	}
	p->threads = (int)n;
	p->set_threads = 1;
	return TM_OK;
}

static tm_status
set_log_level(struct parse *p, const char *value)
{
	char known[128];
	const char *near;
	int level;

	level = tm_priv_log_level_from_name(value);
	if (level >= 0) {
		p->log_level = (tm_log_level)level;
		p->set_log_level = 1;
		return TM_OK;
	}
	near = tm_priv_suggest(value, level_names, TM_ARRAY_LEN(level_names));
	if (near)
		return parse_error(p, TM_ERR_INVALID, p->line,
				   "log_level: '%s' is not a log level; did "
				   "you mean '%s'?",
				   value, near);
	return parse_error(p, TM_ERR_INVALID, p->line,
			   "log_level: '%s' is not a log level (known: %s)",
			   value,
			   join(known, sizeof known, level_names,
				TM_ARRAY_LEN(level_names)));
}

/* The section a known key belongs in, or NULL. */
static const char *
home_of(const char *name)
{
	size_t i;

	for (i = 0; i < TM_ARRAY_LEN(plugins_keys); i++)
		if (strcmp(name, plugins_keys[i]) == 0)
			return "plugins";
	for (i = 0; i < TM_ARRAY_LEN(run_keys); i++)
		if (strcmp(name, run_keys[i]) == 0)
			return "run";
	return NULL;
}

static tm_status
unknown_key(struct parse *p, const char *section, const char *name,
	    const char *const *keys, size_t n)
{
	char known[128];
	const char *near, *home;

	home = home_of(name);
	if (home)
		return parse_error(p, TM_ERR_PARSE, p->line,
				   "key '%s' belongs in [%s], not in [%s]",
				   name, home, section);
	near = tm_priv_suggest(name, keys, n);
	if (near)
		return parse_error(p, TM_ERR_PARSE, p->line,
				   "unknown key '%s' in [%s]; did you mean "
				   "'%s'?",
				   name, section, near);
	return parse_error(p, TM_ERR_PARSE, p->line,
			   "unknown key '%s' in [%s] (known: %s)", name,
			   section, join(known, sizeof known, keys, n));
}

static tm_status
entry(struct parse *p, const char *section, const char *name,
      const char *value)
{
	char known[128];
	const char *near, *home;

	/* inih takes "= 4" as a key named "". */
	if (!*name)
		return parse_error(p, TM_ERR_PARSE, p->line,
				   "syntax error (no key name before '=')");
	/* Past a header, an empty section name comes from "[]": that
	 * is an unknown section, below. */
	if (!*section && !p->section_line) {
		home = home_of(name);
		if (home)
			return parse_error(p, TM_ERR_PARSE, p->line,
					   "key '%s' comes before any "
					   "section; put it under [%s]",
					   name, home);
		return parse_error(p, TM_ERR_PARSE, p->line,
				   "key '%s' comes before any section "
				   "(known sections: %s)",
				   name,
				   join(known, sizeof known, section_names,
					TM_ARRAY_LEN(section_names)));
	}
	if (strcmp(section, "plugins") == 0) {
		if (strcmp(name, "path") == 0)
			return set_paths(p, value);
		return unknown_key(p, section, name, plugins_keys,
				   TM_ARRAY_LEN(plugins_keys));
	}
	if (strcmp(section, "run") == 0) {
		if (p->continuation)
			return parse_error(p, TM_ERR_PARSE, p->line,
					   "this indented line continues "
					   "'%s', which takes one value; "
					   "remove the indentation",
					   name);
		if (strcmp(name, "threads") == 0)
			return set_threads(p, value);
		if (strcmp(name, "log_level") == 0)
			return set_log_level(p, value);
		return unknown_key(p, section, name, run_keys,
				   TM_ARRAY_LEN(run_keys));
	}
	/* Reported at the [section] line: that is where the typo is. */
	near = tm_priv_suggest(section, section_names,
			       TM_ARRAY_LEN(section_names));
	if (near)
		return parse_error(p, TM_ERR_PARSE, p->section_line,
				   "unknown section [%s]; did you mean [%s]?",
				   section, near);
	return parse_error(p, TM_ERR_PARSE, p->section_line,
			   "unknown section [%s] (known: %s)", section,
			   join(known, sizeof known, section_names,
				TM_ARRAY_LEN(section_names)));
}

static int
on_entry(void *user, const char *section, const char *name,
	 const char *value)
{
	struct parse *p = user;
	tm_status st;

	st = entry(p, section, name, value ? value : "");
	p->have_key = 1;
	if (st == TM_OK)
		return 1;
	/* 0 tells inih this line failed; read_line then stops the parse. */
	p->fail_line = p->line;
	return 0;
}

static void
parse_fini(struct parse *p)
{
	free(p->dir);
	free(p->buf);
	tm_priv_strv_fini(&p->paths);
}

/* Reads path into c. An optional file that does not exist is skipped. */
static tm_status
load(tm_config *c, const char *path, int optional, tm_error *err)
{
	struct parse p;
	tm_status st;
	int ret;

	if (!c || !path)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "config: NULL argument");
	memset(&p, 0, sizeof p);
	tm_error_clear(&p.e);
	p.path = path;
	p.fp = fopen(path, "r");
	if (!p.fp) {
		if (optional && (errno == ENOENT || errno == ENOTDIR))
			return TM_OK;
		return tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				       "cannot open: %s", strerror(errno));
	}
	p.dir = tm_priv_dirname(path, err);
	if (!p.dir) {
		st = TM_ERR_NOMEM;
		goto out;
	}

	ret = ini_parse_stream(read_line, &p, on_entry, &p);
	if (p.e.code == TM_ERR_IO || p.e.code == TM_ERR_NOMEM) {
		st = tm_error_set_at(err, p.e.code, p.path, 0, 0, "%s",
				     p.e.msg);
		goto out;
	}
	/* inih returns the first line it did not like: the line whose
	 * key we refused (we know why) or, when it comes first, a line it
	 * could not parse at all. We report an unknown section at its
	 * header, which may come before that line. */
	if (ret > 0 && (unsigned)ret != p.fail_line &&
	    !(p.e.code != TM_OK && p.e_line < (unsigned)ret)) {
		st = tm_error_set_at(err, TM_ERR_PARSE, path, (unsigned)ret,
				     0,
				     "syntax error (expected 'key = value' "
				     "or '[section]')");
		goto out;
	}
	if (p.e.code != TM_OK) {
		st = tm_error_set_at(err, p.e.code, path, p.e.line, 0, "%s",
				     p.e.msg);
		goto out;
	}
	if (ret < 0) {
		/* -2: inih built to take its line buffer from the heap. */
		st = tm_error_set_at(err, TM_ERR_NOMEM, path, 0, 0,
				     "out of memory");
		goto out;
	}

	/* Record the file first: it is the last step that can fail, so a
	 * failure still leaves c as it was. */
	st = tm_priv_strv_push(&c->files, path, err);
	if (st != TM_OK)
		goto out;
	if (p.set_paths) {
		tm_priv_strv_fini(&c->plugin_paths);
		c->plugin_paths = p.paths;
		memset(&p.paths, 0, sizeof p.paths);
	}
	if (p.set_threads)
		c->threads = p.threads;
	if (p.set_log_level)
		c->log_level = p.log_level;
out:
	fclose(p.fp);
	parse_fini(&p);
	return st;
}

void
tm_config_init(tm_config *c)
{
	if (!c)
		return;
	memset(c, 0, sizeof *c);
	c->threads = 1;
	c->log_level = TM_LOG_INFO;
}

void
tm_config_fini(tm_config *c)
{
	if (!c)
		return;
	tm_priv_strv_fini(&c->plugin_paths);
	tm_priv_strv_fini(&c->files);
	tm_config_init(c);
}

tm_status
tm_config_load_file(tm_config *c, const char *path, tm_error *err)
{
	return load(c, path, 0, err);
}

static tm_status
strv_copy(tm_strv *dst, const tm_strv *src, tm_error *err)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		if (tm_priv_strv_push(dst, src->v[i], err) != TM_OK)
			return TM_ERR_NOMEM;
	return TM_OK;
}

/* The user's file: $XDG_CONFIG_HOME, else ~/.config. The XDG base
 * directory spec says to ignore a relative $XDG_CONFIG_HOME. NULL with
 * err clear when there is no home to look in. */
static char *
user_config_path(tm_error *err)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		return tm_priv_asprintf(err, "%s/tmpipe/tmpipe.conf", xdg);
	if (home && *home)
		return tm_priv_asprintf(err, "%s/.config/tmpipe/tmpipe.conf",
					home);
	return NULL;
}

tm_status
tm_config_load_default(tm_config *c, const char *sysconfdir,
			    tm_error *err)
{
	tm_config tmp;
	tm_error e;
	tm_status st;
	const char *env;
	char *path = NULL;

	if (!c)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "config: NULL argument");
	/* Work on a copy so that an error in a later file does not leave
	 * c with only the earlier files applied. */
	tm_config_init(&tmp);
	tmp.threads = c->threads;
	tmp.log_level = c->log_level;
	st = strv_copy(&tmp.plugin_paths, &c->plugin_paths, err);
	if (st == TM_OK)
		st = strv_copy(&tmp.files, &c->files, err);
	if (st != TM_OK)
		goto fail;

	if (sysconfdir && *sysconfdir && !getenv("TMPIPE_NO_SYSTEM_CONFIG")) {
		path = tm_priv_asprintf(err, "%s/tmpipe/tmpipe.conf",
					sysconfdir);
		if (!path) {
			st = TM_ERR_NOMEM;
			goto fail;
		}
		st = load(&tmp, path, 1, err);
		free(path);
		path = NULL;
		if (st != TM_OK)
			goto fail;
	}

	tm_error_clear(&e);
	path = user_config_path(&e);
	if (e.code != TM_OK) {
		st = tm_error_set(err, e.code, "%s", e.msg);
		goto fail;
	}
	if (path) {
		st = load(&tmp, path, 1, err);
		free(path);
		path = NULL;
		if (st != TM_OK)
			goto fail;
	}

	/* Set but empty counts as unset, as with most variables. */
	env = getenv("TMPIPE_CONFIG");
	if (env && *env) {
		tm_error_clear(&e);
		st = load(&tmp, env, 0, &e);
		if (st != TM_OK) {
			/* Say where the name came from: the user may have
			 * forgotten the variable is set. */
			tm_error_set_at(err, e.code, e.file, e.line, e.col,
					"%s%s", e.msg,
					e.code == TM_ERR_IO ?
					" (named by $TMPIPE_CONFIG)" : "");
			goto fail;
		}
	}

	tm_config_fini(c);
	*c = tmp;
	return TM_OK;
fail:
	tm_config_fini(&tmp);
	return st;
}

int
tm_priv_log_level_from_name(const char *name)
{
	size_t i;

	if (!name)
		return -1;
	for (i = 0; i < TM_ARRAY_LEN(level_names); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}
