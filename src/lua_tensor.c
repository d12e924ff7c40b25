/* lua_tensor.c — the tensor userdata: metatable, properties, indexing,
 * views, copies and the argument helpers every binding file shares. */
#include "lua_dlua.h"

#include "dl_alloc.h"
#include "dl_backend.h"

#include <string.h>

/* registry keys (addresses are unique) */
static const char META_KEY = 0, METHODS_KEY = 0, GETTERS_KEY = 0, SETTERS_KEY = 0;

typedef struct {
  dl_tensor *t;
} tensor_ud;

/* ---- userdata ---- */

/* Collector pressure: storage lives outside Lua's heap, so tell the
 * collector about it in steps, keeping garbage tensors bounded. */
#define GC_PRESSURE_STEP (256 * 1024)
static _Thread_local size_t gc_pressure;

void dlua_pushtensor(lua_State *L, dl_tensor *t) {
  tensor_ud *u = lua_newuserdatauv(L, sizeof(tensor_ud), 0);
  u->t = t;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &META_KEY);
  lua_setmetatable(L, -2);
  gc_pressure += dl_alloc_take_pressure();
  if (gc_pressure >= GC_PRESSURE_STEP) {
    int kb = (int)(gc_pressure / 1024);
    gc_pressure = 0;
    lua_gc(L, LUA_GCSTEP, kb);
  }
}

static tensor_ud *to_ud(lua_State *L, int idx) {
  tensor_ud *u = lua_touserdata(L, idx);
  if (!u || !lua_getmetatable(L, idx)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &META_KEY);
  bool ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return ok ? u : NULL;
}

dl_tensor *dlua_totensor(lua_State *L, int idx) {
  tensor_ud *u = to_ud(L, idx);
  return u ? u->t : NULL;
}

dl_tensor *dlua_checktensor(lua_State *L, int idx) {
  tensor_ud *u = to_ud(L, idx);
  if (!u) {
    luaL_typeerror(L, idx, "tensor");
    return NULL;
  }
  if (!u->t) luaL_argerror(L, idx, "tensor was closed");
  return u->t;
}

int dlua_engine_error(lua_State *L) { return luaL_error(L, "dl.%s", dl_error_get()); }

void dlua_push_or_error(lua_State *L, dl_tensor *t) {
  if (!t) dlua_engine_error(L);
  dlua_pushtensor(L, t);
}

/* __gc and __close: idempotent */
static int l_release(lua_State *L) {
  tensor_ud *u = lua_touserdata(L, 1);
  if (u && u->t) {
    dl_tensor_release(u->t);
    u->t = NULL;
  }
  return 0;
}

/* ---- registration ---- */

static void set_into(lua_State *L, const void *key, const luaL_Reg *regs) {
  if (!regs) return;
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  for (; regs->name; regs++) {
    lua_pushcfunction(L, regs->func);
    lua_setfield(L, -2, regs->name);
  }
  lua_pop(L, 1);
}

void dlua_register(lua_State *L, const luaL_Reg *methods, const luaL_Reg *functions) {
  set_into(L, &METHODS_KEY, methods);
  if (functions) luaL_setfuncs(L, functions, 0);
}

void dlua_register_meta(lua_State *L, const luaL_Reg *meta) { set_into(L, &META_KEY, meta); }
void dlua_register_getters(lua_State *L, const luaL_Reg *g) { set_into(L, &GETTERS_KEY, g); }
void dlua_register_setters(lua_State *L, const luaL_Reg *s) { set_into(L, &SETTERS_KEY, s); }

/* ---- argument helpers ---- */

int dlua_checkdim(lua_State *L, int arg, int ndim) {
  lua_Integer d = luaL_checkinteger(L, arg);
  lua_Integer n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    return luaL_argerror(L, arg, lua_pushfstring(L, "dim %d out of range for a %d-d tensor", (int)d, ndim));
  return (int)(d > 0 ? d - 1 : d + n);
}

int64_t dlua_checkindex(lua_State *L, int arg, int64_t size) {
  lua_Integer i = luaL_checkinteger(L, arg);
  if (i == 0 || i > size || i < -size)
    return luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range for size %I", i, (lua_Integer)size));
  return i > 0 ? i - 1 : i + size;
}

dl_dtype dlua_checkdtype(lua_State *L, int arg) {
  const char *s = luaL_checkstring(L, arg);
  dl_dtype dt;
  if (dl_dtype_from_name(s, &dt))
    luaL_argerror(L, arg, lua_pushfstring(L, "unknown dtype '%s' (float32, float64, int64, bool, uint8)", s));
  return dt;
}

