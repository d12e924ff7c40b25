/* grad_reduce.c — reductions and scans: forward, backward rule and jvp rule
 * of each, side by side.
 *
 * Most reductions are separable: d out / d x_i is an element-wise "local
 * derivative" L (out / x for prod, 2 (x - mean) / (n - c) for var, the
 * softmax for logsumexp, the tie mask over its count for amax, ...). The
 * backward rule is then L * g, with g put back on the reduced dims, and the
 * jvp rule is sum(L * tangent) over the same dims, so each op only defines
 * L. L is written with differentiable ops from the saved input and output,
 * so create_graph gives second derivatives; the jvp rule evaluates the same
 * formula on detached values with grad mode off. */
#include "dl_ag_reduce.h"

#include "dl_ag_ewise.h"
#include "dl_ag_index.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"
#include "grad_glue.h"
#include "dl_autograd_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- composition glue (grad_glue.h) and what only reductions need ---- */

static dl_tensor *t_exp(dl_tensor *a) { return t_un(DL_UN_EXP, a); }
static dl_tensor *t_abs(dl_tensor *a) { return t_un(DL_UN_ABS, a); }

/* a 0-d tensor of a's dtype and device (does not widen a) */
static dl_tensor *scalar_like(const dl_tensor *a, double v) {
  return dl_tensor_scalar(dl_scalar_f(v), a->dtype, dl_tensor_device(a));
}

static dl_tensor *zeros_of(const dl_tensor *x) {
  return dl_tensor_zeros(x->shape, x->ndim, x->dtype, dl_tensor_device(x));
}
static dl_tensor *ones_of(const int64_t *shape, int ndim, const dl_tensor *like) {
  return dl_tensor_full(shape, ndim, like->dtype, dl_tensor_device(like), dl_scalar_i(1));
}

/* 1 when no element of x is zero, 0 when one is, -1 on error (the answer
 * comes to the host: a branch between two formulas, as PyTorch takes it) */
static int all_nonzero(dl_tensor *x) {
  dl_tensor *a = dl_op_all(x, NULL, 0, false);
  dl_tensor *h = a ? dl_tensor_to_device(a, dl_device_cpu()) : NULL;
  dl_tensor_release(a);
  if (!h) return -1;
  int r = dl_tensor_get_linear(h, 0).i != 0;
  dl_tensor_release(h);
  return r;
}

/* ---- the reduction context ---- */

typedef enum { L_PROD, L_VAR, L_STD, L_NORM, L_LSE, L_EXTREME } local_kind;

typedef struct {
  int64_t shape[DL_MAX_DIMS]; /* input shape */
  int ndim;
  bool reduced[DL_MAX_DIMS];
  int dims[DL_MAX_DIMS]; /* the reduced dims, ascending */
  int ndims;
  bool keepdim;
  int64_t n; /* input elements folded into each output element */
  local_kind kind;
  bool uses_out; /* the rule reads the saved output */
  double p, correction;
} reduce_ctx;

_Static_assert(sizeof(reduce_ctx) <= DL_NODE_CTX_BYTES, "reduce_ctx fits a node");

static int fill_reduce_ctx(reduce_ctx *c, const char *fn, const dl_tensor *t, const int *dims, int ndims,
                           bool keepdim) {
  memset(c, 0, sizeof *c);
  memcpy(c->shape, t->shape, sizeof c->shape);
  c->ndim = t->ndim;
  c->keepdim = keepdim;
  for (int i = 0; i < ndims; i++) {
    int d = dl_wrap_dim(fn, dims[i], t->ndim);
    if (d < 0) return -1;
    if (t->ndim > 0) c->reduced[d] = true;
  }
  c->n = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (ndims == 0) c->reduced[d] = true;
    if (c->reduced[d]) {
      c->dims[c->ndims++] = d;
      c->n *= t->shape[d];
    }
  }
  return 0;
}

