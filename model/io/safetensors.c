/* safetensors reader (memory-mapped, validated before use) and writer. */
#include "safetensors.h"
#include "loader-util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Larger headers are refused before parsing (the reference library uses
 * the same bound); real checkpoints have headers of a few hundred KB. */
#define MAX_HEADER_SIZE (100 * 1024 * 1024)

#define REDOWNLOAD "re-download the file"

G_DEFINE_QUARK (f2-checkpoint-error-quark, f2_checkpoint_error)

static const struct {
  const char *name;
  guint size;
} dtype_info[] = {
  [F2_DTYPE_F32] = {"F32", 4},
  [F2_DTYPE_F16] = {"F16", 2},
  [F2_DTYPE_BF16] = {"BF16", 2},
  [F2_DTYPE_I64] = {"I64", 8},
  [F2_DTYPE_I32] = {"I32", 4},
};

guint
f2_dtype_size (F2DType dtype)
{
  g_return_val_if_fail ((guint) dtype < G_N_ELEMENTS (dtype_info), 0);
  return dtype_info[dtype].size;
}

const char *
f2_dtype_name (F2DType dtype)
{
  g_return_val_if_fail ((guint) dtype < G_N_ELEMENTS (dtype_info), "?");
  return dtype_info[dtype].name;
}

static gboolean
dtype_from_name (const char *name, F2DType *dtype)
{
  for (guint i = 0; i < G_N_ELEMENTS (dtype_info); i++) {
    if (g_strcmp0 (name, dtype_info[i].name) == 0) {
      *dtype = (F2DType) i;
      return TRUE;
    }
  }
  return FALSE;
}

char *
f2_tensor_shape_string (guint ndim, const guint64 *shape)
{
  GString *s = g_string_new ("[");

  for (guint i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GUINT64_FORMAT, i ? ", " : "", shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* ----------------------------------------------------------------- reader */

struct _F2Safetensors {
  char *path;
  GMappedFile *file;
  GArray *tensors;              /* F2Tensor, header order */
  GPtrArray *names;             /* owned names of the tensors */
  GHashTable *by_name;          /* name -> index + 1 */
  GHashTable *metadata;         /* string -> string */
};

static gboolean
fail (GError **error, gint code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (GError **error, gint code, const char *format, ...)
{
  va_list args;
  char *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, F2_CHECKPOINT_ERROR, code, message);
  g_free (message);
  return FALSE;
}

/* A non-negative JSON integer. */
static gboolean
node_get_uint (JsonNode *node, guint64 *value)
{
  gint64 v;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  v = json_node_get_int (node);
  if (v < 0)
    return FALSE;
  *value = (guint64) v;
  return TRUE;
}

static gboolean
parse_metadata (F2Safetensors *st, JsonNode *node, GError **error)
{
  JsonObject *object;
  GList *members;
  gboolean ok = TRUE;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: \"__metadata__\" is not a JSON object; the file is damaged, "
        REDOWNLOAD, st->path);
  object = json_node_get_object (node);
  members = json_object_get_members (object);
  for (GList *l = members; l != NULL && ok; l = l->next) {
    JsonNode *value = json_object_get_member (object, l->data);
    if (!JSON_NODE_HOLDS_VALUE (value)
        || json_node_get_value_type (value) != G_TYPE_STRING)
      ok = fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
          "%s: metadata value \"%s\" is not a string; the file is damaged, "
          REDOWNLOAD, st->path, (const char *) l->data);
    else
      g_hash_table_insert (st->metadata, g_strdup (l->data),
          g_strdup (json_node_get_string (value)));
  }
  g_list_free (members);
  return ok;
}

/* Validate one tensor entry of the header and append it. @data_size is the
 * size of the data area; @ranges collects [begin, end) pairs. */
