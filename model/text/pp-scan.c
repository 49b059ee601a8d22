/* Hand-written equivalents of the post-processor's regular expressions.
 *
 * Every pattern here is anchored on ASCII characters ('<', '>', '\n'), which
 * never occur inside a multi-byte UTF-8 sequence, so scanning bytes finds
 * the same matches as Python scanning characters. */
#include "pp-scan.h"

#include <string.h>

/* Python's str.isspace() for one character. */
static gboolean
is_space (gunichar c)
{
  /* The characters Python 3 str.isspace() accepts (bidi class WS, B or S,
   * or category Zs). */
  switch (c) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d:
    case 0x1c: case 0x1d: case 0x1e: case 0x1f:
    case 0x20: case 0x85: case 0xa0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return TRUE;
    default:
      return c >= 0x2000 && c <= 0x200a;
  }
}

gboolean
f2_pp_has_prefix (const char *p, const char *end, const char *prefix)
{
  gsize n = strlen (prefix);

  return (gsize) (end - p) >= n && memcmp (p, prefix, n) == 0;
}

/* A run of Unicode decimal digits (Python's \d, what int() accepts) at @p;
 * returns its end, @p when there is none. */
static const char *
scan_digits (const char *p, const char *end, F2PpBin *bin)
{
  F2PpBin value = { 0, FALSE };

  while (p < end) {
    int digit = g_unichar_digit_value (g_utf8_get_char (p));

    if (digit < 0)
      break;
    if (!value.big) {
      if (value.value > (G_MAXINT64 - digit) / 10)
        value.big = TRUE;
      else
        value.value = value.value * 10 + digit;
    }
    p = g_utf8_next_char (p);
  }
  if (bin != NULL)
    *bin = value;
  return p;
}

static gboolean
match_tail (const char *p, const char *end, F2PpBin *bin, const char **after)
{
  const char *digits_end;

  if (!f2_pp_has_prefix (p, end, "loc_"))
    return FALSE;
  digits_end = scan_digits (p + 4, end, bin);
  if (digits_end == p + 4 || digits_end >= end || *digits_end != '>')
    return FALSE;
  if (after != NULL)
    *after = digits_end + 1;
  return TRUE;
}

gboolean
f2_pp_match_loc (const char *p, const char *end, F2PpBin *bin,
    const char **after)
{
  return p < end && *p == '<' && match_tail (p + 1, end, bin, after);
}

gboolean
f2_pp_match_loc_tail (const char *p, const char *end, const char **after)
{
  return match_tail (p, end, NULL, after);
}

static gboolean
match_token (const char *p, const char *end, F2PpTokens tokens,
    const char **after)
{
  static const char *const polygon_tokens[] = { "<sep>", "<poly>", "</poly>" };

  if (f2_pp_match_loc (p, end, NULL, after))
    return TRUE;
  if (tokens == F2_PP_TOKENS_POLYGON) {
    for (guint i = 0; i < G_N_ELEMENTS (polygon_tokens); i++) {
      if (f2_pp_has_prefix (p, end, polygon_tokens[i])) {
        *after = p + strlen (polygon_tokens[i]);
        return TRUE;
      }
    }
  }
  return FALSE;
}

guint
f2_pp_count_tokens (const char *p, const char *end, F2PpTokens tokens,
    const char **run_end)
{
  guint n = 0;
  const char *after;

  while (p < end && match_token (p, end, tokens, &after)) {
    p = after;
    n++;
  }
  *run_end = p;
  return n;
}

void
f2_pp_find_phrases (const char *text, const char *end, F2PpTokens tokens,
    gboolean with_phrase, GArray *spans)
{
  const char *p = text;

  while (p < end) {
    const char *run_start, *run_end;

    if (with_phrase) {
      /* [^<]+ can only end right before a '<' (backing off leaves a
       * non-'<' character where a token must start), so every start before
       * that '<' meets the same tokens: on failure go past it. */
      if (*p == '<') {
        p++;
        continue;
      }
      run_start = memchr (p, '<', end - p);
      if (run_start == NULL)
        break;
    } else {
      run_start = p;
    }

    if (f2_pp_count_tokens (run_start, end, tokens, &run_end) >= 4) {
      F2PpSpan span = { p, run_end };

      g_array_append_val (spans, span);
      p = run_end;
    } else {
      p = run_start + 1;
    }
  }
}

static gboolean
lookahead_at (const char *p, const char *end, gboolean poly)
{
  static const char *const stops[] = {
    "<od>", "</od>", "<box>", "</box>", "<bbox>", "</bbox>", "<loc_",
  };

  if (*p != '<')
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (stops); i++)
    if (f2_pp_has_prefix (p, end, stops[i]))
      return TRUE;
  return poly && f2_pp_has_prefix (p, end, "<poly>");
}

gssize
f2_pp_search_phrase (const char *text, const char *end, gboolean poly)
{
  const char *p = text;

  /* \s* takes all leading whitespace (giving some back never helps: the
   * stop tokens start with '<'); then .*? grows until a stop token, and
   * cannot cross a newline. The match is anchored at the start. */
  while (p < end && is_space (g_utf8_get_char (p)))
    p = g_utf8_next_char (p);
  for (;;) {
    if (p < end && lookahead_at (p, end, poly))
      return p - text;
    if (p >= end || *p == '\n')
      return -1;
    p = g_utf8_next_char (p);
  }
}

char *
f2_pp_strip (const char *text, const char *end)
{
  const char *start = text;

  while (start < end && is_space (g_utf8_get_char (start)))
    start = g_utf8_next_char (start);
  while (end > start) {
    const char *last = g_utf8_prev_char (end);

    if (!is_space (g_utf8_get_char (last)))
      break;
    end = last;
  }
  return g_strndup (start, end - start);
}

void
f2_pp_drop_non_ascii (char *text)
{
  char *out = text;

  for (const char *p = text; *p != '\0'; p++)
    if ((guchar) * p < 0x80)
      *out++ = *p;
  *out = '\0';
}

char *
f2_pp_remove_all (const char *text, const char *const *needles)
{
  char *current = g_strdup (text);

  for (guint i = 0; needles[i] != NULL; i++) {
    gsize n = strlen (needles[i]);
    GString *out = g_string_sized_new (strlen (current));
    const char *p = current;
    const char *hit;

    while ((hit = strstr (p, needles[i])) != NULL) {
      g_string_append_len (out, p, hit - p);
      p = hit + n;
    }
    g_string_append (out, p);
    g_free (current);
    current = g_string_free (out, FALSE);
  }
  return current;
}

float
f2_pp_dequantize (gint64 bin, int size)
{
  /* torch: int64 tensor + 0.5 -> float32; times the Python float
   * size / 1000, which becomes a float32 scalar. Each step rounds to
   * float32. */
  float per_bin = (float) ((double) size / 1000.0);
  float centre = (float) bin + 0.5f;
  float value = centre * per_bin;

  return value;
}
