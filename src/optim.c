// Adam / AdamW, gradient norm and clipping, weight EMA: each one loop over a
// contiguous buffer. Every element is updated independently, so splitting
// the loop over threads cannot change the result.
#include "optim.h"
#include "common.h"
#include "threads.h"
#include <math.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Adam / AdamW

void optimizer_init(Optimizer *o, OptimizerType type, long n, float beta1, float beta2,
                    float eps, float weight_decay) {
    memset(o, 0, sizeof *o);
    o->type = type;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    o->n = n;
    o->m = calloc_check((size_t)n, sizeof(float));
    o->v = calloc_check((size_t)n, sizeof(float));
}

void optimizer_free(Optimizer *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

// The update of elements [lo, hi). Every operation is a single IEEE-rounded
// float multiply, add, sqrt or divide, in the same order in the vector and
// the scalar code (C11 mode: no contraction into FMA), so both give the
// same bits and where the vector part ends never matters.
typedef struct {
    float beta1, beta2, one_minus_b1, one_minus_b2;
    float step_size, inv_bias2_sqrt, eps;
    float decay_factor;  // AdamW: params scale by this first; Adam: 1
    float coupled_wd;    // Adam: wd * params added to the gradient; AdamW: 0
} AdamConsts;

static void adam_range(const AdamConsts *c, float *params, const float *grads, float *m, float *v,
                       long lo, long hi) {
    const int decoupled = c->decay_factor != 1.0f, coupled = c->coupled_wd != 0.0f;
    long i = lo;
#if defined(__AVX__)
    // gcc does not vectorize the scalar loop: sqrtf may set errno.
    const __m256 b1 = _mm256_set1_ps(c->beta1), b2 = _mm256_set1_ps(c->beta2);
    const __m256 omb1 = _mm256_set1_ps(c->one_minus_b1), omb2 = _mm256_set1_ps(c->one_minus_b2);
    const __m256 step = _mm256_set1_ps(c->step_size), inv_b2 = _mm256_set1_ps(c->inv_bias2_sqrt);
    const __m256 eps = _mm256_set1_ps(c->eps), decay = _mm256_set1_ps(c->decay_factor);
    const __m256 wd = _mm256_set1_ps(c->coupled_wd);
    for (; i + 8 <= hi; i += 8) {
        __m256 g = _mm256_loadu_ps(grads + i), p = _mm256_loadu_ps(params + i);
        if (decoupled) p = _mm256_mul_ps(p, decay);
        if (coupled) g = _mm256_add_ps(g, _mm256_mul_ps(wd, p));
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(omb1, g));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(omb2, g), g));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        __m256 denom = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), inv_b2), eps);
        _mm256_storeu_ps(params + i, _mm256_sub_ps(p, _mm256_mul_ps(step, _mm256_div_ps(mi, denom))));
    }
#endif
    for (; i < hi; i++) {
        float g = grads[i], p = params[i];
        if (decoupled) p *= c->decay_factor;
        if (coupled) g += c->coupled_wd * p;
        m[i] = c->beta1 * m[i] + c->one_minus_b1 * g;
        v[i] = c->beta2 * v[i] + c->one_minus_b2 * g * g;
        float denom = sqrtf(v[i]) * c->inv_bias2_sqrt + c->eps;
        params[i] = p - c->step_size * (m[i] / denom);
    }
}

typedef struct {
    const AdamConsts *c;
    float *params;
    const float *grads;
    float *m, *v;
    long n;
} AdamTask;

static void adam_blocks(void *arg, long blk0, long blk1) {
    const AdamTask *t = arg;
    long lo = blk0 * 16, hi = blk1 * 16 < t->n ? blk1 * 16 : t->n;
    adam_range(t->c, t->params, t->grads, t->m, t->v, lo, hi);
}

