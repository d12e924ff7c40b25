/* grad_view.c — views and copies: forward, backward rule and jvp rule of
 * each, side by side. A view's gradient is the inverse re-indexing of the
 * incoming gradient; its tangent is the same view of the input's tangent. */
#include "dl_ag_view.h"

#include "dl_autograd.h"
#include "dl_autograd_ops.h"
#include "../ops/dl_index.h"

#include <string.h>

/* Records a one-input node with ctx bytes; returns 0, or -1 (out released). */
static int record1(const dl_node_type *type, dl_tensor *in, dl_tensor *out, const void *ctx, size_t n) {
  dl_node *node = dl_ag_record(type, &in, 1, out);
  if (!node) return -1;
  if (ctx) memcpy(node->ctx, ctx, n);
  /* a recorded view remembers its base, for writes through it */
  if (out->storage == in->storage && !out->base) {
    out->base = dl_tensor_retain(in->base ? in->base : in);
    out->view_version = out->storage->version;
  }
  return 0;
}

/* out->tangent = tangent; on failure releases out */
static dl_tensor *with_tangent(dl_tensor *out, dl_tensor *tangent) {
  if (!tangent) {
    dl_tensor_release(out);
    return NULL;
  }
  dl_fw_set(out, tangent);
  return out;
}

static dl_tensor *fail(dl_tensor *out) {
  dl_tensor_release(out);
  return NULL;
}

typedef struct {
  int64_t shape[DL_MAX_DIMS];
  int ndim;
} shape_ctx;

static shape_ctx shape_of(const dl_tensor *t) {
  shape_ctx c;
  memcpy(c.shape, t->shape, sizeof c.shape);
  c.ndim = t->ndim;
  return c;
}

/* ---- reshape-like: view, reshape, squeeze, unsqueeze, flatten ---- */

static int reshape_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const shape_ctx *c = (const shape_ctx *)n->ctx;
  gin[0] = dl_ag_reshape(gout[0], c->shape, c->ndim);
  return gin[0] ? 0 : -1;
}
static const dl_node_type view_type = {"ViewBackward0", reshape_backward, NULL};
static const dl_node_type reshape_type = {"ReshapeAliasBackward0", reshape_backward, NULL};
static const dl_node_type squeeze_type = {"SqueezeBackward0", reshape_backward, NULL};
static const dl_node_type squeeze_dim_type = {"SqueezeBackward1", reshape_backward, NULL};
static const dl_node_type unsqueeze_type = {"UnsqueezeBackward0", reshape_backward, NULL};

/* records a reshape-like node and reshapes the tangent to out's shape */
static dl_tensor *finish_reshape(const dl_node_type *type, dl_tensor *t, dl_tensor *out) {
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    shape_ctx c = shape_of(t);
    if (record1(type, t, out, &c, sizeof c)) return fail(out);
  }
  if (!t->tangent) return out;
  dl_tensor *tn = dl_tensor_reshape(t->tangent, out->shape, out->ndim);
  if (tn && out->storage != t->storage && tn->storage == t->tangent->storage) {
    /* the value was copied: so is the tangent (an in-place op on out must
     * not write into t's tangent, dl_fw_set_inplace) */
    dl_tensor *c = dl_tensor_clone(tn);
    dl_tensor_release(tn);
    tn = c;
  }
  return with_tangent(out, tn);
}

dl_tensor *dl_ag_view(dl_tensor *t, const int64_t *shape, int ndim) {
  return finish_reshape(&view_type, t, dl_tensor_view(t, shape, ndim));
}
dl_tensor *dl_ag_reshape(dl_tensor *t, const int64_t *shape, int ndim) {
  return finish_reshape(&reshape_type, t, dl_tensor_reshape(t, shape, ndim));
}
dl_tensor *dl_ag_squeeze(dl_tensor *t, int dim) {
  return finish_reshape(dim == DL_ALL_DIMS ? &squeeze_type : &squeeze_dim_type, t, dl_tensor_squeeze(t, dim));
}
dl_tensor *dl_ag_unsqueeze(dl_tensor *t, int dim) {
  return finish_reshape(&unsqueeze_type, t, dl_tensor_unsqueeze(t, dim));
}
dl_tensor *dl_ag_flatten(dl_tensor *t, int start, int end) {
  return finish_reshape(&view_type, t, dl_tensor_flatten(t, start, end));
}

