/* dl_conv.c — front-ends of im2col and col2im (dl_conv.h): window checks,
 * output sizes, contiguous operands; the copying is the backend's. */
#include "dl_conv.h"

#include <inttypes.h>
#include <stdio.h>

static const struct dl_conv_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), conv);
}

int dl_window_out(const char *fn, const dl_window *w, const int64_t *size, const dl_tensor *x, int64_t *out) {
  char b[64];
  if (w->nd < 1 || w->nd > DL_CONV_MAX_SPATIAL) {
    dl_error_set("%s: %d spatial dims (1 to %d)", fn, w->nd, DL_CONV_MAX_SPATIAL);
    return -1;
  }
  for (int d = 0; d < w->nd; d++) {
    if (w->kernel[d] < 1 || w->stride[d] < 1 || w->dilation[d] < 1) {
      dl_error_set("%s: kernel size, stride and dilation must be >= 1, got %" PRId64 ", %" PRId64 " and %" PRId64
                   " for spatial dim %d",
                   fn, w->kernel[d], w->stride[d], w->dilation[d], d + 1);
      return -1;
    }
    if (w->pad_lo[d] < 0 || w->pad_hi[d] < 0) {
      dl_error_set("%s: negative padding %" PRId64 " for spatial dim %d", fn, w->pad_lo[d] < 0 ? w->pad_lo[d] : w->pad_hi[d],
                   d + 1);
      return -1;
    }
    int64_t span, padded;
    if (__builtin_mul_overflow(w->dilation[d], w->kernel[d] - 1, &span) ||
        __builtin_add_overflow(size[d], w->pad_lo[d], &padded) || __builtin_add_overflow(padded, w->pad_hi[d], &padded)) {
      dl_error_set("%s: window sizes overflow for spatial dim %d", fn, d + 1);
      return -1;
    }
    out[d] = padded - span - 1 < 0 ? 0 : (padded - span - 1) / w->stride[d] + 1;
    if (out[d] < 1) {
      dl_error_set("%s: input %s (padded to %" PRId64 " in spatial dim %d) is smaller than the %s kernel of size %" PRId64
                   ", so the output would be empty",
                   fn, dl_tensor_shape_str(x, b, sizeof b), padded, d + 1, w->dilation[d] > 1 ? "dilated" : "",
                   span + 1);
      return -1;
    }
  }
  return 0;
}

/* x is [N, C, *S] with S of w->nd dims, of a float dtype */
static int check_image(const char *fn, const dl_tensor *x, int nd, int64_t extra_dims) {
  char b[64];
  if (!dl_dtype_is_float(x->dtype)) {
    dl_error_set("%s: expected a float32 or float64 input, got %s", fn, dl_dtype_name(x->dtype));
    return -1;
  }
  if (x->ndim != nd + extra_dims) {
    dl_error_set("%s: expected a %" PRId64 "-D input for %d spatial dims, got %s", fn, nd + extra_dims, nd,
                 dl_tensor_shape_str(x, b, sizeof b));
    return -1;
  }
  return 0;
}

dl_tensor *dl_op_im2col(dl_tensor *x, const dl_window *w) {
  static const char fn[] = "im2col";
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (w->nd < 1 || w->nd > DL_CONV_MAX_SPATIAL) return dl_window_out(fn, w, NULL, x, out), NULL;
  if (check_image(fn, x, w->nd, 2) || dl_window_out(fn, w, x->shape + 2, x, out)) return NULL;
  const struct dl_conv_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  int64_t N = x->shape[0], C = x->shape[1], rows = C, L = 1;
  for (int d = 0; d < w->nd; d++) {
    if (__builtin_mul_overflow(rows, w->kernel[d], &rows) || __builtin_mul_overflow(L, out[d], &L)) {
      dl_error_set("%s: the columns would hold too many elements", fn);
      return NULL;
    }
  }
  int64_t shape[3] = {rows, N, L};
  dl_tensor *xc = dl_tensor_contiguous(x);
  dl_tensor *buf = xc ? dl_tensor_empty(shape, 3, x->dtype, dl_tensor_device(x)) : NULL;
  if (buf && buf->numel > 0) buf = dl_kernel_result(fn, buf, k->im2col(buf, L, N * L, xc, N, C, x->shape + 2, out, w));
  dl_tensor_release(xc);
  dl_tensor *cols = buf ? dl_tensor_transpose(buf, 0, 1) : NULL;
  dl_tensor_release(buf);
  return cols;
}

