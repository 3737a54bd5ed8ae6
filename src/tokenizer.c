// Tokenizers: the vocabulary, the char and word tokenizers, decoding, and
// the plain-text file format. BPE learning and merging live in bpe.c.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "tokenizer_internal.h"
#include "utf8.h"

static const char *const special_pieces[TOK_N_SPECIAL] = {"<pad>", "<unk>", "<s>", "</s>"};
static const char unk_surface[] = "\xE2\x81\x87";        // U+2047 "⁇", what <unk> decodes to
static const char replacement_char[] = "\xEF\xBF\xBD";   // U+FFFD, for invalid byte runs

// ----------------------------------------------------------------------------
// Hash maps

static uint64_t mix64(uint64_t x) {  // splitmix64 finalizer: spreads pair keys over all bits
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t hash_bytes(const char *s, size_t n) {  // FNV-1a, then mixed: words are short
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 0x100000001b3ULL; }
    return mix64(h);
}

static size_t table_cap_for(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;  // load factor <= 1/2
    return cap;
}

void u64map_init(U64Map *m, size_t expected) {
    m->cap = table_cap_for(expected);
    m->n = 0;
    m->keys = malloc_check(m->cap * sizeof *m->keys);
    m->vals = malloc_check(m->cap * sizeof *m->vals);
    memset(m->keys, 0xff, m->cap * sizeof *m->keys);
}

void u64map_free(U64Map *m) {
    free(m->keys); free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t u64map_find(const U64Map *m, uint64_t key) {  // slot of key, or of the empty slot it would take
    size_t mask = m->cap - 1, i = mix64(key) & mask;
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key) i = (i + 1) & mask;
    return i;
}

int u64map_get(const U64Map *m, uint64_t key, int missing) {
    size_t i = u64map_find(m, key);
    return m->keys[i] == key ? m->vals[i] : missing;
}

static void u64map_grow(U64Map *m) {
    U64Map bigger;
    u64map_init(&bigger, m->cap);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == UINT64_MAX) continue;
        size_t j = u64map_find(&bigger, m->keys[i]);
        bigger.keys[j] = m->keys[i];
        bigger.vals[j] = m->vals[i];
    }
    bigger.n = m->n;
    u64map_free(m);
    *m = bigger;
}

int *u64map_upsert(U64Map *m, uint64_t key, int fresh) {
    size_t i = u64map_find(m, key);
    if (m->keys[i] == key) return &m->vals[i];
    if ((m->n + 1) * 2 > m->cap) { u64map_grow(m); i = u64map_find(m, key); }
    m->keys[i] = key;
    m->vals[i] = fresh;
    m->n++;
    return &m->vals[i];
}

void strmap_init(StrMap *m, size_t expected) {
    m->cap = table_cap_for(expected);
    m->n = 0;
    m->keys = calloc_check(m->cap, sizeof *m->keys);
    m->lens = malloc_check(m->cap * sizeof *m->lens);
    m->hashes = malloc_check(m->cap * sizeof *m->hashes);
    m->vals = malloc_check(m->cap * sizeof *m->vals);
}

void strmap_free(StrMap *m) {
    free(m->keys); free(m->lens); free(m->hashes); free(m->vals);
    memset(m, 0, sizeof *m);
}

static size_t strmap_find(const StrMap *m, const char *s, size_t n, uint64_t h) {
    size_t mask = m->cap - 1, i = h & mask;
    while (m->keys[i] && !(m->hashes[i] == h && m->lens[i] == n && memcmp(m->keys[i], s, n) == 0))
        i = (i + 1) & mask;
    return i;
}

int strmap_get(const StrMap *m, const char *s, size_t n, int missing) {
    size_t i = strmap_find(m, s, n, hash_bytes(s, n));
    return m->keys[i] ? m->vals[i] : missing;
}

