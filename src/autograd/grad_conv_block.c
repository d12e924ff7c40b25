/* grad_conv_block.c — a 2-D convolution, batch norm (training), ReLU and
 * optionally 2x2 max pooling as one recorded op (dl_ag_conv.h
 * dl_ag_conv_block): forward wrapper and backward rule.
 *
 * Where the device has the blocked kernels (ops/dl_conv_block.h) the
 * forward keeps the convolution's output in them and the backward, with no
 * graph to record, runs batch norm's blocked backward into the
 * convolution's. Under create_graph the rule recomputes the convolution
 * with the differentiable op and chains the two layers' own composed
 * formulas, so second derivatives follow every path (through x's history
 * too). Tangents, or a device or problem without the blocked kernels, run
 * the layers one by one (each with its own rules). */
#include "dl_ag_conv.h"

#include "dl_ag_layer.h"
#include "dl_ag_scope.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"
#include "../ops/dl_conv_block.h"

#include <string.h>

typedef struct {
  dl_conv_params p;
  double eps;
  bool has_bias, has_bn_w, has_bn_b, pool, has_xb;
} block_ctx;

_Static_assert(sizeof(block_ctx) <= DL_NODE_CTX_BYTES, "block_ctx does not fit a node");
_Static_assert(DL_NODE_MAX_SAVED >= 11, "the block saves up to 11 tensors");

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

/* the rule's formulas as differentiable ops: gin[0..4] for x, w, b, bn_w, bn_b where want[i] */
static int composed_grads(const block_ctx *c, dl_tensor *g, dl_tensor *x, dl_tensor *w, dl_tensor *b,
                          dl_tensor *bn_w, dl_tensor *bn_b, dl_tensor *mean, dl_tensor *invstd, const bool *want,
                          dl_tensor **gin) {
  dl_ag_scope p = {.n = 0};
  int rc = -1;
  const bool conv = want[0] || want[1] || want[2], bw[3] = {conv, want[3], want[4]};
  dl_tensor *y, *yn, *gn, *gb[3] = {NULL, NULL, NULL};
  if (!(y = dl_ag_keep(&p, dl_ag_convolution(x, w, b, &c->p)))) goto done;
  /* batch norm's [N, C, L] without the pooling */
  const int64_t flat[3] = {y->shape[0], y->shape[1], y->shape[2] * y->shape[3]};
  if (!(yn = c->pool ? y : dl_ag_keep(&p, dl_ag_reshape(y, flat, 3))) ||
      !(gn = c->pool ? g : dl_ag_keep(&p, dl_ag_reshape(g, flat, 3))))
    goto done;
  if (dl_ag_batch_norm_grads(gn, yn, mean, invstd, bn_w, bn_b, c->eps, c->pool ? DL_BN_RELU_POOL2 : DL_BN_RELU, bw,
                             gb)) {
    for (int i = 0; i < 3; i++) dl_tensor_release(gb[i]); /* (those it made before failing) */
    goto done;
  }
  gin[3] = gb[1], gin[4] = gb[2]; /* (the engine releases gin when the rule fails) */
  if (conv && !dl_ag_keep(&p, gb[0])) goto done;
  if (conv) {
    dl_tensor *gy = c->pool ? gb[0] : dl_ag_keep(&p, dl_ag_reshape(gb[0], y->shape, 4));
    if (!gy || dl_ag_convolution_grads(gy, x, w, c->has_bias, &c->p, want[0] ? &gin[0] : NULL,
                                       want[1] ? &gin[1] : NULL, c->has_bias && want[2] ? &gin[2] : NULL))
      goto done;
  }
  rc = 0;
done:
  dl_ag_scope_end(&p);
  return rc;
}

