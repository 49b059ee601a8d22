// Shared parts of the matmul and implicit-GEMM conv2d kernels:
//   out[m][n] = res[m][n] + act(sum_k a[m][k] * w[n][k] + bias[n])
//
// Weights come packed by the host (vk_upload_linear) in column blocks of
// F2_LINEAR_BLOCK: block b holds columns b*BLOCK.. as [ceil(K/4)][BLOCK]
// vec4 groups of four consecutive k (zero padded in k and in n), so that a
// range of whole blocks is contiguous (large weights are split by columns
// over several dispatches) and the columns of a block are adjacent in memory.
// A dispatch sees the columns [0, pc.n) of its chunk: bindings 0 (out),
// 2 (w), 3 (bias) and 4 (residual) start at the chunk's first column.
//
// Define F2_CONV before including to read operand a as the im2col matrix of
// a convolution input (rows: output pixels, k: (cin, ky, kx) as PyTorch
// orders its weights).
#extension GL_EXT_control_flow_attributes : require

#define F2_LINEAR_BLOCK 64u

#define EPI_BIAS 1u
#define EPI_GELU 2u
#define EPI_RESIDUAL 4u

layout(binding = 0) buffer O { float_t o[]; };
layout(binding = 1) readonly buffer A { float_t a[]; };
layout(binding = 1) readonly buffer A4 { vec4_t a4[]; };
layout(binding = 2) readonly buffer W { vec4_t w[]; };
layout(binding = 3) readonly buffer Bias { float_t bias[]; };
layout(binding = 4) readonly buffer Res { float_t res[]; };

layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint m; uint n; uint k;
    uint lda; uint ldo; uint ldr;
    uint flags;
    uint a_vec4;                // a rows start on vec4 boundaries: vec4 loads
    uint k4;                    // ceil(k / 4): vec4 groups per weight column
    // convolution only
    uint cin; uint h; uint w; uint kernel; uint stride; uint pad; uint wo;
    uint hwc;                   // input layout: 1 tokens [h*w][cin], 0 planes [cin][h][w]
} pc;

// First vec4 of column c (relative to the chunk) in the packed weight.
uint w_column_base(uint c)
{
    return pc.off[2] / 4u + (c / F2_LINEAR_BLOCK) * (pc.k4 * F2_LINEAR_BLOCK) +
        c % F2_LINEAR_BLOCK;
}

vec4 load_w(uint base, uint kk)
{
    return LOAD4(w[base + kk * F2_LINEAR_BLOCK]);
}

#ifdef F2_CONV
float conv_value(int iy0, int ix0, uint kidx)
{
    uint kk2 = pc.kernel * pc.kernel;
    uint ci = kidx / kk2, r = kidx - ci * kk2;
    uint ky = r / pc.kernel, kx = r - ky * pc.kernel;
    int iy = iy0 + int(ky), ix = ix0 + int(kx);
    if (kidx >= pc.k || iy < 0 || ix < 0 || iy >= int(pc.h) || ix >= int(pc.w))
        return 0.0;
    uint at = pc.hwc != 0u ? (uint(iy) * pc.w + uint(ix)) * pc.cin + ci
                           : (ci * pc.h + uint(iy)) * pc.w + uint(ix);
    return LOAD(a[pc.off[1] + at]);
}

// k values 4*kk .. 4*kk+3 of output pixel m (zero outside the image and
// past k)
vec4 load_a(uint m, uint kk)
{
    uint oy = m / pc.wo, ox = m - oy * pc.wo;
    int iy0 = int(oy * pc.stride) - int(pc.pad), ix0 = int(ox * pc.stride) - int(pc.pad);
    uint k0 = kk * 4u;
    return vec4(conv_value(iy0, ix0, k0), conv_value(iy0, ix0, k0 + 1u),
                conv_value(iy0, ix0, k0 + 2u), conv_value(iy0, ix0, k0 + 3u));
}
#define load_a_full load_a
#else
// k values 4*kk .. 4*kk+3 of row m, all below pc.k
vec4 load_a_full(uint m, uint kk)
{
    uint base = pc.off[1] + m * pc.lda + kk * 4u;
    if (pc.a_vec4 != 0u)
        return LOAD4(a4[base / 4u]);
    return vec4(LOAD(a[base]), LOAD(a[base + 1u]), LOAD(a[base + 2u]), LOAD(a[base + 3u]));
}

// the same with zeros past pc.k
vec4 load_a(uint m, uint kk)
{
    uint k0 = kk * 4u;
    if (k0 + 4u <= pc.k)
        return load_a_full(m, kk);
    uint base = pc.off[1] + m * pc.lda + k0;
    vec4 v = vec4(0.0);
    for (uint i = 0u; i < 4u && k0 + i < pc.k; i++)
        v[i] = LOAD(a[base + i]);
    return v;
}
#endif

void store_out(uint m, uint c, float acc)
{
    if ((pc.flags & EPI_BIAS) != 0u)
        acc += LOAD(bias[pc.off[3] + c]);
    if ((pc.flags & EPI_GELU) != 0u)
        acc = f2_gelu(acc);
    if ((pc.flags & EPI_RESIDUAL) != 0u)
        acc += LOAD(res[pc.off[4] + m * pc.ldr + c]);
    o[pc.off[0] + m * pc.ldo + c] = STORE(acc);
}
