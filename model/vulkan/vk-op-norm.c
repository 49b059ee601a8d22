/* Recorders of the norm family, the row-wise normalisations: layer norm
 * (with the fused residual add) and softmax.
 *
 * Both kernels take TPR, the number of invocations that share one row:
 * 1 on CPU drivers (a row per invocation: no shared memory, no barriers),
 * a power of two up to the workgroup size on GPUs (coalesced loads and a
 * tree reduction in shared memory). */
#include "vk-ops.h"

#define NORM_WORKGROUP 64
/* lavapipe stops any invocation after 65535 loop iterations in total (all
 * loops together): rows longer than this are shared even there */
#define NORM_MAX_ROW_PER_INVOCATION 4096

/* Invocations per row for @cols columns under @variant. */
static guint32
threads_per_row (F2Variant variant, guint32 cols)
{
  guint32 tpr = 1;

  if (variant == F2_VARIANT_REGISTER_BLOCKED && cols <= NORM_MAX_ROW_PER_INVOCATION)
    return 1;
  /* about four columns per invocation */
  while (tpr < NORM_WORKGROUP && tpr * 4 < cols)
    tpr *= 2;
  return tpr;
}

gboolean
f2_vk_record_layer_norm (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2LayerNormParams *p = &op->p.layer_norm;
  guint32 ldx = p->ldx ? p->ldx : p->cols, ldo = p->ldo ? p->ldo : p->cols;
  guint64 x_ext = (guint64) (p->rows - 1) * ldx + p->cols;
  guint32 tpr = threads_per_row (f2_vk_matmul_variant (vk, op), p->cols);
  gboolean has_res = f2_ref_is_set (op->in[3]);
  F2VkDispatch d;

  f2_vk_dispatch_init (&d, "layer_norm");
  f2_vk_dispatch_spec (&d, NORM_WORKGROUP);
  f2_vk_dispatch_spec (&d, tpr);
  f2_vk_dispatch_bind (&d, op->out, (guint64) (p->rows - 1) * ldo + p->cols, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], x_ext, FALSE);
  f2_vk_dispatch_bind (&d, op->in[1], p->cols, FALSE);
  f2_vk_dispatch_bind (&d, op->in[2], p->cols, FALSE);
  f2_vk_dispatch_bind (&d, op->in[3], has_res ? x_ext : 0, FALSE);
  f2_vk_dispatch_push (&d, p->rows);
  f2_vk_dispatch_push (&d, p->cols);
  f2_vk_dispatch_push (&d, ldx);
  f2_vk_dispatch_push (&d, ldo);
  f2_vk_dispatch_push_float (&d, p->eps);
  f2_vk_dispatch_push (&d, f2_ref_is_set (op->in[1]));
  f2_vk_dispatch_push (&d, f2_ref_is_set (op->in[2]));
  f2_vk_dispatch_push (&d, has_res);
  f2_vk_grid_1d (&d, p->rows, NORM_WORKGROUP / tpr);
  f2_vk_emit (out, &d);
  return TRUE;
}

gboolean
f2_vk_record_softmax (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2SoftmaxParams *p = &op->p.softmax;
  guint32 tpr = threads_per_row (f2_vk_matmul_variant (vk, op), p->cols);
  F2VkDispatch d;

  f2_vk_dispatch_init (&d, "softmax");
  f2_vk_dispatch_spec (&d, NORM_WORKGROUP);
  f2_vk_dispatch_spec (&d, tpr);
  f2_vk_dispatch_bind (&d, op->out, (guint64) p->rows * p->cols, TRUE);
  f2_vk_dispatch_push (&d, p->rows);
  f2_vk_dispatch_push (&d, p->cols);
  f2_vk_dispatch_push_float (&d, p->scale);
  f2_vk_grid_1d (&d, p->rows, NORM_WORKGROUP / tpr);
  f2_vk_emit (out, &d);
  return TRUE;
}
