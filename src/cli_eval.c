// `attn eval --model M --data F`: decodes the sources of a src<TAB>tgt file
// and prints every metric as a table and as one JSON line. Lines with the
// same source are one segment with several references (G2P words with more
// than one pronunciation; multi-reference test sets).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "common.h"
#include "data.h"
#include "decode.h"
#include "metrics.h"
#include "threads.h"

static const char *eval_usage =
    "usage: attn eval --model M --data FILE [flags]\n"
    "Decodes the sources of FILE (source<TAB>reference lines; equal sources are one\n"
    "segment with several references) and prints a table and one JSON line with:\n"
    "  bleu, chrf      corpus BLEU and chrF2 as sacreBLEU computes them by default\n"
    "  wer, per        word error rate (segments whose output matches no reference) and\n"
    "                  token error rate (edit distance to the closest reference), in %\n"
    "  exact           exact-match accuracy (100 - wer)\n"
    "  loss            teacher-forced NLL per target token, perplexity, token accuracy\n"
    "  --model FILE          model file (.safetensors written by attn train)\n"
    "  --data FILE           evaluation pairs\n"
    "  --metrics LIST        comma-separated subset of bleu,chrf,wer,per,exact,loss (default all)\n"
    "  --hyps FILE           also write one output per segment, in first-appearance order\n"
    "  --max-len N           longest side in tokens incl. </s> (default: the training max_len)\n"
    "  --threads N           threads (default: all cores)\n"
    "  decoding: --beam --alpha --length-penalty --max-len-a --max-len-b --sample --temperature\n"
    "            --top-k --top-p --seed --batch-size --matmul, as attn translate (default greedy;\n"
    "            --matmul bf16 also computes the loss with bf16 products)\n";

enum { M_BLEU = 1, M_CHRF = 2, M_WER = 4, M_PER = 8, M_EXACT = 16, M_LOSS = 32, M_ALL = 63 };

static int parse_metrics(const char *list, int *mask) {
    static const char *const names[] = {"bleu", "chrf", "wer", "per", "exact", "loss"};
    *mask = 0;
    char *copy = strdup_check(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int k = 0; k < 6; k++)
            if (!strcmp(tok, names[k])) { *mask |= 1 << k; found = 1; }
        if (!found) {
            int rc = attn_error("bad value for --metrics: unknown metric '%s' (use bleu,chrf,wer,per,exact,loss)", tok);
            free(copy);
            return rc;
        }
    }
    free(copy);
    if (!*mask) return attn_error("bad value for --metrics: empty list");
    return 0;
}

// ----------------------------------------------------------------------------
// Data: pairs, and segments grouping the pairs that share a source

typedef struct {
    char **src, **ref;    // (n) prepared texts (pointers into the file buffer)
    int n;
    int *seg_of;          // (n) segment of pair i
    int *seg_first;       // (n_seg) first pair of each segment, in order of appearance
    int **seg_refs;       // (n_seg) pair indices of each segment's references
    int *seg_n_refs;
    int n_seg;
    DataLines lines;
} EvalData;

static const char *const *sort_keys;
static int cmp_by_source(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    int c = strcmp(sort_keys[a], sort_keys[b]);
    return c ? c : a - b;
}

static void eval_data_free(EvalData *d) {
    for (int s = 0; s < d->n_seg; s++) free(d->seg_refs[s]);
    free(d->src); free(d->ref); free(d->seg_of); free(d->seg_first); free(d->seg_refs); free(d->seg_n_refs);
    data_lines_free(&d->lines);
}

// Numbers the segments (distinct sources, in order of first appearance) and
// lists each segment's pairs: sort the pairs by source, then every pair
// joins the group of the first pair with its source.
static void group_segments(EvalData *d) {
    int *order = malloc_check((size_t)d->n * sizeof(int));
    for (int i = 0; i < d->n; i++) order[i] = i;
    sort_keys = (const char *const *)d->src;
    qsort(order, (size_t)d->n, sizeof(int), cmp_by_source);
    int *group_head = malloc_check((size_t)d->n * sizeof(int));  // pair -> first pair with its source
    for (int k = 0; k < d->n; k++)
        group_head[order[k]] = k > 0 && !strcmp(d->src[order[k]], d->src[order[k - 1]]) ? group_head[order[k - 1]] : order[k];
    d->seg_of = malloc_check((size_t)d->n * sizeof(int));
    d->seg_first = malloc_check((size_t)d->n * sizeof(int));
    d->seg_n_refs = calloc_check((size_t)d->n, sizeof(int));
    for (int i = 0; i < d->n; i++) {
        if (group_head[i] == i) { d->seg_first[d->n_seg] = i; d->seg_of[i] = d->n_seg++; }
        else d->seg_of[i] = d->seg_of[group_head[i]];
        d->seg_n_refs[d->seg_of[i]]++;
    }
    d->seg_refs = malloc_check((size_t)d->n_seg * sizeof(int *));
    for (int s = 0; s < d->n_seg; s++) { d->seg_refs[s] = malloc_check((size_t)d->seg_n_refs[s] * sizeof(int)); d->seg_n_refs[s] = 0; }
    for (int i = 0; i < d->n; i++) { int s = d->seg_of[i]; d->seg_refs[s][d->seg_n_refs[s]++] = i; }
    free(group_head);
    free(order);
}

