/* dl_layer.c — front-ends of the fused layer ops (dl_layer.h): argument
 * checks, contiguous operands, outputs; the arithmetic is the backend's. */
#include "dl_layer.h"

#include "dl_ewise.h"
#include "dl_random.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const struct dl_layer_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), layer);
}

static int check_float(const char *fn, const char *what, const dl_tensor *t) {
  if (dl_dtype_is_float(t->dtype)) return 0;
  dl_error_set("%s: expected a float32 or float64 %s, got %s", fn, what, dl_dtype_name(t->dtype));
  return -1;
}

/* t has x's dtype and device (what names it in the message) */
static int check_like(const char *fn, const char *what, const dl_tensor *t, const dl_tensor *x) {
  if (dl_check_same_device(fn, x, t)) return -1;
  if (t->dtype == x->dtype) return 0;
  dl_error_set("%s: expected %s of dtype %s (the input's), got %s", fn, what, dl_dtype_name(x->dtype),
               dl_dtype_name(t->dtype));
  return -1;
}

/* a [C] per-channel tensor */
static int check_channel(const char *fn, const char *what, const dl_tensor *t, const dl_tensor *x, int64_t C) {
  if (!t) return 0;
  if (check_like(fn, what, t, x)) return -1;
  if (t->ndim == 1 && t->shape[0] == C) return 0;
  char b1[64], b2[64];
  dl_error_set("%s: %s of shape %s does not match the %" PRId64 " channels of input %s", fn, what,
               dl_tensor_shape_str(t, b1, sizeof b1), C, dl_tensor_shape_str(x, b2, sizeof b2));
  return -1;
}

static void release_all(dl_tensor **ts, int n) {
  for (int i = 0; i < n; i++) dl_tensor_release(ts[i]);
}

/* ---- RBF ---- */

dl_tensor *dl_op_rbf(dl_tensor *x, dl_tensor *centers, dl_tensor *sigmas, bool bias_unit) {
  static const char fn[] = "rbf";
  char b1[64], b2[64];
  if (check_float(fn, "input", x)) return NULL;
  if (check_like(fn, "centers", centers, x) || check_like(fn, "sigmas", sigmas, x)) return NULL;
  if (x->ndim != 2 || centers->ndim != 2 || x->shape[1] != centers->shape[1]) {
    dl_error_set("%s: expected input [N, D] and centers [n, D], got %s and %s", fn,
                 dl_tensor_shape_str(x, b1, sizeof b1), dl_tensor_shape_str(centers, b2, sizeof b2));
    return NULL;
  }
  int64_t n = centers->shape[0];
  if (sigmas->ndim != 1 || sigmas->shape[0] != n) {
    dl_error_set("%s: expected sigmas [%" PRId64 "] for centers %s, got %s", fn, n,
                 dl_tensor_shape_str(centers, b1, sizeof b1), dl_tensor_shape_str(sigmas, b2, sizeof b2));
    return NULL;
  }
  const struct dl_layer_kernels *k = kernels_of("rbf", x);
  if (!k) return NULL;
  dl_tensor *t[5] = {dl_tensor_contiguous(x), dl_tensor_contiguous(centers), dl_tensor_contiguous(sigmas)};
  int64_t oshape[2] = {x->shape[0], n + (bias_unit ? 1 : 0)}, sshape[1] = {2 * n};
  dl_device dev = dl_tensor_device(x);
  t[3] = t[0] && t[1] && t[2] ? dl_tensor_empty(sshape, 1, x->dtype, dev) : NULL;
  dl_tensor *out = t[3] ? dl_tensor_empty(oshape, 2, x->dtype, dev) : NULL;
  if (out) out = dl_kernel_result("rbf", out, k->rbf_forward(out, t[0], t[1], t[2], t[3], bias_unit));
  release_all(t, 4);
  return out;
}

