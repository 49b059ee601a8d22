/* Kernel tests: conv2d as an implicit GEMM on the matmul kernels, every
 * variant (planar 7x7/4 as Florence-2's first stage, token-layout 3x3/2 as
 * its later stages), and the depthwise 3x3 convolution (DaViT's position
 * encoding), in its vec4 form (channels a multiple of 4, aligned) and its
 * scalar form. */
#include "kernel-harness.h"

/* conv2d, as the matmuls: fp32: accumulation order only; fp16: inputs and
 * output rounded to half; bf16: inputs rounded to 8 significant bits */
#define TOL_NMSE(kt) KT_TOL_MM (kt, 1e-10, 1e-5, 4e-5)
#define TOL_ABS(kt) KT_TOL_MM (kt, 1e-4, 3e-2, 0.15)

static const struct {
  F2Variant variant;
  const char *name;
} variants[] = {
  { F2_VARIANT_REGISTER_BLOCKED, "rb" },
  { F2_VARIANT_SHARED_TILED, "tiled" },
  { F2_VARIANT_SHARED_TILED_SG32, "tiled-sg32" },   /* NVIDIA's shape */
};

static void
test_conv (KernelTest *kt, F2Variant variant, const char *vname, guint32 cin,
    guint32 h, guint32 w, guint32 cout, guint32 kernel, guint32 stride, guint32 pad,
    F2Layout layout, guint32 flags)
{
  guint32 ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1;
  guint32 k = cin * kernel * kernel;
  guint64 x_size = (guint64) cin * h * w, o_size = (guint64) ho * wo * cout;
  float *x = kt_random (x_size, 21, 1.0f);
  float *wt = kt_random ((guint64) cout * k, 22, 0.1f);
  float *bias = kt_random (cout, 23, 0.5f);
  F2Op op = { .kind = F2_OP_CONV2D, .variant = variant, .name = "conv2d" };
  char *label = g_strdup_printf ("conv2d %s %s %ux%ux%u -> %u k%u/%u%s%s", vname,
      layout == F2_LAYOUT_HWC ? "hwc" : "chw", cin, h, w, cout, kernel, stride,
      flags & F2_EPI_BIAS ? " +bias" : "", flags & F2_EPI_GELU ? " +gelu" : "");

  op.in[0] = kt_float (kt, x_size, x);
  op.in[1] = kt_linear (kt, cout, k, wt);
  if (flags & F2_EPI_BIAS)
    op.in[2] = kt_float (kt, cout, bias);
  op.out = kt_float (kt, o_size, NULL);
  op.p.conv2d = (F2Conv2dParams) { cin, h, w, cout, kernel, stride, pad, layout, flags };
  kt_check (kt, &op, label, op.out, o_size, FALSE, TOL_NMSE (kt), TOL_ABS (kt));
  g_free (label);
  g_free (x);
  g_free (wt);
  g_free (bias);
}

/* @offset shifts every tensor by that many elements (breaks vec4 alignment) */
static void
test_dwconv (KernelTest *kt, guint32 h, guint32 w, guint32 c, gboolean residual,
    gboolean with_bias, guint32 offset, gboolean timed)
{
  guint64 n = (guint64) h * w * c;
  float *x = kt_random (n + offset, 11, 1.0f);
  float *wt = kt_random ((guint64) c * 9 + offset, 12, 0.5f);
  float *bias = kt_random (c + offset, 13, 0.2f);
  F2Op op = { .kind = F2_OP_DWCONV3X3, .name = "dwconv3x3" };
  char *label = g_strdup_printf ("dwconv %ux%ux%u%s%s%s", h, w, c,
      residual ? " +x" : "", with_bias ? "" : " no bias",
      offset ? " unaligned" : (c % 4 == 0 ? " vec4" : ""));

  op.in[0] = f2_ref_at (kt_float (kt, n + offset, x), offset);
  op.in[1] = f2_ref_at (kt_float (kt, (guint64) c * 9 + offset, wt), offset);
  if (with_bias)
    op.in[2] = f2_ref_at (kt_float (kt, c + offset, bias), offset);
  op.out = f2_ref_at (kt_float (kt, n + offset, NULL), offset);
  op.p.dwconv = (F2DwConvParams) { h, w, c, residual };
  kt_check (kt, &op, label, op.out, n, FALSE, KT_TOL (kt, 1e-12, 2e-6),
      KT_TOL (kt, 2e-5, 2e-2));
  if (timed)
    kt_report_time (kt, &op, label);
  g_free (label);
  g_free (x);
  g_free (wt);
  g_free (bias);
}

static void
run_all (KernelTest *kt)
{
  const guint32 B = F2_EPI_BIAS, G = F2_EPI_GELU;

  for (guint v = 0; v < G_N_ELEMENTS (variants); v++) {
    test_conv (kt, variants[v].variant, variants[v].name, 3, 64, 64, 128, 7, 4, 3,
        F2_LAYOUT_CHW, B);
    test_conv (kt, variants[v].variant, variants[v].name, 5, 13, 11, 37, 3, 2, 1,
        F2_LAYOUT_HWC, B);
    test_conv (kt, variants[v].variant, variants[v].name, 128, 25, 25, 256, 3, 2, 1,
        F2_LAYOUT_HWC, B);
    test_conv (kt, variants[v].variant, variants[v].name, 2, 9, 10, 3, 3, 1, 0,
        F2_LAYOUT_CHW, 0);
    test_conv (kt, variants[v].variant, variants[v].name, 5, 13, 11, 37, 3, 2, 1,
        F2_LAYOUT_HWC, B | G);
  }
  /* Florence-2-base's first stage at full size, with the device's choice */
  test_conv (kt, F2_VARIANT_AUTO, "auto", 3, 768, 768, 128, 7, 4, 3, F2_LAYOUT_CHW, B);

  /* depthwise: odd sizes, scalar path */
  test_dwconv (kt, 1, 1, 1, FALSE, TRUE, 0, FALSE);
  test_dwconv (kt, 1, 1, 13, TRUE, TRUE, 0, FALSE);
  test_dwconv (kt, 3, 5, 13, TRUE, TRUE, 0, FALSE);
  test_dwconv (kt, 7, 11, 13, TRUE, FALSE, 0, FALSE);
  test_dwconv (kt, 5, 2, 6, FALSE, TRUE, 0, FALSE);
  /* vec4 path, small and odd grids */
  test_dwconv (kt, 1, 1, 4, TRUE, TRUE, 0, FALSE);
  test_dwconv (kt, 7, 11, 8, TRUE, TRUE, 0, FALSE);
  test_dwconv (kt, 3, 5, 16, FALSE, FALSE, 0, FALSE);
  /* channels a multiple of 4 but tensors unaligned: scalar path */
  test_dwconv (kt, 7, 11, 128, TRUE, TRUE, 1, FALSE);
  test_dwconv (kt, 24, 24, 1024, TRUE, TRUE, 2, FALSE);
  /* Florence-2-base stages (768x768 input) */
  test_dwconv (kt, 192, 192, 128, TRUE, TRUE, 0, TRUE);
  test_dwconv (kt, 96, 96, 256, TRUE, TRUE, 0, TRUE);
  test_dwconv (kt, 48, 48, 512, TRUE, TRUE, 0, TRUE);
  test_dwconv (kt, 24, 24, 1024, TRUE, TRUE, 0, TRUE);
}

int
main (int argc, char **argv)
{
  return kt_main (argc, argv, run_all);
}
