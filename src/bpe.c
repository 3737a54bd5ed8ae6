// BPE: learning merges from word counts, and encoding words with merge
// ranks (plus BPE-dropout and a cache of encoded words).
//
// Words are the space-separated segments of a line, each with the marker ▁
// in front ("a  b" -> "▁a" "▁" "▁b"); merges never cross a word boundary.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "tokenizer_internal.h"
#include "utf8.h"

// ----------------------------------------------------------------------------
// Learning
//
// The standard fast algorithm (as in subword-nmt and HuggingFace tokenizers):
// count each distinct word once with its frequency; keep the count of every
// adjacent symbol pair and, per pair, the words that contain it; a max-heap
// with lazy deletion picks the most frequent pair. A merge rewrites only the
// words that contain the pair and adjusts the counts of the neighbouring
// pairs, so a merge costs time in proportion to where it occurs, not to the
// corpus.

typedef struct {
    int left, right;   // piece ids
    long count;        // occurrences, weighted by word frequency
    int merged;        // applied (or refused): never a candidate again
    int touched;       // the last merge step that raised the count
    int *words;        // (n_words) words that had the pair; may be stale or repeated
    int n_words, cap_words;
} Pair;

typedef struct { long count; int pair; } HeapEntry;  // count when pushed

typedef struct {
    Tokenizer *t;         // pieces grow as merges are made
    long min_freq;
    // distinct words: word w has symbols[word_start[w] .. + word_n[w])
    int n_words, cap_words;
    const char **word_text;  // (n_words) views into the caller's lines, without the marker
    int *word_len;           // (n_words) bytes
    long *word_count;        // (n_words) occurrences
    int *word_start, *word_n, *word_stamp;
    int *symbols;            // piece ids; -1 for a character without a piece
    // pairs
    Pair *pairs;
    int n_pairs, cap_pairs;
    U64Map pair_index;       // left << 32 | right -> pair
    HeapEntry *heap;
    int heap_n, heap_cap;
    int *touched;            // pairs whose count rose in this merge step
    int n_touched, cap_touched;
    int stamp;               // the merge step
} BpeLearner;

static void add_word(BpeLearner *L, StrMap *index, const char *s, int len) {
    int *slot = strmap_upsert(index, s, (size_t)len, L->n_words);
    if (*slot == L->n_words) {
        if (L->n_words == L->cap_words) {
            L->cap_words = L->cap_words ? 2 * L->cap_words : 4096;
            L->word_text = realloc_check(L->word_text, (size_t)L->cap_words * sizeof *L->word_text);
            L->word_len = realloc_check(L->word_len, (size_t)L->cap_words * sizeof *L->word_len);
            L->word_count = realloc_check(L->word_count, (size_t)L->cap_words * sizeof *L->word_count);
        }
        L->word_text[L->n_words] = s;
        L->word_len[L->n_words] = len;
        L->word_count[L->n_words] = 0;
        L->n_words++;
    }
    L->word_count[*slot]++;
}

static void collect_words(BpeLearner *L, const char *const *lines, long n_lines) {
    StrMap index;
    strmap_init(&index, 1 << 16);
    for (long i = 0; i < n_lines; i++) {
        const char *s = lines[i];
        if (!*s) continue;  // an empty line has no words, not one empty word
        for (;;) {
            const char *space = strchr(s, ' ');
            int len = space ? (int)(space - s) : (int)strlen(s);
            add_word(L, &index, s, len);
            if (!space) break;
            s = space + 1;
        }
    }
    strmap_free(&index);
}

// The alphabet: the marker, then characters by frequency (weighted by word
// counts) as long as the vocabulary has room and they are frequent enough.
static void learn_alphabet(BpeLearner *L, int vocab_size) {
    CharCounts cc;
    char_counts_init(&cc);
    for (int w = 0; w < L->n_words; w++) {
        const char *s = L->word_text[w];
        for (int k = 0; k < L->word_len[w];) {
            uint32_t cp;
            k += utf8_decode(s + k, (size_t)(L->word_len[w] - k), &cp);  // validated by the caller
            if (cp != WORD_MARKER_CP && cp != '\n') char_counts_add(&cc, cp, L->word_count[w]);  // a literal ▁ always goes to bytes
        }
    }
    tok_add_piece(L->t, WORD_MARKER, WORD_MARKER_LEN);
    tok_add_alphabet(L->t, &cc, L->min_freq, vocab_size - L->t->n_pieces);
    char_counts_free(&cc);
}

