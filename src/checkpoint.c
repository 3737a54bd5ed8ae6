// Checkpoints: complete model files, training-state files, and the pairing
// of the two in a run directory (the format is described in checkpoint.h).
#include "checkpoint.h"
#include "common.h"
#include "config.h"
#include "json.h"
#include "safetensors.h"
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ----------------------------------------------------------------------------
// Small helpers

// Prefixes the recorded error with the file name (attn_error may take
// attn_last_error() as an argument).
static int error_in(const char *path) { return attn_error("%s: %s", path, attn_last_error()); }

// FNV-1a over the 32-bit words of the tensor data (word-wise rather than
// byte-wise: the same protection against corruption, four times faster).
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t hash_words(uint64_t h, const float *data, long n) {
    const uint32_t *w = (const uint32_t *)(const void *)data;
    for (long i = 0; i < n; i++) h = (h ^ w[i]) * FNV_PRIME;
    return h;
}

static uint64_t hash_tensors(const StTensor *t, int n) {
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < n; i++) h = hash_words(h, t[i].data, t[i].numel);
    return h;
}

static int check_hash(const char *path, const SafeTensors *st) {
    const char *want = st_meta(st, "data_hash");
    if (!want) return attn_error("%s: no data_hash in the metadata (not written by attn?)", path);
    char got[32];
    snprintf(got, sizeof got, "%016" PRIx64, hash_tensors(st->tensors, st->n_tensors));
    if (strcmp(got, want) != 0)
        return attn_error("%s: corrupt file: tensor data hash %s does not match the recorded %s", path, got, want);
    return 0;
}

// The step a tag "<step>-<nonce>" was made for.
static long tag_step(const char *tag) { return strtol(tag, NULL, 10); }

static int parse_long_meta(const char *path, const SafeTensors *st, const char *key, long *out) {
    const char *v = st_meta(st, key);
    if (!v) return attn_error("%s: metadata lacks '%s'", path, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end) return attn_error("%s: metadata '%s' is not an integer: '%s'", path, key, v);
    *out = x;
    return 0;
}

static int parse_double_meta(const char *path, const SafeTensors *st, const char *key, double *out) {
    const char *v = st_meta(st, key);
    if (!v) return attn_error("%s: metadata lacks '%s'", path, key);
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end) return attn_error("%s: metadata '%s' is not a number: '%s'", path, key, v);
    *out = x;
    return 0;
}

static int check_format(const char *path, const SafeTensors *st, const char *format) {
    const char *f = st_meta(st, "format");
    if (!f) return attn_error("%s: not an attn file (no 'format' in the safetensors metadata)", path);
    if (strcmp(f, format) != 0) return attn_error("%s: is an '%s' file, expected '%s'", path, f, format);
    long version;
    if (parse_long_meta(path, st, "format_version", &version) != 0) return -1;
    if (version != CHECKPOINT_VERSION)
        return attn_error("%s: format version %ld, this attn reads version %d (written by %s attn)", path, version,
                          CHECKPOINT_VERSION, version > CHECKPOINT_VERSION ? "a newer" : "an older");
    return 0;
}

static int file_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0;
}

void checkpoint_make_tag(char tag[CHECKPOINT_TAG_LEN], long step) {
    // The nonce only has to differ between two saves of the same step (a
    // run resumed twice from one checkpoint); time and pid suffice.
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t nonce = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid();
    snprintf(tag, CHECKPOINT_TAG_LEN, "%ld-%016" PRIx64, step, nonce);
}

// ----------------------------------------------------------------------------
// Model files: writing

// The tie record: each PyTorch name the model does not list, with the name
// whose data it shares.
static void tie_record(const ModelConfig *mc, const TensorView *v, int n, StrBuf *out) {
    int has_src = 0, has_tgt = 0, has_gen = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(v[i].name, "src_embed.weight")) has_src = 1;
        if (!strcmp(v[i].name, "tgt_embed.weight")) has_tgt = 1;
        if (!strcmp(v[i].name, "generator.weight")) has_gen = 1;
    }
    sb_puts(out, "");
    const char *embed = has_tgt ? "tgt_embed.weight" : "src_embed.weight";
    if (mc->share_embeddings && !has_src) sb_printf(out, "src_embed.weight=%s", embed);
    if (mc->share_embeddings && !has_tgt) sb_printf(out, "tgt_embed.weight=%s", "src_embed.weight");
    if (mc->tie_generator && !has_gen) sb_printf(out, "%sgenerator.weight=%s", out->len ? "," : "", embed);
}

