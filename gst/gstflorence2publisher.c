/* Publishing results off the streaming thread: the queue, the publishing
 * thread, and the two ways out, a results file and an MQTT broker. See
 * gstflorence2publisher.h. */
#include "gstflorence2publisher.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

GST_DEBUG_CATEGORY_EXTERN (florence2_publish_debug);
#define GST_CAT_DEFAULT florence2_publish_debug

#define MQTT_DEFAULT_PORT 1883
/* messages handed to the client library and not yet acknowledged */
#define MQTT_WINDOW 20
#define RECONNECT_MIN_US (100 * G_TIME_SPAN_MILLISECOND)
#define RECONNECT_MAX_US (5 * G_TIME_SPAN_SECOND)

/* One result on its way. */
typedef struct
{
  guint64 seq;
  gchar *json;
  gint mid;                     /* the client library's id once handed over */
  gboolean sent;                /* handed over, not yet acknowledged */
} Message;

struct _GstFlorence2Publisher
{
  GstElement *element;          /* the element that posts what happens */

  /* the run: set in start(), read-only until stop() */
  GstFlorence2PublishSettings run;

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

void
gst_florence2_publish_settings_clear (GstFlorence2PublishSettings * s)
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

void
gst_florence2_publish_settings_copy (GstFlorence2PublishSettings * to,
    const GstFlorence2PublishSettings * from)
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
queue_find (GstFlorence2Publisher * pub, guint64 seq)
{
  for (GList * l = pub->queue.head; l != NULL; l = l->next)
    if (((Message *) l->data)->seq == seq)
      return l->data;
  return NULL;
}

static void
queue_remove (GstFlorence2Publisher * pub, Message * m)
{
  g_queue_remove (&pub->queue, m);
  message_free (m);
  g_cond_broadcast (&pub->cond);
}

static void
wake_thread (GstFlorence2Publisher * pub)
{
  const gchar byte = 1;

  /* a full pipe already wakes it */
  if (pub->wake[1] >= 0 && write (pub->wake[1], &byte, 1) < 0 &&
      errno != EAGAIN)
    GST_WARNING_OBJECT (pub->element, "cannot wake the publishing thread: %s",
        g_strerror (errno));
}

static void
close_wake (GstFlorence2Publisher * pub)
{
  for (guint i = 0; i < 2; i++)
    if (pub->wake[i] >= 0) {
      g_close (pub->wake[i], NULL);
      pub->wake[i] = -1;
    }
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
report_dropped (GstFlorence2Publisher * pub)
{
  guint64 dropped;

  g_mutex_lock (&pub->lock);
  dropped = pub->dropped;
  if (dropped == pub->dropped_reported) {
    g_mutex_unlock (&pub->lock);
    return;
  }
  pub->dropped_reported = dropped;
  g_mutex_unlock (&pub->lock);
  gst_element_post_message (pub->element,
      gst_message_new_element (GST_OBJECT (pub->element),
          gst_structure_new ("florence2publish-dropped",
              "dropped", G_TYPE_UINT64, dropped, NULL)));
}

/* ------------------------------------------------------- file method */

static void
file_loop (GstFlorence2Publisher * pub)
{
  g_mutex_lock (&pub->lock);
  for (;;) {
    Message *m = g_queue_pop_head (&pub->queue);
    GError *error = NULL;
    gboolean ok;

    /* at stop, what is queued is still written: a local file is quick */
    if (m == NULL) {
      if (pub->quit)
        break;
      g_cond_wait (&pub->cond, &pub->lock);
      continue;
    }
    pub->writing++;
    g_mutex_unlock (&pub->lock);
    ok = gst_florence2_results_file_write (pub->file, m->json, &error);
    message_free (m);
    g_mutex_lock (&pub->lock);
    pub->writing--;
    if (ok) {
      pub->published++;
      pub->warned_drop = FALSE;
    } else {
      guint64 dropped = ++pub->dropped;
      gboolean warn = !pub->warned_drop;

      pub->warned_drop = TRUE;
      g_mutex_unlock (&pub->lock);
      if (warn)
        GST_ELEMENT_WARNING_WITH_DETAILS (pub->element, RESOURCE, WRITE,
            ("%s; %" G_GUINT64_FORMAT " result(s) dropped so far",
                error->message, dropped),
            ("the file keeps its whole records; free some space or choose "
                "another location (the dropped property counts the losses)"),
            ("dropped", G_TYPE_UINT64, dropped, NULL));
      else
        GST_WARNING_OBJECT (pub->element, "%s", error->message);
      g_mutex_lock (&pub->lock);
    }
    g_clear_error (&error);
    g_cond_broadcast (&pub->cond);
  }
  g_mutex_unlock (&pub->lock);
}

/* ------------------------------------------------------- MQTT method */

/* Lock not held: an error ends publishing; wake whoever waits for it. */
static void
mark_fatal (GstFlorence2Publisher * pub)
{
  g_mutex_lock (&pub->lock);
  pub->fatal = TRUE;
  g_cond_broadcast (&pub->cond);
  g_mutex_unlock (&pub->lock);
}

/* Publishing thread, lock held: end the client (without the lock, which
 * its callbacks take). @disconnect: tell the broker first; written at once,
 * as the client is driven by this thread. */
static void
mqtt_client_drop (GstFlorence2Publisher * pub, gboolean disconnect)
{
  struct mosquitto *mosq = pub->mosq;

  pub->mosq = NULL;
  pub->connected = FALSE;
  g_mutex_unlock (&pub->lock);
  if (disconnect)
    mosquitto_disconnect (mosq);
  mosquitto_destroy (mosq);
  g_mutex_lock (&pub->lock);
}

/* Client library callbacks: on the publishing thread, lock not held. */
static void
on_connect (struct mosquitto *mosq, void *user_data, int rc)
{
  GstFlorence2Publisher *pub = user_data;

  if (rc != 0) {
    mark_fatal (pub);
    if (rc == 4 || rc == 5)     /* bad user name or password; not authorised */
      GST_ELEMENT_ERROR (pub->element, RESOURCE, NOT_AUTHORIZED,
          ("The MQTT broker at %s refused the credentials: %s",
              pub->run.address, mosquitto_connack_string (rc)),
          ("set the username and password properties to an account the "
              "broker accepts (user name %s given)",
              pub->run.username ? pub->run.username : "none"));
    else
      GST_ELEMENT_ERROR (pub->element, RESOURCE, OPEN_WRITE,
          ("The MQTT broker at %s refused the connection: %s",
              pub->run.address, mosquitto_connack_string (rc)),
          ("check the client-id and the broker's configuration"));
    return;
  }
  GST_INFO_OBJECT (pub->element, "connected to %s", pub->run.address);
  g_mutex_lock (&pub->lock);
  pub->connected = TRUE;
  pub->warned_drop = FALSE;
  pub->backoff = RECONNECT_MIN_US;
  g_mutex_unlock (&pub->lock);
  report_dropped (pub);
}

static void
on_publish (struct mosquitto *mosq, void *user_data, int mid)
{
  GstFlorence2Publisher *pub = user_data;

  g_mutex_lock (&pub->lock);
  for (GList * l = pub->queue.head; l != NULL; l = l->next) {
    Message *m = l->data;

    if (m->sent && m->mid == mid) {
      pub->published++;
      queue_remove (pub, m);
      break;
    }
  }
  g_mutex_unlock (&pub->lock);
}

static void
on_log (struct mosquitto *mosq, void *user_data, int level, const char *str)
{
  GstFlorence2Publisher *pub = user_data;

  GST_LOG_OBJECT (pub->element, "libmosquitto: %s", str);
}

/* The client library's error as text. */
static const gchar *
mqtt_strerror (gint rc, gint err)
{
  return rc == MOSQ_ERR_ERRNO ? g_strerror (err) : mosquitto_strerror (rc);
}

static void
mqtt_tls_error (GstFlorence2Publisher * pub, const gchar * what)
{
  mark_fatal (pub);
  GST_ELEMENT_ERROR (pub->element, RESOURCE, NOT_AUTHORIZED,
      ("TLS with the MQTT broker at %s failed (%s)", pub->run.address, what),
      ("check that ca-file (%s) holds the authority that signed the broker's "
          "certificate, that the broker's certificate names the host of "
          "address, and that cert-file and key-file (%s, %s) are a PEM "
          "certificate and its key",
          pub->run.ca_file ? pub->run.ca_file : "none",
          pub->run.cert_file ? pub->run.cert_file : "none",
          pub->run.key_file ? pub->run.key_file : "none"));
}

/* A client set up with the run's settings, or NULL with an element error
 * posted (settings the client library refuses). */
static struct mosquitto *
mqtt_client_new (GstFlorence2Publisher * pub)
{
  const GstFlorence2PublishSettings *s = &pub->run;
  struct mosquitto *mosq;
  gint rc;

  mosq = mosquitto_new (s->client_id, true, pub);
  if (mosq == NULL) {
    GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
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
      GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
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
      GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
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
mqtt_connection_lost (GstFlorence2Publisher * pub, const gchar * why)
{
  struct mosquitto *mosq = pub->mosq;
  gboolean was_connected = pub->connected;
  guint waiting = pub->queue.length;

  pub->mosq = NULL;
  pub->connected = FALSE;
  for (GList * l = pub->queue.head; l != NULL; l = l->next) {
    Message *m = l->data;

    m->sent = FALSE;
    m->mid = 0;
  }
  pub->next_attempt = g_get_monotonic_time () + pub->backoff;
  pub->backoff = MIN (pub->backoff * 2, RECONNECT_MAX_US);
  g_mutex_unlock (&pub->lock);
  if (was_connected)
    GST_WARNING_OBJECT (pub->element, "lost the broker at %s (%s): %u "
        "message(s) wait for it", pub->run.address, why, waiting);
  else
    GST_INFO_OBJECT (pub->element, "no broker at %s (%s)", pub->run.address,
        why);
  if (mosq != NULL)
    mosquitto_destroy (mosq);
  g_mutex_lock (&pub->lock);
}

/* Publishing thread, lock held: try to connect. */
static void
mqtt_connect (GstFlorence2Publisher * pub)
{
  struct mosquitto *mosq;
  gint rc, err;

  g_mutex_unlock (&pub->lock);
  mosq = mqtt_client_new (pub);
  if (mosq == NULL) {
    g_mutex_lock (&pub->lock);
    pub->fatal = TRUE;
    g_cond_broadcast (&pub->cond);
    return;
  }
  errno = 0;
  rc = mosquitto_connect_async (mosq, pub->run.host, pub->run.port,
      pub->run.keepalive);
  err = errno;
  if (rc == MOSQ_ERR_TLS) {
    mosquitto_destroy (mosq);
    mqtt_tls_error (pub, "the TLS files could not be loaded");
    g_mutex_lock (&pub->lock);
    return;
  }
  g_mutex_lock (&pub->lock);
  pub->mosq = mosq;
  if (rc != MOSQ_ERR_SUCCESS)
    mqtt_connection_lost (pub, mqtt_strerror (rc, err));
}

/* Publishing thread, lock held: hand the oldest messages not yet handed
 * over to the client library, up to MQTT_WINDOW unacknowledged ones. */
static void
mqtt_send (GstFlorence2Publisher * pub)
{
  guint in_flight = 0;
  GList *l;

  for (l = pub->queue.head; l != NULL && ((Message *) l->data)->sent;
      l = l->next)
    in_flight++;
  while (l != NULL && in_flight < MQTT_WINDOW && pub->connected &&
      pub->mosq != NULL && !pub->quit) {
    Message *m = l->data;
    guint64 seq = m->seq;
    gchar *json = g_strdup (m->json);
    gint mid = 0, rc;

    /* the streaming thread may drop it meanwhile: found again by seq */
    m->sent = TRUE;
    g_mutex_unlock (&pub->lock);
    rc = mosquitto_publish (pub->mosq, &mid, pub->run.topic,
        (gint) strlen (json), json, pub->run.qos, false);
    g_free (json);
    g_mutex_lock (&pub->lock);
    m = queue_find (pub, seq);
    if (rc != MOSQ_ERR_SUCCESS) {
      GST_DEBUG_OBJECT (pub->element, "publish: %s", mosquitto_strerror (rc));
      if (m != NULL)
        m->sent = FALSE;
      return;                   /* the loop finds out what went wrong */
    }
    if (m == NULL) {
      l = pub->queue.head;
    } else if (pub->run.qos == 0) {
      /* at most once: written is done */
      l = g_queue_find (&pub->queue, m)->next;
      pub->published++;
      queue_remove (pub, m);
    } else {
      m->mid = mid;
      l = g_queue_find (&pub->queue, m)->next;
    }
    in_flight = 0;
    for (GList * k = pub->queue.head; k != l; k = k->next)
      in_flight += ((Message *) k->data)->sent ? 1 : 0;
  }
}

static void
mqtt_loop (GstFlorence2Publisher * pub)
{
  pub->backoff = RECONNECT_MIN_US;
  pub->next_attempt = 0;

  g_mutex_lock (&pub->lock);
  while (!pub->quit) {
    struct pollfd fds[2];
    gint64 now = g_get_monotonic_time ();
    gint timeout_ms = 1000, n_fds = 1, rc;
    gchar drain[64];

    if (!pub->fatal && pub->mosq == NULL && now >= pub->next_attempt)
      mqtt_connect (pub);
    if (pub->mosq != NULL && pub->connected)
      mqtt_send (pub);
    if (pub->quit)
      break;

    fds[0].fd = pub->wake[0];
    fds[0].events = POLLIN;
    if (pub->mosq != NULL && mosquitto_socket (pub->mosq) >= 0) {
      fds[1].fd = mosquitto_socket (pub->mosq);
      fds[1].events = POLLIN | (mosquitto_want_write (pub->mosq) ?
          POLLOUT : 0);
      n_fds = 2;
    } else if (pub->mosq == NULL && !pub->fatal) {
      gint64 wait = pub->next_attempt - g_get_monotonic_time ();

      timeout_ms = (gint) CLAMP (wait / 1000 + 1, 0, 1000);
    }
    g_mutex_unlock (&pub->lock);

    if (poll (fds, n_fds, timeout_ms) > 0 && (fds[0].revents & POLLIN))
      while (read (pub->wake[0], drain, sizeof (drain)) > 0);

    rc = MOSQ_ERR_SUCCESS;
    if (pub->mosq != NULL) {
      errno = 0;
      rc = mosquitto_loop (pub->mosq, 0, 1);
    }
    g_mutex_lock (&pub->lock);
    if (rc == MOSQ_ERR_TLS) {
      mqtt_client_drop (pub, FALSE);
      g_mutex_unlock (&pub->lock);
      mqtt_tls_error (pub, "the handshake failed");
      g_mutex_lock (&pub->lock);
    } else if (pub->fatal && pub->mosq != NULL) {
      mqtt_client_drop (pub, FALSE);
    } else if (rc != MOSQ_ERR_SUCCESS && pub->mosq != NULL) {
      mqtt_connection_lost (pub, mqtt_strerror (rc, errno));
    }
  }
  if (pub->mosq != NULL)
    mqtt_client_drop (pub, TRUE);
  g_mutex_unlock (&pub->lock);
}

static gpointer
publish_thread (gpointer data)
{
  GstFlorence2Publisher *pub = data;

  if (pub->run.method == GST_FLORENCE2_PUBLISH_FILE)
    file_loop (pub);
  else
    mqtt_loop (pub);
  return NULL;
}

/* ------------------------------------------------------------- control */

gboolean
gst_florence2_publisher_start (GstFlorence2Publisher * pub,
    GstFlorence2PublishSettings * settings)
{
  GstFlorence2PublishSettings *s = &pub->run;
  GError *error = NULL;

  gst_florence2_publish_settings_clear (s);
  *s = *settings;
  memset (settings, 0, sizeof (*settings));

  pub->published = pub->dropped = pub->dropped_reported = 0;
  pub->next_seq = 0;
  pub->warned_drop = pub->connected = pub->fatal = pub->quit = FALSE;

  if (s->method == GST_FLORENCE2_PUBLISH_FILE) {
    if (s->location == NULL) {
      GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
          ("No file to publish to"),
          ("set the location property, or method=mqtt"));
      return FALSE;
    }
    pub->file = gst_florence2_results_file_open (s->location,
        s->file_format, FALSE, &error);
    if (pub->file == NULL) {
      GST_ELEMENT_ERROR (pub->element, RESOURCE, OPEN_WRITE, ("%s",
              error->message),
          ("check that the folder exists and is writable"));
      g_clear_error (&error);
      return FALSE;
    }
  } else {
    if (!parse_address (s->address, &s->host, &s->port)) {
      GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
          ("The MQTT address '%s' is not host:port",
              s->address ? s->address : ""),
          ("set address to the broker's host and port, e.g. 127.0.0.1:1883 "
              "or [::1]:1883"));
      return FALSE;
    }
    if (s->topic == NULL)
      s->topic = g_strdup_printf ("florence2/%s",
          GST_OBJECT_NAME (pub->element));
    if (mosquitto_pub_topic_check (s->topic) != MOSQ_ERR_SUCCESS) {
      GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
          ("The MQTT topic '%s' cannot be published to", s->topic),
          ("set topic to UTF-8 text without the wildcards + and #"));
      return FALSE;
    }
    for (guint i = 0; i < 3; i++) {
      const gchar *names[] = { "ca-file", "cert-file", "key-file" };
      const gchar *files[] = { s->ca_file, s->cert_file, s->key_file };

      if (files[i] != NULL && !g_file_test (files[i], G_FILE_TEST_IS_REGULAR)) {
        GST_ELEMENT_ERROR (pub->element, RESOURCE, NOT_FOUND,
            ("The TLS file '%s' (%s) does not exist", files[i], names[i]),
            ("set %s to a readable PEM file", names[i]));
        return FALSE;
      }
    }
    if ((s->cert_file == NULL) != (s->key_file == NULL)) {
      GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
          ("A TLS client certificate needs its key, and a key its "
              "certificate"), ("set both cert-file and key-file, or neither"));
      return FALSE;
    }
    if (s->cert_file != NULL && s->ca_file == NULL) {
      GST_ELEMENT_ERROR (pub->element, RESOURCE, SETTINGS,
          ("TLS needs the broker's certificate authority"),
          ("set ca-file to the PEM file of the authority that signed the "
              "broker's certificate"));
      return FALSE;
    }
    /* settings the client library refuses fail here, not later */
    {
      struct mosquitto *probe = mqtt_client_new (pub);

      if (probe == NULL)
        return FALSE;
      mosquitto_destroy (probe);
    }
  }

