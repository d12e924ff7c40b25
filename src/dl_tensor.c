/* dl_tensor.c — storage and tensor lifetime, views, copies. */
#include "dl_tensor.h"

#include "dl_alloc.h"
#include "dl_backend.h"

#include <stdio.h>
#include <string.h>

static dl_pool tensor_pool = {sizeof(dl_tensor), 0};
static dl_pool storage_pool = {sizeof(dl_storage), 0};

/* ---- storage ---- */

static dl_storage *storage_new(size_t nbytes, dl_device dev) {
  const dl_backend *be = dl_backend_get(dev);
  if (!be) return NULL;
  dl_storage *s = dl_pool_get(&storage_pool);
  if (!s) return NULL;
  s->data = be->alloc(nbytes);
  if (!s->data) {
    dl_pool_put(&storage_pool, s);
    return NULL;
  }
  s->refcount = 1;
  s->nbytes = nbytes;
  s->device = dev;
  return s;
}

static void storage_release(dl_storage *s) {
  if (--s->refcount > 0) return;
  if (s->release) s->release(s->data, s->release_ctx);
  else if (!s->borrowed) dl_backend_get(s->device)->free(s->data, s->nbytes);
  dl_pool_put(&storage_pool, s);
}

/* ---- tensors ---- */

static void set_contiguous_strides(dl_tensor *t) {
  int64_t st = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    t->stride[d] = st;
    st *= t->shape[d];
  }
}

int dl_shape_numel(const char *fn, const int64_t *shape, int ndim, int64_t *numel) {
  if (ndim < 0 || ndim > DL_MAX_DIMS) {
    dl_error_set("%s: %d dims given, at most %d supported", fn, ndim, DL_MAX_DIMS);
    return -1;
  }
  /* the extent (zeros counted as 1) bounds every stride and byte offset a
   * layout of this shape can have: checked once here, it keeps them all
   * from overflowing */
  int64_t n = 1, extent = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) {
      dl_error_set("%s: negative size %lld in dim %d", fn, (long long)shape[d], d + 1);
      return -1;
    }
    if (__builtin_mul_overflow(extent, shape[d] ? shape[d] : 1, &extent) || extent > INT64_MAX / 16) {
      char b[256];
      dl_error_set("%s: tensor of shape %s too large", fn, dl_shape_str(shape, ndim, b, sizeof b));
      return -1;
    }
    n *= shape[d];
  }
  *numel = n;
  return 0;
}

static dl_tensor *tensor_header(dl_storage *s, dl_dtype dt, const int64_t *shape, int ndim, int64_t numel) {
  dl_tensor *t = dl_pool_get(&tensor_pool);
  if (!t) return NULL;
  t->refcount = 1;
  t->storage = s;
  t->dtype = dt;
  t->ndim = ndim;
  t->numel = numel;
  if (ndim > 0) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
  return t;
}

dl_tensor *dl_tensor_empty(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev) {
  int64_t numel;
  if (dl_shape_numel("empty", shape, ndim, &numel)) return NULL;
  dl_storage *s = storage_new((size_t)numel * dl_dtype_size(dt), dev);
  if (!s) return NULL;
  dl_tensor *t = tensor_header(s, dt, shape, ndim, numel);
  if (!t) {
    storage_release(s);
    return NULL;
  }
  set_contiguous_strides(t);
  return t;
}

dl_tensor *dl_tensor_full(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev, dl_scalar v) {
  dl_tensor *t = dl_tensor_empty(shape, ndim, dt, dev);
  if (t) dl_backend_of(t)->fill(t, v);
  return t;
}

dl_tensor *dl_tensor_zeros(const int64_t *shape, int ndim, dl_dtype dt, dl_device dev) {
  return dl_tensor_full(shape, ndim, dt, dev, dl_scalar_i(0));
}

dl_tensor *dl_tensor_empty_like(const dl_tensor *t) {
  return dl_tensor_empty(t->shape, t->ndim, t->dtype, dl_tensor_device(t));
}

