// Metrics: BLEU and chrF as sacreBLEU 2.x (mjpost/sacrebleu: metrics/bleu.py,
// metrics/chrf.py, metrics/helpers.py, tokenizers/tokenizer_13a.py,
// tokenizer_re.py), G2P WER/PER, exact match, token loss/accuracy.
//
// Text is handled as arrays of Unicode code points, because sacreBLEU works
// on Python str: whitespace is str.split()'s set, chrF's characters are code
// points, and the 13a regexes see one code point at a time.
#include "metrics.h"
#include "common.h"
#include "utf8.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// code point buffers

typedef struct {
    uint32_t *cp;
    int n, cap;
} CpBuf;

static void cp_push(CpBuf *b, uint32_t c) {
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->cp = realloc_check(b->cp, (size_t)b->cap * sizeof(uint32_t));
    }
    b->cp[b->n++] = c;
}

static void cp_push_ascii(CpBuf *b, const char *s) {
    for (; *s; s++) cp_push(b, (unsigned char)*s);
}

// Decodes strict UTF-8 into code points; -1 (with an error) on a bad sequence.
static int cp_decode(CpBuf *out, const char *s) {
    size_t n = strlen(s);
    out->n = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        int len = utf8_decode(s + i, n - i, &c);
        if (len < 0) return attn_error("invalid UTF-8 at byte %zu", i);
        cp_push(out, c);
        i += (size_t)len;
    }
    return 0;
}

// Python's str.isspace() (what str.split() and re's \s split on).
static int py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }

// ----------------------------------------------------------------------------
// n-gram matching: one sort of all n-grams of the hypothesis (seq 0) and the
// references (seq 1..), then one pass over groups of equal n-grams.

typedef struct {
    const uint32_t *gram;
    int n;
    int seq;
} Gram;

static int gram_cmp(const void *pa, const void *pb) {
    const Gram *a = pa, *b = pb;
    for (int i = 0; i < a->n; i++)
        if (a->gram[i] != b->gram[i]) return a->gram[i] < b->gram[i] ? -1 : 1;
    return a->seq - b->seq;
}

// For order n: the hypothesis n-gram count, the matches clipped by the largest
// count in any one reference (sacreBLEU's max over references), and
// ref_totals[r] = n-grams of reference r (may be NULL).
static void match_ngrams(const uint32_t *const *seq, const int *len, int n_seq, int n,
                         long *hyp_total, long *clipped, long *ref_totals) {
    long n_grams = 0;
    for (int s = 0; s < n_seq; s++) n_grams += len[s] >= n ? len[s] - n + 1 : 0;
    Gram *g = malloc_check((size_t)n_grams * sizeof(Gram));
    long k = 0;
    for (int s = 0; s < n_seq; s++)
        for (int i = 0; i + n <= len[s]; i++) g[k++] = (Gram){seq[s] + i, n, s};
    qsort(g, (size_t)n_grams, sizeof(Gram), gram_cmp);
    long *counts = calloc_check((size_t)n_seq, sizeof(long));
    *hyp_total = 0;
    *clipped = 0;
    if (ref_totals) memset(ref_totals, 0, (size_t)(n_seq - 1) * sizeof(long));
    for (long i = 0; i < n_grams;) {
        long j = i;
        memset(counts, 0, (size_t)n_seq * sizeof(long));
        while (j < n_grams && memcmp(g[j].gram, g[i].gram, (size_t)n * sizeof(uint32_t)) == 0) counts[g[j++].seq]++;
        long max_ref = 0;
        for (int s = 1; s < n_seq; s++) {
            if (counts[s] > max_ref) max_ref = counts[s];
            if (ref_totals) ref_totals[s - 1] += counts[s];
        }
        *hyp_total += counts[0];
        *clipped += counts[0] < max_ref ? counts[0] : max_ref;
        i = j;
    }
    free(counts);
    free(g);
}

