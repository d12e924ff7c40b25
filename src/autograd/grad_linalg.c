/* grad_linalg.c — matrix products: forward, backward rule and jvp rule of
 * each, side by side. Every product is bilinear, so its tangent is
 * f(ta, b) + f(a, tb), and its gradients are products of the output
 * gradient with the other operand transposed:
 *   C = A @ B:  dA = dC @ B^T,  dB = A^T @ dC
 * summed over broadcast batch dims. The rules use the differentiable
 * matmul and views, so create_graph records them (second derivatives).
 * Transposes are views: the GEMM front-end reads them in place with
 * transpose flags, so no operand is copied (the backward of x @ W.T is two
 * GEMMs on x, W and dC as they lie). */
#include "dl_ag_linalg.h"

#include "dl_ag_ewise.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"
#include "dl_autograd_ops.h"

#include <string.h>

typedef dl_tensor *(*product_fn)(dl_tensor *, dl_tensor *);

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

static dl_tensor *fail(dl_tensor *out) {
  dl_tensor_release(out);
  return NULL;
}

/* s * t, differentiable (addmm's alpha and beta); t itself when s == 1 */
static dl_tensor *scale(dl_tensor *t, double s) {
  return s == 1 ? dl_tensor_retain(t) : dl_ag_mul_scalar(t, dl_scalar_f(s));
}

/* ---- helpers of the product rules ---- */

/* the last two dims swapped (a view) */
static dl_tensor *mT(dl_tensor *t) { return dl_ag_transpose(t, t->ndim - 2, t->ndim - 1); }

/* a 1-D operand as matmul promotes it: [K] -> [1,K] on the left, [K,1] on
 * the right */
static dl_tensor *as_matrix(dl_tensor *t, bool left) {
  if (t->ndim != 1) return dl_tensor_retain(t);
  return dl_ag_unsqueeze(t, left ? 0 : 1);
}

/* f(ta, b) + f(a, tb), skipping a missing tangent's term */
static dl_tensor *bilinear_tangent(product_fn f, dl_tensor *a, dl_tensor *b) {
  dl_tensor *t1 = NULL, *t2 = NULL;
  if (a->tangent && !(t1 = f(a->tangent, b))) return NULL;
  if (b->tangent && !(t2 = f(a, b->tangent))) return fail(t1);
  if (!t1) return t2;
  if (!t2) return t1;
  dl_tensor *s = dl_op_binary(DL_BIN_ADD, t1, t2, dl_scalar_i(1));
  dl_tensor_release(t1);
  dl_tensor_release(t2);
  return s;
}

/* ---- matmul, mm, bmm, mv, dot: one rule on the promoted operands ---- */

typedef struct {
  int64_t shape[2][DL_MAX_DIMS]; /* operands' shapes */
  int ndim[2];
  int slot[2]; /* saved slot of operand k, -1 when not saved */
  bool colmajor[2]; /* operand k is a column-major matrix */
} product_ctx;

_Static_assert(sizeof(product_ctx) <= DL_NODE_CTX_BYTES, "product_ctx fits a node");

/* the output gradient with the dims of 1-D operands put back: [..., M, N] */
static dl_tensor *promote_grad(const product_ctx *c, dl_tensor *g) {
  if (c->ndim[0] > 1 && c->ndim[1] > 1) return dl_tensor_retain(g);
  int64_t shape[DL_MAX_DIMS];
  int n = 0;
  if (c->ndim[0] == 1 && c->ndim[1] == 1) {
    shape[n++] = 1;
    shape[n++] = 1;
  } else if (c->ndim[0] == 1) { /* [..., N] -> [..., 1, N] */
    for (int d = 0; d < g->ndim - 1; d++) shape[n++] = g->shape[d];
    shape[n++] = 1;
    shape[n++] = g->shape[g->ndim - 1];
  } else { /* [..., M] -> [..., M, 1] */
    for (int d = 0; d < g->ndim; d++) shape[n++] = g->shape[d];
    shape[n++] = 1;
  }
  return dl_ag_reshape(g, shape, n);
}

/* a 2-D operand stored column-major (a transposed view, W:t() of a
 * Linear layer): its gradient is computed as (Y^T)^T, so that it has the
 * operand's layout and the TransposeBackward above it hands a contiguous
 * gradient to the weight (no copy when it accumulates) */
static bool column_major(const dl_tensor *t) {
  return t->ndim == 2 && t->shape[0] > 1 && t->shape[1] > 1 && t->stride[0] == 1 &&
         t->stride[1] >= t->shape[0];
}

