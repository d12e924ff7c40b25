/* grad_loss.c — differentiable losses. MSE / L1 / smooth L1, cross-entropy
 * with class indices and NLL wrap the fused kernels and carry their own
 * backward rule (fused when first-order, composed from differentiable ops
 * under create_graph) and jvp rule; binary cross-entropy has its own node;
 * BCE with logits and cross-entropy with probability targets are
 * compositions of differentiable ops. */
#include "dl_ag_loss.h"

#include "dl_ag_activation.h"
#include "dl_ag_ewise.h"
#include "dl_ag_reduce.h"
#include "dl_ag_view.h"
#include "dl_ag_scope.h"
#include "dl_autograd.h"

#include <math.h>
#include <string.h>

/* ---- helpers ---- */

/* w (named what) must be a float tensor broadcasting to x's shape */
static int check_bcast(const char *fn, const char *what, const dl_tensor *x, const dl_tensor *w) {
  char a[128], b[128];
  if (!w) return 0;
  if (!dl_dtype_is_float(w->dtype)) {
    dl_error_set("%s: expected a floating-point %s, got %s", fn, what, dl_dtype_name(w->dtype));
    return -1;
  }
  if (dl_check_same_device(fn, x, w)) return -1;
  int64_t shape[DL_MAX_DIMS];
  int nd;
  bool same = dl_broadcast_shapes(fn, x->shape, x->ndim, w->shape, w->ndim, shape, &nd) == 0 && nd == x->ndim;
  for (int k = 0; same && k < nd; k++) same = shape[k] == x->shape[k];
  if (!same) {
    dl_error_set("%s: %s %s does not broadcast to input %s", fn, what, dl_tensor_shape_str(w, a, sizeof a),
                 dl_tensor_shape_str(x, b, sizeof b));
    return -1;
  }
  return 0;
}

/* the reduction of an element-wise loss l (consumed) */
static dl_tensor *reduce(dl_tensor *l, dl_reduction red) {
  if (!l || red == DL_REDUCTION_NONE) return l;
  dl_tensor *r = red == DL_REDUCTION_MEAN ? dl_ag_mean(l, NULL, 0, false) : dl_ag_sum(l, NULL, 0, false);
  dl_tensor_release(l);
  return r;
}

/* the scope's last tensor, retained, then the scope's end (NULL on failure) */
static dl_tensor *finish(dl_ag_scope *s) {
  dl_tensor *out = s->failed ? NULL : dl_tensor_retain(s->t[s->n - 1]);
  dl_ag_scope_end(s);
  return out;
}

/* ---- regression losses (fused kernels) ---- */

typedef struct {
  dl_pointwise_loss kind;
  double beta;
  dl_reduction red;
  int64_t numel;
  dl_dtype xdtype, tdtype;
} pw_ctx;

static const char *pw_name(dl_pointwise_loss kind) {
  return kind == DL_LOSS_MSE ? "mse_loss" : kind == DL_LOSS_L1 ? "l1_loss" : "smooth_l1_loss";
}

/* g converted to dtype dt (differentiably), consumed */
static dl_tensor *cast_grad(dl_tensor *g, dl_dtype dt) {
  if (!g || g->dtype == dt) return g;
  dl_tensor *c = dl_ag_to_dtype(g, dt);
  dl_tensor_release(g);
  return c;
}

/* loss'(x - t) from differentiable ops (create_graph) */
static dl_tensor *pw_derivative(const pw_ctx *c, dl_tensor *x, dl_tensor *t) {
  dl_tensor *d = dl_ag_sub(x, t);
  if (!d) return NULL;
  dl_tensor *r = NULL;
  if (c->kind == DL_LOSS_MSE) {
    r = dl_ag_mul_scalar(d, dl_scalar_f(2));
  } else if (c->kind == DL_LOSS_L1) {
    r = dl_ag_sign(d);
  } else {
    dl_operand lo = dl_operand_scalar(dl_scalar_f(-1)), hi = dl_operand_scalar(dl_scalar_f(1));
    dl_tensor *q = dl_ag_div_scalar(d, dl_scalar_f(c->beta));
    r = q ? dl_ag_clamp(q, &lo, &hi) : NULL;
    if (q) dl_tensor_release(q);
  }
  dl_tensor_release(d);
  return r;
}

