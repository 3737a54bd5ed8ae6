// Cached incremental decoding (eval mode): DecodeState, decode_begin, step
// and reorder. See model.h for the semantics and docs/model.md.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "kernels.h"
#include "model.h"
#include "model_internal.h"
#include "threads.h"

int decode_state_create(DecodeState *st, const Model *m, int max_B, int max_S, int max_T) {
    memset(st, 0, sizeof *st);
    const ModelConfig *c = &m->config;
    if (max_B < 1 || max_S < 1 || max_T < 1)
        return attn_error("decode: capacity must be positive (B %d, S %d, T %d)", max_B, max_S, max_T);
    if (max_T > c->max_len)
        return attn_error("decode: %d target positions exceed max_len %d", max_T, c->max_len);
    long C = c->d_model, Ld = c->n_dec_layers, B = max_B;
    long Tm = max_T > max_S ? max_T : max_S;
    size_t self_floats = (size_t)(Ld * B * max_T * C), cross_floats = (size_t)(Ld * B * max_S * C);
    st->max_B = max_B; st->max_S = max_S; st->max_T = max_T;
    st->self_kt = malloc_check(self_floats * sizeof(float));
    st->self_v = malloc_check(self_floats * sizeof(float));
    st->cross_kt = malloc_check(cross_floats * sizeof(float));
    st->cross_v = malloc_check(cross_floats * sizeof(float));
    st->mem_pad = calloc_check((size_t)(B * max_S), 1);
    st->logits = malloc_check((size_t)(B * c->tgt_vocab) * sizeof(float));
    st->x = malloc_check((size_t)(B * C) * sizeof(float));
    st->h = malloc_check((size_t)(B * C) * sizeof(float));
    st->qkv = malloc_check((size_t)(B * 3 * C) * sizeof(float));
    st->att = malloc_check((size_t)(B * C) * sizeof(float));
    st->sub = malloc_check((size_t)(B * C) * sizeof(float));
    st->ff = malloc_check((size_t)(B * c->d_ff) * sizeof(float));
    st->mean = malloc_check((size_t)B * sizeof(float));
    st->rstd = malloc_check((size_t)B * sizeof(float));
    // two halves: the cross-attention (read by decode.c), then the self-attention
    st->probs = malloc_check((size_t)(2 * B * c->n_heads * Tm) * sizeof(float));
    long tmp_row = max_T > 2 * max_S ? max_T : 2 * max_S;   // decode_move_rows' row; decode_begin's (S, 2C)
    st->reorder_tmp = malloc_check((size_t)(B * tmp_row * C) * sizeof(float));
    // the gathered padding, then decode_reorder's two change masks (B each)
    st->reorder_pad = malloc_check((size_t)(B * (max_S + 2)));
    st->mem_class = malloc_check((size_t)(2 * B) * sizeof(int));
    // Touch the caches now: their first-touch page faults (tens of MB on the
    // larger configs) would otherwise land in the first decoding steps, and
    // a translator creates its state once for every batch it decodes.
    memset(st->self_kt, 0, self_floats * sizeof(float));
    memset(st->self_v, 0, self_floats * sizeof(float));
    memset(st->cross_kt, 0, cross_floats * sizeof(float));
    memset(st->cross_v, 0, cross_floats * sizeof(float));
    return 0;
}

static void free_packed(DecodeState *st) {
    for (int i = 0; i < st->n_packed; i++) gemm_packed_b_free(&st->packed[i]);
    free(st->packed);
    st->packed = NULL;
    st->n_packed = 0;
}

void decode_state_free(DecodeState *st) {
    free_packed(st);
    free(st->self_kt); free(st->self_v); free(st->cross_kt); free(st->cross_v); free(st->mem_pad); free(st->logits);
    free(st->x); free(st->h); free(st->qkv); free(st->att); free(st->sub); free(st->ff);
    free(st->mean); free(st->rstd); free(st->probs); free(st->reorder_tmp); free(st->reorder_pad);
    free(st->mem_class);
    memset(st, 0, sizeof *st);
}

