/* cpu_layer_norm.c — layer normalisation over rows of N (src/ops/dl_layer.h):
 * forward one pass for the statistics and one for the output, backward one
 * pass per row for the input gradient and one over columns for the weight
 * and bias gradients. Composed from element-wise ops the same layer takes
 * 9 passes forward and ~15 backward. Row sums in double (float32 rows
 * vectorise with the conversion); the parameters' column sums in the
 * dtype, row by row in a fixed order. */
#include "../ops/dl_layer.h"
#include "cpu_iter.h"
#include "cpu_norm.h"
#include "cpu_reduce_util.h"

#include <math.h>

/* out = the sum over k in [0, N) of EXPR (an expression in k), in double;
 * DL_SIMD_REDUCE lets the compiler split it into vector lanes (one running
 * sum is otherwise a chain of dependent adds) */
#define ROW_SUM(out, N, k, EXPR)                                     \
  do {                                                               \
    double s_ = 0;                                                   \
    DL_SIMD_REDUCE(+, s_) for (int64_t k = 0; k < (N); k++) s_ += (double)(EXPR); \
    (out) = s_;                                                      \
  } while (0)

/* statistics and output of row x[0, N) */
#define LN_ROW(S_, T)                                                                                \
  static void ln_row_##S_(T *restrict y, T *restrict mean_out, T *restrict rstd_out, const T *restrict x, \
                          int64_t N, const T *restrict w, const T *restrict b, double eps) {          \
    double s, v;                                                                                     \
    ROW_SUM(s, N, k, x[k]);                                                                             \
    const double mu = s / (double)N;                                                                 \
    ROW_SUM(v, N, k, ((double)x[k] - mu) * ((double)x[k] - mu));                                        \
    const double r = 1 / sqrt(v / (double)N + eps);                                                  \
    *mean_out = (T)mu, *rstd_out = (T)r;                                                             \
    const T m = (T)mu, rr = (T)r;                                                                    \
    if (w && b)                                                                                      \
      for (int64_t j = 0; j < N; j++) y[j] = (x[j] - m) * rr * w[j] + b[j];                          \
    else if (w)                                                                                      \
      for (int64_t j = 0; j < N; j++) y[j] = (x[j] - m) * rr * w[j];                                 \
    else if (b)                                                                                      \
      for (int64_t j = 0; j < N; j++) y[j] = (x[j] - m) * rr + b[j];                                 \
    else                                                                                             \
      for (int64_t j = 0; j < N; j++) y[j] = (x[j] - m) * rr;                                        \
  }                                                                                                  \
  /* gx of one row: rstd (gy - mean(gy) - xhat mean(gy xhat)), gy = g w */                           \
  static void ln_bwd_row_##S_(T *restrict gx, const T *restrict g, const T *restrict x, T m, T r, int64_t N, \
                              const T *restrict w) {                                                 \
    double a, c;                                                                                     \
    if (w) {                                                                                         \
      ROW_SUM(a, N, k, g[k] * w[k]);                                                                    \
      ROW_SUM(c, N, k, g[k] * w[k] * ((x[k] - m) * r));                                                 \
    } else {                                                                                         \
      ROW_SUM(a, N, k, g[k]);                                                                           \
      ROW_SUM(c, N, k, g[k] * ((x[k] - m) * r));                                                        \
    }                                                                                                \
    const T ma = (T)(a / (double)N), mc = (T)(c / (double)N);                                        \
    for (int64_t j = 0; j < N; j++) {                                                                \
      const T gy = w ? g[j] * w[j] : g[j];                                                           \
      gx[j] = r * (gy - ma - (x[j] - m) * r * mc);                                                   \
    }                                                                                                \
  }                                                                                                  \
  /* gw[j] = sum_r g xhat, gb[j] = sum_r g for columns [j0, j1) */                                  \
  static void ln_cols_##S_(T *restrict gw, T *restrict gb, const T *restrict g, const T *restrict x,  \
                           const T *restrict mean, const T *restrict rstd, int64_t R, int64_t N, int64_t j0, \
                           int64_t j1) {                                                             \
    for (int64_t j = j0; j < j1; j++) {                                                              \
      if (gw) gw[j] = 0;                                                                             \
      if (gb) gb[j] = 0;                                                                             \
    }                                                                                                \
    for (int64_t i = 0; i < R; i++) {                                                                \
      const T *gi = g + i * N, *xi = x + i * N;                                                      \
      const T m = mean[i], r = rstd[i];                                                              \
      if (gw)                                                                                        \
        for (int64_t j = j0; j < j1; j++) gw[j] += gi[j] * ((xi[j] - m) * r);                        \
      if (gb)                                                                                        \
        for (int64_t j = j0; j < j1; j++) gb[j] += gi[j];                                            \
    }                                                                                                \
  }