static int pw_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const pw_ctx *c = (const pw_ctx *)n->ctx;
  bool wx = n->edges[0].fn || n->edges[0].leaf, wt = n->edges[1].fn || n->edges[1].leaf;
  dl_tensor *x = dl_node_saved(n, 0);
  dl_tensor *t = x ? dl_node_saved(n, 1) : NULL;
  dl_tensor *gx = NULL;
  int rc = -1;
  if (!t) goto done;
  if (dl_grad_enabled()) {
    dl_tensor *gs = c->red == DL_REDUCTION_MEAN ? dl_ag_div_scalar(gout[0], dl_scalar_f((double)c->numel))
                                                : dl_tensor_retain(gout[0]);
    dl_tensor *dv = gs ? pw_derivative(c, x, t) : NULL;
    gx = dv ? dl_ag_mul(dv, gs) : NULL;
    if (gs) dl_tensor_release(gs);
    if (dv) dl_tensor_release(dv);
  } else {
    gx = dl_op_pointwise_loss_backward(pw_name(c->kind), gout[0], x, t, c->kind, c->beta, c->red);
  }
  if (!gx) goto done;
  if (wt) {
    gin[1] = cast_grad(dl_ag_neg(gx), c->tdtype);
    if (!gin[1]) goto done;
  }
  if (wx) gin[0] = cast_grad(dl_tensor_retain(gx), c->xdtype);
  rc = wx && !gin[0] ? -1 : 0;
done:
  if (gx) dl_tensor_release(gx);
  if (x) dl_tensor_release(x);
  if (t) dl_tensor_release(t);
  return rc;
}
_Static_assert(sizeof(pw_ctx) <= DL_NODE_CTX_BYTES, "pw_ctx fits a node's ctx");
static const dl_node_type mse_type = {"MseLossBackward0", pw_backward, NULL};
static const dl_node_type l1_type = {"L1LossBackward0", pw_backward, NULL};
static const dl_node_type smooth_l1_type = {"SmoothL1LossBackward0", pw_backward, NULL};

/* tangent: loss'(x - t) (vx - vt), then the reduction */
static dl_tensor *pw_jvp(const pw_ctx *c, dl_tensor *x, dl_tensor *t) {
  dl_tensor *vx = dl_fw_tangent_or_zeros(x), *vt = vx ? dl_fw_tangent_or_zeros(t) : NULL;
  dl_tensor *v = vt ? dl_op_binary(DL_BIN_SUB, vx, vt, dl_scalar_i(1)) : NULL;
  dl_tensor *e = v ? dl_op_pointwise_loss_backward(pw_name(c->kind), v, x, t, c->kind, c->beta, DL_REDUCTION_NONE)
                   : NULL;
  dl_tensor *out = NULL;
  if (e && c->red == DL_REDUCTION_NONE) out = dl_tensor_retain(e);
  else if (e) out = c->red == DL_REDUCTION_MEAN ? dl_op_mean(e, NULL, 0, false) : dl_op_sum(e, NULL, 0, false);
  if (vx) dl_tensor_release(vx);
  if (vt) dl_tensor_release(vt);
  if (v) dl_tensor_release(v);
  if (e) dl_tensor_release(e);
  return out;
}

