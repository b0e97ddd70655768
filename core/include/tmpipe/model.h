/* tmpipe — the model: named tensors and nodes in topological order.
 *
 * Frontends build a tm_model; transforms rewrite it; calibration attaches
 * ranges to activation tensors; the core's quantize pass attaches int8
 * data and requantizers; emitters read it.
 *
 * Shapes: a constant tensor (weight, bias) has its full shape. An
 * activation tensor has the shape of ONE sample, without the batch
 * dimension; the interpreter runs batches with a leading N.
 *
 * The structures are public so emitters can read them without an accessor
 * per field. Plugins treat them as read-only except through the functions
 * below. New fields are only appended (and bump TM_PLUGIN_ABI_MINOR).
 */
#ifndef TMPIPE_MODEL_H
#define TMPIPE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <tmpipe/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TM_MAX_DIMS 8

typedef enum tm_dtype {
	TM_DTYPE_F32 = 1,
	TM_DTYPE_I8,
	TM_DTYPE_I32
} tm_dtype;

typedef enum tm_tensor_kind {
	TM_TENSOR_INPUT = 1,	/* a model input (activation) */
	TM_TENSOR_ACT,		/* produced by a node (activation) */
	TM_TENSOR_CONST		/* weight, bias: has data */
} tm_tensor_kind;

/* Operators, with ONNX semantics on one sample (layout CHW for images).
 * Inputs are listed as (data, constants...). Axes in tm_attrs count the
 * dimensions of one sample: ONNX/PyTorch axis a (with the batch) is a - 1
 * here; frontends convert. */
typedef enum tm_op {
	TM_OP_DENSE = 1,	/* (x[K], W[N,K][, b[N]]) → y[N] = W x + b
				 * (PyTorch Linear; ONNX Gemm, transB = 1) */
	TM_OP_RELU,
	TM_OP_SIGMOID,
	TM_OP_MATMUL,		/* (x[..., M, K], B[K, N]) → [..., M, N] */
	TM_OP_CONV2D,		/* (x[C,H,W], W[O,C/g,kh,kw][, b[O]]) */
	TM_OP_BATCHNORM,	/* (x[C,...], gamma, beta, mean, var),
				 * inference form, epsilon */
	TM_OP_CLIP,		/* clamp to [clip_min, clip_max]; ReLU6 */
	TM_OP_LEAKY_RELU,	/* alpha */
	TM_OP_TANH,
	TM_OP_SOFTMAX,		/* along axis */
	TM_OP_MAXPOOL2D,	/* kernel, stride, pads, dilation */
	TM_OP_AVGPOOL2D,	/* kernel, stride, pads, count_include_pad */
	TM_OP_GLOBAL_AVGPOOL,	/* [C,H,W] → [C,1,1] */
	TM_OP_FLATTEN,		/* dims from axis on become one (axis 0 on
				 * a sample: everything) */
	TM_OP_RESHAPE,		/* to shape (one -1 inferred, 0 copies) */
	TM_OP_ADD,		/* (a, b), numpy broadcasting; b may be a
				 * constant (per-channel [C,1,1], ...) */
	TM_OP_CONCAT,		/* (x0, x1, ...) along axis */
	TM_OP_COUNT
} tm_op;

/* Attributes, typed; each op reads the ones its comment names. Set by
 * tm_model_add_node to the defaults (stride, dilation and group 1,
 * epsilon 1e-5, alpha 0.01, clip to [-inf, +inf], axis as ONNX's default
 * made per-sample: softmax last, concat 0, flatten 0). */
typedef struct tm_attrs {
	int64_t kernel[2];	/* pool window kh, kw */
	int64_t stride[2];
	int64_t pads[4];	/* top, left, bottom, right */
	int64_t dilation[2];
	int64_t group;
	int64_t axis;		/* negative counts from the end */
	int count_include_pad;
	float alpha;
	float clip_min, clip_max;
	float epsilon;
	int shape_ndim;		/* reshape target, one sample */
	int64_t shape[TM_MAX_DIMS];
	void *reserved[4];
} tm_attrs;

/* Quantization of one tensor. */
typedef enum tm_qscheme {
	TM_QSCHEME_NONE = 0,
	TM_QSCHEME_PER_TENSOR,
	TM_QSCHEME_PER_CHANNEL
} tm_qscheme;

/* Scales are computed and kept in double: every derived integer (bias,
 * requantizer) comes from these doubles, so the known answers of
 * QUANT.md hold exactly. Emitters print them rounded once to float32. */
typedef struct tm_qparams {
	tm_qscheme scheme;
	double scale;		/* PER_TENSOR */
	int32_t zero_point;	/* PER_TENSOR */
	double *scales;		/* PER_CHANNEL: one per channel along axis */
	int32_t *zero_points;	/* PER_CHANNEL */
	size_t n_channels;
	int axis;
} tm_qparams;

