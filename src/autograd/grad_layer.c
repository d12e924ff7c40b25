/* grad_layer.c — RBF features, dropout and batch norm: forward wrapper,
 * backward rule and jvp rule of each, side by side.
 *
 * Rules are written with the differentiable dl_ag_ ops, so create_graph
 * records them; RBF's and batch norm's backward take fused kernels when
 * no graph is being recorded. jvp rules run with grad mode off on
 * detached primals, so the same dl_ag_ ops act as plain ones there. */
#include "dl_ag_layer.h"

#include "dl_ag_activation.h"
#include "dl_ag_conv.h"
#include "dl_ag_ewise.h"
#include "dl_ag_linalg.h"
#include "dl_ag_reduce.h"
#include "dl_ag_view.h"
#include "dl_ag_scope.h"
#include "dl_autograd.h"
#include "../ops/dl_ewise.h"
#include "../ops/dl_random.h"

#include <math.h>
#include <string.h>

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }


static dl_tensor *sum1(dl_tensor *t, int dim, bool keepdim) { return dl_ag_sum(t, &dim, 1, keepdim); }

/* ==== RBF: phi_ij = exp(-D_ij / (2 s_j^2)), D_ij = |x_i - c_j|^2 ====
 * With A = g phi / s^2 (g the output gradient):
 *   dx = A @ c - rowsum(A) x,   dc = A^T @ x - colsum(A) c,
 *   ds = colsum(g phi D) / s^3
 * and the tangent phi (D ts / s - dD / 2) / s^2 with
 *   dD = 2 (x.tx - x @ tc^T - tx @ c^T + c.tc). */

typedef struct {
  bool bias_unit;
  int64_t n;
} rbf_ctx;

/* D = |x|^2 + |c|^2 - 2 x c^T, [N, n] */
static dl_tensor *sqdist(dl_ag_scope *p, dl_tensor *x, dl_tensor *c) {
  dl_tensor *x2, *c2, *ct, *s;
  if (!(x2 = dl_ag_keep(p, dl_ag_square(x))) || !(x2 = dl_ag_keep(p, sum1(x2, 1, true)))) return NULL;
  if (!(c2 = dl_ag_keep(p, dl_ag_square(c))) || !(c2 = dl_ag_keep(p, sum1(c2, 1, false)))) return NULL;
  if (!(ct = dl_ag_keep(p, dl_ag_transpose(c, 0, 1))) || !(s = dl_ag_keep(p, dl_ag_add(x2, c2)))) return NULL;
  return dl_ag_keep(p, dl_ag_addmm(s, x, ct, 1, -2));
}

/* the feature columns of an [N, n (+1)] tensor */
static dl_tensor *features(dl_ag_scope *p, const rbf_ctx *c, dl_tensor *t) {
  return dl_ag_keep(p, c->bias_unit ? dl_ag_narrow(t, 1, 1, c->n) : dl_tensor_retain(t));
}