dl_tensor *dl_op_col2im(dl_tensor *cols, const dl_window *w, const int64_t *size) {
  static const char fn[] = "col2im";
  char b[64];
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (w->nd < 1 || w->nd > DL_CONV_MAX_SPATIAL) return dl_window_out(fn, w, NULL, cols, out), NULL;
  if (check_image(fn, cols, 1, 2)) return NULL;
  for (int d = 0; d < w->nd; d++)
    if (size[d] < 0) {
      dl_error_set("%s: negative output size %" PRId64 " for spatial dim %d", fn, size[d], d + 1);
      return NULL;
    }
  if (dl_window_out(fn, w, size, cols, out)) return NULL;
  int64_t K = 1, L = 1;
  for (int d = 0; d < w->nd; d++)
    if (__builtin_mul_overflow(K, w->kernel[d], &K) || __builtin_mul_overflow(L, out[d], &L)) {
      dl_error_set("%s: the output size and kernel make too many windows", fn);
      return NULL;
    }
  int64_t N = cols->shape[0], rows = cols->shape[1];
  if (rows % K != 0 || cols->shape[2] != L) {
    dl_error_set("%s: input %s does not hold [N, C x %" PRId64 " (the kernel), %" PRId64 " (the windows)] columns", fn,
                 dl_tensor_shape_str(cols, b, sizeof b), K, L);
    return NULL;
  }
  int64_t C = rows / K, shape[2 + DL_CONV_MAX_SPATIAL] = {N, C};
  for (int d = 0; d < w->nd; d++) shape[2 + d] = size[d];
  const struct dl_conv_kernels *k = kernels_of(fn, cols);
  if (!k) return NULL;
  /* any strides of the image and row dims (im2col's layout among them), contiguous windows */
  dl_tensor *cc = cols->stride[2] == 1 || L <= 1 ? dl_tensor_retain(cols) : dl_tensor_contiguous(cols);
  dl_tensor *x = cc ? dl_tensor_empty(shape, 2 + w->nd, cols->dtype, dl_tensor_device(cols)) : NULL;
  if (x && x->numel > 0)
    x = dl_kernel_result(fn, x, k->col2im(x, cc, cc->stride[0], cc->stride[1], N, C, size, out, w));
  dl_tensor_release(cc);
  return x;
}

/* ---- max pooling ---- */

dl_tensor *dl_op_max_pool(dl_tensor *x, const dl_window *w, dl_tensor **idx) {
  static const char fn[] = "max_pool";
  int64_t out[DL_CONV_MAX_SPATIAL];
  *idx = NULL;
  if (w->nd < 1 || w->nd > DL_CONV_MAX_SPATIAL) return dl_window_out(fn, w, NULL, x, out), NULL;
  if (check_image(fn, x, w->nd, 2) || dl_window_out(fn, w, x->shape + 2, x, out)) return NULL;
  for (int d = 0; d < w->nd; d++)
    if (2 * w->pad_lo[d] > w->kernel[d]) {
      dl_error_set("%s: padding %" PRId64 " should be at most half of the kernel size %" PRId64, fn, w->pad_lo[d],
                   w->kernel[d]);
      return NULL;
    }
  const struct dl_conv_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  int64_t shape[2 + DL_CONV_MAX_SPATIAL] = {x->shape[0], x->shape[1]};
  for (int d = 0; d < w->nd; d++) shape[2 + d] = out[d];
  dl_device dev = dl_tensor_device(x);
  dl_tensor *xc = dl_tensor_contiguous(x);
  dl_tensor *y = xc ? dl_tensor_empty(shape, 2 + w->nd, x->dtype, dev) : NULL;
  dl_tensor *ix = y ? dl_tensor_empty(shape, 2 + w->nd, DL_INT64, dev) : NULL;
  if (ix && y->numel > 0 &&
      dl_kernel_status(fn, k->max_pool(y, ix, xc, x->shape[0] * x->shape[1], x->shape + 2, out, w))) {
    dl_tensor_release(ix);
    ix = NULL;
  }
  dl_tensor_release(xc);
  if (!ix) {
    dl_tensor_release(y);
    return NULL;
  }
  *idx = ix;
  return y;
}

