/* The Vulkan backend: buffers sub-allocated from per-kind arenas, host
 * transfers (mapped when the memory is host-visible, through a staging
 * buffer otherwise), and programs recorded once into a command buffer and
 * replayed. */
#include "vk-private.h"
#include "half.h"

#include <string.h>

#define BLOCK_SIZE (G_GUINT64_CONSTANT (256) << 20)
#define STAGING_SIZE (G_GUINT64_CONSTANT (64) << 20)

/* ---------------------------------------------------------------- memory */

/* Place @req in the arena of @kind: the last block if it fits, else a new
 * block (at least BLOCK_SIZE, at most the device's allocation limit). */
static gboolean
arena_place (F2VkBackend *vk, F2BufferKind kind, const VkMemoryRequirements *req,
    guint *block_index, VkDeviceSize *offset, GError **error)
{
  F2VkDevice *dev = vk->dev;
  GArray *blocks = vk->blocks[kind];
  F2VkBlock block = { 0 };
  guint32 type;

  if (blocks->len > 0) {
    F2VkBlock *last = &g_array_index (blocks, F2VkBlock, blocks->len - 1);
    VkDeviceSize at = (last->used + req->alignment - 1) / req->alignment * req->alignment;
    if ((req->memoryTypeBits & (1u << vk->memory_type[kind])) && at + req->size <= last->size) {
      last->used = at + req->size;
      *block_index = blocks->len - 1;
      *offset = at;
      return TRUE;
    }
  }

  type = f2_vk_memory_type_for (&dev->memory, req->memoryTypeBits,
      kind == F2_BUFFER_HOST, dev->map_device_memory);
  if (type == G_MAXUINT32) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "Vulkan device '%s' has no suitable memory type for %s buffers",
        dev->props.deviceName, kind == F2_BUFFER_HOST ? "host-visible" : "device");
    return FALSE;
  }
  block.size = MAX (req->size, MIN (BLOCK_SIZE, dev->max_allocation));
  if (req->size > dev->max_allocation) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_OUT_OF_MEMORY,
        "a buffer of %" G_GUINT64_FORMAT " MiB exceeds the device's largest "
        "allocation (%" G_GUINT64_FORMAT " MiB); use precision fp16",
        (guint64) req->size >> 20, (guint64) dev->max_allocation >> 20);
    return FALSE;
  }
  {
    VkMemoryAllocateInfo info = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = block.size,
      .memoryTypeIndex = type,
    };
    if (!f2_vk_check (vkAllocateMemory (dev->device, &info, NULL, &block.memory),
            "allocating device memory", error))
      return FALSE;
  }
  if (f2_vk_device_maps (dev, type, kind == F2_BUFFER_HOST)) {
    void *ptr = NULL;
    if (!f2_vk_check (vkMapMemory (dev->device, block.memory, 0, VK_WHOLE_SIZE, 0, &ptr),
            "mapping device memory", error)) {
      vkFreeMemory (dev->device, block.memory, NULL);
      return FALSE;
    }
    block.mapped = ptr;
  }
  vk->memory_type[kind] = type;
  block.used = req->size;
  g_array_append_val (blocks, block);
  *block_index = blocks->len - 1;
  *offset = 0;
  return TRUE;
}

static gboolean
create_buffer (F2VkBackend *vk, F2BufferKind kind, VkDeviceSize size,
    F2VkBuffer *out, GError **error)
{
  VkBufferCreateInfo info = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = size,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
        VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkMemoryRequirements req;
  VkDeviceSize offset;
  F2VkBlock *block;

  memset (out, 0, sizeof *out);
  if (!f2_vk_check (vkCreateBuffer (vk->dev->device, &info, NULL, &out->buffer),
          "creating a buffer", error))
    return FALSE;
  vkGetBufferMemoryRequirements (vk->dev->device, out->buffer, &req);
  if (!arena_place (vk, kind, &req, &out->block, &offset, error)) {
    vkDestroyBuffer (vk->dev->device, out->buffer, NULL);
    out->buffer = VK_NULL_HANDLE;
    return FALSE;
  }
  block = &g_array_index (vk->blocks[kind], F2VkBlock, out->block);
  if (!f2_vk_check (vkBindBufferMemory (vk->dev->device, out->buffer, block->memory,
              offset), "binding buffer memory", error)) {
    vkDestroyBuffer (vk->dev->device, out->buffer, NULL);
    out->buffer = VK_NULL_HANDLE;
    return FALSE;
  }
  out->size = size;
  out->kind = kind;
  out->mapped = block->mapped ? block->mapped + offset : NULL;
  return TRUE;
}

