// attn tune: hyperparameter search. Each trial is an ordinary
// `attn train --config BASE --out OUT/trial_NNN --key value ...` run in a
// child process (this same binary, /proc/self/exe); the objective is read
// from the trial's metrics.jsonl. The search state (OUT/tune_state.json) is
// saved after every start and finish, so a crashed search resumes: finished
// trials are kept, interrupted ones are restarted (attn train resumes their
// run directories exactly). See docs/tune.md.
#include "cli.h"
#include "common.h"
#include "config.h"
#include "tune.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TUNE_MAX_JOBS 64

typedef struct {
    const char *config_path, *space_path, *out_dir, *metric;
    TuneSettings settings;
    int jobs, threads;
    double minutes;        // per-trial time cap (0 = none)
    int dry_run;
} TuneOptions;

typedef struct {
    pid_t pid;             // 0 when the slot is free
    TuneJob job;
    double started;
} Slot;

static void usage(void) {
    printf("usage: attn tune --config BASE --space FILE --out DIR --steps N [flags]\n\n"
           "Searches hyperparameters: every trial is `attn train --config BASE --out DIR/trial_NNN\n"
           "--KEY VALUE ...` with the trial's values. Rerun the same command to resume.\n\n"
           "  --config FILE     base training config (every key not in the space comes from it)\n"
           "  --space FILE      search space: one `KEY KIND ARGS` per line (docs/tune.md)\n"
           "  --out DIR         tune directory: trial_NNN/ runs, results.md, results.csv, best.conf\n"
           "  --method M        grid | random | sha | asha (default asha)\n"
           "  --trials N        configurations to try (default 20; grid: the whole grid)\n"
           "  --steps N         full training budget of a trial, in updates\n"
           "  --min-steps N     sha/asha: the first rung's budget (default steps / eta^2)\n"
           "  --eta N           sha/asha: keep the best 1/eta of each rung (default 3)\n"
           "  --metric NAME     objective, a key of metrics.jsonl records (default valid_loss)\n"
           "  --mode min|max    direction of the objective (default min)\n"
           "  --jobs N          trials run in parallel (default 1)\n"
           "  --threads N       threads per trial (default: cores / jobs)\n"
           "  --minutes M       time cap per trial run (max_minutes; 0 = none)\n"
           "  --seed N          sampling seed (default 1): random and asha with one seed try the same configs\n"
           "  --dry-run         print the trials' overrides (grid/random) without training\n");
}

// The flags that take a value: anything else starting with -- is unknown,
// which must be said before its next argument is taken as a missing value.
static const char *const value_flags[] = {
    "--config", "--space", "--out", "--metric", "--method", "--mode", "--trials", "--steps",
    "--min-steps", "--eta", "--jobs", "--threads", "--seed", "--minutes",
};

static int is_value_flag(const char *f) {
    for (size_t k = 0; k < sizeof value_flags / sizeof value_flags[0]; k++)
        if (!strcmp(f, value_flags[k])) return 1;
    return 0;
}

