/* Batches: every golden case, greedy and with 3 beams, some with a shorter
 * max-new-tokens, one as BGRx instead of RGB, shuffled into mixed batches
 * (different tasks, prompts, beams, lengths and image sizes side by side).
 * In fp32 each frame's ids, text, scores and result must be those of the
 * same frame run alone, bit for bit; the single runs must give the
 * reference's ids. A frame with bad input fails alone, and the model's
 * scheduler, fed from several threads at once, must really form batches
 * and give the same outputs, and a frame that queued while a batch ran
 * must wait for the next batch to fill.
 *
 * Usage: test-batch [reference|cpu|vulkan] [BATCH (default 4)] [THREADS]
 * THREADS: compute threads per run (default 0, the backend's choice); 1
 * keeps OpenMP out of the way of ThreadSanitizer, as in test-contexts. */
#include "florence2.h"
#include "model-net.h"
#include "test-common.h"

#include <json-glib/json-glib.h>
#include <string.h>

typedef struct {
  F2TestCase *c;
  guint beam;                   /* 0 greedy, 1: 3 beams */
  Florence2Image image;         /* the case's, or a BGRx copy */
  guint8 *bgrx;
  Florence2RunParams params;
  Florence2Output *single;      /* the frame run alone */
} Job;

static guint failures;
static gint frames_fed;           /* frames the feeders got back */

static void
fail (const char *format, ...) G_GNUC_PRINTF (1, 2);

static void
fail (const char *format, ...)
{
  va_list args;
  char *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_print ("FAIL %s\n", message);
  g_free (message);
  failures++;
}

/* Same ids, text, token scores, sequence score and result as the single run */
static void
check_same (const Job *job, const Florence2Output *got, const char *how)
{
  const Florence2Output *want = job->single;
  char *got_json, *want_json;

  if (got == NULL)
    return;
  if (!f2_test_arrays_identical (got->generated_ids, want->generated_ids)
      || g_strcmp0 (got->text, want->text) != 0) {
    fail ("%s %s %s: ids or text differ from the single run", how,
        job->c->case_id, job->beam ? "beam" : "greedy");
    return;
  }
  if (!f2_test_arrays_identical (got->token_scores, want->token_scores)
      || memcmp (&got->sequence_score, &want->sequence_score, sizeof (float)) != 0)
    fail ("%s %s %s: scores differ from the single run", how, job->c->case_id,
        job->beam ? "beam" : "greedy");
  got_json = f2_result_to_json_string (got->result, FALSE);
  want_json = f2_result_to_json_string (want->result, FALSE);
  if (g_strcmp0 (got_json, want_json) != 0)
    fail ("%s %s: result %s, alone %s", how, job->c->case_id, got_json, want_json);
  g_free (got_json);
  g_free (want_json);
}

/* A BGRx copy of a packed RGB image: the same pixels in another format */
static guint8 *
to_bgrx (const Florence2Image *rgb, Florence2Image *out)
{
  guint8 *data = g_malloc ((gsize) rgb->width * rgb->height * 4);

  for (guint32 y = 0; y < rgb->height; y++)
    for (guint32 x = 0; x < rgb->width; x++) {
      const guint8 *s = rgb->data + (gsize) y * rgb->stride[0] + x * 3;
      guint8 *d = data + ((gsize) y * rgb->width + x) * 4;
      d[0] = s[2];
      d[1] = s[1];
      d[2] = s[0];
      d[3] = 255;
    }
  *out = *rgb;
  out->format = FLORENCE2_PIXEL_BGRX;
  out->stride[0] = rgb->width * 4;
  out->data = data;
  out->size = (gsize) rgb->width * rgb->height * 4;
  return data;
}

