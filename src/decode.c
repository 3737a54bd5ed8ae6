// Decoding over the cached incremental decoder of model.h. See decode.h.
//
// A batch of sentences becomes "rows": K per sentence (beam search: the
// beam; sampling: independent samples; greedy: one). Every step feeds one
// token per row to decode_step, turns the logits into log-probabilities,
// and each sentence picks its next rows. Finished sentences drop out: rows
// are compacted so later steps compute live rows only, and the caches move
// only for the rows that change (see reorder_rows).
#include "decode.h"
#include "gemm.h"
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "checkpoint.h"
#include "cli.h"
#include "common.h"
#include "config.h"
#include "data.h"
#include "loss.h"
#include "threads.h"
#include "utf8.h"

// ----------------------------------------------------------------------------
// Options

void decode_options_default(DecodeOptions *opt) {
    memset(opt, 0, sizeof *opt);
    opt->beam_size = 1;
    opt->nbest = 1;
    opt->alpha = 0.0f;
    opt->length_penalty = LENGTH_PENALTY_GNMT;
    opt->max_len = 0;
    opt->max_len_a = 2.0f;
    opt->max_len_b = 10;
    opt->temperature = 1.0f;
    opt->top_k = 0;
    opt->top_p = 1.0f;
    opt->seed = 1;
    opt->batch_size = 32;
}

int decode_options_validate(const DecodeOptions *opt) {
    if (opt->beam_size < 1) return attn_error("beam size must be at least 1 (got %d)", opt->beam_size);
    if (opt->nbest < 1) return attn_error("nbest must be at least 1 (got %d)", opt->nbest);
    if (!opt->sample && opt->nbest > opt->beam_size)
        return attn_error("nbest %d exceeds the beam size %d: raise --beam", opt->nbest, opt->beam_size);
    if (opt->sample && opt->beam_size > 1) return attn_error("sampling and beam search exclude each other");
    if (!(opt->alpha >= 0)) return attn_error("length penalty alpha must be >= 0 (got %g)", opt->alpha);
    if (opt->max_len < 0 || opt->max_len_a < 0 || opt->max_len_b < 0)
        return attn_error("length limits must not be negative");
    if (!(opt->temperature > 0)) return attn_error("temperature must be > 0 (got %g)", opt->temperature);
    if (opt->top_k < 0) return attn_error("top-k must be >= 0 (got %d)", opt->top_k);
    if (!(opt->top_p > 0 && opt->top_p <= 1)) return attn_error("top-p must be in (0, 1] (got %g)", opt->top_p);
    if (opt->batch_size < 1) return attn_error("batch size must be at least 1 (got %d)", opt->batch_size);
    // The translator keeps 2K candidates for each of batch_size * K rows:
    // refuse sizes whose buffers would not fit rather than abort on malloc.
    long K = opt->sample ? opt->nbest : opt->beam_size;
    if ((long)opt->batch_size * K * 2 * K > DECODE_MAX_CANDIDATES)
        return attn_error("beam (or samples) %ld with batch size %d needs %ld candidates a step, over %ld: lower --batch-size",
                          K, opt->batch_size, (long)opt->batch_size * K * 2 * K, (long)DECODE_MAX_CANDIDATES);
    return 0;
}

double length_penalty(const DecodeOptions *opt, int len) {
    if (opt->alpha == 0) return 1.0;
    if (opt->length_penalty == LENGTH_PENALTY_POWER) return pow((double)len, opt->alpha);
    return pow((5.0 + len) / 6.0, opt->alpha);
}

