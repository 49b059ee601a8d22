/* libflorence2: run Microsoft's Florence-2 on images, on Vulkan, on the CPU
 * (oneDNN) or on the plain-C reference.
 *
 *   Florence2ModelParams mp = florence2_model_default_params ();
 *   Florence2Model *model = florence2_model_new ("Florence-2-base", &mp, &error);
 *   Florence2RunParams rp = florence2_run_default_params ();
 *   rp.task = FLORENCE2_TASK_OD;
 *   Florence2Output *out = florence2_model_run (model, &image, &rp, &error);
 *   (or, per stream: florence2_context_new (model, &error), then
 *   florence2_context_run () for each frame)
 *   ... out->result (boxes, labels, polygons, text) ...
 *   florence2_output_free (out);
 *   florence2_model_unref (model);
 *
 * A model (configuration, tokenizer, weights on the device) is reference
 * counted, read-only once loaded, and shared by any number of threads and
 * streams. Each stream runs on a context of its own (working memory, KV
 * cache, recorded programs): contexts of one model run at the same time.
 * florence2_model_run() takes a context for the call and gives it back.
 * Nothing here aborts the process; every failure is a GError that says what
 * went wrong and what to do.
 */
#pragma once

/* The public API stands alone: GLib and json-glib, nothing of the library's
 * internals (those are in the private headers of core/, io/, text/, net/). */
#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Numeric precision of a model's weights and activations. */
typedef enum {
  FLORENCE2_PRECISION_FP16,     /* fp16 storage, fp32 accumulation (Vulkan) */
  FLORENCE2_PRECISION_FP32,
  FLORENCE2_PRECISION_BF16,     /* bf16 weights and matmul inputs, fp32 accumulation and activations (cpu) */
  FLORENCE2_PRECISION_AUTO,     /* the backend's default: fp16 on Vulkan, fp32 on cpu */
} Florence2Precision;

/* The Florence-2 tasks (the task tokens "<OD>", "<CAPTION>", ...). */
typedef enum {
  FLORENCE2_TASK_OD,
  FLORENCE2_TASK_CAPTION,
  FLORENCE2_TASK_DETAILED_CAPTION,
  FLORENCE2_TASK_MORE_DETAILED_CAPTION,
  FLORENCE2_TASK_DENSE_REGION_CAPTION,
  FLORENCE2_TASK_REGION_PROPOSAL,
  FLORENCE2_TASK_CAPTION_TO_PHRASE_GROUNDING,
  FLORENCE2_TASK_REFERRING_EXPRESSION_SEGMENTATION,
  FLORENCE2_TASK_REGION_TO_SEGMENTATION,
  FLORENCE2_TASK_OPEN_VOCABULARY_DETECTION,
  FLORENCE2_TASK_REGION_TO_CATEGORY,
  FLORENCE2_TASK_REGION_TO_DESCRIPTION,
  FLORENCE2_TASK_REGION_TO_OCR,
  FLORENCE2_TASK_OCR,
  FLORENCE2_TASK_OCR_WITH_REGION,
  FLORENCE2_TASK_COUNT
} Florence2Task;

/* Pixel formats of an input frame (GStreamer's names). */
typedef enum {
  FLORENCE2_PIXEL_RGB,
  FLORENCE2_PIXEL_RGBX,
  FLORENCE2_PIXEL_BGRX,
  FLORENCE2_PIXEL_RGBA,
  FLORENCE2_PIXEL_BGRA,
  FLORENCE2_PIXEL_NV12,
  FLORENCE2_PIXEL_I420,
} Florence2PixelFormat;

/* One frame: @data holds it in @format, plane offsets and strides in bytes. */
typedef struct {
  Florence2PixelFormat format;
  guint32 width, height;
  guint32 stride[3], plane_offset[3];
  const guint8 *data;
  gsize size;
  /* YUV only: the colour matrix; FALSE = BT.601 */
  gboolean bt709;
} Florence2Image;

/* The largest inputs a model is sized for (its working memory is allocated
 * once, at load, for these). */
typedef struct {
  guint max_prompt_tokens;      /* longest tokenized prompt, incl. <s> </s> (default 256) */
  guint max_decoder_tokens;     /* longest generated sequence incl. the start token (default 1025) */
  guint max_beams;              /* default 3 */
  guint max_banned;             /* banned ids per row per step (no_repeat_ngram), default 64 */
  guint max_image_width, max_image_height;  /* largest input frame (default 8192 x 8192) */
} Florence2Limits;

/* How the generated text is turned into a result (the reference's
 * tasks_answer_post_processing_type). */
typedef enum {
  FLORENCE2_POSTPROCESS_PURE_TEXT,
  FLORENCE2_POSTPROCESS_OCR,
  FLORENCE2_POSTPROCESS_DESCRIPTION_WITH_BBOXES,
  FLORENCE2_POSTPROCESS_PHRASE_GROUNDING,
  FLORENCE2_POSTPROCESS_POLYGONS,
  FLORENCE2_POSTPROCESS_DESCRIPTION_WITH_BBOXES_OR_POLYGONS,
  FLORENCE2_POSTPROCESS_BBOXES,
} Florence2PostProcessType;

