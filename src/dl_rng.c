/* dl_rng.c — the Philox generator's state (see dl_rng.h): one per thread,
 * so states driven from two host threads draw independently and
 * reproducibly without a lock; a thread starts at the default seed. */
#include "dl_rng.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

static _Thread_local dl_rng_state rng = {DL_RNG_DEFAULT_SEED, 0};

void dl_rng_manual_seed(uint64_t seed) {
  rng.seed = seed;
  rng.offset = 0;
}

uint64_t dl_rng_initial_seed(void) { return rng.seed; }

/* splitmix64: spreads the fallback's few bits of entropy */
static uint64_t mix64(uint64_t z) {
  z += UINT64_C(0x9E3779B97F4A7C15);
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

uint64_t dl_rng_seed_random(void) {
  uint64_t s = 0;
  FILE *f = fopen("/dev/urandom", "rb");
  bool ok = f && fread(&s, sizeof s, 1, f) == 1;
  if (f) fclose(f);
  if (!ok) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s = mix64((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ mix64((uint64_t)getpid());
  }
  dl_rng_manual_seed(s);
  return s;
}

dl_rng_state dl_rng_get_state(void) { return rng; }

void dl_rng_set_state(dl_rng_state st) { rng = st; }

dl_rng_state dl_rng_reserve(uint64_t words) {
  dl_rng_state st = rng;
  rng.offset += words / 4 + (words % 4 != 0);
  return st;
}