/* ---- transpose / permute ---- */

typedef struct {
  int d0, d1;
} transpose_ctx;

static int transpose_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const transpose_ctx *c = (const transpose_ctx *)n->ctx;
  gin[0] = dl_ag_transpose(gout[0], c->d0, c->d1);
  return gin[0] ? 0 : -1;
}
static const dl_node_type transpose_type = {"TransposeBackward0", transpose_backward, NULL};

dl_tensor *dl_ag_transpose(dl_tensor *t, int d0, int d1) {
  dl_tensor *out = dl_tensor_transpose(t, d0, d1);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    transpose_ctx c = {d0, d1};
    if (record1(&transpose_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, dl_tensor_transpose(t->tangent, d0, d1));
  return out;
}

/* t(): a matrix transposed, fewer dims as they are; PyTorch's TBackward0 */
static int t_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const transpose_ctx *c = (const transpose_ctx *)n->ctx;
  gin[0] = c->d0 == c->d1 ? dl_tensor_retain(gout[0]) : dl_ag_transpose(gout[0], c->d0, c->d1);
  return gin[0] ? 0 : -1;
}
static const dl_node_type t_type = {"TBackward0", t_backward, NULL};

dl_tensor *dl_ag_t(dl_tensor *t) {
  bool matrix = t->ndim == 2;
  dl_tensor *out = matrix ? dl_tensor_transpose(t, 0, 1) : dl_tensor_alias(t);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    transpose_ctx c = {0, matrix ? 1 : 0};
    if (record1(&t_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, matrix ? dl_tensor_transpose(t->tangent, 0, 1) : dl_tensor_retain(t->tangent));
  return out;
}

typedef struct {
  int inverse[DL_MAX_DIMS];
  int n;
} permute_ctx;

static int permute_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const permute_ctx *c = (const permute_ctx *)n->ctx;
  gin[0] = dl_ag_permute(gout[0], c->inverse, c->n);
  return gin[0] ? 0 : -1;
}
static const dl_node_type permute_type = {"PermuteBackward0", permute_backward, NULL};

dl_tensor *dl_ag_permute(dl_tensor *t, const int *perm, int n) {
  dl_tensor *out = dl_tensor_permute(t, perm, n);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    permute_ctx c = {{0}, n};
    for (int i = 0; i < n; i++) c.inverse[perm[i] < 0 ? perm[i] + n : perm[i]] = i;
    if (record1(&permute_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, dl_tensor_permute(t->tangent, perm, n));
  return out;
}

/* ---- narrow / select and their backward, embed ---- */

typedef struct {
  shape_ctx in;
  int dim;
  int64_t start, len;
} narrow_ctx;

static int narrow_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const narrow_ctx *c = (const narrow_ctx *)n->ctx;
  gin[0] = dl_ag_embed(gout[0], c->in.shape, c->in.ndim, c->dim, c->start);
  return gin[0] ? 0 : -1;
}
static const dl_node_type narrow_type = {"SliceBackward0", narrow_backward, NULL}; /* PyTorch's narrow is a slice */

