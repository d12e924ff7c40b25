/* cpu_bn_pool.c — batch norm, ReLU and 2x2 stride-2 max pooling as one
 * op (src/ops/dl_layer.h), a CNN's usual block after a convolution. Run
 * as three ops, the full-size activation is written by batch norm, read by
 * pooling, and its gradient written by pooling's backward and read by
 * batch norm's: here the forward writes the pooled output and a record of
 * each window's winner (its tap and whether the ReLU passes it, a byte, and
 * its x), a quarter of the activation's bytes and an eighth of max
 * pooling's int64 indices, and the backward reads the pooled gradient and
 * that record: its sums over the windows alone, its gradient pass x once.
 *
 * float32 runs 8 windows a step in portable vectors (taps split into even
 * and odd lanes, as the max-pooling row kernel); a window with a NaN tap
 * takes the scalar rule (the last NaN wins). float64 runs the scalar code. */
#include "../ops/dl_layer.h"
#include "cpu_iter.h"
#include "cpu_norm.h"

#include <math.h>
#include <string.h>

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

/* The taps of windows j0 .. j0 + n - 1 (n <= 8) of the row pair r0, r1:
 * straight from the tensor where a whole step can be read inside it (a step
 * reads on into the next row or plane, lanes past n that are never
 * stored), else from zero-padded copies (the last rows of the last plane) */
static inline void step8(const float *r0, const float *r1, int64_t j0, int64_t n, const float *xend, v8f t[4]) {
  if (r1 + 2 * j0 + 16 <= xend) {
    taps8(r0 + 2 * j0, r1 + 2 * j0, t);
  } else {
    float c0[16] = {0}, c1[16] = {0};
    memcpy(c0, r0 + 2 * j0, (size_t)(2 * n) * sizeof *c0), memcpy(c1, r1 + 2 * j0, (size_t)(2 * n) * sizeof *c1);
    taps8(c0, c1, t);
  }
}

/* the first n lanes of v to dst (a masked store where the CPU has one:
 * a call to memcpy for a few bytes costs more than the step) */
static inline void put8(float *dst, const v8f *v, int64_t n) {
  if (n == 8) {
    memcpy(dst, v, sizeof *v);
    return;
  }
#if defined(__AVX512F__) && defined(__AVX512VL__)
  _mm256_mask_storeu_ps(dst, (__mmask8)((1u << n) - 1), (__m256)*v);
#else
  memcpy(dst, v, (size_t)n * sizeof *dst);
#endif
}

/* the winners' record of 8 windows: tap (0..3) + 4 where the ReLU passes
 * the gradient (the max is > 0, or NaN), as bytes; their x */
typedef uint8_t v8b __attribute__((vector_size(8)));
static inline void record8(uint8_t *tap, float *xs, const v8f t[4], const v8f *m, const v8i *k, int64_t n) {
  const v8i pass = ~(*m <= 0) & 4;
  const v8b code = __builtin_convertvector(*k | pass, v8b);
  if (n == 8) memcpy(tap, &code, sizeof code);
  else
    for (int l = 0; l < n; l++) tap[l] = code[l];
  v8f x = t[0];
  for (int i = 1; i < 4; i++) x = PICK(*k == i, t[i], x);
  put8(xs, &x, n);
}

static void pool_plane_f(float *out, uint8_t *tap, float *xs, const float *x, int64_t H, int64_t W, float mu, float a,
                         float s, const float *xend) {
  const int64_t Ho = H / 2, Wo = W / 2;
  for (int64_t ho = 0; ho < Ho; ho++) {
    const float *r0 = x + 2 * ho * W, *r1 = r0 + W;
    float *o = out + ho * Wo;
    for (int64_t j0 = 0; j0 < Wo; j0 += 8) {
      const int64_t n = Wo - j0 < 8 ? Wo - j0 : 8;
      v8f t[4], m;
      v8i k, nan = {0};
      step8(r0, r1, j0, n, xend, t);
      win8(t, mu, a, s, &m, &k, &nan);
      if (any_lane(&nan, n))
        for (int l = 0; l < n; l++) {
          const float v[4] = {t[0][l], t[1][l], t[2][l], t[3][l]};
          float b;
          k[l] = winner_float(v, mu, a, s, &b), m[l] = b;
        }
      put8(o + j0, &m, n);
      if (tap) record8(tap + ho * Wo + j0, xs + ho * Wo + j0, t, &m, &k, n);
    }
  }
}

