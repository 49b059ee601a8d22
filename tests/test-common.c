#include "test-common.h"
#include "image.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

const char *
f2_test_golden_dir (void)
{
  static char *dir = NULL;
  const char *env = g_getenv ("F2_GOLDEN_DIR");

  if (dir == NULL && env != NULL && g_file_test (env, G_FILE_TEST_IS_DIR))
    dir = g_strdup (env);
  return dir;
}

const char *
f2_test_require_golden_dir (void)
{
  const char *dir = f2_test_golden_dir ();

  if (dir == NULL) {
    g_printerr ("golden data not found (set F2_GOLDEN_DIR, or put it in "
        "../shared/golden): skipping\n");
    exit (F2_TEST_SKIP);
  }
  return dir;
}

char *
f2_test_golden_path (const char *relative)
{
  return g_build_filename (f2_test_require_golden_dir (), relative, NULL);
}

JsonNode *
f2_test_load_json (const char *path)
{
  GError *error = NULL;
  JsonParser *parser = json_parser_new ();
  JsonNode *root;

  if (!json_parser_load_from_file (parser, path, &error))
    g_error ("cannot parse %s: %s", path, error->message);
  root = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  return root;
}

/* A minimal safetensors reader for the tests: 8-byte little-endian header
 * length, JSON header, then the raw little-endian data. */
gboolean
f2_test_read_tensor (const char *file, const char *name, float **data,
    gsize *n, GError **error)
{
  char *contents = NULL;
  gsize length = 0;
  guint64 header_len = 0;
  JsonParser *parser = NULL;
  JsonObject *header, *tensor;
  JsonArray *offsets;
  const char *dtype;
  guint64 begin, end, elem, count;
  const guint8 *blob;
  gboolean ok = FALSE;

  if (!g_file_get_contents (file, &contents, &length, error))
    return FALSE;
  if (length < 8)
    goto bad_file;
  for (int i = 7; i >= 0; i--)
    header_len = (header_len << 8) | (guint8) contents[i];
  if (header_len > length - 8)
    goto bad_file;
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, contents + 8, header_len, error))
    goto out;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    goto bad_file;
  header = json_node_get_object (json_parser_get_root (parser));
  if (!json_object_has_member (header, name)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "%s has no tensor '%s'", file, name);
    goto out;
  }
  tensor = json_object_get_object_member (header, name);
  if (tensor == NULL || !json_object_has_member (tensor, "dtype")
      || !json_object_has_member (tensor, "data_offsets"))
    goto bad_file;
  dtype = json_object_get_string_member (tensor, "dtype");
  offsets = json_object_get_array_member (tensor, "data_offsets");
  if (dtype == NULL || offsets == NULL || json_array_get_length (offsets) != 2)
    goto bad_file;
  begin = json_array_get_int_element (offsets, 0);
  end = json_array_get_int_element (offsets, 1);
  elem = g_str_equal (dtype, "F32") || g_str_equal (dtype, "I32") ? 4
      : g_str_equal (dtype, "I64") ? 8 : 0;
  if (elem == 0) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "tensor '%s' of %s has dtype %s; only F32, I32 and I64 are read",
        name, file, dtype);
    goto out;
  }
  if (end < begin || end > length - 8 - header_len || (end - begin) % elem)
    goto bad_file;
  blob = (const guint8 *) contents + 8 + header_len + begin;
  count = (end - begin) / elem;
  *data = g_new (float, MAX (count, 1));
  for (guint64 i = 0; i < count; i++) {
    if (g_str_equal (dtype, "F32")) {
      memcpy (*data + i, blob + 4 * i, 4);
    } else if (g_str_equal (dtype, "I32")) {
      gint32 v;
      memcpy (&v, blob + 4 * i, 4);
      (*data)[i] = v;
    } else {
      gint64 v;
      memcpy (&v, blob + 8 * i, 8);
      (*data)[i] = v;
    }
  }
  *n = count;
  ok = TRUE;
  goto out;

bad_file:
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
      "%s is not a valid safetensors file (tensor '%s')", file, name);