// Each word as piece ids: the marker, then one id per character (-1 where
// the character has no piece: it splits the word for merging).
static void init_symbols(BpeLearner *L) {
    long total = 0;
    for (int w = 0; w < L->n_words; w++) total += 1 + L->word_len[w];
    L->symbols = malloc_check((size_t)total * sizeof *L->symbols);
    L->word_start = malloc_check((size_t)L->n_words * sizeof *L->word_start);
    L->word_n = malloc_check((size_t)L->n_words * sizeof *L->word_n);
    L->word_stamp = calloc_check((size_t)L->n_words, sizeof *L->word_stamp);
    int marker = tokenizer_piece_id(L->t, WORD_MARKER);
    long at = 0;
    for (int w = 0; w < L->n_words; w++) {
        const char *s = L->word_text[w];
        L->word_start[w] = (int)at;
        L->symbols[at++] = marker;
        for (int k = 0; k < L->word_len[w];) {
            uint32_t cp;
            int len = utf8_decode(s + k, (size_t)(L->word_len[w] - k), &cp);
            int id = cp == WORD_MARKER_CP ? -1 : strmap_get(&L->t->piece_ids, s + k, (size_t)len, -1);
            L->symbols[at++] = id;
            k += len;
        }
        L->word_n[w] = (int)(at - L->word_start[w]);
    }
}

static int pair_get(BpeLearner *L, int left, int right) {
    uint64_t key = (uint64_t)left << 32 | (uint32_t)right;
    int *slot = u64map_upsert(&L->pair_index, key, L->n_pairs);
    if (*slot == L->n_pairs) {
        if (L->n_pairs == L->cap_pairs) {
            L->cap_pairs = L->cap_pairs ? 2 * L->cap_pairs : 1 << 16;
            L->pairs = realloc_check(L->pairs, (size_t)L->cap_pairs * sizeof *L->pairs);
        }
        Pair *p = &L->pairs[L->n_pairs++];
        memset(p, 0, sizeof *p);
        p->left = left;
        p->right = right;
        p->touched = -1;
    }
    return *slot;
}

// Adds delta occurrences of (left, right) found in word w.
static void pair_add(BpeLearner *L, int left, int right, long delta, int w) {
    if (left < 0 || right < 0) return;
    int id = pair_get(L, left, right);  // may move L->pairs: index after the call
    Pair *p = &L->pairs[id];
    p->count += delta;
    if (delta <= 0) return;
    if (p->n_words == 0 || p->words[p->n_words - 1] != w) {
        if (p->n_words == p->cap_words) {
            p->cap_words = p->cap_words ? 2 * p->cap_words : 4;
            p->words = realloc_check(p->words, (size_t)p->cap_words * sizeof *p->words);
        }
        p->words[p->n_words++] = w;
    }
    if (p->touched != L->stamp) {
        p->touched = L->stamp;
        if (L->n_touched == L->cap_touched) {
            L->cap_touched = L->cap_touched ? 2 * L->cap_touched : 1024;
            L->touched = realloc_check(L->touched, (size_t)L->cap_touched * sizeof *L->touched);
        }
        L->touched[L->n_touched++] = (int)(p - L->pairs);
    }
}

// Heap order: higher count first; equal counts by the pieces' bytes (left,
// then right), so learning does not depend on hash or insertion order.
static int heap_before(const BpeLearner *L, HeapEntry x, HeapEntry y) {
    if (x.count != y.count) return x.count > y.count;
    const Pair *a = &L->pairs[x.pair], *b = &L->pairs[y.pair];
    int c = strcmp(L->t->pieces[a->left], L->t->pieces[b->left]);
    if (c == 0) c = strcmp(L->t->pieces[a->right], L->t->pieces[b->right]);
    return c < 0;
}

