// Layer kernels, forward and backward side by side. See kernels.h for the
// conventions (accumulating backward, deterministic parallel loops).
//
// Each parallel kernel packs its operands into a small struct and hands a
// loop body over a range of rows (or values, or column blocks) to
// threads_for, which runs one contiguous range per pool thread: where a
// value lands never depends on the thread count.
#include "kernels.h"
#include <math.h>
#include <string.h>
#include "gemm.h"
#include "threads.h"

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

static int col_blocks(int C) { return (C + COL_BLOCK - 1) / COL_BLOCK; }

// Sums the rows of x (N, C) into y (C), y += sum_n x[n, :].
typedef struct {
    float *y;
    const float *x;
    int N, C;
} ColumnSums;

static void column_sums_blocks(void *arg, long blk0, long blk1) {
    const ColumnSums *a = arg;
    for (long blk = blk0; blk < blk1; blk++) {
        int c0 = (int)blk * COL_BLOCK, c1 = c0 + COL_BLOCK < a->C ? c0 + COL_BLOCK : a->C;
        float acc[COL_BLOCK] = {0};
        for (int n = 0; n < a->N; n++) {
            const float *row = a->x + (long)n * a->C + c0;
            #pragma omp simd
            for (int c = 0; c < c1 - c0; c++) acc[c] += row[c];
        }
        for (int c = c0; c < c1; c++) a->y[c] += acc[c - c0];
    }
}

static void column_sums_accumulate(float *y, const float *x, int N, int C) {
    ColumnSums a = {y, x, N, C};
    threads_for(col_blocks(C), (long)N * C >= PARALLEL_MIN_WORK, column_sums_blocks, &a);
}

// ---------------------------------------------------------------------------
// Linear

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

// The block [i0, i0 + m) x [j0, j0 + n) of C: bias, activation, dropout with
// the expressions of relu_forward / gelu_forward and dropout_forward_seeded,
// so the same bits as those passes.
static void linear_epilogue_block(const void *arg, float *C, int ldc, int i0, int m, int j0, int n) {
    const LinearEpilogue *e = arg;
    for (long i = i0; i < i0 + m; i++) {
        float *c = C + i * ldc + j0;
        if (e->bias) {
            const float *b = e->bias + j0;
            #pragma omp simd
            for (int j = 0; j < n; j++) c[j] += b[j];
        }
        float *y = e->act + i * e->OC + j0;
        if (e->act_fn == LINEAR_NO_ACT && !e->drop && y == c) continue;
        if (e->act_fn == LINEAR_RELU) {
            #pragma omp simd
            for (int j = 0; j < n; j++) y[j] = c[j] > 0.0f ? c[j] : 0.0f;
        } else if (e->act_fn == LINEAR_GELU) {
            for (int j = 0; j < n; j++) y[j] = 0.5f * c[j] * (1.0f + erff(c[j] * (float)INV_SQRT2));
        } else if (y != c) {
            memcpy(y, c, (size_t)n * sizeof(float));
        }
        if (e->drop) {
            uint64_t base = (uint64_t)(i * e->OC + j0);
            uint32_t key_lo = e->key_lo, key_hi = e->key_hi, threshold = e->threshold;
            float scale = e->scale;
            #pragma omp simd
            for (int j = 0; j < n; j++) y[j] = dropout_keep(key_lo, key_hi, base + j, threshold) ? y[j] * scale : 0.0f;
        }
    }
}

void linear_epilogue_init(LinearEpilogue *e, const float *bias, float *act, int OC, int act_fn, float p,
                          uint64_t seed) {
    memset(e, 0, sizeof *e);
    e->bias = bias;
    e->act = act;
    e->OC = OC;
    e->act_fn = act_fn;
    e->drop = p > 0.0f;
    if (e->drop) {
        e->scale = 1.0f / (1.0f - p);
        e->threshold = dropout_threshold(p);
        e->key_lo = (uint32_t)seed;
        e->key_hi = (uint32_t)(seed >> 32);
    }
}

GemmEpilogue linear_epilogue(const LinearEpilogue *e) {
    GemmEpilogue ep = {linear_epilogue_block, e};
    return ep;
}

void linear_fused_forward(float *out, const float *inp, const float *weight, int N, int IC,
                          const LinearEpilogue *e) {
    GemmEpilogue ep = linear_epilogue(e);
    int work = e->bias || e->act_fn != LINEAR_NO_ACT || e->drop || e->act != out;
    gemm_epilogue(0, 1, N, e->OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, e->OC, work ? &ep : NULL);
}

