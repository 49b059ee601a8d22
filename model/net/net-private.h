/* Inside the network: the model's dimensions, its weights on the device,
 * the working buffers and the program builders of net-vision.c and
 * net-text.c. net.c owns the lifetime and runs the programs. Calls go one
 * way: net.c -> net-vision.c, net-text.c -> net-load.c, net-build.c. */
#pragma once

#include "net.h"
#include "preprocess.h"

G_BEGIN_DECLS

/* Rows of the decoder's self-attention cache a step program covers are
 * rounded up to this (one recorded program per bucket). */
#define F2_NET_KV_BUCKET 64
/* Recorded decoder step programs a net keeps (one per batch shape, cache
 * bucket and ping-pong side) */
#define F2_NET_MAX_STEP_PROGRAMS 256
/* Recorded encoder programs a net keeps (one per mix of prompt lengths and
 * slots) */
#define F2_NET_MAX_ENCODER_PROGRAMS 64
/* Largest MLP chunk of the vision tower, in elements of the hidden layer
 * (keeps the hidden buffer and each op's binding small). */
#define F2_NET_VISION_HID_LIMIT (8u << 20)

/* Everything the programs need to know about the model. */
typedef struct {
  /* vision */
  guint32 image_size;           /* square input side (768) */
  guint32 dim[F2_NET_STAGES], depth[F2_NET_STAGES];
  guint32 heads[F2_NET_STAGES], groups[F2_NET_STAGES];
  guint32 patch[F2_NET_STAGES], stride[F2_NET_STAGES], pad[F2_NET_STAGES];
  gboolean prenorm[F2_NET_STAGES];
  guint32 grid[F2_NET_STAGES];  /* token grid side after each stage's conv */
  guint32 window;
  guint32 mlp_ratio;
  guint32 pos_embed_max;        /* rows of the 2-D position tables */
  guint32 temporal_max;         /* rows of the temporal embedding */
  /* language model */
  guint32 d_model, vocab, max_positions;
  guint32 enc_layers, enc_heads, enc_ffn;
  guint32 dec_layers, dec_heads, dec_ffn;
  float embed_scale;            /* token embeddings * this (1, or sqrt(d_model)) */
  F2Normalization norm;
} F2NetDims;

/* Tokens of the image (image_features rows): the pooled one plus the grid */
#define f2_net_image_tokens(d) (1 + (d)->grid[F2_NET_STAGES - 1] * (d)->grid[F2_NET_STAGES - 1])

typedef struct {
  F2Ref w, b;                   /* b unset: no bias */
  guint32 n, k;
} F2NetLinear;

typedef struct {
  F2Ref gamma, beta;
} F2NetNorm;

typedef struct {
  F2Ref w, b;                   /* [c][9], [c] */
} F2NetDwConv;

/* A spatial or channel block: conv, attention, conv, MLP */
typedef struct {
  F2NetDwConv conv1, conv2;
  F2NetNorm attn_norm, ffn_norm;
  F2NetLinear qkv, proj, fc1, fc2;
} F2NetVisionBlock;

typedef struct {
  F2NetLinear conv;             /* [cout][cin*k*k] */
  F2NetNorm norm;
  F2NetVisionBlock *spatial, *channel;  /* [depth] */
} F2NetVisionStage;

typedef struct {
  F2NetLinear qkv, out, fc1, fc2;       /* qkv fused [3d][d] */
  F2NetNorm attn_norm, final_norm;
} F2NetEncoderLayer;

typedef struct {
  F2NetLinear self_q, self_kv, self_out;        /* self_kv fused [2d][d] */
  F2NetLinear cross_q, cross_kv, cross_out;
  F2NetLinear fc1, fc2;
  F2NetNorm self_norm, cross_norm, final_norm;
} F2NetDecoderLayer;

typedef struct {
  /* vision */
  F2NetVisionStage stage[F2_NET_STAGES];
  F2Ref pos_embed;              /* [grid*grid][C4]: cat(column[x], row[y]) */
  F2Ref temporal;               /* [C4]: temporal embedding row 0 */
  F2NetLinear image_proj;       /* [P][C4] (transposed from the checkpoint) */
  F2NetNorm image_proj_norm;
  /* language model */
  F2Ref embed_tokens;           /* [V][d] */
  F2Ref enc_positions, dec_positions;   /* [max_positions + 2][d] */
  F2NetNorm enc_embed_norm, dec_embed_norm;
  F2NetEncoderLayer *enc;
  F2NetDecoderLayer *dec;
  F2NetLinear lm_head;          /* bias = final_logits_bias */
} F2NetWeights;

