/* The DaViT vision tower and the image projection as a program:
 * pixel values [3][S][S] -> image features [1 + G*G][d_model].
 *
 * Per stage: a convolutional patch embedding with its layer norm, then
 * depth x (spatial block, channel block). Each block is
 *   x = x + dwconv3x3(x)
 *   x = x + proj(attention(LN(x)))     window attention or channel attention
 *   x = x + dwconv3x3(x)
 *   x = x + fc2(gelu(fc1(LN(x))))
 * The image projection adds the 2-D position and temporal embeddings,
 * prepends the mean token, projects and normalises. */
#include "net-private.h"

#include <math.h>
#include <string.h>

static guint64
stage_tokens (const F2NetDims *d, guint s)
{
  return (guint64) d->grid[s] * d->grid[s];
}

/* Rows of one MLP chunk of stage @s. */
static guint32
hid_chunk_rows (const F2NetDims *d, guint s)
{
  guint64 per_row = (guint64) d->mlp_ratio * d->dim[s];
  guint64 rows = MAX (F2_NET_VISION_HID_LIMIT / per_row, 1);

  return (guint32) MIN (rows, stage_tokens (d, s));
}

static F2ChannelAttentionParams
channel_params (const F2NetDims *d, guint s)
{
  F2ChannelAttentionParams p = {
    .tokens = (guint32) stage_tokens (d, s),
    .channels = d->dim[s],
    .groups = d->groups[s],
    .scale = (float) pow ((double) stage_tokens (d, s), -0.5),
  };
  return p;
}

void
f2_net_vision_sizes (const F2NetDims *d, guint64 *act, guint64 *hid,
    guint64 *scratch)
{
  *act = *hid = *scratch = 0;
  for (guint s = 0; s < F2_NET_STAGES; s++) {
    F2ChannelAttentionParams cp = channel_params (d, s);

    *act = MAX (*act, stage_tokens (d, s) * d->dim[s]);
    *hid = MAX (*hid, (guint64) hid_chunk_rows (d, s) * d->mlp_ratio * d->dim[s]);
    *scratch = MAX (*scratch, f2_channel_attention_scratch_size (&cp));
  }
}

/* ---------------------------------------------------------------- weights */

static gboolean
load_dwconv (F2NetModel *model, F2Weights *weights, const char *prefix, guint32 c,
    F2NetDwConv *out, GError **error)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);

  out->w = f2_net_upload_named (model, weights, wn, c, (guint64) c * 9, error);
  if (!f2_ref_is_set (out->w))
    return FALSE;
  out->b = f2_net_upload_named (model, weights, bn, c, c, error);
  return f2_ref_is_set (out->b);
}

static gboolean
load_block (F2NetModel *model, F2Weights *weights, guint s, guint i,
    gboolean spatial, F2NetVisionBlock *blk, GError **error)
{
  const F2NetDims *d = &model->dims;
  guint32 c = d->dim[s], hid = d->mlp_ratio * c;
  const char *kind = spatial ? "spatial_block" : "channel_block";
  const char *attn = spatial ? "window_attn" : "channel_attn";
  g_autofree char *base = g_strdup_printf ("vision_tower.blocks.%u.%u.%s", s, i, kind);
  g_autofree char *conv1 = g_strconcat (base, ".conv1.fn.dw", NULL);
  g_autofree char *conv2 = g_strconcat (base, ".conv2.fn.dw", NULL);
  g_autofree char *anorm = g_strdup_printf ("%s.%s.norm", base, attn);
  g_autofree char *qkv = g_strdup_printf ("%s.%s.fn.qkv", base, attn);
  g_autofree char *proj = g_strdup_printf ("%s.%s.fn.proj", base, attn);
  g_autofree char *fnorm = g_strconcat (base, ".ffn.norm", NULL);
  g_autofree char *fc1 = g_strconcat (base, ".ffn.fn.net.fc1", NULL);
  g_autofree char *fc2 = g_strconcat (base, ".ffn.fn.net.fc2", NULL);

  return load_dwconv (model, weights, conv1, c, &blk->conv1, error)
      && f2_net_upload_norm (model, weights, anorm, c, &blk->attn_norm, error)
      && f2_net_load_linear (model, weights, qkv, 3 * c, c, &blk->qkv, error)
      && f2_net_load_linear (model, weights, proj, c, c, &blk->proj, error)
      && load_dwconv (model, weights, conv2, c, &blk->conv2, error)
      && f2_net_upload_norm (model, weights, fnorm, c, &blk->ffn_norm, error)
      && f2_net_load_linear (model, weights, fc1, hid, c, &blk->fc1, error)
      && f2_net_load_linear (model, weights, fc2, c, hid, &blk->fc2, error);
}

