/* lua_index.c — binding of indexing, joining and sorting:
 *   dl.cat({a, b}, 2)  dl.stack({a, b})  t:index_select(1, idx)  t:gather(2, idx)
 *   t:scatter_add_(2, idx, src)  t:index_add_(1, idx, src, {alpha = 2})
 *   t:masked_select(mask)  t:nonzero()  t:sort(2, true)  t:topk(3)  dl.one_hot(y, 10)
 * Dims are 1-based (negative from the end); index tensors hold 1-based int64.
 * Differentiable ops go through the dl_ag_* wrappers (autograd/dl_ag_index.h). */
#include "lua_dlua.h"

#include "autograd/dl_ag_index.h"

#define LIST_STACK 64

/* ---- argument helpers ---- */

/* a Lua dim -> the engine's (0-based, negative kept); the engine checks the
 * range against the tensor it concerns */
static int raw_dim(lua_State *L, int arg, int def) {
  if (lua_isnoneornil(L, arg)) return def;
  lua_Integer d = luaL_checkinteger(L, arg);
  if (d == 0) luaL_argerror(L, arg, "dim 0 is invalid (dims are 1-based)");
  if (d > DL_MAX_DIMS + 1 || d < -(DL_MAX_DIMS + 1)) luaL_argerror(L, arg, "dim out of range");
  return (int)(d > 0 ? d - 1 : d);
}

/* a 1-based dim held in v -> 0-based; errors name arg */
static int to_dim(lua_State *L, int arg, lua_Integer d, int ndim) {
  lua_Integer n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    return luaL_argerror(L, arg, lua_pushfstring(L, "dim %d out of range for a %d-d tensor", (int)d, ndim));
  return (int)(d > 0 ? d - 1 : d + n);
}

/* A table of tensors at arg: borrowed pointers in buf (LIST_STACK entries)
 * or in a scratch userdata pushed on the stack. */
static dl_tensor **check_list(lua_State *L, int arg, dl_tensor **buf, int *n) {
  luaL_checktype(L, arg, LUA_TTABLE);
  if (dlua_totensor(L, arg)) luaL_typeerror(L, arg, "table of tensors");
  lua_Integer len = (lua_Integer)lua_rawlen(L, arg);
  if (len == 0) luaL_argerror(L, arg, "expected a non-empty table of tensors");
  if (len > 1 << 24) luaL_argerror(L, arg, "too many tensors");
  dl_tensor **ts = len <= LIST_STACK ? buf : lua_newuserdatauv(L, (size_t)len * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, arg, i);
    ts[i - 1] = dlua_totensor(L, -1);
    lua_pop(L, 1);
    if (!ts[i - 1]) luaL_argerror(L, arg, lua_pushfstring(L, "entry %d is not a tensor", (int)i));
    if (!ts[i - 1]->storage) luaL_argerror(L, arg, lua_pushfstring(L, "entry %d was closed", (int)i));
  }
  *n = (int)len;
  return ts;
}

/* dims as one integer, a table, or integer varargs from arg on */
static int check_dims(lua_State *L, int arg, int ndim, int *dims) {
  int n = 0;
  if (lua_istable(L, arg)) {
    int64_t ds[DL_MAX_DIMS];
    n = dlua_checkintlist(L, arg, arg, ds, "dims");
    for (int i = 0; i < n; i++) dims[i] = to_dim(L, arg, ds[i], ndim);
    return n;
  }
  for (int a = arg; !lua_isnone(L, a); a++) {
    if (n >= DL_MAX_DIMS) luaL_argerror(L, a, "too many dims");
    dims[n++] = to_dim(L, a, luaL_checkinteger(L, a), ndim);
  }
  return n;
}

/* ---- joining ---- */

static int l_cat(lua_State *L) {
  dl_tensor *buf[LIST_STACK];
  int n;
  int dim = raw_dim(L, 2, 0);
  dl_tensor **ts = check_list(L, 1, buf, &n);
  dlua_push_or_error(L, dl_ag_cat(ts, n, dim));
  return 1;
}

static int l_stack(lua_State *L) {
  dl_tensor *buf[LIST_STACK];
  int n;
  int dim = raw_dim(L, 2, 0);
  dl_tensor **ts = check_list(L, 1, buf, &n);
  dlua_push_or_error(L, dl_ag_stack(ts, n, dim));
  return 1;
}

/* ---- gathering ---- */

static int l_index_select(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = dlua_checkdim(L, 2, t->ndim);
  dlua_push_or_error(L, dl_ag_index_select(t, d, dlua_checktensor(L, 3)));
  return 1;
}

