/* Kernel tests: the two image resampling passes on Vulkan against the CPU
 * reference, every pixel format with padded strides and unaligned planes,
 * odd sizes and a 4K frame. The 8-bit rows between the passes must be
 * identical; the normalised output within float rounding. With the golden
 * data, the golden images must give the reference's pixel values. */
#include "kernel-harness.h"
#include "test-common.h"

#include "image.h"
#include "preprocess.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static const char *format_names[] = {
  "RGB", "RGBx", "BGRx", "RGBA", "BGRA", "NV12", "I420",
};

typedef struct {
  F2Op h, v;
  F2Ref rows, out;
  guint64 rows_size, out_size;
} Passes;

/* Runs the two passes; @gpu_ms (optional) gets the device time of each,
 * from a second, warm run (-1 where the device has no timer). */
static gboolean
run_passes (F2Backend *backend, const Passes *ps, double gpu_ms[2], GError **error)
{
  F2Program *program = f2_program_new (backend, "resample");
  gboolean ok;

  f2_program_mark_stage (program, "horizontal");
  f2_program_add (program, &ps->h);
  f2_program_mark_stage (program, "vertical");
  f2_program_add (program, &ps->v);
  ok = f2_program_finish (program, error) && f2_program_run (program, error);
  if (ok && gpu_ms != NULL) {
    ok = f2_program_run (program, error);
    for (guint i = 0; i < 2; i++) {
      const char *name;
      if (!f2_program_stage_time (program, i, &name, &gpu_ms[i]))
        gpu_ms[i] = -1;
    }
  }
  f2_program_free (program);
  return ok;
}

/* Run both passes on both backends and compare. Returns the Vulkan output
 * (g_free) for further checks, NULL on failure. */
static float *
check_passes (KernelTest *kt, const Passes *ps, const char *label)
{
  GError *error = NULL;
  guint8 *want_rows = g_malloc (ps->rows_size), *got_rows = g_malloc (ps->rows_size);
  float *want = g_new (float, ps->out_size), *got = g_new (float, ps->out_size);
  guint64 rows_diff = 0, first_diff = 0;
  /* fp32: the same float operations as the reference, bit for bit */
  double worst = 0, tol = KT_TOL (kt, 0, 4e-3);
  double gpu_ms[2] = { -1, -1 };
  gboolean ok;

  kt->checks++;
  if (!run_passes (kt->cpu, ps, NULL, &error) || !run_passes (kt->gpu, ps, gpu_ms, &error)
      || !f2_backend_read (kt->cpu, ps->rows, want_rows, ps->rows_size, &error)
      || !f2_backend_read (kt->gpu, ps->rows, got_rows, ps->rows_size, &error)
      || !f2_backend_read (kt->cpu, ps->out, want, ps->out_size, &error)
      || !f2_backend_read (kt->gpu, ps->out, got, ps->out_size, &error)) {
    g_print ("FAIL %-48s %s: %s\n", label, kt->precision_name, error->message);
    g_clear_error (&error);
    kt->failures++;
    g_free (want_rows);
    g_free (got_rows);
    g_free (want);
    g_free (got);
    return NULL;
  }
  for (guint64 i = 0; i < ps->rows_size; i++)
    if (want_rows[i] != got_rows[i] && rows_diff++ == 0)
      first_diff = i;
  for (guint64 i = 0; i < ps->out_size; i++) {
    double d = fabs ((double) want[i] - got[i]);
    if (!(d <= worst))
      worst = isnan (d) ? INFINITY : d;
  }
  ok = rows_diff == 0 && worst <= tol;
  g_print ("%s %-48s %s: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " row bytes differ, "
      "output max-abs %.3e (tol %.0e); device %.3f + %.3f ms\n", ok ? "ok  " : "FAIL",
      label, kt->precision_name, rows_diff, ps->rows_size, worst, tol, gpu_ms[0], gpu_ms[1]);
  if (rows_diff)
    g_print ("     first row byte difference at %" G_GUINT64_FORMAT ": want %u got %u\n",
        first_diff, want_rows[first_diff], got_rows[first_diff]);
  if (!ok)
    kt->failures++;
  g_free (want_rows);
  g_free (got_rows);
  g_free (want);
  return got;
}

/* Buffers and ops for a frame of @layout (@frame: its bytes) placed at byte
 * @image_at of the image buffer, with the rows between the passes at byte
 * @rows_at of theirs (unaligned offsets exercise the word merging). */
