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
#include "gstflorence2publisher.h"
#include "gstflorence2result.h"

#include "florence2/gstflorence2meta.h"

GST_DEBUG_CATEGORY (florence2_publish_debug);
#define GST_CAT_DEFAULT florence2_publish_debug

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

struct _GstFlorence2Publish
{
  GstBaseTransform parent;

  /* properties (object lock) */
  GstFlorence2PublishSettings props;

  /* the run's timestamp-utc, set in start() */
  gboolean timestamp_utc;

  GstFlorence2Publisher *publisher;
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

/* ----------------------------------------------------------- element */

static gboolean
gst_florence2_publish_start (GstBaseTransform * trans)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);
  GstFlorence2PublishSettings run;

  GST_OBJECT_LOCK (self);
  gst_florence2_publish_settings_copy (&run, &self->props);
  GST_OBJECT_UNLOCK (self);
  self->timestamp_utc = run.timestamp_utc;
  return gst_florence2_publisher_start (self->publisher, &run);
}

static gboolean
gst_florence2_publish_stop (GstBaseTransform * trans)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);

  gst_florence2_publisher_stop (self->publisher);
  return TRUE;
}

static GstFlowReturn
gst_florence2_publish_transform_ip (GstBaseTransform * trans,
    GstBuffer * buffer)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);
  gpointer state = NULL;
  GstMeta *meta;
  gint64 utc = self->timestamp_utc ? g_get_real_time () : -1;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_FLORENCE2_META_API_TYPE)) != NULL)
    gst_florence2_publisher_push (self->publisher,
        gst_florence2_result_json ((GstFlorence2Meta *) meta,
            GST_BUFFER_PTS (buffer), utc));
  return GST_FLOW_OK;
}

/* At EOS, wait for what is outstanding (up to flush-timeout) and report
 * what was not delivered. */
static gboolean
gst_florence2_publish_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (trans);

  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS)
    gst_florence2_publisher_flush (self->publisher);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static void
gst_florence2_publish_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFlorence2Publish *self = GST_FLORENCE2_PUBLISH (object);
  GstFlorence2PublishSettings *s = &self->props;
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
  GstFlorence2PublishSettings *s = &self->props;

  switch (prop_id) {
    case PROP_PUBLISHED:
    case PROP_DROPPED:
    case PROP_QUEUED:{
      guint64 published, dropped;
      guint queued;

      gst_florence2_publisher_get_counts (self->publisher, &published,
          &dropped, &queued);
      if (prop_id == PROP_PUBLISHED)
        g_value_set_uint64 (value, published);
      else if (prop_id == PROP_DROPPED)
        g_value_set_uint64 (value, dropped);
      else
        g_value_set_uint (value, queued);
      return;
    }
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

  gst_florence2_publish_settings_clear (&self->props);
  gst_florence2_publisher_free (self->publisher);
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

  gst_florence2_publisher_lib_init ();

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
  GstFlorence2PublishSettings *s = &self->props;

  s->method = DEFAULT_METHOD;
  s->file_format = DEFAULT_FILE_FORMAT;
  s->address = g_strdup (DEFAULT_ADDRESS);
  s->qos = DEFAULT_QOS;
  s->keepalive = DEFAULT_KEEPALIVE;
  s->max_queued = DEFAULT_MAX_QUEUED;
  s->flush_timeout = DEFAULT_FLUSH_TIMEOUT;
  s->timestamp_utc = DEFAULT_TIMESTAMP_UTC;
  self->publisher = gst_florence2_publisher_new (GST_ELEMENT (self));
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}
