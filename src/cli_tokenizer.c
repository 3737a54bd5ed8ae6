// attn tokenizer learn|encode|decode: a standalone tokenizer tool in the
// spirit of spm_train / spm_encode / spm_decode. encode and decode stream
// stdin to stdout, one output line per input line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "common.h"
#include "data.h"
#include "tokenizer.h"

static const char usage_text[] =
    "usage: attn tokenizer learn --type bpe|char|word --vocab-size N --out TOKFILE [flags] FILE...\n"
    "       attn tokenizer encode --tokenizer TOKFILE [--ids] [--dropout P --seed S]  < text > pieces\n"
    "       attn tokenizer decode --tokenizer TOKFILE [--ids]                         < pieces > text\n"
    "\n"
    "learn: learns a tokenizer from the lines of the FILEs; a line with tabs\n"
    "(a TSV) counts as one line per column. A BOM and CRLF line ends are accepted.\n"
    "  --type T             bpe, char or word (default bpe)\n"
    "  --vocab-size N       vocabulary cap, specials (and byte pieces) included;\n"
    "                       bpe merges until it is reached (default 8000 for bpe,\n"
    "                       0 = no cap for char/word)\n"
    "  --min-frequency N    leave out characters, words and merges seen fewer than\n"
    "                       N times (default 2 for bpe, 1 for char/word)\n"
    "  --byte-fallback      unknown characters as UTF-8 byte pieces <0xNN> (default for bpe)\n"
    "  --no-byte-fallback   unknown characters as <unk> (default for char)\n"
    "  --out TOKFILE        where to write the tokenizer (plain text, see docs/tokenizer.md)\n"
    "\n"
    "encode: text lines on stdin; space-separated pieces (or ids) on stdout.\n"
    "  --ids                write ids instead of pieces\n"
    "  --dropout P          BPE-dropout: skip each merge with probability P (default 0)\n"
    "  --seed S             seed for --dropout (default 1)\n"
    "\n"
    "decode: space-separated pieces (or ids with --ids) on stdin; text on stdout.\n"
    "  Stops at </s>, skips <pad> and <s>; <unk> becomes U+2047.\n";

static int unknown_flag(const char *action, const char *flag) {
    return attn_error("tokenizer %s: unknown flag '%s' (try attn tokenizer --help)", action, flag);
}

// ----------------------------------------------------------------------------
// learn

// The text to learn from: every tab-separated column of every line of the
// files, as views into the files' buffers.
typedef struct {
    char **lines;       // (n) the columns
    long n, cap;
    DataLines *files;   // (n_files)
    int n_files;
} LineSet;

static void lineset_add(LineSet *ls, char *line) {
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? 2 * ls->cap : 1 << 16;
        ls->lines = realloc_check(ls->lines, (size_t)ls->cap * sizeof *ls->lines);
    }
    ls->lines[ls->n++] = line;
}

static void lineset_free(LineSet *ls) {
    for (int i = 0; i < ls->n_files; i++) data_lines_free(&ls->files[i]);
    free(ls->files);
    free(ls->lines);
}

// Reads a file's lines into ls, each tab-separated column a line of its own.
static int lineset_read(LineSet *ls, const char *path) {
    ls->files = realloc_check(ls->files, (size_t)(ls->n_files + 1) * sizeof *ls->files);
    DataLines *file = &ls->files[ls->n_files];
    if (data_lines_read(file, path)) return -1;
    ls->n_files++;
    for (int i = 0; i < file->n; i++) {
        for (char *col = file->lines[i];;) {
            char *tab = strchr(col, '\t');
            if (tab) *tab = '\0';
            lineset_add(ls, col);
            if (!tab) break;
            col = tab + 1;
        }
    }
    return 0;
}

static int lineset_has_text(const LineSet *ls) {
    for (long i = 0; i < ls->n; i++)
        if (ls->lines[i][0]) return 1;
    return 0;
}

