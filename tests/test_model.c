// Golden tests: the model against PyTorch (tools/reference.py fixtures).
// Each fixture holds a small random model, a padded batch, PyTorch's logits,
// label-smoothed loss and every parameter gradient. We load the weights, run
// forward and backward, and compare tensor by tensor (norm-wise relative
// difference): logits and loss within 1e-5, gradients within 1e-4.
// Also: the model's own invariants (layout, tensor names, decoding cache).
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "config.h"
#include "model.h"
#include "safetensors.h"
#include "test.h"

#define LOGIT_TOL 1e-5
#define GRAD_TOL 1e-4

static const char *fixture_cases[] = {
    "postln_relu_untied", "preln_gelu_tied", "postln_gelu_shared_tied", "preln_relu_shared",
};

static const char *fixture_dir(void) {
    const char *dir = getenv("ATTN_FIXTURES");
    return dir ? dir : "tests/fixtures";
}

// Token ids are stored as float32 in the fixture (exact for small ints).
static int *tokens_from(const StTensor *t) {
    int *ids = malloc_check((size_t)t->numel * sizeof(int));
    for (long i = 0; i < t->numel; i++) ids[i] = (int)t->data[i];
    return ids;
}

// Copies every parameter of the fixture into the model; fails on a missing
// name or a shape mismatch.
static int load_params(Model *m, const SafeTensors *st, const char *path) {
    int n = model_tensors(m, 0, NULL, 0);
    TensorView *views = malloc_check((size_t)n * sizeof *views);
    model_tensors(m, 0, views, n);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const StTensor *t = st_find(st, views[i].name);
        if (!t) rc = attn_error("%s: no tensor %s", path, views[i].name);
        else if (t->numel != views[i].numel) rc = attn_error("%s: %s has %ld values, model %ld", path, views[i].name, t->numel, views[i].numel);
        else memcpy(views[i].data, t->data, (size_t)t->numel * sizeof(float));
    }
    // Every fixture tensor that is not batch/output/gradient must be a model tensor.
    int n_fixture_params = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const char *name = st->tensors[i].name;
        if (strncmp(name, "batch.", 6) && strncmp(name, "out.", 4) && strncmp(name, "grad.", 5)) n_fixture_params++;
    }
    if (rc == 0 && n_fixture_params != n)
        rc = attn_error("%s: %d parameter tensors, model has %d", path, n_fixture_params, n);
    free(views);
    return rc;
}

static void compare_gradients(const Model *m, const SafeTensors *st, const char *name) {
    int n = model_tensors(m, 1, NULL, 0);
    TensorView *views = malloc_check((size_t)n * sizeof *views);
    model_tensors(m, 1, views, n);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof key, "grad.%s", views[i].name);
        const StTensor *t = st_find(st, key);
        if (!t || t->numel != views[i].numel) { CHECK(0, "%s: gradient %s present", name, views[i].name); continue; }
        double max_abs, rel = rel_diff(views[i].data, t->data, t->numel, &max_abs);
        printf("INFO %s grad %-55s max_abs %.2e rel %.2e\n", name, views[i].name, max_abs, rel);
        CHECK(rel <= GRAD_TOL, "%s: gradient %s within %.0e (rel %.2e)", name, views[i].name, GRAD_TOL, rel);
        if (rel > worst) worst = rel;
    }
    printf("INFO %s worst gradient rel %.2e\n", name, worst);
    // The comparison must be able to fail: a single perturbed gradient value
    // (the largest of the first tensor, off by 1%) is caught.
    const StTensor *t = st_find(st, "grad.src_embed.weight");
    if (t) {
        float *copy = malloc_check((size_t)t->numel * sizeof(float));
        memcpy(copy, views[0].data, (size_t)t->numel * sizeof(float));
        long big = 0;
        for (long j = 0; j < t->numel; j++) if (fabsf(copy[j]) > fabsf(copy[big])) big = j;
        copy[big] *= 1.01f;
        double rel = rel_diff(copy, t->data, t->numel, NULL);
        CHECK(rel > GRAD_TOL, "%s: a 1%% error in one gradient value is caught (rel %.2e)", name, rel);
        free(copy);
    }
    free(views);
}

