/* The CPU backend: host memory, and programs run with the kernel of each
 * op kind from the table of cpu-ops.c (oneDNN matmuls, threaded C).
 *
 * A program is turned into steps when it is finished: tensor addresses
 * resolved, each kernel prepared (oneDNN primitives created, working memory
 * sized). Running it walks the steps; it allocates nothing. */
#include "cpu-ops.h"

#include <omp.h>
#include <string.h>

#define ALIGN64(x) (((x) + 63) & ~(gsize) 63)

typedef struct {
  GArray *steps;                /* F2CpuStep */
  GArray *stage_ms;             /* double per stage, or per op when profiling */
  GPtrArray *stage_names;       /* const char * */
} CpuProgram;

static void
cpu_free (F2Backend *backend)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;

  g_clear_pointer (&self->data, g_ptr_array_unref);
  g_clear_pointer (&self->linears, g_hash_table_unref);
  g_clear_pointer (&self->idle_runs, g_ptr_array_unref);
  if (self->stream != NULL)
    dnnl_stream_destroy (self->stream);
  if (self->engine != NULL)
    dnnl_engine_destroy (self->engine);
  g_free (self);
}

static guint32
cpu_alloc (F2Backend *backend, F2BufferKind kind, F2ElemType type,
    guint64 n_elements, GError **error)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  guint size = f2_elem_size (type, F2_PRECISION_FP32);
  gpointer data = NULL;

  if (size == 0)
    return f2_backend_invalid (error, "unknown element type %d", type);
  /* one element more, so that an empty buffer still has an address */
  if (n_elements < G_MAXSIZE / size - 64)
    data = f2_cpu_alloc0 ((n_elements + 1) * size);
  if (data == NULL) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_OUT_OF_MEMORY,
        "cannot allocate %" G_GUINT64_FORMAT " bytes of host memory; free "
        "memory or use a smaller model", n_elements * size);
    return 0;
  }
  g_ptr_array_add (self->data, data);
  return f2_backend_register_buffer (backend, kind, type, n_elements,
      n_elements * size);
}

static gboolean
cpu_write (F2Backend *backend, F2Ref dst, const void *src, guint64 n,
    GError **error)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  const F2BufferInfo *info = f2_backend_buffer_info (backend, dst.buffer);

  memcpy (f2_cpu_ptr (self, dst), src, n * f2_elem_size (info->type, F2_PRECISION_FP32));
  return TRUE;
}

static gboolean
cpu_read (F2Backend *backend, F2Ref src, void *dst, guint64 n, GError **error)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  const F2BufferInfo *info = f2_backend_buffer_info (backend, src.buffer);

  memcpy (dst, f2_cpu_ptr (self, src), n * f2_elem_size (info->type, F2_PRECISION_FP32));
  return TRUE;
}

/* Linear weights are stored in oneDNN's packed layout, as floats' worth of
 * bytes (bf16 packs two per float). */
static guint64
cpu_linear_size (F2Backend *backend, guint32 n, guint32 k)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  dnnl_memory_desc_t md;

  if (!f2_cpu_linear_layout (self, n, k, &md, NULL))
    return (guint64) n * k;     /* upload_linear will report the error */
  return (dnnl_memory_desc_get_size (&md) + 3) / 4;
}

static gboolean
cpu_upload_linear (F2Backend *backend, F2Ref dst, guint32 n, guint32 k,
    const float *w, GError **error)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  const F2BufferInfo *info = f2_backend_buffer_info (backend, dst.buffer);
  F2CpuLinear *linear;
  guint64 *key;

  if (info->type != F2_ELEM_FLOAT)
    return f2_backend_invalid (error, "linear weights need a float buffer; "
        "buffer %u is not one", dst.buffer);
  linear = g_new0 (F2CpuLinear, 1);
  linear->n = n;
  linear->k = k;
  omp_set_num_threads (self->threads);
  if (!f2_cpu_pack_linear (self, f2_cpu_ptr (self, dst), n, k, w, &linear->md, error)) {
    g_free (linear);
    return FALSE;
  }
  key = g_new (guint64, 1);
  *key = f2_cpu_ref_key (dst);
  g_hash_table_replace (self->linears, key, linear);
  return TRUE;
}

