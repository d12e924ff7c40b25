/* lua_random.c — binding of the random number generator and random ops:
 * dl.manual_seed, initial_seed, seed, get_rng_state, set_rng_state, rand,
 * randn, randint, randperm, bernoulli, *_like, and the in-place methods
 * uniform_, normal_, exponential_, random_, bernoulli_. */
#include "lua_dlua.h"

#include "autograd/dl_ag_view.h"

#include "autograd/dl_autograd.h"
#include "ops/dl_random.h"

static const char *const tensor_opts[] = {"dtype", "device", "requires_grad", NULL};

/* ---- generator state ---- */

static int l_manual_seed(lua_State *L) {
  /* negative seeds wrap to uint64, as PyTorch's do */
  dl_rng_manual_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

static int l_initial_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)dl_rng_initial_seed());
  return 1;
}

static int l_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)dl_rng_seed_random());
  return 1;
}

static int l_get_rng_state(lua_State *L) {
  dl_rng_state st = dl_rng_get_state();
  int64_t n = 2;
  dl_tensor *t = dl_tensor_empty(&n, 1, DL_INT64, dl_device_cpu());
  if (!t) return dlua_engine_error(L);
  dl_tensor_init_linear(t, 0, dl_scalar_i((int64_t)st.seed));
  dl_tensor_init_linear(t, 1, dl_scalar_i((int64_t)st.offset));
  dlua_pushtensor(L, t);
  return 1;
}

static int l_set_rng_state(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  char b[64];
  if (t->dtype != DL_INT64 || t->ndim != 1 || t->numel != 2 || dl_tensor_device(t).type != DL_CPU)
    return luaL_argerror(L, 1, lua_pushfstring(L, "expected a cpu int64 tensor {seed, offset} of shape [2], got %s %s",
                                               dl_dtype_name(t->dtype), dl_tensor_shape_str(t, b, sizeof b)));
  dl_scalar seed = dl_tensor_get_linear(t, 0), offset = dl_tensor_get_linear(t, 1);
  if (offset.i < 0) return luaL_argerror(L, 1, "offset must be non-negative");
  dl_rng_set_state((dl_rng_state){(uint64_t)seed.i, (uint64_t)offset.i});
  return 0;
}

/* ---- argument helpers ---- */

/* sizes (varargs or a table) from arg, then an optional options table */
static int check_sizes_opts(lua_State *L, int arg, const char *fn, int64_t *shape, dlua_tensor_options *o,
                            dl_dtype def) {
  int next;
  int n = dlua_checksizes(L, arg, shape, &next);
  if (!lua_isnoneornil(L, next) && !dlua_isoptions(L, next)) luaL_typeerror(L, next, "size or options table");
  dlua_checkoptions(L, next, fn, tensor_opts);
  *o = dlua_opttensoroptions(L, next, def);
  return n;
}

/* options of a *_like function: dtype and device default to like's */
static dlua_tensor_options like_opts(lua_State *L, int arg, const char *fn, const dl_tensor *like) {
  if (!lua_isnoneornil(L, arg) && !dlua_isoptions(L, arg)) luaL_typeerror(L, arg, "options table");
  dlua_checkoptions(L, arg, fn, tensor_opts);
  dlua_tensor_options o = dlua_opttensoroptions(L, arg, like->dtype);
  if (!dlua_optstring(L, arg, "device", NULL)) o.device = dl_tensor_device(like);
  return o;
}

/* pushes t (or raises), honouring requires_grad */
static int push_new(lua_State *L, dl_tensor *t, bool requires_grad, const char *fn) {
  if (!t) return dlua_engine_error(L);
  if (requires_grad) {
    if (!dl_dtype_is_float(t->dtype)) {
      dl_tensor_release(t);
      return luaL_error(L, "%s: only floating-point tensors can require gradients", fn);
    }
    t->requires_grad = true;
  }
  dlua_pushtensor(L, t);
  return 1;
}

/* ---- new tensors ---- */