/* a reduced-shape tensor (output, gradient) in the keepdim layout */
static dl_tensor *to_keep(const reduce_ctx *c, dl_tensor *g) {
  if (!g) return NULL;
  int64_t ks[DL_MAX_DIMS];
  for (int d = 0; d < c->ndim; d++) ks[d] = c->reduced[d] ? 1 : c->shape[d];
  return dl_ag_reshape(g, ks, c->ndim);
}

/* ---- sum ---- */

/* g expanded to the input's shape and made whole: the element-wise kernels
 * downstream run their contiguous loops on it, not a gather of one value
 * per element (relu's backward after a full sum of [32,128,32,32]: 29 ->
 * 5 ms); from one value the copy is a fill */
static dl_tensor *spread_back(const reduce_ctx *c, dl_tensor *g) {
  dl_tensor *k = to_keep(c, g); /* the keepdim shape */
  dl_tensor *e = k ? dl_ag_expand(k, c->shape, c->ndim) : NULL;
  dl_tensor *w = e ? dl_ag_contiguous(e) : NULL;
  dl_tensor_release(k);
  dl_tensor_release(e);
  return w;
}

static int sum_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  gin[0] = spread_back((const reduce_ctx *)n->ctx, gout[0]);
  return gin[0] ? 0 : -1;
}
/* PyTorch's names: sum() over everything, sum(dims) */
static const dl_node_type sum_all_type = {"SumBackward0", sum_backward, NULL};
static const dl_node_type sum_type = {"SumBackward1", sum_backward, NULL};

dl_tensor *dl_ag_sum(dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  dl_tensor *out = dl_op_sum(t, dims, ndims, keepdim);
  if (!out) return NULL;
  if (dl_ag_needs1(t) && dl_dtype_is_float(t->dtype)) {
    reduce_ctx c;
    if (fill_reduce_ctx(&c, "sum", t, dims, ndims, keepdim)) return fail(out);
    dl_node *node = dl_ag_record(ndims == 0 ? &sum_all_type : &sum_type, &t, 1, out);
    if (!node) return fail(out);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (t->tangent && dl_fw_set(out, dl_op_sum(t->tangent, dims, ndims, keepdim))) return fail(out);
  return out;
}

dl_tensor *dl_ag_sum_dims(dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return dl_ag_sum(t, dims, ndims, keepdim);
}

/* ---- mean: the sum's gradient over n ---- */

/* g / n on the reduced shape, then spread back as the sum's */
static int mean_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const reduce_ctx *c = (const reduce_ctx *)n->ctx;
  dl_tensor *s = dl_ag_mul_scalar(gout[0], dl_scalar_f(1.0 / (double)c->n));
  gin[0] = s ? spread_back(c, s) : NULL;
  dl_tensor_release(s);
  return gin[0] ? 0 : -1;
}
static const dl_node_type mean_all_type = {"MeanBackward0", mean_backward, NULL};
static const dl_node_type mean_type = {"MeanBackward1", mean_backward, NULL};

dl_tensor *dl_ag_mean(dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  dl_tensor *out = dl_op_mean(t, dims, ndims, keepdim);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    reduce_ctx c;
    if (fill_reduce_ctx(&c, "mean", t, dims, ndims, keepdim)) return fail(out);
    dl_node *node = dl_ag_record(ndims ? &mean_type : &mean_all_type, &t, 1, out);
    if (!node) return fail(out);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (t->tangent && dl_fw_set(out, dl_op_mean(t->tangent, dims, ndims, keepdim))) return fail(out);
  return out;
}

/* ---- local derivatives ---- */

/* prod_{j != i} x_j along the last dim of x [..., m], m >= 2: the products
 * from the left times the products from the right, each exclusive (no
 * division, so zeros are fine) */
