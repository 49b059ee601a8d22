/* Kernel tests: matmul (every variant, the matrix-vector path, column splits
 * of weights larger than one binding, epilogues, strides). The large
 * Florence-2 shapes run with fewer rows where the CPU reference would take
 * too long; the row count does not change the code paths. conv2d, which
 * runs on the same kernels, is tested with its family (test-kernels-conv.c). */
#include "kernel-harness.h"
#include "test-common.h"
#include "vk-device.h"

#include <stdlib.h>
#include <string.h>

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
  char *label = g_strdup_printf ("matmul %s %ux%ux%u%s%s%s%s%s", vname, c->m, c->n, c->k,
      c->flags & F2_MATMUL_SEQUENCE_ROWS ? " seq" : "",
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

/* Decoder rows (F2_MATMUL_SEQUENCE_ROWS) must give each row the same bits
 * whatever the row count: 12 rows at once, then the same rows as batches
 * of 1, 3, 5 and 3 (what one frame alone and frames in a batch run). */
static void
test_rows_invariant (KernelTest *kt, F2Variant variant, const char *vname)
{
  const guint32 m = 12, n = 200, k = 300;
  const guint32 parts[][2] = { { 0, 1 }, { 1, 3 }, { 4, 5 }, { 9, 3 } };
  float *a = kt_random ((guint64) m * k, 21, 1.0f);
  float *w = kt_random ((guint64) n * k, 22, 0.05f);
  float *bias = kt_random (n, 23, 0.5f);
  float *res = kt_random ((guint64) m * n, 24, 1.0f);
  float *all = g_new (float, (guint64) m * n), *split = g_new (float, (guint64) m * n);
  F2Ref ra = kt_float (kt, (guint64) m * k, a), rw = kt_linear (kt, n, k, w);
  F2Ref rb = kt_float (kt, n, bias), rr = kt_float (kt, (guint64) m * n, res);
  F2Ref out_all = kt_float (kt, (guint64) m * n, NULL);
  F2Ref out_split = kt_float (kt, (guint64) m * n, NULL);
  const guint32 flags = F2_MATMUL_SEQUENCE_ROWS | F2_EPI_BIAS | F2_EPI_GELU | F2_EPI_RESIDUAL;
  char *label = g_strdup_printf ("matmul %s seq rows %ux%ux%u", vname, m, n, k);
  GError *error = NULL;
  gboolean same;

  for (guint i = 0; i <= G_N_ELEMENTS (parts); i++) {
    guint32 r0 = i < G_N_ELEMENTS (parts) ? parts[i][0] : 0;
    guint32 rows = i < G_N_ELEMENTS (parts) ? parts[i][1] : m;
    F2Op op = { .kind = F2_OP_MATMUL, .variant = variant, .name = "matmul" };
    char *part = g_strdup_printf ("%s: rows %u..%u", label, r0, r0 + rows - 1);

    op.in[0] = f2_ref_at (ra, (guint64) r0 * k);
    op.in[1] = rw;
    op.in[2] = rb;
    op.in[3] = f2_ref_at (rr, (guint64) r0 * n);
    op.out = f2_ref_at (i < G_N_ELEMENTS (parts) ? out_split : out_all, (guint64) r0 * n);
    op.p.matmul = (F2MatmulParams) { rows, n, k, 0, 0, 0, flags };
    kt_check (kt, &op, part, op.out, (guint64) rows * n, FALSE, TOL_NMSE (kt), TOL_ABS (kt));
    g_free (part);
  }
  if (!f2_backend_read (kt->gpu, out_all, all, (guint64) m * n, &error)
      || !f2_backend_read (kt->gpu, out_split, split, (guint64) m * n, &error))
    g_error ("%s: read failed: %s", label, error->message);
  same = memcmp (all, split, sizeof (float) * m * n) == 0;
  g_print ("%s %-48s %s: %s\n", same ? "ok  " : "FAIL", label, kt->precision_name,
      same ? "rows identical alone and together" : "rows differ alone and together");
  kt->checks++;
  if (!same)
    kt->failures++;
  g_free (label);
  g_free (a);
  g_free (w);
  g_free (bias);
  g_free (res);
  g_free (all);
  g_free (split);
}

static void
run_all (KernelTest *kt)
{
  const guint32 B = F2_EPI_BIAS, G = F2_EPI_GELU, R = F2_EPI_RESIDUAL;
  const guint32 SEQ = F2_MATMUL_SEQUENCE_ROWS;
  /* the few-rows path (M <= 4, or decoder rows) on every variant */
  const MatmulCase gemv[] = {
    { 1, 1, 1 },
    { 2, 1000, 1024, 1030, 1001, 1003, B | G | R, 1 },
    { 4, 768, 3072, .flags = B | R },
    { 1, 768, 768, .flags = SEQ | B },
    { 12, 3072, 768, .flags = SEQ | B | G },      /* 4 frames of 3 beams: fc1 */
    { 9, 130, 70, 75, 133, 131, SEQ | B | R, 2 },
  };
  /* the LM head, split by columns in fp32: on the device's own kernel and
   * on the GPUs' */
  const MatmulCase lm_head[] = {
    { 1, 51289, 768 },
    { 3, 51289, 768, .flags = B | SEQ },          /* three beams */
  };
  /* the cpu backend has one kernel whatever the variant */
  guint n_variants = kt_backend_is_cpu () ? 1 : G_N_ELEMENTS (variants);

  for (guint v = 0; v < n_variants; v++) {
    for (guint i = 0; i < G_N_ELEMENTS (per_variant); i++)
      test_matmul (kt, variants[v].variant, variants[v].name, &per_variant[i]);
    for (guint i = 0; i < G_N_ELEMENTS (gemv); i++)
      test_matmul (kt, variants[v].variant, variants[v].name, &gemv[i]);
    test_rows_invariant (kt, variants[v].variant, variants[v].name);
  }
  for (guint i = 0; i < G_N_ELEMENTS (lm_head); i++) {
    test_matmul (kt, F2_VARIANT_AUTO, "auto", &lm_head[i]);
    if (!kt_backend_is_cpu ())
      test_matmul (kt, F2_VARIANT_SHARED_TILED, "tiled", &lm_head[i]);
  }
  test_rows_invariant (kt, F2_VARIANT_AUTO, "auto");
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
