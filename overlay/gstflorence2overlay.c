/* florence2overlay: draws the GstFlorence2Meta of each frame with cairo and
 * pangocairo, and blends the drawing into the frame or hands it downstream
 * as a GstVideoOverlayComposition. */

/**
 * SECTION:element-florence2overlay
 * @title: florence2overlay
 *
 * Draws the results that the florence2 element attaches to video frames
 * (#GstFlorence2Meta): boxes with their labels, segmentation polygons filled
 * with a translucent colour, OCR quads with their text, and a banner with
 * the text of caption and OCR tasks. Each label gets its own colour, the
 * same on every frame and in every run.
 *
 * Each region is drawn as its most precise shape: its polygons when it has
 * some and #GstFlorence2Overlay:draw-polygons is on, else its OCR quad or
 * its box when #GstFlorence2Overlay:draw-boxes is on.
 *
 * The drawing is made once per new result, as a #GstVideoOverlayComposition.
 * In system memory it is blended into the frame. When downstream says in
 * the ALLOCATION query that it handles #GstVideoOverlayCompositionMeta (a
 * video sink that composes overlays itself, for instance), or when the
 * negotiated caps carry the meta:GstVideoOverlayComposition feature, the
 * composition is attached to the buffer instead and the pixels are left
 * alone.
 *
 * Inference is usually slower than the frame rate, so most frames carry no
 * fresh result: with #GstFlorence2Overlay:keep-last (the default) they get
 * the last drawing again.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! florence2 model=/path/to/Florence-2-base task=od ! florence2overlay ! videoconvert ! autovideosink
 * ]| shows the camera with the detected objects boxed and labelled.
 * |[
 * gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! florence2 model=/path/to/Florence-2-base task=more-detailed-caption ! florence2overlay font-desc="Sans 18" ! videoconvert ! autovideosink
 * ]| plays a file with a running description of the scene in a banner.
 */

#include "gstflorence2overlay.h"

#include <math.h>
#include <string.h>

#include <cairo.h>
#include <pango/pangocairo.h>
#include <gst/florence2/gstflorence2meta.h>

GST_DEBUG_CATEGORY_STATIC (gst_florence2_overlay_debug);
#define GST_CAT_DEFAULT gst_florence2_overlay_debug

#define OVERLAY_FORMATS "{ RGB, RGBx, BGRx, RGBA, BGRA, NV12, I420 }"
#define OVERLAY_META_FEATURES GST_CAPS_FEATURE_MEMORY_SYSTEM_MEMORY "," \
    GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION

#define OVERLAY_CAPS GST_VIDEO_CAPS_MAKE (OVERLAY_FORMATS) "; " \
    GST_VIDEO_CAPS_MAKE_WITH_FEATURES (OVERLAY_META_FEATURES, OVERLAY_FORMATS)

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (OVERLAY_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (OVERLAY_CAPS));

enum
{
  PROP_0,
  PROP_LINE_WIDTH,
  PROP_FONT_DESC,
  PROP_FILL_OPACITY,
  PROP_DRAW_BOXES,
  PROP_DRAW_LABELS,
  PROP_DRAW_POLYGONS,
  PROP_DRAW_TEXT,
  PROP_KEEP_LAST,
};

#define DEFAULT_LINE_WIDTH 2.0
#define DEFAULT_FONT_DESC "Sans Bold 12"
#define DEFAULT_FILL_OPACITY 0.35
#define DEFAULT_DRAW_BOXES TRUE
#define DEFAULT_DRAW_LABELS TRUE
#define DEFAULT_DRAW_POLYGONS TRUE
#define DEFAULT_DRAW_TEXT TRUE
#define DEFAULT_KEEP_LAST TRUE

/* Spacing around label text and inside the banner, in pixels. */
#define LABEL_PADDING 2.0
#define BANNER_MARGIN 6.0

/* What to draw and how; a copy is taken under the object lock per frame. */
typedef struct
{
  gdouble line_width;
  gdouble fill_opacity;
  gchar *font_desc;
  gboolean draw_boxes;
  gboolean draw_labels;
  gboolean draw_polygons;
  gboolean draw_text;
  gboolean keep_last;
} OverlaySettings;

struct _GstFlorence2Overlay
{
  GstVideoFilter parent;

  /* properties: object lock; serial grows on every change */
  OverlaySettings settings;
  guint settings_serial;