static void golden_case(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", fixture_dir(), name);
    SafeTensors st;
    if (st_load(path, &st)) { CHECK(0, "%s: load fixture: %s", name, attn_last_error()); return; }
    ModelConfig cfg;
    const char *text = st_meta(&st, "model_config"), *smooth_text = st_meta(&st, "label_smoothing");
    const StTensor *src_t = st_find(&st, "batch.src"), *in_t = st_find(&st, "batch.tgt_in"),
                   *out_t = st_find(&st, "batch.tgt_out"), *logits_t = st_find(&st, "out.logits"),
                   *loss_t = st_find(&st, "out.loss");
    int ok = text && smooth_text && src_t && in_t && out_t && logits_t && loss_t && src_t->ndim == 2 && in_t->ndim == 2;
    CHECK(ok, "%s: fixture has config, batch and outputs", name);
    if (!ok) { st_free(&st); return; }
    int rc = model_config_from_string(&cfg, text, path);
    CHECK(rc == 0, "%s: config parses (%s)", name, rc ? attn_last_error() : "ok");
    if (rc) { st_free(&st); return; }
    Batch b = {(int)src_t->shape[0], (int)src_t->shape[1], (int)in_t->shape[1],
               tokens_from(src_t), tokens_from(in_t), tokens_from(out_t)};
    Model m;
    rc = model_create(&m, &cfg, b.B, b.S, b.T);
    if (rc == 0) rc = load_params(&m, &st, path);
    CHECK(rc == 0, "%s: model created and loaded (%s)", name, rc ? attn_last_error() : "ok");
    if (rc == 0) {
        // The fixtures have no dropout: the eval forward keeps the logits, the
        // training forward (chunked generator and loss) gives the gradients.
        float loss = model_forward(&m, &b, (float)atof(smooth_text), 0, NULL);
        double max_abs, rel = rel_diff(m.logits, logits_t->data, logits_t->numel, &max_abs);
        printf("INFO %s logits max_abs %.2e rel %.2e\n", name, max_abs, rel);
        CHECK(rel <= LOGIT_TOL, "%s: logits within %.0e (rel %.2e)", name, LOGIT_TOL, rel);
        double loss_rel = fabs(loss - loss_t->data[0]) / fabs(loss_t->data[0]);
        printf("INFO %s loss %.7f torch %.7f rel %.2e\n", name, loss, loss_t->data[0], loss_rel);
        CHECK(loss_rel <= LOGIT_TOL, "%s: loss within %.0e (rel %.2e)", name, LOGIT_TOL, loss_rel);
        Rng rng;
        rng_seed(&rng, 1);
        float train_loss = model_forward(&m, &b, (float)atof(smooth_text), 1, &rng);
        CHECK(train_loss == loss, "%s: the training forward gives the same loss (%.7f %.7f)", name, train_loss, loss);
        model_zero_grad(&m);
        model_backward(&m, &b);
        compare_gradients(&m, &st, name);
        model_free(&m);
    }
    free(b.src); free(b.tgt_in); free(b.tgt_out);
    st_free(&st);
}

// ---------------------------------------------------------------------------
// Invariants that need no fixture

static void small_config(ModelConfig *cfg) {
    model_config_default(cfg);
    cfg->src_vocab = 11; cfg->tgt_vocab = 13;
    cfg->d_model = 8; cfg->n_heads = 2; cfg->d_ff = 12;
    cfg->n_enc_layers = 2; cfg->n_dec_layers = 2;
    cfg->max_len = 16;
}

