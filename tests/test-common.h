/* Helpers shared by the test programs. */
#pragma once

/* The model's public API and the network under it (tests and benchmarks
 * look inside: profiles, stage times, the backend's memory) */
#include "florence2.h"
#include "model-net.h"
#include "result.h"
#include "tasks.h"

#include <glib.h>

/* meson's exit code for a skipped test */
#define F2_TEST_SKIP 77

/* Directory of the golden reference (F2_GOLDEN_DIR), or NULL when it does not
 * exist; the caller exits with F2_TEST_SKIP then. Owned by the helper. */
const char *f2_test_golden_dir (void);

/* The golden directory; when it is absent, says so and exits with
 * F2_TEST_SKIP (a test that needs it must not pass without it). */
const char *f2_test_require_golden_dir (void);

/* Path under the golden directory (skips the test without it, as
 * f2_test_require_golden_dir()); g_free() the result. */
char *f2_test_golden_path (const char *relative);

/* The device string a test's device name stands for: "vulkan" is the Vulkan
 * device under test (F2_VULKAN_DEVICE, else the first: lavapipe in CI);
 * any other name ("cpu", "reference", "auto") is itself. */
const char *f2_test_device (const char *name);

/* The tiny golden model on the test device @name (see f2_test_device())
 * in @precision. Where the device is absent it says so and exits with
 * F2_TEST_SKIP; any other failure fails the test with the message. */
Florence2Model *f2_test_load_tiny_model (const char *name, Florence2Precision precision);
/* The same with @threads compute threads per run (0: the backend's
 * default; see Florence2ModelParams.threads). */
Florence2Model *f2_test_load_tiny_model_threads (const char *name,
    Florence2Precision precision, guint threads);

/* Parse a JSON file into a JsonNode; aborts the test with a message on failure. */
struct _JsonNode *f2_test_load_json (const char *path);

/* Read tensor @name of the safetensors file @file as floats (F32 as is, I64
 * and I32 converted). g_free() *data. FALSE with @error set when the file or
 * the tensor cannot be read. */
gboolean f2_test_read_tensor (const char *file, const char *name,
    float **data, gsize *n, GError **error);

/* Structural JSON comparison: same keys in the same order, same strings,
 * numbers equal as float32 (as doubles with @exact_doubles or under a
 * "scores" key). On a difference @why gets the JSON path and both sides. */
gboolean f2_test_json_equal (struct _JsonNode *got, struct _JsonNode *want,
    const char *path, gboolean exact_doubles, GString *why);

/* A golden case of the tiny model: its image (packed RGB) and the
 * reference's ids and text, greedy ([0]) and with 3 beams ([1]). */
typedef struct {
  char *case_id;
  Florence2Task task;
  char *text_input;
  Florence2Image image;
  guint8 *rgb;
  struct _JsonArray *want[2];
  char *want_text[2];
} F2TestCase;

/* Every case of the tiny golden set; aborts the test on a read error. */
F2TestCase *f2_test_load_cases (guint *n_cases);
void f2_test_free_cases (F2TestCase *cases, guint n_cases);
/* Are @got's ids those of @want (a JSON array of ints)? */
gboolean f2_test_ids_equal (const GArray *got, struct _JsonArray *want);
/* Two arrays of the same element size, bit for bit */
gboolean f2_test_arrays_identical (const GArray *a, const GArray *b);

/* Delete @path and everything below it. */
void f2_test_remove_tree (const char *path);
