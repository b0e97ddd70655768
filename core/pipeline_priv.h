/* tmpipe — pipeline files: YAML parsed, plugins resolved, parameters
 * validated, all before anything runs. See tmpipe-pipeline(5). */
#ifndef TMPIPE_PIPELINE_PRIV_H
#define TMPIPE_PIPELINE_PRIV_H

#include <tmpipe/plugin.h>

#include "loader_priv.h"
#include "util_priv.h"

/* One use of a plugin in the pipeline. */
typedef struct tm_stage {
	char *label;			/* "emit c_header", for messages */
	const tm_plugin *plugin;	/* borrowed from the registry */
	tm_params *params;		/* validated */
	unsigned line, col;		/* of the plugin's name */
} tm_stage;

/* calibration.tensors: a tensor name or glob and the observer for it. */
/* calibration.tensors (a name or glob) and calibration.ops (the inputs
 * of every node of an op type) choose another observer. */
typedef struct tm_tensor_rule {
	char *pattern;			/* name or glob; the op's name */
	int by_op;			/* from calibration.ops */
	tm_op op;			/* with by_op */
	const char *file;		/* the pipeline, or "--set" */
	unsigned line, col;		/* of the pattern */
	tm_stage observer;
} tm_tensor_rule;

/* calibration.preprocess for one input:
 *	x = (x * scale - mean[c]) / std[c]
 * in double, c the index along axis 0 of one sample (the channel of a
 * CHW image, the feature of a vector). mean and std hold 1 value (every
 * channel) or one per channel; the count is checked against the model
 * when the data is opened, hence the positions. */
typedef struct tm_preprocess {
	int given;			/* 0: samples are used as read */
	double scale;			/* finite, not 0; default 1 */
	double *mean, *std;		/* NULL when not given: 0 and 1 */
	size_t n_mean, n_std;
	const char *file;		/* the pipeline, or "--set" */
	unsigned line, col;		/* of the preprocess map */
	unsigned mean_line, mean_col, std_line, std_col;
} tm_preprocess;

/* calibration.data for one model input: a .npy file of N samples, or a
 * folder of one .npy file per sample (see dataset_priv.h). */
typedef struct tm_calib_source {
	char *input;			/* the model input it feeds; NULL when
					 * data is one file or folder, for
					 * the model's only input */
	char *path;			/* resolved */
	const char *file;		/* the pipeline, or "--set" */
	unsigned line, col;		/* of the path */
	unsigned key_line, key_col;	/* of the input name (map form) */
	tm_preprocess pre;
} tm_calib_source;

/* quantize.layers: weights per channel or per tensor for the layers a
 * name or glob matches. */
typedef struct tm_layer_rule {
	char *pattern;
	const char *file;		/* the pipeline, or "--set" */
	unsigned line, col;
	int per_channel;
} tm_layer_rule;

/* verify.reference (tmpipe-pipeline(5)): the float model as the
 * frontend gave it, or the quantized model emulated in float
 * (fake-quantized activations, dequantized int8 weights and int32
 * biases). */
typedef enum tm_verify_ref {
	TM_VERIFY_REF_FLOAT = 0,
	TM_VERIFY_REF_QUANTIZED
} tm_verify_ref;

typedef struct tm_pipeline {
	char *file;			/* as given */
	char *basedir;			/* relative paths resolve here */
	tm_stage frontend;
	tm_stage *transforms;
	size_t n_transforms;
	int has_calibration;
	char *calib_data;		/* resolved path of the first source
					 * (the only one unless data is a
					 * map) */
	const char *calib_file;		/* the pipeline, or "--set" */
	unsigned calib_line, calib_col;	/* of calibration.data */
	tm_calib_source *calib_sources;	/* in the order written */
	size_t n_calib_sources;
	size_t batch;
	size_t threads;			/* calibration threads, >= 1: 1 from
					 * tm_pipeline_load; the caller sets
					 * it (the CLI: -j, [run] threads).
					 * Results do not depend on it. */
	tm_stage observer;		/* the default */
	tm_tensor_rule *rules;
	size_t n_rules;
	int has_quantize;		/* a quantize section */
	int weights_per_channel;	/* quantize.weights */
	tm_layer_rule *layer_rules;	/* quantize.layers */
	size_t n_layer_rules;
	tm_stage *emitters;
	size_t n_emitters;
	/* verify: held-out data in calibration.data's forms (preprocessed
	 * like the calibration source of the same input), an optional
	 * tolerance on max |int8 - float| at the outputs, optional labels. */
	int has_verify;
	tm_calib_source *verify_sources;
	size_t n_verify_sources;
	const char *verify_file;	/* the pipeline, or "--set" */
	unsigned verify_line, verify_col;	/* of verify.data */
	size_t verify_batch;
	int verify_has_tolerance;
	double verify_tolerance;
	const char *verify_tol_file;
	unsigned verify_tol_line, verify_tol_col;
	/* verify.labels: a .npy of one class per sample (NULL: none), and
	 * verify.max_accuracy_drop in percentage points (needs labels). */
	char *verify_labels;
	const char *verify_labels_file;
	unsigned verify_labels_line, verify_labels_col;
	int verify_has_max_drop;
	double verify_max_drop;
	const char *verify_drop_file;
	unsigned verify_drop_line, verify_drop_col;
	/* verify.reference: what the int8 outputs are compared with. */
	tm_verify_ref verify_reference;
} tm_pipeline;

/* Loads and validates path. overrides are "a.b.c=value" strings from
 * --set (NULL-terminated, may be NULL), applied to the YAML before
 * validation. Every error carries file:line:col. */
TM_API tm_status tm_pipeline_load(const char *path,
					const tm_registry *reg,
					const char *const *overrides,
					tm_pipeline **out, tm_error *err);
TM_API void tm_pipeline_free(tm_pipeline *pl);

/* The stage that observes tensor t of m: the tensors rule naming it
 * exactly, else the first tensors glob that matches (fnmatch, in file
 * order), else the first ops rule whose op reads it, else the default. */
TM_PRIV const tm_stage *tm_priv_observer_for(const tm_pipeline *pl,
					     const tm_model *m, size_t t);

/* 1 when the pipeline's frontend may load models that carry their own
 * quantization (TM_FRONTEND_GIVES_QUANT): quantize, verify and emit then
 * need no calibration section, and a range the model leaves out is an
 * error when the quantize pass meets it. */
TM_PRIV int tm_priv_pipeline_given_quant(const tm_pipeline *pl);

/* Per node of m (a finalized model), 1 when its weights are quantized
 * per channel: the exact layers rule, else the first matching glob, else
 * quantize.weights. A layers rule that matches no layer with weights is
 * an error at its line. */
TM_PRIV tm_status tm_priv_pipeline_per_channel(const tm_pipeline *pl,
					       const tm_model *m,
					       unsigned char *out,
					       tm_error *err);

/* The same without a model: tensors rules only (ops rules need one). */
TM_PRIV const tm_stage *tm_priv_observer_by_name(const tm_pipeline *pl,
						 const char *tensor);

/* 1 when a node of op reads tensor t. */
TM_PRIV int tm_priv_op_reads(const tm_model *m, tm_op op, size_t t);

#endif
