/* The Florence-2 network on a backend: an F2NetModel holds the weights,
 * uploaded once and shared read-only by any number of streams; an F2Net is
 * one stream's state over it (working buffers sized once for the maximum
 * lengths, the KV cache, programs recorded once per shape and replayed).
 * Streams run concurrently; one F2Net is used by one thread at a time.
 *
 * A frame goes through three calls:
 *   f2_net_set_image()   preprocessing, DaViT, image projection (577 tokens)
 *   f2_net_encode()      prompt embeddings merged after the image tokens,
 *                        BART encoder, cross-attention K/V of every decoder
 *                        layer (once per frame)
 *   f2_net_step()        one decoder step for 1..max_beams rows with the KV
 *                        cache; logits reduced on the device, only ids and
 *                        scores come back
 * Generation (generate.c) drives f2_net_step().
 */
#pragma once

#include "backend.h"
#include "florence2.h"
#include "config.h"
#include "ops.h"
#include "weights.h"

#include <glib.h>

G_BEGIN_DECLS

/* The most frames one F2Net decodes together */
#define F2_NET_MAX_SLOTS FLORENCE2_MAX_BATCH
/* The most images of a batch that go through the vision tower at once:
 * each costs its own vision working memory (about 130 MB at 768x768). */
#define F2_NET_VISION_BATCH 4

typedef struct _F2NetModel F2NetModel;
typedef struct _F2Net F2Net;

/* The largest inputs, as the public Florence2Limits */
typedef Florence2Limits F2NetLimits;

F2NetLimits f2_net_default_limits (void);

/* Checks @config and @limits, uploads @weights (which may be closed
 * afterwards). The backend must outlive the model. */
F2NetModel *f2_net_model_new (F2Backend *backend, const F2Config *config,
    F2Weights *weights, const F2NetLimits *limits, GError **error);
void f2_net_model_free (F2NetModel *model);

/* A stream's state; the model must outlive it. */
F2Net *f2_net_new (F2NetModel *model, GError **error);
/* State for @slots frames decoded together (f2_net_step_batch()); f2_net_new
 * is one slot. */
F2Net *f2_net_new_batch (F2NetModel *model, guint slots, GError **error);
guint f2_net_slots (F2Net *net);
void f2_net_free (F2Net *net);

F2Backend *f2_net_backend (F2Net *net);

/* Run preprocessing and the vision tower on one image. @data holds the frame
 * in @format (plane offsets and strides in bytes, as F2ResampleHParams). */
typedef Florence2Image F2Image;

gboolean f2_net_set_image (F2Net *net, const F2Image *image, GError **error);

/* Images at once through the vision tower and the encoder: min (slots,
 * F2_NET_VISION_BATCH) where the backend batches images, else 1 */
guint f2_net_vision_batch (F2Net *net);
/* Preprocess @n images (1 .. f2_net_vision_batch()) and run the vision tower
 * on them together. An image that is not valid fails alone, with its error
 * in @errors[i] (NULL for the others), and the others go on. FALSE with
 * @error when the device fails (every image failed). */
gboolean f2_net_set_images (F2Net *net, guint n, const F2Image *images,
    GError **errors, GError **error);

/* Encode the prompt (token ids incl. <s> ... </s>) with the current image
 * (into slot 0, or into @slot for a batch). */
gboolean f2_net_encode (F2Net *net, const gint32 *ids, guint n_ids, GError **error);
gboolean f2_net_encode_slot (F2Net *net, guint slot, const gint32 *ids,
    guint n_ids, GError **error);

/* A frame's prompt for the encoder: with image @image of the last
 * f2_net_set_images() (0 after f2_net_set_image()), into @slot. */
typedef struct {
  guint image, slot;
  const gint32 *ids;
  guint n_ids;
} F2NetPrompt;

/* The prompts of @n frames (1 .. f2_net_vision_batch(); 1 after
 * f2_net_set_image()) through the encoder together. */
gboolean f2_net_encode_images (F2Net *net, guint n, const F2NetPrompt *prompts,
    GError **error);

