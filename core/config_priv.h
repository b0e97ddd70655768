/* tmpipe — global settings from INI files (inih).
 *
 * Files are read in this order, each overriding the keys it sets:
 *	$(sysconfdir)/tmpipe/tmpipe.conf	(absent: skipped)
 *	$XDG_CONFIG_HOME/tmpipe/tmpipe.conf	(absent: skipped; unset or
 *						relative: ~/.config/...)
 *	$TMPIPE_CONFIG				(set but absent: an error)
 * and the command line overrides them all. See tmpipe.conf(5).
 * $TMPIPE_NO_SYSTEM_CONFIG set (to anything) skips the sysconfdir file;
 * the test suite sets it so an installed tmpipe cannot leak into it.
 *
 *	[plugins]
 *	path = /opt/tmpipe/plugins:/home/me/obs	; searched after
 *						; --plugin-path and
 *						; $TMPIPE_PLUGIN_PATH
 *	[run]
 *	threads = 1				; 0..256; 0 = online CPUs
 *	log_level = info			; quiet | info | verbose | debug
 */
#ifndef TMPIPE_CONFIG_PRIV_H
#define TMPIPE_CONFIG_PRIV_H

#include <tmpipe/error.h>

#include "util_priv.h"

typedef enum tm_log_level {
	TM_LOG_QUIET = 0,
	TM_LOG_INFO,
	TM_LOG_VERBOSE,
	TM_LOG_DEBUG
} tm_log_level;

typedef struct tm_config {
	tm_strv plugin_paths;	/* from [plugins] path; a later file's
				 * path replaces an earlier file's;
				 * relative entries are resolved
				 * against the file's folder */
	int threads;		/* default 1; 0 in a file is resolved
				 * to the online CPUs, so 1..256 */
	tm_log_level log_level;	/* default TM_LOG_INFO */
	tm_strv files;		/* the files actually read, in order */
} tm_config;

/* Defaults: no plugin paths, 1 thread, info. */
TM_API void tm_config_init(tm_config *c);
TM_API void tm_config_fini(tm_config *c);

/* Reads one file into c. Unknown sections or keys, bad values and syntax
 * errors are TM_ERR_PARSE/TM_ERR_INVALID with err->file and err->line set
 * (the first error in the file). A missing file is TM_ERR_IO. On error
 * c is left as it was. */
TM_API tm_status tm_config_load_file(tm_config *c, const char *path,
					   tm_error *err);

/* Reads the standard files in the order above. sysconfdir is normally
 * TM_SYSCONFDIR; tests pass their own. Environment is read with getenv.
 * On error c is left as it was, whichever file failed. */
TM_API tm_status tm_config_load_default(tm_config *c,
					      const char *sysconfdir,
					      tm_error *err);

/* "quiet" → TM_LOG_QUIET etc.; -1 when unknown. */
TM_PRIV int tm_priv_log_level_from_name(const char *name);

#endif
