/* Vulkan instance and device: selection by index or name, feature probing,
 * the driver quirk table, and the validation-message counter tests use. */
#include "vk-device.h"

#include <stdio.h>
#include <string.h>

static gint validation_messages = 0;

guint
f2_vk_validation_message_count (void)
{
  return (guint) g_atomic_int_get (&validation_messages);
}

gboolean
f2_vk_check (VkResult result, const char *what, GError **error)
{
  int code;
  const char *hint;

  if (result == VK_SUCCESS)
    return TRUE;
  switch (result) {
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      code = F2_BACKEND_ERROR_OUT_OF_MEMORY;
      hint = "out of memory: use precision fp16, a smaller model, or free memory on the device";
      break;
    case VK_ERROR_DEVICE_LOST:
      code = F2_BACKEND_ERROR_DEVICE_LOST;
      hint = "the Vulkan device was lost (driver reset or crash); restart the pipeline";
      break;
    case VK_ERROR_INCOMPATIBLE_DRIVER:
    case VK_ERROR_INITIALIZATION_FAILED:
      code = F2_BACKEND_ERROR_NO_DEVICE;
      hint = "no usable Vulkan driver: install mesa-vulkan-drivers (lavapipe) or your GPU's Vulkan driver";
      break;
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_FEATURE_NOT_PRESENT:
      code = F2_BACKEND_ERROR_UNSUPPORTED;
      hint = "the device lacks a required Vulkan feature";
      break;
    default:
      code = F2_BACKEND_ERROR_FAILED;
      hint = "Vulkan call failed";
      break;
  }
  g_set_error (error, F2_BACKEND_ERROR, code, "%s: VkResult %d (%s)", what,
      (int) result, hint);
  return FALSE;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_validation_message (VkDebugUtilsMessageSeverityFlagBitsEXT severity,
    VkDebugUtilsMessageTypeFlagsEXT type,
    const VkDebugUtilsMessengerCallbackDataEXT *data, void *user_data)
{
  g_atomic_int_inc (&validation_messages);
  g_printerr ("Vulkan validation: %s\n", data->pMessage);
  return VK_FALSE;
}

static gboolean
layer_available (const char *name)
{
  guint32 n = 0;
  VkLayerProperties *layers;
  gboolean found = FALSE;

  vkEnumerateInstanceLayerProperties (&n, NULL);
  layers = g_new0 (VkLayerProperties, n);
  vkEnumerateInstanceLayerProperties (&n, layers);
  for (guint32 i = 0; i < n; i++)
    found |= strcmp (layers[i].layerName, name) == 0;
  g_free (layers);
  return found;
}

static gboolean
device_has_extension (VkPhysicalDevice physical, const char *name)
{
  guint32 n = 0;
  VkExtensionProperties *exts;
  gboolean found = FALSE;

  vkEnumerateDeviceExtensionProperties (physical, NULL, &n, NULL);
  exts = g_new0 (VkExtensionProperties, n);
  vkEnumerateDeviceExtensionProperties (physical, NULL, &n, exts);
  for (guint32 i = 0; i < n; i++)
    found |= strcmp (exts[i].extensionName, name) == 0;
  g_free (exts);
  return found;
}

static gboolean
create_instance (F2VkDevice *dev, GError **error)
{
  const char *layers[1];
  const char *extensions[1];
  guint32 n_layers = 0, n_extensions = 0;
  gboolean validate = g_strcmp0 (g_getenv ("F2_VULKAN_VALIDATION"), "1") == 0;
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "gst-florence2",
    .apiVersion = VK_API_VERSION_1_2,
  };
  VkInstanceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
  };
  VkDebugUtilsMessengerCreateInfoEXT messenger_info = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
        VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
        VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
        VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
    .pfnUserCallback = on_validation_message,
  };

  if (validate) {
    if (!layer_available ("VK_LAYER_KHRONOS_validation")) {
      g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_NO_DEVICE,
          "F2_VULKAN_VALIDATION=1 but the Khronos validation layer is not "
          "installed (Debian package vulkan-validationlayers)");
      return FALSE;
    }
    layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
    extensions[n_extensions++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    info.pNext = &messenger_info;
  }
  info.enabledLayerCount = n_layers;
  info.ppEnabledLayerNames = layers;
  info.enabledExtensionCount = n_extensions;
  info.ppEnabledExtensionNames = extensions;

  if (!f2_vk_check (vkCreateInstance (&info, NULL, &dev->instance),
          "creating the Vulkan instance", error))
    return FALSE;

  if (validate) {
    PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr (dev->instance, "vkCreateDebugUtilsMessengerEXT");
    if (create != NULL)
      create (dev->instance, &messenger_info, NULL, &dev->messenger);
  }
  return TRUE;
}

