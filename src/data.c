// Parallel text: reading, cleaning, splitting, writing (see data.h).
#include "data.h"
#include "common.h"
#include "rng.h"
#include "utf8.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Lines of a text file

static int check_line(const char *name, long line_no, const char *s, size_t n) {
    if (n > DATA_MAX_LINE_BYTES)
        return attn_error("%s:%ld: line is %zu bytes, over the limit of %d bytes (is this a text file with one pair a line?)",
                          name, line_no, n, DATA_MAX_LINE_BYTES);
    const char *nul = memchr(s, '\0', n);
    if (nul) return attn_error("%s:%ld:%ld: NUL byte (is this a binary file?)", name, line_no, (long)(nul - s) + 1);
    long bad = utf8_first_invalid(s, n);
    if (bad >= 0)
        return attn_error("%s:%ld:%ld: invalid UTF-8 (byte 0x%02X); convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                          name, line_no, bad + 1, (unsigned)(unsigned char)s[bad]);
    return 0;
}

static size_t bom_bytes(const char *s, size_t n) {
    return n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

// Cuts the line end ("\n", "\r\n", or a final "\r") off s[0..*n), writing NULs.
static void cut_line_end(char *s, size_t *n) {
    if (*n > 0 && s[*n - 1] == '\n') s[--*n] = '\0';
    if (*n > 0 && s[*n - 1] == '\r') s[--*n] = '\0';
}

int data_lines_read(DataLines *tl, const char *path) {
    memset(tl, 0, sizeof *tl);
    int from_stdin = !strcmp(path, "-");
    const char *name = from_stdin ? "standard input" : path;
    char *text;
    size_t len;
    if ((from_stdin ? read_stream(stdin, name, &text, &len) : read_file(path, &text, &len)) != 0) return -1;
    size_t pos = bom_bytes(text, len);
    if (len - pos == 0) { free(text); return attn_error("%s: empty file", name); }
    int cap = 1024;
    char **lines = malloc_check(sizeof(char *) * (size_t)cap);
    int n = 0;
    while (pos < len) {
        char *s = text + pos;
        char *nl = memchr(s, '\n', len - pos);
        size_t n_bytes = nl ? (size_t)(nl - s) + 1 : len - pos;
        pos += n_bytes;
        cut_line_end(s, &n_bytes);
        if (check_line(name, n + 1, s, n_bytes) != 0) { free(lines); free(text); return -1; }
        if (n == cap) lines = realloc_check(lines, sizeof(char *) * (size_t)(cap *= 2));
        lines[n++] = s;
    }
    tl->lines = lines;
    tl->n = n;
    tl->text = text;
    return 0;
}

void data_lines_free(DataLines *tl) {
    free(tl->lines);
    free(tl->text);
    memset(tl, 0, sizeof *tl);
}

void line_stream_init(LineStream *ls, FILE *in, const char *name, int exact) {
    memset(ls, 0, sizeof *ls);
    ls->in = in;
    ls->name = name;
    ls->exact = exact;
}

int line_stream_next(LineStream *ls, char **line, size_t *len) {
    errno = 0;
    ssize_t got = getline(&ls->buf, &ls->cap, ls->in);
    if (got < 0) {
        if (ferror(ls->in)) return attn_error("%s: read error: %s", ls->name, strerror(errno ? errno : EIO));
        return 0;
    }
    ls->line_no++;
    size_t n = (size_t)got, skip = 0;
    if (ls->exact) {
        if (n > 0 && ls->buf[n - 1] == '\n') ls->buf[--n] = '\0';
    } else {
        cut_line_end(ls->buf, &n);
        if (ls->line_no == 1) skip = bom_bytes(ls->buf, n);
    }
    if (check_line(ls->name, ls->line_no, ls->buf + skip, n - skip) != 0) return -1;
    *line = ls->buf + skip;
    *len = n - skip;
    return 1;
}

void line_stream_free(LineStream *ls) {
    free(ls->buf);
    ls->buf = NULL;
    ls->cap = 0;
}

// ----------------------------------------------------------------------------
// Parallel text

void parallel_append(ParallelText *pt, const char *src, const char *tgt, int line) {
    if (pt->n == pt->cap) {
        pt->cap = pt->cap ? 2 * pt->cap : 1024;
        pt->src = realloc_check(pt->src, sizeof(char *) * (size_t)pt->cap);
        pt->tgt = realloc_check(pt->tgt, sizeof(char *) * (size_t)pt->cap);
        pt->line = realloc_check(pt->line, sizeof(int) * (size_t)pt->cap);
    }
    pt->src[pt->n] = strdup_check(src);
    pt->tgt[pt->n] = strdup_check(tgt);
    pt->line[pt->n] = line;
    pt->n++;
}

void parallel_free(ParallelText *pt) {
    for (int i = 0; i < pt->n; i++) { free(pt->src[i]); free(pt->tgt[i]); }
    free(pt->src);
    free(pt->tgt);
    free(pt->line);
    memset(pt, 0, sizeof *pt);
}

int split_tab_pair(char *line, char **second, const char *name, long line_no, const char *expected) {
    char *tab = strchr(line, '\t');
    if (!tab) return attn_error("%s:%ld: no tab (expected %s)", name, line_no, expected);
    if (strchr(tab + 1, '\t')) return attn_error("%s:%ld: more than one tab (expected %s)", name, line_no, expected);
    *tab = '\0';
    *second = tab + 1;
    return 0;
}

int parallel_read_tsv(ParallelText *pt, const char *path) {
    memset(pt, 0, sizeof *pt);
    DataLines tl;
    if (data_lines_read(&tl, path) != 0) return -1;
    for (int i = 0; i < tl.n; i++) {
        char *src = tl.lines[i], *tgt;
        if (src[0] == '\0') { parallel_append(pt, "", "", i + 1); continue; }  // blank: an empty pair
        if (split_tab_pair(src, &tgt, path, i + 1, "src<TAB>tgt") != 0) {
            data_lines_free(&tl);
            parallel_free(pt);
            return -1;
        }
        parallel_append(pt, src, tgt, i + 1);
    }
    data_lines_free(&tl);
    return 0;
}

int parallel_read_files(ParallelText *pt, const char *src_path, const char *tgt_path) {
    memset(pt, 0, sizeof *pt);
    DataLines src, tgt;
    if (data_lines_read(&src, src_path) != 0) return -1;
    if (data_lines_read(&tgt, tgt_path) != 0) { data_lines_free(&src); return -1; }
    if (src.n != tgt.n) {
        int ns = src.n, nt = tgt.n;
        data_lines_free(&src);
        data_lines_free(&tgt);
        return attn_error("%s has %d lines but %s has %d: the files must be aligned line by line",
                          src_path, ns, tgt_path, nt);
    }
    for (int i = 0; i < src.n; i++) {
        // A tab inside a side would break the TSV we write: make it a space.
        for (char *p = src.lines[i]; *p; p++) if (*p == '\t') *p = ' ';
        for (char *p = tgt.lines[i]; *p; p++) if (*p == '\t') *p = ' ';
        parallel_append(pt, src.lines[i], tgt.lines[i], i + 1);
    }
    data_lines_free(&src);
    data_lines_free(&tgt);
    return 0;
}

int parallel_write_tsv(const ParallelText *pt, const int *idx, int n, const char *path) {
    if (!idx) n = pt->n;
    StrBuf sb = {0};
    sb_append(&sb, "", 0);  // a buffer even for zero pairs
    for (int k = 0; k < n; k++) {
        int i = idx ? idx[k] : k;
        sb_puts(&sb, pt->src[i]);
        sb_append(&sb, "\t", 1);
        sb_puts(&sb, pt->tgt[i]);
        sb_append(&sb, "\n", 1);
    }
    int rc = write_file_atomic(path, sb.data, sb.len);
    sb_free(&sb);
    return rc;
}

// ----------------------------------------------------------------------------
// Character classes and in-place normalization

const char *const clean_rule_names[CLEAN_N_RULES] = {"control", "empty", "too-long", "ratio", "duplicate"};

// Unicode space separators (Zs) and line/paragraph separators, plus TAB.
static int is_space_cp(uint32_t c) {
    return c == ' ' || c == '\t' || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_control_cp(uint32_t c) {
    return (c < 0x20 && c != '\t') || c == 0x7F || (c >= 0x80 && c <= 0x9F);
}

// Decodes the code point at s (valid UTF-8 assumed; a bad byte reads as itself).
static int next_cp(const char *s, uint32_t *cp) {
    int len = utf8_decode(s, 4, cp);  // the NUL terminator stops short sequences
    if (len < 0) { *cp = (unsigned char)*s; len = 1; }
    return len;
}

int has_control_char(const char *s) {
    while (*s) {
        uint32_t c;
        s += next_cp(s, &c);
        if (is_control_cp(c)) return 1;
    }
    return 0;
}

size_t normalize_whitespace(char *s) {
    char *out = s;
    int pending_space = 0;
    const char *p = s;
    while (*p) {
        uint32_t c;
        int len = next_cp(p, &c);
        if (is_space_cp(c)) {
            pending_space = out != s;  // no leading space
        } else {
            if (pending_space) *out++ = ' ';
            pending_space = 0;
            memmove(out, p, (size_t)len);
            out += len;
        }
        p += len;
    }
    *out = '\0';
    return (size_t)(out - s);
}

// Simple lowercase mapping for the scripts covered (see docs/data.md). Every
// mapping keeps the UTF-8 length, except U+0130 (İ -> i), which shrinks it.
static uint32_t lower_cp(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0xC0) return c;
    if (c <= 0xDE) return c == 0xD7 ? c : c + 32;                      // Latin-1, not ×
    if (c == 0x130) return 'i';
    if (c == 0x178) return 0xFF;                                        // Ÿ
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))      // Latin Ext-A pairs
        return (c & 1) ? c : c + 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return (c & 1) ? c + 1 : c;
    if (c == 0x386) return 0x3AC;                                       // Greek tonos
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;          // Greek
    if (c >= 0x400 && c <= 0x40F) return c + 80;                        // Cyrillic Ѐ..Џ
    if (c >= 0x410 && c <= 0x42F) return c + 32;                        // Cyrillic А..Я
    return c;
}

