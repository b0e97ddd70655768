/* tmpipe — calibration data sources. */
#include "config.h"

#include "dataset_priv.h"

typedef int tm_dataset_placeholder;
