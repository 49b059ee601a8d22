#include "test-common.h"

#include <json-glib/json-glib.h>

const char *
f2_test_golden_dir (void)
{
  static char *dir = NULL;
  const char *env = g_getenv ("F2_GOLDEN_DIR");

  if (dir == NULL && env != NULL && g_file_test (env, G_FILE_TEST_IS_DIR))
    dir = g_strdup (env);
  return dir;
}

char *
f2_test_golden_path (const char *relative)
{
  const char *dir = f2_test_golden_dir ();
  g_assert_nonnull (dir);
  return g_build_filename (dir, relative, NULL);
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
