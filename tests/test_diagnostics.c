// Diagnostics: every detector provoked on purpose on synthetic gradient
// buffers laid out like the model's (names, layers), asserting the message
// and the action.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "diagnostics.h"
#include "json.h"
#include "rng.h"

// A fake model: 6 tensors over 5 layer groups, params and grads in one buffer each.
enum { NT = 6 };
static const char *names[NT] = {
    "src_embed.weight",
    "transformer.encoder.layers.0.self_attn.in_proj_weight",
    "transformer.encoder.layers.0.norm1.bias",
    "transformer.encoder.layers.1.linear1.weight",
    "transformer.decoder.layers.0.linear2.weight",
    "generator.weight",
};
static const int sizes[NT] = {64, 96, 8, 128, 128, 64};
static const int layers[NT] = {-1, 0, 0, 1, 0, -1};

typedef struct {
    float *params, *grads;
    long n;
    TensorView pv[NT], gv[NT];
} Fake;

static void fake_create(Fake *f) {
    f->n = 0;
    for (int i = 0; i < NT; i++) f->n += sizes[i];
    f->params = calloc(f->n, sizeof(float));
    f->grads = calloc(f->n, sizeof(float));
    long off = 0;
    for (int i = 0; i < NT; i++) {
        TensorView v = {{0}, 1, {sizes[i], 0}, sizes[i], NULL, layers[i]};
        snprintf(v.name, sizeof v.name, "%s", names[i]);
        f->pv[i] = v; f->pv[i].data = f->params + off;
        f->gv[i] = v; f->gv[i].data = f->grads + off;
        off += sizes[i];
    }
}

// Healthy gradients: every element about `scale` in size, a little noise.
static void fill_grads(Fake *f, Rng *rng, float scale) {
    for (long i = 0; i < f->n; i++) f->grads[i] = scale * (0.5f + 0.1f * rng_normal(rng));
}

static void fake_free(Fake *f) { free(f->params); free(f->grads); }

static void test_group_names(void) {
    char g[64];
    diag_group_name("transformer.encoder.layers.12.self_attn.out_proj.weight", g, sizeof g);
    CHECK(!strcmp(g, "encoder.layers.12"), "group of an encoder layer tensor (%s)", g);
    diag_group_name("transformer.decoder.norm.bias", g, sizeof g);
    CHECK(!strcmp(g, "decoder.norm"), "group of the final decoder norm (%s)", g);
    diag_group_name("src_embed.weight", g, sizeof g);
    CHECK(!strcmp(g, "src_embed"), "group of the embedding (%s)", g);
    diag_group_name("plain", g, sizeof g);
    CHECK(!strcmp(g, "plain"), "group of a name without dots (%s)", g);
}

static void test_actions(void) {
    DiagAction a;
    int ok = diag_action_parse("skip", &a) == 0 && a == DIAG_SKIP
          && diag_action_parse("off", &a) == 0 && a == DIAG_OK
          && diag_action_parse("scale_lr", &a) == 0 && a == DIAG_SCALE_LR;
    CHECK(ok, "action names parse");
    CHECK(diag_action_parse("explode", &a) == -1 && strstr(attn_last_error(), "explode"),
          "unknown action rejected: %s", attn_last_error());
    CHECK(!strcmp(diag_action_name(DIAG_STOP), "stop"), "action name of stop");
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.nan_action = DIAG_WARN;
    Fake f; fake_create(&f);
    Diag d;
    CHECK(diag_init(&d, &cfg, f.pv, f.gv, NT) == -1 && strstr(attn_last_error(), "NaN action"),
          "a NaN action of warn is refused: %s", attn_last_error());
    fake_free(&f);
}

