/* dl_tensor.h — refcounted storage and strided tensor views.
 * Conventions of the engine's C API: dims and scalar indices are 0-based (C);
 * index *tensors* (argmax results, gather/index_select inputs, sort indices)
 * hold 1-based int64 values, dlua's data convention, as Torch7's TH did. */
#ifndef DL_TENSOR_H
#define DL_TENSOR_H

#include "dl_core.h"

typedef struct dl_storage {
  int64_t refcount;
  void *data;
  size_t nbytes;
  dl_device device;
  /* Bumped by every in-place write; shared by all views (autograd checks it). */
  uint32_t version;
  /* Memory owned by a host (dl_tensor_from_buffer): released by this callback
   * instead of the allocator; borrowed memory (a NULL callback) is never
   * released by dlua. */
  void (*release)(void *data, void *ctx);
  void *release_ctx;
  bool borrowed;
} dl_storage;

struct dl_node;

typedef struct dl_tensor {
  int64_t refcount;
  dl_storage *storage;
  int64_t offset; /* elements */
  int64_t numel;
  dl_dtype dtype;
  int ndim;
  int64_t shape[DL_MAX_DIMS];
  int64_t stride[DL_MAX_DIMS]; /* elements; 0 on broadcast dims */
  /* autograd state, owned by the autograd engine */
  bool requires_grad;
  bool retains_grad;
  int output_nr;
  struct dl_tensor *grad;
  struct dl_node *grad_fn;
  struct dl_tensor *tangent; /* forward mode */
  /* called when backward has finished this leaf's .grad (not owned) */
  struct dl_grad_hook *grad_hook;
  /* the tensor a recorded view was taken from (owns it), so in-place writes
   * through the view can rebase the base's history */
  struct dl_tensor *base;
  /* the storage's version when this view's history was last derived from
   * base's; a later write to the storage makes it derive again (autograd) */
  uint32_t view_version;
} dl_tensor;

/* ---- lifetime ---- */
dl_tensor *dl_tensor_empty(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
dl_tensor *dl_tensor_zeros(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev);
dl_tensor *dl_tensor_full(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev, dl_scalar v);
dl_tensor *dl_tensor_empty_like(const dl_tensor *t);
/* 0-d tensor holding v */
dl_tensor *dl_tensor_scalar(dl_scalar v, dl_dtype dt, dl_device dev);
/* Wraps host memory without copying; release(data, ctx) runs when the last
 * view is gone. A NULL release means the host keeps the buffer: dlua never
 * frees it, and the host must keep it alive while any view exists. strides
 * may be NULL (C order). */
dl_tensor *dl_tensor_from_buffer(void *data, const int64_t *shape, int ndim, const int64_t *strides,
                                 dl_dtype dt, void (*release)(void *data, void *ctx), void *ctx);
dl_tensor *dl_tensor_retain(dl_tensor *t);
void dl_tensor_release(dl_tensor *t);

/* ---- inspection ---- */
static inline void *dl_tensor_data(const dl_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)dl_dtype_size(t->dtype);
}
/* C-order contiguous (dims of size 1 may have any stride); inline, since
 * every op's fast path asks */
static inline bool dl_tensor_is_contiguous(const dl_tensor *t) {
  int64_t st = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != st) return false;
    st *= t->shape[d];
  }
  return true;
}
static inline dl_device dl_tensor_device(const dl_tensor *t) { return t->storage->device; }
static inline void dl_tensor_bump_version(dl_tensor *t) { t->storage->version++; }
/* "[2,3]" */
const char *dl_tensor_shape_str(const dl_tensor *t, char *buf, size_t n);
bool dl_tensor_same_shape(const dl_tensor *a, const dl_tensor *b);
/* the first element t reaches in its storage and how many it spans (0 for
 * an empty tensor) */
void dl_tensor_reach(const dl_tensor *t, int64_t *lo, int64_t *span);
/* a and b are the same elements of one storage in the same order */
bool dl_tensor_same_view(const dl_tensor *a, const dl_tensor *b);
/* Normalises a possibly negative 0-based dim against ndim; -1 if out of range
 * (with an error naming fn). */
int dl_wrap_dim(const char *fn, int64_t dim, int ndim);
/* The element count of shape into *numel, or -1 with an error naming fn
 * (more than DL_MAX_DIMS dims, a negative size, or sizes whose product,
 * zeros counted as one, would overflow a stride or byte offset). Every
 * shape a tensor is made with passes through it. */
