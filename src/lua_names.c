/* lua_names.c — argument errors that name the function as the user knows
 * it: "dl.zeros: bad argument #1 (negative size)", "Tensor:view: bad
 * argument #1 (number expected, got string)", "Tensor.grad: bad value
 * (tensor expected, got number)" — however it was reached (a field, a
 * method, pcall, a local alias), where lauxlib would say 'zeros', '?' or
 * whichever package.loaded entry it met first.
 *
 * The names come from one walk of the module after it opened: every C
 * function of dl and of its sub-tables ("dl.cuda.synchronize"), every
 * Tensor method, and the property setters as they are registered. PyTorch's
 * other names for an op (dl.clip) are closures of their own, so they are
 * named as called; one function under two keys of a table takes the
 * shorter (Tensor:dim, not Tensor:ndimension). lua_dlua.h sends the
 * binding's calls of lauxlib's checkers here. */
#define DLUA_NAMES_IMPL /* lauxlib's own checkers, under their own names */
#include "lua_dlua.h"

#include <stdarg.h>
#include <string.h>

static const char NAMES_KEY = 0; /* registry: {[fn] = "dl.x"}, {[fn] = "Tensor:x"} */

/* the two name tables (function names, method names) on the stack */
static void push_tables(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &NAMES_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 2, 0);
    for (int i = 1; i <= 2; i++) {
      lua_newtable(L);
      lua_rawseti(L, -2, i);
    }
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &NAMES_KEY);
  }
}

/* names[which][fn at idx] = prefix .. key, unless a shorter name is there */
static void name_one(lua_State *L, int idx, int which, const char *prefix, const char *key) {
  idx = lua_absindex(L, idx);
  push_tables(L);
  lua_rawgeti(L, -1, which);
  lua_pushvalue(L, idx);
  const char *name = lua_pushfstring(L, "%s%s", prefix, key);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -4) == LUA_TSTRING) {
    size_t n_old = lua_rawlen(L, -1), n_new = strlen(name);
    if (n_old < n_new || (n_old == n_new && strcmp(lua_tostring(L, -1), name) < 0)) {
      lua_pop(L, 5);
      return;
    }
  }
  lua_pop(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 2);
}

void dlua_name_setter(lua_State *L, int idx, const char *field) { name_one(L, idx, 1, "Tensor.", field); }

/* the C functions of the table at t under prefix; sub-tables one level down */
static void walk(lua_State *L, int t, const char *prefix, int depth) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      if (lua_iscfunction(L, -1)) name_one(L, -1, 1, prefix, k);
      else if (depth > 0 && lua_istable(L, -1) && strcmp(k, "Tensor") != 0 && k[0] != '_') {
        const char *sub = lua_pushfstring(L, "%s%s.", prefix, k);
        walk(L, lua_absindex(L, -2), sub, depth - 1);
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
}

void dlua_names_build(lua_State *L, int dl) {
  dl = lua_absindex(L, dl);
  walk(L, dl, "dl.", 2);
  if (lua_getfield(L, dl, "Tensor") == LUA_TTABLE) {
    int tensor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, tensor)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) name_one(L, -1, 2, "Tensor:", lua_tostring(L, -2));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  /* metamethods, under the op they perform (a % b is dl.remainder), else
   * as "Tensor.__len" */
  static const char *const meta_ops[][2] = {
    {"__add", "dl.add"},         {"__sub", "dl.sub"},   {"__mul", "dl.mul"}, {"__div", "dl.div"},
    {"__mod", "dl.remainder"},   {"__pow", "dl.pow"},   {"__unm", "dl.neg"}, {"__idiv", "dl.floor_divide"},
    {"__index", "dl.index"},     {"__newindex", "dl.index"},
  };
  if (luaL_getmetatable(L, DLUA_TENSOR_TYPE) == LUA_TTABLE) {
    int meta = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, meta)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_iscfunction(L, -1)) {
        const char *k = lua_tostring(L, -2), *op = NULL;
        for (size_t i = 0; i < sizeof meta_ops / sizeof meta_ops[0]; i++)
          if (strcmp(k, meta_ops[i][0]) == 0) op = meta_ops[i][1];
        if (op) name_one(L, -1, 1, "", op);
        else name_one(L, -1, 1, "Tensor.", k);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

const char *dlua_function_name(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar)) return NULL;
  lua_getinfo(L, "nf", &ar);
  bool method = ar.namewhat && strcmp(ar.namewhat, "method") == 0;
  push_tables(L);
  const char *name = NULL;
  for (int pass = 0; pass < 2 && !name; pass++) {
    lua_rawgeti(L, -1, (pass == 0) == method ? 2 : 1);
    lua_pushvalue(L, -3);
    if (lua_rawget(L, -2) == LUA_TSTRING) name = lua_tostring(L, -1); /* stays on the stack */
    else lua_pop(L, 2);
  }
  return name;
}

