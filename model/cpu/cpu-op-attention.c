/* The attention family on the cpu backend: fused multi-head attention
 * (encoder, decoder self- and cross-attention with beams, DaViT windows)
 * and DaViT channel attention, threaded over heads, windows and token
 * chunks. Accumulation is fp32; the tests hold them to the reference's fp32
 * results. */
#include "cpu-ops.h"
#include "cpu-simd.h"

#include <omp.h>
#include <string.h>

/* Attention works on blocks of QB queries: scores against 16 keys at a
 * time, then outputs 16 channels at a time, with the block's accumulators
 * in registers. K is gathered transposed ([d][key]) and V and Q copied
 * contiguous, all padded with zeros to multiples of 16. */
#define QB 8                    /* queries per block: one accumulator register each */
/* Up to this many queries per head, keys and values are read in place
 * rather than gathered into blocks */
#define DIRECT_QUERIES 8

static gsize
attention_scratch (const F2AttentionParams *p)
{
  gsize kvp = ROUND16 (p->kv_len), hdp = ROUND16 (p->head_dim);

  /* K^T, V, the query block and the score block */
  return hdp * kvp + kvp * hdp + QB * hdp + QB * kvp + 16;
}

/* s[qi][j] = q[qi] . k_j for QB queries (q: [QB][hdp]) and kvp keys (kt:
 * [hdp][kvp]): each key vector loaded once serves QB queries */
HOT static void
attention_scores (const float *restrict q, const float *restrict kt,
    gsize hdp, gsize kvp, float *restrict s)
{
  for (gsize j0 = 0; j0 < kvp; j0 += 16) {
    v16 acc[QB] = { { 0 } };
    for (gsize d = 0; d < hdp; d++) {
      v16 kd = *(const v16u *) (kt + d * kvp + j0);
#pragma GCC unroll 8
      for (int qi = 0; qi < QB; qi++)
        acc[qi] += q[qi * hdp + d] * kd;
    }
#pragma GCC unroll 8
    for (int qi = 0; qi < QB; qi++)
      *(v16u *) (s + qi * kvp + j0) = acc[qi];
  }
}

/* o[qi][:] = sum_j p[qi][j] v[j][:] for QB rows of probabilities p
 * ([QB][kvp]) and v ([kvp][hdp]) */
HOT static void
attention_values (const float *restrict pr, const float *restrict v,
    gsize hdp, gsize kv, gsize kvp, float *restrict o)
{
  for (gsize d0 = 0; d0 < hdp; d0 += 16) {
    v16 acc[QB] = { { 0 } };
    for (gsize j = 0; j < kv; j++) {
      v16 vj = *(const v16u *) (v + j * hdp + d0);
#pragma GCC unroll 8
      for (int qi = 0; qi < QB; qi++)
        acc[qi] += pr[qi * kvp + j] * vj;
    }
#pragma GCC unroll 8
    for (int qi = 0; qi < QB; qi++)
      *(v16u *) (o + qi * hdp + d0) = acc[qi];
  }
}

/* The visible keys of one query: before @visible_end, and not masked. */
static void
attention_softmax_row (float *restrict s, gsize kvp, guint32 visible_end,
    const gint32 *mask, float scale)
{
  for (guint32 j = 0; mask != NULL && j < visible_end; j++)
    if (mask[j] == 0)
      s[j] = -INFINITY;
  f2_cpu_softmax16 (s, kvp, visible_end, scale);
}

