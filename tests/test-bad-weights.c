/* Broken, lying and hostile weight files, made at run time: each must give a
 * GError that names the file (or tensor) and what to do, and never crash. */
#include "checkpoint-craft.h"
#include "safetensors.h"
#include "test-common.h"
#include "torch-checkpoint.h"
#include "weights.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp_dir;
static guint n_cases;

/* @error is set in @domain/@code and its message contains every one of the
 * NULL-terminated substrings. */
static void
check_error (GError *error, GQuark domain, gint code, ...)
{
  va_list args;
  const char *want;

  g_assert_nonnull (error);
  if (!g_error_matches (error, domain, code))
    g_error ("unexpected error %s/%d: %s", g_quark_to_string (error->domain),
        error->code, error->message);
  va_start (args, code);
  while ((want = va_arg (args, const char *)) != NULL) {
    if (strstr (error->message, want) == NULL)
      g_error ("error message lacks \"%s\": %s", want, error->message);
  }
  va_end (args);
  g_test_message ("ok: %s", error->message);
  n_cases++;
}

/* Write @bytes, open them as safetensors and through the weights interface;
 * both must fail with @code. Returns the error of the first for more
 * checks (free it). */
static GError *
open_bytes (const char *name, const guint8 *bytes, gsize len, gint code)
{
  char *path = craft_write_file (tmp_dir, name, bytes, len);
  GError *error = NULL, *error2 = NULL;
  F2Safetensors *st = f2_safetensors_open (path, &error);
  F2Weights *w = f2_weights_open_file (path, &error2);

  g_assert_null (st);
  g_assert_null (w);
  check_error (error, F2_CHECKPOINT_ERROR, code, path, NULL);
  check_error (error2, F2_CHECKPOINT_ERROR, code, path, NULL);
  g_error_free (error2);
  g_unlink (path);
  g_free (path);
  return error;
}

static void
expect_header_error (const char *header, gsize data_size, gint code, ...)
{
  GByteArray *a = craft_safetensors (header, data_size);
  GError *error = open_bytes ("bad.safetensors", a->data, a->len, code);
  va_list args;
  const char *want;

  va_start (args, code);
  while ((want = va_arg (args, const char *)) != NULL)
    if (strstr (error->message, want) == NULL)
      g_error ("error message lacks \"%s\": %s", want, error->message);
  va_end (args);
  g_error_free (error);
  g_byte_array_unref (a);
}

