/* Kernel tests: add, copy, mean over rows, embedding. */
#include "kernel-harness.h"

static void
test_add (KernelTest *kt, guint32 n, guint32 period)
{
  float *a = kt_random (n, 1, 1.0f), *b = kt_random (period ? period : n, 2, 1.0f);
  F2Op op = { .kind = F2_OP_ADD, .name = "add" };
  char *label = g_strdup_printf ("add n=%u period=%u", n, period);

  op.in[0] = kt_float (kt, n, a);
  op.in[1] = kt_float (kt, period ? period : n, b);
  op.out = kt_float (kt, n, NULL);
  op.p.add = (F2AddParams) { n, period };
  kt_check (kt, &op, label, op.out, n, FALSE, KT_TOL (kt, 1e-12, 1e-6), KT_TOL (kt, 1e-6, 4e-3));
  g_free (label);
  g_free (a);
  g_free (b);
}

static void
test_copy (KernelTest *kt, guint32 rows, guint32 cols, gboolean indexed)
{
  guint32 ldx = cols + 3, ldo = cols + 5;
  float *x = kt_random ((guint64) rows * ldx, 3, 1.0f);
  gint32 *idx = g_new (gint32, rows);
  F2Op op = { .kind = F2_OP_COPY, .name = "copy" };
  char *label = g_strdup_printf ("copy %ux%u%s", rows, cols, indexed ? " indexed" : "");

  for (guint32 r = 0; r < rows; r++)
    idx[r] = (gint32) ((r * 7 + 1) % rows);
  op.in[0] = kt_float (kt, (guint64) rows * ldx, x);
  if (indexed)
    op.in[1] = kt_i32 (kt, rows, idx);
  op.out = kt_float (kt, (guint64) rows * ldo, NULL);
  op.p.copy = (F2CopyParams) { rows, cols, ldx, ldo };
  /* fp16: only the rounding of the input to half */
  kt_check (kt, &op, label, op.out, (guint64) rows * ldo, FALSE, KT_TOL (kt, 0, 1e-6), KT_TOL (kt, 0, 1e-3));
  g_free (label);
  g_free (x);
  g_free (idx);
}

static void
test_mean_rows (KernelTest *kt, guint32 rows, guint32 cols)
{
  float *x = kt_random ((guint64) rows * cols, 4, 2.0f);
  F2Op op = { .kind = F2_OP_MEAN_ROWS, .name = "mean_rows" };
  char *label = g_strdup_printf ("mean_rows %ux%u", rows, cols);

  op.in[0] = kt_float (kt, (guint64) rows * cols, x);
  op.out = kt_float (kt, cols, NULL);
  op.p.mean_rows = (F2MeanRowsParams) { rows, cols, 0 };
  kt_check (kt, &op, label, op.out, cols, FALSE, KT_TOL (kt, 1e-10, 1e-5), KT_TOL (kt, 1e-5, 2e-3));
  g_free (label);
  g_free (x);
}

static void
test_embedding (KernelTest *kt, guint32 n, guint32 dim, guint32 vocab, gboolean with_pos)
{
  float *table = kt_random ((guint64) vocab * dim, 5, 0.1f);
  float *pos = kt_random ((guint64) 64 * dim, 6, 0.1f);
  gint32 *ids = g_new (gint32, n);
  gint32 step = 3;
  F2Op op = { .kind = F2_OP_EMBEDDING, .name = "embedding" };
  char *label = g_strdup_printf ("embedding n=%u dim=%u vocab=%u%s", n, dim, vocab,
      with_pos ? " +pos" : "");

  for (guint32 i = 0; i < n; i++)
    ids[i] = (gint32) ((i * 7919u) % vocab);
  if (n > 2)
    ids[n - 1] = (gint32) vocab + 5;  /* out of range: zeros */
  op.in[0] = kt_i32 (kt, n, ids);
  op.in[1] = kt_float (kt, (guint64) vocab * dim, table);
  if (with_pos) {
    op.in[2] = kt_float (kt, (guint64) 64 * dim, pos);
    op.in[3] = kt_host_i32 (kt, 1, &step);
  }
  op.out = kt_float (kt, (guint64) n * dim, NULL);
  op.p.embedding = (F2EmbeddingParams) { n, dim, vocab, 0, 1.0f, 2 };
  kt_check (kt, &op, label, op.out, (guint64) n * dim, FALSE, KT_TOL (kt, 1e-12, 1e-6),
      KT_TOL (kt, 1e-6, 1e-3));
  g_free (label);
  g_free (table);
  g_free (pos);
  g_free (ids);
}