void optimizer_step(Optimizer *o, float *params, const float *grads, float lr) {
    o->step++;
    // Bias corrections in double from the step, as PyTorch computes them in Python.
    double bias1 = 1.0 - pow(o->beta1, (double)o->step);
    double bias2_sqrt = sqrt(1.0 - pow(o->beta2, (double)o->step));
    AdamConsts c = {
        .beta1 = o->beta1, .beta2 = o->beta2,
        .one_minus_b1 = 1.0f - o->beta1, .one_minus_b2 = 1.0f - o->beta2,
        .step_size = (float)(lr / bias1), .inv_bias2_sqrt = (float)(1.0 / bias2_sqrt), .eps = o->eps,
        .decay_factor = o->type == OPT_ADAMW ? 1.0f - lr * o->weight_decay : 1.0f,
        .coupled_wd = o->type == OPT_ADAMW ? 0.0f : o->weight_decay,
    };
    AdamTask t = {&c, params, grads, o->m, o->v, o->n};
    // Blocks of 16 elements per thread; each element's update is
    // independent of the split.
    threads_for((o->n + 15) / 16, 1, adam_blocks, &t);
}

const char *optimizer_name(OptimizerType t) { return t == OPT_ADAMW ? "adamw" : "adam"; }

int optimizer_parse(const char *name, OptimizerType *out) {
    if (strcmp(name, "adam") == 0) { *out = OPT_ADAM; return 0; }
    if (strcmp(name, "adamw") == 0) { *out = OPT_ADAMW; return 0; }
    return attn_error("unknown optimizer '%s' (adam or adamw)", name);
}

// ----------------------------------------------------------------------------
// Gradient norm, scaling, clipping

// Fixed chunking (independent of the thread count) keeps the sum's rounding
// identical from run to run, which exact resume relies on.
#define NORM_CHUNKS 64

typedef struct {
    float *x;
    const float *y;
    long n, chunk;
    double partial[NORM_CHUNKS];
    float scale, keep, take;
} VectorTask;

static void norm_chunks(void *arg, long c0, long c1) {
    VectorTask *t = arg;
    for (long c = c0; c < c1; c++) {
        long lo = c * t->chunk, hi = lo + t->chunk < t->n ? lo + t->chunk : t->n;
        double s = 0.0;
        for (long i = lo; i < hi; i++) s += (double)t->y[i] * t->y[i];
        t->partial[c] = s;
    }
}

double sum_squares(const float *x, long n) {
    VectorTask t = {.y = x, .n = n, .chunk = (n + NORM_CHUNKS - 1) / NORM_CHUNKS};
    threads_for(NORM_CHUNKS, n > 65536, norm_chunks, &t);
    double total = 0.0;
    for (int c = 0; c < NORM_CHUNKS; c++) total += t.partial[c];
    return total;
}

double grad_global_norm(const float *grads, long n) { return sqrt(sum_squares(grads, n)); }

static void scale_range(void *arg, long i0, long i1) {
    const VectorTask *t = arg;
    float *x = t->x, s = t->scale;
    #pragma omp simd
    for (long i = i0; i < i1; i++) x[i] *= s;
}

void grad_scale(float *grads, long n, float s) {
    VectorTask t = {.x = grads, .scale = s};
    threads_for(n, 1, scale_range, &t);
}

double grad_clip(float *grads, long n, double max_norm) {
    double norm = grad_global_norm(grads, n);
    if (max_norm > 0.0) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) grad_scale(grads, n, (float)coef);
    }
    return norm;
}

// With grads = sum_j n_j g_j / S (S = n_done), scaling by S / n_next, adding
// g_next and scaling by n_next / (S + n_next) gives
// (sum_j n_j g_j + n_next g_next) / (S + n_next).
void grad_accumulate_before(float *grads, long n, long n_done, long n_next) {
    if (n_done > 0 && n_next > 0) grad_scale(grads, n, (float)((double)n_done / (double)n_next));
}

void grad_accumulate_after(float *grads, long n, long n_done, long n_next) {
    if (n_done > 0 && n_next > 0) grad_scale(grads, n, (float)((double)n_next / (double)(n_done + n_next)));
}

// ----------------------------------------------------------------------------
// Weight EMA

static void ema_range(void *arg, long i0, long i1) {
    const VectorTask *t = arg;
    float *ema = t->x, keep = t->keep, take = t->take;
    const float *params = t->y;
    #pragma omp simd
    for (long i = i0; i < i1; i++) ema[i] = keep * ema[i] + take * params[i];
}

void ema_update(float *ema, const float *params, long n, float decay) {
    VectorTask t = {.x = ema, .y = params, .keep = decay, .take = 1.0f - decay};
    threads_for(n, 1, ema_range, &t);
}
