/* cpu_vecmath.h — lets the compiler vectorise loops over libm functions.
 * glibc's libmvec has SIMD versions of exp, log, tanh, ... (accurate to a
 * few ulp, special values as libm); math.h declares them only under
 * -ffast-math, which would also break NaN handling elsewhere. Declaring the
 * SIMD variants here, with -fno-math-errno (Makefile), gives vector calls
 * with IEEE semantics intact: exp over 4096 floats goes from ~21 to ~2 us.
 * (-fno-trapping-math lets branches around them, as in sigmoid, if-convert.) */
#ifndef DL_CPU_VECMATH_H
#define DL_CPU_VECMATH_H

#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__) && !defined(__FAST_MATH__) && !defined(DL_NO_VECMATH)
#define DL_VECMATH __attribute__((simd("notinbranch")))
DL_VECMATH float expf(float);
DL_VECMATH double exp(double);
DL_VECMATH float exp2f(float);
DL_VECMATH double exp2(double);
DL_VECMATH float expm1f(float);
DL_VECMATH double expm1(double);
DL_VECMATH float logf(float);
DL_VECMATH double log(double);
DL_VECMATH float log2f(float);
DL_VECMATH double log2(double);
DL_VECMATH float log10f(float);
DL_VECMATH double log10(double);
DL_VECMATH float log1pf(float);
DL_VECMATH double log1p(double);
DL_VECMATH float sinf(float);
DL_VECMATH double sin(double);
DL_VECMATH float cosf(float);
DL_VECMATH double cos(double);
DL_VECMATH float tanf(float);
DL_VECMATH double tan(double);
DL_VECMATH float atanf(float);
DL_VECMATH double atan(double);
DL_VECMATH float tanhf(float);
DL_VECMATH double tanh(double);
DL_VECMATH float erff(float);
DL_VECMATH double erf(double);
#undef DL_VECMATH
#endif

#endif
