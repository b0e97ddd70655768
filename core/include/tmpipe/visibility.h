/* tmpipe — symbol visibility. libtmpipe is built with -fvisibility=hidden;
 * TM_API marks what it exports. Plugins use TM_PLUGIN_EXPORT (plugin.h). */
#ifndef TMPIPE_VISIBILITY_H
#define TMPIPE_VISIBILITY_H

#if defined(__GNUC__) && __GNUC__ >= 4
#define TM_API __attribute__((visibility("default")))
#else
#define TM_API
#endif

#endif
