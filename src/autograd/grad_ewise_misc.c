/* grad_ewise_misc.c — differentiable front-ends of the unary ops, clamp,
 * lerp, addcmul/addcdiv, where and masked_fill, and their in-place forms.
 * Each computes the plain op and leaves at once unless an operand requires
 * grad or carries a tangent; the rules are in grad_ewise_rules.c. */
#include "grad_ewise_impl.h"

static double scalar_value(dl_scalar s) { return s.is_int ? (double)s.i : s.f; }

/* ---- unary ---- */

static bool unary_differentiable(dl_unop op) { return op <= DL_UN_RECIPROCAL; }

dl_tensor *dl_ag_unary(dl_unop op, dl_tensor *a) {
  dl_tensor *out = dl_op_unary(op, a);
  if (!out || !ew_active(a) || !unary_differentiable(op)) return out;
  dl_operand o = dl_operand_tensor(a);
  ew_ctx c;
  ew_ctx_init(&c, EW_UNARY, op, 1, &o, 1);
  return ew_record(&c, &a, out);
}

int dl_ag_unary_(dl_unop op, dl_tensor *self) {
  if (!ew_active(self) || !unary_differentiable(op)) return dl_op_unary_(op, self);
  dl_operand o = dl_operand_tensor(self);
  ew_ctx c;
  ew_ctx_init(&c, EW_UNARY, op, 1, &o, 1);
  ew_pending p;
  if (ew_inplace_begin(&c, ew_inplace_name(&c), &self, &p)) return -1;
  return ew_inplace_end(&c, &self, &p, dl_op_unary_(op, self));
}

dl_tensor *dl_ag_neg(dl_tensor *a) { return dl_ag_unary(DL_UN_NEG, a); }
dl_tensor *dl_ag_abs(dl_tensor *a) { return dl_ag_unary(DL_UN_ABS, a); }
dl_tensor *dl_ag_sign(dl_tensor *a) { return dl_ag_unary(DL_UN_SIGN, a); }
dl_tensor *dl_ag_relu(dl_tensor *a) { return dl_ag_unary(DL_UN_RELU, a); }
dl_tensor *dl_ag_square(dl_tensor *a) { return dl_ag_unary(DL_UN_SQUARE, a); }
dl_tensor *dl_ag_rsqrt(dl_tensor *a) { return dl_ag_unary(DL_UN_RSQRT, a); }
dl_tensor *dl_ag_exp(dl_tensor *a) { return dl_ag_unary(DL_UN_EXP, a); }
dl_tensor *dl_ag_log(dl_tensor *a) { return dl_ag_unary(DL_UN_LOG, a); }
dl_tensor *dl_ag_log1p(dl_tensor *a) { return dl_ag_unary(DL_UN_LOG1P, a); }

/* ---- three operands ---- */

typedef struct {
  dl_operand ops[EW_MAXIN];
  dl_tensor *in[EW_MAXIN];
  unsigned present;
} operands3;

/* o[k] NULL: absent */
static operands3 operands_of(const dl_operand *o0, const dl_operand *o1, const dl_operand *o2) {
  operands3 r;
  const dl_operand *o[EW_MAXIN] = {o0, o1, o2};
  r.present = 0;
  for (int k = 0; k < EW_MAXIN; k++) {
    r.ops[k] = o[k] ? *o[k] : dl_operand_scalar(dl_scalar_i(0));
    r.in[k] = o[k] ? (dl_tensor *)o[k]->t : NULL;
    if (o[k]) r.present |= 1u << k;
  }
  return r;
}

static bool any_active(const operands3 *r) {
  return ew_active(r->in[0]) || ew_active(r->in[1]) || ew_active(r->in[2]);
}

static dl_tensor *record3(ew_kind kind, operands3 *r, double alpha, dl_tensor *out) {
  if (!out || !any_active(r)) return out;
  ew_ctx c;
  ew_ctx_init(&c, kind, 0, EW_MAXIN, r->ops, r->present);
  c.alpha = alpha;
  return ew_record(&c, r->in, out);
}

