/* Read-only zip reader: enough of the format for the archives torch.save()
 * writes (stored entries, zip64 end records, data descriptors). */
#include "zip-archive.h"
#include "loader-util.h"
#include "safetensors.h"

#include <string.h>

#define SIG_EOCD 0x06054b50
#define SIG_ZIP64_LOCATOR 0x07064b50
#define SIG_ZIP64_EOCD 0x06064b50
#define SIG_CENTRAL 0x02014b50
#define SIG_LOCAL 0x04034b50

#define EOCD_SIZE 22
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30

#define FIX "the file is truncated or damaged: re-download it"

typedef struct {
  char *name;
  guint16 flags, method;
  guint64 compressed, uncompressed, local_offset;
} Entry;

struct _F2ZipArchive {
  char *path;
  GMappedFile *file;
  const guint8 *bytes;
  guint64 size;
  GArray *entries;              /* Entry */
  GHashTable *by_name;          /* name -> index + 1 */
};

static guint16
get16 (const guint8 *p)
{
  return (guint16) (p[0] | (p[1] << 8));
}

static guint32
get32 (const guint8 *p)
{
  return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16)
      | ((guint32) p[3] << 24);
}

static guint64
get64 (const guint8 *p)
{
  return (guint64) get32 (p) | ((guint64) get32 (p + 4) << 32);
}

static gboolean
corrupt (F2ZipArchive *zip, GError **error, const char *what)
{
  g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
      "%s is not a valid PyTorch zip checkpoint (%s); " FIX, zip->path, what);
  return FALSE;
}

/* Does [offset, offset + length) lie inside the file? */
static gboolean
in_file (F2ZipArchive *zip, guint64 offset, guint64 length)
{
  return offset <= zip->size && length <= zip->size - offset;
}

/* Replace 0xffffffff fields by the zip64 extra field's values, in the
 * order the format gives them. */
static gboolean
apply_zip64_extra (Entry *e, const guint8 *extra, guint extra_len,
    gboolean *ok)
{
  guint pos = 0;

  while (pos + 4 <= extra_len) {
    guint16 id = get16 (extra + pos);
    guint16 len = get16 (extra + pos + 2);
    const guint8 *field = extra + pos + 4;
    guint used = 0;
    if (pos + 4 + len > extra_len)
      break;
    if (id == 0x0001) {
      guint64 *targets[] = { &e->uncompressed, &e->compressed, &e->local_offset };
      for (guint i = 0; i < G_N_ELEMENTS (targets); i++) {
        if (*targets[i] != 0xffffffffu)
          continue;
        if (used + 8 > len) {
          *ok = FALSE;
          return FALSE;
        }
        *targets[i] = get64 (field + used);
        used += 8;
      }
      return TRUE;
    }
    pos += 4 + len;
  }
  return TRUE;
}

static gboolean
read_central_directory (F2ZipArchive *zip, GError **error)
{
  guint64 eocd = G_MAXUINT64, cd_offset, cd_size, n_entries, pos;
  guint64 search_start;
  const guint8 *p = zip->bytes;

  if (zip->size < EOCD_SIZE)
    return corrupt (zip, error, "too short for a zip archive");
  /* the end record is followed by a comment of at most 65535 bytes */
  search_start = zip->size > EOCD_SIZE + 65535 ? zip->size - EOCD_SIZE - 65535 : 0;
  for (guint64 i = zip->size - EOCD_SIZE + 1; i-- > search_start;) {
    if (get32 (p + i) == SIG_EOCD && i + EOCD_SIZE + get16 (p + i + 20) == zip->size) {
      eocd = i;
      break;
    }
  }
  if (eocd == G_MAXUINT64)
    return corrupt (zip, error, "no zip end-of-central-directory record");
  n_entries = get16 (p + eocd + 10);
  cd_size = get32 (p + eocd + 12);
  cd_offset = get32 (p + eocd + 16);

  if (eocd >= 20 && get32 (p + eocd - 20) == SIG_ZIP64_LOCATOR) {
    guint64 z64 = get64 (p + eocd - 20 + 8);
    if (!in_file (zip, z64, 56) || get32 (p + z64) != SIG_ZIP64_EOCD)
      return corrupt (zip, error, "bad zip64 end record");
    n_entries = get64 (p + z64 + 32);
    cd_size = get64 (p + z64 + 40);
    cd_offset = get64 (p + z64 + 48);
  }
  if (!in_file (zip, cd_offset, cd_size))
    return corrupt (zip, error, "central directory outside the file");
  /* each entry takes at least CENTRAL_SIZE bytes */
  if (n_entries > cd_size / CENTRAL_SIZE)
    return corrupt (zip, error, "more entries than the central directory holds");

  pos = cd_offset;
  for (guint64 i = 0; i < n_entries; i++) {
    Entry e = { 0 };
    guint name_len, extra_len, comment_len;
    gboolean ok = TRUE;
    if (!in_file (zip, pos, CENTRAL_SIZE) || pos + CENTRAL_SIZE > cd_offset + cd_size
        || get32 (p + pos) != SIG_CENTRAL)
      return corrupt (zip, error, "bad central directory entry");
    e.flags = get16 (p + pos + 8);
    e.method = get16 (p + pos + 10);
    e.compressed = get32 (p + pos + 20);
    e.uncompressed = get32 (p + pos + 24);
    name_len = get16 (p + pos + 28);
    extra_len = get16 (p + pos + 30);
    comment_len = get16 (p + pos + 32);
    e.local_offset = get32 (p + pos + 42);
    if (pos + CENTRAL_SIZE + name_len + extra_len + comment_len > cd_offset + cd_size)
      return corrupt (zip, error, "central directory entry runs past its end");
    apply_zip64_extra (&e, p + pos + CENTRAL_SIZE + name_len, extra_len, &ok);
    if (!ok)
      return corrupt (zip, error, "bad zip64 extra field");
    e.name = g_strndup ((const char *) p + pos + CENTRAL_SIZE, name_len);
    if (strlen (e.name) != name_len || g_hash_table_contains (zip->by_name, e.name)) {
      g_free (e.name);
      return corrupt (zip, error, "bad or duplicate entry name");
    }
    g_array_append_val (zip->entries, e);
    g_hash_table_insert (zip->by_name,
        g_array_index (zip->entries, Entry, zip->entries->len - 1).name,
        GUINT_TO_POINTER (zip->entries->len));
    pos += CENTRAL_SIZE + name_len + extra_len + comment_len;
  }
  return TRUE;
}

