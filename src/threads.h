// Thread-count control. OpenMP is the thread pool: libgomp keeps its worker
// threads alive between parallel regions, so a parallel loop costs a wake-up,
// not a thread creation. Every parallel kernel (gemm, attention, LayerNorm,
// the loss) asks threads_get() how many threads to use.
#ifndef ATTN_THREADS_H
#define ATTN_THREADS_H

// Sets the number of threads for all later parallel work (n >= 1; values
// above 1024 are clamped). Returns -1 with a message for n < 1.
int threads_set(int n);
// The current thread count: what threads_set() chose, else the machine's
// cores (omp_get_num_procs(), which honours the process's CPU affinity).
int threads_get(void);
// The machine's cores as OpenMP sees them.
int threads_machine_cores(void);

#endif
