/* End-to-end benchmark: one Florence-2 frame at the real base (or large)
 * shapes, with random weights, on the selected device: <OD> with a forced
 * output length. Prints per-stage milliseconds, effective GFLOP/s,
 * dispatches and submits per frame, and the device memory allocated per
 * frame after the warm-up frame (which must be zero). With --streams N, N
 * threads share the model, each with a context of its own, and it prints
 * the wall time, throughput, latency and memory of the N streams instead;
 * with --batch B as well, the streams go through the model's batch
 * scheduler (florence2_model_run_batched) in batches of up to B frames;
 * --batch B alone runs B copies of the frame as one batch and prints the
 * per-stage report for the batch.
 * It prints; it never fails on speed.
 *
 *   bench-florence2 [--config DIR] [--device auto|cpu|reference|DEV]
 *                   [--precision auto|fp32|bf16|fp16] [--threads N]
 *                   [--tokens N] [--beams N] [--frames N] [--ops]
 *                   [--streams N [--batch B] [--batch-timeout-ms MS]] */
#include "config.h"
#include "florence2.h"
#include "random-checkpoint.h"
#include "test-common.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *opt_config = NULL;
static char *opt_device = NULL;
static char *opt_precision = NULL;
static int opt_tokens = 20;
static int opt_beams = 1;
static int opt_frames = 2;
static gboolean opt_ops = FALSE;
static int opt_threads = 0;
static int opt_streams = 0;       /* 0: not given, the per-stage report */
static int opt_batch = 1;
static int opt_batch_timeout_ms = 20;

static GOptionEntry entries[] = {
  { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opt_config,
      "Directory with config.json, preprocessor_config.json and the tokenizer "
      "(default: $F2_CONFIGS_DIR/base)", "DIR" },
  { "device", 'd', 0, G_OPTION_ARG_STRING, &opt_device,
      "auto (default), cpu, reference, or a Vulkan device index or name", "DEV" },
  { "precision", 'p', 0, G_OPTION_ARG_STRING, &opt_precision,
      "auto (default), fp32, bf16 (cpu) or fp16 (Vulkan)", "P" },
  { "threads", 0, 0, G_OPTION_ARG_INT, &opt_threads, "Threads of the cpu backend (0 = one per core)", "N" },
  { "tokens", 't', 0, G_OPTION_ARG_INT, &opt_tokens, "Generated tokens per frame (forced, default 20)", "N" },
  { "beams", 'b', 0, G_OPTION_ARG_INT, &opt_beams, "Beams (default 1)", "N" },
  { "frames", 'f', 0, G_OPTION_ARG_INT, &opt_frames, "Timed frames after the warm-up (default 2)", "N" },
  { "ops", 'o', 0, G_OPTION_ARG_NONE, &opt_ops, "Device time per op kind instead of per stage", NULL },
  { "streams", 's', 0, G_OPTION_ARG_INT, &opt_streams,
      "Run N concurrent streams on the shared model, each on its own context, and report their throughput, latency and memory", "N" },
  { "batch", 0, 0, G_OPTION_ARG_INT, &opt_batch,
      "With --streams: gather the streams' frames into batches of up to B; alone: "
      "B copies of the frame as one batch (default 1: no batching)", "B" },
  { "batch-timeout-ms", 0, 0, G_OPTION_ARG_INT, &opt_batch_timeout_ms,
      "With --batch: how long a frame waits for its batch to fill (default 20)", "MS" },
  { NULL }
};

/* Sums the device time of each named stage (or op kind) of the last frame
 * into @totals (name -> double ms). */
static void
add_stage_times (Florence2Context *ctx, GHashTable *totals)
{
  GArray *times = f2_net_get_stage_times (florence2_context_net (ctx));

  for (guint i = 0; i < times->len; i++) {
    const F2NetStageTime *t = &g_array_index (times, F2NetStageTime, i);
    double *ms = g_hash_table_lookup (totals, t->name);
    if (ms == NULL) {
      ms = g_new0 (double, 1);
      g_hash_table_insert (totals, g_strdup (t->name), ms);
    }
    *ms += t->ms;
  }
  g_array_unref (times);
}

static gint
compare_ms_desc (gconstpointer a, gconstpointer b, gpointer totals)
{
  double ta = *(double *) g_hash_table_lookup (totals, *(const char **) a);
  double tb = *(double *) g_hash_table_lookup (totals, *(const char **) b);

  return ta < tb ? 1 : ta > tb ? -1 : 0;
}

