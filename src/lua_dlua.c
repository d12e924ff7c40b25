/* lua_dlua.c — luaopen_dlua: builds the `dl` table from the binding files,
 * then runs the Lua library compiled into the binary (lua/dlua/). */
#include "lua_dlua.h"

#include "dl_alloc.h"

#include <lualib.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name, *path, *src;
  size_t len;
  const char *bc; /* src as bytecode of dlua_lua_bytecode_release */
  size_t bc_len;
} dlua_lua_source;
extern const dlua_lua_source dlua_lua_sources[];
extern const char dlua_lua_bytecode_release[]; /* "Lua 5.4.4" */

static int l_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 1 || n > 1024) return luaL_argerror(L, 1, "thread count must be between 1 and 1024");
  dl_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, dl_get_num_threads());
  return 1;
}

static int l_memory_stats(lua_State *L) {
  dlua_heap_drain(L); /* tensors the collector already freed */
  dl_alloc_stats s;
  dl_host_stats(&s);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)s.allocated);
  lua_setfield(L, -2, "allocated");
  lua_pushinteger(L, (lua_Integer)s.cached);
  lua_setfield(L, -2, "cached");
  lua_pushinteger(L, (lua_Integer)s.peak);
  lua_setfield(L, -2, "peak");
  lua_pushinteger(L, (lua_Integer)s.sys_allocs);
  lua_setfield(L, -2, "system_allocations");
  return 1;
}

static int l_empty_cache(lua_State *L) {
  dlua_heap_drain(L); /* dead tensors give their blocks back first */
  dl_host_empty_cache();
  return 0;
}

/* whether the Lua this runs in is the release that made the embedded
 * bytecode ("$LuaVersion: Lua 5.4.4  Copyright ..."): bytecode is not
 * portable across releases, and a host may bring its own Lua 5.4 */
static bool bytecode_fits(void) {
  static const char prefix[] = "$LuaVersion: ";
  size_t n = strlen(dlua_lua_bytecode_release);
  return strncmp(lua_ident, prefix, sizeof prefix - 1) == 0 &&
         strncmp(lua_ident + sizeof prefix - 1, dlua_lua_bytecode_release, n) == 0 &&
         lua_ident[sizeof prefix - 1 + n] == ' ';
}

/* package.preload loader for an embedded module: its bytecode (named
 * "=[dlua]/<module>.lua" when it was dumped) where it fits this Lua, its
 * source under that name otherwise; upvalue: index */
static int load_embedded(lua_State *L) {
  const dlua_lua_source *s = &dlua_lua_sources[lua_tointeger(L, lua_upvalueindex(1))];
  char chunk[256];
  snprintf(chunk, sizeof chunk, "=[dlua]/%s.lua", s->name);
  int rc = bytecode_fits() ? luaL_loadbufferx(L, s->bc, s->bc_len, chunk, "b")
                           : luaL_loadbufferx(L, s->src, s->len, chunk, "t");
  if (rc != LUA_OK) return lua_error(L);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

/* DLUA_LUA_PATH (development): load the library from disk instead;
 * upvalues: the directory and the embedded file's path below it */
static int load_from_dir(lua_State *L) {
  const char *dir = lua_tostring(L, lua_upvalueindex(1));
  const char *rel = lua_tostring(L, lua_upvalueindex(2));
  lua_pushfstring(L, "%s/%s", dir, rel);
  if (luaL_loadfile(L, lua_tostring(L, -1)) != LUA_OK) return lua_error(L);
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

static void install_preloads(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  /* require "dlua" from the Lua half, or in a host, finds the open table */
  lua_pushcfunction(L, luaopen_dlua);
  lua_setfield(L, -2, "dlua");
  const char *dir = getenv("DLUA_LUA_PATH");
  for (int i = 0; dlua_lua_sources[i].name; i++) {
    if (dir) {
      lua_pushstring(L, dir);
      lua_pushstring(L, dlua_lua_sources[i].path);
      lua_pushcclosure(L, load_from_dir, 2);
    } else {
      lua_pushinteger(L, i);
      lua_pushcclosure(L, load_embedded, 1);
    }
    lua_setfield(L, -2, dlua_lua_sources[i].name);
  }
  lua_pop(L, 1);
}

static const luaL_Reg functions[] = {
  {"set_num_threads", l_set_num_threads},
  {"get_num_threads", l_get_num_threads},
  {"memory_stats", l_memory_stats},
  {"empty_cache", l_empty_cache},
  {NULL, NULL},
};

int luaopen_dlua(lua_State *L) {
  /* one table per state: a second require returns it */
  lua_getfield(L, LUA_REGISTRYINDEX, "dlua.module");
  if (lua_istable(L, -1)) return 1;
  lua_pop(L, 1);
  /* the Lua half (which requires "dlua" again) needs require: checked
   * before anything is registered */
  lua_getglobal(L, "require");
  if (!lua_isfunction(L, -1))
    return luaL_error(L, "luaopen_dlua: the standard libraries must be open first (luaL_openlibs)");
  lua_pop(L, 1);
  dl_get_num_threads(); /* settle the default count */
  lua_newtable(L);
  luaL_setfuncs(L, functions, 0);
  lua_pushstring(L, DLUA_VERSION);
  lua_setfield(L, -2, "version");
  dlua_open_tensor(L);
  dlua_open_view(L);
  dlua_open_create(L);
  dlua_open_print(L);
  dlua_open_ewise(L);
  dlua_open_reduce(L);
  dlua_open_index(L);
  dlua_open_linalg(L);
  dlua_open_random(L);
  dlua_open_autograd(L);
  dlua_open_activation(L);
  dlua_open_loss(L);
  dlua_open_layer(L);
  dlua_open_conv(L);
  dlua_open_optim(L);
  dlua_open_data(L);
  dlua_open_io(L);
  dlua_open_decomp(L);
  dlua_open_sys(L);
  dlua_open_cuda(L);
  dlua_open_dist(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "dlua.module");
  install_preloads(L);
  /* the Lua half extends the table; if it fails, no half-built module is
   * left for the next require to return */
  lua_getglobal(L, "require");
  lua_pushstring(L, "dlua.init");
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "dlua.module");
    return lua_error(L);
  }
  dlua_names_build(L, -1);
  return 1;
}

/* collectgarbage, then the release of the tensors it freed: this state's
 * allocator queues them (a release can free memory through it, which the
 * collector's sweep must not see) until the next safe point, and a script
 * that collects expects host buffers back at once */
static int collect_and_release(lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  dlua_heap_drain(L);
  return lua_gettop(L);
}

static int open_all(lua_State *L) {
  /* generational mode: minor collections reclaim short-lived tensors
   * without a pass over the whole heap (lua.c's default too) */
  lua_gc(L, LUA_GCGEN, 0, 0);
  luaL_openlibs(L);
  lua_getglobal(L, "collectgarbage");
  lua_pushcclosure(L, collect_and_release, 1);
  lua_setglobal(L, "collectgarbage");
  luaL_requiref(L, "dlua", luaopen_dlua, 0);
  lua_setglobal(L, "dl");
  return 0;
}

lua_State *dlua_newstate(void) {
  lua_State *L = dlua_state_new();
  if (!L) return NULL;
  lua_pushcfunction(L, open_all);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    dl_error_set("dlua_newstate: %s", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}