// The bias is added to each block of the output as gemm finishes it.
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int IC, int OC) {
    LinearEpilogue e;
    linear_epilogue_init(&e, bias, out, OC, LINEAR_NO_ACT, 0.0f, 0);
    linear_fused_forward(out, inp, weight, N, IC, &e);
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
// public kernel's loop body, so each gets its own straight vector loops.

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

// The operands of every LayerNorm kernel: input a (N, C), plus b for the
// residual forms; statistics mean, rstd (N).
typedef struct {
    float *out, *mean, *rstd;             // forward outputs (out: dinp in the backward)
    float *dweight, *dbias;
    const float *a, *b, *dout, *weight, *bias;
    const float *mean_in, *rstd_in;       // saved statistics (recompute, backward)
    int N, C;
} LayerNormArgs;

static int layernorm_parallel(int N, int C) { return (long)N * C >= PARALLEL_MIN_WORK; }

static void layernorm_forward_rows(void *arg, long n0, long n1) {
    const LayerNormArgs *a = arg;
    long C = a->C;
    for (long n = n0; n < n1; n++)
        layernorm_forward_row(a->out + n * C, a->mean + n, a->rstd + n, a->a + n * C, NULL, 0, a->weight,
                              a->bias, a->C);
}

void layernorm_forward(float *out, float *mean, float *rstd,
                       const float *inp, const float *weight, const float *bias, int N, int C) {
    LayerNormArgs a = {.out = out, .mean = mean, .rstd = rstd, .a = inp, .weight = weight, .bias = bias,
                       .N = N, .C = C};
    threads_for(N, layernorm_parallel(N, C), layernorm_forward_rows, &a);
}

static void layernorm_residual_forward_rows(void *arg, long n0, long n1) {
    const LayerNormArgs *a = arg;
    long C = a->C;
    for (long n = n0; n < n1; n++)
        layernorm_forward_row(a->out + n * C, a->mean + n, a->rstd + n, a->a + n * C, a->b + n * C, 1,
                              a->weight, a->bias, a->C);
}

void layernorm_residual_forward(float *out, float *mean, float *rstd, const float *a, const float *b,
                                const float *weight, const float *bias, int N, int C) {
    LayerNormArgs args = {.out = out, .mean = mean, .rstd = rstd, .a = a, .b = b, .weight = weight,
                          .bias = bias, .N = N, .C = C};
    threads_for(N, layernorm_parallel(N, C), layernorm_residual_forward_rows, &args);
}

static void layernorm_residual_recompute_rows(void *arg, long n0, long n1) {
    const LayerNormArgs *a = arg;
    long C = a->C;
    for (long n = n0; n < n1; n++) {
        const float *x = a->a + n * C, *x2 = a->b + n * C, *weight = a->weight, *bias = a->bias;
        float *y = a->out + n * C, mf = a->mean_in[n], s = a->rstd_in[n];
        // the expression of layernorm_forward_row, so the same bits
        #pragma omp simd
        for (int c = 0; c < C; c++) y[c] = ((x[c] + x2[c]) - mf) * s * weight[c] + bias[c];
    }
}

void layernorm_residual_recompute(float *out, const float *a, const float *b, const float *weight,
                                  const float *bias, const float *mean, const float *rstd, int N, int C) {
    LayerNormArgs args = {.out = out, .a = a, .b = b, .weight = weight, .bias = bias, .mean_in = mean,
                          .rstd_in = rstd, .N = N, .C = C};
    threads_for(N, layernorm_parallel(N, C), layernorm_residual_recompute_rows, &args);
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

// The backward as one task: each thread takes its rows of dinp, then its
// column blocks of dweight and dbias (a second pass over dout: the sums
// over rows must not depend on how the rows were split). Inlined into the
// two tasks below with a constant `residual`, like the row functions.
static inline __attribute__((always_inline)) void layernorm_backward_task(const LayerNormArgs *a, int residual, int tid, int team) {
    long C = a->C, n0, n1, b0, b1;
    threads_range(a->N, tid, team, &n0, &n1);
    for (long n = n0; n < n1; n++)
        layernorm_backward_row(a->out + n * C, a->dout + n * C, a->a + n * C, residual ? a->b + n * C : NULL,
                               residual, a->weight, a->mean_in[n], a->rstd_in[n], a->C);
    threads_range(col_blocks(a->C), tid, team, &b0, &b1);
    for (long blk = b0; blk < b1; blk++) {
        int c0 = (int)blk * COL_BLOCK, c1 = c0 + COL_BLOCK < a->C ? c0 + COL_BLOCK : a->C;
        layernorm_param_grads_block(a->dweight, a->dbias, a->dout, a->a, a->b, residual, a->mean_in, a->rstd_in,
                                    a->N, a->C, c0, c1);
    }
}

static void layernorm_backward_plain(void *arg, int tid, int team) { layernorm_backward_task(arg, 0, tid, team); }
static void layernorm_backward_residual(void *arg, int tid, int team) { layernorm_backward_task(arg, 1, tid, team); }

static void layernorm_backward_run(ThreadsTask task, const LayerNormArgs *a) {
    int nt = threads_team(a->N, layernorm_parallel(a->N, a->C));
    if (nt <= 1) task((void *)a, 0, 1);
    else threads_pool_run(task, (void *)a, nt);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int N, int C) {
    LayerNormArgs a = {.out = dinp, .dweight = dweight, .dbias = dbias, .a = inp, .dout = dout, .weight = weight,
                       .mean_in = mean, .rstd_in = rstd, .N = N, .C = C};
    layernorm_backward_run(layernorm_backward_plain, &a);
}

void layernorm_residual_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *a, const float *b, const float *weight,
                                 const float *mean, const float *rstd, int N, int C) {
    LayerNormArgs args = {.out = dinp, .dweight = dweight, .dbias = dbias, .a = a, .b = b, .dout = dout,
                          .weight = weight, .mean_in = mean, .rstd_in = rstd, .N = N, .C = C};
    layernorm_backward_run(layernorm_backward_residual, &args);
}

// ---------------------------------------------------------------------------
// Element-wise kernels: activations, dropout, residual
//
// One operand struct for all of them; each body is a loop over its range.

typedef struct {
    float *out;              // written (or accumulated into)
    const float *x, *y;      // read
    uint8_t *keep;           // dropout masks, when stored
    float scale;             // dropout's 1 / (1 - p)
    uint32_t key_lo, key_hi, threshold;  // dropout's hash key and keep threshold
} ElementArgs;

static void elementwise(long n, ThreadsRange body, ElementArgs *a) {
    threads_for(n, n >= PARALLEL_MIN_WORK, body, a);
}

static void relu_forward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *out = a->out;
    const float *x = a->x;
    #pragma omp simd
    for (long i = i0; i < i1; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_forward(float *out, const float *inp, long n) {
    ElementArgs a = {.out = out, .x = inp};
    elementwise(n, relu_forward_range, &a);
}

static void relu_backward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *dinp = a->out;
    const float *dout = a->x, *inp = a->y;
    #pragma omp simd
    for (long i = i0; i < i1; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

void relu_backward(float *dinp, const float *dout, const float *inp, long n) {
    ElementArgs a = {.out = dinp, .x = dout, .y = inp};
    elementwise(n, relu_backward_range, &a);
}

static void relu_dropout_backward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *d = a->out, scale = a->scale;
    const float *act = a->x;
    #pragma omp simd
    for (long i = i0; i < i1; i++) d[i] = act[i] > 0.0f ? d[i] * scale : 0.0f;
}

void relu_dropout_backward(float *d, const float *act, long n, float p) {
    ElementArgs a = {.out = d, .x = act, .scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f};
    elementwise(n, relu_dropout_backward_range, &a);
}

static void gelu_forward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    for (long i = i0; i < i1; i++) {
        float x = a->x[i];
        a->out[i] = 0.5f * x * (1.0f + erff(x * (float)INV_SQRT2));
    }
}

void gelu_forward(float *out, const float *inp, long n) {
    ElementArgs a = {.out = out, .x = inp};
    elementwise(n, gelu_forward_range, &a);
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x).
static void gelu_backward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *dinp = a->out;
    const float *dout = a->x, *inp = a->y;
    #pragma omp simd
    for (long i = i0; i < i1; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * (float)INV_SQRT2));
        float pdf = (float)INV_SQRT_2PI * expf_fast(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void gelu_backward(float *dinp, const float *dout, const float *inp, long n) {
    ElementArgs a = {.out = dinp, .x = dout, .y = inp};
    elementwise(n, gelu_backward_range, &a);
}

// ---------------------------------------------------------------------------
// Dropout

static ElementArgs dropout_args(float p, uint64_t seed) {
    ElementArgs a = {.scale = 1.0f / (1.0f - p), .threshold = dropout_threshold(p),
                     .key_lo = (uint32_t)seed, .key_hi = (uint32_t)(seed >> 32)};
    return a;
}

static void dropout_forward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *out = a->out, scale = a->scale;
    const float *inp = a->x;
    uint8_t *keep = a->keep;
    uint32_t key_lo = a->key_lo, key_hi = a->key_hi, threshold = a->threshold;
    #pragma omp simd
    for (long i = i0; i < i1; i++) {
        uint8_t k = dropout_keep(key_lo, key_hi, (uint64_t)i, threshold);
        keep[i] = k;
        out[i] = k ? inp[i] * scale : 0.0f;
    }
}