static gboolean
select_physical_device (F2VkDevice *dev, const char *selector, GError **error)
{
  guint32 n = 0;
  VkPhysicalDevice *devices;
  GString *names;
  char *end = NULL;
  guint64 index;

  vkEnumeratePhysicalDevices (dev->instance, &n, NULL);
  if (n == 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_NO_DEVICE,
        "no Vulkan device found: install a Vulkan driver (on Debian, "
        "mesa-vulkan-drivers gives the CPU device lavapipe) and check "
        "VK_ICD_FILENAMES");
    return FALSE;
  }
  devices = g_new0 (VkPhysicalDevice, n);
  vkEnumeratePhysicalDevices (dev->instance, &n, devices);

  names = g_string_new (NULL);
  for (guint32 i = 0; i < n; i++) {
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties (devices[i], &props);
    g_string_append_printf (names, "%s%u: %s", i ? ", " : "", i, props.deviceName);
  }

  if (selector == NULL || selector[0] == '\0')
    selector = "0";
  index = g_ascii_strtoull (selector, &end, 10);
  if (end != selector && *end == '\0') {
    if (index < n)
      dev->physical = devices[index];
  } else {
    for (guint32 i = 0; i < n && dev->physical == VK_NULL_HANDLE; i++) {
      VkPhysicalDeviceProperties props;
      char *a, *b;
      vkGetPhysicalDeviceProperties (devices[i], &props);
      a = g_ascii_strdown (props.deviceName, -1);
      b = g_ascii_strdown (selector, -1);
      if (strstr (a, b) != NULL)
        dev->physical = devices[i];
      g_free (a);
      g_free (b);
    }
  }
  if (dev->physical == VK_NULL_HANDLE)
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_NO_DEVICE,
        "no Vulkan device matches '%s'; available devices: %s (give an index "
        "or part of a name, or auto, cpu or reference)", selector, names->str);
  g_string_free (names, TRUE);
  g_free (devices);
  return dev->physical != VK_NULL_HANDLE;
}

/* The quirk table: which kernel family each driver wants. CPU drivers turn
 * every shared-memory access into a scalar loop, so register blocking pays
 * there; GPUs want shared-memory tiles, and cooperative matrices for fp16
 * where the device reports them (f2_vk_matmul_variant). */
static void
apply_quirks (F2VkDevice *dev)
{
  static const struct {
    VkDriverId driver;
    F2VkQuirks quirks;
  } table[] = {
    { VK_DRIVER_ID_MESA_LLVMPIPE, { F2_VARIANT_REGISTER_BLOCKED, TRUE, FALSE,
            "lavapipe: shared memory is slow, subgroup broadcast is cheap" } },
    { VK_DRIVER_ID_NVIDIA_PROPRIETARY, { F2_VARIANT_SHARED_TILED, FALSE, TRUE,
            "NVIDIA: shared-memory tiles, tensor cores for fp16" } },
    { VK_DRIVER_ID_AMD_PROPRIETARY, { F2_VARIANT_SHARED_TILED, FALSE, TRUE, "AMD: shared-memory tiles" } },
    { VK_DRIVER_ID_AMD_OPEN_SOURCE, { F2_VARIANT_SHARED_TILED, FALSE, TRUE, "AMDVLK: shared-memory tiles" } },
    { VK_DRIVER_ID_MESA_RADV, { F2_VARIANT_SHARED_TILED, FALSE, TRUE, "RADV: shared-memory tiles" } },
    { VK_DRIVER_ID_INTEL_OPEN_SOURCE_MESA, { F2_VARIANT_SHARED_TILED, FALSE, TRUE, "ANV: shared-memory tiles" } },
  };
  F2VkQuirks fallback = { F2_VARIANT_SHARED_TILED, FALSE, TRUE, "default: shared-memory tiles" };

  dev->quirks = fallback;
  if (dev->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU)
    dev->quirks = table[0].quirks;
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    if (table[i].driver == dev->driver_id)
      dev->quirks = table[i].quirks;
}