static dl_tensor *exclusive_products(dl_tensor *x) {
  int last = x->ndim - 1;
  int64_t m = x->shape[last];
  int64_t oshape[DL_MAX_DIMS];
  memcpy(oshape, x->shape, sizeof oshape);
  oshape[last] = 1;
  dl_tensor *ones = ones_of(oshape, x->ndim, x);
  dl_tensor *xr = dl_ag_flip(x, &last, 1);
  dl_tensor *halves[2] = {NULL, NULL};
  for (int k = 0; k < 2 && ones && xr; k++) {
    dl_tensor *head = dl_ag_narrow(k ? xr : x, last, 0, m - 1);
    dl_tensor *parts[2] = {ones, head};
    dl_tensor *shifted = head ? dl_ag_cat(parts, 2, last) : NULL;
    dl_tensor *run = shifted ? dl_ag_cumprod(shifted, last) : NULL;
    dl_tensor_release(head);
    dl_tensor_release(shifted);
    halves[k] = k && run ? take1(dl_ag_flip(run, &last, 1), run) : run;
  }
  dl_tensor_release(ones);
  dl_tensor_release(xr);
  return t_mul(halves[0], halves[1]);
}

/* prod's L with zeros in x: the reduced dims moved last and flattened */
static dl_tensor *prod_local_zeros(const reduce_ctx *c, dl_tensor *x) {
  int perm[DL_MAX_DIMS], inv[DL_MAX_DIMS], k = 0;
  int64_t flat[DL_MAX_DIMS], pshape[DL_MAX_DIMS];
  for (int d = 0; d < c->ndim; d++)
    if (!c->reduced[d]) flat[k] = c->shape[d], perm[k++] = d;
  int nkept = k;
  for (int d = 0; d < c->ndim; d++)
    if (c->reduced[d]) perm[k++] = d;
  for (int i = 0; i < c->ndim; i++) inv[perm[i]] = i, pshape[i] = c->shape[perm[i]];
  flat[nkept] = c->n;
  dl_tensor *xp = dl_ag_permute(x, perm, c->ndim);
  dl_tensor *xf = xp ? dl_ag_reshape(xp, flat, nkept + 1) : NULL;
  dl_tensor_release(xp);
  dl_tensor *e = xf ? exclusive_products(xf) : NULL;
  dl_tensor_release(xf);
  dl_tensor *ep = e ? take1(dl_ag_reshape(e, pshape, c->ndim), e) : NULL;
  return ep ? take1(dl_ag_permute(ep, inv, c->ndim), ep) : NULL;
}

/* prod: out / x, or the exclusive products when x has a zero */
static dl_tensor *prod_local(const reduce_ctx *c, dl_tensor *x, dl_tensor *ok) {
  if (c->n <= 1) return c->n == 1 ? ones_of(x->shape, x->ndim, x) : zeros_of(x);
  int nz = all_nonzero(x);
  if (nz < 0) return NULL;
  if (nz) return t_div(ref(ok), ref(x));
  return prod_local_zeros(c, x);
}

/* var: 2 (x - mean) / (n - correction) */
static dl_tensor *centred(const reduce_ctx *c, dl_tensor *x) {
  return t_sub(ref(x), dl_ag_mean(x, c->dims, c->ndims, true));
}
static dl_tensor *var_local(const reduce_ctx *c, dl_tensor *x) {
  return t_muls(centred(c, x), 2.0 / ((double)c->n - c->correction));
}

/* 1 where v == 0, else 0 (a constant, v's dtype) */
static dl_tensor *zero_mask(dl_tensor *v) {
  return p_float(p_bin(DL_BIN_EQ, ref(v), scalar_like(v, 0)), v->dtype);
}

/* std: (x - mean) / ((n - correction) std), 0 where std == 0 (as PyTorch);
 * the masked denominator is std + 1 there, so nothing divides by zero */
static dl_tensor *std_local(const reduce_ctx *c, dl_tensor *x, dl_tensor *ok) {
  dl_tensor *zm = zero_mask(ok);
  if (!zm) return NULL;
  dl_tensor *keep = p_bin(DL_BIN_SUB, scalar_like(zm, 1), ref(zm));
  dl_tensor *den = t_muls(t_add(ref(ok), zm), (double)c->n - c->correction);
  return t_div(t_mul(centred(c, x), keep), den);
}