int dl_op_rbf_backward(dl_tensor *g, dl_tensor *out, dl_tensor *x, dl_tensor *centers, dl_tensor *sigmas,
                    bool bias_unit, dl_tensor **gx, dl_tensor **gc, dl_tensor **gs) {
  static const char fn[] = "rbf_backward";
  char b1[64], b2[64];
  if (check_float(fn, "input", x) || check_like(fn, "centers", centers, x) || check_like(fn, "sigmas", sigmas, x) ||
      check_like(fn, "grad_output", g, x) || check_like(fn, "output", out, x))
    return -1;
  int64_t N = x->ndim == 2 ? x->shape[0] : -1, n = centers->ndim == 2 ? centers->shape[0] : -1;
  int64_t oshape[2] = {N, n + (bias_unit ? 1 : 0)};
  if (x->ndim != 2 || centers->ndim != 2 || x->shape[1] != centers->shape[1] || sigmas->ndim != 1 ||
      sigmas->shape[0] != n || g->ndim != 2 || out->ndim != 2 || !dl_tensor_same_shape(g, out) ||
      g->shape[0] != oshape[0] || g->shape[1] != oshape[1]) {
    dl_error_set("%s: inconsistent shapes: input %s, centers %s", fn, dl_tensor_shape_str(x, b1, sizeof b1),
                 dl_tensor_shape_str(centers, b2, sizeof b2));
    return -1;
  }
  const struct dl_layer_kernels *k = kernels_of("rbf", x);
  if (!k) return -1;
  dl_device dev = dl_tensor_device(x);
  int64_t ashape[2] = {N, n};
  dl_tensor *t[6] = {dl_tensor_contiguous(g), dl_tensor_contiguous(out), dl_tensor_contiguous(x),
                     dl_tensor_contiguous(centers), dl_tensor_contiguous(sigmas), dl_tensor_empty(ashape, 2, x->dtype, dev)};
  dl_tensor *o[3] = {NULL, NULL, NULL};
  int rc = -1;
  for (int i = 0; i < 6; i++)
    if (!t[i]) goto done;
  if (gx && !(o[0] = dl_tensor_empty(x->shape, 2, x->dtype, dev))) goto done;
  if (gc && !(o[1] = dl_tensor_empty(centers->shape, 2, x->dtype, dev))) goto done;
  if (gs && !(o[2] = dl_tensor_empty(sigmas->shape, 1, x->dtype, dev))) goto done;
  if (dl_kernel_status("rbf", k->rbf_backward(o[0], o[1], o[2], t[0], t[1], t[2], t[3], t[4], t[5], bias_unit)))
    goto done;
  if (gx) *gx = o[0];
  if (gc) *gc = o[1];
  if (gs) *gs = o[2];
  rc = 0;
done:
  release_all(t, 6);
  if (rc) release_all(o, 3);
  return rc;
}

/* ---- batch norm ---- */

/* [N, C, L] of a 2-D or 3-D input */
static int bn_dims(const char *fn, const dl_tensor *x, int64_t *N, int64_t *C, int64_t *L) {
  if (x->ndim != 2 && x->ndim != 3) {
    char b[64];
    dl_error_set("%s: expected 2D or 3D input, got %dD input of shape %s", fn, x->ndim,
                 dl_tensor_shape_str(x, b, sizeof b));
    return -1;
  }
  *N = x->shape[0];
  *C = x->shape[1];
  *L = x->ndim == 3 ? x->shape[2] : 1;
  return 0;
}

/* rsqrt(var + eps), a new [C] tensor */
static dl_tensor *invstd_of(dl_tensor *var, double eps) {
  dl_tensor *v = dl_op_binary_ex(DL_BIN_ADD, dl_operand_tensor(var), dl_operand_scalar(dl_scalar_f(eps)),
                                 dl_scalar_i(1));
  if (!v) return NULL;
  dl_tensor *r = dl_op_unary(DL_UN_RSQRT, v);
  dl_tensor_release(v);
  return r;
}

int dl_op_batch_norm(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                  dl_tensor *running_var, bool training, double momentum, double eps, dl_tensor **out,
                  dl_tensor **save_mean, dl_tensor **save_invstd) {
  return dl_op_batch_norm_ex(x, weight, bias, running_mean, running_var, training, momentum, eps, DL_BN_PLAIN, out,
                             save_mean, save_invstd, NULL);
}