void dropout_forward(float *out, uint8_t *keep, const float *inp, long n, float p, Rng *rng) {
    if (p <= 0.0f || !keep) {
        if (out != inp) memcpy(out, inp, (size_t)n * sizeof(float));
        return;
    }
    ElementArgs a = dropout_args(p, rng_next(rng));
    a.out = out;
    a.x = inp;
    a.keep = keep;
    elementwise(n, dropout_forward_range, &a);
}

static void dropout_backward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *d = a->out, scale = a->scale;
    const uint8_t *keep = a->keep;
    #pragma omp simd
    for (long i = i0; i < i1; i++) d[i] = keep[i] ? d[i] * scale : 0.0f;
}

void dropout_backward(float *d, const uint8_t *keep, long n, float p) {
    if (p <= 0.0f || !keep) return;
    ElementArgs a = {.out = d, .keep = (uint8_t *)keep, .scale = 1.0f / (1.0f - p)};
    elementwise(n, dropout_backward_range, &a);
}

static void dropout_seeded_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *out = a->out, scale = a->scale;
    const float *inp = a->x;
    uint32_t key_lo = a->key_lo, key_hi = a->key_hi, threshold = a->threshold;
    #pragma omp simd
    for (long i = i0; i < i1; i++) out[i] = dropout_keep(key_lo, key_hi, (uint64_t)i, threshold) ? inp[i] * scale : 0.0f;
}

