/* cpu_bn_c16.c — batch norm's training pass, a ReLU and optionally 2x2
 * stride-2 max pooling (src/ops/dl_layer.h: bn_relu_c16) over a
 * convolution's output kept in the layout oneDNN computes it in: blocks of
 * 16 channels, [N, C / 16, H, W, 16] (nChw16c). Reordering that output to
 * [N, C, H, W] and its gradient back costs as much as the batch norm
 * itself (12.8 MB each way for the CNN demo's first layer); here the
 * statistics, the normalised output (plain, the next layer's input) and
 * the gradient (blocked, the convolution's backward input) are computed
 * from the blocks directly, 16 channels a vector, each 2x2 window four
 * plain vector loads.
 *
 * The map is cpu_batch_norm.c's and cpu_bn_pool.c's: the same
 * pre-activation FMA(y - mean, invstd w, b), the same ReLU rule, the same
 * window winner (the first maximum, a NaN wins, the last) and the same
 * record (tap | pass << 2, and the winner's y). The statistics differ in
 * how they are summed (mostly one pass, block_stats), so values and
 * gradients equal the plain kernels' to float32 rounding.
 * Channel blocks run in parallel (the statistics and the gradient's sums
 * per block, in a fixed order: deterministic whatever the thread count). */
#include "../ops/dl_layer.h"
#include "cpu_iter.h"
#include "cpu_norm.h"

#include <math.h>
#include <string.h>

/* The helpers below pass vectors by value; all are static to this file, so
 * the calling convention a build without AVX-512 gives them is never seen
 * across files (GCC warns that it differs from an AVX-512 build's). */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint8_t v16b __attribute__((vector_size(16)));

#define PICK16(m, a, b) ((v16f)(((v16i)(a) & (m)) | ((v16i)(b) & ~(m))))
#define ZERO16 ((v16f){0})

/* (macros, as fma16 below: vectors by value in a call draw GCC's ABI
 * notes in builds without AVX-512) */
#define load16(p)            \
  ({                         \
    v16f v_;                 \
    memcpy(&v_, (p), sizeof v_); \
    v_;                      \
  })
#define store16(p, v)              \
  do {                             \
    const v16f s_ = (v);           \
    memcpy((p), &s_, sizeof s_);   \
  } while (0)

/* t a + s rounded once per lane, as the plain kernels' fmaf */
#if defined(__AVX512F__)
#include <immintrin.h>
#define fma16(t, a, s) ((v16f)_mm512_fmadd_ps((__m512)(t), (__m512)(a), (__m512)(s)))
#else
#define fma16(t, a, s)                                                        \
  ({                                                                           \
    const v16f t_ = (t), a_ = (a), s_ = (s);                                   \
    v16f r_;                                                                   \
    for (int l_ = 0; l_ < 16; l_++) r_[l_] = __builtin_fmaf(t_[l_], a_[l_], s_[l_]); \
    r_;                                                                        \
  })
#endif

/* the block of channels cb of image n: L positions of 16 channels */
#define BLOCK(p, n, cb) ((p) + (((n) * CB + (cb)) * L) * 16)

/* per-channel vectors of block cb */
static inline v16f chan16(const float *v, int64_t cb, float dflt) {
  v16f r;
  for (int l = 0; l < 16; l++) r[l] = v ? v[cb * 16 + l] : dflt;
  return r;
}

/* ---- statistics ---- */

/* Float lanes sum at most FLUSH terms each before they go to double (the
 * plain kernel's float sums run over 32 rows alike) */
#define FLUSH 128

/* the sums over every image of the block of d = y - k and of d^2, per
 * lane: float lanes over up to 2 FLUSH positions (two accumulators each),
 * then double */
