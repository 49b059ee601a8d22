/* GstFlorence2Meta: regions, copies, the videoscale transform, label ids,
 * and the JSON layout. Needs no model. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <json-glib/json-glib.h>

#include <gst/florence2/gstflorence2meta.h>

/* A meta with a box, a polygon region and a quad region on a 640x480 frame. */
static GstFlorence2Meta *
add_sample_meta (GstBuffer * buffer)
{
  static const gfloat poly[] = { 10, 20, 110, 20, 60, 120 };
  static const gfloat quad[] = { 300, 300, 400, 300, 400, 340, 300, 340 };
  GstFlorence2Meta *meta;
  guint k;

  meta = gst_buffer_add_florence2_meta (buffer, "<OD>", NULL, NULL, 640, 480,
      1 * GST_SECOND, 25 * GST_MSECOND);
  gst_florence2_meta_add_region (meta, "car", 64, 48, 320, 240);
  k = gst_florence2_meta_add_region (meta, "", 10, 20, 100, 100);
  gst_florence2_meta_region_add_polygon (meta, k, 3, poly);
  k = gst_florence2_meta_add_region (meta, "STOP", 300, 300, 100, 40);
  gst_florence2_meta_region_set_quad (meta, k, quad);
  return meta;
}

GST_START_TEST (test_regions_and_copy)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, 16, NULL);
  GstBuffer *copy;
  GstFlorence2Meta *meta, *meta2;

  meta = add_sample_meta (buffer);
  fail_unless_equals_int (meta->n_regions, 3);
  fail_unless_equals_string (meta->task, "<OD>");
  fail_unless (meta->prompt == NULL);
  fail_unless_equals_string (meta->regions[0].label, "car");
  fail_unless_equals_float (meta->regions[0].w, 320);
  fail_unless_equals_int (meta->regions[1].n_polygons, 1);
  fail_unless_equals_int (meta->regions[1].polygons[0].n_points, 3);
  fail_unless_equals_float (meta->regions[1].polygons[0].points[5], 120);
  fail_unless (meta->regions[2].has_quad);
  fail_unless (!meta->regions[0].has_quad);
  fail_unless_equals_int (meta->regions[0].label_id,
      gst_florence2_label_id ("car"));
  fail_unless (gst_florence2_label_id ("car") !=
      gst_florence2_label_id ("STOP"));
  fail_unless (gst_buffer_get_florence2_meta (buffer) == meta);

  /* a copy is deep and equal */
  copy = gst_buffer_copy (buffer);
  meta2 = gst_buffer_get_florence2_meta (copy);
  fail_unless (meta2 != NULL && meta2 != meta);
  fail_unless_equals_int (meta2->n_regions, 3);
  fail_unless (meta2->regions[1].polygons[0].points !=
      meta->regions[1].polygons[0].points);
  fail_unless_equals_float (meta2->regions[1].polygons[0].points[5], 120);
  fail_unless_equals_float (meta2->regions[2].quad[7], 340);
  fail_unless_equals_int (meta2->source_pts, 1 * GST_SECOND);
  fail_unless_equals_int (meta2->inference_time, 25 * GST_MSECOND);
  gst_buffer_unref (buffer);
  fail_unless_equals_string (meta2->regions[0].label, "car");
  gst_buffer_unref (copy);
}

GST_END_TEST;

GST_START_TEST (test_tags)
{
  GType api = GST_FLORENCE2_META_API_TYPE;

  fail_unless (gst_meta_api_type_has_tag (api,
          g_quark_from_string (GST_META_TAG_VIDEO_STR)));
  fail_unless (gst_meta_api_type_has_tag (api,
          g_quark_from_string (GST_META_TAG_VIDEO_SIZE_STR)));
  fail_unless (gst_meta_api_type_has_tag (api,
          g_quark_from_string (GST_META_TAG_VIDEO_ORIENTATION_STR)));
}

GST_END_TEST;

/* videoscale 640x480 -> 320x120 scales every coordinate. */
GST_START_TEST (test_videoscale)
{
  GstHarness *h = gst_harness_new_parse ("videoscale");
  GstBuffer *in, *out;
  GstFlorence2Meta *meta;
  GstVideoInfo info;

  gst_harness_set_src_caps_str (h,
      "video/x-raw,format=RGBx,width=640,height=480,framerate=30/1");
  gst_harness_set_sink_caps_str (h,
      "video/x-raw,format=RGBx,width=320,height=120,framerate=30/1");
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBx, 640, 480);
  in = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_memset (in, 0, 0, info.size);
  add_sample_meta (in);

  out = gst_harness_push_and_pull (h, in);
  fail_unless (out != NULL);
  meta = gst_buffer_get_florence2_meta (out);
  fail_unless (meta != NULL, "videoscale dropped the meta");
  fail_unless_equals_int (meta->width, 320);
  fail_unless_equals_int (meta->height, 120);
  fail_unless_equals_float (meta->regions[0].x, 32);
  fail_unless_equals_float (meta->regions[0].y, 12);
  fail_unless_equals_float (meta->regions[0].w, 160);
  fail_unless_equals_float (meta->regions[0].h, 60);
  fail_unless_equals_float (meta->regions[1].polygons[0].points[4], 30);
  fail_unless_equals_float (meta->regions[1].polygons[0].points[5], 30);
  fail_unless_equals_float (meta->regions[2].quad[2], 200);
  fail_unless_equals_float (meta->regions[2].quad[3], 75);
  fail_unless_equals_string (meta->regions[2].label, "STOP");
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

