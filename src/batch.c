// Batching: length-bucketed, budget-capped, reproducible batch order with a
// resumable cursor (see batch.h).
#include "batch.h"
#include "common.h"
#include "rng.h"
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Token-id pairs

void token_pairs_init(TokenPairs *tp) {
    memset(tp, 0, sizeof *tp);
    tp->cap = 1024;
    tp->src_off = malloc_check(sizeof(long) * (size_t)(tp->cap + 1));
    tp->tgt_off = malloc_check(sizeof(long) * (size_t)(tp->cap + 1));
    tp->src_off[0] = tp->tgt_off[0] = 0;
    tp->src_cap = tp->tgt_cap = 16384;
    tp->src_ids = malloc_check(sizeof(int) * (size_t)tp->src_cap);
    tp->tgt_ids = malloc_check(sizeof(int) * (size_t)tp->tgt_cap);
}

static int *grow_ids(int *ids, long *cap, long need) {
    if (need <= *cap) return ids;
    while (*cap < need) *cap *= 2;
    return realloc_check(ids, sizeof(int) * (size_t)*cap);
}

void token_pairs_add(TokenPairs *tp, const int *src, int src_len, const int *tgt, int tgt_len) {
    if (tp->n == tp->cap) {
        tp->cap *= 2;
        tp->src_off = realloc_check(tp->src_off, sizeof(long) * (size_t)(tp->cap + 1));
        tp->tgt_off = realloc_check(tp->tgt_off, sizeof(long) * (size_t)(tp->cap + 1));
    }
    long s0 = tp->src_off[tp->n], t0 = tp->tgt_off[tp->n];
    tp->src_ids = grow_ids(tp->src_ids, &tp->src_cap, s0 + src_len);
    tp->tgt_ids = grow_ids(tp->tgt_ids, &tp->tgt_cap, t0 + tgt_len);
    if (src_len) memcpy(tp->src_ids + s0, src, sizeof(int) * (size_t)src_len);
    if (tgt_len) memcpy(tp->tgt_ids + t0, tgt, sizeof(int) * (size_t)tgt_len);
    tp->n++;
    tp->src_off[tp->n] = s0 + src_len;
    tp->tgt_off[tp->n] = t0 + tgt_len;
}

void token_pairs_clear(TokenPairs *tp) { tp->n = 0; }

void token_pairs_free(TokenPairs *tp) {
    free(tp->src_ids); free(tp->src_off);
    free(tp->tgt_ids); free(tp->tgt_off);
    memset(tp, 0, sizeof *tp);
}

// ----------------------------------------------------------------------------
// Lengths with the special tokens, capped by max_len (truncation)

static int padded_src_len(const Batcher *bt, int pair) {
    int S = token_pairs_src_len(bt->data, pair) + 1;  // + </s>
    return bt->cfg.max_len > 0 && S > bt->cfg.max_len ? bt->cfg.max_len : S;
}

static int padded_tgt_len(const Batcher *bt, int pair) {
    int T = token_pairs_tgt_len(bt->data, pair) + 1;  // <s> + y or y + </s>
    return bt->cfg.max_len > 0 && T > bt->cfg.max_len ? bt->cfg.max_len : T;
}

// ----------------------------------------------------------------------------
// Planning an epoch

struct BatchItem {
    int S, T;    // padded lengths
    int pos;     // position after the shuffle: the tie-break that keeps sorting deterministic
    int pair;
};

// Longest side first (a batch costs B * max(S, T)), then S, then T.
static int cmp_item(const void *a, const void *b) {
    const struct BatchItem *x = a, *y = b;
    int mx = x->S > x->T ? x->S : x->T, my = y->S > y->T ? y->S : y->T;
    if (mx != my) return mx < my ? -1 : 1;
    if (x->S != y->S) return x->S < y->S ? -1 : 1;
    if (x->T != y->T) return x->T < y->T ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int max_int(int a, int b) { return a > b ? a : b; }

// Cuts sorted items[lo, hi) into batches greedily; appends to batch_start.
static void cut_batches(Batcher *bt, int lo, int hi) {
    int B = 0, S = 0, T = 0;
    for (int i = lo; i < hi; i++) {
        const struct BatchItem *it = &bt->items[i];
        int S2 = max_int(S, it->S), T2 = max_int(T, it->T);
        int over_tokens = bt->cfg.max_tokens > 0 && (long)(B + 1) * max_int(S2, T2) > bt->cfg.max_tokens;
        int over_sentences = bt->cfg.max_sentences > 0 && B + 1 > bt->cfg.max_sentences;
        if (B > 0 && (over_tokens || over_sentences)) {
            bt->batch_start[++bt->n_batches] = i;
            B = 0; S2 = it->S; T2 = it->T;
        }
        B++; S = S2; T = T2;
        bt->order[i] = it->pair;
    }
    bt->batch_start[++bt->n_batches] = hi;
}

static uint64_t epoch_seed(uint64_t seed, int epoch) {
    return seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1));
}

