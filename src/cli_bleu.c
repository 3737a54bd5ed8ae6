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

// Parses the flags both scorers share; returns 1 when argv[*i] was one of them.
static int parse_common_flag(int argc, char **argv, int *i, ScorerArgs *a, int *err) {
    const char *v;
    *err = 0;
    if (!strcmp(argv[*i], "--ref") || !strcmp(argv[*i], "-r")) {
        if (flag_value(argc, argv, i, &v) != 0) { *err = 1; return 1; }
        if (a->n_refs == MAX_REF_FILES) { *err = 1; attn_error("at most %d --ref files", MAX_REF_FILES); return 1; }
        a->ref_paths[a->n_refs++] = v;
        return 1;
    }
    if (!strcmp(argv[*i], "--input") || !strcmp(argv[*i], "-i")) {
        if (flag_value(argc, argv, i, &v) != 0) { *err = 1; return 1; }
        a->input = v;
        return 1;
    }
    if (!strcmp(argv[*i], "--score-only") || !strcmp(argv[*i], "-b")) { a->score_only = 1; return 1; }
    return 0;
}

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

int cmd_bleu(int argc, char **argv) {
    ScorerArgs a = {.input = "-"};
    BleuOptions opt;
    bleu_options_default(&opt);
    for (int i = 1; i < argc; i++) {
        int err;
        const char *v;
        if (parse_common_flag(argc, argv, &i, &a, &err)) { if (err) return -1; continue; }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(bleu_usage, stdout); return 0; }
        if (!strcmp(argv[i], "--tokenize")) {
            if (flag_value(argc, argv, &i, &v) != 0) return -1;
            if (!strcmp(v, "13a")) opt.tokenizer = BLEU_TOK_13A;
            else if (!strcmp(v, "none")) opt.tokenizer = BLEU_TOK_NONE;
            else return attn_error("bad value for --tokenize: '%s' (use 13a or none)", v);
        } else if (!strcmp(argv[i], "--smooth")) {
            if (flag_value(argc, argv, &i, &v) != 0) return -1;
            if (!strcmp(v, "exp")) opt.smooth = BLEU_SMOOTH_EXP;
            else if (!strcmp(v, "floor")) opt.smooth = BLEU_SMOOTH_FLOOR;
            else if (!strcmp(v, "add-k")) opt.smooth = BLEU_SMOOTH_ADD_K;
            else if (!strcmp(v, "none")) opt.smooth = BLEU_SMOOTH_NONE;
            else return attn_error("bad value for --smooth: '%s' (use exp, floor, add-k or none)", v);
        } else if (!strcmp(argv[i], "--smooth-value")) {
            if (flag_value(argc, argv, &i, &v) != 0 || parse_float_flag("--smooth-value", v, 0, 1e9, &opt.smooth_value) != 0)
                return -1;
        } else if (!strcmp(argv[i], "--max-order")) {
            long n;
            if (flag_value(argc, argv, &i, &v) != 0 || parse_int_flag("--max-order", v, 1, BLEU_MAX_ORDER, &n) != 0) return -1;
            opt.max_order = (int)n;
        } else if (!strcmp(argv[i], "--effective-order")) {
            opt.effective_order = 1;
        } else {
            return attn_error("bleu: unknown flag '%s' (try attn bleu --help)", argv[i]);
        }
    }
    if (a.n_refs == 0) return attn_error("bleu needs at least one --ref FILE (try attn bleu --help)");
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

int cmd_chrf(int argc, char **argv) {
    ScorerArgs a = {.input = "-"};
    ChrfOptions opt;
    chrf_options_default(&opt);
    for (int i = 1; i < argc; i++) {
        int err;
        const char *v;
        if (parse_common_flag(argc, argv, &i, &a, &err)) { if (err) return -1; continue; }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(chrf_usage, stdout); return 0; }
        if (!strcmp(argv[i], "--beta")) {
            if (flag_value(argc, argv, &i, &v) != 0 || parse_float_flag("--beta", v, 0, 1000, &opt.beta) != 0) return -1;
        } else if (!strcmp(argv[i], "--char-order")) {
            long n;
            if (flag_value(argc, argv, &i, &v) != 0 || parse_int_flag("--char-order", v, 1, CHRF_MAX_ORDER, &n) != 0) return -1;
            opt.char_order = (int)n;
        } else if (!strcmp(argv[i], "--whitespace")) {
            opt.whitespace = 1;
        } else if (!strcmp(argv[i], "--eps-smoothing")) {
            opt.eps_smoothing = 1;
        } else {
            return attn_error("chrf: unknown flag '%s' (try attn chrf --help)", argv[i]);
        }
    }
    if (a.n_refs == 0) return attn_error("chrf needs at least one --ref FILE (try attn chrf --help)");
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