static void strmap_grow(StrMap *m) {
    StrMap bigger;
    strmap_init(&bigger, m->cap);
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t mask = bigger.cap - 1, j = m->hashes[i] & mask;
        while (bigger.keys[j]) j = (j + 1) & mask;
        bigger.keys[j] = m->keys[i];
        bigger.lens[j] = m->lens[i];
        bigger.hashes[j] = m->hashes[i];
        bigger.vals[j] = m->vals[i];
    }
    bigger.n = m->n;
    strmap_free(m);
    *m = bigger;
}

int *strmap_upsert(StrMap *m, const char *s, size_t n, int fresh) {
    uint64_t h = hash_bytes(s, n);
    size_t i = strmap_find(m, s, n, h);
    if (m->keys[i]) return &m->vals[i];
    if ((m->n + 1) * 2 > m->cap) { strmap_grow(m); i = strmap_find(m, s, n, h); }
    m->keys[i] = s;
    m->lens[i] = (uint32_t)n;
    m->hashes[i] = h;
    m->vals[i] = fresh;
    m->n++;
    return &m->vals[i];
}

// ----------------------------------------------------------------------------
// Vocabulary

Tokenizer *tok_new(TokenizerType type, int byte_fallback) {
    Tokenizer *t = calloc_check(1, sizeof *t);
    t->type = type;
    t->byte_fallback = byte_fallback;
    t->marker_id = -1;
    strmap_init(&t->piece_ids, 1024);
    for (int i = 0; i < TOK_N_SPECIAL; i++) tok_add_piece(t, special_pieces[i], strlen(special_pieces[i]));
    if (byte_fallback) {
        for (int b = 0; b < N_BYTE_PIECES; b++) {
            char name[16];
            snprintf(name, sizeof name, "<0x%02X>", (unsigned)b);
            tok_add_piece(t, name, strlen(name));
        }
    }
    t->n_reserved = t->n_pieces;
    return t;
}

int tok_add_piece(Tokenizer *t, const char *s, size_t n) {
    int id = strmap_get(&t->piece_ids, s, n, -1);
    if (id >= 0) return id;
    if (t->n_pieces == t->cap_pieces) {
        t->cap_pieces = t->cap_pieces ? 2 * t->cap_pieces : 512;
        t->pieces = realloc_check(t->pieces, (size_t)t->cap_pieces * sizeof *t->pieces);
    }
    char *copy = malloc_check(n + 1);
    memcpy(copy, s, n);
    copy[n] = '\0';
    id = t->n_pieces++;
    t->pieces[id] = copy;
    strmap_upsert(&t->piece_ids, copy, n, id);  // the key lives as long as the piece
    return id;
}

void tok_add_merge(Tokenizer *t, int left, int right, int result) {
    if ((t->n_merges & (t->n_merges - 1)) == 0)  // capacity doubles at powers of two
        t->merges = realloc_check(t->merges, (size_t)(t->n_merges ? 2 * t->n_merges : 1) * 3 * sizeof(int));
    int *m = t->merges + 3 * t->n_merges++;
    m[0] = left; m[1] = right; m[2] = result;
}

// The code point of a piece that is exactly one character, or -1.
static long single_code_point(const char *piece) {
    size_t n = strlen(piece);
    uint32_t cp;
    int len = utf8_decode(piece, n, &cp);
    return len > 0 && (size_t)len == n ? (long)cp : -1;
}

void tok_finish(Tokenizer *t) {
    u64map_init(&t->char_ids, (size_t)t->n_pieces);
    u64map_init(&t->merge_ranks, (size_t)t->n_merges);
    t->max_piece_bytes = 3;  // "⁇" and U+FFFD
    for (int id = 0; id < t->n_pieces; id++) {
        int len = (int)strlen(t->pieces[id]);
        if (len > t->max_piece_bytes) t->max_piece_bytes = len;
        long cp = id >= t->n_reserved ? single_code_point(t->pieces[id]) : -1;
        if (cp < 0 || t->type == TOKENIZER_WORD) continue;
        if (cp == WORD_MARKER_CP) t->marker_id = id;
        else *u64map_upsert(&t->char_ids, (uint64_t)cp, id) = id;
    }
    t->max_piece_bytes += 1;  // the space between words
    for (int r = 0; r < t->n_merges; r++) {
        uint64_t key = (uint64_t)t->merges[3 * r] << 32 | (uint32_t)t->merges[3 * r + 1];
        u64map_upsert(&t->merge_ranks, key, r);  // a repeated pair keeps its first rank
    }
    if (t->type == TOKENIZER_BPE) t->cache = bpe_cache_new();
}

