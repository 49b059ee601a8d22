/* Decoding still images (PNG, JPEG, ... whatever gdk-pixbuf reads) for the
 * CLI and the tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Decode @path into tightly packed 8-bit RGB (alpha dropped, rows of 3 * w
 * bytes). g_free() *rgb. FALSE with @error set when the file cannot be read
 * or decoded. */
gboolean f2_image_load_rgb (const char *path, guint8 **rgb, int *w, int *h,
    GError **error);

G_END_DECLS
