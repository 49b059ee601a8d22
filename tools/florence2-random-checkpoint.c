/* florence2-random-checkpoint CONFIG_DIR OUT_DIR [--seed N] [--dtype f32|f16|bf16]
 *
 * Writes a Florence-2 model directory with random weights: the config,
 * preprocessor and tokenizer files of CONFIG_DIR, and a model.safetensors
 * holding every tensor the real model has, with its name and shape. */
#include "random-checkpoint.h"

#include <stdio.h>
#include <stdlib.h>

int
main (int argc, char **argv)
{
  gint64 seed = 0;
  char *dtype_name = NULL;
  GOptionEntry entries[] = {
    {"seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Random seed (default 0)", "N"},
    {"dtype", 'd', 0, G_OPTION_ARG_STRING, &dtype_name,
        "Tensor type: f32 (default), f16 or bf16", "TYPE"},
    {NULL}
  };
  GOptionContext *context;
  GError *error = NULL;
  F2DType dtype = F2_DTYPE_F32;
  int status = EXIT_SUCCESS;

  context = g_option_context_new ("CONFIG_DIR OUT_DIR");
  g_option_context_set_summary (context, "Write a Florence-2 checkpoint with "
      "random weights for the configuration in CONFIG_DIR.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    fprintf (stderr, "%s\n", error->message);
    status = 2;
    goto out;
  }
  if (argc != 3) {
    char *help = g_option_context_get_help (context, TRUE, NULL);
    fprintf (stderr, "%s", help);
    g_free (help);
    status = 2;
    goto out;
  }
  if (dtype_name == NULL || g_ascii_strcasecmp (dtype_name, "f32") == 0)
    dtype = F2_DTYPE_F32;
  else if (g_ascii_strcasecmp (dtype_name, "f16") == 0)
    dtype = F2_DTYPE_F16;
  else if (g_ascii_strcasecmp (dtype_name, "bf16") == 0)
    dtype = F2_DTYPE_BF16;
  else {
    fprintf (stderr, "unknown --dtype '%s': use f32, f16 or bf16\n", dtype_name);
    status = 2;
    goto out;
  }
  if (seed < 0) {
    fprintf (stderr, "--seed must not be negative\n");
    status = 2;
    goto out;
  }
  if (!f2_random_checkpoint_write_dir (argv[1], argv[2], (guint64) seed, dtype,
          &error)) {
    fprintf (stderr, "%s\n", error->message);
    status = EXIT_FAILURE;
  }

out:
  g_clear_error (&error);
  g_free (dtype_name);
  g_option_context_free (context);
  return status;
}
