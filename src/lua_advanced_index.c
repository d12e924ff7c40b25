/* lua_advanced_index.c — a tensor as the key of t[...] (PyTorch's advanced
 * indexing), for lua_tensor.c's __index / __newindex:
 *   t[mask]       bool mask of t's shape, or of its leading dims: the
 *                 selected elements (or rows), a new tensor
 *   t[idx]        int64 indices (1-based) into dim 1: idx's shape followed
 *                 by t's other dims, a new tensor
 *   t[mask] = v   v a number, a one-element tensor, or a tensor holding as
 *                 many values as the mask selects (in order)
 *   t[idx] = v    v a number, or a tensor of the selected rows' shape
 * Reads and writes are differentiable: reads are masked_select and
 * index_select; a write computes the new t out of place (masked_fill,
 * where, index_copy, index_fill) and copies it in, so t may be any view. */
#include "lua_dlua.h"

#include "autograd/dl_ag_ewise.h"
#include "autograd/dl_ag_index.h"
#include "autograd/dl_ag_view.h"
#include "ops/dl_index.h"

static void release2(dl_tensor *a, dl_tensor *b) {
  dl_tensor_release(a);
  dl_tensor_release(b);
}

/* the mask made t's shape: itself when it is, else a view expanded over
 * the trailing dims it lacks; an error naming both shapes otherwise */
static dl_tensor *full_mask(lua_State *L, dl_tensor *t, dl_tensor *mask) {
  bool leading = mask->ndim <= t->ndim;
  for (int d = 0; leading && d < mask->ndim; d++) leading = mask->shape[d] == t->shape[d];
  if (!leading) {
    char a[128], b[128];
    luaL_error(L, "dl.index: a mask of shape %s does not fit a tensor of shape %s (it must match its leading dims)",
               dl_tensor_shape_str(mask, a, sizeof a), dl_tensor_shape_str(t, b, sizeof b));
  }
  if (mask->ndim == t->ndim) return dl_tensor_retain(mask);
  int64_t shape[DL_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) shape[d] = d < mask->ndim ? mask->shape[d] : 1;
  dl_tensor *v = dl_tensor_view(mask, shape, t->ndim);
  dl_tensor *e = v ? dl_tensor_expand(v, t->shape, t->ndim) : NULL;
  dl_tensor_release(v);
  if (!e) dlua_engine_error(L);
  return e;
}

/* the 1-based positions a mask selects, flattened (int64 [count]) */
static dl_tensor *mask_positions(lua_State *L, dl_tensor *mask) {
  int64_t all = -1;
  dl_tensor *flat = dl_tensor_reshape(mask, &all, 1);
  dl_tensor *nz = flat ? dl_op_nonzero(flat) : NULL;
  dl_tensor_release(flat);
  dl_tensor *pos = nz ? dl_tensor_reshape(nz, &all, 1) : NULL;
  dl_tensor_release(nz);
  if (!pos) dlua_engine_error(L);
  return pos;
}

static void check_key(lua_State *L, dl_tensor *t, dl_tensor *key) {
  if (key->dtype != DL_BOOL && key->dtype != DL_INT64)
    luaL_error(L, "dl.index: a tensor index must be a bool mask or int64 indices, got %s", dl_dtype_name(key->dtype));
  if (t->ndim == 0) luaL_error(L, "dl.index: cannot index a 0-d tensor");
  if (dl_check_same_device("dl.index", t, key)) dlua_engine_error(L);
}

/* t[idx]: index_select of the flattened indices, then idx's shape in front */
static dl_tensor *gather_rows(lua_State *L, dl_tensor *t, dl_tensor *idx) {
  if (idx->ndim + t->ndim - 1 > DL_MAX_DIMS) luaL_error(L, "dl.index: the result would have too many dims");
  int64_t all = -1;
  dl_tensor *flat = dl_tensor_reshape(idx, &all, 1);
  dl_tensor *rows = flat ? dl_ag_index_select(t, 0, flat) : NULL;
  dl_tensor_release(flat);
  if (!rows) dlua_engine_error(L);
  int64_t shape[DL_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < idx->ndim; d++) shape[n++] = idx->shape[d];
  for (int d = 1; d < t->ndim; d++) shape[n++] = t->shape[d];
  dl_tensor *out = dl_ag_reshape(rows, shape, n);
  dl_tensor_release(rows);
  if (!out) dlua_engine_error(L);
  return out;
}

