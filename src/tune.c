// Hyperparameter search: space, samplers, scheduler, state, tables (tune.h).
#include "tune.h"
#include "config.h"
#include "json.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// search-space file

static const char *const kind_names[] = {"choice", "uniform", "loguniform", "int", "logint"};

const char *param_kind_name(ParamKind k) { return kind_names[k]; }

// Splits a line in place into whitespace-separated words; returns the count.
static int split_words(char *line, char **words, int max_words) {
    int n = 0;
    char *p = line;
    while (*p) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        if (n == max_words) return max_words + 1;
        words[n++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = '\0';
    }
    return n;
}

static int parse_number(const char *s, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return (errno || end == s || *end || !isfinite(*out)) ? -1 : 0;
}

static int parse_range(SearchParam *p, char **words, int n_words, const char *where) {
    if (n_words != 4 && n_words != 5)
        return attn_error("%s: %s needs 'lo hi' and an optional number of grid points", where, kind_names[p->kind]);
    if (parse_number(words[2], &p->lo) || parse_number(words[3], &p->hi))
        return attn_error("%s: bad range '%s %s' (numbers expected)", where, words[2], words[3]);
    if (!(p->lo <= p->hi)) return attn_error("%s: empty range: %g > %g", where, p->lo, p->hi);
    if ((p->kind == PARAM_LOGUNIFORM || p->kind == PARAM_LOGINT) && p->lo <= 0)
        return attn_error("%s: a log range needs lo > 0, got %g", where, p->lo);
    if ((p->kind == PARAM_INT || p->kind == PARAM_LOGINT) && (p->lo != floor(p->lo) || p->hi != floor(p->hi)))
        return attn_error("%s: an int range needs integer bounds, got %g %g", where, p->lo, p->hi);
    p->grid_points = 3;
    if (n_words == 5) {
        double g;
        if (parse_number(words[4], &g) || g < 1 || g > 1000 || g != floor(g))
            return attn_error("%s: grid points must be an integer in [1, 1000], got '%s'", where, words[4]);
        p->grid_points = (int)g;
    }
    return 0;
}

static int parse_param_line(SearchParam *p, char *line, const char *where) {
    char *words[260];
    int n = split_words(line, words, 258);
    if (n < 3) return attn_error("%s: expected 'KEY KIND VALUES...'", where);
    if (n > 258) return attn_error("%s: more than 256 choices", where);
    if (strlen(words[0]) >= TUNE_KEY_MAX) return attn_error("%s: key too long", where);
    for (const char *c = words[0]; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '-' || *c == ','))
            return attn_error("%s: bad key '%s' (config keys, comma-separated)", where, words[0]);
    strcpy(p->keys, words[0]);
    int k = 0;
    while (k < 5 && strcmp(words[1], kind_names[k]) != 0) k++;
    if (k == 5) return attn_error("%s: unknown kind '%s' (choice, uniform, loguniform, int, logint)", where, words[1]);
    p->kind = (ParamKind)k;
    if (p->kind != PARAM_CHOICE) return parse_range(p, words, n, where);
    p->n_choices = n - 2;
    p->choices = malloc_check(sizeof *p->choices * p->n_choices);
    for (int i = 0; i < p->n_choices; i++) {
        if (strlen(words[2 + i]) >= TUNE_VALUE_MAX) return attn_error("%s: choice '%s' too long", where, words[2 + i]);
        strcpy(p->choices[i], words[2 + i]);
    }
    return 0;
}

int space_parse(SearchSpace *s, const char *text, const char *origin) {
    memset(s, 0, sizeof *s);
    char *copy = strdup_check(text);
    char *line = copy;
    int line_no = 0, rc = 0;
    while (line && !rc) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (*p) {
            char where[600];
            snprintf(where, sizeof where, "%s:%d", origin, line_no);
            s->params = realloc_check(s->params, sizeof *s->params * (s->n + 1));
            SearchParam *param = &s->params[s->n++];
            memset(param, 0, sizeof *param);
            rc = parse_param_line(param, p, where);
            for (int i = 0; i < s->n - 1 && !rc; i++)
                if (!strcmp(s->params[i].keys, param->keys))
                    rc = attn_error("%s: '%s' appears twice", where, param->keys);
        }
        line = next;
    }
    free(copy);
    if (!rc && s->n == 0) rc = attn_error("%s: no parameters to search", origin);
    if (rc) space_free(s);
    return rc;
}

