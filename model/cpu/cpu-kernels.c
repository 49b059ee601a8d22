/* The CPU backend's own kernels: every op that is not a matmul, in plain C
 * that the compiler vectorises (loops over contiguous channels or keys),
 * threaded with OpenMP over rows, heads or windows. Accumulation is fp32;
 * the tests hold these to the reference's fp32 results. */
#include "cpu-private.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* The hot loops get an AVX-512 clone picked at load time where the CPU has
 * it; the default build targets baseline x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((target_clones ("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif

#define PACKED(ld, dflt) ((ld) != 0 ? (ld) : (dflt))
#define ROUND16(x) (((x) + 15) & ~(gsize) 15)

/* exp for the softmaxes: Cody-Waite reduction and a degree-6 polynomial
 * (within 2 ulp of expf), branch-free so that loops over it vectorise. */
static inline float
fast_expf (float x)
{
  union { float f; gint32 i; } scale;
  float n, r, p;

  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  n = __builtin_floorf (x * 1.44269504088896341f + 0.5f);
  r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  scale.i = ((gint32) n + 127) << 23;
  return p * scale.f;
}

/* ------------------------------------------------------------ attention */

/* Floats of working memory per thread: K transposed and one score row. */
static gsize
attention_scratch (const F2AttentionParams *p)
{
  return (gsize) p->head_dim * ROUND16 (p->kv_len) + ROUND16 (p->kv_len) + 16;
}

static gsize
window_row (const F2AttentionParams *p, guint32 b, guint32 t)
{
  guint32 win_cols = p->grid_w / p->window;
  guint32 wy = b / win_cols, wx = b % win_cols;
  guint32 ly = t / p->window, lx = t % p->window;

  return (gsize) (wy * p->window + ly) * p->grid_w + wx * p->window + lx;
}

/* Scores of one query against every key: s[j] = q . k_j (kt is [d][kv]). */
HOT static void
attention_scores (const float *restrict q, const float *restrict kt,
    guint32 head_dim, guint32 kv, gsize ldk, float *restrict s)
{
  for (guint32 j = 0; j < kv; j++)
    s[j] = 0.0f;
  for (guint32 d = 0; d < head_dim; d++) {
    const float qd = q[d];
    const float *restrict kd = kt + d * ldk;
    for (guint32 j = 0; j < kv; j++)
      s[j] += qd * kd[j];
  }
}

/* s[j] = exp(s[j] * scale - max) over the visible keys (others 0); returns
 * the sum, 0 when no key is visible. */
HOT static float
attention_softmax_row (float *restrict s, guint32 kv, guint32 visible_end,
    const gint32 *mask, float scale)
{
  float max = -INFINITY, sum = 0.0f;

  for (guint32 j = 0; j < visible_end; j++) {
    s[j] *= scale;
    if (mask != NULL && mask[j] == 0)
      s[j] = -INFINITY;
    max = s[j] > max ? s[j] : max;
  }
  if (max == -INFINITY)
    return 0.0f;
  for (guint32 j = 0; j < visible_end; j++) {
    float e = s[j] == -INFINITY ? 0.0f : fast_expf (s[j] - max);
    s[j] = e;
    sum += e;
  }
  for (guint32 j = visible_end; j < kv; j++)
    s[j] = 0.0f;
  return sum;
}

HOT static void
attention_head (const F2AttentionParams *p, guint32 b, guint32 h,
    const float *q, const float *k, const float *v, const gint32 *mask,
    guint32 kv, float *out, float *scratch)
{
  gboolean window = (p->flags & F2_ATTN_WINDOW) != 0;
  guint32 hd = p->head_dim;
  gsize col = (gsize) h * hd;
  gsize ldk = ROUND16 (MAX (kv, 1));
  float *kt = scratch;
  float *s = scratch + (gsize) hd * ROUND16 (p->kv_len);

  for (guint32 j = 0; j < kv; j++) {
    const float *kj = k + (window ? window_row (p, b, j) : j) * p->k_stride + col;
    for (guint32 d = 0; d < hd; d++)
      kt[d * ldk + j] = kj[d];
  }
  for (guint32 i = 0; i < p->q_len; i++) {
    gsize row = window ? window_row (p, b, i) : i;
    float *o = out + row * p->o_stride + col;
    guint32 visible_end = kv;
    float sum;

    if (p->flags & F2_ATTN_CAUSAL) {
      gint64 last = (gint64) i + p->causal_offset;
      visible_end = last < 0 ? 0 : (guint32) MIN ((gint64) kv, last + 1);
    }
    attention_scores (q + row * p->q_stride + col, kt, hd, visible_end, ldk, s);
    sum = attention_softmax_row (s, kv, visible_end, mask, p->scale);
    for (guint32 d = 0; d < hd; d++)
      o[d] = 0.0f;
    if (sum == 0.0f)
      continue;
    for (guint32 j = 0; j < visible_end; j++) {
      const float w = s[j] / sum;
      const float *vj = v + (window ? window_row (p, b, j) : j) * p->v_stride + col;
      if (w == 0.0f)
        continue;
      for (guint32 d = 0; d < hd; d++)
        o[d] += w * vj[d];
    }
  }
}

void
f2_cpu_attention (const F2AttentionParams *p, const float *q, const float *k,
    const float *v, const gint32 *mask, gint32 kv_len_dynamic, float *out,
    float *scratch, guint threads)
{
  gboolean window = (p->flags & F2_ATTN_WINDOW) != 0;
  guint32 batch = window ? (p->grid_h / p->window) * (p->grid_w / p->window) : p->batch;
  guint32 kv = p->kv_len;
  gsize per_thread = attention_scratch (p);
  gint64 tasks = (gint64) batch * p->n_heads;

  if (p->flags & F2_ATTN_DYNAMIC_KV)
    kv = kv_len_dynamic >= 0 ? MIN (kv, (guint32) kv_len_dynamic) : 0;

#pragma omp parallel for schedule(dynamic, 1)
  for (gint64 t = 0; t < tasks; t++) {
    guint32 b = t / p->n_heads, h = t % p->n_heads;
    gsize qo = window ? 0 : b * p->q_batch, ko = window ? 0 : b * p->k_batch;
    gsize vo = window ? 0 : b * p->v_batch, oo = window ? 0 : b * p->o_batch;
    const gint32 *mb = (p->flags & F2_ATTN_KEY_MASK) && mask ? mask + b * p->mask_batch : NULL;

    attention_head (p, b, h, q + qo, k + ko, v + vo, mb, kv, out + oo,
        scratch + per_thread * omp_get_thread_num ());
  }
}

/* ---------------------------------------------------- channel attention */

/* Tokens per partial sum of the channel attention: float sums of this many
 * products, combined in double. */
#define CHANNEL_CHUNK 1024

static guint32
channel_chunks (const F2ChannelAttentionParams *p)
{
  return MAX (1, (p->tokens + CHANNEL_CHUNK - 1) / CHANNEL_CHUNK);
}

/* A_partial[c][c'] = sum over the chunk's tokens of (q[n][c]*scale) k[n][c'] */
HOT static void
channel_partial (const float *restrict q, const float *restrict k, gsize ld,
    guint32 n0, guint32 n1, guint32 cg, float scale, float *restrict acc)
{
  memset (acc, 0, sizeof (float) * cg * cg);
  for (guint32 n = n0; n < n1; n++) {
    const float *qn = q + n * ld, *kn = k + n * ld;
    for (guint32 c = 0; c < cg; c++) {
      const float qs = qn[c] * scale;
      float *row = acc + (gsize) c * cg;
      for (guint32 c2 = 0; c2 < cg; c2++)
        row[c2] += qs * kn[c2];
    }
  }
}

/* out[n][c] = sum_c' A[c][c'] v[n][c'], with at = A transposed */
HOT static void
channel_apply (const float *restrict v, gsize ld, const float *restrict at,
    guint32 n0, guint32 n1, guint32 cg, float *restrict out, gsize ldo)
{
  for (guint32 n = n0; n < n1; n++) {
    const float *vn = v + n * ld;
    float *on = out + n * ldo;
    for (guint32 c = 0; c < cg; c++)
      on[c] = 0.0f;
    for (guint32 c2 = 0; c2 < cg; c2++) {
      const float vv = vn[c2];
      const float *arow = at + (gsize) c2 * cg;
      for (guint32 c = 0; c < cg; c++)
        on[c] += vv * arow[c];
    }
  }
}

void
f2_cpu_channel_attention (const F2ChannelAttentionParams *p, const float *qkv,
    float *out, float *scratch, guint threads)
{
  guint32 cg = p->channels / p->groups;
  guint32 chunks = channel_chunks (p);
  gsize ld = (gsize) 3 * p->channels, cc = (gsize) cg * cg;
  float *partial = scratch;                     /* [groups][chunks][cg][cg] */
  float *at = scratch + (gsize) p->groups * chunks * cc;   /* [groups][cg][cg] */
  gint64 tasks = (gint64) p->groups * chunks;

#pragma omp parallel for schedule(dynamic, 1)
  for (gint64 t = 0; t < tasks; t++) {
    guint32 g = t / chunks, chunk = t % chunks;
    guint32 n0 = chunk * CHANNEL_CHUNK, n1 = MIN (p->tokens, n0 + CHANNEL_CHUNK);
    channel_partial (qkv + (gsize) g * cg, qkv + p->channels + (gsize) g * cg, ld,
        n0, n1, cg, p->scale, partial + (gsize) t * cc);
  }

  /* softmax of each row of A, stored transposed */
#pragma omp parallel for schedule(static)
  for (gint64 gc = 0; gc < (gint64) p->groups * cg; gc++) {
    guint32 g = gc / cg, c = gc % cg;
    double row[cg], max = -INFINITY, sum = 0.0;

    for (guint32 c2 = 0; c2 < cg; c2++) {
      double s = 0.0;
      for (guint32 chunk = 0; chunk < chunks; chunk++)
        s += partial[((gsize) g * chunks + chunk) * cc + (gsize) c * cg + c2];
      row[c2] = s;
      max = MAX (max, s);
    }
    for (guint32 c2 = 0; c2 < cg; c2++) {
      row[c2] = exp (row[c2] - max);
      sum += row[c2];
    }
    for (guint32 c2 = 0; c2 < cg; c2++)
      at[(gsize) g * cc + (gsize) c2 * cg + c] = (float) (row[c2] / sum);
  }

#pragma omp parallel for schedule(dynamic, 1)
  for (gint64 t = 0; t < tasks; t++) {
    guint32 g = t / chunks, chunk = t % chunks;
    guint32 n0 = chunk * CHANNEL_CHUNK, n1 = MIN (p->tokens, n0 + CHANNEL_CHUNK);
    channel_apply (qkv + 2 * (gsize) p->channels + (gsize) g * cg, ld,
        at + (gsize) g * cc, n0, n1, cg, out + (gsize) g * cg, p->channels);
  }
}

/* ------------------------------------------------------ scratch per op */

gsize
f2_cpu_kernel_scratch (const F2Op *op, guint threads)
{
  switch (op->kind) {
    case F2_OP_ATTENTION:
      return attention_scratch (&op->p.attention) * threads * sizeof (float);
    case F2_OP_CHANNEL_ATTENTION:{
      const F2ChannelAttentionParams *p = &op->p.channel_attention;
      gsize cg = p->groups ? p->channels / p->groups : 0;
      return (channel_chunks (p) + 1) * (gsize) p->groups * cg * cg * sizeof (float);
    }
    case F2_OP_DWCONV3X3:
      return (gsize) 9 * op->p.dwconv.c * sizeof (float);
    default:
      return 0;
  }
}

/* ------------------------------------------------------- normalisation */

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

void
f2_cpu_layer_norm (const F2LayerNormParams *p, const float *x,
    const float *gamma, const float *beta, const float *residual, float *out)
{
  gsize ldx = PACKED (p->ldx, p->cols), ldo = PACKED (p->ldo, p->cols);

#pragma omp parallel for schedule(static)
  for (gint64 r = 0; r < p->rows; r++)
    layer_norm_row (x + r * ldx, residual ? residual + r * ldx : NULL, gamma,
        beta, p->cols, p->eps, out + r * ldo);
}

HOT static void
softmax_row (float *restrict x, guint32 cols, float scale)
{
  float max = -INFINITY, sum = 0.0f;

  for (guint32 c = 0; c < cols; c++) {
    x[c] *= scale;
    max = x[c] > max ? x[c] : max;
  }
  for (guint32 c = 0; c < cols; c++) {
    x[c] = fast_expf (x[c] - max);
    sum += x[c];
  }
  for (guint32 c = 0; c < cols; c++)
    x[c] /= sum;
}

void
f2_cpu_softmax (const F2SoftmaxParams *p, float *x)
{
#pragma omp parallel for schedule(static)
  for (gint64 r = 0; r < p->rows; r++)
    softmax_row (x + r * p->cols, p->cols, p->scale);
}

/* ------------------------------------------------------- convolutions */

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

/* The weights [c][9] are read transposed, [9][c], from @wt (working
 * memory of 9*c floats). */
void
f2_cpu_dwconv3x3 (const F2DwConvParams *p, const float *x, const float *w,
    const float *bias, float *out, float *wt)
{
  for (guint32 ch = 0; ch < p->c; ch++)
    for (guint32 t = 0; t < 9; t++)
      wt[(gsize) t * p->c + ch] = w[(gsize) ch * 9 + t];
#pragma omp parallel for schedule(static)
  for (gint64 y = 0; y < p->h; y++)
    dwconv_row (p, y, x, wt, bias, out);
}

/* Gathers the patches of a convolution into rows [ho*wo][cin*k*k] (the
 * order of the weights' columns), as fp32 or bf16. */
void
f2_cpu_im2col (const F2Conv2dParams *p, const float *x, void *rows,
    gboolean bf16)
{
  guint32 ho = (p->h + 2 * p->pad - p->kernel) / p->stride + 1;
  guint32 wo = (p->w + 2 * p->pad - p->kernel) / p->stride + 1;
  gsize kk = (gsize) p->kernel * p->kernel, kdim = p->cin * kk;

#pragma omp parallel for schedule(static)
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

/* Round to nearest even bf16. */
HOT static void
row_to_bf16 (const float *restrict x, guint32 cols, guint16 *restrict out)
{
  const guint32 *u = (const guint32 *) x;

  for (guint32 c = 0; c < cols; c++)
    out[c] = (u[c] + 0x7fff + ((u[c] >> 16) & 1)) >> 16;
}

void
f2_cpu_to_bf16 (const float *x, guint32 rows, guint32 cols, guint32 ldx,
    guint16 *out)
{
#pragma omp parallel for schedule(static)
  for (gint64 r = 0; r < rows; r++)
    row_to_bf16 (x + r * ldx, cols, out + r * cols);
}

/* ----------------------------------------------------------- elementwise */

void
f2_cpu_add (const F2AddParams *p, const float *a, const float *b, float *out)
{
  gsize period = p->b_period ? p->b_period : p->n;

#pragma omp parallel for schedule(static)
  for (gint64 i = 0; i < p->n; i++)
    out[i] = a[i] + b[i % period];
}

void
f2_cpu_copy (const F2CopyParams *p, const float *x, const gint32 *row_index,
    float *out)
{
  gsize ldx = PACKED (p->ldx, p->cols), ldo = PACKED (p->ldo, p->cols);
  gsize max_src = p->rows ? p->rows - 1 : 0;
  gboolean disjoint;

  if (p->rows == 0)
    return;
  for (guint32 r = 0; row_index != NULL && r < p->rows; r++)
    max_src = MAX (max_src, (gsize) row_index[r]);
  /* rows are copied in order (as the reference does) when they overlap */
  disjoint = out + (p->rows - 1) * ldo + p->cols <= x || x + max_src * ldx + p->cols <= out;

#pragma omp parallel for schedule(static) if (disjoint && p->rows * (gsize) p->cols > 65536)
  for (gint64 r = 0; r < p->rows; r++) {
    gsize src = row_index ? (gsize) row_index[r] : (gsize) r;
    memmove (out + r * ldo, x + src * ldx, sizeof (float) * p->cols);
  }
}

void
f2_cpu_mean_rows (const F2MeanRowsParams *p, const float *x, float *out)
{
  gsize ldx = PACKED (p->ldx, p->cols);

#pragma omp parallel for schedule(static)
  for (gint64 c = 0; c < p->cols; c++) {
    double sum = 0.0;
    for (guint32 r = 0; r < p->rows; r++)
      sum += x[r * ldx + c];
    out[c] = p->rows > 0 ? (float) (sum / p->rows) : 0.0f;
  }
}

/* --------------------------------------------------- logits reductions */

static gboolean
is_banned (const gint32 *banned, guint32 max_banned, guint32 id)
{
  for (guint32 i = 0; banned != NULL && i < max_banned; i++)
    if (banned[i] >= 0 && (guint32) banned[i] == id)
      return TRUE;
  return FALSE;
}

/* The banned list is looked at only for a value that would be taken. */
void
f2_cpu_argmax (const F2ArgmaxParams *p, const float *x, const gint32 *banned,
    gint32 *out)
{
  gsize ldx = PACKED (p->ldx, p->cols);

#pragma omp parallel for schedule(static)
  for (gint64 r = 0; r < p->rows; r++) {
    const float *xr = x + r * ldx;
    const gint32 *br = banned ? banned + r * p->max_banned : NULL;
    gint32 best = -1;

    /* strictly greater keeps the lowest index among equal values */
    for (guint32 c = 0; c < p->cols; c++)
      if ((best < 0 || xr[c] > xr[best]) && !is_banned (br, p->max_banned, c))
        best = (gint32) c;
    out[r] = best;
  }
}

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

void
f2_cpu_topk (const F2TopkParams *p, const float *x, const gint32 *banned,
    gint32 *out_ids, float *out_values)
{
  gsize ldx = PACKED (p->ldx, p->cols);

#pragma omp parallel for schedule(static)
  for (gint64 r = 0; r < p->rows; r++) {
    const float *xr = x + r * ldx;
    const gint32 *br = banned ? banned + r * p->max_banned : NULL;
    gint32 *ids = out_ids + r * p->k;
    float *vals = out_values + r * p->k;
    double lse = log_sum_exp (xr, p->cols);
    guint32 found = 0;

    for (guint32 i = 0; i < p->k; i++) {
      ids[i] = -1;
      vals[i] = -INFINITY;
    }
    /* a sorted list of at most k, descending, ties keep the lower index */
    for (guint32 c = 0; c < p->cols; c++) {
      guint32 pos;

      if (found == p->k && !(xr[c] > xr[ids[p->k - 1]]))
        continue;
      if (is_banned (br, p->max_banned, c))
        continue;
      pos = found;
      while (pos > 0 && xr[c] > xr[ids[pos - 1]])
        pos--;
      if (pos >= p->k)
        continue;
      for (guint32 j = MIN (found, p->k - 1); j > pos; j--)
        ids[j] = ids[j - 1];
      ids[pos] = (gint32) c;
      if (found < p->k)
        found++;
    }
    for (guint32 i = 0; i < found; i++)
      vals[i] = (float) ((double) xr[ids[i]] - lse);
  }
}
