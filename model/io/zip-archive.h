/* A minimal read-only zip reader over a memory-mapped file, for PyTorch
 * checkpoints: central directory (zip64 included), local headers, stored
 * (uncompressed) entries only. Entries are returned in place. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _F2ZipArchive F2ZipArchive;

/* Errors are F2_CHECKPOINT_ERROR (safetensors.h) or G_FILE_ERROR. */
F2ZipArchive *f2_zip_archive_open (const char *path, GError **error);
void f2_zip_archive_free (F2ZipArchive *zip);

guint f2_zip_archive_n_entries (F2ZipArchive *zip);
const char *f2_zip_archive_entry_name (F2ZipArchive *zip, guint i);

/* The bytes of entry @name, in place. FALSE with @error set when there is
 * no such entry, it is compressed or encrypted, or it lies outside the
 * file. */
gboolean f2_zip_archive_get (F2ZipArchive *zip, const char *name,
    const guint8 **data, guint64 *size, GError **error);

G_END_DECLS
