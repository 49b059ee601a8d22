/* GstFlorence2Meta: registration, regions, the videoscale transform, and the
 * JSON serialiser (DL Streamer gvametaconvert layout plus Florence-2 extras). */
#include "florence2/gstflorence2meta.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* ------------------------------------------------------------- label ids */

G_LOCK_DEFINE_STATIC (label_ids);
static GHashTable *label_ids = NULL;

guint
gst_florence2_label_id (const gchar *label)
{
  gpointer id;

  if (label == NULL)
    label = "";
  G_LOCK (label_ids);
  if (label_ids == NULL)
    label_ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!g_hash_table_lookup_extended (label_ids, label, NULL, &id)) {
    id = GUINT_TO_POINTER (g_hash_table_size (label_ids));
    g_hash_table_insert (label_ids, g_strdup (label), id);
  }
  G_UNLOCK (label_ids);
  return GPOINTER_TO_UINT (id);
}

/* ------------------------------------------------------------ the meta */

static void
region_clear (GstFlorence2Region * region)
{
  g_free (region->label);
  for (guint i = 0; i < region->n_polygons; i++)
    g_free (region->polygons[i].points);
  g_free (region->polygons);
}

static gboolean
florence2_meta_init (GstMeta * meta, gpointer params, GstBuffer * buffer)
{
  GstFlorence2Meta *m = (GstFlorence2Meta *) meta;

  m->task = NULL;
  m->prompt = NULL;
  m->source_pts = GST_CLOCK_TIME_NONE;
  m->inference_time = GST_CLOCK_TIME_NONE;
  m->text = NULL;
  m->width = m->height = 0;
  m->n_regions = 0;
  m->regions = NULL;
  return TRUE;
}

static void
florence2_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstFlorence2Meta *m = (GstFlorence2Meta *) meta;

  for (guint i = 0; i < m->n_regions; i++)
    region_clear (&m->regions[i]);
  g_free (m->regions);
  g_free (m->task);
  g_free (m->prompt);
  g_free (m->text);
}

/* Copy @src into a new meta on @dest, multiplying every coordinate by
 * @sx, @sy; the frame size becomes @width x @height. */
static gboolean
florence2_meta_copy_scaled (GstBuffer * dest, const GstFlorence2Meta * src,
    gdouble sx, gdouble sy, gint width, gint height)
{
  GstFlorence2Meta *d = gst_buffer_add_florence2_meta (dest, src->task,
      src->prompt, src->text, width, height, src->source_pts,
      src->inference_time);

  if (d == NULL)
    return FALSE;
  for (guint i = 0; i < src->n_regions; i++) {
    const GstFlorence2Region *r = &src->regions[i];
    guint k = gst_florence2_meta_add_region (d, r->label, r->x * sx,
        r->y * sy, r->w * sx, r->h * sy);

    for (guint p = 0; p < r->n_polygons; p++) {
      const GstFlorence2Polygon *poly = &r->polygons[p];
      gfloat *pts = g_new (gfloat, 2 * (gsize) poly->n_points + 1);

      for (guint j = 0; j < poly->n_points; j++) {
        pts[2 * j] = poly->points[2 * j] * sx;
        pts[2 * j + 1] = poly->points[2 * j + 1] * sy;
      }
      gst_florence2_meta_region_add_polygon (d, k, poly->n_points, pts);
      g_free (pts);
    }
    if (r->has_quad) {
      gfloat quad[8];

      for (guint j = 0; j < 4; j++) {
        quad[2 * j] = r->quad[2 * j] * sx;
        quad[2 * j + 1] = r->quad[2 * j + 1] * sy;
      }
      gst_florence2_meta_region_set_quad (d, k, quad);
    }
    d->regions[k].label_id = r->label_id;
  }
  return TRUE;
}

