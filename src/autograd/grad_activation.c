/* grad_activation.c — activations: forward, backward rule and jvp rule of
 * each, side by side. A first-order backward (grad mode off inside the rule)
 * calls the fused backward kernel; under create_graph the same gradient is
 * composed of differentiable dl_ag_* ops so that it records. jvp rules run
 * the plain ops on values (tangents carry no tangents). */
#include "dl_ag_activation.h"

#include "dl_ag_ewise.h"
#include "dl_ag_reduce.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"
#include "grad_glue.h"

#include "../ops/dl_math.h"

#include <math.h>
#include <string.h>


/* ---- composition glue (grad_glue.h) and what only activations need ---- */

/* min(a, 0) */
static dl_tensor *t_min0(dl_tensor *a) {
  dl_operand hi = dl_operand_scalar(dl_scalar_f(0));
  return take2(a ? dl_ag_clamp(a, NULL, &hi) : NULL, a, NULL);
}
static dl_tensor *t_where(dl_tensor *mask, dl_tensor *a, dl_tensor *b) {
  dl_tensor *r = mask && a && b ? dl_ag_where(mask, dl_operand_tensor(a), dl_operand_tensor(b)) : NULL;
  dl_tensor_release(mask);
  return take2(r, a, b);
}
static dl_tensor *t_sum(dl_tensor *a, int dim) {
  /* a 0-d tensor sums over every (no) dim */
  return take2(a ? dl_ag_sum(a, &dim, a->ndim ? 1 : 0, true) : NULL, a, NULL);
}
/* the mask a > s; a is borrowed */
static dl_tensor *p_gt(dl_tensor *a, double s) {
  if (!a) return NULL;
  return dl_op_binary_ex(DL_BIN_GT, dl_operand_tensor(a), dl_operand_scalar(dl_scalar_f(s)), dl_scalar_i(1));
}

/* ---- point-wise activations ---- */

typedef struct {
  dl_act op;
  double p0, p1;
} act_ctx;

/* g * act'(x), recorded */
static dl_tensor *act_grad_composed(dl_act op, dl_tensor *g, dl_tensor *x, double p0, double p1) {
  switch (op) {
  case DL_ACT_LEAKY_RELU: return t_where(p_gt(x, 0), ref(g), t_muls(ref(g), p0));
  case DL_ACT_RELU: { /* 0 where x <= 0, else g (a NaN passes it, as relu_b and PyTorch's threshold_backward) */
    dl_tensor *mask = dl_op_binary_ex(DL_BIN_LE, dl_operand_tensor(x), dl_operand_scalar(dl_scalar_f(0)),
                                      dl_scalar_i(1));
    dl_tensor *r = mask ? dl_ag_where(mask, dl_operand_scalar(dl_scalar_f(0)), dl_operand_tensor(g)) : NULL;
    dl_tensor_release(mask);
    return r;
  }
  case DL_ACT_ELU:
    /* exp of min(x, 0): the unused branch never overflows into 0 * inf */
    return t_where(p_gt(x, 0), ref(g), t_muls(t_mul(ref(g), t_un(DL_UN_EXP, t_min0(ref(x)))), p0));
  case DL_ACT_GELU: {
    dl_tensor *cdf = t_muls(t_adds(t_un(DL_UN_ERF, t_muls(ref(x), DL_SQRT1_2)), 1), 0.5);
    dl_tensor *pdf = t_muls(t_un(DL_UN_EXP, t_muls(t_un(DL_UN_SQUARE, ref(x)), -0.5)), DL_INV_SQRT_2PI);
    return t_mul(ref(g), t_add(cdf, t_mul(ref(x), pdf)));
  }
  case DL_ACT_GELU_TANH: {
    dl_tensor *x2 = t_un(DL_UN_SQUARE, ref(x));
    dl_tensor *t = t_un(DL_UN_TANH, t_muls(t_add(ref(x), t_muls(t_mul(ref(x2), ref(x)), DL_GELU_C)), DL_SQRT_2_PI));
    dl_tensor *a = t_muls(t_adds(ref(t), 1), 0.5);
    dl_tensor *b = t_rsubs(1, t_un(DL_UN_SQUARE, t));
    dl_tensor *du = t_muls(t_adds(t_muls(x2, 3 * DL_GELU_C), 1), DL_SQRT_2_PI);
    return t_mul(ref(g), t_add(a, t_muls(t_mul(t_mul(ref(x), b), du), 0.5)));
  }
  case DL_ACT_SILU: {
    dl_tensor *s = t_un(DL_UN_SIGMOID, ref(x));
    dl_tensor *d = t_mul(ref(s), t_adds(t_mul(ref(x), t_rsubs(1, ref(s))), 1));
    dl_tensor_release(s);
    return t_mul(ref(g), d);
  }
  case DL_ACT_SOFTPLUS: {
    dl_tensor *bx = t_muls(ref(x), p0);
    dl_tensor *mask = p_gt(bx, p1);
    return t_where(mask, ref(g), t_mul(ref(g), t_un(DL_UN_SIGMOID, bx)));
  }
  default: dl_error_set("activation: unknown op"); return NULL;
  }
}