static int l_gather(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = dlua_checkdim(L, 2, t->ndim);
  dlua_push_or_error(L, dl_ag_gather(t, d, dlua_checktensor(L, 3)));
  return 1;
}

static int l_masked_select(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_push_or_error(L, dl_ag_masked_select(t, dlua_checktensor(L, 2)));
  return 1;
}

static int l_nonzero(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  static const char *const allowed[] = {"as_tuple", NULL};
  if (!lua_isnoneornil(L, 2) && !dlua_isoptions(L, 2)) luaL_typeerror(L, 2, "options table");
  dlua_checkoptions(L, 2, "nonzero", allowed);
  bool as_tuple = dlua_optbool(L, 2, "as_tuple", false);
  dl_tensor *nz = dl_op_nonzero(t);
  if (!as_tuple) {
    dlua_push_or_error(L, nz);
    return 1;
  }
  if (!nz) return dlua_engine_error(L);
  dlua_pushtensor(L, nz); /* owned by Lua from here, so errors do not leak it */
  int nd = t->ndim > 0 ? t->ndim : 1;
  luaL_checkstack(L, nd, "too many results");
  for (int d = 0; d < t->ndim; d++) {
    dl_tensor *col = dl_tensor_select(nz, 1, d);
    dl_tensor *c = col ? dl_tensor_contiguous(col) : NULL;
    dl_tensor_release(col);
    dlua_push_or_error(L, c);
  }
  if (t->ndim == 0) { /* PyTorch: one index tensor of the count */
    int64_t n = nz->shape[0];
    dlua_push_or_error(L, dl_tensor_zeros(&n, 1, DL_INT64, dl_tensor_device(t)));
  }
  lua_remove(L, -nd - 1);
  return nd;
}

static int l_one_hot(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  lua_Integer c = luaL_optinteger(L, 2, -1);
  dlua_push_or_error(L, dl_op_one_hot(t, c));
  return 1;
}

/* ---- scattering: the _ forms write self and return it; the plain forms
 * return a new tensor ---- */

typedef enum { K_SCATTER, K_SCATTER_ADD, K_INDEX_ADD, K_INDEX_COPY, K_INDEX_FILL } put_kind;

/* index_add's alpha at arg: a number or {alpha = number} */
static dl_scalar check_alpha(lua_State *L, int arg) {
  dl_scalar alpha = dl_scalar_i(1);
  if (lua_type(L, arg) == LUA_TNUMBER) {
    alpha = dlua_checkscalar(L, arg);
  } else if (dlua_isoptions(L, arg)) {
    static const char *const allowed[] = {"alpha", NULL};
    dlua_checkoptions(L, arg, "index_add", allowed);
    lua_getfield(L, arg, "alpha");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TNUMBER) luaL_argerror(L, arg, "option 'alpha' must be a number");
      alpha = dlua_toscalar(L, -1);
    }
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, arg)) {
    luaL_typeerror(L, arg, "number alpha or options table");
  }
  return alpha;
}

static dl_scalar check_fill_value(lua_State *L, int arg) {
  if (lua_type(L, arg) != LUA_TNUMBER && lua_type(L, arg) != LUA_TBOOLEAN) luaL_typeerror(L, arg, "number");
  return dlua_checkscalar(L, arg);
}

/* Runs the op in place on self (pushes self) or out of place (pushes the
 * new tensor); either records autograd history. */
static int do_put(lua_State *L, put_kind kind, bool inplace) {
  dl_tensor *self = dlua_checktensor(L, 1);
  int d = dlua_checkdim(L, 2, self->ndim);
  dl_tensor *idx = dlua_checktensor(L, 3);
  dl_tensor *out = NULL;
  int rc = 0;
  switch (kind) {
  case K_SCATTER:
    if (dlua_totensor(L, 4)) {
      dl_tensor *src = dlua_checktensor(L, 4);
      if (inplace) rc = dl_ag_scatter_(self, d, idx, src);
      else out = dl_ag_scatter(self, d, idx, src);
    } else if (lua_type(L, 4) == LUA_TNUMBER || lua_type(L, 4) == LUA_TBOOLEAN) {
      dl_scalar v = dlua_checkscalar(L, 4);
      if (inplace) rc = dl_ag_scatter_value_(self, d, idx, v);
      else out = dl_ag_scatter_value(self, d, idx, v);
    } else {
      return luaL_typeerror(L, 4, "tensor or number");
    }
    break;
  case K_SCATTER_ADD: {
    dl_tensor *src = dlua_checktensor(L, 4);
    if (inplace) rc = dl_ag_scatter_add_(self, d, idx, src);
    else out = dl_ag_scatter_add(self, d, idx, src);
    break;
  }
  case K_INDEX_ADD: {
    dl_tensor *src = dlua_checktensor(L, 4);
    dl_scalar alpha = check_alpha(L, 5);
    if (inplace) rc = dl_ag_index_add_(self, d, idx, src, alpha);
    else out = dl_ag_index_add(self, d, idx, src, alpha);
    break;
  }
  case K_INDEX_COPY: {
    dl_tensor *src = dlua_checktensor(L, 4);
    if (inplace) rc = dl_ag_index_copy_(self, d, idx, src);
    else out = dl_ag_index_copy(self, d, idx, src);
    break;
  }
  default: {
    dl_scalar v = check_fill_value(L, 4);
    if (inplace) rc = dl_ag_index_fill_(self, d, idx, v);
    else out = dl_ag_index_fill(self, d, idx, v);
    break;
  }
  }
  if (!inplace) {
    dlua_push_or_error(L, out);
    return 1;
  }
  dlua_check_status(L, rc);
  lua_settop(L, 1);
  return 1;
}

