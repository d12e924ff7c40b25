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
static inline float sig_float(float z) {
  float e = expf(-fabsf(z)), r = 1.0f / (1.0f + e);
  return z >= 0 ? r : e * r;
}
static inline double sig_double(double z) {
  double e = exp(-fabs(z)), r = 1.0 / (1.0 + e);
  return z >= 0 ? r : e * r;
}

/* One row of each cell, restrict-qualified so the loops over the units
 * vectorise (with libmvec's exp and tanh); the OpenMP loops over rows call
 * them (pointers captured by an OpenMP region lose their restrict). */
#define RNN_ROWS(S_, T, TANH)                                                                      \
  static void lstm_row_##S_(T *restrict h, T *restrict c1, const T *restrict g, const T *restrict c, \
                            int64_t H) {                                                           \
    for (int64_t j = 0; j < H; j++) {                                                              \
      const T i = sig_##T(g[j]), f = sig_##T(g[H + j]), gg = TANH(g[2 * H + j]), o = sig_##T(g[3 * H + j]); \
      const T cn = f * c[j] + i * gg;                                                              \
      c1[j] = cn;                                                                                  \
      h[j] = o * TANH(cn);                                                                         \
    }                                                                                              \
  }                                                                                                \
  static void lstm_bwd_row_##S_(T *restrict d, T *restrict dc, const T *restrict gh, const T *restrict gc1, \
                                const T *restrict g, const T *restrict c, const T *restrict c1, int64_t H) { \
    for (int64_t j = 0; j < H; j++) {                                                              \
      const T i = sig_##T(g[j]), f = sig_##T(g[H + j]), gg = TANH(g[2 * H + j]), o = sig_##T(g[3 * H + j]); \
      const T tc = TANH(c1[j]), dh = gh[j];                                                        \
      const T dcn = gc1[j] + dh * o * ((T)1 - tc * tc);                                            \
      d[j] = dcn * gg * i * ((T)1 - i);                                                            \
      d[H + j] = dcn * c[j] * f * ((T)1 - f);                                                      \
      d[2 * H + j] = dcn * i * ((T)1 - gg * gg);                                                   \
      d[3 * H + j] = dh * tc * o * ((T)1 - o);                                                     \
      dc[j] = dcn * f;                                                                             \
    }                                                                                              \
  }                                                                                                \
  static void gru_row_##S_(T *restrict h1, const T *restrict a, const T *restrict q, const T *restrict h, \
                           int64_t H) {                                                            \
    for (int64_t j = 0; j < H; j++) {                                                              \
      const T r = sig_##T(a[j] + q[j]), z = sig_##T(a[H + j] + q[H + j]);                          \
      const T n = TANH(a[2 * H + j] + r * q[2 * H + j]);                                           \
      h1[j] = n + z * (h[j] - n);                                                                  \
    }                                                                                              \
  }                                                                                                \
  static void gru_bwd_row_##S_(T *restrict da, T *restrict dq, T *restrict dh, const T *restrict go, \
                               const T *restrict a, const T *restrict q, const T *restrict h, int64_t H) { \
    for (int64_t j = 0; j < H; j++) {                                                              \
      const T r = sig_##T(a[j] + q[j]), z = sig_##T(a[H + j] + q[H + j]);                          \
      const T n = TANH(a[2 * H + j] + r * q[2 * H + j]);                                           \
      const T dn = go[j] * ((T)1 - z) * ((T)1 - n * n);                                            \
      const T dr = dn * q[2 * H + j] * r * ((T)1 - r), dz = go[j] * (h[j] - n) * z * ((T)1 - z);   \
      da[j] = dq[j] = dr;                                                                          \
      da[H + j] = dq[H + j] = dz;                                                                  \
      da[2 * H + j] = dn;                                                                          \
      dq[2 * H + j] = dn * r;                                                                      \
      dh[j] = go[j] * z;                                                                           \
    }                                                                                              \
  }

RNN_ROWS(f, float, tanhf)
RNN_ROWS(d, double, tanh)

#define DATA(t, T) ((T *)dl_tensor_data(t))

