/* The florence2 element's inference jobs: a frame due for inference goes
 * to the inference thread with the settings of the moment, and its result
 * comes back to the worker, which attaches it to a frame as metadata, posts
 * it on the bus and writes it to the results file. See gstflorence2.c for
 * the lock order. */
#include "gstflorence2private.h"

#include "net.h"
#include "tasks.h"

#include <string.h>

#define GST_CAT_DEFAULT florence2_debug

/* What one inference produced (or the error it hit). */
struct _InferenceResult
{
  guint id;
  Florence2Output *output;
  GError *error;
  gchar *task;                  /* task token */
  gchar *prompt;
  GstClockTime source_pts;
  GstClockTime inference_time;
};

/* An inference whose result is wanted: the element's jobs queue holds
 * one per inference, in the order they started; the result is set when
 * it is done. */
typedef struct
{
  guint id;
  InferenceResult *result;
} JobSlot;

/* One inference handed to an inference thread. */
typedef struct
{
  GstFlorence2 *self;
  guint id;
  Florence2Context *context;    /* NULL: through the model's batch scheduler */
  Florence2Model *model;
  Florence2BatchParams batch;
  GstBuffer *buffer;
  GstVideoInfo info;
  F2Task task;
  gchar *prompt;
  guint num_beams;
  guint max_new_tokens;
} InferenceJob;

void
gst_florence2_inference_result_free (InferenceResult * result)
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

/* Inference thread: run @image alone on the element's context, or with
 * batch-size > 1 through the shared model's batch scheduler, which waits
 * for the frames of the other elements (at most batch-timeout). */
static Florence2Output *
run_image (InferenceJob * job, const F2Image * image,
    const Florence2RunParams * params, GError ** error)
{
  if (job->context != NULL)
    return florence2_context_run (job->context, image, params, error);
  return florence2_model_run_batched (job->model, image, params, &job->batch,
      error);
}

/* Inference thread: run one job and hand its result to the worker. */
void
gst_florence2_job_run (gpointer data, gpointer user_data)
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
      result->output = run_image (job, &image, &params, &result->error);
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
  for (GList * l = self->jobs.head; l != NULL; l = l->next) {
    JobSlot *slot = l->data;

    if (slot->id == job->id) {
      slot->result = result;
      result = NULL;
      break;
    }
  }
  g_cond_broadcast (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);

  gst_florence2_inference_result_free (result);
  inference_job_free (job);
}

/* Worker, queue_lock held: hand @buffer to the inference thread with the
 * current settings. FALSE when the settings do not make a valid inference
 * (a warning is posted once per change). */
static gboolean
submit_job (GstFlorence2 * self, GstBuffer * buffer)
{
  InferenceJob *job;
  JobSlot *slot;
  GError *error = NULL;
  gchar *built;
  guint cookie;

  job = g_new0 (InferenceJob, 1);
  job->self = self;
  job->context = self->context;
  job->model = self->model;
  job->batch = self->batch;
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

  slot = g_new0 (JobSlot, 1);
  slot->id = job->id = ++self->next_job_id;
  g_queue_push_tail (&self->jobs, slot);
  self->jobs_running++;
  g_thread_pool_push (self->pool, job, NULL);
  return TRUE;
}

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

/* Worker, queue_lock held: take the oldest inference's result if it is
 * done. A failed inference posts an error and gives NULL with *ret set. */
static InferenceResult *
take_result (GstFlorence2 * self, GstFlowReturn * ret)
{
  JobSlot *slot = g_queue_peek_head (&self->jobs);
  InferenceResult *result;

  if (slot == NULL || slot->result == NULL)
    return NULL;
  result = slot->result;
  g_free (g_queue_pop_head (&self->jobs));
  if (result != NULL && result->error != NULL) {
    GError *e = result->error;

    g_mutex_unlock (&self->queue_lock);
    if (e->domain == GST_STREAM_ERROR)
      GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("%s", e->message), (NULL));
    else if (florence2_error_kind (e) == FLORENCE2_ERROR_KIND_OUT_OF_MEMORY)
      GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
          ("Not enough memory for the Florence-2 inference: %s", e->message),
          ("lower batch-size (the largest among the elements sharing the "
              "model sizes the batch's memory), num-beams or max-new-tokens"));
    else
      GST_ELEMENT_ERROR (self, STREAM, FAILED,
          ("Florence-2 inference failed: %s", e->message), (NULL));
    g_mutex_lock (&self->queue_lock);
    gst_florence2_inference_result_free (result);
    *ret = GST_FLOW_ERROR;
    return NULL;
  }
  if (result != NULL)
    maybe_update_latency (self, result->inference_time);
  return result;
}