dl_tensor *dl_op_max_pool_backward(dl_tensor *g, dl_tensor *idx, const int64_t *shape, int ndim) {
  static const char fn[] = "max_pool_backward";
  char a[64], b[64];
  if (!dl_dtype_is_float(g->dtype) || ndim < 3 || ndim > 2 + DL_CONV_MAX_SPATIAL || g->ndim != ndim ||
      !dl_tensor_same_shape(g, idx) || idx->dtype != DL_INT64 || g->shape[0] != shape[0] ||
      g->shape[1] != shape[1]) {
    dl_error_set("%s: a float gradient %s and int64 indices %s of an input of %d dims expected", fn,
                 dl_tensor_shape_str(g, a, sizeof a), dl_tensor_shape_str(idx, b, sizeof b), ndim);
    return NULL;
  }
  if (dl_check_same_device(fn, g, idx)) return NULL;
  const struct dl_conv_kernels *k = kernels_of(fn, g);
  if (!k) return NULL;
  if (!k->max_pool_backward) {
    dl_error_set("%s: not supported on this device", fn);
    return NULL;
  }
  int64_t NC = shape[0] * shape[1], plane = 1;
  for (int d = 2; d < ndim; d++) plane *= shape[d];
  dl_tensor *gc = dl_tensor_contiguous(g), *ic = gc ? dl_tensor_contiguous(idx) : NULL;
  dl_tensor *gx = ic ? dl_tensor_empty(shape, ndim, g->dtype, dl_tensor_device(g)) : NULL;
  if (gx && gx->numel > 0 &&
      dl_kernel_status(fn, k->max_pool_backward(gx, gc, ic, NC, plane, NC ? g->numel / NC : 0))) {
    dl_tensor_release(gx);
    gx = NULL;
  }
  dl_tensor_release(gc);
  dl_tensor_release(ic);
  return gx;
}

/* ---- convolution ---- */

int dl_conv_check(const char *fn, const dl_tensor *x, const dl_tensor *w, const dl_tensor *b, dl_conv_params *p,
                  int64_t *out) {
  char b1[64], b2[64];
  int nd = p->w.nd;
  if (nd < 1 || nd > DL_CONV_MAX_SPATIAL) return dl_window_out(fn, &p->w, NULL, x, out);
  if (check_image(fn, x, nd, 2)) return -1;
  if (dl_check_same_device(fn, x, w) || (b && dl_check_same_device(fn, x, b))) return -1;
  if (w->dtype != x->dtype || (b && b->dtype != x->dtype)) {
    dl_error_set("%s: input, weight and bias must have one dtype, got %s, %s and %s", fn, dl_dtype_name(x->dtype),
                 dl_dtype_name(w->dtype), b ? dl_dtype_name(b->dtype) : "none");
    return -1;
  }
  if (w->ndim != nd + 2) {
    dl_error_set("%s: weight %s must be %d-D [out, in / groups, *kernel] for input %s", fn,
                 dl_tensor_shape_str(w, b1, sizeof b1), nd + 2, dl_tensor_shape_str(x, b2, sizeof b2));
    return -1;
  }
  int64_t C = x->shape[1], O = w->shape[0];
  if (p->groups < 1 || O % p->groups != 0 || C != w->shape[1] * p->groups) {
    dl_error_set("%s: input %s and weight %s do not match with groups = %" PRId64
                 " (input channels = weight dim 2 x groups, out channels divisible by groups)",
                 fn, dl_tensor_shape_str(x, b1, sizeof b1), dl_tensor_shape_str(w, b2, sizeof b2), p->groups);
    return -1;
  }
  if (b && (b->ndim != 1 || b->shape[0] != O)) {
    dl_error_set("%s: bias %s must be [%" PRId64 "] for weight %s", fn, dl_tensor_shape_str(b, b1, sizeof b1), O,
                 dl_tensor_shape_str(w, b2, sizeof b2));
    return -1;
  }
  for (int d = 0; d < nd; d++) p->w.kernel[d] = w->shape[2 + d];
  p->w.pad_value = 0;
  return dl_window_out(fn, &p->w, x->shape + 2, x, out);
}

