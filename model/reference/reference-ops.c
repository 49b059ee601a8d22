/* The plain-C reference of every op kind, and the table of them (at the
 * end); see reference-ops.h. Clarity before speed. In the families of the
 * op table: matmul, conv, norm, attention, elementwise, reduce, resample.
 *
 * Each kernel names its tensors at the top, in slot order (ops.c); unset
 * optional slots are NULL. */
#include "reference-ops.h"
#include "backend-private.h"

#include <math.h>
#include <string.h>

#define PACKED(ld, dflt) ((ld) != 0 ? (ld) : (dflt))

/* ----------------------------------------------------------------- matmul */

/* Exact (erf) GELU, as torch.nn.functional.gelu. */
static double
gelu (double x)
{
  return 0.5 * x * (1.0 + erf (x * M_SQRT1_2));
}

/* Bias, activation and residual of MATMUL and CONV2D for one element. */
static float
epilogue (guint32 flags, double acc, const float *bias, guint32 n,
    const float *residual)
{
  float y;

  /* Rounded to float where the reference has a float tensor: after the
   * linear layer (bias included), after the activation, after the add. */
  if ((flags & F2_EPI_BIAS) && bias != NULL)
    acc += bias[n];
  y = (float) acc;
  if (flags & F2_EPI_GELU)
    y = (float) gelu (y);
  if ((flags & F2_EPI_RESIDUAL) && residual != NULL)
    y += *residual;
  return y;
}

/* out may equal residual (in-place residual add). */
static gboolean
reference_matmul (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2MatmulParams *p = &op->p.matmul;
  const float *a = t->in[0], *w = t->in[1], *bias = t->in[2], *residual = t->in[3];
  float *out = t->out;
  guint32 lda = PACKED (p->lda, p->k);
  guint32 ldo = PACKED (p->ldo, p->n);
  guint32 ldr = PACKED (p->ldr, p->n);

  for (guint32 m = 0; m < p->m; m++) {
    const float *arow = a + (gsize) m * lda;
    for (guint32 n = 0; n < p->n; n++) {
      const float *wrow = w + (gsize) n * p->k;
      double acc = 0.0;
      for (guint32 k = 0; k < p->k; k++)
        acc += (double) arow[k] * wrow[k];
      out[(gsize) m * ldo + n] = epilogue (p->flags, acc, bias, n,
          residual ? residual + (gsize) m * ldr + n : NULL);
    }
  }
  return TRUE;
}

/* ------------------------------------------------------------------- norm */

/* out may alias x; residual rows use the stride of x (ldx). */
static gboolean
reference_layer_norm (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2LayerNormParams *p = &op->p.layer_norm;
  const float *x = t->in[0], *gamma = t->in[1], *beta = t->in[2], *residual = t->in[3];
  float *out = t->out;
  guint32 ldx = PACKED (p->ldx, p->cols);
  guint32 ldo = PACKED (p->ldo, p->cols);
  double *row = g_new (double, MAX (p->cols, 1));

  for (guint32 r = 0; r < p->rows; r++) {
    const float *xr = x + (gsize) r * ldx;
    double mean = 0.0, var = 0.0, inv;

    /* The sum x + residual is a float tensor in the reference. */
    for (guint32 c = 0; c < p->cols; c++) {
      float v = xr[c];
      if (residual != NULL)
        v += residual[(gsize) r * ldx + c];
      row[c] = v;
      mean += v;
    }
    mean /= p->cols;
    for (guint32 c = 0; c < p->cols; c++)
      var += (row[c] - mean) * (row[c] - mean);
    var /= p->cols;
    inv = 1.0 / sqrt (var + p->eps);
    for (guint32 c = 0; c < p->cols; c++) {
      double y = (row[c] - mean) * inv;
      if (gamma != NULL)
        y *= gamma[c];
      if (beta != NULL)
        y += beta[c];
      out[(gsize) r * ldo + c] = (float) y;
    }
  }
  g_free (row);
  return TRUE;
}

