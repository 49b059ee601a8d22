/* The florence2 element's ordered output queue and the pad task that
 * empties it. The sink pad queues frames (choosing those due for inference)
 * and serialized events; a worker thread, the source pad's task, takes them
 * out in order, hands the frames to gstflorence2job.c and pushes the events.
 * Serialized queries wait until everything before them has left. See
 * gstflorence2.c for the lock order. */
#include "gstflorence2private.h"

#define GST_CAT_DEFAULT florence2_debug

/* Frames the worker holds at most in aligned mode: the frames between due
 * frames (inference-interval) wait in memory too, so a long interval lets
 * fewer than batch-size of an element's own frames run at once rather
 * than hold seconds of video. */
#define MAX_HELD_FRAMES 32

/* A queued frame or serialized event. */
typedef struct
{
  GstMiniObject *object;
  gboolean due;                 /* frames: chosen for inference */
} QueueItem;

static void
queue_item_free (QueueItem * item)
{
  gst_mini_object_unref (item->object);
  g_free (item);
}

/* Worker (or flush-stop, with the worker paused): the frames from now on
 * have the format of the caps @event. */
static void
take_caps (GstFlorence2 * self, GstEvent * event)
{
  GstCaps *caps;

  gst_event_parse_caps (event, &caps);
  self->have_info = gst_video_info_from_caps (&self->info, caps);
}

/* queue_lock held: pop the head of the queue. */
static QueueItem *
pop_item (GstFlorence2 * self)
{
  QueueItem *item = g_queue_pop_head (&self->queue);

  if (GST_IS_BUFFER (item->object))
    self->queued_frames--;
  if (item->due)
    self->queued_due--;
  g_cond_broadcast (&self->queue_cond);
  return item;
}

/* Worker, queue_lock not held: push a serialized event. */
static GstFlowReturn
handle_event (GstFlorence2 * self, GstEvent * event)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;

  if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS)
    take_caps (self, event);
  if (eos && self->mode == GST_FLORENCE2_LATENCY_LOW)
    ret = gst_florence2_job_finish_low_latency (self);
  if (ret == GST_FLOW_OK || eos) {
    gst_pad_push_event (self->srcpad, event);
    if (eos)
      ret = GST_FLOW_EOS;
  } else {
    gst_event_unref (event);
  }
  return ret;
}

/* The worker: the source pad's task. In aligned mode it takes frames from
 * the queue while fewer than batch-size of its frames have inferences
 * running (and fewer than MAX_HELD_FRAMES are held), starts theirs, and
 * holds them in order until the oldest is done: queued frames of one
 * element batch together. Events wait until
 * every held frame has left. In low-latency mode frames pass at once. */
static void
gst_florence2_loop (GstFlorence2 * self)
{
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean aligned = self->mode == GST_FLORENCE2_LATENCY_ALIGNED;
  QueueItem *item = NULL;

  g_mutex_lock (&self->queue_lock);
  for (;;) {
    QueueItem *head = g_queue_peek_head (&self->queue);

    if (self->flushing) {
      g_mutex_unlock (&self->queue_lock);
      goto pause;
    }
    if (gst_florence2_job_held_ready (self))
      break;
    if (head != NULL && aligned && GST_IS_BUFFER (head->object) &&
        self->held_jobs < self->batch.batch_size &&
        self->held.length < MAX_HELD_FRAMES) {
      item = pop_item (self);
      gst_florence2_job_hold (self, GST_BUFFER (item->object), item->due);
      g_free (item);
      item = NULL;
      continue;
    }
    if (head != NULL && g_queue_is_empty (&self->held)) {
      item = pop_item (self);
      break;
    }
    g_cond_wait (&self->queue_cond, &self->queue_lock);
  }
  self->worker_busy = TRUE;
  g_mutex_unlock (&self->queue_lock);

  if (item == NULL)
    ret = gst_florence2_job_push_held (self);
  else if (GST_IS_BUFFER (item->object))
    ret = gst_florence2_job_pass_frame (self, GST_BUFFER (item->object),
        item->due);
  else
    ret = handle_event (self, GST_EVENT (item->object));
  g_free (item);

  g_mutex_lock (&self->queue_lock);
  self->worker_busy = FALSE;
  if (ret != GST_FLOW_OK && self->srcresult == GST_FLOW_OK)
    self->srcresult = ret;
  if (ret == GST_FLOW_EOS)
    self->srcresult = GST_FLOW_OK;      /* more data may come after a flush */
  g_cond_broadcast (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);

  if (ret == GST_FLOW_OK || ret == GST_FLOW_EOS)
    return;
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) {
    if (ret != GST_FLOW_ERROR)  /* errors of our own are posted already */
      GST_ELEMENT_FLOW_ERROR (self, ret);
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  }

