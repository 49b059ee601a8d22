/* Building an F2VkDispatch: the helpers every recorder (vk-op-*.c) uses,
 * and the kernel family a matmul-like op gets on this device. Calls no
 * recorder and nothing of vk-backend.c. */
#include "vk-ops.h"

#include <string.h>

void
f2_vk_dispatch_init (F2VkDispatch *d, const char *shader)
{
  memset (d, 0, sizeof *d);
  d->shader = shader;
  d->float_variant = TRUE;
  d->groups[0] = d->groups[1] = d->groups[2] = 1;
}

void
f2_vk_dispatch_bind (F2VkDispatch *d, F2Ref ref, guint64 n_elements, gboolean written)
{
  g_return_if_fail (d->n_bind < F2_VK_MAX_BINDINGS);
  d->bind[d->n_bind++] = (F2VkBinding) { ref, n_elements, written };
}

void
f2_vk_dispatch_push (F2VkDispatch *d, guint32 value)
{
  g_return_if_fail (d->n_push < F2_VK_MAX_PUSH);
  d->push[d->n_push++] = value;
}

void
f2_vk_dispatch_push_float (F2VkDispatch *d, float value)
{
  guint32 bits;
  memcpy (&bits, &value, 4);
  f2_vk_dispatch_push (d, bits);
}

guint64
f2_vk_binding_bytes (F2VkBackend *vk)
{
  return vk->dev->max_storage_range - vk->dev->storage_alignment - 16;
}

void
f2_vk_dispatch_spec (F2VkDispatch *d, guint32 value)
{
  g_return_if_fail (d->n_spec < F2_VK_MAX_SPEC);
  d->spec[d->n_spec++] = value;
}

F2Variant
f2_vk_matmul_variant (F2VkBackend *vk, const F2Op *op)
{
  const char *v = g_getenv ("F2_VULKAN_MATMUL");
  F2Variant variant = vk->dev->quirks.matmul;

  if (op->variant != F2_VARIANT_AUTO)
    return op->variant;
  if (v != NULL && g_str_equal (v, "shared"))
    return F2_VARIANT_SHARED_TILED;
  if (v != NULL && g_str_equal (v, "register"))
    return F2_VARIANT_REGISTER_BLOCKED;
  if (v != NULL && g_str_equal (v, "coopmat"))
    return F2_VARIANT_COOPMAT;          /* where it runs; else shared tiles */
  /* cooperative matrices take fp16 matmuls where the device has them; the
   * matmul recorder sends other ops (attention, norms) and the shapes it
   * does not take to the shared-memory kernels */
  if (variant == F2_VARIANT_SHARED_TILED && f2_vk_is_fp16 (vk)
      && f2_vk_device_coopmat_on (vk->dev))
    return F2_VARIANT_COOPMAT;
  return variant;
}

guint32
f2_vk_target_subgroup (F2VkBackend *vk, F2Variant variant)
{
  if (variant == F2_VARIANT_SHARED_TILED_SG32)
    return 32;
  if (variant == F2_VARIANT_SHARED_TILED_SG64)
    return 64;
  return vk->dev->gpu_subgroup;
}

void
f2_vk_grid_1d (F2VkDispatch *d, guint64 n, guint32 local)
{
  guint64 groups = MAX (f2_div_up (n, local), 1);

  if (groups <= 65535) {
    d->groups[0] = (guint32) groups;
    d->groups[1] = 1;
  } else {
    d->groups[0] = 65535;
    d->groups[1] = f2_div_up (groups, 65535);
  }
}