int dl_batch_norm_update_running(dl_tensor *running_mean, dl_tensor *running_var, dl_tensor *mean, dl_tensor *var,
                                 double M, double momentum) {
  /* running = (1 - m) running + m stat: lerp; the variance unbiased */
  if (dl_op_lerp_(running_mean, mean, dl_operand_scalar(dl_scalar_f(momentum)))) return -1;
  if (dl_op_binary_(DL_BIN_MUL, var, dl_operand_scalar(dl_scalar_f(M / (M - 1))), dl_scalar_i(1))) return -1;
  return dl_op_lerp_(running_var, var, dl_operand_scalar(dl_scalar_f(momentum)));
}

bool dl_batch_norm_pool_fused(const dl_tensor *x) {
  if (!dl_dtype_is_float(x->dtype) || x->ndim != 4 || x->shape[2] < 2 || x->shape[3] < 2)
    return false;
  const dl_backend *be = dl_backend_get(dl_tensor_device(x));
  return be && be->layer && be->layer->bn_relu_pool && be->layer->bn_relu_pool_backward;
}

/* [N, C, L] of batch norm's input: 2-D or 3-D, or for the pooling epilogue
 * [N, C, H, W] (L = H W) that its kernels take */
static int bn_dims_ep(const char *fn, const dl_tensor *x, dl_bn_epilogue ep, int64_t *N, int64_t *C, int64_t *L) {
  if (ep != DL_BN_RELU_POOL2) return bn_dims(fn, x, N, C, L);
  if (!dl_batch_norm_pool_fused(x)) {
    char b[64];
    dl_error_set("%s: batch norm + ReLU + max pooling takes a float [N, C, H, W] with H, W >= 2 on a device with "
                 "its kernels, got %s",
                 fn, dl_tensor_shape_str(x, b, sizeof b));
    return -1;
  }
  *N = x->shape[0], *C = x->shape[1], *L = x->shape[2] * x->shape[3];
  return 0;
}

int dl_op_batch_norm_ex(dl_tensor *x, dl_tensor *weight, dl_tensor *bias, dl_tensor *running_mean,
                        dl_tensor *running_var, bool training, double momentum, double eps, dl_bn_epilogue ep,
                        dl_tensor **out, dl_tensor **save_mean, dl_tensor **save_invstd, dl_tensor **winners) {
  static const char fn[] = "batch_norm";
  int64_t N, C, L;
  *out = NULL;
  if (check_float(fn, "input", x) || bn_dims_ep(fn, x, ep, &N, &C, &L)) return -1;
  if (check_channel(fn, "weight", weight, x, C) || check_channel(fn, "bias", bias, x, C) ||
      check_channel(fn, "running_mean", running_mean, x, C) || check_channel(fn, "running_var", running_var, x, C))
    return -1;
  if (!running_mean != !running_var) {
    dl_error_set("%s: running_mean and running_var must be given together", fn);
    return -1;
  }
  if (!training && !running_mean) {
    dl_error_set("%s: running_mean and running_var must be given in evaluation mode", fn);
    return -1;
  }
  if (training && N * L == 1) {
    char b[64];
    dl_error_set("%s: expected more than 1 value per channel when training, got input of shape %s", fn,
                 dl_tensor_shape_str(x, b, sizeof b));
    return -1;
  }
  if (!(eps >= 0)) {
    dl_error_set("%s: eps must be >= 0, got %g", fn, eps);
    return -1;
  }
  const struct dl_layer_kernels *k = kernels_of("batch_norm", x);
  if (!k) return -1;
  dl_device dev = dl_tensor_device(x);
  int64_t cshape[1] = {C};
  /* t: x, weight, bias contiguous; mean, var, invstd */
  dl_tensor *t[6] = {dl_tensor_contiguous(x), weight ? dl_tensor_contiguous(weight) : NULL,
                     bias ? dl_tensor_contiguous(bias) : NULL};
  int rc = -1;
  if (!t[0] || (weight && !t[1]) || (bias && !t[2])) goto done;
  /* an empty batch (as PyTorch): an empty output, no statistics taken (the
   * saved mean and invstd are zeros), the running ones left as they are */
  const bool empty = N * L == 0;
  if (training && empty) {
    for (int i = 3; i < 6; i++)
      if (!(t[i] = dl_tensor_zeros(cshape, 1, x->dtype, dev))) goto done;
  } else if (training) {
    for (int i = 3; i < 6; i++)
      if (!(t[i] = dl_tensor_empty(cshape, 1, x->dtype, dev))) goto done;
    if (dl_kernel_status("batch_norm", k->bn_stats(t[0], N, C, L, t[3], t[4], t[5], eps))) goto done;
    if (running_mean && dl_batch_norm_update_running(running_mean, running_var, t[3], t[4], (double)(N * L), momentum))
      goto done;
  } else {
    if (!(t[3] = dl_tensor_contiguous(running_mean)) || !(t[5] = invstd_of(running_var, eps))) goto done;
  }
  const bool pool = ep == DL_BN_RELU_POOL2;
  int64_t pooled[4] = {N, C, x->ndim == 4 ? x->shape[2] / 2 : 0, x->ndim == 4 ? x->shape[3] / 2 : 0};
  dl_tensor *win[2] = {NULL, NULL};
  if (pool && winners && (!(win[0] = dl_tensor_empty(pooled, 4, DL_UINT8, dev)) ||
                          !(win[1] = dl_tensor_empty(pooled, 4, x->dtype, dev))))
    goto fail_out;
  if (!(*out = pool ? dl_tensor_empty(pooled, 4, x->dtype, dev) : dl_tensor_empty(x->shape, x->ndim, x->dtype, dev)))
    goto fail_out;
  int krc = empty ? DL_KERNEL_OK
           : pool ? k->bn_relu_pool(*out, win[0], win[1], t[0], N, C, x->shape[2], x->shape[3], t[3], t[5], t[1], t[2])
                 : k->bn_apply(*out, t[0], N, C, L, t[3], t[5], t[1], t[2], ep == DL_BN_RELU);
  if (dl_kernel_status("batch_norm", krc)) goto fail_out;
  if (pool && winners) winners[0] = win[0], winners[1] = win[1];
  if (save_mean) *save_mean = dl_tensor_retain(t[3]);
  if (save_invstd) *save_invstd = dl_tensor_retain(t[5]);
  rc = 0;
  goto done;
fail_out:
  release_all(win, 2);
  dl_tensor_release(*out);
  *out = NULL;
done:
  release_all(t, 6);
  return rc;
}

