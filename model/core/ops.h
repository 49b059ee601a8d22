/* The op interface: every compute step of Florence-2 as plain data.
 *
 * The network is built once as a list of F2Op (a program, see backend.h).
 * Three backends run the same list: the plain-C reference (the oracle of
 * every test), the cpu backend (oneDNN and threaded C) and Vulkan (which
 * records it into a command buffer once and replays it). A kernel test
 * builds one op, runs it on the reference and on the backend under test and
 * compares.
 *
 * Every op kind is described once, in the op table of ops.c (F2OpInfo
 * below: its name, tensor slots, validation and FLOP count); each backend
 * has one table of kernels indexed by kind (reference-ops.c, cpu-ops.c,
 * vk-ops.c) whose kernels live in a file per family of ops (matmul, conv,
 * norm, attention, elementwise, reduce, resample). Adding an op means:
 * - here, its kind and its parameters (a struct in F2Op's union);
 * - in ops.c, its description: a table entry with its slots, its check and
 *   its FLOP count;
 * - a kernel per backend, entered in that backend's table: the reference
 *   function in reference-ops.c; a cpu kernel in cpu-op-<family>.c; a
 *   Vulkan recorder in vk-op-<family>.c with its shader in vulkan-shaders/;
 * - its test in tests/test-kernels-<family>.c (and the reference's own in
 *   tests/test-reference-ops.c). tests/test-op-table.c fails while any
 *   backend lacks a kernel for some kind.
 *
 * Conventions
 * - Tensors live in backend buffers. A buffer holds elements of one type:
 *   F2_ELEM_FLOAT (fp32, or fp16 storage when the backend runs in fp16),
 *   F2_ELEM_I32 (token ids, control values) or F2_ELEM_U8 (image bytes,
 *   addressed in bytes). An F2Ref is a buffer plus an element offset.
 * - Activations are row-major [rows][cols]; token sequences are
 *   [tokens][channels] (channels last), as the reference's (B, L, C) tensors
 *   with batch 1. Row strides are given in elements; 0 means "packed".
 * - Linear weights are given as PyTorch stores them, [N][K] (out, in), and
 *   uploaded with f2_backend_upload_linear(); a backend may re-pack them.
 *   Convolution weights [Cout][Cin][kh][kw] are uploaded the same way as a
 *   linear weight with N = Cout, K = Cin*kh*kw.
 * - A few values change per step without re-recording (the decoder's step
 *   index, the number of valid keys): ops read them from an I32 buffer
 *   ("control") through an F2Ref, see the *_ref fields.
 */
#pragma once

#include "florence2.h"

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  F2_ELEM_FLOAT,
  F2_ELEM_I32,
  F2_ELEM_U8,
} F2ElemType;

typedef struct {
  guint32 buffer;               /* 0: no tensor */
  guint64 offset;               /* in elements (bytes for F2_ELEM_U8) */
} F2Ref;

#define F2_REF_NONE ((F2Ref) { 0, 0 })
#define f2_ref_is_set(r) ((r).buffer != 0)
static inline F2Ref
f2_ref_at (F2Ref r, guint64 elements)
{
  F2Ref out = { r.buffer, r.offset + elements };
  return out;
}

typedef enum {
  F2_OP_MATMUL,
  F2_OP_LAYER_NORM,
  F2_OP_SOFTMAX,
  F2_OP_ATTENTION,
  F2_OP_CHANNEL_ATTENTION,
  F2_OP_CONV2D,
  F2_OP_DWCONV3X3,
  F2_OP_MEAN_ROWS,
  F2_OP_EMBEDDING,
  F2_OP_ADD,
  F2_OP_COPY,
  F2_OP_ARGMAX,
  F2_OP_TOPK,
  F2_OP_RESAMPLE_H,
  F2_OP_RESAMPLE_V,
  F2_OP_COUNT
} F2OpKind;

/* Kernel variants. AUTO lets the backend choose (the quirk table in the
 * Vulkan backend); tests force each variant in turn. The CPU backend ignores
 * the field. */
