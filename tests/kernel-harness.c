#include "kernel-harness.h"
#include "test-common.h"
#include "vk-device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

gboolean
kt_backend_is_cpu (void)
{
  return g_strcmp0 (g_getenv ("F2_TEST_BACKEND"), "cpu") == 0;
}

F2Backend *
kt_backend_new (F2Precision precision, GError **error)
{
  if (kt_backend_is_cpu ())
    return f2_backend_new_cpu (precision, 0, error);
  return f2_backend_new_vulkan (NULL, precision, error);
}

KernelTest *
kt_new (F2Precision precision)
{
  GError *error = NULL;
  KernelTest *kt = g_new0 (KernelTest, 1);

  kt->precision = precision;
  kt->precision_name = f2_precision_name (precision);
  kt->cpu = f2_backend_new_reference ();
  kt->gpu = kt_backend_new (precision, &error);
  if (kt->gpu == NULL && kt_backend_is_cpu ())
    g_error ("cannot open the cpu backend: %s", error->message);
  if (kt->gpu == NULL) {
    g_printerr ("SKIP: no Vulkan device: %s\n", error->message);
    exit (F2_TEST_SKIP);
  }
  {
    char *about = f2_backend_describe (kt->gpu);
    g_print ("# %s on %s\n", kt->precision_name, about);
    g_free (about);
  }
  return kt;
}

int
kt_finish (KernelTest *kt)
{
  int code = kt->failures ? 1 : 0;
  guint messages = f2_vk_validation_message_count ();

  g_print ("# %s: %u checks, %u failed, %u validation messages\n",
      kt->precision_name, kt->checks, kt->failures, messages);
  if (messages > 0)
    code = 1;
  f2_backend_free (kt->gpu);
  f2_backend_free (kt->cpu);
  g_free (kt);
  return code;
}

static F2Ref
alloc_both (KernelTest *kt, F2BufferKind kind, F2ElemType type, guint64 n,
    const void *data)
{
  GError *error = NULL;
  guint32 a = f2_backend_alloc (kt->cpu, kind, type, n, &error);
  guint32 b = a ? f2_backend_alloc (kt->gpu, kind, type, n, &error) : 0;
  F2Ref ref = { a, 0 };

  if (a == 0 || b == 0)
    g_error ("allocation of %" G_GUINT64_FORMAT " elements failed: %s", n, error->message);
  g_assert_cmpuint (a, ==, b);
  {
    /* NULL data means zeros on both backends (device memory starts undefined) */
    gpointer zeros = data == NULL ? g_malloc0 (n * 4) : NULL;
    if (!f2_backend_write (kt->cpu, ref, data ? data : zeros, n, &error) ||
        !f2_backend_write (kt->gpu, ref, data ? data : zeros, n, &error))
      g_error ("write failed: %s", error->message);
    g_free (zeros);
  }
  return ref;
}

F2Ref
kt_float (KernelTest *kt, guint64 n, const float *data)
{
  return alloc_both (kt, F2_BUFFER_ACTIVATIONS, F2_ELEM_FLOAT, n, data);
}

F2Ref
kt_i32 (KernelTest *kt, guint64 n, const gint32 *data)
{
  return alloc_both (kt, F2_BUFFER_ACTIVATIONS, F2_ELEM_I32, n, data);
}

F2Ref
kt_host_i32 (KernelTest *kt, guint64 n, const gint32 *data)
{
  return alloc_both (kt, F2_BUFFER_HOST, F2_ELEM_I32, n, data);
}

F2Ref
kt_u8 (KernelTest *kt, guint64 n, const guint8 *data)
{
  return alloc_both (kt, F2_BUFFER_ACTIVATIONS, F2_ELEM_U8, n, data);
}

F2Ref
kt_linear (KernelTest *kt, guint32 n, guint32 k, const float *w)
{
  GError *error = NULL;
  guint64 size_cpu = f2_backend_linear_size (kt->cpu, n, k);
  guint64 size_gpu = f2_backend_linear_size (kt->gpu, n, k);
  guint32 a = f2_backend_alloc (kt->cpu, F2_BUFFER_WEIGHTS, F2_ELEM_FLOAT, size_cpu, &error);
  guint32 b = a ? f2_backend_alloc (kt->gpu, F2_BUFFER_WEIGHTS, F2_ELEM_FLOAT, size_gpu, &error) : 0;
  F2Ref ref = { a, 0 };

  if (a == 0 || b == 0)
    g_error ("weight allocation failed: %s", error->message);
  g_assert_cmpuint (a, ==, b);
  if (!f2_backend_upload_linear (kt->cpu, ref, n, k, w, &error) ||
      !f2_backend_upload_linear (kt->gpu, ref, n, k, w, &error))
    g_error ("weight upload failed: %s", error->message);
  return ref;
}

float *
kt_random (guint64 n, guint32 seed, float scale)
{
  GRand *rand = g_rand_new_with_seed (seed);
  float *data = g_new (float, n);

  for (guint64 i = 0; i < n; i++)
    data[i] = (float) g_rand_double_range (rand, -1.0, 1.0) * scale;
  g_rand_free (rand);
  return data;
}

static gboolean
run_on (F2Backend *backend, const F2Op *op, GError **error)
{
  F2Program *program = f2_program_new (backend, op->name ? op->name : "kernel test");
  gboolean ok;

  f2_program_add (program, op);
  ok = f2_program_finish (program, error) && f2_program_run (program, error);
  f2_program_free (program);
  return ok;
}

