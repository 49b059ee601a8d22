/* Generation on a decoder whose scores are not numbers: beam search must
 * say that the model's output is not finite instead of returning a
 * sequence of <pad>. The decoder is a stand-in step function. */
#include "generate.h"

#include <math.h>
#include <string.h>

typedef struct {
  float score;                  /* every candidate's score */
  gboolean no_candidates;       /* ids -1: nothing finite to pick */
  guint steps;
} FakeDecoder;

static gboolean
fake_step (gpointer user_data, const F2Step *step, GError **error)
{
  FakeDecoder *d = user_data;

  d->steps++;
  for (guint r = 0; r < step->rows; r++) {
    if (step->k == 0) {
      step->out_ids[r] = 5;
      continue;
    }
    for (guint j = 0; j < step->k; j++) {
      step->out_ids[r * step->k + j] = d->no_candidates ? -1 : (gint32) (5 + j);
      step->out_scores[r * step->k + j] = d->score - j;
    }
  }
  return TRUE;
}

static void
expect_not_finite (FakeDecoder *d)
{
  F2GenerateParams p = f2_generate_default_params ();
  GError *error = NULL;
  F2Generation *g = f2_generate (&p, 64, fake_step, d, &error);

  g_assert_null (g);
  g_assert_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "not finite"));
  g_assert_nonnull (strstr (error->message, "precision fp32"));
  g_test_message ("ok: %s", error->message);
  g_error_free (error);
}

static void
test_beam_not_finite (void)
{
  FakeDecoder nan_scores = { NAN, FALSE, 0 };
  FakeDecoder nothing = { -1.0f, TRUE, 0 };
  FakeDecoder finite = { -1.0f, FALSE, 0 };
  F2GenerateParams p = f2_generate_default_params ();
  GError *error = NULL;
  F2Generation *g;

  expect_not_finite (&nan_scores);
  /* stopped at the first step whose scores count (the first one's token
   * is forced) */
  g_assert_cmpuint (nan_scores.steps, ==, 2);
  expect_not_finite (&nothing);

  /* finite scores generate as usual */
  g = f2_generate (&p, 64, fake_step, &finite, &error);
  g_assert_no_error (error);
  g_assert_nonnull (g);
  g_assert_cmpuint (g->ids->len, >, 1);
  for (guint i = 0; i < g->token_scores->len; i++)
    g_assert_true (isfinite (g_array_index (g->token_scores, float, i)));
  f2_generation_free (g);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/generate/beam-not-finite", test_beam_not_finite);
  return g_test_run ();
}
