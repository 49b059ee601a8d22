/* florence2publish: publishes the JSON of each analysed buffer to a file or
 * an MQTT broker; the buffers pass through untouched. */
#pragma once

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_FLORENCE2_PUBLISH (gst_florence2_publish_get_type ())
G_DECLARE_FINAL_TYPE (GstFlorence2Publish, gst_florence2_publish, GST,
    FLORENCE2_PUBLISH, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (florence2publish);

G_END_DECLS