out:
  if (parser != NULL)
    g_object_unref (parser);
  g_free (contents);
  return ok;
}

static gboolean
is_number (JsonNode *node)
{
  GType type;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  type = json_node_get_value_type (node);
  return type == G_TYPE_INT64 || type == G_TYPE_DOUBLE;
}

gboolean
f2_test_json_equal (JsonNode *got, JsonNode *want, const char *path,
    gboolean exact_doubles, GString *why)
{
  if (JSON_NODE_TYPE (got) != JSON_NODE_TYPE (want)) {
    g_string_printf (why, "%s: node types differ", path);
    return FALSE;
  }

  switch (JSON_NODE_TYPE (want)) {
    case JSON_NODE_OBJECT:{
      JsonObject *go = json_node_get_object (got);
      JsonObject *wo = json_node_get_object (want);
      g_autoptr (GList) gm = json_object_get_members (go);
      g_autoptr (GList) wm = json_object_get_members (wo);
      GList *g, *w;

      for (g = gm, w = wm; g != NULL && w != NULL; g = g->next, w = w->next) {
        g_autofree char *sub = g_strdup_printf ("%s.%s", path,
            (const char *) w->data);

        if (strcmp (g->data, w->data) != 0) {
          g_string_printf (why, "%s: key '%s' where '%s' was expected", path,
              (const char *) g->data, (const char *) w->data);
          return FALSE;
        }
        if (!f2_test_json_equal (json_object_get_member (go, g->data),
                json_object_get_member (wo, w->data), sub,
                exact_doubles || strcmp (w->data, "scores") == 0, why))
          return FALSE;
      }
      if (g != NULL || w != NULL) {
        g_string_printf (why, "%s: %u keys, expected %u", path,
            json_object_get_size (go), json_object_get_size (wo));
        return FALSE;
      }
      return TRUE;
    }
    case JSON_NODE_ARRAY:{
      JsonArray *ga = json_node_get_array (got);
      JsonArray *wa = json_node_get_array (want);

      if (json_array_get_length (ga) != json_array_get_length (wa)) {
        g_string_printf (why, "%s: %u elements, expected %u", path,
            json_array_get_length (ga), json_array_get_length (wa));
        return FALSE;
      }
      for (guint i = 0; i < json_array_get_length (wa); i++) {
        g_autofree char *sub = g_strdup_printf ("%s[%u]", path, i);

        if (!f2_test_json_equal (json_array_get_element (ga, i),
                json_array_get_element (wa, i), sub, exact_doubles, why))
          return FALSE;
      }
      return TRUE;
    }
    case JSON_NODE_VALUE:
      if (is_number (want) && is_number (got)) {
        double g = json_node_get_double (got);
        double w = json_node_get_double (want);

        if (exact_doubles ? g == w : (float) g == (float) w)
          return TRUE;
        g_string_printf (why, "%s: %.17g, expected %.17g", path, g, w);
        return FALSE;
      }
      if (json_node_get_value_type (want) == G_TYPE_STRING
          && json_node_get_value_type (got) == G_TYPE_STRING) {
        if (strcmp (json_node_get_string (got),
                json_node_get_string (want)) == 0)
          return TRUE;
        g_string_printf (why, "%s: \"%s\", expected \"%s\"", path,
            json_node_get_string (got), json_node_get_string (want));
        return FALSE;
      }
      g_string_printf (why, "%s: value types differ", path);
      return FALSE;
    case JSON_NODE_NULL:
      return TRUE;
  }
  return FALSE;
}


void
f2_test_remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    char *child = g_build_filename (path, name, NULL);
    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      f2_test_remove_tree (child);
    else
      g_unlink (child);
    g_free (child);
  }
  if (dir != NULL)
    g_dir_close (dir);
  g_rmdir (path);
}

const char *
f2_test_device (const char *name)
{
  const char *env = g_getenv ("F2_VULKAN_DEVICE");

  if (g_strcmp0 (name, "vulkan") != 0)
    return name;
  return env != NULL && env[0] != '\0' ? env : "0";
}

