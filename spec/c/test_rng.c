/* test_rng.c — Philox4x32-10 against Random123's known answers, and the
 * stream layout dl_rng.h promises (element i computable on its own). */
#include "ctest.h"
#include "dl_rng.h"
#include "ops/dl_random.h"

#include <pthread.h>
#include <string.h>

/* a thread's draws after manual_seed(7): 64 floats, 200 times over */
static void *draw(void *out) {
  float *o = out;
  int64_t n = 64;
  for (int rep = 0; rep < 200; rep++) {
    dl_rng_manual_seed(7);
    dl_tensor *t = dl_op_rand(&n, 1, DL_FLOAT32, dl_device_cpu());
    if (!t) return NULL;
    memcpy(o, dl_tensor_data(t), sizeof(float) * 64);
    dl_tensor_release(t);
  }
  return out;
}

static int kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
  uint32_t out[4];
  dl_philox4x32_10(ctr, key, out);
  return out[0] == want[0] && out[1] == want[1] && out[2] == want[2] && out[3] == want[3];
}

int main(void) {
  /* Random123 kat_vectors, philox4x32_10 */
  {
    uint32_t c[4] = {0, 0, 0, 0}, k[2] = {0, 0}, w[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    CHECK(kat(c, k, w));
  }
  {
    uint32_t c[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, k[2] = {0xffffffff, 0xffffffff},
             w[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    CHECK(kat(c, k, w));
  }
  {
    uint32_t c[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, k[2] = {0xa4093822, 0x299f31d0},
             w[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    CHECK(kat(c, k, w));
  }

  /* the counter is offset + block in the low two words, the key the seed */
  {
    dl_rng_state st = {UINT64_C(0x299f31d0a4093822), UINT64_C(0x85a308d3243f6a88) - 5};
    uint32_t out[4], ref[4];
    dl_rng_block(st, 5, out);
    uint32_t c[4] = {0x243f6a88, 0x85a308d3, 0, 0}, k[2] = {0xa4093822, 0x299f31d0};
    dl_philox4x32_10(c, k, ref);
    CHECK(out[0] == ref[0] && out[1] == ref[1] && out[2] == ref[2] && out[3] == ref[3]);
  }

  /* uniform transforms stay in [0, 1) at the extremes */
  CHECK(dl_rng_u24(0) == 0.0 && dl_rng_u24(0xffffffffu) < 1.0);
  CHECK(dl_rng_u53(0, 0) == 0.0 && dl_rng_u53(0xffffffffu, 0xffffffffu) < 1.0);
  CHECK(dl_rng_u53(0x80000000u, 0) == 0.5);

  /* reserve advances by whole blocks; manual_seed resets the offset */
  dl_rng_manual_seed(42);
  CHECK(dl_rng_initial_seed() == 42);
  dl_rng_state s0 = dl_rng_reserve(5);
  CHECK(s0.seed == 42 && s0.offset == 0);
  CHECK(dl_rng_get_state().offset == 2);
  dl_rng_reserve(8);
  CHECK(dl_rng_get_state().offset == 4);
  dl_rng_reserve(0);
  CHECK(dl_rng_get_state().offset == 4);
  dl_rng_set_state((dl_rng_state){7, 100});
  CHECK(dl_rng_get_state().seed == 7 && dl_rng_get_state().offset == 100);

  /* rand: element i (float32) is u24 of word i; float64 uses two words */
  dl_rng_manual_seed(123);
  int64_t n = 10;
  dl_tensor *t = dl_op_rand(&n, 1, DL_FLOAT32, dl_device_cpu());
  CHECK(t != NULL);
  CHECK(dl_rng_get_state().offset == 3);
  dl_rng_state st = {123, 0};
  int ok = 1;
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    dl_rng_block(st, (uint64_t)i / 4, w);
    ok &= ((float *)dl_tensor_data(t))[i] == (float)dl_rng_u24(w[i % 4]);
  }
  CHECK(ok);
  dl_tensor *d = dl_op_rand(&n, 1, DL_FLOAT64, dl_device_cpu());
  CHECK(d != NULL && dl_rng_get_state().offset == 3 + 5);
  st.offset = 3;
  ok = 1;
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    dl_rng_block(st, (uint64_t)i / 2, w);
    ok &= ((double *)dl_tensor_data(d))[i] == dl_rng_u53(w[(i % 2) * 2], w[(i % 2) * 2 + 1]);
  }
  CHECK(ok);

  /* randperm is a permutation of 1..n */
  dl_tensor *p = dl_op_randperm(1000, DL_INT64, dl_device_cpu());
  CHECK(p != NULL);
  static char seen[1001];
  ok = 1;
  for (int i = 0; i < 1000; i++) {
    int64_t v = ((int64_t *)dl_tensor_data(p))[i];
    ok &= v >= 1 && v <= 1000 && !seen[v];
    if (v >= 1 && v <= 1000) seen[v] = 1;
  }
  CHECK(ok);

  /* bad arguments fail with the op's name */
  CHECK(dl_op_randint(3, 3, &n, 1, DL_INT64, dl_device_cpu()) == NULL);
  CHECK(dl_op_randperm(-1, DL_INT64, dl_device_cpu()) == NULL);
  CHECK(dl_tensor_bernoulli_(t, 1.5) == -1);
  CHECK(dl_tensor_normal_(t, 0, -1) == -1);

  dl_tensor_release(t);
  dl_tensor_release(d);
  dl_tensor_release(p);
  /* one generator per thread: two threads seeding and drawing at once get
   * exactly what one thread alone gets */
  {
    float alone[64], a[64], b[64];
    draw(alone);
    pthread_t ta, tb;
    pthread_create(&ta, NULL, draw, a);
    pthread_create(&tb, NULL, draw, b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(memcmp(alone, a, sizeof a) == 0 && memcmp(alone, b, sizeof b) == 0);
  }
  CTEST_END();
}
