// attn bench: attn's side of `make bench` (docs/speed.md). Trains and decodes
// a model of one of the fixed benchmark configs (DESIGN.md section 6) on
// random data and prints one JSON line:
//   train_tokens_per_s      target tokens per second of a full training step
//                           (forward, label-smoothed loss, backward, Adam),
//                           after warm-up; dropout 0.1 everywhere
//   model_gflop_per_step    the step's matrix work (see step_flops)
//   peak_rss_mb             peak resident memory (getrusage) after training
//   last_loss               the loss of the last step (the same batch every
//                           step, so it falls: compares precisions)
//   decode_sentences_per_s  greedy decoding with the key/value cache, 64
//                           sentences x 40 steps in one batch, no early stop
//   greedy_tokens_per_s     the same in generated tokens
//   beam_sentences_per_s    the same with beam search (--beam K; 0 skips)
// bench/torch_bench.py runs the same model, batch and decoding loops in
// PyTorch; bench/run.sh puts the two side by side.
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "cli.h"
#include "common.h"
#include "gemm.h"
#include "loss.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "threads.h"

#define DECODE_SENTENCES 64
#define DECODE_STEPS 40

// DESIGN.md section 6. "vocab shared": one vocabulary and one embedding
// table for source and target; the generator keeps its own weight.
typedef struct {
    const char *name;
    int d_model, n_heads, d_ff, layers, vocab;
    int batch, src_len, tgt_len;
    int shared;
    int steps;            // timed training steps by default
} BenchPreset;

static const BenchPreset presets[] = {
    {"tiny", 128, 4, 512, 2, 64, 128, 12, 10, 0, 20},
    {"small", 256, 4, 1024, 3, 8000, 64, 40, 40, 1, 5},
    {"base", 512, 8, 2048, 6, 16000, 64, 40, 40, 1, 3},
};

typedef struct {
    const BenchPreset *preset;
    int threads, steps, warmup, train, decode, beam;
    int gemm_path;
} BenchOptions;


static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;  // Linux reports kilobytes
}

// Matrix work of one training step: 2 flops per multiply-add of every
// linear layer and attention product, forward, times 3 for forward +
// backward (dx and dW). The same count serves attn and PyTorch.
static double step_flops(const BenchPreset *p) {
    double C = p->d_model, F = p->d_ff, V = p->vocab, S = p->src_len, T = p->tgt_len;
    double enc_token = 4 * C * C + 2 * C * F + 2 * S * C;            // qkv, out, ffn; QK^T and PV
    double dec_token = 6 * C * C + 2 * C * F + 2 * T * C + 2 * S * C;  // self 4C^2, cross q/out 2C^2
    double macs = p->batch * (S * p->layers * (enc_token + 2 * C * C)  // + cross k/v of the memory
                              + T * p->layers * dec_token + T * C * V);
    return 2.0 * macs * 3.0;
}

static void bench_config(const BenchPreset *p, ModelConfig *cfg) {
    model_config_default(cfg);
    cfg->src_vocab = cfg->tgt_vocab = p->vocab;
    cfg->d_model = p->d_model;
    cfg->n_heads = p->n_heads;
    cfg->d_ff = p->d_ff;
    cfg->n_enc_layers = cfg->n_dec_layers = p->layers;
    cfg->share_embeddings = p->shared;
    cfg->max_len = 128;
    cfg->dropout_emb = cfg->dropout_residual = cfg->dropout_attn = cfg->dropout_ffn = 0.1f;
}

// Random full-length sentences of ordinary tokens (ids 4 .. V-1).
static void random_tokens(int *ids, long n, int vocab, Rng *rng) {
    for (long i = 0; i < n; i++) ids[i] = 4 + (int)rng_below(rng, (uint32_t)(vocab - 4));
}

// ---------------------------------------------------------------------------
// Training

