/* The network's lifetime and its three per-frame calls: buffers sized once
 * from the limits, programs recorded on first use and replayed. The
 * programs themselves are built in net-vision.c and net-text.c. */
#include "backend-private.h"
#include "net-private.h"

#include <math.h>
#include <string.h>


F2NetLimits
f2_net_default_limits (void)
{
  F2NetLimits l = {
    .max_prompt_tokens = 256,
    .max_decoder_tokens = 1025,
    .max_beams = 3,
    .max_banned = 64,
    .max_image_width = 8192,
    .max_image_height = 8192,
  };
  return l;
}

/* ----------------------------------------------------------------- set-up */


/* The network's dimensions from a configuration f2_config_load() has
 * checked (every size and its consistency are its business). */
static void
dims_from_config (F2NetDims *d, const F2Config *c)
{
  const F2VisionConfig *v = &c->vision;
  const F2TextConfig *t = &c->text;
  const F2PreprocessConfig *pp = &c->preprocess;
  guint32 side;

  memset (d, 0, sizeof *d);
  d->image_size = side = pp->width;
  d->window = v->window_size;
  d->mlp_ratio = v->mlp_ratio ? v->mlp_ratio : 4;
  for (guint s = 0; s < F2_NET_STAGES; s++) {
    d->dim[s] = v->dim_embed[s];
    d->depth[s] = v->depths[s];
    d->heads[s] = v->num_heads[s];
    d->groups[s] = v->num_groups[s];
    d->patch[s] = v->patch_size[s];
    d->stride[s] = v->patch_stride[s];
    d->pad[s] = v->patch_padding[s];
    d->prenorm[s] = v->patch_prenorm[s];
    side = (side + 2 * d->pad[s] - d->patch[s]) / d->stride[s] + 1;
    d->grid[s] = side;
  }
  d->pos_embed_max = v->image_pos_max_embeddings;
  d->temporal_max = v->temporal_max_embeddings;

  d->d_model = t->d_model;
  d->vocab = t->vocab_size;
  d->max_positions = t->max_position_embeddings;
  d->enc_layers = t->encoder_layers;
  d->enc_heads = t->encoder_attention_heads;
  d->enc_ffn = t->encoder_ffn_dim;
  d->dec_layers = t->decoder_layers;
  d->dec_heads = t->decoder_attention_heads;
  d->dec_ffn = t->decoder_ffn_dim;
  d->embed_scale = t->scale_embedding ? sqrtf ((float) t->d_model) : 1.0f;

  d->norm.rescale = pp->do_rescale ? pp->rescale_factor : 1.0;
  for (int i = 0; i < 3; i++) {
    d->norm.mean[i] = pp->do_normalize ? pp->mean[i] : 0.0;
    d->norm.std[i] = pp->do_normalize ? pp->std[i] : 1.0;
  }
}

/* The caller's limits against the model: settings, not the model's fault. */
static gboolean
check_limits (F2NetModel *model, GError **error)
{
  F2NetLimits *l = &model->limits;
  const F2NetDims *d = &model->dims;
  guint32 image_tokens = f2_net_image_tokens (d);

  if (l->max_prompt_tokens == 0 || l->max_decoder_tokens == 0
      || l->max_beams == 0 || l->max_image_width == 0 || l->max_image_height == 0)
    return f2_settings_invalid (error, "network limits must not be 0");
  if ((guint64) image_tokens + l->max_prompt_tokens > d->max_positions)
    return f2_settings_invalid (error, "%u image tokens plus %u prompt tokens exceed the "
        "model's %u positions; lower max_prompt_tokens", image_tokens,
        l->max_prompt_tokens, d->max_positions);
  /* the last token of a sequence is never fed back */
  if (l->max_decoder_tokens > d->max_positions + 1)
    return f2_settings_invalid (error, "max_decoder_tokens %u exceeds the model's %u "
        "positions (plus the last token)", l->max_decoder_tokens,
        d->max_positions);
  /* beam search takes the top 2 * beams of each step: top-k keeps 32 */
  if (l->max_beams > 16)
    return f2_settings_invalid (error, "max_beams %u is too large (at most 16)", l->max_beams);
  if (l->max_image_width > F2_RESAMPLE_MAX_SIZE
      || l->max_image_height > F2_RESAMPLE_MAX_SIZE)
    return f2_settings_invalid (error, "the largest image %ux%u exceeds %u pixels a side",
        l->max_image_width, l->max_image_height, F2_RESAMPLE_MAX_SIZE);
  return TRUE;
}

/* Pillow's widest window for @in -> @out (see preprocess.c). */
static guint32
max_taps (guint32 in, guint32 out)
{
  double scale = MAX ((double) in / out, 1.0);

  return (guint32) ceil (2.0 * scale) * 2 + 1;
}

