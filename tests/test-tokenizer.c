/* The tokenizer against the reference: golden prompts.json (prompts, decodes,
 * tokenizer facts) and the input ids and generated texts of every golden
 * case; the real Florence-2 tokenizer files must give the same results. */
#include "tokenizer.h"
#include "test-common.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static F2Tokenizer *tiny;
static JsonObject *prompts_root;

static GArray *
ids_from_json (JsonArray *array)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  guint i;

  for (i = 0; i < json_array_get_length (array); i++) {
    gint32 id = (gint32) json_array_get_int_element (array, i);

    g_array_append_val (ids, id);
  }
  return ids;
}

static char *
ids_to_string (const GArray *ids)
{
  GString *s = g_string_new ("[");
  guint i;

  for (i = 0; i < ids->len; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "",
        g_array_index (ids, gint32, i));
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static gboolean
ids_equal (const GArray *a, const GArray *b)
{
  return a->len == b->len
      && memcmp (a->data, b->data, a->len * sizeof (gint32)) == 0;
}

/* TRUE when @tok encodes @text to @expected; prints the difference if not. */
static gboolean
check_encode (F2Tokenizer *tok, const char *text, JsonArray *expected)
{
  GError *error = NULL;
  GArray *want = ids_from_json (expected);
  GArray *got = f2_tokenizer_encode (tok, text, &error);
  gboolean ok;

  g_assert_no_error (error);
  ok = ids_equal (got, want);
  if (!ok) {
    char *g = ids_to_string (got), *w = ids_to_string (want);

    g_printerr ("encode \"%s\":\n  got      %s\n  expected %s\n", text, g, w);
    g_free (g);
    g_free (w);
  }
  g_array_unref (want);
  g_array_unref (got);
  return ok;
}

/* TRUE when decoding @ids gives @expected; prints the difference if not. */
static gboolean
check_decode (F2Tokenizer *tok, JsonArray *ids_json, gboolean skip_special,
    gboolean clean_up, const char *expected)
{
  GArray *ids = ids_from_json (ids_json);
  char *text = f2_tokenizer_decode_full (tok, (const gint32 *) ids->data,
      ids->len, skip_special, clean_up);
  gboolean ok = strcmp (text, expected) == 0;

  if (!ok)
    g_printerr ("decode (skip_special %d, clean_up %d):\n  got      \"%s\"\n"
        "  expected \"%s\"\n", skip_special, clean_up, text, expected);
  if (clean_up) {
    char *plain = f2_tokenizer_decode (tok, (const gint32 *) ids->data,
        ids->len, skip_special);

    g_assert_cmpstr (plain, ==, text);
    g_free (plain);
  }
  g_free (text);
  g_array_unref (ids);
  return ok;
}

static gboolean
check_tokens (F2Tokenizer *tok, JsonArray *ids, JsonArray *tokens)
{
  guint i;

  if (json_array_get_length (ids) != json_array_get_length (tokens))
    return FALSE;
  for (i = 0; i < json_array_get_length (ids); i++) {
    gint32 id = (gint32) json_array_get_int_element (ids, i);
    const char *want = json_array_get_string_element (tokens, i);

    if (g_strcmp0 (f2_tokenizer_id_to_token (tok, id), want) != 0
        || f2_tokenizer_token_to_id (tok, want) != id) {
      g_printerr ("token %d: got \"%s\", expected \"%s\"\n", id,
          f2_tokenizer_id_to_token (tok, id), want);
      return FALSE;
    }
  }
  return TRUE;
}

/* Encodes every golden prompt with @tok; returns how many match. */
static guint
count_prompt_encodes (F2Tokenizer *tok, guint *n_total)
{
  JsonArray *prompts = json_object_get_array_member (prompts_root, "prompts");
  guint i, matched = 0;

  *n_total = 0;
  for (i = 0; i < json_array_get_length (prompts); i++) {
    JsonObject *e = json_array_get_object_element (prompts, i);

    if (!json_object_has_member (e, "input_ids"))
      continue;
    (*n_total)++;
    matched += check_encode (tok, json_object_get_string_member (e, "prompt"),
        json_object_get_array_member (e, "input_ids"));
  }
  return matched;
}

static void
test_facts (void)
{
  JsonObject *facts = json_object_get_object_member (prompts_root,
      "tokenizer");
  JsonObject *special = json_object_get_object_member (facts,
      "special_tokens");
  JsonObject *added = json_object_get_object_member (facts,
      "added_tokens_by_processor");
  GList *members, *l;
  guint n = 0;

  g_assert_cmpuint (f2_tokenizer_vocab_size (tiny), ==,
      json_object_get_int_member (facts, "total_size_with_added"));
  g_assert_true (json_object_get_boolean_member (facts,
          "clean_up_tokenization_spaces"));

  members = json_object_get_members (special);
  for (l = members; l != NULL; l = l->next) {
    JsonArray *pair = json_object_get_array_member (special, l->data);
    const char *token = json_array_get_string_element (pair, 0);
    gint32 id = (gint32) json_array_get_int_element (pair, 1);

    g_assert_cmpint (f2_tokenizer_token_to_id (tiny, token), ==, id);
    g_assert_cmpstr (f2_tokenizer_id_to_token (tiny, id), ==, token);
    g_assert_true (f2_tokenizer_is_special (tiny, id));
    n++;
  }
  g_list_free (members);

  members = json_object_get_members (added);
  for (l = members; l != NULL; l = l->next) {
    gint32 id = (gint32) g_ascii_strtoll (l->data, NULL, 10);
    const char *token = json_object_get_string_member (added, l->data);

    g_assert_cmpint (f2_tokenizer_token_to_id (tiny, token), ==, id);
    g_assert_cmpstr (f2_tokenizer_id_to_token (tiny, id), ==, token);
    g_assert_true (f2_tokenizer_is_special (tiny, id));
    n++;
  }
  g_assert_cmpuint (g_list_length (members), ==,
      f2_tokenizer_vocab_size (tiny) - json_object_get_int_member (facts,
          "base_vocab_size"));
  g_list_free (members);

  g_assert_cmpint (f2_tokenizer_token_to_id (tiny, "<s>"), ==,
      F2_TOKENIZER_BOS_ID);
  g_assert_cmpint (f2_tokenizer_token_to_id (tiny, "</s>"), ==,
      F2_TOKENIZER_EOS_ID);
  g_assert_cmpint (f2_tokenizer_token_to_id (tiny, "<pad>"), ==,
      F2_TOKENIZER_PAD_ID);
  g_assert_false (f2_tokenizer_is_special (tiny,
          f2_tokenizer_token_to_id (tiny, "Ġthe")));
  g_assert_null (f2_tokenizer_id_to_token (tiny, -1));
  g_assert_null (f2_tokenizer_id_to_token (tiny,
          f2_tokenizer_vocab_size (tiny)));
  g_assert_cmpint (f2_tokenizer_token_to_id (tiny, "<no such token>"), ==,
      -1);
  g_print ("special and added tokens: %u match\n", n);
}

static void
test_prompts (void)
{
  JsonArray *prompts = json_object_get_array_member (prompts_root, "prompts");
  guint i, total = 0, enc = 0, tokens = 0, dec = 0, dec_skip = 0;

  for (i = 0; i < json_array_get_length (prompts); i++) {
    JsonObject *e = json_array_get_object_element (prompts, i);
    JsonArray *ids;

    if (!json_object_has_member (e, "input_ids"))
      continue;
    total++;
    ids = json_object_get_array_member (e, "input_ids");
    enc += check_encode (tiny, json_object_get_string_member (e, "prompt"),
        ids);
    tokens += check_tokens (tiny, ids,
        json_object_get_array_member (e, "tokens"));
    dec += check_decode (tiny, ids, FALSE, TRUE,
        json_object_get_string_member (e, "decoded"));
    dec_skip += check_decode (tiny, ids, TRUE, TRUE,
        json_object_get_string_member (e, "decoded_skip_special"));
  }
  g_print ("prompts: encode %u/%u, tokens %u/%u, decode %u/%u, "
      "decode skip-special %u/%u match\n", enc, total, tokens, total, dec,
      total, dec_skip, total);
  g_assert_cmpuint (total, >, 0);
  g_assert_cmpuint (enc, ==, total);
  g_assert_cmpuint (tokens, ==, total);
  g_assert_cmpuint (dec, ==, total);
  g_assert_cmpuint (dec_skip, ==, total);
}

static void
test_decodes (void)
{
  JsonArray *decodes = json_object_get_array_member (prompts_root, "decodes");
  guint i, n = json_array_get_length (decodes), matched = 0;

  for (i = 0; i < n; i++) {
    JsonObject *e = json_array_get_object_element (decodes, i);
    JsonArray *ids = json_object_get_array_member (e, "ids");
    gboolean ok;

    ok = check_tokens (tiny, ids, json_object_get_array_member (e, "tokens"));
    ok &= check_decode (tiny, ids, FALSE, TRUE,
        json_object_get_string_member (e, "decoded"));
    ok &= check_decode (tiny, ids, TRUE, TRUE,
        json_object_get_string_member (e, "decoded_skip_special"));
    ok &= check_decode (tiny, ids, FALSE, FALSE,
        json_object_get_string_member (e, "decoded_no_cleanup"));
    matched += ok;
  }
  g_print ("decodes: %u/%u match (with and without clean-up, "
      "skip-special)\n", matched, n);
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (matched, ==, n);
}

/* Input ids of every golden case, and the texts of its generations. */
static void
test_cases (void)
{
  char *dir = f2_test_golden_path ("tiny/cases");
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0, enc = 0, texts = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL) {
    char *path;
    JsonNode *root;
    JsonObject *c, *greedy, *beam;

    if (!g_str_has_suffix (name, ".json"))
      continue;
    path = g_build_filename (dir, name, NULL);
    root = f2_test_load_json (path);
    c = json_node_get_object (root);
    greedy = json_object_get_object_member (c, "greedy");
    beam = json_object_get_object_member (c, "beam");
    n++;
    enc += check_encode (tiny, json_object_get_string_member (c, "prompt"),
        json_object_get_array_member (c, "input_ids"));
    texts += check_decode (tiny,
        json_object_get_array_member (greedy, "sequence"), FALSE, TRUE,
        json_object_get_string_member (greedy, "text"))
        && check_decode (tiny,
        json_object_get_array_member (greedy, "sequence"), TRUE, TRUE,
        json_object_get_string_member (greedy, "text_skip_special"))
        && check_decode (tiny,
        json_object_get_array_member (beam, "sequence"), FALSE, TRUE,
        json_object_get_string_member (beam, "text"));
    json_node_unref (root);
    g_free (path);
  }
  g_dir_close (d);
  g_free (dir);
  g_print ("cases: input ids %u/%u, generated texts %u/%u match\n", enc, n,
      texts, n);
  g_assert_cmpuint (n, >, 0);
  g_assert_cmpuint (enc, ==, n);
  g_assert_cmpuint (texts, ==, n);
}

