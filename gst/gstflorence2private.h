/* The florence2 element's instance and the functions its parts share:
 * gstflorence2.c (properties, start and stop), gstflorence2queue.c (the
 * ordered queue and the pad task that empties it) and gstflorence2job.c
 * (inference jobs and the delivery of their results). The lock order is
 * written at the top of gstflorence2.c. */
#pragma once

#include "gstflorence2.h"
#include "gstflorence2enums.h"
#include "gstflorence2result.h"

#include "backend.h"
#include "florence2.h"

#include <gst/video/video.h>

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (florence2_debug);

/* What one inference produced (or the error it hit); see
 * gstflorence2job.c. */
typedef struct _InferenceResult InferenceResult;

/* A frame the worker took from the queue in aligned mode and holds, in
 * order, until its inference (if it has one) is done. */
typedef struct
{
  GstBuffer *buffer;
  gboolean has_job;
} HeldFrame;

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
  guint batch_size;
  guint64 batch_timeout;        /* nanoseconds */
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
  /* this element's state on the shared model; NULL with batch-size > 1,
   * where the model's batch scheduler runs the frames */
  Florence2Context *context;
  Florence2BatchParams batch;   /* batch-size and batch-timeout at start;
                                 * batch-size also caps the element's
                                 * inferences at once */
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
  guint jobs_running;           /* inferences on the inference threads */
  guint next_job_id;
  GQueue jobs;                  /* JobSlot: the inferences whose results are
                                 * wanted, oldest first; a flush empties it */
  GQueue held;                  /* HeldFrame, oldest first (aligned mode) */
  guint held_jobs;              /* held frames with an inference */
  GstClockTime reported_latency;

  /* worker thread only (and flush-stop and stop, with the worker paused) */
  GstVideoInfo info;
  gboolean have_info;
  guint warned_cookie;
};

/* gstflorence2queue.c: the sink and source pads' functions. */
GstFlowReturn gst_florence2_chain (GstPad * pad, GstObject * parent,
    GstBuffer * buffer);
gboolean gst_florence2_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
gboolean gst_florence2_sink_query (GstPad * pad, GstObject * parent,
    GstQuery * query);
gboolean gst_florence2_src_query (GstPad * pad, GstObject * parent,
    GstQuery * query);
gboolean gst_florence2_src_activate_mode (GstPad * pad, GstObject * parent,
    GstPadMode mode, gboolean active);

/* gstflorence2queue.c, queue_lock held: drop everything queued. */
void gst_florence2_queue_clear (GstFlorence2 * self);

/* gstflorence2job.c: the inference thread's function (a GThreadPool's
 * func, with an InferenceJob as @data). */
void gst_florence2_job_run (gpointer data, gpointer user_data);

/* gstflorence2job.c, on the worker in aligned mode, queue_lock held: hold
 * @buffer (taking it) until it may leave, with its inference started when
 * it is @due. */
void gst_florence2_job_hold (GstFlorence2 * self, GstBuffer * buffer,
    gboolean due);

/* gstflorence2job.c, queue_lock held: whether the oldest held frame may
 * leave (its inference, if any, is done). */
gboolean gst_florence2_job_held_ready (GstFlorence2 * self);

/* gstflorence2job.c, on the worker in aligned mode, queue_lock not held:
 * attach its result to the oldest held frame (ready) and push it. Returns
 * what pushing gave. */
GstFlowReturn gst_florence2_job_push_held (GstFlorence2 * self);

/* gstflorence2job.c, on the worker in low-latency mode: start an inference
 * of @buffer when it is @due and fewer than batch-size run, attach the
 * oldest finished result and push the frame at once. Returns what pushing
 * gave. */
GstFlowReturn gst_florence2_job_pass_frame (GstFlorence2 * self,
    GstBuffer * buffer, gboolean due);

/* gstflorence2job.c, queue_lock held: forget every inference (running ones
 * finish unseen) and drop the held frames: at flush-stop and stop. */
void gst_florence2_job_forget_all (GstFlorence2 * self);

/* gstflorence2job.c, on the worker at EOS in low-latency mode: deliver the
 * last results, which no later frame will carry. */
GstFlowReturn gst_florence2_job_finish_low_latency (GstFlorence2 * self);

void gst_florence2_inference_result_free (InferenceResult * result);

G_END_DECLS
