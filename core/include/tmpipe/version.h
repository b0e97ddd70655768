/* tmpipe — package version and plugin ABI version. */
#ifndef TMPIPE_VERSION_H
#define TMPIPE_VERSION_H

#include <tmpipe/visibility.h>

#define TM_VERSION_MAJOR 0
#define TM_VERSION_MINOR 1
#define TM_VERSION_MICRO 0
#define TM_VERSION_STRING "0.1.0"

/* Plugin ABI. 1.0 is frozen with the first release (0.1.0); until then
 * fields appended to it (observer clone and symmetric) stay 1.0.
 * A plugin built for major M, minor m loads when M equals
 * TM_PLUGIN_ABI_MAJOR and m is not newer than TM_PLUGIN_ABI_MINOR (the
 * GStreamer rule). Bump the minor when appending to a descriptor or ops
 * table; bump the major when changing anything already there. */
#define TM_PLUGIN_ABI_MAJOR 1
#define TM_PLUGIN_ABI_MINOR 0

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually loaded, e.g. "0.1.0". */
TM_API const char *tm_version(void);

#ifdef __cplusplus
}
#endif

#endif