// Packs op(B) = W^T of every Linear a decoding step runs (K = in, N = out),
// in the order of decode_linear's `which` (0 self qkv .. 5 FFN out), into
// the memory of an earlier packing. Batches of B <= 4 rows multiply
// through gemm's unpacked kernels instead (and leave a packing alone).
static void pack_decoder_weights(const Model *m, DecodeState *st) {
    const ModelConfig *c = &m->config;
    int C = c->d_model, F = c->d_ff;
    if (!st->packed) {
        st->n_packed = c->n_dec_layers * DECODE_PACKED_PER_LAYER + 1;
        st->packed = calloc_check((size_t)st->n_packed, sizeof *st->packed);
    }
    for (int l = 0; l < c->n_dec_layers; l++) {
        LayerParams w = dec_layer(&m->params, c, l);
        GemmPackedB *pb = st->packed + l * DECODE_PACKED_PER_LAYER;
        gemm_pack_b(&pb[0], 1, C, 3 * C, w.self.in_w, C);
        gemm_pack_b(&pb[1], 1, C, C, w.self.out_w, C);
        gemm_pack_b(&pb[2], 1, C, C, w.cross.in_w, C);    // the query rows [0, C)
        gemm_pack_b(&pb[3], 1, C, C, w.cross.out_w, C);
        gemm_pack_b(&pb[4], 1, C, F, w.ff1_w, C);
        gemm_pack_b(&pb[5], 1, F, C, w.ff2_w, F);
    }
    gemm_pack_b(&st->packed[st->n_packed - 1], 1, C, c->tgt_vocab, m->params.gen_w, C);
    st->packed_path = gemm_get_path();
}

void decode_weights_changed(DecodeState *st) { st->packed_path = 0; }

// out (n, OC) = act_fn(inp (n, IC) @ weight^T + bias) for n rows of the
// batch (act_fn: LINEAR_*), through the packed weight `which` of layer l
// (l = -1: the generator) when there is one, else the unpacked product.
static void decode_linear(const DecodeState *st, int l, int which, float *out, const float *inp,
                          const float *weight, const float *bias, int n, int IC, int OC, int act_fn) {
    LinearEpilogue e;
    linear_epilogue_init(&e, bias, out, OC, act_fn, 0.0f, 0);
    if (!st->use_packed) { linear_fused_forward(out, inp, weight, n, IC, &e); return; }
    const GemmPackedB *pb = l < 0 ? &st->packed[st->n_packed - 1] : &st->packed[l * DECODE_PACKED_PER_LAYER + which];
    GemmEpilogue ep = linear_epilogue(&e);
    gemm_prepacked(0, n, 1.0f, inp, IC, pb, 0.0f, out, OC, &ep);
}

// The projected memory kv (B, S, 2C) of one layer into the caches: keys
// transposed, values as rows.
typedef struct {
    DecodeState *st;
    const float *kv;
    long C;
    int layer;
} SplitMemory;

static void split_memory_rows(void *arg, long b0, long b1) {
    const SplitMemory *a = arg;
    DecodeState *st = a->st;
    long C = a->C, S = st->S, off = (long)a->layer * st->max_B * st->max_S * C;
    for (long b = b0; b < b1; b++) {
        float *kt = st->cross_kt + off + b * C * st->max_S, *v = st->cross_v + off + b * st->max_S * C;
        for (long s = 0; s < S; s++) {
            const float *row = a->kv + (b * S + s) * 2 * C;
            for (long j = 0; j < C; j++) kt[j * st->max_S + s] = row[j];
            memcpy(v + s * C, row + C, (size_t)C * sizeof(float));
        }
    }
}

