/* The whole network against the golden reference, stage by stage: pixel
 * values, every vision stage, image features, encoder input and output,
 * the first two decoder steps' logits and argmax, and a beam step (top-k
 * of log-softmax through the cache gather).
 *
 * Device: F2_TEST_DEVICE=reference (default), cpu or vulkan (the first
 * Vulkan device, or F2_VULKAN_DEVICE), precision F2_TEST_PRECISION=fp32
 * (default), fp16 (Vulkan) or bf16 (cpu), or the same as arguments:
 * test-golden-stages [reference|cpu|vulkan] [fp32|fp16|bf16].
 *
 * Tolerance: the largest absolute error relative to the largest absolute
 * reference value of each tensor. */
#include "test-common.h"
#include "vk-device.h"

#include "backend.h"
#include "config.h"
#include "image.h"
#include "net.h"
#include "weights.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The reference itself moves by ~1e-6 with another BLAS; the CPU backend
 * accumulates in double. */
#define TOL_CPU 1e-4
/* Vulkan kernels accumulate in fp32 in another order (measured 7.9e-5 on
 * lavapipe, as on the CPU: the reference's own fp32 noise dominates). */
#define TOL_VULKAN_FP32 2e-4
/* fp16 storage: ~1e-3 per rounding, compounded through ~30 layers. */
#define TOL_VULKAN_FP16 3e-2
/* The cpu backend: oneDNN's fp32 matmuls sum in another order, as Vulkan's;
 * bf16 rounds every matmul input to 8 significant bits (~4e-3), compounded
 * through the layers as fp16 storage is (measured up to 1.35e-1 on the
 * tiny random model, whose random weights amplify every difference). */
#define TOL_CPU_FP32 2e-4
#define TOL_CPU_BF16 2e-1

typedef struct {
  F2Net *net;
  gboolean vulkan;
  double tol;
  guint failures;
  guint checks;
  double worst;
} Ctx;

/* Kernels still being written fail with UNSUPPORTED on Vulkan: that is a
 * skip, not a pass. Anything else fails the test. */
static void G_GNUC_NORETURN
die (Ctx *ctx, const char *what, GError *error)
{
  if (ctx->vulkan && g_error_matches (error, F2_BACKEND_ERROR,
          F2_BACKEND_ERROR_UNSUPPORTED)) {
    g_print ("the device cannot run the network yet (%s: %s): skipped\n",
        what, error->message);
    exit (F2_TEST_SKIP);
  }
  g_error ("%s: %s", what, error->message);
}

static double
rel_error (const float *got, const float *want, gsize n, double *max_abs)
{
  double err = 0.0, ref = 0.0;

  for (gsize i = 0; i < n; i++) {
    double e = fabs ((double) got[i] - want[i]);
    if (!(e <= err))            /* NaN counts as an error */
      err = isnan (e) ? INFINITY : e;
    ref = MAX (ref, fabs ((double) want[i]));
  }
  *max_abs = err;
  return ref > 0 ? err / ref : err;
}

/* Compare @n floats of @got with the first @n of golden @name in @file. */
static void
check (Ctx *ctx, const char *label, const float *got, gsize n,
    const char *file, const char *name)
{
  g_autofree float *want = NULL;
  gsize want_n = 0;
  GError *error = NULL;
  double max_abs, rel;
  gboolean ok;

  if (!f2_test_read_tensor (file, name, &want, &want_n, &error))
    g_error ("cannot read golden %s: %s", name, error->message);
  if (want_n < n)
    n = want_n;
  rel = rel_error (got, want, n, &max_abs);
  ok = rel <= ctx->tol;
  ctx->checks++;
  ctx->worst = MAX (ctx->worst, rel);
  if (!ok)
    ctx->failures++;
  g_print ("  %-44s rel %.3e  max abs %.3e  (%" G_GSIZE_FORMAT " values) %s\n",
      label, rel, max_abs, n, ok ? "ok" : "FAIL");
}

static float *
read_net (Ctx *ctx, F2NetTensor which, gsize *n)
{
  GError *error = NULL;
  float *data;

  *n = f2_net_tensor_size (ctx->net, which);
  g_assert_cmpuint (*n, >, 0);
  data = g_new (float, *n);
  if (!f2_net_read_tensor (ctx->net, which, data, &error))
    g_error ("reading %s: %s", f2_net_tensor_name (which), error->message);
  return data;
}

static void
check_net (Ctx *ctx, const char *prefix, F2NetTensor which, const char *file,
    const char *name, gsize expect_n)
{
  gsize n;
  g_autofree float *got = read_net (ctx, which, &n);
  g_autofree char *label = g_strdup_printf ("%s %s", prefix, name);

  if (expect_n != 0 && n != expect_n) {
    g_print ("  %s: %" G_GSIZE_FORMAT " values, golden has %" G_GSIZE_FORMAT
        " FAIL\n", label, n, expect_n);
    ctx->failures++;
    return;
  }
  check (ctx, label, got, n, file, name);
}

