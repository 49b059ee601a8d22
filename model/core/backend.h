/* Backends run programs of F2Op (ops.h): the plain-C reference, or Vulkan.
 *
 * Lifetime: buffers are allocated once (weights at load, activations sized
 * for the maximum lengths); programs are built once per shape and run many
 * times. Nothing here allocates while a program runs.
 */
#pragma once

#include "florence2.h"
#include "ops.h"

#include <glib.h>

G_BEGIN_DECLS

/* The public Florence2Precision under the library's internal names */
typedef Florence2Precision F2Precision;
#define F2_PRECISION_FP16 FLORENCE2_PRECISION_FP16
#define F2_PRECISION_FP32 FLORENCE2_PRECISION_FP32
#define F2_PRECISION_BF16 FLORENCE2_PRECISION_BF16
#define F2_PRECISION_AUTO FLORENCE2_PRECISION_AUTO

/* "fp16", "fp32", "bf16", "auto" */
const char *f2_precision_name (F2Precision precision);
/* Parses a precision name (NULL or "" = auto); FALSE with @error for an unknown one. */
gboolean f2_precision_parse (const char *name, F2Precision *precision, GError **error);

typedef enum {
  F2_BUFFER_WEIGHTS,            /* device-local, written once at load */
  F2_BUFFER_ACTIVATIONS,        /* device-local working memory */
  F2_BUFFER_HOST,               /* host-visible: inputs, ids, control values, results */
} F2BufferKind;

typedef struct _F2Backend F2Backend;
typedef struct _F2Program F2Program;

#define F2_BACKEND_ERROR (f2_backend_error_quark ())
GQuark f2_backend_error_quark (void);
typedef enum {
  F2_BACKEND_ERROR_NO_DEVICE,
  F2_BACKEND_ERROR_DEVICE_LOST,
  F2_BACKEND_ERROR_OUT_OF_MEMORY,
  F2_BACKEND_ERROR_UNSUPPORTED,
  F2_BACKEND_ERROR_INVALID,
  F2_BACKEND_ERROR_FAILED,
} F2BackendError;

/* Settings that cannot be used: a value out of its range, or one the
 * chosen device or model cannot run (the fix is in the caller's
 * parameters, not in the device or the model's files). */
#define F2_SETTINGS_ERROR (f2_settings_error_quark ())
GQuark f2_settings_error_quark (void);
typedef enum {
  F2_SETTINGS_ERROR_INVALID,      /* out of range, or unknown */
  F2_SETTINGS_ERROR_UNSUPPORTED,  /* valid, but not on this device or model */
} F2SettingsError;
/* Set an F2_SETTINGS_ERROR_INVALID error from a format; returns FALSE. */
gboolean f2_settings_invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Per-program statistics of the last run. */
typedef struct {
  guint dispatches;
  guint submits;
  double gpu_ms;                /* from timestamp queries; < 0 when unavailable */
  double wall_ms;
} F2RunStats;

/* The plain-C reference backend (always fp32, one thread): the oracle. */
F2Backend *f2_backend_new_reference (void);

/* The CPU backend on oneDNN: fp32 or bf16 (AUTO = fp32); @threads 0 = one
 * per core, at most F2_CPU_MAX_THREADS. */
#define F2_CPU_MAX_THREADS 1024
F2Backend *f2_backend_new_cpu (F2Precision precision, guint threads, GError **error);

/* A Vulkan backend on @device: NULL or "" picks the first (or the
 * F2_VULKAN_DEVICE environment variable), a number is an index, anything else
 * a case-insensitive substring of the device name. AUTO precision = fp16
 * where the device stores it. */
F2Backend *f2_backend_new_vulkan (const char *device, F2Precision precision, GError **error);

/* The backend a device name asks for: "auto" (or NULL, ""): the first
 * Vulkan device that is a real GPU, else the cpu backend (F2_VULKAN_DEVICE,
 * when set, picks a Vulkan device instead); "cpu": oneDNN; "reference": the
 * plain-C oracle; anything else a Vulkan device by index or name. */
F2Backend *f2_backend_open (const char *device, F2Precision precision,
    guint threads, GError **error);

void f2_backend_free (F2Backend *backend);

const char *f2_backend_name (F2Backend *backend);      /* "cpu", "reference" or the Vulkan device name */
/* "cpu", "reference" or "vulkan" */
const char *f2_backend_kind (F2Backend *backend);
/* Whether a batch's images go through the vision tower and the encoder
 * together on this backend (else one at a time) */
gboolean f2_backend_batches_images (F2Backend *backend);
F2Precision f2_backend_precision (F2Backend *backend);
/* One line about the device and its features; g_free() it. */
char *f2_backend_describe (F2Backend *backend);

/* Allocate a buffer of @n_elements (bytes for F2_ELEM_U8). Returns a buffer
 * id > 0, or 0 with @error set. */
guint32 f2_backend_alloc (F2Backend *backend, F2BufferKind kind, F2ElemType type,
    guint64 n_elements, GError **error);

/* Bytes held in each kind of buffer (for reports and leak checks). */
guint64 f2_backend_allocated_bytes (F2Backend *backend, F2BufferKind kind);
/* The most programs that were running at once since the backend opened
 * (several streams' contexts run theirs concurrently). */
guint f2_backend_peak_runs (F2Backend *backend);

/* Copy host data in or out. For F2_ELEM_FLOAT buffers the host side is
 * always float (converted to or from fp16 storage as needed); I32 buffers
 * take gint32, U8 buffers bytes. */
gboolean f2_backend_write (F2Backend *backend, F2Ref dst, const void *src,
    guint64 n_elements, GError **error);
gboolean f2_backend_read (F2Backend *backend, F2Ref src, void *dst,
    guint64 n_elements, GError **error);

/* Upload a linear weight given as [n][k] floats into @dst (which must have
 * room for f2_backend_linear_size (n, k) elements), in the layout the
 * backend's matmul kernels read. */
gboolean f2_backend_upload_linear (F2Backend *backend, F2Ref dst, guint32 n,
    guint32 k, const float *w, GError **error);
guint64 f2_backend_linear_size (F2Backend *backend, guint32 n, guint32 k);

/* Programs. Ops are validated when added (refs inside their buffers); the
 * first error is kept and reported by f2_program_finish(). */
F2Program *f2_program_new (F2Backend *backend, const char *name);
void f2_program_add (F2Program *program, const F2Op *op);
/* Mark the end of a profiling stage (named by the ops that follow it). */
void f2_program_mark_stage (F2Program *program, const char *stage);
gboolean f2_program_finish (F2Program *program, GError **error);
gboolean f2_program_run (F2Program *program, GError **error);
/* Floating-point operations of one run (sum of f2_op_flops) */
double f2_program_flops (F2Program *program);
const F2RunStats *f2_program_last_stats (F2Program *program);
/* Device time of stage @index (see f2_program_mark_stage) in the last run;
 * FALSE past the last stage or where the backend has no timer. */
gboolean f2_program_stage_time (F2Program *program, guint index,
    const char **name, double *ms);
void f2_program_free (F2Program *program);

G_END_DECLS
