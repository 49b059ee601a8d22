/* Running frames: prompt, image, encoder, generation, post-processing. One
 * frame (florence2_context_run) is a batch of one; in a batch every frame
 * has its own slot in the network and its own generator, and the frames'
 * sequences go through each decoder step together. A frame leaves as soon
 * as its sequence ends, and its output is handed over at once. */
#include "florence2-private.h"
#include "model-net.h"
#include "postprocess.h"
#include "result.h"
#include "tasks.h"

#include <math.h>
#include <string.h>

void
florence2_output_free (Florence2Output *output)
{
  if (output == NULL)
    return;
  g_free (output->prompt);
  if (output->input_ids)
    g_array_unref (output->input_ids);
  if (output->generated_ids)
    g_array_unref (output->generated_ids);
  if (output->token_scores)
    g_array_unref (output->token_scores);
  g_free (output->text);
  f2_result_free (output->result);
  g_free (output);
}

static double
ms_since (gint64 start)
{
  return (g_get_monotonic_time () - start) / 1000.0;
}

/* The first step's logits of decoder row @row, once per frame: NaN or
 * infinity there would otherwise come out as a sequence of <pad> or <s>. */
static gboolean
check_logits_finite (Florence2Model *model, F2Net *net, guint row, GError **error)
{
  guint32 n = model->config->text.vocab_size, bad = n;
  float *logits = g_new (float, n);

  if (!f2_net_read_logits (net, row, logits, error)) {
    g_free (logits);
    return FALSE;
  }
  for (guint32 i = 0; i < n && bad == n; i++)
    if (!isfinite (logits[i]))
      bad = i;
  g_free (logits);
  if (bad < n) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_FAILED,
        "the model's output is not finite (the logit of token %u at the first "
        "decoder step is NaN or infinite); the weights or the precision cannot "
        "represent this input: try precision fp32, or check the model's weights",
        bad);
    return FALSE;
  }
  return TRUE;
}

/* The output of a frame before it runs: prompt and ids checked against the
 * model's limits, and the generation settings in @gen. */
static Florence2Output *
frame_prepare (Florence2Model *model, const F2Image *image,
    const Florence2RunParams *params, F2GenerateParams *gen, GError **error)
{
  Florence2Output *out;

  if (f2_task_info (params->task) == NULL) {
    g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNKNOWN_TASK, "unknown task %d",
        params->task);
    return NULL;
  }
  out = g_new0 (Florence2Output, 1);
  out->task = params->task;
  out->image_width = (int) image->width;
  out->image_height = (int) image->height;
  out->prompt = f2_task_build_prompt (params->task, params->text, error);
  if (out->prompt == NULL)
    goto fail;
  out->input_ids = f2_tokenizer_encode (model->tokenizer, out->prompt, error);
  if (out->input_ids == NULL)
    goto fail;
  if (out->input_ids->len > model->limits.max_prompt_tokens) {
    g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNEXPECTED_TEXT,
        "the prompt is %u tokens long; at most %u fit: shorten the text",
        out->input_ids->len, model->limits.max_prompt_tokens);
    goto fail;
  }

  *gen = model->generation;
  if (params->num_beams > 0)
    gen->num_beams = params->num_beams;
  gen->max_new_tokens = params->max_new_tokens;
  if (params->forced_length > 0) {
    /* fixed-length runs for benchmarks: no EOS can stop them early */
    gen->max_new_tokens = params->forced_length;
    gen->eos_token_id = -1;
  }
  if (gen->num_beams > model->limits.max_beams ||
      gen->max_new_tokens + 1 > model->limits.max_decoder_tokens) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID,
        "num-beams %u / max-new-tokens %u exceed what this model was loaded "
        "for (%u beams, %u tokens): load it with larger limits", gen->num_beams,
        gen->max_new_tokens, model->limits.max_beams,
        model->limits.max_decoder_tokens - 1);
    goto fail;
  }
  return out;

fail:
  florence2_output_free (out);
  return NULL;
}

/* Frame @slot's first decoder step alone and every tensor into its dump */
static gboolean
frame_dump (Florence2Model *model, F2Net *net, guint slot, const char *path,
    GError **error)
{
  gint32 start_token = model->generation.decoder_start_token_id, best;
  F2StepGroup group = { slot, { .rows = 1, .tokens = &start_token, .out_ids = &best } };

  return f2_net_step_batch (net, 1, &group, error)
      && f2_dump_tensors (model, net, path, error);
}

