/* tmpipe — version of the loaded library. */
#include "config.h"

#include <tmpipe/version.h>

const char *
tm_version(void)
{
	return TM_VERSION_STRING;
}
