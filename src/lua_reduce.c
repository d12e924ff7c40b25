/* lua_reduce.c — binding of the reductions and scans:
 *   t:sum()  t:sum(2)  t:sum({1, 2})  t:sum(2, true)  t:sum(2, {keepdim = true})
 *   t:max() -> value;  t:max(dim[, keepdim]) -> values, indices;  t:max(u) -> maximum
 * Dims are 1-based (negative from the end); indices come back 1-based. */
#include "lua_dlua.h"

#include "autograd/dl_ag_reduce.h"

#include <math.h>
#include <string.h>

typedef struct {
  int dims[DL_MAX_DIMS];
  int ndims; /* 0: every dim */
  bool keepdim;
  int opts; /* stack index of the options table, 0 when none */
} rargs;

/* a 1-based Lua dim held in v -> 0-based; errors name arg */
static int to_dim(lua_State *L, int arg, lua_Integer d, int ndim) {
  lua_Integer n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    return luaL_argerror(L, arg, lua_pushfstring(L, "dim %d out of range for a %d-d tensor", (int)d, ndim));
  return (int)(d > 0 ? d - 1 : d + n);
}

/* the value at idx: a dim or a list of dims */
static void read_dims(lua_State *L, int arg, int idx, const dl_tensor *t, rargs *a) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (!lua_isinteger(L, idx)) luaL_argerror(L, arg, "dim must be an integer");
    a->dims[0] = to_dim(L, arg, lua_tointeger(L, idx), t->ndim);
    a->ndims = 1;
    return;
  }
  int64_t ds[DL_MAX_DIMS];
  int n = dlua_checkintlist(L, arg, idx, ds, "dims");
  for (int i = 0; i < n; i++) a->dims[i] = to_dim(L, arg, ds[i], t->ndim);
  a->ndims = n;
  /* {} is no dim at all; the engine reads ndims == 0 as every dim */
  if (n == 0) luaL_argerror(L, arg, "empty list of dims");
}

/* [dims] [keepdim | options] from arg on; `allowed` lists the option keys */
static void read_reduce_args(lua_State *L, int arg, const dl_tensor *t, const char *fn, const char *const *allowed,
                             rargs *a) {
  a->ndims = 0;
  a->keepdim = false;
  a->opts = 0;
  int top = lua_gettop(L);
  if (dlua_isoptions(L, arg)) {
    a->opts = arg;
  } else if (lua_type(L, arg) == LUA_TNUMBER || lua_istable(L, arg)) {
    read_dims(L, arg, arg, t, a);
    if (lua_isboolean(L, arg + 1)) a->keepdim = lua_toboolean(L, arg + 1);
    else if (dlua_isoptions(L, arg + 1)) a->opts = arg + 1;
    else if (!lua_isnoneornil(L, arg + 1)) luaL_typeerror(L, arg + 1, "boolean keepdim or options table");
    if (top > arg + 1) luaL_argerror(L, arg + 2, "too many arguments");
  } else if (!lua_isnoneornil(L, arg)) {
    luaL_typeerror(L, arg, "dim, table of dims or options table");
  }
  if (a->opts) {
    dlua_checkoptions(L, a->opts, fn, allowed);
    a->keepdim = dlua_optbool(L, a->opts, "keepdim", a->keepdim);
    lua_getfield(L, a->opts, "dim");
    if (!lua_isnil(L, -1)) {
      if (a->ndims > 0) luaL_argerror(L, a->opts, "dim given twice");
      if (lua_type(L, -1) != LUA_TNUMBER && !lua_istable(L, -1)) luaL_argerror(L, a->opts, "option 'dim' must be a dim or a table of dims");
      read_dims(L, a->opts, lua_gettop(L), t, a);
    }
    lua_pop(L, 1);
  }
}

static const char *const OPTS_KEEP[] = {"keepdim", "dim", NULL};

typedef dl_tensor *(*reduce_fn)(dl_tensor *, const int *, int, bool);

/* the non-differentiable reductions, in reduce_fn's shape */
static dl_tensor *op_all(dl_tensor *t, const int *d, int n, bool k) { return dl_op_all(t, d, n, k); }
static dl_tensor *op_any(dl_tensor *t, const int *d, int n, bool k) { return dl_op_any(t, d, n, k); }
static dl_tensor *op_count_nonzero(dl_tensor *t, const int *d, int n, bool k) {
  return dl_op_count_nonzero(t, d, n, k);
}

