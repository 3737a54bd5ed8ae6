// Kernels against naive reference loops (in double) at odd sizes, and their
// backward passes against central finite differences of a random projection
// of the output (loss = sum(out * R), so d loss / d out = R).
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "kernels.h"
#include "test.h"
#include "threads.h"

static Rng rng;

static float *random_floats(long n, float scale) {
    float *x = malloc_check((size_t)n * sizeof(float));
    for (long i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(&rng) - 1.0f);
    return x;
}

static float *zeros(long n) { return calloc_check((size_t)n, sizeof(float)); }

// Max |a - b| / max(max |b|, 1e-12): errors relative to the tensor's scale.
static double max_rel(const float *a, const double *b, long n) {
    double err = 0, scale = 1e-12;
    for (long i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > err) err = fabs(a[i] - b[i]);
        if (fabs(b[i]) > scale) scale = fabs(b[i]);
    }
    return err / scale;
}

static const int sizes[] = {1, 3, 17, 65};
#define N_SIZES 4

// ---------------------------------------------------------------------------
// Linear

static void test_linear(void) {
    double worst_fwd = 0, worst_bwd = 0;
    for (int a = 0; a < N_SIZES; a++) for (int b = 0; b < N_SIZES; b++) for (int c = 0; c < N_SIZES; c++) {
        int N = sizes[a], IC = sizes[b], OC = sizes[c];
        float *x = random_floats((long)N * IC, 1), *w = random_floats((long)OC * IC, 1), *bias = random_floats(OC, 1);
        float *y = zeros((long)N * OC), *dy = random_floats((long)N * OC, 1);
        float *dx = random_floats((long)N * IC, 1), *dw = random_floats((long)OC * IC, 1), *db = random_floats(OC, 1);
        float *dx0 = malloc_check((size_t)N * IC * sizeof(float)), *dw0 = malloc_check((size_t)OC * IC * sizeof(float));
        float *db0 = malloc_check((size_t)OC * sizeof(float));
        memcpy(dx0, dx, (size_t)N * IC * sizeof(float)); memcpy(dw0, dw, (size_t)OC * IC * sizeof(float));
        memcpy(db0, db, (size_t)OC * sizeof(float));
        linear_forward(y, x, w, bias, N, IC, OC);
        linear_backward(dx, dw, db, dy, x, w, N, IC, OC);
        double *ry = malloc_check((size_t)N * OC * sizeof(double)), *rdx = malloc_check((size_t)N * IC * sizeof(double));
        double *rdw = malloc_check((size_t)OC * IC * sizeof(double)), *rdb = malloc_check((size_t)OC * sizeof(double));
        for (int n = 0; n < N; n++) for (int o = 0; o < OC; o++) {
            double s = bias[o];
            for (int i = 0; i < IC; i++) s += (double)x[n * IC + i] * w[o * IC + i];
            ry[n * OC + o] = s;
        }
        for (int n = 0; n < N; n++) for (int i = 0; i < IC; i++) {
            double s = dx0[n * IC + i];
            for (int o = 0; o < OC; o++) s += (double)dy[n * OC + o] * w[o * IC + i];
            rdx[n * IC + i] = s;
        }
        for (int o = 0; o < OC; o++) {
            double sb = db0[o];
            for (int n = 0; n < N; n++) sb += dy[n * OC + o];
            rdb[o] = sb;
            for (int i = 0; i < IC; i++) {
                double s = dw0[o * IC + i];
                for (int n = 0; n < N; n++) s += (double)dy[n * OC + o] * x[n * IC + i];
                rdw[o * IC + i] = s;
            }
        }
        double ef = max_rel(y, ry, (long)N * OC);
        double eb = fmax(max_rel(dx, rdx, (long)N * IC), fmax(max_rel(dw, rdw, (long)OC * IC), max_rel(db, rdb, OC)));
        if (ef > worst_fwd) worst_fwd = ef;
        if (eb > worst_bwd) worst_bwd = eb;
        free(x); free(w); free(bias); free(y); free(dy); free(dx); free(dw); free(db); free(dx0); free(dw0); free(db0);
        free(ry); free(rdx); free(rdw); free(rdb);
    }
    CHECK(worst_fwd < 1e-5, "linear forward = naive loop, sizes 1..65 (max rel %.1e)", worst_fwd);
    CHECK(worst_bwd < 1e-5, "linear backward accumulates dx, dW, db = naive loops (max rel %.1e)", worst_bwd);
    // NULL bias and NULL dinp are allowed.
    float x[6] = {1, 2, 3, 4, 5, 6}, w[4] = {1, 0, 0, 1}, y[6], dw[4] = {0};
    linear_forward(y, x, w, NULL, 3, 2, 2);
    linear_backward(NULL, dw, NULL, x, x, w, 3, 2, 2);
    CHECK(y[4] == 5 && y[5] == 6 && dw[0] == 35 && dw[1] == 44, "linear without bias and without dinp");
}