static int tensor_views(const Model *m, TensorView **views) {
    int n = model_tensors(m, 0, NULL, 0);
    *views = malloc_check(sizeof(TensorView) * (size_t)n);
    model_tensors(m, 0, *views, n);
    return n;
}

// Writes a model file whose tensors are `weights` (a buffer laid out as
// m->param_memory), so the same code saves the model, an EMA or an average.
static int save_model_weights(const char *path, const Model *m, const float *weights,
                              const Tokenizer *src_tok, const Tokenizer *tgt_tok,
                              const char *train_config, long step, const char *tag) {
    TensorView *views;
    int n = tensor_views(m, &views);
    StTensor *t = calloc_check((size_t)n, sizeof(StTensor));
    for (int i = 0; i < n; i++) {
        t[i].name = views[i].name;
        t[i].ndim = views[i].ndim;
        for (int d = 0; d < views[i].ndim; d++) t[i].shape[d] = views[i].shape[d];
        t[i].numel = views[i].numel;
        t[i].data = (float *)(weights + (views[i].data - m->param_memory));
    }
    char *src_text = NULL, *tgt_text = NULL;
    if (tokenizer_to_string(src_tok, &src_text) != 0 || tokenizer_to_string(tgt_tok, &tgt_text) != 0) {
        free(src_text); free(t); free(views);
        return error_in(path);
    }
    char *model_text = model_config_to_string(&m->config);
    StrBuf tied = {0};
    tie_record(&m->config, views, n, &tied);
    char version[16], step_text[32], hash[32], default_tag[CHECKPOINT_TAG_LEN];
    snprintf(version, sizeof version, "%d", CHECKPOINT_VERSION);
    snprintf(step_text, sizeof step_text, "%ld", step);
    snprintf(hash, sizeof hash, "%016" PRIx64, hash_tensors(t, n));
    snprintf(default_tag, sizeof default_tag, "%ld-0", step);
    const char *keys[] = {"format", "format_version", "attn_version", "step", "tag", "data_hash",
                          "tied", "model_config", "src_tokenizer", "tgt_tokenizer", "train_config"};
    const char *values[] = {CHECKPOINT_FORMAT, version, ATTN_VERSION, step_text, tag ? tag : default_tag, hash,
                            tied.data, model_text, src_text, tgt_text, train_config};
    int n_meta = train_config ? 11 : 10;
    int rc = st_save(path, t, n, keys, values, n_meta);
    sb_free(&tied);
    free(model_text); free(src_text); free(tgt_text); free(t); free(views);
    return rc;
}

int checkpoint_save_model(const char *path, const Model *m, const Tokenizer *src_tok,
                          const Tokenizer *tgt_tok, const char *train_config, long step,
                          const char *tag) {
    return save_model_weights(path, m, m->param_memory, src_tok, tgt_tok, train_config, step, tag);
}

int checkpoint_save_model_weights(const char *path, const Model *m, const float *weights,
                                  const Tokenizer *src_tok, const Tokenizer *tgt_tok,
                                  const char *train_config, long step, const char *tag) {
    return save_model_weights(path, m, weights, src_tok, tgt_tok, train_config, step, tag);
}

// ----------------------------------------------------------------------------
// Model files: reading

void checkpoint_info_free(CheckpointInfo *info) {
    tokenizer_free(info->src_tok);
    tokenizer_free(info->tgt_tok);
    free(info->train_config);
    memset(info, 0, sizeof *info);
}