static void test_zscore(void) {
    ZScore z; zscore_init(&z, 10);
    double s = 0;
    for (int i = 0; i < 4; i++) s = zscore_push(&z, i % 2 ? 1.0 : 3.0, 5);
    CHECK(isnan(s), "no z-score before min_count values");
    for (int i = 0; i < 20; i++) s = zscore_push(&z, i % 2 ? 1.0 : 3.0, 5);
    CHECK(fabs(s + 1.0) < 1e-9, "z-score of a value one std below the mean (%g)", s);
    s = zscore_push(&z, 12.0, 5);
    CHECK(fabs(s - 10.0) < 1e-9 && z.mean == 2.0 && z.std == 1.0, "z-score of an outlier (%g) against mean 2, std 1", s);
    CHECK(z.count == 10, "window holds at most its size (%d)", z.count);
    zscore_push(&z, NAN, 5);
    CHECK(z.count == 10 && isfinite(zscore_push(&z, 2.0, 5)), "NaN never enters the window");
}

static void test_clean_step(void) {
    Fake f; fake_create(&f);
    DiagConfig cfg; diag_config_default(&cfg);
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    CHECK(d.n_groups == 5, "tensors grouped by layer (%d groups)", d.n_groups);
    for (long i = 0; i < f.n; i++) f.grads[i] = (i % 3) - 1.0f;
    double expect = 0;
    for (long i = 0; i < f.n; i++) expect += f.grads[i] * f.grads[i];
    DiagResult r;
    DiagAction a = diag_check_step(&d, 1, 2.5f, &r);
    CHECK(a == DIAG_OK && r.message[0] == 0 && r.bad_tensor == -1, "healthy step: ok, no message");
    CHECK(fabs(r.grad_norm - sqrt(expect)) < 1e-9 * sqrt(expect), "global grad norm %g (expected %g)", r.grad_norm, sqrt(expect));
    diag_free(&d);
    fake_free(&f);
}

static void test_nan_stop(void) {
    Fake f; fake_create(&f);
    Rng rng; rng_seed(&rng, 1);
    DiagConfig cfg; diag_config_default(&cfg);
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    DiagResult r;
    fill_grads(&f, &rng, 1.0f);
    f.gv[3].data[17] = NAN;
    f.gv[4].data[5] = INFINITY;
    DiagAction a = diag_check_step(&d, 42, 1.0f, &r);
    CHECK(a == DIAG_STOP, "NaN in a gradient: stop (%s)", diag_action_name(a));
    CHECK(r.bad_tensor == 4 && r.bad_index == 5, "offending tensor nearest the output and its element (%d, %ld)", r.bad_tensor, r.bad_index);
    CHECK(strstr(r.message, "at step 42 in 2 of 6 tensors: nearest the output transformer.decoder.layers.0.linear2.weight (layer 0) at element 5 (inf); earliest affected transformer.encoder.layers.1.linear1.weight"),
          "message names the step, tensors, layer, element: %s", r.message);
    f.gv[4].data[5] = 0;
    a = diag_check_step(&d, 43, 1.0f, &r);
    CHECK(a == DIAG_STOP && r.bad_tensor == 3 && r.bad_index == 17 && strstr(r.message, "transformer.encoder.layers.1.linear1.weight (layer 1) at element 17 (nan)")
          && !strstr(r.message, "earliest"), "one NaN tensor: stop, named: %s", r.message);
    f.gv[3].data[17] = 0;
    a = diag_check_step(&d, 44, NAN, &r);
    CHECK(a == DIAG_STOP && strstr(r.message, "non-finite loss (nan) at step 44"), "NaN loss: stop: %s", r.message);
    // Huge but finite gradients are not NaN: the norm stays finite in double.
    for (long i = 0; i < f.n; i++) f.grads[i] = 3e38f;
    a = diag_check_step(&d, 45, 1.0f, &r);
    CHECK(r.bad_tensor == -1 && isfinite(r.grad_norm), "huge finite gradients are not called NaN (norm %g)", r.grad_norm);
    diag_free(&d);
    fake_free(&f);
}

