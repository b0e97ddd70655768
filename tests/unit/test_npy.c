/* tmpipe tests — the .npy reader (core/npy.c).
 *
 * Files made by numpy come from tests/gen/npy_fixtures.py (committed in
 * tests/data/npy/); header syntax variants are written on the fly into the
 * test's temporary folder, next to the message each one must give. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tmpipe/npy.h>

#include "runner.h"

#define MSG_MAX (TM_ERROR_FILE_MAX + TM_ERROR_MSG_MAX + 8)

static const char *
fixture(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/data/npy/%s", tm_test_srcdir(), name);
	return buf;
}

static const char *
tmpfile_path(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", tm_test_tmpdir(), name);
	return buf;
}

/* Compares "path: msg" with what err formats to; prints both on a
 * mismatch, as CUnit only shows the expression. */
static void
check_message(const tm_error *err, const char *path, const char *msg)
{
	char want[MSG_MAX], got[MSG_MAX];

	snprintf(want, sizeof want, "%s: %s", path, msg);
	tm_error_format(err, got, sizeof got);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n  got:  %s\n  want: %s\n", got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
}

/* Both tm_npy_open and tm_npy_load must refuse path with code and msg;
 * a failed load leaves the array empty. */
static void
check_refused(const char *path, tm_status code, const char *msg)
{
	tm_npy_reader *r;
	tm_error err;
	tm_npy a;

	tm_error_clear(&err);
	r = tm_npy_open(path, &err);
	CU_ASSERT_PTR_NULL(r);
	tm_npy_close(r);
	CU_ASSERT_EQUAL(err.code, code);
	check_message(&err, path, msg);

	tm_error_clear(&err);
	memset(&a, 0x5a, sizeof a);
	CU_ASSERT_EQUAL(tm_npy_load(path, &a, &err), code);
	CU_ASSERT_PTR_NULL(a.data);
	CU_ASSERT_EQUAL(a.numel, 0);
	CU_ASSERT_EQUAL(a.ndim, 0);
	check_message(&err, path, msg);
}

static void
check_fixture_refused(const char *name, tm_status code, const char *msg)
{
	char path[4096];

	check_refused(fixture(name, path, sizeof path), code, msg);
}

/* Loads a fixture that must load; returns 0 when it did. */
static int
load_fixture(const char *name, tm_npy *a)
{
	char path[4096], buf[MSG_MAX];
	tm_error err;
	tm_status st;

	tm_error_clear(&err);
	st = tm_npy_load(fixture(name, path, sizeof path), a, &err);
	if (st != TM_OK)
		fprintf(stderr, "\n  %s\n", tm_error_format(&err, buf,
							  sizeof buf));
	CU_ASSERT_EQUAL(st, TM_OK);
	return st != TM_OK;
}

static void
check_shape(const tm_npy *a, int ndim, const int64_t *shape, size_t numel)
{
	CU_ASSERT_EQUAL(a->ndim, ndim);
	for (int i = 0; i < ndim && i < TM_MAX_DIMS; i++)
		CU_ASSERT_EQUAL(a->shape[i], shape[i]);
	CU_ASSERT_EQUAL(a->numel, numel);
	CU_ASSERT_PTR_NOT_NULL(a->data);
}

/* Writes a .npy file byte by byte: preamble of the given version, the
 * header as is (len bytes), then data. */
static void
write_npy(const char *path, unsigned major, unsigned minor, const char *hdr,
	  size_t len, const void *data, size_t data_len)
{
	unsigned char pre[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y' };
	size_t pre_len = major == 1 ? 10 : 12;
	FILE *fp;

	pre[6] = (unsigned char)major;
	pre[7] = (unsigned char)minor;
	pre[8] = (unsigned char)(len & 0xff);
	pre[9] = (unsigned char)(len >> 8 & 0xff);
	pre[10] = (unsigned char)(len >> 16 & 0xff);
	pre[11] = (unsigned char)(len >> 24 & 0xff);
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return;
	CU_ASSERT_EQUAL(fwrite(pre, 1, pre_len, fp), pre_len);
	CU_ASSERT_EQUAL(fwrite(hdr, 1, len, fp), len);
	if (data_len)
		CU_ASSERT_EQUAL(fwrite(data, 1, data_len, fp), data_len);
	CU_ASSERT_EQUAL(fclose(fp), 0);
}

static long
file_size(const char *path)
{
	FILE *fp = fopen(path, "rb");
	long n = -1;

	if (fp && fseek(fp, 0, SEEK_END) == 0)
		n = ftell(fp);
	if (fp)
		fclose(fp);
	return n;
}

/* --- good files ------------------------------------------------------- */

static void
test_f4_2d(void)
{
	static const int64_t shape[] = { 4, 2 };
	tm_npy a;

	if (load_fixture("f4_2d.npy", &a))
		return;
	check_shape(&a, 2, shape, 8);
	for (size_t i = 0; i < a.numel; i++)
		CU_ASSERT_EQUAL(a.data[i], -1.0f + 0.5f * (float)i);
	tm_npy_fini(&a);
	CU_ASSERT_PTR_NULL(a.data);
}

static void
test_f8_2d(void)
{
	static const int64_t shape[] = { 2, 3 };
	static const double want[] = { 0.1, -2.5, 1.0 / 3, 4.0, 1e-3, 1e6 };
	tm_npy a;

	if (load_fixture("f8_2d.npy", &a))
		return;
	check_shape(&a, 2, shape, 6);
	for (size_t i = 0; i < 6 && i < a.numel; i++)
		CU_ASSERT_EQUAL(a.data[i], (float)want[i]);
	tm_npy_fini(&a);
}

/* numpy's astype(float32) of these is inf, -inf, nan, inf, FLT_MAX,
 * FLT_MAX, inf, 0 (checked by npy_fixtures.py). */
static void
test_f8_edge(void)
{
	static const int64_t shape[] = { 8 };
	tm_npy a;

	if (load_fixture("f8_edge.npy", &a))
		return;
	check_shape(&a, 1, shape, 8);
	if (a.numel == 8) {
		CU_ASSERT(isinf(a.data[0]) && a.data[0] > 0);
		CU_ASSERT(isinf(a.data[1]) && a.data[1] < 0);
		CU_ASSERT(isnan(a.data[2]));
		CU_ASSERT(isinf(a.data[3]) && a.data[3] > 0);
		CU_ASSERT_EQUAL(a.data[4], FLT_MAX);
		CU_ASSERT_EQUAL(a.data[5], FLT_MAX);
		CU_ASSERT(isinf(a.data[6]) && a.data[6] > 0);
		CU_ASSERT_EQUAL(a.data[7], 0.0f);
	}
	tm_npy_fini(&a);
}

static void
test_versions(void)
{
	static const int64_t s2[] = { 3 }, s3[] = { 2, 2 };
	tm_npy a;

	if (load_fixture("f4_v2.npy", &a) == 0) {
		check_shape(&a, 1, s2, 3);
		if (a.numel == 3) {
			CU_ASSERT_EQUAL(a.data[0], 1.5f);
			CU_ASSERT_EQUAL(a.data[1], -2.0f);
			CU_ASSERT_EQUAL(a.data[2], 3.25f);
		}
		tm_npy_fini(&a);
	}
	if (load_fixture("f8_v3.npy", &a) == 0) {
		check_shape(&a, 2, s3, 4);
		if (a.numel == 4) {
			CU_ASSERT_EQUAL(a.data[0], 1.0f);
			CU_ASSERT_EQUAL(a.data[1], 2.0f);
			CU_ASSERT_EQUAL(a.data[2], 3.0f);
			CU_ASSERT_EQUAL(a.data[3], 4.5f);
		}
		tm_npy_fini(&a);
	}
}

static void
test_0d(void)
{
	char path[4096];
	tm_npy_reader *r;
	tm_error err;
	tm_npy a;
	float v = 0;
	size_t got = 99;

	if (load_fixture("f4_0d.npy", &a) == 0) {
		check_shape(&a, 0, NULL, 1);
		if (a.numel == 1)
			CU_ASSERT_EQUAL(a.data[0], 3.5f);
		tm_npy_fini(&a);
	}
	tm_error_clear(&err);
	r = tm_npy_open(fixture("f4_0d.npy", path, sizeof path), &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	CU_ASSERT_EQUAL(tm_npy_ndim(r), 0);
	CU_ASSERT_PTR_NOT_NULL(tm_npy_shape(r));
	CU_ASSERT_EQUAL(tm_npy_rows(r), 1);
	CU_ASSERT_EQUAL(tm_npy_row_numel(r), 1);
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, &v, 5, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 1);
	CU_ASSERT_EQUAL(v, 3.5f);
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, &v, 5, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 0);
	tm_npy_close(r);
}

