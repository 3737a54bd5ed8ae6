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
#include "gemm_avx512_tile.h"
#include <math.h>

#define MR 12
#define NR 32
// Steps of k ahead that a first pass over a B panel prefetches (16 KiB at
// b_step 32). A decoding step multiplies 32-64 rows by every weight matrix
// once, so each panel is read from L3 or memory, and the hardware
// prefetchers left the kernel waiting: a small decoding step's products
// took 1.70 ms without, 1.36 ms at 32 steps ahead, 1.23 ms at 128.
#define B_PREFETCH_STEPS 128

#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,fma")))

// The kernel body for a tile of `rows` x (16 * vecs) within the 12 x 32
// panels: compile-time constants after inlining, so each variant keeps only
// the accumulators it needs. Every variant sums each element over k in the
// same order, so which one computes a tile never changes the result.
__attribute__((always_inline)) TARGET_AVX512
static inline void kernel_body(const int rows, const int vecs, const int prefetch, int kc, const float *restrict a,
                               long a_step, long a_rstride, const float *restrict b, long b_step,
                               float *restrict c, long ldc, int m, int n, float alpha, float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int r = 0; r < rows; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    prefetch_c_tile(c, ldc, m < rows ? m : rows, n < 16 * vecs ? n : 16 * vecs);
    // Rows in groups of three from four base pointers: the compiler keeps
    // three offsets (0, a_rstride, 2 a_rstride) in registers and steps them.
    const float *base[4] = {a, a + 3 * a_rstride, a + 6 * a_rstride, a + 9 * a_rstride};
    for (long k = 0; k < kc; k++) {
        if (prefetch) {
            _mm_prefetch((const char *)(b + B_PREFETCH_STEPS * b_step), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + B_PREFETCH_STEPS * b_step + 16), _MM_HINT_T0);
        }
        __m512 b0 = _mm512_loadu_ps(b);
        __m512 b1 = vecs > 1 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 12
        for (int r = 0; r < rows; r++) {
            __m512 ar = _mm512_set1_ps(base[r / 3][(r % 3) * a_rstride + k * a_step]);
            acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
            if (vecs > 1) acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
        }
        b += b_step;
    }
    store_tile(acc, rows, vecs, c, ldc, m, n, alpha, beta);
}

#define DEFINE_KERNEL(name, rows, vecs, prefetch) \
    TARGET_AVX512 static void name(int kc, const float *restrict a, long a_step, long a_rstride, const float *restrict b, \
                                   long b_step, float *restrict c, long ldc, int m, int n, float alpha, float beta) { \
        kernel_body(rows, vecs, prefetch, kc, a, a_step, a_rstride, b, b_step, c, ldc, m, n, alpha, beta); \
    }
DEFINE_KERNEL(kernel_12x32, 12, 2, 0)
DEFINE_KERNEL(kernel_12x16, 12, 1, 0)
DEFINE_KERNEL(kernel_8x32, 8, 2, 0)
DEFINE_KERNEL(kernel_8x16, 8, 1, 0)
DEFINE_KERNEL(kernel_4x32, 4, 2, 0)
DEFINE_KERNEL(kernel_4x16, 4, 1, 0)
DEFINE_KERNEL(kernel_12x32_prefetch, 12, 2, 1)
DEFINE_KERNEL(kernel_8x32_prefetch, 8, 2, 1)
DEFINE_KERNEL(kernel_4x32_prefetch, 4, 2, 1)

typedef void (*TileKernel)(int kc, const float *restrict a, long a_step, long a_rstride, const float *restrict b,
                           long b_step, float *restrict c, long ldc, int m, int n, float alpha, float beta);