static void test_nan_skip(void) {
    Fake f; fake_create(&f);
    Rng rng; rng_seed(&rng, 2);
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.nan_action = DIAG_SKIP;
    cfg.max_consecutive_skips = 3;
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    DiagResult r;
    fill_grads(&f, &rng, 1.0f);
    f.gv[0].data[0] = NAN;
    DiagAction a1 = diag_check_step(&d, 1, 1.0f, &r);
    f.gv[0].data[0] = 0;
    DiagAction a2 = diag_check_step(&d, 2, 1.0f, &r);
    CHECK(a1 == DIAG_SKIP && a2 == DIAG_OK, "nan_action skip: skip, then a healthy step goes on");
    f.gv[0].data[0] = NAN;
    DiagAction a = DIAG_OK;
    for (int i = 0; i < 3; i++) a = diag_check_step(&d, 3 + i, 1.0f, &r);
    CHECK(a == DIAG_STOP && strstr(r.message, "3 steps in a row skipped"), "too many skips in a row: stop: %s", r.message);
    diag_free(&d);
    fake_free(&f);
}

// Runs `n` healthy steps with losses near `loss` and unit-size gradients.
static void healthy_steps(Diag *d, Fake *f, Rng *rng, int n, float loss) {
    DiagResult r;
    for (int i = 0; i < n; i++) {
        fill_grads(f, rng, 1.0f);
        diag_check_step(d, i + 1, loss + 0.01f * rng_normal(rng), &r);
    }
}

static void test_spikes(void) {
    Fake f; fake_create(&f);
    Rng rng; rng_seed(&rng, 3);
    DiagConfig cfg; diag_config_default(&cfg);
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    DiagResult r;
    healthy_steps(&d, &f, &rng, 40, 2.0f);
    fill_grads(&f, &rng, 1.0f);
    DiagAction a = diag_check_step(&d, 41, 2.0f, &r);
    CHECK(a == DIAG_OK, "no false alarm after 40 healthy steps (grad z %.2f, loss z %.2f)", r.grad_z, r.loss_z);
    fill_grads(&f, &rng, 1000.0f);
    a = diag_check_step(&d, 42, 2.0f, &r);
    CHECK(a == DIAG_WARN && strstr(r.message, "gradient norm spike at step 42: ") && strstr(r.message, "against a mean of") && strstr(r.message, "over the last 41 steps") && r.grad_z > 6,
          "1000x gradients: warned: %s", r.message);
    diag_free(&d);

    cfg.spike_action = DIAG_SKIP;
    diag_init(&d, &cfg, f.pv, f.gv, NT);
    healthy_steps(&d, &f, &rng, 40, 2.0f);
    fill_grads(&f, &rng, 1.0f);
    a = diag_check_step(&d, 41, 9.0f, &r);
    CHECK(a == DIAG_SKIP && strstr(r.message, "loss spike at step 41") && strstr(r.message, "update skipped"),
          "loss spike with action skip: %s", r.message);
    diag_free(&d);

    cfg.spike_action = DIAG_SCALE_LR;
    diag_init(&d, &cfg, f.pv, f.gv, NT);
    healthy_steps(&d, &f, &rng, 40, 2.0f);
    fill_grads(&f, &rng, 50.0f);
    a = diag_check_step(&d, 41, 2.0f, &r);
    CHECK(a == DIAG_SCALE_LR && diag_lr_multiplier(&d) == 0.5 && strstr(r.message, "x0.5"),
          "gradient norm spike with scale_lr halves the rate: %s", r.message);
    fill_grads(&f, &rng, 1.0f);
    a = diag_check_step(&d, 42, 2.0f, &r);
    CHECK(a == DIAG_OK && diag_lr_multiplier(&d) == 0.5, "the scaled rate stays scaled");
    diag_free(&d);

    cfg.spike_action = DIAG_OK;
    diag_init(&d, &cfg, f.pv, f.gv, NT);
    healthy_steps(&d, &f, &rng, 40, 2.0f);
    fill_grads(&f, &rng, 1000.0f);
    a = diag_check_step(&d, 41, 50.0f, &r);
    CHECK(a == DIAG_OK && r.grad_z > 6, "spike detector off: z-score still computed (%.1f), no action", r.grad_z);
    diag_free(&d);
    fake_free(&f);
}