static JsonObject *
parse_object (JsonParser * parser, const gchar * json)
{
  GError *error = NULL;

  fail_unless (json_parser_load_from_data (parser, json, -1, &error),
      "invalid JSON: %s", error ? error->message : "");
  fail_unless (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_node_get_object (json_parser_get_root (parser));
}

GST_START_TEST (test_json)
{
  GstBuffer *buffer = gst_buffer_new ();
  GstFlorence2Meta *meta = add_sample_meta (buffer);
  JsonParser *parser = json_parser_new ();
  JsonObject *root, *res, *obj, *det, *box, *f2;
  JsonArray *objects, *quad;
  gchar *json;

  json = gst_florence2_meta_to_json (meta, 3 * GST_SECOND);
  root = parse_object (parser, json);

  res = json_object_get_object_member (root, "resolution");
  fail_unless_equals_int (json_object_get_int_member (res, "width"), 640);
  fail_unless_equals_int (json_object_get_int_member (res, "height"), 480);
  fail_unless_equals_int64 (json_object_get_int_member (root, "timestamp"),
      3 * GST_SECOND);

  objects = json_object_get_array_member (root, "objects");
  fail_unless_equals_int (json_array_get_length (objects), 3);
  obj = json_array_get_object_element (objects, 0);
  fail_unless_equals_int (json_object_get_int_member (obj, "x"), 64);
  fail_unless_equals_int (json_object_get_int_member (obj, "w"), 320);
  fail_unless_equals_int (json_object_get_int_member (obj, "region_id"), 0);
  det = json_object_get_object_member (obj, "detection");
  fail_unless_equals_string (json_object_get_string_member (det, "label"),
      "car");
  fail_unless_equals_int (json_object_get_int_member (det, "label_id"),
      gst_florence2_label_id ("car"));
  fail_if (json_object_has_member (det, "confidence"));
  box = json_object_get_object_member (det, "bounding_box");
  fail_unless_equals_float (json_object_get_double_member (box, "x_min"), 0.1);
  fail_unless_equals_float (json_object_get_double_member (box, "y_min"), 0.1);
  fail_unless_equals_float (json_object_get_double_member (box, "x_max"), 0.6);
  fail_unless_equals_float (json_object_get_double_member (box, "y_max"), 0.6);
  fail_if (json_object_has_member (obj, "polygons"));

  obj = json_array_get_object_element (objects, 1);
  fail_unless_equals_int (json_array_get_length (json_array_get_array_element
          (json_object_get_array_member (obj, "polygons"), 0)), 6);
  obj = json_array_get_object_element (objects, 2);
  quad = json_object_get_array_member (obj, "quad");
  fail_unless_equals_int (json_array_get_length (quad), 8);
  fail_unless_equals_float (json_array_get_double_element (quad, 1), 300);

  f2 = json_object_get_object_member (root, "florence2");
  fail_unless_equals_string (json_object_get_string_member (f2, "task"),
      "<OD>");
  fail_unless (json_object_get_null_member (f2, "prompt"));
  fail_unless_equals_int64 (json_object_get_int_member (f2,
          "source_timestamp"), GST_SECOND);
  fail_unless_equals_int64 (json_object_get_int_member (f2, "latency_ns"),
      2 * GST_SECOND);
  fail_unless_equals_float (json_object_get_double_member (f2,
          "inference_time_ms"), 25.0);
  g_free (json);

  /* no PTS: timestamp and latency are null */
  json = gst_florence2_meta_to_json (meta, GST_CLOCK_TIME_NONE);
  root = parse_object (parser, json);
  fail_unless (json_object_get_null_member (root, "timestamp"));
  fail_unless (json_object_get_null_member (json_object_get_object_member
          (root, "florence2"), "latency_ns"));
  g_free (json);

  g_object_unref (parser);
  gst_buffer_unref (buffer);
}

GST_END_TEST;

static Suite *
florence2_meta_suite (void)
{
  Suite *s = suite_create ("florence2-meta");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_regions_and_copy);
  tcase_add_test (tc, test_tags);
  tcase_add_test (tc, test_videoscale);
  tcase_add_test (tc, test_json);
  return s;
}

GST_CHECK_MAIN (florence2_meta);
