// Thread-count control, and the pool that gemm runs on. The other parallel
// kernels (attention, LayerNorm, the loss) use OpenMP, whose workers libgomp
// keeps alive between parallel regions. Every parallel kernel asks
// threads_get() how many threads to use.
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

// A task run by a team: fn(arg, tid, team) for tid 0 .. team - 1.
typedef void (*ThreadsTask)(void *arg, int tid, int team);
// Runs fn on up to nt threads: the caller as tid 0 and persistent workers
// that spin briefly between tasks (waking them costs no system call when
// tasks follow each other closely). Returns when every tid is done. The team
// may be smaller than nt (thread creation failed, or another task is running
// on the pool: then the caller runs alone, team 1).
void threads_pool_run(ThreadsTask fn, void *arg, int nt);

#endif
