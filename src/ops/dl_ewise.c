/* dl_ewise.c — element-wise front-ends: type promotion, operand
 * preparation, and the binary and unary ops. */
#include "dl_ewise_impl.h"

#include <string.h>

/* ---- names (from the op table) ---- */

const char *dl_binop_name(dl_binop op) { return (unsigned)op < DL_NBINOPS ? dl_op_name(dl_binop_op(op)) : "?"; }
const char *dl_unop_name(dl_unop op) { return (unsigned)op < DL_NUNOPS ? dl_op_name(dl_unop_op(op)) : "?"; }

/* in-place names ("add_") for error messages */
static const char *inplace_name(dl_op op) {
  const dl_op_info *in = dl_op_get(op);
  return in->name_ ? in->name_ : in->name;
}

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
    else wrapped = promote_or(wrapped, ops[k].s.is_bool ? DL_BOOL : ops[k].s.is_int ? DL_INT64 : DL_FLOAT32);
  }
  int r = combine(dim, combine(zero, wrapped));
  return r == UNDEF ? DL_FLOAT32 : (dl_dtype)r;
}

static int category(dl_dtype dt) { return dt == DL_BOOL ? 0 : dl_dtype_is_float(dt) ? 2 : 1; }

static bool can_cast(dl_dtype from, dl_dtype to) { return category(from) <= category(to); }

/* ---- operand preparation ---- */

int dl_ewise_fail(const char *fn, int rc) {
  if (rc != DL_EWISE_ZERODIV) return dl_kernel_fail(fn);
  dl_error_set("%s: ZeroDivisionError (integer division by zero)", fn);
  return -1;
}

void dl_ewise_prep_free(dl_ewise_prep *p) {
  for (int k = 0; k < p->n; k++) {
    dl_tensor_release(p->hold[k]);
    p->hold[k] = NULL;
  }
}

