/* florence2overlay with GstHarness: results attached by hand are drawn where
 * their boxes, polygons, quads and text are and nowhere else, in every
 * format; frames without a result keep the last drawing or pass untouched;
 * the drawing is made again only when the result or a setting changes; and
 * downstream that takes GstVideoOverlayCompositionMeta gets the composition
 * with untouched pixels. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <math.h>
#include <string.h>

#include <gst/florence2/gstflorence2meta.h>

#define W 320
#define H 240

/* the box most cases draw, and the margin a stroke of LINE_WIDTH can reach
 * beyond it (half the line, antialiasing, chroma subsampling) */
#define BOX_X 100
#define BOX_Y 80
#define BOX_W 80
#define BOX_H 60
#define LINE_WIDTH 4.0
#define MARGIN 5

static const gchar *all_formats[] = {
  "RGB", "RGBx", "BGRx", "RGBA", "BGRA", "NV12", "I420"
};

/* ------------------------------------------------------------ frames */

/* A @format frame with a smooth, position-dependent picture, so that any
 * pixel written by mistake shows. */
static GstBuffer *
make_frame (GstVideoFormat format, GstVideoInfo * info)
{
  GstVideoInfo rgb_info;
  GstVideoFrame in, out;
  GstBuffer *rgb, *buffer;
  GstVideoConverter *conv;

  gst_video_info_set_format (&rgb_info, GST_VIDEO_FORMAT_RGB, W, H);
  gst_video_info_set_format (info, format, W, H);
  rgb = gst_buffer_new_allocate (NULL, rgb_info.size, NULL);
  fail_unless (gst_video_frame_map (&in, &rgb_info, rgb, GST_MAP_WRITE));
  for (gint y = 0; y < H; y++) {
    guint8 *row = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&in, 0) +
        y * GST_VIDEO_FRAME_PLANE_STRIDE (&in, 0);

    for (gint x = 0; x < W; x++) {
      row[3 * x] = (guint8) (60 + x / 4);
      row[3 * x + 1] = (guint8) (70 + y / 3);
      row[3 * x + 2] = (guint8) (110 + (x + y) / 8);
    }
  }
  gst_video_frame_unmap (&in);

  buffer = gst_buffer_new_allocate (NULL, info->size, NULL);
  fail_unless (gst_video_frame_map (&in, &rgb_info, rgb, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&out, info, buffer, GST_MAP_WRITE));
  conv = gst_video_converter_new (&rgb_info, info, NULL);
  gst_video_converter_frame (conv, &in, &out);
  gst_video_converter_free (conv);
  gst_video_frame_unmap (&out);
  gst_video_frame_unmap (&in);
  gst_buffer_unref (rgb);
  return buffer;
}

/* A writable copy of @frame (pixels and all) to attach a result to. */
static GstBuffer *
copy_frame (GstBuffer * frame)
{
  return gst_buffer_copy_deep (frame);
}

static GstFlorence2Meta *
add_meta (GstBuffer * buffer, const gchar * task, const gchar * text)
{
  GstFlorence2Meta *meta = gst_buffer_add_florence2_meta (buffer, task, NULL,
      text, W, H, 0, GST_MSECOND);

  fail_unless (meta != NULL);
  return meta;
}

/* A copy of @frame carrying one box labelled @label at BOX_*. */
static GstBuffer *
frame_with_box (GstBuffer * frame, const gchar * label)
{
  GstBuffer *buffer = copy_frame (frame);
  GstFlorence2Meta *meta = add_meta (buffer, "<OD>", NULL);

  gst_florence2_meta_add_region (meta, label, BOX_X, BOX_Y, BOX_W, BOX_H);
  return buffer;
}

/* Two frames mapped for comparing pixels. */
typedef struct
{
  GstVideoFrame a, b;
} FramePair;

static void
pair_map (FramePair * p, GstBuffer * a, GstBuffer * b,
    const GstVideoInfo * info)
{
  fail_unless (gst_video_frame_map (&p->a, info, a, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&p->b, info, b, GST_MAP_READ));
}

static void
pair_unmap (FramePair * p)
{
  gst_video_frame_unmap (&p->b);
  gst_video_frame_unmap (&p->a);
}