static void
setup_passes (KernelTest *kt, Passes *ps, const F2Resampler *rs,
    const F2ImageLayout *layout, const guint8 *frame, guint32 image_at,
    guint32 rows_at, F2YuvMatrix matrix, const F2Normalization *norm)
{
  GError *error = NULL;
  guint64 frame_size = f2_image_layout_size (layout);
  guint8 *image = g_malloc0 (frame_size + image_at + 5);
  guint8 *rows_init = g_malloc (f2_resampler_rows_size (rs) + rows_at + 7);
  F2PreprocessRefs refs;

  /* bytes around the rows must survive: fill them with a pattern */
  memset (rows_init, 0xa5, f2_resampler_rows_size (rs) + rows_at + 7);
  memcpy (image + image_at, frame, frame_size);
  refs.image = f2_ref_at (kt_u8 (kt, frame_size + image_at + 5, image), image_at);
  refs.coeffs_h = kt_i32 (kt, (guint64) rs->out_w * rs->taps_h, rs->coeffs_h);
  refs.bounds_h = kt_i32 (kt, rs->out_w, rs->bounds_h);
  refs.coeffs_v = kt_i32 (kt, (guint64) rs->out_h * rs->taps_v, rs->coeffs_v);
  refs.bounds_v = kt_i32 (kt, rs->out_h, rs->bounds_v);
  ps->rows_size = f2_resampler_rows_size (rs) + rows_at + 7;
  ps->rows = kt_u8 (kt, ps->rows_size, rows_init);
  refs.rows = f2_ref_at (ps->rows, rows_at);
  ps->out_size = 3ull * rs->out_w * rs->out_h;
  refs.out = ps->out = kt_float (kt, ps->out_size, NULL);
  if (!f2_preprocess_build_ops (rs, layout, matrix, norm, &refs, &ps->h, &ps->v, &error))
    g_error ("building the resample ops: %s", error->message);
  g_free (image);
  g_free (rows_init);
}

/* A frame of @format with every row padded and gaps between the planes. */
static guint8 *
make_frame (F2PixelFormat format, guint32 w, guint32 h, gboolean padded,
    F2ImageLayout *layout, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  GError *error = NULL;
  guint8 *frame;
  guint64 size;

  if (!f2_image_layout_init_packed (layout, format, w, h, &error))
    g_error ("layout: %s", error->message);
  if (padded) {
    guint32 cw = (w + 1) / 2, ch = (h + 1) / 2;
    guint32 y_rows = h, c_rows = ch;

    layout->stride[0] += 5;
    if (format == F2_PIXEL_NV12) {
      layout->stride[1] += 3;
      layout->plane_offset[1] = (guint64) layout->stride[0] * y_rows + 7;
    } else if (format == F2_PIXEL_I420) {
      layout->stride[1] = cw + 1;
      layout->stride[2] = cw + 6;
      layout->plane_offset[1] = (guint64) layout->stride[0] * y_rows + 3;
      layout->plane_offset[2] = layout->plane_offset[1]
          + (guint64) layout->stride[1] * c_rows + 2;
    }
  }
  size = f2_image_layout_size (layout);
  frame = g_malloc (size);
  for (guint64 i = 0; i < size; i++)
    frame[i] = (guint8) g_rand_int_range (rand, 0, 256);
  g_rand_free (rand);
  return frame;
}

static void
test_frame (KernelTest *kt, F2PixelFormat format, guint32 w, guint32 h,
    guint32 out_w, guint32 out_h, gboolean padded, guint32 image_at,
    guint32 rows_at, F2YuvMatrix matrix)
{
  GError *error = NULL;
  F2Normalization norm;
  F2ImageLayout layout;
  guint8 *frame = make_frame (format, w, h, padded, &layout, w * 31 + h);
  F2Resampler *rs = f2_resampler_new (w, h, out_w, out_h, &error);
  char *label = g_strdup_printf ("%s %ux%u -> %ux%u%s at %u/%u", format_names[format],
      w, h, out_w, out_h, padded ? " padded" : "", image_at, rows_at);
  Passes ps;

  if (rs == NULL)
    g_error ("resampler: %s", error->message);
  f2_normalization_init_default (&norm);
  setup_passes (kt, &ps, rs, &layout, frame, image_at, rows_at, matrix, &norm);
  g_free (check_passes (kt, &ps, label));
  f2_resampler_free (rs);
  g_free (frame);
  g_free (label);
}

/* ---- golden images ---- */

