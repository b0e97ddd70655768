/* tmpipe — error reporting shared by the core and plugins.
 *
 * Two levels, as in SQLite and curl: a status code with a fixed text
 * (tm_status_str) and a tm_error that carries the specific message and,
 * when known, the file, line and column it is about.
 */
#ifndef TMPIPE_ERROR_H
#define TMPIPE_ERROR_H

#include <stdarg.h>

#include <tmpipe/visibility.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tm_status {
	TM_OK = 0,
	TM_ERR_NOMEM,		/* out of memory */
	TM_ERR_IO,		/* a file could not be read or written */
	TM_ERR_PARSE,		/* malformed input (YAML, INI, .npy, ...) */
	TM_ERR_INVALID,		/* well-formed but wrong (type, range, shape) */
	TM_ERR_NOT_FOUND,	/* a named thing does not exist */
	TM_ERR_ABI,		/* plugin built for another ABI */
	TM_ERR_UNSUPPORTED,	/* valid request this build cannot do */
	TM_ERR_NUMERIC,		/* NaN, Inf or a value out of numeric range */
	TM_ERR_INTERNAL,	/* a bug in tmpipe */
	TM_STATUS_COUNT
} tm_status;

#define TM_ERROR_FILE_MAX 1024
#define TM_ERROR_MSG_MAX 1024

typedef struct tm_error {
	tm_status code;
	char file[TM_ERROR_FILE_MAX];	/* "" when not about a file */
	unsigned line;			/* 1-based; 0 when unknown */
	unsigned col;			/* 1-based; 0 when unknown */
	char msg[TM_ERROR_MSG_MAX];
} tm_error;

TM_API const char *tm_status_str(tm_status code);

/* Resets err to TM_OK with no position and no message. NULL-safe. */
TM_API void tm_error_clear(tm_error *err);

/* Fills err (when err is not NULL and holds no error yet: the first error
 * wins) and returns code, so a caller can write
 *	return tm_error_set(err, TM_ERR_IO, "%s: %s", path, strerror(errno));
 */
TM_API tm_status tm_error_set(tm_error *err, tm_status code,
			      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* As tm_error_set, with a position. file may be NULL, line and col 0. */
TM_API tm_status tm_error_set_at(tm_error *err, tm_status code,
				 const char *file, unsigned line, unsigned col,
				 const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

TM_API tm_status tm_error_vset_at(tm_error *err, tm_status code,
				  const char *file, unsigned line,
				  unsigned col, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));

/* Prefixes the message with "prefix: " (context added by an outer layer). */
TM_API void tm_error_prefix(tm_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Formats err as one GNU-style line without newline:
 * "file:line:col: message", "file:line: message", "file: message" or
 * "message". Returns buf. */
TM_API const char *tm_error_format(const tm_error *err, char *buf,
				   unsigned long size);

#ifdef __cplusplus
}
#endif

#endif