static void
test_1d(void)
{
	static const int64_t shape[] = { 5 };
	static const float want[] = { 0.0f, 1.0f, -1.0f, 0.25f, 100.0f };
	char path[4096];
	tm_npy_reader *r;
	tm_error err;
	tm_npy a;

	if (load_fixture("f4_1d.npy", &a) == 0) {
		check_shape(&a, 1, shape, 5);
		for (size_t i = 0; i < 5 && i < a.numel; i++)
			CU_ASSERT_EQUAL(a.data[i], want[i]);
		tm_npy_fini(&a);
	}
	tm_error_clear(&err);
	r = tm_npy_open(fixture("f4_1d.npy", path, sizeof path), &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	CU_ASSERT_EQUAL(tm_npy_ndim(r), 1);
	CU_ASSERT_EQUAL(tm_npy_shape(r)[0], 5);
	CU_ASSERT_EQUAL(tm_npy_rows(r), 5);
	CU_ASSERT_EQUAL(tm_npy_row_numel(r), 1);
	tm_npy_close(r);
}

static void
test_3d(void)
{
	static const int64_t shape[] = { 2, 3, 2 };
	char path[4096];
	tm_npy_reader *r;
	tm_error err;
	tm_npy a;

	if (load_fixture("f4_3d.npy", &a) == 0) {
		check_shape(&a, 3, shape, 12);
		for (size_t i = 0; i < a.numel; i++)
			CU_ASSERT_EQUAL(a.data[i], (float)i);
		tm_npy_fini(&a);
	}
	tm_error_clear(&err);
	r = tm_npy_open(fixture("f4_3d.npy", path, sizeof path), &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	CU_ASSERT_EQUAL(tm_npy_rows(r), 2);
	CU_ASSERT_EQUAL(tm_npy_row_numel(r), 6);
	tm_npy_close(r);
}

static void
test_8d(void)
{
	static const int64_t shape[] = { 1, 1, 1, 1, 1, 1, 1, 2 };
	tm_npy a;

	if (load_fixture("f4_8d.npy", &a))
		return;
	check_shape(&a, 8, shape, 2);
	if (a.numel == 2) {
		CU_ASSERT_EQUAL(a.data[0], 7.0f);
		CU_ASSERT_EQUAL(a.data[1], 8.0f);
	}
	tm_npy_fini(&a);
}

/* Shapes with a 0: no data, but rows and row_numel still follow the
 * shape. */
static void
test_empty(void)
{
	static const int64_t s_empty[] = { 0, 3 }, s_nocols[] = { 3, 0 };
	char path[4096];
	tm_npy_reader *r;
	tm_error err;
	tm_npy a;
	float v = -1;
	size_t got = 99;

	if (load_fixture("f4_empty.npy", &a) == 0) {
		check_shape(&a, 2, s_empty, 0);
		tm_npy_fini(&a);
	}
	if (load_fixture("f4_nocols.npy", &a) == 0) {
		check_shape(&a, 2, s_nocols, 0);
		tm_npy_fini(&a);
	}

	tm_error_clear(&err);
	r = tm_npy_open(fixture("f4_empty.npy", path, sizeof path), &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (r) {
		CU_ASSERT_EQUAL(tm_npy_rows(r), 0);
		CU_ASSERT_EQUAL(tm_npy_row_numel(r), 3);
		CU_ASSERT_EQUAL(tm_npy_read_rows(r, &v, 1, &got, &err),
				TM_OK);
		CU_ASSERT_EQUAL(got, 0);
		tm_npy_close(r);
	}

	r = tm_npy_open(fixture("f4_nocols.npy", path, sizeof path), &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (r) {
		CU_ASSERT_EQUAL(tm_npy_rows(r), 3);
		CU_ASSERT_EQUAL(tm_npy_row_numel(r), 0);
		CU_ASSERT_EQUAL(tm_npy_read_rows(r, &v, 2, &got, &err),
				TM_OK);
		CU_ASSERT_EQUAL(got, 2);
		CU_ASSERT_EQUAL(tm_npy_read_rows(r, &v, 2, &got, &err),
				TM_OK);
		CU_ASSERT_EQUAL(got, 1);
		CU_ASSERT_EQUAL(tm_npy_read_rows(r, &v, 2, &got, &err),
				TM_OK);
		CU_ASSERT_EQUAL(got, 0);
		CU_ASSERT_EQUAL(v, -1.0f);
		tm_npy_close(r);
	}
	CU_ASSERT_EQUAL(err.code, TM_OK);
}

/* NaN and Inf are data, not format errors: callers decide. */
static void
test_nan_passes(void)
{
	tm_npy a;

	if (load_fixture("f4_nan.npy", &a))
		return;
	CU_ASSERT_EQUAL(a.numel, 3);
	if (a.numel == 3) {
		CU_ASSERT(isnan(a.data[0]));
		CU_ASSERT(isinf(a.data[1]) && a.data[1] > 0);
		CU_ASSERT(isinf(a.data[2]) && a.data[2] < 0);
	}
	tm_npy_fini(&a);
}

/* --- streaming --------------------------------------------------------- */

static void
test_stream_chunks(void)
{
	static const size_t want_got[] = { 3, 3, 3, 1, 0, 0 };
	char path[4096];
	float buf[3 * 3], all[10 * 3 + 3];
	tm_npy_reader *r;
	tm_error err;
	size_t got, row = 0;

	tm_error_clear(&err);
	r = tm_npy_open(fixture("f4_rows10.npy", path, sizeof path), &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	CU_ASSERT_EQUAL(tm_npy_ndim(r), 2);
	CU_ASSERT_EQUAL(tm_npy_shape(r)[0], 10);
	CU_ASSERT_EQUAL(tm_npy_shape(r)[1], 3);
	CU_ASSERT_EQUAL(tm_npy_rows(r), 10);
	CU_ASSERT_EQUAL(tm_npy_row_numel(r), 3);

	for (size_t call = 0; call < 6; call++) {
		memset(buf, 0, sizeof buf);
		got = 99;
		CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 3, &got, &err),
				TM_OK);
		CU_ASSERT_EQUAL(got, want_got[call]);
		for (size_t i = 0; i < got * 3 && i < 9; i++)
			CU_ASSERT_EQUAL(buf[i], (float)(row * 3 + i));
		row += got;
	}
	CU_ASSERT_EQUAL(row, 10);

	/* A second pass sees the same data; a large max_rows stops at the
	 * end and does not touch the rest of dst. */
	CU_ASSERT_EQUAL(tm_npy_rewind(r, &err), TM_OK);
	all[30] = -7.0f;
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, all, 11, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 10);
	for (size_t i = 0; i < 30; i++)
		CU_ASSERT_EQUAL(all[i], (float)i);
	CU_ASSERT_EQUAL(all[30], -7.0f);

	/* Rewinding mid-way, and reading nothing. */
	CU_ASSERT_EQUAL(tm_npy_rewind(r, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 1, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 1);
	CU_ASSERT_EQUAL(tm_npy_rewind(r, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 0, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 0);
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 2, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 2);
	CU_ASSERT_EQUAL(buf[0], 0.0f);
	CU_ASSERT_EQUAL(buf[5], 5.0f);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	tm_npy_close(r);
}

/* Writes a (rows, cols) array of '<f4' or '<f8' holding value(i) at flat
 * index i, built byte by byte (little-endian). Returns 0 on success. */
static float
value(size_t i)
{
	return (float)i * 0.5f - 100.0f;
}

static int
write_arange(const char *path, int f8, size_t rows, size_t cols)
{
	char hdr[128];
	size_t n = rows * cols, el = f8 ? 8 : 4;
	unsigned char *data = malloc(n * el + 1);
	int len;

	CU_ASSERT_PTR_NOT_NULL(data);
	if (!data)
		return -1;
	for (size_t i = 0; i < n; i++) {
		double d = value(i);
		float f = value(i);
		uint64_t u = 0;
		uint32_t u32;

		if (f8) {
			memcpy(&u, &d, 8);
		} else {
			memcpy(&u32, &f, 4);
			u = u32;
		}
		for (size_t b = 0; b < el; b++)
			data[el * i + b] = (unsigned char)(u >> 8 * b);
	}
	len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': "
		       "False, 'shape': (%zu, %zu), }", f8 ? "<f8" : "<f4",
		       rows, cols);
	write_npy(path, 1, 0, hdr, (size_t)len, data, n * el);
	free(data);
	return 0;
}

/* float64 is converted through a bounded buffer: a file of more values
 * than that buffer holds, read as one call and as rows of odd size. */
static void
test_stream_f8_large(void)
{
	enum { ROWS = 100, COLS = 11, N = ROWS * COLS };
	float *dst = malloc(N * sizeof(float));
	char path[4096];
	tm_npy_reader *r = NULL;
	tm_error err;
	tm_npy a;
	size_t got;

	CU_ASSERT_PTR_NOT_NULL(dst);
	tmpfile_path("f8_large.npy", path, sizeof path);
	if (!dst || write_arange(path, 1, ROWS, COLS))
		goto out;

	tm_error_clear(&err);
	r = tm_npy_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		goto out;
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, dst, ROWS, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, ROWS);
	for (size_t i = 0; i < N; i++)
		CU_ASSERT_EQUAL(dst[i], value(i));
	CU_ASSERT_EQUAL(tm_npy_rewind(r, &err), TM_OK);
	memset(dst, 0, N * sizeof(float));
	for (size_t row = 0; row < ROWS; row += got) {
		CU_ASSERT_EQUAL(tm_npy_read_rows(r, dst + row * COLS, 47,
						 &got, &err), TM_OK);
		if (got == 0)
			break;
	}
	for (size_t i = 0; i < N; i++)
		CU_ASSERT_EQUAL(dst[i], value(i));

	if (tm_npy_load(path, &a, &err) == TM_OK) {
		CU_ASSERT_EQUAL(a.numel, N);
		CU_ASSERT_EQUAL(a.data[N - 1], value(N - 1));
		tm_npy_fini(&a);
	}
	CU_ASSERT_EQUAL(err.code, TM_OK);
out:
	tm_npy_close(r);
	free(dst);
}

/* The file shrinks after open, which the up-front size check cannot
 * see: the read that hits the end names the row, and the reader stays
 * usable. The file is larger than stdio's buffer, so the cut part has
 * not been read ahead. */
static void
check_shrink(int f8)
{
	enum { ROWS = 2000, COLS = 3 };
	size_t el = f8 ? 8 : 4, row_bytes = COLS * el;
	char path[4096], want[128];
	float buf[3 * COLS];
	tm_npy_reader *r;
	tm_error err;
	size_t got, row = 0;
	tm_status st = TM_OK;
	long size;

	tmpfile_path(f8 ? "shrinks8.npy" : "shrinks4.npy", path, sizeof path);
	if (write_arange(path, f8, ROWS, COLS))
		return;
	size = file_size(path);
	CU_ASSERT(size > (long)(ROWS * row_bytes));

	tm_error_clear(&err);
	r = tm_npy_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	/* Rows 0-1500 whole, one value of row 1501. */
	CU_ASSERT_EQUAL(truncate(path, size - (long)(ROWS * row_bytes) +
				 1501 * (long)row_bytes + (long)el), 0);
	while ((st = tm_npy_read_rows(r, buf, 3, &got, &err)) == TM_OK &&
	       got > 0)
		row += got;
	CU_ASSERT_EQUAL(st, TM_ERR_PARSE);
	CU_ASSERT_EQUAL(row, 1500);
	CU_ASSERT_EQUAL(got, 0);
	check_message(&err, path, "unexpected end of file in row 1501 of "
		      "2000 (counting from 0)");

	/* The failed call advanced nothing: row 1500 is still next. */
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 1, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 1);
	CU_ASSERT_EQUAL(buf[0], value(1500 * COLS));
	CU_ASSERT_EQUAL(buf[2], value(1500 * COLS + 2));
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 3, &got, &err), TM_ERR_PARSE);
	check_message(&err, path, "unexpected end of file in row 1501 of "
		      "2000 (counting from 0)");

	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_npy_rewind(r, &err), TM_OK);
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 3, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(got, 3);
	CU_ASSERT_EQUAL(buf[8], value(8));
	tm_npy_close(r);

	/* Opening it now refuses it up front. */
	snprintf(want, sizeof want, "file holds %zu bytes of data, shape "
		 "(2000, 3) of '%s' needs %zu", 1501 * row_bytes + el,
		 f8 ? "<f8" : "<f4", ROWS * row_bytes);
	check_refused(path, TM_ERR_PARSE, want);
}

