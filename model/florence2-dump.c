/* --dump: the intermediate tensors of a frame, with the golden files' names
 * and shapes, written as one safetensors file. */
#include "florence2-private.h"
#include "safetensors.h"

#include <errno.h>
#include <string.h>

/* Shape of a dumped tensor, batch dimension first as in the golden files. */
static guint
dump_shape (const Florence2Model *model, F2NetTensor which, guint64 n, guint64 *shape)
{
  const F2Config *c = model->config;

  switch (which) {
    case F2_NET_PIXEL_VALUES:
      shape[0] = 1; shape[1] = 3; shape[2] = c->preprocess.height; shape[3] = c->preprocess.width;
      return 4;
    case F2_NET_VISION_OUT:
      shape[0] = 1; shape[1] = n / c->vision.dim_embed[3]; shape[2] = c->vision.dim_embed[3];
      return 3;
    case F2_NET_LOGITS:
      shape[0] = 1; shape[1] = 1; shape[2] = n;
      return 3;
    default:
      shape[0] = 1; shape[1] = n / c->vision.projection_dim; shape[2] = c->vision.projection_dim;
      return 3;
  }
}

#define DUMP_MAX_TENSORS (6 + 2 * F2_NET_STAGES)

/* Tensors of a dump: the F2Tensor views and the buffers and names they own */
typedef struct {
  F2Tensor tensors[DUMP_MAX_TENSORS];
  float *data[DUMP_MAX_TENSORS];
  char *names[DUMP_MAX_TENSORS];
  guint n;
} Dump;

/* A new float32 tensor of @numel values and shape @shape in @dump; returns
 * its buffer, for the caller to fill. */
static float *
dump_add (Dump *dump, const char *name, guint ndim, const guint64 *shape, guint64 numel)
{
  F2Tensor *t = &dump->tensors[dump->n];

  g_assert (dump->n < DUMP_MAX_TENSORS);
  memset (t, 0, sizeof *t);
  dump->names[dump->n] = g_strdup (name);
  dump->data[dump->n] = g_new (float, numel);
  t->name = dump->names[dump->n];
  t->dtype = F2_DTYPE_F32;
  t->ndim = ndim;
  memcpy (t->shape, shape, ndim * sizeof (guint64));
  t->numel = numel;
  t->data = dump->data[dump->n];
  t->nbytes = numel * sizeof (float);
  return dump->data[dump->n++];
}

gboolean
f2_dump_tensors (Florence2Model *model, F2Net *net, const char *path, GError **error)
{
  static const F2NetTensor which[] = {
    F2_NET_PIXEL_VALUES, F2_NET_VISION_OUT, F2_NET_IMAGE_FEATURES,
    F2_NET_INPUTS_EMBEDS, F2_NET_ENCODER_OUT, F2_NET_LOGITS,
  };
  Dump dump = { 0 };
  gboolean ok = TRUE;
  char *dir = g_path_get_dirname (path);

  if (g_mkdir_with_parents (dir, 0755) != 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
        "cannot create dump directory %s: %s", dir, g_strerror (errno));
    g_free (dir);
    return FALSE;
  }
  g_free (dir);
  for (guint i = 0; i < G_N_ELEMENTS (which) && ok; i++) {
    guint64 n = f2_net_tensor_size (net, which[i]), shape[4];
    guint ndim;
    if (n == 0)
      continue;
    ndim = dump_shape (model, which[i], n, shape);
    ok = f2_net_read_tensor (net, which[i], dump_add (&dump,
            which[i] == F2_NET_LOGITS ? "decoder_logits_step0" :
            f2_net_tensor_name (which[i]), ndim, shape, n), error);
  }
  /* every vision stage in full, after its patch embedding and after its
   * blocks (the golden files hold their first 25 rows as stageN_*_rows0_24) */
  for (guint s = 0; s < F2_NET_STAGES && ok; s++) {
    for (guint after = 0; after < 2 && ok; after++) {
      guint32 grid, channels;
      guint64 n = f2_net_vision_stage_size (net, s, &grid, &channels);
      guint64 shape[3] = { 1, (guint64) grid * grid, channels };
      char *name = g_strdup_printf ("stage%u_%s", s + 1, after ? "out" : "conv_out");
      if (n > 0)
        ok = f2_net_read_vision_stage (net, s, after,
            dump_add (&dump, name, 3, shape, n), error);
      g_free (name);
    }
  }
  if (ok)
    ok = f2_safetensors_write (path, dump.tensors, dump.n, NULL, error);
  for (guint i = 0; i < dump.n; i++) {
    g_free (dump.data[i]);
    g_free (dump.names[i]);
  }
  return ok;
}

