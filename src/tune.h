// Hyperparameter search: the search-space file, samplers (grid, random),
// the scheduler (one budget for grid/random; synchronous successive halving
// "sha"; asynchronous successive halving "asha"), the persistent trial table
// (for resuming a tune run) and the result tables. Running the trials as
// processes is src/cli_tune.c's job; everything here is deterministic and
// unit-tested without training anything.
//
// Search-space file (docs/tune.md): one parameter per line, `#` comments:
//   lr              loguniform 1e-4 3e-3      # a 4th number: points in a grid
//   warmup_steps    choice 0 100 400          # any text values
//   dropout_residual,dropout_attn uniform 0 0.3   # one value set on several keys
//   n_enc_layers,n_dec_layers int 1 3         # integers lo..hi inclusive
//   d_ff            logint 64 1024            # integers, log-uniform
#ifndef ATTN_TUNE_H
#define ATTN_TUNE_H
#include <stdio.h>
#include "common.h"
#include "rng.h"

#define TUNE_VALUE_MAX 64
#define TUNE_KEY_MAX 128
#define TUNE_MAX_RUNGS 16

typedef enum { PARAM_CHOICE, PARAM_UNIFORM, PARAM_LOGUNIFORM, PARAM_INT, PARAM_LOGINT } ParamKind;

typedef struct {
    char keys[TUNE_KEY_MAX];   // config key, or several separated by commas
    ParamKind kind;
    int n_choices;
    char (*choices)[TUNE_VALUE_MAX];  // PARAM_CHOICE
    double lo, hi;             // ranges
    int grid_points;           // ranges in a grid (default 3; ints: all values up to that)
} SearchParam;

typedef struct {
    int n;
    SearchParam *params;
} SearchSpace;

typedef char TuneValue[TUNE_VALUE_MAX];   // one parameter's value as config text

int space_parse(SearchSpace *s, const char *text, const char *origin);
int space_load(SearchSpace *s, const char *path);
void space_free(SearchSpace *s);
const char *param_kind_name(ParamKind k);
// Values a range takes in a grid: grid_points of them, evenly (or
// geometrically for log ranges) spaced from lo to hi, rounded for ints.
int param_grid_count(const SearchParam *p);
void param_grid_value(const SearchParam *p, int index, TuneValue out);
// Grid size (product of the per-parameter counts; capped at 1e9).
long space_grid_size(const SearchSpace *s);
// Grid point `index` (last parameter varies fastest): one value per parameter.
void space_grid_point(const SearchSpace *s, long index, TuneValue *values);
// A random point: uniform / log-uniform draws, uniform choice.
void space_sample(const SearchSpace *s, Rng *rng, TuneValue *values);

// ----------------------------------------------------------------------------
// trials and the scheduler

typedef enum { METHOD_GRID, METHOD_RANDOM, METHOD_SHA, METHOD_ASHA } TuneMethod;
typedef enum { TRIAL_NEW, TRIAL_RUNNING, TRIAL_DONE, TRIAL_FAILED } TrialStatus;

typedef struct {
    TuneMethod method;
    int n_trials;              // configurations tried (grid: at most the grid size)
    long min_steps, max_steps; // rung budgets: min_steps * eta^k, the last one max_steps
    int eta;                   // successive halving: keep the top 1/eta of a rung
    int maximize;              // objective direction
    uint64_t seed;
} TuneSettings;

typedef struct {
    int id;
    TuneValue *values;         // (space n) owned
    TrialStatus status;
    int rung;                  // rung of the running job, or of the last one finished;
                               // a DONE trial at rung k has not (yet) been promoted
    double rung_objective[TUNE_MAX_RUNGS];  // NAN when not reached
    double objective;          // at the highest rung finished (NAN if none)
    long steps;                // updates trained so far (total compute of this trial)
    double seconds;            // wall time of its runs
    char note[128];            // why it failed, if it did
} Trial;

typedef struct {
    TuneSettings settings;
    const SearchSpace *space;
    int n_rungs;
    long rung_steps[TUNE_MAX_RUNGS];
    int n_trials;              // trials created so far
    Trial *trials;             // (settings.n_trials)
} Tune;

// A job: train `trial` up to `steps` updates (rung `rung`); its run directory
// is resumed when the trial ran before.
typedef struct { int trial; int rung; long steps; } TuneJob;

// Sets up the rungs (grid/random: one rung of max_steps) and the trial table.
int tune_init(Tune *t, const TuneSettings *settings, const SearchSpace *space);
void tune_free(Tune *t);
const char *tune_method_name(TuneMethod m);
int tune_method_parse(const char *name, TuneMethod *out);

// The next job to start: returns 1 and fills job (marking the trial running),
// 0 when nothing can start until a running job finishes, -1 when the search
// is over (nothing running, nothing left).
int tune_next_job(Tune *t, TuneJob *job);
// Records a finished job: ok with its objective, or failed (a diverged or
// crashed run: it ranks last and is never promoted).
void tune_job_done(Tune *t, int trial, int ok, double objective, long steps, double seconds, const char *note);
// Trials marked running (interrupted by a crash) as jobs to restart, in id
// order; returns how many were written to jobs (at most max_jobs).
int tune_interrupted_jobs(const Tune *t, TuneJob *jobs, int max_jobs);
// 1 when a is a better result than b (failed and unfinished trials are worst).
int tune_better(const Tune *t, const Trial *a, const Trial *b);
// Sum of the trials' steps: the compute the search spent.
long tune_total_steps(const Tune *t);
// Index of the best trial, -1 when none finished.
int tune_best(const Tune *t);

// ----------------------------------------------------------------------------
// persistence and reports

// The whole state as JSON (settings, space summary, every trial); tune_state_load
// reads it back into a Tune initialized with the same settings and space, and
// fails when the file was written for different ones.
void tune_state_json(const Tune *t, const char *signature, StrBuf *out);
int tune_state_load(Tune *t, const char *path, const char *signature);
// Results sorted by the objective: a markdown table and a CSV with every
// trial's parameters, status, objective per rung, steps and seconds.
// Parameters with a single value (fixed settings) are left out.
void tune_results_markdown(const Tune *t, const char *metric, StrBuf *out);
void tune_results_csv(const Tune *t, const char *metric, StrBuf *out);

// Reads a trial's metrics.jsonl: the best value of `metric` (direction
// `maximize`) among records with step <= max_step, and the last step seen.
// Records without the metric are skipped. Returns 0 and NAN when none has it.
int tune_read_metric(const char *path, const char *metric, long max_step, int maximize,
                     double *best, long *last_step);

#endif
