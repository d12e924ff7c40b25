/* lua_tensor.c — the tensor userdata: metatable, registration of methods
 * and properties, indexing (t[i], t[{...}]) and inspection. */
#include "lua_dlua.h"

#include "autograd/dl_ag_view.h"
#include "autograd/dl_autograd.h"
#include "dl_alloc.h"
#include "dl_backend.h"
#include "dl_threads.h"

#include <string.h>

/* registry keys (addresses are unique) */
static const char META_KEY = 0, METHODS_KEY = 0, GETTERS_KEY = 0, SETTERS_KEY = 0;


/* ---- userdata ---- */

/* Collector pacing: storage lives outside Lua's heap, so the binding runs
 * the collector itself. A minor collection costs a little per young object,
 * so for small tensors it waits for both enough new tensor bytes (the bytes
 * still live, at least GC_MIN_BYTES) and enough new tensors
 * (GC_MIN_TENSORS) to amortise it; but garbage never grows past
 * GC_CACHE_BYTES, so loops over big tensors keep reusing a few cache-warm
 * blocks instead of streaming through fresh memory. Tensors that outlived
 * two minor collections are old and only a full collection frees them: one
 * runs when the live tensor bytes double (Lua's own rule for its heap) and
 * have grown by GC_OLD_BYTES since the last full collection. Within a
 * training step the tensors saved for backward double the live bytes of
 * the step's start and are all still live: without the second condition a
 * Transformer step ran 1.7 full collections that freed nothing, 9% of its
 * time. */
#define GC_MIN_BYTES ((size_t)256 << 10)
#define GC_MIN_TENSORS 64
#define GC_CACHE_BYTES ((size_t)4 << 20)
static _Thread_local size_t gc_bytes, gc_tensors, gc_live = GC_MIN_BYTES, gc_base = GC_MIN_BYTES;
/* the old garbage a full collection waits for: host live bytes this much
 * above the lowest seen since the last full collection (gc_base) when a
 * backward ends, and, for the doubling rule, above the live bytes right
 * after the last full collection. At 16 MB the Transformer step of
 * scripts/bench/seq.lua ran 34.0 ms (rss 78 MB), at 64 MB 34.7 ms (115 MB) */
#define GC_OLD_BYTES ((size_t)16 << 20)
/* tensor bytes made on any device since the last full collection; past
 * GC_FULL_BYTES a backward runs one whatever the host count says (old
 * device tensors do not show in it) */
static _Thread_local size_t gc_since_full;
#define GC_FULL_BYTES ((size_t)1 << 30)
/* the live host bytes right after the last full collection (0 before the
 * first); set only there. A full collection at a step's peak keeps the
 * doubling rule off until the live bytes pass that peak by GC_OLD_BYTES,
 * which is what stops the collections that free nothing; old garbage
 * below it goes at a backward's end (the gc_base rule). */
static _Thread_local size_t gc_full_live;
_Thread_local bool dlua_gc_due;

static size_t live_bytes(void) {
  size_t live = dl_host_live_bytes();
  return live > GC_MIN_BYTES ? live : GC_MIN_BYTES;
}

void dlua_gc_full_collect(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT);
  dlua_heap_drain(L);
  gc_live = gc_base = gc_full_live = live_bytes();
  gc_since_full = 0;
}

void dlua_gc_collect(lua_State *L) {
  dlua_gc_due = false;
  gc_bytes = gc_tensors = 0;
  lua_gc(L, LUA_GCSTEP, 0); /* generational mode: a minor collection */
  dlua_heap_drain(L);
  gc_live = live_bytes();
  if (gc_live > 2 * gc_base && gc_live > gc_full_live + GC_OLD_BYTES) dlua_gc_full_collect(L);
  else if (gc_live < gc_base) gc_base = gc_live; /* a peak's full collection does not raise the bar for good */
}

/* After a backward the step's tensors are garbage. Most are still young
 * (a step starts right after the previous one's collection, so they have
 * seen at most the minor collections of their own step), and a minor
 * collection frees them: the next step reuses their blocks (a step that
 * made less than GC_MIN_BYTES since the last collection waits for the
 * usual pacing). A step that allocates more than GC_CACHE_BYTES runs
 * minor collections inside it, and the tensors that outlive two of them
 * are old: only a full collection frees those, so one runs once
 * GC_OLD_BYTES of them have piled up on the host, or GC_FULL_BYTES of
 * tensors were made on any device (otherwise the next steps allocate
 * afresh, past what the allocator caches: page faults were a third of a
 * Transformer step's time). A full collection walks the whole Lua heap
 * (1.4 ms beside the library): an earlier rule, one after every 64 MB
 * made, took 5% of the fashion MLP's time (every 24 steps). */
