/* dl_ewise.c — element-wise front-ends: type promotion, operand
 * preparation, and the binary and unary ops. */
#include "dl_ewise_impl.h"

#include <string.h>

/* ---- names ---- */

static const char *const binop_names[DL_NBINOPS] = {
  "add", "sub", "mul", "div", "pow", "remainder", "floor_divide", "maximum", "minimum",
  "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
};

static const char *const unop_names[DL_NUNOPS] = {
  "neg", "abs", "sign", "relu", "square", "floor", "ceil", "round", "trunc", "frac",
  "sqrt", "rsqrt", "exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sin", "cos", "tan", "atan",
  "tanh", "sigmoid", "erf", "reciprocal", "logical_not", "isnan", "isinf", "isfinite",
};

/* in-place names ("add_") for error messages */
static const char *const binop_names_[DL_NBINOPS] = {
  "add_", "sub_", "mul_", "div_", "pow_", "remainder_", "floor_divide_", "maximum_", "minimum_",
  "eq_", "ne_", "lt_", "le_", "gt_", "ge_", "logical_and_", "logical_or_", "logical_xor_",
};

static const char *const unop_names_[DL_NUNOPS] = {
  "neg_", "abs_", "sign_", "relu_", "square_", "floor_", "ceil_", "round_", "trunc_", "frac_",
  "sqrt_", "rsqrt_", "exp_", "exp2_", "log_", "log2_", "log10_", "log1p_", "expm1_", "sin_", "cos_", "tan_",
  "atan_", "tanh_", "sigmoid_", "erf_", "reciprocal_", "logical_not_", "isnan_", "isinf_", "isfinite_",
};

const char *dl_binop_name(dl_binop op) { return (unsigned)op < DL_NBINOPS ? binop_names[op] : "?"; }
const char *dl_unop_name(dl_unop op) { return (unsigned)op < DL_NUNOPS ? unop_names[op] : "?"; }

/* ---- type promotion ---- */

#define UNDEF ((int)-1)

static int promote_or(int a, dl_dtype b) { return a == UNDEF ? (int)b : (int)dl_dtype_promote((dl_dtype)a, b); }

/* PyTorch's combine_categories: a higher-priority group keeps its dtype
 * unless the lower one is of a higher category (bool < integer < float). */
static int combine(int higher, int lower) {
  if (higher == UNDEF) return lower;
  if (lower == UNDEF) return higher;
  if (dl_dtype_is_float((dl_dtype)higher)) return higher;
  if (higher == DL_BOOL || dl_dtype_is_float((dl_dtype)lower)) return (int)dl_dtype_promote((dl_dtype)higher, (dl_dtype)lower);
  return higher;
}

dl_dtype dl_result_type(const dl_operand *ops, int n) {
  int dim = UNDEF, zero = UNDEF, wrapped = UNDEF;
  for (int k = 0; k < n; k++) {
    const dl_tensor *t = ops[k].t;
    if (t && t->ndim > 0) dim = promote_or(dim, t->dtype);
    else if (t) zero = promote_or(zero, t->dtype);
    else wrapped = promote_or(wrapped, ops[k].s.is_int ? DL_INT64 : DL_FLOAT32);
  }
  int r = combine(dim, combine(zero, wrapped));
  return r == UNDEF ? DL_FLOAT32 : (dl_dtype)r;
}

static int category(dl_dtype dt) { return dt == DL_BOOL ? 0 : dl_dtype_is_float(dt) ? 2 : 1; }

bool dl_can_cast(dl_dtype from, dl_dtype to) { return category(from) <= category(to); }

/* ---- operand preparation ---- */

const struct dl_ewise_kernels *dl_ewise_kernels_of(const char *fn, dl_device dev) {
  const dl_backend *be = dl_backend_get(dev);
  if (!be) return NULL;
  if (!be->ewise) {
    dl_error_set("%s: element-wise ops are not available on the %s backend", fn, be->name);
    return NULL;
  }
  return be->ewise;
}

static bool same_view(const dl_tensor *a, const dl_tensor *b) {
  if (a->storage != b->storage || a->offset != b->offset || a->dtype != b->dtype || a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d] || (a->shape[d] > 1 && a->stride[d] != b->stride[d])) return false;
  return true;
}

void dl_ewise_prep_free(dl_ewise_prep *p) {
  for (int k = 0; k < p->n; k++) {
    dl_tensor_release(p->hold[k]);
    p->hold[k] = NULL;
  }
}

