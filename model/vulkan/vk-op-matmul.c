/* Recorder of the matmul family: F2_OP_MATMUL, and the GEMM it records
 * (f2_vk_record_gemm), which F2_OP_CONV2D uses as an implicit GEMM over the
 * same kernels (vk-op-conv.c; vulkan-shaders/matmul-*.glsl).
 *
 * Kernels, chosen by f2_vk_matmul_variant() (the driver quirk table, or the
 * op's forced variant):
 * - register-blocked (matmul_rb): CPU drivers. TM rows x TN columns per
 *   invocation, A operands shared through subgroupBroadcast.
 * - shared-memory tiled (matmul_tiled): GPUs. The workgroup's shape follows
 *   the subgroup size the device runs it at (tiled_shape).
 * - cooperative matrix (matmul_coopmat): fp16 on GPUs that report
 *   VK_NV_cooperative_matrix (tensor cores), in the shape the device lists.
 * - few rows (decoder steps: one row per beam and frame), where a tile of
 *   many rows would waste most of its work: M at most F2_VK_GEMV_MAX_M, or
 *   any M with F2_MATMUL_SEQUENCE_ROWS. CPU drivers take matmul_rb
 *   specialised with TM = M; GPUs take matmul_gemv, which splits k over a
 *   workgroup so that there are enough workgroups and reads in flight.
 *   Either way a row's sums do not depend on the row count (the
 *   register-blocked tiles for more rows add in the same order), so a
 *   batch's rows give the bits of each frame alone.
 * Weights larger than one binding are split by columns (whole blocks of the
 * packed layout), outputs and A operands larger than one binding by rows. */
#include "vk-ops.h"

#include <stdio.h>

#define F2_VK_GEMV_MAX_M 4
/* shared memory of matmul_coopmat: two 64 x 40 half tiles, a 64 x 68 float one */
#define COOPMAT_SHARED_BYTES (2 * 64 * 40 * 2 + 64 * 68 * 4)

/* push constants after the binding offsets (see matmul-common.glsl) */
enum {
  P_M, P_N, P_K, P_LDA, P_LDO, P_LDR, P_FLAGS, P_A_VEC4, P_K4,
  P_CIN, P_H, P_W, P_KERNEL, P_STRIDE, P_PAD, P_WO, P_HWC,
  P_COUNT
};

G_STATIC_ASSERT (P_COUNT - P_CIN == G_N_ELEMENTS (((F2VkGemm *) NULL)->conv_push));

typedef struct {
  const char *shader;
  guint32 spec[5];
  guint n_spec;
  guint32 rows_per_group, cols_per_group;
  guint32 subgroup_size;        /* required subgroup size, 0 = the driver's */
} Kernel;

/* The register-blocked kernel with TM x TN accumulators per invocation and
 * WG invocations per workgroup. */
static void
rb_config (Kernel *kernel, guint32 tm, guint32 tn, guint32 wg)
{
  kernel->shader = "matmul_rb";
  kernel->spec[0] = wg;
  kernel->spec[1] = tm;
  kernel->spec[2] = tn;
  /* k groups per A chunk: at least one vec4 for each of the 8 loaders */
  kernel->spec[3] = MAX (8 / tm, 1);
  kernel->n_spec = 4;
  kernel->rows_per_group = tm;
  kernel->cols_per_group = wg * tn;
}

/* Tile of the register-blocked kernel, measured on lavapipe with
 * bench-kernels on every Florence-2-base shape: 8 rows x 8 columns per
 * invocation in workgroups of 16 runs 1.6 to 2.6 times as fast as the
 * 16 x 2 x 64 first tried (about 18 against 7-10 GFLOP/s); larger tiles
 * spill registers, smaller ones reload too much. Narrow outputs (small
 * models) take fewer columns, so that a workgroup does not mostly compute
 * columns past the end. */
static void
rb_default_tile (guint32 n, guint32 *tm, guint32 *tn, guint32 *wg)
{
  *tm = 8;
  *wg = 16;
  *tn = CLAMP (f2_div_up (n, *wg), 1, 8);
}

/* F2_VULKAN_RB_TILE=TM,TN and F2_VULKAN_RB_WG=WG override the tile (for
 * tuning on a new driver); values out of range are ignored. */