static void test_layout(void) {
    ModelConfig cfg;
    small_config(&cfg);
    for (int tie = 0; tie < 2; tie++) {
        for (int share = 0; share < 2; share++) {
            cfg.tie_generator = tie; cfg.share_embeddings = share;
            cfg.tgt_vocab = share ? cfg.src_vocab : 13;
            Model m;
            if (model_create(&m, &cfg, 2, 5, 4)) { CHECK(0, "create: %s", attn_last_error()); continue; }
            int n = model_tensors(&m, 0, NULL, 0);
            TensorView *v = malloc_check((size_t)n * sizeof *v);
            model_tensors(&m, 0, v, n);
            long total = 0;
            int contiguous_cover = 1;
            for (int i = 0; i < n; i++) {
                total += v[i].numel;
                if (v[i].data < m.param_memory || v[i].data + v[i].numel > m.param_memory + m.n_params) contiguous_cover = 0;
            }
            int expect = 2 - share + 12 * 2 + 2 + 18 * 2 + 2 + 2 - tie;  // 12 per encoder layer, 18 per decoder layer
            CHECK(n == expect, "tie %d share %d: %d named tensors (expect %d)", tie, share, n, expect);
            CHECK(total == m.n_params && contiguous_cover, "tie %d share %d: tensors cover the %ld parameters once", tie, share, m.n_params);
            CHECK((m.params.gen_w == m.params.tgt_embed) == tie && (m.params.tgt_embed == m.params.src_embed) == share,
                  "tie %d share %d: tied tensors alias", tie, share);
            CHECK(!strcmp(v[n - 1].name, "generator.bias") && !strcmp(v[0].name, "src_embed.weight"),
                  "tie %d share %d: first and last names", tie, share);
            free(v);
            model_free(&m);
        }
    }
    Model m;
    cfg.share_embeddings = 1; cfg.tgt_vocab = 12;
    CHECK(model_create(&m, &cfg, 1, 1, 1) != 0, "shared embeddings with unequal vocabularies rejected");
    small_config(&cfg);
    cfg.n_heads = 3;
    CHECK(model_create(&m, &cfg, 1, 1, 1) != 0, "d_model not a multiple of n_heads rejected");
    small_config(&cfg);
    CHECK(model_create(&m, &cfg, 1, 17, 1) != 0, "sequence capacity over max_len rejected");
}

static void fill_batch(Batch *b, int *src, int *tin, int *tout, int B, int S, int T) {
    static const int src_len[] = {5, 2, 4}, tgt_len[] = {4, 3, 1};
    for (int i = 0; i < B; i++) {
        for (int s = 0; s < S; s++) src[i * S + s] = s < src_len[i] ? 4 + (i * 7 + s * 3) % 7 : PAD_ID;
        for (int t = 0; t < T; t++) tin[i * T + t] = t == 0 ? BOS_ID : t < tgt_len[i] ? 4 + (i + t * 5) % 9 : PAD_ID;
        for (int t = 0; t < T; t++)
            tout[i * T + t] = t < tgt_len[i] - 1 ? tin[i * T + t + 1] : t == tgt_len[i] - 1 ? EOS_ID : PAD_ID;
    }
    *b = (Batch){B, S, T, src, tin, tout};
}

