/* config.json / preprocessor_config.json: the golden tiny model and the real
 * base and large configs parse to the values of the files (compared at run
 * time), the tiny model's generation settings equal the reference's
 * effective ones (index.json), and broken configs give clear errors. */
#include "config.h"
#include "test-common.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- file comparison */

static void
check_uint (JsonObject *o, const char *key, guint value)
{
  if (!json_object_has_member (o, key))
    return;
  if ((gint64) value != json_object_get_int_member (o, key))
    g_error ("%s: parsed %u, file has %" G_GINT64_FORMAT, key, value,
        json_object_get_int_member (o, key));
}

static void
check_id (JsonObject *o, const char *key, gint32 value)
{
  if (!json_object_has_member (o, key))
    return;
  if (json_node_is_null (json_object_get_member (o, key)))
    g_assert_cmpint (value, ==, -1);
  else
    g_assert_cmpint (value, ==, json_object_get_int_member (o, key));
}

static void
check_stages (JsonObject *o, const char *key, const guint *values)
{
  JsonArray *a = json_object_get_array_member (o, key);

  g_assert_cmpuint (json_array_get_length (a), ==, F2_VISION_STAGES);
  for (guint i = 0; i < F2_VISION_STAGES; i++) {
    JsonNode *e = json_array_get_element (a, i);
    gint64 v = json_node_get_value_type (e) == G_TYPE_BOOLEAN
        ? json_node_get_boolean (e) : json_node_get_int (e);
    if (v != values[i])
      g_error ("%s[%u]: parsed %u, file has %" G_GINT64_FORMAT, key, i, values[i], v);
  }
}

/* Every key of the files that the struct holds has the file's value. */
static void
compare_with_files (const F2Config *c, const char *config_path,
    const char *pp_path)
{
  JsonNode *root = f2_test_load_json (config_path);
  JsonNode *pp_root = f2_test_load_json (pp_path);
  JsonObject *o = json_node_get_object (root);
  JsonObject *t = json_object_get_object_member (o, "text_config");
  JsonObject *v = json_object_get_object_member (o, "vision_config");
  JsonObject *pp = json_node_get_object (pp_root);
  guint prenorm[F2_VISION_STAGES];
  JsonArray *a;

  check_uint (t, "vocab_size", c->text.vocab_size);
  check_uint (t, "d_model", c->text.d_model);
  check_uint (t, "encoder_layers", c->text.encoder_layers);
  check_uint (t, "decoder_layers", c->text.decoder_layers);
  check_uint (t, "encoder_attention_heads", c->text.encoder_attention_heads);
  check_uint (t, "decoder_attention_heads", c->text.decoder_attention_heads);
  check_uint (t, "encoder_ffn_dim", c->text.encoder_ffn_dim);
  check_uint (t, "decoder_ffn_dim", c->text.decoder_ffn_dim);
  check_uint (t, "max_position_embeddings", c->text.max_position_embeddings);
  check_uint (t, "no_repeat_ngram_size", c->text.no_repeat_ngram_size);
  check_uint (t, "num_beams", c->text.num_beams);
  check_uint (t, "max_length", c->text.max_length);
  check_id (t, "pad_token_id", c->text.pad_token_id);
  check_id (t, "bos_token_id", c->text.bos_token_id);
  check_id (t, "eos_token_id", c->text.eos_token_id);
  check_id (t, "decoder_start_token_id", c->text.decoder_start_token_id);
  check_id (t, "forced_bos_token_id", c->text.forced_bos_token_id);
  check_id (t, "forced_eos_token_id", c->text.forced_eos_token_id);
  g_assert_cmpstr (c->text.activation_function, ==,
      json_object_get_string_member (t, "activation_function"));
  g_assert_cmpint (c->text.scale_embedding, ==,
      json_object_get_boolean_member (t, "scale_embedding"));
  g_assert_cmpint (c->text.early_stopping, ==,
      json_object_get_boolean_member (t, "early_stopping"));
  g_assert_cmpstr (c->torch_dtype, ==, json_object_get_string_member (o, "torch_dtype"));

  check_stages (v, "patch_size", c->vision.patch_size);
  check_stages (v, "patch_stride", c->vision.patch_stride);
  check_stages (v, "patch_padding", c->vision.patch_padding);
  for (guint i = 0; i < F2_VISION_STAGES; i++)
    prenorm[i] = c->vision.patch_prenorm[i];
  check_stages (v, "patch_prenorm", prenorm);
  check_stages (v, "dim_embed", c->vision.dim_embed);
  check_stages (v, "num_heads", c->vision.num_heads);
  check_stages (v, "num_groups", c->vision.num_groups);
  check_stages (v, "depths", c->vision.depths);
  check_uint (v, "window_size", c->vision.window_size);
  check_uint (v, "projection_dim", c->vision.projection_dim);
  check_uint (o, "projection_dim", c->vision.projection_dim);
  check_uint (json_object_get_object_member (v, "image_pos_embed"),
      "max_pos_embeddings", c->vision.image_pos_max_embeddings);
  check_uint (json_object_get_object_member (v, "visual_temporal_embedding"),
      "max_temporal_embeddings", c->vision.temporal_max_embeddings);

  check_uint (json_object_get_object_member (pp, "size"), "height", c->preprocess.height);
  check_uint (json_object_get_object_member (pp, "size"), "width", c->preprocess.width);
  check_uint (pp, "resample", c->preprocess.resample);
  check_uint (pp, "image_seq_length", c->preprocess.image_seq_length);
  g_assert_cmpuint (f2_config_image_tokens (c), ==, c->preprocess.image_seq_length);
  a = json_object_get_array_member (pp, "image_mean");
  for (guint i = 0; i < 3; i++)
    g_assert_cmpfloat (c->preprocess.mean[i], ==, json_array_get_double_element (a, i));
  a = json_object_get_array_member (pp, "image_std");
  for (guint i = 0; i < 3; i++)
    g_assert_cmpfloat (c->preprocess.std[i], ==, json_array_get_double_element (a, i));
  g_assert_true (c->preprocess.do_resize && c->preprocess.do_rescale
      && c->preprocess.do_normalize);

  json_node_unref (pp_root);
  json_node_unref (root);
}

