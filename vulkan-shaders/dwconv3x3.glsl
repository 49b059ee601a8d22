// Depthwise 3x3 convolution, stride 1, zero padding 1, on tokens [h*w][c]:
// out[y][x][c] = bias[c] + sum w[c][dy][dx] * in[y+dy-1][x+dx-1][c]
//                (+ in[y][x][c] with the residual).
//
// One invocation computes XB consecutive pixels of a row for one channel
// group (4 channels as vec4 when VEC4 is defined, else 1): each loaded input
// is used by up to three outputs. Channels vary fastest across invocations
// so neighbouring invocations read neighbouring memory.
#ifdef VEC4
#define T vec4_t
#define V vec4
#define LD(v) vec4(v)
#define ST(v) vec4_t(v)
#define GROUP 4u
#else
#define T float_t
#define V float
#define LD(v) float(v)
#define ST(v) float_t(v)
#define GROUP 1u
#endif

#define XB 4
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 64) in;
layout(binding = 0) writeonly buffer O { T o[]; };
layout(binding = 1) readonly buffer X { T x[]; };
layout(binding = 2) readonly buffer W { T w[]; };
layout(binding = 3) readonly buffer B { T b[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint h; uint w; uint groups; uint has_bias; uint residual;
} pc;

void main()
{
    uint i = f2_flat_index();
    uint blocks = (pc.w + XB - 1) / XB;
    if (i >= pc.h * blocks * pc.groups)
        return;
    uint g = i % pc.groups;
    uint bx = (i / pc.groups) % blocks;
    uint y = i / (pc.groups * blocks);
    uint x0 = bx * XB;

    // off[] are element offsets; with VEC4 the host guarantees multiples of 4
    uint ox = pc.off[1] / GROUP, oo = pc.off[0] / GROUP;

    V wt[9];
#ifdef VEC4
    // weights of channels 4g..4g+3 are 36 consecutive values
    float wf[36];
    [[unroll]] for (uint j = 0; j < 9; j++) {
        vec4 v = LD(w[pc.off[2] / 4 + 9 * g + j]);
        wf[4 * j] = v.x; wf[4 * j + 1] = v.y; wf[4 * j + 2] = v.z; wf[4 * j + 3] = v.w;
    }
    [[unroll]] for (uint t = 0; t < 9; t++)
        wt[t] = vec4(wf[t], wf[9 + t], wf[18 + t], wf[27 + t]);
#else
    [[unroll]] for (uint t = 0; t < 9; t++)
        wt[t] = LD(w[pc.off[2] + 9 * g + t]);
#endif

    V bias = pc.has_bias != 0 ? LD(b[pc.off[3] / GROUP + g]) : V(0.0);
    V acc[XB];
    [[unroll]] for (uint k = 0; k < XB; k++)
        acc[k] = bias;

    // loops with constant bounds, unrolled: the arrays stay in registers
    [[unroll]] for (int dy = -1; dy <= 1; dy++) {
        int iy = int(y) + dy;
        bool row_ok = iy >= 0 && iy < int(pc.h);
        uint base = ox + uint(row_ok ? iy : 0) * pc.w * pc.groups + g;
        V row[XB + 2];
        [[unroll]] for (int j = 0; j < XB + 2; j++) {
            int ix = int(x0) - 1 + j;
            row[j] = row_ok && ix >= 0 && ix < int(pc.w) ?
                LD(x[base + uint(ix) * pc.groups]) : V(0.0);
        }
        [[unroll]] for (int dx = 0; dx < 3; dx++) {
            V k = wt[(dy + 1) * 3 + dx];
            [[unroll]] for (int j = 0; j < XB; j++)
                acc[j] += row[j + dx] * k;
        }
    }

    [[unroll]] for (uint j = 0; j < XB; j++) {
        uint xx = x0 + j;
        if (xx >= pc.w)
            break;
        uint at = (y * pc.w + xx) * pc.groups + g;
        V v = acc[j];
        if (pc.residual != 0)
            v += LD(x[ox + at]);
        o[oo + at] = ST(v);
    }
}
