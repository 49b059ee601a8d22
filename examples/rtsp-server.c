/* rtsp-server: an RTSP analytics server. Every client of
 * rtsp://HOST:PORT/MOUNT sees the same annotated stream: one shared pipeline
 *
 *   SOURCE ! videoconvert ! florence2 ! florence2overlay ! videoconvert
 *     ! x264enc (or openh264enc) ! rtph264pay
 *
 * runs while at least one client is connected. The results go to a JSON
 * lines file (--results), appended to across client sessions and server
 * runs (never emptied), and each florence2-result bus message is printed.
 * With --mqtt HOST:PORT the results also go to that MQTT broker
 * (florence2publish), each mount under its own topic: florence2<MOUNT>,
 * e.g. florence2/florence2 (read them with mosquitto_sub -t 'florence2/#').
 *
 *   rtsp-server [--address 127.0.0.1] [--port 8554] [--mount /florence2]
 *               [--user NAME [--password-file FILE]] [--source SOURCE]
 *               [--model DIR] [--task NICK] [--prompt TEXT]
 *               [--results FILE] [--mqtt HOST:PORT] [PROPERTY=VALUE ...]
 *
 * The server listens on 127.0.0.1 unless --address says otherwise (0.0.0.0:
 * every IPv4 interface, :: every interface) and prints the URLs it serves.
 * With --user, clients must authenticate (RTSP basic or digest
 * authentication, gst-rtsp-server's GstRTSPAuth) with that name and the
 * password read from the first line of --password-file, or else from the
 * environment variable FLORENCE2_RTSP_PASSWORD: never from the command line,
 * where other users could read it. RTSP itself is not encrypted: over
 * untrusted networks, tunnel it.
 *
 * The model is loaded once, before serving: a bad model or task stops the
 * server at once with the model's error message (exit status 1). A
 * florence2 element kept PAUSED holds the loaded model, so each client
 * session's pipeline shares it instead of loading it again.
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

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PASSWORD_ENV "FLORENCE2_RTSP_PASSWORD"

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
  /* the clients only see a failed request: say what happened here */
  if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR ||
      GST_MESSAGE_TYPE (message) == GST_MESSAGE_WARNING) {
    gboolean is_error = GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR;
    GError *error = NULL;
    gchar *debug = NULL, *src = gst_object_get_path_string (message->src);

    if (is_error)
      gst_message_parse_error (message, &error, &debug);
    else
      gst_message_parse_warning (message, &error, &debug);
    g_printerr ("%s from %s: %s\n%s%s%s", is_error ? "Error" : "Warning", src,
        error->message, debug ? "  (" : "", debug ? debug : "",
        debug ? ")\n" : "");
    g_clear_error (&error);
    g_free (debug);
    g_free (src);
  } else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT &&
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
set_property_from_string (GstElement * element, const gchar * assignment,
    gboolean report)
{
  gchar **kv = g_strsplit (assignment, "=", 2);

  if (kv[0] && kv[1] &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (element), kv[0]))
    gst_util_set_object_arg (G_OBJECT (element), kv[0], kv[1]);
  else if (report)
    g_printerr ("ignoring '%s': not NAME=VALUE with NAME a florence2 "
        "property\n", assignment);
  g_strfreev (kv);
}

/* Give @f2 the settings of the command line. */
static void
configure_florence2 (GstElement * f2, const Settings * settings,
    gboolean report)
{
  g_object_set (f2, "model", settings->model, NULL);
  gst_util_set_object_arg (G_OBJECT (f2), "task", settings->task);
  if (settings->prompt)
    g_object_set (f2, "prompt", settings->prompt, NULL);
  if (settings->live) {
    gst_util_set_object_arg (G_OBJECT (f2), "latency-mode", "low-latency");
    g_object_set (f2, "skip-when-busy", TRUE, NULL);
  }
  for (guint i = 0; settings->properties && settings->properties[i]; i++)
    set_property_from_string (f2, settings->properties[i], report);
}

/* Some time after the last client left and its pipeline went away: give
 * the memory it freed back to the system. glibc keeps freed memory in its
 * per-thread arenas, and each session's threads (encoder, inference,
 * streaming) leave some behind, so the idle size of the server would creep
 * up from session to session without this. */
