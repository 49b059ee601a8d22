/* The safetensors reader and writer, the weights interface over the golden
 * tiny checkpoint, dtype conversions and the random-checkpoint writer. */
#include "config.h"
#include "half.h"
#include "random-checkpoint.h"
#include "safetensors.h"
#include "test-common.h"
#include "weights.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static char *tmp_dir;

static char *
golden_model_dir (void)
{
  return f2_test_golden_path ("tiny/model");
}

/* The names and shapes of the golden checkpoint are exactly those the
 * config implies, every tensor is F32 and validated. */
static void
test_golden_tensors (void)
{
  char *dir = golden_model_dir ();
  char *path = g_build_filename (dir, "model.safetensors", NULL);
  GError *error = NULL;
  F2Safetensors *st = f2_safetensors_open (path, &error);
  F2Config *config = f2_config_load_dir (dir, &error);
  GPtrArray *specs;

  g_assert_no_error (error);
  g_assert_nonnull (st);
  g_assert_cmpstr (f2_safetensors_get_metadata (st, "format"), ==, "pt");
  specs = f2_model_param_specs (config);
  g_assert_cmpuint (f2_safetensors_n_tensors (st), ==, specs->len);
  for (guint i = 0; i < specs->len; i++) {
    const F2ParamSpec *s = g_ptr_array_index (specs, i);
    const F2Tensor *t = f2_safetensors_lookup (st, s->name);
    guint64 numel = 1;
    if (t == NULL)
      g_error ("golden checkpoint lacks %s", s->name);
    g_assert_cmpint (t->dtype, ==, F2_DTYPE_F32);
    g_assert_cmpuint (t->ndim, ==, s->ndim);
    for (guint d = 0; d < s->ndim; d++) {
      g_assert_cmpuint (t->shape[d], ==, s->shape[d]);
      numel *= s->shape[d];
    }
    g_assert_cmpuint (t->numel, ==, numel);
    g_assert_cmpuint (t->nbytes, ==, numel * 4);
    /* header order is the sorted order, as is the spec list */
    g_assert_cmpstr (f2_safetensors_get_nth (st, i)->name, ==, s->name);
  }
  g_test_message ("%u tensors match the config", specs->len);
  g_ptr_array_unref (specs);
  f2_config_free (config);
  f2_safetensors_close (st);
  g_free (path);
  g_free (dir);
}

/* Values through our reader equal those of the tests' independent reader,
 * and the I64 ids of a case file equal the case's JSON. */
static void
test_golden_values (void)
{
  char *path = f2_test_golden_path ("tiny/model/model.safetensors");
  char *case_st = f2_test_golden_path ("tiny/cases/00_shapes_640x480_OD.safetensors");
  char *case_json = f2_test_golden_path ("tiny/cases/00_shapes_640x480_OD.json");
  static const char *const names[] = { "image_projection",
    "language_model.final_logits_bias", "vision_tower.convs.0.proj.weight"
  };
  GError *error = NULL;
  F2Safetensors *st = f2_safetensors_open (path, &error);
  F2Safetensors *cs;
  JsonNode *root;
  JsonArray *ids;
  const F2Tensor *t;
  float *ours, *theirs;
  gsize n;

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    t = f2_safetensors_lookup (st, names[i]);
    g_assert_nonnull (t);
    ours = f2_tensor_dup_f32 (t);
    g_assert_true (f2_test_read_tensor (path, names[i], &theirs, &n, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (n, ==, t->numel);
    g_assert_cmpmem (ours, n * 4, theirs, n * 4);
    g_free (ours);
    g_free (theirs);
  }

  cs = f2_safetensors_open (case_st, &error);
  g_assert_no_error (error);
  t = f2_safetensors_lookup (cs, "input_ids");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, F2_DTYPE_I64);
  root = f2_test_load_json (case_json);
  ids = json_object_get_array_member (json_node_get_object (root), "input_ids");
  /* [1, L] in the tensor, a flat or nested list in the JSON */
  if (JSON_NODE_HOLDS_ARRAY (json_array_get_element (ids, 0)))
    ids = json_array_get_array_element (ids, 0);
  g_assert_cmpuint (t->numel, ==, json_array_get_length (ids));
  for (guint i = 0; i < t->numel; i++) {
    gint64 v;
    memcpy (&v, (const guint8 *) t->data + 8 * i, 8);
    g_assert_cmpint (v, ==, json_array_get_int_element (ids, i));
  }
  json_node_unref (root);
  f2_safetensors_close (cs);
  f2_safetensors_close (st);
  g_free (case_json);
  g_free (case_st);
  g_free (path);
}

