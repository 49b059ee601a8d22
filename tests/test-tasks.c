/* The task table and prompt construction against the reference processor's
 * tables and prompts (golden prompts.json and the cases/ files). */
#include "tasks.h"
#include "test-common.h"

#include <json-glib/json-glib.h>
#include <string.h>

static JsonObject *prompts_root;

/* Every task of the reference's tables is in ours with the same prompt,
 * input kind and post-processing, and nothing else is. */
static void
test_table (void)
{
  JsonObject *without = json_object_get_object_member (prompts_root,
      "task_prompts_without_inputs");
  JsonObject *with = json_object_get_object_member (prompts_root,
      "task_prompts_with_input");
  JsonObject *post = json_object_get_object_member (prompts_root,
      "tasks_answer_post_processing_type");
  guint i, n_checked = 0;

  g_assert_cmpuint (json_object_get_size (without)
      + json_object_get_size (with), ==, F2_TASK_COUNT);
  g_assert_cmpuint (json_object_get_size (post), ==, F2_TASK_COUNT);

  for (i = 0; i < F2_TASK_COUNT; i++) {
    const F2TaskInfo *info = f2_task_info (i);

    g_assert_nonnull (info);
    g_assert_cmpint (info->task, ==, i);
    g_assert_true (f2_task_lookup (info->token) == info);
    g_assert_true (f2_task_lookup (info->nick) == info);
    g_assert_cmpstr (f2_postprocess_type_name (info->postprocess), ==,
        json_object_get_string_member (post, info->token));
    if (info->input == F2_TASK_INPUT_NONE) {
      g_assert_true (json_object_has_member (without, info->token));
      g_assert_cmpstr (info->prompt, ==,
          json_object_get_string_member (without, info->token));
    } else {
      g_assert_true (json_object_has_member (with, info->token));
      g_assert_cmpstr (info->prompt, ==,
          json_object_get_string_member (with, info->token));
      /* region tasks are exactly the REGION_TO_* ones */
      g_assert_cmpint (info->input == F2_TASK_INPUT_REGION, ==,
          g_str_has_prefix (info->token, "<REGION_TO_"));
    }
    /* nick: the token's name in lower case with dashes */
    {
      char *nick = g_ascii_strdown (info->token + 1, strlen (info->token) - 2);

      g_strdelimit (nick, "_", '-');
      g_assert_cmpstr (info->nick, ==, nick);
      g_free (nick);
    }
    n_checked++;
  }
  g_assert_null (f2_task_info (F2_TASK_COUNT));
  g_assert_null (f2_task_lookup ("<NOPE>"));
  g_assert_null (f2_task_lookup ("OD"));
  g_assert_null (f2_task_lookup (NULL));
  g_test_message ("%u tasks match the reference tables", n_checked);
}

/* The processor emulation on every golden text argument. */
static void
test_processor_prompts (void)
{
  JsonArray *prompts = json_object_get_array_member (prompts_root, "prompts");
  guint i, n = json_array_get_length (prompts), matched = 0;

  for (i = 0; i < n; i++) {
    JsonObject *e = json_array_get_object_element (prompts, i);
    const char *arg = json_object_get_string_member (e, "text_arg");
    GError *error = NULL;
    char *prompt = f2_task_processor_prompt (arg, &error);

    if (json_object_has_member (e, "error")) {
      g_assert_null (prompt);
      g_assert_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNEXPECTED_TEXT);
      g_clear_error (&error);
    } else {
      g_assert_no_error (error);
      g_assert_cmpstr (prompt, ==, json_object_get_string_member (e,
              "prompt"));
    }
    g_free (prompt);
    matched++;
  }
  g_print ("processor prompts: %u/%u match\n", matched, n);
  g_assert_cmpuint (matched, ==, n);
}

/* f2_task_build_prompt on every golden entry that starts with a task token:
 * the same prompt, except where our API is stricter (missing text). */
