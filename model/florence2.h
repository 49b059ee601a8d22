/* libflorence2: run Microsoft's Florence-2 on images, on Vulkan, on the CPU
 * (oneDNN) or on the plain-C reference.
 *
 *   Florence2ModelParams mp = florence2_model_default_params ();
 *   Florence2Model *model = florence2_model_new ("Florence-2-base", &mp, &error);
 *   Florence2RunParams rp = florence2_run_default_params ();
 *   rp.task = F2_TASK_OD;
 *   Florence2Output *out = florence2_model_run (model, &image, &rp, &error);
 *   ... out->result (boxes, labels, polygons, text) ...
 *   florence2_output_free (out);
 *   florence2_model_unref (model);
 *
 * A model is reference counted and may be shared by several threads and
 * streams: runs are serialised on it. Nothing here aborts the process; every
 * failure is a GError that says what went wrong and what to do.
 */
#pragma once

#include "backend.h"
#include "net.h"
#include "result.h"
#include "tasks.h"

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _Florence2Model Florence2Model;

typedef struct {
  const char *device;           /* NULL or "auto": the first GPU, else "cpu"; "cpu" (oneDNN),
                                 * "reference" (plain C), or a Vulkan device index or name */
  F2Precision precision;        /* AUTO: the backend's default (fp16 on Vulkan, fp32 on cpu) */
  guint threads;                /* cpu backend: 0 = one per core */
  F2NetLimits limits;
} Florence2ModelParams;

Florence2ModelParams florence2_model_default_params (void);

Florence2Model *florence2_model_new (const char *model_dir,
    const Florence2ModelParams *params, GError **error);
Florence2Model *florence2_model_ref (Florence2Model *model);
void florence2_model_unref (Florence2Model *model);

const char *florence2_model_dir (Florence2Model *model);
const char *florence2_model_device_name (Florence2Model *model);
F2Precision florence2_model_precision (Florence2Model *model);
/* The underlying network, for dumps and benchmarks; use under
 * florence2_model_lock() when the model is shared. */
F2Net *florence2_model_net (Florence2Model *model);
void florence2_model_lock (Florence2Model *model);
void florence2_model_unlock (Florence2Model *model);

typedef struct {
  F2Task task;
  const char *text;             /* the task's input: a phrase, or a <loc_..> region; NULL if none */
  guint num_beams;              /* default: the model's (3) */
  guint max_new_tokens;         /* default 1024 */
  /* benchmarks: generate exactly this many tokens (no EOS stop); 0 = off */
  guint forced_length;
  /* debugging: write the intermediate tensors (pixel_values,
   * vision_tower_out, image_features, inputs_embeds,
   * encoder_last_hidden_state, decoder_logits_step0: the golden files'
   * names) into this safetensors file; NULL = off */
  const char *dump_path;
} Florence2RunParams;

Florence2RunParams florence2_run_default_params (void);

typedef struct {
  double preprocess_ms, vision_ms, encoder_ms, decoder_ms, postprocess_ms, total_ms;
} Florence2Timings;

typedef struct {
  F2Task task;
  char *prompt;                 /* the prompt text after task substitution */
  GArray *input_ids;            /* gint32 */
  GArray *generated_ids;        /* gint32: the full sequence, decoder start token first */
  GArray *token_scores;         /* float per generated token after the start (beam search) */
  float sequence_score;
  char *text;                   /* decoded, special tokens kept */
  F2Result *result;             /* post-processed, in image pixels */
  int image_width, image_height;
  guint decoder_steps;
  Florence2Timings timings;
} Florence2Output;

/* Run one task on one image. */
Florence2Output *florence2_model_run (Florence2Model *model,
    const F2Image *image, const Florence2RunParams *params, GError **error);
void florence2_output_free (Florence2Output *output);

/* The JSON object florence2-cli prints for one image: task, prompt,
 * input_ids, generated_ids, text, result, image_size, timings_ms, ... */
JsonNode *florence2_output_to_json (const Florence2Output *output,
    Florence2Model *model);


/* Log messages of the library go here (default: GLib's g_log, domain
 * "florence2"). */
typedef void (*Florence2LogFunc) (GLogLevelFlags level, const char *message,
    gpointer user_data);
void florence2_log_set (Florence2LogFunc func, gpointer user_data);
void f2_log (GLogLevelFlags level, const char *format, ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