static int read_tokenizer(const char *path, const SafeTensors *st, const char *key, int want_vocab, Tokenizer **out) {
    const char *text = st_meta(st, key);
    if (!text) return attn_error("%s: metadata lacks '%s'", path, key);
    if (tokenizer_from_string(text, out) != 0) return attn_error("%s: %s: %s", path, key, attn_last_error());
    if (tokenizer_vocab_size(*out) != want_vocab) {
        int got = tokenizer_vocab_size(*out);
        tokenizer_free(*out);
        *out = NULL;
        return attn_error("%s: %s has %d pieces but the model's vocabulary is %d", path, key, got, want_vocab);
    }
    return 0;
}

// Checks the metadata of a loaded model file and fills info (tokenizers
// included). Does not look at the tensors' names and shapes.
static int read_metadata(const char *path, const SafeTensors *st, CheckpointInfo *info) {
    memset(info, 0, sizeof *info);
    if (check_format(path, st, CHECKPOINT_FORMAT) != 0) return -1;
    if (check_hash(path, st) != 0) return -1;
    const char *model_text = st_meta(st, "model_config");
    if (!model_text) return attn_error("%s: metadata lacks 'model_config'", path);
    if (model_config_from_string(&info->model_config, model_text, path) != 0) return -1;
    if (model_config_validate(&info->model_config) != 0) return error_in(path);
    if (parse_long_meta(path, st, "step", &info->step) != 0) return -1;
    const char *tag = st_meta(st, "tag");
    if (!tag || strlen(tag) >= CHECKPOINT_TAG_LEN) return attn_error("%s: metadata lacks a valid 'tag'", path);
    strcpy(info->tag, tag);
    if (read_tokenizer(path, st, "src_tokenizer", info->model_config.src_vocab, &info->src_tok) != 0 ||
        read_tokenizer(path, st, "tgt_tokenizer", info->model_config.tgt_vocab, &info->tgt_tok) != 0) {
        checkpoint_info_free(info);
        return -1;
    }
    const char *train_config = st_meta(st, "train_config");
    info->train_config = train_config ? strdup_check(train_config) : NULL;
    info->n_tensors = st->n_tensors;
    for (int i = 0; i < st->n_tensors; i++) info->n_params += st->tensors[i].numel;
    return 0;
}

int checkpoint_read_info(const char *path, CheckpointInfo *info) {
    SafeTensors st;
    if (st_load(path, &st) != 0) return -1;
    int rc = read_metadata(path, &st, info);
    st_free(&st);
    return rc;
}

// The architecture fields that must agree for weights to be loadable
// (dropout rates may differ: they are training settings).
static const char *architecture_difference(const ModelConfig *a, const ModelConfig *b) {
    if (a->src_vocab != b->src_vocab) return "src_vocab";
    if (a->tgt_vocab != b->tgt_vocab) return "tgt_vocab";
    if (a->d_model != b->d_model) return "d_model";
    if (a->n_heads != b->n_heads) return "n_heads";
    if (a->d_ff != b->d_ff) return "d_ff";
    if (a->n_enc_layers != b->n_enc_layers) return "n_enc_layers";
    if (a->n_dec_layers != b->n_dec_layers) return "n_dec_layers";
    if (a->activation != b->activation) return "activation";
    if (a->norm_first != b->norm_first) return "norm_first";
    if (a->tie_generator != b->tie_generator) return "tie_generator";
    if (a->share_embeddings != b->share_embeddings) return "share_embeddings";
    if (a->max_len != b->max_len) return "pos_max_len";
    return NULL;
}

// Copies every tensor of the model from st, checking names and shapes both ways.
static int copy_weights(const char *path, const SafeTensors *st, Model *m) {
    TensorView *views;
    int n = tensor_views(m, &views);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const StTensor *t = st_find(st, views[i].name);
        if (!t) { rc = attn_error("%s: tensor '%s' is missing", path, views[i].name); break; }
        int same = t->ndim == views[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == views[i].shape[d];
        if (!same) { rc = attn_error("%s: tensor '%s' has the wrong shape for this model", path, views[i].name); break; }
        memcpy(views[i].data, t->data, sizeof(float) * (size_t)t->numel);
    }
    if (rc == 0 && st->n_tensors != n) {
        for (int j = 0; j < st->n_tensors; j++) {
            int known = 0;
            for (int i = 0; i < n && !known; i++) known = !strcmp(st->tensors[j].name, views[i].name);
            if (!known) { rc = attn_error("%s: unexpected tensor '%s'", path, st->tensors[j].name); break; }
        }
    }
    free(views);
    return rc;
}