size_t utf8_lowercase(char *s) {
    char *out = s;
    const char *p = s;
    while (*p) {
        uint32_t c;
        int len = next_cp(p, &c);
        uint32_t lc = lower_cp(c);
        if (lc == c) {
            memmove(out, p, (size_t)len);
            out += len;
        } else {
            out += utf8_encode(lc, out);  // never longer than len: writes stay behind p
        }
        p += len;
    }
    *out = '\0';
    return (size_t)(out - s);
}

long count_whitespace_tokens(const char *s) {
    long n = 0;
    int in_token = 0;
    for (; *s; s++) {
        int space = *s == ' ' || *s == '\t';
        if (!space && !in_token) n++;
        in_token = !space;
    }
    return n;
}

long count_code_points(const char *s) {
    long n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

// ----------------------------------------------------------------------------
// Cleaning

void clean_config_default(CleanConfig *cfg) {
    cfg->max_tokens = 250;
    cfg->max_chars = 0;
    cfg->max_ratio = 9.0;
    cfg->dedup = 1;
    cfg->lowercase = 0;
}

static uint64_t hash_pair(const char *src, const char *tgt) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over src, a separator, tgt
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xFF) * 1099511628211ull;     // 0xFF never occurs in UTF-8
    for (const unsigned char *p = (const unsigned char *)tgt; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return h;
}

