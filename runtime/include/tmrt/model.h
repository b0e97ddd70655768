/* libtmrt — whole models: a table of tensors and layers that tmrt_run
 * executes in a caller's arena, built either by the compiler (tmpipe's
 * c_header emitter writes the tables below as static const data) or by
 * tmrt_blob_load from a .tmb blob (tmpipe-blob(5)) executed in place.
 *
 * Freestanding like the kernels: no allocation, no libc, no floating
 * point, nothing to parse or compute at start-up.
 *
 * A model in tables:
 *
 *	static const int32_t fc1_mult[1] = { 1082196484 };
 *	...
 *	static const tmrt_fc_params fc1 = { 2, 4, fc1_w, fc1_b, -128,
 *		-128, fc1_mult, fc1_shift, 1, -128, 127 };
 *	static const tmrt_tensor tensors[3] = {
 *		{ 0, 2, { 1, 1, 1, 2 }, -128 },	   input, arena bytes 0-1
 *		{ 4, 4, { 1, 1, 1, 4 }, -128 },	   hidden, 4-7
 *		{ 0, 1, { 1, 1, 1, 1 }, -1 },	   logit, 0 (input is dead)
 *	};
 *	static const int32_t l0_in[1] = { 0 }, l1_in[1] = { 1 };
 *	static const tmrt_layer layers[2] = {
 *		{ TMRT_OP_FULLY_CONNECTED, &fc1, l0_in, 1, 1 },
 *		{ TMRT_OP_FULLY_CONNECTED, &fc2, l1_in, 1, 2 },
 *	};
 *	static const int32_t io_in[1] = { 0 }, io_out[1] = { 2 };
 *	const tmrt_model xor_model = { tensors, 3, layers, 2, io_in, 1,
 *		io_out, 1, 8 };
 *
 *	static int8_t arena[8];	   or XOR_ARENA_SIZE from the header
 *	const int8_t *in[1] = { x };
 *	int8_t *out[1] = { y };
 *	tmrt_status st = tmrt_run(&xor_model, in, out, arena, sizeof arena);
 *
 * Every field is an integer, a pointer to static data or NULL, so the
 * tables are constant initializers in C (and in C++, which is why params
 * is a const void * rather than a union needing designators).
 *
 * The layout rules of tmrt.h hold: activations are int8 NHWC, one byte
 * an element, and every axis a kernel bundle names is counted in NHWC.
 */
