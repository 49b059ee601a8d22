/* The CPU reference ops, run through the CPU backend, against formulas
 * written out directly here on small, hand-checkable sizes; and the op
 * validation (f2_op_check) on bad ops. */
#include "test-common.h"

#include "backend.h"

#include <math.h>
#include <string.h>

static F2Backend *backend;
static GRand *rng;

static F2Ref
new_float (const float *data, gsize n)
{
  GError *error = NULL;
  F2Ref ref = { f2_backend_alloc (backend, F2_BUFFER_ACTIVATIONS, F2_ELEM_FLOAT, n, &error), 0 };

  g_assert_no_error (error);
  if (data != NULL)
    g_assert_true (f2_backend_write (backend, ref, data, n, &error));
  g_assert_no_error (error);
  return ref;
}

static F2Ref
new_i32 (const gint32 *data, gsize n)
{
  GError *error = NULL;
  F2Ref ref = { f2_backend_alloc (backend, F2_BUFFER_HOST, F2_ELEM_I32, n, &error), 0 };

  g_assert_no_error (error);
  if (data != NULL)
    g_assert_true (f2_backend_write (backend, ref, data, n, &error));
  g_assert_no_error (error);
  return ref;
}

static float *
random_floats (gsize n)
{
  float *v = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (rng, -1.0, 1.0);
  return v;
}

static float *
read_floats (F2Ref ref, gsize n)
{
  GError *error = NULL;
  float *v = g_new (float, n);

  g_assert_true (f2_backend_read (backend, ref, v, n, &error));
  g_assert_no_error (error);
  return v;
}

static gint32 *
read_i32 (F2Ref ref, gsize n)
{
  GError *error = NULL;
  gint32 *v = g_new (gint32, n);

  g_assert_true (f2_backend_read (backend, ref, v, n, &error));
  g_assert_no_error (error);
  return v;
}

/* Run one op; returns FALSE (with @error) where the op or its run fails. */
static gboolean
try_run (const F2Op *op, GError **error)
{
  F2Program *program = f2_program_new (backend, "test");
  gboolean ok;

  f2_program_add (program, op);
  ok = f2_program_finish (program, error) && f2_program_run (program, error);
  if (ok)
    g_assert_cmpuint (f2_program_last_stats (program)->dispatches, ==, 1);
  f2_program_free (program);
  return ok;
}

static void
run (const F2Op *op)
{
  GError *error = NULL;

  try_run (op, &error);
  g_assert_no_error (error);
}

static void
expect_invalid (const F2Op *op, const char *fragment)
{
  GError *error = NULL;

  g_assert_false (try_run (op, &error));
  g_assert_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID);
  if (strstr (error->message, fragment) == NULL)
    g_error ("error '%s' does not mention '%s'", error->message, fragment);
  g_error_free (error);
}

/* Max abs error of @got against @want (strided rows), printed and checked. */
static void
check_close (const char *what, const float *got, const double *want,
    gsize rows, gsize cols, gsize ld, double tol)
{
  double max = 0.0;

  for (gsize r = 0; r < rows; r++)
    for (gsize c = 0; c < cols; c++) {
      double e = fabs (got[r * ld + c] - want[r * cols + c]);
      if (!(e <= max))
        max = isnan (e) ? INFINITY : e;
    }
  g_print ("%-40s max abs error %.3g\n", what, max);
  g_assert_cmpfloat (max, <=, tol);
}

static double
gelu (double x)
{
  return 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
}

/* ---- matmul ---- */

static void
matmul_case (guint32 flags, gboolean in_place)
{
  const guint32 M = 5, N = 7, K = 9, LDA = 11, LDO = 8, LDR = 10;
  float *a = random_floats (M * LDA), *w = random_floats (N * K);
  float *bias = random_floats (N), *res = random_floats (M * LDR);
  double want[5 * 7];
  F2Op op = { .kind = F2_OP_MATMUL, .name = "mm" };
  F2Ref ref_res = new_float (res, M * LDR);
  float *got;
  char *what;

  for (guint32 m = 0; m < M; m++)
    for (guint32 n = 0; n < N; n++) {
      double s = 0;
      for (guint32 k = 0; k < K; k++)
        s += (double) a[m * LDA + k] * w[n * K + k];
      if (flags & F2_EPI_BIAS)
        s += bias[n];
      if (flags & F2_EPI_GELU)
        s = gelu (s);
      if (flags & F2_EPI_RESIDUAL)
        s += res[m * (in_place ? LDO : LDR) + n];
      want[m * N + n] = s;
    }

  op.p.matmul = (F2MatmulParams) { M, N, K, LDA, LDO, in_place ? LDO : LDR, flags };
  op.in[0] = new_float (a, M * LDA);
  op.in[1] = new_float (NULL, f2_backend_linear_size (backend, N, K));
  g_assert_true (f2_backend_upload_linear (backend, op.in[1], N, K, w, NULL));
  if (flags & F2_EPI_BIAS)
    op.in[2] = new_float (bias, N);
  if (flags & F2_EPI_RESIDUAL)
    op.in[3] = ref_res;
  op.out = in_place ? ref_res : new_float (NULL, M * LDO);
  run (&op);

  got = read_floats (op.out, M * LDO);
  what = g_strdup_printf ("matmul flags %u%s", flags, in_place ? " in place" : "");
  check_close (what, got, want, M, N, LDO, 1e-5);
  g_free (what);
  g_free (got);
  g_free (a);
  g_free (w);
  g_free (bias);
  g_free (res);
}

