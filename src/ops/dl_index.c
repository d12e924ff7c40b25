/* dl_index.c — front-ends of joining, gathering/scattering and reordering.
 * Each checks shapes, dtypes, devices and index ranges, allocates the output
 * and calls the device's index kernels; none touches element memory. */
#include "dl_index.h"

#include "../dl_backend.h"
#include "dl_create.h"
#include "dl_ewise.h"

#include <math.h>

#define SHAPE_BUF 160

/* The device's index kernels, or NULL with an error naming fn. */
static const struct dl_index_kernels *kernels_of(const char *fn, const dl_tensor *t) {
  return DL_KERNELS(fn, dl_tensor_device(t), index);
}

/* An index operand: int64 on t's device. */
static int check_index_tensor(const char *fn, const dl_tensor *idx, const dl_tensor *t) {
  if (idx->dtype != DL_INT64) {
    dl_error_set("%s: index must be an int64 tensor, got %s", fn, dl_dtype_name(idx->dtype));
    return -1;
  }
  return dl_check_same_device(fn, t, idx);
}

/* Every value of idx in 1..size (one pass on the device). */
static int check_index_range(const char *fn, const struct dl_index_kernels *k, const dl_tensor *idx, int dim,
                             int64_t size) {
  if (idx->numel == 0) return 0;
  int64_t mn, mx;
  if (dl_kernel_status(fn, k->minmax(idx, &mn, &mx))) return -1;
  if (mn >= 1 && mx <= size) return 0;
  dl_error_set("%s: index %lld out of range for dim %d of size %lld", fn, (long long)(mn < 1 ? mn : mx), dim + 1,
               (long long)size);
  return -1;
}

/* A 0-d tensor as a 1-element 1-D view (new reference). */
static dl_tensor *as_1d(dl_tensor *t) {
  if (t->ndim > 0) return dl_tensor_retain(t);
  int64_t one = 1;
  return dl_tensor_view(t, &one, 1);
}

/* ---- cat / stack ---- */

dl_tensor *dl_op_cat(dl_tensor *const *ts, int n, int dim) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  if (n <= 0) {
    dl_error_set("cat: expected a non-empty list of tensors");
    return NULL;
  }
  const dl_tensor *ref = NULL;
  dl_dtype dt = ts[0]->dtype;
  for (int i = 0; i < n; i++) {
    const dl_tensor *t = ts[i];
    if (i > 0) {
      dt = dl_dtype_promote(dt, t->dtype);
      if (dl_check_same_device("cat", ts[0], t)) return NULL;
    }
    if (t->ndim == 0) {
      dl_error_set("cat: zero-dimensional tensor (at position %d) cannot be concatenated", i + 1);
      return NULL;
    }
    if (t->ndim == 1 && t->numel == 0) continue; /* legacy empty: skipped */
    if (!ref) ref = t;
  }
  if (!ref) { /* only empty 1-D tensors */
    int64_t zero = 0;
    return dl_tensor_empty(&zero, 1, dt, dl_tensor_device(ts[0]));
  }
  int d = dl_wrap_dim("cat", dim, ref->ndim);
  if (d < 0) return NULL;
  int64_t shape[DL_MAX_DIMS];
  for (int k = 0; k < ref->ndim; k++) shape[k] = ref->shape[k];
  shape[d] = 0;
  for (int i = 0; i < n; i++) {
    const dl_tensor *t = ts[i];
    if (t->ndim == 1 && t->numel == 0) continue;
    bool ok = t->ndim == ref->ndim;
    for (int k = 0; ok && k < t->ndim; k++)
      if (k != d && t->shape[k] != ref->shape[k]) ok = false;
    if (!ok) {
      dl_error_set("cat: shapes %s and %s do not match outside dim %d", dl_tensor_shape_str(ref, b1, sizeof b1),
                   dl_tensor_shape_str(t, b2, sizeof b2), d + 1);
      return NULL;
    }
    shape[d] += t->shape[d];
  }
  dl_tensor *out = dl_tensor_empty(shape, ref->ndim, dt, dl_tensor_device(ref));
  if (!out) return NULL;
  /* each input is copied into its slab; contiguous slabs along dim 1 are
   * one memcpy each, others go through the strided copy kernel */
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    dl_tensor *t = ts[i];
    if ((t->ndim == 1 && t->numel == 0) || t->shape[d] == 0) continue;
    dl_tensor *slab = dl_tensor_narrow(out, d, off, t->shape[d]);
    int rc = slab ? dl_tensor_copy_(slab, t) : -1;
    dl_tensor_release(slab);
    if (rc) {
      dl_tensor_release(out);
      return NULL;
    }
    off += t->shape[d];
  }
  return out;
}

