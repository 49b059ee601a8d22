/* The florence2 element with GstHarness, on the tiny golden model and the
 * CPU reference backend: metadata equal to the library's result for the same
 * picture, every format, odd sizes and strides, property changes while
 * PLAYING, flush and EOS during an inference, low-latency mode, state cycles,
 * batches across elements sharing a model, and clear errors for bad
 * settings and bad frames.
 *
 * Inferences are slow on the CPU backend, so every case keeps them few
 * (max-new-tokens 12, greedy). */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gst/florence2/gstflorence2meta.h>

#include "florence2.h"
#include "model-net.h"
#include "result.h"
#include "tasks.h"
#include "image.h"
#include "test-common.h"

/* enough for the tiny model to finish its first box on the golden image */
#define MAX_NEW_TOKENS 12

/* fail_unless() for helpers that also run before the test cases, where
 * check cannot record passing assertions */
#define REQUIRE(expr, ...) G_STMT_START { \
    if (!(expr)) ck_abort_msg (__VA_ARGS__); } G_STMT_END
#define IMAGE "tiny/images/shapes_640x480.png"

/* F2_TEST_DEVICE: the device of the element and of the reference (default
 * cpu; a Vulkan device name or index runs the same checks there, slowly on
 * lavapipe) */
static const gchar *test_device;
static gchar *model_dir;
static guint8 *image_rgb;
static gint image_w, image_h;
static Florence2Model *ref_model;       /* the test's own, for reference runs */
static Florence2Context *ref_context;
static Florence2Output *ref_rgb_od;     /* <OD> on the golden image, as RGB */

static void
load_fixtures (void)
{
  GError *error = NULL;
  gchar *path;

  if (ref_model != NULL)
    return;
  model_dir = f2_test_golden_path ("tiny/model");
  path = f2_test_golden_path (IMAGE);
  REQUIRE (f2_image_load_rgb (path, &image_rgb, &image_w, &image_h,
          &error), "%s", error ? error->message : "");
  g_free (path);
  {
    Florence2ModelParams mp = florence2_model_default_params ();

    /* Expected results come from the plain-C reference: it is the oracle,
     * and it starts no OpenMP threads, which would not survive the fork of
     * each test case (the cpu backend's OpenMP runtime hangs in a child
     * whose parent used it). */
    mp.device = "reference";
    ref_model = florence2_model_new (model_dir, &mp, &error);
    REQUIRE (ref_model != NULL, "cannot load the tiny model: %s",
        error ? error->message : "");
    ref_context = florence2_context_new (ref_model, &error);
    REQUIRE (ref_context != NULL, "%s", error ? error->message : "");
  }
}

/* ------------------------------------------------------------ frames */

/* A frame of @format, @w x @h: the golden image when the size matches, a
 * deterministic pattern otherwise. */
static GstBuffer *
make_frame (GstVideoFormat format, gint w, gint h, GstVideoInfo * info)
{
  GstVideoInfo rgb_info;
  GstVideoFrame in, out;
  GstBuffer *rgb, *buffer;
  GstVideoConverter *conv;

  gst_video_info_set_format (&rgb_info, GST_VIDEO_FORMAT_RGB, w, h);
  rgb = gst_buffer_new_allocate (NULL, rgb_info.size, NULL);
  REQUIRE (gst_video_frame_map (&in, &rgb_info, rgb, GST_MAP_WRITE), "map");
  for (gint y = 0; y < h; y++) {
    guint8 *row = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&in, 0) +
        y * GST_VIDEO_FRAME_PLANE_STRIDE (&in, 0);

    if (w == image_w && h == image_h)
      memcpy (row, image_rgb + (gsize) y * w * 3, (gsize) w * 3);
    else
      for (gint x = 0; x < 3 * w; x++)
        row[x] = (guint8) ((x * 7 + y * 13) ^ (x / 3 * y));
  }
  gst_video_frame_unmap (&in);

  gst_video_info_set_format (info, format, w, h);
  if (format == GST_VIDEO_FORMAT_RGB)
    return rgb;

  buffer = gst_buffer_new_allocate (NULL, info->size, NULL);
  REQUIRE (gst_video_frame_map (&in, &rgb_info, rgb, GST_MAP_READ), "map");
  REQUIRE (gst_video_frame_map (&out, info, buffer, GST_MAP_WRITE), "map");
  conv = gst_video_converter_new (&rgb_info, info, NULL);
  gst_video_converter_frame (conv, &in, &out);
  gst_video_converter_free (conv);
  gst_video_frame_unmap (&out);
  gst_video_frame_unmap (&in);
  gst_buffer_unref (rgb);
  return buffer;
}

static F2PixelFormat
f2_format (GstVideoFormat format)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      return F2_PIXEL_RGB;
    case GST_VIDEO_FORMAT_RGBx:
      return F2_PIXEL_RGBX;
    case GST_VIDEO_FORMAT_BGRx:
      return F2_PIXEL_BGRX;
    case GST_VIDEO_FORMAT_RGBA:
      return F2_PIXEL_RGBA;
    case GST_VIDEO_FORMAT_BGRA:
      return F2_PIXEL_BGRA;
    case GST_VIDEO_FORMAT_NV12:
      return F2_PIXEL_NV12;
    default:
      return F2_PIXEL_I420;
  }
}

/* The library's output for the frame in @buffer (laid out as @info). */
static Florence2Output *
reference_run (GstBuffer * buffer, const GstVideoInfo * info, F2Task task,
    const gchar * prompt)
{
  Florence2RunParams rp = florence2_run_default_params ();
  Florence2Output *out;
  GError *error = NULL;
  GstMapInfo map;
  F2Image image = { 0 };

  load_fixtures ();
  REQUIRE (gst_buffer_map (buffer, &map, GST_MAP_READ), "map");
  image.format = f2_format (GST_VIDEO_INFO_FORMAT (info));
  image.width = GST_VIDEO_INFO_WIDTH (info);
  image.height = GST_VIDEO_INFO_HEIGHT (info);
  for (guint p = 0; p < GST_VIDEO_INFO_N_PLANES (info); p++) {
    image.stride[p] = GST_VIDEO_INFO_PLANE_STRIDE (info, p);
    image.plane_offset[p] = GST_VIDEO_INFO_PLANE_OFFSET (info, p);
  }
  image.data = map.data;
  image.size = map.size;
  image.bt709 = GST_VIDEO_INFO_COLORIMETRY (info).matrix ==
      GST_VIDEO_COLOR_MATRIX_BT709;
  rp.task = task;
  rp.text = prompt;
  rp.num_beams = 1;
  rp.max_new_tokens = MAX_NEW_TOKENS;
  out = florence2_context_run (ref_context, &image, &rp, &error);
  REQUIRE (out != NULL, "reference run failed: %s",
      error ? error->message : "");
  gst_buffer_unmap (buffer, &map);
  return out;
}

/* Preprocessed pixels of the reference model's last run. */
static float *
reference_pixels (gsize * n)
{
  F2Net *net = florence2_context_net (ref_context);
  GError *error = NULL;
  float *px;

  *n = f2_net_tensor_size (net, F2_NET_PIXEL_VALUES);
  REQUIRE (*n > 0, "no pixel values");
  px = g_new (float, *n);
  REQUIRE (f2_net_read_tensor (net, F2_NET_PIXEL_VALUES, px, &error),
      "%s", error ? error->message : "");
  return px;
}

/* <OD> on the golden image as RGB, and its preprocessed pixels: computed
 * once, before the test cases fork. Owned here. */
static float *ref_rgb_pixels;
static gsize ref_rgb_n_pixels;

static const Florence2Output *
rgb_reference (void)
{
  if (ref_rgb_od == NULL) {
    GstVideoInfo info;
    GstBuffer *rgb;

    load_fixtures ();
    rgb = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
    ref_rgb_od = reference_run (rgb, &info, F2_TASK_OD, NULL);
    ref_rgb_pixels = reference_pixels (&ref_rgb_n_pixels);
    gst_buffer_unref (rgb);
  }
  return ref_rgb_od;
}

/* -------------------------------------------------------- harnesses */

static GstHarness *
harness_new (const gchar * extra)
{
  gchar *desc;
  GstHarness *h;

  load_fixtures ();
  desc = g_strdup_printf ("florence2 model=\"%s\" device=\"%s\" num-beams=1 "
      "max-new-tokens=%d %s", model_dir, test_device, MAX_NEW_TOKENS,
      extra ? extra : "");
  h = gst_harness_new_parse (desc);
  g_free (desc);
  return h;
}

/* The florence2 element inside the harness's bin. */
static GstElement *
f2_element (GstHarness * h)
{
  GstElement *e = gst_harness_find_element (h, "florence2");

  fail_unless (e != NULL);
  gst_object_unref (e);         /* the bin keeps it */
  return e;
}

static void
set_caps (GstHarness * h, const GstVideoInfo * info)
{
  GstCaps *caps = gst_video_info_to_caps (info);

  gst_caps_set_simple (caps, "framerate", GST_TYPE_FRACTION, 30, 1, NULL);
  gst_harness_set_src_caps (h, caps);
}

static GstBuffer *
stamp (GstBuffer * buffer, guint index)
{
  GST_BUFFER_PTS (buffer) = index * GST_SECOND / 30;
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 30;
  return buffer;
}

/* The meta on @buffer equals @ref's result (coordinates as the element
 * computes them from the library's floats). */
static void
assert_meta_equals (GstBuffer * buffer, const Florence2Output * ref,
    const gchar * what)
{
  GstFlorence2Meta *meta = gst_buffer_get_florence2_meta (buffer);
  const F2Result *r = ref->result;

  fail_unless (meta != NULL, "%s: no meta", what);
  fail_unless_equals_string (meta->task, f2_task_info (ref->task)->token);
  fail_unless_equals_string (meta->text, r->text);
  fail_unless_equals_int (meta->n_regions, r->n_regions);
  for (guint i = 0; i < r->n_regions; i++) {
    const GstFlorence2Region *m = &meta->regions[i];
    const F2Region *e = &r->regions[i];
    /* the meta orders the corners */
    gfloat x0 = MIN (e->bbox[0], e->bbox[2]), x1 = MAX (e->bbox[0], e->bbox[2]);
    gfloat y0 = MIN (e->bbox[1], e->bbox[3]), y1 = MAX (e->bbox[1], e->bbox[3]);

    fail_unless_equals_string (m->label, e->label);
    fail_unless (m->x == x0 && m->y == y0 && m->w == x1 - x0 && m->h == y1 - y0,
        "%s: region %u is %g,%g %gx%g, the library gives %g,%g - %g,%g",
        what, i, m->x, m->y, m->w, m->h, e->bbox[0], e->bbox[1], e->bbox[2],
        e->bbox[3]);
    fail_unless_equals_int (m->n_polygons, e->n_polygons);
    fail_unless_equals_int (m->has_quad, e->shape == F2_REGION_QUAD);
  }
}