const char *dlua_short_name(const char *name) {
  const char *sep = strrchr(name, ':'), *dot = strrchr(name, '.');
  return sep && (!dot || sep > dot) ? sep + 1 : dot ? dot + 1 : name;
}

int dlua_error_named(lua_State *L, const char *fallback, const char *fmt, ...) {
  const char *fn = dlua_function_name(L);
  /* t:clamp() says "dl.clamp", as the op's own errors do; t:clip() says "Tensor:clip" */
  if (fn && strcmp(dlua_short_name(fn), dlua_short_name(fallback)) == 0) fn = NULL;
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  luaL_where(L, 1);
  lua_pushfstring(L, "%s: %s", fn ? fn : fallback, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

int dlua_argerror(lua_State *L, int arg, const char *extramsg) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar)) return luaL_error(L, "bad argument #%d (%s)", arg, extramsg);
  lua_getinfo(L, "nf", &ar);
  bool method = ar.namewhat && strcmp(ar.namewhat, "method") == 0;
  const char *name = NULL;
  push_tables(L);
  for (int pass = 0; pass < 2 && !name; pass++) {
    int which = (pass == 0) == method ? 2 : 1; /* a method call looks for the method name first */
    lua_rawgeti(L, -1, which);
    lua_pushvalue(L, -3); /* the function */
    if (lua_rawget(L, -2) == LUA_TSTRING) {
      name = lua_tostring(L, -1); /* stays on the stack */
      if (which == 1) method = false; /* named as a function: self counts as argument #1 */
    } else {
      lua_pop(L, 2);
    }
  }
  if (!name) { /* not a registered function: lauxlib's wording */
    name = ar.name ? ar.name : "?";
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, extramsg);
  }
  if (strncmp(name, "Tensor.", 7) == 0 && arg == 3) { /* a property setter, called by __newindex */
    luaL_where(L, 2);
    lua_pushfstring(L, "%s: bad value (%s)", name, extramsg);
    lua_concat(L, 2);
    return lua_error(L);
  }
  if (method) {
    arg--;
    if (arg == 0) return luaL_error(L, "%s: bad self (%s)", name, extramsg);
  }
  return luaL_error(L, "%s: bad argument #%d (%s)", name, arg, extramsg);
}

int dlua_typeerror(lua_State *L, int arg, const char *tname) {
  const char *got;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) got = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA) got = "light userdata";
  else got = luaL_typename(L, arg);
  return dlua_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", tname, got));
}

lua_Integer dlua_checkinteger(lua_State *L, int arg) {
  int ok;
  lua_Integer v = lua_tointegerx(L, arg, &ok);
  if (!ok) {
    if (lua_isnumber(L, arg)) dlua_argerror(L, arg, "number has no integer representation");
    else dlua_typeerror(L, arg, "number");
  }
  return v;
}

lua_Number dlua_checknumber(lua_State *L, int arg) {
  int ok;
  lua_Number v = lua_tonumberx(L, arg, &ok);
  if (!ok) dlua_typeerror(L, arg, "number");
  return v;
}

const char *dlua_checklstring(lua_State *L, int arg, size_t *len) {
  const char *s = lua_tolstring(L, arg, len);
  if (!s) dlua_typeerror(L, arg, "string");
  return s;
}

lua_Integer dlua_optinteger_arg(lua_State *L, int arg, lua_Integer def) {
  return lua_isnoneornil(L, arg) ? def : dlua_checkinteger(L, arg);
}

lua_Number dlua_optnumber_arg(lua_State *L, int arg, lua_Number def) {
  return lua_isnoneornil(L, arg) ? def : dlua_checknumber(L, arg);
}

const char *dlua_optlstring(lua_State *L, int arg, const char *def, size_t *len) {
  if (!lua_isnoneornil(L, arg)) return dlua_checklstring(L, arg, len);
  if (len) *len = def ? strlen(def) : 0;
  return def;
}

void dlua_checktype(lua_State *L, int arg, int t) {
  if (lua_type(L, arg) != t) dlua_typeerror(L, arg, lua_typename(L, t));
}

void *dlua_checkudata(lua_State *L, int arg, const char *tname) {
  void *p = luaL_testudata(L, arg, tname);
  if (!p) dlua_typeerror(L, arg, tname);
  return p;
}

int dlua_checkoption(lua_State *L, int arg, const char *def, const char *const list[]) {
  const char *name = def ? dlua_optlstring(L, arg, def, NULL) : dlua_checklstring(L, arg, NULL);
  for (int i = 0; list[i]; i++)
    if (strcmp(list[i], name) == 0) return i;
  return dlua_argerror(L, arg, lua_pushfstring(L, "invalid option '%s'", name));
}
