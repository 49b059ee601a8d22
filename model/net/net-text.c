/* The BART language model as programs: the encoder over the image tokens
 * and the prompt (with every decoder layer's cross-attention keys and
 * values), and one decoder step with its self-attention cache, LM head and
 * logits reduction.
 *
 * Layers are post-norm: h = LN(h + attention(h)), h = LN(h + fc2(gelu(fc1(h)))).
 *
 * The self-attention cache of a decoder layer keeps the keys and values of
 * position t for row (beam) b at cache row t * rows + b, [k | v] side by
 * side. A step writes its new keys into staging rows, then gathers
 * "old rows of each row's parent + the new row" into the other buffer of a
 * ping-pong pair with one indexed copy: beam reordering and the cache
 * append in one op, with the row index written by the host per step. */
#include "net-private.h"

#include <math.h>
#include <string.h>

#define LM "language_model."

/* ---------------------------------------------------------------- weights */

static gboolean
load_attention (F2NetModel *model, F2Weights *weights, const char *prefix,
    gboolean fuse_q, F2NetLinear *q, F2NetLinear *kv, F2NetLinear *out,
    GError **error)
{
  guint32 d = model->dims.d_model;
  g_autofree char *qn = g_strconcat (prefix, ".q_proj", NULL);
  g_autofree char *kn = g_strconcat (prefix, ".k_proj", NULL);
  g_autofree char *vn = g_strconcat (prefix, ".v_proj", NULL);
  g_autofree char *on = g_strconcat (prefix, ".out_proj", NULL);
  const char *qkv[3] = { qn, kn, vn };

  if (fuse_q) {
    if (!f2_net_upload_linear_stack (model, weights, qkv, 3, d, d, kv, error))
      return FALSE;
  } else if (!f2_net_load_linear (model, weights, qn, d, d, q, error)
      || !f2_net_upload_linear_stack (model, weights, qkv + 1, 2, d, d, kv, error))
    return FALSE;
  return f2_net_load_linear (model, weights, on, d, d, out, error);
}

static gboolean
load_encoder_layer (F2NetModel *model, F2Weights *weights, guint i,
    F2NetEncoderLayer *l, GError **error)
{
  const F2NetDims *d = &model->dims;
  g_autofree char *base = g_strdup_printf (LM "model.encoder.layers.%u", i);
  g_autofree char *attn = g_strconcat (base, ".self_attn", NULL);
  g_autofree char *anorm = g_strconcat (base, ".self_attn_layer_norm", NULL);
  g_autofree char *fc1 = g_strconcat (base, ".fc1", NULL);
  g_autofree char *fc2 = g_strconcat (base, ".fc2", NULL);
  g_autofree char *fnorm = g_strconcat (base, ".final_layer_norm", NULL);

  return load_attention (model, weights, attn, TRUE, NULL, &l->qkv, &l->out, error)
      && f2_net_upload_norm (model, weights, anorm, d->d_model, &l->attn_norm, error)
      && f2_net_load_linear (model, weights, fc1, d->enc_ffn, d->d_model, &l->fc1, error)
      && f2_net_load_linear (model, weights, fc2, d->d_model, d->enc_ffn, &l->fc2, error)
      && f2_net_upload_norm (model, weights, fnorm, d->d_model, &l->final_norm, error);
}

static gboolean
load_decoder_layer (F2NetModel *model, F2Weights *weights, guint i,
    F2NetDecoderLayer *l, GError **error)
{
  const F2NetDims *d = &model->dims;
  g_autofree char *base = g_strdup_printf (LM "model.decoder.layers.%u", i);
  g_autofree char *self = g_strconcat (base, ".self_attn", NULL);
  g_autofree char *snorm = g_strconcat (base, ".self_attn_layer_norm", NULL);
  g_autofree char *cross = g_strconcat (base, ".encoder_attn", NULL);
  g_autofree char *cnorm = g_strconcat (base, ".encoder_attn_layer_norm", NULL);
  g_autofree char *fc1 = g_strconcat (base, ".fc1", NULL);
  g_autofree char *fc2 = g_strconcat (base, ".fc2", NULL);
  g_autofree char *fnorm = g_strconcat (base, ".final_layer_norm", NULL);

  return load_attention (model, weights, self, FALSE, &l->self_q, &l->self_kv,
      &l->self_out, error)
      && f2_net_upload_norm (model, weights, snorm, d->d_model, &l->self_norm, error)
      && load_attention (model, weights, cross, FALSE, &l->cross_q, &l->cross_kv,
      &l->cross_out, error)
      && f2_net_upload_norm (model, weights, cnorm, d->d_model, &l->cross_norm, error)
      && f2_net_load_linear (model, weights, fc1, d->dec_ffn, d->d_model, &l->fc1, error)
      && f2_net_load_linear (model, weights, fc2, d->d_model, d->dec_ffn, &l->fc2, error)
      && f2_net_upload_norm (model, weights, fnorm, d->d_model, &l->final_norm, error);
}