dl_tensor *dl_ag_narrow(dl_tensor *t, int dim, int64_t start, int64_t len) {
  dl_tensor *out = dl_tensor_narrow(t, dim, start, len);
  if (!out) return NULL;
  dim = dl_wrap_dim("narrow", dim, t->ndim);
  if (dl_ag_needs1(t)) {
    narrow_ctx c = {shape_of(t), dim, start, len};
    if (record1(&narrow_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, dl_tensor_narrow(t->tangent, dim, start, len));
  return out;
}

static int select_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const narrow_ctx *c = (const narrow_ctx *)n->ctx;
  dl_tensor *u = dl_ag_unsqueeze(gout[0], c->dim);
  if (!u) return -1;
  gin[0] = dl_ag_embed(u, c->in.shape, c->in.ndim, c->dim, c->start);
  dl_tensor_release(u);
  return gin[0] ? 0 : -1;
}
static const dl_node_type select_type = {"SelectBackward0", select_backward, NULL};

bool dl_ag_cuts_region(const dl_node *n) { return n->type == &narrow_type || n->type == &select_type; }

dl_tensor *dl_ag_view_region(const dl_node *n, dl_tensor *full) {
  const narrow_ctx *c = (const narrow_ctx *)n->ctx;
  if (n->type == &select_type) return dl_tensor_select(full, c->dim, c->start);
  return dl_tensor_narrow(full, c->dim, c->start, c->len);
}

dl_tensor *dl_ag_select(dl_tensor *t, int dim, int64_t index) {
  dl_tensor *out = dl_tensor_select(t, dim, index);
  if (!out) return NULL;
  dim = dl_wrap_dim("select", dim, t->ndim);
  if (dl_ag_needs1(t)) {
    narrow_ctx c = {shape_of(t), dim, index, 1};
    if (record1(&select_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, dl_tensor_select(t->tangent, dim, index));
  return out;
}

typedef struct {
  int dim;
  int64_t start, len;
} embed_ctx;

static int embed_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const embed_ctx *c = (const embed_ctx *)n->ctx;
  gin[0] = dl_ag_narrow(gout[0], c->dim, c->start, c->len);
  return gin[0] ? 0 : -1;
}
static const dl_node_type embed_type = {"EmbedBackward0", embed_backward, NULL};

static dl_tensor *embed_raw(dl_tensor *g, const int64_t *shape, int ndim, int dim, int64_t start) {
  dl_tensor *out = dl_tensor_zeros(shape, ndim, g->dtype, dl_tensor_device(g));
  if (!out) return NULL;
  dl_tensor *slot = dl_tensor_narrow(out, dim, start, g->shape[dim]);
  int rc = slot ? dl_tensor_copy_(slot, g) : -1;
  dl_tensor_release(slot);
  if (rc) return fail(out);
  return out;
}

dl_tensor *dl_ag_embed(dl_tensor *g, const int64_t *shape, int ndim, int dim, int64_t start) {
  dl_tensor *out = embed_raw(g, shape, ndim, dim, start);
  if (!out) return NULL;
  if (dl_ag_needs1(g)) {
    embed_ctx c = {dim, start, g->shape[dim]};
    if (record1(&embed_type, g, out, &c, sizeof c)) return fail(out);
  }
  if (g->tangent) return with_tangent(out, embed_raw(g->tangent, shape, ndim, dim, start));
  return out;
}

/* ---- expand ---- */

static int expand_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const shape_ctx *c = (const shape_ctx *)n->ctx;
  gin[0] = dl_ag_sum_to(gout[0], c->shape, c->ndim);
  return gin[0] ? 0 : -1;
}
static const dl_node_type expand_type = {"ExpandBackward0", expand_backward, NULL};

dl_tensor *dl_ag_expand(dl_tensor *t, const int64_t *shape, int ndim) {
  dl_tensor *out = dl_tensor_expand(t, shape, ndim);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    shape_ctx c = shape_of(t);
    if (record1(&expand_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, dl_tensor_expand(t->tangent, shape, ndim));
  return out;
}

/* ---- unfold: windows overlap, so the gradient adds each window back ---- */

typedef struct {
  shape_ctx in;
  int dim;
  int64_t size, step;
} unfold_ctx;

static int unfold_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const unfold_ctx *c = (const unfold_ctx *)n->ctx;
  dl_tensor *g = gout[0];
  if (c->in.ndim == 0) { /* the [size] view of a number: its elements' sum */
    gin[0] = dl_ag_sum_to(g, c->in.shape, 0);
    return gin[0] ? 0 : -1;
  }
  int last = g->ndim - 1;
  dl_tensor *acc = NULL;
  for (int64_t w = 0; w < g->shape[c->dim]; w++) {
    /* window w: select along dim, then move the window dim back to dim */
    dl_tensor *s = dl_ag_select(g, c->dim, w);
    dl_tensor *m = s ? dl_ag_unsqueeze(s, c->dim) : NULL;
    dl_tensor *mt = m ? dl_ag_transpose(m, c->dim, last) : NULL;
    dl_tensor *sq = mt ? dl_ag_squeeze(mt, last) : NULL;
    dl_tensor *e = sq ? dl_ag_embed(sq, c->in.shape, c->in.ndim, c->dim, w * c->step) : NULL;
    dl_tensor_release(s);
    dl_tensor_release(m);
    dl_tensor_release(mt);
    dl_tensor_release(sq);
    if (!e) {
      dl_tensor_release(acc);
      return -1;
    }
    if (!acc) {
      acc = e;
    } else {
      dl_tensor *sum = dl_ag_add(acc, e);
      dl_tensor_release(acc);
      dl_tensor_release(e);
      if (!sum) return -1;
      acc = sum;
    }
  }
  if (!acc) acc = dl_tensor_zeros(c->in.shape, c->in.ndim, g->dtype, dl_tensor_device(g));
  gin[0] = acc;
  return acc ? 0 : -1;
}
static const dl_node_type unfold_type = {"UnfoldBackward0", unfold_backward, NULL};

dl_tensor *dl_ag_unfold(dl_tensor *t, int dim, int64_t size, int64_t step) {
  dl_tensor *out = dl_tensor_unfold(t, dim, size, step);
  if (!out) return NULL;
  dim = dl_wrap_dim("unfold", dim, t->ndim ? t->ndim : 1);
  if (dl_ag_needs1(t)) {
    unfold_ctx c = {shape_of(t), dim, size, step};
    if (record1(&unfold_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, dl_tensor_unfold(t->tangent, dim, size, step));
  return out;
}

/* ---- alias, clone, contiguous, dtype and device copies ---- */

static int identity_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  (void)n;
  gin[0] = dl_tensor_retain(gout[0]);
  return 0;
}
static const dl_node_type alias_type = {"AliasBackward0", identity_backward, NULL};
static const dl_node_type clone_type = {"CloneBackward0", identity_backward, NULL};

dl_tensor *dl_ag_alias(dl_tensor *t) {
  dl_tensor *out = dl_tensor_alias(t);
  if (!out) return NULL;
  if (dl_ag_needs1(t) && record1(&alias_type, t, out, NULL, 0)) return fail(out);
  if (t->tangent) return with_tangent(out, dl_tensor_retain(t->tangent));
  return out;
}

dl_tensor *dl_ag_clone(dl_tensor *t) {
  dl_tensor *out = dl_tensor_clone(t);
  if (!out) return NULL;
  if (dl_ag_needs1(t) && record1(&clone_type, t, out, NULL, 0)) return fail(out);
  if (t->tangent) return with_tangent(out, dl_tensor_clone(t->tangent));
  return out;
}

dl_tensor *dl_ag_contiguous(dl_tensor *t) {
  if (dl_tensor_is_contiguous(t)) return dl_tensor_retain(t);
  return dl_ag_clone(t);
}

typedef struct {
  dl_dtype dtype;
  dl_device device;
} copy_ctx;

static int to_copy_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const copy_ctx *c = (const copy_ctx *)n->ctx;
  dl_tensor *g = dl_ag_to_dtype(gout[0], c->dtype);
  if (!g) return -1;
  gin[0] = dl_ag_to_device(g, c->device);
  dl_tensor_release(g);
  return gin[0] ? 0 : -1;
}
static const dl_node_type to_copy_type = {"ToCopyBackward0", to_copy_backward, NULL};

dl_tensor *dl_ag_to_dtype(dl_tensor *t, dl_dtype dt) {
  dl_tensor *out = dl_tensor_to_dtype(t, dt);
  if (!out || out == t) return out;
  if (dl_ag_needs1(t) && dl_dtype_is_float(dt)) {
    copy_ctx c = {t->dtype, dl_tensor_device(t)};
    if (record1(&to_copy_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent && dl_dtype_is_float(dt)) return with_tangent(out, dl_tensor_to_dtype(t->tangent, dt));
  return out;
}

dl_tensor *dl_ag_to_device(dl_tensor *t, dl_device dev) {
  dl_tensor *out = dl_tensor_to_device(t, dev);
  if (!out || out == t) return out;
  if (dl_ag_needs1(t)) {
    copy_ctx c = {t->dtype, dl_tensor_device(t)};
    if (record1(&to_copy_type, t, out, &c, sizeof c)) return fail(out);
  }
  if (t->tangent) return with_tangent(out, dl_tensor_to_device(t->tangent, dev));
  return out;
}

/* ---- in-place copy_ and fill_ with history ---- */

typedef struct {
  shape_ctx src;
  dl_dtype src_dtype;
  /* for a write through a view: the view's place in its base */
  int64_t vshape[DL_MAX_DIMS], vstride[DL_MAX_DIMS], voffset;
  int vndim;
  bool through_view, has_src;
} copy_inplace_ctx;
_Static_assert(sizeof(copy_inplace_ctx) <= DL_NODE_CTX_BYTES, "copy_inplace_ctx fits a node");

/* the written region of g (g laid out like the base, contiguous) */
static dl_tensor *region_of(const copy_inplace_ctx *c, dl_tensor *g) {
  return dl_tensor_as_strided(g, c->vshape, c->vstride, c->vndim, g->offset + c->voffset);
}

/* The old values under the written region are gone: their gradient is zero
 * there; the source gets the region's gradient summed over broadcast dims.
 * Writes through a view (CopySlices) apply this to the view's region of the
 * base. */
static int copy_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const copy_inplace_ctx *c = (const copy_inplace_ctx *)n->ctx;
  dl_tensor *g = gout[0];
  dl_tensor *gsrc = NULL;
  if (c->through_view) {
    dl_tensor *gc = dl_tensor_clone(g); /* contiguous, like the base */
    if (!gc) return -1;
    if (c->has_src && (n->edges[1].fn || n->edges[1].leaf)) {
      dl_tensor *reg = region_of(c, gc);
      gsrc = reg ? dl_tensor_clone(reg) : NULL;
      dl_tensor_release(reg);
      if (!gsrc) {
        dl_tensor_release(gc);
        return -1;
      }
    }
    if (n->edges[0].fn || n->edges[0].leaf) {
      dl_tensor *reg = region_of(c, gc);
      if (!reg) {
        dl_tensor_release(gc);
        dl_tensor_release(gsrc);
        return -1;
      }
      dl_tensor_fill_(reg, dl_scalar_i(0));
      dl_tensor_release(reg);
      gin[0] = gc;
    } else {
      dl_tensor_release(gc);
    }
  } else {
    /* every old value was overwritten: a zero gradient (as PyTorch's, so
     * the inputs before the write still get a .grad) */
    gin[0] = NULL;
    if ((n->edges[0].fn || n->edges[0].leaf) &&
        !(gin[0] = dl_tensor_zeros(g->shape, g->ndim, g->dtype, dl_tensor_device(g))))
      return -1;
    if (c->has_src && (n->edges[1].fn || n->edges[1].leaf)) gsrc = dl_tensor_retain(g);
  }
  if (gsrc) {
    dl_tensor *s = dl_ag_sum_to(gsrc, c->src.shape, c->src.ndim);
    dl_tensor_release(gsrc);
    if (!s) return -1;
    gin[1] = dl_ag_to_dtype(s, c->src_dtype);
    dl_tensor_release(s);
    if (!gin[1]) return -1;
  }
  return 0;
}
static const dl_node_type copy_type = {"CopyBackwards", copy_backward, NULL};
static const dl_node_type copy_slices_type = {"CopySlices", copy_backward, NULL};
static const dl_node_type fill_type = {"FillBackward0", copy_backward, NULL};

/* After a write into dst (src may be NULL for fill_): record history on dst,
 * or, when dst is a recorded view, on its base (and re-derive dst from it). */
static int record_write(dl_tensor *dst, dl_tensor *src, const dl_node_type *plain_type, dl_node **pending) {
  *pending = NULL;
  if (!dl_grad_enabled() || !dl_dtype_is_float(dst->dtype)) return 0;
  dl_tensor *base = dst->base;
  bool view = base && base->storage == dst->storage;
  dl_tensor *target = view ? base : dst;
  bool src_grad = src && src->requires_grad;
  if (!target->requires_grad && !src_grad && !dst->requires_grad) return 0;
  if (view && !dl_tensor_is_contiguous(base)) {
    dl_error_set("copy_: writing through a view of a non-contiguous tensor that requires grad is not supported");
    return -1;
  }
  dl_tensor *inputs[2] = {target, src};
  dl_node *node = dl_node_new(view ? &copy_slices_type : plain_type, inputs, src ? 2 : 1, 1);
  if (!node) return -1;
  copy_inplace_ctx *c = (copy_inplace_ctx *)node->ctx;
  memset(c, 0, sizeof *c);
  c->through_view = view;
  c->has_src = src != NULL;
  if (src) {
    c->src = shape_of(src);
    c->src_dtype = src->dtype;
  }
  if (view) {
    memcpy(c->vshape, dst->shape, sizeof c->vshape);
    memcpy(c->vstride, dst->stride, sizeof c->vstride);
    c->vndim = dst->ndim;
    c->voffset = dst->offset - base->offset;
  }
  *pending = node;
  return 0;
}

/* A view re-derived from its base (after a write through it, or when the
 * base was written in place since the view was taken): the gradient of
 * the base is the view's gradient placed at the view's elements. The base's
 * gradient has the base's strides over a zeroed span of its storage, so a
 * non-contiguous base works too; a view whose elements share memory (an
 * expanded or overlapping unfolded one) adds its gradients up there. */
typedef struct {
  shape_ctx base;
  int64_t bstride[DL_MAX_DIMS], boffset; /* the base, in the span */
  int64_t vshape[DL_MAX_DIMS], vstride[DL_MAX_DIMS], voffset; /* the view, in the span */
  int64_t span;
  int vndim;
} restride_ctx;
_Static_assert(sizeof(restride_ctx) <= DL_NODE_CTX_BYTES, "restride_ctx fits a node");

/* no two elements of (shape, stride) are one memory location (sufficient:
 * each stride, in increasing order, passes everything the smaller ones reach) */
static bool injective(const int64_t *shape, const int64_t *stride, int ndim) {
  int idx[DL_MAX_DIMS], n = 0;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) return true;
    if (shape[d] > 1) idx[n++] = d;
  }
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && stride[idx[j]] < stride[idx[j - 1]]; j--) {
      int tmp = idx[j];
      idx[j] = idx[j - 1], idx[j - 1] = tmp;
    }
  int64_t reached = 0;
  for (int i = 0; i < n; i++) {
    if (stride[idx[i]] <= reached) return false;
    reached += (shape[idx[i]] - 1) * stride[idx[i]];
  }
  return true;
}

