/* cpu_batch_norm.c — batch norm's CPU kernels (src/ops/dl_layer.h): the
 * per-channel statistics, the normalisation (with an optional ReLU after
 * it) and the closed-form training backward (the ReLU's mask recomputed
 * from x, so the fused layer saves nothing more than batch norm does).
 *
 * Layout: x is a contiguous [N, C, L]. L > 1 walks each channel's N runs of
 * L; L == 1 (BatchNorm1d on [N, C]) walks rows of channels instead. Sums
 * accumulate in double; float32 channels first sum in float lanes over a
 * few dozen rows, so the loops vectorise without a conversion an element
 * and the memory bus, not the adder, sets the pace. */
#include "../ops/dl_layer.h"
#include "cpu_iter.h"
#include "cpu_norm.h"
#include "cpu_reduce_util.h"

#include <math.h>

/* element (i, c, l) of a contiguous [N, C, L] tensor */
#define AT(p, i, c, l) (p)[((i) * C + (c)) * L + (l)]


/* ---- float32 in float lanes ---- */

/* A channel is N runs of L. Its sums run in float across a block of rows,
 * one accumulator per position of the run (the loops vectorise over l
 * whatever L is: Fashion-MNIST's 7x7 planes make runs of 49), flushed to
 * double every BN_ROWS rows; runs longer than BN_ACC are cut into pieces of
 * BN_ACC, each summed the same way. */
#define BN_ACC 1024
#define BN_ROWS 32

/* sum over the channel of (x - k), or of (x - k)^2 */
static double chan_sum_f(const float *x0, int64_t N, int64_t stride, int64_t L, float k, bool square) {
  double total = 0;
  float acc[BN_ACC];
  for (int64_t l0 = 0; l0 < L; l0 += BN_ACC) {
    const int64_t w = L - l0 < BN_ACC ? L - l0 : BN_ACC;
    for (int64_t i0 = 0; i0 < N; i0 += BN_ROWS) {
      const int64_t i1 = N - i0 < BN_ROWS ? N : i0 + BN_ROWS;
      for (int64_t l = 0; l < w; l++) acc[l] = 0;
      for (int64_t i = i0; i < i1; i++) {
        const float *p = x0 + i * stride + l0;
        if (square)
          for (int64_t l = 0; l < w; l++) acc[l] += (p[l] - k) * (p[l] - k);
        else
          for (int64_t l = 0; l < w; l++) acc[l] += p[l] - k;
      }
      double s = 0;
      DL_SIMD_REDUCE(+, s) for (int64_t l = 0; l < w; l++) s += acc[l];
      total += s;
    }
  }
  return total;
}

/* the mean of up to 64 values of a run, 0 when it is not finite */
static float first_estimate(const float *x, int64_t L) {
  const int64_t n = L < 64 ? L : 64;
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  const float k = (float)(s / (double)n);
  return isfinite(k) ? k : 0;
}

static void stats_f(const float *xp, int64_t N, int64_t C, int64_t L, float *mp, float *vp, float *rp, double eps) {
  const double M = (double)(N * L);
#pragma omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)
  for (int64_t c = 0; c < C; c++) {
    /* sums about a first estimate of the mean (of the channel's first run,
     * in double), so the float lanes add terms of the data's spread, not of
     * its offset */
    const float *x0 = &AT(xp, 0, c, 0), k0 = M > 0 ? first_estimate(x0, L) : 0;
    const double mu = M > 0 ? k0 + chan_sum_f(x0, N, C * L, L, k0, false) / M : 0;
    /* a second pass about the mean (a channel's runs are mostly still in
     * L2); sum (x - m)^2 = sum (x - mu)^2 + M (mu - m)^2 for the float m */
    const double q = chan_sum_f(x0, N, C * L, L, (float)mu, true), dm = mu - (double)(float)mu;
    const double v = M > 0 ? q / M - dm * dm : 0, vv = v < 0 ? 0 : v; /* (rounding below 0; NaN stays) */
    mp[c] = (float)mu;
    vp[c] = (float)vv;
    rp[c] = (float)(1.0 / sqrt(vv + eps));
  }
}

/* the sums sg = sum g', sgx = sum g' (x - mu) over the channel, g' = g, or
 * with relu g where the normalisation's output (x - mu) a + s is > 0 or NaN */