static void
rb_tuning_override (guint32 *tm, guint32 *tn, guint32 *wg)
{
  const char *tile = g_getenv ("F2_VULKAN_RB_TILE");
  const char *size = g_getenv ("F2_VULKAN_RB_WG");
  guint32 a, b;

  if (tile != NULL && sscanf (tile, "%u,%u", &a, &b) == 2 && a >= 1 && a <= 64 &&
      b >= 1 && b <= 16) {
    *tm = a;
    *tn = b;
  }
  if (size != NULL && sscanf (size, "%u", &a) == 1 && a >= 8 && a <= 256 && a % 8 == 0)
    *wg = a;
}

/* Workgroup shape of the shared-memory kernel for a subgroup of @sg lanes:
 * a subgroup spans one row of TX invocations, so that its weight reads from
 * shared memory are consecutive and its A reads one broadcast. 16 x 16 with
 * 4 x 4 accumulators where subgroups are narrower (what it always was). */
static void
tiled_shape (guint32 sg, guint32 *tx, guint32 *ty, guint32 *rm, guint32 *rn)
{
  if (sg >= 64) {
    *tx = 64, *ty = 4, *rm = 8, *rn = 2;        /* 32 x 128 tile */
  } else if (sg == 32) {
    *tx = 32, *ty = 8, *rm = 8, *rn = 2;        /* 64 x 64 tile */
  } else {
    *tx = 16, *ty = 16, *rm = 4, *rn = 4;       /* 64 x 64 tile */
  }
}

static void
tiled_config (F2VkDevice *dev, guint32 sg, gboolean conv, Kernel *kernel)
{
  guint32 tx, ty, rm, rn, bkv = 4;

  tiled_shape (sg, &tx, &ty, &rm, &rn);
  /* stay inside the device's workgroup and shared memory limits */
  while (tx * ty > dev->max_workgroup_invocations && ty > 1)
    ty /= 2;
  while ((guint64) bkv * (ty * rm + tx * rn) * 16 > dev->max_shared_memory && bkv > 1)
    bkv /= 2;
  kernel->shader = conv ? "conv2d_tiled" : "matmul_tiled";
  kernel->spec[0] = tx;
  kernel->spec[1] = ty;
  kernel->spec[2] = rm;
  kernel->spec[3] = rn;
  kernel->spec[4] = bkv;
  kernel->n_spec = 5;
  kernel->rows_per_group = ty * rm;
  kernel->cols_per_group = tx * rn;
  f2_vk_device_subgroup_for (dev, sg, &kernel->subgroup_size);
}

/* Few-rows kernel for GPUs: WG invocations over NC columns of up to 8 rows
 * (matmul_gemv.comp). 256 x 8 makes 96 workgroups of a 768-column output
 * and 6 vec4 loads per invocation at k = 768. F2_VULKAN_GEMV_TILE=WG,NC
 * overrides it (for tuning on a new GPU); values out of range are ignored. */
static void
gemv_config (const F2VkDevice *dev, guint32 m, Kernel *kernel)
{
  const char *tile = g_getenv ("F2_VULKAN_GEMV_TILE");
  guint32 wg = 256, nc = 8, a, b;

  if (tile != NULL && sscanf (tile, "%u,%u", &a, &b) == 2 && a >= 8 && a <= 256
      && b >= 1 && a % b == 0) {
    wg = a;
    nc = b;
  }
  /* within the device's workgroup limit (128 at least), keeping whole slices */
  while (wg > dev->max_workgroup_invocations && (wg / 2) % nc == 0)
    wg /= 2;
  kernel->shader = "matmul_gemv";
  kernel->spec[0] = wg;
  kernel->spec[1] = MIN (m, 8);
  kernel->spec[2] = nc;
  kernel->n_spec = 3;
  kernel->rows_per_group = kernel->spec[1];
  kernel->cols_per_group = nc;
}

/* Cooperative-matrix kernel: four subgroups, each a 32 x 32 block of the
 * 64 x 64 output tile, in the device's fp16 shape (matmul_coopmat.comp). */