// ---------------------------------------------------------------------------
// LayerNorm

static double layernorm_loss(const float *x, const float *w, const float *b, const float *R, int N, int C) {
    float *y = zeros((long)N * C), *mean = zeros(N), *rstd = zeros(N);
    layernorm_forward(y, mean, rstd, x, w, b, N, C);
    double loss = dot(y, R, (long)N * C);
    free(y); free(mean); free(rstd);
    return loss;
}


typedef struct { float *x, *w, *b, *R; int N, C; } LnCtx;
static double ln_loss(void *c) { LnCtx *k = c; return layernorm_loss(k->x, k->w, k->b, k->R, k->N, k->C); }

// linear_fused_forward gives the bits of the separate passes it replaces:
// linear_forward, the activation, dropout_forward_seeded.
static void test_linear_fused(void) {
    int N = 37, IC = 29, OC = 300;   // N * OC above the kernels' parallel threshold
    float *x = random_floats((long)N * IC, 1), *w = random_floats((long)OC * IC, 1), *bias = random_floats(OC, 1);
    float *ref = zeros((long)N * OC), *ref_act = zeros((long)N * OC);
    float *out = zeros((long)N * OC), *act = zeros((long)N * OC);
    int same = 1;
    for (int act_fn = LINEAR_NO_ACT; act_fn <= LINEAR_GELU; act_fn++)
        for (int drop = 0; drop <= 1; drop++) {
            float p = drop ? 0.3f : 0.0f;
            uint64_t seed = drop ? 0x1234567887654321ull : 0;
            linear_forward(ref, x, w, bias, N, IC, OC);
            if (act_fn == LINEAR_RELU) relu_forward(ref_act, ref, (long)N * OC);
            else if (act_fn == LINEAR_GELU) gelu_forward(ref_act, ref, (long)N * OC);
            else memcpy(ref_act, ref, (size_t)N * OC * sizeof(float));
            dropout_forward_seeded(ref_act, ref_act, (long)N * OC, p, seed);
            LinearEpilogue e;
            // separate buffers, then in place (act == out, as the FFN runs ReLU)
            linear_epilogue_init(&e, bias, act, OC, act_fn, p, seed);
            linear_fused_forward(out, x, w, N, IC, &e);
            int ok1 = !memcmp(out, ref, (size_t)N * OC * sizeof(float));
            int ok2 = !memcmp(act, ref_act, (size_t)N * OC * sizeof(float));
            linear_epilogue_init(&e, bias, out, OC, act_fn, p, seed);
            linear_fused_forward(out, x, w, N, IC, &e);
            int ok3 = !memcmp(out, ref_act, (size_t)N * OC * sizeof(float));
            same &= ok1 && ok2 && ok3;
        }
    CHECK(same, "fused Linear + activation + dropout = the separate passes, bit for bit (none/ReLU/GELU, p 0/0.3)");
    free(x); free(w); free(bias); free(ref); free(ref_act); free(out); free(act);
}