int dl_ewise_prep_init(dl_ewise_prep *p, const char *fn, int n, const dl_operand *in, const dl_dtype *cts,
                       const dl_tensor *self) {
  p->n = n;
  for (int k = 0; k < n; k++) p->hold[k] = NULL;
  const dl_tensor *first = self;
  for (int k = 0; k < n && !first; k++) first = in[k].t;
  if (!first) {
    dl_error_set("%s: at least one operand must be a tensor", fn);
    return -1;
  }
  p->dev = dl_tensor_device(first);
  p->ndim = first->ndim;
  memcpy(p->shape, first->shape, sizeof(int64_t) * (size_t)first->ndim);
  for (int k = 0; k < n; k++) {
    const dl_tensor *t = in[k].t;
    if (!t) continue;
    if (dl_check_same_device(fn, first, t)) return -1;
    int64_t sh[DL_MAX_DIMS];
    int nd;
    if (dl_broadcast_shapes(fn, p->shape, p->ndim, t->shape, t->ndim, sh, &nd)) return -1;
    memcpy(p->shape, sh, sizeof(int64_t) * (size_t)nd);
    p->ndim = nd;
  }
  if (self && (p->ndim != self->ndim || memcmp(p->shape, self->shape, sizeof(int64_t) * (size_t)p->ndim) != 0)) {
    char b1[128], b2[128];
    dl_error_set("%s: output with shape %s doesn't match the broadcast shape %s", fn,
                 dl_tensor_shape_str(self, b1, sizeof b1), dl_shape_str(p->shape, p->ndim, b2, sizeof b2));
    return -1;
  }
  if (!(p->k = dl_ewise_kernels_of(fn, p->dev))) return -1;
  for (int k = 0; k < n; k++) {
    if (!in[k].t) {
      p->op[k] = in[k];
      continue;
    }
    dl_tensor *c = dl_tensor_to_dtype((dl_tensor *)in[k].t, cts[k]);
    if (!c) goto fail;
    dl_tensor *e = dl_tensor_expand(c, p->shape, p->ndim);
    dl_tensor_release(c);
    if (!e) goto fail;
    if (self && e->storage == self->storage && !same_view(e, self)) {
      /* a partial overlap would read elements already written */
      dl_tensor *cl = dl_tensor_clone(e);
      dl_tensor_release(e);
      if (!cl) goto fail;
      e = cl;
    }
    p->hold[k] = e;
    p->op[k] = dl_operand_tensor(e);
  }
  return 0;
fail:
  dl_ewise_prep_free(p);
  return -1;
}

int dl_ewise_check_inplace(const char *fn, const dl_tensor *self, dl_dtype rt) {
  if (!dl_can_cast(rt, self->dtype)) {
    dl_error_set("%s: result type %s can't be cast to the desired output type %s", fn, dl_dtype_name(rt),
                 dl_dtype_name(self->dtype));
    return -1;
  }
  for (int d = 0; d < self->ndim; d++)
    if (self->stride[d] == 0 && self->shape[d] > 1) {
      dl_error_set("%s: more than one element of the written-to tensor refers to a single memory location "
                   "(an expanded view); clone() it first", fn);
      return -1;
    }
  return 0;
}

dl_tensor *dl_ewise_inplace_target(dl_tensor *self, dl_dtype ot, bool force_tmp) {
  if (!force_tmp && ot == self->dtype) return dl_tensor_retain(self);
  return dl_tensor_empty(self->shape, self->ndim, ot, dl_tensor_device(self));
}

void dl_ewise_inplace_finish(dl_tensor *self, dl_tensor *target) {
  if (target != self) dl_backend_of(self)->copy(self, target);
  dl_tensor_release(target);
  dl_tensor_bump_version(self);
}

/* ---- binary ---- */

static bool is_one(dl_scalar s) { return s.is_int ? s.i == 1 : s.f == 1.0; }