static int parse_options(int argc, char **argv, TuneOptions *o, int *help) {
    memset(o, 0, sizeof *o);
    o->metric = "valid_loss";
    o->settings.method = METHOD_ASHA;
    o->settings.n_trials = 20;
    o->settings.eta = 3;
    o->settings.seed = 1;
    o->jobs = 1;
    int trials_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        long n;
        double x;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { *help = 1; return 0; }
        if (!strcmp(f, "--dry-run")) { o->dry_run = 1; continue; }
        if (!is_value_flag(f)) return attn_error("unknown flag for tune: %s (try attn tune --help)", f);
        if (flag_value(argc, argv, &i, &v)) return -1;
        if (!*v) return attn_error("%s is empty (try attn tune --help)", f);
        if (!strcmp(f, "--config")) o->config_path = v;
        else if (!strcmp(f, "--space")) o->space_path = v;
        else if (!strcmp(f, "--out")) o->out_dir = v;
        else if (!strcmp(f, "--metric")) o->metric = v;
        else if (!strcmp(f, "--method")) { if (tune_method_parse(v, &o->settings.method)) return -1; }
        else if (!strcmp(f, "--mode")) {
            if (strcmp(v, "min") && strcmp(v, "max")) return attn_error("bad value for --mode: '%s' (min or max)", v);
            o->settings.maximize = !strcmp(v, "max");
        }
        else if (!strcmp(f, "--trials")) { if (parse_int_flag(f, v, 1, 100000, &n)) return -1; o->settings.n_trials = (int)n; trials_given = 1; }
        else if (!strcmp(f, "--steps")) { if (parse_int_flag(f, v, 1, 1000000000L, &n)) return -1; o->settings.max_steps = n; }
        else if (!strcmp(f, "--min-steps")) { if (parse_int_flag(f, v, 1, 1000000000L, &n)) return -1; o->settings.min_steps = n; }
        else if (!strcmp(f, "--eta")) { if (parse_int_flag(f, v, 2, 100, &n)) return -1; o->settings.eta = (int)n; }
        else if (!strcmp(f, "--jobs")) { if (parse_int_flag(f, v, 1, TUNE_MAX_JOBS, &n)) return -1; o->jobs = (int)n; }
        else if (!strcmp(f, "--threads")) { if (parse_int_flag(f, v, 1, 1024, &n)) return -1; o->threads = (int)n; }
        else if (!strcmp(f, "--seed")) { if (parse_int_flag(f, v, 0, 2147483647L, &n)) return -1; o->settings.seed = (uint64_t)n; }
        else if (!strcmp(f, "--minutes")) { if (parse_float_flag(f, v, 0, 1e6, &x)) return -1; o->minutes = x; }
    }
    if (!o->config_path || !o->space_path || (!o->out_dir && !o->dry_run))
        return attn_error("tune needs --config, --space and --out (try attn tune --help)");
    // Trial paths are built in 1024-byte buffers: a longer --out would be cut.
    if (o->out_dir && strlen(o->out_dir) > 900)
        return attn_error("--out is %zu bytes long, at most 900: give a shorter path", strlen(o->out_dir));
    if (o->settings.max_steps <= 0) return attn_error("tune needs --steps (the full budget of a trial, in updates)");
    if (o->settings.method == METHOD_GRID && !trials_given) o->settings.n_trials = 0;  // the whole grid
    int halving = o->settings.method == METHOD_SHA || o->settings.method == METHOD_ASHA;
    if (halving && o->settings.min_steps == 0) {
        o->settings.min_steps = o->settings.max_steps / ((long)o->settings.eta * o->settings.eta);
        if (o->settings.min_steps < 1) o->settings.min_steps = 1;
    }
    if (o->threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o->threads = cores / o->jobs > 0 ? (int)(cores / o->jobs) : 1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// checking the space against the config

// Splits "a,b,c" into the keys of a parameter; calls fn on each.
static int for_each_key(const char *keys, int (*fn)(const char *key, void *ctx), void *ctx) {
    char buf[TUNE_KEY_MAX];
    snprintf(buf, sizeof buf, "%s", keys);
    for (char *k = strtok(buf, ","); k; k = strtok(NULL, ","))
        if (fn(k, ctx)) return -1;
    return 0;
}

typedef struct { TrainConfig *cfg; const char *value; } SetCtx;

static int set_key(const char *key, void *ctx) {
    SetCtx *c = ctx;
    return config_set(c->cfg, key, c->value);
}

// Applies a trial's values on top of the base config.
static int apply_values(TrainConfig *cfg, const SearchSpace *space, TuneValue *values) {
    for (int p = 0; p < space->n; p++) {
        SetCtx c = {cfg, values[p]};
        if (for_each_key(space->params[p].keys, set_key, &c)) return -1;
    }
    return 0;
}

static int forbid_budget_key(const char *key, void *ctx) {
    (void)ctx;
    if (!strcmp(key, "max_steps") || !strcmp(key, "threads"))
        return attn_error("the search space may not set %s: tune sets it (--steps, --threads)", key);
    return 0;
}

// Every key must be a config key, and every choice and range end a value it accepts.
// attn_error() with the previous message appended.
static int wrap_error(const char *prefix1, const char *prefix2) {
    return prefix2 ? attn_error("%s: %s: %s", prefix1, prefix2, attn_last_error())
                   : attn_error("%s: %s", prefix1, attn_last_error());
}

static int check_space(const SearchSpace *space, const TrainConfig *base, const char *path) {
    for (int p = 0; p < space->n; p++) {
        const SearchParam *sp = &space->params[p];
        if (for_each_key(sp->keys, forbid_budget_key, NULL)) return wrap_error(path, NULL);
        int n_values = sp->kind == PARAM_CHOICE ? sp->n_choices : param_grid_count(sp);
        for (int i = 0; i < n_values; i++) {
            TuneValue v;
            param_grid_value(sp, i, v);
            TrainConfig cfg = *base;
            SetCtx c = {&cfg, v};
            if (for_each_key(sp->keys, set_key, &c))
                return wrap_error(path, sp->keys);
        }
    }
    return 0;
}

// ----------------------------------------------------------------------------
// files of the tune directory

static void trial_dir(const TuneOptions *o, int trial, char *out, size_t cap) {
    snprintf(out, cap, "%s/trial_%03d", o->out_dir, trial);
}

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
        return attn_error("%s: exists and is not a directory", path);
    }
    return attn_error("%s: cannot create directory: %s", path, strerror(errno));
}