static gboolean
parse_tensor (F2Safetensors *st, const char *name, JsonNode *node,
    const guint8 *data, guint64 data_size, GArray *ranges, GError **error)
{
  JsonObject *object;
  JsonNode *dtype_node, *shape_node, *offsets_node;
  JsonArray *shape, *offsets;
  const char *dtype_name;
  F2Tensor t = { 0 };
  guint64 begin, end, nbytes;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the header entry of tensor '%s' is not a JSON object; the file "
        "is damaged, " REDOWNLOAD, st->path, name);
  object = json_node_get_object (node);
  dtype_node = json_object_get_member (object, "dtype");
  shape_node = json_object_get_member (object, "shape");
  offsets_node = json_object_get_member (object, "data_offsets");
  if (dtype_node == NULL || shape_node == NULL || offsets_node == NULL)
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: tensor '%s' lacks \"%s\" in the header; the file is damaged, "
        REDOWNLOAD, st->path, name, dtype_node == NULL ? "dtype"
        : shape_node == NULL ? "shape" : "data_offsets");

  if (!JSON_NODE_HOLDS_VALUE (dtype_node)
      || json_node_get_value_type (dtype_node) != G_TYPE_STRING)
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the dtype of tensor '%s' is not a string; the file is damaged, "
        REDOWNLOAD, st->path, name);
  dtype_name = json_node_get_string (dtype_node);
  if (!dtype_from_name (dtype_name, &t.dtype))
    return fail (error, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s: tensor '%s' has dtype \"%s\", which is not supported (F32, F16, "
        "BF16, I64 and I32 are); convert the checkpoint to float16 or "
        "float32", st->path, name, dtype_name);

  if (!JSON_NODE_HOLDS_ARRAY (shape_node))
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the shape of tensor '%s' is not a JSON array; the file is "
        "damaged, " REDOWNLOAD, st->path, name);
  shape = json_node_get_array (shape_node);
  if (json_array_get_length (shape) > F2_TENSOR_MAX_DIMS)
    return fail (error, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s: tensor '%s' has %u dimensions; at most %d are supported",
        st->path, name, json_array_get_length (shape), F2_TENSOR_MAX_DIMS);
  t.ndim = json_array_get_length (shape);
  t.numel = 1;
  for (guint i = 0; i < t.ndim; i++) {
    if (!node_get_uint (json_array_get_element (shape, i), &t.shape[i]))
      return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
          "%s: dimension %u of tensor '%s' is not a non-negative integer; "
          "the file is damaged, " REDOWNLOAD, st->path, i, name);
    if (!g_uint64_checked_mul (&t.numel, t.numel, t.shape[i]))
      return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
          "%s: the shape of tensor '%s' overflows; the file is damaged, "
          REDOWNLOAD, st->path, name);
  }
  if (!g_uint64_checked_mul (&nbytes, t.numel, f2_dtype_size (t.dtype)))
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the size of tensor '%s' overflows; the file is damaged, "
        REDOWNLOAD, st->path, name);

  if (!JSON_NODE_HOLDS_ARRAY (offsets_node)
      || json_array_get_length (offsets = json_node_get_array (offsets_node)) != 2
      || !node_get_uint (json_array_get_element (offsets, 0), &begin)
      || !node_get_uint (json_array_get_element (offsets, 1), &end))
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the data_offsets of tensor '%s' are not two non-negative "
        "integers; the file is damaged, " REDOWNLOAD, st->path, name);
  if (begin > end || end > data_size)
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: tensor '%s' lies at bytes [%" G_GUINT64_FORMAT ", %"
        G_GUINT64_FORMAT ") of a data area of %" G_GUINT64_FORMAT " bytes; "
        "the file is truncated or damaged, " REDOWNLOAD, st->path, name,
        begin, end, data_size);
  if (end - begin != nbytes) {
    char *s = f2_tensor_shape_string (t.ndim, t.shape);
    fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: tensor '%s' (%s %s) needs %" G_GUINT64_FORMAT " bytes but its "
        "data_offsets span %" G_GUINT64_FORMAT "; the file is damaged, "
        REDOWNLOAD, st->path, name, dtype_name, s, nbytes, end - begin);
    g_free (s);
    return FALSE;
  }
  if (g_hash_table_contains (st->by_name, name))
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: tensor '%s' appears twice in the header; the file is damaged, "
        REDOWNLOAD, st->path, name);

  t.data = data + begin;
  t.nbytes = nbytes;
  g_ptr_array_add (st->names, g_strdup (name));
  t.name = g_ptr_array_index (st->names, st->names->len - 1);
  g_array_append_val (st->tensors, t);
  g_hash_table_insert (st->by_name, (gpointer) t.name,
      GUINT_TO_POINTER (st->tensors->len));
  if (nbytes > 0) {
    guint64 range[2] = { begin, end };
    g_array_append_vals (ranges, range, 2);
  }
  return TRUE;
}