pause:
  GST_DEBUG_OBJECT (self, "pausing the worker: %s", gst_flow_get_name (ret));
  gst_pad_pause_task (self->srcpad);
}

/* ---------------------------------------------------------- sink pad */

/* queue_lock held: whether this frame is due for inference. */
static gboolean
take_due (GstFlorence2 * self)
{
  guint interval, busy;

  GST_OBJECT_LOCK (self);
  interval = self->inference_interval;
  busy = self->skip_when_busy &&
      self->jobs_running + self->queued_due >= self->batch.batch_size;
  GST_OBJECT_UNLOCK (self);

  if (self->frames_until_due > 0) {
    self->frames_until_due--;
    return FALSE;
  }
  /* aligned + skip-when-busy: frames that arrive during an inference pass
   * without one, and the next free frame is taken */
  if (self->mode == GST_FLORENCE2_LATENCY_ALIGNED && busy)
    return FALSE;
  self->frames_until_due = interval - 1;
  return TRUE;
}

static void
enqueue (GstFlorence2 * self, GstMiniObject * object, gboolean due)
{
  QueueItem *item = g_new0 (QueueItem, 1);

  item->object = object;
  item->due = due;
  if (due)
    self->queued_due++;
  g_queue_push_tail (&self->queue, item);
  g_cond_broadcast (&self->queue_cond);
}

GstFlowReturn
gst_florence2_chain (GstPad * pad, GstObject * parent, GstBuffer * buffer)
{
  GstFlorence2 *self = GST_FLORENCE2 (parent);
  GstFlowReturn ret;

  g_mutex_lock (&self->queue_lock);
  while (self->srcresult == GST_FLOW_OK &&
      self->queued_frames >= self->queue_limit)
    g_cond_wait (&self->queue_cond, &self->queue_lock);
  ret = self->srcresult;
  if (ret == GST_FLOW_OK) {
    enqueue (self, GST_MINI_OBJECT (buffer), take_due (self));
    self->queued_frames++;
    buffer = NULL;
  }
  g_mutex_unlock (&self->queue_lock);

  if (buffer != NULL)
    gst_buffer_unref (buffer);
  return ret;
}

void
gst_florence2_queue_clear (GstFlorence2 * self)
{
  g_queue_clear_full (&self->queue, (GDestroyNotify) queue_item_free);
  self->queued_frames = 0;
  self->queued_due = 0;
}

/* Flush-stop, worker paused: drop what is queued, but keep the sticky
 * events the worker had not pushed yet (stream-start, caps, tags) on the
 * source pad, as queue does; segments and EOS are reset by the flush. */
static void
flush_queue (GstFlorence2 * self)
{
  QueueItem *item;

  while ((item = g_queue_pop_head (&self->queue)) != NULL) {
    if (GST_IS_EVENT (item->object)) {
      GstEvent *event = GST_EVENT (item->object);

      if (GST_EVENT_IS_STICKY (event) &&
          GST_EVENT_TYPE (event) != GST_EVENT_SEGMENT &&
          GST_EVENT_TYPE (event) != GST_EVENT_EOS) {
        if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS)
          take_caps (self, event);
        gst_pad_store_sticky_event (self->srcpad, event);
      }
    }
    queue_item_free (item);
  }
  self->queued_frames = 0;
  self->queued_due = 0;
}

