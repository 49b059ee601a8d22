/* Which backend a device name asks for (see f2_backend_open()). Kept apart
 * from backend.c, which every backend calls, so that no call goes both
 * ways between two files. */
#include "backend.h"
#include "vk-device.h"

#include <string.h>

F2Backend *
f2_backend_open (const char *device, F2Precision precision, guint threads,
    GError **error)
{
  const char *env = g_getenv ("F2_VULKAN_DEVICE");

  if (device == NULL || device[0] == '\0' || g_ascii_strcasecmp (device, "auto") == 0) {
    gint gpu;
    char index[16];

    if (env != NULL && env[0] != '\0')
      return f2_backend_new_vulkan (env, precision, error);
    gpu = f2_vk_find_gpu ();
    if (gpu < 0)
      return f2_backend_new_cpu (precision, threads, error);
    g_snprintf (index, sizeof index, "%d", gpu);
    return f2_backend_new_vulkan (index, precision, error);
  }
  if (g_ascii_strcasecmp (device, "cpu") == 0)
    return f2_backend_new_cpu (precision, threads, error);
  if (g_ascii_strcasecmp (device, "reference") == 0) {
    if (precision != F2_PRECISION_AUTO && precision != F2_PRECISION_FP32) {
      g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_UNSUPPORTED,
          "the reference backend computes in fp32 only; precision %s is for "
          "the cpu or Vulkan backends", f2_precision_name (precision));
      return NULL;
    }
    return f2_backend_new_reference ();
  }
  return f2_backend_new_vulkan (device, precision, error);
}