/* vocab.json + merges.txt (merges.txt written from tokenizer.json) load to
 * the same tokenizer. */
static void
test_vocab_and_merges (void)
{
  char *model = f2_test_golden_path ("tiny/model");
  char *json_path = g_build_filename (model, "tokenizer.json", NULL);
  char *vocab_path = g_build_filename (model, "vocab.json", NULL);
  char *tmp = g_dir_make_tmp ("f2-tok-XXXXXX", NULL);
  char *out_vocab = g_build_filename (tmp, "vocab.json", NULL);
  char *out_merges = g_build_filename (tmp, "merges.txt", NULL);
  JsonNode *root = f2_test_load_json (json_path);
  JsonArray *merges = json_object_get_array_member (json_object_get_object_member
      (json_node_get_object (root), "model"), "merges");
  GString *txt = g_string_new ("#version: 0.2\n");
  GError *error = NULL;
  F2Tokenizer *tok;
  char *contents;
  gsize len;
  guint i, matched, total;

  g_assert_nonnull (tmp);
  for (i = 0; i < json_array_get_length (merges); i++) {
    JsonNode *m = json_array_get_element (merges, i);

    if (JSON_NODE_HOLDS_ARRAY (m))
      g_string_append_printf (txt, "%s %s\n",
          json_array_get_string_element (json_node_get_array (m), 0),
          json_array_get_string_element (json_node_get_array (m), 1));
    else
      g_string_append_printf (txt, "%s\n", json_node_get_string (m));
  }
  g_assert_true (g_file_set_contents (out_merges, txt->str, txt->len, NULL));
  g_assert_true (g_file_get_contents (vocab_path, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (out_vocab, contents, len, NULL));
  g_free (contents);

  tok = f2_tokenizer_new_from_dir (tmp, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f2_tokenizer_vocab_size (tok), ==,
      f2_tokenizer_vocab_size (tiny));
  matched = count_prompt_encodes (tok, &total);
  g_print ("vocab.json + merges.txt: %u/%u prompts match\n", matched, total);
  g_assert_cmpuint (matched, ==, total);
  g_assert_true (f2_tokenizer_is_special (tok,
          f2_tokenizer_token_to_id (tok, "<mask>")));
  f2_tokenizer_free (tok);

  g_unlink (out_vocab);
  g_unlink (out_merges);
  g_rmdir (tmp);
  g_string_free (txt, TRUE);
  json_node_unref (root);
  g_free (out_merges);
  g_free (out_vocab);
  g_free (tmp);
  g_free (vocab_path);
  g_free (json_path);
  g_free (model);
}

/* The published Florence-2 tokenizer gives the golden results too. */
static void
test_real_tokenizer (void)
{
  const char *configs = g_getenv ("F2_CONFIGS_DIR");
  const char *variants[] = { "base", "large" };
  guint v;

  if (configs == NULL || !g_file_test (configs, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("F2_CONFIGS_DIR is not set or missing");
    return;
  }
  for (v = 0; v < G_N_ELEMENTS (variants); v++) {
    char *dir = g_build_filename (configs, variants[v], NULL);
    GError *error = NULL;
    F2Tokenizer *tok;
    gint64 t0 = g_get_monotonic_time ();
    guint matched, total, i;

    if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
      g_print ("%s: no such directory\n", dir);
      g_free (dir);
      continue;
    }
    tok = f2_tokenizer_new_from_dir (dir, &error);
    g_assert_no_error (error);
    g_print ("%s tokenizer loaded in %.1f ms\n", variants[v],
        (g_get_monotonic_time () - t0) / 1000.0);
    g_assert_cmpuint (f2_tokenizer_vocab_size (tok), ==,
        f2_tokenizer_vocab_size (tiny));
    for (i = 0; i < f2_tokenizer_vocab_size (tok); i++)
      g_assert_cmpstr (f2_tokenizer_id_to_token (tok, i), ==,
          f2_tokenizer_id_to_token (tiny, i));
    matched = count_prompt_encodes (tok, &total);
    g_print ("%s: %u/%u prompts match\n", variants[v], matched, total);
    g_assert_cmpuint (matched, ==, total);
    f2_tokenizer_free (tok);
    g_free (dir);
  }
}

static void
expect_encode_ids (const char *text, const char *const *tokens)
{
  GError *error = NULL;
  GArray *got = f2_tokenizer_encode (tiny, text, &error);
  GArray *want = g_array_new (FALSE, FALSE, sizeof (gint32));
  gint32 id = F2_TOKENIZER_BOS_ID;
  guint i;

  g_assert_no_error (error);
  g_array_append_val (want, id);
  for (i = 0; tokens[i] != NULL; i++) {
    id = f2_tokenizer_token_to_id (tiny, tokens[i]);
    g_assert_cmpint (id, >=, 0);
    g_array_append_val (want, id);
  }
  id = F2_TOKENIZER_EOS_ID;
  g_array_append_val (want, id);
  if (!ids_equal (got, want)) {
    char *g = ids_to_string (got), *w = ids_to_string (want);

    g_error ("encode \"%s\": got %s, expected %s", text, g, w);
  }
  g_array_unref (got);
  g_array_unref (want);
}

/* Behaviour the golden data does not cover. */
static void
test_edges (void)
{
  static const char *const texts[] = {
    "", " ", "   ", "\n\n", " \n x", "a\u00a0b", "tab\t\tx  ",
    "don't 'S 'll'd '", "x123.5e-3 ½ Ⅻ", "日本語のテキスト",
    "emoji 👍🏽 family 👨‍👩‍👧", "Ünïcödé ümläuts", "mixed<tag>and</tag>",
    "\u200b zero width", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "?!?!?!...,,,", "\x01\x02\x7f control",
  };
  static const char *const mask[] = { "a", "<mask>", NULL };
  static const char *const mask_space[] = { "a", "<mask>", "Ġb", NULL };
  GError *error = NULL;
  gint32 odd[] = { 5, -3, 99999, 51289, 2 };
  char *text;
  guint i;

  /* byte-level BPE round-trips any text without added tokens */
  for (i = 0; i < G_N_ELEMENTS (texts); i++) {
    GArray *ids = f2_tokenizer_encode (tiny, texts[i], &error);

    g_assert_no_error (error);
    text = f2_tokenizer_decode_full (tiny, (const gint32 *) ids->data,
        ids->len, TRUE, FALSE);
    g_assert_cmpstr (text, ==, texts[i]);
    g_free (text);
    g_array_unref (ids);
  }

  /* a long piece (one word of 20000 letters) round-trips too */
  {
    GString *word = g_string_new (NULL);
    GArray *ids;

    for (i = 0; i < 20000; i++)
      g_string_append_c (word, "abcdefghij"[(i * 7 + i / 13) % 10]);
    ids = f2_tokenizer_encode (tiny, word->str, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (ids->len, <, word->len);
    text = f2_tokenizer_decode (tiny, (const gint32 *) ids->data, ids->len,
        TRUE);
    g_assert_cmpstr (text, ==, word->str);
    g_free (text);
    g_array_unref (ids);
    g_string_free (word, TRUE);
  }

  /* <mask> absorbs the spaces before it (lstrip in tokenizer.json) */
  expect_encode_ids ("a   <mask>", mask);
  expect_encode_ids ("a <mask> b", mask_space);
  /* added tokens are whole strings: <loc_1000> is plain text */
  {
    GArray *ids = f2_tokenizer_encode (tiny, "<loc_1><loc_1000>", &error);
    guint base = f2_tokenizer_token_to_id (tiny, "<od>");

    g_assert_no_error (error);
    g_assert_cmpuint (ids->len, >, 4);
    g_assert_cmpint (g_array_index (ids, gint32, 1), ==,
        f2_tokenizer_token_to_id (tiny, "<loc_1>"));
    for (i = 2; i + 1 < ids->len; i++)
      g_assert_cmpint (g_array_index (ids, gint32, i), <, base);
    g_array_unref (ids);
  }

  /* not UTF-8 */
  g_assert_null (f2_tokenizer_encode (tiny, "ab\xff", &error));
  g_assert_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_INVALID_TEXT);
  g_clear_error (&error);

  /* unknown ids are dropped */
  text = f2_tokenizer_decode (tiny, odd, G_N_ELEMENTS (odd), FALSE);
  g_assert_cmpstr (text, ==, " the</s>");
  g_free (text);
  text = f2_tokenizer_decode (tiny, NULL, 0, FALSE);
  g_assert_cmpstr (text, ==, "");
  g_free (text);
}

static void
write_file (const char *dir, const char *name, const char *contents)
{
  char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
  g_free (path);
}

static void
remove_file (const char *dir, const char *name)
{
  char *path = g_build_filename (dir, name, NULL);

  g_unlink (path);
  g_free (path);
}

static void
expect_load_error (const char *dir, gint code, const char *in_message)
{
  GError *error = NULL;
  F2Tokenizer *tok = f2_tokenizer_new_from_dir (dir, &error);

  g_assert_null (tok);
  g_assert_error (error, F2_TOKENIZER_ERROR, code);
  if (strstr (error->message, in_message) == NULL)
    g_error ("error \"%s\" does not name \"%s\"", error->message, in_message);
  g_error_free (error);
}

static void
test_load_errors (void)
{
  char *tmp = g_dir_make_tmp ("f2-tok-XXXXXX", NULL);
  guint i;
  static const char *const bad_json[] = {
    "{ not json",
    "[1, 2]",
    "{\"model\": 3}",
    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}, \"merges\": []}}",
    "{\"model\": {\"vocab\": {\"a\": 0}}}",
    "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
    "{\"model\": {\"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
  };

  g_assert_nonnull (tmp);
  expect_load_error ("/nonexistent/florence", F2_TOKENIZER_ERROR_NOT_FOUND,
      "/nonexistent/florence");
  expect_load_error (tmp, F2_TOKENIZER_ERROR_NOT_FOUND, "tokenizer.json");

  for (i = 0; i < G_N_ELEMENTS (bad_json); i++) {
    write_file (tmp, "tokenizer.json", bad_json[i]);
    expect_load_error (tmp, F2_TOKENIZER_ERROR_MALFORMED, "tokenizer.json");
  }
  remove_file (tmp, "tokenizer.json");

  /* vocab.json alone is not enough */
  write_file (tmp, "vocab.json", "{\"a\": 0}");
  expect_load_error (tmp, F2_TOKENIZER_ERROR_NOT_FOUND, "merges.txt");
  write_file (tmp, "merges.txt", "#version: 0.2\na b\n");
  expect_load_error (tmp, F2_TOKENIZER_ERROR_MALFORMED, "vocab.json");
  remove_file (tmp, "vocab.json");
  remove_file (tmp, "merges.txt");
  g_rmdir (tmp);
  g_free (tmp);
}

