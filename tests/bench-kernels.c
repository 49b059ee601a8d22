/* Kernel benchmark: the matmul family on the Florence-2-base shapes, on the
 * cpu backend (oneDNN, fp32 and bf16) and on a Vulkan device (fp32 and
 * fp16), next to OpenBLAS (cblas_sgemm / cblas_sgemv) on the same shapes in
 * the same run, plus the cost of one op in a program and of one run. It
 * prints; it never fails on speed.
 *
 *   bench-kernels [--device NAME] [--backends cpu,vulkan] [--min-time SECONDS] [--quick]
 */
#include "backend.h"
#include "vk-device.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* matmuls of at most this many rows are timed as a decoder step's */
#define DECODER_ROWS 16

static double min_time = 0.5;
static gboolean quick = FALSE;
static char *only_shape = NULL;
static char *only_variant = NULL;

/* Best of the timed runs. cpu_ms is the processor time of the whole
 * process (all its threads): on a CPU driver it is the work done, whatever
 * else the machine runs at the same time. */
typedef struct {
  double wall_ms, gpu_ms, cpu_ms;
} Timing;

static float *
random_data (guint64 n, guint32 seed, float scale)
{
  GRand *rand = g_rand_new_with_seed (seed);
  float *data = g_new (float, n);

  for (guint64 i = 0; i < n; i++)
    data[i] = (float) g_rand_double_range (rand, -1.0, 1.0) * scale;
  g_rand_free (rand);
  return data;
}

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

static double
cpu_ms (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
      (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

/* Warm up, then run until min_time has passed (at least 3 runs) and keep
 * the best wall and device times. */
static gboolean
time_program (F2Program *program, Timing *t, GError **error)
{
  double start;
  guint runs = 0;

  t->wall_ms = t->gpu_ms = t->cpu_ms = INFINITY;
  if (!f2_program_run (program, error))
    return FALSE;
  start = now_ms ();
  while (runs < 3 || (now_ms () - start < min_time * 1000 && runs < 1000)) {
    const F2RunStats *stats;
    double t0 = now_ms (), c0 = cpu_ms ();
    if (!f2_program_run (program, error))
      return FALSE;
    t->wall_ms = MIN (t->wall_ms, now_ms () - t0);
    t->cpu_ms = MIN (t->cpu_ms, cpu_ms () - c0);
    stats = f2_program_last_stats (program);
    if (stats->gpu_ms > 0)
      t->gpu_ms = MIN (t->gpu_ms, stats->gpu_ms);
    runs++;
  }
  if (!isfinite (t->gpu_ms))
    t->gpu_ms = -1;
  return TRUE;
}

static guint32
alloc_write (F2Backend *b, F2BufferKind kind, guint64 n, const float *data,
    GError **error)
{
  guint32 id = f2_backend_alloc (b, kind, F2_ELEM_FLOAT, n, error);
  F2Ref ref = { id, 0 };

  if (id != 0 && data != NULL && !f2_backend_write (b, ref, data, n, error))
    return 0;
  return id;
}

/* One op in a program of its own, timed. */
static gboolean
time_op (F2Backend *b, const F2Op *op, Timing *t, GError **error)
{
  F2Program *program = f2_program_new (b, op->name);
  gboolean ok;

  f2_program_add (program, op);
  ok = f2_program_finish (program, error) && time_program (program, t, error);
  f2_program_free (program);
  return ok;
}

/* OpenBLAS on the same product: out[m][n] = a[m][:] . w[n][:] */
static void
time_blas (guint32 m, guint32 n, guint32 k, const float *a, const float *w, float *out,
    Timing *t)
{
  double start = now_ms ();
  guint runs = 0;

  for (int warm = 0; warm < 1; warm++)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, w, k,
        0.0f, out, n);
  t->wall_ms = t->cpu_ms = INFINITY;
  t->gpu_ms = -1;
  while (runs < 3 || (now_ms () - start < min_time * 1000 && runs < 1000)) {
    double t0 = now_ms (), c0 = cpu_ms ();
    if (m == 1)
      cblas_sgemv (CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, a, 1, 0.0f, out, 1);
    else
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, w, k,
          0.0f, out, n);
    t->wall_ms = MIN (t->wall_ms, now_ms () - t0);
    t->cpu_ms = MIN (t->cpu_ms, cpu_ms () - c0);
    runs++;
  }
}

