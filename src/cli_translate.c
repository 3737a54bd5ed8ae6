// `attn translate --model M`: source lines on stdin, one output line per
// input line on stdout (or N `index ||| hypothesis ||| score` lines with
// --nbest N), written as each chunk of input is decoded.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "common.h"
#include "data.h"
#include "decode.h"
#include "threads.h"

static const char *translate_usage =
    "usage: attn translate --model M [flags] < SOURCE > OUTPUT\n"
    "Decodes each line of standard input; empty lines give empty outputs.\n"
    "  --model FILE          model file (.safetensors written by attn train)\n"
    "  --beam K              beam size (default 1: greedy)\n"
    "  --alpha A             length penalty exponent (default 0: raw log-probability)\n"
    "  --length-penalty P    gnmt ((5+|Y|)/6)^A (default) or power |Y|^A\n"
    "  --nbest N             print N hypotheses per line as 'index ||| hypothesis ||| score'\n"
    "                        (score: the normalized log-probability the search ranks by)\n"
    "  --max-len L           at most L output tokens incl. </s> (default: the model's positions)\n"
    "  --max-len-a A, --max-len-b B   also at most A * source tokens + B (default 2, 10; A 0: off)\n"
    "  --sample              sample instead of searching; with --nbest N, N samples\n"
    "  --temperature T       sampling temperature (default 1)\n"
    "  --top-k K             sample among the K most likely tokens (default 0: all)\n"
    "  --top-p P             sample within the smallest set of mass P (default 1: all)\n"
    "  --seed S              sampling seed (default 1); line i always gets the same stream\n"
    "  --batch-size N        sentences decoded together (default 32)\n"
    "  --buffer-size N       lines read before decoding, sorted by length (default: batch size)\n"
    "  --max-src-len N       longer sources are truncated with a warning (default: training max_len - 1)\n"
    "  --attention FILE      write the cross-attention of each output as JSON lines\n"
    "  --threads N           threads (default: all cores)\n"
    "  --matmul fp32|bf16    matrix products in float32 (default) or with bfloat16 inputs and\n"
    "                        float32 sums (AVX512-BF16: faster, about 3 significant digits)\n";

typedef struct {
    const char *model_path, *attention_path;
    DecodeOptions opt;
    int buffer_size, max_src_len, threads;
    int nbest_format;   // --nbest given: print 'index ||| hypothesis ||| score' lines
} TranslateArgs;

static int parse_translate_args(int argc, char **argv, TranslateArgs *a, int *help) {
    memset(a, 0, sizeof *a);
    decode_options_default(&a->opt);
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        long n;
        int r = decode_parse_flag(argc, argv, &i, &a->opt);
        if (r < 0) return -1;
        if (r > 0) { a->nbest_format |= !strcmp(argv[i - 1], "--nbest"); continue; }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { *help = 1; return 0; }
        if (!strcmp(argv[i], "--model")) { if (flag_value(argc, argv, &i, &a->model_path)) return -1; }
        else if (!strcmp(argv[i], "--attention")) { if (flag_value(argc, argv, &i, &a->attention_path)) return -1; }
        else if (!strcmp(argv[i], "--buffer-size")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--buffer-size", v, 1, 1 << 20, &n)) return -1;
            a->buffer_size = (int)n;
        } else if (!strcmp(argv[i], "--max-src-len")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--max-src-len", v, 1, 1 << 20, &n)) return -1;
            a->max_src_len = (int)n;
        } else if (!strcmp(argv[i], "--threads")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--threads", v, 1, 1024, &n)) return -1;
            a->threads = (int)n;
        } else {
            return attn_error("translate: unknown flag '%s' (try attn translate --help)", argv[i]);
        }
    }
    if (!a->model_path) return attn_error("translate needs --model FILE (try attn translate --help)");
    if (a->attention_path && same_file(a->attention_path, a->model_path))
        return attn_error("--attention %s is the model file: it would be overwritten", a->attention_path);
    a->opt.attention = a->attention_path != NULL;
    if (decode_options_validate(&a->opt) != 0) return -1;
    if (a->buffer_size < a->opt.batch_size) a->buffer_size = a->opt.batch_size;
    return 0;
}

// ----------------------------------------------------------------------------
// Input chunks

typedef struct {
    int **ids;        // (n) source ids
    int *len, *cap;   // (n)
    int n, max;
} Chunk;

static void chunk_init(Chunk *c, int max) {
    memset(c, 0, sizeof *c);
    c->max = max;
    c->ids = calloc_check((size_t)max, sizeof(int *));
    c->len = calloc_check((size_t)max, sizeof(int));
    c->cap = calloc_check((size_t)max, sizeof(int));
}

static void chunk_free(Chunk *c) {
    for (int i = 0; i < c->max; i++) free(c->ids[i]);
    free(c->ids); free(c->len); free(c->cap);
}

