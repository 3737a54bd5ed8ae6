// Label-smoothed cross-entropy fused with softmax. See loss.h.
#include "loss.h"
#include <math.h>
#include <stddef.h>
#include "model.h"

// Below this many logits the loops stay on one thread.
#define LOSS_PARALLEL_MIN_WORK 16384L

double crossentropy_forward(float *losses, float *probs, const float *logits, const int *targets,
                            int N, int V, float smoothing, long *n_valid, long *n_correct) {
    long valid = 0, correct = 0;
    #pragma omp parallel for schedule(static) reduction(+:valid, correct) if ((long)N * V >= LOSS_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        int t = targets[n];
        if (t == PAD_ID) { losses[n] = 0.0f; continue; }
        const float *z = logits + (long)n * V;
        float maxval = z[0];
        #pragma omp simd reduction(max:maxval)
        for (int c = 0; c < V; c++) maxval = z[c] > maxval ? z[c] : maxval;
        int argmax = 0;
        while (argmax < V - 1 && z[argmax] != maxval) argmax++;   // the first maximum (bounded: NaN logits)
        // Stable log-sum-exp; the exponentials go to probs when kept, and
        // are summed in a separate (vectorized) pass.
        double sum_exp = 0.0, sum_z = 0.0;
        if (probs) {
            float *p = probs + (long)n * V;
            for (int c = 0; c < V; c++) p[c] = expf(z[c] - maxval);
            #pragma omp simd reduction(+:sum_exp)
            for (int c = 0; c < V; c++) sum_exp += p[c];
        } else {
            for (int c = 0; c < V; c++) sum_exp += expf(z[c] - maxval);
        }
        #pragma omp simd reduction(+:sum_z)
        for (int c = 0; c < V; c++) sum_z += z[c];
        double lse = maxval + log(sum_exp);
        if (probs) {
            float *p = probs + (long)n * V, inv = (float)(1.0 / sum_exp);
            #pragma omp simd
            for (int c = 0; c < V; c++) p[c] *= inv;
        }
        double nll = lse - z[t];
        double smooth = lse - sum_z / V;   // (1/V) sum_c -log p[c]
        losses[n] = (float)((1.0 - smoothing) * nll + smoothing * smooth);
        valid++;
        correct += argmax == t;
    }
    double total = 0.0;
    for (int n = 0; n < N; n++) total += losses[n];
    if (n_valid) *n_valid = valid;
    if (n_correct) *n_correct = correct;
    return total;
}

void crossentropy_backward(float *dlogits, const float *probs, const int *targets,
                           int N, int V, float smoothing, float scale) {
    float uniform = smoothing / V;
    #pragma omp parallel for schedule(static) if ((long)N * V >= LOSS_PARALLEL_MIN_WORK)
    for (int n = 0; n < N; n++) {
        float *dz = dlogits + (long)n * V;
        const float *p = probs + (long)n * V;
        int t = targets[n];
        if (t == PAD_ID) {
            #pragma omp simd
            for (int c = 0; c < V; c++) dz[c] = 0.0f;
            continue;
        }
        #pragma omp simd
        for (int c = 0; c < V; c++) dz[c] = scale * (p[c] - uniform);
        dz[t] -= scale * (1.0f - smoothing);
    }
}
