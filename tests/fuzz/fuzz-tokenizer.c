/* Fuzz target: the tokenizer on any text (prompts come from users) and any
 * id sequence (generated ids, ids past the vocabulary). The first byte
 * picks the mode. Uses the golden model's tokenizer (F2_GOLDEN_DIR). */
#include "fuzz.h"

#include "test-common.h"
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

static F2Tokenizer *
tokenizer (void)
{
  static F2Tokenizer *tok;

  if (tok == NULL) {
    char *dir = f2_test_golden_path ("tiny/model");     /* skips without it */
    GError *error = NULL;
    tok = f2_tokenizer_new_from_dir (dir, &error);
    g_free (dir);
    if (tok == NULL) {
      g_printerr ("%s\n", error->message);
      abort ();                 /* the golden tokenizer must load */
    }
  }
  return tok;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  F2Tokenizer *tok = tokenizer ();

  if (size == 0)
    return 0;
  if (data[0] & 1) {
    /* text -> ids -> text */
    char *text = fuzz_string (data + 1, size - 1);
    GArray *ids = f2_tokenizer_encode (tok, text, NULL);
    if (ids != NULL) {
      fuzz_accepted++;
      char *back = f2_tokenizer_decode (tok, (const gint32 *) ids->data, ids->len, FALSE);
      g_free (back);
      g_array_unref (ids);
    }
    g_free (text);
  } else {
    /* any ids, negative and past the vocabulary included */
    gsize n = (size - 1) / 4;
    gint32 *ids = g_new (gint32, MAX (n, 1));
    char *text;
    memcpy (ids, data + 1, n * 4);
    text = f2_tokenizer_decode_full (tok, ids, n, (data[0] & 2) != 0, (data[0] & 4) != 0);
    fuzz_accepted += text != NULL;
    g_free (text);
    g_free (ids);
  }
  return 0;
}

void
fuzz_add_seeds (GPtrArray *seeds)
{
  static const char *const texts[] = {
    "\001Locate the phrases in the image: a dog<loc_5> </s> caf\xc3\xa9 \xf0\x9f\x98\x80",
    "\001What does the image describe?",
  };
  static const gint32 ids[] = { 2, 0, 574, 22486, 50269, 51288, 51289, -1, 2 };
  GByteArray *b = g_byte_array_new ();
  guint8 mode = 0;

  tokenizer ();                 /* skip now, not after the seeds */
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    g_ptr_array_add (seeds, g_bytes_new_static (texts[i], strlen (texts[i])));
  g_byte_array_append (b, &mode, 1);
  g_byte_array_append (b, (const guint8 *) ids, sizeof ids);
  g_ptr_array_add (seeds, g_byte_array_free_to_bytes (b));
}
