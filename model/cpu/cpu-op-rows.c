/* Matmuls of a few rows (decoder steps: one row per sequence and beam) on
 * the packed fp32 linear weights. Such a matmul is bound by reading the
 * weights, so every weight is read once for all rows: oneDNN's primitive
 * for 4 rows streamed the 157 MB LM head at half the rate of its 1-row
 * primitive (bench-kernels: 4.4 against 2.5 ms).
 *
 * The weights are in oneDNN's blocked layout for fp32 on AVX-512 (checked
 * when the op is prepared; other layouts keep the primitive): panels of 64
 * output columns, each K rows of 64 floats in blocks of 16 rows. Each row
 * of the output sums over k in order with its own accumulators, so a row's
 * result does not depend on how many rows run with it: a frame decodes
 * bit for bit the same alone and in a batch. */
#include "cpu-ops.h"
#include "cpu-simd.h"

#include <string.h>

#define PANEL 64                /* output columns of a weight panel */
#define KBLOCK 16               /* k rows of a block inside a panel */
#define ROWS_GROUP 6            /* rows whose accumulators fit the registers */

/* The packed layout of @md as [n / 64][k / 16][16][64] with the panel and
 * block strides (floats) in @panel and @block; FALSE for any other. */
static gboolean
panel_layout (const dnnl_memory_desc_t *md, gsize *panel, gsize *block)
{
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;

  if (md->format_kind != dnnl_blocked || md->data_type != dnnl_f32
      || md->ndims != 2 || md->offset0 != 0 || b->inner_nblks != 2
      || b->inner_blks[0] != KBLOCK || b->inner_idxs[0] != 0
      || b->inner_blks[1] != PANEL || b->inner_idxs[1] != 1
      || b->strides[0] != KBLOCK * PANEL)
    return FALSE;
  *block = (gsize) b->strides[0];
  *panel = (gsize) b->strides[1];
  return TRUE;
}

gboolean
f2_cpu_rows_prepare (F2CpuBackend *self, F2CpuStep *step)
{
  const F2MatmulParams *p = &step->op.p.matmul;
  guint64 key = f2_cpu_ref_key (step->op.in[1]);
  const F2CpuLinear *linear = g_hash_table_lookup (self->linears, &key);

  /* GELU stays with the primitive: its erf costs more than the rows save */
  if (!(p->flags & F2_MATMUL_DECODE) || (p->flags & F2_EPI_GELU)
      || self->base.precision != F2_PRECISION_FP32 || linear == NULL
      || linear->n != p->n || linear->k != p->k
      || !panel_layout (&linear->md, &step->panel_stride, &step->block_stride))
    return FALSE;
  step->rows = TRUE;
  return TRUE;
}

/* Rows @a [M][lda] times one panel of weights @w into @out [M][ldo]
 * (columns @c0 .. @c0 + @cols - 1), with bias and residual. @M is a
 * constant in each caller, so the accumulators stay in registers. */
typedef struct {
  const F2MatmulParams *p;
  const float *bias;
  gsize block_stride;
  guint32 lda, ldo, ldr;
} Rows;

static inline __attribute__ ((always_inline)) void
panel_rows (const Rows *g, const float *a, const float *w, const float *res,
    float *out, guint32 c0, guint32 cols, const guint M)
{
  guint32 flags = g->p->flags;
  v16 acc[ROWS_GROUP][4];

  for (guint r = 0; r < M; r++)
    for (guint j = 0; j < 4; j++)
      acc[r][j] = (v16) { 0 };
  for (guint32 k = 0; k < g->p->k; k++) {
    const float *wk = w + (k / KBLOCK) * g->block_stride + (k % KBLOCK) * PANEL;
    v16 w0 = *(const v16u *) wk, w1 = *(const v16u *) (wk + 16);
    v16 w2 = *(const v16u *) (wk + 32), w3 = *(const v16u *) (wk + 48);

    for (guint r = 0; r < M; r++) {
      float x = a[(gsize) r * g->lda + k];
      acc[r][0] += x * w0;
      acc[r][1] += x * w1;
      acc[r][2] += x * w2;
      acc[r][3] += x * w3;
    }
  }
  /* out = sum + bias (+ residual), the primitive's order */
  for (guint r = 0; r < M; r++) {
    float sums[PANEL];

    memcpy (sums, acc[r], sizeof sums);
    for (guint32 c = 0; c < cols; c++) {
      float v = sums[c];
      if (flags & F2_EPI_BIAS)
        v += g->bias[c0 + c];
      if (flags & F2_EPI_RESIDUAL)
        v += res[(gsize) r * g->ldr + c0 + c];
      out[(gsize) r * g->ldo + c0 + c] = v;
    }
  }
}

#define PANEL_ROWS(M) \
  HOT static void panel_rows_##M (const Rows *g, const float *a, const float *w, \
      const float *res, float *out, guint32 c0, guint32 cols) \
  { \
    panel_rows (g, a, w, res, out, c0, cols, M); \
  }
PANEL_ROWS (1)
PANEL_ROWS (2)
PANEL_ROWS (3)
PANEL_ROWS (4)
PANEL_ROWS (5)
PANEL_ROWS (6)

typedef void (*PanelRows) (const Rows *, const float *, const float *,
    const float *, float *, guint32, guint32);
static const PanelRows panel_rows_by_count[ROWS_GROUP] = {
  panel_rows_1, panel_rows_2, panel_rows_3, panel_rows_4, panel_rows_5, panel_rows_6,
};

void
f2_cpu_rows_run (const F2CpuStep *step)
{
  const F2MatmulParams *p = &step->op.p.matmul;
  Rows g = { p, step->in[2], step->block_stride, PACKED (p->lda, p->k),
    PACKED (p->ldo, p->n), PACKED (p->ldr, p->n) };
  guint32 panels = (p->n + PANEL - 1) / PANEL;

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->m * p->n * p->k))
  for (guint32 i = 0; i < panels; i++) {
    const float *w = (const float *) step->in[1] + i * step->panel_stride;
    guint32 c0 = i * PANEL, cols = MIN (PANEL, p->n - c0);

    /* the rows in groups whose accumulators fill the registers; the
     * panel stays in cache from one group to the next */
    for (guint32 r0 = 0; r0 < p->m; r0 += ROWS_GROUP) {
      guint32 rows = MIN (p->m - r0, ROWS_GROUP);
      const float *res = step->in[3] ? (const float *) step->in[3] + (gsize) r0 * g.ldr : NULL;

      panel_rows_by_count[rows - 1] (&g, (const float *) step->in[0] + (gsize) r0 * g.lda,
          w, res, (float *) step->out + (gsize) r0 * g.ldo, c0, cols);
    }
  }
}
