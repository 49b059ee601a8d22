/* Kernel tests: argmax and top-k (with log-softmax values) over the
 * vocabulary, with banned ids, strided rows and ties. Ids must match the CPU
 * reference exactly. */
#include "kernel-harness.h"

#include <math.h>

#define VOCAB 51289


typedef enum {
  DATA_TIES,                    /* multiples of 1/256 in [-8, 8]: exact in fp16, many ties */
  DATA_SMOOTH,                  /* continuous values (fp32 only: fp16 rounding reorders them) */
  DATA_ASCENDING,               /* increasing along the row: every value enters the lists */
  DATA_FLAT,                    /* all equal: ties everywhere */
} DataKind;

static float *
make_rows (DataKind kind, guint32 rows, guint32 ldx, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  float *x = g_new (float, (guint64) rows * ldx);

  for (guint64 i = 0; i < (guint64) rows * ldx; i++) {
    guint32 c = (guint32) (i % ldx);
    switch (kind) {
      case DATA_TIES:
        x[i] = (float) g_rand_int_range (rand, -2048, 2049) / 256.0f;
        break;
      case DATA_SMOOTH:
        x[i] = (float) g_rand_double_range (rand, -10.0, 10.0);
        break;
      case DATA_ASCENDING:
        x[i] = (float) (c % 4096) / 512.0f;
        break;
      case DATA_FLAT:
        x[i] = 0.5f;
        break;
    }
  }
  g_rand_free (rand);
  return x;
}

/* Banned ids per row: the row's best few (so they matter), ids past
 * 65536 when the row is that long, repeats, and -1 in the unused slots. */
static gint32 *
make_banned (const float *x, guint32 rows, guint32 cols, guint32 ldx,
    guint32 max_banned, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  gint32 *banned = g_new (gint32, (guint64) rows * max_banned);

  for (guint32 r = 0; r < rows; r++) {
    gint32 *b = banned + (guint64) r * max_banned;
    const float *xr = x + (guint64) r * ldx;
    guint32 used = max_banned - max_banned / 4;

    for (guint32 j = 0; j < max_banned; j++)
      b[j] = j < used ? g_rand_int_range (rand, 0, (gint32) cols) : -1;
    /* ban the first few maxima */
    for (guint32 j = 0; j < MIN (used, 3u); j++) {
      gint32 best = -1;
      for (guint32 c = 0; c < cols; c++) {
        gboolean taken = FALSE;
        for (guint32 t = 0; t < j; t++)
          taken |= b[t] == (gint32) c;
        if (!taken && (best < 0 || xr[c] > xr[best]))
          best = (gint32) c;
      }
      b[j] = best;
    }
    if (used > 4)
      b[used - 1] = b[0];       /* a repeat */
  }
  g_rand_free (rand);
  return banned;
}

/* Values where rows have fewer than k ids left end in -inf on both sides,
 * which the harness's difference cannot compare: check those here, equal
 * infinities as equal. Runs after kt_check2 ran the op on both backends. */
static void
check_values (KernelTest *kt, const char *label, F2Ref out, guint64 n, double tol)
{
  GError *error = NULL;
  float *want = g_new (float, n), *got = g_new (float, n);
  double worst = 0;
  guint64 infinite = 0;

  if (!f2_backend_read (kt->cpu, out, want, n, &error)
      || !f2_backend_read (kt->gpu, out, got, n, &error))
    g_error ("%s: read failed: %s", label, error->message);
  for (guint64 i = 0; i < n; i++) {
    double d = want[i] == got[i] ? 0.0 : fabs ((double) want[i] - got[i]);
    if (isinf (want[i]))
      infinite++;
    if (!(d <= worst))
      worst = isnan (d) ? INFINITY : d;
  }
  kt->checks++;
  if (!(worst <= tol))
    kt->failures++;
  g_print ("%s %-48s %s: values max-abs %.3e (tol %.0e), %" G_GUINT64_FORMAT
      " empty slots (-inf)\n", worst <= tol ? "ok  " : "FAIL", label, kt->precision_name,
      worst, tol, infinite);
  g_free (want);
  g_free (got);
}