dl_device dlua_checkdevice(lua_State *L, int arg) {
  const char *s = luaL_checkstring(L, arg);
  dl_device d;
  if (dl_device_parse(s, &d)) luaL_argerror(L, arg, lua_pushfstring(L, "unknown device '%s' (cpu, cuda, cuda:N)", s));
  return d;
}

dl_scalar dlua_checkscalar(lua_State *L, int arg) {
  if (lua_isinteger(L, arg)) return dl_scalar_i(lua_tointeger(L, arg));
  if (lua_type(L, arg) == LUA_TBOOLEAN) return dl_scalar_i(lua_toboolean(L, arg));
  return dl_scalar_f(luaL_checknumber(L, arg));
}

static int64_t check_size(lua_State *L, int arg, int isnum) {
  if (!isnum) luaL_argerror(L, arg, "sizes must be integers");
  return 0;
}

int dlua_checksizes(lua_State *L, int arg, int64_t *shape, int *next) {
  int n = 0;
  if (lua_istable(L, arg) && !dlua_totensor(L, arg) && lua_rawlen(L, arg) > 0) {
    int len = (int)lua_rawlen(L, arg);
    if (len > DL_MAX_DIMS) luaL_argerror(L, arg, lua_pushfstring(L, "at most %d dims", DL_MAX_DIMS));
    for (int i = 1; i <= len; i++) {
      lua_rawgeti(L, arg, i);
      int isnum;
      lua_Integer v = lua_tointegerx(L, -1, &isnum);
      lua_pop(L, 1);
      check_size(L, arg, isnum);
      if (v < 0) luaL_argerror(L, arg, "negative size");
      shape[n++] = v;
    }
    if (next) *next = arg + 1;
    return n;
  }
  if (lua_istable(L, arg) && !dlua_totensor(L, arg) && lua_rawlen(L, arg) == 0 && !dlua_isoptions(L, arg)) {
    if (next) *next = arg + 1; /* {} : a 0-d shape */
    return 0;
  }
  while (lua_type(L, arg + n) == LUA_TNUMBER) {
    if (n >= DL_MAX_DIMS) luaL_argerror(L, arg + n, lua_pushfstring(L, "at most %d dims", DL_MAX_DIMS));
    int isnum;
    lua_Integer v = lua_tointegerx(L, arg + n, &isnum);
    check_size(L, arg + n, isnum);
    if (v < 0) luaL_argerror(L, arg + n, "negative size");
    shape[n] = v;
    n++;
  }
  if (next) *next = arg + n;
  return n;
}

dl_tensor *dlua_tensor_or_scalar(lua_State *L, int arg, const dl_tensor *like) {
  dl_tensor *t = dlua_totensor(L, arg);
  if (t) {
    if (!t->storage) luaL_argerror(L, arg, "tensor was closed");
    return dl_tensor_retain(t);
  }
  if (lua_type(L, arg) != LUA_TNUMBER && lua_type(L, arg) != LUA_TBOOLEAN) {
    luaL_typeerror(L, arg, "tensor or number");
    return NULL;
  }
  dl_scalar s = dlua_checkscalar(L, arg);
  dl_dtype dt = like ? dl_dtype_promote_scalar(like->dtype, s) : (s.is_int ? DL_INT64 : DL_FLOAT32);
  dl_tensor *r = dl_tensor_scalar(s, dt, like ? dl_tensor_device(like) : dl_device_cpu());
  if (!r) dlua_engine_error(L);
  return r;
}

bool dlua_isoptions(lua_State *L, int arg) {
  if (arg == 0 || !lua_istable(L, arg) || dlua_totensor(L, arg)) return false;
  /* an options table has string keys (or is empty) */
  lua_pushnil(L);
  if (!lua_next(L, arg)) return true;
  bool isopt = lua_type(L, -2) == LUA_TSTRING;
  lua_pop(L, 2);
  return isopt;
}