static void
print_stage_times (GHashTable *totals, double frames, double gpu_ms)
{
  guint n;
  const char **names = (const char **) g_hash_table_get_keys_as_array (totals, &n);

  if (n == 0)
    return;
  g_qsort_with_data (names, n, sizeof (char *), compare_ms_desc, totals);
  printf ("\n%-28s %10s %7s\n", opt_ops ? "op kind" : "device stage", "ms/frame", "share");
  for (guint i = 0; i < n; i++) {
    double ms = *(double *) g_hash_table_lookup (totals, names[i]);
    printf ("%-28s %10.1f %6.1f%%\n", names[i], ms / frames,
        gpu_ms > 0 ? 100 * ms / gpu_ms : 0.0);
  }
  g_free (names);
}

/* A decoder step reads every decoder weight and the LM head once, and the
 * cross-attention keys and values of every layer: the bytes and the
 * bandwidth they imply at the measured step time. */
static void
print_step_traffic (const char *config_dir, F2Precision precision, double step_ms)
{
  g_autoptr (F2Config) config = f2_config_load_dir (config_dir, NULL);
  double d, ffn, weight_bytes, cross_bytes, total;

  if (config == NULL || step_ms <= 0)
    return;
  d = config->text.d_model;
  ffn = config->text.decoder_ffn_dim;
  weight_bytes = (config->text.decoder_layers * (6 * d * d + 2 * d * ffn)
      + config->text.vocab_size * d) * (precision == F2_PRECISION_FP32 ? 4 : 2);
  /* 577 image tokens and a short prompt; activations are fp32 except fp16 on Vulkan */
  cross_bytes = config->text.decoder_layers * 2.0 * 590 * d *
      (precision == F2_PRECISION_FP16 ? 2 : 4);
  total = weight_bytes + cross_bytes;
  printf ("decoder step reads          %10.1f MB  (weights %.1f MB, cross-attention K/V %.1f MB): %.1f GB/s\n",
      total / 1e6, weight_bytes / 1e6, cross_bytes / 1e6, total / (step_ms * 1e6));
}

static guint64
device_bytes (Florence2Context *ctx)
{
  F2Backend *b = f2_net_backend (florence2_context_net (ctx));
  return f2_backend_allocated_bytes (b, F2_BUFFER_WEIGHTS) +
      f2_backend_allocated_bytes (b, F2_BUFFER_ACTIVATIONS) +
      f2_backend_allocated_bytes (b, F2_BUFFER_HOST);
}

/* With --batch alone: the frame run alone, and how many frames of the
 * batches gave other ids or scores (batching must not change a result) */
static Florence2Output *single_output;
static guint batch_frames, batch_mismatches;

/* One frame on @ctx, or with --batch B (no --streams) B copies of it as one
 * batch: the output of the first, with the vision, encoder and
 * preprocessing times of the whole batch. */
static Florence2Output *
run_frame (Florence2Context *ctx, const F2Image *image,
    const Florence2RunParams *rp, GError **error)
{
  F2Image images[FLORENCE2_MAX_BATCH];
  Florence2RunParams params[FLORENCE2_MAX_BATCH];
  Florence2Output *outputs[FLORENCE2_MAX_BATCH];
  GError *errors[FLORENCE2_MAX_BATCH];
  guint n = (guint) opt_batch;

  if (n == 1)
    return florence2_context_run (ctx, image, rp, error);
  for (guint i = 0; i < n; i++) {
    images[i] = *image;
    params[i] = *rp;
  }
  if (!florence2_context_run_batch (ctx, n, images, params, outputs, errors, error))
    return NULL;
  for (guint i = 0; i < n; i++) {
    batch_frames++;
    if (outputs[i] == NULL
        || !f2_test_arrays_identical (outputs[i]->generated_ids, single_output->generated_ids)
        || !f2_test_arrays_identical (outputs[i]->token_scores, single_output->token_scores))
      batch_mismatches++;
  }
  for (guint i = 1; i < n; i++) {
    if (outputs[i] != NULL) {
      outputs[0]->timings.preprocess_ms += outputs[i]->timings.preprocess_ms;
      outputs[0]->timings.vision_ms += outputs[i]->timings.vision_ms;
      outputs[0]->timings.encoder_ms += outputs[i]->timings.encoder_ms;
      outputs[0]->timings.total_ms = MAX (outputs[0]->timings.total_ms,
          outputs[i]->timings.total_ms);
    }
    florence2_output_free (outputs[i]);
    if (errors[i] != NULL && outputs[0] != NULL) {
      g_propagate_error (error, errors[i]);
      florence2_output_free (outputs[0]);
      outputs[0] = NULL;
    }
    g_clear_error (&errors[i]);
  }
  if (errors[0] != NULL)
    g_propagate_error (error, errors[0]);
  return outputs[0];
}

