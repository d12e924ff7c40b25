/* dl_math.h — scalar arithmetic the CPU and CUDA kernels share, read by
 * both compilers so the two backends cannot drift: the constants of the
 * activations, integer power, and Python's floor division and remainder
 * (an integer divisor of 0 sets *zd and gives 0, as the ops report it). */
#ifndef DL_MATH_H
#define DL_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define DL_HD __host__ __device__ __forceinline__
#else
#define DL_HD static inline
#endif

#define DL_SQRT1_2 0.70710678118654752440      /* 1 / sqrt(2) */
#define DL_SQRT_2_PI 0.79788456080286535588    /* sqrt(2 / pi) */
#define DL_INV_SQRT_2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */
#define DL_GELU_C 0.044715                     /* the tanh approximation's cubic term */

/* b^e wrapping like int64 arithmetic; a negative e gives 0 but for b = +-1 */
DL_HD int64_t dl_ipow(int64_t b, int64_t e) {
  if (e < 0) return b == 1 ? 1 : b == -1 ? ((e & 1) ? -1 : 1) : 0;
  uint64_t r = 1, x = (uint64_t)b;
  while (e) {
    if (e & 1) r *= x;
    x *= x;
    e >>= 1;
  }
  return (int64_t)r;
}

DL_HD int64_t dl_ifloordiv(int64_t a, int64_t b, int *zd) {
  if (b == 0) {
    *zd = 1;
    return 0;
  }
  if (b == -1) return (int64_t)(0 - (uint64_t)a); /* INT64_MIN / -1 overflows in C */
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) q--;
  return q;
}

DL_HD int64_t dl_iremainder(int64_t a, int64_t b, int *zd) {
  if (b == 0) {
    *zd = 1;
    return 0;
  }
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

DL_HD uint8_t dl_ufloordiv(uint8_t a, uint8_t b, int *zd) {
  if (b == 0) {
    *zd = 1;
    return 0;
  }
  return (uint8_t)(a / b);
}

DL_HD uint8_t dl_uremainder(uint8_t a, uint8_t b, int *zd) {
  if (b == 0) {
    *zd = 1;
    return 0;
  }
  return (uint8_t)(a % b);
}

/* PyTorch's div_floor for floats: floor of the exact quotient, rounded so
 * that a == b * q + remainder(a, b); the remainder has the divisor's sign */
#define DL_FLOAT_DIVMOD(S, T, FMOD, FLOOR, COPYSIGN)   \
  DL_HD T dl_floordiv_##S(T a, T b) {                  \
    if (b == 0) return a / b;                          \
    T mod = FMOD(a, b);                                \
    T div = (a - mod) / b;                             \
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;  \
    if (div == 0) return COPYSIGN((T)0, a / b);        \
    T fd = FLOOR(div);                                 \
    if (div - fd > (T)0.5) fd += 1;                    \
    return fd;                                         \
  }                                                    \
  DL_HD T dl_remainder_##S(T a, T b) {                 \
    T m = FMOD(a, b);                                  \
    if (m != 0 && ((b < 0) != (m < 0))) m += b;        \
    return m;                                          \
  }
DL_FLOAT_DIVMOD(f, float, fmodf, floorf, copysignf)
DL_FLOAT_DIVMOD(d, double, fmod, floor, copysign)

/* maximum / minimum that propagate NaN */
#define DL_MAXNAN(x, y) ((x) != (x) ? (x) : (y) != (y) ? (y) : (x) > (y) ? (x) : (y))
#define DL_MINNAN(x, y) ((x) != (x) ? (x) : (y) != (y) ? (y) : (x) < (y) ? (x) : (y))

#endif
