/* Greedy and beam-search generation with the reference's semantics
 * (Hugging Face transformers 4.44 `generate` with the language model's
 * generation config): forced BOS after the decoder start token, forced EOS
 * at the last position, no-repeat n-grams, beam scoring with length
 * penalty and early stopping.
 *
 * The decoder itself is behind a step function, so this file is plain
 * bookkeeping on the host; the net's f2_net_step() is the usual one. */
#pragma once

#include "net.h"

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  guint num_beams;              /* 1 = greedy */
  guint max_new_tokens;         /* generated tokens after the start token */
  guint no_repeat_ngram_size;   /* 0 = off */
  gint32 decoder_start_token_id;
  gint32 forced_bos_token_id;   /* -1 = none */
  gint32 forced_eos_token_id;   /* -1 = none */
  gint32 eos_token_id;
  gint32 pad_token_id;
  gboolean early_stopping;
  float length_penalty;
} F2GenerateParams;

/* The reference's defaults for Florence-2 (language model config). */
F2GenerateParams f2_generate_default_params (void);

/* Runs one decoder step; same contract as f2_net_step(). */
typedef gboolean (*F2StepFunc) (gpointer user_data, const F2Step *step, GError **error);

typedef struct {
  GArray *ids;                  /* gint32: the full sequence, start token first */
  GArray *token_scores;         /* float, one per id after the first: the
                                 * processed log-probability of each token
                                 * (beam search; 0 for forced tokens) —
                                 * compute_transition_scores of the reference */
  float sequence_score;         /* beam: the hypothesis score; greedy: 0 */
  guint steps;                  /* decoder steps run */
} F2Generation;

/* max_banned: the width of the banned-id rows the step function accepts. */
F2Generation *f2_generate (const F2GenerateParams *params, guint max_banned,
    F2StepFunc step, gpointer user_data, GError **error);
void f2_generation_free (F2Generation *generation);

/* One sequence's generation a position at a time, for drivers that
 * advance several sequences together (f2_generate() is the loop for one):
 *
 *   while (!f2_generator_finished (g)) {
 *     f2_generator_prepare (g, &step, &needs_step, error);
 *     if (needs_step) run the decoder on step (it writes step.out_ids ..);
 *     f2_generator_advance (g, error);
 *   }
 *   generation = f2_generator_finish (g);
 *
 * Every generator advances one position per round, so sequences that start
 * together stay at the same decoder position. */
typedef struct _F2Generator F2Generator;

F2Generator *f2_generator_new (const F2GenerateParams *params, guint max_banned,
    GError **error);
void f2_generator_free (F2Generator *generator);
/* The next step: rows, tokens, parents, position, banned ids and k, and
 * out_ids/out_scores pointing at the generator's own arrays. @needs_step is
 * FALSE where the position's token is forced and no decoder run is needed. */
gboolean f2_generator_prepare (F2Generator *generator, F2Step *step,
    gboolean *needs_step, GError **error);
/* Takes the step's outputs (if it ran) and moves one position on. */
gboolean f2_generator_advance (F2Generator *generator, GError **error);
gboolean f2_generator_finished (const F2Generator *generator);
/* The generated sequence, once finished; frees @generator. */
F2Generation *f2_generator_finish (F2Generator *generator);

G_END_DECLS
