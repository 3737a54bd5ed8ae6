// Label-smoothed cross-entropy fused with softmax. See loss.h.
#include "loss.h"
#include "threads.h"
#include <math.h>
#include <stddef.h>
#include <string.h>
#include "kernels.h"
#include "model.h"

// Below this many logits the loops stay on one thread.
#define LOSS_PARALLEL_MIN_WORK 16384L

// Sums run in float vector lanes over chunks of SUM_CHUNK values and add the
// chunks in double: gcc does not vectorize a double reduction over float
// data, and a whole-row float sum would lose digits for large vocabularies.
#define SUM_CHUNK 512

double sum_exp_shifted(float *p, const float *z, int V, float shift) {
    double total = 0.0;
    for (int c0 = 0; c0 < V; c0 += SUM_CHUNK) {
        int c1 = c0 + SUM_CHUNK < V ? c0 + SUM_CHUNK : V;
        float s = 0.0f;
        if (p) {
            #pragma omp simd reduction(+:s)
            for (int c = c0; c < c1; c++) {
                float e = expf_fast(z[c] - shift);
                p[c] = e;
                s += e;
            }
        } else {
            #pragma omp simd reduction(+:s)
            for (int c = c0; c < c1; c++) s += expf_fast(z[c] - shift);
        }
        total += s;
    }
    return total;
}

static double sum_floats(const float *z, int V) {
    double total = 0.0;
    for (int c0 = 0; c0 < V; c0 += SUM_CHUNK) {
        int c1 = c0 + SUM_CHUNK < V ? c0 + SUM_CHUNK : V;
        float s = 0.0f;
        #pragma omp simd reduction(+:s)
        for (int c = c0; c < c1; c++) s += z[c];
        total += s;
    }
    return total;
}

// The maximum of z (V), and in *argmax the index of its first occurrence.
static float row_max(const float *z, int V, int *argmax) {
    float maxval = z[0];
    #pragma omp simd reduction(max:maxval)
    for (int c = 0; c < V; c++) maxval = z[c] > maxval ? z[c] : maxval;
    int i = 0;
    while (i < V - 1 && z[i] != maxval) i++;   // the first maximum (bounded: NaN logits)
    *argmax = i;
    return maxval;
}

// loss_row of loss.h from the row's log-sum-exp, target logit and sum.
static float smoothed_loss(double lse, float z_target, double sum_z, int V, float smoothing) {
    double nll = lse - z_target;
    double smooth = lse - sum_z / V;   // (1/V) sum_c -log p[c]
    return (float)((1.0 - smoothing) * nll + smoothing * smooth);
}

// One row z (V) with a non-pad target t: returns the row loss, sets *lse_out
// to log sum exp z and *argmax to the first maximum. p (V), unless NULL,
// gets softmax(z).
static float row_loss(float *p, double *lse_out, int *argmax, const float *z, int t, int V, float smoothing) {
    float maxval = row_max(z, V, argmax);
    double sum_exp = sum_exp_shifted(p, z, V, maxval);         // stable log-sum-exp
    double lse = maxval + log(sum_exp);
    if (p) {
        float inv = (float)(1.0 / sum_exp);
        #pragma omp simd
        for (int c = 0; c < V; c++) p[c] *= inv;
    }
    *lse_out = lse;
    return smoothed_loss(lse, z[t], sum_floats(z, V), V, smoothing);
}

// row_loss for a row whose gradient is wanted at once: z (V) is replaced by
// scale * (softmax(z) - q), q the smoothed target; the loss, lse and argmax
// are row_loss's, bit for bit (the same sums of the same values).
static float row_loss_grad(float *z, double *lse_out, int *argmax, int t, int V, float smoothing, float scale) {
    float maxval = row_max(z, V, argmax);
    double sum_z = sum_floats(z, V);
    float z_target = z[t];
    double sum_exp = sum_exp_shifted(z, z, V, maxval);   // z now holds e^(z - max)
    double lse = maxval + log(sum_exp);
    float inv = (float)(1.0 / sum_exp), uniform = smoothing / V;
    #pragma omp simd
    for (int c = 0; c < V; c++) z[c] = scale * (z[c] * inv - uniform);
    z[t] -= scale * (1.0f - smoothing);
    *lse_out = lse;
    return smoothed_loss(lse, z_target, sum_z, V, smoothing);
}

// The operands of the parallel loss loops (rows are independent).
typedef struct {
    float *losses, *probs, *lse, *dlogits;
    const float *logits, *probs_in, *lse_in;
    const int *targets;
    int V;
    float smoothing, scale;
    long valid, correct;     // forward counts, added per range (integers: order-free)
} LossRows;

static int loss_parallel(int N, int V) { return (long)N * V >= LOSS_PARALLEL_MIN_WORK; }

