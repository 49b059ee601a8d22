#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// out[r][c] = x[row(r)][c], row(r) = r, or idx[r] when use_index
layout(local_size_x = 256) in;
layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 1) readonly buffer X { float_t x[]; };
layout(binding = 2) readonly buffer I { int idx[]; };
layout(push_constant) uniform PC { F2_PUSH_OFFSETS uint rows; uint cols; uint ldx; uint ldo; uint use_index; } pc;

void main()
{
    uint i = f2_flat_index();
    if (i >= pc.rows * pc.cols)
        return;
    uint r = i / pc.cols, c = i % pc.cols;
    uint src = pc.use_index != 0 ? uint(idx[pc.off[2] + r]) : r;
    o[pc.off[0] + r * pc.ldo + c] = x[pc.off[1] + src * pc.ldx + c];
}
