/* The gst-florence2 plugin: registers florence2, florence2overlay and
 * florence2publish. */
#include <gst/gst.h>

#include "gstflorence2.h"
#ifdef HAVE_FLORENCE2_OVERLAY
#include "gstflorence2overlay.h"
#endif
#ifdef HAVE_FLORENCE2_PUBLISH
#include "gstflorence2publish.h"
#endif

#ifndef PACKAGE
#define PACKAGE "gst-florence2"
#endif
#ifndef VERSION
#define VERSION "0.1.0"
#endif

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (florence2, plugin);
#ifdef HAVE_FLORENCE2_OVERLAY
  ret |= GST_ELEMENT_REGISTER (florence2overlay, plugin);
#endif
#ifdef HAVE_FLORENCE2_PUBLISH
  ret |= GST_ELEMENT_REGISTER (florence2publish, plugin);
#endif
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, florence2,
    "Florence-2 vision-language model on video frames, and its overlay",
    plugin_init, VERSION, "MIT/X11", PACKAGE, "https://github.com/gst-florence2")
