#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Depthwise 3x3 convolution, one channel per invocation column (any c).
#include "dwconv3x3.glsl"
