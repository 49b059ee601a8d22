/* Compute pipelines from the embedded SPIR-V, created on first use and
 * cached by shader name and specialization constants (drivers spend
 * milliseconds compiling each one). All pipelines share one layout: eight
 * storage buffers and 128 bytes of push constants. */
#include "vk-private.h"
#include "vk-shaders.h"

#include <string.h>

static const F2SpvEntry *
find_shader (const char *name)
{
  for (guint i = 0; i < f2_spv_table_len; i++)
    if (strcmp (f2_spv_table[i].name, name) == 0)
      return &f2_spv_table[i];
  return NULL;
}

static void
destroy_pipeline (gpointer data, gpointer user_data)
{
  F2VkBackend *vk = user_data;
  vkDestroyPipeline (vk->dev->device, (VkPipeline) data, NULL);
}

gboolean
f2_vk_pipelines_init (F2VkBackend *vk, GError **error)
{
  VkDescriptorSetLayoutBinding bindings[F2_VK_MAX_BINDINGS];
  VkDescriptorSetLayoutCreateInfo set_info = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .flags = vk->dev->push_descriptors ?
        VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0,
    .bindingCount = F2_VK_MAX_BINDINGS,
    .pBindings = bindings,
  };
  VkPushConstantRange push = {
    .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    .offset = 0,
    .size = F2_VK_PUSH_BYTES,
  };
  VkPipelineLayoutCreateInfo layout_info = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &vk->set_layout,
    .pushConstantRangeCount = 1,
    .pPushConstantRanges = &push,
  };
  VkPipelineCacheCreateInfo cache_info = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
  };

  for (guint i = 0; i < F2_VK_MAX_BINDINGS; i++) {
    bindings[i] = (VkDescriptorSetLayoutBinding) {
      .binding = i,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  }
  vk->pipelines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return f2_vk_check (vkCreateDescriptorSetLayout (vk->dev->device, &set_info,
          NULL, &vk->set_layout), "creating the descriptor set layout", error) &&
      f2_vk_check (vkCreatePipelineLayout (vk->dev->device, &layout_info, NULL,
          &vk->pipeline_layout), "creating the pipeline layout", error) &&
      f2_vk_check (vkCreatePipelineCache (vk->dev->device, &cache_info, NULL,
          &vk->pipeline_cache), "creating the pipeline cache", error);
}

void
f2_vk_pipelines_clear (F2VkBackend *vk)
{
  VkDevice device = vk->dev->device;

  if (vk->pipelines != NULL) {
    GList *values = g_hash_table_get_values (vk->pipelines);
    g_list_foreach (values, destroy_pipeline, vk);
    g_list_free (values);
    g_hash_table_unref (vk->pipelines);
    vk->pipelines = NULL;
  }
  if (vk->pipeline_cache != VK_NULL_HANDLE)
    vkDestroyPipelineCache (device, vk->pipeline_cache, NULL);
  if (vk->pipeline_layout != VK_NULL_HANDLE)
    vkDestroyPipelineLayout (device, vk->pipeline_layout, NULL);
  if (vk->set_layout != VK_NULL_HANDLE)
    vkDestroyDescriptorSetLayout (device, vk->set_layout, NULL);
}

VkPipeline
f2_vk_get_pipeline (F2VkBackend *vk, const char *shader, const guint32 *spec,
    guint n_spec, guint32 subgroup_size, GError **error)
{
  GString *key = g_string_new (shader);
  VkPipeline pipeline;
  const F2SpvEntry *entry;
  VkShaderModule module = VK_NULL_HANDLE;
  VkSpecializationMapEntry map[F2_VK_MAX_SPEC];
  gint64 start;

  for (guint i = 0; i < n_spec; i++)
    g_string_append_printf (key, ":%u", spec[i]);
  if (subgroup_size != 0)
    g_string_append_printf (key, "/sg%u", subgroup_size);
  pipeline = g_hash_table_lookup (vk->pipelines, key->str);
  if (pipeline != VK_NULL_HANDLE) {
    g_string_free (key, TRUE);
    return pipeline;
  }

  entry = find_shader (shader);
  if (entry == NULL) {
    g_set_error (error, F2_BACKEND_ERROR, F2_BACKEND_ERROR_UNSUPPORTED,
        "no compute shader named '%s' is built into this library", shader);
    g_string_free (key, TRUE);
    return VK_NULL_HANDLE;
  }

  start = g_get_monotonic_time ();
  {
    VkShaderModuleCreateInfo module_info = {
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
      .codeSize = entry->size,
      .pCode = entry->code,
    };
    VkSpecializationInfo spec_info = {
      .mapEntryCount = n_spec,
      .pMapEntries = map,
      .dataSize = n_spec * sizeof (guint32),
      .pData = spec,
    };
    /* only where the device lets pipelines choose (f2_vk_device_subgroup_for) */
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT required = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
      .requiredSubgroupSize = subgroup_size,
    };
    VkComputePipelineCreateInfo info = {
      .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
      .stage = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
        .stage = VK_SHADER_STAGE_COMPUTE_BIT,
        .pName = "main",
        .pSpecializationInfo = n_spec ? &spec_info : NULL,
        .pNext = subgroup_size != 0 ? &required : NULL,
      },
      .layout = vk->pipeline_layout,
    };

    for (guint i = 0; i < n_spec; i++)
      map[i] = (VkSpecializationMapEntry) { i, i * sizeof (guint32), sizeof (guint32) };
    if (!f2_vk_check (vkCreateShaderModule (vk->dev->device, &module_info, NULL,
                &module), "creating a shader module", error)) {
      g_string_free (key, TRUE);
      return VK_NULL_HANDLE;
    }
    info.stage.module = module;
    if (!f2_vk_check (vkCreateComputePipelines (vk->dev->device,
                vk->pipeline_cache, 1, &info, NULL, &pipeline),
            "creating a compute pipeline", error)) {
      g_prefix_error (error, "shader %s: ", key->str);
      pipeline = VK_NULL_HANDLE;
    }
    vkDestroyShaderModule (vk->dev->device, module, NULL);
  }
  vk->pipeline_compile_ms += (g_get_monotonic_time () - start) / 1000.0;
  if (pipeline != VK_NULL_HANDLE)
    g_hash_table_insert (vk->pipelines, g_string_free (key, FALSE), pipeline);
  else
    g_string_free (key, TRUE);
  return pipeline;
}
