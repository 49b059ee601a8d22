/* Unit test: which Vulkan memory type each kind of buffer gets, on the
 * memory tables of the devices the backend meets (no device needed). The
 * trap is a discrete GPU without a resizable BAR: its host-visible
 * device-local memory is a 256 MiB window, and the weights must not go
 * there. */
#include "vk-device.h"

#include <stdio.h>

#define GIB (G_GUINT64_CONSTANT (1) << 30)
#define MIB (G_GUINT64_CONSTANT (1) << 20)

enum {
  LOCAL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
  VISIBLE = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
  CACHED = VK_MEMORY_PROPERTY_HOST_CACHED_BIT,
};

static guint failures;

/* @bar: size of the heap behind the host-visible device-local type */
static VkPhysicalDeviceMemoryProperties
discrete_gpu (VkDeviceSize vram, VkDeviceSize bar)
{
  VkPhysicalDeviceMemoryProperties m = {
    .memoryTypeCount = 4,
    .memoryTypes = {
      { LOCAL, 0 },
      { VISIBLE, 1 },
      { VISIBLE | CACHED, 1 },
      { LOCAL | VISIBLE, 2 },
    },
    .memoryHeapCount = 3,
    .memoryHeaps = {
      { vram, VK_MEMORY_HEAP_DEVICE_LOCAL_BIT },
      { 64 * GIB, 0 },
      { bar, VK_MEMORY_HEAP_DEVICE_LOCAL_BIT },
    },
  };
  return m;
}

/* unified memory: a CPU driver or an integrated GPU */
static VkPhysicalDeviceMemoryProperties
unified (void)
{
  VkPhysicalDeviceMemoryProperties m = {
    .memoryTypeCount = 2,
    .memoryTypes = { { LOCAL | VISIBLE, 0 }, { LOCAL | VISIBLE | CACHED, 0 } },
    .memoryHeapCount = 1,
    .memoryHeaps = { { 16 * GIB, VK_MEMORY_HEAP_DEVICE_LOCAL_BIT } },
  };
  return m;
}

static void
expect (const char *what, const VkPhysicalDeviceMemoryProperties *m, guint32 bits,
    gboolean host, gboolean map_device, guint32 want)
{
  guint32 got = f2_vk_memory_type_for (m, bits, host, map_device);

  if (got == want) {
    printf ("ok   %s: type %d\n", what, (int) got);
  } else {
    printf ("FAIL %s: type %d, want %d\n", what, (int) got, (int) want);
    failures++;
  }
}

int
main (void)
{
  VkPhysicalDeviceMemoryProperties small_bar = discrete_gpu (141 * GIB, 256 * MIB);
  VkPhysicalDeviceMemoryProperties large_bar = discrete_gpu (141 * GIB, 141 * GIB);
  VkPhysicalDeviceMemoryProperties cpu = unified ();
  const guint32 all = G_MAXUINT32;

  expect ("256 MiB BAR: device buffers in plain VRAM", &small_bar, all, FALSE, TRUE, 0);
  expect ("256 MiB BAR: host buffers cached", &small_bar, all, TRUE, TRUE, 2);
  expect ("resizable BAR: device buffers mapped", &large_bar, all, FALSE, TRUE, 3);
  expect ("resizable BAR, mapping off: plain VRAM", &large_bar, all, FALSE, FALSE, 0);
  expect ("unified memory: device buffers mapped", &cpu, all, FALSE, TRUE, 0);
  expect ("unified memory, mapping off: still device-local", &cpu, all, FALSE, FALSE, 0);
  expect ("unified memory: host buffers cached", &cpu, all, TRUE, TRUE, 1);
  /* the buffer's own allowed types limit the choice */
  expect ("only the BAR type allowed", &small_bar, 1u << 3, FALSE, TRUE, 3);
  expect ("no device-local type allowed: any", &small_bar, 1u << 1, FALSE, TRUE, 1);
  expect ("host buffer, no cached type allowed", &small_bar, 1u << 1 | 1u << 3, TRUE, TRUE, 1);
  expect ("host buffer, no host-visible type allowed", &small_bar, 1u << 0, TRUE, TRUE,
      G_MAXUINT32);

  printf ("# %u failed\n", failures);
  return failures == 0 ? 0 : 1;
}
