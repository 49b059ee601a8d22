/**
 * SECTION:element-florence2publish
 * @title: florence2publish
 *
 * Publishes the result of every analysed buffer (one carrying a
 * #GstFlorence2Meta) as one JSON object, the same object the florence2
 * element's `results-location` writes, to a file or to an MQTT broker. The
 * buffers pass through untouched; buffers without a result publish nothing.
 *
 * Publishing runs on a thread of its own, never on the streaming thread.
 * With `method=mqtt` the broker being down at start, going away and coming
 * back are normal events: the element reconnects with a growing delay (0.1 s
 * doubling up to 5 s) and keeps up to `max-queued` messages meanwhile, sent
 * in order once the broker is back; with `qos` 1 or 2 none of them is lost
 * (a message whose acknowledgement was lost with the connection is sent
 * again, so a subscriber may see it twice, never out of order). Beyond
 * `max-queued` the oldest message is dropped: the `dropped` property counts
 * them, the first drop of an outage posts a warning, and a
 * `florence2publish-dropped` element message (field `dropped`, guint64, the
 * total) follows when the broker is back and at EOS. At EOS the element
 * waits up to `flush-timeout` for what is outstanding, and reports what was
 * not delivered with a warning and a `florence2publish-undelivered` element
 * message (fields `undelivered`, guint, and `dropped`, guint64). Refused
 * credentials or a failed TLS setup stop the pipeline with an error that
 * names the cause.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=30 ! videoconvert ! \
 *     florence2 model=/path/to/Florence-2-base task=od ! \
 *     florence2publish method=mqtt address=127.0.0.1:1883 topic=cameras/door ! \
 *     fakesink
 * ]| Publishes the detections of each frame to the topic `cameras/door`
 * (read them with `mosquitto_sub -t 'cameras/#'`).
 * |[
 * gst-launch-1.0 ... ! florence2 ... ! \
 *     florence2publish method=file location=results.json file-format=json ! fakesink
 * ]| Writes the results as one JSON array.
 */
#include "gstflorence2publish.h"
#include "gstflorence2result.h"

#include "florence2/gstflorence2meta.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

GST_DEBUG_CATEGORY_STATIC (florence2_publish_debug);
#define GST_CAT_DEFAULT florence2_publish_debug

typedef enum {
  GST_FLORENCE2_PUBLISH_FILE,
  GST_FLORENCE2_PUBLISH_MQTT,
} GstFlorence2PublishMethod;

#define DEFAULT_METHOD GST_FLORENCE2_PUBLISH_MQTT
#define DEFAULT_LOCATION NULL
#define DEFAULT_FILE_FORMAT GST_FLORENCE2_RESULTS_JSON_LINES
#define DEFAULT_ADDRESS "127.0.0.1:1883"
#define DEFAULT_TOPIC NULL
#define DEFAULT_QOS 1
#define DEFAULT_KEEPALIVE 60
#define DEFAULT_MAX_QUEUED 1000
#define DEFAULT_FLUSH_TIMEOUT 5000
#define DEFAULT_TIMESTAMP_UTC FALSE

#define MQTT_DEFAULT_PORT 1883
/* messages handed to the client library and not yet acknowledged */
#define MQTT_WINDOW 20
#define RECONNECT_MIN_US (100 * G_TIME_SPAN_MILLISECOND)
#define RECONNECT_MAX_US (5 * G_TIME_SPAN_SECOND)

enum
{
  PROP_0,
  PROP_METHOD,
  PROP_LOCATION,
  PROP_FILE_FORMAT,
  PROP_ADDRESS,
  PROP_TOPIC,
  PROP_QOS,
  PROP_CLIENT_ID,
  PROP_USERNAME,
  PROP_PASSWORD,
  PROP_CA_FILE,
  PROP_CERT_FILE,
  PROP_KEY_FILE,
  PROP_KEEPALIVE,
  PROP_MAX_QUEUED,
  PROP_FLUSH_TIMEOUT,
  PROP_TIMESTAMP_UTC,
  PROP_PUBLISHED,
  PROP_DROPPED,
  PROP_QUEUED,
};

/* One result on its way. */
typedef struct
{
  guint64 seq;
  gchar *json;
  gint mid;                     /* the client library's id once handed over */
  gboolean sent;                /* handed over, not yet acknowledged */
} Message;

/* The settings of one run, copied at start; read-only while it runs. */
typedef struct
{
  GstFlorence2PublishMethod method;
  gchar *location;
  GstFlorence2ResultsFormat file_format;
  gchar *address;
  gchar *host;
  gint port;
  gchar *topic;
  gint qos;
  gchar *client_id, *username, *password;
  gchar *ca_file, *cert_file, *key_file;
  guint keepalive;
  guint max_queued;
  guint flush_timeout;          /* ms */
  gboolean timestamp_utc;
} Settings;

struct _GstFlorence2Publish
{
  GstBaseTransform parent;

  /* properties (object lock) */
  Settings props;

  /* the run: set in start(), read-only until stop() */
  Settings run;

  /* shared with the publishing thread (lock) */
  GMutex lock;
  GCond cond;                   /* the queue shrank, or the thread ended */
  GQueue queue;                 /* Message *, oldest first */
  guint64 next_seq;
  guint writing;                /* messages being written to the file */
  guint64 published, dropped;
  guint64 dropped_reported;     /* dropped when last reported */
  gboolean warned_drop;         /* this outage's drop was warned of */
  gboolean connected;
  gboolean fatal;               /* an error ended publishing */
  gboolean quit;

