/* dl_reduce.h — reductions (sum, mean, prod, var, std, norm, logsumexp,
 * max/min with indices, amax/amin, argmax/argmin, all, any, count_nonzero)
 * and scans (cumsum, cumprod).
 *
 * Dims are 0-based (negative counts from the end). A dims list with ndims == 0
 * reduces every dim. Index tensors (max_dim's indices, argmax) hold 1-based
 * int64 values. Every function returns a new tensor, or NULL with an error
 * that starts with the op's name. */
#ifndef DL_OPS_REDUCE_H
#define DL_OPS_REDUCE_H

#include "../dl_backend.h"

/* ---- the kernel interface ---- */

typedef enum {
  DL_REDUCE_SUM,
  DL_REDUCE_MEAN,
  DL_REDUCE_PROD,
  DL_REDUCE_MAX, /* NaN propagates; with indices: first occurrence */
  DL_REDUCE_MIN,
  DL_REDUCE_ALL,
  DL_REDUCE_ANY,
  DL_REDUCE_COUNT_NONZERO,
  DL_REDUCE_NORM,      /* (sum |x|^p)^(1/p); p = 0, 1, 2, inf, -inf or any real */
  DL_REDUCE_VAR,       /* aux: the mean (float64); sum((x - mean)^2) / (n - correction) */
  DL_REDUCE_LOGSUMEXP, /* aux: the max; log(sum(exp(x - max))) + max */
  DL_REDUCE_NOPS
} dl_reduce_op;

typedef enum { DL_SCAN_SUM, DL_SCAN_PROD } dl_scan_op;

/* One reduction. `out` has src's ndim, size 1 on every reduced dim and src's
 * size on every other dim (the keepdim layout; any strides, dtype picked by
 * the front-end). A dim is reduced when out's size is 1 and src's is not. */
typedef struct {
  dl_tensor *out;
  dl_tensor *indices; /* MAX/MIN over one dim: int64, out's shape, 1-based; else NULL */
  const dl_tensor *src;
  const dl_tensor *aux; /* VAR, LOGSUMEXP: out's shape; else NULL */
  dl_reduce_op op;
  double p;          /* NORM */
  double correction; /* VAR */
  bool take_sqrt;    /* VAR: the standard deviation */
} dl_reduce_call;

struct dl_reduce_kernels {
  int (*reduce)(const dl_reduce_call *c);
  /* dst: src's shape (dtype picked by the front-end); running op along dim */
  int (*scan)(dl_tensor *dst, const dl_tensor *src, int dim, dl_scan_op op);
};

/* ---- front-ends ---- */

dl_tensor *dl_op_sum(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_mean(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_prod(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
/* correction 1 is the unbiased estimate, 0 the population one */
dl_tensor *dl_op_var(const dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim);
dl_tensor *dl_op_std(const dl_tensor *t, const int *dims, int ndims, double correction, bool keepdim);
dl_tensor *dl_op_norm(const dl_tensor *t, double p, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_logsumexp(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_amax(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_amin(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_all(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_any(const dl_tensor *t, const int *dims, int ndims, bool keepdim);
dl_tensor *dl_op_count_nonzero(const dl_tensor *t, const int *dims, int ndims, bool keepdim);

/* over every element: a 0-d tensor of t's dtype (error when t is empty) */
dl_tensor *dl_op_max(const dl_tensor *t);
dl_tensor *dl_op_min(const dl_tensor *t);
/* along dim: values (t's dtype) and 1-based int64 indices; 0 ok, -1 error */
int dl_op_max_dim(const dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices);
int dl_op_min_dim(const dl_tensor *t, int dim, bool keepdim, dl_tensor **values, dl_tensor **indices);
/* dim == DL_ALL_DIMS: the 1-based flat index (C order) as a 0-d int64 */
dl_tensor *dl_op_argmax(const dl_tensor *t, int dim, bool keepdim);
dl_tensor *dl_op_argmin(const dl_tensor *t, int dim, bool keepdim);

dl_tensor *dl_op_cumsum(const dl_tensor *t, int dim);
dl_tensor *dl_op_cumprod(const dl_tensor *t, int dim);

#endif
