/* Florence-2 parameter list by config, and random checkpoints. */
#include "random-checkpoint.h"
#include "half.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

/* ids of <loc_0> ... <loc_999> */
#define LOC_FIRST 50269
#define LOC_LAST 51268

/* elements generated per chunk when writing */
#define CHUNK (1 << 20)

static void
spec_free (gpointer data)
{
  F2ParamSpec *s = data;
  g_free (s->name);
  g_free (s);
}

static void
add (GPtrArray *specs, F2ParamInit init, guint ndim, guint64 d0, guint64 d1,
    guint64 d2, guint64 d3, const char *format, ...) G_GNUC_PRINTF (8, 9);

static void
add (GPtrArray *specs, F2ParamInit init, guint ndim, guint64 d0, guint64 d1,
    guint64 d2, guint64 d3, const char *format, ...)
{
  F2ParamSpec *s = g_new0 (F2ParamSpec, 1);
  va_list args;

  va_start (args, format);
  s->name = g_strdup_vprintf (format, args);
  va_end (args);
  s->ndim = ndim;
  s->shape[0] = d0;
  s->shape[1] = d1;
  s->shape[2] = d2;
  s->shape[3] = d3;
  s->init = init;
  g_ptr_array_add (specs, s);
}

#define ADD1(init, a, ...) add (specs, init, 1, a, 0, 0, 0, __VA_ARGS__)
#define ADD2(init, a, b, ...) add (specs, init, 2, a, b, 0, 0, __VA_ARGS__)
#define ADD4(init, a, b, c, d, ...) add (specs, init, 4, a, b, c, d, __VA_ARGS__)

static void
add_norm (GPtrArray *specs, guint64 dim, const char *prefix)
{
  ADD1 (F2_PARAM_INIT_NORM_WEIGHT, dim, "%s.weight", prefix);
  ADD1 (F2_PARAM_INIT_NORM_BIAS, dim, "%s.bias", prefix);
}

static void
add_linear (GPtrArray *specs, guint64 out, guint64 in, const char *prefix)
{
  ADD2 (F2_PARAM_INIT_WEIGHT, out, in, "%s.weight", prefix);
  ADD1 (F2_PARAM_INIT_BIAS, out, "%s.bias", prefix);
}

/* DaViT adds its depthwise position conv to the residual stream with no
 * norm in front: at N(0, 1/fan_in) every block would double the stream's
 * variance, and after a few dozen blocks fp16 overflows. The original
 * model initialises convs with N(0, 0.02^2), which keeps it bounded. */
static void
add_dwconv (GPtrArray *specs, guint64 dim, const char *prefix)
{
  ADD4 (F2_PARAM_INIT_DWCONV, dim, 1, 3, 3, "%s.weight", prefix);
  ADD1 (F2_PARAM_INIT_BIAS, dim, "%s.bias", prefix);
}

/* "<prefix>.<suffix>" in a buffer reused by the callers below */
static const char *
join (GString *buf, const char *prefix, const char *suffix)
{
  g_string_printf (buf, "%s.%s", prefix, suffix);
  return buf->str;
}

/* One DaViT block half: spatial (window attention) or channel attention. */
static void
add_davit_block (GPtrArray *specs, guint64 dim, guint64 hidden, const char *p,
    const char *attn)
{
  GString *n = g_string_new (NULL);
  char *a = g_strdup_printf ("%s.%s", p, attn);

  add_dwconv (specs, dim, join (n, p, "conv1.fn.dw"));
  add_norm (specs, dim, join (n, a, "norm"));
  add_linear (specs, 3 * dim, dim, join (n, a, "fn.qkv"));
  add_linear (specs, dim, dim, join (n, a, "fn.proj"));
  add_dwconv (specs, dim, join (n, p, "conv2.fn.dw"));
  add_norm (specs, dim, join (n, p, "ffn.norm"));
  add_linear (specs, hidden, dim, join (n, p, "ffn.fn.net.fc1"));
  add_linear (specs, dim, hidden, join (n, p, "ffn.fn.net.fc2"));
  g_free (a);
  g_string_free (n, TRUE);
}

static void
add_attention (GPtrArray *specs, guint64 d, const char *prefix)
{
  static const char *const projs[] = { "k_proj", "v_proj", "q_proj", "out_proj" };
  GString *n = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (projs); i++)
    add_linear (specs, d, d, join (n, prefix, projs[i]));
  g_string_free (n, TRUE);
}

