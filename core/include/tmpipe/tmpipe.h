/* tmpipe — umbrella header for plugins and embedders. */
#ifndef TMPIPE_TMPIPE_H
#define TMPIPE_TMPIPE_H

#include <tmpipe/error.h>
#include <tmpipe/log.h>
#include <tmpipe/model.h>
#include <tmpipe/npy.h>
#include <tmpipe/observer.h>
#include <tmpipe/output.h>
#include <tmpipe/params.h>
#include <tmpipe/plugin.h>
#include <tmpipe/quant.h>
#include <tmpipe/version.h>

#endif
