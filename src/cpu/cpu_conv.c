/* cpu_conv.c — CPU kernels of im2col and col2im (src/ops/dl_conv.h). Any
 * spatial rank up to 3 runs as 3-D with leading size-1 dims. im2col writes
 * each column row by runs: padding, then the strided source span, then
 * padding; col2im gives each (image, channel) plane to one thread, so the
 * sums need no atomics and are the same on every run. */
#include "../ops/dl_conv.h"
#include "cpu_conv.h"
#include "cpu_iter.h"

#include <math.h>

/* the windows o in [*a, *b) whose tap at offset `start` (= k d - lo) lands
 * inside [0, S): o s + start in [0, S) */
static void valid_span(int64_t start, int64_t s, int64_t S, int64_t O, int64_t *a, int64_t *b) {
  int64_t lo = start >= 0 ? 0 : (-start + s - 1) / s;
  int64_t hi = S - start <= 0 ? 0 : (S - start - 1) / s + 1;
  *a = lo < O ? lo : O;
  *b = hi < O ? hi : O;
  if (*b < *a) *b = *a;
}

#define CONV_FUNCS(S_, T)                                                                                    \
  static int im2col_##S_(dl_tensor *cols, int64_t sn, int64_t sr, const dl_tensor *x, int64_t N, int64_t C,   \
                         const int64_t *size, const int64_t *out, const dl_window *w) {                       \
    dl_window_geo g = dl_window_geometry(size, out, w);                                                                           \
    const T *xp = dl_tensor_data(x);                                                                          \
    T *cp = dl_tensor_data(cols), pad = (T)w->pad_value;                                                      \
    int64_t K = g.k[0] * g.k[1] * g.k[2], rows = C * K, L = g.O[0] * g.O[1] * g.O[2];                         \
    int64_t plane = g.S[0] * g.S[1] * g.S[2];                                                                 \
    _Pragma("omp parallel for if (N * rows * L >= DL_PARALLEL_GRAIN)")                                       \
    for (int64_t nr = 0; nr < N * rows; nr++) {                                                              \
      int64_t n = nr / rows, r = nr % rows, c = r / K, kk = r % K;                                            \
      int64_t k2 = kk % g.k[2], k1 = (kk / g.k[2]) % g.k[1], k0 = kk / (g.k[2] * g.k[1]);                     \
      const T *src = xp + (n * C + c) * plane;                                                                \
      T *dst = cp + n * sn + r * sr;                                                                          \
      int64_t st0 = k0 * g.d[0] - g.lo[0], st1 = k1 * g.d[1] - g.lo[1], st2 = k2 * g.d[2] - g.lo[2];          \
      int64_t a2, b2;                                                                                         \
      valid_span(st2, g.s[2], g.S[2], g.O[2], &a2, &b2);                                                      \
      for (int64_t o0 = 0; o0 < g.O[0]; o0++) {                                                               \
        int64_t i0 = o0 * g.s[0] + st0;                                                                       \
        for (int64_t o1 = 0; o1 < g.O[1]; o1++) {                                                             \
          int64_t i1 = o1 * g.s[1] + st1;                                                                     \
          T *d = dst + (o0 * g.O[1] + o1) * g.O[2];                                                           \
          if (i0 < 0 || i0 >= g.S[0] || i1 < 0 || i1 >= g.S[1]) {                                             \
            for (int64_t o2 = 0; o2 < g.O[2]; o2++) d[o2] = pad;                                              \
            continue;                                                                                         \
          }                                                                                                   \
          const T *row = src + (i0 * g.S[1] + i1) * g.S[2];                                                   \
          for (int64_t o2 = 0; o2 < a2; o2++) d[o2] = pad;                                                    \
          if (g.s[2] == 1)                                                                                    \
            for (int64_t o2 = a2; o2 < b2; o2++) d[o2] = row[o2 + st2];                                       \
          else                                                                                                \
            for (int64_t o2 = a2; o2 < b2; o2++) d[o2] = row[o2 * g.s[2] + st2];                              \
          for (int64_t o2 = b2; o2 < g.O[2]; o2++) d[o2] = pad;                                               \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
    return DL_KERNEL_OK;                                                                                      \
  }                                                                                                           \
  static int col2im_##S_(dl_tensor *x, const dl_tensor *cols, int64_t sn, int64_t sr, int64_t N, int64_t C,   \
                         const int64_t *size, const int64_t *out, const dl_window *w) {                       \
    dl_window_geo g = dl_window_geometry(size, out, w);                                                                           \
    T *xp = dl_tensor_data(x);                                                                                \
    const T *cp = dl_tensor_data(cols);                                                                       \
    int64_t K = g.k[0] * g.k[1] * g.k[2], L = g.O[0] * g.O[1] * g.O[2];                                       \
    int64_t plane = g.S[0] * g.S[1] * g.S[2];                                                                 \
    _Pragma("omp parallel for if (N * C * K * L >= DL_PARALLEL_GRAIN)")                                      \
    for (int64_t nc = 0; nc < N * C; nc++) {                                                                 \
      T *dst = xp + nc * plane;                                                                               \
      for (int64_t i = 0; i < plane; i++) dst[i] = 0;                                                         \
      for (int64_t kk = 0; kk < K; kk++) {                                                                    \
        int64_t k2 = kk % g.k[2], k1 = (kk / g.k[2]) % g.k[1], k0 = kk / (g.k[2] * g.k[1]);                   \
        const T *src = cp + (nc / C) * sn + ((nc % C) * K + kk) * sr;                                         \
        int64_t st0 = k0 * g.d[0] - g.lo[0], st1 = k1 * g.d[1] - g.lo[1], st2 = k2 * g.d[2] - g.lo[2];        \
        int64_t a2, b2;                                                                                       \
        valid_span(st2, g.s[2], g.S[2], g.O[2], &a2, &b2);                                                    \
        for (int64_t o0 = 0; o0 < g.O[0]; o0++) {                                                             \
          int64_t i0 = o0 * g.s[0] + st0;                                                                     \
          if (i0 < 0 || i0 >= g.S[0]) continue;                                                               \
          for (int64_t o1 = 0; o1 < g.O[1]; o1++) {                                                           \
            int64_t i1 = o1 * g.s[1] + st1;                                                                   \
            if (i1 < 0 || i1 >= g.S[1]) continue;                                                             \
            T *row = dst + (i0 * g.S[1] + i1) * g.S[2];                                                       \
            const T *s = src + (o0 * g.O[1] + o1) * g.O[2];                                                   \
            for (int64_t o2 = a2; o2 < b2; o2++) row[o2 * g.s[2] + st2] += s[o2];                             \
          }                                                                                                   \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
    return DL_KERNEL_OK;                                                                                      \
  }

/* the taps k in [*a, *b) of a window starting at `start` (= o s - lo) with
 * dilation d that land inside [0, S) */
static inline void tap_span(int64_t start, int64_t d, int64_t S, int64_t K, int64_t *a, int64_t *b) {
  int64_t lo, hi;
  if (d == 1) { /* no division (once per window: it would cost more than the taps) */
    lo = start >= 0 ? 0 : -start;
    hi = S - start;
  } else {
    lo = start >= 0 ? 0 : (-start + d - 1) / d;
    hi = S - start <= 0 ? 0 : (S - start - 1) / d + 1;
  }
  *a = lo < K ? lo : K;
  *b = hi < K ? hi : K;
  if (*b < *a) *b = *a;
}

/* One window at a time over its taps inside the image (ranges computed per
 * window), the geometry in locals (the stores cannot alias it), and no
 * branch on the data: which tap wins is random, and a branch per tap
 * mispredicts (13x slower on random input, measured), so the best is kept
 * by conditional moves; windows of 2x2 fully inside the image (the common
 * pooling) take an unrolled path. Only a strictly larger value replaces
 * the best, taps come in window order: the first maximum wins. A window
 * holding a NaN is redone by PyTorch's rule (the last NaN). */
#define MAXPOOL_FUNC(S_, T)                                                                                   \
  static int max_pool_##S_(dl_tensor *y, dl_tensor *idx, const dl_tensor *x, int64_t NC, const int64_t *size, \
                           const int64_t *out, const dl_window *w) {                                          \
    const dl_window_geo g = dl_window_geometry(size, out, w);                                                \
    const T *xp = dl_tensor_data(x);                                                                          \
    T *yp = dl_tensor_data(y);                                                                                \
    int64_t *ip = dl_tensor_data(idx);                                                                        \
    const int64_t L = g.O[0] * g.O[1] * g.O[2], plane = g.S[0] * g.S[1] * g.S[2];                             \
    _Pragma("omp parallel for if (NC * L * g.k[0] * g.k[1] * g.k[2] >= DL_PARALLEL_GRAIN)")                  \
    for (int64_t nc = 0; nc < NC; nc++) {                                                                    \
      const int64_t S0 = g.S[0], S1 = g.S[1], S2 = g.S[2], O0 = g.O[0], O1 = g.O[1], O2 = g.O[2];             \
      const int64_t K0 = g.k[0], K1 = g.k[1], K2 = g.k[2], st0 = g.s[0], st1 = g.s[1], st2 = g.s[2];          \
      const int64_t d0 = g.d[0], d1 = g.d[1], d2 = g.d[2], lo0 = g.lo[0], lo1 = g.lo[1], lo2 = g.lo[2];       \
      const bool two_by_two = K0 == 1 && K1 == 2 && K2 == 2 && d1 == 1 && d2 == 1;                            \
      const T *src = xp + nc * plane;                                                                         \
      T *dst = yp + nc * L;                                                                                   \
      int64_t *at = ip + nc * L, l = 0;                                                                       \
      for (int64_t o0 = 0; o0 < O0; o0++) {                                                                   \
        int64_t s0 = o0 * st0 - lo0, a0, b0;                                                                  \
        tap_span(s0, d0, S0, K0, &a0, &b0);                                                                   \
        for (int64_t o1 = 0; o1 < O1; o1++) {                                                                 \
          int64_t s1 = o1 * st1 - lo1, a1, b1;                                                                \
          tap_span(s1, d1, S1, K1, &a1, &b1);                                                                 \
          for (int64_t o2 = 0; o2 < O2; o2++, l++) {                                                          \
            int64_t s2 = o2 * st2 - lo2, a2, b2;                                                              \
            tap_span(s2, d2, S2, K2, &a2, &b2);                                                               \
            T best;                                                                                           \
            int64_t where;                                                                                    \
            int nan;                                                                                          \
            if (two_by_two && a1 == 0 && b1 == 2 && a2 == 0 && b2 == 2) {                                     \
              const int64_t i0 = (s0 * S1 + s1) * S2 + s2, i2 = i0 + S2;                                      \
              const T v0 = src[i0], v1 = src[i0 + 1], v2 = src[i2], v3 = src[i2 + 1];                        \
              best = v0, where = i0;                                                                          \
              where = v1 > best ? i0 + 1 : where, best = v1 > best ? v1 : best;                               \
              where = v2 > best ? i2 : where, best = v2 > best ? v2 : best;                                   \
              where = v3 > best ? i2 + 1 : where, best = v3 > best ? v3 : best;                               \
              nan = (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);                                        \
            } else {                                                                                          \
              where = ((s0 + a0 * d0) * S1 + s1 + a1 * d1) * S2 + s2 + a2 * d2; /* the first tap */           \
              best = src[where];                                                                              \
              nan = 0;                                                                                        \
              for (int64_t k0 = a0; k0 < b0; k0++)                                                            \
                for (int64_t k1 = a1; k1 < b1; k1++) {                                                        \
                  const int64_t row = ((s0 + k0 * d0) * S1 + s1 + k1 * d1) * S2 + s2;                         \
                  for (int64_t k2 = a2; k2 < b2; k2++) {                                                      \
                    const int64_t i = row + k2 * d2;                                                          \
                    const T v = src[i];                                                                       \
                    where = v > best ? i : where;                                                             \
                    best = v > best ? v : best;                                                               \
                    nan |= v != v;                                                                            \
                  }                                                                                           \
                }                                                                                             \
            }                                                                                                 \
            if (nan) /* PyTorch's rule: the last NaN */                                                       \
              for (int64_t k0 = a0; k0 < b0; k0++)                                                            \
                for (int64_t k1 = a1; k1 < b1; k1++)                                                          \
                  for (int64_t k2 = a2; k2 < b2; k2++) {                                                      \
                    const int64_t i = ((s0 + k0 * d0) * S1 + s1 + k1 * d1) * S2 + s2 + k2 * d2;               \
                    if (src[i] != src[i]) best = src[i], where = i;                                           \
                  }                                                                                           \
            dst[l] = best;                                                                                    \
            at[l] = where + 1; /* 1-based, as the engine's index ops take them */                             \
          }                                                                                                   \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
    return DL_KERNEL_OK;                                                                                      \
  }

CONV_FUNCS(f, float)
CONV_FUNCS(d, double)
MAXPOOL_FUNC(f, float)
MAXPOOL_FUNC(d, double)

static int cpu_max_pool(dl_tensor *y, dl_tensor *idx, const dl_tensor *x, int64_t NC, const int64_t *size,
                        const int64_t *out, const dl_window *w) {
  return x->dtype == DL_FLOAT32 ? max_pool_f(y, idx, x, NC, size, out, w) : max_pool_d(y, idx, x, NC, size, out, w);
}

static int cpu_im2col(dl_tensor *cols, int64_t sn, int64_t sr, const dl_tensor *x, int64_t N, int64_t C,
                      const int64_t *size, const int64_t *out, const dl_window *w) {
  return x->dtype == DL_FLOAT32 ? im2col_f(cols, sn, sr, x, N, C, size, out, w)
                                : im2col_d(cols, sn, sr, x, N, C, size, out, w);
}

static int cpu_col2im(dl_tensor *x, const dl_tensor *cols, int64_t sn, int64_t sr, int64_t N, int64_t C,
                      const int64_t *size, const int64_t *out, const dl_window *w) {
  return x->dtype == DL_FLOAT32 ? col2im_f(x, cols, sn, sr, N, C, size, out, w)
                                : col2im_d(x, cols, sn, sr, N, C, size, out, w);
}

const struct dl_conv_kernels dl_cpu_conv = {cpu_im2col, cpu_col2im, DL_CPU_CONV_FUSED, cpu_max_pool};
