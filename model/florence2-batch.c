/* The model's batch scheduler: frames from every caller of
 * florence2_model_run_batched() (one thread per frame in flight: a camera
 * with several frames queued calls from as many threads) wait in one FIFO
 * queue; a worker thread takes them in batches
 * and runs each batch on a network with one slot per frame. A batch starts
 * when the queue holds as many frames as the largest batch size among
 * them, or when its oldest frame has waited its timeout for the batch to
 * fill. That wait counts from the frame's arrival or from the end of the
 * previous batch, whichever is later: frames that queued while a batch ran
 * were waiting for the worker, not for company, and starting them at once
 * in a part-filled batch would leave the slots of the streams still
 * handing in their next frame empty. Callers block
 * until their own frame is done, so a stream has at most as many frames
 * queued as it has threads (the florence2 element: its batch-size), and
 * FIFO order serves every stream in turn. Only the worker touches the
 * network: a caller that reserves memory for a batch size (an element
 * starting) hands the request to the worker, which makes it between two
 * batches, before the next one. */
#include "florence2-private.h"

typedef struct {
  const F2Image *image;
  const Florence2RunParams *params;
  guint batch_size;
  gint64 queued;                /* monotonic, us */
  gint64 timeout;               /* us the frame may wait for its batch to fill */
  Florence2Output *output;
  GError *error;
  gboolean done;
} Request;

/* A caller of f2_batch_scheduler_reserve(), waiting for the worker */
typedef struct {
  guint slots;
  GError *error;
  gboolean done;
} Reservation;

struct _F2BatchScheduler {
  Florence2Model *model;        /* not a reference: the model owns the scheduler */
  GMutex lock;
  GCond wake;                   /* for the worker: a frame came, or quit */
  GCond frame_done;             /* for the callers */
  GQueue pending;               /* Request *, oldest first */
  GQueue reservations;          /* Reservation *: made before the next batch */
  gboolean quit;
  GThread *thread;
  gint64 idle_since;            /* monotonic, us: the end of the last batch */
  F2Net *net;                   /* worker only: as many slots as the largest
                                 * batch or reservation so far */
  guint64 batches, frames;      /* run so far */
};

/* A frame of the running batch is done: hand it to its caller */
static void
request_done (guint index, Florence2Output *output, GError *error, gpointer user_data)
{
  F2BatchScheduler *s = ((gpointer *) user_data)[0];
  Request **batch = ((gpointer *) user_data)[1];

  g_mutex_lock (&s->lock);
  batch[index]->output = output;
  batch[index]->error = error;
  batch[index]->done = TRUE;
  g_cond_broadcast (&s->frame_done);
  g_mutex_unlock (&s->lock);
}

/* Worker, lock not held: make the net hold batches of @slots frames. The
 * memory is kept for the next batches; the old net goes first, as both at
 * once might not fit. */
static gboolean
ensure_net (F2BatchScheduler *s, guint slots, GError **error)
{
  if (s->net != NULL && f2_net_slots (s->net) >= slots)
    return TRUE;
  g_clear_pointer (&s->net, f2_net_free);
  s->net = f2_net_new_batch (s->model->net_model, slots, error);
  if (s->net == NULL)
    g_prefix_error (error, "cannot set up batches of %u frames: ", slots);
  return s->net != NULL;
}

/* Worker, lock not held: runs @n requests as one batch */
static void
run_batch (F2BatchScheduler *s, Request **batch, guint n, guint slots)
{
  F2Image *images = g_new (F2Image, n);
  Florence2RunParams *params = g_new (Florence2RunParams, n);
  gpointer data[2] = { s, batch };
  GError *error = NULL;

  if (!ensure_net (s, slots, &error)) {
    for (guint i = 0; i < n; i++)
      request_done (i, NULL, g_error_copy (error), data);
    g_error_free (error);
  } else {
    for (guint i = 0; i < n; i++) {
      images[i] = *batch[i]->image;
      params[i] = *batch[i]->params;
    }
    /* on failure every frame got the error already */
    if (!f2_run_frames (s->model, s->net, n, images, params, request_done, data,
            &error))
      g_error_free (error);
  }
  g_free (images);
  g_free (params);
}

