/* The elementwise family on the cpu backend, the small memory-bound ops:
 * add, copy (with beam reordering) and the mean over rows, threaded when
 * large. Embeddings run the reference kernel (cpu-ops.c). */
#include "cpu-ops.h"
#include "cpu-simd.h"

#include <string.h>

static gboolean
run_add (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2AddParams *p = &step->op.p.add;
  const float *a = step->in[0], *b = step->in[1];
  float *out = step->out;
  gsize period = p->b_period ? p->b_period : p->n;

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->n))
  for (gint64 i = 0; i < p->n; i++)
    out[i] = a[i] + b[i % period];
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_add = { NULL, run_add };

/* The row index, when there is one, must name rows inside x. */
static gboolean
run_copy (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2CopyParams *p = &step->op.p.copy;
  const float *x = step->in[0];
  const gint32 *row_index = step->in[1];
  float *out = step->out;
  gsize ldx = PACKED (p->ldx, p->cols), ldo = PACKED (p->ldo, p->cols);
  gsize max_src = p->rows ? p->rows - 1 : 0;
  gboolean disjoint;

  if (!f2_op_check_copy_rows (&step->op, &self->base, row_index, error))
    return FALSE;
  if (p->rows == 0)
    return TRUE;
  for (guint32 r = 0; row_index != NULL && r < p->rows; r++)
    max_src = MAX (max_src, (gsize) row_index[r]);
  /* rows are copied in order (as the reference does) when they overlap */
  disjoint = out + (p->rows - 1) * ldo + p->cols <= x || x + max_src * ldx + p->cols <= out;

#pragma omp parallel for schedule(static) if (disjoint && PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++) {
    gsize src = row_index ? (gsize) row_index[r] : (gsize) r;
    memmove (out + r * ldo, x + src * ldx, sizeof (float) * p->cols);
  }
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_copy = { NULL, run_copy };

static gboolean
run_mean_rows (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2MeanRowsParams *p = &step->op.p.mean_rows;
  const float *x = step->in[0];
  float *out = step->out;
  gsize ldx = PACKED (p->ldx, p->cols);

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 c = 0; c < p->cols; c++) {
    double sum = 0.0;
    for (guint32 r = 0; r < p->rows; r++)
      sum += x[r * ldx + c];
    out[c] = p->rows > 0 ? (float) (sum / p->rows) : 0.0f;
  }
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_mean_rows = { NULL, run_mean_rows };