  if (!g_unix_open_pipe (pub->wake, FD_CLOEXEC, &error) ||
      !g_unix_set_fd_nonblocking (pub->wake[0], TRUE, NULL) ||
      !g_unix_set_fd_nonblocking (pub->wake[1], TRUE, NULL)) {
    GST_ELEMENT_ERROR (pub->element, RESOURCE, FAILED,
        ("Cannot start publishing: %s", error ? error->message : "pipe"),
        (NULL));
    g_clear_error (&error);
    goto fail;
  }
  pub->thread = g_thread_try_new ("florence2publish", publish_thread, pub,
      &error);
  if (pub->thread == NULL) {
    GST_ELEMENT_ERROR (pub->element, RESOURCE, FAILED,
        ("Cannot start the publishing thread: %s", error->message), (NULL));
    g_clear_error (&error);
    goto fail;
  }
  return TRUE;

fail:
  close_wake (pub);
  g_clear_pointer (&pub->file, gst_florence2_results_file_close);
  return FALSE;
}

void
gst_florence2_publisher_stop (GstFlorence2Publisher * pub)
{
  guint left;

  g_mutex_lock (&pub->lock);
  pub->quit = TRUE;
  g_cond_broadcast (&pub->cond);
  g_mutex_unlock (&pub->lock);
  wake_thread (pub);
  if (pub->thread != NULL)
    g_thread_join (pub->thread);
  pub->thread = NULL;

  left = pub->queue.length;
  if (left > 0)
    GST_WARNING_OBJECT (pub->element, "stopped with %u result(s) not "
        "published", left);
  g_queue_clear_full (&pub->queue, (GDestroyNotify) message_free);
  if (pub->file != NULL) {
    GError *error = NULL;

    if (!gst_florence2_results_file_finish (pub->file, &error)) {
      GST_WARNING_OBJECT (pub->element, "%s", error->message);
      g_clear_error (&error);
    }
    g_clear_pointer (&pub->file, gst_florence2_results_file_close);
  }
  close_wake (pub);
  gst_florence2_publish_settings_clear (&pub->run);
}