// The command-line flags of the options (see attn translate --help).
int decode_parse_flag(int argc, char **argv, int *i, DecodeOptions *opt) {
    const char *f = argv[*i], *v;
    long n;
    double x;
    if (!strcmp(f, "--sample")) { opt->sample = 1; return 1; }
    static const char *const valued[] = {"--beam", "--alpha", "--length-penalty", "--nbest", "--max-len",
                                         "--max-len-a", "--max-len-b", "--temperature", "--top-k", "--top-p",
                                         "--seed", "--batch-size", "--matmul"};
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(f, valued[k]);
    if (!known) return 0;
    if (flag_value(argc, argv, i, &v) != 0) return -1;
    if (!strcmp(f, "--beam")) { if (parse_int_flag(f, v, 1, 1000, &n)) return -1; opt->beam_size = (int)n; }
    else if (!strcmp(f, "--alpha")) { if (parse_float_flag(f, v, 0, 100, &x)) return -1; opt->alpha = (float)x; }
    else if (!strcmp(f, "--length-penalty")) {
        if (!strcmp(v, "gnmt")) opt->length_penalty = LENGTH_PENALTY_GNMT;
        else if (!strcmp(v, "power")) opt->length_penalty = LENGTH_PENALTY_POWER;
        else return attn_error("bad value for --length-penalty: '%s' (use gnmt or power)", v);
    }
    else if (!strcmp(f, "--nbest")) { if (parse_int_flag(f, v, 1, 1000, &n)) return -1; opt->nbest = (int)n; }
    else if (!strcmp(f, "--max-len")) { if (parse_int_flag(f, v, 1, 1 << 20, &n)) return -1; opt->max_len = (int)n; }
    else if (!strcmp(f, "--max-len-a")) { if (parse_float_flag(f, v, 0, 1000, &x)) return -1; opt->max_len_a = (float)x; }
    else if (!strcmp(f, "--max-len-b")) { if (parse_int_flag(f, v, 0, 1 << 20, &n)) return -1; opt->max_len_b = (int)n; }
    else if (!strcmp(f, "--temperature")) { if (parse_float_flag(f, v, 1e-6, 1e6, &x)) return -1; opt->temperature = (float)x; }
    else if (!strcmp(f, "--top-k")) { if (parse_int_flag(f, v, 0, 1 << 30, &n)) return -1; opt->top_k = (int)n; }
    else if (!strcmp(f, "--top-p")) { if (parse_float_flag(f, v, 1e-9, 1, &x)) return -1; opt->top_p = (float)x; }
    else if (!strcmp(f, "--seed")) { if (parse_int_flag(f, v, 0, 0x7fffffffL, &n)) return -1; opt->seed = (uint64_t)n; }
    else if (!strcmp(f, "--batch-size")) { if (parse_int_flag(f, v, 1, 4096, &n)) return -1; opt->batch_size = (int)n; }
    else if (!strcmp(f, "--matmul")) {
        if (!strcmp(v, "fp32")) opt->matmul_bf16 = 0;
        else if (!strcmp(v, "bf16")) opt->matmul_bf16 = 1;
        else return attn_error("bad value for --matmul: '%s' (use fp32 or bf16)", v);
    }
    return 1;
}

int decode_select_matmul(const DecodeOptions *opt) {
    if (opt->matmul_bf16 && gemm_set_path(GEMM_PATH_AVX512_BF16) != 0)
        return attn_error("--matmul bf16 needs a CPU with AVX512-BF16; this one runs %s (use --matmul fp32)",
                          gemm_path_name(gemm_get_path()));
    return 0;
}

// ----------------------------------------------------------------------------
// Translator state

// Everything a row carries from step to step; two copies, swapped per step.
typedef struct {
    int *tokens;        // (max_rows, max_T) y_0 .. y_pos
    float *lp;          // (max_rows, max_T) their log-probabilities
    float *attn;        // (max_rows, max_T, max_S) cross-attention per step, or NULL
    double *score;      // (max_rows) sum of lp
    int *sent;          // (max_rows) batch-local sentence
    int *alive;         // (max_rows) 0 for beam filler rows (score -inf)
    Rng *rng;           // (max_rows) sampling streams
} Rows;

// One sentence of the batch being decoded.
typedef struct {
    int index;          // into the caller's arrays
    int src_len;        // source positions incl </s>
    int limit;          // largest |Y|
    int done;
    Hypothesis *fin;    // finished hypotheses so far
    int n_fin, cap_fin;
} Sentence;

// A token and its (tempered) log-probability, for sampling.
typedef struct {
    float logit;
    int id;
} TokenLogit;

// A beam candidate: row `row` extended by token `tok`.
typedef struct {
    double score;
    int row, tok;
} Candidate;

struct Translator {
    Model *m;
    DecodeOptions opt;
    DecodeState st;
    int K;              // rows per sentence
    int max_rows;       // batch_size * K
    int limit_T;        // largest |Y| allowed: the model's max_len, or opt.max_len
    int max_S, max_T;   // capacity of the state and the row buffers (grown per batch)
    int V, NH, C;
    int *src_buf;       // (batch_size, the model's max_S)
    float *mem_rows;    // (max_rows, max_S, C) memory repeated per row (K > 1)
    uint8_t *pad_rows;  // (max_rows, max_S)
    Rows cur, next;
    int *from;          // (max_rows)
    int *feed;          // (max_rows)
    float *logprobs;    // (max_rows, V)
    Candidate *cands;   // (max_rows * 2K) per-sentence candidate lists
    TokenLogit *sorted; // (V) sampling scratch
    uint8_t *self_changed, *mem_changed;  // (max_rows) reorder_rows scratch
    Sentence *sents;    // (batch_size)
};

static void rows_alloc(Rows *r, int max_rows, int max_T, int max_S, int attention) {
    r->tokens = malloc_check((size_t)max_rows * max_T * sizeof(int));
    r->lp = malloc_check((size_t)max_rows * max_T * sizeof(float));
    r->attn = attention ? malloc_check((size_t)max_rows * max_T * max_S * sizeof(float)) : NULL;
    r->score = malloc_check((size_t)max_rows * sizeof(double));
    r->sent = malloc_check((size_t)max_rows * sizeof(int));
    r->alive = malloc_check((size_t)max_rows * sizeof(int));
    r->rng = malloc_check((size_t)max_rows * sizeof(Rng));
}

static void rows_free(Rows *r) {
    free(r->tokens); free(r->lp); free(r->attn); free(r->score); free(r->sent); free(r->alive); free(r->rng);
    memset(r, 0, sizeof *r);
}