F2ZipArchive *
f2_zip_archive_open (const char *path, GError **error)
{
  F2ZipArchive *zip;
  GMappedFile *file;

  /* a regular file only: a FIFO or a device would block or never end */
  file = f2_file_map_regular (path, F2_MAX_WEIGHTS_FILE_SIZE,
      "the model's checkpoint (pytorch_model.bin)", error);
  if (file == NULL)
    return NULL;
  zip = g_new0 (F2ZipArchive, 1);
  zip->path = g_strdup (path);
  zip->file = file;
  zip->bytes = (const guint8 *) g_mapped_file_get_contents (file);
  zip->size = g_mapped_file_get_length (file);
  zip->entries = g_array_new (FALSE, FALSE, sizeof (Entry));
  zip->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  if (!read_central_directory (zip, error)) {
    f2_zip_archive_free (zip);
    return NULL;
  }
  return zip;
}

void
f2_zip_archive_free (F2ZipArchive *zip)
{
  if (zip == NULL)
    return;
  for (guint i = 0; i < zip->entries->len; i++)
    g_free (g_array_index (zip->entries, Entry, i).name);
  g_array_free (zip->entries, TRUE);
  g_hash_table_unref (zip->by_name);
  g_mapped_file_unref (zip->file);
  g_free (zip->path);
  g_free (zip);
}

guint
f2_zip_archive_n_entries (F2ZipArchive *zip)
{
  return zip->entries->len;
}

const char *
f2_zip_archive_entry_name (F2ZipArchive *zip, guint i)
{
  g_return_val_if_fail (i < zip->entries->len, NULL);
  return g_array_index (zip->entries, Entry, i).name;
}

gboolean
f2_zip_archive_get (F2ZipArchive *zip, const char *name,
    const guint8 **data, guint64 *size, GError **error)
{
  guint index = GPOINTER_TO_UINT (g_hash_table_lookup (zip->by_name, name));
  const Entry *e;
  guint64 start;
  guint name_len, extra_len;
  const guint8 *p = zip->bytes;

  if (index == 0) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s has no entry '%s'; " FIX, zip->path, name);
    return FALSE;
  }
  e = &g_array_index (zip->entries, Entry, index - 1);
  if (e->flags & 1) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s: entry '%s' is encrypted; use an unencrypted checkpoint",
        zip->path, name);
    return FALSE;
  }
  if (e->method != 0) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "%s: entry '%s' is compressed (zip method %u); only stored entries "
        "are read, as torch.save() writes them: re-save the checkpoint with "
        "torch.save() or convert it to model.safetensors", zip->path, name,
        e->method);
    return FALSE;
  }
  if (e->compressed != e->uncompressed)
    return corrupt (zip, error, "stored entry with two different sizes");
  if (!in_file (zip, e->local_offset, LOCAL_SIZE)
      || get32 (p + e->local_offset) != SIG_LOCAL)
    return corrupt (zip, error, "bad local header");
  name_len = get16 (p + e->local_offset + 26);
  extra_len = get16 (p + e->local_offset + 28);
  start = e->local_offset + LOCAL_SIZE + name_len + extra_len;
  if (!in_file (zip, e->local_offset + LOCAL_SIZE, name_len)
      || name_len != strlen (e->name)
      || memcmp (p + e->local_offset + LOCAL_SIZE, e->name, name_len) != 0)
    return corrupt (zip, error, "local header names another entry");
  if (!in_file (zip, start, e->uncompressed)) {
    g_set_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "%s: entry '%s' runs past the end of the file; " FIX, zip->path, name);
    return FALSE;
  }
  *data = p + start;
  *size = e->uncompressed;
  return TRUE;
}