// Cached decoding gives the logits of the full forward, for both LN modes.
static void test_decode_matches_forward(void) {
    for (int norm_first = 0; norm_first < 2; norm_first++) {
        ModelConfig cfg;
        small_config(&cfg);
        cfg.norm_first = norm_first;
        cfg.activation = norm_first ? ACT_GELU : ACT_RELU;
        Model m;
        DecodeState ds;
        if (model_create(&m, &cfg, 3, 5, 4) || decode_state_create(&ds, &m, 3, 5, 4)) {
            CHECK(0, "create: %s", attn_last_error()); return;
        }
        model_init_weights(&m, 7);
        int src[15], tin[12], tout[12];
        Batch b;
        fill_batch(&b, src, tin, tout, 3, 5, 4);
        model_forward(&m, &b, 0.0f, 0, NULL);
        CHECK(decode_begin(&m, &ds, m.acts->memory, m.acts->src_pad, 3, 5) == 0, "decode_begin");
        double max_diff = 0, max_probs_diff = 0;
        const float *xprobs = m.acts->dec[cfg.n_dec_layers - 1].cross.probs;   // (B, NH, T, S)
        for (int t = 0; t < 4; t++) {
            int tokens[3] = {tin[t], tin[4 + t], tin[8 + t]};
            decode_step(&m, &ds, tokens, t);
            for (int i = 0; i < 3; i++)
                for (int h = 0; h < cfg.n_heads; h++)
                    for (int j = 0; j < 5; j++) {
                        double d = fabs(ds.probs[(i * cfg.n_heads + h) * 5 + j] - xprobs[((i * cfg.n_heads + h) * 4 + t) * 5 + j]);
                        if (tin[i * 4 + t] != PAD_ID && d > max_probs_diff) max_probs_diff = d;
                    }
            for (int i = 0; i < 3; i++) {
                if (tin[i * 4 + t] == PAD_ID) continue;
                for (int v = 0; v < cfg.tgt_vocab; v++) {
                    double d = fabs(ds.logits[i * cfg.tgt_vocab + v] - m.logits[(i * 4 + t) * cfg.tgt_vocab + v]);
                    if (d > max_diff) max_diff = d;
                }
            }
        }
        CHECK(max_diff < 1e-5, "norm_first %d: cached decoding equals the forward (max diff %.2e)", norm_first, max_diff);
        CHECK(max_probs_diff < 1e-6, "norm_first %d: decode_step leaves the last layer's cross-attention in probs (diff %.2e)",
              norm_first, max_probs_diff);
        // Reordering: after two steps, hypotheses 0 and 2 swap (from = {2, 1, 0});
        // the new hypothesis 2 continues the old hypothesis 0 (length 4), so its
        // third step must give the forward's logits of sentence 0 at t = 2.
        decode_begin(&m, &ds, m.acts->memory, m.acts->src_pad, 3, 5);
        for (int t = 0; t < 2; t++) {
            int tokens[3] = {tin[t], tin[4 + t], tin[8 + t]};
            decode_step(&m, &ds, tokens, t);
        }
        int from[3] = {2, 1, 0};
        decode_reorder(&ds, &m, from, 2);
        int tokens[3] = {tin[8 + 2], tin[4 + 2], tin[2]};
        decode_step(&m, &ds, tokens, 2);
        double d0 = 0;
        for (int v = 0; v < cfg.tgt_vocab; v++) {
            double e = fabs(ds.logits[2 * cfg.tgt_vocab + v] - m.logits[(0 * 4 + 2) * cfg.tgt_vocab + v]);
            if (e > d0) d0 = e;
        }
        CHECK(d0 < 1e-5, "norm_first %d: reordered hypothesis continues its source (diff %.2e)", norm_first, d0);
        decode_state_free(&ds);
        model_free(&m);
    }
}

// The largest difference between the cached decoder's logits over the
// teacher-forced inputs tin (B, 4) and the forward's (m->logits).
static double decode_vs_forward(Model *m, DecodeState *ds, const int *tin, int B) {
    int V = m->config.tgt_vocab;
    double max_diff = 0;
    for (int t = 0; t < 4; t++) {
        int tokens[8];
        if (B > 8) return INFINITY;
        for (int i = 0; i < B; i++) tokens[i] = tin[i * 4 + t];
        decode_step(m, ds, tokens, t);
        for (int i = 0; i < B; i++) {
            if (tin[i * 4 + t] == PAD_ID) continue;
            for (int v = 0; v < V; v++) {
                double d = fabs(ds->logits[i * V + v] - m->logits[(i * 4 + t) * V + v]);
                if (d > max_diff) max_diff = d;
            }
        }
    }
    return max_diff;
}