dl_tensor *dl_tensor_scalar(dl_scalar v, dl_dtype dt, dl_device dev) {
  return dl_tensor_full(NULL, 0, dt, dev, v);
}

dl_tensor *dl_tensor_from_buffer(void *data, const int64_t *shape, int ndim, const int64_t *strides,
                                 dl_dtype dt, void (*release)(void *, void *), void *ctx) {
  int64_t numel;
  if ((unsigned)dt >= DL_NDTYPES) {
    dl_error_set("from_buffer: unknown dtype %d", (int)dt);
    return NULL;
  }
  if (!shape && ndim > 0) {
    dl_error_set("from_buffer: NULL shape for %d dims", ndim);
    return NULL;
  }
  if (dl_shape_numel("from_buffer", shape, ndim, &numel)) return NULL;
  if (!data && numel > 0) { /* nothing is read from an empty buffer */
    dl_error_set("from_buffer: NULL data");
    return NULL;
  }
  /* the elements the strides reach, checked against overflow: the byte
   * count bounds every later access */
  for (int d = 0; strides && d < ndim; d++) {
    if (strides[d] < 0) {
      dl_error_set("from_buffer: negative stride");
      return NULL;
    }
  }
  int64_t span = numel;
  if (strides && numel > 0) {
    span = 1;
    for (int d = 0; d < ndim; d++) {
      int64_t reach;
      if (__builtin_mul_overflow(shape[d] - 1, strides[d], &reach) || __builtin_add_overflow(span, reach, &span)) {
        dl_error_set("from_buffer: strides reach past the addressable range");
        return NULL;
      }
    }
  }
  size_t nbytes;
  if (__builtin_mul_overflow((size_t)span, dl_dtype_size(dt), &nbytes)) {
    dl_error_set("from_buffer: strides reach past the addressable range");
    return NULL;
  }
  dl_storage *s = dl_pool_get(&storage_pool);
  if (!s) return NULL;
  s->refcount = 1;
  s->data = data;
  s->device = dl_device_cpu();
  s->release = release;
  s->release_ctx = ctx;
  s->borrowed = true; /* without a callback the host keeps the buffer */
  s->nbytes = nbytes;
  dl_tensor *t = tensor_header(s, dt, shape, ndim, numel);
  if (!t) {
    dl_pool_put(&storage_pool, s);
    return NULL;
  }
  if (strides) {
    for (int d = 0; d < ndim; d++) t->stride[d] = strides[d];
  } else {
    set_contiguous_strides(t);
  }
  return t;
}

dl_tensor *dl_tensor_retain(dl_tensor *t) {
  t->refcount++;
  return t;
}

/* Defined by the autograd engine; drops grad, grad_fn and tangent. */
void dl_autograd_clear(dl_tensor *t) __attribute__((weak));

void dl_tensor_release(dl_tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (t->grad) dl_tensor_release(t->grad);
  if (t->tangent) dl_tensor_release(t->tangent);
  if (t->grad_fn && dl_autograd_clear) dl_autograd_clear(t);
  if (t->base) dl_tensor_release(t->base);
  if (t->storage) storage_release(t->storage); /* counted even over an empty host buffer */
  dl_pool_put(&tensor_pool, t);
}

/* ---- inspection ---- */

const char *dl_tensor_shape_str(const dl_tensor *t, char *buf, size_t n) {
  return dl_shape_str(t->shape, t->ndim, buf, n);
}

bool dl_tensor_same_shape(const dl_tensor *a, const dl_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return false;
  return true;
}

int dl_wrap_dim(const char *fn, int64_t dim, int ndim) {
  int64_t n = ndim > 0 ? ndim : 1;
  if (dim < -n || dim >= n) {
    dl_error_set("%s: dim %lld out of range for a %d-d tensor", fn, (long long)(dim >= 0 ? dim + 1 : dim), ndim);
    return -1;
  }
  return (int)(dim < 0 ? dim + n : dim);
}

