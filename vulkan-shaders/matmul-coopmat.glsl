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
//
// With F2_COOPMAT_EMULATED (matmul_coopmat_emu.comp) the fragment
// operations are plain code over the same shared tiles: a fragment is its
// offset there, and the accumulators live in tile_c from the start. That
// runs the tiling, staging and epilogue on any device (F2_VULKAN_COOPMAT=
// emulate), for the kernel tests on lavapipe.
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

#ifdef F2_COOPMAT_EMULATED
#define acc_t uint
#define frag_a_t uint
#define frag_w_t uint
#define ACC_ZERO(acc, at) acc = at; zero_block(at)
#define LOAD_A(f, at) f = (at)
#define LOAD_W(f, at) f = (at)
#define MMA(acc, fa, fw) multiply_add(acc, fa, fw)
#define STORE_ACC(acc, at)

// this subgroup's lanes each own the same elements of a CM x CN block
void zero_block(uint at)
{
    for (uint e = gl_SubgroupInvocationID; e < CM * CN; e += gl_SubgroupSize)
        tile_c[at + (e / CN) * LDC + e % CN] = 0.0;
}

void multiply_add(uint acc, uint fa, uint fw)
{
    for (uint e = gl_SubgroupInvocationID; e < CM * CN; e += gl_SubgroupSize) {
        uint r = e / CN, c = e % CN;
        float sum = 0.0;
        for (uint k = 0u; k < CK; k++)
            sum += float(tile_a[fa + r * LDS + k]) * float(tile_w[fw + c * LDS + k]);
        tile_c[acc + r * LDC + c] += sum;
    }
}
#else
#define acc_t fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>
#define frag_a_t fcoopmatNV<16, gl_ScopeSubgroup, CM, CK>
#define frag_w_t fcoopmatNV<16, gl_ScopeSubgroup, CK, CN>
#define ACC_ZERO(acc, at) acc = acc_t(0.0)
#define LOAD_A(f, at) coopMatLoadNV(f, tile_a, at, LDS, false)
#define LOAD_W(f, at) coopMatLoadNV(f, tile_w, at, LDS, true)
#define MMA(acc, fa, fw) acc = coopMatMulAddNV(fa, fw, acc)
#define STORE_ACC(acc, at) coopMatStoreNV(acc, tile_c, at, LDC, false)
#endif

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
    acc_t acc[FM * FN];

    // accumulator (i, j) ends at this offset of tile_c
#define ACC_AT(i, j) ((sm0 + (i) * CM) * LDC + sn0 + (j) * CN)
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) {
            ACC_ZERO(acc[i * FN + j], ACC_AT(i, j));
        }

    for (uint kk0 = 0u; kk0 < pc.k4; kk0 += BK4) {
        stage(row0, col0, kk0);
        barrier();
        [[unroll]] for (uint kc = 0u; kc < BK; kc += CK) {
            frag_a_t fa[FM];
            [[unroll]] for (uint i = 0u; i < FM; i++) {
                LOAD_A(fa[i], (sm0 + i * CM) * LDS + kc);
            }
            [[unroll]] for (uint j = 0u; j < FN; j++) {
                frag_w_t fw;
                LOAD_W(fw, (sn0 + j * CN) * LDS + kc);
                [[unroll]] for (uint i = 0u; i < FM; i++) {
                    MMA(acc[i * FN + j], fa[i], fw);
                }
            }
        }
        barrier();
    }

    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) {
            STORE_ACC(acc[i * FN + j], ACC_AT(i, j));
        }
    barrier();
    for (uint x = gl_LocalInvocationIndex; x < BM * BN; x += NT) {
        uint r = x / BN, c = x % BN;
        uint m = row0 + r, col = col0 + c;
        if (m < pc.m && col < pc.n)
            store_out(m, col, tile_c[r * LDC + c]);
    }
}