void
gst_florence2_publisher_push (GstFlorence2Publisher * pub, gchar * json)
{
  Message *m = g_new0 (Message, 1);
  guint64 dropped = 0, now_dropped = 0;
  gboolean warn = FALSE;

  m->json = json;
  g_mutex_lock (&pub->lock);
  m->seq = pub->next_seq++;
  while (pub->queue.length >= MAX (pub->run.max_queued, 1)) {
    message_free (g_queue_pop_head (&pub->queue));
    now_dropped++;
  }
  g_queue_push_tail (&pub->queue, m);
  g_cond_broadcast (&pub->cond);
  if (now_dropped > 0) {
    dropped = pub->dropped += now_dropped;
    warn = !pub->warned_drop;
    pub->warned_drop = TRUE;
  }
  g_mutex_unlock (&pub->lock);
  if (warn)
    GST_ELEMENT_WARNING_WITH_DETAILS (pub->element, RESOURCE, WRITE,
        ("%u result(s) waiting for %s: dropping the oldest "
            "(%" G_GUINT64_FORMAT " so far)", pub->run.max_queued,
            pub->run.method == GST_FLORENCE2_PUBLISH_MQTT ?
            "the MQTT broker" : "the file", dropped),
        ("%s; raise max-queued to keep more (the dropped property counts "
            "the losses)", pub->run.method == GST_FLORENCE2_PUBLISH_MQTT ?
            "the broker is unreachable or slower than the results" :
            "the file is slower than the results"),
        ("dropped", G_TYPE_UINT64, dropped, NULL));
  wake_thread (pub);
}


