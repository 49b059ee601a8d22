/* florence2-cli: run one Florence-2 task on images and print one JSON object
 * per image on stdout.
 *
 *   florence2-cli --model DIR --task '<OD>' [--prompt TEXT] [--num-beams N]
 *       [--max-new-tokens N] [--precision auto|fp32|bf16|fp16]
 *       [--device auto|cpu|reference|INDEX|NAME] [--threads N]
 *       [--batch N] [--dump DIR] [--profile] IMAGE...
 *
 * With --batch N the images run N at a time as one batch (the outputs are
 * the same as one at a time; the decoder steps are shared); the JSON lines
 * stay in the order of the images.
 */
#include "florence2.h"
#include "model-net.h"
#include "result.h"
#include "image.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *opt_model = NULL;
static char *opt_task = NULL;
static char *opt_prompt = NULL;
static int opt_num_beams = -1;         /* -1: not given */
static int opt_max_new_tokens = -1;
static char *opt_precision = NULL;
static char *opt_device = NULL;
static int opt_threads = 0;
static char *opt_dump = NULL;
static gboolean opt_profile = FALSE;
static gboolean opt_pretty = FALSE;
static int opt_batch = 1;
static char **opt_images = NULL;

static GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &opt_model,
      "Florence-2 model directory (Hugging Face layout)", "DIR" },
  { "task", 't', 0, G_OPTION_ARG_STRING, &opt_task,
      "Task token or name, e.g. '<OD>' or od (default <CAPTION>)", "TASK" },
  { "prompt", 'p', 0, G_OPTION_ARG_STRING, &opt_prompt,
      "The task's input: a phrase, or a region <loc_x1><loc_y1><loc_x2><loc_y2>", "TEXT" },
  { "num-beams", 0, 0, G_OPTION_ARG_INT, &opt_num_beams,
      "Beam search width; 1 = greedy (default: the model's, 3)", "N" },
  { "max-new-tokens", 0, 0, G_OPTION_ARG_INT, &opt_max_new_tokens,
      "Most tokens to generate (default 1024)", "N" },
  { "precision", 0, 0, G_OPTION_ARG_STRING, &opt_precision,
      "auto (default: fp16 on Vulkan, fp32 on cpu), fp32, bf16 (cpu) or fp16 (Vulkan)", "P" },
  { "device", 'd', 0, G_OPTION_ARG_STRING, &opt_device,
      "auto (default: the first GPU, else cpu), cpu (oneDNN), reference "
      "(plain C), or a Vulkan device index or name", "DEV" },
  { "threads", 0, 0, G_OPTION_ARG_INT, &opt_threads,
      "Threads of the cpu backend (default 0: one per core)", "N" },
  { "batch", 0, 0, G_OPTION_ARG_INT, &opt_batch,
      "Run the images N at a time as one batch (default 1)", "N" },
  { "dump", 0, 0, G_OPTION_ARG_FILENAME, &opt_dump,
      "Write intermediate tensors as safetensors into DIR", "DIR" },
  { "profile", 0, 0, G_OPTION_ARG_NONE, &opt_profile,
      "Print a per-stage profile on stderr", NULL },
  { "pretty", 0, 0, G_OPTION_ARG_NONE, &opt_pretty,
      "Indent the JSON output", NULL },
  { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &opt_images, NULL, "IMAGE..." },
  { NULL }
};

static void
print_profile (Florence2Context *context, const char *image, const Florence2Output *out)
{
  const Florence2Timings *t = &out->timings;
  GArray *stages = f2_net_get_stage_times (florence2_context_net (context));

  g_printerr ("%s: preprocess+vision %.1f ms, encoder %.1f ms, decoder %.1f ms "
      "(%u steps, %.2f ms/step), post-process %.2f ms, total %.1f ms\n", image,
      t->preprocess_ms + t->vision_ms, t->encoder_ms, t->decoder_ms,
      out->decoder_steps, out->decoder_steps ? t->decoder_ms / out->decoder_steps : 0.0,
      t->postprocess_ms, t->total_ms);
  /* device time per stage (per op kind with F2_VULKAN_PROFILE_OPS=1) */
  for (guint i = 0; i < stages->len; i++) {
    const F2NetStageTime *st = &g_array_index (stages, F2NetStageTime, i);
    g_printerr ("  %-28s %10.2f ms\n", st->name, st->ms);
  }
  g_array_unref (stages);
}

