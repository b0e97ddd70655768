/* tmpipe — calibration data: the samples of every model input, read a
 * batch at a time, in bounded memory.
 *
 * Sources (calibration.data, see tmpipe-pipeline(5)), one per model input:
 *   - a .npy file of N samples: its first dimension counts them and each
 *     row holds as many values as one sample of the input (N x 784 for
 *     an input [1, 28, 28] is fine);
 *   - a folder of .npy files, one sample each, in the byte order of their
 *     names (strcmp: zero-pad numbers, 0009.npy before 0010.npy); each
 *     of the input's shape or 1 x that shape. Names that do not end in
 *     ".npy", or start with '.', are skipped.
 * Every source must hold the same number of samples N >= 1.
 *
 * Opening checks all that can be checked before the first batch, in the
 * order the pipeline names things: input names, inputs without data,
 * preprocessing against the channel count, then each source in the order
 * written (every file of a folder: its header and size), then the sample
 * counts. So a long run does not fail at its last batch because of a
 * bad file.
 *
 * Reading is by batch index: batch k holds samples [k B, min(N, (k+1) B)),
 * B the batch size. The dataset is read-only once open; each thread
 * reads through its own tm_dataset_reader (its own file handles), so
 * threads read any batches in any order at the same time.
 *
 * Memory: a reader holds a fixed amount (file handles and a path buffer),
 * whatever N; samples go straight into the caller's buffers. The one
 * thing that grows with N is a folder's list of file names (its index:
 * the names plus a pointer each), which tm_priv_dataset_bytes reports.
 *
 * Preprocessing (tm_preprocess) is applied as the samples are read.
 */
#ifndef TMPIPE_DATASET_PRIV_H
#define TMPIPE_DATASET_PRIV_H

#include <tmpipe/model.h>

#include "pipeline_priv.h"

typedef struct tm_dataset tm_dataset;
typedef struct tm_dataset_reader tm_dataset_reader;

/* Opens pl's calibration sources for the inputs of m (finalized), to be
 * read batch samples at a time. Errors about the pipeline point at its
 * line (pl->calib_*, the sources' positions); errors about a file name
 * the file. */
TM_PRIV tm_status tm_priv_dataset_open(const tm_model *m,
				       const tm_pipeline *pl, size_t batch,
				       tm_dataset **out, tm_error *err);
TM_PRIV void tm_priv_dataset_free(tm_dataset *ds);	/* NULL-safe */

TM_PRIV size_t tm_priv_dataset_samples(const tm_dataset *ds);
/* ceil(samples / batch): the last batch may be short. */
TM_PRIV size_t tm_priv_dataset_batches(const tm_dataset *ds);
/* Bytes the dataset holds: the index of its folder sources. */
TM_PRIV size_t tm_priv_dataset_bytes(const tm_dataset *ds);

/* A reader for one thread. The dataset must outlive it. */
TM_PRIV tm_dataset_reader *tm_priv_dataset_reader_new(const tm_dataset *ds,
						      tm_error *err);
TM_PRIV void tm_priv_dataset_reader_free(tm_dataset_reader *r); /* NULL-safe */
/* Bytes the reader holds (fixed: it does not depend on the samples). */
TM_PRIV size_t tm_priv_dataset_reader_bytes(const tm_dataset_reader *r);

/* Reads batch k, preprocessed: dst[i] receives the samples of model input
 * i (m->inputs[i]), room for batch x numel floats each; *n is how many
 * samples the batch holds. */
TM_PRIV tm_status tm_priv_dataset_read(tm_dataset_reader *r, size_t k,
				       float *const *dst, size_t *n,
				       tm_error *err);

#endif