typedef enum {
  F2_VARIANT_AUTO = 0,
  F2_VARIANT_REGISTER_BLOCKED,  /* vec4 loads, register tiles, subgroup broadcast (CPU drivers) */
  F2_VARIANT_SHARED_TILED,      /* shared-memory tiles (discrete GPUs) */
  /* the shared-memory kernels shaped for 32- and 64-lane subgroups (what
   * SHARED_TILED picks on such GPUs); forcing them checks those shapes on
   * any device, whatever its own subgroup size */
  F2_VARIANT_SHARED_TILED_SG32,
  F2_VARIANT_SHARED_TILED_SG64,
  F2_VARIANT_COOPMAT,           /* matmul on cooperative matrices (fp16; where the device has them) */
} F2Variant;

/* Epilogue flags of F2_OP_MATMUL and F2_OP_CONV2D */
enum {
  F2_EPI_BIAS = 1 << 0,         /* + bias[N] */
  F2_EPI_GELU = 1 << 1,         /* exact (erf) GELU after the bias */
  F2_EPI_RESIDUAL = 1 << 2,     /* + residual[M][N], after the activation */
};

/* A hint of F2_OP_MATMUL, beside the epilogue flags: the rows are decoder
 * sequences (one per beam and frame), few, and each row's result must not
 * depend on how many rows there are, so that a frame gives the same bits
 * in a batch as alone. The Vulkan backend takes one kernel for such rows
 * whatever their count. */
#define F2_MATMUL_SEQUENCE_ROWS (1u << 3)

/* out[m][n] = residual[m][n] + act(sum_k a[m][k] * w[n][k] + bias[n]) */
typedef struct {
  guint32 m, n, k;
  guint32 lda, ldo, ldr;        /* row strides, 0 = packed (k, n, n) */
  guint32 flags;                /* F2_EPI_* */
} F2MatmulParams;

/* out[r] = ((x[r] + residual[r]) - mean) / sqrt(var + eps) * gamma + beta.
 * residual is optional; out may alias x. */
typedef struct {
  guint32 rows, cols;
  guint32 ldx, ldo;             /* 0 = cols */
  float eps;
} F2LayerNormParams;

/* In place, per row over cols. */
typedef struct {
  guint32 rows, cols;
  float scale;                  /* applied to x before the softmax */
} F2SoftmaxParams;

enum {
  F2_ATTN_CAUSAL = 1 << 0,      /* query i sees keys j <= i + causal_offset */
  F2_ATTN_KEY_MASK = 1 << 1,    /* mask: I32 [batch][kv_len], 0 = key ignored */
  F2_ATTN_DYNAMIC_KV = 1 << 2,  /* keys j < *kv_len_ref only */
  F2_ATTN_WINDOW = 1 << 3,      /* DaViT window attention over a grid_h x grid_w token grid */
};

/* Multi-head attention with softmax(scale * q.k) v.
 * q: [q_len][q_stride], head h at columns h*head_dim..; k and v alike with
 * kv_len rows; out: [q_len][o_stride]. batch > 1 repeats with the *_batch
 * strides (elements) added per batch item (beams, windows).
 * F2_ATTN_WINDOW: q, k, v and out hold the whole grid (grid_h*grid_w tokens,
 * row-major); the batch is the set of window x window tiles (grid sides are
 * multiples of window); q_len = kv_len = window*window; *_batch are ignored. */
typedef struct {
  guint32 n_heads, head_dim;
  guint32 q_len, kv_len;
  guint32 q_stride, k_stride, v_stride, o_stride;
  guint32 batch;
  guint64 q_batch, k_batch, v_batch, o_batch, mask_batch;
  guint32 grid_h, grid_w, window;
  gint32 causal_offset;
  float scale;
  guint32 flags;                /* F2_ATTN_* */
} F2AttentionParams;

/* F2_ATTN_WINDOW: the grid row of token @t of window @b (windows in row-major
 * order, tokens row-major inside a window). */
static inline guint64
f2_attention_window_row (const F2AttentionParams *p, guint32 b, guint32 t)
{
  guint32 win_cols = p->grid_w / p->window;
  guint32 wy = b / win_cols, wx = b % win_cols;
  guint32 ly = t / p->window, lx = t % p->window;

  return (guint64) (wy * p->window + ly) * p->grid_w + wx * p->window + lx;
}

