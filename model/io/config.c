/* Florence-2 config.json / preprocessor_config.json parsing and validation.
 *
 * Keys the model needs (every dimension) are required; generation knobs
 * take the defaults the reference's config classes use when absent. */
#include "config.h"
#include "loader-util.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

G_DEFINE_QUARK (f2-config-error-quark, f2_config_error)

/* The tokenizer adds ids up to 51288 (<loc_999>, task tokens...). */
#define MIN_VOCAB 51289

/* Upper bounds far above any Florence-2 (large: d_model 1024, 12 layers,
 * ffn 4096, 4096 positions, vocab 51289) that keep a hostile config.json
 * from asking for absurd allocations. */
#define MAX_VOCAB (1u << 20)
#define MAX_WIDTH 16384u        /* d_model, dim_embed, projection_dim */
#define MAX_FFN 65536u
#define MAX_LAYERS 256u         /* per stack, and DaViT depths */
#define MAX_HEADS 1024u         /* attention heads, DaViT groups */
#define MAX_POSITIONS 65536u
#define MAX_WINDOW 256u

/* Generation settings: the element and the CLI run at most 16 beams and
 * 1024 new tokens. */
#define MAX_BEAMS 16u
#define MAX_LENGTH 1025u        /* the start token and 1024 new tokens */
#define MAX_NGRAM 1024u
#define MAX_LENGTH_PENALTY 10.0

#define PUBLISHED "use the config.json published with the model"

/* Preprocessor settings: pixels are 0..255 times rescale_factor; mean and
 * std in those units (CLIP-style processors without rescaling use means
 * near 123 and stds near 58). */
#define MAX_MEAN 1000.0
#define MIN_STD 1e-4
#define MAX_STD 1000.0
#define MAX_RESCALE 1.0
#define MAX_IMAGE_SIDE 4096u

/* Parsing context: the first error wins, later getters do nothing. */
typedef struct {
  const char *source;
  GError **error;
  gboolean ok;
} Ctx;

static void
ctx_fail (Ctx *c, gint code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
ctx_fail (Ctx *c, gint code, const char *format, ...)
{
  va_list args;
  char *message;

  if (!c->ok)
    return;
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (c->error, F2_CONFIG_ERROR, code, "%s: %s", c->source, message);
  g_free (message);
  c->ok = FALSE;
}

static JsonNode *
member (JsonObject *o, const char *key)
{
  JsonNode *n = o ? json_object_get_member (o, key) : NULL;
  return n != NULL && JSON_NODE_HOLDS_NULL (n) ? NULL : n;
}

static gboolean
node_is (JsonNode *n, GType type)
{
  return n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == type;
}

/* A positive (or, with @allow_zero, non-negative) integer. */
static guint
get_uint (Ctx *c, JsonObject *o, const char *prefix, const char *key,
    gboolean required, guint fallback, gboolean allow_zero)
{
  JsonNode *n = member (o, key);
  gint64 v;

  if (!c->ok)
    return fallback;
  if (n == NULL) {
    if (required)
      ctx_fail (c, F2_CONFIG_ERROR_PARSE, "%s%s is missing; use the config.json "
          "published with the model", prefix, key);
    return fallback;
  }
  if (!node_is (n, G_TYPE_INT64) || (v = json_node_get_int (n)) < (allow_zero ? 0 : 1)
      || v > G_MAXINT32) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "%s%s must be a %s integer",
        prefix, key, allow_zero ? "non-negative" : "positive");
    return fallback;
  }
  return (guint) v;
}

/* @value (read from @prefix@key) must lie in [@lo, @hi]; @fix says what
 * to do otherwise. */
static void
check_range (Ctx *c, const char *prefix, const char *key, guint value,
    guint lo, guint hi, const char *fix)
{
  if (c->ok && (value < lo || value > hi))
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "%s%s is %u, outside the range "
        "%u..%u this implementation accepts; %s", prefix, key, value, lo, hi,
        fix);
}

