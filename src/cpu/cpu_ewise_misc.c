/* cpu_ewise_misc.c — CPU kernels of clamp, lerp, addcmul/addcdiv, where,
 * isclose, and the all-true test behind allclose/equal. */
#pragma GCC optimize("-fvect-cost-model=dynamic")

#include "cpu_ewise.h"

#include <float.h>
#include <math.h>

/* Loops over operands x (p[1]), y (p[2]), z (p[3]) with a context `ctx`;
 * a contiguous variant and a strided one. */
#define LOOP_X(NAME, T0, T1, CT, EXPR)                                         \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {        \
    CT ctx_local = {0}; /* a local copy: stores through o cannot alias it */ \
    if (vctx) ctx_local = *(const CT *)vctx;                                  \
    const CT *ctx = &ctx_local;                                                \
    (void)ctx;                                                                 \
    if (s[0] == (int64_t)sizeof(T0) && s[1] == (int64_t)sizeof(T1)) {         \
      T0 *o = (T0 *)p[0];                                                      \
      const T1 *xa = (const T1 *)p[1];                                         \
      for (int64_t i = 0; i < n; i++) {                                        \
        T1 x = xa[i];                                                          \
        o[i] = (T0)(EXPR);                                                     \
      }                                                                        \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        T1 x = *(const T1 *)(p[1] + i * s[1]);                                 \
        *(T0 *)(p[0] + i * s[0]) = (T0)(EXPR);                                 \
      }                                                                        \
    }                                                                          \
  }

#define LOOP_XY(NAME, T0, T1, T2, CT, EXPR)                                                        \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                            \
    CT ctx_local = {0}; /* a local copy: stores through o cannot alias it */              \
    if (vctx) ctx_local = *(const CT *)vctx;                                                      \
    const CT *ctx = &ctx_local;                                                                  \
    (void)ctx;                                                                                     \
    if (s[0] == (int64_t)sizeof(T0) && s[1] == (int64_t)sizeof(T1) && s[2] == (int64_t)sizeof(T2)) { \
      T0 *o = (T0 *)p[0];                                                                          \
      const T1 *xa = (const T1 *)p[1];                                                             \
      const T2 *ya = (const T2 *)p[2];                                                             \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T1 x = xa[i];                                                                              \
        T2 y = ya[i];                                                                              \
        o[i] = (T0)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T1 x = *(const T1 *)(p[1] + i * s[1]);                                                     \
        T2 y = *(const T2 *)(p[2] + i * s[2]);                                                     \
        *(T0 *)(p[0] + i * s[0]) = (T0)(EXPR);                                                     \
      }                                                                                            \
    }                                                                                              \
  }

#define LOOP_XYZ(NAME, T0, T1, T2, T3, CT, EXPR)                                                   \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                            \
    CT ctx_local = {0}; /* a local copy: stores through o cannot alias it */              \
    if (vctx) ctx_local = *(const CT *)vctx;                                                      \
    const CT *ctx = &ctx_local;                                                                  \
    (void)ctx;                                                                                     \
    if (s[0] == (int64_t)sizeof(T0) && s[1] == (int64_t)sizeof(T1) && s[2] == (int64_t)sizeof(T2) && \
        s[3] == (int64_t)sizeof(T3)) {                                                             \
      T0 *o = (T0 *)p[0];                                                                          \
      const T1 *xa = (const T1 *)p[1];                                                             \
      const T2 *ya = (const T2 *)p[2];                                                             \
      const T3 *za = (const T3 *)p[3];                                                             \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T1 x = xa[i];                                                                              \
        T2 y = ya[i];                                                                              \
        T3 z = za[i];                                                                              \
        o[i] = (T0)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      for (int64_t i = 0; i < n; i++) {                                                            \
        T1 x = *(const T1 *)(p[1] + i * s[1]);                                                     \
        T2 y = *(const T2 *)(p[2] + i * s[2]);                                                     \
        T3 z = *(const T3 *)(p[3] + i * s[3]);                                                     \
        *(T0 *)(p[0] + i * s[0]) = (T0)(EXPR);                                                     \
      }                                                                                            \
    }                                                                                              \
  }

typedef struct {
  dl_cpu_value lo, hi, w, value;
  double rtol, atol;
  bool equal_nan;
} misc_ctx;

