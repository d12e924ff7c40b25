/* dl_activation.c — front-ends of the fused activations: check dtypes,
 * shapes and devices, lay the operands out as the kernels expect, allocate
 * the outputs and call the backend. */
#include "dl_activation.h"

#include "../dl_backend.h"

static const char *const act_names[DL_NACTS] = {"leaky_relu", "elu", "gelu", "gelu", "silu", "softplus", "relu"};

const char *dl_act_name(dl_act op) { return (unsigned)op < DL_NACTS ? act_names[op] : "activation"; }

static const struct dl_act_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), act);
}

static int check_float(const char *fn, const dl_tensor *t) {
  if (t->dtype == DL_FLOAT32 || t->dtype == DL_FLOAT64) return 0;
  dl_error_set("%s: expected a floating-point tensor, got %s", fn, dl_dtype_name(t->dtype));
  return -1;
}

/* g converted to like's dtype and checked against like's shape and device
 * (new reference) */
static dl_tensor *grad_like(const char *fn, const dl_tensor *g, const dl_tensor *like) {
  if (dl_check_same_device(fn, g, like)) return NULL;
  if (!dl_tensor_same_shape(g, like)) {
    char a[128], b[128];
    dl_error_set("%s: gradient shape %s does not match %s", fn, dl_tensor_shape_str(g, a, sizeof a),
                 dl_tensor_shape_str(like, b, sizeof b));
    return NULL;
  }
  if (!dl_dtype_is_float(g->dtype)) {
    dl_error_set("%s: expected a floating-point gradient, got %s", fn, dl_dtype_name(g->dtype));
    return NULL;
  }
  return dl_tensor_to_dtype((dl_tensor *)g, like->dtype);
}

static bool bad_params(dl_act op, double p0, double p1) {
  (void)p1;
  if (op == DL_ACT_SOFTPLUS && p0 == 0) {
    dl_error_set("softplus: beta must be non-zero");
    return true;
  }
  return false;
}

dl_tensor *dl_op_act(dl_act op, const dl_tensor *x, double p0, double p1) {
  const char *fn = dl_act_name(op);
  if (check_float(fn, x) || bad_params(op, p0, p1)) return NULL;
  const struct dl_act_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  dl_tensor *out = dl_tensor_empty(x->shape, x->ndim, x->dtype, dl_tensor_device(x));
  if (out && out->numel) out = dl_kernel_result(fn, out, k->forward(op, out, x, p0, p1));
  return out;
}

dl_tensor *dl_op_act_backward(dl_act op, const dl_tensor *g, const dl_tensor *x, double p0, double p1) {
  const char *fn = dl_act_name(op);
  if (check_float(fn, x) || bad_params(op, p0, p1)) return NULL;
  const struct dl_act_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  dl_tensor *gc = grad_like(fn, g, x);
  if (!gc) return NULL;
  dl_tensor *gx = dl_tensor_empty(x->shape, x->ndim, x->dtype, dl_tensor_device(x));
  if (gx && gx->numel) gx = dl_kernel_result(fn, gx, k->backward(op, gx, gc, x, p0, p1));
  dl_tensor_release(gc);
  return gx;
}

/* ---- prelu ---- */

/* checks w against x and splits x's shape as [outer, channels, inner] */
static int prelu_layout(const dl_tensor *x, const dl_tensor *w, int64_t *outer, int64_t *n, int64_t *inner) {
  if (check_float("prelu", x) || dl_check_same_device("prelu", x, w)) return -1;
  if (!dl_dtype_is_float(w->dtype)) {
    dl_error_set("prelu: expected a floating-point weight, got %s", dl_dtype_name(w->dtype));
    return -1;
  }
  if (w->dtype != x->dtype) {
    dl_error_set("prelu: weight dtype %s does not match input dtype %s", dl_dtype_name(w->dtype),
                 dl_dtype_name(x->dtype));
    return -1;
  }
  int64_t channels = x->ndim >= 2 ? x->shape[1] : 1;
  if (w->numel != 1 && w->numel != channels) {
    char a[128], b[128];
    dl_error_set("prelu: weight %s has %lld elements; expected 1 or the %lld channels (dim 2) of input %s",
                 dl_tensor_shape_str(w, a, sizeof a), (long long)w->numel, (long long)channels,
                 dl_tensor_shape_str(x, b, sizeof b));
    return -1;
  }
  *outer = x->ndim >= 2 ? x->shape[0] : 1;
  *n = channels;
  *inner = 1;
  for (int d = 2; d < x->ndim; d++) *inner *= x->shape[d];
  if (x->ndim == 1) *inner = x->shape[0];
  return 0;
}

/* contiguous copies of x and w (new references) */
static int prelu_operands(const dl_tensor *x, const dl_tensor *w, dl_tensor **xc, dl_tensor **wc) {
  *xc = dl_tensor_contiguous((dl_tensor *)x);
  *wc = *xc ? dl_tensor_contiguous((dl_tensor *)w) : NULL;
  if (*wc) return 0;
  dl_tensor_release(*xc);
  return -1;
}