/* One JSON line for an image's output (and its profile on stderr) */
static void
print_output (Florence2Context *context, const char *path, const Florence2Output *out)
{
  JsonNode *json;
  char *text;

  json = florence2_output_to_json (out, florence2_context_model (context));
  json_object_set_string_member (json_node_get_object (json), "image", path);
  text = json_to_string (json, opt_pretty);
  printf ("%s\n", text);
  fflush (stdout);
  g_free (text);
  json_node_unref (json);

  if (opt_profile)
    print_profile (context, path, out);
}

static gboolean
run_image (Florence2Context *context, const Florence2RunParams *params,
    const char *path, GError **error)
{
  guint8 *rgb = NULL;
  F2Image image = { 0 };
  Florence2Output *out;
  Florence2RunParams run_params = *params;
  char *dump_path = NULL;
  if (!f2_image_load (path, &image, &rgb, error))
    return FALSE;
  if (opt_dump != NULL) {
    /* DIR/<image name without extension>.safetensors */
    char *base = g_path_get_basename (path);
    char *dot = strrchr (base, '.');
    char *file;
    if (dot != NULL)
      *dot = '\0';
    file = g_strconcat (base, ".safetensors", NULL);
    dump_path = g_build_filename (opt_dump, file, NULL);
    g_free (file);
    g_free (base);
  }
  run_params.dump_path = dump_path;
  out = florence2_context_run (context, &image, &run_params, error);
  g_free (dump_path);
  g_free (rgb);
  if (out == NULL) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  print_output (context, path, out);
  florence2_output_free (out);
  return TRUE;
}

/* Images @paths[0..n-1] as one batch; an image that cannot be read or run
 * fails alone. FALSE when any failed (each one said on stderr). */