static Job *
make_jobs (F2TestCase *cases, guint n_cases, guint *n_jobs)
{
  guint n = 2 * n_cases;
  Job *jobs = g_new0 (Job, n);
  GRand *rand = g_rand_new_with_seed (20261204);

  for (guint i = 0; i < n; i++) {
    Job *j = &jobs[i];
    j->c = &cases[i / 2];
    j->beam = i % 2;
    j->image = j->c->image;
    j->params = florence2_run_default_params ();
    j->params.task = j->c->task;
    j->params.text = j->c->text_input;
    j->params.num_beams = j->beam ? 3 : 1;
    /* every third frame stops earlier: frames leave a batch at different steps */
    j->params.max_new_tokens = i % 3 == 2 ? 7 : 40;
  }
  jobs[1].bgrx = to_bgrx (&jobs[1].c->image, &jobs[1].image);
  /* mix tasks, beams and lengths */
  for (guint i = n - 1; i > 0; i--) {
    guint k = g_rand_int_range (rand, 0, i + 1);
    Job tmp = jobs[i];
    jobs[i] = jobs[k];
    jobs[k] = tmp;
  }
  g_rand_free (rand);
  *n_jobs = n;
  return jobs;
}

static void
run_singles (Florence2Model *model, Job *jobs, guint n_jobs)
{
  Florence2Context *context = florence2_context_new (model, NULL);

  for (guint i = 0; i < n_jobs; i++) {
    Job *j = &jobs[i];
    GError *error = NULL;

    j->single = florence2_context_run (context, &j->image, &j->params, &error);
    if (j->single == NULL)
      g_error ("single run of %s: %s", j->c->case_id, error->message);
    if (j->params.max_new_tokens == 40
        && (!f2_test_ids_equal (j->single->generated_ids, j->c->want[j->beam])
            || g_strcmp0 (j->single->text, j->c->want_text[j->beam]) != 0))
      fail ("single %s %s: not the reference's ids", j->c->case_id,
          j->beam ? "beam" : "greedy");
  }
  florence2_context_free (context);
}

static void
run_batches (Florence2Model *model, Job *jobs, guint n_jobs, guint batch)
{
  Florence2Context *context = florence2_context_new_batch (model, batch, NULL);
  Florence2Image images[FLORENCE2_MAX_BATCH];
  Florence2RunParams params[FLORENCE2_MAX_BATCH];
  Florence2Output *outputs[FLORENCE2_MAX_BATCH];
  GError *errors[FLORENCE2_MAX_BATCH], *error = NULL;

  g_assert_nonnull (context);
  g_assert_cmpuint (florence2_context_max_batch (context), ==, batch);
  for (guint first = 0; first < n_jobs; first += batch) {
    guint n = MIN (batch, n_jobs - first);

    for (guint i = 0; i < n; i++) {
      images[i] = jobs[first + i].image;
      params[i] = jobs[first + i].params;
    }
    if (!florence2_context_run_batch (context, n, images, params, outputs,
            errors, &error))
      g_error ("batch at %u: %s", first, error->message);
    for (guint i = 0; i < n; i++) {
      if (errors[i] != NULL) {
        fail ("batch %s: %s", jobs[first + i].c->case_id, errors[i]->message);
        g_clear_error (&errors[i]);
      }
      check_same (&jobs[first + i], outputs[i], "batch");
      florence2_output_free (outputs[i]);
    }
  }

  /* more frames than the context takes */
  if (florence2_context_run_batch (context, batch + 1, images, params, outputs,
          errors, &error))
    fail ("a batch of %u frames ran on a context for %u", batch + 1, batch);
  else
    g_print ("# ok: %s\n", error->message);
  g_clear_error (&error);
  florence2_context_free (context);
}

/* A prompt that cannot be built and a frame too short for its size sit
 * between good frames: they fail alone. */