static int bench_train(Model *m, const BenchOptions *o, double *tokens_per_s, double *step_s, float *last_loss) {
    const BenchPreset *p = o->preset;
    int B = p->batch, S = p->src_len, T = p->tgt_len;
    Rng rng;
    rng_seed(&rng, 1);
    int *src = malloc_check(sizeof(int) * B * S), *tgt = malloc_check(sizeof(int) * B * (T + 1));
    int *tgt_in = malloc_check(sizeof(int) * B * T), *tgt_out = malloc_check(sizeof(int) * B * T);
    random_tokens(src, (long)B * S, p->vocab, &rng);
    random_tokens(tgt, (long)B * (T + 1), p->vocab, &rng);
    for (int b = 0; b < B; b++) {
        tgt[b * (T + 1)] = BOS_ID;
        memcpy(tgt_in + b * T, tgt + b * (T + 1), sizeof(int) * T);
        memcpy(tgt_out + b * T, tgt + b * (T + 1) + 1, sizeof(int) * T);
    }
    Batch batch = {B, S, T, src, tgt_in, tgt_out};
    Optimizer opt;
    optimizer_init(&opt, OPT_ADAM, m->n_params, 0.9f, 0.98f, 1e-9f, 0.0f);
    int rc = 0;
    double t0 = 0;
    for (int step = 0; step < o->warmup + o->steps; step++) {
        if (step == o->warmup) t0 = monotonic_seconds();
        model_zero_grad(m);
        float loss = model_forward(m, &batch, 0.1f, 1, &rng);
        if (!isfinite(loss)) { rc = attn_error("bench: training loss is %g at step %d", loss, step); break; }
        *last_loss = loss;
        model_backward(m, &batch);
        optimizer_step(&opt, m->param_memory, m->grad_memory, 1e-4f);
    }
    double dt = monotonic_seconds() - t0;
    *tokens_per_s = (double)B * T * o->steps / dt;
    *step_s = dt / o->steps;
    optimizer_free(&opt);
    free(src); free(tgt); free(tgt_in); free(tgt_out);
    return rc;
}

// ---------------------------------------------------------------------------
// Decoding: the same loops as bench/torch_bench.py, on the cached decoder of
// model.h. Every hypothesis runs the full DECODE_STEPS (no early stop), so
// both sides do the same work whatever the random model emits.

// The first index of the largest value. The maximum runs in 16 independent
// lanes (a loop the compiler vectorizes), then one pass finds its index:
// with a vocabulary of 16000 a plain compare-and-branch loop would cost as
// much as the generator's matrix multiply.
static int argmax(const float *x, int n) {
    float lane_max[16];
    int i = 0;
    for (int j = 0; j < 16; j++) lane_max[j] = -FLT_MAX;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lane_max[j] = x[i + j] > lane_max[j] ? x[i + j] : lane_max[j];
    float mx = -FLT_MAX;
    for (int j = 0; j < 16; j++) mx = lane_max[j] > mx ? lane_max[j] : mx;
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (i = 0; i < n; i++)
        if (x[i] == mx) return i;
    return 0;  // all NaN
}

// logits (V) -> log-probabilities in place, the exponentials summed as the
// translator sums them.
static void log_softmax(float *x, int n) {
    float mx = x[argmax(x, n)];
    float lse = mx + (float)log(sum_exp_shifted(NULL, x, n, mx));
    for (int i = 0; i < n; i++) x[i] -= lse;
}

// The per-row loops of the decoding timings, on the pool.
typedef struct {
    float *logits;        // (rows, V)
    int V, K;
    int *tokens, *from;
    const double *score;
    double *next_score;
} RowsTask;

static void argmax_rows(void *arg, long b0, long b1) {
    const RowsTask *t = arg;
    for (long b = b0; b < b1; b++) t->tokens[b] = argmax(t->logits + b * t->V, t->V);
}

static void log_softmax_rows(void *arg, long i0, long i1) {
    const RowsTask *t = arg;
    for (long i = i0; i < i1; i++) log_softmax(t->logits + i * t->V, t->V);
}

// The K best (parent, token) pairs of each sentence, by insertion.
static void beam_select_sentences(void *arg, long b0, long b1) {
    const RowsTask *t = arg;
    int K = t->K, V = t->V;
    for (long b = b0; b < b1; b++) {
        double best[16];
        int best_parent[16], best_token[16], kept = 0;
        for (int h = (int)b * K; h < (int)(b + 1) * K; h++) {
            const float *lp = t->logits + (long)h * V;
            for (int v = 0; v < V; v++) {
                double s = t->score[h] + lp[v];
                if (kept == K && s <= best[K - 1]) continue;
                int at = kept < K ? kept++ : K - 1;
                while (at > 0 && best[at - 1] < s) {
                    best[at] = best[at - 1]; best_parent[at] = best_parent[at - 1]; best_token[at] = best_token[at - 1];
                    at--;
                }
                best[at] = s; best_parent[at] = h; best_token[at] = v;
            }
        }
        for (int j = 0; j < K; j++) {
            t->from[b * K + j] = best_parent[j];
            t->tokens[b * K + j] = best_token[j];
            t->next_score[b * K + j] = best[j];
        }
    }
}

static int encode_sources(Model *m, const BenchPreset *p, int **src_out) {
    Rng rng;
    rng_seed(&rng, 2);
    int *src = malloc_check(sizeof(int) * DECODE_SENTENCES * p->src_len);
    random_tokens(src, (long)DECODE_SENTENCES * p->src_len, p->vocab, &rng);
    *src_out = src;
    return model_encode(m, src, DECODE_SENTENCES, p->src_len);
}

