/* tmpipe — messages from the core and plugins to whoever runs them.
 *
 * Plugins never print (STYLE.md). What a stage wants its user to know
 * without failing — a BatchNorm that could not be folded, how much a
 * transform evened out the channel ranges — goes through tm_log, and the
 * program embedding libtmpipe decides what to show: tmpipe(1) prints
 * warnings unless -q, notes with -v and traces with -vv, as
 * "tmpipe: SOURCE: MESSAGE" on stderr. With no handler set (the default)
 * messages are dropped: a library is silent unless asked.
 *
 * Severities count up like the CLI's verbosity (log_level in
 * tmpipe.conf(5): quiet 0, info 1, verbose 2, debug 3), so a program
 * shows a message when its level is at least the message's severity.
 */
#ifndef TMPIPE_LOG_H
#define TMPIPE_LOG_H

#include <tmpipe/visibility.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tm_log_severity {
	TM_LOG_WARNING = 1,	/* the run goes on, but look at this */
	TM_LOG_NOTE,		/* what a stage did (a summary, a report) */
	TM_LOG_TRACE		/* details for debugging */
} tm_log_severity;

/* source names who speaks (a plugin's name, "calibration"); message is
 * one line without a newline. Both are borrowed for the call. */
typedef void (*tm_log_fn)(void *user, tm_log_severity severity,
			  const char *source, const char *message);

/* Sets the process-wide handler (NULL: drop messages). Set it before a
 * run starts: tm_log calls the handler from the thread that logs, with no
 * lock, and reads it without one. */
TM_API void tm_log_set_handler(tm_log_fn fn, void *user);

/* Formats one message (cut at 1023 bytes) and hands it to the handler. */
TM_API void tm_log(tm_log_severity severity, const char *source,
		   const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
