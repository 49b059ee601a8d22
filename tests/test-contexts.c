/* Several streams on one model: three threads, each on a context of its
 * own, run every golden case at the same time, greedy and with 3 beams
 * mixed differently per thread, and each result must be the reference's
 * ids and text exactly (fp32). On the cpu and Vulkan backends the programs
 * of different contexts must really have run at the same time; freeing the
 * contexts and making new ones must reuse their memory.
 *
 * Usage: test-contexts [reference|cpu|vulkan] [STREAMS (default 3)] [THREADS]
 * THREADS: compute threads per run (Florence2ModelParams.threads; default 0,
 * the backend's choice); 1 keeps the cpu backend's OpenMP from starting
 * workers, for ThreadSanitizer, which does not see inside OpenMP. */
#include "backend.h"
#include "florence2.h"
#include "model-net.h"
#include "tasks.h"
#include "test-common.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define MAX_STREAMS 8

typedef F2TestCase Case;

typedef struct {
  guint index;
  Florence2Context *context;
  Case *cases;
  guint n_cases;
  guint failures;
} Stream;

static gpointer
stream_thread (gpointer data)
{
  Stream *st = data;

  /* each stream starts at another case and alternates greedy and beams
   * differently, so that different work runs side by side */
  for (guint n = 0; n < st->n_cases; n++) {
    guint j = (n + st->index * 7) % st->n_cases;
    guint beam = (j + st->index) % 2;
    Case *c = &st->cases[j];
    Florence2RunParams params = florence2_run_default_params ();
    Florence2Output *out;
    GError *error = NULL;

    params.task = c->task;
    params.text = c->text_input;
    params.num_beams = beam ? 3 : 1;
    params.max_new_tokens = 40;
    out = florence2_context_run (st->context, &c->image, &params, &error);
    if (out == NULL) {
      g_print ("FAIL stream %u %s: %s\n", st->index, c->case_id, error->message);
      g_clear_error (&error);
      st->failures++;
      continue;
    }
    if (!f2_test_ids_equal (out->generated_ids, c->want[beam])
        || g_strcmp0 (out->text, c->want_text[beam]) != 0) {
      g_print ("FAIL stream %u %s %s: ids or text differ from the reference\n",
          st->index, c->case_id, beam ? "beam" : "greedy");
      st->failures++;
    }
    florence2_output_free (out);
  }
  return NULL;
}

static guint64
working_bytes (F2Backend *backend)
{
  return f2_backend_allocated_bytes (backend, F2_BUFFER_ACTIVATIONS)
      + f2_backend_allocated_bytes (backend, F2_BUFFER_HOST);
}

int
main (int argc, char **argv)
{
  const char *device = argc > 1 ? argv[1] : "reference";
  guint n_streams = argc > 2 ? (guint) g_ascii_strtoull (argv[2], NULL, 10) : 3;
  guint n_threads = argc > 3 ? (guint) g_ascii_strtoull (argv[3], NULL, 10) : 0;
  Florence2Model *model;
  GError *error = NULL;
  Stream streams[MAX_STREAMS] = { 0 };
  GThread *threads[MAX_STREAMS];
  Case *cases;
  guint n_cases, failures = 0, peak;
  F2Backend *backend;
  guint64 bytes;

  f2_test_require_golden_dir ();
  if (n_streams < 2 || n_streams > MAX_STREAMS) {
    g_print ("FAIL: 2 to %u streams\n", MAX_STREAMS);
    return 1;
  }
  model = f2_test_load_tiny_model_threads (device, F2_PRECISION_FP32, n_threads);
  g_print ("# %s, %u streams on one model\n", florence2_model_device_name (model),
      n_streams);
  cases = f2_test_load_cases (&n_cases);

  for (guint i = 0; i < n_streams; i++) {
    streams[i].index = i;
    streams[i].cases = cases;
    streams[i].n_cases = n_cases;
    streams[i].context = florence2_context_new (model, &error);
    if (streams[i].context == NULL) {
      g_print ("FAIL: %s\n", error->message);
      return 1;
    }
  }
  backend = f2_net_backend (florence2_context_net (streams[0].context));
  for (guint i = 0; i < n_streams; i++)
    threads[i] = g_thread_new ("stream", stream_thread, &streams[i]);
  for (guint i = 0; i < n_streams; i++) {
    g_thread_join (threads[i]);
    failures += streams[i].failures;
  }
  peak = f2_backend_peak_runs (backend);
  g_print ("# %u runs per stream, %u failures; at most %u programs ran at once\n",
      n_cases, failures, peak);
  /* the reference runs one program at a time by design */
  if (strcmp (f2_backend_kind (backend), "reference") != 0 && peak < 2) {
    g_print ("FAIL: the streams' programs never ran at the same time\n");
    failures++;
  }

  /* freed contexts keep their memory for the next ones */
  bytes = working_bytes (backend);
  for (guint i = 0; i < n_streams; i++)
    florence2_context_free (streams[i].context);
  for (guint i = 0; i < n_streams; i++)
    streams[i].context = florence2_context_new (model, &error);
  if (working_bytes (backend) != bytes) {
    g_print ("FAIL: new contexts allocated %" G_GINT64_FORMAT " bytes instead of "
        "reusing the freed ones\n", (gint64) (working_bytes (backend) - bytes));
    failures++;
  }
  /* and a model run through the pool runs on one of them */
  {
    Florence2RunParams params = florence2_run_default_params ();
    Florence2Output *out;

    for (guint i = 0; i < n_streams; i++)
      florence2_context_free (streams[i].context);
    params.task = cases[0].task;
    params.text = cases[0].text_input;
    params.num_beams = 1;
    params.max_new_tokens = 40;
    out = florence2_model_run (model, &cases[0].image, &params, &error);
    if (out == NULL || !f2_test_ids_equal (out->generated_ids, cases[0].want[0])) {
      g_print ("FAIL: florence2_model_run: %s\n", out ? "ids differ" : error->message);
      failures++;
    }
    florence2_output_free (out);
    if (working_bytes (backend) != bytes) {
      g_print ("FAIL: florence2_model_run allocated a context of its own\n");
      failures++;
    }
  }

  f2_test_free_cases (cases, n_cases);
  florence2_model_unref (model);
  g_print ("# %s\n", failures ? "FAIL" : "ok");
  return failures ? 1 : 0;
}
