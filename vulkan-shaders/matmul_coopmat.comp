#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "common.glsl"
// Matmul on cooperative matrices; see matmul-common.glsl and
// matmul-coopmat.glsl.
#include "matmul-common.glsl"
#include "matmul-coopmat.glsl"
