/* What a backend implements. backend.c validates arguments and dispatches. */
#pragma once

#include "backend.h"

G_BEGIN_DECLS

typedef struct {
  const char *kind;             /* "cpu", "vulkan" */
  /* A batch's images go through the vision tower and the encoder together
   * (bigger matmuls pay on this device), not one at a time */
  gboolean batch_images;
  void (*free) (F2Backend *self);
  guint32 (*alloc) (F2Backend *self, F2BufferKind kind, F2ElemType type,
      guint64 n_elements, GError **error);
  gboolean (*write) (F2Backend *self, F2Ref dst, const void *src, guint64 n, GError **error);
  gboolean (*read) (F2Backend *self, F2Ref src, void *dst, guint64 n, GError **error);
  gboolean (*upload_linear) (F2Backend *self, F2Ref dst, guint32 n, guint32 k,
      const float *w, GError **error);
  guint64 (*linear_size) (F2Backend *self, guint32 n, guint32 k);
  /* Turn program->ops into something runnable (e.g. a command buffer). */
  gboolean (*program_finish) (F2Backend *self, F2Program *program, GError **error);
  gboolean (*program_run) (F2Backend *self, F2Program *program, GError **error);
  void (*program_free) (F2Backend *self, F2Program *program);
  /* optional: per-stage device time of the last run */
  gboolean (*program_stage_time) (F2Backend *self, F2Program *program,
      guint index, const char **name, double *ms);
  /* optional: one line about the device */
  char *(*describe) (F2Backend *self);
} F2BackendClass;


typedef struct {
  F2BufferKind kind;
  F2ElemType type;
  guint64 n_elements;
} F2BufferInfo;

/* Buffer infos live in chunks that never move, so that a running program
 * may look one up while another thread allocates. */
#define F2_BUFFER_CHUNK 1024
#define F2_BUFFER_CHUNKS 1024

/* Threads: backend.c holds @lock around everything that changes the
 * backend (allocation, uploads, finishing and freeing programs) and around
 * reads and writes of buffers; programs of different streams run at the
 * same time without it, so whatever a backend shares between runs
 * (queues, working memory) it guards itself, or it sets serial_runs. */
struct _F2Backend {
  const F2BackendClass *klass;
  char *name;
  F2Precision precision;
  GMutex lock;
  gboolean serial_runs;         /* programs run one at a time, under @lock */
  F2BufferInfo *buffer_chunks[F2_BUFFER_CHUNKS];
  guint32 n_buffers;
  guint64 allocated[3];         /* bytes per F2BufferKind */
  gint runs_now, runs_peak;     /* programs running, and the most at once */
};

typedef struct {
  guint first_op;
  const char *name;
} F2Stage;

struct _F2Program {
  F2Backend *backend;
  char *name;
  GArray *ops;                  /* F2Op */
  GArray *stages;               /* F2Stage */
  GError *error;                /* first validation error */
  gboolean finished;
  F2RunStats stats;
  gpointer priv;                /* the backend's data */
};

/* For backends: set up the common part (backend-base.c). */
void f2_backend_init_base (F2Backend *self, const F2BackendClass *klass,
    const char *name, F2Precision precision);
/* Free what f2_backend_init_base() set up (before the backend's own free). */
void f2_backend_clear_base (F2Backend *self);
/* Record a new buffer in the table; returns its id, or 0 when the table is
 * full. Called under the backend's lock (from its alloc). */
guint32 f2_backend_register_buffer (F2Backend *self, F2BufferKind kind,
    F2ElemType type, guint64 n_elements, guint64 bytes);
const F2BufferInfo *f2_backend_buffer_info (F2Backend *self, guint32 id);

/* Element size in bytes of a buffer type on a backend of @precision. */
guint f2_elem_size (F2ElemType type, F2Precision precision);

G_END_DECLS

G_BEGIN_DECLS
/* Set an F2_BACKEND_ERROR_INVALID error from a format; returns FALSE
 * (errors.c). */
gboolean f2_backend_invalid (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Check that every ref of @op is set where required and lies inside its
 * buffer, with the right element type (ops.c). */
gboolean f2_op_check (const F2Op *op, F2Backend *backend, GError **error);

/* Checks of values only known while a program runs, for backends that read
 * them on the host: the first position row of an EMBEDDING (pos_offset plus
 * @dynamic, the value at pos_ref, or -1 when there is none) must keep its
 * rows inside the position table; a COPY's row index (NULL: none) must
 * name rows inside the input. */
gboolean f2_op_check_embedding_base (const F2Op *op, F2Backend *backend,
    gint32 dynamic, guint64 *base, GError **error);
gboolean f2_op_check_copy_rows (const F2Op *op, F2Backend *backend,
    const gint32 *index, GError **error);
G_END_DECLS