static int rbf_backward(dl_node *nd, dl_tensor *const *gout, dl_tensor **gin) {
  const rbf_ctx *c = (const rbf_ctx *)nd->ctx;
  dl_ag_scope p = {.n = 0};
  int rc = -1;
  dl_tensor *x, *mu, *s, *out, *phi, *g, *gp, *s2, *A, *t1, *t2;
  if (!(x = dl_ag_keep(&p, dl_node_saved(nd, 0))) || !(mu = dl_ag_keep(&p, dl_node_saved(nd, 1))) ||
      !(s = dl_ag_keep(&p, dl_node_saved(nd, 2))) || !(out = dl_ag_keep(&p, dl_node_saved(nd, 3))))
    goto done;
  if (!dl_grad_enabled()) { /* no graph to record: the fused kernel */
    rc = dl_op_rbf_backward(gout[0], out, x, mu, s, c->bias_unit, wants(nd, 0) ? &gin[0] : NULL,
                         wants(nd, 1) ? &gin[1] : NULL, wants(nd, 2) ? &gin[2] : NULL);
    goto done;
  }
  if (!(phi = features(&p, c, out)) || !(g = features(&p, c, gout[0]))) goto done;
  if (!(gp = dl_ag_keep(&p, dl_ag_mul(g, phi))) || !(s2 = dl_ag_keep(&p, dl_ag_square(s))) ||
      !(A = dl_ag_keep(&p, dl_ag_div(gp, s2))))
    goto done;
  if (wants(nd, 0)) {
    if (!(t1 = dl_ag_keep(&p, dl_ag_mm(A, mu))) || !(t2 = dl_ag_keep(&p, sum1(A, 1, true))) ||
        !(t2 = dl_ag_keep(&p, dl_ag_mul(t2, x))) || !(gin[0] = dl_ag_sub(t1, t2)))
      goto done;
  }
  if (wants(nd, 1)) {
    if (!(t1 = dl_ag_keep(&p, dl_ag_transpose(A, 0, 1))) || !(t1 = dl_ag_keep(&p, dl_ag_mm(t1, x))) ||
        !(t2 = dl_ag_keep(&p, sum1(A, 0, false))) || !(t2 = dl_ag_keep(&p, dl_ag_unsqueeze(t2, 1))) ||
        !(t2 = dl_ag_keep(&p, dl_ag_mul(t2, mu))) || !(gin[1] = dl_ag_sub(t1, t2)))
      goto done;
  }
  if (wants(nd, 2)) {
    dl_tensor *D = sqdist(&p, x, mu);
    if (!D || !(t1 = dl_ag_keep(&p, dl_ag_mul(gp, D))) || !(t1 = dl_ag_keep(&p, sum1(t1, 0, false))) ||
        !(t2 = dl_ag_keep(&p, dl_ag_mul(s2, s))) || !(gin[2] = dl_ag_div(t1, t2)))
      goto done;
  }
  rc = 0;
done:
  dl_ag_scope_end(&p);
  return rc;
}
static const dl_node_type rbf_type = {"RbfBackward0", rbf_backward, NULL};

static dl_tensor *rbf_tangent(dl_ag_scope *p, const rbf_ctx *c, dl_tensor *x0, dl_tensor *mu0, dl_tensor *s0,
                              dl_tensor *out) {
  dl_tensor *x, *mu, *s, *tx, *tm, *ts, *phi, *D, *a, *b, *dD, *t;
  if (!(x = dl_ag_keep(p, dl_tensor_detach(x0))) || !(mu = dl_ag_keep(p, dl_tensor_detach(mu0))) ||
      !(s = dl_ag_keep(p, dl_tensor_detach(s0))))
    return NULL;
  if (!(tx = dl_ag_keep(p, dl_fw_tangent_or_zeros(x0))) || !(tm = dl_ag_keep(p, dl_fw_tangent_or_zeros(mu0))) ||
      !(ts = dl_ag_keep(p, dl_fw_tangent_or_zeros(s0))))
    return NULL;
  if (!(phi = features(p, c, out)) || !(D = sqdist(p, x, mu))) return NULL;
  /* dD / 2 = x.tx + c.tc - x @ tc^T - tx @ c^T */
  if (!(a = dl_ag_keep(p, dl_ag_mul(x, tx))) || !(a = dl_ag_keep(p, sum1(a, 1, true))) || !(b = dl_ag_keep(p, dl_ag_mul(mu, tm))) ||
      !(b = dl_ag_keep(p, sum1(b, 1, false))) || !(dD = dl_ag_keep(p, dl_ag_add(a, b))))
    return NULL;
  if (!(a = dl_ag_keep(p, dl_ag_transpose(tm, 0, 1))) || !(dD = dl_ag_keep(p, dl_ag_addmm(dD, x, a, 1, -1)))) return NULL;
  if (!(a = dl_ag_keep(p, dl_ag_transpose(mu, 0, 1))) || !(dD = dl_ag_keep(p, dl_ag_addmm(dD, tx, a, 1, -1)))) return NULL;
  /* phi (D ts / s - dD / 2) / s^2 */
  if (!(a = dl_ag_keep(p, dl_ag_div(ts, s))) || !(a = dl_ag_keep(p, dl_ag_mul(D, a))) || !(t = dl_ag_keep(p, dl_ag_sub(a, dD))) ||
      !(b = dl_ag_keep(p, dl_ag_square(s))) || !(t = dl_ag_keep(p, dl_ag_div(t, b))) || !(t = dl_ag_keep(p, dl_ag_mul(phi, t))))
    return NULL;
  if (!c->bias_unit) return dl_tensor_retain(t);
  dl_tensor *full = dl_tensor_zeros(out->shape, out->ndim, out->dtype, dl_tensor_device(out));
  dl_tensor *v = full ? dl_ag_keep(p, dl_tensor_narrow(full, 1, 1, c->n)) : NULL;
  if (!v || dl_tensor_copy_(v, t)) {
    dl_tensor_release(full);
    return NULL;
  }
  return full;
}