static gboolean
alloc_buffers (F2Net *net, GError **error)
{
  const F2NetDims *d = &net->model->dims;
  const F2NetLimits *l = &net->model->limits;
  F2NetBuffers *b = &net->buf;
  guint32 dm = d->d_model, S = net->model->max_seq, R = net->max_rows;
  guint32 V = net->vision_batch, n_img = f2_net_image_tokens (d);
  guint64 act, hid, scratch, cache_rows;
  guint32 side = d->image_size;
  guint32 ffn = MAX (d->enc_ffn, d->dec_ffn);
  GError *e = NULL;

#define ALLOC(kind, type, n) f2_net_alloc (net->model->backend, kind, type, n, &e)
#define ACT(n) ALLOC (F2_BUFFER_ACTIVATIONS, F2_ELEM_FLOAT, n)
#define HOST(type, n) ALLOC (F2_BUFFER_HOST, type, n)
  /* preprocessing: the frame, the coefficient tables, the two passes */
  b->image_bytes = (guint64) l->max_image_width * l->max_image_height * 4;
  b->coeffs_h_len = (guint64) side * max_taps (l->max_image_width, side);
  b->coeffs_v_len = (guint64) side * max_taps (l->max_image_height, side);
  b->rows_bytes = (guint64) l->max_image_height * side * 3;
  b->pre.image = HOST (F2_ELEM_U8, b->image_bytes);
  if (e == NULL) b->pre.coeffs_h = HOST (F2_ELEM_I32, b->coeffs_h_len);
  if (e == NULL) b->pre.bounds_h = HOST (F2_ELEM_I32, side);
  if (e == NULL) b->pre.coeffs_v = HOST (F2_ELEM_I32, b->coeffs_v_len);
  if (e == NULL) b->pre.bounds_v = HOST (F2_ELEM_I32, side);
  if (e == NULL) b->pre.rows = ALLOC (F2_BUFFER_ACTIVATIONS, F2_ELEM_U8, b->rows_bytes);
  if (e == NULL) b->pre.out = ACT (3ull * side * side);

  /* vision */
  f2_net_vision_sizes (d, &act, &hid, &scratch);
  act *= V;
  if (e == NULL) b->vx = ACT (act);
  if (e == NULL) b->vy = ACT (act);
  if (e == NULL) b->vn = ACT (act);
  if (e == NULL) b->va = ACT (act);
  if (e == NULL) b->vqkv = ACT (3 * act);
  if (e == NULL) b->vhid = ACT (hid);
  if (e == NULL) b->vscratch = ALLOC (F2_BUFFER_ACTIVATIONS, F2_ELEM_I32, V * scratch);
  if (e == NULL) b->vfeat = ACT ((guint64) V * n_img * d->dim[F2_NET_STAGES - 1]);
  if (e == NULL && V > 1) b->vpixels = ACT (3ull * V * side * side);
  if (e == NULL && V > 1) b->vimage = ACT ((guint64) V * n_img * dm);

  /* encoder */
  /* a batch's frames go through the encoder vision_batch at a time */
  if (e == NULL) b->ids = HOST (F2_ELEM_I32, (guint64) V * l->max_prompt_tokens);
  if (e == NULL) b->embeds = ACT ((guint64) V * S * dm);
  if (e == NULL) b->eh = ACT ((guint64) V * S * dm);
  if (e == NULL) b->eqkv = ACT ((guint64) V * S * 3 * dm);
  if (e == NULL) b->eattn = ACT ((guint64) V * S * dm);
  if (e == NULL) b->ehid = ACT ((guint64) V * S * d->enc_ffn);
  b->cross_kv = g_new0 (F2Ref, (gsize) net->n_slots * MAX (d->dec_layers, 1));
  for (guint i = 0; i < net->n_slots * d->dec_layers && e == NULL; i++)
    b->cross_kv[i] = ACT ((guint64) S * 2 * dm);

  /* decoder */
  if (e == NULL) b->tokens = HOST (F2_ELEM_I32, R);
  if (e == NULL) b->gather = HOST (F2_ELEM_I32, (guint64) l->max_decoder_tokens * R);
  if (e == NULL) b->banned = HOST (F2_ELEM_I32, (guint64) R * MAX (l->max_banned, 1));
  if (e == NULL) b->control = HOST (F2_ELEM_I32, F2_NET_CTRL_COUNT (net->n_slots));
  if (e == NULL) b->dh = ACT ((guint64) R * dm);
  if (e == NULL) b->dq = ACT ((guint64) R * dm);
  if (e == NULL) b->dattn = ACT ((guint64) R * dm);
  if (e == NULL) b->dhid = ACT ((guint64) R * ffn);
  if (e == NULL) b->logits = ACT ((guint64) R * d->vocab);
  if (e == NULL) b->out_ids = HOST (F2_ELEM_I32, (guint64) R * net->model->max_k);
  if (e == NULL) b->out_scores = HOST (F2_ELEM_FLOAT, (guint64) R * net->model->max_k);
  b->cache_staging = (guint64) l->max_decoder_tokens * R;
  cache_rows = b->cache_staging + R;
  for (guint c = 0; c < 2; c++) {
    b->cache[c] = g_new0 (F2Ref, MAX (d->dec_layers, 1));
    for (guint i = 0; i < d->dec_layers && e == NULL; i++)
      b->cache[c][i] = ACT (cache_rows * 2 * dm);
  }
#undef HOST
#undef ACT
#undef ALLOC
  if (e != NULL) {
    g_propagate_prefixed_error (error, e, "cannot allocate the working "
        "buffers (lower the limits on prompt, decoder tokens, beams or image "
        "size): ");
    return FALSE;
  }
  net->gather_host = g_new0 (gint32, (gsize) l->max_decoder_tokens * R);
  net->banned_host = g_new0 (gint32, (gsize) R * MAX (l->max_banned, 1));
  net->tokens_host = g_new0 (gint32, R);
  net->control_host = g_new0 (gint32, F2_NET_CTRL_COUNT (net->n_slots));
  net->out_ids_host = g_new0 (gint32, (gsize) R * net->model->max_k);
  net->out_scores_host = g_new0 (float, (gsize) R * net->model->max_k);
  return TRUE;
}

