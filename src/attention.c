// Multi-head attention: scaled dot-product attention over projected Q, K, V,
// and the self/cross sublayers around it. See attention.h.
#include "attention.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "gemm.h"
#include "threads.h"
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

// Per-thread tile of dropped-out probabilities when they are not stored,
// grown on first use and kept (as gemm's packing buffers): a steady training
// step allocates nothing.
static _Thread_local float *tls_tile;
static _Thread_local size_t tls_tile_floats;

static float *tile_scratch(long floats) {
    if ((size_t)floats > tls_tile_floats) {
        free(tls_tile);
        tls_tile = malloc_check((size_t)floats * sizeof(float));
        tls_tile_floats = (size_t)floats;
    }
    return tls_tile;
}

// How the probabilities are dropped out in one call: off, by a stored mask
// (keep != NULL), or by the mask the seed gives (dropout_keep of the flat
// (B, NH, Tq, Tk) index, the mask dropout_forward would draw).
typedef struct {
    int on;
    const uint8_t *keep;
    uint32_t key_lo, key_hi, threshold;
    float scale;     // 1 / (1 - p)
} ProbDropout;

static ProbDropout prob_dropout(float p, const uint8_t *keep, uint64_t seed) {
    ProbDropout pd = {p > 0.0f, keep, (uint32_t)seed, (uint32_t)(seed >> 32), 0, 1.0f};
    if (pd.on) { pd.threshold = dropout_threshold(p); pd.scale = 1.0f / (1.0f - p); }
    return pd;
}

// dst (n) = src dropped out by the mask at flat indices [base, base + n);
// dst may be src. Two loops, so that each vectorizes (the hash one has no
// loads but src).
static void apply_prob_dropout(float *dst, const float *src, long n, long base, const ProbDropout *pd) {
    if (pd->keep) {
        const uint8_t *keep = pd->keep + base;
        #pragma omp simd
        for (long j = 0; j < n; j++) dst[j] = keep[j] ? src[j] * pd->scale : 0.0f;
        return;
    }
    uint32_t key_lo = pd->key_lo, key_hi = pd->key_hi, threshold = pd->threshold;
    float scale = pd->scale;
    #pragma omp simd
    for (long j = 0; j < n; j++)
        dst[j] = dropout_keep(key_lo, key_hi, (uint64_t)(base + j), threshold) ? src[j] * scale : 0.0f;
}

// <a, b> over n values. Short rows take a plain loop: an `omp simd`
// reduction ends in a pass over its per-lane array, which outweighs a row
// of 10-30 keys (as in kernels.c's softmax).
static float row_dot(const float *a, const float *b, int n) {
    float dot = 0.0f;
    if (n < 32) {
        for (int j = 0; j < n; j++) dot += a[j] * b[j];
        return dot;
    }
    #pragma omp simd reduction(+:dot)
    for (int j = 0; j < n; j++) dot += a[j] * b[j];
    return dot;
}

// The operands of one call of forward_core, backward_core or
// recompute_weighted_values, whose loop bodies run one (batch, head) tile
// per index on the pool (tiles are disjoint).
typedef struct {
    float *out, *probs, *store_drop;
    uint8_t *store_keep;
    float *dq, *dk, *dv, *dprobs;
    const float *q, *k, *v, *dout, *probs_in;
    const uint8_t *key_pad;
    const AttnDims *d;
    const ProbDropout *pd;
} AttnTiles;

static void run_tiles(ThreadsRange body, const AttnTiles *t) {
    const AttnDims *d = t->d;
    long work = (long)d->B * d->NH * d->Tq * d->Tk * (d->C / d->NH);
    threads_for((long)d->B * d->NH, work >= ATTN_PARALLEL_MIN_WORK, body, (void *)t);
}

