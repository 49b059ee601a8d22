/* The error domains of the core: the backend's (devices, buffers, ops) and
 * the caller's settings (precision, threads, limits). */
#include "backend-private.h"

#include <stdarg.h>

G_DEFINE_QUARK (f2-backend-error-quark, f2_backend_error)
G_DEFINE_QUARK (f2-settings-error-quark, f2_settings_error)

static void
set_error_valist (GError **error, GQuark domain, gint code,
    const char *format, va_list args)
{
  if (error != NULL)
    g_propagate_error (error, g_error_new_valist (domain, code, format, args));
}

gboolean
f2_backend_invalid (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  set_error_valist (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID, format, args);
  va_end (args);
  return FALSE;
}

gboolean
f2_settings_invalid (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  set_error_valist (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_INVALID, format, args);
  va_end (args);
  return FALSE;
}