int space_load(SearchSpace *s, const char *path) {
    char *text;
    size_t len;
    if (read_file(path, &text, &len)) return -1;
    if (config_check_text(path, text, len) != 0) { free(text); return -1; }
    int rc = space_parse(s, text, path);
    free(text);
    return rc;
}

void space_free(SearchSpace *s) {
    for (int i = 0; i < s->n; i++) free(s->params[i].choices);
    free(s->params);
    memset(s, 0, sizeof *s);
}

// ----------------------------------------------------------------------------
// samplers

static int is_int_kind(ParamKind k) { return k == PARAM_INT || k == PARAM_LOGINT; }
static int is_log_kind(ParamKind k) { return k == PARAM_LOGUNIFORM || k == PARAM_LOGINT; }

static void format_value(const SearchParam *p, double x, TuneValue out) {
    if (is_int_kind(p->kind)) snprintf(out, TUNE_VALUE_MAX, "%.0f", x);
    else snprintf(out, TUNE_VALUE_MAX, "%.4g", x);  // 4 digits: enough to tell trials apart, short in tables
}

int param_grid_count(const SearchParam *p) {
    if (p->kind == PARAM_CHOICE) return p->n_choices;
    if (p->lo == p->hi) return 1;
    if (p->kind == PARAM_INT && p->hi - p->lo + 1 <= p->grid_points) return (int)(p->hi - p->lo + 1);
    return p->grid_points;
}

void param_grid_value(const SearchParam *p, int index, TuneValue out) {
    if (p->kind == PARAM_CHOICE) { strcpy(out, p->choices[index]); return; }
    int n = param_grid_count(p);
    double f = n > 1 ? (double)index / (n - 1) : 0.0;
    double x = is_log_kind(p->kind) ? p->lo * pow(p->hi / p->lo, f) : p->lo + f * (p->hi - p->lo);
    if (is_int_kind(p->kind)) x = round(x);
    format_value(p, x, out);
}

long space_grid_size(const SearchSpace *s) {
    long size = 1;
    for (int i = 0; i < s->n; i++) {
        size *= param_grid_count(&s->params[i]);
        if (size > 1000000000L) return 1000000000L;
    }
    return size;
}

void space_grid_point(const SearchSpace *s, long index, TuneValue *values) {
    for (int i = s->n - 1; i >= 0; i--) {
        int count = param_grid_count(&s->params[i]);
        param_grid_value(&s->params[i], (int)(index % count), values[i]);
        index /= count;
    }
}

void space_sample(const SearchSpace *s, Rng *rng, TuneValue *values) {
    for (int i = 0; i < s->n; i++) {
        const SearchParam *p = &s->params[i];
        if (p->kind == PARAM_CHOICE) { strcpy(values[i], p->choices[rng_below(rng, (uint32_t)p->n_choices)]); continue; }
        double u = rng_uniform_double(rng), x;
        switch (p->kind) {
        case PARAM_UNIFORM: x = p->lo + u * (p->hi - p->lo); break;
        case PARAM_LOGUNIFORM: x = exp(log(p->lo) + u * (log(p->hi) - log(p->lo))); break;
        case PARAM_INT: x = p->lo + (double)rng_below(rng, (uint32_t)(p->hi - p->lo + 1)); break;
        default:  // PARAM_LOGINT: log-uniform over [lo, hi + 1), floored
            x = floor(exp(log(p->lo) + u * (log(p->hi + 1) - log(p->lo))));
            if (x > p->hi) x = p->hi;
        }
        format_value(p, x, values[i]);
    }
}

// ----------------------------------------------------------------------------
// trials and the scheduler

static const char *const method_names[] = {"grid", "random", "sha", "asha"};
static const char *const status_names[] = {"new", "running", "done", "failed"};