// Scores, mask, softmax, dropout and the weighted sum of values of a tile
// while it is in cache. With dropout on, the mask goes to store_keep and the
// dropped probabilities to store_drop when those are non-NULL (else to a
// per-thread tile).
static void forward_tiles(void *arg, long bh0, long bh1) {
    const AttnTiles *t = arg;
    const AttnDims *d = t->d;
    const ProbDropout *pd = t->pd;
    int Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    long att_size = (long)Tq * Tk;
    for (long bh = bh0; bh < bh1; bh++) {
        int b = (int)(bh / NH), h = (int)(bh % NH);
        long base = bh * att_size;
        const float *qh = t->q + (long)b * Tq * d->ldq + h * HS;
        const float *kh = t->k + (long)b * d->kv_rows * d->ldkv + h * HS;
        const float *vh = t->v + (long)b * d->kv_rows * d->ldkv + h * HS;
        float *p = t->probs + base, *p_used = p;
        gemm(0, 1, Tq, Tk, HS, scale, qh, d->ldq, kh, d->ldkv, 0.0f, p, Tk);
        masked_softmax_forward(p, p, t->key_pad ? t->key_pad + (long)b * d->kv_rows : NULL, Tq, Tk, d->causal);
        if (pd->on) {
            p_used = t->store_drop ? t->store_drop + base : tile_scratch(att_size);
            apply_prob_dropout(p_used, p, att_size, base, pd);   // pd has no stored mask here
            if (t->store_keep)   // kept for inspection only (attention_forward's interface)
                for (long j = 0; j < att_size; j++)
                    t->store_keep[base + j] = (uint8_t)dropout_keep(pd->key_lo, pd->key_hi, (uint64_t)(base + j),
                                                                    pd->threshold);
        }
        // Weighted sum of values, written into the head's columns of out.
        gemm(0, 0, Tq, HS, Tk, 1.0f, p_used, Tk, vh, d->ldkv, 0.0f, t->out + (long)b * Tq * C + h * HS, C);
    }
}

// The forward of both interfaces.
static void forward_core(float *out, float *probs, float *store_drop, uint8_t *store_keep,
                         const float *q, const float *k, const float *v, const uint8_t *key_pad,
                         const AttnDims *d, const ProbDropout *pd) {
    AttnTiles t = {.out = out, .probs = probs, .store_drop = store_drop, .store_keep = store_keep,
                   .q = q, .k = k, .v = v, .key_pad = key_pad, .d = d, .pd = pd};
    run_tiles(forward_tiles, &t);
}

static void backward_tiles(void *arg, long bh0, long bh1) {
    const AttnTiles *t = arg;
    const AttnDims *d = t->d;
    const ProbDropout *pd = t->pd;
    int Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    long att_size = (long)Tq * Tk;
    for (long bh = bh0; bh < bh1; bh++) {
        int b = (int)(bh / NH), h = (int)(bh % NH);
        long base = bh * att_size;
        long q_off = (long)b * Tq * d->ldq + h * HS;
        long kv_off = (long)b * d->kv_rows * d->ldkv + h * HS;
        const float *doh = t->dout + (long)b * Tq * C + h * HS;
        const float *p = t->probs_in + base;
        float *ds = t->dprobs + base;
        // dV += P_used^T dout, with P_used rebuilt in the scratch tile.
        if (pd->on) apply_prob_dropout(ds, p, att_size, base, pd);
        gemm(1, 0, Tk, HS, Tq, 1.0f, pd->on ? ds : p, Tk, doh, C, 1.0f, t->dv + kv_off, d->ldkv);
        // dP_used = dout V^T, then through the dropout: dP = dP_used * keep / (1 - p).
        gemm(0, 1, Tq, Tk, HS, 1.0f, doh, C, t->v + kv_off, d->ldkv, 0.0f, ds, Tk);
        if (pd->on) apply_prob_dropout(ds, ds, att_size, base, pd);
        // Softmax backward in place, row by row: dS = P * (dP - <P, dP>).
        // Hidden keys have P = 0 and get no gradient.
        for (int i = 0; i < Tq; i++) {
            const float *pi = p + (long)i * Tk;
            float *g = ds + (long)i * Tk;
            float dot = row_dot(pi, g, Tk);
            #pragma omp simd
            for (int j = 0; j < Tk; j++) g[j] = pi[j] * (g[j] - dot);
        }
        // dQ += scale dS K, dK += scale dS^T Q.
        gemm(0, 0, Tq, HS, Tk, scale, ds, Tk, t->k + kv_off, d->ldkv, 1.0f, t->dq + q_off, d->ldq);
        gemm(1, 0, Tk, HS, Tq, scale, ds, Tk, t->q + q_off, d->ldq, 1.0f, t->dk + kv_off, d->ldkv);
    }
}

