/* cuda_random.cu — the Philox streams of dl_rng.h on the GPU: one thread
 * per 4-word block, exactly the CPU's element-to-counter mapping and
 * conversion formulas (src/cpu/cpu_random.c), computed in double and
 * rounded once, so a seed gives the same tensors on both devices. randperm
 * sorts the 64-bit keys with CUB's stable radix sort, which breaks ties by
 * index as the CPU's qsort comparator does. */
#ifndef DL_RNG_FN
#define DL_RNG_FN static inline __host__ __device__
#endif

#include "cuda_common.cuh"

#include <cub/device/device_radix_sort.cuh>

extern "C" {
#include "../ops/dl_random.h"
}


/* value conversions as the CPU's STORE macro: a C cast; bool is v != 0 */
template <typename T> __host__ __device__ __forceinline__ T from_int(int64_t v) { return (T)v; }
template <> __host__ __device__ __forceinline__ bool from_int<bool>(int64_t v) { return v != 0; }

/* ---- uniform / normal / exponential ---- */

/* Each block's values are one function of (state, block), also callable
 * on the host, so its transcription of the CPU kernel can be tested there. */
template <typename T>
__host__ __device__ inline void fill_float_block(T *out, int64_t n, int64_t blk, dl_rng_state st, dl_rand_kind kind,
                                                 double a, double b) {
  double v[4];
  int cnt = dl_rand_block_values(st, blk, sizeof(T) == 8, kind, a, b, v);
  int64_t i0 = blk * cnt;
  if (cnt > n - i0) cnt = (int)(n - i0);
  for (int l = 0; l < cnt; l++) out[i0 + l] = (T)v[l];
}

template <typename T>
__global__ void fill_float_kernel(T *out, int64_t n, int64_t nblocks, dl_rng_state st, dl_rand_kind kind, double a,
                                  double b) {
  DL_CUDA_FOR(blk, nblocks) fill_float_block<T>(out, n, blk, st, kind, a, b);
}

static int cuda_fill_float(dl_tensor *out, dl_rng_state st, dl_rand_kind kind, double a, double b) {
  DL_CUDA_ENTRY();
  int64_t n = out->numel;
  if (n == 0) return dl_cuda_status();
  if (out->dtype == DL_FLOAT64) {
    int64_t nb = (n + 1) / 2;
    fill_float_kernel<double><<<dl_cuda_blocks(nb), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
        (double *)dl_tensor_data(out), n, nb, st, kind, a, b);
  } else {
    int64_t nb = (n + 3) / 4;
    fill_float_kernel<float><<<dl_cuda_blocks(nb), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
        (float *)dl_tensor_data(out), n, nb, st, kind, a, b);
  }
  DL_CUDA_LAUNCHED("random: fill");
  return dl_cuda_status();
}

/* ---- randint ---- */

template <typename T>
__host__ __device__ inline void randint_block(T *out, int64_t n, int64_t blk, dl_rng_state st, uint64_t lo, uint64_t r,
                                              bool wide) {
  uint32_t x[4];
  int64_t v[4];
  dl_rng_block(st, (uint64_t)blk, x);
  int per;
  if (wide) {
    v[0] = (int64_t)(lo + ((((uint64_t)x[0] << 32) | x[1]) % r));
    v[1] = (int64_t)(lo + ((((uint64_t)x[2] << 32) | x[3]) % r));
    per = 2;
  } else {
    for (int l = 0; l < 4; l++) v[l] = (int64_t)(lo + (uint64_t)x[l] % r);
    per = 4;
  }
  int64_t i0 = blk * per;
  int cnt = per;
  if (cnt > n - i0) cnt = (int)(n - i0);
  for (int l = 0; l < cnt; l++) out[i0 + l] = from_int<T>(v[l]);
}

template <typename T>
__global__ void randint_kernel(T *out, int64_t n, int64_t nblocks, dl_rng_state st, uint64_t lo, uint64_t r,
                               bool wide) {
  DL_CUDA_FOR(blk, nblocks) randint_block<T>(out, n, blk, st, lo, r, wide);
}

static int cuda_randint(dl_tensor *out, dl_rng_state st, int64_t lo, uint64_t range) {
  DL_CUDA_ENTRY();
  int64_t n = out->numel;
  if (n == 0) return dl_cuda_status();
  bool wide = range > (UINT64_C(1) << 32);
  int per = wide ? 2 : 4;
  int64_t nb = (n + per - 1) / per;
  DL_CUDA_DISPATCH(out->dtype, T,
                   randint_kernel<T><<<dl_cuda_blocks(nb), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                       (T *)dl_tensor_data(out), n, nb, st, (uint64_t)lo, range, wide));
  DL_CUDA_LAUNCHED("random: randint");
  return dl_cuda_status();
}

