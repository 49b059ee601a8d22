/* File and JSON checks shared by the loaders; see loader-util.h. */
#include "loader-util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* Index of the byte that ends the string, comment or other token starting
 * at @i (the closing quote, the comment's '/', or @i itself). Strings are
 * double-quoted with escapes or single-quoted without, as json-glib reads
 * them; a NUL ends them too (the parser stops there), so nothing after it
 * goes uncounted; comments are C comments. */
static gsize
skip_token (const char *text, gsize n, gsize i)
{
  switch (text[i]) {
    case '"':
      for (i++; i < n && text[i] != '"' && text[i] != '\0'; i++)
        if (text[i] == '\\')
          i++;
      return MIN (i, n - 1);
    case '\'':
      for (i++; i < n && text[i] != '\'' && text[i] != '\0'; i++)
        ;
      return MIN (i, n - 1);
    case '/':
      if (i + 1 < n && text[i + 1] == '*') {
        for (i += 2; i + 1 < n && !(text[i] == '*' && text[i + 1] == '/'); i++)
          ;
        return MIN (i + 1, n - 1);
      }
      return i;
    default:
      return i;
  }
}

guint
f2_json_count_members (const char *text, gssize len, char **duplicate)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  GHashTable *seen = duplicate ? g_hash_table_new_full (g_str_hash,
      g_str_equal, g_free, NULL) : NULL;
  guint depth = 0, count = 0;
  char top = 0;                 /* what opened the outermost level */

  if (duplicate != NULL)
    *duplicate = NULL;
  for (gsize i = 0; i < n; i++) {
    gsize end;

    switch (text[i]) {
      case '{':
      case '[':
        if (depth++ == 0)
          top = text[i];
        break;
      case '}':
      case ']':
        if (depth > 0)
          depth--;
        break;
      case '"':
      case '\'':
        end = skip_token (text, n, i);
        if (depth == 1 && top == '{') {
          /* a key when a ':' follows (after blanks and comments) */
          gsize j = end + 1;
          while (j < n && (g_ascii_isspace (text[j]) || (text[j] == '/'
                      && j + 1 < n && text[j + 1] == '*')))
            j = text[j] == '/' ? skip_token (text, n, j) + 1 : j + 1;
          if (j < n && text[j] == ':') {
            count++;
            if (seen != NULL && *duplicate == NULL) {
              char *key = g_strndup (text + i + 1, end > i ? end - i - 1 : 0);
              if (g_hash_table_contains (seen, key)) {
                *duplicate = key;
              } else {
                g_hash_table_add (seen, key);
              }
            }
          }
        }
        i = end;
        break;
      case '/':
        i = skip_token (text, n, i);
        break;
      default:
        break;
    }
  }
  if (seen != NULL)
    g_hash_table_unref (seen);
  return count;
}

gboolean
f2_json_check_depth (const char *text, gssize len, guint max_depth,
    const char *source, GQuark domain, gint code, GError **error)
{
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  guint depth = 0;

  for (gsize i = 0; i < n; i++) {
    char c = text[i];

    switch (c) {
      case '{':
      case '[':
        if (++depth > max_depth) {
          g_set_error (error, domain, code, "%s nests JSON arrays and objects "
              "more than %u levels deep (at byte %" G_GSIZE_FORMAT "); no "
              "model file does: the file is damaged or hostile, replace it "
              "with the model's original", source, max_depth, i);
          return FALSE;
        }
        break;
      case '}':
      case ']':
        if (depth > 0)
          depth--;
        break;
      case '"':
      case '\'':
      case '/':
        i = skip_token (text, n, i);
        break;
      default:
        break;
    }
  }
  return TRUE;
}

static const char *
file_kind (mode_t mode)
{
  if (S_ISFIFO (mode))
    return "a FIFO (named pipe)";
  if (S_ISCHR (mode))
    return "a character device";
  if (S_ISBLK (mode))
    return "a block device";
#ifdef S_ISSOCK
  if (S_ISSOCK (mode))
    return "a socket";
#endif
  return "not a regular file";
}