/* A token id, or -1 for null/absent when @fallback says so. */
static gint32
get_token (Ctx *c, JsonObject *o, const char *key, gint32 fallback)
{
  JsonNode *n;

  if (o == NULL || !json_object_has_member (o, key))
    return fallback;
  n = member (o, key);
  if (n == NULL)
    return -1;
  if (!node_is (n, G_TYPE_INT64) || json_node_get_int (n) < 0
      || json_node_get_int (n) > G_MAXINT32) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "text_config.%s must be a token id "
        "or null", key);
    return fallback;
  }
  return (gint32) json_node_get_int (n);
}

static gboolean
get_bool (Ctx *c, JsonObject *o, const char *prefix, const char *key,
    gboolean fallback)
{
  JsonNode *n = member (o, key);

  if (!c->ok || n == NULL)
    return fallback;
  if (!node_is (n, G_TYPE_BOOLEAN)) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "%s%s must be true or false", prefix, key);
    return fallback;
  }
  return json_node_get_boolean (n);
}

static double
get_number (Ctx *c, JsonObject *o, const char *prefix, const char *key,
    double fallback)
{
  JsonNode *n = member (o, key);

  if (!c->ok || n == NULL)
    return fallback;
  if (node_is (n, G_TYPE_INT64))
    return (double) json_node_get_int (n);
  if (node_is (n, G_TYPE_DOUBLE) && isfinite (json_node_get_double (n)))
    return json_node_get_double (n);
  ctx_fail (c, F2_CONFIG_ERROR_INVALID, "%s%s must be a number", prefix, key);
  return fallback;
}

static const char *
get_string (Ctx *c, JsonObject *o, const char *prefix, const char *key,
    const char *fallback)
{
  JsonNode *n = member (o, key);

  if (!c->ok || n == NULL)
    return fallback;
  if (!node_is (n, G_TYPE_STRING)) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "%s%s must be a string", prefix, key);
    return fallback;
  }
  return json_node_get_string (n);
}

static JsonObject *
get_object (Ctx *c, JsonObject *o, const char *prefix, const char *key)
{
  JsonNode *n = member (o, key);

  if (!c->ok)
    return NULL;
  if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n)) {
    ctx_fail (c, F2_CONFIG_ERROR_PARSE, "%s%s is missing or not an object; use "
        "the config.json published with the model", prefix, key);
    return NULL;
  }
  return json_node_get_object (n);
}

/* A per-stage array of F2_VISION_STAGES positive integers or booleans. */
static void
get_stages (Ctx *c, JsonObject *o, const char *key, guint *out, gboolean booleans)
{
  JsonNode *n = member (o, key);
  JsonArray *a;

  if (!c->ok)
    return;
  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n)) {
    ctx_fail (c, F2_CONFIG_ERROR_PARSE, "vision_config.%s is missing or not an "
        "array; use the config.json published with the model", key);
    return;
  }
  a = json_node_get_array (n);
  if (json_array_get_length (a) != F2_VISION_STAGES) {
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "vision_config.%s has %u entries; "
        "this implementation runs the %d-stage DaViT of Florence-2", key,
        json_array_get_length (a), F2_VISION_STAGES);
    return;
  }
  for (guint i = 0; i < F2_VISION_STAGES; i++) {
    JsonNode *e = json_array_get_element (a, i);
    if (booleans && node_is (e, G_TYPE_BOOLEAN)) {
      out[i] = json_node_get_boolean (e);
    } else if (!booleans && node_is (e, G_TYPE_INT64) && json_node_get_int (e) > 0
        && json_node_get_int (e) <= G_MAXINT32) {
      out[i] = (guint) json_node_get_int (e);
    } else {
      ctx_fail (c, F2_CONFIG_ERROR_INVALID, "vision_config.%s[%u] must be %s",
          key, i, booleans ? "true or false" : "a positive integer");
      return;
    }
  }
}