// Tracks the number of references per segment for the signature ("var" if it changes).
static void track_n_refs(int *n_refs, int n_sentences, int used) {
    if (n_sentences == 0) *n_refs = used;
    else if (*n_refs != used) *n_refs = -1;
}

static void format_n_refs(char *buf, size_t size, int n_refs) {
    if (n_refs < 0) snprintf(buf, size, "var");
    else snprintf(buf, size, "%d", n_refs);
}

// ----------------------------------------------------------------------------
// 13a tokenizer

// out = in with every occurrence of the ASCII string pat replaced by rep (str.replace).
static void cp_replace(CpBuf *out, const CpBuf *in, const char *pat, const char *rep) {
    int pn = (int)strlen(pat);
    out->n = 0;
    for (int i = 0; i < in->n;) {
        int hit = i + pn <= in->n;
        for (int k = 0; hit && k < pn; k++) hit = in->cp[i + k] == (unsigned char)pat[k];
        if (hit) { cp_push_ascii(out, rep); i += pn; }
        else cp_push(out, in->cp[i++]);
    }
}

// The character class of 13a's first regex: [\{-\~\[-\` -\&\(-\+\:-\@\/]
static int is_13a_symbol(uint32_t c) {
    return (c >= 0x7B && c <= 0x7E) || (c >= 0x5B && c <= 0x60) || (c >= 0x20 && c <= 0x26) ||
           (c >= 0x28 && c <= 0x2B) || (c >= 0x3A && c <= 0x40) || c == '/';
}

static int is_period_comma(uint32_t c) { return c == '.' || c == ','; }

// The four regex substitutions of tokenizer_re.py, each a left-to-right scan
// with non-overlapping two-character matches, as Python's re.sub does.
static void tok13a_regexes(CpBuf *a, CpBuf *b) {
    b->n = 0;  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
    for (int i = 0; i < a->n; i++) {
        if (is_13a_symbol(a->cp[i])) { cp_push(b, ' '); cp_push(b, a->cp[i]); cp_push(b, ' '); }
        else cp_push(b, a->cp[i]);
    }
    a->n = 0;  // ([^0-9])([\.,]) -> '\1 \2 '
    for (int i = 0; i < b->n;) {
        if (i + 1 < b->n && !is_digit(b->cp[i]) && is_period_comma(b->cp[i + 1])) {
            cp_push(a, b->cp[i]); cp_push(a, ' '); cp_push(a, b->cp[i + 1]); cp_push(a, ' ');
            i += 2;
        } else cp_push(a, b->cp[i++]);
    }
    b->n = 0;  // ([\.,])([^0-9]) -> ' \1 \2'
    for (int i = 0; i < a->n;) {
        if (i + 1 < a->n && is_period_comma(a->cp[i]) && !is_digit(a->cp[i + 1])) {
            cp_push(b, ' '); cp_push(b, a->cp[i]); cp_push(b, ' '); cp_push(b, a->cp[i + 1]);
            i += 2;
        } else cp_push(b, a->cp[i++]);
    }
    a->n = 0;  // ([0-9])(-) -> '\1 \2 '
    for (int i = 0; i < b->n;) {
        if (i + 1 < b->n && is_digit(b->cp[i]) && b->cp[i + 1] == '-') {
            cp_push(a, b->cp[i]); cp_push(a, ' '); cp_push(a, '-'); cp_push(a, ' ');
            i += 2;
        } else cp_push(a, b->cp[i++]);
    }
}

