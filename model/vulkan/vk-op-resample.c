/* Recorders of the two image resampling passes (PIL-exact preprocessing on
 * the device). The kernels read and write bytes through 32-bit words, so no
 * 8-bit storage feature is needed. */
#include "vk-ops.h"

#include "reference-ops.h"

#define RESAMPLE_WORKGROUP 64

typedef struct {
  guint32 rows;                 /* rows of the plane for an image of in_h rows */
  guint64 row_bytes;
  guint32 stride, offset;
  gboolean chroma;              /* one row per two image rows */
} Plane;

static guint
planes_of (const F2ResampleHParams *p, Plane planes[3])
{
  guint32 cw = (p->in_w + 1) / 2, ch = (p->in_h + 1) / 2;
  guint n = 1;

  planes[0] = (Plane) { p->in_h, p->in_w, p->stride[0], p->plane_offset[0], FALSE };
  switch (p->format) {
    case F2_PIXEL_RGB:
      planes[0].row_bytes = 3ull * p->in_w;
      break;
    case F2_PIXEL_RGBX:
    case F2_PIXEL_BGRX:
    case F2_PIXEL_RGBA:
    case F2_PIXEL_BGRA:
      planes[0].row_bytes = 4ull * p->in_w;
      break;
    case F2_PIXEL_NV12:
      planes[1] = (Plane) { ch, 2ull * cw, p->stride[1], p->plane_offset[1], TRUE };
      n = 2;
      break;
    case F2_PIXEL_I420:
      planes[1] = (Plane) { ch, cw, p->stride[1], p->plane_offset[1], TRUE };
      planes[2] = (Plane) { ch, cw, p->stride[2], p->plane_offset[2], TRUE };
      n = 3;
      break;
  }
  return n;
}

/* Bytes of @plane that image rows [y0, y1) read; *first gets the first byte. */
static guint64
plane_span (const Plane *plane, guint32 y0, guint32 y1, guint64 *first)
{
  guint32 r0 = plane->chroma ? y0 / 2 : y0;
  guint32 r1 = plane->chroma ? (y1 - 1) / 2 + 1 : y1;

  *first = plane->offset + (guint64) r0 * plane->stride;
  return (guint64) (r1 - r0 - 1) * plane->stride + plane->row_bytes;
}

/* Whether a band of image rows [y0, y1) fits the binding range limit. */
static gboolean
band_fits (F2VkBackend *vk, const F2ResampleHParams *p, const Plane *planes,
    guint n_planes, guint32 y0, guint32 y1)
{
  guint64 limit = f2_vk_binding_bytes (vk);
  guint64 first;

  if ((guint64) (y1 - y0) * p->out_w * 3 > limit)
    return FALSE;
  for (guint i = 0; i < n_planes; i++)
    if (plane_span (&planes[i], y0, y1, &first) > limit)
      return FALSE;
  return TRUE;
}

gboolean
f2_vk_record_resample_h (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2ResampleHParams *p = &op->p.resample_h;
  Plane planes[3];
  guint n_planes = planes_of (p, planes);
  guint32 band = p->in_h;

  /* bands of an even number of rows, so chroma rows are not split */
  while (!band_fits (vk, p, planes, n_planes, 0, band)) {
    band = (band / 2) & ~1u;
    if (band < 2) {
      g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
          "%s: two rows of a %ux%u frame (strides %u, %u, %u) do not fit the "
          "device's storage buffer range", op->name ? op->name : "resample_h",
          p->in_w, p->in_h, p->stride[0], p->stride[1], p->stride[2]);
      return FALSE;
    }
  }

  for (guint32 y0 = 0; y0 < p->in_h; y0 += band) {
    guint32 y1 = MIN (y0 + band, p->in_h);
    guint64 n_out = (guint64) (y1 - y0) * p->out_w * 3;
    F2VkDispatch d;

    f2_vk_dispatch_init (&d, "resample_h");
    d.float_variant = FALSE;
    f2_vk_dispatch_bind (&d, f2_ref_at (op->out, (guint64) y0 * p->out_w * 3), n_out, TRUE);
    for (guint i = 0; i < 3; i++) {
      guint64 first = 0, span = 0;

      if (i < n_planes)
        span = plane_span (&planes[i], y0, y1, &first);
      f2_vk_dispatch_bind (&d, i < n_planes ? f2_ref_at (op->in[0], first) : F2_REF_NONE,
          span, FALSE);
    }
    f2_vk_dispatch_bind (&d, op->in[1], (guint64) p->out_w * p->taps, FALSE);
    f2_vk_dispatch_bind (&d, op->in[2], p->out_w, FALSE);
    f2_vk_dispatch_push (&d, p->format);
    f2_vk_dispatch_push (&d, p->in_w);
    f2_vk_dispatch_push (&d, y1 - y0);
    f2_vk_dispatch_push (&d, y0);
    f2_vk_dispatch_push (&d, p->out_w);
    f2_vk_dispatch_push (&d, p->taps);
    for (guint i = 0; i < 3; i++)
      f2_vk_dispatch_push (&d, p->stride[i]);
    for (guint i = 0; i < 9; i++)
      f2_vk_dispatch_push_float (&d, p->yuv_matrix[i]);
    f2_vk_dispatch_push_float (&d, p->y_offset);
    f2_vk_grid_1d (&d, f2_div_up ((guint64) (y1 - y0) * p->out_w, 4), RESAMPLE_WORKGROUP);
    f2_vk_emit (out, &d);
  }
  return TRUE;
}

gboolean
f2_vk_record_resample_v (F2VkBackend *vk, const F2Op *op, GArray *out, GError **error)
{
  const F2ResampleVParams *p = &op->p.resample_v;
  guint64 n = (guint64) p->out_h * p->w;
  /* the factor the reference multiplies by, as hi_a + hi_b + lo floats
   * where hi_a keeps the upper 12 significant bits of hi (see the shader) */
  double rescale = f2_reference_rescale_factor (p->rescale);
  float hi = (float) rescale, lo = (float) (rescale - hi), hi_a;
  union { float f; guint32 u; } bits = { hi };
  F2VkDispatch d;

  bits.u &= ~0xfffu;
  hi_a = bits.f;

  f2_vk_dispatch_init (&d, "resample_v");
  f2_vk_dispatch_bind (&d, op->out, 3 * n, TRUE);
  f2_vk_dispatch_bind (&d, op->in[0], (guint64) p->in_h * p->w * 3, FALSE);
  f2_vk_dispatch_bind (&d, op->in[1], (guint64) p->out_h * p->taps, FALSE);
  f2_vk_dispatch_bind (&d, op->in[2], p->out_h, FALSE);
  f2_vk_dispatch_push (&d, p->in_h);
  f2_vk_dispatch_push (&d, p->w);
  f2_vk_dispatch_push (&d, p->out_h);
  f2_vk_dispatch_push (&d, p->taps);
  for (guint i = 0; i < 3; i++)
    f2_vk_dispatch_push_float (&d, p->mean[i]);
  for (guint i = 0; i < 3; i++)
    f2_vk_dispatch_push_float (&d, p->std[i]);
  f2_vk_dispatch_push_float (&d, hi_a);
  f2_vk_dispatch_push_float (&d, hi - hi_a);
  f2_vk_dispatch_push_float (&d, lo);
  f2_vk_grid_1d (&d, n, RESAMPLE_WORKGROUP);
  f2_vk_emit (out, &d);
  return TRUE;
}
