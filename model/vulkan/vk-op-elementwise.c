/* Recorders of the elementwise family, the small memory-bound ops: add,
 * copy, mean over rows, embedding gather. */
#include "vk-ops.h"

gboolean
f2_vk_record_add (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2AddParams *p = &op->p.add;
  guint32 period = p->b_period ? p->b_period : p->n;
  F2VkDispatch d;

  f2_vk_dispatch_init (&d, "add");
  f2_vk_dispatch_bind (&d, op->out, p->n, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], p->n, FALSE);
  f2_vk_dispatch_bind (&d, op->in[1], period, FALSE);
  f2_vk_dispatch_push (&d, p->n);
  f2_vk_dispatch_push (&d, period);
  f2_vk_grid_1d (&d, p->n, 256);
  f2_vk_emit (out, &d);
  return TRUE;
}

/* Rows of @cols values @ld apart that one binding of @range elements holds */
static guint64
rows_within (guint64 range, guint32 ld, guint32 cols)
{
  return range < cols ? 0 : (range - cols) / ld + 1;
}

/* One copy dispatch: @rows output rows from @first on, reading source rows
 * @src_begin..@src_end-1 (bound from @src_begin) */
static void
emit_copy (GArray *out, const F2Op *op, guint32 ldx, guint32 ldo, guint64 first,
    guint64 rows, guint64 src_begin, guint64 src_end)
{
  const F2CopyParams *p = &op->p.copy;
  gboolean indexed = f2_ref_is_set (op->in[1]);
  F2VkDispatch d;

  f2_vk_dispatch_init (&d, "copy");
  f2_vk_dispatch_bind (&d, f2_ref_at (op->out, first * ldo), (rows - 1) * ldo + p->cols, TRUE);
  f2_vk_dispatch_bind (&d, f2_ref_at (op->in[0], src_begin * ldx),
      (src_end - src_begin - 1) * ldx + p->cols, FALSE);
  f2_vk_dispatch_bind (&d, indexed ? f2_ref_at (op->in[1], first) : op->in[1],
      rows, FALSE);
  f2_vk_dispatch_push (&d, (guint32) rows);
  f2_vk_dispatch_push (&d, p->cols);
  f2_vk_dispatch_push (&d, ldx);
  f2_vk_dispatch_push (&d, ldo);
  f2_vk_dispatch_push (&d, indexed);
  f2_vk_dispatch_push (&d, (guint32) src_begin);
  f2_vk_dispatch_push (&d, (guint32) src_end);
  f2_vk_grid_1d (&d, rows * p->cols, 256);
  f2_vk_emit (out, &d);
}

/* A copy in pieces that each fit one storage binding: blocks of output
 * rows, and for an indexed copy (a gather, such as the decoder's KV cache
 * reordered for beams) windows of the source, since its rows may come
 * from anywhere in it. */
gboolean
f2_vk_record_copy (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2CopyParams *p = &op->p.copy;
  guint32 ldx = p->ldx ? p->ldx : p->cols, ldo = p->ldo ? p->ldo : p->cols;
  gboolean indexed = f2_ref_is_set (op->in[1]);
  guint elem = f2_elem_size (F2_ELEM_FLOAT, vk->base.precision);
  guint64 range = f2_vk_binding_bytes (vk) / elem;
  guint64 src_rows = p->rows, block, window;

  if (indexed) {
    /* rows come from anywhere in the source: bind what the buffer holds */
    const F2BufferInfo *info = f2_backend_buffer_info (&vk->base, op->in[0].buffer);
    src_rows = (info->n_elements - op->in[0].offset + ldx - p->cols) / ldx;
  }
  block = rows_within (range, ldo, p->cols);
  window = rows_within (range, ldx, p->cols);
  if (!indexed)
    block = MIN (block, window);
  if (block == 0 || window == 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "copy: a row of %u values does not fit the device's storage buffer "
        "range (%" G_GUINT64_FORMAT " bytes)", p->cols,
        (guint64) vk->dev->max_storage_range);
    return FALSE;
  }
  for (guint64 first = 0; first < p->rows; first += block) {
    guint64 rows = MIN (block, p->rows - first);

    if (!indexed) {
      emit_copy (out, op, ldx, ldo, first, rows, first, first + rows);
      continue;
    }
    for (guint64 s = 0; s < src_rows; s += window)
      emit_copy (out, op, ldx, ldo, first, rows, s, MIN (s + window, src_rows));
  }
  return TRUE;
}

gboolean
f2_vk_record_mean_rows (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2MeanRowsParams *p = &op->p.mean_rows;
  guint32 ldx = p->ldx ? p->ldx : p->cols;
  F2VkDispatch d;

  f2_vk_dispatch_init (&d, "mean_rows");
  f2_vk_dispatch_bind (&d, op->out, p->cols, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], (guint64) (p->rows - 1) * ldx + p->cols, FALSE);
  f2_vk_dispatch_push (&d, p->rows);
  f2_vk_dispatch_push (&d, p->cols);
  f2_vk_dispatch_push (&d, ldx);
  d.groups[0] = p->cols;
  f2_vk_emit (out, &d);
  return TRUE;
}

gboolean
f2_vk_record_embedding (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2EmbeddingParams *p = &op->p.embedding;
  guint32 ldo = p->ldo ? p->ldo : p->dim;
  guint elem = f2_elem_size (F2_ELEM_FLOAT, vk->base.precision);
  /* rows of the table one binding can reach */
  guint64 chunk_rows = f2_vk_binding_bytes (vk) / ((guint64) p->dim * elem);
  gboolean has_pos = f2_ref_is_set (op->in[2]);
  const F2BufferInfo *pos_info = has_pos ?
      f2_backend_buffer_info (&vk->base, op->in[2].buffer) : NULL;

  for (guint64 begin = 0; begin < p->vocab; begin += chunk_rows) {
    guint64 end = MIN (begin + chunk_rows, p->vocab);
    F2VkDispatch d;

    f2_vk_dispatch_init (&d, "embedding");
    f2_vk_dispatch_bind (&d, op->out, (guint64) (p->n - 1) * ldo + p->dim, TRUE);
    f2_vk_dispatch_bind (&d, op->in[0], p->n, FALSE);
    f2_vk_dispatch_bind (&d, f2_ref_at (op->in[1], begin * p->dim),
        (end - begin) * p->dim, FALSE);
    /* the position row depends on a device value: bind the whole table */
    f2_vk_dispatch_bind (&d, op->in[2],
        has_pos ? pos_info->n_elements - op->in[2].offset : 0, FALSE);
    f2_vk_dispatch_bind (&d, op->in[3], 1, FALSE);
    f2_vk_dispatch_push (&d, p->n);
    f2_vk_dispatch_push (&d, p->dim);
    f2_vk_dispatch_push (&d, p->vocab);
    f2_vk_dispatch_push (&d, ldo);
    f2_vk_dispatch_push_float (&d, p->scale);
    f2_vk_dispatch_push (&d, p->pos_offset);
    f2_vk_dispatch_push (&d, has_pos);
    f2_vk_dispatch_push (&d, f2_ref_is_set (op->in[3]));
    f2_vk_dispatch_push (&d, (guint32) begin);
    f2_vk_dispatch_push (&d, (guint32) end);
    f2_vk_dispatch_push (&d, begin == 0);
    f2_vk_grid_1d (&d, (guint64) p->n * p->dim, 256);
    f2_vk_emit (out, &d);
  }
  return TRUE;
}
