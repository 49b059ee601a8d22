#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// DaViT channel attention, pass 1 of 3: partial Gram matrices.
// Workgroup (s, g): part[s][g][c][c'] = sum over the tokens of split s of
// q[n][g*cg + c] * k[n][g*cg + c']. Each invocation owns 4x4 tiles of
// (c, c'). Splitting the tokens keeps every sum short; pass 2 adds the
// splits in a fixed order.
layout(local_size_x = 64) in;
layout(constant_id = 0) const bool VEC4 = false;
layout(binding = 0) writeonly buffer S { float part[]; };
layout(binding = 1) readonly buffer X { float_t qkv[]; };
layout(binding = 1) readonly buffer X4 { vec4_t qkv4[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint tokens; uint channels; uint cg; uint splits;
} pc;

#define LOAD_CHUNK(e, i) (VEC4 ? vec4(qkv4[((e) >> 2) + (i)]) : vec4( \
    LOAD(qkv[(e) + 4 * (i)]), \
    4 * (i) + 1 < pc.cg ? LOAD(qkv[(e) + 4 * (i) + 1]) : 0.0, \
    4 * (i) + 2 < pc.cg ? LOAD(qkv[(e) + 4 * (i) + 2]) : 0.0, \
    4 * (i) + 3 < pc.cg ? LOAD(qkv[(e) + 4 * (i) + 3]) : 0.0))

void main()
{
    uint s = gl_WorkGroupID.x, g = gl_WorkGroupID.y;
    uint cg = pc.cg, c4 = (cg + 3) / 4;
    uint chunk = (pc.tokens + pc.splits - 1) / pc.splits;
    uint n0 = s * chunk, n1 = min(pc.tokens, n0 + chunk);
    uint ld = 3 * pc.channels;
    uint q_col = pc.off[1] + g * cg, k_col = q_col + pc.channels;

    for (uint tile = gl_LocalInvocationID.x; tile < c4 * c4; tile += 64) {
        uint ci = tile / c4, cj = tile % c4;
        vec4 acc[4] = vec4[4](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
        for (uint n = n0; n < n1; n++) {
            vec4 a = LOAD_CHUNK(q_col + n * ld, ci);
            vec4 b = LOAD_CHUNK(k_col + n * ld, cj);
            [[unroll]] for (uint r = 0; r < 4; r++)
                acc[r] += a[r] * b;
        }
        uint base = pc.off[0] + (s * gl_NumWorkGroups.y + g) * cg * cg;
        [[unroll]] for (uint r = 0; r < 4; r++) {
            uint c = 4 * ci + r;
            [[unroll]] for (uint x = 0; x < 4; x++)
                if (c < cg && 4 * cj + x < cg)
                    part[base + c * cg + 4 * cj + x] = acc[r][x];
        }
    }
}
