/* cpu_ewise_unary.c — CPU unary element-wise kernels: math functions,
 * rounding, sign and the predicates (isnan, logical_not, ...). */
#pragma GCC optimize("-fvect-cost-model=dynamic")

#include "cpu_ewise.h"
#include "cpu_vecmath.h"

/* ---- float and double ---- */

/* stable for large |x|: exp never sees a positive argument; one exp and
 * no branch around it, so the loop vectorises */
static inline float sigmoidf(float x) {
  float e = expf(-fabsf(x));
  float r = 1.0f / (1.0f + e);
  return x >= 0 ? r : e * r;
}
static inline double sigmoidd(double x) {
  double e = exp(-fabs(x));
  double r = 1.0 / (1.0 + e);
  return x >= 0 ? r : e * r;
}

#define SIGN(x) ((x) > 0 ? 1 : (x) < 0 ? -1 : 0)

#define FLOAT_UNARY(S, T, SUF, SIGMOID)                                  \
  DL_LOOP2(neg_##S, T, T, -)                                             \
  DL_LOOP2(abs_##S, T, T, fabs##SUF)                                     \
  DL_LOOP2(sign_##S, T, T, (T)SIGN)                                      \
  DL_LOOP2(square_##S, T, T, SQUARE)                                     \
  DL_LOOP2(floor_##S, T, T, floor##SUF)                                  \
  DL_LOOP2(ceil_##S, T, T, ceil##SUF)                                    \
  DL_LOOP2(round_##S, T, T, nearbyint##SUF)                              \
  DL_LOOP2(trunc_##S, T, T, trunc##SUF)                                  \
  DL_LOOP2(sqrt_##S, T, T, sqrt##SUF)                                    \
  DL_LOOP2(exp_##S, T, T, exp##SUF)                                      \
  DL_LOOP2(exp2_##S, T, T, exp2##SUF)                                    \
  DL_LOOP2(log_##S, T, T, log##SUF)                                      \
  DL_LOOP2(log2_##S, T, T, log2##SUF)                                    \
  DL_LOOP2(log10_##S, T, T, log10##SUF)                                  \
  DL_LOOP2(log1p_##S, T, T, log1p##SUF)                                  \
  DL_LOOP2(expm1_##S, T, T, expm1##SUF)                                  \
  DL_LOOP2(sin_##S, T, T, sin##SUF)                                      \
  DL_LOOP2(cos_##S, T, T, cos##SUF)                                      \
  DL_LOOP2(tan_##S, T, T, tan##SUF)                                      \
  DL_LOOP2(atan_##S, T, T, atan##SUF)                                    \
  DL_LOOP2(sinh_##S, T, T, sinh##SUF)                                    \
  DL_LOOP2(cosh_##S, T, T, cosh##SUF)                                    \
  DL_LOOP2(asinh_##S, T, T, asinh##SUF)                                  \
  DL_LOOP2(tanh_##S, T, T, tanh##SUF)                                    \
  DL_LOOP2(erf_##S, T, T, erf##SUF)                                      \
  DL_LOOP2(sigmoid_##S, T, T, SIGMOID)                                   \
  DL_LOOP2(isnan_##S, uint8_t, T, ISNAN)                                 \
  DL_LOOP2(isinf_##S, uint8_t, T, ISINF)                                 \
  DL_LOOP2(isfinite_##S, uint8_t, T, ISFINITE)

#define SQUARE(x) ((x) * (x))
#define ISNAN(x) ((x) != (x))
#define ISINF(x) (isinf(x) != 0)
#define ISFINITE(x) (isfinite(x) != 0)
#define RELU(x) ((x) < 0 ? 0 : (x)) /* NaN stays NaN */
#define LNOT(x) ((x) == 0)

FLOAT_UNARY(f, float, f, sigmoidf)
FLOAT_UNARY(d, double, , sigmoidd)

#define FRSQRT(x) (1.0f / sqrtf(x))
#define DRSQRT(x) (1.0 / sqrt(x))
#define FRECIP(x) (1.0f / (x))
#define DRECIP(x) (1.0 / (x))
#define FFRAC(x) ((x) - truncf(x))
#define DFRAC(x) ((x) - trunc(x))
DL_LOOP2(rsqrt_f, float, float, FRSQRT)
DL_LOOP2(rsqrt_d, double, double, DRSQRT)
DL_LOOP2(recip_f, float, float, FRECIP)
DL_LOOP2(recip_d, double, double, DRECIP)
DL_LOOP2(frac_f, float, float, FFRAC)
DL_LOOP2(frac_d, double, double, DFRAC)
DL_LOOP2(relu_f, float, float, RELU)
DL_LOOP2(relu_d, double, double, RELU)
DL_LOOP2(lnot_f, uint8_t, float, LNOT)
DL_LOOP2(lnot_d, uint8_t, double, LNOT)

/* ---- int64 (wrapping) and uint8 (modulo 256) ---- */

#define INEG(x) DL_ISUB(0, x)
#define IABS(x) ((x) < 0 ? DL_ISUB(0, x) : (x))
#define ISQUARE(x) DL_IMUL(x, x)
#define SAME(x) (x)
#define FALSE_(x) ((void)(x), 0)
#define TRUE_(x) ((void)(x), 1)
DL_LOOP2(neg_i, int64_t, int64_t, INEG)
DL_LOOP2(abs_i, int64_t, int64_t, IABS)
DL_LOOP2(sign_i, int64_t, int64_t, (int64_t)SIGN)
DL_LOOP2(relu_i, int64_t, int64_t, RELU)
DL_LOOP2(square_i, int64_t, int64_t, ISQUARE)
DL_LOOP2(same_i, int64_t, int64_t, SAME)
DL_LOOP2(lnot_i, uint8_t, int64_t, LNOT)
DL_LOOP2(false_i, uint8_t, int64_t, FALSE_)
DL_LOOP2(true_i, uint8_t, int64_t, TRUE_)

#define UNEG(x) (uint8_t)(0u - (x))
#define USIGN(x) ((x) != 0)
#define USQUARE(x) (uint8_t)((x) * (x))
DL_LOOP2(neg_u, uint8_t, uint8_t, UNEG)
DL_LOOP2(sign_u, uint8_t, uint8_t, USIGN)
DL_LOOP2(square_u, uint8_t, uint8_t, USQUARE)
DL_LOOP2(same_u, uint8_t, uint8_t, SAME)
DL_LOOP2(lnot_u, uint8_t, uint8_t, LNOT)
DL_LOOP2(false_u, uint8_t, uint8_t, FALSE_)
DL_LOOP2(true_u, uint8_t, uint8_t, TRUE_)

/* columns: float32, float64, int64, bool, uint8. Float functions have no
 * integer entries: the front-end converts integers to float32 first. */
#define FROW(OP) {OP##_f, OP##_d, NULL, NULL, NULL}
static const dl_iter_fn unary_table[DL_NUNOPS][DL_NDTYPES] = {
  [DL_UN_NEG] = {neg_f, neg_d, neg_i, NULL, neg_u},
  [DL_UN_ABS] = {abs_f, abs_d, abs_i, NULL, same_u},
  [DL_UN_SIGN] = {sign_f, sign_d, sign_i, same_u, sign_u},
  [DL_UN_RELU] = {relu_f, relu_d, relu_i, NULL, same_u},
  [DL_UN_SQUARE] = {square_f, square_d, square_i, NULL, square_u},
  [DL_UN_FLOOR] = {floor_f, floor_d, same_i, NULL, same_u},
  [DL_UN_CEIL] = {ceil_f, ceil_d, same_i, NULL, same_u},
  [DL_UN_ROUND] = {round_f, round_d, same_i, NULL, same_u},
  [DL_UN_TRUNC] = {trunc_f, trunc_d, same_i, NULL, same_u},
  [DL_UN_FRAC] = FROW(frac),
  [DL_UN_SQRT] = FROW(sqrt),
  [DL_UN_RSQRT] = FROW(rsqrt),
  [DL_UN_EXP] = FROW(exp),
  [DL_UN_EXP2] = FROW(exp2),
  [DL_UN_LOG] = FROW(log),
  [DL_UN_LOG2] = FROW(log2),
  [DL_UN_LOG10] = FROW(log10),
  [DL_UN_LOG1P] = FROW(log1p),
  [DL_UN_EXPM1] = FROW(expm1),
  [DL_UN_SIN] = FROW(sin),
  [DL_UN_COS] = FROW(cos),
  [DL_UN_TAN] = FROW(tan),
  [DL_UN_ATAN] = FROW(atan),
  [DL_UN_SINH] = FROW(sinh),
  [DL_UN_COSH] = FROW(cosh),
  [DL_UN_ASINH] = FROW(asinh),
  [DL_UN_TANH] = FROW(tanh),
  [DL_UN_SIGMOID] = FROW(sigmoid),
  [DL_UN_ERF] = FROW(erf),
  [DL_UN_RECIPROCAL] = FROW(recip),
  [DL_UN_LOGICAL_NOT] = {lnot_f, lnot_d, lnot_i, lnot_u, lnot_u},
  [DL_UN_ISNAN] = {isnan_f, isnan_d, false_i, false_u, false_u},
  [DL_UN_ISINF] = {isinf_f, isinf_d, false_i, false_u, false_u},
  [DL_UN_ISFINITE] = {isfinite_f, isfinite_d, true_i, true_u, true_u},
};

int dl_cpu_ewise_unary(dl_unop op, dl_tensor *out, const dl_tensor *a) {
  dl_tensor *ops[2] = {out, (dl_tensor *)a};
  dl_cpu_run(2, ops, NULL, unary_table[op][a->dtype], NULL);
  return DL_KERNEL_OK;
}

bool dl_cpu_unary_has(dl_unop op, dl_dtype dt) { return unary_table[op][dt] != NULL; }
