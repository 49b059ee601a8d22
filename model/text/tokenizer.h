/* The Florence-2 text tokenizer: BART's byte-level BPE (as the Hugging Face
 * fast tokenizer of facebook/bart-large runs it) plus the 1024 special tokens
 * Florence2Processor adds (<od>, <loc_0>..<loc_999>, <poly>, ...).
 *
 * A tokenizer is immutable after loading and may be shared between threads.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _F2Tokenizer F2Tokenizer;

#define F2_TOKENIZER_BOS_ID 0   /* <s> */
#define F2_TOKENIZER_PAD_ID 1   /* <pad> */
#define F2_TOKENIZER_EOS_ID 2   /* </s> */

/* Loads tokenizer.json from @dir, or else vocab.json + merges.txt, and adds
 * the processor's tokens. NULL with @error set (naming the file and the fix)
 * when the files are missing or malformed. */
F2Tokenizer *f2_tokenizer_new_from_dir (const char *dir, GError **error);
void f2_tokenizer_free (F2Tokenizer *tok);

/* Token ids of @text (UTF-8) framed by <s> ... </s>, as gint32. Added and
 * special tokens written in the text ("<loc_12>", "</s>") are matched whole.
 * NULL with @error set when @text is not valid UTF-8. */
GArray *f2_tokenizer_encode (F2Tokenizer *tok, const char *text,
    GError **error);

/* Text of @ids like the fast tokenizer's decode(): byte-level decoding,
 * special tokens kept or dropped, then clean_up_tokenization_spaces
 * (" ." -> "." and the like). Unknown ids are dropped. g_free() the result. */
char *f2_tokenizer_decode (F2Tokenizer *tok, const gint32 *ids, gsize n_ids,
    gboolean skip_special);
/* The same with the clean-up made optional. */
char *f2_tokenizer_decode_full (F2Tokenizer *tok, const gint32 *ids,
    gsize n_ids, gboolean skip_special, gboolean clean_up_spaces);

/* The token string of @id in the byte-level alphabet ("Ġthe"), or NULL. */
const char *f2_tokenizer_id_to_token (F2Tokenizer *tok, gint32 id);
/* The id of token string @token, or -1. */
gint32 f2_tokenizer_token_to_id (F2Tokenizer *tok, const char *token);
/* TRUE for <s> </s> <pad> <unk> <mask> and the processor's tokens. */
gboolean f2_tokenizer_is_special (F2Tokenizer *tok, gint32 id);
/* Number of ids, added tokens included (51289 for Florence-2). */
guint f2_tokenizer_vocab_size (F2Tokenizer *tok);

#define F2_TOKENIZER_ERROR (f2_tokenizer_error_quark ())
GQuark f2_tokenizer_error_quark (void);
typedef enum {
  F2_TOKENIZER_ERROR_NOT_FOUND,   /* no tokenizer files in the directory */
  F2_TOKENIZER_ERROR_MALFORMED,   /* files present but unusable */
  F2_TOKENIZER_ERROR_INVALID_TEXT,        /* input is not UTF-8 */
} F2TokenizerError;

G_END_DECLS
