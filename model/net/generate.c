/* Greedy and beam search, following transformers 4.44 step by step:
 * _sample (greedy), _beam_search + BeamSearchScorer + BeamHypotheses, and
 * the logits processors Florence-2's config turns on (NoRepeatNGram,
 * ForcedBOS, ForcedEOS). Comments name the reference's variables where the
 * arithmetic must match it. */
#include "generate.h"

#include <math.h>
#include <string.h>

F2GenerateParams
f2_generate_default_params (void)
{
  F2GenerateParams p = {
    .num_beams = 3,
    .max_new_tokens = 20 - 1,   /* max_length 20 incl. the start token */
    .no_repeat_ngram_size = 3,
    .decoder_start_token_id = 2,
    .forced_bos_token_id = 0,
    .forced_eos_token_id = 2,
    .eos_token_id = 2,
    .pad_token_id = 1,
    .early_stopping = TRUE,
    .length_penalty = 1.0f,
  };
  return p;
}

void
f2_generation_free (F2Generation *generation)
{
  if (generation == NULL)
    return;
  g_array_unref (generation->ids);
  g_array_unref (generation->token_scores);
  g_free (generation);
}

/* NoRepeatNGramLogitsProcessor: the tokens that would complete an n-gram
 * already present in @ids. Writes up to @max ids to @out (rest -1). */
static gboolean
banned_tokens (const F2GenerateParams *p, const GArray *ids, gint32 *out,
    guint max, GError **error)
{
  guint n = p->no_repeat_ngram_size, len = ids->len, count = 0;
  const gint32 *seq = (const gint32 *) ids->data;

  for (guint i = 0; i < max; i++)
    out[i] = -1;
  /* cur_len + 1 < ngram_size: nothing to ban yet */
  if (n == 0 || len + 1 < n)
    return TRUE;
  for (guint start = 0; start + n <= len; start++) {
    /* an n-gram whose first n-1 tokens equal the last n-1 of the sequence */
    if (memcmp (seq + start, seq + len - (n - 1), (n - 1) * sizeof (gint32)) != 0)
      continue;
    {
      gint32 token = seq[start + n - 1];
      gboolean seen = FALSE;
      for (guint j = 0; j < count; j++)
        seen |= out[j] == token;
      if (seen)
        continue;
      if (count == max) {
        g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
            "more than %u tokens are banned by no_repeat_ngram_size at one step; "
            "lower max-new-tokens", max);
        return FALSE;
      }
      out[count++] = token;
    }
  }
  return TRUE;
}

/* The token the ForcedBOS/ForcedEOS processors impose at @cur_len, or -1.
 * EOS is applied after BOS, as in the reference's processor list. */
static gint32
forced_token (const F2GenerateParams *p, guint cur_len, guint max_length)
{
  if (p->forced_eos_token_id >= 0 && cur_len == max_length - 1)
    return p->forced_eos_token_id;
  if (p->forced_bos_token_id >= 0 && cur_len == 1)
    return p->forced_bos_token_id;
  return -1;
}

static F2Generation *
generation_new (void)
{
  F2Generation *g = g_new0 (F2Generation, 1);
  g->ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g->token_scores = g_array_new (FALSE, FALSE, sizeof (float));
  return g;
}

