/* Enum types of the florence2 element's properties. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* How results meet frames. */
typedef enum {
  GST_FLORENCE2_LATENCY_ALIGNED,     /* a frame waits for the results computed on it */
  GST_FLORENCE2_LATENCY_LOW,         /* frames leave at once; results ride on later frames */
} GstFlorence2LatencyMode;

/* Values are the model library's F2Task and F2Precision. */
#define GST_TYPE_FLORENCE2_TASK (gst_florence2_task_get_type ())
GType gst_florence2_task_get_type (void);

#define GST_TYPE_FLORENCE2_PRECISION (gst_florence2_precision_get_type ())
GType gst_florence2_precision_get_type (void);

#define GST_TYPE_FLORENCE2_LATENCY_MODE (gst_florence2_latency_mode_get_type ())
GType gst_florence2_latency_mode_get_type (void);

G_END_DECLS
