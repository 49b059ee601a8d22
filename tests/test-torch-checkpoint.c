/* The restricted pytorch_model.bin reader: the golden fp16 checkpoint
 * against the fp32 safetensors one, and crafted archives for what the
 * golden file does not use (OrderedDict with BUILD, parameters, tied
 * storages, offsets, other storage types). */
#include "checkpoint-craft.h"
#include "half.h"
#include "safetensors.h"
#include "test-common.h"
#include "torch-checkpoint.h"
#include "weights.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmp_dir;

/* Every tensor of the .bin is the fp16 rounding of the fp32 safetensors
 * tensor, bit for bit. */
static void
test_golden_bin (void)
{
  char *bin_path = f2_test_golden_path ("tiny/model-bin/pytorch_model.bin");
  char *st_path = f2_test_golden_path ("tiny/model/model.safetensors");
  GError *error = NULL;
  F2TorchCheckpoint *bin = f2_torch_checkpoint_open (bin_path, &error);
  F2Safetensors *st;
  guint compared = 0, aliases = 0;
  guint64 elements = 0;

  g_assert_no_error (error);
  g_assert_nonnull (bin);
  st = f2_safetensors_open (st_path, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < f2_torch_checkpoint_n_tensors (bin); i++) {
    const F2Tensor *b = f2_torch_checkpoint_get_nth (bin, i);
    const F2Tensor *s = f2_safetensors_lookup (st, b->name);
    float *ref;
    if (s == NULL) {
      /* only the tied embedding aliases may be stored in one file only */
      g_assert_true (g_str_has_suffix (b->name, "embed_tokens.weight"));
      s = f2_safetensors_lookup (st, "language_model.model.shared.weight");
      aliases++;
    }
    g_assert_nonnull (s);
    g_assert_cmpint (b->dtype, ==, F2_DTYPE_F16);
    g_assert_cmpuint (b->ndim, ==, s->ndim);
    for (guint d = 0; d < b->ndim; d++)
      g_assert_cmpuint (b->shape[d], ==, s->shape[d]);
    g_assert_cmpuint (b->nbytes, ==, b->numel * 2);
    ref = f2_tensor_dup_f32 (s);
    for (guint64 k = 0; k < b->numel; k++) {
      guint16 h;
      memcpy (&h, (const guint8 *) b->data + 2 * k, 2);
      if (h != f2_float_to_half (ref[k]))
        g_error ("%s[%" G_GUINT64_FORMAT "]: bin 0x%04x, fp16(%.9g) = 0x%04x",
            b->name, k, h, ref[k], f2_float_to_half (ref[k]));
    }
    elements += b->numel;
    g_free (ref);
    compared++;
  }
  /* and nothing of the safetensors file is missing from the .bin */
  for (guint i = 0; i < f2_safetensors_n_tensors (st); i++)
    g_assert_nonnull (f2_torch_checkpoint_lookup (bin,
            f2_safetensors_get_nth (st, i)->name));
  g_test_message ("%u tensors (%" G_GUINT64_FORMAT " values) bit-exact, %u "
      "stored aliases", compared, elements, aliases);
  g_assert_cmpuint (compared, ==, f2_safetensors_n_tensors (st) + aliases);
  f2_safetensors_close (st);
  f2_torch_checkpoint_close (bin);
  g_free (st_path);
  g_free (bin_path);
}

/* Both golden directories through the weights interface: same names, the
 * .bin chosen where there is no safetensors file, aliases resolved. */
static void
test_weights_dirs (void)
{
  char *st_dir = f2_test_golden_path ("tiny/model");
  char *bin_dir = f2_test_golden_path ("tiny/model-bin");
  GError *error = NULL;
  F2Weights *a = f2_weights_open_dir (st_dir, &error);
  F2Weights *b;
  const F2Tensor *shared;

  g_assert_no_error (error);
  b = f2_weights_open_dir (bin_dir, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (f2_weights_path (a), "model.safetensors"));
  g_assert_true (g_str_has_suffix (f2_weights_path (b), "pytorch_model.bin"));
  for (guint i = 0; i < f2_weights_n_tensors (a); i++)
    g_assert_nonnull (f2_weights_lookup (b, f2_weights_get_nth (a, i)->name));
  shared = f2_weights_lookup (a, "language_model.model.shared.weight");
  g_assert_nonnull (shared);
  g_assert_true (f2_weights_lookup_alias (a,
          "language_model.model.encoder.embed_tokens.weight") == shared);
  g_assert_true (f2_weights_lookup_alias (a,
          "language_model.model.decoder.embed_tokens.weight") == shared);
  /* the LM head is its own tensor, never an alias of shared */
  g_assert_true (f2_weights_lookup_alias (a, "language_model.lm_head.weight") != shared);
  g_assert_null (f2_weights_lookup_alias (a, "no.such.tensor"));
  f2_weights_close (b);
  f2_weights_close (a);
  g_free (bin_dir);
  g_free (st_dir);
}