static void heap_push(BpeLearner *L, HeapEntry e) {
    if (L->heap_n == L->heap_cap) {
        L->heap_cap = L->heap_cap ? 2 * L->heap_cap : 1 << 16;
        L->heap = realloc_check(L->heap, (size_t)L->heap_cap * sizeof *L->heap);
    }
    int i = L->heap_n++;
    while (i > 0 && heap_before(L, e, L->heap[(i - 1) / 2])) {
        L->heap[i] = L->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    L->heap[i] = e;
}

static HeapEntry heap_pop(BpeLearner *L) {
    HeapEntry top = L->heap[0], last = L->heap[--L->heap_n];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= L->heap_n) break;
        if (child + 1 < L->heap_n && heap_before(L, L->heap[child + 1], L->heap[child])) child++;
        if (!heap_before(L, L->heap[child], last)) break;
        L->heap[i] = L->heap[child];
        i = child;
    }
    if (L->heap_n > 0) L->heap[i] = last;
    return top;
}

// The most frequent pair not yet merged, or -1. Entries whose count is out
// of date are pushed again with the current count (lazy deletion).
static int pop_best_pair(BpeLearner *L) {
    while (L->heap_n > 0) {
        HeapEntry e = heap_pop(L);
        Pair *p = &L->pairs[e.pair];
        if (p->merged || p->count < L->min_freq) continue;
        if (p->count != e.count) { heap_push(L, (HeapEntry){p->count, e.pair}); continue; }
        return e.pair;
    }
    return -1;
}

static void count_pairs(BpeLearner *L) {
    u64map_init(&L->pair_index, 1 << 16);
    for (int w = 0; w < L->n_words; w++) {
        const int *s = L->symbols + L->word_start[w];
        for (int i = 0; i + 1 < L->word_n[w]; i++) pair_add(L, s[i], s[i + 1], L->word_count[w], w);
    }
    L->n_touched = 0;  // the heap starts with every pair
    for (int p = 0; p < L->n_pairs; p++)
        if (L->pairs[p].count >= L->min_freq) heap_push(L, (HeapEntry){L->pairs[p].count, p});
}

// Rewrites word w with every (a, b) replaced by c, left to right, and moves
// the counts of the neighbouring pairs: x a b y -> x c y takes one (x, a),
// (a, b), (b, y) away and adds one (x, c), (c, y). The left neighbour is read
// from the rewritten part, so "a b a b" correctly yields (c, c).
static void merge_in_word(BpeLearner *L, int w, int a, int b, int c) {
    int *s = L->symbols + L->word_start[w];
    int n = L->word_n[w], k = 0;
    long f = L->word_count[w];
    for (int j = 0; j < n;) {
        if (j + 1 < n && s[j] == a && s[j + 1] == b) {
            if (k > 0) { pair_add(L, s[k - 1], a, -f, w); pair_add(L, s[k - 1], c, f, w); }
            if (j + 2 < n) { pair_add(L, b, s[j + 2], -f, w); pair_add(L, c, s[j + 2], f, w); }
            pair_add(L, a, b, -f, w);
            s[k++] = c;
            j += 2;
        } else {
            s[k++] = s[j++];
        }
    }
    L->word_n[w] = k;
}

static void apply_merge(BpeLearner *L, int p, int c) {
    int a = L->pairs[p].left, b = L->pairs[p].right;
    L->stamp++;
    // L->pairs may move while words are rewritten (new pairs): index it afresh
    for (int k = 0; k < L->pairs[p].n_words; k++) {
        int w = L->pairs[p].words[k];
        if (L->word_stamp[w] == L->stamp) continue;  // listed twice
        L->word_stamp[w] = L->stamp;
        merge_in_word(L, w, a, b, c);
    }
    Pair *done = &L->pairs[p];
    done->merged = 1;
    done->count = 0;
    free(done->words);
    done->words = NULL;
    done->n_words = done->cap_words = 0;
    for (int i = 0; i < L->n_touched; i++) {
        const Pair *q = &L->pairs[L->touched[i]];
        if (!q->merged && q->count >= L->min_freq) heap_push(L, (HeapEntry){q->count, L->touched[i]});
    }
    L->n_touched = 0;
}

