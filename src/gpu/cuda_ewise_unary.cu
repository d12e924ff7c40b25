/* cuda_ewise_unary.cu — CUDA unary element-wise kernels: math functions,
 * rounding, sign and the predicates, with cpu_ewise_unary.c's table: float
 * functions exist for float32/float64 only (the front-end converts integer
 * inputs to float32 first), rounding is the identity on integers, round is
 * half-to-even, and isnan/isinf/isfinite are constant on integers. */
#include "cuda_ewise.cuh"

namespace {

template <typename T> __device__ __forceinline__ T sigmoid(T x) {
  T e = exp(-fabs(x));
  T r = (T)1 / ((T)1 + e);
  return x >= 0 ? r : e * r;
}

template <int OP> struct un_bool {
  static constexpr bool value = dl_rule_writes_bool(dl_unop_rule(OP));
};

template <int OP, typename T> struct un_fn {
  typedef typename std::conditional<un_bool<OP>::value, bool, T>::type out_t;
  __device__ __forceinline__ out_t operator()(T x, char, char) const {
    constexpr bool flt = std::is_floating_point<T>::value;
    constexpr bool i64 = std::is_same<T, int64_t>::value;
    if constexpr (OP == DL_UN_NEG) {
      if constexpr (flt) return -x;
      else if constexpr (i64) return (int64_t)(0 - (uint64_t)x);
      else return (T)(0u - x);
    } else if constexpr (OP == DL_UN_ABS) {
      if constexpr (flt) return fabs(x);
      else if constexpr (i64) return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
      else return x;
    } else if constexpr (OP == DL_UN_SIGN) {
      if constexpr (flt || i64) return (T)(x > 0 ? 1 : x < 0 ? -1 : 0);
      else return (T)(x != 0);
    } else if constexpr (OP == DL_UN_RELU) {
      if constexpr (flt || i64) return x < 0 ? (T)0 : x;
      else return x;
    } else if constexpr (OP == DL_UN_SQUARE) {
      if constexpr (flt) return x * x;
      else if constexpr (i64) return (int64_t)((uint64_t)x * (uint64_t)x);
      else return (T)(x * x);
    } else if constexpr (OP == DL_UN_FLOOR) {
      if constexpr (flt) return floor(x);
      else return x;
    } else if constexpr (OP == DL_UN_CEIL) {
      if constexpr (flt) return ceil(x);
      else return x;
    } else if constexpr (OP == DL_UN_ROUND) {
      if constexpr (flt) return rint(x); /* half to even, as nearbyint */
      else return x;
    } else if constexpr (OP == DL_UN_TRUNC) {
      if constexpr (flt) return trunc(x);
      else return x;
    } else if constexpr (OP == DL_UN_LOGICAL_NOT) {
      return x == 0;
    } else if constexpr (OP == DL_UN_ISNAN) {
      if constexpr (flt) return x != x;
      else return false;
    } else if constexpr (OP == DL_UN_ISINF) {
      if constexpr (flt) return isinf(x);
      else return false;
    } else if constexpr (OP == DL_UN_ISFINITE) {
      if constexpr (flt) return isfinite(x);
      else return true;
    } else if constexpr (flt) {
      if constexpr (OP == DL_UN_FRAC) return x - trunc(x);
      else if constexpr (OP == DL_UN_SQRT) return sqrt(x);
      else if constexpr (OP == DL_UN_RSQRT) return (T)1 / sqrt(x);
      else if constexpr (OP == DL_UN_EXP) return exp(x);
      else if constexpr (OP == DL_UN_EXP2) return exp2(x);
      else if constexpr (OP == DL_UN_LOG) return log(x);
      else if constexpr (OP == DL_UN_LOG2) return log2(x);
      else if constexpr (OP == DL_UN_LOG10) return log10(x);
      else if constexpr (OP == DL_UN_LOG1P) return log1p(x);
      else if constexpr (OP == DL_UN_EXPM1) return expm1(x);
      else if constexpr (OP == DL_UN_SIN) return sin(x);
      else if constexpr (OP == DL_UN_COS) return cos(x);
      else if constexpr (OP == DL_UN_TAN) return tan(x);
      else if constexpr (OP == DL_UN_ATAN) return atan(x);
      else if constexpr (OP == DL_UN_SINH) return sinh(x);
      else if constexpr (OP == DL_UN_COSH) return cosh(x);
      else if constexpr (OP == DL_UN_ASINH) return asinh(x);
      else if constexpr (OP == DL_UN_TANH) return tanh(x);
      else if constexpr (OP == DL_UN_SIGMOID) return sigmoid(x);
      else if constexpr (OP == DL_UN_ERF) return erf(x);
      else return (T)1 / x; /* DL_UN_RECIPROCAL */
    } else {
      return x;
    }
  }
};

/* which (op, dtype) pairs exist: the op table's dtype rule */
template <int OP, typename T> __host__ __device__ constexpr bool un_defined() {
  return dl_rule_computes_in(dl_unop_rule(OP), dl_cuda_dtype_of<T>());
}

/* rare pairs: one functor per dtype and output class, the op a runtime
 * value (compile time); the common float32 activations get their own */
template <typename T> struct un_rt {
  int op;
  __device__ T operator()(T x, char, char) const {
    switch (op) {
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad)                                            \
  case DL_UN_##ID:                                                                           \
    if constexpr (un_defined<DL_UN_##ID, T>() && !un_bool<DL_UN_##ID>::value)                \
      return un_fn<DL_UN_##ID, T>()(x, 0, 0);                                                \
    break;
#include "../ops/ops_each.h"
    default: break;
    }
    return x;
  }
};

template <typename T> struct un_pred {
  int op;
  __device__ bool operator()(T x, char, char) const {
    switch (op) {
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad)                                            \
  case DL_UN_##ID:                                                                           \
    if constexpr (un_bool<DL_UN_##ID>::value) return un_fn<DL_UN_##ID, T>()(x, 0, 0);        \
    break;
#include "../ops/ops_each.h"
    default: break;
    }
    return false;
  }
};

template <int OP, typename T> int run_hot(dl_tensor *out, const dl_tensor *a) {
  return ew_launch<T, T, char, char>(out, a, (T)0, nullptr, (char)0, nullptr, (char)0, un_fn<OP, T>());
}

template <typename T> int dispatch_un(dl_unop op, dl_tensor *out, const dl_tensor *a) {
  if constexpr (std::is_same<T, float>::value) {
    switch (op) {
    case DL_UN_NEG: return run_hot<DL_UN_NEG, T>(out, a);
    case DL_UN_RELU: return run_hot<DL_UN_RELU, T>(out, a);
    case DL_UN_SQUARE: return run_hot<DL_UN_SQUARE, T>(out, a);
    case DL_UN_SQRT: return run_hot<DL_UN_SQRT, T>(out, a);
    case DL_UN_EXP: return run_hot<DL_UN_EXP, T>(out, a);
    case DL_UN_LOG: return run_hot<DL_UN_LOG, T>(out, a);
    case DL_UN_TANH: return run_hot<DL_UN_TANH, T>(out, a);
    case DL_UN_SIGMOID: return run_hot<DL_UN_SIGMOID, T>(out, a);
    default: break;
    }
  }
  if (dl_rule_writes_bool(dl_unop_rule(op)))
    return ew_launch<bool, T, char, char, false>(out, a, (T)0, nullptr, (char)0, nullptr, (char)0,
                                                 un_pred<T>{(int)op});
  return ew_launch<T, T, char, char, false>(out, a, (T)0, nullptr, (char)0, nullptr, (char)0, un_rt<T>{(int)op});
}

} // namespace

int dl_cuda_ewise_unary(dl_unop op, dl_tensor *out, const dl_tensor *a) {
  DL_CUDA_DISPATCH(a->dtype, T, return dispatch_un<T>(op, out, a));
  return ew_no_kernel(dl_unop_name(op), a->dtype);
}