dl_tensor *dl_op_prelu(const dl_tensor *x, const dl_tensor *w) {
  int64_t outer, n, inner;
  if (prelu_layout(x, w, &outer, &n, &inner)) return NULL;
  const struct dl_act_kernels *k = kernels_of("prelu", x);
  dl_tensor *xc, *wc;
  if (!k || prelu_operands(x, w, &xc, &wc)) return NULL;
  dl_tensor *out = dl_tensor_empty(x->shape, x->ndim, x->dtype, dl_tensor_device(x));
  if (out && out->numel) out = dl_kernel_result("prelu", out, k->prelu(out, xc, wc, outer, n, inner));
  dl_tensor_release(xc);
  dl_tensor_release(wc);
  return out;
}

int dl_op_prelu_backward(const dl_tensor *g, const dl_tensor *x, const dl_tensor *w, dl_tensor **gx,
                         dl_tensor **gw) {
  *gx = *gw = NULL;
  int64_t outer, n, inner;
  if (prelu_layout(x, w, &outer, &n, &inner)) return -1;
  const struct dl_act_kernels *k = kernels_of("prelu", x);
  if (!k) return -1;
  dl_tensor *gd = grad_like("prelu", g, x);
  dl_tensor *gc = gd ? dl_tensor_contiguous(gd) : NULL;
  dl_tensor_release(gd);
  dl_tensor *xc, *wc;
  if (!gc || prelu_operands(x, w, &xc, &wc)) {
    dl_tensor_release(gc);
    return -1;
  }
  dl_tensor *a = dl_tensor_empty(x->shape, x->ndim, x->dtype, dl_tensor_device(x));
  dl_tensor *b = a ? dl_tensor_empty(w->shape, w->ndim, x->dtype, dl_tensor_device(x)) : NULL;
  if (b && dl_kernel_status("prelu", k->prelu_backward(a, b, gc, xc, wc, outer, n, inner))) {
    dl_tensor_release(b);
    b = NULL;
  }
  dl_tensor_release(gc);
  dl_tensor_release(xc);
  dl_tensor_release(wc);
  if (!b) {
    dl_tensor_release(a);
    return -1;
  }
  *gx = a;
  *gw = b;
  return 0;
}

/* ---- softmax / log_softmax ---- */

static int softmax_layout(const char *fn, const dl_tensor *x, int *dim, int64_t *outer, int64_t *n,
                          int64_t *inner) {
  if (check_float(fn, x)) return -1;
  int d = dl_wrap_dim(fn, *dim, x->ndim ? x->ndim : 1);
  if (d < 0) return -1;
  *dim = d;
  *outer = *inner = 1;
  *n = x->ndim ? x->shape[d] : 1;
  for (int i = 0; i < d && i < x->ndim; i++) *outer *= x->shape[i];
  for (int i = d + 1; i < x->ndim; i++) *inner *= x->shape[i];
  return 0;
}

dl_tensor *dl_op_softmax(const dl_tensor *x, int dim, bool log) {
  const char *fn = log ? "log_softmax" : "softmax";
  int64_t outer, n, inner;
  if (softmax_layout(fn, x, &dim, &outer, &n, &inner)) return NULL;
  const struct dl_act_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  dl_tensor *xc = dl_tensor_contiguous((dl_tensor *)x);
  if (!xc) return NULL;
  dl_tensor *out = dl_tensor_empty(x->shape, x->ndim, x->dtype, dl_tensor_device(x));
  if (out && out->numel) out = dl_kernel_result(fn, out, k->softmax(log, out, xc, outer, n, inner));
  dl_tensor_release(xc);
  return out;
}

dl_tensor *dl_op_softmax_backward(const dl_tensor *g, const dl_tensor *y, int dim, bool log) {
  const char *fn = log ? "log_softmax" : "softmax";
  int64_t outer, n, inner;
  if (softmax_layout(fn, y, &dim, &outer, &n, &inner)) return NULL;
  const struct dl_act_kernels *k = kernels_of(fn, y);
  if (!k) return NULL;
  dl_tensor *gd = grad_like(fn, g, y);
  dl_tensor *gc = gd ? dl_tensor_contiguous(gd) : NULL;
  dl_tensor_release(gd);
  dl_tensor *yc = gc ? dl_tensor_contiguous((dl_tensor *)y) : NULL;
  dl_tensor *gx = yc ? dl_tensor_empty(y->shape, y->ndim, y->dtype, dl_tensor_device(y)) : NULL;
  if (gx && gx->numel) gx = dl_kernel_result(fn, gx, k->softmax_backward(log, gx, gc, yc, outer, n, inner));
  dl_tensor_release(gc);
  dl_tensor_release(yc);
  return gx;
}