static int bench_greedy(Model *m, const BenchPreset *p, double *seconds) {
    int B = DECODE_SENTENCES, V = p->vocab, *src = NULL;
    DecodeState st;
    if (decode_state_create(&st, m, B, p->src_len, DECODE_STEPS) != 0) return -1;
    int tokens[DECODE_SENTENCES], rc = 0;
    double t0 = monotonic_seconds();
    if (encode_sources(m, p, &src) != 0 || decode_begin(m, &st, m->acts->memory, m->acts->src_pad, B, p->src_len) != 0)
        rc = -1;
    for (int b = 0; b < B; b++) tokens[b] = BOS_ID;
    for (int pos = 0; rc == 0 && pos < DECODE_STEPS; pos++) {
        if (decode_step(m, &st, tokens, pos) != 0) { rc = -1; break; }
        RowsTask t = {.logits = st.logits, .V = V, .tokens = tokens};
        threads_for(B, 1, argmax_rows, &t);
    }
    *seconds = monotonic_seconds() - t0;
    free(src);
    decode_state_free(&st);
    return rc;
}

// Beam search with K hypotheses per sentence, scored by summed
// log-probability; caches are reordered by decode_reorder every step.
static int bench_beam(Model *m, const BenchPreset *p, int K, double *seconds) {
    int B = DECODE_SENTENCES, V = p->vocab, S = p->src_len, C = p->d_model, N = B * K, *src = NULL;
    DecodeState st;
    if (decode_state_create(&st, m, N, S, DECODE_STEPS) != 0) return -1;
    float *memory = malloc_check(sizeof(float) * N * S * C);
    uint8_t *pad = malloc_check((size_t)N * S);
    int *tokens = malloc_check(sizeof(int) * N), *from = malloc_check(sizeof(int) * N);
    double *score = malloc_check(sizeof(double) * N), *next_score = malloc_check(sizeof(double) * N);
    int rc = 0;
    double t0 = monotonic_seconds();
    if (encode_sources(m, p, &src) != 0) rc = -1;
    for (int i = 0; rc == 0 && i < N; i++) {  // hypothesis i belongs to sentence i / K
        memcpy(memory + (long)i * S * C, m->acts->memory + (long)(i / K) * S * C, sizeof(float) * S * C);
        memcpy(pad + (long)i * S, m->acts->src_pad + (long)(i / K) * S, (size_t)S);
    }
    if (rc == 0 && decode_begin(m, &st, memory, pad, N, S) != 0) rc = -1;
    for (int i = 0; i < N; i++) { tokens[i] = BOS_ID; score[i] = i % K == 0 ? 0.0 : -1e30; }
    for (int pos = 0; rc == 0 && pos < DECODE_STEPS; pos++) {
        if (decode_step(m, &st, tokens, pos) != 0) { rc = -1; break; }
        RowsTask t = {.logits = st.logits, .V = V, .tokens = tokens, .K = K, .from = from, .score = score,
                      .next_score = next_score};
        threads_for(N, 1, log_softmax_rows, &t);
        threads_for(B, 1, beam_select_sentences, &t);
        memcpy(score, next_score, sizeof(double) * N);
        decode_reorder(&st, m, from, pos + 1);
    }
    *seconds = monotonic_seconds() - t0;
    free(src); free(memory); free(pad); free(tokens); free(from); free(score); free(next_score);
    decode_state_free(&st);
    return rc;
}

// ---------------------------------------------------------------------------
// Command line

static void bench_usage(FILE *out) {
    fprintf(out,
            "usage: attn bench --preset tiny|small|base [flags]\n"
            "  trains and decodes a benchmark model on random data; prints one JSON line\n"
            "  --preset NAME     tiny, small or base (DESIGN.md section 6)\n"
            "  --threads N       threads (default: the machine's cores)\n"
            "  --steps N         timed training steps (default: tiny 20, small 5, base 3)\n"
            "  --warmup N        untimed training steps first (default 2)\n"
            "  --beam K          beam size of the beam-search timing (default 4; 0 skips it)\n"
            "  --no-decode       training only\n"
            "  --no-train        decoding only (to profile it)\n"
            "  --gemm PATH       matrix-multiply path: auto, avx512, avx2, bf16 (inputs rounded to\n"
            "                    bfloat16, float32 sums), reference (default auto)\n");
}