/* norm, PyTorch's formulas (0 where the norm is 0) */
static dl_tensor *norm_local(const reduce_ctx *c, dl_tensor *x, dl_tensor *ok) {
  double p = c->p;
  if (p == 0) return zeros_of(x);
  if (p == 1) return p_un(DL_UN_SIGN, ref(x));
  if (isinf(p)) { /* the ties of amax |x| share the gradient, with x's sign */
    dl_tensor *mask = p_float(p_bin(DL_BIN_EQ, p_un(DL_UN_ABS, ref(x)), ref(ok)), x->dtype);
    dl_tensor *count = mask ? dl_op_sum(mask, c->dims, c->ndims, true) : NULL;
    return p_bin(DL_BIN_MUL, p_un(DL_UN_SIGN, ref(x)), p_bin(DL_BIN_DIV, mask, count));
  }
  /* norms of 0 become 1 in denominators; the numerators are 0 there */
  dl_tensor *safe = t_add(ref(ok), zero_mask(ok));
  if (p == 2) return t_div(ref(x), safe);
  if (p < 1) { /* sgn(x) |x|^(p-1) (0 at x = 0) * norm^(1-p) */
    dl_tensor_release(safe);
    dl_tensor *ax = t_add(t_abs(ref(x)), zero_mask(x));
    dl_tensor *s = t_mul(p_un(DL_UN_SIGN, ref(x)), t_pows(ax, p - 1));
    return t_mul(s, t_pows(ref(ok), 1 - p));
  }
  dl_tensor *num = p < 2 ? t_mul(p_un(DL_UN_SIGN, ref(x)), t_pows(t_abs(ref(x)), p - 1))
                         : t_mul(ref(x), t_pows(t_abs(ref(x)), p - 2));
  return t_div(num, t_pows(safe, p - 1));
}

/* amax, amin, max(), min(): the tie mask over its count (a constant) */
static dl_tensor *extreme_local(const reduce_ctx *c, dl_tensor *x, dl_tensor *ok) {
  dl_tensor *mask = p_float(p_bin(DL_BIN_EQ, ref(x), ref(ok)), x->dtype);
  dl_tensor *count = mask ? dl_op_sum(mask, c->dims, c->ndims, true) : NULL;
  return p_bin(DL_BIN_DIV, mask, count);
}

/* L for c->kind, input-shaped; ok: the output in the keepdim layout */
static dl_tensor *local_grad(const reduce_ctx *c, dl_tensor *x, dl_tensor *ok) {
  switch (c->kind) {
  case L_PROD: return prod_local(c, x, ok);
  case L_VAR: return var_local(c, x);
  case L_STD: return std_local(c, x, ok);
  case L_NORM: return norm_local(c, x, ok);
  case L_LSE: return t_exp(t_sub(ref(x), ref(ok)));
  case L_EXTREME: return extreme_local(c, x, ok);
  }
  return NULL;
}

/* ---- the separable reductions' node, backward and jvp ---- */

static int local_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const reduce_ctx *c = (const reduce_ctx *)n->ctx;
  dl_tensor *x = dl_node_saved(n, 0);
  if (!x) return -1;
  dl_tensor *ok = NULL;
  if (c->uses_out) {
    dl_tensor *o = dl_node_saved(n, 1);
    ok = to_keep(c, o);
    dl_tensor_release(o);
    if (!ok) {
      dl_tensor_release(x);
      return -1;
    }
  }
  gin[0] = t_mul(local_grad(c, x, ok), to_keep(c, gout[0]));
  dl_tensor_release(x);
  dl_tensor_release(ok);
  return gin[0] ? 0 : -1;
}

/* sum(L * tangent) over the reduced dims, on detached values */
static dl_tensor *local_jvp(const reduce_ctx *c, dl_tensor *t, dl_tensor *out) {
  bool prev = dl_set_grad_enabled(false);
  dl_tensor *x = dl_tensor_detach(t);
  dl_tensor *o = c->uses_out ? dl_tensor_detach(out) : NULL;
  dl_tensor *ok = to_keep(c, o);
  dl_tensor_release(o);
  dl_tensor *l = x && (ok || !c->uses_out) ? local_grad(c, x, ok) : NULL;
  dl_tensor *lt = p_bin(DL_BIN_MUL, l, ref(t->tangent));
  dl_tensor *r = lt ? dl_op_sum(lt, c->dims, c->ndims, c->keepdim) : NULL;
  dl_tensor_release(lt);
  dl_tensor_release(x);
  dl_tensor_release(ok);
  dl_set_grad_enabled(prev);
  return r;
}