/* (x @ y)^T computed as y^T @ x^T: the product's transpose, a view */
static dl_tensor *matmul_transposed(dl_tensor *x, dl_tensor *y) {
  dl_tensor *xt = mT(x), *yt = mT(y);
  dl_tensor *p = xt && yt ? dl_ag_matmul(yt, xt) : NULL;
  dl_tensor_release(xt);
  dl_tensor_release(yt);
  if (!p) return NULL;
  dl_tensor *r = mT(p);
  dl_tensor_release(p);
  return r;
}

/* dA = dC @ B^T, summed to A's shape */
static dl_tensor *grad_left(const product_ctx *c, dl_tensor *g2, dl_tensor *b, bool a_column_major) {
  dl_tensor *b2 = as_matrix(b, false);
  dl_tensor *bt = b2 ? mT(b2) : NULL;
  dl_tensor *ga = NULL; /* [..., M, K] */
  if (bt) ga = a_column_major && g2->ndim == 2 ? matmul_transposed(g2, bt) : dl_ag_matmul(g2, bt);
  dl_tensor_release(b2);
  dl_tensor_release(bt);
  if (ga && c->ndim[0] == 1) {
    dl_tensor *sq = dl_ag_squeeze(ga, ga->ndim - 2);
    dl_tensor_release(ga);
    ga = sq;
  }
  if (!ga) return NULL;
  dl_tensor *r = dl_ag_sum_to(ga, c->shape[0], c->ndim[0]);
  dl_tensor_release(ga);
  return r;
}

/* [..., R, C] -> [P, C] with P the product of the other dims */
static dl_tensor *fold_rows(dl_tensor *t) {
  int64_t shape[2] = {1, t->shape[t->ndim - 1]};
  for (int d = 0; d < t->ndim - 1; d++) shape[0] *= t->shape[d];
  return dl_ag_reshape(t, shape, 2);
}

/* dB = A^T @ dC, summed to B's shape */
static dl_tensor *grad_right(const product_ctx *c, dl_tensor *g2, dl_tensor *a, bool b_column_major) {
  dl_tensor *a2 = as_matrix(a, true);
  if (!a2) return NULL;
  dl_tensor *gb = NULL;
  if (c->ndim[1] <= 2 && a2->ndim > 2) {
    /* B is shared by every batch: fold the batch into the rows, one GEMM
     * [K, P] @ [P, N] instead of a batch of products to sum */
    dl_tensor *af = fold_rows(a2), *gf = fold_rows(g2);
    dl_tensor *at = af ? mT(af) : NULL;
    if (at && gf) gb = b_column_major ? matmul_transposed(at, gf) : dl_ag_matmul(at, gf);
    dl_tensor_release(af);
    dl_tensor_release(gf);
    dl_tensor_release(at);
  } else {
    dl_tensor *at = mT(a2);
    if (at) gb = b_column_major && at->ndim == 2 ? matmul_transposed(at, g2) : dl_ag_matmul(at, g2); /* [..., K, N] */
    dl_tensor_release(at);
  }
  dl_tensor_release(a2);
  if (gb && c->ndim[1] == 1) {
    dl_tensor *sq = dl_ag_squeeze(gb, gb->ndim - 1);
    dl_tensor_release(gb);
    gb = sq;
  }
  if (!gb) return NULL;
  dl_tensor *r = dl_ag_sum_to(gb, c->shape[1], c->ndim[1]);
  dl_tensor_release(gb);
  return r;
}

static int product_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const product_ctx *c = (const product_ctx *)n->ctx;
  dl_tensor *g2 = promote_grad(c, gout[0]);
  if (!g2) return -1;
  int rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    if (!wants(n, k)) continue;
    dl_tensor *other = dl_node_saved(n, c->slot[1 - k]);
    if (!other) {
      rc = -1;
      break;
    }
    bool colmajor = c->colmajor[k];
    gin[k] = k == 0 ? grad_left(c, g2, other, colmajor) : grad_right(c, g2, other, colmajor);
    dl_tensor_release(other);
    if (!gin[k]) rc = -1;
  }
  dl_tensor_release(g2);
  return rc;
}
static const dl_node_type mm_type = {"MmBackward0", product_backward, NULL};
static const dl_node_type bmm_type = {"BmmBackward0", product_backward, NULL};
static const dl_node_type mv_type = {"MvBackward0", product_backward, NULL};
static const dl_node_type dot_type = {"DotBackward0", product_backward, NULL};
static const dl_node_type matmul_type = {"MatmulBackward0", product_backward, NULL};

/* Records a two-operand product (saving each operand only when the other
 * one needs its gradient) and attaches the tangent. */