static int
compare_range (const void *a, const void *b)
{
  const guint64 *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Index of the tensor that owns the range starting at @begin (for errors). */
static const char *
tensor_at (F2Safetensors *st, const guint8 *data, guint64 begin)
{
  for (guint i = 0; i < st->tensors->len; i++) {
    const F2Tensor *t = &g_array_index (st->tensors, F2Tensor, i);
    if (t->nbytes > 0 && (const guint8 *) t->data == data + begin)
      return t->name;
  }
  return "?";
}

static gboolean
check_overlaps (F2Safetensors *st, const guint8 *data, GArray *ranges,
    GError **error)
{
  guint n = ranges->len / 2;
  guint64 *r = (guint64 *) ranges->data;

  if (n < 2)
    return TRUE;                /* (and qsort must not see a NULL array) */
  /* pairs of guint64: sort them as 16-byte records */
  qsort (r, n, 2 * sizeof (guint64), compare_range);
  for (guint i = 1; i < n; i++) {
    if (r[2 * i] < r[2 * i - 1])
      return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
          "%s: the data of tensors '%s' and '%s' overlap; the file is "
          "damaged, " REDOWNLOAD, st->path, tensor_at (st, data, r[2 * i - 2]),
          tensor_at (st, data, r[2 * i]));
  }
  return TRUE;
}

