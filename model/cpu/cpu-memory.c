/* Host memory for the CPU backend's buffers (weights, activations and
 * working memory). Blocks of 2 MiB or more are aligned to 2 MiB and asked
 * for as transparent huge pages: a base model's weights and a batch's
 * working memory are gigabytes, and touching them 4 KiB page by 4 KiB page
 * costs seconds of page faults when a model loads or a context is made, and
 * TLB misses when the kernels walk them. */
#include "cpu-private.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE_BYTES ((gsize) 2 << 20)

gpointer
f2_cpu_alloc0 (gsize size)
{
  gsize align = size >= HUGE_PAGE_BYTES ? HUGE_PAGE_BYTES : 64;
  gpointer data = NULL;

  if (posix_memalign (&data, align, MAX (size, 1)) != 0)
    return NULL;
#ifdef MADV_HUGEPAGE
  /* only advice: where the kernel offers no huge pages, small ones serve */
  if (align == HUGE_PAGE_BYTES)
    madvise (data, size, MADV_HUGEPAGE);
#endif
  memset (data, 0, size);
  return data;
}

void
f2_cpu_free (gpointer data)
{
  free (data);
}