static dl_scalar load_scalar(const void *p, dl_dtype dt) {
  switch (dt) {
  case DL_FLOAT32: return dl_scalar_f(*(const float *)p);
  case DL_FLOAT64: return dl_scalar_f(*(const double *)p);
  case DL_INT64: return dl_scalar_i(*(const int64_t *)p);
  case DL_BOOL: return dl_scalar_i(*(const uint8_t *)p != 0);
  default: return dl_scalar_i(*(const uint8_t *)p);
  }
}

static void store_scalar(void *p, dl_dtype dt, dl_scalar v) {
  switch (dt) {
  case DL_FLOAT32: *(float *)p = (float)(v.is_int ? (double)v.i : v.f); break;
  case DL_FLOAT64: *(double *)p = v.is_int ? (double)v.i : v.f; break;
  case DL_INT64: *(int64_t *)p = v.is_int ? v.i : (int64_t)v.f; break;
  case DL_BOOL: *(uint8_t *)p = v.is_int ? v.i != 0 : v.f != 0; break;
  default: *(uint8_t *)p = (uint8_t)(v.is_int ? v.i : (int64_t)v.f); break;
  }
}

static char *element_at(const dl_tensor *t, const int64_t *index) {
  int64_t off = t->offset;
  for (int d = 0; d < t->ndim; d++) off += index[d] * t->stride[d];
  return (char *)t->storage->data + off * (int64_t)dl_dtype_size(t->dtype);
}

dl_scalar dl_tensor_get(const dl_tensor *t, const int64_t *index) { return load_scalar(element_at(t, index), t->dtype); }

void dl_tensor_set(dl_tensor *t, const int64_t *index, dl_scalar v) {
  store_scalar(element_at(t, index), t->dtype, v);
  t->storage->version++;
}

void dl_tensor_init_linear(dl_tensor *t, int64_t i, dl_scalar v) {
  store_scalar((char *)dl_tensor_data(t) + i * (int64_t)dl_dtype_size(t->dtype), t->dtype, v);
}

int dl_tensor_read(const dl_tensor *t, const int64_t *index, dl_scalar *out) {
  if (dl_tensor_device(t).type == DL_CPU) {
    *out = dl_tensor_get(t, index);
    return 0;
  }
  const dl_backend *be = dl_backend_of(t);
  _Alignas(8) unsigned char buf[8];
  if (!be || be->to_host(buf, element_at(t, index), dl_dtype_size(t->dtype))) return -1;
  *out = load_scalar(buf, t->dtype);
  return 0;
}

int dl_tensor_write(dl_tensor *t, const int64_t *index, dl_scalar v) {
  if (dl_tensor_device(t).type == DL_CPU) {
    dl_tensor_set(t, index, v);
    return 0;
  }
  /* the value converted on the host, then one element sent */
  const dl_backend *be = dl_backend_of(t);
  _Alignas(8) unsigned char buf[8];
  store_scalar(buf, t->dtype, v);
  if (!be || be->from_host(element_at(t, index), buf, dl_dtype_size(t->dtype))) return -1;
  dl_tensor_bump_version(t);
  return 0;
}

dl_scalar dl_tensor_get_linear(const dl_tensor *t, int64_t i) {
  int64_t off = t->offset;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  return load_scalar((char *)t->storage->data + off * (int64_t)dl_dtype_size(t->dtype), t->dtype);
}

/* ---- views ---- */

static dl_tensor *make_view(dl_tensor *t, const int64_t *shape, const int64_t *stride, int ndim, int64_t offset) {
  dl_tensor *v = dl_pool_get(&tensor_pool);
  if (!v) return NULL;
  v->refcount = 1;
  v->storage = t->storage;
  t->storage->refcount++;
  v->dtype = t->dtype;
  v->ndim = ndim;
  v->offset = offset;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    v->shape[d] = shape[d];
    v->stride[d] = stride[d];
    n *= shape[d];
  }
  v->numel = n;
  return v;
}

dl_tensor *dl_tensor_alias(dl_tensor *t) { return make_view(t, t->shape, t->stride, t->ndim, t->offset); }