static void
print_header (void)
{
  g_print ("%-6s %-20s %-4s %-10s %9s %9s %9s %7s %6s %9s %9s %7s %7s\n", "kernel",
      "shape (MxKxN)", "prec", "path", "wall ms", "gpu ms", "cpu ms", "GFLOP/s", "GB/s",
      "BLAS ms", "BLAS GF/s", "ratio", "cpu-rat");
}

/* GFLOP/s and GB/s from the wall time; ratio: our GFLOP/s over OpenBLAS's
 * (wall times of the same run); cpu-rat: the same from processor times,
 * which other load on the machine does not skew. */
static void
print_row (const char *kernel, const char *shape, const char *prec, const char *variant,
    const Timing *t, double flops, double bytes, const Timing *blas)
{
  g_print ("%-6s %-20s %-4s %-10s %9.2f %9.2f %9.2f %7.2f %6.2f %9.2f %9.2f %7.3f %7.3f\n",
      kernel, shape, prec, variant, t->wall_ms, t->gpu_ms, t->cpu_ms,
      flops / (t->wall_ms * 1e6), bytes / (t->wall_ms * 1e6), blas->wall_ms,
      flops / (blas->wall_ms * 1e6), blas->wall_ms / t->wall_ms, blas->cpu_ms / t->cpu_ms);
}

static const struct {
  F2Variant variant;
  const char *name;
} variants[] = {
  { F2_VARIANT_AUTO, "auto" },
  { F2_VARIANT_REGISTER_BLOCKED, "rb" },
  { F2_VARIANT_SHARED_TILED, "tiled" },
  { F2_VARIANT_COOPMAT, "coopmat" },
};

static gboolean
is_cpu (F2Backend *b)
{
  return g_str_equal (f2_backend_kind (b), "cpu");
}

/* Whether variant @v runs as itself here: cooperative matrices only for
 * fp16 matmuls on devices that have them (elsewhere the backend would
 * quietly take the tiled kernel) */
static gboolean
variant_runs (F2Backend *b, guint v, gboolean conv)
{
  if (variants[v].variant != F2_VARIANT_COOPMAT)
    return TRUE;
  return !conv && f2_backend_precision (b) == F2_PRECISION_FP16
      && f2_vk_backend_has_coopmat (b);
}

