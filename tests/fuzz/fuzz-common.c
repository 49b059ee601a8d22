/* Helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

guint fuzz_accepted;

static char *scratch_dir;
static GHashTable *scratch_paths;     /* name -> path */

static void
remove_scratch (void)
{
  GHashTableIter iter;
  gpointer path;

  g_hash_table_iter_init (&iter, scratch_paths);
  while (g_hash_table_iter_next (&iter, NULL, &path))
    g_unlink (path);
  g_rmdir (scratch_dir);
  g_hash_table_unref (scratch_paths);
  g_free (scratch_dir);
}

const char *
fuzz_scratch_file (const char *name, const uint8_t *data, size_t size)
{
  char *path;

  if (scratch_dir == NULL) {
    scratch_dir = g_dir_make_tmp ("f2-fuzz-XXXXXX", NULL);
    if (scratch_dir == NULL)
      abort ();
    scratch_paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
    atexit (remove_scratch);
  }
  path = g_hash_table_lookup (scratch_paths, name);
  if (path == NULL) {
    path = g_build_filename (scratch_dir, name, NULL);
    g_hash_table_insert (scratch_paths, g_strdup (name), path);
  }
  if (!g_file_set_contents (path, (const char *) data, (gssize) size, NULL))
    abort ();                   /* the scratch directory is ours: cannot fail */
  return path;
}

char *
fuzz_string (const uint8_t *data, size_t size)
{
  char *s = g_malloc (size + 1);

  memcpy (s, data, size);
  s[size] = '\0';
  return s;
}
