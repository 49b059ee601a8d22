/* Post-processing against the reference: every hand-written text of
 * postprocess.json and every generated text of the golden cases (greedy,
 * beam, and beam with transition scores) must give the reference's
 * dictionary: same keys in the same order, same strings, float32-equal
 * numbers (scores: equal doubles). Then robustness on hostile texts. */
#include <json-glib/json-glib.h>
#include <string.h>

#include "postprocess.h"
#include "test-common.h"

static guint n_passed, n_failed;

/* Compares @result (NULL when it failed with @error) with @want, both as a
 * JsonNode and after a trip through the JSON string. */
static void
check_result (const char *what, F2Result *result, GError *error,
    JsonNode *want)
{
  g_autoptr (GString) why = g_string_new (NULL);
  g_autoptr (JsonNode) got = NULL;
  g_autoptr (JsonNode) reparsed = NULL;
  g_autofree char *text = NULL;
  g_autoptr (F2Result) copy = NULL;
  g_autoptr (JsonNode) copied = NULL;

  if (result == NULL) {
    g_printerr ("FAIL %s: %s\n", what, error ? error->message : "no result");
    n_failed++;
    return;
  }

  got = f2_result_to_json (result);
  text = f2_result_to_json_string (result, FALSE);
  reparsed = json_from_string (text, NULL);
  copy = f2_result_copy (result);
  copied = f2_result_to_json (copy);

  if (!f2_test_json_equal (got, want, "$", FALSE, why)) {
    g_printerr ("FAIL %s: %s\n", what, why->str);
    n_failed++;
  } else if (reparsed == NULL || !f2_test_json_equal (reparsed, want, "$", FALSE, why)) {
    g_printerr ("FAIL %s (after JSON string round trip): %s\n", what,
        reparsed ? why->str : "does not parse");
    n_failed++;
  } else if (!f2_test_json_equal (copied, want, "$", FALSE, why)) {
    g_printerr ("FAIL %s (copy): %s\n", what, why->str);
    n_failed++;
  } else {
    n_passed++;
  }
}

/* ---- postprocess.json ------------------------------------------------ */

static void
test_hand_written_cases (JsonNode *types)
{
  g_autofree char *path = f2_test_golden_path ("tiny/postprocess.json");
  g_autoptr (JsonNode) root = f2_test_load_json (path);
  JsonArray *cases = json_object_get_array_member (json_node_get_object (root),
      "cases");
  guint before = n_passed;

  g_assert_cmpuint (json_array_get_length (cases), >, 0);
  for (guint i = 0; i < json_array_get_length (cases); i++) {
    JsonObject *c = json_array_get_object_element (cases, i);
    const char *task = json_object_get_string_member (c, "task");
    const char *text = json_object_get_string_member (c, "text");
    const char *type_name =
        json_object_get_string_member (c, "post_processing_type");
    JsonArray *size = json_object_get_array_member (c, "image_size_wh");
    F2PostProcessType type;
    g_autoptr (F2Result) result = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree char *what = g_strdup_printf ("postprocess.json case %u (%s)",
        i, task);

    /* The recorded type is what the table resolves the token to. */
    g_assert_true (f2_postprocess_type_from_string (type_name, &type));
    g_assert_cmpint (type, ==, f2_postprocess_type_for_task (task));
    if (json_object_has_member (json_node_get_object (types), task))
      g_assert_cmpstr (type_name, ==,
          json_object_get_string_member (json_node_get_object (types), task));

    result = f2_postprocess (task, type, text,
        json_array_get_int_element (size, 0),
        json_array_get_int_element (size, 1), &error);
    check_result (what, result, error,
        json_object_get_member (c, "result"));
  }
  g_print ("postprocess.json: %u of %u cases match\n", n_passed - before,
      json_array_get_length (cases));
}

/* ---- per-token texts for the sequence path ----------------------------- */

/* What decode_with_spans() writes for each id: special tokens verbatim,
 * the others byte-level decoded one by one (from_utf8_lossy). */
typedef struct {
  GHashTable *by_id;   /* id -> token string, byte-level alphabet */
  GHashTable *special; /* ids kept verbatim */
  guchar byte_of[512]; /* byte-level alphabet code point -> byte */
} Vocab;