static void
coopmat_config (F2VkDevice *dev, Kernel *kernel)
{
  guint32 sg = f2_vk_device_subgroup_for (dev, dev->gpu_subgroup, &kernel->subgroup_size);

  kernel->shader = dev->coopmat_emulated ? "matmul_coopmat_emu" : "matmul_coopmat";
  kernel->spec[0] = 4 * sg;
  kernel->spec[1] = dev->coopmat_m;
  kernel->spec[2] = dev->coopmat_n;
  kernel->spec[3] = dev->coopmat_k;
  kernel->n_spec = 4;
  kernel->rows_per_group = 64;
  kernel->cols_per_group = 64;
}

static void
pick_kernel (F2VkBackend *vk, const F2Op *op, const F2VkGemm *g, Kernel *kernel)
{
  F2VkDevice *dev = vk->dev;
  F2Variant variant = f2_vk_matmul_variant (vk, op);
  gboolean broadcast = dev->subgroup_basic && dev->subgroup_ballot;

  if (variant == F2_VARIANT_AUTO)
    variant = F2_VARIANT_SHARED_TILED;
  if (!broadcast && variant == F2_VARIANT_REGISTER_BLOCKED)
    variant = F2_VARIANT_SHARED_TILED;
  /* cooperative matrices: fp16 matmuls on devices that have them; the
   * rest (convolutions, fp32) on the shared-memory tiles */
  if (variant == F2_VARIANT_COOPMAT && (g->conv || !f2_vk_is_fp16 (vk) || !f2_vk_device_has_coopmat (dev)
          || dev->max_shared_memory < COOPMAT_SHARED_BYTES))
    variant = F2_VARIANT_SHARED_TILED;

  if (!g->conv && variant != F2_VARIANT_REGISTER_BLOCKED
      && (g->m <= F2_VK_GEMV_MAX_M || (g->flags & F2_MATMUL_SEQUENCE_ROWS))) {
    gemv_config (dev, g->m, kernel);
  } else if (!g->conv && g->m <= F2_VK_GEMV_MAX_M) {
    /* CPU drivers, matrix-vector: every row in one tile, A shared over the
     * subgroup; one subgroup per workgroup and 8 columns per invocation
     * ran the 768x51289 LM head 2-3x faster than 64 x 2 (on lavapipe) */
    rb_config (kernel, g->m, 8, MAX (dev->subgroup_size, 8));
  } else if (variant == F2_VARIANT_REGISTER_BLOCKED) {
    guint32 tm, tn, wg;
    rb_default_tile (g->n, &tm, &tn, &wg);
    rb_tuning_override (&tm, &tn, &wg);
    rb_config (kernel, tm, tn, wg);
    if (g->conv)
      kernel->shader = "conv2d_rb";
  } else if (variant == F2_VARIANT_COOPMAT) {
    coopmat_config (dev, kernel);
  } else {
    tiled_config (dev, f2_vk_target_subgroup (vk, variant), g->conv, kernel);
  }
}

