/* Recorders of the row reductions over the vocabulary: argmax and top-k
 * (with the log-softmax values). Both run vulkan-shaders/topk.comp, one
 * workgroup per row (the decoder has at most a few beams). */
#include "vk-ops.h"

#define TOPK_MAX_K 32            /* MAX_K of topk.comp */

static gboolean
record (F2VkBackend *vk, const F2Op *op, guint32 rows, guint32 cols,
    guint32 ldx, guint32 k, guint32 max_banned, gboolean want_values,
    GArray *out, GError **error)
{
  gboolean has_banned = f2_ref_is_set (op->in[1]);
  F2VkDispatch d;

  if (k > TOPK_MAX_K) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "%s: k = %u is more than the %d the kernel keeps", op->name ? op->name : "topk",
        k, TOPK_MAX_K);
    return FALSE;
  }
  if (rows > 65535) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "%s: %u rows are more than one dispatch holds (65535); split the op",
        op->name ? op->name : "topk", rows);
    return FALSE;
  }
  f2_vk_dispatch_init (&d, "topk");
  f2_vk_dispatch_bind (&d, op->out, (guint64) rows * k, TRUE);
  f2_vk_dispatch_bind (&d, want_values ? op->out2 : F2_REF_NONE,
      want_values ? (guint64) rows * k : 0, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], (guint64) (rows - 1) * ldx + cols, FALSE);
  f2_vk_dispatch_bind (&d, op->in[1], has_banned ? (guint64) rows * max_banned : 0, FALSE);
  f2_vk_dispatch_push (&d, cols);
  f2_vk_dispatch_push (&d, ldx);
  f2_vk_dispatch_push (&d, k);
  f2_vk_dispatch_push (&d, has_banned ? max_banned : 0);
  f2_vk_dispatch_push (&d, has_banned);
  f2_vk_dispatch_push (&d, want_values);
  d.groups[0] = rows;
  f2_vk_emit (out, &d);
  return TRUE;
}

gboolean
f2_vk_record_argmax (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2ArgmaxParams *p = &op->p.argmax;

  return record (vk, op, p->rows, p->cols, p->ldx ? p->ldx : p->cols, 1,
      p->max_banned, FALSE, out, error);
}

gboolean
f2_vk_record_topk (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2TopkParams *p = &op->p.topk;

  return record (vk, op, p->rows, p->cols, p->ldx ? p->ldx : p->cols, p->k,
      p->max_banned, TRUE, out, error);
}