static void
test_stream_truncated(void)
{
	check_shrink(0);
}

static void
test_stream_truncated_f8(void)
{
	check_shrink(1);
}

/* --- integer dtypes ---------------------------------------------------- */

/* Known answers of npy_fixtures.py: astype(float32) rounds to nearest,
 * ties to even. */
static void
test_int_dtypes(void)
{
	static const int64_t s5[] = { 5 }, s23[] = { 2, 3 };
	static const float i1[] = { -128, -1, 0, 1, 127 };
	static const float u1[] = { 0, 1, 127, 128, 254, 255 };
	static const float i4[] = { -2147483648.0f, -1, 0, 16777216.0f,
				    2147483648.0f };
	static const float i8[] = { -9223372036854775808.0f,
				    -9007199254740992.0f, 0, 16777220.0f,
				    9223372036854775808.0f };
	static const struct {
		const char *name;
		int ndim;
		const int64_t *shape;
		const float *want;
		size_t n;
	} cases[] = {
		{ "i1_1d.npy", 1, s5, i1, 5 },
		{ "u1_2d.npy", 2, s23, u1, 6 },
		{ "i4_1d.npy", 1, s5, i4, 5 },
		{ "i8_1d.npy", 1, s5, i8, 5 },
	};
	tm_npy a;

	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		if (load_fixture(cases[c].name, &a))
			continue;
		check_shape(&a, cases[c].ndim, cases[c].shape, cases[c].n);
		for (size_t i = 0; i < cases[c].n && i < a.numel; i++)
			CU_ASSERT_EQUAL(a.data[i], cases[c].want[i]);
		tm_npy_fini(&a);
	}
}

