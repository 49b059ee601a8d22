/* Decoding still images (PNG, JPEG, ... whatever gdk-pixbuf reads) for the
 * CLI and the tests. */
#pragma once

#include "florence2.h"

#include <glib.h>

G_BEGIN_DECLS

/* Largest image decoded: the network's default frame limit (net.h). */
#define F2_IMAGE_MAX_SIDE 8192
/* Largest image file read. */
#define F2_IMAGE_MAX_FILE_SIZE (G_GUINT64_CONSTANT (1) << 30)

/* Decode @path into tightly packed 8-bit RGB (alpha dropped, rows of 3 * w
 * bytes). g_free() *rgb. FALSE with @error set when the file cannot be read
 * or decoded, or when its header declares more than F2_IMAGE_MAX_SIDE
 * pixels a side (refused before anything is decoded). */
gboolean f2_image_load_rgb (const char *path, guint8 **rgb, int *w, int *h,
    GError **error);

/* f2_image_load_rgb() into *@rgb, with @image describing it as a frame for
 * the library (one packed RGB plane). */
gboolean f2_image_load (const char *path, Florence2Image *image, guint8 **rgb,
    GError **error);

G_END_DECLS
