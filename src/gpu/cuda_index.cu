/* cuda_index.cu — CUDA kernels of the index family: minmax and
 * count_nonzero (answers come to the host: the front-ends check index
 * ranges and size outputs with them), index_select, gather, scatter
 * (duplicate indices accumulate through atomics under DL_SCATTER_ADD; under
 * DL_SCATTER_SET which duplicate wins is unspecified, as in PyTorch's CUDA
 * scatter), masked_select and nonzero (a flag pass, a CUB prefix sum for
 * the output positions, then a write pass, so order stays C order), and
 * flip (a negative-stride view copied). Index tensors hold 1-based int64
 * values. Sort and topk: cuda_sort.cu. */
#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_index.h"
}

#include <cub/device/device_scan.cuh>

void dl_cuda_copy(dl_tensor *dst, const dl_tensor *src); /* cuda_copy.cu */

namespace {

/* ---- minmax, count_nonzero ---- */

__global__ void minmax_init(long long *r) {
  r[0] = INT64_MAX;
  r[1] = INT64_MIN;
}

__global__ void minmax_kernel(int64_t n, dl_cuda_view v, long long *r) {
  long long mn = INT64_MAX, mx = INT64_MIN;
  DL_CUDA_FOR(i, n) {
    long long x = (long long)dl_cuda_at<int64_t>(v, i);
    mn = x < mn ? x : mn;
    mx = x > mx ? x : mx;
  }
  for (int d = 16; d > 0; d /= 2) {
    long long a = __shfl_down_sync(0xffffffffu, mn, d), b = __shfl_down_sync(0xffffffffu, mx, d);
    mn = a < mn ? a : mn;
    mx = b > mx ? b : mx;
  }
  if (threadIdx.x % 32 == 0) {
    atomicMin(&r[0], mn);
    atomicMax(&r[1], mx);
  }
}

int cuda_minmax(const dl_tensor *idx, int64_t *mn, int64_t *mx) {
  DL_CUDA_ENTRY();
  *mn = INT64_MAX;
  *mx = INT64_MIN;
  int64_t n = idx->numel;
  if (n == 0) return dl_cuda_status();
  dl_cuda_scratch r(2 * sizeof(long long));
  if (!r.p) return dl_cuda_status();
  cudaStream_t s = dl_cuda_stream();
  dl_cuda_view v = dl_cuda_view_of(idx);
  dl_cuda_coalesce(&v, 1);
  minmax_init<<<1, 1, 0, s>>>((long long *)r.p);
  minmax_kernel<<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, (long long *)r.p);
  DL_CUDA_LAUNCHED("minmax");
  long long h[2] = {INT64_MAX, INT64_MIN};
  DL_CUDA_CHECK(cudaMemcpyAsync(h, r.p, sizeof h, cudaMemcpyDeviceToHost, s));
  DL_CUDA_CHECK(cudaStreamSynchronize(s));
  *mn = (int64_t)h[0];
  *mx = (int64_t)h[1];
  return dl_cuda_status();
}

template <typename T> __global__ void count_kernel(int64_t n, dl_cuda_view v, unsigned long long *r) {
  unsigned long long c = 0;
  DL_CUDA_FOR(i, n) { c += dl_cuda_at<T>(v, i) != (T)0; }
  for (int d = 16; d > 0; d /= 2) c += __shfl_down_sync(0xffffffffu, c, d);
  if (threadIdx.x % 32 == 0 && c) atomicAdd(r, c);
}

/* the count, or -1 when a step failed (the error set) */
int64_t cuda_count_nonzero(const dl_tensor *t) {
  DL_CUDA_ENTRY();
  int64_t n = t->numel;
  if (n == 0) return 0;
  dl_cuda_scratch r(sizeof(unsigned long long));
  if (!r.p) return -1;
  cudaStream_t s = dl_cuda_stream();
  DL_CUDA_CHECK(cudaMemsetAsync(r.p, 0, sizeof(unsigned long long), s));
  dl_cuda_view v = dl_cuda_view_of(t);
  dl_cuda_coalesce(&v, 1);
  /* bool and uint8 are bytes: one kernel */
  switch (t->dtype) {
  case DL_FLOAT32: count_kernel<float><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, (unsigned long long *)r.p); break;
  case DL_FLOAT64: count_kernel<double><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, (unsigned long long *)r.p); break;
  case DL_INT64: count_kernel<int64_t><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, (unsigned long long *)r.p); break;
  default: count_kernel<uint8_t><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, (unsigned long long *)r.p); break;
  }
  DL_CUDA_LAUNCHED("count_nonzero");
  unsigned long long h = 0;
  DL_CUDA_CHECK(cudaMemcpyAsync(&h, r.p, sizeof h, cudaMemcpyDeviceToHost, s));
  DL_CUDA_CHECK(cudaStreamSynchronize(s));
  return dl_cuda_status() == DL_KERNEL_OK ? (int64_t)h : -1;
}

