/* grad_conv.c — im2col and col2im are linear and each other's adjoint:
 * the backward of im2col is col2im of the gradient and the other way
 * round, with padding reading 0 (padding is a constant, whatever value the
 * forward read: -inf for max pooling); the jvp of each is the same op on
 * the tangent. Rules call the differentiable ops, so double backward
 * records. */
#include "dl_ag_conv.h"

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