int checkpoint_load_weights(const char *path, Model *m, CheckpointInfo *info) {
    SafeTensors st;
    if (st_load(path, &st) != 0) return -1;
    CheckpointInfo local;
    int rc = read_metadata(path, &st, &local);
    int meta_ok = rc == 0;  // read_metadata allocates only when it succeeds
    if (rc == 0) {
        const char *diff = architecture_difference(&local.model_config, &m->config);
        if (diff) rc = attn_error("%s: the model in this file differs in %s from the one being loaded into", path, diff);
    }
    if (rc == 0) rc = copy_weights(path, &st, m);
    st_free(&st);
    if (rc == 0 && info) *info = local;
    else if (meta_ok) checkpoint_info_free(&local);
    return rc;
}

int checkpoint_load_model(const char *path, Model *m, int max_B, int max_S, int max_T,
                          Tokenizer **src_tok, Tokenizer **tgt_tok) {
    SafeTensors st;
    if (st_load(path, &st) != 0) return -1;
    CheckpointInfo info;
    if (read_metadata(path, &st, &info) != 0) { st_free(&st); return -1; }
    if (max_B <= 0) max_B = 1;
    if (max_S <= 0) max_S = info.model_config.max_len;
    if (max_T <= 0) max_T = info.model_config.max_len;
    int rc = model_create(m, &info.model_config, max_B, max_S, max_T);
    if (rc != 0) rc = error_in(path);
    if (rc == 0 && copy_weights(path, &st, m) != 0) { model_free(m); rc = -1; }
    st_free(&st);
    if (rc == 0 && src_tok) { *src_tok = info.src_tok; info.src_tok = NULL; }
    if (rc == 0 && tgt_tok) { *tgt_tok = info.tgt_tok; info.tgt_tok = NULL; }
    checkpoint_info_free(&info);
    return rc;
}

// ----------------------------------------------------------------------------
// Training state

int checkpoint_save_state(const char *path, const TrainState *s, const Optimizer *opt, const float *ema) {
    StTensor t[3] = {
        {.name = "optimizer.m", .ndim = 1, .shape = {opt->n}, .numel = opt->n, .data = opt->m},
        {.name = "optimizer.v", .ndim = 1, .shape = {opt->n}, .numel = opt->n, .data = opt->v},
        {.name = "ema", .ndim = 1, .shape = {opt->n}, .numel = opt->n, .data = (float *)ema},
    };
    int n_tensors = ema ? 3 : 2;
    char version[16], step[32], opt_step[32], rng[80], epoch[32], position[32], drawn[32], best[40],
         has_best[8], best_step[32], bad[32], elapsed[40], tokens[32], metrics[32], hash[32];
    snprintf(version, sizeof version, "%d", CHECKPOINT_VERSION);
    snprintf(step, sizeof step, "%ld", s->step);
    snprintf(opt_step, sizeof opt_step, "%ld", opt->step);
    snprintf(rng, sizeof rng, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
             s->rng.s[0], s->rng.s[1], s->rng.s[2], s->rng.s[3]);
    snprintf(epoch, sizeof epoch, "%d", s->cursor.epoch);
    snprintf(position, sizeof position, "%d", s->cursor.position);
    snprintf(drawn, sizeof drawn, "%ld", s->batches_drawn);
    snprintf(best, sizeof best, "%.17g", s->best_metric);
    snprintf(has_best, sizeof has_best, "%d", s->has_best);
    snprintf(best_step, sizeof best_step, "%ld", s->best_step);
    snprintf(bad, sizeof bad, "%d", s->bad_evals);
    snprintf(elapsed, sizeof elapsed, "%.17g", s->elapsed_seconds);
    snprintf(tokens, sizeof tokens, "%ld", s->tokens_seen);
    snprintf(metrics, sizeof metrics, "%ld", s->metrics_bytes);
    snprintf(hash, sizeof hash, "%016" PRIx64, hash_tensors(t, n_tensors));
    const char *keys[] = {"format", "format_version", "attn_version", "step", "tag", "data_hash", "optimizer",
                          "optimizer_step", "rng", "cursor_epoch", "cursor_position", "batches_drawn",
                          "best_metric", "has_best", "best_step", "bad_evals", "elapsed_seconds",
                          "tokens_seen", "metrics_bytes", "diagnostics"};
    const char *values[] = {CHECKPOINT_STATE_FORMAT, version, ATTN_VERSION, step, s->tag, hash,
                            optimizer_name(opt->type), opt_step, rng, epoch, position, drawn, best, has_best,
                            best_step, bad, elapsed, tokens, metrics, s->diagnostics};
    int n_meta = (int)(sizeof keys / sizeof keys[0]) - (s->diagnostics ? 0 : 1);
    return st_save(path, t, n_tensors, keys, values, n_meta);
}

