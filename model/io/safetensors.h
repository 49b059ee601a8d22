/* safetensors files: a memory-mapped, fully validated reader and a writer.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * optional "__metadata__": {string: string}}), then the data area; offsets
 * are relative to the start of the data area.
 *
 * The tensor description (F2Tensor) and the dtype enum are shared by every
 * checkpoint reader (see torch-checkpoint.h and weights.h). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Errors of the checkpoint readers (safetensors, pytorch_model.bin, the
 * weights directory). File system errors keep their G_FILE_ERROR codes. */
#define F2_CHECKPOINT_ERROR (f2_checkpoint_error_quark ())
GQuark f2_checkpoint_error_quark (void);

typedef enum {
  F2_CHECKPOINT_ERROR_CORRUPT,          /* truncated, inconsistent, not the format */
  F2_CHECKPOINT_ERROR_UNSUPPORTED,      /* valid, but uses something refused */
  F2_CHECKPOINT_ERROR_MISSING,          /* no such tensor / no weights file */
  F2_CHECKPOINT_ERROR_SHAPE,            /* tensor present with the wrong shape */
} F2CheckpointError;

typedef enum {
  F2_DTYPE_F32,
  F2_DTYPE_F16,
  F2_DTYPE_BF16,
  F2_DTYPE_I64,
  F2_DTYPE_I32,
} F2DType;

#define F2_TENSOR_MAX_DIMS 8

/* A tensor stored in a checkpoint. @data points into the mapped file, is
 * little-endian and contiguous (row-major), and may be unaligned: read
 * elements with memcpy or f2_tensor_to_f32() (weights.h). */
typedef struct {
  const char *name;
  F2DType dtype;
  guint ndim;
  guint64 shape[F2_TENSOR_MAX_DIMS];
  guint64 numel;
  const void *data;
  guint64 nbytes;
} F2Tensor;

/* Bytes per element; the safetensors name ("F32"...) */
guint f2_dtype_size (F2DType dtype);
const char *f2_dtype_name (F2DType dtype);

/* "[2, 3, 4]" for error messages; g_free() it. */
char *f2_tensor_shape_string (guint ndim, const guint64 *shape);

typedef struct _F2Safetensors F2Safetensors;

/* Map and validate @path: header length, JSON, every tensor's dtype, shape,
 * offsets (inside the data area, size matching the shape, no overlaps).
 * Nothing is copied. NULL with @error set on any problem. */
F2Safetensors *f2_safetensors_open (const char *path, GError **error);
void f2_safetensors_close (F2Safetensors *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (F2Safetensors, f2_safetensors_close)

/* Tensors in header order. */
guint f2_safetensors_n_tensors (F2Safetensors *st);
const F2Tensor *f2_safetensors_get_nth (F2Safetensors *st, guint i);
/* NULL when there is no tensor @name. */
const F2Tensor *f2_safetensors_lookup (F2Safetensors *st, const char *name);
/* A "__metadata__" value, or NULL. */
const char *f2_safetensors_get_metadata (F2Safetensors *st, const char *key);

/* Writing. @tensors give name, dtype, ndim and shape; the writer computes
 * offsets (in the given order) and ignores numel/nbytes. @metadata maps
 * strings to strings (NULL = none). The file is written under a temporary
 * name and renamed into place when complete. */
typedef struct _F2SafetensorsWriter F2SafetensorsWriter;

F2SafetensorsWriter *f2_safetensors_writer_new (const char *path,
    const F2Tensor *tensors, guint n_tensors, GHashTable *metadata,
    GError **error);
/* Append the next bytes of the data area (tensor after tensor, in order;
 * any chunking). */
gboolean f2_safetensors_writer_append (F2SafetensorsWriter *writer,
    const void *data, gsize size, GError **error);
/* Checks that exactly all the data was appended, then renames the file into
 * place; frees @writer in any case. */
gboolean f2_safetensors_writer_finish (F2SafetensorsWriter *writer,
    GError **error);
/* Frees @writer and deletes the partial file. */
void f2_safetensors_writer_abort (F2SafetensorsWriter *writer);

/* Write @n_tensors tensors whose @data hold their bytes. */
gboolean f2_safetensors_write (const char *path, const F2Tensor *tensors,
    guint n_tensors, GHashTable *metadata, GError **error);

/* One F32 tensor @name of shape [@n] in a file of its own. */
gboolean f2_safetensors_write_f32 (const char *path, const char *name,
    const float *data, guint64 n, GError **error);

G_END_DECLS