static void
load_and_compare_dir (const char *dir)
{
  char *config_path = g_build_filename (dir, "config.json", NULL);
  char *pp_path = g_build_filename (dir, "preprocessor_config.json", NULL);
  GError *error = NULL;
  F2Config *c = f2_config_load_dir (dir, &error);

  g_assert_no_error (error);
  g_assert_nonnull (c);
  compare_with_files (c, config_path, pp_path);
  f2_config_free (c);
  g_free (pp_path);
  g_free (config_path);
}

/* The tiny model's values equal what the reference loaded (index.json):
 * the config, the language model's effective generation config (defaults
 * included) and the image processor. */
static void
test_golden (void)
{
  char *dir = f2_test_golden_path ("tiny/model");
  char *bin_dir = f2_test_golden_path ("tiny/model-bin");
  char *index_path = f2_test_golden_path ("tiny/index.json");
  JsonNode *index = f2_test_load_json (index_path);
  JsonObject *root = json_node_get_object (index);
  JsonObject *gen = json_object_get_object_member (root,
      "effective_generation_config_language_model");
  JsonObject *ip = json_object_get_object_member (root, "image_processor");
  JsonObject *tc = json_object_get_object_member (
      json_object_get_object_member (root, "config"), "text_config");
  GError *error = NULL;
  F2Config *c;

  load_and_compare_dir (dir);
  load_and_compare_dir (bin_dir);
  c = f2_config_load_dir (dir, &error);
  g_assert_no_error (error);

  check_uint (gen, "max_length", c->text.max_length);
  check_uint (gen, "num_beams", c->text.num_beams);
  check_uint (gen, "no_repeat_ngram_size", c->text.no_repeat_ngram_size);
  check_id (gen, "decoder_start_token_id", c->text.decoder_start_token_id);
  check_id (gen, "forced_bos_token_id", c->text.forced_bos_token_id);
  check_id (gen, "forced_eos_token_id", c->text.forced_eos_token_id);
  check_id (gen, "pad_token_id", c->text.pad_token_id);
  check_id (gen, "eos_token_id", c->text.eos_token_id);
  check_id (gen, "bos_token_id", c->text.bos_token_id);
  g_assert_cmpint (c->text.early_stopping, ==,
      json_object_get_boolean_member (gen, "early_stopping"));
  g_assert_cmpfloat (c->text.length_penalty, ==,
      json_object_get_double_member (gen, "length_penalty"));
  check_uint (tc, "max_length", c->text.max_length);
  g_assert_cmpfloat (c->text.length_penalty, ==,
      json_object_get_double_member (tc, "length_penalty"));
  g_assert_cmpfloat (c->preprocess.rescale_factor, ==,
      json_object_get_double_member (ip, "rescale_factor"));
  check_uint (ip, "image_seq_length", c->preprocess.image_seq_length);

  f2_config_free (c);
  json_node_unref (index);
  g_free (index_path);
  g_free (bin_dir);
  g_free (dir);
}

