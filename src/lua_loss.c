/* lua_loss.c — binding of the losses. The functions live in dl._loss and
 * lua/dlua/nn/loss.lua exposes them as dl.F.<name> (and the nn modules):
 *   dl.F.mse_loss(input, target, {reduction = "mean"})
 *   dl.F.cross_entropy(input, target, {weight, ignore_index = -100,
 *                                       label_smoothing = 0, reduction})
 * Class-index targets are 1-based int64. */
#include "lua_dlua.h"

#include "autograd/dl_ag_loss.h"

static dl_reduction opt_reduction(lua_State *L, int arg, const char *fn) {
  const char *s = dlua_optstring(L, arg, "reduction", "mean");
  dl_reduction r;
  if (dl_reduction_parse(s, &r))
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "%s: unknown reduction '%s' (expected 'mean', 'sum' or 'none')", fn, s));
  return r;
}

/* an optional tensor option (weight, pos_weight); NULL when absent */
static dl_tensor *opt_tensor(lua_State *L, int arg, const char *key) {
  if (!dlua_isoptions(L, arg)) return NULL;
  lua_getfield(L, arg, key);
  dl_tensor *t = NULL;
  if (!lua_isnil(L, -1)) {
    t = dlua_totensor(L, -1);
    if (!t) luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a tensor, got %s", key, luaL_typename(L, -1)));
  }
  lua_pop(L, 1); /* still referenced by the options table */
  return t;
}

/* input, target and the options table (checked against allowed keys) */
static void check_args(lua_State *L, const char *fn, const char *const *allowed, dl_tensor **x, dl_tensor **t) {
  *x = dlua_checktensor(L, 1);
  *t = dlua_checktensor(L, 2);
  if (!lua_isnoneornil(L, 3) && !dlua_isoptions(L, 3)) luaL_typeerror(L, 3, "options table");
  if (lua_gettop(L) > 3) luaL_argerror(L, 4, "too many arguments");
  dlua_checkoptions(L, 3, fn, allowed);
}

static int l_mse_loss(lua_State *L) {
  static const char *const allowed[] = {"reduction", NULL};
  dl_tensor *x, *t;
  check_args(L, "mse_loss", allowed, &x, &t);
  dlua_push_or_error(L, dl_ag_mse_loss(x, t, opt_reduction(L, 3, "mse_loss")));
  return 1;
}

static int l_l1_loss(lua_State *L) {
  static const char *const allowed[] = {"reduction", NULL};
  dl_tensor *x, *t;
  check_args(L, "l1_loss", allowed, &x, &t);
  dlua_push_or_error(L, dl_ag_l1_loss(x, t, opt_reduction(L, 3, "l1_loss")));
  return 1;
}

static int l_smooth_l1_loss(lua_State *L) {
  static const char *const allowed[] = {"reduction", "beta", NULL};
  dl_tensor *x, *t;
  check_args(L, "smooth_l1_loss", allowed, &x, &t);
  dl_reduction r = opt_reduction(L, 3, "smooth_l1_loss");
  double beta = dlua_optnumber(L, 3, "beta", 1.0);
  if (!(beta >= 0)) luaL_argerror(L, 3, "smooth_l1_loss: beta must be non-negative");
  dlua_push_or_error(L, dl_ag_smooth_l1_loss(x, t, beta, r));
  return 1;
}

static int l_binary_cross_entropy(lua_State *L) {
  static const char *const allowed[] = {"reduction", "weight", NULL};
  dl_tensor *x, *t;
  check_args(L, "binary_cross_entropy", allowed, &x, &t);
  dl_reduction r = opt_reduction(L, 3, "binary_cross_entropy");
  dlua_push_or_error(L, dl_ag_binary_cross_entropy(x, t, opt_tensor(L, 3, "weight"), r));
  return 1;
}

static int l_binary_cross_entropy_with_logits(lua_State *L) {
  static const char *const allowed[] = {"reduction", "weight", "pos_weight", NULL};
  dl_tensor *x, *t;
  check_args(L, "binary_cross_entropy_with_logits", allowed, &x, &t);
  dl_reduction r = opt_reduction(L, 3, "binary_cross_entropy_with_logits");
  dl_tensor *w = opt_tensor(L, 3, "weight"), *pw = opt_tensor(L, 3, "pos_weight");
  dlua_push_or_error(L, dl_ag_binary_cross_entropy_with_logits(x, t, w, pw, r));
  return 1;
}

static int64_t opt_ignore_index(lua_State *L, const char *fn) {
  if (!dlua_isoptions(L, 3)) return -100;
  lua_getfield(L, 3, "ignore_index");
  int isint = 1;
  lua_Integer v = lua_isnil(L, -1) ? -100 : lua_tointegerx(L, -1, &isint);
  lua_pop(L, 1);
  if (!isint) luaL_argerror(L, 3, lua_pushfstring(L, "%s: option 'ignore_index' must be an integer", fn));
  return v;
}

static int l_cross_entropy(lua_State *L) {
  static const char *const allowed[] = {"reduction", "weight", "ignore_index", "label_smoothing", NULL};
  dl_tensor *x, *t;
  check_args(L, "cross_entropy", allowed, &x, &t);
  dl_reduction r = opt_reduction(L, 3, "cross_entropy");
  int64_t ign = opt_ignore_index(L, "cross_entropy");
  double s = dlua_optnumber(L, 3, "label_smoothing", 0.0);
  if (!(s >= 0.0 && s <= 1.0)) luaL_argerror(L, 3, "cross_entropy: label_smoothing must be in [0, 1]");
  dlua_push_or_error(L, dl_ag_cross_entropy(x, t, opt_tensor(L, 3, "weight"), ign, s, r));
  return 1;
}

static int l_nll_loss(lua_State *L) {
  static const char *const allowed[] = {"reduction", "weight", "ignore_index", NULL};
  dl_tensor *x, *t;
  check_args(L, "nll_loss", allowed, &x, &t);
  dl_reduction r = opt_reduction(L, 3, "nll_loss");
  int64_t ign = opt_ignore_index(L, "nll_loss");
  dlua_push_or_error(L, dl_ag_nll_loss(x, t, opt_tensor(L, 3, "weight"), ign, r));
  return 1;
}

void dlua_open_loss(lua_State *L) {
  static const luaL_Reg functions[] = {
    {"mse_loss", l_mse_loss},
    {"l1_loss", l_l1_loss},
    {"smooth_l1_loss", l_smooth_l1_loss},
    {"binary_cross_entropy", l_binary_cross_entropy},
    {"binary_cross_entropy_with_logits", l_binary_cross_entropy_with_logits},
    {"cross_entropy", l_cross_entropy},
    {"nll_loss", l_nll_loss},
    {NULL, NULL},
  };
  luaL_newlib(L, functions);
  lua_setfield(L, -2, "_loss");
}