  /* set by set_info and on RECONFIGURE: ask downstream again whether it
   * takes the composition meta before the next frame (atomic) */
  gint check_allocation;

  /* streaming thread */
  gboolean attach;              /* attach the composition instead of blending */
  PangoFontMap *font_map;
  PangoContext *pango_context;
  GstBuffer *result_holder;     /* carries a copy of the last result's meta */
  GstVideoOverlayComposition *composition;      /* its drawing; NULL: empty */
  gboolean drawn;               /* composition matches result and settings */
  guint drawn_serial;
  gint drawn_width, drawn_height;
};

#define gst_florence2_overlay_parent_class parent_class
G_DEFINE_TYPE (GstFlorence2Overlay, gst_florence2_overlay,
    GST_TYPE_VIDEO_FILTER);

GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (florence2overlay, "florence2overlay",
    GST_RANK_NONE, GST_TYPE_FLORENCE2_OVERLAY,
    GST_DEBUG_CATEGORY_INIT (gst_florence2_overlay_debug, "florence2overlay",
        0, "Florence-2 results overlay"));

/* ------------------------------------------------------------ colours */

/* A fixed palette of easily told apart colours (r, g, b). */
static const gdouble palette[][3] = {
  {0.90, 0.10, 0.29},
  {0.24, 0.71, 0.29},
  {1.00, 0.88, 0.10},
  {0.00, 0.51, 0.78},
  {0.96, 0.51, 0.19},
  {0.57, 0.12, 0.71},
  {0.27, 0.94, 0.94},
  {0.94, 0.20, 0.90},
  {0.82, 0.96, 0.24},
  {0.98, 0.75, 0.83},
  {0.00, 0.50, 0.50},
  {0.67, 0.43, 0.16},
};

/* FNV-1a of the label: the same label gets the same colour in every run,
 * which a process-local id (GstFlorence2Region.label_id) would not give. */
static const gdouble *
label_colour (const gchar * label)
{
  guint32 hash = 2166136261u;

  for (const guchar * p = (const guchar *) (label ? label : ""); *p; p++) {
    hash ^= *p;
    hash *= 16777619u;
  }
  return palette[hash % G_N_ELEMENTS (palette)];
}

/* ----------------------------------------------------- result changes */

static gboolean
polygons_equal (const GstFlorence2Region * a, const GstFlorence2Region * b)
{
  if (a->n_polygons != b->n_polygons)
    return FALSE;
  for (guint p = 0; p < a->n_polygons; p++) {
    const GstFlorence2Polygon *pa = &a->polygons[p], *pb = &b->polygons[p];

    if (pa->n_points != pb->n_points)
      return FALSE;
    if (pa->n_points > 0 && memcmp (pa->points, pb->points,
            2 * sizeof (gfloat) * pa->n_points) != 0)
      return FALSE;
  }
  return TRUE;
}

/* Whether @a and @b draw the same picture. The prompt, timestamps and
 * inference time are not drawn, so a new inference that finds the same
 * things does not cause a redraw. */
static gboolean
results_draw_the_same (const GstFlorence2Meta * a, const GstFlorence2Meta * b)
{
  if (a->width != b->width || a->height != b->height
      || a->n_regions != b->n_regions || g_strcmp0 (a->text, b->text) != 0)
    return FALSE;
  for (guint i = 0; i < a->n_regions; i++) {
    const GstFlorence2Region *ra = &a->regions[i], *rb = &b->regions[i];

    if (g_strcmp0 (ra->label, rb->label) != 0 || ra->x != rb->x
        || ra->y != rb->y || ra->w != rb->w || ra->h != rb->h
        || ra->has_quad != rb->has_quad || !polygons_equal (ra, rb))
      return FALSE;
    if (ra->has_quad && memcmp (ra->quad, rb->quad, sizeof (ra->quad)) != 0)
      return FALSE;
  }
  return TRUE;
}

static const GstFlorence2Meta *
last_result (GstFlorence2Overlay * self)
{
  return self->result_holder ?
      gst_buffer_get_florence2_meta (self->result_holder) : NULL;
}

/* Keep a copy of @meta (from @buffer) as the last result. */
static void
store_result (GstFlorence2Overlay * self, GstBuffer * buffer,
    GstFlorence2Meta * meta)
{
  const GstMetaInfo *info = meta->meta.info;
  GstMetaTransformCopy copy = { FALSE, 0, (gsize) - 1 };
  GstBuffer *holder = gst_buffer_new ();

  if (!info->transform_func (holder, (GstMeta *) meta, buffer,
          _gst_meta_transform_copy, &copy)) {
    GST_WARNING_OBJECT (self, "could not copy the result; not drawing it");
    gst_clear_buffer (&holder);
  }
  gst_clear_buffer (&self->result_holder);
  self->result_holder = holder;
  self->drawn = FALSE;
}

