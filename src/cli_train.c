// attn train --config FILE --out RUN_DIR [--key value ...]
//
// A new RUN_DIR gets config.conf (the effective config) and the training
// files; an existing one is resumed with the config it was started with
// (only run-control keys such as max_steps may change on the command line).
#include "cli.h"
#include "common.h"
#include "config.h"
#include "train.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void train_usage(void) {
    printf("usage: attn train --config FILE --out RUN_DIR [--KEY VALUE ...]\n"
           "\n"
           "Trains a model into RUN_DIR; running it again on the same RUN_DIR resumes\n"
           "from the last checkpoint and reaches the same weights as an uninterrupted run.\n"
           "\n"
           "  --config FILE     config file (key = value lines; see --dump-config)\n"
           "  --out RUN_DIR     run directory: config.conf, best/last.safetensors, metrics.jsonl\n"
           "  --KEY VALUE       override one config key (also --KEY=VALUE; '-' and '_' are the same)\n"
           "  --dump-config     print the effective config and exit\n"
           "  --quiet           no progress output\n"
           "  --overfit-batch   sanity check: train on one batch (no dropout, no smoothing) until the\n"
           "                    loss is below overfit_loss (0.05); exit 1 if it never gets there\n"
           "\n"
           "Ctrl-C saves a checkpoint and exits; run the same command to resume.\n"
           "Every key, with its default and meaning: attn train --dump-config\n");
}

typedef struct {
    const char *config_path, *run_dir;
    int dump, quiet;
    int n_overrides;
    const char **keys, **values;  // (n_overrides)
} TrainArgs;

static int parse_args(int argc, char **argv, TrainArgs *a) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--config")) { if (flag_value(argc, argv, &i, &a->config_path)) return -1; continue; }
        if (!strcmp(arg, "--out")) { if (flag_value(argc, argv, &i, &a->run_dir)) return -1; continue; }
        if (!strcmp(arg, "--dump-config")) { a->dump = 1; continue; }
        if (!strcmp(arg, "--quiet")) { a->quiet = 1; continue; }
        if (!strcmp(arg, "--overfit-batch")) {
            // One batch, no regularization (it would keep the loss above zero),
            // no validation until the end; later flags still override these.
            static const char *const fixed[][2] = {
                {"overfit_batch", "1"}, {"label_smoothing", "0"}, {"dropout_emb", "0"}, {"dropout_residual", "0"},
                {"dropout_attn", "0"}, {"dropout_ffn", "0"}, {"valid_every", "0"}};
            int given = 0;  // once only: the key arrays have room for one set
            for (int k = 0; k < a->n_overrides; k++) given |= !strcmp(a->keys[k], "overfit_batch");
            for (int k = 0; k < 7 && !given; k++) {
                a->keys[a->n_overrides] = strdup_check(fixed[k][0]);
                a->values[a->n_overrides++] = fixed[k][1];
            }
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return attn_error("train: unexpected argument '%s' (attn train --help)", arg);
        // --key=value or --key value: a config override.
        const char *eq = strchr(arg, '='), *value;
        char *key;
        if (eq) {
            key = strdup_check(arg + 2);
            key[eq - arg - 2] = '\0';
            value = eq + 1;
        } else {
            if (flag_value(argc, argv, &i, &value)) return -1;
            key = strdup_check(arg + 2);
        }
        a->keys[a->n_overrides] = key;
        a->values[a->n_overrides++] = value;
    }
    return 0;
}

static int apply_overrides(TrainConfig *cfg, const TrainArgs *a) {
    for (int i = 0; i < a->n_overrides; i++) {
        if (config_set(cfg, a->keys[i], a->values[i]) != 0) return attn_error("--%s: %s", a->keys[i], attn_last_error());
    }
    return 0;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// Empty, or holding only "config.conf.tmp.PID" files: a run killed while
// writing its first config.conf left them, and it starts afresh.
static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)) != NULL)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strncmp(e->d_name, "config.conf.tmp.", 16);
    closedir(d);
    return empty;
}

// mkdir -p
static int make_dirs(const char *path) {
    if (path[0] == '\0') return attn_error("train: --out is empty: give a run directory");
    // The trainer builds file names in 4096-byte buffers: a longer one would be cut.
    if (strlen(path) > 3800) return attn_error("train: --out is %zu bytes long, at most 3800: give a shorter path", strlen(path));
    char *p = strdup_check(path);
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            int rc = attn_error("%s: cannot create the run directory: %s", p, strerror(e));
            free(p);
            return rc;
        }
        *s = saved;
        if (saved == '\0') break;
    }
    free(p);
    if (!is_dir(path)) return attn_error("%s: exists and is not a directory", path);
    return 0;
}

