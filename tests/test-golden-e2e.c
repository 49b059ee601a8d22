/* End to end against the reference, through the library API: for every
 * golden case, decode the PNG, run the task greedy and with 3 beams
 * (max_new_tokens 40, as the reference did) and compare the generated ids,
 * the decoded text and the post-processed result exactly.
 *
 * Usage: test-golden-e2e [reference|cpu|vulkan] [fp32|fp16|bf16]
 * fp32 must match every case; fp16 and bf16 report how many sequences still match
 * exactly and fails only on errors (its tolerances are per stage, in
 * test-golden-stages). */
#include "backend.h"
#include "florence2.h"
#include "net.h"
#include "result.h"
#include "tasks.h"
#include "image.h"
#include "test-common.h"

#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  guint ids_ok, ids_total;
  guint text_ok, result_ok;
  guint failures;
} Tally;

static gboolean
ids_equal (const GArray *got, JsonArray *want, GString *why)
{
  guint n = json_array_get_length (want);

  if (got->len != n) {
    g_string_printf (why, "%u ids, expected %u", got->len, n);
  }
  for (guint i = 0; i < MIN (n, got->len); i++) {
    gint64 w = json_array_get_int_element (want, i);
    if (g_array_index (got, gint32, i) != w) {
      g_string_printf (why, "id %u is %d, expected %" G_GINT64_FORMAT
          " (lengths %u / %u)", i, g_array_index (got, gint32, i), w, got->len, n);
      return FALSE;
    }
  }
  return got->len == n;
}

static void
run_case (Florence2Model *model, JsonObject *c, const char *which, guint beams,
    const F2Image *image, gboolean strict, Tally *tally)
{
  JsonObject *want = json_object_get_object_member (c, which);
  const char *case_id = json_object_get_string_member (c, "case_id");
  const char *text_input = json_object_get_null_member (c, "text_input") ? NULL :
      json_object_get_string_member (c, "text_input");
  Florence2RunParams params = florence2_run_default_params ();
  Florence2Output *out;
  GError *error = NULL;
  GString *why = g_string_new (NULL);
  gboolean ids_ok, text_ok, result_ok;
  JsonNode *result;

  params.task = f2_task_lookup (json_object_get_string_member (c, "task"))->task;
  params.text = text_input;
  params.num_beams = beams;
  params.max_new_tokens = 40;
  out = florence2_model_run (model, image, &params, &error);
  if (out == NULL) {
    g_print ("FAIL %s %s: %s\n", case_id, which, error->message);
    g_clear_error (&error);
    tally->failures++;
    g_string_free (why, TRUE);
    return;
  }

  tally->ids_total++;
  ids_ok = ids_equal (out->generated_ids,
      json_object_get_array_member (want, "sequence"), why);
  tally->ids_ok += ids_ok;
  if (!ids_ok)
    g_print ("     %s %s: %s\n", case_id, which, why->str);

  text_ok = g_strcmp0 (out->text, json_object_get_string_member (want, "text")) == 0;
  tally->text_ok += text_ok;

  result = f2_result_to_json (out->result);
  g_string_truncate (why, 0);
  /* the reference's result is recorded as {"ok": result} */
  result_ok = f2_test_json_equal (result, json_object_get_member (
          json_object_get_object_member (want, "post_process"), "ok"), "$", FALSE, why);
  tally->result_ok += result_ok;
  if (ids_ok && !result_ok)
    g_print ("     %s %s: result differs: %s\n", case_id, which, why->str);
  json_node_unref (result);

  g_print ("%s %s %-8s ids %s, text %s, result %s (%u steps, %.0f ms)\n",
      ids_ok && text_ok && result_ok ? "ok  " : strict ? "FAIL" : "diff",
      case_id, which, ids_ok ? "equal" : "DIFFER", text_ok ? "equal" : "DIFFERS",
      result_ok ? "equal" : "DIFFERS", out->decoder_steps, out->timings.total_ms);
  if (strict && !(ids_ok && text_ok && result_ok))
    tally->failures++;
  florence2_output_free (out);
  g_string_free (why, TRUE);
}

int
main (int argc, char **argv)
{
  const char *device = argc > 1 ? argv[1] : "reference";
  const char *precision = argc > 2 ? argv[2] : "fp32";
  Florence2Model *model;
  GError *error = NULL;
  JsonNode *index;
  JsonArray *cases;
  Tally tally = { 0 };
  gboolean strict = strcmp (precision, "fp32") == 0;
  F2Precision wanted;

  f2_test_require_golden_dir ();
  if (!f2_precision_parse (precision, &wanted, &error)) {
    g_print ("FAIL: %s\n", error->message);
    return 1;
  }
  model = f2_test_load_tiny_model (device, wanted);
  g_print ("# %s, %s\n", florence2_model_device_name (model), precision);

  {
    char *path = f2_test_golden_path ("tiny/index.json");
    index = f2_test_load_json (path);
    g_free (path);
  }
  cases = json_object_get_array_member (json_node_get_object (index), "cases");
  for (guint i = 0; i < json_array_get_length (cases); i++) {
    JsonObject *entry = json_array_get_object_element (cases, i);
    char *json_rel = g_build_filename ("tiny", json_object_get_string_member (entry, "json"), NULL);
    char *png_rel = g_build_filename ("tiny", json_object_get_string_member (entry, "image"), NULL);
    char *json_path = f2_test_golden_path (json_rel);
    JsonNode *case_node = f2_test_load_json (json_path);
    JsonObject *c = json_node_get_object (case_node);
    char *png = f2_test_golden_path (png_rel);
    guint8 *rgb = NULL;
    F2Image image;

    if (!f2_image_load (png, &image, &rgb, &error))
      g_error ("%s", error->message);
    json_object_set_string_member (c, "case_id",
        json_object_get_string_member (entry, "case_id"));
    run_case (model, c, "greedy", 1, &image, strict, &tally);
    run_case (model, c, "beam", 3, &image, strict, &tally);
    g_free (rgb);
    g_free (png);
    g_free (json_path);
    g_free (json_rel);
    g_free (png_rel);
    json_node_unref (case_node);
  }

  g_print ("# %s %s: %u/%u id sequences identical, %u texts, %u results; %u failures\n",
      device, precision, tally.ids_ok, tally.ids_total, tally.text_ok,
      tally.result_ok, tally.failures);
  json_node_unref (index);
  florence2_model_unref (model);
  return tally.failures ? 1 : 0;
}