// Sizes the decoder state and the row buffers for sources of S positions and
// outputs of T; they grow (never shrink) so the first, longest batch of a
// length-sorted run sets the size, instead of the model's max_len.
static int ensure_capacity(Translator *tr, int S, int T) {
    if (S <= tr->max_S && T <= tr->max_T) return 0;
    if (S < tr->max_S) S = tr->max_S;
    if (T < tr->max_T) T = tr->max_T;
    decode_state_free(&tr->st);
    rows_free(&tr->cur);
    rows_free(&tr->next);
    free(tr->mem_rows);
    free(tr->pad_rows);
    tr->mem_rows = NULL;
    tr->pad_rows = NULL;
    tr->max_S = tr->max_T = 0;
    if (decode_state_create(&tr->st, tr->m, tr->max_rows, S, T) != 0) return -1;
    if (tr->K > 1) {
        tr->mem_rows = malloc_check((size_t)tr->max_rows * S * tr->C * sizeof(float));
        tr->pad_rows = malloc_check((size_t)tr->max_rows * S);
    }
    rows_alloc(&tr->cur, tr->max_rows, T, S, tr->opt.attention);
    rows_alloc(&tr->next, tr->max_rows, T, S, tr->opt.attention);
    tr->max_S = S;
    tr->max_T = T;
    return 0;
}

int translator_create(Translator **out, Model *m, const DecodeOptions *opt) {
    if (decode_options_validate(opt) != 0) return -1;
    const ModelConfig *c = &m->config;
    int K = opt->sample ? opt->nbest : opt->beam_size;
    int limit_T = c->max_len;
    if (opt->max_len > 0 && opt->max_len < limit_T) limit_T = opt->max_len;
    if (opt->batch_size > m->max_B)
        return attn_error("batch size %d exceeds the model's capacity of %d sentences", opt->batch_size, m->max_B);
    Translator *tr = calloc_check(1, sizeof *tr);
    tr->m = m;
    tr->opt = *opt;
    tr->K = K;
    tr->max_rows = opt->batch_size * K;
    tr->limit_T = limit_T;
    tr->V = c->tgt_vocab;
    tr->NH = c->n_heads;
    tr->C = c->d_model;
    tr->src_buf = malloc_check((size_t)opt->batch_size * m->max_S * sizeof(int));
    tr->from = malloc_check((size_t)tr->max_rows * sizeof(int));
    tr->feed = malloc_check((size_t)tr->max_rows * sizeof(int));
    tr->logprobs = malloc_check((size_t)tr->max_rows * tr->V * sizeof(float));
    tr->cands = malloc_check((size_t)tr->max_rows * 2 * K * sizeof(Candidate));
    tr->sorted = malloc_check((size_t)tr->V * sizeof(TokenLogit));
    tr->self_changed = malloc_check((size_t)tr->max_rows);
    tr->mem_changed = malloc_check((size_t)tr->max_rows);
    tr->sents = calloc_check((size_t)opt->batch_size, sizeof(Sentence));
    *out = tr;
    return 0;
}

void translator_weights_changed(Translator *tr) { decode_weights_changed(&tr->st); }

void translator_free(Translator *tr) {
    if (!tr) return;
    decode_state_free(&tr->st);
    free(tr->src_buf); free(tr->mem_rows); free(tr->pad_rows);
    rows_free(&tr->cur); rows_free(&tr->next);
    free(tr->from); free(tr->feed); free(tr->logprobs); free(tr->cands);
    free(tr->sorted); free(tr->self_changed); free(tr->mem_changed); free(tr->sents);
    free(tr);
}

static void hypothesis_free(Hypothesis *h) {
    free(h->tokens);
    free(h->token_logprobs);
    free(h->attention);
}

void decode_result_free(DecodeResult *r) {
    for (int i = 0; i < r->n; i++) hypothesis_free(&r->hyps[i]);
    free(r->hyps);
    memset(r, 0, sizeof *r);
}

// ----------------------------------------------------------------------------
// Per-step math

// lp (V) = log_softmax(logits), in double then rounded, so that greedy and
// beam search (and scoring) agree to the last bit. <pad> and <s> are never
// output (a <pad> fed back would be masked as padding by the full forward):
// they get -inf, without renormalizing, so scores stay the model's
// log-probabilities.
// The exponentials are summed as the loss sums them (sum_exp_shifted), so a
// beam's score and attn score's teacher-forced loss add the same values.
static void log_softmax_row(float *lp, const float *logits, int V) {
    float mx = logits[0];
    for (int v = 1; v < V; v++) if (logits[v] > mx) mx = logits[v];
    double log_z = log(sum_exp_shifted(NULL, logits, V, mx)) + mx;
    for (int v = 0; v < V; v++) lp[v] = (float)((double)logits[v] - log_z);
    lp[PAD_ID] = -INFINITY;
    lp[BOS_ID] = -INFINITY;
}

