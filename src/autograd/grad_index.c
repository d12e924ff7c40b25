/* grad_index.c — gathering, scattering, masking (masked_select, triu/tril)
 * and sorting: forward,
 * backward rule and jvp rule of each, side by side. gather/scatter_add and
 * index_select/index_add are each other's backward, so every rule here is
 * written with these differentiable ops and second derivatives follow.
 * Joining and reordering (cat, stack, flip, roll) are in grad_join.c. */
#include "dl_ag_index.h"

#include "../ops/dl_ewise.h"
#include "dl_ag_view.h"
#include "dl_autograd.h"
#include "dl_autograd_ops.h"

#include <string.h>

static bool wants(const dl_node *n, int i) { return n->edges[i].fn || n->edges[i].leaf; }

static dl_tensor *fail(dl_tensor *out) {
  dl_tensor_release(out);
  return NULL;
}

/* zeros of shape on g's device, with g's dtype */
static dl_tensor *zeros_like_shape(const dl_tensor *g, const int64_t *shape, int ndim) {
  return dl_tensor_zeros(shape, ndim, g->dtype, dl_tensor_device(g));
}

typedef struct {
  int64_t shape[DL_MAX_DIMS]; /* input shape */
  int ndim;
  int dim;
} select_ctx;

static select_ctx select_ctx_of(const dl_tensor *t, int dim) {
  select_ctx c;
  memcpy(c.shape, t->shape, sizeof c.shape);
  c.ndim = t->ndim;
  c.dim = dim;
  return c;
}

/* ---- scale: g * alpha (index_add's alpha), differentiable ---- */

typedef struct {
  dl_scalar alpha;
} scale_ctx;

static dl_tensor *scale(dl_tensor *t, dl_scalar alpha);

static int scale_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  gin[0] = scale(gout[0], ((const scale_ctx *)n->ctx)->alpha);
  return gin[0] ? 0 : -1;
}
static const dl_node_type scale_type = {"MulBackward0", scale_backward, NULL}; /* PyTorch names t * number so */

static dl_tensor *scale(dl_tensor *t, dl_scalar alpha) {
  if (alpha.is_int ? alpha.i == 1 : alpha.f == 1.0) return dl_tensor_retain(t);
  dl_tensor *out = dl_op_binary_ex(DL_BIN_MUL, dl_operand_tensor(t), dl_operand_scalar(alpha), dl_scalar_i(1));
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    dl_node *node = dl_ag_record(&scale_type, &t, 1, out);
    if (!node) return fail(out);
    scale_ctx c = {alpha};
    memcpy(node->ctx, &c, sizeof c);
  }
  if (t->tangent &&
      dl_fw_set(out, dl_op_binary_ex(DL_BIN_MUL, dl_operand_tensor(t->tangent), dl_operand_scalar(alpha),
                                     dl_scalar_i(1))))
    return fail(out);
  return out;
}

/* ---- index_select / gather ---- */

static int index_select_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const select_ctx *c = (const select_ctx *)n->ctx;
  dl_tensor *idx = dl_node_saved(n, 0);
  if (!idx) return -1;
  dl_tensor *z = zeros_like_shape(gout[0], c->shape, c->ndim);
  gin[0] = z ? dl_ag_index_add(z, c->dim, idx, gout[0], dl_scalar_i(1)) : NULL;
  dl_tensor_release(z);
  dl_tensor_release(idx);
  return gin[0] ? 0 : -1;
}
static const dl_node_type index_select_type = {"IndexSelectBackward0", index_select_backward, NULL};

static int gather_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const select_ctx *c = (const select_ctx *)n->ctx;
  dl_tensor *idx = dl_node_saved(n, 0);
  if (!idx) return -1;
  dl_tensor *z = zeros_like_shape(gout[0], c->shape, c->ndim);
  gin[0] = z ? dl_ag_scatter_add(z, c->dim, idx, gout[0]) : NULL;
  dl_tensor_release(z);
  dl_tensor_release(idx);
  return gin[0] ? 0 : -1;
}
static const dl_node_type gather_type = {"GatherBackward0", gather_backward, NULL};