static void
assert_same_meta (GstBuffer * a, GstBuffer * b)
{
  GstFlorence2Meta *ma = gst_buffer_get_florence2_meta (a);
  GstFlorence2Meta *mb = gst_buffer_get_florence2_meta (b);
  gchar *ja, *jb;

  fail_unless (ma != NULL && mb != NULL);
  /* same JSON apart from the timing */
  ma->inference_time = mb->inference_time = 0;
  ja = gst_florence2_meta_to_json (ma, 0);
  jb = gst_florence2_meta_to_json (mb, 0);
  fail_unless_equals_string (ja, jb);
  g_free (ja);
  g_free (jb);
}

static GstBus *
attach_bus (GstHarness * h)
{
  GstBus *bus = gst_bus_new ();

  gst_element_set_bus (h->element, bus);
  return bus;
}

/* Tear down @h and @bus: queued messages hold the element, so drop them. */
static void
teardown_with_bus (GstHarness * h, GstBus * bus)
{
  gst_bus_set_flushing (bus, TRUE);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

/* --------------------------------------------------------- the tests */

GST_START_TEST (test_meta_matches_library)
{
  GstHarness *h;
  GstBuffer *in, *out;
  GstVideoInfo info;
  const Florence2Output *ref = rgb_reference ();
  GstBus *bus;
  GstMessage *msg;
  const GstStructure *s;
  GstFlorence2Meta *meta;
  gchar *json, *desc, *results, *contents;
  GstClockTime last = 0, min_latency;
  guint n_rois = 0;
  gpointer state = NULL;
  GstMeta *m;

  load_fixtures ();
  results = g_build_filename (g_get_tmp_dir (), "florence2-results-XXXXXX",
      NULL);
  g_close (g_mkstemp (results), NULL);
  desc = g_strdup_printf ("emit-messages=true results-location=\"%s\"",
      results);
  h = harness_new (desc);
  g_free (desc);
  bus = attach_bus (h);

  in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  fail_unless (ref->result->n_regions > 0,
      "the tiny model found no box: the comparison would be empty");
  set_caps (h, &info);

  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 3));
  fail_unless (out != NULL);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 3 * GST_SECOND / 30);
  assert_meta_equals (out, ref, "RGB");
  meta = gst_buffer_get_florence2_meta (out);
  fail_unless_equals_uint64 (meta->source_pts, GST_BUFFER_PTS (out));
  fail_unless_equals_int (meta->width, image_w);
  fail_unless (meta->prompt == NULL);
  fail_unless (GST_CLOCK_TIME_IS_VALID (meta->inference_time) &&
      meta->inference_time > 0);
  g_object_get (f2_element (h), "last-inference-time", &last, NULL);
  fail_unless_equals_uint64 (last, meta->inference_time);

  /* the frame data passes unchanged */
  {
    GstMapInfo a, b;

    fail_unless (gst_buffer_map (out, &a, GST_MAP_READ));
    fail_unless (gst_buffer_map (in, &b, GST_MAP_READ));
    fail_unless (a.size == b.size && memcmp (a.data, b.data, a.size) == 0);
    gst_buffer_unmap (out, &a);
    gst_buffer_unmap (in, &b);
  }

  /* one ROI meta per box, DL Streamer "detection" + "florence2" */
  while ((m = gst_buffer_iterate_meta_filtered (out, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;
    const GstFlorence2Region *r = &meta->regions[n_rois];
    GstStructure *det = gst_video_region_of_interest_meta_get_param (roi,
        "detection");
    GstStructure *f2 = gst_video_region_of_interest_meta_get_param (roi,
        "florence2");
    gdouble x_min, y_max;
    guint label_id;

    fail_unless (det != NULL && f2 != NULL);
    fail_unless (gst_structure_get_double (det, "x_min", &x_min));
    fail_unless (gst_structure_get_double (det, "y_max", &y_max));
    fail_unless (fabs (x_min - CLAMP (r->x / image_w, 0, 1)) < 1e-6);
    fail_unless (fabs (y_max - CLAMP ((r->y + r->h) / image_h, 0, 1)) < 1e-6);
    fail_unless_equals_string (gst_structure_get_string (det, "label"),
        r->label);
    fail_unless (gst_structure_get_uint (det, "label_id", &label_id));
    fail_unless_equals_int (label_id, r->label_id);
    fail_if (gst_structure_has_field (det, "confidence"));
    fail_unless_equals_string (gst_structure_get_string (f2, "task"), "<OD>");
    fail_unless_equals_string (gst_structure_get_string (f2, "phrase"),
        r->label);
    n_rois++;
  }
  fail_unless_equals_int (n_rois, meta->n_regions);

  /* the bus message carries the same result */
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT);
  fail_unless (msg != NULL, "no florence2-result message");
  s = gst_message_get_structure (msg);
  fail_unless (gst_structure_has_name (s, "florence2-result"));
  fail_unless_equals_string (gst_structure_get_string (s, "task"), "<OD>");
  json = gst_florence2_meta_to_json (meta, GST_BUFFER_PTS (out));
  fail_unless_equals_string (gst_structure_get_string (s, "json"), json);
  {
    guint64 ts, src_ts, t;

    fail_unless (gst_structure_get_uint64 (s, "timestamp", &ts));
    fail_unless (gst_structure_get_uint64 (s, "source-timestamp", &src_ts));
    fail_unless (gst_structure_get_uint64 (s, "inference-time", &t));
    fail_unless_equals_uint64 (ts, GST_BUFFER_PTS (out));
    fail_unless_equals_uint64 (src_ts, GST_BUFFER_PTS (out));
    fail_unless_equals_uint64 (t, meta->inference_time);
  }
  gst_message_unref (msg);

  /* aligned mode reports the inference time as latency */
  gst_harness_set_upstream_latency (h, 0);
  min_latency = gst_harness_query_latency (h);
  fail_unless (min_latency >= meta->inference_time,
      "latency %" GST_TIME_FORMAT " < inference time %" GST_TIME_FORMAT,
      GST_TIME_ARGS (min_latency), GST_TIME_ARGS (meta->inference_time));

  gst_buffer_unref (out);
  gst_bus_set_flushing (bus, TRUE);
  gst_harness_teardown (h);

  /* one JSON line per inference, the same object */
  fail_unless (g_file_get_contents (results, &contents, NULL, NULL));
  fail_unless (g_str_has_suffix (contents, "\n"));
  contents[strlen (contents) - 1] = '\0';
  fail_unless_equals_string (contents, json);
  g_free (contents);
  g_free (json);
  g_unlink (results);
  g_free (results);

  gst_buffer_unref (in);
  gst_object_unref (bus);
}

GST_END_TEST;

/* Packed RGB formats give exactly the RGB result. */
GST_START_TEST (test_packed_formats)
{
  static const GstVideoFormat formats[] = {
    GST_VIDEO_FORMAT_RGBx, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_RGBA,
    GST_VIDEO_FORMAT_BGRA,
  };
  GstVideoInfo info;
  const Florence2Output *ref = rgb_reference ();

  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    GstHarness *h = harness_new (NULL);
    GstBuffer *in = make_frame (formats[i], image_w, image_h, &info);
    GstBuffer *out;

    set_caps (h, &info);
    out = gst_harness_push_and_pull (h, stamp (in, 0));
    fail_unless (out != NULL);
    assert_meta_equals (out, ref, gst_video_format_to_string (formats[i]));
    gst_buffer_unref (out);
    gst_harness_teardown (h);
  }
}

GST_END_TEST;

/* NV12 and I420: the element gives the library's result for the same YUV
 * frame, and the preprocessed pixels are close to those of the RGB frame. */
GST_START_TEST (test_yuv_formats)
{
  static const GstVideoFormat formats[] = {
    GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420,
  };
  GstVideoInfo info;
  Florence2Output *ref;
  const float *rgb_px;
  gsize n;

  rgb_reference ();
  rgb_px = ref_rgb_pixels;
  n = ref_rgb_n_pixels;

  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    GstHarness *h = harness_new (NULL);
    GstBuffer *in = make_frame (formats[i], image_w, image_h, &info);
    GstBuffer *out;
    float *px;
    gsize n2;
    double sum = 0;

    ref = reference_run (in, &info, F2_TASK_OD, NULL);
    px = reference_pixels (&n2);
    fail_unless_equals_int (n, n2);
    for (gsize k = 0; k < n; k++)
      sum += fabs (px[k] - rgb_px[k]);
    /* normalised pixels span about 4.5; a few 8-bit levels are ~0.05 */
    fail_unless (sum / n < 0.05, "%s: mean |YUV - RGB| = %g after "
        "normalisation", gst_video_format_to_string (formats[i]), sum / n);
    g_free (px);

    set_caps (h, &info);
    out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 0));
    fail_unless (out != NULL);
    assert_meta_equals (out, ref, gst_video_format_to_string (formats[i]));
    gst_buffer_unref (out);
    gst_buffer_unref (in);
    gst_harness_teardown (h);
    florence2_output_free (ref);
  }
}

GST_END_TEST;

static GstBuffer *
push_pull_one (GstVideoFormat format, gint w, gint h, GstVideoInfo * info,
    GstBuffer ** in_out)
{
  GstHarness *hn = harness_new (NULL);
  GstBuffer *in = make_frame (format, w, h, info), *out;

  set_caps (hn, info);
  out = gst_harness_push_and_pull (hn, stamp (gst_buffer_copy (in), 0));
  fail_unless (out != NULL, "%dx%d %s: no output", w, h,
      gst_video_format_to_string (format));
  fail_unless (gst_buffer_get_florence2_meta (out) != NULL,
      "%dx%d %s: no meta", w, h, gst_video_format_to_string (format));
  gst_harness_teardown (hn);
  if (in_out)
    *in_out = in;
  else
    gst_buffer_unref (in);
  return out;
}