dl_tensor *dl_op_stack(dl_tensor *const *ts, int n, int dim) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  if (n <= 0) {
    dl_error_set("stack: expected a non-empty list of tensors");
    return NULL;
  }
  const dl_tensor *ref = ts[0];
  dl_dtype dt = ref->dtype;
  for (int i = 1; i < n; i++) {
    if (!dl_tensor_same_shape(ref, ts[i])) {
      dl_error_set("stack: expects tensors of equal shape, got %s at entry 1 and %s at entry %d",
                   dl_tensor_shape_str(ref, b1, sizeof b1), dl_tensor_shape_str(ts[i], b2, sizeof b2), i + 1);
      return NULL;
    }
    if (dl_check_same_device("stack", ref, ts[i])) return NULL;
    dt = dl_dtype_promote(dt, ts[i]->dtype);
  }
  if (ref->ndim + 1 > DL_MAX_DIMS) {
    dl_error_set("stack: at most %d dims", DL_MAX_DIMS);
    return NULL;
  }
  int d = dl_wrap_dim("stack", dim, ref->ndim + 1);
  if (d < 0) return NULL;
  int64_t shape[DL_MAX_DIMS];
  for (int k = 0, j = 0; k <= ref->ndim; k++) shape[k] = k == d ? n : ref->shape[j++];
  dl_tensor *out = dl_tensor_empty(shape, ref->ndim + 1, dt, dl_tensor_device(ref));
  if (!out) return NULL;
  if (out->numel == 0) return out;
  for (int i = 0; i < n; i++) {
    dl_tensor *slot = dl_tensor_select(out, d, i);
    int rc = slot ? dl_tensor_copy_(slot, ts[i]) : -1;
    dl_tensor_release(slot);
    if (rc) {
      dl_tensor_release(out);
      return NULL;
    }
  }
  return out;
}

/* ---- index_select / gather ---- */

/* runs kernel fn into out (seen as at least 1-D); out is dropped (NULL)
 * when that fails, with fn's error */
static dl_tensor *select_into(const char *name, dl_tensor *out,
                              int (*fn)(dl_tensor *, const dl_tensor *, int, const dl_tensor *), const dl_tensor *src,
                              int d, const dl_tensor *ix) {
  if (!out || out->numel == 0) return out;
  dl_tensor *o1 = as_1d(out);
  int rc = o1 ? dl_kernel_status(name, fn(o1, src, d, ix)) : -1;
  dl_tensor_release(o1);
  if (rc) {
    dl_tensor_release(out);
    return NULL;
  }
  return out;
}

