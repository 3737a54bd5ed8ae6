// attn prepare: read parallel text (a TSV or two aligned files), clean it,
// split it into train/valid/test from a seed (or take user-given valid/test
// files), print what each cleaning rule dropped, write DIR/{train,valid,test}.tsv.
#include "cli.h"
#include "common.h"
#include "data.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *inputs[2];
    int n_inputs;
    const char *out_dir;
    const char *valid_file, *test_file;
    double valid, test;
    long seed;
    CleanConfig clean;
} PrepareArgs;

static void prepare_usage(void) {
    printf("usage: attn prepare [flags] --out DIR DATA.tsv\n"
           "       attn prepare [flags] --out DIR SRC.txt TGT.txt\n"
           "\n"
           "Reads parallel text (src<TAB>tgt lines, or two files aligned line by line;\n"
           "UTF-8, CRLF and a BOM accepted), normalizes whitespace, drops bad pairs\n"
           "(printing a count per rule), splits from a seed and writes\n"
           "DIR/train.tsv, DIR/valid.tsv, DIR/test.tsv.\n"
           "\n"
           "  --out DIR          output directory (created if missing)\n"
           "  --valid N          valid size: a count (>= 1) or a fraction (< 1) [0.05]\n"
           "  --test N           test size, as --valid [0.05]\n"
           "  --valid-file F     take valid pairs from the TSV F (cleaned alike) instead of splitting\n"
           "  --test-file F      take test pairs from the TSV F instead of splitting\n"
           "  --seed N           shuffle seed of the split [1]\n"
           "  --max-tokens N     drop pairs with a side over N whitespace tokens; 0 = off [250]\n"
           "  --max-chars N      drop pairs with a side over N characters; 0 = off [0]\n"
           "  --max-ratio R      drop pairs whose token lengths differ by more than R times; 0 = off [9]\n"
           "  --keep-duplicates  keep exact duplicate pairs (dropped by default)\n"
           "  --lowercase        lowercase both sides (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic)\n"
           "\n"
           "Rules, in the order tested (a pair counts under the first it breaks): control\n"
           "(a control character), empty, too-long, ratio, duplicate. See docs/data.md.\n");
}

static int is_value_flag(const char *f) {
    static const char *const flags[] = {"--out", "--valid", "--test", "--valid-file", "--test-file",
                                        "--seed", "--max-tokens", "--max-chars", "--max-ratio"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(f, flags[i])) return 1;
    return 0;
}

static int parse_prepare_args(int argc, char **argv, PrepareArgs *a) {
    memset(a, 0, sizeof *a);
    a->valid = a->test = 0.05;
    a->seed = 1;
    clean_config_default(&a->clean);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v;
        long n;
        double x;
        if (f[0] != '-' || !f[1]) {
            if (a->n_inputs == 2) return attn_error("prepare: too many inputs ('%s'): give one TSV or two aligned files", f);
            a->inputs[a->n_inputs++] = f;
            continue;
        }
        if (!strcmp(f, "--keep-duplicates")) { a->clean.dedup = 0; continue; }
        if (!strcmp(f, "--lowercase")) { a->clean.lowercase = 1; continue; }
        if (!is_value_flag(f)) return attn_error("prepare: unknown flag '%s' (try attn prepare --help)", f);
        if (flag_value(argc, argv, &i, &v) != 0) return -1;
        if (!strcmp(f, "--out")) a->out_dir = v;
        else if (!strcmp(f, "--valid-file")) a->valid_file = v;
        else if (!strcmp(f, "--test-file")) a->test_file = v;
        else if (!strcmp(f, "--valid")) { if (parse_float_flag(f, v, 0, 1e9, &a->valid)) return -1; }
        else if (!strcmp(f, "--test")) { if (parse_float_flag(f, v, 0, 1e9, &a->test)) return -1; }
        else if (!strcmp(f, "--seed")) { if (parse_int_flag(f, v, 0, 0x7fffffffL, &a->seed)) return -1; }
        else if (!strcmp(f, "--max-tokens")) { if (parse_int_flag(f, v, 0, 1 << 30, &n)) return -1; a->clean.max_tokens = (int)n; }
        else if (!strcmp(f, "--max-chars")) { if (parse_int_flag(f, v, 0, 1 << 30, &n)) return -1; a->clean.max_chars = (int)n; }
        else if (!strcmp(f, "--max-ratio")) {
            if (parse_float_flag(f, v, 0, 1e9, &x)) return -1;
            if (x > 0 && x < 1) return attn_error("bad value for --max-ratio: %g is below 1 (0 turns the rule off)", x);
            a->clean.max_ratio = x;
        }
    }
    if (a->n_inputs == 0) return attn_error("prepare: no input: give DATA.tsv or SRC.txt TGT.txt (try attn prepare --help)");
    if (!a->out_dir) return attn_error("prepare: --out DIR is required");
    return 0;
}