static int parse_learn_flags(int argc, char **argv, TokenizerType *type, TokenizerOptions *o,
                             const char **out, int *first_file) {
    long vocab = -1, min_freq = -1;
    int byte_fallback = -1;
    *type = TOKENIZER_BPE;
    *out = NULL;
    int i = 2;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--type")) { if (flag_value(argc, argv, &i, &v) || tokenizer_type_from_name(v, type)) return -1; }
        else if (!strcmp(a, "--vocab-size")) { if (flag_value(argc, argv, &i, &v) || parse_int_flag(a, v, 0, 1 << 24, &vocab)) return -1; }
        else if (!strcmp(a, "--min-frequency")) { if (flag_value(argc, argv, &i, &v) || parse_int_flag(a, v, 1, 1L << 40, &min_freq)) return -1; }
        else if (!strcmp(a, "--out")) { if (flag_value(argc, argv, &i, out)) return -1; }
        else if (!strcmp(a, "--byte-fallback")) byte_fallback = 1;
        else if (!strcmp(a, "--no-byte-fallback")) byte_fallback = 0;
        else if (!strcmp(a, "--")) { i++; break; }
        else return unknown_flag("learn", a);
    }
    tokenizer_options_default(o, *type);
    if (vocab >= 0) o->vocab_size = (int)vocab;
    if (min_freq >= 0) o->min_frequency = min_freq;
    if (byte_fallback >= 0) o->byte_fallback = byte_fallback;
    if (byte_fallback == 1 && *type == TOKENIZER_WORD) return attn_error("--byte-fallback needs a char or bpe tokenizer");
    if (!*out) return attn_error("tokenizer learn: --out TOKFILE is required");
    if (i >= argc) return attn_error("tokenizer learn: no input FILE given");
    for (int k = i; k < argc; k++)
        if (same_file(*out, argv[k])) return attn_error("tokenizer learn: --out %s is an input file: it would be replaced", *out);
    *first_file = i;
    return 0;
}

static int tokenizer_learn_cmd(int argc, char **argv) {
    TokenizerType type;
    TokenizerOptions opts;
    const char *out;
    int first_file = 0;
    if (parse_learn_flags(argc, argv, &type, &opts, &out, &first_file)) return -1;
    double start = monotonic_seconds();
    LineSet ls = {0};
    int rc = 0;
    for (int i = first_file; i < argc && rc == 0; i++) rc = lineset_read(&ls, argv[i]);
    Tokenizer *t = NULL;
    if (rc == 0 && !lineset_has_text(&ls))
        rc = attn_error("tokenizer learn: no text to learn from in %s%s (only blank lines)", argv[first_file],
                        argc - first_file > 1 ? " ..." : "");
    if (rc == 0) rc = tokenizer_learn(&t, type, (const char *const *)ls.lines, ls.n, &opts);  // inputs were checked: no line errors
    if (rc == 0) rc = tokenizer_save(t, out);
    if (rc == 0)
        fprintf(stderr, "learned a %s tokenizer of %d pieces from %ld lines in %.2f s: %s\n",
                tokenizer_type_name(type), tokenizer_vocab_size(t), ls.n, monotonic_seconds() - start, out);
    tokenizer_free(t);
    lineset_free(&ls);
    return rc;
}

// ----------------------------------------------------------------------------
// encode / decode

typedef struct {
    Tokenizer *tok;
    int ids_mode;
    double dropout;
    long seed;
} CodecFlags;

static int parse_codec_flags(int argc, char **argv, const char *action, CodecFlags *f) {
    const char *path = NULL;
    f->tok = NULL;
    f->ids_mode = 0;
    f->dropout = 0;
    f->seed = 1;
    int encode = !strcmp(action, "encode");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--tokenizer")) { if (flag_value(argc, argv, &i, &path)) return -1; }
        else if (!strcmp(a, "--ids")) f->ids_mode = 1;
        else if (encode && !strcmp(a, "--dropout")) { if (flag_value(argc, argv, &i, &v) || parse_float_flag(a, v, 0, 1, &f->dropout)) return -1; }
        else if (encode && !strcmp(a, "--seed")) { if (flag_value(argc, argv, &i, &v) || parse_int_flag(a, v, 0, 0x7fffffffffffffffL, &f->seed)) return -1; }
        else return unknown_flag(action, a);
    }
    if (!path) return attn_error("tokenizer %s: --tokenizer TOKFILE is required", action);
    if (tokenizer_load(path, &f->tok)) return -1;
    if (f->dropout > 0 && tokenizer_type(f->tok) != TOKENIZER_BPE) {
        TokenizerType type = tokenizer_type(f->tok);
        tokenizer_free(f->tok);
        return attn_error("--dropout needs a bpe tokenizer; %s is %s", path, tokenizer_type_name(type));
    }
    return 0;
}

