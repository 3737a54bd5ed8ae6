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

// The kernel body for a tile of `rows` x (16 * vecs) within the 12 x 32
// panels: compile-time constants after inlining, so each variant keeps only
// the accumulators it needs. Every variant sums each element over k in the
// same order, so which one computes a tile never changes the result.
__attribute__((always_inline)) TARGET_AVX512
static inline void kernel_body(const int rows, const int vecs, int kc, const float *restrict a,
                               const float *restrict b, float *restrict c, long ldc,
                               int m, int n, float alpha, float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b);
        __m512 b1 = vecs > 1 ? _mm512_load_ps(b + 16) : b0;
#pragma GCC unroll 12
        for (int r = 0; r < rows; r++) {
            __m512 ar = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            if (vecs > 1) acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
        a += MR;
        b += NR;
    }
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

#define DEFINE_KERNEL(name, rows, vecs) \
    TARGET_AVX512 static void name(int kc, const float *restrict a, const float *restrict b, \
                                   float *restrict c, long ldc, int m, int n, float alpha, float beta) { \
        kernel_body(rows, vecs, kc, a, b, c, ldc, m, n, alpha, beta); \
    }
DEFINE_KERNEL(kernel_12x32, 12, 2)
DEFINE_KERNEL(kernel_12x16, 12, 1)
DEFINE_KERNEL(kernel_8x32, 8, 2)
DEFINE_KERNEL(kernel_8x16, 8, 1)
DEFINE_KERNEL(kernel_4x32, 4, 2)
DEFINE_KERNEL(kernel_4x16, 4, 1)

// The path's kernel: full tiles take 12 x 32; edge tiles (small matrices,
// attention heads with T = 10..40) take the smallest variant that covers
// them instead of multiplying zero padding.
TARGET_AVX512
static void kernel_avx512(int kc, const float *restrict a, const float *restrict b,
                          float *restrict c, long ldc, int m, int n, float alpha, float beta) {
    if (m > 8) {
        if (n > 16) kernel_12x32(kc, a, b, c, ldc, m, n, alpha, beta);
        else kernel_12x16(kc, a, b, c, ldc, m, n, alpha, beta);
    } else if (m > 4) {
        if (n > 16) kernel_8x32(kc, a, b, c, ldc, m, n, alpha, beta);
        else kernel_8x16(kc, a, b, c, ldc, m, n, alpha, beta);
    } else {
        if (n > 16) kernel_4x32(kc, a, b, c, ldc, m, n, alpha, beta);
        else kernel_4x16(kc, a, b, c, ldc, m, n, alpha, beta);
    }
}

// ---------------------------------------------------------------------------
// Packing (see gemm.c for the panel layout: panel[k * w + r], zero lanes
// beyond n). Packing costs one pass over each operand block while the kernel
// reuses it N/32 (A) or MC/12 (B) times, so with d_model = 128 a scalar
// packer would eat a fifth of the time; these move 16 floats per instruction.

// In-register transpose of 16 x 16 floats: r[i] lane j  ->  r[j] lane i.
TARGET_AVX512
__attribute__((always_inline)) static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    // Now 128-bit lane L of r[4q + s] holds rows 4q..4q+3 of column 4L + s;
    // two rounds of 128-bit lane shuffles gather column c's four lanes.
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);       // lanes 0,2 of r[i] | 0,2 of r[i+4]
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);   // lanes 1,3 | 1,3
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

// panel[k * w + r] = src[r * ld + k] for r < n <= w (w = 12 or 32), k < kc.
// Blocks of 16 rows x 16 steps are transposed in registers.
TARGET_AVX512
static void pack_rows(float *panel, const float *src, long ld, int n, int kc, int w) {
    for (int r0 = 0; r0 < w; r0 += 16) {
        int rows = n - r0 < 16 ? (n - r0 > 0 ? n - r0 : 0) : 16;
        int lanes = w - r0 < 16 ? w - r0 : 16;        // 12 when w = 12
        __mmask16 store_mask = tail_mask(lanes);
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int steps = kc - k0 < 16 ? kc - k0 : 16;
            __mmask16 load_mask = tail_mask(steps);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(load_mask, src + (r0 + i) * ld + k0) : _mm512_setzero_ps();
            transpose16(r);
            float *d = panel + (long)k0 * w + r0;
#pragma GCC unroll 16
            for (int i = 0; i < steps; i++) _mm512_mask_storeu_ps(d + (long)i * w, store_mask, r[i]);
        }
    }
}

// panel[k * w + r] = src[k * ld + r] for r < n <= w (w = 12 or 32), k < kc.
TARGET_AVX512
static void pack_columns(float *panel, const float *src, long ld, int n, int kc, int w) {
    if (w == 12) {
        __mmask16 load_mask = tail_mask(n), store_mask = tail_mask(12);
        for (int k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(panel + k * 12, store_mask, _mm512_maskz_loadu_ps(load_mask, src + k * ld));
        return;
    }
    __mmask16 mask0 = tail_mask(n), mask1 = tail_mask(n - 16);
    for (int k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        _mm512_storeu_ps(panel + k * 32, _mm512_maskz_loadu_ps(mask0, s));
        _mm512_storeu_ps(panel + k * 32 + 16, _mm512_maskz_loadu_ps(mask1, s + 16));
    }
}

static const GemmPathDesc avx512_path = {"avx512", MR, NR, kernel_avx512, pack_rows, pack_columns};
const GemmPathDesc *gemm_avx512_path(void) { return &avx512_path; }

#else
const GemmPathDesc *gemm_avx512_path(void) { return 0; }
#endif
