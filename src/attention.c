// Multi-head attention: scaled dot-product attention over projected Q, K, V,
// and the self/cross sublayers around it. See attention.h.
#include "attention.h"
#include <math.h>
#include <string.h>
#include "gemm.h"
#include "kernels.h"

// Below this many multiply-adds per call the (batch, head) loop runs on one
// thread: waking the team would cost more than the work. Inside the loop
// gemm runs serially in the calling thread; each output float is summed in a
// fixed order by one thread, so results do not depend on the thread count.
// (A hand-written per-head tile without gemm was tried: slower at T = 10-40,
// head size 32-64, than gemm's packed kernels.)
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
    int dropped = drop_keep && p_drop > 0.0f;
    // One seed per call, as dropout_forward draws it: value (bh, i, j) of the
    // mask is the one dropout_forward would give over the (B, NH, Tq, Tk) array.
    uint64_t seed = dropped ? rng_next(rng) : 0;
    uint32_t key_lo = (uint32_t)seed, key_hi = (uint32_t)(seed >> 32);
    uint32_t threshold = dropped ? dropout_threshold(p_drop) : 0;
    float drop_scale = dropped ? 1.0f / (1.0f - p_drop) : 1.0f;
    // One (batch, head) tile per iteration, all disjoint: scores, mask,
    // softmax, dropout and the weighted sum of values while the tile is in
    // cache, in one parallel region.
    #pragma omp parallel for schedule(static) if (work >= ATTN_PARALLEL_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *qh = q + (long)b * Tq * d->ldq + h * HS;
        const float *kh = k + (long)b * d->kv_rows * d->ldkv + h * HS;
        const float *vh = v + (long)b * d->kv_rows * d->ldkv + h * HS;
        float *p = probs + bh * att_size, *p_used = p;
        gemm(0, 1, Tq, Tk, HS, scale, qh, d->ldq, kh, d->ldkv, 0.0f, p, Tk);
        masked_softmax_forward(p, p, key_pad ? key_pad + (long)b * d->kv_rows : NULL, Tq, Tk, d->causal);
        if (dropped) {
            float *pd = probs_drop + bh * att_size;
            uint8_t *keep = drop_keep + bh * att_size;
            #pragma omp simd
            for (long j = 0; j < att_size; j++) {
                int kj = dropout_keep(key_lo, key_hi, (uint64_t)(bh * att_size + j), threshold);
                keep[j] = (uint8_t)kj;
                pd[j] = kj ? p[j] * drop_scale : 0.0f;
            }
            p_used = pd;
        }
        // Weighted sum of values, written into the head's columns of out.
        gemm(0, 0, Tq, HS, Tk, 1.0f, p_used, Tk, vh, d->ldkv, 0.0f, out + (long)b * Tq * C + h * HS, C);
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
    float drop_scale = dropped ? 1.0f / (1.0f - p_drop) : 1.0f;
    // One (batch, head) tile per iteration, as in the forward.
    #pragma omp parallel for schedule(static) if (work >= ATTN_PARALLEL_MIN_WORK)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        long q_off = (long)b * Tq * d->ldq + h * HS;
        long kv_off = (long)b * d->kv_rows * d->ldkv + h * HS;
        const float *doh = dout + (long)b * Tq * C + h * HS;
        const float *p = probs + bh * att_size, *p_used = dropped ? probs_drop + bh * att_size : p;
        float *ds = dprobs + bh * att_size;
        // dP_used = dout V^T, dV += P_used^T dout.
        gemm(0, 1, Tq, Tk, HS, 1.0f, doh, C, v + kv_off, d->ldkv, 0.0f, ds, Tk);
        gemm(1, 0, Tk, HS, Tq, 1.0f, p_used, Tk, doh, C, 1.0f, dv + kv_off, d->ldkv);
        if (dropped) {
            const uint8_t *keep = drop_keep + bh * att_size;
            #pragma omp simd
            for (long j = 0; j < att_size; j++) ds[j] = keep[j] ? ds[j] * drop_scale : 0.0f;
        }
        // Softmax backward in place, row by row: dS = P * (dP - <P, dP>).
        // Hidden keys have P = 0 and get no gradient.
        for (int i = 0; i < Tq; i++) {
            const float *pi = p + (long)i * Tk;
            float *g = ds + (long)i * Tk;
            float dot = 0.0f;
            #pragma omp simd reduction(+:dot)
            for (int j = 0; j < Tk; j++) dot += pi[j] * g[j];
            #pragma omp simd
            for (int j = 0; j < Tk; j++) g[j] = pi[j] * (g[j] - dot);
        }
        // dQ += scale dS K, dK += scale dS^T Q.
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
