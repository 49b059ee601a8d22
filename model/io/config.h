/* config.json and preprocessor_config.json of a Florence-2 model directory,
 * parsed and validated against what this implementation supports. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define F2_CONFIG_ERROR (f2_config_error_quark ())
GQuark f2_config_error_quark (void);

typedef enum {
  F2_CONFIG_ERROR_PARSE,        /* not JSON, wrong types, missing keys */
  F2_CONFIG_ERROR_INVALID,      /* inconsistent values */
  F2_CONFIG_ERROR_UNSUPPORTED,  /* valid, but not what this implementation runs */
} F2ConfigError;

#define F2_VISION_STAGES 4

/* DaViT vision tower (vision_config) */
typedef struct {
  guint patch_size[F2_VISION_STAGES];
  guint patch_stride[F2_VISION_STAGES];
  guint patch_padding[F2_VISION_STAGES];
  gboolean patch_prenorm[F2_VISION_STAGES];
  guint dim_embed[F2_VISION_STAGES];
  guint num_heads[F2_VISION_STAGES];
  guint num_groups[F2_VISION_STAGES];
  guint depths[F2_VISION_STAGES];
  guint window_size;
  guint projection_dim;
  guint mlp_ratio;              /* hidden = mlp_ratio * dim (4, fixed by the model code) */
  guint image_pos_max_embeddings;       /* image_pos_embed.max_pos_embeddings */
  guint temporal_max_embeddings;        /* visual_temporal_embedding.max_temporal_embeddings */
  /* image_feature_source is ["spatial_avg_pool", "temporal_avg_pool"]:
   * the mean-pooled token first, then the grid (validated) */
} F2VisionConfig;

/* BART-like language model (text_config) and its generation settings */
typedef struct {
  guint vocab_size;
  guint d_model;
  guint encoder_layers, decoder_layers;
  guint encoder_attention_heads, decoder_attention_heads;
  guint encoder_ffn_dim, decoder_ffn_dim;
  guint max_position_embeddings;
  char *activation_function;    /* "gelu" (exact, erf) */
  gboolean scale_embedding;     /* embeddings * sqrt(d_model) when TRUE */
  gint32 pad_token_id, bos_token_id, eos_token_id;
  gint32 decoder_start_token_id;
  gint32 forced_bos_token_id, forced_eos_token_id;      /* -1 = none */
  guint no_repeat_ngram_size;   /* 0 = off */
  guint num_beams;
  gboolean early_stopping;
  double length_penalty;        /* default 1.0 */
  guint max_length;             /* default 20 */
} F2TextConfig;

/* preprocessor_config.json (CLIPImageProcessor) */
typedef struct {
  guint width, height;          /* size */
  gboolean do_resize, do_rescale, do_normalize;
  double rescale_factor;        /* default 1/255 */
  double mean[3], std[3];
  guint resample;               /* PIL filter id; 3 = bicubic */
  guint image_seq_length;       /* 577 for 768x768 */
} F2PreprocessConfig;

typedef struct {
  F2VisionConfig vision;
  F2TextConfig text;
  F2PreprocessConfig preprocess;
  char *torch_dtype;            /* informational ("float16", ...), may be NULL */
} F2Config;

/* @model_dir/config.json and @model_dir/preprocessor_config.json. */
F2Config *f2_config_load_dir (const char *model_dir, GError **error);
/* The two files by path; @preprocessor_path may be NULL for the published
 * Florence-2 processor settings. */
F2Config *f2_config_load (const char *config_path,
    const char *preprocessor_path, GError **error);
/* The same from JSON text (for tests and tools); @source names it in errors. */
F2Config *f2_config_load_from_data (const char *config_json,
    const char *preprocessor_json, const char *source, GError **error);
void f2_config_free (F2Config *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (F2Config, f2_config_free)

/* Generation settings of the language model as generate.h's
 * F2GenerateParams (a macro so that this header does not depend on
 * generate.h; use it where generate.h is included). max_new_tokens is the
 * reference's default, max_length - 1 (the start token counts). */
#define f2_config_generate_params(config) ((F2GenerateParams) { \
    .num_beams = (config)->text.num_beams, \
    .max_new_tokens = (config)->text.max_length - 1, \
    .no_repeat_ngram_size = (config)->text.no_repeat_ngram_size, \
    .decoder_start_token_id = (config)->text.decoder_start_token_id, \
    .forced_bos_token_id = (config)->text.forced_bos_token_id, \
    .forced_eos_token_id = (config)->text.forced_eos_token_id, \
    .eos_token_id = (config)->text.eos_token_id, \
    .pad_token_id = (config)->text.pad_token_id, \
    .early_stopping = (config)->text.early_stopping, \
    .length_penalty = (float) (config)->text.length_penalty, \
  })

/* Number of image tokens the language model receives (1 + grid^2). */
guint f2_config_image_tokens (const F2Config *config);

G_END_DECLS