/* Tiny and odd frame sizes, and a padded stride described by a video meta. */
GST_START_TEST (test_odd_sizes_and_strides)
{
  GstVideoInfo info, padded;
  GstBuffer *in, *out, *tight_out, *pad_in;
  Florence2Output *ref;
  GstHarness *h;
  GstMapInfo src, dst;
  gsize offsets[GST_VIDEO_MAX_PLANES] = { 16 };
  gint strides[GST_VIDEO_MAX_PLANES] = { 3 * 3 + 23 };

  load_fixtures ();
  gst_buffer_unref (push_pull_one (GST_VIDEO_FORMAT_RGB, 1, 1, &info, NULL));
  gst_buffer_unref (push_pull_one (GST_VIDEO_FORMAT_I420, 3, 5, &info, NULL));
  gst_buffer_unref (push_pull_one (GST_VIDEO_FORMAT_NV12, 3, 5, &info, NULL));

  /* 3x5 RGB packed, against the library */
  tight_out = push_pull_one (GST_VIDEO_FORMAT_RGB, 3, 5, &info, &in);
  ref = reference_run (in, &info, F2_TASK_OD, NULL);
  assert_meta_equals (tight_out, ref, "3x5 RGB");
  florence2_output_free (ref);

  /* the same pixels with an offset and an odd stride: the same result */
  pad_in = gst_buffer_new_allocate (NULL, offsets[0] + strides[0] * 5, NULL);
  gst_buffer_memset (pad_in, 0, 0xa5, gst_buffer_get_size (pad_in));
  fail_unless (gst_buffer_map (in, &src, GST_MAP_READ));
  fail_unless (gst_buffer_map (pad_in, &dst, GST_MAP_WRITE));
  for (gint y = 0; y < 5; y++)
    memcpy (dst.data + offsets[0] + y * strides[0],
        src.data + y * GST_VIDEO_INFO_PLANE_STRIDE (&info, 0), 9);
  gst_buffer_unmap (pad_in, &dst);
  gst_buffer_unmap (in, &src);
  gst_buffer_add_video_meta_full (pad_in, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_FORMAT_RGB, 3, 5, 1, offsets, strides);
  padded = info;
  h = harness_new (NULL);
  set_caps (h, &padded);
  out = gst_harness_push_and_pull (h, stamp (pad_in, 0));
  fail_unless (out != NULL);
  assert_same_meta (out, tight_out);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  gst_buffer_unref (tight_out);
  gst_buffer_unref (in);

  /* one large frame */
  gst_buffer_unref (push_pull_one (GST_VIDEO_FORMAT_RGBx, 4096, 2160, &info,
          NULL));
}

GST_END_TEST;

/* task, prompt and inference-interval change while PLAYING and apply to
 * the next inference; a task/prompt pair that does not fit warns and lets
 * frames pass. */
GST_START_TEST (test_change_while_playing)
{
  GstHarness *h = harness_new ("inference-interval=1");
  GstBus *bus = attach_bus (h);
  GstVideoInfo info;
  GstBuffer *in, *out;
  GstFlorence2Meta *meta;
  GstMessage *msg;
  GError *error = NULL;
  Florence2Output *ref;

  in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  set_caps (h, &info);
  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 0));
  fail_unless_equals_string (gst_buffer_get_florence2_meta (out)->task,
      "<OD>");
  gst_buffer_unref (out);

  g_object_set (f2_element (h), "prompt", "a red circle", NULL);
  gst_util_set_object_arg (G_OBJECT (f2_element (h)), "task",
      "caption-to-phrase-grounding");
  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 1));
  meta = gst_buffer_get_florence2_meta (out);
  fail_unless (meta != NULL);
  fail_unless_equals_string (meta->task, "<CAPTION_TO_PHRASE_GROUNDING>");
  fail_unless_equals_string (meta->prompt, "a red circle");
  ref = reference_run (in, &info, F2_TASK_CAPTION_TO_PHRASE_GROUNDING,
      "a red circle");
  assert_meta_equals (out, ref, "grounding");
  florence2_output_free (ref);
  gst_buffer_unref (out);

  /* caption takes no text: a warning, and frames pass without results */
  gst_util_set_object_arg (G_OBJECT (f2_element (h)), "task", "caption");
  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 2));
  fail_unless (out != NULL);
  fail_unless (gst_buffer_get_florence2_meta (out) == NULL);
  gst_buffer_unref (out);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning for caption with a prompt");
  gst_message_parse_warning (msg, &error, NULL);
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_SETTINGS));
  GST_INFO ("warning: %s", error->message);
  g_clear_error (&error);
  gst_message_unref (msg);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg == NULL, "a bad prompt while playing must not be fatal");

  /* fixed: results again, every 2nd frame */
  g_object_set (f2_element (h), "prompt", NULL, "inference-interval", 2, NULL);
  for (guint i = 0; i < 3; i++) {
    out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 3 + i));
    meta = gst_buffer_get_florence2_meta (out);
    fail_unless ((meta != NULL) == (i != 1), "frame %u", i);
    if (meta != NULL) {
      fail_unless_equals_string (meta->task, "<CAPTION>");
      fail_unless (meta->text != NULL);
    }
    gst_buffer_unref (out);
  }

  gst_buffer_unref (in);
  teardown_with_bus (h, bus);
}

GST_END_TEST;

/* Records what reaches the harness's sink pad, in order. */
static GstPadProbeReturn
record_order (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  GString *order = user_data;

  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER)
    g_string_append (order, "B");
  else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) ==
      GST_EVENT_CUSTOM_DOWNSTREAM)
    g_string_append (order, "C");
  else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_EOS)
    g_string_append (order, "E");
  return GST_PAD_PROBE_OK;
}

/* Buffers and serialized events leave in the order they came, with EOS
 * pushed while an inference runs. */
GST_START_TEST (test_order_and_eos_during_inference)
{
  GstHarness *h = harness_new ("inference-interval=2");
  GString *order = g_string_new (NULL);
  GstVideoInfo info;
  GstBuffer *in, *out;
  GstEvent *ev;

  in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  set_caps (h, &info);
  gst_pad_add_probe (h->sinkpad, GST_PAD_PROBE_TYPE_BUFFER |
      GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, record_order, order, NULL);

  /* frame 0 is inferred, frame 1 is not, frame 2 is inferred */
  fail_unless_equals_int (gst_harness_push (h, stamp (gst_buffer_copy (in),
              0)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h,
          gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
              gst_structure_new_empty ("marker"))));
  fail_unless_equals_int (gst_harness_push (h, stamp (gst_buffer_copy (in),
              1)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (h, stamp (gst_buffer_copy (in),
              2)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  for (guint i = 0; i < 3; i++) {
    out = gst_harness_pull (h);
    fail_unless (out != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / 30);
    fail_unless ((gst_buffer_get_florence2_meta (out) != NULL) == (i != 1));
    gst_buffer_unref (out);
  }
  /* EOS comes after the last frame, which waited for its inference */
  while ((ev = gst_harness_pull_event (h)) != NULL) {
    gboolean eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;

    gst_event_unref (ev);
    if (eos)
      break;
  }
  fail_unless_equals_string (order->str, "BCBBE");

  g_string_free (order, TRUE);
  gst_buffer_unref (in);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* skip-when-busy: frames that arrive during an inference pass without one,
 * still in order; the first frame after it is inferred again. */
GST_START_TEST (test_skip_when_busy)
{
  GstHarness *h = harness_new ("skip-when-busy=true");
  GstVideoInfo info;
  GstBuffer *in, *out;

  in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  set_caps (h, &info);
  /* frame 0 starts an inference that takes seconds; 1 and 2 come during it */
  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int (gst_harness_push (h, stamp (gst_buffer_copy (in),
                i)), GST_FLOW_OK);
  for (guint i = 0; i < 3; i++) {
    out = gst_harness_pull (h);
    fail_unless (out != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * GST_SECOND / 30);
    fail_unless ((gst_buffer_get_florence2_meta (out) != NULL) == (i == 0),
        "frame %u", i);
    gst_buffer_unref (out);
  }
  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 3));
  fail_unless (gst_buffer_get_florence2_meta (out) != NULL);
  gst_buffer_unref (out);
  gst_buffer_unref (in);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* A flush while an inference runs drops the frame at once and forgets the
 * result; the next frame gets its own. */
GST_START_TEST (test_flush_during_inference)
{
  GstHarness *h = harness_new (NULL);
  GstVideoInfo info;
  GstBuffer *in, *out;
  GstSegment segment;
  GstFlorence2Meta *meta;

  in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  set_caps (h, &info);
  fail_unless_equals_int (gst_harness_push (h, stamp (gst_buffer_copy (in),
              0)), GST_FLOW_OK);
  /* the worker is waiting for the inference of frame 0 now (or soon) */
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  /* the frame of before the flush never comes out */
  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 7));
  fail_unless (out != NULL);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 7 * GST_SECOND / 30);
  meta = gst_buffer_get_florence2_meta (out);
  fail_unless (meta != NULL);
  fail_unless_equals_uint64 (meta->source_pts, 7 * GST_SECOND / 30);
  gst_buffer_unref (out);
  fail_unless_equals_int (gst_harness_buffers_in_queue (h), 0);

  /* flush while idle, then EOS with nothing queued */
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (h, gst_event_new_flush_stop (TRUE)));
  fail_unless (gst_harness_push_event (h, gst_event_new_segment (&segment)));
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));

  gst_buffer_unref (in);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* low-latency: frames leave at once; the result rides on a later frame,
 * marked with the PTS of the frame it was computed on. */
