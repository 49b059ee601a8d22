/* Internal to the post-processor: hand-written equivalents of the regular
 * expressions the reference post-processor runs on the generated text, with
 * Python's semantics (str.strip() and \s use Python's whitespace set, \d any
 * Unicode decimal digit, '.' anything but '\n'). All work on valid UTF-8
 * between a start and an end pointer; offsets are in bytes unless said. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A "<loc_N>" value: N, or big when it does not fit in 64 bits signed. */
typedef struct {
  gint64 value;
  gboolean big;
} F2PpBin;

/* A match: [start, end) of the text. */
typedef struct {
  const char *start;
  const char *end;
} F2PpSpan;

/* Which tokens a location run is made of. */
typedef enum {
  F2_PP_TOKENS_LOC,       /* <loc_N> */
  F2_PP_TOKENS_POLYGON,   /* <loc_N> | <sep> | <poly> | </poly> */
} F2PpTokens;

/* TRUE when [p, end) starts with @prefix. */
gboolean f2_pp_has_prefix (const char *p, const char *end, const char *prefix);

/* "<loc_N>" at @p: TRUE, with @bin and @after set (both may be NULL). */
gboolean f2_pp_match_loc (const char *p, const char *end, F2PpBin *bin,
    const char **after);

/* "loc_N>" at @p (a location token without its '<'): TRUE, with @after
 * set. */
gboolean f2_pp_match_loc_tail (const char *p, const char *end,
    const char **after);

/* Number of consecutive @tokens starting at @p; @run_end is set to the end
 * of the last one (to @p when there are none). */
guint f2_pp_count_tokens (const char *p, const char *end, F2PpTokens tokens,
    const char **run_end);

/* re.findall of "([^<]+(?:T){4,})" (with_phrase) or "(?:T){4,}" where T is
 * @tokens: the spans, in order, appended to @spans (an F2PpSpan array). */
void f2_pp_find_phrases (const char *text, const char *end,
    F2PpTokens tokens, gboolean with_phrase, GArray *spans);

/* re.search of "^\s*(.*?)(?=<od>|</od>|<box>|</box>|<bbox>|</bbox>|<loc_)"
 * (plus "|<poly>" when @poly): the length in bytes of the whole match, which
 * starts at @text, or -1 when it does not match. */
gssize f2_pp_search_phrase (const char *text, const char *end,
    gboolean poly);

/* Python's str.strip(): a new string. */
char *f2_pp_strip (const char *text, const char *end);

/* phrase.encode('ascii', errors='ignore'): drops every non-ASCII character,
 * in place. */
void f2_pp_drop_non_ascii (char *text);

/* text.replace(@needle, "") for each of the NULL-terminated @needles, one
 * after the other. A new string. */
char *f2_pp_remove_all (const char *text, const char *const *needles);

/* (bin + 0.5) * (size / 1000), in float32 as the reference computes it. */
float f2_pp_dequantize (gint64 bin, int size);

G_END_DECLS
