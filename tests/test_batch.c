// Tests of src/batch.c: row layout (</s>, <s>, padding), bucketing invariants
// (no batch over budget, every pair once per epoch), a new order each epoch,
// determinism, cursor resume, max_len drop/truncate, capacity, bad configs.
#include "test.h"
#include "batch.h"
#include "common.h"
#include "rng.h"
#include <stdlib.h>
#include <string.h>

// Token t of pair i's source / target: unique enough to check placement.
static int src_tok(int i, int t) { return 4 + (i * 31 + t * 7) % 997; }
static int tgt_tok(int i, int t) { return 4 + (i * 17 + t * 13) % 991; }

// n pairs with source lengths drawn in [0, max_src] and target lengths within
// +-5 of the source's (capped at max_tgt), correlated as in real data.
static void make_pairs(TokenPairs *tp, int n, int max_src, int max_tgt, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    int src[512], tgt[512];
    token_pairs_init(tp);
    for (int i = 0; i < n; i++) {
        int ns = (int)rng_below(&rng, (uint32_t)max_src + 1);
        int nt = ns - 5 + (int)rng_below(&rng, 11);
        nt = nt < 0 ? 0 : nt > max_tgt ? max_tgt : nt;
        for (int t = 0; t < ns; t++) src[t] = src_tok(i, t);
        for (int t = 0; t < nt; t++) tgt[t] = tgt_tok(i, t);
        token_pairs_add(tp, src, ns, tgt, nt);
    }
}

// 1 when row b of the batch is pair p laid out as docs/data.md says
// (possibly truncated to max_len).
static int row_ok(const Batch *bt, int b, const TokenPairs *tp, int p, int max_len) {
    int ns = token_pairs_src_len(tp, p), nt = token_pairs_tgt_len(tp, p);
    if (max_len > 0 && ns + 1 > max_len) ns = max_len - 1;
    if (max_len > 0 && nt + 1 > max_len) nt = max_len - 1;
    const int *src = bt->src + (size_t)b * bt->S, *tin = bt->tgt_in + (size_t)b * bt->T, *tout = bt->tgt_out + (size_t)b * bt->T;
    for (int t = 0; t < bt->S; t++) {
        int want = t < ns ? src_tok(p, t) : t == ns ? EOS_ID : PAD_ID;
        if (src[t] != want) return 0;
    }
    for (int t = 0; t < bt->T; t++) {
        int want_in = t == 0 ? BOS_ID : t <= nt ? tgt_tok(p, t - 1) : PAD_ID;
        int want_out = t < nt ? tgt_tok(p, t) : t == nt ? EOS_ID : PAD_ID;
        if (tin[t] != want_in || tout[t] != want_out) return 0;
    }
    return 1;
}

static uint64_t hash_batch(const Batch *b) {
    uint64_t h = 1469598103934665603ull;
    int dims[3] = {b->B, b->S, b->T};
    for (int i = 0; i < 3; i++) h = (h ^ (uint64_t)dims[i]) * 1099511628211ull;
    for (long i = 0; i < (long)b->B * b->S; i++) h = (h ^ (uint64_t)b->src[i]) * 1099511628211ull;
    for (long i = 0; i < (long)b->B * b->T; i++) h = (h ^ (uint64_t)b->tgt_out[i]) * 1099511628211ull;
    return h;
}

static void test_layout(void) {
    TokenPairs tp;
    token_pairs_init(&tp);
    int x[3] = {10, 11, 12}, y[2] = {20, 21};
    token_pairs_add(&tp, x, 3, y, 2);
    token_pairs_add(&tp, x, 1, y, 0);  // empty target
    BatchConfig cfg;
    batch_config_default(&cfg);
    cfg.shuffle = 0;
    Batcher bt;
    int rc = batcher_create(&bt, &tp, &cfg);
    int B, S, T;
    batcher_capacity(&bt, &B, &S, &T);
    CHECK(rc == 0 && B == 2 && S == 4 && T == 3, "layout: capacity B=2 S=4 T=3 (got %d %d %d)", B, S, T);
    Batch b;
    batch_alloc(&b, B, S, T);
    batcher_next(&bt, &b);
    // Sorted by length: the short pair first.
    int want_src[8] = {10, EOS_ID, PAD_ID, PAD_ID, 10, 11, 12, EOS_ID};
    int want_in[6] = {BOS_ID, PAD_ID, PAD_ID, BOS_ID, 20, 21};
    int want_out[6] = {EOS_ID, PAD_ID, PAD_ID, 20, 21, EOS_ID};
    CHECK(b.B == 2 && b.S == 4 && b.T == 3 && !memcmp(b.src, want_src, sizeof want_src) &&
          !memcmp(b.tgt_in, want_in, sizeof want_in) && !memcmp(b.tgt_out, want_out, sizeof want_out),
          "layout: src = x </s>, tgt_in = <s> y, tgt_out = y </s>, PAD after");
    batch_free(&b);
    batcher_free(&bt);
    token_pairs_free(&tp);
}