static void chan_dot_f(const float *g0, const float *x0, int64_t N, int64_t stride, int64_t L, float mu, bool relu,
                       float a, float s, double *sg, double *sgx) {
  float ag[BN_ACC], ax[BN_ACC];
  *sg = *sgx = 0;
  for (int64_t l0 = 0; l0 < L; l0 += BN_ACC) {
    const int64_t w = L - l0 < BN_ACC ? L - l0 : BN_ACC;
    for (int64_t i0 = 0; i0 < N; i0 += BN_ROWS) {
      const int64_t i1 = N - i0 < BN_ROWS ? N : i0 + BN_ROWS;
      for (int64_t l = 0; l < w; l++) ag[l] = ax[l] = 0;
      for (int64_t i = i0; i < i1; i++) {
        const float *g = g0 + i * stride + l0, *x = x0 + i * stride + l0;
        if (relu)
          for (int64_t l = 0; l < w; l++) {
            const float ge = RELU_PASS(__builtin_fmaf(x[l] - mu, a, s), g[l]);
            ag[l] += ge, ax[l] += ge * (x[l] - mu);
          }
        else
          for (int64_t l = 0; l < w; l++) ag[l] += g[l], ax[l] += g[l] * (x[l] - mu);
      }
      double u = 0, v = 0;
      DL_SIMD_REDUCE2(+, u, +, v) for (int64_t l = 0; l < w; l++) u += ag[l], v += ax[l];
      *sg += u, *sgx += v;
    }
  }
}

/* gx = k (g' - mean(g') - xhat mean(g' xhat)), k = invstd w: per element
 * k g' - k mean(g') - (k invstd mean(g' xhat)) (x - mu), in float */
static void backward_f(float *gxp, float *gwp, float *gbp, const float *gyp, const float *xp, int64_t N, int64_t C,
                       int64_t L, const float *mp, const float *rp, const float *wp, const float *bp, bool relu) {
  const double M = (double)(N * L);
#pragma omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)
  for (int64_t c = 0; c < C; c++) {
    BN_COEFFS(float, c, mu, a, s);
    const double r = rp[c];
    double sg, sgx;
    chan_dot_f(&AT(gyp, 0, c, 0), &AT(xp, 0, c, 0), N, C * L, L, mu, relu, a, s, &sg, &sgx);
    sgx *= r;
    if (gwp) gwp[c] = (float)sgx;
    if (gbp) gbp[c] = (float)sg;
    if (!gxp) continue;
    double kd, sd, od;
    bn_grad_coeffs(r, wp ? wp[c] : 1.0, sg, sgx, M, &kd, &sd, &od);
    const float kf = (float)kd, slope = (float)sd, off = (float)od;
    for (int64_t i = 0; i < N; i++) {
      const float *g = &AT(gyp, i, c, 0), *x = &AT(xp, i, c, 0);
      float *o = &AT(gxp, i, c, 0);
      if (relu)
        for (int64_t l = 0; l < L; l++) {
          const float ge = RELU_PASS(__builtin_fmaf(x[l] - mu, a, s), g[l]);
          o[l] = __builtin_fmaf(kf, ge, __builtin_fmaf(slope, x[l] - mu, off));
        }
      else
        for (int64_t l = 0; l < L; l++) o[l] = __builtin_fmaf(kf, g[l], __builtin_fmaf(slope, x[l] - mu, off));
    }
  }
}

/* ---- float64 (and float32 rows): double throughout ---- */

/* sums over a run of n in double with 8 independent accumulators, so the
 * adds pipeline and vectorise */
static inline double lane_sum_d(const double *a, int64_t n, double mu, bool square) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  if (square)
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; j++) acc[j] += (a[i + j] - mu) * (a[i + j] - mu);
  else
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; j++) acc[j] += a[i + j] - mu;
  for (; i < n; i++) acc[0] += square ? (a[i] - mu) * (a[i] - mu) : a[i] - mu;
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static void stats_d(const double *xp, int64_t N, int64_t C, int64_t L, double *mp, double *vp, double *rp,
                    double eps) {
  const double M = (double)(N * L);
#pragma omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < N; i++) s += lane_sum_d(&AT(xp, i, c, 0), L, 0, false);
    const double mu = M > 0 ? s / M : 0;
    for (int64_t i = 0; i < N; i++) q += lane_sum_d(&AT(xp, i, c, 0), L, mu, true);
    const double v = M > 0 ? q / M : 0;
    mp[c] = mu, vp[c] = v, rp[c] = 1.0 / sqrt(v + eps);
  }
}

