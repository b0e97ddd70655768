/* tmpipe — calibration data sources (see dataset_priv.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tmpipe/npy.h>

#include "dataset_priv.h"

/* Room for "(d, d, ...)" or "[d, d, ...]" with TM_MAX_DIMS + 1 dims. */
#define SHAPE_STR_MAX ((TM_MAX_DIMS + 1) * 22 + 4)

/* One model input's data. */
typedef struct ds_source {
	const tm_calib_source *cs;	/* borrowed from the pipeline */
	const tm_tensor *t;		/* the model input */
	size_t numel;			/* values in one sample */
	size_t channels, inner;		/* axis 0 of a sample, and the rest */
	size_t n;			/* samples */
	int is_dir;
	char **names;			/* folder: n file names, sorted */
	size_t max_name;		/* the longest */
} ds_source;

struct tm_dataset {
	ds_source *src;			/* one per model input, in the order
					 * of m->inputs */
	size_t n_src;
	size_t samples, batch, batches;
	size_t bytes;			/* the folders' indexes */
};

struct tm_dataset_reader {
	const tm_dataset *ds;
	tm_npy_reader **npy;		/* per source: its file, or NULL */
	char *path;			/* a folder's dir/name */
	size_t path_size;
	size_t bytes;
};

/* numpy's spelling: "(3,)", "(4, 2)"; with square brackets "[4, 2]" for
 * model shapes. lead, when not 0, is written first. */
static const char *
format_shape(int ndim, const int64_t *shape, int64_t lead, int numpy,
	     char *buf, size_t size)
{
	size_t n = 0;
	int k = 0;

	n += (size_t)snprintf(buf, size, "%s", numpy ? "(" : "[");
	if (lead && n < size) {
		n += (size_t)snprintf(buf + n, size - n, "%lld",
				      (long long)lead);
		k++;
	}
	for (int i = 0; i < ndim && n < size; i++, k++)
		n += (size_t)snprintf(buf + n, size - n, "%s%lld",
				      k ? ", " : "", (long long)shape[i]);
	if (n < size)
		snprintf(buf + n, size - n, "%s",
			 !numpy ? "]" : k == 1 ? ",)" : ")");
	return buf;
}

static void
preprocess(const ds_source *s, float *x, size_t n)
{
	const tm_preprocess *p = &s->cs->pre;

	if (!p->given)
		return;
	for (size_t i = 0; i < n; i++)
		for (size_t c = 0; c < s->channels; c++) {
			double mean = !p->n_mean	  ? 0.0
				      : p->n_mean == 1 ? p->mean[0]
						       : p->mean[c];
			double sd = !p->n_std	       ? 1.0
				    : p->n_std == 1 ? p->std[0]
						    : p->std[c];
			float *v = x + (i * s->channels + c) * s->inner;

			for (size_t j = 0; j < s->inner; j++)
				v[j] = tm_priv_narrow(((double)v[j] * p->scale -
						 mean) / sd);
		}
}

/* --- opening ---------------------------------------------------------- */

static tm_status
check_values(const ds_source *s, const char *key, size_t count,
	     unsigned line, unsigned col, tm_error *err)
{
	char what[300], shape[SHAPE_STR_MAX];

	if (count == 0 || count == 1 || count == s->channels)
		return TM_OK;
	if (s->cs->input)
		snprintf(what, sizeof what, "calibration.preprocess.%s.%s",
			 s->cs->input, key);
	else
		snprintf(what, sizeof what, "calibration.preprocess.%s", key);
	return tm_error_set_at(err, TM_ERR_INVALID, s->cs->pre.file, line, col,
			       "%s: %zu values, but input '%s' has %zu "
			       "channel%s (axis 0 of its shape %s); give 1 "
			       "value for all channels or one per channel",
			       what, count, s->t->name, s->channels,
			       s->channels == 1 ? "" : "s",
			       format_shape(s->t->ndim, s->t->shape, 0, 0,
					    shape, sizeof shape));
}

