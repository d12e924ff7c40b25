/* lua_create.c — dl.tensor, zeros, ones, full, empty, *_like, arange,
 * linspace, eye. */
#include "lua_dlua.h"
#include "ops/dl_create.h"

#include "dl_backend.h"

#include <math.h>
#include <string.h>

/* ---- dl.tensor(nested table | number | tensor, opts) ---- */

typedef struct {
  int ndim;
  int64_t shape[DL_MAX_DIMS];
  bool all_int, all_bool, any_bool;
} infer_state;

/* walks the first element of each level for the shape */
static void infer_shape(lua_State *L, int idx, infer_state *st) {
  int depth = 0;
  lua_pushvalue(L, idx);
  while (lua_istable(L, -1) && !dlua_totensor(L, -1)) {
    if (depth >= DL_MAX_DIMS) luaL_error(L, "dl.tensor: nesting deeper than %d", DL_MAX_DIMS);
    int64_t n = (int64_t)lua_rawlen(L, -1);
    st->shape[depth++] = n;
    if (n == 0) break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  st->ndim = depth;
}

static void fill_rec(lua_State *L, infer_state *st, int dim, dl_tensor *t, int64_t *pos, char *path, size_t plen) {
  int64_t n = (int64_t)lua_rawlen(L, -1);
  if (n != st->shape[dim])
    luaL_error(L, "dl.tensor: ragged nested table: entry %s has %d elements, expected %d", plen ? path : "(top)",
               (int)n, (int)st->shape[dim]);
  luaL_checkstack(L, 4, "dl.tensor: nesting too deep");
  /* a table with holes or named fields would be cut short without a word */
  if (dlua_list_extra_key(L, -1, n))
    luaL_error(L, "dl.tensor: entry %s is not a list: it has the key %s besides its %d elements",
               plen ? path : "(top)", lua_tostring(L, -1), (int)n);
  for (int64_t i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    char sub[256];
    snprintf(sub, sizeof sub, "%s[%d]", path, (int)i);
    if (dim + 1 < st->ndim) {
      if (!lua_istable(L, -1)) luaL_error(L, "dl.tensor: entry %s must be a table, got %s", sub, luaL_typename(L, -1));
      fill_rec(L, st, dim + 1, t, pos, sub, strlen(sub));
    } else {
      int ty = lua_type(L, -1);
      dl_scalar s;
      if (ty == LUA_TNUMBER) s = dlua_toscalar(L, -1);
      else if (ty == LUA_TBOOLEAN) s = dl_scalar_i(lua_toboolean(L, -1));
      else luaL_error(L, "dl.tensor: entry %s must be a number or boolean, got %s", sub, luaL_typename(L, -1));
      dl_tensor_init_linear(t, (*pos)++, s);
    }
    lua_pop(L, 1);
  }
}

/* scan for the element kinds present, to pick the default dtype */
static void scan_kinds(lua_State *L, int idx, infer_state *st, int depth) {
  if (depth > DL_MAX_DIMS) return;
  int n = (int)lua_rawlen(L, idx);
  luaL_checkstack(L, 2, NULL);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int ty = lua_type(L, -1);
    if (ty == LUA_TTABLE) scan_kinds(L, lua_gettop(L), st, depth + 1);
    else if (ty == LUA_TNUMBER) {
      st->all_bool = false;
      if (!lua_isinteger(L, -1)) st->all_int = false;
    } else if (ty == LUA_TBOOLEAN) {
      st->any_bool = true;
    }
    lua_pop(L, 1);
  }
}

static void finish_options(lua_State *L, dl_tensor *t, dlua_tensor_options o) {
  /* move to the requested device, then push */
  if (o.device.type != DL_CPU) {
    dl_tensor *d = dl_tensor_to_device(t, o.device);
    dl_tensor_release(t);
    if (!d) dlua_engine_error(L);
    t = d;
  }
  if (o.requires_grad) {
    if (!dl_dtype_is_float(t->dtype)) {
      dl_tensor_release(t);
      luaL_error(L, "dl.tensor: only floating-point tensors can require gradients");
    }
    t->requires_grad = true;
  }
  dlua_pushtensor(L, t);
}

