/* cpu_reduce_util.h — what the reduction and scan kernels share: blocks of
 * any dtype loaded into double or int64 buffers (one dtype switch per
 * block, a loop the compiler vectorises inside), and stored back. */
#ifndef DL_CPU_REDUCE_UTIL_H
#define DL_CPU_REDUCE_UTIL_H

#include "../ops/dl_reduce.h"
#include "cpu_convert.h"

#include <string.h>

/* elements handled per block; buffers of this size live on the stack */
#define DL_RED_BLOCK 256

/* -O2 vectorises only loops without a remainder; these loops have one, so
 * ask for SIMD explicitly (reductions may then reassociate, lane-wise) */
#ifdef _OPENMP
#define DL_PRAGMA(x) _Pragma(#x)
#define DL_SIMD DL_PRAGMA(omp simd)
#define DL_SIMD_REDUCE(op, v) DL_PRAGMA(omp simd reduction(op : v))
#define DL_SIMD_REDUCE2(op1, v1, op2, v2) DL_PRAGMA(omp simd reduction(op1 : v1) reduction(op2 : v2))
#else
#define DL_SIMD
#define DL_SIMD_REDUCE(op, v)
#define DL_SIMD_REDUCE2(op1, v1, op2, v2)
#endif

#define DL_LOAD_LOOP(T, OUT, CONV)                                             \
  do {                                                                         \
    if (s == (int64_t)sizeof(T)) {                                             \
      const T *q = (const T *)p;                                               \
      DL_SIMD for (int64_t i = 0; i < n; i++) OUT[i] = CONV(q[i]);             \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) OUT[i] = CONV(*(const T *)(p + i * s));  \
    }                                                                          \
  } while (0)

#define DL_AS_D(v) ((double)(v))
#define DL_AS_I(v) ((int64_t)(v))
#define DL_F_AS_I(v) dl_f2i((double)(v))

/* n elements from p (byte stride s) as doubles; contiguous float64 is
 * returned in place, without a copy */
static inline const double *dl_load_d(dl_dtype dt, const char *p, int64_t s, int64_t n, double *out) {
  switch (dt) {
  case DL_FLOAT32: DL_LOAD_LOOP(float, out, DL_AS_D); break;
  case DL_FLOAT64:
    if (s == (int64_t)sizeof(double)) return (const double *)p;
    DL_LOAD_LOOP(double, out, DL_AS_D);
    break;
  case DL_INT64: DL_LOAD_LOOP(int64_t, out, DL_AS_D); break;
  default: DL_LOAD_LOOP(uint8_t, out, DL_AS_D); break; /* bool, uint8 */
  }
  return out;
}

/* the same, always into out */
static inline void dl_load_d_copy(dl_dtype dt, const char *p, int64_t s, int64_t n, double *out) {
  const double *x = dl_load_d(dt, p, s, n, out);
  if (x != out) memcpy(out, x, (size_t)n * sizeof(double));
}

static inline const int64_t *dl_load_i(dl_dtype dt, const char *p, int64_t s, int64_t n, int64_t *out) {
  switch (dt) {
  case DL_FLOAT32: DL_LOAD_LOOP(float, out, DL_F_AS_I); break;
  case DL_FLOAT64: DL_LOAD_LOOP(double, out, DL_F_AS_I); break;
  case DL_INT64:
    if (s == (int64_t)sizeof(int64_t)) return (const int64_t *)p;
    DL_LOAD_LOOP(int64_t, out, DL_AS_I);
    break;
  default: DL_LOAD_LOOP(uint8_t, out, DL_AS_I); break;
  }
  return out;
}

#define DL_STORE_LOOP(T, CONV)                                                 \
  do {                                                                         \
    if (s == (int64_t)sizeof(T)) {                                             \
      T *q = (T *)p;                                                           \
      DL_SIMD for (int64_t i = 0; i < n; i++) q[i] = CONV(v[i]);               \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) *(T *)(p + i * s) = CONV(v[i]);          \
    }                                                                          \
  } while (0)

#define DL_TO_F(x) ((float)(x))
#define DL_TO_D(x) ((double)(x))
#define DL_TO_I(x) ((int64_t)(x))
#define DL_TO_B(x) ((uint8_t)((x) != 0))
#define DL_TO_U8(x) ((uint8_t)(x))
#define DL_F_TO_U8(x) dl_f2u8(x)

static inline void dl_store_d(dl_dtype dt, char *p, int64_t s, int64_t n, const double *v) {
  switch (dt) {
  case DL_FLOAT32: DL_STORE_LOOP(float, DL_TO_F); break;
  case DL_FLOAT64: DL_STORE_LOOP(double, DL_TO_D); break;
  case DL_INT64: DL_STORE_LOOP(int64_t, dl_f2i); break;
  case DL_BOOL: DL_STORE_LOOP(uint8_t, DL_TO_B); break;
  default: DL_STORE_LOOP(uint8_t, DL_F_TO_U8); break;
  }
}

static inline void dl_store_i(dl_dtype dt, char *p, int64_t s, int64_t n, const int64_t *v) {
  switch (dt) {
  case DL_FLOAT32: DL_STORE_LOOP(float, DL_TO_F); break;
  case DL_FLOAT64: DL_STORE_LOOP(double, DL_TO_D); break;
  case DL_INT64: DL_STORE_LOOP(int64_t, DL_TO_I); break;
  case DL_BOOL: DL_STORE_LOOP(uint8_t, DL_TO_B); break;
  default: DL_STORE_LOOP(uint8_t, DL_TO_U8); break;
  }
}

/* the scan kernel (cpu_scan.c), entered in dl_cpu_reduce */
int dl_cpu_scan(dl_tensor *dst, const dl_tensor *src, int dim, dl_scan_op op);

#endif