static int block_backward(dl_node *nd, dl_tensor *const *gout, dl_tensor **gin) {
  const block_ctx *c = (const block_ctx *)nd->ctx;
  dl_ag_scope p = {.n = 0};
  int rc = -1, k = 0;
  dl_tensor *x, *w, *b = NULL, *bn_w = NULL, *bn_b = NULL;
  dl_conv_block_saved s = {0};
  const bool want[5] = {wants(nd, 0), wants(nd, 1), c->has_bias && wants(nd, 2), wants(nd, 3), wants(nd, 4)};
  /* saved: x, w, y, mean, invstd, then b, bn_w, bn_b, tap, xs, xb where present */
  if (!(x = dl_ag_keep(&p, dl_node_saved(nd, k++))) || !(w = dl_ag_keep(&p, dl_node_saved(nd, k++))) ||
      !(s.y = dl_ag_keep(&p, dl_node_saved(nd, k++))) || !(s.mean = dl_ag_keep(&p, dl_node_saved(nd, k++))) ||
      !(s.invstd = dl_ag_keep(&p, dl_node_saved(nd, k++))) ||
      (c->has_bias && !(b = dl_ag_keep(&p, dl_node_saved(nd, k++)))) ||
      (c->has_bn_w && !(bn_w = dl_ag_keep(&p, dl_node_saved(nd, k++)))) ||
      (c->has_bn_b && !(bn_b = dl_ag_keep(&p, dl_node_saved(nd, k++)))) ||
      (c->pool &&
       (!(s.tap = dl_ag_keep(&p, dl_node_saved(nd, k++))) || !(s.xs = dl_ag_keep(&p, dl_node_saved(nd, k++))))) ||
      (c->has_xb && !(s.xb = dl_ag_keep(&p, dl_node_saved(nd, k++)))))
    goto done;
  if (dl_grad_enabled()) /* create_graph: the differentiable formulas */
    rc = composed_grads(c, gout[0], x, w, b, bn_w, bn_b, s.mean, s.invstd, want, gin);
  else
    rc = dl_op_conv_block_backward(gout[0], x, w, c->has_bias, &c->p, bn_w, bn_b, &s, c->pool,
                                   want[0] ? &gin[0] : NULL, want[1] ? &gin[1] : NULL, want[2] ? &gin[2] : NULL,
                                   want[3] ? &gin[3] : NULL, want[4] ? &gin[4] : NULL);
done:
  dl_ag_scope_end(&p);
  return rc;
}
static const dl_node_type block_type = {"ConvolutionBatchNormReluBackward0", block_backward, NULL};
static const dl_node_type block_pool_type = {"ConvolutionBatchNormReluMaxPoolBackward0", block_backward, NULL};

/* the layers one by one, each recorded with its own rules */
static dl_tensor *one_by_one(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *c, dl_tensor *bn_w,
                             dl_tensor *bn_b, dl_tensor *running_mean, dl_tensor *running_var, double momentum,
                             double eps, bool pool) {
  dl_ag_scope p = {.n = 0};
  dl_tensor *y, *out = NULL;
  if ((y = dl_ag_keep(&p, dl_ag_convolution(x, w, b, c)))) {
    if (pool) {
      out = dl_ag_batch_norm(y, bn_w, bn_b, running_mean, running_var, true, momentum, eps, DL_BN_RELU_POOL2);
    } else {
      const int64_t flat[3] = {y->shape[0], y->shape[1], y->numel / (y->shape[0] * y->shape[1])};
      dl_tensor *y3 = y->numel ? dl_ag_keep(&p, dl_ag_reshape(y, flat, 3)) : y, *o3;
      if (y3 && (o3 = dl_ag_keep(&p, dl_ag_batch_norm(y3, bn_w, bn_b, running_mean, running_var, true, momentum,
                                                      eps, DL_BN_RELU))))
        out = dl_ag_reshape(o3, y->shape, y->ndim);
    }
  }
  dl_ag_scope_end(&p);
  return out;
}

dl_tensor *dl_ag_conv_block(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *params, dl_tensor *bn_w,
                            dl_tensor *bn_b, dl_tensor *running_mean, dl_tensor *running_var, double momentum,
                            double eps, bool pool) {
  dl_conv_params c = *params;
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (dl_conv_check("convolution", x, w, b, &c, out)) return NULL;
  if (!(eps >= 0)) { /* (the layers one by one say it as batch norm does) */
    dl_error_set("batch_norm: eps must be >= 0, got %g", eps);
    return NULL;
  }
  dl_tensor *in[5] = {x, w, b, bn_w, bn_b};
  const int c16 =
      dl_fw_any(in, 5) ? 0 : dl_conv_block_fused(x, w, b, &c, out, bn_w, bn_b, running_mean, running_var, pool);
  if (!c16) return one_by_one(x, w, b, &c, bn_w, bn_b, running_mean, running_var, momentum, eps, pool);
  dl_tensor *o;
  dl_conv_block_saved s;
  if (dl_op_conv_block(x, w, b, &c, c16, bn_w, bn_b, running_mean, running_var, momentum, eps, pool, &o, &s))
    return NULL;
  if (dl_ag_needs_grad(in, 5)) {
    dl_node *node = dl_ag_record(pool ? &block_pool_type : &block_type, in, 5, o);
    if (!node) {
      dl_conv_block_saved_release(&s);
      dl_tensor_release(o);
      return NULL;
    }
    block_ctx ctx = {c, eps, b != NULL, bn_w != NULL, bn_b != NULL, pool, s.xb != NULL};
    memcpy(node->ctx, &ctx, sizeof ctx);
    dl_tensor *keep[11] = {x, w, s.y, s.mean, s.invstd, b, bn_w, bn_b, s.tap, s.xs, s.xb};
    for (int i = 0; i < 11; i++)
      if (keep[i]) dl_node_save(node, keep[i]);
  }
  dl_conv_block_saved_release(&s);
  return o;
}
