/* The Vulkan network op by op against the CPU reference network: the tiny
 * golden model is built on both backends (same allocation order, so the same
 * buffer ids), the image is set on both, then every op of the vision
 * program runs alone on each backend from identical inputs (the CPU result
 * is copied to the device after each op) and its output is compared. The
 * first op that disagrees is named: a debugging aid as much as a test.
 *
 * Usage: test-net-ops [fp32|fp16] */
#include "backend-private.h"
#include "config.h"
#include "image.h"
#include "net-private.h"
#include "test-common.h"
#include "weights.h"

#include <math.h>
#include <string.h>

/* A network state on @backend and, in *@model, the weights it runs on. */
static F2Net *
open_net (F2Backend *backend, const char *dir, F2NetModel **model)
{
  GError *error = NULL;
  F2Config *config = f2_config_load_dir (dir, &error);
  F2Weights *weights = config ? f2_weights_open_dir (dir, &error) : NULL;
  F2NetLimits limits = f2_net_default_limits ();
  F2Net *net = NULL;

  limits.max_image_width = limits.max_image_height = 1280;
  *model = weights ? f2_net_model_new (backend, config, weights, &limits, &error) : NULL;
  if (*model != NULL)
    net = f2_net_new (*model, &error);
  if (net == NULL)
    g_error ("%s", error->message);
  f2_weights_close (weights);
  f2_config_free (config);
  return net;
}

static gboolean
run_one (F2Backend *backend, const F2Op *op)
{
  GError *error = NULL;
  F2Program *p = f2_program_new (backend, "one op");
  gboolean ok;

  f2_program_add (p, op);
  ok = f2_program_finish (p, &error) && f2_program_run (p, &error);
  if (!ok)
    g_print ("  %s: %s\n", f2_backend_name (backend), error->message);
  g_clear_error (&error);
  f2_program_free (p);
  return ok;
}

int
main (int argc, char **argv)
{
  gboolean fp16 = argc > 1 && strcmp (argv[1], "fp16") == 0;
  double tolerance = fp16 ? 2e-2 : 1e-4;
  GError *error = NULL;
  F2Backend *cpu, *gpu;
  F2Net *cpu_net, *gpu_net;
  F2NetModel *cpu_model, *gpu_model;
  char *dir, *png;
  guint8 *rgb;
  F2Image image = { 0 };
  GArray *ops;
  guint failures = 0;

  f2_test_require_golden_dir ();
  gpu = f2_backend_new_vulkan (NULL, fp16 ? F2_PRECISION_FP16 : F2_PRECISION_FP32, &error);
  if (gpu == NULL) {
    g_print ("SKIP: %s\n", error->message);
    return F2_TEST_SKIP;
  }
  cpu = f2_backend_new_reference ();
  dir = f2_test_golden_path ("tiny/model");
  cpu_net = open_net (cpu, dir, &cpu_model);
  gpu_net = open_net (gpu, dir, &gpu_model);

  png = f2_test_golden_path ("tiny/images/shapes_640x480.png");
  if (!f2_image_load (png, &image, &rgb, &error))
    g_error ("%s", error->message);
  if (!f2_net_set_image (cpu_net, &image, &error) ||
      !f2_net_set_image (gpu_net, &image, &error))
    g_error ("%s", error->message);

  /* start from identical working memory (the device's starts undefined
   * where no op of this program writes); weights differ in layout, so they
   * stay as uploaded */
  for (guint32 id = 1; f2_backend_buffer_info (cpu, id) != NULL; id++) {
    const F2BufferInfo *info = f2_backend_buffer_info (cpu, id);
    float *data;
    if (info->kind == F2_BUFFER_WEIGHTS || info->type != F2_ELEM_FLOAT)
      continue;
    data = g_new (float, info->n_elements);
    f2_backend_read (cpu, (F2Ref) { id, 0 }, data, info->n_elements, &error);
    f2_backend_write (gpu, (F2Ref) { id, 0 }, data, info->n_elements, &error);
    g_free (data);
  }

  ops = cpu_net->vision_program->ops;
  g_print ("# vision program: %u ops, tolerance %.0e (max abs / max abs ref)\n",
      ops->len, tolerance);
  for (guint i = 0; i < ops->len; i++) {
    const F2Op *op = &g_array_index (ops, F2Op, i);
    const F2BufferInfo *info = f2_backend_buffer_info (cpu, op->out.buffer);
    guint64 n = info->n_elements;
    float *want, *got;
    double err = 0, ref = 0;

    if (info->type != F2_ELEM_FLOAT)
      continue;
    if (!run_one (cpu, op) || !run_one (gpu, op)) {
      failures++;
      break;
    }
    want = g_new (float, n);
    got = g_new (float, n);
    f2_backend_read (cpu, (F2Ref) { op->out.buffer, 0 }, want, n, &error);
    f2_backend_read (gpu, (F2Ref) { op->out.buffer, 0 }, got, n, &error);
    for (guint64 j = 0; j < n; j++) {
      double d = fabs ((double) want[j] - got[j]);
      err = isnan (d) ? INFINITY : MAX (err, d);
      ref = MAX (ref, fabs (want[j]));
    }
    if (err > tolerance * MAX (ref, 1e-6)) {
      g_print ("FAIL op %u %s '%s': max abs %.3e (ref %.3e)\n", i,
          f2_op_kind_name (op->kind), op->name ? op->name : "", err, ref);
      failures++;
    }
    /* continue from identical inputs */
    f2_backend_write (gpu, (F2Ref) { op->out.buffer, 0 }, want, n, &error);
    g_free (want);
    g_free (got);
    if (failures > 5)
      break;
  }
  g_print ("# %u ops disagree\n", failures);

  g_free (rgb);
  g_free (png);
  g_free (dir);
  f2_net_free (cpu_net);
  f2_net_free (gpu_net);
  f2_net_model_free (cpu_model);
  f2_net_model_free (gpu_model);
  f2_backend_free (gpu);
  f2_backend_free (cpu);
  return failures ? 1 : 0;
}