dl_tensor *dl_ag_rbf(dl_tensor *x, dl_tensor *centers, dl_tensor *sigmas, bool bias_unit) {
  dl_tensor *out = dl_op_rbf(x, centers, sigmas, bias_unit);
  if (!out) return NULL;
  dl_tensor *in[3] = {x, centers, sigmas};
  rbf_ctx c = {bias_unit, centers->shape[0]};
  if (dl_ag_needs_grad(in, 3)) {
    dl_node *node = dl_ag_record(&rbf_type, in, 3, out);
    if (!node) goto fail;
    for (int i = 0; i < 3; i++) dl_node_save(node, in[i]);
    dl_node_save_output(node, out, 0);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (dl_fw_any(in, 3)) {
    dl_ag_scope p = {.n = 0};
    bool prev = dl_set_grad_enabled(false);
    dl_tensor *t = rbf_tangent(&p, &c, x, centers, sigmas, out);
    dl_set_grad_enabled(prev);
    dl_ag_scope_end(&p);
    if (dl_fw_set(out, t)) goto fail;
  }
  return out;
fail:
  dl_tensor_release(out);
  return NULL;
}

/* ==== dropout: out = x * kept * scale, scale = 1 / (1 - p): dx = g * kept * scale ==== */

typedef struct {
  double scale;
} dropout_ctx;

static int dropout_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const double scale = ((const dropout_ctx *)n->ctx)->scale;
  dl_tensor *mask = dl_node_saved(n, 0);
  if (!mask) return -1;
  if (!dl_grad_enabled()) { /* no graph to record: one pass */
    gin[0] = dl_op_dropout_backward(gout[0], mask, scale);
  } else { /* the scaled mask as a constant factor, so the product records */
    dl_tensor *f = dl_tensor_to_dtype(mask, gout[0]->dtype); /* a new tensor: the mask is uint8 */
    bool ok = f && !dl_op_binary_(DL_BIN_MUL, f, dl_operand_scalar(dl_scalar_f(scale)), dl_scalar_i(1));
    gin[0] = ok ? dl_ag_mul(gout[0], f) : NULL;
    dl_tensor_release(f);
  }
  dl_tensor_release(mask);
  return gin[0] ? 0 : -1;
}
static const dl_node_type dropout_type = {"NativeDropoutBackward0", dropout_backward, NULL};

dl_tensor *dl_ag_dropout(dl_tensor *x, double p, bool training) {
  if (!training) {
    if (!(p >= 0 && p <= 1)) {
      dl_error_set("dropout: probability has to be between 0 and 1, but got %g", p);
      return NULL;
    }
    return dl_tensor_retain(x);
  }
  dl_tensor *out, *mask;
  if (dl_op_dropout(x, p, &out, &mask)) return NULL;
  const double scale = p < 1 ? 1 / (1 - p) : 0;
  if (dl_ag_needs1(x)) {
    dl_node *node = dl_ag_record(&dropout_type, &x, 1, out);
    if (!node) goto fail;
    dl_node_save(node, mask);
    ((dropout_ctx *)node->ctx)->scale = scale;
  }
  if (x->tangent && dl_fw_set(out, dl_op_dropout_backward(x->tangent, mask, scale))) goto fail;
  dl_tensor_release(mask);
  return out;
fail:
  dl_tensor_release(mask);
  dl_tensor_release(out);
  return NULL;
}

/* ==== batch norm: y = xhat w + b, xhat = (x - mean) invstd ====
 * training: dx = w invstd (g - mean(g) - xhat mean(g xhat)),
 *           tangent of xhat: invstd (tx - mean(tx) - xhat mean(xhat tx));
 * eval (running statistics are constants): dx = g w invstd.
 * Both: dw = sum(g xhat), db = sum(g) over the batch (and length) dims. */