// Tokenizes `text` (code points, already rstripped) in place with 13a.
static void tokenize_13a(CpBuf *text) {
    static const char *const replacements[][2] = {
        {"<skipped>", ""}, {"-\n", ""}, {"\n", " "}, {"&quot;", "\""},
        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
    };
    CpBuf tmp = {0};
    for (size_t r = 0; r < sizeof replacements / sizeof replacements[0]; r++) {
        cp_replace(&tmp, text, replacements[r][0], replacements[r][1]);
        CpBuf swap = *text; *text = tmp; tmp = swap;
    }
    tmp.n = 0;  // line = " {} ".format(line)
    cp_push(&tmp, ' ');
    for (int i = 0; i < text->n; i++) cp_push(&tmp, text->cp[i]);
    cp_push(&tmp, ' ');
    tok13a_regexes(&tmp, text);  // result lands in tmp
    CpBuf swap = *text; *text = tmp; tmp = swap;
    free(tmp.cp);
}

// Whitespace-separated tokens of a code point buffer: (start, length) pairs.
typedef struct {
    int *start, *len;
    int n, cap;
} Tokens;

static void split_tokens(Tokens *t, const CpBuf *text) {
    t->n = 0;
    for (int i = 0; i < text->n;) {
        while (i < text->n && py_isspace(text->cp[i])) i++;
        if (i >= text->n) break;
        int s = i;
        while (i < text->n && !py_isspace(text->cp[i])) i++;
        if (t->n == t->cap) {
            t->cap = t->cap ? 2 * t->cap : 32;
            t->start = realloc_check(t->start, (size_t)t->cap * sizeof(int));
            t->len = realloc_check(t->len, (size_t)t->cap * sizeof(int));
        }
        t->start[t->n] = s;
        t->len[t->n++] = i - s;
    }
}

static void tokens_free(Tokens *t) { free(t->start); free(t->len); }

// BLEU preprocessing of one segment: decode, rstrip, tokenize, split.
static int bleu_segment(CpBuf *text, Tokens *tok, const char *line, BleuTokenizer tokenizer) {
    if (cp_decode(text, line) != 0) return -1;
    while (text->n > 0 && py_isspace(text->cp[text->n - 1])) text->n--;
    if (tokenizer == BLEU_TOK_13A) tokenize_13a(text);
    split_tokens(tok, text);
    return 0;
}

char *bleu_tokenize_13a(const char *line) {
    CpBuf text = {0};
    Tokens tok = {0};
    if (bleu_segment(&text, &tok, line, BLEU_TOK_13A) != 0) { free(text.cp); return NULL; }
    size_t cap = 1;
    for (int i = 0; i < tok.n; i++) cap += 4 * (size_t)tok.len[i] + 1;
    char *out = malloc_check(cap), *p = out;
    for (int i = 0; i < tok.n; i++) {
        if (i) *p++ = ' ';
        for (int k = 0; k < tok.len[i]; k++) p += utf8_encode(text.cp[tok.start[i] + k], p);
    }
    *p = '\0';
    free(text.cp);
    tokens_free(&tok);
    return out;
}

// ----------------------------------------------------------------------------
// BLEU

void bleu_options_default(BleuOptions *opt) {
    opt->max_order = 4;
    opt->smooth = BLEU_SMOOTH_EXP;
    opt->smooth_value = -1;
    opt->tokenizer = BLEU_TOK_13A;
    opt->effective_order = 0;
}

void bleu_stats_init(BleuStats *st) { memset(st, 0, sizeof *st); }

// Token interning across one segment's hypothesis and references, so that
// n-grams of words become n-grams of integers.
typedef struct {
    const uint32_t *cp;
    int len;
    int slot;   // index into the flat token list
} TokRef;

static int tokref_cmp(const void *pa, const void *pb) {
    const TokRef *a = pa, *b = pb;
    int n = a->len < b->len ? a->len : b->len;
    for (int i = 0; i < n; i++)
        if (a->cp[i] != b->cp[i]) return a->cp[i] < b->cp[i] ? -1 : 1;
    return a->len - b->len;
}

