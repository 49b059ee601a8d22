/* Kernel tests: fused attention (decoder self- and cross-attention with
 * beams, dynamic key count and key masks, causal prefixes, the encoder,
 * DaViT window attention) and DaViT channel attention, each kernel variant
 * against the CPU reference. */
#include "kernel-harness.h"

#include <math.h>

static const struct {
  F2Variant variant;
  const char *name;
} variants[] = {
  { F2_VARIANT_REGISTER_BLOCKED, "direct" },
  { F2_VARIANT_SHARED_TILED, "staged" },
  /* the GPU path shaped for 32- and 64-lane subgroups, partial results
   * merged through subgroup shuffles: checked at lavapipe's 8 or 16 */
  { F2_VARIANT_SHARED_TILED_SG32, "staged-sg32" },
  { F2_VARIANT_SHARED_TILED_SG64, "staged-sg64" },
};

typedef struct {
  gint32 dynamic_kv;            /* value of kv_len_ref with F2_ATTN_DYNAMIC_KV */
  guint32 mask_every;           /* F2_ATTN_KEY_MASK: key j masked when j % mask_every == 1 */
  guint32 misalign;             /* extra element offset of q, k, v and out */
} AttnExtras;

static guint64
extent (const F2AttentionParams *p, guint32 ld, guint64 batch_stride, guint32 rows)
{
  guint32 width = p->n_heads * p->head_dim;

  if (p->flags & F2_ATTN_WINDOW)
    return (guint64) (p->grid_h * p->grid_w - 1) * ld + width;
  return (guint64) (p->batch - 1) * batch_stride + (guint64) (rows - 1) * ld + width;
}

/* q, k, v in separate buffers unless @fused: then one [rows][3C] tensor
 * with q, k, v at columns 0, C, 2C (the qkv projection's output). */
static void
test_attention (KernelTest *kt, const char *what, F2AttentionParams p,
    const AttnExtras *x, gboolean fused)
{
  guint32 width = p.n_heads * p.head_dim;
  guint32 batch = p.batch;
  guint32 off = x ? x->misalign : 0;
  guint64 nq, nk, nv, no, nqkv = 0;
  float *q, *k, *v, *qkv = NULL;
  gint32 *mask = NULL;
  float *zeros;

  if (p.flags & F2_ATTN_WINDOW)
    batch = (p.grid_h / p.window) * (p.grid_w / p.window);
  if (fused)
    p.q_stride = p.k_stride = p.v_stride = 3 * width;
  nq = extent (&p, p.q_stride, p.q_batch, p.q_len) + off;
  nk = extent (&p, p.k_stride, p.k_batch, p.kv_len) + off;
  nv = extent (&p, p.v_stride, p.v_batch, p.kv_len) + off;
  no = extent (&p, p.o_stride, p.o_batch, p.q_len) + off;
  /* the gaps between output rows are compared too: start them equal */
  zeros = g_new0 (float, no);
  q = kt_random (nq, 31, 1.0f);
  k = kt_random (nk, 32, 1.0f);
  v = kt_random (nv, 33, 1.0f);
  if (fused) {
    nqkv = MAX (nq, MAX (nk + width, nv + 2 * width));
    qkv = kt_random (nqkv, 34, 1.0f);
  }
  if (p.flags & F2_ATTN_KEY_MASK) {
    guint64 nm = (guint64) (batch - 1) * p.mask_batch + p.kv_len;
    mask = g_new (gint32, nm);
    for (guint64 j = 0; j < nm; j++)
      mask[j] = (j % p.kv_len) % x->mask_every != 1;
    /* a batch item that sees no key at all gets zeros */
    if (batch > 1 && p.mask_batch >= p.kv_len)
      for (guint32 j = 0; j < p.kv_len; j++)
        mask[(guint64) (batch - 1) * p.mask_batch + j] = 0;
  }

  for (guint i = 0; i < G_N_ELEMENTS (variants); i++) {
    F2Op op = { .kind = F2_OP_ATTENTION, .name = "attention", .variant = variants[i].variant };
    char *label = g_strdup_printf ("attn %s %s", variants[i].name, what);
    F2Ref out;

    if (fused) {
      F2Ref all = kt_float (kt, nqkv, qkv);
      op.in[0] = f2_ref_at (all, off);
      op.in[1] = f2_ref_at (all, off + width);
      op.in[2] = f2_ref_at (all, off + 2 * width);
    } else {
      op.in[0] = f2_ref_at (kt_float (kt, nq, q), off);
      op.in[1] = f2_ref_at (kt_float (kt, nk, k), off);
      op.in[2] = f2_ref_at (kt_float (kt, nv, v), off);
    }
    if (mask != NULL)
      op.in[3] = kt_i32 (kt, (guint64) (batch - 1) * p.mask_batch + p.kv_len, mask);
    if (p.flags & F2_ATTN_DYNAMIC_KV)
      op.in[4] = kt_host_i32 (kt, 1, &x->dynamic_kv);
    out = kt_float (kt, no, zeros);
    op.out = f2_ref_at (out, off);
    op.p.attention = p;
    /* fp16: inputs, and the output (|o| < 1), rounded to half */
    kt_check (kt, &op, label, out, no, FALSE,
        KT_TOL (kt, 1e-10, 3e-5), KT_TOL (kt, 2e-5, 4e-3));
    g_free (label);
  }
  g_free (q);
  g_free (k);
  g_free (v);
  g_free (qkv);
  g_free (mask);
  g_free (zeros);
}