// Residual + LayerNorm fused = the sum, then LayerNorm, bit for bit, both
// directions (a size above the parallel threshold).
static void test_layernorm_residual(void) {
    int N = 300, C = 65;
    long n = (long)N * C;
    float *a = random_floats(n, 2), *b = random_floats(n, 2), *w = random_floats(C, 1), *bias = random_floats(C, 1);
    float *sum = zeros(n), *y1 = zeros(n), *y2 = zeros(n), *m1 = zeros(N), *m2 = zeros(N), *r1 = zeros(N), *r2 = zeros(N);
    residual_forward(sum, a, b, n);
    layernorm_forward(y1, m1, r1, sum, w, bias, N, C);
    layernorm_residual_forward(y2, m2, r2, a, b, w, bias, N, C);
    CHECK(!memcmp(y1, y2, (size_t)n * sizeof(float)) && !memcmp(m1, m2, (size_t)N * sizeof(float)) &&
          !memcmp(r1, r2, (size_t)N * sizeof(float)), "residual + layernorm fused = residual then layernorm, bit for bit");
    float *y3 = zeros(n);
    layernorm_residual_recompute(y3, a, b, w, bias, m2, r2, N, C);
    CHECK(!memcmp(y2, y3, (size_t)n * sizeof(float)), "layernorm output rebuilt from mean and rstd, bit for bit");
    free(y3);
    float *R = random_floats(n, 1), *dx1 = zeros(n), *dx2 = zeros(n), *dw1 = zeros(C), *dw2 = zeros(C);
    float *db1 = zeros(C), *db2 = zeros(C);
    layernorm_backward(dx1, dw1, db1, R, sum, w, m1, r1, N, C);
    layernorm_residual_backward(dx2, dw2, db2, R, a, b, w, m1, r1, N, C);
    CHECK(!memcmp(dx1, dx2, (size_t)n * sizeof(float)) && !memcmp(dw1, dw2, (size_t)C * sizeof(float)) &&
          !memcmp(db1, db2, (size_t)C * sizeof(float)), "fused residual + layernorm backward = layernorm backward on the sum");
    free(a); free(b); free(w); free(bias); free(sum); free(y1); free(y2); free(m1); free(m2); free(r1); free(r2);
    free(R); free(dx1); free(dx2); free(dw1); free(dw2); free(db1); free(db2);
}

static void test_layernorm(void) {
    double worst = 0, worst_fd = 0;
    for (int a = 0; a < N_SIZES; a++) for (int b = 1; b < N_SIZES; b++) {
        int N = sizes[a], C = sizes[b];
        float *x = random_floats((long)N * C, 2), *w = random_floats(C, 1), *bias = random_floats(C, 1);
        for (long i = 0; i < (long)N * C; i++) x[i] += 3.0f;   // a large mean, as residual streams have
        float *y = zeros((long)N * C), *mean = zeros(N), *rstd = zeros(N);
        layernorm_forward(y, mean, rstd, x, w, bias, N, C);
        double *ry = malloc_check((size_t)N * C * sizeof(double));
        for (int n = 0; n < N; n++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += x[n * C + c];
            m /= C;
            for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
            double s = 1.0 / sqrt(v / C + 1e-5);
            for (int c = 0; c < C; c++) ry[n * C + c] = (x[n * C + c] - m) * s * w[c] + bias[c];
        }
        double e = max_rel(y, ry, (long)N * C);
        if (e > worst) worst = e;
        // backward against finite differences (only for moderate sizes, FD is O(n^2))
        if (N <= 17 && C <= 17) {
            float *R = random_floats((long)N * C, 1);
            float *dx = zeros((long)N * C), *dw = zeros(C), *db = zeros(C);
            layernorm_backward(dx, dw, db, R, x, w, mean, rstd, N, C);
            LnCtx ctx = {x, w, bias, R, N, C};
            double e1 = fd_check(x, (long)N * C, dx, 1e-2f, ln_loss, &ctx);
            double e2 = fd_check(w, C, dw, 1e-2f, ln_loss, &ctx);
            double e3 = fd_check(bias, C, db, 1e-2f, ln_loss, &ctx);
            double ef = fmax(e1, fmax(e2, e3));
            if (ef > worst_fd) worst_fd = ef;
            free(R); free(dx); free(dw); free(db);
        }
        free(x); free(w); free(bias); free(y); free(mean); free(rstd); free(ry);
    }
    CHECK(worst < 1e-5, "layernorm forward = naive loop (max rel %.1e)", worst);
    CHECK(worst_fd < 5e-3, "layernorm backward = finite differences for x, weight, bias (max rel %.1e)", worst_fd);
    // C == 1: the output is the bias, the input gets no gradient.
    float x = 7, w = 2, b = 0.5f, y, mean, rstd, dx = 0, dw = 0, db = 0, dy = 1;
    layernorm_forward(&y, &mean, &rstd, &x, &w, &b, 1, 1);
    layernorm_backward(&dx, &dw, &db, &dy, &x, &w, &mean, &rstd, 1, 1);
    CHECK(y == 0.5f && dx == 0 && db == 1, "layernorm of one channel is its bias");
    test_layernorm_residual();
}

