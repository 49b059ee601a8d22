#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// In place, per row: x = softmax(x * scale).
// TPR invocations share one row (see layer_norm.comp); each keeps a running
// (max, sum of exp) pair, combined in a fixed-order tree when TPR > 1.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TPR = 1;
layout(binding = 0) buffer X { float_t x[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint rows; uint cols; float scale;
} pc;

const uint RPW = gl_WorkGroupSize.x / TPR;
shared vec2 red[TPR > 1 ? gl_WorkGroupSize.x : 1];

// merge two (max, sum) pairs
vec2 merge(vec2 a, vec2 b)
{
    float m = max(a.x, b.x);
    return vec2(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint lane = t % TPR;
    uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint row = group * RPW + t / TPR;
    bool live = row < pc.rows;
    uint base = pc.off[0] + row * pc.cols;

    // finite start: exp(-huge - m) is 0 and never NaN
    vec2 ms = vec2(-3.0e38, 0.0);
    if (live) {
        for (uint c = lane; c < pc.cols; c += TPR) {
            float v = LOAD(x[base + c]) * pc.scale;
            if (v > ms.x) {
                ms.y *= exp(ms.x - v);
                ms.x = v;
            }
            ms.y += exp(v - ms.x);
        }
    }
    if (TPR > 1) {
        red[t] = ms;
        barrier();
        for (uint s = TPR / 2; s > 0; s >>= 1) {
            if (lane < s)
                red[t] = merge(red[t], red[t + s]);
            barrier();
        }
        ms = red[t - lane];
    }
    if (!live)
        return;
    float inv = 1.0 / ms.y;
    for (uint c = lane; c < pc.cols; c += TPR)
        x[base + c] = STORE(exp(LOAD(x[base + c]) * pc.scale - ms.x) * inv);
}
