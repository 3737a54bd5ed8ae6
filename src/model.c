// The encoder-decoder Transformer: parameter layout, activations, forward,
// backward (cached incremental decoding is in model_decode.c). See model.h
// for the semantics (they are nn.Transformer's, DESIGN.md section 1) and
// docs/model.md.
#include "model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "kernels.h"
#include "loss.h"
#include "model_internal.h"

// ---------------------------------------------------------------------------
// Configuration

void model_config_default(ModelConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->src_vocab = 64;
    cfg->tgt_vocab = 64;
    cfg->d_model = 128;
    cfg->n_heads = 4;
    cfg->d_ff = 512;
    cfg->n_enc_layers = 2;
    cfg->n_dec_layers = 2;
    cfg->activation = ACT_RELU;
    cfg->norm_first = 0;
    cfg->tie_generator = 0;
    cfg->share_embeddings = 0;
    cfg->max_len = 256;
    cfg->dropout_emb = 0.1f;
    cfg->dropout_residual = 0.1f;
    cfg->dropout_attn = 0.1f;
    cfg->dropout_ffn = 0.1f;
}

static int check_dropout(const char *name, float p) {
    if (!(p >= 0.0f && p < 1.0f)) return attn_error("model config: %s must be in [0, 1), got %g", name, p);
    return 0;
}

int model_config_validate(const ModelConfig *cfg) {
    if (cfg->src_vocab < 4 || cfg->tgt_vocab < 4)
        return attn_error("model config: vocabularies need at least the 4 special tokens (src_vocab %d, tgt_vocab %d)",
                          cfg->src_vocab, cfg->tgt_vocab);
    if (cfg->d_model < 1 || cfg->n_heads < 1 || cfg->d_ff < 1)
        return attn_error("model config: d_model, n_heads and d_ff must be positive");
    if (cfg->d_model % cfg->n_heads != 0)
        return attn_error("model config: d_model %d is not a multiple of n_heads %d", cfg->d_model, cfg->n_heads);
    if (cfg->n_enc_layers < 1 || cfg->n_dec_layers < 1)
        return attn_error("model config: need at least one encoder and one decoder layer");
    if (cfg->activation != ACT_RELU && cfg->activation != ACT_GELU)
        return attn_error("model config: activation must be relu or gelu");
    if (cfg->share_embeddings && cfg->src_vocab != cfg->tgt_vocab)
        return attn_error("model config: shared embeddings need src_vocab == tgt_vocab (%d vs %d)",
                          cfg->src_vocab, cfg->tgt_vocab);
    if (cfg->max_len < 1) return attn_error("model config: max_len must be positive");
    if (check_dropout("dropout_emb", cfg->dropout_emb) || check_dropout("dropout_residual", cfg->dropout_residual) ||
        check_dropout("dropout_attn", cfg->dropout_attn) || check_dropout("dropout_ffn", cfg->dropout_ffn))
        return -1;
    return 0;
}

float sinusoid(int pos, int i, int d_model) {
    double angle = pos / pow(10000.0, (double)(i - i % 2) / d_model);
    return (float)(i % 2 == 0 ? sin(angle) : cos(angle));
}

// ---------------------------------------------------------------------------
// Parameter layout: the fields of ModelParams in order, each a slice of one
// buffer. Tied tensors take no space of their own and alias their target.

#define N_PARAM_FIELDS 38

// Pointers to the fields of p in declaration order, with their sizes.
static void param_fields(ModelParams *p, const ModelConfig *c, float ***fields, long *sizes) {
    long C = c->d_model, F = c->d_ff, Le = c->n_enc_layers, Ld = c->n_dec_layers;
    long Vs = c->src_vocab, Vt = c->tgt_vocab;
    float **f[N_PARAM_FIELDS] = {
        &p->src_embed, &p->tgt_embed,
        &p->enc_qkv_w, &p->enc_qkv_b, &p->enc_out_w, &p->enc_out_b, &p->enc_ln1_w, &p->enc_ln1_b,
        &p->enc_ff1_w, &p->enc_ff1_b, &p->enc_ff2_w, &p->enc_ff2_b, &p->enc_ln2_w, &p->enc_ln2_b,
        &p->enc_norm_w, &p->enc_norm_b,
        &p->dec_qkv_w, &p->dec_qkv_b, &p->dec_out_w, &p->dec_out_b, &p->dec_ln1_w, &p->dec_ln1_b,
        &p->dec_xqkv_w, &p->dec_xqkv_b, &p->dec_xout_w, &p->dec_xout_b, &p->dec_ln2_w, &p->dec_ln2_b,
        &p->dec_ff1_w, &p->dec_ff1_b, &p->dec_ff2_w, &p->dec_ff2_b, &p->dec_ln3_w, &p->dec_ln3_b,
        &p->dec_norm_w, &p->dec_norm_b,
        &p->gen_w, &p->gen_b,
    };
    long s[N_PARAM_FIELDS] = {
        Vs * C, c->share_embeddings ? 0 : Vt * C,
        Le * 3 * C * C, Le * 3 * C, Le * C * C, Le * C, Le * C, Le * C,
        Le * F * C, Le * F, Le * C * F, Le * C, Le * C, Le * C,
        C, C,
        Ld * 3 * C * C, Ld * 3 * C, Ld * C * C, Ld * C, Ld * C, Ld * C,
        Ld * 3 * C * C, Ld * 3 * C, Ld * C * C, Ld * C, Ld * C, Ld * C,
        Ld * F * C, Ld * F, Ld * C * F, Ld * C, Ld * C, Ld * C,
        C, C,
        c->tie_generator ? 0 : Vt * C, Vt,
    };
    for (int i = 0; i < N_PARAM_FIELDS; i++) { fields[i] = f[i]; sizes[i] = s[i]; }
}

static long param_count(const ModelConfig *c) {
    ModelParams dummy;
    float **fields[N_PARAM_FIELDS];
    long sizes[N_PARAM_FIELDS], total = 0;
    param_fields(&dummy, c, fields, sizes);
    for (int i = 0; i < N_PARAM_FIELDS; i++) total += sizes[i];
    return total;
}

static void slice_params(ModelParams *p, float *memory, const ModelConfig *c) {
    float **fields[N_PARAM_FIELDS];
    long sizes[N_PARAM_FIELDS];
    param_fields(p, c, fields, sizes);
    for (int i = 0; i < N_PARAM_FIELDS; i++) {
        *fields[i] = memory;
        memory += sizes[i];
    }
    if (c->share_embeddings) p->tgt_embed = p->src_embed;
    if (c->tie_generator) p->gen_w = p->tgt_embed;
}