static dl_tensor *finish_local(const dl_node_type *type, dl_tensor *t, dl_tensor *out, const reduce_ctx *c) {
  if (!out) return NULL;
  if (dl_ag_needs1(t) && dl_dtype_is_float(t->dtype)) {
    dl_node *node = dl_ag_record(type, &t, 1, out);
    if (!node) return fail(out);
    memcpy(node->ctx, c, sizeof *c);
    dl_node_save(node, t);
    if (c->uses_out) dl_node_save_output(node, out, 0);
  }
  if (t->tangent && dl_dtype_is_float(t->dtype) && dl_fw_set(out, local_jvp(c, t, out))) return fail(out);
  return out;
}

static const dl_node_type prod_all_type = {"ProdBackward0", local_backward, NULL};
static const dl_node_type prod_type = {"ProdBackward1", local_backward, NULL};
static const dl_node_type var_type = {"VarBackward0", local_backward, NULL};
static const dl_node_type std_type = {"StdBackward0", local_backward, NULL};
static const dl_node_type norm_type = {"NormBackward1", local_backward, NULL};
static const dl_node_type lse_type = {"LogsumexpBackward0", local_backward, NULL};
static const dl_node_type amax_type = {"AmaxBackward0", local_backward, NULL};
static const dl_node_type amin_type = {"AminBackward0", local_backward, NULL};
static const dl_node_type max_all_type = {"MaxBackward1", local_backward, NULL};
static const dl_node_type min_all_type = {"MinBackward1", local_backward, NULL};

/* the context, only when something will read it (the fast path) */
static bool wants_ctx(dl_tensor *t) { return (dl_ag_needs1(t) || t->tangent) && dl_dtype_is_float(t->dtype); }

static dl_tensor *separable(const dl_node_type *type, const char *fn, dl_tensor *t, dl_tensor *out,
                            const int *dims, int ndims, bool keepdim, local_kind kind, double p, double corr) {
  if (!out || !wants_ctx(t)) return out;
  reduce_ctx c;
  if (fill_reduce_ctx(&c, fn, t, dims, ndims, keepdim)) return fail(out);
  c.kind = kind;
  c.uses_out = kind != L_VAR;
  c.p = p;
  c.correction = corr;
  return finish_local(type, t, out, &c);
}

dl_tensor *dl_ag_prod(dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return separable(ndims ? &prod_type : &prod_all_type, "prod", t, dl_op_prod(t, dims, ndims, keepdim), dims,
                   ndims, keepdim, L_PROD, 0, 0);
}
dl_tensor *dl_ag_var(dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim) {
  return separable(&var_type, "var", t, dl_op_var(t, dims, ndims, correction, keepdim), dims, ndims, keepdim,
                   L_VAR, 0, correction);
}
dl_tensor *dl_ag_std(dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim) {
  return separable(&std_type, "std", t, dl_op_std(t, dims, ndims, correction, keepdim), dims, ndims, keepdim,
                   L_STD, 0, correction);
}
dl_tensor *dl_ag_norm(dl_tensor *t, double p, const int *dims, int ndims, bool keepdim) {
  return separable(&norm_type, "norm", t, dl_op_norm(t, p, dims, ndims, keepdim), dims, ndims, keepdim, L_NORM,
                   p, 0);
}
dl_tensor *dl_ag_logsumexp(dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return separable(&lse_type, "logsumexp", t, dl_op_logsumexp(t, dims, ndims, keepdim), dims, ndims, keepdim,
                   L_LSE, 0, 0);
}
dl_tensor *dl_ag_amax(dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return separable(&amax_type, "amax", t, dl_op_amax(t, dims, ndims, keepdim), dims, ndims, keepdim, L_EXTREME,
                   0, 0);
}
dl_tensor *dl_ag_amin(dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return separable(&amin_type, "amin", t, dl_op_amin(t, dims, ndims, keepdim), dims, ndims, keepdim, L_EXTREME,
                   0, 0);
}
dl_tensor *dl_ag_max(dl_tensor *t) {
  return separable(&max_all_type, "max", t, dl_op_max(t), NULL, 0, false, L_EXTREME, 0, 0);
}
dl_tensor *dl_ag_min(dl_tensor *t) {
  return separable(&min_all_type, "min", t, dl_op_min(t), NULL, 0, false, L_EXTREME, 0, 0);
}