/* records a node reading t along dim at idx (saved); 0 or -1 */
static int record_select(const dl_node_type *type, dl_tensor *t, int dim, dl_tensor *idx, dl_tensor *out) {
  dl_node *node = dl_ag_record(type, &t, 1, out);
  if (!node) return -1;
  select_ctx c = select_ctx_of(t, dim);
  memcpy(node->ctx, &c, sizeof c);
  dl_node_save(node, idx);
  return 0;
}

dl_tensor *dl_ag_index_select(dl_tensor *t, int dim, dl_tensor *idx) {
  dl_tensor *out = dl_op_index_select(t, dim, idx);
  if (!out) return NULL;
  if (dl_ag_needs1(t) && record_select(&index_select_type, t, dim, idx, out)) return fail(out);
  if (t->tangent && dl_fw_set(out, dl_op_index_select(t->tangent, dim, idx))) return fail(out);
  return out;
}

dl_tensor *dl_ag_gather(dl_tensor *t, int dim, dl_tensor *idx) {
  dl_tensor *out = dl_op_gather(t, dim, idx);
  if (!out) return NULL;
  if (dl_ag_needs1(t) && record_select(&gather_type, t, dim, idx, out)) return fail(out);
  if (t->tangent && dl_fw_set(out, dl_op_gather(t->tangent, dim, idx))) return fail(out);
  return out;
}

/* ---- the scatter family: scatter, scatter_add, index_add/copy/fill ----
 * All are linear in (self, src) apart from a constant fill value, so each
 * jvp rule is the same op on the tangents with the value 0. */

typedef enum { P_SCATTER, P_SCATTER_VALUE, P_SCATTER_ADD, P_INDEX_ADD, P_INDEX_COPY, P_INDEX_FILL } put_kind;

typedef struct {
  put_kind kind;
  int dim;
  dl_scalar alpha;
  int64_t src_shape[DL_MAX_DIMS];
  int src_ndim;
} put_ctx;

_Static_assert(sizeof(put_ctx) <= DL_NODE_CTX_BYTES, "put_ctx fits a node");

static const char *const inplace_names[] = {"scatter_", "scatter_", "scatter_add_", "index_add_", "index_copy_",
                                            "index_fill_"};

/* the plain in-place op */
static int put_raw(put_kind k, dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar v) {
  switch (k) {
  case P_SCATTER: return dl_op_scatter_(self, dim, idx, src);
  case P_SCATTER_VALUE: return dl_op_scatter_value_(self, dim, idx, v);
  case P_SCATTER_ADD: return dl_op_scatter_add_(self, dim, idx, src);
  case P_INDEX_ADD: return dl_op_index_add_(self, dim, idx, src, v);
  case P_INDEX_COPY: return dl_op_index_copy_(self, dim, idx, src);
  default: return dl_op_index_fill_(self, dim, idx, v);
  }
}

/* s (gathered at the index's shape) brought to src's shape: src may be
 * larger than the index outside dim (its other elements get no gradient),
 * and 0-d and [1] stand for each other */
static dl_tensor *fit_to(dl_tensor *s, const int64_t *shape, int ndim) {
  dl_tensor *cur = dl_tensor_retain(s);
  if (cur->ndim != ndim) {
    int64_t one = 1;
    dl_tensor *r = dl_ag_reshape(cur, ndim ? &one : shape, ndim ? 1 : 0);
    dl_tensor_release(cur);
    if (!r) return NULL;
    cur = r;
  }
  for (int d = 0; d < ndim; d++) {
    if (cur->shape[d] == shape[d]) continue;
    int64_t sh[DL_MAX_DIMS];
    memcpy(sh, cur->shape, sizeof(int64_t) * (size_t)ndim);
    sh[d] = shape[d];
    dl_tensor *e = dl_ag_embed(cur, sh, ndim, d, 0);
    dl_tensor_release(cur);
    if (!e) return NULL;
    cur = e;
  }
  return cur;
}