static F2Generation *
generate_greedy (const F2GenerateParams *p, guint max_banned, F2StepFunc step_fn,
    gpointer user_data, GError **error)
{
  F2Generation *g = generation_new ();
  guint max_length = p->max_new_tokens + 1;
  gint32 *banned = g_new (gint32, max_banned);
  gboolean ok = TRUE;

  g_array_append_val (g->ids, p->decoder_start_token_id);
  while (ok) {
    guint cur_len = g->ids->len;
    gint32 forced = forced_token (p, cur_len, max_length);
    gint32 token = forced;

    /* the last position needs no decoder run when its token is forced */
    if (!(forced >= 0 && cur_len == max_length - 1)) {
      gint32 last = g_array_index (g->ids, gint32, cur_len - 1);
      gint32 best = -1;
      F2Step step = {
        .rows = 1, .tokens = &last, .position = cur_len - 1,
        .banned = banned, .k = 0, .out_ids = &best,
      };
      ok = banned_tokens (p, g->ids, banned, max_banned, error) &&
          step_fn (user_data, &step, error);
      g->steps++;
      if (forced < 0)
        token = best;
      if (ok && token < 0) {
        /* every id banned, or logits that are not numbers */
        if (p->eos_token_id >= 0) {
          g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_FAILED,
              "the decoder produced no valid token at step %u (non-finite "
              "logits?); try precision fp32", cur_len);
          ok = FALSE;
        } else {
          token = p->pad_token_id;      /* fixed-length runs go on */
        }
      }
    }
    if (!ok)
      break;
    {
      float zero = 0.0f;
      g_array_append_val (g->ids, token);
      g_array_append_val (g->token_scores, zero);
    }
    if (token == p->eos_token_id || g->ids->len >= max_length)
      break;
  }
  g_free (banned);
  if (!ok) {
    f2_generation_free (g);
    return NULL;
  }
  return g;
}

/* ------------------------------------------------------------ beam search */

typedef struct {
  GArray *ids;                  /* gint32 */
  GArray *scores;               /* float per token after the start */
} Seq;

typedef struct {
  float score;
  Seq seq;
} Hypothesis;

typedef struct {
  float score;                  /* next_token_scores: log-prob + beam score */
  float logprob;                /* the processed log-prob alone */
  gint32 token;
  guint row;                    /* next_indices */
} Candidate;

/* A copy of @from extended by @token (unless it is -1) and @score (unless
 * NaN): finished hypotheses keep the EOS score but not the EOS id. */
static Seq
seq_extend (const Seq *from, gint32 token, float score)
{
  Seq s = {
    g_array_copy (from->ids),
    g_array_copy (from->scores),
  };
  if (token >= 0)
    g_array_append_val (s.ids, token);
  if (!isnan (score))
    g_array_append_val (s.scores, score);
  return s;
}

static void
seq_clear (Seq *s)
{
  g_clear_pointer (&s->ids, g_array_unref);
  g_clear_pointer (&s->scores, g_array_unref);
}

/* BeamHypotheses: at most num_beams finished sequences and the worst score */
typedef struct {
  GArray *beams;                /* Hypothesis, in insertion order (deletions keep order) */
  float worst_score;
  guint num_beams;
  float length_penalty;
} Hypotheses;

static void
hypotheses_add (Hypotheses *h, Seq seq, float sum_logprobs, guint generated_len)
{
  float score = sum_logprobs / powf ((float) generated_len, h->length_penalty);

  if (h->beams->len < h->num_beams || score > h->worst_score) {
    Hypothesis hyp = { score, seq };
    g_array_append_val (h->beams, hyp);
    if (h->beams->len > h->num_beams) {
      /* drop the worst; the new worst is the second smallest */
      guint worst = 0;
      float second = INFINITY;
      for (guint i = 1; i < h->beams->len; i++)
        if (g_array_index (h->beams, Hypothesis, i).score <
            g_array_index (h->beams, Hypothesis, worst).score)
          worst = i;
      for (guint i = 0; i < h->beams->len; i++)
        if (i != worst && g_array_index (h->beams, Hypothesis, i).score < second)
          second = g_array_index (h->beams, Hypothesis, i).score;
      seq_clear (&g_array_index (h->beams, Hypothesis, worst).seq);
      g_array_remove_index (h->beams, worst);
      h->worst_score = second;
    } else {
      h->worst_score = MIN (score, h->worst_score);
    }
  } else {
    seq_clear (&seq);
  }
}

