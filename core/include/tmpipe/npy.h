/* tmpipe — reading NumPy .npy files.
 *
 * Format: NumPy's "NEP 1" .npy, versions 1.0, 2.0 and 3.0 (whose header
 * is UTF-8): magic "\x93NUMPY", major, minor, header length (uint16 LE
 * for 1.0, uint32 LE for 2.0/3.0), then a Python dict literal with
 * 'descr', 'fortran_order' and 'shape', padded with spaces to a multiple
 * of 64 bytes and ended by '\n'.
 *
 * Accepted dtypes, all converted to float32 as numpy's astype(float32)
 * would (round to nearest; float64 beyond float32's range becomes
 * infinite): little-endian float32 '<f4', float64 '<f8', int32 '<i4',
 * int64 '<i8', and int8 '|i1', uint8 '|u1' (for these one-byte types '<',
 * '>' and '=' are accepted too). Big-endian data, object arrays ('|O'),
 * structured dtypes and every other dtype are refused with a message
 * naming the file, what was found and how to convert it.
 *
 * Both orders are read: callers always get C order (row-major). A Fortran-
 * order array ('fortran_order': True) is transposed: tm_npy_load reads it
 * whole; the streaming reader gathers each batch of rows from a memory map
 * (for every position in a row the rows of a batch are contiguous in the
 * file), so it allocates nothing beyond the caller's buffer. A Fortran-
 * order file that cannot be mapped (a pipe) can be loaded but not
 * streamed: tm_npy_open refuses it, saying so.
 *
 * tm_npy_load maps regular files. The streaming reader reads C-order
 * rows with stdio into the caller's buffer, so a pass over a file of any
 * size keeps the same small resident set (a map would bring a page-cache
 * folio of up to 2 MiB into the process at every fault, and the peak
 * would grow with the file). It maps Fortran-order files: rows touch every
 * part of the file at each batch: its pages stay mapped as page cache
 * (clean, and reclaimed by the kernel under memory pressure), so the
 * resident set reaches the file's size; save calibration data in C order
 * (numpy's default) to avoid that. Files that cannot be mapped (pipes,
 * devices) are read with stdio. A file cut short after it was opened gives
 * "unexpected end of file in row R" on the read that needs the missing
 * data (the size is checked before each read; only a file cut by another
 * process during that very read can still fault, as with any mapped
 * reader).
 */
#ifndef TMPIPE_NPY_H
#define TMPIPE_NPY_H

#include <stddef.h>
#include <stdint.h>

#include <tmpipe/error.h>
#include <tmpipe/model.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A whole array in memory. */
typedef struct tm_npy {
	int ndim;
	int64_t shape[TM_MAX_DIMS];
	size_t numel;
	float *data;		/* numel floats, C order; owned */
} tm_npy;

/* Loads path into a (which it initialises). On failure a holds nothing
 * and err names the file. */
TM_API tm_status tm_npy_load(const char *path, tm_npy *a, tm_error *err);
/* Frees a's data. NULL-safe. */
TM_API void tm_npy_fini(tm_npy *a);

/* A streaming reader: the header, then the data a few rows at a time, so
 * a calibration set of any size is read in bounded memory. Rows come in
 * C order whatever the file's order (see above for Fortran order). */
typedef struct tm_npy_reader tm_npy_reader;

TM_API tm_npy_reader *tm_npy_open(const char *path, tm_error *err);
TM_API void tm_npy_close(tm_npy_reader *r);	/* NULL-safe */
TM_API int tm_npy_ndim(const tm_npy_reader *r);
TM_API const int64_t *tm_npy_shape(const tm_npy_reader *r);
/* Elements in one row: the product of shape[1:] (1 for a 1-D array). */
TM_API size_t tm_npy_row_numel(const tm_npy_reader *r);
/* Rows: shape[0] (1 for a 0-D array). */
TM_API size_t tm_npy_rows(const tm_npy_reader *r);
/* Reads up to max_rows next rows into dst (max_rows * row_numel floats),
 * stores the count in *got (0 at the end). A short or unreadable file is
 * an error naming the file and the row. */
TM_API tm_status tm_npy_read_rows(tm_npy_reader *r, float *dst,
				  size_t max_rows, size_t *got, tm_error *err);
/* Back to the first row (for observers that need another pass). */
TM_API tm_status tm_npy_rewind(tm_npy_reader *r, tm_error *err);
/* To row (0 to rows, rows being the end), so the next read starts there:
 * random access by row, e.g. calibration threads that each read their
 * own batches through their own reader. A row past the end is
 * TM_ERR_INVALID, naming the file; the position is then unchanged. */
TM_API tm_status tm_npy_seek_row(tm_npy_reader *r, size_t row,
				 tm_error *err);

#ifdef __cplusplus
}
#endif

#endif