/* lm_head.weight (zeros when absent, as the reference leaves it) and
 * final_logits_bias (zeros when absent) */
static gboolean
load_lm_head (F2NetModel *model, F2Weights *weights, GError **error)
{
  const F2NetDims *d = &model->dims;
  const F2Tensor *w = f2_weights_lookup (weights, LM "lm_head.weight");
  const F2Tensor *b = f2_weights_lookup (weights, LM "final_logits_bias");
  F2NetLinear *head = &model->w.lm_head;
  float *bias;

  if (w != NULL) {
    if (!f2_net_upload_linear (model, weights, LM "lm_head.weight", NULL,
            d->vocab, d->d_model, FALSE, head, error))
      return FALSE;
  } else {
    float *zeros = g_new0 (float, (gsize) d->vocab * d->d_model);

    head->n = d->vocab;
    head->k = d->d_model;
    head->w = f2_net_alloc (model->backend, F2_BUFFER_WEIGHTS, F2_ELEM_FLOAT,
        f2_backend_linear_size (model->backend, d->vocab, d->d_model), error);
    if (!f2_ref_is_set (head->w)
        || !f2_backend_upload_linear (model->backend, head->w, d->vocab,
            d->d_model, zeros, error)) {
      g_free (zeros);
      return FALSE;
    }
    g_free (zeros);
  }
  if (b != NULL && b->numel != d->vocab) {
    g_autofree char *shape = f2_tensor_shape_string (b->ndim, b->shape);
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_SHAPE,
        "tensor '" LM "final_logits_bias' has shape %s, expected [1, %u]",
        shape, d->vocab);
    return FALSE;
  }
  bias = b ? f2_tensor_dup_f32 (b) : g_new0 (float, d->vocab);
  head->b = f2_net_upload_floats (model, bias, d->vocab, error);
  g_free (bias);
  return f2_ref_is_set (head->b);
}

gboolean
f2_net_text_load (F2NetModel *model, F2Weights *weights, GError **error)
{
  const F2NetDims *d = &model->dims;
  guint64 pos_rows = (guint64) d->max_positions + 2;

  model->w.enc = g_new0 (F2NetEncoderLayer, MAX (d->enc_layers, 1));
  model->w.dec = g_new0 (F2NetDecoderLayer, MAX (d->dec_layers, 1));
  model->w.embed_tokens = f2_net_upload_named (model, weights,
      LM "model.shared.weight", d->vocab, (guint64) d->vocab * d->d_model, error);
  if (!f2_ref_is_set (model->w.embed_tokens))
    return FALSE;
  model->w.enc_positions = f2_net_upload_named (model, weights,
      LM "model.encoder.embed_positions.weight", pos_rows,
      pos_rows * d->d_model, error);
  if (!f2_ref_is_set (model->w.enc_positions))
    return FALSE;
  model->w.dec_positions = f2_net_upload_named (model, weights,
      LM "model.decoder.embed_positions.weight", pos_rows,
      pos_rows * d->d_model, error);
  if (!f2_ref_is_set (model->w.dec_positions)
      || !f2_net_upload_norm (model, weights, LM "model.encoder.layernorm_embedding",
          d->d_model, &model->w.enc_embed_norm, error)
      || !f2_net_upload_norm (model, weights, LM "model.decoder.layernorm_embedding",
          d->d_model, &model->w.dec_embed_norm, error))
    return FALSE;
  for (guint i = 0; i < d->enc_layers; i++)
    if (!load_encoder_layer (model, weights, i, &model->w.enc[i], error))
      return FALSE;
  for (guint i = 0; i < d->dec_layers; i++)
    if (!load_decoder_layer (model, weights, i, &model->w.dec[i], error))
      return FALSE;
  return load_lm_head (model, weights, error);
}

void
f2_net_text_free (F2NetModel *model)
{
  g_free (model->w.enc);
  g_free (model->w.dec);
}

