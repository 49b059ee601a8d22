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
 * Elements in one process with the same model, device, precision and
 * threads share one loaded model. With #GstFlorence2:batch-size above 1
 * their frames are batched together by the model's scheduler: a batch
 * starts when it holds as many frames as the largest batch-size among its
 * frames, or when its oldest frame has waited the #GstFlorence2:batch-timeout
 * of that frame's element; each frame gets its result as soon as its own
 * answer is complete (in fp32 the same result as alone). An element runs
 * up to batch-size of its own frames at once, so the queued frames of one
 * stream batch together as well. In aligned mode the element adds its
 * batch-timeout to the latency it reports.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=30 ! videoconvert ! \
 *     florence2 model=/path/to/Florence-2-base task=od inference-interval=10 ! \
 *     videoconvert ! florence2overlay ! autovideosink
 * ]| Detects objects on every tenth frame and draws the boxes.
 * |[
 * gst-launch-1.0 \
 *     videotestsrc is-live=true ! videoconvert ! florence2 name=a \
 *         model=/path/to/Florence-2-base batch-size=2 batch-timeout=20000000 ! \
 *         fakesink \
 *     videotestsrc is-live=true pattern=ball ! videoconvert ! florence2 name=b \
 *         model=/path/to/Florence-2-base batch-size=2 batch-timeout=20000000 ! \
 *         fakesink
 * ]| Two streams on one model, their frames run in batches of two (a frame
 * waits at most 20 ms for the other stream's).
 */

/* The element in parts: this file holds the properties, start and stop;
 * gstflorence2queue.c the ordered queue and the pad task (the worker);
 * gstflorence2job.c the inference jobs and the delivery of their results;
 * gstflorence2result.c turns a result into metadata, a message and JSON,
 * and writes results files. gstflorence2private.h holds the instance.
 *
 * Threads: the upstream streaming thread (chain and sink events, holding
 * the sink pad's stream lock), the worker (the source pad's task, holding
 * the source pad's stream lock while it pushes), the inference threads (a
 * pool of one that runs florence2_context_run() on the element's own
 * context of the shared model, or with batch-size > 1 a pool of
 * batch-size threads, each running florence2_model_run_batched() on the
 * shared model for one frame, which blocks until the frame's batch has
 * run) and application threads
 * (properties, state changes).
 *
 * Lock order, outermost first; a thread holding one takes only those below
 * it:
 *   1. a pad's stream lock: the sink pad's (streaming thread) or the source
 *      pad's (the worker); the element never takes one while holding
 *      the other
 *   2. queue_lock: the queue, the flow state, the jobs and the finished
 *      result
 *   3. the object lock (properties, statistics), taken under queue_lock to
 *      copy the settings of a job or the inference interval; or the source
 *      pad's object lock, taken under queue_lock to store sticky events at
 *      flush-stop
 * queue_lock is dropped before pushing downstream, posting an error or a
 * latency message, or pausing the task; only the warning about a task and
 * prompt that do not agree is posted under it (posting takes object locks,
 * which come below it). The object lock is never held while taking
 * queue_lock, nor while posting. The inference thread takes the object lock
 * and then queue_lock one after the other, never nested. The model
 * library's own locks (taken inside florence2_context_run() and
 * florence2_model_run_batched(), on the inference thread, and in
 * florence2_context_new() and _free() in start and stop) and the table of
 * shared models (gstflorence2models.c, in start and stop) are taken with
 * none of the element's locks held.
 */
#include "gstflorence2private.h"
#include "gstflorence2models.h"

#include "loader-util.h"
#include "tasks.h"
#include "tokenizer.h"

GST_DEBUG_CATEGORY (florence2_debug);
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
#define DEFAULT_BATCH_SIZE 1
#define DEFAULT_BATCH_TIMEOUT (5 * GST_MSECOND)
#define DEFAULT_ATTACH_ROI_META TRUE
#define DEFAULT_EMIT_MESSAGES FALSE
#define DEFAULT_RESULTS_LOCATION NULL
#define DEFAULT_RESULTS_APPEND FALSE

#define MAX_NUM_BEAMS 16
#define MAX_NEW_TOKENS 1024
#define MAX_BATCH_TIMEOUT (10 * GST_SECOND)

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
  PROP_BATCH_SIZE,
  PROP_BATCH_TIMEOUT,
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
  gst_florence2_queue_clear (self);
  gst_florence2_job_forget_all (self);
  self->jobs_running = 0;
  g_mutex_unlock (&self->queue_lock);
  g_clear_pointer (&self->results_file, gst_florence2_results_file_close);
  g_clear_pointer (&self->context, florence2_context_free);
  gst_florence2_models_release (self->model);
  self->model = NULL;
  self->have_info = FALSE;
}

