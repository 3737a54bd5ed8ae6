// Hyperparameter search without training: the space parser, samplers, the
// grid / random / SHA / ASHA schedulers on a synthetic objective, the state
// file round trip (resume) and the result tables.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "tune.h"

static const char *space_text =
    "# a search space\n"
    "lr loguniform 1e-4 1e-2   # learning rate\n"
    "warmup_steps choice 0 100 400\n"
    "dropout_residual,dropout_attn uniform 0 0.3 4\n"
    "n_enc_layers int 1 2\n"
    "\n"
    "d_ff logint 64 1024\n";

static void test_parse(void) {
    SearchSpace s;
    int rc = space_parse(&s, space_text, "space.txt");
    CHECK(rc == 0 && s.n == 5, "space parses: 5 parameters (%d)", s.n);
    if (rc) return;
    CHECK(s.params[0].kind == PARAM_LOGUNIFORM && s.params[0].lo == 1e-4 && s.params[0].hi == 1e-2 && s.params[0].grid_points == 3,
          "loguniform range with 3 grid points by default");
    CHECK(s.params[1].kind == PARAM_CHOICE && s.params[1].n_choices == 3 && !strcmp(s.params[1].choices[2], "400"), "choice list");
    CHECK(!strcmp(s.params[2].keys, "dropout_residual,dropout_attn") && s.params[2].grid_points == 4, "several keys, 4 grid points");
    CHECK(param_grid_count(&s.params[3]) == 2 && param_grid_count(&s.params[4]) == 3, "int range grid counts");
    CHECK(space_grid_size(&s) == 3 * 3 * 4 * 2 * 3, "grid size %ld", space_grid_size(&s));
    TuneValue v[5];
    space_grid_point(&s, 0, v);
    CHECK(!strcmp(v[0], "0.0001") && !strcmp(v[1], "0") && !strcmp(v[2], "0") && !strcmp(v[3], "1") && !strcmp(v[4], "64"),
          "grid point 0: %s %s %s %s %s", v[0], v[1], v[2], v[3], v[4]);
    space_grid_point(&s, space_grid_size(&s) - 1, v);
    CHECK(!strcmp(v[0], "0.01") && !strcmp(v[1], "400") && !strcmp(v[2], "0.3") && !strcmp(v[3], "2") && !strcmp(v[4], "1024"),
          "last grid point: %s %s %s %s %s", v[0], v[1], v[2], v[3], v[4]);
    space_grid_point(&s, 1, v);
    CHECK(!strcmp(v[4], "256") && !strcmp(v[0], "0.0001"), "last parameter varies fastest, log spacing (%s)", v[4]);
    space_free(&s);
}