F2NetModel *
f2_net_model_new (F2Backend *backend, const F2Config *config, F2Weights *weights,
    const F2NetLimits *limits, GError **error)
{
  F2NetModel *model;

  g_return_val_if_fail (backend != NULL && config != NULL && weights != NULL, NULL);

  model = g_new0 (F2NetModel, 1);
  model->backend = backend;
  model->limits = limits ? *limits : f2_net_default_limits ();
  dims_from_config (&model->dims, config);
  if (!check_limits (model, error))
    goto fail;
  model->max_seq = f2_net_image_tokens (&model->dims) + model->limits.max_prompt_tokens;
  model->max_k = 2 * model->limits.max_beams;
  if (!f2_net_vision_load (model, weights, error)
      || !f2_net_text_load (model, weights, error))
    goto fail;
  return model;

fail:
  g_prefix_error (error, "cannot set up the Florence-2 network: ");
  f2_net_model_free (model);
  return NULL;
}

void
f2_net_model_free (F2NetModel *model)
{
  if (model == NULL)
    return;
  f2_net_vision_free (model);
  f2_net_text_free (model);
  g_free (model);
}

F2Net *
f2_net_new (F2NetModel *model, GError **error)
{
  return f2_net_new_batch (model, 1, error);
}

F2Net *
f2_net_new_batch (F2NetModel *model, guint slots, GError **error)
{
  F2Net *net;

  g_return_val_if_fail (model != NULL, NULL);

  if (slots == 0 || slots > F2_NET_MAX_SLOTS) {
    f2_settings_invalid (error, "a batch of %u frames was asked; 1 to %u can be "
        "decoded together", slots, F2_NET_MAX_SLOTS);
    return NULL;
  }
  net = g_new0 (F2Net, 1);
  net->model = model;
  net->n_slots = slots;
  net->vision_batch = f2_backend_batches_images (model->backend) ?
      MIN (slots, F2_NET_VISION_BATCH) : 1;
  net->max_rows = slots * model->limits.max_beams;
  net->slot_prompt = g_new0 (guint32, slots);
  net->last_offset = g_new0 (guint32, slots);
  net->last_rows = g_new0 (guint32, slots);
  net->last_position = -1;
  net->encoder_programs = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, (GDestroyNotify) f2_program_free);
  net->step_programs = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, (GDestroyNotify) f2_program_free);
  net->stage_times = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!alloc_buffers (net, error)) {
    f2_net_free (net);
    return NULL;
  }
  return net;
}

void
f2_net_free (F2Net *net)
{
  if (net == NULL)
    return;
  f2_program_free (net->pre_program);
  f2_program_free (net->vision_program);
  for (guint i = 0; i < F2_NET_VISION_BATCH; i++) {
    f2_program_free (net->vision_batch_programs[i]);
    f2_program_free (net->pixels_in[i]);
  }
  f2_resampler_free (net->resampler);
  g_hash_table_unref (net->encoder_programs);
  g_hash_table_unref (net->step_programs);
  g_hash_table_unref (net->stage_times);
  g_free (net->buf.cross_kv);
  g_free (net->buf.cache[0]);
  g_free (net->buf.cache[1]);
  g_free (net->gather_host);
  g_free (net->banned_host);
  g_free (net->tokens_host);
  g_free (net->control_host);
  g_free (net->out_ids_host);
  g_free (net->out_scores_host);
  g_free (net->slot_prompt);
  g_free (net->last_offset);
  g_free (net->last_rows);
  g_free (net);
}

guint
f2_net_slots (F2Net *net)
{
  return net->n_slots;
}

F2Backend *
f2_net_backend (F2Net *net)
{
  return net->model->backend;
}

/* ------------------------------------------------------------ running */

static double
program_ms (F2Program *p)
{
  const F2RunStats *s = f2_program_last_stats (p);

  return s->gpu_ms >= 0 ? s->gpu_ms : s->wall_ms;
}

static void
count_run (F2Net *net, F2Program *p)
{
  const F2RunStats *s = f2_program_last_stats (p);

  net->profile.dispatches += s->dispatches;
  net->profile.submits += s->submits;
  net->profile.flops += f2_program_flops (p);
  for (guint i = 0;; i++) {
    const char *name;
    double ms;
    F2NetStageTime *t;
    if (!f2_program_stage_time (p, i, &name, &ms))
      break;
    t = g_hash_table_lookup (net->stage_times, name);
    if (t == NULL) {
      t = g_new0 (F2NetStageTime, 1);
      t->name = g_strdup (name);
      g_hash_table_insert (net->stage_times, (char *) t->name, t);
    }
    t->ms += ms;
    t->intervals++;
  }
}

static gboolean
image_layout (const F2Image *image, F2ImageLayout *layout, GError **error)
{
  layout->format = image->format;
  layout->width = image->width;
  layout->height = image->height;
  memcpy (layout->stride, image->stride, sizeof layout->stride);
  memcpy (layout->plane_offset, image->plane_offset, sizeof layout->plane_offset);
  if (image->format > F2_PIXEL_I420)
    return f2_backend_invalid (error, "unknown pixel format %d", image->format);
  return TRUE;
}

static gboolean
same_layout (const F2ImageLayout *a, const F2ImageLayout *b)
{
  return a->format == b->format && a->width == b->width
      && a->height == b->height
      && memcmp (a->stride, b->stride, sizeof a->stride) == 0
      && memcmp (a->plane_offset, b->plane_offset, sizeof a->plane_offset) == 0;
}