/* self is operand 0; write performs the plain in-place op */
#define INPLACE3(KIND, R, ALPHA, WRITE)                                  \
  do {                                                                   \
    if (!any_active(&(R))) return (WRITE);                               \
    ew_ctx c;                                                            \
    ew_ctx_init(&c, KIND, 0, EW_MAXIN, (R).ops, (R).present);            \
    c.alpha = (ALPHA);                                                   \
    ew_pending p;                                                        \
    if (ew_inplace_begin(&c, ew_inplace_name(&c), (R).in, &p)) return -1; \
    return ew_inplace_end(&c, (R).in, &p, (WRITE));                      \
  } while (0)

dl_tensor *dl_ag_clamp(dl_tensor *a, const dl_operand *lo, const dl_operand *hi) {
  dl_operand x = dl_operand_tensor(a);
  operands3 r = operands_of(&x, lo, hi);
  return record3(EW_CLAMP, &r, 1, dl_op_clamp(a, lo, hi));
}

int dl_ag_clamp_(dl_tensor *self, const dl_operand *lo, const dl_operand *hi) {
  dl_operand x = dl_operand_tensor(self);
  operands3 r = operands_of(&x, lo, hi);
  INPLACE3(EW_CLAMP, r, 1, dl_op_clamp_(self, lo, hi));
}

dl_tensor *dl_ag_lerp(dl_tensor *a, dl_tensor *end, dl_operand w) {
  dl_operand x = dl_operand_tensor(a), e = dl_operand_tensor(end);
  operands3 r = operands_of(&x, &e, &w);
  return record3(EW_LERP, &r, 1, dl_op_lerp(a, end, w));
}

int dl_ag_lerp_(dl_tensor *self, dl_tensor *end, dl_operand w) {
  dl_operand x = dl_operand_tensor(self), e = dl_operand_tensor(end);
  operands3 r = operands_of(&x, &e, &w);
  INPLACE3(EW_LERP, r, 1, dl_op_lerp_(self, end, w));
}

static operands3 addc_operands(dl_tensor *a, dl_tensor *t1, dl_tensor *t2) {
  dl_operand x = dl_operand_tensor(a), o1 = dl_operand_tensor(t1), o2 = dl_operand_tensor(t2);
  return operands_of(&x, &o1, &o2);
}

dl_tensor *dl_ag_addcmul(dl_tensor *a, dl_tensor *t1, dl_tensor *t2, dl_scalar value) {
  operands3 r = addc_operands(a, t1, t2);
  return record3(EW_ADDCMUL, &r, scalar_value(value), dl_op_addcmul(a, t1, t2, value));
}

int dl_ag_addcmul_(dl_tensor *self, dl_tensor *t1, dl_tensor *t2, dl_scalar value) {
  operands3 r = addc_operands(self, t1, t2);
  INPLACE3(EW_ADDCMUL, r, scalar_value(value), dl_op_addcmul_(self, t1, t2, value));
}

dl_tensor *dl_ag_addcdiv(dl_tensor *a, dl_tensor *t1, dl_tensor *t2, dl_scalar value) {
  operands3 r = addc_operands(a, t1, t2);
  return record3(EW_ADDCDIV, &r, scalar_value(value), dl_op_addcdiv(a, t1, t2, value));
}

int dl_ag_addcdiv_(dl_tensor *self, dl_tensor *t1, dl_tensor *t2, dl_scalar value) {
  operands3 r = addc_operands(self, t1, t2);
  INPLACE3(EW_ADDCDIV, r, scalar_value(value), dl_op_addcdiv_(self, t1, t2, value));
}

dl_tensor *dl_ag_where(dl_tensor *cond, dl_operand a, dl_operand b) {
  dl_operand oc = dl_operand_tensor(cond);
  operands3 r = operands_of(&oc, &a, &b);
  return record3(EW_WHERE, &r, 1, dl_op_where(cond, a, b));
}

dl_tensor *dl_ag_masked_fill(dl_tensor *a, dl_tensor *mask, dl_operand value) {
  dl_operand x = dl_operand_tensor(a), m = dl_operand_tensor(mask);
  operands3 r = operands_of(&x, &m, &value);
  return record3(EW_MASKED_FILL, &r, 1, dl_op_masked_fill(a, mask, value));
}

int dl_ag_masked_fill_(dl_tensor *self, dl_tensor *mask, dl_operand value) {
  dl_operand x = dl_operand_tensor(self), m = dl_operand_tensor(mask);
  operands3 r = operands_of(&x, &m, &value);
  INPLACE3(EW_MASKED_FILL, r, 1, dl_op_masked_fill_(self, mask, value));
}
