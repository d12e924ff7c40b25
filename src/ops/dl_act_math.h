/* dl_act_math.h — the element formulas of the fused activations, one text
 * for the CPU kernels (cpu_activation.c, once per float type) and the GPU
 * kernels (cuda_activation.cu, as templates). No include guard: the
 * includer defines
 *   AM_T          the element type
 *   AM_FN(name)   the name of this instantiation's `name`
 *   AM_QUAL       the qualifiers ("static inline", or a template on the GPU)
 *   AM_MATH(f)    its math function f (expf for exp in float on the CPU)
 * and undefines them after. Both sides of each select are computed (no
 * branch around a libm call), so the CPU loops vectorise with libmvec; the
 * softplus and sigmoid forms never overflow. p0, p1: see dl_activation.h. */
#include "dl_math.h"

AM_QUAL AM_T AM_FN(sig)(AM_T z) {
  AM_T e = AM_MATH(exp)(-AM_MATH(fabs)(z));
  AM_T r = (AM_T)1 / ((AM_T)1 + e);
  return z >= 0 ? r : e * r;
}
AM_QUAL AM_T AM_FN(leaky_f)(AM_T x, AM_T p0, AM_T p1) {
  (void)p1;
  return x > 0 ? x : x * p0;
}
AM_QUAL AM_T AM_FN(leaky_b)(AM_T g, AM_T x, AM_T p0, AM_T p1) {
  (void)p1;
  return x > 0 ? g : g * p0;
}
/* NaN stays NaN; the backward reads x or relu's output (same sign) */
AM_QUAL AM_T AM_FN(relu_f)(AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  return x < 0 ? (AM_T)0 : x;
}
/* as PyTorch's threshold_backward: the gradient passes unless x <= 0 (NaN passes) */
AM_QUAL AM_T AM_FN(relu_b)(AM_T g, AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  return x <= 0 ? (AM_T)0 : g;
}
AM_QUAL AM_T AM_FN(elu_f)(AM_T x, AM_T p0, AM_T p1) {
  (void)p1;
  AM_T e = p0 * AM_MATH(expm1)(x > 0 ? (AM_T)0 : x);
  return x > 0 ? x : e;
}
AM_QUAL AM_T AM_FN(elu_b)(AM_T g, AM_T x, AM_T p0, AM_T p1) {
  (void)p1;
  AM_T e = g * p0 * AM_MATH(exp)(x > 0 ? (AM_T)0 : x);
  return x <= 0 ? e : g; /* NaN takes the linear side, as PyTorch's elu_backward */
}
AM_QUAL AM_T AM_FN(gelu_f)(AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  return (AM_T)0.5 * x * ((AM_T)1 + AM_MATH(erf)(x * (AM_T)DL_SQRT1_2));
}
AM_QUAL AM_T AM_FN(gelu_b)(AM_T g, AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  AM_T cdf = (AM_T)0.5 * ((AM_T)1 + AM_MATH(erf)(x * (AM_T)DL_SQRT1_2));
  AM_T pdf = (AM_T)DL_INV_SQRT_2PI * AM_MATH(exp)((AM_T)-0.5 * x * x);
  return g * (cdf + x * pdf);
}
AM_QUAL AM_T AM_FN(gelut_f)(AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  return (AM_T)0.5 * x * ((AM_T)1 + AM_MATH(tanh)((AM_T)DL_SQRT_2_PI * (x + (AM_T)DL_GELU_C * x * x * x)));
}
AM_QUAL AM_T AM_FN(gelut_b)(AM_T g, AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  AM_T t = AM_MATH(tanh)((AM_T)DL_SQRT_2_PI * (x + (AM_T)DL_GELU_C * x * x * x));
  AM_T du = (AM_T)DL_SQRT_2_PI * ((AM_T)1 + (AM_T)(3 * DL_GELU_C) * x * x);
  return g * ((AM_T)0.5 * ((AM_T)1 + t) + (AM_T)0.5 * x * ((AM_T)1 - t * t) * du);
}
AM_QUAL AM_T AM_FN(silu_f)(AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  return x * AM_FN(sig)(x);
}
AM_QUAL AM_T AM_FN(silu_b)(AM_T g, AM_T x, AM_T p0, AM_T p1) {
  (void)p0, (void)p1;
  AM_T s = AM_FN(sig)(x);
  return g * s * ((AM_T)1 + x * ((AM_T)1 - s));
}
AM_QUAL AM_T AM_FN(softplus_f)(AM_T x, AM_T p0, AM_T p1) {
  AM_T bx = x * p0;
  AM_T sp = ((bx > 0 ? bx : (AM_T)0) + AM_MATH(log1p)(AM_MATH(exp)(-AM_MATH(fabs)(bx)))) / p0;
  return bx > p1 ? x : sp;
}
AM_QUAL AM_T AM_FN(softplus_b)(AM_T g, AM_T x, AM_T p0, AM_T p1) {
  AM_T bx = x * p0;
  AM_T d = g * AM_FN(sig)(bx);
  return bx > p1 ? g : d;
}