/* ---------------------------------------------------------------- encoder */

static F2Program *
finish (F2Program *p, GError **error)
{
  if (!f2_program_finish (p, error)) {
    f2_program_free (p);
    return NULL;
  }
  return p;
}

/* Frame @i's encoder input: its image features (from vimage when they are
 * not in place yet), its prompt's embeddings after them and the positions,
 * into rows @row.. of eh. */
static void
add_encoder_input (F2Net *net, F2Program *p, const F2NetEncodeShape *f,
    guint i, guint32 row)
{
  const F2NetDims *d = &net->model->dims;
  F2NetBuffers *b = &net->buf;
  guint32 dm = d->d_model, n_img = f2_net_image_tokens (d);
  guint32 S = n_img + f->prompt_len;
  F2Ref embeds = f2_ref_at (b->embeds, (guint64) row * dm);
  F2Op emb = { .kind = F2_OP_EMBEDDING, .name = "prompt embedding",
    .out = f2_ref_at (embeds, (guint64) n_img * dm) };

  if (f->from_vimage)
    f2_net_add_copy (p, "image features", f2_ref_at (b->vimage,
            (guint64) f->image * n_img * dm), n_img, dm, 0, embeds, 0, F2_REF_NONE);
  emb.in[0] = f2_ref_at (b->ids, (guint64) i * net->model->limits.max_prompt_tokens);
  emb.in[1] = net->model->w.embed_tokens;
  emb.p.embedding = (F2EmbeddingParams) {
    .n = f->prompt_len, .dim = dm, .vocab = d->vocab, .scale = d->embed_scale,
  };
  f2_program_add (p, &emb);
  f2_net_add_add (p, "encoder positions", embeds,
      f2_ref_at (net->model->w.enc_positions, 2ull * dm), S * dm, 0,
      f2_ref_at (b->eh, (guint64) row * dm));
}

F2Program *
f2_net_encoder_program (F2Net *net, const F2NetEncodeShape *frames, guint n,
    GError **error)
{
  const F2NetDims *d = &net->model->dims;
  F2NetBuffers *b = &net->buf;
  guint32 dm = d->d_model, n_img = f2_net_image_tokens (d);
  guint32 hd = dm / d->enc_heads, rows = 0;
  guint32 first[F2_NET_VISION_BATCH];
  F2Program *p = f2_program_new (net->model->backend, "encoder");

  g_return_val_if_fail (n > 0 && n <= net->vision_batch, NULL);

  /* every frame's rows one after the other: row-wise ops take them all,
   * attention and the cross-attention keys go frame by frame */
  f2_program_mark_stage (p, "encoder embedding");
  for (guint i = 0; i < n; i++) {
    first[i] = rows;
    add_encoder_input (net, p, &frames[i], i, rows);
    rows += n_img + frames[i].prompt_len;
  }
  f2_net_add_layer_norm (p, "embedding norm", &net->model->w.enc_embed_norm, b->eh,
      rows, dm, b->eh, F2_REF_NONE);

  f2_program_mark_stage (p, "encoder layers");
  for (guint l = 0; l < d->enc_layers; l++) {
    const F2NetEncoderLayer *layer = &net->model->w.enc[l];

    f2_net_add_matmul (p, "qkv", &layer->qkv, b->eh, rows, 0, b->eqkv, 0, 0,
        F2_REF_NONE);
    for (guint i = 0; i < n; i++) {
      guint32 S = n_img + frames[i].prompt_len;
      F2Ref q = f2_ref_at (b->eqkv, (guint64) first[i] * 3 * dm);
      F2Op att = { .kind = F2_OP_ATTENTION, .name = "encoder attention",
        .out = f2_ref_at (b->eattn, (guint64) first[i] * dm) };

      att.in[0] = q;
      att.in[1] = f2_ref_at (q, dm);
      att.in[2] = f2_ref_at (q, 2ull * dm);
      att.p.attention = (F2AttentionParams) {
        .n_heads = d->enc_heads, .head_dim = hd, .q_len = S, .kv_len = S,
        .q_stride = 3 * dm, .k_stride = 3 * dm, .v_stride = 3 * dm,
        .o_stride = dm, .batch = 1, .scale = (float) pow ((double) hd, -0.5),
      };
      f2_program_add (p, &att);
    }
    f2_net_add_matmul (p, "attention out", &layer->out, b->eattn, rows, 0, b->eh,
        0, 0, b->eh);
    f2_net_add_layer_norm (p, "attention norm", &layer->attn_norm, b->eh, rows,
        dm, b->eh, F2_REF_NONE);
    f2_net_add_matmul (p, "fc1", &layer->fc1, b->eh, rows, 0, b->ehid, 0,
        F2_EPI_GELU, F2_REF_NONE);
    f2_net_add_matmul (p, "fc2", &layer->fc2, b->ehid, rows, 0, b->eh, 0, 0, b->eh);
    f2_net_add_layer_norm (p, "final norm", &layer->final_norm, b->eh, rows, dm,
        b->eh, F2_REF_NONE);
  }

  f2_program_mark_stage (p, "cross-attention keys");
  for (guint i = 0; i < n; i++)
    for (guint l = 0; l < d->dec_layers; l++)
      f2_net_add_matmul (p, "cross kv", &net->model->w.dec[l].cross_kv,
          f2_ref_at (b->eh, (guint64) first[i] * dm), n_img + frames[i].prompt_len,
          0, b->cross_kv[frames[i].slot * d->dec_layers + l], 0, 0, F2_REF_NONE);
  return finish (p, error);
}