static gboolean
trim_memory (gpointer user_data)
{
#ifdef __GLIBC__
  malloc_trim (0);
#endif
  return G_SOURCE_REMOVE;
}

static void
on_media_unprepared (GstRTSPMedia * media, gpointer user_data)
{
  g_print ("media unprepared: no client left\n");
  g_timeout_add_seconds (1, trim_memory, NULL);
}

/* The shared media's pipeline exists: configure its florence2 element. */
static void
on_media_configure (GstRTSPMediaFactory * factory, GstRTSPMedia * media,
    gpointer user_data)
{
  const Settings *settings = user_data;
  GstElement *bin = gst_rtsp_media_get_element (media);
  GstElement *f2 = gst_bin_get_by_name (GST_BIN (bin), "f2");

  configure_florence2 (f2, settings, FALSE);
  /* each client session starts a new pipeline: keep the earlier results */
  g_object_set (f2, "emit-messages", TRUE, "results-append", TRUE, NULL);
  if (settings->results)
    g_object_set (f2, "results-location", settings->results, NULL);
  g_signal_connect (media, "unprepared", G_CALLBACK (on_media_unprepared),
      NULL);
  g_print ("media configured: a client is watching\n");

  gst_object_unref (f2);
  gst_object_unref (bin);
}

/* Load the model once, before serving, in a florence2 element of its own
 * that stays PAUSED: it checks the model, task and prompt, and keeps the
 * model loaded for the client sessions' pipelines, which share it. NULL
 * with @error set (the element's message) when it cannot start. */
static GstElement *
load_model (const Settings * settings, GError ** error)
{
  GstElement *pipeline = gst_pipeline_new ("model-holder");
  GstElement *f2 = gst_element_factory_make ("florence2", NULL);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;

  gst_bin_add (GST_BIN (pipeline), f2);
  configure_florence2 (f2, settings, TRUE);
  g_object_set (f2, "results-location", NULL, NULL);    /* it sees no frame */
  if (gst_element_set_state (pipeline, GST_STATE_PAUSED) !=
      GST_STATE_CHANGE_FAILURE) {
    gst_object_unref (bus);
    return pipeline;
  }
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  if (msg != NULL) {
    GError *err = NULL;
    gchar *debug = NULL, *hint;

    gst_message_parse_error (msg, &err, &debug);
    /* the debug text is "file(line): function (): element path:\nhint" */
    hint = debug ? strchr (debug, '\n') : NULL;
    g_set_error (error, err->domain, err->code, "%s%s%s", err->message,
        hint ? "\n  " : "", hint ? hint + 1 : "");
    g_clear_error (&err);
    g_free (debug);
    gst_message_unref (msg);
  } else {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_STATE_CHANGE,
        "the florence2 element did not start");
  }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  return NULL;
}

/* ---- Network */

static gboolean
is_wildcard (const gchar * address)
{
  return g_str_equal (address, "0.0.0.0") || g_str_equal (address, "::");
}

