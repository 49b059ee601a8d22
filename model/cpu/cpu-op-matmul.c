/* The matmul family on the cpu backend: oneDNN matmul primitives with the
 * bias, exact GELU and residual add fused as post-ops, on linear weights
 * packed at upload in the layout the primitive prefers. The GEMM here
 * (f2_cpu_gemm_*) also serves the convolutions, which gather their input
 * patches into rows first (cpu-op-conv.c). */
#include "cpu-ops.h"
#include "cpu-simd.h"

#define ALIGN64(x) (((x) + 63) & ~(gsize) 63)

/* The layout of the packed weights is the one oneDNN picks for this many
 * rows; measured on AVX-512 it is the same for 1 row and for thousands. */
#define LAYOUT_ROWS 64

gboolean
f2_cpu_dnnl_check (dnnl_status_t status, const char *what, GError **error)
{
  if (status == dnnl_success)
    return TRUE;
  g_set_error (error, F2_BACKEND_ERROR,
      status == dnnl_out_of_memory ? F2_BACKEND_ERROR_OUT_OF_MEMORY :
      status == dnnl_unimplemented ? F2_BACKEND_ERROR_UNSUPPORTED :
      F2_BACKEND_ERROR_FAILED, "oneDNN failed %s (status %d)", what, status);
  return FALSE;
}

static dnnl_data_type_t
input_type (F2CpuBackend *self)
{
  return self->base.precision == F2_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
}

static void
strided_md (dnnl_memory_desc_t *md, guint32 rows, guint32 cols, guint32 ld,
    dnnl_data_type_t type)
{
  dnnl_dims_t dims = { rows, cols };
  dnnl_dims_t strides = { ld, 1 };

  dnnl_memory_desc_init_by_strides (md, 2, dims, type, strides);
}

typedef struct {
  guint32 m, n, k, lda, ldo, ldr;
  guint32 flags;
  gboolean residual_in_place;
  const dnnl_memory_desc_t *weights;    /* NULL: let oneDNN choose */
} MatmulShape;

static dnnl_status_t
matmul_pd (F2CpuBackend *self, const MatmulShape *s, dnnl_primitive_desc_t *pd)
{
  dnnl_memory_desc_t src, weights, bias, dst, residual;
  dnnl_matmul_desc_t desc;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  dnnl_status_t st;

  strided_md (&src, s->m, s->k, s->lda, input_type (self));
  strided_md (&dst, s->m, s->n, s->ldo, dnnl_f32);
  strided_md (&bias, 1, s->n, s->n, dnnl_f32);
  if (s->weights != NULL) {
    weights = *s->weights;
  } else {
    dnnl_dims_t dims = { s->k, s->n };
    dnnl_memory_desc_init_by_tag (&weights, 2, dims, input_type (self),
        dnnl_format_tag_any);
  }
  st = dnnl_matmul_desc_init (&desc, &src, &weights,
      (s->flags & F2_EPI_BIAS) ? &bias : NULL, &dst);
  if (st == dnnl_success)
    st = dnnl_primitive_attr_create (&attr);
  if (st == dnnl_success)
    st = dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user);
  if (st == dnnl_success)
    st = dnnl_post_ops_create (&ops);
  if (st == dnnl_success && (s->flags & F2_EPI_GELU))
    st = dnnl_post_ops_append_eltwise (ops, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
  if (st == dnnl_success && (s->flags & F2_EPI_RESIDUAL)) {
    if (s->residual_in_place) {
      st = dnnl_post_ops_append_sum (ops, 1.0f);
    } else {
      strided_md (&residual, s->m, s->n, s->ldr, dnnl_f32);
      st = dnnl_post_ops_append_binary (ops, dnnl_binary_add, &residual);
    }
  }
  if (st == dnnl_success)
    st = dnnl_primitive_attr_set_post_ops (attr, ops);
  if (st == dnnl_success)
    st = dnnl_primitive_desc_create (pd, &desc, attr, self->engine, NULL);
  if (ops != NULL)
    dnnl_post_ops_destroy (ops);
  if (attr != NULL)
    dnnl_primitive_attr_destroy (attr);
  return st;
}

gboolean
f2_cpu_linear_layout (F2CpuBackend *self, guint32 n, guint32 k,
    dnnl_memory_desc_t *md, GError **error)
{
  MatmulShape s = { .m = LAYOUT_ROWS, .n = n, .k = k, .lda = k, .ldo = n };
  dnnl_primitive_desc_t pd = NULL;

  if (!f2_cpu_dnnl_check (matmul_pd (self, &s, &pd),
          "choosing the layout of a linear weight", error))
    return FALSE;
  *md = *dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  dnnl_primitive_desc_destroy (pd);
  return TRUE;
}