static int l_scatter_(lua_State *L) { return do_put(L, K_SCATTER, true); }
static int l_scatter(lua_State *L) { return do_put(L, K_SCATTER, false); }
static int l_scatter_add_(lua_State *L) { return do_put(L, K_SCATTER_ADD, true); }
static int l_scatter_add(lua_State *L) { return do_put(L, K_SCATTER_ADD, false); }
static int l_index_add_(lua_State *L) { return do_put(L, K_INDEX_ADD, true); }
static int l_index_add(lua_State *L) { return do_put(L, K_INDEX_ADD, false); }
static int l_index_copy_(lua_State *L) { return do_put(L, K_INDEX_COPY, true); }
static int l_index_copy(lua_State *L) { return do_put(L, K_INDEX_COPY, false); }
static int l_index_fill_(lua_State *L) { return do_put(L, K_INDEX_FILL, true); }
static int l_index_fill(lua_State *L) { return do_put(L, K_INDEX_FILL, false); }

/* ---- sorting ---- */

/* t:sort([dim] [, descending] [, {dim, descending, stable}]) */
static void sort_args(lua_State *L, const dl_tensor *t, const char *fn, int *dim, bool *desc) {
  static const char *const allowed[] = {"dim", "descending", "stable", NULL};
  *dim = t->ndim > 0 ? t->ndim - 1 : 0;
  *desc = false;
  int top = lua_gettop(L);
  bool seen_dim = false, seen_desc = false;
  for (int a = 2; a <= top; a++) {
    int ty = lua_type(L, a);
    if (ty == LUA_TNUMBER && !seen_dim && !seen_desc) {
      *dim = dlua_checkdim(L, a, t->ndim);
      seen_dim = true;
    } else if (ty == LUA_TBOOLEAN && !seen_desc) {
      *desc = lua_toboolean(L, a);
      seen_desc = true;
    } else if (ty == LUA_TNIL && a < top) {
      continue;
    } else if (dlua_isoptions(L, a) && a == top) {
      dlua_checkoptions(L, a, fn, allowed);
      lua_Integer d = dlua_optinteger(L, a, "dim", 0);
      if (d != 0) *dim = to_dim(L, a, d, t->ndim);
      *desc = dlua_optbool(L, a, "descending", *desc);
      (void)dlua_optbool(L, a, "stable", true); /* always stable */
    } else if (ty != LUA_TNIL) {
      luaL_typeerror(L, a, "dim, boolean descending or options table");
    }
  }
}

static int l_sort(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int dim;
  bool desc;
  sort_args(L, t, "sort", &dim, &desc);
  dl_tensor *v, *ix;
  dlua_check_status(L, dl_ag_sort(t, dim, desc, &v, &ix));
  dlua_pushtensor(L, v);
  dlua_pushtensor(L, ix);
  return 2;
}

static int l_argsort(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int dim;
  bool desc;
  sort_args(L, t, "argsort", &dim, &desc);
  dlua_push_or_error(L, dl_op_argsort(t, dim, desc));
  return 1;
}

