// Single-precision matrix multiply: the plain-C reference and the fast path.
//
// The fast path is the BLIS/GotoBLAS loop nest. For each block of NC columns
// of C and each block of KC steps of the sum, the (KC, NC) block of op(B) is
// packed into NR-wide column panels that all threads share; each thread then
// packs (MC, KC) blocks of op(A) of its own rows into MR-high row panels and
// runs the micro-kernel over its MR x NR tiles. Packing turns all four
// transposition cases into the same contiguous panels, so one kernel serves
// them all. Sizes for this machine (Zen 5: 48 KiB L1d, 1 MiB L2 per core):
// a (KC, NR) B micro-panel, 32 KiB, stays in L1 while the kernel runs down the
// A block; the (MC, KC) A block, 192 KiB, stays in L2; the packed B block,
// 2 MiB, lives in L2/L3.
//
// Determinism: threads split C by rows (or by columns when C is short and
// wide), never the sum over k. Every element of C is summed in the same
// order, k = 0..K-1 in blocks of KC, whatever the thread count, so results
// are bit-identical for 1, 2 or more threads and for the serial small-matrix
// path. Called from inside a task of the thread pool (attention per head),
// gemm runs serially in the calling thread.
#include "gemm.h"
#include "gemm_internal.h"
#include "threads.h"
#include "common.h"
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#ifndef GEMM_KC
#define GEMM_KC 768     // at most this many steps of the sum per packed block
#endif
#ifndef GEMM_MC
#define GEMM_MC 192     // rows of A per packed block (rounded to MR)
#endif
#ifndef GEMM_NC
#define GEMM_NC 2048    // columns of B per packed block (rounded to NR)
#endif
// Below this many multiply-adds a gemm runs on one thread: waking the pool
// costs a few microseconds, about what 2^18 multiply-adds take.
#define GEMM_PARALLEL_MIN_MACS (1L << 18)
// Products with at most this many rows skip packing (one query of cached
// attention, tiny batches): dot products for A B^T, row updates for op(A) B.
// With more rows packing pays for itself: on A B^T with 64 rows the dot
// products ran at 90 GFLOP/s against 220 for the packed kernel.
// Which A is read in place rather than packed (tuning switch).
#ifndef A_IN_PLACE_ENABLED
#define A_IN_PLACE_ENABLED(trans_a) 1
#endif
// An untransposed B is read in place (not packed) when the sum is at most
// this long: then its rows are few and stay in L1/L2 for all the row tiles,
// and packing (one pass over B per product) cost more than the strided
// reads. Over longer sums the packed, contiguous panels stream better (the
// generator's dW at K = 2560: 433 GFLOP/s packed against 344 in place).
#ifndef GEMM_B_IN_PLACE_MAX_K
#define GEMM_B_IN_PLACE_MAX_K 256
#endif
#ifndef GEMM_DIRECT_MAX_M
#define GEMM_DIRECT_MAX_M 4
#endif

// ---------------------------------------------------------------------------
// Reference

void gemm_reference(int trans_a, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float sum = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(long)k * lda + i] : A[(long)i * lda + k];
                float b = trans_b ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
                sum += a * b;
            }
            float *c = &C[(long)i * ldc + j];
            *c = alpha * sum + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}

// ---------------------------------------------------------------------------
// Path selection

static int chosen_path = -1;  // -1: not resolved yet

static const GemmPathDesc *path_desc(int path) {
    if (path == GEMM_PATH_AVX512) return gemm_avx512_path();
    if (path == GEMM_PATH_AVX2) return gemm_avx2_path();
    if (path == GEMM_PATH_AVX512_BF16) return gemm_bf16_path();
    return NULL;
}

