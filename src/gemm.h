// Row-major single-precision matrix multiply, the one hot spot of the model:
//     C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C
// op(A) = A (M, K) with leading dimension lda, or A^T when trans_a (A is (K, M)).
// op(B) = B (K, N) with leading dimension ldb, or B^T when trans_b (B is (N, K)).
// beta == 0 overwrites C without reading it (NaNs in C do not leak through).
//
// The Linear layer y = x W^T uses (trans_a=0, trans_b=1); its backward uses
// dx = dy W (0, 0) and dW += dy^T x (1, 0).
//
// gemm() uses threads_get() threads (src/threads.h), or one thread when
// called from inside a pool task or for a small product. Results are
// bit-identical for every thread count: threads split C, never the sum.
#ifndef ATTN_GEMM_H
#define ATTN_GEMM_H

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb,
          float beta, float *C, int ldc);

// Work fused into the product: fn(ctx, C, ldc, i0, m, j0, n) runs on each
// block of C, rows [i0, i0 + m) and columns [j0, j0 + n), as soon as the
// block is final (its whole sum is in), while it is still in cache: a bias,
// an activation and a dropout cost no pass of their own over C. The blocks
// are disjoint and cover C once; they run on any thread, in any order, so
// fn must treat each element on its own (by its row and column).
typedef struct {
    void (*fn)(const void *ctx, float *C, int ldc, int i0, int m, int j0, int n);
    const void *ctx;
} GemmEpilogue;

// gemm() with an epilogue (ep NULL: none).
void gemm_epilogue(int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const GemmEpilogue *ep);

// The plain-C reference that the fast path is tested against.
void gemm_reference(int trans_a, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);

// op(B) packed once for many products: the weights of a Linear layer
// during decoding, where repacking them at every step costs as much as the
// multiply when only a few dozen rows go through. gemm_prepacked(..., pb,
// ...) computes C (M, N) = alpha op(A) op(B) + beta C exactly as gemm()
// would for the same op(B) (the same kernels and sum order, so bit-identical
// results for M > 4; gemm uses unpacked kernels for M <= 4). The packing
// belongs to the path current at gemm_pack_b time. Memory: about K x N floats.
typedef struct {
    int trans_b, K, N, path;
    float *panels;
} GemmPackedB;

// Packs op(B) (K, N): B is (K, N), or (N, K) when trans_b. pb must be
// zeroed or hold an earlier packing: one of the same shape, transposition
// and path has its memory reused (a trainer's translator repacks the
// decoder's weights before every decoded validation into pages that are
// already mapped), any other is freed.
// Returns -1 for an empty matrix.
int gemm_pack_b(GemmPackedB *pb, int trans_b, int K, int N, const float *B, int ldb);
void gemm_packed_b_free(GemmPackedB *pb);
void gemm_prepacked(int trans_a, int M, float alpha, const float *A, int lda,
                    const GemmPackedB *pb, float beta, float *C, int ldc, const GemmEpilogue *ep);

// Instruction-set paths of gemm(). AUTO picks the best float32 one CPUID
// reports (AVX-512, else AVX2 + FMA, else the reference). AVX512_BF16 is an
// option, never picked by AUTO: inputs rounded to bfloat16, products summed
// in float32 (AVX512-BF16 vdpbf16ps), about 3 significant digits per input.
enum { GEMM_PATH_AUTO = 0, GEMM_PATH_REFERENCE = 1, GEMM_PATH_AVX2 = 2, GEMM_PATH_AVX512 = 3,
       GEMM_PATH_AVX512_BF16 = 4 };
// Forces a path for all later calls (tests and benchmarks). Returns -1 and
// changes nothing when this CPU or build cannot run it. Not thread-safe
// against concurrent gemm() calls.
int gemm_set_path(int path);
// The path gemm() runs now (never AUTO).
int gemm_get_path(void);
const char *gemm_path_name(int path);

#endif
