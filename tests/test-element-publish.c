/* florence2publish with GstHarness against a real mosquitto broker on
 * loopback (started by each test on a free port with a generated
 * configuration, and stopped again) and a libmosquitto subscriber: every
 * message is the results-location line of its buffer, at QoS 0, 1 and 2;
 * messages wait for a broker that is down at start, and for one that goes
 * away mid-stream, and arrive in order; beyond max-queued the oldest are
 * dropped and counted; EOS waits for the broker or reports what is left;
 * refused credentials and TLS trouble are element errors naming the cause;
 * the file method writes JSON lines and a JSON array. Results are attached
 * by hand: no model runs here. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <mosquitto.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gst/florence2/gstflorence2meta.h>

static const gchar *mosquitto_bin;
static gchar *tmp_dir;

/* ------------------------------------------------------------ broker */

typedef struct
{
  gint port;                    /* anonymous, plain */
  gint port2;                   /* the second listener (auth or TLS), or 0 */
  gchar *conf;
  GSubprocess *proc;
} Broker;

static gint
free_port (void)
{
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof (addr);
  gint fd = socket (AF_INET, SOCK_STREAM, 0);

  fail_unless (fd >= 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  fail_unless (bind (fd, (struct sockaddr *) &addr, sizeof (addr)) == 0);
  fail_unless (getsockname (fd, (struct sockaddr *) &addr, &len) == 0);
  close (fd);
  return ntohs (addr.sin_port);
}

static gboolean
port_open (gint port)
{
  struct sockaddr_in addr = { 0 };
  gint fd = socket (AF_INET, SOCK_STREAM, 0);
  gboolean ok;

  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  addr.sin_port = htons (port);
  ok = connect (fd, (struct sockaddr *) &addr, sizeof (addr)) == 0;
  close (fd);
  return ok;
}

/* A broker listening on 127.0.0.1:port (anonymous), plus @listener2 (a
 * listener block for port2, "%d" for the port) when given. Sessions and
 * their queued messages survive a stop and start (persistence). */
static Broker *
broker_new (const gchar * listener2)
{
  Broker *b = g_new0 (Broker, 1);
  GString *conf = g_string_new (NULL);
  gchar *dir = g_build_filename (tmp_dir, "broker-XXXXXX", NULL);

  fail_unless (g_mkdtemp (dir) != NULL);
  b->port = free_port ();
  g_string_append_printf (conf, "per_listener_settings true\n"
      "persistence true\npersistence_location %s/\n"
      "log_dest file %s/mosquitto.log\nlog_type all\n", dir, dir);
  if (geteuid () == 0)
    g_string_append (conf, "user root\n");
  g_string_append_printf (conf, "listener %d 127.0.0.1\n"
      "allow_anonymous true\n", b->port);
  if (listener2 != NULL) {
    b->port2 = free_port ();
    g_string_append_printf (conf, listener2, b->port2);
  }
  b->conf = g_build_filename (dir, "mosquitto.conf", NULL);
  fail_unless (g_file_set_contents (b->conf, conf->str, -1, NULL));
  g_string_free (conf, TRUE);
  g_free (dir);
  return b;
}

static void
broker_start (Broker * b)
{
  GError *error = NULL;
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  b->proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
      G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, mosquitto_bin, "-c",
      b->conf, NULL);
  fail_unless (b->proc != NULL, "cannot start mosquitto: %s",
      error ? error->message : "");
  while (!port_open (b->port) || (b->port2 && !port_open (b->port2))) {
    fail_unless (g_get_monotonic_time () < deadline,
        "mosquitto did not listen within 10 s (%s)", b->conf);
    g_usleep (20 * 1000);
  }
}

/* Stop the broker (SIGTERM: it saves its sessions). */
static void
broker_stop (Broker * b)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  if (b->proc == NULL)
    return;
  g_subprocess_send_signal (b->proc, SIGTERM);
  while (port_open (b->port) && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  if (g_get_monotonic_time () >= deadline)
    g_subprocess_force_exit (b->proc);
  g_subprocess_wait (b->proc, NULL, NULL);
  g_clear_object (&b->proc);
}

static void
broker_free (Broker * b)
{
  broker_stop (b);
  g_free (b->conf);
  g_free (b);
}

/* ------------------------------------------------------- subscriber */

static gint frame_of (const gchar * payload);

typedef struct
{
  struct mosquitto *mosq;
  gchar *topic;
  GMutex lock;
  GCond cond;
  GPtrArray *payloads;          /* gchar * */
  gboolean subscribed;
} Sub;

static void
sub_on_connect (struct mosquitto *mosq, void *data, int rc)
{
  Sub *s = data;

  if (rc == 0)
    mosquitto_subscribe (mosq, NULL, s->topic, 2);
}