dl_tensor *dl_op_index_select(dl_tensor *t, int dim, dl_tensor *idx) {
  const struct dl_index_kernels *k = kernels_of("index_select", t);
  if (!k || check_index_tensor("index_select", idx, t)) return NULL;
  if (idx->ndim > 1) {
    char b[SHAPE_BUF];
    dl_error_set("index_select: index must be 1-D, got shape %s", dl_tensor_shape_str(idx, b, sizeof b));
    return NULL;
  }
  int d = dl_wrap_dim("index_select", dim, t->ndim);
  if (d < 0) return NULL;
  dl_tensor *src = as_1d(t), *ix = as_1d(idx);
  dl_tensor *out = NULL;
  if (!src || !ix || check_index_range("index_select", k, ix, d, src->shape[d])) goto done;
  int64_t shape[DL_MAX_DIMS];
  for (int j = 0; j < src->ndim; j++) shape[j] = src->shape[j];
  shape[d] = ix->numel;
  /* a 0-d input keeps its 0-d shape when the index is 0-d as well */
  int ndim = t->ndim == 0 && idx->ndim == 0 ? 0 : src->ndim;
  out = select_into("index_select", dl_tensor_empty(shape, ndim, t->dtype, dl_tensor_device(t)), k->index_select, src,
                    d, ix);
done:
  dl_tensor_release(src);
  dl_tensor_release(ix);
  return out;
}

/* idx fits t everywhere but (when skip >= 0) along dim skip */
static bool index_fits(const dl_tensor *idx, const dl_tensor *t, int skip) {
  if (idx->ndim != t->ndim) return false;
  for (int j = 0; j < idx->ndim; j++)
    if (j != skip && idx->shape[j] > t->shape[j]) return false;
  return true;
}

dl_tensor *dl_op_gather(dl_tensor *t, int dim, dl_tensor *idx) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  const struct dl_index_kernels *k = kernels_of("gather", t);
  if (!k || check_index_tensor("gather", idx, t)) return NULL;
  int d = dl_wrap_dim("gather", dim, t->ndim);
  if (d < 0) return NULL;
  dl_tensor *src = as_1d(t), *ix = as_1d(idx), *out = NULL;
  if (!src || !ix) goto done;
  if (!index_fits(ix, src, d)) {
    dl_error_set("gather: index shape %s does not fit input shape %s outside dim %d",
                 dl_tensor_shape_str(idx, b1, sizeof b1), dl_tensor_shape_str(t, b2, sizeof b2), d + 1);
    goto done;
  }
  if (check_index_range("gather", k, ix, d, src->shape[d])) goto done;
  out = select_into("gather", dl_tensor_empty(idx->shape, idx->ndim, t->dtype, dl_tensor_device(t)), k->gather, src, d,
                    ix);
done:
  dl_tensor_release(src);
  dl_tensor_release(ix);
  return out;
}

/* ---- scatter family (in place) ---- */

/* In-place writes need one memory location per element (not an expanded
 * view), or duplicate positions would race. */
static int check_writable(const char *fn, const dl_tensor *self) {
  for (int d = 0; d < self->ndim; d++)
    if (self->stride[d] == 0 && self->shape[d] > 1) {
      char b[SHAPE_BUF];
      dl_error_set("%s: self %s is an expanded view (several elements share memory); clone it first", fn,
                   dl_tensor_shape_str(self, b, sizeof b));
      return -1;
    }
  return 0;
}

static int check_same_dtype(const char *fn, const dl_tensor *self, const dl_tensor *src) {
  if (self->dtype == src->dtype) return 0;
  dl_error_set("%s: self (%s) and src (%s) must have the same dtype", fn, dl_dtype_name(self->dtype),
               dl_dtype_name(src->dtype));
  return -1;
}

/* as_1d of an index or source, copied first when it shares self's storage:
 * the kernel would read it after writing part of it (indices read from
 * overwritten memory can point anywhere), so the op reads the values it
 * had before the call. A new reference, or NULL. */
static dl_tensor *operand_1d(const dl_tensor *self, dl_tensor *t) {
  if (t->storage != self->storage) return as_1d(t);
  dl_tensor *c = dl_tensor_clone(t);
  dl_tensor *r = c ? as_1d(c) : NULL;
  dl_tensor_release(c);
  return r;
}

