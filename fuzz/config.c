/* tmpipe fuzzing — tmpipe.conf (core/config.c, inih): one file read into
 * the defaults, as tmpipe reads $TMPIPE_CONFIG or --config. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "config_priv.h"
#include "fuzz.h"

int
tm_fuzz_config(const uint8_t *data, size_t size)
{
	const char *path = tm_fuzz_write("tmpipe.conf", data, size);
	tm_config c;
	tm_error err;
	tm_status st;
	int bad;

	if (!path)
		return 1;
	tm_config_init(&c);
	tm_error_clear(&err);
	st = tm_config_load_file(&c, path, &err);
	bad = tm_fuzz_check_err("tm_config_load_file", st, &err, path);
	/* "On error c is left as it was": the defaults. */
	if (st && (c.plugin_paths.n || c.threads != 1 ||
		   c.log_level != TM_LOG_INFO || c.files.n)) {
		fprintf(stderr,
			"fuzz: %s: a failed load changed the "
			"settings\n",
			path);
		bad = 1;
	}
	tm_config_fini(&c);
	return bad;
}

#ifdef TM_FUZZ_LIBFUZZER
TM_FUZZ_TARGET(tm_fuzz_config)
#endif
