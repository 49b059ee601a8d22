/* BART byte-level BPE, following what the Hugging Face "tokenizers" library
 * does for facebook/bart-large:
 *
 *   encode: split the text on added tokens (leftmost-longest, whole strings),
 *           split each remaining piece with the GPT-2 pattern, map each
 *           piece's bytes to the byte-level alphabet, apply the BPE merges by
 *           rank, frame with <s> ... </s>;
 *   decode: token strings back to bytes (byte-level alphabet), bytes to UTF-8
 *           with U+FFFD for invalid sequences, then the Python side's
 *           clean_up_tokenization.
 */
#include "tokenizer.h"
#include "loader-util.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* Highest code point of the byte-level alphabet (byte 0xAD maps to U+0143). */
#define BYTE_CHAR_MAX 0x143
/* Words cached with their BPE result before the cache is emptied. */
#define CACHE_MAX_WORDS 8192

typedef struct {
  char *content;                /* owned by added_index (its key) */
  gsize len;
  gint32 id;
  gboolean lstrip;              /* absorbs the whitespace on its left */
  gboolean rstrip;              /* absorbs the whitespace on its right */
} AddedToken;

/* Open-addressing table: (left id, right id) -> (rank, merged id). */
typedef struct {
  guint64 key;                  /* 0 marks an empty slot */
  gint32 rank;
  gint32 merged;
} MergeSlot;

struct _F2Tokenizer {
  GPtrArray *tokens;            /* id -> owned token string, NULL for holes */
  GHashTable *ids;              /* token string -> GINT_TO_POINTER (id + 1) */
  GByteArray *special;          /* id -> 1 when special */

  MergeSlot *merges;
  gsize merge_mask;

  gunichar byte_char[256];      /* byte -> byte-level alphabet character */
  gint16 char_byte[BYTE_CHAR_MAX + 1];  /* and back; -1 when not in it */
  gint32 byte_id[256];          /* byte -> id of its one-character token */

  GArray *added;                /* AddedToken */
  GHashTable *added_index;      /* content -> AddedToken index + 1 */
  GArray *added_lengths;        /* distinct content lengths (gsize), longest first */
  guint8 added_first[256];      /* 1 when some added token starts with that byte */

  GMutex cache_lock;
  GHashTable *cache;            /* word bytes -> gint32[]: count, ids... */
};

G_DEFINE_QUARK (f2 - tokenizer - error - quark, f2_tokenizer_error)

/* The tokens Florence2Processor adds, in its order, after the BART vocab. */
static const char *const processor_tokens_head[] = {
  "<od>", "</od>", "<ocr>", "</ocr>",
};

static const char *const processor_tokens_tail[] = {
  "<cap>", "</cap>", "<ncap>", "</ncap>", "<dcap>", "</dcap>",
  "<grounding>", "</grounding>", "<seg>", "</seg>", "<sep>",
  "<region_cap>", "</region_cap>",
  "<region_to_desciption>", "</region_to_desciption>",
  "<proposal>", "</proposal>", "<poly>", "</poly>", "<and>",
};

#define PROCESSOR_LOC_TOKENS 1000

/* BART's special tokens when only vocab.json is there to say what they are. */
static const struct {
  const char *content;
  gboolean lstrip;
} bart_special_tokens[] = {
  {"<s>", FALSE}, {"<pad>", FALSE}, {"</s>", FALSE}, {"<unk>", FALSE},
  {"<mask>", TRUE},
};

/* ---- Character classes of the GPT-2 pattern ---- */

/* Unicode White_Space, what the pattern's \s matches. */
static gboolean
is_space (gunichar c)
{
  return c == 0x0B || c == 0x85 || g_unichar_isspace (c);
}

static gboolean
is_letter (gunichar c)
{
  switch (g_unichar_type (c)) {
    case G_UNICODE_UPPERCASE_LETTER:
    case G_UNICODE_LOWERCASE_LETTER:
    case G_UNICODE_TITLECASE_LETTER:
    case G_UNICODE_MODIFIER_LETTER:
    case G_UNICODE_OTHER_LETTER:
      return TRUE;
    default:
      return FALSE;
  }
}

static gboolean
is_number (gunichar c)
{
  switch (g_unichar_type (c)) {
    case G_UNICODE_DECIMAL_NUMBER:
    case G_UNICODE_LETTER_NUMBER:
    case G_UNICODE_OTHER_NUMBER:
      return TRUE;
    default:
      return FALSE;
  }
}

typedef enum {
  CLASS_SPACE,
  CLASS_LETTER,
  CLASS_NUMBER,
  CLASS_OTHER,
} CharClass;

static CharClass
char_class (gunichar c)
{
  if (is_space (c))
    return CLASS_SPACE;
  if (is_letter (c))
    return CLASS_LETTER;
  if (is_number (c))
    return CLASS_NUMBER;
  return CLASS_OTHER;
}

/* End of the run of characters of class @cls starting at @p. */
static const char *
skip_class (const char *p, const char *end, CharClass cls)
{
  while (p < end && char_class (g_utf8_get_char (p)) == cls)
    p = g_utf8_next_char (p);
  return p;
}

