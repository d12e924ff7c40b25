/* cpu_rnn.c — CPU kernels of the recurrent cells (src/ops/dl_layer.h):
 * each is one pass over its rows, the gate activations computed once and
 * kept in registers, so a step of an LSTM or GRU layer costs one
 * element-wise pass instead of a dozen (and one node in the graph instead
 * of a dozen). Operands are contiguous and of one float dtype. */
#include "../ops/dl_layer.h"
#include "cpu_iter.h"
#include "cpu_rnn.h"
#include "cpu_vecmath.h"

/* sigmoid as t:sigmoid() computes it (one exp of -|z|, never overflowing) */
#define SIG(T, z) sig_##T(z)
static inline float sig_float(float z) {
  float e = expf(-fabsf(z)), r = 1.0f / (1.0f + e);
  return z >= 0 ? r : e * r;
}
static inline double sig_double(double z) {
  double e = exp(-fabs(z)), r = 1.0 / (1.0 + e);
  return z >= 0 ? r : e * r;
}

#define LSTM_FWD(T, EXP, TANH)                                                                     \
  do {                                                                                             \
    const T *gp = dl_tensor_data(gates), *cp = dl_tensor_data(c);                                  \
    T *hp = dl_tensor_data(h), *c1p = dl_tensor_data(c1);                                          \
    _Pragma("omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < B; b++) { \
      const T *g = gp + b * 4 * H;                                                                 \
      for (int64_t j = 0; j < H; j++) {                                                            \
        const T i = SIG(T, g[j]), f = SIG(T, g[H + j]), gg = TANH(g[2 * H + j]), o = SIG(T, g[3 * H + j]); \
        const T cn = f * cp[b * H + j] + i * gg;                                                   \
        c1p[b * H + j] = cn;                                                                       \
        hp[b * H + j] = o * TANH(cn);                                                              \
      }                                                                                            \
    }                                                                                              \
  } while (0)

#define LSTM_BWD(T, EXP, TANH)                                                                     \
  do {                                                                                             \
    const T *ghp = gh ? dl_tensor_data(gh) : NULL, *gcp = gc1 ? dl_tensor_data(gc1) : NULL;        \
    const T *gp = dl_tensor_data(gates), *cp = dl_tensor_data(c), *c1p = dl_tensor_data(c1);       \
    T *dgp = dl_tensor_data(dgates), *dcp = dl_tensor_data(dc);                                    \
    _Pragma("omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < B; b++) { \
      const T *g = gp + b * 4 * H;                                                                 \
      T *d = dgp + b * 4 * H;                                                                      \
      for (int64_t j = 0; j < H; j++) {                                                            \
        const int64_t e = b * H + j;                                                               \
        const T i = SIG(T, g[j]), f = SIG(T, g[H + j]), gg = TANH(g[2 * H + j]), o = SIG(T, g[3 * H + j]); \
        const T tc = TANH(c1p[e]), dh = ghp ? ghp[e] : (T)0;                                       \
        const T dcn = (gcp ? gcp[e] : (T)0) + dh * o * ((T)1 - tc * tc);                            \
        d[j] = dcn * gg * i * ((T)1 - i);                                                          \
        d[H + j] = dcn * cp[e] * f * ((T)1 - f);                                                   \
        d[2 * H + j] = dcn * i * ((T)1 - gg * gg);                                                 \
        d[3 * H + j] = dh * tc * o * ((T)1 - o);                                                   \
        dcp[e] = dcn * f;                                                                          \
      }                                                                                            \
    }                                                                                              \
  } while (0)

#define GRU_FWD(T, EXP, TANH)                                                                      \
  do {                                                                                             \
    const T *ip = dl_tensor_data(gi), *hp_ = dl_tensor_data(gh), *h0 = dl_tensor_data(h);          \
    T *op = dl_tensor_data(h1);                                                                    \
    _Pragma("omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < B; b++) { \
      const T *a = ip + b * 3 * H, *q = hp_ + b * 3 * H;                                           \
      for (int64_t j = 0; j < H; j++) {                                                            \
        const T r = SIG(T, a[j] + q[j]), z = SIG(T, a[H + j] + q[H + j]);                          \
        const T n = TANH(a[2 * H + j] + r * q[2 * H + j]);                                         \
        op[b * H + j] = n + z * (h0[b * H + j] - n);                                               \
      }                                                                                            \
    }                                                                                              \
  } while (0)

#define GRU_BWD(T, EXP, TANH)                                                                      \
  do {                                                                                             \
    const T *gp = dl_tensor_data(g), *ip = dl_tensor_data(gi), *hp_ = dl_tensor_data(gh);          \
    const T *h0 = dl_tensor_data(h);                                                               \
    T *dip = dl_tensor_data(dgi), *dhp_ = dl_tensor_data(dgh), *dh0 = dl_tensor_data(dh);          \
    _Pragma("omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)") for (int64_t b = 0; b < B; b++) { \
      const T *a = ip + b * 3 * H, *q = hp_ + b * 3 * H;                                           \
      T *da = dip + b * 3 * H, *dq = dhp_ + b * 3 * H;                                             \
      for (int64_t j = 0; j < H; j++) {                                                            \
        const int64_t e = b * H + j;                                                               \
        const T r = SIG(T, a[j] + q[j]), z = SIG(T, a[H + j] + q[H + j]);                          \
        const T n = TANH(a[2 * H + j] + r * q[2 * H + j]), go = gp[e];                             \
        const T dn = go * ((T)1 - z) * ((T)1 - n * n);                                             \
        const T dr = dn * q[2 * H + j] * r * ((T)1 - r), dz = go * (h0[e] - n) * z * ((T)1 - z);   \
        da[j] = dq[j] = dr;                                                                        \
        da[H + j] = dq[H + j] = dz;                                                                \
        da[2 * H + j] = dn;                                                                        \
        dq[2 * H + j] = dn * r;                                                                    \
        dh0[e] = go * z;                                                                           \
      }                                                                                            \
    }                                                                                              \
  } while (0)

int dl_cpu_lstm_cell(dl_tensor *h, dl_tensor *c1, const dl_tensor *gates, const dl_tensor *c) {
  const int64_t B = c->ndim == 2 ? c->shape[0] : 1, H = c->shape[c->ndim - 1];
  if (c->dtype == DL_FLOAT32) LSTM_FWD(float, expf, tanhf);
  else LSTM_FWD(double, exp, tanh);
  return DL_KERNEL_OK;
}

int dl_cpu_lstm_cell_backward(dl_tensor *dgates, dl_tensor *dc, const dl_tensor *gh, const dl_tensor *gc1,
                              const dl_tensor *gates, const dl_tensor *c, const dl_tensor *c1) {
  const int64_t B = c->ndim == 2 ? c->shape[0] : 1, H = c->shape[c->ndim - 1];
  if (c->dtype == DL_FLOAT32) LSTM_BWD(float, expf, tanhf);
  else LSTM_BWD(double, exp, tanh);
  return DL_KERNEL_OK;
}

int dl_cpu_gru_cell(dl_tensor *h1, const dl_tensor *gi, const dl_tensor *gh, const dl_tensor *h) {
  const int64_t B = h->ndim == 2 ? h->shape[0] : 1, H = h->shape[h->ndim - 1];
  if (h->dtype == DL_FLOAT32) GRU_FWD(float, expf, tanhf);
  else GRU_FWD(double, exp, tanh);
  return DL_KERNEL_OK;
}

int dl_cpu_gru_cell_backward(dl_tensor *dgi, dl_tensor *dgh, dl_tensor *dh, const dl_tensor *g, const dl_tensor *gi,
                             const dl_tensor *gh, const dl_tensor *h) {
  const int64_t B = h->ndim == 2 ? h->shape[0] : 1, H = h->shape[h->ndim - 1];
  if (h->dtype == DL_FLOAT32) GRU_BWD(float, expf, tanhf);
  else GRU_BWD(double, exp, tanh);
  return DL_KERNEL_OK;
}
