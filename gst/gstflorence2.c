/**
 * SECTION:element-florence2
 * @title: florence2
 *
 * Runs Microsoft's Florence-2 vision-language model on video frames and
 * attaches what it finds (boxes with phrases, segmentation polygons, OCR
 * quads, captions) to the frames as #GstFlorence2Meta, optionally as one
 * #GstVideoRegionOfInterestMeta per box (DL Streamer layout), as a
 * `florence2-result` element message and as JSON lines in a file. The frame
 * data passes through unchanged.
 *
 * Frames and serialized events leave in the order they came: a worker thread
 * on the source pad pushes them from one ordered queue, and the inference
 * itself runs on a thread of its own.
 *
 * With `GST_DEBUG=florence2:4` each inference logs its profile: the time of
 * preprocessing, the vision tower, the encoder and the decoder (per step).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=30 ! videoconvert ! \
 *     florence2 model=/path/to/Florence-2-base task=od inference-interval=10 ! \
 *     videoconvert ! florence2overlay ! autovideosink
 * ]| Detects objects on every tenth frame and draws the boxes.
 */
#include "gstflorence2.h"
#include "gstflorence2enums.h"
#include "gstflorence2models.h"
#include "gstflorence2result.h"

#include "backend.h"
#include "florence2.h"
#include "loader-util.h"
#include "net.h"
#include "tasks.h"
#include "tokenizer.h"

#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (florence2_debug);
#define GST_CAT_DEFAULT florence2_debug

#define DEFAULT_MODEL NULL
#define DEFAULT_TASK F2_TASK_OD
#define DEFAULT_PROMPT NULL
#define DEFAULT_DEVICE "auto"
#define DEFAULT_PRECISION F2_PRECISION_AUTO
#define DEFAULT_THREADS 0
#define DEFAULT_NUM_BEAMS 0
#define DEFAULT_MAX_NEW_TOKENS 1024
#define DEFAULT_INFERENCE_INTERVAL 1
#define DEFAULT_LATENCY_MODE GST_FLORENCE2_LATENCY_ALIGNED
#define DEFAULT_SKIP_WHEN_BUSY FALSE
#define DEFAULT_ATTACH_ROI_META TRUE
#define DEFAULT_EMIT_MESSAGES FALSE
#define DEFAULT_RESULTS_LOCATION NULL
#define DEFAULT_RESULTS_APPEND FALSE

#define MAX_NUM_BEAMS 16
#define MAX_NEW_TOKENS 1024

/* Frames that may wait in the queue: few, so that upstream feels the
 * inference (back-pressure); more with skip-when-busy, where frames only
 * wait behind the one being processed. */
#define QUEUE_FRAMES 2
#define QUEUE_FRAMES_SKIPPING 32

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_TASK,
  PROP_PROMPT,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_THREADS,
  PROP_NUM_BEAMS,
  PROP_MAX_NEW_TOKENS,
  PROP_INFERENCE_INTERVAL,
  PROP_LATENCY_MODE,
  PROP_SKIP_WHEN_BUSY,
  PROP_ATTACH_ROI_META,
  PROP_EMIT_MESSAGES,
  PROP_RESULTS_LOCATION,
  PROP_RESULTS_APPEND,
  PROP_RESULTS_LOST,
  PROP_DEVICE_NAME,
  PROP_LAST_INFERENCE_TIME,
};

#define VIDEO_CAPS GST_VIDEO_CAPS_MAKE ("{ RGB, RGBx, BGRx, RGBA, BGRA, NV12, I420 }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

/* What one inference produced (or the error it hit). */
typedef struct
{
  guint id;
  Florence2Output *output;
  GError *error;
  gchar *task;                  /* task token */
  gchar *prompt;
  GstClockTime source_pts;
  GstClockTime inference_time;
} InferenceResult;

/* One inference handed to the inference thread. */
typedef struct
{
  GstFlorence2 *self;
  guint id;
  Florence2Model *model;
  GstBuffer *buffer;
  GstVideoInfo info;
  F2Task task;
  gchar *prompt;
  guint num_beams;
  guint max_new_tokens;
} InferenceJob;

/* A queued frame or serialized event. */
typedef struct
{
  GstMiniObject *object;
  gboolean due;                 /* frames: chosen for inference */
} QueueItem;

struct _GstFlorence2
{
  GstElement parent;

  GstPad *sinkpad, *srcpad;

  /* properties, under the object lock */
  gchar *model_dir;
  F2Task task;
  gchar *prompt;
  gchar *device;
  F2Precision precision;
  guint threads;
  guint num_beams;
  guint max_new_tokens;
  guint inference_interval;
  GstFlorence2LatencyMode latency_mode;
  gboolean skip_when_busy;
  gboolean attach_roi_meta;
  gboolean emit_messages;
  gchar *results_location;
  gboolean results_append;
  guint64 results_lost;         /* results the file could not take */
  gchar *device_name;
  GstClockTime last_inference_time;
  guint settings_cookie;        /* bumped when task or prompt change */

  /* set in start(), read by the streaming threads until stop() */
  Florence2Model *model;
  GstFlorence2ResultsFile *results_file;
  gboolean results_failing;     /* worker: the last write failed */
  gint64 results_warned;        /* worker: time of the last loss warning */
  GThreadPool *pool;
  GstFlorence2LatencyMode mode;

  /* stream state, under queue_lock */
  GMutex queue_lock;
  GCond queue_cond;
  GQueue queue;                 /* QueueItem */
  guint queued_frames;
  guint queued_due;             /* queued frames chosen for inference */
  guint queue_limit;
  gboolean flushing;
  GstFlowReturn srcresult;
  gboolean worker_busy;         /* the worker holds an item */
  guint frames_until_due;
  guint jobs_running;
  guint next_job_id;
  guint wanted_job;             /* id whose result is wanted; 0 after a flush */
  InferenceResult *result;      /* finished, not attached yet */
  GstClockTime reported_latency;

  /* worker thread only */
  GstVideoInfo info;
  gboolean have_info;
  guint warned_cookie;
};

#define gst_florence2_parent_class parent_class
G_DEFINE_TYPE (GstFlorence2, gst_florence2, GST_TYPE_ELEMENT);

