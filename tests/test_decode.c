// Decoding on small random models: cached steps against the full forward,
// greedy against an uncached greedy, beam 1 against greedy, beam scores
// against teacher-forced scoring, beam against greedy, batched against
// one-by-one, sampling, length limits, n-best, attention weights.
#include "test.h"
#include "decode.h"
#include "checkpoint.h"
#include "common.h"
#include "threads.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { V = 24, MAX_LEN = 40, N_SENT = 12 };

// A random model whose outputs are peaked enough to end sentences at
// different lengths: generator scaled up, </s> slightly favoured.
static void make_model(Model *m, int norm_first, int max_B, uint64_t seed) {
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.src_vocab = V;
    cfg.tgt_vocab = V;
    cfg.d_model = 32;
    cfg.n_heads = 4;
    cfg.d_ff = 64;
    cfg.n_enc_layers = 2;
    cfg.n_dec_layers = 2;
    cfg.max_len = MAX_LEN;
    cfg.norm_first = norm_first;
    cfg.dropout_emb = cfg.dropout_residual = cfg.dropout_attn = cfg.dropout_ffn = 0;
    if (model_create(m, &cfg, max_B, MAX_LEN, MAX_LEN) != 0) { printf("FAIL model_create: %s\n", attn_last_error()); exit(1); }
    model_init_weights(m, seed);
    for (long i = 0; i < (long)V * cfg.d_model; i++) m->params.gen_w[i] *= 6.0f;
    m->params.gen_b[EOS_ID] += 1.5f;
}

// Random sources of 1..12 tokens (ids 4..V-1).
static int src_store[N_SENT][16], src_len[N_SENT];
static const int *src_ptr[N_SENT];
static void make_sources(uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < N_SENT; i++) {
        src_len[i] = 1 + (int)rng_below(&rng, 12);
        for (int j = 0; j < src_len[i]; j++) src_store[i][j] = 4 + (int)rng_below(&rng, V - 4);
        src_ptr[i] = src_store[i];
    }
}

static int run(Model *m, const DecodeOptions *opt, const int *const *src, const int *len, int n, DecodeResult *res) {
    Translator *tr;
    if (translator_create(&tr, m, opt) != 0) { printf("FAIL translator_create: %s\n", attn_last_error()); return -1; }
    int rc = translator_run(tr, src, len, n, 0, res);
    if (rc) printf("FAIL translator_run: %s\n", attn_last_error());
    translator_free(tr);
    return rc;
}

static void free_results(DecodeResult *res, int n) {
    for (int i = 0; i < n; i++) decode_result_free(&res[i]);
}

static int same_tokens(const Hypothesis *a, const Hypothesis *b) {
    return a->len == b->len && !memcmp(a->tokens, b->tokens, (size_t)a->len * sizeof(int));
}

// ---------------------------------------------------------------------------

// Incremental decode_step logits equal model_forward's on the same prefix.
static void test_cached_equals_full(int norm_first) {
    Model m;
    make_model(&m, norm_first, 4, 11);
    int B = 3, S = 9, T = 14;
    Batch b = {.B = B, .S = S, .T = T};
    b.src = malloc(sizeof(int) * B * S);
    b.tgt_in = malloc(sizeof(int) * B * T);
    Rng rng;
    rng_seed(&rng, 5);
    int slen[] = {9, 5, 2};  // padded sources
    for (int i = 0; i < B; i++)
        for (int j = 0; j < S; j++) b.src[i * S + j] = j < slen[i] - 1 ? 4 + (int)rng_below(&rng, V - 4) : j == slen[i] - 1 ? EOS_ID : PAD_ID;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < T; j++) b.tgt_in[i * T + j] = j == 0 ? BOS_ID : 4 + (int)rng_below(&rng, V - 4);
    model_forward(&m, &b, 0.0f, 0, NULL);
    float *full = malloc(sizeof(float) * B * T * V);
    memcpy(full, m.logits, sizeof(float) * B * T * V);

    model_encode(&m, b.src, B, S);
    DecodeState st;
    decode_state_create(&st, &m, B, S, T);
    decode_begin(&m, &st, m.acts->memory, m.acts->src_pad, B, S);
    double worst = 0;
    int tok[3];
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < B; i++) tok[i] = b.tgt_in[i * T + t];
        decode_step(&m, &st, tok, t);
        for (int i = 0; i < B; i++) {
            double mx;
            rel_diff(st.logits + i * V, full + ((long)i * T + t) * V, V, &mx);
            if (mx > worst) worst = mx;
        }
    }
    CHECK(worst < 1e-5, "cached decoding logits equal the full forward (%s), max abs diff %.2e",
          norm_first ? "pre-LN" : "post-LN", worst);
    decode_state_free(&st);
    free(full); free(b.src); free(b.tgt_in);
    model_free(&m);
}