static dl_tensor *pointwise_loss(const dl_node_type *type, dl_tensor *x, dl_tensor *t, dl_pointwise_loss kind,
                                 double beta, dl_reduction red) {
  dl_tensor *out = dl_op_pointwise_loss(pw_name(kind), x, t, kind, beta, red);
  dl_tensor *ins[2] = {x, t};
  if (!out || !(x->requires_grad || t->requires_grad || x->tangent || t->tangent)) return out;
  pw_ctx c = {kind, beta, red, x->numel, x->dtype, t->dtype};
  if (dl_ag_needs_grad(ins, 2)) {
    dl_node *node = dl_ag_record(type, ins, 2, out);
    if (!node) goto fail;
    dl_node_save(node, x);
    dl_node_save(node, t);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (dl_fw_any(ins, 2)) {
    dl_tensor *tan = pw_jvp(&c, x, t);
    if (!tan || dl_fw_set(out, tan)) goto fail;
  }
  return out;
fail:
  dl_tensor_release(out);
  return NULL;
}

dl_tensor *dl_ag_mse_loss(dl_tensor *input, dl_tensor *target, dl_reduction red) {
  return pointwise_loss(&mse_type, input, target, DL_LOSS_MSE, 0, red);
}

dl_tensor *dl_ag_l1_loss(dl_tensor *input, dl_tensor *target, dl_reduction red) {
  return pointwise_loss(&l1_type, input, target, DL_LOSS_L1, 0, red);
}

/* beta == 0 is the L1 loss, as PyTorch */
dl_tensor *dl_ag_smooth_l1_loss(dl_tensor *input, dl_tensor *target, double beta, dl_reduction red) {
  if (!(beta >= 0)) {
    dl_error_set("smooth_l1_loss: beta must be non-negative, got %g", beta);
    return NULL;
  }
  if (beta == 0) return pointwise_loss(&l1_type, input, target, DL_LOSS_L1, 0, red);
  return pointwise_loss(&smooth_l1_type, input, target, DL_LOSS_SMOOTH_L1, beta, red);
}

/* PyTorch refuses probabilities outside [0, 1] */
static int check_unit_range(const char *fn, const dl_tensor *x) {
  if (x->numel == 0) return 0;
  dl_tensor *lo = dl_op_amin(x, NULL, 0, false), *hi = lo ? dl_op_amax(x, NULL, 0, false) : NULL;
  int rc = -1;
  if (lo && hi) {
    dl_tensor *l = dl_tensor_to_device(lo, (dl_device){DL_CPU, 0});
    dl_tensor *h = l ? dl_tensor_to_device(hi, (dl_device){DL_CPU, 0}) : NULL;
    if (l && h) {
      double a = dl_tensor_get_linear(l, 0).f, b = dl_tensor_get_linear(h, 0).f;
      if (a >= 0 && b <= 1) rc = 0;
      else dl_error_set("%s: all elements of input should be between 0 and 1 (found %g .. %g)", fn, a, b);
    }
    if (l) dl_tensor_release(l);
    if (h) dl_tensor_release(h);
  }
  if (lo) dl_tensor_release(lo);
  if (hi) dl_tensor_release(hi);
  return rc;
}

/* max(log x, -100), as PyTorch clamps BCE's logs */
static dl_tensor *clamped_log(dl_tensor *x) {
  dl_operand lo = dl_operand_scalar(dl_scalar_f(-100));
  dl_tensor *l = dl_ag_log(x);
  dl_tensor *out = l ? dl_ag_clamp(l, &lo, NULL) : NULL;
  if (l) dl_tensor_release(l);
  return out;
}

/* Per-element partials of the unweighted-or-weighted BCE term, from
 * differentiable ops (so create_graph records them):
 *   px = w (x - t) / max(x (1 - x), 1e-12)   (PyTorch's gradient formula)
 *   pt = w (log(1 - x) - log x)             (logs clamped at -100)
 *   pw = -(t log x + (1 - t) log(1 - x))    (the unweighted loss)
 * want[i] selects which; w may be NULL. 0 ok, -1 with an error. */
static int bce_partials(dl_tensor *x, dl_tensor *t, dl_tensor *w, const bool want[3], dl_tensor *out[3]) {
  out[0] = out[1] = out[2] = NULL;
  dl_ag_scope s = {.n = 0};
  if (want[0]) {
    dl_operand eps = dl_operand_scalar(dl_scalar_f(1e-12));
    dl_tensor *om = dl_ag_keep(&s, dl_ag_rsub_scalar(dl_scalar_f(1), x));
    dl_tensor *v = om ? dl_ag_keep(&s, dl_ag_mul(x, om)) : NULL;
    dl_tensor *vc = v ? dl_ag_keep(&s, dl_ag_clamp(v, &eps, NULL)) : NULL;
    dl_tensor *d = vc ? dl_ag_keep(&s, dl_ag_sub(x, t)) : NULL;
    out[0] = d ? dl_ag_div(d, vc) : NULL;
    if (out[0] && w) {
      dl_tensor *o = dl_ag_mul(out[0], w);
      dl_tensor_release(out[0]);
      out[0] = o;
    }
    if (!out[0]) s.failed = true;
  }
  if (!s.failed && (want[1] || want[2])) {
    dl_tensor *om = dl_ag_keep(&s, dl_ag_rsub_scalar(dl_scalar_f(1), x));
    dl_tensor *l1 = om ? dl_ag_keep(&s, clamped_log(x)) : NULL;
    dl_tensor *l2 = l1 ? dl_ag_keep(&s, clamped_log(om)) : NULL;
    if (l2 && want[1]) {
      out[1] = dl_ag_sub(l2, l1);
      if (out[1] && w) {
        dl_tensor *o = dl_ag_mul(out[1], w);
        dl_tensor_release(out[1]);
        out[1] = o;
      }
      if (!out[1]) s.failed = true;
    }
    if (l2 && !s.failed && want[2]) {
      dl_tensor *diff = dl_ag_keep(&s, dl_ag_sub(l1, l2));
      dl_tensor *td = diff ? dl_ag_keep(&s, dl_ag_mul(t, diff)) : NULL;
      dl_tensor *sum = td ? dl_ag_keep(&s, dl_ag_add(l2, td)) : NULL;
      out[2] = sum ? dl_ag_neg(sum) : NULL;
      if (!out[2]) s.failed = true;
    }
  }
  bool failed = s.failed;
  dl_ag_scope_end(&s);
  if (failed) {
    for (int i = 0; i < 3; i++)
      if (out[i]) dl_tensor_release(out[i]), out[i] = NULL;
    return -1;
  }
  return 0;
}

typedef struct {
  int64_t wshape[DL_MAX_DIMS];
  int wndim;
  bool has_weight;
  dl_reduction red;
  int64_t numel;
} bce_ctx;

/* g scaled for the reduction: g / numel for the mean */
static dl_tensor *scaled_grad(dl_tensor *g, dl_reduction red, int64_t numel) {
  if (red != DL_REDUCTION_MEAN) return dl_tensor_retain(g);
  return dl_ag_mul_scalar(g, dl_scalar_f(1.0 / (double)numel));
}

static int bce_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const bce_ctx *c = (const bce_ctx *)n->ctx;
  bool want[3];
  for (int i = 0; i < 3; i++) want[i] = i < n->nedges && (n->edges[i].fn || n->edges[i].leaf);
  dl_tensor *x = dl_node_saved(n, 0);
  dl_tensor *t = x ? dl_node_saved(n, 1) : NULL;
  dl_tensor *w = t && c->has_weight ? dl_node_saved(n, 2) : NULL;
  dl_tensor *p[3] = {NULL, NULL, NULL}, *gs = NULL;
  int rc = -1;
  if (!t || (c->has_weight && !w)) goto done;
  if (bce_partials(x, t, w, want, p)) goto done;
  gs = scaled_grad(gout[0], c->red, c->numel);
  if (!gs) goto done;
  for (int i = 0; i < 3; i++) {
    if (!p[i]) continue;
    dl_tensor *gi = dl_ag_mul(p[i], gs);
    if (!gi) goto done;
    if (i == 2) {
      gin[i] = dl_ag_sum_to(gi, c->wshape, c->wndim);
      dl_tensor_release(gi);
    } else {
      gin[i] = gi;
    }
    if (!gin[i]) goto done;
  }
  rc = 0;
done:
  for (int i = 0; i < 3; i++)
    if (p[i]) dl_tensor_release(p[i]);
  if (gs) dl_tensor_release(gs);
  if (x) dl_tensor_release(x);
  if (t) dl_tensor_release(t);
  if (w) dl_tensor_release(w);
  return rc;
}
_Static_assert(sizeof(bce_ctx) <= DL_NODE_CTX_BYTES, "bce_ctx fits a node's ctx");
static const dl_node_type bce_type = {"BinaryCrossEntropyBackward0", bce_backward, NULL};