typedef struct {
  double eps;
  bool training, has_weight, has_bias;
  dl_bn_epilogue ep; /* a ReLU (and pooling) fused after it: the bias is saved for the ReLU's mask */
  int ndim;          /* of the normalised [N, C(, L)]; with pooling 3, the input [N, C, H, W] flattened */
  int64_t C, H, W;
} bn_ctx;

/* the 2x2 stride-2 window of DL_BN_RELU_POOL2's pooling */
static const dl_window pool2 = {
    .nd = 2, .kernel = {2, 2}, .stride = {2, 2}, .dilation = {1, 1}, .pad_value = -INFINITY};

/* reduced dims and the broadcast shape of a [C] vector */
static int bn_dims(const bn_ctx *c, int *dims, int64_t *bshape) {
  bshape[0] = 1;
  bshape[1] = c->C;
  bshape[2] = 1;
  dims[0] = 0;
  dims[1] = 2;
  return c->ndim == 3 ? 2 : 1;
}

/* a [C] vector shaped to broadcast against the input */
static dl_tensor *bcast(dl_ag_scope *p, const bn_ctx *c, dl_tensor *v) {
  int dims[2];
  int64_t bshape[3];
  bn_dims(c, dims, bshape);
  return dl_ag_keep(p, dl_ag_reshape(v, bshape, c->ndim));
}

/* xhat from x and the [C] mean / invstd */
static dl_tensor *bn_xhat(dl_ag_scope *p, const bn_ctx *c, dl_tensor *x, dl_tensor *mean, dl_tensor *invstd) {
  dl_tensor *m, *r, *t;
  if (!(m = bcast(p, c, mean)) || !(r = bcast(p, c, invstd)) || !(t = dl_ag_keep(p, dl_ag_sub(x, m)))) return NULL;
  return dl_ag_keep(p, dl_ag_mul(t, r));
}

/* v - mean(v) - xhat mean(xhat v) over the reduced dims */
static dl_tensor *bn_center(dl_ag_scope *p, const bn_ctx *c, dl_tensor *v, dl_tensor *xhat) {
  int dims[2];
  int64_t bshape[3];
  int nd = bn_dims(c, dims, bshape);
  dl_tensor *a, *b, *t;
  if (!(a = dl_ag_keep(p, dl_ag_mean(v, dims, nd, true))) || !(t = dl_ag_keep(p, dl_ag_sub(v, a))) ||
      !(b = dl_ag_keep(p, dl_ag_mul(xhat, v))) || !(b = dl_ag_keep(p, dl_ag_mean(b, dims, nd, true))) ||
      !(b = dl_ag_keep(p, dl_ag_mul(xhat, b))))
    return NULL;
  return dl_ag_keep(p, dl_ag_sub(t, b));
}

/* the gradients (gin[i] where want[i]: x, weight, bias) from g: the fused
 * kernel with no graph to record, else the differentiable formulas; win
 * the pooling's record (used by the fused kernel only) */
