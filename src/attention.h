// Multi-head attention as torch.nn.MultiheadAttention computes it, with the
// packed in_proj of DESIGN.md: in_proj_weight (3C, C) holds the rows of Wq,
// Wk, Wv stacked, in_proj_bias (3C) likewise; out_proj is a Linear (C, C).
//
// Two levels:
// - attention_forward/backward: scaled dot-product attention over already
//   projected Q, K, V (heads are column blocks of width C/NH). Incremental
//   decoding calls it directly with a KV cache (see AttnDims.kv_rows).
// - self_attention_* / cross_attention_*: the whole sublayer, in_proj +
//   attention + out_proj, saving what backward needs in an MhaActs.
// Backward functions accumulate (+=) into their gradients, as in kernels.h.
#ifndef ATTN_ATTENTION_H
#define ATTN_ATTENTION_H
#include <stdint.h>
#include "rng.h"

// Shapes of one attention call. Q is (B, Tq) rows of stride ldq; K and V are
// (B, kv_rows) rows of stride ldkv each, of which the first Tk rows per batch
// entry are attended (kv_rows > Tk for a cache filled up to Tk).
typedef struct {
    int B;          // batch entries
    int Tq, Tk;     // query positions, key positions attended
    int C, NH;      // model width and heads; head h uses columns [h*C/NH, (h+1)*C/NH)
    int ldq;        // floats between query rows: 3C for packed self-attention, C otherwise
    int ldkv;       // floats between key (and value) rows: 3C packed, 2C cross, C for a cache
    int kv_rows;    // key/value (and key_pad) rows per batch entry, >= Tk
    int causal;     // query i sees keys j <= i + (Tk - Tq)
} AttnDims;

// out (B, Tq, C) = softmax(Q K^T / sqrt(C/NH), masked) V per head, heads
// concatenated. key_pad (B, kv_rows) marks hidden keys (non-zero), or NULL.
// probs (B, NH, Tq, Tk) keeps the softmax. With drop_keep != NULL and
// p_drop > 0 the probabilities are dropped out into probs_drop (same shape)
// with the mask in drop_keep; otherwise probs_drop is not touched (may be NULL).
void attention_forward(float *out, float *probs, float *probs_drop, uint8_t *drop_keep,
                       const float *q, const float *k, const float *v, const uint8_t *key_pad,
                       const AttnDims *d, float p_drop, Rng *rng);
// dq, dk, dv (+=, laid out as q, k, v; dk and dv may point into one packed
// buffer as q, k, v do). dprobs (B, NH, Tq, Tk) is scratch. The dropped
// probabilities are rebuilt from probs and drop_keep (probs_drop is unused).
void attention_backward(float *dq, float *dk, float *dv, float *dprobs,
                        const float *dout, const float *q, const float *k, const float *v,
                        const float *probs, const float *probs_drop, const uint8_t *drop_keep,
                        const AttnDims *d, float p_drop);

// ---------------------------------------------------------------------------
// Whole sublayers.

// What one attention sublayer keeps for backward.
typedef struct {
    float *q;            // self: (B, Tq, 3C) packed [q | k | v]; cross: (B, Tq, C) queries
    float *kv;           // cross: (B, Tk, 2C) packed [k | v] of the memory; self: unused
    float *att;          // (B, Tq, C) heads concatenated, the input of out_proj
    float *probs;        // (B, NH, Tq, Tk) attention probabilities
    float *probs_drop;   // (B, NH, Tq, Tk) after dropout, or NULL: then not stored
    uint8_t *drop_keep;  // (B, NH, Tq, Tk) dropout mask, or NULL: then not stored
    float *out;          // (B, Tq, C) out_proj output
    uint64_t drop_seed;  // the attention dropout's seed (the mask is rebuilt from it)
} MhaActs;

// The parameters of one nn.MultiheadAttention (or their gradients).
typedef struct {
    float *in_w;         // (3C, C) in_proj_weight: rows Wq, Wk, Wv
    float *in_b;         // (3C)
    float *out_w;        // (C, C) out_proj.weight
    float *out_b;        // (C)
} MhaParams;

// Scratch for backward, sized for the largest call.
typedef struct {
    float *datt;         // (B, Tq, C)
    float *dq;           // (B, Tq, 3C) (self) or (B, Tq, C) (cross)
    float *dkv;          // (B, Tk, 2C) (cross)
    float *dprobs;       // (B, NH, Tq, Tk)
    float *att;          // (B, Tq, C), or NULL: when given, the backward rebuilds the
                         // attention output (out_proj's input) here from probs, the
                         // dropout seed and the values, instead of reading a->att
                         // (a model then need not keep one per sublayer)
} MhaScratch;

// Self-attention of x (B, T, C) over itself; key_pad (B, T) or NULL; causal
// for the decoder. Fills a->q (packed qkv), a->att, a->probs, a->out.
// Dropout on the probabilities when p_drop > 0 and rng != NULL: one seed is
// drawn into a->drop_seed and the backward rebuilds the mask from it; the
// mask and dropped probabilities are also stored when a->drop_keep and
// a->probs_drop are non-NULL (for inspection; nothing needs them).
// The backward's p_drop must be the forward's (0 when it had no dropout).
void self_attention_forward(MhaActs *a, const float *x, const MhaParams *w,
                            const uint8_t *key_pad, int B, int T, int C, int NH, int causal,
                            float p_drop, Rng *rng);
// dx (B, T, C) +=, g (+=) the parameter gradients; dout (B, T, C) is the
// gradient of a->out.
void self_attention_backward(float *dx, const MhaParams *g, const MhaScratch *s,
                             const float *dout, const MhaActs *a, const float *x,
                             const MhaParams *w, int B, int T, int C, int NH, int causal,
                             float p_drop);

// Cross-attention: queries from x (B, Tq, C), keys and values from memory
// mem (B, Tk, C), mem_pad (B, Tk) or NULL. in_proj rows [0, C) act on x and
// rows [C, 3C) on mem, as in nn.MultiheadAttention(query=x, key=value=mem).
void cross_attention_forward(MhaActs *a, const float *x, const float *mem, const MhaParams *w,
                             const uint8_t *mem_pad, int B, int Tq, int Tk, int C, int NH,
                             float p_drop, Rng *rng);
// Projects the memory into packed [k | v] (B, Tk, 2C) once, as a decoder
// with a cache needs it for every step.
void cross_attention_project_memory(float *kv, const float *mem, const MhaParams *w,
                                    int B, int Tk, int C);
void cross_attention_backward(float *dx, float *dmem, const MhaParams *g, const MhaScratch *s,
                              const float *dout, const MhaActs *a, const float *x,
                              const float *mem, const MhaParams *w,
                              int B, int Tq, int Tk, int C, int NH, float p_drop);

#endif