// ids[s][i]: the id of token i of segment s (s = 0 hypothesis, then references).
static void intern_tokens(uint32_t **ids, CpBuf *texts, Tokens *toks, int n_seq) {
    int total = 0;
    for (int s = 0; s < n_seq; s++) total += toks[s].n;
    TokRef *all = malloc_check((size_t)total * sizeof(TokRef));
    int k = 0;
    for (int s = 0; s < n_seq; s++)
        for (int i = 0; i < toks[s].n; i++) all[k] = (TokRef){texts[s].cp + toks[s].start[i], toks[s].len[i], k}, k++;
    qsort(all, (size_t)total, sizeof(TokRef), tokref_cmp);
    uint32_t *flat = malloc_check((size_t)total * sizeof(uint32_t));
    uint32_t id = 0;
    for (int i = 0; i < total; i++) {
        if (i > 0 && tokref_cmp(&all[i - 1], &all[i]) != 0) id++;
        flat[all[i].slot] = id;
    }
    k = 0;
    for (int s = 0; s < n_seq; s++) {
        ids[s] = malloc_check((size_t)(toks[s].n + 1) * sizeof(uint32_t));
        for (int i = 0; i < toks[s].n; i++) ids[s][i] = flat[k++];
    }
    free(flat);
    free(all);
}

// sacreBLEU's _get_closest_ref_len: smallest |hyp - ref|, ties to the shorter reference.
static int closest_ref_len(int hyp_len, const Tokens *refs, int n_refs) {
    int best_diff = -1, best_len = -1;
    for (int r = 0; r < n_refs; r++) {
        int diff = abs(hyp_len - refs[r].n);
        if (best_diff == -1 || diff < best_diff) { best_diff = diff; best_len = refs[r].n; }
        else if (diff == best_diff && refs[r].n < best_len) best_len = refs[r].n;
    }
    return best_len;
}

int bleu_add_sentence(BleuStats *st, const BleuOptions *opt, const char *hyp,
                      const char *const *refs, int n_refs) {
    if (opt->max_order < 1 || opt->max_order > BLEU_MAX_ORDER)
        return attn_error("BLEU n-gram order %d is outside [1, %d]", opt->max_order, BLEU_MAX_ORDER);
    CpBuf *texts = calloc_check((size_t)n_refs + 1, sizeof(CpBuf));
    Tokens *toks = calloc_check((size_t)n_refs + 1, sizeof(Tokens));
    int n_seq = 1, rc = 0;
    if (bleu_segment(&texts[0], &toks[0], hyp, opt->tokenizer) != 0) { rc = -1; goto done; }
    for (int r = 0; r < n_refs; r++) {
        if (!refs[r] || refs[r][0] == '\0') continue;  // sacreBLEU drops empty references
        if (bleu_segment(&texts[n_seq], &toks[n_seq], refs[r], opt->tokenizer) != 0) { rc = -1; goto done; }
        n_seq++;
    }
    if (n_seq < 2) { rc = attn_error("a segment has no non-empty reference"); goto done; }
    track_n_refs(&st->n_refs, st->n_sentences, n_seq - 1);
    st->n_sentences++;
    st->sys_len += toks[0].n;
    st->ref_len += closest_ref_len(toks[0].n, toks + 1, n_seq - 1);
    uint32_t **ids = malloc_check((size_t)n_seq * sizeof(uint32_t *));
    int *lens = malloc_check((size_t)n_seq * sizeof(int));
    intern_tokens(ids, texts, toks, n_seq);
    for (int s = 0; s < n_seq; s++) lens[s] = toks[s].n;
    for (int n = 1; n <= opt->max_order; n++) {
        long hyp_total, clipped;
        match_ngrams((const uint32_t *const *)ids, lens, n_seq, n, &hyp_total, &clipped, NULL);
        st->total[n - 1] += hyp_total;
        st->correct[n - 1] += clipped;
    }
    for (int s = 0; s < n_seq; s++) free(ids[s]);
    free(ids);
    free(lens);
done:
    for (int s = 0; s <= n_refs; s++) { free(texts[s].cp); tokens_free(&toks[s]); }
    free(texts);
    free(toks);
    return rc;
}

