/* tmpipe — calibration data sources (placeholder until the dataset
 * module lands). */
#ifndef TMPIPE_DATASET_PRIV_H
#define TMPIPE_DATASET_PRIV_H
#endif
