/* tmpipe tests — calibration (core/calib.c) and its data sources
 * (core/dataset.c): .npy files, folders of per-sample files, several
 * inputs, preprocessing, threads, and the exact text of every error.
 *
 * Pipelines go through tm_pipeline_load with the build tree's plugins
 * ($TMPIPE_PLUGIN_PATH); the model comes from the npy frontend, then
 * tm_priv_calibrate runs on it directly so the tests see its statistics.
 * Data files are written on the fly into the test's temporary folder.
 * Observers of the tests' own (fold, seq, count, twopass) stand in for
 * minmax where the order of calls matters; they are plugged into the
 * loaded pipeline in place of the default observer. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <CUnit/CUnit.h>

#include <tmpipe/tmpipe.h>

#include "calib_priv.h"
#include "dataset_priv.h"
#include "loader_priv.h"
#include "pipeline_priv.h"
#include "runner.h"

#define MSG_MAX (TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 8)

static tm_registry *reg;
static char xor_weights[PATH_MAX];

/* --- helpers ------------------------------------------------------------ */

static const char *
tmp(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", tm_test_tmpdir(), name);
	return buf;
}

static void
make_dir(const char *path)
{
	CU_ASSERT(mkdir(path, 0777) == 0 || errno == EEXIST);
}

/* A version 1.0 .npy in C order of elements of size bytes, descr as
 * numpy spells it (the hosts we test on are little-endian; the reader's
 * own tests cover the rest). */
static void
write_raw(const char *path, const char *descr, size_t size, int ndim,
	  const int64_t *shape, const void *v)
{
	char hdr[256], sh[160];
	size_t len = 0, numel = 1, hlen;
	FILE *fp;

	sh[0] = '\0';
	for (int i = 0; i < ndim; i++) {
		len += (size_t)snprintf(sh + len, sizeof sh - len, "%s%lld",
					i ? ", " : "", (long long)shape[i]);
		numel *= (size_t)shape[i];
	}
	hlen = (size_t)snprintf(hdr, sizeof hdr,
				"{'descr': '%s', 'fortran_order': False, "
				"'shape': (%s%s), }",
				descr, sh, ndim == 1 ? "," : "");
	/* Pad so the data starts at a multiple of 64, ending in '\n'. */
	while ((10 + hlen + 1) % 64)
		hdr[hlen++] = ' ';
	hdr[hlen++] = '\n';
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return;
	fwrite("\x93NUMPY\x01\x00", 1, 8, fp);
	fputc((int)(hlen & 0xff), fp);
	fputc((int)(hlen >> 8), fp);
	fwrite(hdr, 1, hlen, fp);
	if (numel)
		fwrite(v, size, numel, fp);
	CU_ASSERT_EQUAL(fclose(fp), 0);
}

static void
write_npy(const char *path, int ndim, const int64_t *shape, const float *v)
{
	write_raw(path, "<f4", sizeof(float), ndim, shape, v);
}

static void
write_2d(const char *path, int64_t rows, int64_t cols, const float *v)
{
	const int64_t shape[2] = { rows, cols };

	write_npy(path, 2, shape, v);
}

/* Deterministic test data: not round numbers, both signs. */
static float
value(size_t i)
{
	return (float)sin((double)i * 0.7 + 0.3) * (float)(1 + i % 5);
}

static void
fill(float *v, size_t n, size_t seed)
{
	for (size_t i = 0; i < n; i++)
		v[i] = value(seed + i);
}

/* 1-based line and column of the nth (0-based) occurrence of needle in
 * text, as ":L:C: " for an expected message. */