/* Whether pixel (@x, @y) has any component that differs. */
static gboolean
pair_differs (const FramePair * p, gint x, gint y)
{
  const GstVideoFormatInfo *finfo = p->a.info.finfo;

  for (guint c = 0; c < GST_VIDEO_FORMAT_INFO_N_COMPONENTS (finfo); c++) {
    /* the subsampled sample that covers (x, y) */
    gint cx = x >> GST_VIDEO_FORMAT_INFO_W_SUB (finfo, c);
    gint cy = y >> GST_VIDEO_FORMAT_INFO_H_SUB (finfo, c);
    gsize off = (gsize) cy * GST_VIDEO_FRAME_COMP_STRIDE (&p->a, c) +
        (gsize) cx * GST_VIDEO_FRAME_COMP_PSTRIDE (&p->a, c);

    if (((const guint8 *) GST_VIDEO_FRAME_COMP_DATA (&p->a, c))[off] !=
        ((const guint8 *) GST_VIDEO_FRAME_COMP_DATA (&p->b, c))[off])
      return TRUE;
  }
  return FALSE;
}

static gboolean
pixel_differs (GstBuffer * a, GstBuffer * b, const GstVideoInfo * info,
    gint x, gint y)
{
  FramePair p;
  gboolean differs;

  pair_map (&p, a, b, info);
  differs = pair_differs (&p, x, y);
  pair_unmap (&p);
  return differs;
}

typedef struct
{
  gint x0, y0, x1, y1;          /* bounds of the changed pixels, inclusive */
  guint count;
} Diff;

static Diff
diff_frames (GstBuffer * a, GstBuffer * b, const GstVideoInfo * info)
{
  Diff d = { W, H, -1, -1, 0 };
  FramePair p;

  pair_map (&p, a, b, info);
  for (gint y = 0; y < H; y++)
    for (gint x = 0; x < W; x++)
      if (pair_differs (&p, x, y)) {
        d.x0 = MIN (d.x0, x);
        d.y0 = MIN (d.y0, y);
        d.x1 = MAX (d.x1, x);
        d.y1 = MAX (d.y1, y);
        d.count++;
      }
  pair_unmap (&p);
  return d;
}

static gboolean
buffers_equal (GstBuffer * a, GstBuffer * b)
{
  GstMapInfo ma, mb;
  gboolean equal;

  fail_unless (gst_buffer_map (a, &ma, GST_MAP_READ));
  fail_unless (gst_buffer_map (b, &mb, GST_MAP_READ));
  equal = ma.size == mb.size && memcmp (ma.data, mb.data, ma.size) == 0;
  gst_buffer_unmap (b, &mb);
  gst_buffer_unmap (a, &ma);
  return equal;
}

/* Every changed pixel lies on the outline of the BOX_* box: inside the box
 * grown by MARGIN and outside it shrunk by MARGIN. */
static void
check_only_box_outline (GstBuffer * in, GstBuffer * out,
    const GstVideoInfo * info)
{
  guint changed = 0;
  FramePair p;

  pair_map (&p, in, out, info);
  for (gint y = 0; y < H; y++)
    for (gint x = 0; x < W; x++) {
      gboolean near_outline = x >= BOX_X - MARGIN && x <= BOX_X + BOX_W +
          MARGIN && y >= BOX_Y - MARGIN && y <= BOX_Y + BOX_H + MARGIN &&
          !(x > BOX_X + MARGIN && x < BOX_X + BOX_W - MARGIN
          && y > BOX_Y + MARGIN && y < BOX_Y + BOX_H - MARGIN);

      if (pair_differs (&p, x, y)) {
        fail_unless (near_outline, "pixel (%d, %d) changed, away from the "
            "box outline", x, y);
        changed++;
      }
    }
  pair_unmap (&p);
  /* the whole outline, LINE_WIDTH wide (minus antialiased corners) */
  fail_unless (changed >= 2 * (BOX_W + BOX_H) * (guint) LINE_WIDTH * 3 / 4,
      "only %u pixels changed", changed);
  /* each side, and never the middle */
  fail_unless (pixel_differs (in, out, info, BOX_X, BOX_Y + BOX_H / 2));
  fail_unless (pixel_differs (in, out, info, BOX_X + BOX_W, BOX_Y + BOX_H / 2));
  fail_unless (pixel_differs (in, out, info, BOX_X + BOX_W / 2, BOX_Y));
  fail_unless (pixel_differs (in, out, info, BOX_X + BOX_W / 2, BOX_Y + BOX_H));
  fail_if (pixel_differs (in, out, info, BOX_X + BOX_W / 2, BOX_Y + BOX_H / 2));
}

