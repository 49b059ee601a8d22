/* The conv family on the cpu backend: the 2-D convolution (DaViT's patch
 * embeddings), a GEMM on the matmul primitives of cpu-op-matmul.c over its
 * input patches (gathered as bf16 in bf16 mode), and the depthwise 3x3
 * convolution (its convolutional position encoding), threaded over rows. */
#include "cpu-ops.h"
#include "cpu-simd.h"

/* Gathers the patches of a convolution into rows [ho*wo][cin*k*k] (the
 * order of the weights' columns), as fp32 or bf16. */
static void
im2col (const F2Conv2dParams *p, const float *x, void *rows, gboolean bf16)
{
  guint32 ho = (p->h + 2 * p->pad - p->kernel) / p->stride + 1;
  guint32 wo = (p->w + 2 * p->pad - p->kernel) / p->stride + 1;
  gsize kk = (gsize) p->kernel * p->kernel, kdim = p->cin * kk;

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) ho * wo * kdim))
  for (gint64 oy = 0; oy < ho; oy++) {
    for (guint32 ox = 0; ox < wo; ox++) {
      gsize row = ((gsize) oy * wo + ox) * kdim;
      for (guint32 ci = 0; ci < p->cin; ci++) {
        for (guint32 ky = 0; ky < p->kernel; ky++) {
          gint64 iy = oy * p->stride + ky - (gint64) p->pad;
          for (guint32 kx = 0; kx < p->kernel; kx++) {
            gint64 ix = (gint64) ox * p->stride + kx - (gint64) p->pad;
            gsize col = ci * kk + ky * p->kernel + kx;
            float v = 0.0f;
            if (iy >= 0 && iy < p->h && ix >= 0 && ix < p->w)
              v = p->in_layout == F2_LAYOUT_CHW
                  ? x[((gsize) ci * p->h + iy) * p->w + ix]
                  : x[((gsize) iy * p->w + ix) * p->cin + ci];
            if (bf16) {
              union { float f; guint32 u; } b = { v };
              ((guint16 *) rows)[row + col] =
                  (b.u + 0x7fff + ((b.u >> 16) & 1)) >> 16;
            } else {
              ((float *) rows)[row + col] = v;
            }
          }
        }
      }
    }
  }
}

/* The 2-D convolution as a GEMM: its input patches gathered into rows
 * [ho*wo][cin*k*k] in working memory, times the weight [cout][cin*k*k]. */
static gboolean
prepare_conv2d (F2CpuBackend *self, F2CpuStep *step, gsize *scratch_end,
    GError **error)
{
  const F2Conv2dParams *p = &step->op.p.conv2d;
  guint32 ho = (p->h + 2 * p->pad - p->kernel) / p->stride + 1;
  guint32 wo = (p->w + 2 * p->pad - p->kernel) / p->stride + 1;
  guint32 k = p->cin * p->kernel * p->kernel;
  F2CpuGemm g = {
    .m = ho * wo, .n = p->cout, .k = k, .lda = k, .ldo = p->cout, .ldr = p->cout,
    .flags = p->flags & (F2_EPI_BIAS | F2_EPI_GELU),
    .gathered = TRUE,
  };

  return f2_cpu_gemm_prepare (self, step, &g, scratch_end, error);
}

static gboolean
run_conv2d (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  void *rows = run->scratch + step->lowp_offset;

  if (step->prim == NULL)
    return TRUE;
  im2col (&step->op.p.conv2d, step->in[0], rows, step->lowp);
  return f2_cpu_gemm_run (run, step, rows, error);
}

const F2CpuKernel f2_cpu_kernel_conv2d = { prepare_conv2d, run_conv2d };

HOT static void
dwconv_row (const F2DwConvParams *p, guint32 y, const float *restrict x,
    const float *restrict wt, const float *restrict bias, float *restrict out)
{
  guint32 c = p->c;

  for (guint32 xx = 0; xx < p->w; xx++) {
    float *o = out + ((gsize) y * p->w + xx) * c;
    for (guint32 ch = 0; ch < c; ch++)
      o[ch] = bias ? bias[ch] : 0.0f;
    for (gint dy = -1; dy <= 1; dy++) {
      gint64 iy = (gint64) y + dy;
      if (iy < 0 || iy >= p->h)
        continue;
      for (gint dx = -1; dx <= 1; dx++) {
        gint64 ix = (gint64) xx + dx;
        const float *xi, *w;
        if (ix < 0 || ix >= p->w)
          continue;
        xi = x + ((gsize) iy * p->w + ix) * c;
        w = wt + (gsize) ((dy + 1) * 3 + (dx + 1)) * c;
        for (guint32 ch = 0; ch < c; ch++)
          o[ch] += w[ch] * xi[ch];
      }
    }
    if (p->residual) {
      const float *xi = x + ((gsize) y * p->w + xx) * c;
      for (guint32 ch = 0; ch < c; ch++)
        o[ch] += xi[ch];
    }
  }
}

/* The weights [c][9] are read transposed, [9][c], from working memory. */
static gboolean
prepare_dwconv3x3 (F2CpuBackend *self, F2CpuStep *step, gsize *scratch_end,
    GError **error)
{
  *scratch_end = (gsize) 9 * step->op.p.dwconv.c * sizeof (float);
  return TRUE;
}

static gboolean
run_dwconv3x3 (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2DwConvParams *p = &step->op.p.dwconv;
  const float *x = step->in[0], *w = step->in[1], *bias = step->in[2];
  float *out = step->out, *wt = (float *) run->scratch;

  for (guint32 ch = 0; ch < p->c; ch++)
    for (guint32 t = 0; t < 9; t++)
      wt[(gsize) t * p->c + ch] = w[(gsize) ch * 9 + t];
#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->h * p->w * p->c * 9))
  for (gint64 y = 0; y < p->h; y++)
    dwconv_row (p, y, x, wt, bias, out);
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_dwconv3x3 = { prepare_dwconv3x3, run_dwconv3x3 };
