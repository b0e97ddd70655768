/* tmpipe tests — shared CUnit runner. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <tmpipe/error.h>

#include "runner.h"

void
tm_test_check_str(const char *got, const char *want, const char *file,
		  int line)
{
	int same = got && want && strcmp(got, want) == 0;

	if (!same)
		fprintf(stderr, "\n%s:%d: got  '%s'\n%s:%d: want '%s'\n", file,
			line, got ? got : "(null)", file, line,
			want ? want : "(null)");
	CU_assertImplementation(same ? CU_TRUE : CU_FALSE, (unsigned)line,
				"strings equal", file, "", CU_FALSE);
}

void
tm_test_check_err(const struct tm_error *err, const char *want,
		  const char *file, int line)
{
	char buf[4096];

	tm_test_check_str(tm_error_format(err, buf, sizeof buf), want, file,
			  line);
}

static char tmpdir[4096];

int
tm_test_add_suite(const char *name, const tm_test_case *cases)
{
	CU_pSuite s;

	if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS)
		return -1;
	s = CU_add_suite(name, NULL, NULL);
	if (!s)
		return -1;
	for (; cases->name; cases++)
		if (!CU_add_test(s, cases->name, cases->fn))
			return -1;
	return 0;
}

const char *
tm_test_srcdir(void)
{
	static char dir[4096];
	const char *s = getenv("srcdir");

	if (!dir[0]) {
		char abs[4096];

		/* Absolute, so paths built from it stay right when a test
		 * writes them into a file in another folder (a pipeline in
		 * the tmpdir pointing at data here). */
		if (!realpath(s && *s ? s : ".", abs))
			snprintf(abs, sizeof abs, "%s", s && *s ? s : ".");
		snprintf(dir, sizeof dir, "%s/tests", abs);
	}
	return dir;
}

const char *
tm_test_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(tmpdir, sizeof tmpdir, "%s/tmpipe-test.XXXXXX",
			 t && *t ? t : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			exit(99);
		}
	}
	return tmpdir;
}

void
tm_test_write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL(fp);
	if (!fp)
		return;
	fputs(text, fp);
	CU_ASSERT_EQUAL(fclose(fp), 0);
}

static void
remove_tmpdir(void)
{
	char cmd[4200];

	if (!tmpdir[0])
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int
tm_test_run(void)
{
	unsigned failed_tests, failed_suites, failed_asserts, ran;

	if (CU_get_registry() == NULL)
		return 99;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed_tests = CU_get_number_of_tests_failed();
	failed_suites = CU_get_number_of_suites_failed();
	failed_asserts = CU_get_number_of_failures();
	ran = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	remove_tmpdir();
	printf("\n%u passed, %u failed\n", ran - failed_tests, failed_tests);
	if (failed_tests || failed_suites || failed_asserts || ran == 0)
		return 1;
	return 0;
}

char logbuf[TM_TEST_LOG_MAX];
char tracebuf[TM_TEST_LOG_MAX];

void
tm_test_log_capture(void *user, tm_log_severity sev, const char *source,
		    const char *message)
{
	char *buf = sev == TM_LOG_TRACE ? tracebuf : logbuf;
	size_t len = strlen(buf);

	(void)user;
	snprintf(buf + len, TM_TEST_LOG_MAX - len, "%s: %s: %s\n",
		 sev == TM_LOG_TRACE ? "trace"
		 : sev == TM_LOG_WARNING ? "warning" : "note", source,
		 message);
}