gboolean
f2_cpu_pack_linear (F2CpuBackend *self, gpointer dst, guint32 n, guint32 k,
    const float *w, dnnl_memory_desc_t *md, GError **error)
{
  dnnl_memory_desc_t plain;
  dnnl_dims_t dims = { k, n };
  dnnl_dims_t strides = { 1, k };        /* w is [n][k]: the transposed matrix */
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t reorder = NULL;
  dnnl_memory_t from = NULL, to = NULL;
  gboolean ok;

  if (!f2_cpu_linear_layout (self, n, k, md, error))
    return FALSE;
  dnnl_memory_desc_init_by_strides (&plain, 2, dims, dnnl_f32, strides);
  ok = f2_cpu_dnnl_check (dnnl_reorder_primitive_desc_create (&pd, &plain,
          self->engine, md, self->engine, NULL), "packing a linear weight", error)
      && f2_cpu_dnnl_check (dnnl_primitive_create (&reorder, pd),
          "packing a linear weight", error)
      && f2_cpu_dnnl_check (dnnl_memory_create (&from, &plain, self->engine,
              (void *) w), "packing a linear weight", error)
      && f2_cpu_dnnl_check (dnnl_memory_create (&to, md, self->engine, dst),
          "packing a linear weight", error);
  if (ok) {
    dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
    ok = f2_cpu_dnnl_check (dnnl_primitive_execute (reorder, self->stream, 2, args),
        "packing a linear weight", error)
        && f2_cpu_dnnl_check (dnnl_stream_wait (self->stream),
        "packing a linear weight", error);
  }
  if (from != NULL)
    dnnl_memory_destroy (from);
  if (to != NULL)
    dnnl_memory_destroy (to);
  if (reorder != NULL)
    dnnl_primitive_destroy (reorder);
  if (pd != NULL)
    dnnl_primitive_desc_destroy (pd);
  return ok;
}

static gboolean
add_arg (F2CpuBackend *self, F2CpuStep *step, int arg,
    const dnnl_memory_desc_t *md, gpointer handle, dnnl_memory_t *keep,
    GError **error)
{
  dnnl_memory_t mem;

  if (!f2_cpu_dnnl_check (dnnl_memory_create (&mem, md, self->engine,
              handle ? handle : DNNL_MEMORY_NONE), "creating a matmul argument", error))
    return FALSE;
  step->args[step->n_args].arg = arg;
  step->args[step->n_args].memory = mem;
  step->n_args++;
  if (keep != NULL)
    *keep = mem;
  return TRUE;
}

gboolean
f2_cpu_gemm_prepare (F2CpuBackend *self, F2CpuStep *step, const F2CpuGemm *g,
    gsize *scratch_end, GError **error)
{
  const F2Op *op = &step->op;
  F2CpuLinear *linear;
  MatmulShape s = {
    .m = g->m, .n = g->n, .k = g->k, .lda = g->lda, .ldo = g->ldo, .ldr = g->ldr,
    .flags = g->flags,
  };
  dnnl_primitive_desc_t pd = NULL;
  const dnnl_memory_desc_t *src_md, *pad_md;
  gsize elem = self->base.precision == F2_PRECISION_BF16 ? 2 : 4;
  guint64 key = f2_cpu_ref_key (op->in[1]);
  gboolean ok;
  int post = 0;

  linear = g_hash_table_lookup (self->linears, &key);
  if (!f2_ref_is_set (op->in[2]))
    s.flags &= ~F2_EPI_BIAS;
  if (!f2_ref_is_set (op->in[3]))
    s.flags &= ~F2_EPI_RESIDUAL;
  s.residual_in_place = step->in[3] == step->out && s.ldr == s.ldo;
  if (linear == NULL || linear->n != s.n || linear->k != s.k)
    return f2_backend_invalid (error, "the weights of %s '%s' were not uploaded "
        "as a %ux%u linear weight (f2_backend_upload_linear)",
        f2_op_kind_name (op->kind), op->name ? op->name : "", s.n, s.k);
  step->m = s.m;
  step->k = s.k;
  step->lda = s.lda;
  if (s.m == 0 || s.n == 0)
    return TRUE;                /* nothing to compute */
  step->lowp = self->base.precision == F2_PRECISION_BF16;
  /* the primitive reads a packed bf16 copy, or the gathered patches */
  if (step->lowp || g->gathered) {
    s.lda = s.k;
    step->lowp_offset = *scratch_end;
    *scratch_end = ALIGN64 (*scratch_end + (gsize) s.m * s.k * elem);
  }
  s.weights = &linear->md;
  if (!f2_cpu_dnnl_check (matmul_pd (self, &s, &pd), "creating a matmul", error))
    return FALSE;

  src_md = dnnl_primitive_desc_query_md (pd, dnnl_query_src_md, 0);
  pad_md = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  step->pad_offset = *scratch_end;
  *scratch_end = ALIGN64 (*scratch_end + dnnl_memory_desc_get_size (pad_md));
  ok = f2_cpu_dnnl_check (dnnl_primitive_create (&step->prim, pd), "creating a matmul", error)
      && add_arg (self, step, DNNL_ARG_SRC, src_md,
          (step->lowp || g->gathered) ? NULL : step->in[0],
          &step->src_mem, error)
      && add_arg (self, step, DNNL_ARG_WEIGHTS, &linear->md, step->in[1], NULL, error)
      && add_arg (self, step, DNNL_ARG_DST,
          dnnl_primitive_desc_query_md (pd, dnnl_query_dst_md, 0), step->out, NULL, error)
      && add_arg (self, step, DNNL_ARG_SCRATCHPAD, pad_md, NULL,
          &step->scratchpad_mem, error);
  if (ok && (s.flags & F2_EPI_BIAS))
    ok = add_arg (self, step, DNNL_ARG_BIAS,
        dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 1), step->in[2], NULL, error);
  if (s.flags & F2_EPI_GELU)
    post++;
  if (ok && (s.flags & F2_EPI_RESIDUAL) && !s.residual_in_place) {
    dnnl_memory_desc_t residual;
    strided_md (&residual, s.m, s.n, s.ldr, dnnl_f32);
    ok = add_arg (self, step, DNNL_ARG_ATTR_MULTIPLE_POST_OP (post) | DNNL_ARG_SRC_1,
        &residual, step->in[3], NULL, error);
  }
  dnnl_primitive_desc_destroy (pd);
  return ok;
}