/* ---- clamp: NaN in the input or a bound propagates ---- */

#define FMAXNAN(x, y) ((x) != (x) ? (x) : (y) != (y) ? (y) : (x) > (y) ? (x) : (y))
#define FMINNAN(x, y) ((x) != (x) ? (x) : (y) != (y) ? (y) : (x) < (y) ? (x) : (y))
#define IMAX(x, y) ((x) > (y) ? (x) : (y))
#define IMIN(x, y) ((x) < (y) ? (x) : (y))

/* bounds in ctx (numbers or absent) */
LOOP_X(clamps_f, float, float, misc_ctx, FMINNAN(FMAXNAN(x, ctx->lo.f), ctx->hi.f))
LOOP_X(clamps_d, double, double, misc_ctx, FMINNAN(FMAXNAN(x, ctx->lo.d), ctx->hi.d))
LOOP_X(clamps_i, int64_t, int64_t, misc_ctx, IMIN(IMAX(x, ctx->lo.i), ctx->hi.i))
LOOP_X(clamps_u, uint8_t, uint8_t, misc_ctx, IMIN(IMAX(x, ctx->lo.u), ctx->hi.u))
/* bounds as operands y, z */
LOOP_XYZ(clampt_f, float, float, float, float, misc_ctx, FMINNAN(FMAXNAN(x, y), z))
LOOP_XYZ(clampt_d, double, double, double, double, misc_ctx, FMINNAN(FMAXNAN(x, y), z))
LOOP_XYZ(clampt_i, int64_t, int64_t, int64_t, int64_t, misc_ctx, IMIN(IMAX(x, y), z))
LOOP_XYZ(clampt_u, uint8_t, uint8_t, uint8_t, uint8_t, misc_ctx, IMIN(IMAX(x, y), z))

static const dl_iter_fn clamps_table[DL_NDTYPES] = {clamps_f, clamps_d, clamps_i, clamps_u, clamps_u};
static const dl_iter_fn clampt_table[DL_NDTYPES] = {clampt_f, clampt_d, clampt_i, clampt_u, clampt_u};

/* the value an absent bound stands for */
static dl_cpu_value extreme(dl_dtype dt, bool upper) {
  dl_cpu_value v;
  v.i = 0;
  switch (dt) {
  case DL_FLOAT32: v.f = upper ? INFINITY : -INFINITY; break;
  case DL_FLOAT64: v.d = upper ? INFINITY : -INFINITY; break;
  case DL_INT64: v.i = upper ? INT64_MAX : INT64_MIN; break;
  case DL_BOOL: v.u = upper ? 1 : 0; break;
  default: v.u = upper ? 255 : 0; break;
  }
  return v;
}

int dl_cpu_ewise_clamp(dl_tensor *out, const dl_tensor *a, const dl_operand *lo, const dl_operand *hi) {
  dl_dtype dt = a->dtype;
  misc_ctx ctx;
  ctx.lo = lo && !lo->t ? dl_cpu_value_of(lo->s, dt) : extreme(dt, false);
  ctx.hi = hi && !hi->t ? dl_cpu_value_of(hi->s, dt) : extreme(dt, true);
  if ((!lo || !lo->t) && (!hi || !hi->t)) {
    dl_tensor *ops[2] = {out, (dl_tensor *)a};
    dl_cpu_run(2, ops, NULL, clamps_table[dt], &ctx);
    return DL_KERNEL_OK;
  }
  dl_tensor *ops[4] = {out, (dl_tensor *)a, lo ? (dl_tensor *)lo->t : NULL, hi ? (dl_tensor *)hi->t : NULL};
  dl_cpu_value vals[4];
  vals[2] = ctx.lo;
  vals[3] = ctx.hi;
  dl_cpu_run(4, ops, vals, clampt_table[dt], &ctx);
  return DL_KERNEL_OK;
}

/* ---- lerp (PyTorch's form: exact at both ends) ---- */

#define LERP(x, y, w) ((w) < 0.5 && (w) > -0.5 ? (x) + (w) * ((y) - (x)) : (y) - ((y) - (x)) * (1 - (w)))
LOOP_XY(lerps_f, float, float, float, misc_ctx, LERP(x, y, ctx->w.f))
LOOP_XY(lerps_d, double, double, double, misc_ctx, LERP(x, y, ctx->w.d))
LOOP_XYZ(lerpt_f, float, float, float, float, misc_ctx, LERP(x, y, z))
LOOP_XYZ(lerpt_d, double, double, double, double, misc_ctx, LERP(x, y, z))