static int save_text(const TuneOptions *o, const char *name, const StrBuf *sb) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", o->out_dir, name);
    return write_file_atomic(path, sb->data ? sb->data : "", sb->len);
}

static int save_state(const Tune *t, const TuneOptions *o, const char *signature) {
    StrBuf sb = {0};
    tune_state_json(t, signature, &sb);
    int rc = save_text(o, "tune_state.json", &sb);
    sb_free(&sb);
    return rc;
}

static int save_reports(const Tune *t, const TuneOptions *o, const TrainConfig *base) {
    StrBuf md = {0}, csv = {0};
    sb_printf(&md, "# attn tune: %s, %d trials, budget %ld steps", tune_method_name(t->settings.method), t->n_trials,
              t->settings.max_steps);
    if (t->n_rungs > 1) {
        sb_puts(&md, " (rungs");
        for (int k = 0; k < t->n_rungs; k++) sb_printf(&md, " %ld", t->rung_steps[k]);
        sb_printf(&md, ", eta %d)", t->settings.eta);
    }
    sb_printf(&md, "\n\nTotal training: %ld steps. Objective: %s (%s).\n\n", tune_total_steps(t), o->metric,
              t->settings.maximize ? "max" : "min");
    tune_results_markdown(t, o->metric, &md);
    tune_results_csv(t, o->metric, &csv);
    int rc = save_text(o, "results.md", &md) || save_text(o, "results.csv", &csv);
    sb_free(&md);
    sb_free(&csv);
    int best = tune_best(t);
    if (rc || best < 0) return rc;
    // The best configuration as a ready config file, with the full budget.
    TrainConfig cfg = *base;
    char steps[32];
    snprintf(steps, sizeof steps, "%ld", t->settings.max_steps);
    if (apply_values(&cfg, t->space, t->trials[best].values) || config_set(&cfg, "max_steps", steps)) return -1;
    char *text = config_to_string(&cfg);
    StrBuf conf = {0};
    sb_printf(&conf, "# best of attn tune in %s: trial %03d, %s %.6g\n", o->out_dir, best, o->metric, t->trials[best].objective);
    sb_puts(&conf, text);
    free(text);
    rc = save_text(o, "best.conf", &conf);
    sb_free(&conf);
    return rc;
}

// ----------------------------------------------------------------------------
// trial processes

