/* The cpu backend's kernels, one per op kind, in a file per family of ops
 * (cpu-op-<family>.c); cpu-ops.c holds the table of them. */
#pragma once

#include "cpu-private.h"

G_BEGIN_DECLS

/* How the cpu backend runs one op kind.
 * prepare (optional) runs when a program is finished: it makes what the
 * step runs with (oneDNN primitives) and moves *scratch_end (from 0) to the
 * end of the working memory the step uses, in bytes.
 * run runs the step, with @run's working memory. */
typedef struct {
  gboolean (*prepare) (F2CpuBackend *self, F2CpuStep *step, gsize *scratch_end,
      GError **error);
  gboolean (*run) (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step,
      GError **error);
} F2CpuKernel;

/* The kernel of @kind (cpu-ops.c); NULL for a value that is no kind. */
const F2CpuKernel *f2_cpu_op_kernel (F2OpKind kind);

/* cpu-op-matmul.c */
extern const F2CpuKernel f2_cpu_kernel_matmul;

/* A GEMM on a oneDNN matmul primitive, out[m][n] = epilogue (sum_k a[m][k]
 * w[n][k]), with w the linear weight in slot 1 (packed at upload), bias in
 * slot 2 and residual in slot 3 (cpu-op-matmul.c). For the ops built on it
 * (conv2d). With @gathered, the kernel fills a itself, in working memory
 * at step->lowp_offset, before each f2_cpu_gemm_run(). */
typedef struct {
  guint32 m, n, k;
  guint32 lda, ldo, ldr;        /* resolved (never 0) */
  guint32 flags;                /* F2_EPI_* */
  gboolean gathered;
} F2CpuGemm;

gboolean f2_cpu_gemm_prepare (F2CpuBackend *self, F2CpuStep *step,
    const F2CpuGemm *g, gsize *scratch_end, GError **error);
/* @a: where the primitive reads a in this run (in @run's working memory),
 * or NULL for slot 0 itself. */
gboolean f2_cpu_gemm_run (F2CpuRun *run, F2CpuStep *step, gpointer a,
    GError **error);

/* cpu-op-conv.c */
extern const F2CpuKernel f2_cpu_kernel_conv2d;
extern const F2CpuKernel f2_cpu_kernel_dwconv3x3;

/* cpu-op-norm.c */
extern const F2CpuKernel f2_cpu_kernel_layer_norm;
extern const F2CpuKernel f2_cpu_kernel_softmax;

/* cpu-op-attention.c */
extern const F2CpuKernel f2_cpu_kernel_attention;
extern const F2CpuKernel f2_cpu_kernel_channel_attention;

/* cpu-op-elementwise.c */
extern const F2CpuKernel f2_cpu_kernel_mean_rows;
extern const F2CpuKernel f2_cpu_kernel_add;
extern const F2CpuKernel f2_cpu_kernel_copy;

/* cpu-op-reduce.c */
extern const F2CpuKernel f2_cpu_kernel_argmax;
extern const F2CpuKernel f2_cpu_kernel_topk;

G_END_DECLS
