/* grad_ewise_rules.c — the local derivative of every element-wise op, as
 * PyTorch defines it (ties of maximum split the gradient, clamp passes it
 * where lo <= x <= hi, pow's base gets 0 where the exponent is 0, ...),
 * written once for both the backward rule (v = the output gradient) and
 * the jvp rule (v = an operand's tangent). */
#include "grad_ewise_impl.h"
#include "grad_glue.h"

#include "../ops/dl_activation.h"

#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#define LN2 0.693147180559945309417
#define LN10 2.30258509299404568402

/* ---- expression glue ----
 * Every helper consumes its tensor arguments and is NULL-safe (a NULL from
 * a failed step makes the result NULL), so a formula reads as one
 * expression checked once. Lower-case helpers are differentiable; p_*
 * helpers are plain, for masks, which are constants to autograd. */

typedef dl_tensor T;


static dl_operand num(double s) { return dl_operand_scalar(dl_scalar_f(s)); }

static T *bin(dl_binop op, T *a, T *b) {
  return take2(a && b ? dl_ag_binary(op, dl_operand_tensor(a), dl_operand_tensor(b), dl_scalar_i(1)) : NULL, a, b);
}
static T *sub(T *a, T *b) { return bin(DL_BIN_SUB, a, b); }
static T *mul(T *a, T *b) { return bin(DL_BIN_MUL, a, b); }
static T *dv(T *a, T *b) { return bin(DL_BIN_DIV, a, b); }
static T *pw(T *a, T *b) { return bin(DL_BIN_POW, a, b); }
static T *bin_s(dl_binop op, T *a, double s) {
  return take1(a ? dl_ag_binary(op, dl_operand_tensor(a), num(s), dl_scalar_i(1)) : NULL, a);
}
static T *mul_s(T *a, double s) { return bin_s(DL_BIN_MUL, a, s); }
static T *add_s(T *a, double s) { return bin_s(DL_BIN_ADD, a, s); }
static T *pow_s(T *a, double s) { return bin_s(DL_BIN_POW, a, s); }
/* s - a */
static T *rsub_s(double s, T *a) {
  return take1(a ? dl_ag_binary(DL_BIN_SUB, num(s), dl_operand_tensor(a), dl_scalar_i(1)) : NULL, a);
}
static T *un(dl_unop op, T *a) { return t_un(op, a); }
static T *neg(T *a) { return un(DL_UN_NEG, a); }
/* cond ? v : 0 (keep) or cond ? 0 : v (!keep); cond is a plain mask */
static T *pick(T *cond, T *v, bool keep) {
  dl_operand z = num(0), tv = dl_operand_tensor(v);
  return take2(cond && v ? dl_ag_where(cond, keep ? tv : z, keep ? z : tv) : NULL, cond, v);
}

static T *p_bin_s(dl_binop op, T *a, double s) {
  return take1(a ? dl_op_binary_ex(op, dl_operand_tensor(a), num(s), dl_scalar_i(1)) : NULL, a);
}

static T *zeros_like(const T *v) { return dl_tensor_zeros(v->shape, v->ndim, v->dtype, dl_tensor_device(v)); }

/* ---- binary ---- */

/* maximum: 1 where a wins, 1/2 on ties, 0 where b wins (NaN passes, as in
 * PyTorch); minimum with the comparison turned */
static T *extreme_share(bool max, int k, T *a, T *b, dl_dtype dt) {
  dl_binop lose = (max == (k == 0)) ? DL_BIN_LT : DL_BIN_GT;
  T *l = p_float(p_bin(lose, ref(a), ref(b)), dt);
  T *e = p_float(p_bin(DL_BIN_EQ, ref(a), ref(b)), dt);
  T *m = take1(l ? dl_op_binary_ex(DL_BIN_SUB, num(1), dl_operand_tensor(l), dl_scalar_i(1)) : NULL, l);
  return p_bin(DL_BIN_SUB, m, p_bin_s(DL_BIN_MUL, e, 0.5));
}