static gboolean
florence2_meta_transform (GstBuffer * dest, GstMeta * meta, GstBuffer * buffer,
    GQuark type, gpointer data)
{
  const GstFlorence2Meta *src = (const GstFlorence2Meta *) meta;

  if (GST_META_TRANSFORM_IS_COPY (type))
    return florence2_meta_copy_scaled (dest, src, 1.0, 1.0, src->width,
        src->height);

  if (GST_VIDEO_META_TRANSFORM_IS_SCALE (type)) {
    const GstVideoMetaTransform *t = data;
    gint in_w = GST_VIDEO_INFO_WIDTH (t->in_info);
    gint in_h = GST_VIDEO_INFO_HEIGHT (t->in_info);
    gint out_w = GST_VIDEO_INFO_WIDTH (t->out_info);
    gint out_h = GST_VIDEO_INFO_HEIGHT (t->out_info);

    if (in_w <= 0 || in_h <= 0)
      return FALSE;
    return florence2_meta_copy_scaled (dest, src, (gdouble) out_w / in_w,
        (gdouble) out_h / in_h, out_w, out_h);
  }

  /* crops, flips, rotations: the coordinates would be wrong, drop the meta */
  return FALSE;
}

GType
gst_florence2_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = {
    GST_META_TAG_VIDEO_STR,
    GST_META_TAG_VIDEO_ORIENTATION_STR,
    GST_META_TAG_VIDEO_SIZE_STR,
    NULL
  };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("GstFlorence2MetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

const GstMetaInfo *
gst_florence2_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *i = gst_meta_register (GST_FLORENCE2_META_API_TYPE,
        "GstFlorence2Meta", sizeof (GstFlorence2Meta), florence2_meta_init,
        florence2_meta_free, florence2_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) i);
  }
  return info;
}

GstFlorence2Meta *
gst_buffer_add_florence2_meta (GstBuffer * buffer, const gchar * task,
    const gchar * prompt, const gchar * text, gint width, gint height,
    GstClockTime source_pts, GstClockTime inference_time)
{
  GstFlorence2Meta *m;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  m = (GstFlorence2Meta *) gst_buffer_add_meta (buffer,
      GST_FLORENCE2_META_INFO, NULL);
  if (m == NULL)
    return NULL;
  m->task = g_strdup (task);
  m->prompt = g_strdup (prompt);
  m->text = g_strdup (text);
  m->width = width;
  m->height = height;
  m->source_pts = source_pts;
  m->inference_time = inference_time;
  return m;
}

guint
gst_florence2_meta_add_region (GstFlorence2Meta * meta, const gchar * label,
    gfloat x, gfloat y, gfloat w, gfloat h)
{
  GstFlorence2Region *r;

  g_return_val_if_fail (meta != NULL, 0);

  meta->regions = g_renew (GstFlorence2Region, meta->regions,
      meta->n_regions + 1);
  r = &meta->regions[meta->n_regions];
  memset (r, 0, sizeof (*r));
  r->label = g_strdup (label ? label : "");
  r->label_id = gst_florence2_label_id (r->label);
  r->x = x;
  r->y = y;
  r->w = w;
  r->h = h;
  return meta->n_regions++;
}

void
gst_florence2_meta_region_add_polygon (GstFlorence2Meta * meta, guint region,
    guint n_points, const gfloat * points)
{
  GstFlorence2Region *r;
  GstFlorence2Polygon *p;

  g_return_if_fail (meta != NULL && region < meta->n_regions);
  g_return_if_fail (n_points == 0 || points != NULL);

  r = &meta->regions[region];
  r->polygons = g_renew (GstFlorence2Polygon, r->polygons, r->n_polygons + 1);
  p = &r->polygons[r->n_polygons++];
  p->n_points = n_points;
  p->points = n_points ? g_memdup2 (points, 2 * sizeof (gfloat) * n_points)
      : NULL;
}

void
gst_florence2_meta_region_set_quad (GstFlorence2Meta * meta, guint region,
    const gfloat quad[8])
{
  g_return_if_fail (meta != NULL && region < meta->n_regions);
  g_return_if_fail (quad != NULL);

  memcpy (meta->regions[region].quad, quad, 8 * sizeof (gfloat));
  meta->regions[region].has_quad = TRUE;
}

/* ------------------------------------------------------------------ JSON */

static void
add_clock_time (JsonBuilder * b, const gchar * name, GstClockTime t)
{
  json_builder_set_member_name (b, name);
  if (GST_CLOCK_TIME_IS_VALID (t))
    json_builder_add_int_value (b, (gint64) t);
  else
    json_builder_add_null_value (b);
}

