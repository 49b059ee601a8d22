/* Inside the library's front door: the model and context structures that
 * florence2.c (loading, contexts), florence2-run.c (running frames) and
 * florence2-batch.c (the batch scheduler) share. Not installed. */
#pragma once

#include "florence2.h"
#include "backend.h"
#include "config.h"
#include "generate.h"
#include "net.h"
#include "tokenizer.h"

G_BEGIN_DECLS

typedef struct _F2BatchScheduler F2BatchScheduler;

struct _Florence2Model {
  gint ref_count;
  char *dir;
  F2Precision precision;
  F2Config *config;
  F2Tokenizer *tokenizer;
  F2Backend *backend;
  F2NetModel *net_model;        /* the weights, shared by every context */
  F2GenerateParams generation;
  F2NetLimits limits;
  GMutex idle_lock;
  GPtrArray *idle_nets;         /* F2Net of freed contexts, kept for the next ones */
  GMutex scheduler_lock;
  F2BatchScheduler *scheduler;  /* created by the first batched run */
};

struct _Florence2Context {
  Florence2Model *model;
  F2Net *net;
};

/* Called for each frame of a batch as soon as it is done: @output (owned
 * by the callee) or @error (owned by the callee). */
typedef void (*F2FrameDone) (guint index, Florence2Output *output, GError *error,
    gpointer user_data);

/* Runs @n_frames frames on @net (at most its slots) as one batch. Returns
 * FALSE with @error when the batch as a whole failed; frames not yet done
 * then get a copy of the error through @done. */
gboolean f2_run_frames (Florence2Model *model, F2Net *net, guint n_frames,
    const Florence2Image *images, const Florence2RunParams *params,
    F2FrameDone done, gpointer user_data, GError **error);

/* Writes the tensors of the current frame of @net into @path; called right
 * after the first decoder step so that the logits are those of step 0
 * (florence2-dump.c). */
gboolean f2_dump_tensors (Florence2Model *model, F2Net *net, const char *path,
    GError **error);

/* The batch scheduler behind florence2_model_run_batched()
 * (florence2-batch.c): a worker thread, started here, that runs the queued
 * frames of all callers in batches on a network of its own. */
F2BatchScheduler *f2_batch_scheduler_new (Florence2Model *model);
void f2_batch_scheduler_free (F2BatchScheduler *scheduler);
/* Makes the scheduler's working memory hold batches of @slots frames now,
 * rather than at the first such batch: the worker does it after the
 * running batch, before the next one. */
gboolean f2_batch_scheduler_reserve (F2BatchScheduler *scheduler,
    guint slots, GError **error);
/* Queues one frame and waits for its output */
Florence2Output *f2_batch_scheduler_run (F2BatchScheduler *scheduler,
    const Florence2Image *image, const Florence2RunParams *params,
    guint batch_size, guint64 timeout_ns, GError **error);
void f2_batch_scheduler_counts (F2BatchScheduler *scheduler, guint64 *batches,
    guint64 *frames);

G_END_DECLS