static int path_supported(int path) {
    if (path == GEMM_PATH_REFERENCE) return 1;
    if (!path_desc(path)) return 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (path == GEMM_PATH_AVX512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    if (path == GEMM_PATH_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (path == GEMM_PATH_AVX512_BF16)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
#endif
    return 0;
}

static int best_path(void) {
    if (path_supported(GEMM_PATH_AVX512)) return GEMM_PATH_AVX512;
    if (path_supported(GEMM_PATH_AVX2)) return GEMM_PATH_AVX2;
    return GEMM_PATH_REFERENCE;
}

int gemm_set_path(int path) {
    if (path == GEMM_PATH_AUTO) { chosen_path = best_path(); return 0; }
    if (path != GEMM_PATH_REFERENCE && path != GEMM_PATH_AVX2 && path != GEMM_PATH_AVX512 &&
        path != GEMM_PATH_AVX512_BF16)
        return -1;
    if (!path_supported(path)) return -1;
    chosen_path = path;
    return 0;
}

int gemm_get_path(void) {
    if (chosen_path < 0) chosen_path = best_path();
    return chosen_path;
}

const char *gemm_path_name(int path) {
    switch (path) {
    case GEMM_PATH_AUTO: return "auto";
    case GEMM_PATH_REFERENCE: return "reference";
    case GEMM_PATH_AVX2: return "avx2";
    case GEMM_PATH_AVX512: return "avx512";
    case GEMM_PATH_AVX512_BF16: return "avx512-bf16";
    default: return "unknown";
    }
}

// ---------------------------------------------------------------------------
// Packing. A panel of width w holds kc rows of w floats: panel[k * w + r].
// Both operands are packed by one of two routines: "rows" when each of the w
// source vectors is contiguous along k (A not transposed, B transposed),
// "columns" when the w values of one k are contiguous (A transposed, B not).
// Lanes r >= n are zero, so the kernel can always compute a full tile.

// panel[k * w + r] = src[r * ld + k], r < n (n <= w), k < kc.
static void pack_panel_rows(float *panel, const float *src, long ld, int n, int kc, int w) {
    int r = 0;
#if defined(__x86_64__)
    // Four source rows at a time through an in-register 4 x 4 transpose.
    for (; r + 4 <= n; r += 4) {
        const float *s0 = src + r * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
        int k = 0;
        for (; k + 4 <= kc; k += 4) {
            __m128 x0 = _mm_loadu_ps(s0 + k), x1 = _mm_loadu_ps(s1 + k);
            __m128 x2 = _mm_loadu_ps(s2 + k), x3 = _mm_loadu_ps(s3 + k);
            _MM_TRANSPOSE4_PS(x0, x1, x2, x3);
            float *d = panel + (long)k * w + r;
            _mm_storeu_ps(d, x0);
            _mm_storeu_ps(d + w, x1);
            _mm_storeu_ps(d + 2 * w, x2);
            _mm_storeu_ps(d + 3 * w, x3);
        }
        for (; k < kc; k++) {
            float *d = panel + (long)k * w + r;
            d[0] = s0[k]; d[1] = s1[k]; d[2] = s2[k]; d[3] = s3[k];
        }
    }
#endif
    for (; r < n; r++)
        for (int k = 0; k < kc; k++) panel[(long)k * w + r] = src[r * ld + k];
    if (n < w)
        for (int k = 0; k < kc; k++) memset(panel + (long)k * w + n, 0, (size_t)(w - n) * sizeof(float));
}

// panel[k * w + r] = src[k * ld + r], r < n (n <= w), k < kc.
static void pack_panel_columns(float *panel, const float *src, long ld, int n, int kc, int w) {
    for (int k = 0; k < kc; k++) {
        const float *s = src + k * ld;
        float *d = panel + (long)k * w;
        for (int r = 0; r < n; r++) d[r] = s[r];
        for (int r = n; r < w; r++) d[r] = 0.0f;
    }
}

// Packs rows [i0, i0+mc) and sum steps [p0, p0+kc) of op(A) into MR panels.
static void pack_a_block(const GemmPathDesc *path, float *packed, int trans_a, const float *A, int lda,
                         int i0, int mc, int p0, int kc) {
    const int mr = path->mr;
    GemmPack rows_packer = path->pack_rows ? path->pack_rows : pack_panel_rows;
    GemmPack columns_packer = path->pack_columns ? path->pack_columns : pack_panel_columns;
    for (int ir = 0; ir < mc; ir += mr) {
        int rows = mc - ir < mr ? mc - ir : mr;
        float *panel = packed + (long)ir * kc;
        if (trans_a) columns_packer(panel, A + (long)p0 * lda + i0 + ir, lda, rows, kc, mr);
        else rows_packer(panel, A + (long)(i0 + ir) * lda + p0, lda, rows, kc, mr);
    }
}

// Packs NR panel `q` (columns j0 + q*nr ...) of the block of op(B) at sum steps [p0, p0+kc).
static void pack_b_panel(const GemmPathDesc *path, float *packed, int trans_b, const float *B, int ldb,
                         int j0, int nc, int q, int p0, int kc) {
    const int nr = path->nr;
    int jr = q * nr;
    int cols = nc - jr < nr ? nc - jr : nr;
    float *panel = packed + (long)jr * kc;
    if (trans_b) (path->pack_rows ? path->pack_rows : pack_panel_rows)(panel, B + (long)(j0 + jr) * ldb + p0, ldb, cols, kc, nr);
    else (path->pack_columns ? path->pack_columns : pack_panel_columns)(panel, B + (long)p0 * ldb + j0 + jr, ldb, cols, kc, nr);
}

// ---------------------------------------------------------------------------
// Per-thread packing buffers. Thread-local, grown on demand and kept: the
// pool's workers live as long as the process, and so do their buffers, so
// the training step allocates nothing after its first call.

static _Thread_local float *tls_a_buf, *tls_b_buf;
static _Thread_local size_t tls_a_cap, tls_b_cap;

static float *grow_buffer(float **buf, size_t *cap, size_t n) {
    if (n <= *cap) return *buf;
    free(*buf);
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) abort();  // out of memory: not recoverable here
    *buf = p;
    *cap = n;
    return *buf;
}

// ---------------------------------------------------------------------------
// The loop nest, run by each of nt threads (tid) of a team, or by one thread.
// Work is handed out in units (a block of rows x a group of column panels of
// C) from a shared counter, so a thread that the OS preempts (a machine
// shared with other work) holds up at most one unit instead of half the
// product, and no thread waits at a barrier for one that has nothing to do.
// Which thread computes a unit never changes its result.

typedef struct {
    int trans_a, trans_b, M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    int lda, ldb, ldc;
    const float *prepacked_b;  // gemm_pack_b's panels of all of op(B), or NULL to pack here
    const GemmEpilogue *ep;    // run on each final block of C, or NULL
} GemmArgs;

static void run_epilogue(const GemmArgs *g, int i0, int m, int j0, int n) {
    if (g->ep && m > 0 && n > 0) g->ep->fn(g->ep->ctx, g->C, g->ldc, i0, m, j0, n);
}

// Where the packed (kc, nc) block of op(B) at (jc, pc) starts in a full
// prepacked op(B): blocks of NC columns one after the other, each holding its
// K rows as KC blocks of NR-wide panels.
static long prepacked_offset(int K, int nr, int jc, int nc, int pc) {
    return (long)jc * K + (long)(nc + nr - 1) / nr * nr * pc;
}

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Steps of the sum per packed block for a sum of K: K in equal blocks of at
// most GEMM_KC (a multiple of 16), so that no block is a short remainder.
// Every pass over the sum after the first reads and writes all of C again,
// which for the generator's (B*T, V) output is the dominant cost: K = 512 in
// one block ran 15-20% faster than in two of 256, and a B micro-panel of
// up to 768 x 32 floats streams from L2 fast enough. Depends on K only, so
// the sum order stays the same for every thread count.
static int k_block(int K) {
    int blocks = ceil_div(K, GEMM_KC);
    return ceil_div(ceil_div(K, blocks), 16) * 16;
}

// Work of all phases (packing a block of B, computing the units of C with
// it, the next block, ...) is numbered in one sequence. `claimed` hands out
// the items of the current phase; `done` counts finished items, and a phase
// starts only when every item before it is done. So threads wait for work in
// flight, never for a thread that is idle or preempted: whoever runs takes
// the next item.
typedef struct {
    int claimed;
    int done;
} GemmWork;

// The next item of the phase [start, end), or -1 when all are taken.
static int claim_item(GemmWork *w, int start, int end) {
    int cur = __atomic_load_n(&w->claimed, __ATOMIC_RELAXED);
    while (cur < end) {
        if (__atomic_compare_exchange_n(&w->claimed, &cur, cur + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return cur - start;
    }
    return -1;
}

static void finish_item(GemmWork *w) { __atomic_fetch_add(&w->done, 1, __ATOMIC_RELEASE); }

// Waits until the first `count` items are done (their writes visible).
static void wait_done(GemmWork *w, int count) {
    for (int spins = 0; __atomic_load_n(&w->done, __ATOMIC_ACQUIRE) < count; spins++) {
#if defined(__x86_64__)
        _mm_pause();
#endif
        if (spins > 64) sched_yield();  // let a preempted worker finish its item
    }
}

// The units of C for a team of nt: rows in blocks of at most MC (smaller
// when M is short, so that there are about 4 units per thread), and when
// even that leaves too few units, column panels in groups.
static void plan_units(int M, int panels, int mr, int nt, int *block_rows, int *row_blocks, int *group_panels) {
    int tiles_m = ceil_div(M, mr);
    int want = 4 * nt;
    int tiles_per_block = GEMM_MC / mr;
    if (nt > 1 && ceil_div(tiles_m, tiles_per_block) < want) tiles_per_block = ceil_div(tiles_m, want);
    if (tiles_per_block < 1) tiles_per_block = 1;
    *block_rows = tiles_per_block * mr;
    *row_blocks = ceil_div(M, *block_rows);
    int groups = nt > 1 && *row_blocks < want ? ceil_div(want, *row_blocks) : 1;
    if (groups > panels) groups = panels;
    *group_panels = ceil_div(panels, groups);
}

static void gemm_thread(const GemmArgs *g, const GemmPathDesc *path, float *packed_b, GemmWork *work, int nt) {
    const int mr = path->mr, nr = path->nr;
    const int nc_max = GEMM_NC / nr * nr;
    float *packed_a = grow_buffer(&tls_a_buf, &tls_a_cap, (size_t)GEMM_MC / mr * mr * GEMM_KC);
    const int a_in_place = path->a_in_place && A_IN_PLACE_ENABLED(g->trans_a);
    const int b_in_place = path->b_in_place && !g->trans_b && !g->prepacked_b && g->K <= GEMM_B_IN_PLACE_MAX_K;
    int start = 0, item;  // first item of the current phase

    for (int jc = 0; jc < g->N; jc += nc_max) {
        int nc = g->N - jc < nc_max ? g->N - jc : nc_max;
        int panels = ceil_div(nc, nr);
        int block_rows, row_blocks, group_panels;
        plan_units(g->M, panels, mr, nt, &block_rows, &row_blocks, &group_panels);
        int units = row_blocks * ceil_div(panels, group_panels);
        const int kc_block = k_block(g->K);
        for (int pc = 0; pc < g->K; pc += kc_block) {
            int kc = g->K - pc < kc_block ? g->K - pc : kc_block;
            float beta = pc == 0 ? g->beta : 1.0f;  // later blocks add to the first
            // Every earlier unit must be done: they read the B block about to be
            // repacked, and the units below add into the C they wrote.
            wait_done(work, start);
            // Full panels of an untransposed B are read where they lie; only a
            // last partial panel is packed (reading NR columns there would run
            // past B).
            int b_first_packed = b_in_place ? nc / nr : 0;
            if (g->prepacked_b) {
                packed_b = (float *)g->prepacked_b + prepacked_offset(g->K, nr, jc, nc, pc);
            } else if (b_first_packed < panels) {
                // All threads pack the shared B block together, panel by panel.
                int to_pack = panels - b_first_packed;
                while ((item = claim_item(work, start, start + to_pack)) >= 0) {
                    pack_b_panel(path, packed_b, g->trans_b, g->B, g->ldb, jc, nc, b_first_packed + item, pc, kc);
                    finish_item(work);
                }
                start += to_pack;
                wait_done(work, start);
            }
            while ((item = claim_item(work, start, start + units)) >= 0) {
                int ic = item % row_blocks * block_rows;
                int mc = g->M - ic < block_rows ? g->M - ic : block_rows;
                int q0 = item / row_blocks * group_panels;
                int q1 = q0 + group_panels < panels ? q0 + group_panels : panels;
                // Full panels of A are read where they lie; only a last partial
                // panel is packed (reading MR rows there would run past A).
                int full = a_in_place ? mc / mr * mr : 0;
                if (full < mc) pack_a_block(path, packed_a, g->trans_a, g->A, g->lda, ic + full, mc - full, pc, kc);
                for (int q = q0; q < q1; q++) {
                    const float *b_panel = packed_b + (long)q * nr * kc;
                    long b_step = nr;
                    if (q < b_first_packed) {
                        b_panel = g->B + (long)pc * g->ldb + jc + q * nr;
                        b_step = g->ldb;
                    }
                    int cols = nc - q * nr < nr ? nc - q * nr : nr;
                    float *c_col = g->C + jc + q * nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        const float *a_panel = packed_a + (long)(ir - full) * kc;
                        long a_step = mr, a_rstride = 1;
                        if (ir < full) {
                            a_panel = g->trans_a ? g->A + (long)pc * g->lda + ic + ir : g->A + (long)(ic + ir) * g->lda + pc;
                            a_step = g->trans_a ? g->lda : 1;
                            a_rstride = g->trans_a ? 1 : g->lda;
                        }
                        path->kernel(kc, a_panel, a_step, a_rstride, b_panel, b_step,
                                     c_col + (long)(ic + ir) * g->ldc, g->ldc,
                                     rows, cols, g->alpha, beta, ir == 0);
                    }
                }
                if (pc + kc == g->K) {   // the unit's block of C is final: still in cache
                    int j_end = q1 * nr < nc ? q1 * nr : nc;
                    run_epilogue(g, ic, mc, jc + q0 * nr, j_end - q0 * nr);
                }
                finish_item(work);
            }
            start += units;
        }
    }
}

// C = beta * C, for K == 0 or alpha == 0; beta == 0 writes zeros without reading.
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (long)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
    }
}