GST_START_TEST (test_low_latency)
{
  GstHarness *h = harness_new ("latency-mode=low-latency");
  GstVideoInfo info;
  GstBuffer *in, *out;
  GstFlorence2Meta *meta = NULL;
  const Florence2Output *ref = rgb_reference ();
  guint i;
  gchar *json;
  JsonParser *parser = json_parser_new ();
  JsonObject *f2;

  in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  set_caps (h, &info);

  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 0));
  fail_unless (gst_buffer_get_florence2_meta (out) == NULL);
  gst_buffer_unref (out);
  /* later frames pass at once, until one carries frame 0's result */
  for (i = 1; i < 600 && meta == NULL; i++) {
    g_usleep (100 * 1000);
    out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), i));
    fail_unless (out != NULL);
    meta = gst_buffer_get_florence2_meta (out);
    if (meta == NULL)
      gst_buffer_unref (out);
  }
  fail_unless (meta != NULL, "no result after a minute");
  fail_unless_equals_uint64 (meta->source_pts, 0);
  fail_unless (GST_BUFFER_PTS (out) > 0);
  assert_meta_equals (out, ref, "low-latency");
  json = gst_florence2_meta_to_json (meta, GST_BUFFER_PTS (out));
  fail_unless (json_parser_load_from_data (parser, json, -1, NULL));
  f2 = json_object_get_object_member (json_node_get_object
      (json_parser_get_root (parser)), "florence2");
  fail_unless_equals_int64 (json_object_get_int_member (f2, "latency_ns"),
      GST_BUFFER_PTS (out));
  g_free (json);
  g_object_unref (parser);
  gst_buffer_unref (out);

  /* EOS with an inference running finishes cleanly */
  fail_unless_equals_int (gst_harness_push (h, stamp (gst_buffer_copy (in),
              i + 1)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  out = gst_harness_pull (h);
  gst_buffer_unref (out);

  gst_buffer_unref (in);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* Two elements on one shared model, each with its own context, fed from
 * two threads at once: both frames get the library's result. */
typedef struct
{
  GstHarness *h;
  GstBuffer *in;
  GstBuffer *out;
} SharedStream;

static gpointer
shared_stream_push (gpointer data)
{
  SharedStream *st = data;

  st->out = gst_harness_push_and_pull (st->h, st->in);
  return NULL;
}

GST_START_TEST (test_shared_model_streams)
{
  const Florence2Output *ref = rgb_reference ();
  SharedStream streams[2];
  GThread *threads[2];
  GstVideoInfo info;
  GstBuffer *frame;

  load_fixtures ();
  frame = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  for (guint i = 0; i < 2; i++) {
    streams[i].h = harness_new (NULL);
    set_caps (streams[i].h, &info);
    streams[i].in = stamp (gst_buffer_copy (frame), i);
  }
  for (guint round = 0; round < 3; round++) {
    for (guint i = 0; i < 2; i++) {
      if (round > 0)
        streams[i].in = stamp (gst_buffer_copy (frame), round * 2 + i);
      threads[i] = g_thread_new ("stream", shared_stream_push, &streams[i]);
    }
    for (guint i = 0; i < 2; i++) {
      g_thread_join (threads[i]);
      fail_unless (streams[i].out != NULL);
      assert_meta_equals (streams[i].out, ref, "shared model");
      gst_buffer_unref (streams[i].out);
    }
  }
  for (guint i = 0; i < 2; i++)
    gst_harness_teardown (streams[i].h);
  gst_buffer_unref (frame);
}

GST_END_TEST;

/* ------------------------------------------- batches across elements */

/* Long enough that a frame waiting alone for its batch is told apart from
 * one that runs at once (a tiny-model inference takes well under a
 * second on the cpu backend). */
#define BATCH_WAIT (3 * GST_SECOND)

/* One stream of the batch tests: an element on the shared model, its
 * frame, and the library's result for that frame run alone. */
typedef struct
{
  GstHarness *h;
  GstBuffer *frame;
  GstVideoInfo info;
  const Florence2Output *ref;
  Florence2Output *own_ref;
  GstBuffer *in, *out;          /* of the push thread */
} BatchStream;

/* @st: an element with batch-size @size and batch-timeout @timeout running
 * @task on a @format frame of @w x @h (the golden image at its size), with
 * the @more settings (or NULL). */
static void
batch_stream_init (BatchStream * st, guint size, GstClockTime timeout,
    F2Task task, GstVideoFormat format, gint w, gint h, const gchar * more)
{
  gchar *extra = g_strdup_printf ("batch-size=%u batch-timeout=%"
      G_GUINT64_FORMAT " task=%s %s", size, timeout, f2_task_info (task)->nick,
      more ? more : "");

  memset (st, 0, sizeof (*st));
  st->h = harness_new (extra);
  g_free (extra);
  st->frame = make_frame (format, w, h, &st->info);
  if (task == F2_TASK_OD && format == GST_VIDEO_FORMAT_RGB && w == image_w
      && h == image_h)
    st->ref = rgb_reference ();
  else
    st->ref = st->own_ref = reference_run (st->frame, &st->info, task, NULL);
  set_caps (st->h, &st->info);
}

static void
batch_stream_clear (BatchStream * st)
{
  gst_harness_teardown (st->h);
  gst_buffer_unref (st->frame);
  if (st->own_ref != NULL)
    florence2_output_free (st->own_ref);
}

static gpointer
batch_stream_push (gpointer data)
{
  BatchStream *st = data;

  st->out = gst_harness_push_and_pull (st->h, st->in);
  return NULL;
}

/* The output of @st for frame @index carries the result of that frame run
 * alone; gives its inference time (with the wait for the batch). */
static GstClockTime
check_batch_output (BatchStream * st, GstBuffer * out, guint index,
    const gchar * what)
{
  GstFlorence2Meta *meta;
  GstClockTime t;

  fail_unless (out != NULL, "%s: no frame", what);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), index * GST_SECOND / 30);
  assert_meta_equals (out, st->ref, what);
  meta = gst_buffer_get_florence2_meta (out);
  fail_unless_equals_uint64 (meta->source_pts, GST_BUFFER_PTS (out));
  t = meta->inference_time;
  gst_buffer_unref (out);
  return t;
}

/* Frames @from .. @from + @n - 1 of @st into its element, at once. */
static void
push_stamped (BatchStream * st, guint from, guint n)
{
  for (guint i = from; i < from + n; i++)
    fail_unless_equals_int (gst_harness_push (st->h,
            stamp (gst_buffer_copy (st->frame), i)), GST_FLOW_OK);
}

/* @out is frame @index, passed without a result (@why says why it has none). */
static void
check_no_result (GstBuffer * out, guint index, const gchar * why)
{
  fail_unless (out != NULL, "frame %u: no frame", index);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), index * GST_SECOND / 30);
  fail_unless (gst_buffer_get_florence2_meta (out) == NULL,
      "frame %u %s, yet has a result", index, why);
  gst_buffer_unref (out);
}

/* Frame @index into each of @n streams at once, from a thread per stream;
 * each output must carry its own frame's result. Gives the longest
 * inference time. */
static GstClockTime
push_batch_round (BatchStream * streams, guint n, guint index)
{
  GThread *threads[FLORENCE2_MAX_BATCH];
  GstClockTime longest = 0;

  for (guint i = 0; i < n; i++) {
    streams[i].in = stamp (gst_buffer_copy (streams[i].frame), index);
    threads[i] = g_thread_new ("stream", batch_stream_push, &streams[i]);
  }
  for (guint i = 0; i < n; i++) {
    gchar *what = g_strdup_printf ("stream %u, frame %u", i, index);
    GstClockTime t;

    g_thread_join (threads[i]);
    t = check_batch_output (&streams[i], streams[i].out, index, what);
    longest = MAX (longest, t);
    g_free (what);
  }
  return longest;
}

/* How long one frame takes alone on the test device. */
static GstClockTime
time_one_inference (void)
{
  GstHarness *h = harness_new (NULL);
  GstVideoInfo info;
  GstBuffer *in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  GstBuffer *out;
  GstClockTime t;

  set_caps (h, &info);
  out = gst_harness_push_and_pull (h, stamp (in, 0));
  fail_unless (out != NULL && gst_buffer_get_florence2_meta (out) != NULL);
  t = gst_buffer_get_florence2_meta (out)->inference_time;
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  return t;
}

/* Whether a batch of three runs well within @timeout on the test device,
 * so that a full batch is told apart from a timed-out one by its time:
 * true of the cpu backend and GPUs, not of the reference backend. */
static gboolean
batch_fills_within (GstClockTime timeout)
{
  GstClockTime alone = time_one_inference ();

  if (3 * alone + 2 * GST_SECOND < timeout)
    return TRUE;
  g_printerr ("one frame takes %" GST_TIME_FORMAT " here: too slow to "
      "tell a full batch from a timed-out one; only the results are "
      "checked\n", GST_TIME_ARGS (alone));
  return FALSE;
}

/* Three elements on one model with batch-size 3, fed at once from three
 * threads: their frames (different tasks, formats and sizes) run as one
 * batch, which starts when it is full (long before the 10 s timeout), and
 * each frame gets exactly the result the library gives for it alone. */
GST_START_TEST (test_batched_streams)
{
  const GstClockTime timeout = 10 * GST_SECOND;
  gboolean timed;
  BatchStream st[3];

  load_fixtures ();
  timed = batch_fills_within (timeout);
  batch_stream_init (&st[0], 3, timeout, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, NULL);
  batch_stream_init (&st[1], 3, timeout, F2_TASK_CAPTION,
      GST_VIDEO_FORMAT_I420, image_w, image_h, NULL);
  batch_stream_init (&st[2], 3, timeout, F2_TASK_OD, GST_VIDEO_FORMAT_BGRx,
      320, 240, NULL);
  fail_unless (st[0].ref->result->n_regions > 0 &&
      st[1].ref->result->text != NULL, "the references would compare nothing");
  for (guint round = 0; round < 2; round++) {
    GstClockTime longest = push_batch_round (st, 3, round);

    fail_unless (!timed || longest < timeout, "round %u: a frame waited %"
        GST_TIME_FORMAT ": the batch did not start when it was full", round,
        GST_TIME_ARGS (longest));
  }
  for (guint i = 0; i < 3; i++)
    batch_stream_clear (&st[i]);
}

GST_END_TEST;

/* Two elements batch together (batch-size 2); one of them stops: the other
 * goes on, each of its frames running alone once it has waited its
 * batch-timeout. */