// A batch large enough that decode_step splits the rows over two threads
// (each running the whole decoder stack on its share): the logits and the
// cross-attention must be bit-identical to one thread's, and equal the full
// forward. Rows 0..B/2 and B/2..B cross the split with different sources.
static void test_row_split(int norm_first) {
    enum { RB = 40, RS = 9, RT = 10, RV = 100 };  // RV: generator parts of 32-column panels
    Model m;
    ModelConfig cfg;
    model_config_default(&cfg);
    cfg.src_vocab = V;
    cfg.tgt_vocab = RV;
    cfg.d_model = 32;
    cfg.n_heads = 4;
    cfg.d_ff = 64;
    cfg.n_enc_layers = cfg.n_dec_layers = 2;
    cfg.max_len = MAX_LEN;
    cfg.norm_first = norm_first;
    cfg.dropout_emb = cfg.dropout_residual = cfg.dropout_attn = cfg.dropout_ffn = 0;
    if (model_create(&m, &cfg, RB, MAX_LEN, MAX_LEN) != 0) { printf("FAIL model_create: %s\n", attn_last_error()); exit(1); }
    model_init_weights(&m, 23);
    Batch b = {.B = RB, .S = RS, .T = RT};
    b.src = malloc(sizeof(int) * RB * RS);
    b.tgt_in = malloc(sizeof(int) * RB * RT);
    Rng rng;
    rng_seed(&rng, 7);
    for (int i = 0; i < RB; i++) {
        int slen = 1 + (int)rng_below(&rng, RS);
        for (int j = 0; j < RS; j++)
            b.src[i * RS + j] = j < slen - 1 ? 4 + (int)rng_below(&rng, V - 4) : j == slen - 1 ? EOS_ID : PAD_ID;
        for (int j = 0; j < RT; j++) b.tgt_in[i * RT + j] = j == 0 ? BOS_ID : 4 + (int)rng_below(&rng, RV - 4);
    }
    model_forward(&m, &b, 0.0f, 0, NULL);
    float *full = malloc(sizeof(float) * RB * RT * RV);
    memcpy(full, m.logits, sizeof(float) * RB * RT * RV);
    model_encode(&m, b.src, RB, RS);
    int saved_threads = threads_get();
    DecodeState st[2];
    for (int k = 0; k < 2; k++) {  // packed generator in 1 part, then in 2 (one per thread)
        threads_set(k + 1);
        decode_state_create(&st[k], &m, RB, RS, RT);
        decode_begin(&m, &st[k], m.acts->memory, m.acts->src_pad, RB, RS);
    }
    double worst = 0;
    int same = 1, tok[RB];
    for (int t = 0; t < RT; t++) {
        for (int i = 0; i < RB; i++) tok[i] = b.tgt_in[i * RT + t];
        threads_set(1);
        decode_step(&m, &st[0], tok, t);
        threads_set(2);
        decode_step(&m, &st[1], tok, t);
        same &= !memcmp(st[0].logits, st[1].logits, sizeof(float) * RB * RV);
        same &= !memcmp(st[0].probs, st[1].probs, sizeof(float) * RB * m.config.n_heads * RS);
        for (int i = 0; i < RB; i++) {
            double mx;
            rel_diff(st[1].logits + i * RV, full + ((long)i * RT + t) * RV, RV, &mx);
            if (mx > worst) worst = mx;
        }
    }
    threads_set(saved_threads);
    CHECK(same, "decoding %d rows on 2 threads equals 1 thread bit for bit (%s)", RB,
          norm_first ? "pre-LN" : "post-LN");
    CHECK(worst < 1e-5, "row-split cached logits equal the full forward (%s), max abs diff %.2e",
          norm_first ? "pre-LN" : "post-LN", worst);
    for (int k = 0; k < 2; k++) decode_state_free(&st[k]);
    free(full); free(b.src); free(b.tgt_in);
    model_free(&m);
}