static void
run_bad_frames (Florence2Model *model, Job *jobs, guint batch)
{
  Florence2Context *context = florence2_context_new_batch (model, batch, NULL);
  Florence2Image images[3] = { jobs[0].image, jobs[1].image, jobs[2].image };
  Florence2RunParams params[3] = { jobs[0].params, jobs[1].params, jobs[2].params };
  Florence2Output *outputs[3];
  GError *errors[3], *error = NULL;
  char *long_text = g_strnfill (4000, 'a');

  g_assert_cmpuint (batch, >=, 3);
  params[1].task = FLORENCE2_TASK_CAPTION_TO_PHRASE_GROUNDING;
  params[1].text = long_text;
  images[2].size = 16;          /* far fewer bytes than the frame needs */
  if (!florence2_context_run_batch (context, 3, images, params, outputs, errors,
          &error))
    g_error ("batch with bad frames: %s", error->message);
  for (guint i = 1; i < 3; i++) {
    if (errors[i] == NULL)
      fail ("bad frame %u of a batch ran", i);
    else
      g_print ("# ok: frame %u: %s\n", i, errors[i]->message);
    g_clear_error (&errors[i]);
    florence2_output_free (outputs[i]);
  }
  if (errors[0] != NULL)
    fail ("a good frame failed beside bad ones: %s", errors[0]->message);
  g_clear_error (&errors[0]);
  check_same (&jobs[0], outputs[0], "beside bad frames");
  florence2_output_free (outputs[0]);
  g_free (long_text);
  florence2_context_free (context);
}

static void
expect_refused (gboolean ok, GError **error, const char *what)
{
  if (ok)
    fail ("%s was accepted", what);
  else if (*error == NULL)
    fail ("%s failed without an error", what);
  else
    g_print ("# ok: %s: %s\n", what, (*error)->message);
  g_clear_error (error);
}

/* The network's batch calls underneath: a frame too short for its size
 * fails alone in the vision tower, and the encoder refuses a failed image,
 * a slot twice and more frames than the vision tower took. */
static void
run_net_calls (Florence2Model *model, Job *jobs, guint batch)
{
  Florence2Context *context = florence2_context_new_batch (model, batch, NULL);
  F2Net *net = florence2_context_net (context);
  guint most = f2_net_vision_batch (net);
  F2Image images[F2_NET_VISION_BATCH + 1];
  GError *errors[F2_NET_VISION_BATCH + 1], *error = NULL;
  const gint32 *ids = (const gint32 *) jobs[0].single->input_ids->data;
  guint n_ids = jobs[0].single->input_ids->len;
  F2NetPrompt good = { 0, 0, ids, n_ids }, failed = { 1, 1, ids, n_ids };
  F2NetPrompt twice[2] = { { 0, 0, ids, n_ids }, { 0, 0, ids, n_ids } };
  gboolean batches_images = f2_backend_batches_images (f2_net_backend (net));

  for (guint i = 0; i <= most; i++)
    images[i] = jobs[0].image;
  images[1].size = 16;
  if (most != (batches_images ? MIN (batch, F2_NET_VISION_BATCH) : 1))
    fail ("a context for %u frames takes %u images at once into its vision "
        "tower", batch, most);
  if (most < 2) {
    /* the cpu backend runs a batch's images one at a time */
    g_print ("# %s takes one image at a time into its vision tower\n",
        f2_backend_kind (f2_net_backend (net)));
    expect_refused (f2_net_set_images (net, 2, images, errors, &error), &error,
        "two images at once");
    florence2_context_free (context);
    return;
  }
  expect_refused (f2_net_set_images (net, 0, images, errors, &error), &error,
      "no images");
  expect_refused (f2_net_set_images (net, most + 1, images, errors, &error), &error,
      "more images than the vision tower takes");
  if (!f2_net_set_images (net, 2, images, errors, &error))
    g_error ("two images: %s", error->message);
  if (errors[0] != NULL || errors[1] == NULL)
    fail ("a truncated frame beside a good one: errors %s / %s",
        errors[0] ? errors[0]->message : "none", errors[1] ? errors[1]->message : "none");
  g_clear_error (&errors[0]);
  g_clear_error (&errors[1]);
  expect_refused (f2_net_encode_images (net, 1, &failed, &error), &error,
      "encoding a failed image");
  expect_refused (f2_net_encode_images (net, 2, twice, &error), &error,
      "one slot twice");
  if (!f2_net_encode_images (net, 1, &good, &error))
    fail ("encoding the good image: %s", error->message);
  g_clear_error (&error);
  florence2_context_free (context);
}

