/* dl_index.h — indexing, joining and sorting: front-ends and the kernel table.
 *
 * Index tensors are int64 and hold 1-based values (dlua's data convention);
 * dims in this C API are 0-based (negative counts from the end). Front-ends
 * check every argument, including the range of every index value (through
 * the `minmax` kernel, so a device backend never sees a bad index), allocate
 * outputs and call the backend. gather/scatter_add and index_select/index_add
 * are each other's backward, so they stay general (any strides, any dim). */
#ifndef DL_INDEX_H
#define DL_INDEX_H

#include "../dl_backend.h"

/* How scatter writes into self. */
typedef enum {
  DL_SCATTER_SET = 0, /* self[i] = src (or value) */
  DL_SCATTER_ADD = 1, /* self[i] += value * src (or += value when src is NULL) */
} dl_scatter_mode;

/* One backend's kernels. Tensors may live on the device and have any
 * strides; every shape, dtype and index value has been checked. */
struct dl_index_kernels {
  /* min and max of an int64 tensor with at least one element (host values) */
  int (*minmax)(const dl_tensor *idx, int64_t *mn, int64_t *mx);
  /* number of elements != 0 (NaN counts as nonzero); -1 with an error
   * when it failed */
  int64_t (*count_nonzero)(const dl_tensor *t);
  /* out = src with dim `dim` picked by the 1-D index idx:
   * out[.., j, ..] = src[.., idx[j] - 1, ..]; out and src share dtype */
  int (*index_select)(dl_tensor *out, const dl_tensor *src, int dim, const dl_tensor *idx);
  /* out[i] = src[i with coordinate `dim` replaced by idx[i] - 1];
   * out has idx's shape, src's dtype; src is at least as large elsewhere */
  int (*gather)(dl_tensor *out, const dl_tensor *src, int dim, const dl_tensor *idx);
  /* self[i with coordinate `dim` replaced by idx[i] - 1] <- src[i] (or value
   * when src is NULL), per mode; src has idx's shape and self's dtype.
   * Duplicate indices accumulate correctly under DL_SCATTER_ADD. */
  int (*scatter)(dl_tensor *self, int dim, const dl_tensor *idx, const dl_tensor *src, dl_scalar value,
                  dl_scatter_mode mode);
  /* out (1-D, count elements) = src where mask (bool), in C order; src and
   * mask share a shape (broadcast views allowed) */
  int (*masked_select)(dl_tensor *out, const dl_tensor *src, const dl_tensor *mask);
  /* out [count, ndim] int64 = 1-based coordinates of t's nonzero elements */
  int (*nonzero)(dl_tensor *out, const dl_tensor *t);
  /* stable sort of each slice along dim; NaN is the largest value.
   * values/indices have src's shape. 0 ok, -1 with dl_error_set. */
  int (*sort)(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, bool descending);
  /* the k largest (or smallest) of each slice along dim, best first when
   * sorted; outputs have src's shape with size k at dim. 0 ok, -1 on error. */
  int (*topk)(dl_tensor *values, dl_tensor *indices, const dl_tensor *src, int dim, int64_t k, bool largest,
              bool sorted);
  /* out = src reversed along every dim whose bit is set in dims */
  int (*flip)(dl_tensor *out, const dl_tensor *src, uint32_t dims);
};

extern const struct dl_index_kernels dl_cpu_index;

/* ---- joining ---- */
/* Concatenates n tensors along dim (PyTorch promotion; 1-D empty tensors
 * are skipped). The inputs are borrowed. */
dl_tensor *dl_op_cat(dl_tensor *const *ts, int n, int dim);
/* Stacks n equal-shaped tensors along a new dim (0..ndim). */
dl_tensor *dl_op_stack(dl_tensor *const *ts, int n, int dim);

/* ---- gathering and scattering (idx: int64, 1-based) ---- */
dl_tensor *dl_op_index_select(dl_tensor *t, int dim, dl_tensor *idx);
dl_tensor *dl_op_gather(dl_tensor *t, int dim, dl_tensor *idx);
/* In place on self; 0 ok, -1 with an error. */
int dl_op_scatter_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
int dl_op_scatter_value_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value);
int dl_op_scatter_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
/* self[.., idx[j], ..] += alpha * src[.., j, ..] (idx 1-D) */
int dl_op_index_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar alpha);
int dl_op_index_copy_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src);
int dl_op_index_fill_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value);
/* 1-D: the elements of t where mask (bool, broadcastable with t) is true */
dl_tensor *dl_op_masked_select(dl_tensor *t, dl_tensor *mask);
/* [count, ndim] int64 of 1-based coordinates */
dl_tensor *dl_op_nonzero(dl_tensor *t);
/* int64 [..., num_classes] from 1-based int64 labels; num_classes -1 infers
 * the largest label */
dl_tensor *dl_op_one_hot(dl_tensor *labels, int64_t num_classes);

/* ---- reordering ---- */
dl_tensor *dl_op_flip(dl_tensor *t, const int *dims, int n);
/* Rolls by shifts[i] along dims[i]; ndims == 0 rolls the flattened tensor
 * by shifts[0] (nshifts must then be 1). */
dl_tensor *dl_op_roll(dl_tensor *t, const int64_t *shifts, int nshifts, const int *dims, int ndims);
/* triu (upper) / tril of the last two dims: column - row >= k (<= k) kept,
 * the rest zero */
dl_tensor *dl_op_tri(dl_tensor *t, int64_t k, bool upper);

/* ---- sorting (dl_sort.c) ---- */
/* Stable; NaN sorts last ascending, first descending. 0 ok, -1 on error;
 * *values and *indices are new references. */
int dl_op_sort(dl_tensor *t, int dim, bool descending, dl_tensor **values, dl_tensor **indices);
dl_tensor *dl_op_argsort(dl_tensor *t, int dim, bool descending);
int dl_op_topk(dl_tensor *t, int64_t k, int dim, bool largest, bool sorted, dl_tensor **values,
               dl_tensor **indices);

#endif