/* A power of two the GPU kernels are shaped for: 32 lanes where the
 * device lets pipelines choose it (NVIDIA's warp, RDNA's wave32), else the
 * driver's own size (64 on GCN). */
static guint32
pick_gpu_subgroup (const F2VkDevice *dev)
{
  /* F2_VULKAN_SUBGROUP=N shapes them for N lanes instead (for comparisons,
   * or to run the GPU shapes on a CPU driver); asked for where allowed */
  const char *env = g_getenv ("F2_VULKAN_SUBGROUP");
  guint64 n = env != NULL ? g_ascii_strtoull (env, NULL, 10) : 0;

  if (n >= 4 && n <= 128 && (n & (n - 1)) == 0)
    return (guint32) n;
  if (dev->subgroup_control && dev->subgroup_min <= 32 && dev->subgroup_max >= 32)
    return 32;
  return dev->subgroup_size;
}

guint32
f2_vk_device_subgroup_for (const F2VkDevice *dev, guint32 want, guint32 *required)
{
  *required = 0;
  /* a workgroup of up to 256 invocations (the largest we use) must fit in
   * maxComputeWorkgroupSubgroups subgroups of that size */
  if (dev->subgroup_control && dev->subgroup_min < dev->subgroup_max
      && want >= dev->subgroup_min && want <= dev->subgroup_max
      && (guint64) dev->max_workgroup_subgroups * want >= 256) {
    *required = want;
    return want;
  }
  return dev->subgroup_size;
}

/* The subgroup size range, where VK_EXT_subgroup_size_control lets compute
 * pipelines ask for one (it needs the feature enabled at device creation:
 * dev->subgroup_control stays FALSE otherwise). */
static void
probe_subgroup_control (F2VkDevice *dev)
{
  VkPhysicalDeviceSubgroupSizeControlPropertiesEXT props = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT,
  };
  VkPhysicalDeviceProperties2 props2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
    .pNext = &props,
  };
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT features = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
  };
  VkPhysicalDeviceFeatures2 features2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
    .pNext = &features,
  };

  dev->subgroup_min = dev->subgroup_max = dev->subgroup_size;
  if (!device_has_extension (dev->physical, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME))
    return;
  vkGetPhysicalDeviceProperties2 (dev->physical, &props2);
  vkGetPhysicalDeviceFeatures2 (dev->physical, &features2);
  if (!features.subgroupSizeControl || props.minSubgroupSize == 0
      || !(props.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT))
    return;
  dev->subgroup_control = TRUE;
  dev->subgroup_min = props.minSubgroupSize;
  dev->subgroup_max = props.maxSubgroupSize;
  dev->max_workgroup_subgroups = props.maxComputeWorkgroupSubgroups;
}

/* Is @p a subgroup-scope fp16 x fp16 + fp32 shape the coopmat kernel can
 * take (every side a power of two from 8 to 32: a subgroup's 32 x 32 tile
 * is a whole number of them)? */
static gboolean
coopmat_shape_usable (const VkCooperativeMatrixPropertiesNV *p)
{
  return p->AType == VK_COMPONENT_TYPE_FLOAT16_NV && p->BType == VK_COMPONENT_TYPE_FLOAT16_NV
      && p->CType == VK_COMPONENT_TYPE_FLOAT32_NV && p->DType == VK_COMPONENT_TYPE_FLOAT32_NV
      && p->scope == VK_SCOPE_SUBGROUP_NV
      && (p->MSize == 8 || p->MSize == 16 || p->MSize == 32)
      && (p->NSize == 8 || p->NSize == 16 || p->NSize == 32)
      && (p->KSize == 8 || p->KSize == 16 || p->KSize == 32);
}