GST_START_TEST (test_batch_stream_leaves)
{
  BatchStream st[2];

  load_fixtures ();
  for (guint i = 0; i < 2; i++)
    batch_stream_init (&st[i], 2, BATCH_WAIT, F2_TASK_OD,
        GST_VIDEO_FORMAT_RGB, image_w, image_h, NULL);
  push_batch_round (st, 2, 0);

  fail_unless_equals_int (gst_element_set_state (st[1].h->element,
          GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  for (guint i = 1; i < 3; i++) {
    GstBuffer *out = gst_harness_push_and_pull (st[0].h,
        stamp (gst_buffer_copy (st[0].frame), i));
    GstClockTime t = check_batch_output (&st[0], out, i, "left alone");

    fail_unless (t >= BATCH_WAIT, "frame %u took %" GST_TIME_FORMAT ": a "
        "frame alone with batch-size 2 must wait its batch-timeout", i,
        GST_TIME_ARGS (t));
  }
  for (guint i = 0; i < 2; i++)
    batch_stream_clear (&st[i]);
}

GST_END_TEST;

/* A flush and an EOS on one of two batching streams: the other stream's
 * frames keep their results, and the flushed one's results are its own. */
GST_START_TEST (test_batch_flush_and_eos)
{
  BatchStream a, b;
  GstSegment segment;
  GstBuffer *out;
  GstEvent *ev;
  gboolean eos = FALSE;

  load_fixtures ();
  batch_stream_init (&a, 2, BATCH_WAIT, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, NULL);
  batch_stream_init (&b, 2, BATCH_WAIT, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, NULL);

  /* a's frame is (or soon will be) in a batch with b's when a flushes */
  fail_unless_equals_int (gst_harness_push (a.h,
          stamp (gst_buffer_copy (a.frame), 0)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (b.h,
          stamp (gst_buffer_copy (b.frame), 0)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (a.h, gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_segment (&segment)));
  check_batch_output (&b, gst_harness_pull (b.h), 0, "b beside a's flush");
  /* a's frame of before the flush never comes out; its next has its own */
  out = gst_harness_push_and_pull (a.h, stamp (gst_buffer_copy (a.frame), 5));
  check_batch_output (&a, out, 5, "a after its flush");
  fail_unless_equals_int (gst_harness_buffers_in_queue (a.h), 0);

  /* a ends its stream while b's frame waits for a batch */
  fail_unless_equals_int (gst_harness_push (b.h,
          stamp (gst_buffer_copy (b.frame), 1)), GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_push (a.h,
          stamp (gst_buffer_copy (a.frame), 6)), GST_FLOW_OK);
  fail_unless (gst_harness_push_event (a.h, gst_event_new_eos ()));
  check_batch_output (&a, gst_harness_pull (a.h), 6, "a's last frame");
  check_batch_output (&b, gst_harness_pull (b.h), 1, "b beside a's EOS");
  while (!eos && (ev = gst_harness_pull_event (a.h)) != NULL) {
    eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
  }
  fail_unless (eos, "a's EOS did not come out");

  /* b goes on alone: each frame waits the timeout, then runs */
  out = gst_harness_push_and_pull (b.h, stamp (gst_buffer_copy (b.frame), 2));
  fail_unless (check_batch_output (&b, out, 2, "b alone") >= BATCH_WAIT);

  batch_stream_clear (&a);
  batch_stream_clear (&b);
}

GST_END_TEST;

/* One element with batch-size 3 and frames queued: its own frames run as
 * one batch, which starts when full (long before the 10 s timeout); with
 * inference-interval 2 the due frames batch across the frames between
 * them, which pass in order without results. */
GST_START_TEST (test_batch_own_frames)
{
  const GstClockTime timeout = 10 * GST_SECOND;
  gboolean timed;
  BatchStream st;

  load_fixtures ();
  timed = batch_fills_within (timeout);
  batch_stream_init (&st, 3, timeout, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, NULL);
  push_stamped (&st, 0, 3);
  for (guint i = 0; i < 3; i++) {
    GstClockTime t = check_batch_output (&st, gst_harness_pull (st.h), i,
        "own frames");

    fail_unless (!timed || t < timeout, "frame %u waited %" GST_TIME_FORMAT
        ": the element's queued frames did not batch", i, GST_TIME_ARGS (t));
  }
  batch_stream_clear (&st);

  batch_stream_init (&st, 3, timeout, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, "inference-interval=2");
  push_stamped (&st, 0, 6);
  for (guint i = 0; i < 6; i++) {
    GstBuffer *out = gst_harness_pull (st.h);

    fail_unless (out != NULL);
    if (i % 2 == 0) {
      GstClockTime t = check_batch_output (&st, out, i, "every other frame");

      fail_unless (!timed || t < timeout, "frame %u waited %"
          GST_TIME_FORMAT ": the due frames did not batch", i,
          GST_TIME_ARGS (t));
    } else {
      check_no_result (out, i, "was not due");
    }
  }
  batch_stream_clear (&st);
}

GST_END_TEST;

/* skip-when-busy with batch-size 2: the first two frames are due and
 * batch; the element is busy with them, so the four after them pass
 * without results, in order behind them. */
GST_START_TEST (test_batch_skip_when_busy)
{
  BatchStream st;

  load_fixtures ();
  batch_stream_init (&st, 2, BATCH_WAIT, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, "skip-when-busy=true");
  push_stamped (&st, 0, 6);
  for (guint i = 0; i < 6; i++) {
    GstBuffer *out = gst_harness_pull (st.h);

    if (i < 2) {
      fail_unless (check_batch_output (&st, out, i, "due") < BATCH_WAIT,
          "frame %u waited its batch-timeout: the two did not batch", i);
      continue;
    }
    check_no_result (out, i, "came while two ran");
  }
  batch_stream_clear (&st);
}

GST_END_TEST;

static gpointer
push_frames (gpointer data)
{
  BatchStream *st = data;

  push_stamped (st, 0, 41);
  return NULL;
}

/* With inference-interval 40 the next due frame is 40 frames on: more than
 * an element holds in memory (32), so frame 0 runs alone after its
 * batch-timeout instead of holding 40 frames to batch with frame 40. All
 * 41 frames leave in order. */
GST_START_TEST (test_batch_held_frames_limit)
{
  BatchStream st;
  GThread *pusher;

  load_fixtures ();
  batch_stream_init (&st, 2, BATCH_WAIT, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, "inference-interval=40");
  pusher = g_thread_new ("push", push_frames, &st);
  for (guint i = 0; i < 41; i++) {
    GstBuffer *out = gst_harness_pull (st.h);

    if (i == 0) {
      fail_unless (check_batch_output (&st, out, i, "first") >= BATCH_WAIT,
          "frame 0 did not wait its batch-timeout: 40 frames were held");
    } else if (i == 40) {
      check_batch_output (&st, out, i, "second due frame");
    } else {
      check_no_result (out, i, "was not due");
    }
  }
  g_thread_join (pusher);
  batch_stream_clear (&st);
}

GST_END_TEST;

/* A flush while an element's own frames run in a batch: they never come
 * out, and the frames after the flush batch and get their own results. */
GST_START_TEST (test_batch_own_frames_flush)
{
  BatchStream st;
  GstSegment segment;

  load_fixtures ();
  batch_stream_init (&st, 2, BATCH_WAIT, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, NULL);
  push_stamped (&st, 0, 2);
  fail_unless (gst_harness_push_event (st.h, gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (st.h,
          gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (st.h,
          gst_event_new_segment (&segment)));
  push_stamped (&st, 5, 2);
  for (guint i = 5; i < 7; i++)
    check_batch_output (&st, gst_harness_pull (st.h), i, "after the flush");
  fail_unless_equals_int (gst_harness_buffers_in_queue (st.h), 0);
  batch_stream_clear (&st);
}

GST_END_TEST;

/* Low-latency mode with batch-size 2: two frames start their inferences
 * at once and batch; their results ride on later frames, one per frame,
 * in the order of their frames. */
GST_START_TEST (test_batch_low_latency)
{
  const GstClockTime timeout = 10 * GST_SECOND;
  gboolean timed;
  BatchStream st;
  guint seen = 0, index = 0;
  gint64 give_up;

  load_fixtures ();
  timed = batch_fills_within (timeout);
  batch_stream_init (&st, 2, timeout, F2_TASK_OD, GST_VIDEO_FORMAT_RGB,
      image_w, image_h, "latency-mode=low-latency");
  give_up = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
  while (seen < 2) {
    GstBuffer *out = gst_harness_push_and_pull (st.h,
        stamp (gst_buffer_copy (st.frame), index));
    GstFlorence2Meta *meta;

    fail_unless (out != NULL);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), index * GST_SECOND / 30);
    meta = gst_buffer_get_florence2_meta (out);
    if (meta != NULL) {
      fail_unless_equals_uint64 (meta->source_pts, seen * GST_SECOND / 30);
      fail_unless (!timed || meta->inference_time < timeout, "frame %u "
          "waited %" GST_TIME_FORMAT ": the two frames did not batch", seen,
          GST_TIME_ARGS (meta->inference_time));
      assert_meta_equals (out, st.ref, "low-latency batch");
      seen++;
    }
    gst_buffer_unref (out);
    index++;
    fail_unless (g_get_monotonic_time () < give_up, "no results after %u "
        "frames", index);
    g_usleep (20 * 1000);
  }
  batch_stream_clear (&st);
}

GST_END_TEST;

/* batch-size is 1..FLORENCE2_MAX_BATCH and batch-timeout 0..10 s, both
 * settable only up to READY; values out of range are refused and leave
 * the property as it was. */
GST_START_TEST (test_batch_properties)
{
  GstElement *e = gst_element_factory_make ("florence2", NULL);
  GParamSpec *pspec;
  GParamSpecUInt *size;
  GParamSpecUInt64 *timeout;
  guint n;
  guint64 ns;

  fail_unless (e != NULL);
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (e), "batch-size");
  fail_unless (pspec != NULL && G_IS_PARAM_SPEC_UINT (pspec));
  size = G_PARAM_SPEC_UINT (pspec);
  fail_unless_equals_int (size->minimum, 1);
  fail_unless_equals_int (size->maximum, FLORENCE2_MAX_BATCH);
  fail_unless_equals_int (size->default_value, 1);
  fail_unless (pspec->flags & GST_PARAM_MUTABLE_READY);
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (e),
      "batch-timeout");
  fail_unless (pspec != NULL && G_IS_PARAM_SPEC_UINT64 (pspec));
  timeout = G_PARAM_SPEC_UINT64 (pspec);
  fail_unless_equals_uint64 (timeout->minimum, 0);
  fail_unless_equals_uint64 (timeout->maximum, 10 * GST_SECOND);
  fail_unless_equals_uint64 (timeout->default_value, 5 * GST_MSECOND);
  fail_unless (pspec->flags & GST_PARAM_MUTABLE_READY);

  /* in range: taken */
  gst_util_set_object_arg (G_OBJECT (e), "batch-size", "16");
  gst_util_set_object_arg (G_OBJECT (e), "batch-timeout", "10000000000");
  g_object_get (e, "batch-size", &n, "batch-timeout", &ns, NULL);
  fail_unless_equals_int (n, 16);
  fail_unless_equals_uint64 (ns, 10 * GST_SECOND);
  /* out of range: GObject warns and keeps the value */
  ASSERT_WARNING (gst_util_set_object_arg (G_OBJECT (e), "batch-size", "17"));
  ASSERT_WARNING (gst_util_set_object_arg (G_OBJECT (e), "batch-size", "0"));
  ASSERT_WARNING (gst_util_set_object_arg (G_OBJECT (e), "batch-timeout",
          "10000000001"));
  g_object_get (e, "batch-size", &n, "batch-timeout", &ns, NULL);
  fail_unless_equals_int (n, 16);
  fail_unless_equals_uint64 (ns, 10 * GST_SECOND);
  gst_object_unref (e);
}

GST_END_TEST;

/* In aligned mode the LATENCY query adds batch-timeout when batch-size > 1,
 * before the first inference and on top of the inference time after it;
 * in low-latency mode frames never wait for a batch. */
GST_START_TEST (test_batch_latency)
{
  GstHarness *alone = harness_new (NULL);
  GstHarness *batched = harness_new ("batch-size=2 batch-timeout=3000000000");
  GstHarness *low = harness_new ("batch-size=2 batch-timeout=3000000000 "
      "latency-mode=low-latency");
  GstHarness *all[] = { alone, batched, low };
  GstClockTime base, latency;
  GstVideoInfo info;
  GstBuffer *frame, *out;
  GstFlorence2Meta *meta;

  frame = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  for (guint i = 0; i < G_N_ELEMENTS (all); i++) {
    set_caps (all[i], &info);
    gst_harness_set_upstream_latency (all[i], 10 * GST_MSECOND);
  }
  base = gst_harness_query_latency (alone);
  fail_unless_equals_uint64 (base, 10 * GST_MSECOND);
  latency = gst_harness_query_latency (batched);
  fail_unless (latency >= base + BATCH_WAIT, "batched latency %"
      GST_TIME_FORMAT " lacks the batch-timeout", GST_TIME_ARGS (latency));
  fail_unless_equals_uint64 (gst_harness_query_latency (low), base);

  /* a frame alone waits the timeout; the latency covers that and more */
  out = gst_harness_push_and_pull (batched, stamp (gst_buffer_copy (frame), 0));
  meta = gst_buffer_get_florence2_meta (out);
  fail_unless (meta != NULL);
  fail_unless (meta->inference_time >= BATCH_WAIT);
  latency = gst_harness_query_latency (batched);
  fail_unless (latency >= base + meta->inference_time + BATCH_WAIT,
      "latency %" GST_TIME_FORMAT " after an inference of %" GST_TIME_FORMAT,
      GST_TIME_ARGS (latency), GST_TIME_ARGS (meta->inference_time));
  gst_buffer_unref (out);

  gst_buffer_unref (frame);
  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    gst_harness_teardown (all[i]);
}

GST_END_TEST;

/* 100 NULL -> PLAYING -> NULL cycles; a second element keeps the shared
 * model loaded, so each start only takes a reference. Then a few real
 * pipeline runs. */
GST_START_TEST (test_state_cycles)
{
  GstElement *holder, *element, *pipeline;
  gchar *desc;
  gint64 start;

  load_fixtures ();
  holder = gst_element_factory_make ("florence2", NULL);
  element = gst_element_factory_make ("florence2", NULL);
  g_object_set (holder, "model", model_dir, "device", test_device,
      "num-beams", 1,
      NULL);
  g_object_set (element, "model", model_dir, "device", test_device,
      "num-beams", 1,
      NULL);
  fail_unless_equals_int (gst_element_set_state (holder, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  {
    gchar *name = NULL;

    /* the device the element's device string stands for */
    F2Backend *want = f2_backend_open (test_device, F2_PRECISION_AUTO, 0, NULL);

    fail_unless (want != NULL);
    g_object_get (holder, "device-name", &name, NULL);
    fail_unless_equals_string (name, f2_backend_name (want));
    f2_backend_free (want);
    g_free (name);
  }

  start = g_get_monotonic_time ();
  for (guint i = 0; i < 100; i++) {
    fail_unless_equals_int (gst_element_set_state (element,
            GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_element_set_state (element, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
  }
  GST_INFO ("100 cycles in %.1f ms",
      (g_get_monotonic_time () - start) / 1000.0);

  /* real pipelines, with frames: videotestsrc + videoconvert */
  desc = g_strdup_printf ("videotestsrc num-buffers=2 ! video/x-raw,width=64,"
      "height=48 ! videoconvert ! florence2 model=\"%s\" device=\"%s\" "
      "num-beams=1 max-new-tokens=%d inference-interval=2 ! fakesink sync=false",
      model_dir, test_device, MAX_NEW_TOKENS);
  pipeline = gst_parse_launch (desc, NULL);
  fail_unless (pipeline != NULL);
  for (guint i = 0; i < 3; i++) {
    GstMessage *msg;

    fail_unless (gst_element_set_state (pipeline, GST_STATE_PLAYING) !=
        GST_STATE_CHANGE_FAILURE);
    msg = gst_bus_timed_pop_filtered (GST_ELEMENT_BUS (pipeline),
        120 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    fail_unless (msg != NULL && GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS,
        "run %u did not reach EOS", i);
    gst_message_unref (msg);
    /* stop in the middle of nothing, and once right after starting */
    fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
  }
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (pipeline);
  g_free (desc);

  gst_element_set_state (holder, GST_STATE_NULL);
  gst_object_unref (element);
  gst_object_unref (holder);
}

GST_END_TEST;

/* Going to PAUSED with @props fails with an error of @domain/@code. */
static void
expect_start_error (const gchar * props, GQuark domain, gint code)
{
  GError *error = NULL;
  GstElement *element;
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  gchar *desc = g_strdup_printf ("florence2 %s", props);

  element = gst_parse_launch (desc, &error);
  fail_unless (element != NULL && error == NULL, "%s: %s", desc,
      error ? error->message : "");
  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "%s: no error message", desc);
  gst_message_parse_error (msg, &error, NULL);
  fail_unless (g_error_matches (error, domain, code),
      "%s: got %s %d: %s", desc, g_quark_to_string (error->domain),
      error->code, error->message);
  GST_INFO ("%s -> %s", desc, error->message);
  g_clear_error (&error);
  gst_message_unref (msg);
  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (element);
  gst_object_unref (bus);
  g_free (desc);
}

/* A broken copy of the golden model in a new directory under @tmp: the
 * JSON files with @file's first @from replaced by @to (NULL: unchanged),
 * the weights linked, or with element 100 of the LM head made NaN. */
static gchar *
broken_model (const gchar * tmp, const gchar * name, const gchar * file,
    const gchar * from, const gchar * to, gboolean nan_weights)
{
  static const gchar *const files[] = { "config.json",
    "preprocessor_config.json", "tokenizer.json", "vocab.json"
  };
  gchar *dir = g_build_filename (tmp, name, NULL);
  gchar *src, *dst, *text;
  gsize len;

  fail_unless (g_mkdir (dir, 0700) == 0);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    src = g_build_filename (model_dir, files[i], NULL);
    dst = g_build_filename (dir, files[i], NULL);
    fail_unless (g_file_get_contents (src, &text, &len, NULL));
    if (file != NULL && g_str_equal (file, files[i]) && from != NULL) {
      gchar *at = strstr (text, from);
      GString *edited;
      fail_unless (at != NULL, "%s lacks %s", files[i], from);
      edited = g_string_new_len (text, at - text);
      g_string_append (edited, to);
      g_string_append (edited, at + strlen (from));
      g_free (text);
      len = edited->len;
      text = g_string_free (edited, FALSE);
    }
    fail_unless (g_file_set_contents (dst, text, len, NULL));
    g_free (text);
    g_free (src);
    g_free (dst);
  }
  src = g_build_filename (model_dir, "model.safetensors", NULL);
  dst = g_build_filename (dir, "model.safetensors", NULL);
  if (nan_weights) {
    /* the header gives the tensor's offsets in the data area */
    JsonParser *parser = json_parser_new ();
    JsonArray *offsets;
    guint64 header_len = 0;
    const guint32 nan = 0x7fc00000;
    fail_unless (g_file_get_contents (src, &text, &len, NULL));
    for (int i = 7; i >= 0; i--)
      header_len = (header_len << 8) | (guint8) text[i];
    fail_unless (json_parser_load_from_data (parser, text + 8, header_len, NULL));
    offsets = json_object_get_array_member (json_object_get_object_member
        (json_node_get_object (json_parser_get_root (parser)),
            "language_model.lm_head.weight"), "data_offsets");
    memcpy (text + 8 + header_len + json_array_get_int_element (offsets, 0)
        + 4 * 100, &nan, 4);
    fail_unless (g_file_set_contents (dst, text, len, NULL));
    g_object_unref (parser);
    g_free (text);
  } else {
    fail_unless (symlink (src, dst) == 0);
  }
  g_free (src);
  g_free (dst);
  return dir;
}

/* Going to PAUSED with the model in @dir fails with @domain/@code and a
 * message that holds @want. */
static void
expect_model_error (const gchar * dir, GQuark domain, gint code,
    const gchar * want)
{
  GstElement *element = gst_element_factory_make ("florence2", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *error = NULL;
  gchar *debug = NULL;

  g_object_set (element, "model", dir, "device", test_device, NULL);
  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "%s: no error message", dir);
  gst_message_parse_error (msg, &error, &debug);
  fail_unless (g_error_matches (error, domain, code),
      "%s: got %s %d: %s", dir, g_quark_to_string (error->domain),
      error->code, error->message);
  fail_unless (strstr (error->message, want) != NULL,
      "%s: the message lacks \"%s\": %s", dir, want, error->message);
  GST_INFO ("%s -> %s", dir, error->message);
  g_clear_error (&error);
  g_free (debug);
  gst_message_unref (msg);
  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (element);
  gst_object_unref (bus);
}

/* Broken model directories: errors of the model's files (config,
 * preprocessor settings, tokenizer, weights) are resource errors naming
 * the file, never "Cannot open the compute device". */
GST_START_TEST (test_broken_model_errors)
{
  gchar *tmp = g_dir_make_tmp ("f2-element-model-XXXXXX", NULL);
  gchar *dir, *path;

  load_fixtures ();
  fail_unless (tmp != NULL);
  /* settings that would fail only at the first frame are refused at load */
  dir = broken_model (tmp, "zero-std", "preprocessor_config.json", "0.224",
      "0", FALSE);
  expect_model_error (dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
      "preprocessor_config.json: image_std[1]");
  g_free (dir);
  dir = broken_model (tmp, "beams", "config.json", "\"num_beams\": 3",
      "\"num_beams\": 1000", FALSE);
  expect_model_error (dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
      "num_beams is 1000");
  g_free (dir);
  /* a window that does not tile the token grid: a config problem, named
   * at load (it used to surface as the device's error) */
  dir = broken_model (tmp, "window", "config.json", "\"window_size\": 12",
      "\"window_size\": 7", FALSE);
  expect_model_error (dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
      "window_size 7 does not divide");
  g_free (dir);
  dir = broken_model (tmp, "deep", "tokenizer.json", "{", "{\"x\": "
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], ",
      FALSE);
  expect_model_error (dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
      "tokenizer.json nests JSON");
  g_free (dir);
  dir = broken_model (tmp, "nan", NULL, NULL, NULL, TRUE);
  expect_model_error (dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ,
      "'language_model.lm_head.weight'");
  g_free (dir);
  /* missing files and wrong kinds of paths */
  dir = broken_model (tmp, "dangling", NULL, NULL, NULL, FALSE);
  path = g_build_filename (dir, "config.json", NULL);
  g_unlink (path);
  fail_unless (symlink ("moved-away.json", path) == 0);
  expect_model_error (dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
      "dangling");
  g_free (path);
  g_free (dir);
  dir = broken_model (tmp, "no-tokenizer", "config.json", NULL, NULL, FALSE);
  path = g_build_filename (dir, "tokenizer.json", NULL);
  g_unlink (path);
  g_free (path);
  expect_model_error (dir, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
      "tokenizer.json");
  g_free (dir);
  path = g_build_filename (model_dir, "config.json", NULL);
  expect_model_error (path, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
      "not a directory");
  g_free (path);

  f2_test_remove_tree (tmp);
  g_free (tmp);
}

GST_END_TEST;

GST_START_TEST (test_setting_errors)
{
  GError *error = NULL;
  GstElement *element;
  gchar *props;
  GEnumClass *tasks;

  load_fixtures ();
  expect_start_error ("", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND);
  expect_start_error ("model=/nonexistent/florence2 device=cpu",
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND);

#define WITH_MODEL(p) (g_free (props), props = g_strdup_printf \
    ("model=\"%s\" device=\"%s\" %s", model_dir, test_device, p))
  props = NULL;
  expect_start_error (WITH_MODEL ("task=od prompt=hello"),
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS);
  expect_start_error (WITH_MODEL ("task=caption-to-phrase-grounding"),
      GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS);
  expect_start_error (WITH_MODEL ("task=region-to-category "
          "prompt=\"<loc_1><loc_2>\""), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS);
  expect_start_error (WITH_MODEL ("task=region-to-category "
          "prompt=\"<loc_1><loc_2><loc_3><loc_1000>\""), GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_SETTINGS);
  g_free (props);
  props = g_strdup_printf ("model=\"%s\" device=no-such-device-anywhere",
      model_dir);
  expect_start_error (props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT);
  g_free (props);
  /* settings the chosen device cannot run are the library's settings */
  props = g_strdup_printf ("model=\"%s\" device=cpu precision=fp16", model_dir);
  expect_start_error (props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS);
  g_free (props);
  props = g_strdup_printf ("model=\"%s\" device=reference precision=bf16",
      model_dir);
  expect_start_error (props, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS);
  g_free (props);
  props = g_strdup_printf ("model=\"%s\" device=\"%s\" "
      "results-location=/nonexistent/dir/out.jsonl", model_dir, test_device);
  expect_start_error (props, GST_RESOURCE_ERROR,
      GST_RESOURCE_ERROR_OPEN_WRITE);
  g_free (props);

  /* an unknown task cannot even be set */
  element = gst_parse_launch ("florence2 task=no-such-task", &error);
  fail_unless (error != NULL);
  GST_INFO ("unknown task: %s", error->message);
  g_clear_error (&error);
  if (element)
    gst_object_unref (element);

  /* every Florence-2 task has its nick */
  tasks = g_type_class_ref (g_type_from_name ("GstFlorence2Task"));
  fail_unless (tasks != NULL);
  fail_unless_equals_int (tasks->n_values, F2_TASK_COUNT);
  for (guint i = 0; i < F2_TASK_COUNT; i++)
    fail_unless_equals_int (g_enum_get_value_by_nick (tasks,
            f2_task_info (i)->nick)->value, i);
  fail_unless (g_enum_get_value_by_nick (tasks, "od") != NULL);
  fail_unless (g_enum_get_value_by_nick (tasks, "ocr-with-region") != NULL);
  g_type_class_unref (tasks);
}

GST_END_TEST;

/* A READY-only property set while PLAYING keeps its value, and the warning
 * names that property; PLAYING properties change without one. */
GST_START_TEST (test_ready_property_while_playing)
{
  static const gchar *const ready_only[][2] = {
    {"num-beams", "5"}, {"model", "other"}, {"results-location", "other"},
    {"latency-mode", "low-latency"}, {"batch-size", "4"},
    {"batch-timeout", "1000"}
  };
  GstHarness *h = harness_new ("precision=fp32");
  GstBus *bus = attach_bus (h);
  GstElement *e = f2_element (h);
  GstVideoInfo info;
  GstMessage *msg;
  GError *error = NULL;
  gchar *debug = NULL, *s = NULL;
  guint beams, batch;
  guint64 batch_timeout;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, 64, 48);
  set_caps (h, &info);
  fail_unless_equals_int (GST_STATE (e), GST_STATE_PLAYING);
  for (guint i = 0; i < G_N_ELEMENTS (ready_only); i++) {
    const gchar *name = ready_only[i][0];

    gst_util_set_object_arg (G_OBJECT (e), name, ready_only[i][1]);
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
    fail_unless (msg != NULL, "no warning for %s while PLAYING", name);
    gst_message_parse_warning (msg, &error, &debug);
    GST_INFO ("%s: %s (%s)", name, error->message, debug);
    fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
            GST_RESOURCE_ERROR_SETTINGS), "%s", error->message);
    s = g_strdup_printf ("The %s property cannot change", name);
    fail_unless (g_str_has_prefix (error->message, s), "%s: %s", name,
        error->message);
    g_free (s);
    g_clear_error (&error);
    g_free (debug);
    gst_message_unref (msg);
  }
  /* nothing changed */
  g_object_get (e, "num-beams", &beams, "model", &s, NULL);
  fail_unless_equals_int (beams, 1);
  fail_unless_equals_string (s, model_dir);
  g_free (s);
  g_object_get (e, "results-location", &s, NULL);
  fail_unless (s == NULL);
  g_object_get (e, "batch-size", &batch, "batch-timeout", &batch_timeout,
      NULL);
  fail_unless_equals_int (batch, 1);
  fail_unless_equals_uint64 (batch_timeout, 5 * GST_MSECOND);

  /* properties that may change while PLAYING do, quietly */
  g_object_set (e, "max-new-tokens", 7, "emit-messages", TRUE, NULL);
  g_object_get (e, "max-new-tokens", &beams, NULL);
  fail_unless_equals_int (beams, 7);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);

  /* READY again: the change is taken */
  gst_element_set_state (e, GST_STATE_READY);
  g_object_set (e, "num-beams", 5, NULL);
  g_object_get (e, "num-beams", &beams, NULL);
  fail_unless_equals_int (beams, 5);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING) == NULL);
  teardown_with_bus (h, bus);
}

