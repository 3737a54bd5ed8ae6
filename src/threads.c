#include "threads.h"
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static int thread_count = 0;  // 0: not set yet, use the machine's cores

int threads_machine_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int threads_set(int n) {
    if (n < 1) return attn_error("thread count must be at least 1 (got %d)", n);
    if (n > 1024) n = 1024;
    thread_count = n;
    return 0;
}


int threads_get(void) {
    return thread_count > 0 ? thread_count : threads_machine_cores();
}

// ----------------------------------------------------------------------------
// The pool
//
// Workers wait for the next task by spinning for up to POOL_SPIN_NS, then
// sleep on a condition variable. The spin is bounded (and yields) so that a
// worker does not hold a core for long when the process is idle or the
// machine is shared.

#define POOL_MAX 64
#ifndef POOL_DONE_SPINS
#define POOL_DONE_SPINS 100
#endif
#ifndef POOL_SPIN_NS
#define POOL_SPIN_NS 200000L
#endif

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int started;              // workers created (tid 1 .. started)
    long generation;          // bumped for every task
    int sleepers;             // workers waiting on `wake`
    int remaining;            // workers that have not finished the current task
    int caller_sleeping;      // the caller waits on `done` for `remaining` to reach 0
    ThreadsTask fn;
    void *arg;
    int team;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, NULL, NULL, 0};
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;

// One task at a time; held also while workers are created, so that no task
// is in flight then.
static pthread_mutex_t pool_run_lock = PTHREAD_MUTEX_INITIALIZER;
// The generation each worker was created at: it waits for the next one.
static long start_generation[POOL_MAX];
static _Thread_local int in_task;  // this thread is running a pool task

int threads_in_task(void) { return in_task; }

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void cpu_relax(void) {
#if defined(__x86_64__)
    _mm_pause();
#endif
}

// Waits until the generation moves past `seen`; returns the new one.
static long pool_wait_task(long seen) {
    long deadline = 0;
    for (int spins = 0;; spins++) {
        long gen = __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE);
        if (gen != seen) return gen;
        cpu_relax();
        if (spins % 64 == 63) {
            long t = now_ns();
            if (deadline == 0) deadline = t + POOL_SPIN_NS;
            else if (t > deadline) break;
            sched_yield();
        }
    }
    pthread_mutex_lock(&pool.lock);
    __atomic_add_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
    long gen;
    while ((gen = __atomic_load_n(&pool.generation, __ATOMIC_SEQ_CST)) == seen)
        pthread_cond_wait(&pool.wake, &pool.lock);
    __atomic_sub_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&pool.lock);
    return gen;
}

static void *pool_worker(void *arg) {
    int tid = (int)(long)arg;
    long seen = start_generation[tid];
    for (;;) {
        seen = pool_wait_task(seen);
        // Every worker acknowledges every task, in the team or not, so no
        // task is posted before all have read the previous one.
        if (tid < pool.team) {
            in_task = 1;
            pool.fn(pool.arg, tid, pool.team);
            in_task = 0;
        }
        if (__atomic_sub_fetch(&pool.remaining, 1, __ATOMIC_SEQ_CST) == 0 &&
            __atomic_load_n(&pool.caller_sleeping, __ATOMIC_SEQ_CST)) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool_done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

// Creates workers up to tid nt - 1; returns the team size actually
// available. The caller holds pool_run_lock: a new worker starts from the
// current generation and takes part from the next task on (every worker
// must acknowledge every task posted after its creation, none before).
static int pool_grow(int nt) {
    if (nt > POOL_MAX) nt = POOL_MAX;
    while (pool.started < nt - 1) {
        int tid = pool.started + 1;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_generation[tid] = __atomic_load_n(&pool.generation, __ATOMIC_RELAXED);
        int ok = pthread_create(&t, &attr, pool_worker, (void *)(long)tid) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        pool.started++;
    }
    return pool.started + 1 < nt ? pool.started + 1 : nt;
}

static void run_alone(ThreadsTask fn, void *arg) {
    int outer = in_task;
    in_task = 1;
    fn(arg, 0, 1);
    in_task = outer;
}

void threads_pool_run(ThreadsTask fn, void *arg, int nt) {
    // Work started inside a task, or by a second caller (another thread of
    // the program) while the pool is busy, runs alone rather than wait.
    if (nt <= 1 || in_task || pthread_mutex_trylock(&pool_run_lock) != 0) {
        run_alone(fn, arg);
        return;
    }
    nt = pool_grow(nt);
    if (nt <= 1) {
        pthread_mutex_unlock(&pool_run_lock);
        run_alone(fn, arg);
        return;
    }
    pool.fn = fn;
    pool.arg = arg;
    pool.team = nt;
    __atomic_store_n(&pool.remaining, pool.started, __ATOMIC_RELAXED);
    // seq_cst with the sleeper count: either a worker about to sleep sees the
    // new generation, or we see it counted and wake it.
    __atomic_add_fetch(&pool.generation, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    in_task = 1;
    fn(arg, 0, nt);
    in_task = 0;
    // A short spin, then sleep: a preempted worker needs the core back.
    for (int spins = 0; __atomic_load_n(&pool.remaining, __ATOMIC_ACQUIRE) > 0; spins++) {
        cpu_relax();
        if (spins < POOL_DONE_SPINS) continue;
        pthread_mutex_lock(&pool.lock);
        __atomic_store_n(&pool.caller_sleeping, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&pool.remaining, __ATOMIC_SEQ_CST) > 0) pthread_cond_wait(&pool_done, &pool.lock);
        __atomic_store_n(&pool.caller_sleeping, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool_run_lock);
}

void threads_start(void) {
    int nt = threads_get();
    if (nt <= 1 || in_task || pthread_mutex_trylock(&pool_run_lock) != 0) return;
    pool_grow(nt);
    pthread_mutex_unlock(&pool_run_lock);
}

void threads_range(long n, int tid, int team, long *begin, long *end) {
    *begin = n * tid / team;
    *end = n * (tid + 1) / team;
}

typedef struct {
    ThreadsRange fn;
    void *arg;
    long n;
} ForTask;

static void for_task(void *p, int tid, int team) {
    const ForTask *t = p;
    long begin, end;
    threads_range(t->n, tid, team, &begin, &end);
    if (begin < end) t->fn(t->arg, begin, end);
}

int threads_team(long n, int parallel) {
    long nt = parallel && !in_task ? threads_get() : 1;
    return (int)(nt < n ? nt : n > 0 ? n : 1);
}

void threads_for(long n, int parallel, ThreadsRange fn, void *arg) {
    if (n <= 0) return;
    int nt = threads_team(n, parallel);
    if (nt <= 1) {
        fn(arg, 0, n);
        return;
    }
    ForTask t = {fn, arg, n};
    threads_pool_run(for_task, &t, nt);
}