/* Loading @dir fails with @domain/@code and a message holding @a and @b. */
static void
expect_error (const char *dir, GQuark domain, gint code, const char *a,
    const char *b)
{
  GError *error = NULL;
  F2Tokenizer *tok = f2_tokenizer_new_from_dir (dir, &error);

  g_assert_null (tok);
  if (!g_error_matches (error, domain, code))
    g_error ("unexpected error %s/%d: %s", g_quark_to_string (error->domain),
        error->code, error->message);
  if (strstr (error->message, a) == NULL || (b && strstr (error->message, b) == NULL))
    g_error ("error \"%s\" does not name \"%s\" and \"%s\"", error->message, a, b);
  g_test_message ("ok: %s", error->message);
  g_error_free (error);
}

/* The golden tokenizer.json with added_tokens[0].id set to @id. */
static char *
tokenizer_with_added_id (gint64 id)
{
  char *path = f2_test_golden_path ("tiny/model/tokenizer.json");
  JsonNode *root = f2_test_load_json (path);
  JsonArray *added = json_object_get_array_member (json_node_get_object (root),
      "added_tokens");
  char *text;

  json_object_set_int_member (json_array_get_object_element (added, 0), "id", id);
  text = json_to_string (root, FALSE);
  json_node_unref (root);
  g_free (path);
  return text;
}