static void
parse_vision (Ctx *c, JsonObject *root, F2VisionConfig *v)
{
  static const guint published_size[] = { 7, 3, 3, 3 };
  static const guint published_stride[] = { 4, 2, 2, 2 };
  static const guint published_padding[] = { 3, 1, 1, 1 };
  static const gboolean published_prenorm[] = { FALSE, TRUE, TRUE, TRUE };
  JsonObject *o = get_object (c, root, "", "vision_config");
  JsonObject *pos, *temporal;
  JsonNode *source;
  guint prenorm[F2_VISION_STAGES] = { 0 };
  const char *type;

  get_stages (c, o, "patch_size", v->patch_size, FALSE);
  get_stages (c, o, "patch_stride", v->patch_stride, FALSE);
  get_stages (c, o, "patch_padding", v->patch_padding, FALSE);
  /* zero padding is fine: read it as a count below */
  get_stages (c, o, "patch_prenorm", prenorm, TRUE);
  get_stages (c, o, "dim_embed", v->dim_embed, FALSE);
  get_stages (c, o, "num_heads", v->num_heads, FALSE);
  get_stages (c, o, "num_groups", v->num_groups, FALSE);
  get_stages (c, o, "depths", v->depths, FALSE);
  for (guint i = 0; i < F2_VISION_STAGES; i++)
    v->patch_prenorm[i] = prenorm[i];
  v->window_size = get_uint (c, o, "vision_config.", "window_size", FALSE, 12, FALSE);
  v->projection_dim = get_uint (c, o, "vision_config.", "projection_dim", TRUE, 0, FALSE);
  v->mlp_ratio = 4;
  if (!c->ok)
    return;
  for (guint i = 0; i < F2_VISION_STAGES; i++) {
    char key[32];
    g_snprintf (key, sizeof key, "dim_embed[%u]", i);
    check_range (c, "vision_config.", key, v->dim_embed[i], 1, MAX_WIDTH, PUBLISHED);
    g_snprintf (key, sizeof key, "num_heads[%u]", i);
    check_range (c, "vision_config.", key, v->num_heads[i], 1, MAX_HEADS, PUBLISHED);
    g_snprintf (key, sizeof key, "num_groups[%u]", i);
    check_range (c, "vision_config.", key, v->num_groups[i], 1, MAX_HEADS, PUBLISHED);
    g_snprintf (key, sizeof key, "depths[%u]", i);
    check_range (c, "vision_config.", key, v->depths[i], 1, MAX_LAYERS, PUBLISHED);
  }
  check_range (c, "vision_config.", "window_size", v->window_size, 1, MAX_WINDOW, PUBLISHED);
  check_range (c, "vision_config.", "projection_dim", v->projection_dim, 1, MAX_WIDTH,
      PUBLISHED);
  if (!c->ok)
    return;

  for (guint i = 0; i < F2_VISION_STAGES; i++) {
    if (v->patch_size[i] != published_size[i] || v->patch_stride[i] != published_stride[i]
        || v->patch_padding[i] != published_padding[i]
        || v->patch_prenorm[i] != published_prenorm[i]) {
      ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "vision_config stage %u has patch "
          "size %u, stride %u, padding %u, prenorm %s; this implementation "
          "supports only Florence-2's layout (7/4/3 without prenorm, then "
          "3/2/1 with prenorm)", i + 1, v->patch_size[i], v->patch_stride[i],
          v->patch_padding[i], v->patch_prenorm[i] ? "true" : "false");
      return;
    }
    if (v->dim_embed[i] % v->num_heads[i] != 0 || v->dim_embed[i] % v->num_groups[i] != 0) {
      ctx_fail (c, F2_CONFIG_ERROR_INVALID, "vision_config stage %u: dim_embed "
          "%u is not divisible by num_heads %u and num_groups %u", i + 1,
          v->dim_embed[i], v->num_heads[i], v->num_groups[i]);
      return;
    }
  }

  pos = get_object (c, o, "vision_config.", "image_pos_embed");
  type = get_string (c, pos, "vision_config.image_pos_embed.", "type", "");
  if (c->ok && !g_str_equal (type, "learned_abs_2d"))
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "vision_config.image_pos_embed.type "
        "is \"%s\"; only \"learned_abs_2d\" is supported", type);
  v->image_pos_max_embeddings = get_uint (c, pos, "vision_config.image_pos_embed.",
      "max_pos_embeddings", TRUE, 0, FALSE);
  check_range (c, "vision_config.image_pos_embed.", "max_pos_embeddings",
      v->image_pos_max_embeddings, 1, MAX_POSITIONS, PUBLISHED);

  temporal = get_object (c, o, "vision_config.", "visual_temporal_embedding");
  type = get_string (c, temporal, "vision_config.visual_temporal_embedding.", "type", "");
  if (c->ok && !g_str_equal (type, "COSINE"))
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "vision_config.visual_temporal_"
        "embedding.type is \"%s\"; only \"COSINE\" is supported", type);
  v->temporal_max_embeddings = get_uint (c, temporal,
      "vision_config.visual_temporal_embedding.", "max_temporal_embeddings", TRUE, 0, FALSE);
  check_range (c, "vision_config.visual_temporal_embedding.", "max_temporal_embeddings",
      v->temporal_max_embeddings, 1, MAX_POSITIONS, PUBLISHED);
  if (c->ok && v->dim_embed[3] % 2 != 0)
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "vision_config.dim_embed[3] (%u) must "
        "be even for the cosine temporal embedding", v->dim_embed[3]);

  source = member (o, "image_feature_source");
  if (c->ok && source != NULL) {
    JsonArray *a = JSON_NODE_HOLDS_ARRAY (source) ? json_node_get_array (source) : NULL;
    if (a == NULL || json_array_get_length (a) != 2
        || !node_is (json_array_get_element (a, 0), G_TYPE_STRING)
        || !node_is (json_array_get_element (a, 1), G_TYPE_STRING)
        || !g_str_equal (json_array_get_string_element (a, 0), "spatial_avg_pool")
        || !g_str_equal (json_array_get_string_element (a, 1), "temporal_avg_pool"))
      ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "vision_config.image_feature_source "
          "must be [\"spatial_avg_pool\", \"temporal_avg_pool\"], the only "
          "image features this implementation computes");
  }
}