/* pos[y * G + x] = cat (column[x], row[y]) */
static gboolean
load_pos_embed (F2NetModel *model, F2Weights *weights, GError **error)
{
  const F2NetDims *d = &model->dims;
  guint32 c4 = d->dim[F2_NET_STAGES - 1], g = d->grid[F2_NET_STAGES - 1];
  const F2Tensor *col = f2_weights_lookup (weights, "image_pos_embed.column_embeddings.weight");
  const F2Tensor *row = f2_weights_lookup (weights, "image_pos_embed.row_embeddings.weight");
  guint64 cc, rc;
  float *colf, *rowf, *table;

  if (col == NULL || row == NULL || col->ndim != 2 || row->ndim != 2
      || col->shape[0] < g || row->shape[0] < g
      || col->shape[1] + row->shape[1] != c4) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_SHAPE,
        "image_pos_embed.{column,row}_embeddings.weight are missing or do "
        "not hold %u rows of %u channels together; the checkpoint does not "
        "match config.json", g, c4);
    return FALSE;
  }
  cc = col->shape[1];
  rc = row->shape[1];
  colf = f2_tensor_dup_f32 (col);
  rowf = f2_tensor_dup_f32 (row);
  table = g_new (float, (gsize) g * g * c4);
  for (guint32 y = 0; y < g; y++) {
    for (guint32 x = 0; x < g; x++) {
      float *o = table + ((gsize) y * g + x) * c4;
      memcpy (o, colf + (gsize) x * cc, cc * sizeof (float));
      memcpy (o + cc, rowf + (gsize) y * rc, rc * sizeof (float));
    }
  }
  model->w.pos_embed = f2_net_upload_floats (model, table, (guint64) g * g * c4, error);
  g_free (colf);
  g_free (rowf);
  g_free (table);
  return f2_ref_is_set (model->w.pos_embed);
}

/* Row 0 of the cosine temporal embedding (one frame). */
static gboolean
load_temporal (F2NetModel *model, F2Weights *weights, GError **error)
{
  guint32 c4 = model->dims.dim[F2_NET_STAGES - 1];
  const F2Tensor *t = f2_weights_lookup (weights, "visual_temporal_embed.pos_idx_to_embed");
  float *row = g_new (float, c4);

  if (t != NULL) {
    float *all;

    if (t->ndim != 2 || t->shape[1] != c4 || t->shape[0] == 0) {
      g_autofree char *shape = f2_tensor_shape_string (t->ndim, t->shape);
      g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_SHAPE,
          "tensor 'visual_temporal_embed.pos_idx_to_embed' has shape %s, "
          "expected [N, %u]", shape, c4);
      g_free (row);
      return FALSE;
    }
    all = f2_tensor_dup_f32 (t);
    memcpy (row, all, c4 * sizeof (float));
    g_free (all);
  } else {
    /* sin(0) in even channels, cos(0) in odd ones, as the model computes it */
    for (guint32 c = 0; c < c4; c++)
      row[c] = (c % 2) ? 1.0f : 0.0f;
  }
  model->w.temporal = f2_net_upload_floats (model, row, c4, error);
  g_free (row);
  return f2_ref_is_set (model->w.temporal);
}

gboolean
f2_net_vision_load (F2NetModel *model, F2Weights *weights, GError **error)
{
  const F2NetDims *d = &model->dims;
  guint32 cin = 3;

  for (guint s = 0; s < F2_NET_STAGES; s++) {
    F2NetVisionStage *st = &model->w.stage[s];
    g_autofree char *conv = g_strdup_printf ("vision_tower.convs.%u.proj", s);
    g_autofree char *norm = g_strdup_printf ("vision_tower.convs.%u.norm", s);
    guint32 k = d->patch[s];

    st->spatial = g_new0 (F2NetVisionBlock, MAX (d->depth[s], 1));
    st->channel = g_new0 (F2NetVisionBlock, MAX (d->depth[s], 1));
    if (!f2_net_load_linear (model, weights, conv, d->dim[s], cin * k * k, &st->conv, error)
        || !f2_net_upload_norm (model, weights, norm,
            d->prenorm[s] ? cin : d->dim[s], &st->norm, error))
      return FALSE;
    for (guint i = 0; i < d->depth[s]; i++)
      if (!load_block (model, weights, s, i, TRUE, &st->spatial[i], error)
          || !load_block (model, weights, s, i, FALSE, &st->channel[i], error))
        return FALSE;
    cin = d->dim[s];
  }
  return load_pos_embed (model, weights, error)
      && load_temporal (model, weights, error)
      && f2_net_upload_linear (model, weights, "image_projection", NULL,
      d->d_model, cin, TRUE, &model->w.image_proj, error)
      && f2_net_upload_norm (model, weights, "image_proj_norm", d->d_model,
      &model->w.image_proj_norm, error);
}

