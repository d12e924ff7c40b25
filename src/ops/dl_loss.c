/* dl_loss.c — front-ends of the fused classification losses: argument
 * checks, the [N, C, D] layout, output allocation, reduction. */
#include "dl_loss.h"

#include "dl_ewise.h"
#include "dl_reduce.h"

#include <string.h>

int dl_reduction_parse(const char *s, dl_reduction *out) {
  if (!strcmp(s, "mean")) *out = DL_REDUCTION_MEAN;
  else if (!strcmp(s, "sum")) *out = DL_REDUCTION_SUM;
  else if (!strcmp(s, "none")) *out = DL_REDUCTION_NONE;
  else return -1;
  return 0;
}


/* Checks shapes and dtypes; fills N, C, D. 0 ok, -1 with an error. */
static int check_args(const char *fn, const dl_tensor *input, const dl_tensor *target, const dl_tensor *weight,
                      int64_t *N, int64_t *C, int64_t *D) {
  char a[128], b[128];
  if (!dl_dtype_is_float(input->dtype)) {
    dl_error_set("%s: expected a floating-point input, got %s", fn, dl_dtype_name(input->dtype));
    return -1;
  }
  if (target->dtype != DL_INT64) {
    dl_error_set("%s: expected int64 class indices%s as target, got %s", fn,
                 strcmp(fn, "cross_entropy") ? "" : " or float class probabilities", dl_dtype_name(target->dtype));
    return -1;
  }
  if (dl_check_same_device(fn, input, target)) return -1;
  bool ok;
  if (input->ndim == 0) ok = false;
  else if (input->ndim == 1) ok = target->ndim == 0;
  else {
    ok = target->ndim == input->ndim - 1 && target->shape[0] == input->shape[0];
    for (int k = 1; ok && k < target->ndim; k++) ok = target->shape[k] == input->shape[k + 1];
  }
  if (!ok) {
    dl_error_set("%s: input %s and target %s do not match (expected input [C] with target [], or input "
                 "[N,C,d1,...] with target [N,d1,...])",
                 fn, dl_tensor_shape_str(input, a, sizeof a), dl_tensor_shape_str(target, b, sizeof b));
    return -1;
  }
  *C = input->ndim == 1 ? input->shape[0] : input->shape[1];
  *N = input->ndim == 1 ? 1 : input->shape[0];
  *D = 1;
  for (int k = 2; k < input->ndim; k++) *D *= input->shape[k];
  if (*C == 0) {
    dl_error_set("%s: input %s has no classes", fn, dl_tensor_shape_str(input, a, sizeof a));
    return -1;
  }
  if (weight) {
    if (dl_check_same_device(fn, input, weight)) return -1;
    if (weight->ndim != 1 || weight->shape[0] != *C) {
      dl_error_set("%s: weight %s must be 1-D with one entry per class (%lld) of input %s", fn,
                   dl_tensor_shape_str(weight, a, sizeof a), (long long)*C, dl_tensor_shape_str(input, b, sizeof b));
      return -1;
    }
    if (!dl_dtype_is_float(weight->dtype)) {
      dl_error_set("%s: expected a floating-point weight, got %s", fn, dl_dtype_name(weight->dtype));
      return -1;
    }
  }
  return 0;
}

/* a contiguous tensor of dtype dt with t's values (t itself, retained, when
 * it already is one) */
static dl_tensor *contig_as(const dl_tensor *t, dl_dtype dt) {
  if (t->dtype == dt && dl_tensor_is_contiguous(t)) return dl_tensor_retain((dl_tensor *)t);
  dl_tensor *c = dl_tensor_empty(t->shape, t->ndim, dt, dl_tensor_device(t));
  if (c && dl_tensor_copy_(c, t)) {
    dl_tensor_release(c);
    return NULL;
  }
  return c;
}

/* the contiguous operands of both kernels */
typedef struct {
  dl_tensor *x, *t, *w;
} class_operands;

static void operands_release(class_operands *o) {
  dl_tensor_release(o->x);
  dl_tensor_release(o->t);
  if (o->w) dl_tensor_release(o->w);
}

static int operands_make(const dl_tensor *input, const dl_tensor *target, const dl_tensor *weight, int64_t N,
                         int64_t C, int64_t D, class_operands *o) {
  memset(o, 0, sizeof *o);
  dl_tensor *xc = contig_as(input, input->dtype);
  dl_tensor *tc = contig_as(target, DL_INT64);
  dl_tensor *wc = weight ? contig_as(weight, input->dtype) : NULL;
  int64_t xs[3] = {N, C, D}, ts[2] = {N, D};
  if (xc) o->x = dl_tensor_view(xc, xs, 3);
  if (tc) o->t = dl_tensor_view(tc, ts, 2);
  o->w = wc;
  if (xc) dl_tensor_release(xc);
  if (tc) dl_tensor_release(tc);
  if (!o->x || !o->t || (weight && !o->w)) {
    if (o->x) dl_tensor_release(o->x);
    if (o->t) dl_tensor_release(o->t);
    if (o->w) dl_tensor_release(o->w);
    return -1;
  }
  return 0;
}