static void
log_to_gst (GLogLevelFlags level, const char *message, gpointer user_data)
{
  GstDebugLevel gst_level = GST_LEVEL_DEBUG;

  if (level & G_LOG_LEVEL_ERROR || level & G_LOG_LEVEL_CRITICAL)
    gst_level = GST_LEVEL_ERROR;
  else if (level & G_LOG_LEVEL_WARNING)
    gst_level = GST_LEVEL_WARNING;
  else if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    gst_level = GST_LEVEL_INFO;
  GST_CAT_LEVEL_LOG (florence2_debug, gst_level, NULL, "%s", message);
}

GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (florence2, "florence2", GST_RANK_NONE,
    GST_TYPE_FLORENCE2,
    GST_DEBUG_CATEGORY_INIT (florence2_debug, "florence2", 0,
        "Florence-2 inference");
    florence2_log_set (log_to_gst, NULL));

/* ------------------------------------------------------------ results */

static void
inference_result_free (InferenceResult * result)
{
  if (result == NULL)
    return;
  florence2_output_free (result->output);
  g_clear_error (&result->error);
  g_free (result->task);
  g_free (result->prompt);
  g_free (result);
}

static void
inference_job_free (InferenceJob * job)
{
  gst_buffer_unref (job->buffer);
  g_free (job->prompt);
  g_free (job);
}

static void
queue_item_free (QueueItem * item)
{
  gst_mini_object_unref (item->object);
  g_free (item);
}

/* Describe @buffer's frame as an F2Image, checking that every plane lies
 * inside the mapped memory. */
static gboolean
frame_to_image (const GstVideoInfo * info, GstBuffer * buffer,
    const GstMapInfo * map, F2Image * image, GError ** error)
{
  static const struct
  {
    GstVideoFormat gst;
    F2PixelFormat f2;
  } formats[] = {
    {GST_VIDEO_FORMAT_RGB, F2_PIXEL_RGB},
    {GST_VIDEO_FORMAT_RGBx, F2_PIXEL_RGBX},
    {GST_VIDEO_FORMAT_BGRx, F2_PIXEL_BGRX},
    {GST_VIDEO_FORMAT_RGBA, F2_PIXEL_RGBA},
    {GST_VIDEO_FORMAT_BGRA, F2_PIXEL_BGRA},
    {GST_VIDEO_FORMAT_NV12, F2_PIXEL_NV12},
    {GST_VIDEO_FORMAT_I420, F2_PIXEL_I420},
  };
  const GstVideoFormatInfo *finfo = info->finfo;
  GstVideoMeta *vmeta = gst_buffer_get_video_meta (buffer);
  guint width = GST_VIDEO_INFO_WIDTH (info);
  guint height = GST_VIDEO_INFO_HEIGHT (info);
  guint n_planes = GST_VIDEO_INFO_N_PLANES (info);
  gsize offset[GST_VIDEO_MAX_PLANES] = { 0 };
  gint stride[GST_VIDEO_MAX_PLANES] = { 0 };
  gboolean found = FALSE;

  memset (image, 0, sizeof (*image));
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    if (formats[i].gst == GST_VIDEO_INFO_FORMAT (info)) {
      image->format = formats[i].f2;
      found = TRUE;
    }
  }
  if (!found) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "unsupported video format %s", GST_VIDEO_INFO_NAME (info));
    return FALSE;
  }
  if (vmeta != NULL && (vmeta->width != width || vmeta->height != height
          || vmeta->n_planes != n_planes)) {
    g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
        "the buffer's video meta (%ux%u, %u planes) does not match the caps "
        "(%ux%u, %u planes)", vmeta->width, vmeta->height, vmeta->n_planes,
        width, height, n_planes);
    return FALSE;
  }

  for (guint p = 0; p < n_planes; p++) {
    gint comps[GST_VIDEO_MAX_COMPONENTS];
    guint rows, row_bytes;

    offset[p] = vmeta ? vmeta->offset[p] : GST_VIDEO_INFO_PLANE_OFFSET (info,
        p);
    stride[p] = vmeta ? vmeta->stride[p] : GST_VIDEO_INFO_PLANE_STRIDE (info,
        p);
    gst_video_format_info_component (finfo, p, comps);
    rows = GST_VIDEO_FORMAT_INFO_SCALE_HEIGHT (finfo, comps[0], height);
    row_bytes = GST_VIDEO_FORMAT_INFO_SCALE_WIDTH (finfo, comps[0], width) *
        GST_VIDEO_FORMAT_INFO_PSTRIDE (finfo, comps[0]);
    if (stride[p] < (gint) row_bytes) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "plane %u has a stride of %d bytes, less than its %u bytes of "
          "pixels per row", p, stride[p], row_bytes);
      return FALSE;
    }
    if (offset[p] < offset[0] || offset[p] > map->size ||
        (guint64) stride[p] * (rows - 1) + row_bytes > map->size - offset[p]) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "buffer of %" G_GSIZE_FORMAT " bytes is too small for plane %u of "
          "a %ux%u %s frame (offset %" G_GSIZE_FORMAT ", stride %d)",
          map->size, p, width, height, GST_VIDEO_INFO_NAME (info), offset[p],
          stride[p]);
      return FALSE;
    }
    if (offset[p] - offset[0] > G_MAXUINT32) {
      g_set_error (error, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
          "plane %u lies too far into the buffer", p);
      return FALSE;
    }
  }

  /* the model library counts plane offsets from plane 0 */
  image->width = width;
  image->height = height;
  image->data = map->data + offset[0];
  image->size = map->size - offset[0];
  for (guint p = 0; p < n_planes; p++) {
    image->stride[p] = stride[p];
    image->plane_offset[p] = offset[p] - offset[0];
  }
  image->bt709 = GST_VIDEO_INFO_COLORIMETRY (info).matrix ==
      GST_VIDEO_COLOR_MATRIX_BT709;
  return TRUE;
}

