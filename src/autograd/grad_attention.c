/* grad_attention.c — the attention weights (dl_op_attn_softmax): forward,
 * backward and jvp rules. y = softmax(scale x) over the last dim (causal
 * entries 0): dx = scale y (g - sum(g y)), a row's own Jacobian times g, so
 * the tangent is the same formula applied to the input's tangent. Without a
 * graph of the gradients the backward is one fused kernel; with
 * create_graph it is written with the differentiable dl_ag_ ops. */
#include "dl_ag_layer.h"

#include "dl_ag_ewise.h"
#include "dl_ag_reduce.h"
#include "dl_ag_scope.h"
#include "dl_autograd.h"

#include <string.h>

typedef struct {
  double scale;
} attn_ctx;

static int attn_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const attn_ctx *c = (const attn_ctx *)n->ctx;
  dl_tensor *y = dl_node_saved(n, 0);
  if (!y) return -1;
  if (!dl_grad_enabled()) {
    gin[0] = dl_op_attn_softmax_backward(gout[0], y, c->scale);
    dl_tensor_release(y);
    return gin[0] ? 0 : -1;
  }
  dl_ag_scope p = {.n = 0};
  int last = y->ndim - 1;
  dl_tensor *gy = dl_ag_keep(&p, dl_ag_mul(gout[0], y));
  dl_tensor *dot = gy ? dl_ag_keep(&p, dl_ag_sum(gy, &last, 1, true)) : NULL;
  dl_tensor *yd = dot ? dl_ag_keep(&p, dl_ag_mul(y, dot)) : NULL;
  dl_tensor *d = yd ? dl_ag_keep(&p, dl_ag_sub(gy, yd)) : NULL;
  gin[0] = d ? dl_ag_mul_scalar(d, dl_scalar_f(c->scale)) : NULL;
  dl_ag_scope_end(&p);
  dl_tensor_release(y);
  return gin[0] ? 0 : -1;
}
static const dl_node_type attn_type = {"AttentionSoftmaxBackward0", attn_backward, NULL};

dl_tensor *dl_ag_attn_softmax(dl_tensor *x, double scale, bool causal) {
  dl_tensor *y = dl_op_attn_softmax(x, scale, causal);
  if (!y) return NULL;
  if (dl_ag_needs1(x)) {
    dl_node *node = dl_ag_record(&attn_type, &x, 1, y);
    if (!node) goto fail;
    attn_ctx c = {scale};
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save_output(node, y, 0);
  }
  if (x->tangent && dl_fw_set(y, dl_op_attn_softmax_backward(x->tangent, y, scale))) goto fail;
  return y;
fail:
  dl_tensor_release(y);
  return NULL;
}
