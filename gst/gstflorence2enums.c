/* Enum types of the florence2 element. The task enum is built from the model
 * library's task table, so its values and nicks are the F2Task ones. */
#include "gstflorence2enums.h"

#include "backend.h"
#include "florence2.h"
#include "tasks.h"

GType
gst_florence2_task_get_type (void)
{
  static GType type = 0;

  if (g_once_init_enter (&type)) {
    /* lives as long as the type: never freed */
    GEnumValue *values = g_new0 (GEnumValue, F2_TASK_COUNT + 1);
    GType t;

    for (guint i = 0; i < F2_TASK_COUNT; i++) {
      const F2TaskInfo *info = f2_task_info ((F2Task) i);

      values[i].value = info->task;
      values[i].value_name = info->token;
      values[i].value_nick = info->nick;
    }
    t = g_enum_register_static ("GstFlorence2Task", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_florence2_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {F2_PRECISION_AUTO, "the device's default: fp16 on Vulkan, fp32 on cpu", "auto"},
    {F2_PRECISION_FP32, "fp32 throughout", "fp32"},
    {F2_PRECISION_FP16, "fp16 storage, fp32 accumulation (Vulkan)", "fp16"},
    {F2_PRECISION_BF16, "bf16 weights and matmul inputs, fp32 accumulation (cpu)", "bf16"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFlorence2Precision", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_florence2_latency_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_FLORENCE2_LATENCY_ALIGNED,
        "Each frame waits for and carries the results computed on it",
        "aligned"},
    {GST_FLORENCE2_LATENCY_LOW,
          "Frames leave at once; results attach to later frames, marked with "
          "the PTS of their source frame", "low-latency"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFlorence2LatencyMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}