typedef struct {
    float *logprobs;
    const float *logits;
    int V;
} LogSoftmaxRows;

static void log_softmax_rows(void *arg, long r0, long r1) {
    const LogSoftmaxRows *a = arg;
    for (long r = r0; r < r1; r++) log_softmax_row(a->logprobs + r * a->V, a->logits + r * a->V, a->V);
}

static int argmax_row(const float *x, int V) {
    int best = PAD_ID + 1;
    for (int v = 1; v < V; v++) if (x[v] > x[best]) best = v;
    return best;
}

static int cmp_token_logit_desc(const void *pa, const void *pb) {
    const TokenLogit *a = pa, *b = pb;
    if (a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return a->id - b->id;
}

// Draws a token from lp (V): logits / temperature, then the top-k most
// likely, then the smallest most-likely prefix of those whose renormalized
// mass reaches top-p; one uniform draw over what is left.
static int sample_row(Translator *tr, const float *lp, Rng *rng) {
    const DecodeOptions *o = &tr->opt;
    int V = tr->V;
    TokenLogit *tl = tr->sorted;
    for (int v = 0; v < V; v++) tl[v] = (TokenLogit){lp[v] / o->temperature, v};
    qsort(tl, (size_t)V, sizeof(TokenLogit), cmp_token_logit_desc);
    int keep = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    double mx = tl[0].logit, total = 0;
    for (int i = 0; i < keep; i++) total += exp((double)tl[i].logit - mx);
    if (o->top_p < 1.0f) {
        double mass = 0;
        int n = 0;
        while (n < keep) {
            mass += exp((double)tl[n].logit - mx) / total;
            n++;
            if (mass >= o->top_p) break;
        }
        keep = n;
        total = 0;
        for (int i = 0; i < keep; i++) total += exp((double)tl[i].logit - mx);
    }
    double u = rng_uniform_double(rng) * total, acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += exp((double)tl[i].logit - mx);
        if (u < acc) return tl[i].id;
    }
    return tl[keep - 1].id;
}

// ----------------------------------------------------------------------------
// Rows and caches

// Copies row `src` of `a` (its history up to and including position pos)
// into row `dst` of `b`.
static void row_copy(Translator *tr, Rows *b, int dst, const Rows *a, int src, int pos) {
    long T = tr->max_T;
    memcpy(b->tokens + dst * T, a->tokens + src * T, (size_t)(pos + 1) * sizeof(int));
    memcpy(b->lp + dst * T, a->lp + src * T, (size_t)(pos + 1) * sizeof(float));
    if (a->attn) {
        long plane = T * tr->max_S;
        memcpy(b->attn + dst * plane, a->attn + src * plane, (size_t)(pos + 1) * tr->max_S * sizeof(float));
    }
    b->score[dst] = a->score[src];
    b->sent[dst] = a->sent[src];
    b->alive[dst] = a->alive[src];
    b->rng[dst] = a->rng[src];
}

// The caches of new row i become those of old row from[i] (i < new_B), with
// positions [0, n_pos). Self-attention keys/values move only for rows with
// from[i] != i; the projected memory and its padding only where the row's
// sentence changes (all rows of a sentence share one memory), so a beam step
// without finished sentences copies no memory at all.
static void reorder_rows(Translator *tr, const int *from, int old_B, int new_B, int n_pos) {
    const int *old_sent = tr->cur.sent;
    for (int i = 0; i < new_B; i++) {
        tr->self_changed[i] = from[i] != i;
        tr->mem_changed[i] = i >= old_B || old_sent[i] != old_sent[from[i]];
    }
    decode_move_rows(&tr->st, tr->m, from, tr->self_changed, tr->mem_changed, new_B, n_pos);
    tr->st.B = new_B;
}

// ----------------------------------------------------------------------------
// Finished hypotheses

// Sentence s gets a finished hypothesis: row's tokens [0, pos) and their
// log-probabilities, then </s> at pos with log-probability eos_lp.
static void finish_row(Translator *tr, Sentence *s, const Rows *r, int row, int pos, float eos_lp,
                       double score, int forced) {
    if (s->n_fin == s->cap_fin) {
        s->cap_fin = s->cap_fin ? 2 * s->cap_fin : 2 * tr->K;
        s->fin = realloc_check(s->fin, (size_t)s->cap_fin * sizeof(Hypothesis));
    }
    Hypothesis *h = &s->fin[s->n_fin++];
    long T = tr->max_T;
    h->len = pos;  // tokens[pos] is </s>
    h->tokens = malloc_check((size_t)(pos + 1) * sizeof(int));
    memcpy(h->tokens, r->tokens + row * T, (size_t)pos * sizeof(int));
    h->token_logprobs = malloc_check((size_t)(pos + 1) * sizeof(float));
    memcpy(h->token_logprobs, r->lp + row * T, (size_t)pos * sizeof(float));
    h->token_logprobs[pos] = eos_lp;
    h->score = score;
    h->norm_score = h->score / length_penalty(&tr->opt, pos + 1);
    h->hit_max_len = forced;
    h->attention = NULL;
    if (r->attn) {
        int S = s->src_len;
        h->attention = malloc_check((size_t)(pos + 1) * S * sizeof(float));
        for (int t = 0; t <= pos; t++)
            memcpy(h->attention + (long)t * S, r->attn + ((long)row * T + t) * tr->max_S, (size_t)S * sizeof(float));
    }
}