GST_END_TEST;

/* The lines of @path, each checked to be whole (newline-terminated) JSON. */
static gchar **
read_whole_json_lines (const gchar * path, guint * n_lines)
{
  gchar *text = NULL, **lines;
  gsize len = 0;
  guint n;

  fail_unless (g_file_get_contents (path, &text, &len, NULL), "%s", path);
  fail_unless (len == 0 || text[len - 1] == '\n',
      "%s ends with a cut line: ...%s", path, text + (len > 80 ? len - 80 : 0));
  lines = g_strsplit (text, "\n", -1);
  n = g_strv_length (lines) - 1;        /* after the last newline: "" */
  for (guint i = 0; i < n; i++) {
    JsonParser *parser = json_parser_new ();
    GError *error = NULL;

    fail_unless (json_parser_load_from_data (parser, lines[i], -1, &error),
        "line %u of %s is not JSON (%s): %s", i, path,
        error ? error->message : "", lines[i]);
    fail_unless (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
    g_object_unref (parser);
  }
  g_free (text);
  *n_lines = n;
  return lines;
}

/* PTS (ns) of a results line */
static gint64
line_timestamp (const gchar * line)
{
  JsonParser *parser = json_parser_new ();
  gint64 ts;

  fail_unless (json_parser_load_from_data (parser, line, -1, NULL));
  ts = json_object_get_int_member (json_node_get_object
      (json_parser_get_root (parser)), "timestamp");
  g_object_unref (parser);
  return ts;
}

/* A full disk, made with a file size limit (writes past it fail with
 * EFBIG, the first one short): the lines that do not fit are cut off again,
 * counted in results-lost and reported with a warning carrying the count;
 * frames keep flowing, and once there is room again the next line follows
 * the last whole one. */
GST_START_TEST (test_results_file_full)
{
  gchar *dir = g_dir_make_tmp ("f2-results-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, "results.jsonl", NULL);
  gchar *props = g_strdup_printf ("precision=fp32 results-location=\"%s\"",
      path);
  GstHarness *h = harness_new (props);
  GstBus *bus = attach_bus (h);
  GstVideoInfo info;
  GstBuffer *in, *out;
  GstMessage *msg;
  GError *error = NULL;
  const GstStructure *details = NULL;
  struct rlimit old, full;
  GStatBuf st;
  gchar **lines;
  guint n_lines;
  guint64 lost = 0;

  in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  set_caps (h, &info);
  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 0));
  fail_unless (out != NULL && gst_buffer_get_florence2_meta (out) != NULL);
  gst_buffer_unref (out);
  fail_unless (g_stat (path, &st) == 0 && st.st_size > 0);

  /* room for 10 more bytes: the next line is cut short, the one after
   * that gets nothing */
  signal (SIGXFSZ, SIG_IGN);
  fail_unless (getrlimit (RLIMIT_FSIZE, &old) == 0);
  full = old;
  full.rlim_cur = st.st_size + 10;
  fail_unless (setrlimit (RLIMIT_FSIZE, &full) == 0);
  for (guint i = 1; i <= 2; i++) {
    out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), i));
    fail_unless (out != NULL, "frame %u did not come out", i);
    fail_unless (gst_buffer_get_florence2_meta (out) != NULL);
    gst_buffer_unref (out);
  }
  fail_unless (setrlimit (RLIMIT_FSIZE, &old) == 0);
  g_object_get (f2_element (h), "results-lost", &lost, NULL);
  fail_unless_equals_uint64 (lost, 2);
  lines = read_whole_json_lines (path, &n_lines);
  fail_unless_equals_int (n_lines, 1);
  g_strfreev (lines);

  /* one warning for the series, with the count of the first loss */
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL, "no warning for a lost result");
  gst_message_parse_warning (msg, &error, NULL);
  gst_message_parse_warning_details (msg, &details);
  GST_INFO ("warning: %s", error->message);
  fail_unless (g_error_matches (error, GST_RESOURCE_ERROR,
          GST_RESOURCE_ERROR_WRITE), "%s", error->message);
  fail_unless (strstr (error->message, "1 result(s) lost") != NULL, "%s",
      error->message);
  fail_unless (details != NULL && gst_structure_get_uint64 (details,
          "results-lost", &lost), "no results-lost in the warning's details");
  fail_unless_equals_uint64 (lost, 1);
  g_clear_error (&error);
  gst_message_unref (msg);
  fail_unless (gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR) == NULL);

  /* room again: the next result follows the last whole line */
  out = gst_harness_push_and_pull (h, stamp (gst_buffer_copy (in), 3));
  fail_unless (out != NULL);
  gst_buffer_unref (out);
  lines = read_whole_json_lines (path, &n_lines);
  fail_unless_equals_int (n_lines, 2);
  fail_unless_equals_int64 (line_timestamp (lines[0]), 0);
  fail_unless_equals_int64 (line_timestamp (lines[1]), 3 * GST_SECOND / 30);
  g_strfreev (lines);
  g_object_get (f2_element (h), "results-lost", &lost, NULL);
  fail_unless_equals_uint64 (lost, 2);

  teardown_with_bus (h, bus);
  gst_buffer_unref (in);
  f2_test_remove_tree (dir);
  g_free (props);
  g_free (path);
  g_free (dir);
}