static int put_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const put_ctx *c = (const put_ctx *)n->ctx;
  dl_tensor *g = gout[0];
  dl_tensor *idx = dl_node_saved(n, 0);
  if (!idx) return -1;
  int rc = -1;
  if (wants(n, 0)) {
    switch (c->kind) {
    case P_SCATTER:
    case P_SCATTER_VALUE: gin[0] = dl_ag_scatter_value(g, c->dim, idx, dl_scalar_i(0)); break;
    case P_SCATTER_ADD:
    case P_INDEX_ADD: gin[0] = dl_tensor_retain(g); break;
    default: gin[0] = dl_ag_index_fill(g, c->dim, idx, dl_scalar_i(0)); break;
    }
    if (!gin[0]) goto done;
  }
  if (n->nedges > 1 && wants(n, 1)) {
    dl_tensor *s = NULL;
    switch (c->kind) {
    case P_SCATTER:
    case P_SCATTER_ADD: {
      dl_tensor *gg = dl_ag_gather(g, c->dim, idx);
      if (gg) s = fit_to(gg, c->src_shape, c->src_ndim);
      dl_tensor_release(gg);
      break;
    }
    case P_INDEX_ADD: {
      dl_tensor *gs = dl_ag_index_select(g, c->dim, idx);
      if (gs) s = scale(gs, c->alpha);
      dl_tensor_release(gs);
      break;
    }
    default: s = dl_ag_index_select(g, c->dim, idx); break;
    }
    if (s && s->ndim != c->src_ndim) { /* 0-d src against a [1] index */
      dl_tensor *r = dl_ag_reshape(s, c->src_shape, c->src_ndim);
      dl_tensor_release(s);
      s = r;
    }
    if (!(gin[1] = s)) goto done;
  }
  rc = 0;
done:
  dl_tensor_release(idx);
  return rc;
}

static const dl_node_type put_types[] = {
  {"ScatterBackward0", put_backward, NULL},  {"ScatterBackward1", put_backward, NULL},
  {"ScatterAddBackward0", put_backward, NULL}, {"IndexAddBackward0", put_backward, NULL},
  {"IndexCopyBackward0", put_backward, NULL}, {"IndexFillBackward0", put_backward, NULL},
};

/* out-of-place (a clone of self is written) or in place on self; returns the
 * written tensor (a new reference) or NULL with an error */
static dl_tensor *put(put_kind k, bool inplace, dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src,
                      dl_scalar v) {
  dl_tensor *in[2] = {self, src};
  int nin = src ? 2 : 1;
  if (inplace && dl_ag_check_inplace(inplace_names[k], self)) return NULL;
  bool record = dl_ag_needs_grad(in, nin) && dl_dtype_is_float(self->dtype);
  dl_tensor *out = inplace ? dl_tensor_retain(self) : dl_tensor_clone(self);
  if (!out) return NULL;
  /* the node is made before the write: its edge to self is self's old history */
  dl_node *node = record ? dl_node_new(&put_types[k], in, nin, 1) : NULL;
  if (record && !node) return fail(out);
  if (put_raw(k, out, dim, idx, src, v)) {
    dl_node_release(node);
    return fail(out);
  }
  if (node) {
    put_ctx c = {k, dim, v, {0}, 0};
    if (src) {
      memcpy(c.src_shape, src->shape, sizeof c.src_shape);
      c.src_ndim = src->ndim;
    }
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save(node, idx);
    dl_node_set_output(node, out, 0);
    dl_node_release(node);
  }
  if (dl_fw_any(in, nin)) {
    /* a fresh tangent, written into self's in place (dl_fw_set_inplace) */
    dl_tensor *ts = dl_fw_tangent_or_zeros(self);
    dl_tensor *tc = ts ? dl_tensor_clone(ts) : NULL;
    dl_tensor *tsrc = src ? dl_fw_tangent_or_zeros(src) : NULL;
    dl_scalar tv = k == P_INDEX_ADD ? v : dl_scalar_i(0);
    int rc = tc && (!src || tsrc) ? put_raw(k, tc, dim, idx, tsrc, tv) : -1;
    dl_tensor_release(ts);
    dl_tensor_release(tsrc);
    if (rc) {
      dl_tensor_release(tc);
      return fail(out);
    }
    if (inplace ? dl_fw_set_inplace(out, tc) : dl_fw_set(out, tc)) return fail(out);
  }
  return out;
}