// ---------------------------------------------------------------------------
// Named tensors (PyTorch state_dict order, tied ones once under the first name)

typedef struct { TensorView *views; int max, n; } ViewList;

static void add_view(ViewList *vl, const char *name, int layer, float *data, int d0, int d1) {
    if (vl->views && vl->n < vl->max) {
        TensorView *v = &vl->views[vl->n];
        snprintf(v->name, sizeof v->name, "%s", name);
        v->ndim = d1 > 0 ? 2 : 1;
        v->shape[0] = d0;
        v->shape[1] = d1 > 0 ? d1 : 0;
        v->numel = (long)d0 * (d1 > 0 ? d1 : 1);
        v->data = data;
        v->layer = layer;
    }
    vl->n++;
}

static void add_layer_view(ViewList *vl, const char *prefix, int layer, const char *suffix,
                           float *stacked, int d0, int d1) {
    char name[96];
    snprintf(name, sizeof name, "%s.layers.%d.%s", prefix, layer, suffix);
    long numel = (long)d0 * (d1 > 0 ? d1 : 1);
    add_view(vl, name, layer, stacked + layer * numel, d0, d1);
}

static void add_mha_views(ViewList *vl, const char *prefix, int l, const char *mod,
                          float *w, float *b, float *ow, float *ob, int C) {
    char suffix[64];
    snprintf(suffix, sizeof suffix, "%s.in_proj_weight", mod); add_layer_view(vl, prefix, l, suffix, w, 3 * C, C);
    snprintf(suffix, sizeof suffix, "%s.in_proj_bias", mod); add_layer_view(vl, prefix, l, suffix, b, 3 * C, 0);
    snprintf(suffix, sizeof suffix, "%s.out_proj.weight", mod); add_layer_view(vl, prefix, l, suffix, ow, C, C);
    snprintf(suffix, sizeof suffix, "%s.out_proj.bias", mod); add_layer_view(vl, prefix, l, suffix, ob, C, 0);
}

int model_tensors(const Model *m, int grads, TensorView *views, int max_views) {
    const ModelConfig *c = &m->config;
    const ModelParams *p = grads ? &m->grads : &m->params;
    int C = c->d_model, F = c->d_ff;
    ViewList vl = {views, max_views, 0};
    add_view(&vl, "src_embed.weight", -1, p->src_embed, c->src_vocab, C);
    if (!c->share_embeddings) add_view(&vl, "tgt_embed.weight", -1, p->tgt_embed, c->tgt_vocab, C);
    const char *enc = "transformer.encoder";
    for (int l = 0; l < c->n_enc_layers; l++) {
        add_mha_views(&vl, enc, l, "self_attn", p->enc_qkv_w, p->enc_qkv_b, p->enc_out_w, p->enc_out_b, C);
        add_layer_view(&vl, enc, l, "linear1.weight", p->enc_ff1_w, F, C);
        add_layer_view(&vl, enc, l, "linear1.bias", p->enc_ff1_b, F, 0);
        add_layer_view(&vl, enc, l, "linear2.weight", p->enc_ff2_w, C, F);
        add_layer_view(&vl, enc, l, "linear2.bias", p->enc_ff2_b, C, 0);
        add_layer_view(&vl, enc, l, "norm1.weight", p->enc_ln1_w, C, 0);
        add_layer_view(&vl, enc, l, "norm1.bias", p->enc_ln1_b, C, 0);
        add_layer_view(&vl, enc, l, "norm2.weight", p->enc_ln2_w, C, 0);
        add_layer_view(&vl, enc, l, "norm2.bias", p->enc_ln2_b, C, 0);
    }
    add_view(&vl, "transformer.encoder.norm.weight", -1, p->enc_norm_w, C, 0);
    add_view(&vl, "transformer.encoder.norm.bias", -1, p->enc_norm_b, C, 0);
    const char *dec = "transformer.decoder";
    for (int l = 0; l < c->n_dec_layers; l++) {
        add_mha_views(&vl, dec, l, "self_attn", p->dec_qkv_w, p->dec_qkv_b, p->dec_out_w, p->dec_out_b, C);
        add_mha_views(&vl, dec, l, "multihead_attn", p->dec_xqkv_w, p->dec_xqkv_b, p->dec_xout_w, p->dec_xout_b, C);
        add_layer_view(&vl, dec, l, "linear1.weight", p->dec_ff1_w, F, C);
        add_layer_view(&vl, dec, l, "linear1.bias", p->dec_ff1_b, F, 0);
        add_layer_view(&vl, dec, l, "linear2.weight", p->dec_ff2_w, C, F);
        add_layer_view(&vl, dec, l, "linear2.bias", p->dec_ff2_b, C, 0);
        add_layer_view(&vl, dec, l, "norm1.weight", p->dec_ln1_w, C, 0);
        add_layer_view(&vl, dec, l, "norm1.bias", p->dec_ln1_b, C, 0);
        add_layer_view(&vl, dec, l, "norm2.weight", p->dec_ln2_w, C, 0);
        add_layer_view(&vl, dec, l, "norm2.bias", p->dec_ln2_b, C, 0);
        add_layer_view(&vl, dec, l, "norm3.weight", p->dec_ln3_w, C, 0);
        add_layer_view(&vl, dec, l, "norm3.bias", p->dec_ln3_b, C, 0);
    }
    add_view(&vl, "transformer.decoder.norm.weight", -1, p->dec_norm_w, C, 0);
    add_view(&vl, "transformer.decoder.norm.bias", -1, p->dec_norm_b, C, 0);
    if (!c->tie_generator) add_view(&vl, "generator.weight", -1, p->gen_w, c->tgt_vocab, C);
    add_view(&vl, "generator.bias", -1, p->gen_b, c->tgt_vocab, 0);
    return vl.n;
}

// ---------------------------------------------------------------------------
// Activation layout. One pass with a NULL base only measures; the second
// hands out 64-byte aligned slices of the single allocation.

typedef struct { char *base; size_t used; } Arena;