/* (Re)build the preprocessing program when the frame layout changes. */
static gboolean
prepare_preprocess (F2Net *net, const F2ImageLayout *layout,
    F2YuvMatrix matrix, GError **error)
{
  F2NetBuffers *b = &net->buf;
  guint32 side = net->model->dims.image_size;
  F2Resampler *rs;
  F2Program *p;

  if (net->pre_program != NULL && same_layout (layout, &net->pre_layout)
      && matrix == net->pre_matrix)
    return TRUE;
  f2_program_free (net->pre_program);
  net->pre_program = NULL;
  f2_resampler_free (net->resampler);
  net->resampler = rs = f2_resampler_new (layout->width, layout->height,
      side, side, error);
  if (rs == NULL)
    return FALSE;
  if ((guint64) side * rs->taps_h > b->coeffs_h_len
      || (guint64) side * rs->taps_v > b->coeffs_v_len
      || f2_resampler_rows_size (rs) > b->rows_bytes)
    return f2_backend_invalid (error, "a %ux%u frame exceeds the network's image limits "
        "%ux%u; raise max_image_width/height", layout->width, layout->height,
        net->model->limits.max_image_width, net->model->limits.max_image_height);
  if (!f2_resampler_upload (rs, net->model->backend, &b->pre, error))
    return FALSE;
  p = f2_program_new (net->model->backend, "preprocess");
  f2_program_mark_stage (p, "preprocess");
  if (!f2_preprocess_add_ops (p, rs, layout, matrix, &net->model->dims.norm, &b->pre, error)) {
    f2_program_free (p);
    return FALSE;
  }
  if (!f2_program_finish (p, error)) {
    f2_program_free (p);
    return FALSE;
  }
  net->pre_program = p;
  net->pre_layout = *layout;
  net->pre_matrix = matrix;
  return TRUE;
}

/* Check @image against the limits and make the preprocessing program for
 * its layout: what is wrong here is the frame's fault. */
static gboolean
prepare_image (F2Net *net, const F2Image *image, guint64 *need, GError **error)
{
  F2ImageLayout layout;

  if (image->width == 0 || image->height == 0
      || image->width > net->model->limits.max_image_width
      || image->height > net->model->limits.max_image_height)
    return f2_backend_invalid (error, "frame size %ux%u is outside 1x1 .. %ux%u (the "
        "network's image limits)", image->width, image->height,
        net->model->limits.max_image_width, net->model->limits.max_image_height);
  if (!image_layout (image, &layout, error))
    return FALSE;
  *need = f2_image_layout_size (&layout);
  if (image->data == NULL || image->size < *need)
    return f2_backend_invalid (error, "the %ux%u frame needs %" G_GUINT64_FORMAT
        " bytes with its strides and offsets, got %" G_GSIZE_FORMAT,
        image->width, image->height, *need, image->size);
  if (*need > net->buf.image_bytes)
    return f2_backend_invalid (error, "the frame's %" G_GUINT64_FORMAT " bytes exceed "
        "the %" G_GUINT64_FORMAT " bytes the network's image limits allow; "
        "raise max_image_width/height", *need, net->buf.image_bytes);
  return prepare_preprocess (net, &layout,
      image->bt709 ? F2_YUV_BT709 : F2_YUV_BT601, error);
}

/* Run @p, adding its time to @ms */
static gboolean
run_counted (F2Net *net, F2Program *p, double *ms, GError **error)
{
  if (!f2_program_run (p, error))
    return FALSE;
  *ms += program_ms (p);
  count_run (net, p);
  return TRUE;
}

/* The frame (checked by prepare_image) into pre.out */
static gboolean
preprocess (F2Net *net, const F2Image *image, guint64 size, GError **error)
{
  return f2_backend_write (net->model->backend, net->buf.pre.image, image->data,
      size, error)
      && run_counted (net, net->pre_program, &net->profile.preprocess_ms, error);
}

static F2Program *
vision_program (F2Net *net, const F2NetVisionIO *io, GError **error)
{
  F2Program *p = f2_program_new (net->model->backend, "vision");

  if (!f2_net_vision_build (net, p, io, error) || !f2_program_finish (p, error)) {
    f2_program_free (p);
    return NULL;
  }
  return p;
}

/* A program of one copy op: @rows x @cols elements from @x to @out */
static F2Program *
copy_program (F2Net *net, const char *name, F2Ref x, guint32 rows,
    guint32 cols, F2Ref out, GError **error)
{
  F2Program *p = f2_program_new (net->model->backend, name);

  f2_program_mark_stage (p, name);
  f2_net_add_copy (p, name, x, rows, cols, 0, out, 0, F2_REF_NONE);
  if (!f2_program_finish (p, error)) {
    f2_program_free (p);
    return NULL;
  }
  return p;
}

static void
forget_images (F2Net *net)
{
  net->have_image = FALSE;
  net->have_logits = FALSE;
  net->features_in_embeds = FALSE;
  net->prompt_len = 0;
  net->last_position = -1;
  for (guint i = 0; i < F2_NET_VISION_BATCH; i++)
    net->image_at[i] = -1;
}

/* One image (checked by prepare_image) through the single-image vision
 * program, its features straight into embeds */
static gboolean
run_single_image (F2Net *net, const F2Image *image, guint64 size, GError **error)
{
  if (net->vision_program == NULL) {
    F2NetVisionIO io = { 1, net->buf.pre.out, net->buf.embeds };

    net->vision_program = vision_program (net, &io, error);
    if (net->vision_program == NULL)
      return FALSE;
  }
  if (!preprocess (net, image, size, error)
      || !run_counted (net, net->vision_program, &net->profile.vision_ms, error))
    return FALSE;
  net->have_image = TRUE;
  net->features_in_embeds = TRUE;
  net->image_at[0] = 0;
  return TRUE;
}

gboolean
f2_net_set_image (F2Net *net, const F2Image *image, GError **error)
{
  guint64 need;

  g_return_val_if_fail (net != NULL && image != NULL, FALSE);

  forget_images (net);
  return prepare_image (net, image, &need, error)
      && run_single_image (net, image, need, error);
}

