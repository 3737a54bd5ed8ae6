// Metrics against sacreBLEU's own test suite (expected numbers copied from
// mjpost/sacrebleu test/test_bleu.py, test/test_sentence_bleu.py,
// test/test_chrf.py and the README example), plus hand-computed WER/PER,
// exact-match and token-loss cases.
#include "test.h"
#include "metrics.h"
#include "common.h"
#include <stdlib.h>
#include <string.h>

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

// ---------------------------------------------------------------------------
// BLEU

// test_bleu.py: the README example, two reference streams.
static const char *readme_hyps[] = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
static const char *readme_ref1[] = {"The dog bit the man.", "It was not unexpected.", "The man bit him first."};
static const char *readme_ref2[] = {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."};

static double corpus_bleu(const BleuOptions *opt, const char **hyps, const char **r1, const char **r2, int n) {
    const char *const *refs[2] = {r1, r2};
    BleuScore s;
    if (bleu_corpus(&s, NULL, opt, hyps, refs, n, r2 ? 2 : 1) != 0) return -1;
    return s.score;
}

static void test_bleu_readme(void) {
    BleuOptions opt;
    bleu_options_default(&opt);
    const char *const *refs[2] = {readme_ref1, readme_ref2};
    BleuScore s;
    BleuStats st;
    CHECK(bleu_corpus(&s, &st, &opt, readme_hyps, refs, 3, 2) == 0, "bleu readme example computes");
    CHECK(fabs(s.score - 48.530827) < 1e-5, "bleu default settings 48.530827 (test_bleu.py), got %.6f", s.score);
    char line[256], sig[256];
    bleu_format(line, sizeof line, &s);
    CHECK(!strcmp(line, "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"),
          "bleu line format as sacreBLEU: %s", line);
    bleu_signature(sig, sizeof sig, &st, &opt);
    CHECK(starts_with(sig, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:attn-"), "bleu signature: %s", sig);

    // README "Variable Number of References": first reference of segment 1 empty.
    const char *var_ref1[] = {"", "It was not unexpected.", "The man bit him first."};
    const char *const *var_refs[2] = {var_ref1, readme_ref2};
    CHECK(bleu_corpus(&s, &st, &opt, readme_hyps, var_refs, 3, 2) == 0, "bleu variable references computes");
    bleu_format(line, sizeof line, &s);
    CHECK(!strcmp(line, "BLEU = 29.44 82.4/42.9/27.3/12.5 (BP = 0.889 ratio = 0.895 hyp_len = 17 ref_len = 19)"),
          "bleu variable references as README: %s", line);
    bleu_signature(sig, sizeof sig, &st, &opt);
    CHECK(starts_with(sig, "nrefs:var|"), "bleu variable references signature: %s", sig);
    // README: chrf.corpus_score(sys, refs) -> chrF2 = 59.73
    ChrfOptions copt;
    chrf_options_default(&copt);
    double chrf;
    CHECK(chrf_corpus(&chrf, NULL, &copt, readme_hyps, refs, 3, 2) == 0, "chrF readme example computes");
    chrf_format(line, sizeof line, chrf, &copt);
    CHECK(!strcmp(line, "chrF2 = 59.73"), "chrF2 readme example = 59.73 (README.md), got %s", line);

    const char *empty[] = {"", "", ""};
    double e = corpus_bleu(&opt, empty, readme_ref1, readme_ref2, 3);
    CHECK(e == 0.0, "bleu empty hypotheses are kept and score 0 (test_bleu.py), got %f", e);

    opt.tokenizer = BLEU_TOK_NONE;
    double none = corpus_bleu(&opt, readme_hyps, readme_ref1, readme_ref2, 3);
    CHECK(fabs(none - 49.1919566) < 1e-5, "bleu tokenize=none 49.1919566 (test_bleu.py), got %.7f", none);
    bleu_options_default(&opt);
    opt.smooth = BLEU_SMOOTH_NONE;
    double nosmooth = corpus_bleu(&opt, readme_hyps, readme_ref1, readme_ref2, 3);
    CHECK(fabs(nosmooth - 48.530827) < 1e-5, "bleu smooth=none 48.530827 (test_bleu.py), got %.6f", nosmooth);

    // test_bleu.py test_bleu_max_order: formatted to 2 decimals.
    static const char *expected[] = {"77.65", "60.50", "53.93", "48.53", "46.14", "43.28"};
    for (int order = 1; order <= 6; order++) {
        bleu_options_default(&opt);
        opt.max_order = order;
        char got[32];
        snprintf(got, sizeof got, "%.2f", corpus_bleu(&opt, readme_hyps, readme_ref1, readme_ref2, 3));
        CHECK(!strcmp(got, expected[order - 1]), "bleu max_ngram_order %d = %s (test_bleu.py), got %s", order,
              expected[order - 1], got);
    }
}

// compat.raw_corpus_bleu: floor smoothing, no tokenization, effective order.
static double raw_bleu(const char **hyps, const char **refs, int n, double floor_value) {
    BleuOptions opt;
    bleu_options_default(&opt);
    opt.smooth = BLEU_SMOOTH_FLOOR;
    opt.smooth_value = floor_value;
    opt.tokenizer = BLEU_TOK_NONE;
    opt.effective_order = 1;
    return corpus_bleu(&opt, hyps, refs, NULL, n);
}

static void test_bleu_raw(void) {
    const char *h1[] = {"this is a test", "another test"}, *r1[] = {"ref1", "ref2"};
    const char *h2[] = {"this is a test"}, *r2[] = {"this is a test"};
    const char *h3[] = {"this is a fest"}, *r3[] = {"this is a test"};
    CHECK(raw_bleu(h1, r1, 2, 0.01) == 0.0, "raw bleu no match is 0 (#141, test_bleu.py)");
    CHECK(fabs(raw_bleu(h2, r2, 1, 0.01) - 100.0) < 1e-6, "raw bleu identical is 100 (test_bleu.py)");
    CHECK(fabs(raw_bleu(h3, r3, 1, 0.01) - 22.3606797749979) < 1e-6, "raw bleu one word off 0.2236 (test_bleu.py)");
    // test_effective_order
    const char *e1[] = {"test"}, *e2[] = {"a test"}, *e3[] = {"a little test"}, *er[] = {"a test"};
    CHECK(fabs(raw_bleu(e1, er, 1, 0.01) - 36.78794411714425) < 1e-6, "raw bleu effective order 'test' (test_bleu.py)");
    CHECK(fabs(raw_bleu(e2, er, 1, 0.01) - 100.0) < 1e-6, "raw bleu effective order 'a test' (test_bleu.py)");
    CHECK(fabs(raw_bleu(e3, er, 1, 0.01) - 3.218297948685433) < 1e-6, "raw bleu effective order 'a little test' (test_bleu.py)");
    // test_statistics and test_offset
    const char *oh[] = {"am I am a character sequence"}, *orf[] = {"I am a symbol string sequence a a"};
    BleuOptions opt;
    bleu_options_default(&opt);
    opt.tokenizer = BLEU_TOK_NONE;
    BleuStats st;
    bleu_stats_init(&st);
    bleu_add_sentence(&st, &opt, oh[0], orf, 1);
    CHECK(st.correct[0] == 4 && st.correct[1] == 2 && st.correct[2] == 1 && st.correct[3] == 0 &&
          st.total[0] == 6 && st.total[1] == 5 && st.total[2] == 4 && st.total[3] == 3,
          "bleu statistics [4,2,1,0]/[6,5,4,3] (test_bleu.py)");
    CHECK(fabs(raw_bleu(oh, orf, 1, 0.1) - 15.55722182) < 1e-6, "raw bleu floor 0.1 = 0.1555722182 (test_bleu.py)");
    CHECK(raw_bleu(oh, orf, 1, 0.0) == 0.0, "raw bleu floor 0 = 0 (test_bleu.py)");
    // test_scoring: compute_bleu from statistics, default smoothing 'none'
    bleu_stats_init(&st);
    long c[] = {9, 7, 5, 3}, t[] = {10, 8, 6, 4};
    for (int n = 0; n < 4; n++) { st.correct[n] = c[n]; st.total[n] = t[n]; }
    st.sys_len = st.ref_len = 11;
    opt.smooth = BLEU_SMOOTH_NONE;
    BleuScore s;
    bleu_compute(&s, &st, &opt);
    CHECK(fabs(s.score - 83.75922397) < 1e-6, "bleu from statistics 0.8375922397 (test_bleu.py), got %.8f", s.score);
}

// test_sentence_bleu.py (example from sacreBLEU issue #98), effective order on.
static void test_bleu_sentence(void) {
    const char *ref[] = {"producţia de zahăr brut se exprimă în zahăr alb;"};
    const char *sys[] = {"Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"};
    struct { BleuSmooth smooth; double value; BleuTokenizer tok; double expected; const char *name; } cases[] = {
        {BLEU_SMOOTH_EXP, -1, BLEU_TOK_13A, 8.493, "exp"},
        {BLEU_SMOOTH_NONE, -1, BLEU_TOK_13A, 0.0, "none"},
        {BLEU_SMOOTH_FLOOR, -1, BLEU_TOK_13A, 4.51688, "floor default"},
        {BLEU_SMOOTH_FLOOR, 0.1, BLEU_TOK_13A, 4.51688, "floor 0.1"},
        {BLEU_SMOOTH_FLOOR, 0.5, BLEU_TOK_13A, 10.10, "floor 0.5"},
        {BLEU_SMOOTH_ADD_K, -1, BLEU_TOK_13A, 14.882, "add-k default"},
        {BLEU_SMOOTH_ADD_K, 1, BLEU_TOK_13A, 14.882, "add-k 1"},
        {BLEU_SMOOTH_ADD_K, 2, BLEU_TOK_13A, 21.389, "add-k 2"},
        {BLEU_SMOOTH_EXP, -1, BLEU_TOK_NONE, 7.347, "exp tok none"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        BleuOptions opt;
        bleu_options_default(&opt);
        opt.smooth = cases[i].smooth;
        opt.smooth_value = cases[i].value;
        opt.tokenizer = cases[i].tok;
        opt.effective_order = 1;
        double got = corpus_bleu(&opt, sys, ref, NULL, 1);
        CHECK(fabs(got - cases[i].expected) < 1e-3, "sentence bleu %s = %g (test_sentence_bleu.py), got %.5f",
              cases[i].name, cases[i].expected, got);
    }
    const char *ref0[] = {"okay thanks"}, *sys0[] = {"this is a cat"};
    BleuSmooth smooths[] = {BLEU_SMOOTH_EXP, BLEU_SMOOTH_NONE, BLEU_SMOOTH_FLOOR, BLEU_SMOOTH_ADD_K};
    int all_zero = 1;
    for (int i = 0; i < 4; i++) {
        BleuOptions opt;
        bleu_options_default(&opt);
        opt.smooth = smooths[i];
        opt.effective_order = 1;
        all_zero &= corpus_bleu(&opt, sys0, ref0, NULL, 1) == 0.0;
    }
    CHECK(all_zero, "sentence bleu without any match is 0 for every smoothing (#141, test_sentence_bleu.py)");
}

static void test_tokenizer_13a(void) {
    struct { const char *in, *out; } cases[] = {
        {"Hello, world!", "Hello , world !"},
        {"It cost $3.50.", "It cost $ 3.50 ."},
        {"1,000 people", "1,000 people"},
        {"a-b 1-2 (x)", "a-b 1 - 2 ( x )"},
        {"&quot;quoted&quot; &amp;lt;", "\" quoted \" <"},   // str.replace in sequence: &amp; then &lt;
        {"wasn't  <skipped>trailing   ", "wasn't trailing"},
        {"zahăr alb;\xe3\x80\x80", "zahăr alb ;"},   // U+3000 is whitespace to Python
        {"..a", ". . a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = bleu_tokenize_13a(cases[i].in);
        CHECK(got && !strcmp(got, cases[i].out), "13a tokenizes '%s' as '%s', got '%s'", cases[i].in, cases[i].out,
              got ? got : "(null)");
        free(got);
    }
    CHECK(bleu_tokenize_13a("bad \xff byte") == NULL, "13a rejects invalid UTF-8");
}

static void test_bleu_refs(void) {
    BleuOptions opt;
    bleu_options_default(&opt);
    BleuStats st;
    bleu_stats_init(&st);
    const char *two[] = {"a b c d", ""};
    const char *both[] = {"a b c d", "a b"};
    CHECK(bleu_add_sentence(&st, &opt, "a b c d", both, 2) == 0, "bleu adds a segment with two references");
    CHECK(bleu_add_sentence(&st, &opt, "a b c d", two, 2) == 0, "bleu skips an empty reference");
    char sig[256];
    bleu_signature(sig, sizeof sig, &st, &opt);
    CHECK(starts_with(sig, "nrefs:var|"), "bleu signature says nrefs:var when counts differ: %s", sig);
    const char *none[] = {"", ""};
    CHECK(bleu_add_sentence(&st, &opt, "x", none, 2) != 0, "bleu rejects a segment without a reference");
    // closest reference length: hyp 3 tokens, refs of 2 and 4 tokens -> tie goes to the shorter
    bleu_stats_init(&st);
    const char *tie[] = {"a b c d", "a b"};
    bleu_add_sentence(&st, &opt, "a b c", tie, 2);
    CHECK(st.sys_len == 3 && st.ref_len == 2, "bleu closest reference length ties to the shorter (ref_len %ld)", st.ref_len);
    // clipping by the max count over references
    bleu_stats_init(&st);
    const char *clip[] = {"the cat", "the the"};
    bleu_add_sentence(&st, &opt, "the the the", clip, 2);
    CHECK(st.correct[0] == 2 && st.total[0] == 3, "bleu clips unigram 'the' at the max reference count 2");
}

// ---------------------------------------------------------------------------
// chrF

static double chrf_one(const char *hyp, const char *ref, double beta, int eps, int whitespace) {
    ChrfOptions opt;
    chrf_options_default(&opt);
    opt.beta = beta;
    opt.eps_smoothing = eps;
    opt.whitespace = whitespace;
    ChrfStats st;
    chrf_stats_init(&st);
    const char *refs[] = {ref};
    if (chrf_add_sentence(&st, &opt, hyp, refs, 1) != 0) return -1;
    return chrf_compute(&st, &opt);
}

static void test_chrf(void) {
    // test_chrf.py test_chrf_sentence_level: sentence_chrf(..., eps_smoothing=True), beta 2
    struct { const char *hyp, *ref; double expected; } sent[] = {
        {"Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
         "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", 39.14078509},
        {"Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
         "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", 31.22557079},
        {"Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
         "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", 57.15704367},
    };
    for (int i = 0; i < 3; i++) {
        double got = chrf_one(sent[i].hyp, sent[i].ref, 2, 1, 0);
        CHECK(fabs(got - sent[i].expected) < 1e-4, "chrF2 eps sentence %d = %.8f (test_chrf.py), got %.8f", i,
              sent[i].expected, got);
    }
    // test_chrf.py test_cases: beta 3, eps smoothing
    struct { const char *hyp, *ref; double expected; } eps[] = {
        {"abcdefg", "hijklmnop", 0.0}, {"a", "b", 0.0}, {"", "b", 0.0}, {"", "ref", 0.0},
        {"", "reference", 0.0}, {"aa", "ab", 8.3333}, {"a", "a", 16.6667}, {"a b c", "a b c", 50.0},
        {"a b c", "abc", 50.0},
        {" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
         "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .",
         63.361730},
        {" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. ",
         "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 64.1302698},
        {"Niemand hat die Absicht, eine Mauer zu errichten", "Niemand hat die Absicht, eine Mauer zu errichten", 100.0},
    };
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        double got = chrf_one(eps[i].hyp, eps[i].ref, 3, 1, 0);
        CHECK(fabs(got - eps[i].expected) < 1e-4, "chrF3 eps '%.20s' = %g (test_chrf.py), got %.6f", eps[i].hyp,
              eps[i].expected, got);
    }
    // test_chrf.py test_cases_effective_order: beta 3, sacreBLEU's default averaging
    struct { const char *hyp, *ref; double expected; } eff[] = {
        {"a", "a", 100.0}, {"", "reference", 0.0}, {"a b c", "a b c", 100.0},
        {"a b c", "abc", 100.0}, {"", "c", 0.0}, {"aa", "ab", 25.0},
    };
    for (size_t i = 0; i < sizeof eff / sizeof eff[0]; i++) {
        double got = chrf_one(eff[i].hyp, eff[i].ref, 3, 0, 0);
        CHECK(fabs(got - eff[i].expected) < 1e-4, "chrF3 effective order '%s' = %g (test_chrf.py), got %.6f",
              eff[i].hyp, eff[i].expected, got);
    }
    // corpus: ["a", "b"] vs ["a", "c"] -> statistics summed, then F: 50.0 (eff) and 8.3333 (eps)
    const char *hyps[] = {"a", "b"}, *refs1[] = {"a", "c"};
    const char *const *refs[] = {refs1};
    ChrfOptions opt;
    chrf_options_default(&opt);
    opt.beta = 3;
    double score;
    chrf_corpus(&score, NULL, &opt, hyps, refs, 2, 1);
    CHECK(fabs(score - 50.0) < 1e-4, "chrF3 corpus statistics summed: 50.0 (test_chrf.py), got %.6f", score);
    opt.eps_smoothing = 1;
    chrf_corpus(&score, NULL, &opt, hyps, refs, 2, 1);
    CHECK(fabs(score - 8.3333) < 1e-4, "chrF3 eps corpus 8.3333 (test_chrf.py), got %.6f", score);
    // test_chrf.py test_cases_keep_whitespace: beta 3, whitespace kept, effective order
    double ws1 = chrf_one("Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich.",
                          "Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich.", 3, 0, 1);
    CHECK(fabs(ws1 - 67.3481606) < 1e-4, "chrF3 whitespace kept 67.3481606 (test_chrf.py), got %.7f", ws1);
    double ws2 = chrf_one("risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists .",
                          "risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists .", 3, 0, 1);
    CHECK(fabs(ws2 - 65.2414427) < 1e-4, "chrF3 whitespace kept 65.2414427 (test_chrf.py), got %.7f", ws2);

    // multiple references: the best-F reference is taken per segment
    chrf_options_default(&opt);
    ChrfStats st;
    chrf_stats_init(&st);
    const char *multi[] = {"totally different", "Niemand hat die Absicht"};
    chrf_add_sentence(&st, &opt, "Niemand hat die Absicht", multi, 2);
    CHECK(fabs(chrf_compute(&st, &opt) - 100.0) < 1e-9, "chrF picks the best of several references");
    char line[64], sig[256];
    chrf_format(line, sizeof line, 61.576379378113785, &opt);
    CHECK(!strcmp(line, "chrF2 = 61.58"), "chrF line format: %s", line);
    chrf_signature(sig, sizeof sig, &st, &opt);
    CHECK(starts_with(sig, "nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:attn-"), "chrF signature: %s", sig);
    CHECK(chrf_add_sentence(&st, &opt, "x\xc3(", multi, 2) != 0, "chrF rejects invalid UTF-8");
}

// ---------------------------------------------------------------------------
// G2P, exact match, token statistics (hand-computed)

static void test_g2p(void) {
    const char *a[] = {"K", "IH", "T", "AH", "N"}, *b[] = {"S", "IH", "T", "IH", "NG"};
    CHECK(edit_distance_tokens(a, 5, b, 5) == 3, "edit distance KITTEN/SITTING-like phonemes is 3");
    CHECK(edit_distance_tokens(a, 5, b, 0) == 5 && edit_distance_tokens(a, 0, b, 5) == 5, "edit distance to empty");
    G2PStats st = {0};
    const char *r1[] = {"K AE T"};
    const char *r2[] = {"T AH M EY T OW", "T AH M AA T OW"};
    const char *r3[] = {"R EH D", "R IY D IH"};
    const char *r4[] = {"AH"};
    g2p_add_word(&st, "K AE T", r1, 1);          // exact: 0 edits, ref 3
    g2p_add_word(&st, "T AH M AA T OW", r2, 2);  // matches the 2nd reference: 0 edits, ref 6
    g2p_add_word(&st, "R IY D", r3, 2);          // 1 edit to both; tie -> first (3 phonemes)
    g2p_add_word(&st, "", r4, 1);                // empty hypothesis: 1 edit, ref 1
    CHECK(st.words == 4 && st.word_errors == 2, "g2p counts 2 wrong words of 4");
    CHECK(fabs(g2p_wer(&st) - 50.0) < 1e-12, "g2p WER 50%%, got %f", g2p_wer(&st));
    CHECK(st.phone_edits == 2 && st.ref_phones == 13, "g2p PER sums edits 2 over closest refs 13 (got %ld/%ld)",
          st.phone_edits, st.ref_phones);
    CHECK(fabs(g2p_per(&st) - 200.0 / 13.0) < 1e-12, "g2p PER 15.38%%, got %f", g2p_per(&st));
    const char *r5[] = {"AA B K", "AA B"};
    G2PStats st2 = {0};
    g2p_add_word(&st2, "AA B K D", r5, 2);  // 1 edit to the first (len 3), 2 to the second
    CHECK(st2.phone_edits == 1 && st2.ref_phones == 3, "g2p PER takes the closest reference's length");
    CHECK(g2p_add_word(&st2, "X", r5, 0) != 0, "g2p rejects a word without references");
}

static void test_exact_and_tokens(void) {
    ExactStats ex = {0};
    const char *refs[] = {"a  b", "c"};
    exact_add(&ex, " a b ", refs, 2);
    exact_add(&ex, "c", refs, 2);
    exact_add(&ex, "a", refs, 2);
    exact_add(&ex, "ab", refs, 2);
    CHECK(ex.segments == 4 && ex.exact == 2, "exact match ignores whitespace runs, not content");
    CHECK(fabs(exact_accuracy(&ex) - 50.0) < 1e-12, "exact accuracy 50%%");

    float logits[] = {0, 0, 0,   1, 3, 2,   5, 0, 0};
    int targets[] = {1, 1, 0};
    TokenStats ts = {0};
    token_stats_add(&ts, logits, targets, 3, 3);
    double nll = log(3.0) + (log(exp(1.0) + exp(3.0) + exp(2.0)) - 3.0);
    CHECK(ts.tokens == 2 && ts.correct == 1, "token stats skip PAD and count argmax hits");
    CHECK(fabs(ts.nll_sum - nll) < 1e-6, "token NLL sum %.6f, got %.6f", nll, ts.nll_sum);
    CHECK(fabs(token_loss(&ts) - nll / 2) < 1e-6 && fabs(token_perplexity(&ts) - exp(nll / 2)) < 1e-5,
          "token loss and perplexity");
    CHECK(fabs(token_accuracy(&ts) - 50.0) < 1e-12, "token accuracy 50%%");
}

int main(void) {
    test_bleu_readme();
    test_bleu_raw();
    test_bleu_sentence();
    test_tokenizer_13a();
    test_bleu_refs();
    test_chrf();
    test_g2p();
    test_exact_and_tokens();
    TEST_EXIT();
}