LN_ROW(f, float)
LN_ROW(d, double)

#define DATA(t, T) ((T *)dl_tensor_data(t))
#define OPT(t, T) ((t) ? DATA(t, T) : NULL)

int dl_cpu_layer_norm(dl_tensor *y, dl_tensor *mean, dl_tensor *rstd, const dl_tensor *x, int64_t R, int64_t N,
                      const dl_tensor *w, const dl_tensor *b, double eps) {
  const bool f32 = x->dtype == DL_FLOAT32;
#pragma omp parallel for if (R * N > DL_PARALLEL_GRAIN)
  for (int64_t i = 0; i < R; i++) {
    if (f32) ln_row_f(DATA(y, float) + i * N, DATA(mean, float) + i, DATA(rstd, float) + i, DATA(x, float) + i * N, N,
                      OPT(w, float), OPT(b, float), eps);
    else ln_row_d(DATA(y, double) + i * N, DATA(mean, double) + i, DATA(rstd, double) + i, DATA(x, double) + i * N,
                  N, OPT(w, double), OPT(b, double), eps);
  }
  return DL_KERNEL_OK;
}

int dl_cpu_layer_norm_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *x,
                               const dl_tensor *mean, const dl_tensor *rstd, const dl_tensor *w, int64_t R, int64_t N) {
  const bool f32 = x->dtype == DL_FLOAT32;
  if (gx) {
#pragma omp parallel for if (R * N > DL_PARALLEL_GRAIN)
    for (int64_t i = 0; i < R; i++) {
      if (f32) ln_bwd_row_f(DATA(gx, float) + i * N, DATA(g, float) + i * N, DATA(x, float) + i * N,
                            DATA(mean, float)[i], DATA(rstd, float)[i], N, OPT(w, float));
      else ln_bwd_row_d(DATA(gx, double) + i * N, DATA(g, double) + i * N, DATA(x, double) + i * N,
                        DATA(mean, double)[i], DATA(rstd, double)[i], N, OPT(w, double));
    }
  }
  if (gw || gb) {
    /* columns split across threads: each sums its columns over every row,
     * so the result does not depend on the thread count */
    const int64_t chunk = 64, nchunks = (N + chunk - 1) / chunk;
#pragma omp parallel for if (R * N > DL_PARALLEL_GRAIN && nchunks > 1)
    for (int64_t c = 0; c < nchunks; c++) {
      int64_t j0 = c * chunk, j1 = j0 + chunk < N ? j0 + chunk : N;
      if (f32) ln_cols_f(OPT(gw, float), OPT(gb, float), DATA(g, float), DATA(x, float), DATA(mean, float),
                         DATA(rstd, float), R, N, j0, j1);
      else ln_cols_d(OPT(gw, double), OPT(gb, double), DATA(g, double), DATA(x, double), DATA(mean, double),
                     DATA(rstd, double), R, N, j0, j1);
    }
  }
  return DL_KERNEL_OK;
}
