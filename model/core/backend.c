/* The backend interface's public calls: argument checks, then the
 * backend's own function; programs (ops checked by ops.c as they are added). */
#include "backend-private.h"

#include <string.h>

const char *
f2_precision_name (F2Precision precision)
{
  switch (precision) {
    case F2_PRECISION_FP16: return "fp16";
    case F2_PRECISION_FP32: return "fp32";
    case F2_PRECISION_BF16: return "bf16";
    case F2_PRECISION_AUTO: return "auto";
  }
  return "unknown";
}

gboolean
f2_precision_parse (const char *name, F2Precision *precision, GError **error)
{
  for (F2Precision p = F2_PRECISION_FP16; p <= F2_PRECISION_AUTO; p++) {
    if (g_ascii_strcasecmp (name ? name : "auto", f2_precision_name (p)) == 0
        || (name != NULL && name[0] == '\0' && p == F2_PRECISION_AUTO)) {
      *precision = p;
      return TRUE;
    }
  }
  return f2_settings_invalid (error, "unknown precision '%s': use auto, fp32, "
      "fp16 (Vulkan) or bf16 (cpu)", name);
}

void
f2_backend_free (F2Backend *backend)
{
  if (backend == NULL)
    return;
  f2_backend_clear_base (backend);
  backend->klass->free (backend);
}

const char *
f2_backend_name (F2Backend *backend)
{
  return backend->name;
}

const char *
f2_backend_kind (F2Backend *backend)
{
  return backend->klass->kind;
}

gboolean
f2_backend_batches_images (F2Backend *backend)
{
  return backend->klass->batch_images;
}

F2Precision
f2_backend_precision (F2Backend *backend)
{
  return backend->precision;
}

guint32
f2_backend_alloc (F2Backend *backend, F2BufferKind kind, F2ElemType type,
    guint64 n_elements, GError **error)
{
  guint32 id = 0;

  g_return_val_if_fail (backend != NULL, 0);
  if (n_elements == 0)
    n_elements = 1;
  g_mutex_lock (&backend->lock);
  if (backend->n_buffers >= F2_BUFFER_CHUNK * F2_BUFFER_CHUNKS)
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_OUT_OF_MEMORY,
        "backend %s holds %u buffers, as many as it can: free models or "
        "contexts", backend->name, backend->n_buffers);
  else
    id = backend->klass->alloc (backend, kind, type, n_elements, error);
  g_mutex_unlock (&backend->lock);
  return id;
}

guint64
f2_backend_allocated_bytes (F2Backend *backend, F2BufferKind kind)
{
  return backend->allocated[kind];
}

guint
f2_backend_peak_runs (F2Backend *backend)
{
  return (guint) g_atomic_int_get (&backend->runs_peak);
}

/* Counts the programs running now and keeps the most seen at once. */
static void
count_run_start (F2Backend *backend)
{
  gint now = g_atomic_int_add (&backend->runs_now, 1) + 1;
  gint peak = g_atomic_int_get (&backend->runs_peak);

  while (now > peak
      && !g_atomic_int_compare_and_exchange (&backend->runs_peak, peak, now))
    peak = g_atomic_int_get (&backend->runs_peak);
}

static gboolean
check_range (F2Backend *backend, F2Ref ref, guint64 n, GError **error)
{
  const F2BufferInfo *info = f2_backend_buffer_info (backend, ref.buffer);

  if (info == NULL) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "buffer %u does not exist on backend %s", ref.buffer, backend->name);
    return FALSE;
  }
  if (ref.offset > info->n_elements || n > info->n_elements - ref.offset) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "access of %" G_GUINT64_FORMAT " elements at %" G_GUINT64_FORMAT
        " is outside buffer %u (%" G_GUINT64_FORMAT " elements)",
        n, ref.offset, ref.buffer, info->n_elements);
    return FALSE;
  }
  return TRUE;
}

gboolean
f2_backend_write (F2Backend *backend, F2Ref dst, const void *src,
    guint64 n_elements, GError **error)
{
  gboolean ok;

  g_mutex_lock (&backend->lock);
  ok = check_range (backend, dst, n_elements, error)
      && backend->klass->write (backend, dst, src, n_elements, error);
  g_mutex_unlock (&backend->lock);
  return ok;
}

