/* florence2overlay: draws GstFlorence2Meta results on video frames. */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_FLORENCE2_OVERLAY (gst_florence2_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstFlorence2Overlay, gst_florence2_overlay,
    GST, FLORENCE2_OVERLAY, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE (florence2overlay);

G_END_DECLS
