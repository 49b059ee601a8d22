/* The norm family on the cpu backend, the row-wise normalisations: layer
 * norm (with the fused residual add) and softmax, threaded over rows. */
#include "cpu-ops.h"
#include "cpu-simd.h"

HOT static void
layer_norm_row (const float *restrict x, const float *restrict residual,
    const float *restrict gamma, const float *restrict beta, guint32 cols,
    float eps, float *restrict out)
{
  float mean = 0.0f, var = 0.0f, inv;

  /* out may alias x: the sum goes to out first, then is normalised there */
  for (guint32 c = 0; c < cols; c++) {
    float v = x[c] + (residual ? residual[c] : 0.0f);
    out[c] = v;
    mean += v;
  }
  mean /= cols;
  for (guint32 c = 0; c < cols; c++)
    var += (out[c] - mean) * (out[c] - mean);
  var /= cols;
  inv = 1.0f / sqrtf (var + eps);
  for (guint32 c = 0; c < cols; c++)
    out[c] = (out[c] - mean) * inv * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
}

static gboolean
run_layer_norm (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2LayerNormParams *p = &step->op.p.layer_norm;
  const float *x = step->in[0], *gamma = step->in[1], *beta = step->in[2];
  const float *residual = step->in[3];
  float *out = step->out;
  gsize ldx = PACKED (p->ldx, p->cols), ldo = PACKED (p->ldo, p->cols);

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++)
    layer_norm_row (x + r * ldx, residual ? residual + r * ldx : NULL, gamma,
        beta, p->cols, p->eps, out + r * ldo);
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_layer_norm = { NULL, run_layer_norm };

/* The softmax of a row of 16-float blocks (cpu-simd.h); attention's too */
HOT void
f2_cpu_softmax16 (float *restrict s, gsize n, gsize visible_end, float scale)
{
  gsize end16 = ROUND16 (visible_end);
  v16 vmax = (v16) { 0 } - INFINITY, vsum = { 0 };
  float max, inv;

  for (gsize j = visible_end; j < end16; j++)
    s[j] = -INFINITY;
  for (gsize j = 0; j < end16; j += 16) {
    v16 v = *(v16u *) (s + j) * scale;
    *(v16u *) (s + j) = v;
    vmax = v16_select (v > vmax, v, vmax);
  }
  max = v16_hmax (vmax);
  if (max == -INFINITY)
    end16 = 0;
  for (gsize j = 0; j < end16; j += 16) {
    v16 e = exp16 (*(v16u *) (s + j) - max);
    *(v16u *) (s + j) = e;
    vsum += e;
  }
  inv = end16 ? 1.0f / v16_hsum (vsum) : 0.0f;
  for (gsize j = 0; j < end16; j += 16)
    *(v16u *) (s + j) *= inv;
  for (gsize j = end16; j < n; j++)
    s[j] = 0.0f;
}

/* A row whose length is not a multiple of 16 (rare: channel attention and
 * tests): the plain loop, with the same exp. */
static void
softmax_unaligned (float *x, gsize n, float scale)
{
  float max = -INFINITY;
  double sum = 0.0;             /* rows as long as the vocabulary */

  for (gsize c = 0; c < n; c++) {
    x[c] *= scale;
    max = x[c] > max ? x[c] : max;
  }
  for (gsize c = 0; c < n; c++) {
    x[c] = fast_expf (x[c] - max);
    sum += x[c];
  }
  for (gsize c = 0; c < n; c++)
    x[c] = (float) (x[c] / sum);
}

/* In place: the output is the input. */
static gboolean
run_softmax (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2SoftmaxParams *p = &step->op.p.softmax;
  float *x = step->out;

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++) {
    float *row = x + r * p->cols;

    if (p->cols % 16 == 0)
      f2_cpu_softmax16 (row, p->cols, p->cols, p->scale);
    else
      softmax_unaligned (row, p->cols, p->scale);
  }
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_softmax = { NULL, run_softmax };