/* -------------------------------------------------------- harnesses */

/* florence2overlay on @format frames, drawing outlines only unless the
 * case turns the rest back on. */
static GstHarness *
harness_new (const gchar * format)
{
  GstHarness *h = gst_harness_new ("florence2overlay");
  gchar *caps = g_strdup_printf ("video/x-raw, format=%s, width=%d, "
      "height=%d, framerate=30/1", format, W, H);

  g_object_set (h->element, "line-width", LINE_WIDTH, "draw-labels", FALSE,
      "draw-text", FALSE, NULL);
  gst_harness_set_src_caps_str (h, caps);
  g_free (caps);
  return h;
}

static GstBuffer *
push_pull (GstHarness * h, GstBuffer * buffer)
{
  GstBuffer *out = gst_harness_push_and_pull (h, buffer);

  fail_unless (out != NULL);
  return out;
}

/* ------------------------------------------------------------ cases */

GST_START_TEST (test_properties)
{
  GstElement *e = gst_element_factory_make ("florence2overlay", NULL);
  gdouble line_width, fill_opacity;
  gchar *font;
  gboolean boxes, labels, polygons, text, keep_last;

  fail_unless (e != NULL);
  g_object_get (e, "line-width", &line_width, "fill-opacity", &fill_opacity,
      "font-desc", &font, "draw-boxes", &boxes, "draw-labels", &labels,
      "draw-polygons", &polygons, "draw-text", &text, "keep-last", &keep_last,
      NULL);
  fail_unless (line_width > 0.0 && fill_opacity > 0.0 && fill_opacity < 1.0);
  fail_unless (font != NULL && font[0] != '\0');
  fail_unless (boxes && labels && polygons && text && keep_last);
  g_free (font);

  g_object_set (e, "line-width", 6.5, "fill-opacity", 0.0, "font-desc",
      "Serif 20", "draw-boxes", FALSE, "keep-last", FALSE, NULL);
  g_object_get (e, "line-width", &line_width, "fill-opacity", &fill_opacity,
      "font-desc", &font, "draw-boxes", &boxes, "keep-last", &keep_last, NULL);
  fail_unless_equals_float (line_width, 6.5);
  fail_unless_equals_float (fill_opacity, 0.0);
  fail_unless_equals_string (font, "Serif 20");
  fail_if (boxes);
  fail_if (keep_last);
  g_free (font);
  gst_object_unref (e);
}

GST_END_TEST;

GST_START_TEST (test_box_outline)
{
  GstHarness *h = harness_new ("RGBA");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_RGBA, &info);
  GstBuffer *out = push_pull (h, frame_with_box (frame, "cat"));

  check_only_box_outline (frame, out, &info);
  gst_buffer_unref (out);

  /* draw-boxes off: nothing left to draw */
  g_object_set (h->element, "draw-boxes", FALSE, NULL);
  out = push_pull (h, frame_with_box (frame, "cat"));
  fail_unless (buffers_equal (frame, out));
  gst_buffer_unref (out);

  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Coordinates refer to the meta's width x height; a frame of another size
 * (an element changed it without transforming the meta) is drawn scaled. */
GST_START_TEST (test_meta_size_scaled)
{
  GstHarness *h = harness_new ("BGRx");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_BGRx, &info);
  GstBuffer *in = copy_frame (frame), *out;
  GstFlorence2Meta *meta = gst_buffer_add_florence2_meta (in, "<OD>", NULL,
      NULL, 2 * W, 2 * H, 0, 0);

  gst_florence2_meta_add_region (meta, "cat", 2 * BOX_X, 2 * BOX_Y,
      2 * BOX_W, 2 * BOX_H);
  out = push_pull (h, in);
  check_only_box_outline (frame, out, &info);
  gst_buffer_unref (out);
  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_label_tag)
{
  GstHarness *h = harness_new ("RGBx");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_RGBx, &info);
  GstBuffer *out;
  Diff d;

  g_object_set (h->element, "draw-labels", TRUE, NULL);
  out = push_pull (h, frame_with_box (frame, "a cat"));
  d = diff_frames (frame, out, &info);
  /* the tag sits above the box, starting at its left edge */
  fail_unless (d.y0 < BOX_Y - MARGIN - 4, "nothing above the box (%d)", d.y0);
  fail_unless (d.x0 >= BOX_X - MARGIN);
  fail_unless (d.y1 <= BOX_Y + BOX_H + MARGIN);
  fail_unless (pixel_differs (frame, out, &info, BOX_X + 2, BOX_Y - 8));
  gst_buffer_unref (out);

  /* no label text: no tag */
  out = push_pull (h, frame_with_box (frame, ""));
  check_only_box_outline (frame, out, &info);
  gst_buffer_unref (out);

  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Same label, same colour; the colours come from the label text alone. */
