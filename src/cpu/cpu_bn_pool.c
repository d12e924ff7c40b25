/* cpu_bn_pool.c — batch norm, ReLU and 2x2 stride-2 max pooling as one
 * op (src/ops/dl_layer.h), a CNN's usual block after a convolution. Run
 * as three ops, the full-size activation is written by batch norm, read by
 * pooling, and its gradient written by pooling's backward and read by
 * batch norm's: here the forward writes only the pooled output, and the
 * backward reads the pooled gradient and recomputes each window's winner
 * from x (the same fused multiply-add and comparisons as the forward), so
 * no indices are kept either.
 *
 * float32 runs 8 windows a step in portable vectors (taps split into even
 * and odd lanes, as the max-pooling row kernel); a window with a NaN tap
 * takes the scalar rule (the last NaN wins). float64 runs the scalar code. */
#include "../ops/dl_layer.h"
#include "cpu_iter.h"
#include "cpu_norm.h"

#include <math.h>
#include <string.h>

/* element (i, c, 0) of a contiguous [N, C, L] tensor */
#define PLANE(p, i, c) ((p) + ((i) * C + (c)) * L)

/* ---- the scalar window (float64, and float32 windows with a NaN) ---- */

/* which of the taps v[0..3] (row-major in the window) wins: the first
 * maximum of relu((v - mu) a + s), a NaN the last; *best its value */
#define WINNER(T)                                                                     \
  static inline int winner_##T(const T v[4], T mu, T a, T s, T *best) {               \
    T m = 0;                                                                          \
    int k = 0;                                                                        \
    for (int i = 0; i < 4; i++) {                                                     \
      const T p = FMA_##T(v[i] - mu, a, s), r = RELU_OUT(p);                          \
      if (i == 0 || r > m || r != r) m = r, k = i;                                    \
    }                                                                                 \
    *best = m;                                                                        \
    return k;                                                                         \
  }
WINNER(float)
WINNER(double)

/* the taps of window j of the row pair r0, r1 */
#define TAPS(v, r0, r1, j) \
  v[0] = (r0)[2 * (j)], v[1] = (r0)[2 * (j) + 1], v[2] = (r1)[2 * (j)], v[3] = (r1)[2 * (j) + 1]

/* ---- float32: 8 windows a step ---- */

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

/* lanes of a where m is set, else of b */
#define PICK(m, a, b) ((v8f)(((v8i)(a) & (m)) | ((v8i)(b) & ~(m))))

/* the taps of 8 windows whose row pair starts at r0, r1 (16 floats each):
 * t[0] top-left .. t[3] bottom-right */
static inline void taps8(const float *r0, const float *r1, v8f t[4]) {
  v8f a, b, c, d;
  memcpy(&a, r0, sizeof a), memcpy(&b, r0 + 8, sizeof b), memcpy(&c, r1, sizeof c), memcpy(&d, r1 + 8, sizeof d);
  const v8i even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = even + 1;
  t[0] = __builtin_shuffle(a, b, even), t[1] = __builtin_shuffle(a, b, odd);
  t[2] = __builtin_shuffle(c, d, even), t[3] = __builtin_shuffle(c, d, odd);
}

/* t a + s rounded once, as the kernels' __builtin_fmaf, whatever the
 * optimisation level: the FMA instruction where the build has it, else
 * lane by lane. (Macros and pointers, not vectors by value: the ABI of
 * those changes in builds without AVX.) */
#if defined(__FMA__) && defined(__AVX__)
#include <immintrin.h>
#define FMA8(t, a, s) ((v8f)_mm256_fmadd_ps((__m256)(t), _mm256_set1_ps(a), (__m256)(s)))
#else
#define FMA8(t, a, s)                                                         \
  ({                                                                           \
    const v8f t_ = (t), s_ = (s);                                              \
    v8f p_;                                                                    \
    for (int l_ = 0; l_ < 8; l_++) p_[l_] = __builtin_fmaf(t_[l_], a, s_[l_]); \
    p_;                                                                        \
  })
#endif
#define BCAST8(v) ((v8f){v, v, v, v, v, v, v, v})

/* whether any of the first n lanes of m is set */
static inline bool any_lane(const v8i *mask, int64_t n) {
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7}, none = {0};
  const v8i m = *mask & (lane < (int32_t)n);
  return memcmp(&m, &none, sizeof m) != 0;
}

/* the first maximum of relu((t - mu) a + s) over the 4 taps: its value,
 * the winning tap's number in *k; a NaN pre-activation sets lanes of *nan */
