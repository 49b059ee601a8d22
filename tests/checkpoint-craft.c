#include "checkpoint-craft.h"

#include <string.h>

char *
craft_write_file (const char *dir, const char *name, const void *data, gsize len)
{
  char *path = g_build_filename (dir, name, NULL);
  GError *error = NULL;

  if (!g_file_set_contents (path, data, len, &error))
    g_error ("cannot write %s: %s", path, error->message);
  return path;
}

static void
put_le (GByteArray *a, guint64 v, guint n)
{
  for (guint i = 0; i < n; i++) {
    guint8 b = (guint8) (v >> (8 * i));
    g_byte_array_append (a, &b, 1);
  }
}

GByteArray *
craft_safetensors (const char *header_json, gsize data_size)
{
  GByteArray *a = g_byte_array_new ();

  put_le (a, strlen (header_json), 8);
  g_byte_array_append (a, (const guint8 *) header_json, strlen (header_json));
  for (gsize i = 0; i < data_size; i++) {
    guint8 b = (guint8) i;
    g_byte_array_append (a, &b, 1);
  }
  return a;
}

GByteArray *
craft_zip (guint n, const char *const *names, GByteArray *const *contents,
    guint16 method)
{
  GByteArray *zip = g_byte_array_new ();
  GByteArray *cd = g_byte_array_new ();
  guint64 cd_offset;

  for (guint i = 0; i < n; i++) {
    guint64 offset = zip->len;
    guint name_len = strlen (names[i]);
    /* local header */
    put_le (zip, 0x04034b50, 4);
    put_le (zip, 20, 2);
    put_le (zip, 0, 2);
    put_le (zip, method, 2);
    put_le (zip, 0, 4);         /* time, date */
    put_le (zip, 0, 4);         /* crc (not checked by the reader) */
    put_le (zip, contents[i]->len, 4);
    put_le (zip, contents[i]->len, 4);
    put_le (zip, name_len, 2);
    put_le (zip, 0, 2);
    g_byte_array_append (zip, (const guint8 *) names[i], name_len);
    g_byte_array_append (zip, contents[i]->data, contents[i]->len);
    /* central directory entry */
    put_le (cd, 0x02014b50, 4);
    put_le (cd, 20, 2);
    put_le (cd, 20, 2);
    put_le (cd, 0, 2);
    put_le (cd, method, 2);
    put_le (cd, 0, 4);
    put_le (cd, 0, 4);
    put_le (cd, contents[i]->len, 4);
    put_le (cd, contents[i]->len, 4);
    put_le (cd, name_len, 2);
    put_le (cd, 0, 2);
    put_le (cd, 0, 2);
    put_le (cd, 0, 2);
    put_le (cd, 0, 2);
    put_le (cd, 0, 4);
    put_le (cd, offset, 4);
    g_byte_array_append (cd, (const guint8 *) names[i], name_len);
  }
  cd_offset = zip->len;
  g_byte_array_append (zip, cd->data, cd->len);
  put_le (zip, 0x06054b50, 4);
  put_le (zip, 0, 4);
  put_le (zip, n, 2);
  put_le (zip, n, 2);
  put_le (zip, cd->len, 4);
  put_le (zip, cd_offset, 4);
  put_le (zip, 0, 2);
  g_byte_array_unref (cd);
  return zip;
}

void
pk_op (GByteArray *p, guint8 op)
{
  g_byte_array_append (p, &op, 1);
}

void
pk_str (GByteArray *p, const char *s)
{
  pk_op (p, 'X');
  put_le (p, strlen (s), 4);
  g_byte_array_append (p, (const guint8 *) s, strlen (s));
}

void
pk_int (GByteArray *p, gint64 v)
{
  if (v >= 0 && v < 256) {
    pk_op (p, 'K');
    put_le (p, v, 1);
  } else if (v >= 0 && v < 65536) {
    pk_op (p, 'M');
    put_le (p, v, 2);
  } else if (v >= G_MININT32 && v <= G_MAXINT32) {
    pk_op (p, 'J');
    put_le (p, (guint64) v, 4);
  } else {
    pk_op (p, 0x8a);            /* LONG1 */
    put_le (p, 8, 1);
    put_le (p, (guint64) v, 8);
  }
}

void
pk_global (GByteArray *p, const char *module, const char *name)
{
  pk_op (p, 'c');
  g_byte_array_append (p, (const guint8 *) module, strlen (module));
  pk_op (p, '\n');
  g_byte_array_append (p, (const guint8 *) name, strlen (name));
  pk_op (p, '\n');
}

void
pk_tensor (GByteArray *p, const char *storage_type, const char *key,
    gint64 numel, gint64 offset, guint ndim, const gint64 *shape,
    const gint64 *stride)
{
  pk_global (p, "torch._utils", "_rebuild_tensor_v2");
  pk_op (p, '(');
  pk_op (p, '(');
  pk_str (p, "storage");
  pk_global (p, "torch", storage_type);
  pk_str (p, key);
  pk_str (p, "cpu");
  pk_int (p, numel);
  pk_op (p, 't');
  pk_op (p, 'Q');
  pk_int (p, offset);
  pk_op (p, '(');
  for (guint i = 0; i < ndim; i++)
    pk_int (p, shape[i]);
  pk_op (p, 't');
  pk_op (p, '(');
  for (guint i = 0; i < ndim; i++)
    pk_int (p, stride[i]);
  pk_op (p, 't');
  pk_op (p, 0x89);
  pk_global (p, "collections", "OrderedDict");
  pk_op (p, ')');
  pk_op (p, 'R');
  pk_op (p, 't');
  pk_op (p, 'R');
}

GByteArray *
craft_torch_zip (GByteArray *pickle, guint n_storages, const char *const *keys,
    GByteArray *const *storages)
{
  guint n = n_storages + 2;
  const char **names = g_new0 (const char *, n);
  GByteArray **contents = g_new0 (GByteArray *, n);
  GByteArray *version = g_byte_array_new ();
  char **owned = g_new0 (char *, n_storages + 1);
  GByteArray *zip;

  g_byte_array_append (version, (const guint8 *) "3\n", 2);
  names[0] = "archive/data.pkl";
  contents[0] = pickle;
  for (guint i = 0; i < n_storages; i++) {
    owned[i] = g_strconcat ("archive/data/", keys[i], NULL);
    names[i + 1] = owned[i];
    contents[i + 1] = storages[i];
  }
  names[n - 1] = "archive/version";
  contents[n - 1] = version;
  zip = craft_zip (n, names, contents, 0);
  g_strfreev (owned);
  g_byte_array_unref (version);
  g_free (contents);
  g_free (names);
  return zip;
}
