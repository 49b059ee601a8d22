/* Op builders shared by the program builders (net-vision.c, net-text.c):
 * one F2Op of a common kind from the network's weights and buffers. */
#include "net-private.h"

void
f2_net_add_matmul (F2Program *p, const char *name, const F2NetLinear *l,
    F2Ref a, guint32 m, guint32 lda, F2Ref out, guint32 ldo, guint32 flags,
    F2Ref residual)
{
  F2Op op = { .kind = F2_OP_MATMUL, .name = name, .out = out };

  op.in[0] = a;
  op.in[1] = l->w;
  if (f2_ref_is_set (l->b)) {
    op.in[2] = l->b;
    flags |= F2_EPI_BIAS;
  }
  if (f2_ref_is_set (residual)) {
    op.in[3] = residual;
    flags |= F2_EPI_RESIDUAL;
  }
  op.p.matmul = (F2MatmulParams) {
    .m = m, .n = l->n, .k = l->k, .lda = lda, .ldo = ldo, .ldr = ldo,
    .flags = flags,
  };
  f2_program_add (p, &op);
}

void
f2_net_add_layer_norm (F2Program *p, const char *name, const F2NetNorm *norm,
    F2Ref x, guint32 rows, guint32 cols, F2Ref out, F2Ref residual)
{
  F2Op op = { .kind = F2_OP_LAYER_NORM, .name = name, .out = out };

  op.in[0] = x;
  op.in[1] = norm->gamma;
  op.in[2] = norm->beta;
  op.in[3] = residual;
  op.p.layer_norm = (F2LayerNormParams) { .rows = rows, .cols = cols, .eps = 1e-5f };
  f2_program_add (p, &op);
}

void
f2_net_add_copy (F2Program *p, const char *name, F2Ref x, guint32 rows,
    guint32 cols, guint32 ldx, F2Ref out, guint32 ldo, F2Ref index)
{
  F2Op op = { .kind = F2_OP_COPY, .name = name, .out = out };

  op.in[0] = x;
  op.in[1] = index;
  op.p.copy = (F2CopyParams) { .rows = rows, .cols = cols, .ldx = ldx, .ldo = ldo };
  f2_program_add (p, &op);
}

void
f2_net_add_add (F2Program *p, const char *name, F2Ref a, F2Ref b, guint32 n,
    guint32 b_period, F2Ref out)
{
  F2Op op = { .kind = F2_OP_ADD, .name = name, .out = out };

  op.in[0] = a;
  op.in[1] = b;
  op.p.add = (F2AddParams) { .n = n, .b_period = b_period };
  f2_program_add (p, &op);
}
