// Layer kernels, forward and backward side by side. See kernels.h for the
// conventions (accumulating backward, deterministic OpenMP loops).
#include "kernels.h"
#include <math.h>
#include <string.h>
#include "gemm.h"

// Reductions over rows (dbias, dweight of LayerNorm, embedding tables) split
// the columns into blocks of this width: each thread owns whole columns, so
// sums run in row order whatever the thread count.
#define COL_BLOCK 64

// Below this many values a loop runs on one thread: waking the team costs
// more than the work (and much more when the cores are shared).
#define PARALLEL_MIN_WORK 16384L

// Inner loops carry `#pragma omp simd`: gcc's -O2 vectorizes only loops whose
// trip count is known, and `omp simd` asks for it explicitly (reductions
// then add in vector lanes; the order is fixed at compile time, so results
// stay deterministic).

// Sums the rows of x (N, C) into y (C), y += sum_n x[n, :].
static void column_sums_accumulate(float *y, const float *x, int N, int C) {
    int n_blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int blk = 0; blk < n_blocks; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        float acc[COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = x + (long)n * C + c0;
            #pragma omp simd
            for (int c = 0; c < c1 - c0; c++) acc[c] += row[c];
        }
        for (int c = c0; c < c1; c++) y[c] += acc[c - c0];
    }
}

// ---------------------------------------------------------------------------
// Linear

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int IC, int OC) {
    gemm(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    if (!bias) return;
    #pragma omp parallel for schedule(static) if ((long)N * OC >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        float *row = out + (long)n * OC;
        #pragma omp simd
        for (int o = 0; o < OC; o++) row[o] += bias[o];
    }
}

void linear_backward(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     int N, int IC, int OC) {
    if (dinp) gemm(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    gemm(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) column_sums_accumulate(dbias, dout, N, OC);
}

// ---------------------------------------------------------------------------
// LayerNorm

// The LayerNorm input is x, or x + x2 when `residual` (the sum is formed in
// the loops, never stored, rounded exactly as residual_forward rounds it).
// The row functions are forced inline with a constant `residual` into each
// public kernel's parallel loop, so each gets its own straight vector loops.

static inline __attribute__((always_inline)) void layernorm_forward_row(
        float *y, float *mean, float *rstd, const float *x, const float *x2, int residual,
        const float *weight, const float *bias, int C) {
    // Two passes in double: the variance of a row with a large mean stays
    // exact, and C is small next to the matmuls around it.
    double sum = 0.0;
    #pragma omp simd reduction(+:sum)
    for (int c = 0; c < C; c++) sum += residual ? x[c] + x2[c] : x[c];
    double m = sum / C;
    double var = 0.0;
    #pragma omp simd reduction(+:var)
    for (int c = 0; c < C; c++) { double d = (residual ? x[c] + x2[c] : x[c]) - m; var += d * d; }
    float s = (float)(1.0 / sqrt(var / C + LAYERNORM_EPS));
    float mf = (float)m;
    #pragma omp simd
    for (int c = 0; c < C; c++) y[c] = ((residual ? x[c] + x2[c] : x[c]) - mf) * s * weight[c] + bias[c];
    *mean = mf;
    *rstd = s;
}

void layernorm_forward(float *out, float *mean, float *rstd,
                       const float *inp, const float *weight, const float *bias, int N, int C) {
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++)
        layernorm_forward_row(out + (long)n * C, mean + n, rstd + n, inp + (long)n * C, NULL, 0, weight, bias, C);
}

void layernorm_residual_forward(float *out, float *mean, float *rstd, const float *a, const float *b,
                                const float *weight, const float *bias, int N, int C) {
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++)
        layernorm_forward_row(out + (long)n * C, mean + n, rstd + n, a + (long)n * C, b + (long)n * C, 1,
                              weight, bias, C);
}

void layernorm_residual_recompute(float *out, const float *a, const float *b, const float *weight,
                                  const float *bias, const float *mean, const float *rstd, int N, int C) {
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        const float *x = a + (long)n * C, *x2 = b + (long)n * C;
        float *y = out + (long)n * C, mf = mean[n], s = rstd[n];
        // the expression of layernorm_forward_row, so the same bits
        #pragma omp simd
        for (int c = 0; c < C; c++) y[c] = ((x[c] + x2[c]) - mf) * s * weight[c] + bias[c];
    }
}

