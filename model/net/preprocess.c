/* Resampling tables (Pillow's antialiased bicubic), YUV matrices and the
 * RESAMPLE_H / RESAMPLE_V ops; see preprocess.h. */
#include "preprocess.h"

#include <math.h>

/* Pillow: PRECISION_BITS = 32 - 8 - 2 for 8-bit images. */
#define PRECISION_BITS 22

/* Pillow's bicubic kernel (a = -0.5), written in the same order of
 * operations so that the double results are identical. */
static double
bicubic (double x)
{
  const double a = -0.5;

  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/* One pass: Pillow's precompute_coeffs() followed by
 * normalize_coeffs_8bpc(), for the box (0, in_size). Writes the fixed-point
 * weights into @coeffs ([out_size][*taps]) and the first input index into
 * @bounds. */
static void
compute_pass (guint32 in_size, guint32 out_size, guint32 *taps,
    gint32 **coeffs, gint32 **bounds)
{
  double scale = (double) (float) in_size / out_size;
  double filterscale = MAX (scale, 1.0);
  double support = 2.0 * filterscale;
  guint32 ksize = (guint32) ceil (support) * 2 + 1;
  double *kk = g_new0 (double, (gsize) out_size * ksize);
  gint32 *xmins = g_new (gint32, out_size);
  gint32 *counts = g_new (gint32, out_size);
  guint32 n_taps = 1;

  for (guint32 xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    double ww = 0.0;
    double *k = kk + (gsize) xx * ksize;
    /* Pillow rounds with a cast, which truncates towards zero. */
    int xmin = (int) (center - support + 0.5);
    int xmax = (int) (center + support + 0.5);

    if (xmin < 0)
      xmin = 0;
    if (xmax > (int) in_size)
      xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      double w = bicubic ((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++)
      if (ww != 0.0)
        k[x] /= ww;
    xmins[xx] = xmin;
    counts[xx] = xmax;
    n_taps = MAX (n_taps, (guint32) xmax);
  }

  /* Only as many taps as the widest window; each window moves left where
   * needed so that it stays inside the input (the extra taps weigh 0). */
  *taps = n_taps;
  *coeffs = g_new0 (gint32, (gsize) out_size * n_taps);
  *bounds = g_new (gint32, out_size);
  for (guint32 xx = 0; xx < out_size; xx++) {
    gint32 start = MIN (xmins[xx], (gint32) (in_size - n_taps));
    gint32 *out = *coeffs + (gsize) xx * n_taps;
    const double *k = kk + (gsize) xx * ksize;

    (*bounds)[xx] = start;
    for (gint32 x = 0; x < counts[xx]; x++) {
      double w = k[x];
      out[xmins[xx] - start + x] = w < 0
          ? (gint32) (-0.5 + w * (1 << PRECISION_BITS))
          : (gint32) (0.5 + w * (1 << PRECISION_BITS));
    }
  }
  g_free (kk);
  g_free (xmins);
  g_free (counts);
}

F2Resampler *
f2_resampler_new (guint32 in_w, guint32 in_h, guint32 out_w, guint32 out_h,
    GError **error)
{
  F2Resampler *self;

  if (in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "cannot resize %ux%u to %ux%u: sizes must not be 0", in_w, in_h,
        out_w, out_h);
    return NULL;
  }
  if (in_w > F2_RESAMPLE_MAX_SIZE || in_h > F2_RESAMPLE_MAX_SIZE
      || out_w > F2_RESAMPLE_MAX_SIZE || out_h > F2_RESAMPLE_MAX_SIZE) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "cannot resize %ux%u to %ux%u: sides are limited to %d pixels; "
        "scale the video down first", in_w, in_h, out_w, out_h,
        F2_RESAMPLE_MAX_SIZE);
    return NULL;
  }
  self = g_new0 (F2Resampler, 1);
  self->in_w = in_w;
  self->in_h = in_h;
  self->out_w = out_w;
  self->out_h = out_h;
  compute_pass (in_w, out_w, &self->taps_h, &self->coeffs_h, &self->bounds_h);
  compute_pass (in_h, out_h, &self->taps_v, &self->coeffs_v, &self->bounds_v);
  return self;
}

void
f2_resampler_free (F2Resampler *self)
{
  if (self == NULL)
    return;
  g_free (self->coeffs_h);
  g_free (self->bounds_h);
  g_free (self->coeffs_v);
  g_free (self->bounds_v);
  g_free (self);
}

guint64
f2_resampler_rows_size (const F2Resampler *self)
{
  return (guint64) self->in_h * self->out_w * 3;
}

gboolean
f2_image_layout_init_packed (F2ImageLayout *layout, F2PixelFormat format,
    guint32 width, guint32 height, GError **error)
{
  guint32 cw = width / 2 + width % 2, ch = height / 2 + height % 2;
  guint64 y_size = (guint64) width * height;

  if (width == 0 || height == 0 || width > F2_RESAMPLE_MAX_SIZE
      || height > F2_RESAMPLE_MAX_SIZE) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "frame size %ux%u is not supported (1 to %d pixels a side)", width,
        height, F2_RESAMPLE_MAX_SIZE);
    return FALSE;
  }
  *layout = (F2ImageLayout) { format, width, height, { 0 }, { 0 } };
  switch (format) {
    case F2_PIXEL_RGB:
      layout->stride[0] = 3 * width;
      return TRUE;
    case F2_PIXEL_RGBX:
    case F2_PIXEL_BGRX:
    case F2_PIXEL_RGBA:
    case F2_PIXEL_BGRA:
      layout->stride[0] = 4 * width;
      return TRUE;
    case F2_PIXEL_NV12:
      layout->stride[0] = width;
      layout->stride[1] = 2 * cw;
      layout->plane_offset[1] = y_size;
      return TRUE;
    case F2_PIXEL_I420:
      layout->stride[0] = width;
      layout->stride[1] = cw;
      layout->stride[2] = cw;
      layout->plane_offset[1] = y_size;
      layout->plane_offset[2] = y_size + (guint64) cw * ch;
      return TRUE;
  }
  g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
      "unknown pixel format %d", format);
  return FALSE;
}