int decode_begin(const Model *m, DecodeState *st, const float *memory, const uint8_t *mem_pad, int B, int S) {
    if (B < 1 || B > st->max_B || S < 1 || S > st->max_S)
        return attn_error("decode: batch (B %d, S %d) does not fit the capacity (B %d, S %d)",
                          B, S, st->max_B, st->max_S);
    const ModelConfig *c = &m->config;
    long C = c->d_model;
    st->B = B;
    st->S = S;
    for (int b = 0; b < B; b++)
        memcpy(st->mem_pad + (long)b * st->max_S, mem_pad + (long)b * S, (size_t)S);
    // A row whose memory and padding repeat the row above (a beam's copies
    // of one sentence) joins its class; decode_reorder then moves no memory
    // between them.
    for (int b = 0; b < B; b++) {
        int same = b > 0 && !memcmp(mem_pad + (long)b * S, mem_pad + (long)(b - 1) * S, (size_t)S) &&
                   !memcmp(memory + (long)b * S * C, memory + (long)(b - 1) * S * C, sizeof(float) * S * C);
        st->mem_class[b] = same ? st->mem_class[b - 1] : b;
    }
    float *kv = st->reorder_tmp;   // (B, S, 2C) [k | v] of one layer
    SplitMemory split = {st, kv, C, 0};
    for (int l = 0; l < c->n_dec_layers; l++) {
        LayerParams w = dec_layer(&m->params, c, l);
        cross_attention_project_memory(kv, memory, &w.cross, B, S, (int)C);
        split.layer = l;
        threads_for(B, (long)B * S * C >= (1L << 16), split_memory_rows, &split);
    }
    // Packing the weights took 14% of decoding a test set in batches of 32
    // when every batch repacked them (G2P, d_model 256): they are packed
    // once and kept while the weights and the gemm path stay the same.
    st->use_packed = B > 4;
    if (st->use_packed && st->packed_path != gemm_get_path()) pack_decoder_weights(m, st);
    return 0;
}

// The rows [b0, b0 + n) of one step. Every buffer of DecodeState is indexed
// by row, so disjoint row ranges can run on different threads at once; the
// self-attention probabilities go to the second half of st->probs, so that
// the first half ends up holding only the cross-attention (which decode.c
// reads) whatever the other rows are doing.
typedef struct {
    const Model *m;
    DecodeState *st;
    int b0, n, pos;
} DecodeRows;

// One query row against Tk cached keys/values:
// out (C) = concat_h softmax(q_h K_h^T / sqrt(HS)) V_h, probs (NH, Tk).
// Keys are transposed (kt: channel j of position t at kt[j * ldk + t]), so a
// head's scores are vector products over positions, four channels per
// pass; values are rows (v + t * ldv), read whole and in order, all heads in
// one sweep: the caches come from DRAM at every step, and per-head slices of
// rows a page apart defeat the prefetchers.
// Value rows ahead that attend_row asks the memory for.
enum { DECODE_PREFETCH_ROWS = 4 };
// Channel rows of the transposed keys ahead that head_scores asks for (past
// the row's last head: the next row's keys, which follow in memory). The
// hardware prefetchers alone left the scores waiting on memory: small
// greedy decoding, 1 thread, +4% at 32 rows ahead (16: +2%, 64: no better).
enum { DECODE_KEY_PREFETCH_ROWS = 32 };

static void head_scores(float *restrict s, const float *restrict q, const float *restrict kt, long ldk,
                        int Tk, int HS, float scale) {
    for (int t = 0; t < Tk; t++) s[t] = 0.0f;
    int j = 0;
    for (; j + 4 <= HS; j += 4) {
        const float *k0 = kt + j * ldk, *k1 = k0 + ldk, *k2 = k1 + ldk, *k3 = k2 + ldk;
        for (long f = 0; f < 4 * ldk; f += 16) __builtin_prefetch(k0 + DECODE_KEY_PREFETCH_ROWS * ldk + f);
        float q0 = q[j], q1 = q[j + 1], q2 = q[j + 2], q3 = q[j + 3];
        #pragma omp simd
        for (int t = 0; t < Tk; t++) s[t] += (q0 * k0[t] + q1 * k1[t]) + (q2 * k2[t] + q3 * k3[t]);
    }
    for (; j < HS; j++) {
        const float *k0 = kt + j * ldk;
        float q0 = q[j];
        #pragma omp simd
        for (int t = 0; t < Tk; t++) s[t] += q0 * k0[t];
    }
    #pragma omp simd
    for (int t = 0; t < Tk; t++) s[t] *= scale;
}

static void attend_row(float *out, float *probs, const float *q, const float *kt, long ldk, const float *v,
                       long ldv, const uint8_t *key_pad, int Tk, int C, int NH) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    for (int h = 0; h < NH; h++) {
        float *ph = probs + (long)h * Tk;
        head_scores(ph, q + h * HS, kt + (long)h * HS * ldk, ldk, Tk, HS, scale);
        masked_softmax_forward(ph, ph, key_pad, 1, Tk, 0);
    }
    memset(out, 0, (size_t)C * sizeof(float));
    for (int t = 0; t < Tk; t++) {
        const float *vt = v + (long)t * ldv;
        if (t + DECODE_PREFETCH_ROWS < Tk)
            for (int j = 0; j < C; j += 16) __builtin_prefetch(vt + DECODE_PREFETCH_ROWS * ldv + j);
        for (int h = 0; h < NH; h++) {
            float p = probs[(long)h * Tk + t];
            float *oh = out + h * HS;
            const float *vh = vt + h * HS;
            #pragma omp simd
            for (int j = 0; j < HS; j++) oh[j] += p * vh[j];
        }
    }
}

