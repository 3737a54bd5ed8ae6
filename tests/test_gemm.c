// gemm(): every fast path against the plain-C reference, on all four
// transposition cases, odd sizes, padded leading dimensions, alpha/beta
// variants, beta = 0 over NaN, 1 and 2 threads (bit-identical), calls from
// inside a parallel region, and the sizes that cross the cache blocks.
#include "test.h"
#include "gemm.h"
#include "threads.h"
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

static float frand(unsigned *state) {
    *state = *state * 1664525u + 1013904223u;
    return (float)((*state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

typedef struct {
    int ta, tb, M, N, K;
    int pad;             // extra columns in every leading dimension
    float alpha, beta;
} Case;

// Runs gemm (fast) and gemm_reference on the same random inputs; returns the
// norm-wise relative error, and checks that C outside (M, N) is untouched.
// `nan_c` fills C with NaN first (only meaningful with beta == 0).
static double run_case(const Case *c, int nan_c, int *untouched, float *out_fast) {
    int rows_a = c->ta ? c->K : c->M, cols_a = c->ta ? c->M : c->K;
    int rows_b = c->tb ? c->N : c->K, cols_b = c->tb ? c->K : c->N;
    int lda = cols_a + c->pad, ldb = cols_b + c->pad, ldc = c->N + c->pad;
    float *A = malloc(sizeof(float) * rows_a * lda), *B = malloc(sizeof(float) * rows_b * ldb);
    float *C = malloc(sizeof(float) * c->M * ldc), *R = malloc(sizeof(float) * c->M * ldc);
    unsigned seed = 7u + c->M * 31u + c->N * 17u + c->K;
    for (int i = 0; i < rows_a * lda; i++) A[i] = frand(&seed);
    for (int i = 0; i < rows_b * ldb; i++) B[i] = frand(&seed);
    for (int i = 0; i < c->M * ldc; i++) R[i] = C[i] = (i % ldc) >= c->N ? SENTINEL : nan_c ? NAN : frand(&seed);
    gemm(c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, lda, B, ldb, c->beta, C, ldc);
    int saved = gemm_get_path();
    gemm_set_path(GEMM_PATH_REFERENCE);
    gemm(c->ta, c->tb, c->M, c->N, c->K, c->alpha, A, lda, B, ldb, c->beta, R, ldc);
    gemm_set_path(saved);
    *untouched = 1;
    float *fast = malloc(sizeof(float) * c->M * c->N), *ref = malloc(sizeof(float) * c->M * c->N);
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < ldc; j++) {
            float v = C[(long)i * ldc + j];
            if (j >= c->N) *untouched &= v == SENTINEL;
            else { fast[i * c->N + j] = v; ref[i * c->N + j] = R[(long)i * ldc + j]; }
        }
    double err = rel_diff(fast, ref, (long)c->M * c->N, NULL);
    if (err != err) err = 1e30;  // NaN leaked through
    if (out_fast) memcpy(out_fast, fast, sizeof(float) * c->M * c->N);
    free(A); free(B); free(C); free(R); free(fast); free(ref);
    return err;
}

// All transposition cases x odd sizes x alpha/beta, for the current path and thread count.
static void check_sizes(const char *label) {
    static const int sizes[][3] = {
        {1, 1, 1}, {1, 17, 3}, {3, 1, 65}, {17, 3, 1}, {13, 33, 17}, {65, 127, 31},
        {127, 65, 257}, {257, 129, 64}, {40, 40, 64}, {40, 64, 40}, {70, 50, 300},
    };
    static const float alphas[] = {1.0f, 0.5f, -2.0f}, betas[] = {0.0f, 1.0f, 0.25f};
    int n_sizes = sizeof sizes / sizeof sizes[0], bad = 0, total = 0, leaks = 0;
    double worst = 0;
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < n_sizes; s++)
            for (int v = 0; v < 3; v++) {
                Case c = {t >> 1, t & 1, sizes[s][0], sizes[s][1], sizes[s][2], (s + v) % 3 * 5,
                          alphas[v], betas[(s + v) % 3]};
                int untouched;
                double err = run_case(&c, 0, &untouched, NULL);
                total++;
                if (err > worst) worst = err;
                if (err > 1e-5 || !untouched) {
                    if (bad++ < 5) printf("  mismatch: ta=%d tb=%d M=%d N=%d K=%d pad=%d alpha=%g beta=%g err=%.2e untouched=%d\n",
                                          c.ta, c.tb, c.M, c.N, c.K, c.pad, c.alpha, c.beta, err, untouched);
                }
            }
    CHECK(bad == 0, "%s: %d cases (4 transpositions, odd sizes, lda > width, alpha/beta) match the reference (worst %.1e)",
          label, total, worst);
    for (int t = 0; t < 4; t++) {
        Case c = {t >> 1, t & 1, 37, 45, 29, 3, 1.0f, 0.0f};
        int untouched;
        double err = run_case(&c, 1, &untouched, NULL);
        leaks += !(err < 1e-5 && untouched);
    }
    CHECK(leaks == 0, "%s: beta = 0 ignores NaN in C, all 4 transpositions", label);
}

// The same product on 1 and 2 threads is bit-identical; sizes cross the
// K block (768), the M block (192) and the N block (2048), are large
// enough to run in parallel, and include the direct (unpacked) kernels.
static void check_threads_identical(const char *label) {
    static const Case cases[] = {
        {0, 1, 197, 70, 300, 1, 1.0f, 0.0f},
        {1, 0, 200, 40, 1600, 0, 1.0f, 1.0f},
        {0, 0, 9, 2100, 70, 2, 0.5f, 0.5f},
        {1, 1, 500, 40, 33, 0, -1.0f, 0.0f},
        {0, 1, 4, 3001, 100, 1, 1.0f, 0.5f},   // direct dot products
        {1, 0, 3, 5000, 100, 2, 2.0f, 0.0f},    // direct row updates
        {0, 1, 1, 5000, 70, 0, 1.0f, 1.0f},     // one query against many keys
        {1, 0, 1, 3000, 301, 3, 1.0f, 0.0f},    // one row of probabilities times values
    };
    int n = sizeof cases / sizeof cases[0], all_match = 1, all_close = 1;
    for (int i = 0; i < n; i++) {
        const Case *c = &cases[i];
        float *one = malloc(sizeof(float) * c->M * c->N), *two = malloc(sizeof(float) * c->M * c->N);
        int untouched1, untouched2;
        threads_set(1);
        double e1 = run_case(c, 0, &untouched1, one);
        threads_set(2);
        double e2 = run_case(c, 0, &untouched2, two);
        all_close &= e1 < 1e-5 && e2 < 1e-5 && untouched1 && untouched2;
        all_match &= memcmp(one, two, sizeof(float) * c->M * c->N) == 0;
        free(one); free(two);
    }
    CHECK(all_close, "%s: blocked sizes (K > 768, M > 192, N > 2048) match the reference on 1 and 2 threads", label);
    CHECK(all_match, "%s: 1 and 2 threads give bit-identical results", label);
}

// Two threads of the program call gemm at the same time on different
// problems: one of them gets the pool, the other runs alone (each with its
// own packing buffers).
static void check_inside_parallel(const char *label) {
    int ok[2] = {0, 0};
    threads_set(2);
#pragma omp parallel num_threads(2)
    {
        int id = omp_get_thread_num();
        Case c = {id, 1 - id, 90 + id, 70, 130, id, 1.0f, 0.0f};
        float *C = malloc(sizeof(float) * c.M * c.N), *R = malloc(sizeof(float) * c.M * c.N);
        float *A = malloc(sizeof(float) * c.M * c.K), *B = malloc(sizeof(float) * c.K * c.N);
        unsigned seed = 99u + id;
        for (int i = 0; i < c.M * c.K; i++) A[i] = frand(&seed);
        for (int i = 0; i < c.K * c.N; i++) B[i] = frand(&seed);
        int lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
        for (int rep = 0; rep < 20; rep++)
            gemm(c.ta, c.tb, c.M, c.N, c.K, 1.0f, A, lda, B, ldb, 0.0f, C, c.N);
        gemm_reference(c.ta, c.tb, c.M, c.N, c.K, 1.0f, A, lda, B, ldb, 0.0f, R, c.N);
        ok[id] = rel_diff(C, R, (long)c.M * c.N, NULL) < 1e-5;
        free(A); free(B); free(C); free(R);
    }
    CHECK(ok[0] && ok[1], "%s: concurrent calls from inside a parallel region", label);
}

// gemm_prepacked with op(B) packed once equals gemm() bit for bit (M > 4)
// and the reference closely, for both transpositions of each operand.
static void check_prepacked(const char *label, double tolerance) {
    static const int shapes[][3] = {{24, 300, 260}, {9, 2100, 33}, {8, 100, 1000}, {5, 17, 3}};
    int identical = 1, close = 1, reused = 1;
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 4; t++) {
            int ta = t >> 1, tb = t & 1, M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2;
            float *A = malloc(sizeof(float) * (ta ? K : M) * lda), *B = malloc(sizeof(float) * (tb ? N : K) * ldb);
            float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
            unsigned seed = 5u + s * 4 + t;
            for (int i = 0; i < (ta ? K : M) * lda; i++) A[i] = frand(&seed);
            for (int i = 0; i < (tb ? N : K) * ldb; i++) B[i] = frand(&seed);
            for (int i = 0; i < M * N; i++) C1[i] = C2[i] = R[i] = frand(&seed);
            GemmPackedB pb = {0};
            int packed = gemm_pack_b(&pb, tb, K, N, B, ldb) == 0;
            gemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, C1, N);
            if (packed) gemm_prepacked(ta, M, 0.5f, A, lda, &pb, 0.25f, C2, N, NULL);
            gemm_reference(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 0.25f, R, N);
            identical &= packed && memcmp(C1, C2, sizeof(float) * M * N) == 0;
            close &= packed && rel_diff(C2, R, (long)M * N, NULL) < tolerance;
            // Repacking new values into the same memory (a decoder's next batch).
            float *old_panels = pb.panels;
            for (int i = 0; i < (tb ? N : K) * ldb; i++) B[i] = 1.0f - B[i];
            packed &= gemm_pack_b(&pb, tb, K, N, B, ldb) == 0;
            reused &= pb.panels == old_panels;
            gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
            if (packed) gemm_prepacked(ta, M, 1.0f, A, lda, &pb, 0.0f, C2, N, NULL);
            identical &= packed && memcmp(C1, C2, sizeof(float) * M * N) == 0;
            if (packed) gemm_packed_b_free(&pb);
            free(A); free(B); free(C1); free(C2); free(R);
        }
    CHECK(close, "%s: prepacked B matches the reference (to %.0e), all transpositions, N > 2048, K > 768", label, tolerance);
    CHECK(identical, "%s: prepacked B gives the same bits as gemm(), packed anew and repacked", label);
    CHECK(reused, "%s: repacking a matrix of the same shape reuses the panels' memory", label);
}

