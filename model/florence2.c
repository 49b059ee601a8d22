/* The library's front door: load a model directory onto a device, run a
 * task on an image, produce the reference's outputs. */
#include "florence2.h"
#include "backend.h"
#include "config.h"
#include "generate.h"
#include "loader-util.h"
#include "model-net.h"
#include "net.h"
#include "postprocess.h"
#include "result.h"
#include "safetensors.h"
#include "tasks.h"
#include "tokenizer.h"
#include "weights.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

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
};

struct _Florence2Context {
  Florence2Model *model;
  F2Net *net;
};

/* ------------------------------------------------------------------- log */

static Florence2LogFunc log_func = NULL;
static gpointer log_data = NULL;

void
florence2_log_set (Florence2LogFunc func, gpointer user_data)
{
  log_func = func;
  log_data = user_data;
}

static void G_GNUC_PRINTF (2, 3)
f2_log (GLogLevelFlags level, const char *format, ...)
{
  va_list args;
  char *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  if (log_func != NULL)
    log_func (level, message, log_data);
  else
    g_log ("florence2", level, "%s", message);
  g_free (message);
}

/* ----------------------------------------------------------------- errors */

Florence2ErrorKind
florence2_error_kind (const GError *error)
{
  if (error == NULL)
    return FLORENCE2_ERROR_KIND_OTHER;
  if (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
      || g_error_matches (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_NOT_FOUND))
    return FLORENCE2_ERROR_KIND_NOT_FOUND;
  if (error->domain == G_FILE_ERROR || error->domain == F2_CONFIG_ERROR
      || error->domain == F2_CHECKPOINT_ERROR || error->domain == F2_TOKENIZER_ERROR)
    return g_error_matches (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_INVALID_TEXT) ?
        FLORENCE2_ERROR_KIND_INPUT : FLORENCE2_ERROR_KIND_MODEL;
  if (error->domain == F2_SETTINGS_ERROR)
    return FLORENCE2_ERROR_KIND_SETTINGS;
  if (error->domain == F2_TASK_ERROR || error->domain == F2_POSTPROCESS_ERROR)
    return FLORENCE2_ERROR_KIND_INPUT;
  if (error->domain == F2_BACKEND_ERROR) {
    switch ((F2BackendError) error->code) {
      case F2_BACKEND_ERROR_OUT_OF_MEMORY:
        return FLORENCE2_ERROR_KIND_OUT_OF_MEMORY;
      case F2_BACKEND_ERROR_INVALID:
        /* what reaches a backend unchecked: a frame the limits do not allow */
        return FLORENCE2_ERROR_KIND_INPUT;
      default:
        return FLORENCE2_ERROR_KIND_DEVICE;
    }
  }
  return FLORENCE2_ERROR_KIND_OTHER;
}

/* ----------------------------------------------------------------- model */

Florence2ModelParams
florence2_model_default_params (void)
{
  Florence2ModelParams p = {
    .device = NULL,
    .precision = F2_PRECISION_AUTO,
    .threads = 0,
    .limits = f2_net_default_limits (),
  };
  return p;
}

Florence2RunParams
florence2_run_default_params (void)
{
  Florence2RunParams p = {
    .task = F2_TASK_CAPTION,
    .text = NULL,
    .num_beams = 0,
    .max_new_tokens = 1024,
  };
  return p;
}

