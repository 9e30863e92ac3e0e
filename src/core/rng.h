/* Random numbers owned by a context: xoshiro256** seeded through splitmix64,
 * and a counter-based hash for masks that must be reproducible per element
 * whatever the thread count (dropout). */
#ifndef LM_RNG_H
#define LM_RNG_H

#include <stdint.h>

typedef struct lm_rng {
    uint64_t s[4];
} lm_rng;

void lm_rng_seed(lm_rng *r, uint64_t seed);
uint64_t lm_rng_next(lm_rng *r);
/* Uniform in [0, 1) with 24 random bits (float) or 53 (double). */
float lm_rng_uniform(lm_rng *r);
double lm_rng_uniform_d(lm_rng *r);
/* Standard normal (Box-Muller, double precision). */
double lm_rng_normal(lm_rng *r);

/* Stateless hash of (key, counter) to 64 random bits. */
uint64_t lm_hash64(uint64_t key, uint64_t counter);
/* Uniform in [0, 1) from lm_hash64. */
static inline float lm_hash_uniform(uint64_t key, uint64_t counter) {
    return (float)(lm_hash64(key, counter) >> 40) * (1.0f / 16777216.0f);
}

#endif
