/* cuda_ewise.cu — CUDA binary element-wise kernels (arithmetic,
 * comparisons, logical ops) and the ewise kernel table. Each (op, dtype)
 * pair the CPU table defines (cpu_ewise.c) has a functor here with the same
 * semantics: int64 wraps, uint8 works modulo 256, bool add/mul are or/and,
 * float floor_divide/remainder follow Python, maximum/minimum propagate
 * NaN, and an integer division by zero gives 0 and reports
 * DL_EWISE_ZERODIV (read back from the device: the one host sync here). */
#include "cuda_ewise.cuh"
#include "../ops/dl_math.h"

namespace {

/* Python's floor division and remainder of floats (dl_math.h, the CPU's
 * too); maximum/minimum propagate NaN */
template <typename T> __device__ __forceinline__ T ffloordiv(T a, T b) {
  if constexpr (std::is_same<T, float>::value) return dl_floordiv_f(a, b);
  else return dl_floordiv_d(a, b);
}
template <typename T> __device__ __forceinline__ T fremainder(T a, T b) {
  if constexpr (std::is_same<T, float>::value) return dl_remainder_f(a, b);
  else return dl_remainder_d(a, b);
}

template <int OP> struct writes_bool {
  static constexpr bool value = dl_rule_writes_bool(dl_binop_rule(OP));
};

/* one binary op on compute dtype T; al is alpha, zd the zero-divisor flag */
template <int OP, typename T> struct bin_fn {
  T al;
  int *zd;
  typedef typename std::conditional<writes_bool<OP>::value, bool, T>::type out_t;
  __device__ __forceinline__ out_t operator()(T x, T y, char) const {
    constexpr bool flt = std::is_floating_point<T>::value;
    constexpr bool i64 = std::is_same<T, int64_t>::value;
    constexpr bool bl = std::is_same<T, bool>::value;
    if constexpr (OP == DL_BIN_ADD) {
      if constexpr (flt) return x + al * y;
      else if constexpr (i64) return (int64_t)((uint64_t)x + (uint64_t)al * (uint64_t)y);
      else if constexpr (bl) return x | y;
      else return (uint8_t)(x + al * y);
    } else if constexpr (OP == DL_BIN_SUB) {
      if constexpr (flt) return x - al * y;
      else if constexpr (i64) return (int64_t)((uint64_t)x - (uint64_t)al * (uint64_t)y);
      else return (T)(x - al * y);
    } else if constexpr (OP == DL_BIN_MUL) {
      if constexpr (flt) return x * y;
      else if constexpr (i64) return (int64_t)((uint64_t)x * (uint64_t)y);
      else if constexpr (bl) return x & y;
      else return (uint8_t)(x * y);
    } else if constexpr (OP == DL_BIN_DIV) {
      return x / y;
    } else if constexpr (OP == DL_BIN_POW) {
      if constexpr (flt) return pow(x, y);
      else return (T)dl_ipow((int64_t)x, (int64_t)y);
    } else if constexpr (OP == DL_BIN_REMAINDER) {
      if constexpr (flt) return fremainder(x, y);
      else if constexpr (i64) return dl_iremainder(x, y, zd);
      else return (T)dl_uremainder((uint8_t)x, (uint8_t)y, zd);
    } else if constexpr (OP == DL_BIN_FLOOR_DIVIDE) {
      if constexpr (flt) return ffloordiv(x, y);
      else if constexpr (i64) return dl_ifloordiv(x, y, zd);
      else return (T)dl_ufloordiv((uint8_t)x, (uint8_t)y, zd);
    } else if constexpr (OP == DL_BIN_MAXIMUM) {
      if constexpr (flt) return DL_MAXNAN(x, y);
      else return x > y ? x : y;
    } else if constexpr (OP == DL_BIN_MINIMUM) {
      if constexpr (flt) return DL_MINNAN(x, y);
      else return x < y ? x : y;
    } else if constexpr (OP == DL_BIN_EQ) {
      return x == y;
    } else if constexpr (OP == DL_BIN_NE) {
      return x != y;
    } else if constexpr (OP == DL_BIN_LT) {
      return x < y;
    } else if constexpr (OP == DL_BIN_LE) {
      return x <= y;
    } else if constexpr (OP == DL_BIN_GT) {
      return x > y;
    } else if constexpr (OP == DL_BIN_GE) {
      return x >= y;
    } else if constexpr (OP == DL_BIN_LOGICAL_AND) {
      return (x != 0) && (y != 0);
    } else if constexpr (OP == DL_BIN_LOGICAL_OR) {
      return (x != 0) || (y != 0);
    } else {
      return (x != 0) != (y != 0);
    }
  }
};

/* which (op, dtype) pairs exist: the op table's dtype rule */
template <int OP, typename T> __host__ __device__ constexpr bool bin_defined() {
  return dl_rule_computes_in(dl_binop_rule(OP), dl_cuda_dtype_of<T>());
}

/* rare pairs: every op of a class in one functor, the op a runtime value
 * (one kernel per dtype instead of one per op: compile time) */
template <typename T> struct bin_rt {
  int op;
  T al;
  int *zd;
  __device__ T operator()(T x, T y, char) const {
    switch (op) {
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad)                                           \
  case DL_BIN_##ID:                                                                          \
    if constexpr (bin_defined<DL_BIN_##ID, T>() && !writes_bool<DL_BIN_##ID>::value)         \
      return bin_fn<DL_BIN_##ID, T>{al, zd}(x, y, 0);                                        \
    break;
#include "../ops/ops_each.h"
    default: break;
    }
    return (T)0;
  }
};

template <typename T> struct cmp_rt {
  int op;
  __device__ bool operator()(T x, T y, char) const {
    switch (op) {
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad)                                           \
  case DL_BIN_##ID:                                                                          \
    if constexpr (writes_bool<DL_BIN_##ID>::value) return bin_fn<DL_BIN_##ID, T>{(T)0, nullptr}(x, y, 0); \
    break;
#include "../ops/ops_each.h"
    default: break;
    }
    return false;
  }
};

/* the hot pairs: one vectorised kernel each */
template <int OP, typename T> int run_hot(dl_tensor *out, const dl_operand &a, const dl_operand &b, T al) {
  T sa = a.t ? (T)0 : dl_cuda_scalar_as<T>(a.s);
  T sb = b.t ? (T)0 : dl_cuda_scalar_as<T>(b.s);
  return ew_launch<T, T, T, char>(out, a.t, sa, b.t, sb, nullptr, (char)0, bin_fn<OP, T>{al, nullptr});
}

template <typename T>
int dispatch_bin(dl_binop op, dl_tensor *out, const dl_operand &a, const dl_operand &b, T al, int *zd) {
  T sa = a.t ? (T)0 : dl_cuda_scalar_as<T>(a.s);
  T sb = b.t ? (T)0 : dl_cuda_scalar_as<T>(b.s);
  if constexpr (std::is_floating_point<T>::value) {
    switch (op) {
    case DL_BIN_ADD: return run_hot<DL_BIN_ADD, T>(out, a, b, al);
    case DL_BIN_SUB: return run_hot<DL_BIN_SUB, T>(out, a, b, al);
    case DL_BIN_MUL: return run_hot<DL_BIN_MUL, T>(out, a, b, al);
    case DL_BIN_DIV: return run_hot<DL_BIN_DIV, T>(out, a, b, al);
    default: break;
    }
  }
  if (dl_rule_writes_bool(dl_binop_rule(op)))
    return ew_launch<bool, T, T, char, false>(out, a.t, sa, b.t, sb, nullptr, (char)0, cmp_rt<T>{(int)op});
  return ew_launch<T, T, T, char, false>(out, a.t, sa, b.t, sb, nullptr, (char)0, bin_rt<T>{(int)op, al, zd});
}

int cuda_binary(dl_binop op, dl_tensor *out, dl_operand a, dl_operand b, dl_scalar alpha) {
  if (out->numel == 0) return 0;
  dl_dtype ct = a.t ? a.t->dtype : b.t->dtype;
  /* only integer division can meet a zero divisor */
  bool intdiv = (op == DL_BIN_REMAINDER || op == DL_BIN_FLOOR_DIVIDE) && !dl_dtype_is_float(ct);
  int *zd = nullptr;
  if (intdiv) {
    zd = (int *)dl_cuda_malloc(sizeof(int));
    if (!zd) return DL_KERNEL_FAILED;
    if (DL_CUDA_CHECK(cudaMemsetAsync(zd, 0, sizeof(int), dl_cuda_stream()))) {
      dl_cuda_free(zd, sizeof(int));
      return DL_KERNEL_FAILED;
    }
  }
  int rc = ew_no_kernel(dl_binop_name(op), ct);
  DL_CUDA_DISPATCH(ct, T, rc = dispatch_bin<T>(op, out, a, b, dl_cuda_scalar_as<T>(alpha), zd));
  int flag = 0;
  if (intdiv) {
    cudaStream_t s = dl_cuda_stream();
    if (rc == DL_KERNEL_OK && (DL_CUDA_CHECK(cudaMemcpyAsync(&flag, zd, sizeof(int), cudaMemcpyDeviceToHost, s)) ||
                               DL_CUDA_CHECK(cudaStreamSynchronize(s))))
      rc = DL_KERNEL_FAILED;
    dl_cuda_free(zd, sizeof(int));
  }
  if (rc != DL_KERNEL_OK) return rc;
  return flag ? DL_EWISE_ZERODIV : DL_KERNEL_OK;
}

} // namespace