static int push_opt(lua_State *L, int arg, const char *key) {
  if (!dlua_isoptions(L, arg)) return 0;
  lua_getfield(L, arg, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

lua_Number dlua_optnumber(lua_State *L, int arg, const char *key, lua_Number def) {
  if (!push_opt(L, arg, key)) return def;
  if (lua_type(L, -1) != LUA_TNUMBER) luaL_error(L, "option '%s' must be a number, got %s", key, luaL_typename(L, -1));
  lua_Number v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

lua_Integer dlua_optinteger(lua_State *L, int arg, const char *key, lua_Integer def) {
  if (!push_opt(L, arg, key)) return def;
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok) luaL_error(L, "option '%s' must be an integer, got %s", key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

bool dlua_optbool(lua_State *L, int arg, const char *key, bool def) {
  if (!push_opt(L, arg, key)) return def;
  if (!lua_isboolean(L, -1)) luaL_error(L, "option '%s' must be a boolean, got %s", key, luaL_typename(L, -1));
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *dlua_optstring(lua_State *L, int arg, const char *key, const char *def) {
  if (!push_opt(L, arg, key)) return def;
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option '%s' must be a string, got %s", key, luaL_typename(L, -1));
  const char *v = lua_tostring(L, -1);
  lua_pop(L, 1); /* still referenced by the options table */
  return v;
}

void dlua_checkoptions(lua_State *L, int arg, const char *fn, const char *const *allowed) {
  if (!dlua_isoptions(L, arg)) return;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    lua_pop(L, 1);
    bool ok = false;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (const char *const *a = allowed; *a; a++)
        if (strcmp(*a, k) == 0) { ok = true; break; }
    }
    if (!ok) {
      lua_pushvalue(L, -1);
      luaL_error(L, "%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
  }
}

dlua_tensor_options dlua_opttensoroptions(lua_State *L, int arg, dl_dtype def_dtype) {
  dlua_tensor_options o = {def_dtype, dl_device_cpu(), false};
  if (!dlua_isoptions(L, arg)) return o;
  const char *dt = dlua_optstring(L, arg, "dtype", NULL);
  if (dt && dl_dtype_from_name(dt, &o.dtype))
    luaL_error(L, "unknown dtype '%s' (float32, float64, int64, bool, uint8)", dt);
  const char *dev = dlua_optstring(L, arg, "device", NULL);
  if (dev && dl_device_parse(dev, &o.device)) luaL_error(L, "unknown device '%s' (cpu, cuda, cuda:N)", dev);
  if (dev && !dl_backend_get(o.device)) dlua_engine_error(L);
  o.requires_grad = dlua_optbool(L, arg, "requires_grad", false);
  return o;
}

void dlua_pushshape(lua_State *L, const int64_t *shape, int ndim) {
  lua_createtable(L, ndim, 0);
  for (int d = 0; d < ndim; d++) {
    lua_pushinteger(L, shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

/* ---- properties ---- */

static int g_shape(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_pushshape(L, t->shape, t->ndim);
  return 1;
}

static int g_dtype(lua_State *L) {
  lua_pushstring(L, dl_dtype_name(dlua_checktensor(L, 1)->dtype));
  return 1;
}

static int g_device(lua_State *L) {
  char buf[32];
  lua_pushstring(L, dl_device_str(dl_tensor_device(dlua_checktensor(L, 1)), buf, sizeof buf));
  return 1;
}

static int g_ndim(lua_State *L) {
  lua_pushinteger(L, dlua_checktensor(L, 1)->ndim);
  return 1;
}

/* t.T reverses the dims, as PyTorch's .T */
static int g_T(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int perm[DL_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++) perm[d] = t->ndim - 1 - d;
  dlua_push_or_error(L, dl_tensor_permute(t, perm, t->ndim));
  return 1;
}

/* ---- indexing ---- */

/* t[{...}]: a number selects, {a, b} narrows to a..b inclusive, {a} is a..a,
 * {} keeps the whole dim (Torch7). */
static dl_tensor *index_table(lua_State *L, dl_tensor *t, int key) {
  int n = (int)lua_rawlen(L, key);
  if (n > t->ndim) luaL_error(L, "dl.index: %d indices for a %d-d tensor", n, t->ndim);
  dl_tensor *cur = dl_tensor_retain(t);
  int dim = 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, key, i);
    dl_tensor *next = NULL;
    int64_t size = cur->shape[dim];
    if (lua_type(L, -1) == LUA_TNUMBER) {
      int ok;
      lua_Integer k = lua_tointegerx(L, -1, &ok);
      if (!ok || k == 0 || k > size || k < -size) {
        dl_tensor_release(cur);
        luaL_error(L, "dl.index: index %s out of range for dim %d of size %d", lua_tostring(L, -1), dim + 1, (int)size);
      }
      next = dl_tensor_select(cur, dim, k > 0 ? k - 1 : k + size);
    } else if (lua_istable(L, -1)) {
      int m = (int)lua_rawlen(L, -1);
      lua_Integer a = 1, b = size;
      if (m >= 1) { lua_rawgeti(L, -1, 1); a = lua_tointeger(L, -1); lua_pop(L, 1); b = a; }
      if (m >= 2) { lua_rawgeti(L, -1, 2); b = lua_tointeger(L, -1); lua_pop(L, 1); }
      if (a < 0) a += size + 1;
      if (b < 0) b += size + 1;
      if (m > 2 || a < 1 || b > size || b < a - 1) {
        dl_tensor_release(cur);
        luaL_error(L, "dl.index: range {%d, %d} out of bounds for dim %d of size %d", (int)a, (int)b, dim + 1, (int)size);
      }
      next = dl_tensor_narrow(cur, dim, a - 1, b - a + 1);
      dim++;
    } else {
      dl_tensor_release(cur);
      luaL_error(L, "dl.index: entry %d must be a number or a range table, got %s", i, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
    dl_tensor_release(cur);
    if (!next) dlua_engine_error(L);
    cur = next;
  }
  return cur;
}

/* the view that t[k] names */
static dl_tensor *index_view(lua_State *L, dl_tensor *t, int key) {
  if (lua_type(L, key) == LUA_TNUMBER) {
    if (t->ndim == 0) luaL_error(L, "dl.index: cannot index a 0-d tensor");
    int ok;
    lua_Integer k = lua_tointegerx(L, key, &ok);
    int64_t size = t->shape[0];
    if (!ok || k == 0 || k > size || k < -size)
      luaL_error(L, "dl.index: index %s out of range for dim 1 of size %d", lua_tostring(L, key), (int)size);
    dl_tensor *v = dl_tensor_select(t, 0, k > 0 ? k - 1 : k + size);
    if (!v) dlua_engine_error(L);
    return v;
  }
  if (lua_istable(L, key)) return index_table(L, t, key);
  luaL_error(L, "dl.index: bad index of type %s", luaL_typename(L, key));
  return NULL;
}

static int m_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &METHODS_KEY);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &GETTERS_KEY);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) {
      lua_pushvalue(L, 1);
      lua_call(L, 1, 1);
      return 1;
    }
    return 0; /* unknown field: nil, as for any Lua table */
  }
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_pushtensor(L, index_view(L, t, 2));
  return 1;
}

static int m_newindex(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SETTERS_KEY);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) == LUA_TNIL) return luaL_error(L, "dl.Tensor: cannot set field '%s'", lua_tostring(L, 2));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_call(L, 3, 0);
    return 0;
  }
  dl_tensor *v = index_view(L, t, 2);
  int rc;
  dl_tensor *src = dlua_totensor(L, 3);
  if (src) {
    rc = dl_check_same_device("copy_", v, src);
    if (!rc) rc = dl_tensor_copy_(v, src);
  } else if (lua_type(L, 3) == LUA_TNUMBER || lua_type(L, 3) == LUA_TBOOLEAN) {
    rc = dl_tensor_fill_(v, dlua_checkscalar(L, 3));
  } else {
    dl_tensor_release(v);
    return luaL_typeerror(L, 3, "tensor or number");
  }
  dl_tensor_release(v);
  dlua_check_status(L, rc);
  return 0;
}

