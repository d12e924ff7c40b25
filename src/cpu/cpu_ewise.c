/* cpu_ewise.c — CPU binary element-wise kernels (arithmetic, comparisons,
 * logical ops), the operand runner they share, and the ewise kernel table. */
/* -O2's very cheap cost model skips loops of unknown length; these are the
 * loops vectorisation is for. */
#pragma GCC optimize("-fvect-cost-model=dynamic")

#include "cpu_ewise.h"
#include "../ops/dl_math.h"

#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- the operand runner ---- */

static int threads_for(int64_t n) {
#ifdef _OPENMP
  if (n >= DL_PARALLEL_GRAIN) return omp_get_max_threads();
#else
  (void)n;
#endif
  return 1;
}

void dl_cpu_run(int nops, dl_tensor *const *ops, const dl_cpu_value *vals, dl_iter_fn fn, void *ctx) {
  int64_t n = ops[0]->numel;
  if (n == 0) return;
  char *ptrs[DL_ITER_MAXOPS];
  int64_t str[DL_ITER_MAXOPS];
  bool flat = true;
  for (int k = 0; k < nops; k++) {
    if (ops[k]) {
      flat = flat && dl_tensor_is_contiguous(ops[k]);
      ptrs[k] = (char *)ops[k]->storage->data + ops[k]->offset * dl_cpu_elsize(ops[k]->dtype);
      str[k] = dl_cpu_elsize(ops[k]->dtype);
    } else {
      ptrs[k] = (char *)&vals[k];
      str[k] = 0;
    }
  }
  if (flat) {
    int nt = threads_for(n);
    if (nt <= 1) {
      fn(ptrs, str, n, ctx);
      return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num(), tn = omp_get_num_threads();
      /* chunks on 64-element boundaries keep the vector loops aligned */
      int64_t chunk = ((n + tn - 1) / tn + 63) & ~(int64_t)63;
      int64_t b = (int64_t)t * chunk, e = b + chunk < n ? b + chunk : n;
      if (b < e) {
        char *lp[DL_ITER_MAXOPS];
        for (int k = 0; k < nops; k++) lp[k] = ptrs[k] + b * str[k];
        fn(lp, str, e - b, ctx);
      }
    }
#endif
    return;
  }
  /* the iterator coalesces the tensors; numbers join with stride 0, which
   * merges with anything, so coalescing is unchanged */
  dl_tensor *real[DL_ITER_MAXOPS];
  int m = 0;
  for (int k = 0; k < nops; k++)
    if (ops[k]) real[m++] = ops[k];
  dl_iter ti, it;
  dl_iter_init(&ti, m, real);
  it = ti;
  it.nops = nops;
  for (int k = 0, j = 0; k < nops; k++) {
    if (ops[k]) {
      it.data[k] = ti.data[j];
      for (int d = 0; d < ti.ndim; d++) it.stride[k][d] = ti.stride[j][d];
      j++;
    } else {
      it.data[k] = (char *)&vals[k];
      for (int d = 0; d < ti.ndim; d++) it.stride[k][d] = 0;
    }
  }
  dl_iter_parallel(&it, fn, ctx, DL_PARALLEL_GRAIN);
}

/* ---- binary inner loops ---- */

typedef struct {
  dl_cpu_value alpha;
  int zerodiv;
} bin_ctx;