/* ---- max/min along a dim: the gradient goes where the index points ---- */

typedef struct {
  int64_t shape[DL_MAX_DIMS];
  int ndim;
  int dim;
  bool keepdim;
} dim_ctx;

static dl_tensor *unsqueeze_unless(dl_tensor *t, int dim, bool keepdim) {
  return keepdim ? ref(t) : dl_ag_unsqueeze(t, dim);
}

static int select_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const dim_ctx *c = (const dim_ctx *)n->ctx;
  if (c->ndim == 0) {
    gin[0] = ref(gout[0]);
    return 0;
  }
  dl_tensor *idx = dl_node_saved(n, 0);
  if (!idx) return -1;
  dl_tensor *ik = take1(unsqueeze_unless(idx, c->dim, c->keepdim), idx);
  dl_tensor *gk = unsqueeze_unless(gout[0], c->dim, c->keepdim);
  dl_tensor *z = dl_tensor_zeros(c->shape, c->ndim, gout[0]->dtype, dl_tensor_device(gout[0]));
  gin[0] = ik && gk && z ? dl_ag_scatter(z, c->dim, ik, gk) : NULL;
  dl_tensor_release(ik);
  dl_tensor_release(gk);
  dl_tensor_release(z);
  return gin[0] ? 0 : -1;
}
static const dl_node_type max_dim_type = {"MaxBackward0", select_backward, NULL};
static const dl_node_type min_dim_type = {"MinBackward0", select_backward, NULL};

/* the tangent at the indexed elements */
static dl_tensor *select_jvp(dl_tensor *t, int dim, bool keepdim, dl_tensor *idx) {
  if (t->ndim == 0) return dl_tensor_clone(t->tangent);
  dl_tensor *ik = keepdim ? ref(idx) : dl_tensor_unsqueeze(idx, dim);
  dl_tensor *g = ik ? dl_op_gather(t->tangent, dim, ik) : NULL;
  dl_tensor_release(ik);
  if (!g || keepdim) return g;
  return take1(dl_tensor_squeeze(g, dim), g);
}

static int select_dim(const dl_node_type *type, dl_tensor *t, int dim, bool keepdim, dl_tensor **values,
                      dl_tensor **indices, int rc) {
  if (rc) return rc;
  dl_tensor *v = *values;
  if (!wants_ctx(t)) return 0;
  dim = t->ndim ? dl_wrap_dim("max", dim, t->ndim) : 0; /* valid: the forward ran */
  if (dl_ag_needs1(t)) {
    dl_node *node = dl_ag_record(type, &t, 1, v);
    if (!node) goto fail;
    dim_ctx c;
    memset(&c, 0, sizeof c);
    memcpy(c.shape, t->shape, sizeof c.shape);
    c.ndim = t->ndim;
    c.dim = dim;
    c.keepdim = keepdim;
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save(node, *indices);
  }
  if (t->tangent && dl_fw_set(v, select_jvp(t, dim, keepdim, *indices))) goto fail;
  return 0;
fail:
  dl_tensor_release(*values);
  dl_tensor_release(*indices);
  *values = *indices = NULL;
  return -1;
}

