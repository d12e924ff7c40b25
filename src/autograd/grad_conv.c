/* grad_conv.c — im2col and col2im are linear and each other's adjoint:
 * the backward of im2col is col2im of the gradient and the other way
 * round, with padding reading 0 (padding is a constant, whatever value the
 * forward read: -inf for max pooling); the jvp of each is the same op on
 * the tangent. Rules call the differentiable ops, so double backward
 * records. */
#include "dl_ag_conv.h"

#include "../ops/dl_ewise.h"
#include "dl_ag_ewise.h"
#include "dl_ag_index.h"
#include "dl_ag_linalg.h"
#include "dl_ag_reduce.h"
#include "dl_ag_view.h"
#include "dl_ag_scope.h"
#include "dl_autograd.h"

#include <string.h>

typedef struct {
  dl_window w;
  int64_t size[DL_CONV_MAX_SPATIAL]; /* the image's spatial sizes */
} conv_ctx;

_Static_assert(sizeof(conv_ctx) <= DL_NODE_CTX_BYTES, "conv_ctx does not fit a node");

/* the window as the derivative sees it: padding reads 0 */
static dl_window linear_part(const dl_window *w) {
  dl_window z = *w;
  z.pad_value = 0;
  return z;
}

static int im2col_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const conv_ctx *c = (const conv_ctx *)n->ctx;
  gin[0] = dl_ag_col2im(gout[0], &c->w, c->size);
  return gin[0] ? 0 : -1;
}
static const dl_node_type im2col_type = {"Im2ColBackward0", im2col_backward, NULL};

static int col2im_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const conv_ctx *c = (const conv_ctx *)n->ctx;
  gin[0] = dl_ag_im2col(gout[0], &c->w);
  return gin[0] ? 0 : -1;
}
static const dl_node_type col2im_type = {"Col2ImBackward0", col2im_backward, NULL};

static dl_tensor *record(const dl_node_type *type, dl_tensor *in, dl_tensor *out, const dl_window *w,
                         const int64_t *size) {
  if (!dl_ag_needs1(in)) return out;
  dl_node *node = dl_ag_record(type, &in, 1, out);
  if (!node) {
    dl_tensor_release(out);
    return NULL;
  }
  conv_ctx *c = (conv_ctx *)node->ctx;
  c->w = linear_part(w);
  memcpy(c->size, size, sizeof c->size);
  return out;
}

dl_tensor *dl_ag_im2col(dl_tensor *x, const dl_window *w) {
  dl_tensor *out = dl_op_im2col(x, w);
  if (!out) return NULL;
  int64_t size[DL_CONV_MAX_SPATIAL] = {0};
  for (int d = 0; d < w->nd; d++) size[d] = x->shape[2 + d];
  if (!(out = record(&im2col_type, x, out, w, size))) return NULL;
  if (x->tangent) {
    dl_window z = linear_part(w);
    if (dl_fw_set(out, dl_op_im2col(x->tangent, &z))) {
      dl_tensor_release(out);
      return NULL;
    }
  }
  return out;
}

dl_tensor *dl_ag_col2im(dl_tensor *cols, const dl_window *w, const int64_t *size) {
  dl_tensor *out = dl_op_col2im(cols, w, size);
  if (!out) return NULL;
  int64_t sz[DL_CONV_MAX_SPATIAL] = {0};
  memcpy(sz, size, (size_t)w->nd * sizeof *size);
  if (!(out = record(&col2im_type, cols, out, w, sz))) return NULL;
  if (cols->tangent && dl_fw_set(out, dl_op_col2im(cols->tangent, w, size))) {
    dl_tensor_release(out);
    return NULL;
  }
  return out;
}

/* ==== convolution ====
 * Fused (oneDNN on the CPU, float32): one node whose backward takes the
 * fused gradient kernels, or, when a graph of the gradients is being
 * recorded, the composed formulas below with differentiable ops. Elsewhere
 * the convolution is composed of differentiable ops (im2col, one GEMM for
 * the whole batch, the bias) and needs no node of its own:
 *   rows = im2col(x) as [C K, N L], y = W [O, C K] @ rows (+ b),
 *   dx = col2im(W^T @ dy), dW = dy @ rows^T, db = sum(dy),
 * per group with groups > 1 (a batch of GEMMs). */


/* one shape from dims (up to 5) */
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__}), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

/* a new reference to t (kept in p) */
static dl_tensor *out_of(dl_ag_scope *p, dl_tensor *t) { return t ? dl_tensor_retain(t) : (p->failed = true, NULL); }

