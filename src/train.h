// The training loop of `attn train`: data (generated or read, cleaned,
// split), tokenizers (learned or loaded, or restored from the checkpoint),
// batches, the model, Adam with a schedule, validation, early stopping,
// checkpoints and exact resume. docs/training.md describes the run
// directory and every behaviour a user sees.
//
// Exactness: a run resumed from its last checkpoint computes the same
// updates, bit for bit, as the run that was never stopped (same thread
// count): the checkpoint holds the weights, both Adam moments, the step, the
// dropout RNG and the data cursor, and nothing in a step depends on wall
// time or on thread scheduling.
#ifndef ATTN_TRAIN_H
#define ATTN_TRAIN_H
#include "config.h"

typedef struct {
    int progress;         // 1: live progress line (a terminal), 0: plain log lines
    int quiet;            // no log lines at all (tests), errors still returned
} TrainOptions;

// Trains into run_dir (which exists and holds config.conf). When the
// directory holds a checkpoint, resumes from its newest consistent pair.
// Returns 0 when the budget is reached, training stopped early, or it was
// interrupted (SIGINT/SIGTERM) and saved; -1 with the reason otherwise.
int train_run(const TrainConfig *cfg, const char *run_dir, const TrainOptions *opts);

#endif
