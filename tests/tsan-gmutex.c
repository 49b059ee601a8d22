/* Built into the tests only with -Db_sanitize=thread. GLib's GMutex is a
 * futex with atomics inside libglib, which ThreadSanitizer does not see:
 * every access guarded by a GMutex would be reported as a race. These
 * wrappers take the place of GLib's lock calls in the test programs (and
 * in the model code linked into them) and tell the sanitizer what they do,
 * so that it checks the project's locking as it checks pthread mutexes:
 * races, double locks and lock-order inversions. */
#define _GNU_SOURCE
#include <glib.h>

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

typedef void (*MutexFunc) (GMutex *mutex);
typedef gboolean (*TryFunc) (GMutex *mutex);

/* GLib's own function @name, looked up once into @slot */
static gpointer
real (gpointer *slot, const char *name)
{
  gpointer f = g_atomic_pointer_get (slot);

  if (f == NULL) {
    f = dlsym (RTLD_NEXT, name);
    if (f == NULL)
      g_error ("tsan-gmutex: no %s in GLib", name);
    g_atomic_pointer_set (slot, f);
  }
  return f;
}

void
g_mutex_init (GMutex *mutex)
{
  static gpointer slot;
  MutexFunc f = (MutexFunc) real (&slot, "g_mutex_init");

  f (mutex);
  __tsan_mutex_create (mutex, 0);
}

void
g_mutex_clear (GMutex *mutex)
{
  static gpointer slot;
  MutexFunc f = (MutexFunc) real (&slot, "g_mutex_clear");

  __tsan_mutex_destroy (mutex, 0);
  f (mutex);
}

void
g_mutex_lock (GMutex *mutex)
{
  static gpointer slot;
  MutexFunc f = (MutexFunc) real (&slot, "g_mutex_lock");

  __tsan_mutex_pre_lock (mutex, 0);
  f (mutex);
  __tsan_mutex_post_lock (mutex, 0, 0);
}

gboolean
g_mutex_trylock (GMutex *mutex)
{
  static gpointer slot;
  TryFunc f = (TryFunc) real (&slot, "g_mutex_trylock");
  gboolean locked;

  __tsan_mutex_pre_lock (mutex, __tsan_mutex_try_lock);
  locked = f (mutex);
  __tsan_mutex_post_lock (mutex, __tsan_mutex_try_lock
      | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

void
g_mutex_unlock (GMutex *mutex)
{
  static gpointer slot;
  MutexFunc f = (MutexFunc) real (&slot, "g_mutex_unlock");

  __tsan_mutex_pre_unlock (mutex, 0);
  f (mutex);
  __tsan_mutex_post_unlock (mutex, 0);
}