/* In place: x is the output. */
static gboolean
reference_softmax (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2SoftmaxParams *p = &op->p.softmax;
  float *x = t->out;

  for (guint32 r = 0; r < p->rows; r++) {
    float *xr = x + (gsize) r * p->cols;
    double max = -INFINITY, sum = 0.0;

    for (guint32 c = 0; c < p->cols; c++)
      max = MAX (max, (double) xr[c] * p->scale);
    for (guint32 c = 0; c < p->cols; c++)
      sum += exp ((double) xr[c] * p->scale - max);
    for (guint32 c = 0; c < p->cols; c++)
      xr[c] = (float) (exp ((double) xr[c] * p->scale - max) / sum);
  }
  return TRUE;
}

/* -------------------------------------------------------------- attention */

/* A query that sees no key gets zeros. */
static gboolean
reference_attention (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2AttentionParams *p = &op->p.attention;
  const float *q = t->in[0], *k = t->in[1], *v = t->in[2];
  const gint32 *mask = t->in[3], *kv_len_ref = t->in[4];
  gint32 kv_len_dynamic = kv_len_ref != NULL ? *kv_len_ref : -1;
  float *out = t->out;
  gboolean window = (p->flags & F2_ATTN_WINDOW) != 0;
  guint32 batch = p->batch;
  guint32 kv_len = p->kv_len;
  double *scores = g_new (double, MAX (p->kv_len, 1));
  double *acc = g_new (double, MAX (p->head_dim, 1));

  if (window)
    batch = (p->grid_h / p->window) * (p->grid_w / p->window);
  if ((p->flags & F2_ATTN_DYNAMIC_KV) && kv_len_dynamic >= 0)
    kv_len = MIN (kv_len, (guint32) kv_len_dynamic);
  else if (p->flags & F2_ATTN_DYNAMIC_KV)
    kv_len = 0;

  for (guint32 b = 0; b < batch; b++) {
    const float *qb = q, *kb = k, *vb = v;
    const gint32 *mb = NULL;
    float *ob = out;

    if (!window) {
      qb += b * p->q_batch;
      kb += b * p->k_batch;
      vb += b * p->v_batch;
      ob += b * p->o_batch;
    }
    if ((p->flags & F2_ATTN_KEY_MASK) && mask != NULL)
      mb = mask + b * p->mask_batch;

    for (guint32 h = 0; h < p->n_heads; h++) {
      gsize col = (gsize) h * p->head_dim;

      for (guint32 i = 0; i < p->q_len; i++) {
        gsize qrow = window ? f2_attention_window_row (p, b, i) : i;
        const float *qi = qb + qrow * p->q_stride + col;
        float *oi = ob + qrow * p->o_stride + col;
        double max = -INFINITY, sum = 0.0;
        gboolean any = FALSE;

        for (guint32 j = 0; j < kv_len; j++) {
          gsize krow = window ? f2_attention_window_row (p, b, j) : j;
          const float *kj = kb + krow * p->k_stride + col;
          gboolean visible = TRUE;
          double s = 0.0;

          if ((p->flags & F2_ATTN_CAUSAL) && (gint64) j > (gint64) i + p->causal_offset)
            visible = FALSE;
          if (mb != NULL && mb[j] == 0)
            visible = FALSE;
          if (!visible) {
            scores[j] = -INFINITY;
            continue;
          }
          for (guint32 d = 0; d < p->head_dim; d++)
            s += (double) qi[d] * kj[d];
          scores[j] = s * p->scale;
          max = MAX (max, scores[j]);
          any = TRUE;
        }

        memset (acc, 0, sizeof (double) * p->head_dim);
        if (any) {
          for (guint32 j = 0; j < kv_len; j++) {
            gsize vrow = window ? f2_attention_window_row (p, b, j) : j;
            const float *vj = vb + vrow * p->v_stride + col;
            double e;

            if (scores[j] == -INFINITY)
              continue;
            e = exp (scores[j] - max);
            sum += e;
            for (guint32 d = 0; d < p->head_dim; d++)
              acc[d] += e * vj[d];
          }
        }
        for (guint32 d = 0; d < p->head_dim; d++)
          oi[d] = any ? (float) (acc[d] / sum) : 0.0f;
      }
    }
  }
  g_free (scores);
  g_free (acc);
  return TRUE;
}

