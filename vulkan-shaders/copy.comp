#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// out[r][c] = x[row(r)][c], row(r) = r, or idx[r] when use_index. The
// binding of x holds source rows src_begin..src_end-1 (from its start): an
// indexed copy whose source outgrows one binding runs as several
// dispatches, each writing the rows whose index falls in its window.
layout(local_size_x = 256) in;
layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 1) readonly buffer X { float_t x[]; };
layout(binding = 2) readonly buffer I { int idx[]; };
layout(push_constant) uniform PC { F2_PUSH_OFFSETS uint rows; uint cols; uint ldx; uint ldo; uint use_index;
    uint src_begin; uint src_end; } pc;

void main()
{
    uint i = f2_flat_index();
    if (i >= pc.rows * pc.cols)
        return;
    uint r = i / pc.cols, c = i % pc.cols;
    uint src = r;
    if (pc.use_index != 0) {
        int s = idx[pc.off[2] + r];
        if (s < int(pc.src_begin) || s >= int(pc.src_end))
            return;             // another dispatch's source rows
        src = uint(s) - pc.src_begin;
    }
    o[pc.off[0] + r * pc.ldo + c] = x[pc.off[1] + src * pc.ldx + c];
}