void
gst_florence2_publisher_flush (GstFlorence2Publisher * pub)
{
  gint64 deadline = g_get_monotonic_time () +
      (gint64) pub->run.flush_timeout * G_TIME_SPAN_MILLISECOND;
  guint undelivered;
  guint64 dropped;

  g_mutex_lock (&pub->lock);
  while ((pub->queue.length > 0 || pub->writing > 0) && !pub->fatal &&
      !pub->quit && pub->thread != NULL)
    if (!g_cond_wait_until (&pub->cond, &pub->lock, deadline))
      break;
  undelivered = pub->queue.length + pub->writing;
  dropped = pub->dropped;
  g_mutex_unlock (&pub->lock);

  if (pub->file != NULL && undelivered == 0) {
    GError *error = NULL;

    /* a complete array at EOS; a later record replaces the "]" */
    if (!gst_florence2_results_file_finish (pub->file, &error)) {
      GST_ELEMENT_WARNING (pub->element, RESOURCE, WRITE, ("%s",
              error->message), ("free some space"));
      g_clear_error (&error);
    }
  }
  report_dropped (pub);
  if (undelivered == 0)
    return;
  GST_ELEMENT_WARNING_WITH_DETAILS (pub->element, RESOURCE, WRITE,
      ("%u result(s) not delivered to %s within flush-timeout (%u ms)",
          undelivered, pub->run.method == GST_FLORENCE2_PUBLISH_MQTT ?
          pub->run.address : pub->run.location, pub->run.flush_timeout),
      ("%s; raise flush-timeout to wait longer",
          pub->fatal ? "publishing had stopped with an error" :
          "the broker is unreachable or did not acknowledge them"),
      ("undelivered", G_TYPE_UINT, undelivered, "dropped", G_TYPE_UINT64,
          dropped, NULL));
  gst_element_post_message (pub->element,
      gst_message_new_element (GST_OBJECT (pub->element),
          gst_structure_new ("florence2publish-undelivered",
              "undelivered", G_TYPE_UINT, undelivered,
              "dropped", G_TYPE_UINT64, dropped, NULL)));
}

/* ------------------------------------------------------------ the object */

void
gst_florence2_publisher_lib_init (void)
{
  mosquitto_lib_init ();
}

GstFlorence2Publisher *
gst_florence2_publisher_new (GstElement * element)
{
  GstFlorence2Publisher *pub = g_new0 (GstFlorence2Publisher, 1);

  pub->element = element;
  g_mutex_init (&pub->lock);
  g_cond_init (&pub->cond);
  g_queue_init (&pub->queue);
  pub->wake[0] = pub->wake[1] = -1;
  return pub;
}

void
gst_florence2_publisher_free (GstFlorence2Publisher * pub)
{
  gst_florence2_publish_settings_clear (&pub->run);
  g_queue_clear_full (&pub->queue, (GDestroyNotify) message_free);
  g_mutex_clear (&pub->lock);
  g_cond_clear (&pub->cond);
  g_free (pub);
}

void
gst_florence2_publisher_get_counts (GstFlorence2Publisher * pub,
    guint64 * published, guint64 * dropped, guint * queued)
{
  g_mutex_lock (&pub->lock);
  *published = pub->published;
  *dropped = pub->dropped;
  *queued = pub->queue.length + pub->writing;
  g_mutex_unlock (&pub->lock);
}
