// attn average --out OUT CKPT...  |  attn average --out OUT --run RUN_DIR [--last N]
//
// Checkpoint averaging as in the paper (the last 5 checkpoints for the base
// models, 20 for the big ones): the element-wise mean of the weights of
// checkpoints of one model. The tokenizers and configs must agree.
#include "checkpoint.h"
#include "cli.h"
#include "common.h"
#include "model.h"
#include "tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void average_usage(void) {
    printf("usage: attn average --out OUT.safetensors CKPT.safetensors...\n"
           "       attn average --out OUT.safetensors --run RUN_DIR [--last N]\n"
           "\n"
           "Writes the element-wise mean of the checkpoints' weights as a complete model.\n"
           "\n"
           "  --out FILE     the averaged model\n"
           "  --run RUN_DIR  average the newest step-N checkpoints of a run (keep_last of its config)\n"
           "  --last N       how many of them (default 5)\n");
}

// The paths of the newest `last` step-N checkpoints of run_dir, oldest first.
static int run_checkpoints(const char *run_dir, int last, char ***paths, int *n_paths) {
    char **names;
    int n;
    if (checkpoint_list_steps(run_dir, &names, &n) != 0) return -1;
    if (n < last) {
        checkpoint_names_free(names, n);
        return attn_error("%s: holds %d step checkpoints, --last asks for %d (keep_last in the run's config "
                          "sets how many are kept)", run_dir, n, last);
    }
    *paths = malloc_check(sizeof(char *) * (size_t)last);
    for (int i = 0; i < last; i++) {
        const char *name = names[n - last + i];
        size_t size = strlen(run_dir) + strlen(name) + 2;
        (*paths)[i] = malloc_check(size);
        snprintf((*paths)[i], size, "%s/%s", run_dir, name);
    }
    checkpoint_names_free(names, n);
    *n_paths = last;
    return 0;
}

static int same_tokenizer(const Tokenizer *a, const Tokenizer *b) {
    char *ta, *tb;
    if (tokenizer_to_string(a, &ta) != 0) return 0;
    if (tokenizer_to_string(b, &tb) != 0) { free(ta); return 0; }
    int same = strcmp(ta, tb) == 0;
    free(ta);
    free(tb);
    return same;
}

// Sums in double (so the order of the files barely matters), then divides.
static int average(const char *out, char **paths, int n) {
    Model m;
    Tokenizer *src_tok, *tgt_tok;
    if (checkpoint_load_model(paths[0], &m, 1, 1, 1, &src_tok, &tgt_tok) != 0) return -1;
    long np = m.n_params;
    double *sum = calloc_check((size_t)np, sizeof(double));
    CheckpointInfo info;
    memset(&info, 0, sizeof info);
    int rc = 0;
    for (int f = 0; f < n && rc == 0; f++) {
        checkpoint_info_free(&info);
        if (checkpoint_load_weights(paths[f], &m, &info) != 0) { rc = -1; break; }
        if (!same_tokenizer(info.src_tok, src_tok) || !same_tokenizer(info.tgt_tok, tgt_tok))
            rc = attn_error("%s: its tokenizers differ from those of %s: not checkpoints of one model", paths[f], paths[0]);
        for (long i = 0; i < np; i++) sum[i] += m.param_memory[i];
    }
    if (rc == 0) {
        float *mean = malloc_check(sizeof(float) * (size_t)np);
        for (long i = 0; i < np; i++) mean[i] = (float)(sum[i] / n);
        rc = checkpoint_save_model_weights(out, &m, mean, src_tok, tgt_tok, info.train_config, info.step, NULL);
        if (rc == 0) printf("wrote %s: the mean of %d checkpoints (%ld parameters)\n", out, n, np);
        free(mean);
    }
    checkpoint_info_free(&info);
    free(sum);
    model_free(&m);
    tokenizer_free(src_tok);
    tokenizer_free(tgt_tok);
    return rc;
}

int cmd_average(int argc, char **argv) {
    const char *out = NULL, *run = NULL;
    long last = 5;
    char **paths = calloc_check((size_t)argc, sizeof(char *));
    int n = 0, rc = 0, owned = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { average_usage(); free(paths); return 0; }
        else if (!strcmp(argv[i], "--out")) rc = flag_value(argc, argv, &i, &out);
        else if (!strcmp(argv[i], "--run")) rc = flag_value(argc, argv, &i, &run);
        else if (!strcmp(argv[i], "--last")) rc = flag_value(argc, argv, &i, &v) ? -1 : parse_int_flag("--last", v, 1, 100000, &last);
        else if (argv[i][0] == '-' && argv[i][1] == '-') rc = attn_error("average: unknown flag '%s' (attn average --help)", argv[i]);
        else paths[n++] = argv[i];
    }
    if (rc == 0 && (!out || !*out)) rc = attn_error("average: --out FILE is required (attn average --help)");
    if (rc == 0 && run && n > 0) rc = attn_error("average: give checkpoint files or --run, not both");
    if (rc == 0 && run) {
        free(paths);
        paths = NULL;
        rc = run_checkpoints(run, (int)last, &paths, &n);
        owned = rc == 0;
    }
    if (rc == 0 && n == 0) rc = attn_error("average: no checkpoints given (attn average --help)");
    for (int i = 0; i < n && rc == 0; i++)  // replacing a run's checkpoint by the average would lose it
        if (same_file(out, paths[i])) rc = attn_error("average: --out %s is one of the checkpoints; give another path", out);
    if (rc == 0) rc = average(out, paths, n);
    if (owned) for (int i = 0; i < n; i++) free(paths[i]);
    free(paths);
    return rc;
}