/* the sums over one plane's Lo windows from the forward's record: sg +=
 * g', sgx += g' (x - mu) with g' = gp where the ReLU passed it; 8 windows
 * a step (a plane of 7x7 windows is shorter than the compiler's vector
 * loop, whose scalar remainder then ran it all), reading on into the next
 * plane where the tensors go on (lanes past the plane masked) */
static void plane_sums_f(const uint8_t *tap, const float *xs, const float *gp, int64_t Lo, float mu, double *sg,
                         double *sgx, const uint8_t *tend) {
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
  v8f u = {0}, v = {0};
  for (int64_t i = 0; i < Lo; i += 8) {
    const int64_t n = Lo - i < 8 ? Lo - i : 8;
    v8b code = {0};
    v8f g = {0}, x = {0};
    if (tap + i + 8 <= tend) { /* tap, xs and gp share a layout: one bound for the three */
      memcpy(&code, tap + i, sizeof code), memcpy(&g, gp + i, sizeof g), memcpy(&x, xs + i, sizeof x);
    } else {
      for (int l = 0; l < n; l++) code[l] = tap[i + l], g[l] = gp[i + l], x[l] = xs[i + l];
    }
    const v8i in = lane < (int32_t)n, pass = (__builtin_convertvector(code, v8i) & 4) != 0;
    const v8f ge = PICK(in & pass, g, (v8f){0});
    u += ge, v += ge * PICK(in, x - mu, (v8f){0});
  }
  double a = 0, b = 0;
  for (int l = 0; l < 8; l++) a += u[l], b += v[l];
  *sg += a, *sgx += b;
}

/* the input gradient of one plane: base = slope (x - mu) + off everywhere,
 * plus kf g' at each window's winner (one expression for every element),
 * written window by window */
static void plane_grad_f(float *gx, const float *x, const uint8_t *tap, const float *gp, int64_t H, int64_t W,
                         float mu, float kf, float slope, float off, const float *xend, const uint8_t *tend,
                         const float *gend) {
  const int64_t Ho = H / 2, Wo = W / 2;
  /* the elements no window covers (a last column or row of odd sizes) */
  for (int64_t h = 0; h < H; h++)
    for (int64_t j = h < 2 * Ho ? 2 * Wo : 0; j < W; j++)
      gx[h * W + j] = __builtin_fmaf(kf, 0.0f, __builtin_fmaf(slope, x[h * W + j] - mu, off));
  const v8i lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = lo + 4;
  for (int64_t ho = 0; ho < Ho; ho++) {
    const float *r0 = x + 2 * ho * W, *r1 = r0 + W, *g = gp + ho * Wo;
    const uint8_t *tp = tap + ho * Wo;
    float *d0 = gx + 2 * ho * W, *d1 = d0 + W;
    for (int64_t j0 = 0; j0 < Wo; j0 += 8) {
      const int64_t n = Wo - j0 < 8 ? Wo - j0 : 8;
      v8f t[4], gv = {0}, r[4];
      v8b code = {0};
      step8(r0, r1, j0, n, xend, t);
      /* the record and the gradient of 8 windows (lanes past n unused) */
      if (tp + j0 + 8 <= tend && g + j0 + 8 <= gend) {
        memcpy(&code, tp + j0, sizeof code), memcpy(&gv, g + j0, sizeof gv);
      } else {
        for (int l = 0; l < n; l++) code[l] = tp[j0 + l], gv[l] = g[j0 + l];
      }
      const v8i kc = __builtin_convertvector(code, v8i), k = kc & 3;
      const v8f ge = PICK((kc & 4) != 0, gv, (v8f){0});
      for (int i = 0; i < 4; i++) /* base + kf g', the expression of every other element */
        r[i] = FMA8(PICK(k == i, ge, (v8f){0}), kf, FMA8(t[i] - mu, slope, BCAST8(off)));
      /* back to rows: taps 0, 1 interleaved are row 2 ho, taps 2, 3 row 2 ho + 1 */
      const v8f row0[2] = {__builtin_shuffle(r[0], r[1], lo), __builtin_shuffle(r[0], r[1], hi)};
      const v8f row1[2] = {__builtin_shuffle(r[2], r[3], lo), __builtin_shuffle(r[2], r[3], hi)};
      put8(d0 + 2 * j0, &row0[0], 2 * n < 8 ? 2 * n : 8), put8(d1 + 2 * j0, &row1[0], 2 * n < 8 ? 2 * n : 8);
      if (n > 4) put8(d0 + 2 * j0 + 8, &row0[1], 2 * n - 8), put8(d1 + 2 * j0 + 8, &row1[1], 2 * n - 8);
    }
  }
}