const char *tune_method_name(TuneMethod m) { return method_names[m]; }

int tune_method_parse(const char *name, TuneMethod *out) {
    for (int m = 0; m < 4; m++)
        if (!strcmp(name, method_names[m])) { *out = (TuneMethod)m; return 0; }
    return attn_error("unknown search method '%s' (grid, random, sha or asha)", name);
}

int tune_init(Tune *t, const TuneSettings *settings, const SearchSpace *space) {
    memset(t, 0, sizeof *t);
    const TuneSettings *st = settings;
    if (st->max_steps <= 0) return attn_error("tune: the step budget must be positive");
    int halving = st->method == METHOD_SHA || st->method == METHOD_ASHA;
    if (halving && (st->min_steps <= 0 || st->min_steps > st->max_steps))
        return attn_error("tune: min steps must be in [1, max steps=%ld], got %ld", st->max_steps, st->min_steps);
    if (halving && (st->eta < 2 || st->eta > 100)) return attn_error("tune: eta must be in [2, 100], got %d", st->eta);
    t->settings = *st;
    t->space = space;
    long grid = space_grid_size(space);
    if (st->method == METHOD_GRID) {
        if (t->settings.n_trials <= 0 || t->settings.n_trials > grid) t->settings.n_trials = (int)(grid < 100000 ? grid : 100000);
    } else if (st->n_trials <= 0 || st->n_trials > 100000) {
        return attn_error("tune: the number of trials must be in [1, 100000], got %d", st->n_trials);
    }
    if (halving) {
        long b = st->min_steps;
        while (b < st->max_steps && t->n_rungs < TUNE_MAX_RUNGS - 1) {
            t->rung_steps[t->n_rungs++] = b;
            b *= st->eta;
        }
    }
    t->rung_steps[t->n_rungs++] = st->max_steps;
    t->trials = calloc_check(t->settings.n_trials, sizeof(Trial));
    return 0;
}

void tune_free(Tune *t) {
    for (int i = 0; i < t->n_trials; i++) free(t->trials[i].values);
    free(t->trials);
    memset(t, 0, sizeof *t);
}

// Trial i's values depend only on the seed and i (not on the order trials
// ran), so random and ASHA with the same seed try the same configurations.
static void create_trial(Tune *t) {
    Trial *tr = &t->trials[t->n_trials];
    tr->id = t->n_trials++;
    tr->values = calloc_check(t->space->n, sizeof(TuneValue));
    tr->objective = NAN;
    for (int k = 0; k < TUNE_MAX_RUNGS; k++) tr->rung_objective[k] = NAN;
    if (t->settings.method == METHOD_GRID) {
        space_grid_point(t->space, tr->id, tr->values);
    } else {
        Rng rng;
        rng_seed(&rng, t->settings.seed * 1000003ULL + (uint64_t)tr->id);
        space_sample(t->space, &rng, tr->values);
    }
}

static int better_value(const Tune *t, double a, double b) {
    if (isnan(a)) return 0;
    if (isnan(b)) return 1;
    return t->settings.maximize ? a > b : a < b;
}

int tune_better(const Tune *t, const Trial *a, const Trial *b) {
    return better_value(t, a->objective, b->objective);
}

static int start_job(Tune *t, int trial, int rung, TuneJob *job) {
    t->trials[trial].status = TRIAL_RUNNING;
    t->trials[trial].rung = rung;
    job->trial = trial;
    job->rung = rung;
    job->steps = t->rung_steps[rung];
    return 1;
}

static int count_running(const Tune *t) {
    int n = 0;
    for (int i = 0; i < t->n_trials; i++) n += t->trials[i].status == TRIAL_RUNNING;
    return n;
}

// Results recorded at rung k: finished there (objective) or failed there.
static int results_at_rung(const Tune *t, int k) {
    int n = 0;
    for (int i = 0; i < t->n_trials; i++) {
        const Trial *tr = &t->trials[i];
        n += !isnan(tr->rung_objective[k]) || (tr->status == TRIAL_FAILED && tr->rung == k);
    }
    return n;
}