// More than 4 hypotheses: decode_begin packs the decoder's weights and the
// steps multiply through them; the logits still equal the forward's. The
// packing is kept for later batches until decode_weights_changed.
static void test_decode_packed(void) {
    ModelConfig cfg;
    small_config(&cfg);
    Model m;
    DecodeState ds;
    if (model_create(&m, &cfg, 6, 5, 4) || decode_state_create(&ds, &m, 6, 5, 4)) {
        CHECK(0, "create: %s", attn_last_error()); return;
    }
    model_init_weights(&m, 11);
    int src[30], tin[24], tout[24];
    Batch b;
    fill_batch(&b, src, tin, tout, 3, 5, 4);
    memcpy(src + 15, src, 15 * sizeof(int));   // sentences 3..5 repeat 0..2
    memcpy(tin + 12, tin, 12 * sizeof(int));
    memcpy(tout + 12, tout, 12 * sizeof(int));
    b.B = 6;
    model_forward(&m, &b, 0.0f, 0, NULL);
    CHECK(decode_begin(&m, &ds, m.acts->memory, m.acts->src_pad, 6, 5) == 0 && ds.packed != NULL &&
          ds.use_packed, "decode_begin with 6 hypotheses packs the weights and multiplies through them");
    double max_diff = decode_vs_forward(&m, &ds, tin, 6);
    CHECK(max_diff < 1e-5, "packed weights: cached decoding equals the forward (max diff %.2e)", max_diff);

    // The generator's packing holds at least its d_model x vocab values, on
    // every path (panels are zero-padded to the path's width).
    const GemmPackedB *gen = &ds.packed[ds.n_packed - 1];
    size_t gen_bytes = (size_t)cfg.d_model * cfg.tgt_vocab * sizeof(float);
    float *before = malloc(gen_bytes);
    memcpy(before, gen->panels, gen_bytes);
    // A batch of 3 multiplies unpacked and leaves the packing alone.
    decode_begin(&m, &ds, m.acts->memory, m.acts->src_pad, 3, 5);
    max_diff = decode_vs_forward(&m, &ds, tin, 3);
    CHECK(!ds.use_packed && memcmp(before, gen->panels, gen_bytes) == 0 && max_diff < 1e-5,
          "3 hypotheses: unpacked products equal the forward (max diff %.2e), the packing is kept", max_diff);

    // New weights: a later batch keeps the old packing until told.
    model_init_weights(&m, 12);
    model_forward(&m, &b, 0.0f, 0, NULL);
    decode_begin(&m, &ds, m.acts->memory, m.acts->src_pad, 6, 5);
    CHECK(memcmp(before, gen->panels, gen_bytes) == 0, "a second decode_begin keeps the packed weights");
    decode_weights_changed(&ds);
    decode_begin(&m, &ds, m.acts->memory, m.acts->src_pad, 6, 5);
    CHECK(memcmp(before, gen->panels, gen_bytes) != 0, "after decode_weights_changed decode_begin packs again");
    max_diff = decode_vs_forward(&m, &ds, tin, 6);
    CHECK(max_diff < 1e-5, "repacked: cached decoding equals the forward of the new weights (max diff %.2e)",
          max_diff);
    free(before);
    decode_state_free(&ds);
    model_free(&m);
}

