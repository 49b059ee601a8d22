/* Results as metadata: see gstflorence2result.h. */
#include "gstflorence2result.h"

#include <math.h>

GstFlorence2Meta *
gst_florence2_result_attach (GstBuffer * buffer, const F2Result * result,
    const gchar * task, const gchar * prompt, gint width, gint height,
    GstClockTime source_pts, GstClockTime inference_time)
{
  GstFlorence2Meta *meta;
  gdouble sx = 1.0, sy = 1.0;

  meta = gst_buffer_add_florence2_meta (buffer, task, prompt, result->text,
      width, height, source_pts, inference_time);
  if (meta == NULL)
    return NULL;
  if (result->image_width > 0 && result->image_height > 0) {
    sx = (gdouble) width / result->image_width;
    sy = (gdouble) height / result->image_height;
  }

  for (guint i = 0; i < result->n_regions; i++) {
    const F2Region *r = &result->regions[i];
    /* the model may give the corners in either order: the meta holds the
     * top-left corner and a positive size */
    gfloat x0 = MIN (r->bbox[0], r->bbox[2]), x1 = MAX (r->bbox[0], r->bbox[2]);
    gfloat y0 = MIN (r->bbox[1], r->bbox[3]), y1 = MAX (r->bbox[1], r->bbox[3]);
    guint k = gst_florence2_meta_add_region (meta, r->label, x0 * sx, y0 * sy,
        (x1 - x0) * sx, (y1 - y0) * sy);

    if (r->shape == F2_REGION_QUAD) {
      gfloat quad[8];

      for (guint j = 0; j < 4; j++) {
        quad[2 * j] = r->quad[2 * j] * sx;
        quad[2 * j + 1] = r->quad[2 * j + 1] * sy;
      }
      gst_florence2_meta_region_set_quad (meta, k, quad);
    }
    for (guint p = 0; p < r->n_polygons; p++) {
      const F2Polygon *poly = &r->polygons[p];
      guint n_points = poly->n_coords / 2;
      gfloat *points = g_new (gfloat, 2 * (gsize) n_points + 1);

      for (guint j = 0; j < n_points; j++) {
        points[2 * j] = poly->coords[2 * j] * sx;
        points[2 * j + 1] = poly->coords[2 * j + 1] * sy;
      }
      gst_florence2_meta_region_add_polygon (meta, k, n_points, points);
      g_free (points);
    }
  }
  return meta;
}

static void
value_array_append_double (GValue * array, gdouble d)
{
  GValue v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_DOUBLE);
  g_value_set_double (&v, d);
  gst_value_array_append_and_take_value (array, &v);
}

static void
set_double_array (GstStructure * s, const gchar * name, const gfloat * coords,
    guint n)
{
  GValue array = G_VALUE_INIT;

  gst_value_array_init (&array, n);
  for (guint i = 0; i < n; i++)
    value_array_append_double (&array, coords[i]);
  gst_structure_take_value (s, name, &array);
}

/* Round a box out to whole pixels inside the frame. */
static void
pixel_box (const GstFlorence2Region * r, gint width, gint height, guint * x,
    guint * y, guint * w, guint * h)
{
  gdouble x0 = CLAMP (floor (r->x), 0, MAX (width, 0));
  gdouble y0 = CLAMP (floor (r->y), 0, MAX (height, 0));
  gdouble x1 = CLAMP (ceil (r->x + r->w), x0, MAX (width, 0));
  gdouble y1 = CLAMP (ceil (r->y + r->h), y0, MAX (height, 0));

  *x = (guint) x0;
  *y = (guint) y0;
  *w = (guint) (x1 - x0);
  *h = (guint) (y1 - y0);
}

void
gst_florence2_result_attach_rois (GstBuffer * buffer,
    const GstFlorence2Meta * meta)
{
  gdouble fw = meta->width > 0 ? meta->width : 1;
  gdouble fh = meta->height > 0 ? meta->height : 1;

  for (guint i = 0; i < meta->n_regions; i++) {
    const GstFlorence2Region *r = &meta->regions[i];
    GstVideoRegionOfInterestMeta *roi;
    GstStructure *detection, *f2;
    guint x, y, w, h;

    pixel_box (r, meta->width, meta->height, &x, &y, &w, &h);
    /* DL Streamer names the ROI type after the label */
    roi = gst_buffer_add_video_region_of_interest_meta (buffer,
        r->label[0] ? r->label : "florence2", x, y, w, h);
    if (roi == NULL)
      continue;

    detection = gst_structure_new ("detection",
        "x_min", G_TYPE_DOUBLE, CLAMP (r->x / fw, 0.0, 1.0),
        "y_min", G_TYPE_DOUBLE, CLAMP (r->y / fh, 0.0, 1.0),
        "x_max", G_TYPE_DOUBLE, CLAMP ((r->x + r->w) / fw, 0.0, 1.0),
        "y_max", G_TYPE_DOUBLE, CLAMP ((r->y + r->h) / fh, 0.0, 1.0),
        "label", G_TYPE_STRING, r->label,
        "label_id", G_TYPE_UINT, r->label_id, NULL);
    gst_video_region_of_interest_meta_add_param (roi, detection);

    f2 = gst_structure_new ("florence2",
        "task", G_TYPE_STRING, meta->task,
        "phrase", G_TYPE_STRING, r->label,
        "source-pts", G_TYPE_UINT64, (guint64) meta->source_pts, NULL);
    if (r->n_polygons > 0)
      set_double_array (f2, "polygon", r->polygons[0].points,
          2 * r->polygons[0].n_points);
    if (r->has_quad)
      set_double_array (f2, "quad", r->quad, 8);
    gst_video_region_of_interest_meta_add_param (roi, f2);
  }
}

GstStructure *
gst_florence2_result_structure (const GstFlorence2Meta * meta,
    GstClockTime pts, const gchar * json)
{
  return gst_structure_new ("florence2-result",
      "task", G_TYPE_STRING, meta->task,
      "prompt", G_TYPE_STRING, meta->prompt,
      "text", G_TYPE_STRING, meta->text,
      "timestamp", G_TYPE_UINT64, (guint64) pts,
      "source-timestamp", G_TYPE_UINT64, (guint64) meta->source_pts,
      "inference-time", G_TYPE_UINT64, (guint64) meta->inference_time,
      "json", G_TYPE_STRING, json, NULL);
}