dl_tensor *dl_tensor_as_strided(dl_tensor *t, const int64_t *shape, const int64_t *stride, int ndim,
                                int64_t offset) {
  int64_t numel;
  if (dl_shape_numel("as_strided", shape, ndim, &numel)) return NULL;
  int64_t hi = offset;
  for (int d = 0; d < ndim; d++) {
    if (stride[d] < 0) {
      dl_error_set("as_strided: negative stride");
      return NULL;
    }
    if (shape[d] > 0) hi += (shape[d] - 1) * stride[d];
  }
  if (offset < 0 || (numel > 0 && (size_t)(hi + 1) * dl_dtype_size(t->dtype) > t->storage->nbytes)) {
    dl_error_set("as_strided: view reaches outside the storage");
    return NULL;
  }
  return make_view(t, shape, stride, ndim, offset);
}

/* Infers a -1 entry; checks the element count. */
static int resolve_shape(const char *fn, const dl_tensor *t, const int64_t *in, int ndim, int64_t *out) {
  if (ndim < 0 || ndim > DL_MAX_DIMS) {
    dl_error_set("%s: %d dims given, at most %d supported", fn, ndim, DL_MAX_DIMS);
    return -1;
  }
  int infer = -1;
  int64_t known = 1;
  for (int d = 0; d < ndim; d++) {
    if (in[d] == -1) {
      if (infer >= 0) {
        dl_error_set("%s: only one dimension can be inferred", fn);
        return -1;
      }
      infer = d;
    } else if (in[d] < 0) {
      dl_error_set("%s: invalid size %lld", fn, (long long)in[d]);
      return -1;
    } else if (__builtin_mul_overflow(known, in[d], &known)) {
      char b1[128];
      dl_error_set("%s: shape %s is too large", fn, dl_shape_str(in, ndim, b1, sizeof b1));
      return -1;
    }
    out[d] = in[d];
  }
  char b1[128], b2[128];
  if (infer >= 0) {
    if (known == 0 || t->numel % known) {
      dl_error_set("%s: shape %s is invalid for input of size %lld (shape %s)", fn, dl_shape_str(in, ndim, b1, sizeof b1),
                   (long long)t->numel, dl_tensor_shape_str(t, b2, sizeof b2));
      return -1;
    }
    out[infer] = t->numel / known;
  } else if (known != t->numel) {
    dl_error_set("%s: shape %s is invalid for input of size %lld (shape %s)", fn, dl_shape_str(in, ndim, b1, sizeof b1),
                 (long long)t->numel, dl_tensor_shape_str(t, b2, sizeof b2));
    return -1;
  }
  int64_t n;
  return dl_shape_numel(fn, out, ndim, &n); /* zero-size dims: the extent too */
}

/* Strides for viewing t as `shape` without copying (PyTorch's computeStride);
 * false when the layout does not allow it. */