/* operands x (a) and y (b); `al` is alpha, `zd` flags a zero divisor */
#define BIN_LOOP(NAME, OT, T, AF, EXPR)                                                    \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                    \
    bin_ctx *ctx = vctx;                                                                   \
    const T al = (T)ctx->alpha.AF;                                                         \
    int zd = 0;                                                                            \
    (void)al;                                                                              \
    const int64_t so = (int64_t)sizeof(OT), si = (int64_t)sizeof(T);                      \
    if (s[0] == so && s[1] == si && s[2] == si) {                                          \
      OT *o = (OT *)p[0];                                                                  \
      const T *xa = (const T *)p[1], *ya = (const T *)p[2];                                \
      for (int64_t i = 0; i < n; i++) {                                                    \
        T x = xa[i], y = ya[i];                                                            \
        o[i] = (OT)(EXPR);                                                                 \
      }                                                                                    \
    } else if (s[0] == so && s[1] == si && s[2] == 0) {                                    \
      OT *o = (OT *)p[0];                                                                  \
      const T *xa = (const T *)p[1];                                                       \
      const T y = *(const T *)p[2];                                                        \
      for (int64_t i = 0; i < n; i++) {                                                    \
        T x = xa[i];                                                                       \
        o[i] = (OT)(EXPR);                                                                 \
      }                                                                                    \
    } else if (s[0] == so && s[1] == 0 && s[2] == si) {                                    \
      OT *o = (OT *)p[0];                                                                  \
      const T x = *(const T *)p[1];                                                        \
      const T *ya = (const T *)p[2];                                                       \
      for (int64_t i = 0; i < n; i++) {                                                    \
        T y = ya[i];                                                                       \
        o[i] = (OT)(EXPR);                                                                 \
      }                                                                                    \
    } else {                                                                               \
      for (int64_t i = 0; i < n; i++) {                                                    \
        T x = *(const T *)(p[1] + i * s[1]), y = *(const T *)(p[2] + i * s[2]);            \
        *(OT *)(p[0] + i * s[0]) = (OT)(EXPR);                                             \
      }                                                                                    \
    }                                                                                      \
    if (zd) __atomic_store_n(&ctx->zerodiv, 1, __ATOMIC_RELAXED);                          \
  }

/* float types: F = float, D = double */