// Reads up to c->max lines and encodes them; a source longer than
// max_tokens is truncated with a warning on stderr. Returns the number read
// (0 at the end of the input) or -1 on bad input.
static int chunk_read(Chunk *c, LineStream *in, const DecodeModel *dm, int max_tokens) {
    c->n = 0;
    while (c->n < c->max) {
        char *line;
        size_t len;
        int got = line_stream_next(in, &line, &len);
        if (got <= 0) return got < 0 ? -1 : c->n;
        char where[32];
        snprintf(where, sizeof where, "line %ld", in->line_no);
        int n = decode_encode_text(dm, dm->src_tok, line, max_tokens, &c->ids[c->n], &c->cap[c->n], where, "source");
        if (n < 0) return -1;
        c->len[c->n++] = n;
    }
    return c->n;
}

// ----------------------------------------------------------------------------
// Output

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static void json_pieces(FILE *f, const Tokenizer *t, const int *ids, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        if (i) fputc(',', f);
        const char *piece = tokenizer_piece(t, ids[i]);
        json_string(f, piece ? piece : "?");
    }
    if (n) fputc(',', f);
    json_string(f, "</s>");
    fputc(']', f);
}

// One JSON line: source and target pieces and the (|Y|, |X|) weights.
static void write_attention(FILE *f, long index, const DecodeModel *dm, const int *src, int src_len,
                            const Hypothesis *h, int S) {
    fprintf(f, "{\"index\":%ld,\"source\":", index);
    json_pieces(f, dm->src_tok, src, src_len);
    fputs(",\"target\":", f);
    json_pieces(f, dm->tgt_tok, h->tokens, h->len);
    fputs(",\"attention\":[", f);
    for (int t = 0; t <= h->len; t++) {
        fputs(t ? ",[" : "[", f);
        for (int j = 0; j < S; j++) fprintf(f, "%s%.5f", j ? "," : "", h->attention[(long)t * S + j]);
        fputc(']', f);
    }
    fputs("]}\n", f);
}

static int print_results(const TranslateArgs *a, const DecodeModel *dm, const Chunk *c, long first_line,
                         const DecodeResult *res, FILE *attn_out) {
    for (int i = 0; i < c->n; i++) {
        long index = first_line + i - 1;  // 0-based, as Moses and fairseq number n-best lists
        int empty = c->len[i] == 0;  // nothing but whitespace: an empty output
        int n_out = a->nbest_format ? res[i].n : 1;
        for (int k = 0; k < n_out; k++) {
            const Hypothesis *h = &res[i].hyps[k];
            char *text = empty ? strdup_check("") : decode_ids_to_text(dm->tgt_tok, h->tokens, h->len);
            if (!text) return attn_error("line %ld: output ids outside the target vocabulary", index + 1);
            if (a->nbest_format) printf("%ld ||| %s ||| %.6f\n", index, text, empty ? 0.0 : h->norm_score);
            else printf("%s\n", text);
            free(text);
        }
        if (attn_out && !empty) write_attention(attn_out, index, dm, c->ids[i], c->len[i], &res[i].hyps[0], res[i].src_len);
    }
    // Flushed per chunk, so that output streams; errors end the run here.
    if (attn_out && (fflush(attn_out) != 0 || ferror(attn_out)))
        return attn_error("%s: write error (the attention file is incomplete)", a->attention_path);
    return stdout_flush();
}

int cmd_translate(int argc, char **argv) {
    TranslateArgs a;
    int help;
    if (parse_translate_args(argc, argv, &a, &help) != 0) return -1;
    if (help) { fputs(translate_usage, stdout); return stdout_flush(); }
    if (stdout_check_open() != 0) return -1;
    if (a.threads > 0 && threads_set(a.threads) != 0) return -1;
    if (decode_select_matmul(&a.opt) != 0) return -1;
    DecodeModel dm;
    if (decode_model_open(&dm, a.model_path, a.opt.batch_size, a.max_src_len > 0 ? a.max_src_len + 1 : 0, 0) != 0)
        return -1;
    FILE *attn_out = NULL;
    if (a.attention_path && !(attn_out = fopen(a.attention_path, "w"))) {
        decode_model_close(&dm);
        return attn_error("%s: cannot write the attention file", a.attention_path);
    }
    Translator *tr = NULL;
    int rc = translator_create(&tr, &dm.model, &a.opt);
    Chunk c;
    chunk_init(&c, a.buffer_size);
    DecodeResult *res = calloc_check((size_t)a.buffer_size, sizeof(DecodeResult));
    LineStream in;
    line_stream_init(&in, stdin, "standard input", 0);
    long first_line = 1;
    while (rc == 0) {
        int n = chunk_read(&c, &in, &dm, dm.max_len - 1);
        if (n <= 0) { rc = n; break; }
        rc = translator_run(tr, (const int *const *)c.ids, c.len, n, first_line - 1, res);
        if (rc == 0) rc = print_results(&a, &dm, &c, first_line, res, attn_out);
        for (int i = 0; i < n; i++) decode_result_free(&res[i]);
        first_line += n;
    }
    free(res);
    line_stream_free(&in);
    chunk_free(&c);
    translator_free(tr);
    if (attn_out && fclose(attn_out) != 0 && rc == 0)
        rc = attn_error("%s: write error (the attention file is incomplete)", a.attention_path);
    decode_model_close(&dm);
    return rc;
}
