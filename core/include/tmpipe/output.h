/* tmpipe — output files that appear whole or not at all.
 *
 * An emitter opens its outputs through the run context. Each is written to
 * a temporary file beside its target; the core renames every temporary
 * into place only when the whole run succeeded, and removes them all
 * otherwise, so a failed run leaves no partial output.
 */
#ifndef TMPIPE_OUTPUT_H
#define TMPIPE_OUTPUT_H

#include <stdio.h>

#include <tmpipe/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tm_outputs tm_outputs;

/* A stdio stream on a new temporary file for path. Missing folders above
 * it are created (and removed again if the run fails). Write with stdio;
 * do not fclose it: the core does. NULL with err set on failure. */
TM_API FILE *tm_outputs_open(tm_outputs *outs, const char *path,
			     tm_error *err);

/* Core side: a set of pending outputs, committed or discarded at once. */
TM_API tm_outputs *tm_outputs_new(void);
/* Flushes and closes every stream, checks for write errors, then renames
 * each temporary into place. On error everything not yet renamed is
 * removed; tm_outputs_committed tells how many were already in place
 * (a rename in the same folder failing after another succeeded). */
TM_API tm_status tm_outputs_commit(tm_outputs *outs, tm_error *err);
/* Removes every pending temporary. */
TM_API void tm_outputs_discard(tm_outputs *outs);
TM_API size_t tm_outputs_count(const tm_outputs *outs);
TM_API size_t tm_outputs_committed(const tm_outputs *outs);
TM_API const char *tm_outputs_path(const tm_outputs *outs, size_t i);
/* Discards what is pending, then frees. NULL-safe. */
TM_API void tm_outputs_free(tm_outputs *outs);

#ifdef __cplusplus
}
#endif

#endif