static const struct dl_loss_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), loss);
}

dl_tensor *dl_op_class_loss(const char *fn, const dl_tensor *input, const dl_tensor *target,
                            const dl_tensor *weight, int64_t ignore_index, double smoothing, bool log_softmax,
                            dl_reduction red, dl_tensor **lse, dl_tensor **wsum) {
  int64_t N, C, D;
  if (lse) *lse = NULL;
  if (wsum) *wsum = NULL;
  if (check_args(fn, input, target, weight, &N, &C, &D)) return NULL;
  if (!(smoothing >= 0.0 && smoothing <= 1.0)) {
    dl_error_set("%s: label_smoothing must be in [0, 1], got %g", fn, smoothing);
    return NULL;
  }
  const struct dl_loss_kernels *k = kernels_of(fn, input);
  if (!k) return NULL;
  class_operands o;
  if (operands_make(input, target, weight, N, C, D, &o)) return NULL;
  dl_device dev = dl_tensor_device(input);
  int64_t rs[2] = {N, D};
  dl_tensor *loss = dl_tensor_empty(rs, 2, input->dtype, dev);
  dl_tensor *wt = red == DL_REDUCTION_MEAN ? dl_tensor_empty(rs, 2, input->dtype, dev) : NULL;
  /* the row logsumexps only when the caller keeps them for a backward */
  bool want_lse = log_softmax && lse;
  dl_tensor *l = want_lse ? dl_tensor_empty(rs, 2, input->dtype, dev) : NULL;
  dl_tensor *out = NULL;
  if (!loss || (red == DL_REDUCTION_MEAN && !wt) || (want_lse && !l)) goto done;
  dl_class_loss_call c = {o.x, o.t, o.w, loss, wt, l, ignore_index, smoothing, log_softmax, false, 0};
  if (dl_kernel_status(fn, k->class_forward(&c))) goto done;
  if (c.bad) {
    dl_error_set("%s: target %lld is out of bounds (classes are 1..%lld)", fn, (long long)c.bad_value,
                 (long long)C);
    goto done;
  }
  if (red == DL_REDUCTION_NONE) {
    out = dl_tensor_view(loss, target->shape, target->ndim);
  } else {
    dl_tensor *s = dl_op_sum(loss, NULL, 0, false);
    if (s && red == DL_REDUCTION_MEAN) {
      dl_tensor *ws = dl_op_sum(wt, NULL, 0, false);
      if (ws) out = dl_op_binary(DL_BIN_DIV, s, ws, dl_scalar_i(1));
      if (out && wsum) *wsum = ws;
      else if (ws) dl_tensor_release(ws);
      dl_tensor_release(s);
    } else {
      out = s;
    }
  }
  if (out && lse && l) {
    *lse = l;
    l = NULL;
  }
done:
  operands_release(&o);
  if (loss) dl_tensor_release(loss);
  if (wt) dl_tensor_release(wt);
  if (l) dl_tensor_release(l);
  return out;
}

dl_tensor *dl_op_class_loss_backward(const char *fn, const dl_tensor *gout, const dl_tensor *input,
                                     const dl_tensor *target, const dl_tensor *weight, const dl_tensor *lse,
                                     int64_t ignore_index, double smoothing, bool softmax_term) {
  int64_t N, C, D;
  char a[128], b[128];
  if (check_args(fn, input, target, weight, &N, &C, &D)) return NULL;
  if (dl_check_same_device(fn, input, gout)) return NULL;
  if (gout->numel != 1 && gout->numel != N * D) {
    dl_error_set("%s: gradient %s does not match target %s", fn, dl_tensor_shape_str(gout, a, sizeof a),
                 dl_tensor_shape_str(target, b, sizeof b));
    return NULL;
  }
  if (softmax_term && (!lse || lse->numel != N * D)) {
    dl_error_set("%s: backward needs the forward's logsumexp", fn);
    return NULL;
  }
  const struct dl_loss_kernels *k = kernels_of(fn, input);
  if (!k) return NULL;
  class_operands o;
  if (operands_make(input, target, weight, N, C, D, &o)) return NULL;
  dl_tensor *g = contig_as(gout, input->dtype);
  dl_tensor *lc = softmax_term ? contig_as(lse, input->dtype) : NULL;
  dl_tensor *grad = dl_tensor_empty(o.x->shape, 3, input->dtype, dl_tensor_device(input));
  dl_tensor *out = NULL;
  if (g && grad && (!softmax_term || lc)) {
    dl_class_loss_backward_call c = {grad, o.x, o.t, o.w, lc, g, ignore_index, smoothing, softmax_term};
    if (!dl_kernel_status(fn, k->class_backward(&c))) out = dl_tensor_view(grad, input->shape, input->ndim);
  }
  operands_release(&o);
  if (g) dl_tensor_release(g);
  if (lc) dl_tensor_release(lc);
  if (grad) dl_tensor_release(grad);
  return out;
}

/* ---- element-wise regression losses ---- */