/* Every dtype streamed in odd chunks through the map gives the same
 * values as a whole load. */
static void
test_int_stream(void)
{
	char path[4096];
	float buf[4], all[8];
	tm_npy_reader *r;
	tm_error err;
	size_t got, n = 0;

	tm_error_clear(&err);
	r = tm_npy_open(fixture("u1_2d.npy", path, sizeof path), &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	CU_ASSERT_EQUAL(tm_npy_rows(r), 2);
	CU_ASSERT_EQUAL(tm_npy_row_numel(r), 3);
	while (tm_npy_read_rows(r, buf, 1, &got, &err) == TM_OK && got) {
		for (size_t i = 0; i < 3 && n < 6; i++)
			all[n++] = buf[i];
	}
	CU_ASSERT_EQUAL(n, 6);
	CU_ASSERT_EQUAL(all[0], 0.0f);
	CU_ASSERT_EQUAL(all[3], 128.0f);
	CU_ASSERT_EQUAL(all[5], 255.0f);
	CU_ASSERT_EQUAL(err.code, TM_OK);
	tm_npy_close(r);
}

/* --- Fortran order ----------------------------------------------------- */

/* Each Fortran fixture holds arange(n) + first in C order. */
static void
check_fortran_load(const char *name, int ndim, const int64_t *shape,
		   size_t n, float first)
{
	tm_npy a;

	if (load_fixture(name, &a))
		return;
	check_shape(&a, ndim, shape, n);
	for (size_t i = 0; i < n && i < a.numel; i++)
		if (a.data[i] != first + (float)i) {
			fprintf(stderr, "\n  %s[%zu] = %g, want %g\n", name, i,
				(double)a.data[i], (double)(first + (float)i));
			CU_FAIL("Fortran order not transposed");
			break;
		}
	tm_npy_fini(&a);
}

static void
test_fortran_load(void)
{
	static const int64_t s2[] = { 3, 4 }, s3[] = { 2, 3, 4 },
			     s3i[] = { 4, 3, 2 };

	check_fortran_load("f4_fortran_2d.npy", 2, s2, 12, 0.0f);
	check_fortran_load("f8_fortran_3d.npy", 3, s3, 24, 0.0f);
	check_fortran_load("i1_fortran_3d.npy", 3, s3i, 24, -12.0f);
}

/* Streamed in chunks, Fortran rows come out in C order; rewind works. */
static void
test_fortran_stream(void)
{
	static const size_t want_got[] = { 4, 4, 2, 0 };
	char path[4096];
	float buf[4 * 3];
	tm_npy_reader *r;
	tm_error err;
	size_t got, row = 0;

	tm_error_clear(&err);
	r = tm_npy_open(fixture("f4_fortran_rows10.npy", path, sizeof path),
			&err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	CU_ASSERT_EQUAL(tm_npy_rows(r), 10);
	CU_ASSERT_EQUAL(tm_npy_row_numel(r), 3);
	for (int pass = 0; pass < 2; pass++) {
		row = 0;
		for (size_t call = 0; call < 4; call++) {
			memset(buf, 0, sizeof buf);
			CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 4, &got,
							 &err), TM_OK);
			CU_ASSERT_EQUAL(got, want_got[call]);
			for (size_t i = 0; i < got * 3 && i < 12; i++)
				CU_ASSERT_EQUAL(buf[i], (float)(row * 3 + i));
			row += got;
		}
		CU_ASSERT_EQUAL(row, 10);
		CU_ASSERT_EQUAL(tm_npy_rewind(r, &err), TM_OK);
	}
	CU_ASSERT_EQUAL(err.code, TM_OK);
	tm_npy_close(r);
}

/* A Fortran (rows, cols) float32 file of value(i) at C index i. */
static void
write_fortran(const char *path, size_t rows, size_t cols)
{
	char hdr[128];
	size_t n = rows * cols;
	unsigned char *data = malloc(n * 4 + 1);
	int len;

	CU_ASSERT_PTR_NOT_NULL(data);
	if (!data)
		return;
	for (size_t i = 0; i < rows; i++)
		for (size_t j = 0; j < cols; j++) {
			float f = value(i * cols + j);
			uint32_t u;

			memcpy(&u, &f, 4);
			for (size_t b = 0; b < 4; b++)
				data[4 * (j * rows + i) + b] =
					(unsigned char)(u >> 8 * b);
		}
	len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': "
		       "True, 'shape': (%zu, %zu), }", rows, cols);
	write_npy(path, 1, 0, hdr, (size_t)len, data, n * 4);
	free(data);
}

/* Cut after open, a Fortran file loses the end of its last column: every
 * row whose last element is gone fails, earlier ones still read. */
static void
test_fortran_shrink(void)
{
	enum { ROWS = 3000, COLS = 2 };
	char path[4096];
	float buf[2 * COLS];
	tm_npy_reader *r;
	tm_error err;
	size_t got, row = 0;
	tm_status st;
	long size;

	tmpfile_path("fshrink.npy", path, sizeof path);
	write_fortran(path, ROWS, COLS);
	size = file_size(path);
	tm_error_clear(&err);
	r = tm_npy_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (!r)
		return;
	CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 2, &got, &err), TM_OK);
	CU_ASSERT_EQUAL(buf[1], value(1));
	CU_ASSERT_EQUAL(buf[2], value(2));
	/* Keep rows 0-2499 of the last column. */
	CU_ASSERT_EQUAL(truncate(path, size - 500 * 4), 0);
	row = 2;
	while ((st = tm_npy_read_rows(r, buf, 2, &got, &err)) == TM_OK &&
	       got > 0) {
		CU_ASSERT_EQUAL(buf[3], value(row * COLS + 3));
		row += got;
	}
	CU_ASSERT_EQUAL(st, TM_ERR_PARSE);
	CU_ASSERT_EQUAL(row, 2500);
	check_message(&err, path, "unexpected end of file in row 2500 of "
		      "3000 (counting from 0)");
	tm_npy_close(r);
}