static void
vocab_init (Vocab *vocab, JsonNode *prompts)
{
  g_autofree char *path = f2_test_golden_path ("tiny/model/vocab.json");
  g_autofree char *tok_path = f2_test_golden_path ("tiny/model/tokenizer.json");
  g_autoptr (JsonNode) root = f2_test_load_json (path);
  g_autoptr (JsonNode) tok = f2_test_load_json (tok_path);
  JsonObject *tokenizer = json_object_get_object_member (
      json_node_get_object (prompts), "tokenizer");
  JsonObject *added = json_object_get_object_member (tokenizer,
      "added_tokens_by_processor");
  JsonArray *tok_added = json_object_get_array_member (
      json_node_get_object (tok), "added_tokens");
  g_autoptr (GList) members = NULL;
  guint n = 0;

  vocab->by_id = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  vocab->special = g_hash_table_new (NULL, NULL);

  members = json_object_get_members (json_node_get_object (root));
  for (GList *l = members; l != NULL; l = l->next) {
    gint64 id = json_object_get_int_member (json_node_get_object (root),
        l->data);
    g_hash_table_insert (vocab->by_id, GINT_TO_POINTER (id),
        g_strdup (l->data));
  }
  g_clear_pointer (&members, g_list_free);
  members = json_object_get_members (added);
  for (GList *l = members; l != NULL; l = l->next) {
    gint64 id = g_ascii_strtoll (l->data, NULL, 10);

    g_hash_table_insert (vocab->by_id, GINT_TO_POINTER (id),
        g_strdup (json_object_get_string_member (added, l->data)));
    g_hash_table_add (vocab->special, GINT_TO_POINTER (id));
  }
  for (guint i = 0; i < json_array_get_length (tok_added); i++) {
    JsonObject *t = json_array_get_object_element (tok_added, i);
    gint64 id = json_object_get_int_member (t, "id");

    g_hash_table_insert (vocab->by_id, GINT_TO_POINTER (id),
        g_strdup (json_object_get_string_member (t, "content")));
    if (json_object_get_boolean_member (t, "special"))
      g_hash_table_add (vocab->special, GINT_TO_POINTER (id));
  }

  /* GPT-2's bytes_to_unicode(), inverted. */
  memset (vocab->byte_of, 0, sizeof vocab->byte_of);
  for (guint b = 0; b < 256; b++) {
    gboolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172)
        || b >= 174;

    if (printable)
      vocab->byte_of[b] = b;
    else
      vocab->byte_of[256 + n++] = b;
  }
}

static void
vocab_clear (Vocab *vocab)
{
  g_hash_table_unref (vocab->by_id);
  g_hash_table_unref (vocab->special);
}

/* Length of the valid UTF-8 sequence at @p (1..4), or the negated length of
 * its longest valid prefix (at least 1): Unicode's "maximal subpart". */
static int
utf8_sequence (const guchar *p, gsize left)
{
  guchar b = p[0];
  guint need;
  guchar lo = 0x80, hi = 0xbf;

  if (b < 0x80)
    return 1;
  if (b >= 0xc2 && b <= 0xdf)
    need = 1;
  else if (b >= 0xe0 && b <= 0xef) {
    need = 2;
    lo = b == 0xe0 ? 0xa0 : 0x80;
    hi = b == 0xed ? 0x9f : 0xbf;
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 3;
    lo = b == 0xf0 ? 0x90 : 0x80;
    hi = b == 0xf4 ? 0x8f : 0xbf;
  } else
    return -1;

  for (guint i = 1; i <= need; i++) {
    guchar c;

    if (i >= left)
      return -(int) i;
    c = p[i];
    if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xbf))
      return -(int) i;
  }
  return need + 1;
}

static char *
vocab_piece (const Vocab *vocab, gint64 id)
{
  const char *token = g_hash_table_lookup (vocab->by_id, GINT_TO_POINTER (id));
  GString *bytes, *out;

  g_assert_nonnull (token);
  if (g_hash_table_contains (vocab->special, GINT_TO_POINTER (id)))
    return g_strdup (token);

  bytes = g_string_new (NULL);
  for (const char *p = token; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);

    g_assert_cmpuint (c, <, 512);
    g_string_append_c (bytes, (char) vocab->byte_of[c]);
  }
  out = g_string_new (NULL);
  for (gsize i = 0; i < bytes->len;) {
    int n = utf8_sequence ((const guchar *) bytes->str + i, bytes->len - i);

    if (n > 0)
      g_string_append_len (out, bytes->str + i, n);
    else
      g_string_append_unichar (out, 0xfffd);
    i += ABS (n);
  }
  g_string_free (bytes, TRUE);
  return g_string_free (out, FALSE);
}

