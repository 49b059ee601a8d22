/* Kernel tests: matmul (every variant, the matrix-vector path, column splits
 * of weights larger than one binding, epilogues, strides). The large
 * Florence-2 shapes run with fewer rows where the CPU reference would take
 * too long; the row count does not change the code paths. conv2d, which
 * runs on the same kernels, is tested with its family (test-kernels-conv.c). */
#include "kernel-harness.h"
#include "test-common.h"
#include "vk-device.h"

#include <stdlib.h>

/* fp32: accumulation order only; fp16: inputs and output rounded to half;
 * bf16: inputs rounded to 8 significant bits */
#define TOL_NMSE(kt) KT_TOL_MM (kt, 1e-10, 1e-5, 4e-5)
#define TOL_ABS(kt) KT_TOL_MM (kt, 1e-4, 3e-2, 0.15)

static const struct {
  F2Variant variant;
  const char *name;
} variants[] = {
  { F2_VARIANT_REGISTER_BLOCKED, "rb" },
  { F2_VARIANT_SHARED_TILED, "tiled" },
  /* the GPU shapes for 32- and 64-lane subgroups, at lavapipe's 8 or 16 */
  { F2_VARIANT_SHARED_TILED_SG32, "tiled-sg32" },
  { F2_VARIANT_SHARED_TILED_SG64, "tiled-sg64" },
};

typedef struct {
  guint32 m, n, k;
  guint32 lda, ldo, ldr;        /* 0 = packed */
  guint32 flags;
  guint32 a_offset;             /* elements before a's first row */
} MatmulCase;

static void
test_matmul (KernelTest *kt, F2Variant variant, const char *vname, const MatmulCase *c)
{
  guint32 lda = c->lda ? c->lda : c->k, ldo = c->ldo ? c->ldo : c->n;
  guint32 ldr = c->ldr ? c->ldr : c->n;
  guint64 a_size = c->a_offset + (guint64) (c->m - 1) * lda + c->k;
  guint64 o_size = (guint64) (c->m - 1) * ldo + c->n;
  guint64 r_size = (guint64) (c->m - 1) * ldr + c->n;
  float *a = kt_random (a_size, 11 + c->m, 1.0f);
  float *w = kt_random ((guint64) c->n * c->k, 12 + c->k, 0.05f);
  float *bias = kt_random (c->n, 13, 0.5f);
  float *res = kt_random (r_size, 14, 1.0f);
  F2Op op = { .kind = F2_OP_MATMUL, .variant = variant, .name = "matmul" };
  char *label = g_strdup_printf ("matmul %s %ux%ux%u%s%s%s%s", vname, c->m, c->n, c->k,
      c->flags & F2_EPI_BIAS ? " +bias" : "", c->flags & F2_EPI_GELU ? " +gelu" : "",
      c->flags & F2_EPI_RESIDUAL ? " +res" : "",
      c->lda || c->ldo || c->ldr || c->a_offset ? " strided" : "");

  op.in[0] = f2_ref_at (kt_float (kt, a_size, a), c->a_offset);
  op.in[1] = kt_linear (kt, c->n, c->k, w);
  if (c->flags & F2_EPI_BIAS)
    op.in[2] = kt_float (kt, c->n, bias);
  if (c->flags & F2_EPI_RESIDUAL)
    op.in[3] = kt_float (kt, r_size, res);
  op.out = kt_float (kt, o_size, NULL);
  op.p.matmul = (F2MatmulParams) { c->m, c->n, c->k, c->lda, c->ldo, c->ldr, c->flags };
  kt_check (kt, &op, label, op.out, o_size, FALSE, TOL_NMSE (kt), TOL_ABS (kt));
  g_free (label);
  g_free (a);
  g_free (w);
  g_free (bias);
  g_free (res);
}

