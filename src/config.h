// The training configuration: every option of `attn train`, with a default
// that works, read from a config file and overridden from the command line.
//
// File format (docs/training.md): one `key = value` per line; blank lines
// and `#` comments (a `#` at the start of a line or after a space) are
// ignored; a value may be double-quoted to keep spaces or a `#`. Keys are the
// names of config_dump(); an unknown key, a repeated key or a bad value is a
// one-line error naming the file and line. The same syntax is used for the
// config saved in the run directory and in every checkpoint.
#ifndef ATTN_CONFIG_H
#define ATTN_CONFIG_H
#include <stdint.h>
#include <stdio.h>
#include "model.h"
#include "optim.h"
#include "schedule.h"

#define CONFIG_PATH_MAX 512
#define CONFIG_NAME_MAX 32

typedef struct {
    // task and data
    char task[CONFIG_NAME_MAX];          // copy | reverse | tsv
    char train[CONFIG_PATH_MAX];         // tsv: training pairs (src<TAB>tgt)
    char valid[CONFIG_PATH_MAX];         // tsv: validation pairs; "" = hold out valid_size from train
    double valid_size;                   // pairs (>= 1) or fraction (< 1) held out when valid is ""
    int clean_max_tokens;                // drop pairs with a side over this many words (0 = off)
    double clean_max_ratio;              // drop pairs whose word-length ratio exceeds this (0 = off)
    int dedup;                           // drop exact duplicate pairs
    int lowercase;                       // lowercase both sides
    // generated copy / reverse task
    int copy_symbols;                    // alphabet size (letters, then digits)
    int copy_min_len, copy_max_len;      // sequence lengths, in symbols
    int copy_train_size, copy_valid_size;
    // tokenizers
    char src_tokenizer[CONFIG_NAME_MAX]; // char | word | bpe
    char tgt_tokenizer[CONFIG_NAME_MAX];
    int joint_vocab;                     // one tokenizer learned from both sides (needs equal types)
    int src_vocab_size, tgt_vocab_size;  // caps (BPE: merge target); 0 = no cap (char/word)
    int tokenizer_min_frequency;
    double bpe_dropout;                  // BPE-dropout rate on the training data, per epoch (0 = off)
    char src_tokenizer_file[CONFIG_PATH_MAX];  // load instead of learning ("" = learn)
    char tgt_tokenizer_file[CONFIG_PATH_MAX];
    // batching
    int batch_tokens;                    // cap on padded tokens per batch side (0 = none)
    int batch_sentences;                 // cap on sentences per batch (0 = none)
    int max_len;                         // longest sequence in tokens incl. </s>; longer pairs are dropped
    // model (src_vocab / tgt_vocab come from the tokenizers)
    ModelConfig model;
    // optimization
    OptimizerType optimizer;
    double lr;                           // peak rate (inverse_sqrt, cosine, constant)
    double lr_scale;                     // noam's scale factor
    double min_lr;                       // cosine floor
    ScheduleType schedule;
    long warmup_steps;
    long decay_steps;                    // cosine: steps to reach min_lr (0 = max_steps)
    double beta1, beta2, eps;
    double weight_decay;
    double label_smoothing;
    double clip_norm;                    // global-norm clipping (0 = off)
    int accum_steps;                     // batches per update
    double ema_decay;                    // weight EMA kept and saved as ema.safetensors (0 = off)
    // budget and loop
    long max_steps;                      // 0 = no step limit
    int max_epochs;                      // 0 = no epoch limit
    double max_minutes;                  // 0 = no time limit
    long valid_every;                    // steps between validations (0 = only at the end)
    long log_every;                      // steps between log lines / metrics.jsonl records
    long save_every;                     // steps between last.safetensors saves (0 = at validations)
    int keep_last;                       // step-N checkpoints kept (0 = none)
    int patience;                        // validations without improvement before stopping (0 = off)
    char best_metric[CONFIG_NAME_MAX];   // loss | ppl | acc | exact | bleu | chrf | wer | per
    char decode_metric[CONFIG_NAME_MAX]; // none | bleu | chrf | g2p: decode the validation set at each validation
    int decode_beam;                     // beam size of that decoding (1 = greedy)
    int decode_max_sentences;            // decode at most this many validation sources (0 = all)
    double target_metric;                // stop when best_metric reaches this (0 = off)
    uint64_t seed;
    int threads;                         // 0 = all cores
    char matmul[CONFIG_NAME_MAX];        // fp32 | bf16 (inputs rounded to bfloat16, float32 sums and weights)
    // diagnostics (src/diagnostics.h, docs/debugging.md)
    char nan_action[CONFIG_NAME_MAX];    // stop | skip: a NaN/Inf loss or gradient
    char spike_action[CONFIG_NAME_MAX];  // off | warn | skip | scale_lr: loss spike, gradient explosion
    double spike_zscore;                 // outlier threshold in standard deviations
    long stats_every;                    // per-layer statistics every N steps (0 = off)
    int overfit_batch;                   // train on the first batch only (attn train --overfit-batch)
    double overfit_loss;                 // --overfit-batch: stop (pass) below this loss
} TrainConfig;

void config_default(TrainConfig *cfg);

// Sets one key from its text value. Errors: "unknown config key 'k'" (with a
// hint) or "bad value for k: ...". Dashes in the key are read as underscores.
int config_set(TrainConfig *cfg, const char *key, const char *value);
// Reads a config file on top of cfg (errors "FILE:LINE: ...").
int config_load(TrainConfig *cfg, const char *path);
// Refuses a "key value" text that is not text: a NUL byte, or invalid UTF-8
// (named by line, before a parse error could echo the broken bytes).
int config_check_text(const char *path, const char *text, size_t len);
// Parses config text on top of cfg (`origin` names it in errors).
int config_parse(TrainConfig *cfg, const char *text, const char *origin);
// Cross-key checks (budget set, metric known, model consistent, ...).
int config_validate(const TrainConfig *cfg);

// The whole effective config in file syntax, grouped with comments; the
// caller frees the string. config_parse of it gives back the same config.
char *config_to_string(const TrainConfig *cfg);
// Value of one key as text (into buf); -1 for an unknown key.
int config_get(const TrainConfig *cfg, const char *key, char *buf, size_t cap);
// 1 when the key only steers the run (budget, logging, threads), so that it
// may change when a run directory is resumed.
int config_key_is_run_control(const char *key);
// The first key whose value differs between a and b (NULL when equal),
// ignoring run-control keys when skip_run_control.
const char *config_first_difference(const TrainConfig *a, const TrainConfig *b, int skip_run_control);

// The model part alone (the checkpoint's `model_config`): text and back.
// The reader accepts exactly the keys the writer writes.
char *model_config_to_string(const ModelConfig *mc);
int model_config_from_string(ModelConfig *mc, const char *text, const char *origin);

#endif