void
f2_net_vision_free (F2NetModel *model)
{
  for (guint s = 0; s < F2_NET_STAGES; s++) {
    g_free (model->w.stage[s].spatial);
    g_free (model->w.stage[s].channel);
  }
}

/* ---------------------------------------------------------------- program */

static void
add_dwconv (F2Program *p, const char *name, const F2NetDwConv *conv, F2Ref x,
    guint32 side, guint32 c, F2Ref out)
{
  F2Op op = { .kind = F2_OP_DWCONV3X3, .name = name, .out = out };

  op.in[0] = x;
  op.in[1] = conv->w;
  op.in[2] = conv->b;
  op.p.dwconv = (F2DwConvParams) { .h = side, .w = side, .c = c, .residual = TRUE };
  f2_program_add (p, &op);
}

static void
add_conv (F2Program *p, const char *name, const F2NetLinear *conv, F2Ref x,
    F2Layout layout, guint32 cin, guint32 side, guint32 kernel,
    guint32 stride, guint32 pad, F2Ref out)
{
  F2Op op = { .kind = F2_OP_CONV2D, .name = name, .out = out };

  op.in[0] = x;
  op.in[1] = conv->w;
  op.in[2] = conv->b;
  op.p.conv2d = (F2Conv2dParams) {
    .cin = cin, .h = side, .w = side, .cout = conv->n, .kernel = kernel,
    .stride = stride, .pad = pad, .in_layout = layout, .flags = F2_EPI_BIAS,
  };
  f2_program_add (p, &op);
}

/* One spatial or channel block on the tokens of @n images in buf.vx (in
 * place). Row-wise ops (norms, matmuls) and the window attention take every
 * image's tokens at once, the images stacked along the grid's height (whole
 * windows each, as the grid is a multiple of the window); the convolutions
 * and the channel attention, which mix the tokens of one image, run per
 * image. */
static void
add_block (F2Net *net, F2Program *p, guint s, const F2NetVisionBlock *blk,
    gboolean spatial, guint32 n)
{
  const F2NetDims *d = &net->model->dims;
  F2NetBuffers *b = &net->buf;
  guint32 c = d->dim[s], side = d->grid[s];
  guint32 tokens = (guint32) stage_tokens (d, s), rows = n * tokens;
  guint32 chunk = hid_chunk_rows (d, s);
  F2ChannelAttentionParams cp = channel_params (d, s);
  guint64 scratch = f2_channel_attention_scratch_size (&cp);
  guint64 img = (guint64) tokens * c;     /* one image's activations */

  for (guint32 i = 0; i < n; i++)
    add_dwconv (p, "dwconv", &blk->conv1, f2_ref_at (b->vx, i * img), side, c,
        f2_ref_at (b->vy, i * img));
  f2_net_add_layer_norm (p, "attention norm", &blk->attn_norm, b->vy, rows,
      c, b->vn, F2_REF_NONE);
  f2_net_add_matmul (p, "qkv", &blk->qkv, b->vn, rows, 0, b->vqkv, 0, 0,
      F2_REF_NONE);
  if (spatial) {
    guint32 hd = c / d->heads[s];
    F2Op op = { .kind = F2_OP_ATTENTION, .name = "window attention", .out = b->va };

    op.in[0] = b->vqkv;
    op.in[1] = f2_ref_at (b->vqkv, c);
    op.in[2] = f2_ref_at (b->vqkv, 2 * c);
    op.p.attention = (F2AttentionParams) {
      .n_heads = d->heads[s], .head_dim = hd,
      .q_len = d->window * d->window, .kv_len = d->window * d->window,
      .q_stride = 3 * c, .k_stride = 3 * c, .v_stride = 3 * c, .o_stride = c,
      .batch = n * (side / d->window) * (side / d->window),
      .grid_h = n * side, .grid_w = side, .window = d->window,
      .scale = (float) pow ((double) hd, -0.5),
      .flags = F2_ATTN_WINDOW,
    };
    f2_program_add (p, &op);
  } else {
    for (guint32 i = 0; i < n; i++) {
      F2Op op = { .kind = F2_OP_CHANNEL_ATTENTION, .name = "channel attention",
        .out = f2_ref_at (b->va, i * img) };

      op.in[0] = f2_ref_at (b->vqkv, 3 * i * img);
      op.in[1] = f2_ref_at (b->vscratch, i * scratch);
      op.p.channel_attention = cp;
      f2_program_add (p, &op);
    }
  }
  f2_net_add_matmul (p, "attention proj", &blk->proj, b->va, rows, 0, b->vy,
      0, 0, b->vy);
  for (guint32 i = 0; i < n; i++)
    add_dwconv (p, "dwconv", &blk->conv2, f2_ref_at (b->vy, i * img), side, c,
        f2_ref_at (b->vx, i * img));
  f2_net_add_layer_norm (p, "mlp norm", &blk->ffn_norm, b->vx, rows, c,
      b->vn, F2_REF_NONE);
  for (guint32 r0 = 0; r0 < rows; r0 += chunk) {
    guint32 m = MIN (chunk, rows - r0);
    F2Ref x = f2_ref_at (b->vx, (guint64) r0 * c);

    f2_net_add_matmul (p, "fc1", &blk->fc1, f2_ref_at (b->vn, (guint64) r0 * c),
        m, 0, b->vhid, 0, F2_EPI_GELU, F2_REF_NONE);
    f2_net_add_matmul (p, "fc2", &blk->fc2, b->vhid, m, 0, x, 0, 0, x);
  }
}