/* flat[voffset + sum_d i_d vstride_d] += g[i] for every index i (the 1-based
 * positions made on the host, then moved to g's device) */
static int add_at_view(dl_tensor *flat, const restride_ctx *c, dl_tensor *g) {
  int64_t n = 1;
  for (int d = 0; d < c->vndim; d++) n *= c->vshape[d];
  int64_t one = n;
  dl_tensor *pos = dl_tensor_empty(&one, 1, DL_INT64, dl_device_cpu());
  if (!pos) return -1;
  int64_t *p = dl_tensor_data(pos), at[DL_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    int64_t off = c->voffset;
    for (int d = 0; d < c->vndim; d++) off += at[d] * c->vstride[d];
    p[i] = off + 1;
    for (int d = c->vndim - 1; d >= 0 && ++at[d] == c->vshape[d]; d--) at[d] = 0;
  }
  dl_tensor *dpos = dl_tensor_to_device(pos, dl_tensor_device(g));
  dl_tensor *gc = dl_tensor_contiguous(g);
  dl_tensor *g1 = gc ? dl_tensor_as_strided(gc, &one, (int64_t[]){1}, 1, gc->offset) : NULL;
  int rc = dpos && g1 ? dl_op_index_add_(flat, 0, dpos, g1, dl_scalar_i(1)) : -1;
  dl_tensor_release(pos);
  dl_tensor_release(dpos);
  dl_tensor_release(gc);
  dl_tensor_release(g1);
  return rc;
}