static void
test_golden (KernelTest *kt)
{
  char *index_path = f2_test_golden_path ("tiny/index.json");
  JsonNode *root = f2_test_load_json (index_path);
  JsonObject *index = json_node_get_object (root);
  JsonObject *processor = json_object_get_object_member (index, "image_processor");
  JsonObject *size = json_object_get_object_member (processor, "size");
  JsonArray *mean = json_object_get_array_member (processor, "image_mean");
  JsonArray *std = json_object_get_array_member (processor, "image_std");
  JsonArray *images = json_object_get_array_member (index, "images");
  guint32 out_w = json_object_get_int_member (size, "width");
  guint32 out_h = json_object_get_int_member (size, "height");
  F2Normalization norm;

  norm.rescale = json_object_get_double_member (processor, "rescale_factor");
  for (int c = 0; c < 3; c++) {
    norm.mean[c] = json_array_get_double_element (mean, c);
    norm.std[c] = json_array_get_double_element (std, c);
  }
  for (guint i = 0; i < json_array_get_length (images); i++) {
    JsonObject *image = json_array_get_object_element (images, i);
    char *rel = g_build_filename ("tiny", json_object_get_string_member (image, "file"), NULL);
    char *tensors_rel = g_build_filename ("tiny",
        json_object_get_string_member (image, "tensors"), NULL);
    char *png = f2_test_golden_path (rel), *tensors = f2_test_golden_path (tensors_rel);
    char *label = g_strdup_printf ("golden %s", rel);
    GError *error = NULL;
    F2ImageLayout layout;
    F2Resampler *rs;
    guint8 *rgb = NULL;
    float *want = NULL, *got;
    gsize n = 0;
    int w = 0, h = 0;
    Passes ps;
    double worst = 0, tol = KT_TOL (kt, 1e-6, 4e-3);
    guint64 exact = 0;

    if (!f2_image_load_rgb (png, &rgb, &w, &h, &error)
        || !f2_test_read_tensor (tensors, "pixel_values", &want, &n, &error)
        || !f2_image_layout_init_packed (&layout, F2_PIXEL_RGB, w, h, &error)
        || (rs = f2_resampler_new (w, h, out_w, out_h, &error)) == NULL)
      g_error ("%s: %s", rel, error->message);
    g_assert_cmpuint (n, ==, 3ull * out_w * out_h);
    setup_passes (kt, &ps, rs, &layout, rgb, 0, 0, F2_YUV_BT601, &norm);
    got = check_passes (kt, &ps, label);
    if (got != NULL) {
      for (gsize j = 0; j < n; j++) {
        double d = fabs ((double) got[j] - want[j]);
        if (!(d <= worst))
          worst = isnan (d) ? INFINITY : d;
        exact += got[j] == want[j];
      }
      kt->checks++;
      if (worst > tol)
        kt->failures++;
      g_print ("%s %-48s %s: pixel_values max-abs %.3e (tol %.0e), %" G_GUINT64_FORMAT
          "/%" G_GSIZE_FORMAT " bit-exact\n", worst <= tol ? "ok  " : "FAIL", label,
          kt->precision_name, worst, tol, exact, n);
    }
    g_free (got);
    g_free (want);
    g_free (rgb);
    f2_resampler_free (rs);
    g_free (label);
    g_free (png);
    g_free (tensors);
    g_free (rel);
    g_free (tensors_rel);
  }
  json_node_unref (root);
  g_free (index_path);
}

static void
run_all (KernelTest *kt)
{
  /* every format, odd sizes, up and down, padded rows, unaligned planes */
  for (F2PixelFormat f = F2_PIXEL_RGB; f <= F2_PIXEL_I420; f++) {
    F2YuvMatrix m = f == F2_PIXEL_I420 ? F2_YUV_BT709 : F2_YUV_BT601;
    test_frame (kt, f, 1, 1, 768, 768, FALSE, 0, 0, m);
    test_frame (kt, f, 3, 5, 768, 768, TRUE, 1, 3, m);
    test_frame (kt, f, 7, 11, 5, 3, TRUE, 2, 1, m);
    test_frame (kt, f, 67, 45, 33, 19, TRUE, 3, 2, m);
    test_frame (kt, f, 640, 480, 768, 768, f >= F2_PIXEL_NV12, 0, 0, m);
  }
  test_frame (kt, F2_PIXEL_RGB, 768, 768, 768, 768, FALSE, 0, 0, F2_YUV_BT601);
  test_frame (kt, F2_PIXEL_NV12, 1280, 720, 768, 768, FALSE, 0, 0, F2_YUV_BT709);
  /* 4K, once */
  test_frame (kt, kt->precision == F2_PRECISION_FP32 ? F2_PIXEL_BGRA : F2_PIXEL_I420,
      4096, 2160, 768, 768, FALSE, 0, 0, F2_YUV_BT709);

  if (f2_test_golden_dir () != NULL)
    test_golden (kt);
  else
    g_print ("# golden data not found (F2_GOLDEN_DIR): golden image check skipped\n");
}

int
main (int argc, char **argv)
{
  return kt_main (argc, argv, run_all);
}
