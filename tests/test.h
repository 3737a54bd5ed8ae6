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

static inline double dot(const float *a, const float *b, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// Central differences of loss() with respect to every value of p: the max
// |FD - analytic|, relative to the largest analytic value.
typedef double (*LossFn)(void *ctx);
static inline double fd_check(float *p, long n, const float *analytic, float eps, LossFn loss, void *ctx) {
    double err = 0, scale = 1e-12;
    for (long i = 0; i < n; i++) {
        float saved = p[i];
        p[i] = saved + eps; double lp = loss(ctx);
        p[i] = saved - eps; double lm = loss(ctx);
        p[i] = saved;
        double fd = (lp - lm) / (2.0 * eps);
        if (fabs(fd - analytic[i]) > err) err = fabs(fd - analytic[i]);
        if (fabs(analytic[i]) > scale) scale = fabs(analytic[i]);
    }
    return err / scale;
}

#define TEST_EXIT() return test_failures ? 1 : 0
#endif
