/* The CPU backend (oneDNN): what its files share.
 *
 * Buffers are 64-byte aligned host arrays that never move, so a program
 * resolves every tensor address once, when it is finished. Float buffers
 * hold fp32 in both precisions; in bf16 only the linear weights (packed by
 * upload_linear in the layout oneDNN's matmul prefers) and the matmul and
 * convolution inputs (converted into working memory just before the
 * primitive runs) are bf16. Working memory ("scratch") and the oneDNN stream
 * belong to a run slot: each program run takes an idle slot (programs of
 * different streams run at the same time, each on its own), so there are as
 * many slots as runs were ever at once. A slot is sized for the largest
 * program finished so far; it only grows on the first run that needs more. */
#pragma once

#include "backend-private.h"

#include <oneapi/dnnl/dnnl.h>

G_BEGIN_DECLS

/* cpu-memory.c: zeroed host memory, 64-byte aligned (2 MiB aligned and on
 * huge pages where it is that large); NULL when there is not enough. */
gpointer f2_cpu_alloc0 (gsize size);
void f2_cpu_free (gpointer data);

/* What one program run works in. */
typedef struct {
  guint8 *scratch;
  gsize size;
  dnnl_stream_t stream;
} F2CpuRun;

typedef struct {
  F2Backend base;
  dnnl_engine_t engine;
  dnnl_stream_t stream;         /* for packing weights, under base.lock */
  guint threads;                /* OpenMP threads for every op */
  GPtrArray *data;              /* index = buffer id - 1 */
  GHashTable *linears;          /* weight ref key -> F2CpuLinear */
  /* under base.lock */
  gsize scratch_need;           /* the largest program's working memory */
  GPtrArray *idle_runs;         /* F2CpuRun not in use */
  gboolean profile_ops;         /* F2_PROFILE_OPS=1: time every op */
} F2CpuBackend;

/* A packed linear weight: its oneDNN memory layout. */
typedef struct {
  guint32 n, k;
  dnnl_memory_desc_t md;
} F2CpuLinear;

/* One op of a finished program, with resolved addresses. */
typedef struct {
  F2Op op;
  gpointer out, out2, in[F2_OP_MAX_INPUTS];
  /* MATMUL and CONV2D: the oneDNN primitive and its arguments */
  dnnl_primitive_t prim;
  dnnl_exec_arg_t args[8];
  int n_args;
  dnnl_memory_t src_mem, scratchpad_mem;  /* handles set per run (scratch moves) */
  gsize lowp_offset;            /* bf16 copy of the input, or im2col rows, in scratch */
  gsize pad_offset;             /* oneDNN scratchpad in scratch */
  gboolean lowp;                /* the primitive reads bf16 */
  guint32 m, k, lda;            /* the matmul's input rows as the op gives them */
} F2CpuStep;

static inline gpointer
f2_cpu_ptr (F2CpuBackend *self, F2Ref ref)
{
  const F2BufferInfo *info;

  if (!f2_ref_is_set (ref))
    return NULL;
  info = f2_backend_buffer_info (&self->base, ref.buffer);
  return (guint8 *) g_ptr_array_index (self->data, ref.buffer - 1)
      + ref.offset * f2_elem_size (info->type, F2_PRECISION_FP32);
}

static inline guint64
f2_cpu_ref_key (F2Ref ref)
{
  return ((guint64) ref.buffer << 40) | ref.offset;
}

/* cpu-op-matmul.c: linear weights packed for oneDNN's matmul, the steps'
 * primitives (the kernels are in cpu-ops.h) */
gboolean f2_cpu_linear_layout (F2CpuBackend *self, guint32 n, guint32 k,
    dnnl_memory_desc_t *md, GError **error);
gboolean f2_cpu_pack_linear (F2CpuBackend *self, gpointer dst, guint32 n,
    guint32 k, const float *w, dnnl_memory_desc_t *md, GError **error);
void f2_cpu_step_clear (F2CpuStep *step);
gboolean f2_cpu_dnnl_check (dnnl_status_t status, const char *what, GError **error);

G_END_DECLS
