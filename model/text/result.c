/* F2Result: freeing, copying and the reference's JSON layout. */
#include "result.h"

#include <math.h>
#include <string.h>

static void
region_clear (F2Region *region)
{
  g_free (region->label);
  for (guint i = 0; i < region->n_polygons; i++)
    g_free (region->polygons[i].coords);
  g_free (region->polygons);
}

void
f2_result_free (F2Result *result)
{
  if (result == NULL)
    return;
  for (guint i = 0; i < result->n_regions; i++)
    region_clear (&result->regions[i]);
  g_free (result->regions);
  g_free (result->task);
  g_free (result->text);
  g_free (result);
}

F2Result *
f2_result_copy (const F2Result *result)
{
  F2Result *copy;

  g_return_val_if_fail (result != NULL, NULL);

  copy = g_memdup2 (result, sizeof *result);
  copy->task = g_strdup (result->task);
  copy->text = g_strdup (result->text);
  copy->regions = g_memdup2 (result->regions,
      sizeof (F2Region) * result->n_regions);
  for (guint i = 0; i < result->n_regions; i++) {
    const F2Region *from = &result->regions[i];
    F2Region *to = &copy->regions[i];

    to->label = g_strdup (from->label);
    to->polygons = g_memdup2 (from->polygons,
        sizeof (F2Polygon) * from->n_polygons);
    for (guint j = 0; j < from->n_polygons; j++)
      to->polygons[j].coords = g_memdup2 (from->polygons[j].coords,
          sizeof (float) * from->polygons[j].n_coords);
  }
  return copy;
}

/* JSON has no infinities or NaN: those become null. */
static void
add_number (JsonArray *array, double value)
{
  if (isfinite (value))
    json_array_add_double_element (array, value);
  else
    json_array_add_null_element (array);
}

static JsonArray *
float_array (const float *values, guint n)
{
  JsonArray *array = json_array_sized_new (n);

  for (guint i = 0; i < n; i++)
    add_number (array, values[i]);
  return array;
}

static JsonArray *
polygons_array (const F2Region *region)
{
  JsonArray *array = json_array_sized_new (region->n_polygons);

  for (guint i = 0; i < region->n_polygons; i++)
    json_array_add_array_element (array,
        float_array (region->polygons[i].coords,
            region->polygons[i].n_coords));
  return array;
}

/* {"bboxes": [...], "labels": [...]} (+ "scores" when the first region has
 * one, as the reference decides it). */
static JsonObject *
boxes_object (const F2Result *result, gboolean with_scores)
{
  JsonObject *object = json_object_new ();
  JsonArray *bboxes = json_array_new ();
  JsonArray *labels = json_array_new ();

  for (guint i = 0; i < result->n_regions; i++) {
    json_array_add_array_element (bboxes,
        float_array (result->regions[i].bbox, 4));
    json_array_add_string_element (labels, result->regions[i].label);
  }
  json_object_set_array_member (object, "bboxes", bboxes);
  json_object_set_array_member (object, "labels", labels);

  if (with_scores && result->n_regions > 0 && result->regions[0].has_score) {
    JsonArray *scores = json_array_new ();

    for (guint i = 0; i < result->n_regions; i++)
      add_number (scores, result->regions[i].score);
    json_object_set_array_member (object, "scores", scores);
  }
  return object;
}

static JsonObject *
quads_object (const F2Result *result)
{
  JsonObject *object = json_object_new ();
  JsonArray *quads = json_array_new ();
  JsonArray *labels = json_array_new ();

  for (guint i = 0; i < result->n_regions; i++) {
    json_array_add_array_element (quads,
        float_array (result->regions[i].quad, 8));
    json_array_add_string_element (labels, result->regions[i].label);
  }
  json_object_set_array_member (object, "quad_boxes", quads);
  json_object_set_array_member (object, "labels", labels);
  return object;
}

static JsonObject *
polygons_object (const F2Result *result)
{
  JsonObject *object = json_object_new ();
  JsonArray *polygons = json_array_new ();
  JsonArray *labels = json_array_new ();

  for (guint i = 0; i < result->n_regions; i++) {
    json_array_add_array_element (polygons,
        polygons_array (&result->regions[i]));
    json_array_add_string_element (labels, result->regions[i].label);
  }
  json_object_set_array_member (object, "polygons", polygons);
  json_object_set_array_member (object, "labels", labels);
  return object;
}

/* Open-vocabulary detection: boxes and polygons in separate lists. */
static JsonObject *
boxes_or_polygons_object (const F2Result *result)
{
  JsonObject *object = json_object_new ();
  JsonArray *bboxes = json_array_new ();
  JsonArray *bboxes_labels = json_array_new ();
  JsonArray *polygons = json_array_new ();
  JsonArray *polygons_labels = json_array_new ();

  for (guint i = 0; i < result->n_regions; i++) {
    const F2Region *region = &result->regions[i];

    if (region->shape == F2_REGION_POLYGONS) {
      json_array_add_array_element (polygons, polygons_array (region));
      json_array_add_string_element (polygons_labels, region->label);
    } else {
      json_array_add_array_element (bboxes, float_array (region->bbox, 4));
      json_array_add_string_element (bboxes_labels, region->label);
    }
  }
  json_object_set_array_member (object, "bboxes", bboxes);
  json_object_set_array_member (object, "bboxes_labels", bboxes_labels);
  json_object_set_array_member (object, "polygons", polygons);
  json_object_set_array_member (object, "polygons_labels", polygons_labels);
  return object;
}

JsonNode *
f2_result_to_json (const F2Result *result)
{
  JsonObject *root;
  JsonNode *node;

  g_return_val_if_fail (result != NULL, NULL);

  root = json_object_new ();
  switch (result->type) {
    case F2_POSTPROCESS_PURE_TEXT:
      json_object_set_string_member (root, result->task,
          result->text ? result->text : "");
      break;
    case F2_POSTPROCESS_OCR:
      json_object_set_object_member (root, result->task,
          quads_object (result));
      break;
    case F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES:
    case F2_POSTPROCESS_BBOXES:
      json_object_set_object_member (root, result->task,
          boxes_object (result, TRUE));
      break;
    case F2_POSTPROCESS_PHRASE_GROUNDING:
      json_object_set_object_member (root, result->task,
          boxes_object (result, FALSE));
      break;
    case F2_POSTPROCESS_POLYGONS:
      json_object_set_object_member (root, result->task,
          polygons_object (result));
      break;
    case F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS:
      json_object_set_object_member (root, result->task,
          boxes_or_polygons_object (result));
      break;
  }

  node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, root);
  return node;
}

char *
f2_result_to_json_string (const F2Result *result, gboolean pretty)
{
  g_autoptr (JsonNode) node = NULL;

  g_return_val_if_fail (result != NULL, NULL);

  node = f2_result_to_json (result);
  return json_to_string (node, pretty);
}