typedef struct {
  Florence2Model *model;
  Job *jobs;
  guint first, n, stride, batch;
} Feeder;

static gpointer
feed (gpointer data)
{
  Feeder *f = data;
  Florence2BatchParams batch = { f->batch, 5 * G_GUINT64_CONSTANT (1000000000) };

  for (guint i = f->first; i < f->n; i += f->stride) {
    GError *error = NULL;
    Florence2Output *out = florence2_model_run_batched (f->model, &f->jobs[i].image,
        &f->jobs[i].params, &batch, &error);

    if (out == NULL) {
      fail ("scheduler %s: %s", f->jobs[i].c->case_id, error->message);
      g_clear_error (&error);
    }
    check_same (&f->jobs[i], out, "scheduler");
    florence2_output_free (out);
    g_atomic_int_inc (&frames_fed);
  }
  return NULL;
}

/* @batch threads at once through the model's scheduler */
static void
run_scheduler (Florence2Model *model, Job *jobs, guint n_jobs, guint batch)
{
  Feeder feeders[FLORENCE2_MAX_BATCH];
  GThread *threads[FLORENCE2_MAX_BATCH];
  guint n = MIN (n_jobs, 3 * batch);
  guint64 batches, frames;
  Florence2BatchParams bad[] = { { 0, 0 }, { FLORENCE2_MAX_BATCH + 1, 0 },
    { 2, 11 * G_GUINT64_CONSTANT (1000000000) } };

  for (guint t = 0; t < batch; t++) {
    feeders[t] = (Feeder) { model, jobs, t, n, batch, batch };
    threads[t] = g_thread_new ("feeder", feed, &feeders[t]);
  }
  for (guint t = 0; t < batch; t++)
    g_thread_join (threads[t]);
  florence2_model_batch_counts (model, &batches, &frames);
  g_print ("# scheduler: %" G_GUINT64_FORMAT " frames in %" G_GUINT64_FORMAT
      " batches\n", frames, batches);
  if (frames != n || batches == 0 || frames < batches * 3 / 2)
    fail ("the scheduler ran %" G_GUINT64_FORMAT " frames in %" G_GUINT64_FORMAT
        " batches: no real batching", frames, batches);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    GError *error = NULL;
    Florence2Output *out = florence2_model_run_batched (model, &jobs[0].image,
        &jobs[0].params, &bad[i], &error);
    if (out != NULL || florence2_error_kind (error) != FLORENCE2_ERROR_KIND_SETTINGS)
      fail ("batch size %u, timeout %" G_GUINT64_FORMAT " ns was accepted",
          bad[i].batch_size, bad[i].batch_timeout_ns);
    else
      g_print ("# ok: %s\n", error->message);
    florence2_output_free (out);
    g_clear_error (&error);
  }
}

/* A thread of run_scheduler_fill(): @n_frames frames @pause_us apart, the
 * first once the scheduler has started @after_batches batches */
typedef struct {
  Florence2Model *model;
  const Job *job;
  Florence2RunParams params;
  Florence2BatchParams batch;
  guint n_frames;
  gint64 pause_us;
  guint64 after_batches;
} Filler;

static gpointer
fill_feed (gpointer data)
{
  Filler *f = data;
  guint64 batches = 0, frames;

  while (batches < f->after_batches) {
    g_usleep (1000);
    florence2_model_batch_counts (f->model, &batches, &frames);
  }
  for (guint i = 0; i < f->n_frames; i++) {
    GError *error = NULL;
    Florence2Output *out;

    if (i > 0)
      g_usleep (f->pause_us);
    out = florence2_model_run_batched (f->model, &f->job->image, &f->params,
        &f->batch, &error);
    if (out == NULL) {
      fail ("fill: %s", error->message);
      g_clear_error (&error);
    }
    florence2_output_free (out);
  }
  return NULL;
}

