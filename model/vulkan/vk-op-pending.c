/* Recorders whose kernels are still being written: they fail with a clear
 * error. Each one moves to its family's file when its kernel lands. */
#include "vk-ops.h"

#define PENDING(fn, what) \
  gboolean fn (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error) \
  { \
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED, \
        "the Vulkan kernel for %s is not available yet; use the CPU device", what); \
    return FALSE; \
  }

