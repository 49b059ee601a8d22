/* Checks every loader of a model directory makes before it trusts a file:
 * the path is a regular file (not a directory, FIFO, device or dangling
 * link) of a plausible size, and JSON text does not nest deeper than any
 * model file does (json-glib's parser recurses once per level, so deep
 * nesting would overflow the stack of the host process).
 *
 * File problems are G_FILE_ERROR errors whose message names the file, the
 * problem and the fix. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Deepest JSON nesting accepted; the published model files nest at most 5
 * levels. */
#define F2_JSON_MAX_DEPTH 64

/* Size caps per kind of file. */
#define F2_MAX_JSON_FILE_SIZE (G_GUINT64_CONSTANT (64) << 20)   /* configs, tokenizer files */
#define F2_MAX_WEIGHTS_FILE_SIZE (G_GUINT64_CONSTANT (256) << 30)       /* checkpoints */

/* TRUE when @text (@len bytes, or up to its NUL with -1) nests arrays and
 * objects at most @max_depth levels deep. Strings (double-quoted with
 * escapes, single-quoted) and comments are skipped as json-glib skips them.
 * Otherwise FALSE with an error in @domain/@code that names @source, the
 * byte offset and the limit. */
gboolean f2_json_check_depth (const char *text, gssize len, guint max_depth,
    const char *source, GQuark domain, gint code, GError **error);

/* Number of members of the outermost object of @text as written, and in
 * *@duplicate (g_free() it) the first name written twice (as between the
 * quotes), or NULL. json-glib keeps only the last member of a name, so
 * compare this with json_object_get_size() to see names given twice. */
guint f2_json_count_members (const char *text, gssize len, char **duplicate);

/* Opens @path for reading when it is a regular file (symbolic links
 * followed) of at most @max_size bytes; never blocks on a FIFO. @what
 * names the file for the fix in messages ("the config.json published with
 * the model"). Returns the descriptor (close() it) and the size, or -1
 * with a G_FILE_ERROR: NOENT (missing, or a dangling link), ISDIR, INVAL
 * (not a regular file, or too large), ACCES... */
int f2_file_open_regular (const char *path, guint64 max_size,
    const char *what, guint64 *size, GError **error);

/* The whole regular file @path (checked as above), NUL-terminated. */
gboolean f2_file_read_regular (const char *path, guint64 max_size,
    const char *what, char **contents, gsize *length, GError **error);

/* @path (checked as above) mapped read-only. */
GMappedFile *f2_file_map_regular (const char *path, guint64 max_size,
    const char *what, GError **error);

/* TRUE when @dir is a directory (symbolic links followed); otherwise a
 * G_FILE_ERROR that tells a missing path, a dangling link and a file
 * apart, naming @dir and saying that a model directory is needed. */
gboolean f2_model_dir_check (const char *dir, GError **error);

G_END_DECLS
