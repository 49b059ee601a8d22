/* The process-wide table of loaded models. Loading happens under the table
 * lock, so two elements asking for the same model at once load it once. */
#include "gstflorence2models.h"

typedef struct {
  gchar *key;
  Florence2Model *model;
  guint users;
} SharedModel;

G_LOCK_DEFINE_STATIC (models);
static GHashTable *models_by_key = NULL;        /* key -> SharedModel */
static GHashTable *models_by_ptr = NULL;        /* Florence2Model -> SharedModel */

static void
shared_model_free (SharedModel * shared)
{
  florence2_model_unref (shared->model);
  g_free (shared->key);
  g_free (shared);
}

Florence2Model *
gst_florence2_models_acquire (const gchar * dir, const gchar * device,
    F2Precision precision, guint threads, guint max_beams, GError ** error)
{
  Florence2ModelParams params = florence2_model_default_params ();
  SharedModel *shared;
  gchar *key;

  if (device != NULL && *device == '\0')
    device = NULL;
  if (max_beams > params.limits.max_beams)
    params.limits.max_beams = max_beams;
  params.device = device;
  params.precision = precision;
  params.threads = threads;
  key = g_strdup_printf ("%s\n%s\n%d\n%u\n%u", dir, device ? device : "",
      precision, threads, params.limits.max_beams);

  G_LOCK (models);
  if (models_by_key == NULL) {
    models_by_key = g_hash_table_new (g_str_hash, g_str_equal);
    models_by_ptr = g_hash_table_new (g_direct_hash, g_direct_equal);
  }
  shared = g_hash_table_lookup (models_by_key, key);
  if (shared == NULL) {
    Florence2Model *model = florence2_model_new (dir, &params, error);

    if (model == NULL) {
      G_UNLOCK (models);
      g_free (key);
      return NULL;
    }
    shared = g_new0 (SharedModel, 1);
    shared->key = key;
    shared->model = model;
    g_hash_table_insert (models_by_key, shared->key, shared);
    g_hash_table_insert (models_by_ptr, model, shared);
  } else {
    g_free (key);
  }
  shared->users++;
  G_UNLOCK (models);
  return shared->model;
}

void
gst_florence2_models_release (Florence2Model * model)
{
  SharedModel *shared;

  if (model == NULL)
    return;
  G_LOCK (models);
  shared = models_by_ptr ? g_hash_table_lookup (models_by_ptr, model) : NULL;
  if (shared != NULL && --shared->users == 0) {
    g_hash_table_remove (models_by_key, shared->key);
    g_hash_table_remove (models_by_ptr, model);
    shared_model_free (shared);
  }
  G_UNLOCK (models);
}
