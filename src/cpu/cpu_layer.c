/* cpu_layer.c — CPU kernels of the fused layer ops (src/ops/dl_layer.h):
 * RBF features (one GEMM for the cross terms, then exp), and the table
 * of every layer kernel (batch norm, layer norm, the recurrent cells and
 * attention's softmax live in files of their own). Operands are contiguous
 * and of one float dtype. */
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

const struct dl_layer_kernels dl_cpu_layer = {
  .rbf_forward = cpu_rbf_forward,
  .rbf_backward = cpu_rbf_backward,
  .bn_stats = dl_cpu_bn_stats,
  .bn_apply = dl_cpu_bn_apply,
  .bn_backward = dl_cpu_bn_backward,
  .bn_relu_pool = dl_cpu_bn_relu_pool,
  .bn_relu_pool_backward = dl_cpu_bn_relu_pool_backward,
  .lstm_cell = dl_cpu_lstm_cell,
  .lstm_cell_backward = dl_cpu_lstm_cell_backward,
  .gru_cell = dl_cpu_gru_cell,
  .gru_cell_backward = dl_cpu_gru_cell_backward,
  .attn_softmax = dl_cpu_attn_softmax,
  .attn_softmax_backward = dl_cpu_attn_softmax_backward,
  .layer_norm = dl_cpu_layer_norm,
  .layer_norm_backward = dl_cpu_layer_norm_backward,
  .bn_relu_c16 = dl_cpu_bn_relu_c16,
  .bn_relu_c16_backward = dl_cpu_bn_relu_c16_backward,
};
