#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
// Fused multi-head attention, softmax(scale * q.k) v, with an online
// softmax: the scores never leave registers.
//
// Workgroup (x, y, z) = (block of queries, head, batch item or window).
// KS invocations share one query and split its keys (j = split, split + KS,
// ...); their partial (max, sum, acc) are merged in shared memory at the
// end. KS = 1 for long query blocks, KS > 1 for decoding (one query, many
// keys). With BK > 1 the workgroup stages blocks of BK keys and values in
// shared memory first (GPUs: every key is loaded once per workgroup instead
// of once per query); BK = 1 reads them straight from the buffers (CPU
// drivers, where shared memory is no faster).
// VEC4: every row start and head offset is a multiple of 4 elements, so the
// head's values load as vec4s; otherwise element by element.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HD = 64;
layout(constant_id = 2) const uint KS = 1;
layout(constant_id = 3) const bool VEC4 = false;
layout(constant_id = 4) const uint BK = 1;

const uint WG = gl_WorkGroupSize.x;
const uint HD4 = (HD + 3) / 4;
const uint QT = WG / KS;

layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 0) writeonly buffer O4 { vec4_t o4[]; };
layout(binding = 1) readonly buffer Q { float_t q[]; };
layout(binding = 1) readonly buffer Q4 { vec4_t q4[]; };
layout(binding = 2) readonly buffer K { float_t k[]; };
layout(binding = 2) readonly buffer K4 { vec4_t k4[]; };
layout(binding = 3) readonly buffer V { float_t v[]; };
layout(binding = 3) readonly buffer V4 { vec4_t v4[]; };
layout(binding = 4) readonly buffer M { int mask[]; };
layout(binding = 5) readonly buffer L { int kv_ref[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint q_stride; uint k_stride; uint v_stride; uint o_stride;
    uint q_len; uint kv_len;
    uint q_batch; uint k_batch; uint v_batch; uint o_batch; uint mask_batch;
    uint grid_w; uint window; int causal_offset; float scale; uint flags;
} pc;

const uint CAUSAL = 1, KEY_MASK = 2, DYNAMIC_KV = 4, WINDOW = 8;

shared vec4 k_tile[BK > 1 ? BK * HD4 : 1];
shared vec4 v_tile[BK > 1 ? BK * HD4 : 1];
shared vec4 merge_acc[KS > 1 ? WG * HD4 : 1];
shared vec2 merge_ml[KS > 1 ? WG : 1];

// element chunk i (4 values) of the head starting at element e
#define LOAD_CHUNK(a, a4, e, i) (VEC4 ? vec4(a4[((e) >> 2) + (i)]) : vec4( \
    LOAD(a[(e) + 4 * (i)]), \
    4 * (i) + 1 < HD ? LOAD(a[(e) + 4 * (i) + 1]) : 0.0, \
    4 * (i) + 2 < HD ? LOAD(a[(e) + 4 * (i) + 2]) : 0.0, \
    4 * (i) + 3 < HD ? LOAD(a[(e) + 4 * (i) + 3]) : 0.0))

// Row of token t of batch item b in its tensor: in window mode the token's
// row in the whole grid, else t (the batch offset is added by the caller).
uint token_row(uint b, uint t)
{
    if ((pc.flags & WINDOW) == 0)
        return t;
    uint wins = pc.grid_w / pc.window;
    uint wy = b / wins, wx = b % wins;
    return (wy * pc.window + t / pc.window) * pc.grid_w + wx * pc.window + t % pc.window;
}

