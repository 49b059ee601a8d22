/* The public header stands alone: this file includes nothing else of the
 * library, is compiled with -Wall -Werror and only the public API's folder on
 * the include path, and uses each public type once. */
#include "florence2.h"

static void
log_nothing (GLogLevelFlags level, const char *message, gpointer user_data)
{
}

int
main (void)
{
  Florence2ModelParams mp = florence2_model_default_params ();
  Florence2RunParams rp = florence2_run_default_params ();
  Florence2Image image = { .format = FLORENCE2_PIXEL_RGB, .width = 1, .height = 1 };
  Florence2Region region = { .shape = FLORENCE2_REGION_BBOX };
  Florence2Result result = { .type = FLORENCE2_POSTPROCESS_PURE_TEXT };
  Florence2Output *output = NULL;
  Florence2Model *model;
  Florence2Context *context = NULL;
  GError *error = NULL;

  florence2_log_set (log_nothing, NULL);
  mp.precision = FLORENCE2_PRECISION_FP32;
  mp.limits.max_beams = 1;
  rp.task = FLORENCE2_TASK_OD;
  result.n_regions = 1;
  result.regions = &region;

  /* no model here: a GError, never an abort */
  model = florence2_model_new ("/nonexistent-model-dir", &mp, &error);
  if (model != NULL || error == NULL
      || florence2_error_kind (error) != FLORENCE2_ERROR_KIND_NOT_FOUND)
    return 1;
  g_clear_error (&error);
  if (florence2_error_kind (NULL) != FLORENCE2_ERROR_KIND_OTHER)
    return 1;
  florence2_context_free (context);     /* NULL is allowed */
  (void) image;
  (void) output;
  return rp.task == FLORENCE2_TASK_OD && result.regions[0].shape == FLORENCE2_REGION_BBOX ? 0 : 1;
}