static void backward_d(double *gxp, double *gwp, double *gbp, const double *gyp, const double *xp, int64_t N,
                       int64_t C, int64_t L, const double *mp, const double *rp, const double *wp, const double *bp,
                       bool relu) {
  const double M = (double)(N * L);
#pragma omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)
  for (int64_t c = 0; c < C; c++) {
    BN_COEFFS(double, c, mu, a, s);
    const double r = rp[c];
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < N; i++)
      for (int64_t l = 0; l < L; l++) {
        const double x = AT(xp, i, c, l), g = AT(gyp, i, c, l);
        const double ge = relu ? RELU_PASS(__builtin_fma(x - mu, a, s), g) : g;
        sg += ge, sgx += ge * (x - mu);
      }
    sgx *= r;
    if (gwp) gwp[c] = sgx;
    if (gbp) gbp[c] = sg;
    if (!gxp) continue;
    const double k = r * (wp ? wp[c] : 1.0), mg = sg / M, mgx = sgx / M;
    for (int64_t i = 0; i < N; i++)
      for (int64_t l = 0; l < L; l++) {
        const double x = AT(xp, i, c, l), g = AT(gyp, i, c, l);
        const double ge = relu ? RELU_PASS(__builtin_fma(x - mu, a, s), g) : g;
        AT(gxp, i, c, l) = k * (ge - mg - (x - mu) * r * mgx);
      }
  }
}

/* L == 1 (BatchNorm1d on [N, C]): the channel-major loops above would
 * stride by a whole row per element, so these walk the rows instead, a
 * block of BN_CB channels at a time with their accumulators in L1. Each
 * channel still sums in double over i in order. */
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

int dl_cpu_bn_stats(const dl_tensor *x, int64_t N, int64_t C, int64_t L, dl_tensor *mean, dl_tensor *var,
                    dl_tensor *invstd, double eps) {
  if (L == 1 && x->dtype == DL_FLOAT32) BN_STATS_ROWS(float);
  else if (L == 1) BN_STATS_ROWS(double);
  else if (x->dtype == DL_FLOAT32)
    stats_f(dl_tensor_data(x), N, C, L, dl_tensor_data(mean), dl_tensor_data(var), dl_tensor_data(invstd), eps);
  else
    stats_d(dl_tensor_data(x), N, C, L, dl_tensor_data(mean), dl_tensor_data(var), dl_tensor_data(invstd), eps);
  return DL_KERNEL_OK;
}