/* ---- the case files ---------------------------------------------------- */

static void
test_generated_cases (JsonNode *types, const Vocab *vocab,
    F2Tokenizer *tokenizer)
{
  g_autofree char *dir_path = f2_test_golden_path ("tiny/cases");
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  guint before = n_passed, n_checks = 0, n_scored = 0;
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".json"))
      g_ptr_array_add (names, g_strdup (name));
  g_assert_cmpuint (names->len, >, 0);

  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_build_filename (dir_path, names->pdata[i], NULL);
    g_autoptr (JsonNode) root = f2_test_load_json (path);
    JsonObject *c = json_node_get_object (root);
    const char *task = json_object_get_string_member (c, "task");
    JsonArray *size = json_object_get_array_member (c, "image_size_wh");
    int width = json_array_get_int_element (size, 0);
    int height = json_array_get_int_element (size, 1);
    JsonObject *type_map = json_node_get_object (types);
    F2PostProcessType type;
    const char *const runs[] = { "greedy", "beam" };

    g_assert_true (f2_postprocess_type_from_string (
            json_object_has_member (type_map, task) ?
            json_object_get_string_member (type_map, task) : "pure_text",
            &type));
    g_assert_cmpint (type, ==, f2_postprocess_type_for_task (task));

    for (guint r = 0; r < G_N_ELEMENTS (runs); r++) {
      JsonObject *run = json_object_get_object_member (c, runs[r]);
      JsonObject *expected = json_object_get_object_member (run,
          "post_process");
      g_autoptr (F2Result) result = NULL;
      g_autoptr (GError) error = NULL;
      g_autofree char *what = g_strdup_printf ("%s %s", (char *)
          names->pdata[i], runs[r]);

      /* An error recorded by the reference would be {"error": ...}. */
      g_assert_true (json_object_has_member (expected, "ok"));
      result = f2_postprocess (task, type,
          json_object_get_string_member (run, "text"), width, height, &error);
      check_result (what, result, error,
          json_object_get_member (expected, "ok"));
      n_checks++;
    }

    /* The sequence path with beam transition scores. */
    {
      JsonObject *beam = json_object_get_object_member (c, "beam");
      JsonArray *sequence = json_object_get_array_member (beam, "sequence");
      JsonArray *transition = json_object_get_array_member (beam,
          "transition_scores");
      JsonObject *expected = json_object_get_object_member (beam,
          "post_process_with_scores");
      guint n = json_array_get_length (sequence) - 1;
      g_autoptr (GPtrArray) pieces = g_ptr_array_new_with_free_func (g_free);
      g_autofree float *scores = g_new (float, n);
      g_autoptr (F2Result) result = NULL;
      g_autoptr (GError) error = NULL;
      g_autofree char *what = g_strdup_printf ("%s beam with scores",
          (char *) names->pdata[i]);

      g_assert_cmpuint (json_array_get_length (transition), ==, n);
      for (guint t = 0; t < n; t++) {
        g_ptr_array_add (pieces, vocab_piece (vocab,
                json_array_get_int_element (sequence, t + 1)));
        scores[t] = json_array_get_double_element (transition, t);
      }
      g_assert_true (json_object_has_member (expected, "ok"));
      result = f2_postprocess_tokens (task, type,
          (const char *const *) pieces->pdata, scores, n, width, height,
          &error);
      check_result (what, result, error,
          json_object_get_member (expected, "ok"));
      n_checks++;
      if (result && result->n_regions > 0 && result->regions[0].has_score)
        n_scored++;

      /* The same through the library's tokenizer. */
      {
        g_autofree gint32 *ids = g_new (gint32, n + 1);
        g_autoptr (F2Result) seq_result = NULL;
        g_autoptr (GError) seq_error = NULL;
        g_autofree char *seq_what = g_strdup_printf ("%s beam sequence with "
            "scores", (char *) names->pdata[i]);

        for (guint t = 0; t <= n; t++)
          ids[t] = json_array_get_int_element (sequence, t);
        seq_result = f2_postprocess_sequence (task, type, tokenizer, ids,
            n + 1, scores, width, height, &seq_error);
        check_result (seq_what, seq_result, seq_error,
            json_object_get_member (expected, "ok"));
        n_checks++;
      }
    }
  }
  g_print ("cases: %u of %u results match (%u with scores)\n",
      n_passed - before, n_checks, n_scored);
  /* The golden set has box tasks with scores: make sure they were seen. */
  g_assert_cmpuint (n_scored, >, 0);
}