static int l_tensor(lua_State *L) {
  int ty = lua_type(L, 1);
  dl_tensor *src = dlua_totensor(L, 1);
  if (src) {
    dlua_tensor_options o = dlua_opttensoroptions(L, 2, src->dtype);
    dl_tensor *c = dl_tensor_to_dtype(src, o.dtype);
    if (c == src) {
      dl_tensor_release(c);
      c = dl_tensor_clone(src);
    }
    if (!c) dlua_engine_error(L);
    finish_options(L, c, o);
    return 1;
  }
  if (ty == LUA_TNUMBER || ty == LUA_TBOOLEAN) {
    dl_scalar s = dlua_checkscalar(L, 1);
    dl_dtype def = ty == LUA_TBOOLEAN ? DL_BOOL : (s.is_int ? DL_INT64 : DL_FLOAT32);
    dlua_tensor_options o = dlua_opttensoroptions(L, 2, def);
    dl_tensor *t = dl_tensor_scalar(s, o.dtype, dl_device_cpu());
    if (!t) dlua_engine_error(L);
    finish_options(L, t, o);
    return 1;
  }
  if (ty != LUA_TTABLE) return luaL_typeerror(L, 1, "table, number or tensor");
  infer_state st = {0, {0}, true, true, false};
  infer_shape(L, 1, &st);
  scan_kinds(L, 1, &st, 0);
  dl_dtype def = st.any_bool && st.all_bool ? DL_BOOL : (st.all_int && !st.any_bool ? DL_INT64 : DL_FLOAT32);
  if (st.ndim == 1 && st.shape[0] == 0) def = DL_FLOAT32;
  dlua_tensor_options o = dlua_opttensoroptions(L, 2, def);
  dl_tensor *t = dl_tensor_empty(st.shape, st.ndim, o.dtype, dl_device_cpu());
  if (!t) dlua_engine_error(L);
  /* anchor t so an error while filling frees it */
  dlua_pushtensor(L, t);
  lua_pushvalue(L, 1);
  int64_t pos = 0;
  char path[256] = "";
  if (t->numel > 0 || st.ndim > 0) fill_rec(L, &st, 0, t, &pos, path, 0);
  lua_pop(L, 1);
  dl_tensor_retain(t);
  lua_pop(L, 1);
  finish_options(L, t, o);
  return 1;
}

/* ---- shaped constructors ---- */

static int make_full(lua_State *L, int first, dl_scalar v, bool has_v, dl_dtype def) {
  int64_t shape[DL_MAX_DIMS];
  int next;
  int n = dlua_checksizes(L, first, shape, &next);
  dlua_tensor_options o = dlua_opttensoroptions(L, next, def);
  dl_tensor *t = has_v ? dl_tensor_full(shape, n, o.dtype, o.device, v) : dl_tensor_empty(shape, n, o.dtype, o.device);
  if (!t) dlua_engine_error(L);
  finish_options(L, t, (dlua_tensor_options){o.dtype, dl_device_cpu(), o.requires_grad});
  return 1;
}

static int l_zeros(lua_State *L) { return make_full(L, 1, dl_scalar_i(0), true, DL_FLOAT32); }
static int l_ones(lua_State *L) { return make_full(L, 1, dl_scalar_i(1), true, DL_FLOAT32); }
static int l_empty(lua_State *L) { return make_full(L, 1, dl_scalar_i(0), false, DL_FLOAT32); }

/* full(size, v, opts): size is a table or a single number */
static int l_full(lua_State *L) {
  int64_t shape[DL_MAX_DIMS];
  int n;
  int varg;
  if (lua_istable(L, 1)) {
    if (lua_rawlen(L, 1) == 0 && dlua_list_extra_key(L, 1, 0)) /* {a = 1} is no size list */
      return luaL_argerror(L, 1, lua_pushfstring(L, "sizes: not a list: it has the key %s", lua_tostring(L, -1)));
    n = dlua_checksizes(L, 1, shape, NULL);
    varg = 2;
  } else {
    shape[0] = luaL_checkinteger(L, 1);
    if (shape[0] < 0) return luaL_argerror(L, 1, "negative size");
    n = 1;
    varg = 2;
  }
  int ty = lua_type(L, varg);
  if (ty != LUA_TNUMBER && ty != LUA_TBOOLEAN) return luaL_typeerror(L, varg, "number");
  dl_scalar v = dlua_checkscalar(L, varg);
  dl_dtype def = ty == LUA_TBOOLEAN ? DL_BOOL : (v.is_int ? DL_INT64 : DL_FLOAT32);
  dlua_tensor_options o = dlua_opttensoroptions(L, varg + 1, def);
  dl_tensor *t = dl_tensor_full(shape, n, o.dtype, o.device, v);
  if (!t) dlua_engine_error(L);
  finish_options(L, t, (dlua_tensor_options){o.dtype, dl_device_cpu(), o.requires_grad});
  return 1;
}