// The backward of both interfaces; dprobs (B, NH, Tq, Tk) is scratch.
static void backward_core(float *dq, float *dk, float *dv, float *dprobs,
                          const float *dout, const float *q, const float *k, const float *v,
                          const float *probs, const AttnDims *d, const ProbDropout *pd) {
    AttnTiles t = {.dq = dq, .dk = dk, .dv = dv, .dprobs = dprobs, .dout = dout, .q = q, .k = k, .v = v,
                   .probs_in = probs, .d = d, .pd = pd};
    run_tiles(backward_tiles, &t);
}

static void weighted_values_tiles(void *arg, long bh0, long bh1) {
    const AttnTiles *t = arg;
    const AttnDims *d = t->d;
    int Tq = d->Tq, Tk = d->Tk, C = d->C, NH = d->NH, HS = C / NH;
    long att_size = (long)Tq * Tk;
    for (long bh = bh0; bh < bh1; bh++) {
        int b = (int)(bh / NH), h = (int)(bh % NH);
        long base = bh * att_size;
        const float *p = t->probs_in + base;
        if (t->pd->on) {
            float *pu = tile_scratch(att_size);
            apply_prob_dropout(pu, p, att_size, base, t->pd);
            p = pu;
        }
        gemm(0, 0, Tq, HS, Tk, 1.0f, p, Tk, t->v + (long)b * d->kv_rows * d->ldkv + h * HS, d->ldkv, 0.0f,
             t->out + (long)b * Tq * C + h * HS, C);
    }
}

// out (B, Tq, C) = P_used V per (batch, head) tile, P_used rebuilt from probs
// and the dropout: the forward's last product, bit for bit (the same gemm
// on the same values), for a backward that did not keep the output.
static void recompute_weighted_values(float *out, const float *probs, const float *v, const AttnDims *d,
                                      const ProbDropout *pd) {
    AttnTiles t = {.out = out, .probs_in = probs, .v = v, .d = d, .pd = pd};
    run_tiles(weighted_values_tiles, &t);
}

void attention_forward(float *out, float *probs, float *probs_drop, uint8_t *drop_keep,
                       const float *q, const float *k, const float *v, const uint8_t *key_pad,
                       const AttnDims *d, float p_drop, Rng *rng) {
    int dropped = drop_keep && p_drop > 0.0f;
    ProbDropout pd = prob_dropout(dropped ? p_drop : 0.0f, NULL, dropped ? rng_next(rng) : 0);
    forward_core(out, probs, probs_drop, drop_keep, q, k, v, key_pad, d, &pd);
}

void attention_backward(float *dq, float *dk, float *dv, float *dprobs,
                        const float *dout, const float *q, const float *k, const float *v,
                        const float *probs, const float *probs_drop, const uint8_t *drop_keep,
                        const AttnDims *d, float p_drop) {
    (void)probs_drop;   // rebuilt from probs and the mask
    int dropped = drop_keep && p_drop > 0.0f;
    ProbDropout pd = prob_dropout(dropped ? p_drop : 0.0f, drop_keep, 0);
    backward_core(dq, dk, dv, dprobs, dout, q, k, v, probs, d, &pd);
}

// ---------------------------------------------------------------------------
// Self-attention sublayer

// A sublayer's dropout: on when p > 0 and rng is given; draws the seed into
// a->drop_seed (the backward rebuilds the mask from it).
static ProbDropout sublayer_dropout_forward(MhaActs *a, float p_drop, Rng *rng) {
    int on = p_drop > 0.0f && rng;
    a->drop_seed = on ? rng_next(rng) : 0;
    return prob_dropout(on ? p_drop : 0.0f, NULL, a->drop_seed);
}