static const char *
where(const char *text, const char *needle, int nth, char *buf,
      size_t size)
{
	const char *p = text, *hit = NULL;
	unsigned line = 1, col = 1;

	for (int i = 0; i <= nth; i++) {
		hit = strstr(p, needle);
		if (!hit)
			break;
		p = hit + 1;
	}
	CU_ASSERT_PTR_NOT_NULL(hit);
	for (p = text; hit && p < hit; p++) {
		if (*p == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	snprintf(buf, size, ":%u:%u: ", line, col);
	return buf;
}

/* The model sections: each 6 lines, so calibration: is on line 7. */
#define HEAD_X                                                               \
	"tmpipe: 1\n"                                                        \
	"model:\n"                                                           \
	"  frontend: npy\n"                                                  \
	"  inputs: {x: [2]}\n"                                               \
	"  layers:\n"                                                        \
	"    - {name: r, op: relu, input: x}\n"

#define HEAD_AB                                                              \
	"tmpipe: 1\n"                                                        \
	"model:\n"                                                           \
	"  frontend: npy\n"                                                  \
	"  inputs: {a: [2], b: [3]}\n"                                       \
	"  layers: [{name: ra, op: relu, input: a}, "                        \
	"{name: rb, op: relu, input: b}]\n"                                  \
	"  dir: .\n"

#define HEAD_IMG                                                             \
	"tmpipe: 1\n"                                                        \
	"model:\n"                                                           \
	"  frontend: npy\n"                                                  \
	"  inputs: {img: [2, 2, 2]}\n"                                       \
	"  layers:\n"                                                        \
	"    - {name: r, op: relu, input: img}\n"

/* The XOR network of examples/xor: dense, relu, dense, sigmoid. */
static const char *
head_xor(char *buf, size_t size)
{
	snprintf(buf, size,
		 "tmpipe: 1\n"
		 "model:\n"
		 "  frontend: npy\n"
		 "  dir: %s\n"
		 "  inputs: {input: [2]}\n"
		 "  layers: [{name: fc1, op: dense, input: input, weight: "
		 "fc1.weight.npy, bias: fc1.bias.npy}, {name: h1, op: relu, "
		 "input: fc1}, {name: fc2, op: dense, input: h1, weight: "
		 "fc2.weight.npy, bias: fc2.bias.npy}, {name: out, op: "
		 "sigmoid, input: fc2}]\n",
		 xor_weights);
	return buf;
}

static int n_pipelines;

/* Loads text (written to a fresh file, whose path goes to path). */
static tm_status
load(const char *text, char *path, size_t size, tm_pipeline **pl,
     tm_error *err)
{
	char name[64];

	snprintf(name, sizeof name, "p%d.yaml", n_pipelines++);
	tmp(name, path, size);
	tm_test_write_file(path, text);
	tm_error_clear(err);
	*pl = NULL;
	return tm_pipeline_load(path, reg, NULL, pl, err);
}

/* The frontend and the shape check, as tm_pipeline_run does them. */
static tm_status
build(const tm_pipeline *pl, tm_model **out, tm_error *err)
{
	const tm_frontend_ops *fe = pl->frontend.plugin->desc->ops;
	tm_model *m = tm_model_new();
	tm_status st;

	*out = NULL;
	if (!m)
		return TM_ERR_NOMEM;
	st = fe->load(pl->frontend.params, m, err);
	if (!st)
		st = tm_model_finalize(m, err);
	if (st) {
		tm_model_free(m);
		return st;
	}
	*out = m;
	return TM_OK;
}

/* Loads, builds and calibrates text with threads threads and, when obs
 * is not NULL, that observer for every tensor. On success *m holds the
 * calibrated model; path receives the pipeline's path. */
static tm_status
calibrate(const char *text, size_t threads, const tm_plugin *obs,
	  tm_model **m, tm_calib_stats *stats, char *path, size_t size,
	  tm_error *err)
{
	tm_pipeline *pl;
	tm_calib_stats s;
	tm_status st;

	*m = NULL;
	st = load(text, path, size, &pl, err);
	if (st)
		return st;
	pl->threads = threads;
	if (obs)
		pl->observer.plugin = obs;
	st = build(pl, m, err);
	if (!st)
		st = tm_priv_calibrate(*m, pl, stats ? stats : &s, err);
	if (st) {
		tm_model_free(*m);
		*m = NULL;
	}
	tm_pipeline_free(pl);
	return st;
}

/* Calibration of text must fail with exactly want: after the pipeline's
 * path when want starts with ':', else as is. */
#define EXPECT_ERR(text, code, want)                                         \
	expect_err((text), (code), (want), __FILE__, __LINE__)

static void
expect_err(const char *text, tm_status code, const char *want,
	   const char *file, int line)
{
	char path[4096], full[MSG_MAX + 4096], buf[MSG_MAX];
	tm_model *m;
	tm_error err;
	tm_status st;

	st = calibrate(text, 1, NULL, &m, NULL, path, sizeof path, &err);
	if (st != code)
		fprintf(stderr, "\n%s:%d: status %d, want %d\n", file, line,
			(int)st, (int)code);
	CU_ASSERT_EQUAL(st, code);
	CU_ASSERT_PTR_NULL(m);
	tm_model_free(m);
	if (want[0] == ':')
		snprintf(full, sizeof full, "%s%s", path, want);
	else
		snprintf(full, sizeof full, "%s", want);
	tm_test_check_str(tm_error_format(&err, buf, sizeof buf), full, file, line);
}

static const tm_tensor *
tensor(const tm_model *m, const char *name)
{
	const tm_tensor *t = m ? tm_model_find_tensor(m, name) : NULL;

	CU_ASSERT_PTR_NOT_NULL(t);
	if (t)
		CU_ASSERT(t->has_range);
	return t;
}

/* The range minmax must find for column col of rows x cols values. */
static void
check_minmax(const tm_model *m, const char *name, const float *v,
	     size_t rows, size_t cols, int relu)
{
	const tm_tensor *t = tensor(m, name);
	float lo = INFINITY, hi = -INFINITY;

	for (size_t i = 0; i < rows * cols; i++) {
		float x = relu && v[i] < 0 ? 0.0f : v[i];

		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
	}
	if (!t)
		return;
	CU_ASSERT_EQUAL(t->lo, lo);
	CU_ASSERT_EQUAL(t->hi, hi);
}

/* --- observers of the tests' own ---------------------------------------- */

/* fold: h = h * c + x over the values in the order seen, so any change in
 * the order of calls changes the bits of the result. With merge. */
#define FOLD_C 0.9990234375

typedef struct fold {
	double h;
	size_t n;
} fold;

static void *
fold_create(const tm_params *p, tm_error *err)
{
	fold *s = calloc(1, sizeof *s);

	(void)p;
	if (!s)
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	return s;
}

static void
obs_destroy(void *s)
{
	free(s);
}

static tm_status
fold_observe(void *state, const float *x, size_t n, tm_error *err)
{
	fold *s = state;

	(void)err;
	for (size_t i = 0; i < n; i++)
		s->h = s->h * FOLD_C + x[i];
	s->n += n;
	return TM_OK;
}

static tm_status
fold_merge(void *dst, const void *src, tm_error *err)
{
	fold *d = dst;
	const fold *s = src;

	(void)err;
	for (size_t i = 0; i < s->n; i++)
		d->h *= FOLD_C;
	d->h += s->h;
	d->n += s->n;
	return TM_OK;
}

static tm_status
fold_finish(void *state, float *lo, float *hi, tm_error *err)
{
	const fold *s = state;

	if (!s->n)
		return tm_error_set(err, TM_ERR_INVALID, "saw no values");
	*lo = *hi = (float)s->h;
	return TM_OK;
}

static size_t
fold_size(const void *s)
{
	(void)s;
	return sizeof(fold);
}

/* count: the number of values seen, as hi. */
static tm_status
count_finish(void *state, float *lo, float *hi, tm_error *err)
{
	const fold *s = state;

	(void)err;
	*lo = 0;
	*hi = (float)s->n;
	return TM_OK;
}

/* twopass: the range first, then how many values fall below and above
 * its middle; lo = -below, hi = above. merge checks the clone contract:
 * in the second pass both states carry the same range. */
typedef struct twopass {
	int pass;
	float lo, hi;
	size_t n1, below, above;
} twopass;

static void *
tp_create(const tm_params *p, tm_error *err)
{
	twopass *s = calloc(1, sizeof *s);

	(void)p;
	if (!s)
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	else
		s->pass = 1;
	return s;
}

static tm_status
tp_observe(void *state, const float *x, size_t n, tm_error *err)
{
	twopass *s = state;

	(void)err;
	for (size_t i = 0; i < n; i++) {
		if (s->pass == 1) {
			s->lo = s->n1 == 0 || x[i] < s->lo ? x[i] : s->lo;
			s->hi = s->n1 == 0 || x[i] > s->hi ? x[i] : s->hi;
			s->n1++;
		} else if (x[i] < (s->lo + s->hi) / 2) {
			s->below++;
		} else {
			s->above++;
		}
	}
	return TM_OK;
}

static int
tp_next_pass(void *state)
{
	twopass *s = state;

	if (s->pass == 2)
		return 0;
	s->pass = 2;
	return 1;
}

static tm_status
tp_merge(void *dst, const void *src, tm_error *err)
{
	twopass *d = dst;
	const twopass *s = src;

	if (d->pass != s->pass)
		return tm_error_set(err, TM_ERR_INTERNAL, "passes differ");
	if (d->pass == 2) {
		if (d->lo != s->lo || d->hi != s->hi || d->n1 != s->n1)
			return tm_error_set(err, TM_ERR_INTERNAL,
					    "pass 1 differs");
		d->below += s->below;
		d->above += s->above;
		return TM_OK;
	}
	if (!s->n1)
		return TM_OK;
	if (!d->n1 || s->lo < d->lo)
		d->lo = s->lo;
	if (!d->n1 || s->hi > d->hi)
		d->hi = s->hi;
	d->n1 += s->n1;
	return TM_OK;
}

static void *
tp_clone(const void *state, tm_error *err)
{
	twopass *s = malloc(sizeof *s);

	if (!s)
		tm_error_set(err, TM_ERR_NOMEM, "out of memory");
	else
		*s = *(const twopass *)state;
	return s;
}

static tm_status
tp_finish(void *state, float *lo, float *hi, tm_error *err)
{
	const twopass *s = state;

	if (s->pass != 2 || s->below + s->above != s->n1)
		return tm_error_set(err, TM_ERR_INTERNAL,
				    "pass %d: %zu + %zu values of %zu",
				    s->pass, s->below, s->above, s->n1);
	*lo = -(float)s->below;
	*hi = (float)s->above;
	return TM_OK;
}

static const tm_observer_ops fold_ops = {
	.create = fold_create,
	.destroy = obs_destroy,
	.observe = fold_observe,
	.merge = fold_merge,
	.finish = fold_finish,
	.state_size = fold_size,
};
/* The same without merge: fed in batch order on one state, so it must
 * equal the fold of all the values in order. */
static const tm_observer_ops seq_ops = {
	.create = fold_create,
	.destroy = obs_destroy,
	.observe = fold_observe,
	.finish = fold_finish,
	.state_size = fold_size,
};
static const tm_observer_ops count_ops = {
	.create = fold_create,
	.destroy = obs_destroy,
	.observe = fold_observe,
	.merge = fold_merge,
	.finish = count_finish,
};
static const tm_observer_ops tp_ops = {
	.create = tp_create,
	.destroy = obs_destroy,
	.observe = tp_observe,
	.next_pass = tp_next_pass,
	.merge = tp_merge,
	.finish = tp_finish,
	.clone = tp_clone,
};
static const tm_observer_ops tp_noclone_ops = {
	.create = tp_create,
	.destroy = obs_destroy,
	.observe = tp_observe,
	.next_pass = tp_next_pass,
	.merge = tp_merge,
	.finish = tp_finish,
};

#define TEST_PLUGIN(var, name_, ops_)                                        \
	static const tm_plugin_desc var##_desc = {                           \
		TM_PLUGIN_ABI_MAJOR, TM_PLUGIN_ABI_MINOR,                    \
		(uint32_t)sizeof(tm_plugin_desc), TM_PLUGIN_OBSERVER,        \
		name_, "1", "test observer", NULL, &ops_, { 0 }              \
	};                                                                   \
	static const tm_plugin var = { .path = (char *)"(test)",             \
				       .name = (char *)name_,                \
				       .desc = &var##_desc }

TEST_PLUGIN(fold_plugin, "fold", fold_ops);
TEST_PLUGIN(seq_plugin, "seq", seq_ops);
TEST_PLUGIN(count_plugin, "count", count_ops);
TEST_PLUGIN(tp_plugin, "twopass", tp_ops);
TEST_PLUGIN(tp_noclone_plugin, "twopass_noclone", tp_noclone_ops);

/* --- sources ------------------------------------------------------------ */

/* 10 samples in batches of 4: 4, 4 and a short 2. The extremes sit in
 * the last batch so a dropped remainder shows. */
static void
data10(float *v)
{
	fill(v, 20, 0);
	v[18] = -7.5f;
	v[19] = 9.25f;
}

static void
test_file(void)
{
	char text[8192], path[4096], data[4096];
	tm_calib_stats s;
	tm_model *m;
	tm_error err;
	float v[20];

	data10(v);
	write_2d(tmp("x10.npy", data, sizeof data), 10, 2, v);
	snprintf(text, sizeof text,
		 HEAD_X "calibration:\n  batch: 4\n  data: %s\n", data);
	CU_ASSERT_EQUAL(calibrate(text, 1, NULL, &m, &s, path, sizeof path,
				  &err), TM_OK);
	CU_ASSERT_EQUAL(s.samples, 10);
	CU_ASSERT_EQUAL(s.batches, 3);
	CU_ASSERT_EQUAL(s.passes, 1);
	CU_ASSERT_EQUAL(s.threads, 1);
	CU_ASSERT_EQUAL(s.observed, 2);
	check_minmax(m, "x", v, 10, 2, 0);
	check_minmax(m, "r", v, 10, 2, 1);
	tm_model_free(m);
}

/* Every value of every batch, the short last one too, is observed once,
 * whatever the thread count. */
static void
test_remainder(void)
{
	static const size_t threads[] = { 1, 2, 3, 7 };
	char text[8192], path[4096], data[4096];
	float v[20];

	data10(v);
	write_2d(tmp("x10r.npy", data, sizeof data), 10, 2, v);
	for (size_t b = 1; b <= 11; b++) {
		snprintf(text, sizeof text,
			 HEAD_X "calibration:\n  batch: %zu\n  data: %s\n", b,
			 data);
		for (size_t i = 0; i < TM_ARRAY_LEN(threads); i++) {
			tm_calib_stats s;
			tm_model *m;
			tm_error err;

			CU_ASSERT_EQUAL(calibrate(text, threads[i],
						  &count_plugin, &m, &s, path,
						  sizeof path, &err),
					TM_OK);
			CU_ASSERT_EQUAL(s.batches, (10 + b - 1) / b);
			CU_ASSERT_EQUAL(s.threads, threads[i] < s.batches
							   ? threads[i]
							   : s.batches);
			if (m) {
				CU_ASSERT_EQUAL(tensor(m, "x")->hi, 20.0f);
				CU_ASSERT_EQUAL(tensor(m, "r")->hi, 20.0f);
			}
			tm_model_free(m);
		}
	}
}

/* The same samples as one file and as a folder give the same bits, even
 * for an observer that depends on the order of the values. */
static void
test_dir(void)
{
	/* Written out of order; sorted by name when read. */
	static const int order[10] = { 7, 2, 9, 0, 5, 1, 8, 3, 6, 4 };
	char text[8192], path[4096], dir[4096], file[4096], f[4200];
	tm_model *mf = NULL, *md = NULL;
	tm_calib_stats s;
	tm_error err;
	float v[20];

	data10(v);
	write_2d(tmp("d10.npy", file, sizeof file), 10, 2, v);
	make_dir(tmp("d10", dir, sizeof dir));
	for (int i = 0; i < 10; i++) {
		int k = order[i];
		int64_t one[1] = { 2 }, lead[2] = { 1, 2 };

		snprintf(f, sizeof f, "%s/s%02d.npy", dir, k);
		/* Both spellings of one sample: (2,) and (1, 2). */
		if (k % 2)
			write_npy(f, 1, one, v + 2 * k);
		else
			write_npy(f, 2, lead, v + 2 * k);
	}
	/* Skipped: not .npy, or hidden (a bad shape would show). */
	snprintf(f, sizeof f, "%s/README", dir);
	tm_test_write_file(f, "not data\n");
	snprintf(f, sizeof f, "%s/.hidden.npy", dir);
	write_2d(f, 1, 5, v);

	snprintf(text, sizeof text,
		 HEAD_X "calibration:\n  batch: 3\n  data: %s\n", file);
	CU_ASSERT_EQUAL(calibrate(text, 1, &fold_plugin, &mf, NULL, path,
				  sizeof path, &err), TM_OK);
	snprintf(text, sizeof text,
		 HEAD_X "calibration:\n  batch: 3\n  data: %s\n", dir);
	CU_ASSERT_EQUAL(calibrate(text, 2, &fold_plugin, &md, &s, path,
				  sizeof path, &err), TM_OK);
	CU_ASSERT_EQUAL(s.samples, 10);
	if (mf && md) {
		const tm_tensor *a = tensor(mf, "x"), *b = tensor(md, "x");

		CU_ASSERT_EQUAL(memcmp(&a->lo, &b->lo, sizeof a->lo), 0);
		a = tensor(mf, "r");
		b = tensor(md, "r");
		CU_ASSERT_EQUAL(memcmp(&a->lo, &b->lo, sizeof a->lo), 0);
	}
	tm_model_free(mf);
	tm_model_free(md);

	/* And with minmax, the same ranges as the file's. */
	CU_ASSERT_EQUAL(calibrate(text, 1, NULL, &md, NULL, path, sizeof path,
				  &err), TM_OK);
	check_minmax(md, "x", v, 10, 2, 0);
	check_minmax(md, "r", v, 10, 2, 1);
	tm_model_free(md);
}

/* Two inputs, one from a file and one from a folder, in either order. */
static void
test_multi_input(void)
{
	char text[8192], path[4096], a[4096], b[4096], f[4200];
	tm_calib_stats s;
	tm_model *m;
	tm_error err;
	float va[14], vb[21];

	fill(va, 14, 100);
	fill(vb, 21, 200);
	write_2d(tmp("a7.npy", a, sizeof a), 7, 2, va);
	make_dir(tmp("b7", b, sizeof b));
	for (int i = 0; i < 7; i++) {
		int64_t one[1] = { 3 };

		snprintf(f, sizeof f, "%s/%d.npy", b, i);
		write_npy(f, 1, one, vb + 3 * i);
	}
	snprintf(text, sizeof text,
		 HEAD_AB "calibration:\n  batch: 2\n  data:\n"
			 "    b: %s\n    a: %s\n",
		 b, a);
	CU_ASSERT_EQUAL(calibrate(text, 3, NULL, &m, &s, path, sizeof path,
				  &err), TM_OK);
	CU_ASSERT_EQUAL(s.samples, 7);
	CU_ASSERT_EQUAL(s.batches, 4);
	CU_ASSERT_EQUAL(s.observed, 4);
	check_minmax(m, "a", va, 7, 2, 0);
	check_minmax(m, "ra", va, 7, 2, 1);
	check_minmax(m, "b", vb, 7, 3, 0);
	check_minmax(m, "rb", vb, 7, 3, 1);
	tm_model_free(m);
}

/* --- preprocessing ------------------------------------------------------ */

/* Reads batch k of text's data through the dataset API. */
static tm_status
read_batch(const char *text, size_t batch, size_t k, float *const *dst,
	   size_t *n, tm_error *err)
{
	char path[4096];
	tm_pipeline *pl;
	tm_model *m = NULL;
	tm_dataset *ds = NULL;
	tm_dataset_reader *r = NULL;
	tm_status st;

	st = load(text, path, sizeof path, &pl, err);
	if (!st)
		st = build(pl, &m, err);
	if (!st)
		st = tm_priv_dataset_open(m, pl, batch, &ds, err);
	if (!st) {
		r = tm_priv_dataset_reader_new(ds, err);
		st = r ? TM_OK : err->code;
	}
	if (!st)
		st = tm_priv_dataset_read(r, k, dst, n, err);
	tm_priv_dataset_reader_free(r);
	tm_priv_dataset_free(ds);
	tm_model_free(m);
	tm_pipeline_free(pl);
	return st;
}

/* Two samples of [2, 2, 2] (C, H, W), then by hand:
 *	x = (x * 0.5 - mean[c]) / std[c], mean [1, 2], std [2, 4]. */
static const float img_raw[16] = {
	2, 4, 6, 8, 10, 12, 14, 16,	/* sample 0: channel 0, channel 1 */
	0, -2, 1, 3, 4, 20, -4, 0,	/* sample 1 */
};
static const float img_pre[16] = {
	0, 0.5f, 1, 1.5f, 0.75f, 1, 1.25f, 1.5f,
	-0.5f, -1, -0.25f, 0.25f, 0, 2, -1, -0.5f,
};

static void
test_preprocess(void)
{
	char text[8192], data[4096];
	const int64_t shape[4] = { 2, 2, 2, 2 };
	float buf[16], *dst[1] = { buf };
	tm_error err;
	size_t n = 0;

	write_npy(tmp("img2.npy", data, sizeof data), 4, shape, img_raw);
	snprintf(text, sizeof text,
		 HEAD_IMG "calibration:\n  data: %s\n"
			  "  preprocess: {scale: 0.5, mean: [1, 2], std: [2, "
			  "4]}\n",
		 data);
	CU_ASSERT_EQUAL(read_batch(text, 8, 0, dst, &n, &err), TM_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(memcmp(buf, img_pre, sizeof buf), 0);

	/* One value for every channel: (x * 1 - 2) / 4, block style. */
	snprintf(text, sizeof text,
		 HEAD_IMG "calibration:\n  data: %s\n  preprocess:\n"
			  "    mean: 2\n    std: [4]\n",
		 data);
	CU_ASSERT_EQUAL(read_batch(text, 1, 1, dst, &n, &err), TM_OK);
	CU_ASSERT_EQUAL(n, 1);
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(buf[i], (img_raw[8 + i] - 2) / 4);

	/* Only a scale (the usual 1/255), the rest left alone. */
	snprintf(text, sizeof text,
		 HEAD_IMG "calibration:\n  data: %s\n"
			  "  preprocess: {scale: 0.25}\n",
		 data);
	CU_ASSERT_EQUAL(read_batch(text, 2, 0, dst, &n, &err), TM_OK);
	for (int i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(buf[i], img_raw[i] / 4);
}

/* Raw bytes, the case preprocessing is for: a folder of uint8 images. */
static void
test_preprocess_u8(void)
{
	char text[8192], dir[4096], f[4200];
	const int64_t shape[3] = { 2, 2, 2 };
	static const unsigned char px[2][8] = {
		{ 0, 51, 102, 255, 128, 64, 32, 16 },
		{ 255, 255, 0, 0, 1, 2, 3, 4 },
	};
	float buf[16], *dst[1] = { buf };
	tm_error err;
	size_t n = 0;

	make_dir(tmp("u8", dir, sizeof dir));
	for (int i = 0; i < 2; i++) {
		snprintf(f, sizeof f, "%s/%d.npy", dir, i);
		write_raw(f, "|u1", 1, 3, shape, px[i]);
	}
	snprintf(text, sizeof text,
		 HEAD_IMG "calibration:\n  data: %s\n"
			  "  preprocess: {scale: 0.00392156862745098, mean: "
			  "[0.5, 0.25], std: [0.5, 0.25]}\n",
		 dir);
	CU_ASSERT_EQUAL(read_batch(text, 4, 0, dst, &n, &err), TM_OK);
	CU_ASSERT_EQUAL(n, 2);
	for (int i = 0; i < 16; i++) {
		int c = i % 8 / 4;
		double want = ((double)px[i / 8][i % 8] * 0.00392156862745098 -
			       (c ? 0.25 : 0.5)) / (c ? 0.25 : 0.5);

		CU_ASSERT_EQUAL(buf[i], (float)want);
	}
	CU_ASSERT_EQUAL(buf[3], 1.0f);	/* 255: (1 - 0.5) / 0.5 */
	CU_ASSERT_EQUAL(buf[0], -1.0f);	/* 0 */
}

/* Per input under a map; the input it leaves out is read as is; the
 * calibrated range is that of the preprocessed values. */
static void
test_preprocess_per_input(void)
{
	char text[8192], path[4096], a[4096], img[4096];
	const int64_t shape[4] = { 2, 2, 2, 2 };
	float va[4] = { 1, -2, 3, 4 };
	tm_model *m;
	tm_error err;

	write_npy(tmp("img2p.npy", img, sizeof img), 4, shape, img_raw);
	write_2d(tmp("a2.npy", a, sizeof a), 2, 2, va);
	snprintf(text, sizeof text,
		 "tmpipe: 1\n"
		 "model:\n"
		 "  frontend: npy\n"
		 "  inputs: {img: [2, 2, 2], a: [2]}\n"
		 "  layers: [{name: r, op: relu, input: img}, "
		 "{name: ra, op: relu, input: a}]\n"
		 "calibration:\n"
		 "  data: {img: %s, a: %s}\n"
		 "  preprocess:\n"
		 "    img: {scale: 0.5, mean: [1, 2], std: [2, 4]}\n",
		 img, a);
	CU_ASSERT_EQUAL(calibrate(text, 2, NULL, &m, NULL, path, sizeof path,
				  &err), TM_OK);
	check_minmax(m, "img", img_pre, 2, 8, 0);
	check_minmax(m, "r", img_pre, 2, 8, 1);
	check_minmax(m, "a", va, 2, 2, 0);
	tm_model_free(m);
}

/* --- threads ------------------------------------------------------------ */

#define DET_N 37	/* batches of 5: 7 full and one of 2 */

static void
check_same(const tm_model *a, const tm_model *b)
{
	if (!a || !b) {
		CU_FAIL("no model");
		return;
	}
	CU_ASSERT_EQUAL(a->n_tensors, b->n_tensors);
	for (size_t t = 0; t < a->n_tensors && t < b->n_tensors; t++) {
		const tm_tensor *x = a->tensors[t], *y = b->tensors[t];

		CU_ASSERT_EQUAL(x->has_range, y->has_range);
		CU_ASSERT_EQUAL(memcmp(&x->lo, &y->lo, sizeof x->lo), 0);
		CU_ASSERT_EQUAL(memcmp(&x->hi, &y->hi, sizeof x->hi), 0);
	}
}

/* Identical bits for 1, 2, 3 and 7 threads, with every kind of
 * observer: minmax, an order-sensitive merge, no merge, and two passes
 * with and without clone. */
static void
test_threads(void)
{
	static const size_t threads[] = { 1, 2, 3, 7 };
	const tm_plugin *obs[] = { NULL, &fold_plugin, &seq_plugin,
				   &tp_plugin, &tp_noclone_plugin };
	char head[4096], text[8192], path[4096], data[4096];
	float v[2 * DET_N];

	fill(v, 2 * DET_N, 7);
	for (size_t i = 0; i < 2 * DET_N; i++)
		v[i] = v[i] * 0.5f + 0.5f;
	write_2d(tmp("det.npy", data, sizeof data), DET_N, 2, v);
	snprintf(text, sizeof text,
		 "%scalibration:\n  batch: 5\n  data: %s\n",
		 head_xor(head, sizeof head), data);
	for (size_t o = 0; o < TM_ARRAY_LEN(obs); o++) {
		tm_model *ref = NULL;

		for (size_t i = 0; i < TM_ARRAY_LEN(threads); i++) {
			tm_calib_stats s;
			tm_model *m;
			tm_error err;
			char msg[MSG_MAX];

			if (calibrate(text, threads[i], obs[o], &m, &s, path,
				      sizeof path, &err))
				fprintf(stderr, "\n%s\n",
					tm_error_format(&err, msg,
							sizeof msg));
			CU_ASSERT_PTR_NOT_NULL(m);
			CU_ASSERT_EQUAL(s.samples, DET_N);
			CU_ASSERT_EQUAL(s.batches, 8);
			CU_ASSERT_EQUAL(s.threads, threads[i]);
			CU_ASSERT_EQUAL(s.passes, o >= 3 ? 2 : 1);
			if (!ref)
				ref = m;
			else {
				check_same(ref, m);
				tm_model_free(m);
			}
		}
		if (ref && obs[o] == &seq_plugin) {
			/* Without merge: the fold of all values in order. */
			double h = 0;

			for (size_t i = 0; i < 2 * DET_N; i++)
				h = h * FOLD_C + v[i];
			CU_ASSERT_EQUAL(tensor(ref, "input")->lo, (float)h);
		}
		if (ref && obs[o] == &tp_plugin)
			CU_ASSERT_EQUAL(tensor(ref, "input")->hi -
						tensor(ref, "input")->lo,
					(float)(2 * DET_N));
		tm_model_free(ref);
	}
}

/* The same on the CNN of tests/data/cnn (convolutions, batchnorm,
 * pooling, add, softmax), 16 samples in batches of 3. */
static void
test_threads_cnn(void)
{
	static const size_t threads[] = { 1, 2, 3, 7 };
	const tm_plugin *obs[] = { NULL, &fold_plugin };
	char path[4096];

	snprintf(path, sizeof path, "%s/data/cnn/pipeline.yaml",
		 tm_test_srcdir());
	for (size_t o = 0; o < TM_ARRAY_LEN(obs); o++) {
		tm_model *ref = NULL;

		for (size_t i = 0; i < TM_ARRAY_LEN(threads); i++) {
			tm_pipeline *pl = NULL;
			tm_calib_stats s;
			tm_model *m = NULL;
			tm_error err;
			char msg[MSG_MAX];

			tm_error_clear(&err);
			if (tm_pipeline_load(path, reg, NULL, &pl, &err) ||
			    build(pl, &m, &err))
				fprintf(stderr, "\n%s\n",
					tm_error_format(&err, msg,
							sizeof msg));
			if (pl && m) {
				pl->batch = 3;
				pl->threads = threads[i];
				if (obs[o])
					pl->observer.plugin = obs[o];
				CU_ASSERT_EQUAL(tm_priv_calibrate(m, pl, &s,
								  &err),
						TM_OK);
				CU_ASSERT_EQUAL(s.batches, 6);
				CU_ASSERT_EQUAL(s.threads, threads[i] < 6
								   ? threads[i]
								   : 6);
			}
			tm_pipeline_free(pl);
			if (!ref)
				ref = m;
			else {
				check_same(ref, m);
				tm_model_free(m);
			}
		}
		tm_model_free(ref);
	}
}

/* The first error in batch order wins, whatever the thread count. */
static void
test_threads_first_error(void)
{
	static const size_t threads[] = { 1, 2, 3, 7 };
	char text[8192], path[4096], data[4096], msg[MSG_MAX];
	float v[40];

	fill(v, 40, 3);
	v[2 * 13 + 1] = INFINITY;	/* sample 13, batch 3 */
	v[2 * 6] = NAN;			/* sample 6, batch 1 */
	write_2d(tmp("nan.npy", data, sizeof data), 20, 2, v);
	snprintf(text, sizeof text,
		 HEAD_X "calibration:\n  batch: 4\n  data: %s\n", data);
	for (size_t i = 0; i < TM_ARRAY_LEN(threads); i++) {
		tm_model *m;
		tm_error err;

		CU_ASSERT_EQUAL(calibrate(text, threads[i], NULL, &m, NULL,
					  path, sizeof path, &err),
				TM_ERR_NUMERIC);
		CHECK_STR(tm_error_format(&err, msg, sizeof msg),
			  "tensor 'x': sample 6 holds NaN");
		tm_model_free(m);
	}
	/* Preprocessing that overflows float is named the same way. */
	v[2 * 6] = 1e30f;
	v[2 * 13 + 1] = 0;
	write_2d(data, 20, 2, v);
	snprintf(text, sizeof text,
		 HEAD_X "calibration:\n  batch: 4\n  data: %s\n"
			"  preprocess: {scale: 1e10}\n",
		 data);
	for (size_t i = 0; i < TM_ARRAY_LEN(threads); i++) {
		tm_model *m;
		tm_error err;

		CU_ASSERT_EQUAL(calibrate(text, threads[i], NULL, &m, NULL,
					  path, sizeof path, &err),
				TM_ERR_NUMERIC);
		CHECK_STR(tm_error_format(&err, msg, sizeof msg),
			  "tensor 'x': sample 6 holds Inf");
		tm_model_free(m);
	}
}

/* --- memory ------------------------------------------------------------- */

/* What a thread holds does not depend on the number of samples. */
static void
test_memory_flat(void)
{
	char head[4096], text[8192], path[4096], f[4096], dir[4096];
	char g[4200];
	tm_calib_stats s10, sbig, d10, dbig;
	float *v = malloc(2 * 1000 * sizeof *v);
	tm_model *m;
	tm_error err;

	CU_ASSERT_PTR_NOT_NULL(v);
	if (!v)
		return;
	fill(v, 2 * 1000, 11);
	head_xor(head, sizeof head);

	write_2d(tmp("m10.npy", f, sizeof f), 10, 2, v);
	snprintf(text, sizeof text,
		 "%scalibration:\n  batch: 8\n  data: %s\n", head, f);
	CU_ASSERT_EQUAL(calibrate(text, 2, &fold_plugin, &m, &s10, path,
				  sizeof path, &err), TM_OK);
	tm_model_free(m);
	write_2d(tmp("m1000.npy", f, sizeof f), 1000, 2, v);
	snprintf(text, sizeof text,
		 "%scalibration:\n  batch: 8\n  data: %s\n", head, f);
	CU_ASSERT_EQUAL(calibrate(text, 2, &fold_plugin, &m, &sbig, path,
				  sizeof path, &err), TM_OK);
	tm_model_free(m);
	CU_ASSERT_EQUAL(sbig.samples, 1000);
	CU_ASSERT(s10.reader_bytes > 0);
	CU_ASSERT_EQUAL(s10.reader_bytes, sbig.reader_bytes);
	CU_ASSERT(s10.interp_bytes > 0);
	CU_ASSERT_EQUAL(s10.interp_bytes, sbig.interp_bytes);
	/* fold states: one per observed tensor (input, fc1, h1, fc2). */
	CU_ASSERT_EQUAL(s10.state_bytes, 4 * sizeof(fold));
	CU_ASSERT_EQUAL(s10.state_bytes, sbig.state_bytes);
	CU_ASSERT_EQUAL(s10.acc_bytes, sbig.acc_bytes);
	CU_ASSERT_EQUAL(s10.index_bytes, 0);
	CU_ASSERT_EQUAL(sbig.index_bytes, 0);

	/* A folder: the same per thread (for folder names of the same
	 * length: a reader keeps room for one file's path); only its index
	 * grows. */
	make_dir(tmp("m010d", dir, sizeof dir));
	for (int i = 0; i < 10; i++) {
		int64_t one[1] = { 2 };

		snprintf(g, sizeof g, "%s/%04d.npy", dir, i);
		write_npy(g, 1, one, v + 2 * i);
	}
	snprintf(text, sizeof text,
		 "%scalibration:\n  batch: 8\n  data: %s\n", head, dir);
	CU_ASSERT_EQUAL(calibrate(text, 2, NULL, &m, &d10, path, sizeof path,
				  &err), TM_OK);
	tm_model_free(m);
	make_dir(tmp("m300d", dir, sizeof dir));
	for (int i = 0; i < 300; i++) {
		int64_t one[1] = { 2 };

		snprintf(g, sizeof g, "%s/%04d.npy", dir, i);
		write_npy(g, 1, one, v + 2 * i);
	}
	snprintf(text, sizeof text,
		 "%scalibration:\n  batch: 8\n  data: %s\n", head, dir);
	CU_ASSERT_EQUAL(calibrate(text, 2, NULL, &m, &dbig, path, sizeof path,
				  &err), TM_OK);
	tm_model_free(m);
	CU_ASSERT_EQUAL(dbig.samples, 300);
	CU_ASSERT_EQUAL(d10.reader_bytes, dbig.reader_bytes);
	CU_ASSERT_EQUAL(d10.interp_bytes, dbig.interp_bytes);
	CU_ASSERT_EQUAL(d10.interp_bytes, s10.interp_bytes);
	CU_ASSERT(d10.index_bytes > 0);
	CU_ASSERT(dbig.index_bytes > d10.index_bytes);
	free(v);
}

/* --- errors ------------------------------------------------------------- */

static void
test_err_counts(void)
{
	char text[8192], a[4096], b[4096], want[MSG_MAX], pos[64], f[4200];
	float v[36];

	fill(v, 36, 1);
	write_2d(tmp("a10.npy", a, sizeof a), 10, 2, v);
	make_dir(tmp("b12", b, sizeof b));
	for (int i = 0; i < 12; i++) {
		int64_t one[1] = { 3 };

		snprintf(f, sizeof f, "%s/%02d.npy", b, i);
		write_npy(f, 1, one, v + 3 * i);
	}
	snprintf(text, sizeof text,
		 HEAD_AB "calibration:\n  data:\n    a: %s\n    b: %s\n", a,
		 b);
	snprintf(want, sizeof want,
		 "%scalibration.data: input 'b' has 12 samples but input "
		 "'a' has 10; give every input the same number",
		 where(text, b, 0, pos, sizeof pos));
	EXPECT_ERR(text, TM_ERR_INVALID, want);
}

static void
test_err_dir_shape(void)
{
	char text[8192], dir[4096], f[4200], want[MSG_MAX];
	float v[12];

	fill(v, 12, 1);
	make_dir(tmp("badshape", dir, sizeof dir));
	for (int i = 0; i < 4; i++) {
		int64_t one[1] = { 2 }, three[1] = { 3 };

		snprintf(f, sizeof f, "%s/s%02d.npy", dir, i);
		write_npy(f, 1, i == 2 ? three : one, v);
	}
	snprintf(text, sizeof text, HEAD_X "calibration:\n  data: %s\n", dir);
	snprintf(want, sizeof want,
		 "%s/s02.npy: shape (3,) is not one sample of input 'x' "
		 "(expected (2,) or (1, 2))",
		 dir);
	EXPECT_ERR(text, TM_ERR_INVALID, want);

	/* (2, 2) is two samples, not one. */
	{
		int64_t two[2] = { 2, 2 };

		snprintf(f, sizeof f, "%s/s02.npy", dir);
		write_npy(f, 2, two, v);
	}
	snprintf(want, sizeof want,
		 "%s/s02.npy: shape (2, 2) is not one sample of input 'x' "
		 "(expected (2,) or (1, 2))",
		 dir);
	EXPECT_ERR(text, TM_ERR_INVALID, want);

	/* A folder without samples. */
	make_dir(tmp("empty", dir, sizeof dir));
	snprintf(text, sizeof text, HEAD_X "calibration:\n  data: %s\n", dir);
	snprintf(want, sizeof want,
		 "%s: holds no .npy files (a folder of calibration data "
		 "holds one .npy file per sample)",
		 dir);
	EXPECT_ERR(text, TM_ERR_INVALID, want);
}

static void
test_err_file(void)
{
	char text[8192], f[4096], want[MSG_MAX];
	const int64_t empty[2] = { 0, 2 };
	float v[12];

	fill(v, 12, 1);
	write_2d(tmp("x3.npy", f, sizeof f), 4, 3, v);
	snprintf(text, sizeof text, HEAD_X "calibration:\n  data: %s\n", f);
	snprintf(want, sizeof want,
		 "%s: shape (4, 3) does not hold samples of input 'x' (2 "
		 "values each); expected N x 2",
		 f);
	EXPECT_ERR(text, TM_ERR_INVALID, want);

	write_npy(tmp("x0.npy", f, sizeof f), 2, empty, v);
	snprintf(text, sizeof text, HEAD_X "calibration:\n  data: %s\n", f);
	snprintf(want, sizeof want, "%s: holds no samples", f);
	EXPECT_ERR(text, TM_ERR_INVALID, want);

	/* Batches are read in any order: not from a pipe. */
	snprintf(text, sizeof text, HEAD_X "calibration:\n  data: /dev/null\n");
	EXPECT_ERR(text, TM_ERR_INVALID,
		   "/dev/null: calibration data must be a file or a folder, "
		   "not a pipe or a device (it is read by batch, in any "
		   "order)");

	tmp("missing.npy", f, sizeof f);
	snprintf(text, sizeof text, HEAD_X "calibration:\n  data: %s\n", f);
	snprintf(want, sizeof want,
		 "%s: calibration data: cannot open: No such file or "
		 "directory",
		 f);
	EXPECT_ERR(text, TM_ERR_IO, want);
}

static void
test_err_inputs(void)
{
	char text[8192], a[4096], want[MSG_MAX], pos[64];
	float v[20];

	fill(v, 20, 1);
	write_2d(tmp("in_a.npy", a, sizeof a), 10, 2, v);

	/* A name the model does not have, with a suggestion... */
	snprintf(text, sizeof text,
		 HEAD_AB "calibration:\n  data:\n    a: %s\n    bb: %s\n", a,
		 a);
	snprintf(want, sizeof want,
		 "%scalibration.data: 'bb' is not an input of the model; did "
		 "you mean 'b'? (inputs: a, b)",
		 where(text, "bb:", 0, pos, sizeof pos));
	EXPECT_ERR(text, TM_ERR_NOT_FOUND, want);
	/* ... or without. */
	snprintf(text, sizeof text,
		 HEAD_AB "calibration:\n  data:\n    a: %s\n    labels: %s\n",
		 a, a);
	snprintf(want, sizeof want,
		 "%scalibration.data: 'labels' is not an input of the model "
		 "(inputs: a, b)",
		 where(text, "labels:", 0, pos, sizeof pos));
	EXPECT_ERR(text, TM_ERR_NOT_FOUND, want);

	/* An input without data. */
	snprintf(text, sizeof text,
		 HEAD_AB "calibration:\n  data: {a: %s}\n", a);
	snprintf(want, sizeof want,
		 "%scalibration.data: no data for input 'b'; every input of "
		 "the model needs some (inputs: a, b)",
		 where(text, "{a:", 1, pos, sizeof pos));
	EXPECT_ERR(text, TM_ERR_INVALID, want);

	/* One file for a model of two inputs. */
	snprintf(text, sizeof text, HEAD_AB "calibration:\n  data: %s\n", a);
	snprintf(want, sizeof want,
		 "%scalibration.data: the model has 2 inputs (a, b); give "
		 "each its data as a map {input: file-or-folder, ...}",
		 where(text, a, 0, pos, sizeof pos));
	EXPECT_ERR(text, TM_ERR_INVALID, want);
}

static void
test_err_preprocess_channels(void)
{
	char text[8192], f[4096], want[MSG_MAX], pos[64];
	const int64_t shape[4] = { 2, 2, 2, 2 };

	write_npy(tmp("imgc.npy", f, sizeof f), 4, shape, img_raw);
	snprintf(text, sizeof text,
		 HEAD_IMG "calibration:\n  data: %s\n"
			  "  preprocess: {mean: [1, 2, 3]}\n",
		 f);
	snprintf(want, sizeof want,
		 "%scalibration.preprocess.mean: 3 values, but input 'img' "
		 "has 2 channels (axis 0 of its shape [2, 2, 2]); give 1 "
		 "value for all channels or one per channel",
		 where(text, "[1, 2, 3]", 0, pos, sizeof pos));
	EXPECT_ERR(text, TM_ERR_INVALID, want);

	snprintf(text, sizeof text,
		 "tmpipe: 1\nmodel:\n  frontend: npy\n"
		 "  inputs: {img: [2, 2, 2], a: [2]}\n"
		 "  layers: [{name: r, op: relu, input: a}]\n  dir: .\n"
		 "calibration:\n  data: {img: %s, a: %s}\n"
		 "  preprocess:\n    a: {std: [1, 2, 3]}\n",
		 f, f);
	snprintf(want, sizeof want,
		 "%scalibration.preprocess.a.std: 3 values, but input 'a' "
		 "has 2 channels (axis 0 of its shape [2]); give 1 value for "
		 "all channels or one per channel",
		 where(text, "[1, 2, 3]", 0, pos, sizeof pos));
	EXPECT_ERR(text, TM_ERR_INVALID, want);
}

/* Errors of the pipeline file itself, found before anything runs. */
#define EXPECT_LOAD_ERR(text, needle, nth, want)                             \
	expect_load_err((text), (needle), (nth), (want), __FILE__, __LINE__)

static void
expect_load_err(const char *text, const char *needle, int nth,
		const char *want, const char *file, int line)
{
	char path[4096], full[MSG_MAX + 4096], buf[MSG_MAX], pos[64];
	tm_pipeline *pl;
	tm_error err;

	CU_ASSERT_EQUAL(load(text, path, sizeof path, &pl, &err),
			TM_ERR_INVALID);
	CU_ASSERT_PTR_NULL(pl);
	tm_pipeline_free(pl);
	snprintf(full, sizeof full, "%s%s%s", path,
		 where(text, needle, nth, pos, sizeof pos), want);
	tm_test_check_str(tm_error_format(&err, buf, sizeof buf), full, file, line);
}

static void
test_err_pipeline(void)
{
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: {std: [2, 0]}\n",
			"0]", 0,
			"calibration.preprocess.std: '0' must be greater than "
			"0 (it divides)");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: {std: -1}\n",
			"-1", 0,
			"calibration.preprocess.std: '-1' must be greater "
			"than 0 (it divides)");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: {scale: 1/255}\n",
			"1/255", 0,
			"calibration.preprocess.scale: '1/255' is not a number "
			"(write fractions out, e.g. 0.00392156862745098 for "
			"1/255)");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: {scale: 0}\n",
			"0}", 0,
			"calibration.preprocess.scale: '0' would make every "
			"sample 0; give another number");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: {mean: [], std: 1}\n",
			"[]", 0,
			"calibration.preprocess.mean: expected a number or a "
			"list of numbers, got an empty list");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: {mean: [1, nan]}\n",
			"nan", 0,
			"calibration.preprocess.mean: 'nan' is not a number");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: {stds: [1]}\n",
			"stds", 0,
			"unknown key 'stds' in calibration.preprocess; did you "
			"mean 'std'? (valid: scale, mean, std)");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: c.npy\n"
			       "  preprocess: [1]\n",
			"[1]", 0,
			"calibration.preprocess: expected a map {scale: s, "
			"mean: [...], std: [...]}, got a list");
	EXPECT_LOAD_ERR(HEAD_AB "calibration:\n  data: {a: a.npy, b: b.npy}\n"
				"  preprocess: {scale: 0.5}\n",
			"scale", 0,
			"calibration.preprocess: data is given per input, so "
			"give 'scale' per input too: {a: {scale: ...}, ...}");
	EXPECT_LOAD_ERR(HEAD_AB "calibration:\n  data: {a: a.npy, b: b.npy}\n"
				"  preprocess: {bb: {scale: 0.5}}\n",
			"bb", 0,
			"calibration.preprocess: 'bb' is not an input named in "
			"calibration.data; did you mean 'b'?");
	EXPECT_LOAD_ERR(HEAD_AB "calibration:\n  data: {a: a.npy, b: b.npy}\n"
				"  preprocess: {b: {std: [1, 0, 1]}}\n",
			"0,", 0,
			"calibration.preprocess.b.std: '0' must be greater "
			"than 0 (it divides)");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: [a.npy]\n", "[a", 0,
			"calibration.data: expected a file or folder name, or "
			"a map {input: file-or-folder, ...}, got a list");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: {}\n", "{}", 0,
			"calibration.data: an empty map gives no input any "
			"data");
	EXPECT_LOAD_ERR(HEAD_X "calibration:\n  data: {x: [a.npy]}\n", "[a",
			0,
			"calibration.data.x: expected a file or folder name, "
			"got a list");
}

