/* Fuzz target: a model.safetensors file (header JSON, offsets, dtypes). */
#include "fuzz.h"

#include "safetensors.h"
#include "checkpoint-craft.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *path = fuzz_scratch_file ("model.safetensors", data, size);
  F2Safetensors *st = f2_safetensors_open (path, NULL);
  volatile guint sum = 0;

  if (st != NULL) {
    fuzz_accepted++;
    for (guint i = 0; i < f2_safetensors_n_tensors (st); i++) {
      const F2Tensor *t = f2_safetensors_get_nth (st, i);
      sum += fuzz_touch (t->data, t->nbytes);
      sum += f2_safetensors_lookup (st, t->name) != NULL;
    }
    sum += f2_safetensors_get_metadata (st, "format") != NULL;
    f2_safetensors_close (st);
  }
  (void) sum;
  return 0;
}

void
fuzz_add_seeds (GPtrArray *seeds)
{
  static const char *const headers[] = {
    ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
        "\"__metadata__\":{\"format\":\"pt\"}}"),
    ("{\"x\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]},"
        "\"y\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[2,10]}}"),
    "{}",
  };
  static const gsize sizes[] = { 32, 10, 0 };

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++) {
    GByteArray *b = craft_safetensors (headers[i], sizes[i]);
    g_ptr_array_add (seeds, g_byte_array_free_to_bytes (b));
  }
}
