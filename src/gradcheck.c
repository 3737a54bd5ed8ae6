// Finite-difference gradient check of the whole model. See gradcheck.h.
#include "gradcheck.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

void gradcheck_default_options(GradcheckOptions *opt) {
    opt->eps = 1e-2;
    opt->tol = 1e-2;
    opt->samples = 24;
    opt->seed = 1;
    opt->only = NULL;
}

// The mean loss of a forward with fixed dropout masks, summed in double.
static double eval_loss(Model *m, const Batch *b, float smoothing, uint64_t dropout_seed) {
    Rng rng;
    rng_seed(&rng, dropout_seed);
    model_forward(m, b, smoothing, 1, &rng);
    double total = 0;
    for (long i = 0; i < (long)b->B * b->T; i++) total += m->acts->token_loss[i];
    return m->n_target_tokens ? total / m->n_target_tokens : 0.0;
}

// A hash of the signs of the ReLU inputs at non-pad positions (padded rows
// cannot reach the loss): equal hashes mean no perturbation crossed a kink
// that matters. 0 for GELU models (no kinks).
static uint64_t relu_signature(const Model *m, const Batch *b) {
    if (m->config.activation != ACT_RELU) return 0;
    uint64_t h = 1469598103934665603ull;
    int F = m->config.d_ff;
    for (int l = 0; l < m->config.n_enc_layers; l++)
        for (long r = 0; r < (long)b->B * b->S; r++)
            if (b->src[r] != PAD_ID)
                for (int f = 0; f < F; f++) h = (h ^ (uint64_t)(m->acts->enc[l].ff1[r * F + f] > 0.0f)) * 1099511628211ull;
    for (int l = 0; l < m->config.n_dec_layers; l++)
        for (long r = 0; r < (long)b->B * b->T; r++)
            if (b->tgt_in[r] != PAD_ID)
                for (int f = 0; f < F; f++) h = (h ^ (uint64_t)(m->acts->dec[l].ff1[r * F + f] > 0.0f)) * 1099511628211ull;
    return h;
}

// The derivative of the loss at p[i] by finite differences, from the
// evaluations at p + {h, -h, 2h, -2h} that stay on the same side of every
// ReLU kink: the fourth-order central stencil when all four do, else the
// second-order central one, else a second-order one-sided one. Returns 0
// and sets *ok = 0 when no stencil avoids a kink.
static double finite_difference(Model *m, const Batch *b, float smoothing, uint64_t dropout_seed,
                                float *p, long i, double h, uint64_t base_signature, int *ok) {
    static const double offsets[4] = {1, -1, 2, -2};
    double loss[4], step[4];
    int same[4];
    float saved = p[i];
    for (int k = 0; k < 4; k++) {
        p[i] = (float)(saved + offsets[k] * h);
        step[k] = (double)p[i] - (double)saved;   // the step after rounding to float
        loss[k] = eval_loss(m, b, smoothing, dropout_seed);
        same[k] = relu_signature(m, b) == base_signature;
    }
    p[i] = saved;
    *ok = 1;
    double d1 = (loss[0] - loss[1]) / (step[0] - step[1]);    // O(h^2)
    double d2 = (loss[2] - loss[3]) / (step[2] - step[3]);    // O(4 h^2)
    if (same[0] && same[1] && same[2] && same[3]) return (4.0 * d1 - d2) / 3.0;
    if (same[0] && same[1]) return d1;
    if (same[0] || same[1]) {
        // One side is clean: with f0 = L(p), f'(p) = (4 f(h) - f(2h) - 3 f0) / (2h) + O(h^2).
        int k1 = same[0] ? 0 : 1, k2 = same[0] ? 2 : 3;
        if (same[k2]) {
            double f0 = eval_loss(m, b, smoothing, dropout_seed);
            return (4.0 * (loss[k1] - f0) - (loss[k2] - f0)) / (2.0 * step[k1]);
        }
    }
    *ok = 0;
    return 0.0;
}

static long gcd(long a, long b) {
    while (b) { long t = a % b; a = b; b = t; }
    return a;
}

int gradcheck_model(Model *m, const Batch *b, float smoothing, const GradcheckOptions *opt,
                    const char *label, FILE *out, GradcheckResult *res) {
    uint64_t dropout_seed = opt->seed * 7919 + 17;
    eval_loss(m, b, smoothing, dropout_seed);
    uint64_t base_signature = relu_signature(m, b);
    model_zero_grad(m);
    model_backward(m, b);
    int n = model_tensors(m, 0, NULL, 0);
    TensorView *params = malloc_check((size_t)n * sizeof *params), *grads = malloc_check((size_t)n * sizeof *grads);
    model_tensors(m, 0, params, n);
    model_tensors(m, 1, grads, n);
    Rng pick;
    rng_seed(&pick, opt->seed + 3);
    for (int t = 0; t < n; t++) {
        long numel = params[t].numel;
        long want = opt->samples > 0 && opt->samples < numel ? opt->samples : numel;
        // Visit the values in a spread-out order (a stride coprime with the
        // size walks every value once) until `want` were checked: values at
        // ReLU kinks are skipped and replaced by further ones.
        long stride = numel / want + 1;
        while (gcd(stride, numel) != 1) stride++;
        long start = (long)rng_below(&pick, (uint32_t)numel), checked = 0, skipped = 0;
        double max_err = 0, max_grad = 0;
        for (long k = 0; k < numel && checked < want; k++) {
            long i = (start + k * stride) % numel;
            int fd_ok;
            double fd = finite_difference(m, b, smoothing, dropout_seed, params[t].data, i, opt->eps, base_signature, &fd_ok);
            if (!fd_ok) { skipped++; continue; }
            double analytic = grads[t].data[i];
            if (fabs(fd - analytic) > max_err) max_err = fabs(fd - analytic);
            if (fabs(analytic) > max_grad) max_grad = fabs(analytic);
            checked++;
        }
        double err = max_err / (max_grad > 1e-4 ? max_grad : 1e-4);
        int ok = err <= opt->tol && checked > 0;   // a tensor nothing could check fails
        fprintf(out, "%-24s %-58s checked %3ld/%-5ld skipped %2ld  max_rel %.2e  %s\n", label, params[t].name,
                checked, numel, skipped, err, ok ? "ok" : "FAILED");
        res->n_tensors++;
        res->n_failed += !ok;
        res->n_values += checked;
        res->n_skipped += skipped;
        if (err > res->worst) res->worst = err;
    }
    free(params);
    free(grads);
    return 0;
}