/* t:topk(k [, dim] [, largest [, sorted]] [, {dim, largest, sorted}]) */
static int l_topk(lua_State *L) {
  static const char *const allowed[] = {"dim", "largest", "sorted", NULL};
  dl_tensor *t = dlua_checktensor(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  int dim = t->ndim > 0 ? t->ndim - 1 : 0;
  bool flags[2] = {true, true}; /* largest, sorted */
  int nflags = 0, top = lua_gettop(L);
  bool seen_dim = false;
  for (int a = 3; a <= top; a++) {
    int ty = lua_type(L, a);
    if (ty == LUA_TNUMBER && !seen_dim && nflags == 0) {
      dim = dlua_checkdim(L, a, t->ndim);
      seen_dim = true;
    } else if (ty == LUA_TBOOLEAN && nflags < 2) {
      flags[nflags++] = lua_toboolean(L, a);
    } else if (ty == LUA_TNIL && a < top) {
      seen_dim = true; /* topk(k, nil, false) */
    } else if (dlua_isoptions(L, a) && a == top) {
      dlua_checkoptions(L, a, "topk", allowed);
      lua_Integer d = dlua_optinteger(L, a, "dim", 0);
      if (d != 0) dim = to_dim(L, a, d, t->ndim);
      flags[0] = dlua_optbool(L, a, "largest", flags[0]);
      flags[1] = dlua_optbool(L, a, "sorted", flags[1]);
    } else if (ty != LUA_TNIL) {
      luaL_typeerror(L, a, "dim, boolean or options table");
    }
  }
  dl_tensor *v, *ix;
  dlua_check_status(L, dl_ag_topk(t, k, dim, flags[0], flags[1], &v, &ix));
  dlua_pushtensor(L, v);
  dlua_pushtensor(L, ix);
  return 2;
}

/* ---- reordering ---- */

static int l_flip(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) return luaL_argerror(L, 2, "dims expected");
  int dims[DL_MAX_DIMS];
  int n = check_dims(L, 2, t->ndim, dims);
  dlua_push_or_error(L, dl_ag_flip(t, dims, n));
  return 1;
}

/* t:triu(k = 0), t:tril(k = 0): the last two dims' upper / lower triangle
 * from diagonal k on (k > 0 above the main diagonal) */
static int tri(lua_State *L, bool upper) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int64_t k = luaL_optinteger(L, 2, 0);
  dlua_push_or_error(L, dl_ag_tri(t, k, upper));
  return 1;
}
static int l_triu(lua_State *L) { return tri(L, true); }
static int l_tril(lua_State *L) { return tri(L, false); }

/* t:roll(shifts [, dims]): numbers or tables of numbers */
static int l_roll(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int64_t shifts[DL_MAX_DIMS];
  int ns = 0;
  if (lua_istable(L, 2)) {
    ns = dlua_checkintlist(L, 2, 2, shifts, "shifts");
    if (ns == 0) return luaL_argerror(L, 2, "expected 1 to 16 shifts");
  } else {
    shifts[ns++] = luaL_checkinteger(L, 2);
  }
  int dims[DL_MAX_DIMS];
  int nd = 0;
  if (lua_istable(L, 3)) nd = check_dims(L, 3, t->ndim, dims);
  else if (!lua_isnoneornil(L, 3)) dims[nd++] = dlua_checkdim(L, 3, t->ndim);
  dlua_push_or_error(L, dl_ag_roll(t, shifts, ns, dims, nd));
  return 1;
}

static const luaL_Reg methods[] = {
  {"index_select", l_index_select}, {"gather", l_gather}, {"masked_select", l_masked_select},
  {"nonzero", l_nonzero}, {"scatter", l_scatter}, {"scatter_", l_scatter_}, {"scatter_add", l_scatter_add},
  {"scatter_add_", l_scatter_add_}, {"index_add", l_index_add}, {"index_add_", l_index_add_},
  {"index_copy", l_index_copy}, {"index_copy_", l_index_copy_}, {"index_fill", l_index_fill},
  {"index_fill_", l_index_fill_}, {"sort", l_sort}, {"argsort", l_argsort}, {"topk", l_topk},
  {"flip", l_flip}, {"roll", l_roll}, {"triu", l_triu}, {"tril", l_tril}, {NULL, NULL},
};

static const luaL_Reg functions[] = {
  {"cat", l_cat}, {"concat", l_cat}, {"stack", l_stack}, {"index_select", l_index_select},
  {"gather", l_gather}, {"masked_select", l_masked_select}, {"nonzero", l_nonzero}, {"scatter", l_scatter},
  {"scatter_add", l_scatter_add}, {"index_add", l_index_add}, {"index_copy", l_index_copy},
  {"index_fill", l_index_fill}, {"sort", l_sort}, {"argsort", l_argsort}, {"topk", l_topk},
  {"one_hot", l_one_hot}, {"flip", l_flip}, {"roll", l_roll}, {"triu", l_triu}, {"tril", l_tril}, {NULL, NULL},
};

void dlua_open_index(lua_State *L) { dlua_register(L, methods, functions); }
