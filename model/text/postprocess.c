/* Florence-2 post-processing, after the reference Florence2PostProcesser and
 * Florence2Processor.post_process_generation(). Each parse_* function below
 * mirrors one of the reference's parsers, in the same order of checks, so
 * that odd texts give the same result (or fail where it fails). */
#include "postprocess.h"

#include <math.h>
#include <string.h>

#include "pp-scan.h"

G_DEFINE_QUARK (f2-postprocess-error-quark, f2_postprocess_error)


/* Phrases the reference drops from phrase grounding (pronouns and the
 * like), compared after stripping whitespace, case-sensitively. */
static const char *const grounding_blacklist[] = {
  "it", "I", "me", "mine", "you", "your", "yours", "he", "him", "his",
  "she", "her", "hers", "they", "them", "their", "theirs", "one", "oneself",
  "we", "us", "our", "ours", "its", "myself", "yourself", "himself",
  "herself", "itself", "ourselves", "yourselves", "themselves", "this",
  "that", "these", "those", "who", "whom", "whose", "which", "what", "all",
  "another", "any", "anybody", "anyone", "anything", "each", "everybody",
  "everyone", "everything", "few", "many", "nobody", "none", "several",
  "some", "somebody", "someone", "something", "each other", "one another",
  "the image", "image", "images", "the", "a", "an", "a group",
  "other objects", "lots", "a set",
};

static const char *const specials[] = { "<s>", "</s>", "<pad>", NULL };

gboolean
f2_postprocess_type_from_string (const char *name, F2PostProcessType *type)
{
  g_return_val_if_fail (name != NULL, FALSE);

  for (guint i = 0; f2_postprocess_type_name ((F2PostProcessType) i) != NULL; i++) {
    if (strcmp (name, f2_postprocess_type_name ((F2PostProcessType) i)) == 0) {
      if (type != NULL)
        *type = (F2PostProcessType) i;
      return TRUE;
    }
  }
  return FALSE;
}

F2PostProcessType
f2_postprocess_type_for_task (const char *task_token)
{
  const F2TaskInfo *info = f2_task_lookup (task_token);

  if (info == NULL || strcmp (info->token, task_token) != 0)
    return F2_POSTPROCESS_PURE_TEXT;
  return info->postprocess;
}

/* State of one post-processing run. */
typedef struct {
  const char *task;
  int width;
  int height;
  /* The sequence path: token spans in characters (code points) of the
   * joined text, and their scores. NULL on the text path. */
  const gsize *span_starts;
  const gsize *span_ends;
  const float *scores;
  gsize n_tokens;
  GArray *regions;   /* F2Region */
} Parse;

static gboolean
check_bin (const Parse *parse, const F2PpBin *bin, GError **error)
{
  if (!bin->big)
    return TRUE;
  g_set_error (error, F2_POSTPROCESS_ERROR, F2_POSTPROCESS_ERROR_BAD_LOCATION,
      "%s: a location token in the generated text has a number too large "
      "for 64 bits; the text is not model output for this task", parse->task);
  return FALSE;
}

/* The 4 bins of the "<loc_><loc_><loc_><loc_>" at @p, dequantized as a box. */
static gboolean
read_box (const Parse *parse, const char *p, const char *end, float box[4],
    GError **error)
{
  for (guint i = 0; i < 4; i++) {
    F2PpBin bin;

    if (!f2_pp_match_loc (p, end, &bin, &p))
      g_return_val_if_reached (FALSE);
    if (!check_bin (parse, &bin, error))
      return FALSE;
    box[i] = f2_pp_dequantize (bin.value, i % 2 ? parse->height : parse->width);
  }
  return TRUE;
}

static F2Region *
add_region (Parse *parse, char *label, F2RegionShape shape)
{
  F2Region region = { 0 };

  region.label = label;
  region.shape = shape;
  g_array_append_val (parse->regions, region);
  return &g_array_index (parse->regions, F2Region, parse->regions->len - 1);
}