/* Inference thread: run one job and hand its result to the worker. */
static void
inference_job_run (gpointer data, gpointer user_data)
{
  InferenceJob *job = data;
  GstFlorence2 *self = job->self;
  InferenceResult *result = g_new0 (InferenceResult, 1);
  Florence2RunParams params = florence2_run_default_params ();
  GstMapInfo map;
  F2Image image;
  gint64 start;

  result->id = job->id;
  result->task = g_strdup (f2_task_info (job->task)->token);
  result->prompt = g_strdup (job->prompt);
  result->source_pts = GST_BUFFER_PTS (job->buffer);

  params.task = job->task;
  params.text = job->prompt;
  params.num_beams = job->num_beams;
  params.max_new_tokens = job->max_new_tokens;

  start = g_get_monotonic_time ();
  if (!gst_buffer_map (job->buffer, &map, GST_MAP_READ)) {
    g_set_error (&result->error, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
        "cannot map the frame for reading");
  } else {
    if (frame_to_image (&job->info, job->buffer, &map, &image, &result->error))
      result->output = florence2_model_run (job->model, &image, &params,
          &result->error);
    gst_buffer_unmap (job->buffer, &map);
  }
  result->inference_time = (g_get_monotonic_time () - start) * GST_USECOND;
  GST_DEBUG_OBJECT (self, "inference %u took %" GST_TIME_FORMAT, job->id,
      GST_TIME_ARGS (result->inference_time));

  if (result->output != NULL) {
    /* the per-stage profile, with GST_DEBUG=florence2:4 */
    const Florence2Timings *t = &result->output->timings;
    guint steps = result->output->decoder_steps;
    GST_INFO_OBJECT (self, "inference %u profile: preprocess %.1f ms, vision %.1f ms, "
        "encoder %.1f ms, decoder %.1f ms (%u steps, %.2f ms/step), "
        "post-process %.2f ms", job->id, t->preprocess_ms, t->vision_ms,
        t->encoder_ms, t->decoder_ms, steps, steps ? t->decoder_ms / steps : 0.0,
        t->postprocess_ms);
    GST_OBJECT_LOCK (self);
    self->last_inference_time = result->inference_time;
    GST_OBJECT_UNLOCK (self);
  }

  g_mutex_lock (&self->queue_lock);
  self->jobs_running--;
  if (job->id == self->wanted_job && self->result == NULL) {
    self->result = result;
    result = NULL;
  }
  g_cond_broadcast (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);

  inference_result_free (result);
  inference_job_free (job);
}

/* Worker, queue_lock held: hand @buffer to the inference thread with the
 * current settings. FALSE when the settings do not make a valid inference
 * (a warning is posted once per change). */
static gboolean
submit_job (GstFlorence2 * self, GstBuffer * buffer)
{
  InferenceJob *job;
  GError *error = NULL;
  gchar *built;
  guint cookie;

  job = g_new0 (InferenceJob, 1);
  job->self = self;
  job->model = self->model;
  job->buffer = gst_buffer_ref (buffer);
  job->info = self->info;
  GST_OBJECT_LOCK (self);
  job->task = self->task;
  job->prompt = g_strdup (self->prompt);
  job->num_beams = self->num_beams;
  job->max_new_tokens = self->max_new_tokens;
  cookie = self->settings_cookie;
  GST_OBJECT_UNLOCK (self);

  /* task and prompt may change while playing: check the pair each time */
  built = f2_task_build_prompt (job->task, job->prompt, &error);
  if (built == NULL) {
    if (cookie != self->warned_cookie) {
      self->warned_cookie = cookie;
      GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
          ("Task %s cannot run with this prompt: %s", f2_task_info
              (job->task)->nick, error->message),
          ("frames pass without results until task and prompt agree"));
    }
    g_clear_error (&error);
    inference_job_free (job);
    return FALSE;
  }
  g_free (built);

  job->id = ++self->next_job_id;
  if (job->id == 0)             /* 0 means "none" */
    job->id = ++self->next_job_id;
  self->wanted_job = job->id;
  self->jobs_running++;
  g_thread_pool_push (self->pool, job, NULL);
  return TRUE;
}

/* ------------------------------------------------------------- worker */

/* Worker: a result could not go to the results file (@error says why): count
 * it and warn, on the first loss after a good write and then at most every
 * 10 s while losses go on. The video keeps flowing. */
static void
results_lost (GstFlorence2 * self, GError * error)
{
  gint64 now = g_get_monotonic_time ();
  guint64 lost;

  GST_OBJECT_LOCK (self);
  lost = ++self->results_lost;
  GST_OBJECT_UNLOCK (self);
  GST_WARNING_OBJECT (self, "result %" G_GUINT64_FORMAT " lost: %s", lost,
      error->message);
  if (!self->results_failing || now - self->results_warned >= 10 * G_USEC_PER_SEC) {
    self->results_warned = now;
    GST_ELEMENT_WARNING_WITH_DETAILS (self, RESOURCE, WRITE,
        ("%s; %" G_GUINT64_FORMAT " result(s) lost so far", error->message,
            lost), ("the file keeps its whole lines; free some space or choose "
            "another results-location (the results-lost property counts the "
            "losses)"), ("results-lost", G_TYPE_UINT64, lost, NULL));
  }
  self->results_failing = TRUE;
}

/* Worker: put @result on @buffer (writable) as metadata, and tell the bus and
 * the results file about it. @buffer may be NULL at EOS in low-latency mode,
 * when no frame is left to carry the result. */
static void
deliver_result (GstFlorence2 * self, GstBuffer * buffer,
    InferenceResult * result)
{
  gboolean roi, messages;
  GstBuffer *carrier = buffer ? buffer : gst_buffer_new ();
  GstClockTime pts = buffer ? GST_BUFFER_PTS (buffer) : result->source_pts;
  GstFlorence2Meta *meta;
  gchar *json = NULL;
  gint width = self->have_info ? GST_VIDEO_INFO_WIDTH (&self->info) :
      result->output->image_width;
  gint height = self->have_info ? GST_VIDEO_INFO_HEIGHT (&self->info) :
      result->output->image_height;

  GST_OBJECT_LOCK (self);
  roi = self->attach_roi_meta;
  messages = self->emit_messages;
  GST_OBJECT_UNLOCK (self);

  meta = gst_florence2_result_attach (carrier, result->output->result,
      result->task, result->prompt, width, height, result->source_pts,
      result->inference_time);
  if (meta == NULL)
    goto done;
  if (roi && buffer != NULL)
    gst_florence2_result_attach_rois (buffer, meta);

  if (messages || self->results_file != NULL)
    json = gst_florence2_result_json (meta, pts, -1);
  if (self->results_file != NULL) {
    GError *error = NULL;

    if (gst_florence2_results_file_write (self->results_file, json, &error))
      self->results_failing = FALSE;
    else
      results_lost (self, error);
    g_clear_error (&error);
  }
  if (messages)
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self),
            gst_florence2_result_structure (meta, pts, json)));
  g_free (json);