static int m_len(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "dl.len: a 0-d tensor has no length");
  lua_pushinteger(L, t->shape[0]);
  return 1;
}

/* ---- inspection methods ---- */

static int l_size(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    dlua_pushshape(L, t->shape, t->ndim);
  } else {
    lua_pushinteger(L, t->shape[dlua_checkdim(L, 2, t->ndim)]);
  }
  return 1;
}

static int l_stride(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) dlua_pushshape(L, t->stride, t->ndim);
  else lua_pushinteger(L, t->stride[dlua_checkdim(L, 2, t->ndim)]);
  return 1;
}

static int l_dim(lua_State *L) {
  lua_pushinteger(L, dlua_checktensor(L, 1)->ndim);
  return 1;
}

static int l_numel(lua_State *L) {
  lua_pushinteger(L, dlua_checktensor(L, 1)->numel);
  return 1;
}

static int l_is_contiguous(lua_State *L) {
  lua_pushboolean(L, dl_tensor_is_contiguous(dlua_checktensor(L, 1)));
  return 1;
}

static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, dlua_totensor(L, 1) != NULL);
  return 1;
}

static void push_scalar(lua_State *L, dl_scalar s, dl_dtype dt) {
  if (dt == DL_BOOL) lua_pushboolean(L, s.i != 0);
  else if (s.is_int) lua_pushinteger(L, s.i);
  else lua_pushnumber(L, s.f);
}