static void
add_text_stack (GPtrArray *specs, const F2TextConfig *t, gboolean decoder)
{
  const char *side = decoder ? "decoder" : "encoder";
  guint layers = decoder ? t->decoder_layers : t->encoder_layers;
  guint ffn = decoder ? t->decoder_ffn_dim : t->encoder_ffn_dim;
  guint64 d = t->d_model;
  GString *n = g_string_new (NULL);
  char *p;

  /* BART's learned positions are offset by 2 */
  ADD2 (F2_PARAM_INIT_EMBEDDING, t->max_position_embeddings + 2, d,
      "language_model.model.%s.embed_positions.weight", side);
  p = g_strdup_printf ("language_model.model.%s", side);
  add_norm (specs, d, join (n, p, "layernorm_embedding"));
  g_free (p);
  for (guint l = 0; l < layers; l++) {
    p = g_strdup_printf ("language_model.model.%s.layers.%u", side, l);
    add_attention (specs, d, join (n, p, "self_attn"));
    add_norm (specs, d, join (n, p, "self_attn_layer_norm"));
    if (decoder) {
      add_attention (specs, d, join (n, p, "encoder_attn"));
      add_norm (specs, d, join (n, p, "encoder_attn_layer_norm"));
    }
    add_linear (specs, ffn, d, join (n, p, "fc1"));
    add_linear (specs, d, ffn, join (n, p, "fc2"));
    add_norm (specs, d, join (n, p, "final_layer_norm"));
    g_free (p);
  }
  g_string_free (n, TRUE);
}

static gint
compare_specs (gconstpointer a, gconstpointer b)
{
  const F2ParamSpec *x = *(const F2ParamSpec * const *) a;
  const F2ParamSpec *y = *(const F2ParamSpec * const *) b;
  return strcmp (x->name, y->name);
}

GPtrArray *
f2_model_param_specs (const F2Config *config)
{
  const F2VisionConfig *v = &config->vision;
  const F2TextConfig *t = &config->text;
  GPtrArray *specs = g_ptr_array_new_with_free_func (spec_free);
  guint64 c4 = v->dim_embed[F2_VISION_STAGES - 1];

  for (guint s = 0; s < F2_VISION_STAGES; s++) {
    guint64 dim = v->dim_embed[s], in = s == 0 ? 3 : v->dim_embed[s - 1];
    guint64 k = v->patch_size[s];
    ADD4 (F2_PARAM_INIT_WEIGHT, dim, in, k, k, "vision_tower.convs.%u.proj.weight", s);
    ADD1 (F2_PARAM_INIT_BIAS, dim, "vision_tower.convs.%u.proj.bias", s);
    ADD1 (F2_PARAM_INIT_NORM_WEIGHT, v->patch_prenorm[s] ? in : dim,
        "vision_tower.convs.%u.norm.weight", s);
    ADD1 (F2_PARAM_INIT_NORM_BIAS, v->patch_prenorm[s] ? in : dim,
        "vision_tower.convs.%u.norm.bias", s);
    for (guint b = 0; b < v->depths[s]; b++) {
      char *p = g_strdup_printf ("vision_tower.blocks.%u.%u.spatial_block", s, b);
      add_davit_block (specs, dim, v->mlp_ratio * dim, p, "window_attn");
      g_free (p);
      p = g_strdup_printf ("vision_tower.blocks.%u.%u.channel_block", s, b);
      add_davit_block (specs, dim, v->mlp_ratio * dim, p, "channel_attn");
      g_free (p);
    }
  }
  ADD2 (F2_PARAM_INIT_PROJECTION, c4, v->projection_dim, "image_projection");
  add_norm (specs, v->projection_dim, "image_proj_norm");
  ADD2 (F2_PARAM_INIT_POS_EMBED_2D, v->image_pos_max_embeddings, c4 / 2,
      "image_pos_embed.row_embeddings.weight");
  ADD2 (F2_PARAM_INIT_POS_EMBED_2D, v->image_pos_max_embeddings, c4 - c4 / 2,
      "image_pos_embed.column_embeddings.weight");
  ADD2 (F2_PARAM_INIT_SINUSOID, v->temporal_max_embeddings, c4,
      "visual_temporal_embed.pos_idx_to_embed");

  ADD2 (F2_PARAM_INIT_LOGITS_BIAS, 1, t->vocab_size, "language_model.final_logits_bias");
  ADD2 (F2_PARAM_INIT_WEIGHT, t->vocab_size, t->d_model, "language_model.lm_head.weight");
  ADD2 (F2_PARAM_INIT_EMBEDDING, t->vocab_size, t->d_model,
      "language_model.model.shared.weight");
  add_text_stack (specs, t, FALSE);
  add_text_stack (specs, t, TRUE);

  g_ptr_array_sort (specs, compare_specs);
  return specs;
}