static gboolean
parse_header (F2Safetensors *st, GError **error)
{
  const guint8 *contents = (const guint8 *) g_mapped_file_get_contents (st->file);
  guint64 size = g_mapped_file_get_length (st->file);
  guint64 header_len = 0;
  const guint8 *data;
  JsonParser *parser;
  JsonNode *root;
  JsonObject *object;
  GList *members;
  GArray *ranges;
  GError *json_error = NULL;
  gboolean ok = TRUE;

  if (size < 8)
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s is %" G_GUINT64_FORMAT " bytes long, too short for a safetensors "
        "file; the download was probably cut off: " REDOWNLOAD, st->path, size);
  for (int i = 7; i >= 0; i--)
    header_len = (header_len << 8) | contents[i];
  if (header_len > size - 8)
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the header claims %" G_GUINT64_FORMAT " bytes but only %"
        G_GUINT64_FORMAT " follow; the file is truncated or not a "
        "safetensors file: " REDOWNLOAD, st->path, header_len, size - 8);
  if (header_len > MAX_HEADER_SIZE)
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the header is %" G_GUINT64_FORMAT " bytes, more than the %d "
        "allowed; this is not a valid safetensors file: " REDOWNLOAD,
        st->path, header_len, MAX_HEADER_SIZE);
  if (header_len < 2 || contents[8] != '{')
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the header is not a JSON object; this is not a safetensors "
        "file (or it is damaged): " REDOWNLOAD, st->path);

  {
    char *source = g_strdup_printf ("%s: the header", st->path);
    ok = f2_json_check_depth ((const char *) contents + 8, (gssize) header_len,
        F2_JSON_MAX_DEPTH, source, F2_CHECKPOINT_ERROR,
        F2_CHECKPOINT_ERROR_CORRUPT, error);
    g_free (source);
    if (!ok)
      return FALSE;
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, (const char *) contents + 8,
          (gssize) header_len, &json_error)) {
    fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the header is not valid JSON (%s); the file is damaged, "
        REDOWNLOAD, st->path, json_error->message);
    g_error_free (json_error);
    g_object_unref (parser);
    return FALSE;
  }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_object_unref (parser);
    return fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: the header is not a JSON object; the file is damaged, "
        REDOWNLOAD, st->path);
  }

  data = contents + 8 + header_len;
  object = json_node_get_object (root);
  {
    /* json-glib keeps one of two members with the same name: count them
     * as written */
    char *duplicate = NULL;
    guint written = f2_json_count_members ((const char *) contents + 8,
        (gssize) header_len, &duplicate);
    if (written != json_object_get_size (object)) {
      char *what = duplicate ? g_strdup_printf ("'%s'", duplicate)
          : g_strdup ("a name (spelt with different escapes)");
      fail (error, F2_CHECKPOINT_ERROR_CORRUPT,
          "%s: the header lists %s twice (%u entries for %u names); "
          "the file is damaged or was not written by a safetensors writer, "
          REDOWNLOAD, st->path, what, written, json_object_get_size (object));
      g_free (what);
      g_free (duplicate);
      g_object_unref (parser);
      return FALSE;
    }
    g_free (duplicate);
  }
  members = json_object_get_members (object);
  ranges = g_array_new (FALSE, FALSE, sizeof (guint64));
  for (GList *l = members; l != NULL && ok; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member (object, name);
    if (g_str_equal (name, "__metadata__"))
      ok = parse_metadata (st, node, error);
    else
      ok = parse_tensor (st, name, node, data, size - 8 - header_len, ranges,
          error);
  }
  if (ok)
    ok = check_overlaps (st, data, ranges, error);
  g_array_free (ranges, TRUE);
  g_list_free (members);
  g_object_unref (parser);
  return ok;
}

F2Safetensors *
f2_safetensors_open (const char *path, GError **error)
{
  F2Safetensors *st;
  GMappedFile *file;

  g_return_val_if_fail (path != NULL, NULL);

  /* a regular file only: a FIFO or a device would block or never end */
  file = f2_file_map_regular (path, F2_MAX_WEIGHTS_FILE_SIZE,
      "the model's safetensors weights", error);
  if (file == NULL)
    return NULL;
  st = g_new0 (F2Safetensors, 1);
  st->path = g_strdup (path);
  st->file = file;
  st->tensors = g_array_new (FALSE, FALSE, sizeof (F2Tensor));
  st->names = g_ptr_array_new_with_free_func (g_free);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!parse_header (st, error)) {
    f2_safetensors_close (st);
    return NULL;
  }
  return st;
}

void
f2_safetensors_close (F2Safetensors *st)
{
  if (st == NULL)
    return;
  g_hash_table_unref (st->metadata);
  g_hash_table_unref (st->by_name);
  g_ptr_array_unref (st->names);
  g_array_free (st->tensors, TRUE);
  g_mapped_file_unref (st->file);
  g_free (st->path);
  g_free (st);
}

guint
f2_safetensors_n_tensors (F2Safetensors *st)
{
  return st->tensors->len;
}

const F2Tensor *
f2_safetensors_get_nth (F2Safetensors *st, guint i)
{
  g_return_val_if_fail (i < st->tensors->len, NULL);
  return &g_array_index (st->tensors, F2Tensor, i);
}

const F2Tensor *
f2_safetensors_lookup (F2Safetensors *st, const char *name)
{
  guint index = GPOINTER_TO_UINT (g_hash_table_lookup (st->by_name, name));

  return index == 0 ? NULL : &g_array_index (st->tensors, F2Tensor, index - 1);
}

const char *
f2_safetensors_get_metadata (F2Safetensors *st, const char *key)
{
  return g_hash_table_lookup (st->metadata, key);
}