/* host copy of t when it lives on another device (new reference) */
static dl_tensor *on_host(lua_State *L, dl_tensor *t) {
  dl_tensor *h = dl_tensor_to_device(t, dl_device_cpu());
  if (!h) dlua_engine_error(L);
  return h;
}

static int l_item(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->numel != 1) {
    char b[128];
    return luaL_error(L, "dl.item: a tensor with %d elements (shape %s) cannot be converted to a number", (int)t->numel,
                      dl_tensor_shape_str(t, b, sizeof b));
  }
  dl_tensor *h = on_host(L, t);
  push_scalar(L, dl_tensor_get_linear(h, 0), h->dtype);
  dl_tensor_release(h);
  return 1;
}

/* t:get(i, j, ...) and t:set(i, j, ..., v): 1-based, one element, fast */
static int read_index(lua_State *L, dl_tensor *t, int first, int64_t *idx) {
  for (int d = 0; d < t->ndim; d++) idx[d] = dlua_checkindex(L, first + d, t->shape[d]);
  return 0;
}

static int l_get(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int nargs = lua_gettop(L) - 1;
  if (nargs != t->ndim) return luaL_error(L, "dl.get: %d indices for a %d-d tensor", nargs, t->ndim);
  if (dl_tensor_device(t).type != DL_CPU) return luaL_error(L, "dl.get: tensor is on %s; use item() or cpu()", "cuda");
  int64_t idx[DL_MAX_DIMS];
  read_index(L, t, 2, idx);
  push_scalar(L, dl_tensor_get(t, idx), t->dtype);
  return 1;
}

static int l_set(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int nargs = lua_gettop(L) - 2;
  if (nargs != t->ndim) return luaL_error(L, "dl.set: %d indices for a %d-d tensor", nargs < 0 ? 0 : nargs, t->ndim);
  if (dl_tensor_device(t).type != DL_CPU) return luaL_error(L, "dl.set: tensor is not on the cpu");
  int64_t idx[DL_MAX_DIMS];
  read_index(L, t, 2, idx);
  dl_tensor_set(t, idx, dlua_checkscalar(L, lua_gettop(L)));
  return 0;
}

static void push_table_rec(lua_State *L, const dl_tensor *t, int dim, int64_t *idx) {
  if (dim == t->ndim) {
    push_scalar(L, dl_tensor_get(t, idx), t->dtype);
    return;
  }
  luaL_checkstack(L, 4, "tensor too deep");
  lua_createtable(L, (int)t->shape[dim], 0);
  for (int64_t i = 0; i < t->shape[dim]; i++) {
    idx[dim] = i;
    push_table_rec(L, t, dim + 1, idx);
    lua_rawseti(L, -2, i + 1);
  }
}

static int l_totable(lua_State *L) {
  dl_tensor *h = on_host(L, dlua_checktensor(L, 1));
  int64_t idx[DL_MAX_DIMS] = {0};
  push_table_rec(L, h, 0, idx);
  dl_tensor_release(h);
  return 1;
}

/* ---- views ---- */

/* sizes from arg 2 on, for view/reshape/expand (allow -1) */
static int read_view_sizes(lua_State *L, int arg, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, arg)) {
    n = (int)lua_rawlen(L, arg);
    if (n > DL_MAX_DIMS) luaL_argerror(L, arg, "too many dims");
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, arg, i + 1);
      int ok;
      shape[i] = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_argerror(L, arg, "sizes must be integers");
      lua_pop(L, 1);
    }
    return n;
  }
  while (!lua_isnone(L, arg + n)) {
    if (n >= DL_MAX_DIMS) luaL_argerror(L, arg + n, "too many dims");
    shape[n] = luaL_checkinteger(L, arg + n);
    n++;
  }
  return n;
}

static int l_view(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int64_t shape[DL_MAX_DIMS];
  int n = read_view_sizes(L, 2, shape);
  dlua_push_or_error(L, dl_tensor_view(t, shape, n));
  return 1;
}

static int l_reshape(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int64_t shape[DL_MAX_DIMS];
  int n = read_view_sizes(L, 2, shape);
  dlua_push_or_error(L, dl_tensor_reshape(t, shape, n));
  return 1;
}

static int l_expand(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int64_t shape[DL_MAX_DIMS];
  int n = read_view_sizes(L, 2, shape);
  dlua_push_or_error(L, dl_tensor_expand(t, shape, n));
  return 1;
}

static int l_view_as(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1), *o = dlua_checktensor(L, 2);
  dlua_push_or_error(L, dl_tensor_view(t, o->shape, o->ndim));
  return 1;
}

