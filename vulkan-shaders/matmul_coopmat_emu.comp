#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
// The cooperative-matrix matmul with its fragment operations emulated, for
// checking its tiling on devices without cooperative matrices; see
// matmul-coopmat.glsl.
#define F2_COOPMAT_EMULATED 1
#include "matmul-common.glsl"
#include "matmul-coopmat.glsl"