// Walks one epoch from the cursor: checks the budget, the sentence cap,
// capacity and row contents; counts how often each pair appears.
static void walk_epoch(Batcher *bt, const TokenPairs *tp, Batch *b, int *count, int *over_budget, int *bad_rows,
                       int *over_cap, uint64_t *first_pairs) {
    int cap_B, cap_S, cap_T;
    batcher_capacity(bt, &cap_B, &cap_S, &cap_T);
    // The next epoch is planned by its first batcher_next, so the loop ends
    // when the cursor reaches the end of the epoch it is in.
    for (;;) {
        batcher_next(bt, b);
        int k = bt->cursor.position - 1;
        const int *pairs;
        int B = batcher_batch_pairs(bt, k, &pairs);
        if (k == 0 && first_pairs) *first_pairs = (uint64_t)pairs[0] * 100003u + (uint64_t)pairs[B - 1];
        const BatchConfig *c = &bt->cfg;
        if ((c->max_tokens && ((long)b->B * b->S > c->max_tokens || (long)b->B * b->T > c->max_tokens)) ||
            (c->max_sentences && b->B > c->max_sentences)) (*over_budget)++;
        if (b->B > cap_B || b->S > cap_S || b->T > cap_T || B != b->B) (*over_cap)++;
        for (int r = 0; r < B; r++) {
            count[pairs[r]]++;
            if (!row_ok(b, r, tp, pairs[r], c->max_len)) (*bad_rows)++;
        }
        if (bt->cursor.position == batcher_epoch_batches(bt)) break;
    }
}

static void test_invariants(void) {
    int n = 3000;
    TokenPairs tp;
    make_pairs(&tp, n, 60, 80, 42);
    BatchConfig cfg;
    batch_config_default(&cfg);
    cfg.max_tokens = 600;
    cfg.max_sentences = 64;
    cfg.seed = 5;
    Batcher bt;
    int rc = batcher_create(&bt, &tp, &cfg);
    CHECK(rc == 0 && bt.n_kept == n, "invariants: batcher over %d pairs", n);
    int cap_B, cap_S, cap_T;
    batcher_capacity(&bt, &cap_B, &cap_S, &cap_T);
    Batch b;
    batch_alloc(&b, cap_B, cap_S, cap_T);
    int *count = calloc((size_t)n, sizeof(int));
    uint64_t first[3];
    long pad = 0, cells = 0;
    for (int e = 0; e < 3; e++) {
        memset(count, 0, sizeof(int) * (size_t)n);
        int over = 0, bad = 0, over_cap = 0;
        walk_epoch(&bt, &tp, &b, count, &over, &bad, &over_cap, &first[e]);
        int once = 1;
        for (int i = 0; i < n; i++) once &= count[i] == 1;
        CHECK(once, "invariants: epoch %d holds every pair exactly once", e);
        CHECK(over == 0, "invariants: epoch %d: no batch over 600 tokens or 64 sentences (%d over)", e, over);
        CHECK(over_cap == 0, "invariants: epoch %d: every batch within batcher_capacity (%d %d %d)", e, cap_B, cap_S, cap_T);
        CHECK(bad == 0, "invariants: epoch %d: every row laid out right (%d bad)", e, bad);
        CHECK(bt.cursor.epoch == e && bt.cursor.position == batcher_epoch_batches(&bt), "invariants: cursor at the end of epoch %d", e);
    }
    CHECK(first[0] != first[1] && first[1] != first[2], "invariants: a new batch order each epoch");
    // Padding: length bucketing should waste little.
    batcher_seek(&bt, (BatchCursor){0, 0});
    for (int k = 0; k < batcher_epoch_batches(&bt); k++) {
        batcher_next(&bt, &b);
        for (long i = 0; i < (long)b.B * b.T; i++) pad += b.tgt_out[i] == PAD_ID;
        cells += (long)b.B * b.T;
    }
    printf("INFO batch: %d batches per epoch, target padding %.1f%% (capacity B=%d S=%d T=%d)\n",
           batcher_epoch_batches(&bt), 100.0 * pad / cells, cap_B, cap_S, cap_T);
    CHECK((double)pad / cells < 0.15, "invariants: bucketing keeps target padding under 15%% (%.1f%%)", 100.0 * pad / cells);

    // Same config, same order; another seed, another order.
    Batcher bt2;
    batcher_create(&bt2, &tp, &cfg);
    Batch b2;
    batch_alloc(&b2, cap_B, cap_S, cap_T);
    batcher_seek(&bt, (BatchCursor){0, 0});
    int same = 1;
    for (int k = 0; k < 200; k++) {
        batcher_next(&bt, &b);
        batcher_next(&bt2, &b2);
        same &= hash_batch(&b) == hash_batch(&b2);
    }
    CHECK(same, "determinism: two batchers with one seed give the same 200 batches");
    batcher_free(&bt2);
    cfg.seed = 6;
    batcher_create(&bt2, &tp, &cfg);
    batcher_seek(&bt, (BatchCursor){0, 0});
    batcher_next(&bt, &b);
    batcher_next(&bt2, &b2);
    CHECK(hash_batch(&b) != hash_batch(&b2), "determinism: another seed, another first batch");
    batcher_free(&bt2);
    batch_free(&b2);

    free(count);
    batch_free(&b);
    batcher_free(&bt);
    token_pairs_free(&tp);
}