// decode_reorder on a beam-like state (rows 0-3 share sentence A's memory,
// rows 4-7 sentence B's), with moves inside a sentence (no memory copied)
// and across (memory copied): the next step must equal a fresh state fed
// each row's new history over its new memory.
static void test_reorder_classes(void) {
    enum { RB = 8, RS = 6, STEPS = 3 };
    Model m;
    make_model(&m, 0, RB, 31);
    int src[2 * RS];
    Rng rng;
    rng_seed(&rng, 9);
    for (int j = 0; j < 2 * RS; j++) src[j] = j % RS == RS - 1 ? EOS_ID : 4 + (int)rng_below(&rng, V - 4);
    model_encode(&m, src, 2, RS);
    long C = m.config.d_model;
    float *mem = malloc(sizeof(float) * RB * RS * C), *mem2 = malloc(sizeof(float) * RB * RS * C);
    uint8_t pad[RB * RS] = {0};
    for (int i = 0; i < RB; i++) memcpy(mem + i * RS * C, m.acts->memory + (i / 4) * RS * C, sizeof(float) * RS * C);
    int hist[RB][STEPS + 1], from[RB] = {1, 1, 0, 2, 6, 2, 4, 7}, tok[RB];
    for (int i = 0; i < RB; i++)
        for (int t = 0; t <= STEPS; t++) hist[i][t] = t == 0 ? BOS_ID : 4 + (int)rng_below(&rng, V - 4);
    DecodeState st, ref;
    decode_state_create(&st, &m, RB, RS, STEPS + 1);
    decode_state_create(&ref, &m, RB, RS, STEPS + 1);
    decode_begin(&m, &st, mem, pad, RB, RS);
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < RB; i++) tok[i] = hist[i][t];
        decode_step(&m, &st, tok, t);
    }
    decode_reorder(&st, &m, from, STEPS);
    for (int i = 0; i < RB; i++) tok[i] = hist[i][STEPS];
    decode_step(&m, &st, tok, STEPS);
    // the reference: row i has row from[i]'s memory and first STEPS tokens
    for (int i = 0; i < RB; i++) memcpy(mem2 + i * RS * C, mem + from[i] * RS * C, sizeof(float) * RS * C);
    decode_begin(&m, &ref, mem2, pad, RB, RS);
    for (int t = 0; t <= STEPS; t++) {
        for (int i = 0; i < RB; i++) tok[i] = t < STEPS ? hist[from[i]][t] : hist[i][t];
        decode_step(&m, &ref, tok, t);
    }
    double worst = 0;
    for (long j = 0; j < (long)RB * V; j++) {
        double d = fabs(st.logits[j] - ref.logits[j]);
        if (d > worst) worst = d;
    }
    CHECK(worst < 1e-6, "decode_reorder within and across sentences continues each history (max diff %.2e)", worst);
    decode_state_free(&st);
    decode_state_free(&ref);
    free(mem); free(mem2);
    model_free(&m);
}

// Greedy without any cache: a full forward over the whole prefix per step.
static void uncached_greedy(Model *m, const int *src, int n, int max_out, int *out, int *out_len, double *score) {
    int S = n + 1, T = 0;
    Batch b = {.B = 1, .S = S};
    b.src = malloc(sizeof(int) * S);
    b.tgt_in = malloc(sizeof(int) * MAX_LEN);
    memcpy(b.src, src, sizeof(int) * n);
    b.src[n] = EOS_ID;
    b.tgt_in[0] = BOS_ID;
    *score = 0;
    for (T = 1; T <= max_out; T++) {
        b.T = T;
        model_forward(m, &b, 0.0f, 0, NULL);
        const float *row = m->logits + (long)(T - 1) * V;
        int best = UNK_ID;  // <pad> and <s> are never output
        for (int v = UNK_ID + 1; v < V; v++) if (v != BOS_ID && row[v] > row[best]) best = v;
        if (T == max_out) best = EOS_ID;
        double mx = row[0], sum = 0;
        for (int v = 1; v < V; v++) if (row[v] > mx) mx = row[v];
        for (int v = 0; v < V; v++) sum += exp(row[v] - mx);
        *score += row[best] - mx - log(sum);
        if (best == EOS_ID) break;
        out[T - 1] = best;
        b.tgt_in[T] = best;
    }
    *out_len = T - 1;
    free(b.src); free(b.tgt_in);
}

