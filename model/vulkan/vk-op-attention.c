/* Recorders of the attention ops: fused multi-head attention (encoder,
 * decoder self- and cross-attention, DaViT window attention) and DaViT
 * channel attention. */
#include "vk-ops.h"

#define ATTN_WORKGROUP 64
#define ATTN_MAX_HEAD_DIM 256
#define ATTN_MAX_TILE_KEYS 64

static guint64
span (guint64 rows, guint32 cols, guint32 ld)
{
  return (rows - 1) * ld + cols;
}

static guint32
pow2_at_least (guint32 n)
{
  guint32 p = 1;

  while (p < n)
    p *= 2;
  return p;
}

/* Queries per workgroup of the shared-memory path for a subgroup of @sg
 * lanes: whole subgroups, the most (up to ATTN_WORKGROUP) that pad the
 * queries by at most an eighth (window attention's 144 queries take 32 on
 * a 32-wide subgroup, where 48 would leave a warp half idle). Narrower
 * subgroups: 48 where that divides the queries and 64 does not, else 64. */
static guint32
query_block (guint32 q_len, guint32 sg)
{
  guint32 best;

  if (sg < 32)
    return (q_len % 48 == 0 && q_len % 64 != 0) ? 48 : ATTN_WORKGROUP;
  best = MIN (sg, ATTN_WORKGROUP);
  for (guint32 wg = best; wg <= ATTN_WORKGROUP; wg += sg)
    if ((guint64) f2_div_up (q_len, wg) * wg * 8 <= (guint64) q_len * 9)
      best = wg;
  return best;
}

static gboolean
fits_u32 (guint64 v)
{
  return v <= G_MAXUINT32;
}

/* Window attention in bands of whole rows of windows, each band's tokens
 * within one storage binding: several images stacked along the grid's
 * height (a batch through the vision tower) can outgrow it. @d holds
 * everything but the bindings and the window count. */
static gboolean
record_window_bands (F2VkBackend *vk, const F2Op *op, const F2VkDispatch *d,
    GArray *out, GError **error)
{
  const F2AttentionParams *p = &op->p.attention;
  guint elem = f2_elem_size (F2_ELEM_FLOAT, vk->base.precision);
  guint64 range = f2_vk_binding_bytes (vk) / elem;
  guint32 width = p->n_heads * p->head_dim;
  guint32 stride = MAX (MAX (p->q_stride, p->k_stride), MAX (p->v_stride, p->o_stride));
  guint32 window_rows = p->grid_h / p->window, per_row = p->grid_w / p->window;
  guint64 row_tokens = (guint64) p->window * p->grid_w;
  guint32 band = (guint32) MIN (window_rows, range / (row_tokens * stride));

  if (band == 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "window attention over a grid %u tokens wide: one row of %ux%u windows "
        "does not fit the device's storage buffer range (%" G_GUINT64_FORMAT
        " MiB)", p->grid_w, p->window, p->window,
        (guint64) vk->dev->max_storage_range >> 20);
    return FALSE;
  }
  for (guint32 r0 = 0; r0 < window_rows; r0 += band) {
    guint32 rows = MIN (band, window_rows - r0);
    guint64 first = r0 * row_tokens, tokens = rows * row_tokens;
    F2VkDispatch b = *d;

    f2_vk_dispatch_bind (&b, f2_ref_at (op->out, first * p->o_stride),
        span (tokens, width, p->o_stride), TRUE);
    f2_vk_dispatch_bind (&b, f2_ref_at (op->in[0], first * p->q_stride),
        span (tokens, width, p->q_stride), FALSE);
    f2_vk_dispatch_bind (&b, f2_ref_at (op->in[1], first * p->k_stride),
        span (tokens, width, p->k_stride), FALSE);
    f2_vk_dispatch_bind (&b, f2_ref_at (op->in[2], first * p->v_stride),
        span (tokens, width, p->v_stride), FALSE);
    f2_vk_dispatch_bind (&b, op->in[3], 0, FALSE);
    f2_vk_dispatch_bind (&b, op->in[4], 0, FALSE);
    b.groups[2] = rows * per_row;
    f2_vk_emit (out, &b);
  }
  return TRUE;
}