static dl_tensor *finish_product(const dl_node_type *type, product_fn f, dl_tensor *a, dl_tensor *b, dl_tensor *out) {
  if (!out) return NULL;
  dl_tensor *in[2] = {a, b};
  if (dl_ag_needs_grad(in, 2) && dl_dtype_is_float(out->dtype)) {
    dl_node *node = dl_ag_record(type, in, 2, out);
    if (!node) return fail(out);
    product_ctx c;
    memset(&c, 0, sizeof c);
    for (int k = 0; k < 2; k++) {
      memcpy(c.shape[k], in[k]->shape, sizeof c.shape[k]);
      c.ndim[k] = in[k]->ndim;
      c.colmajor[k] = column_major(in[k]);
      c.slot[k] = -1;
      if (in[1 - k]->requires_grad) {
        c.slot[k] = node->nsaved;
        dl_node_save(node, in[k]);
      }
    }
    memcpy(node->ctx, &c, sizeof c);
  }
  if (dl_fw_any(in, 2) && dl_fw_set(out, bilinear_tangent(f, a, b))) return fail(out);
  return out;
}

dl_tensor *dl_ag_matmul(dl_tensor *a, dl_tensor *b) {
  dl_tensor *out = dl_op_matmul(a, b);
  if (!out) return NULL;
  /* named as PyTorch names the product matmul dispatches to */
  const dl_node_type *type = &matmul_type;
  if (a->ndim == 2 && b->ndim == 2) type = &mm_type;
  else if (a->ndim == 1 && b->ndim == 1) type = &dot_type;
  else if (a->ndim == 2 && b->ndim == 1) type = &mv_type;
  return finish_product(type, dl_op_matmul, a, b, out);
}

dl_tensor *dl_ag_mm(dl_tensor *a, dl_tensor *b) { return finish_product(&mm_type, dl_op_mm, a, b, dl_op_mm(a, b)); }
dl_tensor *dl_ag_bmm(dl_tensor *a, dl_tensor *b) { return finish_product(&bmm_type, dl_op_bmm, a, b, dl_op_bmm(a, b)); }
dl_tensor *dl_ag_mv(dl_tensor *a, dl_tensor *v) { return finish_product(&mv_type, dl_op_mv, a, v, dl_op_mv(a, v)); }
dl_tensor *dl_ag_dot(dl_tensor *a, dl_tensor *b) { return finish_product(&dot_type, dl_op_dot, a, b, dl_op_dot(a, b)); }

/* ---- out= forms: plain products only ---- */

typedef dl_tensor *(*out_fn)(dl_tensor *, dl_tensor *, dl_tensor *);

static dl_tensor *product_out(const char *fn, product_fn ag, out_fn plain, dl_tensor *a, dl_tensor *b, dl_tensor *out) {
  if (!out) return ag(a, b);
  dl_tensor *in[3] = {a, b, out};
  if (dl_ag_needs_grad(in, 3) || dl_fw_any(in, 3)) {
    dl_error_set("%s: the out= form does not support autograd, but an argument requires grad or carries a "
                 "tangent (use the returned product instead)", fn);
    return NULL;
  }
  return plain(a, b, out);
}

dl_tensor *dl_ag_matmul_out(dl_tensor *a, dl_tensor *b, dl_tensor *out) {
  return product_out("matmul", dl_ag_matmul, dl_op_matmul_out, a, b, out);
}
dl_tensor *dl_ag_mm_out(dl_tensor *a, dl_tensor *b, dl_tensor *out) {
  return product_out("mm", dl_ag_mm, dl_op_mm_out, a, b, out);
}

/* ---- outer: C[i,j] = a[i] b[j]; da = dC @ b, db = dC^T @ a ---- */

static int outer_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const product_ctx *c = (const product_ctx *)n->ctx;
  for (int k = 0; k < 2; k++) {
    if (!wants(n, k)) continue;
    dl_tensor *other = dl_node_saved(n, c->slot[1 - k]);
    if (!other) return -1;
    dl_tensor *g = k == 0 ? dl_tensor_retain(gout[0]) : mT(gout[0]);
    gin[k] = g ? dl_ag_matmul(g, other) : NULL;
    dl_tensor_release(g);
    dl_tensor_release(other);
    if (!gin[k]) return -1;
  }
  return 0;
}
static const dl_node_type outer_type = {"OuterBackward0", outer_backward, NULL};

dl_tensor *dl_ag_outer(dl_tensor *a, dl_tensor *b) {
  return finish_product(&outer_type, dl_op_outer, a, b, dl_op_outer(a, b));
}

/* ---- addmm: beta * input + alpha * m1 @ m2 ---- */

typedef struct {
  int64_t in_shape[DL_MAX_DIMS];
  int in_ndim;
  int slot[2]; /* saved slots of m1, m2; -1 when not saved */
  bool colmajor[2];
  double beta, alpha;
} addmm_ctx;

_Static_assert(sizeof(addmm_ctx) <= DL_NODE_CTX_BYTES, "addmm_ctx fits a node");