GST_START_TEST (test_label_colours)
{
  GstHarness *h = harness_new ("RGB");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_RGB, &info);
  GstBuffer *in = copy_frame (frame), *out;
  GstFlorence2Meta *meta = add_meta (in, "<OD>", NULL);
  GstVideoFrame vf;
  const guint8 *p1, *p2;

  gst_florence2_meta_add_region (meta, "dog", 20, 20, 60, 60);
  gst_florence2_meta_add_region (meta, "dog", 200, 120, 80, 80);
  g_object_set (h->element, "line-width", 6.0, NULL);
  out = push_pull (h, in);
  fail_unless (gst_video_frame_map (&vf, &info, out, GST_MAP_READ));
  /* the middle of each left edge: the line's full colour */
  p1 = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vf, 0) +
      50 * GST_VIDEO_FRAME_PLANE_STRIDE (&vf, 0) + 20 * 3;
  p2 = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&vf, 0) +
      160 * GST_VIDEO_FRAME_PLANE_STRIDE (&vf, 0) + 200 * 3;
  fail_unless (memcmp (p1, p2, 3) == 0, "same label, different colours: "
      "%u,%u,%u and %u,%u,%u", p1[0], p1[1], p1[2], p2[0], p2[1], p2[2]);
  fail_unless (pixel_differs (frame, out, &info, 20, 50));
  gst_video_frame_unmap (&vf);
  gst_buffer_unref (out);
  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A triangle and the box around it. */
static GstBuffer *
frame_with_triangle (GstBuffer * frame)
{
  static const gfloat triangle[] = { 60, 60, 200, 60, 130, 180 };
  GstBuffer *buffer = copy_frame (frame);
  GstFlorence2Meta *meta = add_meta (buffer,
      "<REFERRING_EXPRESSION_SEGMENTATION>", NULL);
  guint k = gst_florence2_meta_add_region (meta, "the cat", 60, 60, 140, 120);

  gst_florence2_meta_region_add_polygon (meta, k, 3, triangle);
  return buffer;
}

