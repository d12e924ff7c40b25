/* cpu_copy.c — strided copy with dtype conversion, and fill. */
#include "cpu_backend.h"
#include "cpu_convert.h"
#include "cpu_iter.h"

#include <omp.h>
#include <stdbool.h>
#include <string.h>

/* One inner loop per (destination, source) dtype pair. */
#define COPY_LOOP(NAME, DT, ST, CONV)                                                   \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {                  \
    (void)ctx;                                                                          \
    char *d = p[0];                                                                     \
    const char *x = p[1];                                                               \
    if (s[0] == (int64_t)sizeof(DT) && s[1] == (int64_t)sizeof(ST)) {                   \
      DT *dd = (DT *)d;                                                                 \
      const ST *xx = (const ST *)x;                                                     \
      for (int64_t i = 0; i < n; i++) dd[i] = CONV(xx[i]);                              \
    } else {                                                                            \
      for (int64_t i = 0; i < n; i++) *(DT *)(d + i * s[0]) = CONV(*(const ST *)(x + i * s[1])); \
    }                                                                                   \
  }

#define SAME(v) (v)
#define TO_F(v) ((float)(v))
#define TO_D(v) ((double)(v))
#define TO_I(v) ((int64_t)(v))
#define F_TO_I(v) dl_f2i((double)(v))
#define TO_B(v) ((uint8_t)((v) != 0))
#define TO_U8(v) ((uint8_t)(v))
#define F_TO_U8(v) dl_f2u8((double)(v))

COPY_LOOP(c_f_f, float, float, SAME)
COPY_LOOP(c_f_d, float, double, TO_F)
COPY_LOOP(c_f_i, float, int64_t, TO_F)
COPY_LOOP(c_f_u, float, uint8_t, TO_F)
COPY_LOOP(c_d_f, double, float, TO_D)
COPY_LOOP(c_d_d, double, double, SAME)
COPY_LOOP(c_d_i, double, int64_t, TO_D)
COPY_LOOP(c_d_u, double, uint8_t, TO_D)
COPY_LOOP(c_i_f, int64_t, float, F_TO_I)
COPY_LOOP(c_i_d, int64_t, double, F_TO_I)
COPY_LOOP(c_i_i, int64_t, int64_t, SAME)
COPY_LOOP(c_i_u, int64_t, uint8_t, TO_I)
COPY_LOOP(c_b_f, uint8_t, float, TO_B)
COPY_LOOP(c_b_d, uint8_t, double, TO_B)
COPY_LOOP(c_b_i, uint8_t, int64_t, TO_B)
COPY_LOOP(c_b_u, uint8_t, uint8_t, TO_B)
COPY_LOOP(c_u_f, uint8_t, float, F_TO_U8)
COPY_LOOP(c_u_d, uint8_t, double, F_TO_U8)
COPY_LOOP(c_u_i, uint8_t, int64_t, TO_U8)
COPY_LOOP(c_u_u, uint8_t, uint8_t, SAME)

/* bool and uint8 share a byte layout: rows are (dst, src) over
 * float32, float64, int64, bool, uint8 */
static const dl_iter_fn copy_table[DL_NDTYPES][DL_NDTYPES] = {
  {c_f_f, c_f_d, c_f_i, c_f_u, c_f_u},
  {c_d_f, c_d_d, c_d_i, c_d_u, c_d_u},
  {c_i_f, c_i_d, c_i_i, c_i_u, c_i_u},
  {c_b_f, c_b_d, c_b_i, c_u_u, c_b_u},
  {c_u_f, c_u_d, c_u_i, c_u_u, c_u_u},
};

/* one block of bytes: split over the threads when it is large and the two
 * ranges do not overlap (one thread's memcpy runs at about half of what the
 * memory gives two); memmove otherwise */