typedef struct { uint32_t cp; long count; } CharCount;

static int by_count_then_code_point(const void *pa, const void *pb) {
    const CharCount *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return a->cp < b->cp ? -1 : a->cp > b->cp;
}

void char_counts_init(CharCounts *cc) {
    memset(cc, 0, sizeof *cc);
    u64map_init(&cc->index, 1024);
}

void char_counts_add(CharCounts *cc, uint32_t cp, long count) {
    int *slot = u64map_upsert(&cc->index, cp, cc->n);
    if (*slot == cc->n) {
        if (cc->n == cc->cap) {
            cc->cap = cc->cap ? 2 * cc->cap : 1024;
            cc->cps = realloc_check(cc->cps, (size_t)cc->cap * sizeof *cc->cps);
            cc->counts = realloc_check(cc->counts, (size_t)cc->cap * sizeof *cc->counts);
        }
        cc->cps[cc->n] = cp;
        cc->counts[cc->n++] = 0;
    }
    cc->counts[*slot] += count;
}

void char_counts_free(CharCounts *cc) {
    u64map_free(&cc->index);
    free(cc->cps);
    free(cc->counts);
    memset(cc, 0, sizeof *cc);
}

void tok_add_alphabet(Tokenizer *t, const CharCounts *cc, long min_freq, int max_new) {
    CharCount *order = malloc_check((size_t)cc->n * sizeof *order);
    for (int i = 0; i < cc->n; i++) { order[i].cp = cc->cps[i]; order[i].count = cc->counts[i]; }
    qsort(order, (size_t)cc->n, sizeof *order, by_count_then_code_point);
    for (int i = 0, added = 0; i < cc->n && added < max_new; i++) {
        if (order[i].count < min_freq) break;
        char utf8[4];
        int len = utf8_encode(order[i].cp, utf8);
        int before = t->n_pieces;
        tok_add_piece(t, utf8, (size_t)len);
        added += t->n_pieces > before;
    }
    free(order);
}

int tok_push_unknown(const Tokenizer *t, const char *s, int n_bytes, int *ids, int *n, int max_ids) {
    if (!t->byte_fallback) {
        if (*n >= max_ids) return -1;
        ids[(*n)++] = TOK_UNK;
        return 0;
    }
    if (*n + n_bytes > max_ids) return -1;
    for (int i = 0; i < n_bytes; i++) ids[(*n)++] = TOK_N_SPECIAL + (unsigned char)s[i];
    return 0;
}

// ----------------------------------------------------------------------------
// Options and names

void tokenizer_options_default(TokenizerOptions *opts, TokenizerType type) {
    int bpe = type == TOKENIZER_BPE;
    opts->vocab_size = bpe ? 8000 : 0;
    opts->min_frequency = bpe ? 2 : 1;
    opts->byte_fallback = bpe;
}

const char *tokenizer_type_name(TokenizerType type) {
    switch (type) {
    case TOKENIZER_CHAR: return "char";
    case TOKENIZER_WORD: return "word";
    case TOKENIZER_BPE: return "bpe";
    }
    return "?";
}

int tokenizer_type_from_name(const char *name, TokenizerType *type) {
    for (int k = TOKENIZER_CHAR; k <= TOKENIZER_BPE; k++) {
        if (strcmp(name, tokenizer_type_name((TokenizerType)k)) == 0) { *type = (TokenizerType)k; return 0; }
    }
    return attn_error("unknown tokenizer type '%s' (expected char, word or bpe)", name);
}

TokenizerType tokenizer_type(const Tokenizer *t) { return t->type; }
int tokenizer_vocab_size(const Tokenizer *t) { return t->n_pieces; }
int tokenizer_max_piece_bytes(const Tokenizer *t) { return t->max_piece_bytes; }

