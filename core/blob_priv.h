/* tmpipe — the model writer: builds, from the lowered int8 model, the
 * structures libtmrt runs, in two forms made from one intermediate:
 *
 * - a tmrt_model in host memory (tm_priv_blob_model), which tmrt_run
 *   runs directly (the verify stage) and whose tables the c_header
 *   emitter prints as static const C data, walking the same arrays and
 *   bundles (tm_priv_blob_array_at, tm_priv_blob_fields);
 * - a .tmb blob (tm_priv_blob_bytes, format tmpipe-blob(5)), which
 *   tmrt_blob_load turns back into a tmrt_model executing in place.
 *
 * Both come from the bundles the writer holds after tm_priv_blob_finish,
 * so "header build" and "blob build" agree by construction, and
 * tm_priv_blob_model_diff proves it for any pair of models (it compares
 * every table, bundle field and array element).
 *
 * Use: tm_priv_blob_new; tm_priv_blob_add_tensor for every activation
 * tensor (arena offsets from the planner); tm_priv_blob_add_layer for
 * every layer in execution order; tm_priv_blob_set_io; then
 * tm_priv_blob_finish, which checks the model with tmrt_model_check and
 * the arena plan with whole-model liveness (no tensor overwritten while
 * a later layer or the caller still needs it), and serializes the blob.
 * Errors name the layer and tensors involved (TM_ERR_INVALID for a
 * lowering or planning mistake). Arguments are borrowed: the writer
 * copies every bundle and constant array it is given (identical arrays
 * are stored once).
 */
#ifndef TMPIPE_BLOB_PRIV_H
#define TMPIPE_BLOB_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <tmpipe/error.h>
#include <tmrt/model.h>
#include <tmrt/tmrt.h>

#include "util_priv.h"

typedef struct tm_priv_blob tm_priv_blob;

/* What a constant array is to its bundle. */
typedef enum tm_priv_blob_role {
	TM_PRIV_BLOB_WEIGHTS,		/* int8 */
	TM_PRIV_BLOB_BIAS,		/* int32, may be absent */
	TM_PRIV_BLOB_MULTIPLIER,	/* int32 */
	TM_PRIV_BLOB_SHIFT,		/* int32 */
	TM_PRIV_BLOB_TABLE,		/* int8 [256], table lookup */
	TM_PRIV_BLOB_EXP_TABLE,		/* int32 [256], softmax */
	TM_PRIV_BLOB_ROLE_COUNT
} tm_priv_blob_role;

/* One constant array, stored once however many bundles share it. */
typedef struct tm_priv_blob_array {
	tm_priv_blob_role role;		/* of its first user */
	int32_t layer;			/* its first user */
	uint32_t elem_size;		/* 1 (int8) or 4 (int32) */
	uint32_t count;			/* elements */
	const void *data;		/* owned by the writer */
	uint32_t offset;		/* in the blob's data section (after
					 * tm_priv_blob_finish) */
} tm_priv_blob_array;

/* How a bundle's fields map onto the blob and onto a C initializer: the
 * fields of each tmrt_*_params in declaration order. */
typedef enum tm_priv_blob_field_kind {
	TM_PRIV_BLOB_F_I32,		/* an int32_t */
	TM_PRIV_BLOB_F_I8_ARRAY,	/* a const int8_t * */
	TM_PRIV_BLOB_F_I32_ARRAY,	/* a const int32_t * */
	TM_PRIV_BLOB_F_CONCAT_INPUTS	/* tmrt_concat_params.inputs: in a
					 * blob, inline after the other
					 * fields (tmpipe-blob(5)) */
} tm_priv_blob_field_kind;

typedef struct tm_priv_blob_field {
	const char *name;		/* "input.n", "kernel_h", "weights" */
	size_t offset;			/* offsetof in the bundle */
	tm_priv_blob_field_kind kind;
	tm_priv_blob_role role;		/* arrays only */
	int optional;			/* may be NULL (bias) */
} tm_priv_blob_field;

/* The fields of op's bundle (*n of them; none for TMRT_OP_COPY, NULL for
 * an unknown op). */
TM_PRIV const tm_priv_blob_field *tm_priv_blob_fields(int32_t op, size_t *n);

/* "fully_connected", "conv2d", ...; "unknown" for an unknown op. */
TM_PRIV const char *tm_priv_blob_op_name(int32_t op);
/* "weights", "bias", "multiplier", "shift", "table", "exp_table" (for
 * naming arrays: prefix_<layer>_<role>). */
TM_PRIV const char *tm_priv_blob_role_name(tm_priv_blob_role role);

/* Elements of the array with role in op's bundle p: -1 when p's fields
 * cannot size it (a dimension < 1, groups not dividing, more than
 * UINT32_MAX elements). */
TM_PRIV int64_t tm_priv_blob_array_len(int32_t op, const void *p,
				       tm_priv_blob_role role);

TM_PRIV tm_priv_blob *tm_priv_blob_new(tm_error *err);
TM_PRIV void tm_priv_blob_free(tm_priv_blob *b);

/* Adds a tensor (name may be NULL: messages then say "tensor 3");
 * *index gets its index (0, 1, ...). */
TM_PRIV tm_status tm_priv_blob_add_tensor(tm_priv_blob *b, const char *name,
					  const tmrt_tensor *t,
					  int32_t *index, tm_error *err);

/* Adds the next layer: op with its bundle params (the tmrt_*_params of
 * tmrt/model.h's table; NULL for TMRT_OP_COPY), reading tensors
 * inputs[0 ... n_inputs - 1] and writing tensor output, all added
 * before. The bundle and its arrays are copied; array lengths follow
 * from the bundle (tm_priv_blob_array_len). name may be NULL. */
TM_PRIV tm_status tm_priv_blob_add_layer(tm_priv_blob *b, const char *name,
					 int32_t op, const void *params,
					 const int32_t *inputs,
					 int32_t n_inputs, int32_t output,
					 tm_error *err);

/* The model's inputs and outputs, in tmrt_run's order. */
TM_PRIV tm_status tm_priv_blob_set_io(tm_priv_blob *b, const int32_t *inputs,
				      int32_t n_inputs,
				      const int32_t *outputs,
				      int32_t n_outputs, tm_error *err);

/* Checks the whole model and its arena plan, computes arena_size (the
 * end of the furthest tensor) and builds the blob. Nothing can be added
 * afterwards. */
TM_PRIV tm_status tm_priv_blob_finish(tm_priv_blob *b, tm_error *err);

/* After tm_priv_blob_finish (else NULL): the model in host memory,
 * valid as long as b, and the blob's bytes (*size of them). */
TM_PRIV const tmrt_model *tm_priv_blob_model(const tm_priv_blob *b);
TM_PRIV const uint8_t *tm_priv_blob_bytes(const tm_priv_blob *b,
					  size_t *size);

/* The constant arrays, in blob order; the array whose data is ptr (a
 * bundle's pointer in tm_priv_blob_model), or -1. */
TM_PRIV size_t tm_priv_blob_n_arrays(const tm_priv_blob *b);
TM_PRIV const tm_priv_blob_array *tm_priv_blob_array_at(
	const tm_priv_blob *b, size_t i);
TM_PRIV int32_t tm_priv_blob_array_find(const tm_priv_blob *b,
					const void *ptr);

/* The names given to tm_priv_blob_add_tensor and _add_layer (NULL when
 * none was given or i is out of range). */
TM_PRIV const char *tm_priv_blob_tensor_name(const tm_priv_blob *b,
					     int32_t i);
TM_PRIV const char *tm_priv_blob_layer_name(const tm_priv_blob *b,
					    int32_t i);

/* Compares two models that pass tmrt_model_check: every table, bundle
 * field and array element. TM_OK when equal, else TM_ERR_INVALID with
 * the first difference ("layer 1 (fully_connected): weights[3]: 127 vs
 * 126"); a model that fails the check is reported likewise. */
TM_PRIV tm_status tm_priv_blob_model_diff(const tmrt_model *a,
					  const tmrt_model *b, tm_error *err);

/* CRC-32/IEEE as in the blob header (the same function as libtmrt's
 * tmrt_crc32, for tools that patch blobs). */
TM_PRIV uint32_t tm_priv_blob_crc32(uint32_t crc, const void *data,
				    size_t size);

#endif
