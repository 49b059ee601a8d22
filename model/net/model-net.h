/* The network state under a Florence2Context (florence2.c), for dumps,
 * profiles and benchmarks: not part of the public API. */
#pragma once

#include "florence2.h"
#include "net.h"

G_BEGIN_DECLS

F2Net *florence2_context_net (Florence2Context *context);
/* Batches the model's scheduler has run, and the frames in them */
void florence2_model_batch_counts (Florence2Model *model, guint64 *batches,
    guint64 *frames);

G_END_DECLS