// How many rung-k results are better than trial c's.
static int rank_at_rung(const Tune *t, int k, const Trial *c) {
    int rank = 0;
    for (int i = 0; i < t->n_trials; i++)
        rank += better_value(t, t->trials[i].rung_objective[k], c->rung_objective[k]);
    return rank;
}

// The best trial finished at rung k and not promoted yet, -1 if none.
static int best_waiting_at_rung(const Tune *t, int k) {
    int best = -1;
    for (int i = 0; i < t->n_trials; i++) {
        const Trial *tr = &t->trials[i];
        if (tr->status != TRIAL_DONE || tr->rung != k) continue;
        if (best < 0 || better_value(t, tr->rung_objective[k], t->trials[best].rung_objective[k])) best = i;
    }
    return best;
}

// Trials that ever entered rung k (running, finished or failed there or above).
static int entered_rung(const Tune *t, int k) {
    if (k == 0) return t->n_trials;
    int n = 0;
    for (int i = 0; i < t->n_trials; i++) n += t->trials[i].rung >= k && t->trials[i].status != TRIAL_NEW;
    return n;
}

// ASHA (Li et al. 2018): promote a trial in the top 1/eta of its rung's
// results so far, highest rung first; otherwise start a new trial.
static int next_asha(Tune *t, TuneJob *job) {
    for (int k = t->n_rungs - 2; k >= 0; k--) {
        int c = best_waiting_at_rung(t, k);
        if (c < 0) continue;
        if (rank_at_rung(t, k, &t->trials[c]) < results_at_rung(t, k) / t->settings.eta)
            return start_job(t, c, k + 1, job);
    }
    if (t->n_trials < t->settings.n_trials) { create_trial(t); return start_job(t, t->n_trials - 1, 0, job); }
    if (count_running(t)) return 0;
    // The end: every configuration sampled, nothing running. With few trials
    // a rung may hold fewer than eta results and promote nobody; as in
    // synchronous halving, each rung sends at least its best on, so the
    // search always ends with a trial trained on the full budget.
    for (int k = 0; k < t->n_rungs - 1; k++) {
        int quota = results_at_rung(t, k) / t->settings.eta;
        if (quota < 1) quota = 1;
        int c = best_waiting_at_rung(t, k);
        if (c >= 0 && entered_rung(t, k + 1) < quota) return start_job(t, c, k + 1, job);
    }
    return -1;
}

// Synchronous successive halving: all trials at rung 0; when a rung is
// complete, the top max(1, n/eta) of it go on to the next rung.
static int next_sha(Tune *t, TuneJob *job) {
    if (t->n_trials < t->settings.n_trials) { create_trial(t); return start_job(t, t->n_trials - 1, 0, job); }
    for (int k = 0; k < t->n_rungs - 1; k++) {
        for (int i = 0; i < t->n_trials; i++)
            if (t->trials[i].status == TRIAL_RUNNING && t->trials[i].rung == k) return 0;
        int quota = entered_rung(t, k) / t->settings.eta;
        if (quota < 1) quota = 1;
        if (entered_rung(t, k + 1) >= quota) continue;
        int c = best_waiting_at_rung(t, k);
        if (c >= 0) return start_job(t, c, k + 1, job);
    }
    return count_running(t) ? 0 : -1;
}

int tune_next_job(Tune *t, TuneJob *job) {
    switch (t->settings.method) {
    case METHOD_ASHA: return next_asha(t, job);
    case METHOD_SHA: return next_sha(t, job);
    default:
        if (t->n_trials < t->settings.n_trials) { create_trial(t); return start_job(t, t->n_trials - 1, 0, job); }
        return count_running(t) ? 0 : -1;
    }
}

void tune_job_done(Tune *t, int trial, int ok, double objective, long steps, double seconds, const char *note) {
    Trial *tr = &t->trials[trial];
    tr->steps = steps;
    tr->seconds += seconds;
    snprintf(tr->note, sizeof tr->note, "%s", note ? note : "");
    if (ok && !isnan(objective)) {
        tr->status = TRIAL_DONE;
        tr->rung_objective[tr->rung] = objective;
        tr->objective = objective;
    } else {
        tr->status = TRIAL_FAILED;
        if (!tr->note[0]) snprintf(tr->note, sizeof tr->note, "no objective in the metrics");
    }
}

