/* Florence-2 post-processing: the decoded generated text -> an F2Result,
 * exactly as the reference processor's post_process_generation() does it
 * (its regular expressions are reproduced by hand, quirks included: labels
 * such as "loc_4>after" where a phrase starts inside a location token, the
 * "</s>" kept on the first OCR label, non-ASCII characters dropped from box
 * labels, odd polygon coordinates dropped, bins >= 1000 not clamped).
 *
 * Coordinates are (bin + 0.5) * size / 1000 computed in float32, with
 * image_width for x and image_height for y.
 */
#pragma once

#include <glib.h>

#include "result.h"
#include "tasks.h"
#include "tokenizer.h"

G_BEGIN_DECLS

/* Parses the reference's name of a type ("pure_text",
 * "description_with_bboxes", ...; f2_postprocess_type_name() in tasks.h);
 * FALSE when unknown. */
gboolean f2_postprocess_type_from_string (const char *name,
    F2PostProcessType *type);

/* The type the reference uses for @task_token: the task table's, looked up
 * by exact token ("<OD>"), and F2_POSTPROCESS_PURE_TEXT for anything else
 * (nicks and unknown tokens included), as the reference's
 * tasks_answer_post_processing_type.get(task, 'pure_text') does. */
F2PostProcessType f2_postprocess_type_for_task (const char *task_token);

/* Post-processes @text, the generated sequence decoded without skipping
 * special tokens (e.g. "</s><s>car<loc_52><loc_333><loc_932><loc_774></s>"),
 * for task token @task_token, with @type, the post-processing type the task
 * table gives for it. Tokens the table does not know are post-processed as
 * F2_POSTPROCESS_PURE_TEXT, as the reference does; the result is keyed by
 * @task_token either way. Invalid UTF-8 in @text is replaced by U+FFFD.
 *
 * NULL with @error set when the image size is not positive, or a location
 * bin does not fit in 64 bits (where the reference fails too). */
F2Result *f2_postprocess (const char *task_token, F2PostProcessType type,
    const char *text, int image_width, int image_height, GError **error);

/* The reference's sequence path (post_process_generation(sequence=...,
 * transition_beam_score=...)), which gives box tasks
 * (F2_POSTPROCESS_DESCRIPTION_WITH_BBOXES) a score per box: the exp of the
 * mean transition score of the tokens that overlap the box's location
 * tokens.
 *
 * @token_texts: the n_tokens generated tokens after the decoder start
 *   token, each as the reference's decode_with_spans() writes it: special
 *   tokens ("<s>", "<loc_12>") verbatim, any other token byte-level decoded
 *   on its own (invalid UTF-8 -> U+FFFD).
 * @scores: n_tokens transition scores (log-probabilities, beam search's
 *   compute_transition_scores() for those tokens), or NULL for no scores.
 *
 * NULL with @error set as f2_postprocess(), or when a box's location tokens
 * cover no token (the reference divides by zero there). */
F2Result *f2_postprocess_tokens (const char *task_token,
    F2PostProcessType type, const char *const *token_texts,
    const float *scores, gsize n_tokens, int image_width, int image_height,
    GError **error);

/* f2_postprocess_tokens() for a generated sequence: @ids is the whole
 * sequence as generate() returns it (decoder start token first), @scores
 * NULL or its n_ids - 1 transition scores (one per id after the first).
 * The token texts come from @tokenizer. */
F2Result *f2_postprocess_sequence (const char *task_token,
    F2PostProcessType type, F2Tokenizer *tokenizer, const gint32 *ids,
    gsize n_ids, const float *scores, int image_width, int image_height,
    GError **error);

#define F2_POSTPROCESS_ERROR (f2_postprocess_error_quark ())
GQuark f2_postprocess_error_quark (void);
typedef enum {
  F2_POSTPROCESS_ERROR_INVALID_ARGUMENT,  /* bad image size or type */
  F2_POSTPROCESS_ERROR_BAD_LOCATION,      /* <loc_N> with N beyond 64 bits */
  F2_POSTPROCESS_ERROR_NO_SCORE_TOKENS,   /* a box matches no scored token */
} F2PostProcessError;

G_END_DECLS
