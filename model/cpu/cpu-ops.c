/* The cpu kernel of each op kind: the backend's one table of kernels. Each
 * cpu-op-<family>.c file holds the kernels of one family of ops; the ops
 * that are cheap or run once per image (embedding, the resampling passes)
 * run their reference kernel. tests/test-op-table.c checks that every kind
 * has a kernel. */
#include "cpu-ops.h"
#include "reference-ops.h"

#include <string.h>

static gboolean
run_reference (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  F2HostTensors t = { step->out, step->out2 };

  memcpy (t.in, step->in, sizeof t.in);
  return f2_reference_kernel (step->op.kind) (&self->base, &step->op, &t, error);
}

static const F2CpuKernel reference = { NULL, run_reference };

static const F2CpuKernel *const kernels[] = {
  [F2_OP_MATMUL] = &f2_cpu_kernel_matmul,
  [F2_OP_CONV2D] = &f2_cpu_kernel_conv2d,
  [F2_OP_DWCONV3X3] = &f2_cpu_kernel_dwconv3x3,
  [F2_OP_LAYER_NORM] = &f2_cpu_kernel_layer_norm,
  [F2_OP_SOFTMAX] = &f2_cpu_kernel_softmax,
  [F2_OP_ATTENTION] = &f2_cpu_kernel_attention,
  [F2_OP_CHANNEL_ATTENTION] = &f2_cpu_kernel_channel_attention,
  [F2_OP_MEAN_ROWS] = &f2_cpu_kernel_mean_rows,
  [F2_OP_EMBEDDING] = &reference,
  [F2_OP_ADD] = &f2_cpu_kernel_add,
  [F2_OP_COPY] = &f2_cpu_kernel_copy,
  [F2_OP_ARGMAX] = &f2_cpu_kernel_argmax,
  [F2_OP_TOPK] = &f2_cpu_kernel_topk,
  [F2_OP_RESAMPLE_H] = &reference,
  [F2_OP_RESAMPLE_V] = &reference,
};

G_STATIC_ASSERT (G_N_ELEMENTS (kernels) == F2_OP_COUNT);

const F2CpuKernel *
f2_cpu_op_kernel (F2OpKind kind)
{
  if ((guint) kind >= F2_OP_COUNT)
    return NULL;
  return kernels[kind];
}