/* End of the piece starting at @p (< @end), as the first alternative of
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * that matches there would end it. */
static const char *
next_piece (const char *p, const char *end)
{
  gunichar c = g_utf8_get_char (p);
  const char *q = g_utf8_next_char (p);
  const char *last, *r;
  CharClass cls;

  if (c == '\'' && q < end) {
    if (*q == 's' || *q == 't' || *q == 'm' || *q == 'd')
      return q + 1;
    if (q + 1 < end && ((q[0] == 'r' && q[1] == 'e') ||
            (q[0] == 'v' && q[1] == 'e') || (q[0] == 'l' && q[1] == 'l')))
      return q + 2;
  }

  cls = char_class (c);
  if (cls != CLASS_SPACE)
    return skip_class (q, end, cls);

  /* " ?" followed by a letter, number or other run */
  if (c == ' ' && q < end) {
    cls = char_class (g_utf8_get_char (q));
    if (cls != CLASS_SPACE)
      return skip_class (q, end, cls);
  }

  /* \s+(?!\S): a whitespace run, less its last character when a
   * non-space follows it; a single space before a non-space is \s+. */
  last = p;
  r = q;
  while (r < end && is_space (g_utf8_get_char (r))) {
    last = r;
    r = g_utf8_next_char (r);
  }
  if (r < end && last != p)
    return last;
  return r;
}

/* ---- Merges table ---- */

static guint64
merge_key (gint32 left, gint32 right)
{
  return ((guint64) (guint32) (left + 1) << 32) | (guint32) (right + 1);
}

static gsize
merge_hash (guint64 key)
{
  key ^= key >> 29;
  key *= G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  key ^= key >> 32;
  return (gsize) key;
}

static void
merges_init (F2Tokenizer *tok, gsize n_merges)
{
  gsize size = 16;

  while (size < n_merges * 2)
    size <<= 1;
  tok->merges = g_new0 (MergeSlot, size);
  tok->merge_mask = size - 1;
}

/* A later duplicate replaces the earlier one, as in the reference. */
static void
merges_insert (F2Tokenizer *tok, gint32 left, gint32 right, gint32 rank,
    gint32 merged)
{
  guint64 key = merge_key (left, right);
  gsize i = merge_hash (key) & tok->merge_mask;

  while (tok->merges[i].key != 0 && tok->merges[i].key != key)
    i = (i + 1) & tok->merge_mask;
  tok->merges[i].key = key;
  tok->merges[i].rank = rank;
  tok->merges[i].merged = merged;
}

static const MergeSlot *
merges_lookup (const F2Tokenizer *tok, gint32 left, gint32 right)
{
  guint64 key = merge_key (left, right);
  gsize i = merge_hash (key) & tok->merge_mask;

  while (tok->merges[i].key != 0) {
    if (tok->merges[i].key == key)
      return &tok->merges[i];
    i = (i + 1) & tok->merge_mask;
  }
  return NULL;
}

/* ---- Vocabulary ---- */

static gint32
lookup_id (const F2Tokenizer *tok, const char *token)
{
  gpointer v = g_hash_table_lookup (tok->ids, token);

  return v ? GPOINTER_TO_INT (v) - 1 : -1;
}

/* Gives @id the string @token (taken), growing the table as needed. */
static void
set_token (F2Tokenizer *tok, gint32 id, char *token)
{
  char *old;

  if ((guint) id >= tok->tokens->len) {
    guint old_len = tok->special->len;

    g_ptr_array_set_size (tok->tokens, id + 1);
    g_byte_array_set_size (tok->special, id + 1);
    memset (tok->special->data + old_len, 0, id + 1 - old_len);
  }
  old = g_ptr_array_index (tok->tokens, id);
  if (old != NULL && lookup_id (tok, old) == id)
    g_hash_table_remove (tok->ids, old);
  g_ptr_array_index (tok->tokens, id) = token;
  g_hash_table_replace (tok->ids, token, GINT_TO_POINTER (id + 1));
  g_free (old);
}

/* Makes @content an added (whole-string, special) token; it keeps the id it
 * has in the vocabulary, else takes @id, else the next free id. */
static void
add_token (F2Tokenizer *tok, const char *content, gint32 id, gboolean lstrip,
    gboolean rstrip)
{
  AddedToken added;
  gint32 existing = lookup_id (tok, content);
  gpointer prev;

  if (id < 0)
    id = existing >= 0 ? existing : (gint32) tok->tokens->len;
  if (existing != id)
    set_token (tok, id, g_strdup (content));
  tok->special->data[id] = 1;

  added.len = strlen (content);
  added.id = id;
  added.lstrip = lstrip;
  added.rstrip = rstrip;

  prev = g_hash_table_lookup (tok->added_index, content);
  if (prev != NULL) {
    AddedToken *old = &g_array_index (tok->added, AddedToken,
        GPOINTER_TO_UINT (prev) - 1);

    added.content = old->content;
    *old = added;
    return;
  }
  added.content = g_strdup (content);
  g_array_append_val (tok->added, added);
  g_hash_table_insert (tok->added_index, added.content,
      GUINT_TO_POINTER (tok->added->len));
}