const char *tokenizer_piece(const Tokenizer *t, int id) {
    return id >= 0 && id < t->n_pieces ? t->pieces[id] : NULL;
}

int tokenizer_piece_id(const Tokenizer *t, const char *piece) {
    return strmap_get(&t->piece_ids, piece, strlen(piece), -1);
}

// ----------------------------------------------------------------------------
// Learning: characters and words (BPE is in bpe.c)

static int check_lines_utf8(const char *const *lines, long n_lines) {
    for (long i = 0; i < n_lines; i++) {
        size_t len = strlen(lines[i]);
        long bad = utf8_first_invalid(lines[i], len);
        if (bad >= 0) return attn_error("line %ld: invalid UTF-8 at byte %ld", i + 1, bad + 1);
        if (memchr(lines[i], '\n', len)) return attn_error("line %ld: a newline inside a line", i + 1);
    }
    return 0;
}

static int learn_chars(Tokenizer *t, const char *const *lines, long n_lines, const TokenizerOptions *o) {
    CharCounts cc;
    char_counts_init(&cc);
    for (long i = 0; i < n_lines; i++) {
        const char *s = lines[i];
        size_t len = strlen(s);
        for (size_t k = 0; k < len;) {
            uint32_t cp;
            k += (size_t)utf8_decode(s + k, len - k, &cp);  // validated by the caller
            if (cp != ' ' && cp != WORD_MARKER_CP && cp != '\n') char_counts_add(&cc, cp, 1);  // spaces are the marker
        }
    }
    tok_add_piece(t, WORD_MARKER, WORD_MARKER_LEN);
    int max_new = o->vocab_size ? o->vocab_size - t->n_pieces : INT_MAX;
    tok_add_alphabet(t, &cc, o->min_frequency, max_new);
    char_counts_free(&cc);
    return 0;
}

static int is_word_space(char c) { return c == ' ' || c == '\t'; }

typedef struct { const char *s; int len; long count; } WordCount;