guint
f2_net_vision_batch (F2Net *net)
{
  return net->vision_batch;
}

/* Image @i of a batch: preprocessed into its place in vpixels */
static gboolean
add_batch_image (F2Net *net, guint place, const F2Image *image, guint64 size,
    GError **error)
{
  guint32 side = net->model->dims.image_size;

  if (net->pixels_in[place] == NULL) {
    net->pixels_in[place] = copy_program (net, "batch pixels", net->buf.pre.out,
        3 * side, side, f2_ref_at (net->buf.vpixels, 3ull * place * side * side),
        error);
    if (net->pixels_in[place] == NULL)
      return FALSE;
  }
  return preprocess (net, image, size, error)
      && run_counted (net, net->pixels_in[place], &net->profile.preprocess_ms, error);
}

gboolean
f2_net_set_images (F2Net *net, guint n, const F2Image *images, GError **errors,
    GError **error)
{
  guint placed = 0;

  g_return_val_if_fail (net != NULL && images != NULL && errors != NULL, FALSE);

  if (n == 0 || n > net->vision_batch)
    return f2_backend_invalid (error, "%u images at once; this net's vision tower "
        "takes 1 to %u", n, net->vision_batch);
  for (guint i = 0; i < n; i++)
    errors[i] = NULL;
  forget_images (net);
  if (n == 1) {
    guint64 need;

    return !prepare_image (net, &images[0], &need, &errors[0])
        || run_single_image (net, &images[0], need, error);
  }
  for (guint i = 0; i < n; i++) {
    guint64 need;

    if (!prepare_image (net, &images[i], &need, &errors[i]))
      continue;
    if (!add_batch_image (net, placed, &images[i], need, error))
      return FALSE;
    net->image_at[i] = (gint32) placed++;
  }
  if (placed == 0)
    return TRUE;
  if (net->vision_batch_programs[placed - 1] == NULL) {
    F2NetVisionIO io = { placed, net->buf.vpixels, net->buf.vimage };

    net->vision_batch_programs[placed - 1] = vision_program (net, &io, error);
    if (net->vision_batch_programs[placed - 1] == NULL)
      return FALSE;
  }
  if (!run_counted (net, net->vision_batch_programs[placed - 1],
          &net->profile.vision_ms, error))
    return FALSE;
  net->have_image = TRUE;
  return TRUE;
}

gboolean
f2_net_encode (F2Net *net, const gint32 *ids, guint n_ids, GError **error)
{
  return f2_net_encode_slot (net, 0, ids, n_ids, error);
}

gboolean
f2_net_encode_slot (F2Net *net, guint slot, const gint32 *ids, guint n_ids,
    GError **error)
{
  F2NetPrompt prompt = { 0, slot, ids, n_ids };

  return f2_net_encode_images (net, 1, &prompt, error);
}

/* The recorded encoder for these frames. The key is written into a buffer
 * on the stack: only a new shape allocates. */
static F2Program *
encoder_program (F2Net *net, const F2NetEncodeShape *frames, guint n,
    GError **error)
{
  char key[F2_NET_VISION_BATCH * 48];
  gsize len = 0;
  F2Program *p;

  for (guint i = 0; i < n; i++)
    len += g_snprintf (key + len, sizeof key - len, "%u:%u:%c%u ",
        frames[i].prompt_len, frames[i].slot, frames[i].from_vimage ? 'v' : 'e',
        frames[i].image);
  p = g_hash_table_lookup (net->encoder_programs, key);
  if (p != NULL)
    return p;
  if (g_hash_table_size (net->encoder_programs) >= F2_NET_MAX_ENCODER_PROGRAMS)
    /* every mix of prompt lengths is a shape: start over rather than keep
     * them all */
    g_hash_table_remove_all (net->encoder_programs);
  p = f2_net_encoder_program (net, frames, n, error);
  if (p != NULL)
    g_hash_table_insert (net->encoder_programs, g_strdup (key), p);
  return p;
}

static gboolean
check_prompt (F2Net *net, const F2NetPrompt *prompt, const gboolean *seen,
    GError **error)
{
  if (prompt->slot >= net->n_slots)
    return f2_backend_invalid (error, "slot %u of a batch of %u frames", prompt->slot,
        net->n_slots);
  if (seen[prompt->slot])
    return f2_backend_invalid (error, "slot %u is encoded twice at once", prompt->slot);
  if (!net->have_image)
    return f2_backend_invalid (error, "no image: call f2_net_set_image() or "
        "f2_net_set_images() before encoding a prompt");
  if (prompt->image >= F2_NET_VISION_BATCH || net->image_at[prompt->image] < 0)
    return f2_backend_invalid (error, "image %u of the last f2_net_set_images() "
        "failed or was not given", prompt->image);
  if (prompt->n_ids == 0 || prompt->ids == NULL)
    return f2_backend_invalid (error, "the prompt has no tokens");
  if (prompt->n_ids > net->model->limits.max_prompt_tokens)
    return f2_backend_invalid (error, "the prompt has %u tokens, more than the %u the "
        "network was set up for; shorten the text or raise max_prompt_tokens",
        prompt->n_ids, net->model->limits.max_prompt_tokens);
  return TRUE;
}

