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

/* A JSON lines results file that only ever holds whole lines: each line goes
 * out in one write (short writes are continued), and a line that cannot be
 * written whole (a full disk, a file size limit) is cut off again, so the
 * file ends with its last whole line and the next line starts there. */
typedef struct _GstFlorence2ResultsFile GstFlorence2ResultsFile;

/* Open @path for writing: emptied, or with @append kept (a cut last line
 * left by an earlier writer is removed). NULL with @error set on failure. */
GstFlorence2ResultsFile *gst_florence2_results_file_open (const gchar * path,
    gboolean append, GError ** error);

/* Write @json and a newline as one line. FALSE with @error (G_FILE_ERROR)
 * when the line was not written; the file then holds what it held before. */
gboolean gst_florence2_results_file_write (GstFlorence2ResultsFile * file,
    const gchar * json, GError ** error);

void gst_florence2_results_file_close (GstFlorence2ResultsFile * file);

G_END_DECLS
