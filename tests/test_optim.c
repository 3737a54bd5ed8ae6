// Adam / AdamW against torch.optim (PyTorch 1.13, values printed by a script
// that ran three steps of each on the same numbers), clipping against
// torch.nn.utils.clip_grad_norm_, and the determinism of the norm.
#include "common.h"
#include "model.h"
#include "optim.h"
#include "test.h"
#include "threads.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N 7
static const float p0[N] = {0.5f, -1.25f, 2.0f, 0.0f, -0.003f, 7.5f, 1e-4f};
static const float grads[3][N] = {
    {0.1f, -0.2f, 0.3f, 1.0f, -5.0f, 0.0f, 1e-6f},
    {-0.4f, 0.25f, 0.0f, -1.0f, 2.0f, 0.5f, -1e-6f},
    {0.05f, 0.05f, -0.3f, 0.7f, 0.01f, -0.5f, 3e-6f},
};
static const float lrs[3] = {0.01f, 0.02f, 0.005f};

static void run_three_steps(OptimizerType type, float wd, float *p, Optimizer *o) {
    memcpy(p, p0, sizeof p0);
    optimizer_init(o, type, N, 0.9f, 0.98f, 1e-9f, wd);
    for (int s = 0; s < 3; s++) optimizer_step(o, p, grads[s], lrs[s]);
}

static void check_close(const char *what, const float *got, const float *want, double tol) {
    double max_abs;
    double rel = rel_diff(got, want, N, &max_abs);
    CHECK(rel < tol, "%s: rel diff %.2e, max abs %.2e", what, rel, max_abs);
}

static void test_adam(void) {
    static const float want_p[N] = {0.502905846f, -1.24436975f, 1.97696328f, -0.0101852957f, 0.0152772386f, 7.48541307f, -0.01162042f};
    static const float want_m[N] = {-0.0229000002f, 0.0112999994f, -0.00570000196f, 0.060999997f, -0.223999977f, -0.00500000268f, 2.91000021e-07f};
    static const float want_v[N] = {0.0033780802f, 0.0020433201f, 0.00352872023f, 0.0486079976f, 0.558602035f, 0.00989999995f, 2.18808004e-13f};
    float p[N];
    Optimizer o;
    run_three_steps(OPT_ADAM, 0.0f, p, &o);
    check_close("adam params after 3 steps vs torch", p, want_p, 1e-6);
    check_close("adam first moment vs torch", o.m, want_m, 1e-6);
    check_close("adam second moment vs torch", o.v, want_v, 1e-6);
    CHECK(o.step == 3, "adam counts steps (%ld)", o.step);
    // The smallest parameter moves by about lr per step whatever its gradient
    // scale: Adam's normalization, the reason eps must be tiny (1e-9).
    CHECK(fabsf(p[6] - want_p[6]) < 1e-6f, "adam normalizes a 1e-6 gradient (%.9g vs %.9g)", p[6], want_p[6]);
    optimizer_free(&o);
}

static void test_adam_l2(void) {
    static const float want_p[N] = {0.50256896f, -1.24295628f, 1.97565544f, -0.0101839146f, 0.0152769303f, 7.47290802f, 0.00575834885f};
    float p[N];
    Optimizer o;
    run_three_steps(OPT_ADAM, 0.01f, p, &o);
    check_close("adam with weight_decay 0.01 (L2 in the gradient) vs torch", p, want_p, 1e-6);
    optimizer_free(&o);
}

static void test_adamw(void) {
    static const float want_p[N] = {0.501177073f, -1.24002242f, 1.97000194f, -0.0101608317f, 0.0152592706f, 7.45919704f, -0.0115963295f};
    float p[N];
    Optimizer o;
    run_three_steps(OPT_ADAMW, 0.1f, p, &o);
    check_close("adamw with weight_decay 0.1 (decoupled) vs torch", p, want_p, 1e-6);
    optimizer_free(&o);
}

// Hand-computed first step: m = 0.1 g, v = 0.02 g^2, so the update is
// lr * g / |g| (up to eps) whatever g is.
static void test_first_step_by_hand(void) {
    float p[2] = {1.0f, 1.0f}, g[2] = {4.0f, -0.25f};
    Optimizer o;
    optimizer_init(&o, OPT_ADAM, 2, 0.9f, 0.98f, 1e-9f, 0.0f);
    optimizer_step(&o, p, g, 0.1f);
    CHECK(fabsf(p[0] - 0.9f) < 1e-6f && fabsf(p[1] - 1.1f) < 1e-6f,
          "adam first step is lr * sign(g) (%.7f, %.7f)", p[0], p[1]);
    optimizer_free(&o);
}