static int read_input(ParallelText *pt, const char *const *inputs, int n_inputs) {
    return n_inputs == 1 ? parallel_read_tsv(pt, inputs[0]) : parallel_read_files(pt, inputs[0], inputs[1]);
}

static void print_clean_stats(const char *what, const CleanStats *st) {
    printf("%s: %ld pairs read\n", what, st->n_in);
    for (int r = 0; r < CLEAN_N_RULES; r++) printf("  dropped %-10s %ld\n", clean_rule_names[r], st->dropped[r]);
    printf("  kept               %ld\n", st->n_kept);
}

static int make_dir(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) == 0) return S_ISDIR(sb.st_mode) ? 0 : attn_error("%s: exists and is not a directory", dir);
    if (mkdir(dir, 0755) != 0) return attn_error("%s: cannot create directory: %s", dir, strerror(errno));
    return 0;
}

static int write_part(const ParallelText *pt, const int *idx, int n, const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 8;
    char *path = malloc_check(len);
    snprintf(path, len, "%s/%s.tsv", dir, name);
    int rc = parallel_write_tsv(pt, idx, n, path);
    if (rc == 0) printf("wrote %s: %d pairs\n", path, n);
    free(path);
    return rc;
}

// Reads and cleans a user-given split file; writes it as DIR/name.tsv.
static int prepare_given(const PrepareArgs *a, const char *path, const char *name) {
    ParallelText pt;
    if (parallel_read_tsv(&pt, path) != 0) return -1;
    CleanStats st;
    parallel_clean(&pt, &a->clean, &st);
    print_clean_stats(path, &st);
    int rc = write_part(&pt, NULL, pt.n, a->out_dir, name);
    parallel_free(&pt);
    return rc;
}

int cmd_prepare(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { prepare_usage(); return stdout_flush(); }
    PrepareArgs a;
    if (parse_prepare_args(argc, argv, &a) != 0 || stdout_check_open() != 0) return -1;
    ParallelText pt;
    if (read_input(&pt, a.inputs, a.n_inputs) != 0) return -1;
    CleanStats st;
    parallel_clean(&pt, &a.clean, &st);
    print_clean_stats(a.inputs[0], &st);
    if (pt.n == 0) { parallel_free(&pt); return attn_error("prepare: no pairs left after cleaning"); }

    int *order = malloc_check(sizeof(int) * (size_t)pt.n);
    int n_valid, n_test;
    int rc = split_indices(pt.n, a.valid_file ? 0 : a.valid, a.test_file ? 0 : a.test, (uint64_t)a.seed,
                           order, &n_valid, &n_test);
    if (rc == 0) rc = make_dir(a.out_dir);
    if (rc == 0) rc = write_part(&pt, order + n_valid + n_test, pt.n - n_valid - n_test, a.out_dir, "train");
    if (rc == 0) rc = a.valid_file ? prepare_given(&a, a.valid_file, "valid") : write_part(&pt, order, n_valid, a.out_dir, "valid");
    if (rc == 0) rc = a.test_file ? prepare_given(&a, a.test_file, "test") : write_part(&pt, order + n_valid, n_test, a.out_dir, "test");
    free(order);
    parallel_free(&pt);
    return rc == 0 ? stdout_flush() : rc;
}