static void
parse_text (Ctx *c, JsonObject *root, F2TextConfig *t)
{
  JsonObject *o = get_object (c, root, "", "text_config");
  const char *p = "text_config.";
  const char *activation;
  JsonNode *early;
  gint32 ids[6];
  static const char *const id_names[] = { "pad_token_id", "bos_token_id",
    "eos_token_id", "decoder_start_token_id", "forced_bos_token_id",
    "forced_eos_token_id"
  };

  t->vocab_size = get_uint (c, o, p, "vocab_size", TRUE, 0, FALSE);
  t->d_model = get_uint (c, o, p, "d_model", TRUE, 0, FALSE);
  t->encoder_layers = get_uint (c, o, p, "encoder_layers", TRUE, 0, FALSE);
  t->decoder_layers = get_uint (c, o, p, "decoder_layers", TRUE, 0, FALSE);
  t->encoder_attention_heads = get_uint (c, o, p, "encoder_attention_heads", TRUE, 0, FALSE);
  t->decoder_attention_heads = get_uint (c, o, p, "decoder_attention_heads", TRUE, 0, FALSE);
  t->encoder_ffn_dim = get_uint (c, o, p, "encoder_ffn_dim", TRUE, 0, FALSE);
  t->decoder_ffn_dim = get_uint (c, o, p, "decoder_ffn_dim", TRUE, 0, FALSE);
  t->max_position_embeddings = get_uint (c, o, p, "max_position_embeddings", TRUE, 0, FALSE);
  activation = get_string (c, o, p, "activation_function", "gelu");
  t->activation_function = g_strdup (activation);
  t->scale_embedding = get_bool (c, o, p, "scale_embedding", FALSE);
  t->pad_token_id = get_token (c, o, "pad_token_id", 1);
  t->bos_token_id = get_token (c, o, "bos_token_id", 0);
  t->eos_token_id = get_token (c, o, "eos_token_id", 2);
  t->decoder_start_token_id = get_token (c, o, "decoder_start_token_id", 2);
  t->forced_bos_token_id = get_token (c, o, "forced_bos_token_id", -1);
  t->forced_eos_token_id = get_token (c, o, "forced_eos_token_id", 2);
  t->no_repeat_ngram_size = get_uint (c, o, p, "no_repeat_ngram_size", FALSE, 0, TRUE);
  t->num_beams = get_uint (c, o, p, "num_beams", FALSE, 1, FALSE);
  early = member (o, "early_stopping");
  if (c->ok && early != NULL && !node_is (early, G_TYPE_BOOLEAN))
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "text_config.early_stopping must "
        "be true or false (\"never\" is not supported)");
  t->early_stopping = get_bool (c, o, p, "early_stopping", FALSE);
  t->length_penalty = get_number (c, o, p, "length_penalty", 1.0);
  t->max_length = get_uint (c, o, p, "max_length", FALSE, 20, FALSE);
  if (!c->ok)
    return;

  check_range (c, p, "vocab_size", t->vocab_size, 1, MAX_VOCAB, PUBLISHED);
  check_range (c, p, "d_model", t->d_model, 1, MAX_WIDTH, PUBLISHED);
  check_range (c, p, "encoder_layers", t->encoder_layers, 1, MAX_LAYERS, PUBLISHED);
  check_range (c, p, "decoder_layers", t->decoder_layers, 1, MAX_LAYERS, PUBLISHED);
  check_range (c, p, "encoder_attention_heads", t->encoder_attention_heads, 1,
      MAX_HEADS, PUBLISHED);
  check_range (c, p, "decoder_attention_heads", t->decoder_attention_heads, 1,
      MAX_HEADS, PUBLISHED);
  check_range (c, p, "encoder_ffn_dim", t->encoder_ffn_dim, 1, MAX_FFN, PUBLISHED);
  check_range (c, p, "decoder_ffn_dim", t->decoder_ffn_dim, 1, MAX_FFN, PUBLISHED);
  check_range (c, p, "max_position_embeddings", t->max_position_embeddings, 2,
      MAX_POSITIONS, PUBLISHED);
  /* generation settings: checked here, not at the first inference */
  check_range (c, p, "num_beams", t->num_beams, 1, MAX_BEAMS, "set it to 1 "
      "(greedy) or a few beams (Florence-2 uses 3), or remove it");
  check_range (c, p, "max_length", t->max_length, 2, MAX_LENGTH, "set it to "
      "at least 2 (the start token and one generated token) or remove it "
      "(default 20)");
  check_range (c, p, "no_repeat_ngram_size", t->no_repeat_ngram_size, 0,
      MAX_NGRAM, "set it to 0 (off) or a small n (Florence-2 uses 3)");
  if (c->ok && !(fabs (t->length_penalty) <= MAX_LENGTH_PENALTY))
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "text_config.length_penalty is %g, "
        "outside the range -%g..%g this implementation accepts; set it near "
        "1.0 (the default) or remove it", t->length_penalty,
        MAX_LENGTH_PENALTY, MAX_LENGTH_PENALTY);
  if (!c->ok)
    return;

  if (!g_str_equal (t->activation_function, "gelu")) {
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "text_config.activation_function "
        "is \"%s\"; only \"gelu\" (exact) is supported", t->activation_function);
    return;
  }
  if (t->d_model % t->encoder_attention_heads != 0
      || t->d_model % t->decoder_attention_heads != 0) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "text_config.d_model %u is not "
        "divisible by the attention heads (encoder %u, decoder %u)",
        t->d_model, t->encoder_attention_heads, t->decoder_attention_heads);
    return;
  }
  if (t->vocab_size < MIN_VOCAB) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "text_config.vocab_size %u is smaller "
        "than the %u ids Florence-2's processor uses", t->vocab_size, MIN_VOCAB);
    return;
  }
  if (t->max_length < 2) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "text_config.max_length must be at "
        "least 2 (the start token and one generated token)");
    return;
  }
  ids[0] = t->pad_token_id;
  ids[1] = t->bos_token_id;
  ids[2] = t->eos_token_id;
  ids[3] = t->decoder_start_token_id;
  ids[4] = t->forced_bos_token_id;
  ids[5] = t->forced_eos_token_id;
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++) {
    /* only the forced ids may be absent */
    if ((ids[i] < 0 && i < 4) || ids[i] >= (gint32) t->vocab_size) {
      ctx_fail (c, F2_CONFIG_ERROR_INVALID, "text_config.%s (%d) is not a "
          "token id below vocab_size %u", id_names[i], ids[i], t->vocab_size);
      return;
    }
  }
}

