/* dl_conv_block.c — the convolution + batch norm + ReLU (+ pooling) block
 * on the backend's blocked kernels (dl_conv_block.h). */
#include "dl_conv_block.h"

#include "dl_layer.h"

#include <inttypes.h>

static void release_all(dl_tensor **ts, int n) {
  for (int i = 0; i < n; i++) dl_tensor_release(ts[i]);
}

void dl_conv_block_saved_release(dl_conv_block_saved *s) {
  dl_tensor *t[6] = {s->y, s->mean, s->invstd, s->tap, s->xs, s->xb};
  release_all(t, 6);
  *s = (dl_conv_block_saved){0};
}

/* NULL, or a float32 [C] on dev */
static bool channel_vector(const dl_tensor *t, int64_t C, dl_device dev) {
  return !t || (t->dtype == DL_FLOAT32 && t->ndim == 1 && t->shape[0] == C &&
                dl_device_eq(dl_tensor_device(t), dev));
}

int dl_conv_block_fused(const dl_tensor *x, const dl_tensor *w, const dl_tensor *b, const dl_conv_params *p,
                        const int64_t *out, const dl_tensor *bn_w, const dl_tensor *bn_b,
                        const dl_tensor *running_mean, const dl_tensor *running_var, bool pool) {
  if (x->dtype != DL_FLOAT32 || p->w.nd != 2 || p->groups != 1 || x->numel == 0 || w->numel == 0) return 0;
  const int64_t O = w->shape[0];
  if (O % 16 != 0 || (pool ? out[0] < 2 || out[1] < 2 : x->shape[0] * out[0] * out[1] < 2)) return 0;
  const dl_device dev = dl_tensor_device(x);
  if (!channel_vector(bn_w, O, dev) || !channel_vector(bn_b, O, dev) || !channel_vector(running_mean, O, dev) ||
      !channel_vector(running_var, O, dev) || !running_mean != !running_var)
    return 0;
  const dl_backend *be = dl_backend_get(dev);
  if (!be || !be->conv || !be->conv->conv_c16 || !be->layer || !be->layer->bn_relu_c16 ||
      !be->layer->bn_relu_c16_backward)
    return 0;
  const int c16 = be->conv->conv_c16(x, w, b != NULL, p);
  return c16 & DL_CONV_C16_OUT ? c16 : 0;
}

int dl_op_conv_block(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *p, int c16, dl_tensor *bn_w,
                     dl_tensor *bn_b, dl_tensor *running_mean, dl_tensor *running_var, double momentum, double eps,
                     bool pool, dl_tensor **out, dl_conv_block_saved *saved) {
  static const char fn[] = "conv_block";
  const dl_backend *be = dl_backend_get(dl_tensor_device(x));
  const dl_device dev = dl_tensor_device(x);
  const int64_t N = x->shape[0], O = w->shape[0];
  int64_t sz[2];
  if (dl_window_out(fn, &p->w, x->shape + 2, x, sz)) return -1;
  const int64_t H = sz[0], W = sz[1], cshape[1] = {O}, C = x->shape[1];
  const int64_t xshape[5] = {N, C / 16, x->shape[2], x->shape[3], 16};
  /* the input as the convolution reads it, kept for the weights' gradient */
  const bool keep_x = c16 & DL_CONV_C16_IN;
  const int64_t yshape[5] = {N, O / 16, H, W, 16}, rshape[5] = {N, O / 16, H / 2, W / 2, 16};
  const int64_t oshape[4] = {N, O, pool ? H / 2 : H, pool ? W / 2 : W};
  *out = NULL;
  *saved = (dl_conv_block_saved){0};
  /* t: x, w, b, bn_w, bn_b contiguous; var */
  dl_tensor *t[6] = {dl_tensor_contiguous(x), dl_tensor_contiguous(w), b ? dl_tensor_contiguous(b) : NULL,
                     bn_w ? dl_tensor_contiguous(bn_w) : NULL, bn_b ? dl_tensor_contiguous(bn_b) : NULL,
                     dl_tensor_empty(cshape, 1, DL_FLOAT32, dev)};
  int rc = -1;
  dl_conv_block_saved s = {dl_tensor_empty(yshape, 5, DL_FLOAT32, dev), dl_tensor_empty(cshape, 1, DL_FLOAT32, dev),
                           dl_tensor_empty(cshape, 1, DL_FLOAT32, dev),
                           pool ? dl_tensor_empty(rshape, 5, DL_UINT8, dev) : NULL,
                           pool ? dl_tensor_empty(rshape, 5, DL_FLOAT32, dev) : NULL,
                           keep_x ? dl_tensor_empty(xshape, 5, DL_FLOAT32, dev) : NULL};
  dl_tensor *o = dl_tensor_empty(oshape, 4, DL_FLOAT32, dev);
  if (!t[0] || !t[1] || (b && !t[2]) || (bn_w && !t[3]) || (bn_b && !t[4]) || !t[5] || !s.y || !s.mean ||
      !s.invstd || (pool && (!s.tap || !s.xs)) || (keep_x && !s.xb) || !o)
    goto done;
  if (dl_kernel_status(fn, be->conv->conv_forward_c16(s.y, s.xb, t[0], t[1], t[2], p)) ||
      dl_kernel_status(fn, be->layer->bn_relu_c16(o, s.tap, s.xs, s.mean, t[5], s.invstd, s.y, N, O, H, W, t[3],
                                                 t[4], eps, pool)))
    goto done;
  if (running_mean &&
      dl_batch_norm_update_running(running_mean, running_var, s.mean, t[5], (double)(N * H * W), momentum))
    goto done;
  *out = o, *saved = s;
  o = NULL, s = (dl_conv_block_saved){0};
  rc = 0;
done:
  release_all(t, 6);
  dl_conv_block_saved_release(&s);
  dl_tensor_release(o);
  return rc;
}