static int scatter_impl(const char *fn, dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar value,
                        dl_scatter_mode mode) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  const struct dl_index_kernels *k = kernels_of(fn, self);
  if (!k || check_index_tensor(fn, idx, self) || check_writable(fn, self)) return -1;
  if (src && (dl_check_same_device(fn, self, src) || check_same_dtype(fn, self, src))) return -1;
  int d = dl_wrap_dim(fn, dim, self->ndim);
  if (d < 0) return -1;
  int rc = -1;
  dl_tensor *s1 = as_1d(self), *ix = operand_1d(self, idx), *xv = NULL;
  dl_tensor *x1 = src ? operand_1d(self, src) : NULL;
  if (!s1 || !ix || (src && !x1)) goto done;
  if (!index_fits(ix, s1, d)) {
    dl_error_set("%s: index shape %s does not fit self shape %s outside dim %d", fn,
                 dl_tensor_shape_str(idx, b1, sizeof b1), dl_tensor_shape_str(self, b2, sizeof b2), d + 1);
    goto done;
  }
  if (x1 && !index_fits(ix, x1, -1)) {
    dl_error_set("%s: index shape %s does not fit src shape %s", fn, dl_tensor_shape_str(idx, b1, sizeof b1),
                 dl_tensor_shape_str(src, b2, sizeof b2));
    goto done;
  }
  if (check_index_range(fn, k, ix, d, s1->shape[d])) goto done;
  rc = 0;
  if (ix->numel == 0) goto done;
  if (x1) { /* src is read at the index's positions only */
    xv = dl_tensor_as_strided(x1, ix->shape, x1->stride, ix->ndim, x1->offset);
    if (!xv) {
      rc = -1;
      goto done;
    }
  }
  rc = dl_kernel_status(fn, k->scatter(s1, d, ix, xv, value, mode));
  dl_tensor_bump_version(self);
done:
  dl_tensor_release(s1);
  dl_tensor_release(ix);
  dl_tensor_release(x1);
  dl_tensor_release(xv);
  return rc;
}

int dl_op_scatter_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return scatter_impl("scatter", self, dim, idx, src, dl_scalar_i(1), DL_SCATTER_SET);
}

int dl_op_scatter_value_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value) {
  return scatter_impl("scatter", self, dim, idx, NULL, value, DL_SCATTER_SET);
}

int dl_op_scatter_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return scatter_impl("scatter_add", self, dim, idx, src, dl_scalar_i(1), DL_SCATTER_ADD);
}

/* index_add_/index_copy_/index_fill_ are scatters whose index is the 1-D
 * idx broadcast over every other dim (a stride-0 view, no copy). */
static int index_put_impl(const char *fn, dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar value,
                          dl_scatter_mode mode) {
  char b1[SHAPE_BUF], b2[SHAPE_BUF];
  const struct dl_index_kernels *k = kernels_of(fn, self);
  if (!k || check_index_tensor(fn, idx, self) || check_writable(fn, self)) return -1;
  if (idx->ndim > 1) {
    dl_error_set("%s: index must be 1-D, got shape %s", fn, dl_tensor_shape_str(idx, b1, sizeof b1));
    return -1;
  }
  if (src && (dl_check_same_device(fn, self, src) || check_same_dtype(fn, self, src))) return -1;
  int d = dl_wrap_dim(fn, dim, self->ndim);
  if (d < 0) return -1;
  int rc = -1;
  dl_tensor *s1 = as_1d(self), *ix = operand_1d(self, idx), *iexp = NULL;
  dl_tensor *x1 = src ? operand_1d(self, src) : NULL;
  if (!s1 || !ix || (src && !x1)) goto done;
  int64_t shape[DL_MAX_DIMS], stride[DL_MAX_DIMS];
  for (int j = 0; j < s1->ndim; j++) {
    shape[j] = j == d ? ix->numel : s1->shape[j];
    stride[j] = j == d ? ix->stride[0] : 0;
  }
  if (x1) {
    bool ok = x1->ndim == s1->ndim;
    for (int j = 0; ok && j < s1->ndim; j++) ok = x1->shape[j] == shape[j];
    if (!ok) {
      dl_error_set("%s: source shape %s does not match self shape %s with %lld indices along dim %d", fn,
                   dl_tensor_shape_str(src, b1, sizeof b1), dl_tensor_shape_str(self, b2, sizeof b2),
                   (long long)ix->numel, d + 1);
      goto done;
    }
  }
  if (check_index_range(fn, k, ix, d, s1->shape[d])) goto done;
  rc = 0;
  int64_t numel = 1;
  for (int j = 0; j < s1->ndim; j++) numel *= shape[j];
  if (numel == 0) goto done;
  iexp = dl_tensor_as_strided(ix, shape, stride, s1->ndim, ix->offset);
  if (!iexp) {
    rc = -1;
    goto done;
  }
  rc = dl_kernel_status(fn, k->scatter(s1, d, iexp, x1, value, mode));
  dl_tensor_bump_version(self);
done:
  dl_tensor_release(s1);
  dl_tensor_release(ix);
  dl_tensor_release(x1);
  dl_tensor_release(iexp);
  return rc;
}

