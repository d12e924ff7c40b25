/* cuda_ewise_misc.cu — CUDA kernels of clamp, lerp, addcmul/addcdiv,
 * where, isclose, and the all-true test behind allclose/equal, with the
 * semantics of cpu_ewise_misc.c: NaN in the input or a bound propagates
 * through clamp (an absent bound is the dtype's extreme), lerp is exact at
 * both ends, integer addcmul wraps, isclose treats infinities as equal only
 * to themselves. */
#include "cuda_ewise.cuh"

#include <math.h>

namespace {

template <typename T> __device__ __forceinline__ T maxnan(T x, T y) {
  if constexpr (std::is_floating_point<T>::value) return x != x ? x : y != y ? y : x > y ? x : y;
  else return x > y ? x : y;
}
template <typename T> __device__ __forceinline__ T minnan(T x, T y) {
  if constexpr (std::is_floating_point<T>::value) return x != x ? x : y != y ? y : x < y ? x : y;
  else return x < y ? x : y;
}

template <typename T> struct clamp_fn {
  __device__ T operator()(T x, T lo, T hi) const { return minnan(maxnan(x, lo), hi); }
};

/* the value an absent bound stands for */
template <typename T> T extreme(bool upper) {
  if constexpr (std::is_floating_point<T>::value) return upper ? (T)INFINITY : (T)-INFINITY;
  else if constexpr (std::is_same<T, int64_t>::value) return upper ? INT64_MAX : INT64_MIN;
  else if constexpr (std::is_same<T, bool>::value) return upper;
  else return upper ? 255 : 0;
}

template <typename T> struct lerp_fn {
  __device__ T operator()(T x, T y, T w) const {
    return w < 0.5 && w > -0.5 ? x + w * (y - x) : y - (y - x) * (1 - w);
  }
};

template <typename T> struct addc_fn {
  T value;
  bool div;
  __device__ T operator()(T x, T y, T z) const {
    if constexpr (std::is_floating_point<T>::value) return div ? x + value * y / z : x + value * y * z;
    else if constexpr (std::is_same<T, int64_t>::value)
      return (int64_t)((uint64_t)x + (uint64_t)value * (uint64_t)y * (uint64_t)z);
    else return (T)(x + value * y * z);
  }
};

template <typename T> struct where_fn {
  __device__ T operator()(bool c, T x, T y) const { return c ? x : y; }
};

template <typename T> struct close_fn {
  double rtol, atol;
  bool equal_nan;
  __device__ bool operator()(T x, T y, char) const {
    if constexpr (std::is_floating_point<T>::value) {
      return x == y || (equal_nan && x != x && y != y) ||
             (isfinite((double)x) && isfinite((double)y) && fabs((double)x - (double)y) <= atol + rtol * fabs((double)y));
    } else if constexpr (std::is_same<T, bool>::value) {
      return x == y;
    } else {
      return x == y || fabs((double)x - (double)y) <= atol + rtol * fabs((double)y);
    }
  }
};

__global__ void all_kernel(int64_t n, dl_cuda_view v, int *found_false) {
  DL_CUDA_FOR(i, n) {
    if (!dl_cuda_at<uint8_t>(v, i)) *found_false = 1;
  }
}

} // namespace

int dl_cuda_ewise_clamp(dl_tensor *out, const dl_tensor *a, const dl_operand *lo, const dl_operand *hi) {
  DL_CUDA_DISPATCH(a->dtype, T, {
    const dl_tensor *tl = lo ? lo->t : nullptr, *th = hi ? hi->t : nullptr;
    T sl = lo && !lo->t ? dl_cuda_scalar_as<T>(lo->s) : extreme<T>(false);
    T sh = hi && !hi->t ? dl_cuda_scalar_as<T>(hi->s) : extreme<T>(true);
    return ew_launch<T, T, T, T, false>(out, a, (T)0, tl, sl, th, sh, clamp_fn<T>());
  });
  return ew_no_kernel("clamp", a->dtype);
}

int dl_cuda_ewise_lerp(dl_tensor *out, const dl_tensor *a, const dl_tensor *end, dl_operand w) {
  DL_CUDA_DISPATCH_FLOAT(a->dtype, T, {
    T sw = w.t ? (T)0 : dl_cuda_scalar_as<T>(w.s);
    return ew_launch<T, T, T, T, false>(out, a, (T)0, end, (T)0, w.t, sw, lerp_fn<T>());
  });
  return ew_no_kernel("lerp", a->dtype);
}

int dl_cuda_ewise_addc(bool div, dl_tensor *out, const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2,
                       dl_scalar value) {
  switch (a->dtype) {
#define CASE(DT, T)                                                                                          \
  case DT:                                                                                                   \
    return ew_launch<T, T, T, T, false>(out, a, (T)0, t1, (T)0, t2, (T)0, addc_fn<T>{dl_cuda_scalar_as<T>(value), div});
    CASE(DL_FLOAT32, float)
    CASE(DL_FLOAT64, double)
    CASE(DL_INT64, int64_t)
    CASE(DL_UINT8, uint8_t)
#undef CASE
  default: return ew_no_kernel(div ? "addcdiv" : "addcmul", a->dtype);
  }
}

int dl_cuda_ewise_where(dl_tensor *out, const dl_tensor *cond, dl_operand a, dl_operand b) {
  DL_CUDA_DISPATCH(out->dtype, T, {
    T sa = a.t ? (T)0 : dl_cuda_scalar_as<T>(a.s);
    T sb = b.t ? (T)0 : dl_cuda_scalar_as<T>(b.s);
    if constexpr (std::is_floating_point<T>::value)
      return ew_launch<T, bool, T, T>(out, cond, false, a.t, sa, b.t, sb, where_fn<T>());
    else
      return ew_launch<T, bool, T, T, false>(out, cond, false, a.t, sa, b.t, sb, where_fn<T>());
  });
  return ew_no_kernel("where", out->dtype);
}

int dl_cuda_ewise_isclose(dl_tensor *out, const dl_tensor *a, const dl_tensor *b, double rtol, double atol,
                          bool equal_nan) {
  DL_CUDA_DISPATCH(a->dtype, T, {
    return ew_launch<bool, T, T, char, false>(out, a, (T)0, b, (T)0, nullptr, (char)0,
                                              close_fn<T>{rtol, atol, equal_nan});
  });
  return ew_no_kernel("isclose", a->dtype);
}

int dl_cuda_ewise_all(const dl_tensor *t, bool *out) {
  int64_t n = t->numel;
  *out = true;
  if (n == 0) return DL_KERNEL_OK;
  dl_cuda_scratch flag(sizeof(int));
  if (!flag.p) return DL_KERNEL_FAILED;
  cudaStream_t s = dl_cuda_stream();
  if (DL_CUDA_CHECK(cudaMemsetAsync(flag.p, 0, sizeof(int), s))) return DL_KERNEL_FAILED;
  dl_cuda_view v = dl_cuda_view_of(t);
  dl_cuda_coalesce(&v, 1);
  all_kernel<<<dl_cuda_blocks(n), DL_CUDA_THREADS, 0, s>>>(n, v, (int *)flag.p);
  if (DL_CUDA_LAUNCHED("all")) return DL_KERNEL_FAILED;
  int found = 0;
  if (DL_CUDA_CHECK(cudaMemcpyAsync(&found, flag.p, sizeof(int), cudaMemcpyDeviceToHost, s)) ||
      DL_CUDA_CHECK(cudaStreamSynchronize(s)))
    return DL_KERNEL_FAILED;
  *out = found == 0;
  return DL_KERNEL_OK;
}