static void block_sums(const float *y, int64_t N, int64_t CB, int64_t L, int64_t cb, const v16f *kp, double *s1,
                       double *s2) {
  const v16f k = *kp;
  for (int l = 0; l < 16; l++) s1[l] = s2[l] = 0;
  for (int64_t n = 0; n < N; n++) {
    const float *p = BLOCK(y, n, cb);
    for (int64_t i0 = 0; i0 < L; i0 += 2 * FLUSH) {
      const int64_t i1 = L - i0 < 2 * FLUSH ? L : i0 + 2 * FLUSH;
      v16f a[2] = {ZERO16, ZERO16}, q[2] = {ZERO16, ZERO16};
      int64_t i = i0;
      for (; i + 2 <= i1; i += 2)
        for (int j = 0; j < 2; j++) {
          const v16f d = load16(p + (i + j) * 16) - k;
          a[j] += d, q[j] += d * d;
        }
      if (i < i1) {
        const v16f d = load16(p + i * 16) - k;
        a[0] += d, q[0] += d * d;
      }
      const v16f u = a[0] + a[1], v = q[0] + q[1];
      for (int l = 0; l < 16; l++) s1[l] += u[l], s2[l] += v[l];
    }
  }
}

/* mean, biased var and invstd of the 16 channels of block cb, mostly in
 * one pass: the sums of d = y - k and d^2 about a first estimate k of the
 * mean, var = mean(d^2) - mean(d)^2 in double. That subtraction cancels
 * (mean - k)^2, so k is the mean of 64 samples spread over the images and
 * over each plane's rows (off by about std / 8 for most data); where it is
 * still more than a standard deviation off in some channel, the block's
 * squares are summed again about the mean (the plain kernel's second
 * pass), so an odd first image or a border never costs the variance its
 * precision */
static void block_stats(const float *y, int64_t N, int64_t CB, int64_t L, int64_t cb, float *mp, float *vp,
                        float *rp, double eps) {
  const double M = (double)(N * L);
  const int64_t n0 = N * L < 64 ? N * L : 64;
  double e[16] = {0}, s1[16], s2[16], mu[16], var[16];
  for (int64_t i = 0; i < n0; i++) { /* image i N / n0, position i L / n0: down the batch and each plane at once */
    const float *p = BLOCK(y, i * N / n0, cb) + (i * L / n0) * 16;
    for (int l = 0; l < 16; l++) e[l] += p[l];
  }
  v16f k;
  for (int l = 0; l < 16; l++) {
    const float f = (float)(e[l] / (double)n0);
    k[l] = isfinite(f) ? f : 0;
  }
  block_sums(y, N, CB, L, cb, &k, s1, s2);
  bool again = false;
  for (int l = 0; l < 16; l++) {
    const double dm = s1[l] / M;
    mu[l] = k[l] + dm, var[l] = s2[l] / M - dm * dm;
    again |= dm * dm > var[l]; /* (false for NaN: a NaN channel stays NaN) */
  }
  if (again) { /* the squares about the float mean: sum (y - m)^2 = sum (y - mu)^2 + M (mu - m)^2 */
    v16f mf;
    for (int l = 0; l < 16; l++) mf[l] = (float)mu[l];
    block_sums(y, N, CB, L, cb, &mf, s1, s2);
    for (int l = 0; l < 16; l++) {
      const double dm = mu[l] - (double)mf[l];
      var[l] = s2[l] / M - dm * dm;
    }
  }
  for (int l = 0; l < 16; l++) {
    const double vv = var[l] < 0 ? 0 : var[l]; /* (rounding below 0; NaN stays) */
    const int64_t c = cb * 16 + l;
    mp[c] = (float)mu[l];
    vp[c] = (float)vv;
    rp[c] = (float)(1.0 / sqrt(vv + eps));
  }
}

/* ---- the forward's outputs ---- */

/* the normalisation's map of block cb: pre-activation fma(y - mu, a, s) */
typedef struct {
  v16f mu, a, s;
} bn_map;

static bn_map map_of(int64_t cb, const float *mp, const float *rp, const float *wp, const float *bp) {
  bn_map m = {chan16(mp, cb, 0), chan16(rp, cb, 0), chan16(bp, cb, 0)};
  if (wp) m.a *= chan16(wp, cb, 1);
  return m;
}