/* --- files that cannot be mapped --------------------------------------- */

/* A pipe holding the bytes of src, opened by path as /dev/fd/N: the
 * reader sees a FIFO, which it reads with stdio. Returns the read end
 * (to close), or -1 when the system has no /dev/fd. */
static int
pipe_of(const char *src, char *path, size_t size)
{
	unsigned char buf[60000];
	FILE *fp;
	size_t n;
	int fd[2];

	if (access("/dev/fd", F_OK) != 0)
		return -1;
	fp = fopen(src, "rb");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return -1;
	n = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	/* A pipe holds 64 KiB: the whole file fits, the writer never
	 * blocks. */
	CU_ASSERT(n < sizeof buf);
	if (pipe(fd) != 0) {
		CU_FAIL("pipe");
		return -1;
	}
	CU_ASSERT_EQUAL(write(fd[1], buf, n), (ssize_t)n);
	close(fd[1]);
	snprintf(path, size, "/dev/fd/%d", fd[0]);
	return fd[0];
}

/* float64 past the conversion buffer and int8 through stdio. */
static void
test_pipe_stream(void)
{
	enum { ROWS = 100, COLS = 11, N = ROWS * COLS };
	char file[4096], path[64], fix[4096];
	float *dst = malloc(N * sizeof(float));
	tm_npy_reader *r;
	tm_error err;
	tm_npy a;
	size_t got;
	int fd;

	CU_ASSERT_PTR_NOT_NULL(dst);
	tmpfile_path("pipe_f8.npy", file, sizeof file);
	if (!dst || write_arange(file, 1, ROWS, COLS))
		goto out;
	if ((fd = pipe_of(file, path, sizeof path)) < 0)
		goto out;
	tm_error_clear(&err);
	r = tm_npy_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL(r);
	if (r) {
		for (size_t row = 0; row < ROWS; row += got) {
			CU_ASSERT_EQUAL(tm_npy_read_rows(r, dst + row * COLS,
							 47, &got, &err),
					TM_OK);
			if (got == 0)
				break;
		}
		for (size_t i = 0; i < N; i++)
			CU_ASSERT_EQUAL(dst[i], value(i));
		tm_npy_close(r);
	}
	close(fd);

	if ((fd = pipe_of(fixture("i1_1d.npy", fix, sizeof fix), path,
			  sizeof path)) < 0)
		goto out;
	if (tm_npy_load(path, &a, &err) == TM_OK) {
		CU_ASSERT_EQUAL(a.numel, 5);
		CU_ASSERT_EQUAL(a.data[0], -128.0f);
		CU_ASSERT_EQUAL(a.data[4], 127.0f);
		tm_npy_fini(&a);
	}
	CU_ASSERT_EQUAL(err.code, TM_OK);
	close(fd);
out:
	free(dst);
}

/* Fortran order from a pipe: loaded whole and transposed, but not
 * streamed. */
static void
test_pipe_fortran(void)
{
	char fix[4096], path[64];
	tm_npy_reader *r;
	tm_error err;
	tm_npy a;
	int fd;

	fixture("f8_fortran_3d.npy", fix, sizeof fix);
	if ((fd = pipe_of(fix, path, sizeof path)) < 0)
		return;
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_npy_load(path, &a, &err), TM_OK);
	if (err.code == TM_OK) {
		CU_ASSERT_EQUAL(a.numel, 24);
		for (size_t i = 0; i < 24 && i < a.numel; i++)
			CU_ASSERT_EQUAL(a.data[i], (float)i);
		tm_npy_fini(&a);
	}
	close(fd);

	if ((fd = pipe_of(fix, path, sizeof path)) < 0)
		return;
	tm_error_clear(&err);
	r = tm_npy_open(path, &err);
	CU_ASSERT_PTR_NULL(r);
	tm_npy_close(r);
	CU_ASSERT_EQUAL(err.code, TM_ERR_UNSUPPORTED);
	check_message(&err, path, "Fortran-order data is streamed through a "
		      "memory map, and this file cannot be mapped (not a "
		      "regular file); save it with numpy.save(f, "
		      "numpy.ascontiguousarray(arr))");
	close(fd);
}

/* --- refused files ----------------------------------------------------- */

static void
test_bad_magic(void)
{
	check_fixture_refused("bad_magic.npy", TM_ERR_PARSE,
			      "not a .npy file (it does not start with "
			      "\\x93NUMPY)");
	check_fixture_refused("bad_empty.npy", TM_ERR_PARSE,
			      "not a .npy file (it is empty)");
	check_fixture_refused("bad_npz.npy", TM_ERR_PARSE,
			      "not a .npy file (it looks like a .npz "
			      "archive; save each array with numpy.save)");
}

static void
test_bad_version(void)
{
	static const char hdr[] =
		"{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n";
	char path[4096];
	float v = 1;

	check_fixture_refused("bad_version.npy", TM_ERR_UNSUPPORTED,
			      ".npy format version 4.0 is not supported "
			      "(only 1.0, 2.0 and 3.0)");
	tmpfile_path("v11.npy", path, sizeof path);
	write_npy(path, 1, 1, hdr, sizeof hdr - 1, &v, 4);
	check_refused(path, TM_ERR_UNSUPPORTED,
		      ".npy format version 1.1 is not supported "
		      "(only 1.0, 2.0 and 3.0)");
	tmpfile_path("v00.npy", path, sizeof path);
	write_npy(path, 0, 0, hdr, sizeof hdr - 1, &v, 4);
	check_refused(path, TM_ERR_UNSUPPORTED,
		      ".npy format version 0.0 is not supported "
		      "(only 1.0, 2.0 and 3.0)");
}

static void
test_bad_truncated_header(void)
{
	check_fixture_refused("bad_trunc_preamble.npy", TM_ERR_PARSE,
			      "truncated header: the file ends after 9 "
			      "bytes");
	check_fixture_refused("bad_trunc_header.npy", TM_ERR_PARSE,
			      "truncated header: the file ends after 30 "
			      "bytes, the header needs 128");
}

/* A version 2.0 header length of 2 GiB must not be allocated. */
static void
test_bad_header_len(void)
{
	static const unsigned char pre[] = {
		0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0x7f,
		'{', '}'
	};
	char path[4096];
	FILE *fp;

	tmpfile_path("hlen.npy", path, sizeof path);
	fp = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return;
	CU_ASSERT_EQUAL(fwrite(pre, 1, sizeof pre, fp), sizeof pre);
	CU_ASSERT_EQUAL(fclose(fp), 0);
	check_refused(path, TM_ERR_PARSE, "header of 2147483647 bytes is too "
		      "large (at most 1048576)");
}