/* The generated ids into text and the task's result */
static gboolean
frame_finish (Florence2Model *model, F2Net *net, Florence2Output *out,
    F2Generation *generation, gint64 start, GError **error)
{
  const F2TaskInfo *task = f2_task_info (out->task);
  gint64 t = g_get_monotonic_time ();
  F2NetProfile profile;

  f2_net_get_profile (net, &profile);
  out->generated_ids = g_array_ref (generation->ids);
  out->token_scores = g_array_ref (generation->token_scores);
  out->sequence_score = generation->sequence_score;
  out->decoder_steps = generation->steps;
  out->text = f2_tokenizer_decode (model->tokenizer,
      (const gint32 *) out->generated_ids->data, out->generated_ids->len, FALSE);
  out->result = f2_postprocess (task->token, task->postprocess, out->text,
      out->image_width, out->image_height, error);
  if (out->result == NULL)
    return FALSE;
  /* the decoder steps this frame shared with the others of its batch */
  out->timings.decoder_ms = profile.decoder_ms;
  out->timings.postprocess_ms = ms_since (t);
  out->timings.total_ms = ms_since (start);
  return TRUE;
}

typedef struct {
  Florence2Output *out;         /* NULL once handed over */
  F2Generator *gen;
} Frame;

typedef struct {
  Florence2Model *model;
  F2Net *net;
  Frame *frames;
  guint n_frames, n_active;
  F2FrameDone done;
  gpointer user_data;
  gint64 start;
} Batch;

/* Frame @i leaves the batch, with its output or @error */
static void
frame_done (Batch *b, guint i, GError *error)
{
  Frame *f = &b->frames[i];
  Florence2Output *out = f->out;

  if (error != NULL) {
    florence2_output_free (out);
    out = NULL;
  }
  f->out = NULL;
  g_clear_pointer (&f->gen, f2_generator_free);
  b->n_active--;
  b->done (i, out, error, b->user_data);
}

/* Frames @idx[0..@n-1] through the vision tower together, then their
 * prompts through the encoder together, each into its slot. A frame's
 * preprocessing, vision and encoder times are its share of the batch's. */
static void
encode_frames (Batch *b, const guint *idx, guint n, const F2Image *images,
    const Florence2RunParams *params)
{
  F2Image chunk[F2_NET_VISION_BATCH];
  GError *errors[F2_NET_VISION_BATCH] = { NULL };
  F2NetPrompt prompts[F2_NET_VISION_BATCH];
  F2NetProfile before, vision, after;
  GError *fatal = NULL;
  guint ok = 0;

  for (guint i = 0; i < n; i++)
    chunk[i] = images[idx[i]];
  f2_net_get_profile (b->net, &before);
  if (f2_net_set_images (b->net, n, chunk, errors, &fatal)) {
    for (guint i = 0; i < n; i++) {
      Florence2Output *out = b->frames[idx[i]].out;

      if (errors[i] == NULL)
        prompts[ok++] = (F2NetPrompt) { i, idx[i],
          (const gint32 *) out->input_ids->data, out->input_ids->len };
    }
    f2_net_get_profile (b->net, &vision);
    if (ok > 0)
      f2_net_encode_images (b->net, ok, prompts, &fatal);
  }
  f2_net_get_profile (b->net, &after);
  for (guint i = 0; i < n; i++) {
    Florence2Output *out = b->frames[idx[i]].out;
    GError *e = errors[i];

    if (e == NULL && fatal != NULL)
      e = g_error_copy (fatal);
    if (e == NULL) {
      out->timings.preprocess_ms = (vision.preprocess_ms - before.preprocess_ms) / ok;
      out->timings.vision_ms = (vision.vision_ms - before.vision_ms) / ok;
      out->timings.encoder_ms = (after.encoder_ms - vision.encoder_ms) / ok;
      if (params[idx[i]].dump_path != NULL)
        frame_dump (b->model, b->net, idx[i], params[idx[i]].dump_path, &e);
    }
    if (e != NULL)
      frame_done (b, idx[i], e);
  }
  g_clear_error (&fatal);
}

static void
start_frames (Batch *b, const F2Image *images, const Florence2RunParams *params)
{
  guint idx[F2_NET_VISION_BATCH], n = 0, most = f2_net_vision_batch (b->net);

  for (guint i = 0; i < b->n_frames; i++) {
    Frame *f = &b->frames[i];
    F2GenerateParams gen;
    GError *e = NULL;

    b->n_active++;
    f->out = frame_prepare (b->model, &images[i], &params[i], &gen, &e);
    if (f->out != NULL && params[i].dump_path != NULL && b->n_frames > 1)
      g_set_error (&e, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID,
          "tensors are dumped for single runs only, not in a batch");
    /* a dump also holds every vision stage: keep copies from now on */
    if (e == NULL && params[i].dump_path != NULL)
      f2_net_keep_vision_stages (b->net, &e);
    if (e == NULL)
      f->gen = f2_generator_new (&gen, b->model->limits.max_banned, &e);
    if (e != NULL) {
      frame_done (b, i, e);
      continue;
    }
    idx[n++] = i;
    if (n == most) {
      encode_frames (b, idx, n, images, params);
      n = 0;
    }
  }
  if (n > 0)
    encode_frames (b, idx, n, images, params);
}