// sacreBLEU's my_log: log(0) is a large negative number, not -inf.
static double my_log(double x) { return x == 0 ? -9999999999.0 : log(x); }

void bleu_compute(BleuScore *out, const BleuStats *st, const BleuOptions *opt) {
    int order = opt->max_order;
    double k = opt->smooth_value;
    if (k < 0) k = opt->smooth == BLEU_SMOOTH_FLOOR ? 0.1 : 1.0;
    memset(out, 0, sizeof *out);
    out->max_order = order;
    out->sys_len = st->sys_len;
    out->ref_len = st->ref_len;
    out->ratio = st->ref_len ? (double)st->sys_len / (double)st->ref_len : 0;
    if (st->sys_len < st->ref_len) out->bp = st->sys_len > 0 ? exp(1.0 - (double)st->ref_len / (double)st->sys_len) : 0.0;
    else out->bp = 1.0;
    int any_correct = 0;
    for (int n = 0; n < order; n++) any_correct |= st->correct[n] != 0;
    if (!any_correct) return;  // sacreBLEU #141: no match at all scores 0
    double smooth_mteval = 1.0;
    int eff_order = order;
    for (int n = 1; n <= order; n++) {
        double correct = (double)st->correct[n - 1], total = (double)st->total[n - 1];
        if (opt->smooth == BLEU_SMOOTH_ADD_K && n > 1) { correct += k; total += k; }
        if (total == 0) break;
        if (opt->effective_order) eff_order = n;
        if (correct == 0) {
            if (opt->smooth == BLEU_SMOOTH_EXP) {
                smooth_mteval *= 2;
                out->precisions[n - 1] = 100.0 / (smooth_mteval * total);
            } else if (opt->smooth == BLEU_SMOOTH_FLOOR) {
                out->precisions[n - 1] = 100.0 * k / total;
            }
        } else {
            out->precisions[n - 1] = 100.0 * correct / total;
        }
    }
    double log_sum = 0;
    for (int n = 0; n < eff_order; n++) log_sum += my_log(out->precisions[n]);
    out->score = out->bp * exp(log_sum / eff_order);
}

int bleu_corpus(BleuScore *out, BleuStats *stats_out, const BleuOptions *opt, const char *const *hyps,
                const char *const *const *refs, int n_sents, int n_ref_streams) {
    BleuStats st;
    bleu_stats_init(&st);
    const char **seg_refs = malloc_check((size_t)(n_ref_streams + 1) * sizeof(char *));
    for (int i = 0; i < n_sents; i++) {
        for (int r = 0; r < n_ref_streams; r++) seg_refs[r] = refs[r][i];
        if (bleu_add_sentence(&st, opt, hyps[i], seg_refs, n_ref_streams) != 0) {
            free(seg_refs);
            return attn_error("segment %d: %s", i + 1, attn_last_error());
        }
    }
    free(seg_refs);
    bleu_compute(out, &st, opt);
    if (stats_out) *stats_out = st;
    return 0;
}

void bleu_format(char *buf, size_t size, const BleuScore *s) {
    int w = snprintf(buf, size, "BLEU = %.2f ", s->score);
    for (int n = 0; n < s->max_order && w >= 0 && (size_t)w < size; n++)
        w += snprintf(buf + w, size - (size_t)w, "%s%.1f", n ? "/" : "", s->precisions[n]);
    if (w >= 0 && (size_t)w < size)
        snprintf(buf + w, size - (size_t)w, " (BP = %.3f ratio = %.3f hyp_len = %ld ref_len = %ld)",
                 s->bp, s->ratio, s->sys_len, s->ref_len);
}

