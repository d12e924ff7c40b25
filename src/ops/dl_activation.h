/* dl_activation.h — fused activation functions: the point-wise ones
 * (leaky_relu, elu, gelu, silu, softplus), prelu (a learnable slope, one or
 * one per channel = dim 1) and softmax / log_softmax along a dim.
 *
 * Each has a one-pass forward and a one-pass backward (the gradient with
 * respect to the input given the output gradient). Inputs must be float32
 * or float64; any strides. Dims are 0-based (C API). */
#ifndef DL_ACTIVATION_H
#define DL_ACTIVATION_H

#include "../dl_backend.h"

typedef enum {
  DL_ACT_LEAKY_RELU, /* p0 = negative_slope */
  DL_ACT_ELU,        /* p0 = alpha */
  DL_ACT_GELU,       /* x * Phi(x), exact erf form */
  DL_ACT_GELU_TANH,  /* the tanh approximation */
  DL_ACT_SILU,       /* x * sigmoid(x) */
  DL_ACT_SOFTPLUS,   /* log(1 + exp(p0 x)) / p0, x where p0 x > p1 */
  DL_ACT_RELU,       /* max(x, 0) (NaN stays NaN); backward g where x > 0, else 0
                      * (x may be relu's output: same sign) */
  DL_NACTS
} dl_act;

/* "leaky_relu", "gelu", ... (both gelu forms say "gelu") */
const char *dl_act_name(dl_act op);

/* out = act(x) */
dl_tensor *dl_op_act(dl_act op, const dl_tensor *x, double p0, double p1);
/* g * act'(x); g and x of one shape and dtype */
dl_tensor *dl_op_act_backward(dl_act op, const dl_tensor *g, const dl_tensor *x, double p0, double p1);

/* x where x > 0, else w * x; w (x's dtype) has 1 element or x->shape[1] */
dl_tensor *dl_op_prelu(const dl_tensor *x, const dl_tensor *w);
/* gx = g * (x > 0 ? 1 : w), gw = sum of g * (x > 0 ? 0 : x) per slope, in
 * w's shape. 0 ok, -1 with an error. */
int dl_op_prelu_backward(const dl_tensor *g, const dl_tensor *x, const dl_tensor *w, dl_tensor **gx,
                         dl_tensor **gw);

/* softmax (log = false) or log_softmax along dim (0-based, may be negative) */
dl_tensor *dl_op_softmax(const dl_tensor *x, int dim, bool log);
/* the input gradient from the output gradient g and the output y:
 * softmax: y * (g - sum(g * y)); log_softmax: g - exp(y) * sum(g) */
dl_tensor *dl_op_softmax_backward(const dl_tensor *g, const dl_tensor *y, int dim, bool log);

/* ---- backend interface ----
 * Point-wise kernels get operands of one shape and dtype (float32/float64),
 * any strides. prelu and softmax kernels get contiguous tensors seen as
 * [outer, n, inner] with the channel / softmax dim in the middle. */
struct dl_act_kernels {
  int (*forward)(dl_act op, dl_tensor *out, const dl_tensor *x, double p0, double p1);
  /* gx = g * act'(x) */
  int (*backward)(dl_act op, dl_tensor *gx, const dl_tensor *g, const dl_tensor *x, double p0, double p1);
  /* w has n elements (a slope per channel) or 1 (shared) */
  int (*prelu)(dl_tensor *out, const dl_tensor *x, const dl_tensor *w, int64_t outer, int64_t n, int64_t inner);
  /* gw has w's element count */
  int (*prelu_backward)(dl_tensor *gx, dl_tensor *gw, const dl_tensor *g, const dl_tensor *x, const dl_tensor *w,
                         int64_t outer, int64_t n, int64_t inner);
  int (*softmax)(bool log, dl_tensor *out, const dl_tensor *x, int64_t outer, int64_t n, int64_t inner);
  int (*softmax_backward)(bool log, dl_tensor *gx, const dl_tensor *g, const dl_tensor *y, int64_t outer,
                           int64_t n, int64_t inner);
};

#endif