/* Write every dtype, an empty and a 0-d tensor, metadata; read back. */
static void
test_round_trip (void)
{
  guint8 bytes[64];
  F2Tensor t[6] = {
    {.name = "f32", .dtype = F2_DTYPE_F32, .ndim = 2, .shape = {2, 3}},
    {.name = "f16", .dtype = F2_DTYPE_F16, .ndim = 1, .shape = {5}},
    {.name = "bf16", .dtype = F2_DTYPE_BF16, .ndim = 3, .shape = {1, 2, 2}},
    {.name = "i64", .dtype = F2_DTYPE_I64, .ndim = 1, .shape = {2}},
    {.name = "empty", .dtype = F2_DTYPE_I32, .ndim = 2, .shape = {0, 7}},
    {.name = "scalar", .dtype = F2_DTYPE_I32, .ndim = 0},
  };
  GHashTable *metadata = g_hash_table_new (g_str_hash, g_str_equal);
  char *path = g_build_filename (tmp_dir, "round.safetensors", NULL);
  GError *error = NULL;
  F2Safetensors *st;
  gsize offset = 0;

  for (guint i = 0; i < sizeof (bytes); i++)
    bytes[i] = (guint8) (i * 7 + 1);
  for (guint i = 0; i < G_N_ELEMENTS (t); i++)
    t[i].data = bytes;
  g_hash_table_insert (metadata, "format", "pt");
  g_hash_table_insert (metadata, "note", "a \"quoted\" value");
  g_assert_true (f2_safetensors_write (path, t, G_N_ELEMENTS (t), metadata, &error));
  g_assert_no_error (error);
  st = f2_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f2_safetensors_n_tensors (st), ==, G_N_ELEMENTS (t));
  g_assert_cmpstr (f2_safetensors_get_metadata (st, "note"), ==, "a \"quoted\" value");
  for (guint i = 0; i < G_N_ELEMENTS (t); i++) {
    const F2Tensor *r = f2_safetensors_lookup (st, t[i].name);
    guint64 numel = 1;
    g_assert_nonnull (r);
    g_assert_cmpint (r->dtype, ==, t[i].dtype);
    g_assert_cmpuint (r->ndim, ==, t[i].ndim);
    for (guint d = 0; d < t[i].ndim; d++) {
      g_assert_cmpuint (r->shape[d], ==, t[i].shape[d]);
      numel *= t[i].shape[d];
    }
    g_assert_cmpuint (r->nbytes, ==, numel * f2_dtype_size (t[i].dtype));
    g_assert_cmpmem (r->data, r->nbytes, bytes, r->nbytes);
    /* written back to back, data area 8-byte aligned */
    if (r->nbytes > 0)
      g_assert_cmpuint ((gsize) ((const guint8 *) r->data
              - (const guint8 *) f2_safetensors_lookup (st, "f32")->data), ==, offset);
    offset += r->nbytes;
  }
  g_assert_cmpuint (GPOINTER_TO_SIZE (f2_safetensors_lookup (st, "f32")->data) % 8, ==, 0);
  f2_safetensors_close (st);

  {
    float values[3] = { 1.5f, -2.0f, 1e-8f };
    g_assert_true (f2_safetensors_write_f32 (path, "x", values, 3, &error));
    st = f2_safetensors_open (path, &error);
    g_assert_no_error (error);
    g_assert_cmpmem (f2_safetensors_lookup (st, "x")->data, 12, values, 12);
    f2_safetensors_close (st);
  }
  g_unlink (path);
  g_hash_table_unref (metadata);
  g_free (path);
}