int dl_cpu_ewise_lerp(dl_tensor *out, const dl_tensor *a, const dl_tensor *end, dl_operand w) {
  bool f = a->dtype == DL_FLOAT32;
  misc_ctx ctx;
  if (!w.t) {
    ctx.w = dl_cpu_value_of(w.s, a->dtype);
    dl_tensor *ops[3] = {out, (dl_tensor *)a, (dl_tensor *)end};
    dl_cpu_run(3, ops, NULL, f ? lerps_f : lerps_d, &ctx);
    return DL_KERNEL_OK;
  }
  dl_tensor *ops[4] = {out, (dl_tensor *)a, (dl_tensor *)end, (dl_tensor *)w.t};
  dl_cpu_run(4, ops, NULL, f ? lerpt_f : lerpt_d, &ctx);
  return DL_KERNEL_OK;
}

/* ---- addcmul, addcdiv ---- */

LOOP_XYZ(addcmul_f, float, float, float, float, misc_ctx, x + ctx->value.f * y * z)
LOOP_XYZ(addcmul_d, double, double, double, double, misc_ctx, x + ctx->value.d * y * z)
LOOP_XYZ(addcmul_i, int64_t, int64_t, int64_t, int64_t, misc_ctx, DL_IADD(x, DL_IMUL(DL_IMUL(ctx->value.i, y), z)))
LOOP_XYZ(addcmul_u, uint8_t, uint8_t, uint8_t, uint8_t, misc_ctx, (uint8_t)(x + ctx->value.u * y * z))
LOOP_XYZ(addcdiv_f, float, float, float, float, misc_ctx, x + ctx->value.f * y / z)
LOOP_XYZ(addcdiv_d, double, double, double, double, misc_ctx, x + ctx->value.d * y / z)

int dl_cpu_ewise_addc(bool div, dl_tensor *out, const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2,
                      dl_scalar value) {
  static const dl_iter_fn mul_table[DL_NDTYPES] = {addcmul_f, addcmul_d, addcmul_i, NULL, addcmul_u};
  static const dl_iter_fn div_table[DL_NDTYPES] = {addcdiv_f, addcdiv_d, NULL, NULL, NULL};
  misc_ctx ctx;
  ctx.value = dl_cpu_value_of(value, a->dtype);
  dl_tensor *ops[4] = {out, (dl_tensor *)a, (dl_tensor *)t1, (dl_tensor *)t2};
  dl_cpu_run(4, ops, NULL, (div ? div_table : mul_table)[a->dtype], &ctx);
  return DL_KERNEL_OK;
}

/* ---- where ---- */

#define SELECT(c, x, y) ((c) ? (x) : (y))
LOOP_XYZ(where_f, float, uint8_t, float, float, misc_ctx, SELECT(x, y, z))
LOOP_XYZ(where_d, double, uint8_t, double, double, misc_ctx, SELECT(x, y, z))
LOOP_XYZ(where_i, int64_t, uint8_t, int64_t, int64_t, misc_ctx, SELECT(x, y, z))
LOOP_XYZ(where_u, uint8_t, uint8_t, uint8_t, uint8_t, misc_ctx, SELECT(x, y, z))

/* Contiguous operands with one of a, b a number (relu's backward, masks):
 * a loop the compiler vectorises, instead of a stride-0 operand. */
#define WHERE_SCALAR(NAME, T)                                                                  \
  static void NAME(T *o, const uint8_t *c, const T *t, T s, int64_t n, bool t_when_true) {    \
    if (t_when_true)                                                                           \
      for (int64_t i = 0; i < n; i++) o[i] = c[i] ? t[i] : s;                                  \
    else                                                                                       \
      for (int64_t i = 0; i < n; i++) o[i] = c[i] ? s : t[i];                                  \
  }
WHERE_SCALAR(where_scalar_f, float)
WHERE_SCALAR(where_scalar_d, double)

