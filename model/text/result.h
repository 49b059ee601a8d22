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

#include "florence2.h"
#include "tasks.h"

G_BEGIN_DECLS

/* The public result types under the library's internal names */
typedef Florence2Polygon F2Polygon;
typedef Florence2RegionShape F2RegionShape;
#define F2_REGION_BBOX FLORENCE2_REGION_BBOX
#define F2_REGION_QUAD FLORENCE2_REGION_QUAD
#define F2_REGION_POLYGONS FLORENCE2_REGION_POLYGONS
typedef Florence2Region F2Region;
typedef Florence2Result F2Result;

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
