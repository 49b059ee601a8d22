/* Turning a Florence-2 result into what travels with a frame: the
 * GstFlorence2Meta, DL Streamer-style region-of-interest metas, and the bus
 * message. */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>

#include "florence2/gstflorence2meta.h"
#include "result.h"

G_BEGIN_DECLS

/* Attach @result to @buffer (writable) as a GstFlorence2Meta whose
 * coordinates are scaled from the result's image size to @width x @height. */
GstFlorence2Meta *gst_florence2_result_attach (GstBuffer * buffer,
    const F2Result * result, const gchar * task, const gchar * prompt,
    gint width, gint height, GstClockTime source_pts,
    GstClockTime inference_time);

/* One GstVideoRegionOfInterestMeta per region of @meta (which is on
 * @buffer), each with a "detection" and a "florence2" parameter structure. */
void gst_florence2_result_attach_rois (GstBuffer * buffer,
    const GstFlorence2Meta * meta);

/* The "florence2-result" element message structure. @json may be NULL. */
GstStructure *gst_florence2_result_structure (const GstFlorence2Meta * meta,
    GstClockTime pts, const gchar * json);

G_END_DECLS
