/* lua_cuda.c — dl.cuda: whether a GPU is there, synchronisation, and the
 * caching device allocator's counters (PyTorch's torch.cuda names). A
 * CPU-only build, or a machine without a GPU, answers "no device":
 * is_available() is false, device_count() 0, the memory counters 0 and
 * synchronize() does nothing; get_device_name() raises an error saying why.
 * manual_seed seeds dlua's one generator: its Philox streams are counter
 * based, so every device draws the CPU's numbers for a seed. */
#include "lua_dlua.h"

#include "dl_backend.h"
#include "dl_rng.h"

#include "dl_cuda.h"

static int device_count(void) {
  return dl_cuda_device_count();
}

/* the optional device argument: an index (0-based, as cuda:N), a device
 * string "cuda:N" or "cuda", or nil for cuda:0 */
static int opt_device(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return 0;
  int index;
  if (lua_type(L, arg) == LUA_TSTRING) {
    dl_device d;
    const char *s = lua_tostring(L, arg);
    if (dl_device_parse(s, &d) || d.type != DL_CUDA)
      return luaL_argerror(L, arg, lua_pushfstring(L, "expected a CUDA device (cuda, cuda:N), got '%s'", s));
    index = d.index;
  } else {
    lua_Integer i = luaL_checkinteger(L, arg);
    luaL_argcheck(L, i >= 0 && i < 128, arg, "device index out of range");
    index = (int)i;
  }
  return index;
}

static int l_is_available(lua_State *L) {
  lua_pushboolean(L, device_count() > 0);
  return 1;
}

static int l_device_count(lua_State *L) {
  lua_pushinteger(L, device_count());
  return 1;
}

static int l_synchronize(lua_State *L) {
  int index = opt_device(L, 1);
  if (dl_cuda_device_count() > 0) dlua_check_status(L, dl_cuda_synchronize(index));
  return 0;
}

static int l_empty_cache(lua_State *L) {
  dlua_heap_drain(L); /* dead tensors give their blocks back first */
  dl_cuda_empty_cache();
  return 0;
}

static int l_memory_allocated(lua_State *L) {
  int index = opt_device(L, 1);
  dlua_heap_drain(L);
  lua_pushinteger(L, (lua_Integer)dl_cuda_memory_allocated(index));
  return 1;
}

static int l_max_memory_allocated(lua_State *L) {
  int index = opt_device(L, 1);
  dlua_heap_drain(L);
  lua_pushinteger(L, (lua_Integer)dl_cuda_max_memory_allocated(index));
  return 1;
}

static int l_reset_peak_memory_stats(lua_State *L) {
  int index = opt_device(L, 1);
  dl_cuda_reset_peak_memory_stats(index);
  return 0;
}

static int l_get_device_name(lua_State *L) {
  int index = opt_device(L, 1);
  char name[256];
  if (dl_cuda_device_name(index, name, sizeof name)) return dlua_engine_error(L);
  lua_pushstring(L, name);
  return 1;
}

static int l_manual_seed(lua_State *L) {
  lua_Integer seed = luaL_checkinteger(L, 1);
  dl_rng_manual_seed((uint64_t)seed);
  return 0;
}

static const luaL_Reg functions[] = {
  {"is_available", l_is_available},
  {"device_count", l_device_count},
  {"synchronize", l_synchronize},
  {"empty_cache", l_empty_cache},
  {"memory_allocated", l_memory_allocated},
  {"max_memory_allocated", l_max_memory_allocated},
  {"reset_peak_memory_stats", l_reset_peak_memory_stats},
  {"get_device_name", l_get_device_name},
  {"manual_seed", l_manual_seed},
  {"manual_seed_all", l_manual_seed},
  {NULL, NULL},
};

/* dl.cuda, a table of its own on the dl table at the top of the stack */
void dlua_open_cuda(lua_State *L) {
  luaL_newlib(L, functions);
  lua_setfield(L, -2, "cuda");
}