/* One polygon: n_coords floats x0, y0, x1, y1, ... in image pixels.
 * n_coords is even and may be 0 (the reference keeps empty polygons). */
typedef struct {
  guint n_coords;
  float *coords;
} Florence2Polygon;

/* What a region's geometry is, as the reference reports it. */
typedef enum {
  FLORENCE2_REGION_BBOX,        /* bbox[] is the box the model gave */
  FLORENCE2_REGION_QUAD,        /* quad[] is an OCR quadrilateral */
  FLORENCE2_REGION_POLYGONS,    /* polygons[] is the mask outline (one or more parts) */
} Florence2RegionShape;

typedef struct {
  /* UTF-8 label; "" where the task gives none (region proposals,
   * segmentation). Never NULL. */
  char *label;
  Florence2RegionShape shape;
  /* x1, y1, x2, y2 in image pixels (float32, as the reference computes
   * them). For QUAD and POLYGONS regions this is the box enclosing their
   * points (all zero when there are none); it is not part of the JSON. */
  float bbox[4];
  /* FLORENCE2_REGION_QUAD: x1, y1, ..., x4, y4 in image pixels. */
  float quad[8];
  /* FLORENCE2_REGION_POLYGONS: n_polygons polygons. */
  guint n_polygons;
  Florence2Polygon *polygons;
  /* Confidence in [0, 1] from the beam transition scores, where the task
   * defines one (box tasks given scores); has_score tells. */
  gboolean has_score;
  double score;
} Florence2Region;

/* The result of one task on one image, after post-processing: a caption or
 * OCR text, or a list of labelled regions in image pixels. */
typedef struct {
  char *task;                   /* task token as given, e.g. "<OD>" */
  Florence2PostProcessType type;  /* how the answer was parsed */
  int image_width;
  int image_height;
  /* FLORENCE2_POSTPROCESS_PURE_TEXT: the answer text; NULL for the other types. */
  char *text;
  guint n_regions;
  Florence2Region *regions;
} Florence2Result;

typedef struct _Florence2Model Florence2Model;

typedef struct {
  const char *device;           /* NULL or "auto": the first GPU, else "cpu"; "cpu" (oneDNN),
                                 * "reference" (plain C), or a Vulkan device index or name */
  Florence2Precision precision; /* AUTO: the backend's default (fp16 on Vulkan, fp32 on cpu) */
  guint threads;                /* cpu backend: 0 = one per core */
  Florence2Limits limits;
} Florence2ModelParams;

Florence2ModelParams florence2_model_default_params (void);

Florence2Model *florence2_model_new (const char *model_dir,
    const Florence2ModelParams *params, GError **error);
Florence2Model *florence2_model_ref (Florence2Model *model);
void florence2_model_unref (Florence2Model *model);

const char *florence2_model_dir (Florence2Model *model);
const char *florence2_model_device_name (Florence2Model *model);
Florence2Precision florence2_model_precision (Florence2Model *model);

typedef struct {
  Florence2Task task;
  const char *text;             /* the task's input: a phrase, or a <loc_..> region; NULL if none */
  guint num_beams;              /* default: the model's (3) */
  guint max_new_tokens;         /* default 1024 */
  /* benchmarks: generate exactly this many tokens (no EOS stop); 0 = off */
  guint forced_length;
  /* debugging: write the intermediate tensors (pixel_values,
   * vision_tower_out, image_features, inputs_embeds,
   * encoder_last_hidden_state, decoder_logits_step0: the golden files'
   * names) into this safetensors file; NULL = off */
  const char *dump_path;
} Florence2RunParams;

Florence2RunParams florence2_run_default_params (void);

typedef struct {
  double preprocess_ms, vision_ms, encoder_ms, decoder_ms, postprocess_ms, total_ms;
} Florence2Timings;

typedef struct {
  Florence2Task task;
  char *prompt;                 /* the prompt text after task substitution */
  GArray *input_ids;            /* gint32 */
  GArray *generated_ids;        /* gint32: the full sequence, decoder start token first */
  GArray *token_scores;         /* float per generated token after the start (beam search) */
  float sequence_score;
  char *text;                   /* decoded, special tokens kept */
  Florence2Result *result;      /* post-processed, in image pixels */
  int image_width, image_height;
  guint decoder_steps;
  Florence2Timings timings;
} Florence2Output;

/* Run one task on one image, on a context taken for the call. */
Florence2Output *florence2_model_run (Florence2Model *model,
    const Florence2Image *image, const Florence2RunParams *params, GError **error);