int dl_op_index_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar alpha) {
  if (!dl_dtype_is_float(self->dtype) && !alpha.is_int && alpha.f != floor(alpha.f)) {
    dl_error_set("index_add_: alpha %g must be an integer for %s tensors", alpha.f, dl_dtype_name(self->dtype));
    return -1;
  }
  if (!alpha.is_int && !dl_dtype_is_float(self->dtype)) alpha = dl_scalar_i((int64_t)alpha.f);
  return index_put_impl("index_add_", self, dim, idx, src, alpha, DL_SCATTER_ADD);
}

int dl_op_index_copy_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return index_put_impl("index_copy_", self, dim, idx, src, dl_scalar_i(1), DL_SCATTER_SET);
}

int dl_op_index_fill_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value) {
  return index_put_impl("index_fill_", self, dim, idx, NULL, value, DL_SCATTER_SET);
}

/* ---- masked_select / nonzero / one_hot ---- */

dl_tensor *dl_op_masked_select(dl_tensor *t, dl_tensor *mask) {
  const struct dl_index_kernels *k = kernels_of("masked_select", t);
  if (!k || dl_check_same_device("masked_select", t, mask)) return NULL;
  if (mask->dtype != DL_BOOL) {
    dl_error_set("masked_select: mask must be a bool tensor, got %s", dl_dtype_name(mask->dtype));
    return NULL;
  }
  int64_t shape[DL_MAX_DIMS];
  int ndim;
  if (dl_broadcast_shapes("masked_select", t->shape, t->ndim, mask->shape, mask->ndim, shape, &ndim)) return NULL;
  dl_tensor *te = dl_tensor_expand(t, shape, ndim), *me = dl_tensor_expand(mask, shape, ndim), *out = NULL;
  if (te && me) {
    int64_t n = te->numel > 0 ? k->count_nonzero(me) : 0; /* -1: failed */
    out = n >= 0 ? dl_tensor_empty(&n, 1, t->dtype, dl_tensor_device(t)) : NULL;
    if (n < 0) dl_kernel_fail("masked_select");
    if (out && n > 0) out = dl_kernel_result("masked_select", out, k->masked_select(out, te, me));
  }
  dl_tensor_release(te);
  dl_tensor_release(me);
  return out;
}

dl_tensor *dl_op_nonzero(dl_tensor *t) {
  const struct dl_index_kernels *k = kernels_of("nonzero", t);
  if (!k) return NULL;
  int64_t shape[2] = {t->numel > 0 ? k->count_nonzero(t) : 0, t->ndim};
  if (shape[0] < 0) { /* the count failed */
    dl_kernel_fail("nonzero");
    return NULL;
  }
  dl_tensor *out = dl_tensor_empty(shape, 2, DL_INT64, dl_tensor_device(t));
  if (out && out->numel > 0) out = dl_kernel_result("nonzero", out, k->nonzero(out, t));
  return out;
}