/* the reduction of a plain (non-recording) element-wise tensor, consumed */
static dl_tensor *reduce_plain(dl_tensor *l, dl_reduction red) {
  if (!l || red == DL_REDUCTION_NONE) return l;
  dl_tensor *r = red == DL_REDUCTION_MEAN ? dl_op_mean(l, NULL, 0, false) : dl_op_sum(l, NULL, 0, false);
  dl_tensor_release(l);
  return r;
}

/* tangent: px vx + pt vt + pw vw, then the reduction (plain ops on
 * detached operands) */
static dl_tensor *bce_jvp(dl_tensor *x, dl_tensor *t, dl_tensor *w, dl_reduction red) {
  dl_tensor *in[3] = {x, t, w};
  bool want[3];
  for (int i = 0; i < 3; i++) want[i] = in[i] && in[i]->tangent;
  dl_tensor *xd = dl_tensor_detach(x), *td = dl_tensor_detach(t), *wd = w ? dl_tensor_detach(w) : NULL;
  dl_tensor *p[3], *acc = NULL;
  int rc = bce_partials(xd, td, wd, want, p);
  for (int i = 0; rc == 0 && i < 3; i++) {
    if (!p[i]) continue;
    dl_tensor *term = dl_op_binary(DL_BIN_MUL, p[i], in[i]->tangent, dl_scalar_i(1));
    dl_tensor *sum = term && acc ? dl_op_binary(DL_BIN_ADD, acc, term, dl_scalar_i(1)) : NULL;
    if (acc) {
      dl_tensor_release(acc);
      if (term) dl_tensor_release(term);
      acc = sum;
    } else {
      acc = term;
    }
    if (!acc) rc = -1;
  }
  for (int i = 0; i < 3; i++)
    if (p[i]) dl_tensor_release(p[i]);
  if (rc && acc) dl_tensor_release(acc);
  dl_tensor_release(xd);
  dl_tensor_release(td);
  if (wd) dl_tensor_release(wd);
  return rc ? NULL : reduce_plain(acc, red);
}