  /* the publishing thread's own */
  GThread *thread;
  gint wake[2];                 /* a byte in wake[1] wakes the thread */
  struct mosquitto *mosq;
  gint64 backoff;
  gint64 next_attempt;
  GstFlorence2ResultsFile *file;
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

#define gst_florence2_publish_parent_class parent_class
G_DEFINE_TYPE (GstFlorence2Publish, gst_florence2_publish,
    GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (florence2publish, "florence2publish",
    GST_RANK_NONE, GST_TYPE_FLORENCE2_PUBLISH,
    GST_DEBUG_CATEGORY_INIT (florence2_publish_debug, "florence2publish", 0,
        "Florence-2 results to a file or an MQTT broker"));

#define GST_TYPE_FLORENCE2_PUBLISH_METHOD \
  (gst_florence2_publish_method_get_type ())
static GType
gst_florence2_publish_method_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_FLORENCE2_PUBLISH_FILE, "To a file (location, file-format)", "file"},
    {GST_FLORENCE2_PUBLISH_MQTT, "To an MQTT broker (address, topic, qos)",
        "mqtt"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFlorence2PublishMethod", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define GST_TYPE_FLORENCE2_PUBLISH_FILE_FORMAT \
  (gst_florence2_publish_file_format_get_type ())
static GType
gst_florence2_publish_file_format_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_FLORENCE2_RESULTS_JSON_LINES, "One JSON object a line",
        "json-lines"},
    {GST_FLORENCE2_RESULTS_JSON_ARRAY,
        "One JSON array of the objects, closed at EOS", "json"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFlorence2PublishFileFormat", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

static void
settings_clear (Settings * s)
{
  g_clear_pointer (&s->location, g_free);
  g_clear_pointer (&s->address, g_free);
  g_clear_pointer (&s->host, g_free);
  g_clear_pointer (&s->topic, g_free);
  g_clear_pointer (&s->client_id, g_free);
  g_clear_pointer (&s->username, g_free);
  g_clear_pointer (&s->password, g_free);
  g_clear_pointer (&s->ca_file, g_free);
  g_clear_pointer (&s->cert_file, g_free);
  g_clear_pointer (&s->key_file, g_free);
}

/* An empty string is no value. */
static gchar *
dup_set (const gchar * s)
{
  return s != NULL && *s != '\0' ? g_strdup (s) : NULL;
}

static void
settings_copy (Settings * to, const Settings * from)
{
  *to = *from;
  to->location = dup_set (from->location);
  to->address = dup_set (from->address);
  to->host = NULL;
  to->topic = dup_set (from->topic);
  to->client_id = dup_set (from->client_id);
  to->username = dup_set (from->username);
  to->password = dup_set (from->password);
  to->ca_file = dup_set (from->ca_file);
  to->cert_file = dup_set (from->cert_file);
  to->key_file = dup_set (from->key_file);
}

static void
message_free (Message * m)
{
  g_free (m->json);
  g_free (m);
}

static Message *
queue_find (GstFlorence2Publish * self, guint64 seq)
{
  for (GList * l = self->queue.head; l != NULL; l = l->next)
    if (((Message *) l->data)->seq == seq)
      return l->data;
  return NULL;
}

static void
queue_remove (GstFlorence2Publish * self, Message * m)
{
  g_queue_remove (&self->queue, m);
  message_free (m);
  g_cond_broadcast (&self->cond);
}

static void
wake_thread (GstFlorence2Publish * self)
{
  const gchar byte = 1;

  /* a full pipe already wakes it */
  if (self->wake[1] >= 0 && write (self->wake[1], &byte, 1) < 0 &&
      errno != EAGAIN)
    GST_WARNING_OBJECT (self, "cannot wake the publishing thread: %s",
        g_strerror (errno));
}

/* "host:port", "host", "[v6]:port" or "[v6]". */
static gboolean
parse_address (const gchar * address, gchar ** host, gint * port)
{
  const gchar *colon;
  gchar *end = NULL;
  gint64 p = MQTT_DEFAULT_PORT;

  if (address == NULL || *address == '\0')
    return FALSE;
  if (address[0] == '[') {
    const gchar *close = strchr (address, ']');

    if (close == NULL || close == address + 1)
      return FALSE;
    *host = g_strndup (address + 1, close - address - 1);
    colon = close[1] == ':' ? close + 1 : NULL;
    if (close[1] != '\0' && colon == NULL)
      goto bad;
  } else {
    colon = strrchr (address, ':');
    if (colon != NULL && strchr (address, ':') != colon)
      return FALSE;             /* a bare IPv6 address: needs [] */
    if (colon == address)
      return FALSE;
    *host = colon ? g_strndup (address, colon - address) : g_strdup (address);
  }
  if (colon != NULL) {
    p = g_ascii_strtoll (colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
      goto bad;
  }
  *port = (gint) p;
  return TRUE;

bad:
  g_clear_pointer (host, g_free);
  return FALSE;
}

/* ---------------------------------------------------------- reporting */

/* Post the dropped count if it grew since the last report. */
static void
report_dropped (GstFlorence2Publish * self)
{
  guint64 dropped;

  g_mutex_lock (&self->lock);
  dropped = self->dropped;
  if (dropped == self->dropped_reported) {
    g_mutex_unlock (&self->lock);
    return;
  }
  self->dropped_reported = dropped;
  g_mutex_unlock (&self->lock);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          gst_structure_new ("florence2publish-dropped",
              "dropped", G_TYPE_UINT64, dropped, NULL)));
}

/* ------------------------------------------------------- file method */

static void
file_loop (GstFlorence2Publish * self)
{
  g_mutex_lock (&self->lock);
  for (;;) {
    Message *m = g_queue_pop_head (&self->queue);
    GError *error = NULL;
    gboolean ok;

    /* at stop, what is queued is still written: a local file is quick */
    if (m == NULL) {
      if (self->quit)
        break;
      g_cond_wait (&self->cond, &self->lock);
      continue;
    }
    self->writing++;
    g_mutex_unlock (&self->lock);
    ok = gst_florence2_results_file_write (self->file, m->json, &error);
    message_free (m);
    g_mutex_lock (&self->lock);
    self->writing--;
    if (ok) {
      self->published++;
      self->warned_drop = FALSE;
    } else {
      guint64 dropped = ++self->dropped;
      gboolean warn = !self->warned_drop;

      self->warned_drop = TRUE;
      g_mutex_unlock (&self->lock);
      if (warn)
        GST_ELEMENT_WARNING_WITH_DETAILS (self, RESOURCE, WRITE,
            ("%s; %" G_GUINT64_FORMAT " result(s) dropped so far",
                error->message, dropped),
            ("the file keeps its whole records; free some space or choose "
                "another location (the dropped property counts the losses)"),
            ("dropped", G_TYPE_UINT64, dropped, NULL));
      else
        GST_WARNING_OBJECT (self, "%s", error->message);
      g_mutex_lock (&self->lock);
    }
    g_clear_error (&error);
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
}

/* ------------------------------------------------------- MQTT method */

/* Client library callbacks: on the publishing thread, lock not held. */
static void
on_connect (struct mosquitto *mosq, void *user_data, int rc)
{
  GstFlorence2Publish *self = user_data;

  if (rc != 0) {
    g_mutex_lock (&self->lock);
    self->fatal = TRUE;
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
    if (rc == 4 || rc == 5)     /* bad user name or password; not authorised */
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
          ("The MQTT broker at %s refused the credentials: %s",
              self->run.address, mosquitto_connack_string (rc)),
          ("set the username and password properties to an account the "
              "broker accepts (user name %s given)",
              self->run.username ? self->run.username : "none"));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE,
          ("The MQTT broker at %s refused the connection: %s",
              self->run.address, mosquitto_connack_string (rc)),
          ("check the client-id and the broker's configuration"));
    return;
  }
  GST_INFO_OBJECT (self, "connected to %s", self->run.address);
  g_mutex_lock (&self->lock);
  self->connected = TRUE;
  self->warned_drop = FALSE;
  self->backoff = RECONNECT_MIN_US;
  g_mutex_unlock (&self->lock);
  report_dropped (self);
}

