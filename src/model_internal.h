// Internals shared by model.c (forward, backward) and model_decode.c
// (cached decoding): per-layer views into the stacked parameters.
#ifndef ATTN_MODEL_INTERNAL_H
#define ATTN_MODEL_INTERNAL_H
#include "model.h"

// ---------------------------------------------------------------------------
// Per-layer parameter views (the same for parameters and gradients)

typedef struct {
    MhaParams self, cross;                   // cross: decoder only
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *ln3_w, *ln3_b;   // ln3: decoder only
    float *ff1_w, *ff1_b, *ff2_w, *ff2_b;
} LayerParams;

static inline MhaParams mha_slice(float *w, float *b, float *ow, float *ob, long C, int l) {
    return (MhaParams){w + l * 3 * C * C, b + l * 3 * C, ow + l * C * C, ob + l * C};
}

static inline LayerParams enc_layer(const ModelParams *p, const ModelConfig *c, int l) {
    long C = c->d_model, F = c->d_ff;
    LayerParams lp = {0};
    lp.self = mha_slice(p->enc_qkv_w, p->enc_qkv_b, p->enc_out_w, p->enc_out_b, C, l);
    lp.ln1_w = p->enc_ln1_w + l * C; lp.ln1_b = p->enc_ln1_b + l * C;
    lp.ln2_w = p->enc_ln2_w + l * C; lp.ln2_b = p->enc_ln2_b + l * C;
    lp.ff1_w = p->enc_ff1_w + l * F * C; lp.ff1_b = p->enc_ff1_b + l * F;
    lp.ff2_w = p->enc_ff2_w + l * C * F; lp.ff2_b = p->enc_ff2_b + l * C;
    return lp;
}

static inline LayerParams dec_layer(const ModelParams *p, const ModelConfig *c, int l) {
    long C = c->d_model, F = c->d_ff;
    LayerParams lp = {0};
    lp.self = mha_slice(p->dec_qkv_w, p->dec_qkv_b, p->dec_out_w, p->dec_out_b, C, l);
    lp.cross = mha_slice(p->dec_xqkv_w, p->dec_xqkv_b, p->dec_xout_w, p->dec_xout_b, C, l);
    lp.ln1_w = p->dec_ln1_w + l * C; lp.ln1_b = p->dec_ln1_b + l * C;
    lp.ln2_w = p->dec_ln2_w + l * C; lp.ln2_b = p->dec_ln2_b + l * C;
    lp.ln3_w = p->dec_ln3_w + l * C; lp.ln3_b = p->dec_ln3_b + l * C;
    lp.ff1_w = p->dec_ff1_w + l * F * C; lp.ff1_b = p->dec_ff1_b + l * F;
    lp.ff2_w = p->dec_ff2_w + l * C * F; lp.ff2_b = p->dec_ff2_b + l * C;
    return lp;
}

#endif