static void test_clip(void) {
    static const float want[N] = {0.0195590239f, -0.0391180478f, 0.0586770698f, 0.195590228f, -0.977951169f, 0.0f, 1.95590232e-07f};
    float g[N];
    memcpy(g, grads[0], sizeof g);
    double norm = grad_clip(g, N, 1.0);
    CHECK(fabs(norm - 5.11272907) < 1e-6, "global norm %.9f vs torch 5.11272907", norm);
    check_close("clip to norm 1 vs torch clip_grad_norm_", g, want, 1e-6);
    memcpy(g, grads[0], sizeof g);
    grad_clip(g, N, 100.0);
    CHECK(memcmp(g, grads[0], sizeof g) == 0, "clip leaves gradients under the norm untouched");
    grad_clip(g, N, 0.0);
    CHECK(memcmp(g, grads[0], sizeof g) == 0, "clip_norm 0 only measures");
}

// The norm is summed in fixed chunks, so any thread count gives the same bits.
static void test_norm_deterministic(void) {
    enum { BIG = 100003 };
    static float g[BIG];
    for (int i = 0; i < BIG; i++) g[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    double a = grad_global_norm(g, BIG), b = grad_global_norm(g, BIG);
    double want = 0;
    for (int i = 0; i < BIG; i++) want += (double)g[i] * g[i];
    want = sqrt(want);
    CHECK(a == b && fabs(a - want) < 1e-9 * want, "norm of 100003 values: %.12f (serial %.12f)", a, want);
    CHECK(grad_global_norm(g, 3) == sqrt((double)g[0] * g[0] + (double)g[1] * g[1] + (double)g[2] * g[2]),
          "norm of fewer values than chunks");
}

static void test_ema_and_names(void) {
    float ema[2] = {1.0f, 0.0f}, p[2] = {0.0f, 1.0f};
    ema_update(ema, p, 2, 0.75f);
    CHECK(ema[0] == 0.75f && ema[1] == 0.25f, "ema update (%.3f, %.3f)", ema[0], ema[1]);
    OptimizerType t;
    CHECK(optimizer_parse("adamw", &t) == 0 && t == OPT_ADAMW, "parse adamw");
    CHECK(optimizer_parse("sgd", &t) != 0, "unknown optimizer is an error");
}

// Accumulating two half batches (token-weighted) gives the gradient of the
// whole batch, whose rows have different numbers of target tokens.
static void test_accumulation_equals_big_batch(void) {
    ModelConfig c;
    model_config_default(&c);
    c.src_vocab = 11; c.tgt_vocab = 13; c.d_model = 8; c.n_heads = 2; c.d_ff = 16;
    c.n_enc_layers = 1; c.n_dec_layers = 1; c.max_len = 16;
    c.dropout_emb = c.dropout_residual = c.dropout_attn = c.dropout_ffn = 0.0f;
    enum { B = 4, S = 5, T = 6 };
    Model m;
    if (model_create(&m, &c, B, S, T) != 0) { printf("FAIL model_create: %s\n", attn_last_error()); return; }
    model_init_weights(&m, 3);
    static const int tgt_len[B] = {5, 1, 3, 5};  // tokens before </s>: rows hold 6, 2, 4, 6 targets
    int src[B * S], tgt_in[B * T], tgt_out[B * T];
    for (int b = 0; b < B; b++) {
        for (int s = 0; s < S; s++) src[b * S + s] = s == S - 1 ? EOS_ID : 4 + (b * 3 + s) % 7;
        for (int t = 0; t < T; t++) {
            int y = 4 + (b + 2 * t) % 9;
            tgt_in[b * T + t] = t == 0 ? BOS_ID : t <= tgt_len[b] ? 4 + (b + 2 * (t - 1)) % 9 : PAD_ID;
            tgt_out[b * T + t] = t < tgt_len[b] ? y : t == tgt_len[b] ? EOS_ID : PAD_ID;
        }
    }
    Batch whole = {B, S, T, src, tgt_in, tgt_out};
    long n = m.n_params;
    float *big = malloc_check(sizeof(float) * (size_t)n);
    model_zero_grad(&m);
    model_forward(&m, &whole, 0.1f, 0, NULL);
    model_backward(&m, &whole);
    memcpy(big, m.grad_memory, sizeof(float) * (size_t)n);
    // Two halves: rows 0-1 (8 targets) then rows 2-3 (10 targets).
    Batch first = {2, S, T, src, tgt_in, tgt_out};
    Batch second = {2, S, T, src + 2 * S, tgt_in + 2 * T, tgt_out + 2 * T};
    model_zero_grad(&m);
    model_forward(&m, &first, 0.1f, 0, NULL);
    long done = m.n_target_tokens;
    grad_accumulate_before(m.grad_memory, n, 0, done);
    model_backward(&m, &first);
    grad_accumulate_after(m.grad_memory, n, 0, done);
    model_forward(&m, &second, 0.1f, 0, NULL);
    long next = m.n_target_tokens;
    grad_accumulate_before(m.grad_memory, n, done, next);
    model_backward(&m, &second);
    grad_accumulate_after(m.grad_memory, n, done, next);
    double max_abs, rel = rel_diff(m.grad_memory, big, n, &max_abs);
    CHECK(done == 8 && next == 10 && rel < 1e-5,
          "2 accumulated half batches (8 + 10 targets) = the whole batch: rel diff %.2e, max abs %.2e", rel, max_abs);
    // Without the token weighting (a plain average of the two means) it differs.
    float *plain = malloc_check(sizeof(float) * (size_t)n);
    model_zero_grad(&m);
    model_forward(&m, &first, 0.1f, 0, NULL);
    model_backward(&m, &first);
    model_forward(&m, &second, 0.1f, 0, NULL);
    model_backward(&m, &second);
    for (long i = 0; i < n; i++) plain[i] = 0.5f * m.grad_memory[i];
    CHECK(rel_diff(plain, big, n, NULL) > 1e-3, "an unweighted average would not match (rel diff %.2e)", rel_diff(plain, big, n, NULL));
    free(plain);
    free(big);
    model_free(&m);
}

// The scalar Adam update, written out as PyTorch's formula: optimizer_step
// (vectorized, split over threads) must give the same bits for every element.
static void adam_scalar_steps(OptimizerType type, float wd, float *p, float *m, float *v,
                              const float *g_all, long n, int steps) {
    for (int s = 1; s <= steps; s++) {
        float lr = lrs[(s - 1) % 3];
        const float *g_step = g_all + (long)(s - 1) * n;
        float step_size = (float)(lr / (1.0 - pow((double)0.9f, s)));
        float inv_b2 = (float)(1.0 / sqrt(1.0 - pow((double)0.999f, s)));
        for (long i = 0; i < n; i++) {
            float g = g_step[i], x = p[i];
            if (type == OPT_ADAMW) x *= 1.0f - lr * wd;
            else if (wd != 0.0f) g += wd * x;
            m[i] = 0.9f * m[i] + (1.0f - 0.9f) * g;
            v[i] = 0.999f * v[i] + (1.0f - 0.999f) * g * g;
            float denom = sqrtf(v[i]) * inv_b2 + 1e-8f;
            p[i] = x - step_size * (m[i] / denom);
        }
    }
}

static void test_vector_update_bits(void) {
    const long n = 1003;  // not a multiple of the vector width or of 16
    const int steps = 3;
    float *g = malloc_check(sizeof(float) * n * steps);
    float *p_want = malloc_check(sizeof(float) * n), *p_got = malloc_check(sizeof(float) * n);
    float *m_want = calloc_check(n, sizeof(float)), *v_want = calloc_check(n, sizeof(float));
    uint32_t x = 12345;
    for (long i = 0; i < n * steps; i++) {
        x = x * 1664525u + 1013904223u;
        g[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * (i % 7 == 0 ? 1e-5f : 2.0f);
    }
    const OptimizerType types[3] = {OPT_ADAM, OPT_ADAM, OPT_ADAMW};
    const float wds[3] = {0.0f, 0.01f, 0.1f};
    for (int t = 0; t < 3; t++) {
        for (int threads = 1; threads <= 3; threads++) {
            for (long i = 0; i < n; i++) p_want[i] = p_got[i] = (float)(i % 13) * 0.25f - 1.5f;
            memset(m_want, 0, sizeof(float) * n);
            memset(v_want, 0, sizeof(float) * n);
            adam_scalar_steps(types[t], wds[t], p_want, m_want, v_want, g, n, steps);
            threads_set(threads);
            Optimizer o;
            optimizer_init(&o, types[t], n, 0.9f, 0.999f, 1e-8f, wds[t]);
            for (int s = 0; s < steps; s++) optimizer_step(&o, p_got, g + (long)s * n, lrs[s % 3]);
            CHECK(memcmp(p_got, p_want, sizeof(float) * n) == 0 && memcmp(o.m, m_want, sizeof(float) * n) == 0 &&
                  memcmp(o.v, v_want, sizeof(float) * n) == 0,
                  "%s wd %g on %d thread(s): params, m, v bit-identical to the scalar update",
                  optimizer_name(types[t]), wds[t], threads);
            optimizer_free(&o);
        }
    }
    threads_set(threads_machine_cores());
    free(g);
    free(p_want);
    free(p_got);
    free(m_want);
    free(v_want);
}

int main(void) {
    test_accumulation_equals_big_batch();
    test_adam();
    test_adam_l2();
    test_adamw();
    test_vector_update_bits();
    test_first_step_by_hand();
    test_clip();
    test_norm_deterministic();
    test_ema_and_names();
    TEST_EXIT();
}
