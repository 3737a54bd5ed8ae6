// Thread-count control, and the one pool of persistent threads that every
// parallel kernel runs on (gemm, attention, LayerNorm, the loss, Adam,
// decoding). One pool, not OpenMP regions besides it: a training step runs
// a few hundred parallel loops with short gaps between them, and workers
// that spin briefly between tasks take the next one without a system call,
// where OpenMP's sleeping workers (OMP_WAIT_POLICY=PASSIVE) needed a futex
// wake-up for every region, and spinning OpenMP workers fought the pool's
// for the cores. OpenMP remains only as `#pragma omp simd`.
#ifndef ATTN_THREADS_H
#define ATTN_THREADS_H

// Sets the number of threads for all later parallel work (n >= 1; values
// above 1024 are clamped). Returns -1 with a message for n < 1.
int threads_set(int n);
// The current thread count: what threads_set() chose, else the machine's
// cores.
int threads_get(void);
// The cores this process may run on (its CPU affinity), at least 1.
int threads_machine_cores(void);
// Nonzero while the calling thread runs a pool task: parallel work it
// starts then runs on the calling thread alone.
int threads_in_task(void);
// Creates the pool's workers for threads_get() threads now, so that the
// first parallel loop (a training step) does not create threads.
void threads_start(void);
// The team threads_for would use for n items: threads_get(), at most n,
// and 1 when !parallel or inside a task.
int threads_team(long n, int parallel);

// A task run by a team: fn(arg, tid, team) for tid 0 .. team - 1.
typedef void (*ThreadsTask)(void *arg, int tid, int team);
// Runs fn on up to nt threads: the caller as tid 0 and persistent workers
// that spin briefly between tasks (waking them costs no system call when
// tasks follow each other closely). Returns when every tid is done. The team
// may be smaller than nt (thread creation failed, or another task is running
// on the pool: then the caller runs alone, team 1).
void threads_pool_run(ThreadsTask fn, void *arg, int nt);

// A loop body over the index range [begin, end).
typedef void (*ThreadsRange)(void *arg, long begin, long end);
// Runs fn over [0, n) in one contiguous range per thread: thread tid of nt
// gets [n tid / nt, n (tid + 1) / nt). The split depends on n and the
// thread count only, never on timing. parallel == 0 (too little work to
// share), a single thread, or a call from inside a pool task runs fn(arg, 0,
// n) on the caller.
void threads_for(long n, int parallel, ThreadsRange fn, void *arg);
// The range of thread tid of team in [0, n), as threads_for splits it.
void threads_range(long n, int tid, int team, long *begin, long *end);

#endif