static void
on_publish (struct mosquitto *mosq, void *user_data, int mid)
{
  GstFlorence2Publish *self = user_data;

  g_mutex_lock (&self->lock);
  for (GList * l = self->queue.head; l != NULL; l = l->next) {
    Message *m = l->data;

    if (m->sent && m->mid == mid) {
      self->published++;
      queue_remove (self, m);
      break;
    }
  }
  g_mutex_unlock (&self->lock);
}

static void
on_log (struct mosquitto *mosq, void *user_data, int level, const char *str)
{
  GstFlorence2Publish *self = user_data;

  GST_LOG_OBJECT (self, "libmosquitto: %s", str);
}

/* The client library's error as text. */
static const gchar *
mqtt_strerror (gint rc, gint err)
{
  return rc == MOSQ_ERR_ERRNO ? g_strerror (err) : mosquitto_strerror (rc);
}

static void
mqtt_tls_error (GstFlorence2Publish * self, const gchar * what)
{
  g_mutex_lock (&self->lock);
  self->fatal = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
      ("TLS with the MQTT broker at %s failed (%s)", self->run.address, what),
      ("check that ca-file (%s) holds the authority that signed the broker's "
          "certificate, that the broker's certificate names the host of "
          "address, and that cert-file and key-file (%s, %s) are a PEM "
          "certificate and its key",
          self->run.ca_file ? self->run.ca_file : "none",
          self->run.cert_file ? self->run.cert_file : "none",
          self->run.key_file ? self->run.key_file : "none"));
}

/* A client set up with the run's settings, or NULL with an element error
 * posted (settings the client library refuses). */
static struct mosquitto *
mqtt_client_new (GstFlorence2Publish * self)
{
  const Settings *s = &self->run;
  struct mosquitto *mosq;
  gint rc;

  mosq = mosquitto_new (s->client_id, true, self);
  if (mosq == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Cannot make an MQTT client: %s", g_strerror (errno)),
        ("check the client-id property"));
    return NULL;
  }
  mosquitto_connect_callback_set (mosq, on_connect);
  mosquitto_publish_callback_set (mosq, on_publish);
  mosquitto_log_callback_set (mosq, on_log);
  mosquitto_max_inflight_messages_set (mosq, MQTT_WINDOW);
  if (s->username != NULL || s->password != NULL) {
    rc = mosquitto_username_pw_set (mosq, s->username, s->password);
    if (rc != MOSQ_ERR_SUCCESS) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("The MQTT user name or password cannot be used: %s",
              mosquitto_strerror (rc)),
          ("set username (and password) to UTF-8 text"));
      goto fail;
    }
  }
  if (s->ca_file != NULL || s->cert_file != NULL || s->key_file != NULL) {
    rc = mosquitto_tls_set (mosq, s->ca_file, NULL, s->cert_file,
        s->key_file, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("The TLS files cannot be used: %s", mosquitto_strerror (rc)),
          ("set ca-file to the PEM file of the authority that signed the "
              "broker's certificate; cert-file and key-file go together "
              "(given: ca-file %s, cert-file %s, key-file %s)",
              s->ca_file ? s->ca_file : "none",
              s->cert_file ? s->cert_file : "none",
              s->key_file ? s->key_file : "none"));
      goto fail;
    }
  }
  return mosq;

fail:
  mosquitto_destroy (mosq);
  return NULL;
}

/* Publishing thread, lock held: the connection is gone (or never came):
 * every message goes back to the queue, in order, for the next one. */