/* the adjoint of restride_backward's placement, for a double backward: the
 * base-shaped h laid out in the span, read at the view's elements (a gather;
 * where they share memory each reads the sum's one value) */
static int restride_grad_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const restride_ctx *c = (const restride_ctx *)n->ctx;
  dl_tensor *h = gout[0];
  int64_t span = c->span;
  dl_tensor *flat = dl_tensor_zeros(&span, 1, h->dtype, dl_tensor_device(h));
  dl_tensor *b = flat ? dl_tensor_as_strided(flat, c->base.shape, c->bstride, c->base.ndim, c->boffset) : NULL;
  dl_tensor *v = b && dl_tensor_copy_(b, h) == 0
                     ? dl_tensor_as_strided(flat, c->vshape, c->vstride, c->vndim, c->voffset)
                     : NULL;
  gin[0] = v ? dl_tensor_clone(v) : NULL;
  dl_tensor_release(flat);
  dl_tensor_release(b);
  dl_tensor_release(v);
  return gin[0] ? 0 : -1;
}
static const dl_node_type restride_grad_type = {"AsStridedScatterBackward0", restride_grad_backward, NULL};

static int restride_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const restride_ctx *c = (const restride_ctx *)n->ctx;
  dl_tensor *g = gout[0];
  int64_t span = c->span;
  dl_tensor *flat = dl_tensor_zeros(&span, 1, g->dtype, dl_tensor_device(g));
  if (!flat) return -1;
  int rc;
  if (injective(c->vshape, c->vstride, c->vndim)) {
    dl_tensor *reg = dl_tensor_as_strided(flat, c->vshape, c->vstride, c->vndim, c->voffset);
    rc = reg ? dl_tensor_copy_(reg, g) : -1;
    dl_tensor_release(reg);
  } else {
    rc = add_at_view(flat, c, g);
  }
  gin[0] = rc ? NULL : dl_tensor_as_strided(flat, c->base.shape, c->bstride, c->base.ndim, c->boffset);
  dl_tensor_release(flat);
  if (!gin[0]) return -1;
  if (dl_grad_enabled() && g->requires_grad) { /* create_graph: the placement is linear in g */
    dl_node *r = dl_ag_record(&restride_grad_type, &g, 1, gin[0]);
    if (!r) return -1;
    memcpy(r->ctx, c, sizeof *c);
  }
  return 0;
}
static const dl_node_type restride_type = {"AsStridedBackward0", restride_backward, NULL};