// A trial killed before attn train wrote its config.conf leaves a directory
// that attn train refuses to resume (a temp file, nothing else): it never
// started, so it is emptied and removed, and the trial starts afresh.
static void clear_unstarted_dir(const char *dir) {
    char path[1024 + 512];
    snprintf(path, sizeof path, "%s/config.conf", dir);
    if (access(path, F_OK) == 0) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

// The child: output to OUT/trial_NNN.log, dies with the tuner, execs attn train.
// It holds OUT/trial_NNN.lock (flock, inherited by attn train) for its whole
// life: after a crash of the tuner, the orphaned trial gets SIGTERM and saves
// a checkpoint; the restarted trial waits on the lock until it has exited, so
// two processes never work in one run directory.
static void exec_trial(const TuneOptions *o, const Tune *t, const TuneJob *job, const char *dir) {
    char log_path[1100], lock_path[1100], steps[32], threads[32], minutes[32];
    snprintf(log_path, sizeof log_path, "%s.log", dir);
    snprintf(lock_path, sizeof lock_path, "%s.lock", dir);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int lock = open(lock_path, O_RDWR | O_CREAT, 0666);
    if (lock >= 0) while (flock(lock, LOCK_EX) != 0 && errno == EINTR) {}
    clear_unstarted_dir(dir);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
    snprintf(steps, sizeof steps, "%ld", job->steps);
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(minutes, sizeof minutes, "%g", o->minutes);
    const SearchSpace *s = t->space;
    char **argv = calloc(16 + 2 * 16 * (size_t)s->n, sizeof(char *));
    int n = 0;
    argv[n++] = "attn"; argv[n++] = "train";
    argv[n++] = "--config"; argv[n++] = (char *)o->config_path;
    argv[n++] = "--out"; argv[n++] = (char *)dir;
    argv[n++] = "--max_steps"; argv[n++] = steps;
    argv[n++] = "--threads"; argv[n++] = threads;
    if (o->minutes > 0) { argv[n++] = "--max_minutes"; argv[n++] = minutes; }
    for (int p = 0; p < s->n; p++) {
        char *keys = strdup(s->params[p].keys);
        for (char *k = strtok(keys, ","); k; k = strtok(NULL, ",")) {
            char *flag = malloc(strlen(k) + 3);
            sprintf(flag, "--%s", k);
            argv[n++] = flag;
            argv[n++] = t->trials[job->trial].values[p];
        }
    }
    argv[n] = NULL;
    execv("/proc/self/exe", argv);
    fprintf(stderr, "attn tune: cannot run /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

static int start_trial(const TuneOptions *o, const Tune *t, const TuneJob *job, Slot *slot) {
    char dir[1024];
    trial_dir(o, job->trial, dir, sizeof dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return attn_error("tune: cannot start a trial: %s", strerror(errno));
    if (pid == 0) exec_trial(o, t, job, dir);
    slot->pid = pid;
    slot->job = *job;
    slot->started = monotonic_seconds();
    printf("trial %03d: start, %ld steps (rung %d)\n", job->trial, job->steps, job->rung);
    return 0;
}

// The last non-empty line of a trial's log, for the note of a failed trial.
static void last_log_line(const char *dir, char *out, size_t cap) {
    char path[1100], *text;
    size_t len;
    out[0] = '\0';
    snprintf(path, sizeof path, "%s.log", dir);
    if (read_file(path, &text, &len)) return;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r')) text[--len] = '\0';
    char *line = strrchr(text, '\n');
    snprintf(out, cap, "%s", line ? line + 1 : text);
    for (char *p = out; *p; p++) if (*p == '|' || *p == '\t') *p = ' ';  // keeps the markdown table intact
    free(text);
}

// A trial process ended: read its objective and record the result.
static void finish_trial(const TuneOptions *o, Tune *t, const Slot *slot, int status) {
    char dir[1024], metrics[1100], note[128] = "";
    trial_dir(o, slot->job.trial, dir, sizeof dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    double objective = NAN;
    long last_step = 0;
    if (tune_read_metric(metrics, o->metric, slot->job.steps, t->settings.maximize, &objective, &last_step)) objective = NAN;
    int exited_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!exited_ok) {
        char line[100];
        last_log_line(dir, line, sizeof line);
        if (WIFSIGNALED(status)) snprintf(note, sizeof note, "killed by signal %d", WTERMSIG(status));
        else snprintf(note, sizeof note, "exit %d: %s", WEXITSTATUS(status), line);
    }
    double seconds = monotonic_seconds() - slot->started;
    tune_job_done(t, slot->job.trial, exited_ok, objective, last_step, seconds, note);
    const Trial *tr = &t->trials[slot->job.trial];
    if (tr->status == TRIAL_DONE)
        printf("trial %03d: %s %.4f at %ld steps (rung %d) [%.1f s]\n", tr->id, o->metric, objective, last_step, tr->rung, seconds);
    else
        printf("trial %03d: failed at %ld steps: %s [%.1f s]\n", tr->id, last_step, tr->note, seconds);
}

// ----------------------------------------------------------------------------
// the search loop

static int wait_for_one(const TuneOptions *o, Tune *t, Slot *slots) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) return attn_error("tune: waiting for trials: %s", strerror(errno));
    for (int s = 0; s < o->jobs; s++) {
        if (slots[s].pid != pid) continue;
        finish_trial(o, t, &slots[s], status);
        slots[s].pid = 0;
        return 0;
    }
    return 0;  // not ours (cannot happen: the tuner starts no other children)
}

// A trial whose config is invalid fails at once, without a process.
static int trial_config_ok(const Tune *t, const TrainConfig *base, const TuneJob *job, char *why, size_t cap) {
    TrainConfig cfg = *base;
    if (apply_values(&cfg, t->space, t->trials[job->trial].values) || config_validate(&cfg)) {
        snprintf(why, cap, "invalid config: %s", attn_last_error());
        return 0;
    }
    return 1;
}

static int run_search(const TuneOptions *o, Tune *t, const TrainConfig *base, const char *signature) {
    Slot slots[TUNE_MAX_JOBS] = {{0}};
    TuneJob restart[TUNE_MAX_JOBS];
    int n_restart = tune_interrupted_jobs(t, restart, TUNE_MAX_JOBS), next_restart = 0;
    if (n_restart) printf("resuming: %d interrupted trial run(s) restarted\n", n_restart);
    int running = 0, over = 0;
    for (;;) {
        while (running < o->jobs && !over) {
            TuneJob job;
            if (next_restart < n_restart) job = restart[next_restart++];
            else {
                int r = tune_next_job(t, &job);
                if (r != 1) { over = r < 0; break; }
            }
            char why[128];
            if (!trial_config_ok(t, base, &job, why, sizeof why)) {
                tune_job_done(t, job.trial, 0, NAN, 0, 0, why);
                printf("trial %03d: skipped: %s\n", job.trial, why);
                continue;
            }
            int s = 0;
            while (slots[s].pid) s++;
            if (start_trial(o, t, &job, &slots[s])) return -1;
            running++;
            if (save_state(t, o, signature)) return -1;
        }
        if (running == 0) break;  // the scheduler has nothing left
        if (wait_for_one(o, t, slots)) return -1;
        running--;
        over = 0;
        if (save_state(t, o, signature) || save_reports(t, o, base)) return -1;
    }
    return save_state(t, o, signature) || save_reports(t, o, base);
}

// Lists the configurations the search will try (their rung-0 jobs), with
// made-up results so that the scheduler runs to the end. Uses up t.
static void print_dry_run(Tune *t) {
    Tune *dry = t;
    TuneJob job;
    while (tune_next_job(dry, &job) == 1) {
        if (job.rung > 0) {  // promotions depend on results: list each configuration once
            tune_job_done(dry, job.trial, 1, (double)job.trial, job.steps, 0, "");
            continue;
        }
        printf("trial %03d:", job.trial);
        for (int p = 0; p < t->space->n; p++)  // fixed settings (one value) are the same in every trial
            if (param_grid_count(&t->space->params[p]) > 1)
                printf(" %s=%s", t->space->params[p].keys, dry->trials[job.trial].values[p]);
        printf(" (%ld steps)\n", job.steps);
        tune_job_done(dry, job.trial, 1, (double)job.trial, job.steps, 0, "");
    }
}

// Text that identifies the search: resuming with another space, base config
// or metric is refused.
static char *search_signature(const TuneOptions *o, const char *space_text, const char *base_text) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s\n%s\n%s\n%g\n", space_text, base_text, o->metric, o->minutes);
    return sb.data;
}

int cmd_tune(int argc, char **argv) {
    TuneOptions o;
    int help = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);  // progress lines reach a log file as they happen
    if (parse_options(argc, argv, &o, &help)) return -1;
    if (help) { usage(); return 0; }
    TrainConfig base;
    config_default(&base);
    if (config_load(&base, o.config_path)) return -1;
    SearchSpace space;
    if (space_load(&space, o.space_path)) return -1;
    int rc = check_space(&space, &base, o.space_path);
    Tune t;
    if (!rc) rc = tune_init(&t, &o.settings, &space);
    if (rc) { space_free(&space); return -1; }
    if (o.dry_run) {
        print_dry_run(&t);
        tune_free(&t);
        space_free(&space);
        return 0;
    }
    char *space_text = NULL, *base_text = NULL, *signature = NULL;
    size_t len;
    rc = read_file(o.space_path, &space_text, &len) || read_file(o.config_path, &base_text, &len) || make_dir(o.out_dir);
    if (!rc) {
        signature = search_signature(&o, space_text, base_text);
        char state[1100];
        snprintf(state, sizeof state, "%s/tune_state.json", o.out_dir);
        if (access(state, F_OK) == 0) {
            rc = tune_state_load(&t, state, signature);
            if (!rc) printf("resuming %s: %d trials recorded\n", state, t.n_trials);
        }
    }
    if (!rc) {
        printf("tune: %s, %d trials, %ld steps each (", tune_method_name(t.settings.method), t.settings.n_trials, t.settings.max_steps);
        for (int k = 0; k < t.n_rungs; k++) printf("%s%ld", k ? " " : "rungs ", t.rung_steps[k]);
        printf("), %d job(s) x %d thread(s), objective %s (%s)\n", o.jobs, o.threads, o.metric, t.settings.maximize ? "max" : "min");
        rc = run_search(&o, &t, &base, signature);
    }
    if (!rc) {
        int best = tune_best(&t);
        printf("total training: %ld steps\n", tune_total_steps(&t));
        if (best < 0) rc = attn_error("tune: no trial finished with a %s (see %s/results.md)", o.metric, o.out_dir);
        else printf("best: trial %03d, %s %.4f; config written to %s/best.conf, table to %s/results.md\n", best, o.metric,
                    t.trials[best].objective, o.out_dir, o.out_dir);
    }
    free(space_text); free(base_text); free(signature);
    tune_free(&t);
    space_free(&space);
    return rc;
}