done:
  if (buffer == NULL)
    gst_buffer_unref (carrier);
}

/* Worker, queue_lock held: the latency we report grew or appeared: tell the
 * pipeline to ask again. */
static void
maybe_update_latency (GstFlorence2 * self, GstClockTime inference_time)
{
  if (self->mode != GST_FLORENCE2_LATENCY_ALIGNED)
    return;
  if (GST_CLOCK_TIME_IS_VALID (self->reported_latency) &&
      inference_time <= self->reported_latency + self->reported_latency / 4)
    return;
  self->reported_latency = inference_time;
  g_mutex_unlock (&self->queue_lock);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_latency (GST_OBJECT (self)));
  g_mutex_lock (&self->queue_lock);
}

/* Worker, queue_lock held: take the finished result, if any. A failed
 * inference posts an error and gives NULL with *ret set. */
static InferenceResult *
take_result (GstFlorence2 * self, GstFlowReturn * ret)
{
  InferenceResult *result = self->result;

  self->result = NULL;
  if (result != NULL && result->error != NULL) {
    GError *e = result->error;

    g_mutex_unlock (&self->queue_lock);
    if (e->domain == GST_STREAM_ERROR)
      GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("%s", e->message), (NULL));
    else
      GST_ELEMENT_ERROR (self, STREAM, FAILED,
          ("Florence-2 inference failed: %s", e->message), (NULL));
    g_mutex_lock (&self->queue_lock);
    inference_result_free (result);
    *ret = GST_FLOW_ERROR;
    return NULL;
  }
  if (result != NULL)
    maybe_update_latency (self, result->inference_time);
  return result;
}

/* Worker: process one frame. Returns what pushing it gave. */
static GstFlowReturn
handle_frame (GstFlorence2 * self, GstBuffer * buffer, gboolean due)
{
  InferenceResult *result = NULL;
  GstFlowReturn ret = GST_FLOW_OK;

  g_mutex_lock (&self->queue_lock);
  if (self->mode == GST_FLORENCE2_LATENCY_ALIGNED) {
    if (due && self->have_info && submit_job (self, buffer)) {
      guint id = self->wanted_job;

      while (!self->flushing && (self->result == NULL ||
              self->result->id != id))
        g_cond_wait (&self->queue_cond, &self->queue_lock);
      if (self->flushing) {
        g_mutex_unlock (&self->queue_lock);
        gst_buffer_unref (buffer);
        return GST_FLOW_FLUSHING;
      }
      result = take_result (self, &ret);
    }
  } else {
    /* frames never wait: results of earlier frames ride on this one */
    result = take_result (self, &ret);
    if (ret == GST_FLOW_OK && due && self->have_info
        && self->jobs_running == 0)
      submit_job (self, buffer);
  }
  g_mutex_unlock (&self->queue_lock);

  if (ret != GST_FLOW_OK) {
    gst_buffer_unref (buffer);
    return ret;
  }
  if (result != NULL) {
    buffer = gst_buffer_make_writable (buffer);
    deliver_result (self, buffer, result);
    inference_result_free (result);
  }
  return gst_pad_push (self->srcpad, buffer);
}

/* Worker, at EOS in low-latency mode: the last result has no later frame;
 * still report it on the bus and in the file. */
static GstFlowReturn
finish_low_latency (GstFlorence2 * self)
{
  InferenceResult *result;
  GstFlowReturn ret = GST_FLOW_OK;

  g_mutex_lock (&self->queue_lock);
  while (!self->flushing && self->jobs_running > 0 && self->wanted_job != 0
      && self->result == NULL)
    g_cond_wait (&self->queue_cond, &self->queue_lock);
  result = self->flushing ? NULL : take_result (self, &ret);
  g_mutex_unlock (&self->queue_lock);
  if (result != NULL) {
    deliver_result (self, NULL, result);
    inference_result_free (result);
  }
  return ret;
}

static void
gst_florence2_loop (GstFlorence2 * self)
{
  QueueItem *item;
  GstFlowReturn ret = GST_FLOW_OK;
  GstMiniObject *object;
  gboolean due;

  g_mutex_lock (&self->queue_lock);
  while (g_queue_is_empty (&self->queue) && !self->flushing)
    g_cond_wait (&self->queue_cond, &self->queue_lock);
  if (self->flushing) {
    g_mutex_unlock (&self->queue_lock);
    goto pause;
  }
  item = g_queue_pop_head (&self->queue);
  if (GST_IS_BUFFER (item->object))
    self->queued_frames--;
  if (item->due)
    self->queued_due--;
  self->worker_busy = TRUE;
  g_cond_broadcast (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);

  object = item->object;
  due = item->due;
  g_free (item);

  if (GST_IS_BUFFER (object)) {
    ret = handle_frame (self, GST_BUFFER (object), due);
  } else {
    GstEvent *event = GST_EVENT (object);
    gboolean eos = GST_EVENT_TYPE (event) == GST_EVENT_EOS;

    if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      self->have_info = gst_video_info_from_caps (&self->info, caps);
    }
    if (eos && self->mode == GST_FLORENCE2_LATENCY_LOW)
      ret = finish_low_latency (self);
    if (ret == GST_FLOW_OK || eos) {
      gst_pad_push_event (self->srcpad, event);
      if (eos)
        ret = GST_FLOW_EOS;
    } else {
      gst_event_unref (event);
    }
  }

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

/* --------------------------------------------------------- sink side */

/* queue_lock held: whether this frame is due for inference. */
static gboolean
take_due (GstFlorence2 * self)
{
  guint interval, busy;

  GST_OBJECT_LOCK (self);
  interval = self->inference_interval;
  busy = self->skip_when_busy && (self->jobs_running > 0 ||
      self->queued_due > 0);
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

static GstFlowReturn
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

static void
clear_queue (GstFlorence2 * self)
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
        if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS) {
          GstCaps *caps;

          gst_event_parse_caps (event, &caps);
          self->have_info = gst_video_info_from_caps (&self->info, caps);
        }
        gst_pad_store_sticky_event (self->srcpad, event);
      }
    }
    queue_item_free (item);
  }
  self->queued_frames = 0;
  self->queued_due = 0;
}

