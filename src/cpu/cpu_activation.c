/* cpu_activation.c — CPU kernels of the fused activations: one pass per
 * forward and per backward. Point-wise ones walk any strides with dl_iter
 * (a contiguous fast path per run); prelu and softmax get contiguous
 * operands seen as [outer, n, inner]. Softmax rows are stable (max
 * subtracted) and sum in double. */
#pragma GCC optimize("-fvect-cost-model=dynamic")

#include "../ops/dl_activation.h"
#include "cpu_iter.h"
#include "cpu_vecmath.h"

#include <math.h>
#include <omp.h>

typedef struct {
  double p0, p1;
} act_ctx;

/* the element formulas (dl_act_math.h, the GPU's too), once per type */
#define AM_QUAL static inline
#define AM_T float
#define AM_FN(name) name##_f
#define AM_MATH(fn) fn##f
#include "../ops/dl_act_math.h"
#undef AM_T
#undef AM_FN
#undef AM_MATH
#define AM_T double
#define AM_FN(name) name##_d
#define AM_MATH(f) f
#include "../ops/dl_act_math.h"

/* one inner loop per (op, dtype): a contiguous run the compiler vectorises,
 * a strided fallback */
#define FWD_LOOP(NAME, T, FN)                                                                      \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                             \
    const act_ctx *c = (const act_ctx *)vctx;                                                       \
    const T p0 = (T)c->p0, p1 = (T)c->p1;                                                           \
    if (s[0] == (int64_t)sizeof(T) && s[1] == (int64_t)sizeof(T)) {                                 \
      T *restrict o = (T *)p[0];                                                                    \
      const T *restrict x = (const T *)p[1];                                                        \
      for (int64_t i = 0; i < n; i++) o[i] = FN(x[i], p0, p1);                                      \
    } else {                                                                                        \
      for (int64_t i = 0; i < n; i++) *(T *)(p[0] + i * s[0]) = FN(*(const T *)(p[1] + i * s[1]), p0, p1); \
    }                                                                                               \
  }
#define BWD_LOOP(NAME, T, FN)                                                                      \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                             \
    const act_ctx *c = (const act_ctx *)vctx;                                                       \
    const T p0 = (T)c->p0, p1 = (T)c->p1;                                                           \
    if (s[0] == (int64_t)sizeof(T) && s[1] == (int64_t)sizeof(T) && s[2] == (int64_t)sizeof(T)) {   \
      T *restrict o = (T *)p[0];                                                                    \
      const T *restrict g = (const T *)p[1], *restrict x = (const T *)p[2];                         \
      for (int64_t i = 0; i < n; i++) o[i] = FN(g[i], x[i], p0, p1);                                \
    } else {                                                                                        \
      for (int64_t i = 0; i < n; i++)                                                               \
        *(T *)(p[0] + i * s[0]) = FN(*(const T *)(p[1] + i * s[1]), *(const T *)(p[2] + i * s[2]), p0, p1); \
    }                                                                                               \
  }