/* ---- robustness ------------------------------------------------------ */

static const F2PostProcessType all_types[] = {
  F2_POSTPROCESS_PURE_TEXT,
  F2_POSTPROCESS_OCR,
  F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES,
  F2_POSTPROCESS_PHRASE_GROUNDING,
  F2_POSTPROCESS_POLYGONS,
  F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS,
  F2_POSTPROCESS_BBOXES,
};

/* Anything that comes back must be well formed. */
static void
check_well_formed (F2Result *result, GError *error)
{
  g_autoptr (JsonNode) node = NULL;
  g_autofree char *text = NULL;

  if (result == NULL) {
    g_assert_nonnull (error);
    g_assert_true (error->domain == F2_POSTPROCESS_ERROR);
    return;
  }
  g_assert_null (error);
  for (guint i = 0; i < result->n_regions; i++) {
    const F2Region *region = &result->regions[i];

    g_assert_nonnull (region->label);
    g_assert_true (g_utf8_validate (region->label, -1, NULL));
    for (guint j = 0; j < region->n_polygons; j++)
      g_assert_cmpuint (region->polygons[j].n_coords % 2, ==, 0);
  }
  if (result->text != NULL)
    g_assert_true (g_utf8_validate (result->text, -1, NULL));
  node = f2_result_to_json (result);
  text = f2_result_to_json_string (result, TRUE);
  g_assert_nonnull (node);
  g_assert_nonnull (text);
}

static void
run_all_types (const char *text)
{
  for (guint t = 0; t < G_N_ELEMENTS (all_types); t++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (F2Result) result = f2_postprocess ("<TASK>", all_types[t],
        text, 640, 480, &error);

    check_well_formed (result, error);
  }
}