/* ------------------------------------------------------------ drawing */

typedef struct
{
  cairo_t *cr;
  PangoLayout *layout;
  const OverlaySettings *settings;
  gdouble sx, sy;               /* result coordinates -> frame pixels */
  gint width, height;
} DrawContext;

/* Text for pango, which wants valid UTF-8. */
static void
layout_set_text (PangoLayout * layout, const gchar * text)
{
  if (g_utf8_validate (text, -1, NULL)) {
    pango_layout_set_text (layout, text, -1);
  } else {
    gchar *valid = g_utf8_make_valid (text, -1);

    pango_layout_set_text (layout, valid, -1);
    g_free (valid);
  }
}

/* The label in a filled tag just above the region's box (inside it when
 * the box touches the top of the frame). */
static void
draw_label (DrawContext * dc, const GstFlorence2Region * r,
    const gdouble * colour)
{
  PangoRectangle ink, logical;
  gdouble half = dc->settings->line_width / 2.0;
  gdouble bx = r->x * dc->sx - half, by = r->y * dc->sy - half;
  gdouble tw, th, tx, ty;
  gdouble luma;

  if (r->label == NULL || r->label[0] == '\0')
    return;
  pango_layout_set_width (dc->layout, -1);
  pango_layout_set_height (dc->layout, 0);
  layout_set_text (dc->layout, r->label);
  pango_layout_get_pixel_extents (dc->layout, &ink, &logical);
  tw = logical.width + 2 * LABEL_PADDING;
  th = logical.height + 2 * LABEL_PADDING;
  tx = CLAMP (bx, 0.0, MAX (0.0, dc->width - tw));
  ty = by - th >= 0.0 ? by - th : MAX (by, 0.0);

  cairo_set_source_rgba (dc->cr, colour[0], colour[1], colour[2], 0.85);
  cairo_rectangle (dc->cr, tx, ty, tw, th);
  cairo_fill (dc->cr);

  /* dark text on light colours, light text on dark ones */
  luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2];
  if (luma > 0.55)
    cairo_set_source_rgb (dc->cr, 0.0, 0.0, 0.0);
  else
    cairo_set_source_rgb (dc->cr, 1.0, 1.0, 1.0);
  cairo_move_to (dc->cr, tx + LABEL_PADDING - logical.x,
      ty + LABEL_PADDING - logical.y);
  pango_cairo_show_layout (dc->cr, dc->layout);
}

/* Coordinates cairo can take; a corrupt result must not break the drawing
 * of the others. */
static gboolean
all_finite (const gfloat * values, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (!isfinite (values[i]) || fabsf (values[i]) > 1e6f)
      return FALSE;
  return TRUE;
}

static void
path_points (DrawContext * dc, const gfloat * points, guint n_points)
{
  cairo_new_path (dc->cr);
  if (!all_finite (points, 2 * (gsize) n_points))
    return;
  for (guint j = 0; j < n_points; j++)
    cairo_line_to (dc->cr, points[2 * j] * dc->sx, points[2 * j + 1] * dc->sy);
  cairo_close_path (dc->cr);
}

static void
draw_region (DrawContext * dc, const GstFlorence2Region * r)
{
  const OverlaySettings *s = dc->settings;
  const gdouble *colour = label_colour (r->label);
  const gfloat box[4] = { r->x, r->y, r->w, r->h };

  if (!all_finite (box, 4)) {
    GST_DEBUG ("skipping a region with a box out of range");
    return;
  }
  cairo_set_line_width (dc->cr, s->line_width);
  cairo_set_line_join (dc->cr, CAIRO_LINE_JOIN_MITER);

  if (r->n_polygons > 0 && s->draw_polygons) {
    for (guint p = 0; p < r->n_polygons; p++) {
      const GstFlorence2Polygon *poly = &r->polygons[p];

      if (poly->n_points < 2)
        continue;
      path_points (dc, poly->points, poly->n_points);
      cairo_set_source_rgba (dc->cr, colour[0], colour[1], colour[2],
          s->fill_opacity);
      cairo_fill_preserve (dc->cr);
      cairo_set_source_rgb (dc->cr, colour[0], colour[1], colour[2]);
      cairo_stroke (dc->cr);
    }
  } else if (s->draw_boxes) {
    cairo_set_source_rgb (dc->cr, colour[0], colour[1], colour[2]);
    if (r->has_quad) {
      path_points (dc, r->quad, 4);
    } else {
      cairo_new_path (dc->cr);
      cairo_rectangle (dc->cr, r->x * dc->sx, r->y * dc->sy, r->w * dc->sx,
          r->h * dc->sy);
    }
    cairo_stroke (dc->cr);
  }

  if (s->draw_labels)
    draw_label (dc, r, colour);
}