/* Post the error of loading the model, in the domain that fits its kind. */
static void
post_load_error (GstFlorence2 * self, const gchar * dir, GError * error)
{
  switch (florence2_error_kind (error)) {
    case FLORENCE2_ERROR_KIND_OUT_OF_MEMORY:
      GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT,
          ("Not enough memory for the Florence-2 model: %s", error->message),
          ("try precision=fp16 (Vulkan) or bf16 (cpu), a smaller batch-size, "
              "or a smaller model"));
      break;
    case FLORENCE2_ERROR_KIND_SETTINGS:
      GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
          ("Cannot use the Florence-2 model in %s with these settings: %s",
              dir, error->message),
          ("check the device, precision, threads and num-beams properties"));
      break;
    case FLORENCE2_ERROR_KIND_DEVICE:
      GST_ELEMENT_ERROR (self, LIBRARY, INIT,
          ("Cannot open the compute device: %s", error->message),
          ("check the device property (an index, a name, or cpu) and the "
              "Vulkan driver"));
      break;
    case FLORENCE2_ERROR_KIND_NOT_FOUND:
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", error->message),
          (NULL));
      break;
    default:
      /* the model's files: config, preprocessor settings, tokenizer, weights */
      GST_ELEMENT_ERROR (self, RESOURCE, READ,
          ("Cannot load the Florence-2 model in %s: %s", dir, error->message),
          (NULL));
      break;
  }
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
  Florence2BatchParams batch;

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
  batch.batch_size = self->batch_size;
  batch.batch_timeout_ns = self->batch_timeout;
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
  /* this element's own working memory on the shared model: elements
   * sharing a model run their inferences at the same time; with batches,
   * the model's scheduler holds the working memory, made ready now for
   * batches of this size */
  if (batch.batch_size <= 1)
    self->context = florence2_context_new (self->model, &error);
  else
    florence2_model_reserve_batch (self->model, batch.batch_size, &error);
  if (error != NULL) {
    post_load_error (self, dir, error);
    goto fail;
  }
  GST_INFO_OBJECT (self, "model %s on %s, batches of up to %u frames "
      "waiting at most %" GST_TIME_FORMAT, dir,
      florence2_model_device_name (self->model), batch.batch_size,
      GST_TIME_ARGS (batch.batch_timeout_ns));
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

  /* with batches, one thread per frame the element may have in its batch:
   * each blocks until its frame's batch has run */
  self->pool = g_thread_pool_new (gst_florence2_job_run, NULL,
      batch.batch_size, FALSE, &error);
  if (self->pool == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED,
        ("Cannot start the inference thread: %s", error->message), (NULL));
    goto fail;
  }

  g_mutex_lock (&self->queue_lock);
  self->queue_limit = skipping ? QUEUE_FRAMES_SKIPPING : QUEUE_FRAMES;
  self->batch = batch;
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
    case PROP_BATCH_SIZE:
      self->batch_size = g_value_get_uint (value);
      break;
    case PROP_BATCH_TIMEOUT:
      self->batch_timeout = g_value_get_uint64 (value);
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
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, self->batch_size);
      break;
    case PROP_BATCH_TIMEOUT:
      g_value_set_uint64 (value, self->batch_timeout);
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
   * (with #GstFlorence2:batch-size above 1: while batch-size of the
   * element's frames run or wait for one) passes without results, still in
   * order behind the running ones, and up to 32 frames may wait instead of
   * 2, so a live source is held up less. In low-latency mode frames never
   * wait and busy frames are always skipped.
   */
  g_object_class_install_property (gobject_class, PROP_SKIP_WHEN_BUSY,
      g_param_spec_boolean ("skip-when-busy", "Skip when busy",
          "Frames that arrive during an inference pass without one",
          DEFAULT_SKIP_WHEN_BUSY, ready));

  /**
   * GstFlorence2:batch-size:
   *
   * Frames per batch. 1 (the default): the element runs its frames alone,
   * on working memory of its own. Above 1, its frames go to the batch
   * scheduler of the shared model (see #GstFlorence2:model), which gathers
   * the frames of every florence2 element on that model into one run: a
   * batch starts when it holds as many frames as the largest batch-size
   * among its frames, or when its oldest frame has waited that frame's
   * element's #GstFlorence2:batch-timeout. Each frame gets its own result
   * as soon as its own answer is complete (in fp32 the same as alone).
   * Elements sharing a model may set different values; a batch takes the
   * largest batch-size among its frames, and each frame waits at most its
   * own element's batch-timeout.
   *
   * An element runs up to batch-size of its own frames at once, so a
   * single stream whose frames queue up (aligned mode) batches them too:
   * the frames leave in order, each once its own result is attached. The
   * frames between them (#GstFlorence2:inference-interval) wait in memory
   * as well, at most 32 frames in all, so with a long interval fewer
   * frames run at once. In
   * low-latency mode up to batch-size inferences run at once, and their
   * results ride on later frames, one per frame, in the order of the
   * frames they came from. With #GstFlorence2:skip-when-busy the element
   * is busy when batch-size of its frames are running or waiting.
   */
  g_object_class_install_property (gobject_class, PROP_BATCH_SIZE,
      g_param_spec_uint ("batch-size", "Batch size",
          "Frames per batch, this element's queued frames and those of the "
          "elements sharing the model (1: no batching; a batch starts when it "
          "holds the largest batch-size of its frames, or at the "
          "batch-timeout)", 1, FLORENCE2_MAX_BATCH,
          DEFAULT_BATCH_SIZE, ready));

  /**
   * GstFlorence2:batch-timeout:
   *
   * With #GstFlorence2:batch-size above 1: how long a frame of this element
   * waits at most, in nanoseconds of wall-clock time (not running time), for
   * its batch to fill before the batch runs with the frames it has. A frame
   * that arrives while the model runs a batch counts this wait from the end
   * of that batch. In
   * aligned mode the LATENCY query adds it to the latency the element
   * reports. Ignored with batch-size 1.
   */
  g_object_class_install_property (gobject_class, PROP_BATCH_TIMEOUT,
      g_param_spec_uint64 ("batch-timeout", "Batch timeout",
          "Longest wait of this element's frames for their batch to fill, "
          "in nanoseconds of wall-clock time (with batch-size > 1; each "
          "element sharing a model keeps its own)", 0, MAX_BATCH_TIMEOUT,
          DEFAULT_BATCH_TIMEOUT, ready));

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
  self->batch_size = DEFAULT_BATCH_SIZE;
  self->batch_timeout = DEFAULT_BATCH_TIMEOUT;
  self->attach_roi_meta = DEFAULT_ATTACH_ROI_META;
  self->emit_messages = DEFAULT_EMIT_MESSAGES;
  self->results_location = g_strdup (DEFAULT_RESULTS_LOCATION);
  self->results_append = DEFAULT_RESULTS_APPEND;

  g_mutex_init (&self->queue_lock);
  g_cond_init (&self->queue_cond);
  g_queue_init (&self->queue);
  g_queue_init (&self->jobs);
  g_queue_init (&self->held);
  self->queue_limit = QUEUE_FRAMES;
  self->batch.batch_size = DEFAULT_BATCH_SIZE;
  self->srcresult = GST_FLOW_FLUSHING;
  self->flushing = TRUE;
  self->reported_latency = GST_CLOCK_TIME_NONE;
}
