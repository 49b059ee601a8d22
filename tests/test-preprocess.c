/* Image preprocessing on the CPU backend: the golden images must resize to
 * the reference's 8-bit image (sha256) and pixel values; odd sizes, packed
 * formats and YUV frames are checked against conversions written here. */
#include "test-common.h"

#include "backend.h"
#include "reference-ops.h"
#include "image.h"
#include "preprocess.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#define OUT_SIZE 768

typedef struct {
  guint8 *u8;                   /* [out_h][out_w][3], the resized image */
  guint8 *rows;                 /* [in_h][out_w][3], after the first pass */
  float *pixels;                /* [3][out_h][out_w] */
} Result;

static void
result_clear (Result *r)
{
  g_free (r->u8);
  g_free (r->rows);
  g_free (r->pixels);
}

/* Run both passes on a fresh CPU backend. */
static Result
preprocess (const guint8 *frame, const F2ImageLayout *layout, guint32 out_w,
    guint32 out_h, const F2Normalization *norm, F2YuvMatrix matrix)
{
  GError *error = NULL;
  F2Backend *backend = f2_backend_new_reference ();
  g_autoptr (F2Resampler) rs = f2_resampler_new (layout->width, layout->height,
      out_w, out_h, &error);
  F2PreprocessRefs refs;
  F2Program *program;
  F2Op h, v;
  Result r = { 0 };
  guint64 out_n = 3ull * out_w * out_h;

  g_assert_no_error (error);
#define ALLOC(type, n) (F2Ref) { f2_backend_alloc (backend, F2_BUFFER_HOST, type, n, &error), 0 }
  refs.image = ALLOC (F2_ELEM_U8, f2_image_layout_size (layout));
  refs.coeffs_h = ALLOC (F2_ELEM_I32, (guint64) rs->out_w * rs->taps_h);
  refs.bounds_h = ALLOC (F2_ELEM_I32, rs->out_w);
  refs.coeffs_v = ALLOC (F2_ELEM_I32, (guint64) rs->out_h * rs->taps_v);
  refs.bounds_v = ALLOC (F2_ELEM_I32, rs->out_h);
  refs.rows = ALLOC (F2_ELEM_U8, f2_resampler_rows_size (rs));
  refs.out = ALLOC (F2_ELEM_FLOAT, out_n);
#undef ALLOC
  g_assert_no_error (error);
  g_assert_true (f2_backend_write (backend, refs.image, frame,
          f2_image_layout_size (layout), &error));
  g_assert_true (f2_resampler_upload (rs, backend, &refs, &error));

  program = f2_program_new (backend, "preprocess");
  g_assert_true (f2_preprocess_add_ops (program, rs, layout, matrix, norm, &refs, &error));
  g_assert_true (f2_program_finish (program, &error));
  g_assert_true (f2_program_run (program, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (f2_program_last_stats (program)->dispatches, ==, 2);

  r.rows = g_malloc (f2_resampler_rows_size (rs));
  r.pixels = g_new (float, out_n);
  r.u8 = g_malloc (out_n);
  g_assert_true (f2_backend_read (backend, refs.rows, r.rows,
          f2_resampler_rows_size (rs), &error));
  g_assert_true (f2_backend_read (backend, refs.out, r.pixels, out_n, &error));
  g_assert_no_error (error);
  /* The 8-bit image of the vertical pass, from the same tables. */
  g_assert_true (f2_preprocess_build_ops (rs, layout, matrix, norm, &refs, &h, &v, &error));
  f2_reference_resample_v_u8 (&v.p.resample_v, r.rows, rs->coeffs_v, rs->bounds_v, r.u8);

  f2_program_free (program);
  f2_backend_free (backend);
  return r;
}

static Result
preprocess_rgb (const guint8 *rgb, guint32 w, guint32 h, guint32 out_w,
    guint32 out_h, const F2Normalization *norm)
{
  F2ImageLayout layout;
  GError *error = NULL;

  g_assert_true (f2_image_layout_init_packed (&layout, F2_PIXEL_RGB, w, h, &error));
  return preprocess (rgb, &layout, out_w, out_h, norm, F2_YUV_BT601);
}

static guint8 *
random_bytes (GRand *rng, gsize n, int lo, int hi)
{
  guint8 *p = g_malloc (n);
  for (gsize i = 0; i < n; i++)
    p[i] = (guint8) g_rand_int_range (rng, lo, hi + 1);
  return p;
}

/* ---- golden images ---- */

static void
read_normalization (JsonObject *processor, F2Normalization *norm)
{
  JsonArray *mean = json_object_get_array_member (processor, "image_mean");
  JsonArray *std = json_object_get_array_member (processor, "image_std");

  norm->rescale = json_object_get_double_member (processor, "rescale_factor");
  for (int c = 0; c < 3; c++) {
    norm->mean[c] = json_array_get_double_element (mean, c);
    norm->std[c] = json_array_get_double_element (std, c);
  }
}

static void
test_golden (void)
{
  char *index_path;
  JsonNode *root;
  JsonObject *index, *processor, *size;
  JsonArray *images;
  F2Normalization norm;
  guint32 out_w, out_h;

  index_path = f2_test_golden_path ("tiny/index.json");
  root = f2_test_load_json (index_path);
  index = json_node_get_object (root);
  processor = json_object_get_object_member (index, "image_processor");
  read_normalization (processor, &norm);
  size = json_object_get_object_member (processor, "size");
  out_w = json_object_get_int_member (size, "width");
  out_h = json_object_get_int_member (size, "height");
  images = json_object_get_array_member (index, "images");
  g_assert_cmpuint (json_array_get_length (images), >, 0);

  for (guint i = 0; i < json_array_get_length (images); i++) {
    JsonObject *image = json_array_get_object_element (images, i);
    JsonArray *size_wh = json_object_get_array_member (image, "size_wh");
    char *rel = g_build_filename ("tiny", json_object_get_string_member (image, "file"), NULL);
    char *tensors_rel = g_build_filename ("tiny",
        json_object_get_string_member (image, "tensors"), NULL);
    char *png = f2_test_golden_path (rel);
    char *tensors = f2_test_golden_path (tensors_rel);
    GError *error = NULL;
    guint8 *rgb = NULL;
    int w = 0, h = 0;
    Result r;
    char *sha;
    float *want = NULL;
    gsize n = 0;
    double max = 0;
    gsize exact = 0, u8_diff = 0;

    g_assert_true (f2_image_load_rgb (png, &rgb, &w, &h, &error));
    g_assert_no_error (error);
    g_assert_cmpint (w, ==, json_array_get_int_element (size_wh, 0));
    g_assert_cmpint (h, ==, json_array_get_int_element (size_wh, 1));

    r = preprocess_rgb (rgb, w, h, out_w, out_h, &norm);

    sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, r.u8, 3ull * out_w * out_h);
    g_assert_true (f2_test_read_tensor (tensors, "pixel_values", &want, &n, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (n, ==, 3ull * out_w * out_h);
    for (gsize j = 0; j < n; j++) {
      double e = fabs ((double) r.pixels[j] - want[j]);
      gsize c = j / ((gsize) out_w * out_h), p = j % ((gsize) out_w * out_h);
      /* The reference's 8-bit value, recovered from its pixel values. */
      long ref_u8 = lrint ((want[j] * norm.std[c] + norm.mean[c]) * 255.0);

      if (!(e <= max))
        max = isnan (e) ? INFINITY : e;
      exact += r.pixels[j] == want[j];
      u8_diff += ref_u8 != r.u8[p * 3 + c];
    }
    g_print ("%s %dx%d: resized sha256 %s (want %s); pixel_values max abs "
        "error %.3g, %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT " bit-exact; "
        "%" G_GSIZE_FORMAT " 8-bit values differ\n", rel, w, h, sha,
        json_object_get_string_member (image, "resized_uint8_sha256"), max,
        exact, n, u8_diff);
    g_assert_cmpstr (sha, ==, json_object_get_string_member (image, "resized_uint8_sha256"));
    g_assert_cmpuint (u8_diff, ==, 0);
    g_assert_cmpfloat (max, <=, 1e-6);

    g_free (sha);
    g_free (want);
    g_free (rgb);
    result_clear (&r);
    g_free (png);
    g_free (tensors);
    g_free (rel);
    g_free (tensors_rel);
  }
  json_node_unref (root);
  g_free (index_path);
}

/* ---- sizes ---- */

/* Every value finite and inside the normalised range of 0..255. */
static void
check_range (const char *what, const Result *r, guint32 out_w, guint32 out_h,
    const F2Normalization *norm)
{
  gsize plane = (gsize) out_w * out_h;

  for (int c = 0; c < 3; c++) {
    float lo = (float) ((0.0 - norm->mean[c]) / norm->std[c]) - 1e-6f;
    float hi = (float) ((1.0 - norm->mean[c]) / norm->std[c]) + 1e-6f;
    for (gsize i = 0; i < plane; i++) {
      float v = r->pixels[c * plane + i];
      if (!isfinite (v) || v < lo || v > hi)
        g_error ("%s: value %g at channel %d index %" G_GSIZE_FORMAT
            " is outside [%g, %g]", what, v, c, i, lo, hi);
    }
  }
  g_print ("%-30s all %" G_GSIZE_FORMAT " values finite and in range\n", what, 3 * plane);
}

static float
normalised (const F2Normalization *norm, int c, int v)
{
  float x = (float) (v / 255.0);
  float centred = x - (float) norm->mean[c];
  return centred / (float) norm->std[c];
}

static void
test_sizes (void)
{
  GRand *rng = g_rand_new_with_seed (7);
  F2Normalization norm;
  const guint8 pixel[3] = { 200, 17, 99 };
  guint8 *img;
  Result r;

  f2_normalization_init_default (&norm);

  /* 1x1: a constant image stays exactly constant. */
  r = preprocess_rgb (pixel, 1, 1, OUT_SIZE, OUT_SIZE, &norm);
  check_range ("1x1", &r, OUT_SIZE, OUT_SIZE, &norm);
  for (gsize i = 0; i < (gsize) OUT_SIZE * OUT_SIZE; i++)
    for (int c = 0; c < 3; c++) {
      g_assert_cmpint (r.u8[i * 3 + c], ==, pixel[c]);
      g_assert_cmpfloat (r.pixels[c * OUT_SIZE * OUT_SIZE + i], ==,
          normalised (&norm, c, pixel[c]));
    }
  result_clear (&r);

  img = random_bytes (rng, 3 * 5 * 3, 0, 255);
  r = preprocess_rgb (img, 3, 5, OUT_SIZE, OUT_SIZE, &norm);
  check_range ("3x5", &r, OUT_SIZE, OUT_SIZE, &norm);
  result_clear (&r);
  g_free (img);

  /* Same size: Pillow skips both passes, the image comes back as is. */
  img = random_bytes (rng, 3 * OUT_SIZE * OUT_SIZE, 0, 255);
  r = preprocess_rgb (img, OUT_SIZE, OUT_SIZE, OUT_SIZE, OUT_SIZE, &norm);
  g_assert_cmpmem (r.u8, 3 * OUT_SIZE * OUT_SIZE, img, 3 * OUT_SIZE * OUT_SIZE);
  g_print ("%-30s identity\n", "768x768");
  result_clear (&r);
  g_free (img);

  /* 4096x2160 gradient with noise. */
  img = g_malloc (3ull * 4096 * 2160);
  for (gsize y = 0; y < 2160; y++)
    for (gsize x = 0; x < 4096; x++) {
      guint8 *p = img + (y * 4096 + x) * 3;
      p[0] = x * 255 / 4095;
      p[1] = y * 255 / 2159;
      p[2] = (guint8) g_rand_int_range (rng, 0, 256);
    }
  r = preprocess_rgb (img, 4096, 2160, OUT_SIZE, OUT_SIZE, &norm);
  check_range ("4096x2160", &r, OUT_SIZE, OUT_SIZE, &norm);
  /* The horizontal gradient survives: first column dark, last bright. */
  g_assert_cmpint (r.u8[0], <, 5);
  g_assert_cmpint (r.u8[(OUT_SIZE - 1) * 3], >, 250);
  result_clear (&r);
  g_free (img);

  {
    GError *error = NULL;
    g_assert_null (f2_resampler_new (0, 10, 768, 768, &error));
    g_assert_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID);
    g_clear_error (&error);
    g_assert_null (f2_resampler_new (100000, 10, 768, 768, &error));
    g_assert_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID);
    g_clear_error (&error);
  }
  g_rand_free (rng);
}

/* ---- pixel formats ---- */

static void
test_packed_formats (void)
{
  const guint32 W = 45, H = 31;
  const F2PixelFormat formats[4] = { F2_PIXEL_RGBX, F2_PIXEL_BGRX, F2_PIXEL_RGBA, F2_PIXEL_BGRA };
  GRand *rng = g_rand_new_with_seed (3);
  guint8 *rgb = random_bytes (rng, 3 * W * H, 0, 255);
  F2Normalization norm;
  Result ref;

  f2_normalization_init_default (&norm);
  ref = preprocess_rgb (rgb, W, H, 64, 48, &norm);
  for (int f = 0; f < 4; f++) {
    gboolean bgr = formats[f] == F2_PIXEL_BGRX || formats[f] == F2_PIXEL_BGRA;
    guint32 stride = 4 * W + 8;   /* padded rows */
    guint8 *frame = random_bytes (rng, (gsize) stride * H, 0, 255);
    F2ImageLayout layout = { formats[f], W, H, { stride }, { 0 } };
    Result r;

    for (guint32 y = 0; y < H; y++)
      for (guint32 x = 0; x < W; x++)
        for (int c = 0; c < 3; c++)
          frame[y * stride + x * 4 + (bgr ? 2 - c : c)] = rgb[(y * W + x) * 3 + c];
    r = preprocess (frame, &layout, 64, 48, &norm, F2_YUV_BT601);
    g_assert_cmpmem (r.pixels, sizeof (float) * 3 * 64 * 48, ref.pixels,
        sizeof (float) * 3 * 64 * 48);
    result_clear (&r);
    g_free (frame);
  }
  g_print ("RGBx, BGRx, RGBA, BGRA (padded rows) give the RGB result exactly\n");
  result_clear (&ref);
  g_free (rgb);
  g_rand_free (rng);
}

static void
test_yuv_matrix (void)
{
  /* Published limited-range YCbCr -> R'G'B' coefficients. */
  const double bt601[9] = { 1.164384, 0, 1.596027, 1.164384, -0.391762,
    -0.812968, 1.164384, 2.017232, 0 };
  const double bt709[9] = { 1.164384, 0, 1.792741, 1.164384, -0.213249,
    -0.532909, 1.164384, 2.112402, 0 };
  float m[9], off;

  f2_yuv_matrix (F2_YUV_BT601, m, &off);
  g_assert_cmpfloat (off, ==, 16.0f);
  for (int i = 0; i < 9; i++)
    g_assert_cmpfloat_with_epsilon (m[i], bt601[i], 2e-6);
  f2_yuv_matrix (F2_YUV_BT709, m, &off);
  for (int i = 0; i < 9; i++)
    g_assert_cmpfloat_with_epsilon (m[i], bt709[i], 2e-6);
}

static void
yuv_case (F2YuvMatrix matrix, const double *coef)
{
  const guint32 W = 37, H = 23, CW = 19, CH = 12;
  GRand *rng = g_rand_new_with_seed (11 + matrix);
  guint8 *y = random_bytes (rng, W * H, 16, 235);
  guint8 *u = random_bytes (rng, CW * CH, 16, 240);
  guint8 *v = random_bytes (rng, CW * CH, 16, 240);
  guint8 *want = g_malloc (3 * W * H);
  F2ImageLayout nv12, i420;
  guint8 *nv12_frame, *i420_frame;
  F2Normalization norm;
  Result rn, ri, identity, rgb_path;
  GError *error = NULL;
  int max = 0;
  gsize exact = 0;

  f2_normalization_init_default (&norm);

  /* The expected RGB: nearest chroma, the published matrix, rounded. */
  for (guint32 py = 0; py < H; py++)
    for (guint32 px = 0; px < W; px++) {
      double yy = y[py * W + px] - 16.0;
      double cb = u[(py / 2) * CW + px / 2] - 128.0;
      double cr = v[(py / 2) * CW + px / 2] - 128.0;
      for (int c = 0; c < 3; c++) {
        double val = coef[3 * c] * yy + coef[3 * c + 1] * cb + coef[3 * c + 2] * cr;
        want[(py * W + px) * 3 + c] = (guint8) CLAMP (floor (val + 0.5), 0, 255);
      }
    }

  /* NV12, packed planes */
  g_assert_true (f2_image_layout_init_packed (&nv12, F2_PIXEL_NV12, W, H, &error));
  nv12_frame = g_malloc0 (f2_image_layout_size (&nv12));
  for (guint32 py = 0; py < H; py++)
    memcpy (nv12_frame + py * nv12.stride[0], y + py * W, W);
  for (guint32 cy = 0; cy < CH; cy++)
    for (guint32 cx = 0; cx < CW; cx++) {
      nv12_frame[nv12.plane_offset[1] + cy * nv12.stride[1] + 2 * cx] = u[cy * CW + cx];
      nv12_frame[nv12.plane_offset[1] + cy * nv12.stride[1] + 2 * cx + 1] = v[cy * CW + cx];
    }

  /* I420 with padded strides and a gap between planes */
  i420 = (F2ImageLayout) { F2_PIXEL_I420, W, H, { W + 3, CW + 5, CW + 1 }, { 0 } };
  i420.plane_offset[1] = i420.stride[0] * H + 16;
  i420.plane_offset[2] = i420.plane_offset[1] + i420.stride[1] * CH + 7;
  i420_frame = g_malloc0 (f2_image_layout_size (&i420));
  for (guint32 py = 0; py < H; py++)
    memcpy (i420_frame + py * i420.stride[0], y + py * W, W);
  for (guint32 cy = 0; cy < CH; cy++) {
    memcpy (i420_frame + i420.plane_offset[1] + cy * i420.stride[1], u + cy * CW, CW);
    memcpy (i420_frame + i420.plane_offset[2] + cy * i420.stride[2], v + cy * CW, CW);
  }

  /* Same size: the first pass output is the converted frame. */
  identity = preprocess (nv12_frame, &nv12, W, H, &norm, matrix);
  for (gsize i = 0; i < 3ull * W * H; i++) {
    int d = abs ((int) identity.rows[i] - want[i]);
    max = MAX (max, d);
    exact += d == 0;
  }
  g_print ("%s conversion: max difference %d level(s), %" G_GSIZE_FORMAT "/%u exact\n",
      matrix == F2_YUV_BT709 ? "BT.709" : "BT.601", max, exact, 3 * W * H);
  g_assert_cmpint (max, <=, 1);
  g_assert_cmpuint (exact, >=, 3ull * W * H * 99 / 100);

  /* Resized: NV12 == I420 == the RGB path on the converted frame. */
  rn = preprocess (nv12_frame, &nv12, 64, 48, &norm, matrix);
  ri = preprocess (i420_frame, &i420, 64, 48, &norm, matrix);
  rgb_path = preprocess_rgb (identity.rows, W, H, 64, 48, &norm);
  g_assert_cmpmem (rn.pixels, sizeof (float) * 3 * 64 * 48, ri.pixels, sizeof (float) * 3 * 64 * 48);
  g_assert_cmpmem (rn.pixels, sizeof (float) * 3 * 64 * 48, rgb_path.pixels,
      sizeof (float) * 3 * 64 * 48);

  result_clear (&rn);
  result_clear (&ri);
  result_clear (&identity);
  result_clear (&rgb_path);
  g_free (nv12_frame);
  g_free (i420_frame);
  g_free (y);
  g_free (u);
  g_free (v);
  g_free (want);
  g_rand_free (rng);
}

static void
test_yuv (void)
{
  const double bt601[9] = { 1.164384, 0, 1.596027, 1.164384, -0.391762,
    -0.812968, 1.164384, 2.017232, 0 };
  const double bt709[9] = { 1.164384, 0, 1.792741, 1.164384, -0.213249,
    -0.532909, 1.164384, 2.112402, 0 };

  yuv_case (F2_YUV_BT601, bt601);
  yuv_case (F2_YUV_BT709, bt709);
}

static void
test_image_errors (void)
{
  GError *error = NULL;
  guint8 *rgb = NULL;
  char *path = g_build_filename (g_get_tmp_dir (), "f2-not-an-image.png", NULL);

  g_assert_false (f2_image_load_rgb ("/nonexistent/image.png", &rgb, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_print ("missing file: %s\n", error->message);
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (path, "this is not a PNG", -1, NULL));
  g_assert_false (f2_image_load_rgb (path, &rgb, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "cannot decode"));
  g_print ("corrupt file: %s\n", error->message);
  g_clear_error (&error);
  g_assert_null (rgb);
  g_unlink (path);
  g_free (path);
}

int
main (int argc, char **argv)
{
  gboolean golden = f2_test_golden_dir () != NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  if (golden)
    g_test_add_func ("/preprocess/golden", test_golden);
  g_test_add_func ("/preprocess/sizes", test_sizes);
  g_test_add_func ("/preprocess/packed-formats", test_packed_formats);
  g_test_add_func ("/preprocess/yuv-matrix", test_yuv_matrix);
  g_test_add_func ("/preprocess/yuv", test_yuv);
  g_test_add_func ("/preprocess/image-errors", test_image_errors);
  ret = g_test_run ();
  /* Without the golden data the main check did not run: report a skip. */
  if (ret == 0 && !golden) {
    g_print ("golden data not found (F2_GOLDEN_DIR): golden comparison skipped\n");
    return F2_TEST_SKIP;
  }
  return ret;
}