/* ----------------------------------------------------------------- writer */

struct _F2SafetensorsWriter {
  char *path;
  char *tmp_path;
  FILE *out;
  guint64 expected;             /* bytes of the data area */
  guint64 written;
};

static gboolean
write_failed (F2SafetensorsWriter *w, GError **error)
{
  int saved = errno;
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
      "cannot write %s: %s", w->tmp_path, g_strerror (saved));
  return FALSE;
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static char *
build_header (const F2Tensor *tensors, guint n, GHashTable *metadata,
    guint64 *data_size, GError **error)
{
  JsonBuilder *b = json_builder_new ();
  JsonGenerator *gen;
  JsonNode *root;
  GHashTable *seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint64 offset = 0;
  char *json = NULL;

  json_builder_begin_object (b);
  if (metadata != NULL && g_hash_table_size (metadata) > 0) {
    guint n_keys;
    gpointer *keys = g_hash_table_get_keys_as_array (metadata, &n_keys);
    qsort (keys, n_keys, sizeof (gpointer), compare_strings);
    json_builder_set_member_name (b, "__metadata__");
    json_builder_begin_object (b);
    for (guint i = 0; i < n_keys; i++) {
      json_builder_set_member_name (b, keys[i]);
      json_builder_add_string_value (b, g_hash_table_lookup (metadata, keys[i]));
    }
    json_builder_end_object (b);
    g_free (keys);
  }
  for (guint i = 0; i < n; i++) {
    const F2Tensor *t = &tensors[i];
    guint64 bytes = f2_dtype_size (t->dtype);
    gboolean ok = t->name != NULL && t->ndim <= F2_TENSOR_MAX_DIMS
        && !g_str_equal (t->name, "__metadata__")
        && !g_hash_table_contains (seen, t->name);
    for (guint d = 0; d < t->ndim && ok; d++)
      ok = t->shape[d] <= G_MAXINT64
          && g_uint64_checked_mul (&bytes, bytes, t->shape[d]);
    if (!ok || !g_uint64_checked_add (&offset, offset, bytes)) {
      g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
          "cannot write tensor %u ('%s'): no name, a duplicate name or an "
          "impossible shape", i, t->name ? t->name : "(null)");
      goto out;
    }
    g_hash_table_add (seen, (gpointer) t->name);
    json_builder_set_member_name (b, t->name);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "dtype");
    json_builder_add_string_value (b, f2_dtype_name (t->dtype));
    json_builder_set_member_name (b, "shape");
    json_builder_begin_array (b);
    for (guint d = 0; d < t->ndim; d++)
      json_builder_add_int_value (b, (gint64) t->shape[d]);
    json_builder_end_array (b);
    json_builder_set_member_name (b, "data_offsets");
    json_builder_begin_array (b);
    json_builder_add_int_value (b, (gint64) (offset - bytes));
    json_builder_add_int_value (b, (gint64) offset);
    json_builder_end_array (b);
    json_builder_end_object (b);
  }
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  json = json_generator_to_data (gen, NULL);
  g_object_unref (gen);
  json_node_unref (root);
  *data_size = offset;
out:
  g_hash_table_unref (seen);
  g_object_unref (b);
  return json;
}