void
f2_model_temporal_table (guint rows, guint dim, float *out)
{
  for (guint p = 0; p < rows; p++) {
    for (guint i = 0; 2 * i < dim; i++) {
      double w = exp (-log (10000.0) * (2.0 * i) / dim);
      out[(gsize) p * dim + 2 * i] = (float) sin (p * w);
      if (2 * i + 1 < dim)
        out[(gsize) p * dim + 2 * i + 1] = (float) cos (p * w);
    }
  }
}

/* ------------------------------------------------------------- writing */

typedef struct {
  GRand *rand;
  gboolean has_spare;
  double spare;
} Normal;

/* N(0, 1) by Box-Muller, both values of each pair used */
static double
normal (Normal *g)
{
  double u, v, r;

  if (g->has_spare) {
    g->has_spare = FALSE;
    return g->spare;
  }
  u = 1.0 - g_rand_double (g->rand);    /* in (0, 1]: log stays finite */
  v = 2.0 * G_PI * g_rand_double (g->rand);
  r = sqrt (-2.0 * log (u));
  g->spare = r * sin (v);
  g->has_spare = TRUE;
  return r * cos (v);
}

static void
fill_chunk (const F2ParamSpec *s, Normal *rand, guint64 first, guint64 n,
    const float *table, float *out)
{
  guint64 fan_in = 1;

  for (guint d = 1; d < s->ndim; d++)
    fan_in *= s->shape[d];
  for (guint64 i = 0; i < n; i++) {
    guint64 index = first + i;
    double x;
    switch (s->init) {
      case F2_PARAM_INIT_WEIGHT:
        x = normal (rand) / sqrt ((double) fan_in);
        break;
      case F2_PARAM_INIT_DWCONV:
        x = 0.02 * normal (rand);
        break;
      case F2_PARAM_INIT_PROJECTION:
        x = normal (rand) / sqrt ((double) s->shape[0]);
        break;
      case F2_PARAM_INIT_NORM_WEIGHT:
        x = 1.0 + 0.1 * normal (rand);
        break;
      case F2_PARAM_INIT_EMBEDDING:
        x = 0.1 * normal (rand);
        break;
      case F2_PARAM_INIT_POS_EMBED_2D:
        x = 0.5 * normal (rand);
        break;
      case F2_PARAM_INIT_LOGITS_BIAS:
        x = 0.05 * normal (rand) + (index >= LOC_FIRST && index <= LOC_LAST ? 1.0 : 0.0);
        break;
      case F2_PARAM_INIT_SINUSOID:
        x = table[index];
        break;
      case F2_PARAM_INIT_BIAS:
      case F2_PARAM_INIT_NORM_BIAS:
      default:
        x = 0.05 * normal (rand);
        break;
    }
    out[i] = (float) x;
  }
}

static gboolean
write_tensor (F2SafetensorsWriter *w, const F2ParamSpec *s, Normal *rand,
    F2DType dtype, float *chunk, GError **error)
{
  guint64 numel = 1;
  float *table = NULL;
  gboolean ok = TRUE;

  for (guint d = 0; d < s->ndim; d++)
    numel *= s->shape[d];
  if (s->init == F2_PARAM_INIT_SINUSOID) {
    table = g_new (float, MAX (numel, 1));
    f2_model_temporal_table (s->shape[0], s->shape[1], table);
  }
  for (guint64 first = 0; first < numel && ok; first += CHUNK) {
    guint64 n = MIN (CHUNK, numel - first);
    fill_chunk (s, rand, first, n, table, chunk);
    if (dtype == F2_DTYPE_F32) {
      ok = f2_safetensors_writer_append (w, chunk, n * 4, error);
    } else {
      guint16 *half = (guint16 *) chunk;      /* in place, front to back */
      for (guint64 i = 0; i < n; i++) {
        float f = chunk[i];
        if (dtype == F2_DTYPE_F16) {
          half[i] = f2_float_to_half (f);
        } else {                /* BF16, round to nearest even */
          guint32 bits;
          memcpy (&bits, &f, 4);
          if ((bits & 0x7fffffff) > 0x7f800000)
            half[i] = (guint16) ((bits >> 16) | 0x40);
          else
            half[i] = (guint16) ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
        }
      }
      ok = f2_safetensors_writer_append (w, half, n * 2, error);
    }
  }
  g_free (table);
  return ok;
}