static GByteArray *
storage_bytes (const void *data, gsize len)
{
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, data, len);
  return a;
}

/* A checkpoint in the older layout (OrderedDict with _metadata set through
 * BUILD), with a parameter, two tensors sharing one storage at different
 * offsets, and float32 / bfloat16 storages. */
static void
test_crafted (void)
{
  const float f[6] = { 1, 2, 3, 4, 5, 6 };
  const guint16 bf[2] = { 0x3f80, 0x4000 };
  GByteArray *p = g_byte_array_new ();
  GByteArray *storages[2] = { storage_bytes (f, sizeof (f)), storage_bytes (bf, sizeof (bf)) };
  const char *keys[2] = { "0", "1" };
  const gint64 shape23[2] = { 2, 3 }, stride23[2] = { 3, 1 };
  const gint64 shape2[1] = { 2 }, stride1[1] = { 1 };
  const gint64 shape1x2[2] = { 1, 2 }, stride_any[2] = { 99, 1 };
  GByteArray *zip;
  char *path;
  GError *error = NULL;
  F2Weights *w;
  const F2Tensor *t;
  float out[6];

  pk_op (p, 0x80);
  pk_op (p, 2);
  pk_global (p, "collections", "OrderedDict");
  pk_op (p, ')');
  pk_op (p, 'R');
  pk_op (p, 'q');
  pk_op (p, 0);
  pk_op (p, '(');
  pk_str (p, "a.weight");
  /* _rebuild_parameter(_rebuild_tensor_v2(...), True, OrderedDict()) */
  pk_global (p, "torch._utils", "_rebuild_parameter");
  pk_op (p, '(');
  pk_tensor (p, "FloatStorage", "0", 6, 0, 2, shape23, stride23);
  pk_op (p, 0x88);
  pk_global (p, "collections", "OrderedDict");
  pk_op (p, ')');
  pk_op (p, 'R');
  pk_op (p, 't');
  pk_op (p, 'R');
  pk_str (p, "a.tail");         /* elements 4..5 of the same storage */
  pk_tensor (p, "FloatStorage", "0", 6, 4, 1, shape2, stride1);
  pk_str (p, "b");              /* size-1 dims may have any stride */
  pk_tensor (p, "BFloat16Storage", "1", 2, 0, 2, shape1x2, stride_any);
  pk_op (p, 'u');
  /* state: {'_metadata': {'': {'version': 1}}} */
  pk_op (p, '}');
  pk_str (p, "_metadata");
  pk_op (p, '}');
  pk_str (p, "");
  pk_op (p, '}');
  pk_str (p, "version");
  pk_int (p, 1);
  pk_op (p, 's');
  pk_op (p, 's');
  pk_op (p, 's');
  pk_op (p, 'b');
  pk_op (p, '.');

  zip = craft_torch_zip (p, 2, keys, storages);
  path = craft_write_file (tmp_dir, "crafted.bin", zip->data, zip->len);
  w = f2_weights_open_file (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f2_weights_n_tensors (w), ==, 3);
  g_assert_cmpstr (f2_weights_get_nth (w, 0)->name, ==, "a.weight");
  t = f2_weights_expect (w, "a.weight", 2, 2, 3, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t->dtype, ==, F2_DTYPE_F32);
  f2_tensor_to_f32 (t, out);
  g_assert_cmpmem (out, sizeof (f), f, sizeof (f));
  t = f2_weights_expect (w, "a.tail", 1, 2, &error);
  g_assert_no_error (error);
  f2_tensor_to_f32 (t, out);
  g_assert_cmpfloat (out[0], ==, 5);
  g_assert_cmpfloat (out[1], ==, 6);
  t = f2_weights_expect (w, "b", 2, 1, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t->dtype, ==, F2_DTYPE_BF16);
  f2_tensor_to_f32 (t, out);
  g_assert_cmpfloat (out[0], ==, 1);
  g_assert_cmpfloat (out[1], ==, 2);
  f2_weights_close (w);

  g_unlink (path);
  g_free (path);
  g_byte_array_unref (zip);
  g_byte_array_unref (storages[0]);
  g_byte_array_unref (storages[1]);
  g_byte_array_unref (p);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  f2_test_require_golden_dir ();
  tmp_dir = g_dir_make_tmp ("f2-torch-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  g_test_add_func ("/torch-checkpoint/golden-bin", test_golden_bin);
  g_test_add_func ("/torch-checkpoint/weights-dirs", test_weights_dirs);
  g_test_add_func ("/torch-checkpoint/crafted", test_crafted);
  status = g_test_run ();
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return status;
}