/* One decoder step.
 * rows: beams being decoded (1 for greedy); tokens[r]: the token fed to row r
 * at decoder position @position (0 = the decoder start token); parents[r]:
 * the row whose cache row r continues (beam reordering; NULL = identity);
 * banned: [rows][max_banned] ids to exclude, -1 = unused (NULL = none).
 * Output, per row: with k == 0 the argmax of the raw logits in out_ids[r];
 * with k > 0 the k best of log_softmax(logits) (excluding banned) in
 * out_ids[r*k..] and out_scores[r*k..], best first. */
typedef struct {
  guint rows;
  const gint32 *tokens;
  const gint32 *parents;
  guint position;
  const gint32 *banned;
  guint k;
  gint32 *out_ids;
  float *out_scores;
} F2Step;

gboolean f2_net_step (F2Net *net, const F2Step *step, GError **error);

/* One decoder step for several encoded frames at the same position: each
 * group is a frame's slot and its step, with parents among that frame's
 * rows of the last step. A frame may leave (be absent from later steps);
 * it may not come back until its slot is encoded again. */
typedef struct {
  guint slot;
  F2Step step;
} F2StepGroup;

gboolean f2_net_step_batch (F2Net *net, guint n_groups, const F2StepGroup *groups,
    GError **error);
/* The logits of decoder row @row (0.. rows of the last step) [V]. */
gboolean f2_net_read_logits (F2Net *net, guint row, float *out, GError **error);

/* Intermediate tensors of the last frame, for --dump and the golden tests
 * (names as in the golden files). Row counts depend on the prompt. */
typedef enum {
  F2_NET_PIXEL_VALUES,          /* [3][768][768] */
  F2_NET_VISION_OUT,            /* vision_tower_out [576][C4] */
  F2_NET_IMAGE_FEATURES,        /* [577][P] */
  F2_NET_INPUTS_EMBEDS,         /* [577+L][P] */
  F2_NET_ENCODER_OUT,           /* encoder_last_hidden_state [577+L][P] */
  F2_NET_LOGITS,                /* logits of the last step, row 0 [V] */
} F2NetTensor;

/* Number of floats of @which (0 when not computed yet) and a read into @out. */
guint64 f2_net_tensor_size (F2Net *net, F2NetTensor which);
gboolean f2_net_read_tensor (F2Net *net, F2NetTensor which, float *out, GError **error);
const char *f2_net_tensor_name (F2NetTensor which);

/* Per-stage device times of the last frame (vision, encoder, decoder steps),
 * dispatches and submits; printed by --profile and the benchmark. */
typedef struct {
  double preprocess_ms, vision_ms, encoder_ms, decoder_ms;
  guint decoder_steps;
  guint dispatches, submits;
  double flops;                 /* floating-point operations of the ops run */
} F2NetProfile;

void f2_net_get_profile (F2Net *net, F2NetProfile *profile);
void f2_net_reset_profile (F2Net *net);

/* Device time per named stage of every program run since the last reset,
 * summed over runs: the programs' stages ("encoder layers", "lm head", ..),
 * or the op kinds ("matmul", "attention", ..) on a Vulkan backend created
 * with F2_VULKAN_PROFILE_OPS=1. Empty where the backend has no timestamps. */
typedef struct {
  const char *name;
  double ms;
  guint intervals;              /* how many timed intervals were summed */
} F2NetStageTime;

/* F2NetStageTime, most time first; free with g_array_unref(). */
GArray *f2_net_get_stage_times (F2Net *net);

#define F2_NET_STAGES 4             /* DaViT stages */

/* Keep a copy of each vision stage's output, after its patch embedding and
 * after its blocks (for the golden tests and debugging; costs memory and a
 * few copies per frame). Call before f2_net_set_image(). */
gboolean f2_net_keep_vision_stages (F2Net *net, GError **error);
/* Floats of stage @stage (0..3): [grid*grid][channels], token = row*grid+col;
 * 0 past the last stage. @grid and @channels may be NULL. */
guint64 f2_net_vision_stage_size (F2Net *net, guint stage, guint32 *grid,
    guint32 *channels);
gboolean f2_net_read_vision_stage (F2Net *net, guint stage,
    gboolean after_blocks, float *out, GError **error);

G_END_DECLS
