/* Fuzz target: a pytorch_model.bin (zip archive and restricted pickle). */
#include "fuzz.h"

#include "checkpoint-craft.h"
#include "torch-checkpoint.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_scratch_file ("pytorch_model.bin", data, size);
  F2TorchCheckpoint *ckpt = f2_torch_checkpoint_open (path, NULL);
  volatile guint sum = 0;

  if (ckpt != NULL) {
    fuzz_accepted++;
    for (guint i = 0; i < f2_torch_checkpoint_n_tensors (ckpt); i++) {
      const F2Tensor *t = f2_torch_checkpoint_get_nth (ckpt, i);
      sum += fuzz_touch (t->data, t->nbytes);
      sum += f2_torch_checkpoint_lookup (ckpt, t->name) != NULL;
    }
    f2_torch_checkpoint_close (ckpt);
  }
  (void) sum;
  return 0;
}

/* A state dict {name: tensor, ...} as torch.save writes it (protocol 2). */
static GBytes *
state_dict (const char *storage_type, guint n, guint elem)
{
  GByteArray *pickle = g_byte_array_new ();
  GByteArray *storages[2];
  const char *keys[] = { "0", "1" };
  const char *names[] = { "encoder.weight", "encoder.bias" };
  GByteArray *zip;

  pk_op (pickle, 0x80);           /* PROTO 2 */
  pk_op (pickle, 2);
  pk_global (pickle, "collections", "OrderedDict");
  pk_op (pickle, ')');            /* EMPTY_TUPLE */
  pk_op (pickle, 'R');            /* REDUCE */
  pk_op (pickle, '(');            /* MARK */
  for (guint i = 0; i < n; i++) {
    /* a [2, 3] weight, then a [6] bias */
    gint64 shape[2] = { 2, 3 }, stride[2] = { 3, 1 }, flat = 6, unit = 1;
    pk_str (pickle, names[i]);
    if (i == 0)
      pk_tensor (pickle, storage_type, keys[i], 6, 0, 2, shape, stride);
    else
      pk_tensor (pickle, storage_type, keys[i], 6, 0, 1, &flat, &unit);
    storages[i] = g_byte_array_new ();
    g_byte_array_set_size (storages[i], 6 * elem);
    for (guint j = 0; j < 6 * elem; j++)
      storages[i]->data[j] = (guint8) (j * 37);
  }
  pk_op (pickle, 'u');            /* SETITEMS */
  pk_op (pickle, '.');            /* STOP */
  zip = craft_torch_zip (pickle, n, keys, storages);
  for (guint i = 0; i < n; i++)
    g_byte_array_unref (storages[i]);
  g_byte_array_unref (pickle);
  return g_byte_array_free_to_bytes (zip);
}

void
fuzz_add_seeds (GPtrArray *seeds)
{
  g_ptr_array_add (seeds, state_dict ("FloatStorage", 2, 4));
  g_ptr_array_add (seeds, state_dict ("HalfStorage", 1, 2));
}
