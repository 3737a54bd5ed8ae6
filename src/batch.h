// Batching: token-id pairs in, padded Batches (src/model.h) out.
//
// Sequence layout (docs/data.md): source = x1 .. xm </s>; decoder input =
// <s> y1 .. yn; target = y1 .. yn </s>; PAD_ID after the end. The pairs hold
// the bare tokens (no specials); the batcher adds them.
//
// Order: each epoch the kept pairs are shuffled from (seed, epoch), cut into
// chunks of `chunk_size` pairs, each chunk sorted by length (the longer side
// first, then source, then target; like OpenNMT's pooling) and cut into batches capped by a token budget and/or a
// sentence count; then the batch order is shuffled too. A cursor (epoch,
// position) names the next batch, so a checkpoint that saves it resumes into
// exactly the batches an uninterrupted run would have seen.
#ifndef ATTN_BATCH_H
#define ATTN_BATCH_H
#include <stdint.h>
#include "model.h"

// ----------------------------------------------------------------------------
// Token-id pairs, in two flat arrays (one allocation each, grown by doubling)

typedef struct {
    int *src_ids;     // all source tokens, concatenated
    long *src_off;    // (n+1) pair i's source is src_ids[src_off[i] .. src_off[i+1])
    int *tgt_ids;
    long *tgt_off;    // (n+1)
    int n, cap;       // pairs, pair capacity
    long src_cap, tgt_cap;
} TokenPairs;

void token_pairs_init(TokenPairs *tp);
void token_pairs_add(TokenPairs *tp, const int *src, int src_len, const int *tgt, int tgt_len);
// Forgets the pairs but keeps the memory (re-encoding each epoch allocates nothing).
void token_pairs_clear(TokenPairs *tp);
void token_pairs_free(TokenPairs *tp);
static inline int token_pairs_src_len(const TokenPairs *tp, int i) { return (int)(tp->src_off[i + 1] - tp->src_off[i]); }
static inline int token_pairs_tgt_len(const TokenPairs *tp, int i) { return (int)(tp->tgt_off[i + 1] - tp->tgt_off[i]); }

// ----------------------------------------------------------------------------
// Batcher

typedef struct {
    int max_tokens;     // cap on max(B*S, B*T) of a padded batch; 0 = none
    int max_sentences;  // cap on B; 0 = none (at least one cap must be set)
    int max_len;        // longest S (m+1) or T (n+1); 0 = none
    int truncate;       // pairs over max_len: 1 truncates (keeping </s>), 0 drops them
    int chunk_size;     // pairs per length-sorted chunk; 0 = 100 batches' worth
    int shuffle;        // 1: training order; 0: one fixed order, sorted by length,
                        //    same for every epoch (evaluation)
    uint64_t seed;
} BatchConfig;

typedef struct {
    int epoch;          // 0-based
    int position;       // batches of that epoch already handed out
} BatchCursor;

typedef struct {
    BatchConfig cfg;
    const TokenPairs *data;   // not owned; must outlive the batcher
    int *kept;                // (n_kept) pairs within max_len (or truncated)
    int n_kept, n_dropped;    // n_dropped: pairs over max_len when !truncate
    int *order;               // (n_kept) this epoch's pairs, batch after batch
    int *batch_start;         // (n_batches+1) batch k is order[batch_start[k] .. batch_start[k+1])
    int *batch_perm;          // (n_batches) batch order of the epoch
    int n_batches;
    int planned_epoch;        // epoch that order/batch_start/batch_perm describe
    BatchCursor cursor;       // the next batch
    int chunk_size;           // effective pairs per sorted chunk
    int min_len, max_S, max_T;  // over kept pairs: shortest max(S, T), longest S and T
    struct BatchItem *items;  // (n_kept) planning workspace
} Batcher;

void batch_config_default(BatchConfig *cfg);  // 4096 tokens, no sentence cap, chunk 0, shuffle

// Checks the config, keeps the pairs within max_len (or truncates them), and
// plans epoch 0 with the cursor at (0, 0). Fails when a single pair cannot fit
// the token budget, or when no pair is left.
//
// The pairs are read again whenever an epoch is planned, so a trainer may
// re-encode them before each epoch (BPE-dropout): keep their number and order,
// and set max_len, because batcher_capacity's S and T describe the data as it
// was at creation (pairs that grew are truncated to max_len; B stays bounded
// since dropout only lengthens sequences).
int batcher_create(Batcher *bt, const TokenPairs *data, const BatchConfig *cfg);
void batcher_free(Batcher *bt);

// Batch shape bounds over every epoch: allocate the model and the Batch once
// for these. B <= min(max_sentences, n_kept, max_tokens / shortest padded
// length), S and T <= the longest kept source/target + 1.
void batcher_capacity(const Batcher *bt, int *max_B, int *max_S, int *max_T);
// Allocates a Batch's arrays for (max_B, max_S, max_T); batch_free frees them.
void batch_alloc(Batch *b, int max_B, int max_S, int max_T);
void batch_free(Batch *b);

// Fills `out` with the batch at the cursor and advances it; after the last
// batch of an epoch the next call plans and starts the next epoch (so an epoch
// has ended when cursor.position == batcher_epoch_batches()). `out` must have
// the capacity of batcher_capacity. Allocates nothing.
void batcher_next(Batcher *bt, Batch *out);
// Moves the cursor (e.g. from a checkpoint) and plans its epoch. Fails when
// position is beyond the epoch's batch count.
int batcher_seek(Batcher *bt, BatchCursor cursor);
// Batches per epoch of the planned epoch (it can differ from epoch to epoch
// by a few when shuffling).
int batcher_epoch_batches(const Batcher *bt);

// Random access into the planned epoch, for evaluation: fills batch k
// (0 <= k < n_batches, in the epoch's order) without moving the cursor, and
// says which pairs it holds (row b of the batch is pair pairs[b]).
void batcher_fill(Batcher *bt, int k, Batch *out);
int batcher_batch_pairs(const Batcher *bt, int k, const int **pairs);

#endif