static F2AttentionParams
dense (guint32 heads, guint32 hd, guint32 q_len, guint32 kv_len, guint32 batch)
{
  guint32 c = heads * hd;
  F2AttentionParams p = {
    .n_heads = heads, .head_dim = hd, .q_len = q_len, .kv_len = kv_len,
    .q_stride = c, .k_stride = c, .v_stride = c, .o_stride = c,
    .batch = batch,
    .q_batch = (guint64) q_len * c, .k_batch = (guint64) kv_len * c,
    .v_batch = (guint64) kv_len * c, .o_batch = (guint64) q_len * c,
    .mask_batch = kv_len,
    .scale = 1.0f / sqrtf ((float) hd),
  };
  return p;
}

static F2AttentionParams
windowed (guint32 grid_h, guint32 grid_w, guint32 heads, guint32 hd)
{
  F2AttentionParams p = dense (heads, hd, 144, 144, 1);

  p.flags = F2_ATTN_WINDOW;
  p.grid_h = grid_h;
  p.grid_w = grid_w;
  p.window = 12;
  return p;
}

static void
test_decoder (KernelTest *kt)
{
  /* self-attention over a per-beam KV cache of 1024 rows, of which the
   * first *kv_len_ref are valid */
  F2AttentionParams p = dense (12, 64, 1, 1024, 3);
  AttnExtras x = { .dynamic_kv = 37 };

  p.flags = F2_ATTN_DYNAMIC_KV;
  test_attention (kt, "decoder self 12x64 kv 37/1024 beams 3", p, &x, FALSE);
  x.dynamic_kv = 1;
  test_attention (kt, "decoder self kv 1/1024", p, &x, FALSE);
  x.dynamic_kv = 1024;
  test_attention (kt, "decoder self kv 1024/1024", p, &x, FALSE);
  x.dynamic_kv = 5000;
  p.batch = 1;
  test_attention (kt, "decoder self kv ref past kv_len", p, &x, FALSE);

  /* cross-attention: the beams share the encoder's K/V, some keys masked */
  p = dense (12, 64, 1, 600, 3);
  p.k_batch = p.v_batch = 0;
  p.mask_batch = 600;
  p.flags = F2_ATTN_KEY_MASK;
  x.mask_every = 7;
  test_attention (kt, "cross 12x64 kv 600 beams 3 masked", p, &x, FALSE);

  /* several query rows (a prompt prefix through the decoder): causal with
   * an offset, also one that hides every key from the first queries */
  p = dense (4, 16, 7, 20, 2);
  p.flags = F2_ATTN_CAUSAL;
  p.causal_offset = 13;
  test_attention (kt, "causal q 7 kv 20 offset 13 batch 2", p, NULL, FALSE);
  p.causal_offset = -2;
  test_attention (kt, "causal offset -2 (empty rows)", p, NULL, FALSE);
  p = dense (3, 32, 100, 100, 1);
  p.flags = F2_ATTN_CAUSAL | F2_ATTN_DYNAMIC_KV;
  x.dynamic_kv = 90;
  test_attention (kt, "causal 100x100 dynamic 90", p, &x, FALSE);
  /* a long prefix: lavapipe ends an invocation after 65535 loop
   * iterations, so many keys per invocation must still come out right */
  p = dense (2, 128, 64, 1024, 1);
  p.flags = F2_ATTN_CAUSAL;
  p.causal_offset = 960;
  test_attention (kt, "causal q 64 kv 1024 head_dim 128", p, NULL, FALSE);
  p = dense (2, 8, 3, 1, 4);
  test_attention (kt, "kv_len 1 head_dim 8 batch 4", p, NULL, FALSE);
}