void main()
{
    uint t = gl_LocalInvocationID.x;
    uint split = t % KS;
    uint qi = gl_WorkGroupID.x * QT + t / KS;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    bool window = (pc.flags & WINDOW) != 0;
    bool live = qi < pc.q_len;

    uint kv = pc.kv_len;
    if ((pc.flags & DYNAMIC_KV) != 0)
        kv = uint(clamp(kv_ref[pc.off[5]], 0, int(kv)));
    // keys this query sees, and keys any query of the workgroup sees
    uint lim = kv, wg_lim = kv;
    if ((pc.flags & CAUSAL) != 0) {
        uint q_last = min(pc.q_len, (gl_WorkGroupID.x + 1) * QT) - 1;
        lim = uint(clamp(int(qi) + pc.causal_offset + 1, 0, int(kv)));
        wg_lim = uint(clamp(int(q_last) + pc.causal_offset + 1, 0, int(kv)));
    }
    if (!live)
        lim = 0;

    uint col = h * HD;
    uint q_base = pc.off[1] + (window ? 0 : b * pc.q_batch) + col;
    uint k_base = pc.off[2] + (window ? 0 : b * pc.k_batch) + col;
    uint v_base = pc.off[3] + (window ? 0 : b * pc.v_batch) + col;
    uint m_base = pc.off[4] + b * pc.mask_batch;
    bool masked = (pc.flags & KEY_MASK) != 0;

    vec4 qv[HD4], acc[HD4];
    if (live) {
        uint e = q_base + token_row(b, qi) * pc.q_stride;
        [[unroll]] for (uint i = 0; i < HD4; i++)
            qv[i] = LOAD_CHUNK(q, q4, e, i) * pc.scale;
    }
    [[unroll]] for (uint i = 0; i < HD4; i++)
        acc[i] = vec4(0.0);
    // a finite start: exp(start - s) is 0 and never NaN
    float m = -3.0e38, l = 0.0;

    if (BK == 1) {
        for (uint j = split; j < lim; j += KS) {
            if (masked && mask[m_base + j] == 0)
                continue;
            uint ke = k_base + token_row(b, j) * pc.k_stride;
            float s = 0.0;
            [[unroll]] for (uint i = 0; i < HD4; i++)
                s += dot(qv[i], LOAD_CHUNK(k, k4, ke, i));
            if (s > m) {
                float c = exp(m - s);
                l *= c;
                [[unroll]] for (uint i = 0; i < HD4; i++)
                    acc[i] *= c;
                m = s;
            }
            float p = exp(s - m);
            l += p;
            uint ve = v_base + token_row(b, j) * pc.v_stride;
            [[unroll]] for (uint i = 0; i < HD4; i++)
                acc[i] += p * LOAD_CHUNK(v, v4, ve, i);
        }
    } else {
        for (uint j0 = 0; j0 < wg_lim; j0 += BK) {
            uint nk = min(BK, wg_lim - j0);
            barrier();
            for (uint x = t; x < nk * HD4; x += WG) {
                uint jj = x / HD4, i = x % HD4;
                uint row = token_row(b, j0 + jj);
                k_tile[x] = LOAD_CHUNK(k, k4, k_base + row * pc.k_stride, i);
                v_tile[x] = LOAD_CHUNK(v, v4, v_base + row * pc.v_stride, i);
            }
            barrier();
            uint n_mine = lim > j0 ? min(nk, lim - j0) : 0;
            for (uint jj = split; jj < n_mine; jj += KS) {
                if (masked && mask[m_base + j0 + jj] == 0)
                    continue;
                float s = 0.0;
                [[unroll]] for (uint i = 0; i < HD4; i++)
                    s += dot(qv[i], k_tile[jj * HD4 + i]);
                if (s > m) {
                    float c = exp(m - s);
                    l *= c;
                    [[unroll]] for (uint i = 0; i < HD4; i++)
                        acc[i] *= c;
                    m = s;
                }
                float p = exp(s - m);
                l += p;
                [[unroll]] for (uint i = 0; i < HD4; i++)
                    acc[i] += p * v_tile[jj * HD4 + i];
            }
        }
    }

    uint first = 0, step = 1;
    if (KS > 1) {
        // merge the KS partial results of this query (fixed order)
        uint q0 = t - split;
        merge_ml[t] = vec2(m, l);
        barrier();
        float mg = -3.0e38;
        for (uint s = 0; s < KS; s++)
            mg = max(mg, merge_ml[q0 + s].x);
        l = 0.0;
        for (uint s = 0; s < KS; s++)
            l += merge_ml[q0 + s].y * exp(merge_ml[q0 + s].x - mg);
        float c = exp(m - mg);
        [[unroll]] for (uint i = 0; i < HD4; i++)
            merge_acc[t * HD4 + i] = acc[i] * c;
        barrier();
        for (uint i = split; i < HD4; i += KS) {
            vec4 sum = vec4(0.0);
            for (uint s = 0; s < KS; s++)
                sum += merge_acc[(q0 + s) * HD4 + i];
            acc[i] = sum;
        }
        // each of the KS invocations stores the chunks it summed
        first = split;
        step = KS;
    }
    if (!live)
        return;

    // a query that sees no key gets zeros, as the reference
    float inv = l > 0.0 ? 1.0 / l : 0.0;
    uint e = pc.off[0] + (window ? 0 : b * pc.o_batch) + token_row(b, qi) * pc.o_stride + col;
    for (uint i = first; i < HD4; i += step) {
        vec4 r = acc[i] * inv;
        if (VEC4) {
            o4[(e >> 2) + i] = STORE4(r);
        } else {
            o[e + 4 * i] = STORE(r.x);
            if (4 * i + 1 < HD)
                o[e + 4 * i + 1] = STORE(r.y);
            if (4 * i + 2 < HD)
                o[e + 4 * i + 2] = STORE(r.z);
            if (4 * i + 3 < HD)
                o[e + 4 * i + 3] = STORE(r.w);
        }
    }
}