int dl_ewise_prep_init(dl_ewise_prep *p, const char *fn, dl_op op, int n, const dl_operand *in, const dl_dtype *cts,
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
  if (!(p->k = dl_ewise_kernels_for(fn, op, p->dev, cts[n - 1]))) return -1;
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
    if (self && e->storage == self->storage && !dl_tensor_same_view(e, self)) {
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
  if (!can_cast(rt, self->dtype)) {
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

/* compute dtype ct (what the operands are cast to) and output dtype ot,
 * from the op's dtype rule */
static int binary_types(const char *fn, dl_binop op, dl_dtype rt, dl_scalar alpha, dl_dtype *ct, dl_dtype *ot) {
  dl_dtype_rule rule = dl_binop_rule(op);
  *ct = rt;
  if (rule == DL_RULE_TO_FLOAT && !dl_dtype_is_float(rt)) *ct = DL_FLOAT32;
  if (rule == DL_RULE_NUMERIC && rt == DL_BOOL) {
    if (op == DL_BIN_SUB)
      dl_error_set("%s: subtraction with bool tensors is not supported; use logical_xor or logical_not", fn);
    else
      dl_error_set("%s: not supported for bool tensors", fn);
    return -1;
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
  *ot = dl_rule_writes_bool(rule) ? DL_BOOL : *ct;
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

dl_tensor *dl_op_binary(dl_binop op, const dl_tensor *a, const dl_tensor *b, dl_scalar alpha) {
  /* fast path: same dtype, shape and device, both contiguous — no casts,
   * no broadcasting, one allocation */
  if (a->dtype == b->dtype && dl_tensor_same_shape(a, b) && dl_device_eq(dl_tensor_device(a), dl_tensor_device(b)) &&
      dl_tensor_is_contiguous(a) && dl_tensor_is_contiguous(b)) {
    const char *fn = dl_binop_name(op);
    dl_dtype ct, ot;
    if (binary_types(fn, op, a->dtype, alpha, &ct, &ot)) return NULL;
    if (ct == a->dtype) {
      const struct dl_ewise_kernels *k = dl_ewise_kernels_for(fn, dl_binop_op(op), dl_tensor_device(a), ct);
      if (!k) return NULL;
      dl_tensor *out = dl_tensor_empty(a->shape, a->ndim, ot, dl_tensor_device(a));
      if (out && dl_ewise_status(fn, k->binary(op, out, dl_operand_tensor(a), dl_operand_tensor(b), alpha))) {
        dl_tensor_release(out);
        return NULL;
      }
      return out;
    }
  }
  return dl_op_binary_ex(op, dl_operand_tensor(a), dl_operand_tensor(b), alpha);
}

dl_tensor *dl_op_binary_ex(dl_binop op, dl_operand a, dl_operand b, dl_scalar alpha) {
  const char *fn = dl_binop_name(op);
  dl_operand in[2] = {a, b};
  dl_dtype ct, ot;
  if (binary_types(fn, op, dl_result_type(in, 2), alpha, &ct, &ot)) return NULL;
  if (operand_checks(fn, op, ct, a, b)) return NULL;
  /* fast path: a contiguous tensor of the compute dtype and a number */
  const dl_tensor *t = a.t ? a.t : b.t;
  if (t && (!a.t || !b.t) && t->dtype == ct && dl_tensor_is_contiguous(t)) {
    const struct dl_ewise_kernels *k = dl_ewise_kernels_for(fn, dl_binop_op(op), dl_tensor_device(t), ct);
    if (!k) return NULL;
    dl_tensor *out = dl_tensor_empty(t->shape, t->ndim, ot, dl_tensor_device(t));
    if (out && dl_ewise_status(fn, k->binary(op, out, a, b, alpha))) {
      dl_tensor_release(out);
      return NULL;
    }
    return out;
  }
  dl_dtype cts[2] = {ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, dl_binop_op(op), 2, in, cts, NULL)) return NULL;
  dl_tensor *out = dl_tensor_empty(p.shape, p.ndim, ot, p.dev);
  if (out && dl_ewise_status(fn, p.k->binary(op, out, p.op[0], p.op[1], alpha))) {
    dl_tensor_release(out);
    out = NULL;
  }
  dl_ewise_prep_free(&p);
  return out;
}

int dl_op_binary_(dl_binop op, dl_tensor *self, dl_operand b, dl_scalar alpha) {
  const char *fn = inplace_name(dl_binop_op(op));
  dl_operand in[2] = {dl_operand_tensor(self), b};
  dl_dtype ct, ot;
  if (binary_types(fn, op, dl_result_type(in, 2), alpha, &ct, &ot)) return -1;
  if (operand_checks(fn, op, ct, in[0], b)) return -1;
  if (dl_ewise_check_inplace(fn, self, ot)) return -1;
  dl_dtype cts[2] = {ct, ct};
  dl_ewise_prep p;
  if (dl_ewise_prep_init(&p, fn, dl_binop_op(op), 2, in, cts, self)) return -1;
  /* integer division may fail midway: leave self untouched until it cannot */
  bool intdiv = (op == DL_BIN_REMAINDER || op == DL_BIN_FLOOR_DIVIDE) && !dl_dtype_is_float(ct);
  dl_tensor *target = dl_ewise_inplace_target(self, ot, intdiv);
  int rc = -1;
  if (target) {
    if (dl_ewise_status(fn, p.k->binary(op, target, p.op[0], p.op[1], alpha))) {
      dl_tensor_release(target);
    } else {
      dl_ewise_inplace_finish(self, target);
      rc = 0;
    }
  }
  dl_ewise_prep_free(&p);
  return rc;
}

/* ---- unary ---- */

/* compute and output dtypes from the op's dtype rule */
static int unary_types(const char *fn, dl_unop op, dl_dtype dt, dl_dtype *ct, dl_dtype *ot) {
  dl_dtype_rule rule = dl_unop_rule(op);
  *ct = dt;
  switch (rule) {
  case DL_RULE_TO_FLOAT:
    if (!dl_dtype_is_float(dt)) *ct = DL_FLOAT32;
    break;
  case DL_RULE_BOOL_AS_INT:
    if (dt == DL_BOOL) *ct = DL_INT64;
    break;
  case DL_RULE_NUMERIC:
  case DL_RULE_FLOAT_ONLY:
    if (dt == DL_BOOL) {
      if (op == DL_UN_NEG) dl_error_set("%s: negation of a bool tensor is not supported; use logical_not", fn);
      else dl_error_set("%s: not supported for bool tensors", fn);
      return -1;
    }
    if (rule == DL_RULE_FLOAT_ONLY && !dl_dtype_is_float(dt)) {
      dl_error_set("%s: not supported for integer tensors", fn);
      return -1;
    }
    break;
  default: break;
  }
  *ot = dl_rule_writes_bool(rule) ? DL_BOOL : *ct;
  return 0;
}

dl_tensor *dl_op_unary(dl_unop op, const dl_tensor *a) {
  const char *fn = dl_unop_name(op);
  dl_dtype ct, ot;
  if (unary_types(fn, op, a->dtype, &ct, &ot)) return NULL;
  const struct dl_ewise_kernels *k = dl_ewise_kernels_for(fn, dl_unop_op(op), dl_tensor_device(a), ct);
  if (!k) return NULL;
  dl_tensor *in = dl_tensor_to_dtype((dl_tensor *)a, ct);
  if (!in) return NULL;
  dl_tensor *out = dl_tensor_empty(a->shape, a->ndim, ot, dl_tensor_device(a));
  if (out && dl_ewise_status(fn, k->unary(op, out, in))) {
    dl_tensor_release(out);
    out = NULL;
  }
  dl_tensor_release(in);
  return out;
}

int dl_op_unary_(dl_unop op, dl_tensor *self) {
  const char *fn = inplace_name(dl_unop_op(op));
  dl_dtype ct, ot;
  if (unary_types(fn, op, self->dtype, &ct, &ot)) return -1;
  if (dl_ewise_check_inplace(fn, self, ot)) return -1;
  const struct dl_ewise_kernels *k = dl_ewise_kernels_for(fn, dl_unop_op(op), dl_tensor_device(self), ct);
  if (!k) return -1;
  dl_tensor *in = dl_tensor_to_dtype(self, ct);
  if (!in) return -1;
  dl_tensor *target = dl_ewise_inplace_target(self, ot, false);
  int rc = -1;
  if (target && dl_ewise_status(fn, k->unary(op, target, in))) {
    dl_tensor_release(target);
  } else if (target) {
    dl_ewise_inplace_finish(self, target);
    rc = 0;
  }
  dl_tensor_release(in);
  return rc;
}