Florence2Model *
florence2_model_new (const char *model_dir, const Florence2ModelParams *params,
    GError **error)
{
  Florence2ModelParams defaults = florence2_model_default_params ();
  Florence2Model *model;
  F2Weights *weights;
  gint64 start = g_get_monotonic_time ();

  if (params == NULL)
    params = &defaults;
  /* missing, a dangling link or a file: each said as it is */
  if (!f2_model_dir_check (model_dir, error))
    return NULL;

  model = g_new0 (Florence2Model, 1);
  model->ref_count = 1;
  g_mutex_init (&model->idle_lock);
  model->idle_nets = g_ptr_array_new_with_free_func ((GDestroyNotify) f2_net_free);
  model->dir = g_strdup (model_dir);
  model->precision = params->precision;
  model->limits = params->limits;

  model->config = f2_config_load_dir (model_dir, error);
  if (model->config == NULL)
    goto fail;
  model->generation = f2_config_generate_params (model->config);
  model->tokenizer = f2_tokenizer_new_from_dir (model_dir, error);
  if (model->tokenizer == NULL)
    goto fail;

  model->backend = f2_backend_open (params->device, params->precision,
      params->threads, error);
  if (model->backend == NULL)
    goto fail;
  model->precision = f2_backend_precision (model->backend);

  weights = f2_weights_open_dir (model_dir, error);
  if (weights == NULL)
    goto fail;
  model->net_model = f2_net_model_new (model->backend, model->config, weights,
      &model->limits, error);
  /* the weights live on the device now: drop the mapped file */
  f2_weights_close (weights);
  if (model->net_model == NULL)
    goto fail;

  f2_log (G_LOG_LEVEL_INFO, "loaded %s on %s (%s) in %.0f ms", model_dir,
      f2_backend_name (model->backend),
      f2_precision_name (model->precision), (g_get_monotonic_time () - start) / 1000.0);
  return model;

fail:
  g_prefix_error (error, "cannot load Florence-2 model from %s: ", model_dir);
  florence2_model_unref (model);
  return NULL;
}

Florence2Model *
florence2_model_ref (Florence2Model *model)
{
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
florence2_model_unref (Florence2Model *model)
{
  if (model == NULL || !g_atomic_int_dec_and_test (&model->ref_count))
    return;
  g_ptr_array_unref (model->idle_nets);
  f2_net_model_free (model->net_model);
  f2_backend_free (model->backend);
  if (model->tokenizer)
    f2_tokenizer_free (model->tokenizer);
  f2_config_free (model->config);
  g_mutex_clear (&model->idle_lock);
  g_free (model->dir);
  g_free (model);
}

const char *
florence2_model_dir (Florence2Model *model)
{
  return model->dir;
}

const char *
florence2_model_device_name (Florence2Model *model)
{
  return f2_backend_name (model->backend);
}

F2Precision
florence2_model_precision (Florence2Model *model)
{
  return model->precision;
}

/* --------------------------------------------------------------- context */

Florence2Context *
florence2_context_new (Florence2Model *model, GError **error)
{
  Florence2Context *context;
  F2Net *net = NULL;

  g_return_val_if_fail (model != NULL, NULL);

  /* a freed context's state is taken over as it is: its programs stay
   * recorded, so a stream that replaces another starts warm */
  g_mutex_lock (&model->idle_lock);
  if (model->idle_nets->len > 0)
    net = g_ptr_array_steal_index_fast (model->idle_nets, model->idle_nets->len - 1);
  g_mutex_unlock (&model->idle_lock);
  if (net == NULL) {
    net = f2_net_new (model->net_model, error);
    if (net == NULL) {
      g_prefix_error (error, "cannot create a context on the Florence-2 model "
          "from %s: ", model->dir);
      return NULL;
    }
  }
  context = g_new0 (Florence2Context, 1);
  context->model = florence2_model_ref (model);
  context->net = net;
  return context;
}

void
florence2_context_free (Florence2Context *context)
{
  Florence2Model *model;

  if (context == NULL)
    return;
  model = context->model;
  /* the device memory stays with the model, for the next context */
  g_mutex_lock (&model->idle_lock);
  g_ptr_array_add (model->idle_nets, context->net);
  g_mutex_unlock (&model->idle_lock);
  g_free (context);
  florence2_model_unref (model);
}

Florence2Model *
florence2_context_model (Florence2Context *context)
{
  return context->model;
}

F2Net *
florence2_context_net (Florence2Context *context)
{
  return context->net;
}

/* ------------------------------------------------------------------- run */

typedef struct {
  F2Net *net;
  guint forced_length;          /* benchmarks: never pick EOS */
} StepContext;

/* The first step's logits, once per frame: NaN or infinity there would
 * otherwise come out as a sequence of <pad> or <s>. */
static gboolean
check_logits_finite (F2Net *net, GError **error)
{
  guint64 n = f2_net_tensor_size (net, F2_NET_LOGITS), bad = n;
  float *logits;

  if (n == 0)
    return TRUE;
  logits = g_new (float, n);
  if (!f2_net_read_tensor (net, F2_NET_LOGITS, logits, error)) {
    g_free (logits);
    return FALSE;
  }
  for (guint64 i = 0; i < n && bad == n; i++)
    if (!isfinite (logits[i]))
      bad = i;
  g_free (logits);
  if (bad < n) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_FAILED,
        "the model's output is not finite (the logit of token %" G_GUINT64_FORMAT
        " at the first decoder step is NaN or infinite); the weights or the "
        "precision cannot represent this input: try precision fp32, or check "
        "the model's weights", bad);
    return FALSE;
  }
  return TRUE;
}