static void
add_processor_tokens (F2Tokenizer *tok)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (processor_tokens_head); i++)
    add_token (tok, processor_tokens_head[i], -1, FALSE, FALSE);
  for (i = 0; i < PROCESSOR_LOC_TOKENS; i++) {
    char name[32];

    g_snprintf (name, sizeof name, "<loc_%u>", i);
    add_token (tok, name, -1, FALSE, FALSE);
  }
  for (i = 0; i < G_N_ELEMENTS (processor_tokens_tail); i++)
    add_token (tok, processor_tokens_tail[i], -1, FALSE, FALSE);
}

static gint
compare_length_desc (gconstpointer a, gconstpointer b)
{
  gsize la = *(const gsize *) a, lb = *(const gsize *) b;

  return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Index of the added tokens for matching: first bytes and lengths. */
static void
index_added_tokens (F2Tokenizer *tok)
{
  GHashTable *seen = g_hash_table_new (g_direct_hash, g_direct_equal);
  guint i;

  memset (tok->added_first, 0, sizeof tok->added_first);
  g_array_set_size (tok->added_lengths, 0);
  for (i = 0; i < tok->added->len; i++) {
    const AddedToken *a = &g_array_index (tok->added, AddedToken, i);

    if (a->len == 0)
      continue;
    tok->added_first[(guint8) a->content[0]] = 1;
    if (g_hash_table_add (seen, GSIZE_TO_POINTER (a->len)))
      g_array_append_val (tok->added_lengths, a->len);
  }
  g_array_sort (tok->added_lengths, compare_length_desc);
  g_hash_table_unref (seen);
}

/* The GPT-2 byte <-> character table: printable Latin-1 bytes stand for
 * themselves, the others get U+0100 onwards in byte order. */
static void
init_byte_alphabet (F2Tokenizer *tok)
{
  guint b, next = 0;

  for (b = 0; b <= BYTE_CHAR_MAX; b++)
    tok->char_byte[b] = -1;
  for (b = 0; b < 256; b++) {
    gboolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC)
        || (b >= 0xAE && b <= 0xFF);

    tok->byte_char[b] = printable ? b : 256 + next++;
    tok->char_byte[tok->byte_char[b]] = b;
  }
}

static gboolean
resolve_byte_ids (F2Tokenizer *tok, const char *file, GError **error)
{
  guint b;

  for (b = 0; b < 256; b++) {
    char utf8[8] = { 0 };

    g_unichar_to_utf8 (tok->byte_char[b], utf8);
    tok->byte_id[b] = lookup_id (tok, utf8);
    if (tok->byte_id[b] < 0) {
      g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
          "%s: the vocabulary has no token for byte 0x%02x (\"%s\"); "
          "a byte-level BPE vocabulary needs all 256; use the model's own "
          "tokenizer files", file, b, utf8);
      return FALSE;
    }
  }
  return TRUE;
}

/* Records merge number @rank, "@left @right". */
static gboolean
add_merge (F2Tokenizer *tok, GString *buf, const char *left,
    const char *right, gint32 rank, const char *file, GError **error)
{
  gint32 l = lookup_id (tok, left), r = lookup_id (tok, right), m;

  g_string_assign (buf, left);
  g_string_append (buf, right);
  m = lookup_id (tok, buf->str);
  if (l < 0 || r < 0 || m < 0) {
    g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
        "%s: merge %d (\"%s %s\") uses a token missing from the vocabulary; "
        "the merges and vocabulary files do not belong together",
        file, rank, left, right);
    return FALSE;
  }
  merges_insert (tok, l, r, rank, m);
  return TRUE;
}

/* Splits "left right" in place; FALSE unless there is exactly one space. */
static gboolean
split_merge_line (char *line, char **right)
{
  char *space = strchr (line, ' ');

  if (space == NULL || space == line || space[1] == '\0'
      || strchr (space + 1, ' ') != NULL)
    return FALSE;
  *space = '\0';
  *right = space + 1;
  return TRUE;
}

static F2Tokenizer *
tokenizer_alloc (void)
{
  F2Tokenizer *tok = g_new0 (F2Tokenizer, 1);

  tok->tokens = g_ptr_array_new_with_free_func (g_free);
  tok->ids = g_hash_table_new (g_str_hash, g_str_equal);
  tok->special = g_byte_array_new ();
  tok->added = g_array_new (FALSE, FALSE, sizeof (AddedToken));
  tok->added_index = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  tok->added_lengths = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_mutex_init (&tok->cache_lock);
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  init_byte_alphabet (tok);
  return tok;
}

void
f2_tokenizer_free (F2Tokenizer *tok)
{
  if (tok == NULL)
    return;
  g_hash_table_unref (tok->cache);
  g_mutex_clear (&tok->cache_lock);
  g_array_unref (tok->added_lengths);
  g_hash_table_unref (tok->added_index);
  g_array_unref (tok->added);
  g_free (tok->merges);
  g_byte_array_unref (tok->special);
  g_hash_table_unref (tok->ids);
  g_ptr_array_unref (tok->tokens);
  g_free (tok);
}

/* ---- Loading: tokenizer.json ---- */