static gboolean
run_batch (Florence2Context *context, const Florence2RunParams *params,
    char **paths, guint n)
{
  F2Image images[FLORENCE2_MAX_BATCH];
  Florence2RunParams run_params[FLORENCE2_MAX_BATCH];
  Florence2Output *outputs[FLORENCE2_MAX_BATCH];
  GError *errors[FLORENCE2_MAX_BATCH], *error = NULL;
  guint8 *rgb[FLORENCE2_MAX_BATCH] = { NULL };
  guint index[FLORENCE2_MAX_BATCH], n_ok = 0;
  gboolean ok = TRUE;

  for (guint i = 0; i < n; i++) {
    if (!f2_image_load (paths[i], &images[n_ok], &rgb[n_ok], &error)) {
      g_printerr ("florence2-cli: %s\n", error->message);
      g_clear_error (&error);
      ok = FALSE;
      continue;
    }
    run_params[n_ok] = *params;
    index[n_ok++] = i;
  }
  if (n_ok > 0 && !florence2_context_run_batch (context, n_ok, images,
          run_params, outputs, errors, &error)) {
    g_clear_error (&error);     /* every frame has it */
  }
  for (guint i = 0; i < n_ok; i++) {
    if (outputs[i] != NULL) {
      print_output (context, paths[index[i]], outputs[i]);
    } else {
      g_printerr ("florence2-cli: %s: %s\n", paths[index[i]], errors[i]->message);
      g_clear_error (&errors[i]);
      ok = FALSE;
    }
    florence2_output_free (outputs[i]);
    g_free (rgb[i]);
  }
  return ok;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  GOptionContext *context;
  Florence2ModelParams mp = florence2_model_default_params ();
  Florence2RunParams rp = florence2_run_default_params ();
  const F2TaskInfo *task;
  Florence2Model *model;
  Florence2Context *run_context;
  int status = 0;

  setlocale (LC_ALL, "");
  context = g_option_context_new ("IMAGE... - run a Florence-2 task on images");
  g_option_context_set_summary (context,
      "Prints one JSON object per image on stdout: task, prompt, input_ids, "
      "generated_ids, text, result, image_size, timings_ms.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    goto fail;
  if (opt_model == NULL) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--model DIR is required: a Florence-2 directory with config.json and weights");
    goto fail;
  }
  if (opt_images == NULL || opt_images[0] == NULL) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "no image given: add one or more PNG or JPEG files");
    goto fail;
  }
  task = f2_task_lookup (opt_task ? opt_task : "<CAPTION>");
  if (task == NULL) {
    g_set_error (&error, F2_TASK_ERROR, F2_TASK_ERROR_UNKNOWN_TASK,
        "unknown task '%s': use a task token such as '<OD>' or its name such as od",
        opt_task);
    goto fail;
  }
  if (!f2_precision_parse (opt_precision, &mp.precision, &error))
    goto fail;
  if (opt_threads < 0 || opt_threads > F2_CPU_MAX_THREADS) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--threads must be 0 (one per core) to %d, not %d", F2_CPU_MAX_THREADS,
        opt_threads);
    goto fail;
  }
  mp.threads = (guint) opt_threads;
  /* given values must be in range (the run parameters read 0 as "the
   * default", so 0 is refused here rather than passed on) */
  if (opt_num_beams != -1 && (opt_num_beams < 1 || opt_num_beams > 16)) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--num-beams must be 1..16 (1 = greedy), not %d", opt_num_beams);
    goto fail;
  }
  if (opt_max_new_tokens != -1 && (opt_max_new_tokens < 1 || opt_max_new_tokens > 1024)) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--max-new-tokens must be 1..1024, not %d", opt_max_new_tokens);
    goto fail;
  }
  if (opt_batch < 1 || opt_batch > FLORENCE2_MAX_BATCH) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--batch must be 1..%d, not %d", FLORENCE2_MAX_BATCH, opt_batch);
    goto fail;
  }
  if (opt_batch > 1 && opt_dump != NULL) {
    g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--dump writes one image's tensors at a time: leave out --batch");
    goto fail;
  }
  mp.device = opt_device;
  if (opt_num_beams > 0)
    rp.num_beams = (guint) opt_num_beams;
  if (opt_max_new_tokens > 0)
    rp.max_new_tokens = (guint) opt_max_new_tokens;
  mp.limits.max_beams = MAX (mp.limits.max_beams, rp.num_beams);
  mp.limits.max_decoder_tokens = MAX (mp.limits.max_decoder_tokens, rp.max_new_tokens + 1);
  rp.task = task->task;
  rp.text = opt_prompt;
  {
    /* check the prompt before loading a model */
    char *prompt = f2_task_build_prompt (task->task, opt_prompt, &error);
    if (prompt == NULL)
      goto fail;
    g_free (prompt);
  }

  model = florence2_model_new (opt_model, &mp, &error);
  if (model == NULL)
    goto fail;
  /* one context for every image: its programs are recorded once */
  run_context = florence2_context_new_batch (model, (guint) opt_batch, &error);
  florence2_model_unref (model);
  if (run_context == NULL)
    goto fail;
  for (guint i = 0; opt_images[i] != NULL && opt_batch > 1;) {
    guint n = 0;
    while (n < (guint) opt_batch && opt_images[i + n] != NULL)
      n++;
    if (!run_batch (run_context, &rp, opt_images + i, n))
      status = 1;
    i += n;
  }
  for (guint i = 0; opt_images[i] != NULL && opt_batch == 1; i++) {
    if (!run_image (run_context, &rp, opt_images[i], &error)) {
      g_printerr ("florence2-cli: %s\n", error->message);
      g_clear_error (&error);
      status = 1;
    }
  }
  florence2_context_free (run_context);
  g_option_context_free (context);
  return status;

fail:
  g_printerr ("florence2-cli: %s\n", error->message);
  g_error_free (error);
  g_option_context_free (context);
  return 2;
}
