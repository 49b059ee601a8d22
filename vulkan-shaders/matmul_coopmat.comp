#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common.glsl"
// Matmul on cooperative matrices (tensor cores): fp16 operands, fp32
// accumulators, the epilogue of matmul-common.glsl.
//
// A workgroup of four subgroups computes a 64 x 64 output tile; subgroup s
// takes the 32 x 32 block (s / 2, s % 2) as FM x FN fragments of the
// device's CM x CN x CK shape (specialization constants, from
// vkGetPhysicalDeviceCooperativeMatrixPropertiesNV). Per step the workgroup
// stages 32 k of the A rows (row-major) and of the weight columns (one
// packed block: column-major B) in shared memory as half, zero past m, n
// and k, where the fragment loads find them. The accumulators go through
// shared memory once at the end, so that each output element gets the
// epilogue with its row and column known.
//
// The recorder runs it only where the device's subgroup size is fixed or
// required, so that the workgroup holds exactly four subgroups.
#include "matmul-common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CM = 16;
layout(constant_id = 2) const uint CN = 16;
layout(constant_id = 3) const uint CK = 16;

const uint NT = gl_WorkGroupSize.x;
const uint BM = 64, BN = 64, BK = 32;   // workgroup tile, k per step
const uint BK4 = BK / 4;
const uint SM = 32, SN = 32;            // one subgroup's block
const uint FM = SM / CM, FN = SN / CN;
// row strides in shared memory: padded against bank conflicts, multiples
// of 16 bytes as fragment loads and stores want
const uint LDS = BK + 8;
const uint LDC = BN + 4;

shared float16_t tile_a[BM * LDS];      // (row, k) at row * LDS + k
shared float16_t tile_w[BN * LDS];      // (k, column) at column * LDS + k
shared float tile_c[BM * LDC];


void stage(uint row0, uint col0, uint kk0)
{
    uint t = gl_LocalInvocationIndex;
    // consecutive invocations: consecutive k groups of a row of A
    for (uint i = t; i < BM * BK4; i += NT) {
        uint r = i / BK4, g = i % BK4, kk = kk0 + g;
        vec4 v = kk < pc.k4 ? load_a(min(row0 + r, pc.m - 1u), kk) : vec4(0.0);
        uint e = r * LDS + g * 4u;
        tile_a[e] = float16_t(v.x);
        tile_a[e + 1u] = float16_t(v.y);
        tile_a[e + 2u] = float16_t(v.z);
        tile_a[e + 3u] = float16_t(v.w);
    }
    // consecutive invocations: consecutive columns of the packed block (its
    // padding holds zeros past n, and BN is one whole block)
    for (uint i = t; i < BN * BK4; i += NT) {
        uint c = i % BN, g = i / BN, kk = kk0 + g;
        vec4 v = kk < pc.k4 ? load_w(w_column_base(col0 + c), kk) : vec4(0.0);
        uint e = c * LDS + g * 4u;
        tile_w[e] = float16_t(v.x);
        tile_w[e + 1u] = float16_t(v.y);
        tile_w[e + 2u] = float16_t(v.z);
        tile_w[e + 3u] = float16_t(v.w);
    }
}

void main()
{
    uint row0 = gl_WorkGroupID.y * BM;
    uint col0 = gl_WorkGroupID.x * BN;
    uint sm0 = (gl_SubgroupID / 2u) * SM, sn0 = (gl_SubgroupID % 2u) * SN;
    fcoopmatNV<32, gl_ScopeSubgroup, CM, CN> acc[FM * FN];

    [[unroll]] for (uint f = 0u; f < FM * FN; f++)
        acc[f] = fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>(0.0);

    for (uint kk0 = 0u; kk0 < pc.k4; kk0 += BK4) {
        stage(row0, col0, kk0);
        barrier();
        [[unroll]] for (uint kc = 0u; kc < BK; kc += CK) {
            fcoopmatNV<16, gl_ScopeSubgroup, CM, CK> fa[FM];
            [[unroll]] for (uint i = 0u; i < FM; i++)
                coopMatLoadNV(fa[i], tile_a, (sm0 + i * CM) * LDS + kc, LDS, false);
            [[unroll]] for (uint j = 0u; j < FN; j++) {
                fcoopmatNV<16, gl_ScopeSubgroup, CK, CN> fw;
                coopMatLoadNV(fw, tile_w, (sn0 + j * CN) * LDS + kc, LDS, true);
                [[unroll]] for (uint i = 0u; i < FM; i++)
                    acc[i * FN + j] = coopMatMulAddNV(fa[i], fw, acc[i * FN + j]);
            }
        }
        barrier();
    }

    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++)
            coopMatStoreNV(acc[i * FN + j], tile_c, (sm0 + i * CM) * LDC + sn0 + j * CN, LDC, false);
    barrier();
    for (uint x = gl_LocalInvocationIndex; x < BM * BN; x += NT) {
        uint r = x / BN, c = x % BN;
        uint m = row0 + r, col = col0 + c;
        if (m < pc.m && col < pc.n)
            store_out(m, col, tile_c[r * LDC + c]);
    }
}