/* ---- float64: the scalar windows ---- */

static void pool_plane_d(double *out, uint8_t *tap, double *xs, const double *x, int64_t H, int64_t W, double mu,
                         double a, double s, const double *xend) {
  (void)xend; /* reads stay inside the windows */
  const int64_t Wo = W / 2;
  for (int64_t ho = 0; ho < H / 2; ho++) {
    const double *r0 = x + 2 * ho * W, *r1 = r0 + W;
    for (int64_t j = 0; j < Wo; j++) {
      double v[4], b;
      TAPS(v, r0, r1, j);
      const int w = winner_double(v, mu, a, s, &b);
      out[ho * Wo + j] = b;
      if (tap) tap[ho * Wo + j] = (uint8_t)(w | (b <= 0 ? 0 : 4)), xs[ho * Wo + j] = v[w];
    }
  }
}

static void plane_sums_d(const uint8_t *tap, const double *xs, const double *gp, int64_t Lo, double mu, double *sg,
                         double *sgx, const uint8_t *tend) {
  (void)tend; /* reads stay inside the plane */
  for (int64_t i = 0; i < Lo; i++) {
    const double g = tap[i] & 4 ? gp[i] : 0.0;
    *sg += g, *sgx += g * (xs[i] - mu);
  }
}

static void plane_grad_d(double *gx, const double *x, const uint8_t *tap, const double *gp, int64_t H, int64_t W,
                         double mu, double kf, double slope, double off, const double *xend, const uint8_t *tend,
                         const double *gend) {
  (void)xend, (void)tend, (void)gend; /* reads stay inside the windows */
  const int64_t Wo = W / 2;
  for (int64_t i = 0; i < H * W; i++) gx[i] = __builtin_fma(kf, 0.0, __builtin_fma(slope, x[i] - mu, off));
  for (int64_t ho = 0; ho < H / 2; ho++)
    for (int64_t j = 0; j < Wo; j++) {
      const int code = tap[ho * Wo + j], w = code & 3;
      const int64_t at = (2 * ho + (w >> 1)) * W + 2 * j + (w & 1);
      gx[at] = __builtin_fma(kf, code & 4 ? gp[ho * Wo + j] : 0.0, __builtin_fma(slope, x[at] - mu, off));
    }
}

/* ---- entries ---- */