static guint32
vk_alloc (F2Backend *base, F2BufferKind kind, F2ElemType type, guint64 n,
    GError **error)
{
  F2VkBackend *vk = (F2VkBackend *) base;
  F2VkBuffer buf;
  guint elem = f2_elem_size (type, base->precision);
  /* round up to 16 bytes so vec4 reads of the tail stay inside */
  VkDeviceSize size = (n * elem + 15) & ~(VkDeviceSize) 15;

  if (!create_buffer (vk, kind, size, &buf, error))
    return 0;
  buf.type = type;
  buf.elem_size = elem;
  g_array_append_val (vk->buffers, buf);
  return f2_backend_register_buffer (base, kind, type, n, size);
}

static F2VkBuffer *
get_buffer (F2VkBackend *vk, guint32 id)
{
  return &g_array_index (vk->buffers, F2VkBuffer, id - 1);
}

/* ------------------------------------------------------------- transfers */

typedef struct {
  VkBuffer src, dst;
  VkBufferCopy region;
} CopyJob;

static void
record_copy (VkCommandBuffer cmd, gpointer data)
{
  CopyJob *job = data;
  /* a download is read by the host after the fence */
  VkMemoryBarrier barrier = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
  };

  vkCmdCopyBuffer (cmd, job->src, job->dst, 1, &job->region);
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
      0, 1, &barrier, 0, NULL, 0, NULL);
}

static gboolean
ensure_staging (F2VkBackend *vk, GError **error)
{
  if (vk->staging.buffer != VK_NULL_HANDLE)
    return TRUE;
  return create_buffer (vk, F2_BUFFER_HOST, STAGING_SIZE, &vk->staging, error);
}

/* Convert @n elements between the host form and the storage form. */
static void
to_storage (const F2VkBuffer *buf, guint8 *dst, const guint8 *src, guint64 n)
{
  if (buf->type == F2_ELEM_FLOAT && buf->elem_size == 2) {
    const float *f = (const float *) src;
    guint16 *h = (guint16 *) dst;
    for (guint64 i = 0; i < n; i++)
      h[i] = f2_float_to_half (f[i]);
  } else {
    memcpy (dst, src, n * buf->elem_size);
  }
}

static void
from_storage (const F2VkBuffer *buf, guint8 *dst, const guint8 *src, guint64 n)
{
  if (buf->type == F2_ELEM_FLOAT && buf->elem_size == 2) {
    const guint16 *h = (const guint16 *) src;
    float *f = (float *) dst;
    for (guint64 i = 0; i < n; i++)
      f[i] = f2_half_to_float (h[i]);
  } else {
    memcpy (dst, src, n * buf->elem_size);
  }
}

static guint
host_elem_size (const F2VkBuffer *buf)
{
  return buf->type == F2_ELEM_FLOAT ? 4 : buf->elem_size;
}

