/* Weights of the network onto its backend: tensors looked up by name,
 * checked against the shapes the config gives, converted to float32 and
 * uploaded (linear weights in the layout the backend's matmuls read). Used
 * by the program builders (net-vision.c, net-text.c) and net.c; calls none
 * of them. */
#include "net-private.h"

#include <string.h>

F2Ref
f2_net_alloc (F2Backend *backend, F2BufferKind kind, F2ElemType type, guint64 n,
    GError **error)
{
  F2Ref r = { 0, 0 };

  r.buffer = f2_backend_alloc (backend, kind, type, MAX (n, 1), error);
  return r;
}

F2Ref
f2_net_upload_floats (F2NetModel *model, const float *data, guint64 n, GError **error)
{
  F2Ref r = f2_net_alloc (model->backend, F2_BUFFER_WEIGHTS, F2_ELEM_FLOAT, n, error);

  if (!f2_ref_is_set (r) || !f2_backend_write (model->backend, r, data, n, error))
    return F2_REF_NONE;
  return r;
}

/* @t converted to float32, in a new weights buffer */
static F2Ref
upload_tensor (F2NetModel *model, const F2Tensor *t, GError **error)
{
  float *data = f2_tensor_dup_f32 (t);
  F2Ref r = f2_net_upload_floats (model, data, t->numel, error);

  g_free (data);
  return r;
}

static const F2Tensor *
lookup_sized (F2Weights *weights, const char *name, guint64 dim0,
    guint64 numel, GError **error)
{
  const F2Tensor *t = f2_weights_lookup_alias (weights, name);

  if (t == NULL) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_MISSING,
        "the weights have no tensor '%s'; the checkpoint does not match "
        "config.json", name);
    return NULL;
  }
  if (t->ndim == 0 || t->shape[0] != dim0 || t->numel != numel) {
    g_autofree char *shape = f2_tensor_shape_string (t->ndim, t->shape);
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_SHAPE,
        "tensor '%s' has shape %s, expected %" G_GUINT64_FORMAT " x %"
        G_GUINT64_FORMAT " elements; the checkpoint does not match config.json",
        name, shape, dim0, numel / MAX (dim0, 1));
    return NULL;
  }
  return t;
}

F2Ref
f2_net_upload_named (F2NetModel *model, F2Weights *weights, const char *name,
    guint64 dim0, guint64 numel, GError **error)
{
  const F2Tensor *t = lookup_sized (weights, name, dim0, numel, error);

  return t ? upload_tensor (model, t, error) : F2_REF_NONE;
}

static gboolean
upload_bias (F2NetModel *model, F2Weights *weights, const char *b_name, guint32 n,
    F2NetLinear *out, GError **error)
{
  const F2Tensor *t;

  out->b = F2_REF_NONE;
  if (b_name == NULL)
    return TRUE;
  t = lookup_sized (weights, b_name, n, n, error);
  if (t == NULL)
    return FALSE;
  out->b = upload_tensor (model, t, error);
  return f2_ref_is_set (out->b);
}

static gboolean
upload_linear_data (F2NetModel *model, const float *w, guint32 n, guint32 k,
    F2NetLinear *out, GError **error)
{
  out->n = n;
  out->k = k;
  out->w = f2_net_alloc (model->backend, F2_BUFFER_WEIGHTS, F2_ELEM_FLOAT,
      f2_backend_linear_size (model->backend, n, k), error);
  return f2_ref_is_set (out->w)
      && f2_backend_upload_linear (model->backend, out->w, n, k, w, error);
}

gboolean
f2_net_upload_linear (F2NetModel *model, F2Weights *weights, const char *w_name,
    const char *b_name, guint32 n, guint32 k, gboolean transpose,
    F2NetLinear *out, GError **error)
{
  const F2Tensor *t = lookup_sized (weights, w_name, transpose ? k : n,
      (guint64) n * k, error);
  float *w, *wt = NULL;
  gboolean ok;

  if (t == NULL)
    return FALSE;
  w = f2_tensor_dup_f32 (t);
  if (transpose) {
    wt = g_new (float, (gsize) n * k);
    for (guint32 i = 0; i < k; i++)
      for (guint32 j = 0; j < n; j++)
        wt[(gsize) j * k + i] = w[(gsize) i * n + j];
  }
  ok = upload_linear_data (model, wt ? wt : w, n, k, out, error);
  g_free (w);
  g_free (wt);
  return ok && upload_bias (model, weights, b_name, n, out, error);
}

gboolean
f2_net_upload_linear_stack (F2NetModel *model, F2Weights *weights,
    const char *const *prefixes, guint n_parts, guint32 n, guint32 k,
    F2NetLinear *out, GError **error)
{
  float *w = g_new (float, (gsize) n_parts * n * k);
  float *b = g_new (float, (gsize) n_parts * n);
  gboolean ok = TRUE;

  for (guint i = 0; i < n_parts && ok; i++) {
    g_autofree char *wn = g_strconcat (prefixes[i], ".weight", NULL);
    g_autofree char *bn = g_strconcat (prefixes[i], ".bias", NULL);
    const F2Tensor *tw = lookup_sized (weights, wn, n, (guint64) n * k, error);
    const F2Tensor *tb = tw ? lookup_sized (weights, bn, n, n, error) : NULL;

    ok = tb != NULL;
    if (ok) {
      f2_tensor_to_f32 (tw, w + (gsize) i * n * k);
      f2_tensor_to_f32 (tb, b + (gsize) i * n);
    }
  }
  ok = ok && upload_linear_data (model, w, n_parts * n, k, out, error);
  if (ok) {
    out->b = f2_net_upload_floats (model, b, (guint64) n_parts * n, error);
    ok = f2_ref_is_set (out->b);
  }
  g_free (w);
  g_free (b);
  return ok;
}

gboolean
f2_net_upload_norm (F2NetModel *model, F2Weights *weights, const char *prefix,
    guint32 dim, F2NetNorm *out, GError **error)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);
  const F2Tensor *tw = lookup_sized (weights, wn, dim, dim, error);
  const F2Tensor *tb = tw ? lookup_sized (weights, bn, dim, dim, error) : NULL;

  if (tb == NULL)
    return FALSE;
  out->gamma = upload_tensor (model, tw, error);
  out->beta = f2_ref_is_set (out->gamma) ? upload_tensor (model, tb, error) : F2_REF_NONE;
  return f2_ref_is_set (out->beta);
}

gboolean
f2_net_load_linear (F2NetModel *model, F2Weights *weights, const char *prefix,
    guint32 n, guint32 k, F2NetLinear *out, GError **error)
{
  g_autofree char *wn = g_strconcat (prefix, ".weight", NULL);
  g_autofree char *bn = g_strconcat (prefix, ".bias", NULL);

  return f2_net_upload_linear (model, weights, wn, bn, n, k, FALSE, out, error);
}
