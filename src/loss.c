// Label-smoothed cross-entropy fused with softmax. See loss.h.
#include "loss.h"
#include <math.h>
#include "model.h"

// log(sum_c exp(z_c)) of one row, stable (max subtracted), in double.
static double row_logsumexp(const float *z, int V, float *maxval_out) {
    float maxval = z[0];
    for (int c = 1; c < V; c++) if (z[c] > maxval) maxval = z[c];
    double sum = 0.0;
    for (int c = 0; c < V; c++) sum += exp((double)(z[c] - maxval));
    *maxval_out = maxval;
    return maxval + log(sum);
}

double crossentropy_forward(float *losses, const float *logits, const int *targets,
                            int N, int V, float smoothing, long *n_valid, long *n_correct) {
    long valid = 0, correct = 0;
    #pragma omp parallel for schedule(static) reduction(+:valid, correct) if ((long)N * V >= 16384L)
    for (int n = 0; n < N; n++) {
        int t = targets[n];
        if (t == PAD_ID) { losses[n] = 0.0f; continue; }
        const float *z = logits + (long)n * V;
        float maxval;
        double lse = row_logsumexp(z, V, &maxval);
        double sum_z = 0.0;
        int argmax = 0;
        for (int c = 0; c < V; c++) {
            sum_z += z[c];
            if (z[c] > z[argmax]) argmax = c;
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

void crossentropy_backward(float *dlogits, const float *logits, const int *targets,
                           int N, int V, float smoothing, float scale) {
    #pragma omp parallel for schedule(static) if ((long)N * V >= 16384L)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (long)n * V;
        float *dz = dlogits + (long)n * V;
        int t = targets[n];
        if (t == PAD_ID) {
            for (int c = 0; c < V; c++) dz[c] = 0.0f;
            continue;
        }
        float maxval;
        double lse = row_logsumexp(z, V, &maxval);
        float uniform = smoothing / V;
        for (int c = 0; c < V; c++) {
            float p = (float)exp(z[c] - lse);
            dz[c] = scale * (p - uniform);
        }
        dz[t] -= scale * (1.0f - smoothing);
    }
}