static gboolean
vk_write (F2Backend *base, F2Ref dst, const void *src, guint64 n, GError **error)
{
  F2VkBackend *vk = (F2VkBackend *) base;
  F2VkBuffer *buf = get_buffer (vk, dst.buffer);
  const guint8 *in = src;
  guint64 chunk;

  if (buf->mapped != NULL) {
    to_storage (buf, buf->mapped + dst.offset * buf->elem_size, src, n);
    return TRUE;
  }
  if (!ensure_staging (vk, error))
    return FALSE;
  chunk = STAGING_SIZE / buf->elem_size;
  for (guint64 done = 0; done < n; done += chunk) {
    guint64 count = MIN (chunk, n - done);
    CopyJob job = { vk->staging.buffer, buf->buffer,
      { 0, (dst.offset + done) * buf->elem_size, count * buf->elem_size } };
    to_storage (buf, vk->staging.mapped, in + done * host_elem_size (buf), count);
    if (!f2_vk_run_once (vk->dev, record_copy, &job, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
vk_read (F2Backend *base, F2Ref src, void *dst, guint64 n, GError **error)
{
  F2VkBackend *vk = (F2VkBackend *) base;
  F2VkBuffer *buf = get_buffer (vk, src.buffer);
  guint8 *out = dst;
  guint64 chunk;

  if (buf->mapped != NULL) {
    from_storage (buf, dst, buf->mapped + src.offset * buf->elem_size, n);
    return TRUE;
  }
  if (!ensure_staging (vk, error))
    return FALSE;
  chunk = STAGING_SIZE / buf->elem_size;
  for (guint64 done = 0; done < n; done += chunk) {
    guint64 count = MIN (chunk, n - done);
    CopyJob job = { buf->buffer, vk->staging.buffer,
      { (src.offset + done) * buf->elem_size, 0, count * buf->elem_size } };
    if (!f2_vk_run_once (vk->dev, record_copy, &job, error))
      return FALSE;
    from_storage (buf, out + done * host_elem_size (buf), vk->staging.mapped, count);
  }
  return TRUE;
}

/* Linear weights are stored for the matmul kernels in blocks of
 * F2_VK_LINEAR_BLOCK columns; each block is [ceil(k/4)][BLOCK] groups of
 * four consecutive k values (one vec4 per (k/4, n)), zero-padded in k and
 * n: a vec4 load then feeds four multiply-adds, consecutive invocations
 * (consecutive n) read consecutive vec4s, and a range of whole blocks is
 * contiguous, so a weight larger than one binding can be split by columns. */
static guint64
vk_linear_size (F2Backend *base, guint32 n, guint32 k)
{
  return (guint64) f2_div_up (n, F2_VK_LINEAR_BLOCK) * F2_VK_LINEAR_BLOCK *
      f2_div_up (k, 4) * 4;
}

static gboolean
vk_upload_linear (F2Backend *base, F2Ref dst, guint32 n, guint32 k,
    const float *w, GError **error)
{
  guint32 k4 = f2_div_up (k, 4);
  guint64 size = vk_linear_size (base, n, k);
  float *packed = g_try_new0 (float, size);
  gboolean ok;

  if (packed == NULL) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_OUT_OF_MEMORY,
        "out of host memory packing a %ux%u weight", n, k);
    return FALSE;
  }
  for (guint32 j = 0; j < n; j++) {
    guint64 block = j / F2_VK_LINEAR_BLOCK, col = j % F2_VK_LINEAR_BLOCK;
    for (guint32 kk = 0; kk < k4; kk++)
      for (guint32 l = 0; l < 4 && kk * 4 + l < k; l++)
        packed[((block * k4 + kk) * F2_VK_LINEAR_BLOCK + col) * 4 + l] =
            w[(guint64) j * k + kk * 4 + l];
  }
  ok = vk_write (base, dst, packed, size, error);
  g_free (packed);
  return ok;
}

/* ---------------------------------------------------------------- programs */

typedef struct {
  guint32 buffer;
  VkDeviceSize begin, end;
} Range;

typedef struct {
  VkCommandBuffer cmd;
  VkDescriptorPool pool;        /* without push descriptors */
  VkQueryPool queries;
  guint n_queries;
  VkFence fence;                /* this program's runs (programs run concurrently) */
  GArray *stage_names;          /* const char *, one per timestamp interval */
  GArray *stage_ms;             /* double */
  guint dispatches;
} VkProgram;

/* What the dispatches since the last barrier read and wrote */
typedef struct {
  GArray *read, *written;       /* Range */
} Hazards;

static gboolean
ranges_overlap (GArray *ranges, const Range *r)
{
  for (guint i = 0; i < ranges->len; i++) {
    const Range *o = &g_array_index (ranges, Range, i);
    if (o->buffer == r->buffer && o->begin < r->end && r->begin < o->end)
      return TRUE;
  }
  return FALSE;
}

static void
memory_barrier (VkCommandBuffer cmd)
{
  VkMemoryBarrier barrier = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
        VK_ACCESS_HOST_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
  };
  vkCmdPipelineBarrier (cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
      VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_HOST_BIT,
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &barrier, 0, NULL, 0, NULL);
}

static gboolean
record_dispatch (F2VkBackend *vk, VkProgram *prog, const F2VkDispatch *d,
    Hazards *hazards, GError **error)
{
  VkDescriptorBufferInfo infos[F2_VK_MAX_BINDINGS];
  VkWriteDescriptorSet writes[F2_VK_MAX_BINDINGS];
  guint32 push[F2_VK_PUSH_BYTES / 4] = { 0 };
  Range ranges[F2_VK_MAX_BINDINGS];
  gboolean need_barrier = FALSE;
  VkPipeline pipeline;
  char *name;

  name = d->float_variant && f2_vk_is_fp16 (vk) ?
      g_strconcat (d->shader, "_f16", NULL) : g_strdup (d->shader);
  pipeline = f2_vk_get_pipeline (vk, name, d->spec, d->n_spec, d->subgroup_size, error);
  g_free (name);
  if (pipeline == VK_NULL_HANDLE)
    return FALSE;

  for (guint i = 0; i < F2_VK_MAX_BINDINGS; i++) {
    const F2VkBinding *b = i < d->n_bind ? &d->bind[i] : NULL;
    VkDeviceSize begin = 0, end = 16, aligned;
    VkBuffer buffer = vk->dummy.buffer;

    if (b != NULL && f2_ref_is_set (b->ref)) {
      F2VkBuffer *buf = get_buffer (vk, b->ref.buffer);
      begin = b->ref.offset * buf->elem_size;
      end = MIN (begin + MAX (b->n_elements, 1) * buf->elem_size, buf->size);
      aligned = begin / vk->dev->storage_alignment * vk->dev->storage_alignment;
      push[i] = (guint32) ((begin - aligned) / buf->elem_size);
      /* cover whole 16-byte groups so vec4 reads at the end stay in range */
      end = MIN ((end + 15) & ~(VkDeviceSize) 15, buf->size);
      if (end - aligned > vk->dev->max_storage_range) {
        g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
            "%s: binding %u spans %" G_GUINT64_FORMAT " bytes, more than the "
            "device's storage buffer range (%" G_GUINT64_FORMAT ")", d->shader, i,
            (guint64) (end - aligned), (guint64) vk->dev->max_storage_range);
        return FALSE;
      }
      ranges[i] = (Range) { b->ref.buffer, begin, end };
      /* read after write, and write after read or write */
      need_barrier |= ranges_overlap (hazards->written, &ranges[i]) ||
          (b->written && ranges_overlap (hazards->read, &ranges[i]));
      buffer = buf->buffer;
      begin = aligned;
    } else {
      ranges[i] = (Range) { 0, 0, 0 };
    }
    infos[i] = (VkDescriptorBufferInfo) { buffer, begin, end - begin };
    writes[i] = (VkWriteDescriptorSet) {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstBinding = i,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &infos[i],
    };
  }
  memcpy (push + 8, d->push, d->n_push * 4);

  if (need_barrier) {
    memory_barrier (prog->cmd);
    g_array_set_size (hazards->written, 0);
    g_array_set_size (hazards->read, 0);
  }
  for (guint i = 0; i < d->n_bind; i++)
    if (ranges[i].buffer != 0)
      g_array_append_val (d->bind[i].written ? hazards->written : hazards->read, ranges[i]);

  vkCmdBindPipeline (prog->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
  if (vk->dev->push_descriptors) {
    vk->dev->cmd_push_descriptor_set (prog->cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
        vk->pipeline_layout, 0, F2_VK_MAX_BINDINGS, writes);
  } else {
    VkDescriptorSet set;
    VkDescriptorSetAllocateInfo alloc = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
      .descriptorPool = prog->pool,
      .descriptorSetCount = 1,
      .pSetLayouts = &vk->set_layout,
    };
    if (!f2_vk_check (vkAllocateDescriptorSets (vk->dev->device, &alloc, &set),
            "allocating a descriptor set", error))
      return FALSE;
    for (guint i = 0; i < F2_VK_MAX_BINDINGS; i++)
      writes[i].dstSet = set;
    vkUpdateDescriptorSets (vk->dev->device, F2_VK_MAX_BINDINGS, writes, 0, NULL);
    vkCmdBindDescriptorSets (prog->cmd, VK_PIPELINE_BIND_POINT_COMPUTE,
        vk->pipeline_layout, 0, 1, &set, 0, NULL);
  }
  vkCmdPushConstants (prog->cmd, vk->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT,
      0, F2_VK_PUSH_BYTES, push);
  vkCmdDispatch (prog->cmd, d->groups[0], d->groups[1], d->groups[2]);
  prog->dispatches++;
  return TRUE;
}