/* F2_VULKAN_PROFILE_OPS=1: one timed interval per op, named by its kind,
 * in program order (the benchmark's per-op table relies on it). */
static void
test_op_profile (KernelTest *kt)
{
  GError *error = NULL;
  F2Backend *b;
  F2Program *program;
  F2Op add = { .kind = F2_OP_ADD, .name = "add" };
  F2Op copy = { .kind = F2_OP_COPY, .name = "copy" };
  const char *want[] = { "add", "copy" };
  const char *name;
  double ms;
  gboolean ok;

  kt->checks++;
  g_setenv ("F2_PROFILE_OPS", "1", TRUE);
  b = kt_backend_new (kt->precision, &error);
  g_unsetenv ("F2_PROFILE_OPS");
  g_assert_no_error (error);
  add.in[0] = add.in[1] = (F2Ref) { f2_backend_alloc (b, F2_BUFFER_ACTIVATIONS, F2_ELEM_FLOAT, 64, &error), 0 };
  add.out = copy.in[0] = (F2Ref) { f2_backend_alloc (b, F2_BUFFER_ACTIVATIONS, F2_ELEM_FLOAT, 64, &error), 0 };
  copy.out = (F2Ref) { f2_backend_alloc (b, F2_BUFFER_ACTIVATIONS, F2_ELEM_FLOAT, 64, &error), 0 };
  g_assert_no_error (error);
  add.p.add = (F2AddParams) { 64, 0 };
  copy.p.copy = (F2CopyParams) { 1, 64, 0, 0 };
  program = f2_program_new (b, "profile");
  f2_program_mark_stage (program, "one stage");
  f2_program_add (program, &add);
  f2_program_add (program, &copy);
  ok = f2_program_finish (program, &error) && f2_program_run (program, &error);
  g_assert_no_error (error);
  for (guint i = 0; ok && i < 2; i++)
    ok = f2_program_stage_time (program, i, &name, &ms) && g_str_equal (name, want[i]) && ms >= 0;
  /* no interval past the last op */
  ok = ok && !f2_program_stage_time (program, 2, &name, &ms);
  g_print ("%s op profile (one interval per op, named by kind) %s\n", ok ? "ok  " : "FAIL",
      kt->precision_name);
  if (!ok)
    kt->failures++;
  f2_program_free (program);
  f2_backend_free (b);
}

static void
run_all (KernelTest *kt)
{
  test_op_profile (kt);
  test_add (kt, 1, 0);
  test_add (kt, 1000, 0);
  test_add (kt, 577 * 768, 768);
  test_add (kt, 36864 * 32 + 7, 0);
  test_copy (kt, 1, 1, FALSE);
  test_copy (kt, 577, 768, FALSE);
  test_copy (kt, 13, 37, TRUE);
  test_mean_rows (kt, 1, 5);
  test_mean_rows (kt, 576, 768);
  test_mean_rows (kt, 1000, 3);
  test_embedding (kt, 1, 768, 51289, TRUE);
  test_embedding (kt, 17, 64, 1000, FALSE);
  test_embedding (kt, 40, 768, 51289, TRUE);
}

/* --split: copies run with F2_VULKAN_STORAGE_RANGE at 64 KiB, where they
 * need several dispatches: 577 rows in blocks of about 20, and gathers
 * whose source and output each take two bindings or more */
static void
run_split (KernelTest *kt)
{
  test_copy (kt, 577, 768, FALSE);
  test_copy (kt, 300, 100, TRUE);
  test_copy (kt, 1000, 37, TRUE);
}

int
main (int argc, char **argv)
{
  if (argc > 1 && g_str_equal (argv[1], "--split"))
    return kt_main (argc, argv, run_split);
  return kt_main (argc, argv, run_all);
}
