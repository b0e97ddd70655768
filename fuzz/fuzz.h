/* tmpipe fuzzing — one harness per parser, shared by the libFuzzer
 * binaries (fuzz/fuzz-<target>, configure --enable-fuzz) and the corpus
 * replay that make check runs (fuzz/replay). See fuzz/README.md.
 *
 * A harness feeds one input to a parser through the entry point the CLI
 * or the library uses and returns 0, whether the parser accepted the
 * input or refused it: a refusal is a normal outcome. It returns
 * nonzero only when the parser broke a promise that no sanitizer sees:
 * a failure without a message, or one that does not name the file. The
 * libFuzzer wrapper turns that into an abort, so the fuzzer keeps the
 * input. Nothing is written outside one temporary folder, removed at
 * exit. */
#ifndef TMPIPE_FUZZ_H
#define TMPIPE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <tmpipe/error.h>

typedef int (*tm_fuzz_fn)(const uint8_t *data, size_t size);

int tm_fuzz_npy(const uint8_t *data, size_t size);
int tm_fuzz_pipeline(const uint8_t *data, size_t size);
int tm_fuzz_config(const uint8_t *data, size_t size);
int tm_fuzz_onnx(const uint8_t *data, size_t size);
int tm_fuzz_blob(const uint8_t *data, size_t size);

/* Writes data to name inside the harnesses' temporary folder (made on
 * first use, removed with its files at exit) and returns the file's
 * path (a static buffer), or NULL when the write failed (printed). */
const char *tm_fuzz_write(const char *name, const uint8_t *data,
			  size_t size);

/* 0 when st is TM_OK, or when err holds st, a message, and names the
 * file (in its file field or its text; path NULL: any file); else prints
 * why and returns 1. */
int tm_fuzz_check_err(const char *what, tm_status st, const tm_error *err,
		      const char *path);

/* For the libFuzzer binaries: the entry point calling fn, aborting on a
 * broken promise. */
#define TM_FUZZ_TARGET(fn)						\
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);	\
	int								\
	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)	\
	{								\
		if (fn(data, size))					\
			abort();					\
		return 0;						\
	}

#endif