// Round to the nearest bfloat16, ties to even (what vcvtneps2bf16 does for
// finite values).
static float to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    u &= 0xFFFF0000u;
    memcpy(&x, &u, 4);
    return x;
}

// The bf16 path equals the float reference run on bf16-rounded inputs (up to
// float summation order), differs from the unrounded product by bf16's
// precision, and is bit-identical on 1 and 2 threads.
static void check_bf16(void) {
    static const int shapes[][3] = {{1, 1, 1}, {13, 33, 17}, {40, 40, 64}, {65, 31, 1001}, {200, 70, 513}, {9, 2100, 33}};
    int n_shapes = sizeof shapes / sizeof shapes[0], exact = 1, threads_same = 1;
    double worst_rounded = 0, worst_float = 0;
    for (int s = 0; s < n_shapes; s++)
        for (int t = 0; t < 4; t++) {
            int ta = t >> 1, tb = t & 1, M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1;
            long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb;
            float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
            float *Ar = malloc(sizeof(float) * na), *Br = malloc(sizeof(float) * nb);
            float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
            float *R = malloc(sizeof(float) * M * N), *F = malloc(sizeof(float) * M * N);
            unsigned seed = 11u + s * 4 + t;
            for (long i = 0; i < na; i++) { A[i] = frand(&seed); Ar[i] = to_bf16(A[i]); }
            for (long i = 0; i < nb; i++) { B[i] = frand(&seed); Br[i] = to_bf16(B[i]); }
            for (int i = 0; i < M * N; i++) { C1[i] = C2[i] = NAN; R[i] = F[i] = 0.0f; }
            threads_set(1);
            gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
            threads_set(2);
            gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C2, N);
            gemm_reference(ta, tb, M, N, K, 1.0f, Ar, lda, Br, ldb, 0.0f, R, N);
            gemm_reference(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, F, N);
            double e_rounded = rel_diff(C1, R, (long)M * N, NULL), e_float = rel_diff(C1, F, (long)M * N, NULL);
            if (!(e_rounded <= 1e-5)) exact = 0;
            if (e_rounded > worst_rounded || e_rounded != e_rounded) worst_rounded = e_rounded;
            if (e_float > worst_float || e_float != e_float) worst_float = e_float;
            threads_same &= memcmp(C1, C2, sizeof(float) * M * N) == 0;
            free(A); free(B); free(Ar); free(Br); free(C1); free(C2); free(R); free(F);
        }
    CHECK(exact, "avx512-bf16: equals the reference on bf16-rounded inputs, all transpositions, odd K, beta = 0 over NaN (worst %.1e)",
          worst_rounded);
    CHECK(worst_float > 1e-5 && worst_float < 1e-2, "avx512-bf16: error against float32 inputs is bf16's (worst %.1e)", worst_float);
    CHECK(threads_same, "avx512-bf16: 1 and 2 threads give bit-identical results");
}