static void test_greedy_and_beam(void) {
    Model m;
    make_model(&m, 0, 8, 3);
    make_sources(17);
    DecodeOptions opt;
    decode_options_default(&opt);
    opt.batch_size = 8;
    DecodeResult greedy[N_SENT], beam1[N_SENT], beam[N_SENT], single[N_SENT];
    run(&m, &opt, src_ptr, src_len, N_SENT, greedy);

    // cached greedy == uncached greedy
    int agree = 1, lens_differ = 0;
    double worst = 0;
    for (int i = 0; i < N_SENT; i++) {
        int out[MAX_LEN], n;
        double score;
        int limit = (int)(opt.max_len_a * src_len[i]) + opt.max_len_b;
        if (limit > MAX_LEN) limit = MAX_LEN;
        uncached_greedy(&m, src_ptr[i], src_len[i], limit, out, &n, &score);
        Hypothesis *h = &greedy[i].hyps[0];
        agree &= n == h->len && !memcmp(out, h->tokens, sizeof(int) * n);
        if (fabs(score - h->score) > worst) worst = fabs(score - h->score);
        lens_differ |= h->len != greedy[0].hyps[0].len;
    }
    CHECK(agree, "cached greedy decoding gives the tokens of uncached greedy");
    CHECK(worst < 1e-4, "cached greedy scores equal uncached ones (max diff %.2e)", worst);
    CHECK(lens_differ, "the test model ends sentences at different lengths");

    // beam search code with beam 1 == greedy, exactly
    opt.beam_search = 1;
    run(&m, &opt, src_ptr, src_len, N_SENT, beam1);
    int exact = 1;
    for (int i = 0; i < N_SENT; i++)
        exact &= same_tokens(&beam1[i].hyps[0], &greedy[i].hyps[0]) && beam1[i].hyps[0].score == greedy[i].hyps[0].score;
    CHECK(exact, "beam search with beam 1 equals greedy exactly (tokens and scores)");

    // beam 4 without length normalization: scores vs greedy and vs teacher forcing
    opt.beam_search = 0;
    opt.beam_size = 4;
    opt.nbest = 4;
    run(&m, &opt, src_ptr, src_len, N_SENT, beam);
    double beam_mean = 0, greedy_mean = 0;
    int better = 0, worse = 0;
    for (int i = 0; i < N_SENT; i++) {
        double b = beam[i].hyps[0].score, g = greedy[i].hyps[0].score;
        beam_mean += b / N_SENT;
        greedy_mean += g / N_SENT;
        better += b > g + 1e-6;
        worse += b < g - 1e-6;
    }
    CHECK(beam_mean >= greedy_mean, "beam 4 mean log-prob %.4f >= greedy %.4f", beam_mean, greedy_mean);
    CHECK(better >= worse && better > 0, "beam 4 better than greedy on %d sentences, worse on %d", better, worse);

    // every n-best hypothesis: sorted, distinct, score == sum of token log-probs == teacher-forced NLL
    int sorted = 1, distinct = 1, n_hyps = 0, sums = 1;
    const int *hsrc[N_SENT * 4], *htgt[N_SENT * 4];
    int hsrc_len[N_SENT * 4], htgt_len[N_SENT * 4];
    double hscore[N_SENT * 4], nll[N_SENT * 4];
    for (int i = 0; i < N_SENT; i++) {
        for (int k = 0; k < beam[i].n; k++) {
            Hypothesis *h = &beam[i].hyps[k];
            if (k > 0) sorted &= h->norm_score <= beam[i].hyps[k - 1].norm_score;
            for (int j = 0; j < k; j++) distinct &= !same_tokens(h, &beam[i].hyps[j]);
            double sum = 0;
            for (int t = 0; t <= h->len; t++) sum += h->token_logprobs[t];
            sums &= fabs(sum - h->score) < 1e-9 * (1 + fabs(sum));
            hsrc[n_hyps] = src_ptr[i]; hsrc_len[n_hyps] = src_len[i];
            htgt[n_hyps] = h->tokens; htgt_len[n_hyps] = h->len;
            hscore[n_hyps++] = h->score;
        }
    }
    CHECK(sorted && distinct, "n-best lists are sorted and distinct");
    CHECK(sums, "a hypothesis score is the sum of its token log-probabilities");
    TokenStats ts = {0};
    CHECK(score_pairs(&m, hsrc, hsrc_len, htgt, htgt_len, n_hyps, nll, &ts) == 0, "score_pairs runs");
    double worst_rel = 0;
    for (int i = 0; i < n_hyps; i++) {
        double rel = fabs(-nll[i] - hscore[i]) / (1 + fabs(nll[i]));
        if (rel > worst_rel) worst_rel = rel;
    }
    CHECK(worst_rel < 1e-5, "beam scores equal teacher-forced log-likelihoods (%d hypotheses, max rel diff %.2e)",
          n_hyps, worst_rel);
    CHECK(ts.tokens > 0 && fabs(ts.nll_sum + 0) > 0, "score_pairs accumulates token statistics");

    // batched == one by one (beam 4)
    opt.batch_size = 1;
    run(&m, &opt, src_ptr, src_len, N_SENT, single);
    int same = 1;
    double wd = 0;
    for (int i = 0; i < N_SENT; i++) {
        same &= single[i].n == beam[i].n;
        for (int k = 0; k < single[i].n && k < beam[i].n; k++) {
            same &= same_tokens(&single[i].hyps[k], &beam[i].hyps[k]);
            double d = fabs(single[i].hyps[k].score - beam[i].hyps[k].score);
            if (d > wd) wd = d;
        }
    }
    CHECK(same && wd < 1e-4, "beam 4 batched (8) equals one by one (max score diff %.2e)", wd);
    free_results(single, N_SENT);
    opt.beam_size = 1;
    opt.nbest = 1;
    run(&m, &opt, src_ptr, src_len, N_SENT, single);
    same = 1;
    for (int i = 0; i < N_SENT; i++) same &= same_tokens(&single[i].hyps[0], &greedy[i].hyps[0]);
    CHECK(same, "greedy batched (8) equals one by one");
    free_results(single, N_SENT);

    // length normalization changes the ranking toward longer hypotheses
    opt.beam_size = 4;
    opt.nbest = 1;
    opt.batch_size = 8;
    opt.alpha = 1.0f;
    DecodeResult norm[N_SENT];
    run(&m, &opt, src_ptr, src_len, N_SENT, norm);
    double mean_len_raw = 0, mean_len_norm = 0;
    int norm_ok = 1;
    for (int i = 0; i < N_SENT; i++) {
        mean_len_raw += beam[i].hyps[0].len;
        mean_len_norm += norm[i].hyps[0].len;
        Hypothesis *h = &norm[i].hyps[0];
        norm_ok &= fabs(h->norm_score - h->score / pow((5.0 + h->len + 1) / 6.0, 1.0)) < 1e-9;
    }
    CHECK(norm_ok, "GNMT normalized score = score / ((5 + |Y|) / 6)^alpha");
    CHECK(mean_len_norm >= mean_len_raw, "length normalization does not shorten outputs (%.2f vs %.2f tokens)",
          mean_len_norm / N_SENT, mean_len_raw / N_SENT);
    free_results(norm, N_SENT);
    free_results(greedy, N_SENT);
    free_results(beam1, N_SENT);
    free_results(beam, N_SENT);
    model_free(&m);
}