static gsize
golden_numel (JsonObject *shapes, const char *name)
{
  JsonArray *shape;
  gsize n = 1;

  if (!json_object_has_member (shapes, name))
    return 0;
  shape = json_object_get_array_member (json_object_get_object_member (shapes,
          name), "shape");
  for (guint i = 0; i < json_array_get_length (shape); i++)
    n *= json_array_get_int_element (shape, i);
  return n;
}

/* Returns FALSE (test skipped) when the device cannot run the network. */
static gboolean
set_image (Ctx *ctx, const char *golden, const char *png, GError **error)
{
  g_autofree char *path = g_build_filename (golden, png, NULL);
  g_autofree guint8 *rgb = NULL;
  F2Image image;

  if (!f2_image_load (path, &image, &rgb, error))
    g_error ("cannot load %s: %s", path, (*error)->message);
  return f2_net_set_image (ctx->net, &image, error);
}

static void
check_image (Ctx *ctx, const char *golden, JsonObject *img)
{
  const char *file = json_object_get_string_member (img, "tensors");
  g_autofree char *tensors = g_build_filename (golden, file, NULL);
  JsonObject *shapes = json_object_get_object_member (img, "tensor_shapes");
  g_autofree char *stem = g_path_get_basename (file);

  *strrchr (stem, '.') = '\0';
  check_net (ctx, stem, F2_NET_PIXEL_VALUES, tensors, "pixel_values",
      golden_numel (shapes, "pixel_values"));
  for (guint s = 0; s < 4; s++) {
    for (int after = 0; after < 2; after++) {
      g_autofree char *full = g_strdup_printf ("stage%u_%s", s + 1,
          after ? "out" : "conv_out");
      g_autofree char *rows = g_strconcat (full, "_rows0_24", NULL);
      const char *name = json_object_has_member (shapes, full) ? full : rows;
      gsize want = golden_numel (shapes, name);
      g_autofree float *got = NULL;
      g_autofree char *label = NULL;
      GError *error = NULL;

      if (want == 0)
        continue;
      got = g_new (float, f2_net_vision_stage_size (ctx->net, s, NULL, NULL));
      if (!f2_net_read_vision_stage (ctx->net, s, after, got, &error))
        g_error ("%s", error->message);
      label = g_strdup_printf ("%s %s", stem, name);
      check (ctx, label, got, want, tensors, name);
    }
  }
  check_net (ctx, stem, F2_NET_VISION_OUT, tensors, "vision_tower_out",
      golden_numel (shapes, "vision_tower_out"));
  check_net (ctx, stem, F2_NET_IMAGE_FEATURES, tensors, "image_features",
      golden_numel (shapes, "image_features"));
}

/* The index of the largest value, or -1 when the two largest are closer
 * than @tie (either may then be right). */
static gint
golden_argmax (const float *x, gsize n, double tie, gint *second)
{
  gint best = 0, next = -1;

  for (gsize i = 1; i < n; i++) {
    if (x[i] > x[best]) {
      next = best;
      best = (gint) i;
    } else if (next < 0 || x[i] > x[next]) {
      next = (gint) i;
    }
  }
  *second = (next >= 0 && x[best] - x[next] <= tie) ? next : -1;
  return best;
}

static void
check_argmax (Ctx *ctx, const char *label, gint32 got, gint64 want,
    const char *file, const char *name)
{
  g_autofree float *logits = NULL;
  gsize n;
  GError *error = NULL;
  double ref = 0;
  gint second;
  gboolean ok;

  if (!f2_test_read_tensor (file, name, &logits, &n, &error))
    g_error ("%s", error->message);
  for (gsize i = 0; i < n; i++)
    ref = MAX (ref, fabs (logits[i]));
  golden_argmax (logits, n, ctx->tol * ref, &second);
  /* fp32 on the CPU must match exactly; elsewhere a near-tie may flip */
  ok = got == want || (ctx->tol > TOL_CPU && got == second);
  ctx->checks++;
  if (!ok)
    ctx->failures++;
  g_print ("  %-44s %d (golden %" G_GINT64_FORMAT ") %s\n", label, got, want,
      ok ? "ok" : "FAIL");
}

static gboolean
step (Ctx *ctx, guint rows, const gint32 *tokens, const gint32 *parents,
    guint position, guint k, gint32 *ids, float *scores)
{
  GError *error = NULL;
  F2Step s = {
    .rows = rows, .tokens = tokens, .parents = parents, .position = position,
    .k = k, .out_ids = ids, .out_scores = scores,
  };

  if (!f2_net_step (ctx->net, &s, &error))
    die (ctx, "decoder step", error);
  return TRUE;
}