// Best first by normalized score; ties keep the order of finishing.
static int cmp_hyp(const void *pa, const void *pb) {
    const Hypothesis *a = pa, *b = pb;
    if (a->norm_score != b->norm_score) return a->norm_score > b->norm_score ? -1 : 1;
    return 0;
}

static void sort_hyps(Hypothesis *h, int n) {
    // insertion sort: stable, and n is at most a few beams
    for (int i = 1; i < n; i++) {
        Hypothesis x = h[i];
        int j = i - 1;
        while (j >= 0 && cmp_hyp(&h[j], &x) > 0) { h[j + 1] = h[j]; j--; }
        h[j + 1] = x;
    }
}

// ----------------------------------------------------------------------------
// Selection: each sentence turns its rows' log-probabilities into next rows.

// Greedy / sampling: every row goes on alone. Appends the next rows of
// sentence s to `next` (from tr->cur rows [r0, r1)) and returns their count.
static int select_independent(Translator *tr, Sentence *s, int r0, int r1, int pos, int n_next) {
    Rows *cur = &tr->cur, *next = &tr->next;
    long T = tr->max_T;
    int forced = pos == s->limit - 1;
    int added = 0;
    for (int r = r0; r < r1; r++) {
        const float *lp = tr->logprobs + (long)r * tr->V;
        int tok = forced ? EOS_ID : tr->opt.sample ? sample_row(tr, lp, &cur->rng[r]) : argmax_row(lp, tr->V);
        cur->tokens[r * T + pos] = tok;
        cur->lp[r * T + pos] = lp[tok];
        cur->score[r] += lp[tok];
        if (tok == EOS_ID) { finish_row(tr, s, cur, r, pos, lp[tok], cur->score[r], forced); continue; }
        int dst = n_next + added++;
        row_copy(tr, next, dst, cur, r, pos);
        tr->from[dst] = r;
    }
    if (added == 0) s->done = 1;
    return added;
}

static int cmp_candidate(const void *pa, const void *pb) {
    const Candidate *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->row != b->row) return a->row - b->row;
    return a->tok - b->tok;
}

// Keeps the n best of cand[0..*count) plus x, sorted (insertion; n is 2K).
static void push_candidate(Candidate *cand, int *count, int n, Candidate x) {
    if (*count == n && cmp_candidate(&x, &cand[n - 1]) >= 0) return;
    int j = *count < n ? (*count)++ : n - 1;
    while (j > 0 && cmp_candidate(&x, &cand[j - 1]) < 0) { cand[j] = cand[j - 1]; j--; }
    cand[j] = x;
}

// The best normalized score a live row could still reach: its log-probability
// only falls, and with alpha > 0 the penalty grows with length, so the bound
// is its score divided by the penalty at the length limit.
static double live_bound(const Translator *tr, double score, int limit) {
    return score / length_penalty(&tr->opt, limit);
}

// Beam search step of one sentence (rows [r0, r0 + K) of cur). fairseq-style:
// the 2K best extensions are ranked; </s> among the top K finishes a
// hypothesis, the best K others stay live. The sentence stops when K
// hypotheses have finished, none is live, or no live one can beat the nbest
// best finished; at the length limit every live row is forced to </s>.
static int select_beam(Translator *tr, Sentence *s, int r0, int pos, int n_next) {
    Rows *cur = &tr->cur, *next = &tr->next;
    int K = tr->K, V = tr->V, n_cand = 0;
    long T = tr->max_T;
    int forced = pos == s->limit - 1;
    Candidate *cand = tr->cands + (long)r0 * 2;
    for (int r = r0; r < r0 + K; r++) {
        if (!cur->alive[r]) continue;
        const float *lp = tr->logprobs + (long)r * V;
        if (forced) { push_candidate(cand, &n_cand, 2 * K, (Candidate){cur->score[r] + lp[EOS_ID], r, EOS_ID}); continue; }
        for (int v = 0; v < V; v++) {
            double score = cur->score[r] + lp[v];
            // most tokens lose to the current 2K-th candidate: skip them before building one
            if (n_cand == 2 * K && score < cand[n_cand - 1].score) continue;
            push_candidate(cand, &n_cand, 2 * K, (Candidate){score, r, v});
        }
    }
    int n_live = 0;
    for (int i = 0; i < n_cand; i++) {
        Candidate c = cand[i];
        if (c.score == -INFINITY) break;
        const float *lp = tr->logprobs + (long)c.row * V;
        if (c.tok == EOS_ID) {
            if (i < K || forced) finish_row(tr, s, cur, c.row, pos, lp[EOS_ID], c.score, forced);
            continue;
        }
        if (n_live == K) continue;
        int dst = n_next + n_live++;
        row_copy(tr, next, dst, cur, c.row, pos);  // history and this step's attention
        next->tokens[dst * T + pos] = c.tok;
        next->lp[dst * T + pos] = lp[c.tok];
        next->score[dst] = c.score;
        next->alive[dst] = 1;
        tr->from[dst] = c.row;
    }
    // stopping
    int stop = n_live == 0 || s->n_fin >= K;
    if (!stop && s->n_fin >= tr->opt.nbest) {
        sort_hyps(s->fin, s->n_fin);
        double worst_kept = s->fin[tr->opt.nbest - 1].norm_score, best_live = -INFINITY;
        for (int i = 0; i < n_live; i++) {
            double b = live_bound(tr, next->score[n_next + i], s->limit);
            if (b > best_live) best_live = b;
        }
        stop = best_live <= worst_kept;
    }
    if (stop) { s->done = 1; return 0; }
    // fill the beam to K rows (dead fillers) so sentence blocks keep their size
    for (int i = n_live; i < K; i++) {
        int dst = n_next + i;
        row_copy(tr, next, dst, next, n_next, pos);
        next->alive[dst] = 0;
        next->score[dst] = -INFINITY;
        tr->from[dst] = tr->from[n_next];
    }
    return K;
}

