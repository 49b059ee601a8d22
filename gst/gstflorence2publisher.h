/* Publishing results off the streaming thread, for florence2publish: a
 * bounded queue of JSON records and a thread of its own that writes them to
 * a file or sends them to an MQTT broker (libmosquitto), reconnecting with a
 * growing delay while the broker is away. Problems are posted as errors,
 * warnings and element messages of the element given at creation.
 *
 * Locks: the publisher's own lock guards its queue and counters; it is
 * dropped before anything is posted on the bus and before calls into the
 * client library that may block, and the element's object lock is never
 * taken under it. */
#pragma once

#include <gst/gst.h>

#include "gstflorence2result.h"

G_BEGIN_DECLS

typedef enum {
  GST_FLORENCE2_PUBLISH_FILE,
  GST_FLORENCE2_PUBLISH_MQTT,
} GstFlorence2PublishMethod;

/* The settings of one run (florence2publish's properties). */
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
} GstFlorence2PublishSettings;

/* A copy of @from into @to (whose strings are not freed): empty strings
 * become NULL, and host is left for the start to fill in. */
void gst_florence2_publish_settings_copy (GstFlorence2PublishSettings * to,
    const GstFlorence2PublishSettings * from);
void gst_florence2_publish_settings_clear (GstFlorence2PublishSettings * s);

typedef struct _GstFlorence2Publisher GstFlorence2Publisher;

/* Once per process, before the first publisher starts. */
void gst_florence2_publisher_lib_init (void);

/* A publisher for @element (not referenced: the element owns it). */
GstFlorence2Publisher *gst_florence2_publisher_new (GstElement * element);
void gst_florence2_publisher_free (GstFlorence2Publisher * pub);

/* Check @settings (taken over, cleared at the next start or at free), open
 * the file or set up the MQTT client and start the thread. FALSE with an
 * element error posted when the settings cannot work. */
gboolean gst_florence2_publisher_start (GstFlorence2Publisher * pub,
    GstFlorence2PublishSettings * settings);

/* Stop the thread; the file is finished, what was not sent is dropped. */
void gst_florence2_publisher_stop (GstFlorence2Publisher * pub);

/* Streaming thread: queue @json (taken), dropping the oldest beyond
 * max-queued. */
void gst_florence2_publisher_push (GstFlorence2Publisher * pub, gchar * json);

/* Streaming thread, at EOS: wait up to flush-timeout for the queue to
 * empty, and report what could not be delivered. */
void gst_florence2_publisher_flush (GstFlorence2Publisher * pub);

/* Results delivered, dropped, and waiting now. */
void gst_florence2_publisher_get_counts (GstFlorence2Publisher * pub,
    guint64 * published, guint64 * dropped, guint * queued);

G_END_DECLS