F2SafetensorsWriter *
f2_safetensors_writer_new (const char *path, const F2Tensor *tensors,
    guint n_tensors, GHashTable *metadata, GError **error)
{
  F2SafetensorsWriter *w;
  GString *header;
  char *json;
  guint64 data_size, len;
  guint8 len_bytes[8];

  json = build_header (tensors, n_tensors, metadata, &data_size, error);
  if (json == NULL)
    return NULL;
  /* pad with spaces so that the data area starts 8-byte aligned */
  header = g_string_new (json);
  g_free (json);
  while ((8 + header->len) % 8 != 0)
    g_string_append_c (header, ' ');
  len = header->len;
  for (int i = 0; i < 8; i++)
    len_bytes[i] = (guint8) (len >> (8 * i));

  w = g_new0 (F2SafetensorsWriter, 1);
  w->path = g_strdup (path);
  w->tmp_path = g_strconcat (path, ".partial", NULL);
  w->expected = data_size;
  w->out = g_fopen (w->tmp_path, "wb");
  if (w->out == NULL) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        "cannot create %s: %s", w->tmp_path, g_strerror (saved));
    g_string_free (header, TRUE);
    g_free (w->tmp_path);
    g_free (w->path);
    g_free (w);
    return NULL;
  }
  if (fwrite (len_bytes, 1, 8, w->out) != 8
      || fwrite (header->str, 1, header->len, w->out) != header->len) {
    write_failed (w, error);
    g_string_free (header, TRUE);
    f2_safetensors_writer_abort (w);
    return NULL;
  }
  g_string_free (header, TRUE);
  return w;
}

gboolean
f2_safetensors_writer_append (F2SafetensorsWriter *w, const void *data,
    gsize size, GError **error)
{
  if (size > w->expected - w->written) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s: more data given than the tensors hold (%" G_GUINT64_FORMAT
        " bytes)", w->path, w->expected);
    return FALSE;
  }
  if (size > 0 && fwrite (data, 1, size, w->out) != size)
    return write_failed (w, error);
  w->written += size;
  return TRUE;
}

void
f2_safetensors_writer_abort (F2SafetensorsWriter *w)
{
  if (w == NULL)
    return;
  if (w->out != NULL)
    fclose (w->out);
  g_unlink (w->tmp_path);
  g_free (w->tmp_path);
  g_free (w->path);
  g_free (w);
}

gboolean
f2_safetensors_writer_finish (F2SafetensorsWriter *w, GError **error)
{
  FILE *out = w->out;

  if (w->written != w->expected) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s: %" G_GUINT64_FORMAT " bytes of tensor data given, %"
        G_GUINT64_FORMAT " expected", w->path, w->written, w->expected);
    f2_safetensors_writer_abort (w);
    return FALSE;
  }
  w->out = NULL;
  if (fclose (out) != 0) {
    write_failed (w, error);
    f2_safetensors_writer_abort (w);
    return FALSE;
  }
  if (g_rename (w->tmp_path, w->path) != 0) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        "cannot rename %s to %s: %s", w->tmp_path, w->path, g_strerror (saved));
    f2_safetensors_writer_abort (w);
    return FALSE;
  }
  g_free (w->tmp_path);
  g_free (w->path);
  g_free (w);
  return TRUE;
}

gboolean
f2_safetensors_write (const char *path, const F2Tensor *tensors,
    guint n_tensors, GHashTable *metadata, GError **error)
{
  F2SafetensorsWriter *w;

  w = f2_safetensors_writer_new (path, tensors, n_tensors, metadata, error);
  if (w == NULL)
    return FALSE;
  for (guint i = 0; i < n_tensors; i++) {
    guint64 bytes = f2_dtype_size (tensors[i].dtype);
    for (guint d = 0; d < tensors[i].ndim; d++)
      bytes *= tensors[i].shape[d];     /* checked by the header builder */
    if (bytes > 0 && tensors[i].data == NULL) {
      g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
          "cannot write tensor '%s': no data", tensors[i].name);
      f2_safetensors_writer_abort (w);
      return FALSE;
    }
    if (!f2_safetensors_writer_append (w, tensors[i].data, bytes, error)) {
      f2_safetensors_writer_abort (w);
      return FALSE;
    }
  }
  return f2_safetensors_writer_finish (w, error);
}

gboolean
f2_safetensors_write_f32 (const char *path, const char *name,
    const float *data, guint64 n, GError **error)
{
  F2Tensor t = {
    .name = name,
    .dtype = F2_DTYPE_F32,
    .ndim = 1,
    .shape = { n },
    .data = data,
  };
  return f2_safetensors_write (path, &t, 1, NULL, error);
}
