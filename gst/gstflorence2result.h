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

/* The JSON object of one result, as results-location and florence2publish
 * write it: gst_florence2_meta_to_json() of @meta on a buffer of PTS @pts,
 * led by a "timestamp_utc" member (ISO 8601, microseconds, the wall clock
 * @utc_us in microseconds since the epoch) when @utc_us >= 0. g_free(). */
gchar *gst_florence2_result_json (const GstFlorence2Meta * meta,
    GstClockTime pts, gint64 utc_us);

/* How a results file lays out its records. */
typedef enum {
  GST_FLORENCE2_RESULTS_JSON_LINES,     /* one JSON object a line */
  GST_FLORENCE2_RESULTS_JSON_ARRAY,     /* one JSON array, an object a line */
} GstFlorence2ResultsFormat;

/* A results file that only ever holds whole records: each record goes out in
 * one write (short writes are continued), and a record that cannot be
 * written whole (a full disk, a file size limit) is cut off again, so the
 * file ends with its last whole record and the next one starts there.
 * JSON lines: each record is a line. JSON array: "[", then each record on a
 * line of its own (",\n" between records), and "]" once finished. */
typedef struct _GstFlorence2ResultsFile GstFlorence2ResultsFile;

/* Open @path for writing: emptied, or with @append kept (a cut last line
 * left by an earlier writer is removed; JSON lines only: an array file is
 * always emptied). NULL with @error set on failure. */
GstFlorence2ResultsFile *gst_florence2_results_file_open (const gchar * path,
    GstFlorence2ResultsFormat format, gboolean append, GError ** error);

/* Write @json as one record. FALSE with @error (G_FILE_ERROR) when the
 * record was not written; the file then holds what it held before. */
gboolean gst_florence2_results_file_write (GstFlorence2ResultsFile * file,
    const gchar * json, GError ** error);

/* Finish the file: a JSON array gets its closing "]" (JSON lines have
 * nothing to add). FALSE with @error when that could not be written. */
gboolean gst_florence2_results_file_finish (GstFlorence2ResultsFile * file,
    GError ** error);

void gst_florence2_results_file_close (GstFlorence2ResultsFile * file);

G_END_DECLS
