#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// out[i] = a[i] + b[i % b_period]
layout(local_size_x = 256) in;
layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 1) readonly buffer A { float_t a[]; };
layout(binding = 2) readonly buffer B { float_t b[]; };
layout(push_constant) uniform PC { F2_PUSH_OFFSETS uint n; uint b_period; } pc;

void main()
{
    uint i = f2_flat_index();
    if (i >= pc.n)
        return;
    o[pc.off[0] + i] = STORE(LOAD(a[pc.off[1] + i]) + LOAD(b[pc.off[2] + i % pc.b_period]));
}