static int bn_grads(const bn_ctx *c, dl_tensor *g, dl_tensor *x, dl_tensor *mean, dl_tensor *invstd, dl_tensor *w,
                    dl_tensor *b, dl_tensor *const *win, const bool *want, dl_tensor **gin) {
  dl_ag_scope p = {.n = 0};
  int rc = -1, dims[2];
  int64_t bshape[3];
  int ndims = bn_dims(c, dims, bshape);
  dl_tensor *xhat, *r, *t;
  if (c->training && !dl_grad_enabled()) { /* no graph to record: the fused kernel */
    rc = dl_op_batch_norm_backward(g, x, mean, invstd, w, b, c->ep, win, want[0] ? &gin[0] : NULL,
                                   want[1] ? &gin[1] : NULL, want[2] ? &gin[2] : NULL);
    goto done;
  }
  const dl_tensor *x4 = x; /* with pooling, the input as given: [N, C, H, W] */
  dl_tensor *y = NULL;      /* with an epilogue, the output before pooling, recomputed by the forward's kernel */
  if (c->ep == DL_BN_RELU_POOL2) { /* the pooling's gradient first, at the maxima of that output */
    dl_tensor *y4, *pooled, *idx = NULL;
    const int64_t flat[3] = {x4->shape[0], c->C, c->H * c->W};
    if (!(x = dl_ag_keep(&p, dl_ag_reshape(x, flat, 3))) || /* recorded: under create_graph x's own path counts */
        !(y = dl_ag_keep(&p, dl_op_batch_norm_apply(x, mean, invstd, w, b, true))) ||
        !(y4 = dl_ag_keep(&p, dl_tensor_reshape(y, x4->shape, 4))) ||
        !(pooled = dl_ag_keep(&p, dl_op_max_pool(y4, &pool2, &idx))) || !dl_ag_keep(&p, idx) ||
        !(g = dl_ag_keep(&p, dl_ag_max_pool_grad(g, idx, x4->shape, 4))) ||
        !(g = dl_ag_keep(&p, dl_ag_reshape(g, x->shape, 3))))
      goto done;
  }
  if (c->ep != DL_BN_PLAIN) { /* the ReLU's gradient: 0 where that output is <= 0, g elsewhere (a NaN output
                                * passes it, as the ReLU's kernel) */
    dl_tensor *mask;
    if ((!y && !(y = dl_ag_keep(&p, dl_op_batch_norm_apply(x, mean, invstd, w, b, true)))) ||
        !(mask = dl_ag_keep(&p, dl_op_binary_ex(DL_BIN_LE, dl_operand_tensor(y), dl_operand_scalar(dl_scalar_f(0)),
                                                dl_scalar_i(1)))) ||
        !(g = dl_ag_keep(&p, dl_ag_where(mask, dl_operand_scalar(dl_scalar_f(0)), dl_operand_tensor(g)))))
      goto done;
  }
  if (c->training) { /* statistics recomputed differentiably from x */
    dl_tensor *v;
    if (!(mean = dl_ag_keep(&p, dl_ag_mean(x, dims, ndims, false))) || !(t = bcast(&p, c, mean)) ||
        !(t = dl_ag_keep(&p, dl_ag_sub(x, t))) || !(v = dl_ag_keep(&p, dl_ag_square(t))) ||
        !(v = dl_ag_keep(&p, dl_ag_mean(v, dims, ndims, false))) ||
        !(v = dl_ag_keep(&p, dl_ag_add_scalar(v, dl_scalar_f(c->eps)))) || !(invstd = dl_ag_keep(&p, dl_ag_rsqrt(v))))
      goto done;
  }
  if (!(xhat = bn_xhat(&p, c, x, mean, invstd)) || !(r = bcast(&p, c, invstd))) goto done;
  if (want[0]) {
    dl_tensor *k = r;
    if (w && (!(k = bcast(&p, c, w)) || !(k = dl_ag_keep(&p, dl_ag_mul(k, r))))) goto done;
    if (!(t = c->training ? bn_center(&p, c, g, xhat) : g) || !(gin[0] = dl_ag_mul(t, k))) goto done;
  }
  if (want[1] && (!(t = dl_ag_keep(&p, dl_ag_mul(g, xhat))) || !(gin[1] = dl_ag_sum(t, dims, ndims, false))))
    goto done;
  if (want[2] && !(gin[2] = dl_ag_sum(g, dims, ndims, false))) goto done;
  if (gin[0] && c->ep == DL_BN_RELU_POOL2) { /* back to the input's [N, C, H, W] */
    dl_tensor *g4 = dl_ag_reshape(gin[0], x4->shape, 4);
    dl_tensor_release(gin[0]);
    if (!(gin[0] = g4)) goto done;
  }
  rc = 0;
done:
  dl_ag_scope_end(&p);
  return rc;
}

