/* Plain-C reference implementation of every op of ops.h.
 *
 * These functions are the ground truth the Vulkan kernels are tested against
 * and what the CPU backend runs. They follow PyTorch's fp32 semantics (exact
 * erf GELU, LayerNorm with the biased variance, softmax with the maximum
 * subtracted, argmax ties to the lowest index) and accumulate in double, so
 * they are at least as accurate as the reference implementation.
 *
 * Pointers are already resolved (buffer base + ref offset); optional inputs
 * are NULL when absent. Strides of 0 mean "packed", as in ops.h. Arguments
 * are assumed valid (f2_op_check() validated them); nothing here fails.
 */
#pragma once

#include "ops.h"

#include <glib.h>

G_BEGIN_DECLS

/* out may equal residual (in-place residual add). */
void f2_reference_matmul (const F2MatmulParams *p, const float *a, const float *w,
    const float *bias, const float *residual, float *out);

/* out may alias x; residual rows use the stride of x (ldx). */
void f2_reference_layer_norm (const F2LayerNormParams *p, const float *x,
    const float *gamma, const float *beta, const float *residual, float *out);

void f2_reference_softmax (const F2SoftmaxParams *p, float *x);

/* kv_len_dynamic: the value read from kv_len_ref, or -1 when not used.
 * A query that sees no key gets zeros. */
void f2_reference_attention (const F2AttentionParams *p, const float *q,
    const float *k, const float *v, const gint32 *mask, gint32 kv_len_dynamic,
    float *out);

void f2_reference_channel_attention (const F2ChannelAttentionParams *p,
    const float *qkv, float *out);

/* w: [cout][cin][kernel][kernel] as uploaded by the CPU backend. */
void f2_reference_conv2d (const F2Conv2dParams *p, const float *x, const float *w,
    const float *bias, float *out);

/* bias may be NULL. */
void f2_reference_dwconv3x3 (const F2DwConvParams *p, const float *x,
    const float *w, const float *bias, float *out);

void f2_reference_mean_rows (const F2MeanRowsParams *p, const float *x, float *out);

/* pos may be NULL; pos_base is the first position row (pos_offset plus the
 * value of pos_ref). An id outside [0, vocab) contributes zeros (the
 * position row is still added). */
void f2_reference_embedding (const F2EmbeddingParams *p, const gint32 *ids,
    const float *table, const float *pos, guint64 pos_base, float *out);

/* out may alias a. */
void f2_reference_add (const F2AddParams *p, const float *a, const float *b,
    float *out);

/* row_index may be NULL. */
void f2_reference_copy (const F2CopyParams *p, const float *x,
    const gint32 *row_index, float *out);

/* banned may be NULL. A row whose every column is banned gives -1. */
void f2_reference_argmax (const F2ArgmaxParams *p, const float *x,
    const gint32 *banned, gint32 *out);

/* Whether @id is in the list of @max_banned ids (-1 = unused slot); a NULL
 * list bans nothing. */
gboolean f2_reference_is_banned (const gint32 *banned, guint32 max_banned,
    guint32 id);

/* One row of TOPK: the k largest of x[0..cols) that are not banned, as
 * x - @lse, descending, ties by lower index; slots beyond the candidates
 * get id -1 and value -INFINITY. */
void f2_reference_topk_row (const float *x, guint32 cols, const gint32 *banned,
    guint32 max_banned, guint32 k, double lse, gint32 *ids, float *vals);

/* banned may be NULL. Slots beyond the number of candidates get id -1 and
 * value -INFINITY. */
void f2_reference_topk (const F2TopkParams *p, const float *x, const gint32 *banned,
    gint32 *out_ids, float *out_values);

/* Pillow's 8-bit horizontal pass. Taps whose column lies outside the image
 * are skipped (their weight is zero in tables from preprocess.c). */
void f2_reference_resample_h (const F2ResampleHParams *p, const guint8 *image,
    const gint32 *coeffs, const gint32 *bounds, guint8 *out);

/* The vertical pass to 8 bits: out U8 [out_h][w][3] (HWC), the image
 * Pillow's resize() returns. */
void f2_reference_resample_v_u8 (const F2ResampleVParams *p, const guint8 *rows,
    const gint32 *coeffs, const gint32 *bounds, guint8 *out);

/* The vertical pass, rescaled and normalised: out FLOAT [3][out_h][w]. */
void f2_reference_resample_v (const F2ResampleVParams *p, const guint8 *rows,
    const gint32 *coeffs, const gint32 *bounds, float *out);

/* The rescale factor as the double the processor multiplies by. Configs
 * store 1/255 as a double; the op carries a float, so a float nearest to
 * 1/k for a whole k is taken as exactly 1/k. */
double f2_reference_rescale_factor (float rescale);

/* Exact (erf) GELU, as torch.nn.functional.gelu. */
double f2_reference_gelu (double x);

G_END_DECLS