static void
test_matmul (void)
{
  matmul_case (0, FALSE);
  matmul_case (F2_EPI_BIAS, FALSE);
  matmul_case (F2_EPI_BIAS | F2_EPI_GELU, FALSE);
  matmul_case (F2_EPI_BIAS | F2_EPI_GELU | F2_EPI_RESIDUAL, FALSE);
  matmul_case (F2_EPI_RESIDUAL, TRUE);
}

static void
test_gelu_values (void)
{
  /* Exact GELU at known points: gelu(1) = 0.8413447460685429... */
  const float x[4] = { 1.0f, -1.0f, 0.0f, 3.0f };
  const float one = 1.0f;
  F2Op op = { .kind = F2_OP_MATMUL };
  float *got;

  op.p.matmul = (F2MatmulParams) { 4, 1, 1, 0, 0, 0, F2_EPI_GELU };
  op.in[0] = new_float (x, 4);
  op.in[1] = new_float (&one, 1);
  op.out = new_float (NULL, 4);
  run (&op);
  got = read_floats (op.out, 4);
  g_assert_cmpfloat_with_epsilon (got[0], 0.8413447460685429, 1e-7);
  g_assert_cmpfloat_with_epsilon (got[1], -0.15865525393145707, 1e-7);
  g_assert_cmpfloat (got[2], ==, 0.0f);
  g_assert_cmpfloat_with_epsilon (got[3], 2.9959502, 1e-6);
  g_free (got);
}

/* ---- layer norm ---- */

static void
layer_norm_case (gboolean residual, gboolean in_place)
{
  const guint32 R = 3, C = 10, LDX = 12, LDO = in_place ? 12 : 11;
  float *x = random_floats (R * LDX), *res = random_floats (R * LDX);
  float *gamma = random_floats (C), *beta = random_floats (C), *got;
  double want[3 * 10];
  F2Op op = { .kind = F2_OP_LAYER_NORM };

  for (guint32 r = 0; r < R; r++) {
    double mean = 0, var = 0, v[10];
    for (guint32 c = 0; c < C; c++) {
      v[c] = x[r * LDX + c] + (residual ? res[r * LDX + c] : 0.0f);
      mean += v[c] / C;
    }
    for (guint32 c = 0; c < C; c++)
      var += (v[c] - mean) * (v[c] - mean) / C;    /* biased */
    for (guint32 c = 0; c < C; c++)
      want[r * C + c] = (v[c] - mean) / sqrt (var + 1e-5) * gamma[c] + beta[c];
  }
  op.p.layer_norm = (F2LayerNormParams) { R, C, LDX, LDO, 1e-5f };
  op.in[0] = new_float (x, R * LDX);
  op.in[1] = new_float (gamma, C);
  op.in[2] = new_float (beta, C);
  if (residual)
    op.in[3] = new_float (res, R * LDX);
  op.out = in_place ? op.in[0] : new_float (NULL, R * LDO);
  run (&op);
  got = read_floats (op.out, R * LDO);
  check_close (residual ? "layer_norm + residual" : in_place ? "layer_norm in place"
      : "layer_norm", got, want, R, C, LDO, 1e-5);
  g_free (got);
  g_free (x);
  g_free (res);
  g_free (gamma);
  g_free (beta);
}

static void
test_layer_norm (void)
{
  layer_norm_case (FALSE, FALSE);
  layer_norm_case (TRUE, FALSE);
  layer_norm_case (FALSE, TRUE);
}

/* ---- softmax ---- */