static int reduce_common(lua_State *L, const char *fn, reduce_fn f) {
  dl_tensor *t = dlua_checktensor(L, 1);
  rargs a;
  read_reduce_args(L, 2, t, fn, OPTS_KEEP, &a);
  dlua_push_or_error(L, f(t, a.dims, a.ndims, a.keepdim));
  return 1;
}

static int l_sum(lua_State *L) { return reduce_common(L, "sum", dl_ag_sum); }
static int l_mean(lua_State *L) { return reduce_common(L, "mean", dl_ag_mean); }
static int l_prod(lua_State *L) { return reduce_common(L, "prod", dl_ag_prod); }
static int l_all(lua_State *L) { return reduce_common(L, "all", op_all); }
static int l_any(lua_State *L) { return reduce_common(L, "any", op_any); }
static int l_amax(lua_State *L) { return reduce_common(L, "amax", dl_ag_amax); }
static int l_amin(lua_State *L) { return reduce_common(L, "amin", dl_ag_amin); }
static int l_logsumexp(lua_State *L) { return reduce_common(L, "logsumexp", dl_ag_logsumexp); }
static int l_count_nonzero(lua_State *L) { return reduce_common(L, "count_nonzero", op_count_nonzero); }

/* ---- var, std: unbiased (default true) or correction ---- */

static const char *const OPTS_VAR[] = {"keepdim", "dim", "unbiased", "correction", NULL};

static int var_std(lua_State *L, const char *fn, bool take_sqrt) {
  dl_tensor *t = dlua_checktensor(L, 1);
  rargs a;
  read_reduce_args(L, 2, t, fn, OPTS_VAR, &a);
  double correction = 1;
  if (a.opts) {
    lua_getfield(L, a.opts, "unbiased");
    bool has_unbiased = !lua_isnil(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, a.opts, "correction");
    bool has_correction = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (has_unbiased && has_correction)
      return luaL_argerror(L, a.opts, "give either 'unbiased' or 'correction', not both");
    correction = dlua_optbool(L, a.opts, "unbiased", true) ? 1 : 0;
    correction = dlua_optnumber(L, a.opts, "correction", correction);
  }
  dl_tensor *r = take_sqrt ? dl_ag_std(t, a.dims, a.ndims, correction, a.keepdim)
                           : dl_ag_var(t, a.dims, a.ndims, correction, a.keepdim);
  dlua_push_or_error(L, r);
  return 1;
}

static int l_var(lua_State *L) { return var_std(L, "var", false); }
static int l_std(lua_State *L) { return var_std(L, "std", true); }

/* ---- norm(p, dims, keepdim) ---- */

static const char *const OPTS_NORM[] = {"keepdim", "dim", "p", NULL};

static double read_p(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char *s = lua_tostring(L, arg);
    if (strcmp(s, "fro") == 0) return 2;
    if (strcmp(s, "inf") == 0) return INFINITY;
    if (strcmp(s, "-inf") == 0) return -INFINITY;
    return luaL_argerror(L, arg, lua_pushfstring(L, "unknown norm '%s' (a number, 'fro', 'inf' or '-inf')", s));
  }
  return luaL_checknumber(L, arg);
}

static int l_norm(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  double p = 2;
  rargs a;
  if (lua_isnoneornil(L, 2) || dlua_isoptions(L, 2)) {
    if (lua_isnil(L, 2) && !lua_isnone(L, 3)) read_reduce_args(L, 3, t, "norm", OPTS_NORM, &a);
    else read_reduce_args(L, 2, t, "norm", OPTS_NORM, &a);
  } else {
    if (lua_type(L, 2) != LUA_TNUMBER && lua_type(L, 2) != LUA_TSTRING) luaL_typeerror(L, 2, "number p");
    p = read_p(L, 2);
    read_reduce_args(L, 3, t, "norm", OPTS_NORM, &a);
  }
  if (a.opts) {
    lua_getfield(L, a.opts, "p");
    if (!lua_isnil(L, -1)) p = read_p(L, lua_gettop(L));
    lua_pop(L, 1);
  }
  dlua_push_or_error(L, dl_ag_norm(t, p, a.dims, a.ndims, a.keepdim));
  return 1;
}

/* ---- max, min ---- */