static void
parse_preprocess (Ctx *c, JsonObject *o, F2PreprocessConfig *pp)
{
  const char *p = "";
  JsonObject *size;
  JsonNode *n;
  guint grid;

  size = get_object (c, o, p, "size");
  pp->height = get_uint (c, size, "size.", "height", TRUE, 0, FALSE);
  pp->width = get_uint (c, size, "size.", "width", TRUE, 0, FALSE);
  check_range (c, "size.", "height", pp->height, 1, MAX_IMAGE_SIDE,
      "use the preprocessor_config.json published with the model (768)");
  check_range (c, "size.", "width", pp->width, 1, MAX_IMAGE_SIDE,
      "use the preprocessor_config.json published with the model (768)");
  pp->do_resize = get_bool (c, o, p, "do_resize", TRUE);
  pp->do_rescale = get_bool (c, o, p, "do_rescale", TRUE);
  pp->do_normalize = get_bool (c, o, p, "do_normalize", TRUE);
  pp->rescale_factor = get_number (c, o, p, "rescale_factor", 1.0 / 255.0);
  pp->resample = get_uint (c, o, p, "resample", FALSE, 3, TRUE);
  pp->image_seq_length = get_uint (c, o, p, "image_seq_length", FALSE, 0, FALSE);
  for (guint k = 0; k < 2 && c->ok; k++) {
    const char *key = k == 0 ? "image_mean" : "image_std";
    double *out = k == 0 ? pp->mean : pp->std;
    JsonArray *a;
    n = member (o, key);
    a = n != NULL && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
    if (a == NULL || json_array_get_length (a) != 3) {
      ctx_fail (c, F2_CONFIG_ERROR_PARSE, "%s must be an array of 3 numbers", key);
      break;
    }
    for (guint i = 0; i < 3; i++) {
      JsonNode *e = json_array_get_element (a, i);
      if (node_is (e, G_TYPE_INT64))
        out[i] = (double) json_node_get_int (e);
      else if (node_is (e, G_TYPE_DOUBLE))
        out[i] = json_node_get_double (e);
      else
        ctx_fail (c, F2_CONFIG_ERROR_PARSE, "%s[%u] must be a number", key, i);
      /* NaN fails both comparisons */
      if (k == 0 && c->ok && !(fabs (out[i]) <= MAX_MEAN))
        ctx_fail (c, F2_CONFIG_ERROR_INVALID, "image_mean[%u] is %g, outside "
            "-%g..%g; use the preprocessor_config.json published with the "
            "model (Florence-2: [0.485, 0.456, 0.406])", i, out[i], MAX_MEAN,
            MAX_MEAN);
      if (k == 1 && c->ok && !(out[i] > 0))
        ctx_fail (c, F2_CONFIG_ERROR_INVALID, "image_std[%u] must be positive "
            "(it is %g): it divides every pixel; use the preprocessor_config.json "
            "published with the model (Florence-2: [0.229, 0.224, 0.225])", i, out[i]);
      if (k == 1 && c->ok && !(out[i] >= MIN_STD && out[i] <= MAX_STD))
        ctx_fail (c, F2_CONFIG_ERROR_INVALID, "image_std[%u] is %g, outside "
            "%g..%g; use the preprocessor_config.json published with the "
            "model (Florence-2: [0.229, 0.224, 0.225])", i, out[i], MIN_STD, MAX_STD);
    }
  }
  if (!c->ok)
    return;
  if (!pp->do_resize) {
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "do_resize is false; this "
        "implementation always resizes frames to the model's input size");
    return;
  }
  if (pp->resample != 3) {
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "resample is %u; only 3 (PIL "
        "bicubic, what Florence-2 uses) is supported", pp->resample);
    return;
  }
  if (!(pp->rescale_factor > 0) || pp->rescale_factor > MAX_RESCALE) {
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "rescale_factor is %g; it must be "
        "positive and at most %g (Florence-2 uses 1/255 = 0.00392156862745098): "
        "use the preprocessor_config.json published with the model",
        pp->rescale_factor, MAX_RESCALE);
    return;
  }
  if (get_bool (c, o, p, "do_center_crop", FALSE)) {
    JsonObject *crop = get_object (c, o, p, "crop_size");
    guint ch = get_uint (c, crop, "crop_size.", "height", TRUE, 0, FALSE);
    guint cw = get_uint (c, crop, "crop_size.", "width", TRUE, 0, FALSE);
    if (c->ok && (ch != pp->height || cw != pp->width)) {
      ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "center cropping to %ux%u after "
          "resizing to %ux%u is not supported", cw, ch, pp->width, pp->height);
      return;
    }
  }
  /* DaViT downsamples by 4 * 2 * 2 * 2 */
  if (pp->width != pp->height || pp->width % 32 != 0) {
    ctx_fail (c, F2_CONFIG_ERROR_UNSUPPORTED, "size %ux%u: the image must be "
        "square with a side divisible by 32 (Florence-2 uses 768x768)",
        pp->width, pp->height);
    return;
  }
  grid = pp->width / 32;
  if (pp->image_seq_length == 0)
    pp->image_seq_length = grid * grid + 1;
  if (pp->image_seq_length != grid * grid + 1)
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "image_seq_length %u does not match "
        "size %ux%u (%u image tokens)", pp->image_seq_length, pp->width,
        pp->height, grid * grid + 1);
}