GST_START_TEST (test_polygon)
{
  GstHarness *h = harness_new ("BGRA");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_BGRA, &info);
  GstBuffer *out;
  Diff d;

  /* filled: the inside changes, the box's bottom corners (outside the
   * triangle) do not */
  g_object_set (h->element, "fill-opacity", 0.5, NULL);
  out = push_pull (h, frame_with_triangle (frame));
  fail_unless (pixel_differs (frame, out, &info, 130, 100));
  fail_unless (pixel_differs (frame, out, &info, 130, 60));
  fail_if (pixel_differs (frame, out, &info, 62, 178));
  fail_if (pixel_differs (frame, out, &info, 198, 178));
  d = diff_frames (frame, out, &info);
  fail_unless (d.x0 >= 60 - MARGIN && d.x1 <= 200 + MARGIN
      && d.y0 >= 60 - MARGIN && d.y1 <= 180 + MARGIN);
  gst_buffer_unref (out);

  /* fill-opacity 0: outline only */
  g_object_set (h->element, "fill-opacity", 0.0, NULL);
  out = push_pull (h, frame_with_triangle (frame));
  fail_if (pixel_differs (frame, out, &info, 130, 100));
  fail_unless (pixel_differs (frame, out, &info, 130, 60));
  gst_buffer_unref (out);

  /* draw-polygons off: the region is drawn as its box */
  g_object_set (h->element, "draw-polygons", FALSE, NULL);
  out = push_pull (h, frame_with_triangle (frame));
  fail_unless (pixel_differs (frame, out, &info, 60, 178));
  fail_if (pixel_differs (frame, out, &info, 130, 100));
  gst_buffer_unref (out);

  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_ocr_quad)
{
  static const gfloat quad[] = { 50, 50, 150, 70, 140, 120, 40, 100 };
  GstHarness *h = harness_new ("RGBA");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_RGBA, &info);
  GstBuffer *in = copy_frame (frame), *out;
  GstFlorence2Meta *meta = add_meta (in, "<OCR_WITH_REGION>", NULL);
  guint k = gst_florence2_meta_add_region (meta, "HELLO", 40, 50, 110, 70);
  Diff d;

  gst_florence2_meta_region_set_quad (meta, k, quad);
  out = push_pull (h, in);
  /* the quad's edges, not its box's corners */
  fail_unless (pixel_differs (frame, out, &info, 100, 60));
  fail_unless (pixel_differs (frame, out, &info, 90, 110));
  fail_if (pixel_differs (frame, out, &info, 41, 51));
  fail_if (pixel_differs (frame, out, &info, 148, 118));
  fail_if (pixel_differs (frame, out, &info, 95, 85));
  d = diff_frames (frame, out, &info);
  fail_unless (d.x0 >= 40 - MARGIN && d.x1 <= 150 + MARGIN
      && d.y0 >= 50 - MARGIN && d.y1 <= 120 + MARGIN);
  gst_buffer_unref (out);
  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_caption_banner)
{
  GstHarness *h = harness_new ("I420");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_I420, &info);
  GstBuffer *in, *out;
  Diff d;

  g_object_set (h->element, "draw-text", TRUE, NULL);
  in = copy_frame (frame);
  add_meta (in, "<CAPTION>", "A cat sits on a mat next to a dog.");
  out = push_pull (h, in);
  d = diff_frames (frame, out, &info);
  /* a banner across the bottom, the top half untouched */
  fail_unless (d.count > 0);
  fail_unless (d.y1 >= H - 2 && d.y0 > H / 2, "banner rows %d..%d", d.y0,
      d.y1);
  fail_unless (d.x0 <= 1 && d.x1 >= W - 2);
  gst_buffer_unref (out);

  /* draw-text off: nothing */
  g_object_set (h->element, "draw-text", FALSE, NULL);
  in = copy_frame (frame);
  add_meta (in, "<CAPTION>", "A cat sits on a mat next to a dog.");
  out = push_pull (h, in);
  fail_unless (buffers_equal (frame, out));
  gst_buffer_unref (out);

  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_keep_last)
{
  GstHarness *h = harness_new ("RGBA");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_RGBA, &info);
  GstBuffer *drawn, *out, *in;

  drawn = push_pull (h, frame_with_box (frame, "cat"));
  check_only_box_outline (frame, drawn, &info);

  /* no result: the same drawing again */
  out = push_pull (h, gst_buffer_ref (frame));
  fail_unless (buffers_equal (drawn, out));
  gst_buffer_unref (out);

  /* keep-last off: untouched */
  g_object_set (h->element, "keep-last", FALSE, NULL);
  out = push_pull (h, gst_buffer_ref (frame));
  fail_unless (buffers_equal (frame, out));
  gst_buffer_unref (out);
  /* ... but frames with a result are drawn */
  out = push_pull (h, frame_with_box (frame, "cat"));
  fail_unless (buffers_equal (drawn, out));
  gst_buffer_unref (out);

  /* back on: the last result is still there */
  g_object_set (h->element, "keep-last", TRUE, NULL);
  out = push_pull (h, gst_buffer_ref (frame));
  fail_unless (buffers_equal (drawn, out));
  gst_buffer_unref (out);

  /* an empty result replaces it: nothing to keep */
  in = copy_frame (frame);
  add_meta (in, "<OD>", NULL);
  out = push_pull (h, in);
  fail_unless (buffers_equal (frame, out));
  gst_buffer_unref (out);
  out = push_pull (h, gst_buffer_ref (frame));
  fail_unless (buffers_equal (frame, out));
  gst_buffer_unref (out);

  gst_buffer_unref (drawn);
  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_all_formats)
{
  for (guint i = 0; i < G_N_ELEMENTS (all_formats); i++) {
    GstVideoFormat format = gst_video_format_from_string (all_formats[i]);
    GstHarness *h = harness_new (all_formats[i]);
    GstVideoInfo info;
    GstBuffer *frame = make_frame (format, &info);
    GstBuffer *out = push_pull (h, frame_with_box (frame, "cat"));
    GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);
    GstVideoInfo out_info;

    GST_INFO ("format %s", all_formats[i]);
    fail_unless (caps != NULL);
    fail_unless (gst_video_info_from_caps (&out_info, caps));
    fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (&out_info), format);
    fail_if (gst_caps_features_contains (gst_caps_get_features (caps, 0),
            GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION));
    gst_caps_unref (caps);
    fail_if (gst_buffer_get_video_overlay_composition_meta (out) != NULL);
    check_only_box_outline (frame, out, &info);
    gst_buffer_unref (out);
    gst_buffer_unref (frame);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

