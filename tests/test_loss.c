// Label-smoothed cross-entropy: values pinned to torch's F.cross_entropy,
// a naive double-precision reference at odd vocabulary sizes, pad rows
// ignored, accuracy counts, the kept softmax, and the fused backward against
// finite differences.
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "loss.h"
#include "model.h"
#include "rng.h"
#include "test.h"

static Rng rng;

static float *random_floats(long n, float scale) {
    float *x = malloc_check((size_t)n * sizeof(float));
    for (long i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(&rng) - 1.0f);
    return x;
}

// The mean loss as torch defines it, in double.
static double ref_loss(const float *z, const int *t, int N, int V, double e) {
    double total = 0;
    int valid = 0;
    for (int n = 0; n < N; n++) {
        if (t[n] == PAD_ID) continue;
        double mx = z[n * V], s = 0, sum_logp = 0;
        for (int c = 0; c < V; c++) if (z[n * V + c] > mx) mx = z[n * V + c];
        for (int c = 0; c < V; c++) s += exp(z[n * V + c] - mx);
        double lse = mx + log(s);
        for (int c = 0; c < V; c++) sum_logp += z[n * V + c] - lse;
        total += (1 - e) * (lse - z[n * V + t[n]]) - e / V * sum_logp;
        valid++;
    }
    return valid ? total / valid : 0;
}

static void test_pinned_to_torch(void) {
    // torch 1.13: F.cross_entropy(z, t, ignore_index=0, label_smoothing=e)
    float z[12] = {1, 2, 3, 0.5f, 0, 0, 5, 1, -1, 4, 0, 2};
    int t[3] = {2, 0, 3};
    const double eps[3] = {0.0, 0.1, 0.3}, torch_value[3] = {1.304764390, 1.411014318, 1.623514414};
    float losses[3];
    for (int i = 0; i < 3; i++) {
        long n_valid, n_correct;
        double total = crossentropy_forward(losses, NULL, z, t, 3, 4, (float)eps[i], &n_valid, &n_correct);
        double mean = total / n_valid;
        CHECK(fabs(mean - torch_value[i]) < 1e-6, "smoothing %.1f: loss %.9f equals torch's %.9f", eps[i], mean, torch_value[i]);
        CHECK(n_valid == 2 && n_correct == 1 && losses[1] == 0.0f, "smoothing %.1f: pad row ignored, 2 targets, 1 correct", eps[i]);
    }
    // uniform logits: log V whatever the smoothing
    float flat[7] = {0};
    int target = 5;
    double l = crossentropy_forward(losses, NULL, flat, &target, 1, 7, 0.1f, NULL, NULL);
    CHECK(fabs(l - log(7.0)) < 1e-6, "uniform logits give log V (%.7f)", l);
    // every target is pad: no rows, total 0
    int pads[3] = {0, 0, 0};
    long nv = -1;
    l = crossentropy_forward(losses, NULL, z, pads, 3, 4, 0.1f, &nv, NULL);
    CHECK(l == 0.0 && nv == 0, "all-pad batch: no targets, loss sum 0");
    // NaN logits (a diverged model) give a NaN loss, not a crash.
    float bad[4] = {NAN, 1, 2, 3};
    int one = 2;
    l = crossentropy_forward(losses, NULL, bad, &one, 1, 4, 0.1f, NULL, NULL);
    CHECK(isnan(l), "NaN logits give a NaN loss");
}

static void test_reference_sizes(void) {
    static const int vocab[] = {1, 3, 17, 65};
    double worst = 0;
    for (int vi = 0; vi < 4; vi++) {
        int N = 17, V = vocab[vi];
        float *z = random_floats((long)N * V, 6), losses[17];
        int t[17];
        for (int n = 0; n < N; n++) t[n] = n % 4 == 1 ? PAD_ID : (int)((n * 7) % V);
        for (int si = 0; si < 2; si++) {
            float e = si ? 0.1f : 0.0f;
            long n_valid;
            double mean = crossentropy_forward(losses, NULL, z, t, N, V, e, &n_valid, NULL);
            mean = n_valid ? mean / n_valid : 0;
            double ref = ref_loss(z, t, N, V, e);
            double err = fabs(mean - ref) / fmax(fabs(ref), 1e-6);
            if (V == 1) err = fabs(mean - ref);  // one class: loss 0 (target 0 is pad, so none count)
            if (err > worst) worst = err;
        }
        free(z);
    }
    CHECK(worst < 1e-6, "loss = naive reference at V = 1, 3, 17, 65, smoothing 0 and 0.1 (max rel %.1e)", worst);
}

