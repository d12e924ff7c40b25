/* dl_rng.h — the counter-based random number generator (one per thread).
 *
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011), with Random123's constants. One generator for
 * the whole process, so a GPU backend that evaluates the same formulas
 * reproduces the CPU's numbers element for element.
 *
 * State: a 64-bit seed (the Philox key) and a 64-bit offset (the counter
 * base, in blocks of four 32-bit words).
 *
 * Streams. An op that draws W 32-bit words reserves them with
 * dl_rng_reserve(W): it gets the state {seed, offset} and the generator's
 * offset advances by ceil(W / 4). Word j (0-based) of the op's stream is
 *
 *   philox4x32_10(counter = {lo32(offset + j/4), hi32(offset + j/4), 0, 0},
 *                 key = {lo32(seed), hi32(seed)})[j % 4]
 *
 * so any element can be computed on its own. Element i of an op's output
 * (C order over the output, whatever its strides) uses words
 * [w*i, w*i + w) where w is the op's words per element:
 *
 *   uniform float32     w = 1  u = (x >> 8) * 2^-24                in [0, 1)
 *   uniform float64     w = 2  u = ((x0 << 32 | x1) >> 11) * 2^-53 in [0, 1)
 *   normal              pairs (2p, 2p+1) of elements, w as uniform; with
 *                      u1, u2 the uniforms of elements 2p and 2p+1,
 *                      r = sqrt(-2 ln(1 - u1)), t = 2 pi u2:
 *                      z[2p] = r cos t, z[2p+1] = r sin t (computed in
 *                      double); an odd last element still reserves its pair
 *   exponential         w as uniform, -ln(1 - u) / lambda
 *   bernoulli           w = 2, the float64 uniform u; value = u < p
 *   randint(lo, hi)     range r = hi - lo; r <= 2^32: w = 1, lo + x mod r;
 *                      otherwise w = 2, lo + (x0 << 32 | x1) mod r
 *   randperm(n)         w = 2, 64-bit key k_i = x0 << 32 | x1 for i in
 *                      [0, n); the result lists 1..n ordered by (k_i, i)
 *
 * Transforms to float32 compute in double and round once. */
#ifndef DL_RNG_H
#define DL_RNG_H

#include <stdint.h>

#include "dl_core.h"

/* A CUDA build defines this as `static inline __host__ __device__`. */
#ifndef DL_RNG_FN
#define DL_RNG_FN static inline
#endif

#define DL_PHILOX_M0 0xD2511F53u
#define DL_PHILOX_M1 0xCD9E8D57u
#define DL_PHILOX_W0 0x9E3779B9u
#define DL_PHILOX_W1 0xBB67AE85u

/* PyTorch's default seed: a fresh process is reproducible without a call. */
#define DL_RNG_DEFAULT_SEED UINT64_C(67280421310721)

typedef struct {
  uint64_t seed;
  uint64_t offset; /* in 4-word blocks */
} dl_rng_state;

DL_RNG_FN void dl_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)DL_PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)DL_PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += DL_PHILOX_W0;
    k1 += DL_PHILOX_W1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* The four words of block `block` (relative to st.offset) of a stream. */
DL_RNG_FN void dl_rng_block(dl_rng_state st, uint64_t block, uint32_t out[4]) {
  uint64_t c = st.offset + block;
  uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
  uint32_t key[2] = {(uint32_t)st.seed, (uint32_t)(st.seed >> 32)};
  dl_philox4x32_10(ctr, key, out);
}

/* word -> uniform in [0, 1) */
DL_RNG_FN double dl_rng_u24(uint32_t x) { return (double)(x >> 8) * (1.0 / 16777216.0); }
DL_RNG_FN double dl_rng_u53(uint32_t x0, uint32_t x1) {
  return (double)((((uint64_t)x0 << 32) | x1) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- the global generator (not thread-safe: one Lua state drives it) ---- */
void dl_rng_manual_seed(uint64_t seed); /* offset back to 0 */
uint64_t dl_rng_initial_seed(void);     /* the seed last set */
/* A non-deterministic seed (from /dev/urandom), set and returned. */
uint64_t dl_rng_seed_random(void);
dl_rng_state dl_rng_get_state(void);
void dl_rng_set_state(dl_rng_state st);
/* State for an op drawing `words` 32-bit words; advances the offset. */
dl_rng_state dl_rng_reserve(uint64_t words);

#endif