static gboolean
bench_matmul (F2Backend *b, const char *prec, guint32 m, guint32 k, guint32 n,
    GError **error)
{
  float *a = random_data ((guint64) m * k, 1, 1.0f);
  float *w = random_data ((guint64) n * k, 2, 0.05f);
  float *bias = random_data (n, 3, 0.5f);
  float *blas_out = g_new (float, (guint64) m * n);
  double flops = 2.0 * m * n * k;
  guint elem = f2_backend_precision (b) == F2_PRECISION_FP32 ? 4 : 2;
  double bytes = ((double) m * k + (double) n * k + (double) m * n) * elem;
  Timing blas;
  char *shape = g_strdup_printf ("%ux%ux%u", m, k, n);
  guint64 wsize = f2_backend_linear_size (b, n, k);
  F2Op op = { .kind = F2_OP_MATMUL, .name = "matmul" };
  gboolean ok = TRUE;

  time_blas (m, n, k, a, w, blas_out, &blas);
  op.in[0].buffer = alloc_write (b, F2_BUFFER_ACTIVATIONS, (guint64) m * k, a, error);
  op.in[1].buffer = f2_backend_alloc (b, F2_BUFFER_WEIGHTS, F2_ELEM_FLOAT, wsize, error);
  op.in[2].buffer = alloc_write (b, F2_BUFFER_WEIGHTS, n, bias, error);
  op.out.buffer = alloc_write (b, F2_BUFFER_ACTIVATIONS, (guint64) m * n, NULL, error);
  ok = op.in[0].buffer && op.in[1].buffer && op.in[2].buffer && op.out.buffer &&
      f2_backend_upload_linear (b, op.in[1], n, k, w, error);
  /* up to DECODER_ROWS rows are a decoder step's (beams and frames of a
   * batch): the few-rows kernels, the CPU drivers' ("rb") and the GPUs'
   * (split k, "tiled" and the others); the cpu backend has one kernel,
   * oneDNN's */
  op.p.matmul = (F2MatmulParams) { m, n, k, 0, 0, 0,
    F2_EPI_BIAS | (m <= DECODER_ROWS ? F2_MATMUL_SEQUENCE_ROWS : 0) };
  for (guint v = 0; ok && v < (is_cpu (b) ? 1 : G_N_ELEMENTS (variants)); v++) {
    gboolean few = m <= DECODER_ROWS && !is_cpu (b);
    Timing t;
    if (only_variant != NULL && !is_cpu (b) && !g_str_equal (only_variant, variants[v].name))
      continue;
    if (!is_cpu (b) && !few && !variant_runs (b, v, FALSE))
      continue;
    /* few rows: one kernel for the GPU variants, the other for rb */
    if (few && variants[v].variant != F2_VARIANT_REGISTER_BLOCKED
        && variants[v].variant != F2_VARIANT_SHARED_TILED)
      continue;
    op.variant = variants[v].variant;
    ok = time_op (b, &op, &t, error);
    if (ok)
      print_row ("matmul", shape, prec, is_cpu (b) ? "onednn" : !few ? variants[v].name :
          variants[v].variant == F2_VARIANT_REGISTER_BLOCKED ? "rows-rb" : "rows-split",
          &t, flops, bytes, &blas);
  }
  g_free (shape);
  g_free (a);
  g_free (w);
  g_free (bias);
  g_free (blas_out);
  return ok;
}

static gboolean
bench_conv (F2Backend *b, const char *prec, GError **error)
{
  const guint32 cin = 3, h = 768, wd = 768, cout = 128, kernel = 7, stride = 4, pad = 3;
  guint32 ho = (h + 2 * pad - kernel) / stride + 1, wo = (wd + 2 * pad - kernel) / stride + 1;
  guint32 k = cin * kernel * kernel;
  float *x = random_data ((guint64) cin * h * wd, 4, 1.0f);
  float *w = random_data ((guint64) cout * k, 5, 0.1f);
  float *bias = random_data (cout, 6, 0.5f);
  float *im2col = g_new (float, (guint64) ho * wo * k);
  float *blas_out = g_new (float, (guint64) ho * wo * cout);
  double flops = 2.0 * ho * wo * cout * k;
  Timing blas;
  guint elem = f2_backend_precision (b) == F2_PRECISION_FP32 ? 4 : 2;
  double bytes = ((double) cin * h * wd + (double) cout * k + (double) ho * wo * cout) * elem;
  F2Op op = { .kind = F2_OP_CONV2D, .name = "conv2d" };
  gboolean ok;

  /* the BLAS baseline is the GEMM of the unfolded image (unfolding not timed) */
  for (guint32 oy = 0; oy < ho; oy++)
    for (guint32 ox = 0; ox < wo; ox++)
      for (guint32 kk = 0; kk < k; kk++) {
        guint32 ci = kk / (kernel * kernel), ky = kk / kernel % kernel, kx = kk % kernel;
        gint64 iy = (gint64) oy * stride + ky - pad, ix = (gint64) ox * stride + kx - pad;
        im2col[((guint64) oy * wo + ox) * k + kk] = iy < 0 || ix < 0 || iy >= h || ix >= wd
            ? 0.0f : x[((guint64) ci * h + iy) * wd + ix];
      }
  time_blas (ho * wo, cout, k, im2col, w, blas_out, &blas);

  op.in[0].buffer = alloc_write (b, F2_BUFFER_ACTIVATIONS, (guint64) cin * h * wd, x, error);
  op.in[1].buffer = f2_backend_alloc (b, F2_BUFFER_WEIGHTS, F2_ELEM_FLOAT,
      f2_backend_linear_size (b, cout, k), error);
  op.in[2].buffer = alloc_write (b, F2_BUFFER_WEIGHTS, cout, bias, error);
  op.out.buffer = alloc_write (b, F2_BUFFER_ACTIVATIONS, (guint64) ho * wo * cout, NULL, error);
  ok = op.in[0].buffer && op.in[1].buffer && op.in[2].buffer && op.out.buffer &&
      f2_backend_upload_linear (b, op.in[1], cout, k, w, error);
  op.p.conv2d = (F2Conv2dParams) { cin, h, wd, cout, kernel, stride, pad, F2_LAYOUT_CHW,
    F2_EPI_BIAS };
  for (guint v = 0; ok && v < (is_cpu (b) ? 1 : G_N_ELEMENTS (variants)); v++) {
    Timing t;
    if (only_variant != NULL && !is_cpu (b) && !g_str_equal (only_variant, variants[v].name))
      continue;
    if (!is_cpu (b) && !variant_runs (b, v, TRUE))
      continue;
    op.variant = variants[v].variant;
    ok = time_op (b, &op, &t, error);
    if (ok)
      print_row ("conv2d", "3x768x768 k7/4->128", prec, is_cpu (b) ? "onednn" :
          variants[v].name, &t, flops, bytes, &blas);
  }
  g_free (x);
  g_free (w);
  g_free (bias);
  g_free (im2col);
  g_free (blas_out);
  return ok;
}