// Reads the pairs (prepared as the training data was) and groups them.
static int eval_data_read(EvalData *d, const char *path, const DecodeModel *dm) {
    memset(d, 0, sizeof *d);
    if (data_lines_read(&d->lines, path) != 0) return -1;
    d->src = malloc_check((size_t)(d->lines.n + 1) * sizeof(char *));
    d->ref = malloc_check((size_t)(d->lines.n + 1) * sizeof(char *));
    for (int i = 0; i < d->lines.n; i++) {
        d->src[i] = d->lines.lines[i];
        if (split_tab_pair(d->src[i], &d->ref[i], path, i + 1, "source<TAB>reference") != 0) { eval_data_free(d); return -1; }
        decode_prepare_text(dm, d->src[i]);
        decode_prepare_text(dm, d->ref[i]);
        d->n++;
    }
    group_segments(d);
    return 0;
}

// ----------------------------------------------------------------------------
// Encoding with truncation warnings

typedef struct {
    int **ids;
    int *len, *cap;
    int n;
} IdLists;

static int encode_all(IdLists *out, char *const *texts, const int *which, int n, const DecodeModel *dm,
                      const Tokenizer *t, const char *path, const char *side) {
    out->n = n;
    out->ids = calloc_check((size_t)(n + 1), sizeof(int *));
    out->len = calloc_check((size_t)(n + 1), sizeof(int));
    out->cap = calloc_check((size_t)(n + 1), sizeof(int));
    for (int i = 0; i < n; i++) {
        int k = which ? which[i] : i;
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, k + 1);
        if ((out->len[i] = decode_encode_text(dm, t, texts[k], dm->max_len - 1, &out->ids[i], &out->cap[i], where, side)) < 0)
            return -1;
    }
    return 0;
}

static void id_lists_free(IdLists *l) {
    for (int i = 0; i < l->n; i++) free(l->ids[i]);
    free(l->ids); free(l->len); free(l->cap);
}

// ----------------------------------------------------------------------------

typedef struct {
    BleuScore bleu;
    BleuStats bleu_stats;
    double chrf;
    ChrfStats chrf_stats;
    G2PStats g2p;
    ExactStats exact;
    TokenStats tokens;
    double decode_seconds;
} EvalResults;

static int compute_metrics(EvalResults *r, const EvalData *d, char **hyps, int mask) {
    BleuOptions bo;
    ChrfOptions co;
    bleu_options_default(&bo);
    chrf_options_default(&co);
    bleu_stats_init(&r->bleu_stats);
    chrf_stats_init(&r->chrf_stats);
    int max_refs = 1;
    for (int s = 0; s < d->n_seg; s++) if (d->seg_n_refs[s] > max_refs) max_refs = d->seg_n_refs[s];
    const char **refs = malloc_check((size_t)max_refs * sizeof(char *));
    int rc = 0;
    for (int s = 0; s < d->n_seg && rc == 0; s++) {
        for (int k = 0; k < d->seg_n_refs[s]; k++) refs[k] = d->ref[d->seg_refs[s][k]];
        int nr = d->seg_n_refs[s], any_ref = 0;
        for (int k = 0; k < nr; k++) any_ref |= refs[k][0] != '\0';
        // sacreBLEU refuses a segment whose references are all empty; so do we, naming the line
        if ((mask & (M_BLEU | M_CHRF)) && !any_ref)
            rc = attn_error("line %d: empty reference (BLEU and chrF need one; use --metrics to skip them)",
                            d->seg_first[s] + 1);
        if (rc == 0 && (mask & M_BLEU)) rc = bleu_add_sentence(&r->bleu_stats, &bo, hyps[s], refs, nr);
        if (rc == 0 && (mask & M_CHRF)) rc = chrf_add_sentence(&r->chrf_stats, &co, hyps[s], refs, nr);
        if (rc == 0) g2p_add_word(&r->g2p, hyps[s], refs, nr);
        exact_add(&r->exact, hyps[s], refs, nr);
    }
    free(refs);
    if (rc) return -1;
    bleu_compute(&r->bleu, &r->bleu_stats, &bo);
    r->chrf = chrf_compute(&r->chrf_stats, &co);
    return 0;
}

