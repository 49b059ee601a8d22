#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// PIL-exact horizontal resampling pass (Pillow's 8-bit fixed point): reads
// the frame in its pixel format, converts YUV to RGB, and writes
// out[y][x][c] = clamp((2^21 + sum_t rgb[y][bounds[x] + t][c] * coeffs[x][t]) >> 22)
// as bytes. Pillow's coefficient scale keeps the sums inside 32 bits.
//
// Bytes are read from uint words (no 8-bit storage needed). Each invocation
// makes 4 consecutive output pixels (12 bytes, 3 whole words when the output
// starts on a word boundary); a word it shares with a neighbour (an output
// that does not start on a word boundary, or the last word) is merged with
// atomics.
//
// The frame may be bound in bands of rows (binding range limits): plane k is
// bound from its row base (row y0, or y0 / 2 for chroma), this dispatch
// makes input rows y0 .. y0 + rows - 1, and out is bound from row y0.
layout(local_size_x = 64) in;
layout(binding = 0) buffer O { uint o[]; };
layout(binding = 1) readonly buffer P0 { uint p0[]; };
layout(binding = 2) readonly buffer P1 { uint p1[]; };
layout(binding = 3) readonly buffer P2 { uint p2[]; };
layout(binding = 4) readonly buffer C { int coeffs[]; };
layout(binding = 5) readonly buffer Bo { int bounds[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint format; uint in_w; uint rows; uint y0; uint out_w; uint taps;
    uint stride0; uint stride1; uint stride2;
    float m0; float m1; float m2; float m3; float m4; float m5; float m6; float m7; float m8;
    float y_offset;
} pc;

// F2PixelFormat
const uint RGB = 0, RGBX = 1, BGRX = 2, RGBA = 3, BGRA = 4, NV12 = 5, I420 = 6;
const int BITS = 22;

uint byte0(uint a) { return (p0[a >> 2] >> ((a & 3u) * 8u)) & 0xffu; }
uint byte1(uint a) { return (p1[a >> 2] >> ((a & 3u) * 8u)) & 0xffu; }
uint byte2(uint a) { return (p2[a >> 2] >> ((a & 3u) * 8u)) & 0xffu; }

// as the reference: float, in this order, no fused multiply-add
int yuv_component(float a, float b, float c, float y, float u, float v)
{
    precise float r = a * y + b * u;
    precise float s = r + c * v;
    precise float t = floor(s + 0.5);
    return int(clamp(t, 0.0, 255.0));
}

// RGB of input pixel (row yl of this band, column ix)
ivec3 fetch(uint yl, uint ix)
{
    uint y = pc.y0 + yl;
    uint a = pc.off[1] + yl * pc.stride0;
    if (pc.format == RGB) {
        a += 3u * ix;
        // the 3 bytes lie in one or two words
        uint sh = (a & 3u) * 8u;
        uint lo = p0[a >> 2], hi = p0[(a + 2u) >> 2];
        uint w = sh == 0u ? lo : (lo >> sh) | (hi << (32u - sh));
        return ivec3(w & 0xffu, (w >> 8) & 0xffu, (w >> 16) & 0xffu);
    }
    if (pc.format <= BGRA) {
        a += 4u * ix;
        uint w = (a & 3u) == 0u ? p0[a >> 2] :
            byte0(a) | (byte0(a + 1u) << 8) | (byte0(a + 2u) << 16);
        ivec3 rgb = ivec3(w & 0xffu, (w >> 8) & 0xffu, (w >> 16) & 0xffu);
        return pc.format == BGRX || pc.format == BGRA ? rgb.zyx : rgb;
    }
    uint cy = y / 2u - pc.y0 / 2u;
    float fy = float(int(byte0(a + ix))) - pc.y_offset;
    float fu, fv;
    if (pc.format == NV12) {
        uint c = pc.off[2] + cy * pc.stride1 + 2u * (ix / 2u);
        fu = float(int(byte1(c)) - 128);
        fv = float(int(byte1(c + 1u)) - 128);
    } else {
        fu = float(int(byte1(pc.off[2] + cy * pc.stride1 + ix / 2u)) - 128);
        fv = float(int(byte2(pc.off[3] + cy * pc.stride2 + ix / 2u)) - 128);
    }
    return ivec3(yuv_component(pc.m0, pc.m1, pc.m2, fy, fu, fv),
                 yuv_component(pc.m3, pc.m4, pc.m5, fy, fu, fv),
                 yuv_component(pc.m6, pc.m7, pc.m8, fy, fu, fv));
}

uint pixel(uint p)
{
    uint yl = p / pc.out_w, x = p % pc.out_w;
    int first = bounds[pc.off[5] + x];
    uint kb = pc.off[4] + x * pc.taps;
    ivec3 ss = ivec3(1 << (BITS - 1));
    for (uint t = 0; t < pc.taps; t++) {
        int ix = first + int(t);
        if (ix < 0 || ix >= int(pc.in_w))
            continue;
        ss += fetch(yl, uint(ix)) * coeffs[kb + t];
    }
    uvec3 v = uvec3(clamp(ss >> BITS, 0, 255));
    return v.x | (v.y << 8) | (v.z << 16);
}

void main()
{
    uint g = f2_flat_index();
    uint n_pix = pc.rows * pc.out_w;
    if (g * 4u >= n_pix)
        return;

    // 4 pixels of 24 bits; missing pixels stay 0
    uint have = min(4u, n_pix - g * 4u);
    uint px0 = pixel(g * 4u);
    uint px1 = have > 1u ? pixel(g * 4u + 1u) : 0u;
    uint px2 = have > 2u ? pixel(g * 4u + 2u) : 0u;
    uint px3 = have > 3u ? pixel(g * 4u + 3u) : 0u;
    // the 12 bytes as 3 little-endian words
    uint words[3] = uint[3](px0 | (px1 << 24), (px1 >> 8) | (px2 << 16),
                            (px2 >> 16) | (px3 << 8));

    uint first = pc.off[0] + 12u * g;           // first byte, in the binding
    uint last = first + 3u * have;              // one past the last byte
    if ((first & 3u) == 0u && have == 4u) {
        o[first >> 2] = words[0];
        o[(first >> 2) + 1u] = words[1];
        o[(first >> 2) + 2u] = words[2];
        return;
    }
    // an unaligned output or the last pixels: merge the words we share
    for (uint w = first >> 2; w <= (last - 1u) >> 2; w++) {
        uint value = 0u, keep = 0u;
        for (uint b = 0; b < 4u; b++) {
            uint at = 4u * w + b;
            if (at < first || at >= last) {
                keep |= 0xffu << (8u * b);
                continue;
            }
            uint i = at - first;                // byte i of the 12
            value |= ((words[i >> 2] >> (8u * (i & 3u))) & 0xffu) << (8u * b);
        }
        if (keep == 0u) {
            o[w] = value;
        } else {
            atomicAnd(o[w], keep);
            atomicOr(o[w], value);
        }
    }
}