static void
test_missing (void)
{
  GError *error = NULL;
  char *missing = g_build_filename (tmp_dir, "no-such-dir", NULL);
  char *file = g_build_filename (tmp_dir, "none.safetensors", NULL);
  char *empty_dir = g_build_filename (tmp_dir, "empty-model", NULL);

  g_assert_null (f2_weights_open_dir (missing, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, missing, NULL);
  g_clear_error (&error);

  g_assert_null (f2_safetensors_open (file, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "none.safetensors", NULL);
  g_clear_error (&error);
  g_assert_null (f2_torch_checkpoint_open (file, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "none.safetensors", NULL);
  g_clear_error (&error);

  g_assert_cmpint (g_mkdir (empty_dir, 0755), ==, 0);
  g_assert_null (f2_weights_open_dir (empty_dir, &error));
  check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_MISSING,
      empty_dir, "model.safetensors", "pytorch_model.bin", NULL);
  g_clear_error (&error);
  /* a directory where the file should be */
  g_assert_null (f2_safetensors_open (empty_dir, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR, empty_dir, NULL);
  g_clear_error (&error);
  g_rmdir (empty_dir);

  g_free (empty_dir);
  g_free (file);
  g_free (missing);
}

static void
test_empty_and_truncated (void)
{
  char *golden = f2_test_golden_path ("tiny/model/model.safetensors");
  char *contents;
  gsize len;
  guint64 header_len = 0;
  GError *error;

  error = open_bytes ("empty.safetensors", (const guint8 *) "", 0,
      F2_CHECKPOINT_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, "re-download"));
  g_error_free (error);

  g_assert_true (g_file_get_contents (golden, &contents, &len, NULL));
  for (int i = 7; i >= 0; i--)
    header_len = (header_len << 8) | (guint8) contents[i];
  {
    /* in the length, in the header, just after it, in the data, one short */
    const gsize cuts[] = { 4, 8, 9, header_len / 2, 8 + header_len,
      8 + header_len + 1, len / 2, len - 1
    };
    for (guint i = 0; i < G_N_ELEMENTS (cuts); i++) {
      error = open_bytes ("cut.safetensors", (const guint8 *) contents, cuts[i],
          F2_CHECKPOINT_ERROR_CORRUPT);
      g_assert_nonnull (strstr (error->message, "re-download"));
      g_error_free (error);
    }
  }
  g_free (contents);
  g_free (golden);
}

static void
test_lying_headers (void)
{
  /* header length beyond the file */
  {
    guint8 bytes[16] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}' };
    GError *error = open_bytes ("long.safetensors", bytes, sizeof (bytes),
        F2_CHECKPOINT_ERROR_CORRUPT);
    g_assert_nonnull (strstr (error->message, "65535"));
    g_error_free (error);
  }
  /* header length of 2^63 */
  {
    guint8 bytes[10] = { 0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}' };
    g_error_free (open_bytes ("huge.safetensors", bytes, sizeof (bytes),
            F2_CHECKPOINT_ERROR_CORRUPT));
  }
  expect_header_error ("{not json at all", 0, F2_CHECKPOINT_ERROR_CORRUPT,
      "not valid JSON", NULL);
  expect_header_error ("[1, 2, 3]", 0, F2_CHECKPOINT_ERROR_CORRUPT, "JSON object", NULL);
  expect_header_error ("{\"t\": 5}", 0, F2_CHECKPOINT_ERROR_CORRUPT, "'t'", NULL);
  expect_header_error ("{\"t\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8,
      F2_CHECKPOINT_ERROR_CORRUPT, "'t'", "data_offsets", NULL);
  /* offsets outside the data area */
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [250], "
      "\"data_offsets\": [0, 1000]}}", 16, F2_CHECKPOINT_ERROR_CORRUPT,
      "'w'", "1000", "truncated", NULL);
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
      "\"data_offsets\": [8, 4]}}", 16, F2_CHECKPOINT_ERROR_CORRUPT, "'w'", NULL);
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
      "\"data_offsets\": [-4, 0]}}", 16, F2_CHECKPOINT_ERROR_CORRUPT, "'w'", NULL);
  /* overlapping tensors */
  expect_header_error ("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], "
      "\"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], "
      "\"data_offsets\": [4, 12]}}", 16, F2_CHECKPOINT_ERROR_CORRUPT,
      "'a'", "'b'", "overlap", NULL);
  /* size does not match the shape */
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], "
      "\"data_offsets\": [0, 8]}}", 16, F2_CHECKPOINT_ERROR_CORRUPT,
      "'w'", "12 bytes", "8", NULL);
  /* unknown dtype */
  expect_header_error ("{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], "
      "\"data_offsets\": [0, 4]}}", 16, F2_CHECKPOINT_ERROR_UNSUPPORTED,
      "'w'", "F8_E4M3", NULL);
  /* negative, fractional and overflowing dimensions */
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], "
      "\"data_offsets\": [0, 4]}}", 16, F2_CHECKPOINT_ERROR_CORRUPT, "'w'", NULL);
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], "
      "\"data_offsets\": [0, 4]}}", 16, F2_CHECKPOINT_ERROR_CORRUPT, "'w'", NULL);
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, "
      "4294967296, 4294967296], \"data_offsets\": [0, 0]}}", 16,
      F2_CHECKPOINT_ERROR_CORRUPT, "'w'", "overflow", NULL);
  /* bad metadata */
  expect_header_error ("{\"__metadata__\": {\"format\": 1}}", 0,
      F2_CHECKPOINT_ERROR_CORRUPT, "format", NULL);
}

static GByteArray *
one_float_storage (void)
{
  const float f[6] = { 1, 2, 3, 4, 5, 6 };
  GByteArray *a = g_byte_array_new ();
  g_byte_array_append (a, (const guint8 *) f, sizeof (f));
  return a;
}