static bool where_fast(dl_tensor *out, const dl_tensor *cond, dl_operand a, dl_operand b) {
  const dl_tensor *t = a.t ? a.t : b.t;
  if ((a.t && b.t) || !t || (out->dtype != DL_FLOAT32 && out->dtype != DL_FLOAT64)) return false;
  if (t->dtype != out->dtype || !dl_tensor_is_contiguous(out) || !dl_tensor_is_contiguous(cond) || !dl_tensor_is_contiguous(t) ||
      !dl_tensor_same_shape(out, cond) || !dl_tensor_same_shape(out, t) || out->numel >= DL_PARALLEL_GRAIN)
    return false;
  dl_scalar s = a.t ? b.s : a.s;
  double sv = s.is_int ? (double)s.i : s.f;
  const uint8_t *c = dl_tensor_data(cond);
  if (out->dtype == DL_FLOAT32)
    where_scalar_f(dl_tensor_data(out), c, dl_tensor_data(t), (float)sv, out->numel, a.t != NULL);
  else
    where_scalar_d(dl_tensor_data(out), c, dl_tensor_data(t), sv, out->numel, a.t != NULL);
  return true;
}

int dl_cpu_ewise_where(dl_tensor *out, const dl_tensor *cond, dl_operand a, dl_operand b) {
  static const dl_iter_fn table[DL_NDTYPES] = {where_f, where_d, where_i, where_u, where_u};
  if (where_fast(out, cond, a, b)) return DL_KERNEL_OK;
  dl_dtype dt = out->dtype;
  dl_cpu_value vals[4];
  if (!a.t) vals[2] = dl_cpu_value_of(a.s, dt);
  if (!b.t) vals[3] = dl_cpu_value_of(b.s, dt);
  dl_tensor *ops[4] = {out, (dl_tensor *)cond, (dl_tensor *)a.t, (dl_tensor *)b.t};
  dl_cpu_run(4, ops, vals, table[dt], NULL);
  return DL_KERNEL_OK;
}

/* ---- isclose ---- */

/* equal (infinities included), both NaN when equal_nan, or finite and near */
#define CLOSE(x, y)                                                                               \
  ((x) == (y) || (ctx->equal_nan && (x) != (x) && (y) != (y)) ||                                  \
   (isfinite((double)(x)) && isfinite((double)(y)) &&                                             \
    fabs((double)(x) - (double)(y)) <= ctx->atol + ctx->rtol * fabs((double)(y))))
#define ICLOSE(x, y) ((x) == (y) || fabs((double)(x) - (double)(y)) <= ctx->atol + ctx->rtol * fabs((double)(y)))
LOOP_XY(close_f, uint8_t, float, float, misc_ctx, CLOSE(x, y))
LOOP_XY(close_d, uint8_t, double, double, misc_ctx, CLOSE(x, y))
LOOP_XY(close_i, uint8_t, int64_t, int64_t, misc_ctx, ICLOSE(x, y))
LOOP_XY(close_u, uint8_t, uint8_t, uint8_t, misc_ctx, ICLOSE(x, y))
LOOP_XY(close_b, uint8_t, uint8_t, uint8_t, misc_ctx, x == y)

int dl_cpu_ewise_isclose(dl_tensor *out, const dl_tensor *a, const dl_tensor *b, double rtol, double atol,
                         bool equal_nan) {
  static const dl_iter_fn table[DL_NDTYPES] = {close_f, close_d, close_i, close_b, close_u};
  misc_ctx ctx;
  ctx.rtol = rtol;
  ctx.atol = atol;
  ctx.equal_nan = equal_nan;
  dl_tensor *ops[3] = {out, (dl_tensor *)a, (dl_tensor *)b};
  dl_cpu_run(3, ops, NULL, table[a->dtype], &ctx);
  return DL_KERNEL_OK;
}

/* ---- all ---- */

static void all_loop(char **p, const int64_t *s, int64_t n, void *vctx) {
  int *ok = vctx;
  uint8_t acc = 1;
  for (int64_t i = 0; i < n; i++) acc &= *(const uint8_t *)(p[0] + i * s[0]) != 0;
  if (!acc) __atomic_store_n(ok, 0, __ATOMIC_RELAXED);
}

int dl_cpu_ewise_all(const dl_tensor *t, bool *out) {
  int ok = 1;
  dl_tensor *ops[1] = {(dl_tensor *)t};
  dl_cpu_run(1, ops, NULL, all_loop, &ok);
  *out = ok != 0;
  return DL_KERNEL_OK;
}