static inline void win8(const v8f t[4], float mu, float a, float s, v8f *best, v8i *k, v8i *nan) {
  v8f m = {0};
  v8i w = {0}, bad = {0};
  for (int i = 0; i < 4; i++) {
    const v8f p = FMA8(t[i] - mu, a, BCAST8(s));
    bad |= p != p;
    const v8f r = PICK(p < 0, (v8f){0}, p);
    if (i == 0) {
      m = r;
      continue;
    }
    const v8i gt = r > m;
    w = (gt & i) | (w & ~gt), m = PICK(gt, r, m);
  }
  *k = w, *nan |= bad;
  *best = m;
}

/* The taps of windows j0 .. j0 + n - 1 (n <= 8) of the row pair r0, r1, and
 * (g not NULL) their pooled gradients, zero in lanes past n: straight from
 * the tensors where a whole step can be read inside them (a step reads on
 * into the next row or plane: lanes past n are never stored, and pass8
 * neutralises them), else from zero-padded copies (the last rows of the
 * last plane). */
static inline void step8(const float *r0, const float *r1, const float *g, int64_t j0, int64_t n, const float *xend,
                         const float *gend, v8f t[4], v8f *gv) {
  if (r1 + 2 * j0 + 16 <= xend) {
    taps8(r0 + 2 * j0, r1 + 2 * j0, t);
  } else {
    float c0[16] = {0}, c1[16] = {0};
    memcpy(c0, r0 + 2 * j0, (size_t)(2 * n) * sizeof *c0), memcpy(c1, r1 + 2 * j0, (size_t)(2 * n) * sizeof *c1);
    taps8(c0, c1, t);
  }
  if (!g) return;
  if (g + j0 + 8 <= gend) {
    memcpy(gv, g + j0, sizeof *gv);
  } else {
    float cg[8] = {0};
    memcpy(cg, g + j0, (size_t)n * sizeof *cg);
    memcpy(gv, cg, sizeof *gv);
  }
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  *gv = PICK(lane < (int32_t)n, *gv, (v8f){0});
}

static void pool_plane_f(float *out, const float *x, int64_t H, int64_t W, float mu, float a, float s,
                         const float *xend) {
  const int64_t Ho = H / 2, Wo = W / 2;
  for (int64_t ho = 0; ho < Ho; ho++) {
    const float *r0 = x + 2 * ho * W, *r1 = r0 + W;
    float *o = out + ho * Wo;
    for (int64_t j0 = 0; j0 < Wo; j0 += 8) {
      const int64_t n = Wo - j0 < 8 ? Wo - j0 : 8;
      v8f t[4];
      v8i k, nan = {0};
      step8(r0, r1, NULL, j0, n, xend, NULL, t, NULL);
      v8f m;
      win8(t, mu, a, s, &m, &k, &nan);
      if (n == 8) memcpy(o + j0, &m, sizeof m);
      else memcpy(o + j0, &m, (size_t)n * sizeof *o);
      if (any_lane(&nan, n))
        for (int64_t j = j0; j < j0 + n; j++) {
          float v[4];
          TAPS(v, r0, r1, j);
          winner_float(v, mu, a, s, &o[j]);
        }
    }
  }
}

/* One step of 8 windows of the backward: the gradient each window passes
 * on (gv where the ReLU let its winner through, else 0), the winner's tap
 * in *k and its x in *xk. NaN windows take the scalar rule. */
static inline void pass8(const v8f t[4], const v8f *gv, int64_t n, float mu, float a, float s, v8f *ge, v8i *k,
                         v8f *xk) {
  v8i nan = {0};
  v8f m;
  win8(t, mu, a, s, &m, k, &nan);
  v8f g = PICK(m > 0, *gv, (v8f){0});
  if (any_lane(&nan, n))
    for (int l = 0; l < n; l++) {
      const float v[4] = {t[0][l], t[1][l], t[2][l], t[3][l]};
      float b;
      const int w = winner_float(v, mu, a, s, &b);
      (*k)[l] = w, g[l] = RELU_PASS(b, (*gv)[l]);
    }
  v8f x = t[0];
  for (int i = 1; i < 4; i++) x = PICK(*k == i, t[i], x);
  /* lanes past n read the next row (or plane): mu there, so 0 (x - mu) never meets an infinity */
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  *xk = PICK(lane < (int32_t)n, x, BCAST8(mu)), *ge = g;
}

/* sums over one plane: sg += g', sgx += g' (x - mu) with g' the gradient
 * at each window's winner */