static void
mqtt_connection_lost (GstFlorence2Publish * self, const gchar * why)
{
  struct mosquitto *mosq = self->mosq;
  gboolean was_connected = self->connected;
  guint waiting = self->queue.length;

  self->mosq = NULL;
  self->connected = FALSE;
  for (GList * l = self->queue.head; l != NULL; l = l->next) {
    Message *m = l->data;

    m->sent = FALSE;
    m->mid = 0;
  }
  self->next_attempt = g_get_monotonic_time () + self->backoff;
  self->backoff = MIN (self->backoff * 2, RECONNECT_MAX_US);
  g_mutex_unlock (&self->lock);
  if (was_connected)
    GST_WARNING_OBJECT (self, "lost the broker at %s (%s): %u message(s) "
        "wait for it", self->run.address, why, waiting);
  else
    GST_INFO_OBJECT (self, "no broker at %s (%s)", self->run.address, why);
  if (mosq != NULL)
    mosquitto_destroy (mosq);
  g_mutex_lock (&self->lock);
}

/* Publishing thread, lock held: try to connect. */
static void
mqtt_connect (GstFlorence2Publish * self)
{
  struct mosquitto *mosq;
  gint rc, err;

  g_mutex_unlock (&self->lock);
  mosq = mqtt_client_new (self);
  if (mosq == NULL) {
    g_mutex_lock (&self->lock);
    self->fatal = TRUE;
    g_cond_broadcast (&self->cond);
    return;
  }
  errno = 0;
  rc = mosquitto_connect_async (mosq, self->run.host, self->run.port,
      self->run.keepalive);
  err = errno;
  if (rc == MOSQ_ERR_TLS) {
    mosquitto_destroy (mosq);
    mqtt_tls_error (self, "the TLS files could not be loaded");
    g_mutex_lock (&self->lock);
    return;
  }
  g_mutex_lock (&self->lock);
  self->mosq = mosq;
  if (rc != MOSQ_ERR_SUCCESS)
    mqtt_connection_lost (self, mqtt_strerror (rc, err));
}

/* Publishing thread, lock held: hand the oldest messages not yet handed
 * over to the client library, up to MQTT_WINDOW unacknowledged ones. */
static void
mqtt_send (GstFlorence2Publish * self)
{
  guint in_flight = 0;
  GList *l;

  for (l = self->queue.head; l != NULL && ((Message *) l->data)->sent;
      l = l->next)
    in_flight++;
  while (l != NULL && in_flight < MQTT_WINDOW && self->connected &&
      self->mosq != NULL && !self->quit) {
    Message *m = l->data;
    guint64 seq = m->seq;
    gchar *json = g_strdup (m->json);
    gint mid = 0, rc;

    /* the streaming thread may drop it meanwhile: found again by seq */
    m->sent = TRUE;
    g_mutex_unlock (&self->lock);
    rc = mosquitto_publish (self->mosq, &mid, self->run.topic,
        (gint) strlen (json), json, self->run.qos, false);
    g_free (json);
    g_mutex_lock (&self->lock);
    m = queue_find (self, seq);
    if (rc != MOSQ_ERR_SUCCESS) {
      GST_DEBUG_OBJECT (self, "publish: %s", mosquitto_strerror (rc));
      if (m != NULL)
        m->sent = FALSE;
      return;                   /* the loop finds out what went wrong */
    }
    if (m == NULL) {
      l = self->queue.head;
    } else if (self->run.qos == 0) {
      /* at most once: written is done */
      l = g_queue_find (&self->queue, m)->next;
      self->published++;
      queue_remove (self, m);
    } else {
      m->mid = mid;
      l = g_queue_find (&self->queue, m)->next;
    }
    in_flight = 0;
    for (GList * k = self->queue.head; k != l; k = k->next)
      in_flight += ((Message *) k->data)->sent ? 1 : 0;
  }
}

static void
mqtt_loop (GstFlorence2Publish * self)
{
  self->backoff = RECONNECT_MIN_US;
  self->next_attempt = 0;

  g_mutex_lock (&self->lock);
  while (!self->quit) {
    struct pollfd fds[2];
    gint64 now = g_get_monotonic_time ();
    gint timeout_ms = 1000, n_fds = 1, rc;
    gchar drain[64];

    if (!self->fatal && self->mosq == NULL && now >= self->next_attempt)
      mqtt_connect (self);
    if (self->mosq != NULL && self->connected)
      mqtt_send (self);
    if (self->quit)
      break;

    fds[0].fd = self->wake[0];
    fds[0].events = POLLIN;
    if (self->mosq != NULL && mosquitto_socket (self->mosq) >= 0) {
      fds[1].fd = mosquitto_socket (self->mosq);
      fds[1].events = POLLIN | (mosquitto_want_write (self->mosq) ?
          POLLOUT : 0);
      n_fds = 2;
    } else if (self->mosq == NULL && !self->fatal) {
      gint64 wait = self->next_attempt - g_get_monotonic_time ();

      timeout_ms = (gint) CLAMP (wait / 1000 + 1, 0, 1000);
    }
    g_mutex_unlock (&self->lock);

    if (poll (fds, n_fds, timeout_ms) > 0 && (fds[0].revents & POLLIN))
      while (read (self->wake[0], drain, sizeof (drain)) > 0);

    rc = MOSQ_ERR_SUCCESS;
    if (self->mosq != NULL) {
      errno = 0;
      rc = mosquitto_loop (self->mosq, 0, 1);
    }
    g_mutex_lock (&self->lock);
    if (rc == MOSQ_ERR_TLS) {
      struct mosquitto *mosq = self->mosq;

      self->mosq = NULL;
      g_mutex_unlock (&self->lock);
      mosquitto_destroy (mosq);
      mqtt_tls_error (self, "the handshake failed");
      g_mutex_lock (&self->lock);
    } else if (self->fatal && self->mosq != NULL) {
      struct mosquitto *mosq = self->mosq;

      self->mosq = NULL;
      self->connected = FALSE;
      g_mutex_unlock (&self->lock);
      mosquitto_destroy (mosq);
      g_mutex_lock (&self->lock);
    } else if (rc != MOSQ_ERR_SUCCESS && self->mosq != NULL) {
      mqtt_connection_lost (self, mqtt_strerror (rc, errno));
    }
  }
  if (self->mosq != NULL) {
    struct mosquitto *mosq = self->mosq;

    self->mosq = NULL;
    self->connected = FALSE;
    g_mutex_unlock (&self->lock);
    /* written at once: the client is driven by this thread */
    mosquitto_disconnect (mosq);
    mosquitto_destroy (mosq);
    g_mutex_lock (&self->lock);
  }
  g_mutex_unlock (&self->lock);
}