static void
test_encoder (KernelTest *kt)
{
  F2AttentionParams p = dense (12, 64, 600, 600, 1);
  AttnExtras x = { .mask_every = 5, .misalign = 0 };

  test_attention (kt, "encoder 12x64 600x600 fused qkv", p, NULL, TRUE);
  p = dense (2, 13, 70, 67, 2);
  p.flags = F2_ATTN_KEY_MASK;
  x.misalign = 1;
  test_attention (kt, "head_dim 13 q 70 kv 67 masked misaligned", p, &x, FALSE);
  p = dense (1, 128, 65, 33, 1);
  test_attention (kt, "head_dim 128 q 65 kv 33", p, NULL, FALSE);
  p = dense (2, 128, 1, 300, 2);
  test_attention (kt, "head_dim 128 q 1 kv 300", p, NULL, FALSE);
  x.misalign = 2;
  p = dense (3, 12, 20, 50, 2);
  test_attention (kt, "head_dim 12 q 20 kv 50 misaligned", p, &x, FALSE);
}

static void
test_window (KernelTest *kt)
{
  test_attention (kt, "window 24x36 4x32 (base stage 1 heads)",
      windowed (24, 36, 4, 32), NULL, TRUE);
  test_attention (kt, "window 24x36 3x16 (tiny)", windowed (24, 36, 3, 16), NULL, TRUE);
  test_attention (kt, "window 12x24 2x12", windowed (12, 24, 2, 12), NULL, TRUE);
  test_attention (kt, "window 24x12 2x13", windowed (24, 12, 2, 13), NULL, FALSE);
  test_attention (kt, "window 24x24 2x8", windowed (24, 24, 2, 8), NULL, FALSE);
  test_attention (kt, "window 48x48 16x32 (base stage 3)",
      windowed (48, 48, 16, 32), NULL, TRUE);
}

static void
test_channel (KernelTest *kt, guint32 tokens, guint32 channels, guint32 groups,
    guint32 misalign)
{
  F2ChannelAttentionParams p = { tokens, channels, groups, 1.0f / sqrtf ((float) tokens) };
  guint64 n = (guint64) tokens * 3 * channels + misalign;
  float *qkv = kt_random (n, 41, 1.0f);
  F2Op op = { .kind = F2_OP_CHANNEL_ATTENTION, .name = "channel_attention" };
  char *label = g_strdup_printf ("channel attn %u tokens %u ch %u groups%s", tokens,
      channels, groups, misalign ? " misaligned" : "");

  op.in[0] = f2_ref_at (kt_float (kt, n, qkv), misalign);
  op.in[1] = f2_ref_at (kt_i32 (kt, f2_channel_attention_scratch_size (&p) + 3, NULL), 3);
  op.out = kt_float (kt, (guint64) tokens * channels, NULL);
  op.p.channel_attention = p;
  kt_check (kt, &op, label, op.out, (guint64) tokens * channels, FALSE,
      KT_TOL (kt, 1e-10, 3e-5), KT_TOL (kt, 2e-5, 4e-3));
  g_free (label);
  g_free (qkv);
}

static void
test_channel_all (KernelTest *kt)
{
  test_channel (kt, 1, 8, 2, 0);
  test_channel (kt, 65, 48, 3, 0);
  test_channel (kt, 100, 26, 2, 1);
  test_channel (kt, 577, 96, 6, 2);
  test_channel (kt, 2304, 512, 16, 0);
  test_channel (kt, 36864, 128, 4, 0);
}

/* --window-bands: window attention in bands of window rows, run with
 * F2_VULKAN_STORAGE_RANGE lowered so that the grids need several bindings
 * (4 MiB: the base stage-3 grid in 4 bands of one row, 5 rows as 2 + 2 + 1;
 * q, k and v interleaved as in the model) */
static void
run_window_bands (KernelTest *kt)
{
  test_window (kt);
  test_attention (kt, "window 60x24 16x32 (bands of 2 rows)",
      windowed (60, 24, 16, 32), NULL, TRUE);
}

static void
run_all (KernelTest *kt)
{
  test_decoder (kt);
  test_encoder (kt);
  test_window (kt);
  test_channel_all (kt);
}

int
main (int argc, char **argv)
{
  if (argc > 1 && g_str_equal (argv[1], "--window-bands"))
    return kt_main (argc, argv, run_window_bands);
  return kt_main (argc, argv, run_all);
}
