/* cpu_conv.c — CPU kernels of im2col and col2im (src/ops/dl_conv.h). Any
 * spatial rank up to 3 runs as 3-D with leading size-1 dims. im2col writes
 * each column row by runs: padding, then the strided source span, then
 * padding; col2im gives each (image, channel) plane to one thread, so the
 * sums need no atomics and are the same on every run. */
#include "../ops/dl_conv.h"
#include "cpu_conv.h"
#include "cpu_iter.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

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

/* Max pooling, one window at a time over its taps inside the image (ranges
 * computed per window), with no branch on the data: which tap wins is
 * random, and a branch per tap mispredicts (13x slower on random input,
 * measured), so the best is kept by conditional moves. Only a strictly
 * larger value replaces the best and taps come in window order, so the
 * first maximum wins; a window holding a NaN is redone by PyTorch's rule
 * (the last NaN). The common pooling — 2x2 windows, stride 2, no dilation —
 * takes a row loop over the windows fully inside the image, written so the
 * compiler vectorises it (two source rows in, one output row out); a row
 * that met a NaN is redone window by window. */
#define MAXPOOL_FUNC(S_, T)                                                                                   \
  static inline void max_window_##S_(const T *src, const dl_window_geo *g, int64_t s0, int64_t s1, int64_t s2, \
                                     T *best_out, int64_t *where_out) {                                       \
    int64_t a0, b0, a1, b1, a2, b2;                                                                           \
    tap_span(s0, g->d[0], g->S[0], g->k[0], &a0, &b0);                                                        \
    tap_span(s1, g->d[1], g->S[1], g->k[1], &a1, &b1);                                                        \
    tap_span(s2, g->d[2], g->S[2], g->k[2], &a2, &b2);                                                        \
    const int64_t S1 = g->S[1], S2 = g->S[2], d0 = g->d[0], d1 = g->d[1], d2 = g->d[2];                       \
    int64_t where = ((s0 + a0 * d0) * S1 + s1 + a1 * d1) * S2 + s2 + a2 * d2; /* the first tap */             \
    T best = src[where];                                                                                      \
    int nan = 0;                                                                                              \
    for (int64_t k0 = a0; k0 < b0; k0++)                                                                      \
      for (int64_t k1 = a1; k1 < b1; k1++) {                                                                  \
        const int64_t row = ((s0 + k0 * d0) * S1 + s1 + k1 * d1) * S2 + s2;                                   \
        for (int64_t k2 = a2; k2 < b2; k2++) {                                                                \
          const int64_t i = row + k2 * d2;                                                                    \
          const T v = src[i];                                                                                 \
          where = v > best ? i : where;                                                                       \
          best = v > best ? v : best;                                                                         \
          nan |= v != v;                                                                                      \
        }                                                                                                     \
      }                                                                                                       \
    if (nan) /* PyTorch's rule: the last NaN */                                                               \
      for (int64_t k0 = a0; k0 < b0; k0++)                                                                    \
        for (int64_t k1 = a1; k1 < b1; k1++)                                                                  \
          for (int64_t k2 = a2; k2 < b2; k2++) {                                                              \
            const int64_t i = ((s0 + k0 * d0) * S1 + s1 + k1 * d1) * S2 + s2 + k2 * d2;                       \
            if (src[i] != src[i]) best = src[i], where = i;                                                   \
          }                                                                                                   \
    *best_out = best, *where_out = where;                                                                     \
  }                                                                                                           \
  static int max_pool_##S_(dl_tensor *y, dl_tensor *idx, const dl_tensor *x, int64_t NC, const int64_t *size, \
                           const int64_t *out, const dl_window *w) {                                          \
    const dl_window_geo g = dl_window_geometry(size, out, w);                                                \
    const T *xp = dl_tensor_data(x);                                                                          \
    T *yp = dl_tensor_data(y);                                                                                \
    int64_t *ip = dl_tensor_data(idx);                                                                        \
    const int64_t L = g.O[0] * g.O[1] * g.O[2], plane = g.S[0] * g.S[1] * g.S[2];                             \
    const int64_t S1 = g.S[1], S2 = g.S[2], O0 = g.O[0], O1 = g.O[1], O2 = g.O[2];                            \
    /* the 2x2 stride-2 row path, over the windows [fa, fb) inside the image along the last dim */           \
    const bool row_2x2 = g.k[0] == 1 && g.k[1] == 2 && g.k[2] == 2 && g.d[1] == 1 && g.d[2] == 1 &&           \
                         g.s[2] == 2;                                                                         \
    int64_t fa = (g.lo[2] + 1) / 2, fb = S2 - 2 + g.lo[2] < 0 ? 0 : (S2 - 2 + g.lo[2]) / 2 + 1;               \
    fb = fb > O2 ? O2 : fb, fa = fa > fb ? fb : fa;                                                          \
    _Pragma("omp parallel for if (NC * L * g.k[0] * g.k[1] * g.k[2] >= DL_PARALLEL_GRAIN)")                  \
    for (int64_t nc = 0; nc < NC; nc++) {                                                                    \
      const T *src = xp + nc * plane;                                                                         \
      T *dst = yp + nc * L;                                                                                   \
      int64_t *at = ip + nc * L;                                                                              \
      for (int64_t o0 = 0; o0 < O0; o0++) {                                                                   \
        const int64_t s0 = o0 * g.s[0] - g.lo[0];                                                             \
        for (int64_t o1 = 0; o1 < O1; o1++) {                                                                 \
          const int64_t s1 = o1 * g.s[1] - g.lo[1], l = (o0 * O1 + o1) * O2;                                  \
          int64_t a = 0, b = 0; /* windows of this row done by the row path */                                \
          if (row_2x2 && s0 >= 0 && s0 < g.S[0] && s1 >= 0 && s1 + 1 < S1) {                                  \
            const int64_t base = (s0 * S1 + s1) * S2;                                                         \
            if (MAX_ROW_2X2_##S_(src + base, S2, g.lo[2], fa, fb, dst + l, at + l, xp + NC * plane)) {    \
              a = fa, b = fb;                                                                                 \
              for (int64_t o2 = a; o2 < b; o2++) at[l + o2] += base + 1; /* 1-based */                        \
            }                                                                                                 \
          }                                                                                                   \
          for (int64_t o2 = 0; o2 < O2; o2++) {                                                               \
            if (o2 == a) o2 = b;                                                                              \
            if (o2 >= O2) break;                                                                              \
            int64_t where;                                                                                    \
            max_window_##S_(src, &g, s0, s1, o2 * g.s[2] - g.lo[2], dst + l + o2, &where);                    \
            at[l + o2] = where + 1; /* 1-based, as the engine's index ops take them */                        \
          }                                                                                                   \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
    return DL_KERNEL_OK;                                                                                      \
  }

/* The float row path, 8 windows a step in GCC's portable vectors (AVX2,
 * AVX-512 or SSE, whatever the build targets): 16 floats of each source
 * row split into even and odd lanes, the best kept by masks. Rows are
 * short (7 or 14 windows in a Fashion-MNIST CNN), so the last < 8 windows
 * go through the same step from a padded copy rather than a scalar loop. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef int64_t v8l __attribute__((vector_size(64)));

/* lanes of a where m is set, else of b (a macro: vectors passed by value
 * would change the ABI in builds without AVX) */
#define PICK(m, a, b) ((v8f)(((v8i)(a) & (m)) | ((v8i)(b) & ~(m))))

/* the 8 windows whose taps are p0[0..15] (row 0) and p1[0..15] (row 1):
 * their max into *best, the winning tap's offset (0, 1, S2, S2 + 1) into
 * *k; a NaN tap sets lanes of *nan */
static inline void max8_2x2(const float *p0, const float *p1, int32_t S2, v8f *best, v8i *k, v8i *nan) {
  v8f a, b, c, d;
  memcpy(&a, p0, sizeof a), memcpy(&b, p0 + 8, sizeof b), memcpy(&c, p1, sizeof c), memcpy(&d, p1 + 8, sizeof d);
  const v8i even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = even + 1;
  const v8f v0 = __builtin_shuffle(a, b, even), v1 = __builtin_shuffle(a, b, odd);
  const v8f v2 = __builtin_shuffle(c, d, even), v3 = __builtin_shuffle(c, d, odd);
  v8f m = v0;
  v8i w = {0}, gt = v1 > m;
  w = (gt & 1) | (w & ~gt), m = PICK(gt, v1, m);
  gt = v2 > m, w = (gt & S2) | (w & ~gt), m = PICK(gt, v2, m);
  gt = v3 > m, w = (gt & (S2 + 1)) | (w & ~gt), m = PICK(gt, v3, m);
  *nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);
  *best = m, *k = w;
}

/* the float row path (same contract; `end` bounds reads past the row) */
static bool max_row_2x2_vec(const float *restrict r0, int64_t S2, int64_t first, int64_t a, int64_t b,
                            float *restrict dst, int64_t *restrict at, const float *end) {
  const float *r1 = r0 + S2;
  const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7}, lane2 = lane * 2;
  v8i nan = {0}, k;
  v8f best;
  int64_t o = a;
  for (; o + 8 <= b; o += 8) {
    const int64_t j = 2 * o - first;
    max8_2x2(r0 + j, r1 + j, (int32_t)S2, &best, &k, &nan);
    memcpy(dst + o, &best, sizeof best);
    const v8l idx = __builtin_convertvector(k + lane2, v8l) + j;
    memcpy(at + o, &idx, sizeof idx);
  }
  if (o < b) { /* the last windows: taps read on into the next rows (lanes past b unused), or at the end
                * of the tensor from a zero-padded copy */
    const int64_t j = 2 * o - first, n = 2 * (b - o);
    v8i nan_tail = {0};
    if (r1 + j + 16 <= end)
      max8_2x2(r0 + j, r1 + j, (int32_t)S2, &best, &k, &nan_tail);
    else {
      float t0[16] = {0}, t1[16] = {0};
      memcpy(t0, r0 + j, (size_t)n * sizeof *t0), memcpy(t1, r1 + j, (size_t)n * sizeof *t1);
      max8_2x2(t0, t1, (int32_t)S2, &best, &k, &nan_tail);
    }
    nan |= nan_tail & (lane < (int32_t)(b - o));
    for (int i = 0; i < 8; i++) /* lane by lane with a test, not a call to memcpy for a few bytes */
      if (i < b - o) dst[o + i] = best[i], at[o + i] = j + 2 * i + k[i];
  }
  const v8i none = {0};
  return memcmp(&nan, &none, sizeof nan) == 0;
}
/* the double row path: windows [a, b) of one output row whose 2x2 taps
 * start at r0[2 o - first] and r1 = r0 + S2, all inside the image; false
 * when a NaN was met */
static bool max_row_2x2_d(const double *restrict r0, int64_t S2, int64_t first, int64_t a, int64_t b,
                          double *restrict dst, int64_t *restrict at, const double *end) {
  (void)end; /* reads stay inside the windows */
  const double *restrict r1 = r0 + S2;
  int nan = 0;
  for (int64_t o = a; o < b; o++) {
    const int64_t j = 2 * o - first;
    const double v0 = r0[j], v1 = r0[j + 1], v2 = r1[j], v3 = r1[j + 1];
    double best = v0;
    int64_t k = 0;
    k = v1 > best ? 1 : k, best = v1 > best ? v1 : best;
    k = v2 > best ? S2 : k, best = v2 > best ? v2 : best;
    k = v3 > best ? S2 + 1 : k, best = v3 > best ? v3 : best;
    nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);
    dst[o] = best;
    at[o] = j + k;
  }
  return !nan;
}
#define MAX_ROW_2X2_f max_row_2x2_vec
#define MAX_ROW_2X2_d max_row_2x2_d