static void test_resume(void) {
    TokenPairs tp;
    make_pairs(&tp, 500, 30, 30, 7);
    BatchConfig cfg;
    batch_config_default(&cfg);
    cfg.max_tokens = 256;
    cfg.chunk_size = 100;
    Batcher a;
    batcher_create(&a, &tp, &cfg);
    int B, S, T;
    batcher_capacity(&a, &B, &S, &T);
    Batch b;
    batch_alloc(&b, B, S, T);
    int per_epoch = batcher_epoch_batches(&a);
    int total = per_epoch * 3 + 5;
    uint64_t *h = malloc(sizeof(uint64_t) * (size_t)total);
    BatchCursor *cursors = malloc(sizeof(BatchCursor) * (size_t)total);
    for (int s = 0; s < total; s++) {
        cursors[s] = a.cursor;  // what a checkpoint taken before step s saves
        batcher_next(&a, &b);
        h[s] = hash_batch(&b);
    }
    // Resume from a few checkpoints, including epoch boundaries.
    int resume_at[4] = {1, per_epoch, per_epoch + 7, 2 * per_epoch + 3};
    for (int r = 0; r < 4; r++) {
        Batcher c;
        batcher_create(&c, &tp, &cfg);
        int s0 = resume_at[r];
        int rc = batcher_seek(&c, cursors[s0]);
        int same = rc == 0;
        for (int s = s0; s < total && same; s++) {
            batcher_next(&c, &b);
            same &= hash_batch(&b) == h[s];
        }
        CHECK(same, "resume: from cursor (epoch %d, position %d) the batches equal the uninterrupted run's",
              cursors[s0].epoch, cursors[s0].position);
        batcher_free(&c);
    }
    int rc = batcher_seek(&a, (BatchCursor){1, per_epoch + 1000});
    CHECK(rc != 0 && strstr(attn_last_error(), "beyond"), "resume: a cursor beyond the epoch is an error: %s", attn_last_error());
    rc = batcher_seek(&a, (BatchCursor){-1, 0});
    CHECK(rc != 0, "resume: a negative cursor is an error");
    free(h);
    free(cursors);
    batch_free(&b);
    batcher_free(&a);
    token_pairs_free(&tp);
}