/* ---- bernoulli ---- */

/* probabilities outside [0, 1] (NaN included), counted on the device */
__device__ unsigned long long dl_cuda_bernoulli_bad;

__global__ void bernoulli_check_kernel(const double *p, int64_t n) {
  unsigned long long bad = 0;
  DL_CUDA_FOR(i, n) bad += !(p[i] >= 0 && p[i] <= 1);
  if (bad) atomicAdd(&dl_cuda_bernoulli_bad, bad);
}

template <typename T>
__host__ __device__ inline void bernoulli_block(T *out, int64_t n, int64_t blk, dl_rng_state st, double p,
                                                const double *probs) {
  uint32_t x[4];
  dl_rng_block(st, (uint64_t)blk, x);
  int64_t i0 = blk * 2;
  int cnt = n - i0 < 2 ? 1 : 2;
  for (int l = 0; l < cnt; l++) {
    double pl = probs ? probs[i0 + l] : p;
    out[i0 + l] = from_int<T>(dl_rng_u53(x[2 * l], x[2 * l + 1]) < pl);
  }
}

template <typename T>
__global__ void bernoulli_kernel(T *out, int64_t n, int64_t nblocks, dl_rng_state st, double p, const double *probs) {
  DL_CUDA_FOR(blk, nblocks) bernoulli_block<T>(out, n, blk, st, p, probs);
}

static int64_t cuda_bernoulli(dl_tensor *out, dl_rng_state st, double p, const dl_tensor *probs) {
  int64_t n = out->numel;
  if (n == 0) return 0;
  const double *pp = probs ? (const double *)dl_tensor_data(probs) : NULL;
  cudaStream_t s = dl_cuda_stream();
  if (pp) {
    /* validate first so a bad tensor leaves out untouched; the count is
     * the API's host value, so this is a sync point */
    unsigned long long zero = 0, bad = 0;
    if (DL_CUDA_CHECK(cudaMemcpyToSymbolAsync(dl_cuda_bernoulli_bad, &zero, sizeof zero, 0,
                                              cudaMemcpyHostToDevice, s)))
      return 0;
    bernoulli_check_kernel<<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(pp, n);
    if (DL_CUDA_LAUNCHED("bernoulli: check")) return 0;
    if (DL_CUDA_CHECK(cudaMemcpyFromSymbolAsync(&bad, dl_cuda_bernoulli_bad, sizeof bad, 0,
                                                cudaMemcpyDeviceToHost, s)) ||
        DL_CUDA_CHECK(cudaStreamSynchronize(s)))
      return 0;
    if (bad) return (int64_t)bad;
  }
  int64_t nb = (n + 1) / 2;
  DL_CUDA_DISPATCH(out->dtype, T,
                   bernoulli_kernel<T><<<dl_cuda_blocks(nb), DL_CUDA_THREADS, 0, s>>>((T *)dl_tensor_data(out), n,
                                                                                      nb, st, p, pp));
  DL_CUDA_LAUNCHED("bernoulli");
  return 0;
}

/* ---- dropout: one stream word an element (the CPU's rule, dl_random.h) ---- */

template <typename T>
__global__ void dropout_kernel(T *out, uint8_t *mask, const T *x, int64_t n, int64_t nblocks, dl_rng_state st,
                               uint64_t thr, T scale) {
  DL_CUDA_FOR(blk, nblocks) {
    uint32_t w[4];
    dl_rng_block(st, (uint64_t)blk, w);
    for (int k = 0; k < 4; k++) {
      int64_t i = blk * 4 + k;
      if (i >= n) break;
      bool kept = (uint64_t)w[k] < thr;
      mask[i] = kept;
      out[i] = kept ? x[i] * scale : (T)0;
    }
  }
}

template <typename T>
__global__ void dropout_backward_kernel(T *gx, const T *g, const uint8_t *mask, int64_t n, T scale) {
  DL_CUDA_FOR(i, n) gx[i] = g[i] * (scale * (T)mask[i]); /* a product, as the CPU's: inf or NaN stays NaN */
}

