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

/* ------------------------------------------------------------- generator */

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

/* BeamHypotheses: at most num_beams finished sequences and the worst score */
typedef struct {
  GArray *beams;                /* Hypothesis, in insertion order (deletions keep order) */
  float worst_score;
  guint num_beams;
  float length_penalty;
} Hypotheses;

struct _F2Generator {
  F2GenerateParams p;
  guint max_banned, max_length;
  guint steps;
  gboolean finished;            /* no more positions */
  /* this position */
  gint32 forced;                /* the forced token, or -1 */
  gboolean needs_step;
  gint32 *tokens, *parents, *banned;    /* [rows], [rows], [rows][max_banned] */
  gint32 *out_ids;              /* [rows][k] (greedy: [1]) */
  float *out_scores;
  /* greedy: the sequence so far */
  F2Generation *greedy;
  /* beam search */
  Seq *beams;
  float *beam_scores;
  Candidate *cands;
  Hypotheses hyps;
  gboolean done;                /* the hypotheses are complete (early stop) */
  gboolean have_parents;
};

static void seq_clear (Seq *s);

F2Generator *
f2_generator_new (const F2GenerateParams *params, guint max_banned, GError **error)
{
  F2Generator *g;
  guint B = params->num_beams, K = 2 * B;

  if (params->num_beams == 0 || params->max_new_tokens == 0) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID,
        "num-beams and max-new-tokens must be at least 1");
    return NULL;
  }
  g = g_new0 (F2Generator, 1);
  g->p = *params;
  g->max_banned = max_banned;
  g->max_length = params->max_new_tokens + 1;
  g->tokens = g_new0 (gint32, B);
  g->parents = g_new0 (gint32, B);
  g->banned = g_new0 (gint32, (gsize) B * MAX (max_banned, 1));
  g->out_ids = g_new0 (gint32, (gsize) B * K);
  g->out_scores = g_new0 (float, (gsize) B * K);
  if (B == 1) {
    g->greedy = generation_new ();
    g_array_append_val (g->greedy->ids, params->decoder_start_token_id);
    return g;
  }
  g->beams = g_new0 (Seq, B);
  g->beam_scores = g_new (float, B);
  g->cands = g_new (Candidate, (gsize) B * K);
  g->hyps = (Hypotheses) { g_array_new (FALSE, FALSE, sizeof (Hypothesis)), 1e9f,
    B, params->length_penalty };
  for (guint b = 0; b < B; b++) {
    g->beams[b].ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    g->beams[b].scores = g_array_new (FALSE, FALSE, sizeof (float));
    g_array_append_val (g->beams[b].ids, params->decoder_start_token_id);
    g->beam_scores[b] = b == 0 ? 0.0f : -1e9f;
    g->parents[b] = (gint32) b;
  }
  return g;
}

void
f2_generator_free (F2Generator *g)
{
  if (g == NULL)
    return;
  f2_generation_free (g->greedy);
  if (g->beams != NULL) {
    for (guint i = 0; i < g->hyps.beams->len; i++)
      seq_clear (&g_array_index (g->hyps.beams, Hypothesis, i).seq);
    g_array_unref (g->hyps.beams);
    for (guint b = 0; b < g->p.num_beams; b++)
      seq_clear (&g->beams[b]);
  }
  g_free (g->beams);
  g_free (g->beam_scores);
  g_free (g->cands);
  g_free (g->tokens);
  g_free (g->parents);
  g_free (g->banned);
  g_free (g->out_ids);
  g_free (g->out_scores);
  g_free (g);
}

gboolean
f2_generator_finished (const F2Generator *g)
{
  return g->finished;
}

/* The current sequence length (start token included) */
static guint
generator_len (const F2Generator *g)
{
  return g->greedy ? g->greedy->ids->len : g->beams[0].ids->len;
}

