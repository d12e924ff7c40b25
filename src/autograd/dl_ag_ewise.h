/* dl_ag_ewise.h — differentiable element-wise ops (grad_ewise*.c).
 *
 * Same arguments as the dl_op_* front-ends they wrap (src/ops/dl_ewise.h).
 * They record a node when grad mode is on, a floating-point result comes out
 * and a tensor input requires grad, and carry tangents in forward mode.
 * Gradients follow PyTorch's formulas, summed back to each input's shape and
 * cast to its dtype; number operands get no gradient. In-place forms (name_)
 * refuse a leaf that requires grad and rebase self's history. */
#ifndef DL_AG_EWISE_H
#define DL_AG_EWISE_H

#include "../ops/dl_ewise.h"

/* ---- general forms ---- */
/* either operand may be a number (not both); alpha as in dl_op_binary */
dl_tensor *dl_ag_binary(dl_binop op, dl_operand a, dl_operand b, dl_scalar alpha);
/* The history of out = a op b, computed by the plain op: records and sets
 * the tangent when an operand needs it; out, or NULL (out released). */
dl_tensor *dl_ag_binary_finish(dl_binop op, dl_operand a, dl_operand b, dl_scalar alpha, dl_tensor *out);
/* two tensors, inlined so the common case costs the plain op plus four
 * flag tests */
static inline dl_tensor *dl_ag_binary_t(dl_binop op, dl_tensor *a, dl_tensor *b, dl_scalar alpha) {
  dl_tensor *out = dl_op_binary(op, a, b, alpha);
  if (!out || !(a->requires_grad || b->requires_grad || a->tangent || b->tangent)) return out;
  return dl_ag_binary_finish(op, dl_operand_tensor(a), dl_operand_tensor(b), alpha, out);
}
int dl_ag_binary_(dl_binop op, dl_tensor *self, dl_operand b, dl_scalar alpha);
dl_tensor *dl_ag_unary(dl_unop op, dl_tensor *a);
int dl_ag_unary_(dl_unop op, dl_tensor *self);

/* ---- arithmetic on two tensors (broadcasting) ---- */
dl_tensor *dl_ag_add(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_sub(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_mul(dl_tensor *a, dl_tensor *b);
dl_tensor *dl_ag_div(dl_tensor *a, dl_tensor *b);

/* ---- with a number (wrapped scalar: keeps a's dtype) ---- */
dl_tensor *dl_ag_add_scalar(dl_tensor *a, dl_scalar s);
dl_tensor *dl_ag_mul_scalar(dl_tensor *a, dl_scalar s);
dl_tensor *dl_ag_div_scalar(dl_tensor *a, dl_scalar s);
/* s - a */
dl_tensor *dl_ag_rsub_scalar(dl_scalar s, dl_tensor *a);
/* a ^ s */
dl_tensor *dl_ag_pow_scalar(dl_tensor *a, dl_scalar s);

/* ---- unary ---- */
dl_tensor *dl_ag_neg(dl_tensor *a);
dl_tensor *dl_ag_abs(dl_tensor *a);
dl_tensor *dl_ag_sign(dl_tensor *a);
dl_tensor *dl_ag_relu(dl_tensor *a);
dl_tensor *dl_ag_square(dl_tensor *a);
dl_tensor *dl_ag_rsqrt(dl_tensor *a);
dl_tensor *dl_ag_exp(dl_tensor *a);
dl_tensor *dl_ag_log(dl_tensor *a);
dl_tensor *dl_ag_log1p(dl_tensor *a);

/* ---- clamp, lerp, addcmul, addcdiv (tensor bounds and weights get their
 * share of the gradient) ---- */
dl_tensor *dl_ag_clamp(dl_tensor *a, const dl_operand *lo, const dl_operand *hi);
int dl_ag_clamp_(dl_tensor *self, const dl_operand *lo, const dl_operand *hi);
dl_tensor *dl_ag_lerp(dl_tensor *a, dl_tensor *end, dl_operand w);
int dl_ag_lerp_(dl_tensor *self, dl_tensor *end, dl_operand w);
dl_tensor *dl_ag_addcmul(dl_tensor *a, dl_tensor *t1, dl_tensor *t2, dl_scalar value);
int dl_ag_addcmul_(dl_tensor *self, dl_tensor *t1, dl_tensor *t2, dl_scalar value);
dl_tensor *dl_ag_addcdiv(dl_tensor *a, dl_tensor *t1, dl_tensor *t2, dl_scalar value);
int dl_ag_addcdiv_(dl_tensor *self, dl_tensor *t1, dl_tensor *t2, dl_scalar value);

/* ---- selection (cond and mask are not differentiable) ---- */
dl_tensor *dl_ag_where(dl_tensor *cond, dl_operand a, dl_operand b);
/* value: a number or a 0-d tensor (which gets the sum of the masked grads) */
dl_tensor *dl_ag_masked_fill(dl_tensor *a, dl_tensor *mask, dl_operand value);
int dl_ag_masked_fill_(dl_tensor *self, dl_tensor *mask, dl_operand value);


#endif