/* The scratch slot is not used here. */
static gboolean
reference_channel_attention (F2Backend *backend, const F2Op *op,
    const F2HostTensors *t, GError **error)
{
  const F2ChannelAttentionParams *p = &op->p.channel_attention;
  const float *qkv = t->in[0];
  float *out = t->out;
  guint32 cg = p->channels / p->groups;
  gsize ld = (gsize) 3 * p->channels;
  double *att = g_new (double, (gsize) MAX (cg, 1) * MAX (cg, 1));

  for (guint32 g = 0; g < p->groups; g++) {
    const float *q = qkv + (gsize) g * cg;
    const float *k = qkv + p->channels + (gsize) g * cg;
    const float *v = qkv + 2 * (gsize) p->channels + (gsize) g * cg;

    /* A = softmax over c' of sum_n (q[n][c] * scale) k[n][c'] */
    for (guint32 c = 0; c < cg; c++) {
      double *row = att + (gsize) c * cg;
      double max = -INFINITY, sum = 0.0;

      for (guint32 c2 = 0; c2 < cg; c2++) {
        double s = 0.0;
        for (guint32 n = 0; n < p->tokens; n++)
          s += (double) (q[n * ld + c] * p->scale) * k[n * ld + c2];
        row[c2] = s;
        max = MAX (max, s);
      }
      for (guint32 c2 = 0; c2 < cg; c2++) {
        row[c2] = exp (row[c2] - max);
        sum += row[c2];
      }
      for (guint32 c2 = 0; c2 < cg; c2++)
        row[c2] /= sum;
    }
    /* out[n][c] = sum_c' A[c][c'] v[n][c'] */
    for (guint32 n = 0; n < p->tokens; n++) {
      for (guint32 c = 0; c < cg; c++) {
        double s = 0.0;
        for (guint32 c2 = 0; c2 < cg; c2++)
          s += att[(gsize) c * cg + c2] * v[n * ld + c2];
        out[(gsize) n * p->channels + (gsize) g * cg + c] = (float) s;
      }
    }
  }
  g_free (att);
  return TRUE;
}

/* ------------------------------------------------------------------- conv */

/* w: [cout][cin][kernel][kernel], the linear weight [cout][cin*k*k]. */
static gboolean
reference_conv2d (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2Conv2dParams *p = &op->p.conv2d;
  const float *x = t->in[0], *w = t->in[1], *bias = t->in[2];
  float *out = t->out;
  guint32 ho = (p->h + 2 * p->pad - p->kernel) / p->stride + 1;
  guint32 wo = (p->w + 2 * p->pad - p->kernel) / p->stride + 1;
  gsize kk = (gsize) p->kernel * p->kernel;

  for (guint32 oy = 0; oy < ho; oy++) {
    for (guint32 ox = 0; ox < wo; ox++) {
      for (guint32 co = 0; co < p->cout; co++) {
        const float *wc = w + co * p->cin * kk;
        double acc = 0.0;

        for (guint32 ky = 0; ky < p->kernel; ky++) {
          gint64 iy = (gint64) oy * p->stride + ky - p->pad;
          if (iy < 0 || iy >= p->h)
            continue;
          for (guint32 kx = 0; kx < p->kernel; kx++) {
            gint64 ix = (gint64) ox * p->stride + kx - p->pad;
            if (ix < 0 || ix >= p->w)
              continue;
            for (guint32 ci = 0; ci < p->cin; ci++) {
              float xv = p->in_layout == F2_LAYOUT_CHW
                  ? x[((gsize) ci * p->h + iy) * p->w + ix]
                  : x[((gsize) iy * p->w + ix) * p->cin + ci];
              acc += (double) xv * wc[ci * kk + ky * p->kernel + kx];
            }
          }
        }
        out[((gsize) oy * wo + ox) * p->cout + co] =
            epilogue (p->flags, acc, bias, co, NULL);
      }
    }
  }
  return TRUE;
}