gboolean
f2_net_encode_images (F2Net *net, guint n, const F2NetPrompt *prompts,
    GError **error)
{
  F2NetEncodeShape shapes[F2_NET_VISION_BATCH];
  gboolean seen[F2_NET_MAX_SLOTS] = { FALSE };
  guint32 max_prompt = net->model->limits.max_prompt_tokens;
  F2Program *p;

  g_return_val_if_fail (net != NULL && prompts != NULL, FALSE);

  /* new frames: decoding starts again from position 0 */
  net->have_logits = FALSE;
  net->last_position = -1;
  net->prompt_len = 0;
  if (n == 0 || n > net->vision_batch || (net->features_in_embeds && n > 1))
    return f2_backend_invalid (error, "%u prompts at once; this net encodes 1 to %u "
        "(1 after f2_net_set_image())", n, net->features_in_embeds ? 1 : net->vision_batch);
  for (guint i = 0; i < n; i++) {
    if (prompts[i].slot < net->n_slots)
      net->slot_prompt[prompts[i].slot] = 0;
    if (!check_prompt (net, &prompts[i], seen, error))
      return FALSE;
    seen[prompts[i].slot] = TRUE;
    shapes[i] = (F2NetEncodeShape) { prompts[i].n_ids, prompts[i].slot,
      !net->features_in_embeds, (guint32) net->image_at[prompts[i].image] };
  }
  p = encoder_program (net, shapes, n, error);
  if (p == NULL)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (!f2_backend_write (net->model->backend, f2_ref_at (net->buf.ids,
                (guint64) i * max_prompt), prompts[i].ids, prompts[i].n_ids, error))
      return FALSE;
  if (!run_counted (net, p, &net->profile.encoder_ms, error))
    return FALSE;
  for (guint i = 0; i < n; i++)
    net->slot_prompt[prompts[i].slot] = prompts[i].n_ids;
  net->prompt_len = prompts[n - 1].n_ids;
  return TRUE;
}

static gboolean
check_group (F2Net *net, const F2StepGroup *group, guint position,
    const gboolean *seen, GError **error)
{
  const F2Step *step = &group->step;
  guint slot = group->slot;
  guint32 last_rows;

  if (slot >= net->n_slots)
    return f2_backend_invalid (error, "slot %u of a batch of %u frames", slot,
        net->n_slots);
  if (seen[slot])
    return f2_backend_invalid (error, "slot %u appears twice in one decoder step",
        slot);
  if (net->slot_prompt[slot] == 0)
    return f2_backend_invalid (error, "no encoded prompt: call f2_net_encode() before "
        "decoding");
  if (step->rows == 0 || step->rows > net->model->limits.max_beams)
    return f2_backend_invalid (error, "%u decoder rows requested; the network was set up "
        "for 1 to %u (max_beams)", step->rows, net->model->limits.max_beams);
  if (step->k > net->model->max_k)
    return f2_backend_invalid (error, "top-%u requested; at most %u (2 * max_beams)",
        step->k, net->model->max_k);
  if (step->tokens == NULL || step->out_ids == NULL
      || (step->k > 0 && step->out_scores == NULL))
    return f2_backend_invalid (error, "a decoder step needs tokens and outputs");
  if (step->position != position)
    return f2_backend_invalid (error, "the frames of one decoder step are at "
        "positions %u and %u; a batch decodes one position at a time", position,
        step->position);
  last_rows = net->last_rows[slot];
  if (position > 0 && last_rows == 0)
    return f2_backend_invalid (error, "slot %u was not in the last decoder step; a "
        "frame that left a batch cannot come back", slot);
  for (guint r = 0; r < step->rows; r++) {
    if (step->tokens[r] < 0 || (guint32) step->tokens[r] >= net->model->dims.vocab)
      return f2_backend_invalid (error, "token %d of row %u is outside the vocabulary "
          "(%u)", step->tokens[r], r, net->model->dims.vocab);
    if (step->parents != NULL && position > 0
        && (step->parents[r] < 0 || (guint32) step->parents[r] >= last_rows))
      return f2_backend_invalid (error, "parent %d of row %u is not a row of the last "
          "step (%u rows)", step->parents[r], r, last_rows);
    if (step->parents == NULL && position > 0 && r >= last_rows)
      return f2_backend_invalid (error, "row %u has no parent: the last step had %u "
          "rows; pass parents", r, last_rows);
  }
  return TRUE;
}

static gboolean
check_step (F2Net *net, guint n_groups, const F2StepGroup *groups, GError **error)
{
  guint position;
  gboolean seen[F2_NET_MAX_SLOTS] = { FALSE };

  if (n_groups == 0 || groups == NULL)
    return f2_backend_invalid (error, "a decoder step needs at least one frame");
  position = groups[0].step.position;
  if (position >= net->model->limits.max_decoder_tokens
      || position >= net->model->dims.max_positions)
    return f2_backend_invalid (error, "decoder position %u is past the %u tokens the "
        "network was set up for (max_decoder_tokens)", position,
        net->model->limits.max_decoder_tokens);
  if (position != 0 && (gint64) position != net->last_position + 1)
    return f2_backend_invalid (error, "decoder position %u does not follow the last "
        "step (%" G_GINT64_FORMAT "); steps run in order from position 0",
        position, net->last_position);
  for (guint g = 0; g < n_groups; g++) {
    if (!check_group (net, &groups[g], position, seen, error))
      return FALSE;
    seen[groups[g].slot] = TRUE;
  }
  return TRUE;
}

/* Which source row of the cache each row of the new cache comes from. The
 * cache keeps row (t, r) at t * rows + r, rows in group order; a group's
 * rows continue their parents among that frame's rows of the last step.
 * The step's new keys are in the staging rows. */