/* Box of the points of a quad or polygons region, for consumers that want
 * one; not part of the reference output. */
static void
set_enclosing_box (F2Region *region, const float *coords, guint n_coords)
{
  for (guint i = 0; i + 1 < n_coords; i += 2) {
    float x = coords[i], y = coords[i + 1];

    if (i == 0) {
      region->bbox[0] = region->bbox[2] = x;
      region->bbox[1] = region->bbox[3] = y;
      continue;
    }
    region->bbox[0] = MIN (region->bbox[0], x);
    region->bbox[1] = MIN (region->bbox[1], y);
    region->bbox[2] = MAX (region->bbox[2], x);
    region->bbox[3] = MAX (region->bbox[3], y);
  }
}

/* Box positions of "<loc_(\d+)>" x 4 in [start, end) (re.finditer). */
static void
find_boxes (const char *start, const char *end, GArray *boxes)
{
  const char *p = start;

  while (p < end) {
    const char *run_end;

    if (*p == '<' && f2_pp_count_tokens (p, end, F2_PP_TOKENS_LOC,
            &run_end) >= 4) {
      F2PpSpan span = { p, p };

      for (guint i = 0; i < 4; i++)
        f2_pp_match_loc (span.end, end, NULL, &span.end);
      g_array_append_val (boxes, span);
      p = span.end;
    } else {
      p++;
    }
  }
}

/* The reference's avg_loc_scores: exp of the mean score of the tokens whose
 * spans overlap [start, end) (characters of the joined text). */
static gboolean
box_score (const Parse *parse, gsize start, gsize end, double *score,
    GError **error)
{
  double sum = 0.0;
  gsize n = 0;

  for (gsize i = 0; i < parse->n_tokens; i++) {
    if (!(parse->span_ends[i] <= start || parse->span_starts[i] >= end)) {
      sum += parse->scores[i];
      n++;
    }
  }
  if (n == 0) {
    g_set_error (error, F2_POSTPROCESS_ERROR,
        F2_POSTPROCESS_ERROR_NO_SCORE_TOKENS,
        "%s: a box in the generated text lines up with no scored token; "
        "post-process this text without scores", parse->task);
    return FALSE;
  }
  *score = exp (sum / (double) n);
  return TRUE;
}

/* description_with_bboxes (with_phrase, scores on the sequence path) and
 * bboxes (without phrase). */
static gboolean
parse_bboxes (Parse *parse, const char *text, gboolean with_phrase,
    gboolean with_scores, GError **error)
{
  g_autofree char *clean = NULL;
  g_autoptr (GArray) phrases = g_array_new (FALSE, FALSE, sizeof (F2PpSpan));
  g_autoptr (GArray) boxes = g_array_new (FALSE, FALSE, sizeof (F2PpSpan));
  /* Where the current phrase is taken to start in the joined text, the
   * reference's cur_span: it only counts the leading <s> and the phrases
   * seen so far, not the text between them (kept for its scores). */
  gsize cur_span = g_str_has_prefix (text, "<s>") ? 3 : 0;

  with_scores = with_scores && parse->scores != NULL;
  clean = f2_pp_remove_all (text, specials);
  f2_pp_find_phrases (clean, clean + strlen (clean), F2_PP_TOKENS_LOC,
      with_phrase, phrases);

  for (guint i = 0; i < phrases->len; i++) {
    const F2PpSpan *phrase = &g_array_index (phrases, F2PpSpan, i);
    gsize phrase_chars = g_utf8_strlen (phrase->start,
        phrase->end - phrase->start);
    gssize label_len;
    char *label;

    label_len = f2_pp_search_phrase (phrase->start, phrase->end, FALSE);
    g_array_set_size (boxes, 0);
    if (label_len >= 0)
      find_boxes (phrase->start, phrase->end, boxes);
    if (label_len < 0 || boxes->len == 0) {
      cur_span += phrase_chars;
      continue;
    }

    label = f2_pp_strip (phrase->start, phrase->start + label_len);
    f2_pp_drop_non_ascii (label);
    for (guint j = 0; j < boxes->len; j++) {
      const F2PpSpan *box = &g_array_index (boxes, F2PpSpan, j);
      F2Region *region = add_region (parse, j == 0 ? label : g_strdup (label),
          F2_REGION_BBOX);

      if (!read_box (parse, box->start, box->end, region->bbox, error))
        return FALSE;
    }

    if (with_scores) {
      F2Region *first = &g_array_index (parse->regions, F2Region,
          parse->regions->len - boxes->len);

      for (guint j = 0; j < boxes->len; j++) {
        const F2PpSpan *box = &g_array_index (boxes, F2PpSpan, j);
        gsize start = cur_span + g_utf8_strlen (phrase->start,
            box->start - phrase->start);
        gsize end = start + g_utf8_strlen (box->start, box->end - box->start);

        if (!box_score (parse, start, end, &first[j].score, error))
          return FALSE;
        first[j].has_score = TRUE;
      }
    }
    cur_span += phrase_chars;
  }
  return TRUE;
}

