/* tmpipe tests — a CUnit runner whose exit status reflects failures.
 *
 * CU_basic_run_tests returns CUE_SUCCESS even when assertions fail, so the
 * exit status is taken from the failure counts. Each test binary defines
 * its suites with TM_TEST_SUITE and calls tm_test_main. */
#ifndef TMPIPE_TEST_RUNNER_H
#define TMPIPE_TEST_RUNNER_H

#include <CUnit/CUnit.h>

#include <tmpipe/log.h>

typedef struct tm_test_case {
	const char *name;
	void (*fn)(void);
} tm_test_case;

/* Registers one suite of NULL-terminated cases; returns 0 on success. */
int tm_test_add_suite(const char *name, const tm_test_case *cases);

/* Runs everything registered; returns the process exit status (0 when
 * every test and suite passed, 1 otherwise). */
int tm_test_run(void);

/* Folder of the source tree's tests/ (from $srcdir, made absolute, for
 * data files) and a
 * fresh temporary folder for the test binary's own outputs. */
const char *tm_test_srcdir(void);
const char *tm_test_tmpdir(void);

/* Asserts that two strings are equal; on a difference prints both with
 * the caller's file and line (CU_ASSERT_STRING_EQUAL does not say what it
 * got). CHECK_ERR compares an error as the CLI prints it. */
#define CHECK_STR(got, want) tm_test_check_str((got), (want), __FILE__, __LINE__)
#define CHECK_ERR(err, want) tm_test_check_err((err), (want), __FILE__, __LINE__)
void tm_test_check_str(const char *got, const char *want, const char *file,
		       int line);
struct tm_error;
void tm_test_check_err(const struct tm_error *err, const char *want,
		       const char *file, int line);

/* A failed check that ends the test: the test frees what it holds at its
 * out: label (a _FATAL assert would longjmp past it and leak). */
#define REQUIRE(cond)							\
	do {								\
		if (!(cond)) {						\
			CU_FAIL(#cond);					\
			goto out;					\
		}							\
	} while (0)

/* A tm_log handler (tm_log_set_handler(tm_test_log_capture, NULL)):
 * warnings and notes are appended to logbuf, traces to tracebuf, one
 * line each: "warning: SOURCE: MESSAGE". A test clears them by writing
 * '\0' to their first byte. */
#define TM_TEST_LOG_MAX 16384
extern char logbuf[TM_TEST_LOG_MAX];
extern char tracebuf[TM_TEST_LOG_MAX];
void tm_test_log_capture(void *user, tm_log_severity sev, const char *source,
			 const char *message);

/* Writes text to path (a fixture made on the fly); CU_FAIL on error. */
void tm_test_write_file(const char *path, const char *text);

#endif