static gboolean
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
      self->wanted_job = 0;     /* a running inference is forgotten */
      inference_result_free (self->result);
      self->result = NULL;
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

static gboolean
gst_florence2_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstFlorence2 *self = GST_FLORENCE2 (parent);

  if (GST_QUERY_IS_SERIALIZED (query)) {
    gboolean ok;

    /* answer in order: once everything before it has left */
    g_mutex_lock (&self->queue_lock);
    while (self->srcresult == GST_FLOW_OK &&
        (!g_queue_is_empty (&self->queue) || self->worker_busy))
      g_cond_wait (&self->queue_cond, &self->queue_lock);
    ok = self->srcresult == GST_FLOW_OK;
    g_mutex_unlock (&self->queue_lock);
    return ok && gst_pad_peer_query (self->srcpad, query);
  }
  return gst_pad_query_default (pad, parent, query);
}

/* ---------------------------------------------------------- src side */

static gboolean
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
    /* aligned: frames wait for their inference */
    if (self->mode == GST_FLORENCE2_LATENCY_ALIGNED &&
        GST_CLOCK_TIME_IS_VALID (self->reported_latency))
      ours = self->reported_latency;
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

static gboolean
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

/* ------------------------------------------------------ start / stop */

static void
gst_florence2_stop (GstFlorence2 * self)
{
  if (self->pool != NULL) {
    /* waits for a running inference: it holds the model */
    g_thread_pool_free (self->pool, FALSE, TRUE);
    self->pool = NULL;
  }
  g_mutex_lock (&self->queue_lock);
  clear_queue (self);
  inference_result_free (self->result);
  self->result = NULL;
  self->jobs_running = 0;
  self->wanted_job = 0;
  g_mutex_unlock (&self->queue_lock);
  g_clear_pointer (&self->results_file, gst_florence2_results_file_close);
  gst_florence2_models_release (self->model);
  self->model = NULL;
  self->have_info = FALSE;
}

/* Post the error florence2_model_new() gave, in the domain that fits it. */
static void
post_load_error (GstFlorence2 * self, const gchar * dir, GError * error)
{
  if (error->domain == F2_BACKEND_ERROR &&
      error->code == F2_BACKEND_ERROR_OUT_OF_MEMORY)
    GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
        ("Not enough device memory for the Florence-2 model: %s",
            error->message), ("try precision=fp16 or a smaller model"));
  else if (error->domain == F2_BACKEND_ERROR &&
      error->code == F2_BACKEND_ERROR_INVALID)
    /* not the device: the network cannot be set up for these settings */
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
        ("Cannot set up the Florence-2 model in %s: %s", dir, error->message),
        ("check the model's config.json and the num-beams and "
            "max-new-tokens properties"));
  else if (error->domain == F2_BACKEND_ERROR)
    GST_ELEMENT_ERROR (self, LIBRARY, INIT,
        ("Cannot open the compute device: %s", error->message),
        ("check the device property (an index, a name, or cpu) and the "
            "Vulkan driver"));
  else if ((error->domain == G_FILE_ERROR && error->code == G_FILE_ERROR_NOENT)
      || g_error_matches (error, F2_TOKENIZER_ERROR,
          F2_TOKENIZER_ERROR_NOT_FOUND))
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", error->message),
        (NULL));
  else
    /* the model's files: config, preprocessor settings, tokenizer, weights */
    GST_ELEMENT_ERROR (self, RESOURCE, READ,
        ("Cannot load the Florence-2 model in %s: %s", dir, error->message),
        (NULL));
}

static gboolean
gst_florence2_start (GstFlorence2 * self)
{
  GError *error = NULL;
  gchar *dir, *device, *prompt, *location, *built;
  F2Task task;
  F2Precision precision;
  guint beams, threads;
  gboolean skipping, append;

  GST_OBJECT_LOCK (self);
  dir = g_strdup (self->model_dir);
  device = g_strdup (self->device);
  prompt = g_strdup (self->prompt);
  location = g_strdup (self->results_location);
  append = self->results_append;
  self->results_lost = 0;
  task = self->task;
  precision = self->precision;
  threads = self->threads;
  beams = self->num_beams;
  skipping = self->skip_when_busy;
  self->mode = self->latency_mode;
  self->warned_cookie = self->settings_cookie;
  GST_OBJECT_UNLOCK (self);

  if (dir == NULL || *dir == '\0') {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No Florence-2 model given"),
        ("set the model property to the folder of a Florence-2 model "
            "(config.json, model.safetensors, tokenizer.json)"));
    goto fail;
  }
  if (!f2_model_dir_check (dir, &error)) {
    /* missing, a dangling link or a file: the message says which */
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", error->message),
        ("set the model property to the folder of a Florence-2 model "
            "(config.json, model.safetensors, tokenizer.json)"));
    goto fail;
  }
  built = f2_task_build_prompt (task, prompt, &error);
  if (built == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Task %s cannot run with this prompt: %s", f2_task_info (task)->nick,
            error->message), (NULL));
    goto fail;
  }
  g_free (built);

  self->model = gst_florence2_models_acquire (dir, device, precision,
      threads, beams, &error);
  if (self->model == NULL) {
    post_load_error (self, dir, error);
    goto fail;
  }
  GST_INFO_OBJECT (self, "model %s on %s", dir,
      florence2_model_device_name (self->model));
  GST_OBJECT_LOCK (self);
  g_free (self->device_name);
  self->device_name = g_strdup (florence2_model_device_name (self->model));
  GST_OBJECT_UNLOCK (self);

  if (location != NULL && *location != '\0') {
    self->results_file = gst_florence2_results_file_open (location,
        GST_FLORENCE2_RESULTS_JSON_LINES, append,
        &error);
    if (self->results_file == NULL) {
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE, ("%s", error->message),
          ("check that the folder exists and is writable"));
      goto fail;
    }
    self->results_failing = FALSE;
  }

  self->pool = g_thread_pool_new (inference_job_run, NULL, 1, FALSE, &error);
  if (self->pool == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Cannot start the inference thread: %s", error->message), (NULL));
    goto fail;
  }

  g_mutex_lock (&self->queue_lock);
  self->queue_limit = skipping ? QUEUE_FRAMES_SKIPPING : QUEUE_FRAMES;
  self->frames_until_due = 0;
  self->reported_latency = GST_CLOCK_TIME_NONE;
  g_mutex_unlock (&self->queue_lock);

  g_free (dir);
  g_free (device);
  g_free (prompt);
  g_free (location);
  return TRUE;