/* bias may be NULL. */
static gboolean
reference_dwconv3x3 (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2DwConvParams *p = &op->p.dwconv;
  const float *x = t->in[0], *w = t->in[1], *bias = t->in[2];
  float *out = t->out;

  for (guint32 y = 0; y < p->h; y++) {
    for (guint32 xx = 0; xx < p->w; xx++) {
      for (guint32 c = 0; c < p->c; c++) {
        double acc = bias != NULL ? bias[c] : 0.0;
        float conv;

        for (gint dy = -1; dy <= 1; dy++) {
          gint64 iy = (gint64) y + dy;
          if (iy < 0 || iy >= p->h)
            continue;
          for (gint dx = -1; dx <= 1; dx++) {
            gint64 ix = (gint64) xx + dx;
            if (ix < 0 || ix >= p->w)
              continue;
            acc += (double) x[((gsize) iy * p->w + ix) * p->c + c]
                * w[(gsize) c * 9 + (dy + 1) * 3 + (dx + 1)];
          }
        }
        /* The reference adds the conv output (a float tensor) to x. */
        conv = (float) acc;
        if (p->residual)
          conv += x[((gsize) y * p->w + xx) * p->c + c];
        out[((gsize) y * p->w + xx) * p->c + c] = conv;
      }
    }
  }
  return TRUE;
}

/* ------------------------------------------------------------ elementwise */

static gboolean
reference_mean_rows (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2MeanRowsParams *p = &op->p.mean_rows;
  const float *x = t->in[0];
  float *out = t->out;
  guint32 ldx = PACKED (p->ldx, p->cols);

  for (guint32 c = 0; c < p->cols; c++) {
    double sum = 0.0;
    for (guint32 r = 0; r < p->rows; r++)
      sum += x[(gsize) r * ldx + c];
    out[c] = p->rows > 0 ? (float) (sum / p->rows) : 0.0f;
  }
  return TRUE;
}

/* The position rows start at pos_offset plus the value at pos_ref, which
 * must keep them inside the table. An id outside [0, vocab) contributes
 * zeros (the position row is still added). */
static gboolean
reference_embedding (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2EmbeddingParams *p = &op->p.embedding;
  const gint32 *ids = t->in[0], *pos_ref = t->in[3];
  const float *table = t->in[1], *pos = t->in[2];
  float *out = t->out;
  guint32 ldo = PACKED (p->ldo, p->dim);
  guint64 pos_base;

  if (!f2_op_check_embedding_base (op, backend, pos_ref != NULL ? *pos_ref : -1,
          &pos_base, error))
    return FALSE;

  for (guint32 i = 0; i < p->n; i++) {
    gint32 id = ids[i];
    gboolean valid = id >= 0 && (guint32) id < p->vocab;
    float *o = out + (gsize) i * ldo;

    for (guint32 c = 0; c < p->dim; c++) {
      float e = valid ? table[(gsize) id * p->dim + c] * p->scale : 0.0f;
      if (pos != NULL)
        e += pos[(pos_base + i) * p->dim + c];
      o[c] = e;
    }
  }
  return TRUE;
}

/* out may alias a. */
static gboolean
reference_add (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2AddParams *p = &op->p.add;
  const float *a = t->in[0], *b = t->in[1];
  float *out = t->out;
  guint32 period = PACKED (p->b_period, p->n);

  for (guint32 i = 0; i < p->n; i++)
    out[i] = a[i] + b[i % period];
  return TRUE;
}