static void
attention_head (const F2AttentionParams *p, guint32 b, guint32 h,
    const float *q, const float *k, const float *v, const gint32 *mask,
    guint32 kv, float *out, float *scratch)
{
  gboolean window = (p->flags & F2_ATTN_WINDOW) != 0;
  guint32 hd = p->head_dim;
  gsize hdp = ROUND16 (hd), kvp = ROUND16 (MAX (kv, 1)), col = (gsize) h * hd;
  float *kt = scratch;
  float *vb = kt + hdp * ROUND16 (p->kv_len);
  float *qb = vb + ROUND16 (p->kv_len) * hdp;
  float *sb = qb + QB * hdp;

  /* zeros in the padding only: keys kv..kvp and channels hd..hdp */
  for (guint32 d = 0; d < hdp; d++)
    memset (kt + d * kvp + (d < hd ? kv : 0), 0,
        sizeof (float) * (d < hd ? kvp - kv : kvp));
  for (guint32 j = 0; j < kvp; j++)
    memset (vb + j * hdp + (j < kv ? hd : 0), 0,
        sizeof (float) * (j < kv ? hdp - hd : hdp));
  for (guint32 j = 0; j < kv; j++) {
    gsize row = window ? f2_attention_window_row (p, b, j) : j;
    const float *kj = k + row * p->k_stride + col, *vj = v + row * p->v_stride + col;
    for (guint32 d = 0; d < hd; d++) {
      kt[d * kvp + j] = kj[d];
      vb[j * hdp + d] = vj[d];
    }
  }
  for (guint32 i0 = 0; i0 < p->q_len; i0 += QB) {
    guint32 n = MIN (QB, p->q_len - i0);

    memset (qb, 0, sizeof (float) * QB * hdp);
    for (guint32 qi = 0; qi < n; qi++) {
      gsize row = window ? f2_attention_window_row (p, b, i0 + qi) : i0 + qi;
      memcpy (qb + qi * hdp, q + row * p->q_stride + col, sizeof (float) * hd);
    }
    attention_scores (qb, kt, hdp, kvp, sb);
    for (guint32 qi = 0; qi < QB; qi++) {
      guint32 visible_end = qi < n ? kv : 0;
      if (qi < n && (p->flags & F2_ATTN_CAUSAL)) {
        gint64 last = (gint64) (i0 + qi) + p->causal_offset;
        visible_end = last < 0 ? 0 : (guint32) MIN ((gint64) kv, last + 1);
      }
      attention_softmax_row (sb + qi * kvp, kvp, visible_end, mask, p->scale);
    }
    attention_values (sb, vb, hdp, kv, kvp, qb);    /* the outputs replace the queries */
    for (guint32 qi = 0; qi < n; qi++) {
      gsize row = window ? f2_attention_window_row (p, b, i0 + qi) : i0 + qi;
      memcpy (out + row * p->o_stride + col, qb + qi * hdp, sizeof (float) * hd);
    }
  }
}

/* Keys per task of the direct path */
#define DIRECT_CHUNK 64
/* Rows ahead that the direct path prefetches */
#define DIRECT_PREFETCH 4

/* What a task of the direct path leaves per head: the chunk's largest
 * scaled score m, the sum l of exp (score - m) and the output o (hd floats)
 * weighted by exp (score - m), not yet divided by l. */
#define DIRECT_PARTIAL(hd) (2 + (gsize) (hd))

/* Few queries (decoding: one per beam): keys j0..j1-1 of query @i for
 * every head, straight from the key and value rows, nothing gathered. A
 * task reads its rows front to back once, all heads at a time (their
 * columns sit side by side), and the rows stay in cache from the scores to
 * the values; chunks of keys are combined afterwards (direct_combine). s:
 * n_heads * DIRECT_CHUNK floats. */
HOT static void
attention_chunk_direct (const F2AttentionParams *p, guint32 i, guint32 j0,
    guint32 j1, const float *q, const float *k, const float *v,
    const gint32 *mask, float *partial, float *s)
{
  guint32 hd = p->head_dim, nh = p->n_heads, n = j1 > j0 ? j1 - j0 : 0;
  const float *qi = q + i * p->q_stride;

  for (guint32 j = 0; j < n; j++) {
    const float *kj = k + (gsize) (j0 + j) * p->k_stride;
    const float *vj = v + (gsize) (j0 + j) * p->v_stride;
    gboolean hidden = mask != NULL && mask[j0 + j] == 0;

    /* the rows come from memory: ask for the next keys and these values
     * early (strided rows defeat the hardware prefetchers) */
    for (guint32 c = 0; c < nh * hd; c += 16) {
      if (j + DIRECT_PREFETCH < n)
        __builtin_prefetch (kj + (gsize) DIRECT_PREFETCH * p->k_stride + c);
      __builtin_prefetch (vj + c);
    }
    for (guint32 h = 0; h < nh; h++) {
      const float *qh = qi + h * hd, *kh = kj + h * hd;
      float dot = 0.0f;
      guint32 d = 0;
      if (hd % 16 == 0) {
        v16 acc = { 0 };
        for (; d < hd; d += 16)
          acc += *(const v16u *) (qh + d) * *(const v16u *) (kh + d);
        dot = v16_hsum (acc);
      }
      for (; d < hd; d++)
        dot += qh[d] * kh[d];
      s[h * DIRECT_CHUNK + j] = hidden ? -INFINITY : dot * p->scale;
    }
  }
  for (guint32 h = 0; h < nh; h++) {
    float *sh = s + h * DIRECT_CHUNK, *ph = partial + h * DIRECT_PARTIAL (hd);
    v16 vmax = (v16) { 0 } - INFINITY, vsum = { 0 };
    float m;

    for (guint32 j = n; j < DIRECT_CHUNK; j++)
      sh[j] = -INFINITY;
    for (guint32 j = 0; j < DIRECT_CHUNK; j += 16) {
      v16 x = *(v16u *) (sh + j);
      vmax = v16_select (x > vmax, x, vmax);
    }
    m = v16_hmax (vmax);
    for (guint32 j = 0; j < DIRECT_CHUNK; j += 16) {
      /* exp16 gives 0 far below the largest score, and for the padding */
      v16 e = m == -INFINITY ? (v16) { 0 } : exp16 (*(v16u *) (sh + j) - m);
      *(v16u *) (sh + j) = e;
      vsum += e;
    }
    ph[0] = m;
    ph[1] = v16_hsum (vsum);
    for (guint32 d = 0; d < hd; d++)
      ph[2 + d] = 0.0f;
  }
  for (guint32 j = 0; j < n; j++) {
    const float *vj = v + (gsize) (j0 + j) * p->v_stride;
    for (guint32 h = 0; h < nh; h++) {
      const float w = s[h * DIRECT_CHUNK + j];
      float *oh = partial + h * DIRECT_PARTIAL (hd) + 2;
      const float *vh = vj + h * hd;
      guint32 d = 0;
      if (w == 0.0f)
        continue;
      for (; hd % 16 == 0 && d < hd; d += 16)
        *(v16u *) (oh + d) += w * *(const v16u *) (vh + d);
      for (; d < hd; d++)
        oh[d] += w * vh[d];
    }
  }
}

