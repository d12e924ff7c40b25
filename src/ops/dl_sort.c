/* dl_sort.c — front-ends of sort, argsort and topk. */
#include "dl_index.h"

#include "../dl_backend.h"

static const struct dl_index_kernels *sort_kernels(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), index);
}

/* values and indices of shape `shape`; a 0-d input is handled as [1] by the
 * kernel through 1-D views of all three. */
static int run_slices(const char *fn, dl_tensor *t, int dim, int64_t k, bool topk, bool flag, bool sorted,
                      dl_tensor **values, dl_tensor **indices) {
  const struct dl_index_kernels *kt = sort_kernels(fn, t);
  if (!kt) return -1;
  int d = dl_wrap_dim(fn, dim, t->ndim);
  if (d < 0) return -1;
  int64_t size = t->ndim ? t->shape[d] : 1;
  if (topk && (k < 0 || k > size)) {
    dl_error_set("%s: k %lld out of range for dim %d of size %lld", fn, (long long)k, d + 1, (long long)size);
    return -1;
  }
  int64_t shape[DL_MAX_DIMS];
  for (int j = 0; j < t->ndim; j++) shape[j] = t->shape[j];
  if (t->ndim) shape[d] = topk ? k : size;
  /* a 0-d input with k == 0 gives [0], as PyTorch */
  int ndim = t->ndim == 0 && topk && k == 0 ? 1 : t->ndim;
  if (ndim == 1 && t->ndim == 0) shape[0] = 0;
  dl_tensor *v = dl_tensor_empty(shape, ndim, t->dtype, dl_tensor_device(t));
  dl_tensor *ix = dl_tensor_empty(shape, ndim, DL_INT64, dl_tensor_device(t));
  dl_tensor *v1 = NULL, *i1 = NULL, *s1 = NULL;
  int rc = -1;
  if (!v || !ix) goto done;
  rc = 0;
  if (v->numel == 0) goto done;
  int64_t one = 1;
  v1 = t->ndim ? dl_tensor_retain(v) : dl_tensor_view(v, &one, 1);
  i1 = t->ndim ? dl_tensor_retain(ix) : dl_tensor_view(ix, &one, 1);
  s1 = t->ndim ? dl_tensor_retain(t) : dl_tensor_view(t, &one, 1);
  if (!v1 || !i1 || !s1) rc = -1;
  else if (topk) rc = kt->topk(v1, i1, s1, d, k, flag, sorted);
  else rc = kt->sort(v1, i1, s1, d, flag);
done:
  dl_tensor_release(v1);
  dl_tensor_release(i1);
  dl_tensor_release(s1);
  if (rc) {
    dl_tensor_release(v);
    dl_tensor_release(ix);
    return -1;
  }
  *values = v;
  *indices = ix;
  return 0;
}

int dl_op_sort(dl_tensor *t, int dim, bool descending, dl_tensor **values, dl_tensor **indices) {
  return run_slices("sort", t, dim, 0, false, descending, true, values, indices);
}

dl_tensor *dl_op_argsort(dl_tensor *t, int dim, bool descending) {
  dl_tensor *v, *ix;
  if (run_slices("argsort", t, dim, 0, false, descending, true, &v, &ix)) return NULL;
  dl_tensor_release(v);
  return ix;
}

int dl_op_topk(dl_tensor *t, int64_t k, int dim, bool largest, bool sorted, dl_tensor **values,
               dl_tensor **indices) {
  return run_slices("topk", t, dim, k, true, largest, sorted, values, indices);
}