/* One position for every frame still in the batch. FALSE: the device
 * failed, in @error. */
static gboolean
decode_position (Batch *b, F2StepGroup *groups, GError **error)
{
  guint n_groups = 0, row = 0;
  guint position = 0;

  for (guint i = 0; i < b->n_frames; i++) {
    Frame *f = &b->frames[i];
    gboolean needs_step;
    GError *e = NULL;

    if (f->gen == NULL)
      continue;
    if (!f2_generator_prepare (f->gen, &groups[n_groups].step, &needs_step, &e))
      frame_done (b, i, e);
    else if (needs_step)
      groups[n_groups++].slot = i;
  }
  if (n_groups > 0) {
    position = groups[0].step.position;
    if (!f2_net_step_batch (b->net, n_groups, groups, error))
      return FALSE;
  }
  for (guint g = 0; g < n_groups && position == 0; g++) {
    GError *e = NULL;

    if (!check_logits_finite (b->model, b->net, row, &e))
      frame_done (b, groups[g].slot, e);
    row += groups[g].step.rows;
  }
  for (guint i = 0; i < b->n_frames; i++) {
    Frame *f = &b->frames[i];
    GError *e = NULL;

    if (f->gen == NULL)
      continue;
    if (!f2_generator_advance (f->gen, &e)) {
      frame_done (b, i, e);
    } else if (f2_generator_finished (f->gen)) {
      F2Generation *generation = f2_generator_finish (f->gen);
      f->gen = NULL;
      frame_finish (b->model, b->net, f->out, generation, b->start, &e);
      f2_generation_free (generation);
      frame_done (b, i, e);
    }
  }
  return TRUE;
}

gboolean
f2_run_frames (Florence2Model *model, F2Net *net, guint n_frames,
    const F2Image *images, const Florence2RunParams *params, F2FrameDone done,
    gpointer user_data, GError **error)
{
  Batch b = { model, net, NULL, n_frames, 0, done, user_data,
    g_get_monotonic_time () };
  F2StepGroup *groups;
  GError *fatal = NULL;

  g_return_val_if_fail (n_frames > 0 && n_frames <= f2_net_slots (net), FALSE);

  b.frames = g_new0 (Frame, n_frames);
  groups = g_new0 (F2StepGroup, n_frames);
  f2_net_reset_profile (net);
  start_frames (&b, images, params);
  while (b.n_active > 0 && fatal == NULL)
    decode_position (&b, groups, &fatal);
  /* the device failed: every frame still in the batch failed with it */
  for (guint i = 0; i < n_frames && fatal != NULL; i++)
    if (b.frames[i].out != NULL)
      frame_done (&b, i, g_error_copy (fatal));
  g_free (groups);
  g_free (b.frames);
  if (fatal != NULL) {
    g_propagate_error (error, fatal);
    return FALSE;
  }
  return TRUE;
}

/* ------------------------------------------------------------ public calls */

typedef struct {
  Florence2Output **outputs;
  GError **errors;
} Collect;

static void
collect_frame (guint index, Florence2Output *output, GError *error, gpointer user_data)
{
  Collect *c = user_data;

  c->outputs[index] = output;
  c->errors[index] = error;
}

Florence2Output *
florence2_context_run (Florence2Context *context, const F2Image *image,
    const Florence2RunParams *params, GError **error)
{
  Florence2Output *out = NULL;
  GError *frame_error = NULL;
  Collect c = { &out, &frame_error };

  g_return_val_if_fail (context != NULL && image != NULL && params != NULL, NULL);

  /* a failed batch hands its error to the frame as well */
  if (!f2_run_frames (context->model, context->net, 1, image, params,
          collect_frame, &c, NULL) && frame_error == NULL)
    g_set_error (&frame_error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_FAILED,
        "the frame did not run");
  if (frame_error != NULL)
    g_propagate_error (error, frame_error);
  return out;
}

gboolean
florence2_context_run_batch (Florence2Context *context, guint n_frames,
    const F2Image *images, const Florence2RunParams *params,
    Florence2Output **outputs, GError **errors, GError **error)
{
  Collect c = { outputs, errors };
  guint slots;

  g_return_val_if_fail (context != NULL, FALSE);
  slots = f2_net_slots (context->net);
  if (n_frames == 0 || n_frames > slots || images == NULL || params == NULL
      || outputs == NULL || errors == NULL) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID,
        "a batch of %u frames on a context made for 1 to %u "
        "(florence2_context_new_batch), with images, parameters, outputs and "
        "errors for each", n_frames, slots);
    return FALSE;
  }
  for (guint i = 0; i < n_frames; i++) {
    outputs[i] = NULL;
    errors[i] = NULL;
  }
  return f2_run_frames (context->model, context->net, n_frames, images, params,
      collect_frame, &c, error);
}
