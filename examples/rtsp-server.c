/* rtsp-server: an RTSP analytics server. Every client of
 * rtsp://HOST:PORT/MOUNT sees the same annotated stream: one shared pipeline
 *
 *   SOURCE ! videoconvert ! florence2 ! florence2overlay ! videoconvert
 *     ! x264enc (or openh264enc) ! rtph264pay
 *
 * runs while at least one client is connected. The results go to a JSON
 * lines file (--results) and each florence2-result bus message is printed.
 *
 *   rtsp-server [--port 8554] [--mount /florence2] [--source SOURCE]
 *               [--model DIR] [--task NICK] [--prompt TEXT]
 *               [--results FILE] [PROPERTY=VALUE ...]
 *
 * SOURCE: "test" (videotestsrc, the default), a camera (/dev/video0), a URI
 * (rtsp://, http://, file://) or a video file. PROPERTY=VALUE arguments are
 * set on the florence2 element (see gst-inspect-1.0 florence2); for live
 * sources the server sets latency-mode=low-latency and skip-when-busy=true
 * so that the video never waits for the model.
 *
 * Watch with:  gst-play-1.0 rtsp://127.0.0.1:8554/florence2
 *         or:  ffplay rtsp://127.0.0.1:8554/florence2
 */

#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  gchar *model, *task, *prompt, *results;
  gchar **properties;
  gboolean live;
} Settings;

/* ---- A media that prints the florence2-result messages of its pipeline */

typedef GstRTSPMedia AnalyticsMedia;
typedef GstRTSPMediaClass AnalyticsMediaClass;

static GType analytics_media_get_type (void);
G_DEFINE_TYPE (AnalyticsMedia, analytics_media, GST_TYPE_RTSP_MEDIA);

static gboolean
analytics_media_handle_message (GstRTSPMedia * media, GstMessage * message)
{
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT &&
      gst_message_has_name (message, "florence2-result")) {
    const GstStructure *s = gst_message_get_structure (message);
    const gchar *json = gst_structure_get_string (s, "json");

    /* the result as JSON (gst_florence2_meta_to_json) when it is there */
    if (json) {
      g_print ("florence2-result %s\n", json);
    } else {
      gchar *text = gst_structure_to_string (s);

      g_print ("%s\n", text);
      g_free (text);
    }
  }
  return GST_RTSP_MEDIA_CLASS (analytics_media_parent_class)->handle_message
      (media, message);
}

static void
analytics_media_class_init (AnalyticsMediaClass * klass)
{
  klass->handle_message = analytics_media_handle_message;
}

static void
analytics_media_init (AnalyticsMedia * media)
{
}

static gboolean
on_signal (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_CONTINUE;
}

/* ---- Pipeline */

/* The launch line of the source: NULL with @error set when it cannot be
 * written safely. */
static gchar *
source_description (const gchar * source, gboolean * live, GError ** error)
{
  if (strchr (source, '"') != NULL) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--source: quotes are not allowed in '%s'", source);
    return NULL;
  }
  *live = TRUE;
  if (g_str_equal (source, "test"))
    return g_strdup ("videotestsrc is-live=true pattern=ball "
        "! video/x-raw,width=640,height=480,framerate=15/1");
  if (g_str_has_prefix (source, "/dev/video"))
    return g_strdup_printf ("v4l2src device=\"%s\"", source);
  if (strstr (source, "://") != NULL)
    return g_strdup_printf ("uridecodebin uri=\"%s\"", source);
  if (!g_file_test (source, G_FILE_TEST_IS_REGULAR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "--source: '%s' is not \"test\", a camera, a URI or a file", source);
    return NULL;
  }
  *live = FALSE;
  return g_strdup_printf ("filesrc location=\"%s\" ! decodebin", source);
}

static gboolean
have_element (const gchar * name)
{
  GstElementFactory *f = gst_element_factory_find (name);

  if (f)
    gst_object_unref (f);
  return f != NULL;
}

static const gchar *
pick_encoder (void)
{
  static const gchar *const encoders[][2] = {
    {"x264enc", "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30"},
    {"openh264enc", "openh264enc"},
  };

  for (guint i = 0; i < G_N_ELEMENTS (encoders); i++) {
    if (have_element (encoders[i][0]))
      return encoders[i][1];
  }
  return NULL;
}

static void
set_property_from_string (GstElement * element, const gchar * assignment)
{
  gchar **kv = g_strsplit (assignment, "=", 2);

  if (kv[0] && kv[1] &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (element), kv[0]))
    gst_util_set_object_arg (G_OBJECT (element), kv[0], kv[1]);
  else
    g_printerr ("ignoring '%s': not NAME=VALUE with NAME a florence2 "
        "property\n", assignment);
  g_strfreev (kv);
}

/* The shared media's pipeline exists: configure its florence2 element. */
static void
on_media_configure (GstRTSPMediaFactory * factory, GstRTSPMedia * media,
    gpointer user_data)
{
  const Settings *settings = user_data;
  GstElement *bin = gst_rtsp_media_get_element (media);
  GstElement *f2 = gst_bin_get_by_name (GST_BIN (bin), "f2");

  g_object_set (f2, "model", settings->model, "emit-messages", TRUE, NULL);
  gst_util_set_object_arg (G_OBJECT (f2), "task", settings->task);
  if (settings->prompt)
    g_object_set (f2, "prompt", settings->prompt, NULL);
  if (settings->results)
    g_object_set (f2, "results-location", settings->results, NULL);
  if (settings->live) {
    gst_util_set_object_arg (G_OBJECT (f2), "latency-mode", "low-latency");
    g_object_set (f2, "skip-when-busy", TRUE, NULL);
  }
  for (guint i = 0; settings->properties && settings->properties[i]; i++)
    set_property_from_string (f2, settings->properties[i]);
  g_print ("media configured: a client is watching\n");

  gst_object_unref (f2);
  gst_object_unref (bin);
}

