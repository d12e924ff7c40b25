/* lua_optim.c — dl._optim.step(algo, group, state, name): one fused update
 * of every parameter of a param group (lua/dlua/optim/sgd_family.lua holds
 * the classes). Reads the group's options, creates missing state tensors,
 * advances the per-parameter step count, has the engine compute the
 * step-dependent scalars (dl_optim_hp_for_step), then has the engine
 * update the parameters that have a gradient, up to BATCH at a time in one
 * call (one parallel region on the CPU). */
#include "lua_dlua.h"
#include "ops/dl_optim.h"

#include <string.h>

static const char *const algo_names[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw", "adamax", "nadam", "adadelta",
                                         NULL};
static const dl_optim_algo algo_of[] = {DL_OPTIM_SGD,  DL_OPTIM_ADAGRAD, DL_OPTIM_RMSPROP, DL_OPTIM_ADAM,
                                        DL_OPTIM_ADAM, DL_OPTIM_ADAMAX,  DL_OPTIM_NADAM,   DL_OPTIM_ADADELTA};

/* state slot names, by algorithm (see dl_optim.h) */
static const char *const slot_names[DL_OPTIM_NALGOS][3] = {
  [DL_OPTIM_SGD] = {"momentum_buffer", NULL, NULL},
  [DL_OPTIM_ADAGRAD] = {"sum", NULL, NULL},
  [DL_OPTIM_RMSPROP] = {"square_avg", "grad_avg", "momentum_buffer"},
  [DL_OPTIM_ADAM] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
  [DL_OPTIM_ADAMAX] = {"exp_avg", "exp_inf", NULL},
  [DL_OPTIM_NADAM] = {"exp_avg", "exp_avg_sq", NULL},
  [DL_OPTIM_ADADELTA] = {"square_avg", "acc_delta", NULL},
};

