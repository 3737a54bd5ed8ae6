// Minimal test harness: every CHECK prints PASS or FAIL with its name;
// tests/run_tests.sh counts those lines. A test binary returns non-zero when
// anything failed, so it also fails loudly when run alone.
#ifndef ATTN_TEST_H
#define ATTN_TEST_H
#include <stdio.h>
#include <math.h>

static int test_failures = 0;

#define CHECK(cond, ...) do { \
    if (cond) { printf("PASS "); printf(__VA_ARGS__); printf("\n"); } \
    else { test_failures++; printf("FAIL "); printf(__VA_ARGS__); \
           printf(" (%s:%d: %s)\n", __FILE__, __LINE__, #cond); } \
} while (0)

// Relative difference of two vectors, norm-wise: |a-b| / max(|b|, tiny).
static inline double rel_diff(const float *a, const float *b, long n, double *max_abs) {
    double num = 0, den = 0, mx = 0;
    for (long i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d; den += (double)b[i] * b[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    if (max_abs) *max_abs = mx;
    return sqrt(num) / (den > 0 ? sqrt(den) : 1e-30);
}

#define TEST_EXIT() return test_failures ? 1 : 0
#endif
