// Fused multi-head attention, softmax(scale * q.k) v, with an online
// softmax: the scores never leave registers.
//
// Workgroup (x, y, z) = (block of queries, head, batch item or window).
// KS invocations share one query and split its keys (j = split, split + KS,
// ...); their partial (max, sum, acc) are merged in shared memory at the
// end. KS = 1 for long query blocks, KS > 1 for decoding (one query, many
// keys). With BK > 1 the workgroup stages blocks of BK keys and values in
// shared memory first (GPUs: every key is loaded once per workgroup instead
// of once per query); BK = 1 reads them straight from the buffers (CPU
// drivers, where shared memory is no faster).
// QPT > 1 (with KS = 1): each invocation handles QPT consecutive queries,
// so that every key and value loaded feeds QPT queries.
// VEC4: every row start and head offset is a multiple of 4 elements, so the
// head's values load as vec4s; otherwise element by element.
//
// With F2_ATTN_SUBGROUP (attention_sg.comp, for GPUs) the KS partial
// results of a query merge through subgroup shuffles, and through shared
// memory only across subgroups (one slot per subgroup). Invocations are
// numbered subgroup by subgroup, so a query's KS invocations are adjacent
// lanes whatever the subgroup size (8 or 16 on lavapipe, 32, 64); the
// recorder uses it where every subgroup of the workgroup is full. SG_MIN is
// the smallest subgroup size the device may run it at.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HD = 64;
layout(constant_id = 2) const uint KS = 1;
layout(constant_id = 3) const bool VEC4 = false;
layout(constant_id = 4) const uint BK = 1;
layout(constant_id = 5) const uint QPT = 1;
layout(constant_id = 6) const uint SG_MIN = 1;

const uint WG = gl_WorkGroupSize.x;
const uint HD4 = (HD + 3) / 4;
const uint QT = WG / KS * QPT;      // queries per workgroup

layout(binding = 0) writeonly buffer O { float_t o[]; };
layout(binding = 0) writeonly buffer O4 { vec4_t o4[]; };
layout(binding = 1) readonly buffer Q { float_t q[]; };
layout(binding = 1) readonly buffer Q4 { vec4_t q4[]; };
layout(binding = 2) readonly buffer K { float_t k[]; };
layout(binding = 2) readonly buffer K4 { vec4_t k4[]; };
layout(binding = 3) readonly buffer V { float_t v[]; };
layout(binding = 3) readonly buffer V4 { vec4_t v4[]; };
layout(binding = 4) readonly buffer M { int mask[]; };
layout(binding = 5) readonly buffer L { int kv_ref[]; };
layout(push_constant) uniform PC {
    F2_PUSH_OFFSETS
    uint q_stride; uint k_stride; uint v_stride; uint o_stride;
    uint q_len; uint kv_len;
    uint q_batch; uint k_batch; uint v_batch; uint o_batch; uint mask_batch;
    uint grid_w; uint window; int causal_offset; float scale; uint flags;
} pc;

const uint CAUSAL = 1, KEY_MASK = 2, DYNAMIC_KV = 4, WINDOW = 8;

shared vec4 k_tile[BK > 1 ? BK * HD4 : 1];
shared vec4 v_tile[BK > 1 ? BK * HD4 : 1];
#ifdef F2_ATTN_SUBGROUP
const uint MERGE_SLOTS = KS > SG_MIN ? WG / SG_MIN : 1;    // one per subgroup
#else
const uint MERGE_SLOTS = KS > 1 ? WG : 1;                  // one per invocation
#endif
shared vec4 merge_acc[MERGE_SLOTS * HD4];
shared vec2 merge_ml[MERGE_SLOTS];

// element chunk i (4 values) of the head starting at element e
#define LOAD_CHUNK(a, a4, e, i) (VEC4 ? vec4(a4[((e) >> 2) + (i)]) : vec4( \
    LOAD(a[(e) + 4 * (i)]), \
    4 * (i) + 1 < HD ? LOAD(a[(e) + 4 * (i) + 1]) : 0.0, \
    4 * (i) + 2 < HD ? LOAD(a[(e) + 4 * (i) + 2]) : 0.0, \
    4 * (i) + 3 < HD ? LOAD(a[(e) + 4 * (i) + 3]) : 0.0))

// Row of token t of batch item b in its tensor: in window mode the token's
// row in the whole grid, else t (the batch offset is added by the caller).
uint token_row(uint b, uint t)
{
    if ((pc.flags & WINDOW) == 0)
        return t;
    uint wins = pc.grid_w / pc.window;
    uint wy = b / wins, wx = b % wins;
    return (wy * pc.window + t / pc.window) * pc.grid_w + wx * pc.window + t % pc.window;
}

