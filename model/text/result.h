/* The result of one Florence-2 task on one image, after post-processing:
 * a caption/OCR text, or a list of labelled regions (boxes, OCR quads,
 * polygons) in image pixels. Plain C structures that the GStreamer metadata,
 * the overlay and the CLI read directly.
 *
 * f2_result_to_json() gives the same dictionary that the reference
 * processor's post_process_generation() returns, e.g.
 *   {"<OD>": {"bboxes": [[x1, y1, x2, y2], ...], "labels": [...]}}
 *   {"<CAPTION>": "A green car."}
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "tasks.h"

G_BEGIN_DECLS

/* One polygon: n_coords floats x0, y0, x1, y1, ... in image pixels.
 * n_coords is even and may be 0 (the reference keeps empty polygons). */
typedef struct {
  guint n_coords;
  float *coords;
} F2Polygon;

/* What a region's geometry is, as the reference reports it. */
typedef enum {
  F2_REGION_BBOX,      /* bbox[] is the box the model gave */
  F2_REGION_QUAD,      /* quad[] is an OCR quadrilateral */
  F2_REGION_POLYGONS,  /* polygons[] is the mask outline (one or more parts) */
} F2RegionShape;

typedef struct {
  /* UTF-8 label; "" where the task gives none (region proposals,
   * segmentation). Never NULL. */
  char *label;
  F2RegionShape shape;
  /* x1, y1, x2, y2 in image pixels (float32, as the reference computes
   * them). For QUAD and POLYGONS regions this is the box enclosing their
   * points (all zero when there are none); it is not part of the JSON. */
  float bbox[4];
  /* F2_REGION_QUAD: x1, y1, ..., x4, y4 in image pixels. */
  float quad[8];
  /* F2_REGION_POLYGONS: n_polygons polygons. */
  guint n_polygons;
  F2Polygon *polygons;
  /* Confidence in [0, 1] from the beam transition scores, where the task
   * defines one (box tasks given scores); has_score tells. */
  gboolean has_score;
  double score;
} F2Region;

typedef struct {
  char *task;                 /* task token as given, e.g. "<OD>" */
  F2PostProcessType type;     /* how the answer was parsed */
  int image_width;
  int image_height;
  /* F2_POSTPROCESS_PURE_TEXT: the answer text; NULL for the other types. */
  char *text;
  guint n_regions;
  F2Region *regions;
} F2Result;

void f2_result_free (F2Result *result);
F2Result *f2_result_copy (const F2Result *result);

/* The reference's post_process_generation() dictionary for @result:
 * {task: text} or {task: {"bboxes", "labels"[, "scores"]}}, {"quad_boxes",
 * "labels"}, {"polygons", "labels"} or {"bboxes", "bboxes_labels",
 * "polygons", "polygons_labels"}, keys in the reference's order. Numbers are
 * doubles holding the float32 values exactly. json_node_unref() it. */
JsonNode *f2_result_to_json (const F2Result *result);

/* The same as a JSON string (doubles written so that they parse back to the
 * same value). g_free() the result. */
char *f2_result_to_json_string (const F2Result *result, gboolean pretty);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (F2Result, f2_result_free)

G_END_DECLS
