/* cpu_layer.c — CPU kernels of the fused layer ops (src/ops/dl_layer.h):
 * RBF features (one GEMM for the cross terms, then exp), batch norm's
 * per-channel statistics, normalisation and closed-form backward. Operands
 * are contiguous and of one float dtype; sums accumulate in double. */
#include "../ops/dl_layer.h"
#include "cpu_iter.h"
#include "cpu_attention.h"
#include "cpu_norm.h"
#include "cpu_rnn.h"

#include <cblas.h>
#include "cpu_vecmath.h"

/* ---- RBF ---- */

/* out[i, b + j] = x_i . c_j (GEMM), then
 * out = exp(-max(|x_i|^2 + |c_j|^2 - 2 x_i . c_j, 0) / (2 s_j^2)) */
#define RBF_LOOP(T, GEMM)                                                                                        \
  do {                                                                                                            \
    const T *xp = dl_tensor_data(x), *cp = dl_tensor_data(centers), *sp = dl_tensor_data(sigmas);              \
    T *op = dl_tensor_data(out), *c2 = dl_tensor_data(scratch), *inv = c2 + n;                                   \
    if (N > 0 && n > 0) {                                                                                         \
      if (D > 0)                                                                                                  \
        GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)N, (blasint)n, (blasint)D, (T)1, xp, (blasint)D, \
             cp, (blasint)D, (T)0, op + b, (blasint)ld);                                                          \
      else                                                                                                        \
        for (int64_t i = 0; i < N; i++)                                                                           \
          for (int64_t j = 0; j < n; j++) op[i * ld + b + j] = 0;                                                 \
    }                                                                                                             \
    for (int64_t j = 0; j < n; j++) {                                                                             \
      double s = 0;                                                                                               \
      for (int64_t d = 0; d < D; d++) s += (double)cp[j * D + d] * cp[j * D + d];                                 \
      c2[j] = (T)s;                                                                                               \
      inv[j] = (T)(1.0 / (2.0 * (double)sp[j] * sp[j]));                                                         \
    }                                                                                                             \
    _Pragma("omp parallel for if (N * (n + D) > DL_PARALLEL_GRAIN)") for (int64_t i = 0; i < N; i++) {           \
      double s = 0;                                                                                               \
      for (int64_t d = 0; d < D; d++) s += (double)xp[i * D + d] * xp[i * D + d];                                 \
      T x2 = (T)s, *row = op + i * ld;                                                                            \
      if (b) row[0] = 1;                                                                                          \
      row += b;                                                                                                   \
      for (int64_t j = 0; j < n; j++) {                                                                           \
        T d2 = x2 + c2[j] - 2 * row[j];                                                                           \
        row[j] = EXP_##T(-(d2 > 0 ? d2 : 0) * inv[j]);                                                            \
      }                                                                                                           \
    }                                                                                                             \
  } while (0)

#define EXP_float expf
#define EXP_double exp

static int cpu_rbf_forward(dl_tensor *out, const dl_tensor *x, const dl_tensor *centers, const dl_tensor *sigmas,
                            dl_tensor *scratch, bool bias_unit) {
  int64_t N = x->shape[0], D = x->shape[1], n = centers->shape[0], b = bias_unit ? 1 : 0, ld = n + b;
  if (x->dtype == DL_FLOAT32) RBF_LOOP(float, cblas_sgemm);
  else RBF_LOOP(double, cblas_dgemm);
  return DL_KERNEL_OK;
}