// dx (C) += the input gradient of one row.
static inline __attribute__((always_inline)) void layernorm_backward_row(
        float *dx, const float *dy, const float *x, const float *x2, int residual, const float *weight,
        float m, float s, int C) {
    float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    #pragma omp simd reduction(+:dnorm_mean, dnorm_norm_mean)
    for (int c = 0; c < C; c++) {
        float norm = ((residual ? x[c] + x2[c] : x[c]) - m) * s;
        float dnorm = dy[c] * weight[c];
        dnorm_mean += dnorm;
        dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= C;
    dnorm_norm_mean /= C;
    #pragma omp simd
    for (int c = 0; c < C; c++) {
        float norm = ((residual ? x[c] + x2[c] : x[c]) - m) * s;
        float dnorm = dy[c] * weight[c];
        dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

// dweight, dbias (c1 - c0) += the sums over rows of columns [c0, c1).
static inline __attribute__((always_inline)) void layernorm_param_grads_block(
        float *dweight, float *dbias, const float *dout, const float *inp, const float *inp2, int residual,
        const float *mean, const float *rstd, int N, int C, int c0, int c1) {
    float dw[COL_BLOCK] = {0}, db[COL_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
        const float *dy = dout + (long)n * C + c0, *x = inp + (long)n * C + c0;
        const float *x2 = residual ? inp2 + (long)n * C + c0 : x;
        float m = mean[n], s = rstd[n];
        #pragma omp simd
        for (int c = 0; c < c1 - c0; c++) {
            dw[c] += dy[c] * ((residual ? x[c] + x2[c] : x[c]) - m) * s;
            db[c] += dy[c];
        }
    }
    for (int c = c0; c < c1; c++) { dweight[c] += dw[c - c0]; dbias[c] += db[c - c0]; }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int N, int C) {
    // dinp: rows are independent.
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++)
        layernorm_backward_row(dinp + (long)n * C, dout + (long)n * C, inp + (long)n * C, NULL, 0, weight,
                               mean[n], rstd[n], C);
    // dweight, dbias: sums over rows, by column blocks.
    int n_blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int blk = 0; blk < n_blocks; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        layernorm_param_grads_block(dweight, dbias, dout, inp, NULL, 0, mean, rstd, N, C, c0, c1);
    }
}

void layernorm_residual_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *a, const float *b, const float *weight,
                                 const float *mean, const float *rstd, int N, int C) {
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++)
        layernorm_backward_row(dinp + (long)n * C, dout + (long)n * C, a + (long)n * C, b + (long)n * C, 1,
                               weight, mean[n], rstd[n], C);
    int n_blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
    #pragma omp parallel for schedule(static) if ((long)N * C >= PARALLEL_MIN_WORK)
    for (int blk = 0; blk < n_blocks; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        layernorm_param_grads_block(dweight, dbias, dout, a, b, 1, mean, rstd, N, C, c0, c1);
    }
}

// ---------------------------------------------------------------------------
// Activations

void relu_forward(float *out, const float *inp, long n) {
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *dout, const float *inp, long n) {
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

void relu_dropout_backward(float *d, const float *act, long n, float p) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) d[i] = act[i] > 0.0f ? d[i] * scale : 0.0f;
}

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

void gelu_forward(float *out, const float *inp, long n) {
    #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * (float)INV_SQRT2));
    }
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x).
void gelu_backward(float *dinp, const float *dout, const float *inp, long n) {
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * (float)INV_SQRT2));
        float pdf = (float)INV_SQRT_2PI * expf_fast(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

// ---------------------------------------------------------------------------
// Dropout

void dropout_forward(float *out, uint8_t *keep, const float *inp, long n, float p, Rng *rng) {
    if (p <= 0.0f || !keep) {
        if (out != inp) memcpy(out, inp, (size_t)n * sizeof(float));
        return;
    }
    uint64_t seed = rng_next(rng);
    float scale = 1.0f / (1.0f - p);
    uint32_t threshold = dropout_threshold(p);
    uint32_t key_lo = (uint32_t)seed, key_hi = (uint32_t)(seed >> 32);
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) {
        uint8_t k = dropout_keep(key_lo, key_hi, (uint64_t)i, threshold);
        keep[i] = k;
        out[i] = k ? inp[i] * scale : 0.0f;
    }
}

void dropout_backward(float *d, const uint8_t *keep, long n, float p) {
    if (p <= 0.0f || !keep) return;
    float scale = 1.0f / (1.0f - p);
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) d[i] = keep[i] ? d[i] * scale : 0.0f;
}

void dropout_forward_seeded(float *out, const float *inp, long n, float p, uint64_t seed) {
    if (p <= 0.0f) {
        if (out != inp) memcpy(out, inp, (size_t)n * sizeof(float));
        return;
    }
    float scale = 1.0f / (1.0f - p);
    uint32_t threshold = dropout_threshold(p);
    uint32_t key_lo = (uint32_t)seed, key_hi = (uint32_t)(seed >> 32);
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) out[i] = dropout_keep(key_lo, key_hi, (uint64_t)i, threshold) ? inp[i] * scale : 0.0f;
}

void dropout_backward_seeded(float *d, long n, float p, uint64_t seed) {
    if (p <= 0.0f) return;
    float scale = 1.0f / (1.0f - p);
    uint32_t threshold = dropout_threshold(p);
    uint32_t key_lo = (uint32_t)seed, key_hi = (uint32_t)(seed >> 32);
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) d[i] = dropout_keep(key_lo, key_hi, (uint64_t)i, threshold) ? d[i] * scale : 0.0f;
}

// ---------------------------------------------------------------------------
// Residual