/* ---------------------------------------------------------------- programs */

static void
program_clear (CpuProgram *prog)
{
  for (guint i = 0; i < prog->steps->len; i++)
    f2_cpu_step_clear (&g_array_index (prog->steps, F2CpuStep, i));
  g_array_unref (prog->steps);
  g_array_unref (prog->stage_ms);
  g_ptr_array_unref (prog->stage_names);
  g_free (prog);
}

static void
cpu_program_free (F2Backend *backend, F2Program *program)
{
  if (program->priv != NULL)
    program_clear (program->priv);
  program->priv = NULL;
}

static void
run_free (F2CpuRun *run)
{
  f2_cpu_free (run->scratch);
  if (run->stream != NULL)
    dnnl_stream_destroy (run->stream);
  g_free (run);
}

/* An idle run slot with room for the largest program; a new one when every
 * slot is in use (more programs running at once than ever before). */
static F2CpuRun *
run_take (F2CpuBackend *self, GError **error)
{
  F2CpuRun *run = NULL;
  gsize need;
  guint8 *grown = NULL;

  g_mutex_lock (&self->base.lock);
  if (self->idle_runs->len > 0)
    run = g_ptr_array_steal_index_fast (self->idle_runs, self->idle_runs->len - 1);
  need = self->scratch_need;
  g_mutex_unlock (&self->base.lock);
  if (run == NULL) {
    run = g_new0 (F2CpuRun, 1);
    if (!f2_cpu_dnnl_check (dnnl_stream_create (&run->stream, self->engine,
                dnnl_stream_default_flags), "creating a CPU stream", error)) {
      run_free (run);
      return NULL;
    }
  }
  if (run->size >= need)
    return run;
  grown = f2_cpu_alloc0 (need);
  if (grown == NULL) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_OUT_OF_MEMORY,
        "cannot allocate %" G_GSIZE_FORMAT " bytes of working memory", need);
    run_free (run);
    return NULL;
  }
  g_mutex_lock (&self->base.lock);
  self->base.allocated[F2_BUFFER_ACTIVATIONS] += need - run->size;
  g_mutex_unlock (&self->base.lock);
  f2_cpu_free (run->scratch);
  run->scratch = grown;
  run->size = need;
  return run;
}

static void
run_give_back (F2CpuBackend *self, F2CpuRun *run)
{
  g_mutex_lock (&self->base.lock);
  g_ptr_array_add (self->idle_runs, run);
  g_mutex_unlock (&self->base.lock);
}

static gboolean
cpu_program_finish (F2Backend *backend, F2Program *program, GError **error)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  CpuProgram *prog = g_new0 (CpuProgram, 1);
  gsize need = 0;
  guint stage = 0;

  prog->steps = g_array_sized_new (FALSE, TRUE, sizeof (F2CpuStep), program->ops->len);
  prog->stage_ms = g_array_new (FALSE, TRUE, sizeof (double));
  prog->stage_names = g_ptr_array_new ();
  omp_set_num_threads (self->threads);

  for (guint i = 0; i < program->ops->len; i++) {
    const F2Op *op = &g_array_index (program->ops, F2Op, i);
    const F2CpuKernel *kernel = f2_cpu_op_kernel (op->kind);
    F2CpuStep step = { .op = *op };
    GError *op_error = NULL;
    gsize end = 0;

    step.out = f2_cpu_ptr (self, op->out);
    step.out2 = f2_cpu_ptr (self, op->out2);
    for (guint j = 0; j < G_N_ELEMENTS (op->in); j++)
      step.in[j] = f2_cpu_ptr (self, op->in[j]);
    if (kernel->prepare != NULL && !kernel->prepare (self, &step, &end, &op_error)) {
      f2_cpu_step_clear (&step);
      g_propagate_prefixed_error (error, op_error, "program '%s', op %u (%s '%s'): ",
          program->name, i, f2_op_kind_name (op->kind), op->name ? op->name : "");
      program_clear (prog);
      return FALSE;
    }
    need = MAX (need, ALIGN64 (end));
    g_array_append_val (prog->steps, step);

    /* stage names: per op when profiling, else the program's stages */
    if (self->profile_ops) {
      g_ptr_array_add (prog->stage_names, (gpointer) f2_op_kind_name (op->kind));
    } else if (stage < program->stages->len
        && g_array_index (program->stages, F2Stage, stage).first_op == i) {
      while (stage + 1 < program->stages->len
          && g_array_index (program->stages, F2Stage, stage + 1).first_op == i)
        stage++;
      g_ptr_array_add (prog->stage_names,
          (gpointer) g_array_index (program->stages, F2Stage, stage).name);
      stage++;
    } else if (i == 0) {
      g_ptr_array_add (prog->stage_names, program->name);
    }
  }
  g_array_set_size (prog->stage_ms, prog->stage_names->len);
  /* under the backend's lock (backend.c); the slots grow on their next run */
  self->scratch_need = MAX (self->scratch_need, need);
  program->priv = prog;
  return TRUE;
}

