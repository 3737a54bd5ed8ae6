// Evaluation metrics: corpus BLEU and chrF exactly as sacreBLEU 2.x computes
// them, WER/PER for grapheme-to-phoneme, and loss / perplexity / token
// accuracy from logits. Each is a small accumulator: add sentences, then
// compute, so the same code serves `attn bleu`, `attn chrf` and `attn eval`.
//
// Text is UTF-8; whitespace is Python's str.split() whitespace (Unicode), and
// characters are code points, as in sacreBLEU. Invalid UTF-8 is an error.
#ifndef ATTN_METRICS_H
#define ATTN_METRICS_H
#include <stddef.h>

// ---------------------------------------------------------------------------
// BLEU (sacreBLEU defaults: 13a tokenizer, 4-grams, exp smoothing, no effective order)

enum { BLEU_MAX_ORDER = 9 };
typedef enum { BLEU_SMOOTH_EXP, BLEU_SMOOTH_NONE, BLEU_SMOOTH_FLOOR, BLEU_SMOOTH_ADD_K } BleuSmooth;
typedef enum { BLEU_TOK_13A, BLEU_TOK_NONE } BleuTokenizer;

typedef struct {
    int max_order;           // 4; at most BLEU_MAX_ORDER
    BleuSmooth smooth;       // exp
    double smooth_value;     // for floor (default 0.1) and add-k (default 1); < 0: the default
    BleuTokenizer tokenizer; // 13a
    int effective_order;     // 0; 1 stops at the first order with no n-grams (sentence BLEU)
} BleuOptions;

// Sufficient statistics, summed over sentences.
typedef struct {
    long sys_len, ref_len;            // hypothesis tokens, closest-reference tokens
    long correct[BLEU_MAX_ORDER];     // clipped n-gram matches per order
    long total[BLEU_MAX_ORDER];       // hypothesis n-grams per order
    int n_sentences;
    int n_refs;                       // references per sentence; -1 when it varies ("var")
} BleuStats;

typedef struct {
    double score;                     // 0..100
    double precisions[BLEU_MAX_ORDER];// 0..100, as printed "82.4/50.0/..."
    double bp, ratio;
    long sys_len, ref_len;
    int max_order;
} BleuScore;

void bleu_options_default(BleuOptions *opt);
void bleu_stats_init(BleuStats *st);
// Adds one segment: hypothesis and its references (empty references are
// skipped as sacreBLEU does; at least one must be non-empty). Returns -1 on
// invalid UTF-8 or when no reference is usable.
int bleu_add_sentence(BleuStats *st, const BleuOptions *opt, const char *hyp,
                      const char *const *refs, int n_refs);
void bleu_compute(BleuScore *out, const BleuStats *st, const BleuOptions *opt);
// Corpus BLEU over n_sents hypotheses; refs[r][i] is reference stream r, segment i.
int bleu_corpus(BleuScore *out, BleuStats *stats_out, const BleuOptions *opt, const char *const *hyps,
                const char *const *const *refs, int n_sents, int n_ref_streams);
// "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
void bleu_format(char *buf, size_t size, const BleuScore *s);
// "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:attn-0.1.0"
void bleu_signature(char *buf, size_t size, const BleuStats *st, const BleuOptions *opt);
// The 13a tokenization of one line (after sacreBLEU's rstrip), as a new
// string of tokens joined by single spaces; NULL with an error on bad UTF-8.
char *bleu_tokenize_13a(const char *line);

// ---------------------------------------------------------------------------
// chrF (sacreBLEU defaults: character 6-grams, no word n-grams, beta 2,
// whitespace removed, effective-order averaging, best reference per segment)

enum { CHRF_MAX_ORDER = 12 };
typedef struct {
    int char_order;      // 6
    double beta;         // 2
    int whitespace;      // 0: remove whitespace before extracting n-grams
    int eps_smoothing;   // 0: average precision/recall over orders that exist (sacreBLEU default)
} ChrfOptions;

typedef struct {
    long hyp[CHRF_MAX_ORDER], ref[CHRF_MAX_ORDER], match[CHRF_MAX_ORDER];
    int n_sentences;
    int n_refs;          // as in BleuStats
} ChrfStats;

void chrf_options_default(ChrfOptions *opt);
void chrf_stats_init(ChrfStats *st);
int chrf_add_sentence(ChrfStats *st, const ChrfOptions *opt, const char *hyp,
                      const char *const *refs, int n_refs);
double chrf_compute(const ChrfStats *st, const ChrfOptions *opt);   // 0..100
int chrf_corpus(double *score, ChrfStats *stats_out, const ChrfOptions *opt, const char *const *hyps,
                const char *const *const *refs, int n_sents, int n_ref_streams);
// "chrF2 = 59.73"
void chrf_format(char *buf, size_t size, double score, const ChrfOptions *opt);
// "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:attn-0.1.0"
void chrf_signature(char *buf, size_t size, const ChrfStats *st, const ChrfOptions *opt);

// ---------------------------------------------------------------------------
// G2P word and phoneme error rates. A "word" is one source entry; its
// hypothesis and references are whitespace-separated phoneme strings.

typedef struct {
    long words;          // entries scored
    long word_errors;    // entries whose hypothesis equals none of the references
    long phone_edits;    // Levenshtein distance to the closest reference, summed
    long ref_phones;     // length of that closest reference, summed
} G2PStats;

// Adds one word. The closest reference is the one with the smallest edit
// distance; on a tie the first listed. Returns -1 when n_refs < 1.
int g2p_add_word(G2PStats *st, const char *hyp, const char *const *refs, int n_refs);
double g2p_wer(const G2PStats *st);   // 0..100, word_errors / words
double g2p_per(const G2PStats *st);   // 0..100, phone_edits / ref_phones
// Levenshtein distance between two token sequences (unit costs).
long edit_distance_tokens(const char *const *a, int na, const char *const *b, int nb);

// ---------------------------------------------------------------------------
// Exact match: share of segments whose hypothesis equals one reference
// (compared after trimming surrounding whitespace and collapsing inner runs).

typedef struct { long segments, exact; } ExactStats;
void exact_add(ExactStats *st, const char *hyp, const char *const *refs, int n_refs);
double exact_accuracy(const ExactStats *st);   // 0..100

// ---------------------------------------------------------------------------
// Loss, perplexity, token accuracy of a model on reference targets (no label
// smoothing): from logits (n, V) and targets (n); PAD (id 0) targets skipped.

typedef struct {
    double nll_sum;      // total negative log-likelihood in nats
    long tokens;         // non-pad targets
    long correct;        // argmax == target
} TokenStats;

void token_stats_add(TokenStats *st, const float *logits, const int *targets, long n, int V);
double token_loss(const TokenStats *st);        // nll_sum / tokens
double token_perplexity(const TokenStats *st);  // exp(loss)
double token_accuracy(const TokenStats *st);    // 0..100

#endif