void dropout_forward_seeded(float *out, const float *inp, long n, float p, uint64_t seed) {
    if (p <= 0.0f) {
        if (out != inp) memcpy(out, inp, (size_t)n * sizeof(float));
        return;
    }
    ElementArgs a = dropout_args(p, seed);
    a.out = out;
    a.x = inp;
    elementwise(n, dropout_seeded_range, &a);
}

// The backward multiplies by the same mask and scale: the forward in place.
void dropout_backward_seeded(float *d, long n, float p, uint64_t seed) {
    if (p <= 0.0f) return;
    ElementArgs a = dropout_args(p, seed);
    a.out = d;
    a.x = d;
    elementwise(n, dropout_seeded_range, &a);
}

// ---------------------------------------------------------------------------
// Residual

static void residual_forward_range(void *arg, long i0, long i1) {
    const ElementArgs *a = arg;
    float *out = a->out;
    const float *x = a->x, *y = a->y;
    #pragma omp simd
    for (long i = i0; i < i1; i++) out[i] = x[i] + y[i];
}

void residual_forward(float *out, const float *a, const float *b, long n) {
    ElementArgs args = {.out = out, .x = a, .y = b};
    elementwise(n, residual_forward_range, &args);
}

void add_inplace(float *y, const float *x, long n) {
    ElementArgs args = {.out = y, .x = y, .y = x};
    elementwise(n, residual_forward_range, &args);
}

// ---------------------------------------------------------------------------
// Embedding with positions

typedef struct {
    float *out;                  // forward: (B*T, C)
    float *dtable;               // backward: (V, C)
    const float *table, *pe, *dout;
    const int *tokens;
    int BT, T, C, pos0;
    float scale;                 // sqrt(C)
} EmbeddingArgs;

static void embedding_forward_rows(void *arg, long bt0, long bt1) {
    const EmbeddingArgs *a = arg;
    long C = a->C;
    for (long bt = bt0; bt < bt1; bt++) {
        const float *e = a->table + (long)a->tokens[bt] * C;
        const float *p = a->pe + (long)(a->pos0 + bt % a->T) * C;
        float *y = a->out + bt * C;
        #pragma omp simd
        for (long c = 0; c < C; c++) y[c] = e[c] * a->scale + p[c];
    }
}

void embedding_forward(float *out, const int *tokens, const float *table, const float *pe,
                       int B, int T, int C, int pos0) {
    EmbeddingArgs a = {.out = out, .table = table, .pe = pe, .tokens = tokens, .BT = B * T, .T = T, .C = C,
                       .pos0 = pos0, .scale = sqrtf((float)C)};
    threads_for(a.BT, (long)B * T * C >= PARALLEL_MIN_WORK, embedding_forward_rows, &a);
}

// Several positions may hold the same token: threads own column blocks and
// walk all positions in order, so no two threads touch one float.
static void embedding_backward_blocks(void *arg, long blk0, long blk1) {
    const EmbeddingArgs *a = arg;
    long C = a->C;
    for (long blk = blk0; blk < blk1; blk++) {
        long c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        for (long bt = 0; bt < a->BT; bt++) {
            float *d = a->dtable + (long)a->tokens[bt] * C;
            const float *dy = a->dout + bt * C;
            #pragma omp simd
            for (long c = c0; c < c1; c++) d[c] += a->scale * dy[c];
        }
    }
}

void embedding_backward(float *dtable, const float *dout, const int *tokens, int B, int T, int C) {
    EmbeddingArgs a = {.dtable = dtable, .dout = dout, .tokens = tokens, .BT = B * T, .T = T, .C = C,
                       .scale = sqrtf((float)C)};
    threads_for(col_blocks(C), (long)B * T * C >= PARALLEL_MIN_WORK, embedding_backward_blocks, &a);
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
