/* The tensors a Florence-2 checkpoint holds for a given config, and a writer
 * of random checkpoints with exactly those names and shapes (for tests and
 * benchmarks without the real weights). */
#pragma once

#include "config.h"
#include "safetensors.h"

#include <glib.h>

G_BEGIN_DECLS

/* How a parameter is drawn (the distributions of the golden tiny model). */
typedef enum {
  F2_PARAM_INIT_WEIGHT,         /* Linear/Conv weight: N(0, 1/fan_in) */
  F2_PARAM_INIT_DWCONV,         /* DaViT's position conv: N(0, 0.02^2), see below */
  F2_PARAM_INIT_BIAS,           /* N(0, 0.05^2) */
  F2_PARAM_INIT_NORM_WEIGHT,    /* 1 + N(0, 0.1^2) */
  F2_PARAM_INIT_NORM_BIAS,      /* N(0, 0.05^2) */
  F2_PARAM_INIT_EMBEDDING,      /* N(0, 0.1^2) */
  F2_PARAM_INIT_POS_EMBED_2D,   /* N(0, 0.5^2) */
  F2_PARAM_INIT_PROJECTION,     /* image_projection [in, out]: N(0, 1/in) */
  F2_PARAM_INIT_LOGITS_BIAS,    /* N(0, 0.05^2), +1 on the <loc_*> ids */
  F2_PARAM_INIT_SINUSOID,       /* the cosine temporal table (deterministic) */
} F2ParamInit;

typedef struct {
  char *name;
  guint ndim;
  guint64 shape[4];
  F2ParamInit init;
} F2ParamSpec;

/* Every tensor of the state dict as save_pretrained writes it (the tied
 * embed_tokens aliases left out), sorted by name. A GPtrArray of
 * F2ParamSpec*; g_ptr_array_unref() frees it. */
GPtrArray *f2_model_param_specs (const F2Config *config);

/* visual_temporal_embed.pos_idx_to_embed: row p, column 2i = sin(p * w_i),
 * 2i+1 = cos(p * w_i), w_i = 10000^(-2i/dim). @out holds rows * dim. */
void f2_model_temporal_table (guint rows, guint dim, float *out);

/* Write a model.safetensors at @path with random values for every tensor
 * of @config, in @dtype (F32, F16 or BF16), deterministic for @seed. */
gboolean f2_random_checkpoint_write (const F2Config *config, const char *path,
    guint64 seed, F2DType dtype, GError **error);

/* Copy config.json, preprocessor_config.json, tokenizer files (and
 * generation_config.json) from @config_dir into @out_dir (created if
 * needed) and write @out_dir/model.safetensors. */
gboolean f2_random_checkpoint_write_dir (const char *config_dir,
    const char *out_dir, guint64 seed, F2DType dtype, GError **error);

G_END_DECLS