gboolean
f2_generator_prepare (F2Generator *g, F2Step *step, gboolean *needs_step,
    GError **error)
{
  guint B = g->p.num_beams, cur_len = generator_len (g);

  g_return_val_if_fail (!g->finished, FALSE);
  g->forced = forced_token (&g->p, cur_len, g->max_length);
  /* the last position needs no decoder run when its token is forced */
  g->needs_step = !(g->forced >= 0 && cur_len == g->max_length - 1);
  *needs_step = g->needs_step;
  *step = (F2Step) {
    .rows = B, .tokens = g->tokens,
    .parents = g->have_parents ? g->parents : NULL,
    .position = cur_len - 1, .banned = g->banned, .k = B == 1 ? 0 : 2 * B,
    .out_ids = g->out_ids, .out_scores = B == 1 ? NULL : g->out_scores,
  };
  if (!g->needs_step)
    return TRUE;
  for (guint b = 0; b < B; b++) {
    const GArray *ids = g->greedy ? g->greedy->ids : g->beams[b].ids;
    g->tokens[b] = g_array_index (ids, gint32, cur_len - 1);
    if (!banned_tokens (&g->p, ids, g->banned + (gsize) b * g->max_banned,
            g->max_banned, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
greedy_advance (F2Generator *g, GError **error)
{
  const F2GenerateParams *p = &g->p;
  gint32 token = g->forced;
  float zero = 0.0f;

  if (g->needs_step) {
    if (g->forced < 0)
      token = g->out_ids[0];
    if (token < 0) {
      /* every id banned, or logits that are not numbers */
      if (p->eos_token_id >= 0) {
        g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_FAILED,
            "the decoder produced no valid token at step %u (non-finite "
            "logits?); try precision fp32", generator_len (g));
        return FALSE;
      }
      token = p->pad_token_id;  /* fixed-length runs go on */
    }
  }
  g_array_append_val (g->greedy->ids, token);
  g_array_append_val (g->greedy->token_scores, zero);
  g->finished = token == p->eos_token_id || g->greedy->ids->len >= g->max_length;
  return TRUE;
}

/* ------------------------------------------------------------ beam search */




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

static gboolean
beam_advance (F2Generator *g, GError **error)
{
  const F2GenerateParams *p = &g->p;
  guint B = p->num_beams, K = 2 * B, cur_len = g->beams[0].ids->len;
  gint32 forced = g->forced;
  Candidate *cands = g->cands;
  guint n_cands = 0;
  gboolean ok = TRUE;

  /* next_token_scores = processed log-probs + beam_scores[:, None] */
  for (guint b = 0; b < B; b++) {
    if (forced >= 0) {
      /* every other token is -inf: one finite candidate per beam */
      cands[n_cands++] = (Candidate) { 0.0f + g->beam_scores[b], 0.0f, forced, b };
      continue;
    }
    for (guint j = 0; j < K && ok; j++) {
      float lp = g->out_scores[b * K + j];
      gint32 id = g->out_ids[b * K + j];
      if (id >= 0 && isnan (lp))
        ok = FALSE;
      if (id < 0 || !isfinite (lp))
        continue;
      cands[n_cands++] = (Candidate) { lp + g->beam_scores[b], lp, id, b };
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
    return FALSE;
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
        hypotheses_add (&g->hyps, seq_extend (&g->beams[c->row], -1, c->logprob),
            c->score, cur_len);
      } else {
        next[n_next] = seq_extend (&g->beams[c->row], c->token, c->logprob);
        next_scores[n_next] = c->score;
        g->parents[n_next] = (gint32) c->row;
        n_next++;
      }
    }
    /* every remaining token was -inf (forced EOS): fill with dead beams */
    for (; n_next < B; n_next++) {
      next[n_next] = seq_extend (&g->beams[0], p->pad_token_id, -INFINITY);
      next_scores[n_next] = -INFINITY;
      g->parents[n_next] = 0;
    }
    g->done = g->done || (n_cands > 0 &&
        hypotheses_done (&g->hyps, p, cands[0].score, cur_len + 1));
    for (guint b = 0; b < B; b++) {
      seq_clear (&g->beams[b]);
      g->beams[b] = next[b];
      g->beam_scores[b] = next_scores[b];
    }
    g->have_parents = TRUE;
  }
  g->finished = g->done || g->beams[0].ids->len >= g->max_length;
  return TRUE;
}

gboolean
f2_generator_advance (F2Generator *g, GError **error)
{
  g_return_val_if_fail (!g->finished, FALSE);
  if (g->needs_step)
    g->steps++;
  return g->greedy ? greedy_advance (g, error) : beam_advance (g, error);
}

/* BeamSearchScorer.finalize */
static F2Generation *
beam_finish (F2Generator *g)
{
  const F2GenerateParams *p = &g->p;
  Hypotheses *hyps = &g->hyps;
  F2Generation *out = generation_new ();
  gint best = -1;

  if (!g->done)
    for (guint b = 0; b < p->num_beams; b++)
      hypotheses_add (hyps, seq_extend (&g->beams[b], -1, NAN),
          g->beam_scores[b], g->beams[b].ids->len - 1);
  /* sorted(beams, key=score).pop(): the highest; among equals the last */
  for (guint i = 0; i < hyps->beams->len; i++)
    if (best < 0 || g_array_index (hyps->beams, Hypothesis, i).score >=
        g_array_index (hyps->beams, Hypothesis, best).score)
      best = (gint) i;
  if (best >= 0) {
    Hypothesis *h = &g_array_index (hyps->beams, Hypothesis, best);
    g_array_append_vals (out->ids, h->seq.ids->data, h->seq.ids->len);
    g_array_append_vals (out->token_scores, h->seq.scores->data,
        MIN (h->seq.scores->len, h->seq.ids->len));
    out->sequence_score = h->score;
    if (out->ids->len < g->max_length) {
      g_array_append_val (out->ids, p->eos_token_id);
      if (out->token_scores->len < out->ids->len - 1) {
        float zero = 0.0f;
        g_array_append_val (out->token_scores, zero);
      }
    }
  }
  return out;
}

F2Generation *
f2_generator_finish (F2Generator *g)
{
  F2Generation *out;

  g_return_val_if_fail (g->finished, NULL);
  if (g->greedy) {
    out = g->greedy;
    g->greedy = NULL;
  } else {
    out = beam_finish (g);
  }
  out->steps = g->steps;
  f2_generator_free (g);
  return out;
}

F2Generation *
f2_generate (const F2GenerateParams *params, guint max_banned, F2StepFunc step_fn,
    gpointer user_data, GError **error)
{
  F2Generator *g = f2_generator_new (params, max_banned, error);

  if (g == NULL)
    return NULL;
  while (!g->finished) {
    F2Step step;
    gboolean needs_step;

    if (!f2_generator_prepare (g, &step, &needs_step, error)
        || (needs_step && !step_fn (user_data, &step, error))
        || !f2_generator_advance (g, error)) {
      f2_generator_free (g);
      return NULL;
    }
  }
  return f2_generator_finish (g);
}