/* Control values the step program reads (I32 host buffer) */
enum {
  F2_NET_CTRL_POSITION,         /* decoder position of this step */
  F2_NET_CTRL_SELF_KV,          /* keys in the self-attention cache: position + 1 */
  F2_NET_CTRL_CROSS_KV,         /* per slot: encoder tokens (image tokens + prompt length) */
};
#define F2_NET_CTRL_COUNT(slots) (F2_NET_CTRL_CROSS_KV + (slots))

typedef struct {
  /* preprocessing (sized for the largest frame) */
  F2PreprocessRefs pre;
  guint64 image_bytes, coeffs_h_len, coeffs_v_len, rows_bytes;
  /* vision working memory (sized for the largest stage) */
  F2Ref vx, vy, vn, vqkv, va, vhid, vscratch;  /* x vision_batch but vhid */
  F2Ref vfeat;                  /* [images][image tokens][C4] */
  /* images of a batch run through the vision tower together (when
   * vision_batch > 1; a single image goes from pre.out to embeds) */
  F2Ref vpixels;                /* [vision_batch][3][S][S] */
  F2Ref vimage;                 /* [vision_batch][image tokens][d_model] */
  F2Ref vstage_conv[F2_NET_STAGES], vstage_out[F2_NET_STAGES];  /* optional copies */
  /* encoder */
  F2Ref ids;                    /* I32 host [max prompt] */
  F2Ref embeds;                 /* [max_seq][d] image features then prompt */
  F2Ref eh, eqkv, eattn, ehid;
  F2Ref *cross_kv;              /* per slot, per decoder layer [max_seq][2d]:
                                 * slot s, layer i at s * layers + i */
  /* decoder */
  /* R = slots * max_beams decoder rows */
  F2Ref tokens;                 /* I32 host [R] */
  F2Ref gather;                 /* I32 host [max_dec * R]: cache row index */
  F2Ref banned;                 /* I32 host [R][max_banned] */
  F2Ref control;                /* I32 host [F2_NET_CTRL_COUNT (slots)] */
  F2Ref dh, dq, dattn, dhid, logits;
  F2Ref out_ids, out_scores;    /* host [R][max_k] */
  F2Ref *cache[2];              /* per layer, ping-pong: [max_dec*R + R][2d] */
  guint64 cache_staging;        /* first staging row (new keys of a step) */
} F2NetBuffers;

/* What every stream of a model shares, read-only once loaded: the
 * dimensions, the limits and the weights on the device. */
struct _F2NetModel {
  F2Backend *backend;
  F2NetDims dims;
  F2NetLimits limits;
  guint32 max_seq;              /* image tokens + max prompt tokens */
  guint32 max_k;
  F2NetWeights w;
};

/* One stream's state over a shared F2NetModel: its working buffers, KV
 * cache and recorded programs, and where its current frame stands. */
struct _F2Net {
  const F2NetModel *model;       /* shared, read-only */

  F2NetBuffers buf;

  /* programs */
  F2Program *pre_program;
  F2ImageLayout pre_layout;
  F2YuvMatrix pre_matrix;
  F2Resampler *resampler;
  F2Program *vision_program;   /* one image: pre.out -> embeds */
  gboolean keep_stages;
  /* a batch's images: up to vision_batch through one vision program */
  guint32 vision_batch;
  F2Program *vision_batch_programs[F2_NET_VISION_BATCH];       /* [n - 1] */
  F2Program *pixels_in[F2_NET_VISION_BATCH];    /* pre.out -> vpixels[i] */
  gint32 image_at[F2_NET_VISION_BATCH];         /* image i of the last call: its
                                                 * place in vimage, -1 = failed */
  gboolean features_in_embeds;  /* the last images went the single way */
  GHashTable *encoder_programs; /* frames' shapes (string) -> F2Program */
  GHashTable *step_programs;    /* step shape (string) -> F2Program */

  /* frames decoded together: one slot each (encoder output, cross keys) */
  guint32 n_slots;
  guint32 max_rows;             /* n_slots * max_beams */
  guint32 *slot_prompt;         /* per slot: prompt length, 0 = not encoded */
  guint32 *last_offset, *last_rows;     /* per slot: its rows in the last step */
  guint32 last_total_rows;

  /* state of the current frames */
  gboolean have_image;
  guint32 prompt_len;           /* of the last encoded frame (its tensors) */
  gint64 last_position;         /* -1 = no step since the last encode */
  guint cache_cur;              /* which cache buffer holds the valid rows */
  gboolean have_logits;
  gint32 *gather_host;          /* host copies of the per-step inputs */
  gint32 *banned_host, *tokens_host, *control_host;
  gint32 *out_ids_host;         /* [R][max_k] */
  float *out_scores_host;