#define ACT_LOOPS(S, T)                                                                            \
  FWD_LOOP(leaky_fl_##S, T, leaky_f_##S)                                                            \
  BWD_LOOP(leaky_bl_##S, T, leaky_b_##S)                                                            \
  FWD_LOOP(elu_fl_##S, T, elu_f_##S)                                                                \
  BWD_LOOP(elu_bl_##S, T, elu_b_##S)                                                                \
  FWD_LOOP(gelu_fl_##S, T, gelu_f_##S)                                                              \
  BWD_LOOP(gelu_bl_##S, T, gelu_b_##S)                                                              \
  FWD_LOOP(gelut_fl_##S, T, gelut_f_##S)                                                            \
  BWD_LOOP(gelut_bl_##S, T, gelut_b_##S)                                                            \
  FWD_LOOP(silu_fl_##S, T, silu_f_##S)                                                              \
  BWD_LOOP(silu_bl_##S, T, silu_b_##S)                                                              \
  FWD_LOOP(softplus_fl_##S, T, softplus_f_##S)                                                      \
  BWD_LOOP(softplus_bl_##S, T, softplus_b_##S)                                                      \
  FWD_LOOP(relu_fl_##S, T, relu_f_##S)                                                              \
  BWD_LOOP(relu_bl_##S, T, relu_b_##S)

ACT_LOOPS(f, float)
ACT_LOOPS(d, double)

/* [op][0 float32, 1 float64], in dl_act order */
static const dl_iter_fn fwd_loops[DL_NACTS][2] = {
  {leaky_fl_f, leaky_fl_d}, {elu_fl_f, elu_fl_d},   {gelu_fl_f, gelu_fl_d},
  {gelut_fl_f, gelut_fl_d}, {silu_fl_f, silu_fl_d}, {softplus_fl_f, softplus_fl_d},
  {relu_fl_f, relu_fl_d},
};
static const dl_iter_fn bwd_loops[DL_NACTS][2] = {
  {leaky_bl_f, leaky_bl_d}, {elu_bl_f, elu_bl_d},   {gelu_bl_f, gelu_bl_d},
  {gelut_bl_f, gelut_bl_d}, {silu_bl_f, silu_bl_d}, {softplus_bl_f, softplus_bl_d},
  {relu_bl_f, relu_bl_d},
};

static int act_forward(dl_act op, dl_tensor *out, const dl_tensor *x, double p0, double p1) {
  act_ctx c = {p0, p1};
  dl_tensor *ops[2] = {out, (dl_tensor *)x};
  dl_iter it;
  dl_iter_init(&it, 2, ops);
  dl_iter_parallel(&it, fwd_loops[op][out->dtype == DL_FLOAT64], &c, DL_PARALLEL_GRAIN);
  return DL_KERNEL_OK;
}

static int act_backward(dl_act op, dl_tensor *gx, const dl_tensor *g, const dl_tensor *x, double p0, double p1) {
  act_ctx c = {p0, p1};
  dl_tensor *ops[3] = {gx, (dl_tensor *)g, (dl_tensor *)x};
  dl_iter it;
  dl_iter_init(&it, 3, ops);
  dl_iter_parallel(&it, bwd_loops[op][gx->dtype == DL_FLOAT64], &c, DL_PARALLEL_GRAIN);
  return DL_KERNEL_OK;
}

/* ---- prelu: slope w[c] (or w[0]) on channel c of [outer, n, inner] ---- */

#define PRELU_FUNCS(S, T)                                                                          \
  static void prelu_##S(T *o, const T *x, const T *w, int64_t wn, int64_t outer, int64_t n, int64_t inner) { \
    int64_t rows = outer * n;                                                                       \
    _Pragma("omp parallel for if (rows * inner >= DL_PARALLEL_GRAIN)")                              \
    for (int64_t r = 0; r < rows; r++) {                                                            \
      T a = w[wn == 1 ? 0 : r % n];                                                                 \
      const T *xr = x + r * inner;                                                                  \
      T *orow = o + r * inner;                                                                      \
      for (int64_t i = 0; i < inner; i++) orow[i] = xr[i] > 0 ? xr[i] : a * xr[i];                  \
    }                                                                                               \
  }                                                                                                 \
  static void prelu_bwd_##S(T *gx, T *gw, const T *g, const T *x, const T *w, int64_t wn, int64_t outer, \
                            int64_t n, int64_t inner) {                                             \
    /* one channel per thread, so each slope's sum has one writer */                                \
    _Pragma("omp parallel for if (outer * n * inner >= DL_PARALLEL_GRAIN)")                         \
    for (int64_t c = 0; c < n; c++) {                                                               \
      T a = w[wn == 1 ? 0 : c];                                                                     \
      double acc = 0;                                                                               \
      for (int64_t b = 0; b < outer; b++) {                                                         \
        int64_t off = (b * n + c) * inner;                                                          \
        for (int64_t i = 0; i < inner; i++) {                                                       \
          T xv = x[off + i], gv = g[off + i];                                                       \
          gx[off + i] = xv > 0 ? gv : a * gv;                                                       \
          acc += xv > 0 ? 0 : (double)gv * (double)xv;                                              \
        }                                                                                           \
      }                                                                                             \
      if (wn != 1) gw[c] = (T)acc;                                                                  \
      else {                                                                                        \
        _Pragma("omp atomic") gw[0] += (T)acc;                                                      \
      }                                                                                             \
    }                                                                                               \
  }

PRELU_FUNCS(f, float)
PRELU_FUNCS(d, double)

static int cpu_prelu(dl_tensor *out, const dl_tensor *x, const dl_tensor *w, int64_t outer, int64_t n,
                      int64_t inner) {
  if (out->dtype == DL_FLOAT32)
    prelu_f(dl_tensor_data(out), dl_tensor_data(x), dl_tensor_data(w), w->numel, outer, n, inner);
  else
    prelu_d(dl_tensor_data(out), dl_tensor_data(x), dl_tensor_data(w), w->numel, outer, n, inner);
  return DL_KERNEL_OK;
}

static int cpu_prelu_backward(dl_tensor *gx, dl_tensor *gw, const dl_tensor *g, const dl_tensor *x,
                               const dl_tensor *w, int64_t outer, int64_t n, int64_t inner) {
  if (gw->numel == 1) {
    if (gw->dtype == DL_FLOAT32) *(float *)dl_tensor_data(gw) = 0;
    else *(double *)dl_tensor_data(gw) = 0;
  }
  if (gx->dtype == DL_FLOAT32)
    prelu_bwd_f(dl_tensor_data(gx), dl_tensor_data(gw), dl_tensor_data(g), dl_tensor_data(x), dl_tensor_data(w),
                w->numel, outer, n, inner);
  else
    prelu_bwd_d(dl_tensor_data(gx), dl_tensor_data(gw), dl_tensor_data(g), dl_tensor_data(x), dl_tensor_data(w),
                w->numel, outer, n, inner);
  return DL_KERNEL_OK;
}

/* ---- softmax / log_softmax along the middle dim of [outer, n, inner] ----
 * inner == 1 (the last dim, contiguous): one row at a time, reductions with
 * 8 independent accumulators so they vectorise. inner > 1: a block of up to
 * SM_CHUNK neighbouring columns at once, so every pass reads contiguous
 * memory and vectorises across columns. Sums are kept in double. */

#define SM_CHUNK 64

#define SOFTMAX_FUNCS(S, T, EXP)                                                                   \
  static inline T rowmax_##S(const T *x, int64_t n) {                                               \
    T m[8];                                                                                         \
    for (int j = 0; j < 8; j++) m[j] = x[0];                                                        \
    int64_t i = 0;                                                                                  \
    for (; i + 8 <= n; i += 8)                                                                      \
      for (int j = 0; j < 8; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];                         \
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];                                            \
    T r = m[0];                                                                                     \
    for (int j = 1; j < 8; j++) r = m[j] > r ? m[j] : r;                                            \
    return r;                                                                                       \
  }                                                                                                 \
  /* sum of a[i] * (b ? b[i] : 1) */                                                                \
  static inline double rowdot_##S(const T *a, const T *b, int64_t n) {                              \
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                         \
    int64_t i = 0;                                                                                  \
    if (b) {                                                                                        \
      for (; i + 8 <= n; i += 8)                                                                    \
        for (int j = 0; j < 8; j++) s[j] += (double)a[i + j] * (double)b[i + j];                    \
      for (; i < n; i++) s[0] += (double)a[i] * (double)b[i];                                       \
    } else {                                                                                        \
      for (; i + 8 <= n; i += 8)                                                                    \
        for (int j = 0; j < 8; j++) s[j] += (double)a[i + j];                                       \
      for (; i < n; i++) s[0] += (double)a[i];                                                      \
    }                                                                                               \
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));                       \
  }                                                                                                 \
  static void sm_row_##S(bool is_log, T *restrict o, const T *restrict x, int64_t n) {              \
    T m = rowmax_##S(x, n);                                                                         \
    for (int64_t k = 0; k < n; k++) o[k] = EXP(x[k] - m);                                           \
    double sum = rowdot_##S(o, NULL, n);                                                            \
    if (is_log) {                                                                                   \
      /* (x - m) - log(sum): exact where x is near m, even far from 0 */                            \
      T ls = (T)log(sum);                                                                           \
      for (int64_t k = 0; k < n; k++) o[k] = (x[k] - m) - ls;                                       \
    } else {                                                                                        \
      T inv = (T)(1.0 / sum);                                                                       \
      for (int64_t k = 0; k < n; k++) o[k] *= inv;                                                  \
    }                                                                                               \
  }                                                                                                 \
  /* columns [0, w) of one [n, inner] block, w <= SM_CHUNK */                                       \
  static void sm_cols_##S(bool is_log, T *o, const T *x, int64_t n, int64_t inner, int64_t w) {     \
    T m[SM_CHUNK];                                                                                  \
    double sum[SM_CHUNK];                                                                           \
    for (int64_t i = 0; i < w; i++) m[i] = x[i], sum[i] = 0;                                        \
    for (int64_t k = 1; k < n; k++) {                                                               \
      const T *xk = x + k * inner;                                                                  \
      for (int64_t i = 0; i < w; i++) m[i] = xk[i] > m[i] ? xk[i] : m[i];                           \
    }                                                                                               \
    for (int64_t k = 0; k < n; k++) {                                                               \
      const T *xk = x + k * inner;                                                                  \
      T *ok = o + k * inner;                                                                        \
      for (int64_t i = 0; i < w; i++) {                                                             \
        T e = EXP(xk[i] - m[i]);                                                                    \
        ok[i] = e;                                                                                  \
        sum[i] += e;                                                                                \
      }                                                                                             \
    }                                                                                               \
    T f[SM_CHUNK];                                                                                  \
    for (int64_t i = 0; i < w; i++) f[i] = is_log ? (T)log(sum[i]) : (T)(1.0 / sum[i]);             \
    for (int64_t k = 0; k < n; k++) {                                                               \
      const T *xk = x + k * inner;                                                                  \
      T *ok = o + k * inner;                                                                        \
      if (is_log)                                                                                   \
        for (int64_t i = 0; i < w; i++) ok[i] = (xk[i] - m[i]) - f[i];                              \
      else                                                                                          \
        for (int64_t i = 0; i < w; i++) ok[i] *= f[i];                                              \
    }                                                                                               \
  }                                                                                                 \
  static void softmax_##S(bool is_log, T *o, const T *x, int64_t outer, int64_t n, int64_t inner) {  \
    if (inner == 1) {                                                                               \
      _Pragma("omp parallel for if (outer * n >= DL_PARALLEL_GRAIN)")                               \
      for (int64_t r = 0; r < outer; r++) sm_row_##S(is_log, o + r * n, x + r * n, n);              \
      return;                                                                                       \
    }                                                                                               \
    int64_t nch = (inner + SM_CHUNK - 1) / SM_CHUNK, blocks = outer * nch;                          \
    _Pragma("omp parallel for if (outer * n * inner >= DL_PARALLEL_GRAIN)")                         \
    for (int64_t bl = 0; bl < blocks; bl++) {                                                       \
      int64_t b = bl / nch, i0 = (bl % nch) * SM_CHUNK;                                             \
      int64_t w = inner - i0 < SM_CHUNK ? inner - i0 : SM_CHUNK;                                    \
      int64_t off = b * n * inner + i0;                                                             \
      sm_cols_##S(is_log, o + off, x + off, n, inner, w);                                           \
    }                                                                                               \
  }                                                                                                 \
  /* softmax: gx = y (g - sum(g y)); log_softmax: gx = g - exp(y) sum(g) */                         \
  static void softmax_bwd_##S(bool is_log, T *gx, const T *g, const T *y, int64_t outer, int64_t n, \
                              int64_t inner) {                                                      \
    if (inner == 1) {                                                                               \
      _Pragma("omp parallel for if (outer * n >= DL_PARALLEL_GRAIN)")                               \
      for (int64_t r = 0; r < outer; r++) {                                                         \
        const T *restrict gr = g + r * n, *restrict yr = y + r * n;                                 \
        T *restrict xr = gx + r * n;                                                                \
        T s = (T)rowdot_##S(gr, is_log ? NULL : yr, n);                                             \
        if (is_log)                                                                                 \
          for (int64_t k = 0; k < n; k++) xr[k] = gr[k] - EXP(yr[k]) * s;                           \
        else                                                                                        \
          for (int64_t k = 0; k < n; k++) xr[k] = yr[k] * (gr[k] - s);                              \
      }                                                                                             \
      return;                                                                                       \
    }                                                                                               \
    int64_t nch = (inner + SM_CHUNK - 1) / SM_CHUNK, blocks = outer * nch;                          \
    _Pragma("omp parallel for if (outer * n * inner >= DL_PARALLEL_GRAIN)")                         \
    for (int64_t bl = 0; bl < blocks; bl++) {                                                       \
      int64_t b = bl / nch, i0 = (bl % nch) * SM_CHUNK;                                             \
      int64_t w = inner - i0 < SM_CHUNK ? inner - i0 : SM_CHUNK;                                    \
      int64_t off = b * n * inner + i0;                                                             \
      double dot[SM_CHUNK];                                                                         \
      for (int64_t i = 0; i < w; i++) dot[i] = 0;                                                   \
      for (int64_t k = 0; k < n; k++) {                                                             \
        const T *gk = g + off + k * inner, *yk = y + off + k * inner;                               \
        if (is_log)                                                                                 \
          for (int64_t i = 0; i < w; i++) dot[i] += gk[i];                                          \
        else                                                                                        \
          for (int64_t i = 0; i < w; i++) dot[i] += (double)gk[i] * yk[i];                          \
      }                                                                                             \
      T d[SM_CHUNK];                                                                                \
      for (int64_t i = 0; i < w; i++) d[i] = (T)dot[i];                                             \
      for (int64_t k = 0; k < n; k++) {                                                             \
        const T *gk = g + off + k * inner, *yk = y + off + k * inner;                               \
        T *xk = gx + off + k * inner;                                                               \
        if (is_log)                                                                                 \
          for (int64_t i = 0; i < w; i++) xk[i] = gk[i] - EXP(yk[i]) * d[i];                        \
        else                                                                                        \
          for (int64_t i = 0; i < w; i++) xk[i] = yk[i] * (gk[i] - d[i]);                           \
      }                                                                                             \
    }                                                                                               \
  }

SOFTMAX_FUNCS(f, float, expf)
SOFTMAX_FUNCS(d, double, exp)

static int cpu_softmax(bool log, dl_tensor *out, const dl_tensor *x, int64_t outer, int64_t n, int64_t inner) {
  if (n == 0) return DL_KERNEL_OK;
  if (out->dtype == DL_FLOAT32) softmax_f(log, dl_tensor_data(out), dl_tensor_data(x), outer, n, inner);
  else softmax_d(log, dl_tensor_data(out), dl_tensor_data(x), outer, n, inner);
  return DL_KERNEL_OK;
}

static int cpu_softmax_backward(bool log, dl_tensor *gx, const dl_tensor *g, const dl_tensor *y, int64_t outer,
                                 int64_t n, int64_t inner) {
  if (n == 0) return DL_KERNEL_OK;
  if (gx->dtype == DL_FLOAT32) softmax_bwd_f(log, dl_tensor_data(gx), dl_tensor_data(g), dl_tensor_data(y), outer, n, inner);
  else softmax_bwd_d(log, dl_tensor_data(gx), dl_tensor_data(g), dl_tensor_data(y), outer, n, inner);
  return DL_KERNEL_OK;
}

const struct dl_act_kernels dl_cpu_act = {
  .forward = act_forward,
  .backward = act_backward,
  .prelu = cpu_prelu,
  .prelu_backward = cpu_prelu_backward,
  .softmax = cpu_softmax,
  .softmax_backward = cpu_softmax_backward,
};