GST_END_TEST;

/* One inference on the golden image with results to @path. */
static void
one_result_to (const gchar * path, gboolean append, guint index)
{
  gchar *props = g_strdup_printf ("precision=fp32 results-location=\"%s\" "
      "results-append=%s", path, append ? "true" : "false");
  GstHarness *h = harness_new (props);
  GstVideoInfo info;
  GstBuffer *in = make_frame (GST_VIDEO_FORMAT_RGB, image_w, image_h, &info);
  GstBuffer *out;

  set_caps (h, &info);
  out = gst_harness_push_and_pull (h, stamp (in, index));
  fail_unless (out != NULL && gst_buffer_get_florence2_meta (out) != NULL);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  g_free (props);
}

/* results-append keeps earlier lines across starts (and drops a cut last
 * line an earlier writer left); without it each start empties the file. */
GST_START_TEST (test_results_append)
{
  gchar *dir = g_dir_make_tmp ("f2-results-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, "results.jsonl", NULL);
  gchar **lines;
  guint n_lines;

  fail_unless (g_file_set_contents (path, "{\"earlier\":1}\n{\"cut", -1,
          NULL));
  one_result_to (path, TRUE, 1);
  one_result_to (path, TRUE, 2);
  lines = read_whole_json_lines (path, &n_lines);
  fail_unless_equals_int (n_lines, 3);
  fail_unless_equals_string (lines[0], "{\"earlier\":1}");
  fail_unless_equals_int64 (line_timestamp (lines[1]), GST_SECOND / 30);
  fail_unless_equals_int64 (line_timestamp (lines[2]), 2 * GST_SECOND / 30);
  g_strfreev (lines);

  one_result_to (path, FALSE, 3);
  lines = read_whole_json_lines (path, &n_lines);
  fail_unless_equals_int (n_lines, 1);
  fail_unless_equals_int64 (line_timestamp (lines[0]), 3 * GST_SECOND / 30);
  g_strfreev (lines);

  f2_test_remove_tree (dir);
  g_free (path);
  g_free (dir);
}

GST_END_TEST;

/* Frames the caps promise but the buffer does not hold, or the model cannot
 * take: an element error, the stream stops, nothing crashes. */
static void
expect_stream_error (GstVideoFormat format, gint w, gint h, gsize size)
{
  GstHarness *hn = harness_new (NULL);
  GstBus *bus = attach_bus (hn);
  GstVideoInfo info;
  GstMessage *msg;
  GError *error = NULL;
  GstFlowReturn ret = GST_FLOW_OK;

  gst_video_info_set_format (&info, format, w, h);
  set_caps (hn, &info);
  gst_harness_push (hn, stamp (gst_buffer_new_allocate (NULL, size, NULL),
          0));
  msg = gst_bus_timed_pop_filtered (bus, 120 * GST_SECOND,
      GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "%dx%d: no error", w, h);
  gst_message_parse_error (msg, &error, NULL);
  fail_unless (error->domain == GST_STREAM_ERROR, "%s", error->message);
  GST_INFO ("%dx%d, %" G_GSIZE_FORMAT " bytes: %s", w, h, size,
      error->message);
  g_clear_error (&error);
  gst_message_unref (msg);
  /* upstream learns of it */
  for (guint i = 0; i < 10 && ret == GST_FLOW_OK; i++) {
    GstBuffer *b = gst_buffer_new_allocate (NULL, size, NULL);

    ret = gst_harness_push (hn, stamp (b, i + 1));
    g_usleep (10 * 1000);
  }
  fail_unless (ret == GST_FLOW_ERROR || ret == GST_FLOW_EOS,
      "flow %s", gst_flow_get_name (ret));
  teardown_with_bus (hn, bus);
}

GST_START_TEST (test_stream_errors)
{
  load_fixtures ();
  expect_stream_error (GST_VIDEO_FORMAT_RGB, 64, 48, 100);
  expect_stream_error (GST_VIDEO_FORMAT_I420, 64, 48, 64 * 48);
  /* wider than the model accepts */
  expect_stream_error (GST_VIDEO_FORMAT_RGB, 8193, 2,
      GST_ROUND_UP_4 (8193 * 3) * 2);
}

GST_END_TEST;

static Suite *
florence2_suite (void)
{
  Suite *s = suite_create ("florence2");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_meta_matches_library);
  tcase_add_test (tc, test_packed_formats);
  tcase_add_test (tc, test_yuv_formats);
  tcase_add_test (tc, test_odd_sizes_and_strides);
  tcase_add_test (tc, test_change_while_playing);
  tcase_add_test (tc, test_order_and_eos_during_inference);
  tcase_add_test (tc, test_skip_when_busy);
  tcase_add_test (tc, test_flush_during_inference);
  tcase_add_test (tc, test_low_latency);
  tcase_add_test (tc, test_state_cycles);
  tcase_add_test (tc, test_shared_model_streams);
  tcase_add_test (tc, test_batched_streams);
  tcase_add_test (tc, test_batch_stream_leaves);
  tcase_add_test (tc, test_batch_flush_and_eos);
  tcase_add_test (tc, test_batch_own_frames);
  tcase_add_test (tc, test_batch_own_frames_flush);
  tcase_add_test (tc, test_batch_skip_when_busy);
  tcase_add_test (tc, test_batch_held_frames_limit);
  tcase_add_test (tc, test_batch_low_latency);
  tcase_add_test (tc, test_batch_properties);
  tcase_add_test (tc, test_batch_latency);
  tcase_add_test (tc, test_setting_errors);
  tcase_add_test (tc, test_broken_model_errors);
  tcase_add_test (tc, test_stream_errors);
  tcase_add_test (tc, test_ready_property_while_playing);
  tcase_add_test (tc, test_results_file_full);
  tcase_add_test (tc, test_results_append);
  return s;
}

int
main (int argc, char **argv)
{
  int failed;

  gst_check_init (&argc, &argv);
  test_device = g_getenv ("F2_TEST_DEVICE");
  if (test_device == NULL || *test_device == '\0')
    test_device = "auto";
  f2_test_require_golden_dir ();
  /* the common reference, once for all forked test cases (when a subset
   * is chosen with GST_CHECKS, only the cases that need it compute it) */
  if (g_getenv ("GST_CHECKS") == NULL)
    rgb_reference ();
  failed = gst_check_run_suite (florence2_suite (), "florence2", __FILE__);
  florence2_output_free (ref_rgb_od);
  g_free (ref_rgb_pixels);
  florence2_context_free (ref_context);
  if (ref_model != NULL)
    florence2_model_unref (ref_model);
  g_free (image_rgb);
  g_free (model_dir);
  return failed;
}