/* Three beams fed the same tokens, with a reordering at step 1: every row
 * must give the top-k of log_softmax(golden step-1 logits). */
static void
check_beam_step (Ctx *ctx, const char *tensors)
{
  const guint R = 3, K = 6;
  gint32 tok0[3] = { 2, 2, 2 }, tok1[3] = { 0, 0, 0 }, parents[3] = { 2, 0, 1 };
  gint32 ids[18];
  float scores[18];
  g_autofree float *logits = NULL;
  gsize n;
  GError *error = NULL;
  double max = -INFINITY, sum = 0, lse, err = 0, ref = 0;
  gboolean ids_ok = TRUE, ok;

  step (ctx, R, tok0, NULL, 0, K, ids, scores);
  step (ctx, R, tok1, parents, 1, K, ids, scores);
  if (!f2_test_read_tensor (tensors, "decoder_logits_step1", &logits, &n, &error))
    g_error ("%s", error->message);
  for (gsize i = 0; i < n; i++)
    max = MAX (max, logits[i]);
  for (gsize i = 0; i < n; i++)
    sum += exp ((double) logits[i] - max);
  lse = max + log (sum);
  for (guint r = 0; r < R; r++) {
    for (guint j = 0; j < K; j++) {
      gint32 id = ids[r * K + j];
      double want;

      if (id < 0 || (gsize) id >= n) {
        ids_ok = FALSE;
        continue;
      }
      want = logits[id] - lse;
      err = MAX (err, fabs (scores[r * K + j] - want));
      ref = MAX (ref, fabs (want));
      /* descending, and nothing better was left out */
      if (j > 0 && scores[r * K + j] > scores[r * K + j - 1])
        ids_ok = FALSE;
    }
    for (gsize i = 0; i < n && ids_ok; i++) {
      double worst = logits[ids[r * K + K - 1]];
      gboolean listed = FALSE;

      for (guint j = 0; j < K; j++)
        listed |= ids[r * K + j] == (gint32) i;
      if (!listed && logits[i] > worst + ctx->tol * fabs (max))
        ids_ok = FALSE;
    }
  }
  ok = ids_ok && err / MAX (ref, 1e-30) <= ctx->tol;
  ctx->checks++;
  if (!ok)
    ctx->failures++;
  g_print ("  %-44s rel %.3e  ids %s %s\n", "beam step 1 top-6 log-probs",
      err / MAX (ref, 1e-30), ids_ok ? "ok" : "wrong", ok ? "ok" : "FAIL");
}

static void
check_case (Ctx *ctx, const char *golden, JsonObject *c)
{
  const char *id = json_object_get_string_member (c, "case_id");
  g_autofree char *json_path = g_build_filename (golden,
      json_object_get_string_member (c, "json"), NULL);
  g_autofree char *tensors = g_build_filename (golden,
      json_object_get_string_member (c, "tensors"), NULL);
  JsonNode *root = f2_test_load_json (json_path);
  JsonObject *cj = json_node_get_object (root);
  JsonArray *ids_json = json_object_get_array_member (cj, "input_ids");
  guint n_ids = json_array_get_length (ids_json);
  g_autofree gint32 *ids = g_new (gint32, n_ids);
  GError *error = NULL;
  gint32 tok, best;
  g_autofree float *logits = NULL;
  gsize n;

  g_print ("case %s (%u prompt tokens)\n", id, n_ids);
  for (guint i = 0; i < n_ids; i++)
    ids[i] = (gint32) json_array_get_int_element (ids_json, i);
  if (!f2_net_encode (ctx->net, ids, n_ids, &error))
    die (ctx, "encode", error);
  check_net (ctx, "", F2_NET_INPUTS_EMBEDS, tensors, "inputs_embeds", 0);
  check_net (ctx, "", F2_NET_ENCODER_OUT, tensors, "encoder_last_hidden_state", 0);

  tok = 2;
  step (ctx, 1, &tok, NULL, 0, 0, &best, NULL);
  logits = read_net (ctx, F2_NET_LOGITS, &n);
  check (ctx, " decoder_logits_step0", logits, n, tensors, "decoder_logits_step0");
  check_argmax (ctx, " argmax_step0", best,
      json_object_get_int_member (cj, "argmax_step0"), tensors, "decoder_logits_step0");
  g_clear_pointer (&logits, g_free);

  tok = 0;
  step (ctx, 1, &tok, NULL, 1, 0, &best, NULL);
  logits = read_net (ctx, F2_NET_LOGITS, &n);
  check (ctx, " decoder_logits_step1", logits, n, tensors, "decoder_logits_step1");
  check_argmax (ctx, " argmax_step1", best,
      json_object_get_int_member (cj, "argmax_step1"), tensors, "decoder_logits_step1");

  check_beam_step (ctx, tensors);
  json_node_unref (root);
}