  F2NetProfile profile;
  GHashTable *stage_times;      /* stage name -> F2NetStageTime, since the last reset */
};

/* Allocation and upload helpers (net-load.c) */
F2Ref f2_net_alloc (F2Backend *backend, F2BufferKind kind, F2ElemType type,
    guint64 n, GError **error);
/* Tensor @name (aliases followed), checked to have @dim0 rows and @numel
 * elements, converted and uploaded. */
F2Ref f2_net_upload_named (F2NetModel *model, F2Weights *weights, const char *name,
    guint64 dim0, guint64 numel, GError **error);
F2Ref f2_net_upload_floats (F2NetModel *model, const float *data, guint64 n,
    GError **error);
/* A Linear: weight [n][k] (any trailing dims flattened into k) and an
 * optional bias [n]; with @transpose the checkpoint stores [k][n]. */
gboolean f2_net_upload_linear (F2NetModel *model, F2Weights *weights,
    const char *w_name, const char *b_name, guint32 n, guint32 k,
    gboolean transpose, F2NetLinear *out, GError **error);
/* Several Linears of the same input size stacked along n (fused q/k/v). */
gboolean f2_net_upload_linear_stack (F2NetModel *model, F2Weights *weights,
    const char *const *prefixes, guint n_parts, guint32 n, guint32 k,
    F2NetLinear *out, GError **error);
gboolean f2_net_upload_norm (F2NetModel *model, F2Weights *weights,
    const char *prefix, guint32 dim, F2NetNorm *out, GError **error);
/* The Linear @prefix.weight [n][k] with its bias @prefix.bias. */
gboolean f2_net_load_linear (F2NetModel *model, F2Weights *weights,
    const char *prefix, guint32 n, guint32 k, F2NetLinear *out,
    GError **error);

/* Op builders shared by the program builders (net-build.c) */
void f2_net_add_matmul (F2Program *p, const char *name, const F2NetLinear *l,
    F2Ref a, guint32 m, guint32 lda, F2Ref out, guint32 ldo, guint32 flags,
    F2Ref residual);
void f2_net_add_layer_norm (F2Program *p, const char *name,
    const F2NetNorm *norm, F2Ref x, guint32 rows, guint32 cols, F2Ref out,
    F2Ref residual);
void f2_net_add_copy (F2Program *p, const char *name, F2Ref x, guint32 rows,
    guint32 cols, guint32 ldx, F2Ref out, guint32 ldo, F2Ref index);
void f2_net_add_add (F2Program *p, const char *name, F2Ref a, F2Ref b,
    guint32 n, guint32 b_period, F2Ref out);

/* net-vision.c */
gboolean f2_net_vision_load (F2NetModel *model, F2Weights *weights, GError **error);
void f2_net_vision_free (F2NetModel *model);
/* Working memory of the vision tower, in elements. */
void f2_net_vision_sizes (const F2NetDims *d, guint64 *act, guint64 *hid,
    guint64 *scratch);
/* What a vision program runs on: @images frames' pixel values
 * [images][3][S][S] in, their image features [images][image tokens][d_model]
 * out. */
typedef struct {
  guint32 images;
  F2Ref pixels, features;
} F2NetVisionIO;

/* pixel values -> image features, for 1 .. net->vision_batch images */
gboolean f2_net_vision_build (F2Net *net, F2Program *program,
    const F2NetVisionIO *io, GError **error);

/* net-text.c */
gboolean f2_net_text_load (F2NetModel *model, F2Weights *weights, GError **error);
void f2_net_text_free (F2NetModel *model);
/* One frame of an encoder program: its prompt's length, the slot whose
 * cross-attention keys it writes and, when its image features are not in
 * place yet (a batch's vision), its image in vimage. */
typedef struct {
  guint32 prompt_len;
  guint32 slot;
  gboolean from_vimage;
  guint32 image;
} F2NetEncodeShape;

/* The encoder for @n frames (1 .. vision_batch) together; frame i's
 * prompt ids are at buf.ids + i * max_prompt_tokens. */
F2Program *f2_net_encoder_program (F2Net *net, const F2NetEncodeShape *frames,
    guint n, GError **error);
/* One frame's part of a decoder step: its slot, its rows (beams) and its
 * reduction (k = 0: argmax, else top-k of the log-softmax). */
typedef struct {
  guint32 slot, rows, k;
} F2NetStepShape;

/* A decoder step for the rows of @n_groups frames, in order, covering cache
 * rows 0..@kv_rows-1 of every row, reading cache buffer @src of the
 * ping-pong pair and writing the other. */
F2Program *f2_net_step_program (F2Net *net, const F2NetStepShape *groups,
    guint n_groups, guint32 kv_rows, guint src, GError **error);

G_END_DECLS