/* F2_VULKAN_COOPMAT=emulate (or emulate=MxNxK): the cooperative-matrix
 * kernel's tiling with its matrix operations in plain code, on a device
 * without the extension, so that tests check it on lavapipe */
static void
probe_coopmat_emulation (F2VkDevice *dev)
{
  const char *env = g_getenv ("F2_VULKAN_COOPMAT");
  VkCooperativeMatrixPropertiesNV shape = {
    .MSize = 16, .NSize = 16, .KSize = 16,
    .AType = VK_COMPONENT_TYPE_FLOAT16_NV, .BType = VK_COMPONENT_TYPE_FLOAT16_NV,
    .CType = VK_COMPONENT_TYPE_FLOAT32_NV, .DType = VK_COMPONENT_TYPE_FLOAT32_NV,
    .scope = VK_SCOPE_SUBGROUP_NV,
  };

  if (env == NULL || !g_str_has_prefix (env, "emulate"))
    return;
  if (env[7] == '=' && sscanf (env + 8, "%ux%ux%u", &shape.MSize, &shape.NSize,
          &shape.KSize) != 3)
    return;
  if (!coopmat_shape_usable (&shape))
    return;
  dev->coopmat_emulated = TRUE;
  dev->coopmat_m = shape.MSize;
  dev->coopmat_n = shape.NSize;
  dev->coopmat_k = shape.KSize;
}

/* F2_VULKAN_STORAGE_RANGE=BYTES lowers the storage buffer range the
 * kernels plan for, so that tests reach the code that splits large ops on
 * a device whose own limit is far above their tensors. */
static void
lower_storage_range (F2VkDevice *dev)
{
  const char *env = g_getenv ("F2_VULKAN_STORAGE_RANGE");
  guint64 bytes = env != NULL ? g_ascii_strtoull (env, NULL, 10) : 0;

  if (bytes >= 65536 && bytes < dev->max_storage_range)
    dev->max_storage_range = bytes;
  else if (env != NULL)
    g_message ("F2_VULKAN_STORAGE_RANGE=%s ignored: give a number of bytes "
        "from 65536 to the device's %" G_GUINT64_FORMAT, env,
        (guint64) dev->max_storage_range);
}

/* VK_NV_cooperative_matrix: its feature, and the shape the coopmat matmul
 * takes (16x16x16 where listed, else the first usable one). The kernel
 * also needs fp16 arithmetic and storage, and a subgroup size it can rely
 * on (a fixed one, or one it can ask for). */
static void
probe_coopmat (F2VkDevice *dev)
{
  VkPhysicalDeviceCooperativeMatrixFeaturesNV features = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
  };
  VkPhysicalDeviceFeatures2 features2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
    .pNext = &features,
  };
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get_props;
  VkCooperativeMatrixPropertiesNV *props;
  guint32 n = 0;

  dev->coopmat_nv = FALSE;
  if (!dev->fp16_storage || !dev->fp16_math || !dev->subgroup_basic)
    return;
  if (!device_has_extension (dev->physical, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME)) {
    probe_coopmat_emulation (dev);
    return;
  }
  vkGetPhysicalDeviceFeatures2 (dev->physical, &features2);
  get_props = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
      vkGetInstanceProcAddr (dev->instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
  if (!features.cooperativeMatrix || get_props == NULL
      || get_props (dev->physical, &n, NULL) != VK_SUCCESS || n == 0)
    return;
  props = g_new0 (VkCooperativeMatrixPropertiesNV, n);
  for (guint32 i = 0; i < n; i++)
    props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
  if (get_props (dev->physical, &n, props) == VK_SUCCESS) {
    for (guint32 i = 0; i < n; i++) {
      gboolean square = props[i].MSize == 16 && props[i].NSize == 16 && props[i].KSize == 16;
      if (!coopmat_shape_usable (&props[i]) || (dev->coopmat_m != 0 && !square))
        continue;
      dev->coopmat_m = props[i].MSize;
      dev->coopmat_n = props[i].NSize;
      dev->coopmat_k = props[i].KSize;
    }
  }
  g_free (props);
  dev->coopmat_nv = dev->coopmat_m != 0;
}