static void plane_sums_f(const float *x, const float *gp, int64_t H, int64_t W, float a, float s, float mu, double *sg,
                         double *sgx, const float *xend, const float *gend) {
  const int64_t Ho = H / 2, Wo = W / 2;
  v8f ag = {0}, ax = {0};
  for (int64_t ho = 0; ho < Ho; ho++) {
    const float *r0 = x + 2 * ho * W, *r1 = r0 + W, *g = gp + ho * Wo;
    for (int64_t j0 = 0; j0 < Wo; j0 += 8) {
      const int64_t n = Wo - j0 < 8 ? Wo - j0 : 8;
      v8f t[4], gv = {0}, xk;
      v8i k;
      step8(r0, r1, g, j0, n, xend, gend, t, &gv);
      v8f ge;
      pass8(t, &gv, n, mu, a, s, &ge, &k, &xk);
      ag += ge, ax += ge * (xk - mu);
    }
  }
  double u = 0, v = 0;
  for (int l = 0; l < 8; l++) u += ag[l], v += ax[l];
  *sg += u, *sgx += v;
}

/* the input gradient of one plane: base = slope (x - mu) + off everywhere,
 * plus kf g' at each window's winner (one expression for every element),
 * written window by window */
static void plane_grad_f(float *gx, const float *x, const float *gp, int64_t H, int64_t W, float a, float s, float mu,
                         float kf, float slope, float off, const float *xend, const float *gend) {
  const int64_t Ho = H / 2, Wo = W / 2;
  /* the elements no window covers (a last column or row of odd sizes) */
  for (int64_t h = 0; h < H; h++)
    for (int64_t j = h < 2 * Ho ? 2 * Wo : 0; j < W; j++)
      gx[h * W + j] = __builtin_fmaf(kf, 0.0f, __builtin_fmaf(slope, x[h * W + j] - mu, off));
  const v8i lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = lo + 4;
  for (int64_t ho = 0; ho < Ho; ho++) {
    const float *r0 = x + 2 * ho * W, *r1 = r0 + W, *g = gp + ho * Wo;
    float *d0 = gx + 2 * ho * W, *d1 = d0 + W;
    for (int64_t j0 = 0; j0 < Wo; j0 += 8) {
      const int64_t n = Wo - j0 < 8 ? Wo - j0 : 8;
      v8f t[4], gv = {0}, xk, r[4];
      v8i k;
      step8(r0, r1, g, j0, n, xend, gend, t, &gv);
      v8f ge;
      pass8(t, &gv, n, mu, a, s, &ge, &k, &xk);
      for (int i = 0; i < 4; i++) /* base + kf g', the expression of every other element */
        r[i] = FMA8(PICK(k == i, ge, (v8f){0}), kf, FMA8(t[i] - mu, slope, BCAST8(off)));
      /* back to rows: taps 0, 1 interleaved are row 2 ho, taps 2, 3 row 2 ho + 1 */
      const v8f row0[2] = {__builtin_shuffle(r[0], r[1], lo), __builtin_shuffle(r[0], r[1], hi)};
      const v8f row1[2] = {__builtin_shuffle(r[2], r[3], lo), __builtin_shuffle(r[2], r[3], hi)};
      if (n == 8) { /* vector by vector (one wide copy of the pair stalls on store forwarding) */
        memcpy(d0 + 2 * j0, &row0[0], sizeof row0[0]), memcpy(d0 + 2 * j0 + 8, &row0[1], sizeof row0[1]);
        memcpy(d1 + 2 * j0, &row1[0], sizeof row1[0]), memcpy(d1 + 2 * j0 + 8, &row1[1], sizeof row1[1]);
      } else {
        memcpy(d0 + 2 * j0, row0, (size_t)(2 * n) * sizeof *d0);
        memcpy(d1 + 2 * j0, row1, (size_t)(2 * n) * sizeof *d1);
      }
    }
  }
}

/* ---- float64: the scalar windows ---- */

static void pool_plane_d(double *out, const double *x, int64_t H, int64_t W, double mu, double a, double s,
                         const double *xend) {
  (void)xend; /* reads stay inside the windows */
  for (int64_t ho = 0; ho < H / 2; ho++) {
    const double *r0 = x + 2 * ho * W, *r1 = r0 + W;
    for (int64_t j = 0; j < W / 2; j++) {
      double v[4];
      TAPS(v, r0, r1, j);
      winner_double(v, mu, a, s, &out[ho * (W / 2) + j]);
    }
  }
}

/* the sums (gx == NULL), or the input gradient from them */
static void plane_backward_d(double *gx, const double *x, const double *gp, int64_t H, int64_t W, double a, double s,
                             double mu, double *sg, double *sgx, double kf, double slope, double off) {
  const int64_t Wo = W / 2;
  if (gx)
    for (int64_t i = 0; i < H * W; i++) gx[i] = __builtin_fma(kf, 0.0, __builtin_fma(slope, x[i] - mu, off));
  for (int64_t ho = 0; ho < H / 2; ho++) {
    const double *r0 = x + 2 * ho * W, *r1 = r0 + W;
    for (int64_t j = 0; j < Wo; j++) {
      double v[4], b;
      TAPS(v, r0, r1, j);
      const int w = winner_double(v, mu, a, s, &b);
      const double ge = RELU_PASS(b, gp[ho * Wo + j]);
      if (gx)
        gx[(2 * ho + (w >> 1)) * W + 2 * j + (w & 1)] = __builtin_fma(kf, ge, __builtin_fma(slope, v[w] - mu, off));
      else
        *sg += ge, *sgx += ge * (v[w] - mu);
    }
  }
}