static gpointer
worker (gpointer data)
{
  F2BatchScheduler *s = data;

  g_mutex_lock (&s->lock);
  while (!s->quit) {
    Request *head = g_queue_peek_head (&s->pending);
    Reservation *r = g_queue_pop_head (&s->reservations);
    Request *batch[FLORENCE2_MAX_BATCH];
    guint target = 1, n;
    gint64 deadline;

    /* reservations first: a caller waits for them while frames keep
     * coming */
    if (r != NULL) {
      GError *error = NULL;

      g_mutex_unlock (&s->lock);
      ensure_net (s, r->slots, &error);
      g_mutex_lock (&s->lock);
      r->error = error;
      r->done = TRUE;
      g_cond_broadcast (&s->frame_done);
      continue;
    }
    if (head == NULL) {
      g_cond_wait (&s->wake, &s->lock);
      continue;
    }
    for (GList *l = s->pending.head; l != NULL; l = l->next)
      target = MAX (target, ((Request *) l->data)->batch_size);
    deadline = MAX (head->queued, s->idle_since) + head->timeout;
    if (s->pending.length < target && g_get_monotonic_time () < deadline) {
      g_cond_wait_until (&s->wake, &s->lock, deadline);
      continue;
    }
    n = MIN (target, s->pending.length);
    for (guint i = 0; i < n; i++)
      batch[i] = g_queue_pop_head (&s->pending);
    s->batches++;
    s->frames += n;
    g_mutex_unlock (&s->lock);
    run_batch (s, batch, n, target);
    g_mutex_lock (&s->lock);
    s->idle_since = g_get_monotonic_time ();
  }
  g_mutex_unlock (&s->lock);
  return NULL;
}

F2BatchScheduler *
f2_batch_scheduler_new (Florence2Model *model)
{
  F2BatchScheduler *s = g_new0 (F2BatchScheduler, 1);

  s->model = model;
  g_mutex_init (&s->lock);
  g_cond_init (&s->wake);
  g_cond_init (&s->frame_done);
  g_queue_init (&s->pending);
  g_queue_init (&s->reservations);
  s->thread = g_thread_new ("florence2-batch", worker, s);
  return s;
}

void
f2_batch_scheduler_free (F2BatchScheduler *s)
{
  if (s == NULL)
    return;
  g_mutex_lock (&s->lock);
  s->quit = TRUE;
  g_cond_signal (&s->wake);
  g_mutex_unlock (&s->lock);
  g_thread_join (s->thread);
  f2_net_free (s->net);
  g_cond_clear (&s->wake);
  g_cond_clear (&s->frame_done);
  g_mutex_clear (&s->lock);
  g_free (s);
}

/* Caller: queue @item on @queue for the worker and wait until the worker
 * sets *@done. */
static void
hand_to_worker (F2BatchScheduler *s, GQueue *queue, gpointer item,
    const gboolean *done)
{
  g_mutex_lock (&s->lock);
  g_queue_push_tail (queue, item);
  g_cond_signal (&s->wake);
  while (!*done)
    g_cond_wait (&s->frame_done, &s->lock);
  g_mutex_unlock (&s->lock);
}

gboolean
f2_batch_scheduler_reserve (F2BatchScheduler *s, guint slots, GError **error)
{
  Reservation r = { slots, NULL, FALSE };

  hand_to_worker (s, &s->reservations, &r, &r.done);
  if (r.error != NULL) {
    g_propagate_error (error, r.error);
    return FALSE;
  }
  return TRUE;
}

Florence2Output *
f2_batch_scheduler_run (F2BatchScheduler *s, const F2Image *image,
    const Florence2RunParams *params, guint batch_size, guint64 timeout_ns,
    GError **error)
{
  Request r = { image, params, batch_size, g_get_monotonic_time (),
    (gint64) (timeout_ns / 1000), NULL, NULL, FALSE };

  hand_to_worker (s, &s->pending, &r, &r.done);
  if (r.error != NULL)
    g_propagate_error (error, r.error);
  return r.output;
}

void
f2_batch_scheduler_counts (F2BatchScheduler *s, guint64 *batches, guint64 *frames)
{
  g_mutex_lock (&s->lock);
  *batches = s->batches;
  *frames = s->frames;
  g_mutex_unlock (&s->lock);
}