/* view derives from base's current history (a node; 0, or -1 out of memory) */
static int rederive(dl_tensor *view, dl_tensor *base) {
  dl_node *a = dl_node_new(&restride_type, &base, 1, 1);
  if (!a) return -1;
  restride_ctx *c = (restride_ctx *)a->ctx;
  int64_t lo;
  dl_tensor_reach(base, &lo, &c->span);
  c->base = shape_of(base);
  memcpy(c->bstride, base->stride, sizeof c->bstride);
  c->boffset = base->offset - lo;
  memcpy(c->vshape, view->shape, sizeof c->vshape);
  memcpy(c->vstride, view->stride, sizeof c->vstride);
  c->vndim = view->ndim;
  c->voffset = view->offset - lo;
  dl_node *old = view->grad_fn;
  if (old && view->retains_grad && old->retained[view->output_nr] == view) { /* retain_grad follows the view */
    old->retained[view->output_nr] = NULL;
    a->retained[0] = view;
  }
  dl_node_set_output(a, view, 0);
  dl_node_release(a);
  view->view_version = view->storage->version;
  return 0;
}

int dl_ag_view_rederive(dl_tensor *view) {
  dl_tensor *base = view->base;
  if (base->storage != view->storage || !base->grad_fn || !view->requires_grad) {
    view->view_version = view->storage->version;
    return 0;
  }
  return rederive(view, base);
}