static void *arena_take(Arena *a, size_t bytes) {
    size_t offset = a->used;
    a->used += (bytes + 63) & ~(size_t)63;
    return a->base ? a->base + offset : NULL;
}
static float *take_f(Arena *a, long n) { return arena_take(a, (size_t)n * sizeof(float)); }
// Residual sums are stored only pre-LN, where they are the stream itself.
static float *take_res(Arena *a, long n, int pre_ln) { return pre_ln ? take_f(a, n) : NULL; }

// Dropout masks and the dropped probabilities are not stored, and all
// sublayers share one attention output buffer `att` (model.h).
static void layout_mha(MhaActs *a, Arena *ar, int cross, long B, long Tq, long Tk, long C, long NH, float *att) {
    a->q = take_f(ar, B * Tq * (cross ? C : 3 * C));
    a->kv = cross ? take_f(ar, B * Tk * 2 * C) : NULL;
    a->att = att;
    a->probs = take_f(ar, B * NH * Tq * Tk);
    a->probs_drop = NULL;
    a->drop_keep = NULL;
    a->out = take_f(ar, B * Tq * C);
}

static void layout_layer_norm(Arena *ar, float **out, float **mean, float **rstd, long N, long C) {
    *out = take_f(ar, N * C);
    *mean = take_f(ar, N);
    *rstd = take_f(ar, N);
}

// A LayerNorm whose output lives in a shared buffer (rebuilt by the backward).
static void layout_layer_norm_shared(Arena *ar, float **out, float **mean, float **rstd, long N, float *shared) {
    *out = shared;
    *mean = take_f(ar, N);
    *rstd = take_f(ar, N);
}

// The backward's scratch that is not live while dlogits is (see below).
static void layout_backward_scratch(Activations *acts, Arena *ar, long B, long S, long Tm, long C, long F,
                                    long NH, int relu) {
    acts->dtmp2 = take_f(ar, B * Tm * C);
    acts->dact = take_f(ar, B * Tm * F);
    acts->dff1 = relu ? acts->dact : take_f(ar, B * Tm * F);   // ReLU's backward runs in place
    acts->dmemory = take_f(ar, B * S * C);
    acts->mha.datt = take_f(ar, B * Tm * C);
    acts->mha.dq = take_f(ar, B * Tm * 3 * C);
    acts->mha.dkv = take_f(ar, B * S * 2 * C);
    acts->mha.dprobs = take_f(ar, B * NH * Tm * Tm);
}

static void layout_activations(Activations *acts, float **logits, Arena *ar, const ModelConfig *c,
                               long B, long S, long T, long Vt) {
    long C = c->d_model, F = c->d_ff, NH = c->n_heads, Tm = S > T ? S : T;
    int relu = c->activation == ACT_RELU;   // ReLU runs in place: ff1 is act (model.h)
    int pre_ln = c->norm_first;             // post-LN stores no residual sums (model.h)
    acts->mha.att = take_f(ar, B * Tm * C);   // every sublayer's att, and the backward's rebuilt one
    // post-LN: the LayerNorm outputs inside a layer are shared (model.h)
    acts->ln_shared1 = pre_ln ? NULL : take_f(ar, B * Tm * C);
    acts->ln_shared2 = pre_ln ? NULL : take_f(ar, B * T * C);
    acts->src_pad = arena_take(ar, B * S);
    acts->tgt_pad = arena_take(ar, B * T);
    acts->src_x = take_f(ar, B * S * C);

    for (int l = 0; l < c->n_enc_layers; l++) {
        EncoderLayerActs *L = &acts->enc[l];
        if (pre_ln) layout_layer_norm(ar, &L->ln1, &L->ln1_mean, &L->ln1_rstd, B * S, C);
        else layout_layer_norm_shared(ar, &L->ln1, &L->ln1_mean, &L->ln1_rstd, B * S, acts->ln_shared1);
        layout_mha(&L->self, ar, 0, B, S, S, C, NH, acts->mha.att);
        L->res1 = take_res(ar, B * S * C, pre_ln);
        layout_layer_norm(ar, &L->ln2, &L->ln2_mean, &L->ln2_rstd, B * S, C);
        L->ff1 = take_f(ar, B * S * F);
        L->act = relu ? L->ff1 : take_f(ar, B * S * F);
        L->ff2 = take_f(ar, B * S * C);
        L->res2 = take_res(ar, B * S * C, pre_ln);
    }
    layout_layer_norm(ar, &acts->memory, &acts->memory_mean, &acts->memory_rstd, B * S, C);
    acts->tgt_x = take_f(ar, B * T * C);

    for (int l = 0; l < c->n_dec_layers; l++) {
        DecoderLayerActs *L = &acts->dec[l];
        if (pre_ln) layout_layer_norm(ar, &L->ln1, &L->ln1_mean, &L->ln1_rstd, B * T, C);
        else layout_layer_norm_shared(ar, &L->ln1, &L->ln1_mean, &L->ln1_rstd, B * T, acts->ln_shared1);
        layout_mha(&L->self, ar, 0, B, T, T, C, NH, acts->mha.att);
        L->res1 = take_res(ar, B * T * C, pre_ln);
        if (pre_ln) layout_layer_norm(ar, &L->ln2, &L->ln2_mean, &L->ln2_rstd, B * T, C);
        else layout_layer_norm_shared(ar, &L->ln2, &L->ln2_mean, &L->ln2_rstd, B * T, acts->ln_shared2);
        layout_mha(&L->cross, ar, 1, B, T, S, C, NH, acts->mha.att);
        L->res2 = take_res(ar, B * T * C, pre_ln);
        layout_layer_norm(ar, &L->ln3, &L->ln3_mean, &L->ln3_rstd, B * T, C);
        L->ff1 = take_f(ar, B * T * F);
        L->act = relu ? L->ff1 : take_f(ar, B * T * F);
        L->ff2 = take_f(ar, B * T * C);
        L->res3 = take_res(ar, B * T * C, pre_ln);
    }
    layout_layer_norm(ar, &acts->dec_out, &acts->dec_out_mean, &acts->dec_out_rstd, B * T, C);
    *logits = take_f(ar, B * T * Vt);
    acts->token_loss = take_f(ar, B * T);
    acts->lse = take_f(ar, B * T);
    acts->dlogits = *logits;   // the loss backward works in place over the logits
    acts->probs = *logits;
    // The training forward's chunk of logits is the start of the logits
    // buffer, the pending generator gradient follows it when it fits there
    // (the backward's scratch below may overlap both: it is used only after
    // the pending gradient was added to the grads). Untouched pages of the
    // buffer cost no memory, so training never pays for the full logits.
    long chunk = ((B * T < GEN_CHUNK_ROWS ? B * T : GEN_CHUNK_ROWS) * Vt + 15) / 16 * 16;
    long pending = Vt * C + Vt;
    acts->gen_dw = chunk + pending <= B * T * Vt ? *logits + chunk : take_f(ar, pending);
    acts->gen_db = acts->gen_dw + Vt * C;
    acts->dstream = take_f(ar, B * Tm * C);
    acts->dtmp1 = take_f(ar, B * Tm * C);
    // The rest of the backward's scratch is first used after the generator's
    // backward has consumed dlogits: it lives inside the logits buffer when
    // it fits there (large vocabularies), else on its own.
    Arena need = {NULL, 0};
    layout_backward_scratch(acts, &need, B, S, Tm, C, F, NH, relu);
    size_t logits_bytes = (size_t)(B * T * Vt) * sizeof(float);
    Arena in_logits = {(char *)*logits, 0};
    layout_backward_scratch(acts, need.used <= logits_bytes ? &in_logits : ar, B, S, Tm, C, F, NH, relu);
}

