#include "core/rng.h"
#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lm_rng_seed(lm_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t lm_rng_next(lm_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float lm_rng_uniform(lm_rng *r) {
    return (float)(lm_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

double lm_rng_uniform_d(lm_rng *r) {
    return (double)(lm_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double lm_rng_normal(lm_rng *r) {
    double u1 = lm_rng_uniform_d(r), u2 = lm_rng_uniform_d(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t lm_hash64(uint64_t key, uint64_t counter) {
    uint64_t x = key ^ (counter * 0xd1342543de82ef95ULL);
    return splitmix64(&x);
}
