/* grad_layer_norm.c — layer normalisation over the last dims of x holding N
 * elements (F.layer_norm, nn.LayerNorm): forward, backward and jvp rules.
 *
 * With x as R rows of N, xhat = (x - mean) rstd, rstd = 1 / sqrt(var + eps)
 * (biased variance) per row, y = xhat w + b:
 *   dx = rstd (gy - mean(gy) - xhat mean(gy xhat)), gy = g w (per row)
 *   dw = sum(g xhat), db = sum(g) over the rows
 *   tangent: rstd (tx - mean(tx) - xhat mean(xhat tx)) w + xhat tw + tb
 * Where the backend has the kernels the forward and (without create_graph)
 * the backward are one fused pass each; otherwise, and for the backward
 * under create_graph, the same formulas run as differentiable ops
 * (statistics recomputed from x, so second derivatives follow). */
#include "dl_ag_layer.h"

#include "dl_ag_ewise.h"
#include "dl_ag_reduce.h"
#include "dl_ag_scope.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"

#include <inttypes.h>
#include <string.h>

typedef struct {
  double eps;
  int64_t R, N;
  bool has_weight, has_bias;
  /* the parameters' shapes, for their gradients */
  int wdim;
  int64_t wshape[DL_MAX_DIMS];
} ln_ctx;

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

#define K(e) (p->failed ? NULL : dl_ag_keep(p, (e)))

static dl_tensor *as_rows(dl_ag_scope *p, dl_tensor *t, int64_t R, int64_t N) {
  int64_t shape[2] = {R, N};
  return t ? K(dl_ag_reshape(t, shape, 2)) : NULL;
}
static dl_tensor *row_mean(dl_ag_scope *p, dl_tensor *t) {
  int dim = 1;
  return t ? K(dl_ag_mean(t, &dim, 1, true)) : NULL;
}
static dl_tensor *mul(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return a && b ? K(dl_ag_mul(a, b)) : NULL; }
static dl_tensor *sub(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return a && b ? K(dl_ag_sub(a, b)) : NULL; }
static dl_tensor *add(dl_ag_scope *p, dl_tensor *a, dl_tensor *b) { return a && b ? K(dl_ag_add(a, b)) : NULL; }

/* xhat [R, N] and rstd [R, 1] of x2 [R, N], differentiable */
static dl_tensor *stats(dl_ag_scope *p, dl_tensor *x2, double eps, dl_tensor **rstd) {
  dl_tensor *c = sub(p, x2, row_mean(p, x2)), *v = row_mean(p, mul(p, c, c));
  v = v ? K(dl_ag_add_scalar(v, dl_scalar_f(eps))) : NULL;
  *rstd = v ? K(dl_ag_rsqrt(v)) : NULL;
  return mul(p, c, *rstd);
}

/* v - mean(v) - xhat mean(xhat v), per row */
static dl_tensor *center(dl_ag_scope *p, dl_tensor *v, dl_tensor *xhat) {
  return sub(p, sub(p, v, row_mean(p, v)), mul(p, xhat, row_mean(p, mul(p, xhat, v))));
}

/* y = xhat w + b as differentiable ops (a backend without the kernel) */
static dl_tensor *composed(dl_tensor *x, int64_t R, int64_t N, dl_tensor *w, dl_tensor *b, double eps) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  dl_tensor *rstd, *y = stats(p, as_rows(p, x, R, N), eps, &rstd);
  if (w) y = mul(p, y, as_rows(p, w, 1, N));
  if (b) y = add(p, y, as_rows(p, b, 1, N));
  dl_tensor *out = y ? dl_ag_reshape(y, x->shape, x->ndim) : NULL;
  dl_ag_scope_end(p);
  return out;
}

/* a [N] gradient in the parameter's shape (a new reference) */
static dl_tensor *param_shaped(const ln_ctx *c, dl_tensor *g) {
  return g ? dl_ag_reshape(g, c->wshape, c->wdim) : NULL;
}

static int ln_backward(dl_node *nd, dl_tensor *const *gout, dl_tensor **gin) {
  const ln_ctx *c = (const ln_ctx *)nd->ctx;
  dl_ag_scope s = {.n = 0}, *p = &s;
  int rc = -1;
  dl_tensor *x = K(dl_node_saved(nd, 0)), *mean = K(dl_node_saved(nd, 1)), *rstd = K(dl_node_saved(nd, 2));
  dl_tensor *w = c->has_weight ? K(dl_node_saved(nd, 3)) : NULL;
  if (p->failed) goto done;
  dl_tensor *gw = NULL, *gb = NULL;
  if (!dl_grad_enabled()) { /* no graph to record: the fused kernel */
    if (dl_op_layer_norm_backward(gout[0], x, mean, rstd, w, c->N, wants(nd, 0) ? &gin[0] : NULL,
                                  wants(nd, 1) ? &gw : NULL, wants(nd, 2) ? &gb : NULL))
      goto done;
    if (gw) K(gw);
    if (gb) K(gb);
  } else { /* the statistics recomputed differentiably from x */
    dl_tensor *r, *xhat = stats(p, as_rows(p, x, c->R, c->N), c->eps, &r), *g2 = as_rows(p, gout[0], c->R, c->N);
    if (wants(nd, 0)) {
      dl_tensor *gy = w ? mul(p, g2, as_rows(p, w, 1, c->N)) : g2, *gx = mul(p, r, center(p, gy, xhat));
      if (!gx || !(gin[0] = dl_ag_reshape(gx, x->shape, x->ndim))) goto done;
    }
    int dim = 0;
    if (wants(nd, 1)) gw = K(dl_ag_sum(mul(p, g2, xhat), &dim, 1, false));
    if (wants(nd, 2)) gb = p->failed ? NULL : K(dl_ag_sum(g2, &dim, 1, false));
  }
  if (p->failed) goto done;
  if (wants(nd, 1) && !(gin[1] = param_shaped(c, gw))) goto done;
  if (wants(nd, 2) && !(gin[2] = param_shaped(c, gb))) goto done;
  rc = 0;
done:
  dl_ag_scope_end(p);
  return rc;
}
static const dl_node_type ln_type = {"NativeLayerNormBackward0", ln_backward, NULL};