/* ---- gather, index_select ---- */

/* shapes and element strides of the operands of one indexing op, by value */
struct ixplan {
  int ndim, dim;
  int64_t size[DL_MAX_DIMS];      /* the iteration shape */
  int64_t ostr[DL_MAX_DIMS];      /* out (gather, index_select) or self (scatter) */
  int64_t istr[DL_MAX_DIMS];      /* idx (gather, scatter); idx[0] stride at dim for index_select */
  int64_t xstr[DL_MAX_DIMS];      /* src */
  int64_t n;
  char *o;
  const int64_t *idx;
  const char *x;
};

/* out[i] = src[i with coordinate dim replaced by idx[i] - 1]; idx_along_dim:
 * the index is 1-D and read at the coordinate along dim (index_select) */
template <typename E, bool IDX_ALONG_DIM> __global__ void gather_kernel(ixplan P) {
  DL_CUDA_FOR(i, P.n) {
    int64_t rem = i, oo = 0, io = 0, xo = 0;
    for (int d = P.ndim - 1; d >= 0; d--) {
      int64_t c = rem % P.size[d];
      rem /= P.size[d];
      oo += c * P.ostr[d];
      if (d != P.dim) xo += c * P.xstr[d];
      if (IDX_ALONG_DIM) {
        if (d == P.dim) io = c * P.istr[0];
      } else {
        io += c * P.istr[d];
      }
    }
    xo += (P.idx[io] - 1) * P.xstr[P.dim];
    ((E *)P.o)[oo] = ((const E *)P.x)[xo];
  }
}

template <bool ALONG> void launch_gather(const ixplan &P, size_t es) {
  cudaStream_t s = dl_cuda_stream();
  unsigned b = dl_cuda_blocks(P.n);
  if (es == 1) gather_kernel<uint8_t, ALONG><<<b, DL_CUDA_THREADS, 0, s>>>(P);
  else if (es == 4) gather_kernel<uint32_t, ALONG><<<b, DL_CUDA_THREADS, 0, s>>>(P);
  else gather_kernel<unsigned long long, ALONG><<<b, DL_CUDA_THREADS, 0, s>>>(P);
  DL_CUDA_LAUNCHED("gather");
}

/* the plan over `over`'s shape (idx's for gather/scatter, out's for
 * index_select): out's and src's strides (src may be NULL), the index's
 * strides when it has over's rank, else 0 (the caller sets them) */
static ixplan plan_of(const dl_tensor *over, const dl_tensor *out, const dl_tensor *src, const dl_tensor *idx,
                      int dim) {
  ixplan P = {};
  P.ndim = over->ndim;
  P.dim = dim;
  for (int d = 0; d < over->ndim; d++) {
    P.size[d] = over->shape[d];
    P.ostr[d] = out->stride[d];
    P.istr[d] = over == idx ? idx->stride[d] : 0;
    P.xstr[d] = src ? src->stride[d] : 0;
  }
  P.n = over->numel;
  P.o = (char *)dl_tensor_data(out);
  P.idx = (const int64_t *)dl_tensor_data(idx);
  P.x = src ? (const char *)dl_tensor_data(src) : nullptr;
  return P;
}

int cuda_gather(dl_tensor *out, const dl_tensor *src, int dim, const dl_tensor *idx) {
  DL_CUDA_ENTRY();
  if (idx->numel == 0) return dl_cuda_status();
  launch_gather<false>(plan_of(idx, out, src, idx, dim), dl_dtype_size(src->dtype));
  return dl_cuda_status();
}

int cuda_index_select(dl_tensor *out, const dl_tensor *src, int dim, const dl_tensor *idx) {
  DL_CUDA_ENTRY();
  if (out->numel == 0) return dl_cuda_status();
  ixplan P = plan_of(out, out, src, idx, dim);
  P.istr[0] = idx->ndim ? idx->stride[0] : 0;
  launch_gather<true>(P, dl_dtype_size(src->dtype));
  return dl_cuda_status();
}

/* ---- scatter ---- */

