/* tmpipe fuzzing — the harnesses' temporary folder and error checks. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char tmpdir[4096];
static char path[4096 + 256];

/* Removes the folder and the files the harnesses wrote (they write
 * only plain files, straight inside it). */
static void
cleanup(void)
{
	DIR *d;
	struct dirent *e;
	char p[sizeof tmpdir + 256];

	if (!tmpdir[0])
		return;
	d = opendir(tmpdir);
	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

static int
make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof tmpdir, "%s/tmpipe-fuzz.XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		fprintf(stderr, "fuzz: %s: %s\n", tmpdir, strerror(errno));
		tmpdir[0] = '\0';
		return -1;
	}
	atexit(cleanup);
	return 0;
}

const char *
tm_fuzz_write(const char *name, const uint8_t *data, size_t size)
{
	FILE *fp;

	if (!tmpdir[0] && make_tmpdir())
		return NULL;
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	fp = fopen(path, "wb");
	if (!fp) {
		fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if ((size && fwrite(data, 1, size, fp) != size) | fclose(fp)) {
		fprintf(stderr, "fuzz: %s: write failed\n", path);
		return NULL;
	}
	return path;
}

int
tm_fuzz_check_err(const char *what, tm_status st, const tm_error *err,
		  const char *file)
{
	const char *base = file ? strrchr(file, '/') : NULL;
	char buf[TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 64];

	base = base ? base + 1 : file;
	if (st == TM_OK)
		return 0;
	tm_error_format(err, buf, sizeof buf);
	if (err->code != st) {
		fprintf(stderr, "fuzz: %s returned %s but err holds %s: %s\n",
			what, tm_status_str(st), tm_status_str(err->code), buf);
		return 1;
	}
	if (!err->msg[0]) {
		fprintf(stderr, "fuzz: %s failed (%s) without a message\n",
			what, tm_status_str(st));
		return 1;
	}
	if (base && !strstr(buf, base)) {
		fprintf(stderr, "fuzz: %s: the error does not name %s: %s\n",
			what, base, buf);
		return 1;
	}
	return 0;
}
