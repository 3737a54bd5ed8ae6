// `attn bleu` and `attn chrf`: standalone corpus scorers in the manner of
// sacreBLEU's command line. Hypotheses on stdin (or --input), one or more
// --ref files, same number of lines in each; prints sacreBLEU's score line
// and a signature line.
#include "cli.h"
#include "common.h"
#include "data.h"
#include "metrics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_REF_FILES = 64 };

typedef struct {
    const char *ref_paths[MAX_REF_FILES];
    int n_refs;
    const char *input;   // "-" = stdin
    int score_only;
} ScorerArgs;

typedef struct {
    DataLines hyps;
    DataLines refs[MAX_REF_FILES];
    const char *const *ref_lines[MAX_REF_FILES];
    int n_refs;
} ScorerInput;

static void scorer_input_free(ScorerInput *in) {
    data_lines_free(&in->hyps);
    for (int r = 0; r < in->n_refs; r++) data_lines_free(&in->refs[r]);
}

// Reads hypotheses and references; every file must have the same line count.
static int scorer_input_read(ScorerInput *in, const ScorerArgs *a) {
    memset(in, 0, sizeof *in);
    if (data_lines_read(&in->hyps, a->input) != 0) return -1;
    const char *hyp_name = strcmp(a->input, "-") ? a->input : "standard input";
    for (int r = 0; r < a->n_refs; r++) {
        if (data_lines_read(&in->refs[r], a->ref_paths[r]) != 0) { scorer_input_free(in); return -1; }
        in->n_refs = r + 1;
        in->ref_lines[r] = (const char *const *)in->refs[r].lines;
        if (in->refs[r].n != in->hyps.n) {
            int nh = in->hyps.n, nr = in->refs[r].n;
            scorer_input_free(in);
            return attn_error("%s has %d lines but reference %s has %d: they must match line by line",
                              hyp_name, nh, a->ref_paths[r], nr);
        }
    }
    return 0;
}

// Parses the flags both scorers share; returns 1 when argv[*i] was one of
// them, 0 when not, -1 on a bad value.
static int parse_common_flag(int argc, char **argv, int *i, ScorerArgs *a) {
    const char *v;
    if (!strcmp(argv[*i], "--ref") || !strcmp(argv[*i], "-r")) {
        if (flag_value(argc, argv, i, &v) != 0) return -1;
        if (a->n_refs == MAX_REF_FILES) return attn_error("at most %d --ref files", MAX_REF_FILES);
        a->ref_paths[a->n_refs++] = v;
        return 1;
    }
    if (!strcmp(argv[*i], "--input") || !strcmp(argv[*i], "-i")) {
        if (flag_value(argc, argv, i, &v) != 0) return -1;
        a->input = v;
        return 1;
    }
    if (!strcmp(argv[*i], "--score-only") || !strcmp(argv[*i], "-b")) { a->score_only = 1; return 1; }
    return 0;
}

// A scorer's own flags: returns 1 when argv[*i] was one, 0 when not, -1 on
// a bad value (as parse_common_flag).
typedef int (*ScorerFlag)(int argc, char **argv, int *i, void *options);

// Parses a scorer's command line: the shared flags, then its own; --help
// sets *help. At least one --ref is required.
static int parse_scorer_args(int argc, char **argv, const char *name, ScorerFlag own_flag, void *options,
                             ScorerArgs *a, int *help) {
    memset(a, 0, sizeof *a);
    a->input = "-";
    *help = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { *help = 1; return 0; }
        int r = parse_common_flag(argc, argv, &i, a);
        if (r == 0) r = own_flag(argc, argv, &i, options);
        if (r < 0) return -1;
        if (r == 0) return attn_error("%s: unknown flag '%s' (try attn %s --help)", name, argv[i], name);
    }
    if (a->n_refs == 0) return attn_error("%s needs at least one --ref FILE (try attn %s --help)", name, name);
    return 0;
}

// ----------------------------------------------------------------------------
// attn bleu

static const char *bleu_usage =
    "usage: attn bleu --ref REF [--ref REF2 ...] [flags] < HYP\n"
    "Corpus BLEU exactly as sacreBLEU 2.x computes it by default.\n"
    "  -r, --ref FILE        reference file (repeat for several references)\n"
    "  -i, --input FILE      hypotheses (default: standard input)\n"
    "  --tokenize 13a|none   tokenizer (default 13a)\n"
    "  --smooth exp|floor|add-k|none   smoothing (default exp)\n"
    "  --smooth-value V      value for floor (default 0.1) and add-k (default 1)\n"
    "  --max-order N         largest n-gram (default 4)\n"
    "  --effective-order     stop at the first n-gram order with no n-grams\n"
    "  -b, --score-only      print the score only\n";

