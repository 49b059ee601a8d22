#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// out[c] = mean over r of x[r][c]; one workgroup per column, rows split
// across the invocations and summed in shared memory (fixed order, so the
// result does not depend on the subgroup size).
layout(local_size_x = 64) in;
layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 1) readonly buffer X { float_t x[]; };
layout(push_constant) uniform PC { F2_PUSH_OFFSETS uint rows; uint cols; uint ldx; } pc;
shared float partial[64];

void main()
{
    uint c = gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;
    float sum = 0.0;
    for (uint r = t; r < pc.rows; r += 64)
        sum += LOAD(x[pc.off[1] + r * pc.ldx + c]);
    partial[t] = sum;
    barrier();
    for (uint s = 32; s > 0; s >>= 1) {
        if (t < s)
            partial[t] += partial[t + s];
        barrier();
    }
    if (t == 0)
        o[pc.off[0] + c] = STORE(partial[0] / float(pc.rows));
}