static int by_count_then_bytes(const void *pa, const void *pb) {
    const WordCount *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    int c = memcmp(a->s, b->s, (size_t)(a->len < b->len ? a->len : b->len));
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int learn_words(Tokenizer *t, const char *const *lines, long n_lines, const TokenizerOptions *o) {
    StrMap index;  // word (a view into lines) -> slot in words
    strmap_init(&index, 4096);
    int n = 0, cap = 4096;
    WordCount *words = malloc_check((size_t)cap * sizeof *words);
    for (long i = 0; i < n_lines; i++) {
        for (const char *s = lines[i]; *s;) {
            while (is_word_space(*s)) s++;
            const char *start = s;
            while (*s && !is_word_space(*s)) s++;
            if (s == start) break;
            int *slot = strmap_upsert(&index, start, (size_t)(s - start), n);
            if (*slot == n) {
                if (n == cap) words = realloc_check(words, (size_t)(cap *= 2) * sizeof *words);
                words[n].s = start; words[n].len = (int)(s - start); words[n].count = 0; n++;
            }
            words[*slot].count++;
        }
    }
    qsort(words, (size_t)n, sizeof *words, by_count_then_bytes);
    for (int i = 0; i < n; i++) {
        if (words[i].count < o->min_frequency) break;
        if (o->vocab_size && t->n_pieces >= o->vocab_size) break;
        tok_add_piece(t, words[i].s, (size_t)words[i].len);  // a special's text keeps the special's id
    }
    free(words);
    strmap_free(&index);
    return 0;
}

static int check_options(TokenizerType type, const TokenizerOptions *o) {
    if (o->vocab_size < 0 || o->vocab_size > TOK_MAX_VOCAB)
        return attn_error("vocab size %d is outside [0, %d]", o->vocab_size, TOK_MAX_VOCAB);
    if (o->min_frequency < 1) return attn_error("min frequency %ld must be at least 1", o->min_frequency);
    int reserved = TOK_N_SPECIAL + (o->byte_fallback && type != TOKENIZER_WORD ? N_BYTE_PIECES : 0);
    int needed = reserved + (type != TOKENIZER_WORD);  // + the ▁ marker
    if (type == TOKENIZER_BPE && o->vocab_size == 0) return attn_error("a bpe tokenizer needs a vocab size");
    if (o->vocab_size && o->vocab_size < needed)
        return attn_error("vocab size %d is too small for a %s tokenizer: it needs at least %d "
                          "(%d specials%s%s)", o->vocab_size, tokenizer_type_name(type), needed,
                          TOK_N_SPECIAL, reserved > TOK_N_SPECIAL ? ", 256 byte pieces" : "",
                          type != TOKENIZER_WORD ? ", the word marker" : "");
    return 0;
}

int tokenizer_learn(Tokenizer **out, TokenizerType type, const char *const *lines,
                    long n_lines, const TokenizerOptions *opts) {
    TokenizerOptions defaults;
    tokenizer_options_default(&defaults, type);
    const TokenizerOptions *o = opts ? opts : &defaults;
    *out = NULL;
    if (check_options(type, o) || check_lines_utf8(lines, n_lines)) return -1;
    Tokenizer *t = tok_new(type, o->byte_fallback && type != TOKENIZER_WORD);
    int rc = type == TOKENIZER_CHAR ? learn_chars(t, lines, n_lines, o)
           : type == TOKENIZER_WORD ? learn_words(t, lines, n_lines, o)
           : bpe_learn(t, lines, n_lines, o);
    if (rc) { tokenizer_free(t); return -1; }
    tok_finish(t);
    *out = t;
    return 0;
}

// ----------------------------------------------------------------------------
// Encoding: characters and words (BPE is in bpe.c)

static int encode_chars(const Tokenizer *t, const char *text, size_t len, int *ids, int max_ids) {
    int n = 0;
    for (size_t k = 0; k < len;) {
        uint32_t cp;
        int clen = utf8_decode(text + k, len - k, &cp);
        int id = cp == ' ' ? t->marker_id : u64map_get(&t->char_ids, cp, -1);
        if (id >= 0) {
            if (n >= max_ids) return -1;
            ids[n++] = id;
        } else if (tok_push_unknown(t, text + k, clen, ids, &n, max_ids)) {
            return -1;
        }
        k += (size_t)clen;
    }
    return n;
}

static int encode_words(const Tokenizer *t, const char *text, int *ids, int max_ids) {
    int n = 0;
    for (const char *s = text; *s;) {
        while (is_word_space(*s)) s++;
        const char *start = s;
        while (*s && !is_word_space(*s)) s++;
        if (s == start) break;
        if (n >= max_ids) return -1;
        int id = strmap_get(&t->piece_ids, start, (size_t)(s - start), TOK_UNK);
        ids[n++] = id < TOK_N_SPECIAL ? TOK_UNK : id;  // "<s>" in the text is not a control token
    }
    return n;
}

int tokenizer_encode(const Tokenizer *t, const char *text, int *ids, int max_ids,
                     float dropout_p, Rng *rng) {
    size_t len = strlen(text);
    long bad = utf8_first_invalid(text, len);
    if (bad >= 0) return attn_error("invalid UTF-8 at byte %ld", bad + 1);
    if (dropout_p < 0 || dropout_p > 1) return attn_error("dropout %g is outside [0, 1]", (double)dropout_p);
    if (dropout_p > 0 && !rng) return attn_error("dropout needs a random number generator");
    int n = t->type == TOKENIZER_CHAR ? encode_chars(t, text, len, ids, max_ids)
          : t->type == TOKENIZER_WORD ? encode_words(t, text, ids, max_ids)
          : bpe_encode(t, text, len, ids, max_ids, dropout_p, rng);
    if (n < 0) return attn_error("text needs more than %d tokens", max_ids);
    return n;
}

// ----------------------------------------------------------------------------
// Decoding

typedef struct { char *buf; size_t cap, len; int overflow; } Out;

static void out_append(Out *o, const char *s, size_t n) {
    if (o->overflow || o->len + n + 1 > o->cap) { o->overflow = 1; return; }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

// Writes a piece's text with every ▁ turned back into a space.
static void out_piece(Out *o, const char *piece, int skip_leading_marker) {
    if (skip_leading_marker && strncmp(piece, WORD_MARKER, WORD_MARKER_LEN) == 0) piece += WORD_MARKER_LEN;
    for (const char *m; (m = strstr(piece, WORD_MARKER)); piece = m + WORD_MARKER_LEN) {
        out_append(o, piece, (size_t)(m - piece));
        out_append(o, " ", 1);
    }
    out_append(o, piece, strlen(piece));
}

// Writes a run of raw bytes; bytes that are not valid UTF-8 become U+FFFD,
// one per byte, so the output is always valid UTF-8.
static void out_bytes(Out *o, const unsigned char *b, int n) {
    for (int i = 0; i < n;) {
        uint32_t cp;
        int len = utf8_decode((const char *)b + i, (size_t)(n - i), &cp);
        if (len > 0) { out_append(o, (const char *)b + i, (size_t)len); i += len; }
        else { out_append(o, replacement_char, 3); i++; }
    }
}

int tokenizer_decode(const Tokenizer *t, const int *ids, int n, char *out, size_t cap) {
    if (cap == 0) return attn_error("decode buffer has no room");
    Out o = {out, cap, 0, 0};
    unsigned char *byte_run = NULL;  // (n) pending bytes of consecutive byte pieces
    int n_bytes = 0, emitted = 0;
    int is_word = t->type == TOKENIZER_WORD, is_bpe = t->type == TOKENIZER_BPE;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_pieces) { free(byte_run); return attn_error("token id %d is outside the vocabulary [0, %d)", id, t->n_pieces); }
        if (id == TOK_EOS) break;
        if (id == TOK_PAD || id == TOK_BOS) continue;
        if (id < t->n_reserved && id >= TOK_N_SPECIAL) {  // a byte piece
            if (!byte_run) byte_run = malloc_check((size_t)n);
            byte_run[n_bytes++] = (unsigned char)(id - TOK_N_SPECIAL);
            emitted = 1;
            continue;
        }
        if (n_bytes) { out_bytes(&o, byte_run, n_bytes); n_bytes = 0; }
        if (is_word && emitted) out_append(&o, " ", 1);
        if (id == TOK_UNK) out_append(&o, unk_surface, sizeof unk_surface - 1);
        else out_piece(&o, t->pieces[id], is_bpe && !emitted);  // the marker BPE put before the text
        emitted = 1;
    }
    if (n_bytes) out_bytes(&o, byte_run, n_bytes);
    free(byte_run);
    if (o.overflow) return attn_error("decoded text does not fit in %zu bytes", cap);
    out[o.len] = '\0';
    return (int)o.len;
}