/* ---------------------------------------------------------------- decoder */

static void
add_attention (F2Program *p, const char *name, F2Ref q, F2Ref kv, F2Ref out,
    const F2AttentionParams *params, F2Ref kv_len_ref, guint32 dm)
{
  F2Op op = { .kind = F2_OP_ATTENTION, .name = name, .out = out };

  op.in[0] = q;
  op.in[1] = kv;
  op.in[2] = f2_ref_at (kv, dm);
  op.in[4] = kv_len_ref;
  op.p.attention = *params;
  f2_program_add (p, &op);
}

/* The reductions of each frame's rows: argmax (greedy) or the top k of
 * the log-softmax (beam search), writing from row offset * max_k on. */
static void
add_reductions (F2Net *net, F2Program *p, const F2NetStepShape *groups,
    guint n_groups)
{
  const F2NetBuffers *b = &net->buf;
  guint32 max_banned = net->model->limits.max_banned, vocab = net->model->dims.vocab;
  guint32 row = 0;

  for (guint g = 0; g < n_groups; g++) {
    F2Op red = { .name = "logits reduction" };
    guint32 R = groups[g].rows, k = groups[g].k;
    guint64 out_at = (guint64) row * net->model->max_k;

    red.in[0] = f2_ref_at (b->logits, (guint64) row * vocab);
    if (max_banned > 0)
      red.in[1] = f2_ref_at (b->banned, (guint64) row * max_banned);
    red.out = f2_ref_at (b->out_ids, out_at);
    if (k == 0) {
      red.kind = F2_OP_ARGMAX;
      red.p.argmax = (F2ArgmaxParams) {
        .rows = R, .cols = vocab, .max_banned = max_banned,
      };
    } else {
      red.kind = F2_OP_TOPK;
      red.out2 = f2_ref_at (b->out_scores, out_at);
      red.p.topk = (F2TopkParams) {
        .rows = R, .cols = vocab, .k = k, .max_banned = max_banned,
      };
    }
    f2_program_add (p, &red);
    row += R;
  }
}