static void learner_free(BpeLearner *L) {
    for (int p = 0; p < L->n_pairs; p++) free(L->pairs[p].words);
    free(L->pairs); free(L->heap); free(L->touched);
    if (L->pair_index.keys) u64map_free(&L->pair_index);
    free(L->word_text); free(L->word_len); free(L->word_count);
    free(L->word_start); free(L->word_n); free(L->word_stamp); free(L->symbols);
}

int bpe_learn(Tokenizer *t, const char *const *lines, long n_lines, const TokenizerOptions *opts) {
    BpeLearner L;
    memset(&L, 0, sizeof L);
    L.t = t;
    L.min_freq = opts->min_frequency;
    collect_words(&L, lines, n_lines);
    learn_alphabet(&L, opts->vocab_size);
    init_symbols(&L);
    count_pairs(&L);
    size_t joined_cap = 256;
    char *joined = malloc_check(joined_cap);
    while (t->n_pieces < opts->vocab_size) {
        int p = pop_best_pair(&L);
        if (p < 0) break;  // no pair occurs min_freq times
        const char *left = t->pieces[L.pairs[p].left], *right = t->pieces[L.pairs[p].right];
        size_t n_left = strlen(left), n_right = strlen(right);
        if (n_left + n_right > joined_cap) joined = realloc_check(joined, joined_cap = 2 * (n_left + n_right));
        memcpy(joined, left, n_left);
        memcpy(joined + n_left, right, n_right);
        int existing = strmap_get(&t->piece_ids, joined, n_left + n_right, -1);
        if (existing >= 0 && existing < t->n_reserved) {  // text like "<0x41>": would read as a byte piece
            L.pairs[p].merged = 1;
            continue;
        }
        int c = tok_add_piece(t, joined, n_left + n_right);  // an existing piece keeps its id
        tok_add_merge(t, L.pairs[p].left, L.pairs[p].right, c);
        apply_merge(&L, p, c);
    }
    free(joined);
    learner_free(&L);
    return 0;
}

// ----------------------------------------------------------------------------
// Encoding
//
// A word starts as the marker and one piece per character (byte pieces or
// <unk> for characters without one). Symbols form a linked list; a min-heap
// holds the adjacent pairs that have a merge, by (rank, position), and the
// lowest rank is merged first, leftmost first on ties: the same result as
// replaying the merges in learned order. Entries made stale by a neighbour's
// merge are dropped when popped. BPE-dropout (Provilkov et al., 2020): a
// popped merge is skipped with probability p; skipped merges return to the
// heap after the next merge that does happen, so at every step each possible
// merge is dropped independently. p = 1 skips them all: characters.

typedef struct { int rank, pos, left, right; } Candidate;

typedef struct {
    int *sym, *next, *prev;  // (cap) piece id (-1 once merged away), list links
    int cap;
    Candidate *heap, *skipped;
    int heap_n, n_skipped, heap_cap;  // heap_cap also bounds skipped
} WordScratch;

static void scratch_reserve(WordScratch *w, int n_symbols) {
    if (n_symbols <= w->cap) return;
    w->cap = n_symbols > 2 * w->cap ? n_symbols : 2 * w->cap;
    w->sym = realloc_check(w->sym, (size_t)w->cap * sizeof *w->sym);
    w->next = realloc_check(w->next, (size_t)w->cap * sizeof *w->next);
    w->prev = realloc_check(w->prev, (size_t)w->cap * sizeof *w->prev);
}

static void scratch_free(WordScratch *w) {
    free(w->sym); free(w->next); free(w->prev); free(w->heap); free(w->skipped);
}

static int candidate_before(Candidate x, Candidate y) {
    return x.rank != y.rank ? x.rank < y.rank : x.pos < y.pos;
}