static void copy_bytes(char *d, const char *s, size_t bytes) {
  bool overlap = d < s + bytes && s < d + bytes;
  int nt = omp_get_max_threads();
  if (overlap || nt < 2 || bytes < (size_t)DL_PARALLEL_GRAIN * 16) {
    memmove(d, s, bytes);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int k = omp_get_thread_num(), n = omp_get_num_threads();
    size_t per = (bytes / (size_t)n + 63) & ~(size_t)63; /* whole cache lines */
    size_t lo = per * (size_t)k, hi = lo + per < bytes ? lo + per : bytes;
    if (lo < hi) memcpy(d + lo, s + lo, hi - lo);
  }
}

/* src is one element seen at every position (all its strides 0 where its
 * size is not 1): a broadcast scalar, as a sum's or mean's gradient */
static bool one_element(const dl_tensor *t) {
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] != 1 && t->stride[d] != 0) return false;
  return true;
}

void dl_cpu_copy(dl_tensor *dst, const dl_tensor *src) {
  if (dst->numel == 0) return;
  if (dst->dtype == src->dtype && dl_tensor_is_contiguous(dst) && dl_tensor_is_contiguous(src) &&
      dl_tensor_same_shape(dst, src)) {
    copy_bytes(dl_tensor_data(dst), dl_tensor_data(src), (size_t)dst->numel * dl_dtype_size(dst->dtype));
    return;
  }
  if (dst->dtype == src->dtype && one_element(src)) { /* a fill: vector stores, no per-element gather */
    const void *p = dl_tensor_data(src);
    switch (src->dtype) {
    case DL_FLOAT32: dl_cpu_fill(dst, dl_scalar_f(*(const float *)p)); return;
    case DL_FLOAT64: dl_cpu_fill(dst, dl_scalar_f(*(const double *)p)); return;
    case DL_INT64: dl_cpu_fill(dst, dl_scalar_i(*(const int64_t *)p)); return;
    case DL_BOOL:
    case DL_UINT8: dl_cpu_fill(dst, dl_scalar_i(*(const uint8_t *)p)); return;
    default: break;
    }
  }
  dl_tensor *ops[2] = {dst, (dl_tensor *)src};
  dl_iter it;
  dl_iter_init(&it, 2, ops);
  dl_iter_parallel(&it, copy_table[dst->dtype][src->dtype], NULL, DL_PARALLEL_GRAIN);
}

/* ---- fill ---- */

typedef struct { float f; double d; int64_t i; uint8_t b; } fill_value;

#define FILL_LOOP(NAME, T, FIELD)                                        \
  static void NAME(char **p, const int64_t *s, int64_t n, void *ctx) {   \
    T v = ((const fill_value *)ctx)->FIELD;                              \
    if (s[0] == (int64_t)sizeof(T)) {                                    \
      T *d = (T *)p[0];                                                  \
      for (int64_t i = 0; i < n; i++) d[i] = v;                          \
    } else {                                                             \
      for (int64_t i = 0; i < n; i++) *(T *)(p[0] + i * s[0]) = v;       \
    }                                                                    \
  }
FILL_LOOP(fill_f, float, f)
FILL_LOOP(fill_d, double, d)
FILL_LOOP(fill_i, int64_t, i)
FILL_LOOP(fill_b, uint8_t, b)

void dl_cpu_fill(dl_tensor *dst, dl_scalar v) {
  if (dst->numel == 0) return;
  fill_value fv;
  double f = v.is_int ? (double)v.i : v.f;
  fv.f = (float)f;
  fv.d = f;
  fv.i = v.is_int ? v.i : dl_f2i(f);
  fv.b = dst->dtype == DL_BOOL ? (uint8_t)(f != 0 || (v.is_int && v.i != 0)) : (uint8_t)fv.i;
  static const dl_iter_fn fills[DL_NDTYPES] = {fill_f, fill_d, fill_i, fill_b, fill_b};
  dl_iter it;
  dl_iter_init(&it, 1, &dst);
  dl_iter_parallel(&it, fills[dst->dtype], &fv, DL_PARALLEL_GRAIN);
}
