/* The CPU reference backend: host arrays and an interpreter that runs each
 * op of a program with the reference functions of reference-ops.c. Always fp32. */
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

static gboolean
run_embedding (F2ReferenceBackend *self, const F2Op *op, GError **error)
{
  const gint32 *dynamic = reference_ptr (self, op->in[3]);
  guint64 base;

  if (!f2_op_check_embedding_base (op, &self->base, dynamic ? *dynamic : -1, &base, error))
    return FALSE;
  f2_reference_embedding (&op->p.embedding, reference_ptr (self, op->in[0]),
      reference_ptr (self, op->in[1]), reference_ptr (self, op->in[2]), base,
      reference_ptr (self, op->out));
  return TRUE;
}

static gboolean
run_copy (F2ReferenceBackend *self, const F2Op *op, GError **error)
{
  const gint32 *index = reference_ptr (self, op->in[1]);

  if (!f2_op_check_copy_rows (op, &self->base, index, error))
    return FALSE;
  f2_reference_copy (&op->p.copy, reference_ptr (self, op->in[0]), index,
      reference_ptr (self, op->out));
  return TRUE;
}

static gboolean
run_op (F2ReferenceBackend *self, const F2Op *op, GError **error)
{
#define IN(i) reference_ptr (self, op->in[i])
#define OUT reference_ptr (self, op->out)
  switch (op->kind) {
    case F2_OP_MATMUL:
      f2_reference_matmul (&op->p.matmul, IN (0), IN (1), IN (2), IN (3), OUT);
      return TRUE;
    case F2_OP_LAYER_NORM:
      f2_reference_layer_norm (&op->p.layer_norm, IN (0), IN (1), IN (2), IN (3), OUT);
      return TRUE;
    case F2_OP_SOFTMAX:
      f2_reference_softmax (&op->p.softmax, OUT);
      return TRUE;
    case F2_OP_ATTENTION:{
      const gint32 *kv = IN (4);
      f2_reference_attention (&op->p.attention, IN (0), IN (1), IN (2), IN (3),
          kv ? *kv : -1, OUT);
      return TRUE;
    }
    case F2_OP_CHANNEL_ATTENTION:
      f2_reference_channel_attention (&op->p.channel_attention, IN (0), OUT);
      return TRUE;
    case F2_OP_CONV2D:
      f2_reference_conv2d (&op->p.conv2d, IN (0), IN (1), IN (2), OUT);
      return TRUE;
    case F2_OP_DWCONV3X3:
      f2_reference_dwconv3x3 (&op->p.dwconv, IN (0), IN (1), IN (2), OUT);
      return TRUE;
    case F2_OP_MEAN_ROWS:
      f2_reference_mean_rows (&op->p.mean_rows, IN (0), OUT);
      return TRUE;
    case F2_OP_EMBEDDING:
      return run_embedding (self, op, error);
    case F2_OP_ADD:
      f2_reference_add (&op->p.add, IN (0), IN (1), OUT);
      return TRUE;
    case F2_OP_COPY:
      return run_copy (self, op, error);
    case F2_OP_ARGMAX:
      f2_reference_argmax (&op->p.argmax, IN (0), IN (1), OUT);
      return TRUE;
    case F2_OP_TOPK:
      f2_reference_topk (&op->p.topk, IN (0), IN (1), OUT, reference_ptr (self, op->out2));
      return TRUE;
    case F2_OP_RESAMPLE_H:
      f2_reference_resample_h (&op->p.resample_h, IN (0), IN (1), IN (2), OUT);
      return TRUE;
    case F2_OP_RESAMPLE_V:
      f2_reference_resample_v (&op->p.resample_v, IN (0), IN (1), IN (2), OUT);
      return TRUE;
    case F2_OP_COUNT:
      break;
  }
#undef IN
#undef OUT
  g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
      "op kind %d is not supported", op->kind);
  return FALSE;
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
  self->data = g_ptr_array_new_with_free_func (g_free);
  return &self->base;
}
