/* tmpipe — the plugin ABI.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * tmpipe_plugin_init, returning a const descriptor. Write it with
 * TM_PLUGIN_DEFINE:
 *
 *	static const tm_param_spec params[] = { ..., TM_PARAM_END };
 *	static const tm_observer_ops ops = { .create = ..., ... };
 *	TM_PLUGIN_DEFINE(TM_PLUGIN_OBSERVER, "myobs", "1.0",
 *			 "one line about it", params, &ops)
 *
 * The loader checks abi_major == TM_PLUGIN_ABI_MAJOR and abi_minor <=
 * TM_PLUGIN_ABI_MINOR before it touches anything else, so the first three
 * fields never move. See tmpipe-plugin(7).
 */
#ifndef TMPIPE_PLUGIN_H
#define TMPIPE_PLUGIN_H

#include <stdint.h>

#include <tmpipe/error.h>
#include <tmpipe/model.h>
#include <tmpipe/observer.h>
#include <tmpipe/output.h>
#include <tmpipe/params.h>
#include <tmpipe/version.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tm_plugin_kind {
	TM_PLUGIN_FRONTEND = 1,
	TM_PLUGIN_OBSERVER,
	TM_PLUGIN_TRANSFORM,
	TM_PLUGIN_EMITTER,
	TM_PLUGIN_KIND_COUNT
} tm_plugin_kind;

/* Frontend: fills an empty model the core made (and frees). */
typedef struct tm_frontend_ops {
	tm_status (*load)(const tm_params *params, tm_model *model,
			  tm_error *err);
	void *reserved[4];
} tm_frontend_ops;

/* What a transform kept valid; the core recomputes the rest. */
#define TM_PRESERVE_NONE	0x0u
#define TM_PRESERVE_RANGES	0x1u	/* calibrated ranges still hold */
#define TM_PRESERVE_ALL		0xffffffffu

typedef struct tm_transform_ops {
	tm_status (*run)(tm_model *model, const tm_params *params,
			 unsigned *preserved, tm_error *err);
	void *reserved[4];
} tm_transform_ops;

/* Emitter: reads the quantized model, writes files through outs. */
typedef struct tm_emitter_ops {
	tm_status (*emit)(const tm_model *model, const tm_params *params,
			  tm_outputs *outs, tm_error *err);
	void *reserved[4];
} tm_emitter_ops;

typedef struct tm_plugin_desc {
	uint16_t abi_major;	/* TM_PLUGIN_ABI_MAJOR when built */
	uint16_t abi_minor;	/* TM_PLUGIN_ABI_MINOR when built */
	uint32_t size;		/* sizeof(tm_plugin_desc) when built */
	tm_plugin_kind kind;
	const char *name;	/* [a-z0-9_]+, unique among loaded plugins */
	const char *version;
	const char *description; /* one line */
	const tm_param_spec *params; /* NULL-name-terminated, or NULL */
	const void *ops;	/* tm_<kind>_ops for kind */
	void *reserved[8];
} tm_plugin_desc;

typedef const tm_plugin_desc *(*tm_plugin_init_fn)(void);

#define TM_PLUGIN_ENTRY "tmpipe_plugin_init"

#if defined(__GNUC__) && __GNUC__ >= 4
#define TM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TM_PLUGIN_EXPORT
#endif

#define TM_PLUGIN_DEFINE(kind_, name_, version_, desc_, params_, ops_)	\
	static const tm_plugin_desc tm_plugin_desc_ = {			\
		TM_PLUGIN_ABI_MAJOR, TM_PLUGIN_ABI_MINOR,		\
		(uint32_t)sizeof(tm_plugin_desc), (kind_), (name_),	\
		(version_), (desc_), (params_), (ops_), { 0 }		\
	};								\
	TM_PLUGIN_EXPORT const tm_plugin_desc *tmpipe_plugin_init(void);\
	TM_PLUGIN_EXPORT const tm_plugin_desc *tmpipe_plugin_init(void)	\
	{								\
		return &tm_plugin_desc_;				\
	}

TM_API const char *tm_plugin_kind_name(tm_plugin_kind kind);

#ifdef __cplusplus
}
#endif

#endif
