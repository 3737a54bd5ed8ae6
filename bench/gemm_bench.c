// GEMM micro-benchmark and FMA peak of this machine.
//
//   bench/gemm_bench [--threads N] [--peak] [--path avx512|avx2|bf16] [--openblas] [--only SUBSTRING]
//
// --peak prints the float32 FMA peak (GFLOP/s) of 1..N threads, measured with
// a loop of independent AVX-512 (else AVX2) FMAs. Without it, times gemm()
// on the matrix shapes of the tiny/small/base configs (DESIGN.md section 6)
// and prints GFLOP/s per shape; --openblas also times OpenBLAS's
// cblas_sgemm, loaded with dlopen so that nothing here links against it.
// Built and run by bench/run.sh; it links build/libattn.a.
#include <dlfcn.h>
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gemm.h"
#include "threads.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------------------
// FMA peak: 24 independent accumulator chains per thread, enough to cover
// any current core's FMA latency x throughput.

__attribute__((target("avx512f"), noinline))
static float fma_loop_avx512(long iters) {
    __m512 acc[24], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(0.9999999f);
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"), noinline))
static float fma_loop_avx2(long iters) {
    __m256 acc[12], x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(0.9999999f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    }
    float out[8], sum = 0;
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++) sum += out[i];
    return sum;
}

