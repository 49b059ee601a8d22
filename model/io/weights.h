/* The weights of a model directory behind one interface, whatever the file
 * format: model.safetensors, a sharded model.safetensors.index.json, or
 * PyTorch's pytorch_model.bin. Tensors stay in the mapped files until the
 * caller converts or uploads them. */
#pragma once

#include "safetensors.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct _F2Weights F2Weights;

/* Opens, in this order of preference, model.safetensors,
 * model.safetensors.index.json (and its shards) or pytorch_model.bin in
 * @model_dir. Every file is validated (see safetensors.h and
 * torch-checkpoint.h) before this returns. */
F2Weights *f2_weights_open_dir (const char *model_dir, GError **error);
/* One file: safetensors, or a PyTorch zip checkpoint (told apart by its
 * first bytes). */
F2Weights *f2_weights_open_file (const char *path, GError **error);
void f2_weights_close (F2Weights *weights);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (F2Weights, f2_weights_close)

/* The file (or index) the weights came from. */
const char *f2_weights_path (F2Weights *weights);
guint f2_weights_n_tensors (F2Weights *weights);
const F2Tensor *f2_weights_get_nth (F2Weights *weights, guint i);

/* Exactly @name, or NULL. */
const F2Tensor *f2_weights_lookup (F2Weights *weights, const char *name);

/* @name, or the tensor it is tied to when @name itself is not stored: the
 * token embeddings language_model.model.shared.weight,
 * language_model.model.encoder.embed_tokens.weight and
 * language_model.model.decoder.embed_tokens.weight are one tensor, stored
 * under any of these names. NULL when none is stored.
 *
 * language_model.lm_head.weight is NOT tied: the reference leaves it all
 * zero when a checkpoint lacks it (the LM head then only adds
 * final_logits_bias); callers check for NULL and use zeros. */
const F2Tensor *f2_weights_lookup_alias (F2Weights *weights, const char *name);

/* Look @name up (with aliases) and check its shape. @ndim dimensions follow
 * as guint (or int) values, then a GError **. Returns the tensor, or NULL
 * with an error naming the tensor and the expected and found shapes:
 *   f2_weights_expect (w, "image_projection", 2, c4, d_model, error) */
const F2Tensor *f2_weights_expect (F2Weights *weights, const char *name,
    guint ndim, ...);
/* The same with the shape in an array. */
const F2Tensor *f2_weights_expect_shape (F2Weights *weights, const char *name,
    guint ndim, const guint64 *shape, GError **error);

/* Convert all t->numel elements to float32 / IEEE half. F16 and BF16 are
 * widened exactly (subnormals, inf and NaN kept); F32 to half rounds to
 * nearest even (overflow gives inf); integers are converted by value. */
void f2_tensor_to_f32 (const F2Tensor *t, float *out);
void f2_tensor_to_f16 (const F2Tensor *t, guint16 *out);
/* Newly allocated float copy (g_free() it). */
float *f2_tensor_dup_f32 (const F2Tensor *t);

G_END_DECLS