// Open-addressing set of kept pairs, for the duplicate rule.
typedef struct {
    int *slot;        // (cap) pair index, -1 = empty
    uint64_t *hash;   // (cap)
    size_t cap;
} PairSet;

// Returns 1 when an equal pair is already in the set, else inserts i.
static int pair_set_seen_or_add(PairSet *set, const ParallelText *pt, int i) {
    uint64_t h = hash_pair(pt->src[i], pt->tgt[i]);
    size_t k = (size_t)h & (set->cap - 1);
    while (set->slot[k] >= 0) {
        int j = set->slot[k];
        if (set->hash[k] == h && !strcmp(pt->src[j], pt->src[i]) && !strcmp(pt->tgt[j], pt->tgt[i])) return 1;
        k = (k + 1) & (set->cap - 1);
    }
    set->slot[k] = i;
    set->hash[k] = h;
    return 0;
}

// The first rule pair i breaks, or -1. Needs normalized text.
static int broken_rule(const ParallelText *pt, int i, const CleanConfig *cfg) {
    const char *src = pt->src[i], *tgt = pt->tgt[i];
    if (!src[0] || !tgt[0]) return CLEAN_EMPTY;
    long ts = count_whitespace_tokens(src), tt = count_whitespace_tokens(tgt);
    if (cfg->max_tokens > 0 && (ts > cfg->max_tokens || tt > cfg->max_tokens)) return CLEAN_TOO_LONG;
    if (cfg->max_chars > 0 && (count_code_points(src) > cfg->max_chars || count_code_points(tgt) > cfg->max_chars))
        return CLEAN_TOO_LONG;
    double longer = ts > tt ? (double)ts : (double)tt, shorter = ts > tt ? (double)tt : (double)ts;
    if (cfg->max_ratio > 0 && longer > cfg->max_ratio * shorter) return CLEAN_RATIO;
    return -1;
}