/* DaViT channel ("group") attention. qkv: [tokens][3*channels] laid out as
 * (3, groups, channels/groups); for each group g:
 *   A = softmax((q_g * scale)^T k_g)  (Cg x Cg, reduced over the tokens)
 *   out_g[n][c] = sum_c' A[c][c'] v_g[n][c']
 * out: [tokens][channels]. The reference uses scale = tokens^-0.5.
 * Input slot 1 is working memory (I32 buffer used as raw 32-bit words, at
 * least f2_channel_attention_scratch_size() elements): the Vulkan backend
 * reduces over the tokens in split partial sums there, then keeps A in it.
 * It is required on Vulkan, ignored by the CPU backend; one scratch area
 * sized for the largest op can serve every channel attention op. */
typedef struct {
  guint32 tokens, channels, groups;
  float scale;
} F2ChannelAttentionParams;

/* Token splits of the partial sums (the scratch layout depends on it) */
#define F2_CHANNEL_ATTENTION_SPLITS 32

static inline guint64
f2_channel_attention_scratch_size (const F2ChannelAttentionParams *p)
{
  guint64 cg = p->groups ? p->channels / p->groups : 0;
  return (F2_CHANNEL_ATTENTION_SPLITS + 1) * (guint64) p->groups * cg * cg;
}

typedef enum {
  F2_LAYOUT_CHW,                /* planar [C][H][W] (pixel values) */
  F2_LAYOUT_HWC,                /* tokens [H*W][C] */
} F2Layout;

/* 2-D convolution, output tokens [ho*wo][cout] with the matmul epilogue
 * (F2_EPI_BIAS). ho = (h + 2*pad - kernel)/stride + 1, wo alike. */
typedef struct {
  guint32 cin, h, w, cout;
  guint32 kernel, stride, pad;
  F2Layout in_layout;
  guint32 flags;                /* F2_EPI_* (bias) */
} F2Conv2dParams;

/* Depthwise 3x3 convolution, stride 1, zero padding 1, on tokens
 * [h*w][c], weights [c][1][3][3] (uploaded with f2_backend_write), bias [c].
 * out = x + conv(x) when residual is set; out must not alias x. */
typedef struct {
  guint32 h, w, c;
  gboolean residual;
} F2DwConvParams;

/* out[c] = mean over rows of x[r][c] */
typedef struct {
  guint32 rows, cols, ldx;
} F2MeanRowsParams;

/* out[i][:] = table[ids[i]][:] * scale + pos[pos_base + i][:]
 * pos_base = pos_offset (+ *pos_ref when set). ids: I32. Ids outside the
 * table give zeros. */
typedef struct {
  guint32 n, dim, vocab;
  guint32 ldo;
  float scale;
  guint32 pos_offset;
} F2EmbeddingParams;

/* out[i] = a[i] + b[i % b_period] (b_period 0 = n) */
typedef struct {
  guint32 n, b_period;
} F2AddParams;

/* Strided 2-D copy: out[r][c] = x[r][c] (concat, slicing, KV cache writes).
 * With a row index (I32, one per output row, optional) x row idx[r] is
 * copied instead: beam reordering. */
typedef struct {
  guint32 rows, cols, ldx, ldo;
} F2CopyParams;

/* Per row: the index of the largest x[r][c], skipping the ids listed in
 * banned (I32 [rows][max_banned], -1 = unused slot). out: I32 [rows].
 * Ties pick the lowest index, as torch.argmax does. */
typedef struct {
  guint32 rows, cols, ldx;
  guint32 max_banned;
} F2ArgmaxParams;

/* Per row: log-softmax over all cols (lse over the raw values), then the k
 * largest of (x - lse) skipping banned ids (as F2_OP_ARGMAX), in descending
 * order, ties by lower index. out_ids: I32 [rows][k], out_values: FLOAT
 * [rows][k] (float even in fp16 mode is not required: read it back through
 * f2_backend_read). */
typedef struct {
  guint32 rows, cols, ldx;
  guint32 k, max_banned;
} F2TopkParams;