/* ---- entries ---- */

int dl_cpu_bn_relu_pool(dl_tensor *out, const dl_tensor *x, int64_t N, int64_t C, int64_t H, int64_t W,
                        const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias) {
  const int64_t L = H * W, Lo = (H / 2) * (W / 2);
#define POOL_LOOP(T, PLANE_FN)                                                                        \
  do {                                                                                                \
    const T *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean), *rp = dl_tensor_data(invstd);        \
    const T *wp = weight ? dl_tensor_data(weight) : NULL, *bp = bias ? dl_tensor_data(bias) : NULL;   \
    T *op = dl_tensor_data(out);                                                                      \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t e = 0; e < N * C; e++) { \
      const int64_t c = e % C;                                                                        \
      BN_COEFFS(T, c, m, a, s);                                                                       \
      PLANE_FN(op + e * Lo, xp + e * L, H, W, m, a, s, xp + N * C * L);                              \
    }                                                                                                 \
  } while (0)
  if (x->dtype == DL_FLOAT32) POOL_LOOP(float, pool_plane_f);
  else POOL_LOOP(double, pool_plane_d);
#undef POOL_LOOP
  return DL_KERNEL_OK;
}

int dl_cpu_bn_relu_pool_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gp, const dl_tensor *x,
                                 int64_t N, int64_t C, int64_t H, int64_t W, const dl_tensor *mean,
                                 const dl_tensor *invstd, const dl_tensor *weight, const dl_tensor *bias) {
  const int64_t L = H * W, Lo = (H / 2) * (W / 2);
  const double M = (double)(N * L);
  /* per channel: the sums over every plane, then (with gx) each plane's gradient */
#define BACKWARD_LOOP(T, SUMS, GRAD)                                                                   \
  do {                                                                                                 \
    const T *xp = dl_tensor_data(x), *gpp = dl_tensor_data(gp), *mp = dl_tensor_data(mean);            \
    const T *rp = dl_tensor_data(invstd), *wp = weight ? dl_tensor_data(weight) : NULL;                \
    const T *bp = bias ? dl_tensor_data(bias) : NULL;                                                   \
    T *gxp = gx ? dl_tensor_data(gx) : NULL, *gwp = gw ? dl_tensor_data(gw) : NULL;                    \
    T *gbp = gb ? dl_tensor_data(gb) : NULL;                                                            \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t c = 0; c < C; c++) {   \
      BN_COEFFS(T, c, mu, a, s);                                                                       \
      const double r = rp[c];                                                                          \
      double sg = 0, sgx = 0;                                                                          \
      for (int64_t i = 0; i < N; i++) SUMS;                                                            \
      sgx *= r;                                                                                        \
      if (gwp) gwp[c] = (T)sgx;                                                                        \
      if (gbp) gbp[c] = (T)sg;                                                                         \
      if (!gxp) continue;                                                                              \
      const double k = r * (wp ? (double)wp[c] : 1.0);                                                 \
      const T kf = (T)k, off = (T)(-k * (sg / M)), slope = (T)(-k * r * (sgx / M));                    \
      for (int64_t i = 0; i < N; i++) GRAD;                                                            \
    }                                                                                                  \
  } while (0)
  if (x->dtype == DL_FLOAT32)
    BACKWARD_LOOP(float,
                  plane_sums_f(PLANE(xp, i, c), gpp + (i * C + c) * Lo, H, W, a, s, mu, &sg, &sgx, xp + N * C * L,
                               gpp + N * C * Lo),
                  plane_grad_f(PLANE(gxp, i, c), PLANE(xp, i, c), gpp + (i * C + c) * Lo, H, W, a, s, mu, kf, slope,
                               off, xp + N * C * L, gpp + N * C * Lo));
  else
    BACKWARD_LOOP(double,
                  plane_backward_d(NULL, PLANE(xp, i, c), gpp + (i * C + c) * Lo, H, W, a, s, mu, &sg, &sgx, 0, 0, 0),
                  plane_backward_d(PLANE(gxp, i, c), PLANE(xp, i, c), gpp + (i * C + c) * Lo, H, W, a, s, mu, NULL,
                                   NULL, kf, slope, off));
#undef BACKWARD_LOOP
  return DL_KERNEL_OK;
}