static gboolean
cpu_program_run (F2Backend *backend, F2Program *program, GError **error)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  CpuProgram *prog = program->priv;
  gint64 start = g_get_monotonic_time (), mark = start;
  gint stage = -1;
  F2CpuRun *run = run_take (self, error);

  if (run == NULL)
    return FALSE;
  omp_set_num_threads (self->threads);
  memset (prog->stage_ms->data, 0, sizeof (double) * prog->stage_ms->len);
  for (guint i = 0; i < prog->steps->len; i++) {
    F2CpuStep *step = &g_array_index (prog->steps, F2CpuStep, i);
    GError *op_error = NULL;

    /* the time of each stage (or op) runs until the next one starts */
    if (self->profile_ops || (stage + 1 < (gint) program->stages->len
            && g_array_index (program->stages, F2Stage, stage + 1).first_op == i)) {
      gint64 now = g_get_monotonic_time ();
      guint index = self->profile_ops ? i : (guint) MAX (stage, 0);
      if (i > 0 && index - (self->profile_ops ? 1 : 0) < prog->stage_ms->len)
        g_array_index (prog->stage_ms, double, self->profile_ops ? i - 1 : index) +=
            (now - mark) / 1000.0;
      mark = now;
      while (!self->profile_ops && stage + 1 < (gint) program->stages->len
          && g_array_index (program->stages, F2Stage, stage + 1).first_op == i)
        stage++;
    }
    if (!f2_cpu_op_kernel (step->op.kind)->run (self, run, step, &op_error)) {
      g_propagate_prefixed_error (error, op_error, "program '%s', op %u (%s '%s'): ",
          program->name, i, f2_op_kind_name (step->op.kind),
          step->op.name ? step->op.name : "");
      dnnl_stream_wait (run->stream);
      run_give_back (self, run);
      return FALSE;
    }
  }
  dnnl_stream_wait (run->stream);
  run_give_back (self, run);
  if (prog->stage_ms->len > 0) {
    guint last = self->profile_ops ? prog->steps->len - 1 : (guint) MAX (stage, 0);
    g_array_index (prog->stage_ms, double, MIN (last, prog->stage_ms->len - 1)) +=
        (g_get_monotonic_time () - mark) / 1000.0;
  }
  program->stats.dispatches = prog->steps->len;
  program->stats.submits = 1;
  program->stats.gpu_ms = (g_get_monotonic_time () - start) / 1000.0;
  return TRUE;
}

static gboolean
cpu_program_stage_time (F2Backend *backend, F2Program *program, guint index,
    const char **name, double *ms)
{
  CpuProgram *prog = program->priv;

  if (prog == NULL || index >= prog->stage_names->len)
    return FALSE;
  *name = g_ptr_array_index (prog->stage_names, index);
  *ms = g_array_index (prog->stage_ms, double, index);
  return TRUE;
}