#define FLOAT_ARITH(S, T, AF, POW, FLOORDIV, REM)                       \
  BIN_LOOP(add_##S, T, T, AF, x + al * y)                               \
  BIN_LOOP(sub_##S, T, T, AF, x - al * y)                               \
  BIN_LOOP(mul_##S, T, T, AF, x * y)                                    \
  BIN_LOOP(div_##S, T, T, AF, x / y)                                    \
  BIN_LOOP(pow_##S, T, T, AF, POW(x, y))                                \
  BIN_LOOP(rem_##S, T, T, AF, REM(x, y))                                \
  BIN_LOOP(fdiv_##S, T, T, AF, FLOORDIV(x, y))                          \
  BIN_LOOP(max_##S, T, T, AF, DL_MAXNAN(x, y))                            \
  BIN_LOOP(min_##S, T, T, AF, DL_MINNAN(x, y))

FLOAT_ARITH(f, float, f, powf, dl_floordiv_f, dl_remainder_f)
FLOAT_ARITH(d, double, d, pow, dl_floordiv_d, dl_remainder_d)

/* int64: wrapping arithmetic (signed overflow is undefined in C) */
BIN_LOOP(add_i, int64_t, int64_t, i, DL_IADD(x, DL_IMUL(al, y)))
BIN_LOOP(sub_i, int64_t, int64_t, i, DL_ISUB(x, DL_IMUL(al, y)))
BIN_LOOP(mul_i, int64_t, int64_t, i, DL_IMUL(x, y))
BIN_LOOP(pow_i, int64_t, int64_t, i, dl_ipow(x, y))
BIN_LOOP(rem_i, int64_t, int64_t, i, dl_iremainder(x, y, &zd))
BIN_LOOP(fdiv_i, int64_t, int64_t, i, dl_ifloordiv(x, y, &zd))
BIN_LOOP(max_i, int64_t, int64_t, i, x > y ? x : y)
BIN_LOOP(min_i, int64_t, int64_t, i, x < y ? x : y)

/* uint8: arithmetic modulo 256 */
BIN_LOOP(add_u, uint8_t, uint8_t, u, (uint8_t)(x + al * y))
BIN_LOOP(sub_u, uint8_t, uint8_t, u, (uint8_t)(x - al * y))
BIN_LOOP(mul_u, uint8_t, uint8_t, u, (uint8_t)(x * y))
BIN_LOOP(pow_u, uint8_t, uint8_t, u, (uint8_t)dl_ipow(x, y))
BIN_LOOP(rem_u, uint8_t, uint8_t, u, dl_uremainder(x, y, &zd))
BIN_LOOP(fdiv_u, uint8_t, uint8_t, u, dl_ufloordiv(x, y, &zd))
BIN_LOOP(max_u, uint8_t, uint8_t, u, x > y ? x : y)
BIN_LOOP(min_u, uint8_t, uint8_t, u, x < y ? x : y)

/* bool: add is or, mul is and (values stay 0/1) */
BIN_LOOP(add_b, uint8_t, uint8_t, u, x | y)
BIN_LOOP(mul_b, uint8_t, uint8_t, u, x & y)

/* comparisons and logical ops write bool, for every input dtype */
#define CMP_LOOPS(S, T, AF)                                        \
  BIN_LOOP(eq_##S, uint8_t, T, AF, x == y)                         \
  BIN_LOOP(ne_##S, uint8_t, T, AF, x != y)                         \
  BIN_LOOP(lt_##S, uint8_t, T, AF, x < y)                          \
  BIN_LOOP(le_##S, uint8_t, T, AF, x <= y)                         \
  BIN_LOOP(gt_##S, uint8_t, T, AF, x > y)                          \
  BIN_LOOP(ge_##S, uint8_t, T, AF, x >= y)                         \
  BIN_LOOP(land_##S, uint8_t, T, AF, (x != 0) & (y != 0))          \
  BIN_LOOP(lor_##S, uint8_t, T, AF, (x != 0) | (y != 0))           \
  BIN_LOOP(lxor_##S, uint8_t, T, AF, (x != 0) ^ (y != 0))

CMP_LOOPS(f, float, f)
CMP_LOOPS(d, double, d)
CMP_LOOPS(i, int64_t, i)
CMP_LOOPS(u, uint8_t, u)

/* columns: float32, float64, int64, bool, uint8; NULL = not defined (the
 * front-end promotes or refuses first) */
#define CMP_ROW(OP) {OP##_f, OP##_d, OP##_i, OP##_u, OP##_u}
static const dl_iter_fn binary_table[DL_NBINOPS][DL_NDTYPES] = {
  [DL_BIN_ADD] = {add_f, add_d, add_i, add_b, add_u},
  [DL_BIN_SUB] = {sub_f, sub_d, sub_i, NULL, sub_u},
  [DL_BIN_MUL] = {mul_f, mul_d, mul_i, mul_b, mul_u},
  [DL_BIN_DIV] = {div_f, div_d, NULL, NULL, NULL},
  [DL_BIN_POW] = {pow_f, pow_d, pow_i, NULL, pow_u},
  [DL_BIN_REMAINDER] = {rem_f, rem_d, rem_i, NULL, rem_u},
  [DL_BIN_FLOOR_DIVIDE] = {fdiv_f, fdiv_d, fdiv_i, NULL, fdiv_u},
  [DL_BIN_MAXIMUM] = {max_f, max_d, max_i, max_u, max_u},
  [DL_BIN_MINIMUM] = {min_f, min_d, min_i, min_u, min_u},
  [DL_BIN_EQ] = CMP_ROW(eq),
  [DL_BIN_NE] = CMP_ROW(ne),
  [DL_BIN_LT] = CMP_ROW(lt),
  [DL_BIN_LE] = CMP_ROW(le),
  [DL_BIN_GT] = CMP_ROW(gt),
  [DL_BIN_GE] = CMP_ROW(ge),
  [DL_BIN_LOGICAL_AND] = CMP_ROW(land),
  [DL_BIN_LOGICAL_OR] = CMP_ROW(lor),
  [DL_BIN_LOGICAL_XOR] = CMP_ROW(lxor),
};

static int cpu_binary(dl_binop op, dl_tensor *out, dl_operand a, dl_operand b, dl_scalar alpha) {
  dl_dtype ct = a.t ? a.t->dtype : b.t->dtype;
  bin_ctx ctx;
  ctx.alpha = dl_cpu_value_of(alpha, ct);
  ctx.zerodiv = 0;
  dl_cpu_value vals[3];
  if (!a.t) vals[1] = dl_cpu_value_of(a.s, ct);
  if (!b.t) vals[2] = dl_cpu_value_of(b.s, ct);
  dl_tensor *ops[3] = {out, (dl_tensor *)a.t, (dl_tensor *)b.t};
  dl_cpu_run(3, ops, vals, binary_table[op][ct], &ctx);
  return ctx.zerodiv ? DL_EWISE_ZERODIV : 0;
}

bool dl_cpu_binary_has(dl_binop op, dl_dtype dt) { return binary_table[op][dt] != NULL; }

const struct dl_ewise_kernels dl_cpu_ewise = {
  .binary = cpu_binary,
  .unary = dl_cpu_ewise_unary,
  .clamp = dl_cpu_ewise_clamp,
  .lerp = dl_cpu_ewise_lerp,
  .addc = dl_cpu_ewise_addc,
  .where = dl_cpu_ewise_where,
  .isclose = dl_cpu_ewise_isclose,
  .all = dl_cpu_ewise_all,
};
