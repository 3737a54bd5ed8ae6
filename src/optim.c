// Adam / AdamW, gradient norm and clipping, weight EMA: each one loop over a
// contiguous buffer. Every element is updated independently, so splitting
// the loop over threads cannot change the result.
#include "optim.h"
#include "common.h"
#include <math.h>
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

void optimizer_step(Optimizer *o, float *params, const float *grads, float lr) {
    o->step++;
    // Bias corrections in double from the step, as PyTorch computes them in Python.
    double bias1 = 1.0 - pow(o->beta1, (double)o->step);
    double bias2_sqrt = sqrt(1.0 - pow(o->beta2, (double)o->step));
    float step_size = (float)(lr / bias1);
    float inv_bias2_sqrt = (float)(1.0 / bias2_sqrt);
    float beta1 = o->beta1, beta2 = o->beta2, eps = o->eps, wd = o->weight_decay;
    float one_minus_b1 = 1.0f - beta1, one_minus_b2 = 1.0f - beta2;
    int decoupled = o->type == OPT_ADAMW;
    float decay_factor = 1.0f - lr * wd;
    float *m = o->m, *v = o->v;
    long n = o->n;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        float g = grads[i], p = params[i];
        if (decoupled) p *= decay_factor;
        else if (wd != 0.0f) g += wd * p;
        m[i] = beta1 * m[i] + one_minus_b1 * g;
        v[i] = beta2 * v[i] + one_minus_b2 * g * g;
        float denom = sqrtf(v[i]) * inv_bias2_sqrt + eps;
        params[i] = p - step_size * (m[i] / denom);
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
