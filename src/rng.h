// Deterministic random numbers (xoshiro256**, seeded through splitmix64).
// The state is four words so that a checkpoint can save and restore it and a
// resumed run draws exactly the numbers an uninterrupted run would.
#ifndef ATTN_RNG_H
#define ATTN_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

void rng_seed(Rng *rng, uint64_t seed);
uint64_t rng_next(Rng *rng);
float rng_uniform(Rng *rng);              // [0, 1), 24 random bits
double rng_uniform_double(Rng *rng);      // [0, 1), 53 random bits
uint32_t rng_below(Rng *rng, uint32_t n); // uniform in [0, n), unbiased
float rng_normal(Rng *rng);               // standard normal (Box-Muller)
void rng_shuffle_ints(Rng *rng, int *a, int n);  // Fisher-Yates

#endif
