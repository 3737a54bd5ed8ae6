// `attn score --model M`: reads src<TAB>tgt lines on stdin and writes, per
// line, the target's total negative log-likelihood in nats (every target
// token and </s>, no label smoothing, no dropout), as chunks are scored.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "common.h"
#include "data.h"
#include "decode.h"
#include "threads.h"

static const char *score_usage =
    "usage: attn score --model M [flags] < PAIRS > NLL\n"
    "Per line 'source<TAB>target' of standard input, prints -log p(target </s> | source) in nats.\n"
    "  --model FILE          model file (.safetensors written by attn train)\n"
    "  --batch-size N        pairs scored together (default 16)\n"
    "  --max-len N           longest side in tokens incl. </s> (default: the training max_len);\n"
    "                        longer sides are truncated with a warning\n"
    "  --threads N           threads (default: all cores)\n";

typedef struct {
    int **ids;        // (2n) source, target ids of each pair
    int *len, *cap;   // (2n)
    int n, max;
} PairChunk;

static void pair_chunk_init(PairChunk *c, int max) {
    memset(c, 0, sizeof *c);
    c->max = max;
    c->ids = calloc_check((size_t)2 * max, sizeof(int *));
    c->len = calloc_check((size_t)2 * max, sizeof(int));
    c->cap = calloc_check((size_t)2 * max, sizeof(int));
}

static void pair_chunk_free(PairChunk *c) {
    for (int i = 0; i < 2 * c->max; i++) free(c->ids[i]);
    free(c->ids); free(c->len); free(c->cap);
}

// Reads up to c->max pairs; returns how many (0 at the end), -1 on bad input.
static int pair_chunk_read(PairChunk *c, LineStream *in, const DecodeModel *dm) {
    c->n = 0;
    while (c->n < c->max) {
        char *line;
        size_t len;
        int got = line_stream_next(in, &line, &len);
        if (got <= 0) return got < 0 ? -1 : c->n;
        char *target;
        if (split_tab_pair(line, &target, in->name, in->line_no, "source<TAB>target") != 0) return -1;
        char where[32];
        snprintf(where, sizeof where, "line %ld", in->line_no);
        int src = 2 * c->n, tgt = src + 1, max_tokens = dm->max_len - 1;
        if ((c->len[src] = decode_encode_text(dm, dm->src_tok, line, max_tokens, &c->ids[src], &c->cap[src], where, "source")) < 0 ||
            (c->len[tgt] = decode_encode_text(dm, dm->tgt_tok, target, max_tokens, &c->ids[tgt], &c->cap[tgt], where, "target")) < 0)
            return -1;
        c->n++;
    }
    return c->n;
}

int cmd_score(int argc, char **argv) {
    const char *model_path = NULL, *v;
    long batch = 16, max_len = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(score_usage, stdout); return stdout_flush(); }
        if (!strcmp(argv[i], "--model")) { if (flag_value(argc, argv, &i, &model_path)) return -1; }
        else if (!strcmp(argv[i], "--batch-size")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--batch-size", v, 1, 4096, &batch)) return -1;
        } else if (!strcmp(argv[i], "--max-len")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--max-len", v, 2, 1 << 20, &max_len)) return -1;
        } else if (!strcmp(argv[i], "--threads")) {
            if (flag_value(argc, argv, &i, &v) || parse_int_flag("--threads", v, 1, 1024, &threads)) return -1;
        } else {
            return attn_error("score: unknown flag '%s' (try attn score --help)", argv[i]);
        }
    }
    if (!model_path) return attn_error("score needs --model FILE (try attn score --help)");
    if (stdout_check_open() != 0) return -1;
    if (threads > 0 && threads_set((int)threads) != 0) return -1;
    DecodeModel dm;
    if (decode_model_open(&dm, model_path, (int)batch, (int)max_len, 1) != 0) return -1;
    PairChunk c;
    pair_chunk_init(&c, (int)batch);
    const int **src = malloc_check((size_t)batch * sizeof(int *)), **tgt = malloc_check((size_t)batch * sizeof(int *));
    int *src_len = malloc_check((size_t)batch * sizeof(int)), *tgt_len = malloc_check((size_t)batch * sizeof(int));
    double *nll = malloc_check((size_t)batch * sizeof(double));
    LineStream in;
    line_stream_init(&in, stdin, "standard input", 0);
    int rc = 0;
    for (;;) {
        int n = pair_chunk_read(&c, &in, &dm);
        if (n <= 0) { rc = n; break; }
        for (int i = 0; i < n; i++) {
            src[i] = c.ids[2 * i]; src_len[i] = c.len[2 * i];
            tgt[i] = c.ids[2 * i + 1]; tgt_len[i] = c.len[2 * i + 1];
        }
        if ((rc = score_pairs(&dm.model, src, src_len, tgt, tgt_len, n, nll, NULL)) != 0) break;
        for (int i = 0; i < n; i++) printf("%.6f\n", nll[i]);
        if ((rc = stdout_flush()) != 0) break;  // per chunk: the output streams
    }
    line_stream_free(&in);
    free(src); free(tgt); free(src_len); free(tgt_len); free(nll);
    pair_chunk_free(&c);
    decode_model_close(&dm);
    return rc;
}
