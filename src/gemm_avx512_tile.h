// Internal to the AVX-512 GEMM paths (gemm_avx512.c, gemm_bf16.c): the
// pieces both micro-kernels share once their float32 accumulators are full.
#ifndef ATTN_GEMM_AVX512_TILE_H
#define ATTN_GEMM_AVX512_TILE_H
#include <immintrin.h>

#define TARGET_AVX512_TILE __attribute__((target("avx512f,avx512vl,fma")))

// Lanes [0, n) of 16 set, n clamped to [0, 16].
TARGET_AVX512_TILE
static inline __mmask16 tail_mask(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

// C[0:m, 0:n] = alpha * acc + beta * C for a tile of `rows` x (16 * vecs)
// accumulators; beta == 0 never reads C. Inlined so that rows and vecs are
// constants and acc stays in registers.
__attribute__((always_inline)) TARGET_AVX512_TILE
static inline void store_tile(__m512 acc[][2], const int rows, const int vecs, float *restrict c, long ldc,
                              int m, int n, float alpha, float beta) {
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 mask0 = tail_mask(n), mask1 = tail_mask(n - 16);
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        if (r >= m) break;
        float *cr = c + r * ldc;
        __m512 x0 = _mm512_mul_ps(va, acc[r][0]);
        if (beta != 0.0f) x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask0, cr), x0);
        _mm512_mask_storeu_ps(cr, mask0, x0);
        if (vecs > 1) {
            __m512 x1 = _mm512_mul_ps(va, acc[r][1]);
            if (beta != 0.0f) x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask1, cr + 16), x1);
            _mm512_mask_storeu_ps(cr + 16, mask1, x1);
        }
    }
}

#endif
