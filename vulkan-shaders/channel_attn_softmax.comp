#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// DaViT channel attention, pass 2 of 3: one invocation per (g, c) row:
// A[g][c][c'] = softmax over c' of scale * sum over splits of part[s][g][c][c'],
// the splits added in order.
layout(local_size_x = 64) in;
layout(binding = 0) buffer S { float scratch[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint rows; uint cg; uint splits; uint a_offset; float scale;
} pc;

float logit(uint row, uint c2, uint stride)
{
    float sum = 0.0;
    for (uint s = 0; s < pc.splits; s++)
        sum += scratch[pc.off[0] + s * stride + row * pc.cg + c2];
    return sum * pc.scale;
}

void main()
{
    uint row = gl_GlobalInvocationID.x;     // g * cg + c
    if (row >= pc.rows)
        return;
    uint stride = pc.rows * pc.cg;          // one split's partials
    float m = -3.0e38, sum = 0.0;
    for (uint c2 = 0; c2 < pc.cg; c2++)
        m = max(m, logit(row, c2, stride));
    for (uint c2 = 0; c2 < pc.cg; c2++)
        sum += exp(logit(row, c2, stride) - m);
    float inv = 1.0 / sum;
    uint a = pc.off[0] + pc.a_offset + row * pc.cg;
    for (uint c2 = 0; c2 < pc.cg; c2++)
        scratch[a + c2] = exp(logit(row, c2, stride) - m) * inv;
}
