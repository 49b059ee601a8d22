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
  g_mutex_init (&self->lock);
}

void
f2_backend_clear_base (F2Backend *self)
{
  for (guint i = 0; i < F2_BUFFER_CHUNKS && self->buffer_chunks[i] != NULL; i++)
    g_free (self->buffer_chunks[i]);
  g_mutex_clear (&self->lock);
  g_free (self->name);
}

guint32
f2_backend_register_buffer (F2Backend *self, F2BufferKind kind, F2ElemType type,
    guint64 n_elements, guint64 bytes)
{
  guint32 index = self->n_buffers, chunk = index / F2_BUFFER_CHUNK;
  F2BufferInfo info = { kind, type, n_elements };

  if (chunk >= F2_BUFFER_CHUNKS)
    return 0;
  if (self->buffer_chunks[chunk] == NULL)
    self->buffer_chunks[chunk] = g_new0 (F2BufferInfo, F2_BUFFER_CHUNK);
  self->buffer_chunks[chunk][index % F2_BUFFER_CHUNK] = info;
  self->allocated[kind] += bytes;
  /* published last: a reader that sees the id sees its info */
  g_atomic_int_set (&self->n_buffers, index + 1);
  return index + 1;
}

const F2BufferInfo *
f2_backend_buffer_info (F2Backend *self, guint32 id)
{
  if (id == 0 || id > (guint32) g_atomic_int_get (&self->n_buffers))
    return NULL;
  return &self->buffer_chunks[(id - 1) / F2_BUFFER_CHUNK][(id - 1) % F2_BUFFER_CHUNK];
}

guint64
f2_backend_linear_size (F2Backend *backend, guint32 n, guint32 k)
{
  return backend->klass->linear_size (backend, n, k);
}