static void
write_timestamp (VkProgram *prog, const char *stage)
{
  if (prog->queries == VK_NULL_HANDLE)
    return;
  vkCmdWriteTimestamp (prog->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
      prog->queries, prog->n_queries++);
  if (stage != NULL)
    g_array_append_val (prog->stage_names, stage);
}

static void
vk_program_free (F2Backend *base, F2Program *program)
{
  F2VkBackend *vk = (F2VkBackend *) base;
  VkProgram *prog = program->priv;

  if (prog == NULL)
    return;
  if (prog->cmd != VK_NULL_HANDLE)
    vkFreeCommandBuffers (vk->dev->device, vk->dev->command_pool, 1, &prog->cmd);
  if (prog->pool != VK_NULL_HANDLE)
    vkDestroyDescriptorPool (vk->dev->device, prog->pool, NULL);
  if (prog->queries != VK_NULL_HANDLE)
    vkDestroyQueryPool (vk->dev->device, prog->queries, NULL);
  if (prog->fence != VK_NULL_HANDLE)
    vkDestroyFence (vk->dev->device, prog->fence, NULL);
  g_array_unref (prog->stage_names);
  g_array_unref (prog->stage_ms);
  g_free (prog);
  program->priv = NULL;
}

static const char *
op_kind_name (F2Program *program, guint i)
{
  return f2_op_kind_name (g_array_index (program->ops, F2Op, i).kind);
}