/* the write happened: attach the history */
static int finish_write(dl_tensor *dst, dl_node *node) {
  if (!node) return 0;
  dl_tensor *base = dst->base;
  bool view = ((copy_inplace_ctx *)node->ctx)->through_view;
  dl_node_set_output(node, view ? base : dst, 0);
  dl_node_release(node);
  if (view) return rederive(dst, base); /* dst now derives from the rebased base */
  return 0;
}

/* Forward mode for a write: dst's tangent must be the region of its base's
 * tangent, so writing it updates the base's tangent too. */
static int ensure_tangent(dl_tensor *dst) {
  dl_tensor *base = dst->base && dst->base->storage == dst->storage ? dst->base : NULL;
  if (!base) {
    if (!dst->tangent) dst->tangent = dl_tensor_zeros(dst->shape, dst->ndim, dst->dtype, dl_tensor_device(dst));
    return dst->tangent ? 0 : -1;
  }
  if (!base->tangent) {
    base->tangent = dl_tensor_zeros(base->shape, base->ndim, base->dtype, dl_tensor_device(base));
    if (!base->tangent) return -1;
  }
  for (int d = 0; d < base->ndim; d++) {
    if (base->tangent->stride[d] != base->stride[d]) {
      dl_error_set("copy_: forward mode through a view needs its base's tangent laid out like the base");
      return -1;
    }
  }
  dl_tensor *v = dl_tensor_as_strided(base->tangent, dst->shape, dst->stride, dst->ndim,
                                      base->tangent->offset + dst->offset - base->offset);
  if (!v) return -1;
  dl_fw_set(dst, v);
  return 0;
}