static T *binary_local(const ew_ctx *c, int k, T *const *x, T *v) {
  T *a = x[0], *b = x[1];
  switch ((dl_binop)c->op) {
  case DL_BIN_ADD:
  case DL_BIN_SUB: {
    double f = k == 0 ? 1 : (c->op == DL_BIN_SUB ? -c->alpha : c->alpha);
    return f == 1 ? ref(v) : mul_s(ref(v), f);
  }
  case DL_BIN_MUL: return mul(ref(v), ref(k == 0 ? b : a));
  case DL_BIN_DIV:
    if (k == 0) return dv(ref(v), ref(b));
    return neg(dv(mul(ref(v), ref(a)), mul(ref(b), ref(b))));
  case DL_BIN_POW:
    if (k == 0) /* b * a^(b-1), 0 where b == 0 */
      return pick(p_bin_s(DL_BIN_EQ, ref(b), 0), mul(mul(ref(v), ref(b)), pw(ref(a), add_s(ref(b), -1))), false);
    /* a^b * log(a), 0 where a == 0 and b >= 0 */
    return pick(p_bin(DL_BIN_LOGICAL_AND, p_bin_s(DL_BIN_EQ, ref(a), 0), p_bin_s(DL_BIN_GE, ref(b), 0)),
                mul(ref(v), mul(pw(ref(a), ref(b)), un(DL_UN_LOG, ref(a)))), false);
  case DL_BIN_REMAINDER: /* a - floor(a / b) * b */
    if (k == 0) return ref(v);
    return mul(ref(v), p_un(DL_UN_NEG, p_bin(DL_BIN_FLOOR_DIVIDE, ref(a), ref(b))));
  case DL_BIN_FLOOR_DIVIDE: return zeros_like(v);
  case DL_BIN_MAXIMUM:
  case DL_BIN_MINIMUM: return mul(ref(v), extreme_share(c->op == DL_BIN_MAXIMUM, k, a, b, v->dtype));
  default: break;
  }
  dl_error_set("%s: not differentiable", dl_binop_name((dl_binop)c->op));
  return NULL;
}

static void binary_uses(const ew_ctx *c, int k, bool *x) {
  switch ((dl_binop)c->op) {
  case DL_BIN_MUL: x[1 - k] = true; break;
  case DL_BIN_DIV:
    x[1] = true;
    if (k == 1) x[0] = true;
    break;
  case DL_BIN_REMAINDER:
    if (k == 1) x[0] = x[1] = true;
    break;
  case DL_BIN_POW:
  case DL_BIN_MAXIMUM:
  case DL_BIN_MINIMUM: x[0] = x[1] = true; break;
  default: break;
  }
}

/* ---- unary ---- */

/* what each unary rule reads: the input, the output, or neither */
enum { U_NONE, U_X, U_Y };
static int unary_reads(dl_unop op) {
  switch (op) {
  case DL_UN_ABS:
  case DL_UN_SQUARE:
  case DL_UN_LOG:
  case DL_UN_LOG2:
  case DL_UN_LOG10:
  case DL_UN_LOG1P:
  case DL_UN_SIN:
  case DL_UN_COS:
  case DL_UN_ATAN:
  case DL_UN_SINH:
  case DL_UN_COSH:
  case DL_UN_ASINH:
  case DL_UN_ERF: return U_X;
  case DL_UN_RELU:
  case DL_UN_SQRT:
  case DL_UN_RSQRT:
  case DL_UN_EXP:
  case DL_UN_EXP2:
  case DL_UN_EXPM1:
  case DL_UN_TAN:
  case DL_UN_TANH:
  case DL_UN_SIGMOID:
  case DL_UN_RECIPROCAL: return U_Y;
  default: return U_NONE;
  }
}

