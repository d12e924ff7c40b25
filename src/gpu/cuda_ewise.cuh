/* cuda_ewise.cuh — the element-wise launcher the CUDA ewise kernels share.
 * A functor f(x, y, z) -> out runs over up to three operands, each a view
 * of out's shape or a number (unused operands are numbers of type char).
 * When every tensor operand is contiguous and 16-byte aligned, each thread
 * moves 16 bytes per operand (float4-sized vector loads); otherwise the
 * views are coalesced and addressed through their strides. */
#ifndef DL_CUDA_EWISE_CUH
#define DL_CUDA_EWISE_CUH

#include "cuda_common.cuh"

extern "C" {
#include "../ops/dl_ewise.h"
}

template <typename T> struct ew_arg {
  dl_cuda_view v;
  T s;
  bool scalar;
};
template <typename T> struct ew_ptr {
  const T *p;
  T s;
  bool scalar;
};

template <typename T, int V> struct alignas(sizeof(T) * V) ew_vec {
  T x[V];
};

template <typename A, typename B> struct ew_max_size {
  static constexpr size_t value = sizeof(A) > sizeof(B) ? sizeof(A) : sizeof(B);
};

template <typename O, typename A, typename B, typename C, typename F>
__global__ void ew_strided(int64_t n, dl_cuda_view out, ew_arg<A> a, ew_arg<B> b, ew_arg<C> c, F f) {
  DL_CUDA_FOR(i, n) {
    A x = a.scalar ? a.s : dl_cuda_at<A>(a.v, i);
    B y = b.scalar ? b.s : dl_cuda_at<B>(b.v, i);
    C z = c.scalar ? c.s : dl_cuda_at<C>(c.v, i);
    dl_cuda_at<O>(out, i) = f(x, y, z);
  }
}

template <typename T, int V> __device__ __forceinline__ ew_vec<T, V> ew_load(const ew_ptr<T> &a, int64_t j) {
  ew_vec<T, V> r;
  if (a.scalar) {
#pragma unroll
    for (int k = 0; k < V; k++) r.x[k] = a.s;
  } else {
    r = reinterpret_cast<const ew_vec<T, V> *>(a.p)[j];
  }
  return r;
}

template <typename O, typename A, typename B, typename C, int V, typename F>
__global__ void ew_vector(int64_t n, O *out, ew_ptr<A> a, ew_ptr<B> b, ew_ptr<C> c, F f) {
  int64_t nv = n / V;
  DL_CUDA_FOR(j, nv) {
    ew_vec<A, V> xa = ew_load<A, V>(a, j);
    ew_vec<B, V> xb = ew_load<B, V>(b, j);
    ew_vec<C, V> xc = ew_load<C, V>(c, j);
    ew_vec<O, V> r;
#pragma unroll
    for (int k = 0; k < V; k++) r.x[k] = f(xa.x[k], xb.x[k], xc.x[k]);
    reinterpret_cast<ew_vec<O, V> *>(out)[j] = r;
  }
  /* the tail that does not fill a vector */
  int64_t t = nv * V + (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t < n) {
    A x = a.scalar ? a.s : a.p[t];
    B y = b.scalar ? b.s : b.p[t];
    C z = c.scalar ? c.s : c.p[t];
    out[t] = f(x, y, z);
  }
}

inline bool ew_aligned(const void *p, size_t bytes) { return ((uintptr_t)p % bytes) == 0; }

/* out = f(a, b, c) elementwise; a NULL tensor stands for its number.
 * VEC = false keeps one kernel per functor (rare ops: compile time). */
template <typename O, typename A, typename B, typename C, bool VEC = true, typename F>
int ew_launch(dl_tensor *out, const dl_tensor *ta, A sa, const dl_tensor *tb, B sb, const dl_tensor *tc, C sc,
              F f) {
  int64_t n = out->numel;
  if (n == 0) return DL_KERNEL_OK;
  const dl_tensor *ins[3] = {ta, tb, tc};
  dl_cuda_view v[4];
  int nv = 1;
  v[0] = dl_cuda_view_of(out);
  for (int k = 0; k < 3; k++)
    if (ins[k]) v[nv++] = dl_cuda_view_of(ins[k]);
  dl_cuda_coalesce(v, nv);
  ew_arg<A> a = {};
  ew_arg<B> b = {};
  ew_arg<C> c = {};
  int k = 1;
  a.scalar = !ta;
  a.s = sa;
  if (ta) a.v = v[k++];
  b.scalar = !tb;
  b.s = sb;
  if (tb) b.v = v[k++];
  c.scalar = !tc;
  c.s = sc;
  if (tc) c.v = v[k++];
  bool flat = true;
  for (int j = 0; j < nv; j++) flat = flat && v[j].contiguous;
  constexpr size_t W = ew_max_size<O, typename std::conditional<(sizeof(A) > sizeof(B)), A, B>::type>::value;
  constexpr size_t W2 = W > sizeof(C) ? W : sizeof(C);
  constexpr int V = (int)(16 / W2);
  cudaStream_t s = dl_cuda_stream();
  if (VEC && flat && ew_aligned(v[0].data, sizeof(O) * V) && (!ta || ew_aligned(a.v.data, sizeof(A) * V)) &&
      (!tb || ew_aligned(b.v.data, sizeof(B) * V)) && (!tc || ew_aligned(c.v.data, sizeof(C) * V))) {
    ew_ptr<A> pa = {ta ? (const A *)a.v.data : nullptr, sa, !ta};
    ew_ptr<B> pb = {tb ? (const B *)b.v.data : nullptr, sb, !tb};
    ew_ptr<C> pc = {tc ? (const C *)c.v.data : nullptr, sc, !tc};
    int64_t groups = n / V + 1;
    if constexpr (VEC) ew_vector<O, A, B, C, V, F><<<dl_cuda_blocks(groups), DL_CUDA_THREADS, 0, s>>>(n, (O *)v[0].data, pa, pb, pc, f);
  } else {
    ew_strided<O, A, B, C, F><<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v[0], a, b, c, f);
  }
  return DL_CUDA_LAUNCHED("element-wise kernel");
}

/* the status of an entry whose dtype switch found no kernel (the front-end
 * asked supports_op first, so this means the tables disagree) */
inline int ew_no_kernel(const char *what, dl_dtype dt) {
  dl_error_set("cuda: no %s kernel for %s", what, dl_dtype_name(dt));
  return DL_KERNEL_FAILED;
}

#endif