/* The result's text (caption, OCR, answer) in a banner at the bottom. */
static void
draw_banner (DrawContext * dc, const gchar * text)
{
  PangoRectangle ink, logical;
  gdouble text_w = dc->width - 2 * BANNER_MARGIN;
  gdouble bh;

  if (text_w < 1.0)
    return;
  pango_layout_set_width (dc->layout, (gint) (text_w * PANGO_SCALE));
  /* at most a third of the frame; longer text ends in an ellipsis */
  pango_layout_set_height (dc->layout, dc->height / 3 * PANGO_SCALE);
  pango_layout_set_wrap (dc->layout, PANGO_WRAP_WORD_CHAR);
  pango_layout_set_ellipsize (dc->layout, PANGO_ELLIPSIZE_END);
  layout_set_text (dc->layout, text);
  pango_layout_get_pixel_extents (dc->layout, &ink, &logical);
  bh = logical.height + 2 * BANNER_MARGIN;

  cairo_set_source_rgba (dc->cr, 0.0, 0.0, 0.0, 0.6);
  cairo_rectangle (dc->cr, 0, dc->height - bh, dc->width, bh);
  cairo_fill (dc->cr);
  cairo_set_source_rgb (dc->cr, 1.0, 1.0, 1.0);
  cairo_move_to (dc->cr, BANNER_MARGIN, dc->height - bh + BANNER_MARGIN
      - logical.y);
  pango_cairo_show_layout (dc->cr, dc->layout);
}

/* Turn the part of @drawing that has ink into one premultiplied ARGB
 * overlay rectangle; NULL when nothing was drawn. Cropping keeps the
 * per-frame blend proportional to what is drawn, not to the frame. */
static GstVideoOverlayComposition *
composition_from_drawing (cairo_surface_t * drawing, gint width, gint height)
{
  gdouble ex, ey, ew, eh;
  gint x0, y0, x1, y1, w, h;
  GstBuffer *pixels;
  GstMapInfo map;
  cairo_surface_t *image;
  cairo_t *cr;
  GstVideoOverlayRectangle *rect;
  GstVideoOverlayComposition *comp;

  cairo_recording_surface_ink_extents (drawing, &ex, &ey, &ew, &eh);
  x0 = CLAMP ((gint) floor (ex), 0, width);
  y0 = CLAMP ((gint) floor (ey), 0, height);
  x1 = CLAMP ((gint) ceil (ex + ew), 0, width);
  y1 = CLAMP ((gint) ceil (ey + eh), 0, height);
  w = x1 - x0;
  h = y1 - y0;
  if (w <= 0 || h <= 0)
    return NULL;

  pixels = gst_buffer_new_allocate (NULL, (gsize) w * h * 4, NULL);
  if (pixels == NULL || !gst_buffer_map (pixels, &map, GST_MAP_WRITE)) {
    gst_clear_buffer (&pixels);
    return NULL;
  }
  image = cairo_image_surface_create_for_data (map.data, CAIRO_FORMAT_ARGB32,
      w, h, w * 4);
  cr = cairo_create (image);
  /* SOURCE: every pixel is written, the fresh memory needs no clearing */
  cairo_set_operator (cr, CAIRO_OPERATOR_SOURCE);
  cairo_set_source_surface (cr, drawing, -x0, -y0);
  cairo_paint (cr);
  cairo_destroy (cr);
  cairo_surface_flush (image);
  cairo_surface_destroy (image);
  gst_buffer_unmap (pixels, &map);

  /* cairo's ARGB32 is native-endian premultiplied ARGB: the composition's
   * own format (BGRA on little-endian machines) */
  gst_buffer_add_video_meta (pixels, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, w, h);
  rect = gst_video_overlay_rectangle_new_raw (pixels, x0, y0, w, h,
      GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA);
  gst_buffer_unref (pixels);
  comp = gst_video_overlay_composition_new (rect);
  gst_video_overlay_rectangle_unref (rect);
  return comp;
}