/* A .npy file of N samples. */
static tm_status
open_file(ds_source *s, tm_error *err)
{
	tm_npy_reader *r = tm_npy_open(s->cs->path, err);

	if (!r) {
		tm_error_prefix(err, "calibration data");
		return err ? err->code : TM_ERR_IO;
	}
	if (tm_npy_ndim(r) < 1 || tm_npy_row_numel(r) != s->numel) {
		char shape[SHAPE_STR_MAX];

		format_shape(tm_npy_ndim(r), tm_npy_shape(r), 0, 1, shape,
			     sizeof shape);
		tm_npy_close(r);
		return tm_error_set_at(err, TM_ERR_INVALID, s->cs->path, 0, 0,
				       "shape %s does not hold samples of "
				       "input '%s' (%zu values each); "
				       "expected N x %zu", shape, s->t->name,
				       s->numel, s->numel);
	}
	s->n = tm_npy_rows(r);
	tm_npy_close(r);
	if (s->n == 0)
		return tm_error_set_at(err, TM_ERR_INVALID, s->cs->path, 0, 0,
				       "holds no samples");
	return TM_OK;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
is_sample_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 4 &&
	       strcmp(name + len - 4, ".npy") == 0;
}

/* One sample: the input's shape, or 1 x that shape. */
static int
is_one_sample(const tm_tensor *t, tm_npy_reader *r)
{
	const int64_t *sh = tm_npy_shape(r);
	int nd = tm_npy_ndim(r), off = 0;

	if (nd == t->ndim + 1 && sh[0] == 1)
		off = 1;
	else if (nd != t->ndim)
		return 0;
	for (int i = 0; i < t->ndim; i++)
		if (sh[off + i] != t->shape[i])
			return 0;
	return 1;
}

/* dir/name in buf (of size bytes, enough for the longest name). */
static const char *
join(char *buf, size_t size, const char *dir, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
	return buf;
}

/* A folder of one .npy file per sample. Every file's header is checked
 * now: opening them all costs little next to reading them. */
static tm_status
open_dir(tm_dataset *ds, ds_source *s, tm_error *err)
{
	const char *dir = s->cs->path;
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 0, size;
	char *path = NULL;
	tm_status st = TM_OK;

	if (!d)
		return tm_error_set_at(err, TM_ERR_IO, dir, 0, 0,
				       "calibration data: cannot open: %s",
				       strerror(errno));
	for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
		char *name;

		if (!is_sample_name(e->d_name))
			continue;
		if (s->n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			char **v = realloc(s->names, nc * sizeof *v);

			if (!v)
				goto nomem;
			s->names = v;
			cap = nc;
		}
		name = strdup(e->d_name);
		if (!name)
			goto nomem;
		s->names[s->n++] = name;
		if (strlen(name) > s->max_name)
			s->max_name = strlen(name);
		ds->bytes += sizeof(char *) + strlen(name) + 1;
	}
	if (errno) {
		st = tm_error_set_at(err, TM_ERR_IO, dir, 0, 0,
				     "calibration data: cannot read the "
				     "folder: %s", strerror(errno));
		goto out;
	}
	if (s->n == 0) {
		st = tm_error_set_at(err, TM_ERR_INVALID, dir, 0, 0,
				     "holds no .npy files (a folder of "
				     "calibration data holds one .npy file "
				     "per sample)");
		goto out;
	}
	qsort(s->names, s->n, sizeof *s->names, cmp_names);
	size = strlen(dir) + s->max_name + 2;
	path = malloc(size);
	if (!path)
		goto nomem;
	for (size_t i = 0; i < s->n; i++) {
		tm_npy_reader *r;

		join(path, size, dir, s->names[i]);
		r = tm_npy_open(path, err);
		if (!r) {
			tm_error_prefix(err, "calibration data");
			st = err ? err->code : TM_ERR_IO;
			goto out;
		}
		if (!is_one_sample(s->t, r)) {
			char got[SHAPE_STR_MAX], one[SHAPE_STR_MAX];
			char lead[SHAPE_STR_MAX];

			format_shape(tm_npy_ndim(r), tm_npy_shape(r), 0, 1,
				     got, sizeof got);
			format_shape(s->t->ndim, s->t->shape, 0, 1, one,
				     sizeof one);
			format_shape(s->t->ndim, s->t->shape, 1, 1, lead,
				     sizeof lead);
			tm_npy_close(r);
			st = tm_error_set_at(err, TM_ERR_INVALID, path, 0, 0,
					     "shape %s is not one sample of "
					     "input '%s' (expected %s or %s)",
					     got, s->t->name, one, lead);
			goto out;
		}
		tm_npy_close(r);
	}
	goto out;
