/* One view over the checkpoint formats of a model directory. */
#include "weights.h"
#include "half.h"
#include "torch-checkpoint.h"
#include "loader-util.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct _F2Weights {
  char *path;
  GPtrArray *safetensors;       /* F2Safetensors*, owned */
  F2TorchCheckpoint *torch;
  GPtrArray *tensors;           /* const F2Tensor*, into the sources */
  GHashTable *by_name;          /* name -> const F2Tensor* */
};

static F2Weights *
weights_new (const char *path)
{
  F2Weights *w = g_new0 (F2Weights, 1);
  w->path = g_strdup (path);
  w->safetensors = g_ptr_array_new_with_free_func ((GDestroyNotify) f2_safetensors_close);
  w->tensors = g_ptr_array_new ();
  w->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return w;
}

void
f2_weights_close (F2Weights *w)
{
  if (w == NULL)
    return;
  g_hash_table_unref (w->by_name);
  g_ptr_array_unref (w->tensors);
  g_ptr_array_unref (w->safetensors);
  f2_torch_checkpoint_close (w->torch);
  g_free (w->path);
  g_free (w);
}

/* Index of the first element of @t that is NaN or infinite, or -1; floats
 * are told by their exponent bits (all ones), a block at a time so that the
 * loop stays branch-free. */
static gint64
first_non_finite (const F2Tensor *t)
{
  const guint8 *p = t->data;
  const guint64 block = 4096;
  guint size = f2_dtype_size (t->dtype);
  guint32 mask;

  switch (t->dtype) {
    case F2_DTYPE_F32:
      mask = 0x7f800000u;
      break;
    case F2_DTYPE_F16:
      mask = 0x7c00u;
      break;
    case F2_DTYPE_BF16:
      mask = 0x7f80u;
      break;
    default:
      return -1;                /* integers are always finite */
  }
  for (guint64 start = 0; start < t->numel; start += block) {
    guint64 end = MIN (start + block, t->numel);
    guint bad = 0;
    if (size == 4) {
      for (guint64 i = start; i < end; i++) {
        guint32 u;
        memcpy (&u, p + 4 * i, 4);
        bad |= (u & mask) == mask;
      }
    } else {
      for (guint64 i = start; i < end; i++) {
        guint16 u;
        memcpy (&u, p + 2 * i, 2);
        bad |= (u & mask) == mask;
      }
    }
    if (!bad)
      continue;
    for (guint64 i = start; i < end; i++) {
      guint32 u = 0;
      memcpy (&u, p + (gsize) size * i, size);      /* little-endian host */
      if ((u & mask) == mask)
        return (gint64) i;
    }
  }
  return -1;
}

/* Weights that hold NaN or infinity make every answer garbage (all <pad>
 * with beam search): refuse them at load, naming the tensor. */
static gboolean
check_finite (const F2Tensor *t, const char *file, GError **error)
{
  gint64 bad = first_non_finite (t);
  char *shape;
  float value;
  F2Tensor one;

  if (bad < 0)
    return TRUE;
  one = *t;
  one.numel = 1;
  one.data = (const guint8 *) t->data + (gsize) bad * f2_dtype_size (t->dtype);
  f2_tensor_to_f32 (&one, &value);
  shape = f2_tensor_shape_string (t->ndim, t->shape);
  g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
      "%s: tensor '%s' (%s %s) holds %s at element %" G_GINT64_FORMAT "; "
      "weights must be finite numbers: the file is damaged or the model "
      "diverged in training, re-download the model", file, t->name,
      f2_dtype_name (t->dtype), shape, isnan (value) ? "NaN" : "infinity", bad);
  g_free (shape);
  return FALSE;
}

static gboolean
add_tensor (F2Weights *w, const F2Tensor *t, const char *file, GError **error)
{
  if (!check_finite (t, file, error))
    return FALSE;
  if (g_hash_table_contains (w->by_name, t->name)) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "tensor '%s' is stored twice (again in %s); the shards do not belong "
        "together: re-download the model", t->name, file);
    return FALSE;
  }
  g_ptr_array_add (w->tensors, (gpointer) t);
  g_hash_table_insert (w->by_name, (gpointer) t->name, (gpointer) t);
  return TRUE;
}

static gboolean
add_safetensors (F2Weights *w, const char *path, GError **error)
{
  F2Safetensors *st = f2_safetensors_open (path, error);

  if (st == NULL)
    return FALSE;
  g_ptr_array_add (w->safetensors, st);
  for (guint i = 0; i < f2_safetensors_n_tensors (st); i++)
    if (!add_tensor (w, f2_safetensors_get_nth (st, i), path, error))
      return FALSE;
  return TRUE;
}