/* The softmax over all chunks of a query and head: each chunk's share
 * rescaled to the overall largest score; no visible key gives zeros. */
static void
direct_combine (const float *partials, guint32 chunks, guint32 stride,
    guint32 hd, float *out)
{
  float m = -INFINITY, l = 0.0f;

  for (guint32 c = 0; c < chunks; c++)
    m = partials[c * stride] > m ? partials[c * stride] : m;
  for (guint32 d = 0; d < hd; d++)
    out[d] = 0.0f;
  if (m == -INFINITY)
    return;
  for (guint32 c = 0; c < chunks; c++) {
    const float *pc = partials + c * stride;
    float w = pc[0] == -INFINITY ? 0.0f : fast_expf (pc[0] - m);
    l += w * pc[1];
    for (guint32 d = 0; d < hd; d++)
      out[d] += w * pc[2 + d];
  }
  for (guint32 d = 0; d < hd; d++)
    out[d] /= l;
}

static guint32
direct_chunks (const F2AttentionParams *p)
{
  return (MAX (p->kv_len, 1) + DIRECT_CHUNK - 1) / DIRECT_CHUNK;
}

/* Floats of the direct path's partial results, after the threads' regions */
static gsize
direct_partials (const F2AttentionParams *p)
{
  return (gsize) p->batch * p->q_len * direct_chunks (p) * p->n_heads
      * DIRECT_PARTIAL (p->head_dim);
}

static gboolean
prepare_attention (F2CpuBackend *self, F2CpuStep *step, gsize *scratch_end,
    GError **error)
{
  const F2AttentionParams *p = &step->op.p.attention;
  gsize per_thread = MAX (attention_scratch (p), (gsize) p->n_heads * DIRECT_CHUNK);

  *scratch_end = (per_thread * self->threads + direct_partials (p)) * sizeof (float);
  return TRUE;
}

