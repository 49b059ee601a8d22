/* Models shared by all florence2 elements of a process: one loaded model per
 * (directory, device, precision, threads, beam limit), reference counted. */
#pragma once

#include "backend.h"
#include "florence2.h"

G_BEGIN_DECLS

/* The shared model for these settings, loading it on first use. @device may
 * be NULL ("auto"). Release with gst_florence2_models_release(). */
Florence2Model *gst_florence2_models_acquire (const gchar * dir,
    const gchar * device, F2Precision precision, guint threads,
    guint max_beams, GError ** error);
void gst_florence2_models_release (Florence2Model * model);

G_END_DECLS