F2Weights *
f2_weights_open_file (const char *path, GError **error)
{
  F2Weights *w;
  guint8 magic[4] = { 0 };
  gboolean is_zip = FALSE, ok;
  int fd;

  g_return_val_if_fail (path != NULL, NULL);
  /* a regular file only: a FIFO or a device would block or never end */
  fd = f2_file_open_regular (path, F2_MAX_WEIGHTS_FILE_SIZE,
      "the model's weights (model.safetensors or pytorch_model.bin)", NULL, error);
  if (fd < 0)
    return NULL;
  is_zip = read (fd, magic, 4) == 4 && memcmp (magic, "PK\3\4", 4) == 0;
  /* the legacy torch format starts with a pickle PROTO opcode */
  is_zip = is_zip || magic[0] == 0x80;
  close (fd);
  w = weights_new (path);
  if (is_zip) {
    w->torch = f2_torch_checkpoint_open (path, error);
    ok = w->torch != NULL;
    for (guint i = 0; ok && i < f2_torch_checkpoint_n_tensors (w->torch); i++)
      ok = add_tensor (w, f2_torch_checkpoint_get_nth (w->torch, i), path, error);
  } else {
    ok = add_safetensors (w, path, error);
  }
  if (!ok) {
    f2_weights_close (w);
    return NULL;
  }
  return w;
}

/* model.safetensors.index.json: {"weight_map": {tensor: shard file}} */
static F2Weights *
open_index (const char *dir, const char *index_path, GError **error)
{
  JsonParser *parser = json_parser_new ();
  JsonNode *root, *map_node = NULL;
  JsonObject *map;
  GList *members = NULL;
  GHashTable *opened = g_hash_table_new (g_str_hash, g_str_equal);
  F2Weights *w = weights_new (index_path);
  char *text = NULL;
  gsize len = 0;
  gboolean ok = f2_file_read_regular (index_path, F2_MAX_JSON_FILE_SIZE,
      "the model's model.safetensors.index.json", &text, &len, error)
      && f2_json_check_depth (text, (gssize) len, F2_JSON_MAX_DEPTH, index_path,
      F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT, error);

  if (ok && !json_parser_load_from_data (parser, text, (gssize) len, error)) {
    g_prefix_error (error, "cannot read %s: ", index_path);
    ok = FALSE;
  } else if (ok) {
    root = json_parser_get_root (parser);
    if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
      map_node = json_object_get_member (json_node_get_object (root), "weight_map");
    if (map_node == NULL || !JSON_NODE_HOLDS_OBJECT (map_node)) {
      g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
          "%s has no \"weight_map\" object; re-download it", index_path);
      ok = FALSE;
    }
  }
  if (ok) {
    map = json_node_get_object (map_node);
    members = json_object_get_members (map);
    for (GList *l = members; l != NULL && ok; l = l->next) {
      JsonNode *file_node = json_object_get_member (map, l->data);
      const char *file = JSON_NODE_HOLDS_VALUE (file_node)
          && json_node_get_value_type (file_node) == G_TYPE_STRING
          ? json_node_get_string (file_node) : NULL;
      char *shard;
      /* shards are plain names next to the index */
      if (file == NULL || *file == '\0' || strchr (file, '/') || strchr (file, '\\')
          || g_str_equal (file, "..")) {
        g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
            "%s: the shard of tensor '%s' is not a file name in the model "
            "directory; re-download the index", index_path, (const char *) l->data);
        ok = FALSE;
        break;
      }
      if (g_hash_table_contains (opened, file))
        continue;
      g_hash_table_add (opened, (gpointer) file);
      shard = g_build_filename (dir, file, NULL);
      ok = add_safetensors (w, shard, error);
      g_free (shard);
    }
    for (GList *l = members; l != NULL && ok; l = l->next) {
      if (!g_hash_table_contains (w->by_name, l->data)) {
        g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_MISSING,
            "%s lists tensor '%s' but its shard lacks it; re-download the "
            "model", index_path, (const char *) l->data);
        ok = FALSE;
      }
    }
  }
  g_list_free (members);
  g_hash_table_unref (opened);
  g_object_unref (parser);
  g_free (text);
  if (!ok) {
    f2_weights_close (w);
    return NULL;
  }
  return w;
}

F2Weights *
f2_weights_open_dir (const char *model_dir, GError **error)
{
  static const char *const singles[] = { "model.safetensors", "pytorch_model.bin" };
  F2Weights *w = NULL;
  char *path;

  g_return_val_if_fail (model_dir != NULL, NULL);
  if (!f2_model_dir_check (model_dir, error))
    return NULL;
  /* a name that is there at all (a dangling link too) is the one to open,
   * so that its own problem is reported, not a missing file */
#define PRESENT(p) g_file_test ((p), G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK)
  path = g_build_filename (model_dir, singles[0], NULL);
  if (PRESENT (path)) {
    w = f2_weights_open_file (path, error);
    g_free (path);
    return w;
  }
  g_free (path);
  path = g_build_filename (model_dir, "model.safetensors.index.json", NULL);
  if (PRESENT (path)) {
    w = open_index (model_dir, path, error);
    g_free (path);
    return w;
  }
  g_free (path);
  path = g_build_filename (model_dir, singles[1], NULL);
  if (PRESENT (path)) {
    w = f2_weights_open_file (path, error);
    g_free (path);
    return w;
  }
  g_free (path);
  g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_MISSING,
      "%s has no weights (model.safetensors, model.safetensors.index.json or "
      "pytorch_model.bin); download the model's weights into it", model_dir);
  return NULL;
}