static void write_int(int v, FILE *out) {  // printf("%d") is a good part of encode's time
    char buf[16];
    int n = 0;
    unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
    do { buf[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) buf[n++] = '-';
    while (n) putc_unlocked(buf[--n], out);
}

// Writes the ids (or pieces) of one line, space-separated.
static void write_encoded(const CodecFlags *f, const int *ids, int n, FILE *out) {
    for (int i = 0; i < n; i++) {
        if (i) putc_unlocked(' ', out);
        if (f->ids_mode) write_int(ids[i], out);
        else fputs(tokenizer_piece(f->tok, ids[i]), out);
    }
    putc_unlocked('\n', out);
}

static int tokenizer_encode_cmd(int argc, char **argv) {
    CodecFlags f;
    if (stdout_check_open() || parse_codec_flags(argc, argv, "encode", &f)) return -1;
    Rng rng;
    rng_seed(&rng, (uint64_t)f.seed);
    LineStream in;
    line_stream_init(&in, stdin, "standard input", 1);
    int *ids = NULL;
    size_t ids_cap = 0;
    char *line;
    size_t len;
    int rc;
    while ((rc = line_stream_next(&in, &line, &len)) > 0) {
        if (len + 1 > ids_cap) ids = realloc_check(ids, (ids_cap = 2 * (len + 1)) * sizeof *ids);  // one id per byte at most
        int n = tokenizer_encode(f.tok, line, ids, (int)(len + 1), (float)f.dropout, &rng);
        if (n < 0) { rc = attn_error("%s:%ld: %s", in.name, in.line_no, attn_last_error()); break; }
        write_encoded(&f, ids, n, stdout);
    }
    if (rc == 0) rc = stdout_flush();
    line_stream_free(&in);
    free(ids);
    tokenizer_free(f.tok);
    return rc;
}

// Parses one space-separated token of a decode line into an id.
static int token_to_id(const CodecFlags *f, const char *token, const LineStream *in, int *id) {
    if (!f->ids_mode) {
        *id = tokenizer_piece_id(f->tok, token);
        if (*id < 0) return attn_error("%s:%ld: unknown piece '%s'", in->name, in->line_no, token);
        return 0;
    }
    char *end;
    long v = strtol(token, &end, 10);
    if (*end || end == token || v < 0 || v >= tokenizer_vocab_size(f->tok))
        return attn_error("%s:%ld: bad id '%s' (expected an integer in [0, %d))", in->name, in->line_no, token,
                          tokenizer_vocab_size(f->tok));
    *id = (int)v;
    return 0;
}

// Splits a decode line at spaces (runs of spaces are one separator) into
// ids[0..*n); ids must hold len / 2 + 1.
static int line_to_ids(const CodecFlags *f, char *line, const LineStream *in, int *ids, int *n) {
    *n = 0;
    for (char *tok = line, *sp; *tok; tok = sp ? sp + 1 : tok + strlen(tok)) {
        sp = strchr(tok, ' ');
        if (sp) *sp = '\0';
        if (*tok && token_to_id(f, tok, in, &ids[(*n)++]) != 0) return -1;
    }
    return 0;
}

static int tokenizer_decode_cmd(int argc, char **argv) {
    CodecFlags f;
    if (stdout_check_open() || parse_codec_flags(argc, argv, "decode", &f)) return -1;
    LineStream in;
    line_stream_init(&in, stdin, "standard input", 1);
    char *text = NULL, *line;
    size_t text_cap = 0, ids_cap = 0, len;
    int *ids = NULL, rc;
    while ((rc = line_stream_next(&in, &line, &len)) > 0) {
        if (len / 2 + 1 > ids_cap) ids = realloc_check(ids, (ids_cap = len + 2) * sizeof *ids);
        int n;
        if ((rc = line_to_ids(&f, line, &in, ids, &n)) != 0) break;
        size_t need = (size_t)n * (size_t)tokenizer_max_piece_bytes(f.tok) + 1;
        if (need > text_cap) text = realloc_check(text, text_cap = need);
        int out_len = tokenizer_decode(f.tok, ids, n, text, text_cap);
        if (out_len < 0) { rc = attn_error("%s:%ld: %s", in.name, in.line_no, attn_last_error()); break; }
        fwrite(text, 1, (size_t)out_len, stdout);
        putc_unlocked('\n', stdout);
    }
    if (rc == 0) rc = stdout_flush();
    line_stream_free(&in);
    free(text);
    free(ids);
    tokenizer_free(f.tok);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) return attn_error("tokenizer: missing action: learn, encode or decode (try attn tokenizer --help)");
    const char *action = argv[1];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_text, stdout); return stdout_flush(); }
    }
    if (!strcmp(action, "learn")) return tokenizer_learn_cmd(argc, argv);
    if (!strcmp(action, "encode")) return tokenizer_encode_cmd(argc, argv);
    if (!strcmp(action, "decode")) return tokenizer_decode_cmd(argc, argv);
    return attn_error("tokenizer: unknown action '%s' (expected learn, encode or decode)", action);
}