/* rows [C K, N L] (or [G, C K / G, N L]) of x's columns */
static dl_tensor *rows_of(dl_ag_scope *p, dl_tensor *x, const dl_conv_params *c, int64_t L) {
  dl_tensor *cols = dl_ag_keep(p, dl_ag_im2col(x, &c->w));
  if (!cols) return NULL;
  int64_t N = x->shape[0], CK = cols->shape[1], G = c->groups;
  dl_tensor *rows = dl_ag_keep(p, dl_ag_transpose(cols, 0, 1)); /* [C K, N, L]: im2col's storage, contiguous */
  if (!rows) return NULL;
  return G == 1 ? dl_ag_keep(p, dl_ag_reshape(rows, SHAPE(CK, N * L))) : dl_ag_keep(p, dl_ag_reshape(rows, SHAPE(G, CK / G, N * L)));
}

/* dy [N, O, *out] as [O, N L] (or [G, O / G, N L]) */
static dl_tensor *grad_rows(dl_ag_scope *p, dl_tensor *gy, const dl_conv_params *c, int64_t L) {
  int64_t N = gy->shape[0], O = gy->shape[1], G = c->groups;
  dl_tensor *g3 = dl_ag_keep(p, dl_ag_reshape(gy, SHAPE(N, O, L)));
  dl_tensor *gt = g3 ? dl_ag_keep(p, dl_ag_transpose(g3, 0, 1)) : NULL;
  if (!gt) return NULL;
  return G == 1 ? dl_ag_keep(p, dl_ag_reshape(gt, SHAPE(O, N * L))) : dl_ag_keep(p, dl_ag_reshape(gt, SHAPE(G, O / G, N * L)));
}

/* w as [O, C K] (or [G, O / G, C K / G]) */
static dl_tensor *weight_rows(dl_ag_scope *p, dl_tensor *w, int64_t G) {
  int64_t O = w->shape[0], CKg = w->numel / (O ? O : 1);
  return G == 1 ? dl_ag_keep(p, dl_ag_reshape(w, SHAPE(O, CKg))) : dl_ag_keep(p, dl_ag_reshape(w, SHAPE(G, O / G, CKg)));
}

static int64_t windows(const int64_t *out, int nd) {
  int64_t L = 1;
  for (int d = 0; d < nd; d++) L *= out[d];
  return L;
}

static dl_tensor *composed(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *c, const int64_t *out) {
  dl_ag_scope p = {.n = 0};
  int64_t N = x->shape[0], O = w->shape[0], L = windows(out, c->w.nd);
  dl_tensor *y = NULL, *rows = rows_of(&p, x, c, L), *w2 = rows ? weight_rows(&p, w, c->groups) : NULL;
  if (w2) {
    dl_tensor *m = dl_ag_keep(&p, c->groups == 1 ? dl_ag_mm(w2, rows) : dl_ag_bmm(w2, rows)); /* [O, N L] */
    dl_tensor *m3 = m ? dl_ag_keep(&p, dl_ag_reshape(m, SHAPE(O, N, L))) : NULL;
    dl_tensor *yt = m3 ? dl_ag_keep(&p, dl_ag_transpose(m3, 0, 1)) : NULL; /* [N, O, L] */
    dl_tensor *b3 = b && yt ? dl_ag_keep(&p, dl_ag_reshape(b, SHAPE(1, O, 1))) : NULL;
    dl_tensor *y3 = yt && (!b || b3) ? dl_ag_keep(&p, b ? dl_ag_add(yt, b3) : dl_ag_contiguous(yt)) : NULL;
    int64_t shape[2 + DL_CONV_MAX_SPATIAL] = {N, O};
    for (int d = 0; d < c->w.nd; d++) shape[2 + d] = out[d];
    if (y3) y = dl_ag_reshape(y3, shape, 2 + c->w.nd);
  }
  dl_ag_scope_end(&p);
  return y;
}