// The saved state brings a fresh Diag to the very judgement of the old one.
static void test_state_text(void) {
    Fake f; fake_create(&f);
    Rng rng; rng_seed(&rng, 5);
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.spike_action = DIAG_SCALE_LR;
    Diag a, b;
    diag_init(&a, &cfg, f.pv, f.gv, NT);
    diag_init(&b, &cfg, f.pv, f.gv, NT);
    DiagResult r;
    healthy_steps(&a, &f, &rng, 40, 2.0f);
    fill_grads(&f, &rng, 50.0f);
    diag_check_step(&a, 41, 2.0f, &r);
    char *text = diag_state_text(&a);
    CHECK(diag_state_restore(&b, text, "x") == 0 && diag_lr_multiplier(&b) == 0.5 &&
          b.loss_stats.count == a.loss_stats.count && b.grad_stats.next == a.grad_stats.next &&
          memcmp(b.grad_stats.values, a.grad_stats.values, sizeof(double) * (size_t)a.grad_stats.window) == 0,
          "state text round trip (multiplier, windows)");
    fill_grads(&f, &rng, 1.0f);
    DiagResult ra, rb;
    diag_check_step(&a, 42, 3.0f, &ra);
    diag_check_step(&b, 42, 3.0f, &rb);
    CHECK(ra.loss_z == rb.loss_z && ra.grad_z == rb.grad_z, "the restored detector judges the next step alike");
    CHECK(diag_state_restore(&b, "v2 1 0", "x") == -1 && strstr(attn_last_error(), "unknown version"),
          "another version refused: %s", attn_last_error());
    CHECK(diag_state_restore(&b, "v1 nan 0 100 0 0", "x") == -1 && strstr(attn_last_error(), "malformed"),
          "a NaN multiplier refused: %s", attn_last_error());
    CHECK(diag_state_restore(&b, "v1 1 0 50 0 0", "x") == -1, "a window of another size refused");
    free(text);
    diag_free(&a);
    diag_free(&b);
    fake_free(&f);
}

static void test_vanishing(void) {
    Fake f; fake_create(&f);
    Rng rng; rng_seed(&rng, 4);
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.vanish_patience = 5;
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    DiagResult r;
    DiagAction actions[7];
    for (int i = 0; i < 7; i++) {
        fill_grads(&f, &rng, 1.0f);
        for (int k = 0; k < sizes[3]; k++) f.gv[3].data[k] = 0;  // frozen layer: encoder.layers.1
        actions[i] = diag_check_step(&d, i + 1, 1.0f, &r);
        if (i == 4) break;
        CHECK(actions[i] == DIAG_OK, "frozen layer: quiet before the patience runs out (step %d)", i + 1);
    }
    CHECK(actions[4] == DIAG_WARN && strstr(r.message, "vanishing gradients: encoder.layers.1 has gradient norm 0")
          && strstr(r.message, "5 checks"), "frozen layer warned after 5 checks: %s", r.message);
    fill_grads(&f, &rng, 1.0f);
    for (int k = 0; k < sizes[3]; k++) f.gv[3].data[k] *= 1e-5f;
    DiagAction a = diag_check_step(&d, 6, 1.0f, &r);
    CHECK(a == DIAG_OK, "warned once, not every step");
    fill_grads(&f, &rng, 1.0f);
    for (int k = 0; k < sizes[3]; k++) f.gv[3].data[k] *= 1e-2f;  // 1/100: small, not vanished
    a = diag_check_step(&d, 7, 1.0f, &r);
    CHECK(a == DIAG_OK && d.group_low_steps[2] == 0, "a layer 100x below the median is not called vanished");
    diag_free(&d);
    fake_free(&f);
}