void bleu_signature(char *buf, size_t size, const BleuStats *st, const BleuOptions *opt) {
    static const char *const smooth_names[] = {"exp", "none", "floor", "add-k"};
    char nrefs[16], smooth[32];
    format_n_refs(nrefs, sizeof nrefs, st->n_refs);
    if (opt->smooth == BLEU_SMOOTH_FLOOR || opt->smooth == BLEU_SMOOTH_ADD_K) {
        double k = opt->smooth_value >= 0 ? opt->smooth_value : (opt->smooth == BLEU_SMOOTH_FLOOR ? 0.1 : 1.0);
        snprintf(smooth, sizeof smooth, "%s[%.2f]", smooth_names[opt->smooth], k);
    } else {
        snprintf(smooth, sizeof smooth, "%s", smooth_names[opt->smooth]);
    }
    snprintf(buf, size, "nrefs:%s|case:mixed|eff:%s|tok:%s|smooth:%s|version:attn-%s", nrefs,
             opt->effective_order ? "yes" : "no", opt->tokenizer == BLEU_TOK_13A ? "13a" : "none",
             smooth, ATTN_VERSION);
}

// ----------------------------------------------------------------------------
// chrF

void chrf_options_default(ChrfOptions *opt) {
    opt->char_order = 6;
    opt->beta = 2;
    opt->whitespace = 0;
    opt->eps_smoothing = 0;
}

void chrf_stats_init(ChrfStats *st) { memset(st, 0, sizeof *st); }

// sacreBLEU's _compute_f_score over [hyp, ref, match] per order; 0..100.
static double chrf_f_score(const long *hyp, const long *ref, const long *match, const ChrfOptions *opt) {
    const double eps = 1e-16;
    double factor = opt->beta * opt->beta, score = 0, avg_prec = 0, avg_rec = 0;
    int effective_order = 0;
    for (int i = 0; i < opt->char_order; i++) {
        double prec = hyp[i] > 0 ? (double)match[i] / (double)hyp[i] : eps;
        double rec = ref[i] > 0 ? (double)match[i] / (double)ref[i] : eps;
        double denom = factor * prec + rec;
        score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
        if (hyp[i] > 0 && ref[i] > 0) {
            avg_prec += prec;
            avg_rec += rec;
            effective_order++;
        }
    }
    if (opt->eps_smoothing) return 100 * score / opt->char_order;
    if (effective_order == 0) return 0;
    avg_prec /= effective_order;
    avg_rec /= effective_order;
    if (avg_prec + avg_rec == 0) return 0;
    return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
}

// Decodes a chrF segment; without whitespace mode it is ''.join(line.split()).
static int chrf_segment(CpBuf *text, const char *line, int keep_whitespace) {
    if (cp_decode(text, line) != 0) return -1;
    if (keep_whitespace) return 0;
    int k = 0;
    for (int i = 0; i < text->n; i++)
        if (!py_isspace(text->cp[i])) text->cp[k++] = text->cp[i];
    text->n = k;
    return 0;
}