static gboolean
vk_program_finish (F2Backend *base, F2Program *program, GError **error)
{
  F2VkBackend *vk = (F2VkBackend *) base;
  VkProgram *prog = g_new0 (VkProgram, 1);
  GArray *dispatches = g_array_new (FALSE, TRUE, sizeof (F2VkDispatch));
  Hazards hazards = {
    g_array_new (FALSE, FALSE, sizeof (Range)),
    g_array_new (FALSE, FALSE, sizeof (Range)),
  };
  guint *op_first = NULL;
  guint stage = 0;
  guint n_intervals = vk->profile_ops ? program->ops->len : program->stages->len;
  gboolean ok = TRUE;
  VkCommandBufferAllocateInfo alloc = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = vk->dev->command_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  VkCommandBufferBeginInfo begin = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
  };

  program->priv = prog;
  prog->stage_names = g_array_new (FALSE, FALSE, sizeof (const char *));
  prog->stage_ms = g_array_new (FALSE, TRUE, sizeof (double));

  /* recorders first, so the descriptor pool can be sized */
  op_first = g_new0 (guint, program->ops->len + 1);
  for (guint i = 0; i < program->ops->len && ok; i++) {
    const F2Op *op = &g_array_index (program->ops, F2Op, i);
    op_first[i] = dispatches->len;
    ok = f2_vk_op_recorder (op->kind) (vk, op, dispatches, error);
    op_first[i + 1] = dispatches->len;
    if (!ok)
      g_prefix_error (error, "program '%s', op %u (%s '%s'): ", program->name, i,
          f2_op_kind_name (op->kind), op->name ? op->name : "");
  }

  if (ok && !vk->dev->push_descriptors && dispatches->len > 0) {
    VkDescriptorPoolSize size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      dispatches->len * F2_VK_MAX_BINDINGS };
    VkDescriptorPoolCreateInfo info = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
      .maxSets = dispatches->len,
      .poolSizeCount = 1,
      .pPoolSizes = &size,
    };
    ok = f2_vk_check (vkCreateDescriptorPool (vk->dev->device, &info, NULL, &prog->pool),
        "creating a descriptor pool", error);
  }
  if (ok && vk->dev->timestamps) {
    VkQueryPoolCreateInfo info = {
      .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
      .queryType = VK_QUERY_TYPE_TIMESTAMP,
      .queryCount = n_intervals + 2,
    };
    ok = f2_vk_check (vkCreateQueryPool (vk->dev->device, &info, NULL, &prog->queries),
        "creating a timestamp query pool", error);
  }
  ok = ok && f2_vk_check (vkAllocateCommandBuffers (vk->dev->device, &alloc, &prog->cmd),
      "allocating a command buffer", error);
  if (ok) {
    VkFenceCreateInfo fence = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    ok = f2_vk_check (vkCreateFence (vk->dev->device, &fence, NULL, &prog->fence),
        "creating a fence", error);
  }

  if (ok) {
    vkBeginCommandBuffer (prog->cmd, &begin);
    if (prog->queries != VK_NULL_HANDLE)
      vkCmdResetQueryPool (prog->cmd, prog->queries, 0, n_intervals + 2);
    /* the host wrote inputs before submitting: make them visible */
    memory_barrier (prog->cmd);
    write_timestamp (prog, NULL);
    for (guint i = 0; i < program->ops->len && ok; i++) {
      if (vk->profile_ops && i > 0)
        write_timestamp (prog, op_kind_name (program, i - 1));
      while (!vk->profile_ops && stage < program->stages->len &&
          g_array_index (program->stages, F2Stage, stage).first_op == i) {
        if (i > 0)
          write_timestamp (prog, g_array_index (program->stages, F2Stage, stage - 1).name);
        stage++;
      }
      for (guint j = op_first[i]; j < op_first[i + 1] && ok; j++)
        ok = record_dispatch (vk, prog, &g_array_index (dispatches, F2VkDispatch, j),
            &hazards, error);
    }
    if (vk->profile_ops && program->ops->len > 0)
      write_timestamp (prog, op_kind_name (program, program->ops->len - 1));
    else
      write_timestamp (prog, stage > 0 ?
          g_array_index (program->stages, F2Stage, stage - 1).name : program->name);
    {
      /* results become visible to host reads after the fence */
      VkMemoryBarrier barrier = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
      };
      vkCmdPipelineBarrier (prog->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
          VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1,
          &barrier, 0, NULL, 0, NULL);
    }
    ok = f2_vk_check (vkEndCommandBuffer (prog->cmd), "recording commands", error) && ok;
  }
  g_array_set_size (prog->stage_ms, prog->stage_names->len);
  g_array_unref (dispatches);
  g_array_unref (hazards.read);
  g_array_unref (hazards.written);
  g_free (op_first);
  if (!ok)
    vk_program_free (base, program);
  return ok;
}