Florence2Model *
f2_test_load_tiny_model (const char *name, Florence2Precision precision)
{
  return f2_test_load_tiny_model_threads (name, precision, 0);
}

Florence2Model *
f2_test_load_tiny_model_threads (const char *name, Florence2Precision precision,
    guint threads)
{
  Florence2ModelParams mp = florence2_model_default_params ();
  char *dir = f2_test_golden_path ("tiny/model");
  GError *error = NULL;
  Florence2Model *model;

  mp.device = f2_test_device (name);
  mp.precision = precision;
  mp.threads = threads;
  model = florence2_model_new (dir, &mp, &error);
  g_free (dir);
  if (model != NULL)
    return model;
  if (g_error_matches (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_NO_DEVICE)) {
    g_print ("SKIP: %s\n", error->message);
    exit (F2_TEST_SKIP);
  }
  g_print ("FAIL: %s\n", error->message);
  exit (1);
}

gboolean
f2_test_ids_equal (const GArray *got, JsonArray *want)
{
  if (got->len != json_array_get_length (want))
    return FALSE;
  for (guint i = 0; i < got->len; i++)
    if (g_array_index (got, gint32, i) != json_array_get_int_element (want, i))
      return FALSE;
  return TRUE;
}

gboolean
f2_test_arrays_identical (const GArray *a, const GArray *b)
{
  guint size = g_array_get_element_size ((GArray *) a);

  return size == g_array_get_element_size ((GArray *) b) && a->len == b->len
      && memcmp (a->data, b->data, (gsize) a->len * size) == 0;
}

F2TestCase *
f2_test_load_cases (guint *n_cases)
{
  char *path = f2_test_golden_path ("tiny/index.json");
  JsonNode *index = f2_test_load_json (path);
  JsonArray *entries = json_object_get_array_member (json_node_get_object (index), "cases");
  guint n = json_array_get_length (entries);
  F2TestCase *cases = g_new0 (F2TestCase, n);

  for (guint i = 0; i < n; i++) {
    JsonObject *entry = json_array_get_object_element (entries, i);
    char *json_rel = g_build_filename ("tiny", json_object_get_string_member (entry, "json"), NULL);
    char *png_rel = g_build_filename ("tiny", json_object_get_string_member (entry, "image"), NULL);
    char *json_path = f2_test_golden_path (json_rel);
    char *png = f2_test_golden_path (png_rel);
    JsonNode *node = f2_test_load_json (json_path);
    JsonObject *o = json_node_get_object (node);
    F2TestCase *c = &cases[i];
    GError *error = NULL;

    c->case_id = g_strdup (json_object_get_string_member (entry, "case_id"));
    c->task = f2_task_lookup (json_object_get_string_member (o, "task"))->task;
    c->text_input = json_object_get_null_member (o, "text_input") ? NULL :
        g_strdup (json_object_get_string_member (o, "text_input"));
    for (guint b = 0; b < 2; b++) {
      JsonObject *want = json_object_get_object_member (o, b ? "beam" : "greedy");
      c->want[b] = json_array_ref (json_object_get_array_member (want, "sequence"));
      c->want_text[b] = g_strdup (json_object_get_string_member (want, "text"));
    }
    if (!f2_image_load (png, &c->image, &c->rgb, &error))
      g_error ("%s", error->message);
    json_node_unref (node);
    g_free (png);
    g_free (json_path);
    g_free (png_rel);
    g_free (json_rel);
  }
  json_node_unref (index);
  g_free (path);
  *n_cases = n;
  return cases;
}

void
f2_test_free_cases (F2TestCase *cases, guint n_cases)
{
  for (guint i = 0; i < n_cases; i++) {
    g_free (cases[i].case_id);
    g_free (cases[i].text_input);
    g_free (cases[i].rgb);
    for (guint b = 0; b < 2; b++) {
      json_array_unref (cases[i].want[b]);
      g_free (cases[i].want_text[b]);
    }
  }
  g_free (cases);
}