gboolean
f2_random_checkpoint_write (const F2Config *config, const char *path,
    guint64 seed, F2DType dtype, GError **error)
{
  GPtrArray *specs;
  F2Tensor *tensors;
  F2SafetensorsWriter *w;
  GHashTable *metadata;
  Normal rand = { 0 };
  guint32 seeds[2] = { (guint32) seed, (guint32) (seed >> 32) };
  float *chunk;
  gboolean ok = TRUE;

  if (dtype != F2_DTYPE_F32 && dtype != F2_DTYPE_F16 && dtype != F2_DTYPE_BF16) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "random checkpoints are F32, F16 or BF16, not %s", f2_dtype_name (dtype));
    return FALSE;
  }
  specs = f2_model_param_specs (config);
  tensors = g_new0 (F2Tensor, specs->len);
  for (guint i = 0; i < specs->len; i++) {
    const F2ParamSpec *s = g_ptr_array_index (specs, i);
    tensors[i].name = s->name;
    tensors[i].dtype = dtype;
    tensors[i].ndim = s->ndim;
    memcpy (tensors[i].shape, s->shape, sizeof (s->shape));
  }
  metadata = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (metadata, "format", "pt");
  w = f2_safetensors_writer_new (path, tensors, specs->len, metadata, error);
  g_hash_table_unref (metadata);
  g_free (tensors);
  if (w == NULL) {
    g_ptr_array_unref (specs);
    return FALSE;
  }
  rand.rand = g_rand_new_with_seed_array (seeds, 2);
  chunk = g_new (float, CHUNK);
  for (guint i = 0; i < specs->len && ok; i++)
    ok = write_tensor (w, g_ptr_array_index (specs, i), &rand, dtype, chunk, error);
  g_free (chunk);
  g_rand_free (rand.rand);
  g_ptr_array_unref (specs);
  if (!ok) {
    f2_safetensors_writer_abort (w);
    return FALSE;
  }
  return f2_safetensors_writer_finish (w, error);
}

static gboolean
copy_file (const char *from_dir, const char *to_dir, const char *name,
    gboolean required, GError **error)
{
  char *from = g_build_filename (from_dir, name, NULL);
  char *to = g_build_filename (to_dir, name, NULL);
  char *contents = NULL;
  gsize length = 0;
  gboolean ok = TRUE;

  if (!g_file_test (from, G_FILE_TEST_EXISTS) && !required)
    goto out;
  ok = g_file_get_contents (from, &contents, &length, error)
      && g_file_set_contents_full (to, contents, length,
      G_FILE_SET_CONTENTS_CONSISTENT, 0644, error);
out:
  g_free (contents);
  g_free (to);
  g_free (from);
  return ok;
}

gboolean
f2_random_checkpoint_write_dir (const char *config_dir, const char *out_dir,
    guint64 seed, F2DType dtype, GError **error)
{
  static const char *const optional[] = { "tokenizer.json",
    "tokenizer_config.json", "vocab.json", "generation_config.json"
  };
  F2Config *config;
  char *path;
  gboolean ok;

  config = f2_config_load_dir (config_dir, error);
  if (config == NULL)
    return FALSE;
  if (g_mkdir_with_parents (out_dir, 0755) != 0) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        "cannot create %s: %s", out_dir, g_strerror (saved));
    f2_config_free (config);
    return FALSE;
  }
  ok = copy_file (config_dir, out_dir, "config.json", TRUE, error)
      && copy_file (config_dir, out_dir, "preprocessor_config.json", TRUE, error);
  for (guint i = 0; ok && i < G_N_ELEMENTS (optional); i++)
    ok = copy_file (config_dir, out_dir, optional[i], FALSE, error);
  if (ok) {
    path = g_build_filename (out_dir, "model.safetensors", NULL);
    ok = f2_random_checkpoint_write (config, path, seed, dtype, error);
    g_free (path);
  }
  f2_config_free (config);
  return ok;
}