static void
test_softmax (void)
{
  /* Large values: only a max-subtracted softmax stays finite. */
  const float x[2 * 4] = { 1000, 1001, 1002, 1000, -1, 0, 1, 2 };
  double want[8];
  F2Op op = { .kind = F2_OP_SOFTMAX };
  float *got;

  for (int r = 0; r < 2; r++) {
    double sum = 0;
    for (int c = 0; c < 4; c++)
      sum += exp (0.5 * (x[r * 4 + c] - x[r * 4 + 2]));
    for (int c = 0; c < 4; c++)
      want[r * 4 + c] = exp (0.5 * (x[r * 4 + c] - x[r * 4 + 2])) / sum;
  }
  op.p.softmax = (F2SoftmaxParams) { 2, 4, 0.5f };
  op.in[0] = op.out = new_float (x, 8);
  run (&op);
  got = read_floats (op.out, 8);
  check_close ("softmax", got, want, 2, 4, 4, 1e-6);
  g_free (got);
}

/* ---- attention ---- */

/* One query row of one head, straight from the definition. */
static void
attend (const float *qi, const float *k, const float *v, int kv_len,
    int k_stride, int v_stride, int head_dim, float scale,
    const gboolean *visible, double *out)
{
  double s[64], max = -INFINITY, sum = 0;
  gboolean any = FALSE;

  for (int j = 0; j < kv_len; j++) {
    if (!visible[j])
      continue;
    s[j] = 0;
    for (int d = 0; d < head_dim; d++)
      s[j] += (double) qi[d] * k[j * k_stride + d];
    s[j] *= scale;
    max = MAX (max, s[j]);
    any = TRUE;
  }
  for (int d = 0; d < head_dim; d++)
    out[d] = 0;
  if (!any)
    return;
  for (int j = 0; j < kv_len; j++)
    if (visible[j])
      sum += exp (s[j] - max);
  for (int j = 0; j < kv_len; j++)
    if (visible[j])
      for (int d = 0; d < head_dim; d++)
        out[d] += exp (s[j] - max) / sum * v[j * v_stride + d];
}

static void
attention_case (guint32 flags, const char *what)
{
  const int H = 2, D = 3, QL = 4, KL = 5, QS = 7, KS = 8, VS = 6, OS = 9;
  const int B = 2, QB = 30, KB = 41, VB = 33, OB = 40, MB = 6;
  const gint32 mask[2 * 6] = { 1, 0, 1, 1, 0, 9, 0, 0, 0, 0, 0, 9 };
  const gint32 dyn_kv = 3;
  const int causal_offset = 1;
  float *q = random_floats (B * QB), *k = random_floats (B * KB);
  float *v = random_floats (B * VB), *got;
  double *want = g_new0 (double, B * QL * H * D);
  F2Op op = { .kind = F2_OP_ATTENTION };
  F2AttentionParams *p = &op.p.attention;

  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < QL; i++) {
        gboolean visible[5];
        for (int j = 0; j < KL; j++) {
          visible[j] = TRUE;
          if ((flags & F2_ATTN_CAUSAL) && j > i + causal_offset)
            visible[j] = FALSE;
          if ((flags & F2_ATTN_KEY_MASK) && mask[b * MB + j] == 0)
            visible[j] = FALSE;
          if ((flags & F2_ATTN_DYNAMIC_KV) && j >= dyn_kv)
            visible[j] = FALSE;
        }
        attend (q + b * QB + i * QS + h * D, k + b * KB + h * D,
            v + b * VB + h * D, KL, KS, VS, D, 0.7f, visible,
            want + ((b * QL + i) * H + h) * D);
      }

  *p = (F2AttentionParams) {
    .n_heads = H, .head_dim = D, .q_len = QL, .kv_len = KL,
    .q_stride = QS, .k_stride = KS, .v_stride = VS, .o_stride = OS,
    .batch = B, .q_batch = QB, .k_batch = KB, .v_batch = VB, .o_batch = OB,
    .mask_batch = MB, .causal_offset = causal_offset, .scale = 0.7f,
    .flags = flags,
  };
  op.in[0] = new_float (q, B * QB);
  op.in[1] = new_float (k, B * KB);
  op.in[2] = new_float (v, B * VB);
  if (flags & F2_ATTN_KEY_MASK)
    op.in[3] = new_i32 (mask, B * MB);
  if (flags & F2_ATTN_DYNAMIC_KV)
    op.in[4] = new_i32 (&dyn_kv, 1);
  op.out = new_float (NULL, B * OB);
  run (&op);
  got = read_floats (op.out, B * OB);
  /* Compare per (batch, query) row: H*D values at got[b*OB + i*OS]. */
  {
    double max = 0;
    for (int b = 0; b < B; b++)
      for (int i = 0; i < QL; i++)
        for (int c = 0; c < H * D; c++)
          max = MAX (max, fabs (got[b * OB + i * OS + c] - want[(b * QL + i) * H * D + c]));
    g_print ("%-40s max abs error %.3g\n", what, max);
    g_assert_cmpfloat (max, <=, 1e-6);
  }
  g_free (q);
  g_free (k);
  g_free (v);
  g_free (got);
  g_free (want);
}