/* compute dtype ct (what the operands are cast to) and output dtype ot */
static int binary_types(const char *fn, dl_binop op, dl_dtype rt, dl_scalar alpha, dl_dtype *ct, dl_dtype *ot) {
  *ct = rt;
  switch (op) {
  case DL_BIN_DIV:
    if (!dl_dtype_is_float(rt)) *ct = DL_FLOAT32;
    break;
  case DL_BIN_SUB:
    if (rt == DL_BOOL) {
      dl_error_set("%s: subtraction with bool tensors is not supported; use logical_xor or logical_not", fn);
      return -1;
    }
    break;
  case DL_BIN_POW:
  case DL_BIN_REMAINDER:
  case DL_BIN_FLOOR_DIVIDE:
    if (rt == DL_BOOL) {
      dl_error_set("%s: not supported for bool tensors", fn);
      return -1;
    }
    break;
  default: break;
  }
  if ((op == DL_BIN_ADD || op == DL_BIN_SUB) && !is_one(alpha)) {
    if (rt == DL_BOOL) {
      dl_error_set("%s: alpha must be 1 for bool tensors", fn);
      return -1;
    }
    if (!dl_dtype_is_float(rt) && !alpha.is_int) {
      dl_error_set("%s: alpha must be an integer for integer tensors, got %g", fn, alpha.f);
      return -1;
    }
  }
  *ot = op >= DL_BIN_EQ ? DL_BOOL : *ct;
  return 0;
}

/* checks that depend on the operands themselves, not only their dtype */
static int operand_checks(const char *fn, dl_binop op, dl_dtype ct, dl_operand a, dl_operand b) {
  if (op == DL_BIN_SUB && ((a.t && a.t->dtype == DL_BOOL) || (b.t && b.t->dtype == DL_BOOL))) {
    dl_error_set("%s: subtraction with a bool tensor is not supported; use logical_xor or logical_not", fn);
    return -1;
  }
  if (op == DL_BIN_POW && !dl_dtype_is_float(ct) && !b.t && b.s.is_int && b.s.i < 0) {
    dl_error_set("%s: integers to negative integer powers are not allowed", fn);
    return -1;
  }
  return 0;
}

static int zerodiv_error(const char *fn) {
  dl_error_set("%s: ZeroDivisionError (integer division by zero)", fn);
  return -1;
}

dl_tensor *dl_op_binary(dl_binop op, const dl_tensor *a, const dl_tensor *b, dl_scalar alpha) {
  /* fast path: same dtype, shape and device, both contiguous — no casts,
   * no broadcasting, one allocation */
  if (a->dtype == b->dtype && dl_tensor_same_shape(a, b) && dl_device_eq(dl_tensor_device(a), dl_tensor_device(b)) &&
      dl_ewise_contiguous(a) && dl_ewise_contiguous(b)) {
    const char *fn = binop_names[op];
    dl_dtype ct, ot;
    if (binary_types(fn, op, a->dtype, alpha, &ct, &ot)) return NULL;
    if (ct == a->dtype) {
      const struct dl_ewise_kernels *k = dl_ewise_kernels_of(fn, dl_tensor_device(a));
      if (!k) return NULL;
      dl_tensor *out = dl_tensor_empty(a->shape, a->ndim, ot, dl_tensor_device(a));
      if (!out) return NULL;
      if (k->binary(op, out, dl_operand_tensor(a), dl_operand_tensor(b), alpha)) {
        dl_tensor_release(out);
        zerodiv_error(fn);
        return NULL;
      }
      return out;
    }
  }
  return dl_op_binary_ex(op, dl_operand_tensor(a), dl_operand_tensor(b), alpha);
}

dl_tensor *dl_op_binary_ex(dl_binop op, dl_operand a, dl_operand b, dl_scalar alpha) {
  const char *fn = binop_names[op];
  dl_operand in[2] = {a, b};
  dl_dtype ct, ot;
  if (binary_types(fn, op, dl_result_type(in, 2), alpha, &ct, &ot)) return NULL;
  if (operand_checks(fn, op, ct, a, b)) return NULL;
  /* fast path: a contiguous tensor of the compute dtype and a number */
  const dl_tensor *t = a.t ? a.t : b.t;
  if (t && (!a.t || !b.t) && t->dtype == ct && dl_ewise_contiguous(t)) {
    const struct dl_ewise_kernels *k = dl_ewise_kernels_of(fn, dl_tensor_device(t));
    if (!k) return NULL;
    dl_tensor *out = dl_tensor_empty(t->shape, t->ndim, ot, dl_tensor_device(t));
    if (out && k->binary(op, out, a, b, alpha)) {
      dl_tensor_release(out);
      zerodiv_error(fn);
      return NULL;
    }
    return out;
  }
  dl_dtype cts[2] = {ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, 2, in, cts, NULL)) return NULL;
  dl_tensor *out = dl_tensor_empty(p.shape, p.ndim, ot, p.dev);
  if (out && p.k->binary(op, out, p.op[0], p.op[1], alpha)) {
    dl_tensor_release(out);
    out = NULL;
    zerodiv_error(fn);
  }
  dl_ewise_prep_free(&p);
  return out;
}

