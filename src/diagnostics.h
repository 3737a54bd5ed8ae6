// Training diagnostics: the detectors that turn the known ways a Transformer
// run fails (NaN/Inf, exploding gradients, loss spikes, vanishing gradients,
// overfitting) into one plain message and an action the training loop obeys,
// and per-layer statistics for the metrics file.
//
// The library knows tensors only as TensorViews (src/model.h), so it is tested
// on synthetic buffers as well as on a real model. The training loop calls:
//
//   diag_init(&d, &cfg, param_views, grad_views, n_tensors);     // once
//   loop:
//     loss = model_forward(...); model_backward(...);
//     action = diag_check_step(&d, step, loss, &res);           // one pass over the grads
//     STOP: save nothing, diag_save_batch(RUN_DIR/nan_batch.json), fail with res.message
//     SKIP: zero the grads, do not update, go on
//     SCALE_LR: go on; the rate is schedule_lr() * diag_lr_multiplier(&d)
//     WARN: print res.message, go on
//     if (diag_stats_due(&d, step)) diag_snapshot_params(&d);   // before the update
//     optimizer step (it may use res.grad_norm for clipping: no second pass)
//     if (diag_stats_due(&d, step)) diag_layer_stats_json(&d, step, &line);
//   after each validation: diag_observe_eval(&d, step, train_loss, valid_loss, &res)
#ifndef ATTN_DIAGNOSTICS_H
#define ATTN_DIAGNOSTICS_H
#include "common.h"
#include "model.h"

// Ordered by severity: when several detectors fire in one step, the most
// severe action wins and the messages are joined.
typedef enum { DIAG_OK = 0, DIAG_WARN = 1, DIAG_SCALE_LR = 2, DIAG_SKIP = 3, DIAG_STOP = 4 } DiagAction;

#define DIAG_WINDOW_MAX 1024
#define DIAG_MESSAGE_MAX 768

typedef struct {
    // NaN/Inf in the loss or any gradient: DIAG_STOP or DIAG_SKIP.
    DiagAction nan_action;
    // Loss spike / gradient explosion: a z-score above spike_zscore against
    // the last spike_window values (after spike_min_count of them). Action
    // DIAG_OK (off), DIAG_WARN, DIAG_SKIP or DIAG_SCALE_LR.
    DiagAction spike_action;
    double spike_zscore;
    int spike_window;
    int spike_min_count;
    double lr_scale_factor;    // SCALE_LR multiplies the rate by this (0.5)
    int max_consecutive_skips; // this many skipped steps in a row -> DIAG_STOP
    // Vanishing gradients: a layer group whose gradient norm stays below
    // vanish_ratio times the median group norm for vanish_patience checks.
    double vanish_ratio;       // 0 disables
    int vanish_patience;
    // Overfitting: after overfit_patience evaluations without a new best
    // valid loss, valid loss above its best by overfit_min_rise (relative)
    // while train loss is below its value at the best eval.
    int overfit_patience;      // 0 disables
    double overfit_min_rise;
    // Per-layer statistics every stats_every steps (0 = off).
    int stats_every;
} DiagConfig;

// Sliding-window mean/std of a scalar series (llm.c's outlier detector).
typedef struct {
    double values[DIAG_WINDOW_MAX];
    int window, count, next;   // capacity in use, values held, ring position
    double mean, std;          // of the window before the last push (NaN while warming up)
    int n;                     // values that mean and std are over
} ZScore;

typedef struct {
    DiagAction action;
    char message[DIAG_MESSAGE_MAX];  // empty for DIAG_OK
    double grad_norm;          // global L2 norm of all gradients (NaN if non-finite)
    double loss_z, grad_z;     // z-scores of this step (NaN while warming up)
    int bad_tensor;            // index of the first non-finite gradient tensor, -1 if none
    long bad_index;            // element index inside it
    int overfitting;           // diag_observe_eval: 1 when the overfit signal is on
    int evals_since_best;      // diag_observe_eval: evaluations without a new best
} DiagResult;