/* The problem with the path itself, from lstat() and stat(). */
static gboolean
check_path (const char *path, guint64 max_size, const char *what,
    GError **error)
{
  struct stat lst, st;

  if (lstat (path, &lst) != 0) {
    int saved = errno;
    if (saved == ENOENT)
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
          "%s does not exist; put %s there", path, what);
    else
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
          "cannot look at %s: %s; make it readable (%s)", path,
          g_strerror (saved), what);
    return FALSE;
  }
  if (stat (path, &st) != 0) {
    int saved = errno;
    char *target = S_ISLNK (lst.st_mode) ? g_file_read_link (path, NULL) : NULL;
    if (saved == ENOENT && target != NULL)
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
          "%s is a symbolic link to '%s', which does not exist (a dangling "
          "link); point the link at %s or put the file itself there",
          path, target, what);
    else if (saved == ELOOP)
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_LOOP,
          "%s is a loop of symbolic links; replace it with %s", path, what);
    else
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
          "cannot look at %s: %s; put %s there", path, g_strerror (saved), what);
    g_free (target);
    return FALSE;
  }
  if (S_ISDIR (st.st_mode)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR,
        "%s is a directory where a file is expected; put %s there instead",
        path, what);
    return FALSE;
  }
  if (!S_ISREG (st.st_mode)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s is %s, not a regular file; model files are read only from "
        "regular files: put %s there", path, file_kind (st.st_mode), what);
    return FALSE;
  }
  if ((guint64) st.st_size > max_size) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s is %" G_GUINT64_FORMAT " bytes, more than the %" G_GUINT64_FORMAT
        " bytes such a file can plausibly hold; it is not %s: replace it "
        "with the original", path, (guint64) st.st_size, max_size, what);
    return FALSE;
  }
  return TRUE;
}

int
f2_file_open_regular (const char *path, guint64 max_size, const char *what,
    guint64 *size, GError **error)
{
  struct stat st;
  int fd;

  g_return_val_if_fail (path != NULL, -1);
  if (!check_path (path, max_size, what, error))
    return -1;
  /* O_NONBLOCK: should the path have become a FIFO since, open() must not
   * wait for a writer; fstat() below refuses it */
  fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        "cannot open %s: %s; %s", path, g_strerror (saved),
        saved == EACCES ? "make it readable" : "check the file");
    return -1;
  }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)
      || (guint64) st.st_size > max_size) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s changed while it was opened and is no longer a regular file of "
        "at most %" G_GUINT64_FORMAT " bytes; put %s there", path, max_size, what);
    close (fd);
    return -1;
  }
  /* a regular file: plain blocking reads from here on */
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
  if (size != NULL)
    *size = (guint64) st.st_size;
  return fd;
}

gboolean
f2_file_read_regular (const char *path, guint64 max_size, const char *what,
    char **contents, gsize *length, GError **error)
{
  guint64 size;
  gsize done = 0;
  char *buf;
  int fd = f2_file_open_regular (path, max_size, what, &size, error);

  if (fd < 0)
    return FALSE;
  buf = g_malloc ((gsize) size + 1);
  while (done < size) {
    gssize n = read (fd, buf + done, (gsize) size - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
          "cannot read %s: %s; check the file and the disk", path,
          g_strerror (saved));
      g_free (buf);
      close (fd);
      return FALSE;
    }
    if (n == 0)
      break;                    /* it shrank: take what is there */
    done += n;
  }
  close (fd);
  buf[done] = '\0';
  *contents = buf;
  if (length != NULL)
    *length = done;
  return TRUE;
}

GMappedFile *
f2_file_map_regular (const char *path, guint64 max_size, const char *what,
    GError **error)
{
  GError *map_error = NULL;
  GMappedFile *file;
  int fd = f2_file_open_regular (path, max_size, what, NULL, error);

  if (fd < 0)
    return NULL;
  file = g_mapped_file_new_from_fd (fd, FALSE, &map_error);
  close (fd);
  if (file == NULL) {
    g_set_error (error, G_FILE_ERROR, map_error->code,
        "cannot map %s into memory: %s; check the file", path,
        map_error->message);
    g_error_free (map_error);
  }
  return file;
}

gboolean
f2_model_dir_check (const char *dir, GError **error)
{
  struct stat lst, st;
  const char *fix = "give the folder of a Florence-2 model (config.json, "
      "model.safetensors or pytorch_model.bin, tokenizer.json)";

  if (dir == NULL || *dir == '\0') {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "no model directory given; %s", fix);
    return FALSE;
  }
  if (lstat (dir, &lst) != 0) {
    int saved = errno;
    if (saved == ENOENT)
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
          "model directory '%s' does not exist; %s", dir, fix);
    else
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
          "cannot look at model directory '%s': %s; %s", dir,
          g_strerror (saved), fix);
    return FALSE;
  }
  if (stat (dir, &st) != 0) {
    int saved = errno;
    char *target = S_ISLNK (lst.st_mode) ? g_file_read_link (dir, NULL) : NULL;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        "model directory '%s' is a symbolic link to '%s', which %s; point "
        "the link at the model's folder or %s", dir, target ? target : "?",
        saved == ENOENT ? "does not exist (a dangling link)" : g_strerror (saved),
        fix);
    g_free (target);
    return FALSE;
  }
  if (!S_ISDIR (st.st_mode)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR,
        "model path '%s' is %s, not a directory; %s", dir,
        S_ISREG (st.st_mode) ? "a file" : file_kind (st.st_mode), fix);
    return FALSE;
  }
  return TRUE;
}