static void
test_attention (void)
{
  attention_case (0, "attention batch 2");
  attention_case (F2_ATTN_CAUSAL, "attention causal offset 1");
  attention_case (F2_ATTN_KEY_MASK, "attention key mask (one row all masked)");
  attention_case (F2_ATTN_DYNAMIC_KV, "attention dynamic kv_len 3");
  attention_case (F2_ATTN_CAUSAL | F2_ATTN_KEY_MASK | F2_ATTN_DYNAMIC_KV,
      "attention causal+mask+dynamic");
}

static void
test_attention_window (void)
{
  /* A 4x6 grid in 2x2 windows: gather each window's tokens, attend among
   * them, scatter back. */
  const int GH = 4, GW = 6, WIN = 2, H = 2, D = 3, ST = 7;
  const int T = GH * GW, WT = WIN * WIN;
  float *q = random_floats (T * ST), *k = random_floats (T * ST);
  float *v = random_floats (T * ST), *got;
  double want[24 * 6];
  F2Op op = { .kind = F2_OP_ATTENTION };
  double max = 0;

  for (int wy = 0; wy < GH / WIN; wy++)
    for (int wx = 0; wx < GW / WIN; wx++) {
      float wq[4 * 7], wk[4 * 7], wv[4 * 7];
      int rows[4];
      gboolean visible[4] = { TRUE, TRUE, TRUE, TRUE };

      for (int t = 0; t < WT; t++) {
        rows[t] = (wy * WIN + t / WIN) * GW + wx * WIN + t % WIN;
        memcpy (wq + t * ST, q + rows[t] * ST, sizeof (float) * ST);
        memcpy (wk + t * ST, k + rows[t] * ST, sizeof (float) * ST);
        memcpy (wv + t * ST, v + rows[t] * ST, sizeof (float) * ST);
      }
      for (int h = 0; h < H; h++)
        for (int i = 0; i < WT; i++)
          attend (wq + i * ST + h * D, wk + h * D, wv + h * D, WT, ST, ST, D,
              0.5f, visible, want + rows[i] * H * D + h * D);
    }
  op.p.attention = (F2AttentionParams) {
    .n_heads = H, .head_dim = D, .q_len = WT, .kv_len = WT,
    .q_stride = ST, .k_stride = ST, .v_stride = ST, .o_stride = H * D,
    .batch = 1, .grid_h = GH, .grid_w = GW, .window = WIN, .scale = 0.5f,
    .flags = F2_ATTN_WINDOW,
  };
  op.in[0] = new_float (q, T * ST);
  op.in[1] = new_float (k, T * ST);
  op.in[2] = new_float (v, T * ST);
  op.out = new_float (NULL, T * H * D);
  run (&op);
  got = read_floats (op.out, T * H * D);
  for (int i = 0; i < T * H * D; i++)
    max = MAX (max, fabs (got[i] - want[i]));
  g_print ("%-40s max abs error %.3g\n", "attention window 2 on 4x6", max);
  g_assert_cmpfloat (max, <=, 1e-6);
  g_free (q);
  g_free (k);
  g_free (v);
  g_free (got);
}

/* ---- channel attention ---- */

static void
test_channel_attention (void)
{
  const int N = 5, C = 6, G = 2, CG = 3;
  float *qkv = random_floats (N * 3 * C), *got;
  double want[5 * 6];
  float scale = 1.0f / sqrtf (N);
  F2Op op = { .kind = F2_OP_CHANNEL_ATTENTION };

  for (int g = 0; g < G; g++) {
    double a[3][3];
    for (int c = 0; c < CG; c++) {
      double sum = 0;
      for (int c2 = 0; c2 < CG; c2++) {
        double s = 0;
        for (int n = 0; n < N; n++)
          s += qkv[n * 3 * C + g * CG + c] * scale * qkv[n * 3 * C + C + g * CG + c2];
        a[c][c2] = exp (s);     /* small values: no max needed here */
        sum += a[c][c2];
      }
      for (int c2 = 0; c2 < CG; c2++)
        a[c][c2] /= sum;
    }
    for (int n = 0; n < N; n++)
      for (int c = 0; c < CG; c++) {
        double s = 0;
        for (int c2 = 0; c2 < CG; c2++)
          s += a[c][c2] * qkv[n * 3 * C + 2 * C + g * CG + c2];
        want[n * C + g * CG + c] = s;
      }
  }
  op.p.channel_attention = (F2ChannelAttentionParams) { N, C, G, scale };
  op.in[0] = new_float (qkv, N * 3 * C);
  op.out = new_float (NULL, N * C);
  run (&op);
  got = read_floats (op.out, N * C);
  check_close ("channel_attention", got, want, N, C, C, 1e-6);
  g_free (qkv);
  g_free (got);
}