static void
probe_features (F2VkDevice *dev)
{
  VkPhysicalDeviceSubgroupProperties subgroup = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
  };
  VkPhysicalDeviceDriverProperties driver = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
    .pNext = &subgroup,
  };
  VkPhysicalDeviceMaintenance3Properties maint3 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES,
    .pNext = &driver,
  };
  VkPhysicalDeviceProperties2 props2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
    .pNext = &maint3,
  };
  VkPhysicalDevice16BitStorageFeatures storage16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
  };
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
    .pNext = &storage16,
  };
  VkPhysicalDeviceFeatures2 features2 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
    .pNext = &f16,
  };
  guint32 n_families = 0;
  VkQueueFamilyProperties *families;

  vkGetPhysicalDeviceProperties2 (dev->physical, &props2);
  vkGetPhysicalDeviceFeatures2 (dev->physical, &features2);
  vkGetPhysicalDeviceMemoryProperties (dev->physical, &dev->memory);
  dev->props = props2.properties;
  dev->driver_id = driver.driverID;
  g_strlcpy (dev->driver_name, driver.driverName, sizeof dev->driver_name);

  dev->fp16_storage = storage16.storageBuffer16BitAccess;
  dev->fp16_math = f16.shaderFloat16;
  dev->push_descriptors = device_has_extension (dev->physical,
      VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
  dev->subgroup_size = subgroup.subgroupSize;
  dev->subgroup_basic = (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
      (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
  dev->subgroup_arithmetic = dev->subgroup_basic &&
      (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  dev->subgroup_ballot = dev->subgroup_basic &&
      (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT);
  dev->subgroup_shuffle = dev->subgroup_basic &&
      (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
  probe_subgroup_control (dev);
  dev->gpu_subgroup = pick_gpu_subgroup (dev);
  probe_coopmat (dev);

  dev->max_storage_range = dev->props.limits.maxStorageBufferRange;
  lower_storage_range (dev);
  dev->max_allocation = maint3.maxMemoryAllocationSize;
  dev->storage_alignment = MAX (dev->props.limits.minStorageBufferOffsetAlignment, 4);
  dev->max_push_constants = dev->props.limits.maxPushConstantsSize;
  dev->max_workgroup_invocations = dev->props.limits.maxComputeWorkGroupInvocations;
  dev->max_shared_memory = dev->props.limits.maxComputeSharedMemorySize;
  dev->timestamp_period_ns = dev->props.limits.timestampPeriod;

  vkGetPhysicalDeviceQueueFamilyProperties (dev->physical, &n_families, NULL);
  families = g_new0 (VkQueueFamilyProperties, n_families);
  vkGetPhysicalDeviceQueueFamilyProperties (dev->physical, &n_families, families);
  dev->queue_family = G_MAXUINT32;
  /* prefer a compute-only family (async compute on GPUs), else any with compute */
  for (guint32 i = 0; i < n_families; i++)
    if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
        !(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT) && dev->queue_family == G_MAXUINT32)
      dev->queue_family = i;
  for (guint32 i = 0; i < n_families && dev->queue_family == G_MAXUINT32; i++)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
      dev->queue_family = i;
  if (dev->queue_family != G_MAXUINT32)
    dev->timestamps = families[dev->queue_family].timestampValidBits > 0 &&
        dev->timestamp_period_ns > 0;
  g_free (families);
  apply_quirks (dev);
  dev->map_device_memory = g_strcmp0 (g_getenv ("F2_VULKAN_MAP_DEVICE"), "0") != 0;
}

static VkDeviceSize
largest_device_heap (const VkPhysicalDeviceMemoryProperties *memory)
{
  VkDeviceSize largest = 0;

  for (guint32 i = 0; i < memory->memoryHeapCount; i++)
    if (memory->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      largest = MAX (largest, memory->memoryHeaps[i].size);
  return largest;
}

guint32
f2_vk_memory_type_for (const VkPhysicalDeviceMemoryProperties *memory,
    guint32 type_bits, gboolean host, gboolean map_device)
{
  const VkMemoryPropertyFlags visible =
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  VkDeviceSize largest = largest_device_heap (memory);
  guint32 first = G_MAXUINT32, any = G_MAXUINT32;

  for (guint32 i = 0; i < memory->memoryTypeCount && i < 32; i++) {
    VkMemoryPropertyFlags flags = memory->memoryTypes[i].propertyFlags;
    VkDeviceSize heap = memory->memoryHeaps[memory->memoryTypes[i].heapIndex].size;
    gboolean mappable;

    if (!(type_bits & (1u << i)))
      continue;
    if (any == G_MAXUINT32)
      any = i;
    if (host) {
      if ((flags & visible) != visible)
        continue;
      if (flags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
        return i;
    } else {
      if (!(flags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT))
        continue;
      /* at least half the largest device-local heap: all of it, not a window */
      mappable = (flags & visible) == visible && heap >= largest / 2;
      if (mappable == map_device)
        return i;
    }
    if (first == G_MAXUINT32)
      first = i;
  }
  return host || first != G_MAXUINT32 ? first : any;
}

gboolean
f2_vk_device_maps (const F2VkDevice *dev, guint32 type, gboolean host)
{
  return type < dev->memory.memoryTypeCount
      && (dev->memory.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
      && (host || dev->map_device_memory);
}

static gboolean
create_device (F2VkDevice *dev, GError **error)
{
  float priority = 1.0f;
  const char *extensions[4];
  guint32 n_extensions = 0;
  VkDeviceQueueCreateInfo queue = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = dev->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &priority,
  };
  VkPhysicalDevice16BitStorageFeatures storage16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
    .storageBuffer16BitAccess = dev->fp16_storage,
  };
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
    .pNext = &storage16,
    .shaderFloat16 = dev->fp16_math,
  };
  VkPhysicalDeviceSubgroupSizeControlFeaturesEXT size_control = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
    .subgroupSizeControl = VK_TRUE,
  };
  VkPhysicalDeviceCooperativeMatrixFeaturesNV coopmat = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
    .cooperativeMatrix = VK_TRUE,
  };
  VkDeviceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &f16,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &queue,
  };
  VkCommandPoolCreateInfo pool = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = dev->queue_family,
  };
  VkFenceCreateInfo fence = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };

  if (dev->queue_family == G_MAXUINT32) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_NO_DEVICE,
        "Vulkan device '%s' has no compute queue; choose another device",
        dev->props.deviceName);
    return FALSE;
  }
  if (dev->push_descriptors)
    extensions[n_extensions++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
  /* the optional features only where probe_features found them */
  if (dev->subgroup_control) {
    extensions[n_extensions++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    size_control.pNext = (void *) info.pNext;
    info.pNext = &size_control;
  }
  if (dev->coopmat_nv) {
    extensions[n_extensions++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    coopmat.pNext = (void *) info.pNext;
    info.pNext = &coopmat;
  }
  info.enabledExtensionCount = n_extensions;
  info.ppEnabledExtensionNames = extensions;

  if (!f2_vk_check (vkCreateDevice (dev->physical, &info, NULL, &dev->device),
          "creating the Vulkan device", error))
    return FALSE;
  vkGetDeviceQueue (dev->device, dev->queue_family, 0, &dev->queue);
  if (dev->push_descriptors)
    dev->cmd_push_descriptor_set = (PFN_vkCmdPushDescriptorSetKHR)
        vkGetDeviceProcAddr (dev->device, "vkCmdPushDescriptorSetKHR");
  dev->push_descriptors = dev->cmd_push_descriptor_set != NULL;
  if (!f2_vk_check (vkCreateCommandPool (dev->device, &pool, NULL, &dev->command_pool),
          "creating a command pool", error))
    return FALSE;
  return f2_vk_check (vkCreateFence (dev->device, &fence, NULL, &dev->fence),
      "creating a fence", error);
}

gint
f2_vk_find_gpu (void)
{
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "gst-florence2",
    .apiVersion = VK_API_VERSION_1_2,
  };
  VkInstanceCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
  };
  VkInstance instance;
  VkPhysicalDevice *devices;
  guint32 n = 0;
  gint found = -1;

  if (vkCreateInstance (&info, NULL, &instance) != VK_SUCCESS)
    return -1;
  vkEnumeratePhysicalDevices (instance, &n, NULL);
  devices = g_new0 (VkPhysicalDevice, MAX (n, 1));
  vkEnumeratePhysicalDevices (instance, &n, devices);
  for (guint32 i = 0; i < n && found < 0; i++) {
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties (devices[i], &props);
    if (props.apiVersion >= VK_API_VERSION_1_2
        && (props.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
            || props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU
            || props.deviceType == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU))
      found = i;
  }
  g_free (devices);
  vkDestroyInstance (instance, NULL);
  return found;
}

