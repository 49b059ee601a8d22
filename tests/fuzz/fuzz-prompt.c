/* Fuzz target: a user's prompt or region for any task (the element's
 * `prompt` property, the CLI's --prompt). The first byte picks the task. */
#include "fuzz.h"

#include "tasks.h"


int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text, *prompt;

  if (size == 0)
    return 0;
  text = fuzz_string (data + 1, size - 1);
  prompt = f2_task_build_prompt ((F2Task) (data[0] % F2_TASK_COUNT),
      (data[0] & 0x80) ? NULL : text, NULL);
  fuzz_accepted += prompt != NULL;
  g_free (prompt);
  g_free (text);
  return 0;
}

void
fuzz_add_seeds (GPtrArray *seeds)
{
  static const char *const texts[] = {
    "a green car", "<loc_1><loc_2><loc_300><loc_999>", "<loc_0><loc_0><loc_0>", "",
  };

  fuzz_add_task_seeds (seeds, texts, G_N_ELEMENTS (texts));
}