static gboolean
hypotheses_done (Hypotheses *h, const F2GenerateParams *p, float best_sum_logprobs,
    guint cur_len)
{
  if (h->beams->len < h->num_beams)
    return FALSE;
  if (p->early_stopping)
    return TRUE;
  /* early_stopping False: can any open beam still beat the worst? */
  return h->worst_score >= best_sum_logprobs /
      powf ((float) (cur_len - 1), h->length_penalty);
}

static int
compare_candidates (gconstpointer a, gconstpointer b)
{
  const Candidate *x = a, *y = b;
  guint64 ix = (guint64) x->row << 32 | (guint32) x->token;
  guint64 iy = (guint64) y->row << 32 | (guint32) y->token;

  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return ix < iy ? -1 : ix > iy;     /* torch.topk: lower flat index first */
}

static F2Generation *
generate_beam (const F2GenerateParams *p, guint max_banned, F2StepFunc step_fn,
    gpointer user_data, GError **error)
{
  guint B = p->num_beams, K = 2 * B;   /* n_tokens_to_keep = max(2, 1 + n_eos) * num_beams */
  guint max_length = p->max_new_tokens + 1;
  Seq *beams = g_new0 (Seq, B);
  float *beam_scores = g_new (float, B);
  gint32 *tokens = g_new (gint32, B), *parents = g_new (gint32, B);
  gint32 *banned = g_new (gint32, (gsize) B * max_banned);
  gint32 *top_ids = g_new (gint32, (gsize) B * K);
  float *top_scores = g_new (float, (gsize) B * K);
  Candidate *cands = g_new (Candidate, (gsize) B * K);
  Hypotheses hyps = { g_array_new (FALSE, FALSE, sizeof (Hypothesis)), 1e9f, B,
    p->length_penalty };
  gboolean done = FALSE, ok = TRUE, have_parents = FALSE;
  guint steps = 0;
  F2Generation *g = NULL;

  for (guint b = 0; b < B; b++) {
    beams[b].ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    beams[b].scores = g_array_new (FALSE, FALSE, sizeof (float));
    g_array_append_val (beams[b].ids, p->decoder_start_token_id);
    beam_scores[b] = b == 0 ? 0.0f : -1e9f;
    parents[b] = (gint32) b;
  }

  while (ok) {
    guint cur_len = beams[0].ids->len;
    gint32 forced = forced_token (p, cur_len, max_length);
    guint n_cands = 0;

    if (!(forced >= 0 && cur_len == max_length - 1)) {
      F2Step step = {
        .rows = B, .tokens = tokens, .parents = have_parents ? parents : NULL,
        .position = cur_len - 1, .banned = banned, .k = K,
        .out_ids = top_ids, .out_scores = top_scores,
      };
      for (guint b = 0; b < B && ok; b++) {
        tokens[b] = g_array_index (beams[b].ids, gint32, cur_len - 1);
        ok = banned_tokens (p, beams[b].ids, banned + (gsize) b * max_banned,
            max_banned, error);
      }
      ok = ok && step_fn (user_data, &step, error);
      steps++;
      if (!ok)
        break;
    }

    /* next_token_scores = processed log-probs + beam_scores[:, None] */
    for (guint b = 0; b < B; b++) {
      if (forced >= 0) {
        /* every other token is -inf: one finite candidate per beam */
        cands[n_cands++] = (Candidate) { 0.0f + beam_scores[b], 0.0f, forced, b };
        continue;
      }
      for (guint j = 0; j < K && ok; j++) {
        float lp = top_scores[b * K + j];
        if (top_ids[b * K + j] >= 0 && isnan (lp))
          ok = FALSE;
        if (top_ids[b * K + j] < 0 || !isfinite (lp))
          continue;
        cands[n_cands++] = (Candidate) { lp + beam_scores[b], lp, top_ids[b * K + j], b };
      }
    }
    if (!ok || (forced < 0 && n_cands == 0)) {
      /* NaN scores, or none finite: the logits are not numbers; going on
       * would give a sequence of <pad> */
      g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_FAILED,
          "the model's output is not finite (NaN or infinite scores at "
          "decoder step %u); the weights or the precision cannot represent "
          "this input: try precision fp32, or check the model's weights",
          cur_len);
      ok = FALSE;
      break;
    }
    qsort (cands, n_cands, sizeof (Candidate), compare_candidates);
    n_cands = MIN (n_cands, K);

    /* BeamSearchScorer.process */
    {
      Seq next[B];
      float next_scores[B];
      guint n_next = 0;
      for (guint rank = 0; rank < n_cands && n_next < B; rank++) {
        const Candidate *c = &cands[rank];
        if (c->token == p->eos_token_id) {
          if (rank >= B)
            continue;
          /* the hypothesis is the beam without the EOS; generated_len = cur_len */
          hypotheses_add (&hyps, seq_extend (&beams[c->row], -1, c->logprob),
              c->score, cur_len);
        } else {
          next[n_next] = seq_extend (&beams[c->row], c->token, c->logprob);
          next_scores[n_next] = c->score;
          parents[n_next] = (gint32) c->row;
          n_next++;
        }
      }
      if (n_next < B) {
        /* every remaining token was -inf (forced EOS): fill with dead beams */
        for (; n_next < B; n_next++) {
          next[n_next] = seq_extend (&beams[0], p->pad_token_id, -INFINITY);
          next_scores[n_next] = -INFINITY;
          parents[n_next] = 0;
        }
      }
      done = done || (n_cands > 0 &&
          hypotheses_done (&hyps, p, cands[0].score, cur_len + 1));
      for (guint b = 0; b < B; b++) {
        seq_clear (&beams[b]);
        beams[b] = next[b];
        beam_scores[b] = next_scores[b];
      }
      have_parents = TRUE;
    }
    if (done || beams[0].ids->len >= max_length)
      break;
  }

  if (ok) {
    /* BeamSearchScorer.finalize */
    gint best = -1;
    if (!done)
      for (guint b = 0; b < B; b++)
        hypotheses_add (&hyps, seq_extend (&beams[b], -1, NAN),
            beam_scores[b], beams[b].ids->len - 1);
    /* sorted(beams, key=score).pop(): the highest; among equals the last */
    for (guint i = 0; i < hyps.beams->len; i++)
      if (best < 0 || g_array_index (hyps.beams, Hypothesis, i).score >=
          g_array_index (hyps.beams, Hypothesis, best).score)
        best = (gint) i;
    g = generation_new ();
    if (best >= 0) {
      Hypothesis *h = &g_array_index (hyps.beams, Hypothesis, best);
      g_array_append_vals (g->ids, h->seq.ids->data, h->seq.ids->len);
      g_array_append_vals (g->token_scores, h->seq.scores->data,
          MIN (h->seq.scores->len, h->seq.ids->len));
      g->sequence_score = h->score;
      if (g->ids->len < max_length) {
        g_array_append_val (g->ids, p->eos_token_id);
        if (g->token_scores->len < g->ids->len - 1) {
          float zero = 0.0f;
          g_array_append_val (g->token_scores, zero);
        }
      }
    }
    g->steps = steps;
  }

  for (guint i = 0; i < hyps.beams->len; i++)
    seq_clear (&g_array_index (hyps.beams, Hypothesis, i).seq);
  g_array_unref (hyps.beams);
  for (guint b = 0; b < B; b++)
    seq_clear (&beams[b]);
  g_free (beams);
  g_free (beam_scores);
  g_free (tokens);
  g_free (parents);
  g_free (banned);
  g_free (top_ids);
  g_free (top_scores);
  g_free (cands);
  return g;
}

F2Generation *
f2_generate (const F2GenerateParams *params, guint max_banned, F2StepFunc step,
    gpointer user_data, GError **error)
{
  if (params->num_beams == 0 || params->max_new_tokens == 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "num-beams and max-new-tokens must be at least 1");
    return NULL;
  }
  if (params->num_beams == 1)
    return generate_greedy (params, max_banned, step, user_data, error);
  return generate_beam (params, max_banned, step, user_data, error);
}