/* ---- convolutions ---- */

static void
test_conv2d (void)
{
  const int CI = 2, H = 5, W = 6, CO = 3, KS = 3, S = 2, P = 1;
  const int HO = (H + 2 * P - KS) / S + 1, WO = (W + 2 * P - KS) / S + 1;
  float *x = random_floats (CI * H * W), *w = random_floats (CO * CI * KS * KS);
  float *bias = random_floats (CO), *xhwc = g_new (float, CI * H * W);
  float *got;
  double *want = g_new (double, HO * WO * CO);
  F2Op op = { .kind = F2_OP_CONV2D };

  for (int oy = 0; oy < HO; oy++)
    for (int ox = 0; ox < WO; ox++)
      for (int co = 0; co < CO; co++) {
        double s = bias[co];
        for (int ci = 0; ci < CI; ci++)
          for (int ky = 0; ky < KS; ky++)
            for (int kx = 0; kx < KS; kx++) {
              int iy = oy * S + ky - P, ix = ox * S + kx - P;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                s += (double) x[(ci * H + iy) * W + ix]
                    * w[((co * CI + ci) * KS + ky) * KS + kx];
            }
        want[(oy * WO + ox) * CO + co] = s;
      }
  for (int ci = 0; ci < CI; ci++)
    for (int i = 0; i < H * W; i++)
      xhwc[i * CI + ci] = x[ci * H * W + i];

  for (int layout = 0; layout < 2; layout++) {
    op.p.conv2d = (F2Conv2dParams) { CI, H, W, CO, KS, S, P,
      layout ? F2_LAYOUT_HWC : F2_LAYOUT_CHW, F2_EPI_BIAS };
    op.in[0] = new_float (layout ? xhwc : x, CI * H * W);
    op.in[1] = new_float (NULL, f2_backend_linear_size (backend, CO, CI * KS * KS));
    g_assert_true (f2_backend_upload_linear (backend, op.in[1], CO, CI * KS * KS, w, NULL));
    op.in[2] = new_float (bias, CO);
    op.out = new_float (NULL, HO * WO * CO);
    run (&op);
    got = read_floats (op.out, HO * WO * CO);
    check_close (layout ? "conv2d 3x3/2 HWC" : "conv2d 3x3/2 CHW", got, want,
        HO * WO, CO, CO, 1e-5);
    g_free (got);
  }
  g_free (x);
  g_free (xhwc);
  g_free (w);
  g_free (bias);
  g_free (want);
}

static void
test_dwconv (void)
{
  const int H = 3, W = 4, C = 2;
  float *x = random_floats (H * W * C), *w = random_floats (C * 9);
  float *bias = random_floats (C), *got;
  double want[2][3 * 4 * 2];
  F2Op op = { .kind = F2_OP_DWCONV3X3 };

  for (int y = 0; y < H; y++)
    for (int xx = 0; xx < W; xx++)
      for (int c = 0; c < C; c++) {
        double s = bias[c];
        for (int dy = -1; dy <= 1; dy++)
          for (int dx = -1; dx <= 1; dx++)
            if (y + dy >= 0 && y + dy < H && xx + dx >= 0 && xx + dx < W)
              s += (double) x[((y + dy) * W + xx + dx) * C + c]
                  * w[c * 9 + (dy + 1) * 3 + dx + 1];
        want[0][(y * W + xx) * C + c] = s;
        want[1][(y * W + xx) * C + c] = s + x[(y * W + xx) * C + c];
      }
  for (int residual = 0; residual < 2; residual++) {
    op.p.dwconv = (F2DwConvParams) { H, W, C, residual };
    op.in[0] = new_float (x, H * W * C);
    op.in[1] = new_float (w, C * 9);
    op.in[2] = new_float (bias, C);
    op.out = new_float (NULL, H * W * C);
    run (&op);
    got = read_floats (op.out, H * W * C);
    check_close (residual ? "dwconv3x3 + residual" : "dwconv3x3", got,
        want[residual], H * W, C, C, 1e-6);
    g_free (got);
  }
  /* The output must not alias the input. */
  op.out = op.in[0];
  expect_invalid (&op, "overlaps");
  g_free (x);
  g_free (w);
  g_free (bias);
}