static void test_sampling(void) {
    Model m;
    make_model(&m, 0, 8, 5);
    make_sources(23);
    DecodeOptions opt;
    decode_options_default(&opt);
    opt.batch_size = 8;
    DecodeResult greedy[N_SENT], a[N_SENT], b[N_SENT];
    run(&m, &opt, src_ptr, src_len, N_SENT, greedy);
    opt.sample = 1;
    opt.seed = 42;
    run(&m, &opt, src_ptr, src_len, N_SENT, a);
    opt.batch_size = 3;
    run(&m, &opt, src_ptr, src_len, N_SENT, b);
    int same = 1, differs_from_greedy = 0;
    for (int i = 0; i < N_SENT; i++) {
        same &= same_tokens(&a[i].hyps[0], &b[i].hyps[0]);
        differs_from_greedy |= !same_tokens(&a[i].hyps[0], &greedy[i].hyps[0]);
    }
    CHECK(same, "sampling with a seed gives the same samples for any batch size");
    CHECK(differs_from_greedy, "sampling at temperature 1 departs from greedy somewhere");
    free_results(b, N_SENT);
    opt.seed = 43;
    run(&m, &opt, src_ptr, src_len, N_SENT, b);
    int any_diff = 0;
    for (int i = 0; i < N_SENT; i++) any_diff |= !same_tokens(&a[i].hyps[0], &b[i].hyps[0]);
    CHECK(any_diff, "another seed gives other samples");
    free_results(b, N_SENT);
    opt.top_k = 1;
    run(&m, &opt, src_ptr, src_len, N_SENT, b);
    same = 1;
    for (int i = 0; i < N_SENT; i++) same &= same_tokens(&b[i].hyps[0], &greedy[i].hyps[0]);
    CHECK(same, "top-k 1 sampling is greedy");
    free_results(b, N_SENT);
    opt.top_k = 0;
    opt.top_p = 1e-6f;
    run(&m, &opt, src_ptr, src_len, N_SENT, b);
    same = 1;
    for (int i = 0; i < N_SENT; i++) same &= same_tokens(&b[i].hyps[0], &greedy[i].hyps[0]);
    CHECK(same, "top-p near 0 sampling is greedy");
    free_results(b, N_SENT);
    opt.top_p = 1.0f;
    opt.nbest = 3;
    run(&m, &opt, src_ptr, src_len, N_SENT, b);
    int three = 1;
    for (int i = 0; i < N_SENT; i++) three &= b[i].n == 3;
    CHECK(three, "sampling with nbest 3 returns three samples per sentence");
    free_results(b, N_SENT);
    free_results(a, N_SENT);
    free_results(greedy, N_SENT);
    model_free(&m);
}

