/* What every backend shares: its name and precision, and the table of its
 * buffers that the op checks (ops.c) and the public calls (backend.c) read.
 * Uses nothing above it. */
#include "backend-private.h"

guint
f2_elem_size (F2ElemType type, F2Precision precision)
{
  switch (type) {
    case F2_ELEM_FLOAT:
      return precision == F2_PRECISION_FP16 ? 2 : 4;  /* bf16 keeps fp32 activations */
    case F2_ELEM_I32:
      return 4;
    case F2_ELEM_U8:
      return 1;
  }
  return 0;
}

void
f2_backend_init_base (F2Backend *self, const F2BackendClass *klass,
    const char *name, F2Precision precision)
{
  self->klass = klass;
  self->name = g_strdup (name);
  self->precision = precision;
  self->buffers = g_array_new (FALSE, TRUE, sizeof (F2BufferInfo));
}

guint32
f2_backend_register_buffer (F2Backend *self, F2BufferKind kind, F2ElemType type,
    guint64 n_elements, guint64 bytes)
{
  F2BufferInfo info = { kind, type, n_elements };

  g_array_append_val (self->buffers, info);
  self->allocated[kind] += bytes;
  return self->buffers->len;
}

const F2BufferInfo *
f2_backend_buffer_info (F2Backend *self, guint32 id)
{
  if (id == 0 || id > self->buffers->len)
    return NULL;
  return &g_array_index (self->buffers, F2BufferInfo, id - 1);
}

guint64
f2_backend_linear_size (F2Backend *backend, guint32 n, guint32 k)
{
  return backend->klass->linear_size (backend, n, k);
}