/* the output's tangent, with grad mode off, from the saved statistics */
static dl_tensor *ln_tangent(const ln_ctx *c, dl_tensor *x, dl_tensor *w, dl_tensor *b, dl_tensor *mean,
                             dl_tensor *rstd) {
  dl_ag_scope s = {.n = 0}, *p = &s;
  const int64_t R = c->R, N = c->N;
  dl_tensor *x0 = K(dl_tensor_detach(x)), *m = as_rows(p, mean, R, 1), *r = as_rows(p, rstd, R, 1);
  dl_tensor *xhat = mul(p, sub(p, as_rows(p, x0, R, N), m), r);
  dl_tensor *t = K(dl_tensor_zeros((int64_t[]){R, N}, 2, x->dtype, dl_tensor_device(x)));
  if (x->tangent) {
    dl_tensor *a = mul(p, r, center(p, as_rows(p, x->tangent, R, N), xhat));
    if (w) a = mul(p, a, as_rows(p, K(dl_tensor_detach(w)), 1, N));
    t = add(p, t, a);
  }
  if (w && w->tangent) t = add(p, t, mul(p, xhat, as_rows(p, w->tangent, 1, N)));
  if (b && b->tangent) t = add(p, t, as_rows(p, b->tangent, 1, N));
  dl_tensor *out = t ? dl_ag_reshape(t, x->shape, x->ndim) : NULL;
  dl_ag_scope_end(p);
  return out;
}

/* x float with trailing dims of N elements; w, b N elements of x's dtype
 * and device */
static int check(dl_tensor *x, int64_t N, dl_tensor *w, dl_tensor *b) {
  static const char fn[] = "layer_norm";
  if (!dl_dtype_is_float(x->dtype)) {
    dl_error_set("%s: expected a float32 or float64 input, got %s", fn, dl_dtype_name(x->dtype));
    return -1;
  }
  int64_t n = 1;
  int d = x->ndim;
  while (d > 0 && n < N) n *= x->shape[--d];
  if (N < 1 || n != N) {
    char b1[64];
    dl_error_set("%s: input %s does not end in dims of %" PRId64 " elements", fn,
                 dl_tensor_shape_str(x, b1, sizeof b1), N);
    return -1;
  }
  dl_tensor *pv[2] = {w, b};
  const char *names[2] = {"weight", "bias"};
  for (int i = 0; i < 2; i++) {
    if (!pv[i]) continue;
    if (dl_check_same_device(fn, x, pv[i])) return -1;
    if (pv[i]->dtype != x->dtype || pv[i]->numel != N) {
      char b1[64];
      dl_error_set("%s: %s %s (%s) must have %" PRId64 " elements of the input's dtype %s", fn, names[i],
                   dl_tensor_shape_str(pv[i], b1, sizeof b1), dl_dtype_name(pv[i]->dtype), N,
                   dl_dtype_name(x->dtype));
      return -1;
    }
  }
  if (w && b && (w->ndim != b->ndim || memcmp(w->shape, b->shape, (size_t)w->ndim * sizeof w->shape[0]))) {
    dl_error_set("%s: weight and bias must have one shape", fn);
    return -1;
  }
  return 0;
}

dl_tensor *dl_ag_layer_norm(dl_tensor *x, int64_t N, dl_tensor *w, dl_tensor *b, double eps) {
  if (check(x, N, w, b)) return NULL;
  const int64_t R = x->numel / N;
  dl_tensor *y, *mean, *rstd;
  int fused = dl_op_layer_norm(x, N, w, b, eps, &y, &mean, &rstd);
  if (fused < 0) return NULL;
  if (fused > 0) return composed(x, R, N, w, b, eps);
  dl_tensor *in[3] = {x, w, b};
  ln_ctx c = {eps, R, N, w != NULL, b != NULL, 1, {N}};
  const dl_tensor *shaped = w ? w : b;
  if (shaped) {
    c.wdim = shaped->ndim;
    memcpy(c.wshape, shaped->shape, (size_t)shaped->ndim * sizeof shaped->shape[0]);
  }
  if (dl_ag_needs_grad(in, 3)) {
    dl_node *node = dl_ag_record(&ln_type, in, 3, y);
    if (!node) goto fail;
    dl_node_save(node, x);
    dl_node_save(node, mean);
    dl_node_save(node, rstd);
    if (w) dl_node_save(node, w);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (dl_fw_any(in, 3)) {
    bool prev = dl_set_grad_enabled(false);
    dl_tensor *t = ln_tangent(&c, x, w, b, mean, rstd);
    dl_set_grad_enabled(prev);
    if (dl_fw_set(y, t)) goto fail;
  }
  dl_tensor_release(mean);
  dl_tensor_release(rstd);
  return y;
fail:
  dl_tensor_release(mean);
  dl_tensor_release(rstd);
  dl_tensor_release(y);
  return NULL;
}