int dl_ag_max_dim(dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices) {
  return select_dim(&max_dim_type, t, dim, keepdim, values, indices, dl_op_max_dim(t, dim, keepdim, values, indices));
}
int dl_ag_min_dim(dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices) {
  return select_dim(&min_dim_type, t, dim, keepdim, values, indices, dl_op_min_dim(t, dim, keepdim, values, indices));
}

/* ---- cumsum: the gradient is the reversed running sum ---- */

typedef struct {
  int dim;
  int64_t len; /* size along dim; 1 for a 0-d input (the identity) */
} scan_ctx;

static scan_ctx scan_ctx_of(const dl_tensor *t, int dim) {
  scan_ctx c = {0, 1};
  if (t->ndim) {
    c.dim = dl_wrap_dim("scan", dim, t->ndim);
    c.len = t->shape[c.dim];
  }
  return c;
}

static dl_tensor *reverse_cumsum(dl_tensor *g, int dim) {
  dl_tensor *f = dl_ag_flip(g, &dim, 1);
  dl_tensor *s = f ? take1(dl_ag_cumsum(f, dim), f) : NULL;
  return s ? take1(dl_ag_flip(s, &dim, 1), s) : NULL;
}

static int cumsum_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const scan_ctx *c = (const scan_ctx *)n->ctx;
  gin[0] = c->len <= 1 ? ref(gout[0]) : reverse_cumsum(gout[0], c->dim);
  return gin[0] ? 0 : -1;
}
static const dl_node_type cumsum_type = {"CumsumBackward0", cumsum_backward, NULL};

dl_tensor *dl_ag_cumsum(dl_tensor *t, int dim) {
  dl_tensor *out = dl_op_cumsum(t, dim);
  if (!out || !wants_ctx(t)) return out;
  scan_ctx c = scan_ctx_of(t, dim);
  if (dl_ag_needs1(t)) {
    dl_node *node = dl_ag_record(&cumsum_type, &t, 1, out);
    if (!node) return fail(out);
    memcpy(node->ctx, &c, sizeof c);
  }
  if (t->tangent && dl_fw_set(out, dl_op_cumsum(t->tangent, dim))) return fail(out);
  return out;
}

/* ---- cumprod ----
 * Without zeros: reversed_cumsum(g * out) / x. With zeros, PyTorch's O(n^2)
 * form, which is right for second derivatives too: for each k,
 * grad_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j, the products being
 * prod(x[:k]) times [1, cumprod(x[k+1:])]. */

static dl_tensor *cumprod_grad_zeros(dl_tensor *x, dl_tensor *g, int dim) {
  int64_t m = x->shape[dim];
  dl_tensor **cols = calloc((size_t)m, sizeof *cols);
  if (!cols) {
    dl_error_set("cumprod: out of memory");
    return NULL;
  }
  int64_t oshape[DL_MAX_DIMS];
  memcpy(oshape, x->shape, sizeof oshape);
  oshape[dim] = 1;
  dl_tensor *r = NULL;
  int64_t k;
  for (k = 0; k < m; k++) {
    dl_tensor *before = ones_of(oshape, x->ndim, x);
    if (k > 0) {
      dl_tensor *head = dl_ag_narrow(x, dim, 0, k);
      dl_tensor_release(before);
      before = head ? take1(dl_ag_prod(head, &dim, 1, true), head) : NULL;
    }
    dl_tensor *omitted = before;
    if (k < m - 1) {
      dl_tensor *tail = dl_ag_narrow(x, dim, k + 1, m - k - 1);
      dl_tensor *run = tail ? take1(dl_ag_cumprod(tail, dim), tail) : NULL;
      dl_tensor *parts[2] = {ones_of(oshape, x->ndim, x), run};
      dl_tensor *full = parts[0] && run ? dl_ag_cat(parts, 2, dim) : NULL;
      dl_tensor_release(parts[0]);
      dl_tensor_release(run);
      omitted = t_mul(before, full);
    }
    dl_tensor *gk = dl_ag_narrow(g, dim, k, m - k);
    dl_tensor *prod = t_mul(gk, omitted);
    cols[k] = prod ? take1(dl_ag_sum(prod, &dim, 1, true), prod) : NULL;
    if (!cols[k]) break;
  }
  if (k == m) r = dl_ag_cat(cols, (int)m, dim);
  for (int64_t i = 0; i < m; i++) dl_tensor_release(cols[i]);
  free(cols);
  return r;
}