static void test_layer_stats(void) {
    Fake f; fake_create(&f);
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.stats_every = 10;
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    CHECK(!diag_stats_due(&d, 5) && diag_stats_due(&d, 20), "stats due every 10 steps");
    for (long i = 0; i < f.n; i++) { f.params[i] = 2.0f; f.grads[i] = 1.0f; }
    DiagResult r;
    diag_check_step(&d, 10, 1.0f, &r);
    diag_snapshot_params(&d);
    for (long i = 0; i < f.n; i++) f.params[i] -= 0.02f;  // the "update": 1% of each weight
    StrBuf sb = {0};
    diag_layer_stats_json(&d, 10, &sb);
    JsonValue v;
    int parsed = json_parse(sb.data, sb.len, &v) == 0;
    CHECK(parsed, "layer stats are one JSON object: %.120s", sb.data);
    if (parsed) {
        const JsonValue *l = json_get(json_get(&v, "layers"), "encoder.layers.0");
        const JsonValue *gn = json_get(l, "grad_norm"), *wn = json_get(l, "weight_norm"), *ur = json_get(l, "update_ratio");
        CHECK(json_get(&v, "step")->number == 10 && gn && wn && ur, "encoder.layers.0 has grad, weight norms and update ratio");
        if (gn && wn && ur) {
            CHECK(fabs(gn->number - sqrt(104.0)) < 1e-4, "grad norm of the group (%g)", gn->number);
            CHECK(fabs(wn->number - 1.98 * sqrt(104.0)) < 1e-3, "weight norm after the update (%g)", wn->number);
            CHECK(fabs(ur->number - 0.02 / 1.98) < 1e-5, "update/weight ratio (%g)", ur->number);
        }
        json_free(&v);
    }
    sb_free(&sb);
    TensorView act = {"encoder.layers.0.ffn", 1, {4, 0}, 4, (float[]){1, -3, 1, 5}, 0};
    diag_activation_stats_json(&act, 1, &sb);
    CHECK(strstr(sb.data, "\"encoder.layers.0.ffn\":{\"mean\":1,\"std\":2.82843,\"max_abs\":5}"),
          "activation mean/std/max: %s", sb.data);
    sb_free(&sb);
    diag_free(&d);
    fake_free(&f);
}

static void test_entropy(void) {
    float p[3 * 4] = {0.25f, 0.25f, 0.25f, 0.25f,  1, 0, 0, 0,  0, 0, 0, 0};
    double h = diag_attention_entropy(p, 3, 4);
    CHECK(fabs(h - log(4.0) / 2) < 1e-6, "attention entropy: mean of uniform and one-hot rows, masked row left out (%g)", h);
}

static void test_overfit(void) {
    Fake f; fake_create(&f);
    DiagConfig cfg; diag_config_default(&cfg);
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    DiagResult r;
    double train[] = {3.0, 2.0, 1.5, 1.2, 1.0, 0.8, 0.6};
    double valid[] = {3.1, 2.3, 2.0, 2.05, 2.2, 2.4, 2.6};
    DiagAction a[7];
    char message[DIAG_MESSAGE_MAX] = "";
    for (int i = 0; i < 7; i++) {
        a[i] = diag_observe_eval(&d, 100 * (i + 1), train[i], valid[i], &r);
        if (i == 5) memcpy(message, r.message, sizeof message);
    }
    CHECK(a[3] == DIAG_OK && a[4] == DIAG_OK, "no overfit signal before the patience runs out");
    CHECK(a[5] == DIAG_WARN && strstr(message, "overfitting: valid loss rose from 2.0000 (step 300) to 2.4000 (step 600)"),
          "overfitting reported after 3 evals without a best: %s", message);
    CHECK(a[6] == DIAG_OK && r.overfitting && r.evals_since_best == 4, "reported once, signal stays on (%d evals since best)", r.evals_since_best);
    diag_free(&d);
    diag_init(&d, &cfg, f.pv, f.gv, NT);
    double flat_train[] = {3.0, 2.0, 2.1, 2.2, 2.3, 2.4};
    int any = 0;
    for (int i = 0; i < 6; i++) any |= diag_observe_eval(&d, i, flat_train[i], valid[i], &r) != DIAG_OK;
    CHECK(!any, "valid loss rising while train loss also rises is not overfitting");
    diag_free(&d);
    fake_free(&f);
}