static int read_state_metadata(const char *path, const SafeTensors *st, TrainState *s, long *opt_step) {
    long epoch, position, has_best, bad;
    if (parse_long_meta(path, st, "step", &s->step) != 0 ||
        parse_long_meta(path, st, "optimizer_step", opt_step) != 0 ||
        parse_long_meta(path, st, "cursor_epoch", &epoch) != 0 ||
        parse_long_meta(path, st, "cursor_position", &position) != 0 ||
        parse_long_meta(path, st, "batches_drawn", &s->batches_drawn) != 0 ||
        parse_double_meta(path, st, "best_metric", &s->best_metric) != 0 ||
        parse_long_meta(path, st, "has_best", &has_best) != 0 ||
        parse_long_meta(path, st, "best_step", &s->best_step) != 0 ||
        parse_long_meta(path, st, "bad_evals", &bad) != 0 ||
        parse_double_meta(path, st, "elapsed_seconds", &s->elapsed_seconds) != 0 ||
        parse_long_meta(path, st, "tokens_seen", &s->tokens_seen) != 0 ||
        parse_long_meta(path, st, "metrics_bytes", &s->metrics_bytes) != 0) return -1;
    // The data hash covers the tensors, not the metadata: a damaged or edited
    // number is caught here, before it steers a resumed run.
    if (s->step < 0 || *opt_step < 0 || *opt_step > s->step || epoch < 0 || epoch > INT_MAX || position < 0 ||
        position > INT_MAX || s->batches_drawn < 0 || (has_best != 0 && has_best != 1) || s->best_step < 0 ||
        s->best_step > s->step || bad < 0 || bad > INT_MAX || s->tokens_seen < 0 || s->metrics_bytes < 0 ||
        !(s->elapsed_seconds >= 0))
        return attn_error("%s: corrupt file: a training-state number in its metadata is out of range", path);
    s->cursor.epoch = (int)epoch;
    s->cursor.position = (int)position;
    s->has_best = (int)has_best;
    s->bad_evals = (int)bad;
    const char *tag = st_meta(st, "tag"), *rng = st_meta(st, "rng");
    if (!tag || strlen(tag) >= CHECKPOINT_TAG_LEN || tag_step(tag) != s->step)
        return attn_error("%s: metadata lacks a valid 'tag' (\"<step>-<nonce>\")", path);
    strcpy(s->tag, tag);
    if (!rng || sscanf(rng, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64,
                       &s->rng.s[0], &s->rng.s[1], &s->rng.s[2], &s->rng.s[3]) != 4)
        return attn_error("%s: metadata 'rng' is missing or malformed", path);
    return 0;
}

static int copy_state_tensor(const char *path, const SafeTensors *st, const char *name, float *dst, long n) {
    const StTensor *t = st_find(st, name);
    if (!t) return attn_error("%s: tensor '%s' is missing", path, name);
    if (t->numel != n)
        return attn_error("%s: tensor '%s' holds %ld values but the model has %ld parameters", path, name, t->numel, n);
    memcpy(dst, t->data, sizeof(float) * (size_t)n);
    return 0;
}