// ---------------------------------------------------------------------------
// The suite

typedef struct {
    const char *name;
    int norm_first, activation, tie_generator, share_embeddings;
    float dropout;
} GradcheckCase;

static const GradcheckCase suite_cases[] = {
    {"postln-relu-untied", 0, ACT_RELU, 0, 0, 0.0f},
    {"preln-gelu-tied", 1, ACT_GELU, 1, 0, 0.0f},
    {"postln-gelu-shared-drop", 0, ACT_GELU, 1, 1, 0.1f},
    {"preln-relu-shared-drop", 1, ACT_RELU, 0, 1, 0.1f},
};

// Three pairs padded on both sides: source lengths 5, 3, 1; target 4, 2, 3.
static void suite_batch(Batch *b, int *src, int *tgt_in, int *tgt_out, int Vs, int Vt, Rng *rng) {
    static const int src_len[3] = {5, 3, 1}, tgt_len[3] = {4, 2, 3};
    int B = 3, S = 5, T = 4;
    for (int i = 0; i < B; i++) {
        for (int s = 0; s < S; s++)
            src[i * S + s] = s < src_len[i] - 1 ? 4 + (int)rng_below(rng, (uint32_t)(Vs - 4)) : s == src_len[i] - 1 ? EOS_ID : PAD_ID;
        for (int t = 0; t < T; t++)
            tgt_in[i * T + t] = t == 0 ? BOS_ID : t < tgt_len[i] ? 4 + (int)rng_below(rng, (uint32_t)(Vt - 4)) : PAD_ID;
        for (int t = 0; t < T; t++)
            tgt_out[i * T + t] = t < tgt_len[i] - 1 ? tgt_in[i * T + t + 1] : t == tgt_len[i] - 1 ? EOS_ID : PAD_ID;
    }
    *b = (Batch){B, S, T, src, tgt_in, tgt_out};
}

// Biases and LayerNorm parameters start at 0 and 1; move them off those
// values so that a mixed-up weight and bias cannot hide.
static void jitter_vectors(Model *m, Rng *rng) {
    int n = model_tensors(m, 0, NULL, 0);
    TensorView *v = malloc_check((size_t)n * sizeof *v);
    model_tensors(m, 0, v, n);
    for (int t = 0; t < n; t++)
        if (v[t].ndim == 1)
            for (long i = 0; i < v[t].numel; i++) v[t].data[i] += 0.2f * (rng_uniform(rng) - 0.5f);
    free(v);
}

int gradcheck_suite(const GradcheckOptions *opt, FILE *out, GradcheckResult *res) {
    memset(res, 0, sizeof *res);
    int n_run = 0;
    for (size_t c = 0; c < sizeof suite_cases / sizeof suite_cases[0]; c++) {
        const GradcheckCase *gc = &suite_cases[c];
        if (opt->only && strcmp(opt->only, gc->name) != 0) continue;
        ModelConfig cfg;
        model_config_default(&cfg);
        cfg.src_vocab = gc->share_embeddings ? 13 : 11;
        cfg.tgt_vocab = 13;
        cfg.d_model = 8; cfg.n_heads = 2; cfg.d_ff = 12;
        cfg.n_enc_layers = 2; cfg.n_dec_layers = 2;
        cfg.max_len = 8;
        cfg.norm_first = gc->norm_first;
        cfg.activation = gc->activation;
        cfg.tie_generator = gc->tie_generator;
        cfg.share_embeddings = gc->share_embeddings;
        cfg.dropout_emb = cfg.dropout_residual = cfg.dropout_attn = cfg.dropout_ffn = gc->dropout;
        Model m;
        if (model_create(&m, &cfg, 3, 5, 4)) return -1;
        Rng rng;
        rng_seed(&rng, opt->seed * 1000 + c);
        model_init_weights(&m, opt->seed * 1000 + c);
        jitter_vectors(&m, &rng);
        int src[15], tgt_in[12], tgt_out[12];
        Batch b;
        suite_batch(&b, src, tgt_in, tgt_out, cfg.src_vocab, cfg.tgt_vocab, &rng);
        gradcheck_model(&m, &b, 0.1f, opt, gc->name, out, res);
        model_free(&m);
        n_run++;
    }
    if (n_run == 0) return attn_error("gradcheck: no case named '%s' (cases: postln-relu-untied, preln-gelu-tied, "
                                      "postln-gelu-shared-drop, preln-relu-shared-drop)", opt->only);
    fprintf(out, "gradcheck: %d tensors, %ld values checked, %ld skipped at ReLU kinks, worst error %.2e (tolerance %.0e)\n",
            res->n_tensors, res->n_values, res->n_skipped, res->worst, opt->tol);
    if (res->n_failed)
        return attn_error("gradcheck: %d of %d tensors over the tolerance %.0e", res->n_failed, res->n_tensors, opt->tol);
    return 0;
}