static void test_overfit_message(void) {
    Fake f; fake_create(&f);
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.overfit_patience = 1;
    Diag d; diag_init(&d, &cfg, f.pv, f.gv, NT);
    DiagResult r;
    diag_observe_eval(&d, 100, 2.0, 1.5, &r);
    DiagAction a = diag_observe_eval(&d, 200, 1.0, 1.8, &r);
    CHECK(a == DIAG_WARN && strstr(r.message, "overfitting: valid loss rose from 1.5000 (step 100) to 1.8000 (step 200) while train loss fell from 2.0000 to 1.0000"),
          "overfit message: %s", r.message);
    diag_free(&d);
    fake_free(&f);
}

static void test_save_batch(void) {
    int src[] = {5, 6, 3, 7, 3, 0}, tin[] = {2, 8, 2, 9}, tout[] = {8, 3, 9, 3};
    Batch b = {2, 3, 2, src, tin, tout};
    char path[] = "/tmp/attn_diag_batch_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK(diag_save_batch(path, &b) == 0, "batch saved");
    char *text; size_t len; JsonValue v;
    int ok = read_file(path, &text, &len) == 0 && json_parse(text, len, &v) == 0;
    CHECK(ok, "saved batch is JSON");
    if (ok) {
        const JsonValue *s = json_get(&v, "src");
        CHECK(json_get(&v, "B")->number == 2 && s && s->n == 2 && s->items[1].n == 3 && s->items[1].items[0].number == 7
              && json_get(&v, "tgt_out")->items[1].items[0].number == 9, "saved batch has the ids by row");
        json_free(&v);
        free(text);
    }
    CHECK(diag_save_batch("/nonexistent-dir/batch.json", &b) == -1, "unwritable path fails: %s", attn_last_error());
    unlink(path);
}

// ----------------------------------------------------------------------------
// a real model: the same failures provoked through model_forward/backward

typedef struct {
    Model m;
    int n_tensors;
    TensorView *pv, *gv;
    Batch b;
    int src[3 * 5], tgt_in[3 * 4], tgt_out[3 * 4];
} Real;

static int real_create(Real *r) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.src_vocab = cfg.tgt_vocab = 12;
    cfg.d_model = 16; cfg.n_heads = 2; cfg.d_ff = 32; cfg.max_len = 16;
    cfg.dropout_emb = cfg.dropout_residual = cfg.dropout_attn = cfg.dropout_ffn = 0;
    if (model_create(&r->m, &cfg, 3, 5, 4)) return -1;
    model_init_weights(&r->m, 1);
    r->n_tensors = model_tensors(&r->m, 0, NULL, 0);
    r->pv = malloc(sizeof(TensorView) * r->n_tensors);
    r->gv = malloc(sizeof(TensorView) * r->n_tensors);
    model_tensors(&r->m, 0, r->pv, r->n_tensors);
    model_tensors(&r->m, 1, r->gv, r->n_tensors);
    // copy-like data: target = source; the last sentence is padded
    int src[15] = {4, 5, 6, 7, 3,  8, 9, 10, 11, 3,  5, 5, 3, 0, 0};
    int tin[12] = {2, 4, 5, 6,  2, 8, 9, 10,  2, 5, 5, 0};
    int tout[12] = {4, 5, 6, 3,  8, 9, 10, 3,  5, 5, 3, 0};
    memcpy(r->src, src, sizeof src); memcpy(r->tgt_in, tin, sizeof tin); memcpy(r->tgt_out, tout, sizeof tout);
    Batch b = {3, 5, 4, r->src, r->tgt_in, r->tgt_out};
    r->b = b;
    return 0;
}