nomem:
	st = tm_error_set(err, TM_ERR_NOMEM, "out of memory");
out:
	free(path);
	closedir(d);
	return st;
}

static tm_status
open_source(tm_dataset *ds, ds_source *s, tm_error *err)
{
	struct stat sb;

	if (stat(s->cs->path, &sb) != 0)
		return tm_error_set_at(err, TM_ERR_IO, s->cs->path, 0, 0,
				       "calibration data: cannot open: %s",
				       strerror(errno));
	s->is_dir = S_ISDIR(sb.st_mode);
	/* Threads read batches in any order, each through its own
	 * handle: a pipe could be read only once, in order. */
	if (!s->is_dir && !S_ISREG(sb.st_mode))
		return tm_error_set_at(err, TM_ERR_INVALID, s->cs->path, 0, 0,
				       "calibration data must be a file or a "
				       "folder, not a pipe or a device (it "
				       "is read by batch, in any order)");
	return s->is_dir ? open_dir(ds, s, err) : open_file(s, err);
}

/* "a, b, c" */
static void
list_inputs(const tm_model *m, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < m->n_inputs && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i ? ", " : "",
					m->tensors[m->inputs[i]]->name);
}

/* Which model input each source feeds. */
static tm_status
match_inputs(const tm_model *m, const tm_pipeline *pl, tm_dataset *ds,
	     tm_error *err)
{
	const char *names[256];
	size_t n = 0;
	char list[512];

	list_inputs(m, list, sizeof list);
	if (pl->n_calib_sources == 1 && !pl->calib_sources[0].input) {
		if (m->n_inputs != 1)
			return tm_error_set_at(err, TM_ERR_INVALID,
					       pl->calib_file, pl->calib_line,
					       pl->calib_col,
					       "calibration.data: the model "
					       "has %zu inputs (%s); give "
					       "each its data as a map "
					       "{input: file-or-folder, ...}",
					       m->n_inputs, list);
		ds->src[0].cs = &pl->calib_sources[0];
		return TM_OK;
	}
	for (size_t i = 0; i < m->n_inputs && n < TM_ARRAY_LEN(names); i++)
		names[n++] = m->tensors[m->inputs[i]]->name;
	for (size_t j = 0; j < pl->n_calib_sources; j++) {
		const tm_calib_source *cs = &pl->calib_sources[j];
		const char *sugg;
		size_t i;

		for (i = 0; i < m->n_inputs; i++)
			if (strcmp(m->tensors[m->inputs[i]]->name,
				   cs->input) == 0)
				break;
		if (i < m->n_inputs) {
			ds->src[i].cs = cs;
			continue;
		}
		sugg = tm_priv_suggest(cs->input, names, n);
		if (sugg)
			return tm_error_set_at(err, TM_ERR_NOT_FOUND, cs->file,
					       cs->key_line, cs->key_col,
					       "calibration.data: '%s' is not "
					       "an input of the model; did "
					       "you mean '%s'? (inputs: %s)",
					       cs->input, sugg, list);
		return tm_error_set_at(err, TM_ERR_NOT_FOUND, cs->file,
				       cs->key_line, cs->key_col,
				       "calibration.data: '%s' is not an "
				       "input of the model (inputs: %s)",
				       cs->input, list);
	}
	for (size_t i = 0; i < m->n_inputs; i++)
		if (!ds->src[i].cs)
			return tm_error_set_at(err, TM_ERR_INVALID,
					       pl->calib_file, pl->calib_line,
					       pl->calib_col,
					       "calibration.data: no data for "
					       "input '%s'; every input of "
					       "the model needs some (inputs: "
					       "%s)", ds->src[i].t->name, list);
	return TM_OK;
}