// Reductions over rows give the same bits for 1 and 2 threads.
static void test_thread_independence(void) {
    int N = 257, C = 129;   // above the kernels' threshold for going parallel
    float *x = random_floats((long)N * C, 1), *w = random_floats(C, 1), *b = random_floats(C, 1);
    float *R = random_floats((long)N * C, 1), *y = zeros((long)N * C), *mean = zeros(N), *rstd = zeros(N);
    layernorm_forward(y, mean, rstd, x, w, b, N, C);
    float *dw[2], *db[2], *dx[2], *dtab[2];
    int tokens[257];
    for (int i = 0; i < N; i++) tokens[i] = i % 5;
    int saved = threads_get();
    for (int t = 0; t < 2; t++) {
        threads_set(t + 1);
        dw[t] = zeros(C); db[t] = zeros(C); dx[t] = zeros((long)N * C); dtab[t] = zeros(5L * C);
        layernorm_backward(dx[t], dw[t], db[t], R, x, w, mean, rstd, N, C);
        embedding_backward(dtab[t], R, tokens, 1, N, C);
    }
    threads_set(saved);
    CHECK(!memcmp(dw[0], dw[1], C * sizeof(float)) && !memcmp(db[0], db[1], C * sizeof(float)) &&
          !memcmp(dx[0], dx[1], (size_t)N * C * sizeof(float)) && !memcmp(dtab[0], dtab[1], 5 * C * sizeof(float)),
          "layernorm and embedding backward: bit-identical with 1 and 2 threads");
    for (int t = 0; t < 2; t++) { free(dw[t]); free(db[t]); free(dx[t]); free(dtab[t]); }
    free(x); free(w); free(b); free(R); free(y); free(mean); free(rstd);
}

// ---------------------------------------------------------------------------
// Activations

typedef struct { float *x, *R; long n; int gelu; } ActCtx;
static double act_loss(void *c) {
    ActCtx *k = c;
    float *y = zeros(k->n);
    if (k->gelu) gelu_forward(y, k->x, k->n); else relu_forward(y, k->x, k->n);
    double l = dot(y, k->R, k->n);
    free(y);
    return l;
}