static float real_step(Real *r) {
    model_zero_grad(&r->m);
    float loss = model_forward(&r->m, &r->b, 0.0f, 0, NULL);
    model_backward(&r->m, &r->b);
    return loss;
}

static void sgd(Real *r, float lr) {
    for (long i = 0; i < r->m.n_params; i++) r->m.param_memory[i] -= lr * r->m.grad_memory[i];
}

static int find_tensor(const Real *r, const char *name) {
    for (int i = 0; i < r->n_tensors; i++) if (!strcmp(r->gv[i].name, name)) return i;
    return -1;
}

static void real_free(Real *r) { model_free(&r->m); free(r->pv); free(r->gv); }

static void test_real_nan(void) {
    Real r;
    if (real_create(&r)) { CHECK(0, "tiny model created: %s", attn_last_error()); return; }
    DiagConfig cfg; diag_config_default(&cfg);
    Diag d; diag_init(&d, &cfg, r.pv, r.gv, r.n_tensors);
    DiagResult res;
    float loss = real_step(&r);
    DiagAction a = diag_check_step(&d, 1, loss, &res);
    double sq = 0;
    for (long i = 0; i < r.m.n_params; i++) sq += (double)r.m.grad_memory[i] * r.m.grad_memory[i];
    CHECK(a == DIAG_OK && fabs(res.grad_norm - sqrt(sq)) < 1e-9 * sqrt(sq) && sqrt(sq) > 0,
          "real model: healthy step, grad norm over the whole buffer (%g)", res.grad_norm);
    int t = find_tensor(&r, "transformer.decoder.layers.1.linear1.weight");
    CHECK(t >= 0, "the model names its tensors like PyTorch");
    if (t >= 0) {
        real_step(&r);
        r.gv[t].data[7] = NAN;
        float *before = malloc(sizeof(float) * r.m.n_params);
        memcpy(before, r.m.param_memory, sizeof(float) * r.m.n_params);
        a = diag_check_step(&d, 2, loss, &res);
        CHECK(a == DIAG_STOP && strstr(res.message, "nearest the output transformer.decoder.layers.1.linear1.weight (layer 1) at element 7 (nan)"),
              "real model: injected NaN named: %s", res.message);
        CHECK(!memcmp(before, r.m.param_memory, sizeof(float) * r.m.n_params), "the check leaves the parameters untouched");
        free(before);
    }
    diag_free(&d);
    real_free(&r);
}

// A learning rate far too high: a few healthy SGD steps, then one huge step.
static void test_real_huge_lr(void) {
    Real r;
    if (real_create(&r)) return;
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.spike_action = DIAG_SKIP;
    Diag d; diag_init(&d, &cfg, r.pv, r.gv, r.n_tensors);
    DiagResult res;
    DiagAction a = DIAG_OK;
    int first_alarm = -1;
    for (int step = 1; step <= 40; step++) {
        float loss = real_step(&r);
        a = diag_check_step(&d, step, loss, &res);
        if (a != DIAG_OK) { first_alarm = step; break; }
        sgd(&r, step == 30 ? 1e4f : 0.01f);   // step 30: 1e6 times the rate
    }
    CHECK(first_alarm == 31 && a >= DIAG_SKIP
          && (strstr(res.message, "loss spike at step 31") || strstr(res.message, "non-finite") || strstr(res.message, "gradient norm spike")),
          "huge learning rate caught on the next step (step %d, %s): %s", first_alarm, diag_action_name(a), res.message);
    diag_free(&d);
    real_free(&r);
}