/* A program of @n tiny adds, each reading the previous one's output (so a
 * barrier separates every pair, as in the model) */
static gboolean
time_adds (F2Backend *b, guint n, Timing *t, GError **error)
{
  F2Program *program = f2_program_new (b, "adds");
  guint32 x0 = alloc_write (b, F2_BUFFER_ACTIVATIONS, 64, NULL, error);
  guint32 x1 = alloc_write (b, F2_BUFFER_ACTIVATIONS, 64, NULL, error);
  guint32 c = alloc_write (b, F2_BUFFER_ACTIVATIONS, 64, NULL, error);
  gboolean ok;

  for (guint i = 0; i < n; i++) {
    F2Op op = { .kind = F2_OP_ADD, .name = "add" };
    op.in[0].buffer = i % 2 ? x1 : x0;
    op.in[1].buffer = c;
    op.out.buffer = i % 2 ? x0 : x1;
    op.p.add = (F2AddParams) { 64, 0 };
    f2_program_add (program, &op);
  }
  ok = x0 && x1 && c && f2_program_finish (program, error) && time_program (program, t, error);
  f2_program_free (program);
  return ok;
}

static gboolean
bench_overhead (F2Backend *b, const char *prec, GError **error)
{
  Timing one, many;

  if (!time_adds (b, 1, &one, error) || !time_adds (b, 200, &many, error))
    return FALSE;
  g_print ("%s: one run (a program of one tiny add, submit + wait on Vulkan): %.1f us wall\n",
      prec, one.wall_ms * 1000);
  g_print ("%s: per op in a program (200 dependent tiny adds; a dispatch in a replayed "
      "command buffer on Vulkan): %.2f us wall, %.2f us device\n", prec,
      (many.wall_ms - one.wall_ms) * 1000 / 199,
      many.gpu_ms > 0 && one.gpu_ms > 0 ? (many.gpu_ms - one.gpu_ms) * 1000 / 199 : -1.0);
  return TRUE;
}