int dl_loss_check_pair(const char *fn, const dl_tensor *x, const dl_tensor *t) {
  char a[128], b[128];
  if (!dl_dtype_is_float(x->dtype)) {
    dl_error_set("%s: expected a floating-point input, got %s", fn, dl_dtype_name(x->dtype));
    return -1;
  }
  if (!dl_dtype_is_float(t->dtype)) {
    dl_error_set("%s: expected a floating-point target, got %s", fn, dl_dtype_name(t->dtype));
    return -1;
  }
  if (dl_check_same_device(fn, x, t)) return -1;
  if (!dl_tensor_same_shape(x, t)) {
    dl_error_set("%s: input %s and target %s must have the same shape", fn, dl_tensor_shape_str(x, a, sizeof a),
                 dl_tensor_shape_str(t, b, sizeof b));
    return -1;
  }
  return 0;
}

/* t in dtype dt, any layout (t itself, retained, when already dt) */
static dl_tensor *as_dtype(const dl_tensor *t, dl_dtype dt) {
  if (t->dtype == dt) return dl_tensor_retain((dl_tensor *)t);
  return contig_as(t, dt);
}

static dl_dtype pointwise_dtype(const dl_tensor *x, const dl_tensor *t) {
  return x->dtype == DL_FLOAT64 || t->dtype == DL_FLOAT64 ? DL_FLOAT64 : DL_FLOAT32;
}

dl_tensor *dl_op_pointwise_loss(const char *fn, const dl_tensor *input, const dl_tensor *target,
                                dl_pointwise_loss kind, double beta, dl_reduction red) {
  if (dl_loss_check_pair(fn, input, target)) return NULL;
  const struct dl_loss_kernels *k = kernels_of(fn, input);
  if (!k) return NULL;
  dl_dtype dt = pointwise_dtype(input, target);
  dl_tensor *x = as_dtype(input, dt), *t = x ? as_dtype(target, dt) : NULL;
  dl_tensor *l = t ? dl_tensor_empty(input->shape, input->ndim, dt, dl_tensor_device(input)) : NULL;
  dl_tensor *out = NULL;
  if (l && !dl_kernel_status(fn, k->pointwise(l, x, t, kind, beta))) {
    if (red == DL_REDUCTION_NONE) out = dl_tensor_retain(l);
    else if (red == DL_REDUCTION_MEAN) out = dl_op_mean(l, NULL, 0, false);
    else out = dl_op_sum(l, NULL, 0, false);
  }
  if (x) dl_tensor_release(x);
  if (t) dl_tensor_release(t);
  if (l) dl_tensor_release(l);
  return out;
}

dl_tensor *dl_op_pointwise_loss_backward(const char *fn, const dl_tensor *g, const dl_tensor *input,
                                         const dl_tensor *target, dl_pointwise_loss kind, double beta,
                                         dl_reduction red) {
  char a[128], b[128];
  if (dl_loss_check_pair(fn, input, target) || dl_check_same_device(fn, input, g)) return NULL;
  bool whole = red != DL_REDUCTION_NONE;
  if (whole ? g->numel != 1 : !dl_tensor_same_shape(g, input)) {
    dl_error_set("%s: gradient %s does not match the loss of input %s", fn, dl_tensor_shape_str(g, a, sizeof a),
                 dl_tensor_shape_str(input, b, sizeof b));
    return NULL;
  }
  const struct dl_loss_kernels *k = kernels_of(fn, input);
  if (!k) return NULL;
  dl_dtype dt = pointwise_dtype(input, target);
  dl_tensor *x = as_dtype(input, dt), *t = x ? as_dtype(target, dt) : NULL;
  dl_tensor *gs = NULL, *ge = NULL, *gx = NULL;
  if (t) {
    gs = red == DL_REDUCTION_MEAN
             ? dl_op_binary_ex(DL_BIN_DIV, dl_operand_tensor(g), dl_operand_scalar(dl_scalar_f((double)input->numel)),
                               dl_scalar_i(1))
             : as_dtype(g, dt);
  }
  if (gs && gs->dtype != dt) {
    dl_tensor *c = as_dtype(gs, dt);
    dl_tensor_release(gs);
    gs = c;
  }
  if (gs) {
    /* one element: a 0-stride view over the input's shape */
    dl_tensor *g0 = whole ? dl_tensor_reshape(gs, NULL, 0) : dl_tensor_retain(gs);
    ge = g0 && whole ? dl_tensor_expand(g0, input->shape, input->ndim) : (g0 ? dl_tensor_retain(g0) : NULL);
    if (g0) dl_tensor_release(g0);
  }
  if (ge) gx = dl_tensor_empty(input->shape, input->ndim, dt, dl_tensor_device(input));
  if (gx) gx = dl_kernel_result(fn, gx, k->pointwise_backward(gx, ge, x, t, kind, beta));
  if (x) dl_tensor_release(x);
  if (t) dl_tensor_release(t);
  if (gs) dl_tensor_release(gs);
  if (ge) dl_tensor_release(ge);
  return gx;
}
