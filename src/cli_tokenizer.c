// attn tokenizer learn|encode|decode: a standalone tokenizer tool in the
// spirit of spm_train / spm_encode / spm_decode. encode and decode stream
// stdin to stdout, one output line per input line.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "common.h"
#include "tokenizer.h"
#include "utf8.h"

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

// Re-records the last error with "stdin: line N: " in front.
static int line_error(long line_no) {
    char why[512];
    snprintf(why, sizeof why, "%s", attn_last_error());
    return attn_error("stdin: line %ld: %s", line_no, why);
}

static int unknown_flag(const char *action, const char *flag) {
    return attn_error("tokenizer %s: unknown flag '%s' (try attn tokenizer --help)", action, flag);
}

// ----------------------------------------------------------------------------
// learn

typedef struct {
    char **lines;  // (n) views into the files' buffers
    long n, cap;
    char **buffers;
    int n_buffers;
} LineSet;

static void lineset_add(LineSet *ls, char *line) {
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? 2 * ls->cap : 1 << 16;
        ls->lines = realloc_check(ls->lines, (size_t)ls->cap * sizeof *ls->lines);
    }
    ls->lines[ls->n++] = line;
}

static void lineset_free(LineSet *ls) {
    for (int i = 0; i < ls->n_buffers; i++) free(ls->buffers[i]);
    free(ls->buffers);
    free(ls->lines);
}

// Reads a file's lines (each tab-separated column a line of its own) into ls,
// in place: line ends and tabs become NULs.
static int read_lines(LineSet *ls, const char *path) {
    char *text;
    size_t len;
    if (read_file(path, &text, &len)) return -1;
    ls->buffers = realloc_check(ls->buffers, (size_t)(ls->n_buffers + 1) * sizeof *ls->buffers);
    ls->buffers[ls->n_buffers++] = text;
    char *s = text, *end = text + len;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3;  // BOM
    for (long line_no = 1; s < end; line_no++) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *line_end = nl ? nl : end;
        if (line_end > s && line_end[-1] == '\r') line_end--;
        if (memchr(s, '\0', (size_t)(line_end - s))) return attn_error("%s:%ld: NUL byte in a text file", path, line_no);
        long bad = utf8_first_invalid(s, (size_t)(line_end - s));
        if (bad >= 0) return attn_error("%s:%ld: invalid UTF-8 at byte %ld", path, line_no, bad + 1);
        *line_end = '\0';
        for (char *col = s;;) {
            char *tab = strchr(col, '\t');
            if (tab) *tab = '\0';
            lineset_add(ls, col);
            if (!tab) break;
            col = tab + 1;
        }
        s = nl ? nl + 1 : end;
    }
    return 0;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    *first_file = i;
    return 0;
}

static int tokenizer_learn_cmd(int argc, char **argv) {
    TokenizerType type;
    TokenizerOptions opts;
    const char *out;
    int first_file;
    if (parse_learn_flags(argc, argv, &type, &opts, &out, &first_file)) return -1;
    double start = seconds_now();
    LineSet ls = {0};
    for (int i = first_file; i < argc; i++) {
        if (read_lines(&ls, argv[i])) { lineset_free(&ls); return -1; }
    }
    int rc = 0;
    Tokenizer *t = NULL;
    if (ls.n == 0) rc = attn_error("tokenizer learn: no text to learn from in %s%s", argv[first_file], argc - first_file > 1 ? " ..." : "");
    else if (tokenizer_learn(&t, type, (const char *const *)ls.lines, ls.n, &opts)) rc = -1;  // inputs were checked: no line errors
    else rc = tokenizer_save(t, out);
    if (rc == 0)
        fprintf(stderr, "learned a %s tokenizer of %d pieces from %ld lines in %.2f s: %s\n",
                tokenizer_type_name(type), tokenizer_vocab_size(t), ls.n, seconds_now() - start, out);
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

static int finish_output(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) return attn_error("stdout: write error");
    return 0;
}