F2VkDevice *
f2_vk_device_open (const char *selector, GError **error)
{
  F2VkDevice *dev = g_new0 (F2VkDevice, 1);

  g_mutex_init (&dev->queue_lock);
  if (selector == NULL || selector[0] == '\0')
    selector = g_getenv ("F2_VULKAN_DEVICE");
  if (!create_instance (dev, error) ||
      !select_physical_device (dev, selector, error)) {
    f2_vk_device_close (dev);
    return NULL;
  }
  probe_features (dev);
  if (dev->props.apiVersion < VK_API_VERSION_1_2) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "Vulkan device '%s' supports Vulkan %u.%u; 1.2 or newer is needed "
        "(update the driver or choose another device)", dev->props.deviceName,
        VK_API_VERSION_MAJOR (dev->props.apiVersion),
        VK_API_VERSION_MINOR (dev->props.apiVersion));
    f2_vk_device_close (dev);
    return NULL;
  }
  if (!create_device (dev, error)) {
    f2_vk_device_close (dev);
    return NULL;
  }
  return dev;
}

void
f2_vk_device_close (F2VkDevice *dev)
{
  if (dev == NULL)
    return;
  if (dev->device != VK_NULL_HANDLE) {
    vkDeviceWaitIdle (dev->device);
    if (dev->fence != VK_NULL_HANDLE)
      vkDestroyFence (dev->device, dev->fence, NULL);
    if (dev->command_pool != VK_NULL_HANDLE)
      vkDestroyCommandPool (dev->device, dev->command_pool, NULL);
    vkDestroyDevice (dev->device, NULL);
  }
  if (dev->messenger != VK_NULL_HANDLE) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr (dev->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy != NULL)
      destroy (dev->instance, dev->messenger, NULL);
  }
  if (dev->instance != VK_NULL_HANDLE)
    vkDestroyInstance (dev->instance, NULL);
  g_mutex_clear (&dev->queue_lock);
  g_free (dev);
}