static int make_like(lua_State *L, dl_scalar v, bool has_v, int opts) {
  dl_tensor *like = dlua_checktensor(L, 1);
  dlua_tensor_options o = dlua_opttensoroptions(L, opts, like->dtype);
  if (!dlua_isoptions(L, opts) || !dlua_optstring(L, opts, "device", NULL)) o.device = dl_tensor_device(like);
  dl_tensor *t = has_v ? dl_tensor_full(like->shape, like->ndim, o.dtype, o.device, v)
                       : dl_tensor_empty(like->shape, like->ndim, o.dtype, o.device);
  if (!t) dlua_engine_error(L);
  finish_options(L, t, (dlua_tensor_options){o.dtype, dl_device_cpu(), o.requires_grad});
  return 1;
}

static int l_zeros_like(lua_State *L) { return make_like(L, dl_scalar_i(0), true, 2); }
static int l_ones_like(lua_State *L) { return make_like(L, dl_scalar_i(1), true, 2); }
static int l_empty_like(lua_State *L) { return make_like(L, dl_scalar_i(0), false, 2); }
static int l_full_like(lua_State *L) { return make_like(L, dlua_checkscalar(L, 2), true, 3); }

/* the engine's tensor (made on the requested device) with requires_grad */
static void push_made(lua_State *L, const char *fn, dl_tensor *t, dlua_tensor_options o) {
  if (!t) dlua_engine_error(L);
  if (o.requires_grad && !dl_dtype_is_float(t->dtype)) {
    dl_tensor_release(t);
    luaL_error(L, "dl.%s: only floating-point tensors can require gradients", fn);
  }
  t->requires_grad = o.requires_grad;
  dlua_pushtensor(L, t);
}

/* arange(stop) | arange(start, stop[, step]) — stop excluded */
static int l_arange(lua_State *L) {
  int nnum = 0;
  while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) nnum++;
  if (nnum == 0) return luaL_typeerror(L, 1, "number");
  dl_scalar start = dl_scalar_i(0), stop, step = dl_scalar_i(1);
  if (nnum == 1) stop = dlua_toscalar(L, 1);
  else {
    start = dlua_toscalar(L, 1);
    stop = dlua_toscalar(L, 2);
    if (nnum == 3) step = dlua_toscalar(L, 3);
  }
  bool all_int = start.is_int && stop.is_int && step.is_int;
  dlua_tensor_options o = dlua_opttensoroptions(L, nnum + 1, all_int ? DL_INT64 : DL_FLOAT32);
  push_made(L, "arange", dl_op_arange(start, stop, step, o.dtype, o.device), o);
  return 1;
}

static int l_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  if (n < 0) return luaL_argerror(L, 3, "number of steps must be non-negative");
  dlua_tensor_options o = dlua_opttensoroptions(L, 4, DL_FLOAT32);
  push_made(L, "linspace", dl_op_linspace(a, b, n, o.dtype, o.device), o);
  return 1;
}

static int l_eye(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  int opts = 2;
  lua_Integer m = n;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    m = luaL_checkinteger(L, 2);
    opts = 3;
  }
  if (n < 0 || m < 0) return luaL_argerror(L, n < 0 ? 1 : 2, "size must be non-negative");
  dlua_tensor_options o = dlua_opttensoroptions(L, opts, DL_FLOAT32);
  push_made(L, "eye", dl_op_eye(n, m, o.dtype, o.device), o);
  return 1;
}

static const luaL_Reg functions[] = {
  {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"empty", l_empty}, {"full", l_full},
  {"zeros_like", l_zeros_like}, {"ones_like", l_ones_like}, {"empty_like", l_empty_like},
  {"full_like", l_full_like}, {"arange", l_arange}, {"linspace", l_linspace}, {"eye", l_eye},
  {NULL, NULL},
};

void dlua_open_create(lua_State *L) { dlua_register(L, NULL, functions); }
