/* The CPU reference backend: host arrays and an interpreter that runs each
 * op of a program with its kernel from the table of reference-ops.c. Always
 * fp32. */
#include "backend-private.h"
#include "reference-ops.h"

#include <string.h>

typedef struct {
  F2Backend base;
  GPtrArray *data;              /* index = buffer id - 1 */
} F2ReferenceBackend;

static void
reference_free (F2Backend *backend)
{
  F2ReferenceBackend *self = (F2ReferenceBackend *) backend;

  g_ptr_array_unref (self->data);
  g_free (self);
}

static guint
reference_elem_size (F2ElemType type)
{
  return f2_elem_size (type, F2_PRECISION_FP32);
}

static guint32
reference_alloc (F2Backend *backend, F2BufferKind kind, F2ElemType type,
    guint64 n_elements, GError **error)
{
  F2ReferenceBackend *self = (F2ReferenceBackend *) backend;
  guint size = reference_elem_size (type);
  gpointer data = NULL;

  if (size == 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "unknown element type %d", type);
    return 0;
  }
  if (n_elements <= G_MAXSIZE / size)
    data = g_try_malloc0 (n_elements * size);
  if (data == NULL) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_OUT_OF_MEMORY,
        "cannot allocate a host buffer of %" G_GUINT64_FORMAT " elements of %u "
        "bytes; free memory or use smaller sizes", n_elements, size);
    return 0;
  }
  g_ptr_array_add (self->data, data);
  return f2_backend_register_buffer (backend, kind, type, n_elements,
      n_elements * size);
}

/* Host address of @ref (NULL when the ref is not set). */
static gpointer
reference_ptr (F2ReferenceBackend *self, F2Ref ref)
{
  const F2BufferInfo *info;

  if (!f2_ref_is_set (ref))
    return NULL;
  info = f2_backend_buffer_info (&self->base, ref.buffer);
  return (guint8 *) g_ptr_array_index (self->data, ref.buffer - 1)
      + ref.offset * reference_elem_size (info->type);
}

static gboolean
reference_write (F2Backend *backend, F2Ref dst, const void *src, guint64 n,
    GError **error)
{
  F2ReferenceBackend *self = (F2ReferenceBackend *) backend;
  const F2BufferInfo *info = f2_backend_buffer_info (backend, dst.buffer);

  memcpy (reference_ptr (self, dst), src, n * reference_elem_size (info->type));
  return TRUE;
}

static gboolean
reference_read (F2Backend *backend, F2Ref src, void *dst, guint64 n, GError **error)
{
  F2ReferenceBackend *self = (F2ReferenceBackend *) backend;
  const F2BufferInfo *info = f2_backend_buffer_info (backend, src.buffer);

  memcpy (dst, reference_ptr (self, src), n * reference_elem_size (info->type));
  return TRUE;
}

static guint64
reference_linear_size (F2Backend *backend, guint32 n, guint32 k)
{
  return (guint64) n * k;
}

static gboolean
reference_upload_linear (F2Backend *backend, F2Ref dst, guint32 n, guint32 k,
    const float *w, GError **error)
{
  const F2BufferInfo *info = f2_backend_buffer_info (backend, dst.buffer);

  if (info->type != F2_ELEM_FLOAT) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "linear weights need a float buffer; buffer %u is not one", dst.buffer);
    return FALSE;
  }
  return reference_write (backend, dst, w, (guint64) n * k, error);
}

static gboolean
reference_program_finish (F2Backend *backend, F2Program *program, GError **error)
{
  /* Every op was checked when it was added; nothing to prepare. */
  return TRUE;
}

/* Runs @op with its reference kernel on the host addresses of its refs. */
static gboolean
run_op (F2ReferenceBackend *self, const F2Op *op, GError **error)
{
  F2HostTensors t = {
    reference_ptr (self, op->out),
    reference_ptr (self, op->out2),
  };

  for (guint i = 0; i < F2_OP_MAX_INPUTS; i++)
    t.in[i] = reference_ptr (self, op->in[i]);
  return f2_reference_kernel (op->kind) (&self->base, op, &t, error);
}

static gboolean
reference_program_run (F2Backend *backend, F2Program *program, GError **error)
{
  F2ReferenceBackend *self = (F2ReferenceBackend *) backend;

  for (guint i = 0; i < program->ops->len; i++) {
    const F2Op *op = &g_array_index (program->ops, F2Op, i);
    GError *op_error = NULL;

    if (!run_op (self, op, &op_error)) {
      g_propagate_prefixed_error (error, op_error, "program '%s', op %u (%s '%s'): ",
          program->name, i, f2_op_kind_name (op->kind), op->name ? op->name : "");
      return FALSE;
    }
  }
  program->stats.dispatches = program->ops->len;
  program->stats.submits = 1;
  program->stats.gpu_ms = -1;
  return TRUE;
}

static const F2BackendClass reference_class = {
  .kind = "reference",
  .batch_images = TRUE,         /* the oracle for the batched programs */
  .free = reference_free,
  .alloc = reference_alloc,
  .write = reference_write,
  .read = reference_read,
  .upload_linear = reference_upload_linear,
  .linear_size = reference_linear_size,
  .program_finish = reference_program_finish,
  .program_run = reference_program_run,
  .program_free = NULL,
};

F2Backend *
f2_backend_new_reference (void)
{
  F2ReferenceBackend *self = g_new0 (F2ReferenceBackend, 1);

  f2_backend_init_base (&self->base, &reference_class, "reference", F2_PRECISION_FP32);
  /* the oracle runs one program at a time: it looks buffers up as it runs */
  self->base.serial_runs = TRUE;
  self->data = g_ptr_array_new_with_free_func (g_free);
  return &self->base;
}
