/* Helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include "tasks.h"

#include <glib/gstdio.h>
#include <stdio.h>
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
  /* a plain rewrite, not g_file_set_contents: that syncs the file to the
   * disk each time, which made file targets take minutes */
  {
    FILE *f = fopen (path, "wb");
    if (f == NULL || (size > 0 && fwrite (data, 1, size, f) != size) || fclose (f) != 0)
      abort ();                 /* the scratch directory is ours: cannot fail */
  }
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

void
fuzz_add_task_seeds (GPtrArray *seeds, const char *const *texts, guint n_texts)
{
  for (guint t = 0; t < F2_TASK_COUNT; t++) {
    for (guint i = 0; i < n_texts; i++) {
      GByteArray *b = g_byte_array_new ();
      guint8 task = (guint8) t;
      g_byte_array_append (b, &task, 1);
      g_byte_array_append (b, (const guint8 *) texts[i], strlen (texts[i]));
      g_ptr_array_add (seeds, g_byte_array_free_to_bytes (b));
    }
  }
}

guint
fuzz_touch (const void *data, guint64 nbytes)
{
  const guint8 *p = data;

  return nbytes ? p[0] + p[nbytes - 1] : 0;
}
