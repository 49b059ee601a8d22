#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Argmax and top-k over long rows (the vocabulary), skipping banned ids.
//
// One workgroup per row. Each invocation scans the columns t, t + WG, ...
// in increasing order and keeps its own sorted list of the k best (value,
// id); a strictly-greater test keeps the lower id first among equal values.
// With WANT_LSE the same scan keeps a running (max, sum of exp(x - max)) for
// the log-softmax. The lists are then merged in k rounds: each round takes
// the best head over the workgroup (larger value, then lower id) by a
// fixed-order tree in shared memory, so results never depend on the
// subgroup size. Banned ids go into a bitmask in shared memory first (ids
// past the mask are looked up in the list).
layout(local_size_x = 256) in;
layout(binding = 0) writeonly buffer OI { int out_ids[]; };
layout(binding = 1) writeonly buffer OV { float_t out_values[]; };
layout(binding = 2) readonly buffer X { float_t x[]; };
layout(binding = 3) readonly buffer Banned { int banned[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint cols; uint ldx; uint k; uint max_banned; uint has_banned; uint want_values;
} pc;

const uint WG = gl_WorkGroupSize.x;
const uint MAX_K = 32;                  // 2 candidates per beam for 16 beams
const uint MASK_WORDS = 2048;            // ids below 65536
#define NEG_INF uintBitsToFloat(0xff800000u)

shared uint mask[MASK_WORDS];
shared float red_v[WG];
shared int red_i[WG];

// a beats b: a exists and (b does not, or larger value, or same value and lower id)
bool beats(float av, int ai, float bv, int bi)
{
    return ai >= 0 && (bi < 0 || av > bv || (av == bv && ai < bi));
}

bool is_banned(uint row, uint c)
{
    if (pc.has_banned == 0)
        return false;
    if (c < MASK_WORDS * 32)
        return (mask[c >> 5] & (1u << (c & 31))) != 0;
    uint base = pc.off[3] + row * pc.max_banned;
    for (uint j = 0; j < pc.max_banned; j++)
        if (banned[base + j] == int(c))
            return true;
    return false;
}

void main()
{
    uint row = gl_WorkGroupID.x;
    uint t = gl_LocalInvocationID.x;

    if (pc.has_banned != 0) {
        for (uint j = t; j < MASK_WORDS; j += WG)
            mask[j] = 0;
        barrier();
        uint base = pc.off[3] + row * pc.max_banned;
        for (uint j = t; j < pc.max_banned; j += WG) {
            int id = banned[base + j];
            if (id >= 0 && uint(id) < MASK_WORDS * 32)
                atomicOr(mask[uint(id) >> 5], 1u << (uint(id) & 31));
        }
        barrier();
    }

    float vals[MAX_K];
    int ids[MAX_K];
    uint n = 0;
    float m = NEG_INF, s = 0.0;
    uint xbase = pc.off[2] + row * pc.ldx;

    for (uint c = t; c < pc.cols; c += WG) {
        float v = LOAD(x[xbase + c]);
        if (pc.want_values != 0 && v > NEG_INF) {
            if (v > m) {
                s = s * exp(m - v) + 1.0;
                m = v;
            } else {
                s += exp(v - m);
            }
        }
        if (n == pc.k && !(v > vals[pc.k - 1]))
            continue;
        if (isnan(v) || is_banned(row, c))
            continue;
        // insert after every entry >= v
        uint pos = n < pc.k ? n : pc.k - 1;
        while (pos > 0 && v > vals[pos - 1]) {
            vals[pos] = vals[pos - 1];
            ids[pos] = ids[pos - 1];
            pos--;
        }
        vals[pos] = v;
        ids[pos] = int(c);
        if (n < pc.k)
            n++;
    }

    float lse = 0.0;
    if (pc.want_values != 0) {
        red_v[t] = m;
        red_i[t] = floatBitsToInt(s);
        barrier();
        for (uint half_n = WG / 2; half_n > 0; half_n >>= 1) {
            if (t < half_n) {
                float m1 = red_v[t], m2 = red_v[t + half_n];
                float s1 = intBitsToFloat(red_i[t]), s2 = intBitsToFloat(red_i[t + half_n]);
                float mm = max(m1, m2);
                float ss = mm == NEG_INF ? 0.0 :
                    s1 * exp(m1 - mm) + s2 * exp(m2 - mm);
                red_v[t] = mm;
                red_i[t] = floatBitsToInt(ss);
            }
            barrier();
        }
        lse = red_v[0] + log(intBitsToFloat(red_i[0]));
        barrier();
    }

    uint head = 0;
    uint obase = row * pc.k;
    for (uint r = 0; r < pc.k; r++) {
        red_v[t] = head < n ? vals[head] : NEG_INF;
        red_i[t] = head < n ? ids[head] : -1;
        barrier();
        for (uint half_n = WG / 2; half_n > 0; half_n >>= 1) {
            if (t < half_n && beats(red_v[t + half_n], red_i[t + half_n], red_v[t], red_i[t])) {
                red_v[t] = red_v[t + half_n];
                red_i[t] = red_i[t + half_n];
            }
            barrier();
        }
        float best_v = red_v[0];
        int best_i = red_i[0];
        if (head < n && ids[head] == best_i)
            head++;
        if (t == 0) {
            out_ids[pc.off[0] + obase + r] = best_i;
            if (pc.want_values != 0)
                out_values[pc.off[1] + obase + r] =
                    STORE(best_i >= 0 ? best_v - lse : NEG_INF);
        }
        barrier();
    }
}
