/* tmpipe — pending output files, committed together or not at all. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <tmpipe/output.h>

#include "util_priv.h"

typedef struct pending {
	char *path;		/* final name */
	char *tmp;		/* temporary beside it */
	FILE *fp;		/* open until commit */
	int renamed;
} pending;

struct tm_outputs {
	pending *v;
	size_t n;
	size_t renamed;		/* how many are in place */
	char **dirs;		/* folders created for the outputs, in
				 * creation order: removed on discard */
	size_t n_dirs;
};

/* Creates the missing folders above path (mkdir -p of its dirname) and
 * records them so a discarded run removes them again. */
static tm_status
make_parents(tm_outputs *outs, const char *path, tm_error *err)
{
	char *dir = tm_priv_dirname(path, err);
	struct stat sb;
	char **v;
	tm_status st = TM_OK;

	if (!dir)
		return TM_ERR_NOMEM;
	if (stat(dir, &sb) == 0 || errno != ENOENT) {
		free(dir);
		return TM_OK;
	}
	st = make_parents(outs, dir, err);
	if (st)
		goto out;
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		st = tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				     "cannot create folder %s: %s", dir,
				     strerror(errno));
		goto out;
	}
	v = realloc(outs->dirs, (outs->n_dirs + 1) * sizeof *v);
	if (!v) {
		st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		rmdir(dir);
		goto out;
	}
	outs->dirs = v;
	outs->dirs[outs->n_dirs++] = dir;
	return TM_OK;
out:
	free(dir);
	return st;
}

tm_outputs *
tm_outputs_new(void)
{
	return calloc(1, sizeof(tm_outputs));
}

FILE *
tm_outputs_open(tm_outputs *outs, const char *path, tm_error *err)
{
	pending *v, *p;
	int fd;

	for (size_t i = 0; i < outs->n; i++)
		if (strcmp(outs->v[i].path, path) == 0) {
			tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
					"written twice in one run");
			return NULL;
		}
	v = realloc(outs->v, (outs->n + 1) * sizeof *v);
	if (!v) {
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
		return NULL;
	}
	outs->v = v;
	p = &outs->v[outs->n];
	memset(p, 0, sizeof *p);
	if (make_parents(outs, path, err))
		return NULL;
	p->path = tm_priv_strdup(path, err);
	p->tmp = tm_priv_asprintf(err, "%s.tmp.XXXXXX", path);
	if (!p->path || !p->tmp)
		goto fail;
	fd = mkstemp(p->tmp);
	if (fd < 0) {
		tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				"cannot create output: %s", strerror(errno));
		goto fail;
	}
	/* mkstemp makes the file 0600; give it what open(2) would. */
	{
		mode_t mask = umask(0);

		umask(mask);
		if (fchmod(fd, 0666 & ~mask) != 0) {
			/* Not fatal: the file is still ours to write. */
		}
	}
	p->fp = fdopen(fd, "w");
	if (!p->fp) {
		tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				"cannot create output: %s", strerror(errno));
		close(fd);
		unlink(p->tmp);
		goto fail;
	}
	outs->n++;
	return p->fp;
fail:
	free(p->path);
	free(p->tmp);
	return NULL;
}

void
tm_outputs_discard(tm_outputs *outs)
{
	if (!outs)
		return;
	for (size_t i = 0; i < outs->n; i++) {
		pending *p = &outs->v[i];

		if (p->fp) {
			fclose(p->fp);
			p->fp = NULL;
		}
		if (!p->renamed && p->tmp)
			unlink(p->tmp);
	}
	/* Folders made for this run go too, unless something is in them
	 * now (rmdir refuses). */
	if (outs->renamed == 0)
		while (outs->n_dirs) {
			char *d = outs->dirs[--outs->n_dirs];

			rmdir(d);
			free(d);
		}
}

tm_status
tm_outputs_commit(tm_outputs *outs, tm_error *err)
{
	/* Close and check everything first, so a full disk on the last file
	 * does not leave the first ones renamed. */
	for (size_t i = 0; i < outs->n; i++) {
		pending *p = &outs->v[i];
		int bad = ferror(p->fp);

		if (fclose(p->fp) != 0)
			bad = 1;
		p->fp = NULL;
		if (bad) {
			tm_error_set_at(err, TM_ERR_IO, p->path, 0, 0,
					"write failed: %s", strerror(errno));
			tm_outputs_discard(outs);
			return TM_ERR_IO;
		}
	}
	for (size_t i = 0; i < outs->n; i++) {
		pending *p = &outs->v[i];

		if (rename(p->tmp, p->path) != 0) {
			tm_error_set_at(err, TM_ERR_IO, p->path, 0, 0,
					"cannot rename %s into place: %s",
					p->tmp, strerror(errno));
			tm_outputs_discard(outs);
			return TM_ERR_IO;
		}
		p->renamed = 1;
		outs->renamed++;
	}
	return TM_OK;
}

size_t
tm_outputs_count(const tm_outputs *outs)
{
	return outs ? outs->n : 0;
}

size_t
tm_outputs_committed(const tm_outputs *outs)
{
	return outs ? outs->renamed : 0;
}

const char *
tm_outputs_path(const tm_outputs *outs, size_t i)
{
	return outs && i < outs->n ? outs->v[i].path : NULL;
}

void
tm_outputs_free(tm_outputs *outs)
{
	if (!outs)
		return;
	tm_outputs_discard(outs);
	for (size_t i = 0; i < outs->n; i++) {
		free(outs->v[i].path);
		free(outs->v[i].tmp);
	}
	for (size_t i = 0; i < outs->n_dirs; i++)
		free(outs->dirs[i]);
	free(outs->dirs);
	free(outs->v);
	free(outs);
}