dl_tensor *dl_op_batch_norm_apply(dl_tensor *x, dl_tensor *mean, dl_tensor *invstd, dl_tensor *weight,
                                  dl_tensor *bias, bool relu) {
  static const char fn[] = "batch_norm";
  int64_t N, C, L;
  if (check_float(fn, "input", x) || bn_dims(fn, x, &N, &C, &L)) return NULL;
  if (check_channel(fn, "mean", mean, x, C) || check_channel(fn, "invstd", invstd, x, C) ||
      check_channel(fn, "weight", weight, x, C) || check_channel(fn, "bias", bias, x, C))
    return NULL;
  const struct dl_layer_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  dl_tensor *t[5] = {dl_tensor_contiguous(x), dl_tensor_contiguous(mean), dl_tensor_contiguous(invstd),
                     weight ? dl_tensor_contiguous(weight) : NULL, bias ? dl_tensor_contiguous(bias) : NULL};
  dl_tensor *out = NULL;
  if (t[0] && t[1] && t[2] && (!weight || t[3]) && (!bias || t[4]) &&
      (out = dl_tensor_empty(x->shape, x->ndim, x->dtype, dl_tensor_device(x))))
    out = dl_kernel_result(fn, out, k->bn_apply(out, t[0], N, C, L, t[1], t[2], t[3], t[4], relu));
  release_all(t, 5);
  return out;
}

