#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"
// Fused attention, partial results merged through subgroup shuffles; see
// attention.glsl.
#define F2_ATTN_SUBGROUP 1
#include "attention.glsl"