static T *unary_local(const ew_ctx *c, T *x, T *y, T *v) {
  switch ((dl_unop)c->op) {
  case DL_UN_NEG: return neg(ref(v));
  case DL_UN_ABS: return mul(ref(v), p_un(DL_UN_SIGN, ref(x)));
  case DL_UN_SIGN:
  case DL_UN_FLOOR:
  case DL_UN_CEIL:
  case DL_UN_ROUND:
  case DL_UN_TRUNC: return zeros_like(v);
  case DL_UN_FRAC: return ref(v);
  case DL_UN_RELU:
    /* not recording (a first-order backward, or a jvp): one fused pass */
    if (!dl_grad_enabled()) return dl_op_act_backward(DL_ACT_RELU, v, y, 0, 0);
    /* 0 where y <= 0, else v: a NaN passes, as the fused pass and PyTorch's threshold_backward */
    return pick(p_bin_s(DL_BIN_LE, ref(y), 0), ref(v), false);
  case DL_UN_SQUARE: return mul(ref(v), mul_s(ref(x), 2));
  case DL_UN_SQRT: return dv(ref(v), mul_s(ref(y), 2));
  case DL_UN_RSQRT: return mul(ref(v), mul_s(pow_s(ref(y), 3), -0.5));
  case DL_UN_EXP: return mul(ref(v), ref(y));
  case DL_UN_EXP2: return mul(ref(v), mul_s(ref(y), LN2));
  case DL_UN_LOG: return dv(ref(v), ref(x));
  case DL_UN_LOG2: return dv(ref(v), mul_s(ref(x), LN2));
  case DL_UN_LOG10: return dv(ref(v), mul_s(ref(x), LN10));
  case DL_UN_LOG1P: return dv(ref(v), add_s(ref(x), 1));
  case DL_UN_EXPM1: return mul(ref(v), add_s(ref(y), 1));
  case DL_UN_SIN: return mul(ref(v), un(DL_UN_COS, ref(x)));
  case DL_UN_COS: return mul(ref(v), neg(un(DL_UN_SIN, ref(x))));
  case DL_UN_TAN: return mul(ref(v), add_s(un(DL_UN_SQUARE, ref(y)), 1));
  case DL_UN_ATAN: return dv(ref(v), add_s(un(DL_UN_SQUARE, ref(x)), 1));
  case DL_UN_SINH: return mul(ref(v), un(DL_UN_COSH, ref(x)));
  case DL_UN_COSH: return mul(ref(v), un(DL_UN_SINH, ref(x)));
  case DL_UN_ASINH: return mul(ref(v), un(DL_UN_RSQRT, add_s(un(DL_UN_SQUARE, ref(x)), 1)));
  case DL_UN_TANH: return mul(ref(v), rsub_s(1, un(DL_UN_SQUARE, ref(y))));
  case DL_UN_SIGMOID: return mul(ref(v), mul(ref(y), rsub_s(1, ref(y))));
  case DL_UN_ERF: return mul(ref(v), mul_s(un(DL_UN_EXP, neg(un(DL_UN_SQUARE, ref(x)))), 2 / sqrt(M_PI)));
  case DL_UN_RECIPROCAL: return mul(ref(v), neg(un(DL_UN_SQUARE, ref(y))));
  default: break;
  }
  dl_error_set("%s: not differentiable", dl_unop_name((dl_unop)c->op));
  return NULL;
}

/* ---- clamp ---- */

/* PyTorch's clamp_backward_min_max: x where lo <= x <= hi, lo where x < lo
 * (and lo < hi), hi where x > hi (or hi < lo) */
static T *clamp_mask(const ew_ctx *c, int k, T *const *x) {
  bool lo = ew_has(c, 1), hi = ew_has(c, 2);
  if (k == 0) {
    T *m_lo = lo ? p_bin(DL_BIN_GE, ref(x[0]), ref(x[1])) : NULL;
    T *m_hi = hi ? p_bin(DL_BIN_LE, ref(x[0]), ref(x[2])) : NULL;
    if (lo && hi) return p_bin(DL_BIN_LOGICAL_AND, m_lo, m_hi);
    return lo ? m_lo : m_hi;
  }
  if (k == 1) {
    T *m = p_bin(DL_BIN_LT, ref(x[0]), ref(x[1]));
    return hi ? p_bin(DL_BIN_LOGICAL_AND, m, p_bin(DL_BIN_LT, ref(x[1]), ref(x[2]))) : m;
  }
  T *m = p_bin(DL_BIN_GT, ref(x[0]), ref(x[2]));
  return lo ? p_bin(DL_BIN_LOGICAL_OR, m, p_bin(DL_BIN_LT, ref(x[2]), ref(x[1]))) : m;
}

/* ---- the rules ---- */

T *ew_local(const ew_ctx *c, int k, T *const *x, T *y, T *v) {
  switch ((ew_kind)c->kind) {
  case EW_BINARY: return binary_local(c, k, x, v);
  case EW_UNARY: return unary_local(c, x[0], y, v);
  case EW_CLAMP: return pick(clamp_mask(c, k, x), ref(v), true);
  case EW_LERP: /* a + w (end - a) */
    if (k == 0) return mul(ref(v), rsub_s(1, ref(x[2])));
    if (k == 1) return mul(ref(v), ref(x[2]));
    return mul(ref(v), sub(ref(x[1]), ref(x[0])));
  case EW_ADDCMUL: /* a + value t1 t2 */
    if (k == 0) return ref(v);
    return mul(ref(v), mul_s(ref(x[k == 1 ? 2 : 1]), c->alpha));
  case EW_ADDCDIV: /* a + value t1 / t2 */
    if (k == 0) return ref(v);
    if (k == 1) return dv(mul_s(ref(v), c->alpha), ref(x[2]));
    return mul_s(dv(mul(ref(v), ref(x[1])), mul(ref(x[2]), ref(x[2]))), -c->alpha);
  case EW_WHERE: return pick(ref(x[0]), ref(v), k == 1);
  case EW_MASKED_FILL: return pick(ref(x[1]), ref(v), k == 2);
  }
  dl_error_set("autograd: unknown element-wise op");
  return NULL;
}

