/* lua_dist.c — dl.dist: processes that train together (dl_dist.h). The
 * collectives are PyTorch's torch.distributed names and semantics: in place
 * where the operation allows (all_reduce, broadcast), ranks 0-based as
 * mpirun numbers them. PyTorch's aliases (get_rank, get_world_size,
 * destroy_process_group) are there for line-by-line translation. The
 * gradient reducer behind nn.DistributedDataParallel is dl.dist._reducer. */
#include <string.h>

#include "dl_dist.h"
#include "lua_dlua.h"

#define REDUCER_MT "dlua.dist.reducer"

static const char *const op_names[] = {"sum", "avg", "max", "min", NULL};

/* the op: a string at arg, or {op = "..."} there; sum when absent */
static dl_dist_op check_op(lua_State *L, int arg, const char *fn) {
  if (lua_type(L, arg) == LUA_TSTRING) return (dl_dist_op)dlua_checkoption(L, arg, NULL, op_names);
  if (lua_isnoneornil(L, arg)) return DL_DIST_SUM;
  if (!dlua_isoptions(L, arg)) dlua_typeerror(L, arg, "op name or options table");
  static const char *const allowed[] = {"op", NULL};
  dlua_checkoptions(L, arg, fn, allowed);
  const char *name = dlua_optstring(L, arg, "op", "sum");
  for (int i = 0; op_names[i]; i++)
    if (strcmp(op_names[i], name) == 0) return (dl_dist_op)i;
  return (dl_dist_op)luaL_error(L, "%s: unknown op '%s' (sum, avg, max, min)", fn, name);
}

static int l_init(lua_State *L) {
  static const char *const allowed[] = {"backend", "timeout", "check", NULL};
  if (!lua_isnoneornil(L, 1) && !dlua_isoptions(L, 1)) dlua_typeerror(L, 1, "options table");
  dlua_checkoptions(L, 1, "dl.dist.init", allowed);
  const char *backend = dlua_optstring(L, 1, "backend", "mpi");
  if (strcmp(backend, "mpi") != 0 && strcmp(backend, "nccl") != 0)
    return luaL_error(L, "dl.dist.init: unknown backend '%s' (mpi, nccl)", backend);
  double timeout = dlua_optnumber(L, 1, "timeout", 600);
  bool check = dlua_optbool(L, 1, "check", true);
  dlua_check_status(L, dl_dist_init(timeout));
  dl_dist_set_checks(check);
  return 0;
}

static int l_is_initialized(lua_State *L) {
  lua_pushboolean(L, dl_dist_is_initialized());
  return 1;
}

static int l_rank(lua_State *L) {
  lua_pushinteger(L, dl_dist_rank());
  return 1;
}

static int l_size(lua_State *L) {
  lua_pushinteger(L, dl_dist_size());
  return 1;
}

static int l_is_main(lua_State *L) {
  lua_pushboolean(L, dl_dist_rank() == 0);
  return 1;
}

static int l_library_version(lua_State *L) {
  lua_pushstring(L, dl_dist_library_version());
  return 1;
}

static int l_barrier(lua_State *L) {
  dlua_check_status(L, dl_dist_barrier());
  return 0;
}

static int l_all_reduce(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dl_dist_op op = check_op(L, 2, "dl.dist.all_reduce");
  dlua_check_status(L, dl_dist_all_reduce("dl.dist.all_reduce", t, op));
  lua_settop(L, 1);
  return 1;
}

static int l_broadcast(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  lua_Integer root = dlua_optinteger_arg(L, 2, 0);
  luaL_argcheck(L, root >= 0 && root < dl_dist_size(), 2, "root is not a rank");
  dlua_check_status(L, dl_dist_broadcast("dl.dist.broadcast", t, (int)root));
  lua_settop(L, 1);
  return 1;
}

/* all_gather(t) -> {size, ...}; all_gather(list, t) fills list[1..size]
 * with rank 0..size-1's tensors, as torch.distributed.all_gather does */
static int l_all_gather(lua_State *L) {
  int list = lua_istable(L, 1) && !dlua_toud(L, 1) ? 1 : 0;
  dl_tensor *t = dlua_checktensor(L, list ? 2 : 1);
  dl_tensor *all = dl_dist_all_gather("dl.dist.all_gather", t);
  if (!all) return dlua_engine_error(L);
  if (!list) {
    dlua_push_or_error(L, all);
    return 1;
  }
  dlua_pushtensor(L, all); /* owns all while the slices are made */
  for (int r = 0; r < dl_dist_size(); r++) {
    dl_tensor *s = dl_tensor_select(all, 0, r);
    dl_tensor *c = s ? dl_tensor_clone(s) : NULL;
    dl_tensor_release(s);
    dlua_push_or_error(L, c);
    lua_rawseti(L, 1, r + 1);
  }
  lua_settop(L, 1);
  return 1;
}