/* ------------------------------------------------------------ --streams */

/* Every stream warm before the clock starts: each says it is ready, the
 * main thread starts the clock and opens the gate. */
typedef struct {
  GMutex lock;
  GCond cond;
  guint ready;
  gboolean open;
} Gate;

typedef struct {
  Florence2Model *model;
  Florence2Context *ctx;        /* NULL: through the batch scheduler */
  const F2Image *image;
  const Florence2RunParams *params;
  Gate *gate;
  double latency_sum, latency_max;
  double decoder_ms;            /* of its frames' decoder steps */
  guint decoder_steps;
  GError *error;
} Stream;

/* One frame on the stream's context, or through the batch scheduler */
static Florence2Output *
stream_run (Stream *st)
{
  Florence2BatchParams batch = { (guint) opt_batch,
    (guint64) opt_batch_timeout_ms * 1000000 };

  if (st->ctx != NULL)
    return florence2_context_run (st->ctx, st->image, st->params, &st->error);
  return florence2_model_run_batched (st->model, st->image, st->params, &batch,
      &st->error);
}

static void
gate_pass (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->ready++;
  g_cond_broadcast (&gate->cond);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

static void
gate_open_when_ready (Gate *gate, guint n)
{
  g_mutex_lock (&gate->lock);
  while (gate->ready < n)
    g_cond_wait (&gate->cond, &gate->lock);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

static gpointer
stream_thread (gpointer data)
{
  Stream *st = data;
  Florence2Output *out;

  /* the warm-up frame records this context's programs */
  out = stream_run (st);
  florence2_output_free (out);
  gate_pass (st->gate);
  for (int frame = 0; frame < opt_frames && st->error == NULL; frame++) {
    gint64 t0 = g_get_monotonic_time ();
    double ms;

    out = stream_run (st);
    ms = (g_get_monotonic_time () - t0) / 1000.0;
    if (out != NULL) {
      st->decoder_ms += out->timings.decoder_ms;
      st->decoder_steps += out->decoder_steps;
    }
    florence2_output_free (out);
    st->latency_sum += ms;
    st->latency_max = MAX (st->latency_max, ms);
  }
  return NULL;
}

/* N streams, each on its own context of one shared model, every one running
 * --frames frames after its warm-up frame. */
static int
run_streams (Florence2Model *model, const F2Image *image,
    const Florence2RunParams *rp, guint n)
{
  Stream *streams = g_new0 (Stream, n);
  GThread **threads = g_new0 (GThread *, n);
  Gate gate = { 0 };
  F2Backend *b = NULL;
  guint64 weights, working_one = 0, working;
  gint64 t0 = 0, t1;
  double lat_sum = 0, lat_max = 0, wall_s, step_ms = 0;
  guint steps = 0;
  guint64 batches, batched;
  guint frames = n * (guint) opt_frames;
  int rc = 0;

  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  for (guint i = 0; i < n; i++) {
    GError *error = NULL;
    streams[i].model = model;
    streams[i].image = image;
    streams[i].params = rp;
    streams[i].gate = &gate;
    b = florence2_model_backend (model);
    if (opt_batch > 1)
      continue;
    streams[i].ctx = florence2_context_new (model, &error);
    if (streams[i].ctx == NULL) {
      g_printerr ("stream %u: %s\n", i, error->message);
      return 1;
    }
    if (i == 0)
      working_one = f2_backend_allocated_bytes (b, F2_BUFFER_ACTIVATIONS)
          + f2_backend_allocated_bytes (b, F2_BUFFER_HOST);
  }
  for (guint i = 0; i < n; i++)
    threads[i] = g_thread_new ("stream", stream_thread, &streams[i]);
  gate_open_when_ready (&gate, n);
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++)
    g_thread_join (threads[i]);
  t1 = g_get_monotonic_time ();
  for (guint i = 0; i < n; i++) {
    if (streams[i].error != NULL) {
      g_printerr ("stream %u: %s\n", i, streams[i].error->message);
      g_clear_error (&streams[i].error);
      rc = 1;
    }
    lat_sum += streams[i].latency_sum;
    lat_max = MAX (lat_max, streams[i].latency_max);
    step_ms += streams[i].decoder_ms;
    steps += streams[i].decoder_steps;
  }
  if (rc != 0) {
    /* failed frames count no time: a report would show nonsense */
    g_printerr ("streams failed: no figures\n");
    goto out;
  }
  florence2_model_batch_counts (model, &batches, &batched);
  wall_s = (t1 - t0) / 1e6;
  weights = f2_backend_allocated_bytes (b, F2_BUFFER_WEIGHTS);
  /* measured after the warm-up: the working memory grows with the programs
   * each context records, so the first stream's share is taken again here */
  working = f2_backend_allocated_bytes (b, F2_BUFFER_ACTIVATIONS)
      + f2_backend_allocated_bytes (b, F2_BUFFER_HOST);
  printf ("streams                     %10u  (%u frames each after a warm-up frame)\n",
      n, (guint) opt_frames);
  printf ("wall time                   %10.2f s  for %u frames\n", wall_s, frames);
  printf ("throughput                  %10.3f inferences/s\n", frames / MAX (wall_s, 1e-9));
  printf ("latency mean / worst        %10.1f / %.1f ms\n", lat_sum / MAX (frames, 1), lat_max);
  printf ("programs running at once    %10u  (at most)\n", f2_backend_peak_runs (b));
  /* in a batch every frame's decoder time is the batch's */
  printf ("decoder step                %10.2f ms  (mean, for %s)\n",
      step_ms / MAX (steps, 1), opt_batch > 1 ? "a whole batch" : "one frame");
  if (opt_batch > 1)
    printf ("batches                     %10.2f frames per batch  (%" G_GUINT64_FORMAT
        " frames, warm-up included; batch size %d, timeout %d ms)\n",
        (double) batched / MAX (batches, 1), batched, opt_batch, opt_batch_timeout_ms);
  printf ("weights (shared)            %10.1f MB\n", weights / 1e6);
  printf ("working memory, all streams %10.1f MB  (%.1f MB per stream; %.1f MB at the first context's creation)\n",
      working / 1e6, working / 1e6 / n, working_one / 1e6);
out:
  for (guint i = 0; i < n; i++)
    florence2_context_free (streams[i].ctx);
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
  g_free (threads);
  g_free (streams);
  return rc;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  GOptionContext *context = g_option_context_new ("- Florence-2 end-to-end benchmark");
  Florence2ModelParams mp = florence2_model_default_params ();
  Florence2RunParams rp = florence2_run_default_params ();
  Florence2Model *model;
  Florence2Context *ctx;
  char *tmp, *config_dir;
  F2Image image = { 0 };
  guint8 *pixels;
  guint64 bytes_before = 0;
  Florence2Timings sum = { 0 };
  F2NetProfile profile;
  double flops = 0, gpu_ms = 0;
  GHashTable *stage_totals = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  guint dispatches = 0, submits = 0, steps = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  config_dir = opt_config ? g_strdup (opt_config) :
      g_build_filename (g_getenv ("F2_CONFIGS_DIR") ? g_getenv ("F2_CONFIGS_DIR") :
      "../shared/florence2-configs", "base", NULL);
  if (opt_ops)
    g_setenv ("F2_PROFILE_OPS", "1", TRUE);
  mp.device = opt_device;
  if (!f2_precision_parse (opt_precision, &mp.precision, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (opt_threads < 0) {
    g_printerr ("--threads must be 0 or more\n");
    return 2;
  }
  mp.threads = (guint) opt_threads;
  mp.limits.max_image_width = mp.limits.max_image_height = 1920;

  /* random weights with the real shapes */
  tmp = g_dir_make_tmp ("florence2-bench-XXXXXX", &error);
  if (tmp == NULL || !f2_random_checkpoint_write_dir (config_dir, tmp, 1, F2_DTYPE_F16, &error)) {
    g_printerr ("cannot write a random checkpoint for %s: %s\n", config_dir, error->message);
    return 1;
  }
  model = florence2_model_new (tmp, &mp, &error);
  if (model == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  {
    Florence2Context *probe = florence2_context_new (model, &error);
    char *about;
    if (probe == NULL) {
      g_printerr ("%s\n", error->message);
      return 1;
    }
    about = f2_backend_describe (f2_net_backend (florence2_context_net (probe)));
    printf ("model %s (random weights), device %s, %s, %d tokens, %d beam(s)\n",
        config_dir, about, f2_precision_name (florence2_model_precision (model)),
        opt_tokens, opt_beams);
    g_free (about);
    florence2_context_free (probe);
  }

  /* a 1280x720 RGB frame */
  image.format = F2_PIXEL_RGB;
  image.width = 1280;
  image.height = 720;
  image.stride[0] = 1280 * 3;
  image.size = (gsize) 1280 * 720 * 3;
  pixels = g_malloc (image.size);
  for (gsize i = 0; i < image.size; i++)
    pixels[i] = (guint8) ((i * 7) ^ (i >> 11));
  image.data = pixels;
  rp.task = F2_TASK_OD;
  rp.num_beams = (guint) opt_beams;
  rp.forced_length = (guint) opt_tokens;

  if (opt_streams < 0 || opt_streams > 64 || opt_frames < 1 || opt_batch < 1
      || opt_batch > FLORENCE2_MAX_BATCH || opt_batch_timeout_ms < 0
      || opt_batch_timeout_ms > 10000) {
    g_printerr ("--streams must be 1 to 64, --frames at least 1, --batch 1 to %d "
        "and --batch-timeout-ms 0 to 10000\n", FLORENCE2_MAX_BATCH);
    return 2;
  }
  if (opt_streams > 0) {
    int rc = run_streams (model, &image, &rp, (guint) opt_streams);
    florence2_model_unref (model);
    f2_test_remove_tree (tmp);
    return rc;
  }
  ctx = florence2_context_new_batch (model, (guint) opt_batch, &error);
  if (ctx == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  if (opt_batch > 1) {
    single_output = florence2_context_run (ctx, &image, &rp, &error);
    if (single_output == NULL) {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  }
  for (int frame = -1; frame < opt_frames; frame++) {
    Florence2Output *out;
    if (frame == 0)
      bytes_before = device_bytes (ctx);
    out = run_frame (ctx, &image, &rp, &error);
    if (out == NULL) {
      g_printerr ("%s\n", error->message);
      return 1;
    }
    if (frame >= 0) {
      f2_net_get_profile (florence2_context_net (ctx), &profile);
      add_stage_times (ctx, stage_totals);
      sum.preprocess_ms += out->timings.preprocess_ms;
      sum.vision_ms += out->timings.vision_ms;
      sum.encoder_ms += out->timings.encoder_ms;
      sum.decoder_ms += out->timings.decoder_ms;
      sum.total_ms += out->timings.total_ms;
      flops += profile.flops;
      dispatches += profile.dispatches;
      submits += profile.submits;
      steps += out->decoder_steps;
      gpu_ms += profile.preprocess_ms + profile.vision_ms + profile.encoder_ms +
          profile.decoder_ms;
    }
    florence2_output_free (out);
  }

  {
    double n = MAX (opt_frames, 1);
    if (opt_batch > 1)
      printf ("batches of %d copies of the frame: times per batch; the decoder "
          "steps serve all %d sequences\n"
          "frames whose ids and scores equal a single run's: %u of %u\n",
          opt_batch, opt_batch, batch_frames - batch_mismatches, batch_frames);
    printf ("%-28s %10s\n", "stage", opt_batch > 1 ? "ms/batch" : "ms/frame");
    printf ("%-28s %10.1f\n", "preprocess", sum.preprocess_ms / n);
    printf ("%-28s %10.1f\n", "vision (DaViT + projection)", sum.vision_ms / n);
    printf ("%-28s %10.1f\n", "encoder", sum.encoder_ms / n);
    printf ("%-28s %10.1f  (%.2f ms/step, %u steps)\n", "decoder", sum.decoder_ms / n,
        steps ? sum.decoder_ms / steps : 0.0, (guint) (steps / n));
    printf ("%-28s %10.1f\n", "total (wall)", sum.total_ms / n);
    printf ("effective GFLOP/s           %10.2f  (%.1f GFLOP per frame)\n",
        gpu_ms > 0 ? flops / n / (gpu_ms / n * 1e6) : 0.0, flops / n / 1e9);
    printf ("dispatches per frame        %10.0f\n", dispatches / n);
    printf ("submits per frame           %10.0f\n", submits / n);
    printf ("device bytes allocated per frame after warm-up: %" G_GINT64_FORMAT "\n",
        (gint64) ((device_bytes (ctx) - bytes_before) / (guint64) n));
    print_step_traffic (config_dir, florence2_model_precision (model),
        steps ? sum.decoder_ms / steps : 0.0);
    print_stage_times (stage_totals, n, gpu_ms);
  }
  g_hash_table_unref (stage_totals);

  florence2_output_free (single_output);
  florence2_context_free (ctx);
  florence2_model_unref (model);
  f2_test_remove_tree (tmp);
  g_free (tmp);
  g_free (pixels);
  g_free (config_dir);
  g_option_context_free (context);
  /* a batch that changes a result is a bug, not a timing */
  return batch_mismatches > 0 ? 1 : 0;
}