gboolean
gst_florence2_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstFlorence2 *self = GST_FLORENCE2 (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      g_mutex_lock (&self->queue_lock);
      self->flushing = TRUE;
      self->srcresult = GST_FLOW_FLUSHING;
      g_cond_broadcast (&self->queue_cond);
      g_mutex_unlock (&self->queue_lock);
      gst_pad_push_event (self->srcpad, event);
      /* the worker wakes up at once, even with an inference running */
      gst_pad_pause_task (self->srcpad);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      /* first, so that the source pad takes sticky events again */
      gst_pad_push_event (self->srcpad, event);
      g_mutex_lock (&self->queue_lock);
      flush_queue (self);
      self->flushing = FALSE;
      self->srcresult = GST_FLOW_OK;
      gst_florence2_job_forget_all (self);      /* running ones finish unseen */
      self->frames_until_due = 0;
      g_mutex_unlock (&self->queue_lock);
      return gst_pad_start_task (self->srcpad,
          (GstTaskFunction) gst_florence2_loop, self, NULL);
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      GstVideoInfo info;

      gst_event_parse_caps (event, &caps);
      if (!gst_video_info_from_caps (&info, caps)) {
        GST_WARNING_OBJECT (self, "caps are not raw video: %" GST_PTR_FORMAT,
            caps);
        gst_event_unref (event);
        return FALSE;
      }
      break;
    }
    default:
      break;
  }

  if (GST_EVENT_IS_SERIALIZED (event)) {
    GstFlowReturn ret;

    g_mutex_lock (&self->queue_lock);
    ret = self->srcresult;
    if (ret == GST_FLOW_OK)
      enqueue (self, GST_MINI_OBJECT (event), FALSE);
    g_mutex_unlock (&self->queue_lock);
    if (ret == GST_FLOW_OK)
      return TRUE;
    /* the worker stopped (not-linked, error): keep sticky events on the
     * source pad for when it starts again */
    if (ret != GST_FLOW_FLUSHING && GST_EVENT_IS_STICKY (event) &&
        GST_EVENT_TYPE (event) != GST_EVENT_EOS) {
      gst_pad_store_sticky_event (self->srcpad, event);
      gst_event_unref (event);
      return TRUE;
    }
    gst_event_unref (event);
    return FALSE;
  }
  return gst_pad_push_event (self->srcpad, event);
}

gboolean
gst_florence2_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstFlorence2 *self = GST_FLORENCE2 (parent);

  if (GST_QUERY_IS_SERIALIZED (query)) {
    gboolean ok;

    /* answer in order: once everything before it has left */
    g_mutex_lock (&self->queue_lock);
    while (self->srcresult == GST_FLOW_OK &&
        (!g_queue_is_empty (&self->queue) || !g_queue_is_empty (&self->held)
            || self->worker_busy))
      g_cond_wait (&self->queue_cond, &self->queue_lock);
    ok = self->srcresult == GST_FLOW_OK;
    g_mutex_unlock (&self->queue_lock);
    return ok && gst_pad_peer_query (self->srcpad, query);
  }
  return gst_pad_query_default (pad, parent, query);
}

/* -------------------------------------------------------- source pad */

gboolean
gst_florence2_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstFlorence2 *self = GST_FLORENCE2 (parent);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    gboolean live;
    GstClockTime min, max, ours = 0;

    if (!gst_pad_peer_query (self->sinkpad, query))
      return FALSE;
    gst_query_parse_latency (query, &live, &min, &max);
    g_mutex_lock (&self->queue_lock);
    /* aligned: frames wait for their inference, and with batches for
     * their batch to fill */
    if (self->mode == GST_FLORENCE2_LATENCY_ALIGNED) {
      if (GST_CLOCK_TIME_IS_VALID (self->reported_latency))
        ours = self->reported_latency;
      if (self->batch.batch_size > 1)
        ours += self->batch.batch_timeout_ns;
    }
    g_mutex_unlock (&self->queue_lock);
    min += ours;
    if (GST_CLOCK_TIME_IS_VALID (max))
      max += ours * (1 + self->queue_limit);
    GST_DEBUG_OBJECT (self, "latency: adding %" GST_TIME_FORMAT,
        GST_TIME_ARGS (ours));
    gst_query_set_latency (query, live, min, max);
    return TRUE;
  }
  return gst_pad_query_default (pad, parent, query);
}

gboolean
gst_florence2_src_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active)
{
  GstFlorence2 *self = GST_FLORENCE2 (parent);

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  g_mutex_lock (&self->queue_lock);
  self->flushing = !active;
  self->srcresult = active ? GST_FLOW_OK : GST_FLOW_FLUSHING;
  g_cond_broadcast (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);
  if (active)
    return gst_pad_start_task (pad, (GstTaskFunction) gst_florence2_loop,
        self, NULL);
  return gst_pad_stop_task (pad);
}