int dl_op_batch_norm_backward(dl_tensor *gy, dl_tensor *x, dl_tensor *mean, dl_tensor *invstd, dl_tensor *weight,
                              dl_tensor *bias, dl_bn_epilogue ep, dl_tensor *const *winners, dl_tensor **gx,
                              dl_tensor **gw, dl_tensor **gb) {
  static const char fn[] = "batch_norm_backward";
  int64_t N, C, L;
  if (bn_dims_ep(fn, x, ep, &N, &C, &L)) return -1;
  if (check_like(fn, "grad_output", gy, x)) return -1;
  const bool pooled = ep == DL_BN_RELU_POOL2;
  if (pooled && (!winners || !winners[0] || !winners[1] || winners[0]->dtype != DL_UINT8 ||
                 !dl_tensor_same_shape(winners[0], gy) || !dl_tensor_same_shape(winners[1], gy) ||
                 winners[1]->dtype != x->dtype || !dl_tensor_is_contiguous(winners[0]) ||
                 !dl_tensor_is_contiguous(winners[1]))) {
    dl_error_set("%s: the pooling's winners from the forward are missing or do not match", fn);
    return -1;
  }
  if (pooled ? gy->ndim != 4 || gy->shape[0] != N || gy->shape[1] != C || gy->shape[2] != x->shape[2] / 2 ||
                   gy->shape[3] != x->shape[3] / 2
             : !dl_tensor_same_shape(gy, x)) {
    char b1[64], b2[64];
    dl_error_set("%s: grad_output %s does not match input %s", fn, dl_tensor_shape_str(gy, b1, sizeof b1),
                 dl_tensor_shape_str(x, b2, sizeof b2));
    return -1;
  }
  if (check_channel(fn, "mean", mean, x, C) || check_channel(fn, "invstd", invstd, x, C) ||
      check_channel(fn, "weight", weight, x, C) || check_channel(fn, "bias", bias, x, C))
    return -1;
  const struct dl_layer_kernels *k = kernels_of("batch_norm", x);
  if (!k) return -1;
  dl_device dev = dl_tensor_device(x);
  int64_t cshape[1] = {C};
  dl_tensor *t[6] = {dl_tensor_contiguous(gy),  dl_tensor_contiguous(x),
                     dl_tensor_contiguous(mean), dl_tensor_contiguous(invstd),
                     weight ? dl_tensor_contiguous(weight) : NULL, bias ? dl_tensor_contiguous(bias) : NULL};
  dl_tensor *o[3] = {NULL, NULL, NULL};
  int rc = -1;
  if (!t[0] || !t[1] || !t[2] || !t[3] || (weight && !t[4]) || (bias && !t[5])) goto done;
  if (gx && !(o[0] = dl_tensor_empty(x->shape, x->ndim, x->dtype, dev))) goto done;
  if (gw && !(o[1] = dl_tensor_empty(cshape, 1, x->dtype, dev))) goto done;
  if (gb && !(o[2] = dl_tensor_empty(cshape, 1, x->dtype, dev))) goto done;
  int krc = pooled ? k->bn_relu_pool_backward(o[0], o[1], o[2], t[0], t[1], winners[0], winners[1], N, C, x->shape[2],
                                               x->shape[3], t[2], t[3], t[4])
                   : k->bn_backward(o[0], o[1], o[2], t[0], t[1], N, C, L, t[2], t[3], t[4], t[5], ep == DL_BN_RELU);
  if (dl_kernel_status("batch_norm", krc)) goto done;
  if (gx) *gx = o[0];
  if (gw) *gw = o[1];
  if (gb) *gb = o[2];
  rc = 0;
done:
  release_all(t, 6);
  if (rc) release_all(o, 3);
  return rc;
}

/* ---- recurrent cells ---- */

/* t is [B, n H] (or [n H] unbatched) for state s [B, H] ([H]), of s's dtype
 * and device */
static int check_rows(const char *fn, const char *what, const dl_tensor *t, const dl_tensor *s, int n) {
  if (check_like(fn, what, t, s)) return -1;
  int64_t H = s->ndim ? s->shape[s->ndim - 1] : 0;
  bool ok = t->ndim == s->ndim && t->shape[t->ndim - 1] == n * H && (s->ndim == 1 || t->shape[0] == s->shape[0]);
  if (ok) return 0;
  char b1[64], b2[64];
  dl_error_set("%s: %s %s does not fit the state %s (expected [B, %d H] for a state [B, H])", fn, what,
               dl_tensor_shape_str(t, b1, sizeof b1), dl_tensor_shape_str(s, b2, sizeof b2), n);
  return -1;
}

static int check_state(const char *fn, const char *what, const dl_tensor *s) {
  if (check_float(fn, what, s)) return -1;
  if (s->ndim == 1 || s->ndim == 2) return 0;
  char b[64];
  dl_error_set("%s: %s must be [B, H] or [H], got %s", fn, what, dl_tensor_shape_str(s, b, sizeof b));
  return -1;
}