int dl_ag_convolution_grads(dl_tensor *gy, dl_tensor *x, dl_tensor *w, bool has_bias, const dl_conv_params *c,
                             dl_tensor **gx, dl_tensor **gw, dl_tensor **gb) {
  dl_ag_scope p = {.n = 0};
  int64_t N = x->shape[0], NO = N * gy->shape[1], L = NO > 0 ? gy->numel / NO : 0, G = c->groups;
  dl_tensor *gr = grad_rows(&p, gy, c, L), *w2 = gr ? weight_rows(&p, w, G) : NULL;
  if (gx && w2) {
    int64_t CK = w->numel / w->shape[0] * G;
    dl_tensor *wt = dl_ag_keep(&p, G == 1 ? dl_ag_transpose(w2, 0, 1) : dl_ag_transpose(w2, 1, 2));
    dl_tensor *gc = wt ? dl_ag_keep(&p, G == 1 ? dl_ag_mm(wt, gr) : dl_ag_bmm(wt, gr)) : NULL; /* [C K, N L] */
    dl_tensor *g3 = gc ? dl_ag_keep(&p, dl_ag_reshape(gc, SHAPE(CK, N, L))) : NULL;
    dl_tensor *cols = g3 ? dl_ag_keep(&p, dl_ag_transpose(g3, 0, 1)) : NULL;
    *gx = cols ? out_of(&p, dl_ag_keep(&p, dl_ag_col2im(cols, &c->w, x->shape + 2))) : NULL;
  }
  if (gw && w2) {
    dl_tensor *rows = rows_of(&p, x, c, L);
    dl_tensor *rt = rows ? dl_ag_keep(&p, G == 1 ? dl_ag_transpose(rows, 0, 1) : dl_ag_transpose(rows, 1, 2)) : NULL;
    dl_tensor *g2 = rt ? dl_ag_keep(&p, G == 1 ? dl_ag_mm(gr, rt) : dl_ag_bmm(gr, rt)) : NULL;
    *gw = g2 ? out_of(&p, dl_ag_keep(&p, dl_ag_reshape(g2, w->shape, w->ndim))) : NULL;
  }
  if (gb && has_bias) {
    int dims[1 + DL_CONV_MAX_SPATIAL] = {0};
    for (int d = 0; d < c->w.nd; d++) dims[1 + d] = 2 + d;
    *gb = out_of(&p, dl_ag_keep(&p, dl_ag_sum(gy, dims, 1 + c->w.nd, false)));
  }
  bool failed = p.failed;
  dl_ag_scope_end(&p);
  if (failed) {
    if (gx) dl_tensor_release(*gx), *gx = NULL;
    if (gw) dl_tensor_release(*gw), *gw = NULL;
    if (gb) dl_tensor_release(*gb), *gb = NULL;
    return -1;
  }
  return 0;
}

typedef struct {
  dl_conv_params p;
  bool has_bias;
} convolution_ctx;

_Static_assert(sizeof(convolution_ctx) <= DL_NODE_CTX_BYTES, "convolution_ctx does not fit a node");

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

static int convolution_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const convolution_ctx *c = (const convolution_ctx *)n->ctx;
  dl_tensor *x = dl_node_saved(n, 0), *w = x ? dl_node_saved(n, 1) : NULL;
  int rc = -1;
  if (w) {
    dl_tensor **gx = wants(n, 0) ? &gin[0] : NULL, **gw = wants(n, 1) ? &gin[1] : NULL;
    dl_tensor **gb = c->has_bias && wants(n, 2) ? &gin[2] : NULL;
    /* a graph of the gradients (create_graph) needs the differentiable formulas */
    rc = dl_grad_enabled() ? dl_ag_convolution_grads(gout[0], x, w, c->has_bias, &c->p, gx, gw, gb)
                           : dl_op_conv_fused_backward(gout[0], x, w, c->has_bias, &c->p, gx, gw, gb);
  }
  dl_tensor_release(x);
  dl_tensor_release(w);
  return rc;
}
static const dl_node_type convolution_type = {"ConvolutionBackward0", convolution_backward, NULL};

/* a convolution of plain tensors (a jvp term), fused where possible */
static dl_tensor *plain_conv(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *c, const int64_t *out) {
  if (dl_conv_fused(x, c)) return dl_op_conv_fused(x, w, b, c);
  bool was = dl_set_grad_enabled(false);
  dl_tensor *y = composed(x, w, b, c, out);
  dl_set_grad_enabled(was);
  return y;
}

dl_tensor *dl_ag_convolution(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *params) {
  static const char fn[] = "convolution";
  dl_conv_params c = *params;
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (dl_conv_check(fn, x, w, b, &c, out)) return NULL;
  if (!dl_conv_fused(x, &c) || x->numel == 0 || w->numel == 0) return composed(x, w, b, &c, out);
  dl_tensor *y = dl_op_conv_fused(x, w, b, &c);
  if (!y) return NULL;
  dl_tensor *ins[3] = {x, w, b};
  if (dl_ag_needs_grad(ins, 3)) {
    dl_node *node = dl_ag_record(&convolution_type, ins, 3, y);
    if (!node) goto fail;
    convolution_ctx *ctx = (convolution_ctx *)node->ctx;
    ctx->p = c;
    ctx->has_bias = b != NULL;
    dl_node_save(node, x);
    dl_node_save(node, w);
  }
  if (x->tangent || w->tangent || (b && b->tangent)) {
    /* bilinear: dy = conv(dx, w) + conv(x, dw) + db */
    dl_tensor *t = NULL;
    if (x->tangent) t = plain_conv(x->tangent, w, NULL, &c, out);
    if (w->tangent || (b && b->tangent)) {
      dl_tensor *tw = w->tangent ? dl_tensor_retain(w->tangent) : dl_fw_tangent_or_zeros(w);
      dl_tensor *u = tw ? plain_conv(x, tw, b ? b->tangent : NULL, &c, out) : NULL;
      dl_tensor_release(tw);
      dl_tensor *s = t && u ? dl_op_binary(DL_BIN_ADD, t, u, dl_scalar_i(1)) : NULL;
      if (t) {
        dl_tensor_release(t);
        dl_tensor_release(u);
        t = s;
      } else {
        t = u;
      }
    }
    if (dl_fw_set(y, t)) goto fail;
  }
  return y;
fail:
  dl_tensor_release(y);
  return NULL;
}

