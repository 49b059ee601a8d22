/* Vulkan instance, device selection, feature probing and driver quirks. */
#pragma once

#include "backend.h"

#include <vulkan/vulkan.h>

G_BEGIN_DECLS

/* Which kernel family a driver wants, per op class; picked by the quirk
 * table from the driver ID, overridable per op (F2Op.variant). */
typedef struct {
  F2Variant matmul;
  gboolean prefer_subgroup_broadcast;  /* share A operands through subgroupBroadcast */
  gboolean coopmat;                    /* fp16 matmuls on cooperative matrices, where reported */
  const char *reason;                  /* why this entry applies, for logs */
} F2VkQuirks;

typedef struct {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  guint32 queue_family;
  VkCommandPool command_pool;
  VkFence fence;                /* for one-off transfers (under the backend's lock) */
  GMutex queue_lock;            /* vkQueueSubmit needs the queue to itself */

  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties memory;
  VkDriverId driver_id;
  char driver_name[VK_MAX_DRIVER_NAME_SIZE];

  /* features we use */
  gboolean fp16_storage;               /* storageBuffer16BitAccess */
  gboolean fp16_math;                  /* shaderFloat16 */
  gboolean push_descriptors;           /* VK_KHR_push_descriptor */
  gboolean coopmat_nv;                 /* VK_NV_cooperative_matrix, feature enabled */
  gboolean coopmat_emulated;           /* F2_VULKAN_COOPMAT=emulate: its tiling without the extension */
  guint32 coopmat_m, coopmat_n, coopmat_k;  /* fp16 x fp16 -> fp32 shape used, 0 = none */
  gboolean subgroup_basic, subgroup_arithmetic, subgroup_ballot, subgroup_shuffle;
  guint32 subgroup_size;               /* the driver's default */
  /* VK_EXT_subgroup_size_control: compute pipelines may ask for any power
   * of two in [subgroup_min, subgroup_max] (equal where the size is fixed) */
  gboolean subgroup_control;
  guint32 subgroup_min, subgroup_max;
  guint32 max_workgroup_subgroups;     /* maxComputeWorkgroupSubgroups */
  guint32 gpu_subgroup;                /* size the GPU kernels are shaped for */
  gboolean timestamps;
  float timestamp_period_ns;

  /* limits */
  VkDeviceSize max_storage_range;
  VkDeviceSize max_allocation;
  VkDeviceSize storage_alignment;
  guint32 max_push_constants;
  guint32 max_workgroup_invocations;
  guint32 max_shared_memory;

  F2VkQuirks quirks;
  PFN_vkCmdPushDescriptorSetKHR cmd_push_descriptor_set;
  /* device buffers in host-visible memory are mapped and written directly;
   * F2_VULKAN_MAP_DEVICE=0 sends every transfer through the staging buffer
   * instead, as on a GPU whose memory the host cannot map (for tests) */
  gboolean map_device_memory;
} F2VkDevice;

/* The memory type for buffers among @type_bits, or G_MAXUINT32. Host
 * buffers (@host): host-visible and coherent, cached where there is such a
 * type. Device buffers: device-local; host-visible as well (mapped: no
 * staging copies) where @map_device and that memory is about as large as
 * the device's largest device-local heap (unified memory, a resizable BAR),
 * but not a 256 MiB BAR window, which the weights would overflow; any type
 * where no device-local one fits. */
guint32 f2_vk_memory_type_for (const VkPhysicalDeviceMemoryProperties *memory,
    guint32 type_bits, gboolean host, gboolean map_device);

/* Whether a block of memory type @type for host (@host) or device buffers
 * is mapped (else its transfers go through the staging buffer) */
gboolean f2_vk_device_maps (const F2VkDevice *dev, guint32 type, gboolean host);

/* Index of the first Vulkan 1.2 device that is a GPU (discrete,
 * integrated or virtual: not a CPU driver such as lavapipe), or -1. */
gint f2_vk_find_gpu (void);

/* Open the device described in f2_backend_new_vulkan(). With
 * F2_VULKAN_VALIDATION=1 in the environment the Khronos validation layer is
 * enabled and every message it prints is counted (see below). */

F2VkDevice *f2_vk_device_open (const char *selector, GError **error);
void f2_vk_device_close (F2VkDevice *dev);

/* Number of validation messages (warnings and errors) seen in this process. */
guint f2_vk_validation_message_count (void);

/* Turn a VkResult into a GError (one place for it). */
gboolean f2_vk_check (VkResult result, const char *what, GError **error);

/* Record and submit a one-off command buffer, waiting for it. */
typedef void (*F2VkRecordFunc) (VkCommandBuffer cmd, gpointer user_data);
gboolean f2_vk_run_once (F2VkDevice *dev, F2VkRecordFunc record,
    gpointer user_data, GError **error);

/* Submit @cmd and wait for it. */
/* Submit @cmd and wait for @fence (then reset it). Several threads may
 * submit at once, each with a fence of its own. */
gboolean f2_vk_submit_wait (F2VkDevice *dev, VkCommandBuffer cmd, VkFence fence,
    GError **error);

/* The subgroup size a kernel shaped for @want lanes runs at: @want where
 * the device lets a pipeline ask for it (then *required = @want, else 0),
 * otherwise the driver's default. */
guint32 f2_vk_device_subgroup_for (const F2VkDevice *dev, guint32 want, guint32 *required);

/* Whether the device runs the cooperative-matrix kernel at all (the real
 * one, or the emulation) */
gboolean f2_vk_device_has_coopmat (const F2VkDevice *dev);

/* Whether fp16 matmuls may take the cooperative-matrix kernel: the device
 * has it, the quirk table wants it and F2_VULKAN_COOPMAT is not 0. */
gboolean f2_vk_device_coopmat_on (const F2VkDevice *dev);

/* TRUE when @backend is a Vulkan backend whose device runs the
 * cooperative-matrix matmul (for tests that force it). */
gboolean f2_vk_backend_has_coopmat (F2Backend *backend);

/* A one-line summary of the device and its features, for logs and --help. */
char *f2_vk_device_describe (const F2VkDevice *dev);

G_END_DECLS
