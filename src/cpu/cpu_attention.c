/* cpu_attention.c — CPU kernels of the attention weights
 * (src/ops/dl_layer.h): softmax of the scaled scores row by row, a causal
 * row stopping at its query's position (the rest written 0), so neither a
 * scaled copy of the scores nor a [L, S] mask is ever made; its backward
 * scale y (g - sum(g y)). Sums in the tensor's dtype (a row of
 * probabilities: its sum's precision is the dtype's anyway). */
#include "../ops/dl_layer.h"
#include "cpu_attention.h"
#include "cpu_iter.h"
#include "cpu_reduce_util.h"
#include "cpu_vecmath.h"

#define ATTN_FUNCS(S_, T, EXP)                                                                     \
  /* sum and maximum of a row: DL_SIMD_REDUCE lets the compiler split them  \
   * into vector lanes (one running sum or maximum is otherwise a chain of  \
   * dependent operations, and a maximum a branch per element) */           \
  static T rowtotal_##S_(const T *restrict a, int64_t n) {                                         \
    T s = 0;                                                                                       \
    DL_SIMD_REDUCE(+, s) for (int64_t i = 0; i < n; i++) s += a[i];                                \
    return s;                                                                                      \
  }                                                                                                \
  static T rowmax_##S_(const T *restrict a, int64_t n) { /* n >= 1 */                              \
    T m = a[0];                                                                                    \
    DL_SIMD_REDUCE(max, m) for (int64_t i = 0; i < n; i++) m = m > a[i] ? m : a[i];                \
    return m;                                                                                      \
  }                                                                                                \
  static void attn_rows_##S_(T *y, const T *x, int64_t R, int64_t L, int64_t S, T scale, bool causal) { \
    _Pragma("omp parallel for if (R * S > DL_PARALLEL_GRAIN)") for (int64_t r = 0; r < R; r++) {   \
      const T *xr = x + r * S;                                                                     \
      T *yr = y + r * S;                                                                           \
      const int64_t n = causal && r % L + 1 < S ? r % L + 1 : S; /* the columns taking part */      \
      for (int64_t k = 0; k < n; k++) yr[k] = scale * xr[k];                                       \
      const T m = rowmax_##S_(yr, n);                                                              \
      for (int64_t k = 0; k < n; k++) yr[k] = EXP(yr[k] - m);                                      \
      const T inv = (T)1 / rowtotal_##S_(yr, n);                                                   \
      for (int64_t k = 0; k < n; k++) yr[k] *= inv;                                                \
      for (int64_t k = n; k < S; k++) yr[k] = 0;                                                   \
    }                                                                                              \
  }                                                                                                \
  static T rowdot_##S_(const T *restrict a, const T *restrict b, int64_t n) {                     \
    T s = 0;                                                                                       \
    DL_SIMD_REDUCE(+, s) for (int64_t i = 0; i < n; i++) s += a[i] * b[i];                         \
    return s;                                                                                      \
  }                                                                                                \
  static void attn_bwd_rows_##S_(T *gx, const T *g, const T *y, int64_t R, int64_t S, T scale) {   \
    _Pragma("omp parallel for if (R * S > DL_PARALLEL_GRAIN)") for (int64_t r = 0; r < R; r++) {   \
      const T *restrict gr = g + r * S, *restrict yr = y + r * S;                                  \
      const T dot = rowdot_##S_(gr, yr, S);                                                        \
      T *o = gx + r * S;                                                                           \
      for (int64_t k = 0; k < S; k++) o[k] = scale * (yr[k] * (gr[k] - dot));                     \
    }                                                                                              \
  }

ATTN_FUNCS(f, float, expf)
ATTN_FUNCS(d, double, exp)

int dl_cpu_attn_softmax(dl_tensor *y, const dl_tensor *x, int64_t L, int64_t S, double scale, bool causal) {
  const int64_t R = x->numel / S;
  if (x->dtype == DL_FLOAT32) attn_rows_f(dl_tensor_data(y), dl_tensor_data(x), R, L, S, (float)scale, causal);
  else attn_rows_d(dl_tensor_data(y), dl_tensor_data(x), R, L, S, scale, causal);
  return DL_KERNEL_OK;
}

int dl_cpu_attn_softmax_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *y, int64_t S, double scale) {
  const int64_t R = y->numel / S;
  if (y->dtype == DL_FLOAT32) attn_bwd_rows_f(dl_tensor_data(gx), dl_tensor_data(g), dl_tensor_data(y), R, S, (float)scale);
  else attn_bwd_rows_d(dl_tensor_data(gx), dl_tensor_data(g), dl_tensor_data(y), R, S, scale);
  return DL_KERNEL_OK;
}
