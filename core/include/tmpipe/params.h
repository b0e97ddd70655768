/* tmpipe — declared plugin parameters.
 *
 * A plugin declares its parameters in a table of tm_param_spec (as nginx
 * commands or FFmpeg AVOptions do). The core reads the pipeline's YAML,
 * checks every value against the table (type, bounds, choices, unknown
 * keys) and hands the plugin a validated, read-only tm_params. No plugin
 * parses YAML.
 */
#ifndef TMPIPE_PARAMS_H
#define TMPIPE_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include <tmpipe/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tm_param_type {
	TM_PARAM_BOOL = 1,	/* true/false (YAML 1.1 yes/no/on/off too) */
	TM_PARAM_INT,		/* int64, bounds in min/max */
	TM_PARAM_FLOAT,		/* double, finite, bounds in min/max */
	TM_PARAM_STRING,	/* any scalar; choices limits it to a set */
	TM_PARAM_PATH,		/* a file name, resolved against the
				 * pipeline file's folder */
	TM_PARAM_INT_LIST,	/* [1, 2, 3] */
	TM_PARAM_FLOAT_LIST,	/* [0.5, 1.0] */
	TM_PARAM_LIST,		/* a list of maps, each checked against
				 * fields */
	TM_PARAM_MAP,		/* a map with free keys, each value checked
				 * against fields[0] (its name is ignored) */
	TM_PARAM_STRING_LIST,	/* [a, b]; a single scalar is a list of
				 * one */
	TM_PARAM_TYPE_COUNT
} tm_param_type;

/* Flags of a tm_param_spec. */
#define TM_PARAM_REQUIRED	0x1u	/* no default: must be given */
#define TM_PARAM_HAS_MIN	0x2u	/* min applies (INT, FLOAT, lists) */
#define TM_PARAM_HAS_MAX	0x4u	/* max applies */

typedef struct tm_param_spec tm_param_spec;

struct tm_param_spec {
	const char *name;	/* NULL ends a table: TM_PARAM_END */
	tm_param_type type;
	unsigned flags;
	const char *def;	/* default as YAML text, NULL for none */
	double min, max;	/* inclusive bounds, with the flags */
	const char *const *choices; /* STRING: NULL-terminated set */
	const char *help;	/* one line, shown by `tmpipe plugins` */
	const tm_param_spec *fields; /* LIST items / MAP values */
	void *reserved[4];
};

/* Ends a tm_param_spec table. */
#define TM_PARAM_END { .name = NULL }

/* Validated values. Borrowed by the plugin for the call it is given in;
 * copy what you keep. */
typedef struct tm_params tm_params;

/* Scalars: a parameter the user did not give reads as its default. Asking
 * for a name the plugin did not declare, or with the wrong type, returns
 * the fallback (0, NULL) — a plugin bug, caught by the plugin's tests. */
TM_API int tm_params_get_bool(const tm_params *p, const char *name);
TM_API int64_t tm_params_get_int(const tm_params *p, const char *name);
TM_API double tm_params_get_float(const tm_params *p, const char *name);
/* STRING and PATH; PATH values are already resolved. NULL when absent. */
TM_API const char *tm_params_get_string(const tm_params *p,
					const char *name);

/* 1 when the user wrote the key, 0 when it is a default or absent. */
TM_API int tm_params_is_set(const tm_params *p, const char *name);

/* INT_LIST / FLOAT_LIST: number of items, and the items. */
TM_API size_t tm_params_list_len(const tm_params *p, const char *name);
TM_API const int64_t *tm_params_get_ints(const tm_params *p,
					 const char *name);
TM_API const double *tm_params_get_floats(const tm_params *p,
					  const char *name);

/* STRING_LIST: the strings (tm_params_list_len of them). */
TM_API const char *const *tm_params_get_strings(const tm_params *p,
						const char *name);

/* LIST and MAP: item i (0-based) as its own tm_params, and for MAP its
 * key. A LIST item holds the fields of the item's map; a MAP item holds
 * one value, read by the name of fields[0]. */
TM_API const tm_params *tm_params_item(const tm_params *p, const char *name,
				       size_t i);
TM_API const char *tm_params_key(const tm_params *p, const char *name,
				 size_t i);

/* Where a value was written: pipeline file, 1-based line and column of
 * the key name (or of the whole map when name is NULL). Returns 0 and
 * sets nothing for defaults. Use it to report semantic errors at the
 * user's line. */
TM_API int tm_params_where(const tm_params *p, const char *name,
			   const char **file, unsigned *line, unsigned *col);

/* Fills err at the position of name (see tm_params_where) and returns
 * code. */
TM_API tm_status tm_params_error(const tm_params *p, const char *name,
				 tm_error *err, tm_status code,
				 const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#ifdef __cplusplus
}
#endif

#endif
