/* read-metadata: an application that embeds a florence2 pipeline and reads
 * the results from the buffers.
 *
 *   read-metadata [--model DIR] [--task NICK] [--prompt TEXT] [--input FILE]
 *                 [--num-buffers N] [--json] [ELEMENT-PROPERTY=VALUE ...]
 *
 * The pipeline is
 *   filesrc ! decodebin ! videoconvert ! florence2 ! fakesink   (--input)
 *   videotestsrc ! videoconvert ! florence2 ! fakesink           (otherwise)
 * and a buffer probe on the sink's pad prints, for every frame that carries
 * one, the GstFlorence2Meta (task, text, regions with boxes, polygons and OCR
 * quads) and the GstVideoRegionOfInterestMeta that the element adds per box
 * (with its DL Streamer style "detection" parameters). --json prints the
 * meta as one JSON line per frame instead, with gst_florence2_meta_to_json().
 * Extra NAME=VALUE arguments are set on the florence2 element, e.g.
 * precision=fp32 num-beams=3.
 *
 * Build against the installed library:
 *   cc read-metadata.c $(pkg-config --cflags --libs gstreamer-florence2-1.0)
 */

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/florence2/gstflorence2meta.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct
{
  GMainLoop *loop;
  gboolean json;
  guint frame;
  int status;
} App;

static void
print_time (const char *what, GstClockTime t)
{
  if (GST_CLOCK_TIME_IS_VALID (t))
    g_print ("%s %" GST_TIME_FORMAT, what, GST_TIME_ARGS (t));
  else
    g_print ("%s none", what);
}

static void
print_florence2_meta (const GstFlorence2Meta * meta)
{
  g_print ("  task %s", meta->task);
  if (meta->prompt)
    g_print ("  prompt \"%s\"", meta->prompt);
  g_print ("  size %dx%d", meta->width, meta->height);
  print_time ("  source-pts", meta->source_pts);
  if (GST_CLOCK_TIME_IS_VALID (meta->inference_time))
    g_print ("  inference %.1f ms", meta->inference_time / 1e6);
  g_print ("\n");
  if (meta->text)
    g_print ("  text \"%s\"\n", meta->text);

  for (guint i = 0; i < meta->n_regions; i++) {
    const GstFlorence2Region *r = &meta->regions[i];

    g_print ("  region %u label \"%s\" label-id %u box %.3f %.3f %.3f %.3f\n",
        i, r->label, r->label_id, r->x, r->y, r->w, r->h);
    for (guint p = 0; p < r->n_polygons; p++) {
      g_print ("    polygon %u:", p);
      for (guint k = 0; k < r->polygons[p].n_points; k++)
        g_print (" %.1f,%.1f", r->polygons[p].points[2 * k],
            r->polygons[p].points[2 * k + 1]);
      g_print ("\n");
    }
    if (r->has_quad) {
      g_print ("    quad:");
      for (guint k = 0; k < 4; k++)
        g_print (" %.1f,%.1f", r->quad[2 * k], r->quad[2 * k + 1]);
      g_print ("\n");
    }
  }
}

static void
print_roi_metas (GstBuffer * buffer)
{
  gpointer state = NULL;
  GstMeta *m;
  guint n = 0;

  while ((m = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) m;

    g_print ("  roi %u type \"%s\" id %d box %u %u %u %u\n", n++,
        g_quark_to_string (roi->roi_type), roi->id, roi->x, roi->y, roi->w,
        roi->h);
    for (GList * l = roi->params; l != NULL; l = l->next) {
      gchar *s = gst_structure_to_string (l->data);
      g_print ("    %s\n", s);
      g_free (s);
    }
  }
}

static GstPadProbeReturn
on_buffer (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  App *app = user_data;
  GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
  GstFlorence2Meta *meta = gst_buffer_get_florence2_meta (buffer);
  guint frame = app->frame++;

  if (meta == NULL)
    return GST_PAD_PROBE_OK;    /* a frame the model skipped */

  if (app->json) {
    gchar *json = gst_florence2_meta_to_json (meta, GST_BUFFER_PTS (buffer));
    g_print ("%s\n", json);
    g_free (json);
  } else {
    g_print ("frame %u", frame);
    print_time (" pts", GST_BUFFER_PTS (buffer));
    g_print ("\n");
    print_florence2_meta (meta);
    print_roi_metas (buffer);
  }
  return GST_PAD_PROBE_OK;
}