void residual_forward(float *out, const float *a, const float *b, long n) {
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void add_inplace(float *y, const float *x, long n) {
    #pragma omp parallel for simd schedule(static) if (n >= PARALLEL_MIN_WORK)
    for (long i = 0; i < n; i++) y[i] += x[i];
}

// ---------------------------------------------------------------------------
// Embedding with positions

void embedding_forward(float *out, const int *tokens, const float *table, const float *pe,
                       int B, int T, int C, int pos0) {
    float scale = sqrtf((float)C);
    #pragma omp parallel for schedule(static) if ((long)B * T * C >= PARALLEL_MIN_WORK)
    for (int bt = 0; bt < B * T; bt++) {
        const float *e = table + (long)tokens[bt] * C;
        const float *p = pe + (long)(pos0 + bt % T) * C;
        float *y = out + (long)bt * C;
        #pragma omp simd
        for (int c = 0; c < C; c++) y[c] = e[c] * scale + p[c];
    }
}

void embedding_backward(float *dtable, const float *dout, const int *tokens, int B, int T, int C) {
    float scale = sqrtf((float)C);
    int n_blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
    // Several positions may hold the same token: threads own column blocks
    // and walk all positions in order, so no two threads touch one float.
    #pragma omp parallel for schedule(static) if ((long)B * T * C >= PARALLEL_MIN_WORK)
    for (int blk = 0; blk < n_blocks; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        for (int bt = 0; bt < B * T; bt++) {
            float *d = dtable + (long)tokens[bt] * C;
            const float *dy = dout + (long)bt * C;
            #pragma omp simd
            for (int c = c0; c < c1; c++) d[c] += scale * dy[c];
        }
    }
}

// ---------------------------------------------------------------------------
// Softmax

// Below this many keys a row takes plain loops: an `omp simd` reduction
// ends in a pass over its per-lane array, which outweighs a short row
// (attention rows of 10-12 keys spent a fifth of their time there).
#define SOFTMAX_SHORT_ROW 32

static void softmax_row_short(float *p, const float *s, const uint8_t *key_pad, int visible_end, int Tk) {
    float maxval = -INFINITY;
    for (int j = 0; j < visible_end; j++)
        if (!(key_pad && key_pad[j]) && s[j] > maxval) maxval = s[j];
    if (maxval == -INFINITY) {  // no visible key
        for (int j = 0; j < Tk; j++) p[j] = 0.0f;
        return;
    }
    float sum = 0.0f;
    for (int j = 0; j < visible_end; j++) {
        float e = key_pad && key_pad[j] ? 0.0f : expf_fast(s[j] - maxval);
        p[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < visible_end; j++) p[j] *= inv;
    for (int j = visible_end > 0 ? visible_end : 0; j < Tk; j++) p[j] = 0.0f;
}

void softmax_row_masked(float *p, const float *s, const uint8_t *key_pad, int visible_end, int Tk) {
    if (visible_end < SOFTMAX_SHORT_ROW) {
        softmax_row_short(p, s, key_pad, visible_end, Tk);
        return;
    }
    // Two copies of each loop, with and without padding, so that both
    // vectorize (a NULL key_pad cannot be read speculatively).
    float maxval = -INFINITY;
    if (key_pad) {
        #pragma omp simd reduction(max:maxval)
        for (int j = 0; j < visible_end; j++) {
            float v = key_pad[j] ? -INFINITY : s[j];
            maxval = v > maxval ? v : maxval;
        }
    } else {
        #pragma omp simd reduction(max:maxval)
        for (int j = 0; j < visible_end; j++) maxval = s[j] > maxval ? s[j] : maxval;
    }
    if (maxval == -INFINITY) {  // no visible key
        for (int j = 0; j < Tk; j++) p[j] = 0.0f;
        return;
    }
    float sum = 0.0f;
    if (key_pad) {
        #pragma omp simd reduction(+:sum)
        for (int j = 0; j < visible_end; j++) {
            float e = key_pad[j] ? 0.0f : expf_fast(s[j] - maxval);
            p[j] = e;
            sum += e;
        }
    } else {
        #pragma omp simd reduction(+:sum)
        for (int j = 0; j < visible_end; j++) {
            float e = expf_fast(s[j] - maxval);
            p[j] = e;
            sum += e;
        }
    }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j < visible_end; j++) p[j] *= inv;
    for (int j = visible_end > 0 ? visible_end : 0; j < Tk; j++) p[j] = 0.0f;
}

void masked_softmax_forward(float *probs, const float *scores, const uint8_t *key_pad,
                            int Tq, int Tk, int causal) {
    for (int i = 0; i < Tq; i++)
        softmax_row_masked(probs + (long)i * Tk, scores + (long)i * Tk, key_pad,
                           softmax_visible_end(i, Tq, Tk, causal), Tk);
}

void softmax_backward(float *dinp, const float *dprobs, const float *probs, int N, int L) {
    for (int n = 0; n < N; n++) {
        const float *p = probs + (long)n * L, *dp = dprobs + (long)n * L;
        float *dx = dinp + (long)n * L;
        float dot = 0.0f;
        #pragma omp simd reduction(+:dot)
        for (int j = 0; j < L; j++) dot += p[j] * dp[j];
        #pragma omp simd
        for (int j = 0; j < L; j++) dx[j] += p[j] * (dp[j] - dot);
    }
}