/* defined in cuda_ewise_unary.cu and cuda_ewise_misc.cu (twin of
 * cpu_ewise.h's list: each backend declares its own table entries) */
int dl_cuda_ewise_unary(dl_unop op, dl_tensor *out, const dl_tensor *a);
int dl_cuda_ewise_clamp(dl_tensor *out, const dl_tensor *a, const dl_operand *lo, const dl_operand *hi);
int dl_cuda_ewise_lerp(dl_tensor *out, const dl_tensor *a, const dl_tensor *end, dl_operand w);
int dl_cuda_ewise_addc(bool div, dl_tensor *out, const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2,
                       dl_scalar value);
int dl_cuda_ewise_where(dl_tensor *out, const dl_tensor *cond, dl_operand a, dl_operand b);
int dl_cuda_ewise_isclose(dl_tensor *out, const dl_tensor *a, const dl_tensor *b, double rtol, double atol,
                          bool equal_nan);
int dl_cuda_ewise_all(const dl_tensor *t, bool *out);

extern "C" const struct dl_ewise_kernels dl_cuda_ewise = {
  cuda_binary,
  dl_cuda_ewise_unary,
  dl_cuda_ewise_clamp,
  dl_cuda_ewise_lerp,
  dl_cuda_ewise_addc,
  dl_cuda_ewise_where,
  dl_cuda_ewise_isclose,
  dl_cuda_ewise_all,
};