void ew_uses(const ew_ctx *c, int k, bool *x, bool *y) {
  switch ((ew_kind)c->kind) {
  case EW_BINARY: binary_uses(c, k, x); break;
  case EW_UNARY: {
    int r = unary_reads((dl_unop)c->op);
    if (r == U_X) x[0] = true;
    if (r == U_Y) *y = true;
    break;
  }
  case EW_CLAMP: x[0] = x[1] = x[2] = true; break;
  case EW_LERP:
    if (k == 2) x[0] = x[1] = true;
    else x[2] = true;
    break;
  case EW_ADDCMUL:
    if (k) x[3 - k] = true;
    break;
  case EW_ADDCDIV:
    if (k) x[2] = true;
    if (k == 2) x[1] = true;
    break;
  case EW_WHERE: x[0] = true; break;
  case EW_MASKED_FILL: x[1] = true; break;
  }
}

/* ---- node types and names ---- */

#define TYPE(NAME) {NAME, ew_backward, NULL}
/* [op][0]: two tensors, [op][1]: with a number (ops.def's grad column) */
static const dl_node_type binary_types[DL_NBINOPS][2] = {
#define DL_OP_BINARY(ID, name, ar, rule, ip, grad) \
  [DL_BIN_##ID] = {TYPE(DL_GRAD_NAME(grad)), TYPE(DL_GRAD_NAME_NUM(grad))},
#include "../ops/ops_each.h"
};
/* PyTorch's names where the number's side matters: number ^ tensor,
 * number - tensor, lerp with a number weight */
static const dl_node_type pow_scalar_base_type = TYPE("PowBackward1");
static const dl_node_type rsub_type = TYPE("RsubBackward1");
static const dl_node_type lerp_scalar_type = TYPE("LerpBackward0");

static const dl_node_type unary_types[DL_NUNOPS] = {
#define DL_OP_UNARY(ID, name, ar, rule, ip, grad) [DL_UN_##ID] = TYPE(DL_GRAD_NAME(grad)),
#include "../ops/ops_each.h"
};

/* the other element-wise kinds and their ops in the table */
static const dl_op misc_ops[] = {
  [EW_CLAMP] = DL_OP_CLAMP,     [EW_LERP] = DL_OP_LERP,   [EW_ADDCMUL] = DL_OP_ADDCMUL,
  [EW_ADDCDIV] = DL_OP_ADDCDIV, [EW_WHERE] = DL_OP_WHERE, [EW_MASKED_FILL] = DL_OP_MASKED_FILL,
};

static const dl_node_type misc_types[] = {
#define DL_OP_EWISE(ID, name, ar, rule, ip, grad) [DL_OP_##ID] = TYPE(DL_GRAD_NAME(grad)),
#include "../ops/ops_each.h"
};

const dl_node_type *ew_type(const ew_ctx *c) {
  if (c->kind == EW_BINARY) {
    bool a = ew_is_tensor(c, 0), b = ew_is_tensor(c, 1);
    if (c->op == DL_BIN_POW && !a) return &pow_scalar_base_type;
    if (c->op == DL_BIN_SUB && !a) return &rsub_type;
    return &binary_types[c->op][a && b ? 0 : 1];
  }
  if (c->kind == EW_UNARY) return &unary_types[c->op];
  if (c->kind == EW_LERP && !ew_is_tensor(c, 2)) return &lerp_scalar_type;
  return &misc_types[misc_ops[c->kind]];
}

const char *ew_inplace_name(const ew_ctx *c) {
  dl_op op = c->kind == EW_BINARY  ? dl_binop_op((dl_binop)c->op)
             : c->kind == EW_UNARY ? dl_unop_op((dl_unop)c->op)
                                   : misc_ops[c->kind];
  const dl_op_info *in = dl_op_get(op);
  return in->name_ ? in->name_ : in->name;
}