static void test_max_len(void) {
    TokenPairs tp;
    make_pairs(&tp, 400, 40, 40, 9);
    int too_long = 0;
    for (int i = 0; i < tp.n; i++) too_long += token_pairs_src_len(&tp, i) + 1 > 20 || token_pairs_tgt_len(&tp, i) + 1 > 20;
    BatchConfig cfg;
    batch_config_default(&cfg);
    cfg.max_tokens = 200;
    cfg.max_len = 20;
    Batcher bt;
    int rc = batcher_create(&bt, &tp, &cfg);
    CHECK(rc == 0 && bt.n_dropped == too_long && bt.n_kept == tp.n - too_long,
          "max_len drop: %d pairs over 20 dropped (dropped %d)", too_long, bt.n_dropped);
    batcher_free(&bt);

    cfg.truncate = 1;
    rc = batcher_create(&bt, &tp, &cfg);
    int B, S, T;
    batcher_capacity(&bt, &B, &S, &T);
    CHECK(rc == 0 && bt.n_dropped == 0 && S == 20 && T == 20, "max_len truncate: all kept, S and T capped at 20");
    Batch b;
    batch_alloc(&b, B, S, T);
    int *count = calloc((size_t)tp.n, sizeof(int));
    int over = 0, bad = 0, over_cap = 0;
    walk_epoch(&bt, &tp, &b, count, &over, &bad, &over_cap, NULL);
    CHECK(over == 0 && bad == 0 && over_cap == 0, "max_len truncate: truncated rows keep </s> and fit (%d bad)", bad);
    free(count);
    batch_free(&b);
    batcher_free(&bt);
    token_pairs_free(&tp);
}

static void test_eval_order_and_errors(void) {
    TokenPairs tp;
    make_pairs(&tp, 300, 25, 25, 3);
    BatchConfig cfg;
    batch_config_default(&cfg);
    cfg.max_tokens = 0;
    cfg.max_sentences = 16;
    cfg.shuffle = 0;
    Batcher bt;
    int rc = batcher_create(&bt, &tp, &cfg);
    int sorted = rc == 0, n_seen = 0, prev = -1;
    for (int k = 0; k < batcher_epoch_batches(&bt); k++) {
        const int *pairs;
        int B = batcher_batch_pairs(&bt, k, &pairs);
        sorted &= B <= 16;
        for (int r = 0; r < B; r++, n_seen++) {
            int ls = token_pairs_src_len(&tp, pairs[r]), lt = token_pairs_tgt_len(&tp, pairs[r]);
            int len = ls > lt ? ls : lt;
            sorted &= len >= prev;
            prev = len;
        }
    }
    CHECK(sorted && n_seen == 300, "eval order: sentence-capped batches sorted by the longer side, every pair once");
    const int *p0, *p1;
    batcher_batch_pairs(&bt, 0, &p0);
    int first = p0[0];
    batcher_seek(&bt, (BatchCursor){3, 0});
    batcher_batch_pairs(&bt, 0, &p1);
    CHECK(p1[0] == first, "eval order: the same order every epoch");
    batcher_free(&bt);

    batch_config_default(&cfg);
    cfg.max_tokens = 10;  // the longest pair needs 26
    rc = batcher_create(&bt, &tp, &cfg);
    CHECK(rc != 0 && strstr(attn_last_error(), "does not fit the token budget"), "errors: a pair over the budget: %s", attn_last_error());
    cfg.max_tokens = 0;
    rc = batcher_create(&bt, &tp, &cfg);
    CHECK(rc != 0 && strstr(attn_last_error(), "token budget"), "errors: no cap at all: %s", attn_last_error());
    cfg.max_tokens = 100;
    cfg.max_len = 1;
    rc = batcher_create(&bt, &tp, &cfg);
    CHECK(rc != 0, "errors: max_len 1 leaves no room for a token");
    TokenPairs empty;
    token_pairs_init(&empty);
    batch_config_default(&cfg);
    rc = batcher_create(&bt, &empty, &cfg);
    CHECK(rc != 0 && strstr(attn_last_error(), "no pairs"), "errors: no pairs: %s", attn_last_error());
    token_pairs_free(&empty);

    // token_pairs_clear keeps memory and the batcher reads the new lengths.
    token_pairs_clear(&tp);
    int x[2] = {5, 6};
    token_pairs_add(&tp, x, 2, x, 1);
    CHECK(tp.n == 1 && token_pairs_src_len(&tp, 0) == 2 && token_pairs_tgt_len(&tp, 0) == 1, "token pairs: clear then add");
    token_pairs_free(&tp);
}

int main(void) {
    test_layout();
    test_invariants();
    test_resume();
    test_max_len();
    test_eval_order_and_errors();
    TEST_EXIT();
}