/* The row index, when there is one, must name rows inside x. */
static gboolean
reference_copy (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2CopyParams *p = &op->p.copy;
  const float *x = t->in[0];
  const gint32 *row_index = t->in[1];
  float *out = t->out;
  guint32 ldx = PACKED (p->ldx, p->cols);
  guint32 ldo = PACKED (p->ldo, p->cols);

  if (!f2_op_check_copy_rows (op, backend, row_index, error))
    return FALSE;
  for (guint32 r = 0; r < p->rows; r++) {
    gsize src = row_index != NULL ? (gsize) row_index[r] : r;
    memmove (out + (gsize) r * ldo, x + src * ldx, sizeof (float) * p->cols);
  }
  return TRUE;
}

/* ----------------------------------------------------------------- reduce */

gboolean
f2_reference_is_banned (const gint32 *banned, guint32 max_banned, guint32 id)
{
  if (banned == NULL)
    return FALSE;
  for (guint32 i = 0; i < max_banned; i++)
    if (banned[i] >= 0 && (guint32) banned[i] == id)
      return TRUE;
  return FALSE;
}

/* A row whose every column is banned gives -1. */
static gboolean
reference_argmax (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2ArgmaxParams *p = &op->p.argmax;
  const float *x = t->in[0];
  const gint32 *banned = t->in[1];
  gint32 *out = t->out;
  guint32 ldx = PACKED (p->ldx, p->cols);

  for (guint32 r = 0; r < p->rows; r++) {
    const float *xr = x + (gsize) r * ldx;
    const gint32 *br = banned ? banned + (gsize) r * p->max_banned : NULL;
    gint32 best = -1;

    /* Strictly greater keeps the lowest index among equal values. */
    for (guint32 c = 0; c < p->cols; c++) {
      if (f2_reference_is_banned (br, p->max_banned, c))
        continue;
      if (best < 0 || xr[c] > xr[best])
        best = (gint32) c;
    }
    out[r] = best;
  }
  return TRUE;
}

void
f2_reference_topk_row (const float *x, guint32 cols, const gint32 *banned,
    guint32 max_banned, guint32 k, double lse, gint32 *ids, float *vals)
{
  guint32 found = 0;

  for (guint32 i = 0; i < k; i++) {
    ids[i] = -1;
    vals[i] = -INFINITY;
  }
  /* Insertion into a sorted list of at most k: descending, ties keep the
   * earlier (lower) index first. A full list takes only a larger value. */
  for (guint32 c = 0; c < cols; c++) {
    guint32 pos;

    if (found == k && !(x[c] > x[ids[k - 1]]))
      continue;
    if (f2_reference_is_banned (banned, max_banned, c))
      continue;
    pos = found;
    while (pos > 0 && x[c] > x[ids[pos - 1]])
      pos--;
    if (pos >= k)
      continue;
    for (guint32 j = MIN (found, k - 1); j > pos; j--)
      ids[j] = ids[j - 1];
    ids[pos] = (gint32) c;
    if (found < k)
      found++;
  }
  for (guint32 i = 0; i < found; i++)
    vals[i] = (float) ((double) x[ids[i]] - lse);
}

/* Slots beyond the number of candidates get id -1 and value -INFINITY. */
static gboolean
reference_topk (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2TopkParams *p = &op->p.topk;
  const float *x = t->in[0];
  const gint32 *banned = t->in[1];
  gint32 *out_ids = t->out;
  float *out_values = t->out2;
  guint32 ldx = PACKED (p->ldx, p->cols);

  for (guint32 r = 0; r < p->rows; r++) {
    const float *xr = x + (gsize) r * ldx;
    double max = -INFINITY, sum = 0.0;

    for (guint32 c = 0; c < p->cols; c++)
      max = MAX (max, (double) xr[c]);
    for (guint32 c = 0; c < p->cols; c++)
      sum += exp ((double) xr[c] - max);
    f2_reference_topk_row (xr, p->cols, banned ? banned + (gsize) r * p->max_banned : NULL,
        p->max_banned, p->k, max + log (sum), out_ids + (gsize) r * p->k,
        out_values + (gsize) r * p->k);
  }
  return TRUE;
}