/* byte-wide atomics through the aligned 32-bit word that holds the byte
 * (device blocks are 512-byte multiples, so the word is inside the block) */
__device__ __forceinline__ void atomic_add_u8(uint8_t *p, uint8_t v) {
  unsigned *w = (unsigned *)((uintptr_t)p & ~(uintptr_t)3);
  unsigned shift = ((uintptr_t)p & 3) * 8;
  unsigned old = *w, assumed;
  do {
    assumed = old;
    unsigned byte = ((assumed >> shift) + v) & 0xffu;
    old = atomicCAS(w, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
  } while (old != assumed);
}
__device__ __forceinline__ void atomic_or_bool(uint8_t *p) {
  unsigned *w = (unsigned *)((uintptr_t)p & ~(uintptr_t)3);
  atomicOr(w, 1u << (((uintptr_t)p & 3) * 8));
}

template <typename T> struct scatter_args {
  ixplan P = {};
  T v; /* the value, or the factor on src under ADD */
  bool has_src, add;
};

template <typename T> __global__ void scatter_kernel(scatter_args<T> A) {
  const ixplan &P = A.P;
  DL_CUDA_FOR(i, P.n) {
    int64_t rem = i, so = 0, io = 0, xo = 0;
    for (int d = P.ndim - 1; d >= 0; d--) {
      int64_t c = rem % P.size[d];
      rem /= P.size[d];
      if (d != P.dim) so += c * P.ostr[d];
      io += c * P.istr[d];
      xo += c * P.xstr[d];
    }
    so += (P.idx[io] - 1) * P.ostr[P.dim];
    T *dst = (T *)P.o + so;
    if (!A.add) {
      *dst = A.has_src ? ((const T *)P.x)[xo] : A.v;
      continue;
    }
    if constexpr (std::is_same<T, bool>::value) {
      bool x = A.has_src ? ((const bool *)P.x)[xo] && A.v : A.v;
      if (x) atomic_or_bool((uint8_t *)dst);
    } else if constexpr (std::is_same<T, uint8_t>::value) {
      uint8_t x = A.has_src ? (uint8_t)(A.v * ((const uint8_t *)P.x)[xo]) : A.v;
      atomic_add_u8(dst, x);
    } else if constexpr (std::is_same<T, int64_t>::value) {
      uint64_t x = A.has_src ? (uint64_t)A.v * (uint64_t)((const int64_t *)P.x)[xo] : (uint64_t)A.v;
      atomicAdd((unsigned long long *)dst, (unsigned long long)x);
    } else {
      T x = A.has_src ? A.v * ((const T *)P.x)[xo] : A.v;
      atomicAdd(dst, x);
    }
  }
}

int cuda_scatter(dl_tensor *self, int dim, const dl_tensor *idx, const dl_tensor *src, dl_scalar value,
                  dl_scatter_mode mode) {
  DL_CUDA_ENTRY();
  if (idx->numel == 0) return dl_cuda_status();
  ixplan P = plan_of(idx, self, src, idx, dim);
  cudaStream_t s = dl_cuda_stream();
  DL_CUDA_DISPATCH(self->dtype, T, {
    scatter_args<T> A;
    A.P = P;
    A.v = dl_cuda_scalar_as<T>(value);
    A.has_src = src != nullptr;
    A.add = mode == DL_SCATTER_ADD;
    scatter_kernel<T><<<dl_cuda_blocks(P.n), DL_CUDA_THREADS, 0, s>>>(A);
  });
  DL_CUDA_LAUNCHED("scatter");
  return dl_cuda_status();
}

/* ---- masked_select, nonzero: flags, prefix sum, write ---- */

template <typename T> __global__ void flag_kernel(int64_t n, dl_cuda_view v, int64_t *flags) {
  DL_CUDA_FOR(i, n) { flags[i] = dl_cuda_at<T>(v, i) != (T)0; }
}

/* positions[i] = number of set flags before i; 0 ok */
int flags_and_positions(const dl_tensor *t, int64_t *flags, int64_t *pos) {
  int64_t n = t->numel;
  cudaStream_t s = dl_cuda_stream();
  dl_cuda_view v = dl_cuda_view_of(t);
  switch (t->dtype) {
  case DL_FLOAT32: flag_kernel<float><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, flags); break;
  case DL_FLOAT64: flag_kernel<double><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, flags); break;
  case DL_INT64: flag_kernel<int64_t><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, flags); break;
  default: flag_kernel<uint8_t><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, flags); break;
  }
  if (DL_CUDA_LAUNCHED("flags")) return -1;
  size_t tmp = 0;
  if (DL_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, tmp, flags, pos, n, s))) return -1;
  dl_cuda_scratch scratch(tmp);
  if (!scratch.p) return -1;
  return DL_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(scratch.p, tmp, flags, pos, n, s));
}

