/* The op table: every op kind described once (F2OpInfo, ops.h): its name,
 * its tensor slots, its check and its FLOP count. The kernels that run an
 * op are the backends' (one table per backend, indexed by kind).
 *
 * A check computes, for every ref of an op, the extent its kernel touches
 * from the op's parameters and verifies that it lies inside the buffer and
 * that the buffer holds the slot's element type. Values that only exist at
 * run time (row indices, kv_len_ref, pos_ref) are checked by the host
 * backends when the program runs (f2_op_check_embedding_base,
 * f2_op_check_copy_rows).
 *
 * The functions come in the families of the kernels (matmul, conv, norm,
 * attention, elementwise, reduce, resample); the table is at the end.
 */
#include "backend-private.h"

#include <math.h>

/* beam search asks for 2 candidates per beam: 16 beams need 32 */
#define MAX_TOPK 32

#define PACKED(ld, dflt) ((ld) != 0 ? (ld) : (dflt))
#define NONZERO(field) \
  if ((field) == 0) \
    return f2_backend_invalid (error, "parameter %s must not be 0", #field)

/* ---------------------------------------------------------------- helpers */

static const char *
elem_name (F2ElemType type)
{
  switch (type) {
    case F2_ELEM_FLOAT:
      return "float";
    case F2_ELEM_I32:
      return "i32";
    case F2_ELEM_U8:
      return "u8";
  }
  return "unknown";
}

/* Elements touched by @rows rows of @cols elements, @ld apart. */
static guint64
span (guint64 rows, guint64 cols, guint64 ld)
{
  if (rows == 0 || cols == 0)
    return 0;
  return (rows - 1) * ld + cols;
}

static gboolean
check_ref (F2Backend *backend, F2Ref ref, const char *what, F2ElemType type,
    guint64 extent, GError **error)
{
  const F2BufferInfo *info;

  if (!f2_ref_is_set (ref))
    return f2_backend_invalid (error, "%s is required but not set", what);
  info = f2_backend_buffer_info (backend, ref.buffer);
  if (info == NULL)
    return f2_backend_invalid (error, "%s refers to buffer %u, which does not exist", what,
        ref.buffer);
  if (info->type != type)
    return f2_backend_invalid (error, "%s must be a %s buffer, but buffer %u holds %s",
        what, elem_name (type), ref.buffer, elem_name (info->type));
  if (ref.offset > info->n_elements || extent > info->n_elements - ref.offset)
    return f2_backend_invalid (error, "%s needs %" G_GUINT64_FORMAT " elements at offset %"
        G_GUINT64_FORMAT ", but buffer %u holds only %" G_GUINT64_FORMAT
        "; allocate a larger buffer or fix the op's dimensions", what, extent,
        ref.offset, ref.buffer, info->n_elements);
  return TRUE;
}

/* A ref in the slot the op table describes, as errors name it: "bias (slot
 * 2, F2_EPI_BIAS)", "output", "output values (out2)". An optional slot may
 * be unset. */
static gboolean
check_slot (F2Backend *backend, const F2OpSlot *slot, const char *what,
    F2Ref ref, guint64 extent, GError **error)
{
  if (slot->optional && !f2_ref_is_set (ref))
    return TRUE;
  return check_ref (backend, ref, what, slot->type, extent, error);
}

static gboolean
check_in (F2Backend *backend, const F2Op *op, guint i, guint64 extent, GError **error)
{
  const F2OpSlot *slot = &f2_op_info (op->kind)->in[i];
  char what[96];

  if (slot->flag != NULL)
    g_snprintf (what, sizeof what, "%s (slot %u, %s)", slot->name, i, slot->flag);
  else
    g_snprintf (what, sizeof what, "%s (slot %u)", slot->name, i);
  return check_slot (backend, slot, what, op->in[i], extent, error);
}

static gboolean
check_out (F2Backend *backend, const F2Op *op, guint64 extent, GError **error)
{
  const F2OpSlot *slot = &f2_op_info (op->kind)->out;

  return check_slot (backend, slot, slot->name, op->out, extent, error);
}

static gboolean
check_out2 (F2Backend *backend, const F2Op *op, guint64 extent, GError **error)
{
  const F2OpSlot *slot = &f2_op_info (op->kind)->out2;
  char what[96];

  g_snprintf (what, sizeof what, "%s (out2)", slot->name);
  return check_slot (backend, slot, what, op->out2, extent, error);
}

/* Input @i, which its flag asks for: required when @on, else unused. */
static gboolean
check_flagged (F2Backend *backend, const F2Op *op, guint i, gboolean on,
    guint64 extent, GError **error)
{
  const F2OpSlot *slot = &f2_op_info (op->kind)->in[i];

  if (on)
    return check_in (backend, op, i, extent, error);
  if (f2_ref_is_set (op->in[i]))
    return f2_backend_invalid (error, "%s (slot %u) without %s is set but this op "
        "does not use it", slot->name, i, slot->flag);
  return TRUE;
}

/* A row stride of 0 means packed; otherwise it must hold a row. */
static gboolean
check_stride (guint32 ld, guint32 cols, const char *what, GError **error)
{
  if (ld != 0 && ld < cols)
    return f2_backend_invalid (error, "row stride %s = %u is smaller than the row (%u)",
        what, ld, cols);
  return TRUE;
}

/* Whether two strided regions (rows of cols elements, ld apart) share an
 * element. Exact, so that slices side by side in one buffer (columns of a
 * concatenation) are not mistaken for overlapping. */
static gboolean
regions_overlap (F2Ref a, guint64 a_rows, guint64 a_cols, guint64 a_ld,
    F2Ref b, guint64 b_rows, guint64 b_cols, guint64 b_ld)
{
  if (a.buffer != b.buffer || a_rows == 0 || b_rows == 0)
    return FALSE;
  for (guint64 r = 0; r < a_rows; r++) {
    guint64 start = a.offset + r * a_ld, end = start + a_cols;
    guint64 s = 0;

    /* first row of b that ends after start */
    if (start >= b.offset + b_cols)
      s = (start - b.offset - b_cols) / b_ld + 1;
    if (s < b_rows && b.offset + s * b_ld < end)
      return TRUE;
  }
  return FALSE;
}

static gboolean
refs_overlap (F2Ref a, guint64 a_len, F2Ref b, guint64 b_len)
{
  return regions_overlap (a, 1, a_len, a_len, b, 1, b_len, b_len);
}

/* ----------------------------------------------------------------- matmul */

static double
flops_matmul (const F2Op *op)
{
  const F2MatmulParams *p = &op->p.matmul;

  return 2.0 * p->m * p->n * p->k;
}

static gboolean
check_matmul (const F2Op *op, F2Backend *b, GError **error)
{
  const F2MatmulParams *p = &op->p.matmul;

  NONZERO (p->m);
  NONZERO (p->n);
  NONZERO (p->k);
  if (p->flags & ~(guint32) (F2_EPI_BIAS | F2_EPI_GELU | F2_EPI_RESIDUAL
          | F2_MATMUL_SEQUENCE_ROWS))
    return f2_backend_invalid (error, "unknown matmul flags 0x%x", p->flags);
  if (!check_stride (p->lda, p->k, "lda", error)
      || !check_stride (p->ldo, p->n, "ldo", error)
      || !check_stride (p->ldr, p->n, "ldr", error))
    return FALSE;
  if (!check_in (b, op, 0, span (p->m, p->k, PACKED (p->lda, p->k)), error)
      || !check_in (b, op, 1, f2_backend_linear_size (b, p->n, p->k), error)
      || !check_out (b, op, span (p->m, p->n, PACKED (p->ldo, p->n)), error))
    return FALSE;
  if (regions_overlap (op->out, p->m, p->n, PACKED (p->ldo, p->n),
          op->in[0], p->m, p->k, PACKED (p->lda, p->k)))
    return f2_backend_invalid (error, "the output overlaps input a; use another buffer");
  return check_flagged (b, op, 2, p->flags & F2_EPI_BIAS, p->n, error)
      && check_flagged (b, op, 3, p->flags & F2_EPI_RESIDUAL,
      span (p->m, p->n, PACKED (p->ldr, p->n)), error);
}

/* ------------------------------------------------------------------- conv */

static guint32
conv_out_size (guint32 size, guint32 pad, guint32 kernel, guint32 stride)
{
  return (size + 2 * pad - kernel) / stride + 1;
}

static double
flops_conv2d (const F2Op *op)
{
  const F2Conv2dParams *p = &op->p.conv2d;

  if (p->stride == 0 || p->h + 2 * p->pad < p->kernel || p->w + 2 * p->pad < p->kernel)
    return 0;
  return 2.0 * conv_out_size (p->h, p->pad, p->kernel, p->stride)
      * conv_out_size (p->w, p->pad, p->kernel, p->stride)
      * p->cout * p->cin * p->kernel * p->kernel;
}

static gboolean
check_conv2d (const F2Op *op, F2Backend *b, GError **error)
{
  const F2Conv2dParams *p = &op->p.conv2d;
  guint64 ho, wo;

  NONZERO (p->cin);
  NONZERO (p->h);
  NONZERO (p->w);
  NONZERO (p->cout);
  NONZERO (p->kernel);
  NONZERO (p->stride);
  if (p->in_layout != F2_LAYOUT_CHW && p->in_layout != F2_LAYOUT_HWC)
    return f2_backend_invalid (error, "unknown input layout %d", p->in_layout);
  if (p->flags & ~(guint32) (F2_EPI_BIAS | F2_EPI_GELU))
    return f2_backend_invalid (error, "conv2d supports only the bias and GELU epilogues "
        "(flags 0x%x)", p->flags);
  if ((guint64) p->h + 2 * p->pad < p->kernel || (guint64) p->w + 2 * p->pad < p->kernel)
    return f2_backend_invalid (error, "the %ux%u input (padding %u) is smaller than the "
        "kernel %u", p->w, p->h, p->pad, p->kernel);
  ho = conv_out_size (p->h, p->pad, p->kernel, p->stride);
  wo = conv_out_size (p->w, p->pad, p->kernel, p->stride);
  if ((guint64) p->cin * p->kernel * p->kernel > G_MAXUINT32)
    return f2_backend_invalid (error, "cin * kernel^2 is too large");
  if (!check_in (b, op, 0, (guint64) p->cin * p->h * p->w, error)
      || !check_in (b, op, 1, f2_backend_linear_size (b, p->cout,
              p->cin * p->kernel * p->kernel), error)
      || !check_out (b, op, ho * wo * p->cout, error))
    return FALSE;
  if (refs_overlap (op->out, ho * wo * p->cout, op->in[0], (guint64) p->cin * p->h * p->w))
    return f2_backend_invalid (error, "the output overlaps input x; use another buffer");
  return check_flagged (b, op, 2, p->flags & F2_EPI_BIAS, p->cout, error);
}

static double
flops_dwconv (const F2Op *op)
{
  return 18.0 * op->p.dwconv.h * op->p.dwconv.w * op->p.dwconv.c;
}

static gboolean
check_dwconv (const F2Op *op, F2Backend *b, GError **error)
{
  const F2DwConvParams *p = &op->p.dwconv;
  guint64 n = (guint64) p->h * p->w * p->c;

  NONZERO (p->h);
  NONZERO (p->w);
  NONZERO (p->c);
  if (!check_in (b, op, 0, n, error)
      || !check_in (b, op, 1, (guint64) p->c * 9, error)
      || !check_in (b, op, 2, p->c, error)
      || !check_out (b, op, n, error))
    return FALSE;
  if (refs_overlap (op->out, n, op->in[0], n))
    return f2_backend_invalid (error, "the output overlaps input x; use another buffer");
  return TRUE;
}

/* ------------------------------------------------------------------- norm */

static double
flops_layer_norm (const F2Op *op)
{
  return 8.0 * op->p.layer_norm.rows * op->p.layer_norm.cols;
}

static gboolean
check_layer_norm (const F2Op *op, F2Backend *b, GError **error)
{
  const F2LayerNormParams *p = &op->p.layer_norm;
  guint32 ldx = PACKED (p->ldx, p->cols);

  NONZERO (p->rows);
  NONZERO (p->cols);
  if (!(p->eps >= 0.0f) || !isfinite (p->eps))
    return f2_backend_invalid (error, "eps %g must be a finite number >= 0", p->eps);
  return check_stride (p->ldx, p->cols, "ldx", error)
      && check_stride (p->ldo, p->cols, "ldo", error)
      && check_in (b, op, 0, span (p->rows, p->cols, ldx), error)
      && check_in (b, op, 1, p->cols, error)
      && check_in (b, op, 2, p->cols, error)
      && check_in (b, op, 3, span (p->rows, p->cols, ldx), error)
      && check_out (b, op, span (p->rows, p->cols, PACKED (p->ldo, p->cols)), error);
}

static double
flops_softmax (const F2Op *op)
{
  return 5.0 * op->p.softmax.rows * op->p.softmax.cols;
}

static gboolean
check_softmax (const F2Op *op, F2Backend *b, GError **error)
{
  const F2SoftmaxParams *p = &op->p.softmax;

  NONZERO (p->rows);
  NONZERO (p->cols);
  if (!isfinite (p->scale))
    return f2_backend_invalid (error, "scale must be finite");
  if (!check_in (b, op, 0, (guint64) p->rows * p->cols, error))
    return FALSE;
  if (op->out.buffer != op->in[0].buffer || op->out.offset != op->in[0].offset)
    return f2_backend_invalid (error, "softmax works in place: the output must equal input x");
  return TRUE;
}

/* -------------------------------------------------------------- attention */

static double
flops_attention (const F2Op *op)
{
  const F2AttentionParams *p = &op->p.attention;
  double batch = p->batch;

  if ((p->flags & F2_ATTN_WINDOW) && p->window > 0)
    batch = (double) (p->grid_h / p->window) * (p->grid_w / p->window);
  return 4.0 * batch * p->n_heads * p->q_len * p->kv_len * p->head_dim;
}

static gboolean
check_attention (const F2Op *op, F2Backend *b, GError **error)
{
  const F2AttentionParams *p = &op->p.attention;
  guint32 width;
  guint64 q_ext, k_ext, v_ext, o_ext;
  guint32 batch = p->batch;
  const guint32 known = F2_ATTN_CAUSAL | F2_ATTN_KEY_MASK | F2_ATTN_DYNAMIC_KV
      | F2_ATTN_WINDOW;

  NONZERO (p->n_heads);
  NONZERO (p->head_dim);
  NONZERO (p->q_len);
  NONZERO (p->kv_len);
  if (p->flags & ~known)
    return f2_backend_invalid (error, "unknown attention flags 0x%x", p->flags);
  if (!isfinite (p->scale))
    return f2_backend_invalid (error, "scale must be finite");
  width = p->n_heads * p->head_dim;
  if ((guint64) p->n_heads * p->head_dim > G_MAXUINT32)
    return f2_backend_invalid (error, "n_heads * head_dim is too large");
  if (p->q_stride < width || p->k_stride < width || p->v_stride < width
      || p->o_stride < width)
    return f2_backend_invalid (error, "n_heads * head_dim = %u exceeds a row stride "
        "(q %u, k %u, v %u, out %u)", width, p->q_stride, p->k_stride,
        p->v_stride, p->o_stride);

  if (p->flags & F2_ATTN_WINDOW) {
    guint64 tokens;

    NONZERO (p->window);
    NONZERO (p->grid_h);
    NONZERO (p->grid_w);
    if (p->grid_h % p->window || p->grid_w % p->window)
      return f2_backend_invalid (error, "window %u does not divide the %ux%u grid; pad "
          "the grid to a multiple of the window", p->window, p->grid_h, p->grid_w);
    if (p->q_len != p->window * p->window || p->kv_len != p->q_len)
      return f2_backend_invalid (error, "window attention needs q_len = kv_len = window^2 "
          "(%u), got %u and %u", p->window * p->window, p->q_len, p->kv_len);
    tokens = (guint64) p->grid_h * p->grid_w;
    batch = (p->grid_h / p->window) * (p->grid_w / p->window);
    q_ext = span (tokens, width, p->q_stride);
    k_ext = span (tokens, width, p->k_stride);
    v_ext = span (tokens, width, p->v_stride);
    o_ext = span (tokens, width, p->o_stride);
  } else {
    NONZERO (p->batch);
    q_ext = (guint64) (batch - 1) * p->q_batch + span (p->q_len, width, p->q_stride);
    k_ext = (guint64) (batch - 1) * p->k_batch + span (p->kv_len, width, p->k_stride);
    v_ext = (guint64) (batch - 1) * p->v_batch + span (p->kv_len, width, p->v_stride);
    o_ext = (guint64) (batch - 1) * p->o_batch + span (p->q_len, width, p->o_stride);
  }

  return check_in (b, op, 0, q_ext, error)
      && check_in (b, op, 1, k_ext, error)
      && check_in (b, op, 2, v_ext, error)
      && check_out (b, op, o_ext, error)
      && check_flagged (b, op, 3, p->flags & F2_ATTN_KEY_MASK,
      (guint64) (batch - 1) * p->mask_batch + p->kv_len, error)
      && check_flagged (b, op, 4, p->flags & F2_ATTN_DYNAMIC_KV, 1, error);
}

static double
flops_channel_attention (const F2Op *op)
{
  const F2ChannelAttentionParams *p = &op->p.channel_attention;
  double cg = p->groups ? (double) p->channels / p->groups : 0;

  return 4.0 * p->groups * cg * cg * p->tokens;
}

static gboolean
check_channel_attention (const F2Op *op, F2Backend *b, GError **error)
{
  const F2ChannelAttentionParams *p = &op->p.channel_attention;

  NONZERO (p->tokens);
  NONZERO (p->channels);
  NONZERO (p->groups);
  if (p->channels % p->groups)
    return f2_backend_invalid (error, "groups %u does not divide channels %u", p->groups,
        p->channels);
  if (!isfinite (p->scale))
    return f2_backend_invalid (error, "scale must be finite");
  if (!check_in (b, op, 0, (guint64) p->tokens * 3 * p->channels, error)
      || !check_in (b, op, 1, f2_channel_attention_scratch_size (p), error)
      || !check_out (b, op, (guint64) p->tokens * p->channels, error))
    return FALSE;
  if (refs_overlap (op->out, (guint64) p->tokens * p->channels, op->in[0],
          (guint64) p->tokens * 3 * p->channels))
    return f2_backend_invalid (error, "the output overlaps input qkv; use another buffer");
  return TRUE;
}

/* ------------------------------------------------------------ elementwise */

static double
flops_mean_rows (const F2Op *op)
{
  return (double) op->p.mean_rows.rows * op->p.mean_rows.cols;
}

static gboolean
check_mean_rows (const F2Op *op, F2Backend *b, GError **error)
{
  const F2MeanRowsParams *p = &op->p.mean_rows;

  NONZERO (p->rows);
  NONZERO (p->cols);
  return check_stride (p->ldx, p->cols, "ldx", error)
      && check_in (b, op, 0, span (p->rows, p->cols, PACKED (p->ldx, p->cols)), error)
      && check_out (b, op, p->cols, error);
}

static double
flops_embedding (const F2Op *op)
{
  return 2.0 * op->p.embedding.n * op->p.embedding.dim;
}

static gboolean
check_embedding (const F2Op *op, F2Backend *b, GError **error)
{
  const F2EmbeddingParams *p = &op->p.embedding;

  NONZERO (p->n);
  NONZERO (p->dim);
  NONZERO (p->vocab);
  if (!isfinite (p->scale))
    return f2_backend_invalid (error, "scale must be finite");
  if (f2_ref_is_set (op->in[3]) && !f2_ref_is_set (op->in[2]))
    return f2_backend_invalid (error, "pos_ref (slot 3) is set without a position table (slot 2)");
  /* The rows added through pos_ref are checked when the program runs. */
  return check_stride (p->ldo, p->dim, "ldo", error)
      && check_in (b, op, 0, p->n, error)
      && check_in (b, op, 1, (guint64) p->vocab * p->dim, error)
      && check_in (b, op, 2, ((guint64) p->pos_offset + p->n) * p->dim, error)
      && check_in (b, op, 3, 1, error)
      && check_out (b, op, span (p->n, p->dim, PACKED (p->ldo, p->dim)), error);
}

static double
flops_add (const F2Op *op)
{
  return op->p.add.n;
}

static gboolean
check_add (const F2Op *op, F2Backend *b, GError **error)
{
  const F2AddParams *p = &op->p.add;

  NONZERO (p->n);
  if (p->b_period > p->n)
    return f2_backend_invalid (error, "b_period %u is larger than n %u", p->b_period, p->n);
  return check_in (b, op, 0, p->n, error)
      && check_in (b, op, 1, PACKED (p->b_period, p->n), error)
      && check_out (b, op, p->n, error);
}

static double
flops_copy (const F2Op *op)
{
  return 0;
}

static gboolean
check_copy (const F2Op *op, F2Backend *b, GError **error)
{
  const F2CopyParams *p = &op->p.copy;
  guint32 ldx = PACKED (p->ldx, p->cols);

  NONZERO (p->rows);
  NONZERO (p->cols);
  if (!check_stride (p->ldx, p->cols, "ldx", error)
      || !check_stride (p->ldo, p->cols, "ldo", error)
      || !check_out (b, op, span (p->rows, p->cols, PACKED (p->ldo, p->cols)), error))
    return FALSE;
  /* With a row index, the rows read are known only at run time. */
  if (f2_ref_is_set (op->in[1]))
    return check_in (b, op, 1, p->rows, error) && check_in (b, op, 0, p->cols, error);
  return check_in (b, op, 0, span (p->rows, p->cols, ldx), error);
}

/* ----------------------------------------------------------------- reduce */

static gboolean
check_banned (const F2Op *op, F2Backend *b, guint32 rows, guint32 max_banned,
    GError **error)
{
  if (f2_ref_is_set (op->in[1]) && max_banned == 0)
    return f2_backend_invalid (error, "banned ids (slot 1) are set but max_banned is 0");
  return check_in (b, op, 1, (guint64) rows * max_banned, error);
}

static double
flops_argmax (const F2Op *op)
{
  return (double) op->p.argmax.rows * op->p.argmax.cols;
}

static gboolean
check_argmax (const F2Op *op, F2Backend *b, GError **error)
{
  const F2ArgmaxParams *p = &op->p.argmax;

  NONZERO (p->rows);
  NONZERO (p->cols);
  if (p->cols > G_MAXINT32)
    return f2_backend_invalid (error, "cols %u does not fit an i32 id", p->cols);
  return check_stride (p->ldx, p->cols, "ldx", error)
      && check_in (b, op, 0, span (p->rows, p->cols, PACKED (p->ldx, p->cols)), error)
      && check_banned (op, b, p->rows, p->max_banned, error)
      && check_out (b, op, p->rows, error);
}

static double
flops_topk (const F2Op *op)
{
  return 3.0 * op->p.topk.rows * op->p.topk.cols;
}

static gboolean
check_topk (const F2Op *op, F2Backend *b, GError **error)
{
  const F2TopkParams *p = &op->p.topk;

  NONZERO (p->rows);
  NONZERO (p->cols);
  NONZERO (p->k);
  if (p->k > MAX_TOPK)
    return f2_backend_invalid (error, "k = %u is larger than the supported %d", p->k, MAX_TOPK);
  if (p->k > p->cols)
    return f2_backend_invalid (error, "k = %u is larger than cols %u", p->k, p->cols);
  if (p->cols > G_MAXINT32)
    return f2_backend_invalid (error, "cols %u does not fit an i32 id", p->cols);
  return check_stride (p->ldx, p->cols, "ldx", error)
      && check_in (b, op, 0, span (p->rows, p->cols, PACKED (p->ldx, p->cols)), error)
      && check_banned (op, b, p->rows, p->max_banned, error)
      && check_out (b, op, (guint64) p->rows * p->k, error)
      && check_out2 (b, op, (guint64) p->rows * p->k, error);
}

/* --------------------------------------------------------------- resample */

/* One plane of an image: @rows rows of @row_bytes, @stride apart. */
static gboolean
check_plane (const F2ResampleHParams *p, int plane, guint64 rows,
    guint64 row_bytes, guint64 *end, GError **error)
{
  if (p->stride[plane] < row_bytes)
    return f2_backend_invalid (error, "stride of plane %d (%u bytes) is smaller than a row "
        "(%" G_GUINT64_FORMAT " bytes)", plane, p->stride[plane], row_bytes);
  *end = MAX (*end, p->plane_offset[plane] + span (rows, row_bytes, p->stride[plane]));
  return TRUE;
}

static double
flops_resample_h (const F2Op *op)
{
  const F2ResampleHParams *p = &op->p.resample_h;

  return 6.0 * p->in_h * p->out_w * p->taps;
}

static gboolean
check_resample_h (const F2Op *op, F2Backend *b, GError **error)
{
  const F2ResampleHParams *p = &op->p.resample_h;
  guint64 end = 0, cw, ch;

  NONZERO (p->in_w);
  NONZERO (p->in_h);
  NONZERO (p->out_w);
  NONZERO (p->taps);
  cw = (p->in_w + 1ull) / 2;
  ch = (p->in_h + 1ull) / 2;
  switch (p->format) {
    case F2_PIXEL_RGB:
      if (!check_plane (p, 0, p->in_h, 3ull * p->in_w, &end, error))
        return FALSE;
      break;
    case F2_PIXEL_RGBX:
    case F2_PIXEL_BGRX:
    case F2_PIXEL_RGBA:
    case F2_PIXEL_BGRA:
      if (!check_plane (p, 0, p->in_h, 4ull * p->in_w, &end, error))
        return FALSE;
      break;
    case F2_PIXEL_NV12:
      if (!check_plane (p, 0, p->in_h, p->in_w, &end, error)
          || !check_plane (p, 1, ch, 2 * cw, &end, error))
        return FALSE;
      break;
    case F2_PIXEL_I420:
      if (!check_plane (p, 0, p->in_h, p->in_w, &end, error)
          || !check_plane (p, 1, ch, cw, &end, error)
          || !check_plane (p, 2, ch, cw, &end, error))
        return FALSE;
      break;
    default:
      return f2_backend_invalid (error, "unknown pixel format %d", p->format);
  }
  if (p->format == F2_PIXEL_NV12 || p->format == F2_PIXEL_I420) {
    for (int i = 0; i < 9; i++)
      if (!isfinite (p->yuv_matrix[i]))
        return f2_backend_invalid (error, "yuv_matrix[%d] is not finite", i);
    if (!isfinite (p->y_offset))
      return f2_backend_invalid (error, "y_offset is not finite");
  }
  return check_in (b, op, 0, end, error)
      && check_in (b, op, 1, (guint64) p->out_w * p->taps, error)
      && check_in (b, op, 2, p->out_w, error)
      && check_out (b, op, (guint64) p->in_h * p->out_w * 3, error);
}

static double
flops_resample_v (const F2Op *op)
{
  const F2ResampleVParams *p = &op->p.resample_v;

  return 6.0 * p->out_h * p->w * p->taps;
}

static gboolean
check_resample_v (const F2Op *op, F2Backend *b, GError **error)
{
  const F2ResampleVParams *p = &op->p.resample_v;

  NONZERO (p->in_h);
  NONZERO (p->w);
  NONZERO (p->out_h);
  NONZERO (p->taps);
  for (int c = 0; c < 3; c++) {
    if (!isfinite (p->mean[c]) || !isfinite (p->std[c]) || p->std[c] == 0.0f)
      return f2_backend_invalid (error, "mean[%d] = %g and std[%d] = %g must be finite "
          "and std non-zero", c, p->mean[c], c, p->std[c]);
  }
  if (!isfinite (p->rescale))
    return f2_backend_invalid (error, "rescale must be finite");
  return check_in (b, op, 0, (guint64) p->in_h * p->w * 3, error)
      && check_in (b, op, 1, (guint64) p->out_h * p->taps, error)
      && check_in (b, op, 2, p->out_h, error)
      && check_out (b, op, (guint64) 3 * p->out_h * p->w, error);
}

/* -------------------------------------------------------------- the table */

#define I32 .type = F2_ELEM_I32
#define U8 .type = F2_ELEM_U8
#define OPTIONAL .optional = TRUE

static const F2OpInfo op_table[] = {
  [F2_OP_MATMUL] = {
    "matmul",
    .in = { { "input a" }, { "weight" }, { "bias", .flag = "F2_EPI_BIAS" },
      { "residual", .flag = "F2_EPI_RESIDUAL" } },
    .out = { "output" },
    .check = check_matmul, .flops = flops_matmul,
  },
  [F2_OP_CONV2D] = {
    "conv2d",
    .in = { { "input x" }, { "weight" }, { "bias", .flag = "F2_EPI_BIAS" } },
    .out = { "output" },
    .check = check_conv2d, .flops = flops_conv2d,
  },
  [F2_OP_DWCONV3X3] = {
    "dwconv3x3",
    .in = { { "input x" }, { "weight" }, { "bias", OPTIONAL } },
    .out = { "output" },
    .check = check_dwconv, .flops = flops_dwconv,
  },
  [F2_OP_LAYER_NORM] = {
    "layer_norm",
    .in = { { "input x" }, { "gamma" }, { "beta" }, { "residual", OPTIONAL } },
    .out = { "output" },
    .check = check_layer_norm, .flops = flops_layer_norm,
  },
  [F2_OP_SOFTMAX] = {
    "softmax",
    .in = { { "input x" } },
    .out = { "output" },
    .check = check_softmax, .flops = flops_softmax,
  },
  [F2_OP_ATTENTION] = {
    "attention",
    .in = { { "q" }, { "k" }, { "v" }, { "key mask", I32, .flag = "F2_ATTN_KEY_MASK" },
      { "kv_len_ref", I32, .flag = "F2_ATTN_DYNAMIC_KV" } },
    .out = { "output" },
    .check = check_attention, .flops = flops_attention,
  },
  /* the scratch is working memory the Vulkan kernels need (ops.h) */
  [F2_OP_CHANNEL_ATTENTION] = {
    "channel_attention",
    .in = { { "qkv" }, { "scratch", I32, OPTIONAL } },
    .out = { "output" },
    .check = check_channel_attention, .flops = flops_channel_attention,
  },
  [F2_OP_MEAN_ROWS] = {
    "mean_rows",
    .in = { { "input x" } },
    .out = { "output" },
    .check = check_mean_rows, .flops = flops_mean_rows,
  },
  [F2_OP_EMBEDDING] = {
    "embedding",
    .in = { { "ids", I32 }, { "table" }, { "positions", OPTIONAL },
      { "pos_ref", I32, OPTIONAL } },
    .out = { "output" },
    .check = check_embedding, .flops = flops_embedding,
  },
  [F2_OP_ADD] = {
    "add",
    .in = { { "input a" }, { "input b" } },
    .out = { "output" },
    .check = check_add, .flops = flops_add,
  },
  [F2_OP_COPY] = {
    "copy",
    .in = { { "input x" }, { "row index", I32, OPTIONAL } },
    .out = { "output" },
    .check = check_copy, .flops = flops_copy,
  },
  [F2_OP_ARGMAX] = {
    "argmax",
    .in = { { "input x" }, { "banned ids", I32, OPTIONAL } },
    .out = { "output ids", I32 },
    .check = check_argmax, .flops = flops_argmax,
  },
  [F2_OP_TOPK] = {
    "topk",
    .in = { { "input x" }, { "banned ids", I32, OPTIONAL } },
    .out = { "output ids", I32 },
    .out2 = { "output values" },
    .check = check_topk, .flops = flops_topk,
  },
  [F2_OP_RESAMPLE_H] = {
    "resample_h",
    .in = { { "image", U8 }, { "coefficients", I32 }, { "bounds", I32 } },
    .out = { "output", U8 },
    .check = check_resample_h, .flops = flops_resample_h,
  },
  [F2_OP_RESAMPLE_V] = {
    "resample_v",
    .in = { { "rows", U8 }, { "coefficients", I32 }, { "bounds", I32 } },
    .out = { "output" },
    .check = check_resample_v, .flops = flops_resample_v,
  },
};

/* An entry for the last kind and none beyond; tests/test-op-table.c checks
 * that none is left empty. */
G_STATIC_ASSERT (G_N_ELEMENTS (op_table) == F2_OP_COUNT);

#undef I32
#undef U8
#undef OPTIONAL

const F2OpInfo *
f2_op_info (F2OpKind kind)
{
  if ((guint) kind >= F2_OP_COUNT)
    return NULL;
  return &op_table[kind];
}

const char *
f2_op_kind_name (F2OpKind kind)
{
  const F2OpInfo *info = f2_op_info (kind);

  return info != NULL ? info->name : "unknown";
}

double
f2_op_flops (const F2Op *op)
{
  const F2OpInfo *info = f2_op_info (op->kind);

  return info != NULL ? info->flops (op) : 0;
}

gboolean
f2_op_check (const F2Op *op, F2Backend *backend, GError **error)
{
  const F2OpInfo *info;
  guint n_inputs = 0;

  g_return_val_if_fail (op != NULL && backend != NULL, FALSE);

  info = f2_op_info (op->kind);
  if (info == NULL)
    return f2_backend_invalid (error, "unknown op kind %d", op->kind);
  while (n_inputs < F2_OP_MAX_INPUTS && info->in[n_inputs].name != NULL)
    n_inputs++;
  for (guint i = n_inputs; i < F2_OP_MAX_INPUTS; i++)
    if (f2_ref_is_set (op->in[i]))
      return f2_backend_invalid (error, "input slot %u is set but %s has only %u inputs",
          i, info->name, n_inputs);
  if (info->out2.name == NULL && f2_ref_is_set (op->out2))
    return f2_backend_invalid (error, "out2 is set but %s writes no second output", info->name);
  return info->check (op, backend, error);
}

/* ------------------------------------------------- checks at run time */

gboolean
f2_op_check_embedding_base (const F2Op *op, F2Backend *backend, gint32 dynamic,
    guint64 *base, GError **error)
{
  const F2EmbeddingParams *p = &op->p.embedding;

  *base = p->pos_offset;
  if (f2_ref_is_set (op->in[3])) {
    if (dynamic < 0)
      return f2_backend_invalid (error, "position index %d read through "
          "pos_ref is negative", dynamic);
    *base += dynamic;
  }
  if (f2_ref_is_set (op->in[2])) {
    const F2BufferInfo *info = f2_backend_buffer_info (backend, op->in[2].buffer);
    if ((*base + p->n) * p->dim > info->n_elements - op->in[2].offset)
      return f2_backend_invalid (error, "positions %" G_GUINT64_FORMAT "..%"
          G_GUINT64_FORMAT " are beyond the position table", *base, *base + p->n - 1);
  }
  return TRUE;
}

gboolean
f2_op_check_copy_rows (const F2Op *op, F2Backend *backend, const gint32 *index,
    GError **error)
{
  const F2CopyParams *p = &op->p.copy;
  const F2BufferInfo *info;
  guint64 avail;
  guint32 ldx = p->ldx ? p->ldx : p->cols;

  if (index == NULL)
    return TRUE;
  info = f2_backend_buffer_info (backend, op->in[0].buffer);
  avail = info->n_elements - op->in[0].offset;
  for (guint32 r = 0; r < p->rows; r++)
    if (index[r] < 0 || (guint64) index[r] * ldx + p->cols > avail)
      return f2_backend_invalid (error, "row index %d (output row %u) is "
          "outside the input", index[r], r);
  return TRUE;
}
