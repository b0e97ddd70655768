/* tmpipe tests — a CUnit runner whose exit status reflects failures.
 *
 * CU_basic_run_tests returns CUE_SUCCESS even when assertions fail, so the
 * exit status is taken from the failure counts. Each test binary defines
 * its suites with TM_TEST_SUITE and calls tm_test_main. */
#ifndef TMPIPE_TEST_RUNNER_H
#define TMPIPE_TEST_RUNNER_H

#include <CUnit/CUnit.h>

typedef struct tm_test_case {
	const char *name;
	void (*fn)(void);
} tm_test_case;

/* Registers one suite of NULL-terminated cases; returns 0 on success. */
int tm_test_add_suite(const char *name, const tm_test_case *cases);

/* Runs everything registered; returns the process exit status (0 when
 * every test and suite passed, 1 otherwise). */
int tm_test_run(void);

/* Folder of the source tree's tests/ (from $srcdir, for data files) and a
 * fresh temporary folder for the test binary's own outputs. */
const char *tm_test_srcdir(void);
const char *tm_test_tmpdir(void);

/* Writes text to path (a fixture made on the fly); CU_FAIL on error. */
void tm_test_write_file(const char *path, const char *text);

#endif