// The path's kernel: full tiles take 12 x 32; edge tiles (small matrices,
// attention heads with T = 10..40) take the smallest variant that covers
// them instead of multiplying zero padding. A first pass over a full-width
// panel takes the prefetching variant.
TARGET_AVX512
static void kernel_avx512(int kc, const float *restrict a, long a_step, long a_rstride, const float *restrict b,
                          long b_step, float *restrict c, long ldc, int m, int n, float alpha, float beta,
                          int prefetch_b) {
    static const TileKernel wide[2][3] = {{kernel_4x32, kernel_8x32, kernel_12x32},
                                          {kernel_4x32_prefetch, kernel_8x32_prefetch, kernel_12x32_prefetch}};
    static const TileKernel narrow[3] = {kernel_4x16, kernel_8x16, kernel_12x16};
    int size = m > 8 ? 2 : m > 4 ? 1 : 0;
    TileKernel k = n > 16 ? wide[prefetch_b != 0][size] : narrow[size];
    k(kc, a, a_step, a_rstride, b, b_step, c, ldc, m, n, alpha, beta);
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

// ---------------------------------------------------------------------------
// Direct kernels (see gemm_internal.h): no packing at all.

// Sums each of 16 vectors: lane q of the result is the sum of v[q]'s lanes.
// A tree of 30 shuffles and 15 adds instead of 16 separate reductions.
__attribute__((always_inline)) TARGET_AVX512
static inline __m512 sum16(const __m512 v[16]) {
    __m512 x[8], y[4];
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++)  // lanes 0, 2 of each 128-bit block: v[2p]; 1, 3: v[2p+1]
        x[p] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]), _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]));
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {  // block element e of y[q]: v[4q + e], summed over 4 of its lanes
        __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(x[2 * q]), _mm512_castps_pd(x[2 * q + 1]));
        __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(x[2 * q]), _mm512_castps_pd(x[2 * q + 1]));
        y[q] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
    }
    // Sum the four 128-bit blocks of each y[q] into block q of the result.
    __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x88), _mm512_shuffle_f32x4(y[0], y[1], 0xDD));
    __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(y[2], y[3], 0x88), _mm512_shuffle_f32x4(y[2], y[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x88), _mm512_shuffle_f32x4(u0, u1, 0xDD));
}

// C[i0 + r, j0 + c] for r < m <= 4, c < n <= 4: 16 dot products over k,
// 16 floats of k at a time. Rows past m (columns past n) repeat the last
// one, so the loop has no branches; their sums are not stored.
TARGET_AVX512
static void dot_tile(int K, const float *A, long lda, int m, const float *B, long ldb, int n,
                     float *C, long ldc, float alpha, float beta) {
    const float *a[4], *b[4];
    for (int r = 0; r < 4; r++) {
        a[r] = A + (r < m ? r : m - 1) * lda;
        b[r] = B + (r < n ? r : n - 1) * ldb;
    }
    __m512 acc[16];
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 va[4], vb[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) { va[r] = _mm512_loadu_ps(a[r] + k); vb[r] = _mm512_loadu_ps(b[r] + k); }
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++) acc[q] = _mm512_fmadd_ps(va[q / 4], vb[q % 4], acc[q]);
    }
    if (k < K) {
        __mmask16 mask = tail_mask(K - k);
        __m512 va[4], vb[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            va[r] = _mm512_maskz_loadu_ps(mask, a[r] + k);
            vb[r] = _mm512_maskz_loadu_ps(mask, b[r] + k);
        }
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++) acc[q] = _mm512_fmadd_ps(va[q / 4], vb[q % 4], acc[q]);
    }
    float sums[16];
    _mm512_storeu_ps(sums, sum16(acc));
    for (int r = 0; r < m; r++) {
        float *c = C + r * ldc;
        for (int j = 0; j < n; j++)
            c[j] = beta != 0.0f ? fmaf(beta, c[j], alpha * sums[4 * r + j]) : alpha * sums[4 * r + j];
    }
}

// One row of A against n <= 16 rows of B: the 16 sums land in one vector.
// (Cached attention: one query against the keys.)
TARGET_AVX512
static void dot_row16(int K, const float *a, const float *B, long ldb, int n,
                      float *c, float alpha, float beta) {
    const float *b[16];
    for (int q = 0; q < 16; q++) b[q] = B + (q < n ? q : n - 1) * ldb;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 16) {
        __mmask16 mask = tail_mask(K - k);
        __m512 va = _mm512_maskz_loadu_ps(mask, a + k);
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++) acc[q] = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mask, b[q] + k), acc[q]);
    }
    __mmask16 out = tail_mask(n);
    __m512 x = _mm512_mul_ps(_mm512_set1_ps(alpha), sum16(acc));
    if (beta != 0.0f) x = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(out, c), x);
    _mm512_mask_storeu_ps(c, out, x);
}

