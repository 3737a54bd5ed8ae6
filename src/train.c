// The training loop. Reads top to bottom: the trainer struct and its output
// helpers, data, tokenizers, diagnostics, the model and optimizer, one
// update, validation (teacher-forced, then decoded), checkpoints, progress
// output, and the run: setup, the loop, and train_run that ties them together.
#include "train.h"
#include "batch.h"
#include "checkpoint.h"
#include "common.h"
#include "copytask.h"
#include "data.h"
#include "decode.h"
#include "diagnostics.h"
#include "gemm.h"
#include "json.h"
#include "model.h"
#include "optim.h"
#include "schedule.h"
#include "threads.h"
#include "tokenizer.h"
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// The trainer

typedef struct {
    double loss, ppl, acc, exact;   // acc and exact in percent
    long tokens, sentences;
    double bleu, chrf, wer, per;    // decoded (decode_metric), 0..100
    long decoded;                   // sources decoded (0: no decoding this time)
} ValidResult;

// The validation set grouped by source: a source with several targets
// (G2P alternates) is decoded once and scored against all of them.
typedef struct {
    int n;                          // distinct decodable sources
    int *pair;                      // (n) a validation pair holding the source
    int *ref_start;                 // (n+1) its targets are refs[ref_start[g] .. ref_start[g+1])
    int *refs;                      // validation pair indices
} SourceGroups;

typedef struct {
    TrainConfig cfg;
    const TrainOptions *opts;
    const char *run_dir;
    char *config_text;              // the effective config, saved in every checkpoint
    ParallelText train_text, valid_text;
    Tokenizer *src_tok, *tgt_tok;
    TokenPairs train_pairs, valid_pairs;
    Batcher train_batches, valid_batches;
    Model model;
    Optimizer opt;
    Schedule sched;
    float *ema;                     // (n_params) or NULL
    Batch batch;
    SourceGroups groups;            // for decode_metric
    Translator *translator;         // made at the first decoded validation
    TrainState state;               // step, RNG, cursor, best metric, ...
    FILE *metrics;                  // RUN_DIR/metrics.jsonl
    double session_start;           // monotonic seconds when this session started training
    // the current log interval
    double interval_start;
    double interval_loss_sum;       // token-weighted
    long interval_tokens, interval_steps;
    double last_grad_norm, last_lr;
    long last_valid_step, last_save_step;
    double last_live;               // when the live line was last drawn
    int progress_shown;             // a live line is on the terminal
    // diagnostics (src/diagnostics.h)
    Diag diag;
    TensorView *views;              // (2 * tensors) parameter views, then gradient views
    StrBuf diag_line;               // reused for the statistics records
    double train_loss_avg;          // moving average of the step loss (overfitting signal)
    int diag_failed;                // a detector said stop; attn_error holds why
    int step_skipped;               // the last step's update was skipped (its loss means nothing)
    int data_failed;                // encoding an epoch (BPE-dropout) failed; attn_error holds why
    // --overfit-batch: the loss at steps 1, 2, 4, 8, ... and the last one
    float overfit_curve[40];
    long overfit_steps[40];
    int overfit_points;
    float overfit_last;
} Trainer;

static volatile sig_atomic_t stop_signal = 0;

static void on_signal(int sig) { stop_signal = sig; }

static const char *path_in(const Trainer *t, const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", t->run_dir, name);
    return buf;
}

