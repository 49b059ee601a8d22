#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// PIL-exact vertical resampling pass on the 8-bit rows of the horizontal
// pass, then the processor's rescale and normalisation:
// out[c][y][x] = (float(v * rescale) - mean[c]) / std[c],
// v = clamp((2^21 + sum_t in[bounds[y] + t][x][c] * coeffs[y][t]) >> 22).
// The rescale factor (a double on the host) comes as three floats, so the
// product is the double product rounded to float, as the reference does;
// the result matches the host's float arithmetic bit for bit.
layout(local_size_x = 64) in;
layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 1) readonly buffer R { uint rows[]; };
layout(binding = 2) readonly buffer C { int coeffs[]; };
layout(binding = 3) readonly buffer Bo { int bounds[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint in_h; uint w; uint out_h; uint taps;
    float mean0; float mean1; float mean2; float std0; float std1; float std2;
    float rescale_hi_a; float rescale_hi_b; float rescale_lo;
} pc;

const int BITS = 22;

// Products and sums below are single correctly rounded operations (precise:
// never fused), so every device computes the same bits as the host.

// Veltkamp split of a into two halves of 12 significant bits
void split(float a, out float hi, out float lo)
{
    precise float c = 4097.0 * a;
    precise float h = c - (c - a);
    precise float l = a - h;
    hi = h;
    lo = l;
}

// a / b rounded as the host rounds it: the driver's quotient (which may be
// a few ulp off) corrected once by its exactly computed residual
float divide(float a, float b)
{
    precise float q = a / b;
    float qh, ql, bh, bl;
    split(q, qh, ql);
    split(b, bh, bl);
    precise float p = q * b;
    precise float e = ((qh * bh - p) + qh * bl + ql * bh) + ql * bl;
    precise float r = (a - p) - e;
    precise float result = q + r * (1.0 / b);
    return result;
}

float normalise(uint v, float mean, float std_dev)
{
    // float(v * rescale) with rescale = hi_a + hi_b + lo: v * hi_a and
    // v * hi_b are exact (12-bit halves), their sum is kept with its error
    float fv = float(v);
    precise float a = fv * pc.rescale_hi_a;
    precise float b = fv * pc.rescale_hi_b;
    precise float s = a + b;
    precise float e = b - (s - a);
    precise float x = s + (e + fv * pc.rescale_lo);
    precise float centred = x - mean;
    return divide(centred, std_dev);
}

void main()
{
    uint i = f2_flat_index();
    if (i >= pc.out_h * pc.w)
        return;
    uint y = i / pc.w, x = i % pc.w;
    int first = bounds[pc.off[3] + y];
    uint kb = pc.off[2] + y * pc.taps;
    ivec3 ss = ivec3(1 << (BITS - 1));
    for (uint t = 0; t < pc.taps; t++) {
        int iy = first + int(t);
        if (iy < 0 || iy >= int(pc.in_h))
            continue;
        uint a = pc.off[1] + (uint(iy) * pc.w + x) * 3u;
        // the 3 bytes lie in one or two words
        uint sh = (a & 3u) * 8u;
        uint lo = rows[a >> 2], hi = rows[(a + 2u) >> 2];
        uint wd = sh == 0u ? lo : (lo >> sh) | (hi << (32u - sh));
        ivec3 rgb = ivec3(wd & 0xffu, (wd >> 8) & 0xffu, (wd >> 16) & 0xffu);
        ss += rgb * coeffs[kb + t];
    }
    uvec3 v = uvec3(clamp(ss >> BITS, 0, 255));
    uint plane = pc.out_h * pc.w;
    o[pc.off[0] + i] = STORE(normalise(v.x, pc.mean0, pc.std0));
    o[pc.off[0] + plane + i] = STORE(normalise(v.y, pc.mean1, pc.std1));
    o[pc.off[0] + 2u * plane + i] = STORE(normalise(v.z, pc.mean2, pc.std2));
}