int
main (int argc, char **argv)
{
  gint port = 8554;
  gchar *mount = NULL, *source = NULL, *launch = NULL, *src_desc = NULL;
  gchar *service;
  Settings settings = { 0 };
  GOptionEntry entries[] = {
    {"port", 0, 0, G_OPTION_ARG_INT, &port, "RTSP port (default 8554)",
        "PORT"},
    {"mount", 0, 0, G_OPTION_ARG_STRING, &mount,
        "Mount point (default /florence2)", "PATH"},
    {"source", 0, 0, G_OPTION_ARG_STRING, &source,
        "test, /dev/videoN, a URI or a file (default test)", "SOURCE"},
    {"model", 'm', 0, G_OPTION_ARG_FILENAME, &settings.model,
        "Florence-2 model directory (default $FLORENCE2_MODEL)", "DIR"},
    {"task", 't', 0, G_OPTION_ARG_STRING, &settings.task,
        "Task nick (default od)", "NICK"},
    {"prompt", 'p', 0, G_OPTION_ARG_STRING, &settings.prompt,
        "Text input of the task", "TEXT"},
    {"results", 'r', 0, G_OPTION_ARG_FILENAME, &settings.results,
        "Write the results as JSON lines to FILE", "FILE"},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY,
        &settings.properties, NULL, "[PROPERTY=VALUE...]"},
    {NULL}
  };
  GOptionContext *ctx;
  GError *error = NULL;
  GstRTSPServer *server = NULL;
  GstRTSPMountPoints *mounts;
  GstRTSPMediaFactory *factory;
  GMainLoop *loop;
  guint sig_int, sig_term;
  const gchar *encoder;
  int status = 1;

  setvbuf (stdout, NULL, _IOLBF, 0);   /* one line at a time into pipes */
  ctx = g_option_context_new ("- serve Florence-2 analytics over RTSP");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    g_clear_error (&error);
    g_option_context_free (ctx);
    return 2;
  }
  g_option_context_free (ctx);

  if (settings.model == NULL && g_getenv ("FLORENCE2_MODEL"))
    settings.model = g_strdup (g_getenv ("FLORENCE2_MODEL"));
  if (settings.model == NULL) {
    g_printerr ("No model: pass --model DIR or set FLORENCE2_MODEL "
        "(florence2-download fetches one)\n");
    status = 2;
    goto out;
  }
  if (settings.task == NULL)
    settings.task = g_strdup ("od");
  if (mount == NULL)
    mount = g_strdup ("/florence2");
  if (port <= 0 || port > 65535 || mount[0] != '/') {
    g_printerr ("--port must be 1..65535 and --mount start with '/'\n");
    status = 2;
    goto out;
  }
  src_desc = source_description (source ? source : "test", &settings.live,
      &error);
  if (src_desc == NULL) {
    g_printerr ("%s\n", error->message);
    g_clear_error (&error);
    status = 2;
    goto out;
  }
  encoder = pick_encoder ();
  if (encoder == NULL) {
    g_printerr ("No H.264 encoder: install gstreamer1.0-plugins-ugly "
        "(x264enc) or gstreamer1.0-plugins-bad (openh264enc)\n");
    goto out;
  }

  if (!have_element ("florence2")) {
    g_printerr ("No florence2 element: install gstreamer1.0-florence2 or "
        "point GST_PLUGIN_PATH at the build's gst/ folder\n");
    goto out;
  }
  if (!have_element ("florence2overlay"))
    g_printerr ("No florence2overlay element: the stream carries no drawings\n");

  launch = g_strdup_printf ("( %s ! videoconvert ! queue ! florence2 name=f2 "
      "%s ! videoconvert ! video/x-raw,format=I420 ! %s "
      "! rtph264pay name=pay0 pt=96 config-interval=1 )", src_desc,
      have_element ("florence2overlay") ? "! florence2overlay" : "", encoder);

  server = gst_rtsp_server_new ();
  service = g_strdup_printf ("%d", port);
  gst_rtsp_server_set_service (server, service);
  g_free (service);

  factory = gst_rtsp_media_factory_new ();
  gst_rtsp_media_factory_set_launch (factory, launch);
  gst_rtsp_media_factory_set_shared (factory, TRUE);
  gst_rtsp_media_factory_set_media_gtype (factory, analytics_media_get_type ());
  g_signal_connect (factory, "media-configure",
      G_CALLBACK (on_media_configure), &settings);

  mounts = gst_rtsp_server_get_mount_points (server);
  gst_rtsp_mount_points_add_factory (mounts, mount, factory);
  g_object_unref (mounts);

  if (gst_rtsp_server_attach (server, NULL) == 0) {
    g_printerr ("Cannot listen on port %d (in use?)\n", port);
    goto out;
  }

  loop = g_main_loop_new (NULL, FALSE);
  /* Ctrl-C or SIGTERM: stop cleanly, so the results file is complete */
  sig_int = g_unix_signal_add (SIGINT, on_signal, loop);
  sig_term = g_unix_signal_add (SIGTERM, on_signal, loop);
  g_print ("stream ready at rtsp://127.0.0.1:%d%s\n", port, mount);
  g_main_loop_run (loop);
  g_source_remove (sig_int);
  g_source_remove (sig_term);
  g_main_loop_unref (loop);
  status = 0;

out:
  if (server)
    g_object_unref (server);
  g_free (launch);
  g_free (src_desc);
  g_free (mount);
  g_free (source);
  g_free (settings.model);
  g_free (settings.task);
  g_free (settings.prompt);
  g_free (settings.results);
  g_strfreev (settings.properties);
  return status;
}