static void candidate_push(WordScratch *w, Candidate c) {
    if (w->heap_n == w->heap_cap) {
        w->heap_cap = w->heap_cap ? 2 * w->heap_cap : 64;
        w->heap = realloc_check(w->heap, (size_t)w->heap_cap * sizeof *w->heap);
        w->skipped = realloc_check(w->skipped, (size_t)w->heap_cap * sizeof *w->skipped);
    }
    int i = w->heap_n++;
    while (i > 0 && candidate_before(c, w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
}

static Candidate candidate_pop(WordScratch *w) {
    Candidate top = w->heap[0], last = w->heap[--w->heap_n];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= w->heap_n) break;
        if (child + 1 < w->heap_n && candidate_before(w->heap[child + 1], w->heap[child])) child++;
        if (!candidate_before(w->heap[child], last)) break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (w->heap_n > 0) w->heap[i] = last;
    return top;
}

// Pushes the pair that starts at pos, if the merges know it.
static void push_pair_at(const Tokenizer *t, WordScratch *w, int pos) {
    int right = w->next[pos];
    if (right < 0) return;
    uint64_t key = (uint64_t)w->sym[pos] << 32 | (uint32_t)w->sym[right];
    int rank = u64map_get(&t->merge_ranks, key, -1);
    if (rank >= 0) candidate_push(w, (Candidate){rank, pos, w->sym[pos], w->sym[right]});
}

static void merge_symbols(const Tokenizer *t, WordScratch *w, int n, float dropout_p, Rng *rng) {
    for (int i = 0; i < n; i++) { w->next[i] = i + 1 < n ? i + 1 : -1; w->prev[i] = i - 1; }
    w->heap_n = w->n_skipped = 0;
    for (int i = 0; i + 1 < n; i++) push_pair_at(t, w, i);
    while (w->heap_n > 0) {
        Candidate c = candidate_pop(w);
        int right = w->next[c.pos];
        if (w->sym[c.pos] != c.left || right < 0 || w->sym[right] != c.right) continue;  // stale
        if (dropout_p > 0 && rng_uniform(rng) < dropout_p) { w->skipped[w->n_skipped++] = c; continue; }
        w->sym[c.pos] = t->merges[3 * c.rank + 2];
        w->sym[right] = -1;
        w->next[c.pos] = w->next[right];
        if (w->next[right] >= 0) w->prev[w->next[right]] = c.pos;
        if (w->prev[c.pos] >= 0) push_pair_at(t, w, w->prev[c.pos]);
        push_pair_at(t, w, c.pos);
        int n_skipped = w->n_skipped;
        w->n_skipped = 0;
        for (int i = 0; i < n_skipped; i++) candidate_push(w, w->skipped[i]);
    }
}

// ----------------------------------------------------------------------------
// Cache of encoded words (dropout 0 only), shared by threads under a mutex

#define CACHE_MAX_WORD_BYTES 64
#define CACHE_MAX_ENTRIES (1 << 18)

typedef struct {
    uint64_t hash;
    int word_len, n_ids;
    int ids[];  // (n_ids), then the word's bytes
} CacheEntry;

struct BpeCache {
    pthread_mutex_t lock;
    CacheEntry **slots;  // (cap) NULL = empty
    size_t cap, n;
};

BpeCache *bpe_cache_new(void) {
    BpeCache *c = calloc_check(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->cap = 4096;
    c->slots = calloc_check(c->cap, sizeof *c->slots);
    return c;
}

static void cache_clear(BpeCache *c) {
    for (size_t i = 0; i < c->cap; i++) { free(c->slots[i]); c->slots[i] = NULL; }
    c->n = 0;
}

void bpe_cache_free(BpeCache *c) {
    if (!c) return;
    cache_clear(c);
    free(c->slots);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static size_t cache_find(const BpeCache *c, const char *word, int len, uint64_t h) {
    size_t mask = c->cap - 1, i = h & mask;
    for (; c->slots[i]; i = (i + 1) & mask) {
        const CacheEntry *e = c->slots[i];
        if (e->hash == h && e->word_len == len && memcmp(e->ids + e->n_ids, word, (size_t)len) == 0) break;
    }
    return i;
}

// Copies the cached ids of word into ids[]: returns their count, -1 if they
// do not fit in max_ids, -2 if the word is not cached.
static int cache_lookup(BpeCache *c, const char *word, int len, uint64_t h, int *ids, int max_ids) {
    pthread_mutex_lock(&c->lock);
    const CacheEntry *e = c->slots[cache_find(c, word, len, h)];
    int n = !e ? -2 : e->n_ids > max_ids ? -1 : e->n_ids;
    if (n > 0) memcpy(ids, e->ids, (size_t)n * sizeof *ids);
    pthread_mutex_unlock(&c->lock);
    return n;
}

static void cache_grow(BpeCache *c) {
    size_t old_cap = c->cap;
    CacheEntry **old = c->slots;
    c->cap *= 2;
    c->slots = calloc_check(c->cap, sizeof *c->slots);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i]) continue;
        size_t j = old[i]->hash & (c->cap - 1);
        while (c->slots[j]) j = (j + 1) & (c->cap - 1);
        c->slots[j] = old[i];
    }
    free(old);
}