template <typename E>
__global__ void select_kernel(int64_t n, dl_cuda_view src, const int64_t *flags, const int64_t *pos, E *out,
                              int64_t ostride) {
  DL_CUDA_FOR(i, n) {
    if (flags[i]) out[pos[i] * ostride] = dl_cuda_at<E>(src, i);
  }
}

int cuda_masked_select(dl_tensor *out, const dl_tensor *src, const dl_tensor *mask) {
  DL_CUDA_ENTRY();
  int64_t n = src->numel;
  if (n == 0 || out->numel == 0) return dl_cuda_status();
  dl_cuda_scratch flags((size_t)n * sizeof(int64_t)), pos((size_t)n * sizeof(int64_t));
  if (!flags.p || !pos.p) return dl_cuda_status();
  if (flags_and_positions(mask, (int64_t *)flags.p, (int64_t *)pos.p)) return dl_cuda_status();
  dl_cuda_view v = dl_cuda_view_of(src);
  cudaStream_t s = dl_cuda_stream();
  int64_t ost = out->stride[0];
  size_t es = dl_dtype_size(src->dtype);
  const int64_t *f = (const int64_t *)flags.p, *p = (const int64_t *)pos.p;
  if (es == 1) select_kernel<uint8_t><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, f, p, (uint8_t *)dl_tensor_data(out), ost);
  else if (es == 4) select_kernel<uint32_t><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, f, p, (uint32_t *)dl_tensor_data(out), ost);
  else select_kernel<unsigned long long><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, f, p, (unsigned long long *)dl_tensor_data(out), ost);
  DL_CUDA_LAUNCHED("masked_select");
  return dl_cuda_status();
}

__global__ void nonzero_kernel(int64_t n, int nd, dl_cuda_view t, const int64_t *flags, const int64_t *pos,
                               int64_t *out, int64_t os0, int64_t os1) {
  DL_CUDA_FOR(i, n) {
    if (!flags[i]) continue;
    int64_t row = pos[i], rem = i;
    for (int d = nd - 1; d >= 0; d--) {
      out[row * os0 + d * os1] = rem % t.size[d] + 1;
      rem /= t.size[d];
    }
  }
}

int cuda_nonzero(dl_tensor *out, const dl_tensor *t) {
  DL_CUDA_ENTRY();
  int64_t n = t->numel;
  if (n == 0 || out->numel == 0) return dl_cuda_status();
  dl_cuda_scratch flags((size_t)n * sizeof(int64_t)), pos((size_t)n * sizeof(int64_t));
  if (!flags.p || !pos.p) return dl_cuda_status();
  if (flags_and_positions(t, (int64_t *)flags.p, (int64_t *)pos.p)) return dl_cuda_status();
  dl_cuda_view v = dl_cuda_view_of(t);
  nonzero_kernel<<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, dl_cuda_stream()>>>(
    n, t->ndim, v, (const int64_t *)flags.p, (const int64_t *)pos.p, (int64_t *)dl_tensor_data(out), out->stride[0],
    out->ndim > 1 ? out->stride[1] : 0);
  DL_CUDA_LAUNCHED("nonzero");
  return dl_cuda_status();
}

/* ---- flip ---- */

int cuda_flip(dl_tensor *out, const dl_tensor *src, uint32_t dims) {
  DL_CUDA_ENTRY();
  dl_tensor v = *src; /* src seen through negative strides */
  for (int d = 0; d < src->ndim; d++)
    if ((dims >> d) & 1u && src->shape[d] > 1) {
      v.offset += (src->shape[d] - 1) * src->stride[d];
      v.stride[d] = -src->stride[d];
    }
  dl_cuda_copy(out, &v);
  return dl_cuda_status();
}

} // namespace

int dl_cuda_sort(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, bool descending);
int dl_cuda_topk(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, int64_t k, bool largest,
                 bool sorted);

extern "C" const struct dl_index_kernels dl_cuda_index = {
  cuda_minmax,
  cuda_count_nonzero,
  cuda_index_select,
  cuda_gather,
  cuda_scatter,
  cuda_masked_select,
  cuda_nonzero,
  dl_cuda_sort,
  dl_cuda_topk,
  cuda_flip,
};