static int act_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const act_ctx *c = (const act_ctx *)n->ctx;
  dl_tensor *x = dl_node_saved(n, 0);
  if (!x) return -1;
  /* grad mode is on here only under create_graph */
  if (dl_grad_enabled()) gin[0] = act_grad_composed(c->op, gout[0], x, c->p0, c->p1);
  else gin[0] = dl_op_act_backward(c->op, gout[0], x, c->p0, c->p1);
  dl_tensor_release(x);
  return gin[0] ? 0 : -1;
}

static const dl_node_type act_types[DL_NACTS] = {
  {"LeakyReluBackward0", act_backward, NULL}, {"EluBackward0", act_backward, NULL},
  {"GeluBackward0", act_backward, NULL},      {"GeluBackward0", act_backward, NULL},
  {"SiluBackward0", act_backward, NULL},      {"SoftplusBackward0", act_backward, NULL},
  {"ReluBackward0", act_backward, NULL},
};

dl_tensor *dl_ag_act(dl_act op, dl_tensor *x, double p0, double p1) {
  dl_tensor *out = dl_op_act(op, x, p0, p1);
  if (!out || !(x->requires_grad || x->tangent)) return out;
  if (dl_ag_needs1(x)) {
    dl_node *node = dl_ag_record(&act_types[op], &x, 1, out);
    if (!node) return fail(out);
    act_ctx c = {op, p0, p1};
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save(node, x);
  }
  if (x->tangent) {
    dl_tensor *t = dl_op_act_backward(op, x->tangent, x, p0, p1);
    if (!t) return fail(out);
    dl_fw_set(out, t);
  }
  return out;
}

/* ---- prelu ---- */

typedef struct {
  int64_t wshape[DL_MAX_DIMS];
  int64_t bshape[DL_MAX_DIMS]; /* w's shape broadcast against x */
  int wndim, ndim;
} prelu_ctx;

static prelu_ctx prelu_ctx_of(const dl_tensor *x, const dl_tensor *w) {
  prelu_ctx c;
  memset(&c, 0, sizeof c);
  memcpy(c.wshape, w->shape, sizeof c.wshape);
  c.wndim = w->ndim;
  c.ndim = x->ndim;
  for (int d = 0; d < x->ndim; d++) c.bshape[d] = 1;
  if (x->ndim >= 2 && w->numel != 1) c.bshape[1] = w->numel;
  return c;
}

static int prelu_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const prelu_ctx *c = (const prelu_ctx *)n->ctx;
  dl_tensor *x = dl_node_saved(n, 0);
  dl_tensor *w = x ? dl_node_saved(n, 1) : NULL;
  if (!w) {
    dl_tensor_release(x);
    return -1;
  }
  bool want_x = n->edges[0].fn || n->edges[0].leaf, want_w = n->edges[1].fn || n->edges[1].leaf;
  dl_tensor *g = gout[0];
  int rc = 0;
  if (!dl_grad_enabled()) {
    dl_tensor *gx, *gw;
    rc = dl_op_prelu_backward(g, x, w, &gx, &gw);
    if (!rc) {
      if (want_x) gin[0] = gx;
      else dl_tensor_release(gx);
      if (want_w) gin[1] = gw;
      else dl_tensor_release(gw);
    }
  } else {
    dl_tensor *wb = dl_ag_reshape(w, c->bshape, c->ndim);
    if (want_x) {
      gin[0] = t_where(p_gt(x, 0), ref(g), t_mul(ref(g), ref(wb)));
      if (!gin[0]) rc = -1;
    }
    if (want_w && !rc) {
      dl_tensor *zero = dl_tensor_zeros(NULL, 0, g->dtype, dl_tensor_device(g));
      dl_tensor *full = t_where(p_gt(x, 0), zero, t_mul(ref(g), ref(x)));
      dl_tensor *red = full ? dl_ag_sum_to(full, c->bshape, c->ndim) : NULL;
      dl_tensor_release(full);
      gin[1] = red ? dl_ag_reshape(red, c->wshape, c->wndim) : NULL;
      dl_tensor_release(red);
      if (!gin[1]) rc = -1;
    }
    if (!wb) rc = -1;
    dl_tensor_release(wb);
  }
  dl_tensor_release(x);
  dl_tensor_release(w);
  return rc;
}
static const dl_node_type prelu_type = {"PreluKernelBackward0", prelu_backward, NULL};