static gboolean
compare (KernelTest *kt, const char *label, F2Ref out, guint64 n,
    gboolean is_int, double max_nmse, double max_abs)
{
  GError *error = NULL;
  gboolean ok = TRUE;
  gpointer want = g_malloc (n * 4), got = g_malloc (n * 4);

  if (!f2_backend_read (kt->cpu, out, want, n, &error) ||
      !f2_backend_read (kt->gpu, out, got, n, &error))
    g_error ("%s: read failed: %s", label, error->message);

  if (is_int) {
    guint64 mismatches = 0, first = 0;
    for (guint64 i = 0; i < n; i++)
      if (((gint32 *) want)[i] != ((gint32 *) got)[i] && mismatches++ == 0)
        first = i;
    ok = mismatches == 0;
    g_print ("%s %-48s %s: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " ids differ",
        ok ? "ok  " : "FAIL", label, kt->precision_name, mismatches, n);
    if (!ok)
      g_print (" (first at %" G_GUINT64_FORMAT ": want %d got %d)", first,
          ((gint32 *) want)[first], ((gint32 *) got)[first]);
    g_print ("\n");
  } else {
    double err2 = 0, ref2 = 0, worst = 0;
    guint64 worst_at = 0;
    gboolean finite = TRUE;
    for (guint64 i = 0; i < n; i++) {
      double a = ((float *) want)[i], b = ((float *) got)[i];
      double d = a == b ? 0.0 : fabs (a - b);     /* equal infinities agree */
      if (!isfinite (b) && isfinite (a))
        finite = FALSE;
      err2 += d * d;
      ref2 += a * a;
      if (d > worst || isnan (d)) {
        worst = d;
        worst_at = i;
      }
    }
    {
      double nmse = ref2 > 0 ? err2 / ref2 : err2;
      ok = finite && nmse <= max_nmse && worst <= max_abs;
      g_print ("%s %-48s %s: nmse %.3e (tol %.0e) max-abs %.3e (tol %.0e)%s\n",
          ok ? "ok  " : "FAIL", label, kt->precision_name, nmse, max_nmse, worst,
          max_abs, finite ? "" : " non-finite output");
      if (!ok)
        g_print ("     worst at %" G_GUINT64_FORMAT ": want %g got %g\n", worst_at,
            ((float *) want)[worst_at], ((float *) got)[worst_at]);
    }
  }
  g_free (want);
  g_free (got);
  return ok;
}

gboolean
kt_check2 (KernelTest *kt, const F2Op *op, const char *label, F2Ref out,
    guint64 n, gboolean is_int, F2Ref out2, guint64 n2, gboolean is_int2,
    double max_nmse, double max_abs)
{
  GError *error = NULL;
  gboolean ok;

  if (!run_on (kt->cpu, op, &error) || !run_on (kt->gpu, op, &error)) {
    g_print ("FAIL %-48s %s: %s\n", label, kt->precision_name, error->message);
    g_clear_error (&error);
    kt->failures++;
    kt->checks++;
    return FALSE;
  }
  ok = compare (kt, label, out, n, is_int, max_nmse, max_abs);
  if (n2 > 0)
    ok &= compare (kt, label, out2, n2, is_int2, max_nmse, max_abs);
  kt->checks++;
  if (!ok)
    kt->failures++;
  return ok;
}

gboolean
kt_check (KernelTest *kt, const F2Op *op, const char *label, F2Ref out,
    guint64 n, gboolean is_int, double max_nmse, double max_abs)
{
  return kt_check2 (kt, op, label, out, n, is_int, F2_REF_NONE, 0, FALSE,
      max_nmse, max_abs);
}

void
kt_report_time (KernelTest *kt, const F2Op *op, const char *label)
{
  GError *error = NULL;
  F2Program *program = f2_program_new (kt->gpu, "timing");
  double best = -1;

  f2_program_add (program, op);
  if (!f2_program_finish (program, &error) || !f2_program_run (program, &error)) {
    g_print ("FAIL %s timing: %s\n", label, error->message);
    g_clear_error (&error);
    kt->failures++;
    f2_program_free (program);
    return;
  }
  for (int i = 0; i < 3; i++) {
    double ms;
    if (!f2_program_run (program, &error)) {
      g_print ("FAIL %s timing: %s\n", label, error->message);
      g_clear_error (&error);
      kt->failures++;
      break;
    }
    ms = f2_program_last_stats (program)->gpu_ms;
    if (best < 0 || ms < best)
      best = ms;
  }
  g_print ("time %-48s %s: %.3f ms on the device (%.2f GFLOP/s)\n", label,
      kt->precision_name, best, best > 0 ? f2_op_flops (op) / best * 1e-6 : 0.0);
  f2_program_free (program);
}

int
kt_main (int argc, char **argv, KernelTestFunc func)
{
  int code = 0;
  const char *only = g_getenv ("F2_TEST_PRECISION");

  if (only == NULL || g_str_equal (only, "fp32")) {
    KernelTest *kt = kt_new (F2_PRECISION_FP32);
    func (kt);
    code |= kt_finish (kt);
  }
  if (kt_backend_is_cpu () && (only == NULL || g_str_equal (only, "bf16"))) {
    KernelTest *kt = kt_new (F2_PRECISION_BF16);
    func (kt);
    code |= kt_finish (kt);
  }
  if (!kt_backend_is_cpu () && (only == NULL || g_str_equal (only, "fp16"))) {
    KernelTest *kt = kt_new (F2_PRECISION_FP16);
    func (kt);
    code |= kt_finish (kt);
  }
  return code;
}