/* Draw @meta for a @width x @height frame. */
static GstVideoOverlayComposition *
render_result (GstFlorence2Overlay * self, const GstFlorence2Meta * meta,
    const OverlaySettings * settings, gint width, gint height)
{
  cairo_rectangle_t extents = { 0, 0, width, height };
  cairo_surface_t *drawing;
  PangoFontDescription *font;
  DrawContext dc = { 0 };
  GstVideoOverlayComposition *comp;

  drawing = cairo_recording_surface_create (CAIRO_CONTENT_COLOR_ALPHA,
      &extents);
  dc.cr = cairo_create (drawing);
  dc.settings = settings;
  dc.width = width;
  dc.height = height;
  /* coordinates refer to meta->width x meta->height; follow the frame if
   * an element changed its size without transforming the meta */
  dc.sx = meta->width > 0 ? (gdouble) width / meta->width : 1.0;
  dc.sy = meta->height > 0 ? (gdouble) height / meta->height : 1.0;

  pango_cairo_update_context (dc.cr, self->pango_context);
  dc.layout = pango_layout_new (self->pango_context);
  font = pango_font_description_from_string (settings->font_desc);
  pango_layout_set_font_description (dc.layout, font);
  pango_font_description_free (font);

  for (guint i = 0; i < meta->n_regions; i++)
    draw_region (&dc, &meta->regions[i]);
  if (settings->draw_text && meta->text != NULL && meta->text[0] != '\0')
    draw_banner (&dc, meta->text);

  g_object_unref (dc.layout);
  cairo_destroy (dc.cr);

  comp = composition_from_drawing (drawing, width, height);
  cairo_surface_destroy (drawing);
  GST_LOG_OBJECT (self, "drew %u regions%s", meta->n_regions,
      comp ? "" : " (nothing visible)");
  return comp;
}

/* ------------------------------------------------------- negotiation */

/* Ask downstream whether it takes GstVideoOverlayCompositionMeta, as
 * textoverlay does after setting its caps. An in-place transform never
 * runs the ALLOCATION query itself, so the overlay does it here, on the
 * first frame after (re)negotiation, once the caps have reached
 * downstream. */
static void
decide_attach (GstFlorence2Overlay * self)
{
  GstPad *srcpad = GST_BASE_TRANSFORM_SRC_PAD (self);
  GstCaps *caps = gst_pad_get_current_caps (srcpad);
  gboolean caps_have_meta = FALSE, alloc_has_meta = FALSE;
  GstQuery *query;

  if (caps == NULL)
    return;
  if (gst_caps_get_size (caps) > 0)
    caps_have_meta = gst_caps_features_contains (gst_caps_get_features (caps,
            0), GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);

  query = gst_query_new_allocation (caps, FALSE);
  if (gst_pad_peer_query (srcpad, query))
    alloc_has_meta = gst_query_find_allocation_meta (query,
        GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);
  else
    GST_DEBUG_OBJECT (self, "ALLOCATION query failed; blending");
  gst_query_unref (query);
  gst_caps_unref (caps);

  self->attach = caps_have_meta || alloc_has_meta;
  GST_DEBUG_OBJECT (self, "caps feature %d, allocation meta %d: %s",
      caps_have_meta, alloc_has_meta, self->attach ? "attaching" : "blending");
}

/* Downstream may take the overlay as meta: offer the caps with the
 * meta:GstVideoOverlayComposition feature, after the plain ones so that
 * blending stays the default (as in textoverlay) for peers that accept
 * anything. Upstream caps that already carry the feature keep it: their
 * composition is extended, not blended. */