static void check_degenerate(void) {
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1};
    float C[4] = {NAN, NAN, NAN, NAN};
    gemm(0, 0, 2, 2, 0, 1.0f, A, 3, B, 2, 0.0f, C, 2);
    CHECK(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0, "K = 0 with beta = 0 writes zeros over NaN");
    float D[4] = {1, 2, 3, 4};
    gemm(0, 0, 2, 2, 3, 0.0f, A, 3, B, 2, 2.0f, D, 2);
    CHECK(D[0] == 2 && D[1] == 4 && D[2] == 6 && D[3] == 8, "alpha = 0 scales C by beta");
    gemm(0, 0, 0, 2, 3, 1.0f, A, 3, B, 2, 0.0f, D, 2);
    CHECK(D[0] == 2 && D[3] == 8, "M = 0 leaves C alone");
    CHECK(gemm_set_path(99) == -1, "an unknown path is refused");
}

// An epilogue that counts its visits per element and adds 1: every block
// of C must come exactly once, after its final sum (so C = gemm's + 1).
typedef struct {
    int *visits;
    int N;
} Visits;

static void visit_block(const void *arg, float *C, int ldc, int i0, int m, int j0, int n) {
    const Visits *v = arg;
    for (int i = i0; i < i0 + m; i++)
        for (int j = j0; j < j0 + n; j++) {
            __atomic_fetch_add(&v->visits[i * v->N + j], 1, __ATOMIC_RELAXED);
            C[(long)i * ldc + j] += 1.0f;
        }
}