static gpointer
publish_thread (gpointer data)
{
  GstFlorence2Publish *self = data;

  if (self->run.method == GST_FLORENCE2_PUBLISH_FILE)
    file_loop (self);
  else
    mqtt_loop (self);
  return NULL;
}

/* ----------------------------------------------------------- element */

static gboolean
gst_florence2_publish_start (GstBaseTransform * trans)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);
  Settings *s = &self->run;
  GError *error = NULL;

  settings_clear (s);
  GST_OBJECT_LOCK (self);
  settings_copy (s, &self->props);
  GST_OBJECT_UNLOCK (self);

  self->published = self->dropped = self->dropped_reported = 0;
  self->next_seq = 0;
  self->warned_drop = self->connected = self->fatal = self->quit = FALSE;

  if (s->method == GST_FLORENCE2_PUBLISH_FILE) {
    if (s->location == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("No file to publish to"),
          ("set the location property, or method=mqtt"));
      return FALSE;
    }
    self->file = gst_florence2_results_file_open (s->location,
        s->file_format, FALSE, &error);
    if (self->file == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE, ("%s", error->message),
          ("check that the folder exists and is writable"));
      g_clear_error (&error);
      return FALSE;
    }
  } else {
    if (!parse_address (s->address, &s->host, &s->port)) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("The MQTT address '%s' is not host:port",
              s->address ? s->address : ""),
          ("set address to the broker's host and port, e.g. 127.0.0.1:1883 "
              "or [::1]:1883"));
      return FALSE;
    }
    if (s->topic == NULL)
      s->topic = g_strdup_printf ("florence2/%s", GST_OBJECT_NAME (self));
    if (mosquitto_pub_topic_check (s->topic) != MOSQ_ERR_SUCCESS) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("The MQTT topic '%s' cannot be published to", s->topic),
          ("set topic to UTF-8 text without the wildcards + and #"));
      return FALSE;
    }
    for (guint i = 0; i < 3; i++) {
      const gchar *names[] = { "ca-file", "cert-file", "key-file" };
      const gchar *files[] = { s->ca_file, s->cert_file, s->key_file };

      if (files[i] != NULL && !g_file_test (files[i], G_FILE_TEST_IS_REGULAR)) {
        GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
            ("The TLS file '%s' (%s) does not exist", files[i], names[i]),
            ("set %s to a readable PEM file", names[i]));
        return FALSE;
      }
    }
    if ((s->cert_file == NULL) != (s->key_file == NULL)) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("A TLS client certificate needs its key, and a key its "
              "certificate"), ("set both cert-file and key-file, or neither"));
      return FALSE;
    }
    if (s->cert_file != NULL && s->ca_file == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("TLS needs the broker's certificate authority"),
          ("set ca-file to the PEM file of the authority that signed the "
              "broker's certificate"));
      return FALSE;
    }
    /* settings the client library refuses fail here, not later */
    {
      struct mosquitto *probe = mqtt_client_new (self);

      if (probe == NULL)
        return FALSE;
      mosquitto_destroy (probe);
    }
  }

  if (!g_unix_open_pipe (self->wake, FD_CLOEXEC, &error) ||
      !g_unix_set_fd_nonblocking (self->wake[0], TRUE, NULL) ||
      !g_unix_set_fd_nonblocking (self->wake[1], TRUE, NULL)) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Cannot start publishing: %s", error ? error->message : "pipe"),
        (NULL));
    g_clear_error (&error);
    goto fail;
  }
  self->thread = g_thread_try_new ("florence2publish", publish_thread, self,
      &error);
  if (self->thread == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Cannot start the publishing thread: %s", error->message), (NULL));
    g_clear_error (&error);
    goto fail;
  }
  return TRUE;

fail:
  for (guint i = 0; i < 2; i++)
    if (self->wake[i] >= 0) {
      g_close (self->wake[i], NULL);
      self->wake[i] = -1;
    }
  g_clear_pointer (&self->file, gst_florence2_results_file_close);
  return FALSE;
}

static gboolean
gst_florence2_publish_stop (GstBaseTransform * trans)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);
  guint left;

  g_mutex_lock (&self->lock);
  self->quit = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  wake_thread (self);
  if (self->thread != NULL)
    g_thread_join (self->thread);
  self->thread = NULL;

  left = self->queue.length;
  if (left > 0)
    GST_WARNING_OBJECT (self, "stopped with %u result(s) not published", left);
  g_queue_clear_full (&self->queue, (GDestroyNotify) message_free);
  if (self->file != NULL) {
    GError *error = NULL;

    if (!gst_florence2_results_file_finish (self->file, &error)) {
      GST_WARNING_OBJECT (self, "%s", error->message);
      g_clear_error (&error);
    }
    g_clear_pointer (&self->file, gst_florence2_results_file_close);
  }
  for (guint i = 0; i < 2; i++)
    if (self->wake[i] >= 0) {
      g_close (self->wake[i], NULL);
      self->wake[i] = -1;
    }
  settings_clear (&self->run);
  return TRUE;
}

/* Streaming thread: queue @json (taken), dropping the oldest beyond
 * max-queued. */