/* dl.maximum / dl.minimum, looked up when called (the element-wise family) */
static int call_elementwise(lua_State *L, const char *name) {
  lua_getfield(L, LUA_REGISTRYINDEX, "dlua.module");
  lua_getfield(L, -1, name);
  if (!lua_isfunction(L, -1)) return luaL_error(L, "dl.%s is not available", name);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

/* dim from arg (a number or an options table's dim); -1 when absent */
static int read_one_dim(lua_State *L, int arg, const dl_tensor *t, const char *fn, bool *keepdim) {
  static const char *const allowed[] = {"keepdim", "dim", NULL};
  *keepdim = false;
  int dim = -1;
  int opts = 0;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    if (!lua_isinteger(L, arg)) luaL_argerror(L, arg, "dim must be an integer");
    dim = to_dim(L, arg, lua_tointeger(L, arg), t->ndim);
    if (lua_isboolean(L, arg + 1)) *keepdim = lua_toboolean(L, arg + 1);
    else if (dlua_isoptions(L, arg + 1)) opts = arg + 1;
    else if (!lua_isnoneornil(L, arg + 1)) luaL_typeerror(L, arg + 1, "boolean keepdim or options table");
  } else if (dlua_isoptions(L, arg)) {
    opts = arg;
  } else if (!lua_isnoneornil(L, arg)) {
    luaL_typeerror(L, arg, "dim or options table");
  }
  if (opts) {
    dlua_checkoptions(L, opts, fn, allowed);
    *keepdim = dlua_optbool(L, opts, "keepdim", *keepdim);
    lua_getfield(L, opts, "dim");
    if (!lua_isnil(L, -1)) {
      if (dim >= 0) luaL_argerror(L, opts, "dim given twice");
      int isint;
      lua_Integer d = lua_tointegerx(L, -1, &isint);
      if (!isint) luaL_argerror(L, opts, "option 'dim' must be an integer");
      dim = to_dim(L, opts, d, t->ndim);
    }
    lua_pop(L, 1);
  }
  return dim;
}

static int max_min(lua_State *L, const char *fn, const char *elementwise, bool is_max) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isuserdata(L, 2)) {
    dlua_checktensor(L, 2);
    return call_elementwise(L, elementwise);
  }
  bool keepdim;
  int dim = read_one_dim(L, 2, t, fn, &keepdim);
  if (dim < 0) {
    dlua_push_or_error(L, is_max ? dl_ag_max(t) : dl_ag_min(t));
    return 1;
  }
  dl_tensor *v, *i;
  int rc = is_max ? dl_ag_max_dim(t, dim, keepdim, &v, &i) : dl_ag_min_dim(t, dim, keepdim, &v, &i);
  dlua_check_status(L, rc);
  dlua_pushtensor(L, v);
  dlua_pushtensor(L, i);
  return 2;
}

static int l_max(lua_State *L) { return max_min(L, "max", "maximum", true); }
static int l_min(lua_State *L) { return max_min(L, "min", "minimum", false); }

static int arg_common(lua_State *L, const char *fn, bool is_max) {
  dl_tensor *t = dlua_checktensor(L, 1);
  bool keepdim;
  int dim = read_one_dim(L, 2, t, fn, &keepdim);
  if (dim < 0) dim = DL_ALL_DIMS;
  dlua_push_or_error(L, is_max ? dl_op_argmax(t, dim, keepdim) : dl_op_argmin(t, dim, keepdim));
  return 1;
}

static int l_argmax(lua_State *L) { return arg_common(L, "argmax", true); }
static int l_argmin(lua_State *L) { return arg_common(L, "argmin", false); }

/* ---- cumsum, cumprod ---- */

static int scan_common(lua_State *L, bool prod) {
  dl_tensor *t = dlua_checktensor(L, 1);
  int dim = dlua_checkdim(L, 2, t->ndim);
  dlua_push_or_error(L, prod ? dl_ag_cumprod(t, dim) : dl_ag_cumsum(t, dim));
  return 1;
}

static int l_cumsum(lua_State *L) { return scan_common(L, false); }
static int l_cumprod(lua_State *L) { return scan_common(L, true); }

static const luaL_Reg methods[] = {
  {"sum", l_sum}, {"mean", l_mean}, {"prod", l_prod}, {"var", l_var}, {"std", l_std},
  {"norm", l_norm}, {"logsumexp", l_logsumexp}, {"max", l_max}, {"min", l_min},
  {"amax", l_amax}, {"amin", l_amin}, {"argmax", l_argmax}, {"argmin", l_argmin},
  {"all", l_all}, {"any", l_any}, {"count_nonzero", l_count_nonzero},
  {"cumsum", l_cumsum}, {"cumprod", l_cumprod},
  {NULL, NULL},
};

void dlua_open_reduce(lua_State *L) { dlua_register(L, methods, methods); }
