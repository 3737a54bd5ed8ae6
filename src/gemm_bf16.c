// bf16 path of gemm() (an option: GEMM_PATH_AVX512_BF16, never picked by
// AUTO): A and B are rounded to bfloat16 (round to nearest even) while they
// are packed, and multiplied with AVX512-BF16's vdpbf16ps, which adds the
// products of two bf16 pairs into each float32 lane. Accumulation and C
// stay float32, so only the inputs lose precision (8 bits of mantissa).
// One vdpbf16ps does 32 multiply-adds where vfmadd231ps does 16.
//
// Panels hold k-pairs: a packed row of width w for pair p holds w 32-bit
// words, word r = (bf16 of x[r, 2p]) | (bf16 of x[r, 2p+1]) << 16, an odd
// last step paired with 0. A panel of kc steps takes ceil(kc/2) x w words,
// no more than the float panel gemm.c reserves for it.
#include "gemm_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include "gemm_avx512_tile.h"
#include <stdint.h>

#define MR 12
#define NR 32

#define TARGET_BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,fma")))

// In-register transpose of 16 x 16 words (see gemm_avx512.c's transpose16).
__attribute__((always_inline)) TARGET_BF16
static inline void transpose16_words(__m512i r[16]) {
    __m512i t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xDD);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

// "rows" packer: source row r is contiguous along k (src[r * ld + k]), so
// 32 consecutive k of a row convert to 16 pairs in order; blocks of 16 rows
// x 16 pairs are then transposed to the [pair][row] layout.
TARGET_BF16
static void pack_rows_bf16(float *panel, const float *src, long ld, int n, int kc, int w) {
    uint32_t *out = (uint32_t *)panel;
    for (int r0 = 0; r0 < w; r0 += 16) {
        int rows = n - r0 < 16 ? (n - r0 > 0 ? n - r0 : 0) : 16;
        __mmask16 store_mask = tail_mask(w - r0 < 16 ? w - r0 : 16);
        for (int k0 = 0; k0 < kc; k0 += 32) {
            __mmask16 lo_mask = tail_mask(kc - k0), hi_mask = tail_mask(kc - k0 - 16);
            __m512i r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) {
                if (i < rows) {
                    const float *s = src + (r0 + i) * ld + k0;
                    __m512 lo = _mm512_maskz_loadu_ps(lo_mask, s), hi = _mm512_maskz_loadu_ps(hi_mask, s + 16);
                    r[i] = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // words: pairs (k0+2p, k0+2p+1)
                } else {
                    r[i] = _mm512_setzero_si512();
                }
            }
            transpose16_words(r);
            int pairs = (kc - k0 + 1) / 2 < 16 ? (kc - k0 + 1) / 2 : 16;
            uint32_t *d = out + (long)(k0 / 2) * w + r0;
            for (int p = 0; p < pairs; p++) _mm512_mask_storeu_epi32(d + (long)p * w, store_mask, r[p]);
        }
    }
}

// "columns" packer: the values of one k are contiguous (src[k * ld + r]);
// rows k and k+1 are rounded together (k's 16 bf16 in the low half of the
// vector, k+1's in the high half) and one word permute weaves them into
// pairs: 5 instructions per 16 pairs where rounding each row on its own,
// widening and shifting took 9 (this packer: 12.0% of a bf16 base step's
// samples before, 10.3% after; it waits on memory more than on the ops).
TARGET_BF16
static void pack_columns_bf16(float *panel, const float *src, long ld, int n, int kc, int w) {
    uint32_t *out = (uint32_t *)panel;
    // word 2i of the result is low-half word i (row k), word 2i + 1 high-half word i (row k + 1)
    const __m512i weave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int k = 0; k < kc; k += 2) {
        const float *s0 = src + k * ld, *s1 = s0 + ld;
        uint32_t *d = out + (long)(k / 2) * w;
        for (int r0 = 0; r0 < w; r0 += 16) {
            __mmask16 load_mask = tail_mask(n - r0), store_mask = tail_mask(w - r0);
            __m512 even = _mm512_maskz_loadu_ps(load_mask, s0 + r0);
            __m512 odd = k + 1 < kc ? _mm512_maskz_loadu_ps(load_mask, s1 + r0) : _mm512_setzero_ps();
            __m512i halves = (__m512i)_mm512_cvtne2ps_pbh(odd, even);
            _mm512_mask_storeu_epi32(d + r0, store_mask, _mm512_permutexvar_epi16(weave, halves));
        }
    }
}

