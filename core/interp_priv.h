/* tmpipe — the float reference interpreter (ONNX semantics).
 *
 * Runs a finalized model on a batch of samples and keeps every activation
 * tensor of the batch, so calibration can observe them all. Buffers are
 * allocated once for the largest batch and reused. */
#ifndef TMPIPE_INTERP_PRIV_H
#define TMPIPE_INTERP_PRIV_H

#include <tmpipe/model.h>

#include "util_priv.h"

typedef struct tm_interp tm_interp;

TM_PRIV tm_interp *tm_priv_interp_new(const tm_model *m, size_t max_batch,
				      tm_error *err);
TM_PRIV void tm_priv_interp_free(tm_interp *it);

/* Input i's buffer: max_batch × numel floats to fill before run. */
TM_PRIV float *tm_priv_interp_input(tm_interp *it, size_t i);

/* Runs n <= max_batch samples. */
TM_PRIV tm_status tm_priv_interp_run(tm_interp *it, size_t n, tm_error *err);

/* Bytes of buffers held (activations of max_batch samples + scratch):
 * fixed at creation, whatever the number of samples run through it. */
TM_PRIV size_t tm_priv_interp_bytes(const tm_interp *it);

/* Tensor t's values for the last run: n × numel floats, or NULL for
 * constants. */
TM_PRIV const float *tm_priv_interp_tensor(const tm_interp *it, size_t t);

/* Fake quantization of one activation tensor (tm_priv_interp_fake_quant):
 * every value x becomes scale (q - zero_point), q = clamp(lround(x /
 * scale) + zero_point, -128, 127); off leaves the tensor as it is. */
typedef struct tm_fq {
	int on;
	double scale;
	int32_t zero_point;
} tm_fq;

/* Makes it run the int8 model emulated in float: before a run, the model
 * inputs whose fq[t].on are fake-quantized in place; after each node,
 * its output likewise; a constant t with consts[t] != NULL reads those
 * numel floats instead of its data (the dequantized int8 weights). fq
 * and consts have m->n_tensors entries, are borrowed and must outlive
 * the runs; NULL for either turns that part off. */
TM_PRIV void tm_priv_interp_fake_quant(tm_interp *it, const tm_fq *fq,
				       const float *const *consts);

#endif