/* in-place forms: 0 or -1 */
static int put_(put_kind k, dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar v) {
  dl_tensor *r = put(k, true, self, dim, idx, src, v);
  if (!r) return -1;
  dl_tensor_release(r);
  return 0;
}

dl_tensor *dl_ag_scatter(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return put(P_SCATTER, false, self, dim, idx, src, dl_scalar_i(1));
}
int dl_ag_scatter_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return put_(P_SCATTER, self, dim, idx, src, dl_scalar_i(1));
}
dl_tensor *dl_ag_scatter_value(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value) {
  return put(P_SCATTER_VALUE, false, self, dim, idx, NULL, value);
}
int dl_ag_scatter_value_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value) {
  return put_(P_SCATTER_VALUE, self, dim, idx, NULL, value);
}
dl_tensor *dl_ag_scatter_add(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return put(P_SCATTER_ADD, false, self, dim, idx, src, dl_scalar_i(1));
}
int dl_ag_scatter_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return put_(P_SCATTER_ADD, self, dim, idx, src, dl_scalar_i(1));
}
dl_tensor *dl_ag_index_add(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar alpha) {
  return put(P_INDEX_ADD, false, self, dim, idx, src, alpha);
}
int dl_ag_index_add_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src, dl_scalar alpha) {
  return put_(P_INDEX_ADD, self, dim, idx, src, alpha);
}
dl_tensor *dl_ag_index_copy(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return put(P_INDEX_COPY, false, self, dim, idx, src, dl_scalar_i(1));
}
int dl_ag_index_copy_(dl_tensor *self, int dim, dl_tensor *idx, dl_tensor *src) {
  return put_(P_INDEX_COPY, self, dim, idx, src, dl_scalar_i(1));
}
dl_tensor *dl_ag_index_fill(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value) {
  return put(P_INDEX_FILL, false, self, dim, idx, NULL, value);
}
int dl_ag_index_fill_(dl_tensor *self, int dim, dl_tensor *idx, dl_scalar value) {
  return put_(P_INDEX_FILL, self, dim, idx, NULL, value);
}

/* ---- masked_select: the gradient goes back to the selected positions ---- */

typedef struct {
  int64_t in_shape[DL_MAX_DIMS];
  int64_t shape[DL_MAX_DIMS]; /* t and mask broadcast */
  int in_ndim, ndim;
} masked_ctx;

_Static_assert(sizeof(masked_ctx) <= DL_NODE_CTX_BYTES, "masked_ctx fits a node");

/* zeros of the broadcast shape with g (1-D) added at the mask's true
 * positions in C order, via index_add on the flat tensor (differentiable,
 * its backward is index_select = masked_select) */
static int masked_select_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const masked_ctx *c = (const masked_ctx *)n->ctx;
  dl_tensor *mask = dl_node_saved(n, 0);
  if (!mask) return -1;
  int64_t numel = 1;
  for (int d = 0; d < c->ndim; d++) numel *= c->shape[d];
  dl_tensor *me = dl_tensor_expand(mask, c->shape, c->ndim);
  dl_tensor *flat = me ? dl_tensor_reshape(me, &numel, 1) : NULL;
  dl_tensor *nz = flat ? dl_op_nonzero(flat) : NULL;
  dl_tensor *pos = nz ? dl_tensor_view(nz, nz->shape, 1) : NULL;
  dl_tensor *z = pos ? zeros_like_shape(gout[0], &numel, 1) : NULL;
  dl_tensor *full = z ? dl_ag_index_add(z, 0, pos, gout[0], dl_scalar_i(1)) : NULL;
  dl_tensor *r = full ? dl_ag_reshape(full, c->shape, c->ndim) : NULL;
  gin[0] = r ? dl_ag_sum_to(r, c->in_shape, c->in_ndim) : NULL;
  dl_tensor *tmp[] = {mask, me, flat, nz, pos, z, full, r};
  for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) dl_tensor_release(tmp[i]);
  return gin[0] ? 0 : -1;
}
static const dl_node_type masked_select_type = {"MaskedSelectBackward0", masked_select_backward, NULL};

