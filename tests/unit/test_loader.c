#include "config.h"
#include "runner.h"
static void placeholder(void) { CU_ASSERT_TRUE(1); }
static const tm_test_case cases[] = { { "placeholder", placeholder }, { NULL, NULL } };
int main(void) { if (tm_test_add_suite("test_loader", cases)) return 99; return tm_test_run(); }