#define SUPPORTED "tmpipe reads float32, float64, int8, uint8, int32 and " \
	"int64, little-endian; convert with arr.astype('<f4')"

static void
test_bad_dtype(void)
{
	check_fixture_refused("bad_bigendian.npy", TM_ERR_UNSUPPORTED,
			      "big-endian data ('>f4') is not supported; "
			      "convert with arr.astype('<f4')");
	check_fixture_refused("bad_bigendian_i8.npy", TM_ERR_UNSUPPORTED,
			      "big-endian data ('>i8') is not supported; "
			      "convert with arr.astype('<i8')");
	check_fixture_refused("bad_object.npy", TM_ERR_UNSUPPORTED,
			      "arrays of Python objects ('|O') are not "
			      "supported (reading them needs pickle); save a "
			      "numeric array, e.g. arr.astype('<f4')");
	check_fixture_refused("bad_f2.npy", TM_ERR_UNSUPPORTED,
			      "unsupported dtype '<f2' (float16); " SUPPORTED);
	check_fixture_refused("bad_bool.npy", TM_ERR_UNSUPPORTED,
			      "unsupported dtype '|b1' (bool); " SUPPORTED);
	check_fixture_refused("bad_u4.npy", TM_ERR_UNSUPPORTED,
			      "unsupported dtype '<u4' (uint32); " SUPPORTED);
	check_fixture_refused("bad_structured.npy", TM_ERR_UNSUPPORTED,
			      "structured dtypes are not supported; save each "
			      "field as its own float32 array");
}

static void
test_bad_order_and_ndim(void)
{
	/* Fortran order is checked for size like C order, up front. */
	check_fixture_refused("bad_fortran_trunc.npy", TM_ERR_PARSE,
			      "file holds 20 bytes of data, shape (2, 3) of "
			      "'<f4' needs 24");
	check_fixture_refused("bad_ndim9.npy", TM_ERR_UNSUPPORTED,
			      "arrays with 9 dimensions are not supported "
			      "(at most 8)");
}

static void
test_bad_dict(void)
{
	check_fixture_refused("bad_missing_key.npy", TM_ERR_PARSE,
			      "malformed .npy header: missing key 'shape'");
}

static void
test_bad_size(void)
{
	check_fixture_refused("bad_overflow.npy", TM_ERR_PARSE,
			      "shape (4294967296, 4294967296, 4294967296) is "
			      "too large (its byte size overflows)");
	check_fixture_refused("bad_absurd.npy", TM_ERR_PARSE,
			      "file holds 8 bytes of data, shape "
			      "(1000000000000,) of '<f4' needs 4000000000000");
	check_fixture_refused("bad_trunc_data.npy", TM_ERR_PARSE,
			      "file holds 20 bytes of data, shape (4, 2) of "
			      "'<f4' needs 32");
}

static void
test_bad_open(void)
{
	char path[4096];

	check_fixture_refused("no_such_file.npy", TM_ERR_IO,
			      "cannot open: No such file or directory");
	snprintf(path, sizeof path, "%s/data/npy", tm_test_srcdir());
	check_refused(path, TM_ERR_IO, "cannot read: Is a directory");
}

/* --- header syntax ----------------------------------------------------- */

struct hdr_case {
	const char *hdr;
	/* "(...)": loads with this shape; else the refusal message. */
	const char *want;
	tm_status code;
};

#define H(descr, order, shape) \
	"{'descr': " descr ", 'fortran_order': " order ", 'shape': " shape \
	", }"