static void
sub_on_subscribe (struct mosquitto *mosq, void *data, int mid, int n,
    const int *granted)
{
  Sub *s = data;

  g_mutex_lock (&s->lock);
  s->subscribed = TRUE;
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

static void
sub_on_message (struct mosquitto *mosq, void *data,
    const struct mosquitto_message *msg)
{
  Sub *s = data;

  g_mutex_lock (&s->lock);
  g_ptr_array_add (s->payloads, g_strndup (msg->payload, msg->payloadlen));
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

/* A subscriber to @topic whose session (and subscription) the broker keeps
 * while it is away and across broker restarts. */
static Sub *
sub_new (Broker * b, const gchar * topic)
{
  Sub *s = g_new0 (Sub, 1);
  gchar *id = g_strdup_printf ("florence2-test-sub-%d-%d", getpid (), b->port);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  s->payloads = g_ptr_array_new_with_free_func (g_free);
  s->topic = g_strdup (topic);
  s->mosq = mosquitto_new (id, false, s);
  g_free (id);
  fail_unless (s->mosq != NULL);
  mosquitto_connect_callback_set (s->mosq, sub_on_connect);
  mosquitto_subscribe_callback_set (s->mosq, sub_on_subscribe);
  mosquitto_message_callback_set (s->mosq, sub_on_message);
  mosquitto_reconnect_delay_set (s->mosq, 1, 1, false);
  fail_unless_equals_int (mosquitto_connect (s->mosq, "127.0.0.1", b->port,
          30), MOSQ_ERR_SUCCESS);
  fail_unless_equals_int (mosquitto_loop_start (s->mosq), MOSQ_ERR_SUCCESS);
  g_mutex_lock (&s->lock);
  while (!s->subscribed)
    fail_unless (g_cond_wait_until (&s->cond, &s->lock, deadline),
        "no SUBACK within 10 s");
  g_mutex_unlock (&s->lock);
  return s;
}

/* Wait up to @seconds for @n messages; returns how many came. */
static guint
sub_wait (Sub * s, guint n, gdouble seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  guint have;

  g_mutex_lock (&s->lock);
  while (s->payloads->len < n)
    if (!g_cond_wait_until (&s->cond, &s->lock, deadline))
      break;
  have = s->payloads->len;
  g_mutex_unlock (&s->lock);
  return have;
}

/* Wait up to @seconds for @n distinct frames (a message may come twice
 * across a reconnection); returns how many came. */
static guint
sub_wait_frames (Sub * s, guint n, gdouble seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  GHashTable *seen = g_hash_table_new (NULL, NULL);
  guint k = 0, have;

  g_mutex_lock (&s->lock);
  for (;;) {
    for (; k < s->payloads->len; k++)
      g_hash_table_add (seen, GINT_TO_POINTER (frame_of
              (g_ptr_array_index (s->payloads, k)) + 1));
    if (g_hash_table_size (seen) >= n ||
        !g_cond_wait_until (&s->cond, &s->lock, deadline))
      break;
  }
  for (; k < s->payloads->len; k++)
    g_hash_table_add (seen, GINT_TO_POINTER (frame_of
            (g_ptr_array_index (s->payloads, k)) + 1));
  have = g_hash_table_size (seen);
  g_mutex_unlock (&s->lock);
  g_hash_table_unref (seen);
  return have;
}

static void
sub_free (Sub * s)
{
  mosquitto_disconnect (s->mosq);
  mosquitto_loop_stop (s->mosq, false);
  mosquitto_destroy (s->mosq);
  g_ptr_array_unref (s->payloads);
  g_free (s->topic);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}

/* ----------------------------------------------------------- buffers */

#define FRAME_CAPS "video/x-raw,format=RGB,width=64,height=48,framerate=10/1"

static GstClockTime
frame_pts (guint i)
{
  return i * GST_SECOND / 10;
}

/* Frame @i with a result whose label names @i. */
static GstBuffer *
make_frame (guint i)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, 64 * 48 * 3, NULL);
  GstFlorence2Meta *meta;
  gchar *label = g_strdup_printf ("object %u", i);

  gst_buffer_memset (buffer, 0, 0x40, 64 * 48 * 3);
  GST_BUFFER_PTS (buffer) = frame_pts (i);
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 10;
  meta = gst_buffer_add_florence2_meta (buffer, "<OD>", NULL, NULL, 64, 48,
      frame_pts (i), 25 * GST_MSECOND);
  gst_florence2_meta_add_region (meta, label, 4 + i % 10, 6, 20, 10);
  g_free (label);
  return buffer;
}

/* The results-location line of frame @i. */
static gchar *
expected_json (guint i)
{
  GstBuffer *buffer = make_frame (i);
  gchar *json = gst_florence2_meta_to_json (gst_buffer_get_florence2_meta
      (buffer), frame_pts (i));

  gst_buffer_unref (buffer);
  return json;
}

