// Tokenizers: a hand-computed BPE example, BPE-dropout, char and word
// tokenizers, unknowns, spaces, save/load, decoding rules, bad files.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "common.h"
#include "test.h"
#include "tokenizer.h"

#define MAX_IDS 256

static int ids_equal(const int *a, int na, const int *b, int nb) {
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

static int encode(const Tokenizer *t, const char *text, int *ids) {
    return tokenizer_encode(t, text, ids, MAX_IDS, 0.0f, NULL);
}

// encode then decode gives back text exactly
static int round_trips(const Tokenizer *t, const char *text) {
    int ids[MAX_IDS];
    char out[4 * MAX_IDS];
    int n = encode(t, text, ids);
    return n >= 0 && tokenizer_decode(t, ids, n, out, sizeof out) >= 0 && strcmp(out, text) == 0;
}

static Tokenizer *learn(TokenizerType type, const char *const *lines, long n, int vocab, long min_freq, int byte_fallback) {
    TokenizerOptions o;
    tokenizer_options_default(&o, type);
    o.vocab_size = vocab;
    o.min_frequency = min_freq;
    o.byte_fallback = byte_fallback;
    Tokenizer *t = NULL;
    if (tokenizer_learn(&t, type, lines, n, &o)) printf("INFO learn failed: %s\n", attn_last_error());
    return t;
}

// Corpus "ab ab abc" / "bc": words ▁ab x2, ▁abc, ▁bc. Pieces 4 ▁, then by
// count b(4)=5 a(3)=6 c(2)=7. Pair counts (▁,a)=3 (a,b)=3 (b,c)=2 (▁,b)=1;
// ties go to the bytewise smaller left piece ("a" < "▁"), so the merges are
// ab=8, ▁ab=9, then at count 1: bc=10 ("b" < "▁" < "▁ab"), ▁bc=11, ▁abc=12.
static void test_bpe_hand_computed(void) {
    const char *lines[] = {"ab ab abc", "bc"};
    Tokenizer *t = learn(TOKENIZER_BPE, lines, 2, 13, 1, 0);
    CHECK(t && tokenizer_vocab_size(t) == 13, "bpe example: 13 pieces");
    if (!t) return;
    const char *want[] = {"<pad>", "<unk>", "<s>", "</s>", "\xE2\x96\x81", "b", "a", "c",
                          "ab", "\xE2\x96\x81" "ab", "bc", "\xE2\x96\x81" "bc", "\xE2\x96\x81" "abc"};
    int same = 1;
    for (int i = 0; i < 13; i++) same &= strcmp(tokenizer_piece(t, i), want[i]) == 0;
    CHECK(same, "bpe example: pieces and merge order as computed by hand");
    int ids[MAX_IDS];
    int n = encode(t, "abc bc cab", ids);
    CHECK(ids_equal(ids, n, (int[]){12, 11, 4, 7, 8}, 5), "bpe example: 'abc bc cab' -> ▁abc ▁bc ▁ c ab");
    tokenizer_free(t);

    // a cap of 11 pieces keeps the first three merges: ab, ▁ab, bc
    t = learn(TOKENIZER_BPE, lines, 2, 11, 1, 0);
    n = t ? encode(t, "abc bc cab", ids) : -1;
    CHECK(ids_equal(ids, n, (int[]){9, 7, 4, 10, 4, 7, 8}, 7), "bpe example, vocab 11: ▁ab c ▁ bc ▁ c ab");
    tokenizer_free(t);

    // min frequency 2 stops after the pairs seen 3 times: ab, ▁ab
    t = learn(TOKENIZER_BPE, lines, 2, 100, 2, 0);
    CHECK(t && tokenizer_vocab_size(t) == 10, "bpe example, min frequency 2: two merges");
    tokenizer_free(t);
}

// "aaa": (a,a) occurs twice, overlapping. Merges aa=6, then (aa,a) ("aa" <
// "▁") = aaa=7, then ▁aaa=8. "aaaaa" encodes as replaying the merges in order:
// aa aa a -> aa aaa.
static void test_bpe_overlapping_pairs(void) {
    const char *lines[] = {"aaa"};
    Tokenizer *t = learn(TOKENIZER_BPE, lines, 1, 100, 1, 0);
    CHECK(t && tokenizer_vocab_size(t) == 9, "bpe 'aaa': three merges");
    if (!t) return;
    CHECK(strcmp(tokenizer_piece(t, 7), "aaa") == 0 && strcmp(tokenizer_piece(t, 8), "\xE2\x96\x81" "aaa") == 0,
          "bpe 'aaa': pieces aaa and ▁aaa");
    int ids[MAX_IDS];
    int n = encode(t, "aaaaa", ids);
    CHECK(ids_equal(ids, n, (int[]){4, 6, 7}, 3), "bpe 'aaaaa' -> ▁ aa aaa");
    n = encode(t, "aaa", ids);
    CHECK(ids_equal(ids, n, (int[]){8}, 1), "bpe 'aaa' -> ▁aaa");
    tokenizer_free(t);
}

static const char *const corpus[] = {
    "In the beginning God created the heavens and the earth.",
    "The earth was formless and empty. Darkness was on the surface of the deep.",
    "En el principio cre\xC3\xB3 Dios los cielos y la tierra.",
    "Y la tierra estaba desordenada y vac\xC3\xAD" "a, y las tinieblas estaban sobre la faz del abismo.",
    "God said, \xE2\x80\x9CLet there be light,\xE2\x80\x9D and there was light.",
    "Y dijo Dios: Sea la luz: y fu\xC3\xA9 la luz.",
    "God saw the light, and saw that it was good.",
    "Y vi\xC3\xB3 Dios que la luz era buena.",
};
static const long n_corpus = sizeof corpus / sizeof corpus[0];

static void test_bpe_spaces_and_unknowns(void) {
    Tokenizer *t = learn(TOKENIZER_BPE, corpus, n_corpus, 400, 2, 1);
    if (!t) { CHECK(0, "bpe learned from the corpus"); return; }
    int ok = 1;
    for (long i = 0; i < n_corpus; i++) ok &= round_trips(t, corpus[i]);
    CHECK(ok, "bpe: the training lines round-trip");
    CHECK(round_trips(t, "  two leading, two  inner and two trailing  "), "bpe: leading/inner/trailing spaces round-trip");
    CHECK(round_trips(t, " ") && round_trips(t, "   "), "bpe: spaces only round-trip");
    int ids[MAX_IDS];
    CHECK(encode(t, "", ids) == 0 && round_trips(t, ""), "bpe: empty text has no tokens");
    CHECK(round_trips(t, "unseen \xF0\x9F\x98\x80 emoji and \xE4\xB8\xAD\xE6\x96\x87 zq"), "bpe: unseen 3- and 4-byte characters round-trip (bytes)");
    CHECK(round_trips(t, "a\xE2\x96\x81" "b \xE2\x96\x81"), "bpe: a literal U+2581 round-trips");
    CHECK(round_trips(t, "tab\there"), "bpe: a tab round-trips");
    int n = encode(t, "\xF0\x9F\x98\x80", ids);
    CHECK(n == 5 && ids[1] == 4 + 0xF0 && ids[4] == 4 + 0x80, "bpe: an unseen emoji is ▁ + its 4 UTF-8 byte pieces");
    CHECK(strcmp(tokenizer_piece(t, 4 + 0xF0), "<0xF0>") == 0, "bpe: byte piece name <0xF0>");
    CHECK(encode(t, "bad \xC3\x28 utf8", ids) == -1 && strstr(attn_last_error(), "invalid UTF-8"), "bpe: invalid UTF-8 is an error");
    CHECK(tokenizer_encode(t, "the heavens and the earth", ids, 2, 0.0f, NULL) == -1, "bpe: too small an id buffer is an error");
    tokenizer_free(t);

    const char *lines[] = {"ab ab abc", "bc"};
    t = learn(TOKENIZER_BPE, lines, 2, 13, 1, 0);
    n = t ? encode(t, "abz", ids) : -1;
    CHECK(ids_equal(ids, n, (int[]){9, 1}, 2), "bpe without byte fallback: unseen 'z' -> <unk>");
    char out[64];
    CHECK(t && tokenizer_decode(t, ids, n, out, sizeof out) >= 0 && strcmp(out, "ab\xE2\x81\x87") == 0, "bpe: <unk> decodes to U+2047");
    tokenizer_free(t);
}

static int plain_equals_dropout0(const Tokenizer *t, const char *text, Rng *rng) {
    int a[MAX_IDS], b[MAX_IDS];
    int na = encode(t, text, a), nb = tokenizer_encode(t, text, b, MAX_IDS, 0.0f, rng);
    return na >= 0 && ids_equal(a, na, b, nb);
}

static void test_bpe_dropout(void) {
    Tokenizer *t = learn(TOKENIZER_BPE, corpus, n_corpus, 400, 1, 1);
    if (!t) { CHECK(0, "bpe learned for dropout"); return; }
    Rng rng;
    rng_seed(&rng, 7);
    int ok = 1;
    for (long i = 0; i < n_corpus; i++) ok &= plain_equals_dropout0(t, corpus[i], &rng);
    CHECK(ok, "dropout 0 equals plain BPE");

    // p = 1: one piece per character (the marker included), as a char tokenizer would
    const char *text = corpus[2];
    int ids[MAX_IDS], n = tokenizer_encode(t, text, ids, MAX_IDS, 1.0f, &rng);
    int chars_ok = n > 0 && ids[0] == tokenizer_piece_id(t, "\xE2\x96\x81");
    const char *s = text;
    for (int i = 1; i < n && chars_ok; i++) {
        char want[8];
        int len = (*s & 0xE0) == 0xC0 ? 2 : 1;  // the sample has 1- and 2-byte characters only
        if (*s == ' ') { strcpy(want, "\xE2\x96\x81"); } else { memcpy(want, s, (size_t)len); want[len] = '\0'; }
        chars_ok &= strcmp(tokenizer_piece(t, ids[i]), want) == 0;
        s += len;
    }
    CHECK(chars_ok && *s == '\0', "dropout 1 gives characters (%d pieces)", n);

    int a[MAX_IDS], b[MAX_IDS], c[MAX_IDS], plain[MAX_IDS];
    Rng r1, r2;
    rng_seed(&r1, 42);
    rng_seed(&r2, 42);
    int na = tokenizer_encode(t, corpus[0], a, MAX_IDS, 0.3f, &r1);
    int nb = tokenizer_encode(t, corpus[0], b, MAX_IDS, 0.3f, &r2);
    CHECK(na > 0 && ids_equal(a, na, b, nb), "dropout: the same seed gives the same segmentation");
    int n_plain = encode(t, corpus[0], plain), differs = 0, all_decode = 1;
    for (int seed = 1; seed <= 20; seed++) {
        rng_seed(&r1, (uint64_t)seed);
        int nc = tokenizer_encode(t, corpus[0], c, MAX_IDS, 0.3f, &r1);
        differs += !ids_equal(c, nc, a, na);
        char out[1024];
        all_decode &= nc > 0 && tokenizer_decode(t, c, nc, out, sizeof out) >= 0 && strcmp(out, corpus[0]) == 0;
        all_decode &= nc >= n_plain;  // dropout only ever splits more
    }
    CHECK(differs > 0, "dropout: other seeds give other segmentations (%d of 20)", differs);
    CHECK(all_decode, "dropout: every segmentation decodes to the text and is no shorter than plain BPE");
    CHECK(tokenizer_encode(t, "x", ids, MAX_IDS, 1.5f, &rng) == -1, "dropout above 1 is an error");
    tokenizer_free(t);
}

static void test_char_tokenizer(void) {
    const char *lines[] = {"h\xC3\xA9llo w\xC3\xB6rld", "\xF0\x9F\x98\x80 ll"};
    Tokenizer *t = learn(TOKENIZER_CHAR, lines, 2, 0, 1, 0);
    if (!t) { CHECK(0, "char learned"); return; }
    // ▁ forced first (4), then l (5 times) = 5, then the characters seen once
    // by code point: d h o r w é ö 😀 -> 6..13
    CHECK(tokenizer_vocab_size(t) == 14, "char: 14 pieces (%d)", tokenizer_vocab_size(t));
    CHECK(tokenizer_piece_id(t, "l") == 5 && tokenizer_piece_id(t, "d") == 6 && tokenizer_piece_id(t, "o") == 8 &&
          tokenizer_piece_id(t, "\xF0\x9F\x98\x80") == 13, "char: ids by count, then code point");
    int ids[MAX_IDS];
    int n = encode(t, "\xF0\x9F\x98\x80 h\xC3\xA9", ids);
    CHECK(ids_equal(ids, n, (int[]){13, 4, 7, 11}, 4), "char: 4-byte character, space as ▁, 2-byte character");
    CHECK(round_trips(t, " hold  world "), "char: spaces round-trip");
    n = encode(t, "hxz", ids);
    CHECK(ids_equal(ids, n, (int[]){7, 1, 1}, 3), "char: unknown characters -> <unk>");
    tokenizer_free(t);

    t = learn(TOKENIZER_CHAR, lines, 2, 0, 1, 1);
    CHECK(t && tokenizer_vocab_size(t) == 14 + 256, "char with byte fallback: 256 more pieces");
    CHECK(t && round_trips(t, "new \xE2\x82\xAC and \xF0\x9F\x98\x81 and \xE2\x96\x81"), "char with byte fallback: unseen characters round-trip");
    tokenizer_free(t);

    t = learn(TOKENIZER_CHAR, lines, 2, 6, 1, 0);  // specials, ▁, l
    CHECK(t && tokenizer_vocab_size(t) == 6 && tokenizer_piece_id(t, "d") == -1, "char: vocab cap keeps the most frequent");
    tokenizer_free(t);
    t = learn(TOKENIZER_CHAR, lines, 2, 0, 2, 0);  // ▁ forced, l (5)
    CHECK(t && tokenizer_vocab_size(t) == 6, "char: min frequency 2");
    tokenizer_free(t);
}

static void test_word_tokenizer(void) {
    const char *lines[] = {"HH AH0 L OW1", "W ER1 L  D"};
    Tokenizer *t = learn(TOKENIZER_WORD, lines, 2, 0, 1, 0);
    if (!t) { CHECK(0, "word learned"); return; }
    // L (2) first, then the once-seen words bytewise: AH0 D ER1 HH OW1 W
    CHECK(tokenizer_vocab_size(t) == 11 && tokenizer_piece_id(t, "L") == 4 && tokenizer_piece_id(t, "W") == 10,
          "word: 11 pieces, ids by count then bytes");
    int ids[MAX_IDS];
    int n = encode(t, " HH  AH0\tXX <s>", ids);
    CHECK(ids_equal(ids, n, (int[]){8, 5, 1, 1}, 4), "word: spaces and tabs split; unknown and special-looking words -> <unk>");
    char out[256];
    CHECK(tokenizer_decode(t, ids, n, out, sizeof out) > 0 && strcmp(out, "HH AH0 \xE2\x81\x87 \xE2\x81\x87") == 0,
          "word: decode joins with one space");
    tokenizer_free(t);
    t = learn(TOKENIZER_WORD, lines, 2, 5, 1, 0);
    CHECK(t && tokenizer_vocab_size(t) == 5 && tokenizer_piece_id(t, "L") == 4, "word: vocab cap");
    tokenizer_free(t);
}

static void test_decode_rules(void) {
    const char *lines[] = {"ab ab abc", "bc"};
    Tokenizer *t = learn(TOKENIZER_BPE, lines, 2, 13 + 256, 1, 1);
    if (!t) { CHECK(0, "bpe learned for decode"); return; }
    int ab = tokenizer_piece_id(t, "\xE2\x96\x81" "ab"), c = tokenizer_piece_id(t, "c");
    char out[64];
    int ids[] = {TOK_BOS, ab, TOK_PAD, c, TOK_EOS, ab};
    CHECK(tokenizer_decode(t, ids, 6, out, sizeof out) == 3 && strcmp(out, "abc") == 0, "decode skips <s>/<pad> and stops at </s>");
    int bad_bytes[] = {4 + 0xC3, ab, 4 + 0xE2, 4 + 0x82};  // lone lead byte; truncated 3-byte sequence
    CHECK(tokenizer_decode(t, bad_bytes, 4, out, sizeof out) > 0 &&
          strcmp(out, "\xEF\xBF\xBD ab\xEF\xBF\xBD\xEF\xBF\xBD") == 0, "decode: invalid byte runs become U+FFFD");
    int ok_bytes[] = {ab, 4 + 0xC3, 4 + 0xB1};
    CHECK(tokenizer_decode(t, ok_bytes, 3, out, sizeof out) > 0 && strcmp(out, "ab\xC3\xB1") == 0, "decode: byte pieces join into a character");
    int out_of_range[] = {ab, 9999};
    CHECK(tokenizer_decode(t, out_of_range, 2, out, sizeof out) == -1, "decode: an id outside the vocabulary is an error");
    CHECK(tokenizer_decode(t, ids, 6, out, 3) == -1, "decode: too small a buffer is an error");
    tokenizer_free(t);
}

static int same_tokenizer(const Tokenizer *a, const Tokenizer *b) {
    char *sa, *sb;
    tokenizer_to_string(a, &sa);
    tokenizer_to_string(b, &sb);
    int same = strcmp(sa, sb) == 0;
    free(sa); free(sb);
    for (long i = 0; i < n_corpus && same; i++) {
        int x[MAX_IDS], y[MAX_IDS];
        int nx = encode(a, corpus[i], x), ny = encode(b, corpus[i], y);
        same = nx > 0 && ids_equal(x, nx, y, ny);
    }
    return same;
}

static void test_save_load(void) {
    TokenizerType types[] = {TOKENIZER_BPE, TOKENIZER_CHAR, TOKENIZER_WORD};
    for (int k = 0; k < 3; k++) {
        Tokenizer *t = learn(types[k], corpus, n_corpus, types[k] == TOKENIZER_BPE ? 400 : 0, 1, types[k] == TOKENIZER_BPE);
        if (!t) { CHECK(0, "learned for save/load"); continue; }
        char *text, path[64];
        snprintf(path, sizeof path, "/tmp/attn_test_tokenizer_%ld.tok", (long)getpid());
        tokenizer_to_string(t, &text);
        Tokenizer *u = NULL, *v = NULL;
        CHECK(strlen(text) > 0 && tokenizer_from_string(text, &u) == 0 && same_tokenizer(t, u),
              "%s: to_string/from_string round trip", tokenizer_type_name(types[k]));
        CHECK(tokenizer_save(t, path) == 0 && tokenizer_load(path, &v) == 0 && same_tokenizer(t, v),
              "%s: save/load round trip", tokenizer_type_name(types[k]));
        remove(path);
        free(text);
        tokenizer_free(t); tokenizer_free(u); tokenizer_free(v);
    }
}

static int loads(const char *text) {
    Tokenizer *t = NULL;
    int rc = tokenizer_from_string(text, &t);
    tokenizer_free(t);
    return rc == 0;
}

static void test_bad_files(void) {
    const char *good = "attn-tokenizer 1\ntype bpe\nbyte_fallback 0\npieces 7\n<pad>\n<unk>\n<s>\n</s>\n\xE2\x96\x81\na\n\xE2\x96\x81" "a\nmerges 1\n4 5\n";
    CHECK(loads(good), "a minimal bpe file loads");
    CHECK(!loads("hello\n"), "not a tokenizer: error");
    CHECK(!loads("attn-tokenizer 1\ntype morse\n"), "unknown type: error");
    CHECK(!loads("attn-tokenizer 1\ntype bpe\nbyte_fallback 0\npieces 7\n<pad>\n<unk>\n<s>\n</s>\n\xE2\x96\x81\na\n"),
          "truncated file: error");
    CHECK(!loads("attn-tokenizer 1\ntype bpe\nbyte_fallback 0\npieces 7\n<pad>\n<unk>\n<s>\n</s>\n\xE2\x96\x81\na\na\nmerges 0\n"),
          "duplicate piece: error");
    CHECK(!loads("attn-tokenizer 1\ntype bpe\nbyte_fallback 0\npieces 7\n<pad>\n<unk>\n<s>\n</s>\n\xE2\x96\x81\na\n\xE2\x96\x81" "a\nmerges 1\n5 4\n"),
          "merge whose result is not a piece: error");
    CHECK(!loads("attn-tokenizer 1\ntype bpe\nbyte_fallback 0\npieces 7\n<pad>\n<unk>\n<s>\n</s>\n\xE2\x96\x81\na\n\xE2\x96\x81" "a\nmerges 1\n4 99\n"),
          "merge id out of range: error");
    CHECK(!loads("attn-tokenizer 1\ntype char\nbyte_fallback 0\npieces 6\n<pad>\n<unk>\n<s>\n</s>\n\xE2\x96\x81\nab\nmerges 0\n"),
          "char piece of two characters: error");
    CHECK(!loads("attn-tokenizer 1\ntype char\nbyte_fallback 0\npieces 6\n<unk>\n<pad>\n<s>\n</s>\n\xE2\x96\x81\na\nmerges 0\n"),
          "specials out of order: error");
    CHECK(!loads("attn-tokenizer 1\ntype word\nbyte_fallback 0\npieces 5\n<pad>\n<unk>\n<s>\n</s>\n\xC3\x28\nmerges 0\n"),
          "invalid UTF-8 piece: error");
    Tokenizer *t = NULL;
    CHECK(tokenizer_load("tests/no_such.tok", &t) == -1 && strstr(attn_last_error(), "no_such.tok"), "missing file: error names it");
    CHECK(tokenizer_load(".", &t) == -1 && strstr(attn_last_error(), "directory"), "a directory: error");
    const char *lines[] = {"ok", "bad \xFF"};
    CHECK(tokenizer_learn(&t, TOKENIZER_BPE, lines, 2, NULL) == -1 && strstr(attn_last_error(), "line 2"),
          "learn: invalid UTF-8 names the line");
    const char *with_newline[] = {"one\ntwo"};
    CHECK(tokenizer_learn(&t, TOKENIZER_WORD, with_newline, 1, NULL) == -1 && strstr(attn_last_error(), "newline"),
          "learn: a newline inside a line is an error");
    TokenizerOptions o;
    tokenizer_options_default(&o, TOKENIZER_BPE);
    o.vocab_size = 100;  // < 4 specials + 256 bytes + the marker
    CHECK(tokenizer_learn(&t, TOKENIZER_BPE, lines, 1, &o) == -1 && strstr(attn_last_error(), "too small"),
          "learn: a vocab smaller than the byte pieces is an error");
}

// Encode from several threads at once (the word cache is shared): the same
// ids as one thread.
static void test_concurrent_encode(void) {
    Tokenizer *t = learn(TOKENIZER_BPE, corpus, n_corpus, 400, 1, 1);
    if (!t) { CHECK(0, "bpe learned for threads"); return; }
    int serial[8][MAX_IDS], n_serial[8];
    Tokenizer *fresh = learn(TOKENIZER_BPE, corpus, n_corpus, 400, 1, 1);
    for (int i = 0; i < n_corpus; i++) n_serial[i] = encode(fresh, corpus[i], serial[i]);
    tokenizer_free(fresh);
    int mismatches = 0;
    #pragma omp parallel for num_threads(4) reduction(+:mismatches)
    for (int k = 0; k < 400; k++) {
        int ids[MAX_IDS], i = k % (int)n_corpus;
        int n = encode(t, corpus[i], ids);
        mismatches += !ids_equal(ids, n, serial[i], n_serial[i]);
    }
    CHECK(mismatches == 0, "4 threads encoding at once give the serial ids (%d mismatches)", mismatches);
    tokenizer_free(t);
}

static void test_names(void) {
    TokenizerType type;
    CHECK(tokenizer_type_from_name("word", &type) == 0 && type == TOKENIZER_WORD &&
          strcmp(tokenizer_type_name(TOKENIZER_BPE), "bpe") == 0, "type names");
    CHECK(tokenizer_type_from_name("morse", &type) == -1, "unknown type name is an error");
}

int main(void) {
    test_bpe_hand_computed();
    test_bpe_overlapping_pairs();
    test_bpe_spaces_and_unknowns();
    test_bpe_dropout();
    test_char_tokenizer();
    test_word_tokenizer();
    test_decode_rules();
    test_save_load();
    test_bad_files();
    test_concurrent_encode();
    test_names();
    TEST_EXIT();
}