/* ==== max pooling: y = x at each window's argmax ====
 * dx = the output gradient scattered (added) to the argmax positions of
 * each plane (one kernel pass; under create_graph differentiable index ops,
 * so double backward records); the jvp = the tangent gathered there. */

typedef struct {
  int64_t NC, plane, L;
  int ndim;
  int64_t shape[2 + DL_CONV_MAX_SPATIAL]; /* the input's */
} pool_ctx;

_Static_assert(sizeof(pool_ctx) <= DL_NODE_CTX_BYTES, "pool_ctx does not fit a node");

dl_tensor *dl_ag_max_pool_grad(dl_tensor *g, dl_tensor *idx, const int64_t *shape, int ndim) {
  if (!dl_grad_enabled()) return dl_op_max_pool_backward(g, idx, shape, ndim); /* one pass per plane */
  int64_t NC = shape[0] * shape[1], plane = 1;
  for (int d = 2; d < ndim; d++) plane *= shape[d];
  const int64_t L = NC ? g->numel / NC : 0;
  dl_ag_scope p = {.n = 0};
  dl_tensor *i2 = dl_ag_keep(&p, dl_tensor_reshape(idx, SHAPE(NC, L)));
  dl_tensor *g2 = i2 ? dl_ag_keep(&p, dl_ag_reshape(g, SHAPE(NC, L))) : NULL;
  dl_tensor *z = g2 ? dl_ag_keep(&p, dl_tensor_zeros(SHAPE(NC, plane), g->dtype, dl_tensor_device(g))) : NULL;
  dl_tensor *gx = z ? dl_ag_keep(&p, dl_ag_scatter_add(z, 1, i2, g2)) : NULL;
  dl_tensor *r = gx ? dl_ag_reshape(gx, shape, ndim) : NULL;
  dl_ag_scope_end(&p);
  return r;
}

static int max_pool_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const pool_ctx *c = (const pool_ctx *)n->ctx;
  dl_tensor *idx = dl_node_saved(n, 0);
  if (!idx) return -1;
  gin[0] = dl_ag_max_pool_grad(gout[0], idx, c->shape, c->ndim);
  dl_tensor_release(idx);
  return gin[0] ? 0 : -1;
}
static const dl_node_type max_pool_type = {"MaxPoolWithIndicesBackward0", max_pool_backward, NULL};

dl_tensor *dl_ag_max_pool(dl_tensor *x, const dl_window *w, dl_tensor **idx) {
  dl_tensor *y = dl_op_max_pool(x, w, idx);
  if (!y) return NULL;
  pool_ctx c = {.NC = x->shape[0] * x->shape[1], .ndim = x->ndim};
  c.plane = c.NC ? x->numel / c.NC : 0;
  c.L = c.NC ? y->numel / c.NC : 0;
  memcpy(c.shape, x->shape, (size_t)x->ndim * sizeof *x->shape);
  if (dl_ag_needs1(x)) {
    dl_node *node = dl_ag_record(&max_pool_type, &x, 1, y);
    if (!node) goto fail;
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save(node, *idx);
  }
  if (x->tangent) {
    dl_ag_scope p = {.n = 0};
    dl_tensor *t2 = dl_ag_keep(&p, dl_tensor_reshape(x->tangent, SHAPE(c.NC, c.plane)));
    dl_tensor *i2 = t2 ? dl_ag_keep(&p, dl_tensor_reshape(*idx, SHAPE(c.NC, c.L))) : NULL;
    dl_tensor *g = i2 ? dl_ag_keep(&p, dl_ag_gather(t2, 1, i2)) : NULL;
    dl_tensor *t = g ? dl_tensor_reshape(g, y->shape, y->ndim) : NULL;
    dl_ag_scope_end(&p);
    if (dl_fw_set(y, t)) goto fail;
  }
  return y;
fail:
  dl_tensor_release(y);
  dl_tensor_release(*idx);
  *idx = NULL;
  return NULL;
}
