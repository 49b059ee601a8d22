/* The Vulkan backend's internals: buffers, pipelines, dispatch lists.
 *
 * Each op kind has a recorder (vk-op-*.c) that turns one F2Op into one or
 * more F2VkDispatch: which shader, its specialization constants, the
 * buffers it binds with their exact extents, its push constants and the
 * workgroup count. vk-backend.c does the rest (descriptors, barriers,
 * command buffers, timestamps). */
#pragma once

#include "backend-private.h"
#include "vk-device.h"

G_BEGIN_DECLS

#define F2_VK_MAX_BINDINGS 8
#define F2_VK_MAX_SPEC 8
#define F2_VK_MAX_PUSH 24       /* uint32 params after the 8 binding offsets */
#define F2_VK_PUSH_BYTES 128
/* Linear weights are packed in blocks of this many columns (vk-backend.c,
 * vulkan-shaders/matmul-common.glsl) */
#define F2_VK_LINEAR_BLOCK 64

typedef struct {
  VkBuffer buffer;
  VkDeviceSize size;            /* bytes */
  guint8 *mapped;               /* NULL when not host-visible */
  guint block;                  /* arena block index */
  F2BufferKind kind;
  F2ElemType type;
  guint elem_size;
} F2VkBuffer;

typedef struct {
  VkDeviceMemory memory;
  VkDeviceSize size, used;
  guint8 *mapped;
} F2VkBlock;

typedef struct _F2VkBackend F2VkBackend;

typedef struct {
  F2Ref ref;
  guint64 n_elements;           /* exact extent read or written */
  gboolean written;
} F2VkBinding;

typedef struct {
  const char *shader;           /* base name, without the _f16 suffix */
  gboolean float_variant;       /* pick "<shader>_f16" in fp16 mode */
  guint32 spec[F2_VK_MAX_SPEC];
  guint n_spec;
  F2VkBinding bind[F2_VK_MAX_BINDINGS];
  guint n_bind;
  guint32 push[F2_VK_MAX_PUSH];
  guint n_push;
  guint32 groups[3];
  guint32 subgroup_size;        /* required subgroup size, 0 = the driver's */
} F2VkDispatch;

/* Helpers for recorders (vk-dispatch.c) */
void f2_vk_dispatch_init (F2VkDispatch *d, const char *shader);
void f2_vk_dispatch_bind (F2VkDispatch *d, F2Ref ref, guint64 n_elements, gboolean written);
void f2_vk_dispatch_push (F2VkDispatch *d, guint32 value);
void f2_vk_dispatch_push_float (F2VkDispatch *d, float value);
void f2_vk_dispatch_spec (F2VkDispatch *d, guint32 value);
static inline guint32
f2_div_up (guint64 a, guint64 b)
{
  return (guint32) ((a + b - 1) / b);
}

/* A recorder appends its dispatches to @out (GArray of F2VkDispatch). */
typedef gboolean (*F2VkOpRecorder) (F2VkBackend *vk, const F2Op *op,
    GArray *out, GError **error);

/* The recorder of each op kind (vk-ops.c); NULL = not available. */
F2VkOpRecorder f2_vk_op_recorder (F2OpKind kind);

struct _F2VkBackend {
  F2Backend base;
  F2VkDevice *dev;
  GArray *buffers;              /* F2VkBuffer, index = buffer id - 1 */
  GArray *blocks[3];            /* F2VkBlock per F2BufferKind */
  guint32 memory_type[3];
  F2VkBuffer dummy;             /* bound to unused slots */
  F2VkBuffer staging;           /* for devices without host-visible device memory */
  guint staging_block;
  VkDeviceMemory staging_memory;

  VkDescriptorSetLayout set_layout;
  VkPipelineLayout pipeline_layout;
  VkPipelineCache pipeline_cache;
  GHashTable *pipelines;        /* key string -> VkPipeline */
  double pipeline_compile_ms;
  /* F2_VULKAN_PROFILE_OPS=1: a timestamp interval per op, named by its
   * kind, instead of one per program stage (for finding slow kernels) */
  gboolean profile_ops;
};

/* The device's kernel family for matmul-like ops, honouring op->variant
 * (vk-dispatch.c). */
F2Variant f2_vk_matmul_variant (F2VkBackend *vk, const F2Op *op);

/* The subgroup size a GPU kernel is shaped for under @variant: 32 or 64
 * when forced, else the device's choice (vk-dispatch.c). */
guint32 f2_vk_target_subgroup (F2VkBackend *vk, F2Variant variant);

/* Element type the kernels see for F2_ELEM_FLOAT buffers */
static inline gboolean
f2_vk_is_fp16 (F2VkBackend *vk)
{
  return vk->base.precision == F2_PRECISION_FP16;
}

/* Pipelines (vk-pipelines.c) */
VkPipeline f2_vk_get_pipeline (F2VkBackend *vk, const char *shader,
    const guint32 *spec, guint n_spec, guint32 subgroup_size, GError **error);
gboolean f2_vk_pipelines_init (F2VkBackend *vk, GError **error);
void f2_vk_pipelines_clear (F2VkBackend *vk);

G_END_DECLS
