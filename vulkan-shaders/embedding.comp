#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// out[i][:] = table[ids[i]][:] * scale + pos[pos_base + i][:]
layout(local_size_x = 256) in;
layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) readonly buffer T { float_t table[]; };
layout(binding = 3) readonly buffer P { float_t pos[]; };
layout(binding = 4) readonly buffer PR { int pos_ref[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint n; uint dim; uint vocab; uint ldo; float scale; uint pos_offset;
    uint has_pos; uint has_pos_ref;
    // the table may be bound in row chunks (binding range limits): this
    // dispatch sees rows [chunk_begin, chunk_end); the first chunk also
    // writes the rows of out-of-range ids (zeros)
    uint chunk_begin; uint chunk_end; uint first_chunk;
} pc;

void main()
{
    uint i = f2_flat_index();
    if (i >= pc.n * pc.dim)
        return;
    uint row = i / pc.dim, c = i % pc.dim;
    int id = ids[pc.off[1] + row];
    bool valid = id >= 0 && uint(id) < pc.vocab;
    bool in_chunk = valid && uint(id) >= pc.chunk_begin && uint(id) < pc.chunk_end;
    if (!in_chunk && !(pc.first_chunk != 0 && !valid))
        return;
    float v = 0.0;
    if (in_chunk)
        v = LOAD(table[pc.off[2] + (uint(id) - pc.chunk_begin) * pc.dim + c]) * pc.scale;
    if (pc.has_pos != 0) {
        uint base = pc.pos_offset + (pc.has_pos_ref != 0 ? uint(pos_ref[pc.off[4]]) : 0u);
        v += LOAD(pos[pc.off[3] + (base + row) * pc.dim + c]);
    }
    o[pc.off[0] + row * pc.ldo + c] = STORE(v);
}
