/* Builders for checkpoint files made at run time by the tests: raw
 * safetensors bytes, stored zip archives and PyTorch-style pickles. */
#pragma once

#include <glib.h>

/* Write @len bytes to @dir/@name; returns the path (g_free() it). */
char *craft_write_file (const char *dir, const char *name, const void *data,
    gsize len);

/* A safetensors file: 8-byte length, @header_json, @data_size bytes of
 * data (byte i = i & 0xff). */
GByteArray *craft_safetensors (const char *header_json, gsize data_size);

/* A zip archive of stored entries (method 0, or @method for every entry to
 * test refusals). */
GByteArray *craft_zip (guint n, const char *const *names,
    GByteArray *const *contents, guint16 method);

/* Pickle building blocks (protocol 2, the opcodes torch.save uses). */
void pk_op (GByteArray *p, guint8 op);
void pk_str (GByteArray *p, const char *s);
void pk_int (GByteArray *p, gint64 v);
void pk_global (GByteArray *p, const char *module, const char *name);
/* _rebuild_tensor_v2((storage, storage_type, key, 'cpu', numel), offset,
 * shape, stride, False, OrderedDict()) as torch writes it. */
void pk_tensor (GByteArray *p, const char *storage_type, const char *key,
    gint64 numel, gint64 offset, guint ndim, const gint64 *shape,
    const gint64 *stride);

/* A whole pytorch_model.bin: "archive/data.pkl" = @pickle, "archive/version",
 * and "archive/data/<key>" = @storages[i] for @keys[i]. */
GByteArray *craft_torch_zip (GByteArray *pickle, guint n_storages,
    const char *const *keys, GByteArray *const *storages);