int checkpoint_load_state(const char *path, TrainState *s, Optimizer *opt, float *ema) {
    SafeTensors st;
    if (st_load(path, &st) != 0) return -1;
    memset(s, 0, sizeof *s);
    long opt_step = 0;
    int rc = check_format(path, &st, CHECKPOINT_STATE_FORMAT);
    if (rc == 0) rc = check_hash(path, &st);
    if (rc == 0) rc = read_state_metadata(path, &st, s, &opt_step);
    if (rc == 0) {
        const char *name = st_meta(&st, "optimizer");
        if (!name || strcmp(name, optimizer_name(opt->type)) != 0)
            rc = attn_error("%s: saved by optimizer '%s', the run uses '%s'", path, name ? name : "?", optimizer_name(opt->type));
    }
    if (rc == 0) rc = copy_state_tensor(path, &st, "optimizer.m", opt->m, opt->n);
    if (rc == 0) rc = copy_state_tensor(path, &st, "optimizer.v", opt->v, opt->n);
    if (rc == 0 && ema) rc = copy_state_tensor(path, &st, "ema", ema, opt->n);
    if (rc == 0) {
        opt->step = opt_step;
        const char *diagnostics = st_meta(&st, "diagnostics");
        s->diagnostics = diagnostics ? strdup_check(diagnostics) : NULL;
    }
    st_free(&st);
    return rc;
}

// ----------------------------------------------------------------------------
// Run directories

// The end of the data section that a parsed header describes.
static long header_data_end(const JsonValue *header) {
    long end = 0;
    for (int i = 0; i < header->n; i++) {
        const JsonValue *offsets = json_get(&header->items[i], "data_offsets");
        if (offsets && offsets->type == JSON_ARRAY && offsets->n == 2 && offsets->items[1].type == JSON_NUMBER &&
            (long)offsets->items[1].number > end)
            end = (long)offsets->items[1].number;
    }
    return end;
}

// The "tag" of a file from its header alone (the tensors are not read), so
// that finding the resumable pair costs a few kilobytes, not whole models.
// A file shorter or longer than its header says (a torn copy) has no tag.
static int read_tag(const char *path, char tag[CHECKPOINT_TAG_LEN]) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char len_bytes[8];
    uint64_t len = 0;
    int rc = -1;
    if (fread(len_bytes, 1, 8, f) == 8) {
        for (int i = 0; i < 8; i++) len |= (uint64_t)len_bytes[i] << (8 * i);
        if (len > 0 && len < (1u << 30)) {
            char *header = malloc_check(len);
            if (fread(header, 1, len, f) == len) {
                JsonValue v;
                if (json_parse(header, len, &v) == 0) {
                    const JsonValue *t = json_get(json_get(&v, "__metadata__"), "tag");
                    int whole = (long long)st.st_size == 8 + (long long)len + header_data_end(&v);
                    if (whole && t && t->type == JSON_STRING && strlen(t->string) < CHECKPOINT_TAG_LEN) {
                        strcpy(tag, t->string);
                        rc = 0;
                    }
                    json_free(&v);
                }
            }
            free(header);
        }
    }
    fclose(f);
    return rc;
}

enum { N_PAIR_FILES = 2 };
static const char *const model_names[N_PAIR_FILES] = {"last.safetensors", "last.prev.safetensors"};
static const char *const state_names[N_PAIR_FILES] = {"last.state.safetensors", "last.prev.state.safetensors"};

// The matching (model, state) pair with the highest step: indices into the
// name tables, or -1 when there is none. *any says whether any file exists.
static void best_pair(const char *run_dir, int *model_i, int *state_i, int *any) {
    char tags_m[N_PAIR_FILES][CHECKPOINT_TAG_LEN], tags_s[N_PAIR_FILES][CHECKPOINT_TAG_LEN];
    int ok_m[N_PAIR_FILES], ok_s[N_PAIR_FILES];
    char path[4096];
    *any = 0;
    for (int i = 0; i < N_PAIR_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", run_dir, model_names[i]);
        *any |= file_exists(path);
        ok_m[i] = read_tag(path, tags_m[i]) == 0;
        snprintf(path, sizeof path, "%s/%s", run_dir, state_names[i]);
        *any |= file_exists(path);
        ok_s[i] = read_tag(path, tags_s[i]) == 0;
    }
    *model_i = *state_i = -1;
    long best_step = -1;
    for (int i = 0; i < N_PAIR_FILES; i++) {
        for (int j = 0; j < N_PAIR_FILES; j++) {
            if (!ok_m[i] || !ok_s[j] || strcmp(tags_m[i], tags_s[j]) != 0) continue;
            if (tag_step(tags_m[i]) > best_step) { best_step = tag_step(tags_m[i]); *model_i = i; *state_i = j; }
        }
    }
}