static gboolean
net_step (gpointer user_data, const F2Step *step, GError **error)
{
  StepContext *ctx = user_data;
  return f2_net_step (ctx->net, step, error)
      && (step->position != 0 || check_logits_finite (ctx->net, error));
}

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

/* Shape of a dumped tensor, batch dimension first as in the golden files. */
static guint
dump_shape (const Florence2Model *model, F2NetTensor which, guint64 n, guint64 *shape)
{
  const F2Config *c = model->config;

  switch (which) {
    case F2_NET_PIXEL_VALUES:
      shape[0] = 1; shape[1] = 3; shape[2] = c->preprocess.height; shape[3] = c->preprocess.width;
      return 4;
    case F2_NET_VISION_OUT:
      shape[0] = 1; shape[1] = n / c->vision.dim_embed[3]; shape[2] = c->vision.dim_embed[3];
      return 3;
    case F2_NET_LOGITS:
      shape[0] = 1; shape[1] = 1; shape[2] = n;
      return 3;
    default:
      shape[0] = 1; shape[1] = n / c->vision.projection_dim; shape[2] = c->vision.projection_dim;
      return 3;
  }
}

#define DUMP_MAX_TENSORS (6 + 2 * F2_NET_STAGES)

/* Tensors of a dump: the F2Tensor views and the buffers and names they own */
typedef struct {
  F2Tensor tensors[DUMP_MAX_TENSORS];
  float *data[DUMP_MAX_TENSORS];
  char *names[DUMP_MAX_TENSORS];
  guint n;
} Dump;

/* A new float32 tensor of @numel values and shape @shape in @dump; returns
 * its buffer, for the caller to fill. */
static float *
dump_add (Dump *dump, const char *name, guint ndim, const guint64 *shape, guint64 numel)
{
  F2Tensor *t = &dump->tensors[dump->n];

  g_assert (dump->n < DUMP_MAX_TENSORS);
  memset (t, 0, sizeof *t);
  dump->names[dump->n] = g_strdup (name);
  dump->data[dump->n] = g_new (float, numel);
  t->name = dump->names[dump->n];
  t->dtype = F2_DTYPE_F32;
  t->ndim = ndim;
  memcpy (t->shape, shape, ndim * sizeof (guint64));
  t->numel = numel;
  t->data = dump->data[dump->n];
  t->nbytes = numel * sizeof (float);
  return dump->data[dump->n++];
}

/* Writes the tensors of the current frame into @path; called right after
 * the first decoder step so that the logits are those of step 0. */
