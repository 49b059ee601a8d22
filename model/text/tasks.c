/* The Florence-2 task table and prompt construction, as Florence2Processor
 * does it: a task token alone is replaced by its fixed prompt; a task token
 * followed by text becomes the task's template with "{input}" replaced by the
 * text (the task token itself removed from it). */
#include "tasks.h"

#include <string.h>

G_DEFINE_QUARK (f2 - task - error - quark, f2_task_error)

#define INPUT_PLACEHOLDER "{input}"

/* In F2Task order. */
static const F2TaskInfo task_table[F2_TASK_COUNT] = {
  {F2_TASK_OD, "<OD>", "od",
      "Locate the objects with category name in the image.",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES},
  {F2_TASK_CAPTION, "<CAPTION>", "caption",
      "What does the image describe?",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_PURE_TEXT},
  {F2_TASK_DETAILED_CAPTION, "<DETAILED_CAPTION>", "detailed-caption",
      "Describe in detail what is shown in the image.",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_PURE_TEXT},
  {F2_TASK_MORE_DETAILED_CAPTION, "<MORE_DETAILED_CAPTION>",
        "more-detailed-caption",
        "Describe with a paragraph what is shown in the image.",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_PURE_TEXT},
  {F2_TASK_DENSE_REGION_CAPTION, "<DENSE_REGION_CAPTION>",
        "dense-region-caption",
        "Locate the objects in the image, with their descriptions.",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES},
  {F2_TASK_REGION_PROPOSAL, "<REGION_PROPOSAL>", "region-proposal",
      "Locate the region proposals in the image.",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_BBOXES},
  {F2_TASK_CAPTION_TO_PHRASE_GROUNDING, "<CAPTION_TO_PHRASE_GROUNDING>",
        "caption-to-phrase-grounding",
        "Locate the phrases in the caption: {input}",
      F2_TASK_INPUT_TEXT, F2_POSTPROCESS_PHRASE_GROUNDING},
  {F2_TASK_REFERRING_EXPRESSION_SEGMENTATION,
        "<REFERRING_EXPRESSION_SEGMENTATION>",
        "referring-expression-segmentation",
        "Locate {input} in the image with mask",
      F2_TASK_INPUT_TEXT, F2_POSTPROCESS_POLYGONS},
  {F2_TASK_REGION_TO_SEGMENTATION, "<REGION_TO_SEGMENTATION>",
        "region-to-segmentation",
        "What is the polygon mask of region {input}",
      F2_TASK_INPUT_REGION, F2_POSTPROCESS_POLYGONS},
  {F2_TASK_OPEN_VOCABULARY_DETECTION, "<OPEN_VOCABULARY_DETECTION>",
        "open-vocabulary-detection",
        "Locate {input} in the image.",
        F2_TASK_INPUT_TEXT,
      F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS},
  {F2_TASK_REGION_TO_CATEGORY, "<REGION_TO_CATEGORY>", "region-to-category",
        "What is the region {input}?",
      F2_TASK_INPUT_REGION, F2_POSTPROCESS_PURE_TEXT},
  {F2_TASK_REGION_TO_DESCRIPTION, "<REGION_TO_DESCRIPTION>",
        "region-to-description",
        "What does the region {input} describe?",
      F2_TASK_INPUT_REGION, F2_POSTPROCESS_PURE_TEXT},
  {F2_TASK_REGION_TO_OCR, "<REGION_TO_OCR>", "region-to-ocr",
        "What text is in the region {input}?",
      F2_TASK_INPUT_REGION, F2_POSTPROCESS_PURE_TEXT},
  {F2_TASK_OCR, "<OCR>", "ocr",
        "What is the text in the image?",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_PURE_TEXT},
  {F2_TASK_OCR_WITH_REGION, "<OCR_WITH_REGION>", "ocr-with-region",
        "What is the text in the image, with regions?",
      F2_TASK_INPUT_NONE, F2_POSTPROCESS_OCR},
};