#define relu16(p)                    \
  ({                                 \
    const v16f p_ = (p);             \
    PICK16(p_ < 0, ZERO16, p_);      \
  })

/* ---- between the blocks and the plain planes: 16x16 transposes ----
 * 16 positions of a block (a vector of 16 channels each) are 16 positions
 * of the block's 16 planes (a run of 16 floats each): a transpose in
 * registers, four rounds of 16 two-vector shuffles, moves between them. */

/* r[i][j] <-> r[j][i]: round k (b = 8, 4, 2, 1) swaps the off-diagonal
 * b x b blocks of every 2b x 2b block; lane c of row i comes from (row i,
 * row i + b) concatenated at MASK[k][0][c], of row i + b at MASK[k][1][c] */
static const v16i MASK[4][2] = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
     {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
};
#define ROUND(k, b)                                                                        \
  for (int i = 0; i < 16; i++)                                                             \
    if (!(i & (b))) {                                                                      \
      const v16f u_ = r[i], v_ = r[i + (b)];                                               \
      r[i] = __builtin_shuffle(u_, v_, MASK[k][0]), r[i + (b)] = __builtin_shuffle(u_, v_, MASK[k][1]); \
    }
static inline void transpose16(v16f *r) {
  ROUND(0, 8) ROUND(1, 4) ROUND(2, 2) ROUND(3, 1)
}
#undef ROUND

/* the first n (<= 16) floats of *v to dst, and from src (the rest 0): one
 * vector move, masked where the CPU has masks (a memcpy of a few bytes
 * costs more than the transpose) */
static inline void put16(float *dst, const v16f *v, int64_t n) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(dst, (__mmask16)((1u << n) - 1), (__m512)*v);
#else
  if (n == 16) memcpy(dst, v, sizeof *v);
  else
    for (int64_t l = 0; l < n; l++) dst[l] = (*v)[l];
#endif
}
static inline void get16(v16f *v, const float *src, int64_t n) {
#if defined(__AVX512F__)
  *v = (v16f)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), src);
#else
  if (n == 16) memcpy(v, src, sizeof *v);
  else {
    *v = ZERO16;
    for (int64_t l = 0; l < n; l++) (*v)[l] = src[l];
  }
#endif
}

/* Up to 16 consecutive positions of a block, from o0 on, on their way to
 * the block's 16 planes (of `plane` floats each, at out) */
typedef struct {
  v16f v[16];
  int n;
  int64_t o0;
} stage16;

static void stage_flush(stage16 *st, float *out, int64_t plane) {
  if (st->n == 0) return;
  for (int j = st->n; j < 16; j++) st->v[j] = ZERO16;
  transpose16(st->v);
  for (int l = 0; l < 16; l++) put16(out + l * plane + st->o0, &st->v[l], st->n);
  st->o0 += st->n, st->n = 0;
}

#define stage_push(st, out, plane, x)                      \
  do {                                                     \
    (st)->v[(st)->n++] = (x);                              \
    if ((st)->n == 16) stage_flush((st), (out), (plane));  \
  } while (0)

/* positions o0 .. o0 + n - 1 (n <= 16) of the 16 planes at g as vectors of
 * 16 channels, g16[0 .. n - 1] */
static void gather16(v16f *g16, const float *g, int64_t plane, int64_t o0, int64_t n) {
  for (int l = 0; l < 16; l++) get16(&g16[l], g + l * plane + o0, n);
  transpose16(g16);
}

/* relu(bn(y)) of block (n, cb) into out's 16 planes of L */
static void relu_block(float *out, const float *y, int64_t L, const bn_map *m) {
  stage16 st = {.n = 0, .o0 = 0};
  for (int64_t i = 0; i < L; i++) stage_push(&st, out, L, relu16(fma16(load16(y + i * 16) - m->mu, m->a, m->s)));
  stage_flush(&st, out, L);
}