void dlua_gc_after_backward(lua_State *L) {
  if (gc_bytes >= GC_MIN_BYTES) dlua_gc_collect(L);
  if (live_bytes() < gc_base + GC_OLD_BYTES && gc_since_full < GC_FULL_BYTES) return;
  dlua_gc_full_collect(L);
}

void dlua_pushtensor(lua_State *L, dl_tensor *t) {
  dl_threads_poll(); /* between ops: a changed thread count takes effect here */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &META_KEY);
  if (!lua_istable(L, -1)) { /* a host pushing into a state dlua was not opened in */
    lua_pop(L, 1);
    dl_tensor_release(t);
    luaL_error(L, "dlua_pushtensor: dlua is not open in this state (luaopen_dlua or dlua_newstate first)");
  }
  dlua_tensor_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->magic = dlua_ud_magic;
  u->t = t;
  u->prev = u->next = NULL;
  dlua_heap_track(L, u);
  lua_rotate(L, -2, 1); /* the userdata below its metatable */
  lua_setmetatable(L, -2);
  size_t fresh = dl_alloc_take_pressure();
  gc_bytes += fresh;
  gc_since_full += fresh;
  gc_tensors++;
  if ((gc_bytes >= gc_live && gc_tensors >= GC_MIN_TENSORS) || gc_bytes >= GC_CACHE_BYTES) {
    /* Due, but best run at the next op's start (dlua_gc_point): by then the
     * script has usually dropped the value this result replaces (c = a + b),
     * so its block is free for the next result. No op ran one: now. */
    if (dlua_gc_due) dlua_gc_collect(L);
    else dlua_gc_due = true;
  }
}


dl_tensor *dlua_totensor(lua_State *L, int idx) {
  dlua_tensor_ud *u = dlua_toud(L, idx);
  return u ? u->t : NULL;
}

dl_tensor *dlua_checktensor(lua_State *L, int idx) {
  dl_threads_poll(); /* an op that returns no new tensor (out=, in place) still takes a new count */
  dlua_tensor_ud *u = dlua_toud(L, idx);
  if (!u) {
    luaL_typeerror(L, idx, "tensor");
    return NULL;
  }
  if (!u->t) luaL_argerror(L, idx, "tensor was closed");
  return u->t;
}

/* Engine messages start with the op's name ("add: ..."), which becomes
 * "dl.add: ..." when the user called that op (dl.add, t:add). Called under
 * another name (dl.subtract, t:zero_, t:scatter_), or naming no op (an
 * allocation that failed), the message gets the name the user called. */
