/* tmpipe — small private helpers shared by the core's modules. */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util_priv.h"

char *
tm_priv_strdup(const char *s, tm_error *err)
{
	size_t len;
	char *d;

	if (!s)
		return NULL;
	len = strlen(s) + 1;
	d = malloc(len);
	if (!d) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	memcpy(d, s, len);
	return d;
}

char *
tm_priv_asprintf(tm_error *err, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int len;

	/* Measure first, then format into an exact fit: two passes over
	 * the arguments are cheaper than guessing and growing. */
	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0) {
		tm_error_set(err, TM_ERR_INTERNAL,
			     "cannot format '%s' (result too long?)", fmt);
		return NULL;
	}
	s = malloc((size_t)len + 1);
	if (!s) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	va_start(ap, fmt);
	vsnprintf(s, (size_t)len + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* A copy of the first len bytes of s. */
static char *
strndup_err(const char *s, size_t len, tm_error *err)
{
	char *d = malloc(len + 1);

	if (!d) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *
tm_priv_dirname(const char *path, tm_error *err)
{
	size_t end;

	/* POSIX dirname(3), without its habit of writing into the
	 * argument: "a/b/" -> "a", "/a" -> "/", "a" -> ".". */
	if (!path || !*path)
		return tm_priv_strdup(".", err);
	end = strlen(path);
	while (end > 1 && path[end - 1] == '/')
		end--;
	while (end > 0 && path[end - 1] != '/')
		end--;
	if (end == 0)
		return tm_priv_strdup(".", err);
	while (end > 1 && path[end - 1] == '/')
		end--;
	return strndup_err(path, end, err);
}

char *
tm_priv_path_resolve(const char *dir, const char *path, tm_error *err)
{
	size_t dlen;

	if (!path)
		return NULL;
	if (path[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0)
		return tm_priv_strdup(path, err);
	if (!*path)
		return tm_priv_strdup(dir, err);
	dlen = strlen(dir);
	if (dir[dlen - 1] == '/')
		return tm_priv_asprintf(err, "%s%s", dir, path);
	return tm_priv_asprintf(err, "%s/%s", dir, path);
}

/* Makes room for one more string and the NULL that ends v, so callers
 * can hand sv->v to anything that wants a NULL-terminated vector. */
static tm_status
strv_reserve(tm_strv *sv, tm_error *err)
{
	size_t cap;
	char **v;

	if (sv->n + 1 < sv->cap)
		return TM_OK;
	cap = sv->cap ? sv->cap : 4;
	while (cap <= sv->n + 1) {
		if (cap > SIZE_MAX / 2 / sizeof *v)
			return tm_error_set(err, TM_ERR_NOMEM,
					    "out of memory");
		cap *= 2;
	}
	v = realloc(sv->v, cap * sizeof *v);
	if (!v)
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	sv->v = v;
	sv->cap = cap;
	return TM_OK;
}

static tm_status
strv_push_len(tm_strv *sv, const char *s, size_t len, tm_error *err)
{
	char *d;

	if (strv_reserve(sv, err) != TM_OK)
		return TM_ERR_NOMEM;
	d = strndup_err(s, len, err);
	if (!d)
		return TM_ERR_NOMEM;
	sv->v[sv->n++] = d;
	sv->v[sv->n] = NULL;
	return TM_OK;
}

tm_status
tm_priv_strv_push(tm_strv *sv, const char *s, tm_error *err)
{
	if (!sv || !s)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "tm_priv_strv_push: NULL argument");
	return strv_push_len(sv, s, strlen(s), err);
}

tm_status
tm_priv_strv_push_split(tm_strv *sv, const char *s, tm_error *err)
{
	size_t old_n, len;
	const char *colon;

	if (!sv || !s)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "tm_priv_strv_push_split: NULL argument");
	old_n = sv->n;
	for (;;) {
		colon = strchr(s, ':');
		len = colon ? (size_t)(colon - s) : strlen(s);
		if (len > 0 && strv_push_len(sv, s, len, err) != TM_OK)
			goto fail;
		if (!colon)
			return TM_OK;
		s = colon + 1;
	}
fail:
	/* A failed call has taken nothing: drop the parts already added. */
	while (sv->n > old_n)
		free(sv->v[--sv->n]);
	if (sv->v)
		sv->v[sv->n] = NULL;
	return TM_ERR_NOMEM;
}

void
tm_priv_strv_fini(tm_strv *sv)
{
	size_t i;

	if (!sv)
		return;
	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
	sv->cap = 0;
}

/* Rows up to this length live on the stack; the words we compare (keys,
 * plugin and observer names) are far shorter. */
#define EDIT_ROW_STACK 64

size_t
tm_priv_edit_distance(const char *a, const char *b)
{
	size_t stack_row[EDIT_ROW_STACK + 1];
	size_t la, lb, i, j, diag, up, best, *row;

	if (!a)
		a = "";
	if (!b)
		b = "";
	la = strlen(a);
	lb = strlen(b);
	/* Keep the row along the shorter string. */
	if (lb > la) {
		const char *t = a;

		a = b;
		b = t;
		i = la;
		la = lb;
		lb = i;
	}
	if (lb == 0)
		return la;
	row = stack_row;
	if (lb > EDIT_ROW_STACK) {
		row = malloc((lb + 1) * sizeof *row);
		/* The length of the longer string bounds the distance and
		 * is far enough that nobody gets a wrong suggestion. */
		if (!row)
			return la;
	}
	/* Levenshtein, one row at a time: row[j] is the distance between
	 * the first i characters of a and the first j of b. */
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	best = row[lb];
	if (row != stack_row)
		free(row);
	return best;
}

const char *
tm_priv_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t i, d, best_d, limit;

	if (!word || !candidates)
		return NULL;
	/* One edit for short words; two (a swap of neighbours, as in
	 * "modle") or a third of the word for longer ones. */
	limit = strlen(word) <= 3 ? 1 : strlen(word) / 3;
	if (strlen(word) > 3 && limit < 2)
		limit = 2;
	best_d = limit + 1;
	/* Strictly smaller only: on a tie the earlier candidate stays, so
	 * the answer does not depend on anything but the list's order. */
	for (i = 0; i < n; i++) {
		if (!candidates[i])
			continue;
		d = tm_priv_edit_distance(word, candidates[i]);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}

const char *
tm_priv_article(const char *noun)
{
	return noun && strchr("aeiou", noun[0]) && noun[0] ? "an" : "a";
}

float
tm_priv_narrow(double d)
{
	/* FLT_MAX plus half an ulp: from here on, rounding gives inf. */
	const double half_past_max = 0x1.ffffffp127;

	if (d >= half_past_max)
		return INFINITY;
	if (d <= -half_past_max)
		return -INFINITY;
	return (float)d;
}

double
tm_priv_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0.0;
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