static const struct hdr_case hdr_cases[] = {
	/* What numpy writes, and what a hand edit may look like. */
	{ H("'<f4'", "False", "(2, 2)"), "(2, 2)", TM_OK },
	{ "{\"shape\": ( 2 , 2 ), \"fortran_order\": False, "
	  "\"descr\": \"<f4\"}", "(2, 2)", TM_OK },
	{ "{'shape':(3,),'descr':'<f8','fortran_order':False}", "(3,)",
	  TM_OK },
	{ "  {'descr': '<f4',\n 'fortran_order': False,\n\t'shape': ()}\t\n",
	  "()", TM_OK },
	{ H("'<f4'", "False", "(2L, 3L)"), "(2, 3)", TM_OK },
	{ H("'<f4'", "False", "(3)"), "(3,)", TM_OK },
	{ H("'<f4'", "False", "(0, 5)"), "(0, 5)", TM_OK },
	{ H("'<f4'", "False", "(1, 2, 1, 1, 1, 1, 1, 1,)"),
	  "(1, 2, 1, 1, 1, 1, 1, 1)", TM_OK },
	{ H("'<i4'", "False", "(2,)"), "(2,)", TM_OK },
	{ H("'<i8'", "True", "(2, 3)"), "(2, 3)", TM_OK },
	{ H("'<f4'", "True", "(2, 2)"), "(2, 2)", TM_OK },
	/* Byte order means nothing for one byte. */
	{ H("'|u1'", "False", "(3,)"), "(3,)", TM_OK },
	{ H("'<i1'", "False", "(3,)"), "(3,)", TM_OK },
	{ H("'>u1'", "False", "(3,)"), "(3,)", TM_OK },
	{ H("'=i1'", "True", "(3, 2)"), "(3, 2)", TM_OK },

	{ "", "malformed .npy header: it is not a dict (no '{')",
	  TM_ERR_PARSE },
	{ "['descr']", "malformed .npy header: it is not a dict (no '{')",
	  TM_ERR_PARSE },
	{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)",
	  "malformed .npy header: expected ',' or '}' after the value of "
	  "'shape'", TM_ERR_PARSE },
	{ "{'fortran_order': False, 'shape': (2,)}",
	  "malformed .npy header: missing key 'descr'", TM_ERR_PARSE },
	{ "{'descr': '<f4', 'shape': (2,)}",
	  "malformed .npy header: missing key 'fortran_order'",
	  TM_ERR_PARSE },
	{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
	  "malformed .npy header: unexpected key 'x' (the keys are 'descr', "
	  "'fortran_order' and 'shape')", TM_ERR_PARSE },
	{ "{'descr': '<f4', 'descr': '<f4'}",
	  "malformed .npy header: key 'descr' appears twice", TM_ERR_PARSE },
	{ "{descr: '<f4'}",
	  "malformed .npy header: expected a quoted key or '}'",
	  TM_ERR_PARSE },
	{ "{'descr' '<f4'}",
	  "malformed .npy header: expected ':' after 'descr'", TM_ERR_PARSE },
	{ "{'descr': '<f4' 'fortran_order': False}",
	  "malformed .npy header: expected ',' or '}' after the value of "
	  "'descr'", TM_ERR_PARSE },
	{ "{'descr': '<f4',, 'fortran_order': False}",
	  "malformed .npy header: expected a quoted key or '}'",
	  TM_ERR_PARSE },
	{ "{'descr': '<f4", "malformed .npy header: unterminated string",
	  TM_ERR_PARSE },
	{ "{'descr': '<f4\n', 'fortran_order': False, 'shape': ()}",
	  "malformed .npy header: control byte 0x0a in a string",
	  TM_ERR_PARSE },
	{ "{'descr': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxxxxxxxxxx'}",
	  "malformed .npy header: string longer than 63 bytes",
	  TM_ERR_PARSE },
	{ H("<f4", "False", "(2,)"),
	  "malformed .npy header: 'descr' must be a string such as '<f4'",
	  TM_ERR_PARSE },
	{ H("'<f4'", "false", "(2,)"),
	  "malformed .npy header: 'fortran_order' must be True or False",
	  TM_ERR_PARSE },
	{ H("'<f4'", "0", "(2,)"),
	  "malformed .npy header: 'fortran_order' must be True or False",
	  TM_ERR_PARSE },
	{ H("'<f4'", "Falsey", "(2,)"),
	  "malformed .npy header: 'fortran_order' must be True or False",
	  TM_ERR_PARSE },
	{ H("'<f4'", "False", "(-1,)"),
	  "malformed .npy header: 'shape' has a negative dimension",
	  TM_ERR_PARSE },
	{ H("'<f4'", "False", "(2.5,)"),
	  "malformed .npy header: 'shape' must be a tuple of non-negative "
	  "integers", TM_ERR_PARSE },
	{ H("'<f4'", "False", "(,)"),
	  "malformed .npy header: 'shape' must be a tuple of non-negative "
	  "integers", TM_ERR_PARSE },
	{ H("'<f4'", "False", "(2 3)"),
	  "malformed .npy header: 'shape' must be a tuple of non-negative "
	  "integers", TM_ERR_PARSE },
	{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3",
	  "malformed .npy header: 'shape' must be a tuple of non-negative "
	  "integers", TM_ERR_PARSE },
	{ H("'<f4'", "False", "[2, 3]"),
	  "malformed .npy header: 'shape' must be a tuple such as (4, 2)",
	  TM_ERR_PARSE },
	{ H("'<f4'", "False", "3"),
	  "malformed .npy header: 'shape' must be a tuple such as (4, 2)",
	  TM_ERR_PARSE },
	{ H("'<f4'", "False", "(99999999999999999999,)"),
	  "malformed .npy header: 'shape' has a dimension too large for 64 "
	  "bits", TM_ERR_PARSE },
	{ H("'<f4'", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)"),
	  "arrays with 10 dimensions are not supported (at most 8)",
	  TM_ERR_UNSUPPORTED },
	{ H("'<f4'", "False", "(9223372036854775807,)"),
	  "shape (9223372036854775807,) is too large (its byte size "
	  "overflows)", TM_ERR_PARSE },
	/* Empty, yet each of its rows would be 2^64 bytes. */
	{ H("'<f4'", "False", "(0, 4611686018427387904)"),
	  "shape (0, 4611686018427387904) is too large (its byte size "
	  "overflows)", TM_ERR_PARSE },
	{ H("'<f4'", "False", "(2,)") " x",
	  "malformed .npy header: unexpected bytes after the closing '}'",
	  TM_ERR_PARSE },
	{ H("'>f8'", "False", "(2,)"),
	  "big-endian data ('>f8') is not supported; convert with "
	  "arr.astype('<f8')", TM_ERR_UNSUPPORTED },
	{ H("'>i4'", "True", "(2,)"),
	  "big-endian data ('>i4') is not supported; convert with "
	  "arr.astype('<i4')", TM_ERR_UNSUPPORTED },
	{ H("'=f4'", "False", "(2,)"),
	  "dtype '=f4' does not say its byte order; numpy writes '<f4' for "
	  "little-endian data", TM_ERR_UNSUPPORTED },
	{ H("'|i8'", "False", "(2,)"),
	  "dtype '|i8' does not say its byte order; numpy writes '<i8' for "
	  "little-endian data", TM_ERR_UNSUPPORTED },
	{ H("'f4'", "False", "(2,)"),
	  "unsupported dtype 'f4' (float32); " SUPPORTED,
	  TM_ERR_UNSUPPORTED },
	{ H("'<i2'", "False", "(2,)"),
	  "unsupported dtype '<i2' (int16); " SUPPORTED, TM_ERR_UNSUPPORTED },
	{ H("'<f4x'", "False", "(2,)"),
	  "unsupported dtype '<f4x'; " SUPPORTED, TM_ERR_UNSUPPORTED },
	{ H("'<O8'", "False", "(2,)"),
	  "arrays of Python objects ('<O8') are not supported (reading them "
	  "needs pickle); save a numeric array, e.g. arr.astype('<f4')",
	  TM_ERR_UNSUPPORTED },
	/* Bytes from the file are escaped in messages. */
	{ H("'<f\xc3\xa9'", "False", "(2,)"),
	  "unsupported dtype '<f\\xc3\\xa9'; " SUPPORTED,
	  TM_ERR_UNSUPPORTED },
	{ NULL, NULL, TM_OK }
};

static void
format_shape(const tm_npy_reader *r, char *buf, size_t size)
{
	const int64_t *s = tm_npy_shape(r);
	int nd = tm_npy_ndim(r);
	size_t n = (size_t)snprintf(buf, size, "(");

	for (int i = 0; i < nd && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%lld",
				      i ? ", " : "", (long long)s[i]);
	if (n < size)
		snprintf(buf + n, size - n, nd == 1 ? ",)" : ")");
}

static void
test_header_syntax(void)
{
	static const unsigned char zeros[64];
	char path[4096], shape[256];
	const struct hdr_case *c;
	tm_npy_reader *r;
	tm_error err;

	tmpfile_path("hdr.npy", path, sizeof path);
	for (c = hdr_cases; c->hdr; c++) {
		/* Version 1.0 and 2.0 read the same dict. */
		for (unsigned major = 1; major <= 2; major++) {
			write_npy(path, major, 0, c->hdr, strlen(c->hdr), zeros,
				  sizeof zeros);
			if (c->code != TM_OK) {
				check_refused(path, c->code, c->want);
				continue;
			}
			tm_error_clear(&err);
			r = tm_npy_open(path, &err);
			CU_ASSERT_PTR_NOT_NULL(r);
			if (!r) {
				check_message(&err, path, "(loads)");
				continue;
			}
			format_shape(r, shape, sizeof shape);
			if (strcmp(shape, c->want) != 0)
				fprintf(stderr, "\n  %s: shape %s, want %s\n",
					c->hdr, shape, c->want);
			CU_ASSERT_STRING_EQUAL(shape, c->want);
			tm_npy_close(r);
		}
	}
}

/* A NUL would end the dtype string early in C: '<f4\0' is not '<f4'. */
static void
test_header_nul(void)
{
	static const char hdr[] =
		"{'descr': '<f4\0', 'fortran_order': False, 'shape': (), }";
	static const char pad[] =
		"{'descr': '<f4', 'fortran_order': False, 'shape': (), }\0\0";
	char path[4096];
	float v = 0;

	tmpfile_path("nul.npy", path, sizeof path);
	write_npy(path, 1, 0, hdr, sizeof hdr - 1, &v, 4);
	check_refused(path, TM_ERR_PARSE,
		      "malformed .npy header: control byte 0x00 in a string");
	write_npy(path, 1, 0, pad, sizeof pad - 1, &v, 4);
	check_refused(path, TM_ERR_PARSE,
		      "malformed .npy header: unexpected bytes after the "
		      "closing '}'");
}