static int l_expand_as(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1), *o = dlua_checktensor(L, 2);
  dlua_push_or_error(L, dl_tensor_expand(t, o->shape, o->ndim));
  return 1;
}

static int l_transpose(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d0 = dlua_checkdim(L, 2, t->ndim), d1 = dlua_checkdim(L, 3, t->ndim);
  dlua_push_or_error(L, dl_tensor_transpose(t, d0, d1));
  return 1;
}

static int l_t(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->ndim > 2) return luaL_error(L, "dl.t: expects a tensor with <= 2 dims, got %d; use transpose", t->ndim);
  if (t->ndim < 2) dlua_push_or_error(L, dl_tensor_alias(t));
  else dlua_push_or_error(L, dl_tensor_transpose(t, 0, 1));
  return 1;
}

static int l_permute(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int perm[DL_MAX_DIMS];
  int n = 0;
  if (lua_istable(L, 2)) {
    n = (int)lua_rawlen(L, 2);
    if (n != t->ndim) return luaL_error(L, "dl.permute: %d dims given for a %d-d tensor", n, t->ndim);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      lua_replace(L, 3);
      perm[i] = dlua_checkdim(L, 3, t->ndim);
    }
  } else {
    n = lua_gettop(L) - 1;
    if (n != t->ndim) return luaL_error(L, "dl.permute: %d dims given for a %d-d tensor", n, t->ndim);
    for (int i = 0; i < n; i++) perm[i] = dlua_checkdim(L, i + 2, t->ndim);
  }
  dlua_push_or_error(L, dl_tensor_permute(t, perm, n));
  return 1;
}

static int l_narrow(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "dl.narrow: cannot narrow a 0-d tensor");
  int d = dlua_checkdim(L, 2, t->ndim);
  lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  int64_t size = t->shape[d];
  if (start < 0) start += size + 1;
  if (start < 1 || start > size + 1)
    return luaL_argerror(L, 3, lua_pushfstring(L, "start %I out of range for dim %d of size %I", luaL_checkinteger(L, 3), d + 1, (lua_Integer)size));
  if (len < 0 || start - 1 + len > size)
    return luaL_argerror(L, 4, lua_pushfstring(L, "length %I too long for dim %d of size %I from %I", len, d + 1, (lua_Integer)size, start));
  dlua_push_or_error(L, dl_tensor_narrow(t, d, start - 1, len));
  return 1;
}

static int l_select(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (t->ndim == 0) return luaL_error(L, "dl.select: cannot index a 0-d tensor");
  int d = dlua_checkdim(L, 2, t->ndim);
  int64_t i = dlua_checkindex(L, 3, t->shape[d]);
  dlua_push_or_error(L, dl_tensor_select(t, d, i));
  return 1;
}

static int l_squeeze(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = lua_isnoneornil(L, 2) ? DL_ALL_DIMS : dlua_checkdim(L, 2, t->ndim);
  dlua_push_or_error(L, dl_tensor_squeeze(t, d));
  return 1;
}

static int l_unsqueeze(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  lua_Integer d = luaL_checkinteger(L, 2);
  lua_Integer n = t->ndim + 1;
  if (d == 0 || d > n || d < -n)
    return luaL_argerror(L, 2, lua_pushfstring(L, "dim %I out of range for unsqueeze of a %d-d tensor", d, t->ndim));
  dlua_push_or_error(L, dl_tensor_unsqueeze(t, (int)(d > 0 ? d - 1 : d + n)));
  return 1;
}

static int l_flatten(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int s = lua_isnoneornil(L, 2) ? 0 : dlua_checkdim(L, 2, t->ndim);
  int e = lua_isnoneornil(L, 3) ? (t->ndim ? t->ndim - 1 : 0) : dlua_checkdim(L, 3, t->ndim);
  dlua_push_or_error(L, dl_tensor_flatten(t, s, e));
  return 1;
}

static int l_unfold(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = dlua_checkdim(L, 2, t->ndim);
  dlua_push_or_error(L, dl_tensor_unfold(t, d, luaL_checkinteger(L, 3), luaL_checkinteger(L, 4)));
  return 1;
}

/* chunk(n, dim) and split(size | {sizes}, dim) return a Lua list of views */
static int push_splits(lua_State *L, dl_tensor *t, int d, const int64_t *sizes, int n) {
  lua_createtable(L, n, 0);
  int64_t start = 0;
  for (int i = 0; i < n; i++) {
    dlua_push_or_error(L, dl_tensor_narrow(t, d, start, sizes[i]));
    lua_rawseti(L, -2, i + 1);
    start += sizes[i];
  }
  return 1;
}