int dl_op_lstm_cell(dl_tensor *gates, dl_tensor *c, dl_tensor **h, dl_tensor **c1) {
  static const char fn[] = "lstm_cell";
  *h = *c1 = NULL;
  if (check_state(fn, "cell state", c) || check_rows(fn, "gates", gates, c, 4)) return -1;
  const struct dl_layer_kernels *k = kernels_of(fn, c);
  if (!k) return -1;
  dl_device dev = dl_tensor_device(c);
  dl_tensor *t[2] = {dl_tensor_contiguous(gates), dl_tensor_contiguous(c)};
  dl_tensor *o[2] = {NULL, NULL};
  if (t[0] && t[1]) {
    o[0] = dl_tensor_empty(c->shape, c->ndim, c->dtype, dev);
    o[1] = o[0] ? dl_tensor_empty(c->shape, c->ndim, c->dtype, dev) : NULL;
  }
  int rc = o[1] ? dl_kernel_status(fn, k->lstm_cell(o[0], o[1], t[0], t[1])) : -1;
  release_all(t, 2);
  if (rc) {
    release_all(o, 2);
    return -1;
  }
  *h = o[0], *c1 = o[1];
  return 0;
}

int dl_op_lstm_cell_backward(dl_tensor *gh, dl_tensor *gc1, dl_tensor *gates, dl_tensor *c, dl_tensor *c1,
                             dl_tensor **dgates, dl_tensor **dc) {
  static const char fn[] = "lstm_cell_backward";
  *dgates = *dc = NULL;
  if (check_state(fn, "cell state", c) || check_rows(fn, "gates", gates, c, 4) ||
      check_rows(fn, "new cell state", c1, c, 1) || check_rows(fn, "gradient of h", gh, c, 1) ||
      check_rows(fn, "gradient of c", gc1, c, 1))
    return -1;
  const struct dl_layer_kernels *k = kernels_of(fn, c);
  if (!k) return -1;
  dl_device dev = dl_tensor_device(c);
  dl_tensor *t[5] = {dl_tensor_contiguous(gh), dl_tensor_contiguous(gc1), dl_tensor_contiguous(gates),
                     dl_tensor_contiguous(c), dl_tensor_contiguous(c1)};
  dl_tensor *o[2] = {NULL, NULL};
  if (t[0] && t[1] && t[2] && t[3] && t[4]) {
    o[0] = dl_tensor_empty(gates->shape, gates->ndim, c->dtype, dev);
    o[1] = o[0] ? dl_tensor_empty(c->shape, c->ndim, c->dtype, dev) : NULL;
  }
  int rc = o[1] ? dl_kernel_status(fn, k->lstm_cell_backward(o[0], o[1], t[0], t[1], t[2], t[3], t[4])) : -1;
  release_all(t, 5);
  if (rc) {
    release_all(o, 2);
    return -1;
  }
  *dgates = o[0], *dc = o[1];
  return 0;
}

dl_tensor *dl_op_gru_cell(dl_tensor *gi, dl_tensor *gh, dl_tensor *h) {
  static const char fn[] = "gru_cell";
  if (check_state(fn, "hidden state", h) || check_rows(fn, "input gates", gi, h, 3) ||
      check_rows(fn, "hidden gates", gh, h, 3))
    return NULL;
  const struct dl_layer_kernels *k = kernels_of(fn, h);
  if (!k) return NULL;
  dl_tensor *t[3] = {dl_tensor_contiguous(gi), dl_tensor_contiguous(gh), dl_tensor_contiguous(h)};
  dl_tensor *out = t[0] && t[1] && t[2] ? dl_tensor_empty(h->shape, h->ndim, h->dtype, dl_tensor_device(h)) : NULL;
  if (out) out = dl_kernel_result(fn, out, k->gru_cell(out, t[0], t[1], t[2]));
  release_all(t, 3);
  return out;
}

