#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// DaViT channel attention, pass 3 of 3: out[n][g*cg + c] =
// sum over c' of A[g][c][c'] v[n][g*cg + c']. Each invocation computes 4
// tokens x 4 channels; workgroup row y = (g, channel quad), so all its
// invocations read the same A values.
layout(local_size_x = 64) in;
layout(constant_id = 0) const bool VEC4 = false;
layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 1) readonly buffer X { float_t qkv[]; };
layout(binding = 1) readonly buffer X4 { vec4_t qkv4[]; };
layout(binding = 2) readonly buffer A { float att[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint tokens; uint channels; uint cg;
} pc;

#define LOAD_CHUNK(e, i) (VEC4 ? vec4(qkv4[((e) >> 2) + (i)]) : vec4( \
    LOAD(qkv[(e) + 4 * (i)]), \
    4 * (i) + 1 < pc.cg ? LOAD(qkv[(e) + 4 * (i) + 1]) : 0.0, \
    4 * (i) + 2 < pc.cg ? LOAD(qkv[(e) + 4 * (i) + 2]) : 0.0, \
    4 * (i) + 3 < pc.cg ? LOAD(qkv[(e) + 4 * (i) + 3]) : 0.0))

void main()
{
    uint cg = pc.cg, c4 = (cg + 3) / 4;
    uint g = gl_WorkGroupID.y / c4, ci = gl_WorkGroupID.y % c4;
    uint n0 = gl_GlobalInvocationID.x * 4;
    if (n0 >= pc.tokens)
        return;
    uint ld = 3 * pc.channels;
    uint v_col = pc.off[1] + 2 * pc.channels + g * cg;
    uint a_base = pc.off[2] + g * cg * cg;
    // rows past the tokens re-read the last token (kept in range, not stored)
    uint rows[4];
    [[unroll]] for (uint r = 0; r < 4; r++)
        rows[r] = min(n0 + r, pc.tokens - 1);

    vec4 acc[4] = vec4[4](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
    for (uint cj = 0; cj < c4; cj++) {
        // A[c][4cj..4cj+3] for the four output channels c
        mat4 a;
        [[unroll]] for (uint x = 0; x < 4; x++) {
            uint c = min(4 * ci + x, cg - 1);
            [[unroll]] for (uint y = 0; y < 4; y++)
                a[x][y] = 4 * cj + y < cg ? att[a_base + c * cg + 4 * cj + y] : 0.0;
        }
        [[unroll]] for (uint r = 0; r < 4; r++) {
            vec4 vv = LOAD_CHUNK(v_col + rows[r] * ld, cj);
            // acc[r][x] += dot(A[c_x][chunk], v chunk)
            acc[r] += vv * a;
        }
    }
    [[unroll]] for (uint r = 0; r < 4; r++) {
        if (n0 + r >= pc.tokens)
            break;
        uint e = pc.off[0] + (n0 + r) * pc.channels + g * cg + 4 * ci;
        [[unroll]] for (uint x = 0; x < 4; x++)
            if (4 * ci + x < cg)
                o[e + x] = STORE(acc[r][x]);
    }
}