/* Widening is exact; narrowing rounds to nearest even. */
static void
test_conversions (void)
{
  const guint16 halves[] = { 0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00,
    0x7bff, 0x7c00, 0xfc00, 0x7e00, 0xc000
  };
  const double expected[] = { 0.0, -0.0, ldexp (1, -24), ldexp (1023, -24),
    ldexp (1, -14), 1.0, 65504.0, INFINITY, -INFINITY, NAN, -2.0
  };
  const guint16 bf[] = { 0x3f80, 0xc040, 0x0001, 0x7f80, 0x7fc0 };
  const double bf_expected[] = { 1.0, -3.0, ldexp (1, -133), INFINITY, NAN };
  const float narrow[] = { 1.0f + ldexpf (1, -11), 1.0f + 3 * ldexpf (1, -11),
    65520.0f, ldexpf (1, -25), ldexpf (3, -26), 1e-30f, -0.0f
  };
  const guint16 narrow_expected[] = { 0x3c00, 0x3c02, 0x7c00, 0x0000, 0x0001,
    0x0000, 0x8000
  };
  F2Tensor t = {.dtype = F2_DTYPE_F16, .ndim = 1 };
  float out[16];
  guint16 hout[16];

  t.numel = G_N_ELEMENTS (halves);
  t.data = halves;
  f2_tensor_to_f32 (&t, out);
  for (guint i = 0; i < t.numel; i++) {
    if (isnan (expected[i]))
      g_assert_true (isnan (out[i]));
    else {
      g_assert_cmpfloat (out[i], ==, expected[i]);
      g_assert_cmpint (signbit (out[i]) != 0, ==, signbit (expected[i]) != 0);
    }
  }
  f2_tensor_to_f16 (&t, hout);
  g_assert_cmpmem (hout, sizeof (halves), halves, sizeof (halves));

  t.dtype = F2_DTYPE_BF16;
  t.numel = G_N_ELEMENTS (bf);
  t.data = bf;
  f2_tensor_to_f32 (&t, out);
  for (guint i = 0; i < t.numel; i++) {
    if (isnan (bf_expected[i]))
      g_assert_true (isnan (out[i]));
    else
      g_assert_cmpfloat (out[i], ==, bf_expected[i]);
  }

  t.dtype = F2_DTYPE_F32;
  t.numel = G_N_ELEMENTS (narrow);
  t.data = narrow;
  f2_tensor_to_f16 (&t, hout);
  for (guint i = 0; i < t.numel; i++)
    g_assert_cmphex (hout[i], ==, narrow_expected[i]);
}

/* The cosine temporal table equals the reference's buffer. */
static void
test_temporal_table (void)
{
  char *path = f2_test_golden_path ("tiny/model/model.safetensors");
  GError *error = NULL;
  float *golden, *ours;
  gsize n;
  F2Safetensors *st = f2_safetensors_open (path, &error);
  const F2Tensor *t;
  double worst = 0;

  g_assert_no_error (error);
  t = f2_safetensors_lookup (st, "visual_temporal_embed.pos_idx_to_embed");
  g_assert_nonnull (t);
  golden = f2_tensor_dup_f32 (t);
  n = t->numel;
  ours = g_new (float, n);
  f2_model_temporal_table (t->shape[0], t->shape[1], ours);
  for (gsize i = 0; i < n; i++)
    worst = MAX (worst, fabs ((double) ours[i] - golden[i]));
  g_test_message ("temporal table: max |diff| %.3g", worst);
  /* the reference computes in float32: arguments up to ~100 rad */
  g_assert_cmpfloat (worst, <, 1e-4);
  g_free (ours);
  g_free (golden);
  f2_safetensors_close (st);
  g_free (path);
}