/* The token grid after each vision stage for the processor's image size:
 * DaViT's windows must tile every stage's grid, and the last grid must fit
 * the image position table. */
static void
check_token_grids (Ctx *c, const F2VisionConfig *v, const F2PreprocessConfig *pp)
{
  guint32 side = pp->width;

  for (guint s = 0; s < F2_VISION_STAGES; s++) {
    side = (side + 2 * v->patch_padding[s] - v->patch_size[s]) / v->patch_stride[s] + 1;
    if (side % v->window_size != 0) {
      ctx_fail (c, F2_CONFIG_ERROR_INVALID, "vision_config.window_size %u does "
          "not divide the %ux%u token grid of stage %u that a %ux%u image gives; "
          "use the published window_size (12) and size (768x768)",
          v->window_size, side, side, s + 1, pp->width, pp->height);
      return;
    }
  }
  if (side > v->image_pos_max_embeddings)
    ctx_fail (c, F2_CONFIG_ERROR_INVALID, "vision_config.image_pos_embed."
        "max_pos_embeddings %u is smaller than the %u rows and columns of the "
        "last token grid; raise it, or use a smaller image size",
        v->image_pos_max_embeddings, side);
}

/* The published Florence-2 processor settings. */
static const char default_preprocessor[] =
    "{\"size\": {\"height\": 768, \"width\": 768}, \"resample\": 3,"
    " \"image_mean\": [0.485, 0.456, 0.406], \"image_std\": [0.229, 0.224, 0.225],"
    " \"rescale_factor\": 0.00392156862745098, \"image_seq_length\": 577}";

