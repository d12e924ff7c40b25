/* cpu_loss.c — fused cross-entropy / NLL kernels on [N, C, D] rows: one
 * pass for log-softmax + gather + weighting + smoothing, one pass for the
 * gradient (softmax - soft one-hot, scaled). Rows are independent (OpenMP
 * above the grain); the class loops are SIMD (libmvec's exp), with the
 * sums accumulated in double. D == 1 ([N, C] inputs) gets unit-stride
 * copies of the row loops. */
#include "../ops/dl_loss.h"
#include "cpu_iter.h"
#include "cpu_reduce_util.h"
#include "cpu_vecmath.h"

#include <math.h>

#define EXP_float expf
#define EXP_double exp

/* logsumexp of the row xr[j * st], j < C */
#define ROW_LSE(NAME, T, ST)                                                        \
  static inline __attribute__((always_inline)) double NAME(const T *xr, int64_t st, int64_t C) { \
    (void)st;                                                                   \
    T m = -INFINITY;                                                            \
    DL_SIMD_REDUCE(max, m) for (int64_t j = 0; j < C; j++) m = xr[j * (ST)] > m ? xr[j * (ST)] : m; \
    double acc = 0;                                                             \
    DL_SIMD_REDUCE(+, acc) for (int64_t j = 0; j < C; j++) acc += (double)EXP_##T(xr[j * (ST)] - m); \
    return (double)m + log(acc);                                                \
  }

/* sum_j w_j (x_j - l), w_j = 1 when w is NULL */
#define ROW_WSUM(NAME, T, ST)                                                       \
  static inline __attribute__((always_inline)) double NAME(const T *xr, int64_t st, int64_t C, const T *w, \
                                                           double l) {          \
    (void)st;                                                                   \
    double acc = 0;                                                             \
    if (w) {                                                                    \
      DL_SIMD_REDUCE(+, acc) for (int64_t j = 0; j < C; j++) acc += (double)w[j] * ((double)xr[j * (ST)] - l); \
    } else {                                                                    \
      DL_SIMD_REDUCE(+, acc) for (int64_t j = 0; j < C; j++) acc += (double)xr[j * (ST)] - l; \
    }                                                                           \
    return acc;                                                                 \
  }

/* gr_j = gs (p_j qsum - sc w_j), p_j = exp(x_j - l) (or 0 without the
 * softmax term); the target's -gs (1 - s) w_y is added by the caller */
