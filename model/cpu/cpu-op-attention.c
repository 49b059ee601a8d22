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

/* Few queries (decoding: one per beam): scores as dot products straight
 * from the key rows, outputs straight from the value rows, with nothing
 * gathered; s is a score row of ROUND16 (kv_len) floats. */
HOT static void
attention_head_direct (const F2AttentionParams *p, guint32 h, const float *q,
    const float *k, const float *v, const gint32 *mask, guint32 kv, float *out,
    float *s)
{
  guint32 hd = p->head_dim;
  gsize col = (gsize) h * hd, kvp = ROUND16 (MAX (kv, 1));

  for (guint32 i = 0; i < p->q_len; i++) {
    const float *qi = q + i * p->q_stride + col;
    float *o = out + i * p->o_stride + col;
    guint32 visible_end = kv;

    if (p->flags & F2_ATTN_CAUSAL) {
      gint64 last = (gint64) i + p->causal_offset;
      visible_end = last < 0 ? 0 : (guint32) MIN ((gint64) kv, last + 1);
    }
    for (guint32 j = 0; j < visible_end; j++) {
      const float *kj = k + j * p->k_stride + col;
      float dot = 0.0f;
      guint32 d = 0;
      if (hd % 16 == 0) {
        v16 acc = { 0 };
        for (; d < hd; d += 16)
          acc += *(const v16u *) (qi + d) * *(const v16u *) (kj + d);
        dot = v16_hsum (acc);
      }
      for (; d < hd; d++)
        dot += qi[d] * kj[d];
      s[j] = dot;
    }
    attention_softmax_row (s, kvp, visible_end, mask, p->scale);
    for (guint32 d = 0; d < hd; d++)
      o[d] = 0.0f;
    for (guint32 j = 0; j < visible_end; j++) {
      const float w = s[j];
      const float *vj = v + j * p->v_stride + col;
      if (w == 0.0f)
        continue;
      for (guint32 d = 0; d < hd; d++)
        o[d] += w * vj[d];
    }
  }
}

static gboolean
prepare_attention (F2CpuBackend *self, F2CpuStep *step, gsize *scratch_end,
    GError **error)
{
  *scratch_end = attention_scratch (&step->op.p.attention) * self->threads * sizeof (float);
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
  gsize per_thread = attention_scratch (p);
  gint64 tasks = (gint64) batch * p->n_heads;

  if (p->flags & F2_ATTN_DYNAMIC_KV)
    kv = kv_len_ref != NULL && *kv_len_ref >= 0 ? MIN (kv, (guint32) *kv_len_ref) : 0;

#pragma omp parallel for schedule(dynamic, 1) if (PARALLEL_WORTH (tasks * (gsize) p->q_len * kv * p->head_dim))
  for (gint64 t = 0; t < tasks; t++) {
    guint32 b = t / p->n_heads, h = t % p->n_heads;
    gsize qo = window ? 0 : b * p->q_batch, ko = window ? 0 : b * p->k_batch;
    gsize vo = window ? 0 : b * p->v_batch, oo = window ? 0 : b * p->o_batch;
    const gint32 *mb = (p->flags & F2_ATTN_KEY_MASK) && mask ? mask + b * p->mask_batch : NULL;

    float *mine = scratch + per_thread * omp_get_thread_num ();

    if (!window && p->q_len <= DIRECT_QUERIES)
      attention_head_direct (p, h, q + qo, k + ko, v + vo, mb, kv, out + oo, mine);
    else
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
