/* dl_ewise.h — element-wise ops: arithmetic, math functions, comparisons,
 * logical ops, clamp, lerp, addcmul/addcdiv, where and masked_fill.
 *
 * Front-ends (dl_ewise*.c) follow PyTorch: NumPy broadcasting, PyTorch's type
 * promotion (dimensioned tensors > 0-d tensors > plain numbers, by category
 * bool < integer < float), strided operands of any layout. In-place forms
 * write into self, bump its version, and fail when the result dtype cannot be
 * cast into self's dtype or when self would have to grow by broadcasting.
 *
 * Backends implement struct dl_ewise_kernels on operands the front-end has
 * already expanded to the output's shape and cast to one compute dtype. */
#ifndef DL_EWISE_H
#define DL_EWISE_H

#include "../dl_tensor.h"
#include "../dl_backend.h"
#include "dl_ops.h"

/* dl_binop (DL_BIN_*) and dl_unop (DL_UN_*) come from the op table. */

/* One operand: a tensor, or (t == NULL) a plain number, which takes part in
 * type promotion as PyTorch's wrapped scalar does. */
typedef struct {
  const dl_tensor *t;
  dl_scalar s;
} dl_operand;

static inline dl_operand dl_operand_tensor(const dl_tensor *t) {
  dl_operand o = {t, {true, 1, 1.0, false}};
  return o;
}
static inline dl_operand dl_operand_scalar(dl_scalar s) {
  dl_operand o = {NULL, s};
  return o;
}

/* Names as PyTorch spells them ("add", "floor_divide", "logical_not"). */
const char *dl_binop_name(dl_binop op);
const char *dl_unop_name(dl_unop op);

/* PyTorch's result_type over n operands. */
dl_dtype dl_result_type(const dl_operand *ops, int n);

/* ---- binary ---- */
/* alpha scales b for add/sub (pass dl_scalar_i(1) otherwise); it must be an
 * integer when the operands are. Integer floor_divide/remainder by zero is
 * an error ("ZeroDivisionError"), as in PyTorch. */
dl_tensor *dl_op_binary(dl_binop op, const dl_tensor *a, const dl_tensor *b, dl_scalar alpha);
/* Either operand may be a number (not both). */
dl_tensor *dl_op_binary_ex(dl_binop op, dl_operand a, dl_operand b, dl_scalar alpha);
/* self = self op b; 0 ok, -1 with an error. */
int dl_op_binary_(dl_binop op, dl_tensor *self, dl_operand b, dl_scalar alpha);

/* ---- unary ---- */
dl_tensor *dl_op_unary(dl_unop op, const dl_tensor *a);
int dl_op_unary_(dl_unop op, dl_tensor *self);

/* ---- clamp, lerp, addcmul, addcdiv ---- */
/* lo or hi may be NULL (no bound), not both; bounds are tensors or numbers. */
dl_tensor *dl_op_clamp(const dl_tensor *a, const dl_operand *lo, const dl_operand *hi);
int dl_op_clamp_(dl_tensor *self, const dl_operand *lo, const dl_operand *hi);
/* a + w * (end - a); floats only */
dl_tensor *dl_op_lerp(const dl_tensor *a, const dl_tensor *end, dl_operand w);
int dl_op_lerp_(dl_tensor *self, const dl_tensor *end, dl_operand w);
/* a + value * t1 * t2 */
dl_tensor *dl_op_addcmul(const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value);
int dl_op_addcmul_(dl_tensor *self, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value);
/* a + value * t1 / t2 (true division; t1 and t2 not both integer) */
dl_tensor *dl_op_addcdiv(const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value);
int dl_op_addcdiv_(dl_tensor *self, const dl_tensor *t1, const dl_tensor *t2, dl_scalar value);

/* ---- selection ---- */
/* cond ? a : b, all three broadcast; cond is bool. */
dl_tensor *dl_op_where(const dl_tensor *cond, dl_operand a, dl_operand b);
/* value where mask (bool, broadcastable) else a; value is a number or a 0-d
 * tensor, cast to a's dtype. */
dl_tensor *dl_op_masked_fill(const dl_tensor *a, const dl_tensor *mask, dl_operand value);
int dl_op_masked_fill_(dl_tensor *self, const dl_tensor *mask, dl_operand value);

/* ---- closeness ---- */
/* |a - b| <= atol + rtol * |b| elementwise (bool) */
dl_tensor *dl_op_isclose(const dl_tensor *a, const dl_tensor *b, double rtol, double atol, bool equal_nan);
/* isclose everywhere; shapes must broadcast. 0 ok with *out set. */
int dl_op_allclose(const dl_tensor *a, const dl_tensor *b, double rtol, double atol, bool equal_nan, bool *out);
/* same shape and equal values (dtypes may differ). 0 ok with *out set. */
int dl_op_equal(const dl_tensor *a, const dl_tensor *b, bool *out);

/* ---- backend interface ----
 * Every tensor operand has out's shape (broadcast dims have stride 0) and the
 * compute dtype; out may be the same view as an operand (in-place), never a
 * partial overlap. Number operands are converted to the compute dtype by the
 * kernel. Comparison and logical ops write bool; other ops write the compute
 * dtype. The front-end guarantees the (op, dtype) pair is supported. */
#define DL_EWISE_ZERODIV 1
/* Every entry returns DL_KERNEL_OK, or DL_KERNEL_FAILED with dl_error_set
 * (a launch or scratch-allocation failure on a device). */
struct dl_ewise_kernels {
  /* also DL_EWISE_ZERODIV when an integer division met a zero divisor
   * (the element gets 0) */
  int (*binary)(dl_binop op, dl_tensor *out, dl_operand a, dl_operand b, dl_scalar alpha);
  int (*unary)(dl_unop op, dl_tensor *out, const dl_tensor *a);
  /* a NULL bound is absent */
  int (*clamp)(dl_tensor *out, const dl_tensor *a, const dl_operand *lo, const dl_operand *hi);
  int (*lerp)(dl_tensor *out, const dl_tensor *a, const dl_tensor *end, dl_operand w);
  /* out = a + value * t1 * t2, or * t1 / t2 when div */
  int (*addc)(bool div, dl_tensor *out, const dl_tensor *a, const dl_tensor *t1, const dl_tensor *t2,
              dl_scalar value);
  /* cond is bool; a and b have out's dtype */
  int (*where)(dl_tensor *out, const dl_tensor *cond, dl_operand a, dl_operand b);
  int (*isclose)(dl_tensor *out, const dl_tensor *a, const dl_tensor *b, double rtol, double atol,
                 bool equal_nan);
  /* *out: every element of a bool tensor is true (the answer comes to the host) */
  int (*all)(const dl_tensor *t, bool *out);
};

#endif