static void plan_epoch(Batcher *bt, int epoch) {
    int n = bt->n_kept;
    int shuffle = bt->cfg.shuffle;
    Rng rng;
    rng_seed(&rng, epoch_seed(bt->cfg.seed, shuffle ? epoch : 0));
    for (int i = 0; i < n; i++) bt->order[i] = bt->kept[i];
    if (shuffle) rng_shuffle_ints(&rng, bt->order, n);
    for (int i = 0; i < n; i++) {
        int p = bt->order[i];
        bt->items[i] = (struct BatchItem){padded_src_len(bt, p), padded_tgt_len(bt, p), i, p};
    }
    int chunk = shuffle ? bt->chunk_size : n;  // evaluation: one global sort
    bt->n_batches = 0;
    bt->batch_start[0] = 0;
    for (int lo = 0; lo < n; lo += chunk) {
        int hi = lo + chunk < n ? lo + chunk : n;
        qsort(bt->items + lo, (size_t)(hi - lo), sizeof *bt->items, cmp_item);
        cut_batches(bt, lo, hi);
    }
    for (int k = 0; k < bt->n_batches; k++) bt->batch_perm[k] = k;
    // Within a chunk batches go from short to long: shuffle their order too.
    if (shuffle) rng_shuffle_ints(&rng, bt->batch_perm, bt->n_batches);
    bt->planned_epoch = epoch;
}

// ----------------------------------------------------------------------------
// Creation

void batch_config_default(BatchConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->max_tokens = 4096;
    cfg->shuffle = 1;
    cfg->seed = 1;
}

static int check_config(const BatchConfig *cfg) {
    if (cfg->max_tokens < 0) return attn_error("batch: max_tokens must be >= 0, got %d", cfg->max_tokens);
    if (cfg->max_sentences < 0) return attn_error("batch: max_sentences must be >= 0, got %d", cfg->max_sentences);
    if (cfg->max_tokens == 0 && cfg->max_sentences == 0)
        return attn_error("batch: set a token budget (max_tokens) or a sentence cap (max_sentences)");
    if (cfg->max_len < 0 || cfg->max_len == 1)
        return attn_error("batch: max_len must be 0 (no limit) or >= 2, got %d", cfg->max_len);
    if (cfg->chunk_size < 0) return attn_error("batch: chunk_size must be >= 0, got %d", cfg->chunk_size);
    return 0;
}

// Keeps the pairs within max_len (all of them when truncating) and records
// the length extremes that batcher_capacity reports.
static void select_pairs(Batcher *bt) {
    const TokenPairs *tp = bt->data;
    int max_len = bt->cfg.max_len;
    bt->min_len = 1 << 30;
    for (int i = 0; i < tp->n; i++) {
        int S = token_pairs_src_len(tp, i) + 1, T = token_pairs_tgt_len(tp, i) + 1;
        if (max_len > 0 && !bt->cfg.truncate && (S > max_len || T > max_len)) { bt->n_dropped++; continue; }
        bt->kept[bt->n_kept++] = i;
        S = padded_src_len(bt, i);
        T = padded_tgt_len(bt, i);
        bt->min_len = bt->min_len < max_int(S, T) ? bt->min_len : max_int(S, T);
        bt->max_S = max_int(bt->max_S, S);
        bt->max_T = max_int(bt->max_T, T);
    }
}

static int default_chunk_size(const Batcher *bt) {
    long total = 0;
    for (int k = 0; k < bt->n_kept; k++) {
        int p = bt->kept[k];
        total += max_int(padded_src_len(bt, p), padded_tgt_len(bt, p));
    }
    double mean_len = (double)total / bt->n_kept;
    double per_batch = bt->cfg.max_tokens > 0 ? bt->cfg.max_tokens / mean_len : bt->cfg.max_sentences;
    if (bt->cfg.max_sentences > 0 && per_batch > bt->cfg.max_sentences) per_batch = bt->cfg.max_sentences;
    long chunk = (long)(100 * per_batch);
    return chunk < 1 ? 1 : chunk > bt->n_kept ? bt->n_kept : (int)chunk;
}

int batcher_create(Batcher *bt, const TokenPairs *data, const BatchConfig *cfg) {
    memset(bt, 0, sizeof *bt);
    if (check_config(cfg) != 0) return -1;
    bt->cfg = *cfg;
    bt->data = data;
    bt->kept = malloc_check(sizeof(int) * (size_t)(data->n > 0 ? data->n : 1));
    select_pairs(bt);
    if (bt->n_kept == 0) {
        int dropped = bt->n_dropped;
        batcher_free(bt);
        return attn_error("batch: no pairs to batch (%d dropped as longer than max_len %d)", dropped, cfg->max_len);
    }
    if (cfg->max_tokens > 0 && max_int(bt->max_S, bt->max_T) > cfg->max_tokens) {
        int longest = max_int(bt->max_S, bt->max_T);
        batcher_free(bt);
        return attn_error("batch: a sequence of %d tokens does not fit the token budget of %d; raise the budget or set a max length",
                          longest, cfg->max_tokens);
    }
    bt->chunk_size = cfg->chunk_size > 0 ? cfg->chunk_size : default_chunk_size(bt);
    bt->order = malloc_check(sizeof(int) * (size_t)bt->n_kept);
    bt->batch_start = malloc_check(sizeof(int) * (size_t)(bt->n_kept + 1));
    bt->batch_perm = malloc_check(sizeof(int) * (size_t)bt->n_kept);
    bt->items = malloc_check(sizeof *bt->items * (size_t)bt->n_kept);
    plan_epoch(bt, 0);
    bt->cursor = (BatchCursor){0, 0};
    return 0;
}