/* -w (t log x + (1 - t) log(1 - x)), each log clamped at -100 */
dl_tensor *dl_ag_binary_cross_entropy(dl_tensor *input, dl_tensor *target, dl_tensor *weight, dl_reduction red) {
  const char *fn = "binary_cross_entropy";
  if (dl_loss_check_pair(fn, input, target) || check_bcast(fn, "weight", input, weight)) return NULL;
  if (check_unit_range(fn, input)) return NULL;
  /* the value, on detached operands (nothing recorded) */
  dl_tensor *xd = dl_tensor_detach(input), *td = dl_tensor_detach(target);
  dl_tensor *wd = weight ? dl_tensor_detach(weight) : NULL;
  const bool want[3] = {false, false, true};
  dl_tensor *p[3], *l = NULL;
  if (xd && td && (!weight || wd) && !bce_partials(xd, td, NULL, want, p)) {
    l = wd ? dl_op_binary(DL_BIN_MUL, p[2], wd, dl_scalar_i(1)) : dl_tensor_retain(p[2]);
    dl_tensor_release(p[2]);
  }
  if (xd) dl_tensor_release(xd);
  if (td) dl_tensor_release(td);
  if (wd) dl_tensor_release(wd);
  dl_tensor *out = reduce_plain(l, red);
  if (!out) return NULL;
  dl_tensor *ins[3] = {input, target, weight};
  int nin = weight ? 3 : 2;
  if (dl_ag_needs_grad(ins, nin)) {
    dl_node *node = dl_ag_record(&bce_type, ins, nin, out);
    if (!node) goto fail;
    bce_ctx c = {{0}, weight ? weight->ndim : 0, weight != NULL, red, input->numel};
    if (weight) memcpy(c.wshape, weight->shape, sizeof c.wshape);
    for (int i = 0; i < nin; i++) dl_node_save(node, ins[i]);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (dl_fw_any(ins, nin)) {
    dl_tensor *tan = bce_jvp(input, target, weight, red);
    if (!tan || dl_fw_set(out, tan)) goto fail;
  }
  return out;
fail:
  dl_tensor_release(out);
  return NULL;
}

/* (1 - t) x + (1 + (pw - 1) t) softplus(-x), with softplus(z) =
 * relu(z) + log1p(exp(-|z|)) (never the linear branch): stable for every
 * x, and its derivative sigmoid(z) is smooth, so the gradient at x = 0 is
 * PyTorch's sigmoid(x) (1 + (pw - 1) t) - pw t, not a kink's one-sided
 * value */
dl_tensor *dl_ag_binary_cross_entropy_with_logits(dl_tensor *input, dl_tensor *target, dl_tensor *weight,
                                                  dl_tensor *pos_weight, dl_reduction red) {
  const char *fn = "binary_cross_entropy_with_logits";
  if (dl_loss_check_pair(fn, input, target) || check_bcast(fn, "weight", input, weight) ||
      check_bcast(fn, "pos_weight", input, pos_weight))
    return NULL;
  dl_ag_scope s = {.n = 0};
  dl_tensor *nx = dl_ag_keep(&s, dl_ag_neg(input));
  dl_tensor *soft = nx ? dl_ag_keep(&s, dl_ag_act(DL_ACT_SOFTPLUS, nx, 1.0, HUGE_VAL)) : NULL; /* log(1 + exp(-x)) */
  dl_tensor *omt = soft ? dl_ag_keep(&s, dl_ag_rsub_scalar(dl_scalar_f(1), target)) : NULL;
  dl_tensor *a = omt ? dl_ag_keep(&s, dl_ag_mul(omt, input)) : NULL;
  dl_tensor *l = NULL;
  if (a && !pos_weight) {
    l = dl_ag_keep(&s, dl_ag_add(a, soft));
  } else if (a) {
    dl_tensor *pw1 = dl_ag_keep(&s, dl_ag_add_scalar(pos_weight, dl_scalar_f(-1)));
    dl_tensor *pwt = pw1 ? dl_ag_keep(&s, dl_ag_mul(pw1, target)) : NULL;
    dl_tensor *lw = pwt ? dl_ag_keep(&s, dl_ag_add_scalar(pwt, dl_scalar_f(1))) : NULL;
    dl_tensor *b = lw ? dl_ag_keep(&s, dl_ag_mul(lw, soft)) : NULL;
    l = b ? dl_ag_keep(&s, dl_ag_add(a, b)) : NULL;
  }
  if (l && weight) dl_ag_keep(&s, dl_ag_mul(l, weight));
  return reduce(finish(&s), red);
}

/* ---- cross-entropy with class probabilities (composed) ---- */

/* -sum_c w_c t'_c log_softmax(x)_c with t' = t (1 - s) + s / C; the mean
 * divides by the number of rows (input's numel / C), as PyTorch */
static dl_tensor *cross_entropy_probs(dl_tensor *x, dl_tensor *t, dl_tensor *weight, double smoothing,
                                      dl_reduction red) {
  const char *fn = "cross_entropy";
  char a[128], b[128];
  /* float labels of class-index shape: the dtype is wrong, not the shape */
  bool index_shape = x->ndim >= 1 && t->ndim == x->ndim - 1;
  for (int d = 0, k = 0; index_shape && d < x->ndim; d++) {
    if (d == (x->ndim >= 2 ? 1 : 0)) continue; /* the class dim */
    index_shape = t->shape[k++] == x->shape[d];
  }
  if (index_shape) {
    dl_error_set("%s: target %s of class indices must be int64, got %s (use target:long()); a floating-point "
                 "target holds class probabilities and has the input's shape %s",
                 fn, dl_tensor_shape_str(t, b, sizeof b), dl_dtype_name(t->dtype), dl_tensor_shape_str(x, a, sizeof a));
    return NULL;
  }
  if (dl_loss_check_pair(fn, x, t)) return NULL;
  if (x->ndim == 0) {
    dl_error_set("%s: input %s needs a class dim", fn, dl_tensor_shape_str(x, a, sizeof a));
    return NULL;
  }
  int cd = x->ndim == 1 ? 0 : 1;
  int64_t C = x->shape[cd];
  if (weight) {
    if (dl_check_same_device(fn, x, weight)) return NULL;
    if (weight->ndim != 1 || weight->shape[0] != C || !dl_dtype_is_float(weight->dtype)) {
      dl_error_set("%s: weight %s must be a 1-D float tensor with one entry per class (%lld) of input %s", fn,
                   dl_tensor_shape_str(weight, a, sizeof a), (long long)C, dl_tensor_shape_str(x, b, sizeof b));
      return NULL;
    }
  }
  if (!(smoothing >= 0.0 && smoothing <= 1.0)) {
    dl_error_set("%s: label_smoothing must be in [0, 1], got %g", fn, smoothing);
    return NULL;
  }
  dl_ag_scope s = {.n = 0};
  dl_tensor *lse = dl_ag_keep(&s, dl_ag_logsumexp(x, &cd, 1, true));
  dl_tensor *logp = lse ? dl_ag_keep(&s, dl_ag_sub(x, lse)) : NULL;
  dl_tensor *tt = t;
  if (logp && smoothing > 0) {
    dl_tensor *ts = dl_ag_keep(&s, dl_ag_mul_scalar(t, dl_scalar_f(1.0 - smoothing)));
    tt = ts ? dl_ag_keep(&s, dl_ag_add_scalar(ts, dl_scalar_f(smoothing / (double)C))) : NULL;
  }
  dl_tensor *prod = tt ? dl_ag_keep(&s, dl_ag_mul(logp, tt)) : NULL;
  if (prod && weight) {
    /* [C] -> [C, 1, ...] so it lines up with the class dim */
    int64_t ws[DL_MAX_DIMS];
    ws[0] = C;
    for (int k = 1; k < x->ndim - cd; k++) ws[k] = 1;
    dl_tensor *wv = dl_ag_keep(&s, dl_ag_reshape(weight, ws, x->ndim - cd));
    prod = wv ? dl_ag_keep(&s, dl_ag_mul(prod, wv)) : NULL;
  }
  dl_tensor *rs = prod ? dl_ag_keep(&s, dl_ag_sum(prod, &cd, 1, false)) : NULL;
  dl_tensor *l = rs ? dl_ag_keep(&s, dl_ag_neg(rs)) : NULL;
  if (l && red == DL_REDUCTION_MEAN) {
    dl_tensor *tot = dl_ag_keep(&s, dl_ag_sum(l, NULL, 0, false));
    if (tot) dl_ag_keep(&s, dl_ag_div_scalar(tot, dl_scalar_f((double)(x->numel / C))));
  } else if (l && red == DL_REDUCTION_SUM) {
    dl_ag_keep(&s, dl_ag_sum(l, NULL, 0, false));
  }
  return finish(&s);
}

/* ---- cross-entropy with class indices and NLL (fused) ---- */

typedef struct {
  dl_tensor *weight; /* owned reference, or NULL */
  int64_t ignore_index;
  double smoothing;
  dl_reduction red;
  bool log_softmax;
  int lse_slot, wsum_slot; /* -1 when absent */
} class_ctx;

static const char *class_name(const class_ctx *c) { return c->log_softmax ? "cross_entropy" : "nll_loss"; }

static void class_release(dl_node *n) {
  class_ctx *c = (class_ctx *)n->ctx;
  if (c->weight) dl_tensor_release(c->weight);
  c->weight = NULL;
}

/* class dim of an input ([C]: 0, else 1) */
static int class_dim(const dl_tensor *x) { return x->ndim == 1 ? 0 : 1; }

/* d loss / d input under create_graph, from differentiable ops:
 * g * (softmax(x) * sum(q) - q), or -q * g for NLL (q is a constant) */
static dl_tensor *class_grad_composed(const class_ctx *c, dl_tensor *x, dl_tensor *t, dl_tensor *gs) {
  dl_ag_scope s = {.n = 0};
  int cd = class_dim(x);
  dl_tensor *one = dl_ag_keep(&s, dl_tensor_scalar(dl_scalar_f(1), x->dtype, dl_tensor_device(x)));
  dl_tensor *qneg = one ? dl_ag_keep(&s, dl_op_class_loss_backward(class_name(c), one, x, t, c->weight, NULL,
                                                             c->ignore_index, c->smoothing, false))
                        : NULL;
  dl_tensor *gx = qneg;
  if (qneg && c->log_softmax) {
    dl_tensor *nqs = dl_ag_keep(&s, dl_op_sum(qneg, &cd, 1, true));
    dl_tensor *qs = nqs ? dl_ag_keep(&s, dl_op_unary(DL_UN_NEG, nqs)) : NULL;
    dl_tensor *lse = qs ? dl_ag_keep(&s, dl_ag_logsumexp(x, &cd, 1, true)) : NULL;
    dl_tensor *logp = lse ? dl_ag_keep(&s, dl_ag_sub(x, lse)) : NULL;
    dl_tensor *p = logp ? dl_ag_keep(&s, dl_ag_exp(logp)) : NULL;
    dl_tensor *pq = p ? dl_ag_keep(&s, dl_ag_mul(p, qs)) : NULL;
    gx = pq ? dl_ag_keep(&s, dl_ag_add(pq, qneg)) : NULL;
  }
  /* per-element gradients [N, d...] line up with [N, C, d...] after
   * unsqueezing the class dim */
  dl_tensor *gb = gs;
  if (gx && gs->ndim > 0 && cd == 1) gb = dl_ag_keep(&s, dl_ag_unsqueeze(gs, 1));
  if (gx && gb) dl_ag_keep(&s, dl_ag_mul(gx, gb));
  return finish(&s);
}

static int class_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  if (!(n->edges[0].fn || n->edges[0].leaf)) return 0;
  const class_ctx *c = (const class_ctx *)n->ctx;
  dl_tensor *x = dl_node_saved(n, 0);
  dl_tensor *t = x ? dl_node_saved(n, 1) : NULL;
  dl_tensor *lse = t && c->lse_slot >= 0 ? dl_node_saved(n, c->lse_slot) : NULL;
  dl_tensor *ws = t && c->wsum_slot >= 0 ? dl_node_saved(n, c->wsum_slot) : NULL;
  int rc = -1;
  if (!t || (c->lse_slot >= 0 && !lse) || (c->wsum_slot >= 0 && !ws)) goto done;
  if (dl_grad_enabled()) {
    dl_tensor *gs = ws ? dl_ag_div(gout[0], ws) : dl_tensor_retain(gout[0]);
    if (gs) {
      gin[0] = class_grad_composed(c, x, t, gs);
      dl_tensor_release(gs);
    }
  } else {
    dl_tensor *gs = ws ? dl_op_binary(DL_BIN_DIV, gout[0], ws, dl_scalar_i(1)) : dl_tensor_retain(gout[0]);
    if (gs) {
      gin[0] = dl_op_class_loss_backward(class_name(c), gs, x, t, c->weight, lse, c->ignore_index, c->smoothing,
                                         c->log_softmax);
      dl_tensor_release(gs);
    }
  }
  rc = gin[0] ? 0 : -1;
done:
  if (x) dl_tensor_release(x);
  if (t) dl_tensor_release(t);
  if (lse) dl_tensor_release(lse);
  if (ws) dl_tensor_release(ws);
  return rc;
}
_Static_assert(sizeof(class_ctx) <= DL_NODE_CTX_BYTES, "class_ctx fits a node's ctx");
static const dl_node_type nll_type = {"NllLossBackward0", class_backward, class_release};
static const dl_node_type ce_type = {"CrossEntropyLossBackward0", class_backward, class_release};

