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
 *               [--results FILE] [--mqtt HOST:PORT]
 *               [--batch-size N] [--batch-timeout-ms MS] [PROPERTY=VALUE ...]
 *
 * Several cameras: repeat --source, one mount per source. The i-th --mount
 * serves the i-th --source; sources without a --mount of their own get
 * /florence2, /florence2-2, /florence2-3, ... by their position. All mounts
 * share one loaded model, and their frames run in batches
 * (florence2's batch-size and batch-timeout): --batch-size frames per
 * batch (default: the number of sources), each frame waiting at most
 * --batch-timeout-ms (default 20) for the others. With several sources,
 * --results FILE writes one file per mount, the mount's name before the
 * extension (results.jsonl: results-florence2.jsonl,
 * results-florence2-2.jsonl, ...), and each printed result and session
 * line names its mount: "florence2-result /florence2-2 {...}".
 *
 *   rtsp-server --source /dev/video0 --source /dev/video2 \
 *               --source rtsp://camera3/stream --results results.jsonl
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

#define DEFAULT_BATCH_TIMEOUT_MS 20
#define MAX_BATCH_TIMEOUT_MS 10000      /* florence2's batch-timeout: 10 s */

typedef struct
{
  gchar *model, *task, *prompt, *results;
  gchar **properties;
  gint batch_size;              /* florence2's batch-size */
  gint batch_timeout_ms;
} Settings;

/* One source, served at one mount. */
typedef struct
{
  const Settings *settings;
  gchar *path;                  /* "/florence2" */
  gchar *tag;                   /* the path in printed lines; NULL with one mount */
  gchar *results;               /* this mount's results file, or NULL */
  gchar *launch;                /* the pipeline */
  gboolean live;
} Mount;

/* " /mount" after a printed line's words when several mounts share the
 * output, else "". */
#define MOUNT_TAG(m) \
    ((m) && (m)->tag ? " " : ""), ((m) && (m)->tag ? (m)->tag : "")

/* ---- A media that prints the florence2-result messages of its pipeline */

typedef GstRTSPMedia AnalyticsMedia;
typedef GstRTSPMediaClass AnalyticsMediaClass;

static GType analytics_media_get_type (void);
G_DEFINE_TYPE (AnalyticsMedia, analytics_media, GST_TYPE_RTSP_MEDIA);

static gboolean
analytics_media_handle_message (GstRTSPMedia * media, GstMessage * message)
{
  const Mount *m = g_object_get_data (G_OBJECT (media), "florence2-mount");

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
    g_printerr ("%s from %s%s%s: %s\n%s%s%s", is_error ? "Error" : "Warning",
        src, MOUNT_TAG (m), error->message, debug ? "  (" : "",
        debug ? debug : "", debug ? ")\n" : "");
    g_clear_error (&error);
    g_free (debug);
    g_free (src);
  } else if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ELEMENT &&
      gst_message_has_name (message, "florence2-result")) {
    const GstStructure *s = gst_message_get_structure (message);
    const gchar *json = gst_structure_get_string (s, "json");

    /* the result as JSON (gst_florence2_meta_to_json) when it is there */
    if (json) {
      g_print ("florence2-result%s%s %s\n", MOUNT_TAG (m), json);
    } else {
      gchar *text = gst_structure_to_string (s);

      g_print ("%s%s%s\n", text, MOUNT_TAG (m));
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

/* Give @f2 the settings of the command line (@live: its source is). */
static void
configure_florence2 (GstElement * f2, const Settings * settings,
    gboolean live, gboolean report)
{
  g_object_set (f2, "model", settings->model, NULL);
  gst_util_set_object_arg (G_OBJECT (f2), "task", settings->task);
  if (settings->prompt)
    g_object_set (f2, "prompt", settings->prompt, NULL);
  /* the mounts' elements share the model: their frames run in batches */
  g_object_set (f2, "batch-size", (guint) settings->batch_size,
      "batch-timeout", (guint64) settings->batch_timeout_ms * GST_MSECOND,
      NULL);
  if (live) {
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
  const Mount *m = user_data;

  g_print ("media unprepared: no client left%s%s\n", MOUNT_TAG (m));
  g_timeout_add_seconds (1, trim_memory, NULL);
}

/* The shared media's pipeline exists: configure its florence2 element. */
static void
on_media_configure (GstRTSPMediaFactory * factory, GstRTSPMedia * media,
    gpointer user_data)
{
  const Mount *m = user_data;
  GstElement *bin = gst_rtsp_media_get_element (media);
  GstElement *f2 = gst_bin_get_by_name (GST_BIN (bin), "f2");

  g_object_set_data (G_OBJECT (media), "florence2-mount", (gpointer) m);
  configure_florence2 (f2, m->settings, m->live, FALSE);
  /* each client session starts a new pipeline: keep the earlier results */
  g_object_set (f2, "emit-messages", TRUE, "results-append", TRUE, NULL);
  if (m->results)
    g_object_set (f2, "results-location", m->results, NULL);
  g_signal_connect (media, "unprepared", G_CALLBACK (on_media_unprepared),
      (gpointer) m);
  g_print ("media configured: a client is watching%s%s\n", MOUNT_TAG (m));

  gst_object_unref (f2);
  gst_object_unref (bin);
}

/* Load the model once, before serving, in a florence2 element of its own
 * that stays PAUSED: it checks the model, task and prompt, and keeps the
 * model loaded for the client sessions' pipelines, which share it. NULL
 * with @error set (the element's message) when it cannot start. */
static GstElement *
load_model (const Settings * settings, gboolean live, GError ** error)
{
  GstElement *pipeline = gst_pipeline_new ("model-holder");
  GstElement *f2 = gst_element_factory_make ("florence2", NULL);
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;

  gst_bin_add (GST_BIN (pipeline), f2);
  configure_florence2 (f2, settings, live, TRUE);
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

/* Clients must authenticate as @user (basic or digest) to see the streams
 * (each factory lets the "viewer" role in, see allow_viewer()). */
static void
require_authentication (GstRTSPServer * server, const gchar * user,
    const gchar * password)
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
  g_free (basic);
  gst_rtsp_token_unref (token);
  g_object_unref (auth);
}

static void
allow_viewer (GstRTSPMediaFactory * factory)
{
  gst_rtsp_media_factory_add_role (factory, "viewer",
      GST_RTSP_PERM_MEDIA_FACTORY_ACCESS, G_TYPE_BOOLEAN, TRUE,
      GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN, TRUE, NULL);
}

/* ---- Mounts */

/* The path of source @index: the @index-th --mount, else /florence2,
 * /florence2-2, ... by position. */
static gchar *
mount_path (gchar ** paths, guint index)
{
  if (paths != NULL && index < g_strv_length (paths))
    return g_strdup (paths[index]);
  if (index == 0)
    return g_strdup ("/florence2");
  return g_strdup_printf ("/florence2-%u", index + 1);
}

/* @results with the name of mount @path before its extension:
 * results.jsonl at /florence2-2 gives results-florence2-2.jsonl. */
static gchar *
results_for_mount (const gchar * results, const gchar * path)
{
  gchar *name = g_strdelimit (g_strdup (path[1] ? path + 1 : "root"), "/",
      '-');
  const gchar *base = strrchr (results, '/');
  const gchar *dot;
  gsize stem;
  gchar *file;

  base = base ? base + 1 : results;
  dot = strrchr (base, '.');
  stem = (dot != NULL && dot != base) ? (gsize) (dot - results) :
      strlen (results);
  file = g_strdup_printf ("%.*s-%s%s", (int) stem, results, name,
      results + stem);
  g_free (name);
  return file;
}

/* The pipeline of a mount: @src_desc through florence2 to H.264. */
static gchar *
mount_launch (const gchar * src_desc, const gchar * path, const gchar * mqtt,
    const gchar * encoder)
{
  gchar *publish = NULL, *launch;

  /* each mount (camera) under its own topic */
  if (mqtt != NULL)
    publish = g_strdup_printf ("! florence2publish method=mqtt "
        "address=\"%s\" topic=\"florence2%s\" ", mqtt, path);
  launch = g_strdup_printf ("( %s ! videoconvert ! queue ! florence2 name=f2 "
      "%s%s ! videoconvert ! video/x-raw,format=I420 ! %s "
      "! rtph264pay name=pay0 pt=96 config-interval=1 )", src_desc,
      publish ? publish : "",
      have_element ("florence2overlay") ? "! florence2overlay" : "", encoder);
  g_free (publish);
  return launch;
}

static void
mounts_free (Mount * mounts, guint n)
{
  for (guint i = 0; mounts != NULL && i < n; i++) {
    g_free (mounts[i].path);
    g_free (mounts[i].tag);
    g_free (mounts[i].results);
    g_free (mounts[i].launch);
  }
  g_free (mounts);
}

/* A mount per source (@sources: NULL for the test source), the i-th of
 * @paths serving the i-th source. NULL with @error set when a source or
 * a path does not fit. */
static Mount *
make_mounts (const Settings * settings, gchar ** sources, gchar ** paths,
    const gchar * mqtt, const gchar * encoder, guint * n_mounts,
    GError ** error)
{
  static gchar *default_sources[] = { (gchar *) "test", NULL };
  Mount *mounts;
  guint n;

  if (sources == NULL || sources[0] == NULL)
    sources = default_sources;
  n = g_strv_length (sources);
  if (paths != NULL && g_strv_length (paths) > n) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "%u --mount for %u --source: the i-th --mount serves the i-th "
        "--source, give one --source per mount", g_strv_length (paths), n);
    return NULL;
  }
  mounts = g_new0 (Mount, n);
  for (guint i = 0; i < n; i++) {
    Mount *m = &mounts[i];
    gchar *src_desc;

    m->settings = settings;
    m->path = mount_path (paths, i);
    if (m->path[0] != '/') {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "--mount '%s' must start with '/'", m->path);
      goto fail;
    }
    for (guint j = 0; j < i; j++) {
      if (g_str_equal (mounts[j].path, m->path)) {
        g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
            "sources %u and %u are both at mount %s: give each --source a "
            "--mount of its own", j + 1, i + 1, m->path);
        goto fail;
      }
    }
    src_desc = source_description (sources[i], &m->live, error);
    if (src_desc == NULL)
      goto fail;
    m->launch = mount_launch (src_desc, m->path, mqtt, encoder);
    g_free (src_desc);
    if (n > 1) {
      m->tag = g_strdup (m->path);
      if (settings->results != NULL)
        m->results = results_for_mount (settings->results, m->path);
    } else {
      m->results = g_strdup (settings->results);
    }
  }
  *n_mounts = n;
  return mounts;