/* out = (x - m_c) a_c + s_c, then max(., 0) with relu */
#define BN_APPLY(T)                                                                                           \
  do {                                                                                                         \
    const T *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean), *rp = dl_tensor_data(invstd);               \
    const T *wp = weight ? dl_tensor_data(weight) : NULL, *bp = bias ? dl_tensor_data(bias) : NULL;           \
    T *op = dl_tensor_data(out);                                                                               \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t i = 0; i < N; i++) {          \
      for (int64_t c = 0; c < C; c++) {                                                                        \
        BN_COEFFS(T, c, m, a, s);                                                                              \
        const T *xr = &AT(xp, i, c, 0);                                                                        \
        T *orow = &AT(op, i, c, 0);                                                                            \
        if (relu)                                                                                              \
          for (int64_t l = 0; l < L; l++) {                                                                    \
            const T v = FMA_##T(xr[l] - m, a, s);                                                              \
            orow[l] = RELU_OUT(v);                                                                             \
          }                                                                                                    \
        else                                                                                                   \
          for (int64_t l = 0; l < L; l++) orow[l] = FMA_##T(xr[l] - m, a, s);                                  \
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
      T mv[BN_CB], av[BN_CB], sv[BN_CB];                                                                       \
      for (int64_t c = 0; c < w; c++) {                                                                        \
        BN_COEFFS(T, c0 + c, m, a, s);                                                                         \
        mv[c] = m, av[c] = a, sv[c] = s;                                                                       \
      }                                                                                                        \
      for (int64_t i = 0; i < N; i++) {                                                                        \
        const T *xr = xp + i * C + c0;                                                                         \
        T *orow = op + i * C + c0;                                                                             \
        for (int64_t c = 0; c < w; c++) {                                                                      \
          const T v = FMA_##T(xr[c] - mv[c], av[c], sv[c]);                                                    \
          orow[c] = relu ? RELU_OUT(v) : v;                                                                    \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

int dl_cpu_bn_apply(dl_tensor *out, const dl_tensor *x, int64_t N, int64_t C, int64_t L, const dl_tensor *mean,
                    const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias, bool relu) {
  if (L == 1 && x->dtype == DL_FLOAT32) BN_APPLY_ROWS(float);
  else if (L == 1) BN_APPLY_ROWS(double);
  else if (x->dtype == DL_FLOAT32) BN_APPLY(float);
  else BN_APPLY(double);
  return DL_KERNEL_OK;
}

#define BN_BACKWARD_ROWS(T)                                                                                   \
  do {                                                                                                         \
    const T *gyp = dl_tensor_data(gy), *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean);                  \
    const T *rp = dl_tensor_data(invstd), *wp = weight ? dl_tensor_data(weight) : NULL;                       \
    const T *bp = bias ? dl_tensor_data(bias) : NULL;                                                          \
    T *gxp = gx ? dl_tensor_data(gx) : NULL, *gwp = gw ? dl_tensor_data(gw) : NULL;                           \
    T *gbp = gb ? dl_tensor_data(gb) : NULL;                                                                   \
    double M = (double)N;                                                                                      \
    _Pragma("omp parallel for if (N * C > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < BN_BLOCKS(C); b++) {   \
      BN_BLOCK_RANGE(b, C, c0, w);                                                                             \
      double sg[BN_CB], sgx[BN_CB];                                                                            \
      T mv[BN_CB], av[BN_CB], sv[BN_CB];                                                                       \
      for (int64_t c = 0; c < w; c++) {                                                                        \
        BN_COEFFS(T, c0 + c, m, a, s);                                                                         \
        mv[c] = m, av[c] = a, sv[c] = s, sg[c] = sgx[c] = 0;                                                   \
      }                                                                                                        \
      for (int64_t i = 0; i < N; i++) {                                                                        \
        const T *gr = gyp + i * C + c0, *xr = xp + i * C + c0;                                                 \
        for (int64_t c = 0; c < w; c++) {                                                                      \
          double g = relu ? RELU_PASS(FMA_##T(xr[c] - mv[c], av[c], sv[c]), gr[c]) : gr[c];                    \
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
            double g = relu ? RELU_PASS(FMA_##T(xr[c] - mv[c], av[c], sv[c]), gr[c]) : gr[c];                  \
            double xh = (xr[c] - (double)mp[c0 + c]) * (double)rp[c0 + c];                                     \
            gxr[c] = (T)(k[c] * (g - sg[c] - xh * sgx[c]));                                                    \
          }                                                                                                    \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
  } while (0)

int dl_cpu_bn_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gy, const dl_tensor *x,
                       int64_t N, int64_t C, int64_t L, const dl_tensor *mean, const dl_tensor *invstd,
                       const dl_tensor *weight, const dl_tensor *bias, bool relu) {
#define DATA(T, t) ((t) ? (T *)dl_tensor_data(t) : NULL)
  if (L == 1 && x->dtype == DL_FLOAT32) BN_BACKWARD_ROWS(float);
  else if (L == 1) BN_BACKWARD_ROWS(double);
  else if (x->dtype == DL_FLOAT32)
    backward_f(DATA(float, gx), DATA(float, gw), DATA(float, gb), dl_tensor_data(gy), dl_tensor_data(x), N, C, L,
               dl_tensor_data(mean), dl_tensor_data(invstd), DATA(const float, weight), DATA(const float, bias), relu);
  else
    backward_d(DATA(double, gx), DATA(double, gw), DATA(double, gb), dl_tensor_data(gy), dl_tensor_data(x), N, C, L,
               dl_tensor_data(mean), dl_tensor_data(invstd), DATA(const double, weight), DATA(const double, bias),
               relu);
#undef DATA
  return DL_KERNEL_OK;
}