static void
test_build_prompts (void)
{
  JsonArray *prompts = json_object_get_array_member (prompts_root, "prompts");
  guint i, n = json_array_get_length (prompts), matched = 0, used = 0;

  for (i = 0; i < n; i++) {
    JsonObject *e = json_array_get_object_element (prompts, i);
    const char *arg = json_object_get_string_member (e, "text_arg");
    const char *close = strchr (arg, '>');
    const F2TaskInfo *info;
    GError *error = NULL;
    char *token, *prompt;
    const char *text;

    if (arg[0] != '<' || close == NULL)
      continue;
    token = g_strndup (arg, close + 1 - arg);
    info = f2_task_lookup (token);
    g_free (token);
    if (info == NULL)
      continue;
    text = close + 1;
    used++;

    prompt = f2_task_build_prompt (info->task, text, &error);
    if (json_object_has_member (e, "error")) {
      g_assert_null (prompt);
      g_assert_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNEXPECTED_TEXT);
    } else if (info->input != F2_TASK_INPUT_NONE && *text == '\0') {
      g_assert_null (prompt);
      g_assert_error (error, F2_TASK_ERROR, F2_TASK_ERROR_MISSING_TEXT);
    } else {
      g_assert_no_error (error);
      g_assert_cmpstr (prompt, ==, json_object_get_string_member (e,
              "prompt"));
    }
    g_clear_error (&error);
    g_free (prompt);
    matched++;
  }
  g_print ("task prompts: %u/%u match\n", matched, used);
  g_assert_cmpuint (used, >=, F2_TASK_COUNT);
}

/* The prompt of every golden case (task + text_input). */
static void
test_case_prompts (void)
{
  char *dir = f2_test_golden_path ("tiny/cases");
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL) {
    char *path;
    JsonNode *root;
    JsonObject *c;
    const F2TaskInfo *info;
    const char *text = NULL;
    GError *error = NULL;
    char *prompt;

    if (!g_str_has_suffix (name, ".json"))
      continue;
    path = g_build_filename (dir, name, NULL);
    root = f2_test_load_json (path);
    c = json_node_get_object (root);
    info = f2_task_lookup (json_object_get_string_member (c, "task"));
    g_assert_nonnull (info);
    if (!json_object_get_null_member (c, "text_input"))
      text = json_object_get_string_member (c, "text_input");
    prompt = f2_task_build_prompt (info->task, text, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (prompt, ==, json_object_get_string_member (c, "prompt"));
    g_free (prompt);
    json_node_unref (root);
    g_free (path);
    n++;
  }
  g_dir_close (d);
  g_free (dir);
  g_print ("case prompts: %u/%u match\n", n, n);
  g_assert_cmpuint (n, >, 0);
}

/* The task token inside the text is dropped, as the processor does. */
static void
test_task_token_in_text (void)
{
  const F2TaskInfo *info = f2_task_info (F2_TASK_OPEN_VOCABULARY_DETECTION);
  GString *expected = g_string_new (info->prompt);
  GError *error = NULL;
  char *prompt;

  g_string_replace (expected, "{input}", "a car", 0);
  prompt = f2_task_build_prompt (info->task,
      "<OPEN_VOCABULARY_DETECTION>a <OPEN_VOCABULARY_DETECTION>car", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (prompt, ==, expected->str);
  g_free (prompt);

  /* a token of a task without input inside the text: the processor asserts */
  prompt = f2_task_build_prompt (info->task, "a car <OD>", &error);
  g_assert_null (prompt);
  g_assert_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNEXPECTED_TEXT);
  g_clear_error (&error);
  g_string_free (expected, TRUE);
}

static void
expect_error (F2Task task, const char *text, gint code, const char *in_message)
{
  GError *error = NULL;
  char *prompt = f2_task_build_prompt (task, text, &error);

  if (prompt != NULL)
    g_error ("task %d text \"%s\": expected error %d, got prompt \"%s\"",
        task, text, code, prompt);
  g_assert_error (error, F2_TASK_ERROR, code);
  if (in_message != NULL && strstr (error->message, in_message) == NULL)
    g_error ("error message \"%s\" lacks \"%s\"", error->message, in_message);
  g_error_free (error);
}

