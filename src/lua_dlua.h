/* lua_dlua.h — helpers shared by the binding files (src/lua_*.c). Only the
 * binding includes lua.h; it turns engine errors into Lua errors. */
#ifndef LUA_DLUA_H
#define LUA_DLUA_H

#include <lauxlib.h>
#include <lua.h>

#include "dlua.h"

/* Argument errors name the function as registered ("dl.zeros: bad argument
 * #1 (negative size)"; lua_names.c): the binding's calls of lauxlib's
 * checkers go to these. */
int dlua_argerror(lua_State *L, int arg, const char *extramsg);
int dlua_typeerror(lua_State *L, int arg, const char *tname);
lua_Integer dlua_checkinteger(lua_State *L, int arg);
lua_Number dlua_checknumber(lua_State *L, int arg);
const char *dlua_checklstring(lua_State *L, int arg, size_t *len);
lua_Integer dlua_optinteger_arg(lua_State *L, int arg, lua_Integer def);
lua_Number dlua_optnumber_arg(lua_State *L, int arg, lua_Number def);
const char *dlua_optlstring(lua_State *L, int arg, const char *def, size_t *len);
void dlua_checktype(lua_State *L, int arg, int t);
void *dlua_checkudata(lua_State *L, int arg, const char *tname);
int dlua_checkoption(lua_State *L, int arg, const char *def, const char *const list[]);
#ifndef DLUA_NAMES_IMPL
#define luaL_argerror dlua_argerror
#define luaL_typeerror dlua_typeerror
#define luaL_checkinteger dlua_checkinteger
#define luaL_checknumber dlua_checknumber
#define luaL_checklstring dlua_checklstring
#define luaL_optinteger dlua_optinteger_arg
#define luaL_optnumber dlua_optnumber_arg
#define luaL_optlstring dlua_optlstring
#define luaL_checktype dlua_checktype
#define luaL_checkudata dlua_checkudata
#define luaL_checkoption dlua_checkoption
#endif
/* the registered name of the running C function ("dl.zeros", "Tensor:view"),
 * or NULL; the string stays on the stack (for an error about to be raised) */
const char *dlua_function_name(lua_State *L);
/* the part of "dl.nn.x" / "Tensor:x" after its last '.' or ':' */
const char *dlua_short_name(const char *name);
/* luaL_error naming the function the user called ("dl.clip: ..."), or
 * fallback where it has no registered name */
int dlua_error_named(lua_State *L, const char *fallback, const char *fmt, ...);
/* the names: built once the module opened; setters as they register */
void dlua_names_build(lua_State *L, int dl);
void dlua_name_setter(lua_State *L, int idx, const char *field);

/* A tensor userdata's payload. The secret magic tells a tensor from any
 * other userdata of the same size without a metatable lookup (lua_heap.c
 * recognises the blocks it frees by their slab flag, not by these bytes). */
typedef struct dlua_tensor_ud {
  uint64_t magic;
  dl_tensor *t; /* NULL once closed */
  struct dlua_tensor_ud *prev, *next; /* live list of a dlua-made state */
} dlua_tensor_ud;
extern uint64_t dlua_ud_magic;
void dlua_ud_magic_init(void);
static inline dlua_tensor_ud *dlua_toud(lua_State *L, int idx) {
  dlua_tensor_ud *u = lua_touserdata(L, idx);
  return u && lua_rawlen(L, idx) == sizeof *u && u->magic == dlua_ud_magic ? u : NULL;
}

/* lua_heap.c: states with dlua's allocator (tensors then need no __gc). */
lua_State *dlua_state_new(void);
bool dlua_heap_owned(lua_State *L);
/* releases the tensors whose userdata the collector freed */
void dlua_heap_drain(lua_State *L);
/* links a new tensor userdata into the state's live list */
void dlua_heap_track(lua_State *L, dlua_tensor_ud *u);

/* The collector's safe point at the start of an op that makes a tensor:
 * runs the collection dlua_pushtensor found due (see lua_tensor.c). */
extern _Thread_local bool dlua_gc_due;
void dlua_gc_collect(lua_State *L);
/* a full collection after a big training step's backward (lua_tensor.c) */
void dlua_gc_after_backward(lua_State *L);
/* a full collection now, dead tensors released, the pacing reset to it */
void dlua_gc_full_collect(lua_State *L);
static inline void dlua_gc_point(lua_State *L) {
  if (dlua_gc_due) dlua_gc_collect(L);
}

/* Pushes t, or raises "dl.<engine message>" when t is NULL. */
void dlua_push_or_error(lua_State *L, dl_tensor *t);
/* Raises the engine's last error as "dl.<message>". */
int dlua_engine_error(lua_State *L);
/* Checks an engine status (0 ok). */
static inline void dlua_check_status(lua_State *L, int rc) {
  if (rc != 0) dlua_engine_error(L);
}

/* Registers methods on the tensor (methods may be NULL) and functions on the
 * dl table at the top of the stack (functions may be NULL). */