int chrf_add_sentence(ChrfStats *st, const ChrfOptions *opt, const char *hyp,
                      const char *const *refs, int n_refs) {
    if (opt->char_order < 1 || opt->char_order > CHRF_MAX_ORDER)
        return attn_error("chrF character order %d is outside [1, %d]", opt->char_order, CHRF_MAX_ORDER);
    CpBuf h = {0}, r = {0};
    long best_hyp[CHRF_MAX_ORDER], best_ref[CHRF_MAX_ORDER], best_match[CHRF_MAX_ORDER];
    double best_f = -1;
    int used = 0, rc = 0;
    if (chrf_segment(&h, hyp, opt->whitespace) != 0) { rc = -1; goto done; }
    for (int k = 0; k < n_refs; k++) {
        if (!refs[k] || refs[k][0] == '\0') continue;  // sacreBLEU drops empty references
        if (chrf_segment(&r, refs[k], opt->whitespace) != 0) { rc = -1; goto done; }
        used++;
        long nh[CHRF_MAX_ORDER], nr[CHRF_MAX_ORDER], nm[CHRF_MAX_ORDER];
        const uint32_t *seq[2] = {h.cp, r.cp};
        int len[2] = {h.n, r.n};
        for (int n = 1; n <= opt->char_order; n++) {
            match_ngrams(seq, len, 2, n, &nh[n - 1], &nm[n - 1], &nr[n - 1]);
            if (nr[n - 1] == 0) nh[n - 1] = 0;  // "don't count hits if no reference exists for that n-gram"
        }
        double f = chrf_f_score(nh, nr, nm, opt);
        if (f > best_f) {
            best_f = f;
            memcpy(best_hyp, nh, sizeof nh);
            memcpy(best_ref, nr, sizeof nr);
            memcpy(best_match, nm, sizeof nm);
        }
    }
    if (used == 0) { rc = attn_error("a segment has no non-empty reference"); goto done; }
    track_n_refs(&st->n_refs, st->n_sentences, used);
    st->n_sentences++;
    for (int n = 0; n < opt->char_order; n++) {
        st->hyp[n] += best_hyp[n];
        st->ref[n] += best_ref[n];
        st->match[n] += best_match[n];
    }
done:
    free(h.cp);
    free(r.cp);
    return rc;
}

double chrf_compute(const ChrfStats *st, const ChrfOptions *opt) {
    return chrf_f_score(st->hyp, st->ref, st->match, opt);
}

int chrf_corpus(double *score, ChrfStats *stats_out, const ChrfOptions *opt, const char *const *hyps,
                const char *const *const *refs, int n_sents, int n_ref_streams) {
    ChrfStats st;
    chrf_stats_init(&st);
    const char **seg_refs = malloc_check((size_t)(n_ref_streams + 1) * sizeof(char *));
    for (int i = 0; i < n_sents; i++) {
        for (int r = 0; r < n_ref_streams; r++) seg_refs[r] = refs[r][i];
        if (chrf_add_sentence(&st, opt, hyps[i], seg_refs, n_ref_streams) != 0) {
            free(seg_refs);
            return attn_error("segment %d: %s", i + 1, attn_last_error());
        }
    }
    free(seg_refs);
    *score = chrf_compute(&st, opt);
    if (stats_out) *stats_out = st;
    return 0;
}

void chrf_format(char *buf, size_t size, double score, const ChrfOptions *opt) {
    snprintf(buf, size, "chrF%g = %.2f", opt->beta, score);
}

void chrf_signature(char *buf, size_t size, const ChrfStats *st, const ChrfOptions *opt) {
    char nrefs[16];
    format_n_refs(nrefs, sizeof nrefs, st->n_refs);
    snprintf(buf, size, "nrefs:%s|case:mixed|eff:%s|nc:%d|nw:0|space:%s|version:attn-%s", nrefs,
             opt->eps_smoothing ? "no" : "yes", opt->char_order, opt->whitespace ? "yes" : "no", ATTN_VERSION);
}

// ----------------------------------------------------------------------------
// G2P: WER and PER