static void gemm_packed_driver(const GemmArgs *g, const GemmPathDesc *path, int nt);

// The direct kernel for this shape, or NULL to pack. The choice depends on
// the shape only, never on the thread count, so results stay bit-identical
// across thread counts.
static GemmDirect direct_kernel(const GemmPathDesc *path, int trans_a, int trans_b, int M, int *align) {
    if (M > GEMM_DIRECT_MAX_M) return NULL;
    if (path->direct_dot && !trans_a && trans_b) {
        *align = 4;
        return path->direct_dot;
    }
    if (path->direct_rows && !trans_b) {
        *align = 64;
        return path->direct_rows;
    }
    return NULL;
}

typedef struct {
    GemmDirect kernel;
    int align, blocks;
    const GemmArgs *g;
} GemmDirectTask;

// Team member tid's share of the column blocks.
static void gemm_direct_task(void *arg, int tid, int team) {
    const GemmDirectTask *t = arg;
    const GemmArgs *g = t->g;
    int j0 = t->blocks * tid / team * t->align, j1 = t->blocks * (tid + 1) / team * t->align;
    if (j1 > g->N) j1 = g->N;
    if (j0 < j1) {
        t->kernel(g->trans_a, g->M, j0, j1, g->K, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta, g->C, g->ldc);
        run_epilogue(g, 0, g->M, j0, j1 - j0);
    }
}