// A log line on stderr (clearing a live progress line first).
static void say(Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(Trainer *t, const char *fmt, ...) {
    if (t->opts->quiet) return;
    if (t->progress_shown) { fputs("\r\033[K", stderr); t->progress_shown = 0; }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

// A record (one JSON object) on its own line of RUN_DIR/metrics.jsonl.
static void write_record(Trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void write_record(Trainer *t, const char *fmt, ...) {
    if (!t->metrics) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(t->metrics, fmt, ap);
    va_end(ap);
    fputc('\n', t->metrics);
}

// Prefixes the recorded error with what was being done.
static int fail(const char *what) { return attn_error("%s: %s", what, attn_last_error()); }

// ----------------------------------------------------------------------------
// Data

// Bytes of memory on this machine (0 when unknown), for refusing sizes that
// could never fit with a message rather than by malloc_check's abort.
static double physical_memory(void) {
    double bytes = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    return bytes > 0 ? bytes : 0;
}

static int load_copy_task(Trainer *t) {
    const TrainConfig *c = &t->cfg;
    // Each pair: two strings of up to copy_max_len bytes, their pointers,
    // line numbers and allocator overhead (a lower bound).
    double need = ((double)c->copy_train_size + c->copy_valid_size) * (2.0 * (c->copy_max_len + 1) + 48.0);
    if (physical_memory() > 0 && need > physical_memory())
        return attn_error("copy task: %d + %d strings of up to %d symbols need at least %.1f GB, more than this "
                          "machine's %.1f GB: lower copy_train_size or copy_max_len", c->copy_train_size,
                          c->copy_valid_size, c->copy_max_len, need / 1e9, physical_memory() / 1e9);
    CopyTaskConfig cc = {
        .reverse = strcmp(c->task, "reverse") == 0, .n_symbols = c->copy_symbols,
        .min_len = c->copy_min_len, .max_len = c->copy_max_len,
        .n_train = c->copy_train_size, .n_valid = c->copy_valid_size, .seed = c->seed,
    };
    return copytask_generate(&cc, &t->train_text, &t->valid_text);
}

static void clean_config(const TrainConfig *c, CleanConfig *cc) {
    clean_config_default(cc);
    cc->max_tokens = c->clean_max_tokens;
    cc->max_ratio = c->clean_max_ratio;
    cc->dedup = c->dedup;
    cc->lowercase = c->lowercase;
}

static void report_cleaning(Trainer *t, const char *path, const CleanStats *st) {
    char dropped[512] = "";
    size_t len = 0;
    for (int r = 0; r < CLEAN_N_RULES; r++) {
        if (st->dropped[r] == 0) continue;
        len += (size_t)snprintf(dropped + len, sizeof dropped - len, "%s%s %ld", len ? ", " : "",
                                clean_rule_names[r], st->dropped[r]);
        if (len >= sizeof dropped) break;
    }
    say(t, "data: %s: %ld pairs, %ld kept%s%s%s", path, st->n_in, st->n_kept,
        len ? " (dropped: " : "", dropped, len ? ")" : "");
}

static void copy_pairs(ParallelText *to, const ParallelText *from, const int *idx, int n) {
    for (int i = 0; i < n; i++) parallel_append(to, from->src[idx[i]], from->tgt[idx[i]], from->line[idx[i]]);
}

static int load_tsv(Trainer *t) {
    const TrainConfig *c = &t->cfg;
    CleanConfig cc;
    CleanStats st;
    clean_config(c, &cc);
    ParallelText all;
    memset(&all, 0, sizeof all);
    if (parallel_read_tsv(&all, c->train) != 0) return -1;
    parallel_clean(&all, &cc, &st);
    report_cleaning(t, c->train, &st);
    if (c->valid[0]) {
        t->train_text = all;  // the struct moves; nothing to free
        if (parallel_read_tsv(&t->valid_text, c->valid) != 0) return -1;
        cc.dedup = 0;  // a validation set may repeat a pair; every line counts
        parallel_clean(&t->valid_text, &cc, &st);
        report_cleaning(t, c->valid, &st);
        return 0;
    }
    int *order = malloc_check(sizeof(int) * (size_t)(all.n > 0 ? all.n : 1));
    int n_valid, n_test;
    int rc = split_indices(all.n, c->valid_size, 0, c->seed, order, &n_valid, &n_test);
    if (rc == 0) {
        copy_pairs(&t->valid_text, &all, order, n_valid);
        copy_pairs(&t->train_text, &all, order + n_valid, all.n - n_valid);
        say(t, "data: held out %d of %d pairs for validation (valid_size %g, seed %llu)", n_valid, all.n,
            c->valid_size, (unsigned long long)c->seed);
    }
    free(order);
    parallel_free(&all);
    return rc;
}

static int load_data(Trainer *t) {
    int rc = strcmp(t->cfg.task, "tsv") == 0 ? load_tsv(t) : load_copy_task(t);
    if (rc != 0) return -1;
    if (t->train_text.n == 0) return attn_error("no training pairs left after cleaning");
    if (t->valid_text.n == 0) return attn_error("no validation pairs (set valid = FILE or valid_size > 0)");
    return 0;
}

// ----------------------------------------------------------------------------
// Tokenizers: restored from a checkpoint, loaded from files, or learned

static int learn_tokenizer(Trainer *t, const char *type_name, int vocab_size, int joint, int target_side,
                           Tokenizer **out) {
    TokenizerType type;
    if (tokenizer_type_from_name(type_name, &type) != 0) return attn_error("unknown tokenizer type '%s'", type_name);
    TokenizerOptions opts;
    tokenizer_options_default(&opts, type);
    if (vocab_size > 0) opts.vocab_size = vocab_size;
    opts.min_frequency = t->cfg.tokenizer_min_frequency;
    const ParallelText *pt = &t->train_text;
    long n = joint ? 2L * pt->n : pt->n;
    const char **lines = malloc_check(sizeof(char *) * (size_t)n);
    for (int i = 0; i < pt->n; i++) {
        if (joint) { lines[2 * i] = pt->src[i]; lines[2 * i + 1] = pt->tgt[i]; }
        else lines[i] = target_side ? pt->tgt[i] : pt->src[i];
    }
    int rc = tokenizer_learn(out, type, lines, n, &opts);
    free(lines);
    return rc;
}

static int make_tokenizers(Trainer *t) {
    const TrainConfig *c = &t->cfg;
    if (c->src_tokenizer_file[0] && tokenizer_load(c->src_tokenizer_file, &t->src_tok) != 0) return -1;
    if (c->tgt_tokenizer_file[0] && tokenizer_load(c->tgt_tokenizer_file, &t->tgt_tok) != 0) return -1;
    if (c->joint_vocab && !t->src_tok && !t->tgt_tok) {
        if (learn_tokenizer(t, c->src_tokenizer, c->src_vocab_size, 1, 0, &t->src_tok) != 0) return fail("learning the joint tokenizer");
        char *text;
        tokenizer_to_string(t->src_tok, &text);  // the target side gets its own copy
        int rc = tokenizer_from_string(text, &t->tgt_tok);
        free(text);
        if (rc != 0) return -1;
    }
    if (!t->src_tok && learn_tokenizer(t, c->src_tokenizer, c->src_vocab_size, 0, 0, &t->src_tok) != 0)
        return fail("learning the source tokenizer");
    if (!t->tgt_tok && learn_tokenizer(t, c->tgt_tokenizer, c->tgt_vocab_size, 0, 1, &t->tgt_tok) != 0)
        return fail("learning the target tokenizer");
    return 0;
}

// BPE-dropout (bpe_dropout > 0) applies to BPE sides only.
static int encode_side(const Tokenizer *tok, const char *text, int *ids, int cap, float dropout, Rng *rng,
                       const char *what, int line) {
    if (tokenizer_type(tok) != TOKENIZER_BPE) dropout = 0.0f;
    int n = tokenizer_encode(tok, text, ids, cap, dropout, dropout > 0.0f ? rng : NULL);
    if (n < 0) return attn_error("encoding the %s of line %d: %s", what, line, attn_last_error());
    return n;
}

// Encodes every pair of pt into tp (cleared first). With dropout > 0 the
// merges are dropped as drawn from rng.
static int encode_pairs_with(Trainer *t, const ParallelText *pt, TokenPairs *tp, float dropout, Rng *rng) {
    size_t longest = 1;
    for (int i = 0; i < pt->n; i++) {
        size_t a = strlen(pt->src[i]), b = strlen(pt->tgt[i]);
        if (a > longest) longest = a;
        if (b > longest) longest = b;
    }
    int cap = (int)longest + 1;
    int *src = malloc_check(sizeof(int) * (size_t)cap), *tgt = malloc_check(sizeof(int) * (size_t)cap);
    token_pairs_clear(tp);
    int rc = 0;
    for (int i = 0; i < pt->n && rc == 0; i++) {
        int ns = encode_side(t->src_tok, pt->src[i], src, cap, dropout, rng, "source", pt->line[i]);
        int nt = ns < 0 ? -1 : encode_side(t->tgt_tok, pt->tgt[i], tgt, cap, dropout, rng, "target", pt->line[i]);
        if (ns < 0 || nt < 0) rc = -1;
        else token_pairs_add(tp, src, ns, tgt, nt);
    }
    free(src);
    free(tgt);
    return rc;
}

static int encode_pairs(Trainer *t, const ParallelText *pt, TokenPairs *tp) {
    token_pairs_init(tp);
    return encode_pairs_with(t, pt, tp, 0.0f, NULL);
}

// BPE-dropout: the training pairs are encoded afresh for each epoch, with
// merges dropped as drawn from (seed, epoch), and the batcher is rebuilt on
// them with its cursor at (epoch, position). A resumed run re-encodes the
// same way, so it sees the very same segmentations. Lengths only grow under
// dropout, so the batch capacity of the plain encoding (with S, T up to
// max_len) holds every epoch's batches.
static int encode_train_epoch(Trainer *t, BatchCursor cursor) {
    Rng rng;
    rng_seed(&rng, t->cfg.seed ^ 0x6270652d64726f70ULL ^ ((uint64_t)cursor.epoch * 0x9e3779b97f4a7c15ULL));
    if (encode_pairs_with(t, &t->train_text, &t->train_pairs, (float)t->cfg.bpe_dropout, &rng) != 0)
        return fail("BPE-dropout encoding");
    BatchConfig bc = t->train_batches.cfg;
    batcher_free(&t->train_batches);
    if (batcher_create(&t->train_batches, &t->train_pairs, &bc) != 0) return fail("training batches");
    if (batcher_seek(&t->train_batches, cursor) != 0) return fail("training batches");
    return 0;
}

// The next training batch; with BPE-dropout a new epoch is encoded first.
static int next_train_batch(Trainer *t) {
    if (t->cfg.bpe_dropout > 0 && t->train_batches.cursor.position >= batcher_epoch_batches(&t->train_batches)) {
        BatchCursor next = {t->train_batches.cursor.epoch + 1, 0};
        if (encode_train_epoch(t, next) != 0) return -1;
    }
    batcher_next(&t->train_batches, &t->batch);
    return 0;
}

static int make_batchers(Trainer *t) {
    const TrainConfig *c = &t->cfg;
    BatchConfig bc;
    batch_config_default(&bc);
    bc.max_tokens = c->batch_tokens;
    bc.max_sentences = c->batch_sentences;
    bc.max_len = c->max_len;
    bc.truncate = 0;
    bc.shuffle = 1;
    bc.seed = c->seed;
    if (batcher_create(&t->train_batches, &t->train_pairs, &bc) != 0) return fail("training batches");
    bc.shuffle = 0;
    if (batcher_create(&t->valid_batches, &t->valid_pairs, &bc) != 0) return fail("validation batches");
    if (t->train_batches.n_dropped || t->valid_batches.n_dropped)
        say(t, "data: %d training and %d validation pairs are over max_len %d tokens and left out",
            t->train_batches.n_dropped, t->valid_batches.n_dropped, c->max_len);
    say(t, "data: %d training pairs (%d batches an epoch), %d validation pairs (%d batches)",
        t->train_batches.n_kept, batcher_epoch_batches(&t->train_batches), t->valid_batches.n_kept,
        batcher_epoch_batches(&t->valid_batches));
    return 0;
}

// ----------------------------------------------------------------------------
// Diagnostics (src/diagnostics.h, docs/debugging.md). The detectors run
// after every backward and before the update, so a stopped run leaves its
// last checkpoint as it was and a skipped step leaves the weights untouched.

static int init_diagnostics(Trainer *t) {
    const TrainConfig *c = &t->cfg;
    DiagConfig dc;
    diag_config_default(&dc);
    if (diag_action_parse(c->nan_action, &dc.nan_action) != 0 || diag_action_parse(c->spike_action, &dc.spike_action) != 0)
        return -1;
    dc.spike_zscore = c->spike_zscore;
    dc.stats_every = c->stats_every > 1000000000L ? 1000000000 : (int)c->stats_every;
    int n = model_tensors(&t->model, 0, NULL, 0);
    t->views = malloc_check(sizeof(TensorView) * 2 * (size_t)n);
    model_tensors(&t->model, 0, t->views, n);
    model_tensors(&t->model, 1, t->views + n, n);
    return diag_init(&t->diag, &dc, t->views, t->views + n, n);
}

static void reset_line(StrBuf *sb) {
    sb->len = 0;
    if (sb->data) sb->data[0] = '\0';
}

// A detector fired: a "diag" record in metrics.jsonl and a log line.
static void diag_report(Trainer *t, long step, DiagAction action, const char *message) {
    reset_line(&t->diag_line);
    sb_printf(&t->diag_line, "{\"type\":\"diag\",\"step\":%ld,\"action\":\"%s\",\"message\":", step,
              diag_action_name(action));
    json_append_string(&t->diag_line, message);
    sb_puts(&t->diag_line, "}");
    write_record(t, "%s", t->diag_line.data);
    say(t, "%s: %s", diag_action_name(action), message);
}

// After backward, before the update: NaN/Inf (the batch is saved as
// nan_batch.json), loss spikes, gradient explosion, vanishing gradients.
static DiagAction check_update(Trainer *t, float loss) {
    long step = t->state.step + 1;
    DiagResult r;
    DiagAction action = diag_check_step(&t->diag, step, loss, &r);
    if (isfinite(loss)) t->train_loss_avg = t->train_loss_avg > 0 ? 0.98 * t->train_loss_avg + 0.02 * loss : loss;
    if (action == DIAG_OK) return action;
    diag_report(t, step, action, r.message);
    char path[4096] = "";
    if ((r.bad_tensor >= 0 || !isfinite(loss)) && diag_save_batch(path_in(t, "nan_batch.json", path, sizeof path), &t->batch) == 0)
        say(t, "the batch of step %ld is saved in %s", step, path);
    if (action == DIAG_STOP) {
        t->diag_failed = 1;
        attn_error("step %ld: %s; the last checkpoint is intact; lower lr or raise warmup_steps (or nan_action = skip)%s%s",
                   step, r.message, path[0] ? "; the batch is in " : "", path);
    }
    return action;
}

// Per-layer statistics, after the update (stats_every steps).
static void write_stats(Trainer *t) {
    reset_line(&t->diag_line);
    diag_layer_stats_json(&t->diag, t->state.step, &t->diag_line);
    write_record(t, "%s", t->diag_line.data);
    reset_line(&t->diag_line);
    diag_model_activations_json(&t->model, t->state.step, &t->diag_line);
    write_record(t, "%s", t->diag_line.data);
}

// After a validation: valid loss rising while train loss falls.
static void observe_eval(Trainer *t, double valid_loss) {
    DiagResult r;
    if (diag_observe_eval(&t->diag, t->state.step, t->train_loss_avg, valid_loss, &r) != DIAG_OK)
        diag_report(t, t->state.step, r.action, r.message);
}

// --overfit-batch: keeps the curve; 1 once the loss is below overfit_loss.
static int overfit_track(Trainer *t, float loss) {
    long s = t->state.step;
    if ((s & (s - 1)) == 0 && t->overfit_points < 40) {
        t->overfit_curve[t->overfit_points] = loss;
        t->overfit_steps[t->overfit_points++] = s;
    }
    t->overfit_last = loss;
    return loss < t->cfg.overfit_loss;
}

static int overfit_verdict(Trainer *t) {
    char curve[1024];
    size_t len = 0;
    for (int i = 0; i < t->overfit_points && len < sizeof curve - 64; i++)
        len += (size_t)snprintf(curve + len, sizeof curve - len, "%s%ld: %.4g", i ? ", " : "", t->overfit_steps[i],
                                t->overfit_curve[i]);
    if (t->overfit_points && t->overfit_steps[t->overfit_points - 1] != t->state.step)
        snprintf(curve + len, sizeof curve - len, ", %ld: %.4g", t->state.step, t->overfit_last);
    if (t->overfit_last < t->cfg.overfit_loss) {
        say(t, "overfit-batch: passed: loss %.4g < %g at step %ld (loss by step: %s)", t->overfit_last, t->cfg.overfit_loss,
            t->state.step, curve);
        return 0;
    }
    return attn_error("overfit-batch: failed: loss %.4g after %ld steps, not below %g (loss by step: %s); the model cannot "
                      "fit one batch: check lr and warmup, then attn gradcheck", t->overfit_last, t->state.step,
                      t->cfg.overfit_loss, curve);
}

// ----------------------------------------------------------------------------
// Model, optimizer, schedule

// A model far too large for this machine is refused here, with the sizes,
// instead of by the abort of malloc_check. A lower bound is enough: the
// weight matrices only (biases, norms and activations left out), each held
// four times (weights, gradients, two Adam moments), 4 bytes a float.
static int check_model_fits(const ModelConfig *mc) {
    double C = mc->d_model, F = mc->d_ff;
    double params = mc->n_enc_layers * (4 * C * C + 2 * C * F) + mc->n_dec_layers * (8 * C * C + 2 * C * F) +
                    ((double)mc->src_vocab + mc->tgt_vocab) * C;
    double need = 16.0 * params, have = physical_memory();
    if (have > 0 && need > have)
        return attn_error("the model needs at least %.1f GB (%.3g parameters, with gradients and Adam moments), "
                          "more than this machine's %.1f GB: lower d_model, d_ff or the layer counts",
                          need / 1e9, params, have / 1e9);
    return 0;
}

static int create_model(Trainer *t) {
    const TrainConfig *c = &t->cfg;
    ModelConfig mc = c->model;
    mc.src_vocab = tokenizer_vocab_size(t->src_tok);
    mc.tgt_vocab = tokenizer_vocab_size(t->tgt_tok);
    int B1, S1, T1, B2, S2, T2;
    batcher_capacity(&t->train_batches, &B1, &S1, &T1);
    batcher_capacity(&t->valid_batches, &B2, &S2, &T2);
    int B = B1 > B2 ? B1 : B2, S = S1 > S2 ? S1 : S2, T = T1 > T2 ? T1 : T2;
    if (c->bpe_dropout > 0) S = T = c->max_len;  // segmentations only get longer
    if (check_model_fits(&mc) != 0) return -1;
    if (model_create(&t->model, &mc, B, S, T) != 0) return fail("model");
    batch_alloc(&t->batch, B, S, T);
    model_init_weights(&t->model, c->seed);
    optimizer_init(&t->opt, c->optimizer, t->model.n_params, (float)c->beta1, (float)c->beta2, (float)c->eps,
                   (float)c->weight_decay);
    t->sched = (Schedule){
        .type = c->schedule, .lr = c->lr, .scale = c->lr_scale, .min_lr = c->min_lr,
        .warmup_steps = c->warmup_steps, .decay_steps = c->decay_steps ? c->decay_steps : c->max_steps,
        .d_model = mc.d_model,
    };
    if (c->ema_decay > 0) {
        t->ema = malloc_check(sizeof(float) * (size_t)t->model.n_params);
        memcpy(t->ema, t->model.param_memory, sizeof(float) * (size_t)t->model.n_params);
    }
    rng_seed(&t->state.rng, c->seed ^ 0x64726f706f7574ULL);  // "dropout": its own stream
    say(t, "model: %ld parameters, vocabularies %d (%s) / %d (%s), batches up to %d x %d x %d",
        t->model.n_params, mc.src_vocab, tokenizer_type_name(tokenizer_type(t->src_tok)), mc.tgt_vocab,
        tokenizer_type_name(tokenizer_type(t->tgt_tok)), B, S, T);
    return init_diagnostics(t);
}

// ----------------------------------------------------------------------------
// One update

// Gradient accumulation weights each batch by its target tokens, so k
// batches give the gradient of the mean loss over all their tokens (what
// one k-times larger batch would give; src/optim.h); for k = 1 nothing is
// scaled.
static float train_step(Trainer *t) {
    Model *m = &t->model;
    long n = m->n_params;
    model_zero_grad(m);
    double loss_sum = 0.0;
    long tokens = 0;
    for (int i = 0; i < t->cfg.accum_steps; i++) {
        if (t->cfg.overfit_batch) batcher_fill(&t->train_batches, 0, &t->batch);  // one batch, again and again
        else if (next_train_batch(t) != 0) { t->data_failed = 1; return NAN; }
        t->state.batches_drawn++;
        float loss = model_forward(m, &t->batch, (float)t->cfg.label_smoothing, 1, &t->state.rng);
        long n_i = m->n_target_tokens;
        if (n_i == 0) continue;
        grad_accumulate_before(m->grad_memory, n, tokens, n_i);
        model_backward(m, &t->batch);
        grad_accumulate_after(m->grad_memory, n, tokens, n_i);
        loss_sum += (double)loss * (double)n_i;
        tokens += n_i;
    }
    float step_loss = tokens ? (float)(loss_sum / (double)tokens) : 0.0f;
    DiagAction action = check_update(t, step_loss);
    if (action == DIAG_STOP) return step_loss;  // loop() sees t->diag_failed
    t->step_skipped = action == DIAG_SKIP;
    if (action == DIAG_SKIP) {                  // the step is spent, the weights stay
        t->state.step++;
        t->state.tokens_seen += tokens;
        return 0.0f;
    }
    t->last_grad_norm = grad_clip(m->grad_memory, n, t->cfg.clip_norm);
    t->last_lr = schedule_lr(&t->sched, t->state.step + 1) * diag_lr_multiplier(&t->diag);
    int stats_due = diag_stats_due(&t->diag, t->state.step + 1);
    if (stats_due) diag_snapshot_params(&t->diag);
    optimizer_step(&t->opt, m->param_memory, m->grad_memory, (float)t->last_lr);
    if (t->ema) ema_update(t->ema, m->param_memory, n, (float)t->cfg.ema_decay);
    t->state.step++;
    if (stats_due) write_stats(t);
    t->state.tokens_seen += tokens;
    t->interval_loss_sum += loss_sum;
    t->interval_tokens += tokens;
    t->interval_steps++;
    return tokens ? (float)(loss_sum / (double)tokens) : 0.0f;
}

// ----------------------------------------------------------------------------
// Validation: teacher-forced loss, perplexity, token accuracy, and exact
// match. A sentence whose every target token (</s> included) is the argmax
// under teacher forcing is exactly what greedy decoding outputs (by
// induction over positions), so "exact" is the greedy exact-match rate.

static int row_exact(const Model *m, const Batch *b, int row) {
    int V = m->config.tgt_vocab;
    for (int pos = 0; pos < b->T; pos++) {
        int target = b->tgt_out[row * b->T + pos];
        if (target == PAD_ID) continue;
        const float *logits = m->logits + ((long)row * b->T + pos) * V;
        int best = 0;
        for (int v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
        if (best != target) return 0;
    }
    return 1;
}

static void validate(Trainer *t, ValidResult *r) {
    Model *m = &t->model;
    double nll = 0.0;
    long tokens = 0, correct = 0, sentences = 0, exact = 0;
    int n_batches = batcher_epoch_batches(&t->valid_batches);
    for (int k = 0; k < n_batches; k++) {
        batcher_fill(&t->valid_batches, k, &t->batch);
        float loss = model_forward(m, &t->batch, 0.0f, 0, NULL);
        nll += (double)loss * (double)m->n_target_tokens;
        tokens += m->n_target_tokens;
        correct += m->n_correct;
        for (int row = 0; row < t->batch.B; row++) exact += row_exact(m, &t->batch, row);
        sentences += t->batch.B;
    }
    r->tokens = tokens;
    r->sentences = sentences;
    r->loss = tokens ? nll / (double)tokens : 0.0;
    r->ppl = exp(r->loss);
    r->acc = tokens ? 100.0 * (double)correct / (double)tokens : 0.0;
    r->exact = sentences ? 100.0 * (double)exact / (double)sentences : 0.0;
}

static double metric_value(const char *name, const ValidResult *r) {
    if (!strcmp(name, "ppl")) return r->ppl;
    if (!strcmp(name, "acc")) return r->acc;
    if (!strcmp(name, "exact")) return r->exact;
    if (!strcmp(name, "bleu")) return r->bleu;
    if (!strcmp(name, "chrf")) return r->chrf;
    if (!strcmp(name, "wer")) return r->wer;
    if (!strcmp(name, "per")) return r->per;
    return r->loss;
}

static int metric_higher_is_better(const char *name) {
    return !strcmp(name, "acc") || !strcmp(name, "exact") || !strcmp(name, "bleu") || !strcmp(name, "chrf");
}

// ----------------------------------------------------------------------------
// Decoded validation (decode_metric): greedy or beam decoding of the
// validation sources, scored as attn eval scores them (src/metrics.h).

typedef struct { const char *src; int index; } SourceRef;

static int cmp_source_refs(const void *a, const void *b) {
    const SourceRef *x = a, *y = b;
    int c = strcmp(x->src, y->src);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

// Groups the validation pairs by source (sorted by source text), keeping
// sources that fit the model (source + </s> within max_len), at most
// decode_max_sentences of them (0 = all).
static void group_sources(Trainer *t) {
    const ParallelText *pt = &t->valid_text;
    SourceGroups *g = &t->groups;
    int n = pt->n, limit = t->cfg.decode_max_sentences;
    SourceRef *sorted = malloc_check(sizeof(SourceRef) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) sorted[i] = (SourceRef){pt->src[i], i};
    qsort(sorted, (size_t)n, sizeof(SourceRef), cmp_source_refs);
    int *order = malloc_check(sizeof(int) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) order[i] = sorted[i].index;
    free(sorted);
    g->pair = malloc_check(sizeof(int) * (size_t)(n + 1));
    g->ref_start = malloc_check(sizeof(int) * (size_t)(n + 2));
    g->refs = malloc_check(sizeof(int) * (size_t)(n + 1));
    g->n = 0;
    int n_refs = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        int fits = token_pairs_src_len(&t->valid_pairs, i) + 1 <= t->cfg.max_len;
        int new_source = k == 0 || strcmp(pt->src[i], pt->src[order[k - 1]]) != 0;
        if (new_source) {
            if (limit > 0 && g->n >= limit) break;
            if (!fits) { while (k + 1 < n && !strcmp(pt->src[order[k + 1]], pt->src[i])) k++; continue; }
            g->pair[g->n] = i;
            g->ref_start[g->n++] = n_refs;
        }
        g->refs[n_refs++] = i;
    }
    g->ref_start[g->n] = n_refs;
    free(order);
}

static void free_groups(SourceGroups *g) {
    free(g->pair);
    free(g->ref_start);
    free(g->refs);
    memset(g, 0, sizeof *g);
}

static int make_translator(Trainer *t) {
    DecodeOptions opt;
    decode_options_default(&opt);
    opt.beam_size = t->cfg.decode_beam;
    opt.nbest = 1;
    opt.batch_size = t->model.max_B < 32 ? t->model.max_B : 32;
    if (translator_create(&t->translator, &t->model, &opt) != 0) return fail("decoded validation");
    return 0;
}

// Scores one decoded source against its references.
static int score_source(Trainer *t, int g, const char *hyp, BleuStats *bleu, ChrfStats *chrf, G2PStats *g2p) {
    const SourceGroups *gr = &t->groups;
    const char *refs[64];
    int n_refs = 0;
    for (int r = gr->ref_start[g]; r < gr->ref_start[g + 1] && n_refs < 64; r++) refs[n_refs++] = t->valid_text.tgt[gr->refs[r]];
    const char *metric = t->cfg.decode_metric;
    if (!strcmp(metric, "bleu")) {
        BleuOptions bo;
        bleu_options_default(&bo);
        return bleu_add_sentence(bleu, &bo, hyp, refs, n_refs);
    }
    if (!strcmp(metric, "chrf")) {
        ChrfOptions co;
        chrf_options_default(&co);
        return chrf_add_sentence(chrf, &co, hyp, refs, n_refs);
    }
    return g2p_add_word(g2p, hyp, refs, n_refs);
}

static int decode_validation(Trainer *t, ValidResult *r) {
    const SourceGroups *g = &t->groups;
    if (!t->translator && make_translator(t) != 0) return -1;
    const int **src = malloc_check(sizeof(int *) * (size_t)(g->n ? g->n : 1));
    int *len = malloc_check(sizeof(int) * (size_t)(g->n ? g->n : 1));
    for (int k = 0; k < g->n; k++) {
        int i = g->pair[k];
        src[k] = t->valid_pairs.src_ids + t->valid_pairs.src_off[i];
        len[k] = token_pairs_src_len(&t->valid_pairs, i);
    }
    DecodeResult *results = calloc_check((size_t)(g->n ? g->n : 1), sizeof(DecodeResult));
    translator_weights_changed(t->translator);   // trained since the last validation
    int rc = translator_run(t->translator, src, len, g->n, 0, results);
    BleuStats bleu;
    ChrfStats chrf;
    G2PStats g2p = {0};
    bleu_stats_init(&bleu);
    chrf_stats_init(&chrf);
    for (int k = 0; k < g->n && rc == 0; k++) {
        const Hypothesis *h = &results[k].hyps[0];
        char *text = decode_ids_to_text(t->tgt_tok, h->tokens, h->len);
        if (!text || score_source(t, k, text, &bleu, &chrf, &g2p) != 0) rc = fail("decoded validation");
        free(text);
    }
    if (rc == 0) {
        BleuOptions bo;
        ChrfOptions co;
        BleuScore bs;
        bleu_options_default(&bo);
        chrf_options_default(&co);
        if (!strcmp(t->cfg.decode_metric, "bleu")) { bleu_compute(&bs, &bleu, &bo); r->bleu = bs.score; }
        if (!strcmp(t->cfg.decode_metric, "chrf")) r->chrf = chrf_compute(&chrf, &co);
        if (!strcmp(t->cfg.decode_metric, "g2p")) { r->wer = g2p_wer(&g2p); r->per = g2p_per(&g2p); }
        r->decoded = g->n;
    }
    for (int k = 0; k < g->n; k++) decode_result_free(&results[k]);
    free(results); free(src); free(len);
    return rc;
}

static int metric_reached(const TrainConfig *c, double value) {
    if (c->target_metric == 0) return 0;
    return metric_higher_is_better(c->best_metric) ? value >= c->target_metric : value <= c->target_metric;
}

// ----------------------------------------------------------------------------
// Checkpoints

static int save_model_file(Trainer *t, const char *name, const float *weights) {
    char path[4096];
    path_in(t, name, path, sizeof path);
    return checkpoint_save_model_weights(path, &t->model, weights, t->src_tok, t->tgt_tok, t->config_text,
                                         t->state.step, t->state.tag);
}

// Deletes the oldest step-N checkpoints beyond keep_last. A directory that
// cannot be listed only means old step files stay: not worth failing a run.
static void prune_step_files(Trainer *t) {
    char **names;
    int n;
    if (checkpoint_list_steps(t->run_dir, &names, &n) != 0) return;
    char path[4096];
    for (int i = 0; i < n - t->cfg.keep_last; i++) unlink(path_in(t, names[i], path, sizeof path));
    checkpoint_names_free(names, n);
}

// Saves last.safetensors + last.state.safetensors (and the EMA and a step-N
// copy for averaging). The training state carries the metrics file length,
// so a resumed run drops the records written after this point.
static int save_checkpoint(Trainer *t) {
    double t0 = monotonic_seconds();
    checkpoint_make_tag(t->state.tag, t->state.step);
    if (t->metrics) {
        fflush(t->metrics);
        t->state.metrics_bytes = ftell(t->metrics);
    }
    TrainState saved = t->state;
    saved.elapsed_seconds += monotonic_seconds() - t->session_start;
    saved.cursor = t->train_batches.cursor;
    saved.diagnostics = diag_state_text(&t->diag);
    int rc = checkpoint_save_run(t->run_dir, &t->model, t->src_tok, t->tgt_tok, t->config_text, &saved, &t->opt, t->ema);
    free(saved.diagnostics);
    if (rc != 0) return fail("saving the checkpoint");
    if (t->ema && save_model_file(t, "ema.safetensors", t->ema) != 0) return fail("saving the EMA weights");
    if (t->cfg.keep_last > 0) {
        char from[4096], name[64], to[4096];
        snprintf(name, sizeof name, "step-%08ld.safetensors", t->state.step);
        path_in(t, "last.safetensors", from, sizeof from);
        path_in(t, name, to, sizeof to);
        if (checkpoint_link(from, to) != 0) return fail("saving the step checkpoint");
        prune_step_files(t);
    }
    t->last_save_step = t->state.step;
    say(t, "saved %s/last.safetensors at step %ld (%.2f s)", t->run_dir, t->state.step, monotonic_seconds() - t0);
    return 0;
}

// Cuts metrics.jsonl back to its length at the checkpoint, dropping the
// records of steps that will be trained again. Only ever shortens it: a file
// already shorter (edited, or lost) would be padded with NUL bytes.
static int drop_records_after_checkpoint(Trainer *t) {
    char path[4096];
    path_in(t, "metrics.jsonl", path, sizeof path);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > t->state.metrics_bytes && truncate(path, t->state.metrics_bytes) != 0)
        return attn_error("%s: cannot truncate to the checkpoint's length: %s", path, strerror(errno));
    return 0;
}

// Restores weights, optimizer, RNG and cursor from the newest consistent pair.
static int resume(Trainer *t, const char *model_path, const char *state_path) {
    if (checkpoint_load_weights(model_path, &t->model, NULL) != 0) return -1;
    if (checkpoint_load_state(state_path, &t->state, &t->opt, t->ema) != 0) return -1;
    int rc = t->state.diagnostics ? diag_state_restore(&t->diag, t->state.diagnostics, state_path) : 0;
    free(t->state.diagnostics);
    t->state.diagnostics = NULL;
    if (rc != 0) return -1;
    if (t->cfg.bpe_dropout > 0 ? encode_train_epoch(t, t->state.cursor) != 0
                               : batcher_seek(&t->train_batches, t->state.cursor) != 0) return fail(state_path);
    if (drop_records_after_checkpoint(t) != 0) return -1;
    say(t, "resuming from %s at step %ld (epoch %d, batch %d)", model_path, t->state.step, t->state.cursor.epoch,
        t->state.cursor.position);
    return 0;
}

// The tokenizers of a checkpoint, so a resumed run encodes exactly as before.
static int restore_tokenizers(Trainer *t, const char *model_path) {
    CheckpointInfo info;
    if (checkpoint_read_info(model_path, &info) != 0) return -1;
    t->src_tok = info.src_tok;
    t->tgt_tok = info.tgt_tok;
    info.src_tok = info.tgt_tok = NULL;
    checkpoint_info_free(&info);
    return 0;
}

// ----------------------------------------------------------------------------
// Progress and metrics

static double elapsed(const Trainer *t) { return t->state.elapsed_seconds + monotonic_seconds() - t->session_start; }

static double epoch_progress(const Trainer *t) {
    int n = batcher_epoch_batches(&t->train_batches);
    return t->train_batches.cursor.epoch + (n ? (double)t->train_batches.cursor.position / n : 0.0);
}

static void format_duration(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e8) { snprintf(buf, cap, "?"); return; }
    long sec = (long)(s + 0.5);
    if (sec >= 3600) snprintf(buf, cap, "%ldh%02ldm", sec / 3600, sec / 60 % 60);
    else if (sec >= 60) snprintf(buf, cap, "%ldm%02lds", sec / 60, sec % 60);
    else snprintf(buf, cap, "%lds", sec);
}

// Seconds left: the nearest of the step, epoch and time budgets.
static double eta_seconds(const Trainer *t, double seconds_per_step) {
    const TrainConfig *c = &t->cfg;
    double eta = INFINITY;
    if (c->max_steps > 0) eta = fmin(eta, (double)(c->max_steps - t->state.step) * seconds_per_step);
    if (c->max_minutes > 0) eta = fmin(eta, c->max_minutes * 60.0 - elapsed(t));
    if (c->max_epochs > 0) {
        double steps_per_epoch = (double)batcher_epoch_batches(&t->train_batches) / c->accum_steps;
        eta = fmin(eta, (c->max_epochs - epoch_progress(t)) * steps_per_epoch * seconds_per_step);
    }
    return eta;
}

static void log_interval(Trainer *t, int live) {
    double now = monotonic_seconds(), span = now - t->interval_start;
    if (t->interval_steps == 0) return;
    double loss = t->interval_tokens ? t->interval_loss_sum / (double)t->interval_tokens : 0.0;
    double tokens_per_s = span > 0 ? (double)t->interval_tokens / span : 0.0;
    char eta[32];
    format_duration(eta_seconds(t, span / (double)t->interval_steps), eta, sizeof eta);
    char budget[32] = "";
    if (t->cfg.max_steps > 0) snprintf(budget, sizeof budget, "/%ld", t->cfg.max_steps);
    if (live) {
        if (t->opts->quiet || now - t->last_live < 0.2) return;  // a terminal needs no more than 5 redraws a second
        t->last_live = now;
        fprintf(stderr, "\r\033[Kstep %ld%s | epoch %.2f | loss %.4f | lr %.3g | %.0f tok/s | ETA %s", t->state.step,
                budget, epoch_progress(t), loss, t->last_lr, tokens_per_s, eta);
        fflush(stderr);
        t->progress_shown = 1;
        return;
    }
    write_record(t, "{\"type\":\"train\",\"step\":%ld,\"epoch\":%.4f,\"loss\":%.6g,\"lr\":%.6g,\"grad_norm\":%.6g,"
                 "\"tokens_per_s\":%.1f,\"elapsed_s\":%.2f}", t->state.step, epoch_progress(t), loss, t->last_lr,
                 t->last_grad_norm, tokens_per_s, elapsed(t));
    if (!t->opts->progress)
        say(t, "step %ld%s  epoch %.2f  loss %.4f  lr %.3g  grad_norm %.3g  %.0f tok/s  ETA %s", t->state.step, budget,
            epoch_progress(t), loss, t->last_lr, t->last_grad_norm, tokens_per_s, eta);
    t->interval_start = now;
    t->interval_loss_sum = 0.0;
    t->interval_tokens = 0;
    t->interval_steps = 0;
}

// Keeps best.safetensors and counts validations without improvement.
// Returns 1 when this validation is the best so far, 0 when not, -1 when
// the best model could not be saved. A NaN is never best (every comparison
// with a NaN best would fail after it).
static int keep_best(Trainer *t, const ValidResult *r) {
    const char *name = t->cfg.best_metric;
    double value = metric_value(name, r);
    int better = !isnan(value) && (!t->state.has_best || (metric_higher_is_better(name) ? value > t->state.best_metric
                                                                                         : value < t->state.best_metric));
    if (!better) {
        t->state.bad_evals++;
        return 0;
    }
    t->state.best_metric = value;
    t->state.best_step = t->state.step;
    t->state.has_best = 1;
    t->state.bad_evals = 0;
    if (save_model_file(t, "best.safetensors", t->model.param_memory) != 0) return fail("saving best.safetensors");
    return 1;
}

// The decoded metric's fields, for the metrics record and for the log line.
static void format_decoded(const char *metric, const ValidResult *r, char *record, char *log, size_t cap) {
    record[0] = log[0] = '\0';
    if (!strcmp(metric, "bleu")) {
        snprintf(record, cap, ",\"valid_bleu\":%.4f", r->bleu);
        snprintf(log, cap, "  BLEU %.2f", r->bleu);
    } else if (!strcmp(metric, "chrf")) {
        snprintf(record, cap, ",\"valid_chrf\":%.4f", r->chrf);
        snprintf(log, cap, "  chrF %.2f", r->chrf);
    } else if (!strcmp(metric, "g2p")) {
        snprintf(record, cap, ",\"valid_wer\":%.4f,\"valid_per\":%.4f", r->wer, r->per);
        snprintf(log, cap, "  WER %.2f%%  PER %.2f%%", r->wer, r->per);
    }
}

// Early stopping (patience) and the target metric.
static int should_stop(Trainer *t) {
    const char *name = t->cfg.best_metric;
    if (t->cfg.patience > 0 && t->state.bad_evals >= t->cfg.patience) {
        say(t, "early stopping: %d validations without a better %s (best %.4f at step %ld)", t->state.bad_evals, name,
            t->state.best_metric, t->state.best_step);
        return 1;
    }
    if (t->state.has_best && metric_reached(&t->cfg, t->state.best_metric)) {
        say(t, "target reached: %s %.4f (target_metric %g)", name, t->state.best_metric, t->cfg.target_metric);
        return 1;
    }
    return 0;
}

// Validates, records, keeps the best checkpoint and counts patience.
// Sets *stop when early stopping or the target metric says so.
static int run_validation(Trainer *t, int *stop) {
    ValidResult r;
    memset(&r, 0, sizeof r);
    double t0 = monotonic_seconds();
    validate(t, &r);
    if (strcmp(t->cfg.decode_metric, "none") != 0 && decode_validation(t, &r) != 0) return -1;
    t->last_valid_step = t->state.step;
    int better = keep_best(t, &r);
    if (better < 0) return -1;
    char decoded[160], decoded_log[160];
    format_decoded(t->cfg.decode_metric, &r, decoded, decoded_log, sizeof decoded);
    write_record(t, "{\"type\":\"valid\",\"step\":%ld,\"epoch\":%.4f,\"valid_loss\":%.6g,\"valid_ppl\":%.6g,"
                 "\"valid_acc\":%.4f,\"valid_exact\":%.4f%s,\"best\":%s,\"elapsed_s\":%.2f}", t->state.step,
                 epoch_progress(t), r.loss, r.ppl, r.acc, r.exact, decoded, better ? "true" : "false", elapsed(t));
    observe_eval(t, r.loss);
    say(t, "valid step %ld: loss %.4f  ppl %.3f  acc %.2f%%  exact %.2f%%%s (%ld sentences, %.1f s)%s", t->state.step,
        r.loss, r.ppl, r.acc, r.exact, decoded_log, r.sentences, monotonic_seconds() - t0, better ? "  * best" : "");
    if (should_stop(t)) *stop = 1;
    return 0;
}

// ----------------------------------------------------------------------------
// The run

static int budget_left(const Trainer *t) {
    const TrainConfig *c = &t->cfg;
    if (c->max_steps > 0 && t->state.step >= c->max_steps) return 0;
    if (c->max_epochs > 0) {
        const BatchCursor *cur = &t->train_batches.cursor;
        int done = cur->epoch + (cur->position >= batcher_epoch_batches(&t->train_batches) ? 1 : 0);
        if (done >= c->max_epochs) return 0;
    }
    if (c->max_minutes > 0 && elapsed(t) >= c->max_minutes * 60.0) return 0;
    return 1;
}

// A signal during setup ends it at the next stage: there is nothing to save
// yet, and learning tokenizers on a large corpus can take minutes.
static int interrupted_in_setup(void) {
    if (!stop_signal) return 0;
    return attn_error("interrupted (signal %d) before the first step: nothing to save; run the same command again",
                      (int)stop_signal);
}

static int setup(Trainer *t, char *model_path, char *state_path, int *resuming) {
    *resuming = checkpoint_find_resume(t->run_dir, model_path, state_path, 4096);
    if (*resuming < 0) return -1;
    if (t->cfg.threads > 0 && threads_set(t->cfg.threads) != 0) return -1;
    threads_start();
    if (!strcmp(t->cfg.matmul, "bf16") && gemm_set_path(GEMM_PATH_AVX512_BF16) != 0)
        return attn_error("matmul = bf16 needs a CPU with AVX512-BF16; this one runs %s (use matmul = fp32)",
                          gemm_path_name(gemm_get_path()));
    if (load_data(t) != 0 || interrupted_in_setup()) return -1;
    if ((*resuming ? restore_tokenizers(t, model_path) : make_tokenizers(t)) || interrupted_in_setup()) return -1;
    if (encode_pairs(t, &t->train_text, &t->train_pairs) != 0) return fail("training data");
    if (encode_pairs(t, &t->valid_text, &t->valid_pairs) != 0) return fail("validation data");
    if (interrupted_in_setup() || make_batchers(t) != 0) return -1;
    if (create_model(t) != 0 || interrupted_in_setup()) return -1;
    if (strcmp(t->cfg.decode_metric, "none") != 0) group_sources(t);
    if (*resuming && resume(t, model_path, state_path) != 0) return -1;
    if (!*resuming && t->cfg.bpe_dropout > 0 && encode_train_epoch(t, (BatchCursor){0, 0}) != 0) return -1;
    if (!*resuming) {
        char path[4096];
        if (tokenizer_save(t->src_tok, path_in(t, "src.tokenizer", path, sizeof path)) != 0 ||
            tokenizer_save(t->tgt_tok, path_in(t, "tgt.tokenizer", path, sizeof path)) != 0) return -1;
    }
    return 0;
}

// Appends to RUN_DIR/metrics.jsonl; a fresh run starts it empty (records of
// an attempt that died before its first checkpoint are dropped).
static int open_metrics(Trainer *t, int resuming) {
    char path[4096];
    path_in(t, "metrics.jsonl", path, sizeof path);
    t->metrics = fopen(path, resuming ? "a" : "w");
    if (!t->metrics) return attn_error("%s: cannot open for appending: %s", path, strerror(errno));
    return 0;
}

static void free_trainer(Trainer *t) {
    if (t->metrics) fclose(t->metrics);
    parallel_free(&t->train_text);
    parallel_free(&t->valid_text);
    tokenizer_free(t->src_tok);
    tokenizer_free(t->tgt_tok);
    token_pairs_free(&t->train_pairs);
    token_pairs_free(&t->valid_pairs);
    batcher_free(&t->train_batches);
    batcher_free(&t->valid_batches);
    if (t->model.param_memory) model_free(&t->model);
    optimizer_free(&t->opt);
    batch_free(&t->batch);
    free(t->ema);
    free(t->config_text);
    diag_free(&t->diag);
    translator_free(t->translator);
    free_groups(&t->groups);
    free(t->views);
    sb_free(&t->diag_line);
}

// After an update: the log line, validation and checkpoint that are due.
// The last step (budget reached, early stopping, --overfit-batch done) is
// logged, validated and saved in that order, so its checkpoint holds every
// record and the best model written for it: a run killed after that
// checkpoint has nothing left to redo when it is run again.
static int after_step(Trainer *t, int *stop) {
    const TrainConfig *c = &t->cfg;
    long step = t->state.step;
    long save_every = c->save_every > 0 ? c->save_every : c->valid_every;
    int last = *stop || !budget_left(t);
    if (step % c->log_every == 0 || last) log_interval(t, 0);
    else if (t->opts->progress) log_interval(t, 1);
    int valid_due = c->valid_every > 0 && step % c->valid_every == 0;
    if ((valid_due || last) && run_validation(t, stop) != 0) return -1;
    if (*stop) log_interval(t, 0);  // early stopping made this the last step
    int save_due = save_every > 0 && step % save_every == 0;
    if ((save_due || last || *stop) && save_checkpoint(t) != 0) return -1;
    return 0;
}

// The loop proper: steps until the budget, a stop condition or a signal.
static int loop(Trainer *t) {
    const TrainConfig *c = &t->cfg;
    int stop = 0;
    t->last_save_step = t->state.step;  // a resumed run starts from a saved step
    t->interval_start = monotonic_seconds();
    while (!stop && !stop_signal && budget_left(t)) {
        float loss = train_step(t);
        if (t->diag_failed || t->data_failed) return -1;
        if (c->overfit_batch && !t->step_skipped && overfit_track(t, loss)) stop = 1;
        if (!isfinite(loss) || !isfinite(t->last_grad_norm))
            return attn_error("step %ld: the loss or the gradient is not finite (loss %g, gradient norm %g); "
                              "the last checkpoint is intact; lower lr or raise warmup_steps", t->state.step, loss,
                              t->last_grad_norm);
        if (after_step(t, &stop) != 0) return -1;
    }
    if (stop_signal) {
        log_interval(t, 0);
        say(t, "interrupted (signal %d) at step %ld: saving", (int)stop_signal, t->state.step);
        if (t->last_save_step != t->state.step && save_checkpoint(t) != 0) return -1;
        say(t, "run the same command again to resume");
        return 0;
    }
    // max_minutes can run out between after_step's look at the budget and
    // the loop's: that step is finished here, in the same order.
    if (t->last_save_step != t->state.step) {
        log_interval(t, 0);
        if (t->last_valid_step != t->state.step && run_validation(t, &stop) != 0) return -1;
        if (save_checkpoint(t) != 0) return -1;
    }
    say(t, "done at step %ld (epoch %.2f, %.1f s): best %s %.4f at step %ld in %s/best.safetensors", t->state.step,
        epoch_progress(t), elapsed(t), c->best_metric, t->state.best_metric, t->state.best_step, t->run_dir);
    return c->overfit_batch ? overfit_verdict(t) : 0;
}

// SIGINT and SIGTERM only set stop_signal, from the start: during setup it
// ends the run at the next stage, in the loop after the current step, with
// a checkpoint. SA_RESETHAND: a second Ctrl-C kills at once.
static void catch_signals(struct sigaction *old_int, struct sigaction *old_term) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

int train_run(const TrainConfig *cfg, const char *run_dir, const TrainOptions *opts) {
    struct sigaction old_int, old_term;
    catch_signals(&old_int, &old_term);
    Trainer *t = calloc_check(1, sizeof *t);
    t->cfg = *cfg;
    t->opts = opts;
    t->run_dir = run_dir;
    t->config_text = config_to_string(cfg);
    t->last_valid_step = t->last_save_step = -1;
    char model_path[4096], state_path[4096];
    int resuming;
    int rc = setup(t, model_path, state_path, &resuming);
    if (rc == 0) rc = open_metrics(t, resuming);
    t->session_start = monotonic_seconds();  // setup time is not training time
    if (rc == 0 && !budget_left(t)) {
        say(t, "%s: the budget is already reached at step %ld; raise max_steps / max_epochs / max_minutes to go on",
            run_dir, t->state.step);
    } else if (rc == 0) {
        rc = loop(t);
    }
    free_trainer(t);
    free(t);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}