/* Write @pickle with storage "0" (6 floats) as a .bin; open it. */
static void
expect_bin_error (GByteArray *pickle, GByteArray *storage, gint code, ...)
{
  GByteArray *storages[1] = { storage ? storage : one_float_storage () };
  const char *keys[1] = { "0" };
  GByteArray *zip = craft_torch_zip (pickle, 1, keys, storages);
  char *path = craft_write_file (tmp_dir, "bad.bin", zip->data, zip->len);
  GError *error = NULL;
  va_list args;
  const char *want;

  g_assert_null (f2_torch_checkpoint_open (path, &error));
  check_error (error, F2_CHECKPOINT_ERROR, code, path, NULL);
  va_start (args, code);
  while ((want = va_arg (args, const char *)) != NULL)
    if (strstr (error->message, want) == NULL)
      g_error ("error message lacks \"%s\": %s", want, error->message);
  va_end (args);
  g_clear_error (&error);
  g_assert_null (f2_weights_open_file (path, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_unlink (path);
  g_free (path);
  g_byte_array_unref (zip);
  if (storage == NULL)
    g_byte_array_unref (storages[0]);
  g_byte_array_unref (pickle);
}

static GByteArray *
pickle_start (void)
{
  GByteArray *p = g_byte_array_new ();
  pk_op (p, 0x80);
  pk_op (p, 2);
  return p;
}

/* {name: tensor} with the given storage view, as torch writes it */
static GByteArray *
pickle_one_tensor (const char *storage_type, gint64 numel, gint64 offset,
    guint ndim, const gint64 *shape, const gint64 *stride)
{
  GByteArray *p = pickle_start ();
  pk_op (p, '}');
  pk_str (p, "w");
  pk_tensor (p, storage_type, "0", numel, offset, ndim, shape, stride);
  pk_op (p, 's');
  pk_op (p, '.');
  return p;
}

static void
test_hostile_pickles (void)
{
  const gint64 shape[2] = { 2, 3 }, stride[2] = { 3, 1 };
  GByteArray *p;

  /* the classic: os.system("...") */
  p = pickle_start ();
  pk_global (p, "os", "system");
  pk_str (p, "echo owned");
  pk_op (p, 0x85);
  pk_op (p, 'R');
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "os.system",
      "safetensors", NULL);

  /* the same through STACK_GLOBAL (protocol 4) */
  p = pickle_start ();
  pk_str (p, "builtins");
  pk_str (p, "eval");
  pk_op (p, 0x93);
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "builtins.eval", NULL);

  /* INST and OBJ build arbitrary objects */
  p = pickle_start ();
  pk_op (p, '(');
  pk_op (p, 'i');
  g_byte_array_append (p, (const guint8 *) "os\nsystem\n", 10);
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "INST", NULL);
  p = pickle_start ();
  pk_op (p, '(');
  pk_op (p, 'o');
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "OBJ", NULL);

  /* BUILD on something that is not a dict */
  p = pickle_start ();
  pk_int (p, 3);
  pk_op (p, '}');
  pk_op (p, 'b');
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "BUILD", NULL);

  /* calling a storage type, or an allowed global with odd arguments */
  p = pickle_start ();
  pk_global (p, "torch", "FloatStorage");
  pk_op (p, ')');
  pk_op (p, 'R');
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "storage type", NULL);
  p = pickle_start ();
  pk_global (p, "collections", "OrderedDict");
  pk_str (p, "x");
  pk_op (p, 0x85);
  pk_op (p, 'R');
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "OrderedDict", NULL);

  /* another storage type */
  p = pickle_one_tensor ("DoubleStorage", 3, 0, 2, shape, stride);
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "torch.DoubleStorage", NULL);

  /* a whole object instead of a dict, a non-tensor value */
  p = pickle_start ();
  pk_int (p, 7);
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "not a dict", NULL);
  p = pickle_start ();
  pk_op (p, '}');
  pk_str (p, "w");
  pk_int (p, 7);
  pk_op (p, 's');
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "w", "not a tensor", NULL);
}