/* A frame that queued while a batch ran waits its batch-timeout for
 * company from the end of that batch, not from its arrival. Batches of 2,
 * timeout T shorter than a batch: A1 and B1 form the first batch; C1
 * arrives while it runs; A2 comes T/4 after the first batch. C1 and A2
 * must share the second batch (counting from C1's arrival, C1 would have
 * run alone as soon as the first batch ended). */
static void
run_scheduler_fill (Florence2Model *model, Job *jobs)
{
  Florence2RunParams params = jobs[0].params;
  Florence2BatchParams alone = { 1, 0 };
  Filler fill[3];
  GThread *threads[3];
  guint64 batches0, frames0, batches, frames;
  gint64 run_us = 0;

  /* forced lengths until one frame takes long enough to wait for */
  for (params.forced_length = 16; params.forced_length <= 512 && run_us < 400000;
      params.forced_length *= 2) {
    GError *error = NULL;
    gint64 t0 = g_get_monotonic_time ();
    Florence2Output *out = florence2_model_run_batched (model, &jobs[0].image,
        &params, &alone, &error);

    run_us = g_get_monotonic_time () - t0;
    if (out == NULL)
      g_error ("fill: %s", error->message);
    florence2_output_free (out);
  }
  params.forced_length /= 2;
  florence2_model_batch_counts (model, &batches0, &frames0);
  for (guint i = 0; i < 3; i++)
    fill[i] = (Filler) { model, &jobs[0], params,
      { 2, (guint64) run_us / 2 * 1000 }, i == 0 ? 2 : 1, run_us / 8,
      i == 2 ? batches0 + 1 : 0 };
  for (guint i = 0; i < 3; i++)
    threads[i] = g_thread_new ("filler", fill_feed, &fill[i]);
  for (guint i = 0; i < 3; i++)
    g_thread_join (threads[i]);
  florence2_model_batch_counts (model, &batches, &frames);
  batches -= batches0;
  frames -= frames0;
  g_print ("# fill: frames of %.0f ms, timeout %.0f ms: %" G_GUINT64_FORMAT
      " frames in %" G_GUINT64_FORMAT " batches\n", run_us / 1000.0,
      run_us / 2000.0, frames, batches);
  if (frames != 4 || batches != 2)
    fail ("fill: %" G_GUINT64_FORMAT " frames in %" G_GUINT64_FORMAT
        " batches, not 4 in 2: a frame queued during a batch did not wait "
        "for company", frames, batches);
}

/* florence2_model_reserve_batch(): sizes out of range are refused; @batch
 * makes the scheduler's working memory now (and a smaller size after it
 * makes none), and the first batch of that size then allocates nothing. */
static void
run_reserve (Florence2Model *model, Job *jobs, guint batch)
{
  F2Backend *backend = florence2_model_backend (model);
  guint bad[] = { 0, FLORENCE2_MAX_BATCH + 1 };
  guint64 before, reserved, after;
  GError *error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    if (florence2_model_reserve_batch (model, bad[i], &error))
      fail ("reserve: a batch of %u was accepted", bad[i]);
    else if (florence2_error_kind (error) != FLORENCE2_ERROR_KIND_SETTINGS)
      fail ("reserve %u: not a settings error: %s", bad[i], error->message);
    g_clear_error (&error);
  }
  before = f2_backend_allocated_bytes (backend, F2_BUFFER_ACTIVATIONS);
  if (!florence2_model_reserve_batch (model, batch + 1, &error)
      || !florence2_model_reserve_batch (model, batch, &error)) {
    fail ("reserve: %s", error->message);
    g_clear_error (&error);
    return;
  }
  reserved = f2_backend_allocated_bytes (backend, F2_BUFFER_ACTIVATIONS);
  if (reserved <= before)
    fail ("reserve: a batch of %u made no working memory (%" G_GUINT64_FORMAT
        " bytes before and after)", batch + 1, before);
  {
    /* one frame per thread, all in one batch */
    Feeder feeders[FLORENCE2_MAX_BATCH + 1];
    GThread *threads[FLORENCE2_MAX_BATCH + 1];

    for (guint t = 0; t <= batch; t++) {
      feeders[t] = (Feeder) { model, jobs, t, batch + 1, batch + 1, batch + 1 };
      threads[t] = g_thread_new ("feeder", feed, &feeders[t]);
    }
    for (guint t = 0; t <= batch; t++)
      g_thread_join (threads[t]);
  }
  after = f2_backend_allocated_bytes (backend, F2_BUFFER_ACTIVATIONS);
  if (after != reserved)
    fail ("reserve: the first batch of %u allocated %" G_GINT64_FORMAT
        " bytes more", batch + 1, (gint64) (after - reserved));
}