fail:
  g_clear_error (&error);
  gst_florence2_stop (self);
  g_free (dir);
  g_free (device);
  g_free (prompt);
  g_free (location);
  return FALSE;
}

static GstStateChangeReturn
gst_florence2_change_state (GstElement * element, GstStateChange transition)
{
  GstFlorence2 *self = GST_FLORENCE2 (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED &&
      !gst_florence2_start (self))
    return GST_STATE_CHANGE_FAILURE;

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    gst_florence2_stop (self);
  return ret;
}

/* --------------------------------------------------------- properties */

static void
gst_florence2_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstFlorence2 *self = GST_FLORENCE2 (object);

  GST_OBJECT_LOCK (self);
  /* what start() reads cannot change until the element is READY again */
  if ((pspec->flags & GST_PARAM_MUTABLE_READY) &&
      (GST_STATE (self) > GST_STATE_READY ||
          GST_STATE_NEXT (self) > GST_STATE_READY)) {
    GstState state = MAX (GST_STATE (self), GST_STATE_NEXT (self));

    GST_OBJECT_UNLOCK (self);
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("The %s property cannot change while the element is %s: the new "
            "value is ignored", g_param_spec_get_name (pspec),
            gst_element_state_get_name (state)),
        ("set %s before starting, or take the pipeline to READY first",
            g_param_spec_get_name (pspec)));
    return;
  }
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_dir);
      self->model_dir = g_value_dup_string (value);
      break;
    case PROP_TASK:
      self->task = g_value_get_enum (value);
      self->settings_cookie++;
      break;
    case PROP_PROMPT:
      g_free (self->prompt);
      self->prompt = g_value_dup_string (value);
      if (self->prompt != NULL && *self->prompt == '\0')
        g_clear_pointer (&self->prompt, g_free);
      self->settings_cookie++;
      break;
    case PROP_DEVICE:
      g_free (self->device);
      self->device = g_value_dup_string (value);
      break;
    case PROP_PRECISION:
      self->precision = g_value_get_enum (value);
      break;
    case PROP_THREADS:
      self->threads = g_value_get_uint (value);
      break;
    case PROP_NUM_BEAMS:
      self->num_beams = g_value_get_uint (value);
      break;
    case PROP_MAX_NEW_TOKENS:
      self->max_new_tokens = g_value_get_uint (value);
      break;
    case PROP_INFERENCE_INTERVAL:
      self->inference_interval = g_value_get_uint (value);
      break;
    case PROP_LATENCY_MODE:
      self->latency_mode = g_value_get_enum (value);
      break;
    case PROP_SKIP_WHEN_BUSY:
      self->skip_when_busy = g_value_get_boolean (value);
      break;
    case PROP_ATTACH_ROI_META:
      self->attach_roi_meta = g_value_get_boolean (value);
      break;
    case PROP_EMIT_MESSAGES:
      self->emit_messages = g_value_get_boolean (value);
      break;
    case PROP_RESULTS_LOCATION:
      g_free (self->results_location);
      self->results_location = g_value_dup_string (value);
      break;
    case PROP_RESULTS_APPEND:
      self->results_append = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_florence2_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstFlorence2 *self = GST_FLORENCE2 (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_dir);
      break;
    case PROP_TASK:
      g_value_set_enum (value, self->task);
      break;
    case PROP_PROMPT:
      g_value_set_string (value, self->prompt);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, self->precision);
      break;
    case PROP_THREADS:
      g_value_set_uint (value, self->threads);
      break;
    case PROP_NUM_BEAMS:
      g_value_set_uint (value, self->num_beams);
      break;
    case PROP_MAX_NEW_TOKENS:
      g_value_set_uint (value, self->max_new_tokens);
      break;
    case PROP_INFERENCE_INTERVAL:
      g_value_set_uint (value, self->inference_interval);
      break;
    case PROP_LATENCY_MODE:
      g_value_set_enum (value, self->latency_mode);
      break;
    case PROP_SKIP_WHEN_BUSY:
      g_value_set_boolean (value, self->skip_when_busy);
      break;
    case PROP_ATTACH_ROI_META:
      g_value_set_boolean (value, self->attach_roi_meta);
      break;
    case PROP_EMIT_MESSAGES:
      g_value_set_boolean (value, self->emit_messages);
      break;
    case PROP_RESULTS_LOCATION:
      g_value_set_string (value, self->results_location);
      break;
    case PROP_RESULTS_APPEND:
      g_value_set_boolean (value, self->results_append);
      break;
    case PROP_RESULTS_LOST:
      g_value_set_uint64 (value, self->results_lost);
      break;
    case PROP_DEVICE_NAME:
      g_value_set_string (value, self->device_name);
      break;
    case PROP_LAST_INFERENCE_TIME:
      g_value_set_uint64 (value, self->last_inference_time);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_florence2_finalize (GObject * object)
{
  GstFlorence2 *self = GST_FLORENCE2 (object);

  g_free (self->model_dir);
  g_free (self->prompt);
  g_free (self->device);
  g_free (self->results_location);
  g_free (self->device_name);
  g_mutex_clear (&self->queue_lock);
  g_cond_clear (&self->queue_cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_florence2_class_init (GstFlorence2Class * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags ready = rw | GST_PARAM_MUTABLE_READY;
  const GParamFlags playing = rw | GST_PARAM_MUTABLE_PLAYING;

  gobject_class->set_property = gst_florence2_set_property;
  gobject_class->get_property = gst_florence2_get_property;
  gobject_class->finalize = gst_florence2_finalize;

  /**
   * GstFlorence2:model:
   *
   * Folder of a Florence-2 model as published on Hugging Face
   * (microsoft/Florence-2-base, -large, -base-ft, -large-ft): config.json,
   * model.safetensors or pytorch_model.bin, tokenizer.json or vocab.json,
   * preprocessor_config.json. Loaded when the element goes to PAUSED and
   * shared with every other florence2 element that uses the same folder,
   * device and precision.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Folder of the Florence-2 model (config.json, weights, tokenizer)",
          DEFAULT_MODEL, ready));

  /**
   * GstFlorence2:task:
   *
   * The Florence-2 task to run. Tasks with a text input (caption to phrase
   * grounding, referring expression segmentation, open vocabulary
   * detection) or a region input (region-to-*) take it from #GstFlorence2:prompt.
   * May change while PLAYING: the next inference uses it.
   */
  g_object_class_install_property (gobject_class, PROP_TASK,
      g_param_spec_enum ("task", "Task", "Florence-2 task to run",
          GST_TYPE_FLORENCE2_TASK, DEFAULT_TASK, playing));

  /**
   * GstFlorence2:prompt:
   *
   * The task's input: a phrase or caption for caption-to-phrase-grounding,
   * referring-expression-segmentation and open-vocabulary-detection; a region
   * as four location tokens `<loc_x1><loc_y1><loc_x2><loc_y2>` (0..999, in
   * thousandths of the frame) for region-to-segmentation, region-to-category,
   * region-to-description and region-to-ocr. Must be empty for the other
   * tasks. May change while PLAYING: the next inference uses it; a pair of
   * task and prompt that does not fit posts a warning and frames pass without
   * results until it does.
   */
  g_object_class_install_property (gobject_class, PROP_PROMPT,
      g_param_spec_string ("prompt", "Prompt",
          "Text input of the task: a phrase, or a <loc_x1><loc_y1><loc_x2>"
          "<loc_y2> region for region tasks; empty for tasks without input",
          DEFAULT_PROMPT, playing));

  /**
   * GstFlorence2:device:
   *
   * The compute device. "auto" (the default): the first Vulkan device that
   * is a real GPU, else the CPU backend (the one named by F2_VULKAN_DEVICE
   * when that is set). "cpu": the CPU backend (oneDNN, all cores by
   * default, see threads). "reference": the plain-C reference backend
   * (single-threaded, for tests). Anything else picks a Vulkan device by
   * index ("0") or by a case-insensitive part of its name ("llvmpipe" for
   * lavapipe, "NVIDIA").
   */
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "auto (first GPU, else cpu), cpu, reference, or a Vulkan device "
          "index or name", DEFAULT_DEVICE, ready));

  /**
   * GstFlorence2:precision:
   *
   * Storage precision of weights and activations (always fp32
   * accumulation). "auto": fp16 on Vulkan devices, fp32 on the CPU backend.
   * "fp16" is for Vulkan only, "bf16" (bf16 weights and matmul inputs) for
   * the CPU backend only; a device that cannot run a precision fails to
   * start with an error that says so.
   */
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "Storage precision: auto, fp32, fp16 (Vulkan) or bf16 (cpu)",
          GST_TYPE_FLORENCE2_PRECISION, DEFAULT_PRECISION, ready));

  /**
   * GstFlorence2:threads:
   *
   * Threads of the CPU backend; 0 (the default) uses one per core. Elements
   * that share a model share its threads setting: the model is shared only
   * between elements with the same model, device, precision and threads.
   */
  g_object_class_install_property (gobject_class, PROP_THREADS,
      g_param_spec_uint ("threads", "Threads",
          "Threads of the cpu backend (0 = one per core)", 0,
          F2_CPU_MAX_THREADS, DEFAULT_THREADS, ready));

  /**
   * GstFlorence2:num-beams:
   *
   * Beams of the beam search; 1 is greedy decoding (fastest), 0 uses the
   * model's configuration (3 for the published Florence-2 models).
   */
  g_object_class_install_property (gobject_class, PROP_NUM_BEAMS,
      g_param_spec_uint ("num-beams", "Number of beams",
          "Beam search width (1: greedy; 0: the model's setting, 3)", 0,
          MAX_NUM_BEAMS, DEFAULT_NUM_BEAMS, ready));

  /**
   * GstFlorence2:max-new-tokens:
   *
   * Longest answer generated, in tokens. Boxes take four tokens each plus
   * their label; lower it to bound the inference time.
   */
  g_object_class_install_property (gobject_class, PROP_MAX_NEW_TOKENS,
      g_param_spec_uint ("max-new-tokens", "Maximum new tokens",
          "Longest generated answer, in tokens", 1, MAX_NEW_TOKENS,
          DEFAULT_MAX_NEW_TOKENS, playing));

  /**
   * GstFlorence2:inference-interval:
   *
   * Run the model on every Nth frame; the frames in between pass without
   * results.
   */
  g_object_class_install_property (gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint ("inference-interval", "Inference interval",
          "Run the model on every Nth frame", 1, G_MAXUINT,
          DEFAULT_INFERENCE_INTERVAL, playing));

  /**
   * GstFlorence2:latency-mode:
   *
   * aligned: a frame chosen for inference waits until its results are
   * computed and carries them; the LATENCY query adds the inference time
   * (measured, re-announced with a latency message when it grows).
   * low-latency: frames leave at once; each result attaches to the next frame
   * that leaves after it is ready, with the PTS of the frame it was computed
   * on (#GstFlorence2Meta.source_pts); a frame due while an inference runs
   * is skipped.
   */
  g_object_class_install_property (gobject_class, PROP_LATENCY_MODE,
      g_param_spec_enum ("latency-mode", "Latency mode",
          "Whether frames wait for their own results (aligned) or leave at "
          "once and carry earlier results (low-latency)",
          GST_TYPE_FLORENCE2_LATENCY_MODE, DEFAULT_LATENCY_MODE, ready));

  /**
   * GstFlorence2:skip-when-busy:
   *
   * aligned mode: a frame due for inference that arrives while one runs
   * passes without results (still in order, behind the running one), and up
   * to 32 frames may wait instead of 2, so a live source is held up less.
   * In low-latency mode frames never wait and busy frames are always skipped.
   */
  g_object_class_install_property (gobject_class, PROP_SKIP_WHEN_BUSY,
      g_param_spec_boolean ("skip-when-busy", "Skip when busy",
          "Frames that arrive during an inference pass without one",
          DEFAULT_SKIP_WHEN_BUSY, ready));

  /**
   * GstFlorence2:attach-roi-meta:
   *
   * Also attach one #GstVideoRegionOfInterestMeta per box, with a
   * "detection" structure as DL Streamer lays it out (x_min, y_min, x_max,
   * y_max normalised to 0..1, label, label_id; Florence-2 gives no confidence)
   * and a "florence2" structure (task, phrase, polygon, quad, source-pts).
   */
  g_object_class_install_property (gobject_class, PROP_ATTACH_ROI_META,
      g_param_spec_boolean ("attach-roi-meta", "Attach ROI meta",
          "Attach a GstVideoRegionOfInterestMeta per box (DL Streamer layout)",
          DEFAULT_ATTACH_ROI_META, playing));

  /**
   * GstFlorence2:emit-messages:
   *
   * Post a `florence2-result` element message per inference, with the
   * fields task, prompt, text (strings), timestamp (PTS of the frame that
   * carries the result), source-timestamp (PTS of the frame it was computed
   * on), inference-time (nanoseconds; all guint64) and json (the result as
   * the JSON object written by #GstFlorence2:results-location).
   */
  g_object_class_install_property (gobject_class, PROP_EMIT_MESSAGES,
      g_param_spec_boolean ("emit-messages", "Emit messages",
          "Post a florence2-result element message per inference",
          DEFAULT_EMIT_MESSAGES, playing));

  /**
   * GstFlorence2:results-location:
   *
   * Write every result to this file as JSON lines, one object per
   * inference, in the layout of DL Streamer's gvametaconvert (resolution,
   * timestamp, objects[] with detection.bounding_box) plus a "florence2"
   * object (task, prompt, text, source_timestamp, latency_ns,
   * inference_time_ms). The file is created, or emptied unless
   * #GstFlorence2:results-append is set, when the element starts.
   *
   * The file only ever holds whole lines: each goes out in one write, and a
   * line that cannot be written whole (a full disk, a file size limit) is
   * cut off again, counted in #GstFlorence2:results-lost and reported with
   * a warning message on the bus; the video keeps flowing and later results
   * are written when space returns.
   */
  g_object_class_install_property (gobject_class, PROP_RESULTS_LOCATION,
      g_param_spec_string ("results-location", "Results location",
          "JSON lines file for the results, one object per inference",
          DEFAULT_RESULTS_LOCATION, ready));

  /**
   * GstFlorence2:results-append:
   *
   * Append to #GstFlorence2:results-location instead of emptying it when
   * the element starts (a cut last line left by an earlier writer is
   * removed first). Off by default, as filesink's append: each run starts
   * a fresh file.
   */
  g_object_class_install_property (gobject_class, PROP_RESULTS_APPEND,
      g_param_spec_boolean ("results-append", "Append results",
          "Append to the results file instead of emptying it at start",
          DEFAULT_RESULTS_APPEND, ready));

  /**
   * GstFlorence2:results-lost:
   *
   * Results that could not be written to #GstFlorence2:results-location
   * since the element started (a full disk, a file size limit). Losses also
   * post warning messages (at the first of a series, then at most one every
   * 10 s) whose details structure carries the count as "results-lost"
   * (guint64).
   */
  g_object_class_install_property (gobject_class, PROP_RESULTS_LOST,
      g_param_spec_uint64 ("results-lost", "Results lost",
          "Results the results file could not take since the element started",
          0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstFlorence2:device-name:
   *
   * Name of the device the model runs on ("cpu" for the reference backend),
   * known once the element is PAUSED.
   */
  g_object_class_install_property (gobject_class, PROP_DEVICE_NAME,
      g_param_spec_string ("device-name", "Device name",
          "Name of the device the model runs on", NULL,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  /**
   * GstFlorence2:last-inference-time:
   *
   * How long the last inference took, in nanoseconds (wall time from
   * handing the frame to the model to the post-processed result, including
   * any wait for a model shared with another element). 0 before the first.
   */
  g_object_class_install_property (gobject_class, PROP_LAST_INFERENCE_TIME,
      g_param_spec_uint64 ("last-inference-time", "Last inference time",
          "Duration of the last inference, in nanoseconds", 0, G_MAXUINT64, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_florence2_change_state);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Florence-2",
      "Filter/Analyzer/Video",
      "Runs the Florence-2 vision-language model on video frames and attaches "
      "boxes, phrases, polygons, OCR and captions as metadata",
      "gst-florence2 developers");

  gst_type_mark_as_plugin_api (GST_TYPE_FLORENCE2_TASK, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_FLORENCE2_PRECISION, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_FLORENCE2_LATENCY_MODE, 0);
}

static void
gst_florence2_init (GstFlorence2 * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_florence2_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_florence2_sink_event));
  gst_pad_set_query_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_florence2_sink_query));
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_activatemode_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_florence2_src_activate_mode));
  gst_pad_set_query_function (self->srcpad,
      GST_DEBUG_FUNCPTR (gst_florence2_src_query));
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  self->model_dir = g_strdup (DEFAULT_MODEL);
  self->task = DEFAULT_TASK;
  self->prompt = g_strdup (DEFAULT_PROMPT);
  self->device = g_strdup (DEFAULT_DEVICE);
  self->precision = DEFAULT_PRECISION;
  self->threads = DEFAULT_THREADS;
  self->num_beams = DEFAULT_NUM_BEAMS;
  self->max_new_tokens = DEFAULT_MAX_NEW_TOKENS;
  self->inference_interval = DEFAULT_INFERENCE_INTERVAL;
  self->latency_mode = DEFAULT_LATENCY_MODE;
  self->skip_when_busy = DEFAULT_SKIP_WHEN_BUSY;
  self->attach_roi_meta = DEFAULT_ATTACH_ROI_META;
  self->emit_messages = DEFAULT_EMIT_MESSAGES;
  self->results_location = g_strdup (DEFAULT_RESULTS_LOCATION);
  self->results_append = DEFAULT_RESULTS_APPEND;

  g_mutex_init (&self->queue_lock);
  g_cond_init (&self->queue_cond);
  g_queue_init (&self->queue);
  self->queue_limit = QUEUE_FRAMES;
  self->srcresult = GST_FLOW_FLUSHING;
  self->flushing = TRUE;
  self->reported_latency = GST_CLOCK_TIME_NONE;
}