/* A = g phi / s^2; then two GEMMs and the row/column-sum corrections */
#define RBF_BACKWARD(T, GEMM, LOG)                                                                               \
  do {                                                                                                            \
    const T *gp = dl_tensor_data(g), *pp = dl_tensor_data(phi), *xp = dl_tensor_data(x);                        \
    const T *cp = dl_tensor_data(centers), *sp = dl_tensor_data(sigmas);                                         \
    T *ap = dl_tensor_data(scratch);                                                                              \
    _Pragma("omp parallel for if (N * n > DL_PARALLEL_GRAIN)") for (int64_t i = 0; i < N; i++) {                 \
      const T *gr = gp + i * ld + b, *pr = pp + i * ld + b;                                                       \
      for (int64_t j = 0; j < n; j++) ap[i * n + j] = gr[j] * pr[j] / (sp[j] * sp[j]);                           \
    }                                                                                                             \
    if (gx) {                                                                                                     \
      T *o = dl_tensor_data(gx);                                                                                  \
      if (N > 0 && D > 0)                                                                                         \
        GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)N, (blasint)D, (blasint)n, (T)1, ap, (blasint)n, \
             cp, (blasint)D, (T)0, o, (blasint)D);                                                                \
      for (int64_t i = 0; i < N; i++) {                                                                           \
        double r = 0;                                                                                             \
        for (int64_t j = 0; j < n; j++) r += ap[i * n + j];                                                       \
        for (int64_t d = 0; d < D; d++) o[i * D + d] -= (T)r * xp[i * D + d];                                     \
      }                                                                                                           \
    }                                                                                                             \
    if (gc) {                                                                                                     \
      T *o = dl_tensor_data(gc);                                                                                  \
      if (n > 0 && D > 0) {                                                                                       \
        if (N > 0)                                                                                                \
          GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)n, (blasint)D, (blasint)N, (T)1, ap, (blasint)n, \
               xp, (blasint)D, (T)0, o, (blasint)D);                                                              \
        else                                                                                                      \
          for (int64_t e = 0; e < n * D; e++) o[e] = 0;                                                           \
      }                                                                                                           \
      for (int64_t j = 0; j < n; j++) {                                                                           \
        double r = 0;                                                                                             \
        for (int64_t i = 0; i < N; i++) r += ap[i * n + j];                                                       \
        for (int64_t d = 0; d < D; d++) o[j * D + d] -= (T)r * cp[j * D + d];                                     \
      }                                                                                                           \
    }                                                                                                             \
    if (gs) {                                                                                                     \
      T *o = dl_tensor_data(gs);                                                                                  \
      for (int64_t j = 0; j < n; j++) {                                                                           \
        double r = 0;                                                                                             \
        for (int64_t i = 0; i < N; i++) {                                                                         \
          double p = pp[i * ld + b + j];                                                                          \
          if (p > 0) r += gp[i * ld + b + j] * p * LOG(p);                                                        \
        }                                                                                                         \
        o[j] = (T)(-2 * r / sp[j]);                                                                               \
      }                                                                                                           \
    }                                                                                                             \
  } while (0)

static int cpu_rbf_backward(dl_tensor *gx, dl_tensor *gc, dl_tensor *gs, const dl_tensor *g, const dl_tensor *phi,
                             const dl_tensor *x, const dl_tensor *centers, const dl_tensor *sigmas,
                             dl_tensor *scratch, bool bias_unit) {
  int64_t N = x->shape[0], D = x->shape[1], n = centers->shape[0], b = bias_unit ? 1 : 0, ld = n + b;
  if (x->dtype == DL_FLOAT32) RBF_BACKWARD(float, cblas_sgemm, log);
  else RBF_BACKWARD(double, cblas_dgemm, log);
  return DL_KERNEL_OK;
}

/* ---- batch norm ---- */

/* element (i, c, l) of a contiguous [N, C, L] tensor */
#define AT(p, i, c, l) (p)[((i) * C + (c)) * L + (l)]

/* sums over a run of n in double with 8 independent accumulators, so the
 * adds pipeline and vectorise (one chain of double adds costs a latency per
 * element: BatchNorm2d's statistics were 0.6x PyTorch's) */
#define BN_LANES(S, T)                                                                                        \
  static inline double lane_sum_##S(const T *a, int64_t n, double mu) { /* sum (a - mu) */                    \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                                 \
    int64_t i = 0;                                                                                            \
    for (; i + 8 <= n; i += 8)                                                                                \
      for (int j = 0; j < 8; j++) acc[j] += (double)a[i + j] - mu;                                            \
    for (; i < n; i++) acc[0] += (double)a[i] - mu;                                                           \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));                 \
  }                                                                                                           \
  static inline double lane_sqdev_##S(const T *a, int64_t n, double mu) { /* sum (a - mu)^2 */               \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                                 \
    int64_t i = 0;                                                                                            \
    for (; i + 8 <= n; i += 8)                                                                                \
      for (int j = 0; j < 8; j++) {                                                                           \
        double d = (double)a[i + j] - mu;                                                                     \
        acc[j] += d * d;                                                                                      \
      }                                                                                                       \
    for (; i < n; i++) acc[0] += ((double)a[i] - mu) * ((double)a[i] - mu);                                   \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));                 \
  }                                                                                                           \
  static inline double lane_dot_##S(const T *g, const T *a, int64_t n, double mu) { /* sum g (a - mu) */      \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                                 \
    int64_t i = 0;                                                                                            \
    for (; i + 8 <= n; i += 8)                                                                                \
      for (int j = 0; j < 8; j++) acc[j] += (double)g[i + j] * ((double)a[i + j] - mu);                       \
    for (; i < n; i++) acc[0] += (double)g[i] * ((double)a[i] - mu);                                          \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));                 \
  }