#define ROW_GRAD(NAME, T, ST)                                                       \
  static inline __attribute__((always_inline)) void NAME(T *gr, const T *xr, int64_t st, int64_t C, const T *w, \
                                                         bool sm, T l, T qs, T sc, T gs) { \
    (void)st;                                                                   \
    if (sm && w) {                                                              \
      DL_SIMD for (int64_t j = 0; j < C; j++) gr[j * (ST)] = gs * (EXP_##T(xr[j * (ST)] - l) * qs - sc * w[j]); \
    } else if (sm) {                                                            \
      DL_SIMD for (int64_t j = 0; j < C; j++) gr[j * (ST)] = gs * (EXP_##T(xr[j * (ST)] - l) * qs - sc); \
    } else if (w) {                                                             \
      DL_SIMD for (int64_t j = 0; j < C; j++) gr[j * (ST)] = -gs * sc * w[j];    \
    } else {                                                                    \
      DL_SIMD for (int64_t j = 0; j < C; j++) gr[j * (ST)] = -gs * sc;           \
    }                                                                           \
  }

#define CLASS_FORWARD(NAME, T)                                                                      \
  ROW_LSE(NAME##_lse1, T, 1)                                                                        \
  ROW_LSE(NAME##_lse, T, st)                                                                        \
  ROW_WSUM(NAME##_wsum1, T, 1)                                                                      \
  ROW_WSUM(NAME##_wsum, T, st)                                                                      \
  static void NAME(dl_class_loss_call *c) {                                                         \
    const T *x = (const T *)dl_tensor_data(c->input);                                               \
    const int64_t *y = (const int64_t *)dl_tensor_data(c->target);                                  \
    const T *w = c->weight ? (const T *)dl_tensor_data(c->weight) : NULL;                           \
    T *loss = (T *)dl_tensor_data(c->loss);                                                         \
    T *wt = c->wt ? (T *)dl_tensor_data(c->wt) : NULL;                                              \
    T *lse = c->lse ? (T *)dl_tensor_data(c->lse) : NULL;                                           \
    const int64_t C = c->input->shape[1], D = c->input->shape[2], rows = c->input->shape[0] * D;    \
    const double s = c->smoothing;                                                                  \
    const bool lsm = c->log_softmax;                                                                \
    const int64_t ign = c->ignore_index;                                                            \
    bool bad = false;                                                                               \
    int64_t badv = 0;                                                                               \
    _Pragma("omp parallel for schedule(static) if (rows * C > DL_PARALLEL_GRAIN)")                  \
    for (int64_t r = 0; r < rows; r++) {                                                            \
      const T *xr = x + (r / D) * C * D + r % D;                                                    \
      double l = 0;                                                                                 \
      if (lsm) {                                                                                    \
        l = D == 1 ? NAME##_lse1(xr, 1, C) : NAME##_lse(xr, D, C);                                   \
        if (lse) lse[r] = (T)l;                                                                     \
      }                                                                                             \
      const int64_t yi = y[r];                                                                      \
      if (yi == ign || yi < 1 || yi > C) {                                                          \
        if (yi != ign) {                                                                            \
          _Pragma("omp critical(dl_loss_bad)") if (!bad) {                                          \
            bad = true;                                                                             \
            badv = yi;                                                                              \
          }                                                                                         \
        }                                                                                           \
        loss[r] = 0;                                                                                \
        if (wt) wt[r] = 0;                                                                          \
        continue;                                                                                   \
      }                                                                                             \
      const int64_t k = yi - 1;                                                                     \
      const double wy = w ? (double)w[k] : 1.0;                                                     \
      double v = -(1.0 - s) * wy * ((double)xr[k * D] - l);                                         \
      if (s > 0) v -= s / (double)C * (D == 1 ? NAME##_wsum1(xr, 1, C, w, l) : NAME##_wsum(xr, D, C, w, l)); \
      loss[r] = (T)v;                                                                               \
      if (wt) wt[r] = (T)wy;                                                                        \
    }                                                                                               \
    c->bad = bad;                                                                                   \
    c->bad_value = badv;                                                                            \
  }

#define CLASS_BACKWARD(NAME, T)                                                                     \
  ROW_GRAD(NAME##_row1, T, 1)                                                                       \
  ROW_GRAD(NAME##_row, T, st)                                                                       \
  static void NAME(const dl_class_loss_backward_call *c) {                                          \
    const T *x = (const T *)dl_tensor_data(c->input);                                               \
    const int64_t *y = (const int64_t *)dl_tensor_data(c->target);                                  \
    const T *w = c->weight ? (const T *)dl_tensor_data(c->weight) : NULL;                           \
    const T *lse = c->lse ? (const T *)dl_tensor_data(c->lse) : NULL;                               \
    const T *g = (const T *)dl_tensor_data(c->gout);                                                \
    const int64_t gstep = c->gout->numel == 1 ? 0 : 1;                                              \
    T *gx = (T *)dl_tensor_data(c->grad);                                                           \
    const int64_t C = c->input->shape[1], D = c->input->shape[2], rows = c->input->shape[0] * D;    \
    const double s = c->smoothing, sc = s / (double)C;                                              \
    const bool sm = c->softmax_term;                                                                \
    const int64_t ign = c->ignore_index;                                                            \
    double wall = 0; /* sum_c w_c */                                                                \
    if (w)                                                                                          \
      for (int64_t j = 0; j < C; j++) wall += (double)w[j];                                         \
    else                                                                                            \
      wall = (double)C;                                                                             \
    _Pragma("omp parallel for schedule(static) if (rows * C > DL_PARALLEL_GRAIN)")                  \
    for (int64_t r = 0; r < rows; r++) {                                                            \
      const int64_t off = (r / D) * C * D + r % D;                                                  \
      const T *xr = x + off;                                                                        \
      T *gr = gx + off;                                                                             \
      const int64_t yi = y[r];                                                                      \
      if (yi == ign || yi < 1 || yi > C) {                                                          \
        for (int64_t j = 0; j < C; j++) gr[j * D] = 0;                                              \
        continue;                                                                                   \
      }                                                                                             \
      const int64_t k = yi - 1;                                                                     \
      const double gs = (double)g[r * gstep];                                                       \
      const double wy = w ? (double)w[k] : 1.0;                                                     \
      const T qs = (T)((1.0 - s) * wy + sc * wall);                                                 \
      const T l = sm ? lse[r] : (T)0;                                                               \
      if (D == 1) NAME##_row1(gr, xr, 1, C, w, sm, l, qs, (T)sc, (T)gs);                              \
      else NAME##_row(gr, xr, D, C, w, sm, l, qs, (T)sc, (T)gs);                                     \
      gr[k * D] = (T)((double)gr[k * D] - gs * (1.0 - s) * wy);                                     \
    }                                                                                               \
  }

CLASS_FORWARD(class_forward_f, float)
CLASS_FORWARD(class_forward_d, double)
CLASS_BACKWARD(class_backward_f, float)
CLASS_BACKWARD(class_backward_d, double)

static int class_forward(dl_class_loss_call *c) {
  if (c->input->dtype == DL_FLOAT32) class_forward_f(c);
  else class_forward_d(c);
  return DL_KERNEL_OK;
}

static int class_backward(const dl_class_loss_backward_call *c) {
  if (c->input->dtype == DL_FLOAT32) class_backward_f(c);
  else class_backward_d(c);
  return DL_KERNEL_OK;
}

/* ---- element-wise regression losses (strided iterator, one pass) ---- */

typedef struct {
  dl_pointwise_loss kind;
  double beta;
} pw_ctx;

#define SIGN(d) ((d) > 0 ? 1 : (d) < 0 ? -1 : (d))
#define F_MSE(d, b) ((d) * (d))
#define F_L1(d, b) fabs(d)
#define F_SL1(d, b) (fabs(d) < (b) ? 0.5 * (d) * (d) / (b) : fabs(d) - 0.5 * (b))
#define D_MSE(d, b) (2 * (d))
#define D_L1(d, b) ((d) == (d) ? SIGN(d) : 0) /* sign(NaN) = 0 here, as PyTorch's l1_loss backward */
#define D_SL1(d, b) (fabs(d) < (b) ? (d) / (b) : SIGN(d))

/* p[0] = f(p[1] - p[2]) */
#define PW_LOOP(NAME, T, FN)                                                           \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {                 \
    const double b = ((const pw_ctx *)ctx)->beta;                                      \
    (void)b;                                                                           \
    if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T)) {                 \
      T *o = (T *)p[0];                                                                \
      const T *x = (const T *)p[1], *t = (const T *)p[2];                              \
      DL_SIMD for (int64_t i = 0; i < n; i++) {                                        \
        const T d = x[i] - t[i];                                                       \
        o[i] = (T)FN(d, (T)b);                                                         \
      }                                                                                \
    } else {                                                                           \
      for (int64_t i = 0; i < n; i++) {                                                \
        const T d = *(const T *)(p[1] + i * s[1]) - *(const T *)(p[2] + i * s[2]);     \
        *(T *)(p[0] + i * s[0]) = (T)FN(d, (T)b);                                      \
      }                                                                                \
    }                                                                                  \
  }

/* p[0] = p[1] * f'(p[2] - p[3]) */
#define PW_BACK_LOOP(NAME, T, FN)                                                      \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {                 \
    const double b = ((const pw_ctx *)ctx)->beta;                                      \
    (void)b;                                                                           \
    if (s[0] == sizeof(T) && s[2] == sizeof(T) && s[3] == sizeof(T)) {                 \
      T *o = (T *)p[0];                                                                \
      const T *x = (const T *)p[2], *t = (const T *)p[3];                              \
      if (s[1] == 0) {                                                                 \
        const T g = *(const T *)p[1];                                                  \
        DL_SIMD for (int64_t i = 0; i < n; i++) {                                      \
          const T d = x[i] - t[i];                                                     \
          o[i] = g * (T)FN(d, (T)b);                                                   \
        }                                                                              \
        return;                                                                        \
      }                                                                                \
      if (s[1] == sizeof(T)) {                                                         \
        const T *g = (const T *)p[1];                                                  \
        DL_SIMD for (int64_t i = 0; i < n; i++) {                                      \
          const T d = x[i] - t[i];                                                     \
          o[i] = g[i] * (T)FN(d, (T)b);                                                \
        }                                                                              \
        return;                                                                        \
      }                                                                                \
    }                                                                                  \
    for (int64_t i = 0; i < n; i++) {                                                  \
      const T d = *(const T *)(p[2] + i * s[2]) - *(const T *)(p[3] + i * s[3]);       \
      *(T *)(p[0] + i * s[0]) = *(const T *)(p[1] + i * s[1]) * (T)FN(d, (T)b);         \
    }                                                                                  \
  }

PW_LOOP(mse_f, float, F_MSE)
PW_LOOP(mse_d, double, F_MSE)
PW_LOOP(l1_f, float, F_L1)
PW_LOOP(l1_d, double, F_L1)
PW_LOOP(sl1_f, float, F_SL1)
PW_LOOP(sl1_d, double, F_SL1)
PW_BACK_LOOP(mse_back_f, float, D_MSE)
PW_BACK_LOOP(mse_back_d, double, D_MSE)
PW_BACK_LOOP(l1_back_f, float, D_L1)
PW_BACK_LOOP(l1_back_d, double, D_L1)
PW_BACK_LOOP(sl1_back_f, float, D_SL1)
PW_BACK_LOOP(sl1_back_d, double, D_SL1)

/* [kind][float32, float64] */
static const dl_iter_fn pw_forward[3][2] = {{mse_f, mse_d}, {l1_f, l1_d}, {sl1_f, sl1_d}};
static const dl_iter_fn pw_backward[3][2] = {
  {mse_back_f, mse_back_d}, {l1_back_f, l1_back_d}, {sl1_back_f, sl1_back_d}};

static int pointwise(dl_tensor *out, const dl_tensor *x, const dl_tensor *t, dl_pointwise_loss kind, double beta) {
  if (out->numel == 0) return DL_KERNEL_OK;
  pw_ctx c = {kind, beta};
  dl_tensor *ops[3] = {out, (dl_tensor *)x, (dl_tensor *)t};
  dl_iter it;
  dl_iter_init(&it, 3, ops);
  dl_iter_parallel(&it, pw_forward[kind][out->dtype == DL_FLOAT64], &c, DL_PARALLEL_GRAIN);
  return DL_KERNEL_OK;
}

static int pointwise_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *x, const dl_tensor *t,
                               dl_pointwise_loss kind, double beta) {
  if (gx->numel == 0) return DL_KERNEL_OK;
  pw_ctx c = {kind, beta};
  dl_tensor *ops[4] = {gx, (dl_tensor *)g, (dl_tensor *)x, (dl_tensor *)t};
  dl_iter it;
  dl_iter_init(&it, 4, ops);
  dl_iter_parallel(&it, pw_backward[kind][gx->dtype == DL_FLOAT64], &c, DL_PARALLEL_GRAIN);
  return DL_KERNEL_OK;
}

const struct dl_loss_kernels dl_cpu_loss = {class_forward, class_backward, pointwise, pointwise_backward};