static void
fill_gather (F2Net *net, guint n_groups, const F2StepGroup *groups,
    guint32 rows, guint32 kv_rows)
{
  guint32 Rp = net->last_total_rows, position = groups[0].step.position;
  gint32 *g = net->gather_host;

  for (guint32 t = 0; t < kv_rows; t++) {
    guint32 row = 0;
    for (guint i = 0; i < n_groups; i++) {
      const F2Step *step = &groups[i].step;
      for (guint32 b = 0; b < step->rows; b++, row++) {
        gint64 src;

        if (t < position) {
          guint32 parent = step->parents ? (guint32) step->parents[b] : b;
          src = (gint64) t * Rp + net->last_offset[groups[i].slot] + parent;
        } else {
          src = (gint64) net->buf.cache_staging + row;
        }
        g[(gsize) t * rows + row] = (gint32) src;
      }
    }
  }
}

/* The recorded program for this step's shape. The key is written into a
 * buffer on the stack: only a new shape allocates. */
static F2Program *
step_program (F2Net *net, guint n_groups, const F2StepGroup *groups,
    guint32 kv_rows, GError **error)
{
  F2NetStepShape shape[F2_NET_MAX_SLOTS];
  char key[32 + F2_NET_MAX_SLOTS * 36];
  gsize len;
  F2Program *p;

  len = g_snprintf (key, sizeof key, "%u/%u", kv_rows, net->cache_cur);
  for (guint i = 0; i < n_groups; i++) {
    shape[i] = (F2NetStepShape) { groups[i].slot, groups[i].step.rows, groups[i].step.k };
    len += g_snprintf (key + len, sizeof key - len, " %u:%u:%u", shape[i].slot,
        shape[i].rows, shape[i].k);
  }
  p = g_hash_table_lookup (net->step_programs, key);
  if (p != NULL)
    return p;
  if (g_hash_table_size (net->step_programs) >= F2_NET_MAX_STEP_PROGRAMS)
    /* frames leaving batches in every order make many shapes: start over
     * rather than keep them all */
    g_hash_table_remove_all (net->step_programs);
  p = f2_net_step_program (net, shape, n_groups, kv_rows, net->cache_cur, error);
  if (p != NULL)
    g_hash_table_insert (net->step_programs, g_strdup (key), p);
  return p;
}

/* The host inputs of a step: tokens, bans and control values, by row */
static gboolean
write_step_inputs (F2Net *net, guint n_groups, const F2StepGroup *groups,
    guint32 rows, guint32 kv_rows, GError **error)
{
  F2NetBuffers *b = &net->buf;
  guint32 max_banned = MAX (net->model->limits.max_banned, 1);
  guint32 position = groups[0].step.position, row = 0;
  gint32 *control = net->control_host;

  control[F2_NET_CTRL_POSITION] = (gint32) position;
  control[F2_NET_CTRL_SELF_KV] = (gint32) position + 1;
  for (guint s = 0; s < net->n_slots; s++)
    control[F2_NET_CTRL_CROSS_KV + s] = (gint32) (f2_net_image_tokens
        (&net->model->dims) + net->slot_prompt[s]);
  for (guint i = 0; i < n_groups; i++) {
    const F2Step *step = &groups[i].step;
    gint32 *banned = net->banned_host + (gsize) row * max_banned;

    memcpy (net->tokens_host + row, step->tokens, step->rows * sizeof (gint32));
    if (step->banned != NULL && net->model->limits.max_banned > 0)
      memcpy (banned, step->banned, (gsize) step->rows * max_banned * sizeof (gint32));
    else
      for (gsize j = 0; j < (gsize) step->rows * max_banned; j++)
        banned[j] = -1;
    row += step->rows;
  }
  fill_gather (net, n_groups, groups, rows, kv_rows);
  return f2_backend_write (net->model->backend, b->banned, net->banned_host,
      (guint64) rows * max_banned, error)
      && f2_backend_write (net->model->backend, b->control, control,
      F2_NET_CTRL_COUNT (net->n_slots), error)
      && f2_backend_write (net->model->backend, b->tokens, net->tokens_host, rows, error)
      && f2_backend_write (net->model->backend, b->gather, net->gather_host,
      (guint64) kv_rows * rows, error);
}

/* Each group's ids (and scores) from row offset * max_k on */
static gboolean
read_step_outputs (F2Net *net, guint n_groups, const F2StepGroup *groups,
    guint32 rows, GError **error)
{
  F2NetBuffers *b = &net->buf;
  guint32 max_k = net->model->max_k, row = 0;
  gboolean any_topk = FALSE;

  for (guint i = 0; i < n_groups; i++)
    any_topk |= groups[i].step.k > 0;
  if (n_groups == 1) {
    /* one frame: straight into its outputs */
    const F2Step *step = &groups[0].step;
    guint64 n = (guint64) step->rows * MAX (step->k, 1);
    return f2_backend_read (net->model->backend, b->out_ids, step->out_ids, n, error)
        && (step->k == 0 || f2_backend_read (net->model->backend, b->out_scores,
            step->out_scores, n, error));
  }
  if (!f2_backend_read (net->model->backend, b->out_ids, net->out_ids_host,
          (guint64) rows * max_k, error)
      || (any_topk && !f2_backend_read (net->model->backend, b->out_scores,
              net->out_scores_host, (guint64) rows * max_k, error)))
    return FALSE;
  for (guint i = 0; i < n_groups; i++) {
    const F2Step *step = &groups[i].step;
    gsize at = (gsize) row * max_k, n = (gsize) step->rows * MAX (step->k, 1);

    memcpy (step->out_ids, net->out_ids_host + at, n * sizeof (gint32));
    if (step->k > 0)
      memcpy (step->out_scores, net->out_scores_host + at, n * sizeof (float));
    row += step->rows;
  }
  return TRUE;
}

