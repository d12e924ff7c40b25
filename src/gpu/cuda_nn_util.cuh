/* cuda_nn_util.cuh — helpers shared by the nn kernel files (activations,
 * losses, layers): warp and block reductions in double (the CPU kernels
 * accumulate in double too), a block-wide max, and the Welford merge used
 * by batch-norm statistics. Blocks that call the block reductions must
 * have a multiple of 32 threads, at most 1024. */
#ifndef DL_CUDA_NN_UTIL_CUH
#define DL_CUDA_NN_UTIL_CUH

#include "cuda_common.cuh"

#define DL_CUDA_WARP 32
#define DL_CUDA_FULL_MASK 0xffffffffu

__device__ __forceinline__ double dl_warp_sum(double v) {
  for (int o = DL_CUDA_WARP / 2; o > 0; o >>= 1) v += __shfl_down_sync(DL_CUDA_FULL_MASK, v, o);
  return v; /* lane 0 holds the total */
}

/* the max of x > m ? x : m over the warp, as the CPU's loops compare */
template <typename T> __device__ __forceinline__ T dl_warp_max(T v) {
  for (int o = DL_CUDA_WARP / 2; o > 0; o >>= 1) {
    T w = __shfl_down_sync(DL_CUDA_FULL_MASK, v, o);
    v = w > v ? w : v;
  }
  return v;
}

/* every thread of the block gets the sum; shared: 32 doubles */
__device__ __forceinline__ double dl_block_sum(double v, double *shared) {
  int lane = threadIdx.x % DL_CUDA_WARP, wid = threadIdx.x / DL_CUDA_WARP;
  int nw = (blockDim.x + DL_CUDA_WARP - 1) / DL_CUDA_WARP;
  v = dl_warp_sum(v);
  __syncthreads(); /* shared may still be read by a previous call */
  if (lane == 0) shared[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? shared[lane] : 0.0;
    v = dl_warp_sum(v);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

/* every thread of the block gets the max; shared: 32 Ts; idle lanes pass
 * the identity `lowest` */
template <typename T> __device__ __forceinline__ T dl_block_max(T v, T lowest, T *shared) {
  int lane = threadIdx.x % DL_CUDA_WARP, wid = threadIdx.x / DL_CUDA_WARP;
  int nw = (blockDim.x + DL_CUDA_WARP - 1) / DL_CUDA_WARP;
  v = dl_warp_max(v);
  __syncthreads();
  if (lane == 0) shared[wid] = v;
  __syncthreads();
  if (wid == 0) {
    v = lane < nw ? shared[lane] : lowest;
    v = dl_warp_max(v);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

/* Welford accumulator (count, mean, sum of squared deviations) */
struct dl_welford {
  double n, mean, m2;
};

__device__ __forceinline__ void dl_welford_add(dl_welford &a, double x) {
  a.n += 1;
  double d = x - a.mean;
  a.mean += d / a.n;
  a.m2 += d * (x - a.mean);
}

/* Chan et al.'s pairwise merge */
__device__ __forceinline__ dl_welford dl_welford_merge(dl_welford a, dl_welford b) {
  if (b.n == 0) return a;
  if (a.n == 0) return b;
  dl_welford r;
  r.n = a.n + b.n;
  double d = b.mean - a.mean;
  r.mean = a.mean + d * (b.n / r.n);
  r.m2 = a.m2 + b.m2 + d * d * (a.n * b.n / r.n);
  return r;
}

__device__ __forceinline__ dl_welford dl_welford_shfl_down(dl_welford a, int o) {
  dl_welford b;
  b.n = __shfl_down_sync(DL_CUDA_FULL_MASK, a.n, o);
  b.mean = __shfl_down_sync(DL_CUDA_FULL_MASK, a.mean, o);
  b.m2 = __shfl_down_sync(DL_CUDA_FULL_MASK, a.m2, o);
  return b;
}

/* thread 0 gets the block's merged accumulator; shared: 32 entries */
__device__ __forceinline__ dl_welford dl_block_welford(dl_welford a, dl_welford *shared) {
  int lane = threadIdx.x % DL_CUDA_WARP, wid = threadIdx.x / DL_CUDA_WARP;
  int nw = (blockDim.x + DL_CUDA_WARP - 1) / DL_CUDA_WARP;
  for (int o = DL_CUDA_WARP / 2; o > 0; o >>= 1) a = dl_welford_merge(a, dl_welford_shfl_down(a, o));
  if (lane == 0) shared[wid] = a;
  __syncthreads();
  if (wid == 0) {
    dl_welford z = {0, 0, 0};
    a = lane < nw ? shared[lane] : z;
    for (int o = DL_CUDA_WARP / 2; o > 0; o >>= 1) a = dl_welford_merge(a, dl_welford_shfl_down(a, o));
  }
  return a;
}

/* blocks of a grid over n items, one item per block, capped by CUDA's
 * limit on gridDim.x (2^31 - 1) */
inline unsigned dl_cuda_grid_items(int64_t n) {
  if (n < 1) return 1;
  return (unsigned)(n > 2147483647 ? 2147483647 : n);
}

#endif