dl_tensor *dl_op_one_hot(dl_tensor *labels, int64_t num_classes) {
  const struct dl_index_kernels *k = kernels_of("one_hot", labels);
  if (!k) return NULL;
  if (labels->dtype != DL_INT64) {
    dl_error_set("one_hot: labels must be an int64 tensor, got %s", dl_dtype_name(labels->dtype));
    return NULL;
  }
  if (num_classes < -1) {
    dl_error_set("one_hot: num_classes must be positive or -1, got %lld", (long long)num_classes);
    return NULL;
  }
  if (labels->ndim + 1 > DL_MAX_DIMS) {
    dl_error_set("one_hot: at most %d dims", DL_MAX_DIMS);
    return NULL;
  }
  if (labels->numel == 0 && num_classes == -1) {
    dl_error_set("one_hot: cannot infer the number of classes from an empty tensor");
    return NULL;
  }
  if (labels->numel > 0) {
    int64_t mn, mx;
    if (dl_kernel_status("one_hot", k->minmax(labels, &mn, &mx))) return NULL;
    if (num_classes == -1) num_classes = mx;
    if (mn < 1 || mx > num_classes) {
      dl_error_set("one_hot: class %lld out of range for %lld classes (labels are 1-based)",
                   (long long)(mn < 1 ? mn : mx), (long long)num_classes);
      return NULL;
    }
  }
  int64_t shape[DL_MAX_DIMS];
  for (int j = 0; j < labels->ndim; j++) shape[j] = labels->shape[j];
  shape[labels->ndim] = num_classes;
  dl_tensor *out = dl_tensor_zeros(shape, labels->ndim + 1, DL_INT64, dl_tensor_device(labels));
  if (!out || out->numel == 0) return out;
  dl_tensor *ix = dl_tensor_unsqueeze(labels, labels->ndim);
  if (!ix) {
    dl_tensor_release(out);
    return NULL;
  }
  int rc = k->scatter(out, labels->ndim, ix, NULL, dl_scalar_i(1), DL_SCATTER_SET);
  dl_tensor_release(ix);
  return dl_kernel_result("one_hot", out, rc);
}

/* ---- flip / roll ---- */

dl_tensor *dl_op_flip(dl_tensor *t, const int *dims, int n) {
  const struct dl_index_kernels *k = kernels_of("flip", t);
  if (!k) return NULL;
  uint32_t mask = 0;
  for (int i = 0; i < n; i++) {
    int d = dl_wrap_dim("flip", dims[i], t->ndim);
    if (d < 0) return NULL;
    if (mask & (1u << d)) {
      dl_error_set("flip: dim %d appears more than once", d + 1);
      return NULL;
    }
    mask |= 1u << d;
  }
  dl_tensor *out = dl_tensor_empty(t->shape, t->ndim, t->dtype, dl_tensor_device(t));
  if (out && out->numel > 0) out = dl_kernel_result("flip", out, k->flip(out, t, t->ndim > 0 ? mask : 0));
  return out;
}

/* out = cur rolled by s (0 < s < size) along d: two slab copies */
static dl_tensor *roll_one(dl_tensor *cur, int64_t s, int d) {
  int64_t size = cur->shape[d];
  dl_tensor *out = dl_tensor_empty(cur->shape, cur->ndim, cur->dtype, dl_tensor_device(cur));
  if (!out) return NULL;
  dl_tensor *a = dl_tensor_narrow(out, d, s, size - s), *b = dl_tensor_narrow(cur, d, 0, size - s);
  dl_tensor *c = dl_tensor_narrow(out, d, 0, s), *e = dl_tensor_narrow(cur, d, size - s, s);
  int rc = (a && b && c && e) ? (dl_tensor_copy_(a, b) || dl_tensor_copy_(c, e)) : -1;
  dl_tensor_release(a);
  dl_tensor_release(b);
  dl_tensor_release(c);
  dl_tensor_release(e);
  if (rc) {
    dl_tensor_release(out);
    return NULL;
  }
  return out;
}

