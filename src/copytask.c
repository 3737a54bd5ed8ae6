// Copy / reverse task generation. Deterministic for a seed: the held-out
// strings are drawn first (distinct, from lengths with many strings), then
// training strings are drawn until n_train of them avoid the held-out set.
#include "copytask.h"
#include "common.h"
#include "rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";

// ----------------------------------------------------------------------------
// A set of strings (open addressing on FNV-1a), enough for the held-out set.

typedef struct {
    char **slots;
    long cap;            // a power of two, at least twice the entries
} StringSet;

static uint64_t hash_string(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void set_init(StringSet *set, long n) {
    set->cap = 16;
    while (set->cap < 2 * n + 2) set->cap *= 2;
    set->slots = calloc_check((size_t)set->cap, sizeof(char *));
}

static void set_free(StringSet *set) {
    free(set->slots);  // the strings are owned by the ParallelText
    set->slots = NULL;
}

static long set_slot(const StringSet *set, const char *s) {
    long i = (long)(hash_string(s) & (uint64_t)(set->cap - 1));
    while (set->slots[i] && strcmp(set->slots[i], s) != 0) i = (i + 1) & (set->cap - 1);
    return i;
}

static int set_contains(const StringSet *set, const char *s) { return set->slots[set_slot(set, s)] != NULL; }
static void set_add(StringSet *set, char *s) { set->slots[set_slot(set, s)] = s; }

// ----------------------------------------------------------------------------
// Generation

// A string of length lo..hi, uniform in length, then uniform in symbols.
static void random_string(const CopyTaskConfig *cfg, int lo, int hi, Rng *rng, char *out) {
    int len = lo + (int)rng_below(rng, (uint32_t)(hi - lo + 1));
    for (int i = 0; i < len; i++) out[i] = alphabet[rng_below(rng, (uint32_t)cfg->n_symbols)];
    out[len] = '\0';
}

// The shortest length from which held-out strings are drawn: one with at
// least 20 times as many strings as it would give to the held-out set, so
// that holding them out takes at most 5% of any length away from training
// (with 10 symbols, the 10 strings of length 1 all stay trainable).
static int held_out_min_len(const CopyTaskConfig *cfg) {
    for (int len = cfg->min_len; len <= cfg->max_len; len++) {
        double per_length = (double)cfg->n_valid / (cfg->max_len - len + 1);
        if (pow(cfg->n_symbols, len) >= 20.0 * per_length) return len;
    }
    return -1;
}

static void make_target(const char *src, int reverse, char *out) {
    size_t n = strlen(src);
    for (size_t i = 0; i < n; i++) out[i] = reverse ? src[n - 1 - i] : src[i];
    out[n] = '\0';
}


int copytask_generate(const CopyTaskConfig *cfg, ParallelText *train, ParallelText *valid) {
    if (cfg->n_symbols < 2 || cfg->n_symbols > (int)strlen(alphabet))
        return attn_error("copy task: copy_symbols %d is outside [2, %d]", cfg->n_symbols, (int)strlen(alphabet));
    if (cfg->min_len < 1 || cfg->min_len > cfg->max_len)
        return attn_error("copy task: bad length range [%d, %d]", cfg->min_len, cfg->max_len);
    int held_min = held_out_min_len(cfg);
    if (held_min < 0)
        return attn_error("copy task: too few distinct strings of length %d..%d over %d symbols to hold out %d "
                          "of them (at most 5%% of a length); lower copy_valid_size or raise copy_max_len",
                          cfg->min_len, cfg->max_len, cfg->n_symbols, cfg->n_valid);
    Rng rng;
    rng_seed(&rng, cfg->seed ^ 0x636f70797461736bULL);  // "copytask": its own stream
    char *src = malloc_check((size_t)cfg->max_len + 1), *tgt = malloc_check((size_t)cfg->max_len + 1);
    StringSet held_out;
    set_init(&held_out, cfg->n_valid);
    // A draw that repeats a held-out string is redrawn; held_min keeps
    // that rare.
    while (valid->n < cfg->n_valid) {
        random_string(cfg, held_min, cfg->max_len, &rng, src);
        if (set_contains(&held_out, src)) continue;
        make_target(src, cfg->reverse, tgt);
        parallel_append(valid, src, tgt, valid->n + 1);
        set_add(&held_out, valid->src[valid->n - 1]);
    }
    while (train->n < cfg->n_train) {
        random_string(cfg, cfg->min_len, cfg->max_len, &rng, src);
        if (set_contains(&held_out, src)) continue;
        make_target(src, cfg->reverse, tgt);
        parallel_append(train, src, tgt, train->n + 1);
    }
    set_free(&held_out);
    free(src);
    free(tgt);
    return 0;
}