static void print_results(const EvalResults *r, const EvalData *d, int mask, const char *model, const char *data) {
    BleuOptions bo;
    ChrfOptions co;
    bleu_options_default(&bo);
    chrf_options_default(&co);
    char line[512], sig[256];
    printf("%-16s %s\n", "model", model);
    printf("%-16s %s (%d pairs, %d segments)\n", "data", data, d->n, d->n_seg);
    if (mask & M_BLEU) {
        bleu_format(line, sizeof line, &r->bleu);
        bleu_signature(sig, sizeof sig, &r->bleu_stats, &bo);
        printf("%-16s %8.2f   %s\n%-16s %8s   %s\n", "BLEU", r->bleu.score, line, "", "", sig);
    }
    if (mask & M_CHRF) {
        chrf_signature(sig, sizeof sig, &r->chrf_stats, &co);
        printf("%-16s %8.2f   %s\n", "chrF2", r->chrf, sig);
    }
    if (mask & M_WER) printf("%-16s %8.2f   %% of %ld segments matching no reference\n", "WER", g2p_wer(&r->g2p), r->g2p.words);
    if (mask & M_PER)
        printf("%-16s %8.2f   %% token edits to the closest reference (%ld / %ld)\n", "PER", g2p_per(&r->g2p),
               r->g2p.phone_edits, r->g2p.ref_phones);
    if (mask & M_EXACT) printf("%-16s %8.2f   %%\n", "exact match", exact_accuracy(&r->exact));
    if (mask & M_LOSS) {
        printf("%-16s %8.4f   nats per target token (teacher forced, %ld tokens)\n", "loss", token_loss(&r->tokens), r->tokens.tokens);
        printf("%-16s %8.3f\n", "perplexity", token_perplexity(&r->tokens));
        printf("%-16s %8.2f   %%\n", "token accuracy", token_accuracy(&r->tokens));
    }
    printf("%-16s %8.2f   sentences/s (%.2f s)\n", "decoding speed", d->n_seg / (r->decode_seconds > 0 ? r->decode_seconds : 1e-9),
           r->decode_seconds);
    // one JSON line
    printf("{\"segments\":%d,\"pairs\":%d", d->n_seg, d->n);
    if (mask & M_BLEU) printf(",\"bleu\":%.4f", r->bleu.score);
    if (mask & M_CHRF) printf(",\"chrf\":%.4f", r->chrf);
    if (mask & M_WER) printf(",\"wer\":%.4f", g2p_wer(&r->g2p));
    if (mask & M_PER) printf(",\"per\":%.4f", g2p_per(&r->g2p));
    if (mask & M_EXACT) printf(",\"exact\":%.4f", exact_accuracy(&r->exact));
    if (mask & M_LOSS)
        printf(",\"loss\":%.6f,\"ppl\":%.6f,\"token_acc\":%.4f", token_loss(&r->tokens), token_perplexity(&r->tokens),
               token_accuracy(&r->tokens));
    printf(",\"decode_seconds\":%.3f}\n", r->decode_seconds);
}

typedef struct {
    const char *model_path, *data_path, *hyps_path;
    long max_len, threads;
    int mask;
    DecodeOptions opt;
} EvalArgs;

static int parse_eval_args(int argc, char **argv, EvalArgs *a, int *help) {
    memset(a, 0, sizeof *a);
    a->mask = M_ALL;
    decode_options_default(&a->opt);
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        // eval's --max-len caps the input sides, as in attn score; it must be
        // matched before the decoding flags, whose --max-len caps the output.
        if (!strcmp(argv[i], "--max-len")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--max-len", v, 2, 1 << 20, &a->max_len)) return -1;
            continue;
        }
        int r = decode_parse_flag(argc, argv, &i, &a->opt);
        if (r < 0) return -1;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { *help = 1; return 0; }
        if (!strcmp(argv[i], "--model")) { if (flag_value(argc, argv, &i, &a->model_path)) return -1; }
        else if (!strcmp(argv[i], "--data")) { if (flag_value(argc, argv, &i, &a->data_path)) return -1; }
        else if (!strcmp(argv[i], "--hyps")) { if (flag_value(argc, argv, &i, &a->hyps_path)) return -1; }
        else if (!strcmp(argv[i], "--metrics")) { if (flag_value(argc, argv, &i, &v) || parse_metrics(v, &a->mask)) return -1; }
        else if (!strcmp(argv[i], "--threads")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--threads", v, 1, 1024, &a->threads)) return -1;
        } else {
            return attn_error("eval: unknown flag '%s' (try attn eval --help)", argv[i]);
        }
    }
    if (!a->model_path || !a->data_path) return attn_error("eval needs --model FILE and --data FILE (try attn eval --help)");
    if (a->hyps_path && (same_file(a->hyps_path, a->data_path) || same_file(a->hyps_path, a->model_path)))
        return attn_error("--hyps %s is an input file: it would be overwritten", a->hyps_path);
    a->opt.nbest = 1;
    return decode_options_validate(&a->opt);
}