// ----------------------------------------------------------------------------
// One batch

static int sentence_limit(const Translator *tr, int src_tokens) {
    int limit = tr->limit_T;
    if (tr->opt.max_len_a > 0) {
        double rel = tr->opt.max_len_a * src_tokens + tr->opt.max_len_b;
        if (rel < limit) limit = rel < 1 ? 1 : (int)rel;
    }
    return limit;
}

// Encodes sentences idx[0..nb) and starts the rows (K per sentence).
static int begin_batch(Translator *tr, const int *const *src, const int *src_len, const int *idx, int nb,
                       long first_index) {
    Model *m = tr->m;
    int S = 0, T = 1;
    for (int b = 0; b < nb; b++) {
        if (src_len[idx[b]] + 1 > S) S = src_len[idx[b]] + 1;
        int limit = sentence_limit(tr, src_len[idx[b]]);
        if (limit > T) T = limit;
    }
    if (S > m->max_S)
        return attn_error("a source of %d tokens (with </s>) exceeds the model's capacity of %d positions", S, m->max_S);
    if (ensure_capacity(tr, S, T) != 0) return -1;
    for (int b = 0; b < nb; b++) {
        int n = src_len[idx[b]];
        int *row = tr->src_buf + (long)b * S;
        memcpy(row, src[idx[b]], (size_t)n * sizeof(int));
        row[n] = EOS_ID;
        for (int j = n + 1; j < S; j++) row[j] = PAD_ID;
        Sentence *s = &tr->sents[b];
        free(s->fin);
        *s = (Sentence){.index = idx[b], .src_len = n + 1, .limit = sentence_limit(tr, n)};
    }
    if (model_encode(m, tr->src_buf, nb, S) != 0) return -1;
    int K = tr->K, rows = nb * K;
    const float *mem = m->acts->memory;
    const uint8_t *pad = m->acts->src_pad;
    if (K > 1) {
        long plane = (long)S * tr->C;
        for (int r = 0; r < rows; r++) {
            memcpy(tr->mem_rows + r * plane, mem + (r / K) * plane, (size_t)plane * sizeof(float));
            memcpy(tr->pad_rows + (long)r * S, pad + (long)(r / K) * S, (size_t)S);
        }
        mem = tr->mem_rows;
        pad = tr->pad_rows;
    }
    if (decode_begin(m, &tr->st, mem, pad, rows, S) != 0) return -1;
    for (int r = 0; r < rows; r++) {
        int b = r / K, k = r % K;
        int beam_filler = !tr->opt.sample && k > 0;  // step 0: one live hypothesis per beam
        tr->cur.score[r] = beam_filler ? -INFINITY : 0.0;
        tr->cur.alive[r] = !beam_filler;
        tr->cur.sent[r] = b;
        // sampling stream of (seed, sentence, sample): independent of batching
        uint64_t stream = (uint64_t)(first_index + tr->sents[b].index) * 0x9E3779B97F4A7C15ULL + (uint64_t)k;
        rng_seed(&tr->cur.rng[r], tr->opt.seed ^ stream);
    }
    return 0;
}

// Averages the last decoder layer's cross-attention (left in st->probs by
// decode_step, (B, NH, S)) over heads into each row's history at pos.
static void record_attention(Translator *tr, int pos) {
    DecodeState *st = &tr->st;
    int S = st->S, NH = tr->NH;
    for (int r = 0; r < st->B; r++) {
        float *dst = tr->cur.attn + ((long)r * tr->max_T + pos) * tr->max_S;
        for (int j = 0; j < S; j++) {
            float sum = 0;
            for (int h = 0; h < NH; h++) sum += st->probs[((long)r * NH + h) * S + j];
            dst[j] = sum / NH;
        }
    }
}

