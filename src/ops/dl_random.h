/* dl_random.h — random tensor ops: front-ends and the kernel table.
 * Every op draws from the process-wide Philox generator (dl_rng.h), whose
 * streams define element i of an op's output in C order, so a view's
 * elements, a contiguous tensor's and a GPU's come out the same. */
#ifndef DL_OPS_RANDOM_H
#define DL_OPS_RANDOM_H

#include "../dl_backend.h"
#include "../dl_rng.h"

typedef enum { DL_RAND_UNIFORM = 0, DL_RAND_NORMAL, DL_RAND_EXPONENTIAL } dl_rand_kind;

/* Kernels write contiguous outputs of out->numel elements, element i from
 * the stream words dl_rng.h assigns it; st is the op's reserved state. */
struct dl_random_kernels {
  /* float32/float64 out. UNIFORM: a + (b - a) u; NORMAL: a + b z;
   * EXPONENTIAL: -ln(1 - u) / a */
  void (*fill_float)(dl_tensor *out, dl_rng_state st, dl_rand_kind kind, double a, double b);
  /* any dtype: lo + (word mod range), range >= 1 */
  void (*randint)(dl_tensor *out, dl_rng_state st, int64_t lo, uint64_t range);
  /* any dtype: 1 where u < p, else 0; p from probs (contiguous float64 of
   * out->numel elements) when given. Returns how many probabilities lie
   * outside [0, 1]; out is then left untouched. */
  int64_t (*bernoulli)(dl_tensor *out, dl_rng_state st, double p, const dl_tensor *probs);
  /* int64 [n]: 1..n ordered by the elements' 64-bit keys; 0 ok, -1 with an
   * error on allocation failure */
  int (*randperm)(dl_tensor *out, dl_rng_state st);
};

extern const struct dl_random_kernels dl_cpu_random;

/* ---- new tensors (float dtypes for rand/randn) ---- */
dl_tensor *dl_rand(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
dl_tensor *dl_randn(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
/* values in [lo, hi) */
dl_tensor *dl_randint(int64_t lo, int64_t hi, const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
/* a permutation of 1..n (1-based) */
dl_tensor *dl_randperm(int64_t n, dl_dtype dt, dl_device dev);
/* 0/1 draws with probabilities probs (a float tensor), same dtype */
dl_tensor *dl_bernoulli(const dl_tensor *probs);
/* 0/1 draws with probability p, of t's shape, dtype and device */
dl_tensor *dl_bernoulli_like(const dl_tensor *t, double p);

/* ---- in place, any strided view; 0 ok, -1 with an error ---- */
int dl_tensor_uniform_(dl_tensor *t, double a, double b);
int dl_tensor_normal_(dl_tensor *t, double mean, double std);
int dl_tensor_exponential_(dl_tensor *t, double lambd);
int dl_tensor_random_(dl_tensor *t, int64_t lo, int64_t hi); /* [lo, hi) */
int dl_tensor_bernoulli_(dl_tensor *t, double p);
/* p broadcast to t's shape */
int dl_tensor_bernoulli_tensor_(dl_tensor *t, const dl_tensor *p);

#endif