static const MatmulCase per_variant[] = {
  { 5, 1, 1 },
  { 9, 17, 1, .flags = F2_EPI_BIAS },
  { 37, 53, 71 },
  { 37, 53, 71, .flags = F2_EPI_BIAS | F2_EPI_GELU | F2_EPI_RESIDUAL },
  { 6, 130, 9, .flags = F2_EPI_BIAS | F2_EPI_RESIDUAL },
  { 33, 70, 50, 53, 75, 81, F2_EPI_BIAS | F2_EPI_RESIDUAL, 3 },  /* unaligned rows of a */
  { 29, 64, 48, 52, 70, 66, F2_EPI_GELU | F2_EPI_RESIDUAL, 4 },  /* vec4-aligned rows of a */
  { 577, 768, 768, .flags = F2_EPI_BIAS },
  { 97, 3072, 768, .flags = F2_EPI_BIAS | F2_EPI_GELU },         /* 577x3072x768 (fc1) */
  { 67, 768, 3072, .flags = F2_EPI_BIAS | F2_EPI_RESIDUAL },     /* 577x768x3072 (fc2) */
  { 130, 512, 1536, .flags = F2_EPI_BIAS },                      /* 2304x512x1536 */
  { 1000, 128, 384, .flags = F2_EPI_BIAS | F2_EPI_RESIDUAL },    /* 9216x128x384 */
};

static void
run_all (KernelTest *kt)
{
  const guint32 B = F2_EPI_BIAS, G = F2_EPI_GELU, R = F2_EPI_RESIDUAL;
  /* the matrix-vector path (M <= 4) on any variant */
  const MatmulCase gemv[] = {
    { 1, 1, 1 },
    { 1, 51289, 768 },                            /* LM head: split in fp32 */
    { 3, 51289, 768, .flags = B },                /* three beams */
    { 2, 1000, 1024, 1030, 1001, 1003, B | G | R, 1 },
    { 4, 768, 3072, .flags = B | R },
  };

  for (guint v = 0; v < G_N_ELEMENTS (variants); v++)
    for (guint i = 0; i < G_N_ELEMENTS (per_variant); i++)
      test_matmul (kt, variants[v].variant, variants[v].name, &per_variant[i]);
  for (guint i = 0; i < G_N_ELEMENTS (gemv); i++)
    test_matmul (kt, F2_VARIANT_AUTO, "auto", &gemv[i]);
}

/* The cooperative-matrix kernel (--coopmat): fp16 only, and only where the
 * device has it; elsewhere the test reports a skip, not a pass. */
static void
run_coopmat (KernelTest *kt)
{
  const guint32 B = F2_EPI_BIAS, G = F2_EPI_GELU, R = F2_EPI_RESIDUAL;
  /* tile edges: one 64 x 64 tile and a row and column past it, k a
   * multiple of the 32-deep step and not */
  const MatmulCase edges[] = {
    { 64, 64, 64 },
    { 65, 65, 65, .flags = B | R },
    { 128, 192, 96, .flags = B | G },
    { 63, 127, 33, .flags = G | R },
  };

  if (!f2_vk_backend_has_coopmat (kt->gpu)) {
    g_print ("SKIP: the device has no cooperative-matrix matmul "
        "(VK_NV_cooperative_matrix with an fp16 shape)\n");
    exit (F2_TEST_SKIP);
  }
  if (kt->precision != F2_PRECISION_FP16) {
    g_print ("# coopmat: fp16 only, nothing to check in %s\n", kt->precision_name);
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS (per_variant); i++)
    test_matmul (kt, F2_VARIANT_COOPMAT, "coopmat", &per_variant[i]);
  for (guint i = 0; i < G_N_ELEMENTS (edges); i++)
    test_matmul (kt, F2_VARIANT_COOPMAT, "coopmat", &edges[i]);
}

int
main (int argc, char **argv)
{
  if (argc > 1 && g_str_equal (argv[1], "--coopmat"))
    return kt_main (argc, argv, run_coopmat);
  return kt_main (argc, argv, run_all);
}
