// The thread pool (src/threads.h): tasks, threads_for's ranges, nesting,
// and two callers at once.
#include "test.h"
#include "threads.h"
#include <stdlib.h>
#include <string.h>

// The pool: every tid of every task runs exactly once,
// with teams of changing size (workers outside the team must skip a task,
// never run it late), and callers on two threads at once each get their
// task done (the second runs alone).
typedef struct {
    int runs[8];
    int team_seen;
} PoolCount;

static void count_task(void *arg, int tid, int team) {
    PoolCount *c = arg;
    __atomic_add_fetch(&c->runs[tid], 1, __ATOMIC_RELAXED);
    if (tid == 0) c->team_seen = team;
}

static void check_pool(void) {
    int bad = 0, small_team = 0;
    for (int rep = 0; rep < 2000; rep++) {
        int nt = 1 + rep % 4;
        PoolCount c = {{0}, 0};
        threads_pool_run(count_task, &c, nt);
        if (c.team_seen < nt) small_team++;
        for (int t = 0; t < 8; t++) bad += c.runs[t] != (t < c.team_seen ? 1 : 0);
    }
    CHECK(bad == 0 && small_team == 0, "pool: 2000 tasks of 1-4 threads, each tid once (%d wrong, %d short teams)",
          bad, small_team);
    // Teams growing up to 8 while the other caller's task may be in flight:
    // a worker created then must neither run nor acknowledge that task.
    int lost = 0;
#pragma omp parallel num_threads(2) reduction(+ : lost)
    for (int rep = 0; rep < 400; rep++) {
        PoolCount c = {{0}, 0};
        threads_pool_run(count_task, &c, 2 + rep % 7);
        for (int t = 0; t < 8; t++) lost += c.runs[t] != (t < c.team_seen ? 1 : 0);
        lost += c.team_seen < 1;
    }
    CHECK(lost == 0, "pool: two callers at once, teams growing, both complete (%d lost)", lost);
}

// threads_for: one contiguous range per thread, [n t / T, n (t + 1) / T),
// every index once, whatever n and the thread count.
typedef struct {
    int *visits;
    long begins[8], ends[8];
    int calls;
    int nested_inline;    // a threads_for inside a body ran as one call
} ForRecord;

static void record_range(void *arg, long begin, long end) {
    ForRecord *r = arg;
    int k = __atomic_fetch_add(&r->calls, 1, __ATOMIC_RELAXED);
    if (k < 8) { r->begins[k] = begin; r->ends[k] = end; }
    for (long i = begin; i < end; i++) __atomic_fetch_add(&r->visits[i], 1, __ATOMIC_RELAXED);
}

static void count_calls(void *arg, long begin, long end) {
    (void)begin; (void)end;
    __atomic_fetch_add((int *)arg, 1, __ATOMIC_RELAXED);
}

static void nested_body(void *arg, long begin, long end) {
    ForRecord *r = arg;
    int calls = 0;
    threads_for(1000, 1, count_calls, &calls);
    if (calls == 1 && threads_in_task()) __atomic_fetch_add(&r->nested_inline, 1, __ATOMIC_RELAXED);
    record_range(arg, begin, end);
}

static void check_for(void) {
    static const long sizes[] = {1, 2, 5, 1000, 100003};
    int once = 1, split = 1;
    for (int nt = 1; nt <= 3; nt++) {
        threads_set(nt);
        for (int s = 0; s < 5; s++) {
            long n = sizes[s];
            ForRecord r;
            memset(&r, 0, sizeof r);
            r.visits = calloc((size_t)n, sizeof(int));
            threads_for(n, 1, record_range, &r);
            for (long i = 0; i < n; i++) once &= r.visits[i] == 1;
            int team = nt < n ? nt : (int)n;
            split &= r.calls == team;
            for (int t = 0; t < team; t++) {   // some call must have had thread t's range
                long b, e;
                int found = 0;
                threads_range(n, t, team, &b, &e);
                for (int k = 0; k < r.calls && k < 8; k++) found |= r.begins[k] == b && r.ends[k] == e;
                split &= found && e - b >= n / team;
            }
            free(r.visits);
        }
    }
    CHECK(once, "threads_for visits every index once (n 1 to 100003, 1-3 threads)");
    CHECK(split, "threads_for gives thread t of T the range [n t / T, n (t + 1) / T)");

    ForRecord r;
    memset(&r, 0, sizeof r);
    r.visits = calloc(100, sizeof(int));
    threads_set(2);
    threads_for(100, 0, record_range, &r);
    CHECK(r.calls == 1 && r.begins[0] == 0 && r.ends[0] == 100, "threads_for with parallel 0 is one call on [0, n)");
    free(r.visits);
    memset(&r, 0, sizeof r);
    r.visits = calloc(100, sizeof(int));
    threads_for(100, 1, nested_body, &r);
    CHECK(r.calls == 2 && r.nested_inline == 2, "a threads_for inside a pool task runs inline on its thread");
    CHECK(!threads_in_task(), "threads_in_task is 0 outside a task");
    free(r.visits);
}

int main(void) {
    CHECK(threads_machine_cores() >= 1, "the machine has at least one core (%d)", threads_machine_cores());
    check_pool();
    check_for();
    TEST_EXIT();
}