static void test_activations(void) {
    long n = 65;
    float *x = random_floats(n, 4), *y = zeros(n), *R = random_floats(n, 1);
    x[0] = 0.0f;   // ReLU's kink: derivative 0 there, as torch
    for (long i = 1; i < n; i++) if (fabsf(x[i]) < 0.05f) x[i] = 0.5f;  // keep FD off the kink
    double err = 0;
    gelu_forward(y, x, n);
    for (long i = 0; i < n; i++) {
        double ref = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
        if (fabs(y[i] - ref) > err) err = fabs(y[i] - ref);
    }
    CHECK(err < 1e-6, "gelu = 0.5 x (1 + erf(x / sqrt 2)) (max abs %.1e)", err);
    relu_forward(y, x, n);
    int relu_ok = 1;
    for (long i = 0; i < n; i++) relu_ok &= y[i] == (x[i] > 0 ? x[i] : 0);
    CHECK(relu_ok, "relu = max(x, 0)");
    relu_forward(y, x, n);
    float *xc = malloc_check((size_t)n * sizeof(float));
    memcpy(xc, x, (size_t)n * sizeof(float));
    relu_forward(xc, xc, n);
    CHECK(!memcmp(xc, y, (size_t)n * sizeof(float)), "relu in place");
    for (int gelu = 0; gelu < 2; gelu++) {
        float *dx = zeros(n);
        if (gelu) gelu_backward(dx, R, x, n); else relu_backward(dx, R, x, n);
        ActCtx ctx = {x, R, n, gelu};
        double e;
        if (gelu) e = fd_check(x, n, dx, 1e-3f, act_loss, &ctx);
        else e = fd_check(x + 1, n - 1, dx + 1, 1e-3f, act_loss, &ctx);  // skip the kink at x[0]
        CHECK(e < 2e-3, "%s backward = finite differences (max rel %.1e)", gelu ? "gelu" : "relu", e);
        if (!gelu) CHECK(dx[0] == 0.0f, "relu derivative at 0 is 0");
        free(dx);
    }
    free(x); free(y); free(R); free(xc);
}

// ---------------------------------------------------------------------------
// Dropout

static void test_dropout(void) {
    long n = 100003;
    float *x = random_floats(n, 1), *y = zeros(n), *y2 = zeros(n);
    uint8_t *keep = malloc_check((size_t)n), *keep2 = malloc_check((size_t)n);
    float p = 0.3f;
    Rng r1, r2;
    rng_seed(&r1, 9); rng_seed(&r2, 9);
    dropout_forward(y, keep, x, n, p, &r1);
    long kept = 0;
    int scaled = 1;
    for (long i = 0; i < n; i++) {
        kept += keep[i];
        scaled &= keep[i] ? y[i] == x[i] * (1.0f / (1.0f - p)) : y[i] == 0.0f;
    }
    double frac = 1.0 - (double)kept / n;
    CHECK(fabs(frac - p) < 0.01, "dropout drops a fraction p = 0.3 (%.4f)", frac);
    CHECK(scaled, "dropout scales the kept values by 1/(1-p)");
    int saved = threads_get();
    threads_set(1);
    dropout_forward(y2, keep2, x, n, p, &r2);
    threads_set(saved);
    CHECK(!memcmp(keep, keep2, (size_t)n) && !memcmp(y, y2, (size_t)n * sizeof(float)),
          "dropout mask depends on the seed only, not on the thread count");
    // backward is the same mask and scale, in place
    float *d = random_floats(n, 1), *d0 = malloc_check((size_t)n * sizeof(float));
    memcpy(d0, d, (size_t)n * sizeof(float));
    dropout_backward(d, keep, n, p);
    int back_ok = 1;
    for (long i = 0; i < n; i++) back_ok &= d[i] == (keep[i] ? d0[i] * (1.0f / (1.0f - p)) : 0.0f);
    CHECK(back_ok, "dropout backward applies the kept mask and scale");
    // p = 0 and a NULL mask are the identity
    dropout_forward(y, NULL, x, n, 0.5f, &r1);
    dropout_forward(y2, keep, x, n, 0.0f, &r1);
    CHECK(!memcmp(y, x, (size_t)n * sizeof(float)) && !memcmp(y2, x, (size_t)n * sizeof(float)),
          "dropout with p = 0 or no mask is the identity");
    // in place
    memcpy(y, x, (size_t)n * sizeof(float));
    rng_seed(&r1, 9);
    dropout_forward(y, keep2, y, n, p, &r1);
    int inplace_ok = 1;
    for (long i = 0; i < n; i++) inplace_ok &= y[i] == (keep2[i] ? x[i] * (1.0f / (1.0f - p)) : 0.0f);
    CHECK(inplace_ok, "dropout in place equals out of place with the same seed");
    // seeded: the mask dropout_forward drew, without storing it
    Rng r3;
    rng_seed(&r3, 9);
    uint64_t seed = rng_next(&r3);
    float *y3 = zeros(n);
    dropout_forward_seeded(y3, x, n, p, seed);
    CHECK(!memcmp(y3, y, (size_t)n * sizeof(float)), "seeded dropout forward = dropout_forward with that seed");
    memcpy(d, d0, (size_t)n * sizeof(float));
    dropout_backward_seeded(d, n, p, seed);
    int seeded_back = 1;
    for (long i = 0; i < n; i++) seeded_back &= d[i] == (keep2[i] ? d0[i] * (1.0f / (1.0f - p)) : 0.0f);
    CHECK(seeded_back, "seeded dropout backward rebuilds the mask from the seed");
    // ReLU + dropout backward from the output alone
    float *pre = random_floats(n, 1), *act = zeros(n), *da = random_floats(n, 1), *dref = zeros(n), *dtmp = zeros(n);
    relu_forward(act, pre, n);
    dropout_forward(act, keep, act, n, p, &r1);
    memcpy(dtmp, da, (size_t)n * sizeof(float));
    dropout_backward(dtmp, keep, n, p);
    relu_backward(dref, dtmp, pre, n);
    relu_dropout_backward(da, act, n, p);
    CHECK(!memcmp(da, dref, (size_t)n * sizeof(float)), "relu_dropout_backward from the output = dropout then relu backward");
    free(x); free(y); free(y2); free(y3); free(keep); free(keep2); free(d); free(d0);
    free(pre); free(act); free(da); free(dref); free(dtmp);
}