typedef struct {
  F2Tokenizer *tok;
  const char *file;
  guint n_entries;              /* ids run 0 .. n_entries - 1 */
  GError *error;
} VocabLoad;

static void
vocab_member (JsonObject *obj, const char *name, JsonNode *node, gpointer data)
{
  VocabLoad *load = data;
  gint64 id;

  if (load->error != NULL)
    return;
  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64
      || (id = json_node_get_int (node)) < 0 || id > G_MAXINT32 / 2) {
    g_set_error (&load->error, F2_TOKENIZER_ERROR,
        F2_TOKENIZER_ERROR_MALFORMED,
        "%s: vocabulary entry \"%s\" is not a valid token id; "
        "replace the file with the model's original", load->file, name);
    return;
  }
  /* ids run from 0 without gaps: one past the entries cannot be right,
   * and must not make the table grow to it */
  if ((guint64) id >= load->n_entries) {
    g_set_error (&load->error, F2_TOKENIZER_ERROR,
        F2_TOKENIZER_ERROR_MALFORMED,
        "%s: vocabulary entry \"%s\" has id %" G_GINT64_FORMAT ", but the "
        "vocabulary has only %u entries (ids 0..%u); replace the file with "
        "the model's original", load->file, name, id, load->n_entries,
        load->n_entries ? load->n_entries - 1 : 0);
    return;
  }
  if ((guint64) id < load->tok->tokens->len
      && g_ptr_array_index (load->tok->tokens, id) != NULL) {
    g_set_error (&load->error, F2_TOKENIZER_ERROR,
        F2_TOKENIZER_ERROR_MALFORMED,
        "%s: tokens \"%s\" and \"%s\" share id %" G_GINT64_FORMAT
        "; replace the file with the model's original", load->file,
        (const char *) g_ptr_array_index (load->tok->tokens, id), name, id);
    return;
  }
  set_token (load->tok, (gint32) id, g_strdup (name));
}

static gboolean
load_vocab_object (F2Tokenizer *tok, JsonObject *vocab, const char *file,
    GError **error)
{
  VocabLoad load = { tok, file, json_object_get_size (vocab), NULL };
  guint i;

  json_object_foreach_member (vocab, vocab_member, &load);
  if (load.error != NULL) {
    g_propagate_error (error, load.error);
    return FALSE;
  }
  for (i = 0; i < tok->tokens->len; i++) {
    if (g_ptr_array_index (tok->tokens, i) == NULL) {
      g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
          "%s: the vocabulary has no token with id %u (ids must run from 0 "
          "without gaps); replace the file with the model's original",
          file, i);
      return FALSE;
    }
  }
  if (tok->tokens->len == 0) {
    g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
        "%s: the vocabulary is empty; replace the file with the model's "
        "original", file);
    return FALSE;
  }
  return TRUE;
}

static gboolean
malformed (GError **error, const char *file, const char *what)
{
  g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
      "%s: %s; replace it with the model's original tokenizer.json", file,
      what);
  return FALSE;
}

static gboolean
load_json_merges (F2Tokenizer *tok, JsonArray *merges, const char *file,
    GError **error)
{
  guint i, n = json_array_get_length (merges);
  GString *buf = g_string_new (NULL);
  gboolean ok = TRUE;

  merges_init (tok, n);
  for (i = 0; i < n && ok; i++) {
    JsonNode *node = json_array_get_element (merges, i);
    JsonArray *pair;

    if (JSON_NODE_HOLDS_VALUE (node)
        && json_node_get_value_type (node) == G_TYPE_STRING) {
      char *line = g_strdup (json_node_get_string (node)), *right;

      if (split_merge_line (line, &right))
        ok = add_merge (tok, buf, line, right, i, file, error);
      else
        ok = malformed (error, file, "a merge is not \"left right\"");
      g_free (line);
    } else if (JSON_NODE_HOLDS_ARRAY (node)
        && json_array_get_length (pair = json_node_get_array (node)) == 2
        && json_node_get_value_type (json_array_get_element (pair, 0))
        == G_TYPE_STRING
        && json_node_get_value_type (json_array_get_element (pair, 1))
        == G_TYPE_STRING) {
      ok = add_merge (tok, buf, json_array_get_string_element (pair, 0),
          json_array_get_string_element (pair, 1), i, file, error);
    } else {
      ok = malformed (error, file,
          "a merge is neither \"left right\" nor [left, right]");
    }
  }
  g_string_free (buf, TRUE);
  return ok;
}