static int decode_batch(Translator *tr, const int *const *src, const int *src_len, const int *idx, int nb,
                        long first_index) {
    if (begin_batch(tr, src, src_len, idx, nb, first_index) != 0) return -1;
    DecodeState *st = &tr->st;
    int V = tr->V;
    long T = tr->max_T;
    for (int pos = 0; st->B > 0; pos++) {
        for (int r = 0; r < st->B; r++) tr->feed[r] = pos == 0 ? BOS_ID : tr->cur.tokens[r * T + pos - 1];
        if (decode_step(tr->m, st, tr->feed, pos) != 0) return -1;
        LogSoftmaxRows lsr = {tr->logprobs, st->logits, V};
        threads_for(st->B, (long)st->B * V >= (1L << 16), log_softmax_rows, &lsr);
        if (tr->cur.attn) record_attention(tr, pos);
        int n_next = 0, old_B = st->B;
        for (int r0 = 0; r0 < old_B;) {
            int b = tr->cur.sent[r0], r1 = r0;
            while (r1 < old_B && tr->cur.sent[r1] == b) r1++;
            Sentence *s = &tr->sents[b];
            if (tr->opt.sample || (tr->K == 1 && !tr->opt.beam_search)) n_next += select_independent(tr, s, r0, r1, pos, n_next);
            else n_next += select_beam(tr, s, r0, pos, n_next);
            r0 = r1;
        }
        if (n_next == 0) break;
        reorder_rows(tr, tr->from, old_B, n_next, pos + 1);
        Rows swap = tr->cur; tr->cur = tr->next; tr->next = swap;
    }
    return 0;
}

// Moves sentence s's n-best into results.
static void collect(Translator *tr, Sentence *s, DecodeResult *res) {
    sort_hyps(s->fin, s->n_fin);
    int n = s->n_fin < tr->opt.nbest ? s->n_fin : tr->opt.nbest;
    res->hyps = malloc_check((size_t)(n > 0 ? n : 1) * sizeof(Hypothesis));
    res->n = n;
    res->src_len = s->src_len;
    memcpy(res->hyps, s->fin, (size_t)n * sizeof(Hypothesis));
    for (int i = n; i < s->n_fin; i++) hypothesis_free(&s->fin[i]);
    free(s->fin);
    s->fin = NULL;
    s->n_fin = s->cap_fin = 0;
}

typedef struct {
    int len, index;
} LenIndex;

static int cmp_len_desc(const void *pa, const void *pb) {
    const LenIndex *a = pa, *b = pb;
    if (a->len != b->len) return b->len - a->len;
    return a->index - b->index;
}

int translator_run(Translator *tr, const int *const *src, const int *src_len, int n, long first_index,
                   DecodeResult *results) {
    for (int i = 0; i < n; i++) memset(&results[i], 0, sizeof results[i]);
    LenIndex *by_len = malloc_check((size_t)(n > 0 ? n : 1) * sizeof(LenIndex));
    for (int i = 0; i < n; i++) by_len[i] = (LenIndex){src_len[i], i};
    qsort(by_len, (size_t)n, sizeof(LenIndex), cmp_len_desc);
    int *idx = malloc_check((size_t)tr->opt.batch_size * sizeof(int));
    int rc = 0;
    for (int start = 0; start < n && rc == 0; start += tr->opt.batch_size) {
        int nb = n - start < tr->opt.batch_size ? n - start : tr->opt.batch_size;
        for (int b = 0; b < nb; b++) idx[b] = by_len[start + b].index;
        rc = decode_batch(tr, src, src_len, idx, nb, first_index);
        for (int b = 0; b < nb; b++) {
            Sentence *s = &tr->sents[b];
            if (rc == 0) collect(tr, s, &results[s->index]);
            else {
                for (int k = 0; k < s->n_fin; k++) hypothesis_free(&s->fin[k]);
                free(s->fin);
                s->fin = NULL;
                s->n_fin = s->cap_fin = 0;
            }
        }
    }
    free(idx);
    free(by_len);
    if (rc != 0)
        for (int i = 0; i < n; i++) decode_result_free(&results[i]);
    return rc;
}

// ----------------------------------------------------------------------------
// Teacher-forced scoring