/* The order in which the processor tries the task tokens (the order of its
 * two prompt dictionaries); it matters when a text holds several. */
static const F2Task processor_order_without_input[] = {
  F2_TASK_OCR, F2_TASK_OCR_WITH_REGION, F2_TASK_CAPTION,
  F2_TASK_DETAILED_CAPTION, F2_TASK_MORE_DETAILED_CAPTION, F2_TASK_OD,
  F2_TASK_DENSE_REGION_CAPTION, F2_TASK_REGION_PROPOSAL,
};

static const F2Task processor_order_with_input[] = {
  F2_TASK_CAPTION_TO_PHRASE_GROUNDING,
  F2_TASK_REFERRING_EXPRESSION_SEGMENTATION, F2_TASK_REGION_TO_SEGMENTATION,
  F2_TASK_OPEN_VOCABULARY_DETECTION, F2_TASK_REGION_TO_CATEGORY,
  F2_TASK_REGION_TO_DESCRIPTION, F2_TASK_REGION_TO_OCR,
};

static const char *const postprocess_names[] = {
  [F2_POSTPROCESS_PURE_TEXT] = "pure_text",
  [F2_POSTPROCESS_OCR] = "ocr",
  [F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES] = "description_with_bboxes",
  [F2_POSTPROCESS_PHRASE_GROUNDING] = "phrase_grounding",
  [F2_POSTPROCESS_POLYGONS] = "polygons",
  [F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS] =
      "description_with_bboxes_or_polygons",
  [F2_POSTPROCESS_BBOXES] = "bboxes",
};

const F2TaskInfo *
f2_task_info (F2Task task)
{
  if ((guint) task >= F2_TASK_COUNT)
    return NULL;
  return &task_table[task];
}

const F2TaskInfo *
f2_task_lookup (const char *token_or_nick)
{
  guint i;

  if (token_or_nick == NULL)
    return NULL;
  for (i = 0; i < F2_TASK_COUNT; i++) {
    if (strcmp (task_table[i].token, token_or_nick) == 0
        || strcmp (task_table[i].nick, token_or_nick) == 0)
      return &task_table[i];
  }
  return NULL;
}

const F2TaskInfo *
f2_task_find (const char *token_or_nick, GError **error)
{
  const F2TaskInfo *info = f2_task_lookup (token_or_nick);
  GString *known;
  guint i;

  if (info != NULL)
    return info;
  known = g_string_new (NULL);
  for (i = 0; i < F2_TASK_COUNT; i++)
    g_string_append_printf (known, "%s%s", i ? ", " : "", task_table[i].nick);
  g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNKNOWN_TASK,
      "unknown task \"%s\"; use one of %s (or its token, like <OD>)",
      token_or_nick ? token_or_nick : "(null)", known->str);
  g_string_free (known, TRUE);
  return NULL;
}

const char *
f2_postprocess_type_name (F2PostProcessType type)
{
  if ((guint) type >= G_N_ELEMENTS (postprocess_names))
    return NULL;
  return postprocess_names[type];
}

/* @text with every occurrence of @token removed (Python's replace(t, '')). */
static char *
remove_all (const char *text, const char *token)
{
  GString *s = g_string_new (text);

  g_string_replace (s, token, "", 0);
  return g_string_free (s, FALSE);
}