dl_tensor *dl_op_roll(dl_tensor *t, const int64_t *shifts, int nshifts, const int *dims, int ndims) {
  if (ndims == 0) {
    if (nshifts != 1) {
      dl_error_set("roll: %d shifts given without dims; expected one", nshifts);
      return NULL;
    }
    int64_t flat = t->numel;
    dl_tensor *f = dl_tensor_reshape(t, &flat, 1);
    if (!f) return NULL;
    int d0 = 0;
    dl_tensor *r = dl_op_roll(f, shifts, 1, &d0, 1);
    dl_tensor_release(f);
    if (!r) return NULL;
    dl_tensor *v = dl_tensor_view(r, t->shape, t->ndim);
    dl_tensor_release(r);
    return v;
  }
  if (nshifts != ndims) {
    dl_error_set("roll: %d shifts given for %d dims", nshifts, ndims);
    return NULL;
  }
  for (int i = 0; i < ndims; i++)
    if (dl_wrap_dim("roll", dims[i], t->ndim) < 0) return NULL;
  dl_tensor *cur = dl_tensor_retain(t);
  for (int i = 0; i < ndims; i++) {
    int d = dl_wrap_dim("roll", dims[i], t->ndim);
    int64_t size = t->ndim ? t->shape[d] : 1;
    if (size == 0) continue;
    int64_t s = ((shifts[i] % size) + size) % size;
    if (s == 0) continue;
    dl_tensor *next = roll_one(cur, s, d);
    dl_tensor_release(cur);
    if (!next) return NULL;
    cur = next;
  }
  if (cur == t) { /* nothing moved: still a new tensor */
    dl_tensor_release(cur);
    return dl_tensor_clone(t);
  }
  return cur;
}

/* ---- triu / tril ---- */

/* Over the last two dims, the elements with column - row >= k (triu) or
 * <= k (tril) are kept and the others zeroed (false for bool). Composed
 * from ops every backend has: the [R, C] mask of dropped elements from
 * two aranges, then one masked fill, so no kernel of its own. */
dl_tensor *dl_op_tri(dl_tensor *t, int64_t k, bool upper) {
  const char *fn = upper ? "triu" : "tril";
  if (t->ndim < 2) {
    dl_error_set("%s: input must have at least 2 dims, got %d", fn, t->ndim);
    return NULL;
  }
  int64_t R = t->shape[t->ndim - 2], C = t->shape[t->ndim - 1];
  dl_device dev = dl_tensor_device(t);
  dl_tensor *rows = NULL, *cols = NULL, *r2 = NULL, *diff = NULL, *drop = NULL, *out = NULL;
  rows = dl_op_arange(dl_scalar_i(0), dl_scalar_i(R), dl_scalar_i(1), DL_INT64, dev);
  cols = rows ? dl_op_arange(dl_scalar_i(0), dl_scalar_i(C), dl_scalar_i(1), DL_INT64, dev) : NULL;
  r2 = cols ? dl_tensor_reshape(rows, (int64_t[]){R, 1}, 2) : NULL;
  diff = r2 ? dl_op_binary(DL_BIN_SUB, cols, r2, dl_scalar_i(1)) : NULL; /* [R, C]: column - row */
  drop = diff ? dl_op_binary_ex(upper ? DL_BIN_LT : DL_BIN_GT, dl_operand_tensor(diff),
                                dl_operand_scalar(dl_scalar_i(k)), dl_scalar_i(1))
              : NULL;
  out = drop ? dl_op_masked_fill(t, drop, dl_operand_scalar(dl_scalar_i(0))) : NULL;
  dl_tensor_release(rows);
  dl_tensor_release(cols);
  dl_tensor_release(r2);
  dl_tensor_release(diff);
  dl_tensor_release(drop);
  if (!out) dl_error_prefix(fn);
  return out;
}