static void
test_broken_pickles_and_zips (void)
{
  const gint64 shape[2] = { 2, 3 }, stride[2] = { 3, 1 }, transposed[2] = { 1, 2 };
  GByteArray *p, *small;

  /* memo read before write, stack underflow, truncated stream */
  p = pickle_start ();
  pk_op (p, 'h');
  pk_op (p, 5);
  pk_op (p, '.');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_CORRUPT, "memo", NULL);
  p = pickle_start ();
  pk_op (p, 's');
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_CORRUPT, "underflow", NULL);
  p = pickle_one_tensor ("FloatStorage", 6, 0, 2, shape, stride);
  g_byte_array_set_size (p, p->len / 2);
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_CORRUPT, "re-download", NULL);

  /* tensor views the reader refuses or that lie */
  p = pickle_one_tensor ("FloatStorage", 6, 0, 2, shape, transposed);
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_UNSUPPORTED, "'w'", "contiguous", NULL);
  p = pickle_one_tensor ("FloatStorage", 6, 2, 2, shape, stride);
  expect_bin_error (p, NULL, F2_CHECKPOINT_ERROR_CORRUPT, "'w'", "outside", NULL);
  small = g_byte_array_new ();
  g_byte_array_set_size (small, 8);
  memset (small->data, 0, small->len);
  p = pickle_one_tensor ("FloatStorage", 6, 0, 2, shape, stride);
  expect_bin_error (p, small, F2_CHECKPOINT_ERROR_CORRUPT, "'w'", "8 bytes", NULL);
  g_byte_array_unref (small);

  /* a compressed entry */
  {
    GByteArray *contents[1] = { g_byte_array_new () };
    const char *names[1] = { "archive/data.pkl" };
    GByteArray *zip;
    char *path;
    GError *error = NULL;
    p = pickle_one_tensor ("FloatStorage", 6, 0, 2, shape, stride);
    g_byte_array_append (contents[0], p->data, p->len);
    zip = craft_zip (1, names, contents, 8);
    path = craft_write_file (tmp_dir, "deflated.bin", zip->data, zip->len);
    g_assert_null (f2_torch_checkpoint_open (path, &error));
    check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "archive/data.pkl", "compressed", NULL);
    g_clear_error (&error);
    /* cut inside the central directory */
    g_byte_array_set_size (zip, zip->len - 30);
    g_free (path);
    path = craft_write_file (tmp_dir, "cut.bin", zip->data, zip->len);
    g_assert_null (f2_torch_checkpoint_open (path, &error));
    check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "cut.bin", "re-download", NULL);
    g_clear_error (&error);
    g_unlink (path);
    g_free (path);
    g_byte_array_unref (zip);
    g_byte_array_unref (contents[0]);
    g_byte_array_unref (p);
  }

  /* a legacy (pre-zip) torch file, and a zip without data.pkl */
  {
    const guint8 legacy[] = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c };
    char *path = craft_write_file (tmp_dir, "legacy.bin", legacy, sizeof (legacy));
    GError *error = NULL;
    GByteArray *contents[1] = { g_byte_array_new () };
    const char *names[1] = { "hello.txt" };
    GByteArray *zip = craft_zip (1, names, contents, 0);
    g_assert_null (f2_weights_open_file (path, &error));
    check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_UNSUPPORTED,
        "legacy", NULL);
    g_clear_error (&error);
    g_unlink (path);
    g_free (path);
    path = craft_write_file (tmp_dir, "plain.zip", zip->data, zip->len);
    g_assert_null (f2_torch_checkpoint_open (path, &error));
    check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT,
        "data.pkl", NULL);
    g_clear_error (&error);
    g_unlink (path);
    g_free (path);
    g_byte_array_unref (zip);
    g_byte_array_unref (contents[0]);
  }
}

/* Shape checks through f2_weights_expect name the tensor and both shapes. */
static void
test_expect (void)
{
  GByteArray *a = craft_safetensors ("{\"x.weight\": {\"dtype\": \"F32\", "
      "\"shape\": [2, 3], \"data_offsets\": [0, 24]}}", 24);
  char *path = craft_write_file (tmp_dir, "model.safetensors", a->data, a->len);
  GError *error = NULL;
  F2Weights *w = f2_weights_open_dir (tmp_dir, &error);

  g_assert_no_error (error);
  g_assert_nonnull (f2_weights_expect (w, "x.weight", 2, 2, 3, &error));
  g_assert_no_error (error);
  g_assert_null (f2_weights_expect (w, "x.weight", 2, 3, 2, &error));
  check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_SHAPE,
      "'x.weight'", "[2, 3]", "[3, 2]", NULL);
  g_clear_error (&error);
  g_assert_null (f2_weights_expect (w, "x.weight", 3, 2, 3, 1, &error));
  check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_SHAPE,
      "[2, 3, 1]", NULL);
  g_clear_error (&error);
  g_assert_null (f2_weights_expect (w, "y.bias", 1, 3, &error));
  check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_MISSING,
      "'y.bias'", "[3]", NULL);
  g_clear_error (&error);
  /* the embedding aliases are not invented when nothing is stored */
  g_assert_null (f2_weights_lookup_alias (w,
          "language_model.model.encoder.embed_tokens.weight"));
  f2_weights_close (w);
  g_unlink (path);
  g_free (path);
  g_byte_array_unref (a);
}