static int bn_backward(dl_node *nd, dl_tensor *const *gout, dl_tensor **gin) {
  const bn_ctx *c = (const bn_ctx *)nd->ctx;
  dl_ag_scope p = {.n = 0};
  int rc = -1;
  dl_tensor *x, *mean, *invstd, *w = NULL, *b = NULL;
  const int bslot = 3 + c->has_weight, wslot = bslot + (c->ep != DL_BN_PLAIN && c->has_bias);
  dl_tensor *win[2] = {NULL, NULL};
  const bool want[3] = {wants(nd, 0), wants(nd, 1), wants(nd, 2)};
  if ((x = dl_ag_keep(&p, dl_node_saved(nd, 0))) && (mean = dl_ag_keep(&p, dl_node_saved(nd, 1))) &&
      (invstd = dl_ag_keep(&p, dl_node_saved(nd, 2))) && (!c->has_weight || (w = dl_ag_keep(&p, dl_node_saved(nd, 3)))) &&
      (c->ep == DL_BN_PLAIN || !c->has_bias || (b = dl_ag_keep(&p, dl_node_saved(nd, bslot)))) &&
      (c->ep != DL_BN_RELU_POOL2 || ((win[0] = dl_ag_keep(&p, dl_node_saved(nd, wslot))) &&
                                     (win[1] = dl_ag_keep(&p, dl_node_saved(nd, wslot + 1))))))
    rc = bn_grads(c, gout[0], x, mean, invstd, w, b, win, want, gin);
  dl_ag_scope_end(&p);
  return rc;
}
static const dl_node_type bn_type = {"NativeBatchNormBackward0", bn_backward, NULL};
static const dl_node_type bn_relu_type = {"NativeBatchNormReluBackward0", bn_backward, NULL};
static const dl_node_type bn_pool_type = {"NativeBatchNormReluMaxPoolBackward0", bn_backward, NULL};

int dl_ag_batch_norm_grads(dl_tensor *g, dl_tensor *x, dl_tensor *mean, dl_tensor *invstd, dl_tensor *w,
                           dl_tensor *b, double eps, dl_bn_epilogue ep, const bool *want, dl_tensor **gin) {
  const bool pooled = ep == DL_BN_RELU_POOL2;
  if (x->ndim != (pooled ? 4 : 3) && !(x->ndim == 2 && !pooled)) {
    char b1[64];
    dl_error_set("batch_norm_backward: unexpected input %s", dl_tensor_shape_str(x, b1, sizeof b1));
    return -1;
  }
  bn_ctx c = {eps,          true, w != NULL, b != NULL, ep, pooled ? 3 : x->ndim, x->shape[1],
              pooled ? x->shape[2] : 0, pooled ? x->shape[3] : 0};
  const bool grad_mode = dl_set_grad_enabled(true); /* the formulas, recorded */
  int rc = bn_grads(&c, g, x, mean, invstd, w, b, NULL, want, gin);
  dl_set_grad_enabled(grad_mode);
  return rc;
}

/* batch norm + ReLU, then the pooling, as two recorded ops (tangents, or a
 * device without the fused kernels) */
static dl_tensor *composed_pool(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                                dl_tensor *running_var, bool training, double momentum, double eps) {
  if (x->ndim != 4) {
    char b[64];
    dl_error_set("batch_norm: batch norm + ReLU + max pooling expected a 4D input, got %s",
                 dl_tensor_shape_str(x, b, sizeof b));
    return NULL;
  }
  dl_ag_scope p = {.n = 0};
  dl_tensor *x3, *y, *out = NULL, *idx = NULL;
  const int64_t flat[3] = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]};
  if ((x3 = dl_ag_keep(&p, dl_ag_reshape(x, flat, 3))) &&
      (y = dl_ag_keep(&p, dl_ag_batch_norm(x3, weight, bias, running_mean, running_var, training, momentum, eps,
                                           DL_BN_RELU))) &&
      (y = dl_ag_keep(&p, dl_ag_reshape(y, x->shape, 4))))
    out = dl_ag_max_pool(y, &pool2, &idx);
  dl_tensor_release(idx);
  dl_ag_scope_end(&p);
  return out;
}