static gboolean
vk_program_run (F2Backend *base, F2Program *program, GError **error)
{
  F2VkBackend *vk = (F2VkBackend *) base;
  VkProgram *prog = program->priv;

  if (!f2_vk_submit_wait (vk->dev, prog->cmd, prog->fence, error))
    return FALSE;
  program->stats.dispatches = prog->dispatches;
  program->stats.submits = 1;
  if (prog->queries != VK_NULL_HANDLE && prog->n_queries >= 2) {
    guint64 stamps[prog->n_queries];
    if (vkGetQueryPoolResults (vk->dev->device, prog->queries, 0, prog->n_queries,
            sizeof stamps, stamps, sizeof (guint64),
            VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS) {
      double ns = vk->dev->timestamp_period_ns;
      program->stats.gpu_ms = (stamps[prog->n_queries - 1] - stamps[0]) * ns / 1e6;
      for (guint i = 0; i + 1 < prog->n_queries && i < prog->stage_ms->len; i++)
        g_array_index (prog->stage_ms, double, i) = (stamps[i + 1] - stamps[i]) * ns / 1e6;
    }
  }
  return TRUE;
}

static gboolean
vk_program_stage_time (F2Backend *base, F2Program *program, guint index,
    const char **name, double *ms)
{
  VkProgram *prog = program->priv;

  if (prog == NULL || index >= prog->stage_names->len)
    return FALSE;
  *name = g_array_index (prog->stage_names, const char *, index);
  *ms = g_array_index (prog->stage_ms, double, index);
  return TRUE;
}

/* ---------------------------------------------------------------- backend */

static void
vk_free (F2Backend *base)
{
  F2VkBackend *vk = (F2VkBackend *) base;

  if (vk->dev != NULL && vk->dev->device != VK_NULL_HANDLE) {
    VkDevice device = vk->dev->device;
    vkDeviceWaitIdle (device);
    f2_vk_pipelines_clear (vk);
    for (guint i = 0; vk->buffers && i < vk->buffers->len; i++)
      vkDestroyBuffer (device, g_array_index (vk->buffers, F2VkBuffer, i).buffer, NULL);
    if (vk->staging.buffer != VK_NULL_HANDLE)
      vkDestroyBuffer (device, vk->staging.buffer, NULL);
    if (vk->dummy.buffer != VK_NULL_HANDLE)
      vkDestroyBuffer (device, vk->dummy.buffer, NULL);
    for (guint k = 0; k < 3; k++)
      for (guint i = 0; vk->blocks[k] && i < vk->blocks[k]->len; i++)
        vkFreeMemory (device, g_array_index (vk->blocks[k], F2VkBlock, i).memory, NULL);
  }
  for (guint k = 0; k < 3; k++)
    if (vk->blocks[k])
      g_array_unref (vk->blocks[k]);
  if (vk->buffers)
    g_array_unref (vk->buffers);
  f2_vk_device_close (vk->dev);
  g_free (vk);
}

static char *
vk_describe (F2Backend *base)
{
  return f2_vk_device_describe (((F2VkBackend *) base)->dev);
}

gboolean
f2_vk_backend_has_coopmat (F2Backend *backend)
{
  return g_strcmp0 (f2_backend_kind (backend), "vulkan") == 0
      && f2_vk_device_has_coopmat (((F2VkBackend *) backend)->dev);
}

static const F2BackendClass vk_class = {
  .kind = "vulkan",
  .batch_images = TRUE,
  .free = vk_free,
  .alloc = vk_alloc,
  .write = vk_write,
  .read = vk_read,
  .upload_linear = vk_upload_linear,
  .linear_size = vk_linear_size,
  .program_finish = vk_program_finish,
  .program_run = vk_program_run,
  .program_free = vk_program_free,
  .program_stage_time = vk_program_stage_time,
  .describe = vk_describe,
};

F2Backend *
f2_backend_new_vulkan (const char *device, F2Precision precision, GError **error)
{
  F2VkBackend *vk;
  F2VkDevice *dev;

  if (precision == F2_PRECISION_BF16) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_UNSUPPORTED,
        "the Vulkan backend has no bf16 storage: use precision fp16 or fp32 "
        "(bf16 is for the cpu backend)");
    return NULL;
  }
  dev = f2_vk_device_open (device, error);
  if (dev == NULL)
    return NULL;
  if (precision == F2_PRECISION_AUTO)
    precision = dev->fp16_storage ? F2_PRECISION_FP16 : F2_PRECISION_FP32;
  if (precision == F2_PRECISION_FP16 && !dev->fp16_storage) {
    g_set_error (error, F2_SETTINGS_ERROR, F2_SETTINGS_ERROR_UNSUPPORTED,
        "Vulkan device '%s' has no 16-bit storage buffers; use precision fp32",
        dev->props.deviceName);
    f2_vk_device_close (dev);
    return NULL;
  }
  vk = g_new0 (F2VkBackend, 1);
  vk->dev = dev;
  vk->profile_ops = g_strcmp0 (g_getenv ("F2_VULKAN_PROFILE_OPS"), "1") == 0
      || g_strcmp0 (g_getenv ("F2_PROFILE_OPS"), "1") == 0;
  f2_backend_init_base (&vk->base, &vk_class, dev->props.deviceName, precision);
  vk->buffers = g_array_new (FALSE, TRUE, sizeof (F2VkBuffer));
  for (guint k = 0; k < 3; k++)
    vk->blocks[k] = g_array_new (FALSE, TRUE, sizeof (F2VkBlock));
  /* the dummy buffer is not in the buffer table, so buffer ids are the same
   * on every backend for the same sequence of allocations */
  if (!f2_vk_pipelines_init (vk, error) ||
      !create_buffer (vk, F2_BUFFER_ACTIVATIONS, 256, &vk->dummy, error)) {
    f2_backend_free (&vk->base);
    return NULL;
  }
  return &vk->base;
}