// Decodes the source of every segment: hyps[s] (allocated) is the text of
// segment s's best output.
static int decode_segments(char **hyps, double *seconds, const EvalData *d, DecodeModel *dm,
                           const DecodeOptions *opt, const char *path) {
    IdLists src = {0};
    Translator *tr = NULL;
    DecodeResult *res = calloc_check((size_t)d->n_seg, sizeof(DecodeResult));
    int rc = encode_all(&src, d->src, d->seg_first, d->n_seg, dm, dm->src_tok, path, "source");
    if (rc == 0) rc = translator_create(&tr, &dm->model, opt);
    if (rc == 0) {
        double t0 = monotonic_seconds();
        rc = translator_run(tr, (const int *const *)src.ids, src.len, d->n_seg, 0, res);
        *seconds = monotonic_seconds() - t0;
    }
    for (int s = 0; s < d->n_seg && rc == 0; s++)
        if (!(hyps[s] = decode_ids_to_text(dm->tgt_tok, res[s].hyps[0].tokens, res[s].hyps[0].len)))
            rc = attn_error("segment %d: output ids outside the target vocabulary", s + 1);
    for (int s = 0; s < d->n_seg; s++) decode_result_free(&res[s]);
    free(res);
    translator_free(tr);
    id_lists_free(&src);
    return rc;
}

// Teacher-forced loss over every pair (not per segment: each reference counts).
static int teacher_forced_loss(TokenStats *stats, const EvalData *d, DecodeModel *dm, const char *path) {
    IdLists src = {0}, tgt = {0};
    double *nll = malloc_check((size_t)d->n * sizeof(double));
    int rc = encode_all(&src, d->src, NULL, d->n, dm, dm->src_tok, path, "source");
    if (rc == 0) rc = encode_all(&tgt, d->ref, NULL, d->n, dm, dm->tgt_tok, path, "reference");
    if (rc == 0)
        rc = score_pairs(&dm->model, (const int *const *)src.ids, src.len, (const int *const *)tgt.ids, tgt.len,
                         d->n, nll, stats);
    free(nll);
    id_lists_free(&src);
    id_lists_free(&tgt);
    return rc;
}

static int write_hyps(const char *path, char *const *hyps, int n) {
    FILE *f = fopen(path, "w");
    if (!f) return attn_error("%s: cannot write the hypotheses: %s", path, strerror(errno));
    for (int s = 0; s < n; s++) fprintf(f, "%s\n", hyps[s]);
    int failed = ferror(f);
    if (fclose(f) != 0 || failed) return attn_error("%s: write error (the hypotheses are incomplete)", path);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    EvalArgs a;
    int help;
    if (parse_eval_args(argc, argv, &a, &help) != 0) return -1;
    if (help) { fputs(eval_usage, stdout); return stdout_flush(); }
    if (stdout_check_open() != 0) return -1;
    if (a.threads > 0 && threads_set((int)a.threads) != 0) return -1;
    if (decode_select_matmul(&a.opt) != 0) return -1;
    DecodeModel dm;
    if (decode_model_open(&dm, a.model_path, a.opt.batch_size, (int)a.max_len, (a.mask & M_LOSS) != 0) != 0) return -1;
    EvalData d;
    if (eval_data_read(&d, a.data_path, &dm) != 0) { decode_model_close(&dm); return -1; }
    EvalResults r = {0};
    char **hyps = calloc_check((size_t)d.n_seg, sizeof(char *));
    int rc = decode_segments(hyps, &r.decode_seconds, &d, &dm, &a.opt, a.data_path);
    if (rc == 0) rc = compute_metrics(&r, &d, hyps, a.mask);
    if (rc == 0 && (a.mask & M_LOSS)) rc = teacher_forced_loss(&r.tokens, &d, &dm, a.data_path);
    if (rc == 0 && a.hyps_path) rc = write_hyps(a.hyps_path, hyps, d.n_seg);
    if (rc == 0) {
        print_results(&r, &d, a.mask, a.model_path, a.data_path);
        rc = stdout_flush();
    }
    for (int s = 0; s < d.n_seg; s++) free(hyps[s]);
    free(hyps);
    eval_data_free(&d);
    decode_model_close(&dm);
    return rc;
}