/* A header naming one tensor twice: json-glib keeps one of the two, the
 * reader must see both. Deep nesting is refused before the parser runs. */
static void
test_duplicates_and_nesting (void)
{
  GString *deep = g_string_new ("{\"w\": {\"dtype\": \"F32\", \"shape\": ");

  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
      "\"data_offsets\": [0, 4]}, \"w\": {\"dtype\": \"F32\", \"shape\": [1], "
      "\"data_offsets\": [4, 8]}}", 8, F2_CHECKPOINT_ERROR_CORRUPT,
      "'w' twice", NULL);
  /* the same name spelt with an escape */
  expect_header_error ("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], "
      "\"data_offsets\": [0, 4]}, \"\\u0077\": {\"dtype\": \"F32\", "
      "\"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
      F2_CHECKPOINT_ERROR_CORRUPT, "twice", NULL);
  /* the metadata twice */
  expect_header_error ("{\"__metadata__\": {\"format\": \"pt\"}, "
      "\"__metadata__\": {\"format\": \"pt\"}}", 0,
      F2_CHECKPOINT_ERROR_CORRUPT, "twice", NULL);
  for (guint i = 0; i < 1000000; i++)
    g_string_append_c (deep, '[');
  expect_header_error (deep->str, 0, F2_CHECKPOINT_ERROR_CORRUPT, "64 levels",
      NULL);
  g_string_free (deep, TRUE);
}

/* Weights holding NaN or infinity (each float dtype) load through the raw
 * reader but are refused by the weights interface, naming the tensor. */
static void
test_non_finite (void)
{
  static const struct {
    const char *dtype;
    guint size;
    guint32 bits;
    const char *what;
  } cases[] = {
    { "F32", 4, 0x7fc00000, "NaN" },
    { "F32", 4, 0xff800000, "infinity" },
    { "F16", 2, 0x7c00, "infinity" },
    { "F16", 2, 0xfe01, "NaN" },
    { "BF16", 2, 0x7fc1, "NaN" },
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    guint n = 1000, at = 777;
    char *header = g_strdup_printf ("{\"ok\": {\"dtype\": \"%s\", \"shape\": "
        "[2], \"data_offsets\": [0, %u]}, \"layer.weight\": {\"dtype\": \"%s\", "
        "\"shape\": [10, 100], \"data_offsets\": [%u, %u]}}", cases[c].dtype,
        2 * cases[c].size, cases[c].dtype, 2 * cases[c].size,
        (n + 2) * cases[c].size);
    GByteArray *a = craft_safetensors (header, (n + 2) * cases[c].size);
    guint8 *data = a->data + a->len - (gsize) (n + 2) * cases[c].size;
    char *path, *want = g_strdup_printf ("element %u", at);
    GError *error = NULL;
    F2Safetensors *st;

    /* finite values everywhere (1.0), then one bad element */
    for (guint i = 0; i < n + 2; i++) {
      guint32 one = cases[c].size == 4 ? 0x3f800000 :
          g_str_equal (cases[c].dtype, "F16") ? 0x3c00 : 0x3f80;
      memcpy (data + (gsize) i * cases[c].size, &one, cases[c].size);
    }
    memcpy (data + (gsize) (2 + at) * cases[c].size, &cases[c].bits, cases[c].size);
    path = craft_write_file (tmp_dir, "nan.safetensors", a->data, a->len);
    st = f2_safetensors_open (path, &error);
    g_assert_no_error (error);
    f2_safetensors_close (st);
    g_assert_null (f2_weights_open_file (path, &error));
    check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT, path,
        "'layer.weight'", cases[c].dtype, cases[c].what, want, NULL);
    g_clear_error (&error);
    g_unlink (path);
    g_free (path);
    g_free (want);
    g_free (header);
    g_byte_array_unref (a);
  }

  /* and in a pytorch_model.bin */
  {
    const float f[6] = { 1, 2, 3, NAN, 5, 6 };
    GByteArray *storage = g_byte_array_new ();
    const gint64 shape[1] = { 6 }, stride[1] = { 1 };
    GByteArray *pickle = pickle_one_tensor ("FloatStorage", 6, 0, 1, shape, stride);
    GByteArray *storages[1] = { storage };
    const char *keys[1] = { "0" };
    GByteArray *zip;
    char *path;
    GError *error = NULL;

    g_byte_array_append (storage, (const guint8 *) f, sizeof f);
    zip = craft_torch_zip (pickle, 1, keys, storages);
    path = craft_write_file (tmp_dir, "nan.bin", zip->data, zip->len);
    g_assert_null (f2_weights_open_file (path, &error));
    check_error (error, F2_CHECKPOINT_ERROR, F2_CHECKPOINT_ERROR_CORRUPT, path,
        "'w'", "NaN", "element 3", NULL);
    g_clear_error (&error);
    g_unlink (path);
    g_free (path);
    g_byte_array_unref (zip);
    g_byte_array_unref (pickle);
    g_byte_array_unref (storage);
  }
}

