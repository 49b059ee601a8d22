#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Depthwise 3x3 convolution on groups of 4 channels (c % 4 == 0, offsets
// multiples of 4): vec4 loads and stores.
#define VEC4 1
#include "dwconv3x3.glsl"
