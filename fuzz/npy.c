/* tmpipe fuzzing — the .npy reader (core/npy.c): tm_npy_load as the npy
 * frontend reads weights, then the streaming reader as calibration reads
 * a dataset (batches of rows, a rewind, a seek, the rest). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <tmpipe/npy.h>

#include "fuzz.h"

/* The row buffer of the streaming pass. After a successful open the
 * data fits in the file, so a row of more floats than this is only
 * possible in an empty array (0 rows), read without a buffer. */
#define MAX_ROW_FLOATS (16u << 20)

static int
stream(const char *path)
{
	tm_error err;
	tm_npy_reader *r;
	float *buf = NULL;
	size_t row, rows, got, batch = 3;
	tm_status st = TM_OK;
	int bad;

	tm_error_clear(&err);
	r = tm_npy_open(path, &err);
	if (!r)
		return tm_fuzz_check_err("tm_npy_open",
					 err.code ? err.code : TM_ERR_INTERNAL,
					 &err, path);
	row = tm_npy_row_numel(r);
	rows = tm_npy_rows(r);
	if (rows && row <= MAX_ROW_FLOATS)
		buf = malloc(batch * (row ? row : 1) * sizeof *buf);
	if (!buf)
		batch = 0;
	/* Two batches, back to the start, to the middle, then to the end. */
	for (int i = 0; !st && i < 2; i++)
		st = tm_npy_read_rows(r, buf, batch, &got, &err);
	if (!st)
		st = tm_npy_rewind(r, &err);
	if (!st)
		st = tm_npy_seek_row(r, rows / 2, &err);
	while (!st) {
		st = tm_npy_read_rows(r, buf, batch, &got, &err);
		if (!got)
			break;
	}
	bad = tm_fuzz_check_err("tm_npy_read_rows", st, &err, path);
	/* A row past the end is refused, naming the file. */
	st = tm_npy_seek_row(r, rows + 1, &err);
	if (!st) {
		fprintf(stderr, "fuzz: %s: seek past the end accepted\n", path);
		bad = 1;
	} else {
		bad |= tm_fuzz_check_err("tm_npy_seek_row", st, &err, path);
	}
	free(buf);
	tm_npy_close(r);
	return bad;
}

int
tm_fuzz_npy(const uint8_t *data, size_t size)
{
	const char *path = tm_fuzz_write("input.npy", data, size);
	tm_error err;
	tm_npy a;
	tm_status st;
	int bad;

	if (!path)
		return 1;
	tm_error_clear(&err);
	st = tm_npy_load(path, &a, &err);
	bad = tm_fuzz_check_err("tm_npy_load", st, &err, path);
	if (!st) {
		tm_npy_fini(&a);
	} else if (a.data || a.numel || a.ndim) {
		/* "On failure a holds nothing." */
		fprintf(stderr, "fuzz: %s: a failed load left an array\n",
			path);
		tm_npy_fini(&a);
		bad = 1;
	}
	return bad | stream(path);
}

#ifdef TM_FUZZ_LIBFUZZER
TM_FUZZ_TARGET(tm_fuzz_npy)
#endif