static const char *
isa_name (dnnl_cpu_isa_t isa)
{
  switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx: return "AMX";
    case dnnl_cpu_isa_avx512_core_bf16: return "AVX512_BF16";
    case dnnl_cpu_isa_avx512_core_vnni: return "AVX512_VNNI";
    case dnnl_cpu_isa_avx512_core: return "AVX512";
    case dnnl_cpu_isa_avx2_vnni: return "AVX2_VNNI";
    case dnnl_cpu_isa_avx2: return "AVX2";
    case dnnl_cpu_isa_avx: return "AVX";
    case dnnl_cpu_isa_sse41: return "SSE4.1";
    default: return "baseline";
  }
}

/* bf16 matmuls need AVX512_BF16 (or AMX, which includes it) */
static gboolean
isa_has_bf16 (dnnl_cpu_isa_t isa)
{
  return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

static char *
cpu_describe (F2Backend *backend)
{
  F2CpuBackend *self = (F2CpuBackend *) backend;
  const dnnl_version_t *v = dnnl_version ();

  return g_strdup_printf ("cpu (oneDNN %d.%d.%d, %s, %u threads, %s)", v->major,
      v->minor, v->patch, isa_name (dnnl_get_effective_cpu_isa ()), self->threads,
      backend->precision == F2_PRECISION_BF16 ? "bf16" : "fp32");
}

static const F2BackendClass cpu_class = {
  .kind = "cpu",
  /* one image's matmuls already run at full speed: measured, four images
   * together ran 2-4% slower per image and took 700 MB more */
  .batch_images = FALSE,
  .free = cpu_free,
  .alloc = cpu_alloc,
  .write = cpu_write,
  .read = cpu_read,
  .upload_linear = cpu_upload_linear,
  .linear_size = cpu_linear_size,
  .program_finish = cpu_program_finish,
  .program_run = cpu_program_run,
  .program_free = cpu_program_free,
  .program_stage_time = cpu_program_stage_time,
  .describe = cpu_describe,
};

F2Backend *
f2_backend_new_cpu (F2Precision precision, guint threads, GError **error)
{
  F2CpuBackend *self;

  if (precision == F2_PRECISION_FP16) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_UNSUPPORTED,
        "the cpu backend has no fp16 storage (a GPU format): use precision "
        "fp32 or bf16, or auto for the backend's default");
    return NULL;
  }
  if (threads > F2_CPU_MAX_THREADS) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID,
        "%u threads is more than the cpu backend allows (%u); use 0 for one "
        "per core", threads, F2_CPU_MAX_THREADS);
    return NULL;
  }
  self = g_new0 (F2CpuBackend, 1);
  f2_backend_init_base (&self->base, &cpu_class, "cpu",
      precision == F2_PRECISION_AUTO ? F2_PRECISION_FP32 : precision);
  self->threads = threads ? threads : (guint) MAX (1, omp_get_num_procs ());
  self->data = g_ptr_array_new_with_free_func (f2_cpu_free);
  self->linears = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  self->idle_runs = g_ptr_array_new_with_free_func ((GDestroyNotify) run_free);
  self->profile_ops = g_strcmp0 (g_getenv ("F2_PROFILE_OPS"), "1") == 0
      || g_strcmp0 (g_getenv ("F2_VULKAN_PROFILE_OPS"), "1") == 0;
  if (!f2_cpu_dnnl_check (dnnl_engine_create (&self->engine, dnnl_cpu, 0),
          "opening the CPU engine", error)
      || !f2_cpu_dnnl_check (dnnl_stream_create (&self->stream, self->engine,
              dnnl_stream_default_flags), "opening the CPU engine", error)) {
    f2_backend_free (&self->base);
    return NULL;
  }
  if (self->base.precision == F2_PRECISION_BF16
      && !isa_has_bf16 (dnnl_get_effective_cpu_isa ())) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_UNSUPPORTED,
        "precision bf16 needs a CPU with AVX512_BF16 or AMX; this one offers "
        "%s to oneDNN: use precision fp32", isa_name (dnnl_get_effective_cpu_isa ()));
    f2_backend_free (&self->base);
    return NULL;
  }
  return &self->base;
}