gboolean
f2_vk_record_attention (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2AttentionParams *p = &op->p.attention;
  gboolean window = (p->flags & F2_ATTN_WINDOW) != 0;
  guint32 width = p->n_heads * p->head_dim;
  guint32 hd4 = f2_div_up (p->head_dim, 4);
  guint32 batch = p->batch, wg, ks, qt, bk = 1, qpt = 1;
  guint64 q_ext, k_ext, v_ext, o_ext;
  guint64 shared_budget = vk->dev->max_shared_memory;
  F2Variant variant = f2_vk_matmul_variant (vk, op);
  F2VkDevice *dev = vk->dev;
  guint32 sg = f2_vk_target_subgroup (vk, variant), required = 0;
  gboolean vec4, shuffle_merge = FALSE;
  F2VkDispatch d;

  if (p->head_dim > ATTN_MAX_HEAD_DIM) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "attention head_dim %u is larger than the Vulkan kernel's limit (%u)",
        p->head_dim, ATTN_MAX_HEAD_DIM);
    return FALSE;
  }
  if (window) {
    guint64 tokens = (guint64) p->grid_h * p->grid_w;
    batch = (p->grid_h / p->window) * (p->grid_w / p->window);
    q_ext = span (tokens, width, p->q_stride);
    k_ext = span (tokens, width, p->k_stride);
    v_ext = span (tokens, width, p->v_stride);
    o_ext = span (tokens, width, p->o_stride);
  } else {
    q_ext = (guint64) (batch - 1) * p->q_batch + span (p->q_len, width, p->q_stride);
    k_ext = (guint64) (batch - 1) * p->k_batch + span (p->kv_len, width, p->k_stride);
    v_ext = (guint64) (batch - 1) * p->v_batch + span (p->kv_len, width, p->v_stride);
    o_ext = (guint64) (batch - 1) * p->o_batch + span (p->q_len, width, p->o_stride);
  }
  if (!fits_u32 (q_ext) || !fits_u32 (k_ext) || !fits_u32 (v_ext) || !fits_u32 (o_ext)
      || !fits_u32 (p->mask_batch) || batch > 65535 || p->n_heads > 65535) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "attention of %u heads over a batch of %u with these strides is too "
        "large for one Vulkan dispatch; split it into several ops", p->n_heads, batch);
    return FALSE;
  }

  /* Few queries (decoding): several invocations per query split the keys
   * (16 on CPU drivers, where more only adds merge work; the whole
   * workgroup on GPUs). Many queries: on CPU drivers each invocation takes
   * several queries, so that each key and value loaded feeds several
   * multiply-adds (window attention has 144 queries: one workgroup of 24
   * invocations x 6); on GPUs one query per invocation, keys staged in
   * shared memory. */
  if (p->q_len < ATTN_WORKGROUP) {
    qt = pow2_at_least (p->q_len);
    wg = variant == F2_VARIANT_REGISTER_BLOCKED ? MIN (ATTN_WORKGROUP, 16 * qt) : ATTN_WORKGROUP;
    /* the merge of the partial results must fit half the shared memory */
    while (wg > qt && (guint64) wg * (hd4 * 16 + 8) > shared_budget / 2)
      wg /= 2;
    ks = wg / qt;
  } else if (variant == F2_VARIANT_REGISTER_BLOCKED) {
    ks = 1;
    qpt = p->q_len % 48 == 0 ? 6 : 4;
    wg = p->q_len % 48 == 0 ? 24 : 32;
    qt = wg * qpt;
  } else {
    ks = 1;
    wg = query_block (p->q_len, sg);
    qt = wg;
  }
  if (variant != F2_VARIANT_REGISTER_BLOCKED) {
    guint64 merge;
    /* GPUs with 32- or 64-lane subgroups (or those forced): partial results
     * merge through subgroup shuffles, where every subgroup of the
     * workgroup is full whatever size the driver picks */
    f2_vk_device_subgroup_for (dev, sg, &required);
    shuffle_merge = sg >= 32 && dev->subgroup_shuffle
        && wg % (required != 0 ? required : dev->subgroup_max) == 0;
    /* the merge arrays take one element each when unused (see the shader) */
    if (ks > 1 && shuffle_merge)
      merge = (guint64) wg / dev->subgroup_min * (hd4 * 16 + 8);
    else
      merge = ks > 1 ? (guint64) wg * (hd4 * 16 + 8) : 16 + 8;
    bk = (guint32) MIN (ATTN_MAX_TILE_KEYS, (shared_budget - merge) / (32 * hd4));
    bk = MAX (bk, 2);
  }

  vec4 = p->head_dim % 4 == 0 && p->q_stride % 4 == 0 && p->k_stride % 4 == 0
      && p->v_stride % 4 == 0 && p->o_stride % 4 == 0
      && op->in[0].offset % 4 == 0 && op->in[1].offset % 4 == 0
      && op->in[2].offset % 4 == 0 && op->out.offset % 4 == 0
      && (window || (p->q_batch % 4 == 0 && p->k_batch % 4 == 0
              && p->v_batch % 4 == 0 && p->o_batch % 4 == 0));

  f2_vk_dispatch_init (&d, shuffle_merge ? "attention_sg" : "attention");
  f2_vk_dispatch_spec (&d, wg);
  f2_vk_dispatch_spec (&d, p->head_dim);
  f2_vk_dispatch_spec (&d, ks);
  f2_vk_dispatch_spec (&d, vec4);
  f2_vk_dispatch_spec (&d, bk);
  f2_vk_dispatch_spec (&d, qpt);
  if (shuffle_merge) {
    f2_vk_dispatch_spec (&d, dev->subgroup_min);
    d.subgroup_size = required;
  }
  f2_vk_dispatch_push (&d, p->q_stride);
  f2_vk_dispatch_push (&d, p->k_stride);
  f2_vk_dispatch_push (&d, p->v_stride);
  f2_vk_dispatch_push (&d, p->o_stride);
  f2_vk_dispatch_push (&d, p->q_len);
  f2_vk_dispatch_push (&d, p->kv_len);
  f2_vk_dispatch_push (&d, window ? 0 : (guint32) p->q_batch);
  f2_vk_dispatch_push (&d, window ? 0 : (guint32) p->k_batch);
  f2_vk_dispatch_push (&d, window ? 0 : (guint32) p->v_batch);
  f2_vk_dispatch_push (&d, window ? 0 : (guint32) p->o_batch);
  f2_vk_dispatch_push (&d, (guint32) p->mask_batch);
  f2_vk_dispatch_push (&d, p->grid_w);
  f2_vk_dispatch_push (&d, p->window);
  f2_vk_dispatch_push (&d, (guint32) p->causal_offset);
  f2_vk_dispatch_push_float (&d, p->scale);
  f2_vk_dispatch_push (&d, p->flags);
  d.groups[0] = f2_div_up (p->q_len, qt);
  d.groups[1] = p->n_heads;
  if (window)
    return record_window_bands (vk, op, &d, out, error);
  f2_vk_dispatch_bind (&d, op->out, o_ext, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], q_ext, FALSE);
  f2_vk_dispatch_bind (&d, op->in[1], k_ext, FALSE);
  f2_vk_dispatch_bind (&d, op->in[2], v_ext, FALSE);
  f2_vk_dispatch_bind (&d, op->in[3], (p->flags & F2_ATTN_KEY_MASK) ?
      (guint64) (batch - 1) * p->mask_batch + p->kv_len : 0, FALSE);
  f2_vk_dispatch_bind (&d, op->in[4], (p->flags & F2_ATTN_DYNAMIC_KV) ? 1 : 0, FALSE);
  d.groups[2] = batch;
  f2_vk_emit (out, &d);
  return TRUE;
}