static gboolean
dump_tensors (Florence2Context *context, const char *path, GError **error)
{
  static const F2NetTensor which[] = {
    F2_NET_PIXEL_VALUES, F2_NET_VISION_OUT, F2_NET_IMAGE_FEATURES,
    F2_NET_INPUTS_EMBEDS, F2_NET_ENCODER_OUT, F2_NET_LOGITS,
  };
  Dump dump = { 0 };
  gboolean ok = TRUE;
  char *dir = g_path_get_dirname (path);

  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
        "cannot create dump directory %s: %s", dir, g_strerror (errno));
    g_free (dir);
    return FALSE;
  }
  g_free (dir);
  for (guint i = 0; i < G_N_ELEMENTS (which) && ok; i++) {
    guint64 n = f2_net_tensor_size (context->net, which[i]), shape[4];
    guint ndim;
    if (n == 0)
      continue;
    ndim = dump_shape (context->model, which[i], n, shape);
    ok = f2_net_read_tensor (context->net, which[i], dump_add (&dump,
            which[i] == F2_NET_LOGITS ? "decoder_logits_step0" :
            f2_net_tensor_name (which[i]), ndim, shape, n), error);
  }
  /* every vision stage in full, after its patch embedding and after its
   * blocks (the golden files hold their first 25 rows as stageN_*_rows0_24) */
  for (guint s = 0; s < F2_NET_STAGES && ok; s++) {
    for (guint after = 0; after < 2 && ok; after++) {
      guint32 grid, channels;
      guint64 n = f2_net_vision_stage_size (context->net, s, &grid, &channels);
      guint64 shape[3] = { 1, (guint64) grid * grid, channels };
      char *name = g_strdup_printf ("stage%u_%s", s + 1, after ? "out" : "conv_out");
      if (n > 0)
        ok = f2_net_read_vision_stage (context->net, s, after,
            dump_add (&dump, name, 3, shape, n), error);
      g_free (name);
    }
  }
  if (ok)
    ok = f2_safetensors_write (path, dump.tensors, dump.n, NULL, error);
  for (guint i = 0; i < dump.n; i++) {
    g_free (dump.data[i]);
    g_free (dump.names[i]);
  }
  return ok;
}

Florence2Output *
florence2_context_run (Florence2Context *context, const F2Image *image,
    const Florence2RunParams *params, GError **error)
{
  Florence2Model *model = context->model;
  F2Net *net = context->net;
  const F2TaskInfo *task = f2_task_info (params->task);
  F2GenerateParams gen = model->generation;
  Florence2Output *out;
  F2Generation *generation = NULL;
  StepContext ctx = { net, params->forced_length };
  F2NetProfile profile;
  gint64 start = g_get_monotonic_time (), t;
  gboolean ok;

  if (task == NULL) {
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

  if (params->num_beams > 0)
    gen.num_beams = params->num_beams;
  gen.max_new_tokens = params->max_new_tokens;
  if (params->forced_length > 0) {
    /* fixed-length runs for benchmarks: no EOS can stop them early */
    gen.max_new_tokens = params->forced_length;
    gen.eos_token_id = -1;
  }
  if (gen.num_beams > model->limits.max_beams ||
      gen.max_new_tokens + 1 > model->limits.max_decoder_tokens) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID,
        "num-beams %u / max-new-tokens %u exceed what this model was loaded "
        "for (%u beams, %u tokens): load it with larger limits", gen.num_beams,
        gen.max_new_tokens, model->limits.max_beams,
        model->limits.max_decoder_tokens - 1);
    goto fail;
  }

  f2_net_reset_profile (net);
  /* a dump also holds every vision stage: keep copies from now on */
  ok = params->dump_path == NULL || f2_net_keep_vision_stages (net, error);
  ok = ok && f2_net_set_image (net, image, error) &&
      f2_net_encode (net, (const gint32 *) out->input_ids->data,
      out->input_ids->len, error);
  if (ok && params->dump_path != NULL) {
    /* step 0 alone first, so the dump holds the first step's logits */
    gint32 start_token = gen.decoder_start_token_id, best;
    F2Step step = { .rows = 1, .tokens = &start_token, .out_ids = &best };
    ok = f2_net_step (net, &step, error) &&
        dump_tensors (context, params->dump_path, error);
  }
  if (ok)
    generation = f2_generate (&gen, model->limits.max_banned, net_step, &ctx, error);
  f2_net_get_profile (net, &profile);
  if (generation == NULL)
    goto fail;

  t = g_get_monotonic_time ();
  out->generated_ids = g_array_ref (generation->ids);
  out->token_scores = g_array_ref (generation->token_scores);
  out->sequence_score = generation->sequence_score;
  out->decoder_steps = generation->steps;
  f2_generation_free (generation);
  out->text = f2_tokenizer_decode (model->tokenizer,
      (const gint32 *) out->generated_ids->data, out->generated_ids->len, FALSE);
  out->result = f2_postprocess (task->token, task->postprocess, out->text,
      out->image_width, out->image_height, error);
  if (out->result == NULL)
    goto fail;

  out->timings.preprocess_ms = profile.preprocess_ms;
  out->timings.vision_ms = profile.vision_ms;
  out->timings.encoder_ms = profile.encoder_ms;
  out->timings.decoder_ms = profile.decoder_ms;
  out->timings.postprocess_ms = ms_since (t);
  out->timings.total_ms = ms_since (start);
  return out;