dl_tensor *dl_ag_masked_select(dl_tensor *t, dl_tensor *mask) {
  dl_tensor *out = dl_op_masked_select(t, mask);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    masked_ctx c;
    memcpy(c.in_shape, t->shape, sizeof c.in_shape);
    c.in_ndim = t->ndim;
    /* cannot fail: the forward broadcast these shapes */
    dl_broadcast_shapes("masked_select", t->shape, t->ndim, mask->shape, mask->ndim, c.shape, &c.ndim);
    dl_node *node = dl_ag_record(&masked_select_type, &t, 1, out);
    if (!node) return fail(out);
    memcpy(node->ctx, &c, sizeof c);
    dl_node_save(node, mask);
  }
  if (t->tangent && dl_fw_set(out, dl_op_masked_select(t->tangent, mask))) return fail(out);
  return out;
}

/* ---- sort / topk: values are t gathered at the indices ---- */

/* the values' gradient is scattered back through the indices: gather's rule */
static const dl_node_type sort_type = {"SortBackward0", gather_backward, NULL};
static const dl_node_type topk_type = {"TopkBackward0", gather_backward, NULL};

/* records values' node and tangent; on failure releases both outputs */
static int finish_values(const dl_node_type *type, dl_tensor *t, int dim, dl_tensor **values, dl_tensor **indices) {
  if (dl_ag_needs1(t) && record_select(type, t, dim, *indices, *values)) goto fail;
  if (t->tangent && dl_fw_set(*values, dl_op_gather(t->tangent, dim, *indices))) goto fail;
  return 0;
fail:
  dl_tensor_release(*values);
  dl_tensor_release(*indices);
  *values = *indices = NULL;
  return -1;
}

int dl_ag_sort(dl_tensor *t, int dim, bool descending, dl_tensor **values, dl_tensor **indices) {
  if (dl_op_sort(t, dim, descending, values, indices)) return -1;
  return finish_values(&sort_type, t, dim, values, indices);
}

int dl_ag_topk(dl_tensor *t, int64_t k, int dim, bool largest, bool sorted, dl_tensor **values,
               dl_tensor **indices) {
  if (dl_op_topk(t, k, dim, largest, sorted, values, indices)) return -1;
  return finish_values(&topk_type, t, dim, values, indices);
}


/* ---- triu / tril: the gradient and the tangent masked the same way ---- */

typedef struct {
  int64_t k;
  bool upper;
} tri_ctx;

static int tri_backward(dl_node *n, dl_tensor *const *gout, dl_tensor **gin) {
  const tri_ctx *c = (const tri_ctx *)n->ctx;
  gin[0] = dl_ag_tri(gout[0], c->k, c->upper);
  return gin[0] ? 0 : -1;
}
static const dl_node_type triu_type = {"TriuBackward0", tri_backward, NULL};
static const dl_node_type tril_type = {"TrilBackward0", tri_backward, NULL};

dl_tensor *dl_ag_tri(dl_tensor *t, int64_t k, bool upper) {
  dl_tensor *out = dl_op_tri(t, k, upper);
  if (!out) return NULL;
  if (dl_ag_needs1(t)) {
    dl_node *node = dl_ag_record(upper ? &triu_type : &tril_type, &t, 1, out);
    if (!node) return fail(out);
    tri_ctx c = {k, upper};
    memcpy(node->ctx, &c, sizeof c);
  }
  if (t->tangent && dl_fw_set(out, dl_op_tri(t->tangent, k, upper))) return fail(out);
  return out;
}
