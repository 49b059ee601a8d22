/* The network under a Florence2Model (florence2.c), for dumps, profiles and
 * benchmarks: not part of the public API. Use it under
 * florence2_model_lock() when the model is shared. */
#pragma once

#include "florence2.h"
#include "net.h"

G_BEGIN_DECLS

F2Net *florence2_model_net (Florence2Model *model);
void florence2_model_lock (Florence2Model *model);
void florence2_model_unlock (Florence2Model *model);

G_END_DECLS
