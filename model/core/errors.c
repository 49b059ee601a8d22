/* The error domains of the core: the backend's (devices, buffers, ops) and
 * the caller's settings (precision, threads, limits). */
#include "backend-private.h"

#include <stdarg.h>

G_DEFINE_QUARK (f2-backend-error-quark, f2_backend_error)
G_DEFINE_QUARK (f2-settings-error-quark, f2_settings_error)

gboolean
f2_backend_invalid (GError **error, const char *format, ...)
{
  va_list args;
  char *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID, message);
  g_free (message);
  return FALSE;
}