int
main (int argc, char **argv)
{
  char *device = NULL;
  char *backends = NULL;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Vulkan device (index or name)", "NAME" },
    { "backends", 'b', 0, G_OPTION_ARG_STRING, &backends, "Which backends: cpu,vulkan (default both)", "LIST" },
    { "min-time", 't', 0, G_OPTION_ARG_DOUBLE, &min_time, "Seconds to time each case (default 0.5)", "S" },
    { "quick", 'q', 0, G_OPTION_ARG_NONE, &quick, "fp32 only, fewer shapes", NULL },
    { "shape", 's', 0, G_OPTION_ARG_STRING, &only_shape, "Only this matmul (MxKxN)", "SHAPE" },
    { "variant", 'v', 0, G_OPTION_ARG_STRING, &only_variant, "Only this variant (auto, rb, tiled, coopmat)", "NAME" },
    { NULL }
  };
  static const guint32 shapes[][3] = {  /* M, K, N */
    { 577, 768, 768 },
    { 577, 768, 3072 },
    { 577, 3072, 768 },
    { 2304, 512, 1536 },
    { 9216, 128, 384 },
    { 1, 768, 51289 },
    { 3, 768, 51289 },
    /* a decoder step's layers for 1 and 4 sequences (batches) */
    { 1, 768, 3072 },
    { 4, 768, 3072 },
    { 1, 3072, 768 },
    { 4, 3072, 768 },
    { 1, 768, 768 },
    { 4, 768, 768 },
    { 4, 768, 51289 },
    /* a batch of 4 frames with 3 beams */
    { 12, 768, 3072 },
    { 12, 768, 51289 },
  };
  GOptionContext *context = g_option_context_new ("- matmul kernel benchmark");
  GError *error = NULL;
  int code = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    g_option_context_free (context);
    g_error_free (error);
    return 2;
  }
  g_option_context_free (context);
  g_print ("OpenBLAS %s, %d threads\n", openblas_get_config (), openblas_get_num_threads ());

  for (int p = 0; p < 4 && code == 0; p++) {
    /* cpu fp32, cpu bf16, Vulkan fp32, Vulkan fp16 (--quick: the fp32 ones) */
    gboolean cpu = p < 2;
    F2Precision precision = p == 1 ? F2_PRECISION_BF16 : p == 3 ? F2_PRECISION_FP16 :
        F2_PRECISION_FP32;
    const char *prec = f2_precision_name (precision);
    F2Backend *b;
    char *about;

    if ((quick && precision != F2_PRECISION_FP32) ||
        (backends != NULL && strstr (backends, cpu ? "cpu" : "vulkan") == NULL))
      continue;
    b = cpu ? f2_backend_new_cpu (precision, 0, &error) :
        f2_backend_new_vulkan (device, precision, &error);
    if (b == NULL) {
      g_printerr ("no %s backend in %s: %s\n", cpu ? "cpu" : "Vulkan", prec, error->message);
      g_clear_error (&error);
      continue;
    }
    about = f2_backend_describe (b);
    g_print ("\n%s on %s\n", prec, about);
    g_free (about);
    print_header ();
    for (guint i = 0; i < G_N_ELEMENTS (shapes) && code == 0; i++) {
      char *name = g_strdup_printf ("%ux%ux%u", shapes[i][0], shapes[i][1], shapes[i][2]);
      gboolean skip = (quick && i != 1 && i != 5) ||
          (only_shape != NULL && !g_str_equal (only_shape, name));
      g_free (name);
      if (skip)
        continue;
      if (!bench_matmul (b, prec, shapes[i][0], shapes[i][1], shapes[i][2], &error))
        code = 1;
    }
    if (code == 0 && only_shape == NULL && !bench_conv (b, prec, &error))
      code = 1;
    if (code == 0 && only_shape == NULL && !bench_overhead (b, prec, &error))
      code = 1;
    if (code != 0) {
      g_printerr ("benchmark failed: %s\n", error->message);
      g_clear_error (&error);
    }
    f2_backend_free (b);
  }
  g_free (only_shape);
  g_free (only_variant);
  g_free (device);
  g_free (backends);
  return code;
}