gboolean
f2_vk_submit_wait (F2VkDevice *dev, VkCommandBuffer cmd, VkFence fence,
    GError **error)
{
  VkSubmitInfo submit = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &cmd,
  };
  VkResult result;

  g_mutex_lock (&dev->queue_lock);
  result = vkQueueSubmit (dev->queue, 1, &submit, fence);
  g_mutex_unlock (&dev->queue_lock);
  if (!f2_vk_check (result, "submitting work", error))
    return FALSE;
  /* generous: a CPU device runs a large model's vision tower for minutes */
  result = vkWaitForFences (dev->device, 1, &fence, VK_TRUE,
      G_GUINT64_CONSTANT (1800) * 1000000000);
  if (result == VK_TIMEOUT) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_DEVICE_LOST,
        "the Vulkan device did not finish its work within 30 minutes; it may "
        "be hung: restart the pipeline, or use a faster device");
    return FALSE;
  }
  if (!f2_vk_check (result, "waiting for the device", error))
    return FALSE;
  return f2_vk_check (vkResetFences (dev->device, 1, &fence), "resetting a fence", error);
}

gboolean
f2_vk_run_once (F2VkDevice *dev, F2VkRecordFunc record, gpointer user_data,
    GError **error)
{
  VkCommandBuffer cmd;
  VkCommandBufferAllocateInfo alloc = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = dev->command_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  VkCommandBufferBeginInfo begin = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  gboolean ok;

  if (!f2_vk_check (vkAllocateCommandBuffers (dev->device, &alloc, &cmd),
          "allocating a command buffer", error))
    return FALSE;
  vkBeginCommandBuffer (cmd, &begin);
  record (cmd, user_data);
  vkEndCommandBuffer (cmd);
  ok = f2_vk_submit_wait (dev, cmd, dev->fence, error);
  vkFreeCommandBuffers (dev->device, dev->command_pool, 1, &cmd);
  return ok;
}