int dl_op_gru_cell_backward(dl_tensor *g, dl_tensor *gi, dl_tensor *gh, dl_tensor *h, dl_tensor **dgi,
                            dl_tensor **dgh, dl_tensor **dh) {
  static const char fn[] = "gru_cell_backward";
  *dgi = *dgh = *dh = NULL;
  if (check_state(fn, "hidden state", h) || check_rows(fn, "input gates", gi, h, 3) ||
      check_rows(fn, "hidden gates", gh, h, 3) || check_rows(fn, "gradient", g, h, 1))
    return -1;
  const struct dl_layer_kernels *k = kernels_of(fn, h);
  if (!k) return -1;
  dl_device dev = dl_tensor_device(h);
  dl_tensor *t[4] = {dl_tensor_contiguous(g), dl_tensor_contiguous(gi), dl_tensor_contiguous(gh),
                     dl_tensor_contiguous(h)};
  dl_tensor *o[3] = {NULL, NULL, NULL};
  if (t[0] && t[1] && t[2] && t[3]) {
    o[0] = dl_tensor_empty(gi->shape, gi->ndim, h->dtype, dev);
    o[1] = o[0] ? dl_tensor_empty(gh->shape, gh->ndim, h->dtype, dev) : NULL;
    o[2] = o[1] ? dl_tensor_empty(h->shape, h->ndim, h->dtype, dev) : NULL;
  }
  int rc = o[2] ? dl_kernel_status(fn, k->gru_cell_backward(o[0], o[1], o[2], t[0], t[1], t[2], t[3])) : -1;
  release_all(t, 4);
  if (rc) {
    release_all(o, 3);
    return -1;
  }
  *dgi = o[0], *dgh = o[1], *dh = o[2];
  return 0;
}

/* ---- attention weights ---- */

dl_tensor *dl_op_attn_softmax(dl_tensor *x, double scale, bool causal) {
  static const char fn[] = "attention_softmax";
  if (check_float(fn, "scores", x)) return NULL;
  if (x->ndim < 2) {
    char b[64];
    dl_error_set("%s: scores must be [..., L, S], got %s", fn, dl_tensor_shape_str(x, b, sizeof b));
    return NULL;
  }
  if (!isfinite(scale)) {
    dl_error_set("%s: scale must be finite, got %g", fn, scale);
    return NULL;
  }
  const struct dl_layer_kernels *k = kernels_of(fn, x);
  if (!k) return NULL;
  dl_tensor *xc = dl_tensor_contiguous(x);
  dl_tensor *y = xc ? dl_tensor_empty(x->shape, x->ndim, x->dtype, dl_tensor_device(x)) : NULL;
  if (y && y->numel)
    y = dl_kernel_result(fn, y, k->attn_softmax(y, xc, x->shape[x->ndim - 2], x->shape[x->ndim - 1], scale, causal));
  dl_tensor_release(xc);
  return y;
}

dl_tensor *dl_op_attn_softmax_backward(dl_tensor *g, dl_tensor *y, double scale) {
  static const char fn[] = "attention_softmax_backward";
  if (check_float(fn, "weights", y) || check_like(fn, "gradient", g, y)) return NULL;
  if (y->ndim < 2 || g->ndim != y->ndim || memcmp(g->shape, y->shape, sizeof(int64_t) * (size_t)y->ndim) != 0) {
    char b1[64], b2[64];
    dl_error_set("%s: gradient %s does not match the weights %s", fn, dl_tensor_shape_str(g, b1, sizeof b1),
                 dl_tensor_shape_str(y, b2, sizeof b2));
    return NULL;
  }
  const struct dl_layer_kernels *k = kernels_of(fn, y);
  if (!k) return NULL;
  dl_tensor *gc = dl_tensor_contiguous(g), *yc = gc ? dl_tensor_contiguous(y) : NULL;
  dl_tensor *gx = yc ? dl_tensor_empty(y->shape, y->ndim, y->dtype, dl_tensor_device(y)) : NULL;
  if (gx && gx->numel) gx = dl_kernel_result(fn, gx, k->attn_softmax_backward(gx, gc, yc, y->shape[y->ndim - 1], scale));
  dl_tensor_release(gc);
  dl_tensor_release(yc);
  return gx;
}

/* ---- dropout ---- */

