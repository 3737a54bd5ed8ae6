// Decoding: greedy search, beam search and sampling over the cached
// incremental decoder of model.h (encoder once per batch, then one position
// per step), batched with sentences sorted by length and results returned in
// input order; and teacher-forced scoring of (source, target) pairs.
//
// Lengths count the output tokens including </s>: a hypothesis y1 .. yn has
// |Y| = n + 1. Scores are natural-log probabilities of the model (no
// temperature, no smoothing), summed over y1 .. yn </s>.
#ifndef ATTN_DECODE_H
#define ATTN_DECODE_H
#include <stdint.h>
#include "metrics.h"
#include "model.h"
#include "tokenizer.h"

typedef enum {
    LENGTH_PENALTY_GNMT,   // ((5 + |Y|) / 6)^alpha  (Wu et al. 2016)
    LENGTH_PENALTY_POWER,  // |Y|^alpha
} LengthPenalty;

typedef struct {
    int beam_size;         // 1: greedy (exactly the argmax path); K > 1: beam search
    int beam_search;       // 1: run the beam search code even for beam_size 1 (it must
                           // then equal greedy; tests use this), 0: greedy for beam 1
    int nbest;             // hypotheses returned per sentence (<= beam_size; sampling: samples)
    float alpha;           // length penalty exponent, >= 0; 0 ranks by raw log-probability
    LengthPenalty length_penalty;
    int max_len;           // cap on |Y| (0: the model's max_len)
    float max_len_a;       // when > 0, also |Y| <= max_len_a * |source| + max_len_b
    int max_len_b;
    int sample;            // 1: sample instead of searching
    float temperature;     // sampling: logits / temperature (> 0)
    int top_k;             // sampling: keep the k most likely tokens (0: all)
    float top_p;           // sampling: keep the smallest set with mass >= top_p (1: all)
    uint64_t seed;         // sampling: sentence i's stream depends on (seed, i) only
    int batch_size;        // sentences decoded together
    int attention;         // keep the cross-attention of each returned hypothesis
    int matmul_bf16;       // --matmul bf16: the command's products in bfloat16 (decode_select_matmul)
} DecodeOptions;

typedef struct {
    int *tokens;           // (len) y1 .. yn, without <s> and </s>
    int len;
    float *token_logprobs; // (len + 1) log p of y1 .. yn and of </s>
    double score;          // sum of token_logprobs
    double norm_score;     // score / length penalty: what the search ranks by
    int hit_max_len;       // </s> was forced at the length limit
    float *attention;      // (len + 1, src_len) last decoder layer's cross-attention,
                           // averaged over heads; NULL unless DecodeOptions.attention
} Hypothesis;

typedef struct {
    Hypothesis *hyps;      // (n) best first
    int n;
    int src_len;           // source positions attended (tokens + </s>)
} DecodeResult;

typedef struct Translator Translator;

// Cap on batch_size * K * 2K (K: beam size, or samples): the candidate
// buffer of a step, 16 bytes each (1 GiB; beam 1000 at batch size 32 fits).
#define DECODE_MAX_CANDIDATES (1L << 26)

// Defaults: greedy, nbest 1, alpha 0 GNMT, length limit 2 |source| + 10
// within the model's max_len, sampling temperature 1, top-k 0, top-p 1,
// seed 1, batch 32, no attention.
void decode_options_default(DecodeOptions *opt);
int decode_options_validate(const DecodeOptions *opt);
// For the commands that decode: --matmul bf16 switches every matrix product
// of the process to bf16 inputs with float32 sums (AVX512-BF16; an error on
// a CPU without it), fp32 leaves gemm's path alone. Not applied by
// translator_create: training's validation decodes with training's path.
int decode_select_matmul(const DecodeOptions *opt);
double length_penalty(const DecodeOptions *opt, int len);
// Command-line flags of the options, shared by attn translate and attn eval:
// --beam --alpha --length-penalty --nbest --max-len --max-len-a --max-len-b
// --sample --temperature --top-k --top-p --seed --batch-size. Returns 1 when
// argv[*i] is one (advancing *i past its value), 0 when not, -1 on a bad value.
int decode_parse_flag(int argc, char **argv, int *i, DecodeOptions *opt);

// A translator over model m, whose activations must hold (batch_size, the
// longest source + 1) for the encoder (model_create's max_B and max_S).
int translator_create(Translator **out, Model *m, const DecodeOptions *opt);
void translator_free(Translator *tr);
// The model's weights changed since the translator last ran (training
// between validations): it packs them again instead of keeping the packing
// of its earlier runs.
void translator_weights_changed(Translator *tr);
// Decodes n sources (token ids without </s>; it is appended), results[i] for
// src[i]. first_index numbers the sentences for the sampling streams (the
// global line number), so results do not depend on how input is chunked.
int translator_run(Translator *tr, const int *const *src, const int *src_len, int n,
                   long first_index, DecodeResult *results);
void decode_result_free(DecodeResult *r);

// Teacher-forced scoring: nll[i] = -log p(tgt[i] </s> | src[i]) in nats, in
// batches of m->max_B (sources and targets must fit max_S - 1, max_T - 1).
// stats, when not NULL, accumulates loss / accuracy over every target token.
int score_pairs(Model *m, const int *const *src, const int *src_len, const int *const *tgt,
                const int *tgt_len, int n, double *nll, TokenStats *stats);

// ---------------------------------------------------------------------------
// Model files for decoding and scoring (translate, score, eval)

typedef struct {
    Model model;
    Tokenizer *src_tok, *tgt_tok;
    int max_len;           // longest sequence incl. </s> accepted on either side
    int lowercase;         // the training data was lowercased, so inputs are too
} DecodeModel;

// Loads a model file with activations for `batch` sentences. max_len <= 0
// takes the training run's max_len (from the file's train_config; 256 when
// the file has none), capped by the model's positions. with_targets: room
// for teacher-forced targets of max_len (score, eval); else the encoder only.
int decode_model_open(DecodeModel *dm, const char *path, int batch, int max_len, int with_targets);
void decode_model_close(DecodeModel *dm);

// Prepares a text as the training data was (whitespace trimmed and
// collapsed, lowercased when the run did) and encodes it with t into *ids
// (grown as needed), keeping at most max_tokens: a longer text is cut, with
// "attn: warning: WHERE: SIDE of N tokens truncated to M" on stderr, since
// the commands go on past it. Returns the count kept; -1 on invalid UTF-8,
// with the error "WHERE: SIDE: ...".
int decode_encode_text(const DecodeModel *dm, const Tokenizer *t, const char *text, int max_tokens,
                       int **ids, int *cap, const char *where, const char *side);
// The text of ids (a new string), or NULL on an id outside the vocabulary.
char *decode_ids_to_text(const Tokenizer *t, const int *ids, int n);
// The same preparation for a reference text, in place (it only shrinks).
void decode_prepare_text(const DecodeModel *dm, char *text);

#endif
