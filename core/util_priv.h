/* tmpipe — small private helpers shared by the core's modules. */
#ifndef TMPIPE_UTIL_PRIV_H
#define TMPIPE_UTIL_PRIV_H

#include <stddef.h>

#include <tmpipe/error.h>

#define TM_PRIV __attribute__((visibility("hidden")))
#define TM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* strdup that reports TM_ERR_NOMEM in err; NULL in, NULL out. */
TM_PRIV char *tm_priv_strdup(const char *s, tm_error *err);
/* printf into a new string; NULL with err on failure. */
TM_PRIV char *tm_priv_asprintf(tm_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Folder part of path ("." when none), as a new string. */
TM_PRIV char *tm_priv_dirname(const char *path, tm_error *err);
/* path when absolute, else dir/path, as a new string. */
TM_PRIV char *tm_priv_path_resolve(const char *dir, const char *path,
				   tm_error *err);

/* A growable list of owned strings. */
typedef struct tm_strv {
	char **v;
	size_t n, cap;
} tm_strv;

TM_PRIV tm_status tm_priv_strv_push(tm_strv *sv, const char *s,
				    tm_error *err);
/* Splits s at ':' (empty parts skipped) and pushes each part. */
TM_PRIV tm_status tm_priv_strv_push_split(tm_strv *sv, const char *s,
					  tm_error *err);
TM_PRIV void tm_priv_strv_fini(tm_strv *sv);

/* Edit distance of two short strings, for "did you mean" suggestions. */
TM_PRIV size_t tm_priv_edit_distance(const char *a, const char *b);
/* The candidate closest to word, when it is close enough to suggest
 * (distance 1 for words of up to 3 characters, else max(2,
 * strlen(word) / 3)), else NULL. */
TM_PRIV const char *tm_priv_suggest(const char *word,
				    const char *const *candidates, size_t n);

/* "an" before a vowel sound ("an int", "an emitter"), else "a". */
TM_PRIV const char *tm_priv_article(const char *noun);

/* A double rounded to float as a cast does (to nearest, ties to even),
 * but saturating to +-infinity where the cast of an out-of-range value
 * is undefined in C; callers then report the infinity with context. */
TM_PRIV float tm_priv_narrow(double d);

/* Monotonic time in seconds. */
TM_PRIV double tm_priv_now(void);

#endif