static void
test_errors (void)
{
  static const char *const bad_regions[] = {
    "<loc_1000><loc_1><loc_2><loc_3>",
    "<loc_1><loc_2><loc_3>",
    "<loc_1><loc_2><loc_3><loc_4><loc_5>",
    "garbage",
    "<loc_1><loc_2><loc_3><loc_4> and text",
    "<loc_-1><loc_2><loc_3><loc_4>",
    "<loc_01><loc_2><loc_3><loc_4>",
    "<loc_><loc_2><loc_3><loc_4>",
    "<loc_1 ><loc_2><loc_3><loc_4>",
    "loc_1 loc_2 loc_3 loc_4",
    "10 20 30 40",
  };
  static const F2Task region_tasks[] = {
    F2_TASK_REGION_TO_SEGMENTATION, F2_TASK_REGION_TO_CATEGORY,
    F2_TASK_REGION_TO_DESCRIPTION, F2_TASK_REGION_TO_OCR,
  };
  GError *error = NULL;
  guint i, j;

  expect_error (F2_TASK_COUNT, NULL, F2_TASK_ERROR_UNKNOWN_TASK, NULL);
  expect_error ((F2Task) - 1, NULL, F2_TASK_ERROR_UNKNOWN_TASK, NULL);
  g_assert_null (f2_task_find ("<NOT_A_TASK>", &error));
  g_assert_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNKNOWN_TASK);
  g_assert_nonnull (strstr (error->message, "open-vocabulary-detection"));
  g_clear_error (&error);
  g_assert_true (f2_task_find ("ocr-with-region", &error) ==
      f2_task_info (F2_TASK_OCR_WITH_REGION));
  g_assert_no_error (error);

  for (i = 0; i < F2_TASK_COUNT; i++) {
    const F2TaskInfo *info = f2_task_info (i);

    if (info->input == F2_TASK_INPUT_NONE) {
      char *prompt;

      expect_error (i, "a car", F2_TASK_ERROR_UNEXPECTED_TEXT, info->token);
      expect_error (i, " ", F2_TASK_ERROR_UNEXPECTED_TEXT, NULL);
      expect_error (i, info->token, F2_TASK_ERROR_UNEXPECTED_TEXT, NULL);
      prompt = f2_task_build_prompt (i, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (prompt, ==, info->prompt);
      g_free (prompt);
      prompt = f2_task_build_prompt (i, "", &error);
      g_assert_no_error (error);
      g_assert_cmpstr (prompt, ==, info->prompt);
      g_free (prompt);
    } else {
      expect_error (i, NULL, F2_TASK_ERROR_MISSING_TEXT, info->token);
      expect_error (i, "", F2_TASK_ERROR_MISSING_TEXT, NULL);
      expect_error (i, "  \t", F2_TASK_ERROR_MISSING_TEXT, NULL);
      expect_error (i, info->token, F2_TASK_ERROR_MISSING_TEXT, NULL);
    }
  }

  for (i = 0; i < G_N_ELEMENTS (region_tasks); i++) {
    for (j = 0; j < G_N_ELEMENTS (bad_regions); j++)
      expect_error (region_tasks[i], bad_regions[j],
          F2_TASK_ERROR_BAD_REGION,
          "<loc_x1><loc_y1><loc_x2><loc_y2>, each 0..999");
  }
}

/* Region forms the processor accepts: whitespace around and between. */
static void
test_good_regions (void)
{
  static const char *const good[] = {
    "<loc_0><loc_0><loc_999><loc_999>",
    " <loc_1> <loc_2> <loc_3> <loc_4>",
    "<loc_10><loc_20><loc_30><loc_40>\n",
  };
  const F2TaskInfo *info = f2_task_info (F2_TASK_REGION_TO_CATEGORY);
  guint i;

  for (i = 0; i < G_N_ELEMENTS (good); i++) {
    GError *error = NULL;
    GString *expected = g_string_new (info->prompt);
    char *prompt = f2_task_build_prompt (info->task, good[i], &error);

    g_assert_no_error (error);
    g_string_replace (expected, "{input}", good[i], 0);
    g_assert_cmpstr (prompt, ==, expected->str);
    g_string_free (expected, TRUE);
    g_free (prompt);
  }
}

int
main (int argc, char **argv)
{
  JsonNode *root;
  char *path;
  int ret;

  g_test_init (&argc, &argv, NULL);
  f2_test_require_golden_dir ();
  path = f2_test_golden_path ("tiny/prompts.json");
  root = f2_test_load_json (path);
  g_free (path);
  prompts_root = json_node_get_object (root);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member
          (prompts_root, "prompts")), >, 0);

  g_test_add_func ("/tasks/table", test_table);
  g_test_add_func ("/tasks/processor-prompts", test_processor_prompts);
  g_test_add_func ("/tasks/build-prompts", test_build_prompts);
  g_test_add_func ("/tasks/case-prompts", test_case_prompts);
  g_test_add_func ("/tasks/task-token-in-text", test_task_token_in_text);
  g_test_add_func ("/tasks/errors", test_errors);
  g_test_add_func ("/tasks/good-regions", test_good_regions);
  ret = g_test_run ();
  json_node_unref (root);
  return ret;
}
