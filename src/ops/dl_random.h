/* dl_random.h — random tensor ops: front-ends and the kernel table.
 * Every op draws from the thread's Philox generator (dl_rng.h), whose
 * streams define element i of an op's output in C order, so a view's
 * elements, a contiguous tensor's and a GPU's come out the same. */
#ifndef DL_OPS_RANDOM_H
#define DL_OPS_RANDOM_H

#include "../dl_backend.h"
#include "../dl_rng.h"

#include <math.h>

typedef enum { DL_RAND_UNIFORM = 0, DL_RAND_NORMAL, DL_RAND_EXPONENTIAL } dl_rand_kind;

#define DL_TWO_PI 6.283185307179586476925286766559

/* The values of Philox block blk of stream st, in double: 4 for float32
 * (one word each), 2 for float64 (two words each); uniform in [a, b),
 * normal (mean a, std b; Box-Muller) or exponential (rate a). One text for
 * the CPU and the GPU kernels, with explicit fma() so both round alike
 * whatever either compiler contracts. Returns the count. */
DL_RNG_FN int dl_rand_block_values(dl_rng_state st, int64_t blk, bool f64, dl_rand_kind kind, double a, double b,
                                   double v[4]) {
  uint32_t x[4];
  dl_rng_block(st, (uint64_t)blk, x);
  double u[4];
  int cnt;
  if (f64) {
    u[0] = dl_rng_u53(x[0], x[1]);
    u[1] = dl_rng_u53(x[2], x[3]);
    cnt = 2;
  } else {
    for (int l = 0; l < 4; l++) u[l] = dl_rng_u24(x[l]);
    cnt = 4;
  }
  switch (kind) {
  case DL_RAND_UNIFORM:
    for (int l = 0; l < cnt; l++) v[l] = fma(b - a, u[l], a);
    break;
  case DL_RAND_NORMAL:
    for (int l = 0; l < cnt; l += 2) {
      double r = sqrt(-2.0 * log(1.0 - u[l])), t = DL_TWO_PI * u[l + 1];
      v[l] = fma(b * r, cos(t), a);
      v[l + 1] = fma(b * r, sin(t), a);
    }
    break;
  default: /* DL_RAND_EXPONENTIAL */
    for (int l = 0; l < cnt; l++) v[l] = -log(1.0 - u[l]) / a;
    break;
  }
  return cnt;
}

/* Kernels write contiguous outputs of out->numel elements, element i from
 * the stream words dl_rng.h assigns it; st is the op's reserved state. */
struct dl_random_kernels {
  /* float32/float64 out. UNIFORM: a + (b - a) u; NORMAL: a + b z;
   * EXPONENTIAL: -ln(1 - u) / a */
  int (*fill_float)(dl_tensor *out, dl_rng_state st, dl_rand_kind kind, double a, double b);
  /* any dtype: lo + (word mod range), range >= 1 */
  int (*randint)(dl_tensor *out, dl_rng_state st, int64_t lo, uint64_t range);
  /* any dtype: 1 where u < p, else 0; p from probs (contiguous float64 of
   * out->numel elements) when given. Returns how many probabilities lie
   * outside [0, 1]; out is then left untouched. */
  int64_t (*bernoulli)(dl_tensor *out, dl_rng_state st, double p, const dl_tensor *probs);
  /* int64 [n]: 1..n ordered by the elements' 64-bit keys; 0 ok, -1 with an
   * error on allocation failure */
  int (*randperm)(dl_tensor *out, dl_rng_state st);
  /* Dropout in one pass: element i kept when word i % 4 of block i / 4 of
   * the stream is below keep 2^32 (one 32-bit word an element, randint's
   * layout); mask (uint8) = kept, out = x * kept * scale; out and x
   * contiguous, of one float dtype. */
  int (*dropout)(dl_tensor *out, dl_tensor *mask, const dl_tensor *x, dl_rng_state st, double keep, double scale);
  /* its backward (and tangent): gx = g * mask * scale, all contiguous, g and
   * gx of one float dtype, mask uint8 */
  int (*dropout_backward)(dl_tensor *gx, const dl_tensor *g, const dl_tensor *mask, double scale);
};

extern const struct dl_random_kernels dl_cpu_random;

/* ---- new tensors (float dtypes for rand/randn) ---- */
dl_tensor *dl_op_rand(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
dl_tensor *dl_op_randn(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
/* values in [lo, hi) */
dl_tensor *dl_op_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
/* a permutation of 1..n (1-based) */
dl_tensor *dl_op_randperm(int64_t n, dl_dtype dt, dl_device dev);
/* 0/1 draws with probabilities probs (a float tensor), same dtype */
dl_tensor *dl_op_bernoulli(const dl_tensor *probs);
/* 0/1 draws with probability p, of t's shape, dtype and device */
dl_tensor *dl_op_bernoulli_like(const dl_tensor *t, double p);
/* Dropout's draws in one pass (the random table's dropout: one stream word
 * an element): *mask (uint8) = kept and *out = x * kept * scale (x float;
 * new contiguous tensors). 0 done, -1 error. */
int dl_op_dropout_fused(dl_tensor *x, double keep, double scale, dl_tensor **out, dl_tensor **mask);
/* g * mask * scale (mask uint8 of g's shape): dropout's gradient and tangent */
dl_tensor *dl_op_dropout_backward(dl_tensor *g, dl_tensor *mask, double scale);

/* ---- in place, any strided view; 0 ok, -1 with an error ---- */
int dl_tensor_uniform_(dl_tensor *t, double a, double b);
int dl_tensor_normal_(dl_tensor *t, double mean, double std);
int dl_tensor_exponential_(dl_tensor *t, double lambd);
int dl_tensor_random_(dl_tensor *t, int64_t lo, int64_t hi); /* [lo, hi) */
int dl_tensor_bernoulli_(dl_tensor *t, double p);
/* p broadcast to t's shape */
int dl_tensor_bernoulli_tensor_(dl_tensor *t, const dl_tensor *p);

#endif