/* A random checkpoint for the tiny config loads back through the weights
 * interface with the golden checkpoint's names and shapes, in every dtype. */
static void
test_random_checkpoint (void)
{
  const F2DType dtypes[] = { F2_DTYPE_F32, F2_DTYPE_F16, F2_DTYPE_BF16 };
  char *golden = golden_model_dir ();
  GError *error = NULL;
  F2Weights *ref = f2_weights_open_dir (golden, &error);

  g_assert_no_error (error);
  for (guint k = 0; k < G_N_ELEMENTS (dtypes); k++) {
    char *out = g_build_filename (tmp_dir, "random", NULL);
    char *st_path = g_build_filename (out, "model.safetensors", NULL);
    F2Weights *w;
    const F2Tensor *t;
    float *v;
    double sum = 0, sum2 = 0;

    g_assert_true (f2_random_checkpoint_write_dir (golden, out, 7, dtypes[k], &error));
    g_assert_no_error (error);
    w = f2_weights_open_dir (out, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (f2_weights_n_tensors (w), ==, f2_weights_n_tensors (ref));
    for (guint i = 0; i < f2_weights_n_tensors (ref); i++) {
      const F2Tensor *r = f2_weights_get_nth (ref, i);
      t = f2_weights_expect_shape (w, r->name, r->ndim, r->shape, &error);
      g_assert_no_error (error);
      g_assert_cmpint (t->dtype, ==, dtypes[k]);
    }
    /* the config files came along */
    g_assert_true (g_file_test (st_path, G_FILE_TEST_IS_REGULAR));
    {
      F2Config *c = f2_config_load_dir (out, &error);
      g_assert_no_error (error);
      f2_config_free (c);
    }
    /* a weight drawn N(0, 1/fan_in): mean ~0, variance ~1/fan_in */
    t = f2_weights_lookup (w, "language_model.model.encoder.layers.0.fc1.weight");
    v = f2_tensor_dup_f32 (t);
    for (guint64 i = 0; i < t->numel; i++) {
      sum += v[i];
      sum2 += (double) v[i] * v[i];
    }
    g_assert_cmpfloat (fabs (sum / t->numel), <, 0.05);
    g_assert_cmpfloat (fabs (sum2 / t->numel * t->shape[1] - 1.0), <, 0.1);
    g_free (v);
    /* loc ids carry +1 in the logits bias */
    t = f2_weights_lookup (w, "language_model.final_logits_bias");
    v = f2_tensor_dup_f32 (t);
    g_assert_cmpfloat (v[50269 + 500], >, 0.7);
    g_free (v);
    f2_weights_close (w);
    g_free (st_path);
    g_free (out);
  }
  f2_weights_close (ref);
  g_free (golden);
}

/* Same seed, same bytes; another seed, other bytes. */
static void
test_random_deterministic (void)
{
  char *golden = golden_model_dir ();
  char *a = g_build_filename (tmp_dir, "seed-a.safetensors", NULL);
  char *b = g_build_filename (tmp_dir, "seed-b.safetensors", NULL);
  GError *error = NULL;
  F2Config *config = f2_config_load_dir (golden, &error);
  char *ca, *cb;
  gsize la, lb;

  g_assert_no_error (error);
  g_assert_true (f2_random_checkpoint_write (config, a, 3, F2_DTYPE_F16, &error));
  g_assert_true (f2_random_checkpoint_write (config, b, 3, F2_DTYPE_F16, &error));
  g_assert_true (g_file_get_contents (a, &ca, &la, NULL));
  g_assert_true (g_file_get_contents (b, &cb, &lb, NULL));
  g_assert_cmpmem (ca, la, cb, lb);
  g_free (cb);
  g_assert_true (f2_random_checkpoint_write (config, b, 4, F2_DTYPE_F16, &error));
  g_assert_true (g_file_get_contents (b, &cb, &lb, NULL));
  g_assert_cmpuint (la, ==, lb);
  g_assert_true (memcmp (ca, cb, la) != 0);
  g_free (ca);
  g_free (cb);
  g_unlink (a);
  g_unlink (b);
  f2_config_free (config);
  g_free (a);
  g_free (b);
  g_free (golden);
}

/* A sharded checkpoint: model.safetensors.index.json and its shards. */
static void
test_sharded (void)
{
  const float v[4] = { 1, 2, 3, 4 };
  F2Tensor s1[2] = {
    {.name = "a", .dtype = F2_DTYPE_F32, .ndim = 1, .shape = {2}, .data = v},
    {.name = "b", .dtype = F2_DTYPE_F32, .ndim = 1, .shape = {1}, .data = v + 2},
  };
  F2Tensor s2[1] = {
    {.name = "c", .dtype = F2_DTYPE_F32, .ndim = 2, .shape = {1, 1}, .data = v + 3},
  };
  char *dir = g_build_filename (tmp_dir, "sharded", NULL);
  char *p1 = g_build_filename (dir, "model-00001-of-00002.safetensors", NULL);
  char *p2 = g_build_filename (dir, "model-00002-of-00002.safetensors", NULL);
  char *index = g_build_filename (dir, "model.safetensors.index.json", NULL);
  const char *good = "{\"metadata\": {}, \"weight_map\": {"
      "\"a\": \"model-00001-of-00002.safetensors\", "
      "\"b\": \"model-00001-of-00002.safetensors\", "
      "\"c\": \"model-00002-of-00002.safetensors\"}}";
  const char *lying = "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", "
      "\"d\": \"model-00002-of-00002.safetensors\"}}";
  const char *escaping = "{\"weight_map\": {\"a\": \"../model.safetensors\"}}";
  GError *error = NULL;
  F2Weights *w;
  float out;

  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_assert_true (f2_safetensors_write (p1, s1, 2, NULL, &error));
  g_assert_true (f2_safetensors_write (p2, s2, 1, NULL, &error));
  g_assert_true (g_file_set_contents (index, good, -1, NULL));
  w = f2_weights_open_dir (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f2_weights_n_tensors (w), ==, 3);
  f2_tensor_to_f32 (f2_weights_expect (w, "c", 2, 1, 1, &error), &out);
  g_assert_no_error (error);
  g_assert_cmpfloat (out, ==, 4);
  f2_weights_close (w);

  g_assert_true (g_file_set_contents (index, lying, -1, NULL));
  g_assert_null (f2_weights_open_dir (dir, &error));
  g_assert_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "'d'"));
  g_clear_error (&error);
  g_assert_true (g_file_set_contents (index, escaping, -1, NULL));
  g_assert_null (f2_weights_open_dir (dir, &error));
  g_assert_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT);
  g_clear_error (&error);
  g_assert_true (g_file_set_contents (index, "{\"weight_map\": 3", -1, NULL));
  g_assert_null (f2_weights_open_dir (dir, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);

  g_free (index);
  g_free (p2);
  g_free (p1);
  g_free (dir);
}


int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  f2_test_require_golden_dir ();
  tmp_dir = g_dir_make_tmp ("f2-safetensors-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  g_test_add_func ("/safetensors/golden-tensors", test_golden_tensors);
  g_test_add_func ("/safetensors/golden-values", test_golden_values);
  g_test_add_func ("/safetensors/round-trip", test_round_trip);
  g_test_add_func ("/safetensors/conversions", test_conversions);
  g_test_add_func ("/safetensors/temporal-table", test_temporal_table);
  g_test_add_func ("/safetensors/sharded", test_sharded);
  g_test_add_func ("/safetensors/random-checkpoint", test_random_checkpoint);
  g_test_add_func ("/safetensors/random-deterministic", test_random_deterministic);
  status = g_test_run ();
  f2_test_remove_tree (tmp_dir);
  g_free (tmp_dir);
  return status;
}
