/* tmpipe — error reporting. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <tmpipe/error.h>

static const char *const status_text[TM_STATUS_COUNT] = {
	[TM_OK] = "success",
	[TM_ERR_NOMEM] = "out of memory",
	[TM_ERR_IO] = "input/output error",
	[TM_ERR_PARSE] = "malformed input",
	[TM_ERR_INVALID] = "invalid value",
	[TM_ERR_NOT_FOUND] = "not found",
	[TM_ERR_ABI] = "plugin ABI mismatch",
	[TM_ERR_UNSUPPORTED] = "not supported",
	[TM_ERR_NUMERIC] = "numeric error",
	[TM_ERR_INTERNAL] = "internal error",
};

const char *
tm_status_str(tm_status code)
{
	if ((unsigned)code >= TM_STATUS_COUNT)
		return "unknown error";
	return status_text[code];
}

void
tm_error_clear(tm_error *err)
{
	if (!err)
		return;
	err->code = TM_OK;
	err->file[0] = '\0';
	err->line = 0;
	err->col = 0;
	err->msg[0] = '\0';
}

tm_status
tm_error_vset_at(tm_error *err, tm_status code, const char *file,
		 unsigned line, unsigned col, const char *fmt, va_list ap)
{
	/* The first error wins: it is the cause, later ones are fallout. */
	if (!err || err->code != TM_OK)
		return code;
	err->code = code;
	snprintf(err->file, sizeof err->file, "%s", file ? file : "");
	err->line = line;
	err->col = col;
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	return code;
}

tm_status
tm_error_set_at(tm_error *err, tm_status code, const char *file,
		unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tm_error_vset_at(err, code, file, line, col, fmt, ap);
	va_end(ap);
	return code;
}

tm_status
tm_error_set(tm_error *err, tm_status code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tm_error_vset_at(err, code, NULL, 0, 0, fmt, ap);
	va_end(ap);
	return code;
}

void
tm_error_prefix(tm_error *err, const char *fmt, ...)
{
	char prefix[TM_ERROR_MSG_MAX];
	char old[TM_ERROR_MSG_MAX];
	va_list ap;

	if (!err || err->code == TM_OK)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof old);
	/* Precisions keep the pieces within the buffer (and the compiler's
	 * truncation warning quiet); a long message loses its tail. */
	snprintf(err->msg, sizeof err->msg, "%.*s: %.*s",
		 (int)(sizeof err->msg / 2), prefix,
		 (int)(sizeof err->msg / 2 - 3), old);
}

const char *
tm_error_format(const tm_error *err, char *buf, unsigned long size)
{
	const char *msg;

	if (!buf || size == 0)
		return buf;
	if (!err) {
		buf[0] = '\0';
		return buf;
	}
	msg = err->msg[0] ? err->msg : tm_status_str(err->code);
	if (err->file[0] && err->line && err->col)
		snprintf(buf, size, "%s:%u:%u: %s", err->file, err->line,
			 err->col, msg);
	else if (err->file[0] && err->line)
		snprintf(buf, size, "%s:%u: %s", err->file, err->line, msg);
	else if (err->file[0])
		snprintf(buf, size, "%s: %s", err->file, msg);
	else
		snprintf(buf, size, "%s", msg);
	return buf;
}
