/* Built into the tests only with -Db_sanitize=thread. GLib's GMutex is a
 * futex with atomics inside libglib, which ThreadSanitizer does not see:
 * every access guarded by a GMutex would be reported as a race. These
 * wrappers take the place of GLib's lock calls in the test programs (and
 * in the model code linked into them) and tell the sanitizer what they do,
 * so that it checks the project's locking as it checks pthread mutexes:
 * races, double locks and lock-order inversions. GCond waits, which
 * release and retake the mutex inside GLib, are wrapped for the same reason. */
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

/* A wait releases the mutex inside GLib and takes it again before it
 * returns: tell the sanitizer both, or it sees the waiter holding the lock
 * all along and the signalling thread locking it twice. */
typedef void (*WaitFunc) (GCond *cond, GMutex *mutex);
typedef gboolean (*WaitUntilFunc) (GCond *cond, GMutex *mutex, gint64 end_time);

static void
released (GMutex *mutex)
{
  __tsan_mutex_pre_unlock (mutex, 0);
  __tsan_mutex_post_unlock (mutex, 0);
}

static void
taken (GMutex *mutex)
{
  __tsan_mutex_pre_lock (mutex, 0);
  __tsan_mutex_post_lock (mutex, 0, 0);
}

void
g_cond_wait (GCond *cond, GMutex *mutex)
{
  static gpointer slot;
  WaitFunc f = (WaitFunc) real (&slot, "g_cond_wait");

  released (mutex);
  f (cond, mutex);
  taken (mutex);
}

gboolean
g_cond_wait_until (GCond *cond, GMutex *mutex, gint64 end_time)
{
  static gpointer slot;
  WaitUntilFunc f = (WaitUntilFunc) real (&slot, "g_cond_wait_until");
  gboolean signalled;

  released (mutex);
  signalled = f (cond, mutex, end_time);
  taken (mutex);
  return signalled;
}
