#include "threads.h"
#include "common.h"
#include <omp.h>

static int thread_count = 0;  // 0: not set yet, use the machine's cores

int threads_machine_cores(void) {
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

int threads_set(int n) {
    if (n < 1) return attn_error("thread count must be at least 1 (got %d)", n);
    if (n > 1024) n = 1024;
    thread_count = n;
    // Parallel regions that do not pass num_threads() use this count too.
    omp_set_num_threads(n);
    return 0;
}

int threads_get(void) {
    return thread_count > 0 ? thread_count : threads_machine_cores();
}