static void test_parse_errors(void) {
    struct { const char *text, *want; } bad[] = {
        {"lr loguniform 0 1\n", "space.txt:1: a log range needs lo > 0"},
        {"lr uniform 2 1\n", "space.txt:1: empty range"},
        {"\nlr gaussian 0 1\n", "space.txt:2: unknown kind 'gaussian'"},
        {"lr uniform 0 x\n", "bad range"},
        {"lr choice\n", "expected 'KEY KIND VALUES...'"},
        {"n int 1 2.5\n", "integer bounds"},
        {"lr uniform 0 1 0\n", "grid points"},
        {"lr uniform 0 1\nlr choice 1 2\n", "space.txt:2: 'lr' appears twice"},
        {"l=r choice 1\n", "bad key"},
        {"# nothing\n", "no parameters"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        SearchSpace s;
        int rc = space_parse(&s, bad[i].text, "space.txt");
        CHECK(rc == -1 && strstr(attn_last_error(), bad[i].want), "bad space rejected: %s", attn_last_error());
    }
    SearchSpace s;
    CHECK(space_load(&s, "/nonexistent/space") == -1, "missing space file: %s", attn_last_error());
}

static void test_sampling(void) {
    SearchSpace s;
    space_parse(&s, space_text, "space.txt");
    Rng rng; rng_seed(&rng, 7);
    int n = 4000, in_range = 1, below_1e3 = 0, counts[3] = {0}, ints[2] = {0}, small_ff = 0;
    TuneValue v[5];
    for (int i = 0; i < n; i++) {
        space_sample(&s, &rng, v);
        double lr = atof(v[0]), dr = atof(v[2]), ff = atof(v[4]);
        in_range &= lr >= 1e-4 && lr <= 1e-2 && dr >= 0 && dr <= 0.3 && ff >= 64 && ff <= 1024 && ff == (long)ff;
        below_1e3 += lr < 1e-3;
        counts[atoi(v[1]) == 0 ? 0 : atoi(v[1]) == 100 ? 1 : 2]++;
        ints[atoi(v[3]) - 1]++;
        small_ff += ff < 256;
    }
    CHECK(in_range, "samples stay in their ranges");
    CHECK(abs(below_1e3 - n / 2) < n / 20, "log-uniform: half the draws below the geometric middle (%d of %d)", below_1e3, n);
    CHECK(abs(counts[0] - n / 3) < n / 20 && abs(counts[2] - n / 3) < n / 20, "choices drawn uniformly (%d %d %d)", counts[0], counts[1], counts[2]);
    CHECK(abs(ints[0] - n / 2) < n / 20, "int range drawn uniformly (%d %d)", ints[0], ints[1]);
    CHECK(abs(small_ff - n / 2) < n / 20, "logint: half the draws below 256 (%d)", small_ff);
    space_free(&s);
}

// Synthetic training: a trial's quality is its learning rate's distance from
// 1e-3 (in log space); more steps lower the loss for every trial alike, so
// rankings at a small budget predict those at the full budget.
static double fake_loss(const Trial *tr, long steps) {
    double q = fabs(log10(atof(tr->values[0])) + 3);
    return q + 10.0 / steps;
}

// Runs the search to the end with `workers` jobs in flight, finishing a
// random one of them each time; trials whose lr is above 5e-3 "diverge".
static void simulate(Tune *t, int workers, uint64_t seed, int *max_running) {
    Rng rng; rng_seed(&rng, seed);
    TuneJob running[16];
    int n_running = 0;
    *max_running = 0;
    for (;;) {
        TuneJob job;
        int r;
        while (n_running < workers && (r = tune_next_job(t, &job)) == 1) running[n_running++] = job;
        if (n_running > *max_running) *max_running = n_running;
        if (n_running == 0) break;
        int pick = (int)rng_below(&rng, (uint32_t)n_running);
        TuneJob done = running[pick];
        running[pick] = running[--n_running];
        Trial *tr = &t->trials[done.trial];
        int diverged = atof(tr->values[0]) > 5e-3;
        tune_job_done(t, done.trial, !diverged, diverged ? NAN : fake_loss(tr, done.steps), done.steps, 1.0,
                      diverged ? "diverged" : "");
    }
}

static void test_schedulers(void) {
    SearchSpace s;
    space_parse(&s, "lr loguniform 1e-4 1e-2\n", "space.txt");
    TuneSettings rs = {METHOD_RANDOM, 27, 0, 900, 3, 0, 11};
    Tune random, asha, sha;
    int maxr;
    CHECK(tune_init(&random, &rs, &s) == 0 && random.n_rungs == 1 && random.rung_steps[0] == 900, "random: one rung at the full budget");
    simulate(&random, 2, 1, &maxr);
    CHECK(random.n_trials == 27 && tune_total_steps(&random) < 27 * 900 + 1 && maxr == 2, "random: 27 trials, two at a time");
    int rb = tune_best(&random);
    TuneSettings as = {METHOD_ASHA, 27, 100, 900, 3, 0, 11};
    CHECK(tune_init(&asha, &as, &s) == 0 && asha.n_rungs == 3 && asha.rung_steps[0] == 100 && asha.rung_steps[1] == 300
          && asha.rung_steps[2] == 900, "asha: rungs 100, 300, 900");
    simulate(&asha, 1, 2, &maxr);
    int ab = tune_best(&asha);
    CHECK(ab >= 0 && rb >= 0 && !strcmp(asha.trials[ab].values[0], random.trials[rb].values[0])
          && asha.trials[ab].objective == random.trials[rb].objective,
          "asha finds random's best trial (%s, %.4f vs %.4f)", asha.trials[ab].values[0], asha.trials[ab].objective, random.trials[rb].objective);
    long a_steps = tune_total_steps(&asha), r_steps = tune_total_steps(&random);
    CHECK(2 * a_steps <= r_steps, "asha spends at most half the compute (%ld vs %ld steps)", a_steps, r_steps);
    int at_top = 0, failed = 0;
    for (int i = 0; i < asha.n_trials; i++) {
        at_top += asha.trials[i].rung == 2;
        failed += asha.trials[i].status == TRIAL_FAILED;
        if (asha.trials[i].status == TRIAL_FAILED) CHECK(asha.trials[i].rung == 0, "a diverged trial is never promoted");
    }
    CHECK(at_top >= 1 && at_top <= 9 && failed > 0, "asha: %d trials reach the full budget, %d diverged", at_top, failed);
    tune_free(&asha);
    tune_init(&asha, &as, &s);
    simulate(&asha, 4, 3, &maxr);
    ab = tune_best(&asha);
    CHECK(maxr == 4 && ab >= 0 && asha.trials[ab].objective == random.trials[rb].objective && 2 * tune_total_steps(&asha) <= r_steps,
          "asha with 4 workers: same best, %ld steps", tune_total_steps(&asha));

    TuneSettings few = {METHOD_ASHA, 4, 100, 900, 3, 0, 11};
    tune_free(&asha);
    tune_init(&asha, &few, &s);
    simulate(&asha, 1, 5, &maxr);
    ab = tune_best(&asha);
    CHECK(ab >= 0 && asha.trials[ab].rung == 2 && asha.trials[ab].steps == 900,
          "asha with fewer trials than eta per rung still trains its best on the full budget (rung %d)", ab >= 0 ? asha.trials[ab].rung : -1);

    TuneSettings ss = {METHOD_SHA, 27, 100, 900, 3, 0, 11};
    tune_init(&sha, &ss, &s);
    simulate(&sha, 3, 4, &maxr);
    int per_rung[3] = {0};
    for (int i = 0; i < sha.n_trials; i++) per_rung[sha.trials[i].rung]++;
    int sb = tune_best(&sha);
    CHECK(per_rung[1] + per_rung[2] == 9 && per_rung[2] == 3, "sha: 27 -> 9 -> 3 trials (%d %d %d)", per_rung[0], per_rung[1], per_rung[2]);
    CHECK(sb >= 0 && sha.trials[sb].objective == random.trials[rb].objective, "sha finds the same best");
    CHECK(tune_total_steps(&sha) == 27 * 100 + 9 * 200 + 3 * 600, "sha compute: %ld steps", tune_total_steps(&sha));
    tune_free(&sha);
    tune_free(&asha);
    tune_free(&random);

    TuneSettings gs = {METHOD_GRID, 0, 0, 50, 3, 1, 0};
    Tune grid;
    tune_init(&grid, &gs, &s);
    simulate(&grid, 1, 5, &maxr);
    CHECK(grid.n_trials == 3 && !strcmp(grid.trials[1].values[0], "0.001"), "grid: 3 trials, middle lr 0.001 (%s)", grid.trials[1].values[0]);
    CHECK(tune_best(&grid) == 0, "maximize: the largest objective wins (trial %d)", tune_best(&grid));
    tune_free(&grid);
    TuneSettings badset = {METHOD_ASHA, 5, 1000, 900, 3, 0, 1};
    CHECK(tune_init(&grid, &badset, &s) == -1 && strstr(attn_last_error(), "min steps"), "min steps above max: %s", attn_last_error());
    badset.min_steps = 10; badset.eta = 1;
    CHECK(tune_init(&grid, &badset, &s) == -1 && strstr(attn_last_error(), "eta"), "eta 1 refused: %s", attn_last_error());
    TuneMethod m;
    CHECK(tune_method_parse("asha", &m) == 0 && m == METHOD_ASHA && tune_method_parse("bayes", &m) == -1, "method names");
    space_free(&s);
}

// A crash in the middle: the state file holds finished and running trials; a
// fresh Tune loaded from it restarts the running ones and ends like an
// uninterrupted search.
static void test_resume(void) {
    SearchSpace s;
    space_parse(&s, "lr loguniform 1e-4 1e-2\nwarmup_steps choice 0 100\nvalid_every choice 30\n", "space.txt");
    TuneSettings as = {METHOD_ASHA, 9, 100, 900, 3, 0, 5};
    Tune a, b, full;
    tune_init(&full, &as, &s);
    int maxr;
    simulate(&full, 1, 9, &maxr);
    tune_init(&a, &as, &s);
    TuneJob job;
    for (int i = 0; i < 5; i++) {
        tune_next_job(&a, &job);
        tune_job_done(&a, job.trial, 1, fake_loss(&a.trials[job.trial], job.steps), job.steps, 2.0, "");
    }
    TuneJob interrupted;
    tune_next_job(&a, &interrupted);
    StrBuf sb = {0};
    tune_state_json(&a, "space v1", &sb);
    char path[] = "/tmp/attn_tune_state_XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, sb.data, sb.len) == (ssize_t)sb.len, "state written");
    close(fd);
    tune_init(&b, &as, &s);
    CHECK(tune_state_load(&b, path, "space v1") == 0 && b.n_trials == a.n_trials, "state loads back (%d trials)", b.n_trials);
    TuneJob again[4];
    int n = tune_interrupted_jobs(&b, again, 4);
    CHECK(n == 1 && again[0].trial == interrupted.trial && again[0].steps == interrupted.steps,
          "the interrupted job is restarted (trial %d, %ld steps)", again[0].trial, again[0].steps);
    int same = 1;
    for (int i = 0; i < a.n_trials; i++)
        same &= !strcmp(a.trials[i].values[1], b.trials[i].values[1]) && a.trials[i].status == b.trials[i].status
             && (a.trials[i].objective == b.trials[i].objective || (isnan(a.trials[i].objective) && isnan(b.trials[i].objective)));
    CHECK(same, "trials round-trip through the state file");
    tune_job_done(&b, again[0].trial, 1, fake_loss(&b.trials[again[0].trial], again[0].steps), again[0].steps, 1.0, "");
    simulate(&b, 1, 9, &maxr);
    CHECK(tune_best(&b) == tune_best(&full) && tune_total_steps(&b) == tune_total_steps(&full),
          "the resumed search ends like an uninterrupted one (best %d, %ld steps)", tune_best(&b), tune_total_steps(&b));
    Tune c;
    tune_init(&c, &as, &s);
    CHECK(tune_state_load(&c, path, "space v2") == -1 && strstr(attn_last_error(), "different search"),
          "a different search refuses the state: %s", attn_last_error());
    tune_free(&c);
    TuneSettings other = as; other.seed = 6;
    tune_init(&c, &other, &s);
    CHECK(tune_state_load(&c, path, "space v1") == -1, "another seed refuses the state");
    tune_free(&c);
    char *steps_at = strstr(sb.data, "\"steps\":");
    CHECK(steps_at != NULL, "the state holds a step count");
    if (steps_at) {  // a damaged step count is refused, not cast into an overflowing long
        StrBuf bad = {0};
        sb_append(&bad, sb.data, (size_t)(steps_at - sb.data));
        sb_puts(&bad, "\"steps\":1e300");
        sb_puts(&bad, strchr(steps_at, ','));
        FILE *f = fopen(path, "w");
        fputs(bad.data, f);
        fclose(f);
        tune_init(&c, &as, &s);
        CHECK(tune_state_load(&c, path, "space v1") == -1 && strstr(attn_last_error(), "malformed"),
              "a step count of 1e300 is refused: %s", attn_last_error());
        tune_free(&c);
        sb_free(&bad);
    }

    StrBuf md = {0}, csv = {0};
    tune_results_markdown(&b, "valid_loss", &md);
    tune_results_csv(&b, "valid_loss", &csv);
    int best = tune_best(&b);
    char want[64];
    snprintf(want, sizeof want, "| 1 | %03d | done | %.4f |", best, b.trials[best].objective);
    CHECK(strstr(md.data, "| rank | trial | status | valid_loss (min) | rung | steps | seconds | lr | warmup_steps | note |") && strstr(md.data, want),
          "markdown table: header without the fixed setting, the best trial first (%s)", want);
    CHECK(!strncmp(csv.data, "rank,trial,status,valid_loss,rung,steps,seconds,rung0_at_100,rung1_at_300,rung2_at_900,lr,warmup_steps,note\n1,", 100),
          "csv header and first row");
    int rows = 0;
    for (char *p = csv.data; *p; p++) rows += *p == '\n';
    CHECK(rows == 10, "csv: header and 9 trial rows (%d lines)", rows);
    sb_free(&md); sb_free(&csv); sb_free(&sb);
    unlink(path);
    tune_free(&a); tune_free(&b); tune_free(&full);
    space_free(&s);
}

static void test_read_metric(void) {
    char path[] = "/tmp/attn_tune_metrics_XXXXXX";
    int fd = mkstemp(path);
    const char *lines =
        "{\"step\":50,\"train_loss\":3.0}\n"
        "{\"step\":100,\"valid_loss\":2.5,\"valid\":{\"acc\":0.4}}\n"
        "{\"step\":200,\"valid_loss\":1.5,\"valid\":{\"acc\":0.7}}\n"
        "{\"step\":300,\"valid_loss\":1.7,\"valid\":{\"acc\":0.6}}\n"
        "{\"step\":400,\"valid_lo";  // torn by a crash
    CHECK(write(fd, lines, strlen(lines)) == (ssize_t)strlen(lines), "metrics written");
    close(fd);
    double best; long last;
    CHECK(tune_read_metric(path, "valid_loss", 1000, 0, &best, &last) == 0 && best == 1.5 && last == 300,
          "best valid_loss and last step (%g, %ld); a torn last line is skipped", best, last);
    tune_read_metric(path, "valid_loss", 150, 0, &best, &last);
    CHECK(best == 2.5 && last == 100, "only records up to the budget count (%g, %ld)", best, last);
    tune_read_metric(path, "valid.acc", 1000, 1, &best, &last);
    CHECK(best == 0.7, "dotted metric, maximized (%g)", best);
    tune_read_metric(path, "bleu", 1000, 1, &best, &last);
    CHECK(isnan(best), "an absent metric gives NaN");
    CHECK(tune_read_metric("/nonexistent/metrics.jsonl", "x", 1, 0, &best, &last) == -1, "missing metrics file fails");
    unlink(path);
}

int main(void) {
    test_parse();
    test_parse_errors();
    test_sampling();
    test_schedulers();
    test_resume();
    test_read_metric();
    TEST_EXIT();
}
