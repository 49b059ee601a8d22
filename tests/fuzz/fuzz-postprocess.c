/* Fuzz target: the post-processor on any generated text. The first byte
 * picks the task (and so the parser); the rest is the text. */
#include "fuzz.h"

#include "postprocess.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const F2TaskInfo *task;
  char *text;
  F2Result *result;

  if (size == 0)
    return 0;
  task = f2_task_info ((F2Task) (data[0] % F2_TASK_COUNT));
  text = fuzz_string (data + 1, size - 1);
  result = f2_postprocess (task->token, f2_postprocess_type_for_task (task->token), text,
      1 + data[0], 480, NULL);
  fuzz_accepted += result != NULL;
  f2_result_free (result);
  g_free (text);
  return 0;
}

void
fuzz_add_seeds (GPtrArray *seeds)
{
  static const char *const texts[] = {
    "car<loc_10><loc_20><loc_300><loc_400>person<loc_1><loc_2><loc_3><loc_4>",
    "</s><s>a red<loc_5><loc_6><loc_7><loc_8><loc_9><loc_10></s>",
    "HELLO<loc_100><loc_100><loc_200><loc_100><loc_200><loc_150><loc_100><loc_150>",
    "<poly><loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><sep><loc_7><loc_8></poly>",
    "A caption with no locations.",
  };

  fuzz_add_task_seeds (seeds, texts, G_N_ELEMENTS (texts));
}