static gboolean
is_loopback (const gchar * address)
{
  struct in_addr v4;
  struct in6_addr v6;

  if (inet_pton (AF_INET, address, &v4) == 1)
    return (ntohl (v4.s_addr) >> 24) == 127;
  if (inet_pton (AF_INET6, address, &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK (&v6);
  return g_str_equal (address, "localhost");
}

static void
print_url (const gchar * host, gint port, const gchar * mount)
{
  gboolean v6 = strchr (host, ':') != NULL;

  g_print ("stream ready at rtsp://%s%s%s:%d%s\n", v6 ? "[" : "", host,
      v6 ? "]" : "", port, mount);
}

/* The URLs served: the address itself, or for a wildcard address the
 * addresses of the interfaces that are up (IPv4 only for 0.0.0.0). */
static void
print_urls (const gchar * address, gint port, const gchar * mount)
{
  struct ifaddrs *ifs, *i;
  gboolean v4_only = g_str_equal (address, "0.0.0.0");

  if (!is_wildcard (address) || getifaddrs (&ifs) != 0) {
    print_url (address, port, mount);
    return;
  }
  for (i = ifs; i != NULL; i = i->ifa_next) {
    char host[NI_MAXHOST];
    int family = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;

    if ((family != AF_INET && (v4_only || family != AF_INET6)) ||
        !(i->ifa_flags & IFF_UP))
      continue;
    if (getnameinfo (i->ifa_addr, family == AF_INET ?
            sizeof (struct sockaddr_in) : sizeof (struct sockaddr_in6),
            host, sizeof (host), NULL, 0, NI_NUMERICHOST) != 0)
      continue;
    if (family == AF_INET6 && strchr (host, '%') != NULL)
      continue;                 /* link-local: needs a scope, skip it */
    print_url (host, port, mount);
  }
  freeifaddrs (ifs);
}

/* The password of --user: the first line of @file, else $PASSWORD_ENV.
 * NULL with @error set when there is none. */
static gchar *
read_password (const gchar * file, GError ** error)
{
  gchar *text = NULL;

  if (file != NULL) {
    if (!g_file_get_contents (file, &text, NULL, error))
      return NULL;
    text[strcspn (text, "\r\n")] = '\0';
  } else if (g_getenv (PASSWORD_ENV) != NULL) {
    text = g_strdup (g_getenv (PASSWORD_ENV));
  }
  if (text == NULL || *text == '\0') {
    g_free (text);
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--user needs a password: put it in a file given with "
        "--password-file, or in the environment variable " PASSWORD_ENV);
    return NULL;
  }
  return text;
}

/* Clients must authenticate as @user (basic or digest) to see the stream. */
static void
require_authentication (GstRTSPServer * server, GstRTSPMediaFactory * factory,
    const gchar * user, const gchar * password)
{
  GstRTSPAuth *auth = gst_rtsp_auth_new ();
  GstRTSPToken *token = gst_rtsp_token_new (GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE,
      G_TYPE_STRING, "viewer", NULL);
  gchar *basic = gst_rtsp_auth_make_basic (user, password);

  gst_rtsp_auth_add_basic (auth, basic, token);
  gst_rtsp_auth_add_digest (auth, user, password, token);
  gst_rtsp_auth_set_supported_methods (auth,
      GST_RTSP_AUTH_BASIC | GST_RTSP_AUTH_DIGEST);
  gst_rtsp_server_set_auth (server, auth);
  gst_rtsp_media_factory_add_role (factory, "viewer",
      GST_RTSP_PERM_MEDIA_FACTORY_ACCESS, G_TYPE_BOOLEAN, TRUE,
      GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN, TRUE, NULL);
  g_free (basic);
  gst_rtsp_token_unref (token);
  g_object_unref (auth);
}

int
main (int argc, char **argv)
{
  gint port = 8554;
  gchar *mount = NULL, *source = NULL, *launch = NULL, *src_desc = NULL;
  gchar *address = NULL, *user = NULL, *password_file = NULL;
  gchar *password = NULL, *service, *mqtt = NULL, *publish = NULL;
  Settings settings = { 0 };
  GOptionEntry entries[] = {
    {"address", 'a', 0, G_OPTION_ARG_STRING, &address,
          "Address to listen on (default 127.0.0.1: this machine only; "
          "0.0.0.0: every IPv4 interface)", "ADDRESS"},
    {"port", 0, 0, G_OPTION_ARG_INT, &port,
        "RTSP port (default 8554; 0: any free port)", "PORT"},
    {"user", 'u', 0, G_OPTION_ARG_STRING, &user,
          "Clients must authenticate with this name and the password of "
          "--password-file or $" PASSWORD_ENV, "NAME"},
    {"password-file", 0, 0, G_OPTION_ARG_FILENAME, &password_file,
        "File whose first line is the password of --user", "FILE"},
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
    {"mqtt", 0, 0, G_OPTION_ARG_STRING, &mqtt,
          "Publish the results to this MQTT broker, under the topic "
          "florence2<MOUNT>", "HOST:PORT"},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY,
        &settings.properties, NULL, "[PROPERTY=VALUE...]"},
    {NULL}
  };
  GOptionContext *ctx;
  GError *error = NULL;
  GstRTSPServer *server = NULL;
  GstRTSPMountPoints *mounts;
  GstRTSPMediaFactory *factory;
  GstElement *model_holder = NULL;
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
  if (address == NULL)
    address = g_strdup ("127.0.0.1");
  if (port < 0 || port > 65535 || mount[0] != '/') {
    g_printerr ("--port must be 0..65535 and --mount start with '/'\n");
    status = 2;
    goto out;
  }
  if (user == NULL && password_file != NULL) {
    g_printerr ("--password-file is the password of --user: give both\n");
    status = 2;
    goto out;
  }
  if (user != NULL && (password = read_password (password_file,
              &error)) == NULL) {
    g_printerr ("%s\n", error->message);
    g_clear_error (&error);
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

  model_holder = load_model (&settings, &error);
  if (model_holder == NULL) {
    g_printerr ("Cannot serve: %s\n", error->message);
    g_clear_error (&error);
    goto out;
  }

  if (mqtt != NULL) {
    if (!have_element ("florence2publish")) {
      g_printerr ("No florence2publish element: the plugin was built "
          "without libmosquitto (Debian: libmosquitto-dev)\n");
      goto out;
    }
    /* each mount (camera) under its own topic */
    publish = g_strdup_printf ("! florence2publish method=mqtt "
        "address=\"%s\" topic=\"florence2%s\" ", mqtt, mount);
  }
  launch = g_strdup_printf ("( %s ! videoconvert ! queue ! florence2 name=f2 "
      "%s%s ! videoconvert ! video/x-raw,format=I420 ! %s "
      "! rtph264pay name=pay0 pt=96 config-interval=1 )", src_desc,
      publish ? publish : "",
      have_element ("florence2overlay") ? "! florence2overlay" : "", encoder);

  server = gst_rtsp_server_new ();
  gst_rtsp_server_set_address (server, address);
  service = g_strdup_printf ("%d", port);
  gst_rtsp_server_set_service (server, service);
  g_free (service);

  factory = gst_rtsp_media_factory_new ();
  gst_rtsp_media_factory_set_launch (factory, launch);
  gst_rtsp_media_factory_set_shared (factory, TRUE);
  gst_rtsp_media_factory_set_media_gtype (factory, analytics_media_get_type ());
  g_signal_connect (factory, "media-configure",
      G_CALLBACK (on_media_configure), &settings);

  if (user != NULL)
    require_authentication (server, factory, user, password);

  mounts = gst_rtsp_server_get_mount_points (server);
  gst_rtsp_mount_points_add_factory (mounts, mount, factory);
  g_object_unref (mounts);

  if (gst_rtsp_server_attach (server, NULL) == 0) {
    g_printerr ("Cannot listen on %s port %d (in use, or not an address "
        "of this machine?)\n", address, port);
    goto out;
  }

  loop = g_main_loop_new (NULL, FALSE);
  /* Ctrl-C or SIGTERM: stop cleanly, so the results file is complete */
  sig_int = g_unix_signal_add (SIGINT, on_signal, loop);
  sig_term = g_unix_signal_add (SIGTERM, on_signal, loop);
  print_urls (address, gst_rtsp_server_get_bound_port (server), mount);
  if (user != NULL)
    g_print ("clients authenticate as '%s'\n", user);
  else if (!is_loopback (address))
    g_printerr ("Warning: every host that reaches %s may watch without "
        "authentication (see --user)\n", address);
  g_main_loop_run (loop);
  g_source_remove (sig_int);
  g_source_remove (sig_term);
  g_main_loop_unref (loop);
  status = 0;

out:
  if (server)
    g_object_unref (server);
  if (model_holder) {
    gst_element_set_state (model_holder, GST_STATE_NULL);
    gst_object_unref (model_holder);
  }
  g_free (address);
  g_free (user);
  g_free (password_file);
  if (password)
    memset (password, 0, strlen (password));
  g_free (password);
  g_free (launch);
  g_free (src_desc);
  g_free (mount);
  g_free (mqtt);
  g_free (publish);
  g_free (source);
  g_free (settings.model);
  g_free (settings.task);
  g_free (settings.prompt);
  g_free (settings.results);
  g_strfreev (settings.properties);
  return status;
}