// ----------------------------------------------------------------------------
// Files: plain text, one piece a line
//
//   attn-tokenizer 1
//   type bpe
//   byte_fallback 1
//   pieces N
//   <N lines: the pieces in id order>
//   merges M
//   <M lines: "LEFT RIGHT" piece ids, by rank>

int tokenizer_to_string(const Tokenizer *t, char **text) {
    size_t cap = 128 + (size_t)t->n_merges * 24;
    for (int i = 0; i < t->n_pieces; i++) cap += strlen(t->pieces[i]) + 1;
    char *s = malloc_check(cap);
    size_t len = (size_t)snprintf(s, cap, "attn-tokenizer 1\ntype %s\nbyte_fallback %d\npieces %d\n",
                                  tokenizer_type_name(t->type), t->byte_fallback, t->n_pieces);
    for (int i = 0; i < t->n_pieces; i++) {
        size_t n = strlen(t->pieces[i]);
        memcpy(s + len, t->pieces[i], n);
        len += n;
        s[len++] = '\n';
    }
    len += (size_t)snprintf(s + len, cap - len, "merges %d\n", t->n_merges);
    for (int r = 0; r < t->n_merges; r++)
        len += (size_t)snprintf(s + len, cap - len, "%d %d\n", t->merges[3 * r], t->merges[3 * r + 1]);
    *text = s;
    return 0;
}