gboolean
f2_backend_read (F2Backend *backend, F2Ref src, void *dst,
    guint64 n_elements, GError **error)
{
  gboolean ok;

  g_mutex_lock (&backend->lock);
  ok = check_range (backend, src, n_elements, error)
      && backend->klass->read (backend, src, dst, n_elements, error);
  g_mutex_unlock (&backend->lock);
  return ok;
}

gboolean
f2_backend_upload_linear (F2Backend *backend, F2Ref dst, guint32 n, guint32 k,
    const float *w, GError **error)
{
  gboolean ok;

  g_mutex_lock (&backend->lock);
  ok = check_range (backend, dst, f2_backend_linear_size (backend, n, k), error)
      && backend->klass->upload_linear (backend, dst, n, k, w, error);
  g_mutex_unlock (&backend->lock);
  return ok;
}

F2Program *
f2_program_new (F2Backend *backend, const char *name)
{
  F2Program *program = g_new0 (F2Program, 1);

  program->backend = backend;
  program->name = g_strdup (name);
  program->ops = g_array_new (FALSE, TRUE, sizeof (F2Op));
  program->stages = g_array_new (FALSE, TRUE, sizeof (F2Stage));
  program->stats.gpu_ms = -1;
  return program;
}

void
f2_program_add (F2Program *program, const F2Op *op)
{
  GError *error = NULL;

  g_return_if_fail (!program->finished);
  if (program->error != NULL)
    return;
  /* buffer infos are stable (backend-base.c): no lock needed to read them */
  if (!f2_op_check (op, program->backend, &error)) {
    g_propagate_prefixed_error (&program->error, error,
        "program '%s', op %u (%s '%s'): ", program->name, program->ops->len,
        f2_op_kind_name (op->kind), op->name ? op->name : "");
    return;
  }
  g_array_append_val (program->ops, *op);
}

void
f2_program_mark_stage (F2Program *program, const char *stage)
{
  F2Stage s = { program->ops->len, stage };

  g_array_append_val (program->stages, s);
}

gboolean
f2_program_finish (F2Program *program, GError **error)
{
  if (program->error != NULL) {
    g_propagate_error (error, g_error_copy (program->error));
    return FALSE;
  }
  g_mutex_lock (&program->backend->lock);
  program->finished =
      program->backend->klass->program_finish (program->backend, program, error);
  g_mutex_unlock (&program->backend->lock);
  return program->finished;
}

gboolean
f2_program_run (F2Program *program, GError **error)
{
  gint64 start;
  gboolean ok;

  if (!program->finished) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "program '%s' was run before f2_program_finish()", program->name);
    return FALSE;
  }
  start = g_get_monotonic_time ();
  if (program->backend->serial_runs)
    g_mutex_lock (&program->backend->lock);
  count_run_start (program->backend);
  ok = program->backend->klass->program_run (program->backend, program, error);
  g_atomic_int_dec_and_test (&program->backend->runs_now);
  if (program->backend->serial_runs)
    g_mutex_unlock (&program->backend->lock);
  program->stats.wall_ms = (g_get_monotonic_time () - start) / 1000.0;
  return ok;
}

gboolean
f2_program_stage_time (F2Program *program, guint index, const char **name,
    double *ms)
{
  F2Backend *backend = program->backend;

  if (backend->klass->program_stage_time == NULL)
    return FALSE;
  return backend->klass->program_stage_time (backend, program, index, name, ms);
}

char *
f2_backend_describe (F2Backend *backend)
{
  if (backend->klass->describe != NULL)
    return backend->klass->describe (backend);
  return g_strdup (backend->name);
}

double
f2_program_flops (F2Program *program)
{
  double flops = 0;

  for (guint i = 0; i < program->ops->len; i++)
    flops += f2_op_flops (&g_array_index (program->ops, F2Op, i));
  return flops;
}

const F2RunStats *
f2_program_last_stats (F2Program *program)
{
  return &program->stats;
}

void
f2_program_free (F2Program *program)
{
  if (program == NULL)
    return;
  if (program->backend->klass->program_free != NULL) {
    g_mutex_lock (&program->backend->lock);
    program->backend->klass->program_free (program->backend, program);
    g_mutex_unlock (&program->backend->lock);
  }
  g_clear_error (&program->error);
  g_array_unref (program->ops);
  g_array_unref (program->stages);
  g_free (program->name);
  g_free (program);
}
