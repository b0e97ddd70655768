/* tmpipe fuzzing — replays the seed corpora and the regression inputs
 * through their harnesses (make check; no libFuzzer needed).
 *
 *	replay			every file in $srcdir/fuzz/corpus/<target>/
 *				and $srcdir/fuzz/regressions/<target>/
 *	replay TARGET FILE...	those files through one harness
 *
 * A crash is the sanitizer's (or valgrind's) to report; a harness that
 * returns nonzero (a broken promise, see fuzz.h) counts as failed. Prints
 * "N passed, N failed" last, as every test program does.
 * $TM_FUZZ_REPLAY_EVERY=K replays every K-th file of each folder only
 * (for a slow run, e.g. under valgrind). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const struct target {
	const char *name;
	tm_fuzz_fn fn;
} targets[] = {
	{"npy", tm_fuzz_npy},	    {"pipeline", tm_fuzz_pipeline},
	{"config", tm_fuzz_config}, {"onnx", tm_fuzz_onnx},
	{"blob", tm_fuzz_blob},
};

#define N_TARGETS (sizeof targets / sizeof targets[0])

static unsigned passed, failed;

static int
read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL, *p;
	size_t cap = 0, n = 0, got;

	if (!fp)
		return -1;
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			p = realloc(buf, cap);
			if (!p) {
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = p;
		}
		got = fread(buf + n, 1, cap - n, fp);
		n += got;
	} while (got);
	if (ferror(fp)) {
		free(buf);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	*data = buf;
	*size = n;
	return 0;
}

static void
replay_file(const struct target *t, const char *path)
{
	uint8_t *data;
	size_t size;

	if (read_file(path, &data, &size)) {
		fprintf(stderr, "FAIL %s: %s\n", path, strerror(errno));
		failed++;
		return;
	}
	if (t->fn(data, size)) {
		fprintf(stderr, "FAIL %s (%s)\n", path, t->name);
		failed++;
	} else {
		passed++;
	}
	free(data);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of dir in name order (a missing folder holds none). */
static void
replay_dir(const struct target *t, const char *dir, unsigned every)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, **p, path[4096];
	size_t n = 0, cap = 0;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			p = realloc(names, cap * sizeof *names);
			if (!p)
				break;
			names = p;
		}
		names[n] = strdup(e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, by_name);
	for (size_t i = 0; i < n; i++) {
		if (i % every == 0) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			replay_file(t, path);
		}
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	const char *srcdir = getenv("srcdir");
	const char *ev = getenv("TM_FUZZ_REPLAY_EVERY");
	unsigned every = ev && atoi(ev) > 0 ? (unsigned)atoi(ev) : 1;
	char dir[4096];
	size_t k;

	if (!srcdir || !*srcdir)
		srcdir = ".";
	if (argc > 1) {
		for (k = 0; k < N_TARGETS; k++)
			if (!strcmp(argv[1], targets[k].name))
				break;
		if (k == N_TARGETS || argc < 3) {
			fprintf(stderr,
				"usage: %s [TARGET FILE...] (targets: "
				"npy, pipeline, config, onnx, blob)\n",
				argv[0]);
			return 2;
		}
		for (int i = 2; i < argc; i++)
			replay_file(&targets[k], argv[i]);
	} else {
		for (k = 0; k < N_TARGETS; k++) {
			snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", srcdir,
				 targets[k].name);
			replay_dir(&targets[k], dir, every);
			snprintf(dir, sizeof dir, "%s/fuzz/regressions/%s",
				 srcdir, targets[k].name);
			replay_dir(&targets[k], dir, 1);
		}
		if (!passed && !failed) {
			fprintf(stderr, "no corpus under %s/fuzz\n", srcdir);
			failed++;
		}
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