/* tangent: sum_c (d l_i / d x_ic) v_ic per element, then the reduction */
static dl_tensor *class_jvp(const class_ctx *c, dl_tensor *x, dl_tensor *t, dl_tensor *lse, dl_tensor *ws) {
  dl_ag_scope s = {.n = 0};
  int cd = class_dim(x);
  dl_tensor *one = dl_ag_keep(&s, dl_tensor_scalar(dl_scalar_f(1), x->dtype, dl_tensor_device(x)));
  dl_tensor *G = one ? dl_ag_keep(&s, dl_op_class_loss_backward(class_name(c), one, x, t, c->weight, lse,
                                                          c->ignore_index, c->smoothing, c->log_softmax))
                     : NULL;
  dl_tensor *gv = G ? dl_ag_keep(&s, dl_op_binary(DL_BIN_MUL, G, x->tangent, dl_scalar_i(1))) : NULL;
  dl_tensor *te = gv ? dl_ag_keep(&s, dl_op_sum(gv, &cd, 1, false)) : NULL;
  if (te && c->red != DL_REDUCTION_NONE) {
    dl_tensor *tot = dl_ag_keep(&s, dl_op_sum(te, NULL, 0, false));
    if (tot && ws) dl_ag_keep(&s, dl_op_binary(DL_BIN_DIV, tot, ws, dl_scalar_i(1)));
  }
  return finish(&s);
}