tm_status
tm_priv_dataset_open(const tm_model *m, const tm_pipeline *pl, size_t batch,
		     tm_dataset **out, tm_error *err)
{
	tm_dataset *ds;
	const ds_source *first = NULL;
	tm_status st;

	*out = NULL;
	if (batch == 0 || m->n_inputs == 0 || pl->n_calib_sources == 0)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "dataset: batch %zu, %zu inputs, %zu "
				    "sources", batch, m->n_inputs,
				    pl->n_calib_sources);
	ds = calloc(1, sizeof *ds);
	if (ds)
		ds->src = calloc(m->n_inputs, sizeof *ds->src);
	if (!ds || !ds->src) {
		tm_priv_dataset_free(ds);
		return tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	}
	ds->n_src = m->n_inputs;
	ds->batch = batch;
	for (size_t i = 0; i < m->n_inputs; i++) {
		ds_source *s = &ds->src[i];

		s->t = m->tensors[m->inputs[i]];
		s->numel = tm_tensor_numel(s->t);
		s->channels = s->t->ndim > 0 ? (size_t)s->t->shape[0] : 1;
		if (s->channels == 0)
			s->channels = 1;
		s->inner = s->numel / s->channels;
	}
	st = match_inputs(m, pl, ds, err);
	for (size_t i = 0; !st && i < ds->n_src; i++) {
		const ds_source *s = &ds->src[i];
		const tm_preprocess *p = &s->cs->pre;

		st = check_values(s, "mean", p->n_mean, p->mean_line,
				  p->mean_col, err);
		if (!st)
			st = check_values(s, "std", p->n_std, p->std_line,
					  p->std_col, err);
	}
	/* Sources in the order written, so the first one a user reads is
	 * the one the others' counts are compared with. */
	for (size_t j = 0; !st && j < pl->n_calib_sources; j++) {
		ds_source *s = NULL;

		for (size_t i = 0; i < ds->n_src; i++)
			if (ds->src[i].cs == &pl->calib_sources[j])
				s = &ds->src[i];
		st = open_source(ds, s, err);
		if (st)
			break;
		if (!first) {
			first = s;
			continue;
		}
		if (s->n != first->n)
			st = tm_error_set_at(err, TM_ERR_INVALID, s->cs->file,
					     s->cs->line, s->cs->col,
					     "calibration.data: input '%s' "
					     "has %zu sample%s but input '%s' "
					     "has %zu; give every input the "
					     "same number", s->t->name, s->n,
					     s->n == 1 ? "" : "s",
					     first->t->name, first->n);
	}
	if (st) {
		tm_priv_dataset_free(ds);
		return st;
	}
	ds->samples = first->n;
	ds->batches = (ds->samples + batch - 1) / batch;
	*out = ds;
	return TM_OK;
}

void
tm_priv_dataset_free(tm_dataset *ds)
{
	if (!ds)
		return;
	for (size_t i = 0; ds->src && i < ds->n_src; i++) {
		for (size_t k = 0; k < ds->src[i].n && ds->src[i].names; k++)
			free(ds->src[i].names[k]);
		free(ds->src[i].names);
	}
	free(ds->src);
	free(ds);
}

size_t
tm_priv_dataset_samples(const tm_dataset *ds)
{
	return ds->samples;
}

size_t
tm_priv_dataset_batches(const tm_dataset *ds)
{
	return ds->batches;
}

size_t
tm_priv_dataset_bytes(const tm_dataset *ds)
{
	return ds->bytes;
}

/* --- reading ---------------------------------------------------------- */