fail:
  florence2_output_free (out);
  return NULL;
}

Florence2Output *
florence2_model_run (Florence2Model *model, const F2Image *image,
    const Florence2RunParams *params, GError **error)
{
  Florence2Context *context = florence2_context_new (model, error);
  Florence2Output *out;

  if (context == NULL)
    return NULL;
  out = florence2_context_run (context, image, params, error);
  florence2_context_free (context);
  return out;
}

static JsonNode *
int_array (const GArray *ids)
{
  JsonArray *array = json_array_sized_new (ids->len);
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < ids->len; i++)
    json_array_add_int_element (array, g_array_index (ids, gint32, i));
  json_node_take_array (node, array);
  return node;
}

JsonNode *
florence2_output_to_json (const Florence2Output *output, Florence2Model *model)
{
  const F2TaskInfo *task = f2_task_info (output->task);
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "task");
  json_builder_add_string_value (b, task->token);
  json_builder_set_member_name (b, "prompt");
  json_builder_add_string_value (b, output->prompt);
  json_builder_set_member_name (b, "input_ids");
  json_builder_add_value (b, int_array (output->input_ids));
  json_builder_set_member_name (b, "generated_ids");
  json_builder_add_value (b, int_array (output->generated_ids));
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, output->text);
  json_builder_set_member_name (b, "result");
  json_builder_add_value (b, f2_result_to_json (output->result));
  json_builder_set_member_name (b, "image_size");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, output->image_width);
  json_builder_add_int_value (b, output->image_height);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "timings_ms");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "preprocess");
  json_builder_add_double_value (b, output->timings.preprocess_ms);
  json_builder_set_member_name (b, "vision");
  json_builder_add_double_value (b, output->timings.vision_ms);
  json_builder_set_member_name (b, "encoder");
  json_builder_add_double_value (b, output->timings.encoder_ms);
  json_builder_set_member_name (b, "decoder");
  json_builder_add_double_value (b, output->timings.decoder_ms);
  json_builder_set_member_name (b, "postprocess");
  json_builder_add_double_value (b, output->timings.postprocess_ms);
  json_builder_set_member_name (b, "total");
  json_builder_add_double_value (b, output->timings.total_ms);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "decoder_steps");
  json_builder_add_int_value (b, output->decoder_steps);
  if (model != NULL) {
    json_builder_set_member_name (b, "device");
    json_builder_add_string_value (b, florence2_model_device_name (model));
    json_builder_set_member_name (b, "precision");
    json_builder_add_string_value (b,
        f2_precision_name (florence2_model_precision (model)));
  }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  g_object_unref (b);
  return root;
}