// per invocation: its queries (pre-scaled), running max, sum and weighted
// sum of values, and how many keys each query sees
vec4 qv[QPT * HD4], acc[QPT * HD4];
float m_run[QPT], l_run[QPT];
uint lim[QPT];

// online softmax update of every query of this invocation with key j
// (row elements ke, ve; or tile row jj when staged)
void process_key(uint j, uint ke, uint ve, uint jj)
{
    float s[QPT], p[QPT];
    [[unroll]] for (uint r = 0; r < QPT; r++)
        s[r] = 0.0;
    [[unroll]] for (uint i = 0; i < HD4; i++) {
        vec4 kc = BK > 1 ? k_tile[jj * HD4 + i] : LOAD_CHUNK(k, k4, ke, i);
        [[unroll]] for (uint r = 0; r < QPT; r++)
            s[r] += dot(qv[r * HD4 + i], kc);
    }
    [[unroll]] for (uint r = 0; r < QPT; r++) {
        p[r] = 0.0;
        if (j < lim[r]) {
            if (s[r] > m_run[r]) {
                float c = exp(m_run[r] - s[r]);
                l_run[r] *= c;
                [[unroll]] for (uint i = 0; i < HD4; i++)
                    acc[r * HD4 + i] *= c;
                m_run[r] = s[r];
            }
            p[r] = exp(s[r] - m_run[r]);
            l_run[r] += p[r];
        }
    }
    [[unroll]] for (uint i = 0; i < HD4; i++) {
        vec4 vc = BK > 1 ? v_tile[jj * HD4 + i] : LOAD_CHUNK(v, v4, ve, i);
        [[unroll]] for (uint r = 0; r < QPT; r++)
            acc[r * HD4 + i] += p[r] * vc;
    }
}

#ifdef F2_ATTN_SUBGROUP
// Merge the (max, sum, acc) of the KS invocations of this query: a
// butterfly over its lanes in the subgroup, then over its subgroups through
// shared memory when KS is wider than a subgroup. Every invocation of the
// query ends with the whole result; returns the sum.
float merge_partials(uint t)
{
    uint lanes = min(KS, gl_SubgroupSize);
    float m = m_run[0];
    for (uint d = 1; d < lanes; d *= 2)
        m = max(m, subgroupShuffleXor(m, d));
    float c = exp(m_run[0] - m);
    float l = l_run[0] * c;
    [[unroll]] for (uint i = 0; i < HD4; i++)
        acc[i] *= c;
    for (uint d = 1; d < lanes; d *= 2) {
        l += subgroupShuffleXor(l, d);
        [[unroll]] for (uint i = 0; i < HD4; i++)
            acc[i] += subgroupShuffleXor(acc[i], d);
    }
    if (KS > gl_SubgroupSize) {
        // the same for every subgroup of the workgroup: barriers are fine
        uint parts = KS / gl_SubgroupSize, s0 = (t / KS) * parts;
        if (subgroupElect()) {
            merge_ml[gl_SubgroupID] = vec2(m, l);
            [[unroll]] for (uint i = 0; i < HD4; i++)
                merge_acc[gl_SubgroupID * HD4 + i] = acc[i];
        }
        barrier();
        float mg = -3.0e38;
        for (uint p = 0; p < parts; p++)
            mg = max(mg, merge_ml[s0 + p].x);
        l = 0.0;
        [[unroll]] for (uint i = 0; i < HD4; i++)
            acc[i] = vec4(0.0);
        for (uint p = 0; p < parts; p++) {
            float cp = exp(merge_ml[s0 + p].x - mg);
            l += merge_ml[s0 + p].y * cp;
            [[unroll]] for (uint i = 0; i < HD4; i++)
                acc[i] += merge_acc[(s0 + p) * HD4 + i] * cp;
        }
    }
    return l;
}
#endif