char *
f2_task_processor_prompt (const char *text, GError **error)
{
  char *prompt = g_strdup (text ? text : "");
  guint i;

  for (i = 0; i < G_N_ELEMENTS (processor_order_without_input); i++) {
    const F2TaskInfo *info = &task_table[processor_order_without_input[i]];

    if (strstr (prompt, info->token) == NULL)
      continue;
    if (strcmp (prompt, info->token) != 0) {
      g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNEXPECTED_TEXT,
          "the task token %s must be alone in the text (\"%s\"); %s takes "
          "no text, and no other task's text may contain it",
          info->token, prompt, info->token);
      g_free (prompt);
      return NULL;
    }
    g_free (prompt);
    prompt = g_strdup (info->prompt);
    break;
  }

  for (i = 0; i < G_N_ELEMENTS (processor_order_with_input); i++) {
    const F2TaskInfo *info = &task_table[processor_order_with_input[i]];
    GString *built;
    char *input;

    if (strstr (prompt, info->token) == NULL)
      continue;
    /* str.format with a single {input} field: plain substitution */
    input = remove_all (prompt, info->token);
    built = g_string_new (info->prompt);
    g_string_replace (built, INPUT_PLACEHOLDER, input, 1);
    g_free (input);
    g_free (prompt);
    prompt = g_string_free (built, FALSE);
    break;
  }
  return prompt;
}

static const char *
skip_ascii_space (const char *p)
{
  while (g_ascii_isspace (*p))
    p++;
  return p;
}

/* TRUE when @text is four <loc_N> (N in 0..999 written without leading
 * zeros, the form the tokenizer knows) with optional whitespace around. */
static gboolean
is_region (const char *text)
{
  const char *p = skip_ascii_space (text);
  guint i;

  for (i = 0; i < 4; i++) {
    guint digits = 0;

    if (!g_str_has_prefix (p, "<loc_"))
      return FALSE;
    p += strlen ("<loc_");
    while (g_ascii_isdigit (p[digits]))
      digits++;
    if (digits == 0 || digits > 3 || (digits > 1 && p[0] == '0')
        || p[digits] != '>')
      return FALSE;
    p = skip_ascii_space (p + digits + 1);
  }
  return *p == '\0';
}

static gboolean
is_blank (const char *text)
{
  return *skip_ascii_space (text) == '\0';
}

char *
f2_task_build_prompt (F2Task task, const char *text, GError **error)
{
  const F2TaskInfo *info = f2_task_info (task);
  char *input, *arg, *prompt;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (info == NULL) {
    g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNKNOWN_TASK,
        "unknown task number %d; use one of the F2Task values (0..%d)",
        (int) task, F2_TASK_COUNT - 1);
    return NULL;
  }
  if (text == NULL)
    text = "";

  if (info->input == F2_TASK_INPUT_NONE) {
    if (*text != '\0') {
      g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_UNEXPECTED_TEXT,
          "%s takes no text, but \"%s\" was given; leave the prompt empty, "
          "or pick a task that takes text (caption-to-phrase-grounding, "
          "referring-expression-segmentation, open-vocabulary-detection) "
          "or a region (region-to-*)", info->token, text);
      return NULL;
    }
    return g_strdup (info->prompt);
  }

  /* the processor drops the task token from the text */
  input = remove_all (text, info->token);
  if (is_blank (input)) {
    if (info->input == F2_TASK_INPUT_REGION)
      g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_MISSING_TEXT,
          "%s needs a region; give it as <loc_x1><loc_y1><loc_x2><loc_y2>, "
          "each 0..999 (the box scaled to 0..999 of the image size)",
          info->token);
    else
      g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_MISSING_TEXT,
          "%s needs a text (a phrase, a caption or a category); set the "
          "prompt", info->token);
    g_free (input);
    return NULL;
  }
  if (info->input == F2_TASK_INPUT_REGION && !is_region (input)) {
    g_set_error (error, F2_TASK_ERROR, F2_TASK_ERROR_BAD_REGION,
        "the region \"%s\" for %s is malformed; give it as "
        "<loc_x1><loc_y1><loc_x2><loc_y2>, each 0..999", input, info->token);
    g_free (input);
    return NULL;
  }
  g_free (input);

  /* build exactly what the processor builds for token + text */
  arg = g_strconcat (info->token, text, NULL);
  prompt = f2_task_processor_prompt (arg, error);
  g_free (arg);
  return prompt;
}