/* Per image: the grid tokens with their position and temporal embeddings
 * after the mean token; then the projection and its norm for all images. */
static void
add_image_projection (F2Net *net, F2Program *p, const F2NetVisionIO *io)
{
  const F2NetDims *d = &net->model->dims;
  F2NetBuffers *b = &net->buf;
  guint32 c4 = d->dim[F2_NET_STAGES - 1], g = d->grid[F2_NET_STAGES - 1];
  guint32 n_grid = g * g, n_img = f2_net_image_tokens (d);

  for (guint32 i = 0; i < io->images; i++) {
    F2Ref feat = f2_ref_at (b->vfeat, (guint64) i * n_img * c4);
    F2Ref grid = f2_ref_at (feat, c4);
    F2Op mean = { .kind = F2_OP_MEAN_ROWS, .name = "mean token", .out = feat };

    f2_net_add_copy (p, "grid tokens", f2_ref_at (b->vx, (guint64) i * n_grid * c4),
        n_grid, c4, 0, grid, 0, F2_REF_NONE);
    f2_net_add_add (p, "position embedding", grid, net->model->w.pos_embed,
        n_grid * c4, 0, grid);
    f2_net_add_add (p, "temporal embedding", grid, net->model->w.temporal,
        n_grid * c4, c4, grid);
    mean.in[0] = grid;
    mean.p.mean_rows = (F2MeanRowsParams) { .rows = n_grid, .cols = c4 };
    f2_program_add (p, &mean);
  }
  f2_net_add_matmul (p, "image projection", &net->model->w.image_proj, b->vfeat,
      io->images * n_img, 0, io->features, 0, 0, F2_REF_NONE);
  f2_net_add_layer_norm (p, "image projection norm", &net->model->w.image_proj_norm,
      io->features, io->images * n_img, d->d_model, io->features, F2_REF_NONE);
}

static const char *const stage_names[F2_NET_STAGES] = {
  "vision stage 1", "vision stage 2", "vision stage 3", "vision stage 4",
};

/* The patch embedding of stage @s for each of @n images: a convolution
 * from @in (pixels [3][S][S] for the first stage, the last stage's tokens
 * [side*side][cin] after) into @out [grid*grid][dim]. */
static void
add_patch_embeddings (F2Net *net, F2Program *p, guint s, guint32 n, F2Ref in,
    guint32 cin, guint32 side, F2Ref out)
{
  const F2NetDims *d = &net->model->dims;
  F2Layout layout = s == 0 ? F2_LAYOUT_CHW : F2_LAYOUT_HWC;
  guint64 in_img = (guint64) cin * side * side;
  guint64 out_img = stage_tokens (d, s) * d->dim[s];

  for (guint32 i = 0; i < n; i++)
    add_conv (p, "patch embedding", &net->model->w.stage[s].conv,
        f2_ref_at (in, i * in_img), layout, cin, side, d->patch[s],
        d->stride[s], d->pad[s], f2_ref_at (out, i * out_img));
}

