/* dl_reduce.c — reduction and scan front-ends: check dims and dtypes, pick
 * the output dtype, allocate outputs in the keepdim layout, call the
 * backend, then drop the reduced dims with a view when keepdim is false. */
#include "dl_reduce.h"

#include <math.h>
#include <string.h>

/* ---- shapes ---- */

typedef struct {
  bool red[DL_MAX_DIMS];
  int64_t keep_shape[DL_MAX_DIMS]; /* t's ndim, 1 on reduced dims */
  int64_t out_shape[DL_MAX_DIMS];  /* reduced dims dropped */
  int out_ndim;
  int64_t nred; /* elements folded into each output */
  int64_t nout;
} rshape;

static int rshape_init(const char *fn, const dl_tensor *t, const int *dims, int ndims, bool keepdim, rshape *rs) {
  memset(rs->red, 0, sizeof rs->red);
  if (ndims < 0 || ndims > DL_MAX_DIMS) {
    dl_error_set("%s: %d dims given, at most %d allowed", fn, ndims, DL_MAX_DIMS);
    return -1;
  }
  if (ndims == 0) {
    for (int d = 0; d < t->ndim; d++) rs->red[d] = true;
  }
  for (int i = 0; i < ndims; i++) {
    int d = dl_wrap_dim(fn, dims[i], t->ndim);
    if (d < 0) return -1;
    if (t->ndim == 0) continue; /* a 0-d tensor accepts dim 1 / -1 */
    if (rs->red[d]) {
      dl_error_set("%s: dim %d appears more than once in the list of dims", fn, d + 1);
      return -1;
    }
    rs->red[d] = true;
  }
  rs->out_ndim = 0;
  rs->nred = 1;
  rs->nout = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (rs->red[d]) {
      rs->keep_shape[d] = 1;
      rs->nred *= t->shape[d];
      if (keepdim) rs->out_shape[rs->out_ndim++] = 1;
    } else {
      rs->keep_shape[d] = t->shape[d];
      rs->nout *= t->shape[d];
      rs->out_shape[rs->out_ndim++] = t->shape[d];
    }
  }
  return 0;
}

static const struct dl_reduce_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), reduce);
}

static int require_float(const char *fn, const dl_tensor *t) {
  if (dl_dtype_is_float(t->dtype)) return 0;
  dl_error_set("%s: input dtype must be floating point, got %s", fn, dl_dtype_name(t->dtype));
  return -1;
}

/* reductions without an identity (max, min, ...) need a non-empty extent */
static int require_nonempty(const char *fn, const dl_tensor *t, const rshape *rs, bool all_dims) {
  if (rs->nred > 0 || rs->nout == 0) return 0;
  if (all_dims) {
    dl_error_set("%s: expected a non-empty tensor; specify the reduction dim", fn);
    return -1;
  }
  for (int d = 0; d < t->ndim; d++)
    if (rs->red[d] && t->shape[d] == 0) {
      dl_error_set("%s: expected reduction dim %d to have non-zero size", fn, d + 1);
      return -1;
    }
  dl_error_set("%s: expected a non-empty tensor", fn);
  return -1;
}

/* the final shape: out itself under keepdim, else a view without the
 * reduced dims (out is consumed) */
static dl_tensor *finish(dl_tensor *out, const rshape *rs, bool keepdim) {
  if (keepdim || !out) return out;
  dl_tensor *v = dl_tensor_view(out, rs->out_shape, rs->out_ndim);
  dl_tensor_release(out);
  return v;
}

static dl_tensor *new_keep(const dl_tensor *t, const rshape *rs, dl_dtype dt) {
  return dl_tensor_empty(rs->keep_shape, t->ndim, dt, dl_tensor_device(t));
}

/* one backend call into a fresh keepdim-shaped output */
static dl_tensor *run(const char *fn, const dl_tensor *t, const rshape *rs, dl_reduce_op op, dl_dtype dt,
                      const dl_tensor *aux, double p, double correction, bool take_sqrt) {
  const struct dl_reduce_kernels *k = kernels_of(fn, t);
  if (!k) return NULL;
  dl_tensor *out = new_keep(t, rs, dt);
  if (!out) return NULL;
  dl_reduce_call c = {out, NULL, t, aux, op, p, correction, take_sqrt};
  return dl_kernel_result(fn, out, k->reduce(&c));
}

static dl_tensor *simple(const char *fn, const dl_tensor *t, const int *dims, int ndims, bool keepdim,
                         dl_reduce_op op, dl_dtype dt) {
  rshape rs;
  if (rshape_init(fn, t, dims, ndims, keepdim, &rs)) return NULL;
  return finish(run(fn, t, &rs, op, dt, NULL, 0, 0, false), &rs, keepdim);
}

