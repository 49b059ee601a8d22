#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Matmul for few rows on GPUs: the decoder step's rows, one per beam and
// frame (see matmul-common.glsl for the operands and the packed weights).
//
// A workgroup computes NC adjacent columns of TM rows. Its WG invocations
// split k: invocation i takes column i % NC and the vec4 groups
// s, s + S, s + 2S, ... of slice s = i / NC (S = WG / NC slices), so that
// the NC columns of a slice are one contiguous read and many reads are in
// flight at once; the slices' partial sums meet in shared memory. Narrow
// workgroups give many of them (a 768-column output fills a large GPU),
// and each invocation makes few dependent loads (k / 4S), where a kernel
// that walks all of k in one invocation pays the memory latency k / 4
// times in a row.
//
// A row's result depends neither on TM nor on how many rows there are
// (precise: no contraction or reordering), so a frame's rows give the same
// bits in a batch as alone.
#include "matmul-common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TM = 1;
layout(constant_id = 2) const uint NC = 8;
const uint MAX_TM = 8u;
const uint MAX_WG = 256u;

shared float partial[MAX_TM * MAX_WG];

void main()
{
    const uint WG = gl_WorkGroupSize.x;
    const uint S = WG / NC;
    uint lid = gl_LocalInvocationID.x;
    uint col0 = gl_WorkGroupID.x * NC;
    uint row0 = gl_WorkGroupID.y * TM;
    // columns past the end read the last one (always in the binding)
    uint wbase = w_column_base(min(col0 + lid % NC, pc.n - 1u));
    precise float acc[TM];

    [[unroll]] for (uint r = 0u; r < TM; r++)
        acc[r] = 0.0;
    for (uint kk = lid / NC; kk < pc.k4; kk += S) {
        vec4 wv = load_w(wbase, kk);
        [[unroll]] for (uint r = 0u; r < TM; r++) {
            vec4 av = load_a(min(row0 + r, pc.m - 1u), kk);
            precise float d = ((av.x * wv.x + av.y * wv.y) + av.z * wv.z) + av.w * wv.w;
            acc[r] = acc[r] + d;
        }
    }
    [[unroll]] for (uint r = 0u; r < TM; r++)
        partial[r * MAX_WG + lid] = acc[r];
    barrier();

    // one invocation per output: the slices' sums in slice order
    if (lid < TM * NC) {
        uint r = lid / NC, j = lid % NC;
        precise float sum = 0.0;
        for (uint s = 0u; s < S; s++)
            sum = sum + partial[r * MAX_WG + s * NC + j];
        if (row0 + r < pc.m && col0 + j < pc.n)
            store_out(row0 + r, col0 + j, sum);
    }
}