/* Hand-made version 2.0 and 3.0 files, and 3.0's UTF-8 header. */
static void
test_header_versions(void)
{
	static const char hdr[] =
		"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }";
	static const char utf8[] =
		"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), "
		"'\xc3\xa9': 1}";
	float v = 2.5f;
	char path[4096];
	tm_npy a;
	tm_error err;

	tmpfile_path("v3.npy", path, sizeof path);
	for (unsigned major = 1; major <= 3; major++) {
		write_npy(path, major, 0, hdr, sizeof hdr - 1, &v, 4);
		tm_error_clear(&err);
		CU_ASSERT_EQUAL(tm_npy_load(path, &a, &err), TM_OK);
		if (err.code == TM_OK) {
			CU_ASSERT_EQUAL(a.numel, 1);
			CU_ASSERT_EQUAL(a.data[0], 2.5f);
			tm_npy_fini(&a);
		}
	}
	write_npy(path, 3, 0, utf8, sizeof utf8 - 1, &v, 4);
	check_refused(path, TM_ERR_PARSE,
		      "malformed .npy header: unexpected key '\\xc3\\xa9' (the "
		      "keys are 'descr', 'fortran_order' and 'shape')");
}

/* --- API edges --------------------------------------------------------- */

static void
test_null_safety(void)
{
	tm_error err;
	size_t got = 5;
	float v;

	tm_npy_close(NULL);
	tm_npy_fini(NULL);
	CU_ASSERT_EQUAL(tm_npy_ndim(NULL), 0);
	CU_ASSERT_PTR_NULL(tm_npy_shape(NULL));
	CU_ASSERT_EQUAL(tm_npy_rows(NULL), 0);
	CU_ASSERT_EQUAL(tm_npy_row_numel(NULL), 0);
	tm_error_clear(&err);
	CU_ASSERT_PTR_NULL(tm_npy_open(NULL, &err));
	CU_ASSERT_EQUAL(err.code, TM_ERR_INVALID);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_npy_read_rows(NULL, &v, 1, &got, &err),
			TM_ERR_INVALID);
	CU_ASSERT_EQUAL(got, 0);
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_npy_rewind(NULL, &err), TM_ERR_INVALID);
	/* err may be NULL: the status still tells. */
	CU_ASSERT_EQUAL(tm_npy_load("/nonexistent/x.npy", &(tm_npy){ 0 },
				    NULL), TM_ERR_IO);
}

/* tm_npy_seek_row (appended with calibration threads): random access by
 * row, forward and back, in C and Fortran order; past the end refused. */
static void
test_seek_row(void)
{
	static const char *const names[] = { "f4_rows10.npy",
					     "f4_fortran_rows10.npy" };
	static const size_t rows[] = { 7, 2, 9, 0, 10, 4 };
	char path[4096], msg[MSG_MAX];
	tm_error err;

	for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
		tm_npy_reader *r;
		float buf[3 * 3];
		size_t got;

		tm_error_clear(&err);
		r = tm_npy_open(fixture(names[f], path, sizeof path), &err);
		CU_ASSERT_PTR_NOT_NULL(r);
		if (!r)
			continue;
		/* Read the whole file first: the pages behind are given
		 * back, and going back must still read the right rows. */
		for (size_t i = 0; i < 4; i++)
			CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 3, &got,
							 &err), TM_OK);
		for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
			size_t want = rows[i] + 3 > 10 ? 10 - rows[i] : 3;

			CU_ASSERT_EQUAL(tm_npy_seek_row(r, rows[i], &err),
					TM_OK);
			got = 99;
			CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 3, &got,
							 &err), TM_OK);
			CU_ASSERT_EQUAL(got, want);
			for (size_t k = 0; k < got * 3; k++)
				CU_ASSERT_EQUAL(buf[k],
						(float)(rows[i] * 3 + k));
		}
		/* Past the end: refused, the position kept. */
		CU_ASSERT_EQUAL(tm_npy_seek_row(r, 8, &err), TM_OK);
		tm_error_clear(&err);
		CU_ASSERT_EQUAL(tm_npy_seek_row(r, 11, &err), TM_ERR_INVALID);
		snprintf(msg, sizeof msg, "cannot seek to row 11 of 10");
		check_message(&err, path, msg);
		CU_ASSERT_EQUAL(tm_npy_read_rows(r, buf, 3, &got, &err),
				TM_OK);
		CU_ASSERT_EQUAL(got, 2);
		CU_ASSERT_EQUAL(buf[0], 24.0f);
		tm_npy_close(r);
	}
	tm_error_clear(&err);
	CU_ASSERT_EQUAL(tm_npy_seek_row(NULL, 0, &err), TM_ERR_INVALID);
}

static const tm_test_case cases[] = {
	{ "f4 2-D", test_f4_2d },
	{ "f8 2-D converted to f4", test_f8_2d },
	{ "f8 rounding edges", test_f8_edge },
	{ "versions 2.0 and 3.0", test_versions },
	{ "0-D", test_0d },
	{ "1-D", test_1d },
	{ "3-D", test_3d },
	{ "8-D", test_8d },
	{ "empty shapes", test_empty },
	{ "NaN and Inf pass", test_nan_passes },
	{ "stream in chunks of 3, rewind", test_stream_chunks },
	{ "stream f8 past the buffer", test_stream_f8_large },
	{ "stream: file shrinks after open", test_stream_truncated },
	{ "stream: f8 file shrinks after open", test_stream_truncated_f8 },
	{ "int8, uint8, int32, int64", test_int_dtypes },
	{ "uint8 streamed", test_int_stream },
	{ "Fortran order loaded", test_fortran_load },
	{ "Fortran order streamed, rewind", test_fortran_stream },
	{ "stream: Fortran file shrinks after open", test_fortran_shrink },
	{ "pipe: stdio path, f8 and int8", test_pipe_stream },
	{ "pipe: Fortran loads, does not stream", test_pipe_fortran },
	{ "bad magic", test_bad_magic },
	{ "bad version", test_bad_version },
	{ "truncated header", test_bad_truncated_header },
	{ "header length too large", test_bad_header_len },
	{ "unsupported dtypes", test_bad_dtype },
	{ "Fortran truncated, too many dims", test_bad_order_and_ndim },
	{ "missing key", test_bad_dict },
	{ "shape overflow, truncated data", test_bad_size },
	{ "cannot open", test_bad_open },
	{ "header syntax", test_header_syntax },
	{ "NUL in header", test_header_nul },
	{ "hand-made versions", test_header_versions },
	{ "NULL arguments", test_null_safety },
	{ "seek to a row", test_seek_row },
	{ NULL, NULL }
};

int
main(void)
{
	if (tm_test_add_suite("npy", cases))
		return 99;
	return tm_test_run();
}
