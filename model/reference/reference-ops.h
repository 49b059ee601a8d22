/* The plain-C reference of every op of ops.h, and the table of them.
 *
 * These kernels are the ground truth every other backend is tested against;
 * the reference backend runs them, and the cpu backend runs a few itself.
 * They follow PyTorch's fp32 semantics (exact erf GELU, LayerNorm with the
 * biased variance, softmax with the maximum subtracted, argmax ties to the
 * lowest index) and accumulate in double, so they are at least as accurate
 * as the reference implementation.
 *
 * A kernel gets the op's tensors as host addresses (buffer base + ref
 * offset; NULL for an unset optional slot). Its parameters and extents were
 * checked when the op was added (f2_op_check); what only exists at run time
 * (a position read through pos_ref, a copy's row index) it checks itself,
 * and that is all that can fail.
 */
#pragma once

#include "ops.h"

#include <glib.h>

G_BEGIN_DECLS

/* An op's tensors on the host: NULL where a ref is not set */
typedef struct {
  gpointer out, out2;
  gpointer in[F2_OP_MAX_INPUTS];
} F2HostTensors;

/* Runs @op on @t; @backend holds the buffer table the run-time checks read. */
typedef gboolean (*F2ReferenceKernel) (F2Backend *backend, const F2Op *op,
    const F2HostTensors *t, GError **error);

/* The reference kernel of @kind (NULL for a value that is no kind) */
F2ReferenceKernel f2_reference_kernel (F2OpKind kind);

/* Pieces of the kernels that other backends and tests share */

/* Whether @id is in the list of @max_banned ids (-1 = unused slot); a NULL
 * list bans nothing. */
gboolean f2_reference_is_banned (const gint32 *banned, guint32 max_banned,
    guint32 id);

/* One row of TOPK: the k largest of x[0..cols) that are not banned, as
 * x - @lse, descending, ties by lower index; slots beyond the candidates
 * get id -1 and value -INFINITY. */
void f2_reference_topk_row (const float *x, guint32 cols, const gint32 *banned,
    guint32 max_banned, guint32 k, double lse, gint32 *ids, float *vals);

/* The vertical pass to 8 bits: out U8 [out_h][w][3] (HWC), the image
 * Pillow's resize() returns. */
void f2_reference_resample_v_u8 (const F2ResampleVParams *p, const guint8 *rows,
    const gint32 *coeffs, const gint32 *bounds, guint8 *out);

/* The rescale factor as the double the processor multiplies by. Configs
 * store 1/255 as a double; the op carries a float, so a float nearest to
 * 1/k for a whole k is taken as exactly 1/k. */
double f2_reference_rescale_factor (float rescale);

G_END_DECLS