// (0,1): one row of A against 16 rows of B at a time, or tiles of 4 rows
// of B against the (2 to 4) rows of A.
TARGET_AVX512
static void direct_dot(int trans_a, int M, int j0, int j1, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc) {
    (void)trans_a;  // always 0 here
    if (M == 1) {
        for (int j = j0; j < j1; j += 16)
            dot_row16(K, A, B + (long)j * ldb, ldb, j1 - j < 16 ? j1 - j : 16, C + j, alpha, beta);
        return;
    }
    for (int j = j0; j < j1; j += 4) {
        int n = j1 - j < 4 ? j1 - j : 4;
        for (int i = 0; i < M; i += 4) {
            int m = M - i < 4 ? M - i : 4;
            dot_tile(K, A + (long)i * lda, lda, m, B + (long)j * ldb, ldb, n,
                     C + (long)i * ldc + j, ldc, alpha, beta);
        }
    }
}

// One row: C[0, j0:j1) = alpha sum_k a[k * a_step] B[k, j0:j1) + beta C.
// Even and odd k accumulate apart (8 chains, enough to cover the FMA
// latency), then add; 64 columns at a time. (Cached attention: the
// probabilities of one query times the values.)
TARGET_AVX512
static void direct_row1(const float *a, long a_step, int j0, int j1, int K, float alpha,
                        const float *B, int ldb, float beta, float *C) {
    __m512 va = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
    for (int j = j0; j < j1; j += 64) {
        int n = j1 - j < 64 ? j1 - j : 64;
        __mmask16 mask[4];
        for (int v = 0; v < 4; v++) mask[v] = tail_mask(n - 16 * v);
        __m512 even[4], odd[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) even[v] = odd[v] = _mm512_setzero_ps();
        int k = 0;
        for (; k + 2 <= K; k += 2) {
            const float *b = B + (long)k * ldb + j;
            __m512 a0 = _mm512_set1_ps(a[k * a_step]), a1 = _mm512_set1_ps(a[(k + 1) * a_step]);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                even[v] = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(mask[v], b + 16 * v), even[v]);
                odd[v] = _mm512_fmadd_ps(a1, _mm512_maskz_loadu_ps(mask[v], b + ldb + 16 * v), odd[v]);
            }
        }
        if (k < K) {
            const float *b = B + (long)k * ldb + j;
            __m512 a0 = _mm512_set1_ps(a[k * a_step]);
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) even[v] = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(mask[v], b + 16 * v), even[v]);
        }
        float *c = C + j;
        for (int v = 0; v < 4; v++) {
            __m512 x = _mm512_mul_ps(va, _mm512_add_ps(even[v], odd[v]));
            if (beta != 0.0f) x = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mask[v], c + 16 * v), x);
            _mm512_mask_storeu_ps(c + 16 * v, mask[v], x);
        }
    }
}

// (x,0) with M <= 4: each row of B is loaded once and used by every row of
// C; 64 columns (four vectors) at a time.
TARGET_AVX512
static void direct_rows(int trans_a, int M, int j0, int j1, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc) {
    if (M == 1) {
        direct_row1(A, trans_a ? lda : 1, j0, j1, K, alpha, B, ldb, beta, C);
        return;
    }
    long a_row = trans_a ? 1 : lda, a_step = trans_a ? lda : 1;  // op(A)[r, k] = A[r * a_row + k * a_step]
    const float *a[4];
    for (int r = 0; r < 4; r++) a[r] = A + (r < M ? r : M - 1) * a_row;
    __m512 va = _mm512_set1_ps(alpha), vbeta = _mm512_set1_ps(beta);
    for (int j = j0; j < j1; j += 64) {
        int n = j1 - j < 64 ? j1 - j : 64;
        __mmask16 mask[4];
        for (int v = 0; v < 4; v++) mask[v] = tail_mask(n - 16 * v);
        __m512 acc[4][4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
        for (int k = 0; k < K; k++) {
            const float *b = B + (long)k * ldb + j;
            __m512 vb[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) vb[v] = _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                __m512 ar = _mm512_set1_ps(a[r][k * a_step]);
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(ar, vb[v], acc[r][v]);
            }
        }
        for (int r = 0; r < M; r++) {
            float *c = C + (long)r * ldc + j;
            for (int v = 0; v < 4; v++) {
                __m512 x = _mm512_mul_ps(va, acc[r][v]);
                if (beta != 0.0f) x = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mask[v], c + 16 * v), x);
                _mm512_mask_storeu_ps(c + 16 * v, mask[v], x);
            }
        }
    }
}

static const GemmPathDesc avx512_path = {"avx512", MR, NR, kernel_avx512, pack_rows, pack_columns,
                                           direct_dot, direct_rows, 1, 1};
const GemmPathDesc *gemm_avx512_path(void) { return &avx512_path; }

#else
const GemmPathDesc *gemm_avx512_path(void) { return 0; }
#endif