/* Which frame a payload is (its label), or -1. */
static gint
frame_of (const gchar * payload)
{
  const gchar *p = strstr (payload, "\"label\":\"object ");

  return p ? atoi (p + strlen ("\"label\":\"object ")) : -1;
}

/* Push frames @from..@to-1; each comes out untouched. */
static void
push_frames (GstHarness * h, guint from, guint to)
{
  for (guint i = from; i < to; i++) {
    GstBuffer *out;

    fail_unless_equals_int (gst_harness_push (h, make_frame (i)),
        GST_FLOW_OK);
    out = gst_harness_pull (h);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), frame_pts (i));
    fail_unless (gst_buffer_get_florence2_meta (out) != NULL);
    gst_buffer_unref (out);
  }
}

static GstHarness *
publisher_new (const gchar * props)
{
  gchar *desc = g_strdup_printf ("florence2publish %s", props);
  GstHarness *h = gst_harness_new_parse (desc);

  g_free (desc);
  gst_harness_set_src_caps_str (h, FRAME_CAPS);
  return h;
}

static guint64
get_u64 (GstHarness * h, const gchar * name)
{
  guint64 v = 0;
  GstElement *e = gst_harness_find_element (h, "florence2publish");

  g_object_get (e, name, &v, NULL);
  gst_object_unref (e);
  return v;
}

static guint
get_queued (GstHarness * h)
{
  guint v = 0;
  GstElement *e = gst_harness_find_element (h, "florence2publish");

  g_object_get (e, "queued", &v, NULL);
  gst_object_unref (e);
  return v;
}

static GstBus *
attach_bus (GstHarness * h)
{
  GstBus *bus = gst_bus_new ();
  GstElement *e = gst_harness_find_element (h, "florence2publish");

  gst_element_set_bus (e, bus);
  gst_object_unref (e);
  return bus;
}