static gboolean
run_attention (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  const F2AttentionParams *p = &step->op.p.attention;
  const float *q = step->in[0], *k = step->in[1], *v = step->in[2];
  const gint32 *mask = step->in[3], *kv_len_ref = step->in[4];
  float *out = step->out, *scratch = (float *) run->scratch;
  gboolean window = (p->flags & F2_ATTN_WINDOW) != 0;
  guint32 batch = window ? (p->grid_h / p->window) * (p->grid_w / p->window) : p->batch;
  guint32 kv = p->kv_len;
  gsize per_thread = MAX (attention_scratch (p), (gsize) p->n_heads * DIRECT_CHUNK);
  gint64 tasks = (gint64) batch * p->n_heads;

  if (p->flags & F2_ATTN_DYNAMIC_KV)
    kv = kv_len_ref != NULL && *kv_len_ref >= 0 ? MIN (kv, (guint32) *kv_len_ref) : 0;

  if (!window && p->q_len <= DIRECT_QUERIES) {
    /* one task per batch entry, query and chunk of keys, then one per
     * batch entry, query and head to combine the chunks */
    guint32 chunks = direct_chunks (p), stride = DIRECT_PARTIAL (p->head_dim);
    gint64 chunk_tasks = (gint64) batch * p->q_len * chunks;
    gint64 heads = (gint64) batch * p->q_len * p->n_heads;
    float *partials = scratch + per_thread * self->threads;
    gboolean parallel = PARALLEL_WORTH ((gsize) batch * p->n_heads * p->q_len * kv
        * p->head_dim);

#pragma omp parallel if (parallel)
    {
#pragma omp for schedule(dynamic, 1)
      for (gint64 t = 0; t < chunk_tasks; t++) {
        guint32 b = t / ((gint64) p->q_len * chunks), i = (t / chunks) % p->q_len;
        guint32 c = t % chunks, visible_end = kv;
        const gint32 *mb = (p->flags & F2_ATTN_KEY_MASK) && mask ? mask + b * p->mask_batch : NULL;

        if (p->flags & F2_ATTN_CAUSAL) {
          gint64 last = (gint64) i + p->causal_offset;
          visible_end = last < 0 ? 0 : (guint32) MIN ((gint64) kv, last + 1);
        }
        attention_chunk_direct (p, i, c * DIRECT_CHUNK,
            MIN ((c + 1) * DIRECT_CHUNK, visible_end), q + b * p->q_batch,
            k + b * p->k_batch, v + b * p->v_batch, mb,
            partials + (gsize) t * p->n_heads * stride,
            scratch + per_thread * omp_get_thread_num ());
      }
#pragma omp for schedule(static)
      for (gint64 t = 0; t < heads; t++) {
        guint32 h = t % p->n_heads, i = (t / p->n_heads) % p->q_len;
        guint32 b = t / ((gint64) p->q_len * p->n_heads);
        gint64 first = ((gint64) b * p->q_len + i) * chunks;

        direct_combine (partials + ((gsize) first * p->n_heads + h) * stride, chunks,
            p->n_heads * stride, p->head_dim,
            out + b * p->o_batch + i * p->o_stride + (gsize) h * p->head_dim);
      }
    }
    return TRUE;
  }

#pragma omp parallel for schedule(dynamic, 1) if (PARALLEL_WORTH (tasks * (gsize) p->q_len * kv * p->head_dim))
  for (gint64 t = 0; t < tasks; t++) {
    guint32 b = t / p->n_heads, h = t % p->n_heads;
    gsize qo = window ? 0 : b * p->q_batch, ko = window ? 0 : b * p->k_batch;
    gsize vo = window ? 0 : b * p->v_batch, oo = window ? 0 : b * p->o_batch;
    const gint32 *mb = (p->flags & F2_ATTN_KEY_MASK) && mask ? mask + b * p->mask_batch : NULL;

    float *mine = scratch + per_thread * omp_get_thread_num ();

    attention_head (p, b, h, q + qo, k + ko, v + vo, mb, kv, out + oo, mine);
  }
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_attention = { prepare_attention, run_attention };

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

static gboolean
prepare_channel_attention (F2CpuBackend *self, F2CpuStep *step, gsize *scratch_end,
    GError **error)
{
  const F2ChannelAttentionParams *p = &step->op.p.channel_attention;
  gsize cg = p->channels / p->groups;

  *scratch_end = (channel_chunks (p) + 1) * (gsize) p->groups * cg * cg * sizeof (float);
  return TRUE;
}

static gboolean
run_channel_attention (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step,
    GError **error)
{
  const F2ChannelAttentionParams *p = &step->op.p.channel_attention;
  const float *qkv = step->in[0];
  float *out = step->out, *scratch = (float *) run->scratch;
  guint32 cg = p->channels / p->groups;
  guint32 chunks = channel_chunks (p);
  gsize ld = (gsize) 3 * p->channels, cc = (gsize) cg * cg;
  float *partial = scratch;                     /* [groups][chunks][cg][cg] */
  float *at = scratch + (gsize) p->groups * chunks * cc;   /* [groups][cg][cg] */
  gint64 tasks = (gint64) p->groups * chunks;

#pragma omp parallel for schedule(dynamic, 1) if (PARALLEL_WORTH ((gsize) p->tokens * p->channels * cg))
  for (gint64 t = 0; t < tasks; t++) {
    guint32 g = t / chunks, chunk = t % chunks;
    guint32 n0 = chunk * CHANNEL_CHUNK, n1 = MIN (p->tokens, n0 + CHANNEL_CHUNK);
    channel_partial (qkv + (gsize) g * cg, qkv + p->channels + (gsize) g * cg, ld,
        n0, n1, cg, p->scale, partial + (gsize) t * cc);
  }

  /* softmax of each row of A, stored transposed */
#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->groups * cg * cg * chunks))
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

#pragma omp parallel for schedule(dynamic, 1) if (PARALLEL_WORTH ((gsize) p->tokens * p->channels * cg))
  for (gint64 t = 0; t < tasks; t++) {
    guint32 g = t / chunks, chunk = t % chunks;
    guint32 n0 = chunk * CHANNEL_CHUNK, n1 = MIN (p->tokens, n0 + CHANNEL_CHUNK);
    channel_apply (qkv + 2 * (gsize) p->channels + (gsize) g * cg, ld,
        at + (gsize) g * cc, n0, n1, cg, out + (gsize) g * cg, p->channels);
  }
  return TRUE;
}

const F2CpuKernel f2_cpu_kernel_channel_attention = {
  prepare_channel_attention, run_channel_attention
};