static gboolean
load_json_added_tokens (F2Tokenizer *tok, JsonArray *added, const char *file,
    GError **error)
{
  guint i, n = json_array_get_length (added);
  /* an added token takes an id of the vocabulary or one of those after it
   * that the added tokens and the processor's tokens fill: none can reach
   * past this */
  guint vocab_len = tok->tokens->len;
  guint64 max_id = (guint64) vocab_len + n + G_N_ELEMENTS (processor_tokens_head)
      + PROCESSOR_LOC_TOKENS + G_N_ELEMENTS (processor_tokens_tail);

  for (i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element (added, i);
    JsonObject *obj = JSON_NODE_HOLDS_OBJECT (node) ?
        json_node_get_object (node) : NULL;
    const char *content;
    gint64 id;

    if (obj == NULL)
      return malformed (error, file, "an added_tokens entry is not an "
          "object");
    id = json_object_get_int_member_with_default (obj, "id", -1);
    content = json_object_get_string_member_with_default (obj, "content",
        NULL);
    if (id < 0 || id > G_MAXINT32 / 2 || content == NULL || *content == '\0')
      return malformed (error, file, "an added_tokens entry has a bad id "
          "or content");
    if ((guint64) id >= max_id) {
      g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
          "%s: added token \"%s\" has id %" G_GINT64_FORMAT ", past the %u "
          "vocabulary entries, the %u added tokens and the processor's tokens "
          "(ids below %" G_GUINT64_FORMAT "); replace it with the model's "
          "original tokenizer.json", file, content, id, vocab_len, n, max_id);
      return FALSE;
    }
    add_token (tok, content, (gint32) id,
        json_object_get_boolean_member_with_default (obj, "lstrip", FALSE),
        json_object_get_boolean_member_with_default (obj, "rstrip", FALSE));
  }
  return TRUE;
}

/* Type of the object member @name, or NULL when it is absent or null. */
static const char *
member_type (JsonObject *obj, const char *name)
{
  JsonObject *member;

  if (!json_object_has_member (obj, name)
      || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (obj, name)))
    return NULL;
  member = json_object_get_object_member (obj, name);
  return json_object_get_string_member_with_default (member, "type", NULL);
}

/* The JSON text of @file, read as a regular file of sane size and checked
 * for nesting that would overflow the parser's stack; @what names the file
 * for the fix. */
static JsonParser *
parse_json_file (const char *file, const char *what, GError **error)
{
  JsonParser *parser;
  GError *local = NULL;
  char *text;
  gsize len;

  if (!f2_file_read_regular (file, F2_MAX_JSON_FILE_SIZE, what, &text, &len, error))
    return NULL;
  if (!f2_json_check_depth (text, (gssize) len, F2_JSON_MAX_DEPTH, file,
          F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED, error)) {
    g_free (text);
    return NULL;
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, (gssize) len, &local)) {
    g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
        "%s: cannot read it as JSON (%s); replace it with %s", file,
        local->message, what);
    g_error_free (local);
    g_clear_object (&parser);
  }
  g_free (text);
  return parser;
}

static gboolean
load_tokenizer_json (F2Tokenizer *tok, const char *file, GError **error)
{
  JsonParser *parser;
  JsonNode *root;
  JsonObject *obj, *model;
  const char *type;
  gboolean ok = FALSE;

  parser = parse_json_file (file, "the model's original tokenizer.json", error);
  if (parser == NULL)
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    malformed (error, file, "the top level is not an object");
    goto out;
  }
  obj = json_node_get_object (root);
  if (!json_object_has_member (obj, "model")
      || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (obj, "model"))) {
    malformed (error, file, "there is no \"model\" object");
    goto out;
  }
  model = json_object_get_object_member (obj, "model");
  type = json_object_get_string_member_with_default (model, "type", "BPE");
  if (g_strcmp0 (type, "BPE") != 0) {
    malformed (error, file, "the model is not BPE (Florence-2 uses BART's "
        "byte-level BPE)");
    goto out;
  }
  type = member_type (obj, "pre_tokenizer");
  if (type != NULL && strcmp (type, "ByteLevel") != 0) {
    malformed (error, file, "the pre-tokenizer is not ByteLevel (Florence-2 "
        "uses BART's byte-level BPE)");
    goto out;
  }
  if (!json_object_has_member (model, "vocab")
      || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (model, "vocab"))
      || !json_object_has_member (model, "merges")
      || !JSON_NODE_HOLDS_ARRAY (json_object_get_member (model, "merges"))) {
    malformed (error, file, "model.vocab (object) or model.merges (array) is "
        "missing");
    goto out;
  }
  if (!load_vocab_object (tok, json_object_get_object_member (model, "vocab"),
          file, error)
      || !resolve_byte_ids (tok, file, error)
      || !load_json_merges (tok,
          json_object_get_array_member (model, "merges"), file, error))
    goto out;
  if (json_object_has_member (obj, "added_tokens")
      && JSON_NODE_HOLDS_ARRAY (json_object_get_member (obj, "added_tokens"))
      && !load_json_added_tokens (tok,
          json_object_get_array_member (obj, "added_tokens"), file, error))
    goto out;
  ok = TRUE;
out:
  g_object_unref (parser);
  return ok;
}

/* ---- Loading: vocab.json + merges.txt ---- */

static gboolean
load_vocab_json (F2Tokenizer *tok, const char *file, GError **error)
{
  JsonParser *parser;
  JsonNode *root;
  gboolean ok = FALSE;

  parser = parse_json_file (file, "the model's original vocab.json", error);
  if (parser == NULL)
    return FALSE;
  if ((root = json_parser_get_root (parser)) == NULL
      || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
        "%s: the top level is not a token -> id object; replace it with "
        "the model's original vocab.json", file);
  } else {
    ok = load_vocab_object (tok, json_node_get_object (root), file, error);
  }
  g_object_unref (parser);
  return ok;
}