static gboolean
is_blacklisted (const char *phrase)
{
  for (guint i = 0; i < G_N_ELEMENTS (grounding_blacklist); i++)
    if (strcmp (phrase, grounding_blacklist[i]) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
parse_phrase_grounding (Parse *parse, const char *text, GError **error)
{
  g_autofree char *clean = f2_pp_remove_all (text, specials);
  g_autoptr (GArray) phrases = g_array_new (FALSE, FALSE, sizeof (F2PpSpan));
  g_autoptr (GArray) boxes = g_array_new (FALSE, FALSE, sizeof (F2PpSpan));

  f2_pp_find_phrases (clean, clean + strlen (clean), F2_PP_TOKENS_LOC, TRUE,
      phrases);

  for (guint i = 0; i < phrases->len; i++) {
    const F2PpSpan *phrase = &g_array_index (phrases, F2PpSpan, i);
    g_autofree char *label = NULL;
    gssize label_len;

    label_len = f2_pp_search_phrase (phrase->start, phrase->end, FALSE);
    if (label_len < 0)
      continue;
    g_array_set_size (boxes, 0);
    find_boxes (phrase->start, phrase->end, boxes);
    if (boxes->len == 0)
      continue;
    label = f2_pp_strip (phrase->start, phrase->start + label_len);
    if (is_blacklisted (label))
      continue;
    f2_pp_drop_non_ascii (label);

    for (guint j = 0; j < boxes->len; j++) {
      const F2PpSpan *box = &g_array_index (boxes, F2PpSpan, j);
      F2Region *region = add_region (parse, g_strdup (label), F2_REGION_BBOX);

      if (!read_box (parse, box->start, box->end, region->bbox, error))
        return FALSE;
    }
  }
  return TRUE;
}

/* "(.+?)<loc_>{8}" at the leftmost start >= @p: the label end, or NULL. */
static const char *
find_ocr_line (const char *p, const char *end, const char **label_start)
{
  while (p < end) {
    const char *q, *run_end;

    if (*p == '\n') {
      p++;
      continue;
    }
    /* The label is at least one character and holds no newline; the
     * shortest one wins. A start that fails makes every later start up to
     * the next newline fail too. */
    for (q = g_utf8_next_char (p); q < end && *q != '\n';
        q = g_utf8_next_char (q)) {
      if (*q == '<' && f2_pp_count_tokens (q, end, F2_PP_TOKENS_LOC,
              &run_end) >= 8) {
        *label_start = p;
        return q;
      }
    }
    p = q;
  }
  return NULL;
}

static gboolean
parse_ocr (Parse *parse, const char *text, GError **error)
{
  static const char *const bos[] = { "<s>", NULL };
  /* The reference removes only <s>: the leading </s> stays on the first
   * label. */
  g_autofree char *clean = f2_pp_remove_all (text, bos);
  const char *end = clean + strlen (clean);
  const char *p = clean;
  const char *label_start, *label_end;

  while ((label_end = find_ocr_line (p, end, &label_start)) != NULL) {
    F2Region *region = add_region (parse,
        g_strndup (label_start, label_end - label_start), F2_REGION_QUAD);

    p = label_end;
    for (guint i = 0; i < 8; i++) {
      F2PpBin bin;

      f2_pp_match_loc (p, end, &bin, &p);
      if (!check_bin (parse, &bin, error))
        return FALSE;
      region->quad[i] = f2_pp_dequantize (bin.value,
          i % 2 ? parse->height : parse->width);
    }
    set_enclosing_box (region, region->quad, 8);
  }
  return TRUE;
}

/* "<poly>(.*?)</poly>" over [start, end): the groups, appended to @out. */
static void
find_polygon_instances (const char *start, const char *end, GArray *out)
{
  const char *p = start;

  while (p < end) {
    const char *q;

    if (!f2_pp_has_prefix (p, end, "<poly>")) {
      p++;
      continue;
    }
    for (q = p + 6; q < end && *q != '\n'; q++) {
      if (f2_pp_has_prefix (q, end, "</poly>"))
        break;
    }
    if (q < end && *q == '<') {
      F2PpSpan span = { p + 6, q };

      g_array_append_val (out, span);
      p = q + 7;
    } else {
      p++;
    }
  }
}

static gboolean
contains (const char *start, const char *end, const char *needle)
{
  gsize n = strlen (needle);

  for (const char *p = start; p + n <= end; p++)
    if (memcmp (p, needle, n) == 0)
      return TRUE;
  return FALSE;
}

/* "((?:<loc_\d+>)+)(?:<sep>|$)" over [start, end): each group's bins,
 * dequantized as (x, y) pairs, appended to @polygons (an F2Polygon array). */
static gboolean
read_polygons (const Parse *parse, const char *start, const char *end,
    GArray *polygons, GError **error)
{
  const char *p = start;

  while (p < end) {
    const char *run_end, *q;
    guint n;
    F2Polygon polygon;

    n = *p == '<' ? f2_pp_count_tokens (p, end, F2_PP_TOKENS_LOC, &run_end) : 0;
    if (n == 0) {
      p++;
      continue;
    }
    /* $ matches at the end and before a newline that ends the text. */
    if (f2_pp_has_prefix (run_end, end, "<sep>")) {
      q = run_end + 5;
    } else if (run_end == end || (run_end + 1 == end && *run_end == '\n')) {
      q = run_end;
    } else {
      p++;
      continue;
    }

    /* An odd last bin has no partner and is dropped. */
    polygon.n_coords = n & ~1u;
    polygon.coords = g_new (float, polygon.n_coords);
    g_array_append_val (polygons, polygon);
    for (guint i = 0; i < polygon.n_coords; i++) {
      F2PpBin bin;

      f2_pp_match_loc (p, end, &bin, &p);
      if (!check_bin (parse, &bin, error))
        return FALSE;
      polygon.coords[i] = f2_pp_dequantize (bin.value,
          i % 2 ? parse->height : parse->width);
    }
    p = q;
  }
  return TRUE;
}

static void
polygon_array_clear (gpointer data)
{
  g_free (((F2Polygon *) data)->coords);
}

/* polygons (with_phrase FALSE) and the polygon branch of
 * description_with_bboxes_or_polygons (with_phrase TRUE). */
static gboolean
parse_polygons (Parse *parse, const char *text, gboolean with_phrase,
    GError **error)
{
  g_autofree char *clean = f2_pp_remove_all (text, specials);
  g_autoptr (GArray) phrases = g_array_new (FALSE, FALSE, sizeof (F2PpSpan));
  g_autoptr (GArray) instances = g_array_new (FALSE, FALSE,
      sizeof (F2PpSpan));

  f2_pp_find_phrases (clean, clean + strlen (clean), F2_PP_TOKENS_POLYGON,
      with_phrase, phrases);

  for (guint i = 0; i < phrases->len; i++) {
    const F2PpSpan *phrase = &g_array_index (phrases, F2PpSpan, i);
    const char *strip_start = phrase->start;
    g_autofree char *label = NULL;
    const char *after;
    gssize label_len;

    /* re.sub(r'^loc_\d+>', '', ...): a phrase that starts inside a
     * location token loses that token's tail. */
    if (f2_pp_match_loc_tail (phrase->start, phrase->end, &after))
      strip_start = after;
    if (strip_start == phrase->end && with_phrase)
      continue;
    label_len = f2_pp_search_phrase (strip_start, phrase->end, TRUE);
    if (label_len < 0)
      continue;
    label = f2_pp_strip (strip_start, strip_start + label_len);

    g_array_set_size (instances, 0);
    if (contains (phrase->start, phrase->end, "<poly>")
        && contains (phrase->start, phrase->end, "</poly>")) {
      find_polygon_instances (phrase->start, phrase->end, instances);
    } else {
      F2PpSpan whole = *phrase;

      g_array_append_val (instances, whole);
    }

    for (guint j = 0; j < instances->len; j++) {
      const F2PpSpan *instance = &g_array_index (instances, F2PpSpan, j);
      g_autoptr (GArray) polygons = g_array_new (FALSE, FALSE,
          sizeof (F2Polygon));
      F2Region *region;

      g_array_set_clear_func (polygons, polygon_array_clear);
      if (!read_polygons (parse, instance->start, instance->end, polygons,
              error))
        return FALSE;
      if (polygons->len == 0)
        continue;

      region = add_region (parse, g_strdup (label), F2_REGION_POLYGONS);
      region->n_polygons = polygons->len;
      region->polygons = g_new (F2Polygon, polygons->len);
      memcpy (region->polygons, polygons->data,
          sizeof (F2Polygon) * polygons->len);
      g_array_set_clear_func (polygons, NULL);
      for (guint k = 0; k < region->n_polygons; k++)
        set_enclosing_box (region, region->polygons[k].coords,
            region->polygons[k].n_coords);
    }
  }
  return TRUE;
}

static void
region_array_clear (gpointer data)
{
  F2Region *region = data;

  g_free (region->label);
  for (guint i = 0; i < region->n_polygons; i++)
    g_free (region->polygons[i].coords);
  g_free (region->polygons);
}

/* Both paths end here, with the (joined) text made valid UTF-8. */
static F2Result *
run (Parse *parse, F2PostProcessType type, const char *text, GError **error)
{
  g_autoptr (GArray) regions = g_array_new (FALSE, TRUE, sizeof (F2Region));
  F2Result *result;
  gboolean ok = TRUE;

  g_array_set_clear_func (regions, region_array_clear);
  parse->regions = regions;

  result = g_new0 (F2Result, 1);
  result->task = g_strdup (parse->task);
  result->type = type;
  result->image_width = parse->width;
  result->image_height = parse->height;

  switch (type) {
    case F2_POSTPROCESS_PURE_TEXT:{
      static const char *const tokens[] = { "<s>", "</s>", NULL };

      result->text = f2_pp_remove_all (text, tokens);
      break;
    }
    case F2_POSTPROCESS_OCR:
      ok = parse_ocr (parse, text, error);
      break;
    case F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES:
      ok = parse_bboxes (parse, text, TRUE, TRUE, error);
      break;
    case F2_POSTPROCESS_BBOXES:
      ok = parse_bboxes (parse, text, FALSE, FALSE, error);
      break;
    case F2_POSTPROCESS_PHRASE_GROUNDING:
      ok = parse_phrase_grounding (parse, text, error);
      break;
    case F2_POSTPROCESS_POLYGONS:
      ok = parse_polygons (parse, text, FALSE, error);
      break;
    case F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS:
      /* Either polygons or boxes, never both, decided on the raw text. */
      if (strstr (text, "<poly>") != NULL)
        ok = parse_polygons (parse, text, TRUE, error);
      else
        ok = parse_bboxes (parse, text, TRUE, FALSE, error);
      break;
  }

  if (!ok) {
    f2_result_free (result);
    return NULL;
  }
  g_array_set_clear_func (regions, NULL);
  result->n_regions = regions->len;
  result->regions = (F2Region *) g_array_free (g_steal_pointer (&regions),
      FALSE);
  if (result->n_regions == 0)
    g_clear_pointer (&result->regions, g_free);
  return result;
}

static gboolean
check_arguments (const char *task_token, F2PostProcessType type, int width,
    int height, GError **error)
{
  if (f2_postprocess_type_name (type) == NULL) {
    g_set_error (error, F2_POSTPROCESS_ERROR,
        F2_POSTPROCESS_ERROR_INVALID_ARGUMENT,
        "%s: unknown post-processing type %d; take it from the task table",
        task_token, (int) type);
    return FALSE;
  }
  if (width <= 0 || height <= 0) {
    g_set_error (error, F2_POSTPROCESS_ERROR,
        F2_POSTPROCESS_ERROR_INVALID_ARGUMENT,
        "%s: image size %dx%d is not positive; pass the size of the image "
        "the text was generated for", task_token, width, height);
    return FALSE;
  }
  return TRUE;
}

F2Result *
f2_postprocess (const char *task_token, F2PostProcessType type,
    const char *text, int image_width, int image_height, GError **error)
{
  Parse parse = { 0 };
  g_autofree char *valid = NULL;

  g_return_val_if_fail (task_token != NULL, NULL);
  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_arguments (task_token, type, image_width, image_height, error))
    return NULL;

  valid = g_utf8_make_valid (text, -1);
  parse.task = task_token;
  parse.width = image_width;
  parse.height = image_height;
  return run (&parse, type, valid, error);
}

F2Result *
f2_postprocess_tokens (const char *task_token, F2PostProcessType type,
    const char *const *token_texts, const float *scores, gsize n_tokens,
    int image_width, int image_height, GError **error)
{
  Parse parse = { 0 };
  g_autoptr (GString) text = g_string_new (NULL);
  g_autofree gsize *starts = NULL;
  g_autofree gsize *ends = NULL;
  gsize chars = 0;

  g_return_val_if_fail (task_token != NULL, NULL);
  g_return_val_if_fail (token_texts != NULL || n_tokens == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_arguments (task_token, type, image_width, image_height, error))
    return NULL;

  /* decode_with_spans(): the token texts joined, each token's span in
   * characters. */
  starts = g_new (gsize, MAX (n_tokens, 1));
  ends = g_new (gsize, MAX (n_tokens, 1));
  for (gsize i = 0; i < n_tokens; i++) {
    g_autofree char *piece = g_utf8_make_valid (token_texts[i] ?
        token_texts[i] : "", -1);

    starts[i] = chars;
    chars += g_utf8_strlen (piece, -1);
    ends[i] = chars;
    g_string_append (text, piece);
  }

  parse.task = task_token;
  parse.width = image_width;
  parse.height = image_height;
  parse.span_starts = starts;
  parse.span_ends = ends;
  parse.scores = scores;
  parse.n_tokens = n_tokens;
  return run (&parse, type, text->str, error);
}

F2Result *
f2_postprocess_sequence (const char *task_token, F2PostProcessType type,
    F2Tokenizer *tokenizer, const gint32 *ids, gsize n_ids,
    const float *scores, int image_width, int image_height, GError **error)
{
  g_autoptr (GPtrArray) pieces = g_ptr_array_new_with_free_func (g_free);

  g_return_val_if_fail (task_token != NULL, NULL);
  g_return_val_if_fail (tokenizer != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* sequence[1:], each token decoded on its own, without clean-up (the
   * reference's convert_tokens_to_string([token])). */
  for (gsize i = 1; i < n_ids; i++)
    g_ptr_array_add (pieces, f2_tokenizer_decode_full (tokenizer, &ids[i], 1,
            FALSE, FALSE));
  return f2_postprocess_tokens (task_token, type,
      (const char *const *) pieces->pdata, scores, pieces->len, image_width,
      image_height, error);
}