static GstVideoOverlayComposition *
composition_of (GstBuffer * buffer)
{
  GstVideoOverlayCompositionMeta *m =
      gst_buffer_get_video_overlay_composition_meta (buffer);

  fail_unless (m != NULL, "no overlay composition meta");
  return m->overlay;
}

/* Blend @buffer's composition into a copy of @frame. */
static GstBuffer *
blend_copy (GstBuffer * frame, GstBuffer * buffer, const GstVideoInfo * info)
{
  GstBuffer *copy = copy_frame (frame);
  GstVideoFrame vf;

  fail_unless (gst_video_frame_map (&vf, info, copy, GST_MAP_READWRITE));
  fail_unless (gst_video_overlay_composition_blend (composition_of (buffer),
          &vf));
  gst_video_frame_unmap (&vf);
  return copy;
}

GST_START_TEST (test_composition_meta)
{
  GstHarness *h = harness_new ("NV12");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_NV12, &info);
  GstBuffer *out, *out2, *blended;
  GstVideoOverlayComposition *comp;

  gst_harness_add_propose_allocation_meta (h,
      GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);

  out = push_pull (h, frame_with_box (frame, "cat"));
  fail_unless (buffers_equal (frame, out), "pixels changed");
  comp = composition_of (out);
  fail_unless (gst_video_overlay_composition_n_rectangles (comp) == 1);
  /* the composition holds the drawing */
  blended = blend_copy (frame, out, &info);
  check_only_box_outline (frame, blended, &info);
  gst_buffer_unref (blended);

  /* keep-last: frames without a result get the same composition */
  out2 = push_pull (h, gst_buffer_ref (frame));
  fail_unless (buffers_equal (frame, out2));
  fail_unless (composition_of (out2) == comp);
  gst_buffer_unref (out2);

  /* an equal result on a later frame: not drawn again */
  out2 = push_pull (h, frame_with_box (frame, "cat"));
  fail_unless (composition_of (out2) == comp);
  gst_buffer_unref (out2);

  /* a different result: drawn again */
  out2 = push_pull (h, frame_with_box (frame, "dog"));
  fail_unless (composition_of (out2) != comp);
  gst_buffer_unref (out);
  out = out2;
  comp = composition_of (out);

  /* a changed setting: drawn again */
  g_object_set (h->element, "line-width", 2.0, NULL);
  out2 = push_pull (h, gst_buffer_ref (frame));
  fail_unless (composition_of (out2) != comp);
  gst_buffer_unref (out2);

  /* keep-last off: no composition for frames without a result */
  g_object_set (h->element, "keep-last", FALSE, NULL);
  out2 = push_pull (h, gst_buffer_ref (frame));
  fail_unless (gst_buffer_get_video_overlay_composition_meta (out2) == NULL);
  fail_unless (buffers_equal (frame, out2));
  gst_buffer_unref (out2);

  gst_buffer_unref (out);
  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Downstream that only takes caps with the meta:GstVideoOverlayComposition
 * feature gets them and the composition, even without saying so in the
 * ALLOCATION query; a composition from upstream is kept and extended. */