int
main (int argc, char **argv)
{
  g_autofree char *golden = NULL;
  const char *device = g_getenv ("F2_TEST_DEVICE");
  const char *precision = g_getenv ("F2_TEST_PRECISION");
  g_autofree char *model_dir = NULL, *index_path = NULL;
  gboolean fp16, bf16, vulkan;
  F2Backend *backend;
  F2Config *config;
  F2Weights *weights;
  F2NetLimits limits = f2_net_default_limits ();
  F2NetModel *net_model;
  GError *error = NULL;
  Ctx ctx = { 0 };
  JsonNode *index;
  JsonArray *images, *cases;
  const char *current = NULL;

  if (argc > 1)
    device = argv[1];
  if (argc > 2)
    precision = argv[2];
  vulkan = device != NULL && g_strcmp0 (device, "vulkan") == 0;
  ctx.vulkan = vulkan;
  fp16 = precision != NULL && g_strcmp0 (precision, "fp16") == 0;
  bf16 = precision != NULL && g_strcmp0 (precision, "bf16") == 0;
  golden = f2_test_golden_path ("tiny");
  backend = f2_backend_open (f2_test_device (device ? device : "reference"),
      fp16 ? F2_PRECISION_FP16 : bf16 ? F2_PRECISION_BF16 : F2_PRECISION_FP32, 0, &error);
  if (backend == NULL && vulkan) {
    g_print ("no Vulkan device (%s): skipped\n", error->message);
    g_error_free (error);
    return F2_TEST_SKIP;
  }
  g_assert_no_error (error);
  if (g_str_equal (f2_backend_kind (backend), "vulkan"))
    ctx.tol = fp16 ? TOL_VULKAN_FP16 : TOL_VULKAN_FP32;
  else if (g_str_equal (f2_backend_kind (backend), "cpu"))
    ctx.tol = bf16 ? TOL_CPU_BF16 : TOL_CPU_FP32;
  else
    ctx.tol = TOL_CPU;
  {
    g_autofree char *about = f2_backend_describe (backend);
    g_print ("device %s, %s, tolerance %.0e\n", about,
        f2_precision_name (f2_backend_precision (backend)), ctx.tol);
  }

  model_dir = g_build_filename (golden, "model", NULL);
  config = f2_config_load_dir (model_dir, &error);
  g_assert_no_error (error);
  weights = f2_weights_open_dir (model_dir, &error);
  g_assert_no_error (error);
  /* the test images are at most 1280x720 */
  limits.max_image_width = limits.max_image_height = 2048;
  net_model = f2_net_model_new (backend, config, weights, &limits, &error);
  g_assert_no_error (error);
  ctx.net = f2_net_new (net_model, &error);
  g_assert_no_error (error);
  f2_weights_close (weights);
  f2_config_free (config);
  if (!f2_net_keep_vision_stages (ctx.net, &error))
    g_error ("%s", error->message);

  index_path = g_build_filename (golden, "index.json", NULL);
  index = f2_test_load_json (index_path);
  images = json_object_get_array_member (json_node_get_object (index), "images");
  cases = json_object_get_array_member (json_node_get_object (index), "cases");

  for (guint c = 0; c < json_array_get_length (cases); c++) {
    JsonObject *co = json_array_get_object_element (cases, c);
    const char *png = json_object_get_string_member (co, "image");

    if (g_strcmp0 (png, current) != 0) {
      current = png;
      g_print ("image %s\n", png);
      if (!set_image (&ctx, golden, png, &error))
        die (&ctx, "set_image", error);
      for (guint i = 0; i < json_array_get_length (images); i++) {
        JsonObject *img = json_array_get_object_element (images, i);
        if (g_strcmp0 (json_object_get_string_member (img, "file"), png) == 0)
          check_image (&ctx, golden, img);
      }
    }
    check_case (&ctx, golden, co);
  }

  /* with F2_VULKAN_VALIDATION=1 every validation message fails the test */
  if (vulkan && f2_vk_validation_message_count () > 0) {
    g_print ("FAIL %u Vulkan validation messages\n", f2_vk_validation_message_count ());
    ctx.failures++;
  }
  g_print ("%u checks, %u failed, worst relative error %.3e (tolerance %.0e)\n",
      ctx.checks, ctx.failures, ctx.worst, ctx.tol);
  json_node_unref (index);
  f2_net_free (ctx.net);
  f2_net_model_free (net_model);
  f2_backend_free (backend);
  return ctx.failures == 0 ? 0 : 1;
}
