// Copy / reverse task generation. Deterministic for a seed: the held-out
// strings are drawn first (distinct), then training strings are drawn until
// n_train of them avoid the held-out set.
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

static void random_string(const CopyTaskConfig *cfg, Rng *rng, char *out) {
    int len = cfg->min_len + (int)rng_below(rng, (uint32_t)(cfg->max_len - cfg->min_len + 1));
    for (int i = 0; i < len; i++) out[i] = alphabet[rng_below(rng, (uint32_t)cfg->n_symbols)];
    out[len] = '\0';
}

static void make_target(const char *src, int reverse, char *out) {
    size_t n = strlen(src);
    for (size_t i = 0; i < n; i++) out[i] = reverse ? src[n - 1 - i] : src[i];
    out[n] = '\0';
}

// Distinct strings with lengths in [min_len, max_len] (as a double: it can be huge).
static double distinct_strings(const CopyTaskConfig *cfg) {
    double total = 0.0;
    for (int len = cfg->min_len; len <= cfg->max_len; len++) total += pow(cfg->n_symbols, len);
    return total;
}

int copytask_generate(const CopyTaskConfig *cfg, ParallelText *train, ParallelText *valid) {
    if (cfg->n_symbols < 2 || cfg->n_symbols > (int)strlen(alphabet))
        return attn_error("copy task: copy_symbols %d is outside [2, %d]", cfg->n_symbols, (int)strlen(alphabet));
    if (cfg->min_len < 1 || cfg->min_len > cfg->max_len)
        return attn_error("copy task: bad length range [%d, %d]", cfg->min_len, cfg->max_len);
    double space = distinct_strings(cfg);
    if ((double)cfg->n_valid > space / 2)
        return attn_error("copy task: only %.0f distinct strings of length %d..%d over %d symbols; "
                          "lower copy_valid_size (%d) to at most half of that or widen the range",
                          space, cfg->min_len, cfg->max_len, cfg->n_symbols, cfg->n_valid);
    Rng rng;
    rng_seed(&rng, cfg->seed ^ 0x636f70797461736bULL);  // "copytask": its own stream
    char *src = malloc_check((size_t)cfg->max_len + 1), *tgt = malloc_check((size_t)cfg->max_len + 1);
    StringSet held_out;
    set_init(&held_out, cfg->n_valid);
    // Short lengths hold few strings: a draw that repeats one is redrawn,
    // which the check above keeps from looping for long.
    while (valid->n < cfg->n_valid) {
        random_string(cfg, &rng, src);
        if (set_contains(&held_out, src)) continue;
        make_target(src, cfg->reverse, tgt);
        parallel_append(valid, src, tgt, valid->n + 1);
        set_add(&held_out, valid->src[valid->n - 1]);
    }
    while (train->n < cfg->n_train) {
        random_string(cfg, &rng, src);
        if (set_contains(&held_out, src)) continue;
        make_target(src, cfg->reverse, tgt);
        parallel_append(train, src, tgt, train->n + 1);
    }
    set_free(&held_out);
    free(src);
    free(tgt);
    return 0;
}