/* Hostile tokenizer files: ids that would make the tables grow to
 * gigabytes, nesting that would overflow the parser's stack, and paths
 * that are not regular files. Each is refused with the file named. */
static void
test_hostile_files (void)
{
  char *tmp = g_dir_make_tmp ("f2-tok-XXXXXX", NULL);
  char *json_path = g_build_filename (tmp, "tokenizer.json", NULL);
  GString *deep = g_string_new ("{\"model\": {\"vocab\": ");
  char *text;

  g_assert_nonnull (tmp);
  /* ids near 1e9: refused before any table is sized by them */
  write_file (tmp, "tokenizer.json", "{\"model\": {\"vocab\": {\"a\": 0, "
      "\"b\": 1000000000}, \"merges\": []}}");
  expect_error (tmp, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
      "tokenizer.json", "id 1000000000");
  remove_file (tmp, "tokenizer.json");
  write_file (tmp, "vocab.json", "{\"a\": 0, \"b\": 999999999}");
  write_file (tmp, "merges.txt", "#version: 0.2\n");
  expect_error (tmp, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
      "vocab.json", "id 999999999");
  text = tokenizer_with_added_id (1000000000);
  write_file (tmp, "tokenizer.json", text);
  g_free (text);
  expect_error (tmp, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
      "tokenizer.json", "id 1000000000");
  /* an id right after the vocabulary is what an added token may take */
  text = tokenizer_with_added_id (51289);
  write_file (tmp, "tokenizer.json", text);
  g_free (text);
  {
    GError *error = NULL;
    F2Tokenizer *tok = f2_tokenizer_new_from_dir (tmp, &error);
    g_assert_no_error (error);
    f2_tokenizer_free (tok);
  }

  /* nesting far past the parser's stack */
  for (guint i = 0; i < 1000000; i++)
    g_string_append_c (deep, '[');
  write_file (tmp, "tokenizer.json", deep->str);
  expect_error (tmp, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
      "tokenizer.json", "64 levels");
  remove_file (tmp, "tokenizer.json");
  write_file (tmp, "vocab.json", deep->str + strlen ("{\"model\": {\"vocab\": "));
  expect_error (tmp, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
      "vocab.json", "64 levels");

  /* not regular files: a FIFO (which must not block), a directory, a
   * dangling link (not "no tokenizer files") */
  g_assert_cmpint (mkfifo (json_path, 0600), ==, 0);
  expect_error (tmp, G_FILE_ERROR, G_FILE_ERROR_INVAL, json_path, "FIFO");
  g_unlink (json_path);
  g_assert_cmpint (g_mkdir (json_path, 0700), ==, 0);
  expect_error (tmp, G_FILE_ERROR, G_FILE_ERROR_ISDIR, json_path, "tokenizer.json");
  g_rmdir (json_path);
  g_assert_cmpint (symlink ("elsewhere/tokenizer.json", json_path), ==, 0);
  expect_error (tmp, G_FILE_ERROR, G_FILE_ERROR_NOENT, json_path, "dangling");
  g_unlink (json_path);
  remove_file (tmp, "vocab.json");
  g_assert_cmpint (symlink ("/dev/zero", json_path), ==, 0);
  expect_error (tmp, G_FILE_ERROR, G_FILE_ERROR_INVAL, json_path, "character device");
  g_unlink (json_path);

  remove_file (tmp, "merges.txt");
  g_rmdir (tmp);
  g_string_free (deep, TRUE);
  g_free (json_path);
  g_free (tmp);
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  JsonNode *root;
  char *path;
  gint64 t0;
  int ret;

  g_test_init (&argc, &argv, NULL);
  f2_test_require_golden_dir ();
  path = f2_test_golden_path ("tiny/prompts.json");
  root = f2_test_load_json (path);
  g_free (path);
  prompts_root = json_node_get_object (root);

  path = f2_test_golden_path ("tiny/model");
  t0 = g_get_monotonic_time ();
  tiny = f2_tokenizer_new_from_dir (path, &error);
  g_assert_no_error (error);
  g_print ("tiny tokenizer loaded in %.1f ms\n",
      (g_get_monotonic_time () - t0) / 1000.0);
  g_free (path);

  g_test_add_func ("/tokenizer/facts", test_facts);
  g_test_add_func ("/tokenizer/prompts", test_prompts);
  g_test_add_func ("/tokenizer/decodes", test_decodes);
  g_test_add_func ("/tokenizer/cases", test_cases);
  g_test_add_func ("/tokenizer/vocab-and-merges", test_vocab_and_merges);
  g_test_add_func ("/tokenizer/real", test_real_tokenizer);
  g_test_add_func ("/tokenizer/edges", test_edges);
  g_test_add_func ("/tokenizer/load-errors", test_load_errors);
  g_test_add_func ("/tokenizer/hostile-files", test_hostile_files);
  ret = g_test_run ();

  f2_tokenizer_free (tiny);
  json_node_unref (root);
  return ret;
}
