#include "test.h"
#include "rng.h"

int main(void) {
    Rng a, b;
    rng_seed(&a, 42); rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= rng_next(&a) == rng_next(&b);
    CHECK(same, "same seed gives the same stream");
    Rng saved = a;
    uint64_t x = rng_next(&a);
    CHECK(rng_next(&saved) == x, "copied state resumes the stream exactly");
    double sum = 0, sq = 0; int n = 100000, in_range = 1;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(&a);
        in_range &= u >= 0.0f && u < 1.0f;
        sum += u;
    }
    CHECK(in_range && fabs(sum / n - 0.5) < 0.01, "uniform in [0,1) with mean 0.5 (%.4f)", sum / n);
    sum = 0;
    for (int i = 0; i < n; i++) { double z = rng_normal(&a); sum += z; sq += z * z; }
    CHECK(fabs(sum / n) < 0.02 && fabs(sq / n - 1) < 0.03, "normal mean 0 var 1 (%.3f, %.3f)", sum / n, sq / n);
    int counts[7] = {0}, ok = 1;
    for (int i = 0; i < 70000; i++) { uint32_t r = rng_below(&a, 7); ok &= r < 7; if (r < 7) counts[r]++; }
    for (int i = 0; i < 7; i++) ok &= counts[i] > 9500 && counts[i] < 10500;
    CHECK(ok, "rng_below(7) uniform");
    int perm[50], seen[50] = {0};
    for (int i = 0; i < 50; i++) perm[i] = i;
    rng_shuffle_ints(&a, perm, 50);
    ok = 1;
    for (int i = 0; i < 50; i++) { ok &= !seen[perm[i]]; seen[perm[i]] = 1; }
    CHECK(ok, "shuffle is a permutation");
    TEST_EXIT();
}