// Self-attention of position pos over the cache, which gets its k, v first.
// inp (n, C) is the sublayer input; the output lands in st->sub.
static void rows_self_attention(const DecodeRows *r, const LayerParams *w, int l, const float *inp) {
    const ModelConfig *c = &r->m->config;
    DecodeState *st = r->st;
    int C = c->d_model, NH = c->n_heads, b0 = r->b0, n = r->n, pos = r->pos;
    long Tm = st->max_T > st->max_S ? st->max_T : st->max_S;
    long T = st->max_T, layer_off = (long)l * st->max_B * T * C + (long)b0 * T * C;
    float *qkv = st->qkv + (long)b0 * 3 * C;
    decode_linear(st, l, 0, qkv, inp, w->self.in_w, w->self.in_b, n, C, 3 * C, LINEAR_NO_ACT);
    for (int b = 0; b < n; b++) {
        float *kt = st->self_kt + layer_off + (long)b * C * T + pos;
        const float *k = qkv + (long)b * 3 * C + C;
        for (long j = 0; j < C; j++) kt[j * T] = k[j];
        memcpy(st->self_v + layer_off + ((long)b * T + pos) * C, k + C, (size_t)C * sizeof(float));
    }
    float *probs = st->probs + (long)st->max_B * NH * Tm + (long)b0 * NH * (pos + 1);
    for (int b = 0; b < n; b++)
        attend_row(st->att + (long)(b0 + b) * C, probs + (long)b * NH * (pos + 1), qkv + (long)b * 3 * C,
                   st->self_kt + layer_off + (long)b * C * T, T, st->self_v + layer_off + (long)b * T * C, C,
                   NULL, pos + 1, C, NH);
    decode_linear(st, l, 1, st->sub + (long)b0 * C, st->att + (long)b0 * C, w->self.out_w, w->self.out_b, n, C, C,
                  LINEAR_NO_ACT);
}

static void rows_cross_attention(const DecodeRows *r, const LayerParams *w, int l, const float *inp) {
    const ModelConfig *c = &r->m->config;
    DecodeState *st = r->st;
    int C = c->d_model, NH = c->n_heads, b0 = r->b0, n = r->n, S = st->S;
    long off = ((long)l * st->max_B + b0) * st->max_S * C;
    float *q = st->qkv + (long)b0 * 3 * C;  // (n, C) rows, ld C, inside this range's qkv rows
    decode_linear(st, l, 2, q, inp, w->cross.in_w, w->cross.in_b, n, C, C, LINEAR_NO_ACT);
    for (int b = 0; b < n; b++) {
        long row = off + (long)b * st->max_S * C;
        attend_row(st->att + (long)(b0 + b) * C, st->probs + (long)(b0 + b) * NH * S, q + (long)b * C,
                   st->cross_kt + row, st->max_S, st->cross_v + row, C, st->mem_pad + (long)(b0 + b) * st->max_S,
                   S, C, NH);
    }
    decode_linear(st, l, 3, st->sub + (long)b0 * C, st->att + (long)b0 * C, w->cross.out_w, w->cross.out_b, n, C,
                  C, LINEAR_NO_ACT);
}

static void rows_ffn(const DecodeRows *r, const LayerParams *w, int l, const float *inp) {
    const ModelConfig *c = &r->m->config;
    DecodeState *st = r->st;
    int C = c->d_model, F = c->d_ff, b0 = r->b0, n = r->n;
    float *ff = st->ff + (long)b0 * F;
    decode_linear(st, l, 4, ff, inp, w->ff1_w, w->ff1_b, n, C, F,
                  c->activation == ACT_GELU ? LINEAR_GELU : LINEAR_RELU);
    decode_linear(st, l, 5, st->sub + (long)b0 * C, ff, w->ff2_w, w->ff2_b, n, F, C, LINEAR_NO_ACT);
}