CONV_FUNCS(f, float)
CONV_FUNCS(d, double)
MAXPOOL_FUNC(f, float)
MAXPOOL_FUNC(d, double)

static int cpu_max_pool(dl_tensor *y, dl_tensor *idx, const dl_tensor *x, int64_t NC, const int64_t *size,
                        const int64_t *out, const dl_window *w) {
  return x->dtype == DL_FLOAT32 ? max_pool_f(y, idx, x, NC, size, out, w) : max_pool_d(y, idx, x, NC, size, out, w);
}

/* per plane (in L1 for an image): zero it, then add each window's gradient
 * at its maximum, in window order */
#define MAXPOOL_BACKWARD(T)                                                                        \
  do {                                                                                              \
    T *gxp = dl_tensor_data(gx);                                                                    \
    const T *gp = dl_tensor_data(g);                                                                \
    const int64_t *ip = dl_tensor_data(idx);                                                        \
    _Pragma("omp parallel for if (NC * (plane + L) >= DL_PARALLEL_GRAIN) reduction(| : bad)")       \
    for (int64_t nc = 0; nc < NC; nc++) {                                                           \
      T *dst = gxp + nc * plane;                                                                    \
      const T *src = gp + nc * L;                                                                   \
      const int64_t *at = ip + nc * L;                                                              \
      memset(dst, 0, (size_t)plane * sizeof *dst);                                                  \
      for (int64_t l = 0; l < L; l++) {                                                             \
        const uint64_t j = (uint64_t)at[l] - 1;                                                     \
        if (j < (uint64_t)plane) dst[j] += src[l];                                                  \
        else bad = 1;                                                                               \
      }                                                                                             \
    }                                                                                               \
  } while (0)

static int cpu_max_pool_backward(dl_tensor *gx, const dl_tensor *g, const dl_tensor *idx, int64_t NC, int64_t plane,
                                 int64_t L) {
  int bad = 0;
  if (g->dtype == DL_FLOAT32) MAXPOOL_BACKWARD(float);
  else MAXPOOL_BACKWARD(double);
  if (!bad) return DL_KERNEL_OK;
  dl_error_set("an index outside its plane of %" PRId64 " elements", plane);
  return DL_KERNEL_FAILED;
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

const struct dl_conv_kernels dl_cpu_conv = {cpu_im2col,  cpu_col2im, DL_CPU_CONV_FUSED, cpu_max_pool,
                                            NULL /* conv_supported: oneDNN takes every float32 one */,
                                            cpu_max_pool_backward, DL_CPU_CONV_BACKWARD, DL_CPU_CONV_C16};