static GstCaps *
gst_florence2_overlay_transform_caps (GstBaseTransform * trans,
    GstPadDirection direction, GstCaps * caps, GstCaps * filter)
{
  GstCaps *plain = gst_caps_new_empty ();
  GstCaps *with_meta = gst_caps_new_empty ();
  GstCaps *ret;

  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstCapsFeatures *f = gst_caps_get_features (caps, i);
    GstStructure *s = gst_caps_get_structure (caps, i);
    gboolean has_meta = f != NULL && !gst_caps_features_is_any (f)
        && gst_caps_features_contains (f,
        GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
    GstCapsFeatures *other;

    if (f != NULL && gst_caps_features_is_any (f)) {
      gst_caps_append_structure_full (plain, gst_structure_copy (s),
          gst_caps_features_copy (f));
      continue;
    }
    if (has_meta) {
      gst_caps_append_structure_full (with_meta, gst_structure_copy (s),
          gst_caps_features_copy (f));
      /* src caps with the feature: upstream may have it or not */
      if (direction == GST_PAD_SRC) {
        other = gst_caps_features_copy (f);
        gst_caps_features_remove (other,
            GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
        gst_caps_append_structure_full (plain, gst_structure_copy (s), other);
      }
    } else {
      gst_caps_append_structure_full (plain, gst_structure_copy (s),
          f ? gst_caps_features_copy (f) : NULL);
      if (direction == GST_PAD_SINK) {
        other = f ? gst_caps_features_copy (f) :
            gst_caps_features_new_empty ();
        gst_caps_features_add (other,
            GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
        gst_caps_append_structure_full (with_meta, gst_structure_copy (s),
            other);
      }
    }
  }

  ret = gst_caps_merge (plain, with_meta);
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, ret,
        GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (ret);
    ret = tmp;
  }
  GST_DEBUG_OBJECT (trans, "%s caps %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
      direction == GST_PAD_SINK ? "sink" : "src", caps, ret);
  return ret;
}

static gboolean
gst_florence2_overlay_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (filter);

  GST_DEBUG_OBJECT (self, "caps %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
      incaps, outcaps);
  self->drawn = FALSE;
  g_atomic_int_set (&self->check_allocation, 1);
  return TRUE;
}

static gboolean
gst_florence2_overlay_src_event (GstBaseTransform * trans, GstEvent * event)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (trans);

  /* downstream changed, e.g. a sink that now composes overlays itself */
  if (GST_EVENT_TYPE (event) == GST_EVENT_RECONFIGURE)
    g_atomic_int_set (&self->check_allocation, 1);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
}

/* ---------------------------------------------------------- frames */

static void
settings_copy (OverlaySettings * dst, const OverlaySettings * src)
{
  *dst = *src;
  dst->font_desc = g_strdup (src->font_desc);
}

/* Add @comp to the buffer's composition meta (keeping what upstream put
 * there) or attach it as a new one. */
static void
attach_composition (GstBuffer * buffer, GstVideoOverlayComposition * comp)
{
  GstVideoOverlayCompositionMeta *upstream =
      gst_buffer_get_video_overlay_composition_meta (buffer);

  if (upstream != NULL) {
    GstVideoOverlayComposition *merged =
        gst_video_overlay_composition_make_writable
        (gst_video_overlay_composition_ref (upstream->overlay));
    guint n = gst_video_overlay_composition_n_rectangles (comp);

    for (guint i = 0; i < n; i++)
      gst_video_overlay_composition_add_rectangle (merged,
          gst_video_overlay_composition_get_rectangle (comp, i));
    gst_buffer_remove_meta (buffer, (GstMeta *) upstream);
    gst_buffer_add_video_overlay_composition_meta (buffer, merged);
    gst_video_overlay_composition_unref (merged);
  } else {
    gst_buffer_add_video_overlay_composition_meta (buffer, comp);
  }
}

static GstFlowReturn
gst_florence2_overlay_transform_frame_ip (GstVideoFilter * filter,
    GstVideoFrame * frame)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (filter);
  GstFlorence2Meta *meta = gst_buffer_get_florence2_meta (frame->buffer);
  gint width = GST_VIDEO_FRAME_WIDTH (frame);
  gint height = GST_VIDEO_FRAME_HEIGHT (frame);
  OverlaySettings settings;
  guint serial;

  if (g_atomic_int_compare_and_exchange (&self->check_allocation, 1, 0))
    decide_attach (self);

  GST_OBJECT_LOCK (self);
  settings_copy (&settings, &self->settings);
  serial = self->settings_serial;
  GST_OBJECT_UNLOCK (self);

  if (meta != NULL) {
    const GstFlorence2Meta *last = last_result (self);

    if (last == NULL || !results_draw_the_same (meta, last))
      store_result (self, frame->buffer, meta);
  }

  if (!self->drawn || serial != self->drawn_serial
      || width != self->drawn_width || height != self->drawn_height) {
    const GstFlorence2Meta *last = last_result (self);

    g_clear_pointer (&self->composition, gst_video_overlay_composition_unref);
    if (last != NULL)
      self->composition = render_result (self, last, &settings, width, height);
    self->drawn = TRUE;
    self->drawn_serial = serial;
    self->drawn_width = width;
    self->drawn_height = height;
  }

  if (self->composition != NULL && (meta != NULL || settings.keep_last)) {
    if (self->attach)
      attach_composition (frame->buffer, self->composition);
    else if (!gst_video_overlay_composition_blend (self->composition, frame))
      GST_WARNING_OBJECT (self, "could not blend the overlay into %s",
          gst_video_format_to_string (GST_VIDEO_FRAME_FORMAT (frame)));
  }

  g_free (settings.font_desc);
  return GST_FLOW_OK;
}