int tune_interrupted_jobs(const Tune *t, TuneJob *jobs, int max_jobs) {
    int n = 0;
    for (int i = 0; i < t->n_trials && n < max_jobs; i++) {
        if (t->trials[i].status != TRIAL_RUNNING) continue;
        jobs[n].trial = i;
        jobs[n].rung = t->trials[i].rung;
        jobs[n].steps = t->rung_steps[t->trials[i].rung];
        n++;
    }
    return n;
}

long tune_total_steps(const Tune *t) {
    long total = 0;
    for (int i = 0; i < t->n_trials; i++) total += t->trials[i].steps;
    return total;
}

int tune_best(const Tune *t) {
    int best = -1;
    for (int i = 0; i < t->n_trials; i++)
        if (!isnan(t->trials[i].objective) && (best < 0 || tune_better(t, &t->trials[i], &t->trials[best]))) best = i;
    return best;
}

// ----------------------------------------------------------------------------
// state file

// FNV-1a over the settings and the caller's signature (space text, base
// config, metric): a resumed run must be the same search.
static uint64_t settings_hash(const Tune *t, const char *signature) {
    char buf[256];
    const TuneSettings *s = &t->settings;
    snprintf(buf, sizeof buf, "%d %d %ld %ld %d %d %llu|", s->method, s->n_trials, s->min_steps, s->max_steps,
             s->eta, s->maximize, (unsigned long long)s->seed);
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = buf; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = signature; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static void append_double(StrBuf *out, double x) {
    if (isfinite(x)) sb_printf(out, "%.17g", x); else sb_puts(out, "null");
}

void tune_state_json(const Tune *t, const char *signature, StrBuf *out) {
    sb_printf(out, "{\"signature\":\"%016llx\",\"method\":\"%s\",\"n_trials\":%d,\"trials\":[",
              (unsigned long long)settings_hash(t, signature), method_names[t->settings.method], t->settings.n_trials);
    for (int i = 0; i < t->n_trials; i++) {
        const Trial *tr = &t->trials[i];
        sb_printf(out, "%s\n{\"id\":%d,\"status\":\"%s\",\"rung\":%d,\"steps\":%ld,\"seconds\":%.3f,\"note\":",
                  i ? "," : "", tr->id, status_names[tr->status], tr->rung, tr->steps, tr->seconds);
        json_append_string(out, tr->note);
        sb_puts(out, ",\"values\":[");
        for (int p = 0; p < t->space->n; p++) {
            if (p) sb_puts(out, ",");
            json_append_string(out, tr->values[p]);
        }
        sb_puts(out, "],\"rung_objectives\":[");
        for (int k = 0; k < t->n_rungs; k++) {
            if (k) sb_puts(out, ",");
            append_double(out, tr->rung_objective[k]);
        }
        sb_puts(out, "]}");
    }
    sb_puts(out, "]}\n");
}

static int load_trial(Tune *t, const JsonValue *jt, const char *path) {
    const JsonValue *status = json_get(jt, "status"), *rung = json_get(jt, "rung"), *steps = json_get(jt, "steps");
    const JsonValue *seconds = json_get(jt, "seconds"), *note = json_get(jt, "note");
    const JsonValue *values = json_get(jt, "values"), *objs = json_get(jt, "rung_objectives");
    // Every number is range-checked before a cast: a damaged file must not
    // turn into an overflowing step count.
    if (!status || status->type != JSON_STRING || !rung || rung->type != JSON_NUMBER || !steps
        || steps->type != JSON_NUMBER || !(steps->number >= 0 && steps->number <= 1e15) || !seconds
        || seconds->type != JSON_NUMBER || !(seconds->number >= 0) || !values || values->type != JSON_ARRAY
        || values->n != t->space->n || !objs || objs->type != JSON_ARRAY || objs->n != t->n_rungs
        || rung->number < 0 || rung->number >= t->n_rungs)
        return attn_error("%s: trial %d is malformed", path, t->n_trials);
    create_trial(t);
    Trial *tr = &t->trials[t->n_trials - 1];
    int s = 0;
    while (s < 4 && strcmp(status->string, status_names[s]) != 0) s++;
    if (s == 4) return attn_error("%s: trial %d has unknown status '%s'", path, tr->id, status->string);
    tr->status = (TrialStatus)s;
    tr->rung = (int)rung->number;
    tr->steps = (long)steps->number;
    tr->seconds = seconds->number;
    if (note && note->type == JSON_STRING) snprintf(tr->note, sizeof tr->note, "%s", note->string);
    for (int p = 0; p < t->space->n; p++) {
        if (values->items[p].type != JSON_STRING || strlen(values->items[p].string) >= TUNE_VALUE_MAX)
            return attn_error("%s: trial %d has a bad value", path, tr->id);
        strcpy(tr->values[p], values->items[p].string);
    }
    for (int k = 0; k < t->n_rungs; k++) {
        tr->rung_objective[k] = objs->items[k].type == JSON_NUMBER ? objs->items[k].number : NAN;
        if (!isnan(tr->rung_objective[k])) tr->objective = tr->rung_objective[k];
    }
    return 0;
}

int tune_state_load(Tune *t, const char *path, const char *signature) {
    char *text;
    size_t len;
    if (read_file(path, &text, &len)) return -1;
    JsonValue v;
    if (json_parse(text, len, &v)) {
        free(text);
        return attn_error("%s: %s", path, attn_last_error());
    }
    free(text);
    char expect[32];
    snprintf(expect, sizeof expect, "%016llx", (unsigned long long)settings_hash(t, signature));
    const JsonValue *sig = json_get(&v, "signature"), *trials = json_get(&v, "trials");
    int rc = 0;
    if (!sig || sig->type != JSON_STRING || !trials || trials->type != JSON_ARRAY)
        rc = attn_error("%s: not a tune state file", path);
    else if (strcmp(sig->string, expect) != 0)
        rc = attn_error("%s: written by a different search (method, budget, trials, seed, space, base config or metric changed); use a new --out directory", path);
    else if (trials->n > t->settings.n_trials)
        rc = attn_error("%s: holds %d trials, more than the %d of this search", path, trials->n, t->settings.n_trials);
    for (int i = 0; !rc && i < trials->n; i++) rc = load_trial(t, &trials->items[i], path);
    json_free(&v);
    return rc;
}

// ----------------------------------------------------------------------------
// result tables

// Trial indices sorted best first (insertion sort; failed and unfinished last, by id).
static int *sorted_trials(const Tune *t) {
    int *order = malloc_check(sizeof(int) * (t->n_trials ? t->n_trials : 1));
    for (int i = 0; i < t->n_trials; i++) {
        int j = i;
        while (j > 0 && tune_better(t, &t->trials[i], &t->trials[order[j - 1]])) { order[j] = order[j - 1]; j--; }
        order[j] = i;
    }
    return order;
}

// A parameter with a single value is a fixed setting, not a dimension: the
// tables leave it out.
static int is_fixed(const SearchParam *p) { return param_grid_count(p) == 1; }

static void append_objective(StrBuf *out, double x) {
    if (isnan(x)) sb_puts(out, "-"); else sb_printf(out, "%.4f", x);
}

void tune_results_markdown(const Tune *t, const char *metric, StrBuf *out) {
    int *order = sorted_trials(t);
    sb_printf(out, "| rank | trial | status | %s (%s) | rung | steps | seconds |", metric, t->settings.maximize ? "max" : "min");
    for (int p = 0; p < t->space->n; p++)
        if (!is_fixed(&t->space->params[p])) sb_printf(out, " %s |", t->space->params[p].keys);
    sb_puts(out, " note |\n|---:|---:|---|---:|---:|---:|---:|");
    for (int p = 0; p < t->space->n; p++)
        if (!is_fixed(&t->space->params[p])) sb_puts(out, "---|");
    sb_puts(out, "---|\n");
    for (int r = 0; r < t->n_trials; r++) {
        const Trial *tr = &t->trials[order[r]];
        sb_printf(out, "| %d | %03d | %s | ", r + 1, tr->id, status_names[tr->status]);
        append_objective(out, tr->objective);
        sb_printf(out, " | %d | %ld | %.1f |", tr->rung, tr->steps, tr->seconds);
        for (int p = 0; p < t->space->n; p++)
            if (!is_fixed(&t->space->params[p])) sb_printf(out, " %s |", tr->values[p]);
        sb_printf(out, " %s |\n", tr->note);
    }
    free(order);
}

static void append_csv_field(StrBuf *out, const char *s) {
    if (!strpbrk(s, ",\"\n")) { sb_puts(out, s); return; }
    sb_puts(out, "\"");
    for (const char *p = s; *p; p++) sb_puts(out, *p == '"' ? "\"\"" : (char[]){*p, 0});
    sb_puts(out, "\"");
}

void tune_results_csv(const Tune *t, const char *metric, StrBuf *out) {
    int *order = sorted_trials(t);
    sb_puts(out, "rank,trial,status,");
    append_csv_field(out, metric);
    sb_puts(out, ",rung,steps,seconds");
    for (int k = 0; k < t->n_rungs; k++) sb_printf(out, ",rung%d_at_%ld", k, t->rung_steps[k]);
    for (int p = 0; p < t->space->n; p++)
        if (!is_fixed(&t->space->params[p])) { sb_puts(out, ","); append_csv_field(out, t->space->params[p].keys); }
    sb_puts(out, ",note\n");
    for (int r = 0; r < t->n_trials; r++) {
        const Trial *tr = &t->trials[order[r]];
        sb_printf(out, "%d,%d,%s,", r + 1, tr->id, status_names[tr->status]);
        if (!isnan(tr->objective)) sb_printf(out, "%.6g", tr->objective);
        sb_printf(out, ",%d,%ld,%.3f", tr->rung, tr->steps, tr->seconds);
        for (int k = 0; k < t->n_rungs; k++) {
            sb_puts(out, ",");
            if (!isnan(tr->rung_objective[k])) sb_printf(out, "%.6g", tr->rung_objective[k]);
        }
        for (int p = 0; p < t->space->n; p++)
            if (!is_fixed(&t->space->params[p])) { sb_puts(out, ","); append_csv_field(out, tr->values[p]); }
        sb_puts(out, ",");
        append_csv_field(out, tr->note);
        sb_puts(out, "\n");
    }
    free(order);
}

// ----------------------------------------------------------------------------
// metrics files

// Member by a dotted path ("valid.loss" looks in the object "valid").
static const JsonValue *json_get_path(const JsonValue *obj, const char *path) {
    const JsonValue *direct = json_get(obj, path);
    if (direct) return direct;
    const char *dot = strchr(path, '.');
    if (!dot || dot - path >= 128) return NULL;
    char head[128];
    memcpy(head, path, dot - path);
    head[dot - path] = '\0';
    const JsonValue *inner = json_get(obj, head);
    return inner ? json_get_path(inner, dot + 1) : NULL;
}

int tune_read_metric(const char *path, const char *metric, long max_step, int maximize,
                     double *best, long *last_step) {
    *best = NAN;
    *last_step = 0;
    char *text;
    size_t len;
    if (read_file(path, &text, &len)) return -1;
    char *line = text;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        JsonValue v;
        // A line torn by a crash (the last one) is skipped, not an error.
        if (json_parse(line, strlen(line), &v) == 0) {
            const JsonValue *step = json_get(&v, "step"), *m = json_get_path(&v, metric);
            long s = step && step->type == JSON_NUMBER ? (long)step->number : -1;
            if (s > *last_step && s <= max_step) *last_step = s;
            if (m && m->type == JSON_NUMBER && s <= max_step && isfinite(m->number)
                && (isnan(*best) || (maximize ? m->number > *best : m->number < *best)))
                *best = m->number;
            json_free(&v);
        }
        line = next;
    }
    free(text);
    return 0;
}
