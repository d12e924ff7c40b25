/* cuda_sort.cu — sort and topk along a dim on the GPU. As on the CPU
 * (cpu_sort.c) each value becomes an unsigned key whose integer order is
 * the wanted order (floats by their sign-folded bits, NaN largest, -0 ==
 * +0, every bit inverted when descending); CUB's segmented radix sort,
 * which is stable, then orders (key, position) pairs within each slice, so
 * ties keep their original order exactly as on the CPU. One key width
 * (64 bits, with the radix passes limited to 32 bits for 4- and 1-byte
 * dtypes) keeps the template instantiations, and compile time, to one.
 * topk sorts the slice and keeps its first k: results come out best first
 * whether or not sorted was asked for. Values are copied from the source at
 * the sorted positions, so they keep their exact bits. */
#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_index.h"
}

#include <cub/device/device_segmented_radix_sort.cuh>

#include <limits.h>

namespace {

/* all dims but `dim`, in C order, for src, values and indices */
struct slices {
  int nd;
  int64_t size[DL_MAX_DIMS];
  int64_t sstr[DL_MAX_DIMS], vstr[DL_MAX_DIMS], istr[DL_MAX_DIMS];
  int64_t n, k;           /* slice length, kept per slice */
  int64_t sdim, vdim, idim; /* strides along dim */
};

__device__ __forceinline__ void slice_offsets(const slices &S, int64_t s, int64_t *so, int64_t *vo, int64_t *io) {
  int64_t a = 0, b = 0, c = 0;
  for (int d = S.nd - 1; d >= 0; d--) {
    int64_t x = s % S.size[d];
    s /= S.size[d];
    a += x * S.sstr[d];
    b += x * S.vstr[d];
    c += x * S.istr[d];
  }
  *so = a;
  *vo = b;
  *io = c;
}

__device__ __forceinline__ uint64_t key_of(float x) {
  if (x != x) return 0xffffffffull;
  if (x == 0) x = 0.0f;
  uint32_t b = __float_as_uint(x);
  return (b >> 31) ? (uint32_t)~b : (b | 0x80000000u);
}
__device__ __forceinline__ uint64_t key_of(double x) {
  if (x != x) return ~0ull;
  if (x == 0) x = 0.0;
  uint64_t b = (uint64_t)__double_as_longlong(x);
  return (b >> 63) ? ~b : (b | 0x8000000000000000ull);
}
__device__ __forceinline__ uint64_t key_of(int64_t x) { return (uint64_t)x ^ 0x8000000000000000ull; }
__device__ __forceinline__ uint64_t key_of(uint8_t x) { return x; }

template <typename T>
__global__ void make_keys(slices S, const T *src, uint64_t flip, uint64_t *keys, int *pos, int64_t total) {
  DL_CUDA_FOR(e, total) {
    int64_t s = e / S.n, p = e % S.n, so, vo, io;
    slice_offsets(S, s, &so, &vo, &io);
    keys[e] = key_of(src[so + p * S.sdim]) ^ flip;
    pos[e] = (int)p;
  }
}

__global__ void make_offsets(int64_t nslices, int64_t n, int *off) {
  DL_CUDA_FOR(s, nslices + 1) { off[s] = (int)(s * n); }
}

template <typename E>
__global__ void write_out(slices S, const E *src, const int *sorted_pos, E *val, int64_t *ind, int64_t total) {
  DL_CUDA_FOR(e, total) {
    int64_t s = e / S.k, j = e % S.k, so, vo, io;
    slice_offsets(S, s, &so, &vo, &io);
    int64_t p = sorted_pos[s * S.n + j];
    val[vo + j * S.vdim] = src[so + p * S.sdim];
    ind[io + j * S.idim] = p + 1;
  }
}

int run_sort(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, int64_t k, bool desc) {
  int64_t n = src->shape[dim];
  if (n == 0 || k == 0 || src->numel == 0) return 0;
  int64_t total = src->numel, nslices = total / n;
  if (total > INT_MAX) {
    dl_error_set("sort: %lld elements is more than the CUDA sort handles (%d)", (long long)total, INT_MAX);
    return -1;
  }
  slices S;
  S.nd = 0;
  for (int d = 0; d < src->ndim; d++) {
    if (d == dim) continue;
    S.size[S.nd] = src->shape[d];
    S.sstr[S.nd] = src->stride[d];
    S.vstr[S.nd] = values->stride[d];
    S.istr[S.nd] = indices->stride[d];
    S.nd++;
  }
  S.n = n;
  S.k = k;
  S.sdim = src->stride[dim];
  S.vdim = values->stride[dim];
  S.idim = indices->stride[dim];
  size_t es = dl_dtype_size(src->dtype);
  int end_bit = es == 8 ? 64 : 32;
  uint64_t flip = desc ? (es == 8 ? ~0ull : 0xffffffffull) : 0;
  dl_cuda_scratch keys((size_t)total * 8), keys2((size_t)total * 8), pos((size_t)total * 4),
    pos2((size_t)total * 4), offs((size_t)(nslices + 1) * 4);
  if (!keys.p || !keys2.p || !pos.p || !pos2.p || !offs.p) return -1;
  cudaStream_t s = dl_cuda_stream();
  unsigned b = dl_cuda_blocks(total);
  uint64_t *k1 = (uint64_t *)keys.p, *k2 = (uint64_t *)keys2.p;
  int *p1 = (int *)pos.p, *p2 = (int *)pos2.p, *off = (int *)offs.p;
  const void *sp = dl_tensor_data(src);
  switch (src->dtype) {
  case DL_FLOAT32: make_keys<float><<<b, DL_CUDA_THREADS, 0, s>>>(S, (const float *)sp, flip, k1, p1, total); break;
  case DL_FLOAT64: make_keys<double><<<b, DL_CUDA_THREADS, 0, s>>>(S, (const double *)sp, flip, k1, p1, total); break;
  case DL_INT64: make_keys<int64_t><<<b, DL_CUDA_THREADS, 0, s>>>(S, (const int64_t *)sp, flip, k1, p1, total); break;
  default: make_keys<uint8_t><<<b, DL_CUDA_THREADS, 0, s>>>(S, (const uint8_t *)sp, flip, k1, p1, total); break;
  }
  make_offsets<<<dl_cuda_blocks(nslices + 1), DL_CUDA_THREADS, 0, s>>>(nslices, n, off);
  if (DL_CUDA_LAUNCHED("sort")) return -1;
  size_t tmp = 0;
  if (DL_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairs(nullptr, tmp, k1, k2, p1, p2, (int)total, (int)nslices,
                                                             off, off + 1, 0, end_bit, s)))
    return -1;
  dl_cuda_scratch scratch(tmp);
  if (!scratch.p) return -1;
  if (DL_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairs(scratch.p, tmp, k1, k2, p1, p2, (int)total,
                                                             (int)nslices, off, off + 1, 0, end_bit, s)))
    return -1;
  int64_t nout = nslices * k;
  unsigned bo = dl_cuda_blocks(nout);
  int64_t *ind = (int64_t *)dl_tensor_data(indices);
  if (es == 1) write_out<uint8_t><<<bo, DL_CUDA_THREADS, 0, s>>>(S, (const uint8_t *)sp, p2, (uint8_t *)dl_tensor_data(values), ind, nout);
  else if (es == 4) write_out<uint32_t><<<bo, DL_CUDA_THREADS, 0, s>>>(S, (const uint32_t *)sp, p2, (uint32_t *)dl_tensor_data(values), ind, nout);
  else write_out<unsigned long long><<<bo, DL_CUDA_THREADS, 0, s>>>(S, (const unsigned long long *)sp, p2, (unsigned long long *)dl_tensor_data(values), ind, nout);
  return DL_CUDA_LAUNCHED("sort") ? -1 : 0;
}

} // namespace

/* twin of cpu_sort.c's entries by shape: sort and topk are one runner */
int dl_cuda_sort(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, bool descending) {
  return run_sort(values, indices, src, dim, src->shape[dim], descending);
}

int dl_cuda_topk(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, int64_t k, bool largest,
                 bool sorted) {
  (void)sorted;
  return run_sort(values, indices, src, dim, k, largest);
}