/* What the pipeline keeps: paths resolved against its folder, per input. */
static void
test_parse(void)
{
	char path[4096], want[4200];
	tm_pipeline *pl;
	tm_error err;

	CU_ASSERT_EQUAL(load(HEAD_AB "calibration:\n  data: {b: bdir, a: "
				     "/abs/a.npy}\n  preprocess:\n"
				     "    b: {scale: 0.5, mean: [1, 2, 3]}\n",
			     path, sizeof path, &pl, &err),
			TM_OK);
	if (!pl)
		return;
	CU_ASSERT_EQUAL(pl->threads, 1);
	CU_ASSERT_EQUAL(pl->n_calib_sources, 2);
	CHECK_STR(pl->calib_sources[0].input, "b");
	snprintf(want, sizeof want, "%s/bdir", tm_test_tmpdir());
	CHECK_STR(pl->calib_sources[0].path, want);
	CHECK_STR(pl->calib_data, want);
	CHECK_STR(pl->calib_sources[1].input, "a");
	CHECK_STR(pl->calib_sources[1].path, "/abs/a.npy");
	CU_ASSERT(pl->calib_sources[0].pre.given);
	CU_ASSERT_EQUAL(pl->calib_sources[0].pre.scale, 0.5);
	CU_ASSERT_EQUAL(pl->calib_sources[0].pre.n_mean, 3);
	CU_ASSERT_EQUAL(pl->calib_sources[0].pre.n_std, 0);
	CU_ASSERT(!pl->calib_sources[1].pre.given);
	CU_ASSERT_EQUAL(pl->calib_line, 8);
	CU_ASSERT_EQUAL(pl->calib_col, 9);
	tm_pipeline_free(pl);
}