int dl_op_dropout(dl_tensor *x, double p, dl_tensor **out, dl_tensor **mask) {
  *out = *mask = NULL;
  if (!(p >= 0 && p <= 1)) {
    dl_error_set("dropout: probability has to be between 0 and 1, but got %g", p);
    return -1;
  }
  if (check_float("dropout", "input", x)) return -1;
  if (p > 0 && p < 1) return dl_op_dropout_fused(x, 1 - p, 1 / (1 - p), out, mask);
  /* p = 0 keeps everything, p = 1 nothing: no draws */
  dl_tensor *m = dl_tensor_full(x->shape, x->ndim, DL_UINT8, dl_tensor_device(x), dl_scalar_i(p == 0));
  dl_tensor *o = m ? dl_op_binary(DL_BIN_MUL, x, m, dl_scalar_i(1)) : NULL;
  if (!o) {
    dl_tensor_release(m);
    return -1;
  }
  *out = o;
  *mask = m;
  return 0;
}

/* ---- layer norm ---- */

int dl_op_layer_norm(dl_tensor *x, int64_t N, dl_tensor *w, dl_tensor *b, double eps, dl_tensor **y, dl_tensor **mean,
                     dl_tensor **rstd) {
  static const char fn[] = "layer_norm";
  *y = *mean = *rstd = NULL;
  const struct dl_layer_kernels *k = kernels_of(fn, x);
  if (!k) return -1;
  if (!k->layer_norm) return 1;
  int64_t R = N ? x->numel / N : 0;
  dl_device dev = dl_tensor_device(x);
  dl_tensor *t[3] = {dl_tensor_contiguous(x), w ? dl_tensor_contiguous(w) : NULL, b ? dl_tensor_contiguous(b) : NULL};
  dl_tensor *o[3] = {NULL, NULL, NULL};
  if (t[0] && (!w || t[1]) && (!b || t[2]) && (o[0] = dl_tensor_empty(x->shape, x->ndim, x->dtype, dev)) &&
      (o[1] = dl_tensor_empty(&R, 1, x->dtype, dev)))
    o[2] = dl_tensor_empty(&R, 1, x->dtype, dev);
  int rc = o[2] ? dl_kernel_status(fn, k->layer_norm(o[0], o[1], o[2], t[0], R, N, t[1], t[2], eps)) : -1;
  release_all(t, 3);
  if (rc) {
    release_all(o, 3);
    return -1;
  }
  *y = o[0], *mean = o[1], *rstd = o[2];
  return 0;
}

int dl_op_layer_norm_backward(dl_tensor *g, dl_tensor *x, dl_tensor *mean, dl_tensor *rstd, dl_tensor *w, int64_t N,
                              dl_tensor **gx, dl_tensor **gw, dl_tensor **gb) {
  static const char fn[] = "layer_norm_backward";
  const struct dl_layer_kernels *k = kernels_of(fn, x);
  if (!k) return -1;
  if (!k->layer_norm_backward) {
    dl_error_set("%s: not supported on this device", fn);
    return -1;
  }
  int64_t R = N ? x->numel / N : 0;
  dl_device dev = dl_tensor_device(x);
  dl_tensor *t[5] = {dl_tensor_contiguous(g), dl_tensor_contiguous(x), dl_tensor_contiguous(mean),
                     dl_tensor_contiguous(rstd), w ? dl_tensor_contiguous(w) : NULL};
  dl_tensor *o[3] = {NULL, NULL, NULL};
  bool ok = t[0] && t[1] && t[2] && t[3] && (!w || t[4]);
  if (ok && gx) ok = (o[0] = dl_tensor_empty(x->shape, x->ndim, x->dtype, dev)) != NULL;
  if (ok && gw) ok = (o[1] = dl_tensor_empty(&N, 1, x->dtype, dev)) != NULL;
  if (ok && gb) ok = (o[2] = dl_tensor_empty(&N, 1, x->dtype, dev)) != NULL;
  int rc = ok ? dl_kernel_status(fn, k->layer_norm_backward(o[0], o[1], o[2], t[0], t[1], t[2], t[3], t[4], R, N)) : -1;
  release_all(t, 5);
  if (rc) {
    release_all(o, 3);
    return -1;
  }
  if (gx) *gx = o[0];
  if (gw) *gw = o[1];
  if (gb) *gb = o[2];
  return 0;
}