static void
enqueue (GstFlorence2Publish * self, gchar * json)
{
  Message *m = g_new0 (Message, 1);
  guint64 dropped = 0, now_dropped = 0;
  gboolean warn = FALSE;

  m->json = json;
  g_mutex_lock (&self->lock);
  m->seq = self->next_seq++;
  while (self->queue.length >= MAX (self->run.max_queued, 1)) {
    message_free (g_queue_pop_head (&self->queue));
    now_dropped++;
  }
  g_queue_push_tail (&self->queue, m);
  g_cond_broadcast (&self->cond);
  if (now_dropped > 0) {
    dropped = self->dropped += now_dropped;
    warn = !self->warned_drop;
    self->warned_drop = TRUE;
  }
  g_mutex_unlock (&self->lock);
  if (warn)
    GST_ELEMENT_WARNING_WITH_DETAILS (self, RESOURCE, WRITE,
        ("%u result(s) waiting for %s: dropping the oldest "
            "(%" G_GUINT64_FORMAT " so far)", self->run.max_queued,
            self->run.method == GST_FLORENCE2_PUBLISH_MQTT ?
            "the MQTT broker" : "the file", dropped),
        ("%s; raise max-queued to keep more (the dropped property counts "
            "the losses)", self->run.method == GST_FLORENCE2_PUBLISH_MQTT ?
            "the broker is unreachable or slower than the results" :
            "the file is slower than the results"),
        ("dropped", G_TYPE_UINT64, dropped, NULL));
  wake_thread (self);
}

static GstFlowReturn
gst_florence2_publish_transform_ip (GstBaseTransform * trans,
    GstBuffer * buffer)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);
  gpointer state = NULL;
  GstMeta *meta;
  gint64 utc = self->run.timestamp_utc ? g_get_real_time () : -1;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_FLORENCE2_META_API_TYPE)) != NULL)
    enqueue (self, gst_florence2_result_json ((GstFlorence2Meta *) meta,
            GST_BUFFER_PTS (buffer), utc));
  return GST_FLOW_OK;
}

/* Streaming thread, at EOS: wait up to flush-timeout for the queue to
 * empty, and report what could not be delivered. */
static void
flush (GstFlorence2Publish * self)
{
  gint64 deadline = g_get_monotonic_time () +
      (gint64) self->run.flush_timeout * G_TIME_SPAN_MILLISECOND;
  guint undelivered;
  guint64 dropped;

  g_mutex_lock (&self->lock);
  while ((self->queue.length > 0 || self->writing > 0) && !self->fatal &&
      !self->quit && self->thread != NULL)
    if (!g_cond_wait_until (&self->cond, &self->lock, deadline))
      break;
  undelivered = self->queue.length + self->writing;
  dropped = self->dropped;
  g_mutex_unlock (&self->lock);

  if (self->file != NULL && undelivered == 0) {
    GError *error = NULL;

    /* a complete array at EOS; a later record replaces the "]" */
    if (!gst_florence2_results_file_finish (self->file, &error)) {
      GST_ELEMENT_WARNING (self, RESOURCE, WRITE, ("%s", error->message),
          ("free some space"));
      g_clear_error (&error);
    }
  }
  report_dropped (self);
  if (undelivered == 0)
    return;
  GST_ELEMENT_WARNING_WITH_DETAILS (self, RESOURCE, WRITE,
      ("%u result(s) not delivered to %s within flush-timeout (%u ms)",
          undelivered, self->run.method == GST_FLORENCE2_PUBLISH_MQTT ?
          self->run.address : self->run.location, self->run.flush_timeout),
      ("%s; raise flush-timeout to wait longer",
          self->fatal ? "publishing had stopped with an error" :
          "the broker is unreachable or did not acknowledge them"),
      ("undelivered", G_TYPE_UINT, undelivered, "dropped", G_TYPE_UINT64,
          dropped, NULL));
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self),
          gst_structure_new ("florence2publish-undelivered",
              "undelivered", G_TYPE_UINT, undelivered,
              "dropped", G_TYPE_UINT64, dropped, NULL)));
}

static gboolean
gst_florence2_publish_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS)
    flush (self);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static void
