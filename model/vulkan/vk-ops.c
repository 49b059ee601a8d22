/* The Vulkan recorder of each op kind: the backend's one table of kernels.
 * Each vk-op-<family>.c file holds the recorders of one family of ops;
 * tests/test-op-table.c checks that every kind has one. */
#include "vk-private.h"
#include "vk-ops.h"

static const F2VkOpRecorder recorders[] = {
  [F2_OP_MATMUL] = f2_vk_record_matmul,
  [F2_OP_CONV2D] = f2_vk_record_conv2d,
  [F2_OP_DWCONV3X3] = f2_vk_record_dwconv,
  [F2_OP_LAYER_NORM] = f2_vk_record_layer_norm,
  [F2_OP_SOFTMAX] = f2_vk_record_softmax,
  [F2_OP_ATTENTION] = f2_vk_record_attention,
  [F2_OP_CHANNEL_ATTENTION] = f2_vk_record_channel_attention,
  [F2_OP_MEAN_ROWS] = f2_vk_record_mean_rows,
  [F2_OP_EMBEDDING] = f2_vk_record_embedding,
  [F2_OP_ADD] = f2_vk_record_add,
  [F2_OP_COPY] = f2_vk_record_copy,
  [F2_OP_ARGMAX] = f2_vk_record_argmax,
  [F2_OP_TOPK] = f2_vk_record_topk,
  [F2_OP_RESAMPLE_H] = f2_vk_record_resample_h,
  [F2_OP_RESAMPLE_V] = f2_vk_record_resample_v,
};

G_STATIC_ASSERT (G_N_ELEMENTS (recorders) == F2_OP_COUNT);

F2VkOpRecorder
f2_vk_op_recorder (F2OpKind kind)
{
  if ((guint) kind >= F2_OP_COUNT)
    return NULL;
  return recorders[kind];
}