// One residual sublayer of the rows: pre-LN x += f(norm(x)); post-LN
// x = norm(x + f(x)) with the residual fused into the LayerNorm. `which`
// picks the sublayer: 0 self, 1 cross, 2 FFN.
static void rows_sublayer(const DecodeRows *r, const LayerParams *w, int l, int which,
                          const float *ln_w, const float *ln_b) {
    DecodeState *st = r->st;
    int C = r->m->config.d_model, b0 = r->b0, n = r->n;
    float *x = st->x + (long)b0 * C, *sub = st->sub + (long)b0 * C;
    float *mean = st->mean + b0, *rstd = st->rstd + b0;
    const float *inp = x;
    if (r->m->config.norm_first) {
        layernorm_forward(st->h + (long)b0 * C, mean, rstd, x, ln_w, ln_b, n, C);
        inp = st->h + (long)b0 * C;
    }
    if (which == 0) rows_self_attention(r, w, l, inp);
    else if (which == 1) rows_cross_attention(r, w, l, inp);
    else rows_ffn(r, w, l, inp);
    if (r->m->config.norm_first) residual_forward(x, x, sub, (long)n * C);
    else layernorm_residual_forward(x, mean, rstd, x, sub, ln_w, ln_b, n, C);
}

static void decode_rows(const DecodeRows *r, const int *tokens) {
    const Model *m = r->m;
    const ModelConfig *c = &m->config;
    DecodeState *st = r->st;
    int C = c->d_model, b0 = r->b0, n = r->n;
    if (n <= 0) return;
    float *x = st->x + (long)b0 * C, *h = st->h + (long)b0 * C;
    embedding_forward(x, tokens + b0, m->params.tgt_embed, m->pos_table, n, 1, C, r->pos);
    for (int l = 0; l < c->n_dec_layers; l++) {
        LayerParams w = dec_layer(&m->params, c, l);
        rows_sublayer(r, &w, l, 0, w.ln1_w, w.ln1_b);
        rows_sublayer(r, &w, l, 1, w.ln2_w, w.ln2_b);
        rows_sublayer(r, &w, l, 2, w.ln3_w, w.ln3_b);
    }
    layernorm_forward(h, st->mean + b0, st->rstd + b0, x, m->params.dec_norm_w, m->params.dec_norm_b, n, C);
    decode_linear(st, -1, 0, st->logits + (long)b0 * c->tgt_vocab, h, m->params.gen_w, m->params.gen_b, n, C,
                  c->tgt_vocab, LINEAR_NO_ACT);
}

// Rows per thread below which a step keeps the batch whole and lets each
// kernel split its own work: a product of a few rows is too thin to share.
enum { DECODE_MIN_ROWS_PER_THREAD = 8 };

typedef struct {
    const Model *m;
    DecodeState *st;
    const int *tokens;
    int pos;
} StepTask;

static void step_rows(void *arg, int tid, int team) {
    const StepTask *t = arg;
    long b0, b1;
    threads_range(t->st->B, tid, team, &b0, &b1);
    DecodeRows r = {t->m, t->st, (int)b0, (int)(b1 - b0), t->pos};
    decode_rows(&r, t->tokens);
}

int decode_step(const Model *m, DecodeState *st, const int *tokens, int pos) {
    const ModelConfig *c = &m->config;
    int B = st->B;
    if (B < 1) return attn_error("decode: decode_begin was not called");
    if (pos < 0 || pos >= st->max_T)
        return attn_error("decode: position %d outside the capacity of %d positions", pos, st->max_T);
    for (int b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= c->tgt_vocab)
            return attn_error("decode: token id %d outside the vocabulary (%d)", tokens[b], c->tgt_vocab);
    // The hypotheses are independent: with enough rows each thread runs the
    // whole decoder stack on its own share of them, so a step is one pool
    // task instead of one per kernel (each costs a hand-over and a wait,
    // about as much as the small products in it).
    int nt = threads_get();
    if (nt > B / DECODE_MIN_ROWS_PER_THREAD) nt = B / DECODE_MIN_ROWS_PER_THREAD;
    if (nt <= 1 || threads_in_task()) {
        DecodeRows r = {m, st, 0, B, pos};
        decode_rows(&r, tokens);
        return 0;
    }
    StepTask task = {m, st, tokens, pos};
    threads_pool_run(step_rows, &task, nt);
    return 0;
}

