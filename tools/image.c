/* Still image decoding with gdk-pixbuf; see image.h. */
#include "image.h"
#include "loader-util.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>
#include <unistd.h>

gboolean
f2_image_load_rgb (const char *path, guint8 **rgb, int *w, int *h,
    GError **error)
{
  GError *local = NULL;
  GdkPixbuf *pixbuf;
  const guint8 *pixels;
  int width, height, stride, channels, fd;
  guint8 *out;

  g_return_val_if_fail (path != NULL && rgb != NULL, FALSE);

  /* a regular file (a FIFO would block, a device never end) ... */
  fd = f2_file_open_regular (path, F2_IMAGE_MAX_FILE_SIZE,
      "a PNG or JPEG image", NULL, error);
  if (fd < 0)
    return FALSE;
  close (fd);
  /* ... whose header declares a size we take: decoding first would
   * allocate whatever a small file claims */
  width = height = 0;
  if (gdk_pixbuf_get_file_info (path, &width, &height) != NULL
      && (width > F2_IMAGE_MAX_SIDE || height > F2_IMAGE_MAX_SIDE)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
        "image '%s' is %d x %d pixels; at most %d x %d are accepted: scale "
        "it down first", path, width, height, F2_IMAGE_MAX_SIDE,
        F2_IMAGE_MAX_SIDE);
    return FALSE;
  }

  pixbuf = gdk_pixbuf_new_from_file (path, &local);
  if (pixbuf == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "cannot decode image '%s': %s", path, local->message);
    g_error_free (local);
    return FALSE;
  }
  width = gdk_pixbuf_get_width (pixbuf);
  height = gdk_pixbuf_get_height (pixbuf);
  stride = gdk_pixbuf_get_rowstride (pixbuf);
  channels = gdk_pixbuf_get_n_channels (pixbuf);
  if (width > F2_IMAGE_MAX_SIDE || height > F2_IMAGE_MAX_SIDE) {
    /* a format whose header gdk-pixbuf could not read up front */
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
        "image '%s' is %d x %d pixels; at most %d x %d are accepted: scale "
        "it down first", path, width, height, F2_IMAGE_MAX_SIDE,
        F2_IMAGE_MAX_SIDE);
    g_object_unref (pixbuf);
    return FALSE;
  }
  if (gdk_pixbuf_get_colorspace (pixbuf) != GDK_COLORSPACE_RGB
      || gdk_pixbuf_get_bits_per_sample (pixbuf) != 8
      || (channels != 3 && channels != 4) || width <= 0 || height <= 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
        "image '%s' decodes to an unsupported pixel layout (%d channels of "
        "%d bits); convert it to 8-bit RGB", path, channels,
        gdk_pixbuf_get_bits_per_sample (pixbuf));
    g_object_unref (pixbuf);
    return FALSE;
  }

  pixels = gdk_pixbuf_read_pixels (pixbuf);
  out = g_malloc ((gsize) width * height * 3);
  for (int y = 0; y < height; y++) {
    const guint8 *row = pixels + (gsize) y * stride;
    guint8 *o = out + (gsize) y * width * 3;

    if (channels == 3) {
      memcpy (o, row, (gsize) width * 3);
      continue;
    }
    for (int x = 0; x < width; x++)
      memcpy (o + 3 * x, row + 4 * x, 3);
  }
  g_object_unref (pixbuf);
  *rgb = out;
  if (w != NULL)
    *w = width;
  if (h != NULL)
    *h = height;
  return TRUE;
}

gboolean
f2_image_load (const char *path, Florence2Image *image, guint8 **rgb,
    GError **error)
{
  int w, h;

  if (!f2_image_load_rgb (path, rgb, &w, &h, error))
    return FALSE;
  memset (image, 0, sizeof *image);
  image->format = FLORENCE2_PIXEL_RGB;
  image->width = (guint32) w;
  image->height = (guint32) h;
  image->stride[0] = (guint32) w * 3;
  image->data = *rgb;
  image->size = (gsize) w * h * 3;
  return TRUE;
}
