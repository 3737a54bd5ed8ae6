// AVX2 micro-kernel of gemm(): a 6 x 16 register tile (12 ymm accumulators,
// two ymm of B, one broadcast of A: 15 of the 16 ymm registers). The path
// for x86-64 machines without AVX-512; picked at run time by CPUID.
// Edge tiles go through a small buffer on the stack (AVX2 has no cheap
// masked store of partial rows that beta == 0 also needs).
#include "gemm_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#define MR 6
#define NR 16

#define TARGET_AVX2 __attribute__((target("avx2,fma")))

TARGET_AVX2
static void kernel_6x16(int kc, const float *restrict a, long a_step, long a_rstride, const float *restrict b,
                        long b_step, float *restrict c, long ldc, int m, int n, float alpha, float beta,
                        int prefetch_b) {
    (void)prefetch_b;
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        acc[r][0] = _mm256_setzero_ps();
        acc[r][1] = _mm256_setzero_ps();
    }
    prefetch_c_tile(c, ldc, m, n);
    const float *base[2] = {a, a + 3 * a_rstride};  // rows in groups of three (see gemm_avx512.c)
    for (long k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b);
        __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m256 ar = _mm256_broadcast_ss(&base[r / 3][(r % 3) * a_rstride + k * a_step]);
            acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
        }
        b += b_step;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (m == MR && n == NR) {
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            __m256 x0 = _mm256_mul_ps(va, acc[r][0]);
            __m256 x1 = _mm256_mul_ps(va, acc[r][1]);
            if (beta != 0.0f) {
                x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), x0);
                x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), x1);
            }
            _mm256_storeu_ps(cr, x0);
            _mm256_storeu_ps(cr + 8, x1);
        }
        return;
    }
    float tile[MR][NR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_ps(tile[r], _mm256_mul_ps(va, acc[r][0]));
        _mm256_storeu_ps(tile[r] + 8, _mm256_mul_ps(va, acc[r][1]));
    }
    for (int r = 0; r < m; r++) {
        float *cr = c + r * ldc;
        for (int j = 0; j < n; j++)
            cr[j] = beta != 0.0f ? fmaf(beta, cr[j], tile[r][j]) : tile[r][j];  // as the full tile rounds
    }
}

static const GemmPathDesc avx2_path = {"avx2", MR, NR, kernel_6x16, NULL, NULL, NULL, NULL, 1, 1};
const GemmPathDesc *gemm_avx2_path(void) { return &avx2_path; }

#else
const GemmPathDesc *gemm_avx2_path(void) { return 0; }
#endif