/* ---------------------------------------------------------- lifecycle */

static gboolean
gst_florence2_overlay_start (GstBaseTransform * trans)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (trans);

  self->font_map = pango_cairo_font_map_new ();
  self->pango_context = pango_font_map_create_context (self->font_map);
  self->attach = FALSE;
  self->drawn = FALSE;
  g_atomic_int_set (&self->check_allocation, 1);
  return TRUE;
}

static gboolean
gst_florence2_overlay_stop (GstBaseTransform * trans)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (trans);

  g_clear_pointer (&self->composition, gst_video_overlay_composition_unref);
  gst_clear_buffer (&self->result_holder);
  g_clear_object (&self->pango_context);
  g_clear_object (&self->font_map);
  self->drawn = FALSE;
  return TRUE;
}

static void
gst_florence2_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (object);
  OverlaySettings *s = &self->settings;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LINE_WIDTH:
      s->line_width = g_value_get_double (value);
      break;
    case PROP_FONT_DESC:
      g_free (s->font_desc);
      s->font_desc = g_value_dup_string (value);
      if (s->font_desc == NULL)
        s->font_desc = g_strdup (DEFAULT_FONT_DESC);
      break;
    case PROP_FILL_OPACITY:
      s->fill_opacity = g_value_get_double (value);
      break;
    case PROP_DRAW_BOXES:
      s->draw_boxes = g_value_get_boolean (value);
      break;
    case PROP_DRAW_LABELS:
      s->draw_labels = g_value_get_boolean (value);
      break;
    case PROP_DRAW_POLYGONS:
      s->draw_polygons = g_value_get_boolean (value);
      break;
    case PROP_DRAW_TEXT:
      s->draw_text = g_value_get_boolean (value);
      break;
    case PROP_KEEP_LAST:
      s->keep_last = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  self->settings_serial++;
  GST_OBJECT_UNLOCK (self);
}