/* --------------------------------------------------------------- resample */

/* Pillow: PRECISION_BITS = 32 - 8 - 2; values start at half a unit so the
 * final shift rounds, then clip to 0..255. */
#define RESAMPLE_BITS 22

static guint8
clip8 (gint64 ss)
{
  gint64 v = ss >> RESAMPLE_BITS;
  return (guint8) CLAMP (v, 0, 255);
}

static guint8
yuv_component (const F2ResampleHParams *p, int i, int y, int u, int v)
{
  float c = p->yuv_matrix[3 * i] * (y - p->y_offset)
      + p->yuv_matrix[3 * i + 1] * (u - 128)
      + p->yuv_matrix[3 * i + 2] * (v - 128);
  c = floorf (c + 0.5f);
  return (guint8) CLAMP (c, 0.0f, 255.0f);
}

/* Row @y of the image as packed RGB. */
static void
unpack_row (const F2ResampleHParams *p, const guint8 *image, guint32 y,
    guint8 *rgb)
{
  const guint8 *row = image + p->plane_offset[0] + (gsize) y * p->stride[0];
  const guint8 *c1 = image + p->plane_offset[1] + (gsize) (y / 2) * p->stride[1];
  const guint8 *c2 = image + p->plane_offset[2] + (gsize) (y / 2) * p->stride[2];

  for (guint32 x = 0; x < p->in_w; x++) {
    guint8 *o = rgb + 3 * (gsize) x;
    int u, v;

    switch (p->format) {
      case F2_PIXEL_RGB:
        memcpy (o, row + 3 * (gsize) x, 3);
        continue;
      case F2_PIXEL_RGBX:
      case F2_PIXEL_RGBA:
        memcpy (o, row + 4 * (gsize) x, 3);
        continue;
      case F2_PIXEL_BGRX:
      case F2_PIXEL_BGRA:
        o[0] = row[4 * (gsize) x + 2];
        o[1] = row[4 * (gsize) x + 1];
        o[2] = row[4 * (gsize) x];
        continue;
      case F2_PIXEL_NV12:
        u = c1[2 * (gsize) (x / 2)];
        v = c1[2 * (gsize) (x / 2) + 1];
        break;
      case F2_PIXEL_I420:
      default:
        u = c1[x / 2];
        v = c2[x / 2];
        break;
    }
    for (int i = 0; i < 3; i++)
      o[i] = yuv_component (p, i, row[x], u, v);
  }
}

/* Pillow's 8-bit horizontal pass. Taps whose column lies outside the image
 * are skipped (their weight is zero in tables from preprocess.c). */
static gboolean
reference_resample_h (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2ResampleHParams *p = &op->p.resample_h;
  const guint8 *image = t->in[0];
  const gint32 *coeffs = t->in[1], *bounds = t->in[2];
  guint8 *out = t->out;
  guint8 *rgb = g_malloc ((gsize) MAX (p->in_w, 1) * 3);

  for (guint32 y = 0; y < p->in_h; y++) {
    guint8 *orow = out + (gsize) y * p->out_w * 3;

    unpack_row (p, image, y, rgb);
    for (guint32 x = 0; x < p->out_w; x++) {
      const gint32 *k = coeffs + (gsize) x * p->taps;
      gint64 ss[3] = { 1 << (RESAMPLE_BITS - 1), 1 << (RESAMPLE_BITS - 1),
        1 << (RESAMPLE_BITS - 1) };

      for (guint32 tap = 0; tap < p->taps; tap++) {
        gint64 ix = (gint64) bounds[x] + tap;
        if (ix < 0 || ix >= p->in_w)
          continue;
        for (int c = 0; c < 3; c++)
          ss[c] += (gint64) rgb[ix * 3 + c] * k[tap];
      }
      for (int c = 0; c < 3; c++)
        orow[(gsize) x * 3 + c] = clip8 (ss[c]);
    }
  }
  g_free (rgb);
  return TRUE;
}