static int parse_bench_flags(int argc, char **argv, BenchOptions *o) {
    memset(o, 0, sizeof *o);
    o->threads = threads_machine_cores();
    o->warmup = 2;
    o->train = 1;
    o->decode = 1;
    o->beam = 4;
    o->gemm_path = GEMM_PATH_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        long n;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { bench_usage(stdout); return 1; }
        if (!strcmp(f, "--no-decode")) { o->decode = 0; continue; }
        if (!strcmp(f, "--no-train")) { o->train = 0; continue; }
        static const char *const valued[] = {"--preset", "--threads", "--steps", "--warmup", "--beam", "--gemm"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(f, valued[k]);
        if (!known) return attn_error("bench: unknown flag '%s' (try attn bench --help)", f);
        if (flag_value(argc, argv, &i, &v) != 0) return -1;
        if (!strcmp(f, "--preset")) {
            for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++)
                if (!strcmp(v, presets[k].name)) o->preset = &presets[k];
            if (!o->preset) return attn_error("bad value for --preset: '%s' (use tiny, small or base)", v);
        } else if (!strcmp(f, "--threads")) {
            if (parse_int_flag(f, v, 1, 1024, &n)) return -1;
            o->threads = (int)n;
        } else if (!strcmp(f, "--steps")) {
            if (parse_int_flag(f, v, 1, 100000, &n)) return -1;
            o->steps = (int)n;
        } else if (!strcmp(f, "--warmup")) {
            if (parse_int_flag(f, v, 0, 100000, &n)) return -1;
            o->warmup = (int)n;
        } else if (!strcmp(f, "--beam")) {
            if (parse_int_flag(f, v, 0, 16, &n)) return -1;
            o->beam = (int)n;
        } else if (!strcmp(f, "--gemm")) {
            int path = !strcmp(v, "auto") ? GEMM_PATH_AUTO : !strcmp(v, "avx512") ? GEMM_PATH_AVX512
                     : !strcmp(v, "avx2") ? GEMM_PATH_AVX2 : !strcmp(v, "bf16") ? GEMM_PATH_AVX512_BF16
                     : !strcmp(v, "reference") ? GEMM_PATH_REFERENCE : -1;
            if (path < 0) return attn_error("bad value for --gemm: '%s' (use auto, avx512, avx2, bf16 or reference)", v);
            o->gemm_path = path;
        }
    }
    if (!o->preset) return attn_error("bench: --preset is required (tiny, small or base)");
    if (!o->steps) o->steps = o->preset->steps;
    return 0;
}

int cmd_bench(int argc, char **argv) {
    BenchOptions o;
    int parsed = parse_bench_flags(argc, argv, &o);
    if (parsed != 0) return parsed > 0 ? 0 : -1;
    if (threads_set(o.threads) != 0) return -1;
    threads_start();
    if (gemm_set_path(o.gemm_path) != 0)
        return attn_error("bench: gemm path %s is not available on this CPU", gemm_path_name(o.gemm_path));
    const BenchPreset *p = o.preset;
    ModelConfig cfg;
    bench_config(p, &cfg);
    Model m;
    // Activations for the training batch and for encoding the decoding batch;
    // the decoders keep their own caches (DecodeState).
    int max_B = p->batch > DECODE_SENTENCES ? p->batch : DECODE_SENTENCES;
    if (model_create(&m, &cfg, max_B, p->src_len, p->tgt_len) != 0) return -1;
    model_init_weights(&m, 1);
    printf("{\"impl\": \"attn\", \"preset\": \"%s\", \"threads\": %d, \"gemm\": \"%s\"",
           p->name, threads_get(), gemm_path_name(gemm_get_path()));
    if (o.train) {
        double tokens_per_s, step_s;
        float last_loss = 0.0f;
        if (bench_train(&m, &o, &tokens_per_s, &step_s, &last_loss) != 0) { printf("}\n"); model_free(&m); return -1; }
        printf(", \"train_tokens_per_s\": %.1f, \"train_step_s\": %.4f, \"model_gflop_per_step\": %.2f, "
               "\"peak_rss_mb\": %.1f, \"last_loss\": %.5f",
               tokens_per_s, step_s, step_flops(p) * 1e-9, peak_rss_mb(), last_loss);
    }
    int rc = 0;
    if (o.decode) {
        double greedy_s, beam_s;
        if (bench_greedy(&m, p, &greedy_s) != 0) rc = -1;
        else {
            printf(", \"decode_sentences_per_s\": %.1f, \"greedy_tokens_per_s\": %.1f",
                   DECODE_SENTENCES / greedy_s, DECODE_SENTENCES * DECODE_STEPS / greedy_s);
            if (o.beam > 0) {
                if (bench_beam(&m, p, o.beam, &beam_s) != 0) rc = -1;
                else printf(", \"beam_size\": %d, \"beam_sentences_per_s\": %.1f", o.beam, DECODE_SENTENCES / beam_s);
            }
        }
    }
    printf("}\n");
    model_free(&m);
    return rc;
}