/* Paths that are not regular files: refused at once (a FIFO would block
 * the reader forever, a device never end), each message naming the path
 * and the problem; a dangling link is reported as such, not as "no
 * weights". */
static void
test_not_regular_files (void)
{
  char *dir = g_build_filename (tmp_dir, "model", NULL);
  char *st_path = g_build_filename (dir, "model.safetensors", NULL);
  char *bin_path = g_build_filename (dir, "pytorch_model.bin", NULL);
  char *file = g_build_filename (tmp_dir, "a-file", NULL);
  GError *error = NULL;

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  g_assert_cmpint (mkfifo (st_path, 0600), ==, 0);
  g_assert_null (f2_safetensors_open (st_path, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, st_path, "FIFO", NULL);
  g_clear_error (&error);
  g_assert_null (f2_weights_open_dir (dir, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, st_path, "FIFO", NULL);
  g_clear_error (&error);
  g_unlink (st_path);

  g_assert_cmpint (mkfifo (bin_path, 0600), ==, 0);
  g_assert_null (f2_torch_checkpoint_open (bin_path, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, bin_path, "FIFO", NULL);
  g_clear_error (&error);
  g_assert_null (f2_weights_open_dir (dir, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, bin_path, "FIFO", NULL);
  g_clear_error (&error);
  g_unlink (bin_path);

  g_assert_null (f2_weights_open_file ("/dev/zero", &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "/dev/zero",
      "character device", NULL);
  g_clear_error (&error);

  g_assert_cmpint (symlink ("gone.safetensors", st_path), ==, 0);
  g_assert_null (f2_weights_open_dir (dir, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, st_path,
      "gone.safetensors", "dangling", NULL);
  g_clear_error (&error);
  g_unlink (st_path);

  g_assert_cmpint (g_mkdir (st_path, 0700), ==, 0);
  g_assert_null (f2_weights_open_dir (dir, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_ISDIR, st_path, NULL);
  g_clear_error (&error);
  g_rmdir (st_path);

  /* the model path is a file */
  g_assert_true (g_file_set_contents (file, "", 0, NULL));
  g_assert_null (f2_weights_open_dir (file, &error));
  check_error (error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, file, "not a directory",
      NULL);
  g_clear_error (&error);
  g_unlink (file);

  g_rmdir (dir);
  g_free (file);
  g_free (bin_path);
  g_free (st_path);
  g_free (dir);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  f2_test_require_golden_dir ();
  tmp_dir = g_dir_make_tmp ("f2-bad-weights-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  g_test_add_func ("/bad-weights/missing", test_missing);
  g_test_add_func ("/bad-weights/empty-and-truncated", test_empty_and_truncated);
  g_test_add_func ("/bad-weights/lying-headers", test_lying_headers);
  g_test_add_func ("/bad-weights/hostile-pickles", test_hostile_pickles);
  g_test_add_func ("/bad-weights/broken-pickles-and-zips", test_broken_pickles_and_zips);
  g_test_add_func ("/bad-weights/expect", test_expect);
  g_test_add_func ("/bad-weights/duplicates-and-nesting", test_duplicates_and_nesting);
  g_test_add_func ("/bad-weights/non-finite", test_non_finite);
  g_test_add_func ("/bad-weights/not-regular-files", test_not_regular_files);
  status = g_test_run ();
  g_test_message ("%u error cases checked", n_cases);
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return status;
}