static void cache_insert(BpeCache *c, const char *word, int len, uint64_t h, const int *ids, int n) {
    CacheEntry *e = malloc_check(sizeof *e + (size_t)n * sizeof(int) + (size_t)len);
    e->hash = h;
    e->word_len = len;
    e->n_ids = n;
    memcpy(e->ids, ids, (size_t)n * sizeof *ids);
    memcpy(e->ids + n, word, (size_t)len);
    pthread_mutex_lock(&c->lock);
    if ((c->n + 1) * 2 > c->cap) {
        if (c->n >= CACHE_MAX_ENTRIES) cache_clear(c);  // bounded memory on endless input
        else cache_grow(c);
    }
    size_t i = cache_find(c, word, len, h);
    if (c->slots[i]) free(e);  // another thread was first
    else { c->slots[i] = e; c->n++; }
    pthread_mutex_unlock(&c->lock);
}

// ----------------------------------------------------------------------------
// Encoding a text

// Encodes one word (its bytes without the marker) into ids; -1 if it needs
// more than max_ids ids.
static int encode_word(const Tokenizer *t, const char *s, int len, int *ids, int max_ids,
                       float dropout_p, Rng *rng, WordScratch *w) {
    int cacheable = dropout_p == 0 && len <= CACHE_MAX_WORD_BYTES;
    uint64_t h = 0;
    if (cacheable) {
        h = hash_bytes(s, (size_t)len);
        int n = cache_lookup(t->cache, s, len, h, ids, max_ids);
        if (n != -2) return n;
    }
    scratch_reserve(w, len + 1);
    int n = 0;
    w->sym[n++] = t->marker_id;
    for (int k = 0; k < len;) {
        uint32_t cp;
        int clen = utf8_decode(s + k, (size_t)(len - k), &cp);  // validated by the caller
        int id = cp == WORD_MARKER_CP ? -1 : u64map_get(&t->char_ids, cp, -1);
        if (id >= 0) w->sym[n++] = id;
        else tok_push_unknown(t, s + k, clen, w->sym, &n, w->cap);  // one symbol per byte: fits
        k += clen;
    }
    merge_symbols(t, w, n, dropout_p, rng);
    int n_ids = 0;
    for (int i = 0; i >= 0; i = w->next[i]) {
        if (n_ids >= max_ids) return -1;
        ids[n_ids++] = w->sym[i];
    }
    if (cacheable) cache_insert(t->cache, s, len, h, ids, n_ids);
    return n_ids;
}

int bpe_encode(const Tokenizer *t, const char *text, size_t len, int *ids, int max_ids,
               float dropout_p, Rng *rng) {
    if (len == 0) return 0;
    WordScratch w;
    memset(&w, 0, sizeof w);
    int n = 0;
    const char *s = text, *end = text + len;
    for (;;) {
        const char *space = memchr(s, ' ', (size_t)(end - s));
        const char *word_end = space ? space : end;
        int got = encode_word(t, s, (int)(word_end - s), ids + n, max_ids - n, dropout_p, rng, &w);
        if (got < 0) { n = -1; break; }
        n += got;
        if (!space) break;
        s = space + 1;
    }
    scratch_free(&w);
    return n;
}
