/* Recorders of the Vulkan backend, one per op kind (see vk-private.h), in
 * a file per family of ops; vk-ops.c holds the table of them. */
#pragma once

#include "vk-private.h"

G_BEGIN_DECLS

/* vk-op-matmul.c */
gboolean f2_vk_record_matmul (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);

/* A GEMM on the matmul kernels, out[m][n] = epilogue (sum_k a[m][k] w[n][k]),
 * with a = op->in[0], w = op->in[1] (a linear weight), bias op->in[2] and
 * residual op->in[3] (vk-op-matmul.c). A convolution gathers the rows of a
 * from its input patches (the conv2d_* shaders). */
typedef struct {
  guint32 m, n, k;
  guint32 lda, ldo, ldr;        /* resolved (never 0) */
  guint32 flags;                /* F2_EPI_* */
  gboolean conv;
  /* convolutions: cin, h, w, kernel, stride, pad, wo, input in HWC layout
   * (push constants P_CIN.. of matmul-common.glsl) */
  guint32 conv_push[8];
  guint64 a_extent;             /* elements of a one dispatch reads, conv only */
} F2VkGemm;

gboolean f2_vk_record_gemm (F2VkBackend *vk, const F2Op *op, const F2VkGemm *g,
    GArray *out, GError **error);

/* vk-op-conv.c */
gboolean f2_vk_record_conv2d (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_dwconv (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
/* vk-op-norm.c */
gboolean f2_vk_record_layer_norm (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_softmax (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
/* vk-op-attention.c */
gboolean f2_vk_record_attention (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_channel_attention (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
/* vk-op-elementwise.c */
gboolean f2_vk_record_mean_rows (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_embedding (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_add (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_copy (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
/* vk-op-reduce.c */
gboolean f2_vk_record_argmax (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_topk (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
/* vk-op-resample.c */
gboolean f2_vk_record_resample_h (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);
gboolean f2_vk_record_resample_v (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error);

/* Append a copy of @d to @out. */
static inline void
f2_vk_emit (GArray *out, const F2VkDispatch *d)
{
  g_array_append_val (out, *d);
}

/* Workgroups for @n invocations of @local threads each, as a 2-D grid when
 * one dimension is not enough; shaders rebuild the flat index with
 * f2_flat_index() (common.glsl). In vk-dispatch.c. */
void f2_vk_grid_1d (F2VkDispatch *d, guint64 n, guint32 local);

/* Bytes one binding may span from any start: the storage buffer range less
 * the alignment the recorder removes from its start and the 16-byte
 * rounding of its end (vk-backend.c). Ops larger than this run in pieces.
 * In vk-dispatch.c. */
guint64 f2_vk_binding_bytes (F2VkBackend *vk);

G_END_DECLS