/* ---- small ops ---- */

static void
test_mean_rows (void)
{
  const float x[3 * 3] = { 1, 2, 99, 3, 4, 99, 5, 9, 99 };
  const double want[2] = { 3, 5 };
  F2Op op = { .kind = F2_OP_MEAN_ROWS };
  float *got;

  op.p.mean_rows = (F2MeanRowsParams) { 3, 2, 3 };
  op.in[0] = new_float (x, 9);
  op.out = new_float (NULL, 2);
  run (&op);
  got = read_floats (op.out, 2);
  check_close ("mean_rows", got, want, 1, 2, 2, 0);
  g_free (got);
}

static void
test_embedding (void)
{
  const gint32 ids[4] = { 2, -1, 3, 0 };       /* -1 and 3 are outside */
  const float table[3 * 2] = { 1, 2, 3, 4, 5, 6 };
  float pos[8 * 2];
  const gint32 pos_dyn = 2;
  double want[4 * 2];
  F2Op op = { .kind = F2_OP_EMBEDDING };
  float *got;

  for (int i = 0; i < 16; i++)
    pos[i] = 100.0f * i;
  /* pos_base = pos_offset 1 + pos_ref 2 = 3 */
  for (int i = 0; i < 4; i++)
    for (int c = 0; c < 2; c++) {
      double e = (ids[i] >= 0 && ids[i] < 3) ? table[ids[i] * 2 + c] * 0.5 : 0;
      want[i * 2 + c] = e + pos[(3 + i) * 2 + c];
    }
  op.p.embedding = (F2EmbeddingParams) { 4, 2, 3, 3, 0.5f, 1 };
  op.in[0] = new_i32 (ids, 4);
  op.in[1] = new_float (table, 6);
  op.in[2] = new_float (pos, 16);
  op.in[3] = new_i32 (&pos_dyn, 1);
  op.out = new_float (NULL, 4 * 3);
  run (&op);
  got = read_floats (op.out, 12);
  check_close ("embedding (+pos, ids out of range)", got, want, 4, 2, 3, 0);
  g_free (got);

  /* Without positions: out-of-range ids give exact zeros. */
  op.in[2] = op.in[3] = F2_REF_NONE;
  run (&op);
  got = read_floats (op.out, 12);
  g_assert_cmpfloat (got[3], ==, 0.0f);
  g_assert_cmpfloat (got[4], ==, 0.0f);
  g_assert_cmpfloat (got[6], ==, 0.0f);
  g_assert_cmpfloat (got[7], ==, 0.0f);
  g_assert_cmpfloat (got[0], ==, 2.5f);
  g_free (got);

  /* A dynamic position past the table is a run-time error. */
  {
    const gint32 far = 5;
    GError *error = NULL;
    op.in[2] = new_float (pos, 16);
    op.in[3] = new_i32 (&far, 1);
    g_assert_false (try_run (&op, &error));
    g_assert_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID);
    g_error_free (error);
  }
}

static void
test_add (void)
{
  const float a[6] = { 1, 2, 3, 4, 5, 6 }, b[2] = { 10, 20 };
  const double want[6] = { 11, 22, 13, 24, 15, 26 };
  F2Op op = { .kind = F2_OP_ADD };
  float *got;

  op.p.add = (F2AddParams) { 6, 2 };
  op.in[0] = op.out = new_float (a, 6);     /* in place */
  op.in[1] = new_float (b, 2);
  run (&op);
  got = read_floats (op.out, 6);
  check_close ("add (period 2, in place)", got, want, 1, 6, 6, 0);
  g_free (got);
}

static void
test_copy (void)
{
  const float x[3 * 4] = { 0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23 };
  const gint32 index[3] = { 2, 0, 2 }, bad[3] = { 0, 3, 1 };
  const double want_plain[3 * 2] = { 1, 2, 11, 12, 21, 22 };
  const double want_index[3 * 2] = { 21, 22, 1, 2, 21, 22 };
  F2Op op = { .kind = F2_OP_COPY };
  GError *error = NULL;
  float *got;

  op.p.copy = (F2CopyParams) { 3, 2, 4, 5 };
  op.in[0] = new_float (x, 12);
  op.in[0].offset = 1;
  op.out = new_float (NULL, 15);
  run (&op);
  got = read_floats (op.out, 15);
  check_close ("copy strided", got, want_plain, 3, 2, 5, 0);
  g_free (got);

  op.in[1] = new_i32 (index, 3);
  run (&op);
  got = read_floats (op.out, 15);
  check_close ("copy with row index", got, want_index, 3, 2, 5, 0);
  g_free (got);

  /* Row 3 of a 3-row input is outside: refused at run time. */
  op.in[1] = new_i32 (bad, 3);
  g_assert_false (try_run (&op, &error));
  g_assert_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_INVALID);
  g_error_free (error);
}