dl_tensor *dlua_index_by_tensor(lua_State *L, dl_tensor *t, dl_tensor *key) {
  check_key(L, t, key);
  if (key->dtype == DL_INT64) return gather_rows(L, t, key);
  if (key->ndim == t->ndim) {
    dl_tensor_release(full_mask(L, t, key)); /* the shape check */
    dl_tensor *out = dl_ag_masked_select(t, key);
    if (!out) dlua_engine_error(L);
    return out;
  }
  /* a mask of the leading dims selects sub-tensors: those dims flattened
   * into one, and the positions it selects gathered */
  dl_tensor *m = full_mask(L, t, key);
  dl_tensor_release(m);
  int64_t lead = 1, shape[DL_MAX_DIMS];
  for (int d = 0; d < key->ndim; d++) lead *= key->shape[d];
  int n = 0;
  shape[n++] = lead;
  for (int d = key->ndim; d < t->ndim; d++) shape[n++] = t->shape[d];
  dl_tensor *flat = dl_ag_reshape(t, shape, n);
  if (!flat) dlua_engine_error(L);
  dl_tensor *pos = mask_positions(L, key);
  dl_tensor *out = dl_ag_index_select(flat, 0, pos);
  release2(flat, pos);
  if (!out) dlua_engine_error(L);
  return out;
}

/* t := r (r's history kept): copy_ is the one in-place write allowed
 * through any view, so t may be a view of a tensor that requires grad */
static int assign(dl_tensor *t, dl_tensor *r) {
  if (!r) return -1;
  int rc = dl_ag_copy_(t, r);
  dl_tensor_release(r);
  return rc;
}

/* t[mask] = vals, vals holding one value per selected element (count, in
 * order): vals scattered into a flat tensor at the mask's positions, then
 * where(mask, that, t); differentiable to vals and to t */
static int scatter_masked(lua_State *L, dl_tensor *t, dl_tensor *mask, dl_tensor *vals) {
  dl_tensor *pos = mask_positions(L, mask);
  int64_t all = -1, numel = t->numel;
  dl_tensor *typed = dl_ag_to_dtype(vals, t->dtype); /* as PyTorch, v takes t's dtype */
  dl_tensor *flat_vals = typed ? dl_ag_reshape(typed, &all, 1) : NULL;
  dl_tensor_release(typed);
  if (!flat_vals || flat_vals->numel != pos->numel) {
    int64_t got = flat_vals ? flat_vals->numel : vals->numel, want = pos->numel;
    release2(pos, flat_vals);
    return luaL_error(L, "dl.index: t[mask] = v: the mask selects %d elements, v holds %d", (int)want, (int)got);
  }
  dl_tensor *base = dl_tensor_zeros(&numel, 1, t->dtype, dl_tensor_device(t));
  dl_tensor *spread = base ? dl_ag_index_copy(base, 0, pos, flat_vals) : NULL;
  release2(pos, flat_vals);
  dl_tensor_release(base);
  dl_tensor *shaped = spread ? dl_ag_reshape(spread, t->shape, t->ndim) : NULL;
  dl_tensor_release(spread);
  dl_tensor *r = shaped ? dl_ag_where(mask, dl_operand_tensor(shaped), dl_operand_tensor(t)) : NULL;
  dl_tensor_release(shaped);
  return assign(t, r);
}

void dlua_newindex_by_tensor(lua_State *L, dl_tensor *t, dl_tensor *key, int value) {
  check_key(L, t, key);
  dl_tensor *src = dlua_totensor(L, value);
  bool scalar = lua_type(L, value) == LUA_TNUMBER || lua_type(L, value) == LUA_TBOOLEAN;
  if (!src && !scalar) luaL_typeerror(L, value, "tensor or number");
  if (src && dl_check_same_device("dl.index", t, src)) dlua_engine_error(L);
  dl_scalar v = dl_scalar_i(0);
  if (scalar) v = dlua_checkscalar(L, value);
  int rc;
  if (key->dtype == DL_INT64) {
    int64_t all = -1;
    dl_tensor *flat = dl_tensor_reshape(key, &all, 1);
    if (!flat) dlua_engine_error(L);
    if (scalar) {
      rc = assign(t, dl_ag_index_fill(t, 0, flat, v));
    } else {
      /* the rows, in idx's order: v of shape {#idx, t's other dims} (or
       * broadcast to it) */
      int64_t shape[DL_MAX_DIMS];
      shape[0] = flat->numel;
      for (int d = 1; d < t->ndim; d++) shape[d] = t->shape[d];
      dl_tensor *typed = dl_ag_to_dtype(src, t->dtype);
      dl_tensor *rows = typed ? dl_ag_expand(typed, shape, t->ndim) : NULL;
      rc = rows ? assign(t, dl_ag_index_copy(t, 0, flat, rows)) : -1;
      release2(typed, rows);
    }
    dl_tensor_release(flat);
    dlua_check_status(L, rc);
    return;
  }
  dl_tensor *m = full_mask(L, t, key);
  if (scalar) {
    rc = assign(t, dl_ag_masked_fill(t, m, dl_operand_scalar(v)));
  } else if (src->numel == 1) { /* one value for every selected element */
    rc = assign(t, dl_ag_where(m, dl_operand_tensor(src), dl_operand_tensor(t)));
  } else {
    rc = scatter_masked(L, t, m, src);
  }
  dl_tensor_release(m);
  dlua_check_status(L, rc);
}