static bool view_strides(const dl_tensor *t, const int64_t *shape, int ndim, int64_t *stride) {
  if (t->numel == 0 || t->ndim == 0) {
    int64_t st = 1;
    for (int d = ndim - 1; d >= 0; d--) {
      stride[d] = st;
      st *= shape[d] ? shape[d] : 1;
    }
    return true;
  }
  int view_d = ndim - 1;
  int64_t chunk_base_stride = t->stride[t->ndim - 1];
  int64_t tensor_numel = 1, view_numel = 1;
  for (int td = t->ndim - 1; td >= 0; td--) {
    tensor_numel *= t->shape[td];
    if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        stride[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = t->stride[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

dl_tensor *dl_tensor_view(dl_tensor *t, const int64_t *shape, int ndim) {
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  if (resolve_shape("view", t, shape, ndim, sh)) return NULL;
  if (!view_strides(t, sh, ndim, st)) {
    char b1[128], b2[128];
    dl_error_set("view: shape %s is not compatible with the strides of input %s; use reshape",
                 dl_shape_str(sh, ndim, b1, sizeof b1), dl_tensor_shape_str(t, b2, sizeof b2));
    return NULL;
  }
  return make_view(t, sh, st, ndim, t->offset);
}

dl_tensor *dl_tensor_reshape(dl_tensor *t, const int64_t *shape, int ndim) {
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  if (resolve_shape("reshape", t, shape, ndim, sh)) return NULL;
  if (view_strides(t, sh, ndim, st)) return make_view(t, sh, st, ndim, t->offset);
  dl_tensor *c = dl_tensor_contiguous(t);
  if (!c) return NULL;
  dl_tensor *v = dl_tensor_view(c, sh, ndim);
  dl_tensor_release(c);
  return v;
}

dl_tensor *dl_tensor_transpose(dl_tensor *t, int d0, int d1) {
  if ((d0 = dl_wrap_dim("transpose", d0, t->ndim)) < 0) return NULL;
  if ((d1 = dl_wrap_dim("transpose", d1, t->ndim)) < 0) return NULL;
  if (t->ndim == 0) return dl_tensor_alias(t);
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  memcpy(sh, t->shape, sizeof sh);
  memcpy(st, t->stride, sizeof st);
  sh[d0] = t->shape[d1];
  sh[d1] = t->shape[d0];
  st[d0] = t->stride[d1];
  st[d1] = t->stride[d0];
  return make_view(t, sh, st, t->ndim, t->offset);
}

dl_tensor *dl_tensor_permute(dl_tensor *t, const int *perm, int n) {
  if (n != t->ndim) {
    dl_error_set("permute: %d dims given for a %d-d tensor", n, t->ndim);
    return NULL;
  }
  bool seen[DL_MAX_DIMS] = {false};
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  for (int i = 0; i < n; i++) {
    int d = dl_wrap_dim("permute", perm[i], n);
    if (d < 0) return NULL;
    if (seen[d]) {
      dl_error_set("permute: dim %d repeated", d + 1);
      return NULL;
    }
    seen[d] = true;
    sh[i] = t->shape[d];
    st[i] = t->stride[d];
  }
  return make_view(t, sh, st, n, t->offset);
}

dl_tensor *dl_tensor_narrow(dl_tensor *t, int dim, int64_t start, int64_t len) {
  if (t->ndim == 0) {
    dl_error_set("narrow: cannot narrow a 0-d tensor");
    return NULL;
  }
  if ((dim = dl_wrap_dim("narrow", dim, t->ndim)) < 0) return NULL;
  if (start < 0 || len < 0 || start + len > t->shape[dim]) {
    dl_error_set("narrow: range [%lld, %lld] out of bounds for dim %d of size %lld", (long long)start + 1,
                 (long long)(start + len), dim + 1, (long long)t->shape[dim]);
    return NULL;
  }
  int64_t sh[DL_MAX_DIMS];
  memcpy(sh, t->shape, sizeof sh);
  sh[dim] = len;
  return make_view(t, sh, t->stride, t->ndim, t->offset + start * t->stride[dim]);
}

dl_tensor *dl_tensor_select(dl_tensor *t, int dim, int64_t index) {
  if (t->ndim == 0) {
    dl_error_set("select: cannot index a 0-d tensor");
    return NULL;
  }
  if ((dim = dl_wrap_dim("select", dim, t->ndim)) < 0) return NULL;
  if (index < 0 || index >= t->shape[dim]) {
    dl_error_set("select: index %lld out of range for dim %d of size %lld", (long long)index + 1, dim + 1,
                 (long long)t->shape[dim]);
    return NULL;
  }
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d == dim) continue;
    sh[k] = t->shape[d];
    st[k++] = t->stride[d];
  }
  return make_view(t, sh, st, t->ndim - 1, t->offset + index * t->stride[dim]);
}

dl_tensor *dl_tensor_squeeze(dl_tensor *t, int dim) {
  if (dim != DL_ALL_DIMS && (dim = dl_wrap_dim("squeeze", dim, t->ndim)) < 0) return NULL;
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 1 && (dim == DL_ALL_DIMS || d == dim)) continue;
    sh[k] = t->shape[d];
    st[k++] = t->stride[d];
  }
  return make_view(t, sh, st, k, t->offset);
}