// With dlogits set the rows are the logits themselves, replaced by their
// gradient (row_loss_grad; pad rows by zeros).
static void forward_range(void *arg, long n0, long n1) {
    LossRows *a = arg;
    long valid = 0, correct = 0, V = a->V;
    for (long n = n0; n < n1; n++) {
        int t = a->targets[n];
        float *grad = a->dlogits ? a->dlogits + n * V : NULL;
        if (t == PAD_ID) {
            a->losses[n] = 0.0f;
            if (a->lse) a->lse[n] = 0.0f;
            if (grad) memset(grad, 0, (size_t)V * sizeof(float));
            continue;
        }
        double row_lse;
        int argmax;
        a->losses[n] = grad ? row_loss_grad(grad, &row_lse, &argmax, t, a->V, a->smoothing, a->scale)
                            : row_loss(a->probs ? a->probs + n * V : NULL, &row_lse, &argmax, a->logits + n * V,
                                       t, a->V, a->smoothing);
        if (a->lse) a->lse[n] = (float)row_lse;
        valid++;
        correct += argmax == t;
    }
    __atomic_fetch_add(&a->valid, valid, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->correct, correct, __ATOMIC_RELAXED);
}

// The shared forward of the three interfaces: the row losses, their sum in
// row order, the counts.
static double forward_rows(LossRows *a, int N, long *n_valid, long *n_correct) {
    threads_for(N, loss_parallel(N, a->V), forward_range, a);
    double total = 0.0;
    for (int n = 0; n < N; n++) total += a->losses[n];
    if (n_valid) *n_valid = a->valid;
    if (n_correct) *n_correct = a->correct;
    return total;
}

double crossentropy_forward(float *losses, float *probs, const float *logits, const int *targets,
                            int N, int V, float smoothing, long *n_valid, long *n_correct) {
    LossRows a = {.losses = losses, .probs = probs, .logits = logits, .targets = targets, .V = V,
                  .smoothing = smoothing};
    return forward_rows(&a, N, n_valid, n_correct);
}

double crossentropy_forward_lse(float *losses, float *lse, const float *logits, const int *targets,
                                int N, int V, float smoothing, long *n_valid, long *n_correct) {
    LossRows a = {.losses = losses, .lse = lse, .logits = logits, .targets = targets, .V = V,
                  .smoothing = smoothing};
    return forward_rows(&a, N, n_valid, n_correct);
}

double crossentropy_forward_backward_inplace(float *losses, float *lse, float *logits, const int *targets,
                                             int N, int V, float smoothing, float scale, long *n_valid,
                                             long *n_correct) {
    LossRows a = {.losses = losses, .lse = lse, .dlogits = logits, .targets = targets, .V = V,
                  .smoothing = smoothing, .scale = scale};
    return forward_rows(&a, N, n_valid, n_correct);
}

static void backward_range(void *arg, long n0, long n1) {
    const LossRows *a = arg;
    long V = a->V;
    float uniform = a->smoothing / a->V, scale = a->scale;
    for (long n = n0; n < n1; n++) {
        float *dz = a->dlogits + n * V;
        const float *p = a->probs_in + n * V;
        int t = a->targets[n];
        if (t == PAD_ID) {
            #pragma omp simd
            for (long c = 0; c < V; c++) dz[c] = 0.0f;
            continue;
        }
        #pragma omp simd
        for (long c = 0; c < V; c++) dz[c] = scale * (p[c] - uniform);
        dz[t] -= scale * (1.0f - a->smoothing);
    }
}

void crossentropy_backward(float *dlogits, const float *probs, const int *targets,
                           int N, int V, float smoothing, float scale) {
    LossRows a = {.dlogits = dlogits, .probs_in = probs, .targets = targets, .V = V, .smoothing = smoothing,
                  .scale = scale};
    threads_for(N, loss_parallel(N, V), backward_range, &a);
}

static void backward_inplace_range(void *arg, long n0, long n1) {
    const LossRows *a = arg;
    long V = a->V;
    float uniform = a->smoothing / a->V, scale = a->scale;
    for (long n = n0; n < n1; n++) {
        float *z = a->dlogits + n * V;
        int t = a->targets[n];
        if (t == PAD_ID) {
            #pragma omp simd
            for (long c = 0; c < V; c++) z[c] = 0.0f;
            continue;
        }
        float row_lse = a->lse_in[n];
        #pragma omp simd
        for (long c = 0; c < V; c++) z[c] = scale * (expf_fast(z[c] - row_lse) - uniform);
        z[t] -= scale * (1.0f - a->smoothing);
    }
}

void crossentropy_backward_inplace(float *logits, const float *lse, const int *targets,
                                   int N, int V, float smoothing, float scale) {
    LossRows a = {.dlogits = logits, .lse_in = lse, .targets = targets, .V = V, .smoothing = smoothing,
                  .scale = scale};
    threads_for(N, loss_parallel(N, V), backward_inplace_range, &a);
}