static void
test_real_configs (void)
{
  const char *configs = g_getenv ("F2_CONFIGS_DIR");
  char *base, *large, *old, *old_pp;
  GError *error = NULL;
  F2Config *c;

  base = g_build_filename (configs, "base", NULL);
  large = g_build_filename (configs, "large", NULL);
  load_and_compare_dir (base);
  load_and_compare_dir (large);
  /* the large config before max_position_embeddings became 4096 */
  old = g_build_filename (large, "config_before_2024-12-08.json", NULL);
  old_pp = g_build_filename (large, "preprocessor_config.json", NULL);
  c = f2_config_load (old, old_pp, &error);
  g_assert_no_error (error);
  compare_with_files (c, old, old_pp);
  f2_config_free (c);
  g_free (old_pp);
  g_free (old);
  g_free (large);
  g_free (base);
}

/* ---------------------------------------------------------- bad configs */

static char *tiny_config, *tiny_pp;

/* The tiny config with @path (e.g. "text_config.d_model") set to the JSON
 * value @json, or removed when @json is NULL. */
static char *
edited (const char *source, const char *path, const char *json)
{
  JsonParser *parser = json_parser_new ();
  JsonGenerator *gen = json_generator_new ();
  char **parts = g_strsplit (path, ".", -1);
  JsonObject *o;
  guint n = g_strv_length (parts);
  char *out;

  g_assert_true (json_parser_load_from_data (parser, source, -1, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  for (guint i = 0; i + 1 < n; i++)
    o = json_object_get_object_member (o, parts[i]);
  if (json == NULL) {
    json_object_remove_member (o, parts[n - 1]);
  } else {
    JsonParser *vp = json_parser_new ();
    g_assert_true (json_parser_load_from_data (vp, json, -1, NULL));
    json_object_set_member (o, parts[n - 1], json_node_copy (json_parser_get_root (vp)));
    g_object_unref (vp);
  }
  json_generator_set_root (gen, json_parser_get_root (parser));
  out = json_generator_to_data (gen, NULL);
  g_strfreev (parts);
  g_object_unref (gen);
  g_object_unref (parser);
  return out;
}

static void
expect_bad (gboolean preprocessor, const char *path, const char *json,
    gint code, const char *want)
{
  char *text = edited (preprocessor ? tiny_pp : tiny_config, path, json);
  GError *error = NULL;
  F2Config *c = f2_config_load_from_data (preprocessor ? tiny_config : text,
      preprocessor ? text : tiny_pp, "test-config.json", &error);

  if (c != NULL)
    g_error ("%s = %s was accepted", path, json ? json : "(removed)");
  g_assert_nonnull (error);
  if (!g_error_matches (error, F2_CONFIG_ERROR, code))
    g_error ("%s = %s: unexpected error %d: %s", path, json, error->code, error->message);
  if (strstr (error->message, want) == NULL || strstr (error->message, "test-config.json") == NULL)
    g_error ("%s = %s: message lacks \"%s\": %s", path, json, want, error->message);
  g_test_message ("ok: %s", error->message);
  g_error_free (error);
  g_free (text);
}

static void
test_bad (void)
{
  char *dir = f2_test_golden_path ("tiny/model");
  char *config_path = g_build_filename (dir, "config.json", NULL);
  char *pp_path = g_build_filename (dir, "preprocessor_config.json", NULL);
  GError *error = NULL;
  F2Config *c;

  g_assert_true (g_file_get_contents (config_path, &tiny_config, NULL, NULL));
  g_assert_true (g_file_get_contents (pp_path, &tiny_pp, NULL, NULL));

  /* unedited, it loads; missing optional knobs take the defaults */
  c = f2_config_load_from_data (tiny_config, tiny_pp, "tiny", &error);
  g_assert_no_error (error);
  f2_config_free (c);
  {
    char *text = edited (tiny_config, "text_config.num_beams", NULL);
    c = f2_config_load_from_data (text, NULL, "tiny", &error);
    g_assert_no_error (error);
    g_assert_cmpuint (c->text.num_beams, ==, 1);
    g_assert_cmpuint (c->text.max_length, ==, 20);
    g_assert_cmpfloat (c->text.length_penalty, ==, 1.0);
    g_assert_cmpuint (c->preprocess.image_seq_length, ==, 577);
    f2_config_free (c);
    g_free (text);
  }

  expect_bad (FALSE, "text_config.d_model", "65", F2_CONFIG_ERROR_INVALID, "divisible");
  expect_bad (FALSE, "text_config.d_model", "0", F2_CONFIG_ERROR_INVALID, "d_model");
  expect_bad (FALSE, "text_config.d_model", "\"64\"", F2_CONFIG_ERROR_INVALID, "d_model");
  expect_bad (FALSE, "text_config.d_model", NULL, F2_CONFIG_ERROR_PARSE, "d_model");
  expect_bad (FALSE, "text_config.encoder_layers", "-2", F2_CONFIG_ERROR_INVALID, "encoder_layers");
  expect_bad (FALSE, "text_config.activation_function", "\"relu\"",
      F2_CONFIG_ERROR_UNSUPPORTED, "relu");
  expect_bad (FALSE, "text_config.vocab_size", "50265", F2_CONFIG_ERROR_INVALID, "vocab_size");
  expect_bad (FALSE, "text_config.eos_token_id", "999999", F2_CONFIG_ERROR_INVALID,
      "eos_token_id");
  expect_bad (FALSE, "text_config.early_stopping", "\"never\"",
      F2_CONFIG_ERROR_UNSUPPORTED, "early_stopping");
  expect_bad (FALSE, "text_config", NULL, F2_CONFIG_ERROR_PARSE, "text_config");
  expect_bad (FALSE, "vision_config.dim_embed", "[32, 48, 64]",
      F2_CONFIG_ERROR_UNSUPPORTED, "dim_embed");
  expect_bad (FALSE, "vision_config.num_heads", "[2, 3, 5, 6]",
      F2_CONFIG_ERROR_INVALID, "num_heads");
  expect_bad (FALSE, "vision_config.num_groups", "[4, 2, 8, 7]",
      F2_CONFIG_ERROR_INVALID, "num_groups");
  expect_bad (FALSE, "vision_config.patch_size", "[7, 3, 3, 5]",
      F2_CONFIG_ERROR_UNSUPPORTED, "stage 4");
  expect_bad (FALSE, "vision_config.patch_prenorm", "[true, true, true, true]",
      F2_CONFIG_ERROR_UNSUPPORTED, "prenorm");
  expect_bad (FALSE, "vision_config.window_size", "0", F2_CONFIG_ERROR_INVALID, "window_size");
  expect_bad (FALSE, "vision_config.projection_dim", "48", F2_CONFIG_ERROR_INVALID,
      "projection_dim");
  expect_bad (FALSE, "vision_config.image_pos_embed.type", "\"sine\"",
      F2_CONFIG_ERROR_UNSUPPORTED, "learned_abs_2d");
  expect_bad (FALSE, "vision_config.visual_temporal_embedding", NULL,
      F2_CONFIG_ERROR_PARSE, "visual_temporal_embedding");
  expect_bad (FALSE, "vision_config.image_feature_source", "[\"last_frame\"]",
      F2_CONFIG_ERROR_UNSUPPORTED, "image_feature_source");
  expect_bad (FALSE, "vocab_size", "51290", F2_CONFIG_ERROR_INVALID, "vocab_size");
  expect_bad (TRUE, "image_std", "[0.229, 0, 0.225]", F2_CONFIG_ERROR_INVALID, "image_std");
  expect_bad (TRUE, "image_mean", "[0.5, 0.5]", F2_CONFIG_ERROR_PARSE, "image_mean");
  expect_bad (TRUE, "resample", "2", F2_CONFIG_ERROR_UNSUPPORTED, "resample");
  expect_bad (TRUE, "size", "{\"height\": 768, \"width\": 640}",
      F2_CONFIG_ERROR_UNSUPPORTED, "square");
  expect_bad (TRUE, "image_seq_length", "578", F2_CONFIG_ERROR_INVALID, "image_seq_length");
  expect_bad (TRUE, "do_resize", "false", F2_CONFIG_ERROR_UNSUPPORTED, "do_resize");

  /* not JSON, not an object */
  c = f2_config_load_from_data ("{\"text_config\": ", NULL, "broken.json", &error);
  g_assert_null (c);
  g_assert_error (error, F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE);
  g_assert_nonnull (strstr (error->message, "broken.json"));
  g_clear_error (&error);
  c = f2_config_load_from_data ("[1]", NULL, "array.json", &error);
  g_assert_null (c);
  g_assert_error (error, F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE);
  g_clear_error (&error);

  /* missing directory and files */
  c = f2_config_load_dir ("/nonexistent/florence-2", &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, "/nonexistent/florence-2"));
  g_clear_error (&error);
  c = f2_config_load (config_path, "/nonexistent/preprocessor_config.json", &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, "preprocessor_config.json"));
  g_clear_error (&error);

  g_free (tiny_pp);
  g_free (tiny_config);
  g_free (pp_path);
  g_free (config_path);
  g_free (dir);
}