int dl_op_binary_(dl_binop op, dl_tensor *self, dl_operand b, dl_scalar alpha) {
  const char *fn = binop_names_[op];
  dl_operand in[2] = {dl_operand_tensor(self), b};
  dl_dtype ct, ot;
  if (binary_types(fn, op, dl_result_type(in, 2), alpha, &ct, &ot)) return -1;
  if (operand_checks(fn, op, ct, in[0], b)) return -1;
  if (dl_ewise_check_inplace(fn, self, ot)) return -1;
  dl_dtype cts[2] = {ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, 2, in, cts, self)) return -1;
  /* integer division may fail midway: leave self untouched until it cannot */
  bool intdiv = (op == DL_BIN_REMAINDER || op == DL_BIN_FLOOR_DIVIDE) && !dl_dtype_is_float(ct);
  dl_tensor *target = dl_ewise_inplace_target(self, ot, intdiv);
  int rc = -1;
  if (target) {
    if (p.k->binary(op, target, p.op[0], p.op[1], alpha)) {
      dl_tensor_release(target);
      zerodiv_error(fn);
    } else {
      dl_ewise_inplace_finish(self, target);
      rc = 0;
    }
  }
  dl_ewise_prep_free(&p);
  return rc;
}

/* ---- unary ---- */

static bool is_float_fn(dl_unop op) { return op >= DL_UN_SQRT && op <= DL_UN_RECIPROCAL; }

static int unary_types(const char *fn, dl_unop op, dl_dtype dt, dl_dtype *ct, dl_dtype *ot) {
  *ct = dt;
  if (is_float_fn(op)) {
    if (!dl_dtype_is_float(dt)) *ct = DL_FLOAT32;
  } else if (op >= DL_UN_LOGICAL_NOT) {
    *ot = DL_BOOL;
    return 0;
  } else if (dt == DL_BOOL) {
    if (op == DL_UN_NEG) {
      dl_error_set("%s: negation of a bool tensor is not supported; use logical_not", fn);
      return -1;
    }
    if (op == DL_UN_SQUARE) *ct = DL_INT64;
    else if (op != DL_UN_SIGN) {
      dl_error_set("%s: not supported for bool tensors", fn);
      return -1;
    }
  } else if (op == DL_UN_FRAC && !dl_dtype_is_float(dt)) {
    dl_error_set("%s: not supported for integer tensors", fn);
    return -1;
  }
  *ot = *ct;
  return 0;
}

dl_tensor *dl_op_unary(dl_unop op, const dl_tensor *a) {
  const char *fn = unop_names[op];
  dl_dtype ct, ot;
  if (unary_types(fn, op, a->dtype, &ct, &ot)) return NULL;
  const struct dl_ewise_kernels *k = dl_ewise_kernels_of(fn, dl_tensor_device(a));
  if (!k) return NULL;
  dl_tensor *in = dl_tensor_to_dtype((dl_tensor *)a, ct);
  if (!in) return NULL;
  dl_tensor *out = dl_tensor_empty(a->shape, a->ndim, ot, dl_tensor_device(a));
  if (out) k->unary(op, out, in);
  dl_tensor_release(in);
  return out;
}

int dl_op_unary_(dl_unop op, dl_tensor *self) {
  const char *fn = unop_names_[op];
  dl_dtype ct, ot;
  if (unary_types(fn, op, self->dtype, &ct, &ot)) return -1;
  if (dl_ewise_check_inplace(fn, self, ot)) return -1;
  const struct dl_ewise_kernels *k = dl_ewise_kernels_of(fn, dl_tensor_device(self));
  if (!k) return -1;
  dl_tensor *in = dl_tensor_to_dtype(self, ct);
  if (!in) return -1;
  dl_tensor *target = dl_ewise_inplace_target(self, ot, false);
  if (target) {
    k->unary(op, target, in);
    dl_ewise_inplace_finish(self, target);
  }
  dl_tensor_release(in);
  return target ? 0 : -1;
}