static int addmm_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const addmm_ctx *c = (const addmm_ctx *)n->ctx;
  dl_tensor *g = gout[0];
  if (wants(n, 0)) {
    if (c->beta == 0) { /* input was ignored */
      gin[0] = dl_tensor_zeros(c->in_shape, c->in_ndim, g->dtype, dl_tensor_device(g));
    } else {
      dl_tensor *s = dl_ag_sum_to(g, c->in_shape, c->in_ndim);
      gin[0] = s ? scale(s, c->beta) : NULL;
      dl_tensor_release(s);
    }
    if (!gin[0]) return -1;
  }
  for (int k = 0; k < 2; k++) {
    if (!wants(n, k + 1)) continue;
    dl_tensor *other = dl_node_saved(n, c->slot[1 - k]);
    if (!other) return -1;
    /* dm1 = alpha * g @ m2^T, dm2 = alpha * m1^T @ g, in the layout of m1 / m2 */
    dl_tensor *p;
    if (k == 1 && c->colmajor[1]) { /* W^T of a Linear layer: (g^T @ m1)^T, two views */
      dl_tensor *gt = mT(g);
      dl_tensor *q = gt ? dl_ag_matmul(gt, other) : NULL;
      p = q ? mT(q) : NULL;
      dl_tensor_release(gt);
      dl_tensor_release(q);
    } else {
      dl_tensor *ot = mT(other);
      dl_tensor *x = k == 0 ? g : ot, *y = k == 0 ? ot : g;
      p = ot ? (c->colmajor[k] ? matmul_transposed(x, y) : dl_ag_matmul(x, y)) : NULL;
      dl_tensor_release(ot);
    }
    dl_tensor_release(other);
    gin[k + 1] = p ? scale(p, c->alpha) : NULL;
    dl_tensor_release(p);
    if (!gin[k + 1]) return -1;
  }
  return 0;
}
static const dl_node_type addmm_type = {"AddmmBackward0", addmm_backward, NULL};

/* beta * t_input + alpha * (t_m1 @ m2 + m1 @ t_m2), terms without a
 * tangent skipped; each matrix term accumulates through addmm itself */
static dl_tensor *addmm_tangent(dl_tensor *input, dl_tensor *m1, dl_tensor *m2, double beta, double alpha,
                                dl_tensor *out) {
  dl_tensor *t = NULL;
  if (input->tangent && beta != 0) {
    dl_tensor *z = dl_tensor_zeros(out->shape, out->ndim, out->dtype, dl_tensor_device(out));
    t = z ? dl_op_binary(DL_BIN_ADD, z, input->tangent, dl_scalar_f(beta)) : NULL; /* broadcast */
    dl_tensor_release(z);
    if (!t) return NULL;
  }
  dl_tensor *terms[2][2] = {{m1->tangent, m2}, {m1, m2->tangent}};
  for (int p = 0; p < 2; p++) {
    if (!terms[p][0] || !terms[p][1]) continue;
    /* with nothing accumulated yet, beta = 0 makes out a placeholder input */
    dl_tensor *r = dl_op_addmm(t ? t : out, terms[p][0], terms[p][1], t ? 1 : 0, alpha);
    dl_tensor_release(t);
    if (!r) return NULL;
    t = r;
  }
  if (!t) t = dl_tensor_zeros(out->shape, out->ndim, out->dtype, dl_tensor_device(out));
  return t;
}

dl_tensor *dl_ag_addmm(dl_tensor *input, dl_tensor *m1, dl_tensor *m2, double beta, double alpha) {
  dl_tensor *out = dl_op_addmm(input, m1, m2, beta, alpha);
  if (!out) return NULL;
  dl_tensor *in[3] = {input, m1, m2};
  if (dl_ag_needs_grad(in, 3) && dl_dtype_is_float(out->dtype)) {
    dl_node *node = dl_ag_record(&addmm_type, in, 3, out);
    if (!node) return fail(out);
    addmm_ctx c;
    memset(&c, 0, sizeof c);
    memcpy(c.in_shape, input->shape, sizeof c.in_shape);
    c.in_ndim = input->ndim;
    c.beta = beta;
    c.alpha = alpha;
    for (int k = 0; k < 2; k++) {
      c.colmajor[k] = column_major(in[1 + k]);
      c.slot[k] = -1;
      if (in[2 - k]->requires_grad) { /* m1 is needed by dm2, m2 by dm1 */
        c.slot[k] = node->nsaved;
        dl_node_save(node, in[1 + k]);
      }
    }
    memcpy(node->ctx, &c, sizeof c);
  }
  if (dl_fw_any(in, 3) && dl_fw_set(out, addmm_tangent(input, m1, m2, beta, alpha, out))) return fail(out);
  return out;
}