static JsonParser *
parse_json (const char *text, const char *source, JsonObject **object,
    GError **error)
{
  JsonParser *parser;
  GError *json_error = NULL;
  JsonNode *root;

  if (!f2_json_check_depth (text, -1, F2_JSON_MAX_DEPTH, source,
          F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE, error))
    return NULL;
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, -1, &json_error)) {
    g_set_error (error, F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE,
        "%s is not valid JSON (%s); re-download it", source, json_error->message);
    g_error_free (json_error);
    g_object_unref (parser);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE,
        "%s is not a JSON object; re-download it", source);
    g_object_unref (parser);
    return NULL;
  }
  *object = json_node_get_object (root);
  return parser;
}

static F2Config *
load_from_data (const char *config_json, const char *preprocessor_json,
    const char *source, const char *pp_source, GError **error)
{
  F2Config *config = g_new0 (F2Config, 1);
  JsonParser *parser, *pp_parser;
  JsonObject *root, *pp_root;
  Ctx c = { source, error, TRUE };
  const char *dtype;

  parser = parse_json (config_json, source, &root, error);
  if (parser == NULL)
    goto fail;
  parse_vision (&c, root, &config->vision);
  parse_text (&c, root, &config->text);
  dtype = get_string (&c, root, "", "torch_dtype", NULL);
  config->torch_dtype = g_strdup (dtype);
  if (c.ok && config->vision.projection_dim != config->text.d_model)
    ctx_fail (&c, F2_CONFIG_ERROR_INVALID, "vision_config.projection_dim %u "
        "differs from text_config.d_model %u; the image features must have the "
        "language model's width", config->vision.projection_dim, config->text.d_model);
  if (c.ok && member (root, "projection_dim") != NULL
      && get_uint (&c, root, "", "projection_dim", TRUE, 0, FALSE) != config->vision.projection_dim)
    ctx_fail (&c, F2_CONFIG_ERROR_INVALID, "projection_dim differs from "
        "vision_config.projection_dim");
  if (c.ok && member (root, "vocab_size") != NULL
      && get_uint (&c, root, "", "vocab_size", TRUE, 0, FALSE) != config->text.vocab_size)
    ctx_fail (&c, F2_CONFIG_ERROR_INVALID, "vocab_size differs from "
        "text_config.vocab_size");
  g_object_unref (parser);
  if (!c.ok)
    goto fail;

  pp_parser = parse_json (preprocessor_json ? preprocessor_json : default_preprocessor,
      pp_source, &pp_root, error);
  if (pp_parser == NULL)
    goto fail;
  c.source = pp_source;
  parse_preprocess (&c, pp_root, &config->preprocess);
  g_object_unref (pp_parser);
  if (c.ok)
    check_token_grids (&c, &config->vision, &config->preprocess);
  if (!c.ok)
    goto fail;
  return config;

fail:
  f2_config_free (config);
  return NULL;
}