#ifndef TMRT_MODEL_H
#define TMRT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <tmrt/tmrt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Layer kinds. The values are part of the .tmb format: never renumber,
 * only append (and bump the format's minor version). */
typedef enum tmrt_op {
	/* Reshape, flatten, squeeze, identity: the output holds the input's
	 * bytes reinterpreted (same size and zero point, any dims). When
	 * the planner gives both tensors the same arena offset the layer is
	 * a no-op alias; otherwise tmrt_run copies the bytes (the ranges
	 * must then be disjoint). params is NULL. */
	TMRT_OP_COPY = 0,
	TMRT_OP_FULLY_CONNECTED = 1,	/* tmrt_fc_params */
	TMRT_OP_CONV2D = 2,		/* tmrt_conv_params */
	TMRT_OP_DEPTHWISE_CONV2D = 3,	/* tmrt_conv_params */
	TMRT_OP_MAX_POOL2D = 4,		/* tmrt_pool_params */
	TMRT_OP_AVG_POOL2D = 5,		/* tmrt_pool_params */
	TMRT_OP_GLOBAL_AVG_POOL = 6,	/* tmrt_global_pool_params */
	TMRT_OP_ADD = 7,		/* tmrt_add_params */
	TMRT_OP_CONCAT = 8,		/* tmrt_concat_params */
	TMRT_OP_LUT = 9,		/* tmrt_lut_params */
	TMRT_OP_SOFTMAX = 10,		/* tmrt_softmax_params */
	TMRT_OP_COUNT
} tmrt_op;

/* One int8 activation tensor: bytes [offset, offset + size) of the
 * arena. size is the element count, dims.n * dims.h * dims.w * dims.c
 * (each >= 1). zp is the tensor's zero point; tmrt_model_check requires
 * every kernel bundle to agree with the zero points of the tensors it
 * reads and writes. Scales are not needed at run time and not stored. */
typedef struct tmrt_tensor {
	uint32_t offset;		/* bytes into the arena */
	uint32_t size;			/* bytes == elements */
	tmrt_dims dims;			/* NHWC */
	int32_t zp;			/* in [-128, 127] */
} tmrt_tensor;

/* One layer: the kernel of op applied to the tensors inputs[0 ...
 * n_inputs - 1], writing tensor output. params points to the op's
 * bundle (see tmrt_op; NULL for TMRT_OP_COPY), whose constant arrays
 * (weights, bias, requantizers, tables) are the model's. Inputs per op:
 * 1, except TMRT_OP_ADD (2: in1, in2 as in tmrt_add_params) and
 * TMRT_OP_CONCAT (params->n_inputs, in order; the same tensor may
 * appear more than once).
 *
 * How bundles map onto tensors (checked by tmrt_model_check):
 * - fully connected: the input holds rows of in_features values (rows =
 *   input size / in_features, a whole number >= 1) and the output rows
 *   of out_features: a batch runs row by row;
 * - convolution and pooling: params->input and ->output equal the
 *   tensors' dims; global pooling's output dims are (n, 1, 1, c);
 * - add: size elements in the first input and the output, in2_size in
 *   the second;
 * - concat: input k holds outer * axis_len_k * inner elements, the
 *   output outer * (sum of axis_len) * inner;
 * - table lookup: size elements in and out; softmax: outer * len *
 *   inner elements in and out.
 *
 * In place. Tensors may share arena bytes when their lifetimes do not
 * overlap (the emitter's planner decides). Within a layer the output
 * must not overlap any input, except that it may be exactly the same
 * bytes (same offset, same size) as: the input of TMRT_OP_LUT,
 * TMRT_OP_SOFTMAX or TMRT_OP_COPY; the first input of TMRT_OP_ADD, or
 * its second when in2_size == size. */
typedef struct tmrt_layer {
	int32_t op;			/* a tmrt_op (int32_t: the struct
					 * layout must not depend on
					 * -fshort-enums) */
	const void *params;		/* the op's tmrt_*_params */
	const int32_t *inputs;		/* [n_inputs] tensor indices */
	int32_t n_inputs;		/* >= 1 */
	int32_t output;			/* tensor index */
} tmrt_layer;

/* A model: tensors, layers run in order, the model's inputs and outputs
 * (tensor indices, several allowed, in the order tmrt_run's arrays take
 * them), and the arena size the planner computed (the peak of the
 * activation buffers; every tensor lies inside it). */
typedef struct tmrt_model {
	const tmrt_tensor *tensors;
	int32_t n_tensors;		/* >= 1 */
	const tmrt_layer *layers;
	int32_t n_layers;		/* >= 0 */
	const int32_t *inputs;		/* [n_inputs] */
	int32_t n_inputs;		/* >= 1 */
	const int32_t *outputs;		/* [n_outputs] */
	int32_t n_outputs;		/* >= 1 */
	uint32_t arena_size;		/* bytes */
} tmrt_model;

/* A text for each status ("success", "blob checksum mismatch", ...);
 * never NULL. */
TMRT_API const char *tmrt_status_str(tmrt_status st);

/* Checks a model without running it: everything tmrt_run relies on, so
 * that a model that passes cannot make it read or write outside the
 * arena, the caller's buffers or (given arrays as long as the bundles
 * say) the constant data, and no kernel refuses its bundle. Tensors
 * first, then the model's inputs and outputs, then layer by layer;
 * returns the first failure:
 * - TMRT_ERR_ARG: m, a table, a bundle or a kernel's required array
 *   NULL;
 * - TMRT_ERR_RANGE: a count out of range (n_tensors, n_inputs,
 *   n_outputs < 1; a layer's inputs not what its op takes), a tensor
 *   index out of range, a tensor outside [0, arena_size);
 * - TMRT_ERR_SHAPE: a tensor whose dims are < 1 or do not multiply to
 *   its size; a bundle whose shape disagrees with the tensors or that
 *   its kernel would refuse (the kernel's own shape checks);
 * - TMRT_ERR_PARAM: an unknown op, a TMRT_OP_COPY with a bundle, a
 *   bundle its kernel would refuse for its quantization (zero points,
 *   activation range, n_requant, multipliers, tables), a bundle zero
 *   point that differs from the tensor's, a tensor zero point outside
 *   [-128, 127];
 * - TMRT_ERR_OVERLAP: a layer whose output overlaps an input other than
 *   as allowed above, or two model inputs that overlap.
 * Not checked (it needs whole-model liveness, done by tmpipe's writer):
 * that a tensor a layer reads was written before and not overwritten
 * since. Cost: O(tensors + layers + their inputs), integers only. */
TMRT_API tmrt_status tmrt_model_check(const tmrt_model *m);

/* Runs the model: checks it (tmrt_model_check), checks arena_size >=
 * m->arena_size (else TMRT_ERR_NOSPACE), copies each inputs[i] (the
 * size of tensor m->inputs[i] bytes) into the arena, runs the layers in
 * order and copies each output tensor to outputs[i]. inputs and outputs
 * have n_inputs and n_outputs entries, none NULL (else TMRT_ERR_ARG),
 * and must not overlap the arena. The arena needs no alignment and
 * holds nothing between calls. Returns TMRT_OK, an error of the checks
 * before anything is written, or the first kernel error (outputs then
 * unwritten; none is expected from a model that passed the checks). */
TMRT_API tmrt_status tmrt_run(const tmrt_model *m,
			      const int8_t *const *inputs,
			      int8_t *const *outputs, void *arena,
			      size_t arena_size);

/* ---- .tmb blobs (tmpipe-blob(5)) ------------------------------------ */

/* The format versions this libtmrt reads: major equal, minor not newer. */
#define TMRT_BLOB_VERSION_MAJOR 1
#define TMRT_BLOB_VERSION_MINOR 0
/* Alignment of sections and constant arrays in a blob, and the blob's
 * recommended alignment in memory (TMRT_BLOB_MIN_ALIGN is required: the
 * int32 arrays are used in place). */
#define TMRT_BLOB_ALIGN 16
#define TMRT_BLOB_MIN_ALIGN 4

/* RAM that tmrt_blob_load needs for blob's tables and bundles (the
 * constant data stays in the blob), including slack for aligning ram:
 * any ram pointer will do. Checks the blob's structure as tmrt_blob_load
 * does, but not its CRC (it is meant to be cheap), and returns the same
 * errors; *ram_size is 0 on error. */
TMRT_API tmrt_status tmrt_blob_ram_size(const void *blob, size_t size,
					size_t *ram_size);

/* Loads a .tmb blob of size bytes for execution in place: builds the
 * tmrt_model and every bundle in ram (ram_size bytes, at least what
 * tmrt_blob_ram_size reports), with pointers into blob for the constant
 * arrays, so blob (typically in flash) must stay unchanged and mapped
 * while *out is in use, and ram too. Validates everything before *out
 * is set: the header (magic, byte order, version, sizes), the CRC, the
 * section table, every record, offset and count (overflow-safe), then
 * the model (tmrt_model_check) and each array's length against its
 * bundle. Never reads outside [blob, blob + size). Statuses, by class:
 * TMRT_ERR_ARG (a NULL pointer), TMRT_ERR_FORMAT (not a blob, a
 * big-endian blob or host, a malformed header, section table or record,
 * an unknown section or op, a nonzero reserved field), TMRT_ERR_VERSION,
 * TMRT_ERR_TRUNCATED (size below the header's file size),
 * TMRT_ERR_CRC, TMRT_ERR_RANGE (an offset, size, count or index out of
 * bounds; an array shorter than its bundle needs), TMRT_ERR_ALIGN (blob
 * not TMRT_BLOB_MIN_ALIGN-aligned, a section or array offset not a
 * multiple of TMRT_BLOB_ALIGN), TMRT_ERR_NOSPACE (ram too small), and
 * tmrt_model_check's TMRT_ERR_SHAPE, TMRT_ERR_PARAM, TMRT_ERR_OVERLAP.
 * On error *out is NULL. */
TMRT_API tmrt_status tmrt_blob_load(const void *blob, size_t size,
				    void *ram, size_t ram_size,
				    const tmrt_model **out);

/* CRC-32/IEEE (zlib's crc32, reflected polynomial 0xEDB88320): the
 * blob's checksum. Start with crc = 0; pass the previous result to
 * continue over more data. */
TMRT_API uint32_t tmrt_crc32(uint32_t crc, const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif
