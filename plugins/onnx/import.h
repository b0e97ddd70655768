/* onnx — the ONNX importer, shared by the onnx frontend plugin and the
 * conformance driver (tests/onnx_conformance.c).
 *
 * The protobuf bindings are generated at build time by protoc-c from the
 * system's onnx.proto (see Makefile.am); nothing here decodes protobuf by
 * hand. */
#ifndef TMPIPE_ONNX_IMPORT_H
#define TMPIPE_ONNX_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include <tmpipe/model.h>

#include "onnx.pb-c.h"

/* ONNX TensorProto data types used here (onnx.proto, TensorProto.DataType). */
#define ONNX_FLOAT	1
#define ONNX_UINT8	2
#define ONNX_INT8	3
#define ONNX_INT32	6
#define ONNX_INT64	7
#define ONNX_DOUBLE	11

/* A decoded tensor: floats for FLOAT and DOUBLE, integers (exactly) for
 * the integer types and BOOL. */
typedef struct onnx_tensor {
	int dtype;			/* ONNX data type */
	int ndim;
	int64_t dims[TM_MAX_DIMS];
	size_t n;			/* elements */
	float *f;			/* float types, else NULL */
	int64_t *i;			/* integer types, else NULL */
} onnx_tensor;

void onnx_tensor_fini(onnx_tensor *t);

/* Decodes tp (raw_data little-endian or the typed fields; external data
 * read from files relative to dir, refused when it resolves outside dir).
 * what names the tensor in errors ("model.onnx: initializer 'w'"). */
tm_status onnx_tensor_decode(const Onnx__TensorProto *tp, const char *dir,
			     const char *what, onnx_tensor *out,
			     tm_error *err);

/* Maps path and unpacks it as a ModelProto (or, with tensor set, as a
 * TensorProto: the test data's input_*.pb). Free with
 * protobuf_c_message_free_unpacked. A file that does not parse is an error
 * naming it, never a crash. */
tm_status onnx_read_model(const char *path, Onnx__ModelProto **out,
			  tm_error *err);
tm_status onnx_read_tensor(const char *path, Onnx__TensorProto **out,
			   tm_error *err);

/* The name of an ONNX data type ("float", "int64", ...). */
const char *onnx_dtype_name(int dtype);

/* 1 when the importer knows op_type in domain ("" or "ai.onnx"). */
int onnx_op_supported(const char *op_type, const char *domain);

/* How to import. */
typedef struct onnx_opts {
	/* Graph inputs to take as constants, with their values (the
	 * conformance driver binds weights the test cases pass as inputs). */
	size_t n_bind;
	const char *const *bind_names;
	const Onnx__TensorProto *const *bind_values;
	/* Per-sample shapes that replace the graph's (symbolic dims). */
	size_t n_shapes;
	const char *const *shape_names;
	const int *shape_ndims;
	const int64_t *const *shapes;
	/* 1: scales in a quantized model are kept (the default of the
	 * plugin); 0: dropped, so calibration derives every range. */
	int keep_scales;
} onnx_opts;

/* What the import found, for callers that map names. */
typedef struct onnx_result {
	int64_t opset;
	int64_t batch;			/* leading dim of the inputs, or
					 * -1: symbolic */
	size_t n_outputs;
	char **output_onnx;		/* graph output names */
	char **output_tm;		/* the tm tensors that hold them */
	size_t n_given;			/* tensors whose scales came
					 * from the model */
} onnx_result;

void onnx_result_fini(onnx_result *r);

/* Builds m (empty, made by the caller) from the model at path. Errors name
 * the file and the node; ops tmpipe cannot express are TM_ERR_UNSUPPORTED
 * (all unsupported op types of a graph in one message). r may be NULL. */
tm_status onnx_import(const char *path, const onnx_opts *o, tm_model *m,
		      onnx_result *r, tm_error *err);

#endif