// With a large vocabulary the backward's scratch lives inside the logits
// buffer (model.c layout_backward_scratch): the gradients are bit for bit
// those of a model whose larger capacity keeps the scratch on its own.
static void test_scratch_in_logits(void) {
    ModelConfig cfg;
    small_config(&cfg);
    cfg.tgt_vocab = 200;   // logits (B, 4, 200); the scratch grows with the longer of S and T
    Model small, large;
    if (model_create(&small, &cfg, 3, 5, 4) || model_create(&large, &cfg, 3, 16, 4)) {
        CHECK(0, "create: %s", attn_last_error()); return;
    }
    long cap = 3L * 4 * cfg.tgt_vocab;
    int in_small = small.acts->dtmp2 >= small.logits && small.acts->dtmp2 < small.logits + cap;
    int in_large = large.acts->dtmp2 >= large.logits && large.acts->dtmp2 < large.logits + cap;
    CHECK(in_small && !in_large, "scratch inside the logits only when it fits (%d %d)", in_small, in_large);
    model_init_weights(&small, 5);
    memcpy(large.param_memory, small.param_memory, (size_t)small.n_params * sizeof(float));
    int src[15], tin[12], tout[12];
    Batch b;
    fill_batch(&b, src, tin, tout, 3, 5, 4);
    for (int i = 0; i < 12; i++) if (tout[i] != PAD_ID) tout[i] = 4 + (tout[i] * 37) % 196;   // targets across the vocabulary
    Rng r1, r2;
    rng_seed(&r1, 3); rng_seed(&r2, 3);
    model_zero_grad(&small); model_zero_grad(&large);
    float l1 = model_forward(&small, &b, 0.1f, 1, &r1), l2 = model_forward(&large, &b, 0.1f, 1, &r2);
    model_backward(&small, &b);
    model_backward(&large, &b);
    CHECK(l1 == l2 && !memcmp(small.grad_memory, large.grad_memory, (size_t)small.n_params * sizeof(float)),
          "scratch in the logits: same loss and bit-identical gradients (%.6f %.6f)", l1, l2);
    model_free(&small);
    model_free(&large);
}

// The training forward runs the generator and the loss in chunks of
// GEN_CHUNK_ROWS rows and leaves only the generator's gradient pending: over
// several chunks it gives the loss, accuracy and gradients of the eval
// forward's one pass (gradients to float rounding: the generator's are
// summed chunk by chunk).
static void test_chunked_generator(void) {
    ModelConfig cfg;
    small_config(&cfg);
    cfg.dropout_emb = cfg.dropout_residual = cfg.dropout_attn = cfg.dropout_ffn = 0.0f;
    cfg.tgt_vocab = 1024;   // with B * T below: just over GEN_CHUNKED_MIN_LOGITS
    enum { B = 2 * GEN_CHUNK_ROWS / 8 + 3, S = 6, T = 8 };   // B * T: two full chunks and a part
    static int src[B * S], tin[B * T], tout[B * T];
    for (int i = 0; i < B; i++) {
        int src_len = 1 + i % S, tgt_len = 1 + (i * 3) % T;
        for (int s = 0; s < S; s++) src[i * S + s] = s < src_len ? 4 + (i * 5 + s * 3) % 7 : PAD_ID;
        for (int t = 0; t < T; t++) tin[i * T + t] = t == 0 ? BOS_ID : t < tgt_len ? 4 + (i + t * 5) % 9 : PAD_ID;
        for (int t = 0; t < T; t++)
            tout[i * T + t] = t < tgt_len - 1 ? tin[i * T + t + 1] : t == tgt_len - 1 ? EOS_ID : PAD_ID;
    }
    Batch b = {B, S, T, src, tin, tout};
    Model m;
    if (model_create(&m, &cfg, B, S, T)) { CHECK(0, "create: %s", attn_last_error()); return; }
    model_init_weights(&m, 11);
    float *eval_grads = malloc((size_t)m.n_params * sizeof(float));
    model_zero_grad(&m);
    float eval_loss = model_forward(&m, &b, 0.1f, 0, NULL);
    long eval_correct = m.n_correct, eval_tokens = m.n_target_tokens;
    model_backward(&m, &b);
    memcpy(eval_grads, m.grad_memory, (size_t)m.n_params * sizeof(float));
    CHECK((long)B * T * cfg.tgt_vocab >= GEN_CHUNKED_MIN_LOGITS, "the batch is large enough to be chunked");
    Rng rng;
    rng_seed(&rng, 2);
    float train_loss = model_forward(&m, &b, 0.1f, 1, &rng);
    CHECK(m.acts->generator_done, "the training forward ran the chunked generator");
    CHECK(train_loss == eval_loss && m.n_correct == eval_correct && m.n_target_tokens == eval_tokens,
          "chunked: same loss, accuracy and token count (%.7f %.7f, %ld %ld)", train_loss, eval_loss,
          m.n_correct, eval_correct);
    model_zero_grad(&m);
    model_backward(&m, &b);
    double worst = 0.0, scale = 0.0;
    for (long i = 0; i < m.n_params; i++) {
        double d = fabs(m.grad_memory[i] - eval_grads[i]);
        worst = d > worst ? d : worst;
        scale = fabs(eval_grads[i]) > scale ? fabs(eval_grads[i]) : scale;
    }
    CHECK(scale > 0.0 && worst <= 1e-5 * scale, "chunked: gradients as the one pass (max diff %.2e of %.2e)",
          worst, scale);
    free(eval_grads);
    model_free(&m);
}