BN_LANES(float, float)
BN_LANES(double, double)

#define BN_STATS(T)                                                                                          \
  do {                                                                                                        \
    const T *xp = dl_tensor_data(x);                                                                          \
    T *mp = dl_tensor_data(mean), *vp = dl_tensor_data(var), *rp = dl_tensor_data(invstd);                   \
    double M = (double)(N * L);                                                                               \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t c = 0; c < C; c++) {         \
      double s = 0, q = 0;                                                                                    \
      for (int64_t i = 0; i < N; i++) s += lane_sum_##T(&AT(xp, i, c, 0), L, 0);                              \
      double mu = M > 0 ? s / M : 0;                                                                          \
      for (int64_t i = 0; i < N; i++) q += lane_sqdev_##T(&AT(xp, i, c, 0), L, mu);                           \
      double v = M > 0 ? q / M : 0;                                                                           \
      mp[c] = (T)mu;                                                                                          \
      vp[c] = (T)v;                                                                                           \
      rp[c] = (T)(1.0 / sqrt(v + eps));                                                                       \
    }                                                                                                         \
  } while (0)

/* L == 1 (BatchNorm1d on [N, C]): the channel-major loops above would
 * stride by a whole row per element, so these walk the rows instead, a
 * block of BN_CB channels at a time with their accumulators in L1. Each
 * channel still sums in double over i in order: the same numbers. */
#define BN_CB 256
#define BN_BLOCKS(C) (((C) + BN_CB - 1) / BN_CB)
#define BN_BLOCK_RANGE(b, C, c0, w) \
  int64_t c0 = (b) * BN_CB, w = (C) - c0 < BN_CB ? (C) - c0 : BN_CB