gboolean
f2_cpu_gemm_run (F2CpuRun *run, F2CpuStep *step, gpointer a, GError **error)
{
  if (step->prim == NULL)
    return TRUE;
  if (a != NULL)
    dnnl_memory_set_data_handle (step->src_mem, a);
  dnnl_memory_set_data_handle (step->scratchpad_mem, run->scratch + step->pad_offset);
  return f2_cpu_dnnl_check (dnnl_primitive_execute (step->prim, run->stream,
          step->n_args, step->args), "running a matmul", error);
}

void
f2_cpu_step_clear (F2CpuStep *step)
{
  for (int i = 0; i < step->n_args; i++)
    dnnl_memory_destroy (step->args[i].memory);
  step->n_args = 0;
  if (step->prim != NULL)
    dnnl_primitive_destroy (step->prim);
  step->prim = NULL;
}

/* ----------------------------------------------------------------- matmul */

/* Round to nearest even bf16. */
HOT static void
row_to_bf16 (const float *restrict x, guint32 cols, guint16 *restrict out)
{
  const guint32 *u = (const guint32 *) x;

  for (guint32 c = 0; c < cols; c++)
    out[c] = (u[c] + 0x7fff + ((u[c] >> 16) & 1)) >> 16;
}

static void
to_bf16 (const float *x, guint32 rows, guint32 cols, guint32 ldx, guint16 *out)
{
#pragma omp parallel for schedule(static) if (PARALLEL_WORTH ((gsize) rows * cols))
  for (gint64 r = 0; r < rows; r++)
    row_to_bf16 (x + r * ldx, cols, out + r * cols);
}

static gboolean
prepare_matmul (F2CpuBackend *self, F2CpuStep *step, gsize *scratch_end,
    GError **error)
{
  const F2MatmulParams *p = &step->op.p.matmul;
  F2CpuGemm g = {
    .m = p->m, .n = p->n, .k = p->k,
    .lda = PACKED (p->lda, p->k), .ldo = PACKED (p->ldo, p->n),
    .ldr = PACKED (p->ldr, p->n), .flags = p->flags,
  };

  return f2_cpu_gemm_prepare (self, step, &g, scratch_end, error);
}

/* In bf16 the rows of a are rounded into working memory first. */
static gboolean
run_matmul (F2CpuBackend *self, F2CpuRun *run, F2CpuStep *step, GError **error)
{
  void *lowp = run->scratch + step->lowp_offset;

  if (step->prim == NULL || !step->lowp)
    return f2_cpu_gemm_run (run, step, NULL, error);
  to_bf16 (step->in[0], step->m, step->k, step->lda, lowp);
  return f2_cpu_gemm_run (run, step, lowp, error);
}

const F2CpuKernel f2_cpu_kernel_matmul = { prepare_matmul, run_matmul };
