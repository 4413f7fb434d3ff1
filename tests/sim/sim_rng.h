/*  sim_rng.h: the simulator's only source of randomness: xoshiro256**
 *  seeded through splitmix64 from the case seed. Never rand(), never the
 *  OS: the same seed gives the same stream on every machine.
 */
#ifndef ALYS_SIM_RNG_H
#define ALYS_SIM_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} sim_rng_t;

static inline uint64_t sim_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void sim_rng_seed(sim_rng_t *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = sim_splitmix64(&x);
}

static inline uint64_t sim_rng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t sim_rng_next(sim_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = sim_rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sim_rng_rotl(s[3], 45);
    return out;
}

/* Uniform in [lo, hi] (inclusive); lo when hi <= lo. */
static inline uint64_t sim_rng_range(sim_rng_t *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = hi - lo + 1;
    return span == 0 ? sim_rng_next(r) : lo + sim_rng_next(r) % span;
}

/* Uniform in [0, 1). */
static inline double sim_rng_unit(sim_rng_t *r)
{
    return (double) (sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static inline int sim_rng_chance(sim_rng_t *r, double p)
{
    return p > 0 && sim_rng_unit(r) < p;
}

#endif