static void test_backward(void) {
    int N = 5, V = 17;
    float e = 0.1f;
    float *z = random_floats((long)N * V, 3), *dz = malloc_check((size_t)N * V * sizeof(float)), losses[5];
    int t[5] = {4, 0, 16, 1, 9};   // one pad row
    long n_valid;
    float *probs = malloc_check((size_t)N * V * sizeof(float));
    double with_probs = crossentropy_forward(losses, probs, z, t, N, V, e, &n_valid, NULL);
    CHECK(with_probs == crossentropy_forward(losses, NULL, z, t, N, V, e, NULL, NULL), "keeping probs does not change the loss");
    double softmax_err = 0;
    for (int n = 0; n < N; n++) {
        if (t[n] == PAD_ID) continue;
        double mx = z[n * V], s = 0;
        for (int c = 0; c < V; c++) if (z[n * V + c] > mx) mx = z[n * V + c];
        for (int c = 0; c < V; c++) s += exp(z[n * V + c] - mx);
        for (int c = 0; c < V; c++) softmax_err = fmax(softmax_err, fabs(probs[n * V + c] - exp(z[n * V + c] - mx) / s));
    }
    CHECK(softmax_err < 1e-7, "forward keeps softmax(z) of the non-pad rows (max abs %.1e)", softmax_err);
    crossentropy_backward(dz, probs, t, N, V, e, 1.0f / n_valid);
    double err = 0, scale = 0;
    for (long i = 0; i < (long)N * V; i++) {
        float saved = z[i], h = 1e-2f;
        z[i] = saved + h; double lp = ref_loss(z, t, N, V, e);
        z[i] = saved - h; double lm = ref_loss(z, t, N, V, e);
        z[i] = saved;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - dz[i]) > err) err = fabs(fd - dz[i]);
        if (fabs(dz[i]) > scale) scale = fabs(dz[i]);
    }
    CHECK(err / scale < 1e-3, "fused softmax + loss backward = finite differences of the mean (max rel %.1e)", err / scale);
    int pad_zero = 1;
    double row_sum = 0;
    for (int c = 0; c < V; c++) { pad_zero &= dz[V + c] == 0.0f; row_sum += dz[c]; }
    CHECK(pad_zero, "pad rows get zero gradient");
    CHECK(fabs(row_sum) < 1e-6, "each row's gradient sums to 0 (softmax minus a distribution)");
    // in place gives the same
    crossentropy_backward(probs, probs, t, N, V, e, 1.0f / n_valid);
    CHECK(!memcmp(probs, dz, (size_t)N * V * sizeof(float)), "backward in place over the probabilities");
    free(z); free(dz); free(probs);
}

// The low-memory pair: the same loss bit for bit, and in place the gradient
// of the kept-softmax backward to float rounding (the exponentials are
// recomputed from the kept log-sum-exp).
static void test_inplace_pair(void) {
    int N = 6, V = 301;
    float e = 0.1f;
    float *z = random_floats((long)N * V, 4), *probs = malloc_check((size_t)N * V * sizeof(float));
    float *dz = malloc_check((size_t)N * V * sizeof(float)), losses[6], losses2[6], lse[6];
    int t[6] = {4, 0, 300, 1, 9, 0};
    long nv1, nv2, nc1, nc2;
    double l1 = crossentropy_forward(losses, probs, z, t, N, V, e, &nv1, &nc1);
    double l2 = crossentropy_forward_lse(losses2, lse, z, t, N, V, e, &nv2, &nc2);
    CHECK(l1 == l2 && nv1 == nv2 && nc1 == nc2 && !memcmp(losses, losses2, sizeof losses),
          "forward keeping lse gives the same loss and counts as keeping probs");
    double lse_err = 0;
    for (int n = 0; n < N; n++) {
        if (t[n] == PAD_ID) { lse_err = fmax(lse_err, fabs(lse[n])); continue; }
        double mx = z[n * V], s = 0;
        for (int c = 0; c < V; c++) if (z[n * V + c] > mx) mx = z[n * V + c];
        for (int c = 0; c < V; c++) s += exp(z[n * V + c] - mx);
        lse_err = fmax(lse_err, fabs(lse[n] - (mx + log(s))));
    }
    CHECK(lse_err < 1e-5, "lse = log sum exp of each row, 0 on pad rows (max abs %.1e)", lse_err);
    crossentropy_backward(dz, probs, t, N, V, e, 1.0f / nv1);
    crossentropy_backward_inplace(z, lse, t, N, V, e, 1.0f / nv1);
    double err = 0, scale = 0;
    int pad_zero = 1;
    for (long i = 0; i < (long)N * V; i++) {
        err = fmax(err, fabs(z[i] - dz[i]));
        scale = fmax(scale, fabs(dz[i]));
        if (t[i / V] == PAD_ID) pad_zero &= z[i] == 0.0f;
    }
    CHECK(err / scale < 1e-5, "in-place backward over the logits = backward from probs (max rel %.1e)", err / scale);
    CHECK(pad_zero, "in-place backward zeroes pad rows");
    free(z); free(probs); free(dz);
}

// Loss and gradient in one pass per row (the training forward's chunks):
// the same losses, lse and counts bit for bit, the gradient of the pair to
// float rounding.
static void test_forward_backward_fused(void) {
    int N = 6, V = 301;
    float e = 0.1f;
    float *z = random_floats((long)N * V, 4), *z2 = malloc_check((size_t)N * V * sizeof(float));
    float losses[6], losses2[6], lse[6], lse2[6];
    int t[6] = {4, 0, 300, 1, 9, 0};
    memcpy(z2, z, (size_t)N * V * sizeof(float));
    long nv1, nv2, nc1, nc2;
    double l1 = crossentropy_forward_lse(losses, lse, z, t, N, V, e, &nv1, &nc1);
    crossentropy_backward_inplace(z, lse, t, N, V, e, 1.0f / nv1);
    double l2 = crossentropy_forward_backward_inplace(losses2, lse2, z2, t, N, V, e, 1.0f / nv1, &nv2, &nc2);
    CHECK(l1 == l2 && nv1 == nv2 && nc1 == nc2 && !memcmp(losses, losses2, sizeof losses) &&
          !memcmp(lse, lse2, sizeof lse), "fused loss + gradient: the same losses, lse and counts, bit for bit");
    double err = 0, scale = 0;
    for (long i = 0; i < (long)N * V; i++) {
        err = fmax(err, fabs(z2[i] - z[i]));
        scale = fmax(scale, fabs(z[i]));
    }
    CHECK(err / scale < 1e-6, "fused loss + gradient: the gradient of the two passes (max rel %.1e)", err / scale);
    free(z); free(z2);
}

int main(void) {
    rng_seed(&rng, 99);
    test_pinned_to_torch();
    test_reference_sizes();
    test_backward();
    test_inplace_pair();
    test_forward_backward_fused();
    TEST_EXIT();
}