gst_florence2_publish_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (object);
  Settings *s = &self->props;
  gchar **str = NULL;

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_METHOD:
      s->method = g_value_get_enum (value);
      break;
    case PROP_LOCATION:
      str = &s->location;
      break;
    case PROP_FILE_FORMAT:
      s->file_format = g_value_get_enum (value);
      break;
    case PROP_ADDRESS:
      str = &s->address;
      break;
    case PROP_TOPIC:
      str = &s->topic;
      break;
    case PROP_QOS:
      s->qos = g_value_get_int (value);
      break;
    case PROP_CLIENT_ID:
      str = &s->client_id;
      break;
    case PROP_USERNAME:
      str = &s->username;
      break;
    case PROP_PASSWORD:
      str = &s->password;
      break;
    case PROP_CA_FILE:
      str = &s->ca_file;
      break;
    case PROP_CERT_FILE:
      str = &s->cert_file;
      break;
    case PROP_KEY_FILE:
      str = &s->key_file;
      break;
    case PROP_KEEPALIVE:
      s->keepalive = g_value_get_uint (value);
      break;
    case PROP_MAX_QUEUED:
      s->max_queued = g_value_get_uint (value);
      break;
    case PROP_FLUSH_TIMEOUT:
      s->flush_timeout = g_value_get_uint (value);
      break;
    case PROP_TIMESTAMP_UTC:
      s->timestamp_utc = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  if (str != NULL) {
    g_free (*str);
    *str = g_value_dup_string (value);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_florence2_publish_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (object);
  Settings *s = &self->props;

  switch (prop_id) {
    case PROP_PUBLISHED:
    case PROP_DROPPED:
    case PROP_QUEUED:
      g_mutex_lock (&self->lock);
      if (prop_id == PROP_PUBLISHED)
        g_value_set_uint64 (value, self->published);
      else if (prop_id == PROP_DROPPED)
        g_value_set_uint64 (value, self->dropped);
      else
        g_value_set_uint (value, self->queue.length + self->writing);
      g_mutex_unlock (&self->lock);
      return;
    default:
      break;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_METHOD:
      g_value_set_enum (value, s->method);
      break;
    case PROP_LOCATION:
      g_value_set_string (value, s->location);
      break;
    case PROP_FILE_FORMAT:
      g_value_set_enum (value, s->file_format);
      break;
    case PROP_ADDRESS:
      g_value_set_string (value, s->address);
      break;
    case PROP_TOPIC:
      g_value_set_string (value, s->topic);
      break;
    case PROP_QOS:
      g_value_set_int (value, s->qos);
      break;
    case PROP_CLIENT_ID:
      g_value_set_string (value, s->client_id);
      break;
    case PROP_USERNAME:
      g_value_set_string (value, s->username);
      break;
    case PROP_CA_FILE:
      g_value_set_string (value, s->ca_file);
      break;
    case PROP_CERT_FILE:
      g_value_set_string (value, s->cert_file);
      break;
    case PROP_KEY_FILE:
      g_value_set_string (value, s->key_file);
      break;
    case PROP_KEEPALIVE:
      g_value_set_uint (value, s->keepalive);
      break;
    case PROP_MAX_QUEUED:
      g_value_set_uint (value, s->max_queued);
      break;
    case PROP_FLUSH_TIMEOUT:
      g_value_set_uint (value, s->flush_timeout);
      break;
    case PROP_TIMESTAMP_UTC:
      g_value_set_boolean (value, s->timestamp_utc);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_florence2_publish_finalize (GObject * object)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (object);

  settings_clear (&self->props);
  settings_clear (&self->run);
  g_queue_clear_full (&self->queue, (GDestroyNotify) message_free);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

#define READY_STRING(name, nick, blurb, def) \
  g_param_spec_string (name, nick, blurb, def, G_PARAM_READWRITE | \
      G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)
#define READY_FLAGS \
  (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)

static void
gst_florence2_publish_class_init (GstFlorence2PublishClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  mosquitto_lib_init ();

  gobject_class->set_property = gst_florence2_publish_set_property;
  gobject_class->get_property = gst_florence2_publish_get_property;
  gobject_class->finalize = gst_florence2_publish_finalize;

  /**
   * GstFlorence2Publish:method:
   *
   * Where the results go: `file` (location, file-format) or `mqtt` (an
   * MQTT broker: address, topic, qos, ...). Read when the element starts.
   */
  g_object_class_install_property (gobject_class, PROP_METHOD,
      g_param_spec_enum ("method", "Method",
          "Where the results go: a file or an MQTT broker",
          GST_TYPE_FLORENCE2_PUBLISH_METHOD, DEFAULT_METHOD, READY_FLAGS));
  /**
   * GstFlorence2Publish:location:
   *
   * The file of method=file; emptied when the element starts.
   */
  g_object_class_install_property (gobject_class, PROP_LOCATION,
      READY_STRING ("location", "Location",
          "File to write the results to (method=file); emptied at start",
          DEFAULT_LOCATION));
  /**
   * GstFlorence2Publish:file-format:
   *
   * Layout of the file: `json-lines` (one JSON object a line, as the
   * florence2 element's results-location) or `json` (one JSON array,
   * complete at EOS).
   */
  g_object_class_install_property (gobject_class, PROP_FILE_FORMAT,
      g_param_spec_enum ("file-format", "File format",
          "Layout of the file (method=file): JSON lines or one JSON array",
          GST_TYPE_FLORENCE2_PUBLISH_FILE_FORMAT, DEFAULT_FILE_FORMAT,
          READY_FLAGS));
  /**
   * GstFlorence2Publish:address:
   *
   * The MQTT broker as `host:port` (`[v6 address]:port` for IPv6; port
   * 1883 when left out).
   */
  g_object_class_install_property (gobject_class, PROP_ADDRESS,
      READY_STRING ("address", "Address",
          "MQTT broker as host:port ([::1]:1883 for IPv6)", DEFAULT_ADDRESS));
  /**
   * GstFlorence2Publish:topic:
   *
   * The MQTT topic to publish to; NULL: `florence2/<element name>`.
   */
  g_object_class_install_property (gobject_class, PROP_TOPIC,
      READY_STRING ("topic", "Topic",
          "MQTT topic (NULL: florence2/<element name>)", DEFAULT_TOPIC));
  /**
   * GstFlorence2Publish:qos:
   *
   * MQTT quality of service: 0 at most once (lost with the connection),
   * 1 at least once, 2 exactly once per connection (a message may come
   * twice across a reconnection).
   */
  g_object_class_install_property (gobject_class, PROP_QOS,
      g_param_spec_int ("qos", "QoS",
          "MQTT quality of service: 0 at most once, 1 at least once, "
          "2 exactly once per connection", 0, 2, DEFAULT_QOS, READY_FLAGS));
  /**
   * GstFlorence2Publish:client-id:
   *
   * The MQTT client id; NULL: one made up by the client library. Two
   * clients with one id throw each other off the broker.
   */
  g_object_class_install_property (gobject_class, PROP_CLIENT_ID,
      READY_STRING ("client-id", "Client id",
          "MQTT client id (NULL: a random one)", NULL));
  /**
   * GstFlorence2Publish:username:
   *
   * User name for the broker; NULL: none.
   */
  g_object_class_install_property (gobject_class, PROP_USERNAME,
      READY_STRING ("username", "User name",
          "User name for the MQTT broker (NULL: none)", NULL));
  /**
   * GstFlorence2Publish:password:
   *
   * Password for the broker (write-only); NULL: none.
   */
  g_object_class_install_property (gobject_class, PROP_PASSWORD,
      g_param_spec_string ("password", "Password",
          "Password for the MQTT broker (write-only; NULL: none)", NULL,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  /**
   * GstFlorence2Publish:ca-file:
   *
   * PEM file of the certificate authority that signed the broker's
   * certificate; setting it turns TLS on.
   */
  g_object_class_install_property (gobject_class, PROP_CA_FILE,
      READY_STRING ("ca-file", "CA file",
          "PEM file of the authority that signed the broker's certificate "
          "(turns TLS on; NULL: no TLS)", NULL));
  /**
   * GstFlorence2Publish:cert-file:
   *
   * PEM client certificate for brokers that ask for one (with key-file).
   */
  g_object_class_install_property (gobject_class, PROP_CERT_FILE,
      READY_STRING ("cert-file", "Certificate file",
          "PEM client certificate for TLS (with key-file and ca-file)",
          NULL));
  /**
   * GstFlorence2Publish:key-file:
   *
   * PEM private key of cert-file (unencrypted).
   */
  g_object_class_install_property (gobject_class, PROP_KEY_FILE,
      READY_STRING ("key-file", "Key file",
          "PEM private key of cert-file (unencrypted)", NULL));
  /**
   * GstFlorence2Publish:keepalive:
   *
   * Seconds between MQTT keep-alive pings; a broker silent for 1.5 times
   * that is taken as gone.
   */
  g_object_class_install_property (gobject_class, PROP_KEEPALIVE,
      g_param_spec_uint ("keepalive", "Keep-alive",
          "Seconds between MQTT keep-alive pings", 5, 65535,
          DEFAULT_KEEPALIVE, READY_FLAGS));
  /**
   * GstFlorence2Publish:max-queued:
   *
   * Results held while the broker is away (or the file is slow); beyond
   * that the oldest is dropped and counted in #GstFlorence2Publish:dropped.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_QUEUED,
      g_param_spec_uint ("max-queued", "Max queued",
          "Results held while the broker is away; beyond that the oldest "
          "are dropped (and counted)", 1, G_MAXINT, DEFAULT_MAX_QUEUED,
          READY_FLAGS));
  /**
   * GstFlorence2Publish:flush-timeout:
   *
   * Milliseconds EOS waits for outstanding results (not yet acknowledged
   * by the broker, or not yet written); what is left then is reported.
   */
  g_object_class_install_property (gobject_class, PROP_FLUSH_TIMEOUT,
      g_param_spec_uint ("flush-timeout", "Flush timeout",
          "Milliseconds EOS waits for outstanding results to be delivered "
          "(the rest is reported)", 0, G_MAXINT, DEFAULT_FLUSH_TIMEOUT,
          READY_FLAGS));
  /**
   * GstFlorence2Publish:timestamp-utc:
   *
   * Lead each JSON object with a `timestamp_utc` member: the wall clock
   * when the buffer passed, ISO 8601 in UTC with microseconds.
   */
  g_object_class_install_property (gobject_class, PROP_TIMESTAMP_UTC,
      g_param_spec_boolean ("timestamp-utc", "Timestamp UTC",
          "Add the wall-clock time (ISO 8601, UTC) as \"timestamp_utc\"",
          DEFAULT_TIMESTAMP_UTC, READY_FLAGS));
  /**
   * GstFlorence2Publish:published:
   *
   * Results delivered: acknowledged by the broker (qos 1, 2), written to
   * the socket (qos 0) or to the file.
   */
  g_object_class_install_property (gobject_class, PROP_PUBLISHED,
      g_param_spec_uint64 ("published", "Published",
          "Results delivered (acknowledged by the broker for qos 1 and 2)",
          0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /**
   * GstFlorence2Publish:dropped:
   *
   * Results dropped because more than max-queued were waiting (or the
   * file could not take them).
   */
  g_object_class_install_property (gobject_class, PROP_DROPPED,
      g_param_spec_uint64 ("dropped", "Dropped",
          "Results dropped: more than max-queued were waiting", 0,
          G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /**
   * GstFlorence2Publish:queued:
   *
   * Results waiting now (not yet delivered).
   */
  g_object_class_install_property (gobject_class, PROP_QUEUED,
      g_param_spec_uint ("queued", "Queued", "Results waiting now", 0,
          G_MAXUINT, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Florence-2 results publisher", "Filter/Analytics/Network",
      "Publishes the Florence-2 results of each buffer as JSON to a file or "
      "an MQTT broker", "gst-florence2 contributors");

  trans_class->start = GST_DEBUG_FUNCPTR (gst_florence2_publish_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_florence2_publish_stop);
  trans_class->transform_ip =
      GST_DEBUG_FUNCPTR (gst_florence2_publish_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_florence2_publish_sink_event);
  trans_class->passthrough_on_same_caps = TRUE;
  trans_class->transform_ip_on_passthrough = TRUE;

  gst_type_mark_as_plugin_api (GST_TYPE_FLORENCE2_PUBLISH_METHOD, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_FLORENCE2_PUBLISH_FILE_FORMAT, 0);
}

static void
gst_florence2_publish_init (GstFlorence2Publish * self)
{
  Settings *s = &self->props;

  s->method = DEFAULT_METHOD;
  s->file_format = DEFAULT_FILE_FORMAT;
  s->address = g_strdup (DEFAULT_ADDRESS);
  s->qos = DEFAULT_QOS;
  s->keepalive = DEFAULT_KEEPALIVE;
  s->max_queued = DEFAULT_MAX_QUEUED;
  s->flush_timeout = DEFAULT_FLUSH_TIMEOUT;
  s->timestamp_utc = DEFAULT_TIMESTAMP_UTC;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->queue);
  self->wake[0] = self->wake[1] = -1;
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}