/* w t_xhat + tw xhat + tb, terms without a tangent skipped */
static dl_tensor *bn_tangent(dl_ag_scope *p, const bn_ctx *c, dl_tensor *x0, dl_tensor *w0, dl_tensor *b0,
                             dl_tensor *mean, dl_tensor *invstd) {
  dl_tensor *x, *xhat, *t, *a;
  if (!(x = dl_ag_keep(p, dl_tensor_detach(x0))) || !(xhat = bn_xhat(p, c, x, mean, invstd))) return NULL;
  if (!(t = dl_ag_keep(p, dl_tensor_zeros(x->shape, x->ndim, x->dtype, dl_tensor_device(x))))) return NULL;
  if (x0->tangent) {
    dl_tensor *tx = x0->tangent, *r;
    if (c->training && !(tx = bn_center(p, c, tx, xhat))) return NULL;
    if (!(r = bcast(p, c, invstd)) || !(a = dl_ag_keep(p, dl_ag_mul(tx, r)))) return NULL;
    if (w0 && (!(r = dl_ag_keep(p, dl_tensor_detach(w0))) || !(r = bcast(p, c, r)) || !(a = dl_ag_keep(p, dl_ag_mul(a, r)))))
      return NULL;
    if (!(t = dl_ag_keep(p, dl_ag_add(t, a)))) return NULL;
  }
  if (w0 && w0->tangent &&
      (!(a = bcast(p, c, w0->tangent)) || !(a = dl_ag_keep(p, dl_ag_mul(a, xhat))) || !(t = dl_ag_keep(p, dl_ag_add(t, a)))))
    return NULL;
  if (b0 && b0->tangent && (!(a = bcast(p, c, b0->tangent)) || !(t = dl_ag_keep(p, dl_ag_add(t, a))))) return NULL;
  return dl_tensor_retain(t);
}

dl_tensor *dl_ag_batch_norm(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                            dl_tensor *running_var, bool training, double momentum, double eps, dl_bn_epilogue ep) {
  dl_tensor *in[3] = {x, weight, bias};
  if (ep == DL_BN_RELU_POOL2 && (dl_fw_any(in, 3) || !dl_batch_norm_pool_fused(x)))
    return composed_pool(x, weight, bias, running_mean, running_var, training, momentum, eps);
  if (ep == DL_BN_RELU && dl_fw_any(in, 3)) { /* tangents: the two ops, each with its jvp rule */
    dl_tensor *y = dl_ag_batch_norm(x, weight, bias, running_mean, running_var, training, momentum, eps, DL_BN_PLAIN);
    dl_tensor *r = y ? dl_ag_act(DL_ACT_RELU, y, 0, 0) : NULL;
    dl_tensor_release(y);
    return r;
  }
  dl_tensor *out, *mean = NULL, *invstd = NULL, *win[2] = {NULL, NULL};
  const bool pooled = ep == DL_BN_RELU_POOL2, record = dl_ag_needs_grad(in, 3);
  /* with pooling, the winners' record for a backward */
  if (dl_op_batch_norm_ex(x, weight, bias, running_mean, running_var, training, momentum, eps, ep, &out, &mean,
                          &invstd, pooled && record ? win : NULL))
    return NULL;
  bn_ctx c = {eps,         training, weight != NULL, bias != NULL, ep, pooled ? 3 : x->ndim, x->shape[1],
              pooled ? x->shape[2] : 0, pooled ? x->shape[3] : 0};
  if (!training) { /* a snapshot: later training steps update the running statistics in place */
    dl_tensor *m = dl_tensor_clone(mean);
    dl_tensor_release(mean);
    if (!(mean = m)) goto fail;
  }
  if (record) {
    dl_node *node = dl_ag_record(pooled ? &bn_pool_type : ep == DL_BN_RELU ? &bn_relu_type : &bn_type, in, 3, out);
    if (!node) goto fail;
    dl_node_save(node, x);
    dl_node_save(node, mean);
    dl_node_save(node, invstd);
    if (weight) dl_node_save(node, weight);
    if (ep != DL_BN_PLAIN && bias) dl_node_save(node, bias);
    if (pooled) dl_node_save(node, win[0]), dl_node_save(node, win[1]);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (dl_fw_any(in, 3)) {
    dl_ag_scope p = {.n = 0};
    bool prev = dl_set_grad_enabled(false);
    dl_tensor *t = bn_tangent(&p, &c, x, weight, bias, mean, invstd);
    dl_set_grad_enabled(prev);
    dl_ag_scope_end(&p);
    if (dl_fw_set(out, t)) goto fail;
  }
  dl_tensor_release(mean);
  dl_tensor_release(invstd);
  dl_tensor_release(win[0]);
  dl_tensor_release(win[1]);
  return out;
fail:
  dl_tensor_release(mean);
  dl_tensor_release(invstd);
  dl_tensor_release(win[0]);
  dl_tensor_release(win[1]);
  dl_tensor_release(out);
  return NULL;
}

