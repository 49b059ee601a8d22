/* The reduce family on the cpu backend, the row reductions over the
 * vocabulary: argmax and top-k (with the log-softmax values), threaded over
 * rows (beams). Ties and banned ids as the reference's (reference-ops.c),
 * whose top-k row it shares. */
#include "cpu-ops.h"
#include "cpu-simd.h"
#include "reference-ops.h"

/* The banned list is looked at only for a value that would be taken. */
static gboolean
run_argmax (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2ArgmaxParams *p = &step->op.p.argmax;
  const float *x = step->in[0];
  const gint32 *banned = step->in[1];
  gint32 *out = step->out;
  gsize ldx = PACKED (p->ldx, p->cols);

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++) {
    const float *xr = x + r * ldx;
    const gint32 *br = banned ? banned + r * p->max_banned : NULL;
    gint32 best = -1;

    /* strictly greater keeps the lowest index among equal values */
    for (guint32 c = 0; c < p->cols; c++)
      if ((best < 0 || xr[c] > xr[best]) && !f2_reference_is_banned (br, p->max_banned, c))
        best = (gint32) c;
    out[r] = best;
  }
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_argmax = { NULL, run_argmax };

HOT static double
log_sum_exp (const float *restrict x, guint32 n)
{
  float max = -INFINITY;
  double sum = 0.0;

  for (guint32 c = 0; c < n; c++)
    max = x[c] > max ? x[c] : max;
  for (guint32 c = 0; c < n; c++)
    sum += fast_expf (x[c] - max);
  return max + log (sum);
}

static gboolean
run_topk (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2TopkParams *p = &step->op.p.topk;
  const float *x = step->in[0];
  const gint32 *banned = step->in[1];
  gint32 *out_ids = step->out;
  float *out_values = step->out2;
  gsize ldx = PACKED (p->ldx, p->cols);

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++)
    f2_reference_topk_row (x + r * ldx, p->cols, banned ? banned + r * p->max_banned : NULL,
        p->max_banned, p->k, log_sum_exp (x + r * ldx, p->cols), out_ids + r * p->k,
        out_values + r * p->k);
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_topk = { NULL, run_topk };