static void
teardown_with_bus (GstHarness * h, GstBus * bus)
{
  gst_bus_set_flushing (bus, TRUE);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

/* Wait up to @seconds until the element has published @n. */
static gboolean
wait_published (GstHarness * h, guint64 n, gdouble seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;

  while (get_u64 (h, "published") < n) {
    if (g_get_monotonic_time () > deadline)
      return FALSE;
    g_usleep (10 * 1000);
  }
  return TRUE;
}

/* The frames of the first occurrence of each payload, in arrival order;
 * every payload must be its frame's line exactly. */
static GArray *
first_frames (Sub * s, guint * duplicates)
{
  GArray *frames = g_array_new (FALSE, FALSE, sizeof (gint));
  GHashTable *seen = g_hash_table_new (NULL, NULL);

  *duplicates = 0;
  g_mutex_lock (&s->lock);
  for (guint k = 0; k < s->payloads->len; k++) {
    const gchar *payload = g_ptr_array_index (s->payloads, k);
    gint i = frame_of (payload);
    gchar *want;

    fail_unless (i >= 0, "not a result: %s", payload);
    want = expected_json (i);
    fail_unless_equals_string (payload, want);
    g_free (want);
    if (g_hash_table_contains (seen, GINT_TO_POINTER (i + 1))) {
      (*duplicates)++;
      continue;
    }
    g_hash_table_add (seen, GINT_TO_POINTER (i + 1));
    g_array_append_val (frames, i);
  }
  g_mutex_unlock (&s->lock);
  g_hash_table_unref (seen);
  return frames;
}

/* --------------------------------------------------------- the tests */

/* N frames -> N messages, each the frame's results-location line, in
 * order, at every QoS; the buffers pass untouched; timestamp-utc leads the
 * object with the wall clock. */
GST_START_TEST (test_mqtt_qos)
{
  Broker *b = broker_new (NULL);
  Sub *s;
  const guint n = 6;

  broker_start (b);
  s = sub_new (b, "cameras/+");
  for (gint qos = 0; qos <= 2; qos++) {
    gchar *props = g_strdup_printf ("address=127.0.0.1:%d topic=cameras/q%d "
        "qos=%d", b->port, qos, qos);
    GstHarness *h = publisher_new (props);
    guint dups;
    GArray *frames;

    g_ptr_array_set_size (s->payloads, 0);
    push_frames (h, 0, n);
    fail_unless_equals_int (sub_wait (s, n, 10), n);
    fail_unless (wait_published (h, n, 5));
    frames = first_frames (s, &dups);
    fail_unless_equals_int (dups, 0);
    for (guint i = 0; i < n; i++)
      fail_unless_equals_int (g_array_index (frames, gint, i), i);
    g_array_unref (frames);
    fail_unless_equals_uint64 (get_u64 (h, "dropped"), 0);
    gst_harness_teardown (h);
    g_free (props);
  }

  /* the default topic is florence2/<element name> */
  {
    Sub *s2 = sub_new (b, "florence2/#");
    gchar *props = g_strdup_printf ("name=door address=127.0.0.1:%d "
        "timestamp-utc=true", b->port);
    GstHarness *h = publisher_new (props);
    JsonNode *node;
    gchar *want = expected_json (0);
    const gchar *got;

    push_frames (h, 0, 1);
    fail_unless_equals_int (sub_wait (s2, 1, 10), 1);
    got = g_ptr_array_index (s2->payloads, 0);
    node = json_from_string (got, NULL);
    fail_unless (node != NULL && JSON_NODE_HOLDS_OBJECT (node), "%s", got);
    fail_unless (g_str_has_prefix (json_object_get_string_member
            (json_node_get_object (node), "timestamp_utc"), "20"));
    fail_unless (g_str_has_suffix (json_object_get_string_member
            (json_node_get_object (node), "timestamp_utc"), "Z"));
    /* the rest is the results-location object */
    fail_unless_equals_string (strchr (got, ',') + 1, want + 1);
    json_node_unref (node);
    g_free (want);
    g_free (props);
    gst_harness_teardown (h);
    sub_free (s2);
  }
  sub_free (s);
  broker_free (b);
}

GST_END_TEST;

/* The broker is down when the stream starts: the messages wait, and arrive
 * in order once it comes up. */
GST_START_TEST (test_mqtt_broker_late)
{
  Broker *b = broker_new (NULL);
  Sub *s;
  GstHarness *h;
  gchar *props;
  GArray *frames;
  guint dups;
  const guint n = 8;

  /* the subscriber's session outlives the broker's absence */
  broker_start (b);
  s = sub_new (b, "late");
  broker_stop (b);

  props = g_strdup_printf ("address=127.0.0.1:%d topic=late qos=1", b->port);
  h = publisher_new (props);
  push_frames (h, 0, n);
  g_usleep (300 * 1000);
  fail_unless_equals_int (get_queued (h), n);
  fail_unless_equals_uint64 (get_u64 (h, "published"), 0);

  broker_start (b);
  fail_unless_equals_int (sub_wait_frames (s, n, 15), n);
  fail_unless (wait_published (h, n, 5));
  frames = first_frames (s, &dups);
  fail_unless_equals_int (frames->len, n);
  for (guint i = 0; i < n; i++)
    fail_unless_equals_int (g_array_index (frames, gint, i), i);
  g_array_unref (frames);
  fail_unless_equals_int (get_queued (h), 0);

  gst_harness_teardown (h);
  g_free (props);
  sub_free (s);
  broker_free (b);
}

GST_END_TEST;

/* The broker goes away mid-stream and comes back (QoS 1 and 2): every
 * message arrives once or more, the first arrivals in order, none lost. */
GST_START_TEST (test_mqtt_broker_restart)
{
  for (gint qos = 1; qos <= 2; qos++) {
    Broker *b = broker_new (NULL);
    Sub *s;
    GstHarness *h;
    gchar *props;
    GArray *frames;
    guint dups, got;
    const guint n = 30;

    broker_start (b);
    s = sub_new (b, "restart");
    props = g_strdup_printf ("address=127.0.0.1:%d topic=restart qos=%d",
        b->port, qos);
    h = publisher_new (props);

    push_frames (h, 0, 10);
    fail_unless_equals_int (sub_wait_frames (s, 10, 10), 10);
    broker_stop (b);
    push_frames (h, 10, 20);
    g_usleep (200 * 1000);
    broker_start (b);
    push_frames (h, 20, n);

    fail_unless (wait_published (h, n, 15), "published %" G_GUINT64_FORMAT,
        get_u64 (h, "published"));
    sub_wait_frames (s, n, 15);
    frames = first_frames (s, &dups);
    if (frames->len != n) {
      GString *seen = g_string_new (NULL);

      for (guint i = 0; i < frames->len; i++)
        g_string_append_printf (seen, " %d", g_array_index (frames, gint, i));
      fail ("qos %d: %u of %u frames came:%s", qos, frames->len, n, seen->str);
    }
    for (guint i = 0; i < n; i++)
      fail_unless_equals_int (g_array_index (frames, gint, i), i);
    got = s->payloads->len;
    g_print ("broker restart, qos %d: sent %u, received %u (%u distinct, "
        "%u again), dropped %" G_GUINT64_FORMAT "\n", qos, n, got,
        frames->len, dups, get_u64 (h, "dropped"));
    fail_unless_equals_uint64 (get_u64 (h, "dropped"), 0);
    g_array_unref (frames);
    gst_harness_teardown (h);
    g_free (props);
    sub_free (s);
    broker_free (b);
  }
}

GST_END_TEST;

/* Down for longer than max-queued allows: the oldest are dropped and
 * counted (property, one warning, a bus message); the rest arrive. */
GST_START_TEST (test_mqtt_overflow)
{
  Broker *b = broker_new (NULL);
  Sub *s;
  GstHarness *h;
  GstBus *bus;
  GstMessage *msg;
  gchar *props;
  GArray *frames;
  guint dups, warnings = 0;
  const guint n = 12, max_queued = 5;
  guint64 dropped = 0;

  broker_start (b);
  s = sub_new (b, "overflow");
  broker_stop (b);

  props = g_strdup_printf ("address=127.0.0.1:%d topic=overflow qos=1 "
      "max-queued=%u", b->port, max_queued);
  h = publisher_new (props);
  bus = attach_bus (h);
  push_frames (h, 0, n);
  fail_unless_equals_uint64 (get_u64 (h, "dropped"), n - max_queued);
  fail_unless_equals_int (get_queued (h), max_queued);
  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING)) != NULL) {
    const GstStructure *details = NULL;

    gst_message_parse_warning_details (msg, &details);
    fail_unless (details != NULL);
    fail_unless (gst_structure_get_uint64 (details, "dropped", &dropped));
    warnings++;
    gst_message_unref (msg);
  }
  fail_unless_equals_int (warnings, 1);
  fail_unless_equals_uint64 (dropped, 1);

  broker_start (b);
  fail_unless_equals_int (sub_wait_frames (s, max_queued, 15), max_queued);
  fail_unless (wait_published (h, max_queued, 5));
  frames = first_frames (s, &dups);
  fail_unless_equals_int (frames->len, max_queued);
  for (guint i = 0; i < max_queued; i++)
    fail_unless_equals_int (g_array_index (frames, gint, i),
        n - max_queued + i);
  g_array_unref (frames);
  g_print ("outage: sent %u, received %u, dropped %" G_GUINT64_FORMAT "\n",
      n, s->payloads->len, get_u64 (h, "dropped"));

  /* the count, on the bus once the broker is back */
  msg = gst_bus_timed_pop_filtered (bus, 5 * GST_SECOND,
      GST_MESSAGE_ELEMENT);
  fail_unless (msg != NULL);
  fail_unless (gst_message_has_name (msg, "florence2publish-dropped"));
  fail_unless (gst_structure_get_uint64 (gst_message_get_structure (msg),
          "dropped", &dropped));
  fail_unless_equals_uint64 (dropped, n - max_queued);
  gst_message_unref (msg);

  teardown_with_bus (h, bus);
  g_free (props);
  sub_free (s);
  broker_free (b);
}