// Splits s at ASCII whitespace into at most `max` tokens pointing into `copy`
// (a modifiable copy of s); returns the count.
static int split_words(char *copy, char **words, int max) {
    int n = 0;
    for (char *p = copy; *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') *p++ = '\0';
        if (!*p) break;
        if (n < max) words[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
    }
    return n;
}

static int count_words(const char *s) {
    int n = 0, in_word = 0;
    for (; *s; s++) {
        int space = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
        if (!space && !in_word) n++;
        in_word = !space;
    }
    return n;
}

long edit_distance_tokens(const char *const *a, int na, const char *const *b, int nb) {
    long *prev = malloc_check((size_t)(nb + 1) * sizeof(long));
    long *cur = malloc_check((size_t)(nb + 1) * sizeof(long));
    for (int j = 0; j <= nb; j++) prev[j] = j;
    for (int i = 1; i <= na; i++) {
        cur[0] = i;
        for (int j = 1; j <= nb; j++) {
            long sub = prev[j - 1] + (strcmp(a[i - 1], b[j - 1]) != 0);
            long del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        long *t = prev; prev = cur; cur = t;
    }
    long d = prev[nb];
    free(prev);
    free(cur);
    return d;
}

int g2p_add_word(G2PStats *st, const char *hyp, const char *const *refs, int n_refs) {
    if (n_refs < 1) return attn_error("a word has no reference pronunciation");
    char *hcopy = strdup_check(hyp);
    int hmax = count_words(hyp);
    char **hw = malloc_check((size_t)(hmax + 1) * sizeof(char *));
    int nh = split_words(hcopy, hw, hmax);
    long best_dist = -1, best_len = 0;
    for (int r = 0; r < n_refs; r++) {
        char *rcopy = strdup_check(refs[r]);
        int rmax = count_words(refs[r]);
        char **rw = malloc_check((size_t)(rmax + 1) * sizeof(char *));
        int nr = split_words(rcopy, rw, rmax);
        long d = edit_distance_tokens((const char *const *)hw, nh, (const char *const *)rw, nr);
        if (best_dist < 0 || d < best_dist) { best_dist = d; best_len = nr; }
        free(rw);
        free(rcopy);
    }
    st->words++;
    st->word_errors += best_dist != 0;
    st->phone_edits += best_dist;
    st->ref_phones += best_len;
    free(hw);
    free(hcopy);
    return 0;
}

double g2p_wer(const G2PStats *st) { return st->words ? 100.0 * (double)st->word_errors / (double)st->words : 0; }
double g2p_per(const G2PStats *st) { return st->ref_phones ? 100.0 * (double)st->phone_edits / (double)st->ref_phones : 0; }

// ----------------------------------------------------------------------------
// Exact match

// Compares two strings token by token (ASCII whitespace runs are one separator).
static int same_tokens(const char *a, const char *b) {
    for (;;) {
        while (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n') a++;
        while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n') b++;
        if (!*a || !*b) return !*a && !*b;
        while (*a && *b && *a == *b && *a != ' ' && *a != '\t' && *a != '\r' && *a != '\n') { a++; b++; }
        int end_a = !*a || *a == ' ' || *a == '\t' || *a == '\r' || *a == '\n';
        int end_b = !*b || *b == ' ' || *b == '\t' || *b == '\r' || *b == '\n';
        if (!end_a || !end_b) return 0;
    }
}

void exact_add(ExactStats *st, const char *hyp, const char *const *refs, int n_refs) {
    int hit = 0;
    for (int r = 0; r < n_refs && !hit; r++) hit = same_tokens(hyp, refs[r]);
    st->segments++;
    st->exact += hit;
}

double exact_accuracy(const ExactStats *st) { return st->segments ? 100.0 * (double)st->exact / (double)st->segments : 0; }

// ----------------------------------------------------------------------------
// Token loss, perplexity, accuracy

void token_stats_add(TokenStats *st, const float *logits, const int *targets, long n, int V) {
    for (long i = 0; i < n; i++) {
        if (targets[i] == 0) continue;  // PAD
        const float *row = logits + i * (long)V;
        int argmax = 0;
        for (int v = 1; v < V; v++) if (row[v] > row[argmax]) argmax = v;
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp((double)row[v] - row[argmax]);
        st->nll_sum += log(sum) + row[argmax] - row[targets[i]];
        st->tokens++;
        st->correct += argmax == targets[i];
    }
}

double token_loss(const TokenStats *st) { return st->tokens ? st->nll_sum / (double)st->tokens : 0; }
double token_perplexity(const TokenStats *st) { return exp(token_loss(st)); }
double token_accuracy(const TokenStats *st) { return st->tokens ? 100.0 * (double)st->correct / (double)st->tokens : 0; }