static int cumprod_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const scan_ctx *c = (const scan_ctx *)n->ctx;
  if (c->len <= 1) {
    gin[0] = ref(gout[0]);
    return 0;
  }
  dl_tensor *x = dl_node_saved(n, 0);
  dl_tensor *out = x ? dl_node_saved(n, 1) : NULL;
  int nz = out ? all_nonzero(x) : -1;
  if (nz == 1) {
    dl_tensor *w = t_mul(ref(out), ref(gout[0]));
    dl_tensor *rc = w ? take1(reverse_cumsum(w, c->dim), w) : NULL;
    gin[0] = t_div(rc, ref(x));
  } else if (nz == 0) {
    gin[0] = cumprod_grad_zeros(x, gout[0], c->dim);
  }
  dl_tensor_release(x);
  dl_tensor_release(out);
  return gin[0] ? 0 : -1;
}
static const dl_node_type cumprod_type = {"CumprodBackward0", cumprod_backward, NULL};

/* PyTorch's cumprod_jvp: cumsum(t / x) * out, and after the first zero of
 * each line, cumprod of x with its first zero replaced by the tangent */
static dl_tensor *cumprod_jvp(dl_tensor *x, dl_tensor *out, const scan_ctx *c) {
  dl_tensor *tx = x->tangent;
  if (c->len <= 1 || x->ndim == 0) return dl_tensor_clone(tx);
  int dim = c->dim;
  dl_tensor *q = p_bin(DL_BIN_DIV, ref(tx), ref(x));
  dl_tensor *generic = q ? p_bin(DL_BIN_MUL, take1(dl_op_cumsum(q, dim), q), ref(out)) : NULL;
  int nz = generic ? all_nonzero(x) : -1;
  if (nz != 0) return nz == 1 ? generic : fail(generic);
  dl_tensor *zeros = p_bin(DL_BIN_EQ, ref(x), scalar_like(x, 0));
  dl_tensor *count = zeros ? dl_op_cumsum(zeros, dim) : NULL;
  dl_tensor *one = dl_tensor_scalar(dl_scalar_i(1), DL_INT64, dl_tensor_device(x));
  dl_tensor *first = p_bin(DL_BIN_LOGICAL_AND, zeros, p_bin(DL_BIN_EQ, count, one));
  dl_tensor *after = NULL, *swapped = NULL, *r = NULL;
  if (first) {
    dl_tensor *cf = dl_op_cumsum(first, dim);
    after = cf ? p_bin(DL_BIN_NE, cf, dl_tensor_scalar(dl_scalar_i(0), DL_INT64, dl_tensor_device(x))) : NULL;
    swapped = dl_op_where(first, dl_operand_tensor(tx), dl_operand_tensor(x));
  }
  dl_tensor *fixed = swapped ? take1(dl_op_cumprod(swapped, dim), swapped) : NULL;
  if (after && fixed && generic) r = dl_op_where(after, dl_operand_tensor(fixed), dl_operand_tensor(generic));
  dl_tensor_release(first);
  dl_tensor_release(after);
  dl_tensor_release(fixed);
  dl_tensor_release(generic);
  return r;
}

dl_tensor *dl_ag_cumprod(dl_tensor *t, int dim) {
  dl_tensor *out = dl_op_cumprod(t, dim);
  if (!out || !wants_ctx(t)) return out;
  scan_ctx c = scan_ctx_of(t, dim);
  if (dl_ag_needs1(t)) {
    dl_node *node = dl_ag_record(&cumprod_type, &t, 1, out);
    if (!node) return fail(out);
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save(node, t);
    dl_node_save_output(node, out, 0);
  }
  if (t->tangent && dl_fw_set(out, cumprod_jvp(t, out, &c))) return fail(out);
  return out;
}