F2Config *
f2_config_load_from_data (const char *config_json,
    const char *preprocessor_json, const char *source, GError **error)
{
  char *pp_source = g_strdup_printf ("%s (preprocessor settings)", source);
  F2Config *config = load_from_data (config_json, preprocessor_json, source,
      pp_source, error);

  g_free (pp_source);
  return config;
}

F2Config *
f2_config_load (const char *config_path, const char *preprocessor_path,
    GError **error)
{
  char *config_json = NULL, *pp_json = NULL;
  F2Config *config = NULL;

  /* regular files of sane size only: a FIFO or a device would block or
   * never end */
  if (!f2_file_read_regular (config_path, F2_MAX_JSON_FILE_SIZE,
          "the config.json published with the model", &config_json, NULL, error)) {
    g_prefix_error (error, "cannot read the model configuration: ");
    return NULL;
  }
  if (preprocessor_path != NULL
      && !f2_file_read_regular (preprocessor_path, F2_MAX_JSON_FILE_SIZE,
          "the preprocessor_config.json published with the model", &pp_json,
          NULL, error)) {
    g_prefix_error (error, "cannot read the image processor configuration: ");
    g_free (config_json);
    return NULL;
  }
  config = load_from_data (config_json, pp_json, config_path,
      preprocessor_path ? preprocessor_path : "default preprocessor settings",
      error);
  g_free (pp_json);
  g_free (config_json);
  return config;
}

F2Config *
f2_config_load_dir (const char *model_dir, GError **error)
{
  char *config_path, *pp_path;
  F2Config *config;

  if (!f2_model_dir_check (model_dir, error))
    return NULL;
  config_path = g_build_filename (model_dir, "config.json", NULL);
  pp_path = g_build_filename (model_dir, "preprocessor_config.json", NULL);
  config = f2_config_load (config_path, pp_path, error);
  g_free (pp_path);
  g_free (config_path);
  return config;
}

void
f2_config_free (F2Config *config)
{
  if (config == NULL)
    return;
  g_free (config->text.activation_function);
  g_free (config->torch_dtype);
  g_free (config);
}

guint
f2_config_image_tokens (const F2Config *config)
{
  guint grid = config->preprocess.width / 32;
  return grid * grid + 1;
}