gboolean
f2_net_step_batch (F2Net *net, guint n_groups, const F2StepGroup *groups,
    GError **error)
{
  guint32 kv_rows, rows = 0, position;
  F2Program *p;

  g_return_val_if_fail (net != NULL, FALSE);
  if (!check_step (net, n_groups, groups, error))
    return FALSE;

  position = groups[0].step.position;
  for (guint i = 0; i < n_groups; i++)
    rows += groups[i].step.rows;
  kv_rows = MIN (((position / F2_NET_KV_BUCKET) + 1) * F2_NET_KV_BUCKET,
      net->model->limits.max_decoder_tokens);
  p = step_program (net, n_groups, groups, kv_rows, error);
  if (p == NULL
      || !write_step_inputs (net, n_groups, groups, rows, kv_rows, error)
      || !f2_program_run (p, error))
    return FALSE;
  net->profile.decoder_ms += program_ms (p);
  net->profile.decoder_steps++;
  count_run (net, p);
  net->cache_cur ^= 1;
  net->last_position = position;
  net->last_total_rows = rows;
  memset (net->last_rows, 0, net->n_slots * sizeof (guint32));
  rows = 0;
  for (guint i = 0; i < n_groups; i++) {
    net->last_offset[groups[i].slot] = rows;
    net->last_rows[groups[i].slot] = groups[i].step.rows;
    rows += groups[i].step.rows;
  }
  net->have_logits = TRUE;
  return read_step_outputs (net, n_groups, groups, rows, error);
}

gboolean
f2_net_step (F2Net *net, const F2Step *step, GError **error)
{
  F2StepGroup group = { 0, *step };

  g_return_val_if_fail (net != NULL && step != NULL, FALSE);
  return f2_net_step_batch (net, 1, &group, error);
}

gboolean
f2_net_read_logits (F2Net *net, guint row, float *out, GError **error)
{
  guint32 vocab = net->model->dims.vocab;

  if (!net->have_logits || row >= net->last_total_rows)
    return f2_backend_invalid (error, "no logits for decoder row %u", row);
  return f2_backend_read (net->model->backend,
      f2_ref_at (net->buf.logits, (guint64) row * vocab), out, vocab, error);
}

/* ------------------------------------------------------------ tensors */

const char *
f2_net_tensor_name (F2NetTensor which)
{
  switch (which) {
    case F2_NET_PIXEL_VALUES: return "pixel_values";
    case F2_NET_VISION_OUT: return "vision_tower_out";
    case F2_NET_IMAGE_FEATURES: return "image_features";
    case F2_NET_INPUTS_EMBEDS: return "inputs_embeds";
    case F2_NET_ENCODER_OUT: return "encoder_last_hidden_state";
    case F2_NET_LOGITS: return "logits";
  }
  return "unknown";
}

static F2Ref
tensor_ref (F2Net *net, F2NetTensor which, guint64 *n)
{
  const F2NetDims *d = &net->model->dims;
  guint32 c4 = d->dim[F2_NET_STAGES - 1], g = d->grid[F2_NET_STAGES - 1];
  guint64 seq = f2_net_image_tokens (d) + (guint64) net->prompt_len;

  *n = 0;
  switch (which) {
    case F2_NET_PIXEL_VALUES:
      if (net->have_image)
        *n = 3ull * d->image_size * d->image_size;
      return net->buf.pre.out;
    case F2_NET_VISION_OUT:
      if (net->have_image)
        *n = (guint64) g * g * c4;
      return net->buf.vx;
    case F2_NET_IMAGE_FEATURES:
      if (net->have_image)
        *n = (guint64) f2_net_image_tokens (d) * d->d_model;
      return net->buf.embeds;
    case F2_NET_INPUTS_EMBEDS:
      if (net->prompt_len > 0)
        *n = seq * d->d_model;
      return net->buf.embeds;
    case F2_NET_ENCODER_OUT:
      if (net->prompt_len > 0)
        *n = seq * d->d_model;
      return net->buf.eh;
    case F2_NET_LOGITS:
      if (net->have_logits && net->prompt_len > 0)
        *n = d->vocab;
      return net->buf.logits;
  }
  return F2_REF_NONE;
}

guint64
f2_net_tensor_size (F2Net *net, F2NetTensor which)
{
  guint64 n;

  tensor_ref (net, which, &n);
  return n;
}

gboolean
f2_net_read_tensor (F2Net *net, F2NetTensor which, float *out, GError **error)
{
  guint64 n;
  F2Ref r = tensor_ref (net, which, &n);

  if (n == 0)
    return f2_backend_invalid (error, "tensor %s has not been computed for this frame",
        f2_net_tensor_name (which));
  return f2_backend_read (net->model->backend, r, out, n, error);
}

void
f2_net_get_profile (F2Net *net, F2NetProfile *profile)
{
  *profile = net->profile;
}

void
f2_net_reset_profile (F2Net *net)
{
  memset (&net->profile, 0, sizeof net->profile);
  g_hash_table_remove_all (net->stage_times);
}

static gint
more_time_first (gconstpointer a, gconstpointer b)
{
  double ta = ((const F2NetStageTime *) a)->ms, tb = ((const F2NetStageTime *) b)->ms;

  return ta < tb ? 1 : ta > tb ? -1 : 0;
}

GArray *
f2_net_get_stage_times (F2Net *net)
{
  GArray *times = g_array_new (FALSE, FALSE, sizeof (F2NetStageTime));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, net->stage_times);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_array_append_val (times, *(F2NetStageTime *) value);
  g_array_sort (times, more_time_first);
  return times;
}