// The kernel body for `rows` x (16 * vecs), as in gemm_avx512.c, over
// ceil(kc / 2) pairs.
__attribute__((always_inline)) TARGET_BF16
static inline void kernel_body_bf16(const int rows, const int vecs, int kc, const float *restrict a, long a_step, long a_rstride,
                                    const float *restrict b, long b_step, float *restrict c, long ldc,
                                    int m, int n, float alpha, float beta) {
    (void)a_step; (void)a_rstride; (void)b_step;  // always packed (pairs of bf16): a_in_place, b_in_place 0
    const uint32_t *ap = (const uint32_t *)a;
    const __m512i *bp = (const __m512i *)b;
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    prefetch_c_tile(c, ldc, m < rows ? m : rows, n < 16 * vecs ? n : 16 * vecs);
    int pairs = (kc + 1) / 2;
    for (int p = 0; p < pairs; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512(bp);
        __m512bh b1 = vecs > 1 ? (__m512bh)_mm512_load_si512(bp + 1) : b0;
#pragma GCC unroll 12
        for (int r = 0; r < rows; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            if (vecs > 1) acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
        }
        ap += MR;
        bp += NR / 16;
    }
    store_tile(acc, rows, vecs, c, ldc, m, n, alpha, beta);
}

#define DEFINE_KERNEL(name, rows, vecs) \
    TARGET_BF16 static void name(int kc, const float *restrict a, long a_step, long a_rstride, const float *restrict b, \
                                 long b_step, float *restrict c, long ldc, int m, int n, float alpha, float beta) { \
        kernel_body_bf16(rows, vecs, kc, a, a_step, a_rstride, b, b_step, c, ldc, m, n, alpha, beta); \
    }
DEFINE_KERNEL(kernel_bf16_12x32, 12, 2)
DEFINE_KERNEL(kernel_bf16_12x16, 12, 1)
DEFINE_KERNEL(kernel_bf16_4x32, 4, 2)
DEFINE_KERNEL(kernel_bf16_4x16, 4, 1)

TARGET_BF16
static void kernel_bf16(int kc, const float *restrict a, long a_step, long a_rstride, const float *restrict b,
                        long b_step, float *restrict c, long ldc, int m, int n, float alpha, float beta,
                        int prefetch_b) {
    (void)prefetch_b;
    if (m > 4) {
        if (n > 16) kernel_bf16_12x32(kc, a, a_step, a_rstride, b, b_step, c, ldc, m, n, alpha, beta);
        else kernel_bf16_12x16(kc, a, a_step, a_rstride, b, b_step, c, ldc, m, n, alpha, beta);
    } else {
        if (n > 16) kernel_bf16_4x32(kc, a, a_step, a_rstride, b, b_step, c, ldc, m, n, alpha, beta);
        else kernel_bf16_4x16(kc, a, a_step, a_rstride, b, b_step, c, ldc, m, n, alpha, beta);
    }
}

// No direct kernels: every product, however short, goes through bf16.
static const GemmPathDesc bf16_path = {"avx512-bf16", MR, NR, kernel_bf16, pack_rows_bf16, pack_columns_bf16,
                                       NULL, NULL, 0, 0};
const GemmPathDesc *gemm_bf16_path(void) { return &bf16_path; }

#else
const GemmPathDesc *gemm_bf16_path(void) { return 0; }
#endif