// Runs a direct kernel, the columns split over nt threads in blocks of `align`.
static void gemm_direct(GemmDirect kernel, int align, int nt, const GemmArgs *g) {
    GemmDirectTask task = {kernel, align, ceil_div(g->N, align), g};
    if (nt > task.blocks) nt = task.blocks;
    threads_pool_run(gemm_direct_task, &task, nt);
}

void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb,
          float beta, float *C, int ldc) {
    gemm_epilogue(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void gemm_epilogue(int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, const GemmEpilogue *ep) {
    if (M <= 0 || N <= 0) return;
    GemmArgs g = {trans_a, trans_b, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc, NULL, ep};
    const GemmPathDesc *path = path_desc(gemm_get_path());
    if (K <= 0 || alpha == 0.0f || !path) {
        if (K <= 0 || alpha == 0.0f) scale_c(M, N, beta, C, ldc);
        else gemm_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        run_epilogue(&g, 0, M, 0, N);
        return;
    }
    int nt = threads_get();
    if (threads_in_task() || (long)M * N * K < GEMM_PARALLEL_MIN_MACS) nt = 1;
    int align;
    GemmDirect direct = direct_kernel(path, trans_a, trans_b, M, &align);
    if (direct) {
        gemm_direct(direct, align, nt, &g);
        return;
    }
    gemm_packed_driver(&g, path, nt);
}

// The packed loop nest on nt threads (B packed here unless g->prepacked_b).
typedef struct {
    const GemmArgs *g;
    const GemmPathDesc *path;
    float *packed_b;
    GemmWork *work;
} GemmTask;

static void gemm_task(void *arg, int tid, int team) {
    (void)tid;
    GemmTask *t = arg;
    gemm_thread(t->g, t->path, t->packed_b, t->work, team);
}

static void gemm_packed_driver(const GemmArgs *g, const GemmPathDesc *path, int nt) {
    int N = g->N;
    float *packed_b = NULL;
    if (!g->prepacked_b) {
        int nc = (N < GEMM_NC ? N : GEMM_NC / path->nr * path->nr);
        size_t b_floats = (size_t)ceil_div(nc, path->nr) * path->nr * GEMM_KC;
        packed_b = grow_buffer(&tls_b_buf, &tls_b_cap, b_floats);
    }
    GemmWork work = {0, 0};
    if (nt == 1) {
        gemm_thread(g, path, packed_b, &work, 1);
        return;
    }
    // The team may be smaller than asked: the units are counted for the
    // team that actually runs.
    GemmTask task = {g, path, packed_b, &work};
    threads_pool_run(gemm_task, &task, nt);
}

// ---------------------------------------------------------------------------
// Prepacked B

typedef struct {
    const GemmPathDesc *path;
    GemmPackedB *pb;
    const float *B;
    int ldb, nr, nc_max;
} PackPanels;

// Panel slots per block of a prepacked op(B): the panels of a full block
// (all blocks are full but the last).
static int pack_slots(int N, int nc_max, int nr) { return ceil_div(N < nc_max ? N : nc_max, nr); }

// Panels [i0, i1) of a prepacked op(B), numbered block by block (NC blocks
// of columns, then KC blocks of steps), pack_slots() per block; the slots
// past a narrower last block's panels are skipped.
static void pack_panels(void *arg, long i0, long i1) {
    const PackPanels *p = arg;
    int K = p->pb->K, N = p->pb->N, nr = p->nr, kc_block = k_block(K);
    int slots = pack_slots(N, p->nc_max, nr), k_blocks = ceil_div(K, kc_block);
    for (long i = i0; i < i1; i++) {
        int q = (int)(i % slots), pcb = (int)(i / slots % k_blocks), jcb = (int)(i / slots / k_blocks);
        int jc = jcb * p->nc_max, pc = pcb * kc_block;
        int nc = N - jc < p->nc_max ? N - jc : p->nc_max, kc = K - pc < kc_block ? K - pc : kc_block;
        if (q >= ceil_div(nc, nr)) continue;
        float *block = p->pb->panels + prepacked_offset(K, nr, jc, nc, pc);
        pack_b_panel(p->path, block, p->pb->trans_b, p->B, p->ldb, jc, nc, q, pc, kc);
    }
}

int gemm_pack_b(GemmPackedB *pb, int trans_b, int K, int N, const float *B, int ldb) {
    int path_id = gemm_get_path();
    int reuse = pb->panels && pb->trans_b == trans_b && pb->K == K && pb->N == N && pb->path == path_id;
    if (!reuse) gemm_packed_b_free(pb);
    if (K <= 0 || N <= 0) return -1;
    pb->trans_b = trans_b;
    pb->K = K;
    pb->N = N;
    pb->path = path_id;
    const GemmPathDesc *path = path_desc(pb->path);
    if (!path) {
        // The reference path multiplies op(B) as given: keep a copy of it as (K, N).
        if (!reuse) pb->panels = malloc_check(sizeof(float) * K * N);
        for (int k = 0; k < K; k++)
            for (int j = 0; j < N; j++)
                pb->panels[(long)k * N + j] = trans_b ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
        return 0;
    }
    const int nr = path->nr, nc_max = GEMM_NC / nr * nr;
    if (!reuse) {
        size_t floats = (size_t)ceil_div(N, nr) * nr * K;
        void *mem = NULL;
        if (posix_memalign(&mem, 64, floats * sizeof(float)) != 0) abort();
        pb->panels = mem;
    }
    PackPanels pp = {path, pb, B, ldb, nr, nc_max};
    // Every panel of every block, numbered in order; the pool packs them
    // (a decoder's weights are 30M floats on the base config).
    threads_for((long)ceil_div(N, nc_max) * ceil_div(K, k_block(K)) * pack_slots(N, nc_max, nr),
                (long)K * N >= (1L << 16), pack_panels, &pp);
    return 0;
}

void gemm_packed_b_free(GemmPackedB *pb) {
    free(pb->panels);
    memset(pb, 0, sizeof *pb);
}

void gemm_prepacked(int trans_a, int M, float alpha, const float *A, int lda,
                    const GemmPackedB *pb, float beta, float *C, int ldc, const GemmEpilogue *ep) {
    int N = pb->N, K = pb->K;
    if (M <= 0) return;
    GemmArgs g = {trans_a, pb->trans_b, M, N, K, alpha, beta, A, NULL, C, lda, 0, ldc, pb->panels, ep};
    const GemmPathDesc *path = path_desc(pb->path);
    if (alpha == 0.0f || !path) {
        if (alpha == 0.0f) scale_c(M, N, beta, C, ldc);
        else gemm_reference(trans_a, 0, M, N, K, alpha, A, lda, pb->panels, N, beta, C, ldc);
        run_epilogue(&g, 0, M, 0, N);
        return;
    }
    int nt = threads_get();
    if (threads_in_task() || (long)M * N * K < GEMM_PARALLEL_MIN_MACS) nt = 1;
    gemm_packed_driver(&g, path, nt);
}