static void
gst_florence2_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (object);
  OverlaySettings *s = &self->settings;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LINE_WIDTH:
      g_value_set_double (value, s->line_width);
      break;
    case PROP_FONT_DESC:
      g_value_set_string (value, s->font_desc);
      break;
    case PROP_FILL_OPACITY:
      g_value_set_double (value, s->fill_opacity);
      break;
    case PROP_DRAW_BOXES:
      g_value_set_boolean (value, s->draw_boxes);
      break;
    case PROP_DRAW_LABELS:
      g_value_set_boolean (value, s->draw_labels);
      break;
    case PROP_DRAW_POLYGONS:
      g_value_set_boolean (value, s->draw_polygons);
      break;
    case PROP_DRAW_TEXT:
      g_value_set_boolean (value, s->draw_text);
      break;
    case PROP_KEEP_LAST:
      g_value_set_boolean (value, s->keep_last);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_florence2_overlay_finalize (GObject * object)
{
  GstFlorence2Overlay *self = GST_FLORENCE2_OVERLAY (object);

  g_clear_pointer (&self->composition, gst_video_overlay_composition_unref);
  gst_clear_buffer (&self->result_holder);
  g_clear_object (&self->pango_context);
  g_clear_object (&self->font_map);
  g_free (self->settings.font_desc);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_florence2_overlay_class_init (GstFlorence2OverlayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
      GST_PARAM_MUTABLE_PLAYING;

  gobject_class->set_property = gst_florence2_overlay_set_property;
  gobject_class->get_property = gst_florence2_overlay_get_property;
  gobject_class->finalize = gst_florence2_overlay_finalize;

  /**
   * GstFlorence2Overlay:line-width:
   *
   * Width of box, quad and polygon outlines, in pixels.
   */
  g_object_class_install_property (gobject_class, PROP_LINE_WIDTH,
      g_param_spec_double ("line-width", "Line width",
          "Width of box, quad and polygon outlines, in pixels",
          0.5, 64.0, DEFAULT_LINE_WIDTH, flags));

  /**
   * GstFlorence2Overlay:font-desc:
   *
   * Pango font description of labels and of the text banner, such as
   * "Sans Bold 12" (size in points).
   */
  g_object_class_install_property (gobject_class, PROP_FONT_DESC,
      g_param_spec_string ("font-desc", "Font description",
          "Pango font description of labels and of the text banner",
          DEFAULT_FONT_DESC, flags));

  /**
   * GstFlorence2Overlay:fill-opacity:
   *
   * Opacity of the colour that fills segmentation polygons: 0 draws their
   * outline only, 1 covers them.
   */
  g_object_class_install_property (gobject_class, PROP_FILL_OPACITY,
      g_param_spec_double ("fill-opacity", "Fill opacity",
          "Opacity of the colour that fills segmentation polygons (0: outline "
          "only, 1: opaque)", 0.0, 1.0, DEFAULT_FILL_OPACITY, flags));

  /**
   * GstFlorence2Overlay:draw-boxes:
   *
   * Outline region boxes and OCR quads. Regions with polygons are drawn as
   * boxes too when #GstFlorence2Overlay:draw-polygons is off.
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_BOXES,
      g_param_spec_boolean ("draw-boxes", "Draw boxes",
          "Outline region boxes and OCR quads", DEFAULT_DRAW_BOXES, flags));

  /**
   * GstFlorence2Overlay:draw-labels:
   *
   * Write each region's label (the phrase, class name or OCR text) in a
   * tag of the region's colour above it.
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_LABELS,
      g_param_spec_boolean ("draw-labels", "Draw labels",
          "Write each region's label above it", DEFAULT_DRAW_LABELS, flags));

  /**
   * GstFlorence2Overlay:draw-polygons:
   *
   * Draw segmentation polygons, filled with their colour at
   * #GstFlorence2Overlay:fill-opacity.
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_POLYGONS,
      g_param_spec_boolean ("draw-polygons", "Draw polygons",
          "Draw segmentation polygons, filled at fill-opacity",
          DEFAULT_DRAW_POLYGONS, flags));

  /**
   * GstFlorence2Overlay:draw-text:
   *
   * Show the result's text (captions, OCR text, answers) in a banner at the
   * bottom of the frame.
   */
  g_object_class_install_property (gobject_class, PROP_DRAW_TEXT,
      g_param_spec_boolean ("draw-text", "Draw text",
          "Show the result's text (caption, OCR) in a banner at the bottom",
          DEFAULT_DRAW_TEXT, flags));

  /**
   * GstFlorence2Overlay:keep-last:
   *
   * Keeps the last drawing for frames that carry no fresh result. When
   * off, such frames pass untouched.
   */
  g_object_class_install_property (gobject_class, PROP_KEEP_LAST,
      g_param_spec_boolean ("keep-last", "Keep last",
          "Keeps the last drawing for frames that carry no fresh result",
          DEFAULT_KEEP_LAST, flags));

  gst_element_class_set_static_metadata (element_class,
      "Florence-2 overlay", "Filter/Editor/Video",
      "Draws Florence-2 results (boxes, labels, polygons, OCR, captions) "
      "on video frames", "gst-florence2 developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_florence2_overlay_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_florence2_overlay_stop);
  trans_class->transform_caps =
      GST_DEBUG_FUNCPTR (gst_florence2_overlay_transform_caps);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_florence2_overlay_src_event);
  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_florence2_overlay_set_info);
  filter_class->transform_frame_ip =
      GST_DEBUG_FUNCPTR (gst_florence2_overlay_transform_frame_ip);
}

static void
gst_florence2_overlay_init (GstFlorence2Overlay * self)
{
  self->settings.line_width = DEFAULT_LINE_WIDTH;
  self->settings.font_desc = g_strdup (DEFAULT_FONT_DESC);
  self->settings.fill_opacity = DEFAULT_FILL_OPACITY;
  self->settings.draw_boxes = DEFAULT_DRAW_BOXES;
  self->settings.draw_labels = DEFAULT_DRAW_LABELS;
  self->settings.draw_polygons = DEFAULT_DRAW_POLYGONS;
  self->settings.draw_text = DEFAULT_DRAW_TEXT;
  self->settings.keep_last = DEFAULT_KEEP_LAST;
}