static void
test_argmax (void)
{
  const float x[4 * 5] = {
    1, 5, 5, 2, 5,              /* tie: lowest index 1 */
    1, 5, 5, 2, 5,              /* 1 banned: 2 */
    -3, -1, -2, -1, -9,         /* tie among negatives: 1 */
    7, 7, 7, 7, 7,              /* all banned: -1 */
  };
  const gint32 banned[4 * 5] = {
    -1, -1, -1, -1, -1,
    1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1,
    0, 1, 2, 3, 4,
  };
  const gint32 want[4] = { 1, 2, 1, -1 };
  F2Op op = { .kind = F2_OP_ARGMAX };
  gint32 *got;

  op.p.argmax = (F2ArgmaxParams) { 4, 5, 5, 5 };
  op.in[0] = new_float (x, 20);
  op.in[1] = new_i32 (banned, 20);
  op.out = new_i32 (NULL, 4);
  run (&op);
  got = read_i32 (op.out, 4);
  for (int r = 0; r < 4; r++)
    g_assert_cmpint (got[r], ==, want[r]);
  g_free (got);

  /* Without a banned list row 3 ties at 0. */
  op.in[1] = F2_REF_NONE;
  op.p.argmax.max_banned = 0;
  run (&op);
  got = read_i32 (op.out, 4);
  g_assert_cmpint (got[3], ==, 0);
  g_assert_cmpint (got[1], ==, 1);
  g_free (got);
}

static void
test_topk (void)
{
  const float x[2 * 6] = {
    0.5f, 3, 1, 3, -2, 1,
    2, 2, 2, 2, 2, 2,
  };
  const gint32 banned[2 * 2] = { 3, -1, 0, 5 };
  const gint32 want_ids[2 * 3] = { 1, 2, 5, 1, 2, 3 };
  F2Op op = { .kind = F2_OP_TOPK };
  gint32 *ids;
  float *vals;
  double max = 0;

  op.p.topk = (F2TopkParams) { 2, 6, 6, 3, 2 };
  op.in[0] = new_float (x, 12);
  op.in[1] = new_i32 (banned, 4);
  op.out = new_i32 (NULL, 6);
  op.out2 = new_float (NULL, 6);
  run (&op);
  ids = read_i32 (op.out, 6);
  vals = read_floats (op.out2, 6);
  for (int r = 0; r < 2; r++) {
    double lse = 0;
    for (int c = 0; c < 6; c++)     /* over all columns, banned included */
      lse += exp (x[r * 6 + c]);
    lse = log (lse);
    for (int i = 0; i < 3; i++) {
      g_assert_cmpint (ids[r * 3 + i], ==, want_ids[r * 3 + i]);
      max = MAX (max, fabs (vals[r * 3 + i] - (x[r * 6 + ids[r * 3 + i]] - lse)));
    }
  }
  g_print ("%-40s max abs error %.3g\n", "topk log-softmax values", max);
  g_assert_cmpfloat (max, <=, 1e-6);
  g_free (ids);
  g_free (vals);
}

/* ---- validation ---- */