void main()
{
#ifdef F2_ATTN_SUBGROUP
    uint t = gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID;
#else
    uint t = gl_LocalInvocationID.x;
#endif
    uint split = t % KS;
    uint q_first = gl_WorkGroupID.x * QT + (t / KS) * QPT;
    uint h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
    bool window = (pc.flags & WINDOW) != 0;

    uint kv = pc.kv_len;
    if ((pc.flags & DYNAMIC_KV) != 0)
        kv = uint(clamp(kv_ref[pc.off[5]], 0, int(kv)));
    // keys each query sees, keys any query of the invocation or of the
    // workgroup sees
    uint lim_max = 0, wg_lim = kv;
    bool causal = (pc.flags & CAUSAL) != 0;
    if (causal) {
        uint q_last = min(pc.q_len, (gl_WorkGroupID.x + 1) * QT) - 1;
        wg_lim = uint(clamp(int(q_last) + pc.causal_offset + 1, 0, int(kv)));
    }
    [[unroll]] for (uint r = 0; r < QPT; r++) {
        uint qi = q_first + r;
        lim[r] = causal ? uint(clamp(int(qi) + pc.causal_offset + 1, 0, int(kv))) : kv;
        if (qi >= pc.q_len)
            lim[r] = 0;
        lim_max = max(lim_max, lim[r]);
    }

    uint col = h * HD;
    uint q_base = pc.off[1] + (window ? 0 : b * pc.q_batch) + col;
    uint k_base = pc.off[2] + (window ? 0 : b * pc.k_batch) + col;
    uint v_base = pc.off[3] + (window ? 0 : b * pc.v_batch) + col;
    uint m_base = pc.off[4] + b * pc.mask_batch;
    bool masked = (pc.flags & KEY_MASK) != 0;

    [[unroll]] for (uint r = 0; r < QPT; r++) {
        uint qi = min(q_first + r, pc.q_len - 1);
        uint e = q_base + token_row(b, qi) * pc.q_stride;
        [[unroll]] for (uint i = 0; i < HD4; i++) {
            qv[r * HD4 + i] = LOAD_CHUNK(q, q4, e, i) * pc.scale;
            acc[r * HD4 + i] = vec4(0.0);
        }
        // a finite start: exp(start - s) is 0 and never NaN
        m_run[r] = -3.0e38;
        l_run[r] = 0.0;
    }

    if (BK == 1) {
        for (uint j = split; j < lim_max; j += KS) {
            if (masked && mask[m_base + j] == 0)
                continue;
            uint row = token_row(b, j);
            process_key(j, k_base + row * pc.k_stride, v_base + row * pc.v_stride, 0);
        }
    } else {
        for (uint j0 = 0; j0 < wg_lim; j0 += BK) {
            uint nk = min(BK, wg_lim - j0);
            barrier();
            for (uint x = t; x < nk * HD4; x += WG) {
                uint jj = x / HD4, i = x % HD4;
                uint row = token_row(b, j0 + jj);
                k_tile[x] = LOAD_CHUNK(k, k4, k_base + row * pc.k_stride, i);
                v_tile[x] = LOAD_CHUNK(v, v4, v_base + row * pc.v_stride, i);
            }
            barrier();
            uint n_mine = lim_max > j0 ? min(nk, lim_max - j0) : 0;
            for (uint jj = split; jj < n_mine; jj += KS) {
                if (masked && mask[m_base + j0 + jj] == 0)
                    continue;
                process_key(j0 + jj, 0, 0, jj);
            }
        }
    }

    uint first = 0, step = 1;
#ifdef F2_ATTN_SUBGROUP
    if (KS > 1) {
        // the recorder uses KS > 1 with QPT = 1 only
        l_run[0] = merge_partials(t);
        first = split;
        step = KS;
    }
#else
    if (KS > 1) {
        // merge the KS partial results of this query (fixed order); the
        // recorder uses KS > 1 with QPT = 1 only
        uint q0 = t - split;
        merge_ml[t] = vec2(m_run[0], l_run[0]);
        barrier();
        float mg = -3.0e38;
        for (uint s = 0; s < KS; s++)
            mg = max(mg, merge_ml[q0 + s].x);
        float l = 0.0;
        for (uint s = 0; s < KS; s++)
            l += merge_ml[q0 + s].y * exp(merge_ml[q0 + s].x - mg);
        l_run[0] = l;
        float c = exp(m_run[0] - mg);
        [[unroll]] for (uint i = 0; i < HD4; i++)
            merge_acc[t * HD4 + i] = acc[i] * c;
        barrier();
        for (uint i = split; i < HD4; i += KS) {
            vec4 sum = vec4(0.0);
            for (uint s = 0; s < KS; s++)
                sum += merge_acc[(q0 + s) * HD4 + i];
            acc[i] = sum;
        }
        // each of the KS invocations stores the chunks it summed
        first = split;
        step = KS;
    }
#endif

    [[unroll]] for (uint r = 0; r < QPT; r++) {
        uint qi = q_first + r;
        if (qi >= pc.q_len)
            break;
        // a query that sees no key gets zeros, as the reference
        float inv = l_run[r] > 0.0 ? 1.0 / l_run[r] : 0.0;
        uint e = pc.off[0] + (window ? 0 : b * pc.o_batch) + token_row(b, qi) * pc.o_stride + col;
        for (uint i = first; i < HD4; i += step) {
            vec4 res = acc[r * HD4 + i] * inv;
            if (VEC4) {
                o4[(e >> 2) + i] = STORE4(res);
            } else {
                o[e + 4 * i] = STORE(res.x);
                if (4 * i + 1 < HD)
                    o[e + 4 * i + 1] = STORE(res.y);
                if (4 * i + 2 < HD)
                    o[e + 4 * i + 2] = STORE(res.z);
                if (4 * i + 3 < HD)
                    o[e + 4 * i + 3] = STORE(res.w);
            }
        }
    }
}