gboolean
f2_vk_record_gemm (F2VkBackend *vk, const F2Op *op, const F2VkGemm *g, GArray *out,
    GError **error)
{
  guint elem = f2_elem_size (F2_ELEM_FLOAT, vk->base.precision);
  guint64 range = f2_vk_binding_bytes (vk) / elem;   /* elements */
  guint32 k4 = f2_div_up (g->k, 4);
  guint64 block_elems = (guint64) k4 * F2_VK_LINEAR_BLOCK * 4;
  guint64 cols_per, rows_per;
  gboolean has_bias = (g->flags & F2_EPI_BIAS) && f2_ref_is_set (op->in[2]);
  gboolean has_res = (g->flags & F2_EPI_RESIDUAL) && f2_ref_is_set (op->in[3]);
  Kernel kernel = { 0 };

  if (op->in[1].offset % 4 != 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "the weight must start at a multiple of 4 elements (offset %" G_GUINT64_FORMAT
        "); place linear weights at multiples of f2_backend_linear_size()",
        op->in[1].offset);
    return FALSE;
  }
  pick_kernel (vk, op, g, &kernel);

  /* columns per dispatch: whole weight blocks within one binding */
  cols_per = range / block_elems * F2_VK_LINEAR_BLOCK;
  /* rows per dispatch: a, out and residual within one binding, and the
   * workgroup grid within the 65535 every device supports */
  rows_per = (guint64) 65535 * kernel.rows_per_group;
  if (!g->conv) {
    rows_per = MIN (rows_per, range / g->lda);
    rows_per = MIN (rows_per, range / g->ldo);
    if (has_res)
      rows_per = MIN (rows_per, range / g->ldr);
  }
  if (cols_per == 0 || rows_per == 0 || (g->conv && (rows_per < g->m
              || (guint64) g->m * g->ldo > range || g->a_extent > range))) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "a %ux%ux%u %s is too large for the device's storage buffer range "
        "(%" G_GUINT64_FORMAT " MiB); split it into smaller ops", g->m, g->n, g->k,
        g->conv ? "convolution" : "matmul", (guint64) vk->dev->max_storage_range >> 20);
    return FALSE;
  }

  for (guint64 m0 = 0; m0 < g->m; m0 += rows_per) {
    guint32 mc = (guint32) MIN (rows_per, g->m - m0);
    for (guint64 n0 = 0; n0 < g->n; n0 += cols_per) {
      guint32 nc = (guint32) MIN (cols_per, g->n - n0);
      F2Ref a = g->conv ? op->in[0] : f2_ref_at (op->in[0], m0 * g->lda);
      gboolean a_vec4 = !g->conv && g->lda % 4 == 0 && a.offset % 4 == 0;
      F2VkDispatch d;

      f2_vk_dispatch_init (&d, kernel.shader);
      d.subgroup_size = kernel.subgroup_size;
      for (guint i = 0; i < kernel.n_spec; i++)
        f2_vk_dispatch_spec (&d, kernel.spec[i]);
      f2_vk_dispatch_bind (&d, f2_ref_at (op->out, m0 * g->ldo + n0),
          (guint64) (mc - 1) * g->ldo + nc, TRUE);
      f2_vk_dispatch_bind (&d, a, g->conv ? g->a_extent :
          (guint64) (mc - 1) * g->lda + g->k, FALSE);
      f2_vk_dispatch_bind (&d, f2_ref_at (op->in[1], n0 / F2_VK_LINEAR_BLOCK * block_elems),
          f2_div_up (nc, F2_VK_LINEAR_BLOCK) * block_elems, FALSE);
      f2_vk_dispatch_bind (&d, has_bias ? f2_ref_at (op->in[2], n0) : F2_REF_NONE,
          nc, FALSE);
      f2_vk_dispatch_bind (&d, has_res ? f2_ref_at (op->in[3], m0 * g->ldr + n0) : F2_REF_NONE,
          (guint64) (mc - 1) * g->ldr + nc, FALSE);

      f2_vk_dispatch_push (&d, mc);
      f2_vk_dispatch_push (&d, nc);
      f2_vk_dispatch_push (&d, g->k);
      f2_vk_dispatch_push (&d, g->lda);
      f2_vk_dispatch_push (&d, g->ldo);
      f2_vk_dispatch_push (&d, g->ldr);
      f2_vk_dispatch_push (&d, (has_bias ? F2_EPI_BIAS : 0) | (g->flags & F2_EPI_GELU) |
          (has_res ? F2_EPI_RESIDUAL : 0));
      f2_vk_dispatch_push (&d, a_vec4);
      f2_vk_dispatch_push (&d, k4);
      for (guint i = 0; i < P_COUNT - P_CIN; i++)
        f2_vk_dispatch_push (&d, g->conv_push[i]);

      d.groups[0] = f2_div_up (nc, kernel.cols_per_group);
      d.groups[1] = f2_div_up (mc, kernel.rows_per_group);
      if (d.groups[0] > 65535) {
        g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
            "a matmul of %u columns needs too many workgroups", nc);
        return FALSE;
      }
      f2_vk_emit (out, &d);
    }
  }
  return TRUE;
}

gboolean
f2_vk_record_matmul (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2MatmulParams *p = &op->p.matmul;
  F2VkGemm g = {
    .m = p->m, .n = p->n, .k = p->k,
    .lda = p->lda ? p->lda : p->k,
    .ldo = p->ldo ? p->ldo : p->n,
    .ldr = p->ldr ? p->ldr : p->n,
    .flags = p->flags,
  };

  return f2_vk_record_gemm (vk, op, &g, out, error);
}