// A frozen layer: its gradients zeroed after every backward.
static void test_real_frozen_layer(void) {
    Real r;
    if (real_create(&r)) return;
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.vanish_patience = 10;
    Diag d; diag_init(&d, &cfg, r.pv, r.gv, r.n_tensors);
    DiagResult res;
    int warned_at = -1;
    for (int step = 1; step <= 12 && warned_at < 0; step++) {
        float loss = real_step(&r);
        for (int i = 0; i < r.n_tensors; i++)
            if (strstr(r.gv[i].name, "encoder.layers.1.")) memset(r.gv[i].data, 0, sizeof(float) * r.gv[i].numel);
        if (diag_check_step(&d, step, loss, &res) == DIAG_WARN) warned_at = step;
        sgd(&r, 0.01f);
    }
    CHECK(warned_at == 10 && strstr(res.message, "vanishing gradients: encoder.layers.1 has gradient norm 0"),
          "frozen encoder layer 1 warned at step %d: %s", warned_at, res.message);
    diag_free(&d);
    real_free(&r);
}

static void test_real_stats(void) {
    Real r;
    if (real_create(&r)) return;
    DiagConfig cfg; diag_config_default(&cfg);
    cfg.stats_every = 1;
    Diag d; diag_init(&d, &cfg, r.pv, r.gv, r.n_tensors);
    DiagResult res;
    model_zero_grad(&r.m);
    float loss = model_forward(&r.m, &r.b, 0.0f, 0, NULL);
    StrBuf before = {0}, after = {0}, layers = {0};
    diag_model_activations_json(&r.m, 1, &before);
    model_backward(&r.m, &r.b);
    diag_model_activations_json(&r.m, 1, &after);
    CHECK(!strcmp(before.data, after.data), "backward leaves the activations the stats read");
    JsonValue v;
    int parsed = json_parse(after.data, after.len, &v) == 0;
    CHECK(parsed, "activation stats are one JSON object");
    if (parsed) {
        const JsonValue *sub = json_get(&v, "sublayers"), *ent = json_get(&v, "attention_entropy");
        const JsonValue *ffn = json_get(json_get(sub, "decoder.layers.1.ffn"), "std");
        const JsonValue *out = json_get(json_get(sub, "encoder.layers.0.out"), "std");
        const JsonValue *e0 = json_get(ent, "encoder.layers.0.self_attn"), *x1 = json_get(ent, "decoder.layers.1.cross_attn");
        CHECK(sub && sub->n == 2 * 3 + 2 * 4 && ent && ent->n == 2 + 2 * 2, "3 sublayers per encoder layer, 4 per decoder layer, 6 entropies");
        CHECK(ffn && ffn->type == JSON_NUMBER && ffn->number > 0, "decoder FFN output has a spread");
        CHECK(out && fabs(out->number - 1) < 0.05, "post-LN layer output has std 1 (%g)", out ? out->number : -1);
        CHECK(e0 && x1 && e0->number > 0 && e0->number <= log(5.0) + 1e-6 && x1->number > 0 && x1->number <= log(5.0) + 1e-6,
              "entropies within [0, log S] (%g, %g)", e0 ? e0->number : -1, x1 ? x1->number : -1);
        json_free(&v);
    }
    diag_check_step(&d, 1, loss, &res);
    diag_snapshot_params(&d);
    sgd(&r, 0.01f);
    diag_layer_stats_json(&d, 1, &layers);
    CHECK(strstr(layers.data, "\"decoder.layers.1\":{\"grad_norm\":") && strstr(layers.data, "\"update_ratio\":")
          && strstr(layers.data, "\"generator\":"), "layer stats of the real model: %.100s", layers.data);
    sb_free(&before); sb_free(&after); sb_free(&layers);
    diag_free(&d);
    real_free(&r);
}

int main(void) {
    test_group_names();
    test_actions();
    test_zscore();
    test_clean_step();
    test_nan_stop();
    test_nan_skip();
    test_spikes();
    test_state_text();
    test_vanishing();
    test_layer_stats();
    test_entropy();
    test_overfit();
    test_overfit_message();
    test_save_batch();
    test_real_nan();
    test_real_huge_lr();
    test_real_frozen_layer();
    test_real_stats();
    TEST_EXIT();
}
