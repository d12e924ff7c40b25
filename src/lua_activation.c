/* lua_activation.c — binding of the fused activations: leaky_relu, prelu,
 * elu, gelu, silu, softplus, softmax, log_softmax, as tensor methods and dl
 * functions (dl.F picks them up in lua/dlua/nn/activation.lua). Each goes
 * through its differentiable dl_ag_* front-end. Dims are 1-based. */
#include "lua_dlua.h"

#include "autograd/dl_ag_activation.h"

#include <string.h>

/* A number at arg, or the option `key` of a table at arg, or def. */
static double num_or_opt(lua_State *L, int arg, const char *fn, const char *key, double def,
                         const char *const *allowed) {
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_type(L, arg) == LUA_TNUMBER) return lua_tonumber(L, arg);
  if (!dlua_isoptions(L, arg)) luaL_typeerror(L, arg, "number or options table");
  dlua_checkoptions(L, arg, fn, allowed);
  lua_getfield(L, arg, key);
  double v = def;
  if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1)) luaL_error(L, "%s: option '%s' must be a number, got %s", fn, key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

static int l_leaky_relu(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  static const char *const allowed[] = {"negative_slope", NULL};
  double slope = num_or_opt(L, 2, "leaky_relu", "negative_slope", 0.01, allowed);
  dlua_push_or_error(L, dl_ag_act(DL_ACT_LEAKY_RELU, x, slope, 0));
  return 1;
}

static int l_elu(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  static const char *const allowed[] = {"alpha", NULL};
  double alpha = num_or_opt(L, 2, "elu", "alpha", 1.0, allowed);
  dlua_push_or_error(L, dl_ag_act(DL_ACT_ELU, x, alpha, 0));
  return 1;
}

/* gelu(x), gelu(x, "tanh"), gelu(x, {approximate = "none" | "tanh"}) */
static int l_gelu(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  const char *approx = "none";
  if (lua_type(L, 2) == LUA_TSTRING) {
    approx = lua_tostring(L, 2);
  } else if (!lua_isnoneornil(L, 2)) {
    static const char *const allowed[] = {"approximate", NULL};
    if (!dlua_isoptions(L, 2)) luaL_typeerror(L, 2, "string or options table");
    dlua_checkoptions(L, 2, "gelu", allowed);
    approx = dlua_optstring(L, 2, "approximate", "none");
  }
  dl_act op;
  if (strcmp(approx, "none") == 0) op = DL_ACT_GELU;
  else if (strcmp(approx, "tanh") == 0) op = DL_ACT_GELU_TANH;
  else return luaL_argerror(L, 2, lua_pushfstring(L, "approximate must be \"none\" or \"tanh\", got \"%s\"", approx));
  dlua_push_or_error(L, dl_ag_act(op, x, 0, 0));
  return 1;
}

static int l_silu(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  dlua_push_or_error(L, dl_ag_act(DL_ACT_SILU, x, 0, 0));
  return 1;
}

/* softplus(x), softplus(x, beta, threshold), softplus(x, {beta, threshold}) */
static int l_softplus(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  double beta = 1, threshold = 20;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    beta = lua_tonumber(L, 2);
    threshold = luaL_optnumber(L, 3, 20);
  } else if (!lua_isnoneornil(L, 2)) {
    static const char *const allowed[] = {"beta", "threshold", NULL};
    if (!dlua_isoptions(L, 2)) luaL_typeerror(L, 2, "number or options table");
    dlua_checkoptions(L, 2, "softplus", allowed);
    beta = num_or_opt(L, 2, "softplus", "beta", 1, allowed);
    threshold = num_or_opt(L, 2, "softplus", "threshold", 20, allowed);
  }
  if (beta == 0) return luaL_argerror(L, 2, "beta must be non-zero");
  dlua_push_or_error(L, dl_ag_act(DL_ACT_SOFTPLUS, x, beta, threshold));
  return 1;
}

static int l_prelu(lua_State *L) {
  dl_tensor *x = dlua_checktensor(L, 1);
  dl_tensor *w = dlua_checktensor(L, 2);
  dlua_push_or_error(L, dl_ag_prelu(x, w));
  return 1;
}

static int softmax_common(lua_State *L, bool log) {
  dl_tensor *x = dlua_checktensor(L, 1);
  int dim = dlua_checkdim(L, 2, x->ndim);
  dlua_push_or_error(L, dl_ag_softmax(x, dim, log));
  return 1;
}
static int l_softmax(lua_State *L) { return softmax_common(L, false); }
static int l_log_softmax(lua_State *L) { return softmax_common(L, true); }

static const luaL_Reg act_funcs[] = {
  {"leaky_relu", l_leaky_relu},
  {"elu", l_elu},
  {"gelu", l_gelu},
  {"silu", l_silu},
  {"softplus", l_softplus},
  {"prelu", l_prelu},
  {"softmax", l_softmax},
  {"log_softmax", l_log_softmax},
  {NULL, NULL},
};

void dlua_open_activation(lua_State *L) { dlua_register(L, act_funcs, act_funcs); }
