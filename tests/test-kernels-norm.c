/* Kernel tests: layer norm (with the fused residual add, in place, strided)
 * and softmax, each kernel variant against the CPU reference. */
#include "kernel-harness.h"

static const struct {
  F2Variant variant;
  const char *name;
} variants[] = {
  { F2_VARIANT_REGISTER_BLOCKED, "row" },
  { F2_VARIANT_SHARED_TILED, "tree" },
};

static void
test_layer_norm (KernelTest *kt, guint32 rows, guint32 cols, guint32 ldx,
    guint32 ldo, gboolean residual, gboolean in_place)
{
  guint32 lx = ldx ? ldx : cols, lo = in_place ? lx : (ldo ? ldo : cols);
  guint64 nx = (guint64) (rows - 1) * lx + cols, no = (guint64) (rows - 1) * lo + cols;
  float *x = kt_random (nx, 11, 2.0f), *r = kt_random (nx, 12, 1.0f);
  float *gamma = kt_random (cols, 13, 1.0f), *beta = kt_random (cols, 14, 0.5f);
  float *zeros = g_new0 (float, no);

  /* an offset mean, as activations have: tests the shifted statistics */
  for (guint64 i = 0; i < nx; i++)
    x[i] += 3.0f;
  for (guint i = 0; i < G_N_ELEMENTS (variants); i++) {
    F2Op op = { .kind = F2_OP_LAYER_NORM, .name = "layer_norm", .variant = variants[i].variant };
    char *label = g_strdup_printf ("layer_norm %s %ux%u%s%s%s", variants[i].name,
        rows, cols, ldx || ldo ? " strided" : "", residual ? " +res" : "",
        in_place ? " in-place" : "");

    op.in[0] = kt_float (kt, nx, x);
    op.in[1] = kt_float (kt, cols, gamma);
    op.in[2] = kt_float (kt, cols, beta);
    if (residual)
      op.in[3] = kt_float (kt, nx, r);
    /* the gaps between output rows are compared too: start them equal */
    op.out = in_place ? op.in[0] : kt_float (kt, no, zeros);
    op.p.layer_norm = (F2LayerNormParams) { rows, cols, ldx, in_place ? ldx : ldo, 1e-5f };
    /* fp16: inputs and outputs rounded to half (|y| up to ~4) */
    kt_check (kt, &op, label, op.out, in_place ? nx : no, FALSE,
        KT_TOL (kt, 1e-11, 2e-5), KT_TOL (kt, 5e-5, 3e-2));
    g_free (label);
  }
  g_free (x);
  g_free (r);
  g_free (gamma);
  g_free (beta);
  g_free (zeros);
}

static void
test_softmax (KernelTest *kt, guint32 rows, guint32 cols, float scale, float range)
{
  guint64 n = (guint64) rows * cols;
  float *x = kt_random (n, 21, range);

  for (guint i = 0; i < G_N_ELEMENTS (variants); i++) {
    F2Op op = { .kind = F2_OP_SOFTMAX, .name = "softmax", .variant = variants[i].variant };
    char *label = g_strdup_printf ("softmax %s %ux%u scale %g", variants[i].name,
        rows, cols, scale);

    op.in[0] = kt_float (kt, n, x);
    op.out = op.in[0];
    op.p.softmax = (F2SoftmaxParams) { rows, cols, scale };
    kt_check (kt, &op, label, op.out, n, FALSE, KT_TOL (kt, 1e-11, 2e-5),
        KT_TOL (kt, 1e-6, 2e-3));
    g_free (label);
  }
  g_free (x);
}

static void
run_all (KernelTest *kt)
{
  test_layer_norm (kt, 1, 1, 0, 0, FALSE, FALSE);
  test_layer_norm (kt, 3, 5, 0, 0, TRUE, FALSE);
  test_layer_norm (kt, 577, 768, 0, 0, TRUE, FALSE);
  test_layer_norm (kt, 577, 768, 0, 0, FALSE, TRUE);
  test_layer_norm (kt, 13, 1024, 1030, 1027, TRUE, FALSE);
  test_layer_norm (kt, 40, 1000, 0, 0, TRUE, TRUE);
  test_layer_norm (kt, 36864, 32, 0, 0, FALSE, FALSE);
  test_layer_norm (kt, 36864, 128, 0, 0, TRUE, TRUE);
  test_softmax (kt, 1, 1, 1.0f, 1.0f);
  test_softmax (kt, 7, 1000, 0.125f, 40.0f);
  test_softmax (kt, 600, 600, 0.125f, 8.0f);
  test_softmax (kt, 3, 51289, 1.0f, 10.0f);
}

int
main (int argc, char **argv)
{
  return kt_main (argc, argv, run_all);
}
