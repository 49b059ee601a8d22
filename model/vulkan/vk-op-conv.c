/* Recorders of the conv family: the 2-D convolution (DaViT's patch
 * embeddings), an implicit GEMM over the matmul kernels (vk-op-matmul.c),
 * and the depthwise 3x3 convolution (its convolutional position encoding). */
#include "vk-ops.h"

gboolean
f2_vk_record_conv2d (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2Conv2dParams *p = &op->p.conv2d;
  guint32 ho = (p->h + 2 * p->pad - p->kernel) / p->stride + 1;
  guint32 wo = (p->w + 2 * p->pad - p->kernel) / p->stride + 1;
  F2VkGemm g = {
    .m = ho * wo, .n = p->cout, .k = p->cin * p->kernel * p->kernel,
    .lda = p->cin * p->kernel * p->kernel, .ldo = p->cout, .ldr = p->cout,
    .flags = p->flags & (F2_EPI_BIAS | F2_EPI_GELU),
    .conv = TRUE,
    .conv_push = { p->cin, p->h, p->w, p->kernel, p->stride, p->pad, wo,
      p->in_layout == F2_LAYOUT_HWC },
    .a_extent = (guint64) p->cin * p->h * p->w,
  };

  return f2_vk_record_gemm (vk, op, &g, out, error);
}

#define DWCONV_WORKGROUP 64
/* pixels of a row per invocation (vulkan-shaders/dwconv3x3.glsl) */
#define DWCONV_XB 4

/* vec4 access needs 4-element alignment of every binding as the shader sees
 * it: the offsets the host leaves after aligning descriptors down stay
 * multiples of 4 when the alignment itself is. */
static gboolean
vec4_aligned (F2VkBackend *vk, const F2Op *op)
{
  guint elem = f2_elem_size (F2_ELEM_FLOAT, vk->base.precision);

  if (op->p.dwconv.c % 4 != 0 || (vk->dev->storage_alignment / elem) % 4 != 0)
    return FALSE;
  for (guint i = 0; i < 3; i++)
    if (f2_ref_is_set (op->in[i]) && op->in[i].offset % 4 != 0)
      return FALSE;
  return op->out.offset % 4 == 0;
}

gboolean
f2_vk_record_dwconv (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2DwConvParams *p = &op->p.dwconv;
  guint64 n = (guint64) p->h * p->w * p->c;
  gboolean v4 = vec4_aligned (vk, op);
  guint32 groups = v4 ? p->c / 4 : p->c;
  guint64 invocations = (guint64) p->h * f2_div_up (p->w, DWCONV_XB) * groups;
  F2VkDispatch d;

  if (invocations > G_MAXUINT32 || n > G_MAXUINT32) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "%s: a %ux%ux%u depthwise convolution is too large for one dispatch; "
        "split the channels", op->name ? op->name : "dwconv3x3", p->h, p->w, p->c);
    return FALSE;
  }
  f2_vk_dispatch_init (&d, v4 ? "dwconv3x3_v4" : "dwconv3x3");
  f2_vk_dispatch_bind (&d, op->out, n, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], n, FALSE);
  f2_vk_dispatch_bind (&d, op->in[1], (guint64) p->c * 9, FALSE);
  f2_vk_dispatch_bind (&d, op->in[2], p->c, FALSE);
  f2_vk_dispatch_push (&d, p->h);
  f2_vk_dispatch_push (&d, p->w);
  f2_vk_dispatch_push (&d, groups);
  f2_vk_dispatch_push (&d, f2_ref_is_set (op->in[2]));
  f2_vk_dispatch_push (&d, p->residual ? 1 : 0);
  f2_vk_grid_1d (&d, invocations, DWCONV_WORKGROUP);
  f2_vk_emit (out, &d);
  return TRUE;
}