typedef struct tm_tensor {
	char *name;
	tm_tensor_kind kind;
	tm_dtype dtype;			/* of the float model: F32 */
	int ndim;
	int64_t shape[TM_MAX_DIMS];
	float *data;			/* CONST only: C order */

	/* Calibration (activations). */
	int has_range;
	float lo, hi;			/* observed clipping range */
	int fixed_range;		/* set by the op (sigmoid, tanh and
					 * softmax outputs):
					 * not observed */
	char *observer;			/* name of the observer used, or NULL */
	int symmetric_range;		/* the observer's range is (-t, t) by
					 * construction: zero point 0 */

	/* Quantization (set by the core's quantize pass). */
	tm_qparams q;
	int8_t *q8;			/* CONST weights */
	int32_t *q32;			/* CONST biases */

	void *reserved[4];

	/* BatchNorm statistics of an activation, per channel (axis 0 of a
	 * sample; n_bn of them): the values of channel c are modelled as
	 * N(bn_beta[c], bn_gamma[c]^2), the distribution the BatchNorm
	 * normalized them to (Nagel et al. 2019, section 4.2). bn_fold
	 * records them on the output of the layer it folds a BatchNorm
	 * into; a transform that rescales or shifts channels of that
	 * output keeps them up to date (cle, bias_absorb). NULL and 0
	 * when unknown. Set with tm_tensor_set_bn; a transform may change
	 * the values in place; the model frees them. */
	size_t n_bn;
	float *bn_beta, *bn_gamma;
	/* CONST: the data as it was before a transform changed it for the
	 * quantize pass only (bias_correct: the expected error of the int8
	 * layer, through tm_tensor_add_qdelta). The core quantizes data as
	 * it is, then puts qorig back, so the float model stays the
	 * reference that verify measures against. tm_tensor_numel floats,
	 * or NULL; the model frees it. */
	float *qorig;

	/* Appended (ABI 1.0 is not frozen yet, see version.h). The
	 * frontend gave this tensor's quantization (an ONNX QDQ or
	 * QOperator model). An activation: q holds the scale and zero
	 * point; has_range and fixed_range are set, with lo, hi =
	 * scale (-128 - zp), scale (127 - zp), so calibration does not
	 * observe it and the quantize pass keeps q. A weight: q8 and q
	 * (per tensor, or per channel along axis 0, zero points 0) are the
	 * model's, kept by the quantize pass instead of being derived from
	 * max|w|; data holds the same values dequantized. */
	int quant_given;
} tm_tensor;

typedef struct tm_node {
	char *name;
	tm_op op;
	size_t n_inputs, n_outputs;
	size_t *inputs;			/* indices into model->tensors */
	size_t *outputs;

	/* Set by the quantize pass for nodes that requantize: dense and
	 * conv2d one (multiplier, shift) per output channel when the
	 * weights are per channel, else one; batchnorm (not folded) one per
	 * channel, its int8 weights in gamma's q8 and int32 biases in
	 * beta's q32; max/avg/global pools one and concat one per input
	 * (M = s_in / s_out); add three (TFLite's input1, input2, output).
	 * shift > 0 is a right shift. The output clamp of dense, conv2d,
	 * batchnorm and add folds a following ReLU or Clip (ReLU6). */
	size_t n_requant;
	int32_t *multiplier;
	int32_t *shift;
	int32_t act_min, act_max;
	/* Index of the tensor whose quantization the node writes: its own
	 * output, or the output of a ReLU folded into it. */
	size_t requant_out;
	int fused_relu;			/* a following ReLU or Clip is
					 * folded */
	int8_t *lut;			/* sigmoid: 256 entries indexed by
					 * (uint8_t)(x_q + 128) */
	tm_attrs attrs;

	void *reserved[4];
} tm_node;

typedef struct tm_model {
	size_t n_tensors, n_nodes;
	tm_tensor **tensors;
	tm_node **nodes;		/* topological order */
	size_t n_inputs, n_outputs;
	size_t *inputs, *outputs;	/* tensor indices */
	char *source;			/* where the model came from */
	void *reserved[4];
} tm_model;

TM_API const char *tm_op_name(tm_op op);
/* Parses a layer name as written in pipelines ("dense", "relu", ...). */
TM_API tm_status tm_op_from_name(const char *name, tm_op *op);

TM_API tm_model *tm_model_new(void);
TM_API void tm_model_free(tm_model *m);

TM_API tm_tensor *tm_model_find_tensor(const tm_model *m, const char *name);
/* Index of the tensor, or (size_t)-1. */
TM_API size_t tm_model_tensor_index(const tm_model *m, const char *name);

