/* Fuzz target: config.json and preprocessor_config.json, given as one input
 * split at its first NUL byte (no NUL: config.json alone). */
#include "fuzz.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *nul = memchr (data, 0, size);
  size_t first = nul ? (size_t) (nul - data) : size;
  char *config = fuzz_string (data, first);
  char *preprocessor = nul ? fuzz_string (nul + 1, size - first - 1) : NULL;
  F2Config *c = f2_config_load_from_data (config, preprocessor, "fuzz", NULL);

  if (c != NULL) {
    fuzz_accepted++;
    (void) f2_config_image_tokens (c);
  }
  f2_config_free (c);
  g_free (config);
  g_free (preprocessor);
  return 0;
}

/* config.json + NUL + preprocessor_config.json of @dir, when present */
static void
add_model_dir (GPtrArray *seeds, char *dir)
{
  char *config_path = g_build_filename (dir, "config.json", NULL);
  char *pre_path = g_build_filename (dir, "preprocessor_config.json", NULL);
  char *config, *pre;
  gsize config_len, pre_len;

  if (g_file_get_contents (config_path, &config, &config_len, NULL)) {
    GByteArray *b = g_byte_array_new_take ((guint8 *) config, config_len);
    if (g_file_get_contents (pre_path, &pre, &pre_len, NULL)) {
      g_byte_array_append (b, (const guint8 *) "", 1);
      g_byte_array_append (b, (const guint8 *) pre, pre_len);
      g_free (pre);
    }
    g_ptr_array_add (seeds, g_byte_array_free_to_bytes (b));
  }
  g_free (pre_path);
  g_free (config_path);
  g_free (dir);
}

/* The real base and large configs (F2_CONFIGS_DIR) and the golden tiny
 * model's (F2_GOLDEN_DIR). */
void
fuzz_add_seeds (GPtrArray *seeds)
{
  const char *configs = g_getenv ("F2_CONFIGS_DIR");
  const char *golden = g_getenv ("F2_GOLDEN_DIR");

  if (configs != NULL) {
    add_model_dir (seeds, g_build_filename (configs, "base", NULL));
    add_model_dir (seeds, g_build_filename (configs, "large", NULL));
  }
  if (golden != NULL)
    add_model_dir (seeds, g_build_filename (golden, "tiny", "model", NULL));
  if (seeds->len == 0) {
    g_printerr ("no configs to start from (F2_CONFIGS_DIR, F2_GOLDEN_DIR); skipping\n");
    exit (77);
  }
}