/* A reservation while four feeders keep the scheduler busy with batches
 * of two back to back (two frames always wait while two run): it is made
 * between two batches, not once the feeders are done. */
static void
run_reserve_busy (Florence2Model *model, Job *jobs, guint n_jobs, guint batch)
{
  Feeder feeders[4];
  GThread *threads[4];
  guint n = MIN (n_jobs, 12);
  gint before, after;
  GError *error = NULL;

  g_atomic_int_set (&frames_fed, 0);
  for (guint t = 0; t < 4; t++) {
    feeders[t] = (Feeder) { model, jobs, t, n, 4, 2 };
    threads[t] = g_thread_new ("feeder", feed, &feeders[t]);
  }
  while (g_atomic_int_get (&frames_fed) < 2)
    g_usleep (1000);
  before = g_atomic_int_get (&frames_fed);
  if (!florence2_model_reserve_batch (model, batch + 2, &error)) {
    fail ("reserve while busy: %s", error->message);
    g_clear_error (&error);
  }
  after = g_atomic_int_get (&frames_fed);
  for (guint t = 0; t < 4; t++)
    g_thread_join (threads[t]);
  g_print ("# reserve while busy: made after %d of %u frames (%d when asked)\n",
      after, n, before);
  if (after >= (gint) n)
    fail ("reserve while busy: made only once the %u frames were done: it "
        "waited for the scheduler to be idle", n);
}

int
main (int argc, char **argv)
{
  const char *device = argc > 1 ? argv[1] : "reference";
  guint batch = argc > 2 ? (guint) g_ascii_strtoull (argv[2], NULL, 10) : 4;
  guint threads = argc > 3 ? (guint) g_ascii_strtoull (argv[3], NULL, 10) : 0;
  Florence2Model *model;
  F2TestCase *cases;
  Job *jobs;
  guint n_cases, n_jobs;

  f2_test_require_golden_dir ();
  if (batch < 3 || batch > FLORENCE2_MAX_BATCH) {
    g_print ("FAIL: a batch of 3 to %u frames\n", FLORENCE2_MAX_BATCH);
    return 1;
  }
  model = f2_test_load_tiny_model_threads (device, FLORENCE2_PRECISION_FP32, threads);
  g_print ("# %s, batches of %u\n", florence2_model_device_name (model), batch);
  cases = f2_test_load_cases (&n_cases);
  jobs = make_jobs (cases, n_cases, &n_jobs);

  run_singles (model, jobs, n_jobs);
  run_batches (model, jobs, n_jobs, batch);
  run_bad_frames (model, jobs, batch);
  run_net_calls (model, jobs, batch);
  run_scheduler (model, jobs, n_jobs, batch);
  run_scheduler_fill (model, jobs);
  run_reserve (model, jobs, batch);
  run_reserve_busy (model, jobs, n_jobs, batch);

  for (guint i = 0; i < n_jobs; i++) {
    florence2_output_free (jobs[i].single);
    g_free (jobs[i].bgrx);
  }
  g_free (jobs);
  f2_test_free_cases (cases, n_cases);
  florence2_model_unref (model);
  g_print ("# %u frames; %s\n", n_jobs, failures ? "FAIL" : "ok");
  return failures ? 1 : 0;
}
