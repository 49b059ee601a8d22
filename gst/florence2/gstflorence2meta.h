/* GstFlorence2Meta: the result of one Florence-2 inference on a video frame.
 *
 * Coordinates are in the pixels of the buffer the meta is attached to
 * (width x height); the meta is registered with the video tags and scales
 * itself when an element such as videoscale changes the frame size, and is
 * dropped by elements that transform the frame in ways it cannot follow.
 *
 * pkg-config: gstreamer-florence2-1.0
 */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

#define GST_FLORENCE2_META_API_TYPE (gst_florence2_meta_api_get_type ())
#define GST_FLORENCE2_META_INFO (gst_florence2_meta_get_info ())

typedef struct {
  guint n_points;
  gfloat *points;               /* x0, y0, x1, y1, ... (n_points pairs) */
} GstFlorence2Polygon;

/* One labelled region: a box (always set: for quads and polygons it is the
 * box around them), plus polygons (segmentation) or a quad (OCR). */
typedef struct {
  gchar *label;                 /* UTF-8, "" when the task gives none */
  guint label_id;               /* stable per label within the process */
  gfloat x, y, w, h;            /* box, in buffer pixels */
  guint n_polygons;
  GstFlorence2Polygon *polygons;
  gboolean has_quad;
  gfloat quad[8];               /* x1, y1, ..., x4, y4 */
} GstFlorence2Region;

typedef struct {
  GstMeta meta;

  gchar *task;                  /* task token, e.g. "<OD>" */
  gchar *prompt;                /* the task's text input, or NULL */
  GstClockTime source_pts;      /* PTS of the frame the result was computed on */
  GstClockTime inference_time;  /* time the inference took */
  gchar *text;                  /* caption / OCR text / decoded answer, or NULL */
  gint width, height;           /* frame size the coordinates refer to */
  guint n_regions;
  GstFlorence2Region *regions;
} GstFlorence2Meta;

GType gst_florence2_meta_api_get_type (void);
const GstMetaInfo *gst_florence2_meta_get_info (void);

/* Attach an empty meta; fill it with the functions below. */
GstFlorence2Meta *gst_buffer_add_florence2_meta (GstBuffer *buffer,
    const gchar *task, const gchar *prompt, const gchar *text,
    gint width, gint height, GstClockTime source_pts,
    GstClockTime inference_time);

#define gst_buffer_get_florence2_meta(b) \
  ((GstFlorence2Meta *) gst_buffer_get_meta ((b), GST_FLORENCE2_META_API_TYPE))

/* Append a region; returns its index. */
guint gst_florence2_meta_add_region (GstFlorence2Meta *meta,
    const gchar *label, gfloat x, gfloat y, gfloat w, gfloat h);
void gst_florence2_meta_region_add_polygon (GstFlorence2Meta *meta,
    guint region, guint n_points, const gfloat *points);
void gst_florence2_meta_region_set_quad (GstFlorence2Meta *meta,
    guint region, const gfloat quad[8]);

/* A process-wide id for @label: the same label always gets the same id. */
guint gst_florence2_label_id (const gchar *label);

/* The meta as JSON, in the layout of DL Streamer's gvametaconvert
 * (resolution, timestamp, objects[] with x/y/w/h and detection
 * {bounding_box, label, label_id}) plus a "florence2" object (task, prompt,
 * text, polygons, source timestamp, latency). @pts is the buffer's PTS.
 * g_free() the result. */
gchar *gst_florence2_meta_to_json (const GstFlorence2Meta *meta, GstClockTime pts);

G_END_DECLS