// ---------------------------------------------------------------------------
// Create, free, initialize

int model_create(Model *m, const ModelConfig *cfg, int max_B, int max_S, int max_T) {
    memset(m, 0, sizeof *m);
    if (model_config_validate(cfg)) return -1;
    if (max_B < 1 || max_S < 1 || max_T < 1)
        return attn_error("model: batch capacity must be positive (B %d, S %d, T %d)", max_B, max_S, max_T);
    if (max_S > cfg->max_len || max_T > cfg->max_len)
        return attn_error("model: sequence capacity (S %d, T %d) exceeds max_len %d of the positions table",
                          max_S, max_T, cfg->max_len);
    m->config = *cfg;
    m->n_params = param_count(cfg);
    m->param_memory = calloc_check((size_t)m->n_params, sizeof(float));
    m->grad_memory = calloc_check((size_t)m->n_params, sizeof(float));
    slice_params(&m->params, m->param_memory, cfg);
    slice_params(&m->grads, m->grad_memory, cfg);
    int C = cfg->d_model;
    m->pos_table = malloc_check((size_t)cfg->max_len * C * sizeof(float));
    for (int pos = 0; pos < cfg->max_len; pos++)
        for (int i = 0; i < C; i++) m->pos_table[(long)pos * C + i] = sinusoid(pos, i, C);
    Activations *acts = calloc_check(1, sizeof *acts);
    acts->enc = calloc_check((size_t)cfg->n_enc_layers, sizeof *acts->enc);
    acts->dec = calloc_check((size_t)cfg->n_dec_layers, sizeof *acts->dec);
    Arena measure = {NULL, 0};
    layout_activations(acts, &m->logits, &measure, cfg, max_B, max_S, max_T, cfg->tgt_vocab);
    Arena arena = {calloc_check(measure.used + 64, 1), 0};
    // Align the base itself so every slice is 64-byte aligned.
    size_t misalign = (uintptr_t)arena.base % 64;
    acts->memory_block = arena.base;
    acts->memory_bytes = measure.used + 64;
    if (misalign) arena.base += 64 - misalign;
    layout_activations(acts, &m->logits, &arena, cfg, max_B, max_S, max_T, cfg->tgt_vocab);
    m->acts = acts;
    m->max_B = max_B;
    m->max_S = max_S;
    m->max_T = max_T;
    return 0;
}

void model_free(Model *m) {
    if (m->acts) {
        free(m->acts->memory_block);
        free(m->acts->enc);
        free(m->acts->dec);
        free(m->acts);
    }
    free(m->param_memory);
    free(m->grad_memory);
    free(m->pos_table);
    memset(m, 0, sizeof *m);
}

