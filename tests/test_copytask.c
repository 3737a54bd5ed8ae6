// The generated copy / reverse task: sizes, alphabet and lengths, targets,
// held-out strings disjoint from training, determinism, and range errors.
#include "common.h"
#include "copytask.h"
#include "test.h"
#include <string.h>

static void generate(const CopyTaskConfig *c, ParallelText *train, ParallelText *valid) {
    memset(train, 0, sizeof *train);
    memset(valid, 0, sizeof *valid);
    if (copytask_generate(c, train, valid) != 0) printf("FAIL generate: %s\n", attn_last_error());
}

static void test_copy(void) {
    CopyTaskConfig c = {.reverse = 0, .n_symbols = 5, .min_len = 2, .max_len = 6, .n_train = 3000, .n_valid = 200, .seed = 9};
    ParallelText train, valid;
    generate(&c, &train, &valid);
    CHECK(train.n == 3000 && valid.n == 200, "sizes %d / %d", train.n, valid.n);
    int ok = 1, lengths_seen[7] = {0};
    for (int i = 0; i < train.n; i++) {
        size_t n = strlen(train.src[i]);
        if (n < 2 || n > 6 || strcmp(train.src[i], train.tgt[i]) != 0 || strspn(train.src[i], "abcde") != n) ok = 0;
        else lengths_seen[n] = 1;
    }
    CHECK(ok, "copy targets equal sources, lengths 2..6, alphabet a-e");
    CHECK(lengths_seen[2] && lengths_seen[6], "shortest and longest lengths occur in training");
    int short_held_out = 0;
    for (int i = 0; i < valid.n; i++) short_held_out += strlen(valid.src[i]) < 4;
    CHECK(short_held_out == 0, "lengths with few strings (5^2, 5^3) are not held out (%d)", short_held_out);
    int overlap = 0, repeated = 0;
    for (int i = 0; i < valid.n; i++) {
        for (int j = 0; j < train.n; j++) overlap += strcmp(valid.src[i], train.src[j]) == 0;
        for (int j = 0; j < i; j++) repeated += strcmp(valid.src[i], valid.src[j]) == 0;
    }
    CHECK(overlap == 0, "no held-out string is in the training set (%d overlaps)", overlap);
    CHECK(repeated == 0, "held-out strings are distinct (%d repeats)", repeated);
    ParallelText train2, valid2;
    generate(&c, &train2, &valid2);
    int same = train2.n == train.n;
    for (int i = 0; same && i < train.n; i++) same = !strcmp(train.src[i], train2.src[i]);
    CHECK(same, "the same seed gives the same data");
    parallel_free(&train); parallel_free(&valid); parallel_free(&train2); parallel_free(&valid2);
}

static void test_reverse(void) {
    CopyTaskConfig c = {.reverse = 1, .n_symbols = 36, .min_len = 1, .max_len = 12, .n_train = 500, .n_valid = 50, .seed = 1};
    ParallelText train, valid;
    generate(&c, &train, &valid);
    int ok = 1;
    for (int i = 0; i < train.n; i++) {
        size_t n = strlen(train.src[i]);
        for (size_t k = 0; k < n; k++) if (train.src[i][k] != train.tgt[i][n - 1 - k]) ok = 0;
    }
    CHECK(ok, "reverse targets are the reversed sources");
    parallel_free(&train); parallel_free(&valid);
}

static void test_errors(void) {
    ParallelText train, valid;
    memset(&train, 0, sizeof train);
    memset(&valid, 0, sizeof valid);
    CopyTaskConfig c = {.n_symbols = 2, .min_len = 1, .max_len = 3, .n_train = 10, .n_valid = 8, .seed = 1};
    CHECK(copytask_generate(&c, &train, &valid) != 0 && strstr(attn_last_error(), "too few distinct strings"),
          "too small a space for the held-out set: %s", attn_last_error());
    c.n_symbols = 37;
    CHECK(copytask_generate(&c, &train, &valid) != 0 && strstr(attn_last_error(), "copy_symbols"), "too many symbols");
    parallel_free(&train); parallel_free(&valid);
}

int main(void) {
    test_copy();
    test_reverse();
    test_errors();
    TEST_EXIT();
}