/* Worker, queue_lock not held: attach @result (if any) to @buffer and
 * push it. */
static GstFlowReturn
push_frame (GstFlorence2 * self, GstBuffer * buffer, InferenceResult * result)
{
  if (result != NULL) {
    buffer = gst_buffer_make_writable (buffer);
    deliver_result (self, buffer, result);
    gst_florence2_inference_result_free (result);
  }
  return gst_pad_push (self->srcpad, buffer);
}

void
gst_florence2_job_hold (GstFlorence2 * self, GstBuffer * buffer, gboolean due)
{
  HeldFrame *held = g_new0 (HeldFrame, 1);

  held->buffer = buffer;
  held->has_job = due && self->have_info && submit_job (self, buffer);
  if (held->has_job)
    self->held_jobs++;
  g_queue_push_tail (&self->held, held);
}

gboolean
gst_florence2_job_held_ready (GstFlorence2 * self)
{
  HeldFrame *held = g_queue_peek_head (&self->held);
  JobSlot *slot = g_queue_peek_head (&self->jobs);

  /* held frames start their inferences in order, so the oldest held
   * frame with an inference owns the oldest job */
  return held != NULL && (!held->has_job || (slot != NULL
          && slot->result != NULL));
}

GstFlowReturn
gst_florence2_job_push_held (GstFlorence2 * self)
{
  InferenceResult *result = NULL;
  GstFlowReturn ret = GST_FLOW_OK;
  HeldFrame *held;
  GstBuffer *buffer;

  g_mutex_lock (&self->queue_lock);
  held = g_queue_pop_head (&self->held);
  buffer = held->buffer;
  if (held->has_job) {
    self->held_jobs--;
    result = take_result (self, &ret);
  }
  g_cond_broadcast (&self->queue_cond);
  g_mutex_unlock (&self->queue_lock);
  g_free (held);

  if (ret != GST_FLOW_OK) {
    gst_buffer_unref (buffer);
    return ret;
  }
  return push_frame (self, buffer, result);
}

GstFlowReturn
gst_florence2_job_pass_frame (GstFlorence2 * self, GstBuffer * buffer,
    gboolean due)
{
  InferenceResult *result;
  GstFlowReturn ret = GST_FLOW_OK;

  /* frames never wait: results of earlier frames ride on this one, one
   * result per frame and in the order of their frames */
  g_mutex_lock (&self->queue_lock);
  result = take_result (self, &ret);
  if (ret == GST_FLOW_OK && due && self->have_info
      && self->jobs_running < self->batch.batch_size)
    submit_job (self, buffer);
  g_mutex_unlock (&self->queue_lock);

  if (ret != GST_FLOW_OK) {
    gst_buffer_unref (buffer);
    return ret;
  }
  return push_frame (self, buffer, result);
}

/* Worker, at EOS in low-latency mode: the last results have no later
 * frame; still report them on the bus and in the file. */
GstFlowReturn
gst_florence2_job_finish_low_latency (GstFlorence2 * self)
{
  GstFlowReturn ret = GST_FLOW_OK;

  g_mutex_lock (&self->queue_lock);
  while (ret == GST_FLOW_OK && !self->flushing) {
    InferenceResult *result;

    if (g_queue_is_empty (&self->jobs))
      break;
    result = take_result (self, &ret);
    if (result == NULL) {
      if (ret == GST_FLOW_OK)
        g_cond_wait (&self->queue_cond, &self->queue_lock);
      continue;
    }
    g_mutex_unlock (&self->queue_lock);
    deliver_result (self, NULL, result);
    gst_florence2_inference_result_free (result);
    g_mutex_lock (&self->queue_lock);
  }
  g_mutex_unlock (&self->queue_lock);
  return ret;
}

void
gst_florence2_job_forget_all (GstFlorence2 * self)
{
  JobSlot *slot;
  HeldFrame *held;

  while ((slot = g_queue_pop_head (&self->jobs)) != NULL) {
    gst_florence2_inference_result_free (slot->result);
    g_free (slot);
  }
  while ((held = g_queue_pop_head (&self->held)) != NULL) {
    gst_buffer_unref (held->buffer);
    g_free (held);
  }
  self->held_jobs = 0;
}