static int l_chunk(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  lua_Integer chunks = luaL_checkinteger(L, 2);
  if (chunks <= 0) return luaL_argerror(L, 2, "number of chunks must be positive");
  int d = lua_isnoneornil(L, 3) ? 0 : dlua_checkdim(L, 3, t->ndim);
  if (t->ndim == 0) return luaL_error(L, "dl.chunk: cannot chunk a 0-d tensor");
  int64_t size = t->shape[d];
  int64_t each = (size + chunks - 1) / chunks;
  int64_t sizes[1024];
  int n = 0;
  for (int64_t s = 0; s < size && n < 1024; s += each) sizes[n++] = s + each <= size ? each : size - s;
  if (size == 0) sizes[n++] = 0;
  return push_splits(L, t, d, sizes, n);
}

static int l_split(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int d = lua_isnoneornil(L, 3) ? 0 : dlua_checkdim(L, 3, t->ndim);
  if (t->ndim == 0) return luaL_error(L, "dl.split: cannot split a 0-d tensor");
  int64_t size = t->shape[d];
  int64_t sizes[1024];
  int n = 0;
  if (lua_istable(L, 2)) {
    int m = (int)lua_rawlen(L, 2);
    if (m > 1024) return luaL_argerror(L, 2, "too many pieces");
    int64_t total = 0;
    for (int i = 0; i < m; i++) {
      lua_rawgeti(L, 2, i + 1);
      int ok;
      sizes[n] = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok || sizes[n] < 0) return luaL_argerror(L, 2, "sizes must be non-negative integers");
      total += sizes[n++];
    }
    if (total != size)
      return luaL_error(L, "dl.split: sizes sum to %I but dim %d has size %I", (lua_Integer)total, d + 1, (lua_Integer)size);
  } else {
    lua_Integer each = luaL_checkinteger(L, 2);
    if (each <= 0) return luaL_argerror(L, 2, "split size must be positive");
    for (int64_t s = 0; s < size; s += each) {
      if (n >= 1024) return luaL_argerror(L, 2, "too many pieces");
      sizes[n++] = s + each <= size ? each : size - s;
    }
    if (size == 0) sizes[n++] = 0;
  }
  return push_splits(L, t, d, sizes, n);
}

/* ---- copies ---- */

static int l_clone(lua_State *L) {
  dlua_push_or_error(L, dl_tensor_clone(dlua_checktensor(L, 1)));
  return 1;
}

static int l_contiguous(lua_State *L) {
  dlua_push_or_error(L, dl_tensor_contiguous(dlua_checktensor(L, 1)));
  return 1;
}

static int l_copy_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1), *s = dlua_checktensor(L, 2);
  dlua_check_status(L, dl_tensor_copy_(t, s));
  lua_settop(L, 1);
  return 1;
}

static int l_fill_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_check_status(L, dl_tensor_fill_(t, dlua_checkscalar(L, 2)));
  lua_settop(L, 1);
  return 1;
}

static int l_zero_(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_check_status(L, dl_tensor_fill_(t, dl_scalar_i(0)));
  lua_settop(L, 1);
  return 1;
}

/* to(dtype | device | tensor, ...) */
static int l_to(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_tensor *cur = dl_tensor_retain(t);
  int top = lua_gettop(L);
  for (int i = 2; i <= top; i++) {
    dl_tensor *next = NULL;
    dl_tensor *other = dlua_totensor(L, i);
    if (other) {
      next = dl_tensor_to_dtype(cur, other->dtype);
      if (next) {
        dl_tensor *n2 = dl_tensor_to_device(next, dl_tensor_device(other));
        dl_tensor_release(next);
        next = n2;
      }
    } else if (lua_type(L, i) == LUA_TSTRING) {
      dl_dtype dt;
      dl_device dev;
      const char *s = lua_tostring(L, i);
      if (dl_dtype_from_name(s, &dt) == 0) next = dl_tensor_to_dtype(cur, dt);
      else if (dl_device_parse(s, &dev) == 0) next = dl_tensor_to_device(cur, dev);
      else {
        dl_tensor_release(cur);
        return luaL_argerror(L, i, lua_pushfstring(L, "'%s' is neither a dtype nor a device", s));
      }
    } else {
      dl_tensor_release(cur);
      return luaL_typeerror(L, i, "dtype, device or tensor");
    }
    dl_tensor_release(cur);
    if (!next) dlua_engine_error(L);
    cur = next;
  }
  dlua_pushtensor(L, cur);
  return 1;
}

