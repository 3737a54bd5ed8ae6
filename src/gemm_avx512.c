// AVX-512 micro-kernel of gemm(): a 12 x 32 register tile (24 zmm
// accumulators, two zmm of B per k, A broadcast from memory by the FMA).
// 24 independent accumulator chains cover the FMA latency (4 cycles) times
// its throughput (2 per cycle) three times over; per k it issues 24 FMAs
// against 14 loads, within the two 512-bit loads per cycle of the core.
// Compiled with target attributes, so the build does not need -march; gemm.c
// only calls it when CPUID reports AVX-512F.
#include "gemm_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define MR 12
#define NR 32

#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,fma")))

TARGET_AVX512
static inline __mmask16 tail_mask(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

TARGET_AVX512
static void kernel_12x32(int kc, const float *restrict a, const float *restrict b,
                         float *restrict c, long ldc, int m, int n, float alpha, float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b);
        __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
        a += MR;
        b += NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 mask0 = tail_mask(n), mask1 = tail_mask(n - 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
        if (r >= m) break;
        float *cr = c + r * ldc;
        __m512 x0 = _mm512_mul_ps(va, acc[r][0]);
        __m512 x1 = _mm512_mul_ps(va, acc[r][1]);
        if (beta != 0.0f) {
            x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask0, cr), x0);
            x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask1, cr + 16), x1);
        }
        _mm512_mask_storeu_ps(cr, mask0, x0);
        _mm512_mask_storeu_ps(cr + 16, mask1, x1);
    }
}

static const GemmPathDesc avx512_path = {"avx512", MR, NR, kernel_12x32};
const GemmPathDesc *gemm_avx512_path(void) { return &avx512_path; }

#else
const GemmPathDesc *gemm_avx512_path(void) { return 0; }
#endif