/* Forward mode for an in-place op: t (taken over) is the new tangent of
 * self. It is written into the tangent self already has (or into its
 * base's, for a recorded view), which views of self's storage share, so
 * they see the write, as in PyTorch; only a tangent that cannot take the
 * write (none yet, or an expanded one) is replaced. */
int dl_fw_set_inplace(dl_tensor *self, dl_tensor *t) {
  if (!t) return -1;
  dl_tensor *base = self->base && self->base->storage == self->storage ? self->base : NULL;
  bool into_base = base && (base->tangent || self->tangent);
  if (into_base && base->tangent)
    for (int d = 0; d < base->ndim; d++) into_base = into_base && base->tangent->stride[d] == base->stride[d];
  dl_tensor *dst = self->tangent;
  if (into_base) {
    if (ensure_tangent(self)) {
      dl_tensor_release(t);
      return -1;
    }
    dst = self->tangent;
  }
  for (int d = 0; dst && d < dst->ndim; d++)
    if (dst->stride[d] == 0 && dst->shape[d] > 1) dst = NULL;
  if (!dst || !dl_tensor_same_shape(dst, self)) return dl_fw_set(self, t);
  int rc = dl_tensor_copy_(dst, t);
  dl_tensor_release(t);
  return rc;
}

int dl_ag_copy_(dl_tensor *dst, dl_tensor *src) {
  if (dl_grad_enabled() && dst->requires_grad && !dst->grad_fn) return dl_ag_check_inplace("copy_", dst);
  if (dst->base && dst->base->requires_grad && !dst->base->grad_fn && dl_grad_enabled()) {
    dl_error_set("copy_: a view of a leaf tensor that requires grad is being used in an in-place operation");
    return -1;
  }
  dl_node *node;
  if (record_write(dst, src, &copy_type, &node)) return -1;
  if (dl_tensor_copy_(dst, src)) {
    dl_node_release(node);
    return -1;
  }
  if (finish_write(dst, node)) return -1;
  if (src->tangent || dst->tangent || (dst->base && dst->base->tangent)) {
    dl_tensor *st = dl_fw_tangent_or_zeros(src);
    int rc = st && ensure_tangent(dst) == 0 ? dl_tensor_copy_(dst->tangent, st) : -1;
    dl_tensor_release(st);
    if (rc) return -1;
  }
  return 0;
}

int dl_ag_fill_(dl_tensor *dst, dl_scalar v) {
  if (dl_grad_enabled() && dst->requires_grad && !dst->grad_fn) return dl_ag_check_inplace("fill_", dst);
  if (dst->base && dst->base->requires_grad && !dst->base->grad_fn && dl_grad_enabled()) {
    dl_error_set("fill_: a view of a leaf tensor that requires grad is being used in an in-place operation");
    return -1;
  }
  dl_node *node;
  if (record_write(dst, NULL, &fill_type, &node)) return -1;
  dl_tensor_fill_(dst, v);
  if (finish_write(dst, node)) return -1;
  if (dst->tangent || (dst->base && dst->base->tangent)) {
    if (ensure_tangent(dst)) return -1;
    dl_tensor_fill_(dst->tangent, dl_scalar_i(0));
  }
  return 0;
}