static void test_bad_batch(void) {
    ModelConfig cfg;
    small_config(&cfg);
    Model m;
    if (model_create(&m, &cfg, 2, 5, 4)) { CHECK(0, "create: %s", attn_last_error()); return; }
    int src[15], tin[12], tout[12];
    Batch b;
    fill_batch(&b, src, tin, tout, 2, 5, 4);
    b.B = 3;
    CHECK(isnan(model_forward(&m, &b, 0.0f, 0, NULL)), "batch over capacity gives NAN and an error: %s", attn_last_error());
    b.B = 2;
    src[1] = cfg.src_vocab;
    CHECK(isnan(model_forward(&m, &b, 0.0f, 0, NULL)), "token id out of range gives an error: %s", attn_last_error());
    src[1] = 4;
    CHECK(!isnan(model_forward(&m, &b, 0.0f, 0, NULL)), "valid batch runs");
    model_free(&m);
}

// Same seed, same everything: two runs with dropout are bit-identical, and
// different seeds differ.
static void test_dropout_determinism(void) {
    ModelConfig cfg;
    small_config(&cfg);
    Model m;
    if (model_create(&m, &cfg, 3, 5, 4)) { CHECK(0, "create: %s", attn_last_error()); return; }
    model_init_weights(&m, 3);
    int src[15], tin[12], tout[12];
    Batch b;
    fill_batch(&b, src, tin, tout, 3, 5, 4);
    Rng r1, r2, r3;
    rng_seed(&r1, 42); rng_seed(&r2, 42); rng_seed(&r3, 43);
    float l1 = model_forward(&m, &b, 0.1f, 1, &r1);
    float l2 = model_forward(&m, &b, 0.1f, 1, &r2);
    float l3 = model_forward(&m, &b, 0.1f, 1, &r3);
    float le = model_forward(&m, &b, 0.1f, 0, NULL);
    CHECK(l1 == l2, "dropout: same seed, same loss (%.7f)", l1);
    // Gradients are bit-identical run to run (no float atomics anywhere).
    float *first = malloc_check((size_t)m.n_params * sizeof(float));
    for (int run = 0; run < 2; run++) {
        rng_seed(&r1, 42);
        model_forward(&m, &b, 0.1f, 1, &r1);
        model_zero_grad(&m);
        model_backward(&m, &b);
        if (run == 0) memcpy(first, m.grad_memory, (size_t)m.n_params * sizeof(float));
    }
    CHECK(!memcmp(first, m.grad_memory, (size_t)m.n_params * sizeof(float)), "dropout: same seed, bit-identical gradients");
    free(first);
    CHECK(l1 != l3 && l1 != le, "dropout: another seed or eval mode changes the loss (%.5f %.5f %.5f)", l1, l3, le);
    model_free(&m);
}

int main(void) {
    for (size_t i = 0; i < sizeof fixture_cases / sizeof fixture_cases[0]; i++) golden_case(fixture_cases[i]);
    test_layout();
    test_decode_matches_forward();
    test_decode_packed();
    test_scratch_in_logits();
    test_chunked_generator();
    test_bad_batch();
    test_dropout_determinism();
    TEST_EXIT();
}