static gboolean
load_merges_txt (F2Tokenizer *tok, const char *file, GError **error)
{
  char *contents = NULL;
  char **lines;
  GString *buf;
  gint32 rank = 0;
  gboolean ok = TRUE;
  guint i;

  if (!f2_file_read_regular (file, F2_MAX_JSON_FILE_SIZE,
          "the model's merges.txt", &contents, NULL, error))
    return FALSE;
  lines = g_strsplit (contents, "\n", -1);
  g_free (contents);
  merges_init (tok, g_strv_length (lines));
  buf = g_string_new (NULL);
  for (i = 0; lines[i] != NULL && ok; i++) {
    char *line = lines[i], *right;
    gsize len = strlen (line);

    if (len > 0 && line[len - 1] == '\r')
      line[len - 1] = '\0';
    if (*line == '\0' || (i == 0 && g_str_has_prefix (line, "#version")))
      continue;
    if (!split_merge_line (line, &right)) {
      g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_MALFORMED,
          "%s:%u: a merge line is not \"left right\"; replace the file with "
          "the model's original merges.txt", file, i + 1);
      ok = FALSE;
    } else {
      ok = add_merge (tok, buf, line, right, rank++, file, error);
    }
  }
  g_string_free (buf, TRUE);
  g_strfreev (lines);
  return ok;
}

static gboolean
load_vocab_and_merges (F2Tokenizer *tok, const char *vocab_file,
    const char *merges_file, GError **error)
{
  guint i;

  if (!load_vocab_json (tok, vocab_file, error)
      || !resolve_byte_ids (tok, vocab_file, error)
      || !load_merges_txt (tok, merges_file, error))
    return FALSE;
  for (i = 0; i < G_N_ELEMENTS (bart_special_tokens); i++) {
    if (lookup_id (tok, bart_special_tokens[i].content) >= 0)
      add_token (tok, bart_special_tokens[i].content, -1,
          bart_special_tokens[i].lstrip, FALSE);
  }
  return TRUE;
}

F2Tokenizer *
f2_tokenizer_new_from_dir (const char *dir, GError **error)
{
  char *json_file, *vocab_file, *merges_file;
  F2Tokenizer *tok;
  gboolean ok;

  g_return_val_if_fail (dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  json_file = g_build_filename (dir, "tokenizer.json", NULL);
  vocab_file = g_build_filename (dir, "vocab.json", NULL);
  merges_file = g_build_filename (dir, "merges.txt", NULL);
  tok = tokenizer_alloc ();

  /* a name that is there at all (a dangling link, a directory, a FIFO) is
   * the one to load, so that its own problem is reported */
#define PRESENT(p) g_file_test ((p), G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK)
  if (PRESENT (json_file)) {
    ok = load_tokenizer_json (tok, json_file, error);
  } else if (PRESENT (vocab_file) && PRESENT (merges_file)) {
    ok = load_vocab_and_merges (tok, vocab_file, merges_file, error);
  } else {
    g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_NOT_FOUND,
        "%s: no tokenizer.json (nor vocab.json with merges.txt) in this "
        "directory; copy the tokenizer files of the Florence-2 model there",
        dir);
    ok = FALSE;
  }

  if (ok) {
    add_processor_tokens (tok);
    index_added_tokens (tok);
  }
  g_free (json_file);
  g_free (vocab_file);
  g_free (merges_file);
  if (!ok) {
    f2_tokenizer_free (tok);
    return NULL;
  }
  return tok;
}

/* ---- Encoding ---- */

/* A pair that may be merged: the symbol at @pos with the one after it. */
typedef struct {
  gint32 rank;
  gint32 pos;
  gint32 merged;
} Candidate;