static void
test_hostile_texts (void)
{
  static const char *const texts[] = {
    "", "<", ">", "<<<<", "<loc_", "<loc_>", "<loc_12", "<loc_-1>",
    "<loc_ 1>", "</s>", "<s>", "<pad>", "<poly>", "</poly>", "<sep>",
    "a<loc_1><loc_2><loc_3>", "a<loc_1><loc_2><loc_3><loc_4",
    "<poly><loc_1><loc_2><loc_3><loc_4>",
    "x<poly><loc_1><loc_2><loc_3><loc_4></poly",
    "x</poly><loc_1><loc_2><loc_3><poly>",
    "<loc_1><sep><sep><sep><sep>", "<sep><sep><sep><sep>",
    "a\n<loc_1><loc_2><loc_3><loc_4>\n",
    "\n\n\n<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8>",
    "a\nb<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8>",
    "\xff\xfe<loc_1><loc_2><loc_3><loc_4>",
    "caf\xc3<loc_1><loc_2><loc_3><loc_4>",
    "\xe3\x80\x80\n x<loc_1><loc_2><loc_3><loc_4>",
    "a<loc_\xd9\xa3><loc_2><loc_3><loc_4>",
    "a<loc_0000000000000000000000000001><loc_2><loc_3><loc_4>",
    "a<loc_9223372036854775807><loc_2><loc_3><loc_4>",
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    run_all_types (texts[i]);
}

/* Bins beyond 64 bits fail cleanly where the reference fails, and are
 * ignored where it never converts them. */
static void
test_huge_numbers (void)
{
  const char *huge = "a<loc_99999999999999999999999999><loc_2><loc_3><loc_4>";
  g_autoptr (GError) error = NULL;
  g_autoptr (F2Result) result = NULL;
  g_autoptr (F2Result) text_result = NULL;
  g_autoptr (F2Result) polygon_result = NULL;
  g_autoptr (GString) long_digits = g_string_new ("x<loc_");

  result = f2_postprocess ("<OD>", F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES,
      huge, 640, 480, &error);
  g_assert_null (result);
  g_assert_error (error, F2_POSTPROCESS_ERROR,
      F2_POSTPROCESS_ERROR_BAD_LOCATION);
  g_clear_error (&error);

  text_result = f2_postprocess ("<CAPTION>", F2_POSTPROCESS_PURE_TEXT, huge,
      640, 480, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (text_result->text, ==, huge);

  /* The unpaired last bin of a polygon is dropped before conversion. */
  polygon_result = f2_postprocess ("<REGION_TO_SEGMENTATION>",
      F2_POSTPROCESS_POLYGONS,
      "<loc_1><loc_2><loc_3><loc_4><loc_99999999999999999999999999>", 640,
      480,
      &error);
  g_assert_no_error (error);
  g_assert_cmpuint (polygon_result->n_regions, ==, 1);
  g_assert_cmpuint (polygon_result->regions[0].polygons[0].n_coords, ==, 4);

  for (guint i = 0; i < 100000; i++)
    g_string_append_c (long_digits, '7');
  g_string_append (long_digits, "><loc_1><loc_2><loc_3>");
  run_all_types (long_digits->str);
}

static void
test_bad_arguments (void)
{
  g_autoptr (GError) error = NULL;
  F2Result *result;
  const char *pieces[] = { "<s>", "a" };

  result = f2_postprocess ("<OD>", F2_POSTPROCESS_BBOXES, "", 0, 480, &error);
  g_assert_null (result);
  g_assert_error (error, F2_POSTPROCESS_ERROR,
      F2_POSTPROCESS_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  result = f2_postprocess ("<OD>", (F2PostProcessType) 99, "", 640, 480,
      &error);
  g_assert_null (result);
  g_assert_error (error, F2_POSTPROCESS_ERROR,
      F2_POSTPROCESS_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  result = f2_postprocess_tokens ("<OD>", F2_POSTPROCESS_BBOXES, pieces,
      NULL, 2, 640, -5, &error);
  g_assert_null (result);
  g_assert_error (error, F2_POSTPROCESS_ERROR,
      F2_POSTPROCESS_ERROR_INVALID_ARGUMENT);
}

/* Random texts built from the pieces the parsers look for, on both
 * paths. */
static void
test_random_texts (void)
{
  static const char *const alphabet[] = {
    "<loc_1>", "<loc_999>", "<loc_1000>", "<loc_", ">", "<", "<sep>",
    "<poly>", "</poly>", "<s>", "</s>", "<pad>", "a", "car", " ", "\n",
    "\xc3\xa9", "\xe3\x80\x80", "it", "loc_4>", "<od>", "\xff",
  };
  g_autoptr (GRand) rand = g_rand_new_with_seed (20240601);

  for (guint iter = 0; iter < 3000; iter++) {
    guint n = g_rand_int_range (rand, 0, 40);
    g_autoptr (GPtrArray) pieces = g_ptr_array_new ();
    g_autofree float *scores = g_new (float, MAX (n, 1));
    g_autoptr (GString) text = g_string_new (NULL);

    for (guint i = 0; i < n; i++) {
      const char *piece =
          alphabet[g_rand_int_range (rand, 0, G_N_ELEMENTS (alphabet))];

      g_ptr_array_add (pieces, (gpointer) piece);
      g_string_append (text, piece);
      scores[i] = -(float) g_rand_double_range (rand, 0.0, 10.0);
    }
    run_all_types (text->str);
    for (guint t = 0; t < G_N_ELEMENTS (all_types); t++) {
      g_autoptr (GError) error = NULL;
      g_autoptr (F2Result) result = f2_postprocess_tokens ("<OD>",
          all_types[t], (const char *const *) pieces->pdata,
          iter % 2 ? scores : NULL, n, 333, 517, &error);

      check_well_formed (result, error);
    }
  }
}

int
main (int argc, char **argv)
{
  g_autofree char *prompts_path = NULL;
  g_autoptr (JsonNode) prompts = NULL;
  JsonNode *types;
  Vocab vocab;
  g_autofree char *model_dir = NULL;
  F2Tokenizer *tokenizer;
  GError *error = NULL;

  g_test_init (&argc, &argv, NULL);

  test_hostile_texts ();
  test_huge_numbers ();
  test_bad_arguments ();
  test_random_texts ();
  g_print ("robustness checks done\n");

  f2_test_require_golden_dir ();

  prompts_path = f2_test_golden_path ("tiny/prompts.json");
  prompts = f2_test_load_json (prompts_path);
  types = json_object_get_member (json_node_get_object (prompts),
      "tasks_answer_post_processing_type");
  vocab_init (&vocab, prompts);
  model_dir = f2_test_golden_path ("tiny/model");
  tokenizer = f2_tokenizer_new_from_dir (model_dir, &error);
  g_assert_no_error (error);

  test_hand_written_cases (types);
  test_generated_cases (types, &vocab, tokenizer);
  vocab_clear (&vocab);
  f2_tokenizer_free (tokenizer);

  g_print ("%u passed, %u failed\n", n_passed, n_failed);
  return n_failed == 0 ? 0 : 1;
}
