// Shared-memory tiled matmul, the kernel for GPUs.
//
// A TX x TY workgroup computes a (TY*RM) x (TX*RN) output tile; each
// invocation holds RM x RN accumulators (rows ty + r*TY, columns
// tx + j*TX). Per step the workgroup stages BKV vec4 groups of k of the A
// rows and of the weight columns in shared memory, then every invocation
// does 4*RM*RN multiply-adds per group from there.
layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 2) const uint RM = 4;
layout(constant_id = 3) const uint RN = 4;
layout(constant_id = 4) const uint BKV = 4;

const uint TX = gl_WorkGroupSize.x;
const uint TY = gl_WorkGroupSize.y;
const uint BM = TY * RM;
const uint BN = TX * RN;
const uint NT = TX * TY;

shared vec4 tile_a[BKV * BM];
shared vec4 tile_w[BKV * BN];

void main()
{
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint t = ty * TX + tx;
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    float acc[RM][RN];

    [[unroll]] for (uint r = 0u; r < RM; r++)
        [[unroll]] for (uint j = 0u; j < RN; j++)
            acc[r][j] = 0.0;

    for (uint kk0 = 0u; kk0 < pc.k4; kk0 += BKV) {
        // stage: consecutive invocations take consecutive rows / columns
        for (uint i = t; i < BKV * BM; i += NT) {
            uint g = i / BM, r = i % BM;
            uint kk = kk0 + g;
            tile_a[i] = kk < pc.k4 ? load_a(min(row0 + r, pc.m - 1u), kk) : vec4(0.0);
        }
        for (uint i = t; i < BKV * BN; i += NT) {
            uint g = i / BN, c = i % BN;
            uint kk = min(kk0 + g, pc.k4 - 1u);     // past k: a is zero there
            tile_w[i] = load_w(w_column_base(min(col0 + c, pc.n - 1u)), kk);
        }
        barrier();
        [[unroll]] for (uint g = 0u; g < BKV; g++) {
            vec4 wv[RN];
            [[unroll]] for (uint j = 0u; j < RN; j++)
                wv[j] = tile_w[g * BN + tx + j * TX];
            [[unroll]] for (uint r = 0u; r < RM; r++) {
                vec4 av = tile_a[g * BM + ty + r * TY];
                [[unroll]] for (uint j = 0u; j < RN; j++)
                    acc[r][j] += dot(av, wv[j]);
            }
        }
        barrier();
    }

    [[unroll]] for (uint r = 0u; r < RM; r++) {
        uint m = row0 + ty + r * TY;
        if (m >= pc.m)
            break;
        [[unroll]] for (uint j = 0u; j < RN; j++) {
            uint c = col0 + tx + j * TX;
            if (c < pc.n)
                store_out(m, c, acc[r][j]);
        }
    }
}
