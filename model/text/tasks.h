/* The Florence-2 task table: task token -> prompt text, what input the task
 * takes, and how its answer is post-processed. One table, in tasks.c. */
#pragma once

#include "florence2.h"

#include <glib.h>

G_BEGIN_DECLS

/* The public Florence2Task under the library's internal names */
typedef Florence2Task F2Task;
#define F2_TASK_OD FLORENCE2_TASK_OD
#define F2_TASK_CAPTION FLORENCE2_TASK_CAPTION
#define F2_TASK_DETAILED_CAPTION FLORENCE2_TASK_DETAILED_CAPTION
#define F2_TASK_MORE_DETAILED_CAPTION FLORENCE2_TASK_MORE_DETAILED_CAPTION
#define F2_TASK_DENSE_REGION_CAPTION FLORENCE2_TASK_DENSE_REGION_CAPTION
#define F2_TASK_REGION_PROPOSAL FLORENCE2_TASK_REGION_PROPOSAL
#define F2_TASK_CAPTION_TO_PHRASE_GROUNDING FLORENCE2_TASK_CAPTION_TO_PHRASE_GROUNDING
#define F2_TASK_REFERRING_EXPRESSION_SEGMENTATION FLORENCE2_TASK_REFERRING_EXPRESSION_SEGMENTATION
#define F2_TASK_REGION_TO_SEGMENTATION FLORENCE2_TASK_REGION_TO_SEGMENTATION
#define F2_TASK_OPEN_VOCABULARY_DETECTION FLORENCE2_TASK_OPEN_VOCABULARY_DETECTION
#define F2_TASK_REGION_TO_CATEGORY FLORENCE2_TASK_REGION_TO_CATEGORY
#define F2_TASK_REGION_TO_DESCRIPTION FLORENCE2_TASK_REGION_TO_DESCRIPTION
#define F2_TASK_REGION_TO_OCR FLORENCE2_TASK_REGION_TO_OCR
#define F2_TASK_OCR FLORENCE2_TASK_OCR
#define F2_TASK_OCR_WITH_REGION FLORENCE2_TASK_OCR_WITH_REGION
#define F2_TASK_COUNT FLORENCE2_TASK_COUNT

/* What a task needs besides the image. */
typedef enum {
  F2_TASK_INPUT_NONE,    /* prompt is fixed */
  F2_TASK_INPUT_TEXT,    /* free text (a phrase, a caption, a category) */
  F2_TASK_INPUT_REGION,  /* a box as four location tokens: <loc_x1><loc_y1><loc_x2><loc_y2> */
} F2TaskInput;

/* How the generated text is turned into a result: the public
 * Florence2PostProcessType */
typedef Florence2PostProcessType F2PostProcessType;
#define F2_POSTPROCESS_PURE_TEXT FLORENCE2_POSTPROCESS_PURE_TEXT
#define F2_POSTPROCESS_OCR FLORENCE2_POSTPROCESS_OCR
#define F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES FLORENCE2_POSTPROCESS_DESCRIPTION_WITH_BBOXES
#define F2_POSTPROCESS_PHRASE_GROUNDING FLORENCE2_POSTPROCESS_PHRASE_GROUNDING
#define F2_POSTPROCESS_POLYGONS FLORENCE2_POSTPROCESS_POLYGONS
#define F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS FLORENCE2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS
#define F2_POSTPROCESS_BBOXES FLORENCE2_POSTPROCESS_BBOXES

typedef struct {
  F2Task task;
  const char *token;          /* "<OD>" */
  const char *nick;           /* "od": lower case with dashes (GEnum nick) */
  const char *prompt;         /* fixed prompt, or a template with "{input}" */
  F2TaskInput input;
  F2PostProcessType postprocess;
} F2TaskInfo;

const F2TaskInfo *f2_task_info (F2Task task);
/* Look up by token ("<OD>") or nick ("od"); NULL when unknown. */
const F2TaskInfo *f2_task_lookup (const char *token_or_nick);

/* The prompt text the processor builds for @task with the user's @text
 * (NULL or "" when the task takes none). Sets a GError that names the problem
 * and the fix when text is given to a task that takes none, is missing where
 * one is needed, or a region is malformed. g_free() the result. */
char *f2_task_build_prompt (F2Task task, const char *text, GError **error);

/* f2_task_lookup() that sets F2_TASK_ERROR_UNKNOWN_TASK (listing the nicks)
 * when the name is unknown. */
const F2TaskInfo *f2_task_find (const char *token_or_nick, GError **error);

/* The reference's name of a post-processing type ("pure_text", "ocr", ...). */
const char *f2_postprocess_type_name (F2PostProcessType type);

/* What the reference processor makes of a raw text argument (task token
 * plus text, or any text): a lone task token becomes its prompt, a token
 * with input its filled template, other text stays as it is. Fails with
 * F2_TASK_ERROR_UNEXPECTED_TEXT where the processor asserts (a task token
 * that takes no input, not alone in the text). g_free() the result. */
char *f2_task_processor_prompt (const char *text, GError **error);

#define F2_TASK_ERROR (f2_task_error_quark ())
GQuark f2_task_error_quark (void);
typedef enum {
  F2_TASK_ERROR_UNKNOWN_TASK,
  F2_TASK_ERROR_UNEXPECTED_TEXT,
  F2_TASK_ERROR_MISSING_TEXT,
  F2_TASK_ERROR_BAD_REGION,
} F2TaskError;

G_END_DECLS