/* reduce_scatter(t, op) -> this rank's chunk; reduce_scatter(out, t, op)
 * writes it into out */
static int l_reduce_scatter(lua_State *L) {
  dl_tensor *out = NULL;
  int at = 1;
  if (dlua_toud(L, 2)) {
    out = dlua_checktensor(L, 1);
    at = 2;
  }
  dl_tensor *t = dlua_checktensor(L, at);
  dl_dist_op op = check_op(L, at + 1, "dl.dist.reduce_scatter");
  dl_tensor *r = dl_dist_reduce_scatter("dl.dist.reduce_scatter", t, op);
  if (!r) return dlua_engine_error(L);
  if (!out) {
    dlua_push_or_error(L, r);
    return 1;
  }
  if (out->ndim != r->ndim || memcmp(out->shape, r->shape, (size_t)r->ndim * sizeof(int64_t)) != 0) {
    char a[128], b[128];
    dl_tensor_shape_str(out, a, sizeof a);
    dl_tensor_shape_str(r, b, sizeof b);
    dl_tensor_release(r);
    return luaL_error(L, "dl.dist.reduce_scatter: out has shape %s, the chunk a rank gets is %s", a, b);
  }
  int rc = dl_tensor_copy_(out, r);
  dl_tensor_release(r);
  dlua_check_status(L, rc);
  lua_settop(L, 1);
  return 1;
}

static int l_finalize(lua_State *L) {
  dlua_check_status(L, dl_dist_finalize());
  return 0;
}

/* ---- the gradient reducer ---- */
typedef struct {
  dl_dist_reducer *r;
} reducer_ud;

static reducer_ud *check_reducer(lua_State *L) {
  reducer_ud *u = dlua_checkudata(L, 1, REDUCER_MT);
  if (!u->r) luaL_error(L, "dl.dist reducer: already closed");
  return u;
}

/* _reducer(params, bucket_bytes, find_unused) */
static int l_reducer(lua_State *L) {
  dlua_checktype(L, 1, LUA_TTABLE);
  lua_Integer bytes = dlua_checkinteger(L, 2);
  luaL_argcheck(L, bytes > 0, 2, "bucket size must be positive");
  bool find_unused = lua_toboolean(L, 3);
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n < (1 << 24), 1, "too many parameters");
  dl_tensor **ps = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ps, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    ps[i - 1] = dlua_checktensor(L, -1);
    lua_pop(L, 1);
  }
  reducer_ud *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->r = NULL;
  luaL_setmetatable(L, REDUCER_MT);
  u->r = dl_dist_reducer_new(ps, (int)n, (size_t)bytes, find_unused);
  if (!u->r) return dlua_engine_error(L);
  return 1;
}

static int l_reducer_set_sync(lua_State *L) {
  reducer_ud *u = check_reducer(L);
  dl_dist_reducer_set_sync(u->r, lua_toboolean(L, 2));
  return 0;
}

static int l_reducer_sync(lua_State *L) {
  lua_pushboolean(L, dl_dist_reducer_sync(check_reducer(L)->r));
  return 1;
}

static int l_reducer_nbuckets(lua_State *L) {
  lua_pushinteger(L, dl_dist_reducer_nbuckets(check_reducer(L)->r));
  return 1;
}

static int l_reducer_close(lua_State *L) {
  reducer_ud *u = dlua_checkudata(L, 1, REDUCER_MT);
  dl_dist_reducer_free(u->r);
  u->r = NULL;
  return 0;
}

static const luaL_Reg reducer_methods[] = {
  {"set_sync", l_reducer_set_sync},
  {"sync", l_reducer_sync},
  {"nbuckets", l_reducer_nbuckets},
  {"close", l_reducer_close},
  {NULL, NULL},
};

static const luaL_Reg functions[] = {
  {"init", l_init},
  {"init_process_group", l_init},
  {"is_initialized", l_is_initialized},
  {"rank", l_rank},
  {"get_rank", l_rank},
  {"size", l_size},
  {"get_world_size", l_size},
  {"is_main", l_is_main},
  {"library_version", l_library_version},
  {"barrier", l_barrier},
  {"all_reduce", l_all_reduce},
  {"broadcast", l_broadcast},
  {"all_gather", l_all_gather},
  {"reduce_scatter", l_reduce_scatter},
  {"finalize", l_finalize},
  {"destroy_process_group", l_finalize},
  {"_reducer", l_reducer},
  {NULL, NULL},
};

/* dl.dist, a table of its own on the dl table at the top of the stack */
void dlua_open_dist(lua_State *L) {
  if (luaL_newmetatable(L, REDUCER_MT)) {
    luaL_newlib(L, reducer_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_reducer_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_reducer_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, functions);
  lua_setfield(L, -2, "dist");
}