// ---------------------------------------------------------------------------
// Residual, embedding

static void test_residual(void) {
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, out[3];
    residual_forward(out, a, b, 3);
    add_inplace(a, b, 3);
    CHECK(out[0] == 11 && out[2] == 33 && a[1] == 22, "residual add and accumulate");
}

static void test_embedding(void) {
    int B = 3, T = 17, C = 65, V = 7, pos0 = 2;
    int tokens[51];
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 5) % V;
    float *table = random_floats((long)V * C, 1), *pe = random_floats((long)(T + pos0) * C, 1);
    float *out = zeros((long)B * T * C), *dout = random_floats((long)B * T * C, 1), *dtab = random_floats((long)V * C, 1);
    double *ref = malloc_check((size_t)V * C * sizeof(double));
    for (long i = 0; i < (long)V * C; i++) ref[i] = dtab[i];
    embedding_forward(out, tokens, table, pe, B, T, C, pos0);
    double err = 0, s = sqrt((double)C);
    for (int bt = 0; bt < B * T; bt++)
        for (int c = 0; c < C; c++) {
            double r = table[tokens[bt] * C + c] * s + pe[(pos0 + bt % T) * C + c];
            if (fabs(out[(long)bt * C + c] - r) > err) err = fabs(out[(long)bt * C + c] - r);
            ref[tokens[bt] * C + c] += s * dout[(long)bt * C + c];
        }
    CHECK(err < 1e-5, "embedding * sqrt(C) + positions (offset %d) = naive (max abs %.1e)", pos0, err);
    embedding_backward(dtab, dout, tokens, B, T, C);
    CHECK(max_rel(dtab, ref, (long)V * C) < 1e-5, "embedding backward sums repeated tokens' gradients");
    free(table); free(pe); free(out); free(dout); free(dtab); free(ref);
}

// ---------------------------------------------------------------------------
// Masked softmax

static void ref_masked_softmax(double *p, const float *s, const uint8_t *pad, int Tq, int Tk, int causal) {
    for (int i = 0; i < Tq; i++) {
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < Tk; j++) {
            int vis = !(pad && pad[j]) && (!causal || j <= i + Tk - Tq);
            if (vis && s[i * Tk + j] > mx) mx = s[i * Tk + j];
        }
        for (int j = 0; j < Tk; j++) {
            int vis = !(pad && pad[j]) && (!causal || j <= i + Tk - Tq);
            p[i * Tk + j] = vis ? exp(s[i * Tk + j] - mx) : 0;
            sum += p[i * Tk + j];
        }
        for (int j = 0; j < Tk; j++) p[i * Tk + j] = sum > 0 ? p[i * Tk + j] / sum : 0;
    }
}