/* sum and prod widen integers and bools to int64, as PyTorch */
static dl_dtype acc_dtype(dl_dtype dt) { return dl_dtype_is_float(dt) ? dt : DL_INT64; }

dl_tensor *dl_op_sum(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return simple("sum", t, dims, ndims, keepdim, DL_REDUCE_SUM, acc_dtype(t->dtype));
}

dl_tensor *dl_op_prod(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return simple("prod", t, dims, ndims, keepdim, DL_REDUCE_PROD, acc_dtype(t->dtype));
}

dl_tensor *dl_op_mean(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  if (require_float("mean", t)) return NULL;
  return simple("mean", t, dims, ndims, keepdim, DL_REDUCE_MEAN, t->dtype);
}

dl_tensor *dl_op_all(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return simple("all", t, dims, ndims, keepdim, DL_REDUCE_ALL, DL_BOOL);
}

dl_tensor *dl_op_any(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return simple("any", t, dims, ndims, keepdim, DL_REDUCE_ANY, DL_BOOL);
}

dl_tensor *dl_op_count_nonzero(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return simple("count_nonzero", t, dims, ndims, keepdim, DL_REDUCE_COUNT_NONZERO, DL_INT64);
}

static dl_tensor *extreme(const char *fn, const dl_tensor *t, const int *dims, int ndims, bool keepdim,
                          dl_reduce_op op) {
  rshape rs;
  if (rshape_init(fn, t, dims, ndims, keepdim, &rs) || require_nonempty(fn, t, &rs, ndims == 0)) return NULL;
  return finish(run(fn, t, &rs, op, t->dtype, NULL, 0, 0, false), &rs, keepdim);
}

dl_tensor *dl_op_amax(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return extreme("amax", t, dims, ndims, keepdim, DL_REDUCE_MAX);
}

dl_tensor *dl_op_amin(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  return extreme("amin", t, dims, ndims, keepdim, DL_REDUCE_MIN);
}

dl_tensor *dl_op_max(const dl_tensor *t) { return extreme("max", t, NULL, 0, false, DL_REDUCE_MAX); }
dl_tensor *dl_op_min(const dl_tensor *t) { return extreme("min", t, NULL, 0, false, DL_REDUCE_MIN); }

/* ---- var, std ---- */

static dl_tensor *var_std(const char *fn, const dl_tensor *t, const int *dims, int ndims, double correction,
                          bool keepdim, bool take_sqrt) {
  if (require_float(fn, t)) return NULL;
  if (!isfinite(correction)) {
    dl_error_set("%s: correction must be finite, got %g", fn, correction);
    return NULL;
  }
  rshape rs;
  if (rshape_init(fn, t, dims, ndims, keepdim, &rs)) return NULL;
  /* two passes: the mean kept in float64, then centred sums of squares */
  dl_tensor *mean = run(fn, t, &rs, DL_REDUCE_MEAN, DL_FLOAT64, NULL, 0, 0, false);
  if (!mean) return NULL;
  dl_tensor *out = run(fn, t, &rs, DL_REDUCE_VAR, t->dtype, mean, 0, correction, take_sqrt);
  dl_tensor_release(mean);
  return finish(out, &rs, keepdim);
}

dl_tensor *dl_op_var(const dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim) {
  return var_std("var", t, dims, ndims, correction, keepdim, false);
}

dl_tensor *dl_op_std(const dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim) {
  return var_std("std", t, dims, ndims, correction, keepdim, true);
}

/* ---- norm, logsumexp ---- */

dl_tensor *dl_op_norm(const dl_tensor *t, double p, const int *dims, int ndims, bool keepdim) {
  if (require_float("norm", t)) return NULL;
  if (isnan(p)) {
    dl_error_set("norm: p must be a number, got nan");
    return NULL;
  }
  rshape rs;
  if (rshape_init("norm", t, dims, ndims, keepdim, &rs)) return NULL;
  if (p == -INFINITY && rs.nred == 0 && rs.nout > 0) {
    dl_error_set("norm: the -inf norm of an empty tensor is undefined (min has no identity)");
    return NULL;
  }
  return finish(run("norm", t, &rs, DL_REDUCE_NORM, t->dtype, NULL, p, 0, false), &rs, keepdim);
}

dl_tensor *dl_op_logsumexp(const dl_tensor *t, const int *dims, int ndims, bool keepdim) {
  if (require_float("logsumexp", t)) return NULL;
  rshape rs;
  if (rshape_init("logsumexp", t, dims, ndims, keepdim, &rs)) return NULL;
  dl_tensor *out;
  if (rs.nred == 0) { /* log(0) */
    out = dl_tensor_full(rs.keep_shape, t->ndim, t->dtype, dl_tensor_device(t), dl_scalar_f(-INFINITY));
  } else {
    /* exp(x - max) never overflows; the max comes back added */
    dl_tensor *mx = run("logsumexp", t, &rs, DL_REDUCE_MAX, t->dtype, NULL, 0, 0, false);
    if (!mx) return NULL;
    out = run("logsumexp", t, &rs, DL_REDUCE_LOGSUMEXP, t->dtype, mx, 0, 0, false);
    dl_tensor_release(mx);
  }
  return finish(out, &rs, keepdim);
}