tm_dataset_reader *
tm_priv_dataset_reader_new(const tm_dataset *ds, tm_error *err)
{
	tm_dataset_reader *r = calloc(1, sizeof *r);
	size_t path = 0;

	if (!r)
		goto nomem;
	r->ds = ds;
	r->npy = calloc(ds->n_src, sizeof *r->npy);
	if (!r->npy)
		goto nomem;
	r->bytes = sizeof *r + ds->n_src * sizeof *r->npy;
	for (size_t i = 0; i < ds->n_src; i++) {
		const ds_source *s = &ds->src[i];

		if (s->is_dir) {
			size_t need = strlen(s->cs->path) + s->max_name + 2;

			path = need > path ? need : path;
			continue;
		}
		r->npy[i] = tm_npy_open(s->cs->path, err);
		if (!r->npy[i]) {
			tm_error_prefix(err, "calibration data");
			goto fail;
		}
		/* Checked at open; a file replaced since is refused. */
		if (tm_npy_rows(r->npy[i]) != s->n ||
		    tm_npy_row_numel(r->npy[i]) != s->numel) {
			tm_error_set_at(err, TM_ERR_IO, s->cs->path, 0, 0,
					"calibration data: the file changed "
					"while it was being read");
			goto fail;
		}
	}
	if (path) {
		r->path = malloc(path);
		if (!r->path)
			goto nomem;
		r->path_size = path;
		r->bytes += path;
	}
	return r;
nomem:
	tm_error_set(err, TM_ERR_NOMEM, "out of memory");
fail:
	tm_priv_dataset_reader_free(r);
	return NULL;
}

void
tm_priv_dataset_reader_free(tm_dataset_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; r->npy && i < r->ds->n_src; i++)
		tm_npy_close(r->npy[i]);
	free(r->npy);
	free(r->path);
	free(r);
}

size_t
tm_priv_dataset_reader_bytes(const tm_dataset_reader *r)
{
	return r->bytes;
}

/* Sample i of a folder source into dst (numel floats). */
static tm_status
read_dir_sample(tm_dataset_reader *r, const ds_source *s, size_t i,
		float *dst, tm_error *err)
{
	const char *path = join(r->path, r->path_size, s->cs->path,
				s->names[i]);
	tm_npy_reader *f = tm_npy_open(path, err);
	size_t got = 0;
	tm_status st;

	if (!f) {
		tm_error_prefix(err, "calibration data");
		return err ? err->code : TM_ERR_IO;
	}
	if (!is_one_sample(s->t, f)) {
		tm_npy_close(f);
		return tm_error_set_at(err, TM_ERR_IO, path, 0, 0,
				       "calibration data: the file changed "
				       "while it was being read");
	}
	st = tm_npy_read_rows(f, dst, tm_npy_rows(f), &got, err);
	tm_npy_close(f);
	return st;
}

tm_status
tm_priv_dataset_read(tm_dataset_reader *r, size_t k, float *const *dst,
		     size_t *n, tm_error *err)
{
	const tm_dataset *ds = r->ds;
	size_t first = k * ds->batch, count;
	tm_status st;

	*n = 0;
	if (k >= ds->batches)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "dataset: batch %zu of %zu", k,
				    ds->batches);
	count = ds->samples - first < ds->batch ? ds->samples - first
						: ds->batch;
	for (size_t i = 0; i < ds->n_src; i++) {
		const ds_source *s = &ds->src[i];

		if (s->is_dir) {
			for (size_t j = 0; j < count; j++) {
				st = read_dir_sample(r, s, first + j,
						     dst[i] + j * s->numel,
						     err);
				if (st)
					return st;
			}
		} else {
			size_t got = 0;

			st = tm_npy_seek_row(r->npy[i], first, err);
			if (!st)
				st = tm_npy_read_rows(r->npy[i], dst[i], count,
						      &got, err);
			if (st)
				return st;
			if (got != count)
				return tm_error_set_at(
					err, TM_ERR_IO, s->cs->path, 0, 0,
					"calibration data: read %zu of %zu "
					"samples from sample %zu", got, count,
					first);
		}
		preprocess(s, dst[i], count);
	}
	*n = count;
	return TM_OK;
}
