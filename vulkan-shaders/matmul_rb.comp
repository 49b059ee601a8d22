#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Matmul with fused epilogue; see matmul-common.glsl and matmul-rb.glsl.
#include "matmul-common.glsl"
#include "matmul-rb.glsl"
