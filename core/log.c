/* tmpipe — messages to the embedding program (see tmpipe/log.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include <tmpipe/log.h>

static tm_log_fn log_fn;
static void *log_user;

void
tm_log_set_handler(tm_log_fn fn, void *user)
{
	log_fn = fn;
	log_user = user;
}

void
tm_log(tm_log_severity severity, const char *source, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	/* Nobody listening: skip the formatting too. */
	if (!log_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_fn(log_user, severity, source ? source : "tmpipe", msg);
}