/* tangent: x > 0 ? tx : w tx + x tw (plain ops on values) */
static dl_tensor *prelu_jvp(dl_tensor *x, dl_tensor *w, const prelu_ctx *c) {
  dl_tensor *tx = dl_fw_tangent_or_zeros(x), *tw = dl_fw_tangent_or_zeros(w);
  dl_tensor *wb = w ? dl_tensor_reshape(w, c->bshape, c->ndim) : NULL;
  dl_tensor *twb = tw ? dl_tensor_reshape(tw, c->bshape, c->ndim) : NULL;
  dl_tensor *a = tx && wb ? dl_op_binary(DL_BIN_MUL, tx, wb, dl_scalar_i(1)) : NULL;
  dl_tensor *b = twb ? dl_op_binary(DL_BIN_MUL, x, twb, dl_scalar_i(1)) : NULL;
  dl_tensor *s = a && b ? dl_op_binary(DL_BIN_ADD, a, b, dl_scalar_i(1)) : NULL;
  dl_tensor *mask = p_gt(x, 0);
  dl_tensor *r = s && mask ? dl_op_where(mask, dl_operand_tensor(tx), dl_operand_tensor(s)) : NULL;
  dl_tensor *tmp[] = {tx, tw, wb, twb, a, b, s, mask};
  for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) dl_tensor_release(tmp[i]);
  return r;
}

dl_tensor *dl_ag_prelu(dl_tensor *x, dl_tensor *w) {
  dl_tensor *out = dl_op_prelu(x, w);
  if (!out || !(x->requires_grad || w->requires_grad || x->tangent || w->tangent)) return out;
  dl_tensor *in[2] = {x, w};
  prelu_ctx c = prelu_ctx_of(x, w);
  if (dl_ag_needs_grad(in, 2)) {
    dl_node *node = dl_ag_record(&prelu_type, in, 2, out);
    if (!node) return fail(out);
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save(node, x);
    dl_node_save(node, w);
  }
  if (dl_fw_any(in, 2)) {
    dl_tensor *t = prelu_jvp(x, w, &c);
    if (!t) return fail(out);
    dl_fw_set(out, t);
  }
  return out;
}

/* ---- softmax / log_softmax ---- */

typedef struct {
  int dim; /* 0-based, wrapped */
  bool log;
} softmax_ctx;

static int softmax_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const softmax_ctx *c = (const softmax_ctx *)n->ctx;
  dl_tensor *y = dl_node_saved(n, 0);
  if (!y) return -1;
  dl_tensor *g = gout[0];
  if (!dl_grad_enabled()) gin[0] = dl_op_softmax_backward(g, y, c->dim, c->log);
  else if (c->log) /* g - exp(y) * sum(g) */
    gin[0] = t_sub(ref(g), t_mul(t_un(DL_UN_EXP, ref(y)), t_sum(ref(g), c->dim)));
  else /* y * (g - sum(g * y)) */
    gin[0] = t_mul(ref(y), t_sub(ref(g), t_sum(t_mul(ref(g), ref(y)), c->dim)));
  dl_tensor_release(y);
  return gin[0] ? 0 : -1;
}
static const dl_node_type softmax_type = {"SoftmaxBackward0", softmax_backward, NULL};
static const dl_node_type log_softmax_type = {"LogSoftmaxBackward0", softmax_backward, NULL};

/* tangent from the output y: softmax's Jacobian is symmetric, so it is the
 * backward formula on tx; log_softmax: tx - sum(exp(y) * tx) */
static dl_tensor *softmax_jvp(dl_tensor *tx, dl_tensor *y, int dim, bool log) {
  if (!log) return dl_op_softmax_backward(tx, y, dim, false);
  dl_tensor *e = dl_op_unary(DL_UN_EXP, y);
  dl_tensor *p = e ? dl_op_binary(DL_BIN_MUL, e, tx, dl_scalar_i(1)) : NULL;
  dl_tensor *s = p ? dl_op_sum(p, &dim, y->ndim ? 1 : 0, true) : NULL;
  dl_tensor *r = s ? dl_op_binary(DL_BIN_SUB, tx, s, dl_scalar_i(1)) : NULL;
  dl_tensor_release(e);
  dl_tensor_release(p);
  dl_tensor_release(s);
  return r;
}

dl_tensor *dl_ag_softmax(dl_tensor *x, int dim, bool log) {
  dl_tensor *out = dl_op_softmax(x, dim, log);
  if (!out || !(x->requires_grad || x->tangent)) return out;
  softmax_ctx c = {dl_wrap_dim(log ? "log_softmax" : "softmax", dim, x->ndim ? x->ndim : 1), log};
  if (dl_ag_needs1(x)) {
    dl_node *node = dl_ag_record(log ? &log_softmax_type : &softmax_type, &x, 1, out);
    if (!node) return fail(out);
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save_output(node, out, 0);
  }
  if (x->tangent) {
    dl_tensor *t = softmax_jvp(x->tangent, out, c.dim, log);
    if (!t) return fail(out);
    dl_fw_set(out, t);
  }
  return out;
}