static int tokenizer_encode_cmd(int argc, char **argv) {
    CodecFlags f;
    if (parse_codec_flags(argc, argv, "encode", &f)) return -1;
    Rng rng;
    rng_seed(&rng, (uint64_t)f.seed);
    char *line = NULL;
    size_t line_cap = 0;
    int *ids = NULL;
    long ids_cap = 0, line_no = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &line_cap, stdin)) >= 0) {
        line_no++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if ((size_t)len != strlen(line)) { rc = attn_error("stdin: line %ld: NUL byte", line_no); break; }
        if (len + 1 > ids_cap) ids = realloc_check(ids, (size_t)(ids_cap = 2 * (len + 1)) * sizeof *ids);
        int n = tokenizer_encode(f.tok, line, ids, (int)(len + 1), (float)f.dropout, &rng);
        if (n < 0) { rc = line_error(line_no); break; }
        for (int i = 0; i < n; i++) {
            if (i) putc_unlocked(' ', stdout);
            if (f.ids_mode) write_int(ids[i], stdout);
            else fputs(tokenizer_piece(f.tok, ids[i]), stdout);
        }
        putc_unlocked('\n', stdout);
    }
    if (rc == 0 && ferror(stdin)) rc = attn_error("stdin: read error");
    if (rc == 0) rc = finish_output();
    free(line);
    free(ids);
    tokenizer_free(f.tok);
    return rc;
}

// Parses one space-separated token of a decode line into an id.
static int token_to_id(const CodecFlags *f, const char *token, long line_no, int *id) {
    if (!f->ids_mode) {
        *id = tokenizer_piece_id(f->tok, token);
        if (*id < 0) return attn_error("stdin: line %ld: unknown piece '%s'", line_no, token);
        return 0;
    }
    char *end;
    long v = strtol(token, &end, 10);
    if (*end || end == token || v < 0 || v >= tokenizer_vocab_size(f->tok))
        return attn_error("stdin: line %ld: bad id '%s' (expected an integer in [0, %d))", line_no, token, tokenizer_vocab_size(f->tok));
    *id = (int)v;
    return 0;
}

static int tokenizer_decode_cmd(int argc, char **argv) {
    CodecFlags f;
    if (parse_codec_flags(argc, argv, "decode", &f)) return -1;
    char *line = NULL, *text = NULL;
    size_t line_cap = 0, text_cap = 0;
    int *ids = NULL;
    long ids_cap = 0, line_no = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &line_cap, stdin)) >= 0) {
        line_no++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if ((size_t)len != strlen(line)) { rc = attn_error("stdin: line %ld: NUL byte", line_no); break; }
        long bad = utf8_first_invalid(line, (size_t)len);
        if (bad >= 0) { rc = attn_error("stdin: line %ld: invalid UTF-8 at byte %ld", line_no, bad + 1); break; }
        if (len / 2 + 1 > ids_cap) ids = realloc_check(ids, (size_t)(ids_cap = len + 2) * sizeof *ids);
        int n = 0;
        for (char *tok = line, *sp; rc == 0 && *tok; tok = sp ? sp + 1 : tok + strlen(tok)) {
            sp = strchr(tok, ' ');
            if (sp) *sp = '\0';
            if (*tok) rc = token_to_id(&f, tok, line_no, &ids[n++]);  // runs of spaces are one separator
        }
        if (rc) break;
        size_t need = (size_t)n * (size_t)tokenizer_max_piece_bytes(f.tok) + 1;
        if (need > text_cap) text = realloc_check(text, text_cap = need);
        int out_len = tokenizer_decode(f.tok, ids, n, text, text_cap);
        if (out_len < 0) { rc = line_error(line_no); break; }
        fwrite(text, 1, (size_t)out_len, stdout);
        putc_unlocked('\n', stdout);
    }
    if (rc == 0 && ferror(stdin)) rc = attn_error("stdin: read error");
    if (rc == 0) rc = finish_output();
    free(line);
    free(text);
    free(ids);
    tokenizer_free(f.tok);
    return rc;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2) return attn_error("tokenizer: missing action: learn, encode or decode (try attn tokenizer --help)");
    const char *action = argv[1];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage_text, stdout); return 0; }
    }
    if (!strcmp(action, "learn")) return tokenizer_learn_cmd(argc, argv);
    if (!strcmp(action, "encode")) return tokenizer_encode_cmd(argc, argv);
    if (!strcmp(action, "decode")) return tokenizer_decode_cmd(argc, argv);
    return attn_error("tokenizer: unknown action '%s' (expected learn, encode or decode)", action);
}