typedef struct {
    const char *name;  // for errors: the file, or "tokenizer"
    const char *s;     // the rest of the text
    int line;          // 1-based number of the next line
} Reader;

// The next line as a view (without '\n'); returns -1 at the end of the text.
static int next_line(Reader *r, const char **line, size_t *len) {
    if (!*r->s) return attn_error("%s: line %d: unexpected end of the tokenizer", r->name, r->line);
    const char *end = strchr(r->s, '\n');
    if (!end) end = r->s + strlen(r->s);
    *line = r->s;
    *len = (size_t)(end - r->s);
    r->s = *end ? end + 1 : end;
    r->line++;
    return 0;
}

// Reads a "KEY VALUE" line with an integer value in [lo, hi].
static int read_keyed_int(Reader *r, const char *key, long lo, long hi, long *value) {
    const char *line;
    size_t len, klen = strlen(key);
    if (next_line(r, &line, &len)) return -1;
    char buf[64];
    if (len <= klen || len >= sizeof buf || strncmp(line, key, klen) != 0 || line[klen] != ' ')
        return attn_error("%s: line %d: expected '%s N'", r->name, r->line - 1, key);
    memcpy(buf, line + klen + 1, len - klen - 1);
    buf[len - klen - 1] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (*end || end == buf || v < lo || v > hi)
        return attn_error("%s: line %d: bad %s '%s' (expected an integer in [%ld, %ld])", r->name, r->line - 1, key, buf, lo, hi);
    *value = v;
    return 0;
}

static int read_header(Reader *r, TokenizerType *type) {
    const char *line;
    size_t len;
    if (next_line(r, &line, &len)) return -1;
    if (len != 16 || strncmp(line, "attn-tokenizer 1", 16) != 0)
        return attn_error("%s: not an attn tokenizer (the first line is not 'attn-tokenizer 1')", r->name);
    if (next_line(r, &line, &len)) return -1;
    char name[16];
    if (len < 6 || len - 5 >= sizeof name || strncmp(line, "type ", 5) != 0)
        return attn_error("%s: line %d: expected 'type char|word|bpe'", r->name, r->line - 1);
    memcpy(name, line + 5, len - 5);
    name[len - 5] = '\0';
    if (tokenizer_type_from_name(name, type)) return attn_error("%s: line %d: %s", r->name, r->line - 1, attn_last_error());
    return 0;
}

// Checks what encode and decode rely on: the fixed specials and byte pieces,
// one character per char piece, no spaces, the marker in BPE.
static int check_piece(const Tokenizer *t, Reader *r, int id, const char *line, size_t len) {
    int at = r->line - 1;
    if (id < t->n_reserved) {
        char want[16];
        if (id < TOK_N_SPECIAL) snprintf(want, sizeof want, "%s", special_pieces[id]);
        else snprintf(want, sizeof want, "<0x%02X>", (unsigned)(id - TOK_N_SPECIAL) & 0xFFu);
        if (strlen(want) != len || memcmp(want, line, len) != 0)
            return attn_error("%s: line %d: piece %d must be '%s'", r->name, at, id, want);
        return 0;
    }
    if (len == 0) return attn_error("%s: line %d: empty piece", r->name, at);
    if (memchr(line, '\0', len)) return attn_error("%s: line %d: NUL byte in a piece", r->name, at);
    long bad = utf8_first_invalid(line, len);
    if (bad >= 0) return attn_error("%s: line %d: invalid UTF-8 at byte %ld", r->name, at, bad + 1);
    if (memchr(line, ' ', len)) return attn_error("%s: line %d: a piece contains a space", r->name, at);
    if (t->type == TOKENIZER_WORD && memchr(line, '\t', len)) return attn_error("%s: line %d: a word contains a tab", r->name, at);
    uint32_t cp;
    if (t->type == TOKENIZER_CHAR && utf8_decode(line, len, &cp) != (int)len)
        return attn_error("%s: line %d: a char piece must be one character", r->name, at);
    if (strmap_get(&t->piece_ids, line, len, -1) >= 0) return attn_error("%s: line %d: duplicate piece", r->name, at);
    return 0;
}

