// Internals shared by tokenizer.c (vocabulary, char and word tokenizers,
// decoding, files) and bpe.c (BPE learning and merging). Not a public API.
#ifndef ATTN_TOKENIZER_INTERNAL_H
#define ATTN_TOKENIZER_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "tokenizer.h"

#define WORD_MARKER "\xE2\x96\x81"  // U+2581 "▁": stands for a space
#define WORD_MARKER_LEN 3
#define WORD_MARKER_CP 0x2581u
#define N_BYTE_PIECES 256
#define TOK_MAX_VOCAB (1 << 24)

// ----------------------------------------------------------------------------
// Hash maps (open addressing, linear probing, power-of-two capacity)

// 64-bit key -> int. UINT64_MAX is reserved as the empty slot.
typedef struct {
    uint64_t *keys;  // (cap)
    int *vals;       // (cap)
    size_t cap, n;
} U64Map;

void u64map_init(U64Map *m, size_t expected);
void u64map_free(U64Map *m);
int u64map_get(const U64Map *m, uint64_t key, int missing);
// Returns the value slot for key, inserting `fresh` first if key is absent.
int *u64map_upsert(U64Map *m, uint64_t key, int fresh);

// Byte string (not owned: it must outlive the map) -> int.
typedef struct {
    const char **keys;  // (cap) NULL = empty slot
    uint32_t *lens;     // (cap)
    uint64_t *hashes;   // (cap)
    int *vals;          // (cap)
    size_t cap, n;
} StrMap;

uint64_t hash_bytes(const char *s, size_t n);
void strmap_init(StrMap *m, size_t expected);
void strmap_free(StrMap *m);
int strmap_get(const StrMap *m, const char *s, size_t n, int missing);
int *strmap_upsert(StrMap *m, const char *s, size_t n, int fresh);

// ----------------------------------------------------------------------------
// The tokenizer

typedef struct BpeCache BpeCache;

struct Tokenizer {
    TokenizerType type;
    int byte_fallback;   // pieces 4..259 are <0x00>..<0xFF>
    int n_reserved;      // specials + byte pieces: ids below never merge
    int n_pieces, cap_pieces;
    char **pieces;       // (n_pieces) owned, NUL-terminated UTF-8
    StrMap piece_ids;    // piece text -> id
    U64Map char_ids;     // code point -> id of its one-character piece (not ▁)
    int marker_id;       // id of "▁" (char/BPE), -1 if none
    int n_merges;        // BPE only
    int *merges;         // (n_merges, 3): left id, right id, result id; by rank
    U64Map merge_ranks;  // left << 32 | right -> rank
    int max_piece_bytes; // bound on the bytes one id decodes to
    BpeCache *cache;     // BPE words already encoded without dropout
};

// A tokenizer holding only the specials (and byte pieces when byte_fallback).
Tokenizer *tok_new(TokenizerType type, int byte_fallback);
// Adds a piece (copied) and returns its id; an existing piece keeps its id.
int tok_add_piece(Tokenizer *t, const char *s, size_t n);
void tok_add_merge(Tokenizer *t, int left, int right, int result);
// Builds the lookup tables (characters, merge ranks, cache) once the pieces
// and merges are final.
void tok_finish(Tokenizer *t);

// How often each character (code point) was seen, for the alphabet of the
// char and BPE tokenizers.
typedef struct {
    U64Map index;    // code point -> slot
    uint32_t *cps;   // (n)
    long *counts;    // (n)
    int n, cap;
} CharCounts;

void char_counts_init(CharCounts *cc);
void char_counts_add(CharCounts *cc, uint32_t cp, long count);
void char_counts_free(CharCounts *cc);

// Adds the counted characters, most frequent first (ties: lower code point
// first), those seen at least min_freq times, at most max_new of them.
void tok_add_alphabet(Tokenizer *t, const CharCounts *cc, long min_freq, int max_new);

// Appends the ids of a character that has no piece: its UTF-8 bytes as byte
// pieces, or one <unk>. Returns -1 when ids[] is full.
int tok_push_unknown(const Tokenizer *t, const char *s, int n_bytes, int *ids, int *n, int max_ids);

// BPE (bpe.c)
int bpe_learn(Tokenizer *t, const char *const *lines, long n_lines, const TokenizerOptions *opts);
int bpe_encode(const Tokenizer *t, const char *text, size_t len, int *ids, int max_ids,
               float dropout_p, Rng *rng);
BpeCache *bpe_cache_new(void);
void bpe_cache_free(BpeCache *cache);

#endif