int dlua_engine_error(lua_State *L) {
  const char *msg = dl_error_get();
  size_t n = strspn(msg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.");
  bool named = n > 0 && msg[n] == ':' && msg[n + 1] == ' ';
  const char *fn = dlua_function_name(L);
  if (named && fn) {
    const char *shortname = dlua_short_name(fn);
    bool property = strncmp(fn, "Tensor.", 7) == 0; /* t.grad = ...: "Tensor.grad: ..." */
    bool same = strlen(shortname) == n && strncmp(shortname, msg, n) == 0;
    if (!property && same) return luaL_error(L, "dl.%s", msg);
  }
  if (!fn) return luaL_error(L, named ? "dl.%s" : "dl: %s", msg);
  return luaL_error(L, "%s: %s", fn, named ? msg + n + 2 : msg);
}

void dlua_push_or_error(lua_State *L, dl_tensor *t) {
  if (!t) dlua_engine_error(L);
  dlua_pushtensor(L, t);
}

/* __gc (states dlua did not make) and __close: idempotent */
static int l_release(lua_State *L) {
  dlua_tensor_ud *u = dlua_toud(L, 1);
  if (u && u->t) {
    dl_tensor_release(u->t);
    u->t = NULL;
  }
  return 0;
}

/* t:close(): frees the storage now; closing a closed tensor does nothing */
static int l_close(lua_State *L) {
  if (!dlua_toud(L, 1)) return dlua_typeerror(L, 1, "tensor");
  return l_release(L);
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
void dlua_register_setters(lua_State *L, const luaL_Reg *s) {
  set_into(L, &SETTERS_KEY, s);
  for (; s->name; s++) {
    lua_pushcfunction(L, s->func);
    dlua_name_setter(L, -1, s->name);
    lua_pop(L, 1);
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

/* ---- indexing ---- */

/* t[{...}]: a number selects, {a, b} narrows to a..b inclusive, {a} is a..a,
 * {} keeps the whole dim (Torch7). */
static dl_tensor *index_table(lua_State *L, dl_tensor *t, int key) {
  int n = (int)lua_rawlen(L, key);
  if (n > t->ndim) luaL_error(L, "dl.index: %d indices for a %d-d tensor", n, t->ndim);
  if (dlua_list_extra_key(L, key, n))
    luaL_error(L, "dl.index: the index table is not a list: it has the key %s besides its %d entries",
               lua_tostring(L, -1), n);
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
      next = dl_ag_select(cur, dim, k > 0 ? k - 1 : k + size);
    } else if (lua_istable(L, -1)) {
      int m = (int)lua_rawlen(L, -1);
      lua_Integer a = 1, b = size;
      int ok_a = 1, ok_b = 1;
      if (m >= 1) { lua_rawgeti(L, -1, 1); a = lua_tointegerx(L, -1, &ok_a); lua_pop(L, 1); b = a; }
      if (m >= 2) { lua_rawgeti(L, -1, 2); b = lua_tointegerx(L, -1, &ok_b); lua_pop(L, 1); }
      if (!ok_a || !ok_b || dlua_list_extra_key(L, -1, m)) {
        dl_tensor_release(cur);
        luaL_error(L, "dl.index: entry %d: a range is {first, last} of integers", i);
      }
      if (a < 0) a += size + 1;
      if (b < 0) b += size + 1;
      if (m > 2 || a < 1 || b > size || b < a - 1) {
        dl_tensor_release(cur);
        luaL_error(L, "dl.index: range {%d, %d} out of bounds for dim %d of size %d", (int)a, (int)b, dim + 1, (int)size);
      }
      next = dl_ag_narrow(cur, dim, a - 1, b - a + 1);
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
    dl_tensor *v = dl_ag_select(t, 0, k > 0 ? k - 1 : k + size);
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
  dl_tensor *key = dlua_totensor(L, 2);
  dlua_pushtensor(L, key ? dlua_index_by_tensor(L, t, key) : index_view(L, t, 2));
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
  dl_tensor *key = dlua_totensor(L, 2);
  if (key) {
    dlua_newindex_by_tensor(L, t, key, 3);
    return 0;
  }
  dl_tensor *v = index_view(L, t, 2);
  int rc;
  dl_tensor *src = dlua_totensor(L, 3);
  if (src) {
    rc = dl_check_same_device("copy_", v, src);
    if (!rc) rc = dl_ag_copy_(v, src);
  } else if (lua_type(L, 3) == LUA_TNUMBER || lua_type(L, 3) == LUA_TBOOLEAN) {
    rc = dl_ag_fill_(v, dlua_checkscalar(L, 3));
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
  int64_t idx[DL_MAX_DIMS];
  read_index(L, t, 2, idx);
  dl_scalar v;
  dlua_check_status(L, dl_tensor_read(t, idx, &v));
  push_scalar(L, v, t->dtype);
  return 1;
}

static int l_set(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int nargs = lua_gettop(L) - 2;
  if (nargs != t->ndim) return luaL_error(L, "dl.set: %d indices for a %d-d tensor", nargs < 0 ? 0 : nargs, t->ndim);
  int64_t idx[DL_MAX_DIMS];
  read_index(L, t, 2, idx);
  dl_scalar v = dlua_checkscalar(L, lua_gettop(L));
  dlua_check_status(L, dl_ag_check_inplace("set", t));
  dlua_check_status(L, dl_tensor_write(t, idx, v));
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

static const luaL_Reg meta[] = {
  {"__index", m_index},
  {"__newindex", m_newindex},
  {"__len", m_len},
  {"__close", l_release},
  {NULL, NULL},
};

static const luaL_Reg methods[] = {
  {"size", l_size}, {"stride", l_stride}, {"dim", l_dim}, {"ndimension", l_dim},
  {"numel", l_numel}, {"nelement", l_numel}, {"is_contiguous", l_is_contiguous},
  {"item", l_item}, {"get", l_get}, {"set", l_set}, {"totable", l_totable},
  {"close", l_close},
  {NULL, NULL},
};

static const luaL_Reg functions[] = {
  {"is_tensor", l_is_tensor}, {"numel", l_numel},
  {NULL, NULL},
};

static const luaL_Reg getters[] = {
  {"shape", g_shape}, {"dtype", g_dtype}, {"device", g_device}, {"ndim", g_ndim},
  {NULL, NULL},
};

void dlua_open_tensor(lua_State *L) {
  dlua_ud_magic_init();
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
  if (!dlua_heap_owned(L)) {
    /* another allocator: the collector must tell us through __gc */
    static const luaL_Reg gc[] = {{"__gc", l_release}, {NULL, NULL}};
    dlua_register_meta(L, gc);
  }
  dlua_register(L, methods, functions);
  dlua_register_getters(L, getters);
  /* dl.Tensor exposes the methods table, so scripts can add methods */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &METHODS_KEY);
  lua_setfield(L, -2, "Tensor");
}