dl_tensor *dl_tensor_unsqueeze(dl_tensor *t, int dim) {
  if (t->ndim >= DL_MAX_DIMS) {
    dl_error_set("unsqueeze: at most %d dims", DL_MAX_DIMS);
    return NULL;
  }
  if (dim < 0) dim += t->ndim + 1;
  if (dim < 0 || dim > t->ndim) {
    dl_error_set("unsqueeze: dim out of range for a %d-d tensor", t->ndim);
    return NULL;
  }
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  int k = 0;
  for (int d = 0; d <= t->ndim; d++) {
    if (d == dim) {
      sh[k] = 1;
      st[k++] = d < t->ndim ? t->shape[d] * t->stride[d] : 1;
    }
    if (d < t->ndim) {
      sh[k] = t->shape[d];
      st[k++] = t->stride[d];
    }
  }
  return make_view(t, sh, st, t->ndim + 1, t->offset);
}

dl_tensor *dl_tensor_expand(dl_tensor *t, const int64_t *shape, int ndim) {
  char b1[128], b2[128];
  if (ndim < t->ndim || ndim > DL_MAX_DIMS) {
    dl_error_set("expand: cannot expand %s to %s", dl_tensor_shape_str(t, b1, sizeof b1),
                 dl_shape_str(shape, ndim > DL_MAX_DIMS ? DL_MAX_DIMS : ndim, b2, sizeof b2));
    return NULL;
  }
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int td = d - lead;
    int64_t want = shape[d];
    if (td < 0) {
      if (want < 0) goto bad;
      sh[d] = want;
      st[d] = 0;
    } else if (want == -1 || want == t->shape[td]) {
      sh[d] = t->shape[td];
      st[d] = t->stride[td];
    } else if (t->shape[td] == 1 && want >= 0) {
      sh[d] = want;
      st[d] = 0;
    } else {
      goto bad;
    }
  }
  int64_t n;
  if (dl_shape_numel("expand", sh, ndim, &n)) return NULL;
  return make_view(t, sh, st, ndim, t->offset);
bad:
  dl_error_set("expand: cannot expand %s to %s", dl_tensor_shape_str(t, b1, sizeof b1),
               dl_shape_str(shape, ndim, b2, sizeof b2));
  return NULL;
}

dl_tensor *dl_tensor_flatten(dl_tensor *t, int start, int end) {
  if (t->ndim == 0) {
    int64_t one = 1;
    return dl_tensor_reshape(t, &one, 1);
  }
  if ((start = dl_wrap_dim("flatten", start, t->ndim)) < 0) return NULL;
  if ((end = dl_wrap_dim("flatten", end, t->ndim)) < 0) return NULL;
  if (start > end) {
    dl_error_set("flatten: start dim %d is after end dim %d", start + 1, end + 1);
    return NULL;
  }
  int64_t sh[DL_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < start; d++) sh[k++] = t->shape[d];
  int64_t m = 1;
  for (int d = start; d <= end; d++) m *= t->shape[d];
  sh[k++] = m;
  for (int d = end + 1; d < t->ndim; d++) sh[k++] = t->shape[d];
  return dl_tensor_reshape(t, sh, k);
}