void self_attention_forward(MhaActs *a, const float *x, const MhaParams *w,
                            const uint8_t *key_pad, int B, int T, int C, int NH, int causal,
                            float p_drop, Rng *rng) {
    AttnDims d = {B, T, T, C, NH, 3 * C, 3 * C, T, causal};
    ProbDropout pd = sublayer_dropout_forward(a, p_drop, rng);
    linear_forward(a->q, x, w->in_w, w->in_b, B * T, C, 3 * C);
    forward_core(a->att, a->probs, a->probs_drop, a->drop_keep, a->q, a->q + C, a->q + 2 * C, key_pad, &d, &pd);
    linear_forward(a->out, a->att, w->out_w, w->out_b, B * T, C, C);
}

void self_attention_backward(float *dx, const MhaParams *g, const MhaScratch *s,
                             const float *dout, const MhaActs *a, const float *x,
                             const MhaParams *w, int B, int T, int C, int NH, int causal,
                             float p_drop) {
    AttnDims d = {B, T, T, C, NH, 3 * C, 3 * C, T, causal};
    long BT = (long)B * T;
    ProbDropout pd = prob_dropout(p_drop, NULL, a->drop_seed);
    const float *att = a->att;
    if (s->att) {   // a->att was not kept: rebuild it
        recompute_weighted_values(s->att, a->probs, a->q + 2 * C, &d, &pd);
        att = s->att;
    }
    memset(s->datt, 0, BT * C * sizeof(float));
    linear_backward(s->datt, g->out_w, g->out_b, dout, att, w->out_w, B * T, C, C);
    memset(s->dq, 0, BT * 3 * C * sizeof(float));
    backward_core(s->dq, s->dq + C, s->dq + 2 * C, s->dprobs, s->datt, a->q, a->q + C, a->q + 2 * C, a->probs,
                  &d, &pd);
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
    ProbDropout pd = sublayer_dropout_forward(a, p_drop, rng);
    linear_forward(a->q, x, w->in_w, w->in_b, B * Tq, C, C);
    cross_attention_project_memory(a->kv, mem, w, B, Tk, C);
    forward_core(a->att, a->probs, a->probs_drop, a->drop_keep, a->q, a->kv, a->kv + C, mem_pad, &d, &pd);
    linear_forward(a->out, a->att, w->out_w, w->out_b, B * Tq, C, C);
}

void cross_attention_backward(float *dx, float *dmem, const MhaParams *g, const MhaScratch *s,
                              const float *dout, const MhaActs *a, const float *x,
                              const float *mem, const MhaParams *w,
                              int B, int Tq, int Tk, int C, int NH, float p_drop) {
    AttnDims d = {B, Tq, Tk, C, NH, C, 2 * C, Tk, 0};
    ProbDropout pd = prob_dropout(p_drop, NULL, a->drop_seed);
    const float *att = a->att;
    if (s->att) {   // a->att was not kept: rebuild it
        recompute_weighted_values(s->att, a->probs, a->kv + C, &d, &pd);
        att = s->att;
    }
    memset(s->datt, 0, (long)B * Tq * C * sizeof(float));
    linear_backward(s->datt, g->out_w, g->out_b, dout, att, w->out_w, B * Tq, C, C);
    memset(s->dq, 0, (long)B * Tq * C * sizeof(float));
    memset(s->dkv, 0, (long)B * Tk * 2 * C * sizeof(float));
    backward_core(s->dq, s->dkv, s->dkv + C, s->dprobs, s->datt, a->q, a->kv, a->kv + C, a->probs, &d, &pd);
    linear_backward(dx, g->in_w, g->in_b, s->dq, x, w->in_w, B * Tq, C, C);
    linear_backward(dmem, g->in_w + (long)C * C, g->in_b + C, s->dkv, mem,
                    w->in_w + (long)C * C, B * Tk, C, 2 * C);
}