// Gathers rows where changed[i]: row block i of `data` (blocks `stride`
// floats apart) becomes old block from[i]. A block's used part is `lines`
// runs of `len` floats, `pitch` apart (a transposed key cache holds C runs
// of the used positions). Through tmp, since a block may be read after its
// own row was written; rows copy in parallel (the copies are memory bound,
// and two cores move more than one).
typedef struct {
    float *data, *tmp;
    const int *from;
    const uint8_t *changed;
    long stride, lines, len, pitch;
} Gather;

static void gather_to_tmp(void *arg, long i0, long i1) {
    const Gather *g = arg;
    long used = g->lines * g->len;
    for (long i = i0; i < i1; i++)
        if (g->changed[i])
            for (long r = 0; r < g->lines; r++)
                memcpy(g->tmp + i * used + r * g->len, g->data + g->from[i] * g->stride + r * g->pitch,
                       (size_t)g->len * sizeof(float));
}

static void gather_from_tmp(void *arg, long i0, long i1) {
    const Gather *g = arg;
    long used = g->lines * g->len;
    for (long i = i0; i < i1; i++)
        if (g->changed[i])
            for (long r = 0; r < g->lines; r++)
                memcpy(g->data + i * g->stride + r * g->pitch, g->tmp + i * used + r * g->len,
                       (size_t)g->len * sizeof(float));
}

static void gather_changed(float *data, float *tmp, const int *from, const uint8_t *changed, int B,
                           long stride, long lines, long len, long pitch) {
    Gather g = {data, tmp, from, changed, stride, lines, len, pitch};
    int parallel = (long)B * lines * len >= (1L << 16);
    threads_for(B, parallel, gather_to_tmp, &g);
    threads_for(B, parallel, gather_from_tmp, &g);
}

void decode_move_rows(DecodeState *st, const Model *m, const int *from, const uint8_t *self_changed,
                      const uint8_t *mem_changed, int B, int n_pos) {
    long C = m->config.d_model, T = st->max_T, S = st->max_S;
    int any_self = 0, any_mem = 0;
    for (int i = 0; i < B; i++) {
        any_self |= self_changed[i];
        any_mem |= mem_changed[i];
    }
    for (int l = 0; l < m->config.n_dec_layers && any_self; l++) {
        long off = (long)l * st->max_B * T * C;
        gather_changed(st->self_kt + off, st->reorder_tmp, from, self_changed, B, T * C, C, n_pos, T);
        gather_changed(st->self_v + off, st->reorder_tmp, from, self_changed, B, T * C, 1, n_pos * C, 0);
    }
    for (int l = 0; l < m->config.n_dec_layers && any_mem; l++) {
        long off = (long)l * st->max_B * S * C;
        gather_changed(st->cross_kt + off, st->reorder_tmp, from, mem_changed, B, S * C, C, st->S, S);
        gather_changed(st->cross_v + off, st->reorder_tmp, from, mem_changed, B, S * C, 1, st->S * C, 0);
    }
    if (any_mem) {
        for (int i = 0; i < B; i++)
            memcpy(st->reorder_pad + (long)i * S, st->mem_pad + (long)from[i] * S, (size_t)st->S);
        for (int i = 0; i < B; i++)
            if (mem_changed[i]) memcpy(st->mem_pad + (long)i * S, st->reorder_pad + (long)i * S, (size_t)st->S);
    }
    int *new_class = st->mem_class + st->max_B;
    for (int i = 0; i < B; i++) new_class[i] = st->mem_class[from[i]];
    memcpy(st->mem_class, new_class, (size_t)B * sizeof(int));
}

// Self-attention keys/values move only for rows with from[i] != i, the
// projected memory and its padding only where from[i] is of another memory
// class (never within a beam of one sentence).
void decode_reorder(DecodeState *st, const Model *m, const int *from, int n_pos) {
    int B = st->B;
    uint8_t *self_changed = st->reorder_pad + (long)st->max_B * st->max_S, *mem_changed = self_changed + B;
    for (int i = 0; i < B; i++) {
        self_changed[i] = from[i] != i;
        mem_changed[i] = st->mem_class[from[i]] != st->mem_class[i];
    }
    decode_move_rows(st, m, from, self_changed, mem_changed, B, n_pos);
}