fail:
  mounts_free (mounts, n);
  return NULL;
}

/* The largest batch-size of the florence2 element. */
static gint
max_batch_size (void)
{
  GstElement *f2 = gst_element_factory_make ("florence2", NULL);
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (f2),
      "batch-size");
  gint max = pspec ? (gint) G_PARAM_SPEC_UINT (pspec)->maximum : 1;

  gst_object_unref (f2);
  return max;
}

/* Check --batch-size (0: the number of sources, up to the element's
 * largest) and --batch-timeout-ms. FALSE with @error set when out of
 * range. */
static gboolean
check_batch (Settings * settings, guint n_sources, GError ** error)
{
  gint max = max_batch_size ();

  if (settings->batch_size == 0)
    settings->batch_size = MIN ((gint) n_sources, max);
  if (settings->batch_size < 1 || settings->batch_size > max) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--batch-size must be 1..%d (frames per batch across the sources), "
        "not %d", max, settings->batch_size);
    return FALSE;
  }
  if (settings->batch_timeout_ms < 0 ||
      settings->batch_timeout_ms > MAX_BATCH_TIMEOUT_MS) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--batch-timeout-ms must be 0..%d, not %d", MAX_BATCH_TIMEOUT_MS,
        settings->batch_timeout_ms);
    return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  gint port = 8554;
  gchar **mount_paths = NULL, **sources = NULL;
  gchar *address = NULL, *user = NULL, *password_file = NULL;
  gchar *password = NULL, *service, *mqtt = NULL;
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
    {"mount", 0, 0, G_OPTION_ARG_STRING_ARRAY, &mount_paths,
          "Mount point (default /florence2); repeated, the i-th serves the "
          "i-th --source (default /florence2-2, /florence2-3, ...)", "PATH"},
    {"source", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sources,
          "test, /dev/videoN, a URI or a file (default test); repeat it for "
          "several cameras, one mount each", "SOURCE"},
    {"model", 'm', 0, G_OPTION_ARG_FILENAME, &settings.model,
        "Florence-2 model directory (default $FLORENCE2_MODEL)", "DIR"},
    {"task", 't', 0, G_OPTION_ARG_STRING, &settings.task,
        "Task nick (default od)", "NICK"},
    {"prompt", 'p', 0, G_OPTION_ARG_STRING, &settings.prompt,
        "Text input of the task", "TEXT"},
    {"results", 'r', 0, G_OPTION_ARG_FILENAME, &settings.results,
          "Write the results as JSON lines to FILE (several sources: one "
          "file per mount, FILE with the mount's name before its "
          "extension)", "FILE"},
    {"mqtt", 0, 0, G_OPTION_ARG_STRING, &mqtt,
          "Publish the results to this MQTT broker, under the topic "
          "florence2<MOUNT>", "HOST:PORT"},
    {"batch-size", 0, 0, G_OPTION_ARG_INT, &settings.batch_size,
          "Frames per batch across the sources (default: the number of "
          "sources; 1: no batching)", "N"},
    {"batch-timeout-ms", 0, 0, G_OPTION_ARG_INT, &settings.batch_timeout_ms,
          "Longest wait of a frame for its batch to fill (default 20)",
        "MS"},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY,
        &settings.properties, NULL, "[PROPERTY=VALUE...]"},
    {NULL}
  };
  GOptionContext *ctx;
  GError *error = NULL;
  GstRTSPServer *server = NULL;
  GstRTSPMountPoints *points;
  Mount *mounts = NULL;
  guint n_mounts = 0;
  GstElement *model_holder = NULL;
  GMainLoop *loop;
  guint sig_int, sig_term;
  const gchar *encoder;
  int status = 1;

  setvbuf (stdout, NULL, _IOLBF, 0);   /* one line at a time into pipes */
  settings.batch_timeout_ms = DEFAULT_BATCH_TIMEOUT_MS;
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
  if (address == NULL)
    address = g_strdup ("127.0.0.1");
  if (port < 0 || port > 65535) {
    g_printerr ("--port must be 0..65535\n");
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
  encoder = pick_encoder ();
  if (encoder == NULL) {
    g_printerr ("No H.264 encoder: install gstreamer1.0-plugins-ugly "
        "(x264enc) or gstreamer1.0-plugins-bad (openh264enc)\n");
    goto out;
  }
  if (mqtt != NULL && !have_element ("florence2publish")) {
    g_printerr ("No florence2publish element: the plugin was built "
        "without libmosquitto (Debian: libmosquitto-dev)\n");
    goto out;
  }
  mounts = make_mounts (&settings, sources, mount_paths, mqtt, encoder,
      &n_mounts, &error);
  if (mounts == NULL) {
    g_printerr ("%s\n", error->message);
    g_clear_error (&error);
    status = 2;
    goto out;
  }

  if (!have_element ("florence2")) {
    g_printerr ("No florence2 element: install gstreamer1.0-florence2 or "
        "point GST_PLUGIN_PATH at the build's gst/ folder\n");
    goto out;
  }
  if (!have_element ("florence2overlay"))
    g_printerr ("No florence2overlay element: the stream carries no drawings\n");
  if (!check_batch (&settings, n_mounts, &error)) {
    g_printerr ("%s\n", error->message);
    g_clear_error (&error);
    status = 2;
    goto out;
  }

  model_holder = load_model (&settings, mounts[0].live, &error);
  if (model_holder == NULL) {
    g_printerr ("Cannot serve: %s\n", error->message);
    g_clear_error (&error);
    goto out;
  }

  server = gst_rtsp_server_new ();
  gst_rtsp_server_set_address (server, address);
  service = g_strdup_printf ("%d", port);
  gst_rtsp_server_set_service (server, service);
  g_free (service);
  if (user != NULL)
    require_authentication (server, user, password);

  points = gst_rtsp_server_get_mount_points (server);
  for (guint i = 0; i < n_mounts; i++) {
    GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new ();

    gst_rtsp_media_factory_set_launch (factory, mounts[i].launch);
    gst_rtsp_media_factory_set_shared (factory, TRUE);
    gst_rtsp_media_factory_set_media_gtype (factory,
        analytics_media_get_type ());
    g_signal_connect (factory, "media-configure",
        G_CALLBACK (on_media_configure), &mounts[i]);
    if (user != NULL)
      allow_viewer (factory);
    gst_rtsp_mount_points_add_factory (points, mounts[i].path, factory);
  }
  g_object_unref (points);

  if (gst_rtsp_server_attach (server, NULL) == 0) {
    g_printerr ("Cannot listen on %s port %d (in use, or not an address "
        "of this machine?)\n", address, port);
    goto out;
  }

  loop = g_main_loop_new (NULL, FALSE);
  /* Ctrl-C or SIGTERM: stop cleanly, so the results files are complete */
  sig_int = g_unix_signal_add (SIGINT, on_signal, loop);
  sig_term = g_unix_signal_add (SIGTERM, on_signal, loop);
  for (guint i = 0; i < n_mounts; i++)
    print_urls (address, gst_rtsp_server_get_bound_port (server),
        mounts[i].path);
  if (n_mounts > 1)
    g_print ("%u sources on one model, in batches of up to %d frames "
        "(waiting at most %d ms)\n", n_mounts, settings.batch_size,
        settings.batch_timeout_ms);
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
  mounts_free (mounts, n_mounts);
  g_free (address);
  g_free (user);
  g_free (password_file);
  if (password)
    memset (password, 0, strlen (password));
  g_free (password);
  g_strfreev (mount_paths);
  g_strfreev (sources);
  g_free (mqtt);
  g_free (settings.model);
  g_free (settings.task);
  g_free (settings.prompt);
  g_free (settings.results);
  g_strfreev (settings.properties);
  return status;
}