gboolean
f2_vk_device_has_coopmat (const F2VkDevice *dev)
{
  return dev->coopmat_nv || dev->coopmat_emulated;
}

gboolean
f2_vk_device_coopmat_on (const F2VkDevice *dev)
{
  return f2_vk_device_has_coopmat (dev) && dev->quirks.coopmat
      && g_strcmp0 (g_getenv ("F2_VULKAN_COOPMAT"), "0") != 0;
}

/* Which matmul kernel the quirk table gives many-row matmuls, and at which
 * subgroup size */
static char *
describe_matmul (const F2VkDevice *dev)
{
  guint32 required;
  guint32 size = f2_vk_device_subgroup_for (dev, dev->gpu_subgroup, &required);
  char *tiled, *text;

  if (dev->quirks.matmul == F2_VARIANT_REGISTER_BLOCKED)
    return g_strdup_printf ("matmul register-blocked, subgroup %u", dev->subgroup_size);
  tiled = g_strdup_printf ("matmul shared-memory tiles for subgroup %u%s", size,
      required ? " (required)" : "");
  if (!f2_vk_device_coopmat_on (dev))
    return tiled;
  text = g_strdup_printf ("%s, cooperative matrix %ux%ux%u for fp16", tiled,
      dev->coopmat_m, dev->coopmat_n, dev->coopmat_k);
  g_free (tiled);
  return text;
}

char *
f2_vk_device_describe (const F2VkDevice *dev)
{
  char *matmul = describe_matmul (dev);
  char *coopmat = !f2_vk_device_has_coopmat (dev) ? g_strdup ("") :
      g_strdup_printf (", cooperative matrix (%s %ux%ux%u)",
      dev->coopmat_nv ? "NV" : "emulated", dev->coopmat_m, dev->coopmat_n, dev->coopmat_k);
  gboolean mapped = f2_vk_device_maps (dev, f2_vk_memory_type_for (&dev->memory,
          G_MAXUINT32, FALSE, dev->map_device_memory), FALSE);
  char *text = g_strdup_printf ("%s (driver %s, Vulkan %u.%u, subgroup %u%s%s%s%s%s, "
      "storage range %" G_GUINT64_FORMAT " MiB, device memory %s, kernels: %s; %s)",
      dev->props.deviceName, dev->driver_name,
      VK_API_VERSION_MAJOR (dev->props.apiVersion),
      VK_API_VERSION_MINOR (dev->props.apiVersion), dev->subgroup_size,
      dev->subgroup_control && dev->subgroup_min < dev->subgroup_max ? " (selectable)" : "",
      dev->fp16_storage ? ", fp16 storage" : "",
      dev->fp16_math ? ", fp16 math" : "",
      dev->push_descriptors ? ", push descriptors" : "",
      coopmat,
      (guint64) dev->max_storage_range >> 20, mapped ? "mapped" : "through staging",
      dev->quirks.reason, matmul);

  g_free (matmul);
  g_free (coopmat);
  return text;
}