int dl_op_conv_block_backward(dl_tensor *g, dl_tensor *x, dl_tensor *w, bool has_bias, const dl_conv_params *p,
                              dl_tensor *bn_w, dl_tensor *bn_b, const dl_conv_block_saved *s, bool pool,
                              dl_tensor **gx, dl_tensor **gw, dl_tensor **gb, dl_tensor **gbn_w, dl_tensor **gbn_b) {
  static const char fn[] = "conv_block_backward";
  const dl_backend *be = dl_backend_get(dl_tensor_device(x));
  const dl_device dev = dl_tensor_device(x);
  const int64_t N = x->shape[0], O = w->shape[0], H = s->y->shape[2], W = s->y->shape[3], cshape[1] = {O};
  const int64_t oshape[4] = {N, O, pool ? H / 2 : H, pool ? W / 2 : W};
  if (dl_check_same_device(fn, g, x)) return -1;
  if (g->ndim != 4 || g->shape[0] != oshape[0] || g->shape[1] != oshape[1] || g->shape[2] != oshape[2] ||
      g->shape[3] != oshape[3] || g->dtype != DL_FLOAT32) {
    char b1[64];
    dl_error_set("%s: grad_output %s does not match the output [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "]",
                 fn, dl_tensor_shape_str(g, b1, sizeof b1), oshape[0], oshape[1], oshape[2], oshape[3]);
    return -1;
  }
  const bool conv = gx || gw || gb;
  /* t: g, x, w, bn_w, bn_b contiguous; o: gx, gw, gb, gbn_w, gbn_b; gy */
  dl_tensor *t[5] = {dl_tensor_contiguous(g), dl_tensor_contiguous(x), dl_tensor_contiguous(w),
                     bn_w ? dl_tensor_contiguous(bn_w) : NULL, bn_b ? dl_tensor_contiguous(bn_b) : NULL};
  dl_tensor *o[5] = {gx ? dl_tensor_empty(x->shape, 4, DL_FLOAT32, dev) : NULL,
                     gw ? dl_tensor_empty(w->shape, 4, DL_FLOAT32, dev) : NULL,
                     gb ? dl_tensor_empty(cshape, 1, DL_FLOAT32, dev) : NULL,
                     gbn_w ? dl_tensor_empty(cshape, 1, DL_FLOAT32, dev) : NULL,
                     gbn_b ? dl_tensor_empty(cshape, 1, DL_FLOAT32, dev) : NULL};
  dl_tensor *gy = conv ? dl_tensor_empty(s->y->shape, 5, DL_FLOAT32, dev) : NULL;
  int rc = -1;
  if (!t[0] || !t[1] || !t[2] || (bn_w && !t[3]) || (bn_b && !t[4]) || (gx && !o[0]) || (gw && !o[1]) ||
      (gb && !o[2]) || (gbn_w && !o[3]) || (gbn_b && !o[4]) || (conv && !gy))
    goto done;
  if (dl_kernel_status(fn, be->layer->bn_relu_c16_backward(gy, o[3], o[4], t[0], s->y, s->tap, s->xs, N, O, H, W,
                                                          s->mean, s->invstd, t[3], t[4], pool)))
    goto done;
  if (conv &&
      dl_kernel_status(fn, be->conv->conv_backward_c16(o[0], o[1], o[2], gy, s->xb, t[1], t[2], has_bias, p)))
    goto done;
  dl_tensor **res[5] = {gx, gw, gb, gbn_w, gbn_b};
  for (int i = 0; i < 5; i++)
    if (res[i]) *res[i] = o[i], o[i] = NULL;
  rc = 0;
done:
  release_all(t, 5);
  release_all(o, 5);
  dl_tensor_release(gy);
  return rc;
}