/* One stream's state on a model: its working memory, KV cache and recorded
 * programs. A context is used by one thread at a time; contexts of one
 * model run concurrently. It holds a reference on its model. When freed,
 * its memory stays with the model and is reused by the next context, so a
 * model holds as many as were in use at once, until it is freed. */
typedef struct _Florence2Context Florence2Context;

Florence2Context *florence2_context_new (Florence2Model *model, GError **error);
void florence2_context_free (Florence2Context *context);
Florence2Model *florence2_context_model (Florence2Context *context);
/* Run one task on one image on @context. */
Florence2Output *florence2_context_run (Florence2Context *context,
    const Florence2Image *image, const Florence2RunParams *params, GError **error);
void florence2_output_free (Florence2Output *output);

/* Batching: several frames in one run. Each frame has its own image, task,
 * prompt, beams and length. The vision tower and the encoder run frame by
 * frame; decoding advances every frame's sequences (times their beams) in
 * one decoder step per position, so each decoder weight is read once per
 * step for the whole batch. A frame whose sequence ends leaves the batch.
 * In fp32 a frame's ids, text and result are the same as in a single run. */
#define FLORENCE2_MAX_BATCH 16

/* A context for batches of up to @max_batch frames (1..FLORENCE2_MAX_BATCH).
 * Its decoder memory grows with @max_batch * max_beams rows. */
Florence2Context *florence2_context_new_batch (Florence2Model *model,
    guint max_batch, GError **error);
guint florence2_context_max_batch (Florence2Context *context);

/* Runs @n_frames frames (images[i] with params[i]) as one batch. Frame i's
 * output goes to outputs[i], or its error to errors[i] (both arrays of
 * @n_frames, set to NULL first); a frame's bad input fails that frame
 * only. Returns FALSE with @error when the batch cannot run at all (more
 * frames than the context takes, or the device failed: then every frame
 * failed). */
gboolean florence2_context_run_batch (Florence2Context *context,
    guint n_frames, const Florence2Image *images,
    const Florence2RunParams *params, Florence2Output **outputs,
    GError **errors, GError **error);

/* How florence2_model_run_batched() gathers frames. */
typedef struct {
  guint batch_size;             /* frames per batch, 1..FLORENCE2_MAX_BATCH (1 = no batching) */
  guint64 batch_timeout_ns;     /* how long a frame waits for the batch to fill */
} Florence2BatchParams;

/* Runs one frame through the model's batch scheduler and waits for its
 * output; call it from any number of threads (one per frame in flight:
 * one per camera, or several to batch a camera's queued frames). Frames of
 * all callers are gathered FIFO into batches: a batch starts when it holds
 * as many frames as the largest batch_size among them, or when its oldest
 * frame has waited its batch_timeout_ns (counted from the end of the
 * previous batch for a frame that queued while it ran). Each caller gets its output as
 * soon as its own sequence ends. The scheduler's decoder memory is sized
 * for the largest batch_size ever asked of the model. */
Florence2Output *florence2_model_run_batched (Florence2Model *model,
    const Florence2Image *image, const Florence2RunParams *params,
    const Florence2BatchParams *batch, GError **error);

/* Makes the batch scheduler's working memory ready for batches of
 * @batch_size frames now (a florence2 element does so when it starts), so
 * that the first such batch does not pay for it and a lack of memory shows
 * here. Waits for the running batch, if any, and goes before the next
 * one. TRUE at once for @batch_size 1. */
gboolean florence2_model_reserve_batch (Florence2Model *model,
    guint batch_size, GError **error);

/* The JSON object florence2-cli prints for one image: task, prompt,
 * input_ids, generated_ids, text, result, image_size, timings_ms, ... */
JsonNode *florence2_output_to_json (const Florence2Output *output,
    Florence2Model *model);


/* What a failure is about, whichever part of the library raised it, for
 * callers that act on the kind (the florence2 element maps it to
 * GStreamer's error domains). */
typedef enum {
  FLORENCE2_ERROR_KIND_OTHER,
  FLORENCE2_ERROR_KIND_NOT_FOUND,       /* the model folder or one of its files is missing */
  FLORENCE2_ERROR_KIND_MODEL,           /* a model file cannot be read, or does not fit the others */
  FLORENCE2_ERROR_KIND_DEVICE,          /* the compute device cannot be opened, or failed */
  FLORENCE2_ERROR_KIND_OUT_OF_MEMORY,   /* device or host memory ran out */
  FLORENCE2_ERROR_KIND_SETTINGS,        /* parameters out of range, or not for this device or model */
  FLORENCE2_ERROR_KIND_INPUT,           /* an image, task or prompt that cannot be run */
} Florence2ErrorKind;

Florence2ErrorKind florence2_error_kind (const GError *error);

/* Log messages of the library go here (default: GLib's g_log, domain
 * "florence2"). */
typedef void (*Florence2LogFunc) (GLogLevelFlags level, const char *message,
    gpointer user_data);
void florence2_log_set (Florence2LogFunc func, gpointer user_data);

G_END_DECLS
