/* lua_args.c — argument readers every binding file shares: dims and
 * indices (1-based in Lua), dtypes, devices, scalars, sizes, option tables. */
#include "lua_dlua.h"

#include "dl_backend.h"

#include <string.h>

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

dl_scalar dlua_checkscalar(lua_State *L, int arg) {
  if (lua_isinteger(L, arg)) return dl_scalar_i(lua_tointeger(L, arg));
  if (lua_type(L, arg) == LUA_TBOOLEAN) return dl_scalar_b(lua_toboolean(L, arg));
  return dl_scalar_f(luaL_checknumber(L, arg));
}

static int64_t check_size(lua_State *L, int arg, int isnum) {
  if (!isnum) luaL_argerror(L, arg, "sizes must be integers");
  return 0;
}

bool dlua_list_extra_key(lua_State *L, int idx, lua_Integer n) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int isint;
    lua_Integer k = lua_tointegerx(L, -1, &isint);
    if (isint && lua_type(L, -1) == LUA_TNUMBER && k >= 1 && k <= n) continue;
    if (lua_type(L, -1) == LUA_TNUMBER) lua_pushfstring(L, "[%s]", lua_tostring(L, -1));
    else if (lua_type(L, -1) == LUA_TSTRING) lua_pushfstring(L, "\"%s\"", lua_tostring(L, -1));
    else lua_pushstring(L, luaL_typename(L, -1));
    lua_remove(L, -2);
    return true;
  }
  return false;
}

int dlua_checkintlist(lua_State *L, int arg, int idx, int64_t *out, const char *what) {
  int n = (int)lua_rawlen(L, idx);
  if (n > DL_MAX_DIMS) luaL_argerror(L, arg, lua_pushfstring(L, "too many %s (at most %d)", what, DL_MAX_DIMS));
  if (dlua_list_extra_key(L, idx, n))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: not a list: it has the key %s besides its %d entries", what,
                                          lua_tostring(L, -1), n));
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    int isint;
    out[i - 1] = lua_tointegerx(L, -1, &isint);
    lua_pop(L, 1);
    if (!isint) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be integers", what));
  }
  return n;
}