GST_END_TEST;

/* EOS waits for the broker's acknowledgements; with no broker it waits
 * flush-timeout and reports what is left. */
GST_START_TEST (test_mqtt_eos_flush)
{
  Broker *b = broker_new (NULL);
  Sub *s;
  GstHarness *h;
  GstBus *bus;
  GstMessage *msg;
  gchar *props;
  gint64 t0, waited;
  guint undelivered = 0;

  broker_start (b);
  s = sub_new (b, "eos");
  props = g_strdup_printf ("address=127.0.0.1:%d topic=eos qos=2", b->port);
  h = publisher_new (props);
  push_frames (h, 0, 20);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  /* all acknowledged once EOS is through */
  fail_unless_equals_uint64 (get_u64 (h, "published"), 20);
  fail_unless_equals_int (get_queued (h), 0);
  fail_unless_equals_int (sub_wait (s, 20, 10), 20);
  gst_harness_teardown (h);
  g_free (props);

  broker_stop (b);
  props = g_strdup_printf ("address=127.0.0.1:%d topic=eos qos=1 "
      "flush-timeout=300", b->port);
  h = publisher_new (props);
  bus = attach_bus (h);
  push_frames (h, 0, 3);
  t0 = g_get_monotonic_time ();
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  waited = g_get_monotonic_time () - t0;
  fail_unless (waited >= 280 * 1000 && waited < 3 * G_USEC_PER_SEC,
      "EOS waited %" G_GINT64_FORMAT " us", waited);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (msg != NULL);
  gst_message_unref (msg);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT);
  fail_unless (msg != NULL);
  fail_unless (gst_message_has_name (msg, "florence2publish-undelivered"));
  fail_unless (gst_structure_get_uint (gst_message_get_structure (msg),
          "undelivered", &undelivered));
  fail_unless_equals_int (undelivered, 3);
  gst_message_unref (msg);
  teardown_with_bus (h, bus);
  g_free (props);
  sub_free (s);
  broker_free (b);
}

GST_END_TEST;