int score_pairs(Model *m, const int *const *src, const int *src_len, const int *const *tgt,
                const int *tgt_len, int n, double *nll, TokenStats *stats) {
    int Bmax = m->max_B;
    Batch b = {0};
    b.src = malloc_check((size_t)Bmax * m->max_S * sizeof(int));
    b.tgt_in = malloc_check((size_t)Bmax * m->max_T * sizeof(int));
    b.tgt_out = malloc_check((size_t)Bmax * m->max_T * sizeof(int));
    int rc = 0;
    for (int start = 0; start < n && rc == 0; start += Bmax) {
        int nb = n - start < Bmax ? n - start : Bmax, S = 1, T = 1;
        for (int i = start; i < start + nb; i++) {
            if (src_len[i] + 1 > m->max_S || tgt_len[i] + 1 > m->max_T) {
                rc = attn_error("pair %d (source %d, target %d tokens) exceeds the model's positions (%d, %d)",
                                i + 1, src_len[i], tgt_len[i], m->max_S - 1, m->max_T - 1);
                break;
            }
            if (src_len[i] + 1 > S) S = src_len[i] + 1;
            if (tgt_len[i] + 1 > T) T = tgt_len[i] + 1;
        }
        if (rc) break;
        b.B = nb; b.S = S; b.T = T;
        for (int k = 0; k < nb; k++) {
            int i = start + k, *s = b.src + (long)k * S, *ti = b.tgt_in + (long)k * T, *to = b.tgt_out + (long)k * T;
            for (int j = 0; j < S; j++) s[j] = j < src_len[i] ? src[i][j] : j == src_len[i] ? EOS_ID : PAD_ID;
            for (int j = 0; j < T; j++) {
                ti[j] = j == 0 ? BOS_ID : j <= tgt_len[i] ? tgt[i][j - 1] : PAD_ID;
                to[j] = j < tgt_len[i] ? tgt[i][j] : j == tgt_len[i] ? EOS_ID : PAD_ID;
            }
        }
        float loss = model_forward(m, &b, 0.0f, 0, NULL);
        if (isnan(loss)) {  // a batch the model refuses (error recorded), or NaN weights (not recorded)
            rc = model_check_batch(m, &b) != 0 ? -1 : attn_error("the model's loss is NaN (are its weights finite?)");
            break;
        }
        int V = m->config.tgt_vocab;
        for (int k = 0; k < nb; k++) {
            TokenStats row = {0};
            token_stats_add(&row, m->logits + (long)k * T * V, b.tgt_out + (long)k * T, T, V);
            nll[start + k] = row.nll_sum;
            if (stats) {
                stats->nll_sum += row.nll_sum;
                stats->tokens += row.tokens;
                stats->correct += row.correct;
            }
        }
    }
    free(b.src);
    free(b.tgt_in);
    free(b.tgt_out);
    return rc;
}

// ----------------------------------------------------------------------------
// Model files and text

int decode_model_open(DecodeModel *dm, const char *path, int batch, int max_len, int with_targets) {
    memset(dm, 0, sizeof *dm);
    CheckpointInfo info;
    if (checkpoint_read_info(path, &info) != 0) return -1;
    int positions = info.model_config.max_len, train_max_len = positions < 256 ? positions : 256;
    if (info.train_config) {
        // Its max_len and lowercase say how inputs are prepared: a config
        // that does not parse is an error, not a silent switch to defaults.
        TrainConfig tc;
        config_default(&tc);
        if (config_parse(&tc, info.train_config, "train_config") != 0) {
            checkpoint_info_free(&info);
            return attn_error("%s: %s", path, attn_last_error());
        }
        train_max_len = tc.max_len;
        dm->lowercase = tc.lowercase;
    }
    checkpoint_info_free(&info);
    dm->max_len = max_len > 0 ? max_len : train_max_len;
    if (dm->max_len > positions) dm->max_len = positions;
    if (dm->max_len < 1) dm->max_len = 1;
    return checkpoint_load_model(path, &dm->model, batch, dm->max_len, with_targets ? dm->max_len : 1,
                                 &dm->src_tok, &dm->tgt_tok);
}

void decode_model_close(DecodeModel *dm) {
    model_free(&dm->model);
    tokenizer_free(dm->src_tok);
    tokenizer_free(dm->tgt_tok);
    memset(dm, 0, sizeof *dm);
}

void decode_prepare_text(const DecodeModel *dm, char *text) {
    normalize_whitespace(text);
    if (dm->lowercase) utf8_lowercase(text);
}

int decode_encode_text(const DecodeModel *dm, const Tokenizer *t, const char *text, int max_tokens,
                       int **ids, int *cap, const char *where, const char *side) {
    size_t len = strlen(text);
    if (utf8_first_invalid(text, len) >= 0) return attn_error("%s: %s: invalid UTF-8", where, side);
    char *prepared = strdup_check(text);
    decode_prepare_text(dm, prepared);
    size_t need = strlen(prepared) + 1;  // one id per byte at most
    if ((size_t)*cap < need) {
        *cap = (int)need;
        *ids = realloc_check(*ids, need * sizeof(int));
    }
    int n = tokenizer_encode(t, prepared, *ids, *cap, 0.0f, NULL);
    free(prepared);
    if (n < 0) return attn_error("%s: %s: %s", where, side, attn_last_error());
    if (n > max_tokens) {
        fprintf(stderr, "attn: warning: %s: %s of %d tokens truncated to %d\n", where, side, n, max_tokens);
        n = max_tokens;
    }
    return n;
}

char *decode_ids_to_text(const Tokenizer *t, const int *ids, int n) {
    size_t cap = (size_t)n * tokenizer_max_piece_bytes(t) + 1;
    char *out = malloc_check(cap);
    if (tokenizer_decode(t, ids, n, out, cap) < 0) { free(out); return NULL; }
    return out;
}
