/* Host side of image preprocessing: the resize to the model's input size
 * exactly as the reference processor does it (PIL bicubic with antialias on
 * the 8-bit image), colour conversion for YUV frames, and the rescale and
 * normalisation constants.
 *
 * The work itself runs as two ops, F2_OP_RESAMPLE_H then F2_OP_RESAMPLE_V
 * (ops.h), on any backend; this file computes their coefficient tables and
 * builds the ops.
 */
#pragma once

#include "backend.h"

#include <glib.h>

G_BEGIN_DECLS

/* Largest input side accepted (Pillow's coefficient tables stay small). */
#define F2_RESAMPLE_MAX_SIZE 32768

/* Pillow's resampling coefficients for one input size, both passes, in
 * Pillow's 8-bit fixed point (22 fraction bits). Windows are shifted so that
 * bounds[i] + taps <= input size: every tap reads inside the image (weights
 * outside Pillow's own window are zero). */
typedef struct {
  guint32 in_w, in_h, out_w, out_h;
  guint32 taps_h, taps_v;
  gint32 *coeffs_h;             /* [out_w][taps_h] */
  gint32 *bounds_h;             /* [out_w] first input column */
  gint32 *coeffs_v;             /* [out_h][taps_v] */
  gint32 *bounds_v;             /* [out_h] first input row */
} F2Resampler;

F2Resampler *f2_resampler_new (guint32 in_w, guint32 in_h, guint32 out_w,
    guint32 out_h, GError **error);
void f2_resampler_free (F2Resampler *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (F2Resampler, f2_resampler_free)

/* Bytes of the U8 intermediate between the passes: [in_h][out_w][3]. */
guint64 f2_resampler_rows_size (const F2Resampler *self);

/* Where an input frame's planes are, in bytes from the start of the buffer. */
typedef struct {
  F2PixelFormat format;
  guint32 width, height;
  guint32 stride[3];
  guint32 plane_offset[3];
} F2ImageLayout;

/* Planes packed one after the other without row padding. FALSE (with
 * @error) for a size of 0 or too large. */
gboolean f2_image_layout_init_packed (F2ImageLayout *layout,
    F2PixelFormat format, guint32 width, guint32 height, GError **error);
/* Bytes a buffer needs to hold the frame. */
guint64 f2_image_layout_size (const F2ImageLayout *layout);

/* YUV -> RGB conversion for NV12 and I420 frames (limited range, 8 bits).
 *
 * The matrix is the exact one of the colorimetry, the one GStreamer's
 * videoconvert derives in floating point (Y scaled by 255/219 after removing
 * 16, chroma by 255/112 * (1 - K) after removing 128), applied in float and
 * rounded to nearest. Chroma is not interpolated: each chroma sample covers
 * its 2x2 block of luma, as in videoconvert's I420 -> RGB fast path.
 *
 * videoconvert itself (GStreamer 1.22) differs from this in two ways: its
 * I420 fast path works in reduced fixed point and comes out 1 to 6 levels
 * lower (Y 235 gives 253, Y 128 gives 128 instead of 130), and for NV12 it
 * interpolates chroma between samples. We keep the exact matrix, so results
 * on YUV input are within a few levels of "videoconvert ! RGB" on smooth
 * images, not identical. */
typedef enum {
  F2_YUV_BT601,
  F2_YUV_BT709,
} F2YuvMatrix;

void f2_yuv_matrix (F2YuvMatrix matrix, float coefficients[9], float *y_offset);

/* The processor's rescale and normalisation, from preprocessor_config.json
 * (rescale_factor, image_mean, image_std). */
typedef struct {
  double rescale;
  double mean[3];
  double std[3];
} F2Normalization;

/* CLIPImageProcessor defaults of Florence-2: 1/255, ImageNet mean and std. */
void f2_normalization_init_default (F2Normalization *norm);

/* Buffers the two passes use. */
typedef struct {
  F2Ref image;                  /* U8: f2_image_layout_size() bytes */
  F2Ref coeffs_h, bounds_h;     /* I32: out_w * taps_h, out_w */
  F2Ref coeffs_v, bounds_v;     /* I32: out_h * taps_v, out_h */
  F2Ref rows;                   /* U8: f2_resampler_rows_size() */
  F2Ref out;                    /* FLOAT [3][out_h][out_w] */
} F2PreprocessRefs;

/* Write the coefficient tables into their buffers (once per input size). */
gboolean f2_resampler_upload (const F2Resampler *self, F2Backend *backend,
    const F2PreprocessRefs *refs, GError **error);

/* Fill the two ops (RESAMPLE_H into @h, RESAMPLE_V into @v). @matrix is used
 * for YUV formats only. FALSE when the layout does not match the resampler. */
gboolean f2_preprocess_build_ops (const F2Resampler *self,
    const F2ImageLayout *layout, F2YuvMatrix matrix,
    const F2Normalization *norm, const F2PreprocessRefs *refs,
    F2Op *h, F2Op *v, GError **error);

/* Build the two ops and add them to @program. */
gboolean f2_preprocess_add_ops (F2Program *program, const F2Resampler *self,
    const F2ImageLayout *layout, F2YuvMatrix matrix,
    const F2Normalization *norm, const F2PreprocessRefs *refs, GError **error);

G_END_DECLS