static void test_limits_and_attention(void) {
    Model m;
    make_model(&m, 0, 8, 9);
    make_sources(29);
    m.params.gen_b[EOS_ID] -= 100.0f;  // never ends by itself
    DecodeOptions opt;
    decode_options_default(&opt);
    opt.batch_size = 8;
    opt.max_len_a = 1.0f;
    opt.max_len_b = 2;
    DecodeResult res[N_SENT];
    run(&m, &opt, src_ptr, src_len, N_SENT, res);
    int ok = 1;
    for (int i = 0; i < N_SENT; i++) ok &= res[i].hyps[0].len + 1 == src_len[i] + 2 && res[i].hyps[0].hit_max_len;
    CHECK(ok, "relative length limit |Y| <= 1 * |src| + 2, with </s> forced at the limit");
    free_results(res, N_SENT);
    opt.max_len_a = 0;
    opt.max_len = 5;
    opt.beam_size = 3;
    run(&m, &opt, src_ptr, src_len, N_SENT, res);
    ok = 1;
    for (int i = 0; i < N_SENT; i++) ok &= res[i].hyps[0].len == 4 && res[i].hyps[0].hit_max_len;
    CHECK(ok, "absolute length limit --max-len 5 holds in beam search");
    free_results(res, N_SENT);
    m.params.gen_b[EOS_ID] += 100.0f;

    // attention weights: rows sum to 1, and equal the full forward's last-layer cross-attention
    decode_options_default(&opt);
    opt.batch_size = 8;
    opt.attention = 1;
    opt.beam_size = 2;
    run(&m, &opt, src_ptr, src_len, 4, res);
    Hypothesis *h = &res[0].hyps[0];
    int S = res[0].src_len, T = h->len + 1;
    double row_err = 0;
    for (int t = 0; t < T; t++) {
        double sum = 0;
        for (int j = 0; j < S; j++) sum += h->attention[t * S + j];
        if (fabs(sum - 1) > row_err) row_err = fabs(sum - 1);
    }
    CHECK(row_err < 1e-5, "attention rows sum to 1 (max err %.2e)", row_err);
    Batch b = {.B = 1, .S = S, .T = T};
    b.src = malloc(sizeof(int) * S);
    b.tgt_in = malloc(sizeof(int) * T);
    memcpy(b.src, src_ptr[0], sizeof(int) * (S - 1));
    b.src[S - 1] = EOS_ID;
    b.tgt_in[0] = BOS_ID;
    memcpy(b.tgt_in + 1, h->tokens, sizeof(int) * h->len);
    model_forward(&m, &b, 0.0f, 0, NULL);
    const float *probs = m.acts->dec[m.config.n_dec_layers - 1].cross.probs;  // (1, NH, T, S)
    int NH = m.config.n_heads;
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < S; j++) {
            double avg = 0;
            for (int hd = 0; hd < NH; hd++) avg += probs[((long)hd * T + t) * S + j] / NH;
            if (fabs(avg - h->attention[t * S + j]) > worst) worst = fabs(avg - h->attention[t * S + j]);
        }
    CHECK(worst < 1e-5, "decoded attention equals the full forward's cross-attention (max diff %.2e)", worst);
    free(b.src); free(b.tgt_in);
    free_results(res, 4);
    model_free(&m);
}