GST_START_TEST (test_composition_caps_feature)
{
  GstHarness *h = gst_harness_new ("florence2overlay");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_BGRx, &info);
  GstBuffer *in, *out, *upstream_pixels;
  GstCaps *caps;
  GstVideoOverlayRectangle *rect;
  GstVideoOverlayComposition *upstream;

  g_object_set (h->element, "draw-labels", FALSE, NULL);
  gst_harness_set_sink_caps_str (h, "video/x-raw(memory:SystemMemory, "
      "meta:GstVideoOverlayComposition), format=BGRx");
  gst_harness_set_src_caps_str (h, "video/x-raw, format=BGRx, width=320, "
      "height=240, framerate=30/1");

  out = push_pull (h, frame_with_box (frame, "cat"));
  caps = gst_pad_get_current_caps (h->sinkpad);
  fail_unless (gst_caps_features_contains (gst_caps_get_features (caps, 0),
          GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION));
  gst_caps_unref (caps);
  fail_unless (buffers_equal (frame, out));
  fail_unless (gst_video_overlay_composition_n_rectangles (composition_of
          (out)) == 1);
  gst_buffer_unref (out);

  /* upstream's own composition on the frame: ours is added to it */
  upstream_pixels = gst_buffer_new_allocate (NULL, 16 * 16 * 4, NULL);
  gst_buffer_memset (upstream_pixels, 0, 0xff, 16 * 16 * 4);
  gst_buffer_add_video_meta (upstream_pixels, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, 16, 16);
  rect = gst_video_overlay_rectangle_new_raw (upstream_pixels, 4, 4, 16, 16,
      GST_VIDEO_OVERLAY_FORMAT_FLAG_NONE);
  upstream = gst_video_overlay_composition_new (rect);
  in = frame_with_box (frame, "cat");
  gst_buffer_add_video_overlay_composition_meta (in, upstream);
  out = push_pull (h, in);
  fail_unless (gst_video_overlay_composition_n_rectangles (composition_of
          (out)) == 2);
  {
    gint x, y;
    guint w, h2;

    /* upstream's rectangle first, where it was */
    fail_unless (gst_video_overlay_rectangle_get_render_rectangle
        (gst_video_overlay_composition_get_rectangle (composition_of (out), 0),
            &x, &y, &w, &h2));
    fail_unless (x == 4 && y == 4 && w == 16 && h2 == 16);
  }
  fail_unless (buffers_equal (frame, out));
  gst_buffer_unref (out);

  gst_video_overlay_composition_unref (upstream);
  gst_video_overlay_rectangle_unref (rect);
  gst_buffer_unref (upstream_pixels);
  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Text that is not UTF-8, degenerate polygons and coordinates that are not
 * finite are drawn (or skipped) without a warning: criticals are fatal in
 * the test environment. */
GST_START_TEST (test_odd_results)
{
  static const gfloat one_point[] = { 10, 10 };
  GstHarness *h = harness_new ("RGBA");
  GstVideoInfo info;
  GstBuffer *frame = make_frame (GST_VIDEO_FORMAT_RGBA, &info);
  GstBuffer *in = copy_frame (frame), *out;
  GstFlorence2Meta *meta = add_meta (in, "<OCR>", "bad \xff\xfe utf-8");
  guint k = gst_florence2_meta_add_region (meta, "\xc3\x28", -50, -50, 1000,
      1000);

  gst_florence2_meta_region_add_polygon (meta, k, 1, one_point);
  gst_florence2_meta_add_region (meta, "zero", 10, 10, 0, 0);
  gst_florence2_meta_add_region (meta, "nan", NAN, 10, INFINITY, 1e30f);
  k = gst_florence2_meta_add_region (meta, "far", 10, 10, 20, 20);
  gst_florence2_meta_region_add_polygon (meta, k, 3, (const gfloat[]) {
      0, 0, -INFINITY, 5, 1e30f, NAN});
  g_object_set (h->element, "draw-labels", TRUE, "draw-text", TRUE, NULL);
  out = push_pull (h, in);
  fail_unless (pixel_differs (frame, out, &info, W / 2, H - 3));
  gst_buffer_unref (out);
  gst_buffer_unref (frame);
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
florence2overlay_suite (void)
{
  Suite *s = suite_create ("florence2overlay");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_properties);
  tcase_add_test (tc, test_box_outline);
  tcase_add_test (tc, test_meta_size_scaled);
  tcase_add_test (tc, test_label_tag);
  tcase_add_test (tc, test_label_colours);
  tcase_add_test (tc, test_polygon);
  tcase_add_test (tc, test_ocr_quad);
  tcase_add_test (tc, test_caption_banner);
  tcase_add_test (tc, test_keep_last);
  tcase_add_test (tc, test_all_formats);
  tcase_add_test (tc, test_composition_meta);
  tcase_add_test (tc, test_composition_caps_feature);
  tcase_add_test (tc, test_odd_results);
  return s;
}

GST_CHECK_MAIN (florence2overlay);
