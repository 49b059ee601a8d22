#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// 2-D convolution as an implicit GEMM: the matmul kernel reading its A
// operand from the image (see matmul-common.glsl and matmul-rb.glsl).
#define F2_CONV 1
#include "matmul-common.glsl"
#include "matmul-rb.glsl"