int dl_cpu_bn_relu_pool(dl_tensor *out, dl_tensor *tap, dl_tensor *xs, const dl_tensor *x, int64_t N, int64_t C,
                        int64_t H, int64_t W, const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight,
                        const dl_tensor *bias) {
  const int64_t L = H * W, Lo = (H / 2) * (W / 2);
  uint8_t *tp = tap ? dl_tensor_data(tap) : NULL;
#define POOL_LOOP(T, PLANE_FN)                                                                          \
  do {                                                                                                  \
    const T *xp = dl_tensor_data(x), *mp = dl_tensor_data(mean), *rp = dl_tensor_data(invstd);          \
    const T *wp = weight ? dl_tensor_data(weight) : NULL, *bp = bias ? dl_tensor_data(bias) : NULL;     \
    T *op = dl_tensor_data(out), *sp = xs ? dl_tensor_data(xs) : NULL;                                  \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t e = 0; e < N * C; e++) { \
      const int64_t c = e % C;                                                                          \
      BN_COEFFS(T, c, m, a, s);                                                                         \
      PLANE_FN(op + e * Lo, tp ? tp + e * Lo : NULL, sp ? sp + e * Lo : NULL, xp + e * L, H, W, m, a, s,  \
               xp + N * C * L);                                                                         \
    }                                                                                                   \
  } while (0)
  if (x->dtype == DL_FLOAT32) POOL_LOOP(float, pool_plane_f);
  else POOL_LOOP(double, pool_plane_d);
#undef POOL_LOOP
  return DL_KERNEL_OK;
}

int dl_cpu_bn_relu_pool_backward(dl_tensor *gx, dl_tensor *gw, dl_tensor *gb, const dl_tensor *gp, const dl_tensor *x,
                                 const dl_tensor *tap, const dl_tensor *xs, int64_t N, int64_t C, int64_t H, int64_t W,
                                 const dl_tensor *mean, const dl_tensor *invstd, const dl_tensor *weight) {
  const int64_t L = H * W, Lo = (H / 2) * (W / 2);
  const double M = (double)(N * L);
  const uint8_t *tp = dl_tensor_data(tap);
  /* per channel: the sums over every plane's windows, then (with gx) each
   * plane's gradient (the forward's record carries the ReLU's pass, so the
   * bias is not needed) */
#define BACKWARD_LOOP(T, SUFFIX)                                                                            \
  do {                                                                                                      \
    const T *xp = dl_tensor_data(x), *gpp = dl_tensor_data(gp), *mp = dl_tensor_data(mean);                 \
    const T *rp = dl_tensor_data(invstd), *wp = weight ? dl_tensor_data(weight) : NULL, *sp = dl_tensor_data(xs); \
    T *gxp = gx ? dl_tensor_data(gx) : NULL, *gwp = gw ? dl_tensor_data(gw) : NULL;                         \
    T *gbp = gb ? dl_tensor_data(gb) : NULL;                                                                 \
    _Pragma("omp parallel for if (N * C * L > DL_PARALLEL_GRAIN)") for (int64_t c = 0; c < C; c++) {        \
      const T mu = mp[c];                                                                                   \
      const double r = rp[c];                                                                               \
      double sg = 0, sgx = 0;                                                                               \
      for (int64_t i = 0; i < N; i++) {                                                                     \
        const int64_t e = i * C + c;                                                                        \
        plane_sums_##SUFFIX(tp + e * Lo, sp + e * Lo, gpp + e * Lo, Lo, mu, &sg, &sgx, tp + N * C * Lo);    \
      }                                                                                                     \
      sgx *= r;                                                                                             \
      if (gwp) gwp[c] = (T)sgx;                                                                             \
      if (gbp) gbp[c] = (T)sg;                                                                              \
      if (!gxp) continue;                                                                                   \
      double kd, sd, od;                                                                                    \
      bn_grad_coeffs(r, wp ? (double)wp[c] : 1.0, sg, sgx, M, &kd, &sd, &od);                               \
      const T kf = (T)kd, slope = (T)sd, off = (T)od;                                                       \
      for (int64_t i = 0; i < N; i++) {                                                                     \
        const int64_t e = i * C + c;                                                                        \
        plane_grad_##SUFFIX(gxp + e * L, xp + e * L, tp + e * Lo, gpp + e * Lo, H, W, mu, kf, slope, off,   \
                            xp + N * C * L, tp + N * C * Lo, gpp + N * C * Lo);                             \
      }                                                                                                     \
    }                                                                                                       \
  } while (0)
  if (x->dtype == DL_FLOAT32) BACKWARD_LOOP(float, f);
  else BACKWARD_LOOP(double, d);
#undef BACKWARD_LOOP
  return DL_KERNEL_OK;
}