/* Lower rank first; on equal rank the leftmost pair. */
static gboolean
candidate_before (const Candidate *a, const Candidate *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push (GArray *heap, const Candidate *c)
{
  Candidate *h;
  guint i;

  g_array_append_val (heap, *c);
  h = (Candidate *) heap->data;
  for (i = heap->len - 1; i > 0 && candidate_before (&h[i], &h[(i - 1) / 2]);
      i = (i - 1) / 2) {
    Candidate t = h[i];

    h[i] = h[(i - 1) / 2];
    h[(i - 1) / 2] = t;
  }
}

static Candidate
heap_pop (GArray *heap)
{
  Candidate *h = (Candidate *) heap->data, top = h[0];
  guint i = 0, n = heap->len - 1;

  h[0] = h[n];
  g_array_set_size (heap, n);
  for (;;) {
    guint l = 2 * i + 1, r = l + 1, m = i;
    Candidate t;

    if (l < n && candidate_before (&h[l], &h[m]))
      m = l;
    if (r < n && candidate_before (&h[r], &h[m]))
      m = r;
    if (m == i)
      break;
    t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
  return top;
}

static void
push_pair (const F2Tokenizer *tok, GArray *heap, const gint32 *sym,
    gint32 left, gint32 right)
{
  const MergeSlot *m = merges_lookup (tok, sym[left], sym[right]);

  if (m != NULL) {
    Candidate c = { m->rank, left, m->merged };

    heap_push (heap, &c);
  }
}

/* Applies the merges to the symbols @sym[0..n) (linked by @next/@prev, -1 at
 * the ends): always the best-ranked pair, leftmost first, until none is
 * left. Merged-away symbols become -1. A heap keeps long pieces fast;
 * entries made stale by earlier merges are skipped when they come up. */
static void
merge_symbols (const F2Tokenizer *tok, gint32 *sym, gint32 *prev,
    gint32 *next, gsize n)
{
  GArray *heap = g_array_sized_new (FALSE, FALSE, sizeof (Candidate), n);
  gsize i;

  for (i = 0; i + 1 < n; i++)
    push_pair (tok, heap, sym, i, i + 1);
  while (heap->len > 0) {
    Candidate c = heap_pop (heap);
    gint32 r = next[c.pos];
    const MergeSlot *m;

    if (sym[c.pos] < 0 || r < 0)
      continue;
    m = merges_lookup (tok, sym[c.pos], sym[r]);
    if (m == NULL || m->merged != c.merged)
      continue;
    sym[c.pos] = c.merged;
    sym[r] = -1;
    next[c.pos] = next[r];
    if (next[r] >= 0)
      prev[next[r]] = c.pos;
    if (prev[c.pos] >= 0)
      push_pair (tok, heap, sym, prev[c.pos], c.pos);
    if (next[c.pos] >= 0)
      push_pair (tok, heap, sym, c.pos, next[c.pos]);
  }
  g_array_unref (heap);
}

/* BPE of one piece (its raw bytes), appended to @out as ids. */
static void
bpe_piece (F2Tokenizer *tok, const char *piece, gsize n, GArray *out)
{
  gint32 *cached, *sym, *prev, *next, *result;
  char *key = g_strndup (piece, n);
  gsize len = 0, i;
  gint32 at;

  g_mutex_lock (&tok->cache_lock);
  cached = g_hash_table_lookup (tok->cache, key);
  if (cached != NULL)
    g_array_append_vals (out, cached + 1, cached[0]);
  g_mutex_unlock (&tok->cache_lock);
  if (cached != NULL) {
    g_free (key);
    return;
  }

  sym = g_new (gint32, 3 * n);
  prev = sym + n;
  next = prev + n;
  for (i = 0; i < n; i++) {
    sym[i] = tok->byte_id[(guint8) piece[i]];
    prev[i] = (gint32) i - 1;
    next[i] = i + 1 < n ? (gint32) i + 1 : -1;
  }
  merge_symbols (tok, sym, prev, next, n);

  /* result: count, then the ids left in order */
  result = g_new (gint32, n + 1);
  for (at = 0; at >= 0; at = next[at])
    result[1 + len++] = sym[at];
  result[0] = (gint32) len;
  g_free (sym);
  g_array_append_vals (out, result + 1, len);

  g_mutex_lock (&tok->cache_lock);
  if (g_hash_table_size (tok->cache) >= CACHE_MAX_WORDS)
    g_hash_table_remove_all (tok->cache);
  g_hash_table_replace (tok->cache, key, result);
  g_mutex_unlock (&tok->cache_lock);
}

/* Text between added tokens: pre-tokenize, then BPE each piece. */
static void
encode_plain (F2Tokenizer *tok, const char *p, const char *end, GArray *out)
{
  while (p < end) {
    const char *q = next_piece (p, end);

    bpe_piece (tok, p, q - p, out);
    p = q;
  }
}

/* The longest added token starting at @p, or NULL. */
static const AddedToken *
match_added (F2Tokenizer *tok, const char *p, const char *end)
{
  gsize avail = end - p;
  char buf[256];
  guint i;

  if (!tok->added_first[(guint8) * p])
    return NULL;
  for (i = 0; i < tok->added_lengths->len; i++) {
    gsize len = g_array_index (tok->added_lengths, gsize, i);
    gpointer v;

    if (len > avail || len >= sizeof buf)
      continue;
    memcpy (buf, p, len);
    buf[len] = '\0';
    v = g_hash_table_lookup (tok->added_index, buf);
    if (v != NULL)
      return &g_array_index (tok->added, AddedToken, GPOINTER_TO_UINT (v) - 1);
  }
  return NULL;
}

GArray *
f2_tokenizer_encode (F2Tokenizer *tok, const char *text, GError **error)
{
  const char *p, *end, *done;
  GArray *ids;
  gint32 id;

  g_return_val_if_fail (tok != NULL, NULL);
  g_return_val_if_fail (text != NULL, NULL);

  if (!g_utf8_validate (text, -1, &end)) {
    g_set_error (error, F2_TOKENIZER_ERROR, F2_TOKENIZER_ERROR_INVALID_TEXT,
        "the text is not valid UTF-8 (bad byte at offset %" G_GSIZE_FORMAT
        "); pass UTF-8 text", (gsize) (end - text));
    return NULL;
  }

  ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  id = F2_TOKENIZER_BOS_ID;
  g_array_append_val (ids, id);

  /* split on added tokens, leftmost then longest */
  done = text;
  for (p = text; p < end;) {
    const AddedToken *a = match_added (tok, p, end);
    const char *start = p, *stop;

    if (a == NULL) {
      p = g_utf8_next_char (p);
      continue;
    }
    stop = p + a->len;
    if (a->lstrip) {
      while (start > done) {
        const char *prev = g_utf8_prev_char (start);

        if (!is_space (g_utf8_get_char (prev)))
          break;
        start = prev;
      }
    }
    if (a->rstrip) {
      while (stop < end && is_space (g_utf8_get_char (stop)))
        stop = g_utf8_next_char (stop);
    }
    encode_plain (tok, done, start, ids);
    g_array_append_val (ids, a->id);
    done = p = stop;
  }
  encode_plain (tok, done, end, ids);

  id = F2_TOKENIZER_EOS_ID;
  g_array_append_val (ids, id);
  return ids;
}

/* ---- Decoding ---- */

/* Appends @n bytes as UTF-8, each maximal invalid subsequence replaced by
 * U+FFFD (what Rust's from_utf8_lossy does). */
static void
append_utf8_lossy (GString *out, const guint8 *s, gsize n)
{
  gsize i = 0;

  while (i < n) {
    guint8 b = s[i], lo = 0x80, hi = 0xBF;
    gsize need, j, k;

    if (b < 0x80) {
      g_string_append_c (out, b);
      i++;
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF)
      need = 1;
    else if (b == 0xE0)
      need = 2, lo = 0xA0;
    else if (b == 0xED)
      need = 2, hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF)
      need = 2;
    else if (b == 0xF0)
      need = 3, lo = 0x90;
    else if (b == 0xF4)
      need = 3, hi = 0x8F;
    else if (b >= 0xF1 && b <= 0xF3)
      need = 3;
    else {
      g_string_append_unichar (out, 0xFFFD);
      i++;
      continue;
    }
    for (k = 0, j = i + 1; k < need && j < n; k++, j++) {
      if (s[j] < (k == 0 ? lo : 0x80) || s[j] > (k == 0 ? hi : 0xBF))
        break;
    }
    if (k == need)
      g_string_append_len (out, (const char *) s + i, j - i);
    else
      g_string_append_unichar (out, 0xFFFD);
    i = j;
  }
}

/* The token's bytes: byte-level characters mapped back, or its own UTF-8
 * when any character is outside that alphabet. */
static void
append_token_bytes (F2Tokenizer *tok, GByteArray *bytes, const char *token)
{
  guint start = bytes->len;
  const char *p;

  for (p = token; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    guint8 b;

    if (c > BYTE_CHAR_MAX || tok->char_byte[c] < 0) {
      g_byte_array_set_size (bytes, start);
      g_byte_array_append (bytes, (const guint8 *) token, strlen (token));
      return;
    }
    b = (guint8) tok->char_byte[c];
    g_byte_array_append (bytes, &b, 1);
  }
}

char *
f2_tokenizer_decode_full (F2Tokenizer *tok, const gint32 *ids, gsize n_ids,
    gboolean skip_special, gboolean clean_up_spaces)
{
  /* the reference's clean_up_tokenization, replacements in this order */
  static const char *const cleanups[][2] = {
    {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
    {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"},
    {" 're", "'re"},
  };
  GByteArray *bytes;
  GString *text;
  gsize i;

  g_return_val_if_fail (tok != NULL, NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);

  bytes = g_byte_array_new ();
  for (i = 0; i < n_ids; i++) {
    const char *token = f2_tokenizer_id_to_token (tok, ids[i]);

    if (token == NULL || (skip_special && tok->special->data[ids[i]]))
      continue;
    append_token_bytes (tok, bytes, token);
  }
  text = g_string_sized_new (bytes->len + 1);
  append_utf8_lossy (text, bytes->data, bytes->len);
  g_byte_array_unref (bytes);

  if (clean_up_spaces) {
    for (i = 0; i < G_N_ELEMENTS (cleanups); i++)
      g_string_replace (text, cleanups[i][0], cleanups[i][1], 0);
  }
  return g_string_free (text, FALSE);
}

char *
f2_tokenizer_decode (F2Tokenizer *tok, const gint32 *ids, gsize n_ids,
    gboolean skip_special)
{
  return f2_tokenizer_decode_full (tok, ids, n_ids, skip_special, TRUE);
}

/* ---- Look-ups ---- */

const char *
f2_tokenizer_id_to_token (F2Tokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, NULL);

  if (id < 0 || (guint) id >= tok->tokens->len)
    return NULL;
  return g_ptr_array_index (tok->tokens, id);
}

gint32
f2_tokenizer_token_to_id (F2Tokenizer *tok, const char *token)
{
  g_return_val_if_fail (tok != NULL, -1);
  g_return_val_if_fail (token != NULL, -1);

  return lookup_id (tok, token);
}

gboolean
f2_tokenizer_is_special (F2Tokenizer *tok, gint32 id)
{
  g_return_val_if_fail (tok != NULL, FALSE);

  return id >= 0 && (guint) id < tok->special->len && tok->special->data[id];
}

guint
f2_tokenizer_vocab_size (F2Tokenizer *tok)
{
  g_return_val_if_fail (tok != NULL, 0);

  return tok->tokens->len;
}
