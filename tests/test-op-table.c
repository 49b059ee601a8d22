/* The op table and the backends' tables of kernels: every op kind has a
 * complete description (name, slots, check, FLOP count) and a kernel on
 * every backend. Adding a kind fails here until it has all of them. */
#include "ops.h"
#include "reference-ops.h"
#include "cpu-ops.h"
#include "vk-private.h"

#include <glib.h>

static void
test_descriptions (void)
{
  for (int k = 0; k < F2_OP_COUNT; k++) {
    const F2OpInfo *info = f2_op_info (k);
    gboolean ended = FALSE;

    g_test_message ("kind %d", k);
    g_assert_nonnull (info);
    g_assert_nonnull (info->name);
    g_assert_cmpstr (f2_op_kind_name (k), ==, info->name);
    g_assert_nonnull (info->check);
    g_assert_nonnull (info->flops);
    g_assert_nonnull (info->out.name);
    /* inputs are named from slot 0, with no gap */
    for (int i = 0; i < F2_OP_MAX_INPUTS; i++) {
      if (info->in[i].name == NULL)
        ended = TRUE;
      else
        g_assert_false (ended);
    }
    for (int j = 0; j < k; j++)
      g_assert_cmpstr (f2_op_info (j)->name, !=, info->name);
  }
  g_assert_null (f2_op_info (F2_OP_COUNT));
  g_assert_cmpstr (f2_op_kind_name (F2_OP_COUNT), ==, "unknown");
}

static void
test_kernels (void)
{
  for (int k = 0; k < F2_OP_COUNT; k++) {
    g_test_message ("%s", f2_op_kind_name (k));
    g_assert_nonnull (f2_reference_kernel (k));
    g_assert_nonnull (f2_cpu_op_kernel (k));
    g_assert_nonnull (f2_cpu_op_kernel (k)->run);
    g_assert_nonnull (f2_vk_op_recorder (k));
  }
  g_assert_null (f2_reference_kernel (F2_OP_COUNT));
  g_assert_null (f2_cpu_op_kernel (F2_OP_COUNT));
  g_assert_null (f2_vk_op_recorder (F2_OP_COUNT));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/op-table/descriptions", test_descriptions);
  g_test_add_func ("/op-table/kernels", test_kernels);
  return g_test_run ();
}