void parallel_clean(ParallelText *pt, const CleanConfig *cfg, CleanStats *stats) {
    memset(stats, 0, sizeof *stats);
    stats->n_in = pt->n;
    PairSet set = {0};
    set.cap = 16;
    while (set.cap < 2 * (size_t)pt->n) set.cap *= 2;
    set.slot = malloc_check(sizeof(int) * set.cap);
    set.hash = malloc_check(sizeof(uint64_t) * set.cap);
    memset(set.slot, 0xFF, sizeof(int) * set.cap);  // all -1
    int kept = 0;
    for (int i = 0; i < pt->n; i++) {
        int rule = has_control_char(pt->src[i]) || has_control_char(pt->tgt[i]) ? CLEAN_CONTROL : -1;
        if (rule < 0) {
            normalize_whitespace(pt->src[i]);
            normalize_whitespace(pt->tgt[i]);
            if (cfg->lowercase) { utf8_lowercase(pt->src[i]); utf8_lowercase(pt->tgt[i]); }
            rule = broken_rule(pt, i, cfg);
        }
        // Survivors move down to `kept` before the set sees them, so that the
        // set's indices stay valid.
        if (rule < 0) {
            pt->src[kept] = pt->src[i]; pt->tgt[kept] = pt->tgt[i]; pt->line[kept] = pt->line[i];
            if (cfg->dedup && pair_set_seen_or_add(&set, pt, kept)) rule = CLEAN_DUPLICATE;
            else { kept++; continue; }
        }
        stats->dropped[rule]++;
        free(pt->src[i]);  // for a duplicate, also the (stale) copy at `kept`
        free(pt->tgt[i]);
    }
    pt->n = kept;
    stats->n_kept = kept;
    free(set.slot);
    free(set.hash);
}

// ----------------------------------------------------------------------------
// Splitting

static int split_size(const char *what, double v, int n, int *out) {
    if (!(v >= 0)) return attn_error("%s split size must be >= 0, got %g", what, v);
    if (v >= 1) {  // the bound first: casting a huge double to an integer is undefined
        if (v > n) return attn_error("%s split of %g pairs is more than the %d pairs there are", what, v, n);
        if (v != (double)(int)v) return attn_error("%s split size %g: give a whole count (>= 1) or a fraction (< 1)", what, v);
        *out = (int)v;
    } else {
        *out = (int)(v * n + 0.5);
    }
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int split_indices(int n, double valid, double test, uint64_t seed, int *order, int *n_valid, int *n_test) {
    int nv, nt;
    if (split_size("valid", valid, n, &nv) != 0 || split_size("test", test, n, &nt) != 0) return -1;
    if (nv + nt > n) return attn_error("valid (%d) and test (%d) splits together exceed the %d pairs", nv, nt, n);
    for (int i = 0; i < n; i++) order[i] = i;
    Rng rng;
    rng_seed(&rng, seed);
    rng_shuffle_ints(&rng, order, n);
    qsort(order, (size_t)nv, sizeof(int), cmp_int);
    qsort(order + nv, (size_t)nt, sizeof(int), cmp_int);
    qsort(order + nv + nt, (size_t)(n - nv - nt), sizeof(int), cmp_int);
    *n_valid = nv;
    *n_test = nt;
    return 0;
}
