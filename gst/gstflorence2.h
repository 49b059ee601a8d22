/* florence2: runs Florence-2 on video frames and attaches the results as
 * GstFlorence2Meta (see gst/florence2/gstflorence2meta.h). */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_FLORENCE2 (gst_florence2_get_type ())
G_DECLARE_FINAL_TYPE (GstFlorence2, gst_florence2, GST, FLORENCE2, GstElement)

GST_ELEMENT_REGISTER_DECLARE (florence2);

G_END_DECLS