/* Channel attention in three passes over the scratch area (see ops.h):
 * partial Gram matrices per token split, their ordered sum and softmax into
 * A, then out = A v. */
gboolean
f2_vk_record_channel_attention (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2ChannelAttentionParams *p = &op->p.channel_attention;
  guint32 cg = p->channels / p->groups, c4 = f2_div_up (cg, 4);
  /* at least 64 tokens per split: shorter sums gain nothing */
  guint32 splits = MIN (F2_CHANNEL_ATTENTION_SPLITS, f2_div_up (p->tokens, 64));
  guint64 part_size = (guint64) F2_CHANNEL_ATTENTION_SPLITS * p->groups * cg * cg;
  guint64 a_size = (guint64) p->groups * cg * cg;
  guint64 qkv_ext = (guint64) p->tokens * 3 * p->channels;
  gboolean vec4 = cg % 4 == 0 && op->in[0].offset % 4 == 0;
  F2VkDispatch d;

  if (!f2_ref_is_set (op->in[1])) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "channel attention on Vulkan needs the scratch input (slot 1, I32, "
        "%" G_GUINT64_FORMAT " elements); allocate it when building the network",
        f2_channel_attention_scratch_size (p));
    return FALSE;
  }
  if ((guint64) p->groups * c4 > 65535 || f2_div_up (p->tokens, 4 * 64) > 65535) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "channel attention over %u tokens x %u channels is too large for the "
        "Vulkan kernel", p->tokens, p->channels);
    return FALSE;
  }

  f2_vk_dispatch_init (&d, "channel_attn_partial");
  f2_vk_dispatch_spec (&d, vec4);
  f2_vk_dispatch_bind (&d, op->in[1], (guint64) splits * p->groups * cg * cg, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], qkv_ext, FALSE);
  f2_vk_dispatch_push (&d, p->tokens);
  f2_vk_dispatch_push (&d, p->channels);
  f2_vk_dispatch_push (&d, cg);
  f2_vk_dispatch_push (&d, splits);
  d.groups[0] = splits;
  d.groups[1] = p->groups;
  f2_vk_emit (out, &d);

  f2_vk_dispatch_init (&d, "channel_attn_softmax");
  d.float_variant = FALSE;
  f2_vk_dispatch_bind (&d, op->in[1], part_size + a_size, TRUE);
  f2_vk_dispatch_push (&d, p->groups * cg);
  f2_vk_dispatch_push (&d, cg);
  f2_vk_dispatch_push (&d, splits);
  f2_vk_dispatch_push (&d, (guint32) part_size);
  f2_vk_dispatch_push_float (&d, p->scale);
  f2_vk_grid_1d (&d, (guint64) p->groups * cg, 64);
  f2_vk_emit (out, &d);

  f2_vk_dispatch_init (&d, "channel_attn_apply");
  f2_vk_dispatch_spec (&d, vec4);
  f2_vk_dispatch_bind (&d, op->out, (guint64) p->tokens * p->channels, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], qkv_ext, FALSE);
  f2_vk_dispatch_bind (&d, f2_ref_at (op->in[1], part_size), a_size, FALSE);
  f2_vk_dispatch_push (&d, p->tokens);
  f2_vk_dispatch_push (&d, p->channels);
  f2_vk_dispatch_push (&d, cg);
  d.groups[0] = f2_div_up (p->tokens, 4 * 64);
  d.groups[1] = p->groups * c4;
  f2_vk_emit (out, &d);
  return TRUE;
}