// The config of a run: from --config and the overrides for a new run; for a
// run directory that has config.conf, that file plus run-control overrides.
static int effective_config(const TrainArgs *a, TrainConfig *cfg, int *resuming) {
    config_default(cfg);
    if (a->config_path && config_load(cfg, a->config_path) != 0) return -1;
    if (apply_overrides(cfg, a) != 0) return -1;
    *resuming = 0;
    if (!a->run_dir) return 0;
    char saved_path[4096];
    snprintf(saved_path, sizeof saved_path, "%s/config.conf", a->run_dir);
    if (access(saved_path, F_OK) != 0) {
        if (is_dir(a->run_dir) && !dir_is_empty(a->run_dir))
            return attn_error("%s: exists, is not empty and holds no config.conf: not an attn run directory "
                              "(choose a new --out)", a->run_dir);
        return 0;
    }
    TrainConfig saved;
    config_default(&saved);
    if (config_load(&saved, saved_path) != 0) return -1;
    *resuming = 1;
    // Without --config, the saved config plus the overrides; either way only
    // run-control keys may differ from what the run started with.
    if (!a->config_path) {
        TrainConfig resumed = saved;
        if (apply_overrides(&resumed, a) != 0) return -1;
        *cfg = resumed;
    }
    const char *diff = config_first_difference(&saved, cfg, 1);
    if (diff) {
        char was[CONFIG_PATH_MAX + 8], now[CONFIG_PATH_MAX + 8];
        config_get(&saved, diff, was, sizeof was);
        config_get(cfg, diff, now, sizeof now);
        return attn_error("%s was started with %s = %s, now %s; a run resumes with its own config "
                          "(only budget, logging and thread keys may change): use a new --out", a->run_dir, diff,
                          was, now);
    }
    return 0;
}

// The data files must be readable before a run directory is made for them.
static int check_data_files(const TrainConfig *cfg) {
    const char *files[] = {cfg->train, cfg->valid, cfg->src_tokenizer_file, cfg->tgt_tokenizer_file};
    int used[] = {strcmp(cfg->task, "tsv") == 0, strcmp(cfg->task, "tsv") == 0, 1, 1};
    for (int i = 0; i < 4; i++) {
        if (!used[i] || files[i][0] == '\0') continue;
        if (access(files[i], R_OK) != 0) return attn_error("%s: %s", files[i], strerror(errno));
        if (is_dir(files[i])) return attn_error("%s: is a directory, expected a file", files[i]);
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { train_usage(); return 0; }
    }
    TrainArgs a = {0};
    a.keys = calloc_check((size_t)argc + 7, sizeof(char *));    // + the overrides of --overfit-batch
    a.values = calloc_check((size_t)argc + 7, sizeof(char *));
    TrainConfig cfg;
    int resuming = 0;
    int rc = parse_args(argc, argv, &a);
    if (rc == 0) rc = effective_config(&a, &cfg, &resuming);
    if (rc == 0) rc = config_validate(&cfg);
    char *text = rc == 0 ? config_to_string(&cfg) : NULL;
    if (rc == 0 && a.dump) {
        fputs(text, stdout);
    } else if (rc == 0 && !a.run_dir) {
        rc = attn_error("train: --out RUN_DIR is required (attn train --help)");
    } else if (rc == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/config.conf", a.run_dir);
        // Writing config.conf first also proves the directory is writable
        // before any time is spent on data and tokenizers.
        rc = check_data_files(&cfg);
        if (rc == 0) rc = make_dirs(a.run_dir);
        if (rc == 0) rc = write_file_atomic(path, text, strlen(text));
        if (rc == 0) {
            TrainOptions opts = {.progress = isatty(STDERR_FILENO), .quiet = a.quiet};
            if (!a.quiet) fprintf(stderr, "%s %s\n", resuming ? "resuming run" : "new run", a.run_dir);
            rc = train_run(&cfg, a.run_dir, &opts);
        }
    }
    free(text);
    for (int i = 0; i < a.n_overrides; i++) free((char *)a.keys[i]);
    free(a.keys);
    free(a.values);
    return rc;
}
