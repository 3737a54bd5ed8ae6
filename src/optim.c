// Adam / AdamW, gradient norm and clipping, weight EMA: each one loop over a
// contiguous buffer. Every element is updated independently, so splitting
// the loop over threads cannot change the result.
#include "optim.h"
#include "common.h"
#include <math.h>
#include <omp.h>
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
    float *m = o->m, *v = o->v;
    long n = o->n;
    // Static split in blocks of 16 elements; each element's update is
    // independent of the split.
    long blocks = (n + 15) / 16;
    #pragma omp parallel
    {
        int tid = omp_get_thread_num(), team = omp_get_num_threads();
        long lo = blocks * tid / team * 16, hi = blocks * (tid + 1) / team * 16;
        if (hi > n) hi = n;
        if (lo < hi) adam_range(&c, params, grads, m, v, lo, hi);
    }
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

double grad_global_norm(const float *grads, long n) {
    double partial[NORM_CHUNKS];
    long chunk = (n + NORM_CHUNKS - 1) / NORM_CHUNKS;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < NORM_CHUNKS; c++) {
        long lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        double s = 0.0;
        for (long i = lo; i < hi; i++) s += (double)grads[i] * grads[i];
        partial[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < NORM_CHUNKS; c++) total += partial[c];
    return sqrt(total);
}

void grad_scale(float *grads, long n, float s) {
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) grads[i] *= s;
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

void ema_update(float *ema, const float *params, long n, float decay) {
    float keep = decay, take = 1.0f - decay;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) ema[i] = keep * ema[i] + take * params[i];
}
