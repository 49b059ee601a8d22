/* What the cpu backend's C kernels (cpu-op-*.c) share: the vector type
 * they compute with and the helpers on it, and how they decide to thread. */
#pragma once

#include <glib.h>
#include <math.h>

/* The hot loops get an AVX-512 clone picked at load time where the CPU has
 * it; the default build targets baseline x86-64. Not under ThreadSanitizer:
 * GCC instruments the clones' resolvers, which the dynamic loader runs
 * before the sanitizer's runtime is set up, and the program crashes at
 * start. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) \
    && !defined(__SANITIZE_THREAD__)
#define HOT __attribute__((target_clones ("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif

#define PACKED(ld, dflt) ((ld) != 0 ? (ld) : (dflt))
/* Work (in multiply-adds or elements) below which an op runs on the calling
 * thread: waking the other threads costs more than it saves, and on a busy
 * machine every parallel region waits for its slowest thread. */
#define PARALLEL_WORTH(work) ((work) >= 65536)
#define ROUND16(x) (((x) + 15) & ~(gsize) 15)

/* 16 floats: one AVX-512 register (two or four on narrower clones) */
typedef float v16 __attribute__ ((vector_size (64)));
typedef float v16u __attribute__ ((vector_size (64), aligned (4)));
typedef gint32 v16i __attribute__ ((vector_size (64)));
/* Helpers on v16 values are always inlined: they then take the vector
 * width of the clone that calls them (a call would need one ABI for all). */
#define V16_INLINE static inline __attribute__ ((always_inline))

V16_INLINE v16
v16_select (v16i mask, v16 a, v16 b)
{
  return (v16) ((mask & (v16i) a) | (~mask & (v16i) b));
}

V16_INLINE float
v16_hmax (v16 v)
{
  float m = v[0];
  for (int i = 1; i < 16; i++)
    m = v[i] > m ? v[i] : m;
  return m;
}

V16_INLINE float
v16_hsum (v16 v)
{
  float s = 0.0f;
  for (int i = 0; i < 16; i++)
    s += v[i];
  return s;
}

/* exp for the softmaxes, 16 at a time: Cody-Waite reduction and a degree-6
 * polynomial (within 2 ulp of expf); 0 below -87, as expf underflows. */
V16_INLINE v16
exp16 (v16 x)
{
  v16 y, n, r, p, tf;
  v16i t, scale;

  y = v16_select (x < -87.0f, (v16) { 0 } - 87.0f, x);
  y = v16_select (y > 88.0f, (v16) { 0 } + 88.0f, y);
  tf = y * 1.44269504088896341f + 0.5f;
  t = __builtin_convertvector (tf, v16i);               /* toward zero */
  n = __builtin_convertvector (t, v16);
  t += (v16i) (n > tf);                                 /* floor: -1 where rounded up */
  n = __builtin_convertvector (t, v16);
  r = y - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  scale = (t + 127) << 23;
  return v16_select (x < -87.0f, (v16) { 0 }, p * (v16) scale);
}

/* scalar exp for the few places that need it: log-sum-exp */
static inline float
fast_expf (float x)
{
  v16 v = { x };
  return exp16 (v)[0];
}

/* Softmax of s[0..n) in place (n a multiple of 16) over the entries before
 * @visible_end; the others, and a row with nothing visible, get 0. Entries
 * already -INFINITY (masked) get 0. In cpu-op-norm.c. */
void f2_cpu_softmax16 (float *restrict s, gsize n, gsize visible_end, float scale);