void dlua_register(lua_State *L, const luaL_Reg *methods, const luaL_Reg *functions);
/* Adds metamethods (__add, ...) to the tensor metatable. */
void dlua_register_meta(lua_State *L, const luaL_Reg *meta);
/* Read-only and writable properties: t.<name>. A getter pushes one value; a
 * setter reads the value at index 3. */
void dlua_register_getters(lua_State *L, const luaL_Reg *getters);
void dlua_register_setters(lua_State *L, const luaL_Reg *setters);

/* Arguments */
/* A 1-based (or negative, from the end) dim -> 0-based; error names arg. */
int dlua_checkdim(lua_State *L, int arg, int ndim);
/* An index 1..size (or negative from the end) -> 0-based. */
int64_t dlua_checkindex(lua_State *L, int arg, int64_t size);
dl_dtype dlua_checkdtype(lua_State *L, int arg);
dl_scalar dlua_checkscalar(lua_State *L, int arg);
static inline dl_scalar dlua_toscalar(lua_State *L, int arg) {
  return lua_isinteger(L, arg) ? dl_scalar_i(lua_tointeger(L, arg)) : dl_scalar_f(lua_tonumber(L, arg));
}
/* Whether the table at idx has a key other than the integers 1..n (a hole,
 * {1, [3] = 3}, where # may say 1, or a named field); if so pushes that
 * key, described ("[3]", "\"x\"", "boolean"), and returns true. */
bool dlua_list_extra_key(lua_State *L, int idx, lua_Integer n);
/* The integers of the list at idx (at most DL_MAX_DIMS) into out; errors
 * name arg and `what` ("dims", "sizes"): too many, a key that makes it no
 * list, an entry that is no integer. Returns the count. */
int dlua_checkintlist(lua_State *L, int arg, int idx, int64_t *out, const char *what);
/* Sizes as varargs from arg on (dl.zeros(2, 3)) or one table ({2, 3});
 * stops at the first non-number. Returns ndim; *next is the first unused arg. */
int dlua_checksizes(lua_State *L, int arg, int64_t *shape, int *next);

/* Option tables (the trailing `{...}` argument). arg may be 0 or none. */
bool dlua_isoptions(lua_State *L, int arg);
lua_Number dlua_optnumber(lua_State *L, int arg, const char *key, lua_Number def);
lua_Integer dlua_optinteger(lua_State *L, int arg, const char *key, lua_Integer def);
bool dlua_optbool(lua_State *L, int arg, const char *key, bool def);
const char *dlua_optstring(lua_State *L, int arg, const char *key, const char *def);
/* Raises an error naming fn and the first key of the options table at arg
 * that is not in `allowed` (NULL-terminated). */
void dlua_checkoptions(lua_State *L, int arg, const char *fn, const char *const *allowed);
/* dtype/device/requires_grad from an options table (creation functions). */
typedef struct {
  dl_dtype dtype;
  dl_device device;
  bool requires_grad;
} dlua_tensor_options;
dlua_tensor_options dlua_opttensoroptions(lua_State *L, int arg, dl_dtype def_dtype);

/* Pushes a Lua table {d1, d2, ...} */
void dlua_pushshape(lua_State *L, const int64_t *shape, int ndim);

/* family openers, called by luaopen_dlua with the dl table on top */
void dlua_open_dist(lua_State *L);
/* t[key] / t[key] = value with a tensor key: a bool mask or int64 indices
 * (lua_advanced_index.c) */
dl_tensor *dlua_index_by_tensor(lua_State *L, dl_tensor *t, dl_tensor *key);
void dlua_newindex_by_tensor(lua_State *L, dl_tensor *t, dl_tensor *key, int value);
void dlua_open_tensor(lua_State *L);
void dlua_open_view(lua_State *L);
void dlua_open_create(lua_State *L);
void dlua_open_print(lua_State *L);
void dlua_open_ewise(lua_State *L);
/* ", grad_fn=<MulBackward0>" or ", requires_grad=True" after a tensor's
 * values (lua_autograd.c); NULL when there is nothing to add */
const char *dlua_autograd_describe(const dl_tensor *t, char *buf, size_t n);
/* a second name for an op of the table, as PyTorch has ("subtract" for sub) */
typedef struct {
  const char *alias, *name;
} dlua_alias;
extern const dlua_alias dlua_ewise_aliases[]; /* {NULL, NULL} ends it */
void dlua_open_reduce(lua_State *L);
void dlua_open_index(lua_State *L);
void dlua_open_linalg(lua_State *L);
void dlua_open_random(lua_State *L);
void dlua_open_autograd(lua_State *L);
void dlua_open_activation(lua_State *L);
void dlua_open_loss(lua_State *L);
void dlua_open_layer(lua_State *L);
void dlua_open_conv(lua_State *L);
void dlua_open_optim(lua_State *L);
void dlua_open_data(lua_State *L);
void dlua_open_io(lua_State *L);
void dlua_open_decomp(lua_State *L);
void dlua_open_sys(lua_State *L);
void dlua_open_cuda(lua_State *L);

#endif