static int l_rand(lua_State *L) {
  int64_t shape[DL_MAX_DIMS];
  dlua_tensor_options o;
  int n = check_sizes_opts(L, 1, "dl.rand", shape, &o, DL_FLOAT32);
  return push_new(L, dl_op_rand(shape, n, o.dtype, o.device), o.requires_grad, "dl.rand");
}

static int l_randn(lua_State *L) {
  int64_t shape[DL_MAX_DIMS];
  dlua_tensor_options o;
  int n = check_sizes_opts(L, 1, "dl.randn", shape, &o, DL_FLOAT32);
  return push_new(L, dl_op_randn(shape, n, o.dtype, o.device), o.requires_grad, "dl.randn");
}

static void check_float_dtype(lua_State *L, const char *fn, dl_dtype dt) {
  if (!dl_dtype_is_float(dt)) luaL_error(L, "%s: expected a floating-point dtype, got %s", fn, dl_dtype_name(dt));
}

static int l_rand_like(lua_State *L) {
  dl_tensor *like = dlua_checktensor(L, 1);
  dlua_tensor_options o = like_opts(L, 2, "dl.rand_like", like);
  check_float_dtype(L, "dl.rand_like", o.dtype);
  return push_new(L, dl_op_rand(like->shape, like->ndim, o.dtype, o.device), o.requires_grad, "dl.rand_like");
}

static int l_randn_like(lua_State *L) {
  dl_tensor *like = dlua_checktensor(L, 1);
  dlua_tensor_options o = like_opts(L, 2, "dl.randn_like", like);
  check_float_dtype(L, "dl.randn_like", o.dtype);
  return push_new(L, dl_op_randn(like->shape, like->ndim, o.dtype, o.device), o.requires_grad, "dl.randn_like");
}

/* Reads [lo,] hi from arg: two integers, or one (lo = 0). Returns the
 * next argument. */
static int check_bounds(lua_State *L, int arg, bool two, int64_t *lo, int64_t *hi) {
  if (two) {
    *lo = luaL_checkinteger(L, arg);
    *hi = luaL_checkinteger(L, arg + 1);
    return arg + 2;
  }
  *lo = 0;
  *hi = luaL_checkinteger(L, arg);
  return arg + 1;
}

/* randint(lo, hi, sizes..., opts) | randint(lo, hi, {sizes}, opts) |
 * randint(hi, {sizes}, opts) */
static int l_randint(lua_State *L) {
  int64_t lo, hi, shape[DL_MAX_DIMS];
  bool two = !lua_istable(L, 2);
  int arg = check_bounds(L, 1, two, &lo, &hi);
  if (!lua_istable(L, arg) && lua_type(L, arg) != LUA_TNUMBER)
    return luaL_argerror(L, arg, "sizes expected: randint(lo, hi, sizes) or randint(hi, {sizes})");
  dlua_tensor_options o;
  int n = check_sizes_opts(L, arg, "dl.randint", shape, &o, DL_INT64);
  return push_new(L, dl_op_randint(lo, hi, shape, n, o.dtype, o.device), o.requires_grad, "dl.randint");
}

/* randint_like(t, [lo,] hi, opts) */
static int l_randint_like(lua_State *L) {
  dl_tensor *like = dlua_checktensor(L, 1);
  int64_t lo, hi;
  int arg = check_bounds(L, 2, lua_type(L, 3) == LUA_TNUMBER, &lo, &hi);
  dlua_tensor_options o = like_opts(L, arg, "dl.randint_like", like);
  return push_new(L, dl_op_randint(lo, hi, like->shape, like->ndim, o.dtype, o.device), o.requires_grad,
                  "dl.randint_like");
}

static int l_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 0) return luaL_argerror(L, 1, "n must be non-negative");
  if (!lua_isnoneornil(L, 2) && !dlua_isoptions(L, 2)) return luaL_typeerror(L, 2, "options table");
  dlua_checkoptions(L, 2, "dl.randperm", tensor_opts);
  dlua_tensor_options o = dlua_opttensoroptions(L, 2, DL_INT64);
  return push_new(L, dl_op_randperm(n, o.dtype, o.device), o.requires_grad, "dl.randperm");
}