dl_tensor *dl_tensor_unfold(dl_tensor *t, int dim, int64_t size, int64_t step) {
  if (t->ndim >= DL_MAX_DIMS) {
    dl_error_set("unfold: at most %d dims", DL_MAX_DIMS);
    return NULL;
  }
  int nd = t->ndim ? t->ndim : 1;
  if ((dim = dl_wrap_dim("unfold", dim, nd)) < 0) return NULL;
  int64_t dsize = t->ndim ? t->shape[dim] : 1, dstride = t->ndim ? t->stride[dim] : 1;
  if (size < 0 || size > dsize || step <= 0) {
    dl_error_set("unfold: size %lld and step %lld invalid for dim %d of size %lld", (long long)size, (long long)step,
                 dim + 1, (long long)dsize);
    return NULL;
  }
  int64_t sh[DL_MAX_DIMS], st[DL_MAX_DIMS];
  if (t->ndim == 0) { /* as PyTorch: the one window (of size 0 or 1) is the result, [size] */
    sh[0] = size, st[0] = 1;
    return make_view(t, sh, st, 1, t->offset);
  }
  for (int d = 0; d < t->ndim; d++) {
    sh[d] = t->shape[d];
    st[d] = t->stride[d];
  }
  sh[dim] = (dsize - size) / step + 1;
  if (sh[dim] == 1) {
    st[dim] = dstride; /* one window: its stride is never used (step may be huge) */
  } else if (__builtin_mul_overflow(step, dstride, &st[dim])) {
    dl_error_set("unfold: step %lld too large for dim %d", (long long)step, dim + 1);
    return NULL;
  }
  sh[nd] = size;
  st[nd] = dstride;
  return make_view(t, sh, st, nd + 1, t->offset);
}

/* ---- copies ---- */

void dl_tensor_reach(const dl_tensor *t, int64_t *lo, int64_t *span) {
  int64_t l = t->offset, h = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 0) {
      *lo = t->offset, *span = 0;
      return;
    }
    int64_t e = (t->shape[d] - 1) * t->stride[d];
    if (e < 0) l += e;
    else h += e;
  }
  *lo = l, *span = h - l + 1;
}

bool dl_tensor_same_view(const dl_tensor *a, const dl_tensor *b) {
  if (a->storage != b->storage || a->offset != b->offset || a->dtype != b->dtype || a->ndim != b->ndim) return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d] || (a->shape[d] > 1 && a->stride[d] != b->stride[d])) return false;
  return true;
}

int dl_tensor_copy_(dl_tensor *dst, const dl_tensor *src) {
  char b1[128], b2[128];
  dl_device dd = dl_tensor_device(dst), sd = dl_tensor_device(src);
  for (int d = 0; d < dst->ndim && dst->numel > 0; d++) {
    if (dst->stride[d] == 0 && dst->shape[d] > 1) {
      dl_error_set("copy_: the destination %s is expanded (more than one of its elements is one memory location); "
                   "clone it first", dl_tensor_shape_str(dst, b1, sizeof b1));
      return -1;
    }
  }
  dl_tensor *s = dl_tensor_expand((dl_tensor *)src, dst->shape, dst->ndim);
  if (!s) {
    dl_error_set("copy_: source %s cannot be broadcast to %s", dl_tensor_shape_str(src, b1, sizeof b1),
                 dl_tensor_shape_str(dst, b2, sizeof b2));
    return -1;
  }
  if (s->storage == dst->storage && dst->numel > 0 && !dl_tensor_same_view(s, dst)) {
    /* a source overlapping the destination would be read after part of it
     * was written (x[{{}, {2, 4}}] = x[{{}, {1, 3}}]): copy it first */
    int64_t slo, sn, dlo, dn;
    dl_tensor_reach(s, &slo, &sn);
    dl_tensor_reach(dst, &dlo, &dn);
    if (slo < dlo + dn && dlo < slo + sn) {
      dl_tensor *c = dl_tensor_clone(s);
      dl_tensor_release(s);
      if (!c) return -1;
      s = c;
    }
  }
  int rc = 0;
  if (dl_device_eq(dd, sd)) {
    dl_backend_get(dd)->copy(dst, s);
  } else {
    /* across devices: stage through a contiguous tensor of dst's dtype */
    dl_tensor *cs = dl_tensor_to_device(s, dd);
    if (!cs) rc = -1;
    else dl_backend_get(dd)->copy(dst, cs);
    dl_tensor_release(cs);
  }
  dl_tensor_release(s);
  if (rc == 0) dst->storage->version++;
  return rc;
}

dl_tensor *dl_tensor_clone(const dl_tensor *t) {
  dl_tensor *c = dl_tensor_empty_like(t);
  if (c) dl_backend_of(t)->copy(c, t);
  return c;
}

