/* The CPU backend's own kernels: every op that is not a matmul, in plain C
 * that the compiler vectorises (loops over contiguous channels or keys),
 * threaded with OpenMP over rows, heads or windows. Accumulation is fp32;
 * the tests hold these to the reference's fp32 results. */
#include "cpu-private.h"
#include "reference-ops.h"

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
/* Work (in multiply-adds or elements) below which an op runs on the calling
 * thread: waking the other threads costs more than it saves, and on a busy
 * machine every parallel region waits for its slowest thread. */
#define PARALLEL_WORTH(work) ((work) >= 65536)
#define ROUND16(x) (((x) + 15) & ~(gsize) 15)

/* 16 floats: one AVX-512 register (two or four on narrower clones) */
typedef float v16 __attribute__ ((vector_size (64)));
typedef float v16u __attribute__ ((vector_size (64), aligned (4)));
typedef gint32 v16i __attribute__ ((vector_size (64)));
/* Helpers on v16 values are always inlined: they then take the vector
 * width of the clone that calls them (a call would need one ABI for all). */
#define V16_INLINE static inline __attribute__ ((always_inline))

V16_INLINE v16
v16_select (v16i mask, v16 a, v16 b)
{
  return (v16) ((mask & (v16i) a) | (~mask & (v16i) b));
}

V16_INLINE float
v16_hmax (v16 v)
{
  float m = v[0];
  for (int i = 1; i < 16; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

V16_INLINE float
v16_hsum (v16 v)
{
  float s = 0.0f;
  for (int i = 0; i < 16; i++)
    s += v[i];
  return s;
}

/* exp for the softmaxes, 16 at a time: Cody-Waite reduction and a degree-6
 * polynomial (within 2 ulp of expf); 0 below -87, as expf underflows. */
V16_INLINE v16
exp16 (v16 x)
{
  v16 y, n, r, p, tf;
  v16i t, scale;

  y = v16_select (x < -87.0f, (v16) { 0 } - 87.0f, x);
  y = v16_select (y > 88.0f, (v16) { 0 } + 88.0f, y);
  tf = y * 1.44269504088896341f + 0.5f;
  t = __builtin_convertvector (tf, v16i);               /* toward zero */
  n = __builtin_convertvector (t, v16);
  t += (v16i) (n > tf);                                 /* floor: -1 where rounded up */
  n = __builtin_convertvector (t, v16);
  r = y - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  scale = (t + 127) << 23;
  return v16_select (x < -87.0f, (v16) { 0 }, p * (v16) scale);
}

/* Softmax of s[0..n) in place (n a multiple of 16) over the keys before
 * @visible_end; the others, and a row with nothing visible, get 0. Entries
 * already -INFINITY (masked) get 0. */
HOT static void
softmax16 (float *restrict s, gsize n, gsize visible_end, float scale)
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

/* scalar exp for the few places that need it: log-sum-exp */
static inline float
fast_expf (float x)
{
  v16 v = { x };
  return exp16 (v)[0];
}

/* ------------------------------------------------------------ attention */

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

static gsize
window_row (const F2AttentionParams *p, guint32 b, guint32 t)
{
  guint32 win_cols = p->grid_w / p->window;
  guint32 wy = b / win_cols, wx = b % win_cols;
  guint32 ly = t / p->window, lx = t % p->window;

  return (gsize) (wy * p->window + ly) * p->grid_w + wx * p->window + lx;
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
  softmax16 (s, kvp, visible_end, scale);
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
    gsize row = window ? window_row (p, b, j) : j;
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
      gsize row = window ? window_row (p, b, i0 + qi) : i0 + qi;
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
      gsize row = window ? window_row (p, b, i0 + qi) : i0 + qi;
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

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++)
    layer_norm_row (x + r * ldx, residual ? residual + r * ldx : NULL, gamma,
        beta, p->cols, p->eps, out + r * ldo);
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

void
f2_cpu_softmax (const F2SoftmaxParams *p, float *x)
{
#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++) {
    float *row = x + r * p->cols;

    if (p->cols % 16 == 0)
      softmax16 (row, p->cols, p->cols, p->scale);
    else
      softmax_unaligned (row, p->cols, p->scale);
  }
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
#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->h * p->w * p->c * 9))
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
#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) rows * cols))
  for (gint64 r = 0; r < rows; r++)
    row_to_bf16 (x + r * ldx, cols, out + r * cols);
}

/* ----------------------------------------------------------- elementwise */

void
f2_cpu_add (const F2AddParams *p, const float *a, const float *b, float *out)
{
  gsize period = p->b_period ? p->b_period : p->n;

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->n))
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

#pragma omp parallel for schedule(static) if (disjoint && PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++) {
    gsize src = row_index ? (gsize) row_index[r] : (gsize) r;
    memmove (out + r * ldo, x + src * ldx, sizeof (float) * p->cols);
  }
}

void
f2_cpu_mean_rows (const F2MeanRowsParams *p, const float *x, float *out)
{
  gsize ldx = PACKED (p->ldx, p->cols);

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 c = 0; c < p->cols; c++) {
    double sum = 0.0;
    for (guint32 r = 0; r < p->rows; r++)
      sum += x[r * ldx + c];
    out[c] = p->rows > 0 ? (float) (sum / p->rows) : 0.0f;
  }
}

/* --------------------------------------------------- logits reductions */

/* The banned list is looked at only for a value that would be taken. */
void
f2_cpu_argmax (const F2ArgmaxParams *p, const float *x, const gint32 *banned,
    gint32 *out)
{
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

#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) p->rows * p->cols))
  for (gint64 r = 0; r < p->rows; r++)
    f2_reference_topk_row (x + r * ldx, p->cols, banned ? banned + r * p->max_banned : NULL,
        p->max_banned, p->k, log_sum_exp (x + r * ldx, p->cols), out_ids + r * p->k,
        out_values + r * p->k);
}