#define BN_STATS_ROWS(T)                                                                                     \
  do {                                                                                                        \
    const T *xp = dl_tensor_data(x);                                                                          \
    T *mp = dl_tensor_data(mean), *vp = dl_tensor_data(var), *rp = dl_tensor_data(invstd);                   \
    double M = (double)N;                                                                                     \
    _Pragma("omp parallel for if (N * C > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < BN_BLOCKS(C); b++) {  \
      BN_BLOCK_RANGE(b, C, c0, w);                                                                            \
      double s[BN_CB], q[BN_CB];                                                                              \
      for (int64_t c = 0; c < w; c++) s[c] = q[c] = 0;                                                       \
      for (int64_t i = 0; i < N; i++) {                                                                       \
        const T *r = xp + i * C + c0;                                                                         \
        for (int64_t c = 0; c < w; c++) s[c] += r[c];                                                         \
      }                                                                                                       \
      for (int64_t c = 0; c < w; c++) s[c] = M > 0 ? s[c] / M : 0;                                            \
      for (int64_t i = 0; i < N; i++) {                                                                       \
        const T *r = xp + i * C + c0;                                                                         \
        for (int64_t c = 0; c < w; c++) {                                                                     \
          double d = r[c] - s[c];                                                                             \
          q[c] += d * d;                                                                                      \
        }                                                                                                     \
      }                                                                                                       \
      for (int64_t c = 0; c < w; c++) {                                                                       \
        double v = M > 0 ? q[c] / M : 0;                                                                      \
        mp[c0 + c] = (T)s[c];                                                                                 \
        vp[c0 + c] = (T)v;                                                                                    \
        rp[c0 + c] = (T)(1.0 / sqrt(v + eps));                                                                \
      }                                                                                                       \
    }                                                                                                         \
  } while (0)

static int cpu_bn_stats(const dl_tensor *x, int64_t N, int64_t C, int64_t L, dl_tensor *mean, dl_tensor *var,
                         dl_tensor *invstd, double eps) {
  if (L == 1 && x->dtype == DL_FLOAT32) BN_STATS_ROWS(float);
  else if (L == 1) BN_STATS_ROWS(double);
  else if (x->dtype == DL_FLOAT32) BN_STATS(float);
  else BN_STATS(double);
  return DL_KERNEL_OK;
}

/* out = x * a_c + s_c with a_c = invstd_c w_c, s_c = b_c - mean_c a_c */
#define BN_APPLY(T)                                                                                           \
  do {                                                                                                         \
    const T *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean), *rp = dl_tensor_data(invstd);               \
    const T *wp = weight ? dl_tensor_data(weight) : NULL, *bp = bias ? dl_tensor_data(bias) : NULL;           \
    T *op = dl_tensor_data(out);                                                                               \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t i = 0; i < N; i++) {          \
      for (int64_t c = 0; c < C; c++) {                                                                        \
        T a = rp[c] * (wp ? wp[c] : (T)1), s = (bp ? bp[c] : (T)0) - mp[c] * a;                               \
        const T *xr = &AT(xp, i, c, 0);                                                                        \
        T *orow = &AT(op, i, c, 0);                                                                            \
        for (int64_t l = 0; l < L; l++) orow[l] = xr[l] * a + s;                                               \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

#define BN_APPLY_ROWS(T)                                                                                      \
  do {                                                                                                         \
    const T *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean), *rp = dl_tensor_data(invstd);               \
    const T *wp = weight ? dl_tensor_data(weight) : NULL, *bp = bias ? dl_tensor_data(bias) : NULL;           \
    T *op = dl_tensor_data(out);                                                                               \
    _Pragma("omp parallel for if (N * C > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < BN_BLOCKS(C); b++) {   \
      BN_BLOCK_RANGE(b, C, c0, w);                                                                             \
      T a[BN_CB], s[BN_CB];                                                                                    \
      for (int64_t c = 0; c < w; c++) {                                                                        \
        a[c] = rp[c0 + c] * (wp ? wp[c0 + c] : (T)1);                                                          \
        s[c] = (bp ? bp[c0 + c] : (T)0) - mp[c0 + c] * a[c];                                                   \
      }                                                                                                        \
      for (int64_t i = 0; i < N; i++) {                                                                        \
        const T *xr = xp + i * C + c0;                                                                         \
        T *orow = op + i * C + c0;                                                                             \
        for (int64_t c = 0; c < w; c++) orow[c] = xr[c] * a[c] + s[c];                                         \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

static int cpu_bn_apply(dl_tensor *out, const dl_tensor *x, int64_t N, int64_t C, int64_t L, const dl_tensor *mean,
                         const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias) {
  if (L == 1 && x->dtype == DL_FLOAT32) BN_APPLY_ROWS(float);
  else if (L == 1) BN_APPLY_ROWS(double);
  else if (x->dtype == DL_FLOAT32) BN_APPLY(float);
  else BN_APPLY(double);
  return DL_KERNEL_OK;
}

/* per channel: sums of gy and gy * xhat, then gx in a second pass */
#define BN_BACKWARD(T)                                                                                        \
  do {                                                                                                         \
    const T *gyp = dl_tensor_data(gy), *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean);                  \
    const T *rp = dl_tensor_data(invstd), *wp = weight ? dl_tensor_data(weight) : NULL;                       \
    T *gxp = gx ? dl_tensor_data(gx) : NULL, *gwp = gw ? dl_tensor_data(gw) : NULL;                           \
    T *gbp = gb ? dl_tensor_data(gb) : NULL;                                                                   \
    double M = (double)(N * L);                                                                                \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t c = 0; c < C; c++) {          \
      double mu = mp[c], r = rp[c], sg = 0, sgx = 0;                                                           \
      for (int64_t i = 0; i < N; i++) {                                                                        \
        sg += lane_sum_##T(&AT(gyp, i, c, 0), L, 0);                                                           \
        sgx += lane_dot_##T(&AT(gyp, i, c, 0), &AT(xp, i, c, 0), L, mu);                                       \
      }                                                                                                        \
      sgx *= r;                                                                                                \
      if (gwp) gwp[c] = (T)sgx;                                                                                \
      if (gbp) gbp[c] = (T)sg;                                                                                 \
      if (gxp) {                                                                                               \
        double k = r * (wp ? (double)wp[c] : 1.0), mg = sg / M, mgx = sgx / M;                                 \
        for (int64_t i = 0; i < N; i++)                                                                        \
          for (int64_t l = 0; l < L; l++) {                                                                    \
            double xh = (AT(xp, i, c, l) - mu) * r;                                                            \
            AT(gxp, i, c, l) = (T)(k * (AT(gyp, i, c, l) - mg - xh * mgx));                                    \
          }                                                                                                    \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

#define BN_BACKWARD_ROWS(T)                                                                                   \
  do {                                                                                                         \
    const T *gyp = dl_tensor_data(gy), *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean);                  \
    const T *rp = dl_tensor_data(invstd), *wp = weight ? dl_tensor_data(weight) : NULL;                       \
    T *gxp = gx ? dl_tensor_data(gx) : NULL, *gwp = gw ? dl_tensor_data(gw) : NULL;                           \
    T *gbp = gb ? dl_tensor_data(gb) : NULL;                                                                   \
    double M = (double)N;                                                                                      \
    _Pragma("omp parallel for if (N * C > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < BN_BLOCKS(C); b++) {   \
      BN_BLOCK_RANGE(b, C, c0, w);                                                                             \
      double sg[BN_CB], sgx[BN_CB];                                                                            \
      for (int64_t c = 0; c < w; c++) sg[c] = sgx[c] = 0;                                                     \
      for (int64_t i = 0; i < N; i++) {                                                                        \
        const T *gr = gyp + i * C + c0, *xr = xp + i * C + c0;                                                 \
        for (int64_t c = 0; c < w; c++) {                                                                      \
          double g = gr[c];                                                                                    \
          sg[c] += g;                                                                                          \
          sgx[c] += g * (xr[c] - (double)mp[c0 + c]) * (double)rp[c0 + c];                                     \
        }                                                                                                      \
      }                                                                                                        \
      for (int64_t c = 0; c < w; c++) {                                                                        \
        if (gwp) gwp[c0 + c] = (T)sgx[c];                                                                      \
        if (gbp) gbp[c0 + c] = (T)sg[c];                                                                       \
      }                                                                                                        \
      if (gxp) {                                                                                               \
        double k[BN_CB];                                                                                       \
        for (int64_t c = 0; c < w; c++) {                                                                      \
          k[c] = (double)rp[c0 + c] * (wp ? (double)wp[c0 + c] : 1.0);                                         \
          sg[c] /= M;                                                                                          \
          sgx[c] /= M;                                                                                         \
        }                                                                                                      \
        for (int64_t i = 0; i < N; i++) {                                                                      \
          const T *gr = gyp + i * C + c0, *xr = xp + i * C + c0;                                               \
          T *gxr = gxp + i * C + c0;                                                                           \
          for (int64_t c = 0; c < w; c++) {                                                                    \
            double xh = (xr[c] - (double)mp[c0 + c]) * (double)rp[c0 + c];                                     \
            gxr[c] = (T)(k[c] * (gr[c] - sg[c] - xh * sgx[c]));                                                \
          }                                                                                                    \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

static int cpu_bn_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                            int64_t N, int64_t C, int64_t L, const dl_tensor *mean, const dl_tensor *invstd,
                            const dl_tensor *weight) {
  if (L == 1 && x->dtype == DL_FLOAT32) BN_BACKWARD_ROWS(float);
  else if (L == 1) BN_BACKWARD_ROWS(double);
  else if (x->dtype == DL_FLOAT32) BN_BACKWARD(float);
  else BN_BACKWARD(double);
  return DL_KERNEL_OK;
}

const struct dl_layer_kernels dl_cpu_layer = {
  .rbf_forward = cpu_rbf_forward,
  .rbf_backward = cpu_rbf_backward,
  .bn_stats = cpu_bn_stats,
  .bn_apply = cpu_bn_apply,
  .bn_backward = cpu_bn_backward,
  .lstm_cell = dl_cpu_lstm_cell,
  .lstm_cell_backward = dl_cpu_lstm_cell_backward,
  .gru_cell = dl_cpu_gru_cell,
  .gru_cell_backward = dl_cpu_gru_cell_backward,
  .attn_softmax = dl_cpu_attn_softmax,
  .attn_softmax_backward = dl_cpu_attn_softmax_backward,
  .layer_norm = dl_cpu_layer_norm,
  .layer_norm_backward = dl_cpu_layer_norm_backward,
};