static void
add_string (JsonBuilder * b, const gchar * name, const gchar * value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_points (JsonBuilder * b, const gfloat * coords, guint n)
{
  json_builder_begin_array (b);
  for (guint i = 0; i < n; i++)
    json_builder_add_double_value (b, coords[i]);
  json_builder_end_array (b);
}

static gdouble
clamp01 (gdouble v)
{
  return CLAMP (v, 0.0, 1.0);
}

static void
add_object (JsonBuilder * b, const GstFlorence2Meta * meta, guint index)
{
  const GstFlorence2Region *r = &meta->regions[index];
  gdouble w = meta->width > 0 ? meta->width : 1;
  gdouble h = meta->height > 0 ? meta->height : 1;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "x");
  json_builder_add_int_value (b, (gint64) r->x);
  json_builder_set_member_name (b, "y");
  json_builder_add_int_value (b, (gint64) r->y);
  json_builder_set_member_name (b, "w");
  json_builder_add_int_value (b, (gint64) r->w);
  json_builder_set_member_name (b, "h");
  json_builder_add_int_value (b, (gint64) r->h);
  json_builder_set_member_name (b, "region_id");
  json_builder_add_int_value (b, index);

  json_builder_set_member_name (b, "detection");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "bounding_box");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "x_min");
  json_builder_add_double_value (b, clamp01 (r->x / w));
  json_builder_set_member_name (b, "y_min");
  json_builder_add_double_value (b, clamp01 (r->y / h));
  json_builder_set_member_name (b, "x_max");
  json_builder_add_double_value (b, clamp01 ((r->x + r->w) / w));
  json_builder_set_member_name (b, "y_max");
  json_builder_add_double_value (b, clamp01 ((r->y + r->h) / h));
  json_builder_end_object (b);
  json_builder_set_member_name (b, "label");
  json_builder_add_string_value (b, r->label ? r->label : "");
  json_builder_set_member_name (b, "label_id");
  json_builder_add_int_value (b, r->label_id);
  json_builder_end_object (b);

  if (r->n_polygons > 0) {
    json_builder_set_member_name (b, "polygons");
    json_builder_begin_array (b);
    for (guint p = 0; p < r->n_polygons; p++)
      add_points (b, r->polygons[p].points, 2 * r->polygons[p].n_points);
    json_builder_end_array (b);
  }
  if (r->has_quad) {
    json_builder_set_member_name (b, "quad");
    add_points (b, r->quad, 8);
  }
  json_builder_end_object (b);
}

gchar *
gst_florence2_meta_to_json (const GstFlorence2Meta * meta, GstClockTime pts)
{
  JsonBuilder *b;
  JsonGenerator *gen;
  JsonNode *root;
  gchar *json;

  g_return_val_if_fail (meta != NULL, NULL);

  b = json_builder_new ();
  json_builder_begin_object (b);

  json_builder_set_member_name (b, "resolution");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, meta->width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, meta->height);
  json_builder_end_object (b);

  add_clock_time (b, "timestamp", pts);

  json_builder_set_member_name (b, "objects");
  json_builder_begin_array (b);
  for (guint i = 0; i < meta->n_regions; i++)
    add_object (b, meta, i);
  json_builder_end_array (b);

  json_builder_set_member_name (b, "florence2");
  json_builder_begin_object (b);
  add_string (b, "task", meta->task);
  add_string (b, "prompt", meta->prompt);
  add_string (b, "text", meta->text);
  add_clock_time (b, "source_timestamp", meta->source_pts);
  /* how far behind the frame the result is (low-latency mode) */
  add_clock_time (b, "latency_ns", GST_CLOCK_TIME_IS_VALID (pts) &&
      GST_CLOCK_TIME_IS_VALID (meta->source_pts) && pts >= meta->source_pts ?
      pts - meta->source_pts : GST_CLOCK_TIME_NONE);
  json_builder_set_member_name (b, "inference_time_ms");
  if (GST_CLOCK_TIME_IS_VALID (meta->inference_time))
    json_builder_add_double_value (b, meta->inference_time / 1e6);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);

  json_builder_end_object (b);

  root = json_builder_get_root (b);
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json = json_generator_to_data (gen, NULL);
  g_object_unref (gen);
  json_node_unref (root);
  g_object_unref (b);
  return json;
}