int dlua_checksizes(lua_State *L, int arg, int64_t *shape, int *next) {
  int n = 0;
  if (lua_istable(L, arg) && !dlua_totensor(L, arg) && lua_rawlen(L, arg) > 0) {
    n = dlua_checkintlist(L, arg, arg, shape, "sizes");
    for (int i = 0; i < n; i++)
      if (shape[i] < 0) luaL_argerror(L, arg, "negative size");
    if (next) *next = arg + 1;
    return n;
  }
  /* {} : a 0-d shape, when it is not the options (an empty table could be
   * either: followed by a table, the options, it is the shape) */
  if (lua_istable(L, arg) && !dlua_totensor(L, arg) && lua_rawlen(L, arg) == 0 &&
      (!dlua_isoptions(L, arg) || (lua_istable(L, arg + 1) && !dlua_totensor(L, arg + 1)))) {
    if (next) *next = arg + 1;
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

/* "dl.zeros: option 'dtype' must be a string, got boolean" */
static int opt_error(lua_State *L, const char *key, const char *want, const char *got) {
  const char *fn = dlua_function_name(L);
  return luaL_error(L, "%s%soption '%s' must be %s, got %s", fn ? fn : "", fn ? ": " : "", key, want, got);
}

lua_Number dlua_optnumber(lua_State *L, int arg, const char *key, lua_Number def) {
  if (!push_opt(L, arg, key)) return def;
  if (lua_type(L, -1) != LUA_TNUMBER) opt_error(L, key, "a number", luaL_typename(L, -1));
  lua_Number v = lua_tonumber(L, -1);
  if (v != v) opt_error(L, key, "a number", "NaN"); /* never "use the default" */
  lua_pop(L, 1);
  return v;
}

lua_Integer dlua_optinteger(lua_State *L, int arg, const char *key, lua_Integer def) {
  if (!push_opt(L, arg, key)) return def;
  int ok;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  if (!ok) opt_error(L, key, "an integer", lua_type(L, -1) == LUA_TNUMBER ? "a non-integer" : luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

bool dlua_optbool(lua_State *L, int arg, const char *key, bool def) {
  if (!push_opt(L, arg, key)) return def;
  if (!lua_isboolean(L, -1)) opt_error(L, key, "a boolean", luaL_typename(L, -1));
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *dlua_optstring(lua_State *L, int arg, const char *key, const char *def) {
  if (!push_opt(L, arg, key)) return def;
  if (lua_type(L, -1) != LUA_TSTRING) opt_error(L, key, "a string", luaL_typename(L, -1));
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
    if (!ok) { /* the valid ones listed, so the fix is in the message */
      luaL_Buffer b;
      const char *k = luaL_tolstring(L, -1, NULL);
      luaL_buffinit(L, &b);
      for (const char *const *a = allowed; *a; a++) {
        if (a != allowed) luaL_addstring(&b, ", ");
        luaL_addstring(&b, *a);
      }
      luaL_pushresult(&b);
      if (!allowed[0]) luaL_error(L, "%s: unknown option '%s' (it takes no options)", fn, k);
      luaL_error(L, "%s: unknown option '%s' (valid: %s)", fn, k, lua_tostring(L, -1));
    }
  }
}

dlua_tensor_options dlua_opttensoroptions(lua_State *L, int arg, dl_dtype def_dtype) {
  dlua_tensor_options o = {def_dtype, dl_device_cpu(), false};
  if (arg == 0 || lua_isnoneornil(L, arg)) return o;
  /* anything else where the options go is a mistake, not "no options"
   * (dl.zeros("a") or dl.zeros(2, "3")) */
  if (!dlua_isoptions(L, arg)) luaL_typeerror(L, arg, "size or options table");
  static const char *const allowed[] = {"device", "dtype", "requires_grad", NULL};
  dlua_checkoptions(L, arg, dlua_function_name(L), allowed);
  const char *dt = dlua_optstring(L, arg, "dtype", NULL);
  if (dt && dl_dtype_from_name(dt, &o.dtype))
    luaL_error(L, "unknown dtype '%s' (float32, float64, int64, bool, uint8)", dt);
  const char *dev = dlua_optstring(L, arg, "device", NULL);
  if (dev && dl_device_parse(dev, &o.device)) luaL_error(L, "unknown device '%s' (cpu, cuda, cuda:N)", dev);
  if (dev && !dl_backend_get(o.device)) dlua_engine_error(L);
  o.requires_grad = dlua_optbool(L, arg, "requires_grad", false);
  return o;
}

/* ---- sizes: x:size(), x.shape, x:stride() ----
 * A plain list of integers whose metatable prints it ({3, 4}, where a bare
 * table prints its address) and compares it element by element
 * (x:size() == y:size(), or == {3, 4}); #, ipairs and s[1] as for any list. */
static int size_tostring(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '{');
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) luaL_addstring(&b, ", ");
    lua_rawgeti(L, 1, i);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '}');
  luaL_pushresult(&b);
  return 1;
}

static int size_eq(lua_State *L) {
  if (!lua_istable(L, 1) || !lua_istable(L, 2) || lua_rawlen(L, 1) != lua_rawlen(L, 2)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    lua_rawgeti(L, 2, i);
    int same = lua_rawequal(L, -1, -2) || lua_compare(L, -1, -2, LUA_OPEQ);
    lua_pop(L, 2);
    if (!same) {
      lua_pushboolean(L, 0);
      return 1;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

void dlua_pushshape(lua_State *L, const int64_t *shape, int ndim) {
  lua_createtable(L, ndim, 0);
  for (int d = 0; d < ndim; d++) {
    lua_pushinteger(L, shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  /* the metatable, made once, found by address (no string lookup a call) */
  static const char SIZE_KEY = 0;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SIZE_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, size_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, size_eq);
    lua_setfield(L, -2, "__eq");
    lua_pushstring(L, "Size");
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SIZE_KEY);
  }
  lua_setmetatable(L, -2);
}