// Peak GFLOP/s of nt threads: the best of a few 0.1 s runs.
static double fma_peak(int nt, int avx512) {
    long iters = 2000000;
    double flops_per_iter = avx512 ? 24.0 * 16 * 2 : 12.0 * 8 * 2;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
#pragma omp parallel num_threads(nt)
        {
            float r = avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = now_s() - t0;
        double gflops = flops_per_iter * iters * nt / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    return best;
}

// ---------------------------------------------------------------------------
// GEMM shapes

typedef struct {
    const char *what;
    int ta, tb, M, N, K;
} Shape;

// Tokens per batch: tiny 128 x 10 (decoder), small/base 64 x 40.
static const Shape shapes[] = {
    {"tiny  linear fwd qkv  (0,1)", 0, 1, 1280, 384, 128},
    {"tiny  ffn1 fwd        (0,1)", 0, 1, 1280, 512, 128},
    {"tiny  ffn2 bwd dx     (0,0)", 0, 0, 1280, 512, 128},
    {"tiny  ffn1 bwd dW     (1,0)", 1, 0, 512, 128, 1280},
    {"small linear fwd qkv  (0,1)", 0, 1, 2560, 768, 256},
    {"small out proj fwd    (0,1)", 0, 1, 2560, 256, 256},
    {"small ffn1 fwd        (0,1)", 0, 1, 2560, 1024, 256},
    {"small ffn2 fwd        (0,1)", 0, 1, 2560, 256, 1024},
    {"small generator fwd   (0,1)", 0, 1, 2560, 8000, 256},
    {"small generator dx    (0,0)", 0, 0, 2560, 256, 8000},
    {"small generator dW    (1,0)", 1, 0, 8000, 256, 2560},
    {"small ffn1 bwd dx     (0,0)", 0, 0, 2560, 256, 1024},
    {"small ffn1 bwd dW     (1,0)", 1, 0, 1024, 256, 2560},
    {"base  ffn1 fwd        (0,1)", 0, 1, 2560, 2048, 512},
    {"base  ffn2 fwd        (0,1)", 0, 1, 2560, 512, 2048},
    {"base  generator fwd   (0,1)", 0, 1, 2560, 16000, 512},
    {"base  generator dW    (1,0)", 1, 0, 16000, 512, 2560},
    {"decode generator      (0,1)", 0, 1, 64, 16000, 512},
    {"attn  scores QK^T     (0,1)", 0, 1, 40, 40, 64},
    {"attn  P V             (0,0)", 0, 0, 40, 64, 40},
    {"attn  dP^T Q (dK)     (1,0)", 1, 0, 40, 64, 40},
};

typedef void (*CblasSgemm)(int order, int ta, int tb, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

static double time_shape(const Shape *s, CblasSgemm cblas, float *A, float *B, float *C) {
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double flops = 2.0 * s->M * s->N * s->K;
    int reps = (int)(2e8 / flops) + 1;  // about 1 ms of work per timing at 200 GFLOP/s
    double best = 1e30;
    for (int trial = 0; trial < 6; trial++) {
        double t0 = now_s();
        for (int r = 0; r < reps; r++) {
            if (cblas) cblas(101, s->ta ? 112 : 111, s->tb ? 112 : 111, s->M, s->N, s->K, 1.0f,
                             A, lda, B, ldb, 0.0f, C, s->N);  // 101 row-major, 111/112 no/trans
            else gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
        }
        double dt = (now_s() - t0) / reps;
        if (dt < best) best = dt;
    }
    return flops / best * 1e-9;
}

int main(int argc, char **argv) {
    int nt = threads_machine_cores(), peak = 0, openblas = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) nt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--openblas")) openblas = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--path") && i + 1 < argc) {
            const char *p = argv[++i];
            int path = !strcmp(p, "avx512") ? GEMM_PATH_AVX512 : !strcmp(p, "avx2") ? GEMM_PATH_AVX2
                     : !strcmp(p, "bf16") ? GEMM_PATH_AVX512_BF16 : !strcmp(p, "reference") ? GEMM_PATH_REFERENCE : -1;
            if (gemm_set_path(path) != 0) { fprintf(stderr, "gemm_bench: path %s not available\n", p); return 1; }
        } else {
            fprintf(stderr, "usage: gemm_bench [--threads N] [--peak] [--path avx512|avx2|bf16|reference] [--openblas] [--only SUBSTRING]\n");
            return 2;
        }
    }
    if (nt < 1 || threads_set(nt) != 0) { fprintf(stderr, "gemm_bench: bad thread count\n"); return 2; }
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    if (peak) {
        for (int t = 1; t <= nt; t++)
            printf("fma_peak threads=%d %s %.1f GFLOP/s\n", t, has512 ? "avx512" : "avx2", fma_peak(t, has512));
        return 0;
    }
    CblasSgemm cblas = NULL;
    if (openblas) {
        void *lib = dlopen("libopenblas.so.0", RTLD_NOW);
        if (!lib) { fprintf(stderr, "gemm_bench: OpenBLAS not found (apt-get install libopenblas0-pthread)\n"); return 1; }
        cblas = (CblasSgemm)(size_t)dlsym(lib, "cblas_sgemm");
        void (*set_threads)(int) = (void (*)(int))(size_t)dlsym(lib, "openblas_set_num_threads");
        if (!cblas) { fprintf(stderr, "gemm_bench: cblas_sgemm missing in OpenBLAS\n"); return 1; }
        if (set_threads) set_threads(nt);
    }
    long max_elems = 16000L * 2560;
    float *A = malloc(max_elems * sizeof(float)), *B = malloc(max_elems * sizeof(float));
    float *C = malloc(16000L * 2560 * sizeof(float));
    for (long i = 0; i < max_elems; i++) { A[i] = (float)((i * 7919) % 1000) / 1000 - 0.5f; B[i] = (float)((i * 104729) % 997) / 997 - 0.5f; }
    printf("# %s, %d thread(s), path %s\n", cblas ? "openblas" : "attn gemm", nt, cblas ? "-" : gemm_path_name(gemm_get_path()));
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const Shape *s = &shapes[i];
        if (only && !strstr(s->what, only)) continue;
        printf("%-30s M=%-5d N=%-5d K=%-5d %7.1f GFLOP/s\n", s->what, s->M, s->N, s->K, time_shape(s, cblas, A, B, C));
        fflush(stdout);
    }
    free(A); free(B); free(C);
    return 0;
}