static const tm_test_case cases[] = {
	{ "file source", test_file },
	{ "batch remainder, any thread count", test_remainder },
	{ "folder source equals file source", test_dir },
	{ "two inputs: file and folder", test_multi_input },
	{ "preprocessing, hand-computed", test_preprocess },
	{ "preprocessing per input", test_preprocess_per_input },
	{ "preprocessing uint8 images", test_preprocess_u8 },
	{ "threads: identical bits", test_threads },
	{ "threads: identical bits on a CNN", test_threads_cnn },
	{ "threads: first error in batch order", test_threads_first_error },
	{ "memory does not grow with N", test_memory_flat },
	{ "error: sample counts differ", test_err_counts },
	{ "error: folder file shapes", test_err_dir_shape },
	{ "error: file shape, empty, missing", test_err_file },
	{ "error: input names", test_err_inputs },
	{ "error: preprocess channels", test_err_preprocess_channels },
	{ "error: pipeline syntax", test_err_pipeline },
	{ "pipeline: sources and preprocess", test_parse },
	{ NULL, NULL }
};

static int
setup(void)
{
	char rel[4096];
	const char *srcdir = getenv("srcdir");
	tm_error err;

	snprintf(rel, sizeof rel, "%s/examples/xor/weights",
		 srcdir && *srcdir ? srcdir : ".");
	if (!realpath(rel, xor_weights)) {
		perror(rel);
		return -1;
	}
	reg = tm_registry_new();
	tm_error_clear(&err);
	if (!reg || tm_registry_scan(reg, NULL, NULL, NULL, &err)) {
		fprintf(stderr, "registry: %s\n", err.msg);
		return -1;
	}
	return 0;
}

int
main(void)
{
	int rc;

	if (setup()) {
		tm_registry_free(reg);
		return 99;
	}
	if (tm_test_add_suite("calib", cases)) {
		tm_registry_free(reg);
		return 99;
	}
	rc = tm_test_run();
	tm_registry_free(reg);
	return rc;
}