bool dl_conv_fused(const dl_tensor *x, const dl_conv_params *p) {
  if (x->dtype != DL_FLOAT32) return false;
  const dl_backend *be = dl_backend_get(dl_tensor_device(x));
  if (!be || !be->conv || !be->conv->conv_forward) return false;
  return !be->conv->conv_supported || be->conv->conv_supported(x, p);
}

dl_tensor *dl_op_conv_fused(dl_tensor *x, dl_tensor *w, dl_tensor *b, const dl_conv_params *p) {
  static const char fn[] = "convolution";
  dl_conv_params q = *p;
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (dl_conv_check(fn, x, w, b, &q, out)) return NULL;
  const struct dl_conv_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  int64_t shape[2 + DL_CONV_MAX_SPATIAL] = {x->shape[0], w->shape[0]};
  for (int d = 0; d < q.w.nd; d++) shape[2 + d] = out[d];
  dl_tensor *t[3] = {dl_tensor_contiguous(x), dl_tensor_contiguous(w), b ? dl_tensor_contiguous(b) : NULL};
  dl_tensor *y = t[0] && t[1] && (!b || t[2]) ? dl_tensor_empty(shape, 2 + q.w.nd, x->dtype, dl_tensor_device(x)) : NULL;
  if (y && y->numel > 0) y = dl_kernel_result(fn, y, k->conv_forward(y, t[0], t[1], t[2], &q));
  for (int i = 0; i < 3; i++) dl_tensor_release(t[i]);
  return y;
}

int dl_op_conv_fused_backward(dl_tensor *gy, dl_tensor *x, dl_tensor *w, bool has_bias, const dl_conv_params *p,
                              dl_tensor **gx, dl_tensor **gw, dl_tensor **gb) {
  static const char fn[] = "convolution_backward";
  dl_conv_params q = *p;
  int64_t out[DL_CONV_MAX_SPATIAL];
  if (dl_conv_check(fn, x, w, NULL, &q, out)) return -1;
  const struct dl_conv_kernels *k = kernels_of(fn, x);
  if (!k) return -1;
  dl_device dev = dl_tensor_device(x);
  dl_tensor *t[3] = {dl_tensor_contiguous(gy), dl_tensor_contiguous(x), dl_tensor_contiguous(w)};
  dl_tensor *o[3] = {NULL, NULL, NULL};
  int rc = -1;
  if (!t[0] || !t[1] || !t[2]) goto done;
  if (gx && !(o[0] = dl_tensor_empty(x->shape, x->ndim, x->dtype, dev))) goto done;
  if (gw && !(o[1] = dl_tensor_empty(w->shape, w->ndim, w->dtype, dev))) goto done;
  if (gb && has_bias && !(o[2] = dl_tensor_empty(w->shape, 1, w->dtype, dev))) goto done;
  const bool data = o[0] && o[0]->numel > 0, weights = o[1] || o[2];
  if (data && weights && k->conv_backward) {
    if (dl_kernel_status(fn, k->conv_backward(o[0], o[1], o[2], t[0], t[1], t[2], &q))) goto done;
  } else {
    if (data && dl_kernel_status(fn, k->conv_backward_data(o[0], t[0], t[2], &q))) goto done;
    if (weights && dl_kernel_status(fn, k->conv_backward_weights(o[1], o[2], t[0], t[1], &q))) goto done;
  }
  if (gx) *gx = o[0];
  if (gw) *gw = o[1];
  if (gb) *gb = o[2];
  rc = 0;
done:
  for (int i = 0; i < 3; i++) dl_tensor_release(t[i]);
  if (rc)
    for (int i = 0; i < 3; i++) dl_tensor_release(o[i]);
  return rc;
}