/* Pixel formats read by F2_OP_RESAMPLE_H: the public Florence2PixelFormat */
typedef Florence2PixelFormat F2PixelFormat;
#define F2_PIXEL_RGB FLORENCE2_PIXEL_RGB
#define F2_PIXEL_RGBX FLORENCE2_PIXEL_RGBX
#define F2_PIXEL_BGRX FLORENCE2_PIXEL_BGRX
#define F2_PIXEL_RGBA FLORENCE2_PIXEL_RGBA
#define F2_PIXEL_BGRA FLORENCE2_PIXEL_BGRA
#define F2_PIXEL_NV12 FLORENCE2_PIXEL_NV12
#define F2_PIXEL_I420 FLORENCE2_PIXEL_I420

/* PIL-exact antialiased resampling, pass 1 of 2 (horizontal), on 8-bit RGB.
 * in: U8 image in @format; plane offsets/strides in bytes (plane 0 at 0).
 * YUV formats are converted with yuv_matrix (row-major 3x3 applied to
 * (Y-y_offset, U-128, V-128), rounded, clamped) before resampling.
 * coeffs: I32 [out_w][taps] fixed-point (22 fraction bits) weights, bounds:
 * I32 [out_w] first input column. out: U8 [in_h][out_w][3], each value
 * clamp(round(sum)). */
typedef struct {
  F2PixelFormat format;
  guint32 in_w, in_h;
  guint32 stride[3], plane_offset[3];
  guint32 out_w, taps;
  float yuv_matrix[9];
  float y_offset;
} F2ResampleHParams;

/* Pass 2 (vertical) plus rescale and normalise: in: U8 [in_h][w][3],
 * out: FLOAT [3][out_h][w] = (clamp(round(sum)) / 255 - mean[c]) / std[c]. */
typedef struct {
  guint32 in_h, w, out_h, taps;
  float mean[3], std[3];
  float rescale;
} F2ResampleVParams;

#define F2_OP_MAX_INPUTS 6

typedef struct {
  F2OpKind kind;
  F2Variant variant;
  const char *name;             /* for profiles and errors; static string */
  F2Ref out, out2;              /* out2: TOPK values */
  F2Ref in[F2_OP_MAX_INPUTS];   /* inputs: the slots of the kind, see ops.c */
  union {
    F2MatmulParams matmul;
    F2LayerNormParams layer_norm;
    F2SoftmaxParams softmax;
    F2AttentionParams attention;
    F2ChannelAttentionParams channel_attention;
    F2Conv2dParams conv2d;
    F2DwConvParams dwconv;
    F2MeanRowsParams mean_rows;
    F2EmbeddingParams embedding;
    F2AddParams add;
    F2CopyParams copy;
    F2ArgmaxParams argmax;
    F2TopkParams topk;
    F2ResampleHParams resample_h;
    F2ResampleVParams resample_v;
  } p;
} F2Op;

/* The description of an op kind: one entry of the op table in ops.c. */

typedef struct _F2Backend F2Backend;  /* backend.h */

/* A tensor slot of an op (F2Op.in[i], out or out2) */
typedef struct {
  const char *name;             /* for errors; NULL: the kind has no such slot */
  F2ElemType type;
  gboolean optional;            /* may be left unset */
  const char *flag;             /* the flag that asks for it (e.g. "F2_EPI_BIAS"), or NULL */
} F2OpSlot;

typedef struct {
  const char *name;             /* "matmul", ... (profiles and errors) */
  F2OpSlot in[F2_OP_MAX_INPUTS];  /* inputs from slot 0; unnamed past the last */
  F2OpSlot out, out2;           /* out2: only where the kind has a second output */
  /* Whether the op's parameters make sense and each slot lies inside its
   * buffer with the right element type; see f2_op_check(). */
  gboolean (*check) (const F2Op *op, F2Backend *backend, GError **error);
  /* Floating-point operations the op performs (for GFLOP/s reports) */
  double (*flops) (const F2Op *op);
} F2OpInfo;

/* The description of @kind; NULL for a value that is no kind. */
const F2OpInfo *f2_op_info (F2OpKind kind);

/* Its name ("unknown" for a value that is no kind) */
const char *f2_op_kind_name (F2OpKind kind);

/* Floating-point operations one op performs (for GFLOP/s reports). */
double f2_op_flops (const F2Op *op);

G_END_DECLS
