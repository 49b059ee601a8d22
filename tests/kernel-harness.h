/* Kernel tests: one op run on the plain-C reference and on the backend under
 * test with the same inputs, compared by normalised MSE and max-abs error.
 * The backend under test is Vulkan (fp32 and fp16), or the cpu backend
 * (fp32 and bf16) with F2_TEST_BACKEND=cpu.
 *
 * Buffers are allocated in the same order on both backends, so a buffer id
 * names the same tensor on each and one F2Op describes both runs. */
#pragma once

#include "backend.h"

#include <glib.h>

typedef struct {
  F2Backend *cpu;
  F2Backend *gpu;
  F2Precision precision;
  const char *precision_name;
  guint failures;
  guint checks;
} KernelTest;

/* TRUE when F2_TEST_BACKEND=cpu: the cpu backend is under test */
gboolean kt_backend_is_cpu (void);
/* A new backend of the kind under test */
F2Backend *kt_backend_new (F2Precision precision, GError **error);

/* Opens the backend under test at @precision: the cpu backend, or lavapipe
 * (or F2_VULKAN_DEVICE), exiting 77 when no Vulkan device exists. */
KernelTest *kt_new (F2Precision precision);
/* Prints a summary, checks that the validation layer said nothing, frees;
 * returns the process exit code. */
int kt_finish (KernelTest *kt);

/* Buffers holding the same data on both backends. NULL data = zeros. */
F2Ref kt_float (KernelTest *kt, guint64 n, const float *data);
F2Ref kt_i32 (KernelTest *kt, guint64 n, const gint32 *data);
F2Ref kt_u8 (KernelTest *kt, guint64 n, const guint8 *data);
/* Linear weight [n][k], uploaded in each backend's layout */
F2Ref kt_linear (KernelTest *kt, guint32 n, guint32 k, const float *w);
/* Host buffer for per-step control values */
F2Ref kt_host_i32 (KernelTest *kt, guint64 n, const gint32 *data);

/* Deterministic test data */
float *kt_random (guint64 n, guint32 seed, float scale);

/* Run @op on both backends; compare @n elements at @out (floats, or I32 when
 * @is_int: exact). Tolerances: normalised MSE (mse / mean square of the
 * reference) and max-abs error. Records a failure and prints a line. */
gboolean kt_check (KernelTest *kt, const F2Op *op, const char *label,
    F2Ref out, guint64 n, gboolean is_int, double max_nmse, double max_abs);

/* Same, for ops with two outputs: runs once, compares both */
gboolean kt_check2 (KernelTest *kt, const F2Op *op, const char *label,
    F2Ref out, guint64 n, gboolean is_int, F2Ref out2, guint64 n2,
    gboolean is_int2, double max_nmse, double max_abs);

/* Tolerance for fp16 storage relative to fp32: (fp32 value, fp16 value).
 * bf16 on the cpu backend rounds only the inputs of matmuls and
 * convolutions, so every other op is held to the fp32 value. */
#define KT_TOL(kt, fp32, fp16) ((kt)->precision == F2_PRECISION_FP16 ? (fp16) : (fp32))
/* For matmuls and convolutions: bf16 inputs carry 8 significant bits */
#define KT_TOL_MM(kt, fp32, fp16, bf16) \
  ((kt)->precision == F2_PRECISION_BF16 ? (bf16) : KT_TOL (kt, fp32, fp16))

/* Print the device time of @op alone (one warm-up run, then the best of
 * three) and its GFLOP/s; a failure to run counts as a failed check. */
void kt_report_time (KernelTest *kt, const F2Op *op, const char *label);

/* Run every test function for fp32 and fp16: the usual main() */
typedef void (*KernelTestFunc) (KernelTest *kt);
int kt_main (int argc, char **argv, KernelTestFunc func);