static void test_options(void) {
    DecodeOptions opt;
    decode_options_default(&opt);
    CHECK(decode_options_validate(&opt) == 0, "default decode options are valid");
    opt.nbest = 2;
    CHECK(decode_options_validate(&opt) != 0, "nbest above the beam size is rejected");
    decode_options_default(&opt);
    opt.temperature = 0;
    CHECK(decode_options_validate(&opt) != 0, "temperature 0 is rejected");
    decode_options_default(&opt);
    opt.top_p = 1.5f;
    CHECK(decode_options_validate(&opt) != 0, "top-p above 1 is rejected");
    decode_options_default(&opt);
    opt.alpha = 0.6f;
    CHECK(fabs(length_penalty(&opt, 7) - pow(2.0, (double)opt.alpha)) < 1e-12, "GNMT penalty ((5+7)/6)^0.6");
    opt.length_penalty = LENGTH_PENALTY_POWER;
    CHECK(fabs(length_penalty(&opt, 7) - pow(7.0, (double)opt.alpha)) < 1e-12, "power penalty 7^0.6");
    opt.alpha = 0;
    CHECK(length_penalty(&opt, 7) == 1.0, "alpha 0 means no penalty");

    Model m;
    make_model(&m, 0, 2, 1);
    decode_options_default(&opt);
    opt.batch_size = 4;
    Translator *tr;
    CHECK(translator_create(&tr, &m, &opt) != 0, "a batch above the model's capacity is rejected");
    opt.batch_size = 2;
    translator_create(&tr, &m, &opt);
    int long_src[MAX_LEN + 5];
    for (int i = 0; i < MAX_LEN + 5; i++) long_src[i] = 5;
    const int *p = long_src;
    int n = MAX_LEN;  // + </s> exceeds the positions
    DecodeResult r;
    CHECK(translator_run(tr, &p, &n, 1, 0, &r) != 0, "a source longer than the model's positions is an error");
    int empty_len = 0;
    CHECK(translator_run(tr, &p, &empty_len, 1, 0, &r) == 0 && r.n == 1, "an empty source decodes");
    decode_result_free(&r);
    translator_free(tr);
    model_free(&m);
}

// decode_model_open reads how the run prepared its inputs from the file's
// training config, and refuses a config that does not parse.
static void test_model_file(void) {
    Model m;
    make_model(&m, 0, 2, 5);
    const char *alphabet = "abcdefghijklmnopqrs";  // 19 characters + 4 specials + the marker = V
    Tokenizer *tok;
    int rc = tokenizer_learn(&tok, TOKENIZER_CHAR, &alphabet, 1, NULL);
    CHECK(rc == 0 && tokenizer_vocab_size(tok) == V, "model file: a char tokenizer of V pieces");
    char path[64];
    snprintf(path, sizeof path, "/tmp/attn_test_decode_%d.safetensors", (int)getpid());
    DecodeModel dm;
    rc = checkpoint_save_model(path, &m, tok, tok, "lowercase = 1\nmax_len = 12\n", 0, NULL);
    rc = rc ? rc : decode_model_open(&dm, path, 2, 0, 1);
    CHECK(rc == 0 && dm.lowercase == 1 && dm.max_len == 12, "model file: lowercase and max_len from the training config");
    if (rc == 0) decode_model_close(&dm);
    rc = checkpoint_save_model(path, &m, tok, tok, "lowercase = maybe\n", 0, NULL);
    rc = rc ? rc : decode_model_open(&dm, path, 2, 0, 1);
    CHECK(rc != 0 && strstr(attn_last_error(), "train_config:1: bad value for lowercase"),
          "model file: a training config that does not parse is an error: %s", attn_last_error());
    unlink(path);
    tokenizer_free(tok);
    model_free(&m);
}

int main(void) {
    test_cached_equals_full(0);
    test_cached_equals_full(1);
    test_row_split(0);
    test_row_split(1);
    test_reorder_classes();
    test_greedy_and_beam();
    test_sampling();
    test_limits_and_attention();
    test_options();
    test_model_file();
    TEST_EXIT();
}