static guint64
plane_end (const F2ImageLayout *layout, int plane, guint64 rows)
{
  return layout->plane_offset[plane] + rows * layout->stride[plane];
}

guint64
f2_image_layout_size (const F2ImageLayout *layout)
{
  guint64 ch = (layout->height + 1ull) / 2;

  switch (layout->format) {
    case F2_PIXEL_NV12:
      return MAX (plane_end (layout, 0, layout->height), plane_end (layout, 1, ch));
    case F2_PIXEL_I420:
      return MAX (plane_end (layout, 0, layout->height),
          MAX (plane_end (layout, 1, ch), plane_end (layout, 2, ch)));
    default:
      return plane_end (layout, 0, layout->height);
  }
}

void
f2_yuv_matrix (F2YuvMatrix matrix, float coefficients[9], float *y_offset)
{
  /* Luma weights of the two colorimetries (ITU-R BT.601, BT.709). */
  double kr = matrix == F2_YUV_BT709 ? 0.2126 : 0.299;
  double kb = matrix == F2_YUV_BT709 ? 0.0722 : 0.114;
  double kg = 1.0 - kr - kb;
  double ys = 255.0 / 219.0;    /* limited range luma: 16..235 */
  double cs = 255.0 / 112.0;    /* limited range chroma: 16..240 around 128 */
  double m[9] = {
    ys, 0.0, cs * (1.0 - kr),
    ys, -cs * (1.0 - kb) * kb / kg, -cs * (1.0 - kr) * kr / kg,
    ys, cs * (1.0 - kb), 0.0,
  };

  for (int i = 0; i < 9; i++)
    coefficients[i] = (float) m[i];
  *y_offset = 16.0f;
}

void
f2_normalization_init_default (F2Normalization *norm)
{
  *norm = (F2Normalization) {
    1.0 / 255.0,
    { 0.485, 0.456, 0.406 },
    { 0.229, 0.224, 0.225 },
  };
}

gboolean
f2_resampler_upload (const F2Resampler *self, F2Backend *backend,
    const F2PreprocessRefs *refs, GError **error)
{
  return f2_backend_write (backend, refs->coeffs_h, self->coeffs_h,
      (guint64) self->out_w * self->taps_h, error)
      && f2_backend_write (backend, refs->bounds_h, self->bounds_h, self->out_w, error)
      && f2_backend_write (backend, refs->coeffs_v, self->coeffs_v,
      (guint64) self->out_h * self->taps_v, error)
      && f2_backend_write (backend, refs->bounds_v, self->bounds_v, self->out_h, error);
}

gboolean
f2_preprocess_build_ops (const F2Resampler *self, const F2ImageLayout *layout,
    F2YuvMatrix matrix, const F2Normalization *norm,
    const F2PreprocessRefs *refs, F2Op *h, F2Op *v, GError **error)
{
  F2ResampleHParams *hp = &h->p.resample_h;
  F2ResampleVParams *vp = &v->p.resample_v;

  if (layout->width != self->in_w || layout->height != self->in_h) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "frame of %ux%u given to a resampler made for %ux%u", layout->width,
        layout->height, self->in_w, self->in_h);
    return FALSE;
  }

  *h = (F2Op) { 0 };
  h->kind = F2_OP_RESAMPLE_H;
  h->name = "resample_h";
  h->out = refs->rows;
  h->in[0] = refs->image;
  h->in[1] = refs->coeffs_h;
  h->in[2] = refs->bounds_h;
  hp->format = layout->format;
  hp->in_w = self->in_w;
  hp->in_h = self->in_h;
  for (int i = 0; i < 3; i++) {
    hp->stride[i] = layout->stride[i];
    hp->plane_offset[i] = layout->plane_offset[i];
  }
  hp->out_w = self->out_w;
  hp->taps = self->taps_h;
  f2_yuv_matrix (matrix, hp->yuv_matrix, &hp->y_offset);

  *v = (F2Op) { 0 };
  v->kind = F2_OP_RESAMPLE_V;
  v->name = "resample_v";
  v->out = refs->out;
  v->in[0] = refs->rows;
  v->in[1] = refs->coeffs_v;
  v->in[2] = refs->bounds_v;
  vp->in_h = self->in_h;
  vp->w = self->out_w;
  vp->out_h = self->out_h;
  vp->taps = self->taps_v;
  for (int c = 0; c < 3; c++) {
    vp->mean[c] = (float) norm->mean[c];
    vp->std[c] = (float) norm->std[c];
  }
  vp->rescale = (float) norm->rescale;
  return TRUE;
}

gboolean
f2_preprocess_add_ops (F2Program *program, const F2Resampler *self,
    const F2ImageLayout *layout, F2YuvMatrix matrix,
    const F2Normalization *norm, const F2PreprocessRefs *refs, GError **error)
{
  F2Op h, v;

  if (!f2_preprocess_build_ops (self, layout, matrix, norm, refs, &h, &v, error))
    return FALSE;
  f2_program_add (program, &h);
  f2_program_add (program, &v);
  return TRUE;
}