static int cuda_dropout_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *mask, double scale) {
  DL_CUDA_ENTRY();
  int64_t n = gx->numel;
  if (n == 0) return dl_cuda_status();
  DL_CUDA_DISPATCH_FLOAT(gx->dtype, T,
                         dropout_backward_kernel<T><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                           (T *)dl_tensor_data(gx), (const T *)dl_tensor_data(g),
                           (const uint8_t *)dl_tensor_data(mask), n, (T)scale));
  DL_CUDA_LAUNCHED("dropout_backward");
  return dl_cuda_status();
}

static int cuda_dropout(dl_tensor *out, dl_tensor *mask, const dl_tensor *x, dl_rng_state st, double keep,
                        double scale) {
  DL_CUDA_ENTRY();
  int64_t n = out->numel, nb = (n + 3) / 4;
  if (n == 0) return dl_cuda_status();
  uint64_t thr = (uint64_t)ceil(keep * 4294967296.0);
  DL_CUDA_DISPATCH_FLOAT(out->dtype, T,
                         dropout_kernel<T><<<dl_cuda_blocks(nb), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
                           (T *)dl_tensor_data(out), (uint8_t *)dl_tensor_data(mask), (const T *)dl_tensor_data(x), n, nb,
                           st, thr, (T)scale));
  DL_CUDA_LAUNCHED("dropout");
  return dl_cuda_status();
}

/* ---- randperm: 1..n ordered by (key, index) ---- */

__host__ __device__ inline void perm_keys_block(uint64_t *keys, int64_t *vals, int64_t n, int64_t blk,
                                                dl_rng_state st) {
  uint32_t x[4];
  dl_rng_block(st, (uint64_t)blk, x);
  for (int l = 0; l < 2 && blk * 2 + l < n; l++) {
    int64_t i = blk * 2 + l;
    keys[i] = ((uint64_t)x[2 * l] << 32) | x[2 * l + 1];
    vals[i] = i + 1; /* 1-based; the stable sort keeps index order on ties */
  }
}

__global__ void perm_keys_kernel(uint64_t *keys, int64_t *vals, int64_t n, int64_t nblocks, dl_rng_state st) {
  DL_CUDA_FOR(blk, nblocks) perm_keys_block(keys, vals, n, blk, st);
}

static int cuda_randperm(dl_tensor *out, dl_rng_state st) {
  int64_t n = out->numel;
  if (n == 0) return 0;
  if (n > INT32_MAX) {
    dl_error_set("randperm: n = %lld is too large for the CUDA sort (at most %d)", (long long)n, INT32_MAX);
    return -1;
  }
  cudaStream_t s = dl_cuda_stream();
  int num = (int)n;
  size_t temp_bytes = 0;
  if (DL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, temp_bytes, (const uint64_t *)NULL, (uint64_t *)NULL,
                                                    (const int64_t *)NULL, (int64_t *)NULL, num, 0, 64, s)))
    return -1;
  /* one scratch block: keys in, keys out, values in, then CUB's temp, each
   * part 256-byte aligned as CUB's own allocations are */
  size_t kbytes = ((size_t)n * sizeof(uint64_t) + 255) / 256 * 256, vbytes = kbytes;
  size_t total = 2 * kbytes + vbytes + temp_bytes;
  char *buf = (char *)dl_cuda_malloc(total);
  if (!buf) return -1;
  uint64_t *kin = (uint64_t *)buf, *kout = (uint64_t *)(buf + kbytes);
  int64_t *vin = (int64_t *)(buf + 2 * kbytes);
  void *temp = buf + 2 * kbytes + vbytes;
  int64_t nb = (n + 1) / 2;
  perm_keys_kernel<<<dl_cuda_blocks(nb), DL_CUDA_THREADS, 0, s>>>(kin, vin, n, nb, st);
  int rc = DL_CUDA_LAUNCHED("randperm: keys");
  if (rc == 0)
    rc = DL_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, kin, kout, vin,
                                                       (int64_t *)dl_tensor_data(out), num, 0, 64, s));
  /* the allocator reuses blocks in stream order, so freeing here is safe */
  dl_cuda_free(buf, total);
  return rc;
}

/* the table is filled in member order: a new member must be added below */
static_assert(sizeof(struct dl_random_kernels) == 6 * sizeof(void *),
              "dl_random_kernels changed: fill its new members");

extern "C" const struct dl_random_kernels dl_cuda_random = {
    cuda_fill_float,
    cuda_randint,
    cuda_bernoulli,
    cuda_randperm,
    cuda_dropout,
    cuda_dropout_backward,
};
