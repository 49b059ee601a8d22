/* The SPIR-V of every compute shader, embedded at build time
 * (vulkan-shaders/meson.build generates the table). */
#pragma once

#include <glib.h>

typedef struct {
  const char *name;             /* file name without .comp; "_f16" suffix for fp16 storage */
  const guint32 *code;
  gsize size;                   /* bytes */
} F2SpvEntry;

extern const F2SpvEntry f2_spv_table[];
extern const guint f2_spv_table_len;