/* the pooled block: each 2x2 window's winner of relu(bn(y)) into out's 16
 * planes of Ho x Wo, its record (tap | pass << 2, its y) into tap and xs
 * (blocked, [Ho, Wo, 16]) */
static void pool_block(float *out, uint8_t *tap, float *xs, const float *y, int64_t H, int64_t W, const bn_map *m) {
  const int64_t Ho = H / 2, Wo = W / 2, Lo = Ho * Wo;
  stage16 st = {.n = 0, .o0 = 0};
  for (int64_t ho = 0; ho < Ho; ho++) {
    const float *r0 = y + 2 * ho * W * 16, *r1 = r0 + W * 16;
    for (int64_t wo = 0; wo < Wo; wo++) {
      const int64_t o = ho * Wo + wo;
      const v16f t[4] = {load16(r0 + 2 * wo * 16), load16(r0 + (2 * wo + 1) * 16), load16(r1 + 2 * wo * 16),
                         load16(r1 + (2 * wo + 1) * 16)};
      v16f best = relu16(fma16(t[0] - m->mu, m->a, m->s)), x = t[0];
      v16i k = {0};
      for (int i = 1; i < 4; i++) {
        const v16f r = relu16(fma16(t[i] - m->mu, m->a, m->s));
        const v16i win = (r > best) | (r != r); /* the first maximum; a NaN wins, the last one */
        k = (win & i) | (k & ~win), best = PICK16(win, r, best), x = PICK16(win, t[i], x);
      }
      const v16i pass = ~(best <= 0) & 4;
      const v16b code = __builtin_convertvector(k | pass, v16b);
      memcpy(tap + o * 16, &code, sizeof code);
      store16(xs + o * 16, x);
      stage_push(&st, out, Lo, best);
    }
  }
  stage_flush(&st, out, Lo);
}

int dl_cpu_bn_relu_c16(dl_tensor *out, dl_tensor *tap, dl_tensor *xs, dl_tensor *mean, dl_tensor *var,
                       dl_tensor *invstd, const dl_tensor *y, int64_t N, int64_t C, int64_t H, int64_t W,
                       const dl_tensor *weight, const dl_tensor *bias, double eps, bool pool) {
  const int64_t CB = C / 16, L = H * W, Lo = pool ? (H / 2) * (W / 2) : L;
  const float *yp = dl_tensor_data(y), *wp = weight ? dl_tensor_data(weight) : NULL;
  const float *bp = bias ? dl_tensor_data(bias) : NULL;
  float *mp = dl_tensor_data(mean), *vp = dl_tensor_data(var), *rp = dl_tensor_data(invstd);
  float *op = dl_tensor_data(out), *sp = pool ? dl_tensor_data(xs) : NULL;
  uint8_t *tp = pool ? dl_tensor_data(tap) : NULL;
  /* each block's map, from the statistics' loop to the output's */
  bn_map maps[CB > 0 ? CB : 1];
  const bool par = N * C * L > DL_PARALLEL_GRAIN;
#pragma omp parallel if (par)
  {
#pragma omp for
    for (int64_t cb = 0; cb < CB; cb++) {
      block_stats(yp, N, CB, L, cb, mp, vp, rp, eps);
      maps[cb] = map_of(cb, mp, rp, wp, bp);
    }
#pragma omp for
    for (int64_t e = 0; e < N * CB; e++) {
      const int64_t n = e / CB, cb = e % CB;
      float *o = op + (n * C + cb * 16) * Lo;
      if (pool) pool_block(o, tp + e * Lo * 16, sp + e * Lo * 16, BLOCK(yp, n, cb), H, W, &maps[cb]);
      else relu_block(o, BLOCK(yp, n, cb), L, &maps[cb]);
    }
  }
  return DL_KERNEL_OK;
}

/* ---- backward ---- */