F2Program *
f2_net_step_program (F2Net *net, const F2NetStepShape *groups, guint n_groups,
    guint32 kv_rows, guint src, GError **error)
{
  const F2NetDims *d = &net->model->dims;
  F2NetBuffers *b = &net->buf;
  guint32 dm = d->d_model, hd = dm / d->dec_heads, R = 0;
  /* every matmul's rows are the sequences: a frame's bits do not depend
   * on the batch it is in */
  const guint32 SEQ = F2_MATMUL_SEQUENCE_ROWS;
  float scale = (float) pow ((double) hd, -0.5);
  F2Program *p = f2_program_new (net->model->backend, "decoder step");
  F2AttentionParams self, cross = {
    .n_heads = d->dec_heads, .head_dim = hd, .kv_len = net->model->max_seq,
    .q_stride = dm, .k_stride = 2 * dm, .v_stride = 2 * dm, .o_stride = dm,
    .batch = 1, .scale = scale, .flags = F2_ATTN_DYNAMIC_KV,
  };

  for (guint g = 0; g < n_groups; g++)
    R += groups[g].rows;
  self = (F2AttentionParams) {
    .n_heads = d->dec_heads, .head_dim = hd, .q_len = 1, .kv_len = kv_rows,
    .q_stride = dm, .k_stride = R * 2 * dm, .v_stride = R * 2 * dm,
    .o_stride = dm, .batch = R, .q_batch = dm, .k_batch = 2 * dm,
    .v_batch = 2 * dm, .o_batch = dm, .scale = scale,
    .flags = F2_ATTN_DYNAMIC_KV,
  };

  f2_program_mark_stage (p, "decoder embedding");
  /* one op per row: every row is at the same position */
  for (guint32 r = 0; r < R; r++) {
    F2Op emb = { .kind = F2_OP_EMBEDDING, .name = "token embedding",
      .out = f2_ref_at (b->dh, (guint64) r * dm) };

    emb.in[0] = f2_ref_at (b->tokens, r);
    emb.in[1] = net->model->w.embed_tokens;
    emb.in[2] = net->model->w.dec_positions;
    emb.in[3] = f2_ref_at (b->control, F2_NET_CTRL_POSITION);
    emb.p.embedding = (F2EmbeddingParams) {
      .n = 1, .dim = dm, .vocab = d->vocab, .scale = d->embed_scale,
      .pos_offset = 2,
    };
    f2_program_add (p, &emb);
  }
  f2_net_add_layer_norm (p, "embedding norm", &net->model->w.dec_embed_norm, b->dh,
      R, dm, b->dh, F2_REF_NONE);

  f2_program_mark_stage (p, "decoder layers");
  for (guint i = 0; i < d->dec_layers; i++) {
    const F2NetDecoderLayer *l = &net->model->w.dec[i];
    F2Ref cache_src = b->cache[src][i], cache_dst = b->cache[src ^ 1][i];
    guint32 row = 0;

    /* self-attention over the cache plus this step's keys */
    f2_net_add_matmul (p, "self q", &l->self_q, b->dh, R, 0, b->dq, 0, SEQ, F2_REF_NONE);
    f2_net_add_matmul (p, "self kv", &l->self_kv, b->dh, R, 0,
        f2_ref_at (cache_src, b->cache_staging * 2 * dm), 0, SEQ, F2_REF_NONE);
    f2_net_add_copy (p, "cache gather", cache_src, kv_rows * R, 2 * dm, 0,
        cache_dst, 0, b->gather);
    add_attention (p, "self attention", b->dq, cache_dst, b->dattn, &self,
        f2_ref_at (b->control, F2_NET_CTRL_SELF_KV), dm);
    f2_net_add_matmul (p, "self out", &l->self_out, b->dattn, R, 0, b->dh, 0,
        SEQ, b->dh);
    f2_net_add_layer_norm (p, "self norm", &l->self_norm, b->dh, R, dm, b->dh,
        F2_REF_NONE);

    /* cross-attention: each frame's rows over its own encoder output */
    f2_net_add_matmul (p, "cross q", &l->cross_q, b->dh, R, 0, b->dq, 0, SEQ, F2_REF_NONE);
    for (guint g = 0; g < n_groups; g++) {
      guint64 at = (guint64) row * dm;

      cross.q_len = groups[g].rows;
      add_attention (p, "cross attention", f2_ref_at (b->dq, at),
          b->cross_kv[groups[g].slot * d->dec_layers + i],
          f2_ref_at (b->dattn, at), &cross,
          f2_ref_at (b->control, F2_NET_CTRL_CROSS_KV + groups[g].slot), dm);
      row += groups[g].rows;
    }
    f2_net_add_matmul (p, "cross out", &l->cross_out, b->dattn, R, 0, b->dh,
        0, SEQ, b->dh);
    f2_net_add_layer_norm (p, "cross norm", &l->cross_norm, b->dh, R, dm,
        b->dh, F2_REF_NONE);

    f2_net_add_matmul (p, "fc1", &l->fc1, b->dh, R, 0, b->dhid, 0,
        SEQ | F2_EPI_GELU, F2_REF_NONE);
    f2_net_add_matmul (p, "fc2", &l->fc2, b->dhid, R, 0, b->dh, 0, SEQ, b->dh);
    f2_net_add_layer_norm (p, "final norm", &l->final_norm, b->dh, R, dm,
        b->dh, F2_REF_NONE);
  }

  f2_program_mark_stage (p, "lm head");
  f2_net_add_matmul (p, "lm head", &net->model->w.lm_head, b->dh, R, 0, b->logits, 0,
      SEQ, F2_REF_NONE);
  add_reductions (net, p, groups, n_groups);
  return finish (p, error);
}
