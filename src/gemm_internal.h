// Internal to src/gemm*.c: the micro-kernels of each instruction set and the
// description of a path (register tile + kernel) that the driver in gemm.c
// runs. Not part of the public API.
#ifndef ATTN_GEMM_INTERNAL_H
#define ATTN_GEMM_INTERNAL_H

// A micro-kernel computes one register tile of C from packed panels:
//     acc (mr, nr) = a (kc, mr)^T-panel  x  b (kc, nr)-panel,  summed over k in order
//     C[0:m, 0:n] = alpha * acc + beta * C[0:m, 0:n]
// a is an A micro-panel: row r's value of step k at a[r * a_rstride + k *
// a_step] (packed: a_rstride 1, a_step mr; read in place from A: a_rstride
// 1, a_step lda when A is transposed, a_rstride lda, a_step 1 when not); b a B
// micro-panel, step k's nr values at b + k * b_step (packed: b_step nr, the
// panel 64-byte aligned; read in place from a B that is not transposed:
// b_step ldb). m <= mr and n <= nr say how much of the tile is inside C; the
// panels are zero-padded beyond. beta == 0 stores without reading C.
// prefetch_b: this is the first tile to read the B panel in its unit, so
// the panel comes from L3 or memory; the kernel asks for it ahead of use.
typedef void (*GemmKernel)(int kc, const float *a, long a_step, long a_rstride, const float *b, long b_step,
                           float *c, long ldc, int m, int n, float alpha, float beta, int prefetch_b);

// Packers fill a panel of width w (mr for A, nr for B): panel[k * w + r] for
// k < kc, r < w, lanes r >= n zero. "rows": source vector r is contiguous
// along k, src[r * ld + k] (A not transposed, B transposed). "columns": the
// values of one k are contiguous, src[k * ld + r] (A transposed, B not).
typedef void (*GemmPack)(float *panel, const float *src, long ld, int n, int kc, int w);

// Direct kernels read A and B where they lie, for products with a few rows
// (M <= 4: one query of cached attention) where packing B would cost more
// than the multiply. Each computes the columns [j0, j1) of all M rows of C:
//   dot (trans_a = 0, trans_b = 1): C[i, j] = alpha <A row i, B row j> + beta C[i, j]
//   rows (trans_b = 0):             C[i, :] = alpha sum_k op(A)[i, k] B[k, :] + beta C[i, :]
typedef void (*GemmDirect)(int trans_a, int M, int j0, int j1, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc);

// Asks for a tile's rows of C (m rows of n floats, ldc apart) with intent to
// write, before the tile's sum runs, so that the stores at its end find the
// lines in cache. Without it, when C's rows are a multiple of 4 KiB apart
// (the d_ff-wide outputs of the FFN: 1024 or 2048 floats), a tile's stores
// all wait on memory in the same few cache sets and hold up the next
// tile's loads: base ffn1 forward ran at 424 GFLOP/s against 480 with it
// (2 threads), base training steps 5% and small 7% faster.
static inline void prefetch_c_tile(const float *c, long ldc, int m, int n) {
    for (int r = 0; r < m; r++) {
        for (int j = 0; j < n; j += 16) __builtin_prefetch(c + r * ldc + j, 1, 3);
        __builtin_prefetch(c + r * ldc + n - 1, 1, 3);   // an unaligned row's last line
    }
}

typedef struct {
    const char *name;
    int mr, nr;          // register tile
    GemmKernel kernel;
    GemmPack pack_rows, pack_columns;   // NULL: gemm.c's portable packers
    GemmDirect direct_dot, direct_rows; // NULL: always pack
    int a_in_place;      // full panels of A are read in place (a_step, a_rstride), not packed
    int b_in_place;      // full panels of a B that is not transposed are read in place (b_step ldb)
} GemmPathDesc;

// Each returns NULL when the instruction set is not compiled in.
const GemmPathDesc *gemm_avx512_path(void);
const GemmPathDesc *gemm_avx2_path(void);
const GemmPathDesc *gemm_bf16_path(void);

#endif