/* per lane of block cb: sg = sum g', sgx = sum g' (y - mu) over the
 * images, g' the output gradient where the ReLU passed it (at each
 * window's winner with pooling) */
static void grad_sums(const float *gp, const float *y, const uint8_t *tap, const float *xs, int64_t N, int64_t C,
                      int64_t H, int64_t W, int64_t cb, const bn_map *m, bool pool, double *sg, double *sgx) {
  const int64_t CB = C / 16, L = H * W, Lo = pool ? (H / 2) * (W / 2) : L;
  v16f g16[16];
  for (int l = 0; l < 16; l++) sg[l] = sgx[l] = 0;
  for (int64_t n = 0; n < N; n++) {
    const float *g = gp + (n * C + cb * 16) * Lo;
    const int64_t e = n * CB + cb;
    v16f u = ZERO16, v = ZERO16;
    for (int64_t i0 = 0; i0 < Lo; i0 += 16) { /* (FLUSH is a multiple of 16) */
      const int64_t w = Lo - i0 < 16 ? Lo - i0 : 16;
      gather16(g16, g, Lo, i0, w);
      for (int64_t j = 0; j < w; j++) {
        const int64_t i = i0 + j;
        v16f ge, d;
        if (pool) {
          v16b code;
          memcpy(&code, tap + (e * Lo + i) * 16, sizeof code);
          const v16i passes = (__builtin_convertvector(code, v16i) & 4) != 0;
          ge = PICK16(passes, g16[j], ZERO16), d = load16(xs + (e * Lo + i) * 16) - m->mu;
        } else {
          d = load16(BLOCK(y, n, cb) + i * 16) - m->mu;
          ge = PICK16(fma16(d, m->a, m->s) <= 0, ZERO16, g16[j]);
        }
        u += ge, v += ge * d;
      }
      if ((i0 + 16) % FLUSH == 0 || i0 + 16 >= Lo) { /* to double every FLUSH positions */
        for (int l = 0; l < 16; l++) sg[l] += u[l], sgx[l] += v[l];
        u = v = ZERO16;
      }
    }
  }
}

/* the input gradient's coefficients of block cb (bn_grad_coeffs per lane) */
typedef struct {
  v16f kf, slope, off;
} grad_map;

/* y's gradient of block (n, cb) without pooling: kf g' + slope (y - mu) + off */
static void relu_grad_block(float *gy, const float *g, const float *y, int64_t L, const bn_map *m,
                            const grad_map *k) {
  v16f g16[16];
  for (int64_t i0 = 0; i0 < L; i0 += 16) {
    const int64_t w = L - i0 < 16 ? L - i0 : 16;
    gather16(g16, g, L, i0, w);
    for (int64_t j = 0; j < w; j++) {
      const v16f d = load16(y + (i0 + j) * 16) - m->mu;
      const v16f ge = PICK16(fma16(d, m->a, m->s) <= 0, ZERO16, g16[j]);
      store16(gy + (i0 + j) * 16, fma16(ge, k->kf, fma16(d, k->slope, k->off)));
    }
  }
}

/* with pooling: kf g' at each window's winner, the rest of the expression
 * everywhere (elements no window covers: g' = 0) */