int dl_cpu_lstm_cell(dl_tensor *h, dl_tensor *c1, const dl_tensor *gates, const dl_tensor *c) {
  const int64_t B = c->ndim == 2 ? c->shape[0] : 1, H = c->shape[c->ndim - 1];
  const bool f32 = c->dtype == DL_FLOAT32;
#pragma omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)
  for (int64_t b = 0; b < B; b++) {
    if (f32) lstm_row_f(DATA(h, float) + b * H, DATA(c1, float) + b * H, DATA(gates, float) + b * 4 * H,
                        DATA(c, float) + b * H, H);
    else lstm_row_d(DATA(h, double) + b * H, DATA(c1, double) + b * H, DATA(gates, double) + b * 4 * H,
                    DATA(c, double) + b * H, H);
  }
  return DL_KERNEL_OK;
}

int dl_cpu_lstm_cell_backward(dl_tensor *dgates, dl_tensor *dc, const dl_tensor *gh, const dl_tensor *gc1,
                              const dl_tensor *gates, const dl_tensor *c, const dl_tensor *c1) {
  const int64_t B = c->ndim == 2 ? c->shape[0] : 1, H = c->shape[c->ndim - 1];
  const bool f32 = c->dtype == DL_FLOAT32;
#pragma omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)
  for (int64_t b = 0; b < B; b++) {
    const int64_t o = b * H;
    if (f32) lstm_bwd_row_f(DATA(dgates, float) + 4 * o, DATA(dc, float) + o, DATA(gh, float) + o,
                            DATA(gc1, float) + o, DATA(gates, float) + 4 * o, DATA(c, float) + o, DATA(c1, float) + o, H);
    else lstm_bwd_row_d(DATA(dgates, double) + 4 * o, DATA(dc, double) + o, DATA(gh, double) + o,
                        DATA(gc1, double) + o, DATA(gates, double) + 4 * o, DATA(c, double) + o, DATA(c1, double) + o,
                        H);
  }
  return DL_KERNEL_OK;
}

int dl_cpu_gru_cell(dl_tensor *h1, const dl_tensor *gi, const dl_tensor *gh, const dl_tensor *h) {
  const int64_t B = h->ndim == 2 ? h->shape[0] : 1, H = h->shape[h->ndim - 1];
  const bool f32 = h->dtype == DL_FLOAT32;
#pragma omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)
  for (int64_t b = 0; b < B; b++) {
    const int64_t o = b * H;
    if (f32) gru_row_f(DATA(h1, float) + o, DATA(gi, float) + 3 * o, DATA(gh, float) + 3 * o, DATA(h, float) + o, H);
    else gru_row_d(DATA(h1, double) + o, DATA(gi, double) + 3 * o, DATA(gh, double) + 3 * o, DATA(h, double) + o, H);
  }
  return DL_KERNEL_OK;
}

int dl_cpu_gru_cell_backward(dl_tensor *dgi, dl_tensor *dgh, dl_tensor *dh, const dl_tensor *g, const dl_tensor *gi,
                             const dl_tensor *gh, const dl_tensor *h) {
  const int64_t B = h->ndim == 2 ? h->shape[0] : 1, H = h->shape[h->ndim - 1];
  const bool f32 = h->dtype == DL_FLOAT32;
#pragma omp parallel for if (B * H * 8 > DL_PARALLEL_GRAIN)
  for (int64_t b = 0; b < B; b++) {
    const int64_t o = b * H;
    if (f32) gru_bwd_row_f(DATA(dgi, float) + 3 * o, DATA(dgh, float) + 3 * o, DATA(dh, float) + o,
                           DATA(g, float) + o, DATA(gi, float) + 3 * o, DATA(gh, float) + 3 * o, DATA(h, float) + o, H);
    else gru_bwd_row_d(DATA(dgi, double) + 3 * o, DATA(dgh, double) + 3 * o, DATA(dh, double) + o,
                       DATA(g, double) + o, DATA(gi, double) + 3 * o, DATA(gh, double) + 3 * o, DATA(h, double) + o, H);
  }
  return DL_KERNEL_OK;
}