gboolean
f2_net_vision_build (F2Net *net, F2Program *p, const F2NetVisionIO *io,
    GError **error)
{
  const F2NetDims *d = &net->model->dims;
  F2NetBuffers *b = &net->buf;
  guint32 cin = 3, side = d->image_size, n = io->images;

  if (n == 0 || n > net->vision_batch || (net->keep_stages && n > 1)) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "a vision program for %u images; this net runs 1 to %u at once (1 "
        "when it keeps the stage outputs)", n, net->vision_batch);
    return FALSE;
  }
  for (guint s = 0; s < F2_NET_STAGES; s++) {
    const F2NetVisionStage *st = &net->model->w.stage[s];
    guint32 tokens = (guint32) stage_tokens (d, s);
    guint32 c = d->dim[s];

    f2_program_mark_stage (p, stage_names[s]);
    if (s == 0) {
      add_patch_embeddings (net, p, s, n, io->pixels, cin, side, b->vy);
      f2_net_add_layer_norm (p, "patch norm", &st->norm, b->vy, n * tokens, c,
          b->vx, F2_REF_NONE);
    } else if (d->prenorm[s]) {
      f2_net_add_layer_norm (p, "patch norm", &st->norm, b->vx, n * side * side,
          cin, b->vn, F2_REF_NONE);
      add_patch_embeddings (net, p, s, n, b->vn, cin, side, b->vx);
    } else {
      add_patch_embeddings (net, p, s, n, b->vx, cin, side, b->vy);
      f2_net_add_layer_norm (p, "patch norm", &st->norm, b->vy, n * tokens, c,
          b->vx, F2_REF_NONE);
    }
    if (net->keep_stages)
      f2_net_add_copy (p, "keep stage", b->vx, tokens, c, 0,
          b->vstage_conv[s], 0, F2_REF_NONE);
    for (guint i = 0; i < d->depth[s]; i++) {
      add_block (net, p, s, &st->spatial[i], TRUE, n);
      add_block (net, p, s, &st->channel[i], FALSE, n);
    }
    if (net->keep_stages)
      f2_net_add_copy (p, "keep stage", b->vx, tokens, c, 0,
          b->vstage_out[s], 0, F2_REF_NONE);
    cin = c;
    side = d->grid[s];
  }
  f2_program_mark_stage (p, "image projection");
  add_image_projection (net, p, io);
  return TRUE;
}

/* ------------------------------------------------- stage outputs (tests) */

gboolean
f2_net_keep_vision_stages (F2Net *net, GError **error)
{
  const F2NetDims *d = &net->model->dims;

  if (net->keep_stages)
    return TRUE;
  for (guint s = 0; s < F2_NET_STAGES; s++) {
    guint64 n = stage_tokens (d, s) * d->dim[s];

    net->buf.vstage_conv[s] = f2_net_alloc (net->model->backend, F2_BUFFER_ACTIVATIONS,
        F2_ELEM_FLOAT, n, error);
    if (!f2_ref_is_set (net->buf.vstage_conv[s]))
      return FALSE;
    net->buf.vstage_out[s] = f2_net_alloc (net->model->backend, F2_BUFFER_ACTIVATIONS,
        F2_ELEM_FLOAT, n, error);
    if (!f2_ref_is_set (net->buf.vstage_out[s]))
      return FALSE;
  }
  net->keep_stages = TRUE;
  /* record the vision program again, with the copies */
  f2_program_free (net->vision_program);
  net->vision_program = NULL;
  net->have_image = FALSE;
  return TRUE;
}

guint64
f2_net_vision_stage_size (F2Net *net, guint stage, guint32 *grid,
    guint32 *channels)
{
  if (stage >= F2_NET_STAGES)
    return 0;
  if (grid != NULL)
    *grid = net->model->dims.grid[stage];
  if (channels != NULL)
    *channels = net->model->dims.dim[stage];
  return stage_tokens (&net->model->dims, stage) * net->model->dims.dim[stage];
}

gboolean
f2_net_read_vision_stage (F2Net *net, guint stage, gboolean after_blocks,
    float *out, GError **error)
{
  if (!net->keep_stages || !net->have_image || stage >= F2_NET_STAGES) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "vision stage %u was not kept: call f2_net_keep_vision_stages() "
        "before f2_net_set_image()", stage);
    return FALSE;
  }
  return f2_backend_read (net->model->backend,
      after_blocks ? net->buf.vstage_out[stage] : net->buf.vstage_conv[stage],
      out, f2_net_vision_stage_size (net, stage, NULL, NULL), error);
}