typedef struct { float *s, *R; int N, L; } SmCtx;
static double sm_loss(void *c) {
    SmCtx *k = c;
    float *p = zeros((long)k->N * k->L);
    masked_softmax_forward(p, k->s, NULL, k->N, k->L, 0);
    double l = dot(p, k->R, (long)k->N * k->L);
    free(p);
    return l;
}

static void test_softmax(void) {
    double worst = 0;
    for (int a = 0; a < N_SIZES; a++) for (int b = 0; b < N_SIZES; b++) for (int causal = 0; causal < 2; causal++) {
        int Tq = sizes[a], Tk = sizes[b];
        if (causal && Tq > Tk) continue;
        float *s = random_floats((long)Tq * Tk, 5), *p = zeros((long)Tq * Tk);
        uint8_t *pad = malloc_check((size_t)Tk);
        // all keys but one hidden (the last one, so causal rows before it see nothing in the square case)
        for (int j = 0; j < Tk; j++) pad[j] = j != Tk / 2;
        double *ref = malloc_check((size_t)Tq * Tk * sizeof(double));
        for (int with_pad = 0; with_pad < 2; with_pad++) {
            masked_softmax_forward(p, s, with_pad ? pad : NULL, Tq, Tk, causal);
            ref_masked_softmax(ref, s, with_pad ? pad : NULL, Tq, Tk, causal);
            double e = max_rel(p, ref, (long)Tq * Tk);
            if (e > worst) worst = e;
        }
        free(s); free(p); free(pad); free(ref);
    }
    CHECK(worst < 1e-6, "masked softmax = naive, all-but-one key hidden, causal, Tq != Tk (max rel %.1e)", worst);
    // the one visible key gets probability 1; a row with none becomes zeros
    float s[6] = {1, 2, 3, 4, 5, 6}, p[6];
    uint8_t pad[3] = {1, 0, 1}, all[3] = {1, 1, 1};
    masked_softmax_forward(p, s, pad, 2, 3, 0);
    CHECK(p[1] == 1.0f && p[0] == 0.0f && p[4] == 1.0f && p[5] == 0.0f, "one visible key: probability 1");
    masked_softmax_forward(p, s, all, 2, 3, 0);
    CHECK(p[0] == 0.0f && p[4] == 0.0f, "no visible key: a zero row, not NaN");
    masked_softmax_forward(p, s, NULL, 1, 3, 1);
    CHECK(p[2] > 0 && fabsf(p[0] + p[1] + p[2] - 1.0f) < 1e-6f, "causal with Tq = 1 sees every key (decoding step)");
    // backward against finite differences
    int N = 3, L = 17;
    float *sc = random_floats((long)N * L, 2), *R = random_floats((long)N * L, 1);
    float *pr = zeros((long)N * L), *ds = zeros((long)N * L);
    masked_softmax_forward(pr, sc, NULL, N, L, 0);
    softmax_backward(ds, R, pr, N, L);
    SmCtx ctx = {sc, R, N, L};
    double e = fd_check(sc, (long)N * L, ds, 1e-2f, sm_loss, &ctx);
    CHECK(e < 2e-3, "softmax backward = finite differences (max rel %.1e)", e);
    // hidden entries get no gradient
    float hp[3] = {0, 1, 0}, hd[3] = {5, 6, 7}, hg[3] = {0};
    softmax_backward(hg, hd, hp, 1, 3);
    CHECK(hg[0] == 0 && hg[2] == 0, "hidden keys get no gradient");
    free(sc); free(R); free(pr); free(ds);
}

int main(void) {
    rng_seed(&rng, 12345);
    test_linear();
    test_linear_fused();
    test_layernorm();
    test_thread_independence();
    test_activations();
    test_dropout();
    test_residual();
    test_embedding();
    test_softmax();
    TEST_EXIT();
}
