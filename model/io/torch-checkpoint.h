/* PyTorch's zip checkpoint (pytorch_model.bin) read without Python.
 *
 * The archive holds <top>/data.pkl (a pickle of the state dict), the tensor
 * storages <top>/data/<key> and <top>/version. The pickle is interpreted by
 * a restricted reader: only the opcodes a plain state dict of tensors uses,
 * and only the globals collections.OrderedDict, torch._utils
 * ._rebuild_tensor_v2 / _rebuild_parameter and the Half/Float/BFloat16
 * storage types. Nothing is ever executed; anything else is refused with an
 * error naming the opcode or global. Tensor data stays in the mapped file. */
#pragma once

#include "safetensors.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct _F2TorchCheckpoint F2TorchCheckpoint;

F2TorchCheckpoint *f2_torch_checkpoint_open (const char *path, GError **error);
void f2_torch_checkpoint_close (F2TorchCheckpoint *ckpt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (F2TorchCheckpoint, f2_torch_checkpoint_close)

/* Tensors in state-dict order. */
guint f2_torch_checkpoint_n_tensors (F2TorchCheckpoint *ckpt);
const F2Tensor *f2_torch_checkpoint_get_nth (F2TorchCheckpoint *ckpt, guint i);
/* NULL when there is no tensor @name. */
const F2Tensor *f2_torch_checkpoint_lookup (F2TorchCheckpoint *ckpt,
    const char *name);

G_END_DECLS