/* bernoulli(probs) | bernoulli(t, p): a new tensor of 0/1 draws */
static int l_bernoulli(lua_State *L) {
  dl_tensor *t = dlua_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    dlua_push_or_error(L, dl_op_bernoulli(t));
    return 1;
  }
  dlua_push_or_error(L, dl_op_bernoulli_like(t, luaL_checknumber(L, 2)));
  return 1;
}

/* ---- in place (return self) ---- */

/* the tensor an in-place fill writes: refused when it is a leaf that
 * requires grad outside no_grad, as every in-place op */
/* the tensor an in-place random fill overwrites: one in a graph (or a
 * view of one) is first overwritten as fill_ does, so its history is cut
 * and no gradient flows to what the draws replaced (as PyTorch's
 * normal_() of a non-leaf gives zeros) */
static dl_tensor *fill_target(lua_State *L, const char *name) {
  dl_tensor *t = dlua_checktensor(L, 1);
  dlua_check_status(L, dl_ag_check_inplace(name, t));
  if (t->requires_grad || (t->base && t->base->requires_grad)) dlua_check_status(L, dl_ag_fill_(t, dl_scalar_i(0)));
  return t;
}

static int l_uniform_(lua_State *L) {
  dl_tensor *t = fill_target(L, "uniform_");
  double a = luaL_optnumber(L, 2, 0), b = luaL_optnumber(L, 3, 1);
  dlua_check_status(L, dl_tensor_uniform_(t, a, b));
  lua_settop(L, 1);
  return 1;
}

static int l_normal_(lua_State *L) {
  dl_tensor *t = fill_target(L, "normal_");
  double mean = luaL_optnumber(L, 2, 0), std = luaL_optnumber(L, 3, 1);
  dlua_check_status(L, dl_tensor_normal_(t, mean, std));
  lua_settop(L, 1);
  return 1;
}

static int l_exponential_(lua_State *L) {
  dl_tensor *t = fill_target(L, "exponential_");
  dlua_check_status(L, dl_tensor_exponential_(t, luaL_optnumber(L, 2, 1)));
  lua_settop(L, 1);
  return 1;
}

/* random_(lo, hi) | random_(hi): integers in [lo, hi) */
static int l_random_(lua_State *L) {
  dl_tensor *t = fill_target(L, "random_");
  int64_t lo, hi;
  check_bounds(L, 2, !lua_isnoneornil(L, 3), &lo, &hi);
  dlua_check_status(L, dl_tensor_random_(t, lo, hi));
  lua_settop(L, 1);
  return 1;
}

/* bernoulli_(p = 0.5) with p a number or a tensor of probabilities */
static int l_bernoulli_(lua_State *L) {
  dl_tensor *t = fill_target(L, "bernoulli_");
  dl_tensor *p = dlua_totensor(L, 2);
  if (p) {
    dlua_check_status(L, dl_tensor_bernoulli_tensor_(t, dlua_checktensor(L, 2)));
  } else {
    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TNUMBER) return luaL_typeerror(L, 2, "number or tensor");
    dlua_check_status(L, dl_tensor_bernoulli_(t, luaL_optnumber(L, 2, 0.5)));
  }
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg methods[] = {
  {"uniform_", l_uniform_}, {"normal_", l_normal_}, {"exponential_", l_exponential_},
  {"random_", l_random_}, {"bernoulli_", l_bernoulli_}, {"bernoulli", l_bernoulli},
  {NULL, NULL},
};

static const luaL_Reg functions[] = {
  {"manual_seed", l_manual_seed}, {"initial_seed", l_initial_seed}, {"seed", l_seed},
  {"get_rng_state", l_get_rng_state}, {"set_rng_state", l_set_rng_state},
  {"rand", l_rand}, {"randn", l_randn}, {"rand_like", l_rand_like}, {"randn_like", l_randn_like},
  {"randint", l_randint}, {"randint_like", l_randint_like}, {"randperm", l_randperm},
  {"bernoulli", l_bernoulli}, {NULL, NULL},
};

void dlua_open_random(lua_State *L) { dlua_register(L, methods, functions); }