static dl_tensor *class_loss(const dl_node_type *type, dl_tensor *x, dl_tensor *t, dl_tensor *weight,
                             int64_t ignore_index, double smoothing, bool log_softmax, dl_reduction red) {
  const char *fn = log_softmax ? "cross_entropy" : "nll_loss";
  bool rec = dl_ag_needs1(x), fw = x->tangent != NULL;
  dl_tensor *lse = NULL, *ws = NULL;
  dl_tensor *out = dl_op_class_loss(fn, x, t, weight, ignore_index, smoothing, log_softmax, red,
                                    rec || fw ? &lse : NULL, rec || fw ? &ws : NULL);
  if (!out || !(rec || fw)) return out;
  class_ctx c = {weight, ignore_index, smoothing, red, log_softmax, -1, -1};
  if (rec) {
    dl_node *node = dl_ag_record(type, &x, 1, out);
    if (!node) goto fail;
    int slot = 0;
    dl_node_save(node, x), slot++;
    dl_node_save(node, t), slot++;
    if (lse) dl_node_save(node, lse), c.lse_slot = slot++;
    if (ws) dl_node_save(node, ws), c.wsum_slot = slot++;
    if (weight) dl_tensor_retain(weight);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (fw) {
    dl_tensor *tan = class_jvp(&c, x, t, lse, ws);
    if (!tan || dl_fw_set(out, tan)) goto fail;
  }
  if (lse) dl_tensor_release(lse);
  if (ws) dl_tensor_release(ws);
  return out;
fail:
  if (lse) dl_tensor_release(lse);
  if (ws) dl_tensor_release(ws);
  dl_tensor_release(out);
  return NULL;
}

dl_tensor *dl_ag_cross_entropy(dl_tensor *input, dl_tensor *target, dl_tensor *weight, int64_t ignore_index,
                               double label_smoothing, dl_reduction red) {
  if (dl_dtype_is_float(target->dtype)) return cross_entropy_probs(input, target, weight, label_smoothing, red);
  return class_loss(&ce_type, input, target, weight, ignore_index, label_smoothing, true, red);
}

dl_tensor *dl_ag_nll_loss(dl_tensor *input, dl_tensor *target, dl_tensor *weight, int64_t ignore_index,
                          dl_reduction red) {
  return class_loss(&nll_type, input, target, weight, ignore_index, 0.0, false, red);
}
