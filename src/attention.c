// Multi-head attention: scaled dot-product attention over projected Q, K, V,
// and the self/cross sublayers around it. See attention.h.
#include "attention.h"
#include <math.h>
#include <string.h>
#include "gemm.h"
#include "kernels.h"

// Below this many multiply-adds per loop the (batch, head) loop runs on one
// thread: waking the team would cost more than the work.
#define ATTN_PARALLEL_MIN_WORK 32768L

// ---------------------------------------------------------------------------
// Scaled dot-product attention

void attention_forward(float *out, float *probs, float *probs_drop, uint8_t *drop_keep,
                       const float *q, const float *k, const float *v, const uint8_t *key_pad,
                       const AttnDims *d, float p_drop, Rng *rng) {
    int B = d->B, Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    long att_size = (long)Tq * Tk;
    long work = (long)B * NH * att_size * HS;
    // Scores and softmax: one (batch, head) per iteration, all disjoint.
    #pragma omp parallel for schedule(static) if (work >= ATTN_PARALLEL_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *qh = q + (long)b * Tq * d->ldq + h * HS;
        const float *kh = k + (long)b * d->kv_rows * d->ldkv + h * HS;
        float *p = probs + bh * att_size;
        gemm(0, 1, Tq, Tk, HS, scale, qh, d->ldq, kh, d->ldkv, 0.0f, p, Tk);
        masked_softmax_forward(p, p, key_pad ? key_pad + (long)b * d->kv_rows : NULL, Tq, Tk, d->causal);
    }
    const float *p_used = probs;
    if (drop_keep && p_drop > 0.0f) {
        dropout_forward(probs_drop, drop_keep, probs, B * NH * att_size, p_drop, rng);
        p_used = probs_drop;
    }
    // Weighted sum of values, written into the head's columns of out.
    #pragma omp parallel for schedule(static) if (work >= ATTN_PARALLEL_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *vh = v + (long)b * d->kv_rows * d->ldkv + h * HS;
        float *oh = out + (long)b * Tq * C + h * HS;
        gemm(0, 0, Tq, HS, Tk, 1.0f, p_used + bh * att_size, Tk, vh, d->ldkv, 0.0f, oh, C);
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *dprobs,
                        const float *dout, const float *q, const float *k, const float *v,
                        const float *probs, const float *probs_drop, const uint8_t *drop_keep,
                        const AttnDims *d, float p_drop) {
    int B = d->B, Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    long att_size = (long)Tq * Tk;
    long work = (long)B * NH * att_size * HS;
    int dropped = drop_keep && p_drop > 0.0f;
    const float *p_used = dropped ? probs_drop : probs;
    // dprobs = dout V^T, dV += P_used^T dout.
    #pragma omp parallel for schedule(static) if (work >= ATTN_PARALLEL_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        long kv_off = (long)b * d->kv_rows * d->ldkv + h * HS;
        const float *doh = dout + (long)b * Tq * C + h * HS;
        gemm(0, 1, Tq, Tk, HS, 1.0f, doh, C, v + kv_off, d->ldkv, 0.0f, dprobs + bh * att_size, Tk);
        gemm(1, 0, Tk, HS, Tq, 1.0f, p_used + bh * att_size, Tk, doh, C, 1.0f, dv + kv_off, d->ldkv);
    }
    if (dropped) dropout_backward(dprobs, drop_keep, B * NH * att_size, p_drop);
    // Softmax backward in place, row by row: dS = P * (dP - <P, dP>). Hidden
    // keys have P = 0 and get no gradient.
    #pragma omp parallel for schedule(static) if (work >= ATTN_PARALLEL_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        for (int i = 0; i < Tq; i++) {
            const float *p = probs + bh * att_size + (long)i * Tk;
            float *g = dprobs + bh * att_size + (long)i * Tk;
            float dot = 0.0f;
            #pragma omp simd reduction(+:dot)
            for (int j = 0; j < Tk; j++) dot += p[j] * g[j];
            #pragma omp simd
            for (int j = 0; j < Tk; j++) g[j] = p[j] * (g[j] - dot);
        }
    }
    // dQ += scale dS K, dK += scale dS^T Q.
    #pragma omp parallel for schedule(static) if (work >= ATTN_PARALLEL_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        long q_off = (long)b * Tq * d->ldq + h * HS;
        long kv_off = (long)b * d->kv_rows * d->ldkv + h * HS;
        const float *ds = dprobs + bh * att_size;
        gemm(0, 0, Tq, HS, Tk, scale, ds, Tk, k + kv_off, d->ldkv, 1.0f, dq + q_off, d->ldq);
        gemm(1, 0, Tk, HS, Tq, scale, ds, Tk, q + q_off, d->ldq, 1.0f, dk + kv_off, d->ldkv);
    }
}