void model_zero_grad(Model *m) {
    memset(m->grad_memory, 0, (size_t)m->n_params * sizeof(float));
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void fill_uniform(float *x, long n, float bound, Rng *rng) {
    for (long i = 0; i < n; i++) x[i] = (2.0f * rng_uniform(rng) - 1.0f) * bound;
}

void model_init_weights(Model *m, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    int n = model_tensors(m, 0, NULL, 0);
    TensorView *views = malloc_check((size_t)n * sizeof *views);
    model_tensors(m, 0, views, n);
    const ModelConfig *c = &m->config;
    for (int i = 0; i < n; i++) {
        TensorView *v = &views[i];
        if (ends_with(v->name, "embed.weight")) {
            float std = 1.0f / sqrtf((float)c->d_model);
            for (long j = 0; j < v->numel; j++) v->data[j] = std * rng_normal(&rng);
        } else if (ends_with(v->name, "in_proj_bias") || ends_with(v->name, "out_proj.bias") ||
                   (strstr(v->name, ".norm") && ends_with(v->name, ".bias"))) {
            memset(v->data, 0, (size_t)v->numel * sizeof(float));
        } else if (strstr(v->name, ".norm") && ends_with(v->name, ".weight")) {
            for (long j = 0; j < v->numel; j++) v->data[j] = 1.0f;
        } else if (ends_with(v->name, "generator.weight")) {
            // nn.Linear's kaiming_uniform(a = sqrt 5) is U(-1/sqrt(in), 1/sqrt(in)).
            fill_uniform(v->data, v->numel, 1.0f / sqrtf((float)v->shape[1]), &rng);
        } else if (v->ndim == 2) {
            // xavier_uniform, as nn.Transformer._reset_parameters on every matrix.
            fill_uniform(v->data, v->numel, sqrtf(6.0f / (v->shape[0] + v->shape[1])), &rng);
        } else {
            // FFN and generator biases keep nn.Linear's default: U(+-1/sqrt(fan_in)).
            int fan_in = ends_with(v->name, "linear2.bias") ? c->d_ff : c->d_model;
            fill_uniform(v->data, v->numel, 1.0f / sqrtf((float)fan_in), &rng);
        }
    }
    free(views);
}

int model_check_batch(const Model *m, const Batch *b) {
    const ModelConfig *c = &m->config;
    if (b->B < 1 || b->B > m->max_B || b->S < 1 || b->S > m->max_S || b->T < 1 || b->T > m->max_T)
        return attn_error("model: batch (B %d, S %d, T %d) does not fit the capacity (B %d, S %d, T %d)",
                          b->B, b->S, b->T, m->max_B, m->max_S, m->max_T);
    if (!b->src || !b->tgt_in) return attn_error("model: batch without source or decoder input");
    for (long i = 0; i < (long)b->B * b->S; i++)
        if (b->src[i] < 0 || b->src[i] >= c->src_vocab)
            return attn_error("model: source token id %d outside the vocabulary (%d)", b->src[i], c->src_vocab);
    for (long i = 0; i < (long)b->B * b->T; i++) {
        if (b->tgt_in[i] < 0 || b->tgt_in[i] >= c->tgt_vocab)
            return attn_error("model: target token id %d outside the vocabulary (%d)", b->tgt_in[i], c->tgt_vocab);
        if (b->tgt_out && (b->tgt_out[i] < 0 || b->tgt_out[i] >= c->tgt_vocab))
            return attn_error("model: target token id %d outside the vocabulary (%d)", b->tgt_out[i], c->tgt_vocab);
    }
    return 0;
}

// Dropout is on only in training: the rate a site uses, 0 in eval.
static float rate(const Activations *a, float p) { return a->train ? p : 0.0f; }

// Dropout at one site of the forward, in place over x (n): draws the site's
// seed, which the backward uses to recompute the mask (0 when off).
static void drop_site(float *x, long n, float p, uint64_t *seed, Rng *rng) {
    *seed = p > 0.0f ? rng_next(rng) : 0;
    dropout_forward_seeded(x, x, n, p, *seed);
}

static const float *enc_layer_output(const Model *m, int l) {
    const EncoderLayerActs *L = &m->acts->enc[l];
    return m->config.norm_first ? L->res2 : L->ln2;
}

static const float *dec_layer_output(const Model *m, int l) {
    const DecoderLayerActs *L = &m->acts->dec[l];
    return m->config.norm_first ? L->res3 : L->ln3;
}

// ---------------------------------------------------------------------------
// Forward

// ff(h) = linear2(drop(act(linear1(h)))), h (N, C) -> ff2 (N, C). With
// ReLU, ff1 == act: the activation and its dropout run in place.
// The FFN with both its dropouts: on the activation (act_seed) and on its
// output (ff2_seed, the residual dropout), each fused into its Linear.
static void ffn_forward(float *ff1, float *act, uint64_t *act_seed, float *ff2, uint64_t *ff2_seed,
                        const float *inp, const LayerParams *w, int N, const ModelConfig *c, float p_ffn,
                        float p_res, Rng *rng) {
    LinearEpilogue e;
    int act_fn = c->activation == ACT_GELU ? LINEAR_GELU : LINEAR_RELU;
    *act_seed = p_ffn > 0.0f ? rng_next(rng) : 0;
    linear_epilogue_init(&e, w->ff1_b, act, c->d_ff, act_fn, p_ffn, *act_seed);
    linear_fused_forward(ff1, inp, w->ff1_w, N, c->d_model, &e);
    *ff2_seed = p_res > 0.0f ? rng_next(rng) : 0;
    linear_epilogue_init(&e, w->ff2_b, ff2, c->d_model, LINEAR_NO_ACT, p_res, *ff2_seed);
    linear_fused_forward(ff2, act, w->ff2_w, N, c->d_ff, &e);
}

static void encoder_layer_forward(Model *m, int l, const float *x, int B, int S, Rng *rng) {
    const ModelConfig *c = &m->config;
    Activations *a = m->acts;
    EncoderLayerActs *L = &a->enc[l];
    LayerParams w = enc_layer(&m->params, c, l);
    int C = c->d_model, N = B * S;
    long n = (long)N * C;
    float pr = rate(a, c->dropout_residual), pa = rate(a, c->dropout_attn), pf = rate(a, c->dropout_ffn);
    if (c->norm_first) {
        layernorm_forward(L->ln1, L->ln1_mean, L->ln1_rstd, x, w.ln1_w, w.ln1_b, N, C);
        self_attention_forward(&L->self, L->ln1, &w.self, a->src_pad, B, S, C, c->n_heads, 0, pa, rng);
        drop_site(L->self.out, n, pr, &L->self_seed, rng);
        residual_forward(L->res1, x, L->self.out, n);
        layernorm_forward(L->ln2, L->ln2_mean, L->ln2_rstd, L->res1, w.ln2_w, w.ln2_b, N, C);
        ffn_forward(L->ff1, L->act, &L->act_seed, L->ff2, &L->ff2_seed, L->ln2, &w, N, c, pf, pr, rng);
        residual_forward(L->res2, L->res1, L->ff2, n);
    } else {
        self_attention_forward(&L->self, x, &w.self, a->src_pad, B, S, C, c->n_heads, 0, pa, rng);
        drop_site(L->self.out, n, pr, &L->self_seed, rng);
        layernorm_residual_forward(L->ln1, L->ln1_mean, L->ln1_rstd, x, L->self.out, w.ln1_w, w.ln1_b, N, C);
        ffn_forward(L->ff1, L->act, &L->act_seed, L->ff2, &L->ff2_seed, L->ln1, &w, N, c, pf, pr, rng);
        layernorm_residual_forward(L->ln2, L->ln2_mean, L->ln2_rstd, L->ln1, L->ff2, w.ln2_w, w.ln2_b, N, C);
    }
}

static void decoder_layer_forward(Model *m, int l, const float *x, int B, int T, int S, Rng *rng) {
    const ModelConfig *c = &m->config;
    Activations *a = m->acts;
    DecoderLayerActs *L = &a->dec[l];
    LayerParams w = dec_layer(&m->params, c, l);
    int C = c->d_model, NH = c->n_heads, N = B * T;
    long n = (long)N * C;
    float pr = rate(a, c->dropout_residual), pa = rate(a, c->dropout_attn), pf = rate(a, c->dropout_ffn);
    if (c->norm_first) {
        layernorm_forward(L->ln1, L->ln1_mean, L->ln1_rstd, x, w.ln1_w, w.ln1_b, N, C);
        self_attention_forward(&L->self, L->ln1, &w.self, a->tgt_pad, B, T, C, NH, 1, pa, rng);
        drop_site(L->self.out, n, pr, &L->self_seed, rng);
        residual_forward(L->res1, x, L->self.out, n);
        layernorm_forward(L->ln2, L->ln2_mean, L->ln2_rstd, L->res1, w.ln2_w, w.ln2_b, N, C);
        cross_attention_forward(&L->cross, L->ln2, a->memory, &w.cross, a->src_pad, B, T, S, C, NH, pa, rng);
        drop_site(L->cross.out, n, pr, &L->cross_seed, rng);
        residual_forward(L->res2, L->res1, L->cross.out, n);
        layernorm_forward(L->ln3, L->ln3_mean, L->ln3_rstd, L->res2, w.ln3_w, w.ln3_b, N, C);
        ffn_forward(L->ff1, L->act, &L->act_seed, L->ff2, &L->ff2_seed, L->ln3, &w, N, c, pf, pr, rng);
        residual_forward(L->res3, L->res2, L->ff2, n);
    } else {
        self_attention_forward(&L->self, x, &w.self, a->tgt_pad, B, T, C, NH, 1, pa, rng);
        drop_site(L->self.out, n, pr, &L->self_seed, rng);
        layernorm_residual_forward(L->ln1, L->ln1_mean, L->ln1_rstd, x, L->self.out, w.ln1_w, w.ln1_b, N, C);
        cross_attention_forward(&L->cross, L->ln1, a->memory, &w.cross, a->src_pad, B, T, S, C, NH, pa, rng);
        drop_site(L->cross.out, n, pr, &L->cross_seed, rng);
        layernorm_residual_forward(L->ln2, L->ln2_mean, L->ln2_rstd, L->ln1, L->cross.out, w.ln2_w, w.ln2_b, N, C);
        ffn_forward(L->ff1, L->act, &L->act_seed, L->ff2, &L->ff2_seed, L->ln2, &w, N, c, pf, pr, rng);
        layernorm_residual_forward(L->ln3, L->ln3_mean, L->ln3_rstd, L->ln2, L->ff2, w.ln3_w, w.ln3_b, N, C);
    }
}

static void pad_mask(uint8_t *mask, const int *tokens, long n) {
    for (long i = 0; i < n; i++) mask[i] = tokens[i] == PAD_ID;
}

// Embedding, encoder stack, final encoder norm -> a->memory.
static void encoder_forward(Model *m, const int *src, int B, int S, Rng *rng) {
    const ModelConfig *c = &m->config;
    Activations *a = m->acts;
    int C = c->d_model;
    pad_mask(a->src_pad, src, (long)B * S);
    embedding_forward(a->src_x, src, m->params.src_embed, m->pos_table, B, S, C, 0);
    drop_site(a->src_x, (long)B * S * C, rate(a, c->dropout_emb), &a->src_x_seed, rng);
    for (int l = 0; l < c->n_enc_layers; l++)
        encoder_layer_forward(m, l, l == 0 ? a->src_x : enc_layer_output(m, l - 1), B, S, rng);
    layernorm_forward(a->memory, a->memory_mean, a->memory_rstd, enc_layer_output(m, c->n_enc_layers - 1),
                      m->params.enc_norm_w, m->params.enc_norm_b, B * S, C);
}

int model_encode(Model *m, const int *src, int B, int S) {
    if (B < 1 || B > m->max_B || S < 1 || S > m->max_S)
        return attn_error("model: source batch (B %d, S %d) does not fit the capacity (B %d, S %d)",
                          B, S, m->max_B, m->max_S);
    for (long i = 0; i < (long)B * S; i++)
        if (src[i] < 0 || src[i] >= m->config.src_vocab)
            return attn_error("model: source token id %d outside the vocabulary (%d)", src[i], m->config.src_vocab);
    m->acts->B = B;
    m->acts->S = S;
    m->acts->train = 0;
    m->has_targets = 0;   // nothing for model_backward until the next model_forward
    encoder_forward(m, src, B, S, NULL);
    return 0;
}

// The training forward's generator and loss, with their backward, in chunks
// of GEN_CHUNK_ROWS rows of logits (see Activations): per chunk the logits,
// their loss and log-sum-exp, the logits' gradient in place, then dec_out's
// gradient into dtmp1 and the generator's into gen_dw, gen_db. Returns the
// mean loss, equal to the one-pass forward's (the same per-row losses,
// summed in the same order).
static float generator_loss_chunked(Model *m, const Batch *b, float smoothing) {
    Activations *a = m->acts;
    int N = a->B * a->T, C = m->config.d_model, Vt = m->config.tgt_vocab;
    long valid = 0;
    for (int n = 0; n < N; n++) valid += b->tgt_out[n] != PAD_ID;
    m->n_target_tokens = valid;
    if (valid == 0) {   // nothing to learn: model_backward does nothing
        memset(a->token_loss, 0, (size_t)N * sizeof(float));
        return 0.0f;
    }
    memset(a->gen_dw, 0, (size_t)((long)Vt * C + Vt) * sizeof(float));
    memset(a->dtmp1, 0, (size_t)N * C * sizeof(float));
    float *chunk = m->logits;   // (rows, Vt)
    long correct = 0;
    for (int r0 = 0; r0 < N; r0 += GEN_CHUNK_ROWS) {
        int rows = N - r0 < GEN_CHUNK_ROWS ? N - r0 : GEN_CHUNK_ROWS;
        const float *x = a->dec_out + (long)r0 * C;
        const int *targets = b->tgt_out + r0;
        long chunk_valid = 0, chunk_correct = 0;
        linear_forward(chunk, x, m->params.gen_w, m->params.gen_b, rows, C, Vt);
        crossentropy_forward_backward_inplace(a->token_loss + r0, a->lse + r0, chunk, targets, rows, Vt, smoothing,
                                              1.0f / (float)valid, &chunk_valid, &chunk_correct);
        correct += chunk_correct;
        linear_backward(a->dtmp1 + (long)r0 * C, a->gen_dw, a->gen_db, chunk, x, m->params.gen_w, rows, C, Vt);
    }
    double total = 0.0;
    for (int n = 0; n < N; n++) total += a->token_loss[n];
    m->n_correct = correct;
    a->generator_done = 1;
    m->loss = (float)(total / valid);
    return m->loss;
}

float model_forward(Model *m, const Batch *b, float smoothing, int train, Rng *rng) {
    m->has_targets = 0;
    if (model_check_batch(m, b)) return NAN;
    const ModelConfig *c = &m->config;
    Activations *a = m->acts;
    int B = b->B, S = b->S, T = b->T, C = c->d_model, Vt = c->tgt_vocab;
    a->B = B; a->S = S; a->T = T;
    a->train = train && rng != NULL;
    encoder_forward(m, b->src, B, S, rng);
    pad_mask(a->tgt_pad, b->tgt_in, (long)B * T);
    embedding_forward(a->tgt_x, b->tgt_in, m->params.tgt_embed, m->pos_table, B, T, C, 0);
    drop_site(a->tgt_x, (long)B * T * C, rate(a, c->dropout_emb), &a->tgt_x_seed, rng);
    for (int l = 0; l < c->n_dec_layers; l++)
        decoder_layer_forward(m, l, l == 0 ? a->tgt_x : dec_layer_output(m, l - 1), B, T, S, rng);
    layernorm_forward(a->dec_out, a->dec_out_mean, a->dec_out_rstd, dec_layer_output(m, c->n_dec_layers - 1),
                      m->params.dec_norm_w, m->params.dec_norm_b, B * T, C);
    m->smoothing = smoothing;
    m->has_targets = b->tgt_out != NULL;
    m->loss = 0.0f;
    m->n_target_tokens = 0;
    m->n_correct = 0;
    a->generator_done = 0;
    if (train && b->tgt_out && (long)B * T * Vt >= GEN_CHUNKED_MIN_LOGITS)
        return generator_loss_chunked(m, b, smoothing);
    linear_forward(m->logits, a->dec_out, m->params.gen_w, m->params.gen_b, B * T, C, Vt);
    if (!b->tgt_out) return 0.0f;
    double total = crossentropy_forward_lse(a->token_loss, a->lse, m->logits, b->tgt_out, B * T, Vt, smoothing,
                                            &m->n_target_tokens, &m->n_correct);
    m->loss = m->n_target_tokens ? (float)(total / m->n_target_tokens) : 0.0f;
    return m->loss;
}

// ---------------------------------------------------------------------------
// Backward: the forward's calls in reverse. Every layer works in place on
// the residual-stream gradient g (B, T, C): on entry the gradient of the
// layer's output, on exit that of its input.

static void zero_floats(float *x, long n) { memset(x, 0, (size_t)n * sizeof(float)); }

static void ffn_backward(float *dinp, const LayerParams *g, Activations *a, const float *dff2,
                         const float *inp, const float *ff1, const float *act, uint64_t act_seed,
                         const LayerParams *w, int N, const ModelConfig *c) {
    long NF = (long)N * c->d_ff;
    float pf = rate(a, c->dropout_ffn);
    zero_floats(a->dact, NF);
    linear_backward(a->dact, g->ff2_w, g->ff2_b, dff2, act, w->ff2_w, N, c->d_ff, c->d_model);
    if (c->activation == ACT_GELU) {
        dropout_backward_seeded(a->dact, NF, pf, act_seed);
        zero_floats(a->dff1, NF);
        gelu_backward(a->dff1, a->dact, ff1, NF);
    } else {
        relu_dropout_backward(a->dact, act, NF, pf);   // in place: dff1 is dact
    }
    linear_backward(dinp, g->ff1_w, g->ff1_b, a->dff1, inp, w->ff1_w, N, c->d_model, c->d_ff);
}

static void encoder_layer_backward(Model *m, int l, float *g, const float *x, int B, int S) {
    const ModelConfig *c = &m->config;
    Activations *a = m->acts;
    EncoderLayerActs *L = &a->enc[l];
    LayerParams w = enc_layer(&m->params, c, l), dw = enc_layer(&m->grads, c, l);
    int C = c->d_model, NH = c->n_heads, N = B * S;
    long n = (long)N * C;
    float pr = rate(a, c->dropout_residual), pa = rate(a, c->dropout_attn);
    float *t1 = a->dtmp1, *t2 = a->dtmp2;
    if (c->norm_first) {
        // res2 = res1 + drop(ff(ln2)); g = d res2
        memcpy(t1, g, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->ff2_seed);
        zero_floats(t2, n);
        ffn_backward(t2, &dw, a, t1, L->ln2, L->ff1, L->act, L->act_seed, &w, N, c);
        layernorm_backward(g, dw.ln2_w, dw.ln2_b, t2, L->res1, w.ln2_w, L->ln2_mean, L->ln2_rstd, N, C);
        // res1 = x + drop(self(ln1)); g = d res1
        memcpy(t1, g, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->self_seed);
        zero_floats(t2, n);
        self_attention_backward(t2, &dw.self, &a->mha, t1, &L->self, L->ln1, &w.self, B, S, C, NH, 0, pa);
        layernorm_backward(g, dw.ln1_w, dw.ln1_b, t2, x, w.ln1_w, L->ln1_mean, L->ln1_rstd, N, C);
    } else {
        // ln1 lives in a shared buffer: rebuild it from x + self.out
        layernorm_residual_recompute(L->ln1, x, L->self.out, w.ln1_w, w.ln1_b, L->ln1_mean, L->ln1_rstd, N, C);
        // ln2 = norm2(res2), res2 = ln1 + drop(ff(ln1)); g = d ln2
        zero_floats(t1, n);
        layernorm_residual_backward(t1, dw.ln2_w, dw.ln2_b, g, L->ln1, L->ff2, w.ln2_w, L->ln2_mean, L->ln2_rstd,
                                    N, C);
        memcpy(g, t1, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->ff2_seed);
        ffn_backward(g, &dw, a, t1, L->ln1, L->ff1, L->act, L->act_seed, &w, N, c);
        // ln1 = norm1(res1), res1 = x + drop(self(x)); g = d ln1
        zero_floats(t1, n);
        layernorm_residual_backward(t1, dw.ln1_w, dw.ln1_b, g, x, L->self.out, w.ln1_w, L->ln1_mean, L->ln1_rstd,
                                    N, C);
        memcpy(g, t1, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->self_seed);
        self_attention_backward(g, &dw.self, &a->mha, t1, &L->self, x, &w.self, B, S, C, NH, 0, pa);
    }
}

static void decoder_layer_backward(Model *m, int l, float *g, const float *x, int B, int T, int S) {
    const ModelConfig *c = &m->config;
    Activations *a = m->acts;
    DecoderLayerActs *L = &a->dec[l];
    LayerParams w = dec_layer(&m->params, c, l), dw = dec_layer(&m->grads, c, l);
    int C = c->d_model, NH = c->n_heads, N = B * T;
    long n = (long)N * C;
    float pr = rate(a, c->dropout_residual), pa = rate(a, c->dropout_attn);
    float *t1 = a->dtmp1, *t2 = a->dtmp2;
    if (c->norm_first) {
        // res3 = res2 + drop(ff(ln3)); g = d res3
        memcpy(t1, g, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->ff2_seed);
        zero_floats(t2, n);
        ffn_backward(t2, &dw, a, t1, L->ln3, L->ff1, L->act, L->act_seed, &w, N, c);
        layernorm_backward(g, dw.ln3_w, dw.ln3_b, t2, L->res2, w.ln3_w, L->ln3_mean, L->ln3_rstd, N, C);
        // res2 = res1 + drop(cross(ln2, memory)); g = d res2
        memcpy(t1, g, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->cross_seed);
        zero_floats(t2, n);
        cross_attention_backward(t2, a->dmemory, &dw.cross, &a->mha, t1, &L->cross, L->ln2, a->memory,
                                 &w.cross, B, T, S, C, NH, pa);
        layernorm_backward(g, dw.ln2_w, dw.ln2_b, t2, L->res1, w.ln2_w, L->ln2_mean, L->ln2_rstd, N, C);
        // res1 = x + drop(self(ln1)); g = d res1
        memcpy(t1, g, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->self_seed);
        zero_floats(t2, n);
        self_attention_backward(t2, &dw.self, &a->mha, t1, &L->self, L->ln1, &w.self, B, T, C, NH, 1, pa);
        layernorm_backward(g, dw.ln1_w, dw.ln1_b, t2, x, w.ln1_w, L->ln1_mean, L->ln1_rstd, N, C);
    } else {
        // ln1 and ln2 live in shared buffers: rebuild them
        layernorm_residual_recompute(L->ln1, x, L->self.out, w.ln1_w, w.ln1_b, L->ln1_mean, L->ln1_rstd, N, C);
        layernorm_residual_recompute(L->ln2, L->ln1, L->cross.out, w.ln2_w, w.ln2_b, L->ln2_mean, L->ln2_rstd, N, C);
        // ln3 = norm3(res3), res3 = ln2 + drop(ff(ln2)); g = d ln3
        zero_floats(t1, n);
        layernorm_residual_backward(t1, dw.ln3_w, dw.ln3_b, g, L->ln2, L->ff2, w.ln3_w, L->ln3_mean, L->ln3_rstd,
                                    N, C);
        memcpy(g, t1, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->ff2_seed);
        ffn_backward(g, &dw, a, t1, L->ln2, L->ff1, L->act, L->act_seed, &w, N, c);
        // ln2 = norm2(res2), res2 = ln1 + drop(cross(ln1, memory)); g = d ln2
        zero_floats(t1, n);
        layernorm_residual_backward(t1, dw.ln2_w, dw.ln2_b, g, L->ln1, L->cross.out, w.ln2_w, L->ln2_mean,
                                    L->ln2_rstd, N, C);
        memcpy(g, t1, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->cross_seed);
        cross_attention_backward(g, a->dmemory, &dw.cross, &a->mha, t1, &L->cross, L->ln1, a->memory,
                                 &w.cross, B, T, S, C, NH, pa);
        // ln1 = norm1(res1), res1 = x + drop(self(x)); g = d ln1
        zero_floats(t1, n);
        layernorm_residual_backward(t1, dw.ln1_w, dw.ln1_b, g, x, L->self.out, w.ln1_w, L->ln1_mean, L->ln1_rstd,
                                    N, C);
        memcpy(g, t1, n * sizeof(float));
        dropout_backward_seeded(t1, n, pr, L->self_seed);
        self_attention_backward(g, &dw.self, &a->mha, t1, &L->self, x, &w.self, B, T, C, NH, 1, pa);
    }
}

void model_backward(Model *m, const Batch *b) {
    const ModelConfig *c = &m->config;
    Activations *a = m->acts;
    if (!m->has_targets || m->n_target_tokens == 0) return;  // the loss does not depend on anything
    int B = a->B, S = a->S, T = a->T, C = c->d_model, Vt = c->tgt_vocab;
    long nT = (long)B * T * C, nS = (long)B * S * C;
    float *g = a->dstream;
    // logits -> generator -> decoder.norm (a training forward did the first
    // two: only its pending generator gradient is left to add)
    if (a->generator_done) {
        add_inplace(m->grads.gen_w, a->gen_dw, (long)Vt * C);
        add_inplace(m->grads.gen_b, a->gen_db, Vt);
    } else {
        crossentropy_backward_inplace(a->dlogits, a->lse, b->tgt_out, B * T, Vt, m->smoothing,
                                      1.0f / (float)m->n_target_tokens);
        zero_floats(a->dtmp1, nT);
        linear_backward(a->dtmp1, m->grads.gen_w, m->grads.gen_b, a->dlogits, a->dec_out, m->params.gen_w,
                        B * T, C, Vt);
    }
    zero_floats(g, nT);
    layernorm_backward(g, m->grads.dec_norm_w, m->grads.dec_norm_b, a->dtmp1, dec_layer_output(m, c->n_dec_layers - 1),
                       m->params.dec_norm_w, a->dec_out_mean, a->dec_out_rstd, B * T, C);
    // decoder stack, collecting the memory's gradient from every layer
    zero_floats(a->dmemory, nS);
    for (int l = c->n_dec_layers - 1; l >= 0; l--)
        decoder_layer_backward(m, l, g, l == 0 ? a->tgt_x : dec_layer_output(m, l - 1), B, T, S);
    dropout_backward_seeded(g, nT, rate(a, c->dropout_emb), a->tgt_x_seed);
    embedding_backward(m->grads.tgt_embed, g, b->tgt_in, B, T, C);
    // encoder.norm -> encoder stack -> source embedding
    zero_floats(g, nS);
    layernorm_backward(g, m->grads.enc_norm_w, m->grads.enc_norm_b, a->dmemory, enc_layer_output(m, c->n_enc_layers - 1),
                       m->params.enc_norm_w, a->memory_mean, a->memory_rstd, B * S, C);
    for (int l = c->n_enc_layers - 1; l >= 0; l--)
        encoder_layer_backward(m, l, g, l == 0 ? a->src_x : enc_layer_output(m, l - 1), B, S);
    dropout_backward_seeded(g, nS, rate(a, c->dropout_emb), a->src_x_seed);
    embedding_backward(m->grads.src_embed, g, b->src, B, S, C);
}