static void pool_grad_block(float *gy, const float *g, const float *y, const uint8_t *tap, int64_t H, int64_t W,
                            const bn_map *m, const grad_map *k) {
  const int64_t Ho = H / 2, Wo = W / 2, Lo = Ho * Wo;
  for (int64_t h = 0; h < H; h++)
    for (int64_t x = h < 2 * Ho ? 2 * Wo : 0; x < W; x++) {
      const int64_t i = (h * W + x) * 16;
      store16(gy + i, fma16(ZERO16, k->kf, fma16(load16(y + i) - m->mu, k->slope, k->off)));
    }
  v16f g16[16];
  int64_t ho = 0, wo = 0; /* of window o */
  for (int64_t o = 0; o < Lo; o++) {
    if (o % 16 == 0) gather16(g16, g, Lo, o, Lo - o < 16 ? Lo - o : 16);
    v16b code;
    memcpy(&code, tap + o * 16, sizeof code);
    const v16i kc = __builtin_convertvector(code, v16i), kt = kc & 3;
    const v16f ge = PICK16((kc & 4) != 0, g16[o % 16], ZERO16);
    const int64_t at[4] = {(2 * ho * W + 2 * wo) * 16, (2 * ho * W + 2 * wo + 1) * 16,
                           ((2 * ho + 1) * W + 2 * wo) * 16, ((2 * ho + 1) * W + 2 * wo + 1) * 16};
    for (int i = 0; i < 4; i++)
      store16(gy + at[i], fma16(PICK16(kt == i, ge, ZERO16), k->kf,
                                fma16(load16(y + at[i]) - m->mu, k->slope, k->off)));
    if (++wo == Wo) wo = 0, ho++;
  }
}

int dl_cpu_bn_relu_c16_backward(dl_tensor *gy, dl_tensor *gw, dl_tensor *gb, const dl_tensor *g, const dl_tensor *y,
                                const dl_tensor *tap, const dl_tensor *xs, int64_t N, int64_t C, int64_t H, int64_t W,
                                const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight,
                                const dl_tensor *bias, bool pool) {
  const int64_t CB = C / 16, L = H * W, Lo = pool ? (H / 2) * (W / 2) : L;
  const double M = (double)(N * L);
  const float *gp = dl_tensor_data(g), *yp = dl_tensor_data(y), *mp = dl_tensor_data(mean);
  const float *rp = dl_tensor_data(invstd), *wp = weight ? dl_tensor_data(weight) : NULL;
  const float *bp = bias ? dl_tensor_data(bias) : NULL, *sp = pool ? dl_tensor_data(xs) : NULL;
  const uint8_t *tp = pool ? dl_tensor_data(tap) : NULL;
  float *gyp = gy ? dl_tensor_data(gy) : NULL, *gwp = gw ? dl_tensor_data(gw) : NULL;
  float *gbp = gb ? dl_tensor_data(gb) : NULL;
  /* each block's map and gradient coefficients, from the first loop to the second */
  bn_map maps[CB > 0 ? CB : 1];
  grad_map kk[CB > 0 ? CB : 1];
  const bool par = N * C * L > DL_PARALLEL_GRAIN;
#pragma omp parallel if (par)
  {
#pragma omp for
    for (int64_t cb = 0; cb < CB; cb++) {
      maps[cb] = map_of(cb, mp, rp, wp, bp);
      double sg[16], sgx[16];
      grad_sums(gp, yp, tp, sp, N, C, H, W, cb, &maps[cb], pool, sg, sgx);
      for (int l = 0; l < 16; l++) {
        const int64_t c = cb * 16 + l;
        const double r = rp[c], sxr = sgx[l] * r;
        if (gwp) gwp[c] = (float)sxr;
        if (gbp) gbp[c] = (float)sg[l];
        double kd, sd, od;
        bn_grad_coeffs(r, wp ? (double)wp[c] : 1.0, sg[l], sxr, M, &kd, &sd, &od);
        kk[cb].kf[l] = (float)kd, kk[cb].slope[l] = (float)sd, kk[cb].off[l] = (float)od;
      }
    }
    if (gyp) {
#pragma omp for
      for (int64_t e = 0; e < N * CB; e++) {
        const int64_t n = e / CB, cb = e % CB;
        const float *g = gp + (n * C + cb * 16) * Lo;
        if (pool) pool_grad_block(BLOCK(gyp, n, cb), g, BLOCK(yp, n, cb), tp + e * Lo * 16, H, W, &maps[cb], &kk[cb]);
        else relu_grad_block(BLOCK(gyp, n, cb), g, BLOCK(yp, n, cb), L, &maps[cb], &kk[cb]);
      }
    }
  }
  return DL_KERNEL_OK;
}