/* Wait for an ERROR on @bus; its text must hold each of @words. */
static void
expect_error (GstBus * bus, GQuark domain, gint code, const gchar * words[])
{
  GstMessage *msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND,
      GST_MESSAGE_ERROR);
  GError *error = NULL;
  gchar *debug = NULL, *all;

  fail_unless (msg != NULL, "no error within 10 s");
  gst_message_parse_error (msg, &error, &debug);
  all = g_strdup_printf ("%s %s", error->message, debug ? debug : "");
  fail_unless (g_error_matches (error, domain, code), "%s", all);
  for (guint i = 0; words[i] != NULL; i++)
    fail_unless (strstr (all, words[i]) != NULL, "'%s' not in: %s",
        words[i], all);
  g_free (all);
  g_free (debug);
  g_error_free (error);
  gst_message_unref (msg);
}

static void
run (const gchar * program, ...)
{
  GPtrArray *argv = g_ptr_array_new ();
  const gchar *arg;
  gint status = -1;
  gchar *err = NULL;
  va_list ap;

  g_ptr_array_add (argv, (gpointer) program);
  va_start (ap, program);
  while ((arg = va_arg (ap, const gchar *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  fail_unless (g_spawn_sync (tmp_dir, (gchar **) argv->pdata, NULL,
          G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
          &err, &status, NULL));
  fail_unless (g_spawn_check_wait_status (status, NULL), "%s: %s", program,
      err);
  g_free (err);
  g_ptr_array_unref (argv);
}

/* An element of @props against the broker, started with a bus. */
static GstHarness *
publisher_with_bus (const gchar * props, GstBus ** bus)
{
  gchar *desc = g_strdup_printf ("florence2publish %s", props);
  GstElement *e = gst_parse_launch (desc, NULL);
  GstHarness *h;

  fail_unless (e != NULL);
  *bus = gst_bus_new ();
  gst_element_set_bus (e, *bus);
  h = gst_harness_new_with_element (e, "sink", "src");
  gst_object_unref (e);
  gst_harness_set_src_caps_str (h, FRAME_CAPS);
  g_free (desc);
  return h;
}

/* A broker that wants a user name and password: the right ones publish,
 * wrong ones are an error naming the credentials. */
GST_START_TEST (test_mqtt_credentials)
{
  gchar *passwd = g_build_filename (tmp_dir, "passwd", NULL);
  gchar *listener2 = g_strdup_printf ("listener %%d 127.0.0.1\n"
      "allow_anonymous false\npassword_file %s\n", passwd);
  Broker *b;
  Sub *s;
  GstHarness *h;
  GstBus *bus;
  gchar *props;
  const gchar *words[] = { "credentials", "camera", "username", NULL };

  run ("mosquitto_passwd", "-b", "-c", passwd, "camera", "s3cret", NULL);
  b = broker_new (listener2);
  broker_start (b);
  s = sub_new (b, "auth");

  props = g_strdup_printf ("address=127.0.0.1:%d topic=auth username=camera "
      "password=s3cret", b->port2);
  h = publisher_with_bus (props, &bus);
  push_frames (h, 0, 3);
  fail_unless_equals_int (sub_wait (s, 3, 10), 3);
  teardown_with_bus (h, bus);
  g_free (props);

  props = g_strdup_printf ("address=127.0.0.1:%d topic=auth username=camera "
      "password=wrong", b->port2);
  h = publisher_with_bus (props, &bus);
  push_frames (h, 3, 4);
  expect_error (bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
      words);
  teardown_with_bus (h, bus);
  g_free (props);

  /* none at all */
  props = g_strdup_printf ("address=127.0.0.1:%d topic=auth", b->port2);
  h = publisher_with_bus (props, &bus);
  push_frames (h, 4, 5);
  words[1] = "none";
  expect_error (bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
      words);
  teardown_with_bus (h, bus);
  g_free (props);
  fail_unless_equals_int (sub_wait (s, 3, 0.2), 3);

  sub_free (s);
  broker_free (b);
  g_free (listener2);
  g_free (passwd);
}

GST_END_TEST;

/* A certificate authority and a broker certificate for 127.0.0.1 made
 * with openssl here, under @name. */
static void
make_ca (const gchar * name, gboolean server)
{
  gchar *key = g_strdup_printf ("%s.key", name);
  gchar *crt = g_strdup_printf ("%s.crt", name);
  gchar *subj = g_strdup_printf ("/CN=florence2 test %s", name);

  run ("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
      "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
      "-days", "2", "-subj", subj, NULL);
  if (server) {
    gchar *ext = g_build_filename (tmp_dir, "ext.cnf", NULL);

    fail_unless (g_file_set_contents (ext,
            "subjectAltName=IP:127.0.0.1\n", -1, NULL));
    run ("openssl", "req", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", "/CN=127.0.0.1", NULL);
    run ("openssl", "x509", "-req", "-in", "server.csr", "-CA", crt,
        "-CAkey", key, "-CAcreateserial", "-out", "server.crt", "-days", "2",
        "-extfile", ext, NULL);
    g_free (ext);
  }
  g_free (key);
  g_free (crt);
  g_free (subj);
}

/* TLS: the right authority publishes; another authority, a file that is
 * no certificate, a missing file or a certificate without its key are
 * errors that name the cause. */
GST_START_TEST (test_mqtt_tls)
{
  gchar *listener2, *props, *ca, *other, *junk;
  Broker *b;
  Sub *s;
  GstHarness *h;
  GstBus *bus;
  GstElement *e;
  const gchar *tls_words[] = { "TLS", "ca-file", NULL };
  const gchar *missing_words[] = { "does not exist", "ca-file", NULL };
  const gchar *pair_words[] = { "key", "cert-file", NULL };

  make_ca ("ca", TRUE);
  make_ca ("other", FALSE);
  ca = g_build_filename (tmp_dir, "ca.crt", NULL);
  other = g_build_filename (tmp_dir, "other.crt", NULL);
  junk = g_build_filename (tmp_dir, "junk.crt", NULL);
  fail_unless (g_file_set_contents (junk, "not a certificate\n", -1, NULL));
  listener2 = g_strdup_printf ("listener %%d 127.0.0.1\nallow_anonymous true\n"
      "cafile %s\ncertfile %s/server.crt\nkeyfile %s/server.key\n", ca,
      tmp_dir, tmp_dir);
  b = broker_new (listener2);
  broker_start (b);
  s = sub_new (b, "tls");

  props = g_strdup_printf ("address=127.0.0.1:%d topic=tls ca-file=%s",
      b->port2, ca);
  h = publisher_with_bus (props, &bus);
  push_frames (h, 0, 3);
  fail_unless_equals_int (sub_wait (s, 3, 10), 3);
  teardown_with_bus (h, bus);
  g_free (props);

  for (guint k = 0; k < 2; k++) {
    props = g_strdup_printf ("address=127.0.0.1:%d topic=tls ca-file=%s",
        b->port2, k == 0 ? other : junk);
    h = publisher_with_bus (props, &bus);
    push_frames (h, 3, 4);
    expect_error (bus, GST_RESOURCE_ERROR, k == 0 ?
        GST_RESOURCE_ERROR_NOT_AUTHORIZED : GST_RESOURCE_ERROR_NOT_AUTHORIZED,
        tls_words);
    teardown_with_bus (h, bus);
    g_free (props);
  }

  /* refused when the element starts */
  for (guint k = 0; k < 2; k++) {
    bus = gst_bus_new ();
    e = gst_element_factory_make ("florence2publish", NULL);
    if (k == 0)
      g_object_set (e, "ca-file", "/nonexistent/ca.crt", NULL);
    else
      g_object_set (e, "ca-file", ca, "cert-file", ca, NULL);
    gst_element_set_bus (e, bus);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
        GST_STATE_CHANGE_FAILURE);
    expect_error (bus, GST_RESOURCE_ERROR, k == 0 ?
        GST_RESOURCE_ERROR_NOT_FOUND : GST_RESOURCE_ERROR_SETTINGS,
        k == 0 ? missing_words : pair_words);
    gst_element_set_state (e, GST_STATE_NULL);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (e);
    gst_object_unref (bus);
  }

  fail_unless_equals_int (sub_wait (s, 3, 0.2), 3);
  sub_free (s);
  broker_free (b);
  g_free (listener2);
  g_free (ca);
  g_free (other);
  g_free (junk);
}

GST_END_TEST;

/* Settings refused at start: an address that is not host:port, a file
 * method without a file. */
GST_START_TEST (test_bad_settings)
{
  const gchar *cases[][3] = {
    {"address", "localhost:99999", "host:port"},
    {"address", "::1", "host:port"},
    {"topic", "cameras/#", "wildcards"},
  };

  for (guint k = 0; k < G_N_ELEMENTS (cases) + 1; k++) {
    GstBus *bus = gst_bus_new ();
    GstElement *e = gst_element_factory_make ("florence2publish", NULL);
    const gchar *words[] = { NULL, NULL };

    if (k < G_N_ELEMENTS (cases)) {
      g_object_set (e, cases[k][0], cases[k][1], NULL);
      words[0] = cases[k][2];
    } else {
      gst_util_set_object_arg (G_OBJECT (e), "method", "file");
      words[0] = "location";
    }
    gst_element_set_bus (e, bus);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_PAUSED),
        GST_STATE_CHANGE_FAILURE);
    expect_error (bus, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, words);
    gst_element_set_state (e, GST_STATE_NULL);
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (e);
    gst_object_unref (bus);
  }
}

GST_END_TEST;

/* The file method: JSON lines are the results-location lines; the JSON
 * array holds the same objects, complete at EOS, and is "[]" with none. */
GST_START_TEST (test_file_formats)
{
  gchar *lines_path = g_build_filename (tmp_dir, "results.jsonl", NULL);
  gchar *array_path = g_build_filename (tmp_dir, "results.json", NULL);
  gchar *props, *contents;
  gchar **lines;
  GstHarness *h;
  JsonNode *root;
  JsonArray *array;
  const guint n = 5;

  props = g_strdup_printf ("method=file location=%s", lines_path);
  h = publisher_new (props);
  push_frames (h, 0, n);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  fail_unless_equals_uint64 (get_u64 (h, "published"), n);
  gst_harness_teardown (h);
  g_free (props);
  fail_unless (g_file_get_contents (lines_path, &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  fail_unless_equals_int (g_strv_length (lines), n + 1);
  for (guint i = 0; i < n; i++) {
    gchar *want = expected_json (i);

    fail_unless_equals_string (lines[i], want);
    g_free (want);
  }
  fail_unless_equals_string (lines[n], "");
  g_strfreev (lines);
  g_free (contents);

  props = g_strdup_printf ("method=file file-format=json location=%s",
      array_path);
  h = publisher_new (props);
  push_frames (h, 0, n);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  /* complete at EOS, before the element stops */
  fail_unless (g_file_get_contents (array_path, &contents, NULL, NULL));
  root = json_from_string (contents, NULL);
  fail_unless (root != NULL && JSON_NODE_HOLDS_ARRAY (root), "%s", contents);
  array = json_node_get_array (root);
  fail_unless_equals_int (json_array_get_length (array), n);
  for (guint i = 0; i < n; i++) {
    gchar *want = expected_json (i);
    gchar *got = json_to_string (json_array_get_element (array, i), FALSE);
    JsonNode *want_node = json_from_string (want, NULL);

    fail_unless (json_node_equal (json_array_get_element (array, i),
            want_node), "%s != %s", got, want);
    /* and byte for byte, one object a line */
    fail_unless (strstr (contents, want) != NULL);
    json_node_unref (want_node);
    g_free (got);
    g_free (want);
  }
  json_node_unref (root);
  g_free (contents);
  gst_harness_teardown (h);
  g_free (props);

  /* no results: an empty array */
  props = g_strdup_printf ("method=file file-format=json location=%s",
      array_path);
  h = publisher_new (props);
  fail_unless (gst_harness_push_event (h, gst_event_new_eos ()));
  gst_harness_teardown (h);
  fail_unless (g_file_get_contents (array_path, &contents, NULL, NULL));
  root = json_from_string (contents, NULL);
  fail_unless (root != NULL && JSON_NODE_HOLDS_ARRAY (root), "%s", contents);
  fail_unless_equals_int (json_array_get_length (json_node_get_array (root)),
      0);
  json_node_unref (root);
  g_free (contents);
  g_free (props);
  g_free (lines_path);
  g_free (array_path);
}

GST_END_TEST;

static Suite *
publish_suite (void)
{
  Suite *s = suite_create ("florence2publish");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_file_formats);
  tcase_add_test (tc, test_bad_settings);
  tcase_add_test (tc, test_mqtt_qos);
  tcase_add_test (tc, test_mqtt_broker_late);
  tcase_add_test (tc, test_mqtt_broker_restart);
  tcase_add_test (tc, test_mqtt_overflow);
  tcase_add_test (tc, test_mqtt_eos_flush);
  tcase_add_test (tc, test_mqtt_credentials);
  tcase_add_test (tc, test_mqtt_tls);
  return s;
}

int
main (int argc, char **argv)
{
  gint failed;
  gchar *rm[] = { (gchar *) "rm", (gchar *) "-rf", NULL, NULL };

  gst_check_init (&argc, &argv);
  mosquitto_bin = g_getenv ("F2_MOSQUITTO");
  if (mosquitto_bin == NULL || !g_file_test (mosquitto_bin,
          G_FILE_TEST_IS_EXECUTABLE)) {
    g_printerr ("SKIP: no mosquitto broker (F2_MOSQUITTO; Debian: "
        "mosquitto)\n");
    return 77;
  }
  mosquitto_lib_init ();
  tmp_dir = g_dir_make_tmp ("florence2-publish-XXXXXX", NULL);
  failed = gst_check_run_suite (publish_suite (), "florence2publish",
      __FILE__);
  rm[2] = tmp_dir;
  /* F2_KEEP_TMP keeps the brokers' configurations and logs */
  if (g_getenv ("F2_KEEP_TMP") == NULL)
    g_spawn_sync (NULL, rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
      NULL, NULL);
  g_free (tmp_dir);
  mosquitto_lib_cleanup ();
  return failed;
}