typedef struct {
    DiagConfig cfg;
    int n_tensors;
    TensorView *params;        // (n_tensors) views, NULL when not given
    TensorView *grads;         // (n_tensors)
    int *tensor_group;         // (n_tensors) group of each tensor
    int n_groups;
    char (*group_names)[64];   // (n_groups) e.g. "encoder.layers.0", "src_embed"
    double *tensor_sumsq;      // (n_tensors) gradient sum of squares of the last check
    double *group_grad_norm;   // (n_groups)
    double *group_scratch;     // (n_groups) for the median
    double *group_weight_sq;   // (n_groups) layer statistics scratch
    double *group_update_sq;   // (n_groups)
    int *group_low_steps;      // (n_groups) consecutive checks below the vanish ratio
    float *param_snapshot;     // (sum numel) parameters before the update, for update ratios
    int snapshot_valid;
    ZScore loss_stats, grad_stats;
    int consecutive_skips;
    double lr_multiplier;
    // overfitting
    double best_valid, train_at_best;
    long best_step;
    int evals_since_best, n_evals, overfit_reported;
} Diag;

void diag_config_default(DiagConfig *cfg);
// Names <-> actions for config files: "ok"/"off", "warn", "scale_lr", "skip", "stop".
const char *diag_action_name(DiagAction a);
int diag_action_parse(const char *name, DiagAction *out);

// Copies the views (not the data). `params` may be NULL (no weight norms or
// update ratios then). Tensors are grouped by layer from their names.
int diag_init(Diag *d, const DiagConfig *cfg, const TensorView *params,
              const TensorView *grads, int n_tensors);
void diag_free(Diag *d);

// After backward: one pass over the gradients (global and per-tensor norms,
// NaN/Inf), then the loss and gradient-norm z-scores and the vanishing check.
// Returns the action (also in res->action) with res->message filled.
DiagAction diag_check_step(Diag *d, long step, float loss, DiagResult *res);
// The rate factor that SCALE_LR actions accumulated (1 until one fires).
double diag_lr_multiplier(const Diag *d);

// The detector state that can change later updates (the rate multiplier,
// consecutive skips, the spike windows) as one line of text for the
// training state, so a resumed run judges spikes as the unbroken one would
// (a new string; the caller frees it). diag_state_restore reads it back
// into a Diag made with the same config; origin names the file in errors.
char *diag_state_text(const Diag *d);
int diag_state_restore(Diag *d, const char *text, const char *origin);

// Per-layer statistics: due every cfg.stats_every steps.
int diag_stats_due(const Diag *d, long step);
// Copies the parameters before the optimizer step, for update/weight ratios.
void diag_snapshot_params(Diag *d);
// Appends one JSON object (no newline) with, per layer group, the gradient
// norm, weight norm and ||update|| / ||weight|| (when a snapshot was taken
// this step). Uses the gradient norms of the last diag_check_step.
void diag_layer_stats_json(Diag *d, long step, StrBuf *out);
// Appends "name": {"mean":.., "std":.., "max_abs":..} for each activation view.
void diag_activation_stats_json(const TensorView *acts, int n, StrBuf *out);
// Mean entropy (nats) of the attention rows of probs (rows, S); rows whose
// probabilities sum to less than 0.5 (fully masked) are left out.
double diag_attention_entropy(const float *probs, long rows, int S);

// Statistics of the last forward's activations (call after model_forward;
// backward leaves them intact), over non-pad positions only: one JSON object
// {"type":"activation_stats","step":..,"sublayers":{"encoder.layers.0.self_attn":
// {"mean":..,"std":..,"max_abs":..}, ... ".ffn", ".out"; decoder also ".cross_attn"},
// "attention_entropy":{"encoder.layers.0.self_attn":nats, ...}}. Sublayer
// outputs are taken before the residual add (after residual dropout in training).
void diag_model_activations_json(const Model *m, long step, StrBuf *out);

// After each validation: the overfitting signal (res->overfitting, with a
// DIAG_WARN message the first time it turns on) and res->evals_since_best.
DiagAction diag_observe_eval(Diag *d, long step, double train_loss, double valid_loss, DiagResult *res);

// Saves a batch (ids, shapes) as JSON, atomically, so a failing step can be
// replayed: {"B":..,"S":..,"T":..,"src":[[..]..],"tgt_in":..,"tgt_out":..}.
int diag_save_batch(const char *path, const Batch *b);

// The layer group of a tensor name: "transformer.encoder.layers.3.norm1.weight"
// -> "encoder.layers.3", "transformer.decoder.norm.bias" -> "decoder.norm",
// "src_embed.weight" -> "src_embed".
void diag_group_name(const char *tensor_name, char *out, size_t out_size);

// Z-score of x against the window's values before adding x (NaN while fewer
// than min_count values are held), then adds x.
void zscore_init(ZScore *z, int window);
double zscore_push(ZScore *z, double x, int min_count);

#endif