static int to_dtype(lua_State *L, dl_dtype dt) {
  dlua_push_or_error(L, dl_tensor_to_dtype(dlua_checktensor(L, 1), dt));
  return 1;
}
static int l_float(lua_State *L) { return to_dtype(L, DL_FLOAT32); }
static int l_double(lua_State *L) { return to_dtype(L, DL_FLOAT64); }
static int l_long(lua_State *L) { return to_dtype(L, DL_INT64); }
static int l_bool(lua_State *L) { return to_dtype(L, DL_BOOL); }
static int l_byte(lua_State *L) { return to_dtype(L, DL_UINT8); }

static int l_cpu(lua_State *L) {
  dlua_push_or_error(L, dl_tensor_to_device(dlua_checktensor(L, 1), dl_device_cpu()));
  return 1;
}

static int l_cuda(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_device d = {DL_CUDA, (int8_t)luaL_optinteger(L, 2, 0)};
  dlua_push_or_error(L, dl_tensor_to_device(t, d));
  return 1;
}

static int l_type(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    lua_pushstring(L, dl_dtype_name(t->dtype));
    return 1;
  }
  return to_dtype(L, dlua_checkdtype(L, 2));
}

static int l_data_ptr(lua_State *L) {
  lua_pushlightuserdata(L, dl_tensor_data(dlua_checktensor(L, 1)));
  return 1;
}

static int l_element_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)dl_dtype_size(dlua_checktensor(L, 1)->dtype));
  return 1;
}

static const luaL_Reg meta[] = {
  {"__index", m_index},
  {"__newindex", m_newindex},
  {"__len", m_len},
  {"__gc", l_release},
  {"__close", l_release},
  {NULL, NULL},
};

static const luaL_Reg methods[] = {
  {"size", l_size}, {"stride", l_stride}, {"dim", l_dim}, {"ndimension", l_dim},
  {"numel", l_numel}, {"nelement", l_numel}, {"is_contiguous", l_is_contiguous},
  {"item", l_item}, {"get", l_get}, {"set", l_set}, {"totable", l_totable},
  {"view", l_view}, {"reshape", l_reshape}, {"expand", l_expand}, {"view_as", l_view_as},
  {"expand_as", l_expand_as}, {"reshape_as", l_view_as},
  {"transpose", l_transpose}, {"t", l_t}, {"permute", l_permute},
  {"narrow", l_narrow}, {"select", l_select}, {"squeeze", l_squeeze}, {"unsqueeze", l_unsqueeze},
  {"flatten", l_flatten}, {"unfold", l_unfold}, {"chunk", l_chunk}, {"split", l_split},
  {"clone", l_clone}, {"contiguous", l_contiguous}, {"copy_", l_copy_}, {"fill_", l_fill_},
  {"zero_", l_zero_}, {"to", l_to}, {"float", l_float}, {"double", l_double}, {"long", l_long},
  {"bool", l_bool}, {"byte", l_byte}, {"cpu", l_cpu}, {"cuda", l_cuda}, {"type", l_type},
  {"data_ptr", l_data_ptr}, {"element_size", l_element_size}, {"close", l_release},
  {NULL, NULL},
};

static const luaL_Reg functions[] = {
  {"is_tensor", l_is_tensor}, {"view", l_view}, {"reshape", l_reshape}, {"transpose", l_transpose},
  {"permute", l_permute}, {"narrow", l_narrow}, {"select", l_select}, {"squeeze", l_squeeze},
  {"unsqueeze", l_unsqueeze}, {"flatten", l_flatten}, {"chunk", l_chunk}, {"split", l_split},
  {"clone", l_clone}, {"t", l_t}, {"numel", l_numel},
  {NULL, NULL},
};

static const luaL_Reg getters[] = {
  {"shape", g_shape}, {"dtype", g_dtype}, {"device", g_device}, {"ndim", g_ndim}, {"T", g_T},
  {NULL, NULL},
};

void dlua_open_tensor(lua_State *L) {
  /* metatable, methods, getters, setters live in the registry */
  luaL_newmetatable(L, DLUA_TENSOR_TYPE); /* sets __name for error messages */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &META_KEY);
  lua_pop(L, 1);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &METHODS_KEY);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &GETTERS_KEY);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &SETTERS_KEY);
  dlua_register_meta(L, meta);
  dlua_register(L, methods, functions);
  dlua_register_getters(L, getters);
  /* dl.Tensor exposes the methods table, so scripts can add methods */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &METHODS_KEY);
  lua_setfield(L, -2, "Tensor");
}