static int parse_bleu_flag(int argc, char **argv, int *i, void *options) {
    BleuOptions *opt = options;
    const char *f = argv[*i], *v;
    if (!strcmp(f, "--effective-order")) { opt->effective_order = 1; return 1; }
    if (strcmp(f, "--tokenize") && strcmp(f, "--smooth") && strcmp(f, "--smooth-value") && strcmp(f, "--max-order")) return 0;
    if (flag_value(argc, argv, i, &v) != 0) return -1;
    if (!strcmp(f, "--tokenize")) {
        if (!strcmp(v, "13a")) opt->tokenizer = BLEU_TOK_13A;
        else if (!strcmp(v, "none")) opt->tokenizer = BLEU_TOK_NONE;
        else return attn_error("bad value for --tokenize: '%s' (use 13a or none)", v);
    } else if (!strcmp(f, "--smooth")) {
        if (!strcmp(v, "exp")) opt->smooth = BLEU_SMOOTH_EXP;
        else if (!strcmp(v, "floor")) opt->smooth = BLEU_SMOOTH_FLOOR;
        else if (!strcmp(v, "add-k")) opt->smooth = BLEU_SMOOTH_ADD_K;
        else if (!strcmp(v, "none")) opt->smooth = BLEU_SMOOTH_NONE;
        else return attn_error("bad value for --smooth: '%s' (use exp, floor, add-k or none)", v);
    } else if (!strcmp(f, "--smooth-value")) {
        if (parse_float_flag(f, v, 0, 1e9, &opt->smooth_value) != 0) return -1;
    } else {
        long n;
        if (parse_int_flag(f, v, 1, BLEU_MAX_ORDER, &n) != 0) return -1;
        opt->max_order = (int)n;
    }
    return 1;
}

int cmd_bleu(int argc, char **argv) {
    ScorerArgs a;
    BleuOptions opt;
    bleu_options_default(&opt);
    int help;
    if (parse_scorer_args(argc, argv, "bleu", parse_bleu_flag, &opt, &a, &help) != 0) return -1;
    if (help) { fputs(bleu_usage, stdout); return stdout_flush(); }
    ScorerInput in;
    if (stdout_check_open() != 0 || scorer_input_read(&in, &a) != 0) return -1;
    BleuScore score;
    BleuStats stats;
    int rc = bleu_corpus(&score, &stats, &opt, (const char *const *)in.hyps.lines, in.ref_lines, in.hyps.n, in.n_refs);
    scorer_input_free(&in);
    if (rc != 0) return attn_error("bleu: %s", attn_last_error());
    char line[512], sig[256];
    bleu_format(line, sizeof line, &score);
    bleu_signature(sig, sizeof sig, &stats, &opt);
    if (a.score_only) printf("%.2f\n", score.score);
    else printf("%s\n%s\n", line, sig);
    return stdout_flush();
}

// ----------------------------------------------------------------------------
// attn chrf

static const char *chrf_usage =
    "usage: attn chrf --ref REF [--ref REF2 ...] [flags] < HYP\n"
    "Corpus chrF exactly as sacreBLEU 2.x computes it by default (chrF2).\n"
    "  -r, --ref FILE        reference file (repeat for several references)\n"
    "  -i, --input FILE      hypotheses (default: standard input)\n"
    "  --beta B              recall weight (default 2)\n"
    "  --char-order N        largest character n-gram (default 6)\n"
    "  --whitespace          keep whitespace in character n-grams\n"
    "  --eps-smoothing       chrF++.py-style epsilon smoothing instead of effective order\n"
    "  -b, --score-only      print the score only\n";

static int parse_chrf_flag(int argc, char **argv, int *i, void *options) {
    ChrfOptions *opt = options;
    const char *f = argv[*i], *v;
    if (!strcmp(f, "--whitespace")) { opt->whitespace = 1; return 1; }
    if (!strcmp(f, "--eps-smoothing")) { opt->eps_smoothing = 1; return 1; }
    if (strcmp(f, "--beta") && strcmp(f, "--char-order")) return 0;
    if (flag_value(argc, argv, i, &v) != 0) return -1;
    if (!strcmp(f, "--beta")) return parse_float_flag(f, v, 0, 1000, &opt->beta) != 0 ? -1 : 1;
    long n;
    if (parse_int_flag(f, v, 1, CHRF_MAX_ORDER, &n) != 0) return -1;
    opt->char_order = (int)n;
    return 1;
}

int cmd_chrf(int argc, char **argv) {
    ScorerArgs a;
    ChrfOptions opt;
    chrf_options_default(&opt);
    int help;
    if (parse_scorer_args(argc, argv, "chrf", parse_chrf_flag, &opt, &a, &help) != 0) return -1;
    if (help) { fputs(chrf_usage, stdout); return stdout_flush(); }
    ScorerInput in;
    if (stdout_check_open() != 0 || scorer_input_read(&in, &a) != 0) return -1;
    double score;
    ChrfStats stats;
    int rc = chrf_corpus(&score, &stats, &opt, (const char *const *)in.hyps.lines, in.ref_lines, in.hyps.n, in.n_refs);
    scorer_input_free(&in);
    if (rc != 0) return attn_error("chrf: %s", attn_last_error());
    char line[64], sig[256];
    chrf_format(line, sizeof line, score, &opt);
    chrf_signature(sig, sizeof sig, &stats, &opt);
    if (a.score_only) printf("%.2f\n", score);
    else printf("%s\n%s\n", line, sig);
    return stdout_flush();
}