static guint8
resample_v_pixel (const F2ResampleVParams *p, const guint8 *rows,
    const gint32 *coeffs, const gint32 *bounds, guint32 y, guint32 x, int c)
{
  const gint32 *k = coeffs + (gsize) y * p->taps;
  gint64 ss = 1 << (RESAMPLE_BITS - 1);

  for (guint32 t = 0; t < p->taps; t++) {
    gint64 iy = (gint64) bounds[y] + t;
    if (iy < 0 || iy >= p->in_h)
      continue;
    ss += (gint64) rows[((gsize) iy * p->w + x) * 3 + c] * k[t];
  }
  return clip8 (ss);
}

void
f2_reference_resample_v_u8 (const F2ResampleVParams *p, const guint8 *rows,
    const gint32 *coeffs, const gint32 *bounds, guint8 *out)
{
  for (guint32 y = 0; y < p->out_h; y++)
    for (guint32 x = 0; x < p->w; x++)
      for (int c = 0; c < 3; c++)
        out[((gsize) y * p->w + x) * 3 + c] =
            resample_v_pixel (p, rows, coeffs, bounds, y, x, c);
}

double
f2_reference_rescale_factor (float rescale)
{
  double k;

  if (!(rescale > 0.0f))
    return rescale;
  k = rint (1.0 / rescale);
  if (k >= 1.0 && k <= 65536.0 && (float) (1.0 / k) == rescale)
    return 1.0 / k;
  return rescale;
}

/* The vertical pass, rescaled and normalised: out FLOAT [3][out_h][w]. */
static gboolean
reference_resample_v (F2Backend *backend, const F2Op *op, const F2HostTensors *t,
    GError **error)
{
  const F2ResampleVParams *p = &op->p.resample_v;
  const guint8 *rows = t->in[0];
  const gint32 *coeffs = t->in[1], *bounds = t->in[2];
  float *out = t->out;
  double rescale = f2_reference_rescale_factor (p->rescale);
  float table[3][256];

  /* The processor rescales in float64, casts to float32, then normalises
   * in float32: (x - mean) / std. */
  for (int c = 0; c < 3; c++) {
    for (int v = 0; v < 256; v++) {
      float x = (float) (v * rescale);
      float centred = x - p->mean[c];
      table[c][v] = centred / p->std[c];
    }
  }
  for (int c = 0; c < 3; c++)
    for (guint32 y = 0; y < p->out_h; y++)
      for (guint32 x = 0; x < p->w; x++)
        out[((gsize) c * p->out_h + y) * p->w + x] =
            table[c][resample_v_pixel (p, rows, coeffs, bounds, y, x, c)];
  return TRUE;
}

/* -------------------------------------------------------------- the table */

static const F2ReferenceKernel kernels[] = {
  [F2_OP_MATMUL] = reference_matmul,
  [F2_OP_CONV2D] = reference_conv2d,
  [F2_OP_DWCONV3X3] = reference_dwconv3x3,
  [F2_OP_LAYER_NORM] = reference_layer_norm,
  [F2_OP_SOFTMAX] = reference_softmax,
  [F2_OP_ATTENTION] = reference_attention,
  [F2_OP_CHANNEL_ATTENTION] = reference_channel_attention,
  [F2_OP_MEAN_ROWS] = reference_mean_rows,
  [F2_OP_EMBEDDING] = reference_embedding,
  [F2_OP_ADD] = reference_add,
  [F2_OP_COPY] = reference_copy,
  [F2_OP_ARGMAX] = reference_argmax,
  [F2_OP_TOPK] = reference_topk,
  [F2_OP_RESAMPLE_H] = reference_resample_h,
  [F2_OP_RESAMPLE_V] = reference_resample_v,
};

G_STATIC_ASSERT (G_N_ELEMENTS (kernels) == F2_OP_COUNT);

F2ReferenceKernel
f2_reference_kernel (F2OpKind kind)
{
  if ((guint) kind >= F2_OP_COUNT)
    return NULL;
  return kernels[kind];
}