static void
test_check (void)
{
  F2Op op = { .kind = F2_OP_MATMUL, .name = "bad" };
  F2Ref small = new_float (NULL, 10), ints = new_i32 (NULL, 100);
  F2Ref big = new_float (NULL, 100), big2 = new_float (NULL, 100);

  /* a needs 4*5 = 20 elements */
  op.p.matmul = (F2MatmulParams) { 4, 2, 5, 0, 0, 0, 0 };
  op.in[0] = small;
  op.in[1] = big;
  op.out = big2;
  expect_invalid (&op, "input a");
  op.in[0] = ints;
  expect_invalid (&op, "must be a float buffer");
  op.in[0] = big;
  op.p.matmul.flags = F2_EPI_BIAS;
  expect_invalid (&op, "bias");
  op.p.matmul.flags = 0;
  op.p.matmul.lda = 3;
  expect_invalid (&op, "lda");
  op.p.matmul.lda = 0;
  op.p.matmul.k = 0;
  expect_invalid (&op, "must not be 0");
  op.p.matmul.k = 5;
  op.in[1] = F2_REF_NONE;
  expect_invalid (&op, "weight");
  op.in[1] = big;
  op.in[5] = big;
  expect_invalid (&op, "slot 5");
  op.in[5] = F2_REF_NONE;
  op.in[0].offset = 90;
  expect_invalid (&op, "offset 90");

  /* Output overlapping a is refused; side-by-side columns of one buffer
   * (a in columns 0..4, out in 5..6 of rows of 8) are fine. */
  op.in[0] = big;
  op.out = f2_ref_at (big, 8);
  expect_invalid (&op, "overlaps input a");
  op.p.matmul.lda = 8;
  op.p.matmul.ldo = 8;
  op.out = f2_ref_at (big, 5);
  run (&op);

  op = (F2Op) { .kind = F2_OP_ATTENTION };
  op.p.attention = (F2AttentionParams) { .n_heads = 2, .head_dim = 4, .q_len = 4,
    .kv_len = 4, .q_stride = 8, .k_stride = 8, .v_stride = 7, .o_stride = 8,
    .batch = 1, .scale = 1 };
  op.in[0] = op.in[1] = op.in[2] = op.out = big;
  expect_invalid (&op, "exceeds a row stride");
  op.p.attention.v_stride = 8;
  op.p.attention.flags = F2_ATTN_WINDOW;
  op.p.attention.grid_h = 3;
  op.p.attention.grid_w = 2;
  op.p.attention.window = 2;
  expect_invalid (&op, "does not divide");
  op.p.attention.flags = F2_ATTN_KEY_MASK;
  expect_invalid (&op, "key mask");
  op.in[3] = big;
  expect_invalid (&op, "i32");

  op = (F2Op) { .kind = F2_OP_TOPK };
  op.p.topk = (F2TopkParams) { 1, 40, 40, 33, 0 };
  op.in[0] = big;
  op.out = ints;
  op.out2 = big;
  expect_invalid (&op, "k = 33");
  op.p.topk.k = 4;
  op.out2 = F2_REF_NONE;
  expect_invalid (&op, "out2");

  op = (F2Op) { .kind = F2_OP_SOFTMAX };
  op.p.softmax = (F2SoftmaxParams) { 2, 3, 1 };
  op.in[0] = big;
  op.out = small;
  expect_invalid (&op, "in place");

  op = (F2Op) { .kind = F2_OP_CHANNEL_ATTENTION };
  op.p.channel_attention = (F2ChannelAttentionParams) { 2, 6, 4, 1 };
  op.in[0] = op.out = big;
  expect_invalid (&op, "does not divide");

  op = (F2Op) { .kind = F2_OP_COUNT };
  expect_invalid (&op, "unknown op kind");
}

static void
test_names (void)
{
  for (int k = 0; k < F2_OP_COUNT; k++) {
    g_assert_nonnull (f2_op_kind_name (k));
    g_assert_cmpstr (f2_op_kind_name (k), !=, "unknown");
  }
  g_assert_cmpstr (f2_op_kind_name (F2_OP_MATMUL), ==, "matmul");
  {
    F2Op op = { .kind = F2_OP_MATMUL };
    op.p.matmul = (F2MatmulParams) { 2, 3, 4, 0, 0, 0, 0 };
    g_assert_cmpfloat (f2_op_flops (&op), ==, 48.0);
  }
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  backend = f2_backend_new_reference ();
  rng = g_rand_new_with_seed (1234);
  g_test_add_func ("/reference-ops/matmul", test_matmul);
  g_test_add_func ("/reference-ops/gelu", test_gelu_values);
  g_test_add_func ("/reference-ops/layer-norm", test_layer_norm);
  g_test_add_func ("/reference-ops/softmax", test_softmax);
  g_test_add_func ("/reference-ops/attention", test_attention);
  g_test_add_func ("/reference-ops/attention-window", test_attention_window);
  g_test_add_func ("/reference-ops/channel-attention", test_channel_attention);
  g_test_add_func ("/reference-ops/conv2d", test_conv2d);
  g_test_add_func ("/reference-ops/dwconv", test_dwconv);
  g_test_add_func ("/reference-ops/mean-rows", test_mean_rows);
  g_test_add_func ("/reference-ops/embedding", test_embedding);
  g_test_add_func ("/reference-ops/add", test_add);
  g_test_add_func ("/reference-ops/copy", test_copy);
  g_test_add_func ("/reference-ops/argmax", test_argmax);
  g_test_add_func ("/reference-ops/topk", test_topk);
  g_test_add_func ("/reference-ops/check", test_check);
  g_test_add_func ("/reference-ops/names", test_names);
  ret = g_test_run ();
  g_rand_free (rng);
  f2_backend_free (backend);
  return ret;
}