// ---------------------------------------------------------------------------
// Self-attention sublayer

void self_attention_forward(MhaActs *a, const float *x, const MhaParams *w,
                            const uint8_t *key_pad, int B, int T, int C, int NH, int causal,
                            float p_drop, Rng *rng) {
    AttnDims d = {B, T, T, C, NH, 3 * C, 3 * C, T, causal};
    linear_forward(a->q, x, w->in_w, w->in_b, B * T, C, 3 * C);
    attention_forward(a->att, a->probs, a->probs_drop, a->drop_keep,
                      a->q, a->q + C, a->q + 2 * C, key_pad, &d, p_drop, rng);
    linear_forward(a->out, a->att, w->out_w, w->out_b, B * T, C, C);
}

void self_attention_backward(float *dx, const MhaParams *g, const MhaScratch *s,
                             const float *dout, const MhaActs *a, const float *x,
                             const MhaParams *w, int B, int T, int C, int NH, int causal,
                             float p_drop) {
    AttnDims d = {B, T, T, C, NH, 3 * C, 3 * C, T, causal};
    long BT = (long)B * T;
    memset(s->datt, 0, BT * C * sizeof(float));
    linear_backward(s->datt, g->out_w, g->out_b, dout, a->att, w->out_w, B * T, C, C);
    memset(s->dq, 0, BT * 3 * C * sizeof(float));
    attention_backward(s->dq, s->dq + C, s->dq + 2 * C, s->dprobs, s->datt,
                       a->q, a->q + C, a->q + 2 * C, a->probs, a->probs_drop, a->drop_keep,
                       &d, p_drop);
    linear_backward(dx, g->in_w, g->in_b, s->dq, x, w->in_w, B * T, C, 3 * C);
}

// ---------------------------------------------------------------------------
// Cross-attention sublayer

void cross_attention_project_memory(float *kv, const float *mem, const MhaParams *w,
                                    int B, int Tk, int C) {
    linear_forward(kv, mem, w->in_w + (long)C * C, w->in_b + C, B * Tk, C, 2 * C);
}

void cross_attention_forward(MhaActs *a, const float *x, const float *mem, const MhaParams *w,
                             const uint8_t *mem_pad, int B, int Tq, int Tk, int C, int NH,
                             float p_drop, Rng *rng) {
    AttnDims d = {B, Tq, Tk, C, NH, C, 2 * C, Tk, 0};
    linear_forward(a->q, x, w->in_w, w->in_b, B * Tq, C, C);
    cross_attention_project_memory(a->kv, mem, w, B, Tk, C);
    attention_forward(a->att, a->probs, a->probs_drop, a->drop_keep,
                      a->q, a->kv, a->kv + C, mem_pad, &d, p_drop, rng);
    linear_forward(a->out, a->att, w->out_w, w->out_b, B * Tq, C, C);
}

void cross_attention_backward(float *dx, float *dmem, const MhaParams *g, const MhaScratch *s,
                              const float *dout, const MhaActs *a, const float *x,
                              const float *mem, const MhaParams *w,
                              int B, int Tq, int Tk, int C, int NH, float p_drop) {
    AttnDims d = {B, Tq, Tk, C, NH, C, 2 * C, Tk, 0};
    memset(s->datt, 0, (long)B * Tq * C * sizeof(float));
    linear_backward(s->datt, g->out_w, g->out_b, dout, a->att, w->out_w, B * Tq, C, C);
    memset(s->dq, 0, (long)B * Tq * C * sizeof(float));
    memset(s->dkv, 0, (long)B * Tk * 2 * C * sizeof(float));
    attention_backward(s->dq, s->dkv, s->dkv + C, s->dprobs, s->datt,
                       a->q, a->kv, a->kv + C, a->probs, a->probs_drop, a->drop_keep,
                       &d, p_drop);
    linear_backward(dx, g->in_w, g->in_b, s->dq, x, w->in_w, B * Tq, C, C);
    linear_backward(dmem, g->in_w + (long)C * C, g->in_b + C, s->dkv, mem,
                    w->in_w + (long)C * C, B * Tk, C, 2 * C);
}