static double gnum(lua_State *L, int g, const char *name, const char *key) {
  lua_getfield(L, g, key);
  if (!lua_isnumber(L, -1)) luaL_error(L, "dl.optim.%s: param group option '%s' must be a number", name, key);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static bool gbool(lua_State *L, int g, const char *key) {
  lua_getfield(L, g, key);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static void gbetas(lua_State *L, int g, const char *name, double *b1, double *b2) {
  lua_getfield(L, g, "betas");
  if (!lua_istable(L, -1)) luaL_error(L, "dl.optim.%s: param group option 'betas' must be a table {beta1, beta2}", name);
  lua_geti(L, -1, 1);
  lua_geti(L, -2, 2);
  if (!lua_isnumber(L, -2) || !lua_isnumber(L, -1))
    luaL_error(L, "dl.optim.%s: param group option 'betas' must be a table {beta1, beta2}", name);
  *b1 = lua_tonumber(L, -2);
  *b2 = lua_tonumber(L, -1);
  lua_pop(L, 3);
}

/* state[p].step + 1, stored back; st at index st */
static double next_step(lua_State *L, int st) {
  lua_getfield(L, st, "step");
  double step = lua_tonumber(L, -1) + 1; /* nil -> 0 */
  lua_pop(L, 1);
  lua_pushnumber(L, step);
  lua_setfield(L, st, "step");
  return step;
}

/* parameters handed to the engine in one call; a group with more runs in
 * several (the arrays live on the C stack: no allocation per step) */
#define BATCH 64

typedef struct {
  dl_optim_call calls[BATCH];
  dl_optim_hp hps[BATCH];
  int n;
  const char *fn;
  dl_optim_algo algo;
} batch;

/* updates the parameters gathered so far, each checked as it was gathered
 * (an error is raised) */
static void flush(lua_State *L, batch *b) {
  int n = b->n;
  b->n = 0;
  if (n > 0 && dl_optim_step_checked(b->fn, b->algo, b->calls, n)) dlua_engine_error(L);
}

/* an error in gathering a parameter, its message on the stack: the ones
 * gathered before it are updated first, as one update per parameter did */
static int gather_error(lua_State *L, batch *b) {
  flush(L, b);
  return lua_error(L);
}

/* state[p].<key> as a tensor, created (filled with v) when absent; *fresh
 * tells which. Leaves nothing on the stack; the table keeps the reference. */
static dl_tensor *slot(lua_State *L, batch *b, const char *name, int st, const char *key, const dl_tensor *p,
                       double v, bool *fresh) {
  lua_getfield(L, st, key);
  dl_tensor *t = lua_isnil(L, -1) ? NULL : dlua_totensor(L, -1);
  if (!lua_isnil(L, -1) && !t) {
    lua_pushfstring(L, "dl.optim.%s: state '%s' is not a tensor", name, key);
    gather_error(L, b);
  }
  lua_pop(L, 1);
  if (fresh) *fresh = t == NULL;
  if (t) return t;
  t = dl_tensor_full(p->shape, p->ndim, p->dtype, dl_tensor_device(p), dl_scalar_f(v));
  if (!t) {
    lua_pushfstring(L, "dl.optim.%s: %s", name, dl_error_get());
    gather_error(L, b);
  }
  dlua_pushtensor(L, t);
  lua_setfield(L, st, key);
  return t;
}

/* dl._optim.step(algo, group, state, name) */
static int l_step(lua_State *L) {
  int ai = luaL_checkoption(L, 1, NULL, algo_names);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  const char *name = luaL_optstring(L, 4, algo_names[ai]);
  const dl_optim_algo algo = algo_of[ai];
  const bool adamw = strcmp(algo_names[ai], "adamw") == 0;
  char fn[64];
  snprintf(fn, sizeof fn, "optim.%s", name);

  /* options common to the group */
  dl_optim_hp base = {.decay = 1};
  double lr = gnum(L, 2, name, "lr"), wd = 0, lr_decay = 0, init_acc = 0, mdecay = 0;
  base.lr = lr;
  if (algo != DL_OPTIM_NADAM) base.maximize = gbool(L, 2, "maximize");
  if (algo != DL_OPTIM_SGD) base.eps = gnum(L, 2, name, "eps");
  wd = gnum(L, 2, name, "weight_decay");
  switch (algo) {
  case DL_OPTIM_SGD:
    base.momentum = gnum(L, 2, name, "momentum");
    base.dampening = gnum(L, 2, name, "dampening");
    base.nesterov = gbool(L, 2, "nesterov");
    break;
  case DL_OPTIM_ADAGRAD:
    lr_decay = gnum(L, 2, name, "lr_decay");
    init_acc = gnum(L, 2, name, "initial_accumulator_value");
    break;
  case DL_OPTIM_RMSPROP:
    base.alpha = gnum(L, 2, name, "alpha");
    base.momentum = gnum(L, 2, name, "momentum");
    base.centered = gbool(L, 2, "centered");
    break;
  case DL_OPTIM_ADAM: base.amsgrad = gbool(L, 2, "amsgrad"); /* fallthrough */
  case DL_OPTIM_ADAMAX: gbetas(L, 2, name, &base.beta1, &base.beta2); break;
  case DL_OPTIM_NADAM:
    gbetas(L, 2, name, &base.beta1, &base.beta2);
    mdecay = gnum(L, 2, name, "momentum_decay");
    break;
  case DL_OPTIM_ADADELTA: base.rho = gnum(L, 2, name, "rho"); break;
  default: break;
  }
  if (adamw) base.decay = 1 - lr * wd;
  else base.weight_decay = wd;
  const unsigned mask = dl_optim_state_mask(algo, &base);

  lua_getfield(L, 2, "params");
  if (!lua_istable(L, -1)) return luaL_error(L, "dl.optim.%s: param group has no 'params' list", name);
  const int params = lua_gettop(L);
  const lua_Integer n = luaL_len(L, params);
  batch b = {.n = 0, .fn = fn, .algo = algo};
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, params, i);
    const int pi = lua_gettop(L);
    dl_tensor *p = dlua_totensor(L, pi);
    if (!p) {
      lua_pushfstring(L, "dl.optim.%s: params[%d] is not a tensor", name, (int)i);
      return gather_error(L, &b);
    }
    if (!p->grad) {
      lua_settop(L, params);
      continue;
    }
    /* state[p], created on first use */
    lua_pushvalue(L, pi);
    if (lua_gettable(L, 3) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, pi);
      lua_pushvalue(L, -2);
      lua_settable(L, 3);
    }
    const int st = lua_gettop(L);
    dl_optim_hp *hp = &b.hps[b.n];
    *hp = base;
    dl_tensor *s[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
      if (!(mask & (1u << k))) continue;
      bool fresh;
      s[k] = slot(L, &b, name, st, slot_names[algo][k], p, algo == DL_OPTIM_ADAGRAD ? init_acc : 0, &fresh);
      if (algo == DL_OPTIM_SGD) hp->first = fresh;
    }
    if (algo != DL_OPTIM_SGD) {
      double step = next_step(L, st), mp = 1.0;
      if (algo == DL_OPTIM_NADAM) {
        lua_getfield(L, st, "mu_product");
        if (lua_isnumber(L, -1)) mp = lua_tonumber(L, -1);
        lua_pop(L, 1);
      }
      dl_optim_hp_for_step(algo, hp, step, lr_decay, mdecay, &mp);
      if (algo == DL_OPTIM_NADAM) {
        lua_pushnumber(L, mp);
        lua_setfield(L, st, "mu_product");
      }
    }
    dl_optim_call *c = &b.calls[b.n];
    *c = (dl_optim_call){.param = p, .grad = p->grad, .s = {s[0], s[1], s[2]}, .hp = hp};
    if (dl_optim_check(fn, algo, c, slot_names[algo])) {
      /* as one update per parameter did: the ones before it are updated,
       * the ones after it not gathered (their steps not advanced) */
      flush(L, &b);
      dl_optim_check(fn, algo, c, slot_names[algo]); /* its error again */
      return dlua_engine_error(L);
    }
    b.n++;
    /* the tables hold every tensor the calls point at */
    lua_settop(L, params);
    if (b.n == BATCH) flush(L, &b);
  }
  flush(L, &b);
  return 0;
}

static const luaL_Reg optim_functions[] = {{"step", l_step}, {NULL, NULL}};

void dlua_open_optim(lua_State *L) {
  luaL_newlib(L, optim_functions);
  lua_setfield(L, -2, "_optim");
}