void batcher_free(Batcher *bt) {
    free(bt->kept);
    free(bt->order);
    free(bt->batch_start);
    free(bt->batch_perm);
    free(bt->items);
    memset(bt, 0, sizeof *bt);
}

void batcher_capacity(const Batcher *bt, int *max_B, int *max_S, int *max_T) {
    int B = bt->n_kept;
    if (bt->cfg.max_sentences > 0 && bt->cfg.max_sentences < B) B = bt->cfg.max_sentences;
    // A batch's B * max(S, T) stays within the budget, and max(S, T) is at
    // least the shortest pair's.
    if (bt->cfg.max_tokens > 0 && bt->cfg.max_tokens / bt->min_len < B) B = bt->cfg.max_tokens / bt->min_len;
    *max_B = B;
    *max_S = bt->max_S;
    *max_T = bt->max_T;
}

// ----------------------------------------------------------------------------
// Batches

void batch_alloc(Batch *b, int max_B, int max_S, int max_T) {
    b->B = b->S = b->T = 0;
    b->src = malloc_check(sizeof(int) * (size_t)max_B * (size_t)max_S);
    b->tgt_in = malloc_check(sizeof(int) * (size_t)max_B * (size_t)max_T);
    b->tgt_out = malloc_check(sizeof(int) * (size_t)max_B * (size_t)max_T);
}

void batch_free(Batch *b) {
    free(b->src);
    free(b->tgt_in);
    free(b->tgt_out);
    memset(b, 0, sizeof *b);
}

int batcher_epoch_batches(const Batcher *bt) { return bt->n_batches; }

int batcher_batch_pairs(const Batcher *bt, int k, const int **pairs) {
    int j = bt->batch_perm[k];
    *pairs = bt->order + bt->batch_start[j];
    return bt->batch_start[j + 1] - bt->batch_start[j];
}

// Row b of the batch from pair p: src = x </s>, tgt_in = <s> y, tgt_out = y </s>,
// each cut to its padded length (truncation keeps the end markers).
static void fill_row(const Batcher *bt, Batch *out, int b, int p) {
    const TokenPairs *tp = bt->data;
    int S = padded_src_len(bt, p), T = padded_tgt_len(bt, p);
    const int *x = tp->src_ids + tp->src_off[p], *y = tp->tgt_ids + tp->tgt_off[p];
    int *src = out->src + (size_t)b * out->S;
    int *tin = out->tgt_in + (size_t)b * out->T, *tout = out->tgt_out + (size_t)b * out->T;
    for (int t = 0; t < S - 1; t++) src[t] = x[t];
    src[S - 1] = EOS_ID;
    for (int t = S; t < out->S; t++) src[t] = PAD_ID;
    tin[0] = BOS_ID;
    for (int t = 1; t < T; t++) tin[t] = y[t - 1];
    for (int t = 0; t < T - 1; t++) tout[t] = y[t];
    tout[T - 1] = EOS_ID;
    for (int t = T; t < out->T; t++) tin[t] = tout[t] = PAD_ID;
}

void batcher_fill(Batcher *bt, int k, Batch *out) {
    const int *pairs;
    int B = batcher_batch_pairs(bt, k, &pairs);
    int S = 0, T = 0;
    for (int b = 0; b < B; b++) {
        S = max_int(S, padded_src_len(bt, pairs[b]));
        T = max_int(T, padded_tgt_len(bt, pairs[b]));
    }
    out->B = B; out->S = S; out->T = T;
    for (int b = 0; b < B; b++) fill_row(bt, out, b, pairs[b]);
}

void batcher_next(Batcher *bt, Batch *out) {
    if (bt->cursor.position >= bt->n_batches) bt->cursor = (BatchCursor){bt->cursor.epoch + 1, 0};
    if (bt->planned_epoch != bt->cursor.epoch) plan_epoch(bt, bt->cursor.epoch);
    batcher_fill(bt, bt->cursor.position, out);
    bt->cursor.position++;
}

int batcher_seek(Batcher *bt, BatchCursor cursor) {
    if (cursor.epoch < 0 || cursor.position < 0)
        return attn_error("batch cursor (epoch %d, position %d) is negative", cursor.epoch, cursor.position);
    plan_epoch(bt, cursor.epoch);
    if (cursor.position > bt->n_batches)
        return attn_error("batch cursor position %d is beyond the %d batches of epoch %d (was the data or the batch config changed?)",
                          cursor.position, bt->n_batches, cursor.epoch);
    bt->cursor = cursor;
    return 0;
}
