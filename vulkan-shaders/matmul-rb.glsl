// Register-blocked matmul, the kernel for CPU drivers (and the small-M
// matrix-vector path everywhere).
//
// Each invocation keeps a TM x TN block of accumulators: TM rows shared by
// its whole subgroup, TN columns of its own (strided by the workgroup size,
// so neighbouring invocations read neighbouring weights). Per vec4 group of
// k it loads TN weight vec4s and does 4*TM*TN multiply-adds. The A operands
// of the TM rows are loaded once per subgroup: a chunk of TM rows x KCH
// consecutive k groups (TM*KCH a multiple of LOADERS) is loaded by the
// first LOADERS invocations, TM*KCH/LOADERS vec4s each, and
// subgroupBroadcast hands them to the others. When the subgroup is narrower
// than LOADERS (or the workgroup is not a whole number of subgroups), every
// invocation loads the A operands itself: the result is the same for any
// subgroup size.
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_ballot : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TM = 4;
layout(constant_id = 2) const uint TN = 4;
layout(constant_id = 3) const uint KCH = 2;
const uint LOADERS = 8u;
const uint NL = (TM * KCH + LOADERS - 1u) / LOADERS;   // vec4s per loader
void main()
{
    const uint WG = gl_WorkGroupSize.x;
    uint row0 = gl_WorkGroupID.y * TM;
    uint col0 = gl_WorkGroupID.x * WG * TN + gl_LocalInvocationID.x;
    uint wbase[TN];
    float acc[TM][TN];

    [[unroll]] for (uint j = 0u; j < TN; j++) {
        // columns past the end read the last one (always in the binding)
        wbase[j] = w_column_base(min(col0 + j * WG, pc.n - 1u));
        [[unroll]] for (uint r = 0u; r < TM; r++)
            acc[r][j] = 0.0;
    }

    uint kfull = pc.k / 4u;             // groups with four valid k
    uint kk = 0u;
    bool shared_a = gl_SubgroupSize >= LOADERS && WG % gl_SubgroupSize == 0u;
    if (shared_a) {
        uint lane = gl_SubgroupInvocationID;
        for (; kk + KCH <= kfull; kk += KCH) {
            // slot s = i*LOADERS + lane holds row s % TM, group kk + s / TM
            vec4 mine[NL];
            [[unroll]] for (uint i = 0u; i < NL; i++) {
                uint s = i * LOADERS + lane;
                mine[i] = vec4(0.0);
                if (lane < LOADERS && s < TM * KCH)
                    mine[i] = load_a_full(min(row0 + s % TM, pc.m - 1u), kk + s / TM);
            }
            [[unroll]] for (uint c = 0u; c < KCH; c++) {
                vec4 wv[TN];
                [[unroll]] for (uint j = 0u; j < TN; j++)
                    wv[j] = load_w(wbase[j], kk + c);
                [[unroll]] for (uint r = 0u; r < TM; r++) {
                    uint s = c * TM + r;
                    vec4 av = subgroupBroadcast(mine[s / LOADERS], s % LOADERS);
                    [[unroll]] for (uint j = 0u; j < TN; j++)
                        acc[r][j] += dot(av, wv[j]);
                }
            }
        }
    }
    // the rest (or everything without sharing): each invocation loads A
    for (; kk < pc.k4; kk++) {
        vec4 wv[TN];
        [[unroll]] for (uint j = 0u; j < TN; j++)
            wv[j] = load_w(wbase[j], kk);
        [[unroll]] for (uint r = 0u; r < TM; r++) {
            vec4 av = load_a(min(row0 + r, pc.m - 1u), kk);
            [[unroll]] for (uint j = 0u; j < TN; j++)
                acc[r][j] += dot(av, wv[j]);
        }
    }

    [[unroll]] for (uint r = 0u; r < TM; r++) {
        if (row0 + r >= pc.m)
            break;
        [[unroll]] for (uint j = 0u; j < TN; j++) {
            uint c = col0 + j * WG;
            if (c < pc.n)
                store_out(row0 + r, c, acc[r][j]);
        }
    }
}