const char *
f2_weights_path (F2Weights *w)
{
  return w->path;
}

guint
f2_weights_n_tensors (F2Weights *w)
{
  return w->tensors->len;
}

const F2Tensor *
f2_weights_get_nth (F2Weights *w, guint i)
{
  g_return_val_if_fail (i < w->tensors->len, NULL);
  return g_ptr_array_index (w->tensors, i);
}

const F2Tensor *
f2_weights_lookup (F2Weights *w, const char *name)
{
  return g_hash_table_lookup (w->by_name, name);
}

static const char *const embedding_names[] = {
  "language_model.model.shared.weight",
  "language_model.model.encoder.embed_tokens.weight",
  "language_model.model.decoder.embed_tokens.weight",
};

const F2Tensor *
f2_weights_lookup_alias (F2Weights *w, const char *name)
{
  const F2Tensor *t = f2_weights_lookup (w, name);
  gboolean tied = FALSE;

  if (t != NULL)
    return t;
  for (guint i = 0; i < G_N_ELEMENTS (embedding_names); i++)
    tied = tied || g_str_equal (name, embedding_names[i]);
  for (guint i = 0; tied && t == NULL && i < G_N_ELEMENTS (embedding_names); i++)
    t = f2_weights_lookup (w, embedding_names[i]);
  return t;
}

const F2Tensor *
f2_weights_expect_shape (F2Weights *w, const char *name, guint ndim,
    const guint64 *shape, GError **error)
{
  const F2Tensor *t = f2_weights_lookup_alias (w, name);
  gboolean same;
  char *want, *found;

  want = f2_tensor_shape_string (ndim, shape);
  if (t == NULL) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_MISSING,
        "%s lacks tensor '%s' (expected shape %s); the checkpoint does not "
        "match config.json or is incomplete: use the weights and config of "
        "the same model", w->path, name, want);
    g_free (want);
    return NULL;
  }
  same = t->ndim == ndim;
  for (guint i = 0; same && i < ndim; i++)
    same = t->shape[i] == shape[i];
  if (!same) {
    found = f2_tensor_shape_string (t->ndim, t->shape);
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_SHAPE,
        "%s: tensor '%s' has shape %s, but config.json implies %s; the "
        "weights and config.json come from different models: use both from "
        "the same model", w->path, name, found, want);
    g_free (found);
    t = NULL;
  }
  g_free (want);
  return t;
}

const F2Tensor *
f2_weights_expect (F2Weights *w, const char *name, guint ndim, ...)
{
  guint64 shape[F2_TENSOR_MAX_DIMS];
  GError **error;
  va_list args;

  g_return_val_if_fail (ndim <= F2_TENSOR_MAX_DIMS, NULL);
  va_start (args, ndim);
  for (guint i = 0; i < ndim; i++)
    shape[i] = va_arg (args, guint);
  error = va_arg (args, GError **);
  va_end (args);
  return f2_weights_expect_shape (w, name, ndim, shape, error);
}

void
f2_tensor_to_f32 (const F2Tensor *t, float *out)
{
  const guint8 *p = t->data;

  switch (t->dtype) {
    case F2_DTYPE_F32:
      memcpy (out, p, t->numel * 4);
      break;
    case F2_DTYPE_F16:
    case F2_DTYPE_BF16:
      for (guint64 i = 0; i < t->numel; i++) {
        guint16 h;
        memcpy (&h, p + 2 * i, 2);
        out[i] = t->dtype == F2_DTYPE_F16 ? f2_half_to_float (h) : f2_bf16_to_float (h);
      }
      break;
    case F2_DTYPE_I64:
      for (guint64 i = 0; i < t->numel; i++) {
        gint64 v;
        memcpy (&v, p + 8 * i, 8);
        out[i] = (float) v;
      }
      break;
    case F2_DTYPE_I32:
      for (guint64 i = 0; i < t->numel; i++) {
        gint32 v;
        memcpy (&v, p + 4 * i, 4);
        out[i] = (float) v;
      }
      break;
  }
}

void
f2_tensor_to_f16 (const F2Tensor *t, guint16 *out)
{
  const guint8 *p = t->data;

  if (t->dtype == F2_DTYPE_F16) {
    memcpy (out, p, t->numel * 2);
    return;
  }
  if (t->dtype == F2_DTYPE_F32) {
    for (guint64 i = 0; i < t->numel; i++) {
      float f;
      memcpy (&f, p + 4 * i, 4);
      out[i] = f2_float_to_half (f);
    }
    return;
  }
  /* BF16 and integers: through float, exactly, then one rounding */
  for (guint64 i = 0; i < t->numel; i++) {
    F2Tensor one = *t;
    float f;
    one.numel = 1;
    one.data = p + (gsize) i * f2_dtype_size (t->dtype);
    f2_tensor_to_f32 (&one, &f);
    out[i] = f2_float_to_half (f);
  }
}

float *
f2_tensor_dup_f32 (const F2Tensor *t)
{
  float *out = g_new (float, MAX (t->numel, 1));
  f2_tensor_to_f32 (t, out);
  return out;
}
