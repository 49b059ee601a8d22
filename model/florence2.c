/* The library's front door: load a model directory onto a device, run a
 * task on an image, produce the reference's outputs. */
#include "florence2-private.h"
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
  g_mutex_init (&model->scheduler_lock);
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
  f2_batch_scheduler_free (model->scheduler);
  g_mutex_clear (&model->scheduler_lock);
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

F2Backend *
florence2_model_backend (Florence2Model *model)
{
  return model->backend;
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

Florence2Context *
florence2_context_new_batch (Florence2Model *model, guint max_batch, GError **error)
{
  Florence2Context *context;
  F2Net *net;

  g_return_val_if_fail (model != NULL, NULL);

  if (max_batch == 1)
    return florence2_context_new (model, error);
  net = f2_net_new_batch (model->net_model, max_batch, error);
  if (net == NULL) {
    g_prefix_error (error, "cannot create a context for batches of %u frames "
        "on the Florence-2 model from %s: ", max_batch, model->dir);
    return NULL;
  }
  context = g_new0 (Florence2Context, 1);
  context->model = florence2_model_ref (model);
  context->net = net;
  return context;
}

guint
florence2_context_max_batch (Florence2Context *context)
{
  return f2_net_slots (context->net);
}

void
florence2_context_free (Florence2Context *context)
{
  Florence2Model *model;

  if (context == NULL)
    return;
  model = context->model;
  if (f2_net_slots (context->net) == 1) {
    /* the device memory stays with the model, for the next context */
    g_mutex_lock (&model->idle_lock);
    g_ptr_array_add (model->idle_nets, context->net);
    g_mutex_unlock (&model->idle_lock);
  } else {
    f2_net_free (context->net);
  }
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

#define MAX_BATCH_TIMEOUT_NS (10 * G_GUINT64_CONSTANT (1000000000))

static gboolean
check_batch_size (guint batch_size, GError **error)
{
  if (batch_size >= 1 && batch_size <= FLORENCE2_MAX_BATCH)
    return TRUE;
  g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID,
      "batch size %u: frames are batched 1 to %u at a time", batch_size,
      FLORENCE2_MAX_BATCH);
  return FALSE;
}

/* The model's batch scheduler, started by the first batched call. */
static F2BatchScheduler *
model_scheduler (Florence2Model *model)
{
  F2BatchScheduler *s;

  g_mutex_lock (&model->scheduler_lock);
  if (model->scheduler == NULL)
    model->scheduler = f2_batch_scheduler_new (model);
  s = model->scheduler;
  g_mutex_unlock (&model->scheduler_lock);
  return s;
}

Florence2Output *
florence2_model_run_batched (Florence2Model *model, const F2Image *image,
    const Florence2RunParams *params, const Florence2BatchParams *batch,
    GError **error)
{
  g_return_val_if_fail (model != NULL && image != NULL && params != NULL
      && batch != NULL, NULL);

  if (!check_batch_size (batch->batch_size, error))
    return NULL;
  if (batch->batch_timeout_ns > MAX_BATCH_TIMEOUT_NS) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID,
        "batch timeout %" G_GUINT64_FORMAT " ns: a frame waits at most 10 s "
        "for its batch to fill", batch->batch_timeout_ns);
    return NULL;
  }
  if (batch->batch_size == 1)
    return florence2_model_run (model, image, params, error);

  return f2_batch_scheduler_run (model_scheduler (model), image, params,
      batch->batch_size, batch->batch_timeout_ns, error);
}

gboolean
florence2_model_reserve_batch (Florence2Model *model, guint batch_size,
    GError **error)
{
  g_return_val_if_fail (model != NULL, FALSE);

  if (!check_batch_size (batch_size, error))
    return FALSE;
  if (batch_size == 1)
    return TRUE;
  return f2_batch_scheduler_reserve (model_scheduler (model), batch_size,
      error);
}

void
florence2_model_batch_counts (Florence2Model *model, guint64 *batches, guint64 *frames)
{
  *batches = *frames = 0;
  g_mutex_lock (&model->scheduler_lock);
  if (model->scheduler != NULL)
    f2_batch_scheduler_counts (model->scheduler, batches, frames);
  g_mutex_unlock (&model->scheduler_lock);
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