dl_tensor *dl_tensor_contiguous(dl_tensor *t) {
  if (dl_tensor_is_contiguous(t)) return dl_tensor_retain(t);
  return dl_tensor_clone(t);
}

dl_tensor *dl_tensor_to_dtype(dl_tensor *t, dl_dtype dt) {
  if (t->dtype == dt) return dl_tensor_retain(t);
  dl_tensor *c = dl_tensor_empty(t->shape, t->ndim, dt, dl_tensor_device(t));
  if (c) dl_backend_of(t)->copy(c, t);
  return c;
}

dl_tensor *dl_tensor_to_device(dl_tensor *t, dl_device dev) {
  dl_device from = dl_tensor_device(t);
  if (dl_device_eq(from, dev)) return dl_tensor_retain(t);
  const dl_backend *to_be = dl_backend_get(dev);
  if (!to_be) return NULL;
  dl_tensor *src = dl_tensor_contiguous(t);
  if (!src) return NULL;
  dl_tensor *out = dl_tensor_empty(t->shape, t->ndim, t->dtype, dev);
  size_t nbytes = (size_t)t->numel * dl_dtype_size(t->dtype);
  int rc = -1;
  if (out) {
    if (from.type == DL_CPU) rc = to_be->from_host(dl_tensor_data(out), dl_tensor_data(src), nbytes);
    else if (dev.type == DL_CPU) rc = dl_backend_get(from)->to_host(dl_tensor_data(out), dl_tensor_data(src), nbytes);
    else { /* device to device through the host; the upload is issued on the
            * destination's stream (dl_backend_get selects its device), after
            * the work queued there */
      dl_tensor *h = dl_tensor_to_device(src, dl_device_cpu());
      to_be = h ? dl_backend_get(dev) : NULL;
      rc = to_be ? to_be->from_host(dl_tensor_data(out), dl_tensor_data(h), nbytes) : -1;
      dl_tensor_release(h);
    }
  }
  dl_tensor_release(src);
  if (rc) {
    dl_tensor_release(out);
    return NULL;
  }
  return out;
}

void dl_tensor_set_(dl_tensor *t, const dl_tensor *src) {
  if (t == src) return;
  src->storage->refcount++;
  dl_storage *old = t->storage;
  t->storage = src->storage;
  if (old) storage_release(old);
  t->dtype = src->dtype;
  t->ndim = src->ndim;
  t->offset = src->offset;
  t->numel = src->numel;
  memcpy(t->shape, src->shape, sizeof t->shape);
  memcpy(t->stride, src->stride, sizeof t->stride);
  t->storage->version++;
}

int dl_tensor_fill_(dl_tensor *t, dl_scalar v) {
  dl_backend_of(t)->fill(t, v);
  t->storage->version++;
  return 0;
}

int dl_broadcast_shapes(const char *fn, const int64_t *a, int an, const int64_t *b, int bn, int64_t *out,
                        int *out_ndim) {
  int n = an > bn ? an : bn;
  for (int i = 0; i < n; i++) {
    int64_t x = i < n - an ? 1 : a[i - (n - an)];
    int64_t y = i < n - bn ? 1 : b[i - (n - bn)];
    if (x != y && x != 1 && y != 1) {
      char b1[128], b2[128];
      dl_error_set("%s: shapes %s and %s cannot be broadcast", fn, dl_shape_str(a, an, b1, sizeof b1),
                   dl_shape_str(b, bn, b2, sizeof b2));
      return -1;
    }
    out[i] = x == 1 ? y : x;
  }
  *out_ndim = n;
  return 0;
}

int dl_check_same_device(const char *fn, const dl_tensor *a, const dl_tensor *b) {
  if (dl_device_eq(dl_tensor_device(a), dl_tensor_device(b))) return 0;
  char b1[32], b2[32];
  dl_error_set("%s: expected all tensors on one device, got %s and %s", fn,
               dl_device_str(dl_tensor_device(a), b1, sizeof b1), dl_device_str(dl_tensor_device(b), b2, sizeof b2));
  return -1;
}