static gboolean
on_bus_message (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  App *app = user_data;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:{
      GError *err = NULL;
      gchar *debug = NULL;

      gst_message_parse_error (msg, &err, &debug);
      g_printerr ("error from %s: %s\n", GST_OBJECT_NAME (msg->src),
          err->message);
      if (debug)
        g_printerr ("  (%s)\n", debug);
      g_clear_error (&err);
      g_free (debug);
      app->status = 1;
      g_main_loop_quit (app->loop);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (app->loop);
      break;
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

/* NAME=VALUE arguments go to the florence2 element as they would in a
 * gst-launch line (enums by nick, booleans as true/false). */
static gboolean
set_element_properties (GstElement * element, gchar ** assignments)
{
  for (guint i = 0; assignments && assignments[i]; i++) {
    gchar **kv = g_strsplit (assignments[i], "=", 2);
    gboolean ok = kv[0] && kv[1] &&
        g_object_class_find_property (G_OBJECT_GET_CLASS (element), kv[0]);

    if (ok)
      gst_util_set_object_arg (G_OBJECT (element), kv[0], kv[1]);
    else
      g_printerr ("'%s' is not NAME=VALUE with NAME a florence2 property "
          "(see gst-inspect-1.0 florence2)\n", assignments[i]);
    g_strfreev (kv);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  gchar *model = NULL, *task = NULL, *prompt = NULL, *input = NULL;
  gchar **rest = NULL;
  gint num_buffers = 10;
  App app = { 0 };
  GOptionEntry entries[] = {
    {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
        "Florence-2 model directory (default $FLORENCE2_MODEL)", "DIR"},
    {"task", 't', 0, G_OPTION_ARG_STRING, &task,
        "Task nick, e.g. od, caption, ocr-with-region (default od)", "NICK"},
    {"prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt,
        "Text input of the task (phrase, expression, region)", "TEXT"},
    {"input", 'i', 0, G_OPTION_ARG_FILENAME, &input,
        "Video or image file (default: videotestsrc)", "FILE"},
    {"num-buffers", 'n', 0, G_OPTION_ARG_INT, &num_buffers,
        "Frames of videotestsrc (default 10)", "N"},
    {"json", 'j', 0, G_OPTION_ARG_NONE, &app.json,
        "Print each result as one JSON line", NULL},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &rest, NULL,
        "[PROPERTY=VALUE...]"},
    {NULL}
  };
  GOptionContext *ctx;
  GError *error = NULL;
  GstElement *pipeline = NULL, *f2, *sink, *src;
  GstPad *pad;
  GstBus *bus;
  guint watch;

  setvbuf (stdout, NULL, _IOLBF, 0);   /* one line at a time into pipes */
  ctx = g_option_context_new ("- print the Florence-2 results of a pipeline");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    g_clear_error (&error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);

  if (model == NULL && g_getenv ("FLORENCE2_MODEL"))
    model = g_strdup (g_getenv ("FLORENCE2_MODEL"));
  if (model == NULL) {
    g_printerr ("No model: pass --model DIR or set FLORENCE2_MODEL "
        "(florence2-download fetches one)\n");
    app.status = 2;
    goto out;
  }

  pipeline = gst_parse_launch (input ?
      "filesrc name=src ! decodebin ! videoconvert ! florence2 name=f2 "
      "! fakesink name=sink" :
      "videotestsrc name=src ! video/x-raw,width=640,height=480 "
      "! videoconvert ! florence2 name=f2 ! fakesink name=sink", &error);
  if (pipeline == NULL) {
    g_printerr ("Cannot build the pipeline: %s\n"
        "Is the florence2 plugin installed (or GST_PLUGIN_PATH set)?\n",
        error->message);
    g_clear_error (&error);
    app.status = 1;
    goto out;
  }

  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  if (input)
    g_object_set (src, "location", input, NULL);
  else
    g_object_set (src, "num-buffers", num_buffers, NULL);
  gst_object_unref (src);

  f2 = gst_bin_get_by_name (GST_BIN (pipeline), "f2");
  g_object_set (f2, "model", model, NULL);
  gst_util_set_object_arg (G_OBJECT (f2), "task", task ? task : "od");
  if (prompt)
    g_object_set (f2, "prompt", prompt, NULL);
  if (!set_element_properties (f2, rest)) {
    gst_object_unref (f2);
    app.status = 2;
    goto out;
  }
  gst_object_unref (f2);

  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &app, NULL);
  gst_object_unref (pad);
  gst_object_unref (sink);

  app.loop = g_main_loop_new (NULL, FALSE);
  bus = gst_element_get_bus (pipeline);
  watch = gst_bus_add_watch (bus, on_bus_message, &app);

  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    /* the error message on the bus says why */
    GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);

    if (msg) {
      on_bus_message (bus, msg, &app);
      gst_message_unref (msg);
    } else {
      g_printerr ("The pipeline could not start\n");
    }
    app.status = 1;
  } else {
    g_main_loop_run (app.loop);
  }

  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_source_remove (watch);
  gst_object_unref (bus);
  g_main_loop_unref (app.loop);

out:
  if (pipeline)
    gst_object_unref (pipeline);
  g_free (model);
  g_free (task);
  g_free (prompt);
  g_free (input);
  g_strfreev (rest);
  gst_deinit ();
  return app.status;
}