/* Declares a model input of the given per-sample shape. */
TM_API tm_status tm_model_add_input(tm_model *m, const char *name, int ndim,
				    const int64_t *shape, tm_error *err);

/* Adds a constant, copying data (C order, prod(shape) floats). Every value
 * must be finite: a NaN or Inf is an error naming the tensor. */
TM_API tm_status tm_model_add_const(tm_model *m, const char *name, int ndim,
				    const int64_t *shape, const float *data,
				    tm_error *err);

/* Adds a node after all others. Inputs must already exist (the model is
 * built in topological order); outputs are created as activation tensors
 * and must not exist. inputs[0] is the data input; Dense takes
 * (x, weight[, bias]). The new node is returned in *out when out is not
 * NULL. */
TM_API tm_status tm_model_add_node(tm_model *m, const char *name, tm_op op,
				   const char *const *inputs, size_t n_inputs,
				   const char *const *outputs,
				   size_t n_outputs, tm_node **out,
				   tm_error *err);

/* Marks the model outputs (tensors no node consumes, when none are
 * declared), checks every node's operands and infers every activation
 * shape. Errors name the node and the tensors involved. */
TM_API tm_status tm_model_finalize(tm_model *m, tm_error *err);

/* Number of elements of a tensor's shape (one sample for activations). */
TM_API size_t tm_tensor_numel(const tm_tensor *t);

/* --- Rewriting the graph (transform plugins) ------------------------------
 *
 * A transform may overwrite a constant's data in place (t->data, C order,
 * tm_tensor_numel(t) floats; the model owns it) as long as every value
 * stays finite; shapes it leaves alone. Nodes and tensors change only
 * through the functions below. The pass manager calls tm_model_finalize
 * after every transform, which checks every node again. */

/* Index of the node that writes tensor t, or (size_t)-1 for a model
 * input, a constant or an index out of range. */
TM_API size_t tm_model_producer(const tm_model *m, size_t t);

/* How many times tensor t is read: once per node input that names it,
 * plus one when it is a model output. A transform may rewrite what a
 * tensor holds only when it knows every use (1 and the reader it
 * expects, typically). */
TM_API size_t tm_model_tensor_uses(const tm_model *m, size_t t);

/* Whether tensor t is one of the model's outputs. */
TM_API int tm_model_is_output(const tm_model *m, size_t t);

/* Removes m->nodes[i] and makes its output an alias of its data input
 * x = inputs[0]: every node that read the output reads x instead, and
 * where the output was a model output, x is (once) in its place. The
 * output tensor is deleted, and so is every constant that no other node
 * reads (a BatchNorm's statistics, say). Deleting a tensor moves every
 * later tensor down one index; the indices in every node, in m->inputs
 * and in m->outputs are fixed up, so a caller must not keep tensor
 * indices (or tm_tensor pointers to deleted tensors) across the call.
 * The node needs one output and a data input that is not a constant;
 * whether the graph still computes what it should (x's values standing
 * for the output's) is the caller's business. A failed call changes
 * nothing. */
TM_API tm_status tm_model_remove_node(tm_model *m, size_t i, tm_error *err);

/* Appends tensor name to node n's inputs: a bias for a dense or conv2d
 * that had none, for example (add it first with tm_model_add_const).
 * n must be a node of m; the tensor must exist and, when an activation,
 * be a model input or the output of an earlier node, so the nodes stay
 * in topological order. */
TM_API tm_status tm_model_node_add_input(tm_model *m, tm_node *n,
					 const char *name, tm_error *err);

/* The bias of dense or conv2d node n (its third input) in *out. When n
 * has none, one of zeros is added first ([out channels], named
 * "<n>.bias", or "<n>.bias.1", ".2", ... when that name is taken), so a
 * transform can shift what the layer adds. On error *out is NULL and the
 * model is unchanged. */
TM_API tm_status tm_model_node_bias(tm_model *m, tm_node *n, tm_tensor **out,
				    tm_error *err);

/* Sets t's BatchNorm statistics (copies of n floats each; n must be the
 * size of axis 0 of one sample of t, an activation). */
TM_API tm_status tm_tensor_set_bn(tm_tensor *t, const float *beta,
				  const float *gamma, size_t n,
				  tm_error *err);

/* Adds delta (tm_tensor_numel(t) floats) to the constant t's data for the
 * quantize pass only: the first call keeps the data in t->qorig (see
 * above). Every sum must stay finite; on error nothing changed. */
TM_API tm_status tm_tensor_add_qdelta(tm_tensor *t, const float *delta,
				      tm_error *err);

#ifdef __cplusplus
}
#endif

#endif
