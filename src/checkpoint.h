// Checkpoints (DESIGN.md section 2).
//
// A model file (`best.safetensors`, `last.safetensors`, `step-NNNNNNNN.safetensors`)
// is one complete model: the tensors of model_tensors() under their PyTorch
// names (a tied tensor is stored once, under the name it ties to, and the tie
// is recorded in the metadata), and in `__metadata__`:
//   format          "attn-checkpoint"      format_version  "1"
//   attn_version    the writer's version
//   model_config    the ModelConfig as `key = value` lines (config-file syntax)
//   train_config    the full effective training config (config-file syntax)
//   src_tokenizer   tokenizer_to_string() of the source tokenizer
//   tgt_tokenizer   the same for the target (equal text for a joint tokenizer)
//   tied            "generator.weight=tgt_embed.weight,src_embed.weight=..." or ""
//   step            optimizer updates done when it was written
//   tag             "<step>-<nonce>", shared with the training state written with it
//   data_hash       FNV-1a 64 of the tensor bytes, in file order (detects corruption)
//
// The training state (`last.state.safetensors`) lives beside `last.safetensors`:
// Adam moments as tensors "optimizer.m" / "optimizer.v" (and "ema" when an
// exponential moving average is kept), and in its metadata the step, the tag
// of the model file it belongs with, the dropout RNG, the data cursor, the
// best validation metric and the early-stopping counter.
//
// All writes are atomic (temp file, fsync, rename). A run directory is saved
// as a pair: the model file first, then the state; the previous pair is kept
// (hard links `last.prev.*`) until the new one is complete, and resuming takes
// the newest pair whose tags match, so a crash at any point between the
// writes resumes from a consistent pair, never from a mismatched one.
#ifndef ATTN_CHECKPOINT_H
#define ATTN_CHECKPOINT_H
#include <stddef.h>
#include <stdint.h>
#include "batch.h"
#include "model.h"
#include "optim.h"
#include "rng.h"
#include "tokenizer.h"

#define CHECKPOINT_FORMAT "attn-checkpoint"
#define CHECKPOINT_STATE_FORMAT "attn-train-state"
#define CHECKPOINT_VERSION 1
#define CHECKPOINT_TAG_LEN 48

// ----------------------------------------------------------------------------
// Model files

// Everything a model file says besides its weights.
typedef struct {
    ModelConfig model_config;
    Tokenizer *src_tok;        // owned; src and tgt are distinct objects even
    Tokenizer *tgt_tok;        // when the text is the same (joint vocabulary)
    char *train_config;        // owned; NULL when the file has none
    long step;
    char tag[CHECKPOINT_TAG_LEN];
    long n_params;             // floats in the file's tensors (tied counted once)
    int n_tensors;
} CheckpointInfo;

// Writes a complete model file atomically. train_config may be NULL; tag may
// be NULL (then "<step>-0").
int checkpoint_save_model(const char *path, const Model *m, const Tokenizer *src_tok,
                          const Tokenizer *tgt_tok, const char *train_config, long step,
                          const char *tag);

// The same with the tensors taken from `weights`, a buffer laid out as
// m->param_memory (an EMA of the weights, an average of checkpoints).
int checkpoint_save_model_weights(const char *path, const Model *m, const float *weights,
                                  const Tokenizer *src_tok, const Tokenizer *tgt_tok,
                                  const char *train_config, long step, const char *tag);

// Reads and checks a model file (format, version, config, tokenizers, every
// tensor's presence and shape, data hash) without creating a model.
int checkpoint_read_info(const char *path, CheckpointInfo *info);
void checkpoint_info_free(CheckpointInfo *info);

// Loads a complete model: creates `m` from the file's config with activation
// capacity (max_B, max_S, max_T) (S or T <= 0 means the config's max_len,
// B <= 0 means 1) and copies the weights in. src_tok / tgt_tok may be NULL
// when not wanted; otherwise the caller frees them with tokenizer_free.
// Errors name the file and the problem; on error nothing is left allocated.
int checkpoint_load_model(const char *path, Model *m, int max_B, int max_S, int max_T,
                          Tokenizer **src_tok, Tokenizer **tgt_tok);

// Copies a model file's weights into an existing model, which must have the
// same architecture and vocabulary sizes (resume, averaging). info may be NULL.
int checkpoint_load_weights(const char *path, Model *m, CheckpointInfo *info);

// ----------------------------------------------------------------------------
// Training state

typedef struct {
    long step;                 // optimizer updates done
    char tag[CHECKPOINT_TAG_LEN];  // must equal the model file's tag
    Rng rng;                   // the dropout RNG, as it is before step + 1
    BatchCursor cursor;        // the next training batch
    long batches_drawn;        // training batches drawn in total (each micro-batch counts)
    double best_metric;        // best validation value so far (has_best)
    int has_best;
    long best_step;
    int bad_evals;             // validations without improvement (patience)
    double elapsed_seconds;    // training time before this session
    long tokens_seen;          // target tokens trained on
    long metrics_bytes;        // length of metrics.jsonl when saved (truncated back on resume)
    char *diagnostics;         // the trainer's detector state as text (metadata "diagnostics"),
                               // NULL for none; checkpoint_load_state allocates it, the caller frees
} TrainState;

// Writes the state and the optimizer moments (and ema (n) when not NULL) atomically.
int checkpoint_save_state(const char *path, const TrainState *s, const Optimizer *opt,
                          const float *ema);
// Reads them back into s, opt (already initialized with the right n) and ema
// (when not NULL; fails if the file has none). Checks format, version and sizes.
int checkpoint_load_state(const char *path, TrainState *s, Optimizer *opt, float *ema);

// ----------------------------------------------------------------------------
// Run directories

// Saves RUN_DIR/last.safetensors and RUN_DIR/last.state.safetensors as a
// consistent pair (see the top of this file), both carrying s->tag.
int checkpoint_save_run(const char *run_dir, const Model *m, const Tokenizer *src_tok,
                        const Tokenizer *tgt_tok, const char *train_config,
                        const TrainState *s, const Optimizer *opt, const float *ema);

// Finds the newest consistent (model, state) pair in run_dir. Returns 1 and
// fills the paths (each of `cap` bytes) when one exists, 0 when the directory
// holds no checkpoint at all, -1 (with the reason) when it holds files but no
// consistent pair.
int checkpoint_find_resume(const char *run_dir, char *model_path, char *state_path, size_t cap);

// The step-N checkpoint names (`step-NNNNNNNN.safetensors`, no directory) of
// run_dir, oldest first (the zero-padded names sort by step). The caller
// frees them with checkpoint_names_free. Fails when run_dir cannot be read.
int checkpoint_list_steps(const char *run_dir, char ***names, int *n);
void checkpoint_names_free(char **names, int n);

// Makes `to` another name of the file `from`, atomically: a hard link through
// a temp name (a copy where the file system has no hard links). Later atomic
// rewrites of `from` replace its name, so `to` keeps the old content.
int checkpoint_link(const char *from, const char *to);

// A fresh random tag for step `step`.
void checkpoint_make_tag(char tag[CHECKPOINT_TAG_LEN], long step);

#endif