/* ---- max/min along a dim, argmax/argmin ---- */

/* values and indices along one dim, in the keepdim layout */
static int arg_reduce(const char *fn, const dl_tensor *t, int dim, bool keepdim, dl_reduce_op op,
                      dl_tensor **values, dl_tensor **indices) {
  *values = *indices = NULL;
  rshape rs;
  if (rshape_init(fn, t, &dim, 1, keepdim, &rs) || require_nonempty(fn, t, &rs, false)) return -1;
  const struct dl_reduce_kernels *k = kernels_of(fn, t);
  if (!k) return -1;
  dl_tensor *v = new_keep(t, &rs, t->dtype);
  dl_tensor *i = v ? new_keep(t, &rs, DL_INT64) : NULL;
  if (!i) {
    if (v) dl_tensor_release(v);
    return -1;
  }
  dl_reduce_call c = {v, i, t, NULL, op, 0, 0, false};
  if (dl_kernel_status(fn, k->reduce(&c))) {
    dl_tensor_release(v);
    dl_tensor_release(i);
    return -1;
  }
  *values = finish(v, &rs, keepdim);
  *indices = finish(i, &rs, keepdim);
  if (!*values || !*indices) {
    if (*values) dl_tensor_release(*values);
    if (*indices) dl_tensor_release(*indices);
    *values = *indices = NULL;
    return -1;
  }
  return 0;
}

int dl_op_max_dim(const dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices) {
  return arg_reduce("max", t, dim, keepdim, DL_REDUCE_MAX, values, indices);
}

int dl_op_min_dim(const dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices) {
  return arg_reduce("min", t, dim, keepdim, DL_REDUCE_MIN, values, indices);
}

static dl_tensor *arg_only(const char *fn, const dl_tensor *t, int dim, bool keepdim, dl_reduce_op op) {
  dl_tensor *v, *i;
  if (dim != DL_ALL_DIMS) {
    if (arg_reduce(fn, t, dim, keepdim, op, &v, &i)) return NULL;
    dl_tensor_release(v);
    return i;
  }
  if (t->numel == 0) {
    dl_error_set("%s: expected a non-empty tensor; specify the reduction dim", fn);
    return NULL;
  }
  /* the flat C-order index: reduce a 1-D view of a contiguous copy */
  dl_tensor *c = dl_tensor_contiguous((dl_tensor *)t);
  if (!c) return NULL;
  int64_t n = t->numel;
  dl_tensor *flat = dl_tensor_view(c, &n, 1);
  dl_tensor_release(c);
  if (!flat) return NULL;
  int rc = arg_reduce(fn, flat, 0, false, op, &v, &i);
  dl_tensor_release(flat);
  if (rc) return NULL;
  dl_tensor_release(v);
  if (!keepdim) return i;
  int64_t ones[DL_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) ones[d] = 1;
  dl_tensor *r = dl_tensor_view(i, ones, t->ndim);
  dl_tensor_release(i);
  return r;
}

dl_tensor *dl_op_argmax(const dl_tensor *t, int dim, bool keepdim) {
  return arg_only("argmax", t, dim, keepdim, DL_REDUCE_MAX);
}

dl_tensor *dl_op_argmin(const dl_tensor *t, int dim, bool keepdim) {
  return arg_only("argmin", t, dim, keepdim, DL_REDUCE_MIN);
}

/* ---- scans ---- */

static dl_tensor *scan(const char *fn, const dl_tensor *t, int dim, dl_scan_op op) {
  int d = dl_wrap_dim(fn, dim, t->ndim);
  if (d < 0) return NULL;
  const struct dl_reduce_kernels *k = kernels_of(fn, t);
  if (!k) return NULL;
  dl_tensor *out = dl_tensor_empty(t->shape, t->ndim, acc_dtype(t->dtype), dl_tensor_device(t));
  if (!out || out->numel == 0) return out;
  if (t->ndim == 0) { /* one element: the running value is the value */
    if (dl_tensor_copy_(out, t)) {
      dl_tensor_release(out);
      return NULL;
    }
    return out;
  }
  return dl_kernel_result(fn, out, k->scan(out, t, d, op));
}

dl_tensor *dl_op_cumsum(const dl_tensor *t, int dim) { return scan("cumsum", t, dim, DL_SCAN_SUM); }
dl_tensor *dl_op_cumprod(const dl_tensor *t, int dim) { return scan("cumprod", t, dim, DL_SCAN_PROD); }