static void
test_reduce (KernelTest *kt, gboolean topk, guint32 rows, guint32 cols,
    guint32 pad, guint32 k, guint32 max_banned, DataKind kind, gboolean timed)
{
  static const char *kinds[] = { "ties", "smooth", "ascending", "flat" };
  guint32 ldx = cols + pad;
  float *x = make_rows (kind, rows, ldx, 21 + rows + cols);
  gint32 *banned = max_banned ? make_banned (x, rows, cols, ldx, max_banned, 22) : NULL;
  F2Op op = { .name = topk ? "topk" : "argmax" };
  char *label = topk ?
      g_strdup_printf ("topk %ux%u ldx=%u k=%u banned=%u %s", rows, cols, ldx, k,
      max_banned, kinds[kind]) :
      g_strdup_printf ("argmax %ux%u ldx=%u banned=%u %s", rows, cols, ldx,
      max_banned, kinds[kind]);

  op.in[0] = kt_float (kt, (guint64) rows * ldx, x);
  if (banned)
    op.in[1] = kt_i32 (kt, (guint64) rows * max_banned, banned);
  if (topk) {
    op.kind = F2_OP_TOPK;
    op.out = kt_i32 (kt, (guint64) rows * k, NULL);
    op.out2 = kt_float (kt, (guint64) rows * k, NULL);
    op.p.topk = (F2TopkParams) { rows, cols, pad ? ldx : 0, k, max_banned };
    /* values: x - lse, |value| up to ~30; fp16 stores them in half */
    kt_check2 (kt, &op, label, op.out, (guint64) rows * k, TRUE, F2_REF_NONE, 0,
        FALSE, 0, 0);
    check_values (kt, label, op.out2, (guint64) rows * k, KT_TOL (kt, 2e-5, 2e-2));
  } else {
    op.kind = F2_OP_ARGMAX;
    op.out = kt_i32 (kt, rows, NULL);
    op.p.argmax = (F2ArgmaxParams) { rows, cols, pad ? ldx : 0, max_banned };
    kt_check (kt, &op, label, op.out, rows, TRUE, 0, 0);
  }
  if (timed)
    kt_report_time (kt, &op, label);
  g_free (label);
  g_free (x);
  g_free (banned);
}

static void
run_all (KernelTest *kt)
{
  gboolean fp32 = kt->precision == F2_PRECISION_FP32;

  /* argmax: sizes, strides, banned ids, ties */
  test_reduce (kt, FALSE, 1, 1, 0, 1, 0, DATA_TIES, FALSE);
  test_reduce (kt, FALSE, 3, 7, 1, 1, 0, DATA_TIES, FALSE);
  test_reduce (kt, FALSE, 2, 5, 0, 1, 8, DATA_TIES, FALSE);      /* most ids banned */
  test_reduce (kt, FALSE, 2, 3, 0, 1, 4, DATA_FLAT, FALSE);      /* every id banned: -1 */
  test_reduce (kt, FALSE, 3, 300, 5, 1, 20, DATA_FLAT, FALSE);
  test_reduce (kt, FALSE, 1, VOCAB, 0, 1, 0, DATA_TIES, TRUE);
  test_reduce (kt, FALSE, 3, VOCAB, 7, 1, 0, DATA_TIES, TRUE);
  test_reduce (kt, FALSE, 3, VOCAB, 7, 1, 40, DATA_TIES, TRUE);
  test_reduce (kt, FALSE, 3, VOCAB, 0, 1, 1024, DATA_ASCENDING, TRUE);
  test_reduce (kt, FALSE, 2, 70001, 3, 1, 9, DATA_TIES, FALSE);  /* ids past the mask */
  if (fp32)
    test_reduce (kt, FALSE, 3, VOCAB, 0, 1, 12, DATA_SMOOTH, FALSE);

  /* top-k */
  test_reduce (kt, TRUE, 1, 1, 0, 1, 0, DATA_TIES, FALSE);
  test_reduce (kt, TRUE, 1, 16, 0, 16, 0, DATA_TIES, FALSE);
  test_reduce (kt, TRUE, 3, 20, 2, 16, 12, DATA_TIES, FALSE);    /* fewer left than k */
  test_reduce (kt, TRUE, 2, 300, 0, 5, 20, DATA_FLAT, FALSE);
  test_reduce (kt, TRUE, 1, VOCAB, 0, 1, 0, DATA_TIES, TRUE);
  test_reduce (kt, TRUE, 3, VOCAB, 7, 3, 0, DATA_TIES, FALSE);
  test_reduce (kt, TRUE, 3, VOCAB, 7, 6, 40, DATA_TIES, TRUE);
  test_reduce (kt, TRUE, 3, VOCAB, 0, 16, 300, DATA_TIES, TRUE);
  test_reduce (kt, TRUE, 3, VOCAB, 0, 16, 4, DATA_ASCENDING, TRUE);
  test_reduce (kt, TRUE, 2, 70001, 3, 8, 9, DATA_TIES, FALSE);
  /* k = 32, the most: 16 beams keep 2 candidates each */
  test_reduce (kt, TRUE, 1, 32, 0, 32, 0, DATA_TIES, FALSE);
  test_reduce (kt, TRUE, 2, 40, 3, 32, 12, DATA_TIES, FALSE);    /* fewer left than k */
  test_reduce (kt, TRUE, 16, VOCAB, 0, 32, 40, DATA_TIES, TRUE);
  if (fp32)                     /* past ~24 ascending values fp16 rounding makes ties */
    test_reduce (kt, TRUE, 16, VOCAB, 5, 32, 300, DATA_ASCENDING, FALSE);
  test_reduce (kt, TRUE, 2, 70001, 0, 32, 9, DATA_TIES, FALSE);
  if (fp32)
    test_reduce (kt, TRUE, 3, VOCAB, 1, 6, 12, DATA_SMOOTH, FALSE);
}

int
main (int argc, char **argv)
{
  return kt_main (argc, argv, run_all);
}