static int read_pieces(Tokenizer *t, Reader *r) {
    long n;
    if (read_keyed_int(r, "pieces", t->n_reserved, TOK_MAX_VOCAB, &n)) return -1;
    for (int id = 0; id < n; id++) {
        const char *line;
        size_t len;
        if (next_line(r, &line, &len) || check_piece(t, r, id, line, len)) return -1;
        if (id >= t->n_reserved) tok_add_piece(t, line, len);
    }
    if (t->type != TOKENIZER_WORD && strmap_get(&t->piece_ids, WORD_MARKER, WORD_MARKER_LEN, -1) < 0)
        return attn_error("%s: a %s tokenizer needs the piece '" WORD_MARKER "'", r->name, tokenizer_type_name(t->type));
    return 0;
}

static int read_merges(Tokenizer *t, Reader *r) {
    long n;
    if (read_keyed_int(r, "merges", 0, t->type == TOKENIZER_BPE ? INT_MAX : 0, &n)) return -1;
    for (long k = 0; k < n; k++) {
        const char *line;
        size_t len;
        if (next_line(r, &line, &len)) return -1;
        char buf[32], *end;
        if (len >= sizeof buf) return attn_error("%s: line %d: bad merge", r->name, r->line - 1);
        memcpy(buf, line, len);
        buf[len] = '\0';
        long left = strtol(buf, &end, 10), right = -1;
        if (*end == ' ') right = strtol(end + 1, &end, 10);
        if (*end || left < t->n_reserved || left >= t->n_pieces || right < t->n_reserved || right >= t->n_pieces)
            return attn_error("%s: line %d: bad merge '%s' (expected two piece ids in [%d, %d))",
                              r->name, r->line - 1, buf, t->n_reserved, t->n_pieces);
        size_t n_left = strlen(t->pieces[left]), n_right = strlen(t->pieces[right]);
        char *joined = malloc_check(n_left + n_right);
        memcpy(joined, t->pieces[left], n_left);
        memcpy(joined + n_left, t->pieces[right], n_right);
        int result = strmap_get(&t->piece_ids, joined, n_left + n_right, -1);
        free(joined);
        if (result < t->n_reserved)
            return attn_error("%s: line %d: merge '%s' makes a piece that is not in the vocabulary", r->name, r->line - 1, buf);
        tok_add_merge(t, (int)left, (int)right, result);
    }
    if (*r->s) return attn_error("%s: line %d: unexpected text after the merges", r->name, r->line);
    return 0;
}

static int tokenizer_parse(const char *name, const char *text, Tokenizer **out) {
    *out = NULL;
    Reader r = {name, text, 1};
    TokenizerType type;
    long byte_fallback;
    if (read_header(&r, &type) || read_keyed_int(&r, "byte_fallback", 0, 1, &byte_fallback)) return -1;
    if (byte_fallback && type == TOKENIZER_WORD) return attn_error("%s: line 3: a word tokenizer has no byte fallback", name);
    Tokenizer *t = tok_new(type, (int)byte_fallback);
    if (read_pieces(t, &r) || read_merges(t, &r)) { tokenizer_free(t); return -1; }
    tok_finish(t);
    *out = t;
    return 0;
}

int tokenizer_from_string(const char *text, Tokenizer **out) {
    return tokenizer_parse("tokenizer", text, out);
}

int tokenizer_save(const Tokenizer *t, const char *path) {
    char *text;
    tokenizer_to_string(t, &text);
    int rc = write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

int tokenizer_load(const char *path, Tokenizer **out) {
    char *text;
    size_t len;
    *out = NULL;
    if (read_file(path, &text, &len)) return -1;
    int rc = strlen(text) != len ? attn_error("%s: NUL byte in a tokenizer file", path)
                                 : tokenizer_parse(path, text, out);
    free(text);
    return rc;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_pieces; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->merges);
    strmap_free(&t->piece_ids);
    if (t->char_ids.keys) u64map_free(&t->char_ids);
    if (t->merge_ranks.keys) u64map_free(&t->merge_ranks);
    bpe_cache_free(t->cache);
    free(t);
}
