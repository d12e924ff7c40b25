/* dlua.h — the public C API for programs that embed dlua.
 *
 *   lua_State *L = dlua_newstate();          -- a state with `dl` loaded
 *   dl_tensor *t = dl_tensor_from_buffer(buf, shape, 2, NULL, DL_FLOAT32, release, ctx);
 *   dlua_pushtensor(L, t);                   -- Lua now owns the reference
 *
 * Link with libdlua (pkg-config dlua).
 *
 * Threads: a lua_State is used by one thread at a time (Lua's rule). States
 * in different threads share nothing mutable but the allocator caches
 * (locked); the random generator is per thread, so each thread's
 * dl.manual_seed gives it its own reproducible stream. Two states used
 * from one thread share that thread's generator. */
#ifndef DLUA_H
#define DLUA_H

#include <lua.h>

#include "dl_core.h"
#include "dl_tensor.h"

#define DLUA_VERSION "0.1.0"
#define DLUA_TENSOR_TYPE "dlua.Tensor"

/* Opens the library: returns 1 with the `dl` table on the stack. */
int luaopen_dlua(lua_State *L);
/* A new state with the standard libraries and `dl` open (global `dl`, and
 * require "dlua" returns it). NULL on allocation failure. */
lua_State *dlua_newstate(void);

/* Pushes a tensor userdata; takes over the caller's reference to t. */
void dlua_pushtensor(lua_State *L, dl_tensor *t);
/* The tensor at idx, or a Lua error naming the argument. Borrowed reference. */
dl_tensor *dlua_checktensor(lua_State *L, int idx);
/* The tensor at idx, or NULL when it is not one. Borrowed reference. */
dl_tensor *dlua_totensor(lua_State *L, int idx);

#endif