int checkpoint_find_resume(const char *run_dir, char *model_path, char *state_path, size_t cap) {
    int mi, si, any;
    best_pair(run_dir, &mi, &si, &any);
    if (mi < 0) {
        if (!any) return 0;
        return attn_error("%s: holds checkpoint files but no consistent (model, state) pair; "
                          "remove the directory or train into a new one", run_dir);
    }
    snprintf(model_path, cap, "%s/%s", run_dir, model_names[mi]);
    snprintf(state_path, cap, "%s/%s", run_dir, state_names[si]);
    return 1;
}

static int is_step_name(const char *name) {
    size_t len = strlen(name);
    return strncmp(name, "step-", 5) == 0 && len >= 17 && strcmp(name + len - 12, ".safetensors") == 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int checkpoint_list_steps(const char *run_dir, char ***names, int *n) {
    DIR *d = opendir(run_dir);
    if (!d) return attn_error("%s: cannot open the run directory: %s", run_dir, strerror(errno));
    char **list = NULL;
    int count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_step_name(e->d_name)) continue;
        if (count == cap) list = realloc_check(list, sizeof(char *) * (size_t)(cap = cap ? 2 * cap : 16));
        list[count++] = strdup_check(e->d_name);
    }
    closedir(d);
    if (count > 1) qsort(list, (size_t)count, sizeof(char *), cmp_names);
    *names = list;
    *n = count;
    return 0;
}

void checkpoint_names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int checkpoint_link(const char *from, const char *to) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", to, (long)getpid());
    unlink(tmp);
    if (link(from, tmp) != 0) {
        char *data;
        size_t len;
        if (read_file(from, &data, &len) != 0) return -1;
        int rc = write_file_atomic(to, data, len);
        free(data);
        return rc;
    }
    if (rename(tmp, to) != 0) {
        int e = errno;
        unlink(tmp);
        return attn_error("%s: cannot rename into place: %s", to, strerror(e));
    }
    return 0;
}

// Keeps the current consistent pair under the "last.prev" names while the
// new pair is written.
static int keep_previous_pair(const char *run_dir) {
    int mi, si, any;
    best_pair(run_dir, &mi, &si, &any);
    if (mi < 0) return 0;
    char from[4096], to[4096];
    if (mi != 1) {
        snprintf(from, sizeof from, "%s/%s", run_dir, model_names[mi]);
        snprintf(to, sizeof to, "%s/%s", run_dir, model_names[1]);
        if (checkpoint_link(from, to) != 0) return -1;
    }
    if (si != 1) {
        snprintf(from, sizeof from, "%s/%s", run_dir, state_names[si]);
        snprintf(to, sizeof to, "%s/%s", run_dir, state_names[1]);
        if (checkpoint_link(from, to) != 0) return -1;
    }
    return 0;
}

int checkpoint_save_run(const char *run_dir, const Model *m, const Tokenizer *src_tok,
                        const Tokenizer *tgt_tok, const char *train_config,
                        const TrainState *s, const Optimizer *opt, const float *ema) {
    char path[4096];
    if (keep_previous_pair(run_dir) != 0) return -1;
    snprintf(path, sizeof path, "%s/%s", run_dir, model_names[0]);
    if (checkpoint_save_model(path, m, src_tok, tgt_tok, train_config, s->step, s->tag) != 0) return -1;
    snprintf(path, sizeof path, "%s/%s", run_dir, state_names[0]);
    return checkpoint_save_state(path, s, opt, ema);
}