/* @text with the first @from replaced by @to (which must be there). */
static char *
replaced (const char *text, const char *from, const char *to)
{
  const char *at = strstr (text, from);
  GString *s;

  g_assert_nonnull (at);
  s = g_string_new_len (text, at - text);
  g_string_append (s, to);
  g_string_append (s, at + strlen (from));
  return g_string_free (s, FALSE);
}

/* Loading @config / @pp fails with @domain/@code and a message that holds
 * every NULL-terminated substring. */
static void
expect_text_error (const char *config, const char *pp, GQuark domain,
    gint code, ...)
{
  GError *error = NULL;
  F2Config *c = f2_config_load_from_data (config, pp, "test-config.json", &error);
  const char *want;
  va_list args;

  if (c != NULL)
    g_error ("accepted: %.200s", pp ? pp : config);
  if (!g_error_matches (error, domain, code))
    g_error ("unexpected error %s/%d: %s", g_quark_to_string (error->domain),
        error->code, error->message);
  va_start (args, code);
  while ((want = va_arg (args, const char *)) != NULL)
    if (strstr (error->message, want) == NULL)
      g_error ("message lacks \"%s\": %s", want, error->message);
  va_end (args);
  g_test_message ("ok: %s", error->message);
  g_error_free (error);
}

/* JSON nested @depth levels deep around a number. */
static char *
nested (guint depth)
{
  GString *s = g_string_new ("{\"a\": ");
  for (guint i = 0; i < depth; i++)
    g_string_append_c (s, '[');
  g_string_append_c (s, '1');
  for (guint i = 0; i < depth; i++)
    g_string_append_c (s, ']');
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

/* Deep nesting is refused before json-glib's recursive parser sees it (a
 * million levels overflow its stack); brackets in strings and comments do
 * not count. */
static void
test_deep_nesting (void)
{
  char *dir = f2_test_golden_path ("tiny/model");
  char *config_path = g_build_filename (dir, "config.json", NULL);
  char *pp_path = g_build_filename (dir, "preprocessor_config.json", NULL);
  char *config, *pp, *deep = nested (1000000), *text;
  GError *error = NULL;
  F2Config *c;

  g_assert_true (g_file_get_contents (config_path, &config, NULL, NULL));
  g_assert_true (g_file_get_contents (pp_path, &pp, NULL, NULL));
  expect_text_error (deep, pp, F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE,
      "test-config.json", "64 levels", NULL);
  expect_text_error (config, deep, F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE,
      "preprocessor", "64 levels", NULL);
  /* inside a member the config does not read, too */
  text = replaced (config, "{", "{\"deep\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
      "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], ");
  expect_text_error (text, pp, F2_CONFIG_ERROR, F2_CONFIG_ERROR_PARSE,
      "64 levels", NULL);
  g_free (text);
  /* 64 levels are fine (the config's object, "x"'s object and 62
   * arrays); brackets in strings (escaped quotes too), single-quoted
   * strings and comments are not nesting */
  g_free (deep);
  deep = nested (62);
  text = g_strdup_printf ("{\"x\": %s, \"s\": \"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\", \"t\": '{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"
      "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{', /* [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ */ %s", deep, config + 1);
  c = f2_config_load_from_data (text, pp, "ok.json", &error);
  g_assert_no_error (error);
  f2_config_free (c);
  g_free (text);

  g_free (deep);
  g_free (pp);
  g_free (config);
  g_free (pp_path);
  g_free (config_path);
  g_free (dir);
}

/* Generation and preprocessor settings that would load and then fail every
 * inference are refused at load, naming the field, the value and the
 * range. */
static void
test_absurd_values (void)
{
  char *dir = f2_test_golden_path ("tiny/model");
  char *config_path = g_build_filename (dir, "config.json", NULL);
  char *pp_path = g_build_filename (dir, "preprocessor_config.json", NULL);
  char *text;
  GError *error = NULL;
  F2Config *c;

  g_assert_true (g_file_get_contents (config_path, &tiny_config, NULL, NULL));
  g_assert_true (g_file_get_contents (pp_path, &tiny_pp, NULL, NULL));

  expect_bad (FALSE, "text_config.num_beams", "1000", F2_CONFIG_ERROR_INVALID,
      "num_beams is 1000, outside the range 1..16");
  expect_bad (FALSE, "text_config.num_beams", "17", F2_CONFIG_ERROR_INVALID, "num_beams");
  expect_bad (FALSE, "text_config.max_length", "100000", F2_CONFIG_ERROR_INVALID,
      "max_length is 100000");
  expect_bad (FALSE, "text_config.no_repeat_ngram_size", "1000000",
      F2_CONFIG_ERROR_INVALID, "no_repeat_ngram_size");
  expect_bad (FALSE, "text_config.length_penalty", "1000.5", F2_CONFIG_ERROR_INVALID,
      "length_penalty");
  expect_bad (FALSE, "text_config.d_model", "1073741824", F2_CONFIG_ERROR_INVALID,
      "d_model is 1073741824");
  expect_bad (FALSE, "text_config.vocab_size", "2000000000", F2_CONFIG_ERROR_INVALID,
      "vocab_size");
  expect_bad (FALSE, "text_config.decoder_layers", "100000", F2_CONFIG_ERROR_INVALID,
      "decoder_layers");
  expect_bad (FALSE, "vision_config.depths", "[1, 1, 100000, 1]",
      F2_CONFIG_ERROR_INVALID, "depths[2]");
  expect_bad (FALSE, "vision_config.window_size", "100000", F2_CONFIG_ERROR_INVALID,
      "window_size");
  /* 16 beams are what the element and the CLI allow */
  text = edited (tiny_config, "text_config.num_beams", "16");
  c = f2_config_load_from_data (text, tiny_pp, "tiny", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (c->text.num_beams, ==, 16);
  f2_config_free (c);
  g_free (text);

  expect_bad (TRUE, "image_std", "[0.229, -0.224, 0.225]", F2_CONFIG_ERROR_INVALID,
      "image_std[1] must be positive");
  expect_bad (TRUE, "image_std", "[0.229, 0.224, 1e9]", F2_CONFIG_ERROR_INVALID,
      "image_std[2] is 1e+09");
  expect_bad (TRUE, "image_std", "[1e-9, 0.224, 0.225]", F2_CONFIG_ERROR_INVALID,
      "image_std[0]");
  expect_bad (TRUE, "image_mean", "[0.485, -1e12, 0.406]", F2_CONFIG_ERROR_INVALID,
      "image_mean[1]");
  expect_bad (TRUE, "rescale_factor", "0", F2_CONFIG_ERROR_INVALID, "rescale_factor");
  expect_bad (TRUE, "rescale_factor", "-1", F2_CONFIG_ERROR_INVALID, "rescale_factor");
  expect_bad (TRUE, "rescale_factor", "1000000", F2_CONFIG_ERROR_INVALID,
      "rescale_factor is 1e+06");
  expect_bad (TRUE, "size", "{\"height\": 1048576, \"width\": 1048576}",
      F2_CONFIG_ERROR_INVALID, "size.height");
  /* numbers too large for a double read as infinity: refused, not used */
  text = replaced (tiny_pp, "0.485", "1e999");
  expect_text_error (tiny_config, text, F2_CONFIG_ERROR, F2_CONFIG_ERROR_INVALID,
      "image_mean[0]", NULL);
  g_free (text);
  text = replaced (tiny_pp, "0.224", "1e999");
  expect_text_error (tiny_config, text, F2_CONFIG_ERROR, F2_CONFIG_ERROR_INVALID,
      "image_std[1]", NULL);
  g_free (text);

  g_free (tiny_pp);
  g_free (tiny_config);
  g_free (pp_path);
  g_free (config_path);
  g_free (dir);
}

/* File-system surprises: each message names the file, the problem and
 * the fix, and nothing blocks (a FIFO would wait for a writer forever). */
static void
test_bad_files (void)
{
  char *golden = f2_test_golden_path ("tiny/model");
  char *tmp = g_dir_make_tmp ("f2-config-XXXXXX", NULL);
  char *config_path = g_build_filename (tmp, "config.json", NULL);
  char *pp_path = g_build_filename (tmp, "preprocessor_config.json", NULL);
  char *not_dir = g_build_filename (tmp, "model-file", NULL);
  char *link_dir = g_build_filename (tmp, "model-link", NULL);
  char *text;
  GError *error = NULL;
  F2Config *c;

  g_assert_nonnull (tmp);
  /* the golden config next to a FIFO preprocessor_config.json */
  text = g_build_filename (golden, "config.json", NULL);
  {
    char *contents;
    g_assert_true (g_file_get_contents (text, &contents, NULL, NULL));
    g_assert_true (g_file_set_contents (config_path, contents, -1, NULL));
    g_free (contents);
  }
  g_free (text);
  g_assert_cmpint (mkfifo (pp_path, 0600), ==, 0);
  c = f2_config_load_dir (tmp, &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_assert_nonnull (strstr (error->message, pp_path));
  g_assert_nonnull (strstr (error->message, "FIFO"));
  g_test_message ("ok: %s", error->message);
  g_clear_error (&error);
  g_unlink (pp_path);

  /* a directory where the file should be */
  g_assert_cmpint (g_mkdir (pp_path, 0700), ==, 0);
  c = f2_config_load_dir (tmp, &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR);
  g_assert_nonnull (strstr (error->message, pp_path));
  g_assert_nonnull (strstr (error->message, "is a directory"));
  g_assert_nonnull (strstr (error->message, "preprocessor_config.json published"));
  g_test_message ("ok: %s", error->message);
  g_clear_error (&error);
  g_rmdir (pp_path);

  /* a dangling symbolic link for config.json */
  g_unlink (config_path);
  g_assert_cmpint (symlink ("no-such-config.json", config_path), ==, 0);
  c = f2_config_load_dir (tmp, &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, config_path));
  g_assert_nonnull (strstr (error->message, "no-such-config.json"));
  g_assert_nonnull (strstr (error->message, "dangling"));
  g_test_message ("ok: %s", error->message);
  g_clear_error (&error);
  g_unlink (config_path);

  /* a device */
  c = f2_config_load ("/dev/zero", NULL, &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_assert_nonnull (strstr (error->message, "/dev/zero is a character device"));
  g_test_message ("ok: %s", error->message);
  g_clear_error (&error);

  /* the model path is a file, or a link to nothing */
  g_assert_true (g_file_set_contents (not_dir, "{}", -1, NULL));
  c = f2_config_load_dir (not_dir, &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR);
  g_assert_nonnull (strstr (error->message, not_dir));
  g_assert_nonnull (strstr (error->message, "a file, not a directory"));
  g_test_message ("ok: %s", error->message);
  g_clear_error (&error);
  g_assert_cmpint (symlink ("no-such-model", link_dir), ==, 0);
  c = f2_config_load_dir (link_dir, &error);
  g_assert_null (c);
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (error->message, "dangling"));
  g_test_message ("ok: %s", error->message);
  g_clear_error (&error);

  g_unlink (link_dir);
  g_unlink (not_dir);
  g_rmdir (tmp);
  g_free (link_dir);
  g_free (not_dir);
  g_free (pp_path);
  g_free (config_path);
  g_free (tmp);
  g_free (golden);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  f2_test_require_golden_dir ();
  if (g_getenv ("F2_CONFIGS_DIR") == NULL
      || !g_file_test (g_getenv ("F2_CONFIGS_DIR"), G_FILE_TEST_IS_DIR)) {
    g_printerr ("real configs not found (F2_CONFIGS_DIR); skipping\n");
    return F2_TEST_SKIP;
  }
  g_test_add_func ("/config/golden", test_golden);
  g_test_add_func ("/config/real", test_real_configs);
  g_test_add_func ("/config/bad", test_bad);
  g_test_add_func ("/config/deep-nesting", test_deep_nesting);
  g_test_add_func ("/config/absurd-values", test_absurd_values);
  g_test_add_func ("/config/bad-files", test_bad_files);
  return g_test_run ();
}
