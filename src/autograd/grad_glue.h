/* grad_glue.h — composition helpers for derivative rules written as
 * formulas of differentiable ops (so create_graph gives higher
 * derivatives). Each helper consumes its tensor arguments and is NULL-safe:
 * a failed step makes every later result NULL, so a formula reads as one
 * expression checked once. t_* record autograd history; p_* are plain, for
 * masks and counts, which are constants to autograd. */
#ifndef GRAD_GLUE_H
#define GRAD_GLUE_H

#include "dl_ag_ewise.h"
#include "dl_ag_reduce.h"

static inline dl_tensor *fail(dl_tensor *out) {
  dl_tensor_release(out);
  return NULL;
}
static inline dl_tensor *ref(dl_tensor *t) { return t ? dl_tensor_retain(t) : NULL; }
static inline dl_tensor *take2(dl_tensor *r, dl_tensor *a, dl_tensor *b) {
  dl_tensor_release(a);
  dl_tensor_release(b);
  return r;
}
static inline dl_tensor *take1(dl_tensor *r, dl_tensor *a) {
  dl_tensor_release(a);
  return r;
}

static inline dl_tensor *t_add(dl_tensor *a, dl_tensor *b) { return take2(a && b ? dl_ag_add(a, b) : NULL, a, b); }
static inline dl_tensor *t_sub(dl_tensor *a, dl_tensor *b) { return take2(a && b ? dl_ag_sub(a, b) : NULL, a, b); }
static inline dl_tensor *t_mul(dl_tensor *a, dl_tensor *b) { return take2(a && b ? dl_ag_mul(a, b) : NULL, a, b); }
static inline dl_tensor *t_div(dl_tensor *a, dl_tensor *b) { return take2(a && b ? dl_ag_div(a, b) : NULL, a, b); }
static inline dl_tensor *t_un(dl_unop op, dl_tensor *a) { return take1(a ? dl_ag_unary(op, a) : NULL, a); }
/* a * s, a + s, s - a, a ^ s */
static inline dl_tensor *t_muls(dl_tensor *a, double s) {
  return take1(a ? dl_ag_mul_scalar(a, dl_scalar_f(s)) : NULL, a);
}
static inline dl_tensor *t_adds(dl_tensor *a, double s) {
  return take1(a ? dl_ag_add_scalar(a, dl_scalar_f(s)) : NULL, a);
}
static inline dl_tensor *t_rsubs(double s, dl_tensor *a) {
  return take1(a ? dl_ag_rsub_scalar(dl_scalar_f(s), a) : NULL, a);
}
static inline dl_tensor *t_pows(dl_tensor *a, double p) {
  return take1(a ? dl_ag_pow_scalar(a, dl_scalar_f(p)) : NULL, a);
}

static inline dl_tensor *p_bin(dl_binop op, dl_tensor *a, dl_tensor *b) {
  return take2(a && b ? dl_op_binary(op, a, b, dl_scalar_i(1)) : NULL, a, b);
}
static inline dl_tensor *p_un(dl_unop op, dl_tensor *a) { return take1(a ? dl_op_unary(op, a) : NULL, a); }
/* bool mask -> 0/1 of dtype dt */
static inline dl_tensor *p_float(dl_tensor *m, dl_dtype dt) {
  return take1(m ? dl_tensor_to_dtype(m, dt) : NULL, m);
}

#endif
