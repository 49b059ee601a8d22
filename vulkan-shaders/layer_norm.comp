#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// out[r] = ((x[r] + res[r]) - mean) / sqrt(var + eps) * gamma + beta
//
// TPR invocations share one row (TPR = 1: one invocation per row, no shared
// memory, the right shape for CPU drivers; TPR > 1: partial sums combined by
// a fixed-order tree in shared memory, for GPUs). The statistics are taken
// around the row's first value (shifted sums), which keeps the one-pass
// variance accurate. Every invocation writes only the elements it read, so
// out may alias x (with the same row stride).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TPR = 1;
layout(binding = 0) buffer O { float_t o[]; };
layout(binding = 1) readonly buffer X { float_t x[]; };
layout(binding = 2) readonly buffer G { float_t gamma[]; };
layout(binding = 3) readonly buffer B { float_t beta[]; };
layout(binding = 4) readonly buffer R { float_t res[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint rows; uint cols; uint ldx; uint ldo; float eps;
    uint has_gamma; uint has_beta; uint has_res;
} pc;

const uint RPW = gl_WorkGroupSize.x / TPR;
shared vec2 red[TPR > 1 ? gl_WorkGroupSize.x : 1];

float value(uint base, uint c)
{
    float v = LOAD(x[pc.off[1] + base + c]);
    if (pc.has_res != 0)
        v += LOAD(res[pc.off[4] + base + c]);
    return v;
}

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint lane = t % TPR;
    uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    uint row = group * RPW + t / TPR;
    bool live = row < pc.rows;
    uint base = row * pc.ldx;

    float shift = 0.0, s1 = 0.0, s2 = 0.0;
    if (live) {
        shift = value(base, 0);
        for (uint c = lane; c < pc.cols; c += TPR) {
            float d = value(base, c) - shift;
            s1 += d;
            s2 += d * d;
        }
    }
    if (TPR > 1) {
        red[t] = vec2(s1, s2);
        barrier();
        for (uint s = TPR / 2; s > 0; s >>= 1) {
            if (lane < s)
                red[t] += red[t + s];
            barrier();
        }
        vec2 tot = red[t - lane];
        s1 = tot.x;
        s2 = tot.y;
    }
    if (!live)
        return;

    float n = float(pc.cols);
    float mean_d = s1 / n;
    float var = max(s2 / n - mean_d * mean_d, 0.0);
    float mean = shift + mean_d;
    float inv = inversesqrt(var + pc.eps);
    uint obase = row * pc.ldo;
    for (uint c = lane; c < pc.cols; c += TPR) {
        float y = (value(base, c) - mean) * inv;
        if (pc.has_gamma != 0)
            y *= LOAD(gamma[pc.off[2] + c]);
        if (pc.has_beta != 0)
            y += LOAD(beta[pc.off[3] + c]);
        o[pc.off[0] + obase + c] = STORE(y);
    }
}
