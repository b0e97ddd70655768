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

/* What a frontend's models may carry (tm_frontend_ops.flags):
 *
 * TM_FRONTEND_GIVES_QUANT	the quantization of already-quantized
 *				models (QDQ, QOperator: tm_tensor's
 *				quant_given): a pipeline may quantize,
 *				verify and emit without a calibration
 *				section, and fails at run time, naming the
 *				tensor, when the model leaves a range out. */
#define TM_FRONTEND_GIVES_QUANT	0x1u

/* Frontend: fills an empty model the core made (and frees). */
typedef struct tm_frontend_ops {
	tm_status (*load)(const tm_params *params, tm_model *model,
			  tm_error *err);
	/* Appended before ABI 1.0 froze, in what was a reserved slot (zero
	 * in plugins built before): TM_FRONTEND_* bits. */
	unsigned flags;
	void *reserved[3];
} tm_frontend_ops;

/* What a transform kept valid; the core recomputes the rest. */
#define TM_PRESERVE_NONE	0x0u
#define TM_PRESERVE_RANGES	0x1u	/* calibrated ranges still hold */
#define TM_PRESERVE_ALL		0xffffffffu

/* What a transform needs and gives (tm_transform_ops.needs). The
 * core checks the order of a pipeline's transforms against them when it
 * loads the pipeline (tmpipe-pipeline(5), "Order rules"):
 *
 * TM_TRANSFORM_FLOAT_WEIGHTS	it rewrites the float weights and must
 *				see them before anything was fitted to
 *				them: listed before every NEEDS_DATA one.
 * TM_TRANSFORM_NEEDS_BN	it reads the BatchNorm statistics of
 *				tm_tensor (bn_beta, bn_gamma): listed
 *				after a transform that GIVES_BN.
 * TM_TRANSFORM_GIVES_BN	it records them (bn_fold).
 * TM_TRANSFORM_NEEDS_DATA	it reads the calibration data and the
 *				quantize settings through a
 *				tm_transform_ctx: the pipeline must have a
 *				calibration section; the core runs it, and
 *				every transform listed after it, after
 *				calibration, through run_ctx. */
#define TM_TRANSFORM_FLOAT_WEIGHTS	0x1u
#define TM_TRANSFORM_NEEDS_BN		0x2u
#define TM_TRANSFORM_GIVES_BN		0x4u
#define TM_TRANSFORM_NEEDS_DATA		0x8u

/* What the core lends a transform that runs after calibration: the
 * calibration data and the pipeline's quantize settings. Valid for the
 * call only. */
typedef struct tm_transform_ctx tm_transform_ctx;

/* Called once per batch and watched tensor, in batch order, on one
 * thread: values holds n samples of tensor (an index into model->
 * tensors), n * tm_tensor_numel floats, valid for the call. A non-zero
 * return stops the stream and is returned. */
typedef tm_status (*tm_tensor_visit_fn)(void *user, size_t tensor,
					const float *values, size_t n,
					tm_error *err);

/* Runs the float reference interpreter over the calibration data set
 * (preprocessed, batch by batch, memory bounded by the batch size) on the
 * model as it is now, and hands visit the values of the n tensors listed
 * (activations or inputs of model). */
TM_API tm_status tm_transform_ctx_stream(const tm_transform_ctx *ctx,
					 const tm_model *model,
					 const size_t *tensors, size_t n,
					 tm_tensor_visit_fn visit, void *user,
					 tm_error *err);
/* tm_transform_ctx_stream through the int8 model that the quantize
 * pass will make of model as it is now, emulated in float ("fake
 * quantization"): every activation the int8 model holds (model inputs,
 * node outputs except a dense/conv2d/batchnorm/add output that the
 * quantize pass folds a ReLU or Clip into) is rounded to its int8 grid,
 * x -> s (clamp(lround(x / s) + zp, -128, 127) - zp), with the (s, zp)
 * of its calibrated range (tm_quant_affine, tm_quant_affine_symmetric;
 * sigmoid, tanh and softmax outputs their fixed ones); dense and conv2d
 * weights are the dequantized int8 ones (per tensor or per channel, as
 * tm_transform_ctx_per_channel says); biases are the float ones, with
 * the quantize-only deltas in place (tm_tensor_add_qdelta). visit sees
 * the fake-quantized values. Needs calibrated ranges. */
TM_API tm_status tm_transform_ctx_stream_quantized(
	const tm_transform_ctx *ctx, const tm_model *model,
	const size_t *tensors, size_t n, tm_tensor_visit_fn visit,
	void *user, tm_error *err);
/* 1 when the quantize pass will quantize the weights of node (an index
 * into model->nodes) per output channel, 0 per tensor: the pipeline's
 * quantize section applied to the model as it is now. -1 (err filled) on
 * a bad quantize rule. */
TM_API int tm_transform_ctx_per_channel(const tm_transform_ctx *ctx,
					const tm_model *model, size_t node,
					tm_error *err);

typedef struct tm_transform_ops {
	tm_status (*run)(tm_model *model, const tm_params *params,
			 unsigned *preserved, tm_error *err);
	/* Appended before ABI 1.0 froze, in what were reserved slots (the
	 * size is unchanged; zero in plugins built before): the
	 * TM_TRANSFORM_* bits above, and, for NEEDS_DATA, the entry the
	 * core calls instead of run (run may then be NULL). */
	unsigned needs;
	tm_status (*run_ctx)(tm_model *model, const tm_params *params,
			     const tm_transform_ctx *ctx, unsigned *preserved,
			     tm_error *err);
	void *reserved[2];
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