int dl_shape_numel(const char *fn, const int64_t *shape, int ndim, int64_t *numel);
/* Reads/writes one element as a scalar; index is 0-based per dim. CPU only. */
dl_scalar dl_tensor_get(const dl_tensor *t, const int64_t *index);
void dl_tensor_set(dl_tensor *t, const int64_t *index, dl_scalar v);
/* Element at linear C-order position i (any layout). CPU only. */
dl_scalar dl_tensor_get_linear(const dl_tensor *t, int64_t i);
/* Writes element i of a fresh contiguous CPU tensor that is being
 * initialised: no version bump (nothing can have saved it yet). */
void dl_tensor_init_linear(dl_tensor *t, int64_t i, dl_scalar v);
/* One element on any device (a device sync for a GPU tensor); index is
 * 0-based per dim and in range. write bumps the version. 0 ok, -1 error. */
int dl_tensor_read(const dl_tensor *t, const int64_t *index, dl_scalar *out);
int dl_tensor_write(dl_tensor *t, const int64_t *index, dl_scalar v);

/* ---- views (share storage; 0-based dims) ---- */
/* shape may hold one -1 to infer. Fails if the strides do not allow a view. */
dl_tensor *dl_tensor_view(dl_tensor *t, const int64_t *shape, int ndim);
/* A view when possible, otherwise a contiguous copy. */
dl_tensor *dl_tensor_reshape(dl_tensor *t, const int64_t *shape, int ndim);
dl_tensor *dl_tensor_transpose(dl_tensor *t, int d0, int d1);
dl_tensor *dl_tensor_permute(dl_tensor *t, const int *perm, int n);
dl_tensor *dl_tensor_narrow(dl_tensor *t, int dim, int64_t start, int64_t len);
dl_tensor *dl_tensor_select(dl_tensor *t, int dim, int64_t index);
/* dim == DL_ALL_DIMS: every size-1 dim */
#define DL_ALL_DIMS (-1000)
dl_tensor *dl_tensor_squeeze(dl_tensor *t, int dim);
dl_tensor *dl_tensor_unsqueeze(dl_tensor *t, int dim);
/* NumPy rules; -1 keeps a size */
dl_tensor *dl_tensor_expand(dl_tensor *t, const int64_t *shape, int ndim);
dl_tensor *dl_tensor_flatten(dl_tensor *t, int start, int end);
dl_tensor *dl_tensor_as_strided(dl_tensor *t, const int64_t *shape, const int64_t *stride, int ndim,
                                int64_t offset);
/* Sliding windows of size `size` every `step` along dim, as a new last dim. */
dl_tensor *dl_tensor_unfold(dl_tensor *t, int dim, int64_t size, int64_t step);
/* Shallow copy of the view with fresh autograd state (shares storage). */
dl_tensor *dl_tensor_alias(dl_tensor *t);

/* ---- copies ---- */
/* dst[...] = src broadcast to dst's shape, converting dtype. Same device. */
int dl_tensor_copy_(dl_tensor *dst, const dl_tensor *src);
dl_tensor *dl_tensor_clone(const dl_tensor *t);
/* t itself (retained) when already contiguous */
dl_tensor *dl_tensor_contiguous(dl_tensor *t);
/* t itself (retained) when already of dtype dt */
dl_tensor *dl_tensor_to_dtype(dl_tensor *t, dl_dtype dt);
dl_tensor *dl_tensor_to_device(dl_tensor *t, dl_device dev);
int dl_tensor_fill_(dl_tensor *t, dl_scalar v);
/* t becomes a view of src's storage with src's dtype, shape and strides
 * (PyTorch's `t.data = src`): the same tensor object, other contents. */
void dl_tensor_set_(dl_tensor *t, const dl_tensor *src);

/* Broadcast shape of a and b into out (ndim into *out_ndim); -1 with an
 * error "fn: shapes [..] and [..] cannot be broadcast". */
int dl_broadcast_shapes(const char *fn, const int64_t *a, int an, const int64_t *b, int bn, int64_t *out,
                        int *out_ndim);
/* Checks that operands share a device; error names fn and both devices. */
int dl_check_same_device(const char *fn, const dl_tensor *a, const dl_tensor *b);

#endif
