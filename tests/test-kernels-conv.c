/* Kernel tests: depthwise 3x3 convolution (DaViT's position encoding), in
 * its vec4 form (channels a multiple of 4, aligned) and its scalar form. */
#include "kernel-harness.h"


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
  /* odd sizes, scalar path */
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
