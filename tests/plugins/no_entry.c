/* Fixture: a shared object without tmpipe_plugin_init. */
#include <tmpipe/visibility.h>

int no_entry_answer(void);

__attribute__((visibility("default"))) int
no_entry_answer(void)
{
	return 42;
}