static void check_epilogue(const char *label) {
    // direct (M <= 4), packed, blocked in K, N and M, and a prepacked B
    static const int shapes[][3] = {{3, 70, 40}, {37, 45, 29}, {200, 2100, 800}, {64, 300, 100}};
    int once = 1, exact = 1;
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 5; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int ta = t == 4 ? 0 : t >> 1, tb = t == 4 ? 1 : t & 1, prepacked = t == 4;
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
            float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
            int *visits = calloc((size_t)M * N, sizeof(int));
            unsigned seed = 11u + s * 5 + t;
            for (int i = 0; i < M * K; i++) A[i] = frand(&seed);
            for (int i = 0; i < K * N; i++) B[i] = frand(&seed);
            Visits v = {visits, N};
            GemmEpilogue ep = {visit_block, &v};
            if (prepacked) {
                GemmPackedB pb = {0};
                gemm_pack_b(&pb, tb, K, N, B, ldb);
                gemm_prepacked(ta, M, 1.0f, A, lda, &pb, 0.0f, C1, N, NULL);
                gemm_prepacked(ta, M, 1.0f, A, lda, &pb, 0.0f, C2, N, &ep);
                gemm_packed_b_free(&pb);
            } else {
                gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
                gemm_epilogue(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C2, N, &ep);
            }
            for (int i = 0; i < M * N; i++) {
                once &= visits[i] == 1;
                exact &= C2[i] == C1[i] + 1.0f;
            }
            free(A); free(B); free(C1); free(C2); free(visits);
        }
    CHECK(once, "%s: the epilogue visits every element of C exactly once (direct, packed, blocked, prepacked)",
          label);
    CHECK(exact, "%s: the epilogue sees each block's final sums", label);
}

int main(void) {
    int paths[] = {GEMM_PATH_AVX512, GEMM_PATH_AVX2};
    for (int p = 0; p < 2; p++) {
        if (gemm_set_path(paths[p]) != 0) {
            printf("INFO path %s not supported on this CPU, skipped\n", gemm_path_name(paths[p]));
            continue;
        }
        char label[64];
        for (int nt = 1; nt <= 2; nt++) {
            threads_set(nt);
            snprintf(label, sizeof label, "%s, %d thread%s", gemm_path_name(paths[p]), nt, nt > 1 ? "s" : "");
            check_sizes(label);
        }
        snprintf(label, sizeof label, "%s", gemm_path_name(paths[p]));
        check_threads_identical(label);
        check_prepacked(label, 1e-5);
        check_inside_parallel(label);
        for (int nt = 1; nt <= 2; nt++) {
            threads_set(nt);
            snprintf(label, sizeof label, "%s, %d thread%s", gemm_path_name(paths[p]), nt, nt > 1 ? "s" : "");
            check_epilogue(label);
        }
    }
    if (gemm_set_path(GEMM_PATH_AVX512_BF16) == 0) {
        check_bf16();
        check_prepacked("avx512-bf16", 1e-2);
    } else {
        printf("INFO path avx512-bf16 not supported on this CPU, skipped\n");
    }
    gemm_set_path(GEMM_PATH_REFERENCE);
    check_prepacked("reference", 1e-5);
    check_epilogue("reference");
    gemm_set_path(GEMM_PATH_AUTO);
    CHECK(gemm_get_path() != GEMM_PATH_AUTO, "auto resolves to a concrete path (%s)", gemm_path_name(gemm_get_path()));
    check_degenerate();
    TEST_EXIT();
}
